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
 * got a batch whose acknowledgement was lost (timeout, kill) sees it again. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* Concurrent requests per target: enough to keep up, few enough not to
 * flood a receiver that is slow. */
#define MAX_INFLIGHT 4
/* Rewrite the journal once it is this large and mostly completed records. */
#define JOURNAL_COMPACT_BYTES (16u << 20)

typedef struct wh_target wh_target;

typedef struct wh_item {
    struct wh_item *prev, *next; /* every live item, for journal rewrites */
    struct wh_item *qnext;       /* the target's queue */
    wh_target *t;
    uint64_t seq;
    int64_t time_ms;
    size_t len;
    char json[];
} wh_item;

typedef struct wh_batch {
    struct wh_batch *next; /* ready queue, retry list or in-flight list */
    wh_target *t;
    wh_item **items;
    size_t n;
    char *body;
    size_t body_len;
    unsigned attempts;
    uint64_t due_ms;
    CURL *easy;
    struct curl_slist *hdrs;
    char err[CURL_ERROR_SIZE];
} wh_batch;

struct wh_target {
    webhooks *w;
    size_t app_idx;
    const hk_app *app;
    const hk_webhook *hook;
    wh_item *qhead, *qtail;
    size_t qlen;
    uv_timer_t batch_timer;
    wh_batch *ready_head, *ready_tail;
    unsigned inflight;
};

/* A raw event from the hub, encoded, waiting for the thread. */
typedef struct wh_in {
    struct wh_in *next;
    size_t app_idx;
    enum webhook_kind kind;
    int64_t time_ms;
    char *channel, *user_id;
    size_t len;
    char json[];
} wh_in;

/* Items of one held vacated/removed event, one per matching target. */
typedef struct wh_held {
    size_t n;
    wh_item *items[];
} wh_held;

typedef struct app_stats {
    _Atomic uint64_t sent, failed, retried, dead, dropped, queued;
} app_stats;

typedef struct wh_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    webhooks *w;
} wh_sock;

struct webhooks {
    const hk_config *cfg;
    bool active; /* a thread runs */
    uint32_t *interest;
    app_stats *stats;
    _Atomic uint64_t inmem; /* hand-off entries + live items, against webhook_max_queue */

    uv_mutex_t lock; /* guards the hand-off list and the two flags below */
    wh_in *in_head, *in_tail;
    bool stopping, closed;

    /* Everything below belongs to the thread once it runs. */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t grace_timer, retry_timer, curl_timer, stop_timer;
    CURLM *multi;
    wh_target *targets;
    size_t ntargets;
    size_t *app_first, *app_count; /* targets of app i: app_first[i] .. + app_count[i] */
    wh_grace grace;
    wh_batch *retry_list, *flying;
    wh_item *live, *live_tail; /* oldest first */
    size_t nlive;
    bool draining, closing;
    uint32_t rng;

