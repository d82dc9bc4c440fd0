/* ws_transport — the WebSocket carries a Pusher session: the connection
 * handlers main installs for upgraded connections. The session lives in
 * the connection's extension area (ws_transport_ext_size bytes), so a
 * WebSocket costs no allocation of its own.
 *
 * What is the WebSocket's: the path /app/{key}, the server's drain and
 * max_connections, text frames only, and what net already enforces
 * (keep-alive pings, the slow-consumer bound, write deadlines); net's own
 * closes reach the session through ws_transport_on_close, so the client
 * still hears why. */
#ifndef HARK_TRANSPORT_WS_TRANSPORT_H
#define HARK_TRANSPORT_WS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/http_parser.h"

/* Bytes of a WebSocket session (conn_handlers.ext_size). */
extern const size_t ws_transport_ext_size;

/* The conn_handlers of an open WebSocket; the hub is the worker data. */
void ws_transport_open(conn *c, const http_request *req);
void ws_transport_message(conn *c, uint8_t opcode, char *data, size_t len);
void ws_transport_tick(conn *c, uint64_t now_ms);
void ws_transport_on_close(conn *c, int code, const char *reason);
void ws_transport_end(conn *c);

#endif
