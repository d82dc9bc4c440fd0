// bench/resume_storm.mjs — a resume storm against a running hark (history on):
// every client resumes its channel with `since` at the same moment.
//
//   node bench/resume_storm.mjs PORT [--clients 1000] [--missed 100] [--server-pid PID]
//        [--rest-conns 8] [--size 128] [--timeout 120] [--label NAME] [--host 127.0.0.1]
//        [--app-id app-id --key app-key --secret app-secret]
//
// 1. One event is published to each client's channel (`storm-<i>`, public,
//    kept by the default history rules); its id, from the REST answer, is the
//    client's `since`.
// 2. --missed events are published to every channel while no client is
//    connected: POST /batch_events with 10 items per request, --rest-conns
//    keep-alive connections in parallel, one request in flight on each. A
//    channel always goes through the same connection, so its events have a
//    defined order (the ids the answers carry).
// 3. All clients connect at once; each subscribes with `since` as soon as
//    it has pusher:connection_established. Measured: from the first connect
//    to the last `hark:resumed` with {"recovered":true,"count":<missed>}.
//    Every client must receive exactly its missed events, in order, with the
//    ids the REST answers gave, and nothing else on its channel before
//    hark:resumed. The server's CPU seconds during the storm come from
//    /proc/PID/stat (utime + stime of all its threads), before and after.
//
// Prints a human summary and one `RESULT key=value …` line (bench/history.sh
// parses it). Exits 0 when every client recovered every event, 1 otherwise.
// Everything runs to a deadline (--timeout seconds for the whole run).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs as parseWith, rssKb, signedPoster } from './lib.mjs';

const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const WebSocket = require('ws');

// ---- options ----------------------------------------------------------------

function parseArgs(argv) {
    const defaults = {
        host: '127.0.0.1', port: 0, clients: 1000, missed: 100, serverPid: 0, restConns: 8,
        size: 128, timeout: 120, label: 'hark', appId: 'app-id', key: 'app-key', secret: 'app-secret',
    };
    const names = {
        '--host': 'host', '--clients': 'clients', '--missed': 'missed', '--server-pid': 'serverPid',
        '--rest-conns': 'restConns', '--size': 'size', '--timeout': 'timeout', '--label': 'label',
        '--app-id': 'appId', '--key': 'key', '--secret': 'secret',
    };
    const o = parseWith(argv, defaults, names, usage);
    if (!(o.clients >= 1 && o.missed >= 1 && o.restConns >= 1 && o.timeout > 0)) usage('bad counts');
    return o;
}

function usage(why) {
    if (why) process.stderr.write(`resume_storm: ${why}\n`);
    process.stderr.write('usage: node bench/resume_storm.mjs PORT [--clients 1000] [--missed 100] [--server-pid PID]\n'
        + '       [--rest-conns 8] [--size 128] [--timeout 120] [--label NAME]\n');
    process.exit(2);
}

const O = parseArgs(process.argv.slice(2));
const say = (line) => process.stderr.write(`[storm] ${line}\n`);

// ---- /proc ------------------------------------------------------------------

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64 and arm64

