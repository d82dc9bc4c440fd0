#!/usr/bin/env bash
# bench/fallbacks.sh — what the HTTP fallbacks cost next to WebSockets: fan-out
# to 10,000 clients on one channel over Server-Sent Events, over long polls
# and over WebSockets, written to bench/FALLBACKS.md. Usage (from anywhere;
# nothing is built but the load generator):
#
#   bench/fallbacks.sh                              # everything, about 3 minutes
#   FALLBACK_PARTS="sse poll" bench/fallbacks.sh    # a subset: sse poll ws
#   FALLBACK_OUT=/tmp/f.md bench/fallbacks.sh       # write the report elsewhere
#   HARK_BIN=build/dev/hark bench/fallbacks.sh      # another build of hark
#
# 1. sse   node bench/fallback_fanout.mjs --mode sse: 10,000 streams
#          GET /app/app-key/sse?channels=bench (public channel) in
#          FALLBACK_PROCS (4) client processes of 2,500 (bench/fallback_client.mjs,
#          raw sockets, each process on its own loopback source address); 1 KiB
#          events published flat out with a window as the loadgen fanout
#          scenario does (4 keep-alive REST connections, at most 64 publishes in
#          flight, one being in flight until every client has it), 1 s warm-up
#          and a BENCH_DURATION (5 s) window. Deliveries/s, and server RSS
#          before / after the clients connected, per client.
# 2. poll  the same with 10,000 long-poll loops: GET /app/app-key/poll?
#          channels=bench (where "now" is), then GET …&since=<since>&wait=25
#          again and again on one keep-alive connection each.
# 3. ws    the loadgen `fanout` scenario exactly as bench/run.sh runs it (10,000
#          WebSocket subscribers on one channel, 1 KiB, window 64, sweeps of
#          300 ms, BENCH_DURATION s), against hark and against Soketi (when
#          installed; Soketi has no HTTP fallback of its own, so only its
#          WebSocket figure exists).
#
# Parts 1-2 run against hark workers 1 and 2 (FALLBACK_WORKERS), part 3
# against hark w1, w2 and Soketi. Every server gets a free loopback port, a
# fresh temporary data_dir, and is stopped after its run. Raw RESULT lines,
# notes and the logs of failed servers stay in build/bench/fallbacks/.
# Exits 1 when a run lost, duplicated or reordered an event, a client
# failed, or a run failed.
#
# FALLBACK_HEAD_TIMEOUT_MS, when set, becomes hark's http_header_timeout_ms
# for parts 1-2 (default: unset, hark's own default). Builds before c79e18c
# answered a deferred request (an event stream, a waiting poll) with 408 once
# the head deadline of its request had passed, which cut streams 10 s after
# they were accepted; FALLBACK_HEAD_TIMEOUT_MS=120000 measures such a build.
# The report says when it is set.
#
# Environment: HARK_BIN (default build/hark), SOKETI_PEER_DIR (default
# ../shared/peers/soketi), FALLBACK_OUT (default bench/FALLBACKS.md),
# FALLBACK_PARTS (default "sse poll ws"), FALLBACK_WORKERS (default "1 2"),
# FALLBACK_CLIENTS (default 10000), FALLBACK_PROCS (client processes,
# default 4), FALLBACK_WAIT (the polls' wait=, default 25),
# FALLBACK_HEAD_TIMEOUT_MS (above), BENCH_DURATION (seconds per measuring
# window, default 5), BENCH_SWEEP_MS (default 300), BENCH_OTHER_MAX (a
# loadgen run in which more than this % of a core went to other work runs
# once more, default 40), LOADGEN_PROCS (default 1), BENCH_MAX_SECONDS (hard
# limit for the whole script, default 350; a loadgen run is repeated only
# while 150 s of it are left).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

COMMAND=""
for v in HARK_BIN HARK_COMMIT SOKETI_PEER_DIR FALLBACK_OUT FALLBACK_PARTS FALLBACK_WORKERS FALLBACK_CLIENTS \
    FALLBACK_PROCS FALLBACK_WAIT FALLBACK_HEAD_TIMEOUT_MS BENCH_DURATION BENCH_SWEEP_MS BENCH_OTHER_MAX LOADGEN_PROCS \
    BENCH_MAX_SECONDS; do
    val="${!v-}"
    [[ "$val" == *" "* ]] && val="\"$val\""
    [[ -n "${!v+x}" ]] && COMMAND+="$v=$val "
