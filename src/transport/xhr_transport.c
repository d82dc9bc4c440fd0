#include "transport/xhr_transport.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history/history.h"
#include "net/http_response.h"
#include "net/server.h"
#include "net/worker.h"
#include "protocol/errors.h"
#include "session/session.h"
#include "util/json_write.h"
#include "util/log.h"
#include "util/strmap.h"
#include "util/xalloc.h"

#define XHR_PATH "/pusher/app/"
#define XHR_ROLLOVER_BYTES 262144 /* pusher-js re-opens a stream past this many characters */
#define XHR_PROBE_REPLY_MS 5000   /* a [] send is answered with h only this seldom */
#define XHR_KEY_MAX 96
#define XHR_MAX_WORKERS 1025

static const char cors[] = "Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n";
static const char content_type[] = "application/javascript; charset=UTF-8";

enum xhr_kind { XHR_STREAM, XHR_POLL, XHR_SEND };

typedef struct xhr_session {
    session s;                       /* first: the hub's subscriber is the session is this */
    struct xhr_session *prev, *next; /* the owner's sessions */
    struct xhr_session *next_ready;  /* the owner's list for the iteration's end */
    worker *w;                       /* the owner */
    hub *hub;
    uint64_t token; /* the attached receive request (conn_defer_reply), 0 = none */
    bool streaming; /* the attached request is a stream (else a poll) */
    bool opened;    /* "o" went out */
    bool rolled;    /* this stream passed XHR_ROLLOVER_BYTES: frames wait for the next */
    bool closing;   /* "c" is queued: the session ends */
    bool ended;     /* session_end was called */
    bool ready;     /* on the owner's ready list */
    size_t stream_bytes;
    uint64_t attached_ms, detached_ms, last_write_ms;
    frame **pending; /* frames waiting for a receive request */
    size_t num_pending, cap_pending, pending_bytes;
    size_t key_len;
    char key[XHR_KEY_MAX]; /* "<app key>/<server>/<session>" */
} xhr_session;

typedef struct xhr_worker {
    xhr_session *owned;
    xhr_session *ready;
} xhr_worker;

/* Which worker owns each session: looked up by any worker, under the lock;
 * a session is removed before it is freed, by its owner. */
