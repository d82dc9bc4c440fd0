#!/usr/bin/env bash
# bench/history.sh — what keeping history costs: four figures, written to
# bench/HISTORY.md. Usage (from anywhere; nothing is built but the load generator):
#
#   bench/history.sh                              # everything, about 4-5 minutes
#   HISTORY_PARTS="storm memory" bench/history.sh # a subset: fanout rest storm memory
#   HISTORY_OUT=/tmp/h.md bench/history.sh        # write the report elsewhere
#   HARK_BIN=build/dev/hark bench/history.sh      # another build of hark
#
# 1. fanout  the loadgen `fanout` scenario exactly as bench/run.sh runs it
#            (10,000 subscribers, 1 KiB, window 64, sweeps of 300 ms, 5 s),
#            against hark workers 1 and 2, with the default config (history
#            on) and with `"history": false` for the app, HISTORY_REPEAT times
#            each, on and off alternating. Deliveries/s and on/off (target >= 85%).
# 2. rest    the loadgen `rest` scenario as in bench/run.sh (1,000 channels, 64 B)
#            with 8 keep-alive publishing connections, as bench/run.sh, and
#            with 32 (HISTORY_REST_PUBLISHERS), against hark w1 and w2 with
#            history on, Soketi (when installed) and, for reference at the
#            first count, hark with history off. HISTORY_REPEAT rounds.
#            Triggers/s, REST p99 and hark / Soketi (target >= 3x), best
#            against best and median against median, per publisher count.
# 3. storm   bench/resume_storm.mjs: 1,000 clients, 100 missed events each, all
#            resuming with `since` at once (hark w1 and w2).
# 4. memory  bench/history_memory.mjs: RSS per idle persisted channel (50,000
#            channels, one event each; hark w2).
#
# Every server gets a free loopback port, a fresh temporary data_dir, and is
# stopped after its run. Soketi is skipped when it is not installed. Raw
# RESULT lines, notes and the logs of failed servers stay in build/bench/history/.
# Exits 1 when a run lost, reordered or duplicated an event, a resume did not
# recover every event, or a run failed; a target that is not met is only
# reported.
#
# Environment: HARK_BIN (default build/hark), SOKETI_PEER_DIR (default
# ../shared/peers/soketi), HISTORY_OUT (default bench/HISTORY.md),
# HISTORY_PARTS (default "fanout rest storm memory"), HISTORY_REPEAT (fan-out
# and REST runs per server and setting, default 2; the best is reported,
# every one is listed, and for REST the median too), HISTORY_FANOUT_CONNS (default 10000), HISTORY_REST_CONNS (default
# 1000), HISTORY_REST_PUBLISHERS (keep-alive connections that trigger, one
# count after another, default "8 32"), STORM_CLIENTS (default 1000), STORM_MISSED (default 100),
# MEMORY_CHANNELS (default 50000), MEMORY_WORKERS (default 2), BENCH_DURATION
# (seconds per loadgen window, default 5), BENCH_SWEEP_MS (default 300),
# BENCH_OTHER_MAX (a loadgen run in which more than this % of a core went to
# other work runs once more, default 40), LOADGEN_PROCS (default 1),
# BENCH_MAX_SECONDS (hard limit for the whole script, default 600).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

COMMAND=""
for v in HARK_BIN HARK_COMMIT SOKETI_PEER_DIR HISTORY_OUT HISTORY_PARTS HISTORY_REPEAT HISTORY_FANOUT_CONNS \
    HISTORY_REST_CONNS HISTORY_REST_PUBLISHERS STORM_CLIENTS STORM_MISSED MEMORY_CHANNELS MEMORY_WORKERS BENCH_DURATION BENCH_SWEEP_MS \
    BENCH_OTHER_MAX LOADGEN_PROCS BENCH_MAX_SECONDS; do
    val="${!v:-}"
    [[ "$val" == *" "* ]] && val="\"$val\""
    [[ -n "$val" ]] && COMMAND+="$v=$val "
done
COMMAND+="bench/history.sh"

