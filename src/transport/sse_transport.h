/* sse_transport — Server-Sent Events: one long-lived GET per client, for
 * code without pusher-js (EventSource in a browser, curl, a serverless
 * function). A transport of the Pusher session: the stream subscribes to
 * the channels its URL names, with the same authorization as a
 * subscription, and carries every Pusher message as an SSE record
 * (docs/api.md, "Server-Sent Events").
 *
 * GET {path_prefix}/app/{key}/sse?channels=a,b[&socket_id=…&auth=…]
 *
 * Records: "id:" (events kept in history: their id, or on a stream of
 * several channels the stream's position in each), "event:" (the Pusher
 * event name), "data:" (the Pusher message). Last-Event-ID or since=
 * resumes every channel from history, as subscribe with since does. */
#ifndef HARK_TRANSPORT_SSE_TRANSPORT_H
#define HARK_TRANSPORT_SSE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/http_parser.h"

typedef struct worker worker;

#define SSE_MAX_CHANNELS 20 /* channels one stream may carry */

bool sse_transport_match(const hk_config *cfg, const http_request *req);
void sse_transport_request(conn *c, const http_request *req);
/* Every sweep on w: streams whose client went, or whose token expired;
 * keep-alive comments; the sessions' ticks. */
void sse_transport_sweep(worker *w, uint64_t now_ms);
void sse_transport_worker_stop(worker *w);
/* Streams open now, all workers (for /metrics). */
long sse_transport_sessions(void);

#endif
