/* directory_internal — the directory's shared state, for its files
 * (directory.c: channels, presence, cache; directory_users.c: signed-in
 * users, who is typing); not for other modules. */
#ifndef HARK_HUB_DIRECTORY_INTERNAL_H
#define HARK_HUB_DIRECTORY_INTERNAL_H

#include <pthread.h>

#include "hub/directory.h"
#include "util/strmap.h"

typedef struct dir_member {
    uint32_t workers; /* workers with at least one connection of this user */
    uint32_t id_len;
    char *info;
    size_t info_len;
    char id[];
} dir_member;

typedef struct dir_channel {
    uint32_t subs;
    uint64_t workers; /* bit i: worker (peer) i has a subscriber here */
    channel_kind kind;
    strmap members;
    frame *cached;
    uint64_t cached_until_ms;
    uint32_t name_len;
    char name[];
} dir_channel;

typedef struct dir_user {
    uint32_t conns;
    uint32_t id_len;
    char id[];
} dir_user;

typedef struct dir_app {
    strmap channels;
    size_t occupied; /* channels with subs > 0 */
    strmap users;    /* id → dir_user: signed in somewhere */
    strmap sockets;  /* socket id → dir_socket: who each signed-in connection is */
    strmap typing;   /* "<channel>\n<user>" → dir_typing: users typing now */
    atomic_long connections;
    /* Each app has its own lock: apps never wait for one another. */
    pthread_mutex_t lock;
} dir_app;

struct directory {
    dir_app *apps;
    size_t num_apps;
};

uint64_t directory_now_ms(void);
void directory_users_init(dir_app *app);
void directory_users_free(dir_app *app);

#endif
