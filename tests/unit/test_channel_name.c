/* channel_name: classification and naming rules of spec §4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "protocol/channel_name.h"

static channel_kind classify(const char *name)
{
    return channel_classify(name, strlen(name));
}

static bool valid(const char *name, size_t max_len)
{
    const char *reason = NULL;
    bool ok = channel_name_valid(name, strlen(name), max_len, &reason);
    /* A reason is given exactly when the name is refused. */
    assert_true(ok == (reason == NULL));
    return ok;
}

static void classify_follows_the_prefix_table_longest_first(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum channel_type type;
        bool cache;
    } cases[] = {
        {"#server-to-user-42", CHANNEL_USER, false},
        {"private-encrypted-cache-x", CHANNEL_ENCRYPTED, true},
        {"private-encrypted-x", CHANNEL_ENCRYPTED, false},
        {"private-cache-x", CHANNEL_PRIVATE, true},
        {"private-x", CHANNEL_PRIVATE, false},
        {"presence-cache-x", CHANNEL_PRESENCE, true},
        {"presence-x", CHANNEL_PRESENCE, false},
        {"cache-x", CHANNEL_PUBLIC, true},
        {"my-channel", CHANNEL_PUBLIC, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        channel_kind k = classify(cases[i].name);
        assert_int_equal(k.type, cases[i].type);
        assert_int_equal(k.cache, cases[i].cache);
    }
}

static void classify_needs_the_full_prefix_including_the_dash(void **state)
{
    (void)state;
    /* Reverb's mistake: "private"/"presence" without the dash. */
    assert_int_equal(classify("privatechat").type, CHANNEL_PUBLIC);
    assert_int_equal(classify("presence").type, CHANNEL_PUBLIC);
    assert_int_equal(classify("private").type, CHANNEL_PUBLIC);
    assert_false(classify("cache").cache);
    assert_false(classify("my-cache-x").cache);
    /* "private-encrypted" without the trailing dash is a plain private one. */
    assert_int_equal(classify("private-encrypted").type, CHANNEL_PRIVATE);
    assert_int_equal(classify("private-encryptedx").type, CHANNEL_PRIVATE);
    assert_int_equal(classify("private-cache").type, CHANNEL_PRIVATE);
    assert_false(classify("private-cache").cache);
}

static void classify_reads_only_len_bytes(void **state)
{
    (void)state;
    /* The name is not NUL-terminated where the caller's length ends. */
    assert_int_equal(channel_classify("private-x", 7).type, CHANNEL_PUBLIC);
    assert_int_equal(channel_classify("", 0).type, CHANNEL_PUBLIC);
}

static void auth_is_needed_for_private_presence_and_encrypted_only(void **state)
{
    (void)state;
    assert_true(channel_kind_needs_auth(classify("private-a")));
    assert_true(channel_kind_needs_auth(classify("private-cache-a")));
    assert_true(channel_kind_needs_auth(classify("presence-a")));
    assert_true(channel_kind_needs_auth(classify("presence-cache-a")));
    assert_true(channel_kind_needs_auth(classify("private-encrypted-a")));
    assert_true(channel_kind_needs_auth(classify("private-encrypted-cache-a")));
    assert_false(channel_kind_needs_auth(classify("public")));
    assert_false(channel_kind_needs_auth(classify("cache-a")));
    /* User channels are authorized by the sign-in, not by an HMAC. */
    assert_false(channel_kind_needs_auth(classify("#server-to-user-1")));
}

static void names_of_the_allowed_character_set_are_valid(void **state)
{
    (void)state;
    assert_true(valid("my-channel", 200));
    assert_true(valid("private-conversation-42", 200));
    assert_true(valid("AZaz09_-=@,.;", 200));
    assert_true(valid("a", 200));
    assert_true(valid("presence-room.1;x@y,z=w", 200));
}

static void names_with_other_characters_are_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"my channel", "a/b", "a:b",  "a\\b", "é",  "a*",   "a#",
                         "a\tb",       "a+b", "a%20", "a\"b", "{}", "a\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(valid(bad[i], 200));
    /* An embedded NUL is not part of the character set either. */
    assert_false(channel_name_valid("ab\0c", 4, 200, NULL));
}

static void names_must_be_between_one_and_max_len_bytes(void **state)
{
    (void)state;
    char name[202];
    memset(name, 'a', sizeof name);
    assert_true(channel_name_valid(name, 200, 200, NULL));
    assert_false(channel_name_valid(name, 201, 200, NULL));
    assert_true(channel_name_valid(name, 164, 164, NULL));
    assert_false(channel_name_valid(name, 165, 164, NULL));
    assert_false(channel_name_valid("", 0, 200, NULL));
}

