/* pusher_msg: decoding client frames (spec §3.1) and the exact bytes of
 * server frames (spec §3.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/utf8.h"
#include "protocol/channel_name.h"
#include "protocol/pusher_msg.h"

static int decode(const char *text, pusher_msg *m, char *err, size_t cap)
{
    return pusher_msg_decode(text, strlen(text), m, err, cap);
}

static void expect_refused(const char *text, const char *reason_part)
{
    pusher_msg m;
    char err[128];
    assert_int_equal(decode(text, &m, err, sizeof err), -1);
    assert_null(m.root);
    assert_non_null(strstr(err, reason_part));
    pusher_msg_free(&m); /* harmless after a failed decode */
}

/* ---- decoding ---------------------------------------------------------- */

static void decode_reads_a_public_subscribe_from_pusher_js(void **state)
{
    (void)state;
    pusher_msg m;
    char err[128];
    assert_int_equal(
        decode(
            "{\"event\":\"pusher:subscribe\",\"data\":{\"auth\":\"\",\"channel\":\"my-channel\"}}",
            &m, err, sizeof err),
        0);
    assert_int_equal(m.event_len, 16);
    assert_memory_equal(m.event, "pusher:subscribe", 16);
    assert_null(m.channel);
    assert_true(json_is_object(m.data));
    size_t len;
    const char *ch = pusher_msg_data_string(&m, "channel", &len);
    assert_int_equal(len, 10);
    assert_memory_equal(ch, "my-channel", 10);
    const char *auth = pusher_msg_data_string(&m, "auth", &len);
    assert_non_null(auth);
    assert_int_equal(len, 0);
    assert_null(pusher_msg_data_string(&m, "channel_data", &len));
    assert_int_equal(len, 0);
    pusher_msg_free(&m);
    assert_null(m.root);
}

static void decode_keeps_presence_channel_data_as_the_signed_string(void **state)
{
    (void)state;
    pusher_msg m;
    const char *frame =
        "{\"event\":\"pusher:subscribe\",\"data\":{\"auth\":\"278d425bdf160c739803:"
        "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c\",\"channel_data\":"
        "\"{\\\"user_id\\\":10,\\\"user_info\\\":{\\\"name\\\":\\\"Mr. Pusher\\\"}}\",\"channel\":"
        "\"presence-foobar\"}}";
    assert_int_equal(decode(frame, &m, NULL, 0), 0);
    size_t len;
    const char *cd = pusher_msg_data_string(&m, "channel_data", &len);
    const char *want = "{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(cd, want, len);
    pusher_msg_free(&m);
}

static void decode_reads_channel_of_a_client_event(void **state)
{
    (void)state;
    pusher_msg m;
    assert_int_equal(decode("{\"event\":\"client-typing\",\"data\":{\"typing\":true},\"channel\":"
                            "\"private-chat-1\"}",
                            &m, NULL, 0),
                     0);
    assert_int_equal(m.channel_len, 14);
    assert_memory_equal(m.channel, "private-chat-1", 14);
    assert_true(json_is_true(json_object_get(m.data, "typing")));
    pusher_msg_free(&m);
}

static void decode_parses_string_data_of_pusher_events_into_an_object(void **state)
{
    (void)state;
    pusher_msg m;
    assert_int_equal(
        decode("{\"event\":\"pusher:subscribe\",\"data\":\"{\\\"channel\\\":\\\"a\\\"}\"}", &m,
               NULL, 0),
        0);
    assert_true(json_is_object(m.data));
    size_t len;
    assert_memory_equal(pusher_msg_data_string(&m, "channel", &len), "a", 1);
    assert_int_equal(len, 1);
    /* The object now belongs to root: what data points at is root's "data". */
    assert_ptr_equal(m.data, json_object_get(m.root, "data"));
    pusher_msg_free(&m);
}

static void decode_keeps_string_data_that_is_not_an_object(void **state)
{
    (void)state;
    pusher_msg m;
    assert_int_equal(decode("{\"event\":\"pusher:ping\",\"data\":\"not json\"}", &m, NULL, 0), 0);
    assert_string_equal(json_string_value(m.data), "not json");
    pusher_msg_free(&m);
    assert_int_equal(decode("{\"event\":\"pusher:ping\",\"data\":\"[1,2]\"}", &m, NULL, 0), 0);
    assert_string_equal(json_string_value(m.data), "[1,2]");
    pusher_msg_free(&m);
}

