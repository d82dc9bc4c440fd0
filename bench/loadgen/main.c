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
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

const char *const sc_names[] = {"idle", "fanout", "many", "rest", "storm", "slow"};

struct opts O = {
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

struct shm *S;

static int cmd_freeport(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        lg_die("freeport: %s", strerror(errno));
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static int cmd_waitport(int port, double secs)
{
    int64_t end = lg_now_us() + (int64_t)(secs * 1e6);
    for (int i = 0; i < 100000 && lg_now_us() < end; i++) {
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
    if (lg_parse_host(O.host, &a) < 0)
        lg_die("--host must be an IPv4 address in 127.0.0.0/8");
    if (O.sc == SC_IDLE) {
        if (O.nsteps == 0) {
            O.steps[0] = 5000;
            O.steps[1] = O.conns;
            O.nsteps = 2;
        }
        O.conns = O.steps[O.nsteps - 1];
        for (int s = 1; s < O.nsteps; s++)
            if (O.steps[s] <= O.steps[s - 1])
                lg_die("--steps must grow");
    }
    if (O.channels <= 0)
        O.channels = (O.sc == SC_IDLE || O.sc == SC_REST) ? O.conns : O.sc == SC_MANY ? O.conns : 1;
    if (O.procs < 1 || O.procs > MAX_PROCS || O.conns < 1 || O.spc < 1 || O.spc > MAX_SPC ||
        O.cpp < 1 || O.cpp > 100 || O.channels % O.cpp || O.sources < 1 || O.sources > 200 ||
        O.rest_conns < 1 || O.rest_conns > MAX_REST || O.window < 1 || O.window > RING / 2 ||
        O.size < 0 || O.size > 1 << 20 || O.duration <= 0 || O.timeout <= 0 || O.concurrency < 1 ||
        O.port < 1 || O.port > 65535)
        lg_die("bad option values (see --help)");
    if (O.duration + O.warmup + O.drain + 5 > O.timeout)
        O.timeout = O.duration + O.warmup + O.drain + 60;

    /* file descriptors: each receiver needs its share of connections */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    long per = O.sc == SC_STORM ? O.concurrency : (O.conns + O.procs - 1) / O.procs;
    if ((rlim_t)per + 32 > rl.rlim_cur)
        lg_die("%ld connections per process exceed the open-file limit %llu: use --procs %ld", per,
               (unsigned long long)rl.rlim_cur,
               (long)((O.conns + (long)rl.rlim_cur - 64) / ((long)rl.rlim_cur - 64)));

    size_t shsz = sizeof(struct shm) + 2 * (size_t)O.channels * sizeof(int64_t);
    S = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED)
        lg_die("mmap: %s", strerror(errno));
    atomic_store(&S->win_start, INT64_MAX);
    atomic_store(&S->win_end, INT64_MAX);
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t kids[MAX_PROCS];
    for (int p = 0; p < O.procs; p++) {
        atomic_store(&S->ps[p].phase_done, -1);
        pid_t pid = fork();
        if (pid < 0)
            lg_die("fork: %s", strerror(errno));
        if (pid == 0) {
            rx_main(p);
            _exit(0);
        }
        kids[p] = pid;
    }
    alarm((unsigned)O.timeout + 30);
    return coord_main(kids);
}