    int jfd, lockfd;
    char *dir, *jpath, *dead_dir;
    buf jbuf;
    uint64_t jsize, jbase, next_seq; /* jbase: size right after the last rewrite */
    bool jerr_logged;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static uint32_t rnd(webhooks *w)
{
    uint32_t x = w->rng; /* xorshift32: jitter only, no secrecy needed */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

static app_stats *stats_of(webhooks *w, size_t app_idx)
{
    return &w->stats[app_idx];
}

/* ---- journal -------------------------------------------------------------- */

static int write_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Writes what is buffered. Called before any request goes out, so an event
 * is on disk before a receiver can see it. */
static void journal_flush(webhooks *w)
{
    if (w->jbuf.len == 0)
        return;
    if (w->jfd >= 0) {
        int rc = write_fd(w->jfd, w->jbuf.data, w->jbuf.len);
        if (rc == 0) {
            w->jsize += w->jbuf.len;
            w->jerr_logged = false;
        } else if (!w->jerr_logged) {
            w->jerr_logged = true;
            log_error("webhooks: cannot write %s: %s; queued events are in memory only", w->jpath,
                      strerror(-rc));
        }
    }
    buf_reset(&w->jbuf);
}

static void journal_add_item(webhooks *w, const wh_item *it)
{
    if (w->jfd < 0)
        return;
    wh_jrec r = {.seq = it->seq,
                 .time_ms = it->time_ms,
                 .app_id = it->t->app->id,
                 .url = it->t->hook->url,
                 .event = it->json,
                 .event_len = it->len};
    wh_journal_add(&w->jbuf, &r);
}

/* Replaces the journal with one holding only the live items. */
static int journal_rewrite(webhooks *w)
{
    size_t n = strlen(w->jpath) + 5;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp", w->jpath);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    buf b;
    buf_init(&b);
    for (wh_item *it = w->live; rc == 0 && it; it = it->next) {
        wh_jrec r = {.seq = it->seq,
                     .time_ms = it->time_ms,
                     .app_id = it->t->app->id,
                     .url = it->t->hook->url,
                     .event = it->json,
                     .event_len = it->len};
        wh_journal_add(&b, &r);
        if (b.len > 65536) {
            rc = write_fd(fd, b.data, b.len);
            buf_reset(&b);
        }
    }
    uint64_t size = 0;
    if (rc == 0)
        rc = write_fd(fd, b.data, b.len);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0) {
        struct stat st;
        if (rc == 0 && fstat(fd, &st) == 0)
            size = (uint64_t)st.st_size;
        close(fd);
    }
    if (rc == 0 && rename(tmp, w->jpath) != 0)
        rc = -errno;
    if (rc == 0) {
        int nfd = open(w->jpath, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (nfd < 0) {
            rc = -errno;
        } else {
            if (w->jfd >= 0)
                close(w->jfd);
            w->jfd = nfd;
            w->jsize = w->jbase = size;
        }
    } else {
        unlink(tmp);
    }
    buf_free(&b);
    free(tmp);
    return rc;
}

/* Records that items are done (delivered or dead-lettered) and trims the
 * file when nothing is owed any more. */
static void journal_done(webhooks *w, wh_item **items, size_t n)
{
    if (w->jfd < 0 || n == 0)
        return;
    uint64_t *seqs = xmalloc(n * sizeof *seqs);
    for (size_t i = 0; i < n; i++)
        seqs[i] = items[i]->seq;
    wh_journal_done(&w->jbuf, seqs, n);
    free(seqs);
}

static void journal_maybe_compact(webhooks *w)
{
    if (w->jfd < 0)
        return;
    if (w->nlive == 0 && w->jsize + w->jbuf.len > 0) {
        buf_reset(&w->jbuf); /* only completions could be buffered: nothing is owed */
        if (ftruncate(w->jfd, 0) == 0)
            w->jsize = w->jbase = 0;
    } else if (w->jsize > JOURNAL_COMPACT_BYTES && w->jsize > 2 * w->jbase) {
        /* Mostly completed records by now; live ones alone never trigger it. */
        journal_flush(w);
        int rc = journal_rewrite(w);
        if (rc)
            log_error("webhooks: cannot compact %s: %s", w->jpath, strerror(-rc));
    }
}

/* ---- items ------------------------------------------------------------------ */

static wh_item *item_new(webhooks *w, wh_target *t, const char *json, size_t len, int64_t time_ms)
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
    atomic_fetch_add(&stats_of(w, t->app_idx)->queued, 1);
    return it;
}

/* Forgets an item in memory; done says whether it is settled (the journal
 * then gets a completion record from the caller) or stays owed on disk. */
static void item_free(webhooks *w, wh_item *it, bool done)
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
        atomic_fetch_sub(&stats_of(w, it->t->app_idx)->queued, 1);
    free(it);
}

/* ---- batches ------------------------------------------------------------------ */

static void pump(wh_target *t);

static void batch_free(webhooks *w, wh_batch *b, bool done)
{
    if (done)
        journal_done(w, b->items, b->n);
    for (size_t i = 0; i < b->n; i++)
        item_free(w, b->items[i], done);
    free(b->items);
    free(b->body);
    free(b);
}

static void ready_push(wh_target *t, wh_batch *b)
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
    ready_push(t, b);
}

/* Forms batches: full ones always, the last partial one when all. */
static void target_flush(wh_target *t, bool all)
{
    size_t max = t->w->cfg->webhook_batch_max;
    while (t->qlen >= max || (all && t->qlen > 0))
        batch_form(t);
    if (t->qlen == 0)
        uv_timer_stop(&t->batch_timer);
    pump(t);
}

