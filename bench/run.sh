#!/usr/bin/env bash
# bench/run.sh — the standard benchmark set: hark (workers 1 and 2) and, where
# it is installed, Soketi, in one run with the same load generator. Writes
# docs/benchmarks.md. See bench/README.md.
#
#   bench/run.sh                        # everything (about 5 minutes)
#   BENCH_SERVERS="hark-w1 soketi" bench/run.sh
#   BENCH_SCENARIOS="idle fanout" bench/run.sh
#   BENCH_OUT=/tmp/b.md bench/run.sh    # write the report elsewhere
#   BENCH_REPORT_FROM=build/bench/last-run bench/run.sh
#                                       # rewrite the report from the last run's
#                                       # saved results (after editing bench/NOTES.md)
#
# Environment: HARK_BIN (default build/hark), SOKETI_PEER_DIR (default
# ../shared/peers/soketi), LOADGEN_PROCS (receiver processes, default 1),
# BENCH_DURATION (seconds per measuring window, default 5), BENCH_SWEEP_MS
# (bulk read interval, default 300), BENCH_OTHER_MAX (% of a core of other
# work that makes a scenario run again, default 40).
#
# Every server is started on a free loopback port for one scenario and
# stopped after it, so no scenario sees another's leftovers. Each loadgen run
# has its own --timeout, each server stop is bounded, and the whole script
# stops itself after BENCH_MAX_SECONDS (default 840).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# the exact command, with the settings that were overridden
COMMAND=""
for v in HARK_BIN HARK_COMMIT SOKETI_PEER_DIR BENCH_SERVERS BENCH_SCENARIOS BENCH_DURATION BENCH_SWEEP_MS \
    BENCH_OTHER_MAX LOADGEN_PROCS BENCH_OUT BENCH_MAX_SECONDS; do
    [[ -n "${!v:-}" ]] && COMMAND+="$v=\"${!v}\" "
done
if [[ -n "${MAKELEVEL:-}" ]]; then COMMAND+="make bench"; else COMMAND+="bench/run.sh"; fi

HARK_BIN="${HARK_BIN:-build/hark}"
SOKETI_PEER_DIR="${SOKETI_PEER_DIR:-$ROOT/../shared/peers/soketi}"
OUT="${BENCH_OUT:-docs/benchmarks.md}"
SERVERS="${BENCH_SERVERS:-hark-w1 hark-w2 soketi}"
SCENARIOS="${BENCH_SCENARIOS:-idle fanout fanout-rate fanout-low many rest storm slow}"
DUR="${BENCH_DURATION:-5}"
PROCS="${LOADGEN_PROCS:-1}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-840}"
LG="build/bench/loadgen"

log() { echo "[bench] $*" >&2; }

# ---- the whole run is bounded -------------------------------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_watchdog "$MAX_SECONDS"

TMP="$(mktemp -d /tmp/hark-bench.XXXXXX)"
SRV_PID=""
LG_PID=""
cleanup() {
    [[ -n "$LG_PID" ]] && kill -TERM "$LG_PID" 2>/dev/null
    declare -F stop_server > /dev/null && stop_server
    kill "$WATCHDOG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LAST="build/bench/last-run" # this run's raw results, to rewrite the report later

get() { # get FIELD from the RESULT line of scenario $1, server $2
    awk -v s="$1" -v l="$2" -v f="$3" '
        $1 == "RESULT" { ok = 0; v = "";
            for (i = 2; i <= NF; i++) { split($i, kv, "=");
                if (kv[1] == "scenario" && kv[2] == s) ok++;
                if (kv[1] == "label" && kv[2] == l) ok++;
                if (kv[1] == f) v = kv[2]; }
            if (ok == 2) last = v }
        END { print last }' "$RESULTS"
}

if [[ -z "${BENCH_REPORT_FROM:-}" ]]; then

# ---- build the load generator ------------------------------------------
bench_build_loadgen "$LG" || exit 1

# ---- which servers ------------------------------------------------------
ACTIVE=""
for s in $SERVERS; do
    case "$s" in
    hark-w*)
        if [[ -x "$HARK_BIN" ]]; then ACTIVE="$ACTIVE $s"; else log "no $HARK_BIN: skipping $s (run make)"; fi ;;
    soketi)
        if soketi_installed; then ACTIVE="$ACTIVE $s"; else log "Soketi not installed in $SOKETI_PEER_DIR: skipping (run its install.sh)"; fi ;;
    *) log "unknown server $s"; exit 2 ;;
    esac
