/* session — the Pusher protocol on an open WebSocket connection: the
 * connection checks, pusher:* events, subscriptions, client events and
 * sign-in. Each handler lives in its own file (handle_*.c).
 *
 * A session lives in the connection's extension area (conn_ext): main
 * installs these functions in the connection handlers, with
 * session_ext_size as the area's size. */
#ifndef HARK_SESSION_SESSION_H
#define HARK_SESSION_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"
#include "net/conn.h"
#include "net/http_parser.h"

/* Bytes of a session (conn_handlers.ext_size). */
extern const size_t session_ext_size;

/* The worker's hub (the worker data main installs). */
static inline hub *conn_hub(const conn *c)
{
    return conn_worker_data(c);
}

/* Right after the 101 response: checks path, app, protocol version and
 * limits, then attaches to the app's hub and sends connection_established,
 * or sends pusher:error and closes with the code. */
void session_open(conn *c, const http_request *req);

/* One complete WebSocket data message. */
void session_on_message(conn *c, uint8_t opcode, char *data, size_t len);

/* Periodic checks (user_authentication_required). */
void session_tick(conn *c, uint64_t now_ms);

/* The connection is leaving: unsubscribes everything, frees the session. */
void session_end(conn *c);

/* pusher:error {code, message} on the connection (code 0 → null). */
void session_send_error(conn *c, int code, const char *message);

#endif