HARK_BIN="${HARK_BIN:-build/hark}"
SOKETI_PEER_DIR="${SOKETI_PEER_DIR:-$ROOT/../shared/peers/soketi}"
OUT="${HISTORY_OUT:-bench/HISTORY.md}"
PARTS="${HISTORY_PARTS:-fanout rest storm memory}"
REPEAT="${HISTORY_REPEAT:-2}"
FANOUT_CONNS="${HISTORY_FANOUT_CONNS:-10000}"
REST_CONNS="${HISTORY_REST_CONNS:-1000}"
REST_PUBLISHERS="${HISTORY_REST_PUBLISHERS:-8 32}"
STORM_CLIENTS="${STORM_CLIENTS:-1000}"
STORM_MISSED="${STORM_MISSED:-100}"
MEMORY_CHANNELS="${MEMORY_CHANNELS:-50000}"
MEMORY_WORKERS="${MEMORY_WORKERS:-2}"
DUR="${BENCH_DURATION:-5}"
SWEEP="${BENCH_SWEEP_MS:-300}"
OTHER_MAX="${BENCH_OTHER_MAX:-40}"
PROCS="${LOADGEN_PROCS:-1}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-600}"
LG="build/bench/loadgen"
RAW="build/bench/history"

log() { echo "[history] $*" >&2; }

HARK_BUILT="${HARK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' plus uncommitted changes in src/')}"

# ---- the whole run is bounded -------------------------------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
LG_TIMEOUT=200 # seconds, per loadgen run
bench_watchdog "$MAX_SECONDS"