done
COMMAND+="bench/fallbacks.sh"

HARK_BIN="${HARK_BIN:-build/hark}"
SOKETI_PEER_DIR="${SOKETI_PEER_DIR:-$ROOT/../shared/peers/soketi}"
OUT="${FALLBACK_OUT:-bench/FALLBACKS.md}"
PARTS="${FALLBACK_PARTS:-sse poll ws}"
WORKERS="${FALLBACK_WORKERS:-1 2}"
CLIENTS="${FALLBACK_CLIENTS:-10000}"
NPROCS="${FALLBACK_PROCS:-4}"
WAIT="${FALLBACK_WAIT:-25}"
HEAD_TIMEOUT="${FALLBACK_HEAD_TIMEOUT_MS:-}"
DUR="${BENCH_DURATION:-5}"
SWEEP="${BENCH_SWEEP_MS:-300}"
OTHER_MAX="${BENCH_OTHER_MAX:-40}"
PROCS="${LOADGEN_PROCS:-1}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-350}"
LG="build/bench/loadgen"
RAW="build/bench/fallbacks"

log() { echo "[fallbacks] $*" >&2; }

HARK_BUILT="${HARK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' plus uncommitted changes in src/')}"

# ---- the whole run is bounded -------------------------------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
LG_TIMEOUT=100 # seconds, per loadgen run
bench_watchdog "$MAX_SECONDS"

TMP="$(mktemp -d /tmp/hark-fallbacks.XXXXXX)"
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

bench_build_loadgen "$LG" || exit 1
[[ -x "$HARK_BIN" ]] || { log "no $HARK_BIN (run make)"; exit 1; }
node_ok() { command -v node > /dev/null; }

# ---- start / stop -------------------------------------------------------
# start_server NAME [EXTRA]: NAME is hark-w<W> or soketi; EXTRA is JSON
# added to hark's server keys (",\"http_header_timeout_ms\":120000").
PORT=""
start_server() {
    local name="$1" extra="${2:-}"
    SRV_NAME="$name"
    PORT="$("$LG" freeport)"
    case "$name" in
    hark-w*)
        local w="${name#hark-w}" data
        data="$(mktemp -d "$TMP/data.XXXXXX")"
        cat > "$TMP/$name.json" <<EOF
{"host":"127.0.0.1","port":$PORT,"workers":$w,"log_level":"warn","data_dir":"$data",
 "shutdown_grace_ms":200$extra,
 "apps":[{"id":"app-id","key":"app-key","secret":"app-secret"}]}
EOF
        : > "$TMP/server.log"
        "$HARK_BIN" --config "$TMP/$name.json" >> "$TMP/server.log" 2>&1 &
        SRV_PID=$!
        ;;
    soketi)
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




# run_node PART NAME EXTRA ARGS...: bench/fallback_fanout.mjs against a fresh server.
run_node() {
    local part="$1" name="$2" extra="$3" rc
    shift 3
    start_server "$name" "$extra" || { echo "RESULT scenario=fallback_$part label=$name error=server_start" >> "$RESULTS"; return; }
    log "$part / $name: node bench/fallback_fanout.mjs $*"
    bench_child 170 node bench/fallback_fanout.mjs "$PORT" --server-pid "$SRV_PID" --label "$name" "$@" --timeout 150
    rc=$BENCH_RC
    grep -v '^RESULT' "$TMP/out" > "$RAW/$part-$name.out"
    cat "$TMP/err" >> "$RAW/$part-$name.out"
    bench_alive_check "$part"
    bench_stop_server
    if grep -q '^RESULT' "$TMP/out"; then
        grep '^RESULT' "$TMP/out" >> "$RESULTS"
    else
        echo "RESULT scenario=fallback_$part label=$name error=rc_$rc" >> "$RESULTS"
    fi
    grep -v '^RESULT' "$TMP/out" | grep -h 'NOTE\|stalled:' | sed "s|^ *|$part / $name: |" >> "$NOTES"
}

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

