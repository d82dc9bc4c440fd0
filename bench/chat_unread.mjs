// bench/chat_unread.mjs — what GET /apps/{id}/users/{user}/unread costs for a
// user with many conversations, against a running hark.
//
//   node bench/chat_unread.mjs PORT [--conversations 200] [--events 1000] [--read-at 500]
//        [--subset 20] [--duration 5] [--concurrency 8] [--batch 100] [--rest-conns 8]
//        [--server-pid PID] [--timeout 150] [--label NAME] [--host 127.0.0.1]
//        [--app-id app-id --key app-key --secret app-secret]
//
// The app must keep --events events per channel (a history rule for
// private-conv-*) and accept --batch items per POST /batch_events
// (max_batch_events).
//
// 1. --events events are published to each of --conversations channels
//    private-conv-0 … (POST /batch_events, --batch items of one channel per
//    request, --rest-conns keep-alive connections; a channel always goes
//    through the same one, so its ids come in order). Every event of
//    private-conv-<i> is authored by "peer-<i>" ("user_id" in the item),
//    never by the user measured, "me".
// 2. The first half of the channels gets a read cursor for "me" at event
//    --read-at (POST /users/me/read with that event's id: --events − --read-at
//    unread each). The other half gets no cursor: "me" signs in and
//    subscribes to them (50 channels per connection), which makes them the
//    user's too (all --events unread each). The driver waits until the
//    answer without `channels` lists them all and checks one answer in
//    full (every count, last_id and read_id).
// 3. Four windows of --duration seconds: every channel of the user (no
//    `channels` parameter: the conversations plus #server-to-user-me) and
//    `channels=` --subset names (half with a cursor, half without), each
//    first with one request at a time, then with --concurrency requests in
//    flight on as many keep-alive connections. Requests are made with the
//    `pusher` SDK's get({path, params}); the time per request runs from the
//    call to the parsed JSON body. Every answer is checked (number of
//    channels and the sum of the counts). GET /metrics is read before and
//    after each window: hark_history_unread_statements_total delta /
//    requests. Server CPU from /proc/PID/stat over each window.
//
// Prints a human summary and one `RESULT key=value …` line per window
// (bench/chat.sh parses them). Exits 0 when every answer was right, 1
// otherwise. Everything runs to a deadline (--timeout seconds).
import { performance } from 'node:perf_hooks';
import {
    busyPct, cpuSeconds, inParallel, loadNote, machineTicks, metric, openClient, ownCpuSeconds,
    parseArgs as parseWith, pct, resultLine, rssKb, serverSdk,
} from './lib.mjs';

function parseArgs(argv) {
    const defaults = {
        host: '127.0.0.1', port: 0, conversations: 200, events: 1000, readAt: 500, subset: 20, duration: 5,
        concurrency: 8, batch: 100, restConns: 8, serverPid: 0, timeout: 150, label: 'hark',
        appId: 'app-id', key: 'app-key', secret: 'app-secret',
    };
    const names = {
        '--host': 'host', '--conversations': 'conversations', '--events': 'events', '--read-at': 'readAt',
        '--subset': 'subset', '--duration': 'duration', '--concurrency': 'concurrency', '--batch': 'batch',
        '--rest-conns': 'restConns', '--server-pid': 'serverPid', '--timeout': 'timeout', '--label': 'label',
        '--app-id': 'appId', '--key': 'key', '--secret': 'secret',
    };
    const o = parseWith(argv, defaults, names, usage);
    if (!(o.conversations >= 2 && o.events >= 1 && o.readAt >= 1 && o.readAt <= o.events
        && o.subset >= 2 && o.subset <= Math.min(100, o.conversations) && o.duration > 0
        && o.concurrency >= 1 && o.batch >= 1 && o.restConns >= 1 && o.timeout > 0)) usage('bad counts');
    o.restConns = Math.max(o.restConns, o.concurrency);
    return o;
}

