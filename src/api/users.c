/* /apps/{id}/users… — users of an app (docs/api.md):
 *   GET  /users                          who is signed in now, paged
 *   GET  /users/{user}                   one user's connections
 *   GET  /users/{user}/unread            unread counts (history thread)
 *   POST /users/{user}/read              moves a read cursor (history thread)
 *   POST /users/{user}/terminate_connections
 * Answers that need the store wait for it (conn_defer_reply). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "net/http_response.h"
#include "net/worker.h"
#include "protocol/channel_name.h"
#include "util/http_query.h"
#include "util/json_write.h"
#include "util/xalloc.h"

#define ONLINE_PAGE_DEFAULT 100
#define ONLINE_PAGE_MAX 1000
#define UNREAD_CHANNELS_MAX 100

/* The user id of the path, decoded and checked into id (USER_ID_MAX_LENGTH
 * + 1 bytes); its length, or -1 after answering 400. */
static long decode_user(api_request *r, const char *raw, size_t raw_len, char *id)
{
    char decoded[3 * USER_ID_MAX_LENGTH + 1]; /* any valid id, however escaped */
    if (raw_len >= sizeof(decoded)) {
        api_error(r, 400, "Invalid user id: too long");
        return -1;
    }
    long n = http_percent_decode(raw, raw_len, decoded, false);
    if (n < 0 || !user_id_valid(decoded, (size_t)n)) {
        api_error(r, 400, "Invalid user id: 1-%d characters of [A-Za-z0-9_-=@,.;]",
                  USER_ID_MAX_LENGTH);
        return -1;
    }
    memcpy(id, decoded, (size_t)n + 1);
    return n;
}

void api_terminate_user(api_request *r, const char *raw, size_t raw_len)
{
    char id[USER_ID_MAX_LENGTH + 1];
    long n = decode_user(r, raw, raw_len, id);
    if (n < 0)
        return;
    hub_terminate_user(r->hub, id, (size_t)n);
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{}");
    api_reply_json(r, &out);
    buf_free(&out);
}

/* --- who is online ------------------------------------------------------------ */

void api_users_online(api_request *r)
{
    char limit_s[16], cursor[USER_ID_MAX_LENGTH + 1];
    long nl = http_query_get(r->http->query, r->http->query_len, "limit", limit_s, sizeof(limit_s));
    long nc = http_query_get(r->http->query, r->http->query_len, "cursor", cursor, sizeof(cursor));
    uint32_t limit = ONLINE_PAGE_DEFAULT;
    if (nl != -1) {
        char *end;
        long v = nl > 0 && limit_s[0] >= '0' && limit_s[0] <= '9' ? strtol(limit_s, &end, 10) : 0;
        if (v == 0 || *end || v < 1 || v > ONLINE_PAGE_MAX) {
            api_error(r, 400, "limit: must be an integer 1-%d", ONLINE_PAGE_MAX);
            return;
        }
        limit = (uint32_t)v;
    }
    if (nc == -2 || (nc >= 0 && !user_id_valid(cursor, (size_t)nc))) {
        api_error(r, 400, "cursor: not a cursor from an earlier page");
        return;
    }
    buf out, last;
    buf_init(&out);
    buf_init(&last);
    buf_append_str(&out, "{\"users\":[");
    bool more = directory_online_page(r->hub->hub->dir, r->hub->index, nc > 0 ? cursor : NULL,
                                      nc > 0 ? (size_t)nc : 0, limit, &out, &last);
    buf_append_str(&out, "],\"next\":");
    if (more)
        json_write_string(&out, last.data, last.len);
    else
        buf_append_str(&out, "null");
    buf_append_char(&out, '}');
    api_reply_json(r, &out);
    buf_free(&out);
    buf_free(&last);
}

void api_user(api_request *r, const char *raw, size_t raw_len)
{
    char id[USER_ID_MAX_LENGTH + 1];
    long n = decode_user(r, raw, raw_len, id);
    if (n < 0)
        return;
    uint32_t conns = directory_user_online(r->hub->hub->dir, r->hub->index, id, (size_t)n, 0, NULL);
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{\"id\":");
    json_write_string(&out, id, (size_t)n);
    buf_append_str(&out, conns ? ",\"online\":true" : ",\"online\":false");
    buf_append_str(&out, ",\"connections\":");
    buf_append_i64(&out, conns);
    buf_append_char(&out, '}');
    api_reply_json(r, &out);
    buf_free(&out);
}

