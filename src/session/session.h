/* session — the Pusher protocol on an open WebSocket connection: the
 * connection checks, pusher:* events, subscriptions, client events and
 * sign-in. Each handler lives in its own file (handle_*.c). */
#ifndef HARK_SESSION_SESSION_H
#define HARK_SESSION_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/http_parser.h"

/* Right after the 101 response: checks path, app, protocol version and
 * limits, then attaches to the app's hub and sends connection_established,
 * or sends pusher:error and closes with the code. */
void session_open(conn *c, const http_request *req);

/* One complete WebSocket data message. */
void session_on_message(conn *c, uint8_t opcode, char *data, size_t len);

/* Periodic checks (user_authentication_required). */
void session_sweep(conn *c, uint64_t now_ms);

/* pusher:error {code, message} on the connection (code 0 → null). */
void session_send_error(conn *c, int code, const char *message);

#endif
