/* health — unauthenticated operational endpoints: GET /, /up, /ready
 * (503 while draining) and /metrics (Prometheus text). */
#ifndef HARK_OPS_HEALTH_H
#define HARK_OPS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "net/conn.h"
#include "net/http_parser.h"
#include "webhook/webhook.h"

/* The webhooks whose counters /metrics shows (NULL: none). */
void ops_init(const webhooks *wh);

/* Is this request one of them (answered by ops_handle)? */
bool ops_owns(const http_request *req, const char *path, size_t len);
/* Answers and returns true when path is one of them. */
bool ops_handle(conn *c, const http_request *req, const char *path, size_t len);

#endif
