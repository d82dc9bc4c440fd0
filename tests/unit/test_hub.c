/* hub: subscriptions, presence members, cache channels, subscription counts,
 * sign-in and watchlists, user channels and termination (spec §3.3–3.5),
 * driven through recording subscribers (a test double of the transport) and
 * a recording webhook sink. */
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
#include "hub/frame.h"
#include "hub/hub.h"
#include "webhook/webhook.h"

/* ---- recording subscriber ------------------------------------------------- */

typedef struct rec_sub {
    subscriber base; /* first: the hub's subscriber * is a rec_sub * */
    char **msgs;     /* payloads received, NUL-terminated JSON */
    size_t num_msgs, msgs_cap;
    int close_code; /* last close code, 0 if none */
    int num_closes;
    struct rec_sub *next; /* fixture's list, for teardown */
} rec_sub;

/* The payload of a server-to-client WebSocket text frame (no mask). */
static char *frame_payload(const frame *f)
{
    assert_true(f->len >= 2);
    assert_int_equal(f->data[0], 0x81); /* FIN + text */
    size_t n = f->data[1] & 0x7f, hlen = 2;
    if (n == 126) {
        n = ((size_t)f->data[2] << 8) | f->data[3];
        hlen = 4;
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | f->data[2 + i];
        hlen = 10;
    }
    assert_int_equal(hlen + n, f->len);
    char *p = malloc(n + 1);
    assert_non_null(p);
    memcpy(p, f->data + hlen, n);
    p[n] = '\0';
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

/* ---- recording webhook sink ----------------------------------------------- */

typedef struct wh_rec {
    enum webhook_kind kind;
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

static void record_webhook(void *ctx, const hk_app *app, const webhook_event *ev)
{
    fixture *fx = ctx;
    assert_true(app >= fx->cfg.apps && app < fx->cfg.apps + fx->cfg.num_apps);
    if (fx->num_hooks == fx->hooks_cap) {
        fx->hooks_cap = fx->hooks_cap ? fx->hooks_cap * 2 : 16;
        fx->hooks = realloc(fx->hooks, fx->hooks_cap * sizeof(*fx->hooks));
        assert_non_null(fx->hooks);
    }
    assert_non_null(ev->channel);
    fx->hooks[fx->num_hooks++] = (wh_rec){
        .kind = ev->kind,
        .app = (size_t)(app - fx->cfg.apps),
        .channel = strdup(ev->channel),
        .user_id = dup_or_null(ev->user_id),
        .event = dup_or_null(ev->event),
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
static size_t hooks_count(const fixture *fx, enum webhook_kind kind, const char *channel,
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
static const wh_rec *hooks_last(const fixture *fx, enum webhook_kind kind, const char *channel)
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
    fx->hub = hub_new(&fx->cfg, 1, record_webhook, fx);
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
    return hub_subscribe(&r->base, name, len, kind, NULL);
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
    return hub_subscribe(&r->base, name, len, kind, &j);
}

static bool unsubscribe(rec_sub *r, const char *name)
{
    return hub_unsubscribe(&r->base, name, strlen(name));
}

static void publish(fixture *fx, size_t app, const char *channel, const char *payload,
                    const rec_sub *except)
{
    frame *f = frame_ws_text(payload, strlen(payload));
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

/* ---- sockets ---------------------------------------------------------------- */

static void attach_gives_unique_findable_socket_ids(void **state)
{
    fixture *fx = *state;
    enum { N = 200 };
    rec_sub *subs[N];
    for (size_t i = 0; i < N; i++) {
        subs[i] = sub_new(fx, APP_DEFAULT);
        const subscriber *s = &subs[i]->base;
        assert_int_equal(s->socket_id_len, strlen(s->socket_id));
        assert_true(socket_id_valid(s->socket_id, s->socket_id_len));
        assert_memory_equal(s->socket_id, "1.", 2); /* node id first */
        assert_ptr_equal(hub_find_socket(app_of(fx, APP_DEFAULT), s->socket_id, s->socket_id_len),
                         s);
        assert_null(hub_find_socket(app_of(fx, APP_COUNTING), s->socket_id, s->socket_id_len));
    }
    assert_int_equal(directory_connections(fx->hub->dir, APP_DEFAULT), N);
    assert_int_equal(app_of(fx, APP_DEFAULT)->sockets.count, N);
    char id[31];
    memcpy(id, subs[7]->base.socket_id, sizeof id);
    hub_detach(&subs[7]->base);
    assert_null(hub_find_socket(app_of(fx, APP_DEFAULT), id, strlen(id)));
    hub_detach(&subs[7]->base); /* a second detach does nothing */
    assert_int_equal(directory_connections(fx->hub->dir, APP_DEFAULT), N - 1);
    for (size_t i = 0; i < N; i++)
        if (i != 7)
            assert_ptr_equal(hub_find_socket(app_of(fx, APP_DEFAULT), subs[i]->base.socket_id,
                                             subs[i]->base.socket_id_len),
                             &subs[i]->base);
}

/* ---- public channels, occupied / vacated ---------------------------------- */

static void subscribe_sends_succeeded_and_occupied_once(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);

    assert_int_equal(subscribe(a, "news"), HUB_SUBSCRIBED);
    assert_only_msg(a, SUCCEEDED("news"));
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "news", NULL), 1);
    assert_non_null(hub_subscription(&a->base, "news", 4));
    assert_null(hub_subscription(&a->base, "new", 3));

    assert_int_equal(subscribe(b, "news"), HUB_SUBSCRIBED);
    assert_only_msg(b, SUCCEEDED("news"));
    assert_int_equal(a->num_msgs, 1); /* nothing to the others */
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "news", NULL), 1);
    /* no subscription_count when the app does not ask for it */
    assert_int_equal(hooks_count(fx, WEBHOOK_SUBSCRIPTION_COUNT, "news", NULL), 0);
    assert_int_equal(hub_channel_find(app_of(fx, APP_DEFAULT), "news", 4)->num_subs, 2);

    assert_true(unsubscribe(a, "news"));
    assert_false(unsubscribe(a, "news"));
    assert_false(unsubscribe(a, "other"));
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, "news", NULL), 0);
    assert_true(unsubscribe(b, "news"));
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, "news", NULL), 1);
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), "news", 4));
    assert_int_equal(a->base.num_slots, 0);
    assert_int_equal(fx->num_hooks, 2);

    /* occupied again after vacated */
    assert_int_equal(subscribe(a, "news"), HUB_SUBSCRIBED);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "news", NULL), 2);
}

