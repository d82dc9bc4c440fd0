#!/usr/bin/env bash
# bench/chat.sh — what hark's chat state costs: unread counts, typing and read
# receipts, written to bench/CHAT.md. Usage (from anywhere; nothing is built
# but the load generator, whose freeport / waitport helpers it uses):
#
#   bench/chat.sh                              # everything, about 2 minutes
#   CHAT_PARTS="typing receipts" bench/chat.sh # a subset: unread typing receipts
#   CHAT_WORKERS=2 bench/chat.sh               # hark w2 only (default: w1 and w2)
#   CHAT_OUT=/tmp/c.md bench/chat.sh           # write the report elsewhere
#   HARK_BIN=build/dev/hark bench/chat.sh      # another build of hark
#
# 1. unread    bench/chat_unread.mjs: user "me" with 200 conversations
#              (private-conv-0 … 199) of 1,000 events each, authored by others;
#              a read cursor at event 500 on the first 100, none on the other
#              100 (me subscribed to them while signed in). GET
#              /apps/{id}/users/me/unread with the `pusher` SDK for
#              BENCH_DURATION s each: every channel, then channels=<20 names>,
#              one request at a time and 8 in flight. Requests/s, p50/p99, and
#              hark_history_unread_statements_total delta / requests (GET /metrics).
# 2. typing    bench/chat_typing.mjs: 1,000 signed-in users, 10 per channel in
#              100 private channels, each sending hark:typing {"typing":true}
#              every 100 ms for 10 s. Relayed deliveries/s against the bound the
#              throttle implies (1,000 × 9 / 2 s = 4,500/s), server CPU.
# 3. receipts  bench/chat_receipts.mjs: one channel with 1,000 subscribers; a
#              reader moves its cursor 1,000 times (hark:read, 16 in flight),
#              then 1,000 events of the same frame size are triggered over REST
#              (16 in flight, 16 connections); RECEIPT_ROUNDS times, alternating.
#              Deliveries/s of each (the best round) and receipts / events.
#
# Every part gets a fresh hark (workers 1, then 2) on a free loopback port
# with an empty data_dir, stopped after it. The app: `max_batch_events` 100, one history
# rule keeping every channel ("*", UNREAD_EVENTS or more events, 24 h),
# `typing_throttle_ms` TYPING_THROTTLE_MS. Raw RESULT lines, notes, the
# drivers' output and the logs of servers that logged anything stay in
# build/bench/chat/. Exits 1 when a driver failed or saw a wrong answer, a
# lost, duplicated or misdirected frame; the figures are only reported.
# Soketi has none of these features, so it is not run.
#
# Environment: HARK_BIN (default build/hark), CHAT_OUT (default bench/CHAT.md),
# CHAT_PARTS (default "unread typing receipts"), CHAT_WORKERS (hark `workers`
# settings to run, one column each, default "1 2"), UNREAD_CONVERSATIONS (200), UNREAD_EVENTS
# (1000), UNREAD_READ_AT (500), UNREAD_SUBSET (20), UNREAD_CONCURRENCY (8),
# BENCH_DURATION (seconds per unread window, 5), TYPING_USERS (1000),
# TYPING_PER_CHANNEL (10), TYPING_INTERVAL_MS (100), TYPING_SECONDS (10),
# TYPING_THROTTLE_MS (2000), RECEIPT_SUBSCRIBERS (1000), RECEIPT_MOVES (1000),
# RECEIPT_WINDOW (16, at most 16), RECEIPT_ROUNDS (2), BENCH_MAX_SECONDS (hard limit for the whole
# script, default 280).
# shellcheck disable=SC2317 # cleanup and the table cells are called through trap and row
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

COMMAND=""
for v in HARK_BIN HARK_COMMIT CHAT_OUT CHAT_PARTS CHAT_WORKERS UNREAD_CONVERSATIONS UNREAD_EVENTS UNREAD_READ_AT \
    UNREAD_SUBSET UNREAD_CONCURRENCY BENCH_DURATION TYPING_USERS TYPING_PER_CHANNEL TYPING_INTERVAL_MS \
    TYPING_SECONDS TYPING_THROTTLE_MS RECEIPT_SUBSCRIBERS RECEIPT_MOVES RECEIPT_WINDOW RECEIPT_ROUNDS BENCH_MAX_SECONDS; do
    val="${!v:-}"
    [[ "$val" == *" "* ]] && val="\"$val\""
    [[ -n "$val" ]] && COMMAND+="$v=$val "
