/* Unit tests for the pure parts of src/webhook: event payloads byte for
 * byte (spec §9.2), body and signature vectors (§9.1), filters, retry
 * policy, grace holds, journal records and replay, the dead-letter store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocol/signature.h"
#include "webhook/webhook_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void assert_encodes(const webhook_event *ev, const char *want)
{
    buf b;
    buf_init(&b);
    assert_true(wh_event_encode(&b, ev));
    buf_append_char(&b, '\0');
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_event_payloads(void **state)
{
    (void)state;
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CHANNEL_OCCUPIED, .channel = "my-channel"},
                   "{\"name\":\"channel_occupied\",\"channel\":\"my-channel\"}");
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CHANNEL_VACATED, .channel = "my-channel"},
                   "{\"name\":\"channel_vacated\",\"channel\":\"my-channel\"}");
    assert_encodes(
        &(webhook_event){.kind = WEBHOOK_MEMBER_ADDED, .channel = "presence-room", .user_id = "42"},
        "{\"name\":\"member_added\",\"channel\":\"presence-room\",\"user_id\":\"42\"}");
    assert_encodes(
        &(webhook_event){
            .kind = WEBHOOK_MEMBER_REMOVED, .channel = "presence-room", .user_id = "42"},
        "{\"name\":\"member_removed\",\"channel\":\"presence-room\",\"user_id\":\"42\"}");
    const char *obj = "{\"text\":\"hi \\\"you\\\"\"}";
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CLIENT_EVENT,
                                    .channel = "presence-room",
                                    .event = "client-typing",
                                    .data = obj,
                                    .data_len = strlen(obj),
                                    .socket_id = "123.456",
                                    .user_id = "42"},
                   "{\"name\":\"client_event\",\"channel\":\"presence-room\",\"event\":\"client-"
                   "typing\",\"data\":\"{\\\"text\\\":\\\"hi \\\\\\\"you\\\\\\\"\\\"}\","
                   "\"socket_id\":\"123.456\",\"user_id\":\"42\"}");
    /* A string the client sent stays that string; no user_id off presence. */
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CLIENT_EVENT,
                                    .channel = "private-a",
                                    .event = "client-x",
                                    .data = "\"plain\"",
                                    .data_len = 7,
                                    .socket_id = "1.2"},
                   "{\"name\":\"client_event\",\"channel\":\"private-a\",\"event\":\"client-x\","
                   "\"data\":\"plain\",\"socket_id\":\"1.2\"}");
    /* Something that only looks like a string is carried as text. */
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CLIENT_EVENT,
                                    .channel = "private-a",
                                    .event = "client-x",
                                    .data = "\"a\"b\"",
                                    .data_len = 5},
                   "{\"name\":\"client_event\",\"channel\":\"private-a\",\"event\":\"client-x\","
                   "\"data\":\"\\\"a\\\"b\\\"\"}");
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CACHE_MISS, .channel = "cache-btc-usd"},
                   "{\"name\":\"cache_miss\",\"channel\":\"cache-btc-usd\"}");
    assert_encodes(&(webhook_event){.kind = WEBHOOK_SUBSCRIPTION_COUNT,
                                    .channel = "my-channel",
                                    .subscription_count = 2},
                   "{\"name\":\"subscription_count\",\"channel\":\"my-channel\","
                   "\"subscription_count\":2}");
    assert_encodes(&(webhook_event){.kind = WEBHOOK_CHANNEL_OCCUPIED, .channel = "a\"\n"},
                   "{\"name\":\"channel_occupied\",\"channel\":\"a\\\"\\n\"}");

    buf b;
    buf_init(&b);
    assert_false(wh_event_encode(&b, &(webhook_event){.kind = WEBHOOK_CACHE_MISS}));
    assert_false(wh_event_encode(&b, &(webhook_event){.kind = 99, .channel = "x"}));
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* Spec §9.1: the body and signature of Pusher's own example. */
static void test_body_and_signature_vectors(void **state)
{
    (void)state;
    const char *ev = "{\"name\":\"channel_occupied\",\"channel\":\"test_channel\"}";
    size_t len = strlen(ev);
    buf b;
    buf_init(&b);
    wh_body(&b, 1327078148132LL, &ev, &len, 1);
    buf_append_char(&b, '\0');
    assert_string_equal(b.data, "{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_"
                                "occupied\",\"channel\":\"test_channel\"}]}");
    char sig[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex("7ad3773142a6692b25b8", 20, b.data, b.len - 1, sig);
    assert_string_equal(sig, "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa");

    /* The headers carry exactly that signature and an exact Content-Type. */
    hk_webhook hook = {.url = "http://x/", .num_headers = 1, .headers = (char *[]){"X-A: 1"}};
    struct curl_slist *h = wh_headers("key", "7ad3773142a6692b25b8", b.data, b.len - 1, &hook);
    const char *want[] = {"Content-Type: application/json", "X-Pusher-Key: key",
                          ("X-Pusher-Signature: "
                           "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"),
                          "Expect:", "X-A: 1"};
    size_t i = 0;
    for (struct curl_slist *l = h; l; l = l->next, i++) {
        assert_true(i < 5);
        assert_string_equal(l->data, want[i]);
    }
    assert_int_equal(i, 5);
    curl_slist_free_all(h);

    buf_reset(&b);
    const char *two[] = {"{\"a\":1}", "{\"b\":2}"};
    size_t lens[] = {7, 7};
    wh_body(&b, 5, two, lens, 2);
    buf_append_char(&b, '\0');
    assert_string_equal(b.data, "{\"time_ms\":5,\"events\":[{\"a\":1},{\"b\":2}]}");
    buf_free(&b);
}

static void test_filters(void **state)
{
    (void)state;
    hk_webhook all = {.event_types = HK_WEBHOOK_ALL};
    assert_true(wh_hook_matches(&all, WEBHOOK_CACHE_MISS, "anything"));
    hk_webhook some = {.event_types = HK_WEBHOOK_MEMBER_ADDED | HK_WEBHOOK_MEMBER_REMOVED,
                       .channel_prefix = "presence-",
                       .channel_suffix = "-room"};
    assert_true(wh_hook_matches(&some, WEBHOOK_MEMBER_ADDED, "presence-a-room"));
    assert_true(wh_hook_matches(&some, WEBHOOK_MEMBER_REMOVED, "presence--room"));
    assert_false(wh_hook_matches(&some, WEBHOOK_CHANNEL_OCCUPIED, "presence-a-room"));
    assert_false(wh_hook_matches(&some, WEBHOOK_MEMBER_ADDED, "private-a-room"));
    assert_false(wh_hook_matches(&some, WEBHOOK_MEMBER_ADDED, "presence-a-roomy"));
    assert_false(wh_hook_matches(&some, WEBHOOK_MEMBER_ADDED, "-room"));
}

static void test_retry_policy(void **state)
{
    (void)state;
    /* Doubling from the base, capped, with half of each delay random. */
    assert_int_equal(wh_backoff_ms(1000, 60000, 1, 0), 500);
    assert_int_equal(wh_backoff_ms(1000, 60000, 1, 500), 1000);
    assert_int_equal(wh_backoff_ms(1000, 60000, 1, 501), 500);
    assert_int_equal(wh_backoff_ms(1000, 60000, 2, 0), 1000);
    assert_int_equal(wh_backoff_ms(1000, 60000, 3, 2000), 4000);
    assert_int_equal(wh_backoff_ms(1000, 60000, 7, 0), 30000);
    assert_int_equal(wh_backoff_ms(1000, 60000, 50, 0), 30000);
    assert_int_equal(wh_backoff_ms(1000, 60000, 50, 30000), 60000);
    assert_int_equal(wh_backoff_ms(1, 60000, 1, 7), 1);
    for (uint32_t r = 0; r < 5000; r += 37) {
        uint64_t d = wh_backoff_ms(100, 1000, 3, r);
        assert_true(d >= 200 && d <= 400);
    }

    assert_int_equal(wh_classify(CURLE_OK, 200), WH_OK);
    assert_int_equal(wh_classify(CURLE_OK, 204), WH_OK);
    assert_int_equal(wh_classify(CURLE_OK, 500), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_OK, 503), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_OK, 429), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_OK, 408), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_OK, 400), WH_FAIL);
    assert_int_equal(wh_classify(CURLE_OK, 401), WH_FAIL);
    assert_int_equal(wh_classify(CURLE_OK, 404), WH_FAIL);
    assert_int_equal(wh_classify(CURLE_OK, 301), WH_FAIL);
    assert_int_equal(wh_classify(CURLE_COULDNT_CONNECT, 0), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_OPERATION_TIMEDOUT, 0), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_RECV_ERROR, 0), WH_RETRY);
    assert_int_equal(wh_classify(CURLE_URL_MALFORMAT, 0), WH_FAIL);
}

