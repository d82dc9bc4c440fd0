#!/usr/bin/env node
// bench/fallback_fanout.mjs — fan-out to HTTP fallback clients on one channel:
// N Server-Sent Events streams (--mode sse) or N long-poll loops (--mode
// poll) of hark, in --procs client processes (bench/fallback_client.mjs,
// each with its own loopback source address and N/procs clients), while
// 1 KiB events are published flat out over signed REST the way the loadgen
// `fanout` scenario publishes them: --rest-conns keep-alive connections, at
// most --window publishes in flight, a publish being in flight until every
// client has received it. Usage:
//
//   node bench/fallback_fanout.mjs PORT --mode sse|poll [--clients 10000]
//       [--procs 4] [--size 1024] [--window 64] [--rest-conns 4]
//       [--warmup 1] [--duration 5] [--wait 25] [--server-pid PID]
//       [--label NAME] [--timeout 150]
//
// Measured: server RSS (VmRSS of --server-pid) before the clients connect,
// once they are all connected and the server says so (sse:
// hark_sessions{transport="sse"}, poll: hark_history_polls_waiting) and
// RSS stops moving, and at the end; bytes per client = the difference of
// the first two / clients. Then deliveries/s (events received by all
// clients, counted by the client processes) and publishes/s acknowledged
// over the --duration window after --warmup s of publishing, publish →
// received by every client p50/p99, server CPU (/proc/PID/stat), the
// client processes' CPU and the whole machine's, and for polls the poll
// requests and hark_history_poll_statements_total per second, and the
// machine's busy time that was neither the server nor these processes
// (sys_other: softirq, other work on the machine). Every client
// must get every event exactly once, in order (lost / dup / ooo). Prints a
// human summary, NOTE lines when the client or the machine may be the
// limit, and one RESULT line. Stops by itself (--timeout).
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import {
    parseArgs, rssKb, signedPoster, cpuSeconds, machineTicks, busyPct, ownCpuSeconds, pct, resultLine,
} from './lib.mjs';

const usage = (why) => {
    if (why) console.error(`fallback_fanout: ${why}`);
    console.error('usage: node bench/fallback_fanout.mjs PORT --mode sse|poll [--clients N] [--procs N] [--size B] '
        + '[--window N] [--rest-conns N] [--warmup S] [--duration S] [--wait S] [--server-pid PID] [--label L] [--timeout S]');
    process.exit(2);
};
const o = parseArgs(process.argv.slice(2), {
    host: '127.0.0.1', mode: '', clients: 10000, procs: 4, size: 1024, window: 64, restConns: 4, warmup: 1,
    duration: 5, wait: 25, serverPid: 0, label: 'hark', timeout: 150, channel: 'bench', concurrency: 128,
    appId: 'app-id', key: 'app-key', secret: 'app-secret',
}, {
    '--host': 'host', '--mode': 'mode', '--clients': 'clients', '--procs': 'procs', '--size': 'size', '--window': 'window',
    '--rest-conns': 'restConns', '--warmup': 'warmup', '--duration': 'duration', '--wait': 'wait',
    '--server-pid': 'serverPid', '--label': 'label', '--timeout': 'timeout', '--channel': 'channel',
    '--concurrency': 'concurrency',
}, usage);
if (o.mode !== 'sse' && o.mode !== 'poll') usage('--mode sse or poll');

const say = (s) => console.log(s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T0 = Date.now();
const children = [];
const result = { scenario: `fallback_${o.mode}`, label: o.label, clients: o.clients, procs: o.procs, size: o.size, window: o.window };

function finishWith(error) {
    if (error) result.error = error;
    for (const ch of children) { try { ch.proc.kill('SIGKILL'); } catch { /* ignore */ } }
    say(resultLine(result));
    process.exit(error ? 1 : 0);
}
setTimeout(() => finishWith('timeout'), o.timeout * 1000).unref();

// A gauge or counter of /metrics, the full series name given literally.
function metricValue(series) {
    return new Promise((resolve) => {
        http.get({ host: o.host, port: o.port, path: '/metrics', agent: false }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { text += c; });
            res.on('end', () => {
                const line = text.split('\n').find((l) => l.startsWith(`${series} `));
                resolve(line ? Number(line.slice(series.length + 1)) : null);
            });
            res.on('error', () => resolve(null));
        }).on('error', () => resolve(null));
    });
}
const GAUGE = o.mode === 'sse' ? 'hark_sessions{transport="sse"}' : 'hark_history_polls_waiting';
const STATEMENTS = 'hark_history_poll_statements_total';

