/* history ids and rules: ids round-trip, malformed ids and ids of another
 * channel are told apart, and the rules' glob matching and defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "history/history_internal.h"

static void ids_round_trip_and_sort_within_an_epoch(void **state)
{
    (void)state;
    char a[HISTORY_ID_MAX + 1], b[HISTORY_ID_MAX + 1];
    uint32_t tag = history_tag("app-1", "chat", 4);
    size_t n = history_id_format(a, "Ab3dEf9Z", tag, 9);
    history_id_format(b, "Ab3dEf9Z", tag, 10);
    assert_int_equal(n, strlen(a));
    assert_true(n <= HISTORY_ID_MAX);
    assert_true(strcmp(a, b) < 0); /* 9 before 10 as strings too */
    for (const char *p = a; *p; p++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-", *p));
    history_id id;
    assert_null(history_id_check(a, n, "app-1", "chat", 4, &id));
    assert_string_equal(id.epoch, "Ab3dEf9Z");
    assert_int_equal(id.tag, tag);
    assert_int_equal(id.seq, 9);
    /* the largest sequence still fits */
    n = history_id_format(a, "Ab3dEf9Z", tag, 9999999999999999999ull);
    assert_null(history_id_parse(a, n, &id));
    assert_true(id.seq == 9999999999999999999ull);
    /* seq 0: the place before a history's first event (polls, event streams) */
    n = history_id_format(a, "Ab3dEf9Z", tag, 0);
    assert_null(history_id_parse(a, n, &id));
    assert_int_equal(id.seq, 0);
}

static void other_channels_and_apps_are_recognised(void **state)
{
    (void)state;
    char a[HISTORY_ID_MAX + 1];
    size_t n = history_id_format(a, "Ab3dEf9Z", history_tag("app-1", "chat", 4), 1);
    history_id id;
    assert_non_null(history_id_check(a, n, "app-1", "chat2", 5, &id));
    assert_non_null(history_id_check(a, n, "app-2", "chat", 4, &id));
    /* the app id and the name do not run together */
    assert_int_not_equal(history_tag("app-1", "xchat", 5), history_tag("app-1x", "chat", 4));
}

static void malformed_ids_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "x",
        "Ab3dEf9Z.0000000a",
        "Ab3dEf9Z.0000000a.",
        "Ab3dEf9Z.0000000A.0000000001", /* the tag is lowercase hex */
        "Ab3d-f9Z.0000000a.0000000001",
        "Ab3dEf9Z-0000000a.0000000001",
        "Ab3dEf9Z.0000000a.00000000x1",
        "Ab3dEf9Z.0000000a.99999999999999999999", /* 20 digits */
        "Ab3dEf9Z.0000000a.00001",                /* not the form issued: 10 digits */
        "Ab3dEf9Z.0000000a.00000000001",          /* nor a longer padding */
        "1' OR '1'='1",
        "Ab3dEf9Z.0000000a.0000000001 ",
    };
    history_id id;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(history_id_parse(bad[i], strlen(bad[i]), &id));
    char nul[] = "Ab3dEf9Z.0000000a.000\0000001";
    assert_non_null(history_id_parse(nul, sizeof(nul) - 1, &id));
}

static const hk_history_rule *rule(const hk_app *app, const char *name)
{
    return history_rule(app, name, strlen(name));
}

static void default_rules_keep_all_but_cache_channels(void **state)
{
    (void)state;
    hk_app app = {.history_mode = HK_HISTORY_DEFAULT};
    assert_non_null(rule(&app, "chat"));
    assert_non_null(rule(&app, "private-x"));
    assert_non_null(rule(&app, "presence-room"));
    assert_non_null(rule(&app, "#server-to-user-7"));
    assert_int_equal(rule(&app, "chat")->max_events, HK_HISTORY_DEFAULT_EVENTS);
    assert_int_equal(rule(&app, "chat")->max_age_s, HK_HISTORY_DEFAULT_AGE_S);
    assert_false(rule(&app, "chat")->client_events);
    assert_null(rule(&app, "cache-x"));
    assert_null(rule(&app, "private-cache-x"));
    assert_null(rule(&app, "private-encrypted-cache-x"));
    assert_null(rule(&app, "presence-cache-x"));
    app.history_mode = HK_HISTORY_OFF;
    assert_null(rule(&app, "chat"));
}

static void rules_match_first_glob(void **state)
{
    (void)state;
    hk_history_rule rules[] = {
        {.channels = "private-conversation-*", .max_events = 5000},
        {.channels = "room-*-log", .max_events = 7},
        {.channels = "exact", .max_events = 8},
        {.channels = "*a*b*", .max_events = 9},
    };
    hk_app app = {.history_mode = HK_HISTORY_RULES, .history_rules = rules, .num_history_rules = 4};
    assert_ptr_equal(rule(&app, "private-conversation-7"), &rules[0]);
    assert_ptr_equal(rule(&app, "private-conversation-"), &rules[0]);
    assert_ptr_equal(rule(&app, "room-1-log"), &rules[1]);
    assert_ptr_equal(rule(&app, "room--log"), &rules[1]);
    assert_ptr_equal(rule(&app, "room-a-log-b"), &rules[3]); /* not rule 1: it must end in -log */
    assert_null(rule(&app, "room-1-logs"));
    assert_ptr_equal(rule(&app, "exact"), &rules[2]);
    assert_null(rule(&app, "exactly"));
    assert_ptr_equal(rule(&app, "xaxxbx"), &rules[3]);
    assert_null(rule(&app, "bxa"));
    app.num_history_rules = 0;
    assert_null(rule(&app, "anything")); /* an empty list keeps nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_round_trip_and_sort_within_an_epoch),
        cmocka_unit_test(other_channels_and_apps_are_recognised),
        cmocka_unit_test(malformed_ids_are_refused),
        cmocka_unit_test(default_rules_keep_all_but_cache_channels),
        cmocka_unit_test(rules_match_first_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