function usage(why) {
    if (why) process.stderr.write(`chat_unread: ${why}\n`);
    process.stderr.write('usage: node bench/chat_unread.mjs PORT [--conversations 200] [--events 1000] [--read-at 500]\n'
        + '       [--subset 20] [--duration 5] [--concurrency 8] [--batch 100] [--rest-conns 8]\n'
        + '       [--server-pid PID] [--timeout 150] [--label NAME]\n');
    process.exit(2);
}

const O = parseArgs(process.argv.slice(2));
const say = (line) => process.stderr.write(`[unread] ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DEADLINE = performance.now() + O.timeout * 1000;
const ME = 'me';
const chanOf = (i) => `private-conv-${i}`;
const HALF = Math.floor(O.conversations / 2); // 0 … HALF-1 have a cursor
const hasCursor = (i) => i < HALF;
const expectedUnread = (i) => (hasCursor(i) ? O.events - O.readAt : O.events);

const sdk = serverSdk(O);

async function call(what, promise) {
    let res;
    try { res = await promise; } catch (e) {
        throw new Error(`${what}: ${e.status ? `HTTP ${e.status}: ${String(e.body).slice(0, 200)}` : e.message}`);
    }
    return res.json();
}

// ---- 1. the conversations ----------------------------------------------------------

// ids[i][n]: the id of event n (1 … events) of channel i.
async function publishAll(ids) {
    const lanes = Math.min(O.restConns, O.conversations);
    await Promise.all(Array.from({ length: lanes }, async (_, l) => {
        for (let i = l; i < O.conversations; i += lanes) {
            for (let n = 1; n <= O.events; n += O.batch) {
                if (performance.now() > DEADLINE) throw new Error('deadline reached while publishing');
                const batch = [];
                for (let k = n; k < Math.min(O.events + 1, n + O.batch); k++) {
                    batch.push({
                        channel: chanOf(i), name: 'message', data: `{"n":${k},"text":"hello from peer ${i}"}`, user_id: `peer-${i}`,
                    });
                }
                const got = (await call('batch_events', sdk.post({ path: '/batch_events', body: { batch } }))).ids;
                if (!Array.isArray(got) || got.length !== batch.length || got.some((id) => typeof id !== 'string')) {
                    throw new Error(`batch_events: not every event was kept: ${JSON.stringify(got).slice(0, 200)}`);
                }
                got.forEach((id, k) => { ids[i][n + k] = id; });
            }
        }
    }));
}

// ---- 2. making them the user's -----------------------------------------------------

async function setCursors(ids) {
    await inParallel(HALF, O.restConns, async (i) => {
        const r = await call('read', sdk.post({ path: `/users/${ME}/read`, body: { channel: chanOf(i), id: ids[i][O.readAt] } }));
        if (r.moved !== true) throw new Error(`read ${chanOf(i)}: ${JSON.stringify(r)}`);
    });
}

async function subscribeOthers() {
    const rest = [];
    for (let i = HALF; i < O.conversations; i++) rest.push(chanOf(i));
    const groups = [];
    for (let k = 0; k < rest.length; k += 50) groups.push(rest.slice(k, k + 50));
    const conns = await Promise.all(groups.map((channels) => openClient(O, sdk, { user: ME, channels })));
    for (const ws of conns) ws.close();
}

const allChannels = () => {
    const l = [`#server-to-user-${ME}`];
    for (let i = 0; i < O.conversations; i++) l.push(chanOf(i));
    return l;
};

// The subset: --subset channels, half with a cursor and half without.
const SUBSET = [];
for (let k = 0; k < O.subset; k++) {
    SUBSET.push(k % 2 === 0 ? chanOf(Math.floor(k / 2)) : chanOf(HALF + Math.floor(k / 2)));
}
const SUM_ALL = Array.from({ length: O.conversations }, (_, i) => expectedUnread(i)).reduce((a, b) => a + b, 0);
const SUM_SUBSET = SUBSET.map((c) => expectedUnread(Number(c.slice('private-conv-'.length)))).reduce((a, b) => a + b, 0);

