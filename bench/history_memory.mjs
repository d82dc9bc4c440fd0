// bench/history_memory.mjs — hark's memory per idle persisted channel.
//
//   node bench/history_memory.mjs PORT --server-pid PID [--channels 50000] [--warmup 1000]
//        [--rest-conns 8] [--size 64] [--data-dir DIR] [--timeout 300] [--label NAME]
//        [--host 127.0.0.1] [--app-id app-id --key app-key --secret app-secret]
//
// Publishes one event to each of --channels distinct channels (`mem-<i>`,
// public, kept by the default history rules, nobody subscribed) with
// POST /batch_events, 10 channels per request, --rest-conns keep-alive
// connections in parallel. hark answers once the events are stored, so when
// the last answer is in, every channel is in the store and in the history
// thread's cache of channel heads. The server's RSS (/proc/PID/status VmRSS)
// is read once it stops moving: after --warmup channels (`memwarm-<i>`: the
// store opened, SQLite's page cache and the allocator's arenas warm), at a
// fifth of --channels and at --channels. Reported: (RSS at N - RSS after
// warm-up) / N, and the marginal cost between N/5 and N. With --data-dir,
// the size of history.sqlite3 (+ -wal) per channel too.
//
// Prints a human summary and one `RESULT key=value …` line (bench/history.sh
// parses it). Bounded by --timeout seconds.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs as parseWith, rssKb, signedPoster } from './lib.mjs';

function parseArgs(argv) {
    const defaults = {
        host: '127.0.0.1', port: 0, serverPid: 0, channels: 50000, warmup: 1000, restConns: 8, size: 64,
        dataDir: '', timeout: 300, label: 'hark', appId: 'app-id', key: 'app-key', secret: 'app-secret',
    };
    const names = {
        '--host': 'host', '--server-pid': 'serverPid', '--channels': 'channels', '--warmup': 'warmup',
        '--rest-conns': 'restConns', '--size': 'size', '--data-dir': 'dataDir', '--timeout': 'timeout',
        '--label': 'label', '--app-id': 'appId', '--key': 'key', '--secret': 'secret',
    };
    const o = parseWith(argv, defaults, names, usage);
    if (!o.serverPid) usage('--server-pid is required');
    if (!(o.channels >= 10 && o.warmup >= 0 && o.restConns >= 1 && o.timeout > 0)) usage('bad counts');
    return o;
}

function usage(why) {
    if (why) process.stderr.write(`history_memory: ${why}\n`);
    process.stderr.write('usage: node bench/history_memory.mjs PORT --server-pid PID [--channels 50000] [--warmup 1000]\n'
        + '       [--rest-conns 8] [--size 64] [--data-dir DIR] [--timeout 300] [--label NAME]\n');
    process.exit(2);
}

const O = parseArgs(process.argv.slice(2));
const say = (line) => process.stderr.write(`[memory] ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T0 = performance.now();
const DEADLINE = T0 + O.timeout * 1000;


// RSS once it stops moving: two readings 500 ms apart within 16 kB, at most 5 s.
async function settledRss() {
    let prev = rssKb(O.serverPid);
    for (let i = 0; i < 10 && performance.now() < DEADLINE; i++) {
        await sleep(500);
        const cur = rssKb(O.serverPid);
        if (Math.abs(cur - prev) <= 16) return cur;
        prev = cur;
    }
    return prev;
}

function storeBytes() {
    if (!O.dataDir || !existsSync(O.dataDir)) return null;
    return readdirSync(O.dataDir).filter((f) => f.startsWith('history.sqlite3'))
        .reduce((a, f) => a + statSync(join(O.dataDir, f)).size, 0);
}

const post = signedPoster(O);

const DATA = JSON.stringify({ p: 'x'.repeat(Math.max(0, O.size - 10)) }); // about --size bytes

// One event to each channel prefix+from … prefix+(to-1), 10 per request.
async function publishChannels(prefix, from, to) {
    let nextReq = from;
    const lane = async () => {
        for (;;) {
            const a = nextReq;
            if (a >= to) return;
            nextReq = Math.min(to, a + 10);
            if (performance.now() > DEADLINE) throw new Error('deadline reached while publishing');
            const batch = [];
            for (let i = a; i < nextReq; i++) batch.push({ channel: `${prefix}${i}`, name: 'idle', data: DATA });
            const r = await post('/batch_events', JSON.stringify({ batch }));
            if (r.status !== 200) throw new Error(`batch_events: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
            const ids = JSON.parse(r.text).ids;
            if (!Array.isArray(ids) || ids.length !== batch.length || ids.some((id) => typeof id !== 'string')) {
                throw new Error(`batch_events: not every event was kept: ${r.text.slice(0, 200)} (is history off?)`);
            }
        }
    };
    await Promise.all(Array.from({ length: O.restConns }, lane));
}