done
[[ -n "$ACTIVE" ]] || { log "no server to measure"; exit 1; }

# ---- start / stop -------------------------------------------------------
PORT=""
start_server() {
    local name="$1"
    PORT="$("$LG" freeport)"
    case "$name" in
    hark-w*)
        local w="${name#hark-w}"
        mkdir -p "$TMP/data-$name"
        cat > "$TMP/$name.json" <<EOF
{"host":"127.0.0.1","port":$PORT,"workers":$w,"log_level":"warn","data_dir":"$TMP/data-$name",
 "shutdown_grace_ms":200,
 "apps":[{"id":"app-id","key":"app-key","secret":"app-secret"}]}
EOF
        "$HARK_BIN" --config "$TMP/$name.json" >> "$TMP/$name.log" 2>&1 &
        SRV_PID=$!
        ;;
    soketi)
        SOKETI_PEER_BENCH=1 SOKETI_PEER_METRICS_PORT="$("$LG" freeport)" \
            "$SOKETI_PEER_DIR/run.sh" "$PORT" >> "$TMP/$name.log" 2>&1 &
        SRV_PID=$! # run.sh execs node: this is the server's pid
        ;;
    esac
    if ! "$LG" waitport "$PORT" 20; then
        log "$name did not listen on $PORT; its log:"
        tail -n 20 "$TMP/$name.log" >&2
        stop_server
        return 1
    fi
    [[ "$name" == soketi ]] && sleep 1 # soketi opens the port before it is fully up
    return 0
}

stop_server() {
    [[ -n "$SRV_PID" ]] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        log "server $SRV_PID did not stop in 5 s: SIGKILL"
        kill -KILL "$SRV_PID" 2>/dev/null
    fi
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
}

# ---- scenarios ----------------------------------------------------------
RESULTS="$TMP/results"
: > "$RESULTS"
NOTES="$TMP/notes"
: > "$NOTES"


# Publishing scenarios read the bulk of their sockets in sweeps SWEEP ms apart
# (many frames per read) and 1 socket in 100 (the probes, whose latency is
# reported) at once: the load generator then needs far less of the 2 cores.
SWEEP="${BENCH_SWEEP_MS:-300}"
OTHER_MAX="${BENCH_OTHER_MAX:-40}"

loadgen_args() { # scenario server
    case "$1" in
    idle) echo "--scenario idle --steps 5000,19500 --settle 3" ;;
    fanout) echo "--scenario fanout --conns 10000 --size 1024 --window 64 --bulk-interval-ms $SWEEP --duration $DUR" ;;
    fanout-rate)
        local pubs
        pubs="$(get fanout "$2" pubs_per_s)"
        if [[ -z "$pubs" || "$pubs" == 0 ]]; then echo ""; return; fi
        local rate
        rate="$(awk -v p="$pubs" 'BEGIN { r = p / 2; if (r < 1) r = 1; printf "%.1f", r }')"
        echo "--scenario fanout --conns 10000 --size 1024 --rate $rate --bulk-interval-ms $SWEEP --duration $DUR"
        ;;
    fanout-low) echo "--scenario fanout --conns 10000 --size 1024 --rate 2 --bulk-interval-ms $SWEEP --duration $DUR" ;;
    many) echo "--scenario many --conns 10000 --subs-per-conn 5 --chan-per-pub 100 --window 1024 --bulk-interval-ms $SWEEP --duration $DUR" ;;
    rest) echo "--scenario rest --conns 1000 --size 64 --rest-conns 8 --bulk-interval-ms $SWEEP --duration $DUR" ;;
    storm) echo "--scenario storm --concurrency 256 --procs 2 --duration $DUR" ;;
    slow) echo "--scenario slow --conns 2000 --size 4096 --slow-pct 10 --window 64 --bulk-interval-ms $SWEEP --duration $((DUR * 2))" ;;
    *) log "unknown scenario $1"; exit 2 ;;
    esac
}

