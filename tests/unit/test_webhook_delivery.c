/* Unit tests for webhook delivery: webhooks_start/emit/stop against a real
 * HTTP receiver on 127.0.0.1 (a thread in this process answering with a
 * scripted status per request). Batching, grace delay, retries, 4xx,
 * dead letters and replay, the journal across a restart, flush on stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "protocol/signature.h"
#include "util/log.h"
#include "webhook/webhook.h"
#include "webhook/webhook_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- receiver ------------------------------------------------------------- */

#define MAX_REQS 64
#define MAX_CONNS 16

typedef struct req {
    char *body;
    char ctype[64], key[64], sig[80];
    int status;
    int64_t at_ms;
} req;

typedef struct receiver {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    int statuses[16]; /* answered in order, then 200 */
    size_t nstatuses, next_status;
    req reqs[MAX_REQS];
    size_t n;
    volatile int stop;
} receiver;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void header(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return;
        }
    }
}

/* Handles every complete request in c's buffer; returns bytes consumed. */
static size_t serve(receiver *r, int fd, char *data, size_t len)
{
    size_t used = 0;
    for (;;) {
        char *start = data + used;
        size_t avail = len - used;
        char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end)
            return used;
        size_t hlen = (size_t)(end - start) + 4;
        char *head = strndup(start, hlen);
        char cl[32];
        header(head, "Content-Length", cl, sizeof cl);
        size_t blen = (size_t)atol(cl);
        if (avail < hlen + blen) {
            free(head);
            return used;
        }
        pthread_mutex_lock(&r->lock);
        int status = r->next_status < r->nstatuses ? r->statuses[r->next_status++] : 200;
        if (r->n < MAX_REQS) {
            req *q = &r->reqs[r->n++];
            q->body = strndup(start + hlen, blen);
            header(head, "Content-Type", q->ctype, sizeof q->ctype);
            header(head, "X-Pusher-Key", q->key, sizeof q->key);
            header(head, "X-Pusher-Signature", q->sig, sizeof q->sig);
            q->status = status;
            q->at_ms = mono_ms();
        }
        pthread_mutex_unlock(&r->lock);
        free(head);
        char resp[128];
        int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", status);
        if (write(fd, resp, (size_t)n) != n)
            return len;
        used += hlen + blen;
    }
}

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    struct pollfd fds[MAX_CONNS + 1];
    char *bufs[MAX_CONNS + 1] = {0};
    size_t lens[MAX_CONNS + 1] = {0};
    int nfds = 1;
    fds[0] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
    while (!r->stop) {
        if (poll(fds, (nfds_t)nfds, 20) <= 0)
            continue;
        if ((fds[0].revents & POLLIN) && nfds <= MAX_CONNS) {
            int c = accept(r->lfd, NULL, NULL);
            if (c >= 0) {
                fds[nfds] = (struct pollfd){.fd = c, .events = POLLIN};
                bufs[nfds] = malloc(1 << 20);
                lens[nfds] = 0;
                nfds++;
            }
        }
        for (int i = 1; i < nfds; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t k = read(fds[i].fd, bufs[i] + lens[i], (1 << 20) - lens[i]);
            if (k <= 0) {
                close(fds[i].fd);
                free(bufs[i]);
                fds[i] = fds[nfds - 1];
                bufs[i] = bufs[nfds - 1];
                lens[i] = lens[nfds - 1];
                nfds--;
                i--;
                continue;
            }
            lens[i] += (size_t)k;
            size_t used = serve(r, fds[i].fd, bufs[i], lens[i]);
            memmove(bufs[i], bufs[i] + used, lens[i] - used);
            lens[i] -= used;
        }
    }
    for (int i = 1; i < nfds; i++) {
        close(fds[i].fd);
        free(bufs[i]);
    }
    return NULL;
}

/* Listens on port (0 = any free one) and serves from a thread. */
static receiver *receiver_start(int port)
{
    receiver *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_mutex_init(&r->lock, NULL);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->lfd, 64), 0);
    socklen_t len = sizeof a;
    getsockname(r->lfd, (struct sockaddr *)&a, &len);
    r->port = ntohs(a.sin_port);
    pthread_create(&r->thread, NULL, receiver_main, r);
    return r;
}