static void test_grace_holds(void **state)
{
    (void)state;
    wh_grace g;
    wh_grace_init(&g);
    char *k1 = wh_grace_key(0, false, "ch", NULL);
    char *k2 = wh_grace_key(0, true, "ch", "u1");
    char *k3 = wh_grace_key(1, false, "ch", NULL);
    assert_string_not_equal(k1, k3);
    char *k1b = wh_grace_key(0, false, "ch", NULL);
    int d1, d2, d3;
    wh_grace_put(&g, k1, 100, &d1);
    wh_grace_put(&g, k2, 200, &d2);
    wh_grace_put(&g, k3, 300, &d3);
    assert_int_equal(g.count, 3);

    /* The occupied that cancels takes its hold out, by key. */
    wh_hold *h = wh_grace_take(&g, k1b);
    assert_non_null(h);
    assert_ptr_equal(h->data, &d1);
    wh_hold_free(h);
    assert_null(wh_grace_take(&g, k1b));
    free(k1b);

    /* Due ones come out oldest first, not before their time. */
    assert_null(wh_grace_pop_due(&g, 199));
    h = wh_grace_pop_due(&g, 250);
    assert_ptr_equal(h->data, &d2);
    wh_hold_free(h);
    assert_null(wh_grace_pop_due(&g, 250));
    h = wh_grace_pop_due(&g, UINT64_MAX);
    assert_ptr_equal(h->data, &d3);
    wh_hold_free(h);
    assert_int_equal(g.count, 0);
    assert_null(g.head);

    /* Many keys: the table grows and every key is still found. */
    for (int i = 0; i < 1000; i++) {
        char ch[32];
        snprintf(ch, sizeof ch, "c%d", i);
        wh_grace_put(&g, wh_grace_key(0, true, ch, "u"), (uint64_t)i, NULL);
    }
    for (int i = 999; i >= 0; i -= 2) {
        char ch[32];
        snprintf(ch, sizeof ch, "c%d", i);
        char *k = wh_grace_key(0, true, ch, "u");
        h = wh_grace_take(&g, k);
        assert_non_null(h);
        assert_int_equal(h->due_ms, (uint64_t)i);
        wh_hold_free(h);
        free(k);
    }
    h = wh_grace_pop_due(&g, 0);
    assert_int_equal(h->due_ms, 0);
    wh_hold_free(h);
    wh_grace_free(&g, NULL, NULL); /* frees the 499 left */
}

