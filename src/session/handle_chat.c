/* Chat state over the connection (hark extensions, docs/api.md "Chat
 * state"): hark:read moves the signed-in user's read cursor, hark:unread
 * asks for unread counts, hark:typing says the user is typing. Read
 * cursors and counts are the history thread's (answered through this
 * worker's inbox); typing is the hub's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/channel_name.h"
#include "session/session_internal.h"
#include "util/xalloc.h"

/* Requests a connection may have waiting on the history thread at once: a
 * "mark all read" of a few hundred conversations fits; a flood does not. */
#define CHAT_PENDING_MAX 512
#define UNREAD_CHANNELS_MAX 100

static void reject(session *s, const char *what, const char *why)
{
    char message[300];
    snprintf(message, sizeof(message), "%s rejected: %s", what, why);
    session_send_error(s, 0, message);
}

/* data as an object: as sent, or a string holding one (pusher-js sends
 * objects; some clients encode data twice, as Pusher's own events do).
 * Returns a new reference, or NULL. */
static json_t *data_object(const pusher_msg *m)
{
    if (json_is_object(m->data))
        return json_incref(m->data);
    if (json_is_string(m->data)) {
        json_t *v = json_loadb(json_string_value(m->data), json_string_length(m->data), 0, NULL);
        if (json_is_object(v))
            return v;
        json_decref(v);
    }
    return NULL;
}

/* The checks every chat request shares: history on, signed in, a
 * subscribed channel (when one is needed), room for one more request. */
static bool admissible(session *s, const pusher_msg *m, const char *what, bool needs_channel,
                       bool needs_history, sub_slot **slot)
{
    if (needs_history && !s->history) {
        reject(s, what, "history is off on this server");
        return false;
    }
    if (!s->sub.user) {
        reject(s, what, "sign in first (pusher:signin)");
        return false;
    }
    if (needs_channel) {
        if (!m->channel) {
            reject(s, what, "a channel is required");
            return false;
        }
        *slot = hub_subscription(&s->sub, m->channel, m->channel_len);
        if (!*slot) {
            reject(s, what, "not subscribed to the channel");
            return false;
        }
    }
    if (needs_history && s->chat_pending >= CHAT_PENDING_MAX) {
        reject(s, what, "too many requests in flight; wait for the answers");
        return false;
    }
    return true;
}

/* Who asked, to find the session again when the answer arrives (it may
 * have gone by then). */
typedef struct chat_asker {
    size_t app;
    char socket_id[32];
} chat_asker;

static chat_asker *asker_of(session *s)
{
    chat_asker *a = xmalloc(sizeof(*a));
    a->app = s->sub.app->index;
    snprintf(a->socket_id, sizeof(a->socket_id), "%s", s->sub.socket_id);
    return a;
}

static session *asker_session(hub *h, chat_asker *a)
{
    if (!h)
        return NULL;
    subscriber *sub = hub_find_socket(&h->apps[a->app], a->socket_id, strlen(a->socket_id));
    if (!sub)
        return NULL;
    session *s = (session *)sub; /* the subscriber is the session's first field */
    s->chat_pending--;
    return s->closed ? NULL : s;
}

/* --- hark:read -------------------------------------------------------------- */

static void on_read(hub *h, void *ctx, const history_read_result *r)
{
    session *s = asker_session(h, ctx);
    free(ctx);
    if (s && r->status != 200)
        reject(s, "hark:read", r->error);
}

