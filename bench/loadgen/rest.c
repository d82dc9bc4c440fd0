/*
 * rest.c — the coordinator's REST publisher: keep-alive HTTP/1.1 connections,
 * POST /apps/ID/events signed as spec §8.2 says (body_md5, HMAC-SHA256),
 * and the answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

struct coord C;

static void hexify(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

int rest_connect(struct rconn *r)
{
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0)
        return -1;
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    lg_parse_host(O.host, &dst.sin_addr);
    if (connect(r->fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
        close(r->fd);
        r->fd = -1;
        return -1;
    }
    fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(r - C.rc)};
    epoll_ctl(C.ep, EPOLL_CTL_ADD, r->fd, &ev);
    r->busy = 0;
    r->inlen = 0;
    return 0;
}

static void rest_reset(struct rconn *r)
{
    if (r->fd >= 0) {
        epoll_ctl(C.ep, EPOLL_CTL_DEL, r->fd, NULL);
        close(r->fd);
    }
    r->fd = -1;
    C.rest_reconnect++;
    if (r->busy) {
        C.rest_err++;
        atomic_store(&S->failed_k[r->k % RING], r->k + 1);
    }
    r->busy = 0;
    rest_connect(r);
}

/* Build and send publish number k on r. */
int rest_publish(struct rconn *r, int64_t k)
{
    int64_t t = lg_now_us();
    int64_t g = k % C.ngroups;
    size_t cap = (size_t)O.size + (size_t)O.cpp * 24 + 1024;
    if (!r->out)
        r->out = malloc(cap + 1024);
    char *body = malloc(cap);
    if (!r->out || !body)
        lg_die("out of memory");
    size_t n = (size_t)snprintf(body, cap, "{\"name\":\"bench\",\"channels\":[");
    for (int i = 0; i < O.cpp; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"%s%" PRId64 "\"", i ? "," : "", CHAN_PREFIX,
                              g * O.cpp + i);
    char hk[48];
    int hkl = snprintf(hk, sizeof hk, "%" PRId64 ":%" PRId64 ":%d", k, t, (int)(r - C.rc));
    /* data string: {"hk":"K:T:R","p":"PAD"} — 17 bytes around hk and pad */
    int padlen = O.size - 17 - hkl;
    if (padlen < 0)
        padlen = 0;
    n += (size_t)snprintf(body + n, cap - n,
                          "],\"data\":\"{\\\"hk\\\":\\\"%s\\\",\\\"p\\\":\\\"%.*s\\\"}\"}", hk,
                          padlen, C.pad);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    char md5[33], sig[65], tosign[512];
    EVP_Digest(body, n, md, &mdl, EVP_md5(), NULL);
    hexify(md, mdl, md5);
    time_t wall = time(NULL);
    if (wall != C.ts_cached_sec) {
        C.ts_cached_sec = wall;
        snprintf(C.ts, sizeof C.ts, "%lld", (long long)wall);
    }
    int sl = snprintf(
        tosign, sizeof tosign,
        "POST\n/apps/%s/events\nauth_key=%s&auth_timestamp=%s&auth_version=1.0&body_md5=%s",
        O.app_id, O.key, C.ts, md5);
    HMAC(EVP_sha256(), O.secret, (int)strlen(O.secret), (unsigned char *)tosign, (size_t)sl, md,
         &mdl);
    hexify(md, mdl, sig);
    size_t h =
        (size_t)snprintf(r->out, cap + 1024,
                         "POST /apps/%s/events?auth_key=%s&auth_timestamp=%s&auth_version=1.0"
                         "&body_md5=%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         O.app_id, O.key, C.ts, md5, sig, O.host, O.port, n);
    memcpy(r->out + h, body, n);
    free(body);
    r->outlen = h + n;
    r->outoff = 0;
    r->busy = 1;
    r->k = k;
    r->t_send = t;
    ssize_t w = send(r->fd, r->out, r->outlen, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
        rest_reset(r);
        return -1;
    }
    r->outoff = w > 0 ? (size_t)w : 0;
    if (r->outoff < r->outlen) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(r - C.rc)};
        epoll_ctl(C.ep, EPOLL_CTL_MOD, r->fd, &ev);
    }
    return 0;
}

void rest_writable(struct rconn *r)
{
    ssize_t w = send(r->fd, r->out + r->outoff, r->outlen - r->outoff, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
        rest_reset(r);
        return;
    }
    if (w > 0)
        r->outoff += (size_t)w;
    if (r->outoff >= r->outlen) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(r - C.rc)};
        epoll_ctl(C.ep, EPOLL_CTL_MOD, r->fd, &ev);
    }
}

static const char *find_ci(const char *h, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (strncasecmp(h + i, needle, nl) == 0)
            return h + i;
    return NULL;
}

void rest_readable(struct rconn *r)
{
    ssize_t got = read(r->fd, r->in + r->inlen, sizeof r->in - r->inlen);
    if (got <= 0) {
        if (got < 0 && errno == EAGAIN)
            return;
        rest_reset(r);
        return;
    }
    r->inlen += (size_t)got;
    const char *e = lg_find(r->in, r->inlen, "\r\n\r\n");
    if (!e) {
        if (r->inlen == sizeof r->in)
            rest_reset(r);
        return;
    }
    size_t hl = (size_t)(e - r->in) + 4;
    const char *cl = find_ci(r->in, hl, "\r\ncontent-length:");
    size_t blen = 0;
    int closing = find_ci(r->in, hl, "\r\nconnection: close") != NULL;
    if (cl) {
        blen = (size_t)strtoul(cl + 17, NULL, 10);
    } else if (find_ci(r->in, hl, "chunked")) {
        const char *z = lg_find(r->in + hl, r->inlen - hl, "0\r\n\r\n");
        if (!z)
            return;
        blen = (size_t)(z + 5 - (r->in + hl));
    }
    if (r->inlen < hl + blen)
        return;
    int status = (r->inlen > 12 && strncmp(r->in, "HTTP/1.", 7) == 0) ? atoi(r->in + 9) : 0;
    int ok = status == 200 && !lg_find(r->in + hl, blen, "\"error\"");
    if (r->busy) {
        if (ok) {
            C.acked++;
            C.pubs_ok[r->k % C.ngroups]++;
            /* answers handled after the window closed may have waited for
             * the coordinator itself (it pauses there), so they do not count */
            int64_t t_now = lg_now_us();
            if (r->t_send >= C.win_start && r->t_send < C.win_end && t_now < C.win_end)
                hist_add(&C.rest_lat, (uint64_t)(t_now - r->t_send));
        } else {
            C.rest_err++;
            C.last_err_code = status;
            size_t m = blen < sizeof C.last_err - 1 ? blen : sizeof C.last_err - 1;
            memcpy(C.last_err, r->in + hl, m);
            C.last_err[m] = 0;
            atomic_store(&S->failed_k[r->k % RING], r->k + 1);
        }
    }
    r->busy = 0;
    size_t used = hl + blen;
    memmove(r->in, r->in + used, r->inlen - used);
    r->inlen -= used;
    if (closing) {
        r->busy = 0;
        rest_reset(r);
    }
}
