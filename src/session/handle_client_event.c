/* client-* events (spec §6): relayed to the channel's other subscribers. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/channel_name.h"
#include "protocol/errors.h"
#include "session/session_internal.h"

/* Returns false when this event is over the per-second budget. */
static bool within_rate(session *s, const hk_app *app, uint64_t now)
{
    if (app->client_event_rate == 0)
        return true;
    if (now - s->rate_window_ms >= 1000) {
        s->rate_window_ms = now;
        s->rate_count = 0;
    }
    return ++s->rate_count <= app->client_event_rate;
}

void handle_client_event(session *s, const pusher_msg *m, uint64_t now_ms)
{
    const hk_app *app = s->sub.app->cfg;
    if (!app->client_events) {
        session_send_error(s, PUSHER_CLIENT_EVENT_REJECTED,
                           "The app does not have client messaging enabled.");
        return;
    }
    if (!m->channel) {
        session_send_error(s, 0, "Client event rejected: a channel is required");
        return;
    }
    if (m->event_len > app->max_event_name_length) {
        session_send_error(s, 0, "Client event rejected: event name too long");
        return;
    }
    sub_slot *slot = hub_subscription(&s->sub, m->channel, m->channel_len);
    if (!slot) {
        session_send_error(s, 0, "Client event rejected: not subscribed to the channel");
        return;
    }
    enum channel_type type = slot->channel->kind.type;
    if (type != CHANNEL_PRIVATE && type != CHANNEL_PRESENCE) {
        session_send_error(s, 0,
                           type == CHANNEL_ENCRYPTED
                               ? "Client events are not allowed on encrypted channels"
                               : "Client events are only allowed on private and presence "
                                 "channels");
        return;
    }
    if (!within_rate(s, app, now_ms)) {
        session_send_error(s, PUSHER_CLIENT_EVENT_REJECTED,
                           "Client event rejected due to rate limit");
        return;
    }
    char *data = m->data ? json_dumps(m->data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t data_len = data ? strlen(data) : 0;
    if (data_len > app->max_payload_bytes) {
        free(data);
        session_send_error(s, PUSHER_CLIENT_EVENT_REJECTED,
                           "Client event rejected: data is over the payload limit");
        return;
    }
    /* Relayed whole, as pointer and length (a copy cut at a fixed size
     * would rename the event, and could split a character and make every
     * receiver fail the connection with 1007). The decoder refuses NUL in
     * strings, so observers may also read it as a C string. */
    const char *event = m->event;
    /* the author: the presence member, else the connection's sign-in */
    const char *author = slot->member ? slot->member->id : s->sub.user ? s->sub.user->id : NULL;
    size_t author_len = slot->member ? slot->member->id_len : s->sub.user ? s->sub.user->id_len : 0;
    buf b;
    frame_buf_init(&b);
    pusher_encode_raw_data(&b, event, m->event_len, slot->channel->name, slot->channel->name_len,
                           data, data_len, author, author_len);
    frame *f = frame_buf_take(&b);
    const hk_history_rule *rule =
        s->history ? history_rule(app, slot->channel->name, slot->channel->name_len) : NULL;
    if (rule && rule->client_events) {
        /* kept: the history thread delivers it, with its id, once stored */
        history_event ev = {.channel = slot->channel->name,
                            .channel_len = slot->channel->name_len,
                            .event = event,
                            .event_len = m->event_len,
                            .data_json = data ? data : "null",
                            .data_len = data ? data_len : 4,
                            .user_id = author,
                            .user_id_len = author_len,
                            .except_socket_id = s->sub.socket_id};
        history_publish(s->history, s->hub, s->sub.app->index, &ev, 1, NULL, NULL);
        hub_client_event(&s->sub, slot, NULL, event, m->event_len, data, data_len);
    } else {
        hub_client_event(&s->sub, slot, f, event, m->event_len, data, data_len);
    }
    frame_unref(f);
    free(data);
}
