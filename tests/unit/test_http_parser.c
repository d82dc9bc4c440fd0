#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/http_parser.h"

static int parse(const char *s, http_request *req)
{
    return http_request_parse(s, strlen(s), req);
}

static void assert_span(const char *p, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static const char WS_REQ[] = "GET /app/key123?protocol=7&client=js HTTP/1.1\r\n"
                             "Host: localhost:6001\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n";

static void websocket_upgrade_request_parses_every_field(void **state)
{
    (void)state;
    http_request req;
    int n = parse(WS_REQ, &req);
    assert_int_equal(n, (int)strlen(WS_REQ));
    assert_int_equal(req.head_len, strlen(WS_REQ));
    assert_span(req.method, req.method_len, "GET");
    assert_span(req.target, req.target_len, "/app/key123?protocol=7&client=js");
    assert_span(req.path, req.path_len, "/app/key123");
    assert_span(req.query, req.query_len, "protocol=7&client=js");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 5);
    assert_span(req.headers[0].name, req.headers[0].name_len, "Host");
    assert_span(req.headers[0].value, req.headers[0].value_len, "localhost:6001");
    assert_true(req.upgrade_websocket);
    assert_true(req.keep_alive);
    assert_false(req.has_content_length);
    assert_false(req.chunked);
    const http_header *h = http_request_header(&req, "sec-websocket-key");
    assert_non_null(h);
    assert_span(h->value, h->value_len, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_null(http_request_header(&req, "Origin"));
}

static void every_proper_prefix_of_a_request_is_incomplete(void **state)
{
    (void)state;
    http_request req;
    size_t len = strlen(WS_REQ);
    for (size_t i = 0; i < len; i++) {
        /* heap copy of exactly i bytes so ASan catches reads past the end */
        char *p = malloc(i ? i : 1);
        memcpy(p, WS_REQ, i);
        assert_int_equal(http_request_parse(p, i, &req), HTTP_PARSE_INCOMPLETE);
        free(p);
    }
}

static void body_bytes_after_the_head_are_not_consumed(void **state)
{
    (void)state;
    const char *s = "POST /apps/1/events HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    http_request req;
    int n = parse(s, &req);
    assert_true(n > 0);
    assert_string_equal(s + n, "{\"a\":1}");
    assert_true(req.has_content_length);
    assert_int_equal(req.content_length, 7);
    assert_null(req.query);
    assert_int_equal(req.query_len, 0);
}

static void bare_lf_line_endings_are_accepted(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\nHost: x\n\nrest";
    http_request req;
    int n = parse(s, &req);
    assert_int_equal(n, (int)strlen(s) - 4);
    assert_int_equal(req.num_headers, 1);
    assert_span(req.headers[0].value, req.headers[0].value_len, "x");
}

static void leading_empty_lines_are_skipped(void **state)
{
    (void)state;
    const char *s = "\r\n\nGET /x HTTP/1.1\r\n\r\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_span(req.path, req.path_len, "/x");
    assert_int_equal(parse("\r\n\r\n", &req), HTTP_PARSE_INCOMPLETE);
}

static void header_values_are_trimmed_of_spaces_and_tabs(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\nX-A: \t spaced out \t\r\nX-Empty:\r\nX-B:tight\r\n\r\n";
    http_request req;
    assert_true(parse(s, &req) > 0);
    assert_span(req.headers[0].value, req.headers[0].value_len, "spaced out");
    assert_span(req.headers[1].value, req.headers[1].value_len, "");
    assert_span(req.headers[2].value, req.headers[2].value_len, "tight");
}

static void empty_query_after_question_mark_is_present_but_empty(void **state)
{
    (void)state;
    http_request req;
    assert_true(parse("GET /p? HTTP/1.1\r\n\r\n", &req) > 0);
    assert_span(req.path, req.path_len, "/p");
    assert_non_null(req.query);
    assert_int_equal(req.query_len, 0);
}

static void keep_alive_defaults_by_version_and_follows_connection(void **state)
{
    (void)state;
    http_request req;
    assert_true(parse("GET / HTTP/1.1\r\n\r\n", &req) > 0);
    assert_true(req.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_int_equal(req.minor_version, 0);
    assert_false(req.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) > 0);
    assert_true(req.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: keep-alive, CLOSE\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
}

static void upgrade_needs_both_upgrade_header_and_connection_token(void **state)
{
    (void)state;
    http_request req;
    assert_true(parse("GET / HTTP/1.1\r\nUpgrade: WebSocket\r\n"
                      "Connection: keep-alive, Upgrade\r\n\r\n",
                      &req) > 0);
    assert_true(req.upgrade_websocket);
    assert_true(parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &req) > 0);
    assert_false(req.upgrade_websocket);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", &req) > 0);
    assert_false(req.upgrade_websocket);
    assert_true(parse("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", &req) > 0);
    assert_false(req.upgrade_websocket);
    assert_true(
        parse("GET / HTTP/1.1\r\nConnection: upgraded\r\nUpgrade: websocket\r\n\r\n", &req) > 0);
    assert_false(req.upgrade_websocket);
}

static void chunked_transfer_encoding_is_flagged(void **state)
{
    (void)state;
    http_request req;
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", &req) > 0);
    assert_true(req.chunked);
}

static void transfer_encoding_not_ending_in_chunked_is_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &req),
                     HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &req),
                     HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: identity\r\n\r\n",
                           &req),
                     HTTP_PARSE_BAD_REQUEST);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip ,chunked \r\n\r\n", &req) > 0);
    assert_true(req.chunked);
}

