#!/usr/bin/env bash
# bench/soak.sh — the long churn soak: thousands of clients connecting,
# subscribing (public, private, presence), sending client events and dropping
# abruptly, for 30 minutes, while REST publishes flow to control subscribers
# that must receive every one of them in order. Server RSS is sampled all along
# and must stay flat after warm-up. tests/e2e/churn.test.mjs is the short
# version that runs in `make test`; both use tests/e2e/lib/churn.mjs.
#
#   bench/soak.sh                                  # hark, 30 minutes
#   SOAK_SECONDS=60 SOAK_SAMPLE_SECONDS=10 bench/soak.sh   # a quick check
#   SOAK_SERVER="hark soketi" bench/soak.sh        # then Soketi for as long, for a ratio
#   HARK_BIN=/path/to/hark bench/soak.sh           # another build (nothing is built here)
#
# Writes build/bench/soak/: rss.csv (hark: elapsed_s,rss_kb,connections_open),
# rss-soketi.csv, result-<server>.json (the driver's counts), server logs, and
# summary.md, a markdown section for docs/benchmarks.md (also printed). Exits
# non-zero if a run lost, reordered or duplicated a control event, left a
# handshake, subscription or REST request unanswered for 10 s, or a server
# did not exit cleanly.
#
# Environment: SOAK_SECONDS (per server, default 1800), SOAK_SAMPLE_SECONDS
# (default 30), SOAK_WARMUP_SECONDS (default 300, or a quarter of a shorter
# run), SOAK_CHURNERS (concurrent churning clients, default 2000),
# SOAK_LIFETIME_MS (how long a churner stays once subscribed, default
# 1000-8000), SOAK_TRIGGER_RATE / SOAK_NOISE_RATE (REST publishes/s to the
# controls / to churners' channels, default 40 each), SOAK_WORKERS (hark
# workers, default 2), SOAK_SERVER (default hark), SOKETI_PEER_DIR (default
# ../shared/peers/soketi; Soketi runs with SOKETI_PEER_BENCH=1, which lifts
# its rate and presence limits, and user authentication off),
# SOAK_MAX_SECONDS (hard limit for the whole script, default
# (SOAK_SECONDS + 180) per server).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COMMAND=""
for v in HARK_BIN SOAK_SECONDS SOAK_SAMPLE_SECONDS SOAK_WARMUP_SECONDS SOAK_CHURNERS SOAK_LIFETIME_MS \
    SOAK_TRIGGER_RATE SOAK_NOISE_RATE SOAK_WORKERS SOAK_SERVER SOKETI_PEER_DIR; do
    val="${!v:-}"
    [[ "$val" == *" "* ]] && val="\"$val\""
    [[ -n "$val" ]] && COMMAND+="$v=$val "
done
COMMAND+="bench/soak.sh"

HARK_BIN="${HARK_BIN:-build/hark}"
SOKETI_PEER_DIR="${SOKETI_PEER_DIR:-$ROOT/../shared/peers/soketi}"
export SOAK_SECONDS="${SOAK_SECONDS:-1800}"
export SOAK_SAMPLE_SECONDS="${SOAK_SAMPLE_SECONDS:-30}"
WORKERS="${SOAK_WORKERS:-2}"
SERVERS="${SOAK_SERVER:-hark}"
OUT="build/bench/soak"
NSERVERS=$(wc -w <<< "$SERVERS")
MAX_SECONDS="${SOAK_MAX_SECONDS:-$(((SOAK_SECONDS + 180) * NSERVERS))}"

log() { echo "[soak] $*" >&2; }

HARK_BUILT="$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' plus uncommitted changes in src/')"

[[ -d tests/e2e/node_modules/ws && -d tests/e2e/node_modules/pusher ]] \
    || { log "tests/e2e/node_modules is missing: run make test-deps (or npm ci in tests/e2e)"; exit 1; }

# ---- the whole run is bounded -------------------------------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_watchdog "$MAX_SECONDS"

