#include "api/router.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_internal.h"
#include "util/http_query.h"
#include "net/http_response.h"
#include "net/worker.h"
#include "ops/health.h"
#include "util/xalloc.h"
#include "protocol/channel_name.h"
#include "protocol/rest_auth.h"

api_waiting *api_waiting_new(api_request *r)
{
    api_waiting *wa = xmalloc(sizeof(*wa));
    wa->w = conn_worker(r->c);
    wa->token = 0;
    return wa;
}

void api_waiting_answer(api_waiting *wa, hub *h, int status, const char *error, const char *json,
                        size_t json_len)
{
    conn *c = h ? conn_deferred(wa->w, wa->token) : NULL;
    free(wa);
    if (!c)
        return;
    if (status == 200)
        http_respond(c, 200, "application/json", json, json_len, NULL);
    else
        http_respond_error(c, status, error);
    conn_reply_sent(c);
}

void api_reply_json(api_request *r, const buf *body)
{
    http_respond(r->c, 200, "application/json", body->data, body->len, NULL);
}

void api_error(api_request *r, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    http_respond_error(r->c, status, message);
}

json_t *api_parse_body(api_request *r)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->body, r->body_len, 0, &jerr);
    if (!root) {
        api_error(r, 400, "Invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line,
                  jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_error(r, 400, "The body must be a JSON object");
        return NULL;
    }
    return root;
}

api_info api_parse_info(const char *s, size_t len)
{
    api_info info = {0};
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        size_t n = j - i;
        if (n == 10 && memcmp(s + i, "user_count", 10) == 0)
            info.user_count = true;
        else if (n == 18 && memcmp(s + i, "subscription_count", 18) == 0)
            info.subscription_count = true;
        else if (n == 5 && memcmp(s + i, "cache", 5) == 0)
            info.cache = true;
        else if (n > 0)
            info.unknown = true;
        i = j + 1;
    }
    return info;
}

bool api_write_counts(buf *out, api_request *r, const char *name, size_t len, api_info info)
{
    if (!info.user_count && !info.subscription_count)
        return false;
    bool presence = channel_classify(name, len).type == CHANNEL_PRESENCE;
    dir_channel_info ci = directory_channel_info(r->hub->hub->dir, r->hub->index, name, len);
    if (ci.cached)
        frame_unref(ci.cached);
    bool wrote = false;
    if (info.user_count && presence) {
        buf_printf(out, "\"user_count\":%u", ci.user_count);
        wrote = true;
    }
    if (info.subscription_count) {
        buf_printf(out, "%s\"subscription_count\":%u", wrote ? "," : "", ci.subscription_count);
        wrote = true;
    }
    return wrote;
}

/* Next path segment after *p (which points at a '/'); false at the end. */
static bool next_segment(const char **p, const char *end, const char **seg, size_t *len)
{
    if (*p >= end || **p != '/')
        return false;
    const char *s = *p + 1;
    const char *e = s;
    while (e < end && *e != '/')
        e++;
    *seg = s;
    *len = (size_t)(e - s);
    *p = e;
    return true;
}

static bool seg_is(const char *seg, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(seg, word, len) == 0;
}