run_one() { # scenario server
    local sc="$1" srv="$2" args label attempt other rc
    args="$(loadgen_args "$sc" "$srv")"
    if [[ -z "$args" ]]; then
        log "$sc/$srv: skipped (no fan-out saturation figure)"
        return
    fi
    label="$srv"
    case "$sc" in fanout-rate) label="$srv-rate" ;; fanout-low) label="$srv-low" ;; esac
    [[ "$args" == *--procs* ]] || args="$args --procs $PROCS"
    # A window in which more than OTHER_MAX % of a core went to neither the
    # server nor the load generator (other work on a shared machine) is run
    # once more; the second result is kept either way.
    for attempt in 1 2; do
        start_server "$srv" || { echo "RESULT scenario=${sc%-*} label=$label error=server_start" >> "$RESULTS"; return; }
        log "$sc / $srv: loadgen $args"
        # shellcheck disable=SC2086
        timeout 300 "$LG" $args --port "$PORT" --server-pid "$SRV_PID" --label "$label" \
            --timeout 200 > "$TMP/out" 2> "$TMP/err" &
        LG_PID=$!
        wait "$LG_PID"
        rc=$?
        LG_PID=""
        cat "$TMP/err" >&2
        grep -v '^RESULT' "$TMP/out" >&2
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            echo "$sc / $srv: the server exited during the run (see its log)" >> "$NOTES"
            tail -n 5 "$TMP/$srv.log" | sed "s|^|    |" >> "$NOTES"
        fi
        stop_server
        other="$(grep '^RESULT' "$TMP/out" | tr ' ' '\n' | sed -n 's/^sys_other=//p')"
        if [[ $attempt == 1 && -n "$other" && "$other" -gt "$OTHER_MAX" ]]; then
            log "$sc / $srv: ${other}% of a core went to other work during the window: once more"
            echo "$sc / $srv: run again, ${other}% of a core went to other work during the first window" >> "$NOTES"
            continue
        fi
        break
    done
    grep '^RESULT' "$TMP/out" >> "$RESULTS"
    if ! grep -q '^RESULT' "$TMP/out"; then
        echo "RESULT scenario=${sc%-*} label=$label error=loadgen_rc_$rc" >> "$RESULTS"
        tail -n 5 "$TMP/err" >&2
    fi
    grep -h 'NOTE\|PROBLEM' "$TMP/out" | sed "s|^ *|$sc / $srv: |" >> "$NOTES"
}

for sc in $SCENARIOS; do
    for srv in $ACTIVE; do
        run_one "$sc" "$srv"
    done
done
T_END=$(date +%s)
RUN_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; open-file limit $(ulimit -Hn)"
HARK_DESC="\`$HARK_BIN\` built from ${HARK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' plus uncommitted changes in src/')}, config \`workers\` 1 and 2, \`log_level\` warn, other settings default"
SOKETI_DESC=""
if soketi_installed; then
    SOKETI_DESC="$(node -p "require('$SOKETI_PEER_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null) on Node $(node -v 2>/dev/null), via \`../shared/peers/soketi/run.sh\` with \`SOKETI_PEER_BENCH=1\`"
fi
mkdir -p "$LAST"
cp "$RESULTS" "$LAST/results"
cp "$NOTES" "$LAST/notes"
declare -p RUN_DATE T_START T_END LOAD_START COMMAND ACTIVE SCENARIOS DUR PROCS MACHINE HARK_DESC \
    SOKETI_DESC > "$LAST/meta.sh"

else
    # BENCH_REPORT_FROM=build/bench/last-run: write the report again from a
    # saved run (after editing bench/NOTES.md, say); nothing is measured.
    # shellcheck disable=SC1091
    source "$BENCH_REPORT_FROM/meta.sh"
    RESULTS="$BENCH_REPORT_FROM/results"
    NOTES="$BENCH_REPORT_FROM/notes"
fi

# ---- report -------------------------------------------------------------
has() { [[ " $ACTIVE " == *" $1 "* ]]; }
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d", v }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.2f ms", v / 1000 }'; }
ratio() { # hark soketi higher|lower
    awk -v h="$1" -v s="$2" -v d="$3" 'BEGIN {
        if (h == "" || s == "" || h + 0 <= 0 || s + 0 <= 0) { print "–"; exit }
        r = (d == "higher") ? h / s : s / h; printf "%.1f×", r }'
}