static void decode_relays_client_event_string_data_verbatim(void **state)
{
    (void)state;
    /* pusher-websocket-java sends client-event data as a string: keep it. */
    pusher_msg m;
    assert_int_equal(
        decode("{\"event\":\"client-x\",\"channel\":\"private-a\",\"data\":\"{\\\"a\\\":1}\"}", &m,
               NULL, 0),
        0);
    assert_true(json_is_string(m.data));
    assert_string_equal(json_string_value(m.data), "{\"a\":1}");
    pusher_msg_free(&m);
}

static void decode_leaves_data_null_when_absent(void **state)
{
    (void)state;
    pusher_msg m;
    assert_int_equal(decode("{\"event\":\"client-x\",\"channel\":\"private-a\"}", &m, NULL, 0), 0);
    assert_null(m.data);
    size_t len = 99;
    assert_null(pusher_msg_data_string(&m, "channel", &len));
    assert_int_equal(len, 0);
    pusher_msg_free(&m);
}

static void decode_allows_duplicate_keys_with_the_last_winning(void **state)
{
    (void)state;
    pusher_msg m;
    assert_int_equal(decode("{\"event\":\"a\",\"event\":\"client-b\"}", &m, NULL, 0), 0);
    assert_int_equal(m.event_len, 8);
    assert_memory_equal(m.event, "client-b", 8);
    pusher_msg_free(&m);
}

static void decode_accepts_bytes_that_are_not_nul_terminated(void **state)
{
    (void)state;
    const char frame[] = "{\"event\":\"pusher:ping\",\"data\":{}}garbage";
    pusher_msg m;
    assert_int_equal(pusher_msg_decode(frame, sizeof frame - 1 - 7, &m, NULL, 0), 0);
    pusher_msg_free(&m);
}

static void decode_refuses_malformed_json(void **state)
{
    (void)state;
    expect_refused("", "Invalid JSON");
    expect_refused("{", "Invalid JSON");
    expect_refused("{\"event\":\"x\"", "Invalid JSON");
    expect_refused("{\"event\":\"x\"} {}", "Invalid JSON");
    expect_refused("{'event':'x'}", "Invalid JSON");
    expect_refused("{\"event\":\"\\u0000\"}", "Invalid JSON");
    expect_refused("{\"event\":\"\xff\"}", "Invalid JSON");
}

static void decode_refuses_json_that_is_not_an_object(void **state)
{
    (void)state;
    expect_refused("[]", "not a JSON object");
    expect_refused("[{\"event\":\"x\"}]", "not a JSON object");
    /* Bare scalars are refused by the parser itself. */
    pusher_msg m;
    assert_int_equal(decode("\"pusher:ping\"", &m, NULL, 0), -1);
    assert_int_equal(decode("42", &m, NULL, 0), -1);
    assert_int_equal(decode("null", &m, NULL, 0), -1);
}

static void decode_refuses_missing_or_non_string_event(void **state)
{
    (void)state;
    expect_refused("{}", "missing \"event\"");
    expect_refused("{\"data\":{}}", "missing \"event\"");
    expect_refused("{\"event\":1}", "\"event\" must be a string");
    expect_refused("{\"event\":null}", "\"event\" must be a string");
    expect_refused("{\"event\":{\"a\":1}}", "\"event\" must be a string");
}

static void decode_refuses_non_string_channel(void **state)
{
    (void)state;
    expect_refused("{\"event\":\"client-a\",\"channel\":1}", "\"channel\" must be a string");
    expect_refused("{\"event\":\"client-a\",\"channel\":null}", "\"channel\" must be a string");
    expect_refused("{\"event\":\"client-a\",\"channel\":[\"x\"]}", "\"channel\" must be a string");
}

