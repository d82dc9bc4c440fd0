// bench/chat_receipts.mjs — read receipts (hark:read) against events of the
// same frame size, fanned out to one channel, against a running hark.
//
//   node bench/chat_receipts.mjs PORT [--subscribers 1000] [--moves 1000] [--window 16]
//        [--rounds 2] [--rest-conns <window>] [--batch 100] [--connect-concurrency 100] [--server-pid PID]
//        [--timeout 120] [--label NAME] [--host 127.0.0.1]
//        [--app-id app-id --key app-key --secret app-secret]
//
// The app must keep the events of private-room (more than --moves of them)
// and accept --batch items per POST /batch_events.
//
// 1. --moves × --rounds events are published to private-room while nobody is
//    subscribed (POST /batch_events, --batch per request, one after another:
//    their ids, from the answers, are in order).
// 2. --subscribers connections subscribe to private-room (signed with the
//    `pusher` SDK's authorizeChannel; not signed in), and one reader
//    connection signs in as "reader" and subscribes too. One event with
//    data "000000" is triggered: its frame size at the subscribers, E0,
//    calibrates step 4.
// 3. Receipts: the reader sends {"event":"hark:read","channel":"private-room",
//    "data":{"id":id}} --moves times, each moving its cursor to the next of
//    the events of step 1 (the first --moves in round 1, …); every move sends each subscriber one receipt frame
//    ({"event":"hark:read",…,"data":"{\"user_id\":\"reader\",\"id\":…}"}, R
//    bytes). At most --window moves are in flight; a move is in flight until
//    every subscriber has received its receipt (hark takes at most 16
//    hark:read requests of a connection at once).
// 4. Events: --moves events are triggered to private-room with the SDK's
//    trigger() on --rest-conns keep-alive connections (default: --window, so
//    that as many triggers as moves can be at the server at once), data
//    padded so that each delivered frame is R bytes too; at most --window in
//    flight, an event being in flight until every subscriber has received it.
// Steps 3 and 4 alternate --rounds times; the round with the most
// deliveries/s of each kind is reported (every round is listed), and the
// ratio is best receipts / best events. Each phase is timed from its first
// send to the last subscriber's last frame: deliveries/s = subscribers ×
// moves / that time; per move or event, send → received by all, p50/p99. Checked: every subscriber gets every
// receipt in order with the right id and every event exactly once, every
// frame of a phase is R bytes, the reader gets no receipt of its own.
// Server CPU from /proc/PID/stat and its write calls (syscw in /proc/PID/io:
// how many frames one write carries), this process's CPU too: one Node process
// reads every frame, so when it is near 100% of a core the figure is the
// client's limit as much as the server's.
//
// Prints a human summary and one `RESULT key=value …` line (bench/chat.sh
// parses it). Exits 0 when nothing was lost, duplicated or wrong. Bounded
// by --timeout seconds.
import { performance } from 'node:perf_hooks';
import {
    busyPct, cpuSeconds, inParallel, loadNote, machineTicks, openClient, ownCpuSeconds, parseArgs as parseWith, pct,
    resultLine, rssKb, serverSdk, writeCalls,
} from './lib.mjs';

function parseArgs(argv) {
    const defaults = {
        host: '127.0.0.1', port: 0, subscribers: 1000, moves: 1000, window: 16, rounds: 2, restConns: 0, batch: 100,
        connectConcurrency: 100, serverPid: 0, timeout: 120, label: 'hark',
        appId: 'app-id', key: 'app-key', secret: 'app-secret',
    };
    const names = {
        '--host': 'host', '--subscribers': 'subscribers', '--moves': 'moves', '--window': 'window', '--rounds': 'rounds',
        '--rest-conns': 'restConns', '--batch': 'batch', '--connect-concurrency': 'connectConcurrency',
        '--server-pid': 'serverPid', '--timeout': 'timeout', '--label': 'label',
        '--app-id': 'appId', '--key': 'key', '--secret': 'secret',
    };
    const o = parseWith(argv, defaults, names, usage);
    if (!o.restConns) o.restConns = o.window;
    if (!(o.subscribers >= 1 && o.moves >= 1 && o.moves < 1e6 && o.window >= 1 && o.window <= 16 && o.rounds >= 1 && o.restConns >= 1
        && o.batch >= 1 && o.connectConcurrency >= 1 && o.timeout > 0)) usage('bad counts (--window 1-16)');
    return o;
}