static void has_token_matches_whole_comma_separated_tokens(void **state)
{
    (void)state;
    const char *v = "keep-alive, Upgrade";
    assert_true(http_header_has_token(v, strlen(v), "upgrade"));
    assert_true(http_header_has_token(v, strlen(v), "KEEP-ALIVE"));
    assert_false(http_header_has_token(v, strlen(v), "alive"));
    assert_false(http_header_has_token(v, strlen(v), "upgrad"));
    assert_true(http_header_has_token(" ,\tclose\t, ", 11, "close"));
    assert_false(http_header_has_token("", 0, "close"));
    assert_false(http_header_has_token("upgrade", 6, "upgrade")); /* length respected */
}

static void control_characters_in_request_line_are_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET /a\x7F HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET /a\rb HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET\t/ HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
}

static void malformed_request_lines_are_bad_request(void **state)
{
    (void)state;
    http_request req;
    const char *bad[] = {
        "GET /\r\n\r\n",           "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n", "GET / http/1.1\r\n\r\n",  "GET / HTTP/1.\r\n\r\n",
        "GET / HTTP/11\r\n\r\n",   "G(T / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &req) != HTTP_PARSE_BAD_REQUEST)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void binary_garbage_is_refused_before_a_line_end(void **state)
{
    (void)state;
    const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    http_request req;
    assert_int_equal(http_request_parse(hello, sizeof hello - 1, &req), HTTP_PARSE_BAD_REQUEST);
}

static void other_http_versions_are_bad_version(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &req), HTTP_PARSE_BAD_VERSION);
    assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n", &req), HTTP_PARSE_BAD_VERSION);
    assert_int_equal(parse("GET / HTTP/0.9\r\n\r\n", &req), HTTP_PARSE_BAD_VERSION);
}

static void header_names_that_are_not_tokens_are_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\n: x\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA(b): x\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
}

static void control_characters_in_header_values_are_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\rz\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_true(parse("GET / HTTP/1.1\r\nX: a\tz \xC3\xA9\r\n\r\n", &req) > 0);
}

static void obs_fold_continuation_lines_are_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", &req), HTTP_PARSE_BAD_REQUEST);
}

static void bad_lines_are_refused_before_the_head_is_complete(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: x\r\n", &req), HTTP_PARSE_BAD_REQUEST);
}

static void invalid_content_length_is_bad_request(void **state)
{
    (void)state;
    http_request req;
    const char *bad[] = {"", "-1", "+1", "1.0", "0x10", "5, 5", "1 2", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char s[128];
        snprintf(s, sizeof s, "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", bad[i]);
        if (parse(s, &req) != HTTP_PARSE_BAD_REQUEST)
            fail_msg("accepted Content-Length: '%s'", bad[i]);
    }
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", &req) > 0);
    assert_true(req.content_length == 18446744073709551615ull);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req) > 0);
    assert_true(req.has_content_length);
    assert_int_equal(req.content_length, 0);
}

static void duplicate_content_length_is_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &req),
        HTTP_PARSE_BAD_REQUEST);
}

static void content_length_with_transfer_encoding_is_bad_request(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", &req),
        HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", &req),
        HTTP_PARSE_BAD_REQUEST);
}

