# bench/lib.sh — what the benchmark scripts share (sourced by run.sh,
# history.sh, chat.sh, fallbacks.sh and soak.sh, from the repository root,
# after they define log).

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

# bench_stop_server and bench_alive_check, for the scripts that start one server at a
# time (history.sh, chat.sh, fallbacks.sh): they use SRV_PID and SRV_NAME
# (set by the script's start_server), TMP/server.log, RAW and NOTES.
bench_stop_server() { # SIGTERM, 5 s, then SIGKILL; an unclean end goes to the notes
    [[ -n "$SRV_PID" ]] || return 0
    local rc
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        log "server $SRV_PID did not stop in 5 s: SIGKILL"
        echo "$SRV_NAME: did not stop within 5 s of SIGTERM (killed)" >> "$NOTES"
        kill -KILL "$SRV_PID" 2>/dev/null
    fi
    wait "$SRV_PID" 2>/dev/null
    rc=$?
    if [[ "$SRV_NAME" == hark-* && $rc -ne 0 && $rc -ne 143 ]]; then
        echo "$SRV_NAME: exit status $rc" >> "$NOTES"
    fi
    if [[ "$SRV_NAME" == hark-* && -s "$TMP/server.log" ]]; then # log_level warn: anything is worth a look
        local keep
        keep="$RAW/$SRV_NAME-$(date +%s%N).log"
        cp "$TMP/server.log" "$keep"
        echo "$SRV_NAME: logged $(wc -l < "$keep") line(s), kept in $keep; the first: $(head -n 1 "$keep" | cut -c1-200)" >> "$NOTES"
    fi
    SRV_PID=""
}

bench_alive_check() { # after a run: did the server survive it?
    if [[ -n "$SRV_PID" ]] && ! kill -0 "$SRV_PID" 2>/dev/null; then
        echo "$1 / $SRV_NAME: the server exited during the run" >> "$NOTES"
        tail -n 5 "$TMP/server.log" | sed "s|^|    |" >> "$NOTES"
    fi
}
