/*
 * ws.c — one WebSocket subscriber connection of a receiver process: connect,
 * RFC 6455 handshake, pusher:subscribe, frame parsing, and the checks on
 * every delivered event (order, duplicates, latency).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int64_t parse_i64(const char **pp, const char *end)
{
    const char *p = *pp;
    int64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    *pp = p;
    return digits ? v : -1;
}

static void mask_frame(uint8_t *out, size_t *outlen, int opcode, const void *payload, size_t len)
{
    static const uint8_t mk[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, mk, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = p[i] ^ mk[i & 3];
    *outlen = h + len;
}

int conn_chan_of(int gidx, int j)
{
    return (int)(((int64_t)gidx * O.spc + j) % R.nch);
}

static int cep(const struct conn *c)
{
    return c->probe ? R.ep_probe : R.ep_bulk;
}

static void conn_drop(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(cep(c), EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    free(c->lo);
    c->lo = NULL;
    c->lolen = c->locap = 0;
    if (c->state != CS_READY && c->state != CS_DEAD && c->state != CS_FREE)
        R.inflight--;
    c->state = CS_DEAD;
}

static int conn_send(struct conn *c, const void *b, size_t n)
{
    ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w != (ssize_t)n) {
        atomic_fetch_add(&R.ps->write_err, 1);
        return -1;
    }
    return 0;
}

int conn_start(struct conn *c, int gidx, int slow)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->gidx = gidx;
    c->slow = (uint8_t)slow;
    c->probe = O.sc != SC_STORM && !slow && gidx % R.probe_every == R.probe_every - 1;
    c->t_open = lg_now_us();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        atomic_fetch_add(&R.ps->conn_err, 1);
        c->state = CS_DEAD;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (slow && O.slow_rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &O.slow_rcvbuf, sizeof O.slow_rcvbuf);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(gidx % O.sources));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    lg_parse_host(O.host, &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
        atomic_fetch_add(&R.ps->conn_err, 1);
        close(fd);
        c->state = CS_DEAD;
        return -1;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    R.inflight++;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - R.c)};
    epoll_ctl(cep(c), EPOLL_CTL_ADD, fd, &ev);
    atomic_fetch_add(&R.ps->opened, 1);
    return 0;
}

static void conn_fail(struct conn *c, _Atomic int64_t *counter)
{
    if (counter)
        atomic_fetch_add(counter, 1);
    if (O.sc != SC_STORM)
        atomic_fetch_add(&R.ps->failed, 1);
    else
        R.storm_err++;
    conn_drop(c);
}

static void send_handshake(struct conn *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /app/%s?protocol=7&client=hark-bench&version=1.0&flash=false HTTP/1.1\r\n"
                     "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     O.key, O.host, O.port);
    if (conn_send(c, req, (size_t)n) < 0) {
        conn_fail(c, &R.ps->hs_err);
        return;
    }
    c->state = CS_HANDSHAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - R.c)};
    epoll_ctl(cep(c), EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_subscribes(struct conn *c)
{
    int nsub = O.sc == SC_STORM ? 1 : O.spc;
    for (int j = 0; j < nsub; j++) {
        char msg[160];
        uint8_t fr[200];
        size_t fl;
        int ch = O.sc == SC_STORM ? c->gidx % 100 : conn_chan_of(c->gidx, j);
        int n = snprintf(
            msg, sizeof msg,
            "{\"event\":\"pusher:subscribe\",\"data\":{\"auth\":\"\",\"channel\":\"%s%s%d\"}}",
            CHAN_PREFIX, O.sc == SC_STORM ? "storm-" : "", ch);
        mask_frame(fr, &fl, 1, msg, (size_t)n);
        if (conn_send(c, fr, fl) < 0) {
            conn_fail(c, &R.ps->sub_err);
            return;
        }
    }
    c->state = CS_SUBSCRIBING;
}

static void storm_close(struct conn *c)
{
    uint8_t fr[16];
    size_t fl;
    uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
    mask_frame(fr, &fl, 8, code, 2);
    send(c->fd, fr, fl, MSG_NOSIGNAL | MSG_DONTWAIT);
    conn_drop(c);
    c->state = CS_FREE;
}

static void on_ready(struct conn *c)
{
    c->state = CS_READY;
    R.inflight--;
    if (O.sc == SC_STORM) {
        int64_t t = lg_now_us();
        if (c->t_open >= R.win_start && c->t_open < R.win_end)
            hist_add(&R.lat_all, (uint64_t)(t - c->t_open));
        R.storm_done++;
        storm_close(c);
        return;
    }
    atomic_fetch_add(&R.ps->ready, 1);
    if (c->slow) {
        atomic_fetch_add(&R.ps->slow_total, 1);
        return;
    }
    for (int j = 0; j < O.spc; j++) {
        int ch = conn_chan_of(c->gidx, j);
        atomic_fetch_add(&S->chan[ch], 1);
        R.exp[ch / O.cpp % R.ngroups]++;
    }
}

/* a subscriber of the run went away: stop waiting for it */
static void on_lost_subscriber(struct conn *c)
{
    if (O.sc == SC_STORM || c->state != CS_READY)
        return;
    if (c->slow)
        return;
    atomic_fetch_add(&R.ps->fast_closed, 1);
    for (int j = 0; j < O.spc; j++)
        R.exp[conn_chan_of(c->gidx, j) / O.cpp % R.ngroups]--;
}

