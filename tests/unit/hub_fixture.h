/* hub_fixture — shared by the hub's unit tests: a recording subscriber (a
 * test double of the transport: it keeps every frame's JSON and every close
 * code), a recording webhook sink, a hand-built config and helpers. */
#ifndef HARK_TESTS_HUB_FIXTURE_H
#define HARK_TESTS_HUB_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/frame.h"
#include "hub/hub.h"
#include "webhook/webhook.h"

/* Each test file uses some of these helpers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- recording subscriber ------------------------------------------------- */

typedef struct rec_sub {
    subscriber base; /* first: the hub's subscriber * is a rec_sub * */
    char **msgs;     /* payloads received, NUL-terminated JSON */
    size_t num_msgs, msgs_cap;
    int close_code; /* last close code, 0 if none */
    int num_closes;
    struct rec_sub *next; /* fixture's list, for teardown */
} rec_sub;

/* The message a frame carries (hub frames are messages: the transport
 * frames them on the way out). */
static char *frame_payload(const frame *f)
{
    assert_int_equal(f->kind, FRAME_MESSAGE);
    char *p = malloc(f->len + 1);
    assert_non_null(p);
    memcpy(p, f->data, f->len);
    p[f->len] = '\0';
    return p;
}

static void rec_send(subscriber *s, frame *f)
{
    rec_sub *r = (rec_sub *)s;
    assert_non_null(s->app); /* never sent to after detach */
    if (r->num_msgs == r->msgs_cap) {
        r->msgs_cap = r->msgs_cap ? r->msgs_cap * 2 : 8;
        r->msgs = realloc(r->msgs, r->msgs_cap * sizeof(*r->msgs));
        assert_non_null(r->msgs);
    }
    r->msgs[r->num_msgs++] = frame_payload(f);
}

static void rec_close(subscriber *s, int code, const char *message)
{
    rec_sub *r = (rec_sub *)s;
    assert_non_null(message);
    r->close_code = code;
    r->num_closes++;
}

static const subscriber_ops rec_ops = {.send = rec_send, .close = rec_close};

static void rec_clear(rec_sub *r)
{
    for (size_t i = 0; i < r->num_msgs; i++)
        free(r->msgs[i]);
    r->num_msgs = 0;
}

/* ---- recording observer ------------------------------------------------------ */

typedef struct wh_rec {
    enum hub_event_kind kind;
    size_t app;
    char *channel;
    char *user_id;
    char *event;
    char *data;
    char *socket_id;
    long subscription_count;
} wh_rec;

typedef struct fixture {
    hk_config cfg;
    hub *hub;
    rec_sub *subs;
    wh_rec *hooks;
    size_t num_hooks, hooks_cap;
} fixture;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void record_event(void *ctx, const hk_app *app, const hub_event *ev)
{
    fixture *fx = ctx;
    assert_true(app >= fx->cfg.apps && app < fx->cfg.apps + fx->cfg.num_apps);
    if (fx->num_hooks == fx->hooks_cap) {
        fx->hooks_cap = fx->hooks_cap ? fx->hooks_cap * 2 : 16;
        fx->hooks = realloc(fx->hooks, fx->hooks_cap * sizeof(*fx->hooks));
        assert_non_null(fx->hooks);
    }
    assert_true(ev->channel || ev->kind == HUB_CONNECTION_CLOSED);
    /* names come with their whole length (and are NUL-terminated too) */
    if (ev->channel)
        assert_int_equal(strlen(ev->channel), ev->channel_len);
    if (ev->user_id)
        assert_int_equal(strlen(ev->user_id), ev->user_id_len);
    if (ev->event)
        assert_int_equal(strlen(ev->event), ev->event_len);
    fx->hooks[fx->num_hooks++] = (wh_rec){
        .kind = ev->kind,
        .app = (size_t)(app - fx->cfg.apps),
        .channel = ev->channel ? strndup(ev->channel, ev->channel_len) : strdup(""),
        .user_id = ev->user_id ? strndup(ev->user_id, ev->user_id_len) : NULL,
        .event = ev->event ? strndup(ev->event, ev->event_len) : NULL,
        .data = ev->data ? strndup(ev->data, ev->data_len) : NULL,
        .socket_id = dup_or_null(ev->socket_id),
        .subscription_count = ev->subscription_count,
    };
}

