/* ws_handshake — validates an RFC 6455 opening handshake request and
 * computes Sec-WebSocket-Accept (SHA-1 + base64 from OpenSSL). */
#ifndef HARK_NET_WS_HANDSHAKE_H
#define HARK_NET_WS_HANDSHAKE_H

#include "net/http_parser.h"

#define WS_ACCEPT_LEN 28

/* Checks method GET, HTTP/1.1, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key that is 24 base64 chars
 * decoding to 16 bytes. On success writes the accept value (28 chars + NUL)
 * and returns 0; otherwise returns the HTTP status to answer (400, or 426
 * for a wrong version, which must carry Sec-WebSocket-Version: 13). */
int ws_handshake_check(const http_request *req, char accept_out[WS_ACCEPT_LEN + 1]);

/* accept = base64(SHA1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) */
void ws_handshake_accept(const char *key, size_t key_len, char accept_out[WS_ACCEPT_LEN + 1]);

#endif
