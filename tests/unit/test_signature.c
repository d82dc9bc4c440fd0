/* signature: HMAC/MD5 primitives against the verified vectors of spec §5.2
 * and §8.8, and the auth-value checks built on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/signature.h"

/* A channel name literal as pointer and length. */
#define CH(s) (s), (sizeof(s) - 1)

#define DOCS_KEY "278d425bdf160c739803"
#define DOCS_SECRET "7ad3773142a6692b25b8"
#define NODE_KEY "f00d"
#define NODE_SECRET "tofu"

static const struct {
    const char *secret;
    const char *msg;
    const char *hex;
} vectors[] = {
    /* Pusher docs credentials, spec §5.2 table 1 (A1-A4). */
    {DOCS_SECRET, "1234.1234:private-foobar",
     "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
    {DOCS_SECRET,
     "1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}",
     "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"},
    {DOCS_SECRET,
     "1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}",
     "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"},
    {DOCS_SECRET, "1234.1234::user::{\"id\":\"12345\"}",
     "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"},
    /* pusher-http-node test vectors, secret "tofu" (A5). */
    {NODE_SECRET, "123.456:test",
     "efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"},
    {NODE_SECRET, "123.456:test:{\"foo\":\"bar\"}",
     "f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4"},
    {NODE_SECRET, "123.456::user::{\"id\":\"45678\"}",
     "f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd"},
    {NODE_SECRET, "123.456:private-encrypted-bla:\"foo\"",
     "962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105"},
};

static void hmac_sha256_hex_matches_every_spec_vector(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[SIG_HEX_LEN + 1];
        sig_hmac_sha256_hex(vectors[i].secret, strlen(vectors[i].secret), vectors[i].msg,
                            strlen(vectors[i].msg), out);
        assert_string_equal(out, vectors[i].hex);
    }
}

static void hmac_sha256_hex_accepts_empty_key_and_message(void **state)
{
    (void)state;
    char out[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex("", 0, "", 0, out);
    /* HMAC-SHA256 with empty key of the empty message (RFC-known value). */
    assert_string_equal(out, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void md5_hex_matches_empty_and_rest_bodies(void **state)
{
    (void)state;
    char out[33];
    sig_md5_hex("", 0, out);
    assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
    const char *a7 =
        "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":\\\"data\\\"}\"}";
    sig_md5_hex(a7, strlen(a7), out);
    assert_string_equal(out, "ec365a775a4cd0599faeb73354201b6f");
    const char *a8 = "{\"name\":\"new-message\",\"channel\":\"private-conversation-42\",\"data\":"
                     "\"{\\\"text\\\":\\\"hi\\\"}\",\"socket_id\":\"1234.1234\"}";
    assert_int_equal(strlen(a8), 109);
    sig_md5_hex(a8, strlen(a8), out);
    assert_string_equal(out, "e86ba5fc6621424977be8aeef3739d95");
}

static void sig_equal_is_true_only_for_identical_bytes(void **state)
{
    (void)state;
    assert_true(sig_equal("abc", 3, "abc", 3));
    assert_true(sig_equal("", 0, "", 0));
    assert_false(sig_equal("abc", 3, "abd", 3));
    assert_false(sig_equal("abc", 3, "xbc", 3));
}

static void sig_equal_rejects_different_lengths_without_reading_past_the_shorter(void **state)
{
    (void)state;
    /* Heap-exact buffers so ASan catches any read past the end of b. */
    char *a = malloc(64), *b = malloc(3);
    memset(a, 'a', 64);
    memcpy(b, "aaa", 3);
    assert_false(sig_equal(a, 64, b, 3));
    assert_false(sig_equal(b, 3, a, 64));
    assert_false(sig_equal(a, 1, b, 0));
    free(a);
    free(b);
}

static void channel_auth_accepts_private_vector(void **state)
{
    (void)state;
    const char *auth = DOCS_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    assert_true(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL, 0,
                                  auth, strlen(auth)));
}

static void channel_auth_accepts_presence_vector_with_channel_data(void **state)
{
    (void)state;
    const char *cd = "{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}";
    const char *auth = DOCS_KEY ":afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c";
    assert_true(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("presence-foobar"), cd,
                                  strlen(cd), auth, strlen(auth)));
    /* The docs' misprint: the "Mr. Pusher" signature for "Mr. Channels". */
    const char *cd2 = "{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}";
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("presence-foobar"), cd2,
                                   strlen(cd2), auth, strlen(auth)));
}

