/* webhook — the delivery thread.
 *
 * webhooks_emit (any event-loop thread) encodes the event, appends it to a
 * mutex-guarded hand-off list and wakes this module's own libuv loop, which
 * runs on a dedicated thread and owns everything after that:
 *
 *   hand-off → grace holds (vacated/removed) → per-target queue → batch
 *            → libcurl multi transfer → done | retry list | dead letter
 *
 * Every event is written to the journal (data_dir/webhooks/journal) when
 * the thread takes it from the hand-off list and before any request can
 * carry it; a completion record follows once it is delivered or
 * dead-lettered. On start the journal is replayed, so what was queued
 * survives kill -9 and restarts. Delivery is at least once: a receiver that
 * got a batch whose acknowledgement was lost (timeout, kill) sees it again.
 *
 * This file starts the thread, drains it and stops it; the queue, delivery
 * and journal sides are in the files webhook_internal.h lists. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

wh_app_stats *wh_stats_of(webhooks *w, size_t app_idx)
{
    return &w->stats[app_idx];
}

/* ---- stopping ---------------------------------------------------------------------- */

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_POLL ? wh_on_sock_closed : NULL);
}

static void free_held(void *data, void *ctx)
{
    wh_held *held = data;
    for (size_t i = 0; i < held->n; i++)
        wh_item_free(ctx, held->items[i], false);
    free(held);
}

/* Everything still owed stays in the journal for the next start. */
static void finish(webhooks *w)
{
    if (w->closing)
        return;
    w->closing = true;
    uv_mutex_lock(&w->lock);
    w->closed = true;
    uv_mutex_unlock(&w->lock);
    wh_drain_inbox(w); /* journaled, not sent */
    for (size_t i = 0; i < w->ntargets; i++) {
        wh_target *t = &w->targets[i];
        while (t->ready_head) {
            wh_batch *b = t->ready_head;
            t->ready_head = b->next;
            wh_batch_free(w, b, false);
        }
        t->ready_tail = NULL;
        while (t->qhead) {
            wh_item *it = t->qhead;
            t->qhead = it->qnext;
            wh_item_free(w, it, false);
        }
        t->qtail = NULL;
        t->qlen = 0;
    }
    while (w->retry_list) {
        wh_batch *b = w->retry_list;
        w->retry_list = b->next;
        wh_batch_free(w, b, false);
    }
    wh_grace_free(&w->grace, free_held, w);
    /* Requests still running are abandoned: their events stay owed. */
    while (w->flying) {
        wh_batch *b = w->flying;
        wh_transfer_end(w, b);
        wh_batch_free(w, b, false);
    }
    wh_jfile_flush(w);
    if (w->jfd >= 0)
        fdatasync(w->jfd);
    /* curl may still call back to drop its sockets: before the handles go. */
    curl_multi_cleanup(w->multi);
    w->multi = NULL;
    uv_walk(&w->loop, close_any, NULL);
}

static void on_stop_timer(uv_timer_t *h)
{
    webhooks *w = h->data;
    if (!w->closing) {
        size_t n = 0;
        for (size_t i = 0; i < w->ntargets; i++)
            n += w->targets[i].inflight;
        log_warn("webhooks: %zu request(s) still running after shutdown_grace_ms; their events "
                 "are kept for the next start",
                 n);
    }
    finish(w);
}

void wh_maybe_finish(webhooks *w)
{
    if (!w->draining || w->closing)
        return;
    for (size_t i = 0; i < w->ntargets; i++)
        if (w->targets[i].inflight || w->targets[i].ready_head || w->targets[i].qhead)
            return;
    finish(w);
}

static void begin_drain(webhooks *w)
{
    w->draining = true;
    /* Grace-delayed events go now: nobody can come back to cancel them. */
    wh_hold *h;
    while ((h = wh_grace_pop_due(&w->grace, UINT64_MAX)))
        wh_held_release(w, h);
    uv_timer_stop(&w->grace_timer);
    uv_timer_stop(&w->retry_timer);
    for (size_t i = 0; i < w->ntargets; i++)
        wh_target_flush(&w->targets[i], true);
    uv_timer_start(&w->stop_timer, on_stop_timer, w->cfg->shutdown_grace_ms, 0);
    wh_maybe_finish(w);
}

static void on_async(uv_async_t *h)
{
    webhooks *w = h->data;
    if (w->closing)
        return;
    wh_drain_inbox(w);
    wh_jfile_maybe_compact(w);
    wh_jfile_flush(w);
    uv_mutex_lock(&w->lock);
    bool stop = w->stopping;
    uv_mutex_unlock(&w->lock);
    if (stop && !w->draining)
        begin_drain(w);
}

