/* libFuzzer target for the HTTP request head parser and the query helpers.
 * Besides crashes and sanitizer reports it checks the parser's contract:
 * pointers stay inside the input and re-parsing is consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parser.h"
#include "util/http_query.h"

static int fuzz_inside(const char *base, size_t len, const char *p, size_t n)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void fuzz_query(const char *q, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        abort();
    long n = http_percent_decode(q, len, out, true);
    if (n > (long)len)
        abort();
    http_query_iter it;
    http_query_iter_init(&it, q, len);
    const char *k, *v;
    size_t kl, vl;
    while (http_query_next(&it, &k, &kl, &v, &vl)) {
        if (!fuzz_inside(q, len, k, kl) || !fuzz_inside(q, len, v, vl))
            abort();
    }
    char small[8];
    (void)http_query_get(q, len, "auth_key", small, sizeof small);
    (void)http_query_get(q, len, "protocol", out, len + 1);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    http_request req;
    int rc = http_request_parse(s, size, &req);
    if (rc <= 0) {
        if (rc < HTTP_PARSE_BAD_VERSION)
            abort();
        fuzz_query(s, size);
        return 0;
    }
    if ((size_t)rc > size || (size_t)rc > HTTP_MAX_HEAD_BYTES || req.head_len != (size_t)rc)
        abort();
    if (!fuzz_inside(s, (size_t)rc, req.method, req.method_len) ||
        !fuzz_inside(s, (size_t)rc, req.target, req.target_len) ||
        !fuzz_inside(s, (size_t)rc, req.path, req.path_len))
        abort();
    if (req.query && !fuzz_inside(s, (size_t)rc, req.query, req.query_len))
        abort();
    if (req.num_headers > HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < req.num_headers; i++) {
        const http_header *h = &req.headers[i];
        if (!fuzz_inside(s, (size_t)rc, h->name, h->name_len) ||
            !fuzz_inside(s, (size_t)rc, h->value, h->value_len))
            abort();
        (void)http_header_has_token(h->value, h->value_len, "upgrade");
    }
    (void)http_request_header(&req, "host");

    /* The head alone parses to the same length; one byte less is incomplete. */
    http_request again;
    if (http_request_parse(s, (size_t)rc, &again) != rc)
        abort();
    int shorter = http_request_parse(s, (size_t)rc - 1, &again);
    if (shorter > 0)
        abort();

    char *path = malloc(req.path_len + 1);
    if (!path)
        abort();
    (void)http_percent_decode(req.path, req.path_len, path, false);
    free(path);
    if (req.query)
        fuzz_query(req.query, req.query_len);
    return 0;
}
