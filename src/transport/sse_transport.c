#include "transport/sse_transport.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history/history.h"
#include "net/http_response.h"
#include "net/server.h"
#include "net/worker.h"
#include "protocol/channel_name.h"
#include "protocol/errors.h"
#include "session/session.h"
#include "transport/url_auth.h"
#include "util/http_query.h"
#include "util/xalloc.h"

#define SSE_WORKERS 1025
#define SSE_ID_MAX 64

static const char cors[] = "Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n";

/* A channel of the stream and where the client is in it. */
typedef struct sse_channel {
    uint64_t stream;       /* frame_stream of its name */
    char last[SSE_ID_MAX]; /* the newest id sent, "" = none */
} sse_channel;

typedef struct sse_session {
    session s; /* first: the hub's subscriber is this */
    struct sse_session *prev, *next;
    worker *w;
    uint64_t token;    /* the GET being answered (conn_defer_reply) */
    time_t expires_at; /* of the URL's token, 0 = none (public channels only) */
    uint64_t last_write_ms;
    bool closing, ended;
    char token_text[32]; /* the URL's token: what its authorizations sign */
    uint32_t num_channels;
    sse_channel channels[]; /* those of the URL, and the signed-in user's own */
} sse_session;

static sse_session *owned[SSE_WORKERS]; /* by worker id; each touched by its own thread */
static atomic_long open_streams;

long sse_transport_sessions(void)
{
    return atomic_load(&open_streams);
}

/* ---- the path ------------------------------------------------------------------ */

bool sse_transport_match(const hk_config *cfg, const http_request *req)
{
    const char *key;
    size_t len;
    return url_app_path(cfg, req, "/sse", &key, &len);
}

/* ---- output -------------------------------------------------------------------- */

static conn *stream_of(sse_session *ss)
{
    return ss->token ? conn_deferred(ss->w, ss->token) : NULL;
}

static void write_frame(sse_session *ss, conn *c, frame *f)
{
    if (c->out.bytes + f->len > ss->w->cfg->max_output_bytes && !ss->closing) {
        ss->closing = true; /* a slow consumer: nothing more, and it ends */
        session_close(&ss->s, PUSHER_OVER_CAPACITY, "Slow consumer: too much unsent data");
        return;
    }
    conn_send(c, f);
    ss->last_write_ms = conn_now(c);
}

static void write_text(sse_session *ss, conn *c, const char *text)
{
    frame *f = frame_raw(text, strlen(text));
    write_frame(ss, c, f);
    frame_unref(f);
}

/* The stream's position in every channel, as one id: "<id>,<id>,…" (the
 * newest id of each channel that has had one). */
static void write_position(sse_session *ss, conn *c)
{
    buf b; /* written straight into its frame: one allocation */
    frame_buf_init(&b);
    buf_append_str(&b, "id: ");
    bool first = true;
    for (uint32_t i = 0; i < ss->num_channels; i++) {
        if (!ss->channels[i].last[0])
            continue;
        if (!first)
            buf_append_char(&b, ',');
        first = false;
        buf_append_str(&b, ss->channels[i].last);
    }
    buf_append_str(&b, "\n\n");
    frame *f = frame_buf_take(&b);
    f->kind = FRAME_RAW;
    write_frame(ss, c, f);
    frame_unref(f);
}

/* The stream's position in the channel is id (until an event moves it). */
static void set_position(sse_session *ss, const char *channel, size_t len, const char *id)
{
    uint64_t stream = frame_stream(channel, len);
    for (uint32_t i = 0; i < ss->num_channels; i++)
        if (ss->channels[i].stream == stream)
            snprintf(ss->channels[i].last, sizeof(ss->channels[i].last), "%s", id);
}

