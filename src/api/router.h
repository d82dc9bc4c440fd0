/* router — answers plain HTTP requests: the signed HTTP API under
 * [prefix]/apps/{app_id}/ and the health endpoints. */
#ifndef HARK_API_ROUTER_H
#define HARK_API_ROUTER_H

#include <stddef.h>

#include "net/conn.h"
#include "net/http_parser.h"

void api_handle(conn *c, const http_request *req, const char *body, size_t body_len);

/* For a request whose body has not all arrived: 0 when it may be accepted
 * once it has, else the HTTP status it will get (404 unknown path or app,
 * 401 bad key, timestamp or signature, 403 disabled app) and why in message.
 * The signature covers body_md5, so everything but that can be checked now. */
int api_check_head(conn *c, const http_request *req, char *message, size_t cap);

#endif