static void resubscribe_is_idempotent(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    assert_int_equal(subscribe(a, "private-x"), HUB_SUBSCRIBED);
    rec_clear(a);
    hooks_clear(fx);
    assert_int_equal(subscribe(a, "private-x"), HUB_ALREADY_SUBSCRIBED);
    assert_only_msg(a, SUCCEEDED("private-x"));
    assert_int_equal(fx->num_hooks, 0);
    assert_int_equal(a->base.num_slots, 1);
    assert_int_equal(hub_channel_find(app_of(fx, APP_DEFAULT), "private-x", 9)->num_subs, 1);

    /* presence: no second member, no member_added, count stays 1 */
    assert_int_equal(join(a, "presence-r", "u1", "{\"n\":1}"), HUB_SUBSCRIBED);
    assert_int_equal(join(b, "presence-r", "u2", "{}"), HUB_SUBSCRIBED);
    rec_clear(a);
    rec_clear(b);
    hooks_clear(fx);
    assert_int_equal(join(a, "presence-r", "u1", "{\"n\":2}"), HUB_ALREADY_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 1);
    json_t *p = presence_of(a->msgs[0], "presence-r");
    static const char *const ids[] = {"u1", "u2"};
    static const char *const infos[] = {"{\"n\":1}", "{}"};
    assert_presence(p, 2, ids, infos);
    json_decref(p);
    assert_int_equal(b->num_msgs, 0);
    assert_int_equal(fx->num_hooks, 0);
    hub_channel *ch = hub_channel_find(app_of(fx, APP_DEFAULT), "presence-r", 10);
    assert_int_equal(ch->num_subs, 2);
    assert_int_equal(ch->members.count, 2);
    hub_member *m = strmap_get(&ch->members, "u1", 2);
    assert_non_null(m);
    assert_int_equal(m->conns, 1);

    /* one unsubscribe is enough to leave */
    assert_true(unsubscribe(a, "presence-r"));
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_REMOVED, "presence-r", "u1"), 1);
    assert_int_equal(ch->members.count, 1);
}

/* ---- presence ----------------------------------------------------------------- */

static void presence_succeeded_data_is_exact(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    assert_int_equal(join(a, "presence-room", "u1", "{\"name\":\"Ann\"}"), HUB_SUBSCRIBED);
    assert_only_msg(a, "{\"event\":\"pusher_internal:subscription_succeeded\",\"data\":"
                       "\"{\\\"presence\\\":{\\\"ids\\\":[\\\"u1\\\"],\\\"hash\\\":{\\\"u1\\\":{"
                       "\\\"name\\\":\\\"Ann\\\"}},\\\"count\\\":1}}\",\"channel\":"
                       "\"presence-room\"}");
    /* first member: member_added webhook, nobody else to tell */
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_ADDED, "presence-room", "u1"), 1);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "presence-room", NULL), 1);

    /* absent user_info is stored as null and still listed in hash */
    assert_int_equal(join(b, "presence-room", "u\"2", "null"), HUB_SUBSCRIBED);
    assert_int_equal(b->num_msgs, 1);
    json_t *p = presence_of(b->msgs[0], "presence-room");
    static const char *const ids[] = {"u1", "u\"2"};
    static const char *const infos[] = {"{\"name\":\"Ann\"}", "null"};
    assert_presence(p, 2, ids, infos);
    json_decref(p);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 1,
                  "{\"event\":\"pusher_internal:member_added\",\"data\":\"{\\\"user_id\\\":"
                  "\\\"u\\\\\\\"2\\\",\\\"user_info\\\":null}\",\"channel\":\"presence-room\"}");

    /* ids and hash list the members in the same order (jansson keeps key order) */
    rec_sub *c = sub_new(fx, APP_DEFAULT);
    char uid[8];
    for (int i = 0; i < 6; i++) {
        rec_sub *x = sub_new(fx, APP_DEFAULT);
        snprintf(uid, sizeof uid, "m%d", i);
        assert_int_equal(join(x, "presence-order", uid, "{}"), HUB_SUBSCRIBED);
    }
    assert_int_equal(join(c, "presence-order", "m6", "{}"), HUB_SUBSCRIBED);
    p = presence_of(c->msgs[0], "presence-order");
    json_t *jids = json_object_get(p, "ids");
    assert_int_equal(json_array_size(jids), 7);
    size_t k = 0;
    for (void *it = json_object_iter(json_object_get(p, "hash")); it;
         it = json_object_iter_next(json_object_get(p, "hash"), it), k++)
        assert_string_equal(json_object_iter_key(it), json_string_value(json_array_get(jids, k)));
    assert_int_equal(k, 7);
    json_decref(p);
}

