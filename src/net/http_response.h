/* http_response — writes HTTP/1.1 responses onto a connection. */
#ifndef HARK_NET_HTTP_RESPONSE_H
#define HARK_NET_HTTP_RESPONSE_H

#include <stddef.h>

#include "net/conn.h"

const char *http_status_text(int status);

/* Queues a response with Content-Length; extra_headers (may be NULL) are
 * complete "Name: value\r\n" lines. Adds "Connection: close" when the
 * connection will close after it. */
void http_respond(conn *c, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers);

/* {"error":"<message>","code":<status>} as application/json. */
void http_respond_error(conn *c, int status, const char *message);

#endif