done
COMMAND+="bench/chat.sh"

HARK_BIN="${HARK_BIN:-build/hark}"
OUT="${CHAT_OUT:-bench/CHAT.md}"
PARTS="${CHAT_PARTS:-unread typing receipts}"
WORKERS="${CHAT_WORKERS:-1 2}"
UNREAD_CONVERSATIONS="${UNREAD_CONVERSATIONS:-200}"
UNREAD_EVENTS="${UNREAD_EVENTS:-1000}"
UNREAD_READ_AT="${UNREAD_READ_AT:-500}"
UNREAD_SUBSET="${UNREAD_SUBSET:-20}"
UNREAD_CONCURRENCY="${UNREAD_CONCURRENCY:-8}"
DUR="${BENCH_DURATION:-5}"
TYPING_USERS="${TYPING_USERS:-1000}"
TYPING_PER_CHANNEL="${TYPING_PER_CHANNEL:-10}"
TYPING_INTERVAL_MS="${TYPING_INTERVAL_MS:-100}"
TYPING_SECONDS="${TYPING_SECONDS:-10}"
TYPING_THROTTLE_MS="${TYPING_THROTTLE_MS:-2000}"
RECEIPT_SUBSCRIBERS="${RECEIPT_SUBSCRIBERS:-1000}"
RECEIPT_MOVES="${RECEIPT_MOVES:-1000}"
RECEIPT_WINDOW="${RECEIPT_WINDOW:-16}"
RECEIPT_ROUNDS="${RECEIPT_ROUNDS:-2}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-280}"
LG="build/bench/loadgen"
RAW="build/bench/chat"

log() { echo "[chat] $*" >&2; }

HARK_BUILT="${HARK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' plus uncommitted changes in src/')}"

# ---- the whole run is bounded -------------------------------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_watchdog "$MAX_SECONDS"

TMP="$(mktemp -d /tmp/hark-chat.XXXXXX)"
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

# ---- what it needs ------------------------------------------------------
bench_build_loadgen "$LG" || exit 1 # only its freeport / waitport helpers
[[ -x "$HARK_BIN" ]] || { log "no $HARK_BIN (run make)"; exit 1; }
if ! command -v node > /dev/null || [[ ! -d tests/e2e/node_modules/ws || ! -d tests/e2e/node_modules/pusher ]]; then
    log "needs node and tests/e2e/node_modules (make test-deps)"
    exit 1
fi
# 1,000 WebSockets on each side, plus the server's own descriptors.
ulimit -n "$(ulimit -Hn)" 2> /dev/null
((RECEIPT_WINDOW >= 1 && RECEIPT_WINDOW <= 16)) || { log "RECEIPT_WINDOW must be 1-16"; exit 2; }

# ---- start / stop -------------------------------------------------------
# start_server NAME: NAME is hark-w<W>; a fresh data_dir, the app below.
MAX_EVENTS=$((UNREAD_EVENTS > 10000 ? UNREAD_EVENTS : 10000))
APP_EXTRA=",\"max_batch_events\":100,\"typing_throttle_ms\":$TYPING_THROTTLE_MS"
APP_EXTRA+=",\"history\":[{\"channels\":\"*\",\"max_events\":$MAX_EVENTS,\"max_age_s\":86400}]"
PORT=""
start_server() {
    local name="$1" w data
    SRV_NAME="$name"
    w="${name#hark-w}"
    PORT="$("$LG" freeport)"
    data="$(mktemp -d "$TMP/data.XXXXXX")"
    cat > "$TMP/$name.json" <<EOF
{"host":"127.0.0.1","port":$PORT,"workers":$w,"log_level":"warn","data_dir":"$data",
 "shutdown_grace_ms":200,
 "apps":[{"id":"app-id","key":"app-key","secret":"app-secret"$APP_EXTRA}]}
EOF
    : > "$TMP/server.log"
    "$HARK_BIN" --config "$TMP/$name.json" >> "$TMP/server.log" 2>&1 &
    SRV_PID=$!
    if ! "$LG" waitport "$PORT" 20; then
        log "$name did not listen on $PORT; its log:"
        tail -n 20 "$TMP/server.log" >&2
        bench_stop_server
        return 1
    fi
    return 0
}