static struct {
    pthread_mutex_t lock;
    strmap sessions;
    long count;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

static xhr_worker workers[XHR_MAX_WORKERS]; /* by worker id; each touched by its own thread */

static xhr_worker *state_of(const worker *w)
{
    return &workers[w->id % XHR_MAX_WORKERS];
}

long xhr_transport_sessions(void)
{
    pthread_mutex_lock(&registry.lock);
    long n = registry.count;
    pthread_mutex_unlock(&registry.lock);
    return n;
}

/* ---- paths --------------------------------------------------------------------- */

typedef struct xhr_target {
    enum xhr_kind kind;
    const char *app_key;
    size_t app_key_len;
    char key[XHR_KEY_MAX];
    size_t key_len;
} xhr_target;

static bool segment_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* {prefix}/pusher/app/{key}/{server}/{session}/{xhr_streaming|xhr|xhr_send} */
static bool parse_target(const hk_config *cfg, const http_request *req, xhr_target *t)
{
    size_t plen = strlen(cfg->path_prefix), xlen = strlen(XHR_PATH);
    const char *p = req->path, *end = req->path + req->path_len;
    if (req->path_len < plen + xlen || memcmp(p, cfg->path_prefix, plen) != 0 ||
        memcmp(p + plen, XHR_PATH, xlen) != 0)
        return false;
    p += plen + xlen;
    const char *seg[4];
    size_t len[4];
    for (int i = 0; i < 4; i++) {
        const char *slash = i < 3 ? memchr(p, '/', (size_t)(end - p)) : end;
        if (!slash)
            return false;
        seg[i] = p;
        len[i] = (size_t)(slash - p);
        p = slash + (i < 3);
    }
    if (memchr(seg[3], '/', len[3]) || !segment_ok(seg[0], len[0], 64) ||
        !segment_ok(seg[1], len[1], 10) || !segment_ok(seg[2], len[2], 16))
        return false;
    if (len[3] == 13 && memcmp(seg[3], "xhr_streaming", 13) == 0)
        t->kind = XHR_STREAM;
    else if (len[3] == 3 && memcmp(seg[3], "xhr", 3) == 0)
        t->kind = XHR_POLL;
    else if (len[3] == 8 && memcmp(seg[3], "xhr_send", 8) == 0)
        t->kind = XHR_SEND;
    else
        return false;
    t->app_key_len = len[0];
    int n = snprintf(t->key, sizeof(t->key), "%.*s/%.*s/%.*s", (int)len[0], seg[0], (int)len[1],
                     seg[1], (int)len[2], seg[2]);
    t->key_len = (size_t)n;
    t->app_key = t->key; /* the key starts with it */
    return true;
}

bool xhr_transport_match(const hk_config *cfg, const http_request *req)
{
    xhr_target t;
    return parse_target(cfg, req, &t);
}

/* ---- output -------------------------------------------------------------------- */

static conn *receiver(xhr_session *xs)
{
    return xs->token ? conn_deferred(xs->w, xs->token) : NULL;
}

static void ready(xhr_session *xs)
{
    if (xs->ready)
        return;
    xhr_worker *st = state_of(xs->w);
    xs->ready = true;
    xs->next_ready = st->ready;
    st->ready = xs;
}

static void pend(xhr_session *xs, frame *f)
{
    if (xs->num_pending == xs->cap_pending) {
        xs->cap_pending = xs->cap_pending ? xs->cap_pending * 2 : 8;
        xs->pending = xrealloc(xs->pending, xs->cap_pending * sizeof(frame *));
    }
    xs->pending[xs->num_pending++] = frame_ref(f);
    xs->pending_bytes += f->len;
}

static void drop_pending(xhr_session *xs)
{
    for (size_t i = 0; i < xs->num_pending; i++)
        frame_unref(xs->pending[i]);
    xs->num_pending = 0;
    xs->pending_bytes = 0;
}

/* Ends the attached receive request: its response is complete (a stream
 * is closed, since its length was never said). */
static void detach(xhr_session *xs, uint64_t now)
{
    conn *c = receiver(xs);
    if (c) {
        if (xs->streaming)
            c->http_close = true;
        conn_reply_sent(c);
    }
    xs->token = 0;
    xs->rolled = false;
    xs->detached_ms = now;
}

static void slow_consumer(xhr_session *xs)
{
    drop_pending(xs);
    session_close(&xs->s, PUSHER_OVER_CAPACITY, "Slow consumer: too much unsent data");
}

/* A raw frame for the client: written to the stream while it is under the
 * roll-over size, else kept for the next receive request. */
static void put(xhr_session *xs, frame *f)
{
    conn *c = receiver(xs);
    size_t bound = xs->w->cfg->max_output_bytes;
    if (c && xs->streaming && !xs->rolled) {
        if (c->out.bytes + f->len > bound && !xs->closing) {
            slow_consumer(xs);
            return;
        }
        conn_send(c, f);
        xs->stream_bytes += f->len;
        xs->last_write_ms = conn_now(c);
        if (xs->stream_bytes > XHR_ROLLOVER_BYTES)
            xs->rolled = true;
        return;
    }
    if (xs->pending_bytes + f->len > bound && !xs->closing) {
        slow_consumer(xs);
        return;
    }
    pend(xs, f);
    if (c && !xs->streaming)
        ready(xs); /* the poll is answered at the iteration's end */
}

static void put_text(xhr_session *xs, const char *text)
{
    frame *f = frame_raw(text, strlen(text));
    put(xs, f);
    frame_unref(f);
}

static xhr_session *of(session *s)
{
    return (xhr_session *)s;
}

static void xhr_send(session *s, frame *f)
{
    xhr_session *xs = of(s);
    if (xs->closing)
        return;
    frame *x = frame_xhr(f);
    put(xs, x);
    frame_unref(x);
}

static void xhr_close(session *s, int code, const char *reason)
{
    xhr_session *xs = of(s);
    if (xs->closing)
        return;
    buf b;
    buf_init(&b);
    buf_printf(&b, "c[%d,", code);
    json_write_string_ascii(&b, reason, strlen(reason));
    buf_append_str(&b, "]\n");
    frame *f = frame_raw(b.data, b.len);
    xs->closing = true; /* past the bounds: the c is the last frame */
    put(xs, f);
    frame_unref(f);
    buf_free(&b);
    ready(xs); /* ended at the iteration's end, outside the session's own call */
}

static size_t xhr_unsent(const session *s)
{
    const xhr_session *xs = (const xhr_session *)s;
    conn *c = xs->token ? conn_deferred(xs->w, xs->token) : NULL;
    return xs->pending_bytes + (c ? c->out.bytes : 0);
}

static const session_transport xhr_ops = {xhr_send, xhr_close, xhr_unsent, NULL};

/* ---- sessions ------------------------------------------------------------------ */

static void end_session_once(xhr_session *xs)
{
    if (!xs->ended) {
        xs->ended = true;
        session_end(&xs->s);
    }
}

static void free_session(xhr_session *xs, uint64_t now)
{
    pthread_mutex_lock(&registry.lock);
    strmap_remove(&registry.sessions, xs->key, xs->key_len);
    registry.count--;
    pthread_mutex_unlock(&registry.lock);
    end_session_once(xs);
    if (xs->token)
        detach(xs, now);
    xhr_worker *st = state_of(xs->w);
    for (xhr_session **r = &st->ready; xs->ready && *r; r = &(*r)->next_ready) {
        if (*r == xs) { /* not answered yet: it goes now */
            *r = xs->next_ready;
            break;
        }
    }
    if (xs->prev)
        xs->prev->next = xs->next;
    else
        st->owned = xs->next;
    if (xs->next)
        xs->next->prev = xs->prev;
    drop_pending(xs);
    free(xs->pending);
    atomic_fetch_sub(&xs->w->srv->sessions, 1);
    free(xs);
}

/* A new session on c's worker, registered (the caller holds the lock). */
static xhr_session *open_session(conn *c, const xhr_target *t)
{
    worker *w = conn_worker(c);
    const worker_services *services = conn_worker_data(c);
    xhr_session *xs = xcalloc(1, sizeof(*xs));
    session_init(&xs->s, services, &xhr_ops);
    xs->w = w;
    xs->hub = services->hub;
    memcpy(xs->key, t->key, t->key_len + 1);
    xs->key_len = t->key_len;
    xs->detached_ms = conn_now(c);
    xhr_worker *st = state_of(w);
    xs->next = st->owned;
    if (st->owned)
        st->owned->prev = xs;
    st->owned = xs;
    strmap_put(&registry.sessions, xs->key, xs->key_len, xs);
    registry.count++;
    atomic_fetch_add(&w->srv->sessions, 1);
    return xs;
}

/* Admits and starts a session just opened (o, then connection_established
 * or the close that says why not). */
static void start_session(xhr_session *xs, conn *c, const xhr_target *t, const char *query,
                          size_t query_len)
{
    const hk_app *app = NULL;
    char message[256];
    put_text(xs, "o\n");
    xs->opened = true;
    int code = session_admit(xs->hub, t->app_key, t->app_key_len, query, query_len, &app, message,
                             sizeof(message));
    server *srv = xs->w->srv;
    if (!code && srv->draining) {
        code = PUSHER_RECONNECT;
        snprintf(message, sizeof(message), "Server is shutting down");
    } else if (!code && server_sessions(srv) > srv->max_connections) {
        code = PUSHER_OVER_CAPACITY;
        snprintf(message, sizeof(message), "The server is over capacity");
    }
    if (code)
        session_close(&xs->s, code, message);
    else
        session_start(&xs->s, app, conn_now(c));
}

/* A receive request (stream or poll) of xs, on its owner: replaces the one
 * attached before (never two at once), then gets what is waiting. */
static void attach(xhr_session *xs, conn *c, bool streaming)
{
    uint64_t now = conn_now(c);
    if (xs->token) {
        conn *old = receiver(xs);
        if (old && !xs->streaming) /* a poll replaced: it ends with a heartbeat */
            http_respond(old, 200, content_type, "h\n", 2, cors);
        detach(xs, now);
    }
    xs->token = conn_defer_reply(c);
    xs->streaming = streaming;
    xs->attached_ms = now;
    xs->stream_bytes = 0;
    xs->rolled = false;
    if (streaming) {
        static const char head[] = "HTTP/1.1 200 OK\r\n"
                                   "Content-Type: application/javascript; charset=UTF-8\r\n"
                                   "Access-Control-Allow-Origin: *\r\n"
                                   "Cache-Control: no-store\r\n"
                                   "Connection: close\r\n\r\n";
        conn_send_raw(c, head, sizeof(head) - 1);
        xs->last_write_ms = now;
        size_t n = xs->num_pending;
        frame **waiting = xs->pending;
        xs->pending = NULL;
        xs->num_pending = xs->cap_pending = xs->pending_bytes = 0;
        for (size_t i = 0; i < n; i++) {
            put(xs, waiting[i]);
            frame_unref(waiting[i]);
        }
        free(waiting);
        if (xs->closing)
            ready(xs);
    } else if (xs->num_pending > 0 || xs->closing) {
        ready(xs);
    }
}

/* Answers the attached poll with everything waiting. */
static void answer_poll(xhr_session *xs, uint64_t now)
{
    conn *c = receiver(xs);
    if (!c || xs->streaming)
        return;
    buf body;
    buf_init(&body);
    for (size_t i = 0; i < xs->num_pending; i++)
        buf_append(&body, xs->pending[i]->data, xs->pending[i]->len);
    drop_pending(xs);
    if (body.len == 0)
        buf_append_str(&body, "h\n");
    http_respond(c, 200, content_type, body.data, body.len, cors);
    buf_free(&body);
    detach(xs, now);
}

void xhr_transport_iteration_end(worker *w)
{
    xhr_worker *st = state_of(w);
    uint64_t now = uv_now(&w->loop);
    while (st->ready) {
        xhr_session *xs = st->ready;
        st->ready = xs->next_ready;
        xs->ready = false;
        xs->next_ready = NULL;
        if (xs->num_pending > 0)
            answer_poll(xs, now);
        if (xs->closing) {
            end_session_once(xs); /* unsubscribed now, as a dropped WebSocket is */
            if (xs->num_pending == 0 && receiver(xs))
                detach(xs, now); /* the c went out: the stream ends */
        }
    }
}

void xhr_transport_sweep(worker *w, uint64_t now)
{
    xhr_session *next;
    for (xhr_session *xs = state_of(w)->owned; xs; xs = next) {
        next = xs->next;
        conn *c = receiver(xs);
        if (xs->token && !c) { /* the client dropped the request */
            xs->token = 0;
            xs->detached_ms = now;
        }
        if (!xs->token && now - xs->detached_ms >= w->cfg->fallback_session_timeout_ms) {
            free_session(xs, now); /* as a dropped WebSocket: presence, webhooks */
            continue;
        }
        if (c && xs->streaming && now - xs->last_write_ms >= w->cfg->fallback_heartbeat_ms)
            put_text(xs, "h\n");
        else if (c && !xs->streaming && now - xs->attached_ms >= w->cfg->fallback_poll_timeout_ms)
            answer_poll(xs, now);
        if (!xs->closing && w->srv->draining)
            session_close(&xs->s, PUSHER_RECONNECT, "Server is shutting down");
        if (!xs->ended)
            session_tick(&xs->s, now);
    }
}

void xhr_transport_worker_stop(worker *w)
{
    while (state_of(w)->owned)
        free_session(state_of(w)->owned, uv_now(&w->loop));
    state_of(w)->ready = NULL;
}

/* ---- requests ------------------------------------------------------------------ */

/* xhr_send: a JSON array of messages, each handled as a WebSocket text
 * message would be. An empty one is pusher-js's ping: answered with an h
 * unless one went out lately. */
static int receive_messages(xhr_session *xs, const char *body, size_t len, uint64_t now)
{
    json_error_t err;
    json_t *list = json_loadb(body, len, 0, &err);
    if (!json_is_array(list)) {
        json_decref(list);
        return 400;
    }
    if (json_array_size(list) == 0 && xs->token && now - xs->last_write_ms >= XHR_PROBE_REPLY_MS) {
        xs->last_write_ms = now;
        put_text(xs, "h\n");
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (xs->closing)
            break;
        if (!json_is_string(v))
            continue;
        char *text = xmemdup(json_string_value(v), json_string_length(v));
        session_receive(&xs->s, text, json_string_length(v), now);
        free(text);
    }
    json_decref(list);
    return 204;
}

static void respond_send(conn *c, int status)
{
    if (status == 204)
        http_respond(c, 204, "text/plain", "", 0, cors);
    else if (status == 404)
        http_respond(c, 404, "text/plain", "Unknown session\n", 16, cors);
    else
        http_respond(c, 400, "text/plain", "Expected a JSON array of strings\n", 33, cors);
}

/* A request, on the worker that owns (or will own) its session. */
typedef struct moved_request {
    conn_handoff handoff;
    worker *to;
    xhr_target target;
    char *query, *body;
    size_t query_len, body_len;
} moved_request;

static void handle(conn *c, const xhr_target *t, const char *query, size_t query_len,
                   const char *body, size_t body_len);

static void adopt_call(hub *h, void *arg)
{
    moved_request *m = arg;
    conn *c = h ? conn_adopt(m->to, &m->handoff) : NULL;
    if (!h && m->handoff.fd >= 0)
        close(m->handoff.fd);
    if (c) {
        handle(c, &m->target, m->query, m->query_len, m->body, m->body_len);
        conn_adopt_input(c, &m->handoff); /* requests pipelined behind it */
    } else {
        free(m->handoff.input);
    }
    free(m->query);
    free(m->body);
    free(m);
}

/* Moves the request with its connection to the session's owner. */
static void move_to(conn *c, xhr_session *owner_of, const xhr_target *t, const char *query,
                    size_t query_len, const char *body, size_t body_len)
{
    moved_request *m = xcalloc(1, sizeof(*m));
    m->to = owner_of->w;
    m->target = *t;
    m->query = query_len ? xmemdup(query, query_len) : NULL;
    m->query_len = query_len;
    m->body = body_len ? xmemdup(body, body_len) : NULL;
    m->body_len = body_len;
    hub *to = owner_of->hub;
    pthread_mutex_unlock(&registry.lock);
    m->target.app_key = m->target.key;
    if (!conn_release(c, &m->handoff)) {
        free(m->query);
        free(m->body);
        free(m);
        http_respond(c, 503, "text/plain", "Try again\n", 10, cors);
        return;
    }
    hub_post(to, adopt_call, m);
}

static void handle(conn *c, const xhr_target *t, const char *query, size_t query_len,
                   const char *body, size_t body_len)
{
    worker *w = conn_worker(c);
    pthread_mutex_lock(&registry.lock);
    xhr_session *xs = strmap_get(&registry.sessions, t->key, t->key_len);
    if (xs && xs->w != w) {
        move_to(c, xs, t, query, query_len, body, body_len); /* unlocks */
        return;
    }
    if (!xs && t->kind != XHR_SEND)
        xs = open_session(c, t);
    pthread_mutex_unlock(&registry.lock);
    uint64_t now = conn_now(c);
    if (t->kind == XHR_SEND) {
        respond_send(c, xs ? receive_messages(xs, body, body_len, now) : 404);
        return;
    }
    bool fresh = !xs->opened;
    attach(xs, c, t->kind == XHR_STREAM);
    if (fresh)
        start_session(xs, c, t, query, query_len);
}

void xhr_transport_request(conn *c, const http_request *req, const char *body, size_t len)
{
    xhr_target t;
    if (!parse_target(conn_config(c), req, &t)) {
        http_respond(c, 404, "text/plain", "Not found\n", 10, cors);
        return;
    }
    if (req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0) {
        static const char allow[] = "Access-Control-Allow-Origin: *\r\n"
                                    "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
                                    "Access-Control-Allow-Headers: Content-Type\r\n"
                                    "Access-Control-Max-Age: 86400\r\n";
        http_respond(c, 204, "text/plain", "", 0, allow);
        return;
    }
    if (req->method_len != 4 || memcmp(req->method, "POST", 4) != 0) {
        http_respond(c, 405, "text/plain", "Use POST\n", 9, cors);
        return;
    }
    handle(c, &t, req->query, req->query_len, body, len);
}
