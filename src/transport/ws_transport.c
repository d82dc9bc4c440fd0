#include "transport/ws_transport.h"

#include <stdio.h>
#include <string.h>

#include "net/server.h"
#include "net/worker.h"
#include "net/ws_frame.h"
#include "protocol/errors.h"
#include "session/session.h"

const size_t ws_transport_ext_size = sizeof(session);

static session *session_of(conn *c)
{
    return conn_ext(c);
}

static conn *conn_of(const session *s)
{
    return conn_from_ext((void *)s);
}

static void ws_send(session *s, frame *f)
{
    conn_send(conn_of(s), f);
}

static void ws_close(session *s, int code, const char *reason)
{
    conn_close_ws(conn_of(s), code, reason);
}

static size_t ws_unsent(const session *s)
{
    return conn_of(s)->out.bytes;
}

static const session_transport ws_ops = {ws_send, ws_close, ws_unsent, NULL};

void ws_transport_open(conn *c, const http_request *req)
{
    session *s = session_of(c);
    session_init(s, conn_worker_data(c), &ws_ops);

    const hk_config *cfg = conn_config(c);
    size_t plen = strlen(cfg->path_prefix);
    const char *path = req->path;
    size_t len = req->path_len;
    if (len < plen || memcmp(path, cfg->path_prefix, plen) != 0 || len - plen < 6 ||
        memcmp(path + plen, "/app/", 5) != 0) {
        session_close(s, PUSHER_PATH_NOT_FOUND, "Invalid path: expected /app/{key}");
        return;
    }
    const char *key = path + plen + 5;
    size_t key_len = len - plen - 5;
    if (key_len > 0 && key[key_len - 1] == '/')
        key_len--;
    const hk_app *app = NULL;
    char message[256];
    int code = session_admit(s->hub, key, key_len, req->query, req->query_len, &app, message,
                             sizeof(message));
    if (code) {
        session_close(s, code, message);
        return;
    }
    server *srv = c->w->srv;
    if (srv->draining) {
        session_close(s, PUSHER_RECONNECT, "Server is shutting down");
        return;
    }
    if (server_sessions(srv) > srv->max_connections) {
        session_close(s, PUSHER_OVER_CAPACITY, "The server is over capacity");
        return;
    }
    session_start(s, app, conn_now(c));
}

void ws_transport_message(conn *c, uint8_t opcode, char *data, size_t len)
{
    if (opcode != WS_OP_TEXT) {
        session_send_error(session_of(c), 0,
                           "Binary frames are not supported: send JSON text frames");
        return;
    }
    session_receive(session_of(c), data, len, conn_now(c));
}

void ws_transport_tick(conn *c, uint64_t now_ms)
{
    session_tick(session_of(c), now_ms);
}

void ws_transport_on_close(conn *c, int code, const char *reason)
{
    session *s = session_of(c);
    if (!s->transport) /* refused before it opened (no descriptor left): still say why */
        session_init(s, conn_worker_data(c), &ws_ops);
    session_close(s, code, reason);
}

void ws_transport_end(conn *c)
{
    session_end(session_of(c));
}
