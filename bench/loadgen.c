/*
 * loadgen — a Pusher Channels (protocol 7) load generator for hark and Soketi.
 *
 * One coordinator process triggers events over the signed REST API (spec
 * §8.2) on a few keep-alive HTTP connections, samples the server's RSS and
 * CPU from /proc, and steers --procs receiver processes (fork) through
 * phases in a shared memory page. Each receiver owns its share of the
 * WebSocket connections and reads them into one large buffer, so one read()
 * returns as many queued frames as the kernel holds. 100 of the subscribers
 * are probes on their own epoll set, serviced between every 64 other sockets;
 * the others may be read in sweeps (--bulk-interval-ms) so that each read
 * takes several frames: a read costs 5-10 µs here, mostly the ACK it sends.
 *
 * Every published event carries "K:T:R" in its data: K the publish number,
 * T the monotonic send time in µs, R the REST connection that sent it. A REST
 * connection has one request in flight, so its publishes are ordered; nothing
 * orders requests of different connections. The receivers check that K grows
 * per subscriber, channel and R (out-of-order and duplicates), count
 * deliveries per channel (losses are counted against the number of
 * acknowledged publishes), and record T→receipt latency of the probes for
 * events sent inside the measuring window. Flat out, publishes in flight are
 * limited to --window: a publish is in flight until every subscriber that
 * reads has it (the watermark), which also gives the exact deliveries/s.
 *
 * Everything is bounded: each loop runs until a deadline (--timeout), each
 * child also has an alarm(), and only 127.0.0.0/8 is accepted as a target.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_PROCS 8
#define MAX_SPC 8       /* channels per connection */
#define MAX_STEPS 8     /* idle: connection counts to sample RSS at */
#define MAX_REST 64     /* REST keep-alive connections */
#define RING 16384      /* publishes tracked for the in-flight window */
#define NBUCKET 2048    /* latency histogram buckets */
#define RBUF (1u << 20) /* shared receive buffer of a receiver process */
#define MAX_EVENTS 1024 /* epoll_wait batch */
#define MAX_FRAME (1u << 24)
#define CHAN_PREFIX "b-"

enum scenario { SC_IDLE, SC_FANOUT, SC_MANY, SC_REST, SC_STORM, SC_SLOW };
static const char *const sc_names[] = {"idle", "fanout", "many", "rest", "storm", "slow"};

enum phase { PH_CONNECT, PH_RUN, PH_DRAIN, PH_FINISH };

static struct opts {
    const char *host;
    int port;
    const char *app_id, *key, *secret;
    enum scenario sc;
    const char *label;
    int conns;            /* subscribing WebSocket connections */
    int steps[MAX_STEPS]; /* idle: counts at which RSS is sampled */
    int nsteps;
    int channels;    /* distinct channels */
    int spc;         /* subscriptions per connection */
    int cpp;         /* channels per publish */
    int size;        /* bytes of the event's data string */
    double rate;     /* publishes/s; 0: flat out within --window */
    int window;      /* publishes in flight (sent, not yet delivered everywhere) */
    double duration; /* measuring window, s */
    double warmup;   /* s before the window */
    double settle;   /* idle: s to wait before sampling RSS */
    double drain;    /* s to wait for late deliveries */
    double timeout;  /* hard cap on the whole run, s */
    int rest_conns;
    int procs;
    int sources; /* source addresses 127.0.0.2 .. */
    int server_pid;
    int slow_pct;
    int slow_rcvbuf;
    int concurrency; /* connection attempts in flight per receiver */
    int bulk_interval_ms;
    int quiet;
} O = {
    .host = "127.0.0.1",
    .port = 6001,
    .app_id = "app-id",
    .key = "app-key",
    .secret = "app-secret",
    .sc = SC_FANOUT,
    .label = "server",
    .conns = 10000,
    .channels = 0,
    .spc = 1,
    .cpp = 1,
    .size = 1024,
    .rate = 0,
    .window = 16,
    .duration = 5,
    .warmup = 1,
    .settle = 2,
    .drain = 5,
    .timeout = 120,
    .rest_conns = 4,
    .procs = 1,
    .sources = 8,
    .server_pid = 0,
    .slow_pct = 10,
    .slow_rcvbuf = 4096,
    .concurrency = 256,
};