row() { # title scenario-label-suffix field format better
    local title="$1" sc="$2" sfx="$3" field="$4" fmt="$5" better="$6"
    local line="| $title |" vals=() v
    for srv in hark-w1 hark-w2 soketi; do
        if has "$srv"; then
            v="$(get "$sc" "$srv$sfx" "$field")"
            vals+=("$v")
            line+=" $($fmt "$v") |"
        else
            vals+=("")
            line+=" – |"
        fi
    done
    line+=" $(ratio "${vals[0]}" "${vals[2]}" "$better") | $(ratio "${vals[1]}" "${vals[2]}" "$better") |"
    echo "$line"
}

lgrow() { # scenario suffix: loadgen CPU per server
    local sc="$1" sfx="$2" line="" v m s b o
    for srv in hark-w1 hark-w2 soketi; do
        v="$(get "$sc" "$srv$sfx" lg_cpu)"
        m="$(get "$sc" "$srv$sfx" lg_max_proc)"
        s="$(get "$sc" "$srv$sfx" srv_cpu)"
        b="$(get "$sc" "$srv$sfx" sys_busy)"
        o="$(get "$sc" "$srv$sfx" sys_other)"
        if [[ -n "$v" ]]; then line+=" $s% / $v% ($m%) / $b% (other $o%) |"; else line+=" – |"; fi
    done
    echo "$line"
}

pct() { echo "${1:+$1%}"; }
plain() { echo "${1:-–}"; }
kb_mb() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.1f MB", v / 1024 }'; }

