/* poll_transport — the cheap poll ("internal" mode) for clients that
 * cannot hold a connection open: one GET returns what is new on its
 * channels since the ids it passes, and, for a signed-in user, the unread
 * counts; with wait= it is held until something arrives (docs/api.md,
 * "Polling").
 *
 * GET {path_prefix}/app/{key}/poll?channels=a,b&since=<id>,<id>[&wait=25]
 *
 * Authorization as for Server-Sent Events (transport/url_auth.h). Read by
 * the history thread in one store statement per answer. */
#ifndef HARK_TRANSPORT_POLL_TRANSPORT_H
#define HARK_TRANSPORT_POLL_TRANSPORT_H

#include <stdbool.h>

#include "net/conn.h"
#include "net/http_parser.h"

#define POLL_WAIT_MAX_S 60     /* the longest wait= */
#define POLL_LIMIT_DEFAULT 100 /* events per channel in one answer */
#define POLL_LIMIT_MAX 1000

bool poll_transport_match(const hk_config *cfg, const http_request *req);
void poll_transport_request(conn *c, const http_request *req);

#endif