function checkFull(body, ids) {
    const want = allChannels();
    const got = body && body.channels;
    if (!got || Object.keys(got).length !== want.length) return `${got ? Object.keys(got).length : 0} channels, ${want.length} expected`;
    for (let i = 0; i < O.conversations; i++) {
        const c = got[chanOf(i)];
        const readId = hasCursor(i) ? ids[i][O.readAt] : null;
        if (!c || c.unread !== expectedUnread(i) || c.last_id !== ids[i][O.events] || c.read_id !== readId) {
            return `${chanOf(i)}: ${JSON.stringify(c)}, expected unread ${expectedUnread(i)} `
                + `last_id ${ids[i][O.events]} read_id ${readId}`;
        }
    }
    const own = got[`#server-to-user-${ME}`];
    if (!own || own.unread !== 0) return `#server-to-user-${ME}: ${JSON.stringify(own)}`;
    return '';
}

// ---- 3. the windows -------------------------------------------------------------------

async function measureWindow(name, subset, lanes) {
    const params = subset ? { channels: SUBSET.join(',') } : undefined;
    const wantN = subset ? SUBSET.length : O.conversations + 1;
    const wantSum = subset ? SUM_SUBSET : SUM_ALL;
    const st = { requests: 0, bad: 0, errors: 0, firstProblem: '', lat: [] };
    const stmt0 = await metric(O, 'hark_history_unread_statements_total');
    const cpu0 = cpuSeconds(O.serverPid);
    const m0 = machineTicks();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + O.duration * 1000;
    await Promise.all(Array.from({ length: lanes }, async () => {
        while (performance.now() < end) {
            const s = performance.now();
            try {
                const body = await call('unread', sdk.get({ path: `/users/${ME}/unread`, params }));
                st.lat.push(performance.now() - s);
                const ch = body.channels || {};
                let n = 0;
                let sum = 0;
                for (const k in ch) { n++; sum += ch[k].unread; }
                if (n !== wantN || sum !== wantSum) {
                    st.bad++;
                    if (!st.firstProblem) st.firstProblem = `${n} channels, ${sum} unread; expected ${wantN}, ${wantSum}`;
                }
            } catch (e) {
                st.errors++;
                if (!st.firstProblem) st.firstProblem = e.message;
                await sleep(10);
            }
            st.requests++;
        }
    }));
    const secs = (performance.now() - t0) / 1000;
    const own = ownCpuSeconds(own0);
    const cpu1 = cpuSeconds(O.serverPid);
    const busy = busyPct(m0, machineTicks());
    const stmt1 = await metric(O, 'hark_history_unread_statements_total');
    const lat = st.lat.sort((a, b) => a - b);
    const srv = cpu0 != null && cpu1 != null ? cpu1 - cpu0 : null;
    const f = (v, d = 0) => (v == null ? '' : Number(v).toFixed(d));
    return {
        scenario: 'chat_unread', label: O.label, window: name, channels: wantN, in_flight: lanes,
        conversations: O.conversations, events: O.events, read_at: O.readAt, unread_sum: wantSum,
        requests: st.requests, secs: f(secs, 2), req_per_s: f(st.requests / secs),
        p50_ms: f(pct(lat, 50), 2), p90_ms: f(pct(lat, 90), 2), p99_ms: f(pct(lat, 99), 2), max_ms: f(lat[lat.length - 1], 2),
        statements: stmt0 != null && stmt1 != null ? stmt1 - stmt0 : '',
        statements_per_request: stmt0 != null && stmt1 != null && st.requests ? ((stmt1 - stmt0) / st.requests).toFixed(3) : '',
        srv_cpu_s: f(srv, 2), srv_cpu_pct: f(srv == null ? null : (100 * srv) / secs),
        srv_cpu_ms_per_req: f(srv == null || !st.requests ? null : (1000 * srv) / st.requests, 3),
        client_cpu_pct: f((100 * own) / secs), sys_busy_pct: f(busy), bad: st.bad, errors: st.errors,
        ...(st.firstProblem ? { problem: st.firstProblem.replace(/\s+/g, '_').slice(0, 120) } : {}),
    };
}