/* Notes the id of a kept event in its channel's slot. */
static void note_position(sse_session *ss, const frame *f)
{
    static const char key[] = ",\"id\":\"";
    const char *s = (const char *)f->data;
    size_t kl = sizeof(key) - 1;
    if (f->seq == 0 || f->len < kl + 3)
        return;
    for (uint32_t i = 0; i < ss->num_channels; i++) {
        if (ss->channels[i].stream != f->stream)
            continue;
        for (size_t at = f->len - 2; at-- > kl;) {
            if (s[at] == '"' && memcmp(s + at - kl + 1, key, kl) == 0) {
                size_t len = f->len - 2 - (at + 1);
                if (len < SSE_ID_MAX) {
                    memcpy(ss->channels[i].last, s + at + 1, len);
                    ss->channels[i].last[len] = '\0';
                }
                return;
            }
        }
    }
}

/* The blank line that ends a record: one frame for every stream. */
static frame *blank_line(void)
{
    static _Atomic(frame *) blank;
    frame *f = atomic_load(&blank);
    if (f)
        return f;
    frame *made = frame_raw("\n", 1);
    frame *expected = NULL;
    if (atomic_compare_exchange_strong(&blank, &expected, made))
        return made; /* kept for the life of the process */
    frame_unref(made);
    return expected;
}

static void sse_send(session *s, frame *f)
{
    sse_session *ss = (sse_session *)s;
    conn *c = stream_of(ss);
    if (!c || ss->closing)
        return;
    frame *rec = frame_sse(f);
    write_frame(ss, c, rec);
    frame_unref(rec);
    if (ss->num_channels > 1 && f->seq) {
        /* several channels: the record's own id is overridden by the
         * stream's position in all of them (the last id field wins) */
        note_position(ss, f);
        write_position(ss, c);
    } else {
        write_frame(ss, c, blank_line());
    }
}

/* The session closes the stream: its pusher:error went out as a record;
 * the response ends and the session ends at the next sweep. */
static void sse_close(session *s, int code, const char *reason)
{
    sse_session *ss = (sse_session *)s;
    ss->closing = true;
    conn *c = stream_of(ss);
    if (c) {
        c->http_close = true;
        conn_reply_sent(c);
    }
    ss->token = 0;
}

static size_t sse_unsent(const session *s)
{
    const sse_session *ss = (const sse_session *)s;
    conn *c = ss->token ? conn_deferred(ss->w, ss->token) : NULL;
    return c ? c->out.bytes : 0;
}

/* Where the stream now is in a kept channel it subscribed to without an
 * id of it: from here every later event comes, so its reconnect resumes
 * from here (an id-only record moves EventSource's Last-Event-ID). */
static void sse_position(session *s, const char *channel, size_t len, const char *id)
{
    sse_session *ss = (sse_session *)s;
    set_position(ss, channel, len, id);
    conn *c = stream_of(ss);
    if (c && !ss->closing)
        write_position(ss, c);
}

static const session_transport sse_ops = {sse_send, sse_close, sse_unsent, sse_position};

/* ---- streams ------------------------------------------------------------------- */

static void free_stream(sse_session *ss)
{
    if (!ss->ended) {
        ss->ended = true;
        session_end(&ss->s);
    }
    conn *c = stream_of(ss);
    if (c) {
        c->http_close = true;
        conn_reply_sent(c);
    }
    sse_session **head = &owned[ss->w->id % SSE_WORKERS];
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        *head = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    atomic_fetch_sub(&ss->w->srv->sessions, 1);
    atomic_fetch_sub(&open_streams, 1);
    free(ss);
}

