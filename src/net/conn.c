#include "net/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/ip_limit.h"
#include "util/utf8.h"
#include "net/conn_internal.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_frame.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/xalloc.h"

#define CLOSE_LINGER_MS 2000     /* how long a closing connection may take to drain */
#define CONN_SNDBUF (128 * 1024) /* the kernel doubles it */
#define RESERVE_HEAD_MS 1000     /* the reserve descriptor is not held longer for a head */

uint64_t conn_now(const conn *c)
{
    return now_ms(c);
}

const hk_config *conn_config(const conn *c)
{
    return c->w->cfg;
}

void *conn_worker_data(const conn *c)
{
    return c->w->data;
}

/* Ends the session once, if one was opened. */
static void end_session(conn *c)
{
    if (c->session_open) {
        c->session_open = false;
        handlers(c)->on_end(c);
    }
}

/* ---- output queue ------------------------------------------------------------ */

/* The framing a frame gets on the wire: a message is sent as one WebSocket
 * text frame (its header is written at flush time, so the shared frame
 * holds only the message); raw frames get none. */
static size_t head_len(const frame *f)
{
    return f->kind == FRAME_MESSAGE ? ws_frame_header_len(f->len) : 0;
}

static size_t wire_len(const frame *f)
{
    return head_len(f) + f->len;
}

static void outq_push(conn *c, frame *f)
{
    outq *q = &c->out;
    if (q->count == 0)
        c->out_progress_ms = now_ms(c); /* the write timeout counts from here */
    if (q->cap == 0) {
        q->items = q->inline_items;
        q->cap = OUTQ_INLINE;
        q->head = 0;
    } else if (q->count == q->cap) {
        uint32_t new_cap = q->cap * 2;
        frame **items = xmalloc(new_cap * sizeof(*items));
        for (uint32_t i = 0; i < q->count; i++)
            items[i] = q->items[(q->head + i) & (q->cap - 1)];
        if (q->items != q->inline_items)
            free(q->items);
        q->items = items;
        q->cap = new_cap;
        q->head = 0;
    }
    q->items[(q->head + q->count) & (q->cap - 1)] = frame_ref(f);
    q->count++;
    q->bytes += wire_len(f);
    worker_mark_dirty(c->w, c);
}

static void outq_pop(outq *q)
{
    frame_unref(q->items[q->head]);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->head_off = 0;
}

/* Drops queued frames but the one partly written (cutting it would corrupt
 * the stream). */
static void outq_drop_unsent(outq *q)
{
    uint32_t keep = q->head_off > 0 ? 1 : 0;
    while (q->count > keep) {
        uint32_t last = (q->head + q->count - 1) & (q->cap - 1);
        q->bytes -= wire_len(q->items[last]);
        frame_unref(q->items[last]);
        q->count--;
    }
}

static void outq_free(outq *q)
{
    while (q->count > 0)
        outq_pop(q);
    if (q->items != q->inline_items)
        free(q->items);
    memset(q, 0, sizeof(*q));
}

void conn_send(conn *c, frame *f)
{
    if (c->state != CONN_WS && c->state != CONN_HTTP)
        return;
    if (c->state == CONN_WS && c->out.bytes + wire_len(f) > c->w->cfg->max_output_bytes) {
        stat_add(&c->w->stats.slow_consumers_closed, 1);
        log_debug("closing slow consumer (fd %d): %zu bytes unsent", c->fd, c->out.bytes);
        outq_drop_unsent(&c->out);
        conn_close_session(c, 4100, "Slow consumer: too much unsent data");
        return;
    }
    outq_push(c, f);
}

void conn_send_text(conn *c, const char *payload, size_t len)
{
    frame *f = frame_message(payload, len);
    conn_send(c, f);
    frame_unref(f);
}

void conn_send_raw(conn *c, const void *bytes, size_t len)
{
    frame *f = frame_raw(bytes, len);
    conn_send(c, f);
    frame_unref(f);
}

/* ---- incomplete input ---------------------------------------------------------- */

