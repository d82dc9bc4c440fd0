/* hub: publishing (with an excluded socket), client events, cache channels
 * and subscription counts. */
#include "hub_fixture.h"

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
    /* observers see the publish once, with the message */
    assert_int_equal(hooks_count(fx, HUB_PUBLISH, "room", NULL), 1);

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
    frame *f = frame_message(ev, strlen(ev));
    sub_slot *slot = hub_subscription(&a->base, "presence-chat", 13);
    assert_non_null(slot);
    hub_client_event(&a->base, slot, f, "client-typing", 13, "{\"t\":1}", 7);
    frame_unref(f);
    assert_int_equal(a->num_msgs, 0);
    assert_only_msg(b, ev);
    assert_int_equal(fx->num_hooks, 1);
    const wh_rec *h = hooks_last(fx, HUB_CLIENT_EVENT, "presence-chat");
    assert_non_null(h);
    assert_string_equal(h->user_id, "alice");
    assert_string_equal(h->event, "client-typing");
    assert_string_equal(h->data, "{\"t\":1}");
    assert_string_equal(h->socket_id, a->base.socket_id);

    /* on a private channel there is no user_id */
    static const char ev2[] = "{\"event\":\"client-x\",\"data\":\"s\",\"channel\":\"private-p\"}";
    f = frame_message(ev2, strlen(ev2));
    hub_client_event(&b->base, hub_subscription(&b->base, "private-p", 9), f, "client-x", 8,
                     "\"s\"", 3);
    frame_unref(f);
    assert_only_msg(a, ev2);
    h = hooks_last(fx, HUB_CLIENT_EVENT, "private-p");
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
    assert_int_equal(hooks_count(fx, HUB_CACHE_MISS, "cache-news", NULL), 1);

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
    assert_int_equal(hooks_count(fx, HUB_CACHE_MISS, "cache-news", NULL), 0);

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
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, "cache-news", NULL), 1);
    hub_sweep(fx->hub); /* still valid: kept */
    rec_sub *d = sub_new(fx, APP_DEFAULT);
    hooks_clear(fx);
    assert_int_equal(subscribe(d, "cache-news"), HUB_SUBSCRIBED);
    assert_int_equal(d->num_msgs, 2);
    assert_msg_at(d, 1, ev3);
    assert_int_equal(hooks_count(fx, HUB_CACHE_MISS, "cache-news", NULL), 0);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "cache-news", NULL), 1);
    /* when d leaves, the cache stays; hub_free releases it (LeakSanitizer) */
}

static void publish_before_subscribe_is_replayed(void **state)
{
    fixture *fx = *state;
    static const char ev[] =
        "{\"event\":\"price\",\"data\":\"{\\\"v\\\":1}\",\"channel\":\"private-cache-px\"}";
    publish(fx, APP_DEFAULT, "private-cache-px", ev, NULL);
    assert_int_equal(fx->num_hooks, 1); /* the publish, no occupied for a cache-only channel */
    assert_int_equal(hooks_count(fx, HUB_PUBLISH, "private-cache-px", NULL), 1);

    rec_sub *a = sub_new(fx, APP_DEFAULT);
    assert_int_equal(subscribe(a, "private-cache-px"), HUB_SUBSCRIBED);
    assert_int_equal(a->num_msgs, 2);
    assert_msg_at(a, 0, SUCCEEDED("private-cache-px"));
    assert_msg_at(a, 1, ev);
    assert_int_equal(hooks_count(fx, HUB_CACHE_MISS, "private-cache-px", NULL), 0);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "private-cache-px", NULL), 1);

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
    assert_int_equal(hooks_count(fx, HUB_CACHE_MISS, "cache-z", NULL), 1);
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
    const wh_rec *h = hooks_last(fx, HUB_SUBSCRIPTION_COUNT, "counted");
    assert_non_null(h);
    assert_int_equal(h->subscription_count, 1);
    assert_int_equal(h->app, APP_COUNTING);

    rec_clear(a);
    assert_int_equal(subscribe(b, "counted"), HUB_SUBSCRIBED);
    assert_only_msg(a, COUNT_MSG("counted", 2));
    assert_int_equal(b->num_msgs, 2);
    assert_msg_at(b, 1, COUNT_MSG("counted", 2));
    assert_int_equal(hooks_last(fx, HUB_SUBSCRIPTION_COUNT, "counted")->subscription_count, 2);

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
    assert_int_equal(hooks_last(fx, HUB_SUBSCRIPTION_COUNT, "counted")->subscription_count, 1);

    hub_detach(&b->base);
    assert_int_equal(hooks_last(fx, HUB_SUBSCRIPTION_COUNT, "counted")->subscription_count, 0);
    assert_int_equal(hooks_count(fx, HUB_SUBSCRIPTION_COUNT, "counted", NULL), 4);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, "counted", NULL), 1);
}

