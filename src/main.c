/* hark — a self-hosted Pusher Channels server.
 *
 * main does the wiring: the server (net/) calls the layers above only
 * through the handlers and hooks installed here — a connection's HTTP
 * requests go to the API router, its WebSocket carries a Pusher session
 * (transport/); each
 * worker gets a hub, the hubs share one directory, and webhooks observe the
 * hubs. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/router.h"
#include "config/config.h"
#include "history/history.h"
#include "hub/directory.h"
#include "hub/hub.h"
#include "net/server.h"
#include "ops/health.h"
#include "net/worker.h"
#include "transport/ws_transport.h"
#include "transport/poll_transport.h"
#include "transport/sse_transport.h"
#include "transport/xhr_transport.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "webhook/webhook.h"

extern char **environ;

/* What the hooks share. */
typedef struct wiring {
    const hk_config *cfg;
    webhooks *webhooks;
    history *history;
    directory *dir;
    hub **hubs; /* one per worker, in worker order */
    uint32_t num_hubs;
    worker *workers;
    uint32_t num_workers;
} wiring;

#define CHANNEL_SWEEP_EVERY 40 /* sweeps: expired cache channels every ~10 s */
#define TYPING_SWEEP_EVERY 4   /* sweeps: typing states past their ttl every ~1 s */

/* Webhooks observe the hub: its first seven kinds are webhook kinds. */
static void webhook_observer(void *ctx, const hk_app *app, const hub_event *ev)
{
    if (ev->kind > HUB_SUBSCRIPTION_COUNT)
        return;
    webhook_event we = {.kind = (enum webhook_kind)ev->kind,
                        .channel = ev->channel,
                        .user_id = ev->user_id,
                        .event = ev->event,
                        .data = ev->data,
                        .data_len = ev->data_len,
                        .socket_id = ev->socket_id,
                        .subscription_count = ev->subscription_count};
    webhooks_emit(ctx, app, &we);
}

static void *worker_init(void *ctx, worker *w)
{
    wiring *wr = ctx;
    /* Socket ids start with node_id * 10000 + the worker's number (at most
     * 1024): unique per worker and per node. */
    hub *h = hub_new(wr->cfg, wr->cfg->node_id * 10000u + w->id);
    hub_observe(h, webhook_observer, wr->webhooks);
    wr->hubs = xrealloc(wr->hubs, (wr->num_hubs + 1) * sizeof(*wr->hubs));
    wr->hubs[wr->num_hubs++] = h;
    worker_services *ws = xmalloc(sizeof(*ws));
    *ws = (worker_services){.hub = h, .history = wr->history};
    return ws;
}

static void wake_worker(void *w)
{
    worker_wake(w);
}

static void workers_ready(void *ctx, worker *workers, uint32_t n)
{
    wiring *wr = ctx;
    wr->workers = workers;
    wr->num_workers = n;
    for (uint32_t i = 0; i < n; i++)
        hub_join_group(wr->hubs[i], wr->dir, wr->hubs, n, wake_worker, &workers[i]);
}

/* Replies after the inbox: the flush writes the connections made dirty
 * last first, so an answer goes out before a fan-out drained with it. */
static void worker_wakeup(void *data)
{
    hub_drain_inbox(((worker_services *)data)->hub);
    hub_drain_replies(((worker_services *)data)->hub);
}

/* A deferred answer (a stored REST trigger's) goes out without waiting for
 * the rest of a long fan-out flush. */
static void worker_mid_flush(worker *w)
{
    hub_poll_replies(((worker_services *)w->data)->hub);
}

/* Before the flush: what the history thread stored while this iteration
 * ran (a long fan-out, typically) goes out in this same flush, so a REST
 * call read at the start of an iteration is delivered and answered at its
 * end rather than one iteration later. */
static void worker_iteration_end(worker *w)
{
    worker_services *ws = w->data;
    hub_drain_inbox(ws->hub);
    hub_drain_replies(ws->hub);
    xhr_transport_iteration_end(w);
}

