/*
 * scenario.c — the coordinator: connects the subscribers through the receivers,
 * runs the scenario (publishing, storm or idle steps) through its phases and
 * measuring window, drains, and reaps the receivers.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loadgen.h"

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

static int wait_ready(int64_t target, int64_t deadline)
{
    int64_t last = -1, t_last = lg_now_us();
    while (lg_now_us() < deadline) {
        int64_t done = SUM(ready) + SUM(failed);
        if (done >= target)
            return 0;
        if (done != last) {
            last = done;
            t_last = lg_now_us();
        } else if (lg_now_us() - t_last > 10000000) {
            lg_say("  no connection progress for 10 s (%" PRId64 "/%" PRId64 ")\n", done, target);
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

static void set_phase(int ph, int64_t deadline)
{
    atomic_store(&S->phase, ph);
    for (int p = 0; p < O.procs; p++)
        while (atomic_load(&S->ps[p].phase_done) < ph && lg_now_us() < deadline)
            usleep(2000);
}

/* ---- scenario drivers ---------------------------------------------------- */

int coord_main(pid_t *kids)
{
    struct result res;
    memset(&res, 0, sizeof res);
    int64_t t0 = lg_now_us();
    int64_t deadline = t0 + (int64_t)(O.timeout * 1e6);
    C.ep = epoll_create1(EPOLL_CLOEXEC);
    C.ngroups = O.channels / O.cpp;
    C.pubs_ok = calloc((size_t)C.ngroups, sizeof *C.pubs_ok);
    C.pad = malloc((size_t)O.size + 1);
    if (!C.pubs_ok || !C.pad)
        lg_die("out of memory");
    memset(C.pad, 'x', (size_t)O.size);
    C.pad[O.size] = 0;
    C.win_start = C.win_end = INT64_MAX;
    res.rss0 = proc_rss_kb(O.server_pid);
    res.rss_peak = res.rss0;
    int64_t total_conns = O.sc == SC_IDLE ? O.steps[O.nsteps - 1] : O.conns;

    lg_say("loadgen: %s against %s (%s:%d), %d receiver process(es), server pid %d, RSS %ld kB\n",
           sc_names[O.sc], O.label, O.host, O.port, O.procs, O.server_pid, res.rss0);

    /* --- connect and subscribe ------------------------------------------- */
    if (O.sc == SC_IDLE) {
        for (int s = 0; s < O.nsteps; s++) {
            int64_t t = lg_now_us();
            atomic_store(&S->target, O.steps[s]);
            wait_ready(O.steps[s], deadline);
            double secs = (double)(lg_now_us() - t) / 1e6;
            res.ready_steps[s] = SUM(ready);
            res.rss_steps[s] = proc_settled_rss(O.settle);
            lg_say("  %" PRId64 " subscribed (%" PRId64 " failed) in %.1f s: server RSS %ld kB\n",
                   res.ready_steps[s], SUM(failed), secs, res.rss_steps[s]);
        }
    } else if (O.sc != SC_STORM) {
        int64_t t = lg_now_us();
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
        lg_say("  %" PRId64 " subscribed (%" PRId64 " failed) in %.1f s\n", SUM(ready), SUM(failed),
               (double)(lg_now_us() - t) / 1e6);
        usleep(300000);
    }
    int64_t subs_fast = 0;
    int64_t *gsubs = calloc((size_t)C.ngroups, sizeof *gsubs);
    if (!gsubs)
        lg_die("out of memory");
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
                lg_die("cannot connect to %s:%d for REST", O.host, O.port);
        }
        C.nrc = O.rest_conns;
    }
    if (O.sc == SC_IDLE) {
        res.rss_end = res.rss_steps[O.nsteps - 1];
    } else {
        atomic_store(&S->phase, PH_RUN);
        int64_t run_start = lg_now_us();
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
            int64_t now = lg_now_us();
            if (now >= deadline)
                break;
            if (!in_window && now >= w_start && C.win_start == INT64_MAX) {
                C.win_start = now;
                atomic_store(&S->win_start, now);
                d0 = SUM(delivered);
                s0 = SUM(storm_done);
                srv0 = proc_cpu_us(O.server_pid);
                lg0 = proc_loadgen_cpu_us(per0, &co0);
                proc_sys_cpu(sy0);
                C.acked_win_start = C.acked;
                in_window = 1;
            }
            if (in_window && now >= w_end) {
                C.win_end = now;
                atomic_store(&S->win_end, now);
                d1 = SUM(delivered);
                s1 = SUM(storm_done);
                srv1 = proc_cpu_us(O.server_pid);
                proc_sys_cpu(sy1);
                usleep(120000); /* receivers refresh their CPU figure every 100 ms */
                lg1 = proc_loadgen_cpu_us(per1, &co1);
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
                    lg_say("  stalled: publish %" PRId64
                           " not delivered to every subscriber for 5 s\n",
                           wm);
                    res.stalled = 1;
                    break;
                }
            }
            int timeout = 5;
            if (O.rate > 0) {
                int64_t due = rate_t0 + (int64_t)((double)(k_next - rate_base_k) * 1e6 / O.rate);
                int64_t d = (due - lg_now_us()) / 1000;
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
                lg_say("  t=%4.1fs sent=%" PRId64 " acked=%" PRId64 " delivered=%" PRId64
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
            lg_say("  the measuring window did not complete\n");
            res.stalled = 1;
        }
        /* stop publishing: wait for outstanding responses and deliveries */
        int64_t dl = lg_now_us() + (int64_t)(O.drain * 1e6);
        if (dl > deadline)
            dl = deadline;
        struct epoll_event evs2[MAX_REST];
        for (int guard = 0; guard < 1000000 && lg_now_us() < dl && publishing; guard++) {
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
            int64_t sd = lg_now_us() + 3000000;
            int64_t last = -1;
            for (int guard = 0; guard < 1000 && lg_now_us() < sd; guard++) {
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
    int64_t rdl = lg_now_us() + 10000000;
    for (int p = 0; p < O.procs; p++) {
        int st;
        while (waitpid(kids[p], &st, WNOHANG) == 0) {
            if (lg_now_us() > rdl) {
                kill(kids[p], SIGKILL);
                waitpid(kids[p], &st, 0);
                break;
            }
            usleep(10000);
        }
    }
    return stats_report(&res, total_conns, subs_fast);
}