/* Brings the worker's total of incomplete input up to date with what c holds. */
static void account_input(conn *c)
{
    size_t held = 0;
    if (c->http_in)
        held += c->http_in->cap;
    if (c->reader)
        held += (size_t)c->reader->pending_cap + c->reader->message_cap;
    worker *w = c->w;
    /* single writer (this worker): readers on other threads only sum it */
    atomic_store_explicit(&w->pending_input, worker_pending_input(w) - c->held_input + held,
                          memory_order_relaxed);
    if (held && !c->held_input)
        c->input_since_ms = now_ms(c);
    else if (!held)
        c->input_since_ms = 0;
    c->held_input = held;
}

/* Frees incomplete input (never while a feed is using it). */
void conn_drop_input(conn *c)
{
    if (c->reader) {
        ws_reader_free(c->reader);
        free(c->reader);
        c->reader = NULL;
    }
    if (c->http_in) {
        buf_free(c->http_in);
        free(c->http_in);
        c->http_in = NULL;
    }
    account_input(c);
}

/* ---- polling ------------------------------------------------------------------ */

void conn_update_poll(conn *c, bool want_out)
{
    uint8_t want = (uint8_t)((c->input_paused ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0));
    if (c->poll_events == want)
        return;
    c->poll_events = want;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void enter_closing(conn *c)
{
    c->state = CONN_CLOSING;
    c->deadline_ms = now_ms(c) + CLOSE_LINGER_MS;
    if (c->input_paused) { /* read again, to see the peer's EOF */
        c->input_paused = false;
        conn_update_poll(c, c->out.count > 0);
    }
    worker_mark_dirty(c->w, c); /* the flush half-closes once the queue is empty */
}

void conn_close_ws(conn *c, int code, const char *reason)
{
    if (c->state != CONN_WS)
        return;
    char clean[126]; /* a close frame's reason: at most 123 bytes, valid UTF-8 */
    utf8_sanitize(clean, sizeof(clean), reason ? reason : "", reason ? strlen(reason) : 0);
    uint8_t close_frame[WS_SERVER_HEADER_MAX + 125];
    size_t n = ws_frame_encode_close(close_frame, (uint16_t)code, clean);
    frame *f = frame_raw(close_frame, n);
    outq_push(c, f);
    frame_unref(f);
    enter_closing(c);
}

void conn_close_session(conn *c, int code, const char *reason)
{
    if (c->state == CONN_WS && handlers(c)->on_close)
        handlers(c)->on_close(c, code, reason);
    conn_close_ws(c, code, reason);
}

void conn_close_after_flush(conn *c)
{
    if (c->state == CONN_HTTP)
        enter_closing(c);
}

/* ---- teardown -------------------------------------------------------------- */

void conn_destroy(conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    worker *w = c->w;
    c->state = CONN_DEAD;
    end_session(c);
    conn_drop_input(c);
    outq_free(&c->out);
    if (c->ip) {
        ip_limit_release(w->srv->per_ip, c->ip);
        c->ip = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->num_conns--;
    atomic_fetch_sub(&w->srv->connections, 1);
    if (c->counted_session)
        atomic_fetch_sub(&w->srv->sessions, 1);
    if (c->fd >= 0) { /* -1: handed to another worker (conn_release) */
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (w->reserve_conn == c)
        worker_reserve_returned(w);
    /* Freed after this iteration's flush pass: the dirty list or the epoll
     * batch being dispatched may still point at it. */
    if (c->reply_token) {
        strmap_remove(&w->deferred, (const char *)&c->reply_token, sizeof(c->reply_token));
        c->reply_token = 0;
    }
    worker_bury(w, c);
}

/* ---- writing ---------------------------------------------------------------- */

/* Output drained below half its bound: read (and answer) requests again. */
void conn_resume_input(conn *c)
{
    if (c->reply_token)
        return; /* a deferred answer is awaited: conn_reply_sent resumes */
    c->input_paused = false;
    /* EPOLLOUT stays as it is: output queued since the last write is the
     * flush's (the connection is dirty), not the poll's */
    conn_update_poll(c, (c->poll_events & EPOLLOUT) != 0);
    if (c->http_in) {
        if (c->w->flushing)
            c->w->fed_in_flush = true;
        conn_feed_http(c, NULL, 0); /* requests already read and held */
    }
    account_input(c);
}

void conn_flush(conn *c)
{
    outq *q = &c->out;
    if (c->state == CONN_CLOSING)
        /* Leaving: stop counting it and end its subscriptions now, not when
         * the peer gets round to closing (ending it here, outside any hub
         * iteration, is why close is asynchronous). */
        end_session(c);
    while (q->count > 0) {
        struct iovec iov[64];
        uint8_t heads[32][WS_SERVER_HEADER_MAX];
        int n = 0, nheads = 0;
        uint32_t frames = 0;
        size_t total = 0;
        for (; frames < q->count && n < 63; frames++) {
            frame *f = q->items[(q->head + frames) & (q->cap - 1)];
            size_t off = frames == 0 ? q->head_off : 0;
            size_t hl = head_len(f);
            if (hl) {
                if (nheads == 32)
                    break;
                uint8_t *h = heads[nheads++];
                ws_frame_encode_header(h, WS_OP_TEXT, true, f->len);
                if (off < hl) {
                    iov[n].iov_base = h + off;
                    iov[n].iov_len = hl - off;
                    total += iov[n++].iov_len;
                    off = 0;
                } else {
                    off -= hl;
                }
            }
            iov[n].iov_base = f->data + off;
            iov[n].iov_len = f->len - off;
            total += iov[n++].iov_len;
        }
        ssize_t wr = writev(c->fd, iov, n);
        if (wr < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_update_poll(c, true);
                if (c->input_paused && q->bytes < c->w->cfg->max_output_bytes / 2)
                    conn_resume_input(c);
                return;
            }
            conn_destroy(c); /* reset by peer, broken pipe */
            return;
        }
        if (wr > 0)
            c->out_progress_ms = now_ms(c);
        q->bytes -= (size_t)wr;
        size_t left = (size_t)wr;
        while (left > 0) {
            frame *f = q->items[q->head];
            size_t rest = wire_len(f) - q->head_off;
            if (left >= rest) {
                left -= rest;
                outq_pop(q);
                stat_add(&c->w->stats.frames_out, 1);
            } else {
                q->head_off += (uint32_t)left;
                left = 0;
            }
        }
        if ((size_t)wr < total) {
            conn_update_poll(c, true);
            if (c->input_paused && q->bytes < c->w->cfg->max_output_bytes / 2)
                conn_resume_input(c);
            return;
        }
    }
    conn_update_poll(c, false);
    if (q->items != q->inline_items && q->items) { /* a burst grew the ring: give it back */
        free(q->items);
        q->items = q->inline_items;
        q->cap = OUTQ_INLINE;
    }
    q->head = 0;
    if (c->state == CONN_CLOSING && !c->shut_wr) {
        shutdown(c->fd, SHUT_WR);
        c->shut_wr = true;
    }
    if (c->input_paused)
        conn_resume_input(c);
}

/* ---- WebSocket input ---------------------------------------------------------- */

static bool on_ws_message(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    conn *c = ctx;
    stat_add(&c->w->stats.messages_in, 1);
    handlers(c)->on_message(c, opcode, (char *)data, len);
    return c->state == CONN_WS;
}

static bool on_ws_control(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    conn *c = ctx;
    if (opcode == WS_OP_PING) {
        uint8_t out[WS_SERVER_HEADER_MAX + 125];
        size_t h = ws_frame_encode_header(out, WS_OP_PONG, true, len);
        memcpy(out + h, data, len);
        conn_send_raw(c, out, h + len);
        return true;
    }
    if (opcode == WS_OP_CLOSE) {
        /* echo the peer's code (RFC 6455 §5.5.1), then wait for its EOF */
        uint16_t code = len >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : WS_CLOSE_NORMAL;
        uint8_t out[WS_SERVER_HEADER_MAX + 125];
        size_t n = ws_frame_encode_close(out, code, "");
        conn_send_raw(c, out, n);
        enter_closing(c);
        return false;
    }
    return true; /* pong: liveness is tracked on every read */
}

static const ws_reader_callbacks ws_callbacks = {on_ws_message, on_ws_control};

void conn_feed_ws(conn *c, char *data, size_t len)
{
    /* Most reads hold whole frames: parse with a reader on the stack and keep
     * one on the heap only while something is incomplete. */
    ws_reader local = {0};
    ws_reader *r = c->reader ? c->reader : &local;
    int rc =
        ws_reader_feed(r, (uint8_t *)data, len, c->w->cfg->max_message_bytes, &ws_callbacks, c);
    bool holding = rc == 0 && (r->pending || r->message);
    if (r == &local && holding) {
        c->reader = xmalloc(sizeof(*c->reader));
        *c->reader = local;
    } else if (!holding) {
        ws_reader_free(r);
        if (r != &local) {
            free(r);
            c->reader = NULL;
        }
    }
    if (rc > 1) {
        const char *why = rc == WS_CLOSE_TOO_BIG           ? "Message too big"
                          : rc == WS_CLOSE_INVALID_PAYLOAD ? "Invalid UTF-8"
                                                           : "Protocol error";
        uint8_t out[WS_SERVER_HEADER_MAX + 125];
        size_t n = ws_frame_encode_close(out, (uint16_t)rc, why);
        conn_send_raw(c, out, n);
        enter_closing(c);
    }
}

/* ---- reading ---------------------------------------------------------------------- */

static void on_readable(conn *c)
{
    worker *w = c->w;
    for (int round = 0; round < 4 && !c->input_paused; round++) {
        ssize_t n = recv(c->fd, w->read_buf, WORKER_READ_BUF, 0);
        if (n > 0) {
            c->last_recv_ms = now_ms(c);
            c->ping_sent_ms = 0;
            if (c->state == CONN_HTTP)
                conn_feed_http(c, (char *)w->read_buf, (size_t)n);
            else if (c->state == CONN_WS)
                conn_feed_ws(c, (char *)w->read_buf, (size_t)n);
            else if (c->held_input)
                conn_drop_input(c); /* CONN_CLOSING: discard until the peer's EOF */
            if (c->state == CONN_DEAD)
                return;
            account_input(c);
            if (worker_pending_input(w) > w->pending_budget)
                conn_shed_input(w);
            if ((size_t)n < WORKER_READ_BUF || c->state == CONN_DEAD)
                return;
            continue;
        }
        if (n == 0) {
            conn_destroy(c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_destroy(c);
        return;
    }
}

void conn_on_events(conn *c, uint32_t events)
{
    if (c->state == CONN_DEAD)
        return;
    if (events & EPOLLOUT) {
        conn_flush(c);
        if (c->state == CONN_DEAD)
            return;
    }
    if (c->input_paused && (events & (EPOLLHUP | EPOLLERR))) {
        conn_destroy(c); /* gone, and nothing it sent is being read */
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---- deadlines and bounds ------------------------------------------------------------ */

void conn_check_deadlines(conn *c, uint64_t now)
{
    const hk_config *cfg = c->w->cfg;
    if (c->state == CONN_CLOSING) {
        if (now >= c->deadline_ms)
            conn_destroy(c);
        return;
    }
    if (c->out.count > 0 && now - c->out_progress_ms >= cfg->write_timeout_ms) {
        stat_add(&c->w->stats.write_timeouts, 1);
        log_debug("closing fd %d: output stalled for %u ms", c->fd, cfg->write_timeout_ms);
        conn_destroy(c); /* the peer reads nothing: a close frame would not get through */
        return;
    }
    if (c->state != CONN_HTTP || c->input_paused || c->out.count > 0 || now < c->deadline_ms ||
        c->http_phase == HTTP_WAIT) /* a deferred answer (a stream, a long poll) has no deadline */
        return;
    if (c->http_phase == HTTP_IDLE) {
        conn_destroy(c);
        return;
    }
    stat_add(&c->w->stats.requests_timed_out, 1);
    conn_drop_input(c);
    conn_http_fail(c, 408,
                   c->http_phase == HTTP_HEAD
                       ? "Request timeout: the request head did not arrive in time"
                       : "Request timeout: the request body did not arrive in time");
}

static int by_input_age(const void *a, const void *b)
{
    uint64_t x = (*(conn *const *)a)->input_since_ms, y = (*(conn *const *)b)->input_since_ms;
    return x < y ? -1 : x > y;
}

void conn_shed_input(worker *w)
{
    size_t target = w->pending_budget / 4 * 3;
    size_t n = 0, cap = 64;
    conn **holders = xmalloc(cap * sizeof(*holders));
    for (conn *c = w->conns; c; c = c->next) {
        if (!c->held_input)
            continue;
        if (n == cap) {
            cap *= 2;
            holders = xrealloc(holders, cap * sizeof(*holders));
        }
        holders[n++] = c;
    }
    qsort(holders, n, sizeof(*holders), by_input_age);
    for (size_t i = 0; i < n && worker_pending_input(w) > target; i++) {
        conn *victim = holders[i];
        conn_drop_input(victim);
        if (victim->state == CONN_CLOSING)
            continue; /* its input was to be discarded anyway */
        stat_add(&w->stats.input_shed, 1);
        log_debug("shed a connection's incomplete input (%zu bytes held in all)",
                  worker_pending_input(w));
        if (victim->state == CONN_HTTP)
            conn_http_fail(victim, 503, "Server busy: too many incomplete requests, retry later");
        else
            conn_close_session(victim, 4100, "Over capacity: incomplete message dropped");
    }
    free(holders);
}

void conn_adopt_input(conn *c, conn_handoff *h)
{
    if (h->input && c->state == CONN_HTTP)
        conn_feed_http(c, h->input, h->input_len);
    free(h->input);
    h->input = NULL;
}

bool conn_release(conn *c, conn_handoff *out)
{
    if (c->state == CONN_HTTP && c->out.count > 0)
        conn_flush(c); /* an answer to a request before (pipelined): it goes first */
    if (c->state != CONN_HTTP || c->out.count > 0)
        return false;
    *out = (conn_handoff){.fd = c->fd, .ip = c->ip, .peer_trusted = c->peer_trusted};
    worker *w = c->w;
    if (w->rest_of_input_len) {
        out->input = xmemdup(w->rest_of_input, w->rest_of_input_len);
        out->input_len = w->rest_of_input_len;
    }
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->fd = -1; /* conn_destroy leaves the socket open */
    c->ip = NULL;
    conn_destroy(c);
    return true;
}

conn *conn_adopt(worker *w, conn_handoff *h)
{
    conn *c = conn_accept(w, h->fd, NULL, false);
    if (!c) {
        if (h->ip)
            ip_limit_release(w->srv->per_ip, h->ip);
        free(h->input);
        h->input = NULL;
        return NULL;
    }
    c->ip = h->ip;
    c->peer_trusted = h->peer_trusted;
    stat_add(&w->stats.connections_total, (uint64_t)-1); /* counted once, when accepted */
    return c;
}

conn *conn_accept(worker *w, int fd, const struct sockaddr *sa, bool refuse_full)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A fixed kernel send buffer (no autotuning up to megabytes) keeps what
     * a reader that stopped reading can hold bounded, so max_output_bytes
     * decides when it is a slow consumer. */
    int sndbuf = CONN_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    conn *c = xcalloc(1, sizeof(*c) + w->srv->handlers->ext_size);
    c->w = w;
    c->fd = fd;
    c->state = CONN_HTTP;
    c->http_phase = HTTP_HEAD;
    c->refuse_full = refuse_full;
    c->last_recv_ms = uv_now(&w->loop);
    uint32_t head_ms = w->cfg->http_header_timeout_ms;
    if (refuse_full && head_ms > RESERVE_HEAD_MS)
        head_ms = RESERVE_HEAD_MS;
    c->deadline_ms = c->last_recv_ms + head_ms;
    c->poll_events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        free(c);
        return NULL;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->num_conns++;
    atomic_fetch_add(&w->srv->connections, 1);
    stat_add(&w->stats.connections_total, 1);

    server *srv = w->srv;
    if (srv->per_ip && sa && !refuse_full) {
        if (cidr_list_contains(&srv->trusted, sa)) {
            c->peer_trusted = true; /* counted by X-Forwarded-For at the upgrade */
        } else if (!(c->ip = ip_limit_acquire(srv->per_ip, sa))) {
            stat_add(&w->stats.ip_refused, 1);
            conn_http_fail(c, 429, "Too many connections from your address");
        }
    } else if (sa && !refuse_full && srv->trusted.count && cidr_list_contains(&srv->trusted, sa)) {
        c->peer_trusted = true;
    }
    return c;
}