/* Spec §3.3 steps 6 and 8: presence is per user, not per connection. */
static void presence_is_per_user_not_per_connection(void **state)
{
    fixture *fx = *state;
    rec_sub *a1 = sub_new(fx, APP_DEFAULT), *a2 = sub_new(fx, APP_DEFAULT);
    rec_sub *b = sub_new(fx, APP_DEFAULT);
    const char *room = "presence-room";
    assert_int_equal(join(a1, room, "alice", "{\"tab\":1}"), HUB_SUBSCRIBED);
    assert_int_equal(join(b, room, "bob", "{\"tab\":0}"), HUB_SUBSCRIBED);
    assert_int_equal(a1->num_msgs, 2); /* succeeded + member_added bob */
    assert_msg_at(
        a1, 1,
        "{\"event\":\"pusher_internal:member_added\",\"data\":\"{\\\"user_id\\\":\\\"bob\\\","
        "\\\"user_info\\\":{\\\"tab\\\":0}}\",\"channel\":\"presence-room\"}");
    rec_clear(a1);
    rec_clear(b);
    hooks_clear(fx);

    /* second tab of alice: nothing to the others, count stays 2, first info kept */
    assert_int_equal(join(a2, room, "alice", "{\"tab\":2}"), HUB_SUBSCRIBED);
    assert_int_equal(a1->num_msgs, 0);
    assert_int_equal(b->num_msgs, 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_ADDED, room, NULL), 0);
    assert_int_equal(a2->num_msgs, 1);
    json_t *p = presence_of(a2->msgs[0], room);
    static const char *const ids[] = {"alice", "bob"};
    static const char *const infos[] = {"{\"tab\":1}", "{\"tab\":0}"};
    assert_presence(p, 2, ids, infos);
    json_decref(p);
    rec_clear(a2);
    hub_channel *ch = hub_channel_find(app_of(fx, APP_DEFAULT), room, strlen(room));
    assert_int_equal(ch->members.count, 2);
    assert_int_equal(ch->num_subs, 3);
    assert_int_equal(((hub_member *)strmap_get(&ch->members, "alice", 5))->conns, 2);

    /* a third connection sees alice once, with her first info */
    rec_sub *c = sub_new(fx, APP_DEFAULT);
    assert_int_equal(join(c, room, "carol", "{}"), HUB_SUBSCRIBED);
    p = presence_of(c->msgs[0], room);
    static const char *const ids3[] = {"alice", "bob", "carol"};
    static const char *const infos3[] = {"{\"tab\":1}", "{\"tab\":0}", "{}"};
    assert_presence(p, 3, ids3, infos3);
    json_decref(p);
    /* carol's member_added reached both alice tabs and bob, once each */
    static const char carol_added[] =
        "{\"event\":\"pusher_internal:member_added\",\"data\":\"{\\\"user_id\\\":\\\"carol\\\","
        "\\\"user_info\\\":{}}\",\"channel\":\"presence-room\"}";
    assert_only_msg(a1, carol_added);
    assert_only_msg(a2, carol_added);
    assert_only_msg(b, carol_added);
    assert_int_equal(count_containing(c, "member_added"), 0);
    rec_clear(a1);
    rec_clear(a2);
    rec_clear(b);
    rec_clear(c);
    hooks_clear(fx);

    /* the first tab leaves: alice is still present, nobody is told */
    assert_true(unsubscribe(a1, room));
    assert_int_equal(a2->num_msgs + b->num_msgs + c->num_msgs, 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_REMOVED, room, NULL), 0);
    assert_int_equal(ch->members.count, 3);

    /* the last tab leaves (by disconnecting): member_removed to the others */
    hub_detach(&a2->base);
    static const char alice_removed[] =
        "{\"event\":\"pusher_internal:member_removed\",\"data\":\"{\\\"user_id\\\":\\\"alice\\\"}"
        "\",\"channel\":\"presence-room\"}";
    assert_only_msg(b, alice_removed);
    assert_only_msg(c, alice_removed);
    assert_int_equal(a1->num_msgs, 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_REMOVED, room, "alice"), 1);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, room, NULL), 0);
    assert_int_equal(ch->members.count, 2);

    /* alice comes back with a new info: it is the first again */
    rec_clear(b);
    assert_int_equal(join(a1, room, "alice", "{\"tab\":3}"), HUB_SUBSCRIBED);
    assert_int_equal(count_containing(b, "{\\\"tab\\\":3}"), 1);
    assert_int_equal(hooks_count(fx, WEBHOOK_MEMBER_ADDED, room, "alice"), 1);

    hub_detach(&a1->base);
    hub_detach(&b->base);
    hub_detach(&c->base);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, room, NULL), 1);
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), room, strlen(room)));
}

static void member_limit_refuses_new_users_and_leaves_nothing(void **state)
{
    fixture *fx = *state;
    fx->cfg.apps[APP_DEFAULT].max_presence_members = 3;
    const char *room = "presence-full";
    rec_sub *m[3];
    char id[8];
    for (int i = 0; i < 3; i++) {
        m[i] = sub_new(fx, APP_DEFAULT);
        snprintf(id, sizeof id, "u%d", i);
        assert_int_equal(join(m[i], room, id, "{}"), HUB_SUBSCRIBED);
    }
    for (int i = 0; i < 3; i++)
        rec_clear(m[i]);
    hooks_clear(fx);
    hub_channel *ch = hub_channel_find(app_of(fx, APP_DEFAULT), room, strlen(room));

    rec_sub *late = sub_new(fx, APP_DEFAULT);
    assert_int_equal(join(late, room, "u3", "{}"), HUB_MEMBER_LIMIT);
    assert_int_equal(late->num_msgs, 0);
    assert_int_equal(late->base.num_slots, 0);
    assert_null(hub_subscription(&late->base, room, strlen(room)));
    assert_int_equal(fx->num_hooks, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i]->num_msgs, 0);
    assert_int_equal(ch->members.count, 3);
    assert_int_equal(ch->num_subs, 3);
    assert_null(strmap_get(&ch->members, "u3", 2));

    /* another connection of a present user is no new member: accepted */
    rec_sub *tab = sub_new(fx, APP_DEFAULT);
    assert_int_equal(join(tab, room, "u1", "{}"), HUB_SUBSCRIBED);
    assert_int_equal(ch->members.count, 3);
    assert_int_equal(ch->num_subs, 4);

    /* once someone leaves, the refused user gets in */
    hub_detach(&m[0]->base);
    assert_int_equal(join(late, room, "u3", "{}"), HUB_SUBSCRIBED);
    assert_int_equal(ch->members.count, 3);

    /* refused on a channel that did not exist: the channel is not created */
    fx->cfg.apps[APP_DEFAULT].max_presence_members = 0;
    hooks_clear(fx);
    rec_clear(late);
    assert_int_equal(join(late, "presence-empty", "u9", "{}"), HUB_MEMBER_LIMIT);
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), "presence-empty", 14));
    assert_int_equal(fx->num_hooks, 0);
    assert_int_equal(late->num_msgs, 0);
    assert_int_equal(late->base.num_slots, 1);
}

/* ---- many subscribers on many channels: swap-remove bookkeeping ------------ */

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Every slot of s points at its entry in the channel and back. */
static void check_links(const subscriber *s)
{
    for (uint32_t i = 0; i < s->num_slots; i++) {
        const sub_slot *slot = &s->slots[i];
        assert_true(slot->pos < slot->channel->num_subs);
        assert_ptr_equal(slot->channel->subs[slot->pos].sub, s);
        assert_int_equal(slot->channel->subs[slot->pos].slot, i);
    }
}

