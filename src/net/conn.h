/* conn — one client TCP connection: reading, the output queue, closing.
 *
 * A connection starts as HTTP. A request is answered by the HTTP API, or, if
 * it is a WebSocket upgrade, the connection becomes a Pusher session. There
 * is no per-connection read buffer: bytes are read into the worker's shared
 * buffer and only an incomplete frame or request is kept.
 *
 * Output is a queue of shared frames (see hub/frame.h). Queued connections
 * are written once per loop iteration with writev, so many events for one
 * connection cost one system call. A WebSocket with more than
 * max_output_bytes unsent is a slow consumer: closed with 4100 and counted;
 * an HTTP connection over it stops being read until it drains
 * (backpressure). Output that makes no progress for write_timeout_ms
 * closes any connection.
 *
 * Slow or hostile input is bounded in time (a deadline for each request
 * head and body, an idle keep-alive timeout) and in memory (incomplete
 * input per connection, and in total per worker: over it the connections
 * whose input has been incomplete longest are shed). */
#ifndef HARK_NET_CONN_H
#define HARK_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"
#include "net/http_parser.h"
#include "net/ws_reader.h"
#include "util/buf.h"
#include "util/frame.h"

typedef struct worker worker;

enum conn_state {
    CONN_HTTP = 0, /* reading HTTP requests */
    CONN_WS,       /* WebSocket open */
    CONN_CLOSING,  /* last bytes queued; then half-close and wait for the peer's EOF */
    CONN_DEAD,     /* torn down, waiting for libuv to release the handle */
};

#define OUTQ_INLINE 4

/* A ring of frame references; cap is a power of two. Up to OUTQ_INLINE
 * entries live inside the connection, so queueing an event for an idle
 * subscriber allocates nothing; longer queues move to the heap. */
typedef struct outq {
    frame **items; /* inline or heap */
    uint32_t head, count, cap;
    uint32_t head_off; /* bytes of items[head] already written */
    size_t bytes;      /* unsent bytes */
    frame *inline_items[OUTQ_INLINE];
} outq;

/* What an HTTP connection is waiting for; each has its own deadline. */
enum http_phase {
    HTTP_HEAD = 0, /* a request head (new connection, or bytes of one arrived) */
    HTTP_BODY,     /* the rest of a body whose head was read */
    HTTP_IDLE,     /* keep-alive: nothing pending */
    HTTP_WAIT,     /* the answer was deferred (conn_defer_reply): no deadline */
};

struct ip_entry;

typedef struct conn {
    worker *w;
    /* The worker's live list (for the sweep); once dead, next links the
     * graveyard instead. next_dirty links the flush list only: a connection
     * can be on the flush list and dead at once, so the two never share. */
    struct conn *prev, *next;
    struct conn *next_dirty;
    int fd;
    uint8_t state;
    uint8_t http_phase;
    uint8_t poll_events;  /* EPOLLIN/EPOLLOUT as registered */
    bool session_open;    /* on_open was called and on_end not yet */
    bool dirty;           /* on the worker's flush list */
    bool shut_wr;         /* FIN sent; reading until the peer's EOF */
    bool http_close;      /* close after this HTTP response */
    bool input_paused;    /* output over its bound: not reading until it drains */
    bool body_checked;    /* the pending body's request passed the early auth check */
    bool refuse_full;     /* took the reserve descriptor: answer "over capacity", close */
    bool peer_trusted;    /* the peer is a trusted proxy (X-Forwarded-For is read) */
    bool counted_session; /* upgraded: counted in the server's sessions */
    uint32_t held_input;  /* bytes of incomplete input, counted in the worker's total */
    uint64_t reply_token; /* a deferred answer is awaited (conn_defer_reply); 0 = none */
    uint64_t last_recv_ms;
    uint64_t ping_sent_ms;    /* 0 = no ping outstanding */
    uint64_t deadline_ms;     /* HTTP: end of the phase; CLOSING: end of the linger */
    uint64_t input_since_ms;  /* when the incomplete input began (0 = none) */
    uint64_t out_progress_ms; /* last time output moved (or the queue started) */
    struct ip_entry *ip;      /* counted for max_connections_per_ip */
    ws_reader *reader;        /* only while a frame or message is incomplete */
    buf *http_in;             /* only while an HTTP request is incomplete */
    outq out;
    /* followed by conn_handlers.ext_size bytes for the layer above */
} conn;

/* What the layers above do with a connection; net calls up only through
 * this table (installed by main). */
