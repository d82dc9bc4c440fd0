// bench/chat_typing.mjs — hark:typing under renewals far faster than the
// throttle, against a running hark.
//
//   node bench/chat_typing.mjs PORT [--users 1000] [--per-channel 10] [--interval-ms 100]
//        [--duration 10] [--throttle-ms 2000] [--connect-concurrency 100] [--server-pid PID]
//        [--timeout 120] [--label NAME] [--host 127.0.0.1]
//        [--app-id app-id --key app-key --secret app-secret]
//
// --users connections, each signed in as its own user ("typer-<i>", the
// signature from the `pusher` SDK's authenticateUser) and subscribed to one
// channel, private-typing-<i / per-channel> (signed with authorizeChannel):
// --users / --per-channel channels of --per-channel users. Once all are
// subscribed, every user sends {"event":"hark:typing","channel":C,
// "data":{"typing":true}} every --interval-ms for --duration seconds (a
// 10-slot timer: a tenth of the users every --interval-ms / 10), far more
// often than the app's typing_throttle_ms (--throttle-ms only computes the
// bound; the server's config decides). Counted: the hark:typing frames the
// connections receive with {"user_id":U,"typing":true} up to 500 ms after
// the last send, per second of sending, against the bound the throttle
// implies: users × (per-channel − 1) / throttle (45/s per channel of 10,
// 4,500/s for 100). Checked: every relayed frame is on the receiver's
// channel, from another user of that channel, never from itself, and no
// user is relayed more than once per throttle interval plus the first time
// (a failure otherwise). Reported too: the smallest gap between two relays
// of one user as one receiver saw them (receipt times in this process, so
// they include its own event-loop jitter). Server CPU from /proc/PID/stat
// over the sending.
//
// Prints a human summary and one `RESULT key=value …` line (bench/chat.sh
// parses it). Exits 0 when nothing was wrong. Bounded by --timeout seconds.
import { performance } from 'node:perf_hooks';
import {
    busyPct, cpuSeconds, inParallel, loadNote, machineTicks, openClient, ownCpuSeconds, parseArgs as parseWith,
    resultLine, rssKb, serverSdk,
} from './lib.mjs';

function parseArgs(argv) {
    const defaults = {
        host: '127.0.0.1', port: 0, users: 1000, perChannel: 10, intervalMs: 100, duration: 10, throttleMs: 2000,
        connectConcurrency: 100, serverPid: 0, timeout: 120, label: 'hark', restConns: 1,
        appId: 'app-id', key: 'app-key', secret: 'app-secret',
    };
    const names = {
        '--host': 'host', '--users': 'users', '--per-channel': 'perChannel', '--interval-ms': 'intervalMs',
        '--duration': 'duration', '--throttle-ms': 'throttleMs', '--connect-concurrency': 'connectConcurrency',
        '--server-pid': 'serverPid', '--timeout': 'timeout', '--label': 'label',
        '--app-id': 'appId', '--key': 'key', '--secret': 'secret',
    };
    const o = parseWith(argv, defaults, names, usage);
    if (!(o.users >= 2 && o.perChannel >= 2 && o.users % o.perChannel === 0 && o.intervalMs >= 10
        && o.duration > 0 && o.throttleMs > 0 && o.connectConcurrency >= 1 && o.timeout > 0)) usage('bad counts');
    return o;
}

function usage(why) {
    if (why) process.stderr.write(`chat_typing: ${why}\n`);
    process.stderr.write('usage: node bench/chat_typing.mjs PORT [--users 1000] [--per-channel 10] [--interval-ms 100]\n'
        + '       [--duration 10] [--throttle-ms 2000] [--connect-concurrency 100] [--server-pid PID]\n'
        + '       [--timeout 120] [--label NAME]\n');
    process.exit(2);
}