#define NSUB 12
#define NCH 9

static void unsubscribe_in_random_order_keeps_delivery_exact(void **state)
{
    fixture *fx = *state;
    rng_state = 0x853c49e6748fea9bull;
    static const char *const names[NCH] = {
        "a",          "private-b", "presence-c", "d",          "private-encrypted-e",
        "presence-f", "g-channel", "private-h",  "presence-i",
    };
    rec_sub *subs[NSUB];
    bool member[NSUB][NCH];
    size_t pairs[NSUB * NCH][2], num_pairs = 0;
    for (size_t i = 0; i < NSUB; i++) {
        subs[i] = sub_new(fx, APP_DEFAULT);
        for (size_t c = 0; c < NCH; c++) {
            /* most pairs subscribed, some not, in a per-subscriber order */
            size_t cc = (c + i) % NCH;
            member[i][cc] = (i + cc) % 5 != 0;
            if (!member[i][cc])
                continue;
            char uid[8];
            snprintf(uid, sizeof uid, "u%zu", i % 7); /* some users have two tabs */
            if (channel_classify(names[cc], strlen(names[cc])).type == CHANNEL_PRESENCE)
                assert_int_equal(join(subs[i], names[cc], uid, "{}"), HUB_SUBSCRIBED);
            else
                assert_int_equal(subscribe(subs[i], names[cc]), HUB_SUBSCRIBED);
            pairs[num_pairs][0] = i;
            pairs[num_pairs][1] = cc;
            num_pairs++;
        }
    }
    /* shuffle the (subscriber, channel) pairs */
    for (size_t i = num_pairs; i > 1; i--) {
        size_t j = rng() % i;
        size_t t0 = pairs[i - 1][0], t1 = pairs[i - 1][1];
        pairs[i - 1][0] = pairs[j][0];
        pairs[i - 1][1] = pairs[j][1];
        pairs[j][0] = t0;
        pairs[j][1] = t1;
    }

    unsigned marker = 0;
    for (size_t step = 0; step <= num_pairs; step++) {
        if (step > 0) {
            size_t i = pairs[step - 1][0], c = pairs[step - 1][1];
            assert_true(unsubscribe(subs[i], names[c]));
            assert_false(unsubscribe(subs[i], names[c]));
            member[i][c] = false;
        }
        for (size_t i = 0; i < NSUB; i++) {
            check_links(&subs[i]->base);
            rec_clear(subs[i]);
        }
        for (size_t c = 0; c < NCH; c++) {
            size_t expect = 0;
            for (size_t i = 0; i < NSUB; i++)
                expect += member[i][c];
            hub_channel *ch = hub_channel_find(app_of(fx, APP_DEFAULT), names[c], strlen(names[c]));
            if (expect == 0) {
                assert_null(ch);
                continue;
            }
            assert_non_null(ch);
            assert_int_equal(ch->num_subs, expect);
            char payload[96];
            snprintf(payload, sizeof payload,
                     "{\"event\":\"e\",\"data\":\"%u\",\"channel\":\"%s\"}", ++marker, names[c]);
            publish(fx, APP_DEFAULT, names[c], payload, NULL);
            for (size_t i = 0; i < NSUB; i++) {
                if (member[i][c]) {
                    assert_only_msg(subs[i], payload);
                    assert_non_null(hub_subscription(&subs[i]->base, names[c], strlen(names[c])));
                } else {
                    assert_int_equal(subs[i]->num_msgs, 0);
                    assert_null(hub_subscription(&subs[i]->base, names[c], strlen(names[c])));
                }
                rec_clear(subs[i]);
            }
        }
    }
    for (size_t c = 0; c < NCH; c++) {
        assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, names[c], NULL), 1);
        assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, names[c], NULL), 1);
    }
    assert_int_equal(app_of(fx, APP_DEFAULT)->channels.count, 0);
}

/* The same with subscribers leaving by detach, which removes from the end. */
static void detach_in_random_order_keeps_delivery_exact(void **state)
{
    fixture *fx = *state;
    rng_state = 0xda942042e4dd58b5ull;
    enum { N = 40, M = 6 };
    static const char *const names[M] = {"c0", "c1", "presence-c2", "c3", "private-c4", "c5"};
    rec_sub *subs[N];
    bool alive[N];
    for (size_t i = 0; i < N; i++) {
        subs[i] = sub_new(fx, APP_DEFAULT);
        alive[i] = true;
        for (size_t k = 0; k < M; k++) {
            const char *name = names[(i * 7 + k) % M];
            char uid[8];
            snprintf(uid, sizeof uid, "u%zu", i % 13);
            if (strncmp(name, "presence-", 9) == 0)
                join(subs[i], name, uid, "{}");
            else
                subscribe(subs[i], name);
        }
    }
    size_t order[N];
    for (size_t i = 0; i < N; i++)
        order[i] = i;
    for (size_t i = N; i > 1; i--) {
        size_t j = rng() % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t step = 0; step < N; step++) {
        hub_detach(&subs[order[step]]->base);
        alive[order[step]] = false;
        for (size_t i = 0; i < N; i++) {
            if (alive[i])
                check_links(&subs[i]->base);
            rec_clear(subs[i]);
        }
        for (size_t c = 0; c < M; c++) {
            publish(fx, APP_DEFAULT, names[c], "{\"event\":\"x\",\"data\":\"{}\"}", NULL);
            for (size_t i = 0; i < N; i++) {
                assert_int_equal(subs[i]->num_msgs, alive[i] ? 1 : 0);
                rec_clear(subs[i]);
            }
        }
    }
    assert_int_equal(app_of(fx, APP_DEFAULT)->channels.count, 0);
}

/* ---- publish ------------------------------------------------------------------ */

