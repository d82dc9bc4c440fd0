/* rest_auth — verifies a signed HTTP API request exactly as Pusher signs
 * them (spec §8.2): auth_key, auth_timestamp within 600 s, auth_version 1.0,
 * body_md5, auth_signature over "METHOD\nPATH\nSORTED_QUERY". */
#ifndef HARK_PROTOCOL_REST_AUTH_H
#define HARK_PROTOCOL_REST_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define REST_AUTH_MAX_SKEW 600

typedef struct rest_auth_request {
    const char *method; /* "GET", "POST" */
    size_t method_len;
    const char *path; /* as sent in the request line, minus any configured prefix */
    size_t path_len;
    const char *query; /* raw query string, not decoded; may be NULL */
    size_t query_len;
    const char *body;
    size_t body_len;
    bool body_pending; /* body not received yet (body_len is its length): body_md5 is
                          required for a body but not compared */
} rest_auth_request;

/* Returns 0 when the request is correctly signed with (app_key, secret) at
 * time now; otherwise 401 and a human-readable reason in err (always
 * NUL-terminated), e.g. "Invalid signature: expected HMAC-SHA256 hex of
 * \"POST\\n/apps/1/events\\n...\"", "Timestamp expired: ...",
 * "auth_key does not match the app", "body_md5 does not match the body".
 * Query values are percent-decoded and keys lowercased before sorting;
 * repeated keys (channels[]) are joined with ','. */
int rest_auth_verify(const rest_auth_request *req, const char *app_key, const char *secret,
                     time_t now, char *err, size_t err_cap);

#endif
