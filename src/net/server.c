#include "net/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/conn.h"
#include "net/conn_internal.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SWEEP_INTERVAL_MS 250
#define FLUSH_SLICE 256 /* connections flushed between two worker_mid_flush */

/* Set by the signal handler, read by the sweep timer. */
static volatile sig_atomic_t stop_requested;

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
    uint32_t flushed = 0;
    w->flushing = true;
    while ((c = w->dirty) != NULL) {
        w->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        if (c->state != CONN_DEAD)
            conn_flush(c);
        if (++flushed % FLUSH_SLICE == 0 && w->srv->hooks->worker_mid_flush)
            w->srv->hooks->worker_mid_flush(w);
    }
    w->flushing = false;
}

void worker_bury(worker *w, conn *c)
{
    /* c is off the live list, so its `next` is free to chain the dead; its
     * flush-list link is left alone (it may still be on that list). */
    c->next = w->graveyard;
    w->graveyard = c;
}

/* Runs after the flush pass. A dead connection still on the flush list
 * (made dirty after the pass, e.g. by a detach during shutdown) waits for
 * the next pass: the list would otherwise point into freed memory. */
static void free_graveyard(worker *w)
{
    conn **link = &w->graveyard;
    conn *c;
    while ((c = *link) != NULL) {
        if (c->dirty) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        free(c);
    }
}

static void on_check(uv_check_t *h)
{
    worker *w = h->data;
    if (w->srv->hooks->worker_iteration_end)
        w->srv->hooks->worker_iteration_end(w);
    flush_dirty(w);
    /* Requests read during the flush (held input resumed once an answer
     * went out) may have left work for the iteration's end: do it now
     * rather than at the next wake-up, which may be a sweep away. */
    for (int round = 0; round < 4 && w->fed_in_flush; round++) {
        w->fed_in_flush = false;
        if (w->srv->hooks->worker_iteration_end)
            w->srv->hooks->worker_iteration_end(w);
        flush_dirty(w);
    }
    w->fed_in_flush = false;
    free_graveyard(w);
}

/* The epoll set became readable: dispatch its events in batches. */
static void on_epoll(uv_poll_t *h, int status, int events)
{
    worker *w = h->data;
    struct epoll_event evs[256];
    for (int round = 0; round < 16; round++) {
        int n = epoll_wait(w->epfd, evs, 256, 0);
        for (int i = 0; i < n; i++)
            conn_on_events(evs[i].data.ptr, evs[i].events);
        if (n < 256)
            break;
    }
}

long server_connections(const server *s)
{
    return atomic_load(&((server *)s)->connections);
}

long server_sessions(const server *s)
{
    return atomic_load(&((server *)s)->sessions);
}

static void pause_listener(worker *w)
{
    if (!w->listener_paused && w->listen_fd >= 0) {
        uv_poll_stop(&w->listener);
        w->listener_paused = true;
    }
}

static void on_listener(uv_poll_t *h, int status, int events);

static void resume_listener(worker *w)
{
    if (w->listener_paused && w->listen_fd >= 0) {
        uv_poll_start(&w->listener, UV_READABLE, on_listener);
        w->listener_paused = false;
    }
}

void worker_reserve_returned(worker *w)
{
    w->reserve_conn = NULL;
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    resume_listener(w);
}

#define EVICT_BATCH 16
#define EVICT_MIN_AGE_MS 1000 /* a client just accepted has had no chance to speak */

/* Out of descriptors: closes up to EVICT_BATCH plain HTTP connections that
 * hold no request being served (silent, idle keep-alive, or a head still
 * trickling in) and have waited at least EVICT_MIN_AGE_MS, those closest
 * to their deadline first, so that a flood of slow clients cannot keep new
 * ones out. Returns how many it closed. */
static int evict_idle_http(worker *w)
{
    conn *pick[EVICT_BATCH];
    int n = 0;
    uint64_t now = uv_now(&w->loop);
    const hk_config *cfg = w->cfg;
    for (conn *c = w->conns; c; c = c->next) {
        if (c->state != CONN_HTTP || c->http_phase == HTTP_BODY || c->http_phase == HTTP_WAIT ||
            c->out.count > 0 || c == w->reserve_conn)
            continue;
        uint32_t phase_ms =
            c->http_phase == HTTP_HEAD ? cfg->http_header_timeout_ms : cfg->http_idle_timeout_ms;
        if (c->deadline_ms + EVICT_MIN_AGE_MS > now + phase_ms)
            continue; /* began less than EVICT_MIN_AGE_MS ago */
        int i = n < EVICT_BATCH ? n++ : EVICT_BATCH;
        /* keep pick[] sorted by deadline: insert c, dropping the latest */
        while (i > 0 && pick[i - 1]->deadline_ms > c->deadline_ms) {
            if (i < EVICT_BATCH)
                pick[i] = pick[i - 1];
            i--;
        }
        if (i < EVICT_BATCH)
            pick[i] = c;
    }
    for (int i = 0; i < n; i++)
        conn_destroy(pick[i]);
    stat_add(&w->stats.evicted, (uint64_t)n);
    return n;
}

