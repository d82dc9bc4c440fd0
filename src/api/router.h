/* router — answers plain HTTP requests: the signed HTTP API under
 * [prefix]/apps/{app_id}/ and the health endpoints. */
#ifndef HARK_API_ROUTER_H
#define HARK_API_ROUTER_H

#include <stddef.h>

#include "net/conn.h"
#include "net/http_parser.h"

void api_handle(conn *c, const http_request *req, const char *body, size_t body_len);

#endif