/* ---- time, logging ------------------------------------------------------ */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void say(const char *fmt, ...)
{
    if (O.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int64_t cpu_self_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* ---- latency histogram: exact below 64 µs, then 32 buckets per octave --- */

struct hist {
    uint64_t n, max, sum;
    uint64_t b[NBUCKET];
};

static int hist_bucket(uint64_t v)
{
    if (v < 64)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    int b = 64 + (e - 6) * 32 + (int)((v >> (e - 5)) & 31);
    return b < NBUCKET ? b : NBUCKET - 1;
}

static uint64_t bucket_mid(int b)
{
    if (b < 64)
        return (uint64_t)b;
    int e = (b - 64) / 32 + 6, sub = (b - 64) % 32;
    uint64_t lo = (uint64_t)(32 + sub) << (e - 5);
    return lo + ((1ull << (e - 5)) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_bucket(v)]++;
}

static void hist_merge(struct hist *d, const struct hist *s)
{
    d->n += s->n;
    d->sum += s->sum;
    if (s->max > d->max)
        d->max = s->max;
    for (int i = 0; i < NBUCKET; i++)
        d->b[i] += s->b[i];
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n), acc = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < NBUCKET; i++) {
        acc += h->b[i];
        if (acc >= want) {
            uint64_t v = bucket_mid(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ---- shared state between coordinator and receivers ---------------------- */

struct pstat {
    _Atomic int64_t opened, ready, failed, conn_err, hs_err, sub_err, write_err;
    _Atomic int64_t delivered, ooo, dup, badmsg, other_msg;
    _Atomic int64_t fast_closed; /* fast subscribers closed during the run */
    _Atomic int64_t close_4100, close_other, eof, reset; /* all connections */
    _Atomic int64_t last_close_code;
    _Atomic int64_t slow_total, slow_4100, slow_other_close, slow_eof, slow_reset, slow_open,
        slow_delivered;
    _Atomic int64_t watermark; /* every publish below it was delivered to all local subscribers */
    _Atomic int64_t cpu_us;
    _Atomic int64_t storm_done, storm_err;
    _Atomic int phase_done;
    struct hist lat;     /* probes; written by the receiver when it finishes */
    struct hist lat_all; /* every delivery */
};

struct shm {
    _Atomic int phase;
    _Atomic int64_t target;    /* connections wanted (all receivers together) */
    _Atomic int64_t win_start; /* µs; latency recorded for sends inside [start, end) */
    _Atomic int64_t win_end;
    _Atomic int64_t sent;           /* publishes handed to the REST API */
    _Atomic int64_t failed_k[RING]; /* k+1 of a publish the API refused */
    struct pstat ps[MAX_PROCS];
    _Atomic int64_t chan[]; /* [0,nch): fast subscribers; [nch,2nch): deliveries */
};

static struct shm *S;

/* ---- small helpers ------------------------------------------------------- */

static int parse_host(const char *h, struct in_addr *a)
{
    if (inet_pton(AF_INET, h, a) != 1)
        return -1;
    return ((ntohl(a->s_addr) >> 24) == 127) ? 0 : -1;
}

static const char *find(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle));
}

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

/* ---- /proc sampling of the server ---------------------------------------- */

static long proc_rss_kb(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    for (int i = 0; i < 80 && fgets(line, sizeof line, f); i++) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* utime + stime of the whole process, in µs */
static int64_t proc_cpu_us(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3 */
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field <= 15 && *p; field++) {
        if (field == 14)
            ut = strtoull(p, NULL, 10);
        if (field == 15)
            st = strtoull(p, NULL, 10);
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((ut + st) * 1000000ull / (unsigned long long)hz);
}

/* Machine-wide jiffies from /proc/stat: [0] busy (all but idle and iowait),
 * [1] idle + iowait, [2] softirq + irq (charged to no process), [3] steal. */
static void sys_cpu(int64_t out[4])
{
    memset(out, 0, 4 * sizeof out[0]);
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    long long v[10] = {0};
    int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return;
    out[0] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    out[1] = v[3] + v[4];
    out[2] = v[5] + v[6];
    out[3] = v[7];
}

/* ======================================================================== */
/* Receiver processes: WebSocket subscribers                                 */
/* ======================================================================== */

enum cstate {
    CS_FREE,
    CS_CONNECTING,
    CS_HANDSHAKE,
    CS_WAIT_EST,
    CS_SUBSCRIBING,
    CS_READY,
    CS_DEAD
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t slow;
    uint8_t paused;
    uint8_t nsub;  /* subscription_succeeded received */
    uint8_t probe; /* read promptly, latency recorded */
    int32_t gidx;  /* global connection number */
    uint32_t lolen, locap;
    char *lo; /* bytes of an incomplete frame or handshake */
    int64_t t_open;
};

static struct rx {
    int p;        /* receiver number */
    int ep;       /* waits on the two below */
    int ep_probe; /* probe connections: serviced between every bulk chunk */
    int ep_bulk;  /* the rest */
    int probe_every;
    struct conn *c; /* connection slots */
    int nslots;
    int nmine;  /* connections this receiver owns in total (target share) */
    int opened; /* slots used so far (idle/fan-out: index into c[]) */
    int inflight;
    int64_t *last_k; /* [(slot*spc + j)*rest_conns + r]: order is per publishing connection */
    uint32_t *recv;  /* deliveries per slot*spc + j */
    int64_t *exp;    /* per group: local fast subscribers */
    uint32_t ring[RING];
    int64_t wm;
    int ring_overflow;
    char *buf;
    struct hist lat;     /* probes */
    struct hist lat_all; /* every delivery, as read */
    int64_t win_start, win_end;
    struct pstat *ps;
    /* local counters, published to shm after each batch */
    int64_t delivered, ooo, dup, badmsg, other_msg, slow_delivered, storm_done, storm_err;
    int nch, ngroups;
    int phase;
    int64_t next_cpu;
    int storm_seq;
} R;

static int chan_of(int gidx, int j)
{
    return (int)(((int64_t)gidx * O.spc + j) % R.nch);
}

/* global connection number of local slot i (idle/fan-out layouts) */
static int gidx_of_slot(int i)
{
    return i * O.procs + R.p;
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

static int conn_start(struct conn *c, int gidx, int slow)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->gidx = gidx;
    c->slow = (uint8_t)slow;
    c->probe = O.sc != SC_STORM && !slow && gidx % R.probe_every == R.probe_every - 1;
    c->t_open = now_us();
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
    parse_host(O.host, &dst.sin_addr);
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
        int ch = O.sc == SC_STORM ? c->gidx % 100 : chan_of(c->gidx, j);
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
        int64_t t = now_us();
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
        int ch = chan_of(c->gidx, j);
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
        R.exp[chan_of(c->gidx, j) / O.cpp % R.ngroups]--;
}

static void on_event(struct conn *c, const char *p, size_t n)
{
    size_t slot = (size_t)(c - R.c);
    if (c->state == CS_READY) {
        const char *m = find(p, n < 160 ? n : 160, "hk\\\":\\\"");
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
            /* channel: at the end in hark's key order, else anywhere */
            size_t tail = n < 64 ? n : 64;
            const char *cm = find(p + n - tail, tail, "\"channel\":\"" CHAN_PREFIX);
            if (!cm)
                cm = find(p, n, "\"channel\":\"" CHAN_PREFIX);
            if (k < 0 || t < 0 || !cm) {
                R.badmsg++;
                return;
            }
            const char *cq = cm + 11 + strlen(CHAN_PREFIX);
            int64_t ch = parse_i64(&cq, end);
            int j = 0;
            while (j < O.spc && chan_of(c->gidx, j) != ch)
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
                int64_t d = now_us() - t;
                if (d < 0)
                    d = 0;
                hist_add(&R.lat_all, (uint64_t)d);
                if (c->probe)
                    hist_add(&R.lat, (uint64_t)d);
            }
            return;
        }
    }
    if (find(p, n, "\"pusher:ping\"")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
        uint8_t fr[64];
        size_t fl;
        mask_frame(fr, &fl, 1, pong, sizeof pong - 1);
        conn_send(c, fr, fl);
        return;
    }
    switch (c->state) {
    case CS_WAIT_EST:
        if (find(p, n, "pusher:connection_established")) {
            send_subscribes(c);
            return;
        }
        if (find(p, n, "pusher:error")) {
            conn_fail(c, &R.ps->hs_err);
            return;
        }
        break;
    case CS_SUBSCRIBING:
        if (find(p, n, "pusher_internal:subscription_succeeded")) {
            c->nsub++;
            if (c->nsub >= (O.sc == SC_STORM ? 1 : O.spc))
                on_ready(c);
            return;
        }
        if (find(p, n, "subscription_error") || find(p, n, "pusher:error")) {
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

static void conn_readable(struct conn *c)
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
        const char *e = find(R.buf, n, "\r\n\r\n");
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
                die("out of memory");
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

static void conn_writable(struct conn *c)
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

static void set_paused(struct conn *c, int paused)
{
    if (c->state != CS_READY || c->fd < 0 || c->paused == paused)
        return;
    c->paused = (uint8_t)paused;
    struct epoll_event ev = {.events = paused ? 0u : EPOLLIN, .data.u32 = (uint32_t)(c - R.c)};
    epoll_ctl(cep(c), EPOLL_CTL_MOD, c->fd, &ev);
}

static void rx_publish_counters(void)
{
    struct pstat *ps = R.ps;
    atomic_store_explicit(&ps->delivered, R.delivered, memory_order_relaxed);
    atomic_store_explicit(&ps->ooo, R.ooo, memory_order_relaxed);
    atomic_store_explicit(&ps->dup, R.dup, memory_order_relaxed);
    atomic_store_explicit(&ps->badmsg, R.badmsg, memory_order_relaxed);
    atomic_store_explicit(&ps->other_msg, R.other_msg, memory_order_relaxed);
    atomic_store_explicit(&ps->slow_delivered, R.slow_delivered, memory_order_relaxed);
    atomic_store_explicit(&ps->storm_done, R.storm_done, memory_order_relaxed);
    atomic_store_explicit(&ps->storm_err, R.storm_err, memory_order_relaxed);
}

static void rx_advance_watermark(void)
{
    int64_t sent = atomic_load_explicit(&S->sent, memory_order_acquire);
    for (int guard = 0; guard < RING && R.wm < sent; guard++) {
        int64_t k = R.wm;
        int64_t need = R.exp[k % R.ngroups];
        if (R.ring[k % RING] < need && atomic_load(&S->failed_k[k % RING]) != k + 1)
            break;
        R.ring[k % RING] = 0;
        R.wm++;
    }
    atomic_store_explicit(&R.ps->watermark, R.wm, memory_order_release);
}

static void rx_open_more(int64_t now, int64_t target)
{
    if (O.sc == SC_STORM) {
        if (R.phase != PH_RUN)
            return;
        for (int i = 0; i < R.nslots && R.inflight < O.concurrency; i++) {
            if (R.c[i].state == CS_FREE || R.c[i].state == CS_DEAD) {
                int g = R.storm_seq++ * O.procs + R.p;
                conn_start(&R.c[i], g, 0);
            }
        }
        return;
    }
    if (R.phase != PH_CONNECT)
        return;
    int want = 0;
    /* local share of the first `target` global connections */
    if (target > R.p)
        want = (int)((target - 1 - R.p) / O.procs + 1);
    if (want > R.nslots)
        want = R.nslots;
    while (R.opened < want && R.inflight < O.concurrency) {
        int i = R.opened++;
        int g = gidx_of_slot(i);
        int slow = O.sc == SC_SLOW && (g % 100) < O.slow_pct;
        conn_start(&R.c[i], g, slow);
    }
    (void)now;
}

#define BULK_CHUNK 64

static void rx_handle(struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        struct conn *c = &R.c[evs[i].data.u32];
        if (c->fd < 0)
            continue;
        if (c->state == CS_CONNECTING)
            conn_writable(c);
        else
            conn_readable(c);
    }
}

static void rx_main(int p)
{
    memset(&R, 0, sizeof R);
    R.p = p;
    R.ps = &S->ps[p];
    R.nch = O.channels;
    R.ngroups = O.channels / O.cpp;
    R.ep = epoll_create1(EPOLL_CLOEXEC);
    R.ep_probe = epoll_create1(EPOLL_CLOEXEC);
    R.ep_bulk = epoll_create1(EPOLL_CLOEXEC);
    R.probe_every = O.conns >= 200 ? O.conns / 100 : 1;
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.ep_probe, &tev);
    tev.data.u32 = 1;
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.ep_bulk, &tev);
    if (O.sc == SC_STORM)
        R.nslots = O.concurrency;
    else
        R.nslots = (O.conns - 1 - p) / O.procs + 1;
    R.c = calloc((size_t)R.nslots, sizeof *R.c);
    size_t nlk = (size_t)R.nslots * (size_t)O.spc * (size_t)O.rest_conns;
    R.last_k = malloc(nlk * sizeof *R.last_k);
    R.recv = calloc((size_t)R.nslots * (size_t)O.spc, sizeof *R.recv);
    R.exp = calloc((size_t)R.ngroups, sizeof *R.exp);
    R.buf = malloc(RBUF);
    if (!R.c || !R.last_k || !R.recv || !R.exp || !R.buf || R.ep < 0)
        die("receiver %d: out of memory", p);
    for (size_t i = 0; i < nlk; i++)
        R.last_k[i] = -1;
    for (int i = 0; i < R.nslots; i++) {
        R.c[i].fd = -1;
        R.c[i].state = CS_FREE;
    }
    R.win_start = INT64_MAX;
    R.win_end = INT64_MAX;
    R.phase = -1;
    alarm((unsigned)O.timeout + 15);
    int64_t deadline = now_us() + (int64_t)(O.timeout * 1e6) + 5000000;
    struct epoll_event evs[MAX_EVENTS];
    int sweeping = 1;
    int64_t next_sweep = 0;
    while (now_us() < deadline) {
        int ph = atomic_load(&S->phase);
        if (ph != R.phase) {
            if (ph == PH_RUN && O.sc == SC_SLOW)
                for (int i = 0; i < R.opened; i++)
                    if (R.c[i].slow)
                        set_paused(&R.c[i], 1);
            if (ph == PH_DRAIN)
                for (int i = 0; i < R.opened; i++)
                    set_paused(&R.c[i], 0);
            R.phase = ph;
            atomic_store(&R.ps->phase_done, ph);
        }
        if (ph >= PH_FINISH)
            break;
        R.win_start = atomic_load_explicit(&S->win_start, memory_order_relaxed);
        R.win_end = atomic_load_explicit(&S->win_end, memory_order_relaxed);
        int64_t now = now_us();
        rx_open_more(now, atomic_load(&S->target));
        /* Bulk sockets are read continuously, or with --bulk-interval-ms in
         * sweeps that many ms apart while publishing (several frames per
         * read, much less CPU here); probes are always read at once. */
        int64_t ivl = (ph == PH_RUN && O.sc != SC_STORM) ? (int64_t)O.bulk_interval_ms * 1000 : 0;
        if (!sweeping && (ivl == 0 || now >= next_sweep))
            sweeping = 1;
        if (sweeping) {
            struct epoll_event top[2];
            epoll_wait(R.ep, top, 2, 5);
        } else {
            int64_t wait_ms = (next_sweep - now) / 1000;
            int n0 = epoll_wait(R.ep_probe, evs, MAX_EVENTS, wait_ms > 5 ? 5 : (int)wait_ms);
            rx_handle(evs, n0);
        }
        /* probes first and again after every small chunk of bulk sockets, so
         * their receipt time is not delayed by a long sweep */
        int64_t sweep_end = now_us() + 20000;
        for (int round = 0; round < 4096; round++) {
            int n1 = epoll_wait(R.ep_probe, evs, MAX_EVENTS, 0);
            rx_handle(evs, n1);
            int n2 = sweeping ? epoll_wait(R.ep_bulk, evs, BULK_CHUNK, 0) : 0;
            rx_handle(evs, n2);
            if (sweeping && n2 <= 0 && ivl > 0) {
                sweeping = 0;
                next_sweep = now_us() + ivl;
            }
            if ((n1 <= 0 && n2 <= 0) || now_us() > sweep_end)
                break;
        }
        if (O.sc != SC_STORM && O.sc != SC_IDLE)
            rx_advance_watermark();
        rx_publish_counters();
        if (now >= R.next_cpu) {
            atomic_store(&R.ps->cpu_us, cpu_self_us());
            R.next_cpu = now + 100000;
        }
    }
    if (getenv("LOADGEN_DEBUG")) {
        int st[8] = {0};
        for (int i = 0; i < R.nslots; i++)
            st[R.c[i].state]++;
        fprintf(stderr,
                "receiver %d: free %d connecting %d handshake %d wait_est %d subscribing %d "
                "ready %d dead %d\n",
                p, st[0], st[1], st[2], st[3], st[4], st[5], st[6]);
    }
    /* finish: per-channel deliveries, slow connections still open, latencies */
    for (int i = 0; i < R.opened && O.sc != SC_STORM; i++) {
        struct conn *c = &R.c[i];
        if (c->state == CS_READY && c->slow)
            atomic_fetch_add(&R.ps->slow_open, 1);
        if (c->slow || c->gidx < 0)
            continue;
        for (int j = 0; j < O.spc; j++) {
            uint32_t r = R.recv[(size_t)i * (size_t)O.spc + (size_t)j];
            if (r)
                atomic_fetch_add(&S->chan[R.nch + chan_of(c->gidx, j)], r);
        }
    }
    rx_publish_counters();
    R.ps->lat = R.lat;
    R.ps->lat_all = R.lat_all;
    atomic_store(&R.ps->cpu_us, cpu_self_us());
    atomic_store(&R.ps->phase_done, PH_FINISH);
    /* sockets close with the process */
}

/* ======================================================================== */
/* Coordinator: REST publisher and measurements                             */
/* ======================================================================== */

struct rconn {
    int fd;
    int busy;
    int64_t k;
    int64_t t_send;
    char *out;
    size_t outlen, outoff;
    char in[16384];
    size_t inlen;
};

static struct coord {
    int ep;
    struct rconn rc[MAX_REST];
    int nrc;
    char *pad;
    int64_t *pubs_ok; /* per group */
    int64_t acked, rest_err, rest_reconnect, late;
    int64_t last_err_code;
    char last_err[160];
    struct hist rest_lat;
    int64_t win_start, win_end;
    int64_t acked_win_start, acked_win_end;
    int64_t ngroups;
    int64_t ts_cached_sec;
    char ts[24];
} C;

static void hexify(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int rest_connect(struct rconn *r)
{
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0)
        return -1;
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    parse_host(O.host, &dst.sin_addr);
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
static int rest_publish(struct rconn *r, int64_t k)
{
    int64_t t = now_us();
    int64_t g = k % C.ngroups;
    size_t cap = (size_t)O.size + (size_t)O.cpp * 24 + 1024;
    if (!r->out)
        r->out = malloc(cap + 1024);
    char *body = malloc(cap);
    if (!r->out || !body)
        die("out of memory");
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

static void rest_writable(struct rconn *r)
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

static void rest_readable(struct rconn *r)
{
    ssize_t got = read(r->fd, r->in + r->inlen, sizeof r->in - r->inlen);
    if (got <= 0) {
        if (got < 0 && errno == EAGAIN)
            return;
        rest_reset(r);
        return;
    }
    r->inlen += (size_t)got;
    const char *e = find(r->in, r->inlen, "\r\n\r\n");
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
        const char *z = find(r->in + hl, r->inlen - hl, "0\r\n\r\n");
        if (!z)
            return;
        blen = (size_t)(z + 5 - (r->in + hl));
    }
    if (r->inlen < hl + blen)
        return;
    int status = (r->inlen > 12 && strncmp(r->in, "HTTP/1.", 7) == 0) ? atoi(r->in + 9) : 0;
    int ok = status == 200 && !find(r->in + hl, blen, "\"error\"");
    if (r->busy) {
        if (ok) {
            C.acked++;
            C.pubs_ok[r->k % C.ngroups]++;
            /* answers handled after the window closed may have waited for
             * the coordinator itself (it pauses there), so they do not count */
            int64_t t_now = now_us();
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

/* ---- coordinator helpers ------------------------------------------------- */

static int64_t sum_ps(size_t off)
{
    int64_t s = 0;
    for (int p = 0; p < O.procs; p++)
        s += atomic_load((_Atomic int64_t *)((char *)&S->ps[p] + off));
    return s;
}
#define SUM(field) sum_ps(offsetof(struct pstat, field))

static int64_t min_watermark(void)
{
    int64_t m = INT64_MAX;
    for (int p = 0; p < O.procs; p++) {
        int64_t w = atomic_load(&S->ps[p].watermark);
        if (w < m)
            m = w;
    }
    return m;
}

static int64_t lg_cpu_us(int64_t *per, int64_t *coord)
{
    int64_t s = cpu_self_us();
    *coord = s;
    for (int p = 0; p < O.procs; p++) {
        per[p] = atomic_load(&S->ps[p].cpu_us);
        s += per[p];
    }
    return s;
}

static int wait_ready(int64_t target, int64_t deadline)
{
    int64_t last = -1, t_last = now_us();
    while (now_us() < deadline) {
        int64_t done = SUM(ready) + SUM(failed);
        if (done >= target)
            return 0;
        if (done != last) {
            last = done;
            t_last = now_us();
        } else if (now_us() - t_last > 10000000) {
            say("  no connection progress for 10 s (%" PRId64 "/%" PRId64 ")\n", done, target);
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

/* RSS once it stopped moving (or after `settle` s) */
static long settled_rss(double settle)
{
    int64_t end = now_us() + (int64_t)(settle * 1e6);
    long prev = proc_rss_kb(O.server_pid);
    usleep(250000);
    for (int i = 0; i < 400 && now_us() < end; i++) {
        usleep(250000);
        long cur = proc_rss_kb(O.server_pid);
        if (cur >= 0 && prev >= 0 && labs(cur - prev) * 1000 <= prev && i >= 2)
            return cur;
        prev = cur;
    }
    return proc_rss_kb(O.server_pid);
}

static void set_phase(int ph, int64_t deadline)
{
    atomic_store(&S->phase, ph);
    for (int p = 0; p < O.procs; p++)
        while (atomic_load(&S->ps[p].phase_done) < ph && now_us() < deadline)
            usleep(2000);
}

/* ---- scenario drivers ---------------------------------------------------- */

struct result {
    long rss0, rss_end, rss_peak, rss_steps[MAX_STEPS];
    int64_t ready_steps[MAX_STEPS];
    double srv_cpu, lg_cpu, lg_max_proc, lg_coord;
    double sys_busy, sys_idle, sys_irq, sys_steal; /* % of one core, whole machine */
    double deliv_s, pubs_s, conns_s, rest_s;
    double deliv_counter_s; /* deliveries counted in the window (quantised by sweeps) */
    int deliv_by_wm;        /* deliv_s from watermark moves */
    int64_t expected, received, lost, extra;
    double marginal;
    int stalled;
};

static void print_hist(const char *what, const struct hist *h)
{
    printf("  %-22s n=%" PRIu64 " p50=%" PRIu64 "us p90=%" PRIu64 "us p99=%" PRIu64
           "us max=%" PRIu64 "us\n",
           what, h->n, hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99), h->max);
}

static int coord_main(pid_t *kids)
{
    struct result res;
    memset(&res, 0, sizeof res);
    int64_t t0 = now_us();
    int64_t deadline = t0 + (int64_t)(O.timeout * 1e6);
    C.ep = epoll_create1(EPOLL_CLOEXEC);
    C.ngroups = O.channels / O.cpp;
    C.pubs_ok = calloc((size_t)C.ngroups, sizeof *C.pubs_ok);
    C.pad = malloc((size_t)O.size + 1);
    if (!C.pubs_ok || !C.pad)
        die("out of memory");
    memset(C.pad, 'x', (size_t)O.size);
    C.pad[O.size] = 0;
    C.win_start = C.win_end = INT64_MAX;
    res.rss0 = proc_rss_kb(O.server_pid);
    res.rss_peak = res.rss0;
    int64_t total_conns = O.sc == SC_IDLE ? O.steps[O.nsteps - 1] : O.conns;

    say("loadgen: %s against %s (%s:%d), %d receiver process(es), server pid %d, RSS %ld kB\n",
        sc_names[O.sc], O.label, O.host, O.port, O.procs, O.server_pid, res.rss0);

    /* --- connect and subscribe ------------------------------------------- */
    if (O.sc == SC_IDLE) {
        for (int s = 0; s < O.nsteps; s++) {
            int64_t t = now_us();
            atomic_store(&S->target, O.steps[s]);
            wait_ready(O.steps[s], deadline);
            double secs = (double)(now_us() - t) / 1e6;
            res.ready_steps[s] = SUM(ready);
            res.rss_steps[s] = settled_rss(O.settle);
            say("  %" PRId64 " subscribed (%" PRId64 " failed) in %.1f s: server RSS %ld kB\n",
                res.ready_steps[s], SUM(failed), secs, res.rss_steps[s]);
        }
    } else if (O.sc != SC_STORM) {
        int64_t t = now_us();
        atomic_store(&S->target, total_conns);
        if (wait_ready(total_conns, deadline) < 0) {
            printf("RESULT scenario=%s label=%s error=not_ready ready=%" PRId64 " failed=%" PRId64
                   "\n",
                   sc_names[O.sc], O.label, SUM(ready), SUM(failed));
            atomic_store(&S->phase, PH_FINISH);
            for (int p = 0; p < O.procs; p++)
                kill(kids[p], SIGKILL);
            return 1;
        }
        say("  %" PRId64 " subscribed (%" PRId64 " failed) in %.1f s\n", SUM(ready), SUM(failed),
            (double)(now_us() - t) / 1e6);
        usleep(300000);
    }
    int64_t subs_fast = 0;
    int64_t *gsubs = calloc((size_t)C.ngroups, sizeof *gsubs);
    if (!gsubs)
        die("out of memory");
    for (int ch = 0; ch < O.channels; ch++) {
        int64_t v = atomic_load(&S->chan[ch]);
        gsubs[ch / O.cpp % C.ngroups] += v;
        subs_fast += v;
    }

    /* --- run --------------------------------------------------------------- */
    int publishing = O.sc == SC_FANOUT || O.sc == SC_MANY || O.sc == SC_REST || O.sc == SC_SLOW;
    if (publishing) {
        for (int i = 0; i < O.rest_conns; i++) {
            C.rc[i].fd = -1;
            if (rest_connect(&C.rc[i]) < 0)
                die("cannot connect to %s:%d for REST", O.host, O.port);
        }
        C.nrc = O.rest_conns;
    }
    if (O.sc == SC_IDLE) {
        res.rss_end = res.rss_steps[O.nsteps - 1];
    } else {
        atomic_store(&S->phase, PH_RUN);
        int64_t run_start = now_us();
        int64_t w_start = run_start + (int64_t)(O.warmup * 1e6);
        int64_t w_end = w_start + (int64_t)(O.duration * 1e6);
        int in_window = 0;
        int64_t d0 = 0, d1 = 0, srv0 = 0, srv1 = 0, lg0 = 0, lg1 = 0, s0 = 0, s1 = 0, co0 = 0,
                co1 = 0;
        int64_t per0[MAX_PROCS] = {0}, per1[MAX_PROCS] = {0};
        int64_t sy0[4] = {0}, sy1[4] = {0};
        int64_t next_sample = 0, next_print = run_start + 1000000;
        int64_t last_wm = -1, t_wm = run_start;
        /* first and last watermark moves inside the window: deliveries
         * completed between them, over an exact time span */
        int64_t wm_a = -1, t_a = 0, wm_b = -1, t_b = 0;
        int64_t k_next = 0, rate_base_k = 0, rate_t0 = run_start;
        struct epoll_event evs[MAX_REST];
        for (int guard = 0; guard < 100000000; guard++) {
            int64_t now = now_us();
            if (now >= deadline)
                break;
            if (!in_window && now >= w_start && C.win_start == INT64_MAX) {
                C.win_start = now;
                atomic_store(&S->win_start, now);
                d0 = SUM(delivered);
                s0 = SUM(storm_done);
                srv0 = proc_cpu_us(O.server_pid);
                lg0 = lg_cpu_us(per0, &co0);
                sys_cpu(sy0);
                C.acked_win_start = C.acked;
                in_window = 1;
            }
            if (in_window && now >= w_end) {
                C.win_end = now;
                atomic_store(&S->win_end, now);
                d1 = SUM(delivered);
                s1 = SUM(storm_done);
                srv1 = proc_cpu_us(O.server_pid);
                sys_cpu(sy1);
                usleep(120000); /* receivers refresh their CPU figure every 100 ms */
                lg1 = lg_cpu_us(per1, &co1);
                C.acked_win_end = C.acked;
                break;
            }
            /* publish */
            if (publishing) {
                int64_t wm = min_watermark();
                if (wm != last_wm) {
                    last_wm = wm;
                    t_wm = now;
                    if (in_window) {
                        if (wm_a < 0) {
                            wm_a = wm;
                            t_a = now;
                        }
                        wm_b = wm;
                        t_b = now;
                    }
                }
                for (int i = 0; i < C.nrc; i++) {
                    struct rconn *r = &C.rc[i];
                    if (r->busy || r->fd < 0)
                        continue;
                    if (O.rate > 0) {
                        int64_t due =
                            rate_t0 + (int64_t)((double)(k_next - rate_base_k) * 1e6 / O.rate);
                        if (now < due)
                            break;
                        if (now - due > 5000)
                            C.late++;
                    } else if (O.sc != SC_REST && k_next - wm >= O.window) {
                        break;
                    }
                    atomic_store(&S->sent, k_next + 1);
                    rest_publish(r, k_next);
                    k_next++;
                }
                if (O.sc != SC_REST && O.rate <= 0 && k_next > wm && now - t_wm > 5000000) {
                    say("  stalled: publish %" PRId64
                        " not delivered to every subscriber for 5 s\n",
                        wm);
                    res.stalled = 1;
                    break;
                }
            }
            int timeout = 5;
            if (O.rate > 0) {
                int64_t due = rate_t0 + (int64_t)((double)(k_next - rate_base_k) * 1e6 / O.rate);
                int64_t d = (due - now_us()) / 1000;
                timeout = d < 0 ? 0 : d > 5 ? 5 : (int)d;
            }
            int n = publishing ? epoll_wait(C.ep, evs, MAX_REST, timeout) : (usleep(5000), 0);
            for (int i = 0; i < n; i++) {
                struct rconn *r = &C.rc[evs[i].data.u32];
                if (r->fd < 0)
                    continue;
                if (evs[i].events & EPOLLOUT)
                    rest_writable(r);
                if (r->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    rest_readable(r);
            }
            if (now >= next_sample) {
                long rss = proc_rss_kb(O.server_pid);
                if (rss > res.rss_peak)
                    res.rss_peak = rss;
                next_sample = now + 100000;
            }
            if (now >= next_print) {
                say("  t=%4.1fs sent=%" PRId64 " acked=%" PRId64 " delivered=%" PRId64
                    " storm=%" PRId64 " rss=%ld kB\n",
                    (double)(now - run_start) / 1e6, k_next, C.acked, SUM(delivered),
                    SUM(storm_done), proc_rss_kb(O.server_pid));
                next_print = now + 1000000;
            }
        }
        double wsec = (double)(C.win_end - C.win_start) / 1e6;
        if (C.win_end != INT64_MAX && wsec > 0) {
            res.deliv_s = (double)(d1 - d0) / wsec;
            res.deliv_counter_s = res.deliv_s;
            if (O.rate <= 0 && O.sc != SC_REST && wm_b > wm_a && wm_a >= 0 && t_b > t_a) {
                int64_t n = 0;
                for (int64_t k = wm_a; k < wm_b; k++)
                    n += gsubs[k % C.ngroups];
                res.deliv_s = (double)n / ((double)(t_b - t_a) / 1e6);
                res.deliv_by_wm = 1;
            }
            res.conns_s = (double)(s1 - s0) / wsec;
            res.pubs_s = (double)(C.acked_win_end - C.acked_win_start) / wsec;
            res.srv_cpu = srv0 >= 0 && srv1 >= 0 ? (double)(srv1 - srv0) / 1e4 / wsec : -1;
            res.lg_cpu = (double)(lg1 - lg0) / 1e4 / wsec;
            res.lg_coord = (double)(co1 - co0) / 1e4 / wsec;
            for (int p = 0; p < O.procs; p++) {
                double pc = (double)(per1[p] - per0[p]) / 1e4 / wsec;
                if (pc > res.lg_max_proc)
                    res.lg_max_proc = pc;
            }
            if (res.lg_coord > res.lg_max_proc)
                res.lg_max_proc = res.lg_coord;
            double hz = (double)sysconf(_SC_CLK_TCK);
            res.sys_busy = (double)(sy1[0] - sy0[0]) / hz * 100 / wsec;
            res.sys_idle = (double)(sy1[1] - sy0[1]) / hz * 100 / wsec;
            res.sys_irq = (double)(sy1[2] - sy0[2]) / hz * 100 / wsec;
            res.sys_steal = (double)(sy1[3] - sy0[3]) / hz * 100 / wsec;
        } else {
            say("  the measuring window did not complete\n");
            res.stalled = 1;
        }
        /* stop publishing: wait for outstanding responses and deliveries */
        int64_t dl = now_us() + (int64_t)(O.drain * 1e6);
        if (dl > deadline)
            dl = deadline;
        struct epoll_event evs2[MAX_REST];
        for (int guard = 0; guard < 1000000 && now_us() < dl && publishing; guard++) {
            int busy = 0;
            for (int i = 0; i < C.nrc; i++)
                busy += C.rc[i].busy;
            int64_t exp_total = 0;
            for (int64_t g = 0; g < C.ngroups; g++)
                exp_total += C.pubs_ok[g] * gsubs[g];
            if (!busy && SUM(delivered) >= exp_total)
                break;
            int n = epoll_wait(C.ep, evs2, MAX_REST, 5);
            for (int i = 0; i < n; i++) {
                struct rconn *r = &C.rc[evs2[i].data.u32];
                if (r->fd < 0)
                    continue;
                if (evs2[i].events & EPOLLOUT)
                    rest_writable(r);
                if (r->fd >= 0 && (evs2[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    rest_readable(r);
            }
            long rss = proc_rss_kb(O.server_pid);
            if (rss > res.rss_peak)
                res.rss_peak = rss;
        }
        res.rss_end = proc_rss_kb(O.server_pid);
        if (O.sc == SC_SLOW) {
            set_phase(PH_DRAIN, deadline);
            int64_t sd = now_us() + 3000000;
            int64_t last = -1;
            for (int guard = 0; guard < 1000 && now_us() < sd; guard++) {
                usleep(100000);
                int64_t v = SUM(slow_delivered) + SUM(slow_4100) + SUM(slow_eof) + SUM(slow_reset);
                if (v == last && guard > 5)
                    break;
                last = v;
            }
        }
    }
    /* the peak covers every sample taken, not only those while publishing */
    for (int st = 0; O.sc == SC_IDLE && st < O.nsteps; st++)
        if (res.rss_steps[st] > res.rss_peak)
            res.rss_peak = res.rss_steps[st];
    if (res.rss_end > res.rss_peak)
        res.rss_peak = res.rss_end;
    set_phase(PH_FINISH, deadline + 5000000);
    /* reap receivers (ours, by pid) */
    int64_t rdl = now_us() + 10000000;
    for (int p = 0; p < O.procs; p++) {
        int st;
        while (waitpid(kids[p], &st, WNOHANG) == 0) {
            if (now_us() > rdl) {
                kill(kids[p], SIGKILL);
                waitpid(kids[p], &st, 0);
                break;
            }
            usleep(10000);
        }
    }

    /* --- results ----------------------------------------------------------- */
    struct hist lat, lat_all;
    memset(&lat, 0, sizeof lat);
    memset(&lat_all, 0, sizeof lat_all);
    for (int p = 0; p < O.procs; p++) {
        hist_merge(&lat, &S->ps[p].lat);
        hist_merge(&lat_all, &S->ps[p].lat_all);
    }
    if (O.sc == SC_STORM)
        lat = lat_all;
    for (int ch = 0; ch < O.channels; ch++) {
        int64_t e = C.pubs_ok[ch / O.cpp % C.ngroups] * atomic_load(&S->chan[ch]);
        int64_t r = atomic_load(&S->chan[O.channels + ch]);
        res.expected += e;
        res.received += r;
        if (r < e)
            res.lost += e - r;
        else
            res.extra += r - e;
    }
    int64_t ready = SUM(ready), failed = SUM(failed);
    int64_t ooo = SUM(ooo), dup = SUM(dup);
    printf("RESULT scenario=%s label=%s", sc_names[O.sc], O.label);
    printf(" conns=%" PRId64 " ready=%" PRId64 " failed=%" PRId64 " conn_err=%" PRId64
           " hs_err=%" PRId64 " sub_err=%" PRId64,
           total_conns, ready, failed, SUM(conn_err), SUM(hs_err), SUM(sub_err));
    printf(" rss0_kb=%ld rss_end_kb=%ld rss_peak_kb=%ld", res.rss0, res.rss_end, res.rss_peak);
    printf(" srv_cpu=%.0f lg_cpu=%.0f lg_max_proc=%.0f lg_coord=%.0f", res.srv_cpu, res.lg_cpu,
           res.lg_max_proc, res.lg_coord);
    double other = res.sys_busy - res.srv_cpu - res.lg_cpu;
    if (other < 0)
        other = 0;
    printf(" sys_busy=%.0f sys_idle=%.0f sys_softirq=%.0f sys_steal=%.0f sys_other=%.0f",
           res.sys_busy, res.sys_idle, res.sys_irq, res.sys_steal, other);
    if (O.sc == SC_IDLE) {
        int a = 0, b = O.nsteps - 1;
        double n0 = (double)res.ready_steps[a], n1 = (double)res.ready_steps[b];
        res.marginal =
            n1 > n0 ? (double)(res.rss_steps[b] - res.rss_steps[a]) * 1024.0 / (n1 - n0) : 0;
        for (int s = 0; s < O.nsteps; s++)
            printf(" n%d=%" PRId64 " rss_n%d_kb=%ld", s, res.ready_steps[s], s, res.rss_steps[s]);
        printf(" bytes_per_conn=%.0f", res.marginal);
    } else if (O.sc == SC_STORM) {
        printf(" conns_per_s=%.0f storm_err=%" PRId64, res.conns_s, SUM(storm_err));
        printf(" p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64,
               hist_pct(&lat, 50), hist_pct(&lat, 90), hist_pct(&lat, 99), lat.max);
    } else {
        printf(" subs=%" PRId64 " size=%d rate=%g window=%d", subs_fast, O.size, O.rate, O.window);
        printf(" deliv_per_s=%.0f deliv_counted_per_s=%.0f deliv_by_watermark=%d pubs_per_s=%.0f",
               res.deliv_s, res.deliv_counter_s, res.deliv_by_wm, res.pubs_s);
        printf(" p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64,
               hist_pct(&lat, 50), hist_pct(&lat, 90), hist_pct(&lat, 99), lat.max);
        printf(" all_p50_us=%" PRIu64 " all_p99_us=%" PRIu64, hist_pct(&lat_all, 50),
               hist_pct(&lat_all, 99));
        printf(" rest_p50_us=%" PRIu64 " rest_p99_us=%" PRIu64, hist_pct(&C.rest_lat, 50),
               hist_pct(&C.rest_lat, 99));
        printf(" published=%" PRId64 " rest_err=%" PRId64 " rest_reconnect=%" PRId64
               " late=%" PRId64,
               C.acked, C.rest_err, C.rest_reconnect, C.late);
        printf(" expected=%" PRId64 " received=%" PRId64 " lost=%" PRId64 " extra=%" PRId64
               " ooo=%" PRId64 " dup=%" PRId64,
               res.expected, res.received, res.lost, res.extra, ooo, dup);
        printf(" fast_closed=%" PRId64 " stalled=%d", SUM(fast_closed), res.stalled);
        if (O.sc == SC_SLOW)
            printf(" slow=%" PRId64 " slow_4100=%" PRId64 " slow_other_close=%" PRId64
                   " slow_eof=%" PRId64 " slow_reset=%" PRId64 " slow_open=%" PRId64
                   " slow_delivered=%" PRId64 " slow_expected=%" PRId64 " slow_closed=%" PRId64,
                   SUM(slow_total), SUM(slow_4100), SUM(slow_other_close), SUM(slow_eof),
                   SUM(slow_reset), SUM(slow_open), SUM(slow_delivered), C.acked * SUM(slow_total),
                   SUM(slow_4100) + SUM(slow_other_close) + SUM(slow_eof) + SUM(slow_reset));
    }
    printf(" close_4100=%" PRId64 " close_other=%" PRId64 " eof=%" PRId64 " reset=%" PRId64
           " write_err=%" PRId64 " badmsg=%" PRId64 "\n",
           SUM(close_4100), SUM(close_other), SUM(eof), SUM(reset), SUM(write_err), SUM(badmsg));

    /* human summary */
    printf("== %s / %s\n", sc_names[O.sc], O.label);
    if (O.sc == SC_IDLE) {
        printf("  server RSS: %ld kB before; ", res.rss0);
        for (int s = 0; s < O.nsteps; s++)
            printf("%s%ld kB at %" PRId64, s ? ", " : "", res.rss_steps[s], res.ready_steps[s]);
        printf("\n  marginal memory per subscribed connection: %.0f bytes\n", res.marginal);
    } else if (O.sc == SC_STORM) {
        printf("  %.0f connections/s (connect, handshake, subscribe, close); errors %" PRId64 "\n",
               res.conns_s, SUM(storm_err));
        print_hist("connect→subscribed", &lat);
    } else {
        printf("  %.0f deliveries/s, %.0f publishes/s acknowledged (%" PRId64 " subscribers)\n",
               res.deliv_s, res.pubs_s, subs_fast);
        print_hist("trigger→receipt", &lat);
        print_hist("  every delivery", &lat_all);
        print_hist("REST request", &C.rest_lat);
        printf("  lost %" PRId64 ", out of order %" PRId64 ", duplicates %" PRId64
               ", REST errors %" PRId64 "%s%s, REST reconnects %" PRId64 "\n",
               res.lost, ooo, dup, C.rest_err, C.rest_err ? " last: " : "", C.last_err,
               C.rest_reconnect);
        if (O.sc == SC_SLOW)
            printf("  slow consumers: %" PRId64 ", closed with 4100: %" PRId64
                   ", other close: %" PRId64 ", EOF: %" PRId64 ", reset: %" PRId64
                   ", still open: %" PRId64 "; they read %" PRId64 " of %" PRId64
                   " events; server RSS %ld → peak %ld kB\n",
                   SUM(slow_total), SUM(slow_4100), SUM(slow_other_close), SUM(slow_eof),
                   SUM(slow_reset), SUM(slow_open), SUM(slow_delivered), C.acked * SUM(slow_total),
                   res.rss0, res.rss_peak);
    }
    if (O.sc != SC_IDLE) {
        printf("  server CPU %.0f%%, load generator CPU %.0f%% (busiest process %.0f%%)\n",
               res.srv_cpu, res.lg_cpu, res.lg_max_proc);
        if (res.lg_max_proc >= 90)
            printf(
                "  NOTE: a load generator process used %.0f%% of a core: it, not the server, may "
                "be the bottleneck\n",
                res.lg_max_proc);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        printf("  machine: %.0f%% busy of %ld00%% (softirq/irq %.0f%%, steal %.0f%%; not server "
               "or load generator: %.0f%%), idle %.0f%%\n",
               res.sys_busy, ncpu, res.sys_irq, res.sys_steal, other, res.sys_idle);
        if (other > 25)
            printf("  NOTE: about %.0f%% of a core went to other processes or interrupts during "
                   "the window: the figure may be low\n",
                   other);
        if (res.sys_idle < 10.0 * (double)ncpu)
            printf("  NOTE: the machine was %.0f%% busy (server %.0f%%, load generator %.0f%%, "
                   "softirq %.0f%%): all %ld cores were in use, the figure is bounded by the "
                   "machine\n",
                   res.sys_busy, res.srv_cpu, res.lg_cpu, res.sys_irq, ncpu);
    }
    if (failed || res.lost || ooo || dup || res.stalled)
        printf("  PROBLEM: failed=%" PRId64 " lost=%" PRId64 " ooo=%" PRId64 " dup=%" PRId64
               " stalled=%d\n",
               failed, res.lost, ooo, dup, res.stalled);
    fflush(stdout);
    return (failed || res.lost || ooo || dup || res.stalled) ? 1 : 0;
}

/* ======================================================================== */

static int cmd_freeport(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        die("freeport: %s", strerror(errno));
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static int cmd_waitport(int port, double secs)
{
    int64_t end = now_us() + (int64_t)(secs * 1e6);
    for (int i = 0; i < 100000 && now_us() < end; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(50000);
    }
    return 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --scenario idle|fanout|many|rest|storm|slow [options]\n"
            "       loadgen freeport | waitport PORT SECONDS\n"
            "  --host A --port N --app-id ID --key K --secret S   target (127.0.0.0/8 only)\n"
            "  --server-pid PID   sample the server's RSS and CPU from /proc\n"
            "  --label NAME       name printed in RESULT lines\n"
            "  --conns N          subscribing connections (default 10000)\n"
            "  --steps A,B,...    idle: connection counts to sample RSS at\n"
            "  --channels N       channels (default: idle/rest one per connection, fan-out 1)\n"
            "  --subs-per-conn N  channels each connection subscribes to (<= %d)\n"
            "  --chan-per-pub N   channels per REST publish (<= 100)\n"
            "  --size B           bytes of each event's data string (default 1024)\n"
            "  --rate R           publishes/s; 0 = flat out within --window (default)\n"
            "  --window W         publishes in flight when flat out (default 16)\n"
            "  --duration S --warmup S --drain S --settle S --timeout S\n"
            "  --rest-conns N     REST keep-alive connections (default 4)\n"
            "  --procs N          receiver processes (default 1)\n"
            "  --sources N        source addresses 127.0.0.2.. (default 8)\n"
            "  --concurrency N    connection attempts in flight per receiver (default 256)\n"
            "  --slow-pct P       slow: percent of subscribers that stop reading (default 10)\n"
            "  --slow-rcvbuf B    slow: SO_RCVBUF of those (default 4096)\n"
            "  --bulk-interval-ms N  read non-probe sockets in sweeps N ms apart while\n"
            "                     publishing (probes, 1 in 100, are always read at once)\n"
            "  --quiet\n",
            MAX_SPC);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "freeport") == 0)
        return cmd_freeport();
    if (argc >= 4 && strcmp(argv[1], "waitport") == 0)
        return cmd_waitport(atoi(argv[2]), atof(argv[3]));
    static const struct option lo[] = {
        {"scenario", 1, 0, 'S'},      {"host", 1, 0, 'h'},
        {"port", 1, 0, 'p'},          {"app-id", 1, 0, 'i'},
        {"key", 1, 0, 'k'},           {"secret", 1, 0, 's'},
        {"label", 1, 0, 'l'},         {"conns", 1, 0, 'n'},
        {"steps", 1, 0, 'T'},         {"channels", 1, 0, 'c'},
        {"subs-per-conn", 1, 0, 'u'}, {"chan-per-pub", 1, 0, 'P'},
        {"size", 1, 0, 'z'},          {"rate", 1, 0, 'r'},
        {"window", 1, 0, 'w'},        {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'W'},        {"drain", 1, 0, 'D'},
        {"settle", 1, 0, 'e'},        {"timeout", 1, 0, 't'},
        {"rest-conns", 1, 0, 'R'},    {"procs", 1, 0, 'j'},
        {"sources", 1, 0, 'o'},       {"server-pid", 1, 0, 'x'},
        {"slow-pct", 1, 0, 'L'},      {"slow-rcvbuf", 1, 0, 'B'},
        {"concurrency", 1, 0, 'C'},   {"bulk-interval-ms", 1, 0, 'I'},
        {"quiet", 0, 0, 'q'},         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'S': {
            int found = 0;
            for (int i = 0; i < 6; i++)
                if (strcmp(optarg, sc_names[i]) == 0) {
                    O.sc = (enum scenario)i;
                    found = 1;
                }
            if (!found)
                usage();
            break;
        }
        case 'h':
            O.host = optarg;
            break;
        case 'p':
            O.port = atoi(optarg);
            break;
        case 'i':
            O.app_id = optarg;
            break;
        case 'k':
            O.key = optarg;
            break;
        case 's':
            O.secret = optarg;
            break;
        case 'l':
            O.label = optarg;
            break;
        case 'n':
            O.conns = atoi(optarg);
            break;
        case 'T': {
            char *p = optarg;
            O.nsteps = 0;
            while (*p && O.nsteps < MAX_STEPS) {
                O.steps[O.nsteps++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
                else
                    break;
            }
            break;
        }
        case 'c':
            O.channels = atoi(optarg);
            break;
        case 'u':
            O.spc = atoi(optarg);
            break;
        case 'P':
            O.cpp = atoi(optarg);
            break;
        case 'z':
            O.size = atoi(optarg);
            break;
        case 'r':
            O.rate = atof(optarg);
            break;
        case 'w':
            O.window = atoi(optarg);
            break;
        case 'd':
            O.duration = atof(optarg);
            break;
        case 'W':
            O.warmup = atof(optarg);
            break;
        case 'D':
            O.drain = atof(optarg);
            break;
        case 'e':
            O.settle = atof(optarg);
            break;
        case 't':
            O.timeout = atof(optarg);
            break;
        case 'R':
            O.rest_conns = atoi(optarg);
            break;
        case 'j':
            O.procs = atoi(optarg);
            break;
        case 'o':
            O.sources = atoi(optarg);
            break;
        case 'x':
            O.server_pid = atoi(optarg);
            break;
        case 'L':
            O.slow_pct = atoi(optarg);
            break;
        case 'B':
            O.slow_rcvbuf = atoi(optarg);
            break;
        case 'C':
            O.concurrency = atoi(optarg);
            break;
        case 'I':
            O.bulk_interval_ms = atoi(optarg);
            break;
        case 'q':
            O.quiet = 1;
            break;
        default:
            usage();
        }
    }
    struct in_addr a;
    if (parse_host(O.host, &a) < 0)
        die("--host must be an IPv4 address in 127.0.0.0/8");
    if (O.sc == SC_IDLE) {
        if (O.nsteps == 0) {
            O.steps[0] = 5000;
            O.steps[1] = O.conns;
            O.nsteps = 2;
        }
        O.conns = O.steps[O.nsteps - 1];
        for (int s = 1; s < O.nsteps; s++)
            if (O.steps[s] <= O.steps[s - 1])
                die("--steps must grow");
    }
    if (O.channels <= 0)
        O.channels = (O.sc == SC_IDLE || O.sc == SC_REST) ? O.conns : O.sc == SC_MANY ? O.conns : 1;
    if (O.procs < 1 || O.procs > MAX_PROCS || O.conns < 1 || O.spc < 1 || O.spc > MAX_SPC ||
        O.cpp < 1 || O.cpp > 100 || O.channels % O.cpp || O.sources < 1 || O.sources > 200 ||
        O.rest_conns < 1 || O.rest_conns > MAX_REST || O.window < 1 || O.window > RING / 2 ||
        O.size < 0 || O.size > 1 << 20 || O.duration <= 0 || O.timeout <= 0 || O.concurrency < 1 ||
        O.port < 1 || O.port > 65535)
        die("bad option values (see --help)");
    if (O.duration + O.warmup + O.drain + 5 > O.timeout)
        O.timeout = O.duration + O.warmup + O.drain + 60;

    /* file descriptors: each receiver needs its share of connections */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    long per = O.sc == SC_STORM ? O.concurrency : (O.conns + O.procs - 1) / O.procs;
    if ((rlim_t)per + 32 > rl.rlim_cur)
        die("%ld connections per process exceed the open-file limit %llu: use --procs %ld", per,
            (unsigned long long)rl.rlim_cur,
            (long)((O.conns + (long)rl.rlim_cur - 64) / ((long)rl.rlim_cur - 64)));

    size_t shsz = sizeof(struct shm) + 2 * (size_t)O.channels * sizeof(int64_t);
    S = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    atomic_store(&S->win_start, INT64_MAX);
    atomic_store(&S->win_end, INT64_MAX);
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t kids[MAX_PROCS];
    for (int p = 0; p < O.procs; p++) {
        atomic_store(&S->ps[p].phase_done, -1);
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            rx_main(p);
            _exit(0);
        }
        kids[p] = pid;
    }
    alarm((unsigned)O.timeout + 30);
    return coord_main(kids);
}