/* ---- long names ------------------------------------------------------------------ */

/* A name of n bytes: prefix, then fill. */
static char *long_name(const char *prefix, char fill, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, fill, n);
    memcpy(s, prefix, strlen(prefix));
    s[n] = '\0';
    return s;
}

/* Names as long as the config allows (and user ids at theirs) reach every
 * frame, the directory and every observer whole; leaving frees the
 * directory entry and reports channel_vacated and member_removed for the
 * full names. */
static void names_at_the_limit_travel_whole(void **state)
{
    fixture *fx = *state;
    hub_app *app = app_of(fx, APP_DEFAULT);
    char *pub = long_name("pub-", 'p', HK_MAX_NAME_LENGTH);
    char *pres = long_name("presence-", 'q', HK_MAX_NAME_LENGTH);
    char *uid = long_name("u", 'u', USER_ID_MAX_LENGTH);
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    assert_int_equal(subscribe(a, pub), HUB_SUBSCRIBED);
    assert_int_equal(subscribe(b, pub), HUB_SUBSCRIBED);
    assert_int_equal(join(a, pres, uid, "{}"), HUB_SUBSCRIBED);
    assert_int_equal(join(b, pres, "bob", "{}"), HUB_SUBSCRIBED);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, pub, NULL), 1);
    assert_int_equal(hooks_count(fx, HUB_MEMBER_ADDED, pres, uid), 1);

    buf want;
    buf_init(&want);
    buf_printf(&want, "\"channel\":\"%s\"", pub);
    assert_int_equal(count_containing(a, want.data), 1); /* subscription_succeeded */
    rec_clear(a);
    rec_clear(b);

    buf_reset(&want);
    buf_printf(&want, "{\"event\":\"say\",\"data\":\"hi\",\"channel\":\"%s\"}", pub);
    char *ev = buf_steal(&want);
    publish(fx, APP_DEFAULT, pub, ev, NULL);
    assert_only_msg(a, ev);
    assert_only_msg(b, ev);
    free(ev);
    rec_clear(b);

    buf out;
    buf_init(&out);
    directory_list_channels(app->hub->dir, app->index, "", 0, false, false, &out);
    assert_non_null(strstr(out.data, pub));
    assert_non_null(strstr(out.data, pres));
    buf_reset(&out);

    /* a leaves the presence channel: b hears member_removed with the whole id */
    assert_true(unsubscribe(a, pres));
    assert_int_equal(hooks_count(fx, HUB_MEMBER_REMOVED, pres, uid), 1);
    buf_printf(&want, "\\\"user_id\\\":\\\"%s\\\"", uid);
    assert_int_equal(count_containing(b, want.data), 1);
    buf_reset(&want);

    /* the last subscriber of each leaves: the entries go, vacated is reported */
    assert_true(unsubscribe(a, pub));
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, pub, NULL), 0);
    assert_true(unsubscribe(b, pub));
    assert_true(unsubscribe(b, pres));
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, pub, NULL), 1);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, pres, NULL), 1);
    assert_null(hub_channel_find(app, pub, HK_MAX_NAME_LENGTH));
    assert_null(hub_channel_find(app, pres, HK_MAX_NAME_LENGTH));
    assert_false(
        directory_channel_info(app->hub->dir, app->index, pub, HK_MAX_NAME_LENGTH).occupied);
    directory_list_channels(app->hub->dir, app->index, "", 0, false, false, &out);
    assert_int_equal(out.len, 0);

    /* a user id at its limit signs out whole: its watcher hears "offline" */
    assert_true(signin(a, uid, NULL, 0));
    const char *watch[] = {uid};
    assert_true(signin(b, "bob", watch, 1));
    rec_clear(b);
    hub_detach(&a->base);
    buf_printf(&want, "\\\"offline\\\",\\\"user_ids\\\":[\\\"%s\\\"]", uid);
    assert_int_equal(count_containing(b, want.data), 1);

    buf_free(&out);
    buf_free(&want);
    free(pub);
    free(pres);
    free(uid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(publish_reaches_subscribers_except_one, setup, teardown),
        cmocka_unit_test_setup_teardown(names_at_the_limit_travel_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(client_event_goes_to_others_and_to_webhooks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cache_miss_then_replay_of_the_last_event, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_before_subscribe_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_ttl_cache_expires_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_frees_more_than_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(subscription_count_is_broadcast_and_reported, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