TMP="$(mktemp -d /tmp/hark-history.XXXXXX)"
SRV_PID=""
SRV_NAME=""
CHILD_PID=""
cleanup() {
    [[ -n "$CHILD_PID" ]] && kill -TERM "$CHILD_PID" 2>/dev/null
    declare -F bench_stop_server > /dev/null && bench_stop_server
    kill "$WATCHDOG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RAW"
RESULTS="$RAW/results"
NOTES="$RAW/notes"
: > "$RESULTS"
: > "$NOTES"
rm -f "$RAW"/*.log "$RAW"/*.out

# ---- the load generator, built as bench/run.sh builds it ------------------
bench_build_loadgen "$LG" || exit 1

[[ -x "$HARK_BIN" ]] || { log "no $HARK_BIN (run make)"; exit 1; }
node_ok() { [[ -d tests/e2e/node_modules/ws ]] && command -v node > /dev/null; }

# ---- start / stop -------------------------------------------------------
# start_server NAME [EXTRA]: NAME is hark-w<W>-on, hark-w<W>-off or soketi,
# optionally followed by .p<N> (the REST runs with N publishers); EXTRA is
# JSON added to hark's app object (",\"max_replay\":5000").
PORT=""
DATA_DIR=""
start_server() {
    local name="$1" extra="${2:-}"
    SRV_NAME="$name"
    PORT="$("$LG" freeport)"
    case "$name" in
    hark-w*)
        local server="${name%.p*}"
        local w="${server#hark-w}" mode="${server##*-}"
        w="${w%%-*}"
        [[ "$mode" == off ]] && extra+=',"history":false'
        DATA_DIR="$(mktemp -d "$TMP/data.XXXXXX")"
        cat > "$TMP/$name.json" <<EOF
{"host":"127.0.0.1","port":$PORT,"workers":$w,"log_level":"warn","data_dir":"$DATA_DIR",
 "shutdown_grace_ms":200,
 "apps":[{"id":"app-id","key":"app-key","secret":"app-secret"$extra}]}
EOF
        : > "$TMP/server.log"
        "$HARK_BIN" --config "$TMP/$name.json" >> "$TMP/server.log" 2>&1 &
        SRV_PID=$!
        ;;
    soketi | soketi.p*)
        DATA_DIR=""
        : > "$TMP/server.log"
        SOKETI_PEER_BENCH=1 SOKETI_PEER_METRICS_PORT="$("$LG" freeport)" \
            "$SOKETI_PEER_DIR/run.sh" "$PORT" >> "$TMP/server.log" 2>&1 &
        SRV_PID=$! # run.sh execs node: this is the server's pid
        ;;
    *) log "unknown server $name"; exit 2 ;;
    esac
    if ! "$LG" waitport "$PORT" 20; then
        log "$name did not listen on $PORT; its log:"
        tail -n 20 "$TMP/server.log" >&2
        bench_stop_server
        return 1
    fi
    [[ "$name" == soketi ]] && sleep 1 # soketi opens the port before it is fully up
    return 0
}




# run_node PART NAME EXTRA SCRIPT ARGS...: a node driver against a fresh server.
run_node() {
    local part="$1" name="$2" extra="$3" script="$4" rc
    shift 4
    start_server "$name" "$extra" || { echo "RESULT scenario=$part label=$name error=server_start" >> "$RESULTS"; return; }
    local args=("$@")
    [[ "$part" == history_memory ]] && args+=(--data-dir "$DATA_DIR")
    log "$part / $name: node $script ${args[*]}"
    bench_child 290 node "$script" "$PORT" --server-pid "$SRV_PID" --label "$name" "${args[@]}"
    rc=$BENCH_RC
    grep -v '^RESULT' "$TMP/out" > "$RAW/$part-$name.out"
    bench_alive_check "$part"
    bench_stop_server
    if grep -q '^RESULT' "$TMP/out"; then
        grep '^RESULT' "$TMP/out" >> "$RESULTS"
    else
        echo "RESULT scenario=$part label=$name error=rc_$rc" >> "$RESULTS"
    fi
    grep -h 'first problem' "$TMP/out" | sed "s|^ *|$part / $name: |" >> "$NOTES"
}

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- 1. fan-out, history on and off ------------------------------------------
FANOUT_ARGS=(--scenario fanout --conns "$FANOUT_CONNS" --size 1024 --window 64 --bulk-interval-ms "$SWEEP" --duration "$DUR")
if has_part fanout; then
    for r in $(seq 1 "$REPEAT"); do
        order="off on"
        ((r % 2 == 0)) && order="on off" # alternate, so a drift of the machine hits both
        for w in 1 2; do
            for m in $order; do
                bench_run_loadgen fanout "hark-w$w-$m" "${FANOUT_ARGS[@]}"
            done
        done
    done
fi

# ---- 2. REST triggers/s on persisted channels ------------------------------------
REST_ARGS=(--scenario rest --conns "$REST_CONNS" --size 64 --bulk-interval-ms "$SWEEP" --duration "$DUR")
REST_FIRST="${REST_PUBLISHERS%% *}"
SOKETI_RUN=0
if has_part rest; then
    if soketi_installed; then
        SOKETI_RUN=1
    else
        log "Soketi not installed in $SOKETI_PEER_DIR: skipping (run its install.sh)"
        echo "rest / soketi: not run, Soketi is not installed in $SOKETI_PEER_DIR" >> "$NOTES"
    fi
    # HISTORY_REPEAT rounds, the order reversed every other one, so a drift of
    # the machine hits every server alike
    # (history off, only a reference, runs at the first publisher count)
    for r in $(seq 1 "$REPEAT"); do
        for p in $REST_PUBLISHERS; do
            order="hark-w1-on hark-w2-on soketi hark-w1-off hark-w2-off"
            ((r % 2 == 0)) && order="hark-w2-off hark-w1-off soketi hark-w2-on hark-w1-on"
            for name in $order; do
                [[ "$name" == soketi ]] && ((!SOKETI_RUN)) && continue
                [[ "$name" == *-off && "$p" != "$REST_FIRST" ]] && continue
                bench_run_loadgen rest "$name.p$p" "${REST_ARGS[@]}" --rest-conns "$p"
            done
        done
    done
fi

# ---- 3. resume storm -------------------------------------------------------------
STORM_EXTRA=""
if ((STORM_MISSED >= 1000)); then # beyond the defaults: keep and replay them all
    STORM_EXTRA=",\"max_replay\":$STORM_MISSED,\"history\":[{\"channels\":\"*\",\"max_events\":$((STORM_MISSED + 1))}]"
fi
if has_part storm; then
    if node_ok; then
        for w in 1 2; do
            run_node resume_storm "hark-w$w-on" "$STORM_EXTRA" bench/resume_storm.mjs \
                --clients "$STORM_CLIENTS" --missed "$STORM_MISSED" --timeout 240
        done
    else
        log "node or tests/e2e/node_modules/ws missing (make test-deps): skipping the resume storm"
        echo "storm: not run, node or tests/e2e/node_modules is missing" >> "$NOTES"
    fi
fi

# ---- 4. memory per idle persisted channel -------------------------------------------
if has_part memory; then
    if node_ok; then
        run_node history_memory "hark-w$MEMORY_WORKERS-on" "" bench/history_memory.mjs \
            --channels "$MEMORY_CHANNELS" --timeout 240
    else
        log "node is missing: skipping the memory measurement"
        echo "memory: not run, node is missing" >> "$NOTES"
    fi
fi

T_END=$(date +%s)

# ---- report -------------------------------------------------------------
vals() { # vals SCENARIO LABEL FIELD: the field in every matching RESULT line
    awk -v s="$1" -v l="$2" -v f="$3" '
        $1 == "RESULT" { ok = 0; v = "";
            for (i = 2; i <= NF; i++) { split($i, kv, "=");
                if (kv[1] == "scenario" && kv[2] == s) ok++;
                if (kv[1] == "label" && kv[2] == l) ok++;
                if (kv[1] == f) v = kv[2]; }
            if (ok == 2 && v != "") printf "%s%s", (n++ ? " " : ""), v }
        END { print "" }' "$RESULTS"
}
best() { vals "$@" | awk '{ m = ""; for (i = 1; i <= NF; i++) if (m == "" || $i + 0 > m + 0) m = $i; print m }'; }
low() { vals "$@" | awk '{ m = ""; for (i = 1; i <= NF; i++) if (m == "" || $i + 0 < m + 0) m = $i; print m }'; }
last() { vals "$@" | awk '{ print $NF }'; }
median() { vals "$@" | awk '{ if (NF == 0) { print ""; exit } n = split($0, v, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t } print v[int((n + 1) / 2)] }'; }
total() { vals "$@" | awk '{ if (NF == 0) { print ""; exit } t = 0; for (i = 1; i <= NF; i++) t += $i; print t }'; }
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d", v }'; }
fmt_ints() { local out="" v; for v in $1; do out+="${out:+, }$(fmt_int "$v")"; done; echo "${out:-–}"; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.2f ms", v / 1000 }'; }
fmt_msv() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d ms", v }'; }
fmt_mb() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.1f MB", v / 1024 }'; }
pct_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 <= 0) { print ""; exit } printf "%.1f", 100 * a / b }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print ""; exit } printf "%.1f", a / b }'; }
times2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print ""; exit } printf "%.2f", a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print ""; exit } printf "%.6f", a / b }'; } # unrounded, for a target
meets() { # value target: ✓ / ✗ / –
    awk -v v="$1" -v t="$2" 'BEGIN { if (v == "") print "–"; else if (v + 0 >= t + 0) print "met"; else print "**not met**" }'
}
ran() { [[ -n "$(vals "$1" "$2" label)" ]]; }
errs() { vals "$1" "$2" error; }

check() { # check SCENARIO LABEL: lost/ooo/dup/failed summed over the runs
    local sc="$1" l="$2" e lo oo du fa
    ran "$sc" "$l" || { echo "–"; return; }
    e="$(errs "$sc" "$l")"
    lo="$(total "$sc" "$l" lost)"; oo="$(total "$sc" "$l" ooo)"; du="$(total "$sc" "$l" dup)"; fa="$(total "$sc" "$l" failed)"
    echo "${lo:-–} / ${oo:-–} / ${du:-–} / ${fa:-–}${e:+ (error: $e)}"
}

# The exit status: any error, any lost / reordered / duplicated delivery or
# failed connection in a loadgen run, any resume storm that is not perfect.
FAIL=0
if grep -q '^RESULT.* error=' "$RESULTS"; then FAIL=1; fi
if awk '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "=");
        if ((kv[1] == "lost" || kv[1] == "ooo" || kv[1] == "dup" || kv[1] == "failed") && kv[2] != 0) bad = 1;
        if (kv[1] == "ok" && kv[2] != 1) bad = 1 } }
        END { exit !bad }' "$RESULTS"; then FAIL=1; fi

RUN_DATE="$(date -u -d "@$T_START" '+%Y-%m-%d %H:%M UTC')"
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
SOKETI_DESC=""
if ((SOKETI_RUN)); then
    SOKETI_DESC="$(node -p "require('$SOKETI_PEER_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null) on Node $(node -v 2>/dev/null), via \`../shared/peers/soketi/run.sh\` with \`SOKETI_PEER_BENCH=1\`"
elif has_part rest; then
    SOKETI_DESC="not installed in \`$SOKETI_PEER_DIR\`: not measured (run its \`install.sh\`)"
fi
CACHE_MAX="$(sed -n 's/^ *\.history_cache_channels = \([0-9]*\),.*/\1/p' src/config/config.c 2>/dev/null)"
CACHE_PRAGMA="$(grep -o 'cache_size[^"]*' src/store/store_sqlite.c 2>/dev/null | head -n 1)"
SQLITE_VER="$(pkg-config --modversion sqlite3 2>/dev/null)" # the library hark is built against