# run_node PART NAME SECONDS SCRIPT ARGS...: a node driver against a fresh
# server, bounded by SECONDS (--timeout) and `timeout` a little later.
run_node() {
    local part="$1" name="$2" secs="$3" script="$4" rc
    shift 4
    start_server "$name" || { echo "RESULT scenario=$part label=$name error=server_start" >> "$RESULTS"; return; }
    log "$part / $name: node $script $*"
    bench_child $((secs + 15)) node "$script" "$PORT" --server-pid "$SRV_PID" --label "$name" --timeout "$secs" "$@"
    rc=$BENCH_RC
    grep -v '^RESULT' "$TMP/out" > "$RAW/$part-$name.out"
    bench_alive_check "$part"
    bench_stop_server
    if grep -q '^RESULT' "$TMP/out"; then
        grep '^RESULT' "$TMP/out" >> "$RESULTS"
    else
        echo "RESULT scenario=$part label=$name error=node_rc_$rc" >> "$RESULTS"
        tail -n 5 "$TMP/err" >&2
    fi
    grep -h 'NOTE' "$TMP/out" | sed "s|^ *NOTE: |$part / $name: NOTE: |" >> "$NOTES"
    ((rc == 0)) || echo "$part / $name: the driver exited with status $rc" >> "$NOTES"
}

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- the parts ------------------------------------------------------------
for w in $WORKERS; do
    if has_part unread; then
        run_node chat_unread "hark-w$w" 150 bench/chat_unread.mjs --conversations "$UNREAD_CONVERSATIONS" \
            --events "$UNREAD_EVENTS" --read-at "$UNREAD_READ_AT" --subset "$UNREAD_SUBSET" \
            --concurrency "$UNREAD_CONCURRENCY" --duration "$DUR"
    fi
    if has_part typing; then
        run_node chat_typing "hark-w$w" 90 bench/chat_typing.mjs --users "$TYPING_USERS" \
            --per-channel "$TYPING_PER_CHANNEL" --interval-ms "$TYPING_INTERVAL_MS" --duration "$TYPING_SECONDS" \
            --throttle-ms "$TYPING_THROTTLE_MS"
    fi
    if has_part receipts; then
        run_node chat_receipts "hark-w$w" 150 bench/chat_receipts.mjs --subscribers "$RECEIPT_SUBSCRIBERS" \
            --moves "$RECEIPT_MOVES" --window "$RECEIPT_WINDOW" --rounds "$RECEIPT_ROUNDS"
    fi
done
T_END=$(date +%s)

# ---- report -------------------------------------------------------------
# get FIELD KEY=VALUE…: FIELD of the last RESULT line carrying every KEY=VALUE.
get() {
    local field="$1"
    shift
    awk -v f="$field" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        $1 == "RESULT" { ok = 0; v = "";
            for (i = 2; i <= NF; i++) {
                for (j = 1; j <= n; j++) if ($i == w[j]) ok++;
                if (index($i, f "=") == 1) v = substr($i, length(f) + 2) }
            if (ok == n) last = v }
        END { print last }' "$RESULTS"
}
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%\047d", v }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.2f ms", v }'; }
fmt_msv() { awk -v v="$1" 'BEGIN { if (v == "") { print "–"; exit } printf "%.0f ms", v }'; }
plain() { echo "${1:-–}"; }
pcts() { [[ -n "$1" ]] && echo "$1%" || echo "–"; }
per() { # a b scale decimals: a * scale / b
    awk -v a="$1" -v b="$2" -v s="$3" -v d="$4" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) { print "–"; exit } printf "%.*f", d, a * s / b }'
}
errs() { # error field of a part's run, if any
    local e
    e="$(get error "scenario=$1" "label=$2")"
    [[ -n "$e" ]] && echo " (error: $e)"
}

# The exit status: a run with an error, or one that was not right.
FAIL=0
if grep -q '^RESULT.* error=' "$RESULTS"; then FAIL=1; fi
if awk '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "=");
        if ((kv[1] == "bad" || kv[1] == "errors" || kv[1] == "lost" || kv[1] == "dup") && kv[2] != 0) bad = 1;
        if (kv[1] == "ok" && kv[2] != 1) bad = 1 } }
        END { exit !bad }' "$RESULTS"; then FAIL=1; fi