void sse_transport_sweep(worker *w, uint64_t now)
{
    time_t wall = time(NULL);
    sse_session *next;
    for (sse_session *ss = owned[w->id % SSE_WORKERS]; ss; ss = next) {
        next = ss->next;
        conn *c = stream_of(ss);
        if (!c) { /* the client went (or the stream was closed) */
            free_stream(ss);
            continue;
        }
        if (ss->expires_at && wall >= ss->expires_at && !ss->closing)
            session_close(&ss->s, PUSHER_UNAUTHORIZED,
                          "The stream's authorization expired: open it again with a new token");
        else if (!ss->closing && w->srv->draining)
            session_close(&ss->s, PUSHER_RECONNECT, "Server is shutting down");
        else if (now - ss->last_write_ms >= w->cfg->fallback_heartbeat_ms)
            write_text(ss, c, ": keep-alive\n\n");
        if (!ss->closing)
            session_tick(&ss->s, now);
    }
}

void sse_transport_worker_stop(worker *w)
{
    while (owned[w->id % SSE_WORKERS])
        free_stream(owned[w->id % SSE_WORKERS]);
}

/* ---- the request --------------------------------------------------------------- */

static void refuse(conn *c, int status, const char *why)
{
    char body[300];
    int n = snprintf(body, sizeof(body), "%s\n", why);
    http_respond(c, status, "text/plain", body, (size_t)n, cors);
}

/* The id of since (a list of ids, any order) that belongs to channel: its
 * tag names it. */
