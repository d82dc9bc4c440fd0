/* hub: socket ids, subscribe/unsubscribe, presence per user and its
 * limits, and the swap-remove bookkeeping under random unsubscribes and
 * detaches (spec §3.3–3.4). */
#include "hub_fixture.h"

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

/* The directory tracks which workers hold a channel's subscribers, so a
 * publish is handed only to them. */
static void directory_knows_which_workers_are_interested(void **state)
{
    fixture *fx = *state;
    directory *d = fx->hub->dir;
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 0);
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);
    assert_int_equal(subscribe(a, "x"), HUB_SUBSCRIBED);
    assert_int_equal(subscribe(b, "x"), HUB_SUBSCRIBED);
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 1); /* this hub: bit 0 */
    /* another worker (bit 2) joins and leaves */
    dir_subscribe_result r =
        directory_subscribe(d, APP_DEFAULT, "x", 1, channel_classify("x", 1), NULL, NULL, 4);
    assert_int_equal(r.total, 3);
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 5);
    bool removed;
    assert_int_equal(directory_unsubscribe(d, APP_DEFAULT, "x", 1, NULL, 0, &removed, 4), 2);
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 1);
    /* the bit stays while one local subscriber is left, and goes with the last */
    assert_true(unsubscribe(a, "x"));
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 1);
    assert_true(unsubscribe(b, "x"));
    assert_int_equal(directory_interest(d, APP_DEFAULT, "x", 1), 0);
}

static void subscribe_sends_succeeded_and_occupied_once(void **state)
{
    fixture *fx = *state;
    rec_sub *a = sub_new(fx, APP_DEFAULT), *b = sub_new(fx, APP_DEFAULT);

    assert_int_equal(subscribe(a, "news"), HUB_SUBSCRIBED);
    assert_only_msg(a, SUCCEEDED("news"));
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "news", NULL), 1);
    assert_int_equal(directory_channels(fx->hub->dir, APP_DEFAULT), 1);
    assert_non_null(hub_subscription(&a->base, "news", 4));
    assert_null(hub_subscription(&a->base, "new", 3));

    assert_int_equal(subscribe(b, "news"), HUB_SUBSCRIBED);
    assert_only_msg(b, SUCCEEDED("news"));
    assert_int_equal(a->num_msgs, 1); /* nothing to the others */
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "news", NULL), 1);
    /* no subscription_count when the app does not ask for it */
    assert_int_equal(hooks_count(fx, HUB_SUBSCRIPTION_COUNT, "news", NULL), 0);
    assert_int_equal(hub_channel_find(app_of(fx, APP_DEFAULT), "news", 4)->num_subs, 2);
    assert_int_equal(directory_channels(fx->hub->dir, APP_DEFAULT), 1);

    assert_true(unsubscribe(a, "news"));
    assert_false(unsubscribe(a, "news"));
    assert_false(unsubscribe(a, "other"));
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, "news", NULL), 0);
    assert_int_equal(directory_channels(fx->hub->dir, APP_DEFAULT), 1);
    assert_true(unsubscribe(b, "news"));
    assert_int_equal(directory_channels(fx->hub->dir, APP_DEFAULT), 0);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, "news", NULL), 1);
    assert_null(hub_channel_find(app_of(fx, APP_DEFAULT), "news", 4));
    assert_int_equal(a->base.num_slots, 0);
    assert_int_equal(fx->num_hooks, 2);

    /* occupied again after vacated */
    assert_int_equal(subscribe(a, "news"), HUB_SUBSCRIBED);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "news", NULL), 2);
    assert_int_equal(directory_channels(fx->hub->dir, APP_DEFAULT), 1);
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
    assert_int_equal(hooks_count(fx, HUB_MEMBER_REMOVED, "presence-r", "u1"), 1);
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
    assert_int_equal(hooks_count(fx, HUB_MEMBER_ADDED, "presence-room", "u1"), 1);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, "presence-room", NULL), 1);

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
    assert_int_equal(hooks_count(fx, HUB_MEMBER_ADDED, room, NULL), 0);
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
    assert_int_equal(hooks_count(fx, HUB_MEMBER_REMOVED, room, NULL), 0);
    assert_int_equal(ch->members.count, 3);

    /* the last tab leaves (by disconnecting): member_removed to the others */
    hub_detach(&a2->base);
    static const char alice_removed[] =
        "{\"event\":\"pusher_internal:member_removed\",\"data\":\"{\\\"user_id\\\":\\\"alice\\\"}"
        "\",\"channel\":\"presence-room\"}";
    assert_only_msg(b, alice_removed);
    assert_only_msg(c, alice_removed);
    assert_int_equal(a1->num_msgs, 0);
    assert_int_equal(hooks_count(fx, HUB_MEMBER_REMOVED, room, "alice"), 1);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, room, NULL), 0);
    assert_int_equal(ch->members.count, 2);

    /* alice comes back with a new info: it is the first again */
    rec_clear(b);
    assert_int_equal(join(a1, room, "alice", "{\"tab\":3}"), HUB_SUBSCRIBED);
    assert_int_equal(count_containing(b, "{\\\"tab\\\":3}"), 1);
    assert_int_equal(hooks_count(fx, HUB_MEMBER_ADDED, room, "alice"), 1);

    hub_detach(&a1->base);
    hub_detach(&b->base);
    hub_detach(&c->base);
    assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, room, NULL), 1);
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
        assert_int_equal(hooks_count(fx, HUB_CHANNEL_OCCUPIED, names[c], NULL), 1);
        assert_int_equal(hooks_count(fx, HUB_CHANNEL_VACATED, names[c], NULL), 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(attach_gives_unique_findable_socket_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_knows_which_workers_are_interested, setup,
                                        teardown),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
