/*
 * proc.c — the server's RSS and CPU from /proc, the machine's from /proc/stat,
 * and the load generator's own CPU (getrusage, summed over its processes).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen.h"

int64_t proc_self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* ---- /proc sampling of the server ---------------------------------------- */

long proc_rss_kb(int pid)
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
int64_t proc_cpu_us(int pid)
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
void proc_sys_cpu(int64_t out[4])
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

/* ---- CPU and RSS as the coordinator samples them -------------------------- */

int64_t proc_loadgen_cpu_us(int64_t *per, int64_t *coord)
{
    int64_t s = proc_self_cpu_us();
    *coord = s;
    for (int p = 0; p < O.procs; p++) {
        per[p] = atomic_load(&S->ps[p].cpu_us);
        s += per[p];
    }
    return s;
}

/* RSS once it stopped moving (or after `settle` s) */
long proc_settled_rss(double settle)
{
    int64_t end = lg_now_us() + (int64_t)(settle * 1e6);
    long prev = proc_rss_kb(O.server_pid);
    usleep(250000);
    for (int i = 0; i < 400 && lg_now_us() < end; i++) {
        usleep(250000);
        long cur = proc_rss_kb(O.server_pid);
        if (cur >= 0 && prev >= 0 && labs(cur - prev) * 1000 <= prev && i >= 2)
            return cur;
        prev = cur;
    }
    return proc_rss_kb(O.server_pid);
}
