/* http_parser — parses the head of one HTTP/1.1 request, in place.
 *
 * Hand-written (see docs/design.md): requests are parsed straight out of the
 * loop's shared receive buffer with no copy and no allocation; every pointer
 * in http_request points into the caller's bytes. Fuzzed by
 * fuzz/fuzz_http_parser.c. */
#ifndef HARK_NET_HTTP_PARSER_H
#define HARK_NET_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 32
#define HTTP_MAX_HEAD_BYTES 16384 /* request line + headers */

typedef struct http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing spaces and tabs trimmed */
    size_t value_len;
} http_header;

typedef struct http_request {
    const char *method;
    size_t method_len;
    const char *target; /* raw request-target as sent, e.g. /apps/1/events?x=y */
    size_t target_len;
    const char *path; /* target up to '?' (not decoded) */
    size_t path_len;
    const char *query; /* after '?', not decoded; NULL/0 when absent */
    size_t query_len;
    int minor_version; /* HTTP/1.x */
    http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    size_t head_len;                   /* bytes of the head, including the final CRLFCRLF */
    unsigned long long content_length; /* 0 when absent */
    bool has_content_length;
    bool chunked;           /* Transfer-Encoding: chunked (hark refuses it with 411/400) */
    bool keep_alive;        /* per version default and the Connection header */
    bool upgrade_websocket; /* Upgrade: websocket and Connection: upgrade */
} http_request;

enum http_parse_result {
    HTTP_PARSE_INCOMPLETE = 0,   /* need more bytes */
    HTTP_PARSE_BAD_REQUEST = -1, /* malformed: answer 400 and close */
    HTTP_PARSE_TOO_LARGE = -2,   /* head > HTTP_MAX_HEAD_BYTES or too many headers: 431 */
    HTTP_PARSE_BAD_VERSION = -3, /* not HTTP/1.0 or 1.1: 505 */
};

/* Parses data[0..len). Returns head_len (> 0) when a whole head is present
 * (the body, if any, starts at data + head_len), or an http_parse_result.
 * Accepts bare LF line endings too. Rejects: control characters in the
 * request line, header names that are not tokens, obs-fold continuation
 * lines, duplicate or invalid Content-Length, Content-Length together with
 * Transfer-Encoding. */
int http_request_parse(const char *data, size_t len, http_request *req);

/* Case-insensitive header lookup; NULL when absent. */
const http_header *http_request_header(const http_request *req, const char *name);

/* True if a comma-separated header value contains token (case-insensitive),
 * e.g. http_header_has_token("keep-alive, Upgrade", "upgrade"). */
bool http_header_has_token(const char *value, size_t value_len, const char *token);

#endif
