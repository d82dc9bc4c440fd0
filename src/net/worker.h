/* worker — one event loop thread: its listener, its connections, and the
 * data the layers above keep per worker (data: the hub, set by main).
 *
 * Connections are owned by the worker that accepted them (shared nothing);
 * every loop iteration ends by flushing the connections that got output. */
#ifndef HARK_NET_WORKER_H
#define HARK_NET_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "util/strmap.h"

typedef struct conn conn;
typedef struct server server;

#define WORKER_READ_BUF ((size_t)256 * 1024)

/* Counters for /metrics. Each is written only by its worker's thread and may
 * be read by any (ops sums them over the workers): the owner adds with
 * stat_add (a relaxed load and store, no locked instruction on the hot
 * path), readers use stat_get. */
typedef struct worker_stats {
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t slow_consumers_closed;
    atomic_uint_fast64_t pong_timeouts;
    atomic_uint_fast64_t messages_in;
    atomic_uint_fast64_t frames_out;
    atomic_uint_fast64_t http_requests;
    atomic_uint_fast64_t requests_timed_out; /* 408: head or body not in time */
    atomic_uint_fast64_t write_timeouts;     /* output stalled past write_timeout_ms */
    atomic_uint_fast64_t input_shed;         /* closed to bring incomplete input under its bound */
    atomic_uint_fast64_t ip_refused;         /* over max_connections_per_ip */
    atomic_uint_fast64_t full_refused;       /* answered on the reserve descriptor */
    atomic_uint_fast64_t evicted;            /* idle HTTP connections closed to free a descriptor */
    atomic_uint_fast64_t early_rejected;     /* refused before reading the body (auth, app) */
} worker_stats;

typedef struct worker {
    uv_loop_t loop;
    pthread_t thread;
    int reserve_fd;       /* given up to answer one client when out of descriptors */
    conn *reserve_conn;   /* that client, while it holds the reserve */
    bool listener_paused; /* out of descriptors: retried by the sweep */
    uint32_t sweeps;
    uint64_t last_emfile_warn_ms;
    uv_poll_t listener;
    uv_poll_t epoll_watch; /* the worker's epoll set, readable when a connection has events */
    int epfd;              /* connections are watched here, not with a libuv handle each */
    conn *graveyard;       /* destroyed connections, freed after the flush pass */
    uv_check_t flush_check;
    uv_timer_t sweep_timer;
    uv_async_t wakeup;
    int listen_fd;
    uint32_t id;
    server *srv;
    const hk_config *cfg;
    void *data;  /* the layers above's per-worker state (server_hooks.worker_init) */
    conn *conns; /* all live connections */
    long num_conns;
    conn *dirty;                 /* connections with output to flush */
    bool flushing;               /* in flush_dirty */
    bool fed_in_flush;           /* requests were read during it */
    atomic_size_t pending_input; /* bytes held by incomplete requests and messages:
                                  * written by this worker only, read by any (relaxed) */
    size_t pending_budget;       /* this worker's share of max_pending_input_bytes */
    uint8_t *read_buf;
    strmap deferred;           /* reply token → connection awaiting a deferred answer */
    const char *rest_of_input; /* while a request is handled: the input read after it */
    size_t rest_of_input_len;
    uint64_t next_token; /* last reply token issued */
    bool draining;
    uint64_t drain_deadline_ms;
    worker_stats stats;
} worker;

/* Any thread: w's incomplete input in bytes (relaxed). */
static inline size_t worker_pending_input(const worker *w)
{
    return atomic_load_explicit(&w->pending_input, memory_order_relaxed);
}

/* The owning worker adds n: single writer, so no read-modify-write. */
static inline void stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Any thread: the counter's value (relaxed). */
static inline uint64_t stat_get(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void worker_mark_dirty(worker *w, conn *c);
/* Thread-safe: runs server_hooks.worker_wakeup on w's thread soon. */
void worker_wake(worker *w);
/* The client on the reserve descriptor left: keep its descriptor in
 * reserve again and accept again. */
void worker_reserve_returned(worker *w);
/* Frees c once nothing of this loop iteration can still point at it. */
void worker_bury(worker *w, conn *c);

#endif
