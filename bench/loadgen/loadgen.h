/*
 * loadgen.h — what the parts of the load generator share. Internal to
 * bench/loadgen/; see main.c for what the program does.
 *
 *   main.c      options, usage, the freeport/waitport helpers, fork
 *   util.c      time, logging, small parsing helpers (lg_*)
 *   proc.c      /proc sampling of the server, CPU accounting (proc_*)
 *   ws.c        WebSocket subscriber connections: handshake, frames (conn_*)
 *   rx.c        receiver processes: connection pacing, watermark (rx_*)
 *   rest.c      REST publisher with request signing (rest_*)
 *   scenario.c  coordinator: phases and scenario drivers (coord_main)
 *   stats.c     latency histograms, RESULT line and summary (hist_*, stats_*)
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct in_addr;

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
extern const char *const sc_names[]; /* indexed by enum scenario */

enum phase { PH_CONNECT, PH_RUN, PH_DRAIN, PH_FINISH };

struct opts {
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
};
extern struct opts O;

/* ---- latency histogram: exact below 64 µs, then 32 buckets per octave --- */

struct hist {
    uint64_t n, max, sum;
    uint64_t b[NBUCKET];
};

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

extern struct shm *S; /* mmap(MAP_SHARED) before the receivers fork */

#define SUM(field) stats_sum_ps(offsetof(struct pstat, field))

/* ---- receiver processes (ws.c, rx.c) ------------------------------------ */

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

struct rx {
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
};
extern struct rx R; /* the state of this receiver process */

/* ---- coordinator (rest.c, scenario.c, stats.c) -------------------------- */

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

struct coord {
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
};
extern struct coord C; /* the coordinator process */

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

/* ---- functions ----------------------------------------------------------- */

/* util.c */
int64_t lg_now_us(void);
_Noreturn void lg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lg_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int lg_parse_host(const char *h, struct in_addr *a);
const char *lg_find(const char *hay, size_t n, const char *needle);

/* proc.c */
int64_t proc_self_cpu_us(void);
long proc_rss_kb(int pid);
int64_t proc_cpu_us(int pid);
void proc_sys_cpu(int64_t out[4]);
int64_t proc_loadgen_cpu_us(int64_t *per, int64_t *coord);
long proc_settled_rss(double settle);

/* ws.c */
int conn_chan_of(int gidx, int j);
int conn_start(struct conn *c, int gidx, int slow);
void conn_readable(struct conn *c);
void conn_writable(struct conn *c);
void conn_set_paused(struct conn *c, int paused);

/* rx.c */
void rx_main(int p);

/* rest.c */
int rest_connect(struct rconn *r);
int rest_publish(struct rconn *r, int64_t k);
void rest_writable(struct rconn *r);
void rest_readable(struct rconn *r);

/* scenario.c */
int coord_main(pid_t *kids);

/* stats.c */
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *d, const struct hist *s);
uint64_t hist_pct(const struct hist *h, double p);
int64_t stats_sum_ps(size_t off);
int stats_report(struct result *res, int64_t total_conns, int64_t subs_fast);

#endif
