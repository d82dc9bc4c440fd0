#include "transport/poll_transport.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history/history.h"
#include "net/http_response.h"
#include "net/worker.h"
#include "protocol/channel_name.h"
#include "protocol/signature.h"
#include "session/session.h"
#include "transport/url_auth.h"
#include "util/xalloc.h"

static const char cors[] = "Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n";

bool poll_transport_match(const hk_config *cfg, const http_request *req)
{
    const char *key;
    size_t len;
    return url_app_path(cfg, req, "/poll", &key, &len);
}

static void refuse(conn *c, int status, const char *why)
{
    char body[400];
    buf b = {0};
    buf_init(&b);
    buf_append_str(&b, "{\"error\":");
    json_t *s = json_string(why);
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    buf_append_str(&b, text ? text : "\"\"");
    free(text);
    json_decref(s);
    snprintf(body, sizeof(body), ",\"code\":%d}", status);
    buf_append_str(&b, body);
    http_respond(c, status, "application/json", b.data, b.len, cors);
    buf_free(&b);
}

typedef struct waiting_poll {
    worker *w;
    uint64_t token;
} waiting_poll;

static void on_polled(hub *h, void *ctx, const history_poll_result *r)
{
    waiting_poll *wp = ctx;
    conn *c = h ? conn_deferred(wp->w, wp->token) : NULL;
    free(wp);
    if (!c)
        return;
    if (r->status == 200)
        http_respond(c, 200, "application/json", r->json->data, r->json->len, cors);
    else
        refuse(c, r->status, r->error);
    conn_reply_sent(c);
}

/* The signed-in user of the URL (user_data + user_auth for the token):
 * its id into out; 0 when none, -1 when refused (why set). */
static long signed_in_user(const http_request *req, const hk_app *app, const char *token, char *out,
                           size_t cap, const char **why)
{
    char *user_data = url_param(req, "user_data"), *auth = url_param(req, "user_auth");
    long n = 0;
    if (user_data || auth) {
        json_t *root = user_data ? json_loads(user_data, 0, NULL) : NULL;
        json_t *id = root ? json_object_get(root, "id") : NULL;
        if (!user_data || !auth || !token ||
            !sig_check_user(app->key, app->secret, token, user_data, strlen(user_data), auth,
                            strlen(auth))) {
            *why = "user_auth: not a signature of user_data for the token";
            n = -1;
        } else if (!json_is_string(id) ||
                   !user_id_valid(json_string_value(id), json_string_length(id)) ||
                   json_string_length(id) >= cap) {
            *why = "user_data: an object with a valid string id";
            n = -1;
        } else {
            n = (long)json_string_length(id);
            memcpy(out, json_string_value(id), (size_t)n + 1);
        }
        json_decref(root);
    }
    free(user_data);
    free(auth);
    return n;
}

/* Checks each private or presence channel's auth against the token. */
static const char *authorize(const http_request *req, const hk_app *app, const char *token,
                             const url_channels *list)
{
    char auth[256], data[4096];
    for (size_t i = 0; i < list->count; i++) {
        const char *name = list->names[i];
        size_t len = list->lens[i];
        if (!channel_kind_needs_auth(channel_classify(name, len)))
            continue;
        bool has_data = url_param_for(req, "channel_data", name, len, data, sizeof(data));
        if (!url_param_for(req, "auth", name, len, auth, sizeof(auth)) ||
            !sig_check_channel(app->key, app->secret, token, name, len, has_data ? data : NULL,
                               has_data ? strlen(data) : 0, auth, strlen(auth)))
            return "auth: a channel's auth is missing or not a signature for the token";
    }
    return NULL;
}

/* A user's #server-to-user- channel is that user's alone, as on a
 * WebSocket: polled only when signed in as that user. */
static const char *user_channels_refused(const url_channels *list, const char *user, long user_len)
{
    for (size_t i = 0; i < list->count; i++) {
        const char *name = list->names[i];
        size_t len = list->lens[i];
        if (channel_classify(name, len).type == CHANNEL_USER &&
            (user_len <= 0 || !channel_is_users_own(name, len, user, (size_t)user_len)))
            return "channels: only the signed-in user (user_data, user_auth) may poll its own "
                   "#server-to-user channel";
    }
    return NULL;
}

/* A presence channel names its member, as on a WebSocket: channel_data
 * (signed with the auth), or else the signed-in user. */
