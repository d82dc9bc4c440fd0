/* signature — HMAC-SHA256 auth strings for channels and user sign-in
 * (spec §5), compared in constant time. OpenSSL provides the primitives. */
#ifndef HARK_PROTOCOL_SIGNATURE_H
#define HARK_PROTOCOL_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#define SIG_HEX_LEN 64

/* Lowercase hex HMAC-SHA256(key, msg) into out (64 chars + NUL). */
void sig_hmac_sha256_hex(const char *key, size_t key_len, const void *msg, size_t msg_len,
                         char out[SIG_HEX_LEN + 1]);

/* Lowercase hex MD5(data) into out (32 chars + NUL). */
void sig_md5_hex(const void *data, size_t len, char out[33]);

/* Constant-time equality of two byte strings (time depends only on the
 * lengths). */
bool sig_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Checks a subscription's auth value "<app_key>:<hex>" against
 * "<socket_id>:<channel>" or, when channel_data is not NULL,
 * "<socket_id>:<channel>:<channel_data>". */
bool sig_check_channel(const char *app_key, const char *secret, const char *socket_id,
                       const char *channel, size_t channel_len, const char *channel_data,
                       size_t channel_data_len, const char *auth, size_t auth_len);

/* Checks a sign-in auth value against "<socket_id>::user::<user_data>". */
bool sig_check_user(const char *app_key, const char *secret, const char *socket_id,
                    const char *user_data, size_t user_data_len, const char *auth, size_t auth_len);

#endif