const O = parseArgs(process.argv.slice(2));
const say = (line) => process.stderr.write(`[typing] ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const userOf = (i) => `typer-${i}`;
const chanOf = (i) => `private-typing-${Math.floor(i / O.perChannel)}`;
const CHANNELS = O.users / O.perChannel;
const SLOTS = 10;

const st = {
    counting: false, relayed: 0, relayedFalse: 0, wrong: 0, self: 0, errors: 0, other: 0, firstProblem: '',
    minGapMs: Infinity, perTyper: new Map(), sent: 0,
};
const note = (what) => { if (!st.firstProblem) st.firstProblem = what; };

function onFrame(i, text) {
    let m;
    try { m = JSON.parse(text); } catch { st.errors++; note(`${userOf(i)}: not JSON`); return; }
    if (m.event === 'pusher:ping') return;
    if (m.event !== 'hark:typing') {
        if (m.event === 'pusher:error') { st.errors++; note(`${userOf(i)}: ${text.slice(0, 200)}`); } else st.other++;
        return;
    }
    if (!st.counting) return;
    let d;
    try { d = JSON.parse(m.data); } catch { d = {}; }
    const from = typeof d.user_id === 'string' && d.user_id.startsWith('typer-') ? Number(d.user_id.slice(6)) : -1;
    if (m.channel !== chanOf(i) || from < 0 || chanOf(from) !== chanOf(i)) {
        st.wrong++; note(`${userOf(i)} on ${chanOf(i)}: ${text.slice(0, 200)}`); return;
    }
    if (from === i) { st.self++; note(`${userOf(i)} got its own typing`); return; }
    if (d.typing !== true) { st.relayedFalse++; return; }
    st.relayed++;
    st.perTyper.set(from, (st.perTyper.get(from) || 0) + 1);
    const now = performance.now();
    const last = lastSeen[i];
    const k = from % O.perChannel;
    if (last[k] !== undefined) st.minGapMs = Math.min(st.minGapMs, now - last[k]);
    last[k] = now;
}
const lastSeen = Array.from({ length: O.users }, () => new Array(O.perChannel));

async function main() {
    const guard = setTimeout(() => {
        say(`deadline of ${O.timeout} s reached`);
        console.log(`RESULT scenario=chat_typing label=${O.label} error=deadline`);
        process.exit(1);
    }, O.timeout * 1000);
    const sdk = serverSdk(O);
    say(`${O.label}: ${O.users} users sign in and subscribe, ${O.perChannel} per channel (${CHANNELS} private channels)`);
    const c0 = performance.now();
    const conns = await inParallel(O.users, O.connectConcurrency, (i) => openClient(O, sdk, {
        user: userOf(i), channels: [chanOf(i)], onMessage: (text) => onFrame(i, text),
    }));
    const connectMs = performance.now() - c0;
    for (const ws of conns) ws.on('error', (e) => { st.errors++; note(e.message); });
    await sleep(500);
    const frames = conns.map((ws, i) => JSON.stringify({ event: 'hark:typing', channel: chanOf(i), data: { typing: true } }));
    say(`${O.label}: every user sends typing:true every ${O.intervalMs} ms for ${O.duration} s`);
    const rss0 = rssKb(O.serverPid);
    const cpu0 = cpuSeconds(O.serverPid);
    const m0 = machineTicks();
    const own0 = process.cpuUsage();
    st.counting = true;
    const t0 = performance.now();
    const end = t0 + O.duration * 1000;
    let tick = 0;
    let lateTicks = 0;
    await new Promise((resolve) => {
        const step = O.intervalMs / SLOTS;
        const run = () => {
            const now = performance.now();
            if (now >= end) { resolve(); return; }
            const slot = tick % SLOTS;
            for (let i = slot; i < O.users; i += SLOTS) { conns[i].send(frames[i]); st.sent++; }
            tick++;
            const next = t0 + tick * step;
            if (next < performance.now()) lateTicks++;
            setTimeout(run, Math.max(0, next - performance.now()));
        };
        run();
    });
    const sendS = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(O.serverPid);
    const own = ownCpuSeconds(own0);
    const busy = busyPct(m0, machineTicks());
    await sleep(500); // relays of the last sends still on their way
    st.counting = false;
    const rss1 = rssKb(O.serverPid);
    for (const ws of conns) ws.terminate();
    sdk.close();
    clearTimeout(guard);

    const bound = (O.users * (O.perChannel - 1)) / (O.throttleMs / 1000);
    const perSec = st.relayed / O.duration;
    const relaysPerUser = [...st.perTyper.values()].map((v) => v / (O.perChannel - 1));
    const srv = cpu0 != null && cpu1 != null ? cpu1 - cpu0 : null;
    const f = (v, d = 0) => (v == null || !Number.isFinite(v) ? '' : Number(v).toFixed(d));
    // At most one relay per throttle interval, plus the first one at once.
    const maxRelays = Math.floor((O.duration * 1000) / O.throttleMs) + 1;
    const ok = !st.wrong && !st.self && !st.errors && Math.max(...relaysPerUser) <= maxRelays;
    const r = {
        scenario: 'chat_typing', label: O.label, users: O.users, channels: CHANNELS, per_channel: O.perChannel,
        interval_ms: O.intervalMs, duration_s: O.duration, throttle_ms: O.throttleMs,
        connect_ms: f(connectMs), sent: st.sent, sent_per_s: f(st.sent / sendS), late_ticks: lateTicks,
        relayed: st.relayed, relayed_per_s: f(perSec), bound_per_s: f(bound), of_bound_pct: f((100 * perSec) / bound, 1),
        forwarded_pct: f((100 * st.relayed) / (st.sent * (O.perChannel - 1)), 2),
        relays_per_user_min: f(Math.min(...relaysPerUser), 1), relays_per_user_max: f(Math.max(...relaysPerUser), 1),
        relays_per_user_bound: maxRelays,
        users_relayed: st.perTyper.size, min_gap_ms: f(st.minGapMs), typing_false: st.relayedFalse,
        wrong: st.wrong, self: st.self, errors: st.errors, other_frames: st.other,
        srv_cpu_s: f(srv, 2), srv_cpu_pct: f(srv == null ? null : (100 * srv) / sendS),
        srv_cpu_us_per_frame_in: f(srv == null ? null : (1e6 * srv) / st.sent, 1),
        client_cpu_pct: f((100 * own) / sendS), sys_busy_pct: f(busy), rss0_kb: rss0 ?? '', rss1_kb: rss1 ?? '', ok: ok ? 1 : 0,
        ...(st.firstProblem ? { problem: st.firstProblem.replace(/\s+/g, '_').slice(0, 120) } : {}),
    };
    console.log(`typing (${O.label}): ${O.users} signed-in users, ${CHANNELS} channels of ${O.perChannel}, `
        + `typing:true every ${O.intervalMs} ms for ${O.duration} s`);
    console.log(`  sent ${st.sent} hark:typing frames (${r.sent_per_s}/s); relayed deliveries of typing:true: ${st.relayed} `
        + `= ${r.relayed_per_s}/s, bound ${r.bound_per_s}/s (${r.of_bound_pct}%); ${r.forwarded_pct}% of what no throttle would relay`);
    console.log(`  relays per user ${r.relays_per_user_min}-${r.relays_per_user_max} in ${O.duration} s; smallest gap between two relays `
        + `of a user, as received, ${r.min_gap_ms} ms; wrong ${st.wrong}, own ${st.self}, errors ${st.errors}`);
    console.log(`  server CPU ${r.srv_cpu_s} s = ${r.srv_cpu_pct}% of a core (${r.srv_cpu_us_per_frame_in} µs per frame received); `
        + `client ${r.client_cpu_pct}%; machine ${r.sys_busy_pct}%`);
    if (st.firstProblem) console.log(`  first problem: ${st.firstProblem}`);
    const n = loadNote('typing', Number(r.srv_cpu_pct), Number(r.client_cpu_pct), busy);
    if (n) console.log(`  ${n}`);
    console.log(resultLine(r));
    process.exit(ok ? 0 : 1);
}

main().catch((e) => {
    say(`failed: ${e.stack || e}`);
    console.log(`RESULT scenario=chat_typing label=${O.label} error=${String(e.message || e).replace(/\s+/g, '_').slice(0, 120)}`);
    process.exit(1);
});