static void publish_reaches_subscribers_except_one(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    rec_sub *c = sub_new(fx, APP_DEFAULT), *other = sub_new(fx, APP_DEFAULT);
    rec_sub *other_app = sub_new(fx, APP_COUNTING);
    subscribe(a, "room");
    subscribe(b, "room");
    subscribe(c, "room");
    subscribe(other, "hall");
    subscribe(other_app, "room");
    rec_clear(a);
    rec_clear(b);
    rec_clear(c);
    rec_clear(other);
    rec_clear(other_app);

    static const char ev[] = "{\"event\":\"say\",\"data\":\"hi\",\"channel\":\"room\"}";
    publish(fx, APP_DEFAULT, "room", ev, b);
    assert_only_msg(a, ev);
    assert_int_equal(b->num_msgs, 0);
    assert_only_msg(c, ev);
    assert_int_equal(other->num_msgs, 0);
    assert_int_equal(other_app->num_msgs, 0); /* apps are separate */

    /* no channel: nothing happens and nothing is created */
    publish(fx, APP_DEFAULT, "nobody", ev, NULL);
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), "nobody", 6));

    /* an event larger than 125 bytes (16-bit length header) arrives intact */
    char big[400];
    memset(big, 'x', sizeof big);
    snprintf(big, sizeof big, "{\"event\":\"big\",\"data\":\"%0300d\",\"channel\":\"room\"}", 7);
    rec_clear(a);
    publish(fx, APP_DEFAULT, "room", big, NULL);
    assert_only_msg(a, big);
}

static void client_event_goes_to_others_and_to_webhooks(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    join(a, "presence-chat", "alice", "{}");
    join(b, "presence-chat", "bob", "{}");
    subscribe(a, "private-p");
    subscribe(b, "private-p");
    rec_clear(a);
    rec_clear(b);
    hooks_clear(fx);

    static const char ev[] = "{\"event\":\"client-typing\",\"data\":{\"t\":1},\"channel\":"
                             "\"presence-chat\",\"user_id\":\"alice\"}";
    frame *f = frame_ws_text(ev, strlen(ev));
    sub_slot *slot = hub_subscription(&a->base, "presence-chat", 13);
    assert_non_null(slot);
    hub_client_event(&a->base, slot, f, "client-typing", "{\"t\":1}", 7);
    frame_unref(f);
    assert_int_equal(a->num_msgs, 0);
    assert_only_msg(b, ev);
    assert_int_equal(fx->num_hooks, 1);
    const wh_rec *h = hooks_last(fx, WEBHOOK_CLIENT_EVENT, "presence-chat");
    assert_non_null(h);
    assert_string_equal(h->user_id, "alice");
    assert_string_equal(h->event, "client-typing");
    assert_string_equal(h->data, "{\"t\":1}");
    assert_string_equal(h->socket_id, a->base.socket_id);

    /* on a private channel there is no user_id */
    static const char ev2[] = "{\"event\":\"client-x\",\"data\":\"s\",\"channel\":\"private-p\"}";
    f = frame_ws_text(ev2, strlen(ev2));
    hub_client_event(&b->base, hub_subscription(&b->base, "private-p", 9), f, "client-x", "\"s\"",
                     3);
    frame_unref(f);
    assert_only_msg(a, ev2);
    h = hooks_last(fx, WEBHOOK_CLIENT_EVENT, "private-p");
    assert_non_null(h);
    assert_null(h->user_id);
    assert_string_equal(h->socket_id, b->base.socket_id);
}

/* ---- cache channels ------------------------------------------------------------- */

static void cache_miss_then_replay_of_the_last_event(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);

    /* nothing cached: subscription_succeeded, then cache_miss (+ webhook) */
    assert_int_equal(subscribe(a, "cache-news"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 0, SUCCEEDED("cache-news"));
    assert_msg_at(a, 1, "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-news\"}");
    assert_int_equal(hooks_count(fx, WEBHOOK_CACHE_MISS, "cache-news", NULL), 1);

    /* a published event is delivered and remembered; the last one wins */
    static const char ev1[] = "{\"event\":\"e\",\"data\":\"1\",\"channel\":\"cache-news\"}";
    static const char ev2[] = "{\"event\":\"e\",\"data\":\"2\",\"channel\":\"cache-news\"}";
    rec_clear(a);
    publish(fx, APP_DEFAULT, "cache-news", ev1, NULL);
    publish(fx, APP_DEFAULT, "cache-news", ev2, NULL);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 1, ev2);

    hooks_clear(fx);
    assert_int_equal(subscribe(b, "cache-news"), HUB_SUBSCRIBED);
    assert_int_equal(b->num_msgs, 2);
    assert_msg_at(b, 0, SUCCEEDED("cache-news"));
    assert_msg_at(b, 1, ev2);
    assert_int_equal(hooks_count(fx, WEBHOOK_CACHE_MISS, "cache-news", NULL), 0);

    /* also when the event was published with b excluded */
    rec_sub *c = sub_new(fx, APP_DEFAULT);
    static const char ev3[] = "{\"event\":\"e\",\"data\":\"3\",\"channel\":\"cache-news\"}";
    rec_clear(b);
    publish(fx, APP_DEFAULT, "cache-news", ev3, b);
    assert_int_equal(b->num_msgs, 0);
    subscribe(c, "cache-news");
    assert_msg_at(c, 1, ev3);

    /* the cache outlives its subscribers */
    hub_detach(&a->base);
    hub_detach(&b->base);
    hub_detach(&c->base);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, "cache-news", NULL), 1);
    hub_sweep(fx->hub); /* still valid: kept */
    rec_sub *d = sub_new(fx, APP_DEFAULT);
    hooks_clear(fx);
    assert_int_equal(subscribe(d, "cache-news"), HUB_SUBSCRIBED);
    assert_int_equal(d->num_msgs, 2);
    assert_msg_at(d, 1, ev3);
    assert_int_equal(hooks_count(fx, WEBHOOK_CACHE_MISS, "cache-news", NULL), 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "cache-news", NULL), 1);
    /* when d leaves, the cache stays; hub_free releases it (LeakSanitizer) */
}

