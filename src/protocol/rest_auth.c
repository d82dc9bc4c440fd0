#include "protocol/rest_auth.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/http_query.h"
#include "util/utf8.h"
#include "protocol/signature.h"
#include "util/buf.h"

#define MD5_HEX_LEN 32
static const char empty_md5[] = "d41d8cd98f00b204e9800998ecf8427e";

/* One decoded query parameter; idx keeps the sort stable so that repeated
 * keys join their values in request order. */
typedef struct qparam {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
    size_t idx;
} qparam;

/* A parameter's (joined) value, located by offset in the canonical query
 * because that buffer may move while it grows. */
typedef struct qvalue {
    bool present;
    size_t off;
    size_t len;
} qvalue;

static int qparam_cmp(const void *pa, const void *pb)
{
    const qparam *a = pa, *b = pb;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n ? memcmp(a->key, b->key, n) : 0;
    if (c)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static bool key_is(const qparam *p, const char *name)
{
    size_t n = strlen(name);
    return p->key_len == n && memcmp(p->key, name, n) == 0;
}

/* Appends s for display inside a quoted string in an error message: the
 * string to sign holds real newlines, and decoded query values may hold any
 * byte. */
static void append_escaped(buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            buf_append(b, "\\n", 2);
        else if (c == '"' || c == '\\') {
            buf_append_char(b, '\\');
            buf_append_char(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(b, x, 4);
        } else
            buf_append_char(b, (char)c);
    }
}

/* Decoded query values may hold any byte (%FF): the error goes into a JSON
 * body, so it is kept valid UTF-8 (U+FFFD for ill-formed bytes) and cut to
 * err_cap at a character boundary. */
static void set_err(char *err, size_t err_cap, const buf *msg)
{
    utf8_sanitize(err, err_cap, msg->data, msg->len);
}

static void append_time(buf *b, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[64];
    if ((int64_t)tt == t && gmtime_r(&tt, &tm) && strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm))
        buf_append_str(b, s);
    else
        buf_append_i64(b, t);
}

/* Parses a non-negative decimal; *huge is set when it does not fit, which is
 * simply "far outside the window" rather than malformed. */
static bool parse_timestamp(const char *s, size_t len, int64_t *out, bool *huge)
{
    int64_t v = 0;
    *huge = false;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (INT64_MAX - 9) / 10)
            *huge = true;
        else
            v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Decodes every parameter of the raw query into one arena. Returns the
 * parameter count, or -1 on a bad percent-escape. */
static long decode_query(const char *query, size_t query_len, qparam **out_params, char **out_arena)
{
    http_query_iter it;
    const char *k, *v;
    size_t kl, vl, n = 0;

    *out_params = NULL;
    *out_arena = NULL;
    http_query_iter_init(&it, query ? query : "", query ? query_len : 0);
    while (http_query_next(&it, &k, &kl, &v, &vl))
        n++;
    /* Decoding never grows a string; each key and value needs one NUL. */
    qparam *ps = calloc(n ? n : 1, sizeof *ps);
    char *arena = malloc(query_len + 2 * n + 1);
    if (!ps || !arena)
        abort();
    *out_params = ps;
    *out_arena = arena;

    size_t off = 0, i = 0;
    http_query_iter_init(&it, query ? query : "", query ? query_len : 0);
    while (http_query_next(&it, &k, &kl, &v, &vl)) {
        long dk = http_percent_decode(k, kl, arena + off, true);
        if (dk < 0)
            return -1;
        ps[i].key = arena + off;
        ps[i].key_len = (size_t)dk;
        for (size_t j = 0; j < (size_t)dk; j++)
            if (arena[off + j] >= 'A' && arena[off + j] <= 'Z')
                arena[off + j] = (char)(arena[off + j] - 'A' + 'a');
        off += (size_t)dk + 1;
        long dv = http_percent_decode(v, vl, arena + off, true);
        if (dv < 0)
            return -1;
        ps[i].val = arena + off;
        ps[i].val_len = (size_t)dv;
        off += (size_t)dv + 1;
        ps[i].idx = i;
        i++;
    }
    return (long)n;
}

/* Builds the canonical query (sorted, auth_signature dropped, repeated keys
 * joined with ',') into q and records where the auth parameters' values
 * landed; auth_signature's value goes to sig. */
static void canonical_query(const qparam *ps, size_t n, buf *q, buf *sig, qvalue *auth_key,
                            qvalue *auth_ts, qvalue *auth_ver, qvalue *body_md5, qvalue *auth_sig)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && ps[j].key_len == ps[i].key_len &&
               memcmp(ps[j].key, ps[i].key, ps[i].key_len) == 0)
            j++;
        buf *dst = q;
        qvalue *slot = NULL;
        if (key_is(&ps[i], "auth_signature")) {
            dst = sig;
            slot = auth_sig;
        } else {
            if (q->len)
                buf_append_char(q, '&');
            buf_append(q, ps[i].key, ps[i].key_len);
            buf_append_char(q, '=');
            if (key_is(&ps[i], "auth_key"))
                slot = auth_key;
            else if (key_is(&ps[i], "auth_timestamp"))
                slot = auth_ts;
            else if (key_is(&ps[i], "auth_version"))
                slot = auth_ver;
            else if (key_is(&ps[i], "body_md5"))
                slot = body_md5;
        }
        size_t start = dst->len;
        for (size_t m = i; m < j; m++) {
            if (m > i)
                buf_append_char(dst, ',');
            buf_append(dst, ps[m].val, ps[m].val_len);
        }
        if (slot)
            *slot = (qvalue){.present = true, .off = start, .len = dst->len - start};
        i = j;
    }
}