HEAD_EXTRA=""
[[ -n "$HEAD_TIMEOUT" ]] && HEAD_EXTRA=",\"http_header_timeout_ms\":$HEAD_TIMEOUT"
NODE_ARGS=(--clients "$CLIENTS" --procs "$NPROCS" --size 1024 --window 64 --rest-conns 4 --warmup 1 --duration "$DUR")

# ---- 1-2. event streams and long polls -------------------------------------------
for part in sse poll; do
    has_part "$part" || continue
    if ! node_ok; then
        log "node is missing: skipping $part"
        echo "$part: not run, node is missing" >> "$NOTES"
        continue
    fi
    for w in $WORKERS; do
        run_node "$part" "hark-w$w" "$HEAD_EXTRA" --mode "$part" --wait "$WAIT" "${NODE_ARGS[@]}"
    done
done

# ---- 3. WebSockets: the loadgen fanout scenario of bench/run.sh --------------------
FANOUT_ARGS=(--scenario fanout --conns "$CLIENTS" --size 1024 --window 64 --bulk-interval-ms "$SWEEP" --duration "$DUR")
SOKETI_RUN=0
if has_part ws; then
    for w in $WORKERS; do
        bench_run_loadgen fanout "hark-w$w" "${FANOUT_ARGS[@]}"
    done
    if soketi_installed; then
        SOKETI_RUN=1
        bench_run_loadgen fanout soketi "${FANOUT_ARGS[@]}"
    else
        log "Soketi not installed in $SOKETI_PEER_DIR: skipping (run its install.sh)"
        echo "ws / soketi: not run, Soketi is not installed in $SOKETI_PEER_DIR" >> "$NOTES"
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
                if (kv[1] == f) v = substr($i, length(f) + 2); }
            if (ok == 2 && v != "") printf "%s%s", (n++ ? " " : ""), v }
        END { print "" }' "$RESULTS"
}
last() { vals "$@" | awk '{ print $NF }'; }
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d", v }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d ms", v }'; }
fmt_usms() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d ms", v / 1000 }'; }
fmt_mb() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.1f MB", v / 1024 }'; }
fmt_pct() { [[ -n "$1" ]] && echo "$1%" || echo "–"; }
plain_() { echo "${1:-–}"; }
per_client() { # (rss1 - rss0) kB / clients, in bytes
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a == "" || b == "" || n + 0 <= 0) { print ""; exit } printf "%d", (b - a) * 1024 / n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print "–"; exit } printf "%.2f×", a / b }'; }

FAIL=0
if grep -q '^RESULT.* error=' "$RESULTS"; then FAIL=1; fi
if awk '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "=");
        if ((kv[1] == "lost" || kv[1] == "ooo" || kv[1] == "dup" || kv[1] == "failed") && kv[2] != 0) bad = 1 } }
        END { exit !bad }' "$RESULTS"; then FAIL=1; fi

LABELS=""
for w in $WORKERS; do LABELS+=" hark-w$w"; done
COLS=""
for l in $LABELS; do COLS+=" ${l/hark-w/hark w} |"; done

