/* channel_name — Pusher channel and event naming rules (spec §4). */
#ifndef HARK_PROTOCOL_CHANNEL_NAME_H
#define HARK_PROTOCOL_CHANNEL_NAME_H

#include <stdbool.h>
#include <stddef.h>

enum channel_type {
    CHANNEL_PUBLIC = 0,
    CHANNEL_PRIVATE,
    CHANNEL_PRESENCE,
    CHANNEL_ENCRYPTED, /* private-encrypted-*: ciphertext relayed untouched */
    CHANNEL_USER,      /* #server-to-user-<id> */
};

typedef struct channel_kind {
    enum channel_type type;
    bool cache; /* one of the cache- variants */
} channel_kind;

#define CHANNEL_USER_PREFIX "#server-to-user-"

/* Classifies by prefix, in the order of spec §4.1. */
channel_kind channel_classify(const char *name, size_t len);

/* True when the type needs an auth signature (private, presence, encrypted). */
bool channel_kind_needs_auth(channel_kind k);

/* Validates a channel name: 1..max_len bytes of [A-Za-z0-9_\-=@,.;], or
 * "#server-to-user-" followed by a valid user id. Writes a short reason on
 * failure (reason may be NULL). */
bool channel_name_valid(const char *name, size_t len, size_t max_len, const char **reason);

/* True when name is user's own channel, "#server-to-user-<user>": the only
 * user who may subscribe to it or poll it. */
bool channel_is_users_own(const char *name, size_t len, const char *user, size_t user_len);

/* The longest user id (presence members, sign-in, #server-to-user-<id>):
 * a protocol rule, not a setting. */
#define USER_ID_MAX_LENGTH 128

/* User ids: 1..USER_ID_MAX_LENGTH bytes of the channel-name character set. */
bool user_id_valid(const char *id, size_t len);

/* Event names: 1..max_len bytes, any characters. */
bool event_name_valid(const char *name, size_t len, size_t max_len);

/* True for names reserved to the protocol: "pusher:" and "pusher_internal:". */
bool event_name_reserved(const char *name, size_t len);

/* socket ids: ^\d+\.\d+$, each part at most 20 digits. */
bool socket_id_valid(const char *id, size_t len);

#endif