/* Out of descriptors with nothing to evict: the reserve one lets a single
 * client in to be told "over capacity" (a 4100 close, or 503) instead of
 * hanging in the backlog or seeing a reset. Until it leaves, accepting
 * pauses (the sweep retries). */
static void accept_on_reserve(worker *w)
{
    if (uv_now(&w->loop) - w->last_emfile_warn_ms > 5000) {
        log_warn("out of file descriptors (%ld connections): refusing new ones",
                 server_connections(w->srv));
        w->last_emfile_warn_ms = uv_now(&w->loop);
    }
    pause_listener(w);
    if (w->reserve_fd < 0)
        return;
    close(w->reserve_fd);
    w->reserve_fd = -1;
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    int fd =
        accept4(w->listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn *c = fd >= 0 ? conn_accept(w, fd, (struct sockaddr *)&peer, true) : NULL;
    if (c)
        w->reserve_conn = c; /* conn_destroy takes the reserve back */
    else
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listener(uv_poll_t *h, int status, int events)
{
    worker *w = h->data;
    for (int i = 0; i < 128; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(w->listen_fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_accept(w, fd, (struct sockaddr *)&peer, false);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE) {
            if (evict_idle_http(w) > 0)
                continue;
            accept_on_reserve(w);
        }
        break;
    }
}

/* Leaves the listening group: the kernel sends new clients to the workers
 * still serving, or refuses them once none is, instead of queueing them
 * where nobody will accept. */
static void close_listener(worker *w)
{
    if (w->listen_fd < 0)
        return;
    uv_poll_stop(&w->listener);
    close(w->listen_fd);
    w->listen_fd = -1;
}

static void start_drain(worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    atomic_store(&w->srv->draining, true);
    w->drain_deadline_ms = uv_now(&w->loop) + w->cfg->shutdown_grace_ms;
    /* The listener stays open while draining: new clients are answered
     * (upgrades closed with 4200, /ready 503) rather than reset at exit. */
    log_info("worker %u shutting down: closing %ld connections with 4200", w->id, w->num_conns);
    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_WS)
            conn_close_session(c, 4200, "Server is shutting down");
        else if (c->state == CONN_HTTP && !c->http_in && c->out.count == 0 && !c->reply_token)
            conn_destroy(c);
    }
    flush_dirty(w);
}

static void on_sweep(uv_timer_t *t)
{
    worker *w = t->data;
    const hk_config *cfg = w->cfg;
    uint64_t now = uv_now(&w->loop);

    if (stop_requested && !w->draining)
        start_drain(w);

    if (w->reserve_fd < 0 && !w->reserve_conn) /* lost to another thread at the limit */
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->listener_paused)
        resume_listener(w); /* accepting evicts or pauses again if still out */

    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (w->draining && c->state == CONN_HTTP && c->http_phase == HTTP_IDLE &&
            c->out.count == 0) {
            conn_destroy(c); /* idle keep-alive: nothing to finish */
            continue;
        }
        conn_check_deadlines(c, now);
        if (c->state != CONN_WS)
            continue;
        if (c->ping_sent_ms == 0) {
            if (now - c->last_recv_ms >= cfg->ping_interval_ms) {
                static const uint8_t ping[2] = {0x89, 0x00};
                conn_send_raw(c, ping, sizeof(ping));
                c->ping_sent_ms = now;
            }
        } else if (now - c->ping_sent_ms >= cfg->pong_timeout_ms) {
            stat_add(&w->stats.pong_timeouts, 1);
            conn_close_session(c, 4201, "Pong reply not received in time");
            continue;
        }
        w->srv->handlers->on_tick(c, now);
    }
    w->srv->hooks->worker_sweep(w, ++w->sweeps);
    flush_dirty(w);

    if (w->draining && (w->num_conns == 0 || now >= w->drain_deadline_ms)) {
        close_listener(w);
        while (w->conns)
            conn_destroy(w->conns);
        flush_dirty(w);
        uv_stop(&w->loop);
    }
    free_graveyard(w);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int open_listener(const hk_config *cfg, bool reuseport)
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
        if (reuseport) /* one listener per worker; the kernel spreads connections */
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
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
    long fit = (long)rl.rlim_cur - 64; /* listeners, logs, storage, webhooks */
    if (cfg->max_connections >= 0 && cfg->max_connections > fit)
        log_warn("max_connections %ld exceeds what the open-file limit (%llu) allows; at most "
                 "%ld connections will be accepted",
                 cfg->max_connections, (unsigned long long)rl.rlim_cur, fit);
    return cfg->max_connections < 0 || cfg->max_connections > fit ? fit : cfg->max_connections;
}

