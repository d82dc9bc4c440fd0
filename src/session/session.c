#include "session/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/http_query.h"
#include "net/server.h"
#include "util/utf8.h"
#include "net/worker.h"
#include "net/ws_frame.h"
#include "protocol/errors.h"
#include "session/session_internal.h"
#include "util/log.h"

static void sub_send(subscriber *s, frame *f)
{
    conn_send(session_conn(s), f);
}

static void sub_close(subscriber *s, int code, const char *message)
{
    conn_close_ws(session_conn(s), code, message);
}

static const subscriber_ops conn_subscriber_ops = {sub_send, sub_close};

const size_t session_ext_size = sizeof(session);

void session_end(conn *c)
{
    session *s = session_of(c);
    if (s->attached) {
        hub_detach(&s->sub);
        s->attached = false;
    }
    free(s->user_info);
    s->user_info = NULL;
}

void session_send_error(conn *c, int code, const char *message)
{
    buf b;
    buf_init(&b);
    pusher_encode_error(&b, code, message);
    conn_send_text(c, b.data, b.len);
    buf_free(&b);
}

void session_subscription_error(conn *c, const char *channel, size_t channel_len, const char *type,
                                const char *error, int status)
{
    buf b;
    buf_init(&b);
    /* A missing name is answered with "channel":"" */
    pusher_encode_subscription_error(&b, channel ? channel : "", channel ? channel_len : 0, type,
                                     error, status);
    conn_send_text(c, b.data, b.len);
    buf_free(&b);
}

/* The protocol query parameter: absent means 7. Returns 0 or a close code. */
static int check_protocol(const http_request *req)
{
    char value[16];
    long n = http_query_get(req->query, req->query_len, "protocol", value, sizeof(value));
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

void session_open(conn *c, const http_request *req)
{
    const hk_config *cfg = conn_config(c);
    const char *path = req->path;
    size_t len = req->path_len;
    size_t plen = strlen(cfg->path_prefix);
    char message[256];

    if (len < plen || memcmp(path, cfg->path_prefix, plen) != 0 || len - plen < 6 ||
        memcmp(path + plen, "/app/", 5) != 0) {
        conn_close_ws(c, PUSHER_PATH_NOT_FOUND, "Invalid path: expected /app/{key}");
        return;
    }
    const char *key = path + plen + 5;
    size_t key_len = len - plen - 5;
    if (key_len > 0 && key[key_len - 1] == '/')
        key_len--;
    const hk_app *app = config_find_app_by_key(cfg, key, key_len);
    if (!app) {
        /* The key is raw request bytes: quoted as valid UTF-8, at most 64
         * bytes, so the whole message also fits a close frame's reason. */
        char shown[65];
        utf8_sanitize(shown, sizeof(shown), key, key_len);
        snprintf(message, sizeof(message), "App key %s does not exist", shown);
        conn_close_ws(c, PUSHER_APP_UNKNOWN, message);
        return;
    }
    if (!app->enabled) {
        conn_close_ws(c, PUSHER_APP_DISABLED, "The app is disabled");
        return;
    }
    int proto = check_protocol(req);
    if (proto) {
        conn_close_ws(c, proto,
                      proto == PUSHER_BAD_VERSION_FORMAT
                          ? "The protocol version must be a number"
                          : "Unsupported protocol version: this server speaks 4 to 7");
        return;
    }
    server *srv = c->w->srv;
    if (srv->draining) {
        conn_close_ws(c, PUSHER_RECONNECT, "Server is shutting down");
        return;
    }
    if (server_sessions(srv) > srv->max_connections) {
        conn_close_ws(c, PUSHER_OVER_CAPACITY, "The server is over capacity");
        return;
    }
    hub_app *happ = hub_app_of(conn_hub(c), app);
    if (app->max_connections >= 0 &&
        directory_connections(conn_hub(c)->dir, happ->index) >= app->max_connections) {
        conn_close_ws(c, PUSHER_APP_OVER_QUOTA, "The app has reached its connection quota");
        return;
    }
    hub_attach(happ, &session_of(c)->sub, &conn_subscriber_ops);
    session_of(c)->attached = true;
    if (app->user_authentication_required)
        session_of(c)->auth_deadline_ms =
            conn_now(c) + (uint64_t)app->user_authentication_timeout * 1000u;

    char data[128];
    int n = snprintf(data, sizeof(data), "{\"socket_id\":\"%s\",\"activity_timeout\":%u}",
                     session_of(c)->sub.socket_id, app->activity_timeout);
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("pusher:connection_established"), NULL, 0, data,
                              (size_t)n);
    conn_send_text(c, b.data, b.len);
    buf_free(&b);
}

static bool event_is(const pusher_msg *m, const char *name)
{
    size_t n = strlen(name);
    return m->event_len == n && memcmp(m->event, name, n) == 0;
}

void session_on_message(conn *c, uint8_t opcode, char *data, size_t len)
{
    if (opcode != WS_OP_TEXT) {
        session_send_error(c, 0, "Binary frames are not supported: send JSON text frames");
        return;
    }
    pusher_msg m;
    char err[200];
    if (pusher_msg_decode(data, len, &m, err, sizeof(err)) != 0) {
        session_send_error(c, 0, err); /* "Invalid JSON: …" or "Invalid message: …" */
        return;
    }
    if (event_is(&m, "pusher:ping")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":\"{}\"}";
        conn_send_text(c, pong, sizeof(pong) - 1);
    } else if (event_is(&m, "pusher:pong")) {
        /* liveness only */
    } else if (event_is(&m, "pusher:subscribe")) {
        handle_subscribe(c, &m);
    } else if (event_is(&m, "pusher:unsubscribe")) {
        handle_unsubscribe(c, &m);
    } else if (event_is(&m, "pusher:signin")) {
        handle_signin(c, &m);
    } else if (m.event_len > 7 && memcmp(m.event, "client-", 7) == 0) {
        handle_client_event(c, &m);
    } else {
        char shown[101]; /* at most 100 bytes, cut between characters */
        utf8_sanitize(shown, sizeof(shown), m.event, m.event_len);
        char message[128];
        snprintf(message, sizeof(message), "Unknown event: %s", shown);
        session_send_error(c, 0, message);
    }
    pusher_msg_free(&m);
}

void session_tick(conn *c, uint64_t now_ms)
{
    if (session_of(c)->auth_deadline_ms && now_ms >= session_of(c)->auth_deadline_ms) {
        session_of(c)->auth_deadline_ms = 0;
        conn_close_ws(c, PUSHER_UNAUTHORIZED, "Connection not authorized within timeout.");
    }
}
