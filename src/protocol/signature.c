#include "protocol/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

/* Strings to sign usually fit here; longer presence channel_data goes to the
 * heap. */
#define SIG_STACK_MSG 1024

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void sig_hmac_sha256_hex(const char *key, size_t key_len, const void *msg, size_t msg_len,
                         char out[SIG_HEX_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    /* OpenSSL refuses a NULL key even when its length is 0. */
    static const unsigned char empty[1] = {0};
    const void *k = key_len ? (const void *)key : empty;
    const unsigned char *m = msg_len ? msg : empty;
    if (!HMAC(EVP_sha256(), k, (int)key_len, m, msg_len, mac, &mac_len) || mac_len != 32)
        abort(); /* only on allocation failure inside OpenSSL */
    hex_encode(mac, 32, out);
}

void sig_md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const unsigned char empty[1] = {0};
    if (!EVP_Digest(len ? data : empty, len, md, &md_len, EVP_md5(), NULL) || md_len != 16)
        abort();
    hex_encode(md, 16, out);
}

bool sig_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len) {
        /* Still spend the time of a comparison so the only thing the timing
         * tells is the lengths, which are public. */
        (void)CRYPTO_memcmp(a, a, a_len);
        return false;
    }
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

/* Compares auth ("<app_key>:<hex>") with the HMAC of msg. The hex part is
 * copied into a fixed 64-byte slot and always compared in full, so neither
 * its content nor its length changes how long the secret-dependent
 * comparison takes. */
static bool check_auth(const char *app_key, const char *secret, const char *msg, size_t msg_len,
                       const char *auth, size_t auth_len)
{
    char expected[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex(secret, strlen(secret), msg, msg_len, expected);

    size_t key_len = strlen(app_key);
    /* The key is public, so an ordinary comparison of the prefix is fine. */
    bool prefix_ok =
        auth_len > key_len && memcmp(auth, app_key, key_len) == 0 && auth[key_len] == ':';
    const char *hex = prefix_ok ? auth + key_len + 1 : "";
    size_t hex_len = prefix_ok ? auth_len - key_len - 1 : 0;

    char given[SIG_HEX_LEN];
    memset(given, 0, sizeof given);
    memcpy(given, hex, hex_len < SIG_HEX_LEN ? hex_len : SIG_HEX_LEN);
    int diff = CRYPTO_memcmp(given, expected, SIG_HEX_LEN);
    return prefix_ok & (hex_len == SIG_HEX_LEN) & (diff == 0);
}

/* The string to sign, concatenated in a stack buffer or, when too long, on
 * the heap (heap is NULL when the stack was used). */
typedef struct sig_msg {
    char stack[SIG_STACK_MSG];
    char *heap;
    char *p;
    size_t len;
} sig_msg;

static void msg_build(sig_msg *m, const char *const parts[], const size_t lens[], size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    m->heap = NULL;
    m->p = m->stack;
    if (total > sizeof m->stack) {
        m->heap = malloc(total);
        if (!m->heap)
            abort();
        m->p = m->heap;
    }
    m->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i])
            memcpy(m->p + m->len, parts[i], lens[i]);
        m->len += lens[i];
    }
}

bool sig_check_channel(const char *app_key, const char *secret, const char *socket_id,
                       const char *channel, size_t channel_len, const char *channel_data,
                       size_t channel_data_len, const char *auth, size_t auth_len)
{
    const char *parts[] = {socket_id, ":", channel, ":", channel_data};
    size_t lens[] = {strlen(socket_id), 1, channel_len, 1, channel_data_len};
    sig_msg m;
    msg_build(&m, parts, lens, channel_data ? 5 : 3);
    bool ok = check_auth(app_key, secret, m.p, m.len, auth, auth_len);
    free(m.heap);
    return ok;
}

bool sig_check_user(const char *app_key, const char *secret, const char *socket_id,
                    const char *user_data, size_t user_data_len, const char *auth, size_t auth_len)
{
    const char *parts[] = {socket_id, "::user::", user_data};
    size_t lens[] = {strlen(socket_id), 8, user_data_len};
    sig_msg m;
    msg_build(&m, parts, lens, 3);
    bool ok = check_auth(app_key, secret, m.p, m.len, auth, auth_len);
    free(m.heap);
    return ok;
}