typedef struct seen {
    uint64_t seqs[16];
    char events[16][64];
    size_t n;
} seen;

static void on_live(const wh_jrec *r, void *ctx)
{
    seen *s = ctx;
    assert_true(s->n < 16);
    assert_string_equal(r->app_id, "app-1");
    assert_string_equal(r->url, "http://127.0.0.1:1/\"x\"");
    assert_int_equal(r->time_ms, 1000 + (int64_t)r->seq);
    s->seqs[s->n] = r->seq;
    snprintf(s->events[s->n], sizeof s->events[0], "%.*s", (int)r->event_len, r->event);
    s->n++;
}

static void add(buf *b, uint64_t seq, const char *event)
{
    wh_jrec r = {.seq = seq,
                 .time_ms = 1000 + (int64_t)seq,
                 .app_id = "app-1",
                 .url = "http://127.0.0.1:1/\"x\"",
                 .event = event,
                 .event_len = strlen(event)};
    wh_journal_add(b, &r);
}

static void test_journal_replay(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    add(&b, 1, "{\"name\":\"channel_occupied\",\"channel\":\"a\"}");
    add(&b, 2, "{\"name\":\"channel_vacated\",\"channel\":\"a\\n\"}");
    add(&b, 3, "{\"n\":3}");
    wh_journal_done(&b, (uint64_t[]){1, 3}, 2);
    wh_journal_done(&b, NULL, 0); /* nothing written */
    add(&b, 4, "{\"n\":4}");
    assert_non_null(strstr(b.data, "{\"c\":[1,3]}\n"));

    seen s = {0};
    size_t bad = 9;
    assert_int_equal(wh_journal_replay(b.data, b.len, on_live, &s, &bad), 4);
    assert_int_equal(bad, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.seqs[0], 2);
    assert_string_equal(s.events[0], "{\"name\":\"channel_vacated\",\"channel\":\"a\\n\"}");
    assert_int_equal(s.seqs[1], 4);

    /* A write cut short by a kill: the torn tail is skipped, the rest kept. */
    size_t full = b.len;
    add(&b, 5, "{\"n\":5}");
    memset(&s, 0, sizeof s);
    assert_int_equal(wh_journal_replay(b.data, b.len - 10, on_live, &s, &bad), 4);
    assert_int_equal(bad, 1);
    assert_int_equal(s.n, 2);

    /* Garbage lines in the middle are skipped and counted. */
    buf g;
    buf_init(&g);
    buf_append(&g, b.data, full);
    buf_append_str(&g, "not json\n{\"c\":\"x\"}\n{\"s\":-1,\"t\":1,\"app\":\"a\",\"url\":\"u\","
                       "\"e\":\"x\"}\n\n");
    add(&g, 6, "{\"n\":6}");
    memset(&s, 0, sizeof s);
    assert_int_equal(wh_journal_replay(g.data, g.len, on_live, &s, &bad), 6);
    assert_int_equal(bad, 4);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.seqs[2], 6);

    memset(&s, 0, sizeof s);
    assert_int_equal(wh_journal_replay("", 0, on_live, &s, NULL), 0);
    assert_int_equal(s.n, 0);
    buf_free(&g);
    buf_free(&b);
}