{
    echo "# Benchmarks"
    echo
    echo "Generated by \`bench/run.sh\` (\`make bench\`); every figure below comes from one run,"
    echo "with the same load generator (\`bench/loadgen/\`) against each server. What each"
    echo "scenario measures: [bench/README.md](../bench/README.md)."
    echo
    echo "- date: $RUN_DATE, run took $((T_END - T_START)) s"
    echo "- command: \`$COMMAND\` (servers: ${ACTIVE# }; scenarios: $SCENARIOS; window ${DUR} s; loadgen receiver processes: $PROCS)"
    echo "- load average when the run started: $LOAD_START (anything well above 0 means other work shared the 2 cores)"
    echo "- machine: $MACHINE"
    echo "- hark: $HARK_DESC"
    [[ -n "$SOKETI_DESC" ]] && echo "- Soketi: $SOKETI_DESC"
    echo
    echo "| figure | hark w1 | hark w2 | Soketi | w1 vs Soketi | w2 vs Soketi |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    row "idle: memory per subscribed connection, bytes (5k→19.5k, lower is better)" idle "" bytes_per_conn fmt_int lower
    row "idle: connections subscribed of 19,500" idle "" n1 fmt_int higher
    row "idle: server RSS at 19.5k" idle "" rss_n1_kb kb_mb lower
    row "fan-out 10k subs, 1 KiB, flat out: deliveries/s" fanout "" deliv_per_s fmt_int higher
    row "fan-out flat out: trigger→receipt p99" fanout "" p99_us fmt_ms lower
    row "fan-out at half of own saturation: deliveries/s" fanout "-rate" deliv_per_s fmt_int higher
    row "fan-out at half saturation: p50" fanout "-rate" p50_us fmt_ms lower
    row "fan-out at half saturation: p99" fanout "-rate" p99_us fmt_ms lower
    row "fan-out at half saturation: max" fanout "-rate" max_us fmt_ms lower
    row "fan-out at 2 publishes/s (20k deliveries/s), both: p50" fanout "-low" p50_us fmt_ms lower
    row "fan-out at 2 publishes/s: p99" fanout "-low" p99_us fmt_ms lower
    row "many channels (10k × 5 subs, 100 channels/publish): deliveries/s" many "" deliv_per_s fmt_int higher
    row "REST triggers/s, 8 keep-alive connections (Soketi closes each: \`Connection: close\`)" rest "" pubs_per_s fmt_int higher
    row "REST request p99" rest "" rest_p99_us fmt_ms lower
    row "connection storm: connections/s (connect+subscribe+close)" storm "" conns_per_s fmt_int higher
    row "slow consumers (2k subs, 4 KiB): of 200 stopped readers, closed by the server" slow "" slow_closed fmt_int higher
    row "slow consumers: … of which saw a 4100 close frame" slow "" slow_4100 fmt_int higher
    row "slow consumers: server RSS before" slow "" rss0_kb kb_mb lower
    row "slow consumers: server RSS peak" slow "" rss_peak_kb kb_mb lower
    row "slow consumers: deliveries/s to the 1,800 others" slow "" deliv_per_s fmt_int higher
    echo
    echo "CPU during each measuring window, in % of one core (the machine has $(nproc), so 200% is"
    echo "all of it): server / load generator, all processes (its busiest process) / whole machine"
    echo "from /proc/stat (other: busy time that is neither server nor load generator, mostly"
    echo "softirq network processing on loopback, or other work on the machine):"
    echo
    echo "| scenario | hark w1 | hark w2 | Soketi |"
    echo "| --- | ---: | ---: | ---: |"
    for pair in "fanout:" "fanout:-rate" "fanout:-low" "many:" "rest:" "storm:" "slow:"; do
        echo "| ${pair%%:*}${pair#*:} |$(lgrow "${pair%%:*}" "${pair#*:}")"
    done
    echo
    echo "Correctness in the same run (must all be 0): lost, out-of-order and duplicate"
    echo "deliveries to subscribers that kept reading, failed connections:"
    echo
    echo "| scenario | hark w1 | hark w2 | Soketi |"
    echo "| --- | --- | --- | --- |"
    for pair in "idle:" "fanout:" "fanout:-rate" "fanout:-low" "many:" "rest:" "slow:"; do
        line="| ${pair%%:*}${pair#*:} |"
        for srv in hark-w1 hark-w2 soketi; do
            l="$srv${pair#*:}"
            if [[ -n "$(get "${pair%%:*}" "$l" label)" ]]; then
                err="$(get "${pair%%:*}" "$l" error)"
                if [[ -n "$err" ]]; then line+=" error: $err |"; continue; fi
                line+=" lost $(plain "$(get "${pair%%:*}" "$l" lost)"), ooo $(plain "$(get "${pair%%:*}" "$l" ooo)"), dup $(plain "$(get "${pair%%:*}" "$l" dup)"), failed $(plain "$(get "${pair%%:*}" "$l" failed)") |"
            else
                line+=" – |"
            fi
        done
        echo "$line"
    done
    echo
    if [[ -s "$NOTES" ]]; then
        echo "Notes printed by the load generator in this run:"
        echo
        sed 's/^/- /' "$NOTES"
        echo
    fi
    if [[ -f bench/NOTES.md ]]; then
        cat bench/NOTES.md
        echo
    fi
    if [[ -f bench/SOAK.md ]]; then # the last 30-minute soak (bench/soak.sh), kept by hand
        cat bench/SOAK.md
        echo
    fi
    if [[ -f bench/HISTORY.md ]]; then # the last bench/history.sh run (history on and off)
        cat bench/HISTORY.md
        echo
    fi
    if [[ -f bench/CHAT.md ]]; then # the last bench/chat.sh run (unread counts, typing, read receipts)
        cat bench/CHAT.md
        echo
    fi
    if [[ -f bench/FALLBACKS.md ]]; then # the last bench/fallbacks.sh run (event streams, long polls, WebSockets)
        cat bench/FALLBACKS.md
        echo
    fi
    echo "<details><summary>Raw RESULT lines</summary>"
    echo
    echo '```'
    cat "$RESULTS"
    echo '```'
    echo
    echo "</details>"
} > "$OUT"
log "wrote $OUT ($((T_END - T_START)) s)"