static void publish_before_subscribe_is_replayed(void **state)
{
    fixture *fx = *state;
    static const char ev[] =
        "{\"event\":\"price\",\"data\":\"{\\\"v\\\":1}\",\"channel\":\"private-cache-px\"}";
    publish(fx, APP_DEFAULT, "private-cache-px", ev, NULL);
    assert_int_equal(fx->num_hooks, 0); /* no occupied for a cache-only channel */

    rec_sub *a = sub_new(fx, APP_DEFAULT);
    assert_int_equal(subscribe(a, "private-cache-px"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 0, SUCCEEDED("private-cache-px"));
    assert_msg_at(a, 1, ev);
    assert_int_equal(hooks_count(fx, WEBHOOK_CACHE_MISS, "private-cache-px", NULL), 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "private-cache-px", NULL), 1);

    /* presence-cache: replay after the presence state */
    publish(fx, APP_DEFAULT, "presence-cache-room", ev, NULL);
    rec_clear(a);
    assert_int_equal(join(a, "presence-cache-room", "u1", "{}"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_non_null(strstr(a->msgs[0], "subscription_succeeded"));
    assert_msg_at(a, 1, ev);
}

static void zero_ttl_cache_expires_at_once(void **state)
{
    fixture *fx = *state;
    static const char ev[] = "{\"event\":\"e\",\"data\":\"1\",\"channel\":\"cache-z\"}";
    publish(fx, APP_NO_CACHE, "cache-z", ev, NULL);
    rec_sub *a = sub_new(fx, APP_NO_CACHE);
    assert_int_equal(subscribe(a, "cache-z"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 1, "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-z\"}");
    assert_int_equal(hooks_count(fx, WEBHOOK_CACHE_MISS, "cache-z", NULL), 1);
    /* delivered live, but not kept */
    rec_clear(a);
    publish(fx, APP_NO_CACHE, "cache-z", ev, NULL);
    assert_only_msg(a, ev);
    hub_detach(&a->base);
    assert_null(hub_channel_find(app_of(fx, APP_NO_CACHE), "cache-z", 7));

    /* published with nobody there: gone after the sweep; a valid cache of
     * the same name in another app is kept */
    publish(fx, APP_NO_CACHE, "cache-y", ev, NULL);
    publish(fx, APP_NO_CACHE, "cache-w", ev, NULL);
    publish(fx, APP_DEFAULT, "cache-y", ev, NULL);
    hub_sweep(fx->hub);
    assert_null(hub_channel_find(app_of(fx, APP_NO_CACHE), "cache-y", 7));
    assert_null(hub_channel_find(app_of(fx, APP_NO_CACHE), "cache-w", 7));
    rec_sub *b = sub_new(fx, APP_NO_CACHE), *c = sub_new(fx, APP_DEFAULT);
    subscribe(b, "cache-y");
    subscribe(c, "cache-y");
    assert_msg_at(b, 1, "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-y\"}");
    assert_msg_at(c, 1, ev);
}

static void sweep_frees_more_than_one_batch(void **state)
{
    fixture *fx = *state;
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "cache-%d", i);
        publish(fx, APP_NO_CACHE, name, "{\"event\":\"e\",\"data\":\"x\"}", NULL);
    }
    rec_sub *a = sub_new(fx, APP_NO_CACHE);
    subscribe(a, "cache-7"); /* subscribed: kept */
    hub_sweep(fx->hub);
    assert_int_equal(app_of(fx, APP_NO_CACHE)->channels.count, 1);
    assert_non_null(hub_channel_find(app_of(fx, APP_NO_CACHE), "cache-7", 7));
    rec_clear(a);
    publish(fx, APP_NO_CACHE, "cache-7", "{\"event\":\"e\",\"data\":\"y\"}", NULL);
    assert_only_msg(a, "{\"event\":\"e\",\"data\":\"y\"}");
}

/* ---- subscription_count ------------------------------------------------------------ */

#define COUNT_MSG(ch, n)                                                                           \
    "{\"event\":\"pusher_internal:subscription_count\",\"data\":\"{\\\"subscription_count\\\":" #n \
    "}\",\"channel\":\"" ch "\"}"

static void subscription_count_is_broadcast_and_reported(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_COUNTING), *b = sub_new(fx, APP_COUNTING);
    assert_int_equal(subscribe(a, "counted"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 0, SUCCEEDED("counted"));
    assert_msg_at(a, 1, COUNT_MSG("counted", 1));
    const wh_rec *h = hooks_last(fx, WEBHOOK_SUBSCRIPTION_COUNT, "counted");
    assert_non_null(h);
    assert_int_equal(h->subscription_count, 1);
    assert_int_equal(h->app, APP_COUNTING);

    rec_clear(a);
    assert_int_equal(subscribe(b, "counted"), HUB_SUBSCRIBED);
    assert_only_msg(a, COUNT_MSG("counted", 2));
    assert_int_equal(b->num_msgs, 2);
    assert_msg_at(b, 1, COUNT_MSG("counted", 2));
    assert_int_equal(hooks_last(fx, WEBHOOK_SUBSCRIPTION_COUNT, "counted")->subscription_count, 2);

    /* a repeated subscribe changes nothing */
    rec_clear(a);
    rec_clear(b);
    size_t hooks = fx->num_hooks;
    assert_int_equal(subscribe(b, "counted"), HUB_ALREADY_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 0);
    assert_only_msg(b, SUCCEEDED("counted"));
    assert_int_equal(fx->num_hooks, hooks);

    rec_clear(b);
    assert_true(unsubscribe(a, "counted"));
    assert_only_msg(b, COUNT_MSG("counted", 1));
    assert_int_equal(count_containing(a, "subscription_count"), 0);
    assert_int_equal(hooks_last(fx, WEBHOOK_SUBSCRIPTION_COUNT, "counted")->subscription_count, 1);

    hub_detach(&b->base);
    assert_int_equal(hooks_last(fx, WEBHOOK_SUBSCRIPTION_COUNT, "counted")->subscription_count, 0);
    assert_int_equal(hooks_count(fx, WEBHOOK_SUBSCRIPTION_COUNT, "counted", NULL), 4);
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_VACATED, "counted", NULL), 1);
}

/* ---- sign-in, watchlists, user channels, termination -------------------------------- */

#define WATCH_MSG(events)                                                                          \
    "{\"event\":\"pusher_internal:watchlist_events\",\"data\":\"{\\\"events\\\":[" events "]}\"}"
#define ONLINE(ids) "{\\\"name\\\":\\\"online\\\",\\\"user_ids\\\":[" ids "]}"
#define OFFLINE(ids) "{\\\"name\\\":\\\"offline\\\",\\\"user_ids\\\":[" ids "]}"
#define Q(id) "\\\"" id "\\\""