static void hooks_clear(fixture *fx)
{
    for (size_t i = 0; i < fx->num_hooks; i++) {
        free(fx->hooks[i].channel);
        free(fx->hooks[i].user_id);
        free(fx->hooks[i].event);
        free(fx->hooks[i].data);
        free(fx->hooks[i].socket_id);
    }
    fx->num_hooks = 0;
}

/* Webhooks of a kind on a channel (user_id NULL = any user). */
static size_t hooks_count(const fixture *fx, enum hub_event_kind kind, const char *channel,
                          const char *user_id)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->num_hooks; i++) {
        const wh_rec *h = &fx->hooks[i];
        if (h->kind != kind || strcmp(h->channel, channel) != 0)
            continue;
        if (user_id && (!h->user_id || strcmp(h->user_id, user_id) != 0))
            continue;
        n++;
    }
    return n;
}

/* The last webhook of a kind on a channel, or NULL. */
static const wh_rec *hooks_last(const fixture *fx, enum hub_event_kind kind, const char *channel)
{
    for (size_t i = fx->num_hooks; i-- > 0;)
        if (fx->hooks[i].kind == kind && strcmp(fx->hooks[i].channel, channel) == 0)
            return &fx->hooks[i];
    return NULL;
}

/* ---- fixture ---------------------------------------------------------------- */

enum {
    APP_DEFAULT = 0, /* default limits */
    APP_COUNTING,    /* subscription_count = true */
    APP_NO_CACHE,    /* cache_ttl = 0: a cached event expires at once */
    NUM_APPS
};

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->cfg.apps = calloc(NUM_APPS, sizeof(*fx->cfg.apps));
    assert_non_null(fx->cfg.apps);
    fx->cfg.num_apps = NUM_APPS;
    static char *const ids[NUM_APPS] = {"1", "2", "3"};
    static char *const keys[NUM_APPS] = {"key-1", "key-2", "key-3"};
    for (size_t i = 0; i < NUM_APPS; i++) {
        config_app_defaults(&fx->cfg.apps[i]);
        fx->cfg.apps[i].id = ids[i];
        fx->cfg.apps[i].key = keys[i];
        fx->cfg.apps[i].secret = "secret";
    }
    fx->cfg.apps[APP_COUNTING].subscription_count = true;
    fx->cfg.apps[APP_NO_CACHE].cache_ttl = 0;
    fx->hub = hub_new(&fx->cfg, 1);
    hub_observe(fx->hub, record_event, fx);
    assert_non_null(fx->hub);
    *state = fx;
    return 0;
}

static hub_app *app_of(fixture *fx, size_t i)
{
    return hub_app_of(fx->hub, &fx->cfg.apps[i]);
}

/* After every subscriber is detached, nothing but live cache channels may
 * remain; hub_free must free those (LeakSanitizer checks under make asan). */
static int teardown(void **state)
{
    fixture *fx = *state;
    rec_sub *r = fx->subs;
    while (r) {
        rec_sub *next = r->next;
        if (r->base.app)
            hub_detach(&r->base);
        assert_null(r->base.app);
        assert_null(r->base.slots);
        assert_null(r->base.watching);
        rec_clear(r);
        free(r->msgs);
        free(r);
        r = next;
    }
    for (size_t a = 0; a < NUM_APPS; a++) {
        hub_app *app = app_of(fx, a);
        assert_int_equal(directory_connections(app->hub->dir, app->index), 0);
        assert_int_equal(app->sockets.count, 0);
        assert_int_equal(app->users.count, 0);
        for (size_t i = 0; i < app->channels.cap; i++) {
            if (!app->channels.slots[i].key)
                continue;
            hub_channel *ch = app->channels.slots[i].value;
            assert_int_equal(ch->num_subs, 0);
            assert_int_equal(ch->members.count, 0);
            assert_true(ch->kind.cache);
            assert_non_null(ch->cached);
        }
    }
    hub_free(fx->hub);
    hooks_clear(fx);
    free(fx->hooks);
    free(fx->cfg.apps);
    free(fx);
    return 0;
}

static rec_sub *sub_new(fixture *fx, size_t app)
{
    rec_sub *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    hub_attach(app_of(fx, app), &r->base, &rec_ops);
    r->next = fx->subs;
    fx->subs = r;
    return r;
}

static enum hub_subscribe_result subscribe(rec_sub *r, const char *name)
{
    size_t len = strlen(name);
    channel_kind kind = channel_classify(name, len);
    assert_true(kind.type != CHANNEL_PRESENCE);
    return hub_subscribe(&r->base, name, len, kind, NULL, NULL);
}

