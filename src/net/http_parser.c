#include "net/http_parser.h"

#include <string.h>

/* RFC 9110 §5.6.2 tchar. */
static bool http_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7F;
}

static unsigned char http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive equality; locale-independent unlike strncasecmp. */
static bool http_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

bool http_header_has_token(const char *value, size_t value_len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < value_len) {
        size_t start = i;
        while (i < value_len && value[i] != ',')
            i++;
        size_t end = i;
        while (start < end && (value[start] == ' ' || value[start] == '\t'))
            start++;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (http_ieq(value + start, end - start, token, tlen))
            return true;
        i++; /* skip the comma */
    }
    return false;
}

const http_header *http_request_header(const http_request *req, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header *h = &req->headers[i];
        if (http_ieq(h->name, h->name_len, name, nlen))
            return h;
    }
    return NULL;
}

/* Finds the line starting at pos within data[0..limit). Returns false when
 * no LF has arrived yet. The line excludes its LF and an optional CR before
 * it; any other CR stays in and is rejected as a control character. */
static bool http_next_line(const char *data, size_t pos, size_t limit, size_t *line_len,
                           size_t *next)
{
    const char *lf = memchr(data + pos, '\n', limit - pos);
    if (!lf)
        return false;
    size_t end = (size_t)(lf - data);
    *next = end + 1;
    if (end > pos && data[end - 1] == '\r')
        end--;
    *line_len = end - pos;
    return true;
}

static int http_parse_request_line(const char *line, size_t n, http_request *req)
{
    size_t i = 0;
    while (i < n && http_is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= n || line[i] != ' ')
        return HTTP_PARSE_BAD_REQUEST;
    req->method = line;
    req->method_len = i;

    size_t t = ++i;
    while (i < n && line[i] != ' ') {
        if (http_is_ctl((unsigned char)line[i]))
            return HTTP_PARSE_BAD_REQUEST;
        i++;
    }
    if (i == t || i >= n)
        return HTTP_PARSE_BAD_REQUEST;
    req->target = line + t;
    req->target_len = i - t;
    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    if (q) {
        req->query = q + 1;
        req->query_len = req->target_len - req->path_len - 1;
    }

    const char *v = line + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.')
        return HTTP_PARSE_BAD_REQUEST;
    if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
        return HTTP_PARSE_BAD_REQUEST;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return HTTP_PARSE_BAD_VERSION; /* well-formed, but not one we speak */
    req->minor_version = v[7] - '0';
    return 0;
}

/* Header facts gathered while parsing, applied once the head is complete. */
typedef struct http_conn_state {
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool upgrade_ws;
    bool has_transfer_encoding;
    bool te_final_chunked; /* last coding of the last Transfer-Encoding */
} http_conn_state;

static bool http_last_token_is(const char *value, size_t n, const char *token)
{
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    size_t start = n;
    while (start > 0 && value[start - 1] != ',')
        start--;
    while (start < n && (value[start] == ' ' || value[start] == '\t'))
        start++;
    return http_ieq(value + start, n - start, token, strlen(token));
}

static int http_content_length(const char *v, size_t n, unsigned long long *out)
{
    if (n == 0)
        return HTTP_PARSE_BAD_REQUEST;
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HTTP_PARSE_BAD_REQUEST; /* also refuses "5, 5" lists and signs */
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (~0ull - d) / 10)
            return HTTP_PARSE_BAD_REQUEST;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

