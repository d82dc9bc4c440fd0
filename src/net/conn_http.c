/* conn_http — a connection's HTTP side: parsing requests out of its input
 * with their deadlines and bounds, the early check before a body, the
 * WebSocket upgrade (with the per-address count behind trusted proxies and
 * the reserve descriptor's answer), and handing requests up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <strings.h>

#include "net/conn_internal.h"
#include "net/ip_limit.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_handshake.h"
#include "util/cidr.h"
#include "util/json_write.h"
#include "util/xalloc.h"

/* ---- HTTP input ------------------------------------------------------------------- */

void conn_http_fail(conn *c, int status, const char *message)
{
    c->http_close = true;
    /* readable by a browser page too (an HTTP fallback's request refused here) */
    char body[600];
    buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"error\":");
    json_write_string(&b, message, strlen(message));
    int n = snprintf(body, sizeof(body), ",\"code\":%d}", status);
    buf_append(&b, body, (size_t)n);
    http_respond(c, status, "application/json", b.data, b.len,
                 "Access-Control-Allow-Origin: *\r\n");
    buf_free(&b);
    conn_close_after_flush(c);
}

/* The client address behind a trusted proxy: the right-most address of
 * X-Forwarded-For that is not itself a trusted proxy. Several header lines
 * form one list in order (a proxy may add its own line after the client's
 * forged one), so the last line is read first. */
static bool forwarded_client(const conn *c, const http_request *req, struct sockaddr_storage *out)
{
    for (size_t i = req->num_headers; i-- > 0;) {
        const http_header *h = &req->headers[i];
        if (h->name_len != 15 || strncasecmp(h->name, "x-forwarded-for", 15) != 0)
            continue;
        int r = cidr_forwarded_client(&c->w->srv->trusted, h->value, h->value_len, out);
        if (r != 0)
            return r > 0;
    }
    return false;
}

/* max_connections_per_ip for a WebSocket behind a trusted proxy, counted
 * by the forwarded address. Returns false when it refused the request. */
static bool count_forwarded(conn *c, const http_request *req)
{
    server *srv = c->w->srv;
    struct sockaddr_storage client;
    if (!srv->per_ip || !c->peer_trusted || c->ip || !forwarded_client(c, req, &client))
        return true;
    c->ip = ip_limit_acquire(srv->per_ip, (struct sockaddr *)&client);
    if (c->ip)
        return true;
    stat_add(&c->w->stats.ip_refused, 1);
    conn_http_fail(c, 429, "Too many connections from your address");
    return false;
}

static bool is_upgrade(const http_request *req)
{
    return req->upgrade_websocket || http_request_header(req, "sec-websocket-key");
}

