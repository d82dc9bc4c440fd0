/* conn_internal — what conn.c (queue, reading, closing, bounds) and
 * conn_http.c (requests, upgrade) share. Not part of the module's interface. */
#ifndef HARK_NET_CONN_INTERNAL_H
#define HARK_NET_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "net/conn.h"
#include "net/http_parser.h"
#include "net/http_response.h"
#include "net/server.h"
#include "net/worker.h"

static inline uint64_t now_ms(const conn *c)
{
    return uv_now(&c->w->loop);
}

static inline const conn_handlers *handlers(const conn *c)
{
    return c->w->srv->handlers;
}

/* Registers EPOLLIN (unless input is paused) and EPOLLOUT when want_out. */
void conn_update_poll(conn *c, bool want_out);
/* Reads again after output drained (or a deferred answer was sent), and
 * parses requests already held. */
void conn_resume_input(conn *c);
/* Frees incomplete input (never while a feed is using it). */
void conn_drop_input(conn *c);
/* Feeds bytes to the WebSocket reader, or the HTTP parser (data may be
 * NULL with len 0: parse what is held). */
void conn_feed_ws(conn *c, char *data, size_t len);
void conn_feed_http(conn *c, char *data, size_t len);
/* Closes an open WebSocket for net's own reason: the handlers' on_close
 * says why to the client first. */
void conn_close_session(conn *c, int code, const char *reason);
/* Answers an HTTP error and closes after it. */
void conn_http_fail(conn *c, int status, const char *message);

#endif
