/* server — binds the listener, runs the workers, drains on SIGTERM. */
#ifndef HARK_NET_SERVER_H
#define HARK_NET_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "net/ip_limit.h"
#include "util/cidr.h"
#include "net/worker.h"
#include "webhook/webhook.h"

typedef struct server {
    const hk_config *cfg;
    webhooks *webhooks;
    worker *workers;
    uint32_t num_workers;
    long max_connections;    /* effective server-wide cap */
    atomic_long connections; /* every open connection */
    atomic_long sessions;    /* WebSocket ones: what max_connections caps */
    atomic_bool draining;
    directory *dir;
    ip_limit *per_ip;  /* NULL unless max_connections_per_ip is set */
    cidr_list trusted; /* trusted_proxies */
} server;

/* Binds and serves until SIGTERM/SIGINT, then drains. Returns the exit code. */
int server_run(const hk_config *cfg, webhooks *wh);

/* Total connections across workers and whether the server is draining
 * (read by the HTTP API's /ready and the connection checks). */
long server_connections(const server *s);
long server_sessions(const server *s);

#endif
