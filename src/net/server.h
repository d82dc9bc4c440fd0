/* server — binds the listener, runs the workers, drains on SIGTERM. */
#ifndef HARK_NET_SERVER_H
#define HARK_NET_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "net/conn.h"
#include "net/ip_limit.h"
#include "util/cidr.h"
#include "net/worker.h"

/* How the layers above plug into the server (main wires them). Worker
 * functions run on the worker's thread unless noted. */
typedef struct server_hooks {
    const conn_handlers *conn;
    void *ctx;
    /* On the main thread before any loop runs: the worker's data. */
    void *(*worker_init)(void *ctx, worker *w);
    /* On the main thread once every worker is initialised. */
    void (*workers_ready)(void *ctx, worker *workers, uint32_t n);
    /* After worker_wake(w). */
    void (*worker_wakeup)(void *data);
    /* At the end of every loop iteration, before output is flushed (may be
     * NULL): what other threads handed back meanwhile can join this flush. */
    void (*worker_iteration_end)(worker *w);
    /* Optional, on the worker's thread: every FLUSH_SLICE connections of a
     * flush, for what should not wait for the whole of a long one. */
    void (*worker_mid_flush)(worker *w);
    /* Every sweep (250 ms); w->id numbers the workers from 1. */
    void (*worker_sweep)(worker *w, uint32_t sweeps);
    /* On the main thread once every loop has stopped, before any teardown
     * (may be NULL). */
    void (*workers_stopped)(void *ctx);
    /* On the main thread after every loop has stopped. */
    void (*worker_free)(void *data);
} server_hooks;

typedef struct server {
    const hk_config *cfg;
    const server_hooks *hooks;
    const conn_handlers *handlers;
    worker *workers;
    uint32_t num_workers;
    long max_connections;    /* effective server-wide cap */
    atomic_long connections; /* every open connection */
    atomic_long sessions;    /* WebSocket ones: what max_connections caps */
    atomic_bool draining;
    ip_limit *per_ip;  /* NULL unless max_connections_per_ip is set */
    cidr_list trusted; /* trusted_proxies */
} server;

/* Binds and serves until SIGTERM/SIGINT, then drains. Returns the exit code. */
int server_run(const hk_config *cfg, const server_hooks *hooks);

/* Total connections across workers and whether the server is draining
 * (read by the HTTP API's /ready and the connection checks). */
long server_connections(const server *s);
long server_sessions(const server *s);

#endif
