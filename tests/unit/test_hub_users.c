/* hub: sign-in and watchlists, #server-to-user channels, terminating a
 * user's connections, and detach freeing everything (spec §3.5). */
#include "hub_fixture.h"

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
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "ch-0", NULL),
                     hooks_count(fx, HUB_CHANNEL_VACATED, "ch-0", NULL));
}

/* A configuration without apps, and freeing nothing. */
static void hub_with_no_apps_is_fine(void **state)
{
    (void)state;
    hk_config cfg = {0};
    hub *h = hub_new(&cfg, 7);
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
    hub *h = hub_new(&cfg, 2);
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
