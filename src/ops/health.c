#include "ops/health.h"

#include <string.h>

#include "hub/hub.h"
#include "net/http_response.h"
#include "net/server.h"
#include "net/worker.h"
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

static void metrics(conn *c)
{
    worker *w = c->w;
    buf b;
    buf_init(&b);
    buf_printf(&b, "# TYPE hark_connections gauge\nhark_connections %ld\n",
               server_connections(w->srv));
    buf_printf(&b, "# TYPE hark_connections_total counter\nhark_connections_total %llu\n",
               (unsigned long long)w->stats.connections_total);
    buf_printf(&b,
               "# TYPE hark_slow_consumers_closed_total counter\n"
               "hark_slow_consumers_closed_total %llu\n",
               (unsigned long long)w->stats.slow_consumers_closed);
    buf_printf(&b, "# TYPE hark_pong_timeouts_total counter\nhark_pong_timeouts_total %llu\n",
               (unsigned long long)w->stats.pong_timeouts);
    buf_printf(&b, "# TYPE hark_ws_messages_in_total counter\nhark_ws_messages_in_total %llu\n",
               (unsigned long long)w->stats.messages_in);
    buf_printf(&b, "# TYPE hark_frames_out_total counter\nhark_frames_out_total %llu\n",
               (unsigned long long)w->stats.frames_out);
    buf_printf(&b, "# TYPE hark_http_requests_total counter\nhark_http_requests_total %llu\n",
               (unsigned long long)w->stats.http_requests);
    const struct {
        const char *name;
        uint64_t value;
    } guards[] = {
        {"hark_requests_timed_out_total", w->stats.requests_timed_out},
        {"hark_write_timeouts_total", w->stats.write_timeouts},
        {"hark_incomplete_input_shed_total", w->stats.input_shed},
        {"hark_ip_limit_refused_total", w->stats.ip_refused},
        {"hark_out_of_descriptors_refused_total", w->stats.full_refused},
        {"hark_idle_http_evicted_total", w->stats.evicted},
        {"hark_requests_rejected_before_body_total", w->stats.early_rejected},
    };
    for (size_t i = 0; i < sizeof(guards) / sizeof(guards[0]); i++)
        buf_printf(&b, "# TYPE %s counter\n%s %llu\n", guards[i].name, guards[i].name,
                   (unsigned long long)guards[i].value);
    buf_printf(&b, "# TYPE hark_incomplete_input_bytes gauge\nhark_incomplete_input_bytes %zu\n",
               w->pending_input);
    hub *h = w->data;
    for (size_t i = 0; i < h->num_apps; i++) {
        hub_app *a = &h->apps[i];
        buf_printf(&b, "hark_app_connections{app=\"%s\"} %ld\n", a->cfg->id,
                   directory_connections(h->dir, a->index));
        buf_printf(&b, "hark_app_channels{app=\"%s\"} %zu\n", a->cfg->id, a->channels.count);
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