static const char *presence_without_member(const http_request *req, const url_channels *list)
{
    char data[4096]; /* as authorize reads it */
    for (size_t i = 0; i < list->count; i++)
        if (channel_classify(list->names[i], list->lens[i]).type == CHANNEL_PRESENCE &&
            !url_param_for(req, "channel_data", list->names[i], list->lens[i], data, sizeof(data)))
            return "channel_data: presence channels need channel_data with a user_id (or a "
                   "sign-in)";
    return NULL;
}

static long number(const http_request *req, const char *key, long dflt, long min, long max)
{
    char *v = url_param(req, key);
    if (!v)
        return dflt;
    char *end;
    long n = v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : -1;
    bool ok = n >= 0 && *end == '\0' && n >= min && n <= max;
    free(v);
    return ok ? n : -1;
}

void poll_transport_request(conn *c, const http_request *req)
{
    if (req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0) {
        static const char allow[] = "Access-Control-Allow-Origin: *\r\n"
                                    "Access-Control-Allow-Methods: GET, OPTIONS\r\n"
                                    "Access-Control-Max-Age: 86400\r\n";
        http_respond(c, 204, "text/plain", "", 0, allow);
        return;
    }
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0) {
        refuse(c, 405, "Use GET");
        return;
    }
    const char *key;
    size_t key_len;
    url_app_path(conn_config(c), req, "/poll", &key, &key_len);
    const worker_services *services = conn_worker_data(c);
    const hk_app *app = NULL;
    char message[256];
    if (session_admit(services->hub, key, key_len, req->query, req->query_len, &app, message,
                      sizeof(message))) {
        refuse(c, 404, message);
        return;
    }
    if (!services->history) {
        refuse(c, 503, "History is off on this server");
        return;
    }
    char *channels = url_param(req, "channels");
    char *token = url_param(req, "socket_id");
    char *since = url_param(req, "since");
    url_channels list;
    const char *why = url_channels_parse(channels, app, URL_CHANNELS_MAX, &list);
    long wait_s = number(req, "wait", 0, 0, POLL_WAIT_MAX_S);
    long limit = number(req, "limit", POLL_LIMIT_DEFAULT, 1, POLL_LIMIT_MAX);
    int status = 400;
    char user[USER_ID_MAX_LENGTH + 1];
    long user_len = 0;
    for (size_t i = 0; !why && i < list.count; i++)
        if (!history_rule(app, list.names[i], list.lens[i]))
            why = "channels: a channel whose events are not kept cannot be polled";
    if (!why && wait_s < 0)
        why = "wait: seconds, 0 to 60";
    if (!why && limit < 0)
        why = "limit: 1 to 1000";
    if (!why && list.needs_token && !url_token_expiry(token)) {
        why = "socket_id: private and presence channels need a token <unix expiry "
              "seconds>.<digits>, in the future and at most a day ahead";
        status = 401;
    }
    if (!why && list.needs_token && (why = authorize(req, app, token, &list)))
        status = 401;
    if (!why) {
        user_len = signed_in_user(req, app, url_token_expiry(token) ? token : NULL, user,
                                  sizeof(user), &why);
        if (user_len < 0)
            status = 401;
    }
    if (!why && (why = user_channels_refused(&list, user, user_len)))
        status = 401;
    if (!why && user_len <= 0)
        why = presence_without_member(req, &list);
    history_poll_channel asked[URL_CHANNELS_MAX];
    for (size_t i = 0; !why && i < list.count; i++)
        asked[i] = (history_poll_channel){.name = list.names[i], .len = list.lens[i]};
    for (const char *p = since; !why && p && *p;) { /* each id goes to its channel, by its tag */
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t i = 0;
        while (i < list.count && !history_id_belongs(p, n, app->id, list.names[i], list.lens[i]))
            i++;
        if (i == list.count)
            why = "since: each id must be an event id of one of the channels";
        else {
            asked[i].since = p;
            asked[i].since_len = n;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (!why) {
        history_poll_query q = {.channels = asked,
                                .num_channels = list.count,
                                .user = user_len > 0 ? user : NULL,
                                .user_len = (size_t)(user_len > 0 ? user_len : 0),
                                .wait_ms = (uint32_t)wait_s * 1000u,
                                .limit = (uint32_t)limit};
        waiting_poll *wp = xmalloc(sizeof(*wp));
        wp->w = conn_worker(c);
        char err[256];
        if (history_poll(services->history, services->hub, app - conn_config(c)->apps, &q,
                         on_polled, wp, err, sizeof(err))) {
            wp->token = conn_defer_reply(c);
        } else {
            free(wp);
            refuse(c, 400, err);
        }
    } else {
        refuse(c, status, why);
    }
    free(channels);
    free(token);
    free(since);
}