static void channel_auth_accepts_node_sdk_vectors(void **state)
{
    (void)state;
    const char *a1 = NODE_KEY ":efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c";
    assert_true(
        sig_check_channel(NODE_KEY, NODE_SECRET, "123.456", CH("test"), NULL, 0, a1, strlen(a1)));
    const char *a2 = NODE_KEY ":f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4";
    assert_true(sig_check_channel(NODE_KEY, NODE_SECRET, "123.456", CH("test"), "{\"foo\":\"bar\"}",
                                  13, a2, strlen(a2)));
    const char *a3 = NODE_KEY ":962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105";
    assert_true(sig_check_channel(NODE_KEY, NODE_SECRET, "123.456", CH("private-encrypted-bla"),
                                  "\"foo\"", 5, a3, strlen(a3)));
}

static void channel_auth_distinguishes_absent_from_empty_channel_data(void **state)
{
    (void)state;
    const char *auth = DOCS_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    /* "" signs "1234.1234:private-foobar:", not "1234.1234:private-foobar". */
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), "", 0,
                                   auth, strlen(auth)));
}

static void channel_auth_rejects_wrong_key_prefix(void **state)
{
    (void)state;
    const char *hex = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    const char *bad[] = {
        "278d425bdf160c739804:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        "278d425bdf160c73980:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        "278d425bdf160c7398033:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        "278d425bdf160c739803;58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
        "278d425bdf160c739803",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"),
                                       NULL, 0, bad[i], strlen(bad[i])));
    /* The hex alone, without "<key>:", is not an auth value either. */
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL,
                                   0, hex, strlen(hex)));
}

static void channel_auth_rejects_wrong_truncated_or_padded_hex(void **state)
{
    (void)state;
    const char *good = DOCS_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    char auth[256];
    size_t len = strlen(good);

    /* Last hex digit changed. */
    memcpy(auth, good, len);
    auth[len - 1] = '5';
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL,
                                   0, auth, len));
    /* Uppercase hex is a different string: Pusher signs lowercase. */
    memcpy(auth, good, len);
    for (size_t i = sizeof DOCS_KEY; i < len; i++)
        if (auth[i] >= 'a' && auth[i] <= 'f')
            auth[i] = (char)(auth[i] - 'a' + 'A');
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL,
                                   0, auth, len));
    /* Truncated to 63, 32, 1 and 0 hex digits. */
    size_t cuts[] = {1, 32, 63, 64};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"),
                                       NULL, 0, good, len - cuts[i]));
    /* The right hex followed by anything. */
    memcpy(auth, good, len);
    memcpy(auth + len, "0", 1);
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL,
                                   0, auth, len + 1));
    memset(auth + len, 'f', sizeof auth - len);
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobar"), NULL,
                                   0, auth, sizeof auth));
}

static void channel_auth_rejects_other_socket_or_channel(void **state)
{
    (void)state;
    const char *auth = DOCS_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1235", CH("private-foobar"), NULL,
                                   0, auth, strlen(auth)));
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("private-foobaz"), NULL,
                                   0, auth, strlen(auth)));
    assert_false(sig_check_channel(DOCS_KEY, "other-secret", "1234.1234", CH("private-foobar"),
                                   NULL, 0, auth, strlen(auth)));
}