static void receiver_stop(receiver *r)
{
    r->stop = 1;
    pthread_join(r->thread, NULL);
    close(r->lfd);
    for (size_t i = 0; i < r->n; i++)
        free(r->reqs[i].body);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static size_t receiver_count(receiver *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static bool wait_requests(receiver *r, size_t n, int ms)
{
    for (int64_t end = mono_ms() + ms; mono_ms() < end; usleep(5000))
        if (receiver_count(r) >= n)
            return true;
    return receiver_count(r) >= n;
}

/* A port nothing listens on. */
static int dead_port(void)
{
    receiver *r = receiver_start(0);
    int port = r->port;
    receiver_stop(r);
    return port;
}

/* Counts "name" occurrences in a body: events of that type. */
static size_t count_of(const char *body, const char *needle)
{
    size_t n = 0;
    for (const char *p = body; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- config --------------------------------------------------------------- */

typedef struct fixture {
    hk_config cfg;
    hk_webhook hooks[2];
    char url[2][64];
    char dir[64];
} fixture;

static void fixture_init(fixture *f, int port, uint32_t types)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/hark-test-wh-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url[0], sizeof f->url[0], "http://127.0.0.1:%d/hook", port);
    f->hooks[0] = (hk_webhook){.url = f->url[0], .event_types = types};
    f->cfg = (hk_config){
        .data_dir = f->dir,
        .shutdown_grace_ms = 2000,
        .webhook_grace_ms = 0,
        .webhook_batch_ms = 20,
        .webhook_batch_max = 100,
        .webhook_timeout_ms = 2000,
        .webhook_retries = 5,
        .webhook_backoff_ms = 20,
        .webhook_backoff_max_ms = 100,
        .webhook_max_queue = 100000,
    };
    f->cfg.apps = calloc(2, sizeof(hk_app));
    f->cfg.num_apps = 2;
    for (int i = 0; i < 2; i++) {
        config_app_defaults(&f->cfg.apps[i]);
        f->cfg.apps[i].id = i ? "other-id" : "app-id";
        f->cfg.apps[i].key = i ? "other-key" : "app-key";
        f->cfg.apps[i].secret = i ? "other-secret" : "app-secret";
    }
    f->cfg.apps[0].webhooks = f->hooks;
    f->cfg.apps[0].num_webhooks = 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fixture_free(fixture *f)
{
    free(f->cfg.apps);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void emit(webhooks *w, fixture *f, enum webhook_kind kind, const char *channel,
                 const char *user)
{
    webhook_event ev = {.kind = kind, .channel = channel, .user_id = user};
    webhooks_emit(w, &f->cfg.apps[0], &ev);
}

static void assert_signed(const req *q)
{
    char sig[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex("app-secret", 10, q->body, strlen(q->body), sig);
    assert_string_equal(q->sig, sig);
    assert_string_equal(q->key, "app-key");
    assert_string_equal(q->ctype, "application/json");
    assert_memory_equal(q->body, "{\"time_ms\":", 11);
}

static webhook_stats stats(webhooks *w, fixture *f)
{
    webhook_stats s;
    assert_true(webhooks_stats(w, &f->cfg.apps[0], &s));
    return s;
}

static size_t dead_count(fixture *f)
{
    char *dir = wh_dead_dir(f->dir);
    size_t n;
    char **ids = wh_dead_list(dir, &n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(dir);
    return n;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_no_webhooks_is_a_no_op(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 1, HK_WEBHOOK_ALL);
    f.cfg.apps[0].num_webhooks = 0;
    webhooks *w = webhooks_start(&f.cfg);
    assert_non_null(w);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "a", NULL);
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.queued + s.sent + s.dropped, 0);
    hk_app stranger = {0};
    assert_false(webhooks_stats(w, &stranger, &s));
    webhooks_emit(w, &stranger, &(webhook_event){.kind = WEBHOOK_CACHE_MISS, .channel = "x"});
    webhooks_stop(w);
    webhooks_stop(NULL);
    fixture_free(&f);
}

static void test_signed_batches(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_ALL);
    f.cfg.webhook_batch_ms = 150;
    f.cfg.webhook_batch_max = 3;
    webhooks *w = webhooks_start(&f.cfg);
    int64_t t0 = mono_ms();
    for (int i = 0; i < 7; i++) {
        char ch[16];
        snprintf(ch, sizeof ch, "ch-%d", i);
        emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, ch, NULL);
    }
    /* Other apps' events never reach this app's URL. */
    webhooks_emit(w, &f.cfg.apps[1],
                  &(webhook_event){.kind = WEBHOOK_CHANNEL_OCCUPIED, .channel = "x"});
    assert_true(wait_requests(r, 3, 3000));
    usleep(100000);
    assert_int_equal(receiver_count(r), 3);
    size_t events = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_signed(&r->reqs[i]);
        events += count_of(r->reqs[i].body, "\"name\":\"channel_occupied\"");
    }
    assert_int_equal(events, 7);
    /* Two full batches at once, the last one after the window. */
    assert_true(r->reqs[2].at_ms - t0 >= 140);
    assert_int_equal(count_of(r->reqs[2].body, "\"name\""), 1);
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.sent, 7);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.failed, 0);
    webhooks_stop(w);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_grace_delay_cancels_pairs(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_ALL);
    /* A second target that only wants vacated: an occupied it would not
     * receive must still cancel the held vacated. */
    snprintf(f.url[1], sizeof f.url[1], "http://127.0.0.1:%d/vacated", r->port);
    f.hooks[1] = (hk_webhook){.url = f.url[1], .event_types = HK_WEBHOOK_CHANNEL_VACATED};
    f.cfg.apps[0].num_webhooks = 2;
    f.cfg.webhook_grace_ms = 300;
    f.cfg.webhook_batch_ms = 10;
    webhooks *w = webhooks_start(&f.cfg);
    int64_t t0 = mono_ms();
    emit(w, &f, WEBHOOK_CHANNEL_VACATED, "reload", NULL);
    emit(w, &f, WEBHOOK_MEMBER_REMOVED, "presence-r", "u1");
    usleep(50000);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "reload", NULL);
    emit(w, &f, WEBHOOK_MEMBER_ADDED, "presence-r", "u1");
    emit(w, &f, WEBHOOK_MEMBER_REMOVED, "presence-r", "u2"); /* another user: not cancelled */
    emit(w, &f, WEBHOOK_CHANNEL_VACATED, "gone", NULL);
    assert_true(wait_requests(r, 2, 3000));
    usleep(200000);
    assert_int_equal(receiver_count(r), 2);
    for (size_t i = 0; i < 2; i++) {
        req *q = &r->reqs[i];
        assert_signed(q);
        assert_true(q->at_ms - t0 >= 300);
        assert_null(strstr(q->body, "reload"));
        assert_null(strstr(q->body, "\"u1\""));
        assert_null(strstr(q->body, "occupied"));
        assert_null(strstr(q->body, "member_added"));
    }
    /* One request per target: all of them, and the vacated-only one. */
    const char *all = strstr(r->reqs[0].body, "u2") ? r->reqs[0].body : r->reqs[1].body;
    const char *vac = all == r->reqs[0].body ? r->reqs[1].body : r->reqs[0].body;
    assert_non_null(strstr(all, "{\"name\":\"member_removed\",\"channel\":\"presence-r\","
                                "\"user_id\":\"u2\"}"));
    assert_non_null(strstr(all, "{\"name\":\"channel_vacated\",\"channel\":\"gone\"}"));
    assert_null(strstr(vac, "member_removed"));
    assert_non_null(strstr(vac, "{\"name\":\"channel_vacated\",\"channel\":\"gone\"}"));
    webhooks_stop(w);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_filter_and_cache_miss_dedup(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_CACHE_MISS | HK_WEBHOOK_CLIENT_EVENT);
    f.hooks[0].channel_prefix = "cache-";
    f.cfg.webhook_batch_ms = 100;
    webhooks *w = webhooks_start(&f.cfg);
    for (int i = 0; i < 5; i++)
        emit(w, &f, WEBHOOK_CACHE_MISS, "cache-a", NULL);
    emit(w, &f, WEBHOOK_CACHE_MISS, "cache-b", NULL);
    emit(w, &f, WEBHOOK_CACHE_MISS, "private-cache-c", NULL); /* filtered out */
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "cache-a", NULL);   /* not wanted */
    webhook_event ce = {.kind = WEBHOOK_CLIENT_EVENT,
                        .channel = "cache-a",
                        .event = "client-x",
                        .data = "{\"a\":1}",
                        .data_len = 7,
                        .socket_id = "1.1"};
    webhooks_emit(w, &f.cfg.apps[0], &ce);
    assert_true(wait_requests(r, 1, 3000));
    usleep(150000);
    assert_int_equal(receiver_count(r), 1);
    const char *b = r->reqs[0].body;
    assert_int_equal(count_of(b, "\"name\":\"cache_miss\",\"channel\":\"cache-a\""), 1);
    assert_int_equal(count_of(b, "\"channel\":\"cache-b\""), 1);
    assert_null(strstr(b, "private-cache-c"));
    assert_null(strstr(b, "occupied"));
    assert_non_null(strstr(b, "{\"name\":\"client_event\",\"channel\":\"cache-a\",\"event\":"
                              "\"client-x\",\"data\":\"{\\\"a\\\":1}\",\"socket_id\":\"1.1\"}"));
    webhooks_stop(w);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_retries_5xx_then_delivers_once(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    r->statuses[0] = r->statuses[1] = r->statuses[2] = 500;
    r->nstatuses = 3;
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_ALL);
    webhooks *w = webhooks_start(&f.cfg);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "a", NULL);
    assert_true(wait_requests(r, 4, 5000));
    usleep(300000);
    assert_int_equal(receiver_count(r), 4);
    for (size_t i = 1; i < 4; i++) /* the same signed batch each time */
        assert_string_equal(r->reqs[i].body, r->reqs[0].body);
    assert_int_equal(r->reqs[3].status, 200);
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.retried, 3);
    assert_int_equal(s.dead_lettered, 0);
    assert_int_equal(s.queued, 0);
    webhooks_stop(w);
    assert_int_equal(dead_count(&f), 0);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_4xx_dead_letters_at_once_and_replays(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    r->statuses[0] = 400;
    r->nstatuses = 1;
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_ALL);
    webhooks *w = webhooks_start(&f.cfg);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "refused", NULL);
    assert_true(wait_requests(r, 1, 3000));
    for (int i = 0; i < 200 && stats(w, &f).dead_lettered == 0; i++)
        usleep(10000);
    usleep(100000);
    assert_int_equal(receiver_count(r), 1); /* no retry on 4xx */
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.dead_lettered, 1);
    assert_int_equal(s.retried, 0);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.queued, 0);
    webhooks_stop(w);
    assert_int_equal(dead_count(&f), 1);

    /* The store is listed, then replayed: the same body, signed again. */
    char *dead[] = {"dead", NULL};
    assert_int_equal(webhooks_cli(&f.cfg, 1, dead), 0);
    char *replay[] = {"replay", NULL};
    assert_int_equal(webhooks_cli(&f.cfg, 1, replay), 0);
    assert_int_equal(receiver_count(r), 2);
    assert_string_equal(r->reqs[1].body, r->reqs[0].body);
    assert_signed(&r->reqs[1]);
    assert_int_equal(dead_count(&f), 0);
    assert_int_equal(webhooks_cli(&f.cfg, 1, replay), 0); /* nothing left */
    char *unknown[] = {"replay", "0000000000000-1-1", NULL};
    assert_int_equal(webhooks_cli(&f.cfg, 2, unknown), 1);
    char *bogus[] = {"bogus", NULL};
    assert_int_equal(webhooks_cli(&f.cfg, 1, bogus), 2);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_receiver_down_dead_letters_then_replay(void **state)
{
    (void)state;
    int port = dead_port();
    fixture f;
    fixture_init(&f, port, HK_WEBHOOK_ALL);
    f.cfg.webhook_retries = 2;
    f.cfg.webhook_backoff_ms = 10;
    webhooks *w = webhooks_start(&f.cfg);
    emit(w, &f, WEBHOOK_MEMBER_ADDED, "presence-x", "7");
    for (int i = 0; i < 300 && stats(w, &f).dead_lettered == 0; i++)
        usleep(10000);
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.dead_lettered, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.retried, 2);
    webhooks_stop(w);
    assert_int_equal(dead_count(&f), 1);

    char *replay[] = {"replay", NULL};
    assert_int_equal(webhooks_cli(&f.cfg, 1, replay), 1); /* still down: kept */
    assert_int_equal(dead_count(&f), 1);
    receiver *r = receiver_start(port);
    assert_int_equal(webhooks_cli(&f.cfg, 1, replay), 0);
    assert_int_equal(receiver_count(r), 1);
    assert_signed(&r->reqs[0]);
    assert_non_null(strstr(r->reqs[0].body, "{\"name\":\"member_added\",\"channel\":\"presence-"
                                            "x\",\"user_id\":\"7\"}"));
    assert_int_equal(dead_count(&f), 0);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_journal_survives_restart(void **state)
{
    (void)state;
    int port = dead_port();
    fixture f;
    fixture_init(&f, port, HK_WEBHOOK_ALL);
    f.cfg.webhook_backoff_ms = 60000; /* the first retry is far away */
    f.cfg.webhook_backoff_max_ms = 60000;
    f.cfg.webhook_grace_ms = 60000;
    f.cfg.shutdown_grace_ms = 0;
    webhooks *w = webhooks_start(&f.cfg);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "j1", NULL);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "j2", NULL);
    for (int i = 0; i < 300 && stats(w, &f).failed == 0; i++)
        usleep(10000);
    assert_int_equal(stats(w, &f).failed, 1);
    emit(w, &f, WEBHOOK_CHANNEL_VACATED, "j3", NULL); /* held for the grace delay */
    usleep(50000);
    assert_int_equal(stats(w, &f).queued, 3);
    webhooks_stop(w); /* no time to send: everything stays in the journal */
    assert_int_equal(dead_count(&f), 0);

    /* A torn record at the end, as a kill during a write would leave. */
    char path[128];
    snprintf(path, sizeof path, "%s/webhooks/journal", f.dir);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("{\"s\":99,\"t\":1,\"app\":\"app-id\",\"url\":\"http", fp);
    fclose(fp);

    receiver *r = receiver_start(port);
    f.cfg.webhook_grace_ms = 0;
    f.cfg.shutdown_grace_ms = 2000;
    w = webhooks_start(&f.cfg);
    assert_int_equal(stats(w, &f).queued, 3);
    assert_true(wait_requests(r, 1, 3000));
    for (int i = 0; i < 300 && stats(w, &f).sent < 3; i++)
        usleep(10000);
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.sent, 3);
    assert_int_equal(s.queued, 0);
    size_t total = 0;
    for (size_t i = 0; i < receiver_count(r); i++) {
        assert_signed(&r->reqs[i]);
        total += count_of(r->reqs[i].body, "\"name\"");
    }
    assert_int_equal(total, 3);
    webhooks_stop(w);

    /* Delivered and recorded: a third start owes nothing. */
    w = webhooks_start(&f.cfg);
    assert_int_equal(stats(w, &f).queued, 0);
    usleep(100000);
    webhooks_stop(w);
    assert_int_equal(receiver_count(r), 1);
    receiver_stop(r);
    fixture_free(&f);
}