function cpuSeconds(pid) { // utime + stime of the whole process (every thread)
    if (!pid) return null;
    try {
        const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        return (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch { return null; }
}


function machineTicks() { // [busy, total] jiffies of all cores
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return [total - f[3] - f[4], total];
}

// ---- signed REST (keep-alive) -------------------------------------------------

const post = signedPoster(O);

const pad = (s, size) => (s.length >= size ? s : s.slice(0, -1) + `,"p":"${'x'.repeat(Math.max(0, size - s.length - 7))}"}`);
const dataOf = (seq) => pad(`{"seq":${seq}}`, O.size);
const chanOf = (i) => `storm-${i}`;

// Publishes seq from..to-1 to every channel. Channel i goes through lane
// i % restConns; a lane sends its requests one after another, so each
// channel's events are stored in seq order. ids[i][seq] gets each id.
async function publish(ids, from, to, deadline) {
    const lanes = [];
    for (let l = 0; l < Math.min(O.restConns, O.clients); l++) {
        lanes.push((async () => {
            let batch = [];
            const send = async () => {
                if (performance.now() > deadline) throw new Error('deadline reached while publishing');
                const body = JSON.stringify({
                    batch: batch.map(([i, seq]) => ({ channel: chanOf(i), name: 'tick', data: dataOf(seq) })),
                });
                const r = await post('/batch_events', body);
                if (r.status !== 200) throw new Error(`batch_events: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
                const got = JSON.parse(r.text).ids;
                if (!Array.isArray(got) || got.length !== batch.length) throw new Error(`batch_events: no ids: ${r.text.slice(0, 200)}`);
                batch.forEach(([i, seq], k) => {
                    if (typeof got[k] !== 'string') throw new Error(`batch_events: event not kept (id ${got[k]}): is history off?`);
                    ids[i][seq] = got[k];
                });
                batch = [];
            };
            for (let seq = from; seq < to; seq++) {
                for (let i = l; i < O.clients; i += O.restConns) {
                    batch.push([i, seq]);
                    if (batch.length === 10) await send();
                }
            }
            if (batch.length) await send();
        })());
    }
    await Promise.all(lanes);
}

// ---- the storm ----------------------------------------------------------------

function pct(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function storm(ids, deadline) {
    const M = O.missed;
    const url = `ws://${O.host}:${O.port}/app/${O.key}?protocol=7&client=js&version=8.6.0&flash=false`;
    const st = {
        done: 0, recovered: 0, notRecovered: 0, missing: 0, dup: 0, ooo: 0, badId: 0, early: 0, errors: 0,
        closed: 0, events: 0, firstError: '', doneAt: [], latencies: [], sockets: [],
    };
    const note = (what) => { if (!st.firstError) st.firstError = what; };
    return new Promise((resolve) => {
        let finished = false;
        const finish = (why) => {
            if (finished) return;
            finished = true;
            clearTimeout(timer);
            resolve({ st, why, tEnd: performance.now() });
        };
        const timer = setTimeout(() => finish('deadline'), Math.max(1, deadline - performance.now()));
        const t0 = performance.now();
        st.t0 = t0;
        for (let i = 0; i < O.clients; i++) {
            const ch = chanOf(i);
            const mine = ids[i];
            const c = { next: 1, subscribed: false, resumed: false, tStart: performance.now() };
            const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30000 });
            st.sockets.push(ws);
            const settle = () => {
                st.done++;
                if (st.done === O.clients) finish('all');
            };
            ws.on('message', (raw) => {
                let m;
                try { m = JSON.parse(raw.toString()); } catch { st.errors++; note(`client ${i}: not JSON`); return; }
                switch (m.event) {
                case 'pusher:connection_established':
                    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: ch, since: mine[0] } }));
                    return;
                case 'pusher_internal:subscription_succeeded':
                    c.subscribed = true;
                    return;
                case 'pusher:ping':
                    ws.send('{"event":"pusher:pong","data":{}}');
                    return;
                case 'hark:resumed': {
                    if (c.resumed) return;
                    c.resumed = true;
                    let d = {};
                    try { d = JSON.parse(m.data); } catch { /* counted below */ }
                    const got = c.next - 1;
                    if (d.recovered === true && d.count === M && got === M) {
                        st.recovered++;
                    } else {
                        st.notRecovered++;
                        if (got < M) st.missing += M - got;
                        note(`client ${i}: hark:resumed ${m.data} after ${got} events`);
                    }
                    const t = performance.now();
                    st.doneAt.push(t);
                    st.latencies.push(t - c.tStart);
                    settle();
                    return;
                }
                case 'pusher:error':
                case 'pusher:subscription_error':
                    st.errors++;
                    note(`client ${i}: ${raw.toString().slice(0, 200)}`);
                    if (!c.resumed) { c.resumed = true; st.notRecovered++; settle(); }
                    return;
                default:
                    break;
                }
                if (m.channel !== ch) return;
                st.events++;
                if (!c.subscribed || c.resumed) { st.early++; note(`client ${i}: ${m.event} outside the replay`); return; }
                let seq;
                try { seq = JSON.parse(m.data).seq; } catch { seq = -1; }
                if (seq === c.next) {
                    if (m.id !== mine[seq]) { st.badId++; note(`client ${i}: seq ${seq} id ${m.id}, REST said ${mine[seq]}`); }
                    c.next++;
                } else if (seq >= 1 && seq < c.next) {
                    st.dup++;
                    note(`client ${i}: duplicate seq ${seq}`);
                } else {
                    st.ooo++;
                    note(`client ${i}: seq ${seq} where ${c.next} was due`);
                    if (seq > c.next) c.next = seq + 1;
                }
            });
            ws.on('error', (e) => { st.errors++; note(`client ${i}: ${e.message}`); });
            ws.on('close', () => {
                st.closed++;
                if (!c.resumed) { c.resumed = true; st.notRecovered++; note(`client ${i}: closed before hark:resumed`); settle(); }
            });
        }
    });
}

// ---- main ---------------------------------------------------------------------

async function main() {
    const tStart = performance.now();
    const deadline = tStart + O.timeout * 1000;
    const guard = setTimeout(() => {
        say(`deadline of ${O.timeout} s reached`);
        console.log(`RESULT scenario=resume_storm label=${O.label} error=deadline`);
        process.exit(1);
    }, O.timeout * 1000 + 5000);
    const ids = Array.from({ length: O.clients }, () => new Array(O.missed + 1));
    say(`${O.label}: ${O.clients} channels, first event each (its id is the since)`);
    await publish(ids, 0, 1, deadline);
    say(`${O.label}: publishing ${O.missed} missed events to each of ${O.clients} channels `
        + `(batch_events, 10 per request, ${O.restConns} keep-alive connections)`);
    const srvCpuP0 = cpuSeconds(O.serverPid);
    const p0 = performance.now();
    await publish(ids, 1, O.missed + 1, deadline);
    const pubMs = performance.now() - p0;
    const srvCpuP1 = cpuSeconds(O.serverPid);
    post.close();
    const pubEvents = O.clients * O.missed;
    say(`${O.label}: ${pubEvents} events in ${(pubMs / 1000).toFixed(2)} s (${Math.round(pubEvents / (pubMs / 1000))} events/s)`);

    await new Promise((r) => setTimeout(r, 500)); // let the server go idle
    const rss0 = rssKb(O.serverPid);
    const cpu0 = cpuSeconds(O.serverPid);
    const m0 = machineTicks();
    const own0 = process.cpuUsage();
    say(`${O.label}: ${O.clients} clients connect and resume at once`);
    const { st, why, tEnd } = await storm(ids, deadline);
    const cpu1 = cpuSeconds(O.serverPid);
    const m1 = machineTicks();
    const own1 = process.cpuUsage(own0);
    const rss1 = rssKb(O.serverPid);
    const stormMs = (st.doneAt.length ? Math.max(...st.doneAt) : tEnd) - st.t0;
    for (const ws of st.sockets) { try { ws.terminate(); } catch { /* gone */ } }
    clearTimeout(guard);

    const lat = st.latencies.sort((a, b) => a - b);
    const srvCpu = cpu0 != null && cpu1 != null ? cpu1 - cpu0 : null;
    const ownCpu = (own1.user + own1.system) / 1e6;
    const busyPct = m1[1] > m0[1] ? (100 * (m1[0] - m0[0])) / (m1[1] - m0[1]) : null; // of the whole machine
    const ncpu = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length;
    const ok = why === 'all' && st.recovered === O.clients && !st.dup && !st.ooo && !st.badId && !st.early && !st.errors;
    const f = (v, d = 0) => (v == null ? '' : Number(v).toFixed(d));
    const r = {
        scenario: 'resume_storm', label: O.label, clients: O.clients, missed: O.missed, size: O.size,
        recovered: st.recovered, not_recovered: st.notRecovered + (O.clients - st.done),
        events: st.events, expected: O.clients * O.missed, missing: st.missing, dup: st.dup, ooo: st.ooo,
        bad_id: st.badId, early: st.early, errors: st.errors, closed: st.closed,
        storm_ms: f(stormMs), p50_ms: f(pct(lat, 50)), p90_ms: f(pct(lat, 90)), p99_ms: f(pct(lat, 99)),
        max_ms: f(lat[lat.length - 1]),
        replay_events_per_s: f(st.events / (stormMs / 1000)),
        srv_cpu_s: f(srvCpu, 2), srv_cpu_ms_per_client: f(srvCpu == null ? null : (srvCpu * 1000) / O.clients, 3),
        srv_cpu_pct: f(srvCpu == null ? null : (100 * srvCpu) / (stormMs / 1000)),
        client_cpu_s: f(ownCpu, 2), client_cpu_pct: f((100 * ownCpu) / (stormMs / 1000)),
        sys_busy_pct: f(busyPct == null ? null : busyPct * ncpu), // % of one core, like loadgen
        rss0_kb: rss0 ?? '', rss1_kb: rss1 ?? '',
        pub_events: pubEvents, pub_ms: f(pubMs), pub_events_per_s: f(pubEvents / (pubMs / 1000)),
        pub_requests_per_s: f(Math.ceil(pubEvents / 10) / (pubMs / 1000)),
        pub_srv_cpu_s: f(srvCpuP0 != null && srvCpuP1 != null ? srvCpuP1 - srvCpuP0 : null, 2),
        ok: ok ? 1 : 0,
    };
    if (why !== 'all') r.error = why;
    console.log(`resume storm (${O.label}): ${O.clients} clients, ${O.missed} missed events each`);
    console.log(`  recovered ${st.recovered}/${O.clients}; events ${st.events}/${O.clients * O.missed}; `
        + `missing ${st.missing}, dup ${st.dup}, ooo ${st.ooo}, wrong id ${st.badId}, outside replay ${st.early}, errors ${st.errors}`);
    console.log(`  first connect -> last hark:resumed: ${r.storm_ms} ms; per client connect -> resumed `
        + `p50 ${r.p50_ms} ms, p90 ${r.p90_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms`);
    console.log(`  server CPU during the storm: ${r.srv_cpu_s} s (${r.srv_cpu_ms_per_client} ms per client, `
        + `${r.srv_cpu_pct}% of a core); this client: ${r.client_cpu_s} s (${r.client_cpu_pct}%); machine busy ${r.sys_busy_pct}% of a core`);
    console.log(`  publishing the missed events: ${pubEvents} in ${r.pub_ms} ms = ${r.pub_events_per_s} events/s `
        + `(${r.pub_requests_per_s} batch requests/s, server CPU ${r.pub_srv_cpu_s} s)`);
    if (st.firstError) console.log(`  first problem: ${st.firstError}`);
    console.log(`RESULT ${Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    process.exit(ok ? 0 : 1);
}

main().catch((e) => {
    say(`failed: ${e.stack || e}`);
    console.log(`RESULT scenario=resume_storm label=${O.label} error=${String(e.message || e).replace(/\s+/g, '_').slice(0, 120)}`);
    process.exit(1);
});
