/* api_internal — what the HTTP API handlers share. */
#ifndef HARK_API_API_INTERNAL_H
#define HARK_API_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "history/history.h"
#include "hub/hub.h"
#include "net/conn.h"
#include "net/http_parser.h"

/* A signed request for one app, after routing. */
typedef struct api_request {
    conn *c;
    const http_request *http;
    const hk_app *app;
    hub_app *hub;
    history *history;
    const char *body;
    size_t body_len;
} api_request;

void api_events(api_request *r);
void api_batch_events(api_request *r);
void api_channels(api_request *r);
void api_channel(api_request *r, const char *name, size_t len);
void api_channel_users(api_request *r, const char *name, size_t len);
void api_terminate_user(api_request *r, const char *user_id, size_t len);
void api_channel_events(api_request *r, const char *name, size_t len);
void api_users_online(api_request *r);
void api_user(api_request *r, const char *user_id, size_t len);
void api_user_read(api_request *r, const char *user_id, size_t len);
void api_user_unread(api_request *r, const char *user_id, size_t len);

/* An answer that waits for another thread (conn_defer_reply): made before
 * queueing the work, its token set once queued. */
typedef struct api_waiting {
    struct worker *w;
    uint64_t token;
} api_waiting;
api_waiting *api_waiting_new(api_request *r);
/* The work is done (h NULL: cancelled at shutdown): answers 200 with json
 * (a JSON body) or status with error, if the connection is still there;
 * frees wa. */
void api_waiting_answer(api_waiting *wa, hub *h, int status, const char *error, const char *json,
                        size_t json_len);

/* Helpers. */
void api_reply_json(api_request *r, const buf *body);
void api_error(api_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A channel name from the path: percent-decoded into *out (malloc'ed) and
 * checked; returns its length, or -1 after answering 400. */
long api_decode_channel(api_request *r, const char *raw, size_t len, char **out);
/* Parses the body as a JSON object; answers 400 and returns NULL otherwise. */
json_t *api_parse_body(api_request *r);

/* The "info" attributes asked for. */
typedef struct api_info {
    bool user_count;
    bool subscription_count;
    bool cache;
    bool unknown;
} api_info;
api_info api_parse_info(const char *s, size_t len);
/* Appends "user_count":N,"subscription_count":N (as asked) for a channel
 * (counts across all workers); returns whether anything was written. */
bool api_write_counts(buf *out, api_request *r, const char *name, size_t len, api_info info);

#endif
