/*
 * stats.c — latency histograms and percentiles, sums over the receivers'
 * counters, and the RESULT line (bench/run.sh parses it) and human summary.
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

/* ---- latency histogram: exact below 64 µs, then 32 buckets per octave --- */

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

void hist_add(struct hist *h, uint64_t v)
{
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_bucket(v)]++;
}

void hist_merge(struct hist *d, const struct hist *s)
{
    d->n += s->n;
    d->sum += s->sum;
    if (s->max > d->max)
        d->max = s->max;
    for (int i = 0; i < NBUCKET; i++)
        d->b[i] += s->b[i];
}

uint64_t hist_pct(const struct hist *h, double p)
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

/* ---- counters summed over the receivers ---------------------------------- */

int64_t stats_sum_ps(size_t off)
{
    int64_t s = 0;
    for (int p = 0; p < O.procs; p++)
        s += atomic_load((_Atomic int64_t *)((char *)&S->ps[p] + off));
    return s;
}

/* ---- results ------------------------------------------------------------- */

static void print_hist(const char *what, const struct hist *h)
{
    printf("  %-22s n=%" PRIu64 " p50=%" PRIu64 "us p90=%" PRIu64 "us p99=%" PRIu64
           "us max=%" PRIu64 "us\n",
           what, h->n, hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99), h->max);
}

