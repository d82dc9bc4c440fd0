/* directory — the state all workers share: per channel the total number of
 * subscriptions, the presence members (per user, across workers) and the
 * cached event; per user whether any connection is signed in; per app the
 * connection count. Each worker's hub keeps its own subscribers and asks
 * the directory about everything global, so counts, presence and channel
 * queries stay right with any number of workers.
 *
 * Every function takes the directory's lock for its own duration; none of
 * them does I/O or calls back. */
#ifndef HARK_HUB_DIRECTORY_H
#define HARK_HUB_DIRECTORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/frame.h"
#include "protocol/channel_name.h"
#include "util/buf.h"

typedef struct directory directory;

directory *directory_new(const hk_config *cfg);
void directory_free(directory *d);

/* Connections per app, across workers. */
long directory_connections(directory *d, size_t app);
/* Adds delta; returns the new count. */
long directory_add_connection(directory *d, size_t app, long delta);

/* Channels with at least one subscription, across workers. */
size_t directory_channels(directory *d, size_t app);

typedef struct dir_member_join {
    const char *user_id;
    size_t user_id_len;
    const char *user_info; /* compact JSON */
    size_t user_info_len;
    uint32_t max_members;
} dir_member_join;

typedef struct dir_subscribe_result {
    bool refused;    /* presence channel full */
    bool new_member; /* the user's first connection in the channel */
    uint32_t total;  /* subscriptions after this one */
    frame *cached;   /* a reference to the live cached event, or NULL */
} dir_subscribe_result;

/* Counts one more subscription. member: when this worker's first
 * connection of a user joins a presence channel (NULL otherwise). When
 * presence_state is not NULL, appends {"presence":{ids,hash,count}}.
 * worker_bit: the worker's bit when this is its first subscriber to the
 * channel (0 otherwise), for directory_interest. */
dir_subscribe_result directory_subscribe(directory *d, size_t app, const char *name, size_t len,
                                         channel_kind kind, const dir_member_join *member,
                                         buf *presence_state, uint64_t worker_bit);

/* Counts one subscription less; member_id when this worker's last
 * connection of that user left. Sets *member_removed when the user has no
 * connection left anywhere; returns the remaining total. */
uint32_t directory_unsubscribe(directory *d, size_t app, const char *name, size_t len,
                               const char *member_id, size_t member_id_len, bool *member_removed,
                               uint64_t worker_bit);

/* Which workers (bit i: peer i of the group) have a subscriber to the
 * channel: a publish is handed only to those. A cluster directory would
 * answer the same question per node. */
uint64_t directory_interest(directory *d, size_t app, const char *name, size_t len);

/* Remembers f as a cache channel's last event for ttl_s seconds. */
void directory_cache_store(directory *d, size_t app, const char *name, size_t len, frame *f,
                           uint32_t ttl_s);

/* The HTTP API's view of one channel. */
typedef struct dir_channel_info {
    bool occupied;
    uint32_t subscription_count;
    uint32_t user_count;
    frame *cached; /* reference or NULL */
    uint64_t cache_ms_left;
} dir_channel_info;
dir_channel_info directory_channel_info(directory *d, size_t app, const char *name, size_t len);

/* Appends "name":{...counts...} for each occupied channel with the prefix
 * (comma separated, no braces around the list). */
void directory_list_channels(directory *d, size_t app, const char *prefix, size_t prefix_len,
                             bool user_count, bool subscription_count, buf *out);

/* Appends {"id":"1"},{"id":"2"} for a presence channel's members. */
void directory_list_users(directory *d, size_t app, const char *name, size_t len, buf *out);

/* Appends a presence channel's {"presence":{ids,hash,count}}. */
void directory_presence_state(directory *d, size_t app, const char *name, size_t len, buf *out);

/* --- users (directory_users.c) --- */

/* Signed-in connections of a user across workers: delta +1 when the
 * connection socket_id signs in, -1 when it ends, 0 only asks (socket_id
 * may then be NULL). Returns the new count. */
uint32_t directory_user_online(directory *d, size_t app, const char *id, size_t len, int delta,
                               const char *socket_id);
/* Whom the connection socket_id (any worker) is signed in as: the id is
 * copied into out, NUL-terminated; returns its length, 0 when not signed
 * in (or unknown). */
size_t directory_socket_user(directory *d, size_t app, const char *socket_id, size_t socket_id_len,
                             char *out, size_t cap);
/* One page of the users signed in now, in byte order of their ids, those
 * after `after` (after_len 0: from the first): appends
 * {"id":…,"connections":N} items, comma separated, to out. Returns true
 * when more users follow; the page's last id is then in *last. */
bool directory_online_page(directory *d, size_t app, const char *after, size_t after_len,
                           uint32_t limit, buf *out, buf *last);

/* Who is typing, per channel and user, across workers. */
enum dir_typing_relay {
    DIR_TYPING_QUIET = 0, /* relay nothing (throttled, or not typing) */
    DIR_TYPING_START,     /* relay typing:true */
    DIR_TYPING_STOP,      /* relay typing:false */
};
typedef struct dir_typing_signal {
    const char *channel;
    size_t channel_len;
    const char *user_id;
    size_t user_id_len;
    const char *socket_id; /* the connection that sent it */
    bool typing;
    uint32_t throttle_ms, ttl_ms;
} dir_typing_signal;
enum dir_typing_relay directory_typing(directory *d, size_t app, const dir_typing_signal *sig);
/* The subscription of socket_id to channel ended: true when it was the
 * connection that last said its user is typing there (the state ends:
 * relay typing:false). */
bool directory_typing_left(directory *d, size_t app, const char *channel, size_t channel_len,
                           const char *user_id, size_t user_id_len, const char *socket_id);
/* Removes the typing states past their time to live; returns them as
 * "<channel>\n<user>" strings (each and the array are the caller's to
 * free), *n of them. */
char **directory_typing_expired(directory *d, size_t app, size_t *n);

/* Forgets channels with no subscription and no live cached event. */
void directory_sweep(directory *d);

#endif
