/* xhr_transport — pusher-js's HTTP fallbacks, xhr_streaming and
 * xhr_polling (spec §10), as transports of the Pusher session.
 *
 * A session lives at {path_prefix}/pusher/app/{key}/{server}/{session}/
 * and is reached by three kinds of POST: xhr_streaming (a response that
 * stays open and carries frames), xhr (a poll: held until something is
 * there, about 25 s at most) and xhr_send (messages from the client). The
 * first receive request of an unknown session opens it. A session belongs
 * to the worker that opened it: a request of it that another worker
 * accepted moves there with its connection (conn_release / conn_adopt),
 * so frames are written by the thread that fans them out.
 *
 * Frames are SockJS-style lines: o (open), a["<message>"] (messages, each
 * one JSON string made once per event and shared: frame_xhr), h
 * (heartbeat), c[code,"reason"] (close). */
#ifndef HARK_TRANSPORT_XHR_TRANSPORT_H
#define HARK_TRANSPORT_XHR_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/http_parser.h"

typedef struct worker worker;

/* Whether req is for an HTTP fallback session (its path). */
bool xhr_transport_match(const hk_config *cfg, const http_request *req);
/* Handles one such request (CORS preflight, receive, poll or send). */
void xhr_transport_request(conn *c, const http_request *req, const char *body, size_t len);
/* End of a loop iteration on w: answers the polls that have frames, ends
 * closed sessions. */
void xhr_transport_iteration_end(worker *w);
/* Every sweep on w: heartbeats, polls held too long, dropped receivers,
 * sessions without a receiver for too long, the session's own ticks. */
void xhr_transport_sweep(worker *w, uint64_t now_ms);
/* w stops: its sessions end as if their clients had gone. */
void xhr_transport_worker_stop(worker *w);
/* Sessions open now, all workers (for /metrics). */
long xhr_transport_sessions(void);

#endif