static enum hub_subscribe_result join(rec_sub *r, const char *name, const char *user_id,
                                      const char *user_info)
{
    size_t len = strlen(name);
    channel_kind kind = channel_classify(name, len);
    assert_int_equal(kind.type, CHANNEL_PRESENCE);
    hub_presence_join j = {.user_id = user_id,
                           .user_id_len = strlen(user_id),
                           .user_info = user_info,
                           .user_info_len = strlen(user_info)};
    return hub_subscribe(&r->base, name, len, kind, &j, NULL);
}

static bool unsubscribe(rec_sub *r, const char *name)
{
    return hub_unsubscribe(&r->base, name, strlen(name));
}

static void publish(fixture *fx, size_t app, const char *channel, const char *payload,
                    const rec_sub *except)
{
    frame *f = frame_message(payload, strlen(payload));
    hub_publish(app_of(fx, app), channel, strlen(channel), f,
                except ? except->base.socket_id : NULL);
    frame_unref(f);
}

static bool signin(rec_sub *r, const char *user_id, const char *const *watch, size_t num_watch)
{
    size_t lens[8];
    assert_true(num_watch <= 8);
    for (size_t i = 0; i < num_watch; i++)
        lens[i] = strlen(watch[i]);
    return hub_signin(&r->base, user_id, strlen(user_id), watch, lens, num_watch);
}

/* How many received messages contain needle. */
static size_t count_containing(const rec_sub *r, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < r->num_msgs; i++)
        n += strstr(r->msgs[i], needle) != NULL;
    return n;
}

static void assert_only_msg(const rec_sub *r, const char *json)
{
    if (r->num_msgs != 1 || strcmp(r->msgs[0], json) != 0) {
        for (size_t i = 0; i < r->num_msgs; i++)
            fprintf(stderr, "  got[%zu]: %s\n", i, r->msgs[i]);
        fprintf(stderr, "  want: %s\n", json);
        fail();
    }
}

static void assert_msg_at(const rec_sub *r, size_t i, const char *json)
{
    assert_true(i < r->num_msgs);
    assert_string_equal(r->msgs[i], json);
}

#define SUCCEEDED(ch)                                                                              \
    "{\"event\":\"pusher_internal:subscription_succeeded\",\"data\":\"{}\","                       \
    "\"channel\":\"" ch "\"}"

/* The presence object of a subscription_succeeded message, parsed. */
static json_t *presence_of(const char *msg, const char *channel)
{
    json_error_t err;
    json_t *outer = json_loads(msg, 0, &err);
    assert_non_null(outer);
    assert_string_equal(json_string_value(json_object_get(outer, "event")),
                        "pusher_internal:subscription_succeeded");
    assert_string_equal(json_string_value(json_object_get(outer, "channel")), channel);
    const char *data = json_string_value(json_object_get(outer, "data"));
    assert_non_null(data); /* double-encoded */
    json_t *inner = json_loads(data, 0, &err);
    assert_non_null(inner);
    json_decref(outer);
    json_t *presence = json_incref(json_object_get(inner, "presence"));
    assert_non_null(presence);
    json_decref(inner);
    return presence;
}

/* Checks ids (any order, no duplicates) equal the keys of hash, that count
 * matches, and that hash[id] equals the JSON text info for each pair. */
static void assert_presence(json_t *presence, size_t n, const char *const *ids,
                            const char *const *infos)
{
    json_t *jids = json_object_get(presence, "ids");
    json_t *hash = json_object_get(presence, "hash");
    assert_true(json_is_array(jids));
    assert_true(json_is_object(hash));
    assert_int_equal(json_integer_value(json_object_get(presence, "count")), n);
    assert_int_equal(json_array_size(jids), n);
    assert_int_equal(json_object_size(hash), n);
    for (size_t i = 0; i < n; i++) {
        size_t seen = 0;
        for (size_t j = 0; j < n; j++)
            seen += strcmp(json_string_value(json_array_get(jids, j)), ids[i]) == 0;
        assert_int_equal(seen, 1);
        json_error_t err;
        json_t *want = json_loads(infos[i], JSON_DECODE_ANY, &err);
        assert_non_null(want);
        assert_true(json_equal(json_object_get(hash, ids[i]), want));
        json_decref(want);
    }
}

#pragma GCC diagnostic pop

#endif
