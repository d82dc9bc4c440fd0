#include "ops/health.h"

#include <stddef.h>
#include <string.h>

#include "history/history.h"
#include "hub/hub.h"
#include "net/http_response.h"
#include "net/server.h"
#include "net/worker.h"
#include "transport/sse_transport.h"
#include "transport/xhr_transport.h"
#include "util/buf.h"
#include "webhook/webhook.h"

static const webhooks *ops_webhooks;

void ops_init(const webhooks *wh)
{
    ops_webhooks = wh;
}

static bool path_is(const char *path, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(path, want, len) == 0;
}

/* Every figure is whole-server: counters are summed over the workers.
 * Each worker's counters are single-writer atomics (net/worker.h), so
 * reading another worker's is not a race. */
static uint64_t sum_stat(const server *srv, size_t offset)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < srv->num_workers; i++) {
        const char *stats = (const char *)&srv->workers[i].stats;
        n += stat_get((const atomic_uint_fast64_t *)(const void *)(stats + offset));
    }
    return n;
}

static const struct {
    const char *name;
    size_t offset;
} counters[] = {
    {"hark_connections_total", offsetof(worker_stats, connections_total)},
    {"hark_slow_consumers_closed_total", offsetof(worker_stats, slow_consumers_closed)},
    {"hark_pong_timeouts_total", offsetof(worker_stats, pong_timeouts)},
    {"hark_ws_messages_in_total", offsetof(worker_stats, messages_in)},
    {"hark_frames_out_total", offsetof(worker_stats, frames_out)},
    {"hark_http_requests_total", offsetof(worker_stats, http_requests)},
    {"hark_requests_timed_out_total", offsetof(worker_stats, requests_timed_out)},
    {"hark_write_timeouts_total", offsetof(worker_stats, write_timeouts)},
    {"hark_incomplete_input_shed_total", offsetof(worker_stats, input_shed)},
    {"hark_ip_limit_refused_total", offsetof(worker_stats, ip_refused)},
    {"hark_out_of_descriptors_refused_total", offsetof(worker_stats, full_refused)},
    {"hark_idle_http_evicted_total", offsetof(worker_stats, evicted)},
    {"hark_requests_rejected_before_body_total", offsetof(worker_stats, early_rejected)},
};

static void metrics(conn *c)
{
    worker *w = c->w;
    const server *srv = w->srv;
    buf b;
    buf_init(&b);
    buf_printf(&b, "# TYPE hark_connections gauge\nhark_connections %ld\n",
               server_connections(srv));
    buf_printf(&b,
               "# TYPE hark_sessions gauge\nhark_sessions{transport=\"all\"} %ld\n"
               "hark_sessions{transport=\"xhr\"} %ld\nhark_sessions{transport=\"sse\"} %ld\n",
               (long)atomic_load(&srv->sessions), xhr_transport_sessions(),
               sse_transport_sessions());
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        buf_printf(&b, "# TYPE %s counter\n%s %llu\n", counters[i].name, counters[i].name,
                   (unsigned long long)sum_stat(srv, counters[i].offset));
    size_t pending = 0;
    for (uint32_t i = 0; i < srv->num_workers; i++)
        pending += worker_pending_input(&srv->workers[i]);
    buf_printf(&b, "# TYPE hark_incomplete_input_bytes gauge\nhark_incomplete_input_bytes %zu\n",
               pending);
    const worker_services *services = w->data;
    if (services->history) {
        history_stats hst = history_get_stats(services->history);
        buf_printf(&b,
                   "# TYPE hark_history_events_stored_total counter\n"
                   "hark_history_events_stored_total %llu\n"
                   "# TYPE hark_history_write_failures_total counter\n"
                   "hark_history_write_failures_total %llu\n"
                   "# TYPE hark_history_replay_bytes gauge\nhark_history_replay_bytes %llu\n"
                   "# TYPE hark_history_unread_statements_total counter\n"
                   "hark_history_unread_statements_total %llu\n"
                   "# TYPE hark_history_notes_dropped_total counter\n"
                   "hark_history_notes_dropped_total %llu\n"
                   "# TYPE hark_history_poll_statements_total counter\n"
                   "hark_history_poll_statements_total %llu\n"
                   "# TYPE hark_history_polls_waiting gauge\nhark_history_polls_waiting %llu\n",
                   (unsigned long long)hst.events_stored, (unsigned long long)hst.write_failures,
                   (unsigned long long)hst.replay_bytes, (unsigned long long)hst.unread_statements,
                   (unsigned long long)hst.notes_dropped, (unsigned long long)hst.poll_statements,
                   (unsigned long long)hst.polls_waiting);
    }
    hub *h = services->hub;
    for (size_t i = 0; i < h->num_apps; i++) {
        hub_app *a = &h->apps[i];
        buf_printf(&b, "hark_app_connections{app=\"%s\"} %ld\n", a->cfg->id,
                   directory_connections(h->dir, a->index));
        buf_printf(&b, "hark_app_channels{app=\"%s\"} %zu\n", a->cfg->id,
                   directory_channels(h->dir, a->index));
        webhook_stats ws;
        if (ops_webhooks && webhooks_stats(ops_webhooks, a->cfg, &ws)) {
            buf_printf(&b,
                       "hark_webhook_events_sent_total{app=\"%s\"} %llu\n"
                       "hark_webhook_requests_failed_total{app=\"%s\"} %llu\n"
                       "hark_webhook_requests_retried_total{app=\"%s\"} %llu\n"
                       "hark_webhook_events_dead_lettered_total{app=\"%s\"} %llu\n"
                       "hark_webhook_events_dropped_total{app=\"%s\"} %llu\n"
                       "hark_webhook_events_queued{app=\"%s\"} %llu\n",
                       a->cfg->id, (unsigned long long)ws.sent, a->cfg->id,
                       (unsigned long long)ws.failed, a->cfg->id, (unsigned long long)ws.retried,
                       a->cfg->id, (unsigned long long)ws.dead_lettered, a->cfg->id,
                       (unsigned long long)ws.dropped, a->cfg->id, (unsigned long long)ws.queued);
        }
    }
    http_respond(c, 200, "text/plain; version=0.0.4", b.data, b.len, NULL);
    buf_free(&b);
}

bool ops_owns(const http_request *req, const char *path, size_t len)
{
    return req->method_len == 3 && memcmp(req->method, "GET", 3) == 0 &&
           (path_is(path, len, "/") || path_is(path, len, "/up") || path_is(path, len, "/ready") ||
            path_is(path, len, "/metrics"));
}

bool ops_handle(conn *c, const http_request *req, const char *path, size_t len)
{
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
        return false;
    if (path_is(path, len, "/") || path_is(path, len, "/up")) {
        http_respond(c, 200, "text/plain", "OK\n", 3, NULL);
        return true;
    }
    if (path_is(path, len, "/ready")) {
        if (c->w->srv->draining)
            http_respond(c, 503, "text/plain", "draining\n", 9, NULL);
        else
            http_respond(c, 200, "text/plain", "ready\n", 6, NULL);
        return true;
    }
    if (path_is(path, len, "/metrics")) {
        metrics(c);
        return true;
    }
    return false;
}
