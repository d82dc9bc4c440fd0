/* pusher:subscribe and pusher:unsubscribe (spec §3.3). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/channel_name.h"
#include "protocol/signature.h"
#include "session/session_internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The presence member from channel_data. */
typedef struct member {
    json_t *root;   /* owned: the parsed channel_data, id may point into it */
    const char *id; /* user_id (string, or an integer written into digits) */
    size_t id_len;
    char digits[24]; /* an integer user_id as text: at most 20 digits and a sign */
    char *info;      /* user_info as compact JSON, malloc'ed */
} member;

static void member_free(member *m)
{
    json_decref(m->root);
    free(m->info);
}

/* Reads user_id (string or integer, normalized to a string) and user_info
 * from channel_data. Returns NULL on success or the reason; either way
 * member_free releases what *m holds. */
static const char *parse_member(const char *channel_data, size_t len, member *m)
{
    json_error_t jerr;
    m->root = json_loadb(channel_data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!m->root || !json_is_object(m->root))
        return "channel_data must be a JSON object";
    json_t *uid = json_object_get(m->root, "user_id");
    if (json_is_string(uid)) {
        m->id = json_string_value(uid);
        m->id_len = json_string_length(uid);
    } else if (json_is_integer(uid)) {
        int n = snprintf(m->digits, sizeof(m->digits), "%lld", (long long)json_integer_value(uid));
        m->id = m->digits;
        m->id_len = (size_t)n;
    } else {
        return "channel_data must have a user_id string";
    }
    if (!user_id_valid(m->id, m->id_len))
        return "user_id must be 1-" STR(USER_ID_MAX_LENGTH) " characters of [A-Za-z0-9_-=@,.;]";
    json_t *ui = json_object_get(m->root, "user_info");
    m->info = ui ? json_dumps(ui, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
    if (!m->info)
        abort();
    return NULL;
}

/* The subscription's "since" (hark extension): whether there is one. */
static bool since_of(const pusher_msg *m, const char **since, size_t *len, bool *is_string)
{
    json_t *v = json_is_object(m->data) ? json_object_get(m->data, "since") : NULL;
    if (!v || json_is_null(v))
        return false;
    *is_string = json_is_string(v);
    *since = *is_string ? json_string_value(v) : NULL;
    *len = *is_string ? json_string_length(v) : 0;
    return true;
}

/* The cache channel's last event, for a resume of a kept channel to
 * decide on (its replay carries it, or since is at or after it); NULL: the
 * hub sends it at once, as in Pusher. */
static frame **cached_for(session *s, bool resume, const char *name, size_t len, frame **cached)
{
    return resume && s->history && history_rule(s->sub.app->cfg, name, len) ? cached : NULL;
}

/* After a subscription: its resume, or its position. */
static void start_from(session *s, const char *name, size_t len, bool resume, const char *since,
                       size_t since_len, bool since_string, frame *cached)
{
    if (resume)
        session_resume(s, name, len, since, since_len, since_string, cached);
    else
        session_position(s, name, len);
}

void handle_subscribe(session *s, const pusher_msg *m)
{
    const char *since = NULL;
    size_t since_len = 0;
    bool since_string = false;
    bool resume = since_of(m, &since, &since_len, &since_string);
    const hk_app *app = s->sub.app->cfg;
    size_t name_len = 0;
    const char *name = pusher_msg_data_string(m, "channel", &name_len);
    const char *reason = NULL;
    if (!name) {
        session_subscription_error(s, NULL, 0, "InvalidChannel", "Missing channel name", 400);
        return;
    }
    if (!channel_name_valid(name, name_len, app->max_channel_name_length, &reason)) {
        char error[256];
        snprintf(error, sizeof(error), "Invalid channel name: %s", reason ? reason : "bad name");
        session_subscription_error(s, name, name_len, "InvalidChannel", error, 400);
        return;
    }
    /* max_channels_per_connection: a new channel past the limit is refused;
     * subscribing again to a channel already held takes no new slot. */
    if (s->sub.num_slots >= app->max_channels_per_connection &&
        !hub_subscription(&s->sub, name, name_len)) {
        char error[96];
        snprintf(error, sizeof(error),
                 "Too many channels on this connection: the limit is %" PRIu32,
                 app->max_channels_per_connection);
        session_subscription_error(s, name, name_len, "LimitReached", error, 400);
        return;
    }
    channel_kind kind = channel_classify(name, name_len);

    if (kind.type == CHANNEL_USER) {
        hub_user *u = s->sub.user;
        if (!u || !channel_is_users_own(name, name_len, u->id, u->id_len)) {
            session_subscription_error(s, name, name_len, "AuthError",
                                       "Only the signed-in user may subscribe to its own "
                                       "#server-to-user channel",
                                       401);
            return;
        }
        frame *cached = NULL;
        hub_subscribe(&s->sub, name, name_len, kind, NULL,
                      cached_for(s, resume, name, name_len, &cached));
        session_note_member(s, name, name_len);
        start_from(s, name, name_len, resume, since, since_len, since_string, cached);
        return;
    }

    size_t cd_len = 0;
    const char *channel_data = pusher_msg_data_string(m, "channel_data", &cd_len);
    if (channel_kind_needs_auth(kind)) {
        size_t auth_len = 0;
        const char *auth = pusher_msg_data_string(m, "auth", &auth_len);
        if (!auth || auth_len == 0) {
            session_subscription_error(s, name, name_len, "AuthError",
                                       "The connection is unauthorized: auth is missing", 401);
            return;
        }
        if (!sig_check_channel(app->key, app->secret, session_signed_id(s), name, name_len,
                               channel_data, cd_len, auth, auth_len)) {
            /* The string to sign, with the whole channel name (valid names
             * are ASCII). */
            buf error;
            buf_init(&error);
            buf_printf(&error,
                       "The connection is unauthorized: invalid signature, expected HMAC-SHA256 "
                       "hex of \"%s:",
                       session_signed_id(s));
            buf_append(&error, name, name_len);
            buf_append_str(&error, channel_data ? ":<channel_data>\"" : "\"");
            char *text = buf_steal(&error);
            session_subscription_error(s, name, name_len, "AuthError", text, 401);
            free(text);
            return;
        }
    }

    hub_presence_join join = {0};
    member mb = {0};
    if (kind.type == CHANNEL_PRESENCE) {
        if (!channel_data && !s->sub.user) {
            session_subscription_error(s, name, name_len, "InvalidChannelData",
                                       "Presence channels need channel_data with a user_id", 400);
            return;
        }
        if (channel_data) {
            if (cd_len > app->max_presence_user_bytes) {
                char error[160];
                snprintf(error, sizeof(error), "The maximum size for a channel member is %zu bytes",
                         app->max_presence_user_bytes);
                session_subscription_error(s, name, name_len, "LimitReached", error, 413);
                return;
            }
            const char *bad = parse_member(channel_data, cd_len, &mb);
            if (bad) {
                session_subscription_error(s, name, name_len, "InvalidChannelData", bad, 400);
                member_free(&mb);
                return;
            }
        } else {
            /* pusher-js allows presence auth without channel_data when signed in */
            mb.id = s->sub.user->id;
            mb.id_len = s->sub.user->id_len;
            mb.info = strdup(s->user_info ? s->user_info : "null");
            if (!mb.info)
                abort();
        }
        join = (hub_presence_join){mb.id, mb.id_len, mb.info, strlen(mb.info)};
    }

    frame *cached = NULL;
    enum hub_subscribe_result r = hub_subscribe(&s->sub, name, name_len, kind, &join,
                                                cached_for(s, resume, name, name_len, &cached));
    member_free(&mb);
    if (r == HUB_MEMBER_LIMIT) {
        session_subscription_error(s, name, name_len, "LimitReached",
                                   "The maximum members per presence channel limit was reached",
                                   4100);
        return;
    }
    if (kind.type == CHANNEL_PRIVATE || kind.type == CHANNEL_PRESENCE ||
        kind.type == CHANNEL_ENCRYPTED)
        s->auth_deadline_ms = 0; /* authorized connection */
    if (r == HUB_SUBSCRIBED)
        session_note_member(s, name, name_len);
    start_from(s, name, name_len, resume, since, since_len, since_string, cached);
}

void handle_unsubscribe(session *s, const pusher_msg *m)
{
    size_t len = 0;
    const char *name = pusher_msg_data_string(m, "channel", &len);
    if (name) {
        session_replay_cancel(s, name, len);
        hub_unsubscribe(&s->sub, name, len);
    }
}