async function main() {
    const guard = setTimeout(() => {
        say(`deadline of ${O.timeout} s reached`);
        console.log(`RESULT scenario=chat_unread label=${O.label} error=deadline`);
        process.exit(1);
    }, O.timeout * 1000 + 5000);
    const ids = Array.from({ length: O.conversations }, () => new Array(O.events + 1));
    say(`${O.label}: ${O.events} events to each of ${O.conversations} conversations `
        + `(batch_events, ${O.batch} per request, ${O.restConns} connections)`);
    const p0 = performance.now();
    await publishAll(ids);
    const pubS = (performance.now() - p0) / 1000;
    say(`${O.label}: published in ${pubS.toFixed(1)} s; cursors at event ${O.readAt} on ${HALF} channels, `
        + `"me" subscribes to the other ${O.conversations - HALF}`);
    await setCursors(ids);
    await subscribeOthers();
    let full;
    let why = '';
    const waitEnd = Math.min(DEADLINE, performance.now() + 10000);
    for (;;) { // the "was subscribed" notes are written off the event loop
        full = await call('unread', sdk.get({ path: `/users/${ME}/unread` }));
        why = checkFull(full, ids);
        if (!why || performance.now() > waitEnd) break;
        if (Object.keys(full.channels || {}).length === O.conversations + 1) break; // complete but wrong: report it
        await sleep(100);
    }
    if (why) throw new Error(`the full answer is wrong: ${why}`);
    const rss0 = rssKb(O.serverPid);
    const results = [];
    for (const [name, subset, lanes] of [['all-1', false, 1], [`all-${O.concurrency}`, false, O.concurrency],
        ['subset-1', true, 1], [`subset-${O.concurrency}`, true, O.concurrency]]) {
        say(`${O.label}: ${name}: ${subset ? `channels=<${O.subset} names>` : 'every channel'}, ${lanes} in flight, ${O.duration} s`);
        const r = await measureWindow(name, subset, lanes);
        r.publish_s = pubS.toFixed(1);
        r.pub_events_per_s = ((O.conversations * O.events) / pubS).toFixed(0);
        r.rss0_kb = rss0 ?? '';
        r.rss1_kb = rssKb(O.serverPid) ?? '';
        results.push(r);
    }
    sdk.close();
    clearTimeout(guard);
    console.log(`unread counts (${O.label}): user "me", ${O.conversations} conversations of ${O.events} events, `
        + `cursor at event ${O.readAt} on ${HALF}, none on ${O.conversations - HALF}; published in ${pubS.toFixed(1)} s`);
    for (const r of results) {
        console.log(`  ${r.window.padEnd(10)} ${r.channels} channels, ${r.in_flight} in flight: ${r.req_per_s} requests/s, `
            + `p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms; statements/request ${r.statements_per_request}; `
            + `server ${r.srv_cpu_pct}% of a core (${r.srv_cpu_ms_per_req} ms/request), client ${r.client_cpu_pct}%, `
            + `machine ${r.sys_busy_pct}%; bad ${r.bad}, errors ${r.errors}`);
        if (r.problem) console.log(`    first problem: ${r.problem}`);
        const n = loadNote(`unread ${r.window}`, Number(r.srv_cpu_pct), Number(r.client_cpu_pct), Number(r.sys_busy_pct));
        if (n) console.log(`  ${n}`);
    }
    for (const r of results) console.log(resultLine(r));
    process.exit(results.every((r) => !r.bad && !r.errors) ? 0 : 1);
}

main().catch((e) => {
    say(`failed: ${e.stack || e}`);
    console.log(`RESULT scenario=chat_unread label=${O.label} error=${String(e.message || e).replace(/\s+/g, '_').slice(0, 120)}`);
    process.exit(1);
});