static void channel_auth_handles_channel_data_longer_than_the_stack_buffer(void **state)
{
    (void)state;
    /* Presence channel_data can be several KB; the check must sign all of it. */
    size_t cd_len = 5000;
    char *cd = malloc(cd_len);
    memset(cd, 'x', cd_len);
    const char *prefix = "1234.1234:presence-big:";
    size_t plen = strlen(prefix);
    char *msg = malloc(plen + cd_len);
    memcpy(msg, prefix, plen);
    memcpy(msg + plen, cd, cd_len);
    char hex[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex(DOCS_SECRET, strlen(DOCS_SECRET), msg, plen + cd_len, hex);
    char auth[128];
    snprintf(auth, sizeof auth, "%s:%s", DOCS_KEY, hex);
    assert_true(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("presence-big"), cd,
                                  cd_len, auth, strlen(auth)));
    cd[cd_len - 1] = 'y';
    assert_false(sig_check_channel(DOCS_KEY, DOCS_SECRET, "1234.1234", CH("presence-big"), cd,
                                   cd_len, auth, strlen(auth)));
    free(cd);
    free(msg);
}

static void user_auth_accepts_docs_and_node_vectors(void **state)
{
    (void)state;
    const char *ud = "{\"id\":\"12345\"}";
    const char *auth = DOCS_KEY ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
    assert_true(
        sig_check_user(DOCS_KEY, DOCS_SECRET, "1234.1234", ud, strlen(ud), auth, strlen(auth)));
    const char *ud2 = "{\"id\":\"45678\"}";
    const char *auth2 =
        NODE_KEY ":f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd";
    assert_true(
        sig_check_user(NODE_KEY, NODE_SECRET, "123.456", ud2, strlen(ud2), auth2, strlen(auth2)));
}

static void user_auth_rejects_wrong_key_hex_or_user_data(void **state)
{
    (void)state;
    const char *ud = "{\"id\":\"12345\"}";
    const char *good = DOCS_KEY ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
    const char *wrong_key =
        "278d425bdf160c739800:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
    const char *wrong_hex =
        DOCS_KEY ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336bb";
    assert_false(sig_check_user(DOCS_KEY, DOCS_SECRET, "1234.1234", ud, strlen(ud), wrong_key,
                                strlen(wrong_key)));
    assert_false(sig_check_user(DOCS_KEY, DOCS_SECRET, "1234.1234", ud, strlen(ud), wrong_hex,
                                strlen(wrong_hex)));
    assert_false(
        sig_check_user(DOCS_KEY, DOCS_SECRET, "1234.1234", ud, strlen(ud), good, strlen(good) - 1));
    const char *other = "{\"id\":\"12346\"}";
    assert_false(sig_check_user(DOCS_KEY, DOCS_SECRET, "1234.1234", other, strlen(other), good,
                                strlen(good)));
    /* A channel-style signature of the same bytes is not a user signature. */
    assert_false(sig_check_user(
        DOCS_KEY, DOCS_SECRET, "1234.1234", ud, strlen(ud),
        DOCS_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4", 85));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hmac_sha256_hex_matches_every_spec_vector),
        cmocka_unit_test(hmac_sha256_hex_accepts_empty_key_and_message),
        cmocka_unit_test(md5_hex_matches_empty_and_rest_bodies),
        cmocka_unit_test(sig_equal_is_true_only_for_identical_bytes),
        cmocka_unit_test(sig_equal_rejects_different_lengths_without_reading_past_the_shorter),
        cmocka_unit_test(channel_auth_accepts_private_vector),
        cmocka_unit_test(channel_auth_accepts_presence_vector_with_channel_data),
        cmocka_unit_test(channel_auth_accepts_node_sdk_vectors),
        cmocka_unit_test(channel_auth_distinguishes_absent_from_empty_channel_data),
        cmocka_unit_test(channel_auth_rejects_wrong_key_prefix),
        cmocka_unit_test(channel_auth_rejects_wrong_truncated_or_padded_hex),
        cmocka_unit_test(channel_auth_rejects_other_socket_or_channel),
        cmocka_unit_test(channel_auth_handles_channel_data_longer_than_the_stack_buffer),
        cmocka_unit_test(user_auth_accepts_docs_and_node_vectors),
        cmocka_unit_test(user_auth_rejects_wrong_key_hex_or_user_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