/* --- read state ------------------------------------------------------------------ */

static void on_read(hub *h, void *ctx, const history_read_result *res)
{
    const char *body = h && res->moved ? "{\"moved\":true}" : "{\"moved\":false}";
    api_waiting_answer(ctx, h, h ? res->status : 0, h ? res->error : NULL, body, strlen(body));
}

void api_user_read(api_request *r, const char *raw, size_t raw_len)
{
    char id[USER_ID_MAX_LENGTH + 1];
    long n = decode_user(r, raw, raw_len, id);
    if (n < 0)
        return;
    json_t *body = api_parse_body(r);
    if (!body)
        return;
    json_t *channel = json_object_get(body, "channel");
    json_t *read_id = json_object_get(body, "id");
    const char *reason = NULL;
    if (!json_is_string(channel) ||
        !channel_name_valid(json_string_value(channel), json_string_length(channel),
                            r->app->max_channel_name_length, &reason)) {
        api_error(r, 400, "channel: %s", reason ? reason : "required, a channel name");
    } else if (read_id && !json_is_null(read_id) && !json_is_string(read_id)) {
        api_error(r, 400, "id: must be a string (an event id)");
    } else if (!r->history ||
               !history_rule(r->app, json_string_value(channel), json_string_length(channel))) {
        /* no events here: nothing to read, and no id can be of it */
        if (json_is_string(read_id))
            api_error(r, 400, "id: this channel's events are not kept, so it has no ids");
        else
            http_respond(r->c, 200, "application/json", "{\"moved\":false}", 15, NULL);
    } else {
        api_waiting *wa = api_waiting_new(r);
        char err[200];
        bool has_id = json_is_string(read_id);
        int refused = history_mark_read(
            r->history, r->hub->hub, r->hub->index, id, (size_t)n, json_string_value(channel),
            json_string_length(channel), has_id ? json_string_value(read_id) : NULL,
            has_id ? json_string_length(read_id) : 0, NULL, on_read, wa, err, sizeof(err));
        if (!refused) {
            /* answered through this worker's inbox, after this returns */
            wa->token = conn_defer_reply(r->c);
        } else {
            free(wa);
            api_error(r, refused, "%s", err);
        }
    }
    json_decref(body);
}

static void on_unread(hub *h, void *ctx, const history_unread_result *res)
{
    api_waiting_answer(ctx, h, h ? res->status : 0, h ? res->error : NULL,
                       h && res->status == 200 ? res->json->data : NULL,
                       h && res->status == 200 ? res->json->len : 0);
}

void api_user_unread(api_request *r, const char *raw, size_t raw_len)
{
    char id[USER_ID_MAX_LENGTH + 1];
    long n = decode_user(r, raw, raw_len, id);
    if (n < 0)
        return;
    if (!r->history) {
        api_error(r, 503, "History is off on this server");
        return;
    }
    size_t cap = r->http->query_len + 1;
    char *list = xmalloc(cap);
    long nl = http_query_get(r->http->query, r->http->query_len, "channels", list, cap);
    const char *names[UNREAD_CHANNELS_MAX];
    size_t lens[UNREAD_CHANNELS_MAX];
    size_t count = 0;
    const char *why = NULL;
    if (nl == -2) {
        why = "badly escaped";
    } else if (nl >= 0) {
        for (char *p = list, *end = list + nl; p <= end && !why;) {
            char *comma = memchr(p, ',', (size_t)(end - p));
            size_t len = (size_t)((comma ? comma : end) - p);
            const char *reason = NULL;
            if (count == UNREAD_CHANNELS_MAX)
                why = "at most 100 channels";
            else if (!channel_name_valid(p, len, r->app->max_channel_name_length, &reason))
                why = reason ? reason : "not a channel name";
            else {
                names[count] = p;
                lens[count++] = len;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (why) {
        api_error(r, 400, "channels: %s", why);
        free(list);
        return;
    }
    api_waiting *wa = api_waiting_new(r);
    if (history_unread(r->history, r->hub->hub, r->hub->index, id, (size_t)n,
                       nl >= 0 ? names : NULL, lens, count, on_unread, wa)) {
        wa->token = conn_defer_reply(r->c);
    } else {
        free(wa);
        api_error(r, 503, "The server has too many unread requests waiting: try again");
    }
    free(list);
}