static void hash_names_are_reserved_except_the_user_channel(void **state)
{
    (void)state;
    assert_true(valid("#server-to-user-42", 200));
    assert_true(valid("#server-to-user-user@example.com", 200));
    assert_false(valid("#server-to-user-", 200));
    assert_false(valid("#server-to-user-a b", 200));
    assert_false(valid("#server-to-users-1", 200));
    assert_false(valid("#my-channel", 200));
    assert_false(valid("#", 200));
}

static void user_channel_user_id_is_limited_to_128_bytes(void **state)
{
    (void)state;
    char name[16 + 130];
    memcpy(name, CHANNEL_USER_PREFIX, 16);
    memset(name + 16, 'u', 129);
    assert_true(channel_name_valid(name, 16 + 128, 200, NULL));
    assert_false(channel_name_valid(name, 16 + 129, 200, NULL));
}

static void user_ids_use_the_channel_character_set_up_to_128_bytes(void **state)
{
    (void)state;
    char id[130];
    memset(id, '7', sizeof id);
    assert_true(user_id_valid("12345", 5));
    assert_true(user_id_valid("user@example.com", 16));
    assert_true(user_id_valid(id, 128));
    assert_false(user_id_valid(id, 129));
    assert_false(user_id_valid("", 0));
    assert_false(user_id_valid("a b", 3));
    assert_false(user_id_valid("a:b", 3));
}

static void event_names_allow_any_characters_up_to_max_len(void **state)
{
    (void)state;
    char name[201];
    memset(name, 'e', sizeof name);
    assert_true(event_name_valid("App\\Events\\OrderShipped", 23, 200));
    assert_true(event_name_valid("new message!", 12, 200));
    assert_true(event_name_valid(name, 200, 200));
    assert_false(event_name_valid(name, 201, 200));
    assert_false(event_name_valid("", 0, 200));
}

static void pusher_and_pusher_internal_event_names_are_reserved(void **state)
{
    (void)state;
    assert_true(event_name_reserved("pusher:subscribe", 16));
    assert_true(event_name_reserved("pusher_internal:member_added", 28));
    assert_true(event_name_reserved("pusher:", 7));
    assert_false(event_name_reserved("pusher", 6));
    assert_false(event_name_reserved("pusher_internal", 15));
    assert_false(event_name_reserved("client-typing", 13));
    assert_false(event_name_reserved("new-message", 11));
    assert_false(event_name_reserved("my-pusher:x", 11));
}

static void socket_ids_are_two_runs_of_digits_joined_by_a_dot(void **state)
{
    (void)state;
    assert_true(socket_id_valid("1234.1234", 9));
    assert_true(socket_id_valid("0.0", 3));
    assert_true(socket_id_valid("12345678901234567890.12345678901234567890", 41));
    assert_false(socket_id_valid("123456789012345678901.1", 23));
    assert_false(socket_id_valid("1.123456789012345678901", 23));
    const char *bad[] = {"", ".", "1.", ".1", "1", "1.2.3", "a.1", "1.b", "1 .2", "-1.2", "1.2 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(socket_id_valid(bad[i], strlen(bad[i])));
    /* Only len bytes count. */
    assert_true(socket_id_valid("12.34xyz", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_follows_the_prefix_table_longest_first),
        cmocka_unit_test(classify_needs_the_full_prefix_including_the_dash),
        cmocka_unit_test(classify_reads_only_len_bytes),
        cmocka_unit_test(auth_is_needed_for_private_presence_and_encrypted_only),
        cmocka_unit_test(names_of_the_allowed_character_set_are_valid),
        cmocka_unit_test(names_with_other_characters_are_invalid),
        cmocka_unit_test(names_must_be_between_one_and_max_len_bytes),
        cmocka_unit_test(hash_names_are_reserved_except_the_user_channel),
        cmocka_unit_test(user_channel_user_id_is_limited_to_128_bytes),
        cmocka_unit_test(user_ids_use_the_channel_character_set_up_to_128_bytes),
        cmocka_unit_test(event_names_allow_any_characters_up_to_max_len),
        cmocka_unit_test(pusher_and_pusher_internal_event_names_are_reserved),
        cmocka_unit_test(socket_ids_are_two_runs_of_digits_joined_by_a_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