async function main() {
    const guard = setTimeout(() => {
        say(`deadline of ${O.timeout} s reached`);
        console.log(`RESULT scenario=history_memory label=${O.label} error=deadline`);
        process.exit(1);
    }, O.timeout * 1000 + 5000);
    const N = O.channels;
    const mid = Math.floor(N / 5);
    const rssStart = await settledRss();
    say(`${O.label}: RSS at start ${rssStart} kB; warm-up: ${O.warmup} channels`);
    if (O.warmup) await publishChannels('memwarm-', 0, O.warmup);
    const rss0 = await settledRss();
    const disk0 = storeBytes();
    say(`${O.label}: RSS after warm-up ${rss0} kB; one event to each of ${N} channels`);
    const p0 = performance.now();
    await publishChannels('mem-', 0, mid);
    const pMid = performance.now() - p0;
    const rssMid = await settledRss();
    say(`${O.label}: RSS at ${mid} channels ${rssMid} kB`);
    const p1 = performance.now();
    await publishChannels('mem-', mid, N);
    const pubMs = pMid + (performance.now() - p1);
    const rss1 = await settledRss();
    const disk1 = storeBytes();
    post.close();
    clearTimeout(guard);

    const per = ((rss1 - rss0) * 1024) / N;
    const marginal = ((rss1 - rssMid) * 1024) / (N - mid);
    const r = {
        scenario: 'history_memory', label: O.label, channels: N, warmup: O.warmup, size: O.size,
        rss_start_kb: rssStart, rss0_kb: rss0, rss_mid_kb: rssMid, rss1_kb: rss1, mid_channels: mid,
        bytes_per_channel: per.toFixed(0), marginal_bytes_per_channel: marginal.toFixed(0),
        disk0_bytes: disk0 ?? '', disk1_bytes: disk1 ?? '',
        disk_bytes_per_channel: disk0 != null && disk1 != null ? ((disk1 - disk0) / N).toFixed(0) : '',
        pub_ms: pubMs.toFixed(0), pub_channels_per_s: (N / (pubMs / 1000)).toFixed(0),
    };
    console.log(`memory per idle persisted channel (${O.label}): ${N} channels, one event each`);
    console.log(`  RSS: start ${rssStart} kB, after ${O.warmup} warm-up channels ${rss0} kB, at ${mid} ${rssMid} kB, at ${N} ${rss1} kB`);
    console.log(`  ${r.bytes_per_channel} bytes per channel ((RSS at ${N} - after warm-up) / ${N}); `
        + `marginal ${mid}->${N}: ${r.marginal_bytes_per_channel} bytes`);
    if (disk1 != null) console.log(`  store (history.sqlite3 + WAL): ${disk0} -> ${disk1} bytes, ${r.disk_bytes_per_channel} bytes per channel`);
    console.log(`  published in ${r.pub_ms} ms (${r.pub_channels_per_s} channels/s)`);
    console.log(`RESULT ${Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    process.exit(0);
}

main().catch((e) => {
    say(`failed: ${e.stack || e}`);
    console.log(`RESULT scenario=history_memory label=${O.label} error=${String(e.message || e).replace(/\s+/g, '_').slice(0, 120)}`);
    process.exit(1);
});