static void signin_and_watchlist_online_offline(void **state)
{
    fixture *fx = *state;
    rec_sub *w = sub_new(fx, APP_DEFAULT);
    static const char *const watch[] = {"alice", "bob", "alice"}; /* duplicate ignored */
    assert_true(signin(w, "watcher", watch, 3));
    assert_only_msg(w, WATCH_MSG(OFFLINE(Q("alice") "," Q("bob"))));
    assert_int_equal(w->base.num_watching, 2);
    assert_ptr_equal(w->base.user, hub_user_find(app_of(fx, APP_DEFAULT), "watcher", 7));

    /* signing in again: same user is fine, another is refused */
    assert_true(signin(w, "watcher", NULL, 0));
    assert_false(signin(w, "other", NULL, 0));
    assert_false(signin(w, "watche", NULL, 0));
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "other", 5));
    rec_clear(w);

    /* alice's first connection: online; her second: nothing */
    rec_sub *a1 = sub_new(fx, APP_DEFAULT), *a2 = sub_new(fx, APP_DEFAULT);
    assert_true(signin(a1, "alice", NULL, 0));
    assert_only_msg(w, WATCH_MSG(ONLINE(Q("alice"))));
    assert_int_equal(a1->num_msgs, 0); /* no watchlist: no event */
    rec_clear(w);
    assert_true(signin(a2, "alice", NULL, 0));
    assert_int_equal(w->num_msgs, 0);
    assert_int_equal(hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5)->num_conns, 2);

    /* a later watcher gets the current state, online and offline together */
    rec_sub *w2 = sub_new(fx, APP_DEFAULT);
    static const char *const watch2[] = {"bob", "alice"};
    assert_true(signin(w2, "w2", watch2, 2));
    assert_only_msg(w2, WATCH_MSG(ONLINE(Q("alice")) "," OFFLINE(Q("bob"))));
    rec_clear(w2);

    /* offline only when her last connection goes, to both watchers */
    hub_detach(&a1->base);
    assert_int_equal(w->num_msgs + w2->num_msgs, 0);
    hub_detach(&a2->base);
    assert_only_msg(w, WATCH_MSG(OFFLINE(Q("alice"))));
    assert_only_msg(w2, WATCH_MSG(OFFLINE(Q("alice"))));
    /* still watched: the user entry stays, with no connection */
    hub_user *alice = hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5);
    assert_non_null(alice);
    assert_int_equal(alice->num_conns, 0);
    assert_int_equal(alice->num_watchers, 2);

    /* bob signs in: both watchers told */
    rec_clear(w);
    rec_clear(w2);
    rec_sub *b = sub_new(fx, APP_DEFAULT);
    assert_true(signin(b, "bob", NULL, 0));
    assert_only_msg(w, WATCH_MSG(ONLINE(Q("bob"))));
    assert_only_msg(w2, WATCH_MSG(ONLINE(Q("bob"))));

    /* watchers leave: unwatched, offline users are forgotten */
    hub_detach(&w->base);
    assert_int_equal(hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5)->num_watchers, 1);
    hub_detach(&w2->base);
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5));
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "w2", 2));
    assert_non_null(hub_user_find(app_of(fx, APP_DEFAULT), "bob", 3)); /* signed in */
    hub_detach(&b->base);
    assert_int_equal(app_of(fx, APP_DEFAULT)->users.count, 0);
}

static void watching_oneself_is_harmless(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT);
    static const char *const watch[] = {"me"};
    assert_true(signin(a, "me", watch, 1));
    assert_only_msg(a, WATCH_MSG(ONLINE(Q("me"))));
    hub_user *me = hub_user_find(app_of(fx, APP_DEFAULT), "me", 2);
    assert_int_equal(me->num_conns, 1);
    assert_int_equal(me->num_watchers, 1);
    rec_clear(a);
    hub_detach(&a->base);
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "me", 2));
}

static void server_to_user_reaches_every_connection_of_the_user(void **state)
{
    fixture *fx = *state;
    rec_sub *a1 = sub_new(fx, APP_DEFAULT), *a2 = sub_new(fx, APP_DEFAULT);
    rec_sub *a3 = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    rec_sub *anon = sub_new(fx, APP_DEFAULT);
    rec_sub *other_app = sub_new(fx, APP_COUNTING);
    assert_true(signin(a1, "alice", NULL, 0));
    assert_true(signin(a2, "alice", NULL, 0));
    assert_true(signin(a3, "alice", NULL, 0));
    assert_true(signin(b, "bob", NULL, 0));
    assert_true(signin(other_app, "alice", NULL, 0));
    /* pusher-js subscribes to its own user channel; it changes nothing */
    assert_int_equal(subscribe(a1, "#server-to-user-alice"), HUB_SUBSCRIBED);
    rec_clear(a1);

    static const char ev[] =
        "{\"event\":\"note\",\"data\":\"x\",\"channel\":\"#server-to-user-alice\"}";
    publish(fx, APP_DEFAULT, "#server-to-user-alice", ev, NULL);
    assert_only_msg(a1, ev); /* once, although also subscribed */
    assert_only_msg(a2, ev);
    assert_only_msg(a3, ev);
    assert_int_equal(b->num_msgs + anon->num_msgs + other_app->num_msgs, 0);

    rec_clear(a1);
    rec_clear(a2);
    rec_clear(a3);
    publish(fx, APP_DEFAULT, "#server-to-user-alice", ev, a2);
    assert_only_msg(a1, ev);
    assert_int_equal(a2->num_msgs, 0);
    assert_only_msg(a3, ev);

    /* a connection that left no longer receives; unknown users: nothing */
    rec_clear(a1);
    rec_clear(a3);
    hub_detach(&a3->base);
    publish(fx, APP_DEFAULT, "#server-to-user-alice", ev, NULL);
    assert_only_msg(a1, ev);
    assert_int_equal(a3->num_msgs, 0);
    publish(fx, APP_DEFAULT, "#server-to-user-nobody", ev, NULL);
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "nobody", 6));
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), "#server-to-user-nobody", 22));
}

static size_t closes(rec_sub *const *subs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)subs[i]->num_closes;
    return total;
}