static void thirty_two_headers_fit_and_thirty_three_are_too_large(void **state)
{
    (void)state;
    char s[2048];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "X-%d: v\r\n", i);
    snprintf(s + n, sizeof s - n, "\r\n");
    http_request req;
    assert_true(parse(s, &req) > 0);
    assert_int_equal(req.num_headers, HTTP_MAX_HEADERS);
    snprintf(s + n, sizeof s - n, "X-last: v\r\n\r\n");
    assert_int_equal(parse(s, &req), HTTP_PARSE_TOO_LARGE);
}

static void head_larger_than_limit_is_too_large(void **state)
{
    (void)state;
    size_t cap = HTTP_MAX_HEAD_BYTES + 64;
    char *s = malloc(cap);
    http_request req;
    /* A head of exactly HTTP_MAX_HEAD_BYTES is accepted... */
    const char *pre = "GET / HTTP/1.1\r\nX: ";
    size_t plen = strlen(pre);
    memcpy(s, pre, plen);
    size_t fill = HTTP_MAX_HEAD_BYTES - plen - 4;
    memset(s + plen, 'a', fill);
    memcpy(s + plen + fill, "\r\n\r\n", 4);
    assert_int_equal(http_request_parse(s, HTTP_MAX_HEAD_BYTES, &req), HTTP_MAX_HEAD_BYTES);
    assert_int_equal(http_request_parse(s, cap, &req), HTTP_MAX_HEAD_BYTES);
    /* ...one byte more is not, whether or not the end has arrived. */
    memset(s + plen, 'a', fill + 1);
    memcpy(s + plen + fill + 1, "\r\n\r\n", 4);
    assert_int_equal(http_request_parse(s, HTTP_MAX_HEAD_BYTES - 1, &req), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_request_parse(s, HTTP_MAX_HEAD_BYTES, &req), HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_request_parse(s, HTTP_MAX_HEAD_BYTES + 4, &req), HTTP_PARSE_TOO_LARGE);
    free(s);
}

static void request_parsed_again_with_more_bytes_gives_same_result(void **state)
{
    (void)state;
    const char *s = "POST /apps/1/events?auth_key=k HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    size_t len = strlen(s);
    http_request req;
    int full = -99;
    for (size_t i = 0; i <= len; i++) {
        int rc = http_request_parse(s, i, &req);
        if (full == -99 && rc > 0)
            full = rc;
        else if (full == -99)
            assert_int_equal(rc, HTTP_PARSE_INCOMPLETE);
        else
            assert_int_equal(rc, full);
    }
    assert_int_equal(full, (int)len - 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(websocket_upgrade_request_parses_every_field),
        cmocka_unit_test(every_proper_prefix_of_a_request_is_incomplete),
        cmocka_unit_test(body_bytes_after_the_head_are_not_consumed),
        cmocka_unit_test(bare_lf_line_endings_are_accepted),
        cmocka_unit_test(leading_empty_lines_are_skipped),
        cmocka_unit_test(header_values_are_trimmed_of_spaces_and_tabs),
        cmocka_unit_test(empty_query_after_question_mark_is_present_but_empty),
        cmocka_unit_test(keep_alive_defaults_by_version_and_follows_connection),
        cmocka_unit_test(upgrade_needs_both_upgrade_header_and_connection_token),
        cmocka_unit_test(chunked_transfer_encoding_is_flagged),
        cmocka_unit_test(transfer_encoding_not_ending_in_chunked_is_bad_request),
        cmocka_unit_test(has_token_matches_whole_comma_separated_tokens),
        cmocka_unit_test(control_characters_in_request_line_are_bad_request),
        cmocka_unit_test(malformed_request_lines_are_bad_request),
        cmocka_unit_test(binary_garbage_is_refused_before_a_line_end),
        cmocka_unit_test(other_http_versions_are_bad_version),
        cmocka_unit_test(header_names_that_are_not_tokens_are_bad_request),
        cmocka_unit_test(control_characters_in_header_values_are_bad_request),
        cmocka_unit_test(obs_fold_continuation_lines_are_bad_request),
        cmocka_unit_test(bad_lines_are_refused_before_the_head_is_complete),
        cmocka_unit_test(invalid_content_length_is_bad_request),
        cmocka_unit_test(duplicate_content_length_is_bad_request),
        cmocka_unit_test(content_length_with_transfer_encoding_is_bad_request),
        cmocka_unit_test(thirty_two_headers_fit_and_thirty_three_are_too_large),
        cmocka_unit_test(head_larger_than_limit_is_too_large),
        cmocka_unit_test(request_parsed_again_with_more_bytes_gives_same_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