static void on_batch_timer(uv_timer_t *h)
{
    target_flush(h->data, true);
}

static void enqueue(wh_target *t, wh_item *it)
{
    it->qnext = NULL;
    if (t->qtail)
        t->qtail->qnext = it;
    else
        t->qhead = it;
    t->qtail = it;
    t->qlen++;
    webhooks *w = t->w;
    if (w->draining || t->qlen >= w->cfg->webhook_batch_max)
        target_flush(t, w->draining);
    else if (t->qlen == 1)
        uv_timer_start(&t->batch_timer, on_batch_timer, w->cfg->webhook_batch_ms, 0);
}

static void write_dead(webhooks *w, wh_batch *b, const char *why)
{
    wh_target *t = b->t;
    wh_dead d = {.app_id = t->app->id,
                 .url = t->hook->url,
                 .body = b->body,
                 .body_len = b->body_len,
                 .failed_at_ms = wh_now_ms(),
                 .attempts = b->attempts,
                 .events = (unsigned)b->n,
                 .error = (char *)why};
    int rc = wh_dead_write(w->dead_dir, &d);
    if (rc == 0) {
        atomic_fetch_add(&stats_of(w, t->app_idx)->dead, b->n);
        log_error("webhooks: app %s: %zu event(s) to %s dead-lettered after %u attempt(s) (%s); "
                  "`hark webhooks replay %s` sends them again",
                  t->app->id, b->n, t->hook->url, b->attempts, why, d.id);
        batch_free(w, b, true);
    } else {
        /* Left owed in the journal: the next start tries them again. */
        log_error("webhooks: app %s: cannot dead-letter %zu event(s) to %s in %s: %s", t->app->id,
                  b->n, t->hook->url, w->dead_dir, strerror(-rc));
        batch_free(w, b, false);
    }
    free(d.id);
}

/* ---- curl on the loop ----------------------------------------------------------- */