static void decode_truncates_the_error_to_the_given_capacity(void **state)
{
    (void)state;
    pusher_msg m;
    char err[8];
    memset(err, 'z', sizeof err);
    assert_int_equal(decode("[]", &m, err, sizeof err), -1);
    assert_int_equal(strlen(err), 7);
}

static void expect_reason(const char *text, const char *want)
{
    pusher_msg m;
    char err[200];
    assert_int_equal(decode(text, &m, err, sizeof err), -1);
    assert_string_equal(err, want);
}

/* The reason is the whole message the client sees: each prefix once. */
static void decode_reasons_are_complete_sentences_with_one_prefix(void **state)
{
    (void)state;
    expect_reason("[]", "Invalid message: not a JSON object");
    expect_reason("{}", "Invalid message: missing \"event\"");
    expect_reason("{\"event\":1}", "Invalid message: \"event\" must be a string");
    expect_reason("{\"event\":\"client-a\",\"channel\":1}",
                  "Invalid message: \"channel\" must be a string");
    expect_reason("not json", "Invalid JSON: '[' or '{' expected near 'not'");
    expect_reason("", "Invalid JSON: '[' or '{' expected near end of file");
}

/* jansson quotes the input near the error; cut to any capacity, the reason
 * stays valid UTF-8 (never cut inside a character). */
static void decode_reason_quoting_multibyte_input_is_cut_between_characters(void **state)
{
    (void)state;
    const char *text = "[\"\xC3\xA9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    char full[200];
    pusher_msg m;
    assert_int_equal(decode(text, &m, full, sizeof full), -1);
    assert_non_null(strstr(full, "\xC3\xA9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
    size_t full_len = strlen(full);
    for (size_t cap = 1; cap <= full_len + 1; cap++) {
        char err[200];
        memset(err, 'z', sizeof err);
        assert_int_equal(decode(text, &m, err, cap), -1);
        size_t n = strlen(err);
        assert_true(n < cap);
        assert_true(utf8_valid((const uint8_t *)err, n));
        assert_memory_equal(err, full, n);
        assert_true(n + 4 >= cap - 1); /* at most one 4-byte character is dropped */
    }
}

/* ---- encoding ---------------------------------------------------------- */

static void expect_bytes(buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    buf_reset(b);
}

static void encode_string_data_matches_spec_examples_byte_for_byte(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("pusher_internal:subscription_succeeded"),
                              PUSHER_LIT("private-foobar"), "{}", 2);
    expect_bytes(&b, "{\"event\":\"pusher_internal:subscription_succeeded\",\"data\":\"{}\","
                     "\"channel\":\"private-foobar\"}");

    const char *added = "{\"user_id\":\"11814b369700141b222a3f3791cec2d9\",\"user_info\":{\"name\":"
                        "\"Phil Leggetter\"}}";
    pusher_encode_string_data(&b, PUSHER_LIT("pusher_internal:member_added"),
                              PUSHER_LIT("presence-example-channel"), added, strlen(added));
    expect_bytes(&b, "{\"event\":\"pusher_internal:member_added\",\"data\":\"{\\\"user_id\\\":"
                     "\\\"11814b369700141b222a3f3791cec2d9\\\",\\\"user_info\\\":{\\\"name\\\":"
                     "\\\"Phil Leggetter\\\"}}\",\"channel\":\"presence-example-channel\"}");

    const char *count = "{\"subscription_count\":3}";
    pusher_encode_string_data(&b, PUSHER_LIT("pusher_internal:subscription_count"),
                              PUSHER_LIT("my-channel"), count, strlen(count));
    expect_bytes(&b, "{\"event\":\"pusher_internal:subscription_count\",\"data\":\"{\\\""
                     "subscription_count\\\":3}\",\"channel\":\"my-channel\"}");

    const char *text = "{\"text\":\"hi\"}";
    pusher_encode_string_data(&b, PUSHER_LIT("new-message"), PUSHER_LIT("private-conversation-42"),
                              text, strlen(text));
    expect_bytes(&b, "{\"event\":\"new-message\",\"data\":\"{\\\"text\\\":\\\"hi\\\"}\","
                     "\"channel\":\"private-conversation-42\"}");
    buf_free(&b);
}

static void encode_string_data_without_channel_omits_the_key(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("pusher:pong"), NULL, 0, "{}", 2);
    expect_bytes(&b, "{\"event\":\"pusher:pong\",\"data\":\"{}\"}");
    const char *wl = "{\"events\":[{\"name\":\"online\",\"user_ids\":[\"2\",\"3\"]}]}";
    pusher_encode_string_data(&b, PUSHER_LIT("pusher_internal:watchlist_events"), NULL, 0, wl,
                              strlen(wl));
    expect_bytes(&b, "{\"event\":\"pusher_internal:watchlist_events\",\"data\":\"{\\\"events\\\":"
                     "[{\\\"name\\\":\\\"online\\\",\\\"user_ids\\\":[\\\"2\\\",\\\"3\\\"]}]}\"}");
    buf_free(&b);
}