static void on_wakeup(uv_async_t *a)
{
    worker *w = a->data;
    w->srv->hooks->worker_wakeup(w->data);
}

void worker_wake(worker *w)
{
    uv_async_send(&w->wakeup);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static uint32_t worker_count(const hk_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (uint32_t)n;
}

int server_run(const hk_config *cfg, const server_hooks *hooks)
{
    server *srv = xcalloc(1, sizeof(*srv));
    srv->cfg = cfg;
    srv->hooks = hooks;
    srv->handlers = hooks->conn;
    srv->max_connections = raise_fd_limit(cfg);
    atomic_init(&srv->connections, 0);
    atomic_init(&srv->sessions, 0);
    atomic_init(&srv->draining, false);
    uint32_t n = worker_count(cfg);
    if (cfg->max_connections_per_ip > 0)
        srv->per_ip = ip_limit_new(cfg->max_connections_per_ip);
    cidr_list_parse(cfg->trusted_proxies, &srv->trusted); /* checked when loaded */
    srv->workers = calloc(n, sizeof(*srv->workers));
    if (!srv->workers)
        abort();

    int exit_code = 0;
    uint32_t started = 0;
    for (uint32_t i = 0; i < n; i++) {
        worker *w = &srv->workers[i];
        w->listen_fd = open_listener(cfg, n > 1);
        if (w->listen_fd < 0) {
            exit_code = 1;
            break;
        }
        w->srv = srv;
        w->cfg = cfg;
        w->id = i + 1;
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        w->read_buf = xmalloc(WORKER_READ_BUF);
        strmap_init(&w->deferred);
        w->pending_budget = cfg->max_pending_input_bytes / n;
        w->data = hooks->worker_init(hooks->ctx, w);
        uv_loop_init(&w->loop);
        uv_poll_init_socket(&w->loop, &w->listener, w->listen_fd);
        w->listener.data = w;
        uv_poll_start(&w->listener, UV_READABLE, on_listener);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            log_error("epoll_create1: %s", strerror(errno));
            abort();
        }
        uv_poll_init(&w->loop, &w->epoll_watch, w->epfd);
        w->epoll_watch.data = w;
        uv_poll_start(&w->epoll_watch, UV_READABLE, on_epoll);
        uv_check_init(&w->loop, &w->flush_check);
        w->flush_check.data = w;
        uv_check_start(&w->flush_check, on_check);
        uv_timer_init(&w->loop, &w->sweep_timer);
        w->sweep_timer.data = w;
        uv_timer_start(&w->sweep_timer, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
        started++;
    }
    srv->num_workers = started;
    hooks->workers_ready(hooks->ctx, srv->workers, started);

    if (exit_code == 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        log_info("hark listening on %s:%d with %u worker%s (%zu app%s)", cfg->host, cfg->port,
                 started, started == 1 ? "" : "s", cfg->num_apps, cfg->num_apps == 1 ? "" : "s");
        for (uint32_t i = 1; i < started; i++)
            pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
        uv_run(&srv->workers[0].loop, UV_RUN_DEFAULT);
        for (uint32_t i = 1; i < started; i++)
            pthread_join(srv->workers[i].thread, NULL);
    }

    if (hooks->workers_stopped)
        hooks->workers_stopped(hooks->ctx);
    /* every loop has stopped: no thread touches another's inbox any more */
    for (uint32_t i = 0; i < started; i++) {
        worker *w = &srv->workers[i];
        while (w->conns)
            conn_destroy(w->conns);
        flush_dirty(w); /* only dead connections are left on it: clears their flags */
        free_graveyard(w);
        uv_walk(&w->loop, close_walk, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        close(w->epfd);
        if (w->reserve_fd >= 0)
            close(w->reserve_fd);
        hooks->worker_free(w->data);
        free(w->read_buf);
        strmap_free(&w->deferred);
    }
    ip_limit_free(srv->per_ip);
    cidr_list_free(&srv->trusted);
    free(srv->workers);
    free(srv);
    if (exit_code == 0)
        log_info("stopped");
    return exit_code;
}
