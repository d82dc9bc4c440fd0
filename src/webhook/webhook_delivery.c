/* webhook_delivery — batches onto the wire: libcurl's multi interface
 * driven by the thread's libuv loop (sockets and timer), one request per
 * batch, up to MAX_INFLIGHT per target; failures are retried with backoff
 * and, past webhook_retries or on a final failure, dead-lettered. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Concurrent requests per target: enough to keep up, few enough not to
 * flood a receiver that is slow. */
#define MAX_INFLIGHT 4

static uint32_t rnd(webhooks *w)
{
    uint32_t x = w->rng; /* xorshift32: jitter only, no secrecy needed */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
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
        atomic_fetch_add(&wh_stats_of(w, t->app_idx)->dead, b->n);
        log_error("webhooks: app %s: %zu event(s) to %s dead-lettered after %u attempt(s) (%s); "
                  "`hark webhooks replay %s` sends them again",
                  t->app->id, b->n, t->hook->url, b->attempts, why, d.id);
        wh_batch_free(w, b, true);
    } else {
        /* Left owed in the journal: the next start tries them again. */
        log_error("webhooks: app %s: cannot dead-letter %zu event(s) to %s in %s: %s", t->app->id,
                  b->n, t->hook->url, w->dead_dir, strerror(-rc));
        wh_batch_free(w, b, false);
    }
    free(d.id);
}

/* ---- curl on the loop ----------------------------------------------------------- */

static void check_done(webhooks *w);

void wh_on_sock_closed(uv_handle_t *h)
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

int wh_on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    (void)easy;
    webhooks *w = userp;
    wh_sock *s = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, wh_on_sock_closed);
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

int wh_on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
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

void wh_pump(wh_target *t)
{
    webhooks *w = t->w;
    if (w->closing)
        return;
    wh_jfile_flush(w); /* nothing leaves before it is on disk */
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
            wh_ready_push(b->t, b);
            atomic_fetch_add(&wh_stats_of(w, b->t->app_idx)->retried, 1);
            wh_pump(b->t);
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
void wh_transfer_end(webhooks *w, wh_batch *b)
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
    wh_transfer_end(w, b);

    wh_app_stats *st = wh_stats_of(w, t->app_idx);
    enum wh_outcome o = wh_classify(code, status);
    if (o == WH_OK) {
        atomic_fetch_add(&st->sent, b->n);
        log_debug("webhooks: app %s: %zu event(s) delivered to %s (HTTP %ld)", t->app->id, b->n,
                  t->hook->url, status);
        wh_batch_free(w, b, true);
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
        wh_pump(t);
    }
    if (w->closing)
        return;
    wh_jfile_maybe_compact(w);
    wh_jfile_flush(w);
    wh_maybe_finish(w);
}