typedef struct conn_handlers {
    size_t ext_size; /* per-connection state of the layer above: conn_ext() */
    /* A complete plain HTTP request (its body read). */
    void (*on_request)(conn *c, const http_request *req, const char *body, size_t body_len);
    /* A request whose body is still on its way: 0 to wait for the body,
     * else the HTTP status to refuse it with now and why (in message). */
    int (*check_head)(conn *c, const http_request *req, char *message, size_t cap);
    /* The WebSocket is open (101 sent); req is the upgrade request. */
    void (*on_open)(conn *c, const http_request *req);
    /* One complete WebSocket data message. */
    void (*on_message)(conn *c, uint8_t opcode, char *data, size_t len);
    /* Every sweep (250 ms) for an open WebSocket. */
    void (*on_tick)(conn *c, uint64_t now_ms);
    /* net closes an open WebSocket for a reason of its own (slow consumer,
     * keep-alive, drain, shed input), also one refused before on_open:
     * the layer above may say why first, then closes it with conn_close_ws
     * (net does if it did not). */
    void (*on_close)(conn *c, int code, const char *reason);
    /* The session is over (closing, or torn down): once, after on_open. */
    void (*on_end)(conn *c);
} conn_handlers;

/* The layer above's state, ext_size bytes; and back. */
static inline void *conn_ext(conn *c)
{
    return c + 1;
}
static inline conn *conn_from_ext(void *ext)
{
    return (conn *)ext - 1;
}
/* The loop's clock (ms), the config, the worker's own data (worker_data). */
uint64_t conn_now(const conn *c);
const hk_config *conn_config(const conn *c);
void *conn_worker_data(const conn *c);

/* Queues f (takes its own reference). No-op once the connection is closing. */
void conn_send(conn *c, frame *f);
/* Queues a WebSocket text frame with this payload (copied). */
void conn_send_text(conn *c, const char *payload, size_t len);
/* Queues raw bytes (an HTTP response). */
void conn_send_raw(conn *c, const void *bytes, size_t len);
/* WebSocket close: a close frame with code and reason (cut to fit, made
 * valid UTF-8); the connection stops reading messages. */
void conn_close_ws(conn *c, int code, const char *reason);
/* The answer to the request being handled will come later, from work done
 * on another thread: the connection reads no further request until
 * conn_reply_sent. Returns the token that finds it again on its worker
 * (conn_deferred), or not, when it has gone meanwhile. */
uint64_t conn_defer_reply(conn *c);
conn *conn_deferred(worker *w, uint64_t token);
/* The deferred answer is queued: the connection goes on (or closes when
 * the request asked to). */
void conn_reply_sent(conn *c);
/* The worker a connection belongs to (for conn_deferred). */
static inline worker *conn_worker(const conn *c)
{
    return c->w;
}
/* Ends an HTTP exchange: queue the response then half-close. */
void conn_close_after_flush(conn *c);
/* Tears the connection down now (socket closed, hub detached). */
void conn_destroy(conn *c);

/* Moving an HTTP connection to another worker (a session of an HTTP
 * transport belongs to one worker; its next request may reach another):
 * conn_release takes the socket away from c (c is torn down, the socket
 * stays open, counted as before) and says what conn_adopt needs to watch
 * it on the other worker's thread, with the input read behind the request
 * being handled. An HTTP connection moves once what it had to send has
 * been written (tried at once; false when the socket would block). */
typedef struct conn_handoff {
    int fd;
    struct ip_entry *ip;
    bool peer_trusted;
    char *input; /* read after the request being handled (owned), for the next */
    size_t input_len;
} conn_handoff;
bool conn_release(conn *c, conn_handoff *out);
/* On w's thread: the connection again, in HTTP state; NULL (socket
 * closed) when it could not be watched. */
conn *conn_adopt(worker *w, conn_handoff *h);
/* After the moved request is handled on its new worker: the input that
 * followed it (requests pipelined behind it) is read there. Frees it. */
void conn_adopt_input(conn *c, conn_handoff *h);

/* Worker internals. */
/* Takes fd (peer address sa); NULL when it could not be watched (closed).
 * refuse_full: accepted on the reserve descriptor at the open-file limit. */
conn *conn_accept(worker *w, int fd, const struct sockaddr *sa, bool refuse_full);
/* The sweep: deadlines of HTTP phases, stalled output, closing linger. */
void conn_check_deadlines(conn *c, uint64_t now);
/* Incomplete input over the worker's share of max_pending_input_bytes:
 * closes the connections whose input has been incomplete longest. */
void conn_shed_input(worker *w);
void conn_flush(conn *c);
/* An epoll event for c (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits). */
void conn_on_events(conn *c, uint32_t events);

#endif