static void encode_escapes_control_characters_and_quotes(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("a\"b"), PUSHER_LIT("c\\d"), "x\n\x01y", 4);
    expect_bytes(&b, "{\"event\":\"a\\\"b\",\"data\":\"x\\n\\u0001y\",\"channel\":\"c\\\\d\"}");
    buf_free(&b);
}

static void encode_raw_data_copies_json_verbatim_and_adds_user_id(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_raw_data(&b, PUSHER_LIT("client-typing"), PUSHER_LIT("presence-room-1"),
                           "{\"typing\":true}", 15, PUSHER_LIT("42"));
    expect_bytes(&b, "{\"event\":\"client-typing\",\"data\":{\"typing\":true},\"channel\":"
                     "\"presence-room-1\",\"user_id\":\"42\"}");
    pusher_encode_raw_data(&b, PUSHER_LIT("pusher:cache_miss"), PUSHER_LIT("cache-btc-usd"), NULL,
                           0, NULL, 0);
    expect_bytes(&b, "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-btc-usd\"}");
    const char *ud = "{\"user_data\":\"{\\\"id\\\":\\\"12345\\\"}\"}";
    pusher_encode_raw_data(&b, PUSHER_LIT("pusher:signin_success"), NULL, 0, ud, strlen(ud), NULL,
                           0);
    expect_bytes(&b, "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":\"{\\\"id\\\":"
                     "\\\"12345\\\"}\"}}");
    buf_free(&b);
}

static void encode_appends_after_existing_bytes(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    buf_append_str(&b, "X");
    pusher_encode_raw_data(&b, PUSHER_LIT("e"), NULL, 0, "1", 1, NULL, 0);
    expect_bytes(&b, "X{\"event\":\"e\",\"data\":1}");
    buf_free(&b);
}

static void encode_error_writes_code_or_null(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_error(&b, 4301, "Client event rejected due to rate limit");
    expect_bytes(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":4301,\"message\":\"Client "
                     "event rejected due to rate limit\"}}");
    pusher_encode_error(&b, 0, "Invalid \"JSON\"");
    expect_bytes(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":\"Invalid "
                     "\\\"JSON\\\"\"}}");
    buf_free(&b);
}

static void encode_subscription_error_carries_type_error_and_status(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_subscription_error(&b, PUSHER_LIT("private-foobar"), "AuthError",
                                     "The connection is unauthorized.", 401);
    expect_bytes(&b, "{\"event\":\"pusher:subscription_error\",\"data\":{\"type\":\"AuthError\","
                     "\"error\":\"The connection is unauthorized.\",\"status\":401},\"channel\":"
                     "\"private-foobar\"}");
    buf_free(&b);
}

/* Messages may quote client bytes (an app key from the request path):
 * the frame must still be valid UTF-8 and valid JSON. */
static void encode_error_replaces_invalid_utf8_with_u_fffd(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_error(&b, 4001, "App key \xFF\xFE does not exist");
    expect_bytes(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":4001,\"message\":\"App key "
                     "\xEF\xBF\xBD\xEF\xBF\xBD does not exist\"}}");
    pusher_encode_error(&b, 0, "cut \xE2\x82");
    expect_bytes(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":\"cut "
                     "\xEF\xBF\xBD\"}}");
    /* valid text, quotes and controls: unchanged apart from JSON escaping */
    pusher_encode_error(&b, 0, "caf\xC3\xA9 \"x\"\n\xF0\x9F\x98\x80");
    expect_bytes(&b,
                 "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":\"caf\xC3\xA9 "
                 "\\\"x\\\"\\n\xF0\x9F\x98\x80\"}}");
    pusher_encode_error(&b, 0, NULL);
    expect_bytes(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":\"\"}}");
    buf_free(&b);
}

