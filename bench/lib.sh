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

# bench_child SECONDS CMD...: runs CMD under a time limit with its output in
# $TMP/out and $TMP/err, as CHILD_PID so that an interrupt stops it; then
# echoes its stderr and its output but the RESULT lines, and leaves its exit
# status in BENCH_RC.
bench_child() {
    local limit="$1"
    shift
    timeout "$limit" "$@" > "$TMP/out" 2> "$TMP/err" &
    CHILD_PID=$!
    wait "$CHILD_PID"
    BENCH_RC=$?
    CHILD_PID=""
    cat "$TMP/err" >&2
    grep -v '^RESULT' "$TMP/out" >&2
}

# bench_run_loadgen PART NAME ARGS...: one loadgen run against a fresh server
# (the script's start_server), once more when other work took more than
# OTHER_MAX % of a core and the time limit allows; its RESULT line goes to
# RESULTS. Uses LG, PROCS, LG_TIMEOUT (the loadgen's own limit, seconds),
# T_START, MAX_SECONDS, TMP and NOTES.
bench_run_loadgen() {
    local part="$1" name="$2" attempt other rc
    shift 2
    for attempt in 1 2; do
        start_server "$name" || { echo "RESULT scenario=$part label=$name error=server_start" >> "$RESULTS"; return; }
        log "$part / $name: loadgen $*"
        bench_child $((LG_TIMEOUT + 100)) "$LG" "$@" --procs "$PROCS" --port "$PORT" --server-pid "$SRV_PID" \
            --label "$name" --timeout "$LG_TIMEOUT"
        rc=$BENCH_RC
        bench_alive_check "$part"
        bench_stop_server
        other="$(grep '^RESULT' "$TMP/out" | tr ' ' '\n' | sed -n 's/^sys_other=//p')"
        if [[ $attempt == 1 && -n "$other" && "$other" -gt "$OTHER_MAX" ]] && (($(date +%s) - T_START < MAX_SECONDS - 150)); then
            log "$part / $name: ${other}% of a core went to other work during the window: once more"
            echo "$part / $name: run again, ${other}% of a core went to other work during the first window" >> "$NOTES"
            continue
        fi
        break
    done
    if grep -q '^RESULT' "$TMP/out"; then
        grep '^RESULT' "$TMP/out" >> "$RESULTS"
    else
        echo "RESULT scenario=$part label=$name error=loadgen_rc_$rc" >> "$RESULTS"
        tail -n 5 "$TMP/err" >&2
    fi
    grep -h 'NOTE\|PROBLEM' "$TMP/out" | sed "s|^ *|$part / $name: |" >> "$NOTES"
}
