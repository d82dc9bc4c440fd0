/* webhook_queue — the queue side of the delivery thread.
 *
 * webhooks_emit (any event-loop thread) encodes an event onto the hand-off
 * list; the thread takes it from there (wh_drain_inbox), journals one item
 * per matching target, holds vacated/removed events for the grace delay and
 * queues the rest per target, where they are cut into batches for
 * webhook_delivery.c to send. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* ---- items ------------------------------------------------------------------ */

wh_item *wh_item_new(webhooks *w, wh_target *t, const char *json, size_t len, int64_t time_ms)
{
    wh_item *it = xmalloc(sizeof *it + len + 1);
    it->t = t;
    it->seq = ++w->next_seq;
    it->time_ms = time_ms;
    it->len = len;
    memcpy(it->json, json, len);
    it->json[len] = '\0';
    it->qnext = NULL;
    it->next = NULL;
    it->prev = w->live_tail;
    if (w->live_tail)
        w->live_tail->next = it;
    else
        w->live = it;
    w->live_tail = it;
    w->nlive++;
    atomic_fetch_add(&w->inmem, 1);
    atomic_fetch_add(&wh_stats_of(w, t->app_idx)->queued, 1);
    return it;
}

/* Forgets an item in memory; done says whether it is settled (the journal
 * then gets a completion record from the caller) or stays owed on disk. */
void wh_item_free(webhooks *w, wh_item *it, bool done)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        w->live = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        w->live_tail = it->prev;
    w->nlive--;
    atomic_fetch_sub(&w->inmem, 1);
    if (done)
        atomic_fetch_sub(&wh_stats_of(w, it->t->app_idx)->queued, 1);
    free(it);
}

/* ---- batches ------------------------------------------------------------------ */

/* Frees items; when done, the journal records them completed first. */
static void items_free(webhooks *w, wh_item **items, size_t n, bool done)
{
    if (done)
        wh_jfile_done(w, items, n);
    for (size_t i = 0; i < n; i++)
        wh_item_free(w, items[i], done);
}

void wh_batch_free(webhooks *w, wh_batch *b, bool done)
{
    items_free(w, b->items, b->n, done);
    free(b->items);
    free(b->body);
    free(b);
}

void wh_ready_push(wh_target *t, wh_batch *b)
{
    b->next = NULL;
    if (t->ready_tail)
        t->ready_tail->next = b;
    else
        t->ready_head = b;
    t->ready_tail = b;
}

/* Takes up to webhook_batch_max items off the queue into one request. */
static void batch_form(wh_target *t)
{
    webhooks *w = t->w;
    size_t max = w->cfg->webhook_batch_max;
    size_t n = t->qlen < max ? t->qlen : max;
    wh_batch *b = xcalloc(1, sizeof *b);
    b->t = t;
    b->items = xmalloc(n * sizeof *b->items);
    const char **texts = xmalloc(n * sizeof *texts);
    size_t *lens = xmalloc(n * sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        wh_item *it = t->qhead;
        t->qhead = it->qnext;
        it->qnext = NULL;
        b->items[i] = it;
        texts[i] = it->json;
        lens[i] = it->len;
    }
    if (!t->qhead)
        t->qtail = NULL;
    t->qlen -= n;
    b->n = n;
    buf body;
    buf_init(&body);
    wh_body(&body, wh_now_ms(), texts, lens, n);
    b->body_len = body.len;
    b->body = buf_steal(&body);
    free(texts);
    free(lens);
    wh_ready_push(t, b);
}

/* Forms batches: full ones always, the last partial one when all. */
void wh_target_flush(wh_target *t, bool all)
{
    size_t max = t->w->cfg->webhook_batch_max;
    while (t->qlen >= max || (all && t->qlen > 0))
        batch_form(t);
    if (t->qlen == 0)
        uv_timer_stop(&t->batch_timer);
    wh_pump(t);
}

void wh_on_batch_timer(uv_timer_t *h)
{
    wh_target_flush(h->data, true);
}

void wh_queue_push(wh_target *t, wh_item *it)
{
    it->qnext = NULL;
    if (t->qtail)
        t->qtail->qnext = it;
    else
        t->qhead = it;
    t->qtail = it;
    t->qlen++;
}

static void enqueue(wh_target *t, wh_item *it)
{
    wh_queue_push(t, it);
    webhooks *w = t->w;
    if (w->draining || t->qlen >= w->cfg->webhook_batch_max)
        wh_target_flush(t, w->draining);
    else if (t->qlen == 1)
        uv_timer_start(&t->batch_timer, wh_on_batch_timer, w->cfg->webhook_batch_ms, 0);
}

/* ---- events from the hub --------------------------------------------------------- */

void wh_held_release(webhooks *w, wh_hold *h)
{
    wh_held *held = h->data;
    for (size_t i = 0; i < held->n; i++)
        enqueue(held->items[i]->t, held->items[i]);
    free(held);
    wh_hold_free(h);
    (void)w;
}

/* The pair cancels out: the held event is settled without being sent. */
static void held_cancel(webhooks *w, wh_hold *h)
{
    wh_held *held = h->data;
    items_free(w, held->items, held->n, true);
    free(held);
    wh_hold_free(h);
}

static void arm_grace_timer(webhooks *w);

static void on_grace_timer(uv_timer_t *h)
{
    webhooks *w = h->data;
    wh_hold *hold;
    while ((hold = wh_grace_pop_due(&w->grace, uv_now(&w->loop))))
        wh_held_release(w, hold);
    arm_grace_timer(w);
}

