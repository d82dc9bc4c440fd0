#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/http_parser.h"
#include "net/ws_handshake.h"

/* RFC 6455 §1.3 (the value there, checked against Python's hashlib). */
static void rfc6455_example_key_gives_example_accept(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    ws_handshake_accept(key, strlen(key), accept);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Builds and parses a request; fields left NULL are omitted. */
static int check(const char *request_line, const char *upgrade, const char *connection,
                 const char *key, const char *version, char accept[WS_ACCEPT_LEN + 1])
{
    static char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s\r\nHost: example.com\r\n", request_line);
    if (upgrade)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "Upgrade: %s\r\n", upgrade);
    if (connection)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "Connection: %s\r\n", connection);
    if (key)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "Sec-WebSocket-Key: %s\r\n", key);
    if (version)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "Sec-WebSocket-Version: %s\r\n", version);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
    http_request req;
    assert_int_equal(http_request_parse(buf, (size_t)n, &req), n);
    return ws_handshake_check(&req, accept);
}

#define GOOD_LINE "GET /app/key?protocol=7 HTTP/1.1"
#define GOOD_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static void valid_upgrade_request_is_accepted_with_accept_value(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1] = {0};
    assert_int_equal(check(GOOD_LINE, "websocket", "Upgrade", GOOD_KEY, "13", accept), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void header_tokens_are_matched_case_insensitively(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    assert_int_equal(check(GOOD_LINE, "WebSocket", "keep-alive, UPGRADE", GOOD_KEY, "13", accept),
                     0);
}

static void wrong_method_or_http_version_is_400(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    assert_int_equal(
        check("POST /app/key HTTP/1.1", "websocket", "Upgrade", GOOD_KEY, "13", accept), 400);
    assert_int_equal(check("GET /app/key HTTP/1.0", "websocket", "Upgrade", GOOD_KEY, "13", accept),
                     400);
    assert_int_equal(check("get /app/key HTTP/1.1", "websocket", "Upgrade", GOOD_KEY, "13", accept),
                     400);
}

static void missing_upgrade_or_connection_token_is_400(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    assert_int_equal(check(GOOD_LINE, NULL, "Upgrade", GOOD_KEY, "13", accept), 400);
    assert_int_equal(check(GOOD_LINE, "websocket", NULL, GOOD_KEY, "13", accept), 400);
    assert_int_equal(check(GOOD_LINE, "websocket", "keep-alive", GOOD_KEY, "13", accept), 400);
    assert_int_equal(check(GOOD_LINE, "h2c", "Upgrade", GOOD_KEY, "13", accept), 400);
}

static void key_that_is_not_16_bytes_of_base64_is_400(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    const char *bad[] = {NULL,
                         "",
                         "dGhlIHNhbXBsZSBub25jZQ=",
                         "dGhlIHNhbXBsZSBub25jZQ===",
                         "dGhlIHNhbXBsZSBub25jZQAA",
                         "dGhlIHNhbXBsZSBub25j*Q==",
                         "dGhlIHNhbXBsZSBub25jZ===",
                         "dGhlIHNhbXBsZSBub25jZSBmb3IgbW9yZQ=="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (check(GOOD_LINE, "websocket", "Upgrade", bad[i], "13", accept) != 400)
            fail_msg("accepted key '%s'", bad[i] ? bad[i] : "(none)");
    }
}

static void unsupported_version_is_426_and_missing_version_is_400(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    assert_int_equal(check(GOOD_LINE, "websocket", "Upgrade", GOOD_KEY, "8", accept), 426);
    assert_int_equal(check(GOOD_LINE, "websocket", "Upgrade", GOOD_KEY, "14", accept), 426);
    assert_int_equal(check(GOOD_LINE, "websocket", "Upgrade", GOOD_KEY, "13, 8", accept), 426);
    assert_int_equal(check(GOOD_LINE, "websocket", "Upgrade", GOOD_KEY, NULL, accept), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6455_example_key_gives_example_accept),
        cmocka_unit_test(valid_upgrade_request_is_accepted_with_accept_value),
        cmocka_unit_test(header_tokens_are_matched_case_insensitively),
        cmocka_unit_test(wrong_method_or_http_version_is_400),
        cmocka_unit_test(missing_upgrade_or_connection_token_is_400),
        cmocka_unit_test(key_that_is_not_16_bytes_of_base64_is_400),
        cmocka_unit_test(unsupported_version_is_426_and_missing_version_is_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