static void on_event(struct conn *c, const char *p, size_t n)
{
    size_t slot = (size_t)(c - R.c);
    if (c->state == CS_READY) {
        const char *m = lg_find(p, n < 160 ? n : 160, "hk\\\":\\\"");
        if (m) {
            const char *end = p + n, *q = m + 7;
            int64_t k = parse_i64(&q, end);
            if (q >= end || *q != ':') {
                R.badmsg++;
                return;
            }
            q++;
            int64_t t = parse_i64(&q, end);
            int64_t rc = -1;
            if (q < end && *q == ':') {
                q++;
                rc = parse_i64(&q, end);
            }
            if (rc < 0 || rc >= O.rest_conns) {
                R.badmsg++;
                return;
            }
            /* channel: near the end in hark's key order (before a history
             * id, when the event is kept), else anywhere */
            size_t tail = n < 128 ? n : 128;
            const char *cm = lg_find(p + n - tail, tail, "\"channel\":\"" CHAN_PREFIX);
            if (!cm)
                cm = lg_find(p, n, "\"channel\":\"" CHAN_PREFIX);
            if (k < 0 || t < 0 || !cm) {
                R.badmsg++;
                return;
            }
            const char *cq = cm + 11 + strlen(CHAN_PREFIX);
            int64_t ch = parse_i64(&cq, end);
            int j = 0;
            while (j < O.spc && conn_chan_of(c->gidx, j) != ch)
                j++;
            if (j == O.spc) {
                R.badmsg++;
                return;
            }
            if (c->slow) {
                R.slow_delivered++;
                return;
            }
            int64_t *lk =
                &R.last_k[(slot * (size_t)O.spc + (size_t)j) * (size_t)O.rest_conns + (size_t)rc];
            if (k == *lk)
                R.dup++;
            else if (k < *lk)
                R.ooo++;
            else
                *lk = k;
            R.recv[slot * (size_t)O.spc + (size_t)j]++;
            R.delivered++;
            if (k >= R.wm && k < R.wm + RING)
                R.ring[k % RING]++;
            else if (k >= R.wm + RING)
                R.ring_overflow = 1;
            if (t >= R.win_start && t < R.win_end) {
                int64_t d = lg_now_us() - t;
                if (d < 0)
                    d = 0;
                hist_add(&R.lat_all, (uint64_t)d);
                if (c->probe)
                    hist_add(&R.lat, (uint64_t)d);
            }
            return;
        }
    }
    if (lg_find(p, n, "\"pusher:ping\"")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
        uint8_t fr[64];
        size_t fl;
        mask_frame(fr, &fl, 1, pong, sizeof pong - 1);
        conn_send(c, fr, fl);
        return;
    }
    switch (c->state) {
    case CS_WAIT_EST:
        if (lg_find(p, n, "pusher:connection_established")) {
            send_subscribes(c);
            return;
        }
        if (lg_find(p, n, "pusher:error")) {
            conn_fail(c, &R.ps->hs_err);
            return;
        }
        break;
    case CS_SUBSCRIBING:
        if (lg_find(p, n, "pusher_internal:subscription_succeeded")) {
            c->nsub++;
            if (c->nsub >= (O.sc == SC_STORM ? 1 : O.spc))
                on_ready(c);
            return;
        }
        if (lg_find(p, n, "subscription_error") || lg_find(p, n, "pusher:error")) {
            conn_fail(c, &R.ps->sub_err);
            return;
        }
        break;
    default:
        break;
    }
    R.other_msg++;
}

static void on_close(struct conn *c, int code)
{
    atomic_store(&R.ps->last_close_code, code);
    if (code == 4100)
        atomic_fetch_add(&R.ps->close_4100, 1);
    else
        atomic_fetch_add(&R.ps->close_other, 1);
    if (c->slow && c->state == CS_READY) {
        if (code == 4100)
            atomic_fetch_add(&R.ps->slow_4100, 1);
        else
            atomic_fetch_add(&R.ps->slow_other_close, 1);
    }
    on_lost_subscriber(c);
    if (c->state != CS_READY) {
        conn_fail(c, &R.ps->hs_err);
        return;
    }
    conn_drop(c);
}