static void thread_main(void *arg)
{
    webhooks *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- start / stop -------------------------------------------------------------------- */

static uv_once_t curl_once = UV_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

webhooks *webhooks_start(const hk_config *cfg)
{
    webhooks *w = xcalloc(1, sizeof *w);
    w->cfg = cfg;
    w->jfd = w->lockfd = -1;
    w->interest = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof *w->interest);
    w->stats = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof *w->stats);
    w->app_first = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof *w->app_first);
    w->app_count = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof *w->app_count);
    for (size_t i = 0; i < cfg->num_apps; i++) {
        w->app_first[i] = w->ntargets;
        w->app_count[i] = cfg->apps[i].num_webhooks;
        w->ntargets += cfg->apps[i].num_webhooks;
        uint32_t m = 0;
        for (size_t k = 0; k < cfg->apps[i].num_webhooks; k++)
            m |= cfg->apps[i].webhooks[k].event_types;
        /* The occupied/added half must arrive to cancel a held event. */
        if (m & HK_WEBHOOK_CHANNEL_VACATED)
            m |= HK_WEBHOOK_CHANNEL_OCCUPIED;
        if (m & HK_WEBHOOK_MEMBER_REMOVED)
            m |= HK_WEBHOOK_MEMBER_ADDED;
        w->interest[i] = m;
    }
    if (w->ntargets == 0)
        return w; /* emit is a no-op */

    uv_once(&curl_once, curl_init_once);
    uv_mutex_init(&w->lock);
    buf_init(&w->jbuf);
    w->rng = (uint32_t)wh_now_ms() ^ ((uint32_t)getpid() << 16) ^ 0x9e3779b9u;
    if (!w->rng)
        w->rng = 1;
    w->dir = wh_dir(cfg->data_dir);
    w->dead_dir = wh_dead_dir(cfg->data_dir);
    size_t n = strlen(w->dir) + 9;
    w->jpath = xmalloc(n);
    snprintf(w->jpath, n, "%s/journal", w->dir);

    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    uv_timer_t *timers[] = {&w->grace_timer, &w->retry_timer, &w->curl_timer, &w->stop_timer};
    for (size_t i = 0; i < 4; i++) {
        uv_timer_init(&w->loop, timers[i]);
        timers[i]->data = w;
    }
    wh_grace_init(&w->grace);
    w->targets = xcalloc(w->ntargets, sizeof *w->targets);
    for (size_t i = 0; i < cfg->num_apps; i++) {
        for (size_t k = 0; k < cfg->apps[i].num_webhooks; k++) {
            wh_target *t = &w->targets[w->app_first[i] + k];
            t->w = w;
            t->app_idx = i;
            t->app = &cfg->apps[i];
            t->hook = &cfg->apps[i].webhooks[k];
            uv_timer_init(&w->loop, &t->batch_timer);
            t->batch_timer.data = t;
        }
    }
    w->multi = curl_multi_init();
    if (!w->multi)
        abort();
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, wh_on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, wh_on_curl_timeout);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);

    wh_jfile_open(w);
    for (size_t i = 0; i < w->ntargets; i++) /* recovered events go out at once */
        if (w->targets[i].qlen)
            uv_timer_start(&w->targets[i].batch_timer, wh_on_batch_timer, 0, 0);

    if (uv_thread_create(&w->thread, thread_main, w) != 0) {
        log_error("webhooks: cannot start the delivery thread; webhooks are disabled");
        abort();
    }
    w->active = true;
    return w;
}

void webhooks_stop(webhooks *w)
{
    if (!w)
        return;
    if (w->active) {
        uv_mutex_lock(&w->lock);
        w->stopping = true;
        uv_mutex_unlock(&w->lock);
        uv_async_send(&w->async);
        uv_thread_join(&w->thread);
        /* The loop has ended: every handle is closed, curl is cleaned up. */
        uv_loop_close(&w->loop);
        if (w->jfd >= 0)
            close(w->jfd);
        if (w->lockfd >= 0)
            close(w->lockfd); /* releases the flock */
        uv_mutex_destroy(&w->lock);
        buf_free(&w->jbuf);
        free(w->targets);
        free(w->dir);
        free(w->jpath);
        free(w->dead_dir);
    }
    free(w->interest);
    free(w->stats);
    free(w->app_first);
    free(w->app_count);
    free(w);
}

bool webhooks_stats(const webhooks *w, const hk_app *app, webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!w || !app || app < w->cfg->apps || app >= w->cfg->apps + w->cfg->num_apps)
        return false;
    wh_app_stats *s = &((webhooks *)w)->stats[app - w->cfg->apps];
    out->sent = atomic_load(&s->sent);
    out->failed = atomic_load(&s->failed);
    out->retried = atomic_load(&s->retried);
    out->dead_lettered = atomic_load(&s->dead);
    out->dropped = atomic_load(&s->dropped);
    out->queued = atomic_load(&s->queued);
    return true;
}