static void encode_subscription_error_replaces_invalid_utf8_with_u_fffd(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_subscription_error(&b, PUSHER_LIT("ch-\xC0\xAF"), "LimitReached",
                                     "bad \xED\xA0\x80", 400);
    expect_bytes(&b, "{\"event\":\"pusher:subscription_error\",\"data\":{\"type\":\"LimitReached\","
                     "\"error\":\"bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\",\"status\":400},"
                     "\"channel\":\"ch-\xEF\xBF\xBD\xEF\xBF\xBD\"}");
    /* valid multibyte channel names are echoed exactly (pusher-js routes by them) */
    pusher_encode_subscription_error(&b, PUSHER_LIT("\xC3\xA9moji\xE2\x9C\x93"), "InvalidChannel",
                                     "x", 400);
    expect_bytes(&b,
                 "{\"event\":\"pusher:subscription_error\",\"data\":{\"type\":\"InvalidChannel\","
                 "\"error\":\"x\",\"status\":400},\"channel\":\"\xC3\xA9moji\xE2\x9C\x93\"}");
    pusher_encode_subscription_error(&b, NULL, 0, "InvalidChannel", "Missing channel name", 400);
    expect_bytes(&b,
                 "{\"event\":\"pusher:subscription_error\",\"data\":{\"type\":\"InvalidChannel\","
                 "\"error\":\"Missing channel name\",\"status\":400}}");
    buf_free(&b);
}

/* Whatever bytes a message holds, the encoded frame is valid UTF-8 and
 * decodes back as JSON. */
static void encode_error_output_is_always_valid_utf8_json(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    for (unsigned a = 1; a < 256; a++) {
        for (unsigned c = 1; c < 256; c += 3) {
            char msg[4] = {(char)a, (char)c, 'x', '\0'};
            pusher_encode_error(&b, 4001, msg);
            assert_true(utf8_valid((const uint8_t *)b.data, b.len));
            json_error_t jerr;
            json_t *root = json_loadb(b.data, b.len, 0, &jerr);
            assert_non_null(root);
            json_decref(root);
            buf_reset(&b);
        }
    }
    buf_free(&b);
}

static void encoded_frames_decode_back_to_the_same_fields(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    pusher_encode_raw_data(&b, PUSHER_LIT("client-a"), PUSHER_LIT("presence-x"), "{\"k\":[1,2]}",
                           11, PUSHER_LIT("u1"));
    pusher_msg m;
    assert_int_equal(pusher_msg_decode(b.data, b.len, &m, NULL, 0), 0);
    assert_memory_equal(m.event, "client-a", 8);
    assert_memory_equal(m.channel, "presence-x", 10);
    assert_string_equal(json_string_value(json_object_get(m.root, "user_id")), "u1");
    pusher_msg_free(&m);
    buf_free(&b);
}

/* Names of any length up to the config's bound are written whole, and
 * they are read as pointer and length: a name cut from a longer buffer
 * (not NUL-terminated) ends where its length says. */