static bool value_is(const buf *b, const qvalue *v, const char *s, size_t len)
{
    return v->len == len && (len == 0 || memcmp(b->data + v->off, s, len) == 0);
}

int rest_auth_verify(const rest_auth_request *req, const char *app_key, const char *secret,
                     time_t now, char *err, size_t err_cap)
{
    qparam *ps;
    char *arena;
    buf q, sig, msg;
    qvalue key = {0}, ts = {0}, ver = {0}, md5 = {0}, asig = {0};
    int rc = 401;

    buf_init(&q);
    buf_init(&sig);
    buf_init(&msg);
    if (err_cap)
        err[0] = '\0';

    long n = decode_query(req->query, req->query_len, &ps, &arena);
    if (n < 0) {
        buf_append_str(&msg, "Invalid query string: bad percent-encoding");
        goto out;
    }
    qsort(ps, (size_t)n, sizeof *ps, qparam_cmp);
    canonical_query(ps, (size_t)n, &q, &sig, &key, &ts, &ver, &md5, &asig);
    /* Make q.data valid even for an empty query. */
    buf_reserve(&q, 0);
    buf_reserve(&sig, 0);

    if (!key.present || !ts.present || !ver.present || !asig.present) {
        const char *sep = "Missing required query parameter(s): ";
        const struct {
            const qvalue *v;
            const char *name;
        } req_params[] = {{&key, "auth_key"},
                          {&ts, "auth_timestamp"},
                          {&ver, "auth_version"},
                          {&asig, "auth_signature"}};
        for (size_t i = 0; i < sizeof req_params / sizeof req_params[0]; i++) {
            if (req_params[i].v->present)
                continue;
            buf_append_str(&msg, sep);
            buf_append_str(&msg, req_params[i].name);
            sep = ", ";
        }
        goto out;
    }

    if (!value_is(&q, &key, app_key, strlen(app_key))) {
        buf_append_str(&msg, "auth_key does not match the app: got \"");
        append_escaped(&msg, q.data + key.off, key.len);
        buf_append_char(&msg, '"');
        goto out;
    }

    if (!value_is(&q, &ver, "1.0", 3)) {
        buf_append_str(&msg, "Unsupported auth_version: expected \"1.0\", got \"");
        append_escaped(&msg, q.data + ver.off, ver.len);
        buf_append_char(&msg, '"');
        goto out;
    }

    int64_t t = 0;
    bool huge;
    if (!parse_timestamp(q.data + ts.off, ts.len, &t, &huge)) {
        buf_append_str(&msg, "Invalid auth_timestamp: expected Unix seconds, got \"");
        append_escaped(&msg, q.data + ts.off, ts.len);
        buf_append_char(&msg, '"');
        goto out;
    }
    int64_t skew = (int64_t)now - t;
    if (huge || skew > REST_AUTH_MAX_SKEW || skew < -REST_AUTH_MAX_SKEW) {
        buf_append_str(&msg, "Timestamp expired: Given timestamp (");
        if (huge)
            append_escaped(&msg, q.data + ts.off, ts.len);
        else
            append_time(&msg, t);
        buf_printf(&msg, ") not within %ds of server time (", REST_AUTH_MAX_SKEW);
        append_time(&msg, (int64_t)now);
        buf_append_char(&msg, ')');
        goto out;
    }

    if (req->body_len > 0 && !md5.present) {
        buf_append_str(&msg, "Missing required query parameter(s): body_md5 (the request has "
                             "a body)");
        goto out;
    }
    if (md5.present && !req->body_pending) {
        char body_md5[MD5_HEX_LEN + 1];
        if (req->body_len > 0)
            sig_md5_hex(req->body, req->body_len, body_md5);
        else
            memcpy(body_md5, empty_md5, sizeof body_md5);
        if (!value_is(&q, &md5, body_md5, MD5_HEX_LEN)) {
            /* The body's MD5 is no secret: the client holds the body. */
            buf_printf(&msg, "body_md5 does not match the body: MD5 of the %zu received bytes is ",
                       req->body_len);
            buf_append_str(&msg, body_md5);
            buf_append_str(&msg, ", but you sent \"");
            append_escaped(&msg, q.data + md5.off, md5.len);
            buf_append_char(&msg, '"');
            goto out;
        }
    }

    /* METHOD\nPATH\nQUERY, reusing msg before it holds any error text. */
    buf_append(&msg, req->method, req->method_len);
    buf_append_char(&msg, '\n');
    buf_append(&msg, req->path, req->path_len);
    buf_append_char(&msg, '\n');
    buf_append(&msg, q.data, q.len);
    char expected[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex(secret, strlen(secret), msg.data, msg.len, expected);
    if (sig_equal(sig.data, sig.len, expected, SIG_HEX_LEN)) {
        rc = 0;
        buf_reset(&msg);
        goto out;
    }
    /* Pusher's wording; never the expected signature or the secret. */
    buf tosign = msg;
    buf_init(&msg);
    buf_append_str(&msg, "Invalid signature: you should have sent HmacSHA256Hex(\"");
    append_escaped(&msg, tosign.data, tosign.len);
    buf_append_str(&msg, "\", your_secret_key), but you sent \"");
    append_escaped(&msg, sig.data, sig.len);
    buf_append_char(&msg, '"');
    buf_free(&tosign);

out:
    if (rc)
        set_err(err, err_cap, &msg);
    buf_free(&q);
    buf_free(&sig);
    buf_free(&msg);
    free(ps);
    free(arena);
    return rc;
}
