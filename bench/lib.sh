# bench/lib.sh — what the benchmark scripts share (sourced by run.sh,
# history.sh and soak.sh, from the repository root, after they define log).

# bench_watchdog MAX_SECONDS: sets T_START and LOAD_START and starts a
# watchdog that sends SIGTERM to this script after MAX_SECONDS; its pid is
# WATCHDOG (kill it on exit).
bench_watchdog() {
    local max="$1" main_pid=$$
    T_START=$(date +%s)
    LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
    (
        end=$((T_START + max))
        while kill -0 "$main_pid" 2>/dev/null && (($(date +%s) < end)); do sleep 1; done
        if kill -0 "$main_pid" 2>/dev/null; then
            log "time limit of ${max}s reached, stopping"
            kill -TERM "$main_pid"
        fi
    ) &
    WATCHDOG=$!
}

# bench_build_loadgen LG: builds the load generator when it is missing or
# older than one of its sources.
bench_build_loadgen() {
    local lg="$1" f stale=0
    mkdir -p "$(dirname "$lg")"
    [[ -x "$lg" ]] || stale=1
    for f in bench/loadgen/*.[ch]; do [[ "$f" -nt "$lg" ]] && stale=1; done
    ((stale)) || return 0
    log "building $lg"
    ${CC:-cc} -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow \
        bench/loadgen/*.c -o "$lg" -lcrypto -lm
}

soketi_installed() { [[ -f "$SOKETI_PEER_DIR/node_modules/@soketi/soketi/bin/server.js" ]]; }
