/* rest_auth: signed HTTP API requests (spec §8.2), checked against the
 * verified requests of spec §8.8 / Appendix A7-A9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/utf8.h"
#include "protocol/rest_auth.h"
#include "protocol/signature.h"

#define KEY "278d425bdf160c739803"
#define SECRET "7ad3773142a6692b25b8"
#define TS 1700000000

static const char a7_body[] =
    "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":\\\"data\\\"}\"}";
static const char a7_query[] =
    "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="
    "ec365a775a4cd0599faeb73354201b6f&auth_signature="
    "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

static const char a8_body[] = "{\"name\":\"new-message\",\"channel\":\"private-conversation-42\","
                              "\"data\":\"{\\\"text\\\":\\\"hi\\\"}\",\"socket_id\":\"1234.1234\"}";
static const char a8_query[] =
    "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&body_md5="
    "e86ba5fc6621424977be8aeef3739d95&auth_signature="
    "6248ee1fce2ca5037a2f0453879d1547535528c5801fe05c524d5d121848b2a1";

static const char a9_query[] =
    "filter_by_prefix=presence-&info=user_count&auth_key=278d425bdf160c739803&auth_timestamp="
    "1700000000&auth_version=1.0&auth_signature="
    "5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a";

static char err[1024];

static int verify(const char *method, const char *path, const char *query, const char *body,
                  time_t now)
{
    rest_auth_request r = {
        .method = method,
        .method_len = strlen(method),
        .path = path,
        .path_len = strlen(path),
        .query = query,
        .query_len = query ? strlen(query) : 0,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    return rest_auth_verify(&r, KEY, SECRET, now, err, sizeof err);
}

/* Appends "&auth_signature=<hex of METHOD\nPATH\ncanonical>" to raw. */
static const char *signed_query(const char *method, const char *path, const char *canonical,
                                const char *raw)
{
    static char q[2048];
    char tosign[1024], hex[SIG_HEX_LEN + 1];
    int n = snprintf(tosign, sizeof tosign, "%s\n%s\n%s", method, path, canonical);
    sig_hmac_sha256_hex(SECRET, strlen(SECRET), tosign, (size_t)n, hex);
    snprintf(q, sizeof q, "%s&auth_signature=%s", raw, hex);
    return q;
}

static void pusher_docs_example_a7_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify("POST", "/apps/3/events", a7_query, a7_body, 1353088179 + 5), 0);
    assert_string_equal(err, "");
}

static void signed_publish_a8_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, a8_body, TS), 0);
}

static void signed_channel_list_a9_is_accepted_in_any_parameter_order(void **state)
{
    (void)state;
    assert_int_equal(verify("GET", "/apps/3/channels", a9_query, NULL, TS), 0);
    const char *shuffled =
        "auth_signature=5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a&info="
        "user_count&auth_version=1.0&auth_timestamp=1700000000&filter_by_prefix=presence-&auth_"
        "key=278d425bdf160c739803";
    assert_int_equal(verify("GET", "/apps/3/channels", shuffled, NULL, TS), 0);
}

static void timestamp_within_600_seconds_either_way_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, a8_body, TS + 600), 0);
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, a8_body, TS - 600), 0);
}

static void timestamp_601_seconds_old_or_ahead_is_refused_with_both_times(void **state)
{
    (void)state;
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, a8_body, TS + 601), 401);
    assert_string_equal(err, "Timestamp expired: Given timestamp (2023-11-14T22:13:20Z) not within "
                             "600s of server time (2023-11-14T22:23:21Z)");
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, a8_body, TS - 601), 401);
    assert_non_null(strstr(err, "Timestamp expired"));
}