static void test_stop_flushes_held_and_batched(void **state)
{
    (void)state;
    receiver *r = receiver_start(0);
    fixture f;
    fixture_init(&f, r->port, HK_WEBHOOK_ALL);
    f.cfg.webhook_grace_ms = 60000;
    f.cfg.webhook_batch_ms = 60000;
    webhooks *w = webhooks_start(&f.cfg);
    emit(w, &f, WEBHOOK_CHANNEL_VACATED, "v", NULL);
    emit(w, &f, WEBHOOK_CHANNEL_OCCUPIED, "o", NULL);
    usleep(50000);
    assert_int_equal(receiver_count(r), 0);
    int64_t t0 = mono_ms();
    webhooks_stop(w);
    assert_true(mono_ms() - t0 < 1500);
    assert_int_equal(receiver_count(r), 1);
    assert_non_null(strstr(r->reqs[0].body, "\"channel_vacated\",\"channel\":\"v\""));
    assert_non_null(strstr(r->reqs[0].body, "\"channel_occupied\",\"channel\":\"o\""));
    receiver_stop(r);
    fixture_free(&f);
}

static void test_queue_bound_drops_and_counts(void **state)
{
    (void)state;
    int port = dead_port();
    fixture f;
    fixture_init(&f, port, HK_WEBHOOK_ALL);
    f.cfg.webhook_max_queue = 3;
    f.cfg.webhook_batch_ms = 60000;
    f.cfg.shutdown_grace_ms = 0;
    webhooks *w = webhooks_start(&f.cfg);
    for (int i = 0; i < 10; i++) {
        char ch[16];
        snprintf(ch, sizeof ch, "c%d", i);
        emit(w, &f, WEBHOOK_CACHE_MISS, ch, NULL);
    }
    webhook_stats s = stats(w, &f);
    assert_int_equal(s.dropped, 7);
    webhooks_stop(w);
    fixture_free(&f);
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_webhooks_is_a_no_op),
        cmocka_unit_test(test_signed_batches),
        cmocka_unit_test(test_grace_delay_cancels_pairs),
        cmocka_unit_test(test_filter_and_cache_miss_dedup),
        cmocka_unit_test(test_retries_5xx_then_delivers_once),
        cmocka_unit_test(test_4xx_dead_letters_at_once_and_replays),
        cmocka_unit_test(test_receiver_down_dead_letters_then_replay),
        cmocka_unit_test(test_journal_survives_restart),
        cmocka_unit_test(test_stop_flushes_held_and_batched),
        cmocka_unit_test(test_queue_bound_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