static void arm_grace_timer(webhooks *w)
{
    if (!w->grace.head) {
        uv_timer_stop(&w->grace_timer);
        return;
    }
    uint64_t now = uv_now(&w->loop), due = w->grace.head->due_ms;
    uv_timer_start(&w->grace_timer, on_grace_timer, due > now ? due - now : 0, 0);
}

/* A cache_miss already waiting for the same target and channel says it
 * all: many clients hitting one empty channel make one event (as Pusher). */
static bool queued_already(const wh_target *t, const char *json, size_t len)
{
    for (const wh_item *it = t->qhead; it; it = it->qnext)
        if (it->len == len && memcmp(it->json, json, len) == 0)
            return true;
    return false;
}

static void process(webhooks *w, wh_in *in)
{
    bool vacate = in->kind == WEBHOOK_CHANNEL_VACATED || in->kind == WEBHOOK_MEMBER_REMOVED;
    bool occupy = in->kind == WEBHOOK_CHANNEL_OCCUPIED || in->kind == WEBHOOK_MEMBER_ADDED;
    bool member = in->kind == WEBHOOK_MEMBER_ADDED || in->kind == WEBHOOK_MEMBER_REMOVED;
    bool grace = w->cfg->webhook_grace_ms > 0;
    if (occupy && grace) {
        char *key = wh_grace_key(in->app_idx, member, in->channel, in->user_id);
        wh_hold *h = wh_grace_take(&w->grace, key);
        free(key);
        if (h) {
            held_cancel(w, h);
            arm_grace_timer(w);
            return;
        }
    }
    size_t first = w->app_first[in->app_idx], count = w->app_count[in->app_idx];
    wh_held *held = NULL;
    bool hold = vacate && grace && !w->draining;
    if (hold) {
        held = xmalloc(sizeof *held + count * sizeof(wh_item *));
        held->n = 0;
    }
    for (size_t i = first; i < first + count; i++) {
        wh_target *t = &w->targets[i];
        if (!wh_hook_matches(t->hook, in->kind, in->channel))
            continue;
        if (in->kind == WEBHOOK_CACHE_MISS && queued_already(t, in->json, in->len))
            continue;
        wh_item *it = wh_item_new(w, t, in->json, in->len, in->time_ms);
        wh_jfile_add_item(w, it);
        if (hold)
            held->items[held->n++] = it;
        else
            enqueue(t, it);
    }
    if (!hold)
        return;
    /* Held even with no items: the occupied/added that may follow must
     * still be cancelled for targets that only want that half. */
    char *key = wh_grace_key(in->app_idx, member, in->channel, in->user_id);
    wh_hold *old = wh_grace_take(&w->grace, key);
    if (old) /* a second vacated without an occupied between: send the first */
        wh_held_release(w, old);
    wh_grace_put(&w->grace, key, uv_now(&w->loop) + w->cfg->webhook_grace_ms, held);
    arm_grace_timer(w);
}

static void in_free(wh_in *in)
{
    free(in->channel);
    free(in->user_id);
    free(in);
}

void wh_drain_inbox(webhooks *w)
{
    uv_mutex_lock(&w->lock);
    wh_in *in = w->in_head;
    w->in_head = w->in_tail = NULL;
    uv_mutex_unlock(&w->lock);
    while (in) {
        wh_in *next = in->next;
        process(w, in);
        in_free(in);
        atomic_fetch_sub(&w->inmem, 1);
        in = next;
    }
}

/* ---- emit ------------------------------------------------------------------------- */

void webhooks_emit(webhooks *w, const hk_app *app, const webhook_event *ev)
{
    if (!w || !w->active || !app || !ev || !ev->channel)
        return;
    const hk_config *cfg = w->cfg;
    if (app < cfg->apps || app >= cfg->apps + cfg->num_apps)
        return;
    size_t idx = (size_t)(app - cfg->apps);
    if ((unsigned)ev->kind >= HK_WEBHOOK_NUM_EVENTS || !(w->interest[idx] & (1u << ev->kind)))
        return;
    if (atomic_load(&w->inmem) >= cfg->webhook_max_queue) {
        /* Bounded memory: a receiver that is down for long must not take the
         * server with it. Counted and logged, never silent. */
        if (atomic_fetch_add(&w->stats[idx].dropped, 1) % 1000 == 0)
            log_error("webhooks: app %s: %u events waiting (webhook_max_queue); dropping new ones",
                      app->id, cfg->webhook_max_queue);
        return;
    }
    buf json;
    buf_init(&json);
    if (!wh_event_encode(&json, ev)) {
        buf_free(&json);
        return;
    }
    wh_in *in = xmalloc(sizeof *in + json.len + 1);
    in->next = NULL;
    in->app_idx = idx;
    in->kind = ev->kind;
    in->time_ms = wh_now_ms();
    in->channel = xstrdup(ev->channel);
    in->user_id = ev->user_id ? xstrdup(ev->user_id) : NULL;
    in->len = json.len;
    memcpy(in->json, json.data, json.len);
    in->json[json.len] = '\0';
    buf_free(&json);

    uv_mutex_lock(&w->lock);
    bool closed = w->closed;
    if (!closed) {
        atomic_fetch_add(&w->inmem, 1);
        if (w->in_tail)
            w->in_tail->next = in;
        else
            w->in_head = in;
        w->in_tail = in;
    }
    uv_mutex_unlock(&w->lock);
    if (closed) {
        atomic_fetch_add(&w->stats[idx].dropped, 1);
        log_warn("webhooks: app %s: %s after webhooks stopped; dropped", app->id,
                 hk_webhook_event_names[ev->kind]);
        in_free(in);
        return;
    }
    uv_async_send(&w->async);
}