static bool since_for(const char *since, const hk_app *app, const char *name, size_t len, char *out,
                      size_t cap)
{
    for (const char *p = since; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n < cap && history_id_belongs(p, n, app->id, name, len)) {
            memcpy(out, p, n);
            out[n] = '\0';
            return true;
        }
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

static void subscribe(sse_session *ss, const http_request *req, const hk_app *app, const char *name,
                      size_t len, const char *since, uint64_t now)
{
    json_t *data = json_object();
    json_object_set_new(data, "channel", json_stringn(name, len));
    char value[4096];
    if (url_param_for(req, "auth", name, len, value, sizeof(value)))
        json_object_set_new(data, "auth", json_string(value));
    if (url_param_for(req, "channel_data", name, len, value, sizeof(value)))
        json_object_set_new(data, "channel_data", json_string(value));
    char id[SSE_ID_MAX];
    if (since_for(since, app, name, len, id, sizeof(id))) {
        json_object_set_new(data, "since", json_string(id));
        set_position(ss, name, len, id);
    } else if (since && *since && history_rule(app, name, len)) {
        /* ids were given, none of this kept channel: it cannot be resumed,
         * and the client hears so (hark:resumed recovered:false, with the
         * reason the first id gives) rather than a silent start from now */
        size_t n = strcspn(since, ",");
        json_object_set_new(data, "since", json_stringn(since, n < SSE_ID_MAX ? n : SSE_ID_MAX));
    }
    json_t *msg = json_pack("{s:s, s:o}", "event", "pusher:subscribe", "data", data);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    session_receive(&ss->s, text, strlen(text), now);
    free(text);
}

static void sign_in(sse_session *ss, const http_request *req, uint64_t now)
{
    char *user_data = url_param(req, "user_data"), *auth = url_param(req, "user_auth");
    if (user_data && auth) {
        json_t *msg = json_pack("{s:s, s:{s:s, s:s}}", "event", "pusher:signin", "data", "auth",
                                auth, "user_data", user_data);
        char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (text)
            session_receive(&ss->s, text, strlen(text), now);
        free(text);
    }
    free(user_data);
    free(auth);
}

void sse_transport_request(conn *c, const http_request *req)
{
    if (req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0) {
        static const char allow[] = "Access-Control-Allow-Origin: *\r\n"
                                    "Access-Control-Allow-Methods: GET, OPTIONS\r\n"
                                    "Access-Control-Allow-Headers: Last-Event-ID, Content-Type\r\n"
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
    url_app_path(conn_config(c), req, "/sse", &key, &key_len);
    const worker_services *services = conn_worker_data(c);
    const hk_app *app = NULL;
    char message[256];
    if (session_admit(services->hub, key, key_len, req->query, req->query_len, &app, message,
                      sizeof(message))) {
        refuse(c, 404, message);
        return;
    }
    char *channels = url_param(req, "channels");
    char *token = url_param(req, "socket_id");
    /* EventSource's own reconnect sends the URL again with Last-Event-ID:
     * the header is the newer position, so it wins over since= */
    const http_header *last = http_request_header(req, "last-event-id");
    char *since = last && last->value_len > 0 ? xmemdup(last->value, last->value_len)
                                              : url_param(req, "since");
    url_channels list;
    const char *why = url_channels_parse(channels, app, SSE_MAX_CHANNELS, &list);
    char *user_auth = url_param(req, "user_auth");
    bool needs_token = list.needs_token || user_auth;
    free(user_auth);
    time_t expires = 0;
    if (!why && needs_token && !(expires = url_token_expiry(token)))
        why = "socket_id: private, presence and signed-in streams need a token "
              "<unix expiry seconds>.<digits>, in the future and at most a day ahead, "
              "signed like a socket id";
    if (why) {
        refuse(c, why[0] == 's' && why[1] == 'o' ? 401 : 400, why);
        free(channels);
        free(token);
        free(since);
        return;
    }
    const char *const *names = list.names;
    const size_t *lens = list.lens;
    uint32_t count = (uint32_t)list.count;

    worker *w = conn_worker(c);
    /* room for the URL's channels and the user's own, nothing more */
    sse_session *ss = xcalloc(1, sizeof(*ss) + (count + 1) * sizeof(sse_channel));
    session_init(&ss->s, services, &sse_ops);
    ss->w = w;
    ss->expires_at = expires;
    if (token && expires) {
        snprintf(ss->token_text, sizeof(ss->token_text), "%s", token);
        ss->s.signed_id = ss->token_text;
    }
    ss->num_channels = count;
    for (uint32_t i = 0; i < count; i++)
        ss->channels[i].stream = frame_stream(names[i], lens[i]);
    sse_session **head = &owned[w->id % SSE_WORKERS];
    ss->next = *head;
    if (*head)
        (*head)->prev = ss;
    *head = ss;
    atomic_fetch_add(&w->srv->sessions, 1);
    atomic_fetch_add(&open_streams, 1);

    ss->token = conn_defer_reply(c);
    static const char head_text[] = "HTTP/1.1 200 OK\r\n"
                                    "Content-Type: text/event-stream\r\n"
                                    "Cache-Control: no-store\r\n"
                                    "Access-Control-Allow-Origin: *\r\n"
                                    "Connection: close\r\n\r\n"
                                    "retry: 2000\n\n";
    conn_send_raw(c, head_text, sizeof(head_text) - 1);
    uint64_t now = conn_now(c);
    ss->last_write_ms = now;
    server *srv = w->srv;
    if (srv->draining)
        session_close(&ss->s, PUSHER_RECONNECT, "Server is shutting down");
    else if (server_sessions(srv) > srv->max_connections)
        session_close(&ss->s, PUSHER_OVER_CAPACITY, "The server is over capacity");
    else if (session_start(&ss->s, app, now)) {
        sign_in(ss, req, now);
        for (uint32_t i = 0; i < count && !ss->closing; i++)
            subscribe(ss, req, app, names[i], lens[i], since, now);
        const hub_user *u = ss->s.sub.user;
        if (u && !ss->closing) { /* signed in: its own channel, as pusher-js's pusher.user does */
            char own[sizeof(CHANNEL_USER_PREFIX) + USER_ID_MAX_LENGTH];
            int n =
                snprintf(own, sizeof(own), "%s%.*s", CHANNEL_USER_PREFIX, (int)u->id_len, u->id);
            if (!hub_subscription(&ss->s.sub, own, (size_t)n)) {
                ss->channels[ss->num_channels++].stream = frame_stream(own, (size_t)n);
                subscribe(ss, req, app, own, (size_t)n, since, now);
            }
        }
    }
    free(channels);
    free(token);
    free(since);
}