function usage(why) {
    if (why) process.stderr.write(`chat_receipts: ${why}\n`);
    process.stderr.write('usage: node bench/chat_receipts.mjs PORT [--subscribers 1000] [--moves 1000] [--window 16]\n'
        + '       [--rounds 2] [--rest-conns <window>] [--batch 100] [--connect-concurrency 100] [--server-pid PID]\n'
        + '       [--timeout 120] [--label NAME]\n');
    process.exit(2);
}

const O = parseArgs(process.argv.slice(2));
const say = (line) => process.stderr.write(`[receipts] ${line}\n`);
const CH = 'private-room';
const N = O.subscribers;
const K = O.moves;
const DEADLINE = performance.now() + O.timeout * 1000;
const sdk = serverSdk(O);

async function call(what, promise) {
    let res;
    try { res = await promise; } catch (e) {
        throw new Error(`${what}: ${e.status ? `HTTP ${e.status}: ${String(e.body).slice(0, 200)}` : e.message}`);
    }
    return res.json();
}

// ---- what the subscribers see ----------------------------------------------------------

// The phase the frames belong to: 'idle', 'cal', 'receipts' or 'events'.
let phase = 'idle';
let P = null; // the phase's state
const st = { bad: 0, dup: 0, size: 0, stray: 0, own: 0, errors: 0, firstProblem: '' };
const note = (what) => { if (!st.firstProblem) st.firstProblem = what; };

function newPhase(name, frameBytes, phaseIds = null) {
    phase = name;
    P = {
        ids: phaseIds,
        count: new Int32Array(N), reached: new Int32Array(K), seen: name === 'events' ? new Uint8Array(N * K) : null,
        sentAt: new Float64Array(K), lat: [], sent: 0, inflight: 0, completed: 0, frameBytes, calBytes: 0, cal: 0,
        done: null, t0: 0, tEnd: 0,
    };
    return new Promise((resolve) => { P.done = resolve; });
}

function complete(k) {
    const now = performance.now();
    P.lat.push(now - P.sentAt[k]);
    P.inflight--;
    P.completed++;
    if (P.completed === K) { P.tEnd = now; P.done(); return; }
    P.pump();
}

function onSubscriber(s, text) {
    switch (phase) {
    case 'cal':
        if (text.startsWith('{"event":"message"')) {
            P.calBytes = Buffer.byteLength(text);
            if (++P.cal === N) P.done();
        } else { st.stray++; note(`subscriber ${s}, calibration: ${text.slice(0, 200)}`); }
        return;
    case 'receipts': {
        const k = P.count[s]++;
        if (k >= K || !text.startsWith('{"event":"hark:read"') || !text.includes(`\\"id\\":\\"${P.ids[k]}\\"`)) {
            st.bad++; note(`subscriber ${s}, receipt ${k}: ${text.slice(0, 200)}`); return;
        }
        if (!P.frameBytes) P.frameBytes = Buffer.byteLength(text);
        else if (Buffer.byteLength(text) !== P.frameBytes) st.size++;
        if (++P.reached[k] === N) complete(k);
        return;
    }
    case 'events': {
        const at = text.indexOf('"data":"');
        const k = at < 0 ? -1 : Number(text.substr(at + 8, 6));
        if (!text.startsWith('{"event":"message"') || !(k >= 0 && k < K)) {
            st.bad++; note(`subscriber ${s}, event: ${text.slice(0, 200)}`); return;
        }
        if (P.seen[s * K + k]) { st.dup++; note(`subscriber ${s}: event ${k} twice`); return; }
        P.seen[s * K + k] = 1;
        P.count[s]++;
        if (Buffer.byteLength(text) !== P.frameBytes) st.size++;
        if (++P.reached[k] === N) complete(k);
        return;
    }
    default:
        st.stray++; note(`subscriber ${s}, between phases: ${text.slice(0, 200)}`);
    }
}