static void worker_sweep(worker *w, uint32_t sweeps)
{
    worker_services *ws = w->data;
    if (w->id == 1 && sweeps % CHANNEL_SWEEP_EVERY == 0)
        hub_sweep(ws->hub);
    if (w->id == 1 && sweeps % TYPING_SWEEP_EVERY == 0)
        hub_typing_expire(ws->hub);
    xhr_transport_sweep(w, uv_now(&w->loop));
    sse_transport_sweep(w, uv_now(&w->loop));
}

/* Before the hubs go: the history thread finishes what is queued (its
 * answers land in the hubs' inboxes) and stops. */
static void workers_stopped(void *ctx)
{
    wiring *wr = ctx;
    /* HTTP fallback sessions end while every hub is still there */
    for (uint32_t i = 0; i < wr->num_workers; i++) {
        xhr_transport_worker_stop(&wr->workers[i]);
        sse_transport_worker_stop(&wr->workers[i]);
    }
    history_stop(wr->history);
    wr->history = NULL;
}

static void worker_free(void *data)
{
    worker_services *ws = data;
    hub_free(ws->hub);
    free(ws);
}

/* Plain HTTP requests: pusher-js's fallback transports, event streams,
 * else the HTTP API. */
static void on_request(conn *c, const http_request *req, const char *body, size_t len)
{
    if (xhr_transport_match(conn_config(c), req))
        xhr_transport_request(c, req, body, len);
    else if (sse_transport_match(conn_config(c), req))
        sse_transport_request(c, req);
    else if (poll_transport_match(conn_config(c), req))
        poll_transport_request(c, req);
    else
        api_handle(c, req, body, len);
}

static int check_head(conn *c, const http_request *req, char *message, size_t cap)
{
    if (xhr_transport_match(conn_config(c), req))
        return 0; /* a session's messages: bounded by max_request_bytes */
    return api_check_head(c, req, message, cap);
}

static const conn_handlers handlers = {
    .on_request = on_request,
    .check_head = check_head,
    .on_open = ws_transport_open,
    .on_message = ws_transport_message,
    .on_tick = ws_transport_tick,
    .on_close = ws_transport_on_close,
    .on_end = ws_transport_end,
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* past a file size limit a write fails (EFBIG): the store says so */
    if (argc > 1 && strcmp(argv[1], "webhooks") == 0) /* hark webhooks dead|replay */
        return webhooks_cli_main(argc, argv, environ);
    hk_config cfg;
    char err[512];
    int rc = config_load(&cfg, argc, argv, environ, err, sizeof(err));
    if (rc == CONFIG_EXIT)
        return 0;
    if (rc != CONFIG_OK) {
        fprintf(stderr, "hark: %s\n", err);
        return 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    if (mkdir(cfg.data_dir, 0755) != 0 && errno != EEXIST)
        log_warn("cannot create data_dir %s: %s", cfg.data_dir, strerror(errno));
    webhooks *wh = webhooks_start(&cfg);
    ops_init(wh);
    const hk_app *first = &cfg.apps[0];
    log_info("connect with: new Pusher('%s', { wsHost: '%s', wsPort: %d, forceTLS: false, "
             "enabledTransports: ['ws'], cluster: '' })",
             first->key, cfg.host, cfg.port);

    history *hs = history_start(&cfg, err, sizeof(err));
    if (!hs) {
        fprintf(stderr, "hark: history: %s\n", err);
        webhooks_stop(wh);
        config_free(&cfg);
        return 2;
    }
    wiring wr = {.cfg = &cfg, .webhooks = wh, .history = hs, .dir = directory_new(&cfg)};
    conn_handlers conn_table = handlers;
    conn_table.ext_size = ws_transport_ext_size;
    server_hooks hooks = {.conn = &conn_table,
                          .ctx = &wr,
                          .worker_init = worker_init,
                          .workers_ready = workers_ready,
                          .worker_wakeup = worker_wakeup,
                          .worker_sweep = worker_sweep,
                          .worker_iteration_end = worker_iteration_end,
                          .worker_mid_flush = worker_mid_flush,
                          .workers_stopped = workers_stopped,
                          .worker_free = worker_free};
    int exit_code = server_run(&cfg, &hooks);
    history_stop(wr.history); /* when the server could not start */
    directory_free(wr.dir);
    free(wr.hubs);
    webhooks_stop(wh);
    config_free(&cfg);
    return exit_code;
}