// RSS once it stops moving (two samples 500 ms apart within 0.5%), at most ms.
async function settledRss(ms = 4000) {
    let prev = rssKb(o.serverPid);
    const end = Date.now() + ms;
    while (Date.now() < end) {
        await sleep(500);
        const v = rssKb(o.serverPid);
        if (v !== null && prev !== null && Math.abs(v - prev) <= prev * 0.005) return v;
        prev = v;
    }
    return prev;
}

let peak = 0;
const peakTimer = setInterval(() => { const v = rssKb(o.serverPid); if (v > peak) peak = v; }, 100);

// ---- the client processes -------------------------------------------------------
let snapId = 0;
const snapWaiters = new Map();
function startChildren() {
    const script = fileURLToPath(new URL('./fallback_client.mjs', import.meta.url));
    const per = Math.floor(o.clients / o.procs);
    for (let p = 0; p < o.procs; p++) {
        const n = p === o.procs - 1 ? o.clients - per * (o.procs - 1) : per;
        const cfg = {
            mode: o.mode, host: o.host, port: o.port, key: o.key, channel: o.channel, clients: n, wait: o.wait,
            localAddress: `127.0.${21 + p}.1`, concurrency: o.concurrency, drainMs: 15000, timeoutMs: o.timeout * 1000,
        };
        const proc = fork(script, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const ch = { proc, n, ready: null, wm: 0, final: null };
        proc.on('message', (m) => {
            if (m.type === 'ready') ch.ready = m;
            else if (m.type === 'wm') { ch.wm = m.wm; onWatermark(); }
            else if (m.type === 'snap') { const w = snapWaiters.get(m.id); if (w) w(m); }
            else if (m.type === 'final') ch.final = m;
        });
        proc.on('exit', (code) => { ch.exited = code; });
        children.push(ch);
    }
}
// Every child's {delivered, cpu_s, …} at (about) the same moment.
function snapshot() {
    return Promise.all(children.map((ch) => new Promise((resolve) => {
        const id = ++snapId;
        const t = setTimeout(() => { snapWaiters.delete(id); resolve(null); }, 5000);
        snapWaiters.set(id, (m) => { clearTimeout(t); snapWaiters.delete(id); resolve(m); });
        ch.proc.send({ cmd: 'snap', id });
    })));
}

// ---- publishing -------------------------------------------------------------------
const post = signedPoster(o);
const pad = (k) => {
    const head = `{"k":${k},"t":${Date.now()},"p":"`;
    return `${head}${'x'.repeat(Math.max(0, o.size - head.length - 2))}"}`;
};
let kNext = 0;
let inflight = 0;
let acked = 0;
let restErr = 0;
let firstRestErr = '';
let publishing = false;
let wm = 0; // every client has every publish < wm
let wmMovedAt = Date.now();
const sentAt = [];
const allGotMs = [];
let measuring = false;
let winAcked0 = 0;
let winAcked1 = 0;

function onWatermark() {
    const m = Math.min(...children.map((ch) => ch.wm));
    if (m > wm) {
        const now = performance.now();
        for (let k = wm; k < m; k++) if (sentAt[k] !== undefined && measuring) allGotMs.push(now - sentAt[k]);
        wm = m;
        wmMovedAt = Date.now();
    }
    pump();
}

function pump() {
    while (publishing && inflight < o.restConns && kNext - wm < o.window) {
        const k = kNext++;
        inflight++;
        sentAt[k] = performance.now();
        const body = JSON.stringify({ name: 'bench', channels: [o.channel], data: pad(k) });
        post('/events', body).then((r) => {
            if (r.status === 200) acked++;
            else { restErr++; if (!firstRestErr) firstRestErr = `${r.status}_${r.text.slice(0, 60).replace(/\s+/g, '_')}`; }
        }, (e) => { restErr++; if (!firstRestErr) firstRestErr = (e.code || e.message).replace(/\s+/g, '_'); })
            .finally(() => { inflight--; pump(); });
    }
}

// ---- the run ----------------------------------------------------------------------
async function main() {
    say(`fallback_fanout: ${o.mode}, ${o.clients} clients in ${o.procs} processes, ${o.label} on ${o.host}:${o.port} (pid ${o.serverPid})`);
    result.rss_start_kb = await settledRss(2000);
    startChildren();
    const tc = Date.now();
    while (children.some((ch) => !ch.ready && ch.exited === undefined)) {
        if (Date.now() - tc > 90000) return finishWith('clients_not_ready_in_90s');
        await sleep(50);
    }
    const ready = children.reduce((a, ch) => a + (ch.ready ? ch.ready.ready : 0), 0);
    result.ready = ready;
    result.connect_ms = Date.now() - tc;
    say(`  ${ready} clients ready (${o.clients - ready} failed) in ${(result.connect_ms / 1000).toFixed(1)} s`);
    if (ready === 0) return finishWith('no_client_ready');
    // the server has them all (streams open, polls parked)
    const tg = Date.now();
    let g = null;
    while (Date.now() - tg < 20000) {
        g = await metricValue(GAUGE);
        if (g !== null && g >= ready) break;
        await sleep(100);
    }
    result.server_gauge = g;
    result.rss_ready_kb = await settledRss();
    result.bytes_per_client = Math.round(((result.rss_ready_kb - result.rss_start_kb) * 1024) / ready);
    say(`  server: ${GAUGE} ${g}; RSS ${result.rss_start_kb} kB before, ${result.rss_ready_kb} kB with the clients: `
        + `${result.bytes_per_client} bytes per client`);

    // publish: warm-up, then the measuring window
    publishing = true;
    wmMovedAt = Date.now();
    pump();
    let stalled = false;
    const watch = setInterval(() => {
        if (publishing && kNext > wm && Date.now() - wmMovedAt > 10000) {
            stalled = true;
            say(`  stalled: publish ${wm} not received by every client for 10 s`);
        }
    }, 500);
    await sleep(o.warmup * 1000);
    const stmt0 = o.mode === 'poll' ? await metricValue(STATEMENTS) : null;
    const s0 = await snapshot();
    const srv0 = cpuSeconds(o.serverPid);
    const sys0 = machineTicks();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    winAcked0 = acked;
    measuring = true;
    for (let i = 0; i < o.duration * 10 && !stalled; i++) await sleep(100);
    measuring = false;
    const s1 = await snapshot();
    const t1 = performance.now();
    winAcked1 = acked;
    const srv1 = cpuSeconds(o.serverPid);
    const sys1 = machineTicks();
    const ownCpu = ownCpuSeconds(own0);
    const stmt1 = o.mode === 'poll' ? await metricValue(STATEMENTS) : null;
    publishing = false;
    clearInterval(watch);
    const wsec = (t1 - t0) / 1000;
    if (s0.some((x) => !x) || s1.some((x) => !x)) return finishWith('client_snapshot_missing');
    const d = s1.reduce((a, x) => a + x.delivered, 0) - s0.reduce((a, x) => a + x.delivered, 0);
    const cpus = s1.map((x, i) => (100 * (x.cpu_s - s0[i].cpu_s)) / wsec);
    result.deliv_per_s = Math.round(d / wsec);
    result.pubs_per_s = Math.round((winAcked1 - winAcked0) / wsec);
    result.srv_cpu = srv0 !== null && srv1 !== null ? Math.round((100 * (srv1 - srv0)) / wsec) : '';
    result.client_cpu = Math.round(cpus.reduce((a, b) => a + b, 0));
    result.client_max_proc = Math.round(Math.max(...cpus));
    result.coord_cpu = Math.round((100 * ownCpu) / wsec);
    result.sys_busy = Math.round(busyPct(sys0, sys1) ?? 0);
    result.sys_other = Math.max(0, result.sys_busy - (result.srv_cpu || 0) - result.client_cpu - result.coord_cpu);
    if (o.mode === 'poll' && stmt0 !== null && stmt1 !== null) result.statements_per_s = Math.round((stmt1 - stmt0) / wsec);
    const lat = [...allGotMs].sort((a, b) => a - b);
    result.all_got_p50_ms = lat.length ? Math.round(pct(lat, 50)) : '';
    result.all_got_p99_ms = lat.length ? Math.round(pct(lat, 99)) : '';
    result.window_s = wsec.toFixed(2);

    // stop: every answer in, then every client must have every event
    const td = Date.now();
    while (inflight > 0 && Date.now() - td < 15000) await sleep(20);
    const last = kNext - 1;
    result.published = kNext;
    result.rest_err = restErr;
    for (const ch of children) ch.proc.send({ cmd: 'finish', last });
    const tf = Date.now();
    while (children.some((ch) => !ch.final && ch.exited === undefined) && Date.now() - tf < 25000) await sleep(50);
    result.rss_end_kb = rssKb(o.serverPid);
    clearInterval(peakTimer);
    result.rss_peak_kb = Math.max(peak, result.rss_end_kb ?? 0, result.rss_ready_kb ?? 0);
    const finals = children.map((ch) => ch.final);
    if (finals.some((f) => !f)) return finishWith('client_final_missing');
    const sum = (k) => finals.reduce((a, f) => a + (f[k] || 0), 0);
    result.delivered = sum('delivered');
    result.expected = ready * kNext;
    result.lost = sum('lost');
    result.dup = sum('dup');
    result.ooo = sum('ooo');
    result.failed = sum('failed');
    result.client_errors = sum('errors');
    if (o.mode === 'poll') {
        result.polls = sum('polls');
        result.poll_reconnects = sum('reconnects');
        result.events_per_answer = (result.delivered / Math.max(1, result.polls - 2 * ready)).toFixed(1);
    }
    result.stalled = stalled ? 1 : 0;
    const firstErr = finals.map((f) => f.firstError).find((e) => e) || '';
    if (firstErr) result.first_client_error = firstErr;
    if (firstRestErr) result.first_rest_error = firstRestErr;
    result.took_s = ((Date.now() - T0) / 1000).toFixed(1);

    say(`  ${result.deliv_per_s} deliveries/s, ${result.pubs_per_s} publishes/s acknowledged over ${wsec.toFixed(1)} s`);
    say(`  publish → received by every client: p50 ${result.all_got_p50_ms} ms, p99 ${result.all_got_p99_ms} ms`);
    say(`  server CPU ${result.srv_cpu}%, client processes ${result.client_cpu}% (busiest ${result.client_max_proc}%), `
        + `machine ${result.sys_busy}% busy of ${200}%`);
    if (o.mode === 'poll') say(`  ${result.statements_per_s} poll statements/s; ${result.polls} polls, ${result.events_per_answer} events per answer`);
    say(`  delivered ${result.delivered} of ${result.expected}: lost ${result.lost}, dup ${result.dup}, out of order ${result.ooo}, `
        + `failed clients ${result.failed}, REST errors ${restErr}`);
    const what = `fallback ${o.mode} / ${o.label}`;
    if (result.sys_busy >= 180) {
        say(`  NOTE: ${what}: the machine was ${result.sys_busy}% busy (server ${result.srv_cpu}%, client processes `
            + `${result.client_cpu + result.coord_cpu}%, other ${result.sys_other}%: softirq and other work): both cores were in use, `
            + 'the figure is bounded by the machine');
    }
    if (result.client_max_proc >= 90) say(`  NOTE: ${what}: a client process used ${result.client_max_proc}% of a core: the figure may be the clients' limit`);
    post.close();
    finishWith(result.lost || result.dup || result.ooo || result.failed || restErr || stalled ? 'deliveries' : '');
}

main().catch((e) => { console.error(e); finishWith(`exception_${String(e.message).replace(/\s+/g, '_').slice(0, 80)}`); });