static void non_numeric_or_huge_timestamp_is_refused(void **state)
{
    (void)state;
    const char *q = signed_query("GET", "/apps/3/channels",
                                 "auth_key=" KEY "&auth_timestamp=17e8&auth_version=1.0",
                                 "auth_key=" KEY "&auth_timestamp=17e8&auth_version=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_non_null(strstr(err, "Invalid auth_timestamp"));
    q = signed_query("GET", "/apps/3/channels",
                     "auth_key=" KEY "&auth_timestamp=99999999999999999999999&auth_version=1.0",
                     "auth_key=" KEY "&auth_timestamp=99999999999999999999999&auth_version=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_non_null(strstr(err, "Timestamp expired: Given timestamp (99999999999999999999999)"));
    q = signed_query("GET", "/apps/3/channels",
                     "auth_key=" KEY "&auth_timestamp=-1700000000&auth_version=1.0",
                     "auth_key=" KEY "&auth_timestamp=-1700000000&auth_version=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
}

static void wrong_body_md5_is_refused(void **state)
{
    (void)state;
    /* Same query, body changed by one byte. */
    char body[sizeof a8_body];
    memcpy(body, a8_body, sizeof body);
    body[10] = 'X';
    assert_int_equal(verify("POST", "/apps/3/events", a8_query, body, TS), 401);
    assert_non_null(strstr(err, "body_md5 does not match the body"));
    assert_non_null(strstr(err, "e86ba5fc6621424977be8aeef3739d95"));
}

static void body_without_body_md5_is_refused(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0";
    const char *q = signed_query("POST", "/apps/3/events", canon, canon);
    assert_int_equal(verify("POST", "/apps/3/events", q, a8_body, TS), 401);
    assert_non_null(strstr(err, "body_md5"));
}

static void empty_body_with_md5_of_nothing_is_accepted(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&body_md5="
                        "d41d8cd98f00b204e9800998ecf8427e";
    const char *q = signed_query("POST", "/apps/3/users/1/terminate_connections", canon, canon);
    assert_int_equal(verify("POST", "/apps/3/users/1/terminate_connections", q, NULL, TS), 0);
    /* ...but a body_md5 of something else with no body is refused. */
    canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&body_md5="
            "99914b932bd37a50b983c5e7c90ae93b";
    q = signed_query("POST", "/apps/3/users/1/terminate_connections", canon, canon);
    assert_int_equal(verify("POST", "/apps/3/users/1/terminate_connections", q, NULL, TS), 401);
    assert_non_null(strstr(err, "body_md5 does not match"));
}

static void terminate_body_of_braces_is_accepted_with_its_md5(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&body_md5="
                        "99914b932bd37a50b983c5e7c90ae93b";
    const char *q = signed_query("POST", "/apps/3/users/1/terminate_connections", canon, canon);
    assert_int_equal(verify("POST", "/apps/3/users/1/terminate_connections", q, "{}", TS), 0);
}

static void missing_parameters_are_all_named(void **state)
{
    (void)state;
    assert_int_equal(verify("GET", "/apps/3/channels", NULL, NULL, TS), 401);
    assert_string_equal(err, "Missing required query parameter(s): auth_key, auth_timestamp, "
                             "auth_version, auth_signature");
    assert_int_equal(
        verify("GET", "/apps/3/channels", "auth_key=" KEY "&auth_version=1.0", NULL, TS), 401);
    assert_string_equal(err, "Missing required query parameter(s): auth_timestamp, auth_signature");
    assert_int_equal(verify("GET", "/apps/3/channels", "", NULL, TS), 401);
    assert_int_equal(verify("GET", "/apps/3/channels", "&&&", NULL, TS), 401);
}

static void wrong_auth_key_is_refused(void **state)
{
    (void)state;
    const char *canon = "auth_key=other&auth_timestamp=1700000000&auth_version=1.0";
    const char *q = signed_query("GET", "/apps/3/channels", canon, canon);
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_string_equal(err, "auth_key does not match the app: got \"other\"");
}

static void auth_version_other_than_1_0_is_refused(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=2.0";
    const char *q = signed_query("GET", "/apps/3/channels", canon, canon);
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_non_null(strstr(err, "auth_version"));
}

static void bad_signature_error_shows_the_string_to_sign_but_never_the_secret(void **state)
{
    (void)state;
    /* A8 signed for another path. */
    assert_int_equal(verify("POST", "/apps/4/events", a8_query, a8_body, TS), 401);
    assert_string_equal(
        err, "Invalid signature: you should have sent HmacSHA256Hex(\"POST\\n/apps/4/events\\n"
             "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&body_md5="
             "e86ba5fc6621424977be8aeef3739d95\", your_secret_key), but you sent "
             "\"6248ee1fce2ca5037a2f0453879d1547535528c5801fe05c524d5d121848b2a1\"");
    assert_null(strstr(err, SECRET));
    /* The correct signature for /apps/4 must not leak either. */
    char hex[SIG_HEX_LEN + 1];
    const char *tosign = "POST\n/apps/4/events\nauth_key=278d425bdf160c739803&auth_timestamp="
                         "1700000000&auth_version=1.0&body_md5=e86ba5fc6621424977be8aeef3739d95";
    sig_hmac_sha256_hex(SECRET, strlen(SECRET), tosign, strlen(tosign), hex);
    assert_null(strstr(err, hex));
}

static void method_is_part_of_the_signature(void **state)
{
    (void)state;
    assert_int_equal(verify("GET", "/apps/3/events", a8_query, a8_body, TS), 401);
    assert_non_null(strstr(err, "Invalid signature"));
}

static void truncated_or_uppercase_signature_is_refused(void **state)
{
    (void)state;
    char q[sizeof a8_query];
    memcpy(q, a8_query, sizeof q);
    q[sizeof q - 2] = '\0'; /* drop the last hex digit */
    assert_int_equal(verify("POST", "/apps/3/events", q, a8_body, TS), 401);
    memcpy(q, a8_query, sizeof q);
    for (char *p = strstr(q, "auth_signature=") + 15; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(verify("POST", "/apps/3/events", q, a8_body, TS), 401);
}

static void uppercase_query_keys_are_lowercased_before_signing(void **state)
{
    (void)state;
    /* Pusher docs: "Name: Something else" signs as name=Something else. */
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&name="
                        "Something else";
    const char *q = signed_query("GET", "/apps/3/channels", canon,
                                 "Name=Something+else&AUTH_KEY=" KEY
                                 "&Auth_Timestamp=1700000000&auth_VERSION=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 0);
    /* The signature key itself may be uppercase too. */
    char upper[2048];
    snprintf(upper, sizeof upper, "%s", q);
    memcpy(strstr(upper, "auth_signature"), "AUTH_SIGNATURE", 14);
    assert_int_equal(verify("GET", "/apps/3/channels", upper, NULL, TS), 0);
}

static void percent_encoded_comma_in_info_signs_as_a_plain_comma(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&info="
                        "user_count,subscription_count";
    /* php/Guzzle escapes the comma, node does not; both sign the raw comma. */
    const char *php = signed_query("GET", "/apps/3/channels/presence-a", canon,
                                   "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&"
                                   "info=user_count%2Csubscription_count");
    assert_int_equal(verify("GET", "/apps/3/channels/presence-a", php, NULL, TS), 0);
    const char *node = signed_query("GET", "/apps/3/channels/presence-a", canon,
                                    "info=user_count,subscription_count&auth_key=" KEY
                                    "&auth_timestamp=1700000000&auth_version=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels/presence-a", node, NULL, TS), 0);
}

static void repeated_keys_are_joined_with_commas_in_request_order(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&channels[]="
                        "b,a";
    const char *q = signed_query("GET", "/apps/3/channels", canon,
                                 "channels%5B%5D=b&auth_key=" KEY
                                 "&auth_timestamp=1700000000&channels[]=a&auth_version=1.0");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 0);
}

static void path_is_signed_exactly_as_sent(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0";
    const char *q = signed_query("GET", "/apps/3/channels/%23server-to-user-1", canon, canon);
    assert_int_equal(verify("GET", "/apps/3/channels/%23server-to-user-1", q, NULL, TS), 0);
    assert_int_equal(verify("GET", "/apps/3/channels/#server-to-user-1", q, NULL, TS), 401);
}

static void bad_percent_escape_is_refused(void **state)
{
    (void)state;
    assert_int_equal(verify("GET", "/apps/3/channels", "auth_key=%zz", NULL, TS), 401);
    assert_non_null(strstr(err, "percent"));
    assert_int_equal(verify("GET", "/apps/3/channels", "auth_key=a%0", NULL, TS), 401);
    assert_int_equal(verify("GET", "/apps/3/channels", "a%00=1", NULL, TS), 401);
}

static void control_bytes_in_the_error_are_escaped(void **state)
{
    (void)state;
    const char *canon = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&x=a\nb";
    const char *q =
        signed_query("GET", "/apps/3/channels", canon,
                     "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&x=a%0Ab%01");
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_non_null(strstr(err, "x=a\\nb\\x01"));
    assert_null(strchr(err, '\n'));
}

static void error_is_truncated_to_the_buffer_and_terminated(void **state)
{
    (void)state;
    rest_auth_request r = {.method = "GET", .method_len = 3, .path = "/", .path_len = 1};
    char small[10];
    memset(small, 'z', sizeof small);
    assert_int_equal(rest_auth_verify(&r, KEY, SECRET, TS, small, sizeof small), 401);
    assert_int_equal(strlen(small), 9);
    /* err_cap 0: nothing written, still refused. */
    assert_int_equal(rest_auth_verify(&r, KEY, SECRET, TS, NULL, 0), 401);
}

static void bytes_that_are_not_utf8_in_the_error_become_u_fffd(void **state)
{
    (void)state;
    /* Decoded query values may be any bytes; the error ends up in a JSON
     * body, which must be UTF-8. */
    const char *q = "auth_key=" KEY "&auth_timestamp=1700000000&auth_version=1.0&x=%FF%E2%82&y="
                    "%C3%A9%C3%A9%C3%A9&auth_signature="
                    "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(verify("GET", "/apps/3/channels", q, NULL, TS), 401);
    assert_true(utf8_valid((const uint8_t *)err, strlen(err)));
    assert_non_null(strstr(err, "x=\xEF\xBF\xBD\xEF\xBF\xBD&y=\xC3\xA9\xC3\xA9\xC3\xA9"));
    /* Cut to any buffer size, it stays valid: never inside a character. */
    char full[1024];
    snprintf(full, sizeof full, "%s", err);
    rest_auth_request r = {.method = "GET",
                           .method_len = 3,
                           .path = "/apps/3/channels",
                           .path_len = 16,
                           .query = q,
                           .query_len = strlen(q)};
    for (size_t cap = 1; cap <= strlen(full) + 1; cap++) {
        char small[1024];
        assert_int_equal(rest_auth_verify(&r, KEY, SECRET, TS, small, cap), 401);
        assert_true(strlen(small) < cap);
        assert_true(utf8_valid((const uint8_t *)small, strlen(small)));
        assert_memory_equal(small, full, strlen(small));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pusher_docs_example_a7_is_accepted),
        cmocka_unit_test(signed_publish_a8_is_accepted),
        cmocka_unit_test(signed_channel_list_a9_is_accepted_in_any_parameter_order),
        cmocka_unit_test(timestamp_within_600_seconds_either_way_is_accepted),
        cmocka_unit_test(timestamp_601_seconds_old_or_ahead_is_refused_with_both_times),
        cmocka_unit_test(non_numeric_or_huge_timestamp_is_refused),
        cmocka_unit_test(wrong_body_md5_is_refused),
        cmocka_unit_test(body_without_body_md5_is_refused),
        cmocka_unit_test(empty_body_with_md5_of_nothing_is_accepted),
        cmocka_unit_test(terminate_body_of_braces_is_accepted_with_its_md5),
        cmocka_unit_test(missing_parameters_are_all_named),
        cmocka_unit_test(wrong_auth_key_is_refused),
        cmocka_unit_test(auth_version_other_than_1_0_is_refused),
        cmocka_unit_test(bad_signature_error_shows_the_string_to_sign_but_never_the_secret),
        cmocka_unit_test(method_is_part_of_the_signature),
        cmocka_unit_test(truncated_or_uppercase_signature_is_refused),
        cmocka_unit_test(uppercase_query_keys_are_lowercased_before_signing),
        cmocka_unit_test(percent_encoded_comma_in_info_signs_as_a_plain_comma),
        cmocka_unit_test(repeated_keys_are_joined_with_commas_in_request_order),
        cmocka_unit_test(path_is_signed_exactly_as_sent),
        cmocka_unit_test(bad_percent_escape_is_refused),
        cmocka_unit_test(control_bytes_in_the_error_are_escaped),
        cmocka_unit_test(error_is_truncated_to_the_buffer_and_terminated),
        cmocka_unit_test(bytes_that_are_not_utf8_in_the_error_become_u_fffd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
