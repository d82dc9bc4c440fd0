#include "session/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "session/session_internal.h"
#include "util/http_query.h"
#include "util/utf8.h"

static void sub_send(subscriber *sub, frame *f)
{
    session *s = (session *)sub;
    if (s->closed || (s->replays && f->seq && session_replay_holds(s, f)))
        return;
    s->transport->send(s, f);
}

static void sub_close(subscriber *sub, int code, const char *message)
{
    session_close((session *)sub, code, message);
}

static const subscriber_ops session_subscriber_ops = {sub_send, sub_close};

void session_init(session *s, const worker_services *w, const session_transport *t)
{
    memset(s, 0, sizeof(*s));
    s->hub = w->hub;
    s->history = w->history;
    s->transport = t;
}

void session_end(session *s)
{
    session_replay_free_all(s);
    if (s->attached) {
        hub_detach(&s->sub);
        s->attached = false;
    }
    free(s->user_info);
    s->user_info = NULL;
}

void session_send_text(session *s, const char *json, size_t len)
{
    if (s->closed)
        return;
    frame *f = frame_message(json, len);
    s->transport->send(s, f);
    frame_unref(f);
}

void session_send_error(session *s, int code, const char *message)
{
    buf b;
    buf_init(&b);
    pusher_encode_error(&b, code, message);
    session_send_text(s, b.data, b.len);
    buf_free(&b);
}

void session_close(session *s, int code, const char *message)
{
    if (s->closed)
        return;
    char clean[512]; /* messages may quote client bytes: both copies must be UTF-8 */
    utf8_sanitize(clean, sizeof(clean), message, strlen(message));
    session_send_error(s, code, clean);
    s->closed = true;
    s->transport->close(s, code, clean);
}

void session_subscription_error(session *s, const char *channel, size_t channel_len,
                                const char *type, const char *error, int status)
{
    buf b;
    buf_init(&b);
    /* A missing name is answered with "channel":"" */
    pusher_encode_subscription_error(&b, channel ? channel : "", channel ? channel_len : 0, type,
                                     error, status);
    session_send_text(s, b.data, b.len);
    buf_free(&b);
}

/* The protocol query parameter: absent means 7. Returns 0 or a close code. */
static int check_protocol(const char *query, size_t query_len)
{
    char value[16];
    long n = http_query_get(query, query_len, "protocol", value, sizeof(value));
    if (n == -1)
        return 0;
    if (n <= 0)
        return PUSHER_BAD_VERSION_FORMAT;
    long v = 0;
    for (long i = 0; i < n; i++) {
        if (value[i] < '0' || value[i] > '9')
            return PUSHER_BAD_VERSION_FORMAT;
        v = v * 10 + (value[i] - '0');
    }
    return v < 4 || v > 7 ? PUSHER_UNSUPPORTED_PROTOCOL : 0;
}

int session_admit(hub *h, const char *key, size_t key_len, const char *query, size_t query_len,
                  const hk_app **out, char *message, size_t cap)
{
    const hk_app *app = config_find_app_by_key(h->cfg, key, key_len);
    if (!app) {
        /* The key is raw request bytes: quoted as valid UTF-8, at most 64
         * bytes, so the whole message also fits a close frame's reason. */
        char shown[65];
        utf8_sanitize(shown, sizeof(shown), key, key_len);
        snprintf(message, cap, "App key %s does not exist", shown);
        return PUSHER_APP_UNKNOWN;
    }
    if (!app->enabled) {
        snprintf(message, cap, "The app is disabled");
        return PUSHER_APP_DISABLED;
    }
    int proto = check_protocol(query, query_len);
    if (proto) {
        snprintf(message, cap, "%s",
                 proto == PUSHER_BAD_VERSION_FORMAT
                     ? "The protocol version must be a number"
                     : "Unsupported protocol version: this server speaks 4 to 7");
        return proto;
    }
    *out = app;
    return 0;
}

bool session_start(session *s, const hk_app *app, uint64_t now_ms)
{
    hub_app *happ = hub_app_of(s->hub, app);
    if (app->max_connections >= 0 &&
        directory_connections(s->hub->dir, happ->index) >= app->max_connections) {
        session_close(s, PUSHER_APP_OVER_QUOTA, "The app has reached its connection quota");
        return false;
    }
    hub_attach(happ, &s->sub, &session_subscriber_ops);
    s->attached = true;
    if (app->user_authentication_required)
        s->auth_deadline_ms = now_ms + (uint64_t)app->user_authentication_timeout * 1000u;

    char data[128];
    int n = snprintf(data, sizeof(data), "{\"socket_id\":\"%s\",\"activity_timeout\":%u}",
                     s->sub.socket_id, app->activity_timeout);
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("pusher:connection_established"), NULL, 0, data,
                              (size_t)n);
    session_send_text(s, b.data, b.len);
    buf_free(&b);
    return true;
}

static bool event_is(const pusher_msg *m, const char *name)
{
    size_t n = strlen(name);
    return m->event_len == n && memcmp(m->event, name, n) == 0;
}

void session_receive(session *s, char *data, size_t len, uint64_t now_ms)
{
    if (s->closed)
        return;
    pusher_msg m;
    char err[200];
    if (pusher_msg_decode(data, len, &m, err, sizeof(err)) != 0) {
        session_send_error(s, 0, err); /* "Invalid JSON: …" or "Invalid message: …" */
        return;
    }
    if (event_is(&m, "pusher:ping")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":\"{}\"}";
        session_send_text(s, pong, sizeof(pong) - 1);
    } else if (event_is(&m, "pusher:pong")) {
        /* liveness only */
    } else if (event_is(&m, "pusher:subscribe")) {
        handle_subscribe(s, &m);
    } else if (event_is(&m, "pusher:unsubscribe")) {
        handle_unsubscribe(s, &m);
    } else if (event_is(&m, "pusher:signin")) {
        handle_signin(s, &m);
    } else if (event_is(&m, "hark:read")) {
        handle_read(s, &m);
    } else if (event_is(&m, "hark:unread")) {
        handle_unread(s, &m);
    } else if (event_is(&m, "hark:typing")) {
        handle_typing(s, &m);
    } else if (m.event_len > 7 && memcmp(m.event, "client-", 7) == 0) {
        handle_client_event(s, &m, now_ms);
    } else {
        char shown[101]; /* at most 100 bytes, cut between characters */
        utf8_sanitize(shown, sizeof(shown), m.event, m.event_len);
        char message[128];
        snprintf(message, sizeof(message), "Unknown event: %s", shown);
        session_send_error(s, 0, message);
    }
    pusher_msg_free(&m);
}

void session_tick(session *s, uint64_t now_ms)
{
    if (s->replays)
        session_replay_pump_all(s);
    if (s->auth_deadline_ms && now_ms >= s->auth_deadline_ms) {
        s->auth_deadline_ms = 0;
        session_close(s, PUSHER_UNAUTHORIZED, "Connection not authorized within timeout.");
    }
}