int stats_report(struct result *res, int64_t total_conns, int64_t subs_fast)
{
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
        res->expected += e;
        res->received += r;
        if (r < e)
            res->lost += e - r;
        else
            res->extra += r - e;
    }
    int64_t ready = SUM(ready), failed = SUM(failed);
    int64_t ooo = SUM(ooo), dup = SUM(dup);
    printf("RESULT scenario=%s label=%s", sc_names[O.sc], O.label);
    printf(" conns=%" PRId64 " ready=%" PRId64 " failed=%" PRId64 " conn_err=%" PRId64
           " hs_err=%" PRId64 " sub_err=%" PRId64,
           total_conns, ready, failed, SUM(conn_err), SUM(hs_err), SUM(sub_err));
    printf(" rss0_kb=%ld rss_end_kb=%ld rss_peak_kb=%ld", res->rss0, res->rss_end, res->rss_peak);
    printf(" srv_cpu=%.0f lg_cpu=%.0f lg_max_proc=%.0f lg_coord=%.0f", res->srv_cpu, res->lg_cpu,
           res->lg_max_proc, res->lg_coord);
    double other = res->sys_busy - res->srv_cpu - res->lg_cpu;
    if (other < 0)
        other = 0;
    printf(" sys_busy=%.0f sys_idle=%.0f sys_softirq=%.0f sys_steal=%.0f sys_other=%.0f",
           res->sys_busy, res->sys_idle, res->sys_irq, res->sys_steal, other);
    if (O.sc == SC_IDLE) {
        int a = 0, b = O.nsteps - 1;
        double n0 = (double)res->ready_steps[a], n1 = (double)res->ready_steps[b];
        res->marginal =
            n1 > n0 ? (double)(res->rss_steps[b] - res->rss_steps[a]) * 1024.0 / (n1 - n0) : 0;
        for (int s = 0; s < O.nsteps; s++)
            printf(" n%d=%" PRId64 " rss_n%d_kb=%ld", s, res->ready_steps[s], s, res->rss_steps[s]);
        printf(" bytes_per_conn=%.0f", res->marginal);
    } else if (O.sc == SC_STORM) {
        printf(" conns_per_s=%.0f storm_err=%" PRId64, res->conns_s, SUM(storm_err));
        printf(" p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64,
               hist_pct(&lat, 50), hist_pct(&lat, 90), hist_pct(&lat, 99), lat.max);
    } else {
        printf(" subs=%" PRId64 " size=%d rate=%g window=%d", subs_fast, O.size, O.rate, O.window);
        printf(" deliv_per_s=%.0f deliv_counted_per_s=%.0f deliv_by_watermark=%d pubs_per_s=%.0f",
               res->deliv_s, res->deliv_counter_s, res->deliv_by_wm, res->pubs_s);
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
               res->expected, res->received, res->lost, res->extra, ooo, dup);
        printf(" fast_closed=%" PRId64 " stalled=%d", SUM(fast_closed), res->stalled);
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
        printf("  server RSS: %ld kB before; ", res->rss0);
        for (int s = 0; s < O.nsteps; s++)
            printf("%s%ld kB at %" PRId64, s ? ", " : "", res->rss_steps[s], res->ready_steps[s]);
        printf("\n  marginal memory per subscribed connection: %.0f bytes\n", res->marginal);
    } else if (O.sc == SC_STORM) {
        printf("  %.0f connections/s (connect, handshake, subscribe, close); errors %" PRId64 "\n",
               res->conns_s, SUM(storm_err));
        print_hist("connect→subscribed", &lat);
    } else {
        printf("  %.0f deliveries/s, %.0f publishes/s acknowledged (%" PRId64 " subscribers)\n",
               res->deliv_s, res->pubs_s, subs_fast);
        print_hist("trigger→receipt", &lat);
        print_hist("  every delivery", &lat_all);
        print_hist("REST request", &C.rest_lat);
        printf("  lost %" PRId64 ", out of order %" PRId64 ", duplicates %" PRId64
               ", REST errors %" PRId64 "%s%s, REST reconnects %" PRId64 "\n",
               res->lost, ooo, dup, C.rest_err, C.rest_err ? " last: " : "", C.last_err,
               C.rest_reconnect);
        if (O.sc == SC_SLOW)
            printf("  slow consumers: %" PRId64 ", closed with 4100: %" PRId64
                   ", other close: %" PRId64 ", EOF: %" PRId64 ", reset: %" PRId64
                   ", still open: %" PRId64 "; they read %" PRId64 " of %" PRId64
                   " events; server RSS %ld → peak %ld kB\n",
                   SUM(slow_total), SUM(slow_4100), SUM(slow_other_close), SUM(slow_eof),
                   SUM(slow_reset), SUM(slow_open), SUM(slow_delivered), C.acked * SUM(slow_total),
                   res->rss0, res->rss_peak);
    }
    if (O.sc != SC_IDLE) {
        printf("  server CPU %.0f%%, load generator CPU %.0f%% (busiest process %.0f%%)\n",
               res->srv_cpu, res->lg_cpu, res->lg_max_proc);
        if (res->lg_max_proc >= 90)
            printf(
                "  NOTE: a load generator process used %.0f%% of a core: it, not the server, may "
                "be the bottleneck\n",
                res->lg_max_proc);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        printf("  machine: %.0f%% busy of %ld00%% (softirq/irq %.0f%%, steal %.0f%%; not server "
               "or load generator: %.0f%%), idle %.0f%%\n",
               res->sys_busy, ncpu, res->sys_irq, res->sys_steal, other, res->sys_idle);
        if (other > 25)
            printf("  NOTE: about %.0f%% of a core went to other processes or interrupts during "
                   "the window: the figure may be low\n",
                   other);
        if (res->sys_idle < 10.0 * (double)ncpu)
            printf("  NOTE: the machine was %.0f%% busy (server %.0f%%, load generator %.0f%%, "
                   "softirq %.0f%%): all %ld cores were in use, the figure is bounded by the "
                   "machine\n",
                   res->sys_busy, res->srv_cpu, res->lg_cpu, res->sys_irq, ncpu);
    }
    if (failed || res->lost || ooo || dup || res->stalled)
        printf("  PROBLEM: failed=%" PRId64 " lost=%" PRId64 " ooo=%" PRId64 " dup=%" PRId64
               " stalled=%d\n",
               failed, res->lost, ooo, dup, res->stalled);
    fflush(stdout);
    return (failed || res->lost || ooo || dup || res->stalled) ? 1 : 0;
}