/* Completes a WebSocket handshake; false when it was refused. */
static bool upgrade(conn *c, const http_request *req)
{
    char accept[WS_ACCEPT_LEN + 1];
    int status = ws_handshake_check(req, accept);
    if (status != 0) {
        c->http_close = true;
        http_respond(c, status, "text/plain", "Invalid WebSocket handshake\n", 28,
                     status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
        conn_close_after_flush(c);
        return false;
    }
    if (!count_forwarded(c, req))
        return false;
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    conn_send_raw(c, head, (size_t)n);
    c->state = CONN_WS;
    c->counted_session = true;
    atomic_fetch_add(&c->w->srv->sessions, 1);
    return true;
}

/* A client let in on the reserve descriptor: answered as soon as its head
 * is read (no body is waited for), then closed. */
static void refuse_over_capacity(conn *c, const http_request *req)
{
    static const char why[] = "Over capacity: the server is out of connections";
    stat_add(&c->w->stats.full_refused, 1);
    if (is_upgrade(req)) {
        if (upgrade(c, req)) /* a Pusher answer instead of a reset */
            conn_close_session(c, 4100, why);
    } else {
        conn_http_fail(c, 503, why);
    }
}

static void handle_request(conn *c, const http_request *req, const char *body, size_t body_len)
{
    stat_add(&c->w->stats.http_requests, 1);
    if (is_upgrade(req)) {
        if (upgrade(c, req)) {
            c->session_open = true;
            handlers(c)->on_open(c, req);
        }
        return;
    }
    c->http_close = !req->keep_alive || c->w->draining;
    handlers(c)->on_request(c, req, body, body_len);
    if (c->http_close && !c->reply_token)
        conn_close_after_flush(c);
}

/* A request whose body is still on its way: refuse it now if it can never
 * be accepted (unknown app, bad signature, stale timestamp), rather than
 * hold up to max_request_bytes for it. */
static bool body_worth_waiting_for(conn *c, const http_request *req)
{
    if (c->body_checked)
        return true;
    c->body_checked = true;
    char message[512];
    int status = handlers(c)->check_head(c, req, message, sizeof(message));
    if (status == 0)
        return true;
    stat_add(&c->w->stats.early_rejected, 1);
    conn_http_fail(c, status, message);
    return false;
}

void conn_feed_http(conn *c, char *data, size_t len)
{
    const hk_config *cfg = c->w->cfg;
    if (c->reply_token && len) {
        /* More arrived while an answer is deferred: keep it, and stop
         * reading until the answer is out (conn_reply_sent reads again).
         * Pausing only now spares the usual client, which waits for its
         * answer, two epoll changes per request. */
        c->input_paused = true;
        conn_update_poll(c, (c->poll_events & EPOLLOUT) != 0);
    }
    char *p = data;
    size_t avail = len;
    if (c->http_in) {
        if (len)
            buf_append(c->http_in, data, len);
        p = c->http_in->data;
        avail = c->http_in->len;
    }
    while (avail > 0 && c->state == CONN_HTTP && !c->reply_token) {
        if (c->out.bytes >= cfg->max_output_bytes) {
            /* Answers are not being read: stop reading requests (the kernel
             * holds the rest) until the output drains. */
            c->input_paused = true;
            conn_update_poll(c, true);
            break;
        }
        http_request req;
        int r = http_request_parse(p, avail, &req);
        if (r == HTTP_PARSE_INCOMPLETE) {
            if (c->http_phase != HTTP_HEAD) {
                c->http_phase = HTTP_HEAD;
                c->deadline_ms = now_ms(c) + cfg->http_header_timeout_ms;
            }
            break;
        }
        if (r < 0) {
            if (r == HTTP_PARSE_TOO_LARGE)
                conn_http_fail(c, 431, "Request header fields too large");
            else if (r == HTTP_PARSE_BAD_VERSION)
                conn_http_fail(c, 505, "HTTP version not supported");
            else
                conn_http_fail(c, 400, "Malformed HTTP request");
            break;
        }
        if (c->refuse_full) {
            refuse_over_capacity(c, &req);
            break;
        }
        if (req.chunked) {
            conn_http_fail(c, 411, "Chunked request bodies are not supported; send Content-Length");
            break;
        }
        if (req.content_length > cfg->max_request_bytes) {
            conn_http_fail(c, 413, "Request body too large");
            break;
        }
        size_t total = (size_t)r + (size_t)req.content_length;
        if (avail < total) {
            if (c->http_phase != HTTP_BODY) {
                c->http_phase = HTTP_BODY;
                c->deadline_ms = now_ms(c) + cfg->http_body_timeout_ms;
            }
            body_worth_waiting_for(c, &req);
            break;
        }
        c->body_checked = false;
        /* what follows the request, should it move to another worker */
        c->w->rest_of_input = p + total;
        c->w->rest_of_input_len = avail - total;
        handle_request(c, &req, p + r, (size_t)req.content_length);
        c->w->rest_of_input = NULL;
        c->w->rest_of_input_len = 0;
        p += total;
        avail -= total;
        if (c->reply_token) /* answered later: what follows waits (see below) */
            break;
        c->http_phase = HTTP_IDLE;
        c->deadline_ms = now_ms(c) + cfg->http_idle_timeout_ms;
        if (c->state == CONN_WS) {
            if (avail > 0) /* the client sent frames right behind its handshake */
                conn_feed_ws(c, p, avail);
            avail = 0;
        }
    }
    if (c->state != CONN_HTTP)
        avail = 0;
    if (avail == 0) {
        if (c->http_in) {
            buf_free(c->http_in);
            free(c->http_in);
            c->http_in = NULL;
        }
    } else if (c->http_in) {
        memmove(c->http_in->data, p, avail);
        c->http_in->len = avail;
    } else {
        c->http_in = xmalloc(sizeof(*c->http_in));
        buf_init(c->http_in);
        buf_append(c->http_in, p, avail);
    }
}

uint64_t conn_defer_reply(conn *c)
{
    worker *w = c->w;
    c->reply_token = ++w->next_token;
    c->http_phase = HTTP_WAIT;
    strmap_put(&w->deferred, (const char *)&c->reply_token, sizeof(c->reply_token), c);
    return c->reply_token;
}

conn *conn_deferred(worker *w, uint64_t token)
{
    return strmap_get(&w->deferred, (const char *)&token, sizeof(token));
}

void conn_reply_sent(conn *c)
{
    if (!c->reply_token)
        return;
    strmap_remove(&c->w->deferred, (const char *)&c->reply_token, sizeof(c->reply_token));
    c->reply_token = 0;
    c->http_phase = HTTP_IDLE;
    c->deadline_ms = now_ms(c) + c->w->cfg->http_idle_timeout_ms;
    if (c->http_close) {
        conn_close_after_flush(c);
        return;
    }
    if (c->out.bytes < c->w->cfg->max_output_bytes / 2)
        conn_resume_input(c); /* and the requests that arrived meanwhile */
}