static void test_dead_letters(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/hark-test-dead-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *dir = wh_dead_dir(tmpl);
    size_t n = 9;
    assert_null(wh_dead_list(dir, &n)); /* not there yet */
    assert_int_equal(n, 0);

    const char body[] = "{\"time_ms\":1,\"events\":[{\"name\":\"cache_miss\",\"channel\":\"c\"}]}";
    wh_dead a = {.app_id = "app-id",
                 .url = "http://127.0.0.1:9/h",
                 .body = (char *)body,
                 .body_len = sizeof body - 1,
                 .failed_at_ms = 2000,
                 .attempts = 11,
                 .events = 1,
                 .error = "HTTP 500"};
    wh_dead b = a;
    b.failed_at_ms = 1000;
    assert_int_equal(wh_dead_write(dir, &a), 0);
    assert_int_equal(wh_dead_write(dir, &b), 0);
    assert_non_null(a.id);

    char **ids = wh_dead_list(dir, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], b.id); /* oldest first */
    assert_string_equal(ids[1], a.id);

    wh_dead r;
    assert_int_equal(wh_dead_read(dir, a.id, &r), 0);
    assert_string_equal(r.app_id, "app-id");
    assert_string_equal(r.url, "http://127.0.0.1:9/h");
    assert_int_equal(r.body_len, sizeof body - 1);
    assert_memory_equal(r.body, body, sizeof body - 1);
    assert_int_equal(r.failed_at_ms, 2000);
    assert_int_equal(r.attempts, 11);
    assert_int_equal(r.events, 1);
    assert_string_equal(r.error, "HTTP 500");
    wh_dead_free(&r);

    assert_int_equal(wh_dead_read(dir, "nope", &r), -ENOENT);
    assert_int_equal(wh_dead_read(dir, "../x", &r), -EINVAL);
    assert_int_equal(wh_dead_remove(dir, "../x"), -EINVAL);
    assert_int_equal(wh_dead_remove(dir, a.id), 0);
    assert_int_equal(wh_dead_remove(dir, b.id), 0);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    ids = wh_dead_list(dir, &n);
    assert_int_equal(n, 0);
    free(ids);

    free(a.id);
    free(b.id);
    rmdir(dir);
    char *wdir = wh_dir(tmpl);
    rmdir(wdir);
    free(wdir);
    rmdir(tmpl);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_payloads), cmocka_unit_test(test_body_and_signature_vectors),
        cmocka_unit_test(test_filters),        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_grace_holds),    cmocka_unit_test(test_journal_replay),
        cmocka_unit_test(test_dead_letters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