static int http_parse_header_line(const char *line, size_t n, http_request *req,
                                  http_conn_state *st)
{
    if (line[0] == ' ' || line[0] == '\t')
        return HTTP_PARSE_BAD_REQUEST; /* obs-fold, RFC 9112 §5.2 */
    size_t i = 0;
    while (i < n && http_is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= n || line[i] != ':')
        return HTTP_PARSE_BAD_REQUEST; /* also "Name :" with space before colon */
    size_t vs = i + 1, ve = n;
    while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
        vs++;
    while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++) {
        unsigned char c = (unsigned char)line[k];
        if (http_is_ctl(c) && c != '\t')
            return HTTP_PARSE_BAD_REQUEST;
    }
    if (req->num_headers == HTTP_MAX_HEADERS)
        return HTTP_PARSE_TOO_LARGE;

    http_header *h = &req->headers[req->num_headers++];
    h->name = line;
    h->name_len = i;
    h->value = line + vs;
    h->value_len = ve - vs;

    if (http_ieq(h->name, h->name_len, "content-length", 14)) {
        if (req->has_content_length)
            return HTTP_PARSE_BAD_REQUEST; /* request smuggling vector */
        if (http_content_length(h->value, h->value_len, &req->content_length) != 0)
            return HTTP_PARSE_BAD_REQUEST;
        req->has_content_length = true;
    } else if (http_ieq(h->name, h->name_len, "transfer-encoding", 17)) {
        st->has_transfer_encoding = true;
        if (http_header_has_token(h->value, h->value_len, "chunked"))
            req->chunked = true;
        st->te_final_chunked = http_last_token_is(h->value, h->value_len, "chunked");
    } else if (http_ieq(h->name, h->name_len, "connection", 10)) {
        st->conn_close |= http_header_has_token(h->value, h->value_len, "close");
        st->conn_keep_alive |= http_header_has_token(h->value, h->value_len, "keep-alive");
        st->conn_upgrade |= http_header_has_token(h->value, h->value_len, "upgrade");
    } else if (http_ieq(h->name, h->name_len, "upgrade", 7)) {
        st->upgrade_ws |= http_header_has_token(h->value, h->value_len, "websocket");
    }
    if (req->has_content_length && st->has_transfer_encoding)
        return HTTP_PARSE_BAD_REQUEST; /* RFC 9112 §6.1: ambiguous framing */
    return 0;
}

int http_request_parse(const char *data, size_t len, http_request *req)
{
    memset(req, 0, sizeof *req);
    http_conn_state st = {0};
    /* Bytes past the limit can never be part of an acceptable head. */
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    size_t pos = 0;

    /* RFC 9112 §2.2: ignore empty lines before the request line (some
     * clients send a CRLF after a POST body). */
    for (;;) {
        if (pos < limit && data[pos] == '\n') {
            pos++;
        } else if (pos + 1 < limit && data[pos] == '\r' && data[pos + 1] == '\n') {
            pos += 2;
        } else {
            break;
        }
    }

    size_t n, next;
    if (!http_next_line(data, pos, limit, &n, &next)) {
        /* Refuse obvious garbage (e.g. a TLS ClientHello) without waiting
         * for a line end that may never come. */
        for (size_t i = pos; i < limit; i++) {
            unsigned char c = (unsigned char)data[i];
            if (http_is_ctl(c) && !(c == '\r' && i + 1 == limit))
                return HTTP_PARSE_BAD_REQUEST;
        }
        return len >= HTTP_MAX_HEAD_BYTES ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
    }
    int rc = http_parse_request_line(data + pos, n, req);
    if (rc != 0)
        return rc;
    pos = next;

    for (;;) {
        if (!http_next_line(data, pos, limit, &n, &next))
            return len >= HTTP_MAX_HEAD_BYTES ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
        if (n == 0) {
            pos = next;
            break;
        }
        rc = http_parse_header_line(data + pos, n, req, &st);
        if (rc != 0)
            return rc;
        pos = next;
    }

    /* RFC 9112 §6.3: a request body whose final coding is not chunked has
     * no knowable length, which the server must refuse. */
    if (st.has_transfer_encoding && !st.te_final_chunked)
        return HTTP_PARSE_BAD_REQUEST;

    req->head_len = pos;
    req->keep_alive = req->minor_version >= 1;
    if (st.conn_close)
        req->keep_alive = false;
    else if (st.conn_keep_alive)
        req->keep_alive = true;
    req->upgrade_websocket = st.upgrade_ws && st.conn_upgrade;
    return (int)pos;
}