static bool method_is(const http_request *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

/* The request path after the configured prefix. */
static void strip_prefix(const hk_config *cfg, const http_request *req, const char **path,
                         size_t *len)
{
    size_t plen = strlen(cfg->path_prefix);
    *path = req->path;
    *len = req->path_len;
    if (plen > 0 && *len >= plen && memcmp(*path, cfg->path_prefix, plen) == 0) {
        *path += plen;
        *len -= plen;
    }
}

/* Finds the app of /apps/{id}/… and checks the request's signature (before
 * the body has arrived when body_pending). Returns 0 with *app set and *rest
 * at what follows the id, or the HTTP status with why in message. */
static int authorize(const hk_config *cfg, const http_request *req, const char *path,
                     size_t path_len, const char *body, size_t body_len, bool body_pending,
                     const hk_app **app, const char **rest, char *message, size_t cap)
{
    const char *p = path, *end = path + path_len, *seg;
    size_t seg_len;
    if (!next_segment(&p, end, &seg, &seg_len) || !seg_is(seg, seg_len, "apps") ||
        !next_segment(&p, end, &seg, &seg_len)) {
        snprintf(message, cap, "Not found: the HTTP API lives under /apps/{app_id}/");
        return 404;
    }
    *app = config_find_app_by_id(cfg, seg, seg_len);
    if (!*app) {
        snprintf(message, cap, "Unknown app id %.*s", (int)(seg_len > 64 ? 64 : seg_len), seg);
        return 404;
    }
    rest_auth_request ar = {.method = req->method,
                            .method_len = req->method_len,
                            .path = path,
                            .path_len = path_len,
                            .query = req->query,
                            .query_len = req->query_len,
                            .body = body,
                            .body_len = body_len,
                            .body_pending = body_pending};
    if (rest_auth_verify(&ar, (*app)->key, (*app)->secret, time(NULL), message, cap) != 0)
        return 401;
    if (!(*app)->enabled) {
        snprintf(message, cap, "The app is disabled");
        return 403;
    }
    *rest = p;
    return 0;
}

int api_check_head(conn *c, const http_request *req, char *message, size_t cap)
{
    const hk_config *cfg = conn_config(c);
    const char *path, *rest;
    size_t path_len;
    strip_prefix(cfg, req, &path, &path_len);
    if (ops_owns(req, path, path_len))
        return 0; /* answered whatever the body */
    const hk_app *app;
    return authorize(cfg, req, path, path_len, NULL, (size_t)req->content_length, true, &app, &rest,
                     message, cap);
}

void api_handle(conn *c, const http_request *req, const char *body, size_t body_len)
{
    const hk_config *cfg = conn_config(c);
    api_request r = {.c = c, .http = req, .body = body, .body_len = body_len};
    const char *path;
    size_t path_len;
    strip_prefix(cfg, req, &path, &path_len);
    if (ops_handle(c, req, path, path_len))
        return;
    char err[512];
    const char *p;
    int status =
        authorize(cfg, req, path, path_len, body, body_len, false, &r.app, &p, err, sizeof(err));
    if (status) {
        api_error(&r, status, "%s", err);
        return;
    }
    const char *end = path + path_len;
    const worker_services *services = conn_worker_data(c);
    r.hub = hub_app_of(services->hub, r.app);
    r.history = services->history;

    const char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    bool h1 = next_segment(&p, end, &s1, &l1);
    bool h2 = h1 && next_segment(&p, end, &s2, &l2);
    bool h3 = h2 && next_segment(&p, end, &s3, &l3);
    bool more = p < end;
    const char *want = NULL;

    if (h1 && !h2 && seg_is(s1, l1, "events")) {
        want = "POST";
        if (method_is(req, want)) {
            api_events(&r);
            return;
        }
    } else if (h1 && !h2 && seg_is(s1, l1, "batch_events")) {
        want = "POST";
        if (method_is(req, want)) {
            api_batch_events(&r);
            return;
        }
    } else if (h1 && !h2 && seg_is(s1, l1, "channels")) {
        want = "GET";
        if (method_is(req, want)) {
            api_channels(&r);
            return;
        }
    } else if (h2 && !h3 && seg_is(s1, l1, "channels") && l2 > 0) {
        want = "GET";
        if (method_is(req, want)) {
            api_channel(&r, s2, l2);
            return;
        }
    } else if (h3 && !more && seg_is(s1, l1, "channels") && seg_is(s3, l3, "users") && l2 > 0) {
        want = "GET";
        if (method_is(req, want)) {
            api_channel_users(&r, s2, l2);
            return;
        }
    } else if (h3 && !more && seg_is(s1, l1, "channels") && seg_is(s3, l3, "events") && l2 > 0) {
        want = "GET";
        if (method_is(req, want)) {
            api_channel_events(&r, s2, l2);
            return;
        }
    } else if (h1 && !h2 && seg_is(s1, l1, "users")) {
        want = "GET";
        if (method_is(req, want)) {
            api_users_online(&r);
            return;
        }
    } else if (h2 && !h3 && seg_is(s1, l1, "users") && l2 > 0) {
        want = "GET";
        if (method_is(req, want)) {
            api_user(&r, s2, l2);
            return;
        }
    } else if (h3 && !more && seg_is(s1, l1, "users") && seg_is(s3, l3, "read") && l2 > 0) {
        want = "POST";
        if (method_is(req, want)) {
            api_user_read(&r, s2, l2);
            return;
        }
    } else if (h3 && !more && seg_is(s1, l1, "users") && seg_is(s3, l3, "unread") && l2 > 0) {
        want = "GET";
        if (method_is(req, want)) {
            api_user_unread(&r, s2, l2);
            return;
        }
    } else if (h3 && !more && seg_is(s1, l1, "users") && seg_is(s3, l3, "terminate_connections") &&
               l2 > 0) {
        want = "POST";
        if (method_is(req, want)) {
            api_terminate_user(&r, s2, l2);
            return;
        }
    }
    if (want)
        api_error(&r, 405, "Method not allowed: use %s", want);
    else
        api_error(&r, 404, "Not found: %.*s", (int)(path_len > 200 ? 200 : path_len), path);
}