static void check_done(webhooks *w);
static void maybe_finish(webhooks *w);

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    wh_sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    webhooks *w = s->w; /* s may be freed by curl's callbacks below */
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    check_done(w);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    (void)easy;
    webhooks *w = userp;
    wh_sock *s = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(w->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->fd = fd;
        s->w = w;
        if (uv_poll_init_socket(&w->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(w->multi, fd, s);
    }
    int ev = 0;
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *h)
{
    webhooks *w = h->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static int on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    webhooks *w = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&w->curl_timer);
    else /* 0 too goes through the loop: curl must not be re-entered from here */
        uv_timer_start(&w->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static bool transfer_start(webhooks *w, wh_batch *b)
{
    wh_target *t = b->t;
    b->easy = curl_easy_init();
    if (!b->easy)
        return false;
    b->hdrs = wh_headers(t->app->key, t->app->secret, b->body, b->body_len, t->hook);
    b->err[0] = '\0';
    CURL *c = b->easy;
    long timeout = (long)w->cfg->webhook_timeout_ms;
    curl_easy_setopt(c, CURLOPT_URL, t->hook->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, b->hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hark-webhooks/1.0");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, b->err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PRIVATE, b);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    b->attempts++;
    if (curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_slist_free_all(b->hdrs);
        curl_easy_cleanup(c);
        b->hdrs = NULL;
        b->easy = NULL;
        return false;
    }
    t->inflight++;
    b->next = w->flying;
    w->flying = b;
    return true;
}

static void pump(wh_target *t)
{
    webhooks *w = t->w;
    if (w->closing)
        return;
    journal_flush(w); /* nothing leaves before it is on disk */
    while (t->inflight < MAX_INFLIGHT && t->ready_head) {
        wh_batch *b = t->ready_head;
        t->ready_head = b->next;
        if (!t->ready_head)
            t->ready_tail = NULL;
        b->next = NULL;
        if (!transfer_start(w, b)) {
            write_dead(w, b, "could not start a request");
        }
    }
}

static void arm_retry_timer(webhooks *w);

static void on_retry_timer(uv_timer_t *h)
{
    webhooks *w = h->data;
    uint64_t now = uv_now(&w->loop);
    wh_batch **pp = &w->retry_list;
    while (*pp) {
        wh_batch *b = *pp;
        if (b->due_ms <= now) {
            *pp = b->next;
            ready_push(b->t, b);
            atomic_fetch_add(&stats_of(w, b->t->app_idx)->retried, 1);
            pump(b->t);
        } else {
            pp = &b->next;
        }
    }
    arm_retry_timer(w);
}

static void arm_retry_timer(webhooks *w)
{
    if (w->draining || !w->retry_list) {
        uv_timer_stop(&w->retry_timer);
        return;
    }
    uint64_t due = UINT64_MAX;
    for (wh_batch *b = w->retry_list; b; b = b->next)
        if (b->due_ms < due)
            due = b->due_ms;
    uint64_t now = uv_now(&w->loop);
    uv_timer_start(&w->retry_timer, on_retry_timer, due > now ? due - now : 0, 0);
}

/* Detaches a batch from curl and the in-flight list. */
static void transfer_end(webhooks *w, wh_batch *b)
{
    wh_batch **pp = &w->flying;
    while (*pp != b)
        pp = &(*pp)->next;
    *pp = b->next;
    b->next = NULL;
    curl_multi_remove_handle(w->multi, b->easy);
    curl_easy_cleanup(b->easy);
    curl_slist_free_all(b->hdrs);
    b->easy = NULL;
    b->hdrs = NULL;
    b->t->inflight--;
}

static void transfer_done(webhooks *w, wh_batch *b, CURLcode code)
{
    wh_target *t = b->t;
    long status = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    transfer_end(w, b);

    app_stats *st = stats_of(w, t->app_idx);
    enum wh_outcome o = wh_classify(code, status);
    if (o == WH_OK) {
        atomic_fetch_add(&st->sent, b->n);
        log_debug("webhooks: app %s: %zu event(s) delivered to %s (HTTP %ld)", t->app->id, b->n,
                  t->hook->url, status);
        batch_free(w, b, true);
        return;
    }
    atomic_fetch_add(&st->failed, 1);
    char why[CURL_ERROR_SIZE + 32];
    if (code != CURLE_OK)
        snprintf(why, sizeof why, "%s", b->err[0] ? b->err : curl_easy_strerror(code));
    else
        snprintf(why, sizeof why, "HTTP %ld", status);
    if (o == WH_RETRY && b->attempts <= w->cfg->webhook_retries) {
        uint64_t delay = wh_backoff_ms(w->cfg->webhook_backoff_ms, w->cfg->webhook_backoff_max_ms,
                                       b->attempts, rnd(w));
        b->due_ms = uv_now(&w->loop) + delay;
        b->next = w->retry_list;
        w->retry_list = b;
        if (w->draining) /* kept in the journal; the next start sends it */
            log_warn("webhooks: app %s: POST %s failed (%s) while stopping; kept for the next "
                     "start",
                     t->app->id, t->hook->url, why);
        else
            log_warn("webhooks: app %s: POST %s failed (%s); retry %u of %u in %llu ms", t->app->id,
                     t->hook->url, why, b->attempts, w->cfg->webhook_retries,
                     (unsigned long long)delay);
        arm_retry_timer(w);
        return;
    }
    write_dead(w, b, why);
}

static void check_done(webhooks *w)
{
    CURLMsg *m;
    int left;
    while (!w->closing && (m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        wh_batch *b = (wh_batch *)priv;
        CURLcode code = m->data.result; /* m is invalid after remove_handle */
        wh_target *t = b->t;
        transfer_done(w, b, code);
        pump(t);
    }
    if (w->closing)
        return;
    journal_maybe_compact(w);
    journal_flush(w);
    maybe_finish(w);
}

/* ---- events from the hub --------------------------------------------------------- */

static void held_release(webhooks *w, wh_hold *h)
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
    journal_done(w, held->items, held->n);
    for (size_t i = 0; i < held->n; i++)
        item_free(w, held->items[i], true);
    free(held);
    wh_hold_free(h);
}

static void arm_grace_timer(webhooks *w);

static void on_grace_timer(uv_timer_t *h)
{
    webhooks *w = h->data;
    wh_hold *hold;
    while ((hold = wh_grace_pop_due(&w->grace, uv_now(&w->loop))))
        held_release(w, hold);
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
        wh_item *it = item_new(w, t, in->json, in->len, in->time_ms);
        journal_add_item(w, it);
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
        held_release(w, old);
    wh_grace_put(&w->grace, key, uv_now(&w->loop) + w->cfg->webhook_grace_ms, held);
    arm_grace_timer(w);
}

static void in_free(wh_in *in)
{
    free(in->channel);
    free(in->user_id);
    free(in);
}

static void drain_inbox(webhooks *w)
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

/* ---- stopping ---------------------------------------------------------------------- */

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_POLL ? on_sock_closed : NULL);
}

static void free_held(void *data, void *ctx)
{
    wh_held *held = data;
    for (size_t i = 0; i < held->n; i++)
        item_free(ctx, held->items[i], false);
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
    drain_inbox(w); /* journaled, not sent */
    for (size_t i = 0; i < w->ntargets; i++) {
        wh_target *t = &w->targets[i];
        while (t->ready_head) {
            wh_batch *b = t->ready_head;
            t->ready_head = b->next;
            batch_free(w, b, false);
        }
        t->ready_tail = NULL;
        while (t->qhead) {
            wh_item *it = t->qhead;
            t->qhead = it->qnext;
            item_free(w, it, false);
        }
        t->qtail = NULL;
        t->qlen = 0;
    }
    while (w->retry_list) {
        wh_batch *b = w->retry_list;
        w->retry_list = b->next;
        batch_free(w, b, false);
    }
    wh_grace_free(&w->grace, free_held, w);
    /* Requests still running are abandoned: their events stay owed. */
    while (w->flying) {
        wh_batch *b = w->flying;
        transfer_end(w, b);
        batch_free(w, b, false);
    }
    journal_flush(w);
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

static void maybe_finish(webhooks *w)
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
        held_release(w, h);
    uv_timer_stop(&w->grace_timer);
    uv_timer_stop(&w->retry_timer);
    for (size_t i = 0; i < w->ntargets; i++)
        target_flush(&w->targets[i], true);
    uv_timer_start(&w->stop_timer, on_stop_timer, w->cfg->shutdown_grace_ms, 0);
    maybe_finish(w);
}

static void on_async(uv_async_t *h)
{
    webhooks *w = h->data;
    if (w->closing)
        return;
    drain_inbox(w);
    journal_maybe_compact(w);
    journal_flush(w);
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

/* ---- start / emit / stop -------------------------------------------------------------- */

static uv_once_t curl_once = UV_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static wh_target *find_target(webhooks *w, const char *app_id, const char *url)
{
    for (size_t i = 0; i < w->ntargets; i++)
        if (strcmp(w->targets[i].app->id, app_id) == 0 && strcmp(w->targets[i].hook->url, url) == 0)
            return &w->targets[i];
    return NULL;
}

/* Records of targets no longer configured, grouped into dead letters. */
typedef struct orphan {
    char *app_id, *url;
    buf events;
    unsigned n;
} orphan;

typedef struct recovery {
    webhooks *w;
    orphan *orphans;
    size_t norphans;
    size_t recovered;
} recovery;

static void on_recovered(const wh_jrec *r, void *ctx)
{
    recovery *rc = ctx;
    webhooks *w = rc->w;
    wh_target *t = find_target(w, r->app_id, r->url);
    if (t) {
        wh_item *it = item_new(w, t, r->event, r->event_len, r->time_ms);
        it->qnext = NULL;
        if (t->qtail)
            t->qtail->qnext = it;
        else
            t->qhead = it;
        t->qtail = it;
        t->qlen++;
        rc->recovered++;
        return;
    }
    orphan *o = NULL;
    for (size_t i = 0; i < rc->norphans; i++)
        if (strcmp(rc->orphans[i].app_id, r->app_id) == 0 &&
            strcmp(rc->orphans[i].url, r->url) == 0)
            o = &rc->orphans[i];
    if (!o) {
        orphan *p = realloc(rc->orphans, (rc->norphans + 1) * sizeof *p);
        if (!p)
            abort();
        rc->orphans = p;
        o = &p[rc->norphans++];
        o->app_id = xstrdup(r->app_id);
        o->url = xstrdup(r->url);
        buf_init(&o->events);
        o->n = 0;
    }
    if (o->n)
        buf_append_char(&o->events, ',');
    buf_append(&o->events, r->event, r->event_len);
    o->n++;
}

/* Opens the journal, takes back what it still owes, and writes it anew
 * with only that. Runs before the thread starts. */
static void journal_open(webhooks *w)
{
    w->jfd = -1;
    w->lockfd = -1;
    int rc = wh_mkdirs(w->dir);
    if (rc) {
        log_error("webhooks: cannot create %s: %s; webhooks are not journaled", w->dir,
                  strerror(-rc));
        return;
    }
    size_t n = strlen(w->dir) + 8;
    char *lockpath = xmalloc(n);
    snprintf(lockpath, n, "%s/lock", w->dir);
    w->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->lockfd < 0 || flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_error("webhooks: %s is in use by another hark (or cannot be opened: %s); webhooks "
                  "are not journaled",
                  lockpath, strerror(errno));
        if (w->lockfd >= 0)
            close(w->lockfd);
        w->lockfd = -1;
        free(lockpath);
        return;
    }
    free(lockpath);

    buf old;
    buf_init(&old);
    int fd = open(w->jpath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char chunk[65536];
        ssize_t k;
        while ((k = read(fd, chunk, sizeof chunk)) > 0)
            buf_append(&old, chunk, (size_t)k);
        close(fd);
    }
    recovery r = {.w = w};
    size_t bad = 0;
    if (old.len)
        wh_journal_replay(old.data, old.len, on_recovered, &r, &bad);
    buf_free(&old);
    if (bad)
        log_warn("webhooks: skipped %zu unreadable journal line(s) in %s (a write cut short)", bad,
                 w->jpath);
    for (size_t i = 0; i < r.norphans; i++) {
        orphan *o = &r.orphans[i];
        buf body;
        buf_init(&body);
        buf_printf(&body, "{\"time_ms\":%lld,\"events\":[", (long long)wh_now_ms());
        buf_append(&body, o->events.data, o->events.len);
        buf_append_str(&body, "]}");
        wh_dead d = {.app_id = o->app_id,
                     .url = o->url,
                     .body = body.data,
                     .body_len = body.len,
                     .failed_at_ms = wh_now_ms(),
                     .events = o->n,
                     .error = "webhook no longer configured"};
        int drc = wh_dead_write(w->dead_dir, &d);
        if (drc == 0)
            log_warn("webhooks: %u journaled event(s) for app %s to %s, no longer configured, "
                     "dead-lettered as %s",
                     o->n, o->app_id, o->url, d.id);
        else
            log_error("webhooks: lost %u event(s) for app %s to %s: cannot dead-letter: %s", o->n,
                      o->app_id, o->url, strerror(-drc));
        free(d.id);
        buf_free(&body);
        buf_free(&o->events);
        free(o->app_id);
        free(o->url);
    }
    free(r.orphans);
    if (r.recovered)
        log_info("webhooks: %zu undelivered event(s) taken back from %s", r.recovered, w->jpath);
    rc = journal_rewrite(w);
    if (rc) {
        log_error("webhooks: cannot write %s: %s; webhooks are not journaled", w->jpath,
                  strerror(-rc));
        if (w->jfd >= 0)
            close(w->jfd);
        w->jfd = -1;
    }
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
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);

    journal_open(w);
    for (size_t i = 0; i < w->ntargets; i++) /* recovered events go out at once */
        if (w->targets[i].qlen)
            uv_timer_start(&w->targets[i].batch_timer, on_batch_timer, 0, 0);

    if (uv_thread_create(&w->thread, thread_main, w) != 0) {
        log_error("webhooks: cannot start the delivery thread; webhooks are disabled");
        abort();
    }
    w->active = true;
    return w;
}

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
    app_stats *s = &((webhooks *)w)->stats[app - w->cfg->apps];
    out->sent = atomic_load(&s->sent);
    out->failed = atomic_load(&s->failed);
    out->retried = atomic_load(&s->retried);
    out->dead_lettered = atomic_load(&s->dead);
    out->dropped = atomic_load(&s->dropped);
    out->queued = atomic_load(&s->queued);
    return true;
}