RUN_DATE="$(date -u -d "@$T_START" '+%Y-%m-%d %H:%M UTC')"
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; open-file limit $(ulimit -Hn)"
SOKETI_DESC=""
if ((SOKETI_RUN)); then
    SOKETI_DESC="$(node -p "require('$SOKETI_PEER_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null) on Node $(node -v 2>/dev/null), via \`$SOKETI_PEER_DIR/run.sh\` with \`SOKETI_PEER_BENCH=1\`; WebSocket only: Soketi has no HTTP fallback of its own (no event stream, no polling)"
elif has_part ws; then
    SOKETI_DESC="not installed in \`$SOKETI_PEER_DIR\`: not measured (run its \`install.sh\`)"
fi

node_row() { # title scenario field formatter
    local line="| $1 |" l
    for l in $LABELS; do line+=" $($4 "$(last "$2" "$l" "$3")") |"; done
    echo "$line"
}
check() { # scenario label: lost / dup / ooo / failed (error)
    local e
    [[ -n "$(vals "$1" "$2" label)" ]] || { echo "–"; return; }
    e="$(last "$1" "$2" error)"
    echo "$(last "$1" "$2" lost) / $(last "$1" "$2" dup) / $(last "$1" "$2" ooo) / $(last "$1" "$2" failed)${e:+ (error: $e)}"
}

{
    echo "## HTTP fallbacks: fan-out over event streams, long polls and WebSockets"
    echo
    echo "Generated by \`bench/fallbacks.sh\`. One public channel, $(fmt_int "$CLIENTS") clients, 1 KiB events"
    echo "published flat out over REST with a window: at most 64 publishes in flight on 4 keep-alive"
    echo "connections, a publish being in flight until every client has received it (as the loadgen"
    echo "\`fanout\` scenario publishes), 1 s of warm-up, then a ${DUR} s window. The same channel is"
    echo "served three ways: Server-Sent Events (\`GET /app/app-key/sse?channels=bench\`), long polls"
    echo "(\`GET /app/app-key/poll?channels=bench&since=…&wait=$WAIT\` in a loop, one keep-alive connection"
    echo "per client) and WebSockets (the loadgen). Each run has a fresh server on a free port with"
    echo "an empty \`data_dir\`; the channel is kept in history (the default), so every event is stored"
    echo "before it goes out, whatever the transport."
    echo
    echo "- date: $RUN_DATE, run took $((T_END - T_START)) s"
    echo "- command: \`$COMMAND\` (parts: $PARTS; hark \`workers\`: $WORKERS)"
    echo "- machine: $MACHINE; load average at the start $LOAD_START"
    echo "- hark: \`$HARK_BIN\` built from $HARK_BUILT, \`log_level\` warn, other settings default$([[ -n "$HEAD_TIMEOUT" ]] && echo "; for the event streams and polls \`http_header_timeout_ms\` $HEAD_TIMEOUT (see below)")"
    [[ -n "$SOKETI_DESC" ]] && echo "- Soketi: $SOKETI_DESC"
    echo "- clients: event streams and polls: \`bench/fallback_fanout.mjs\` with $NPROCS client processes (\`bench/fallback_client.mjs\`, raw sockets, each on its own loopback source address) of $(fmt_int "$((CLIENTS / NPROCS))") clients; WebSockets: \`build/bench/loadgen --scenario fanout\` exactly as \`bench/run.sh\` runs it (\`--conns $CLIENTS --size 1024 --window 64 --bulk-interval-ms $SWEEP --duration $DUR --procs $PROCS\`)"
    echo
    echo "### Deliveries per second, side by side"
    echo
    echo "| transport |$COLS Soketi |"
    echo "| --- |$(for _ in $LABELS; do printf ' ---: |'; done) ---: |"
    line="| Server-Sent Events |"; for l in $LABELS; do line+=" $(fmt_int "$(last fallback_sse "$l" deliv_per_s)") |"; done; echo "$line no fallback |"
    line="| long polls (wait=$WAIT) |"; for l in $LABELS; do line+=" $(fmt_int "$(last fallback_poll "$l" deliv_per_s)") |"; done; echo "$line no fallback |"
    line="| WebSockets (loadgen \`fanout\`) |"; for l in $LABELS; do line+=" $(fmt_int "$(last fanout "$l" deliv_per_s)") |"; done; echo "$line $(fmt_int "$(last fanout soketi deliv_per_s)") |"
    line="| event streams / WebSockets |"; for l in $LABELS; do line+=" $(ratio "$(last fallback_sse "$l" deliv_per_s)" "$(last fanout "$l" deliv_per_s)") |"; done; echo "$line |"
    line="| long polls / WebSockets |"; for l in $LABELS; do line+=" $(ratio "$(last fallback_poll "$l" deliv_per_s)" "$(last fanout "$l" deliv_per_s)") |"; done; echo "$line |"
    line="| event streams / Soketi's WebSockets |"; for l in $LABELS; do line+=" $(ratio "$(last fallback_sse "$l" deliv_per_s)" "$(last fanout soketi deliv_per_s)") |"; done; echo "$line |"
    line="| long polls / Soketi's WebSockets |"; for l in $LABELS; do line+=" $(ratio "$(last fallback_poll "$l" deliv_per_s)" "$(last fanout soketi deliv_per_s)") |"; done; echo "$line |"
    echo
    echo "The clients share the 2 cores with the server: for event streams and polls they are Node"
    echo "processes that parse every record, for WebSockets the C load generator that reads in sweeps."
    echo "The CPU rows below say who had the cores; where the machine was full, a figure is the"
    echo "machine's as much as the server's, and server CPU per delivery is the fairer comparison."
    echo

    for part in sse poll; do
        has_part "$part" || continue
        sc="fallback_$part"
        if [[ "$part" == sse ]]; then
            echo "### Server-Sent Events"
            echo
            echo "Each client: \`GET /app/app-key/sse?channels=bench\`, ready once its stream carried"
            echo "\`pusher_internal:subscription_succeeded\`; every record of the bench event is one delivery"
            echo "(parsed as far as its \`id:\` line and the publish number in its data)."
        else
            echo "### Long polls"
            echo
            echo "Each client: \`GET /app/app-key/poll?channels=bench\` (no \`since\`: where \"now\" is), then"
            echo "\`GET …&since=<the answer's since>&wait=$WAIT\` in a loop on its keep-alive connection; ready once"
            echo "its first waiting poll is sent; every event of an answer is one delivery. A woken poll runs"
            echo "one store statement (\`hark_history_poll_statements_total\`), a waiting one none."
        fi
        echo
        echo "| figure |$COLS"
        echo "| --- |$(for _ in $LABELS; do printf ' ---: |'; done)"
        node_row "clients ready, of $(fmt_int "$CLIENTS")" "$sc" ready fmt_int
        node_row "all connected and ready in" "$sc" connect_ms fmt_ms
        if [[ "$part" == sse ]]; then
            node_row "\`hark_sessions{transport=\"sse\"}\` once connected" "$sc" server_gauge fmt_int
        else
            node_row "\`hark_history_polls_waiting\` once connected" "$sc" server_gauge fmt_int
        fi
        node_row "server RSS before the clients connect" "$sc" rss_start_kb fmt_mb
        node_row "server RSS with every client connected (settled)" "$sc" rss_ready_kb fmt_mb
        node_row "**server memory per client** (the difference / clients), bytes" "$sc" bytes_per_client fmt_int
        node_row "server RSS at the end" "$sc" rss_end_kb fmt_mb
        line="| server RSS peak |"; for l in $LABELS; do line+=" $(fmt_mb "$(last "$sc" "$l" rss_peak_kb)") |"; done; echo "$line"
        node_row "**deliveries/s**" "$sc" deliv_per_s fmt_int
        node_row "publishes/s acknowledged" "$sc" pubs_per_s fmt_int
        node_row "publish → received by every client, p50" "$sc" all_got_p50_ms fmt_ms
        node_row "publish → received by every client, p99" "$sc" all_got_p99_ms fmt_ms
        if [[ "$part" == poll ]]; then
            node_row "poll statements/s (\`hark_history_poll_statements_total\`)" "$sc" statements_per_s fmt_int
            node_row "poll requests over the run" "$sc" polls fmt_int
            node_row "events per answer" "$sc" events_per_answer plain_
        fi
        node_row "server CPU, % of a core" "$sc" srv_cpu fmt_pct
        line="| client processes' CPU, % of a core (busiest process) |"
        for l in $LABELS; do line+=" $(fmt_pct "$(last "$sc" "$l" client_cpu)") ($(fmt_pct "$(last "$sc" "$l" client_max_proc)")) |"; done; echo "$line"
        node_row "whole machine busy, % of a core (of 200%)" "$sc" sys_busy fmt_pct
        node_row "… of which neither server nor clients (softirq, other work on the machine)" "$sc" sys_other fmt_pct
        line="| events delivered / expected |"
        for l in $LABELS; do line+=" $(fmt_int "$(last "$sc" "$l" delivered)") / $(fmt_int "$(last "$sc" "$l" expected)") |"; done; echo "$line"
        line="| lost / duplicate / out of order / failed clients |"
        for l in $LABELS; do line+=" $(check "$sc" "$l") |"; done; echo "$line"
        echo
    done

    if has_part ws; then
        echo "### WebSockets (loadgen \`fanout\`)"
        echo
        echo "The \`fanout\` scenario of \`bench/run.sh\`, unchanged. Its latency is trigger→receipt at 100"
        echo "probe subscribers. Memory here is the RSS growth over the whole run (connecting and"
        echo "publishing) per subscriber, so an upper bound next to the figures above."
        echo
        echo "| figure |$COLS Soketi |"
        echo "| --- |$(for _ in $LABELS; do printf ' ---: |'; done) ---: |"
        wrow() { # title field formatter
            local line="| $1 |" l
            for l in $LABELS soketi; do line+=" $($3 "$(last fanout "$l" "$2")") |"; done
            echo "$line"
        }
        wrow "subscribers ready" ready fmt_int
        wrow "**deliveries/s**" deliv_per_s fmt_int
        wrow "publishes/s acknowledged" pubs_per_s fmt_int
        wrow "trigger→receipt p50 (probes)" p50_us fmt_usms
        wrow "trigger→receipt p99 (probes)" p99_us fmt_usms
        wrow "server RSS before the subscribers connect" rss0_kb fmt_mb
        line="| server RSS at the end |"; for l in $LABELS soketi; do line+=" $(fmt_mb "$(last fanout "$l" rss_end_kb)") |"; done; echo "$line"
        line="| RSS growth over the run per subscriber, bytes |"
        for l in $LABELS soketi; do line+=" $(fmt_int "$(per_client "$(last fanout "$l" rss0_kb)" "$(last fanout "$l" rss_end_kb)" "$(last fanout "$l" ready)")") |"; done; echo "$line"
        wrow "server CPU, % of a core" srv_cpu fmt_pct
        line="| load generator CPU, % of a core (busiest process) |"
        for l in $LABELS soketi; do line+=" $(fmt_pct "$(last fanout "$l" lg_cpu)") ($(fmt_pct "$(last fanout "$l" lg_max_proc)")) |"; done; echo "$line"
        wrow "whole machine busy, % of a core (of 200%)" sys_busy fmt_pct
        wrow "… of which neither server nor load generator (softirq, other work)" sys_other fmt_pct
        line="| lost / duplicate / out of order / failed |"
        for l in $LABELS soketi; do
            if [[ -n "$(vals fanout "$l" label)" ]]; then
                e="$(last fanout "$l" error)"
                line+=" $(last fanout "$l" lost) / $(last fanout "$l" dup) / $(last fanout "$l" ooo) / $(last fanout "$l" failed)${e:+ (error: $e)} |"
            else
                line+=" – |"
            fi
        done
        echo "$line"
        echo
        if ((SOKETI_RUN)); then
            echo "Soketi has no HTTP fallback of its own: pusher-js falls back to pusher.com's hosts"
            echo "(\`sockjs-*.pusher.com\`), not to the Soketi server, so its WebSocket figure is the only one."
        else
            echo "Soketi was not measured in this run (not installed); it has no HTTP fallback of its own,"
            echo "so only a WebSocket figure would exist for it."
        fi
        echo
    fi

    if [[ -n "$HEAD_TIMEOUT" ]] && { has_part sse || has_part poll; }; then
        echo "\`http_header_timeout_ms\` was set to $HEAD_TIMEOUT for the event streams and polls"
        echo "(\`FALLBACK_HEAD_TIMEOUT_MS\`): hark builds before c79e18c answered a deferred request (an"
        echo "open event stream, a waiting poll) with \`408 Request Timeout\` once the head deadline of"
        echo "that request (10 s after the connection was accepted, by default) had passed."
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
    log "a run lost, duplicated or reordered events, a client failed, or a run failed: see $OUT"
    exit 1
fi
exit 0