RUN_DATE="$(date -u -d "@$T_START" '+%Y-%m-%d %H:%M UTC')"
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; open-file limit $(ulimit -n)"
SQLITE_VER="$(pkg-config --modversion sqlite3 2>/dev/null)"
COLS=""
SEP=""
for w in $WORKERS; do COLS+=" hark w$w |"; SEP+=" ---: |"; done
# row TITLE CMD…: one cell per worker setting, CMD run with the label appended.
row() {
    local title="$1" line w
    shift
    line="| $title |"
    for w in $WORKERS; do line+=" $("$@" "hark-w$w") |"; done
    echo "$line"
}

{
    echo "## Chat state: unread counts, typing, read receipts"
    echo
    echo "Generated by \`bench/chat.sh\`. hark keeps per user and channel a read cursor, answers"
    echo "unread counts in one SQL statement, relays \`hark:typing\` with a throttle and sends"
    echo "\`hark:read\` receipts when a cursor moves ([api.md](../docs/api.md#chat-state))."
    echo "Soketi (like Pusher) has none of these features: an app builds them from its own"
    echo "database and \`client-\` events, so there is nothing to compare and no Soketi column."
    echo "Each part has a fresh hark on a free port with an empty \`data_dir\`; the clients are"
    echo "Node drivers (\`bench/chat_*.mjs\`) with the real \`ws\` and \`pusher\` packages"
    echo "(the SDK signs the REST calls, the sign-ins and the private-channel subscriptions)."
    echo
    echo "- date: $RUN_DATE, run took $((T_END - T_START)) s"
    echo "- command: \`$COMMAND\` (parts: $PARTS; hark \`workers\`: $WORKERS)"
    echo "- machine: $MACHINE; load average at the start $LOAD_START"
    echo "- hark: \`$HARK_BIN\` built from $HARK_BUILT${SQLITE_VER:+, SQLite $SQLITE_VER}, \`log_level\` warn; the app: \`max_batch_events\` 100, \`typing_throttle_ms\` $TYPING_THROTTLE_MS, \`history\` \`[{\"channels\":\"*\",\"max_events\":$MAX_EVENTS,\"max_age_s\":86400}]\`, other settings default"
    echo "- Soketi: not run (it has no unread counts, typing relay or read receipts)"
    echo

    if has_part unread; then
        half=$((UNREAD_CONVERSATIONS / 2))
        echo "### Unread counts"
        echo
        echo "\`bench/chat_unread.mjs\`: user \`me\` has $(fmt_int "$UNREAD_CONVERSATIONS") conversations, \`private-conv-0\` …"
        echo "\`private-conv-$((UNREAD_CONVERSATIONS - 1))\`, of $(fmt_int "$UNREAD_EVENTS") events each (\`batch_events\`, 100 per request), every"
        echo "one authored by another user (\`\"user_id\":\"peer-<i>\"\`). The first $half have a read cursor at event"
        echo "$UNREAD_READ_AT (\`POST /users/me/read\`): $((UNREAD_EVENTS - UNREAD_READ_AT)) unread each. The other $((UNREAD_CONVERSATIONS - half)) have no cursor; \`me\`"
        echo "subscribed to them while signed in, which makes them \`me\`'s too: $UNREAD_EVENTS unread each."
        echo "\`GET /apps/app-id/users/me/unread\` through the \`pusher\` SDK's \`get({path, params})\`, for ${DUR} s"
        echo "per row, one request at a time and $UNREAD_CONCURRENCY in flight (keep-alive connections): without"
        echo "\`channels\` (all $((UNREAD_CONVERSATIONS + 1)): the conversations and \`#server-to-user-me\`,"
        echo "$(fmt_int "$(( half * (UNREAD_EVENTS - UNREAD_READ_AT) + (UNREAD_CONVERSATIONS - half) * UNREAD_EVENTS ))") unread in all), and with \`channels=\` $UNREAD_SUBSET names (half with a cursor, half"
        echo "without). Time per request: from the call to the parsed body, in the client. Every answer"
        echo "is checked (number of channels, sum of the counts; one in full first). Statements:"
        echo "\`hark_history_unread_statements_total\` from \`GET /metrics\` before and after each row."
        echo
        echo "| request | in flight | server | requests/s | p50 | p99 | statements / request | server CPU per request | server CPU, % of a core | client / machine, % of a core | wrong / errors |"
        echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        for win in all-1 "all-$UNREAD_CONCURRENCY" subset-1 "subset-$UNREAD_CONCURRENCY"; do
            for w in $WORKERS; do
                l="hark-w$w"
                g() { get "$1" scenario=chat_unread "label=$l" "window=$win"; }
                case "$win" in all-*) what="every channel ($((UNREAD_CONVERSATIONS + 1)))" ;; *) what="\`channels=\` $UNREAD_SUBSET names" ;; esac
                if [[ -z "$(g requests)" ]]; then
                    echo "| $what | ${win#*-} | hark w$w | –$(errs chat_unread "$l") | | | | | | | |"
                    continue
                fi
                echo "| $what | ${win#*-} | hark w$w | **$(fmt_int "$(g req_per_s)")** | $(fmt_ms "$(g p50_ms)") | $(fmt_ms "$(g p99_ms)") | **$(plain "$(g statements_per_request)")** | $(fmt_ms "$(g srv_cpu_ms_per_req)") | $(g srv_cpu_pct) | $(g client_cpu_pct) / $(g sys_busy_pct) | $(g bad) / $(g errors) |"
            done
        done
        echo
        for w in $WORKERS; do
            l="hark-w$w"
            g() { get "$1" scenario=chat_unread "label=$l" "$2"; }
            a="$(g srv_cpu_ms_per_req window=all-1)"; s="$(g srv_cpu_ms_per_req window=subset-1)"
            echo "hark w$w: server CPU per unread event counted, one request at a time: $(per "$a" "$(g unread_sum window=all-1)" 1000 2) µs"
            echo "(every channel), $(per "$s" "$(g unread_sum window=subset-1)" 1000 2) µs (\`channels=\`); loading the $(fmt_int "$((UNREAD_CONVERSATIONS * UNREAD_EVENTS))") events took"
            echo "$(plain "$(g publish_s window=all-1)") s ($(fmt_int "$(g pub_events_per_s window=all-1)") events/s). Server RSS $(awk -v v="$(g rss0_kb window=all-1)" 'BEGIN { printf "%.1f MB", v / 1024 }') before the requests."
            echo
        done
        echo "A request counts the unread events it finds (design.md: O(channels × log events) plus"
        echo "O(unread events retained)). The statement runs on hark's one history thread (the one that"
        echo "also stores events), one request at a time: with $UNREAD_CONCURRENCY in flight they queue there, so"
        echo "requests/s stop near one core / server CPU per request and the time per request grows."
        echo
    fi

    if has_part typing; then
        tg() { get "$1" scenario=chat_typing "label=$2"; }
        t_sent() { fmt_int "$(tg sent_per_s "$1")"; }
        t_relayed() { echo "**$(fmt_int "$(tg relayed_per_s "$1")")**"; }
        t_bound() { fmt_int "$(tg bound_per_s "$1")"; }
        t_of_bound() { pcts "$(tg of_bound_pct "$1")"; }
        t_forwarded() { pcts "$(tg forwarded_pct "$1")"; }
        t_per_user() { echo "$(plain "$(tg relays_per_user_min "$1")") – $(plain "$(tg relays_per_user_max "$1")")"; }
        t_gap() { fmt_msv "$(tg min_gap_ms "$1")"; }
        t_srv() { echo "$(plain "$(tg srv_cpu_pct "$1")") ($(plain "$(tg srv_cpu_us_per_frame_in "$1")") µs)"; }
        t_client() { echo "$(plain "$(tg client_cpu_pct "$1")") / $(plain "$(tg sys_busy_pct "$1")")"; }
        t_connect() { fmt_msv "$(tg connect_ms "$1")"; }
        t_rss() { awk -v a="$(tg rss0_kb "$1")" -v b="$(tg rss1_kb "$1")" \
            'BEGIN { if (a == "") { print "–"; exit } printf "%.1f MB / %.1f MB", a / 1024, b / 1024 }'; }
        t_checks() {
            echo "$(plain "$(tg wrong "$1")") / $(plain "$(tg self "$1")") / $(plain "$(tg errors "$1")") / $(plain "$(tg typing_false "$1")")$(errs chat_typing "$1")"
        }
        bound="$(awk -v u="$TYPING_USERS" -v p="$TYPING_PER_CHANNEL" -v t="$TYPING_THROTTLE_MS" 'BEGIN { printf "%.0f", u * (p - 1) * 1000 / t }')"
        nch=$((TYPING_USERS / TYPING_PER_CHANNEL))
        echo "### Typing"
        echo
        echo "\`bench/chat_typing.mjs\`: $(fmt_int "$TYPING_USERS") connections, each signed in as its own user (\`pusher:signin\`)"
        echo "and subscribed to one of $nch private channels, $TYPING_PER_CHANNEL users per channel. Each sends"
        echo "\`{\"event\":\"hark:typing\",\"channel\":C,\"data\":{\"typing\":true}}\` every $TYPING_INTERVAL_MS ms for $TYPING_SECONDS s"
        echo "(one Node process; a tenth of the users every $((TYPING_INTERVAL_MS / 10)) ms), $((TYPING_THROTTLE_MS / TYPING_INTERVAL_MS))× more often than"
        echo "\`typing_throttle_ms\` ($TYPING_THROTTLE_MS) lets through. Counted: the \`hark:typing\` frames with"
        echo "\`\"typing\":true\` the other users of each channel receive, until 500 ms after the last send,"
        echo "per second of sending. The bound: each user relayed once per throttle interval to"
        echo "$((TYPING_PER_CHANNEL - 1)) others, $(fmt_int "$TYPING_USERS") × $((TYPING_PER_CHANNEL - 1)) / $(awk -v t="$TYPING_THROTTLE_MS" 'BEGIN { print t / 1000 }') s = $(fmt_int "$bound")/s ($(per "$bound" "$nch" 1 0)/s per channel)."
        echo
        echo "| figure |$COLS"
        echo "| --- |$SEP"
        row "\`hark:typing\` frames sent, per second" t_sent
        row "**relayed \`typing:true\` deliveries/s**" t_relayed
        row "bound implied by the throttle, deliveries/s" t_bound
        row "relayed / bound" t_of_bound
        row "relayed / what no throttle would relay (sent × $((TYPING_PER_CHANNEL - 1)))" t_forwarded
        row "relays per user in $TYPING_SECONDS s, fewest – most (at most $((TYPING_SECONDS * 1000 / TYPING_THROTTLE_MS + 1)))" t_per_user
        row "smallest gap between two relays of one user, as one receiver got them" t_gap
        row "server CPU, % of a core (µs per frame received)" t_srv
        row "client / whole machine, % of a core" t_client
        row "sign-in + subscribe of all users" t_connect
        row "server RSS before / after" t_rss
        row "misdirected / own / errors / \`typing:false\` relayed" t_checks
        echo
        echo "A user's first \`typing:true\` goes out at once, then the first renewal at least"
        echo "$TYPING_THROTTLE_MS ms after the last relayed one: with renewals every $TYPING_INTERVAL_MS ms a user is relayed at"
        echo "0 s and then every $TYPING_THROTTLE_MS–$((TYPING_THROTTLE_MS + TYPING_INTERVAL_MS)) ms, about $((TYPING_SECONDS * 1000 / TYPING_THROTTLE_MS)) times in $TYPING_SECONDS s: the bound's rate. The"
        echo "gap is measured where the frames arrive, in the one Node process that also sends every"
        echo "renewal, so it carries that process's jitter; the throttle itself is checked by the"
        echo "relays per user (a run fails above the most the throttle allows)."
        echo
    fi

    if has_part receipts; then
        echo "### Read receipts against events"
        echo
        echo "\`bench/chat_receipts.mjs\`: $(fmt_int "$RECEIPT_SUBSCRIBERS") connections subscribed to \`private-room\` (not signed in) and"
        echo "a reader signed in as \`reader\`, subscribed too. $(fmt_int "$RECEIPT_MOVES") events were published to the channel"
        echo "before anyone subscribed; the reader then moves its cursor to each of them in turn"
        echo "(\`{\"event\":\"hark:read\",\"channel\":\"private-room\",\"data\":{\"id\":…}}\`, each to the next id), and every"
        echo "move sends each subscriber a receipt. Then $(fmt_int "$RECEIPT_MOVES") events are triggered to the channel with the"
        echo "SDK's \`trigger()\` on $RECEIPT_WINDOW keep-alive connections, data padded so that the frame each"
        echo "subscriber receives has the receipt's size. Both: at most $RECEIPT_WINDOW in flight (hark takes 16"
        echo "\`hark:read\` of a connection at once), a move or event being in flight until all"
        echo "$(fmt_int "$RECEIPT_SUBSCRIBERS") subscribers have it; timed from the first send to the last frame. Receipts"
        echo "and events alternate, $RECEIPT_ROUNDS round(s) (the next round's moves go to the next $(fmt_int "$RECEIPT_MOVES") events);"
        echo "the best round of each is shown and compared, every round is listed. Every"
        echo "subscriber must get every receipt in order with its id and every event once. Server"
        echo "write calls from \`syscw\` in \`/proc/PID/io\`. One Node process reads all $(fmt_int "$RECEIPT_SUBSCRIBERS") sockets:"
        echo "when its CPU is near 100% of a core, both rates are the client's limit as much as the"
        echo "server's, and the server CPU per delivery is the better figure."
        echo
        for w in $WORKERS; do
            l="hark-w$w"
            rg() { get "$1" scenario=chat_receipts "label=$l"; }
            if [[ -z "$(rg rcpt_deliv_per_s)" ]]; then
                echo "hark w$w: not measured$(errs chat_receipts "$l")."
                echo
                continue
            fi
            echo "| figure, hark w$w | receipts (\`hark:read\`) | events (REST trigger) |"
            echo "| --- | ---: | ---: |"
            echo "| frame each subscriber receives | $(rg frame_bytes) bytes | $(rg event_frame_bytes) bytes |"
            echo "| **deliveries/s** (best round) | **$(fmt_int "$(rg rcpt_deliv_per_s)")** | **$(fmt_int "$(rg evt_deliv_per_s)")** |"
            echo "| every round, deliveries/s | $(rg rcpt_runs | sed 's/,/, /g') | $(rg evt_runs | sed 's/,/, /g') |"
            echo "| moves/s, triggers/s | $(fmt_int "$(rg rcpt_moves_per_s)") | $(fmt_int "$(rg evt_pubs_per_s)") |"
            echo "| time for $(fmt_int "$RECEIPT_MOVES") | $(rg rcpt_secs) s | $(rg evt_secs) s |"
            echo "| sent → received by all: p50 / p99 | $(fmt_msv "$(rg rcpt_p50_ms)") / $(fmt_msv "$(rg rcpt_p99_ms)") | $(fmt_msv "$(rg evt_p50_ms)") / $(fmt_msv "$(rg evt_p99_ms)") |"
            echo "| server CPU, % of a core (µs per delivery) | $(rg rcpt_srv_cpu_pct) ($(per "$(rg rcpt_srv_cpu_s)" "$((RECEIPT_SUBSCRIBERS * RECEIPT_MOVES))" 1000000 2) µs) | $(rg evt_srv_cpu_pct) ($(per "$(rg evt_srv_cpu_s)" "$((RECEIPT_SUBSCRIBERS * RECEIPT_MOVES))" 1000000 2) µs) |"
            echo "| deliveries per server write call | $(plain "$(rg rcpt_deliv_per_write)") | $(plain "$(rg evt_deliv_per_write)") |"
            echo "| client / whole machine, % of a core | $(rg rcpt_client_cpu_pct) / $(rg rcpt_sys_busy_pct) | $(rg evt_client_cpu_pct) / $(rg evt_sys_busy_pct) |"
            echo "| **receipts / events, deliveries/s** | **$(plain "$(rg ratio)")×** | |"
            echo "| lost / wrong / duplicate / wrong size / own receipts / errors (all rounds) | $(rg lost) / $(rg bad) / $(rg dup) / $(rg wrong_size) / $(rg own_receipts) / $(rg errors)$(errs chat_receipts "$l") | |"
            echo
        done
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
    log "a run failed or saw a wrong answer, a lost, duplicated or misdirected frame: see $OUT"
    exit 1
fi
exit 0
