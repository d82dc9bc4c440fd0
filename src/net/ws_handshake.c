#include "net/ws_handshake.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void ws_handshake_accept(const char *key, size_t key_len, char accept_out[WS_ACCEPT_LEN + 1])
{
    unsigned char sha[20];
    unsigned int sha_len = 0;
    /* Two updates rather than a concatenation: key_len is the client's. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, key, key_len) ||
        !EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) ||
        !EVP_DigestFinal_ex(ctx, sha, &sha_len))
        abort(); /* only on OOM or a crippled libcrypto */
    EVP_MD_CTX_free(ctx);
    /* 20 bytes -> 28 base64 chars plus the NUL EVP_EncodeBlock writes. */
    EVP_EncodeBlock((unsigned char *)accept_out, sha, (int)sha_len);
}

static bool ws_handshake_b64char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* 16 random bytes, base64: 22 alphabet chars and "==" (RFC 6455 §4.1). */
static bool ws_handshake_key_valid(const http_header *h)
{
    if (!h || h->value_len != 24)
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!ws_handshake_b64char(h->value[i]))
            return false;
    }
    return h->value[22] == '=' && h->value[23] == '=';
}

int ws_handshake_check(const http_request *req, char accept_out[WS_ACCEPT_LEN + 1])
{
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
        return 400;
    if (req->minor_version != 1)
        return 400;
    if (!req->upgrade_websocket)
        return 400;
    const http_header *key = http_request_header(req, "Sec-WebSocket-Key");
    if (!ws_handshake_key_valid(key))
        return 400;
    const http_header *ver = http_request_header(req, "Sec-WebSocket-Version");
    if (!ver)
        return 400; /* not a WebSocket request at all */
    if (ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0)
        return 426; /* caller adds Sec-WebSocket-Version: 13 */
    ws_handshake_accept(key->value, key->value_len, accept_out);
    return 0;
}