static void terminate_user_closes_each_connection_with_4009(void **state)
{
    fixture *fx = *state;
    rec_sub *a1 = sub_new(fx, APP_DEFAULT), *a2 = sub_new(fx, APP_DEFAULT);
    rec_sub *b = sub_new(fx, APP_DEFAULT), *w = sub_new(fx, APP_DEFAULT);
    rec_sub *other_app = sub_new(fx, APP_COUNTING);
    rec_sub *all[] = {a1, a2, b, w, other_app};
    assert_true(signin(a1, "alice", NULL, 0));
    assert_true(signin(a2, "alice", NULL, 0));
    assert_true(signin(b, "bob", NULL, 0));
    assert_true(signin(other_app, "alice", NULL, 0));
    static const char *const watch[] = {"carol"};
    assert_true(signin(w, "watcher", watch, 1));

    hub_terminate_user(app_of(fx, APP_DEFAULT), "alice", 5);
    assert_int_equal(a1->num_closes, 1);
    assert_int_equal(a1->close_code, 4009);
    assert_int_equal(a2->num_closes, 1);
    assert_int_equal(a2->close_code, 4009);
    assert_int_equal(closes(all, 5), 2); /* nobody else, not alice of another app */
    /* close is asynchronous: still attached and signed in until detached */
    assert_non_null(a1->base.app);
    assert_ptr_equal(a1->base.user, hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5));

    hub_terminate_user(app_of(fx, APP_DEFAULT), "nobody", 6);
    /* watched but offline: nobody to close */
    hub_terminate_user(app_of(fx, APP_DEFAULT), "carol", 5);
    assert_int_equal(closes(all, 5), 2);

    hub_detach(&a1->base);
    hub_detach(&a2->base);
    assert_null(hub_user_find(app_of(fx, APP_DEFAULT), "alice", 5));
    hub_terminate_user(app_of(fx, APP_DEFAULT), "alice", 5);
    assert_int_equal(closes(all, 5), 2);
}

/* ---- detach frees everything --------------------------------------------------------- */

static void detach_releases_everything(void **state)
{
    fixture *fx = *state;
    enum { N = 30 };
    rec_sub *subs[N];
    char name[48];
    for (size_t i = 0; i < N; i++) {
        subs[i] = sub_new(fx, i % 2 ? APP_DEFAULT : APP_COUNTING);
        snprintf(name, sizeof name, "user-%zu", i % 4);
        static const char *const watch[] = {"user-0", "user-1", "ghost"};
        assert_true(signin(subs[i], name, watch, 3));
        for (size_t c = 0; c < 10; c++) {
            snprintf(name, sizeof name, "ch-%zu", (i + c) % 12);
            subscribe(subs[i], name);
            snprintf(name, sizeof name, "presence-%zu", (i + c) % 5);
            join(subs[i], name, i % 3 ? "x" : "y", "{\"k\":[1,2,3]}");
            snprintf(name, sizeof name, "cache-%zu", c % 3);
            subscribe(subs[i], name);
        }
    }
    publish(fx, APP_DEFAULT, "cache-1", "{\"event\":\"e\",\"data\":\"v\"}", NULL);
    for (size_t i = 0; i < N; i++) {
        hub_detach(&subs[i]->base);
        assert_int_equal(subs[i]->base.num_slots, 0);
        assert_null(subs[i]->base.user);
        assert_int_equal(subs[i]->base.num_watching, 0);
    }
    for (size_t a = 0; a < NUM_APPS; a++) {
        assert_int_equal(app_of(fx, a)->users.count, 0);
        assert_int_equal(app_of(fx, a)->sockets.count, 0);
    }
    /* no channel is left but cached ones (teardown checks), and the cached
     * event survived everyone leaving; hub_free releases it */
    assert_int_equal(app_of(fx, APP_COUNTING)->channels.count, 0);
    rec_sub *late = sub_new(fx, APP_DEFAULT);
    subscribe(late, "cache-1");
    assert_msg_at(late, 1, "{\"event\":\"e\",\"data\":\"v\"}");
    assert_int_equal(hooks_count(fx, WEBHOOK_CHANNEL_OCCUPIED, "ch-0", NULL),
                     hooks_count(fx, WEBHOOK_CHANNEL_VACATED, "ch-0", NULL));
}

/* A configuration without apps, and freeing nothing. */
static void hub_with_no_apps_is_fine(void **state)
{
    (void)state;
    hk_config cfg = {0};
    hub *h = hub_new(&cfg, 7, NULL, NULL);
    assert_non_null(h);
    hub_sweep(h);
    hub_free(h);
    hub_free(NULL);
}

static void no_webhook_sink_is_fine(void **state)
{
    (void)state;
    hk_config cfg = {0};
    hk_app app;
    config_app_defaults(&app);
    app.id = "1";
    app.key = "k";
    app.secret = "s";
    app.subscription_count = true;
    cfg.apps = &app;
    cfg.num_apps = 1;
    hub *h = hub_new(&cfg, 2, NULL, NULL);
    rec_sub r = {0};
    hub_attach(hub_app_of(h, &app), &r.base, &rec_ops);
    assert_int_equal(join(&r, "presence-cache-q", "u", "{}"), HUB_SUBSCRIBED);
    assert_int_equal(subscribe(&r, "x"), HUB_SUBSCRIBED);
    hub_detach(&r.base);
    rec_clear(&r);
    free(r.msgs);
    hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(attach_gives_unique_findable_socket_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(subscribe_sends_succeeded_and_occupied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(resubscribe_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(presence_succeeded_data_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(presence_is_per_user_not_per_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(member_limit_refuses_new_users_and_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unsubscribe_in_random_order_keeps_delivery_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(detach_in_random_order_keeps_delivery_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(publish_reaches_subscribers_except_one, setup, teardown),
        cmocka_unit_test_setup_teardown(client_event_goes_to_others_and_to_webhooks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cache_miss_then_replay_of_the_last_event, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_before_subscribe_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_ttl_cache_expires_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_frees_more_than_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(subscription_count_is_broadcast_and_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(signin_and_watchlist_online_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(watching_oneself_is_harmless, setup, teardown),
        cmocka_unit_test_setup_teardown(server_to_user_reaches_every_connection_of_the_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(terminate_user_closes_each_connection_with_4009, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(detach_releases_everything, setup, teardown),
        cmocka_unit_test(hub_with_no_apps_is_fine),
        cmocka_unit_test(no_webhook_sink_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