void handle_read(session *s, const pusher_msg *m)
{
    sub_slot *slot;
    if (!admissible(s, m, "hark:read", true, true, &slot))
        return;
    const hk_app *app = s->sub.app->cfg;
    const hub_channel *ch = slot->channel;
    bool kept = history_rule(app, ch->name, ch->name_len) != NULL;
    json_t *data = m->data ? data_object(m) : NULL;
    if (m->data && !data && !json_is_null(m->data)) {
        reject(s, "hark:read", "data must be an object: {\"id\":\"<id>\"} or {}");
        return;
    }
    json_t *id = data ? json_object_get(data, "id") : NULL;
    if (id && !json_is_null(id) && !json_is_string(id)) {
        json_decref(data);
        reject(s, "hark:read", "id must be a string");
        return;
    }
    bool has_id = id && json_is_string(id);
    if (!kept) { /* no events here: nothing to read; and no id can be of it */
        json_decref(data);
        if (has_id)
            reject(s, "hark:read", "id: this channel's events are not kept, so it has no ids");
        return;
    }
    chat_asker *a = asker_of(s);
    char err[200];
    const hub_user *u = s->sub.user;
    int refused = history_mark_read(s->history, s->hub, s->sub.app->index, u->id, u->id_len,
                                    ch->name, ch->name_len, has_id ? json_string_value(id) : NULL,
                                    has_id ? json_string_length(id) : 0, s->sub.socket_id, on_read,
                                    a, err, sizeof(err));
    json_decref(data);
    if (refused) {
        free(a);
        reject(s, "hark:read", err);
        return;
    }
    s->chat_pending++;
}

/* --- hark:unread ------------------------------------------------------------ */

static void on_unread(hub *h, void *ctx, const history_unread_result *r)
{
    session *s = asker_session(h, ctx);
    free(ctx);
    if (!s)
        return;
    if (r->status != 200) {
        reject(s, "hark:unread", r->error);
        return;
    }
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("hark:unread"), NULL, 0, r->json->data, r->json->len);
    session_send_text(s, b.data, b.len);
    buf_free(&b);
}

void handle_unread(session *s, const pusher_msg *m)
{
    if (!admissible(s, m, "hark:unread", false, true, NULL))
        return;
    const hk_app *app = s->sub.app->cfg;
    json_t *data = m->data ? data_object(m) : NULL;
    json_t *list = data ? json_object_get(data, "channels") : NULL;
    const char *names[UNREAD_CHANNELS_MAX];
    size_t lens[UNREAD_CHANNELS_MAX];
    size_t n = 0;
    const char *why = NULL;
    if (list && !json_is_null(list)) {
        if (!json_is_array(list))
            why = "channels must be an array of channel names";
        else if (json_array_size(list) > UNREAD_CHANNELS_MAX)
            why = "at most 100 channels";
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            if (why)
                break;
            const char *reason = NULL;
            if (!json_is_string(v) ||
                !channel_name_valid(json_string_value(v), json_string_length(v),
                                    app->max_channel_name_length, &reason))
                why = "channels must be an array of channel names";
            else {
                names[n] = json_string_value(v);
                lens[n++] = json_string_length(v);
            }
        }
    }
    if (why) {
        json_decref(data);
        reject(s, "hark:unread", why);
        return;
    }
    const hub_user *u = s->sub.user;
    chat_asker *a = asker_of(s);
    bool queued = history_unread(s->history, s->hub, s->sub.app->index, u->id, u->id_len,
                                 list && json_is_array(list) ? names : NULL, lens, n, on_unread, a);
    json_decref(data);
    if (!queued) {
        free(a);
        reject(s, "hark:unread", "the server has too many unread requests waiting: try again");
        return;
    }
    s->chat_pending++;
}

/* --- hark:typing ------------------------------------------------------------ */

void handle_typing(session *s, const pusher_msg *m)
{
    sub_slot *slot;
    if (!admissible(s, m, "hark:typing", true, false, &slot))
        return;
    json_t *data = m->data ? data_object(m) : NULL;
    json_t *typing = data ? json_object_get(data, "typing") : NULL;
    if (!json_is_boolean(typing)) {
        json_decref(data);
        reject(s, "hark:typing", "data must be {\"typing\":true} or {\"typing\":false}");
        return;
    }
    hub_typing(&s->sub, slot, json_is_true(typing));
    json_decref(data);
}

/* --- "was subscribed" --------------------------------------------------------- */

void session_note_member(session *s, const char *name, size_t len)
{
    const hub_user *u = s->sub.user;
    if (u && s->history && history_rule(s->sub.app->cfg, name, len))
        history_note_member(s->history, s->sub.app->index, u->id, u->id_len, name, len);
}
