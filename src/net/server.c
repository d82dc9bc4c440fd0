#include "net/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/conn.h"
#include "session/session.h"
#include "util/log.h"

#define SWEEP_INTERVAL_MS 250
#define CHANNEL_SWEEP_EVERY 40 /* sweeps: expired cache channels every ~10 s */

/* Set by the signal handler, read by the sweep timer. */
static volatile sig_atomic_t stop_requested;
static int reserve_fd = -1; /* given up to accept-and-close when out of descriptors */

void worker_mark_dirty(worker *w, conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = w->dirty;
    w->dirty = c;
}

static void flush_dirty(worker *w)
{
    conn *c;
    while ((c = w->dirty) != NULL) {
        w->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        if (c->state != CONN_DEAD)
            conn_flush(c);
    }
}

static void on_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

long server_connections(const server *s)
{
    long n = 0;
    for (uint32_t i = 0; i < s->num_workers; i++)
        n += s->workers[i].num_conns;
    return n;
}

static void on_listener(uv_poll_t *h, int status, int events)
{
    worker *w = h->data;
    for (int i = 0; i < 128; i++) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_accept(w, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE) {
            /* Out of descriptors: accept and drop one so the client hears
             * about it at once instead of hanging in the backlog. */
            static uint64_t last_warn;
            if (uv_now(&w->loop) - last_warn > 5000) {
                log_warn("out of file descriptors (%ld connections): refusing new ones",
                         w->num_conns);
                last_warn = uv_now(&w->loop);
            }
            if (reserve_fd >= 0) {
                close(reserve_fd);
                int fd2 = accept(w->listen_fd, NULL, NULL);
                if (fd2 >= 0)
                    close(fd2);
                reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
        }
        break;
    }
}

static void start_drain(worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->srv->draining = true;
    w->drain_deadline_ms = uv_now(&w->loop) + w->cfg->shutdown_grace_ms;
    uv_poll_stop(&w->listener);
    log_info("shutting down: closing %ld connections with 4200", w->num_conns);
    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_WS)
            conn_close_ws(c, 4200, "Server is shutting down");
        else if (c->state == CONN_HTTP && c->http_in.len == 0 && c->out.count == 0)
            conn_destroy(c);
    }
    flush_dirty(w);
}

static void on_sweep(uv_timer_t *t)
{
    worker *w = t->data;
    const hk_config *cfg = w->cfg;
    uint64_t now = uv_now(&w->loop);
    static uint32_t sweeps;

    if (stop_requested && !w->draining)
        start_drain(w);

    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_CLOSING) {
            if (now >= c->close_deadline_ms)
                conn_destroy(c);
            continue;
        }
        if (c->state == CONN_HTTP) {
            if (now - c->last_recv_ms > 60000 && c->out.count == 0)
                conn_destroy(c); /* idle keep-alive or a request that never completes */
            continue;
        }
        if (c->state != CONN_WS)
            continue;
        if (c->ping_sent_ms == 0) {
            if (now - c->last_recv_ms >= cfg->ping_interval_ms) {
                static const uint8_t ping[2] = {0x89, 0x00};
                conn_send_raw(c, ping, sizeof(ping));
                c->ping_sent_ms = now;
            }
        } else if (now - c->ping_sent_ms >= cfg->pong_timeout_ms) {
            w->stats.pong_timeouts++;
            conn_close_ws(c, 4201, "Pong reply not received in time");
            continue;
        }
        session_sweep(c, now);
    }
    if (++sweeps % CHANNEL_SWEEP_EVERY == 0)
        hub_sweep(w->hub);
    flush_dirty(w);

    if (w->draining && (w->num_conns == 0 || now >= w->drain_deadline_ms)) {
        while (w->conns)
            conn_destroy(w->conns);
        uv_stop(&w->loop);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int open_listener(const hk_config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve host %s: %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
            break;
        log_error("cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Raises the open-file soft limit to the hard limit; returns how many
 * connections fit. */
static long raise_fd_limit(const hk_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return cfg->max_connections;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_info("raised the open-file limit from %llu to %llu", (unsigned long long)old,
                     (unsigned long long)rl.rlim_max);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    long fit = (long)rl.rlim_cur - 64; /* listener, logs, storage, webhooks */
    if (cfg->max_connections >= 0 && cfg->max_connections > fit)
        log_warn("max_connections %ld exceeds what the open-file limit (%llu) allows; at most "
                 "%ld connections will be accepted",
                 cfg->max_connections, (unsigned long long)rl.rlim_cur, fit);
    return cfg->max_connections < 0 || cfg->max_connections > fit ? fit : cfg->max_connections;
}

static void webhook_bridge(void *ctx, const hk_app *app, const webhook_event *ev)
{
    webhooks_emit(ctx, app, ev);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int server_run(const hk_config *cfg, webhooks *wh)
{
    server srv = {.cfg = cfg, .webhooks = wh};
    srv.max_connections = raise_fd_limit(cfg);
    if (cfg->workers > 1)
        log_warn("workers = %u: this build serves from one event loop", cfg->workers);

    int fd = open_listener(cfg);
    if (fd < 0)
        return 1;
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    worker *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    srv.workers = w;
    srv.num_workers = 1;
    w->srv = &srv;
    w->cfg = cfg;
    w->id = 1;
    w->listen_fd = fd;
    w->read_buf = malloc(WORKER_READ_BUF);
    if (!w->read_buf)
        abort();
    w->hub = hub_new(cfg, w->id, webhook_bridge, wh);
    uv_loop_init(&w->loop);
    uv_poll_init_socket(&w->loop, &w->listener, fd);
    w->listener.data = w;
    uv_poll_start(&w->listener, UV_READABLE, on_listener);
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, on_check);
    uv_timer_init(&w->loop, &w->sweep_timer);
    w->sweep_timer.data = w;
    uv_timer_start(&w->sweep_timer, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    log_info("hark listening on %s:%d (%zu app%s)", cfg->host, cfg->port, cfg->num_apps,
             cfg->num_apps == 1 ? "" : "s");
    uv_run(&w->loop, UV_RUN_DEFAULT);

    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    close(fd);
    if (reserve_fd >= 0)
        close(reserve_fd);
    hub_free(w->hub);
    free(w->read_buf);
    free(w);
    log_info("stopped");
    return 0;
}