{
    echo "## History: what keeping events costs"
    echo
    echo "Generated by \`bench/history.sh\`. hark stores every event of a kept channel"
    echo "(by default every channel but \`cache-\` ones) in SQLite before it delivers it with"
    echo "an \`\"id\"\`, and replays what a client missed when it subscribes with \`since\`."
    echo "Here: fan-out and REST with history on against history off (\`\"history\": false\`"
    echo "for the app) and against Soketi, a resume storm, and memory per idle kept channel."
    echo "Each run has a fresh server on a free port with an empty \`data_dir\`."
    echo
    echo "- date: $RUN_DATE, run took $((T_END - T_START)) s"
    echo "- command: \`$COMMAND\` (parts: $PARTS)"
    echo "- machine: $MACHINE; load average at the start $LOAD_START"
    echo "- hark: \`$HARK_BIN\` built from $HARK_BUILT${SQLITE_VER:+, SQLite $SQLITE_VER}, \`log_level\` warn, other settings default (history on: the default rules, 1,000 events and 24 h per channel)"
    [[ -n "$SOKETI_DESC" ]] && echo "- Soketi: $SOKETI_DESC"
    echo

    if has_part fanout; then
        echo "### Fan-out with history on and off"
        echo
        echo "The \`fanout\` scenario of \`bench/run.sh\`: $(fmt_int "$FANOUT_CONNS") subscribers on one channel, 1 KiB events"
        echo "flat out (window 64), ${DUR} s; $REPEAT run(s) per server and setting, on and off alternating;"
        echo "the best run of each is compared (every run is listed). With history on every event is"
        echo "written to SQLite before it goes out."
        echo
        echo "| figure | hark w1 | hark w2 | target |"
        echo "| --- | ---: | ---: | --- |"
        for m in off on; do
            echo "| deliveries/s, history $m (best) | $(fmt_int "$(best fanout hark-w1-$m deliv_per_s)") | $(fmt_int "$(best fanout hark-w2-$m deliv_per_s)") | |"
        done
        r1="$(pct_of "$(best fanout hark-w1-on deliv_per_s)" "$(best fanout hark-w1-off deliv_per_s)")"
        r2="$(pct_of "$(best fanout hark-w2-on deliv_per_s)" "$(best fanout hark-w2-off deliv_per_s)")"
        rr1="$(ratio "$(best fanout hark-w1-on deliv_per_s)" "$(best fanout hark-w1-off deliv_per_s)")"
        rr2="$(ratio "$(best fanout hark-w2-on deliv_per_s)" "$(best fanout hark-w2-off deliv_per_s)")"
        echo "| **history on / off** | **${r1:-–}${r1:+%}** | **${r2:-–}${r2:+%}** | ≥ 85%: w1 $(meets "$rr1" 0.85), w2 $(meets "$rr2" 0.85) |"
        for m in off on; do
            echo "| every run, history $m | $(fmt_ints "$(vals fanout hark-w1-$m deliv_per_s)") | $(fmt_ints "$(vals fanout hark-w2-$m deliv_per_s)") | |"
        done
        for m in off on; do
            echo "| publishes/s, history $m (best) | $(fmt_int "$(best fanout hark-w1-$m pubs_per_s)") | $(fmt_int "$(best fanout hark-w2-$m pubs_per_s)") | |"
        done
        for m in off on; do
            echo "| trigger→receipt p99, history $m (lowest) | $(fmt_ms "$(low fanout hark-w1-$m p99_us)") | $(fmt_ms "$(low fanout hark-w2-$m p99_us)") | |"
        done
        for m in off on; do
            echo "| server CPU, % of a core, history $m (last run) | $(last fanout hark-w1-$m srv_cpu) | $(last fanout hark-w2-$m srv_cpu) | |"
        done
        for m in off on; do
            echo "| lost / out of order / duplicate / failed, history $m (all runs) | $(check fanout hark-w1-$m) | $(check fanout hark-w2-$m) | 0 |"
        done
        echo
    fi

    if has_part rest; then
        echo "### REST triggers/s on kept channels"
        echo
        echo "The \`rest\` scenario of \`bench/run.sh\`: keep-alive connections trigger 64-byte events as"
        echo "fast as answers come back, each waiting for its answer before the next trigger, to"
        echo "$(fmt_int "$REST_CONNS") channels with one subscriber each, ${DUR} s. With history on, hark answers each trigger"
        echo "once the event is stored (group commit), with its id, so its throughput grows with the"
        echo "number of triggers in flight; Soketi's does not. Measured with $(echo "$REST_PUBLISHERS" | sed 's/ / and /g')"
        echo "publishing connections ($REST_FIRST is what \`bench/run.sh\` uses). Soketi closes the connection"
        echo "after every answer (\`Connection: close\`). $REPEAT run(s) per server and count, in rounds whose"
        echo "order reverses every other time; the best run of each server is compared (as for"
        echo "fan-out), and the medians beside it (every run is listed)."
        echo
        for p in $REST_PUBLISHERS; do
            on1="hark-w1-on.p$p"; on2="hark-w2-on.p$p"; sk="soketi.p$p"
            echo "#### $p publishing connections"
            echo
            echo "| figure | hark w1 | hark w2 | Soketi | w1 vs Soketi | w2 vs Soketi |"
            echo "| --- | ---: | ---: | ---: | ---: | ---: |"
            h1="$(best rest "$on1" pubs_per_s)"; h2="$(best rest "$on2" pubs_per_s)"; s="$(best rest "$sk" pubs_per_s)"
            x1="$(times2 "$h1" "$s")"; x2="$(times2 "$h2" "$s")"
            rx1="$(ratio "$h1" "$s")"; rx2="$(ratio "$h2" "$s")"
            echo "| **triggers/s, history on (best)** | $(fmt_int "$h1") | $(fmt_int "$h2") | $(fmt_int "$s") | **${x1:-–}${x1:+×}** | **${x2:-–}${x2:+×}** |"
            m1="$(median rest "$on1" pubs_per_s)"; m2="$(median rest "$on2" pubs_per_s)"; ms="$(median rest "$sk" pubs_per_s)"
            z1="$(times2 "$m1" "$ms")"; z2="$(times2 "$m2" "$ms")"
            rz1="$(ratio "$m1" "$ms")"; rz2="$(ratio "$m2" "$ms")"
            echo "| triggers/s, history on (median) | $(fmt_int "$m1") | $(fmt_int "$m2") | $(fmt_int "$ms") | ${z1:-–}${z1:+×} | ${z2:-–}${z2:+×} |"
            echo "| every run, history on | $(fmt_ints "$(vals rest "$on1" pubs_per_s)") | $(fmt_ints "$(vals rest "$on2" pubs_per_s)") | $(fmt_ints "$(vals rest "$sk" pubs_per_s)") | | |"
            h1="$(low rest "$on1" rest_p99_us)"; h2="$(low rest "$on2" rest_p99_us)"; s="$(low rest "$sk" rest_p99_us)"
            y1="$(times "$s" "$h1")"; y2="$(times "$s" "$h2")"
            echo "| REST request p99, history on (lowest; lower is better) | $(fmt_ms "$h1") | $(fmt_ms "$h2") | $(fmt_ms "$s") | ${y1:-–}${y1:+×} | ${y2:-–}${y2:+×} |"
            echo "| REST request p50, history on (lowest) | $(fmt_ms "$(low rest "$on1" rest_p50_us)") | $(fmt_ms "$(low rest "$on2" rest_p50_us)") | $(fmt_ms "$(low rest "$sk" rest_p50_us)") | | |"
            if [[ "$p" == "$REST_FIRST" ]]; then
                echo "| triggers/s, history off (reference, best) | $(fmt_int "$(best rest "hark-w1-off.p$p" pubs_per_s)") | $(fmt_int "$(best rest "hark-w2-off.p$p" pubs_per_s)") | | | |"
                o1="$(pct_of "$(best rest "$on1" pubs_per_s)" "$(best rest "hark-w1-off.p$p" pubs_per_s)")"
                o2="$(pct_of "$(best rest "$on2" pubs_per_s)" "$(best rest "hark-w2-off.p$p" pubs_per_s)")"
                echo "| triggers/s, history on / off (best) | ${o1:-–}${o1:+%} | ${o2:-–}${o2:+%} | | | |"
                echo "| REST request p99, history off (reference, lowest) | $(fmt_ms "$(low rest "hark-w1-off.p$p" rest_p99_us)") | $(fmt_ms "$(low rest "hark-w2-off.p$p" rest_p99_us)") | | | |"
            fi
            echo "| server CPU, % of a core, history on (last run) | $(last rest "$on1" srv_cpu) | $(last rest "$on2" srv_cpu) | $(last rest "$sk" srv_cpu) | | |"
            echo "| lost / out of order / duplicate / failed, history on (all runs) | $(check rest "$on1") | $(check rest "$on2") | $(check rest "$sk") | | |"
            [[ "$p" == "$REST_FIRST" ]] &&
                echo "| lost / out of order / duplicate / failed, history off (all runs) | $(check rest "hark-w1-off.p$p") | $(check rest "hark-w2-off.p$p") | | | |"
            echo
            if ((SOKETI_RUN)); then
                echo "Target with $p publishing connections: hark at least 3× Soketi's triggers/s (best against best): w1 $(meets "$rx1" 3), w2 $(meets "$rx2" 3)."
                echo "Median against median: w1 $(meets "$rz1" 3), w2 $(meets "$rz2" 3)."
            else
                echo "Target: hark at least 3× Soketi's triggers/s: not measured in this run (Soketi is not installed)."
            fi
            echo
        done
    fi

    if has_part storm; then
        sv() { last resume_storm "hark-w$1-on" "$2"; }
        echo "### Resume storm"
        echo
        echo "\`bench/resume_storm.mjs\`: $(fmt_int "$STORM_CLIENTS") clients, each on its own public channel (\`storm-<i>\`)."
        echo "One event per channel gives each client its \`since\`; then $STORM_MISSED events are published to every"
        echo "channel with nobody connected (\`batch_events\`, 10 per request, 8 keep-alive connections); then"
        echo "all clients connect at once and subscribe with \`since\`. Timed from the first connect to the"
        echo "last \`hark:resumed\` \`{\"recovered\":true,\"count\":$STORM_MISSED}\`; every client must get exactly its"
        echo "events, in order, with the ids the REST answers gave. Server CPU from \`/proc/PID/stat\`."
        echo
        echo "| figure | hark w1 | hark w2 |"
        echo "| --- | ---: | ---: |"
        echo "| clients recovered, of $(fmt_int "$STORM_CLIENTS") | $(fmt_int "$(sv 1 recovered)") | $(fmt_int "$(sv 2 recovered)") |"
        echo "| **first connect → last \`hark:resumed\`** | **$(fmt_msv "$(sv 1 storm_ms)")** | **$(fmt_msv "$(sv 2 storm_ms)")** |"
        echo "| per client, connect → \`hark:resumed\`: p50 / p99 | $(fmt_msv "$(sv 1 p50_ms)") / $(fmt_msv "$(sv 1 p99_ms)") | $(fmt_msv "$(sv 2 p50_ms)") / $(fmt_msv "$(sv 2 p99_ms)") |"
        echo "| events replayed | $(fmt_int "$(sv 1 events)") | $(fmt_int "$(sv 2 events)") |"
        echo "| events replayed/s over the storm | $(fmt_int "$(sv 1 replay_events_per_s)") | $(fmt_int "$(sv 2 replay_events_per_s)") |"
        echo "| server CPU during the storm | $(sv 1 srv_cpu_s) s ($(sv 1 srv_cpu_ms_per_client) ms per client) | $(sv 2 srv_cpu_s) s ($(sv 2 srv_cpu_ms_per_client) ms per client) |"
        echo "| the client's own CPU (Node, one thread) during the storm | $(sv 1 client_cpu_s) s | $(sv 2 client_cpu_s) s |"
        echo "| server RSS before / after the storm | $(fmt_mb "$(sv 1 rss0_kb)") / $(fmt_mb "$(sv 1 rss1_kb)") | $(fmt_mb "$(sv 2 rss0_kb)") / $(fmt_mb "$(sv 2 rss1_kb)") |"
        echo "| missing / duplicate / out of order / wrong id / errors | $(sv 1 missing) / $(sv 1 dup) / $(sv 1 ooo) / $(sv 1 bad_id) / $(sv 1 errors)$(e="$(errs resume_storm hark-w1-on)"; echo "${e:+ (error: $e)}") | $(sv 2 missing) / $(sv 2 dup) / $(sv 2 ooo) / $(sv 2 bad_id) / $(sv 2 errors)$(e="$(errs resume_storm hark-w2-on)"; echo "${e:+ (error: $e)}") |"
        echo "| publishing the $(fmt_int "$((STORM_CLIENTS * STORM_MISSED))") missed events: events/s (batch requests/s) | $(fmt_int "$(sv 1 pub_events_per_s)") ($(fmt_int "$(sv 1 pub_requests_per_s)")) | $(fmt_int "$(sv 2 pub_events_per_s)") ($(fmt_int "$(sv 2 pub_requests_per_s)")) |"
        echo
        echo "The clients are one Node process: when its CPU is near the storm's duration, the time is"
        echo "the client's as much as the server's, and the server CPU is the better figure."
        echo
    fi

    if has_part memory; then
        mv_() { last history_memory "hark-w$MEMORY_WORKERS-on" "$1"; }
        echo "### Memory per idle kept channel"
        echo
        echo "\`bench/history_memory.mjs\`: one 64-byte event to each of $(fmt_int "$MEMORY_CHANNELS") channels nobody"
        echo "subscribes to (\`batch_events\`, 10 channels per request, 8 keep-alive connections), after"
        echo "$(fmt_int "$(mv_ warmup)") warm-up channels; hark RSS (\`VmRSS\`) once it stops moving. hark w$MEMORY_WORKERS."
        echo
        echo "| figure | hark w$MEMORY_WORKERS |"
        echo "| --- | ---: |"
        echo "| RSS at start / after warm-up / at $(fmt_int "$(mv_ mid_channels)") / at $(fmt_int "$MEMORY_CHANNELS") channels | $(fmt_mb "$(mv_ rss_start_kb)") / $(fmt_mb "$(mv_ rss0_kb)") / $(fmt_mb "$(mv_ rss_mid_kb)") / $(fmt_mb "$(mv_ rss1_kb)") |"
        echo "| **bytes of RSS per idle kept channel** (RSS at $(fmt_int "$MEMORY_CHANNELS") − after warm-up) / $(fmt_int "$MEMORY_CHANNELS") | **$(fmt_int "$(mv_ bytes_per_channel)")** |"
        echo "| marginal, $(fmt_int "$(mv_ mid_channels)") → $(fmt_int "$MEMORY_CHANNELS") channels | $(fmt_int "$(mv_ marginal_bytes_per_channel)") |"
        echo "| on disk (\`history.sqlite3\` + WAL), bytes per channel | $(fmt_int "$(mv_ disk_bytes_per_channel)") |"
        echo "| channels published per second (one event each) | $(fmt_int "$(mv_ pub_channels_per_s)") |"
        e="$(errs history_memory "hark-w$MEMORY_WORKERS-on")"
        [[ -n "$e" ]] && echo "| error | $e |"
        echo
        echo "What bounds it: the history thread keeps the heads of at most"
        echo "$(fmt_int "${CACHE_MAX:-?}") channels (the default of the server key \`history_cache_channels\`); past that it"
        echo "forgets them all and reloads a channel's head from the store when it is next used, so"
        echo "this per-channel cost stops growing at about $(fmt_int "${CACHE_MAX:-0}") × the figure above. The rest is"
        if [[ -n "$CACHE_PRAGMA" ]]; then
            echo "SQLite's page cache for its one connection (\`$CACHE_PRAGMA\` in \`src/store/store_sqlite.c\`)."
        else
            echo "SQLite's page cache for its one connection (hark sets no \`cache_size\`, so SQLite's default"
            echo "\`-2000\`: about 2 MB), part of the warm-up above."
        fi
        echo "Beyond that, more kept channels grow the store on disk (up to \`max_events\` events per"
        echo "channel, for \`max_age_s\`), not memory."
        echo
    fi

    if [[ -s "$NOTES" ]]; then
        echo "Notes from this run:"
        echo
        sed 's/^/- /' "$NOTES"
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
log "wrote $OUT ($((T_END - T_START)) s); raw results in $RAW/"
if ((FAIL)); then
    log "a run lost, reordered or duplicated events, did not recover every resume, or failed: see $OUT"
    exit 1
fi
exit 0
