/*
 * rx.c — a receiver process: opens its share of the subscriber connections,
 * reads them (probes promptly, the rest in sweeps), advances its watermark
 * and publishes its counters to the shared page.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loadgen.h"

struct rx R;

/* global connection number of local slot i (idle/fan-out layouts) */
static int gidx_of_slot(int i)
{
    return i * O.procs + R.p;
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

void rx_main(int p)
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
        lg_die("receiver %d: out of memory", p);
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
    int64_t deadline = lg_now_us() + (int64_t)(O.timeout * 1e6) + 5000000;
    struct epoll_event evs[MAX_EVENTS];
    int sweeping = 1;
    int64_t next_sweep = 0;
    while (lg_now_us() < deadline) {
        int ph = atomic_load(&S->phase);
        if (ph != R.phase) {
            if (ph == PH_RUN && O.sc == SC_SLOW)
                for (int i = 0; i < R.opened; i++)
                    if (R.c[i].slow)
                        conn_set_paused(&R.c[i], 1);
            if (ph == PH_DRAIN)
                for (int i = 0; i < R.opened; i++)
                    conn_set_paused(&R.c[i], 0);
            R.phase = ph;
            atomic_store(&R.ps->phase_done, ph);
        }
        if (ph >= PH_FINISH)
            break;
        R.win_start = atomic_load_explicit(&S->win_start, memory_order_relaxed);
        R.win_end = atomic_load_explicit(&S->win_end, memory_order_relaxed);
        int64_t now = lg_now_us();
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
        int64_t sweep_end = lg_now_us() + 20000;
        for (int round = 0; round < 4096; round++) {
            int n1 = epoll_wait(R.ep_probe, evs, MAX_EVENTS, 0);
            rx_handle(evs, n1);
            int n2 = sweeping ? epoll_wait(R.ep_bulk, evs, BULK_CHUNK, 0) : 0;
            rx_handle(evs, n2);
            if (sweeping && n2 <= 0 && ivl > 0) {
                sweeping = 0;
                next_sweep = lg_now_us() + ivl;
            }
            if ((n1 <= 0 && n2 <= 0) || lg_now_us() > sweep_end)
                break;
        }
        if (O.sc != SC_STORM && O.sc != SC_IDLE)
            rx_advance_watermark();
        rx_publish_counters();
        if (now >= R.next_cpu) {
            atomic_store(&R.ps->cpu_us, proc_self_cpu_us());
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
                atomic_fetch_add(&S->chan[R.nch + conn_chan_of(c->gidx, j)], r);
        }
    }
    rx_publish_counters();
    R.ps->lat = R.lat;
    R.ps->lat_all = R.lat_all;
    atomic_store(&R.ps->cpu_us, proc_self_cpu_us());
    atomic_store(&R.ps->phase_done, PH_FINISH);
    /* sockets close with the process */
}