/* Parse WebSocket frames from b[0..n); returns bytes consumed, or -1 if the
 * connection was closed. */
static long parse_frames(struct conn *c, char *b, size_t n)
{
    size_t off = 0;
    for (int guard = 0; guard < 1 << 20; guard++) {
        if (n - off < 2)
            break;
        uint8_t b0 = (uint8_t)b[off], b1 = (uint8_t)b[off + 1];
        size_t h = 2;
        uint64_t len = b1 & 0x7f;
        if (len == 126) {
            if (n - off < 4)
                break;
            len = ((uint64_t)(uint8_t)b[off + 2] << 8) | (uint8_t)b[off + 3];
            h = 4;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | (uint8_t)b[off + 2 + i];
            h = 10;
        }
        if (b1 & 0x80 || len > MAX_FRAME) {
            R.badmsg++;
            on_lost_subscriber(c);
            conn_fail(c, NULL);
            return -1;
        }
        if (n - off < h + len)
            break;
        char *pl = b + off + h;
        int op = b0 & 0x0f;
        off += h + (size_t)len;
        if (op == 1) {
            on_event(c, pl, (size_t)len);
            if (c->state == CS_DEAD || c->state == CS_FREE)
                return -1;
        } else if (op == 8) {
            int code = len >= 2 ? ((uint8_t)pl[0] << 8 | (uint8_t)pl[1]) : 1005;
            on_close(c, code);
            return -1;
        } else if (op == 9) {
            uint8_t fr[160];
            size_t fl;
            mask_frame(fr, &fl, 10, pl, len < 125 ? (size_t)len : 125);
            conn_send(c, fr, fl);
        } else if (op != 10) {
            R.other_msg++;
        }
    }
    return (long)off;
}

void conn_readable(struct conn *c)
{
    size_t have = c->lolen;
    if (have)
        memcpy(R.buf, c->lo, have);
    ssize_t r = read(c->fd, R.buf + have, RBUF - have);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (c->state == CS_READY) {
            if (c->slow) {
                if (r == 0)
                    atomic_fetch_add(&R.ps->slow_eof, 1);
                else
                    atomic_fetch_add(&R.ps->slow_reset, 1);
            }
            if (r == 0)
                atomic_fetch_add(&R.ps->eof, 1);
            else
                atomic_fetch_add(&R.ps->reset, 1);
            on_lost_subscriber(c);
            conn_drop(c);
        } else {
            conn_fail(c, &R.ps->hs_err);
        }
        return;
    }
    size_t n = have + (size_t)r, off = 0;
    if (c->state == CS_HANDSHAKE) {
        const char *e = lg_find(R.buf, n, "\r\n\r\n");
        if (!e) {
            if (n > 8192) {
                conn_fail(c, &R.ps->hs_err);
                return;
            }
            goto keep;
        }
        if (n < 12 || memcmp(R.buf, "HTTP/1.1 101", 12) != 0) {
            conn_fail(c, &R.ps->hs_err);
            return;
        }
        off = (size_t)(e - R.buf) + 4;
        c->state = CS_WAIT_EST;
    }
    long used = parse_frames(c, R.buf + off, n - off);
    if (used < 0)
        return;
    off += (size_t)used;
keep:
    c->lolen = (uint32_t)(n - off);
    if (c->lolen) {
        if (c->lolen > c->locap) {
            uint32_t cap = c->lolen < 4096 ? 4096 : c->lolen;
            char *nb = realloc(c->lo, cap);
            if (!nb)
                lg_die("out of memory");
            c->lo = nb;
            c->locap = cap;
        }
        memmove(c->lo, R.buf + off, c->lolen);
    } else if (c->locap > 65536) {
        free(c->lo);
        c->lo = NULL;
        c->locap = 0;
    }
}

void conn_writable(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_fail(c, &R.ps->conn_err);
        return;
    }
    send_handshake(c);
}

void conn_set_paused(struct conn *c, int paused)
{
    if (c->state != CS_READY || c->fd < 0 || c->paused == paused)
        return;
    c->paused = (uint8_t)paused;
    struct epoll_event ev = {.events = paused ? 0u : EPOLLIN, .data.u32 = (uint32_t)(c - R.c)};
    epoll_ctl(cep(c), EPOLL_CTL_MOD, c->fd, &ev);
}