function onReader(text) {
    if (text.startsWith('{"event":"hark:read"')) { st.own++; note(`the reader got a receipt: ${text.slice(0, 200)}`); }
    if (text.startsWith('{"event":"pusher:error"')) { st.errors++; note(`reader: ${text.slice(0, 200)}`); }
}

// ---- the phases --------------------------------------------------------------------------

let ids = [];

async function measure(name, frameBytes, phaseIds, start) {
    const finished = newPhase(name, frameBytes, phaseIds);
    const cpu0 = cpuSeconds(O.serverPid);
    const w0 = writeCalls(O.serverPid);
    const m0 = machineTicks();
    const own0 = process.cpuUsage();
    const left = DEADLINE - performance.now();
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${name}: deadline reached`)), left); });
    P.t0 = performance.now();
    start();
    await Promise.race([finished, timeout]);
    clearTimeout(timer);
    const secs = (P.tEnd - P.t0) / 1000;
    const own = ownCpuSeconds(own0);
    const cpu1 = cpuSeconds(O.serverPid);
    const busy = busyPct(m0, machineTicks());
    const w1 = writeCalls(O.serverPid);
    const srv = cpu0 != null && cpu1 != null ? cpu1 - cpu0 : null;
    const lat = P.lat.sort((a, b) => a - b);
    const received = P.count.reduce((a, b) => a + b, 0);
    return {
        secs, deliveries: received, deliv_per_s: received / secs, per_s: K / secs,
        p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), frame_bytes: P.frameBytes,
        srv_cpu_s: srv, srv_cpu_pct: srv == null ? null : (100 * srv) / secs, client_cpu_pct: (100 * own) / secs,
        busy, writes: w0 != null && w1 != null ? w1 - w0 : null,
    };
}

async function main() {
    const guard = setTimeout(() => {
        say(`deadline of ${O.timeout} s reached`);
        console.log(`RESULT scenario=chat_receipts label=${O.label} error=deadline`);
        process.exit(1);
    }, O.timeout * 1000 + 5000);

    say(`${O.label}: ${K * O.rounds} events to ${CH} with nobody subscribed (their ids are the cursor's steps)`);
    for (let n = 0; n < K * O.rounds; n += O.batch) {
        const batch = [];
        for (let k = n; k < Math.min(K * O.rounds, n + O.batch); k++) {
            batch.push({ channel: CH, name: 'message', data: `{"text":"message ${k}"}`, user_id: 'peer' });
        }
        const got = (await call('batch_events', sdk.post({ path: '/batch_events', body: { batch } }))).ids;
        if (!Array.isArray(got) || got.length !== batch.length || got.some((id) => typeof id !== 'string')) {
            throw new Error(`batch_events: not every event was kept: ${JSON.stringify(got).slice(0, 200)}`);
        }
        ids.push(...got);
    }

    say(`${O.label}: ${N} subscribers and the reader join ${CH}`);
    const c0 = performance.now();
    const subs = await inParallel(N, O.connectConcurrency,
        (s) => openClient(O, sdk, { channels: [CH], onMessage: (t) => onSubscriber(s, t) }));
    const reader = await openClient(O, sdk, { user: 'reader', channels: [CH], onMessage: onReader });
    const connectMs = performance.now() - c0;
    for (const ws of [...subs, reader]) ws.on('close', () => { st.errors++; note('a connection closed during the run'); });

    const cal = newPhase('cal', 0);
    await call('trigger', sdk.trigger(CH, 'message', '000000'));
    await Promise.race([cal, new Promise((r) => setTimeout(r, Math.max(1, DEADLINE - performance.now())))]);
    if (P.cal !== N) throw new Error(`calibration event reached ${P.cal} of ${N} subscribers`);
    const e0 = P.calBytes;
    phase = 'idle';

    const rss0 = rssKb(O.serverPid);
    let restErrors = 0;
    const recs = [];
    const evts = [];
    let R = 0;
    for (let round = 0; round < O.rounds; round++) {
        const steps = ids.slice(round * K, (round + 1) * K);
        say(`${O.label}: round ${round + 1}, receipts: the reader moves its cursor ${K} times, ${O.window} in flight`);
        recs.push(await measure('receipts', R, steps, () => {
            P.pump = () => {
                while (P.inflight < O.window && P.sent < K) {
                    const k = P.sent++;
                    P.inflight++;
                    P.sentAt[k] = performance.now();
                    reader.send(JSON.stringify({ event: 'hark:read', channel: CH, data: { id: steps[k] } }));
                }
            };
            P.pump();
        }));
        phase = 'idle';
        R = recs[0].frame_bytes;
        const pad = R - e0;
        if (pad < 0) throw new Error(`a receipt frame (${R} bytes) is smaller than the smallest event frame (${e0})`);
        say(`${O.label}: round ${round + 1}, events: ${K} triggers of ${R}-byte frames, ${O.window} in flight `
            + `on ${O.restConns} connections`);
        evts.push(await measure('events', R, null, () => {
            const fill = 'x'.repeat(pad);
            P.pump = () => {
                while (P.inflight < O.window && P.sent < K) {
                    const k = P.sent++;
                    P.inflight++;
                    P.sentAt[k] = performance.now();
                    call('trigger', sdk.trigger(CH, 'message', String(k).padStart(6, '0') + fill)).then((b) => {
                        if (!b.ids || typeof b.ids[CH] !== 'string') { restErrors++; note(`trigger ${k}: ${JSON.stringify(b)}`); }
                    }, (e) => { restErrors++; note(e.message); });
                }
            };
            P.pump();
        }));
    }
    phase = 'idle';
    const rss1 = rssKb(O.serverPid);
    for (const ws of [...subs, reader]) { ws.removeAllListeners('close'); ws.terminate(); }
    sdk.close();
    clearTimeout(guard);

    const f = (v, d = 0) => (v == null || !Number.isFinite(v) ? '' : Number(v).toFixed(d));
    const best = (l) => l.reduce((a, b) => (b.deliv_per_s > a.deliv_per_s ? b : a));
    const rec = best(recs);
    const evt = best(evts);
    const lost = 2 * N * K * O.rounds - [...recs, ...evts].reduce((a, x) => a + x.deliveries, 0);
    const runs = (l) => l.map((x) => x.deliv_per_s.toFixed(0)).join(',');
    const ok = !lost && !st.bad && !st.dup && !st.size && !st.own && !st.errors && !st.stray && !restErrors;
    const r = {
        scenario: 'chat_receipts', label: O.label, subscribers: N, moves: K, window: O.window, rest_conns: O.restConns,
        rounds: O.rounds, rcpt_runs: runs(recs), evt_runs: runs(evts),
        connect_ms: f(connectMs), frame_bytes: R, event_frame_bytes: evt.frame_bytes, cal_frame_bytes: e0,
        rcpt_secs: f(rec.secs, 2), rcpt_deliv_per_s: f(rec.deliv_per_s), rcpt_moves_per_s: f(rec.per_s),
        rcpt_p50_ms: f(rec.p50_ms, 1), rcpt_p99_ms: f(rec.p99_ms, 1),
        rcpt_srv_cpu_s: f(rec.srv_cpu_s, 2), rcpt_srv_cpu_pct: f(rec.srv_cpu_pct), rcpt_client_cpu_pct: f(rec.client_cpu_pct),
        rcpt_sys_busy_pct: f(rec.busy), rcpt_srv_writes: rec.writes ?? '',
        rcpt_deliv_per_write: f(rec.writes ? rec.deliveries / rec.writes : null, 2),
        evt_secs: f(evt.secs, 2), evt_deliv_per_s: f(evt.deliv_per_s), evt_pubs_per_s: f(evt.per_s),
        evt_p50_ms: f(evt.p50_ms, 1), evt_p99_ms: f(evt.p99_ms, 1),
        evt_srv_cpu_s: f(evt.srv_cpu_s, 2), evt_srv_cpu_pct: f(evt.srv_cpu_pct), evt_client_cpu_pct: f(evt.client_cpu_pct),
        evt_sys_busy_pct: f(evt.busy), evt_srv_writes: evt.writes ?? '',
        evt_deliv_per_write: f(evt.writes ? evt.deliveries / evt.writes : null, 2),
        ratio: f(rec.deliv_per_s / evt.deliv_per_s, 2),
        lost, bad: st.bad, dup: st.dup, wrong_size: st.size, own_receipts: st.own, stray: st.stray, errors: st.errors,
        rest_errors: restErrors, rss0_kb: rss0 ?? '', rss1_kb: rss1 ?? '', ok: ok ? 1 : 0,
        ...(st.firstProblem ? { problem: st.firstProblem.replace(/\s+/g, '_').slice(0, 120) } : {}),
    };
    console.log(`receipts vs events (${O.label}): ${N} subscribers on ${CH}, ${K} of each, ${R}-byte frames, `
        + `window ${O.window}, ${O.rounds} round(s), the best of each below`);
    console.log(`  every round, deliveries/s: receipts ${r.rcpt_runs}; events ${r.evt_runs}`);
    console.log(`  receipts: ${r.rcpt_deliv_per_s} deliveries/s (${r.rcpt_moves_per_s} moves/s, ${r.rcpt_secs} s), move -> all received `
        + `p50 ${r.rcpt_p50_ms} ms p99 ${r.rcpt_p99_ms} ms; server ${r.rcpt_srv_cpu_pct}% of a core, `
        + `client ${r.rcpt_client_cpu_pct}%, machine ${r.rcpt_sys_busy_pct}%`);
    console.log(`  events:   ${r.evt_deliv_per_s} deliveries/s (${r.evt_pubs_per_s} triggers/s, ${r.evt_secs} s), `
        + `trigger -> all received p50 ${r.evt_p50_ms} ms p99 ${r.evt_p99_ms} ms; server ${r.evt_srv_cpu_pct}% of a core, `
        + `client ${r.evt_client_cpu_pct}%, machine ${r.evt_sys_busy_pct}%`);
    console.log(`  deliveries per server write call: receipts ${r.rcpt_deliv_per_write}, events ${r.evt_deliv_per_write}`);
    console.log(`  receipts / events: ${r.ratio}; lost ${lost}, wrong ${st.bad}, dup ${st.dup}, wrong size ${st.size}, `
        + `own receipts ${st.own}, stray ${st.stray}, errors ${st.errors}, REST errors ${restErrors}`);
    if (st.firstProblem) console.log(`  first problem: ${st.firstProblem}`);
    recs.forEach((x, i) => [['receipts', x], ['events', evts[i]]].forEach(([what, y]) => {
        const n = loadNote(`round ${i + 1}, ${what}`, y.srv_cpu_pct, y.client_cpu_pct, y.busy);
        if (n) console.log(`  ${n}`);
    }));
    console.log(resultLine(r));
    process.exit(ok ? 0 : 1);
}

main().catch((e) => {
    say(`failed: ${e.stack || e}`);
    console.log(`RESULT scenario=chat_receipts label=${O.label} error=${String(e.message || e).replace(/\s+/g, '_').slice(0, 120)}`);
    process.exit(1);
});