TMP="$(mktemp -d /tmp/hark-soak.XXXXXX)"
SRV_PID=""
DRV_PID=""
stop_server() { # stop_server LABEL: SIGTERM, 15 s, then SIGKILL; records how it ended
    [[ -n "$SRV_PID" ]] || return 0
    local rc how
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 150); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        log "server $SRV_PID did not stop in 15 s: SIGKILL"
        kill -KILL "$SRV_PID" 2>/dev/null
    fi
    wait "$SRV_PID" 2>/dev/null
    rc=$?
    how="exit $rc"
    ((rc > 128)) && how="killed by signal $((rc - 128))"
    [[ -n "${1:-}" ]] && echo "$how" > "$OUT/server-$1.txt"
    SRV_PID=""
}
cleanup() {
    [[ -n "$DRV_PID" ]] && kill -TERM "$DRV_PID" 2>/dev/null
    stop_server
    kill "$WATCHDOG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}
wait_port() { # wait_port PORT SECONDS: something accepts connections
    local end=$(($(date +%s) + $2))
    while (($(date +%s) < end)); do
        (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$SRV_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}


mkdir -p "$OUT"
rm -f "$OUT"/rss*.csv "$OUT"/result-*.json "$OUT"/server-*.txt "$OUT"/*.log "$OUT/summary.md"

# ---- one server ----------------------------------------------------------
run_one() {
    local name="$1" port workers csv
    port="$(free_port)"
    case "$name" in
    hark)
        [[ -x "$HARK_BIN" ]] || { log "no $HARK_BIN (run make)"; echo "not run: no $HARK_BIN" > "$OUT/server-hark.txt"; return 1; }
        mkdir -p "$TMP/data"
        cat > "$TMP/hark.json" <<EOF
{"host":"127.0.0.1","port":$port,"workers":$WORKERS,"log_level":"warn","data_dir":"$TMP/data",
 "apps":[{"id":"app-id","key":"app-key","secret":"app-secret","client_events":true,
          "client_event_rate":0,"max_presence_members":100000}]}
EOF
        "$HARK_BIN" --config "$TMP/hark.json" > "$OUT/hark.log" 2>&1 &
        SRV_PID=$!
        workers="$WORKERS"
        csv="$OUT/rss.csv"
        ;;
    soketi)
        soketi_installed || { log "Soketi is not installed in $SOKETI_PEER_DIR (run its install.sh): skipping"; echo "not run: not installed" > "$OUT/server-soketi.txt"; return 1; }
        SOKETI_PEER_BENCH=1 SOKETI_PEER_USER_AUTH=0 SOKETI_PEER_METRICS_PORT="$(free_port)" \
            "$SOKETI_PEER_DIR/run.sh" "$port" > "$OUT/soketi.log" 2>&1 &
        SRV_PID=$! # run.sh execs node: this is the server's pid
        workers=0  # one process; its socket ids do not name a worker
        csv="$OUT/rss-soketi.csv"
        ;;
    *) log "unknown server $name"; exit 2 ;;
    esac
    if ! wait_port "$port" 20; then
        log "$name did not listen on $port; its log:"
        tail -n 20 "$OUT/$name.log" >&2
        stop_server "$name"
        return 1
    fi
    [[ "$name" == soketi ]] && sleep 1 # soketi opens the port before it is fully up
    log "$name (pid $SRV_PID) on port $port: $SOAK_SECONDS s"
    SOAK_LABEL="$name" SOAK_PORT="$port" SOAK_SERVER_PID="$SRV_PID" SOAK_WORKERS="$workers" \
        SOAK_CSV="$csv" SOAK_RESULT="$OUT/result-$name.json" \
        timeout $((SOAK_SECONDS + 120)) node bench/soak.mjs run &
    DRV_PID=$!
    wait "$DRV_PID" || log "$name: the driver exited with $?"
    DRV_PID=""
    kill -0 "$SRV_PID" 2>/dev/null || log "$name exited during the run (see $OUT/$name.log)"
    stop_server "$name"
    if [[ "$name" == hark ]] && grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$OUT/hark.log"; then
        echo "$(cat "$OUT/server-hark.txt"), sanitizer report in hark.log" > "$OUT/server-hark.txt"
    fi
}

for s in $SERVERS; do run_one "$s"; done

# ---- summary ---------------------------------------------------------------
HARK_DESC=""
# (HARK_BUILT is read at the start: the tree may move on during a long run)
if [[ " $SERVERS " == *" hark "* ]]; then
    HARK_DESC="\`$HARK_BIN\` built from $HARK_BUILT, \`workers\` $WORKERS, \`log_level\` warn, \`client_event_rate\` 0, \`max_presence_members\` 100000, other settings default"
fi
SOKETI_DESC=""
if [[ " $SERVERS " == *" soketi "* ]] && soketi_installed; then
    SOKETI_DESC="$(node -p "require('$SOKETI_PEER_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null) on Node $(node -v), via \`../shared/peers/soketi/run.sh\` with \`SOKETI_PEER_BENCH=1 SOKETI_PEER_USER_AUTH=0\`"
fi
SOAK_DIR="$OUT" SOAK_LABELS="$SERVERS" SOAK_COMMAND="$COMMAND" SOAK_LOAD="$LOAD_START" \
    SOAK_DATE="$(date -u -d "@$T_START" '+%Y-%m-%d %H:%M UTC')" SOAK_TOOK=$(($(date +%s) - T_START)) \
    SOAK_HARK_DESC="$HARK_DESC" SOAK_SOKETI_DESC="$SOKETI_DESC" \
    node bench/soak.mjs report
rc=$?
log "summary: $OUT/summary.md"
exit $rc