static void encoders_write_long_names_whole_by_length(void **state)
{
    (void)state;
    const size_t n = HK_MAX_NAME_LENGTH;
    char *event = malloc(n + 8), *channel = malloc(n + 8), *id = malloc(USER_ID_MAX_LENGTH + 8);
    memset(event, 'e', n + 8);
    memcpy(event, "client-", 7);
    memset(channel, 'c', n + 8);
    memcpy(channel, "presence-", 9);
    memset(id, 'u', USER_ID_MAX_LENGTH + 8); /* none of them NUL-terminated */
    buf b, want;
    buf_init(&b);
    buf_init(&want);

    pusher_encode_string_data(&b, event, n, channel, n, "{}", 2);
    buf_append_str(&want, "{\"event\":\"");
    buf_append(&want, event, n);
    buf_append_str(&want, "\",\"data\":\"{}\",\"channel\":\"");
    buf_append(&want, channel, n);
    buf_append_str(&want, "\"}");
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.data, want.data, b.len);
    buf_reset(&b);
    buf_reset(&want);

    pusher_encode_raw_data(&b, event, n, channel, n, "{\"k\":1}", 7, id, USER_ID_MAX_LENGTH);
    pusher_msg m;
    assert_int_equal(pusher_msg_decode(b.data, b.len, &m, NULL, 0), 0);
    assert_int_equal(m.event_len, n);
    assert_memory_equal(m.event, event, n);
    assert_int_equal(m.channel_len, n);
    assert_memory_equal(m.channel, channel, n);
    json_t *uid = json_object_get(m.root, "user_id");
    assert_int_equal(json_string_length(uid), USER_ID_MAX_LENGTH);
    assert_memory_equal(json_string_value(uid), id, USER_ID_MAX_LENGTH);
    pusher_msg_free(&m);
    buf_reset(&b);

    pusher_encode_subscription_error(&b, channel, n, "AuthError", "no", 401);
    buf_append_str(&want, "{\"event\":\"pusher:subscription_error\",\"data\":{\"type\":"
                          "\"AuthError\",\"error\":\"no\",\"status\":401},\"channel\":\"");
    buf_append(&want, channel, n);
    buf_append_str(&want, "\"}");
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.data, want.data, b.len);

    /* a length shorter than the bytes there: only that much is the name */
    buf_reset(&b);
    pusher_encode_raw_data(&b, event, 8, channel, 10, NULL, 0, id, 1);
    expect_bytes(&b, "{\"event\":\"client-e\",\"channel\":\"presence-c\",\"user_id\":\"u\"}");
    buf_free(&b);
    buf_free(&want);
    free(event);
    free(channel);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_reads_a_public_subscribe_from_pusher_js),
        cmocka_unit_test(decode_keeps_presence_channel_data_as_the_signed_string),
        cmocka_unit_test(decode_reads_channel_of_a_client_event),
        cmocka_unit_test(decode_parses_string_data_of_pusher_events_into_an_object),
        cmocka_unit_test(decode_keeps_string_data_that_is_not_an_object),
        cmocka_unit_test(decode_relays_client_event_string_data_verbatim),
        cmocka_unit_test(decode_leaves_data_null_when_absent),
        cmocka_unit_test(decode_allows_duplicate_keys_with_the_last_winning),
        cmocka_unit_test(decode_accepts_bytes_that_are_not_nul_terminated),
        cmocka_unit_test(decode_refuses_malformed_json),
        cmocka_unit_test(decode_refuses_json_that_is_not_an_object),
        cmocka_unit_test(decode_refuses_missing_or_non_string_event),
        cmocka_unit_test(decode_refuses_non_string_channel),
        cmocka_unit_test(decode_truncates_the_error_to_the_given_capacity),
        cmocka_unit_test(decode_reasons_are_complete_sentences_with_one_prefix),
        cmocka_unit_test(decode_reason_quoting_multibyte_input_is_cut_between_characters),
        cmocka_unit_test(encode_string_data_matches_spec_examples_byte_for_byte),
        cmocka_unit_test(encode_string_data_without_channel_omits_the_key),
        cmocka_unit_test(encode_escapes_control_characters_and_quotes),
        cmocka_unit_test(encode_raw_data_copies_json_verbatim_and_adds_user_id),
        cmocka_unit_test(encode_appends_after_existing_bytes),
        cmocka_unit_test(encode_error_writes_code_or_null),
        cmocka_unit_test(encode_subscription_error_carries_type_error_and_status),
        cmocka_unit_test(encode_error_replaces_invalid_utf8_with_u_fffd),
        cmocka_unit_test(encode_subscription_error_replaces_invalid_utf8_with_u_fffd),
        cmocka_unit_test(encode_error_output_is_always_valid_utf8_json),
        cmocka_unit_test(encoded_frames_decode_back_to_the_same_fields),
        cmocka_unit_test(encoders_write_long_names_whole_by_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
