// bench/fallback_client.mjs — one client process of bench/fallback_fanout.mjs
// (forked by it, never run by hand): N Server-Sent Events streams or N
// long-poll loops on one public channel of hark, over raw TCP sockets (node:net)
// bound to their own loopback source address, parsed just enough to count
// what arrives:
//
//   sse   GET /app/{key}/sse?channels=CH; a client is ready once its stream
//         carried pusher_internal:subscription_succeeded. Every record of
//         the bench event counts as one delivery.
//   poll  GET /app/{key}/poll?channels=CH (where "now" is), then in a loop
//         GET …&since=<the answer's since>&wait=W on one keep-alive
//         connection; ready once the first waiting poll is sent. Every
//         event in an answer counts as one delivery.
//
// Each event's data carries its publish number ({"k":K,…}); every client
// must see every publish exactly once (publishes race on several REST
// connections, so in any order within the window) and the events' ids
// must grow (hark delivers a channel's kept events in id order). The process reports to the
// coordinator over IPC: {type:'ready'} when its clients are ready,
// {type:'wm', wm} whenever the first publish number not yet received by
// every one of its clients moves (the coordinator's flow control), and
// answers {cmd:'snap'} with its delivery count and CPU, and {cmd:'finish',
// last} (after waiting up to `drainMs` for every client to get `last`)
// with its final counts; then it closes everything and exits.
import net from 'node:net';

const o = JSON.parse(process.argv[2]);
const N = o.clients;
const PATH_SSE = `/app/${o.key}/sse?channels=${encodeURIComponent(o.channel)}`;
const PATH_POLL = `/app/${o.key}/poll?channels=${encodeURIComponent(o.channel)}`;
const HOST_HDR = `Host: ${o.host}:${o.port}\r\n`;
const MARK = '\\"k\\":'; // the publish number inside the JSON-encoded data string
const MAXK = 1 << 20;

const got = new Int32Array(MAXK); // got[K]: clients of this process that received K
let wm = 0; // every live client has received every K < wm
let live = 0; // clients ready and not failed
let delivered = 0;
let dup = 0;
let ooo = 0; // an id not above the previous one, or a publish far out of the window
let failed = 0;
let errors = 0;
let firstError = '';
let ready = 0;
let started = false;
let reportPending = false;
const clients = [];

function err(c, why) {
    errors++;
    if (!firstError) firstError = why.replace(/\s+/g, '_').slice(0, 120);
    if (c && !c.failed) {
        c.failed = true;
        failed++;
        if (c.ready) live--;
        try { c.sock.destroy(); } catch { /* ignore */ }
        c.settle();
        advance();
    }
}

function advance() {
    const before = wm;
    while (wm < MAXK && live > 0 && got[wm] >= live) wm++;
    if (wm !== before && !reportPending) {
        reportPending = true;
        setImmediate(() => { reportPending = false; process.send({ type: 'wm', wm }); });
    }
}

// Client c received publish k as event id sequence seq. Publishes go out on
// several REST connections at once, so k may arrive in any order within the
// window; each must arrive once. The ids must grow (hark delivers a
// channel's kept events in id order).
const RING = 1024; // > any window: publishes a client may hold out of order
function take(c, k, seq) {
    delivered++;
    if (seq <= c.seq) ooo++;
    else c.seq = seq;
    if (k < c.base || (k < c.base + RING && c.seen[k % RING])) { dup++; return; }
    if (k >= c.base + RING) { ooo++; return; }
    c.seen[k % RING] = 1;
    got[k]++;
    while (c.seen[c.base % RING]) { c.seen[c.base % RING] = 0; c.base++; }
    if (k === wm) advance();
}

// every bench event in s: its publish number (in the JSON-escaped data) and
// the sequence of its id (the id marker before it)
function numbers(c, s, idMark) {
    let i = s.indexOf(MARK);
    while (i >= 0) {
        let j = i + MARK.length;
        let k = 0;
        for (let ch = s.charCodeAt(j); ch >= 48 && ch <= 57; ch = s.charCodeAt(++j)) k = k * 10 + ch - 48;
        const at = s.lastIndexOf(idMark, i);
        let seq = -1;
        if (at >= 0) {
            let e = at + idMark.length;
            while (e < i && s.charCodeAt(e) !== 10 && s.charCodeAt(e) !== 34) e++; // to \n or "
            const dot = s.lastIndexOf('.', e);
            seq = Number(s.slice(dot + 1, e));
        }
        if (!(seq >= 0)) { errors++; if (!firstError) firstError = 'an_event_without_id'; }
        take(c, k, seq);
        i = s.indexOf(MARK, j);
    }
}

function becameReady(c) {
    if (c.ready || c.failed) return;
    c.ready = true;
    c.settle();
    ready++;
    live++;
    if (ready + failed === N) process.send({ type: 'ready', ready, failed });
}

// ---- SSE -----------------------------------------------------------------------
function sseClient(c) {
    let head = true;
    let carry = '';
    c.sock.on('data', (buf) => {
        let s = carry + buf.toString('latin1');
        if (head) {
            const e = s.indexOf('\r\n\r\n');
            if (e < 0) { carry = s; return; }
            const status = s.slice(9, 12);
            if (status !== '200') { err(c, `sse status ${status}`); return; }
            head = false;
            s = s.slice(e + 4);
        }
        c.tail = s.slice(-400);
        const last = s.lastIndexOf('\n\n');
        if (last < 0) { carry = s; return; }
        carry = s.slice(last + 2);
        const recs = s.slice(0, last);
        if (!c.ready) {
            if (recs.includes('pusher_internal:subscription_succeeded')) becameReady(c);
            else if (recs.includes('pusher:error') || recs.includes('subscription_error')) err(c, 'sse error record');
            return;
        }
        numbers(c, `\n${recs}`, '\nid: ');
    });
    c.sock.write(`GET ${PATH_SSE} HTTP/1.1\r\n${HOST_HDR}Accept: text/event-stream\r\n\r\n`);
}

// ---- long polls ----------------------------------------------------------------
function pollClient(c) {
    let acc = '';
    let need = -1; // body length of the answer being read
    let bodyAt = 0;
    let close = false;
    const send = () => {
        const q = c.since === undefined ? '' : `&since=${c.since}&wait=${o.wait}`;
        c.sock.write(`GET ${PATH_POLL}${q} HTTP/1.1\r\n${HOST_HDR}\r\n`);
        c.polls++;
    };
    const answer = (head, body) => {
        const status = head.slice(9, 12);
        if (status !== '200') { err(c, `poll status ${status}: ${body.slice(0, 80)}`); return; }
        const m = /"since":"([^"]*)"/.exec(body);
        if (!m) { err(c, 'poll answer without since'); return; }
        c.since = m[1];
        if (c.ready) numbers(c, body, ',"id":"');
        if (c.finished) return;
        if (close) { reconnect(); return; }
        send();
        becameReady(c); // its first waiting poll is on its way
    };
    const onData = (buf) => {
        acc += buf.toString('latin1');
        for (;;) {
            if (need < 0) {
                const e = acc.indexOf('\r\n\r\n');
                if (e < 0) return;
                const head = acc.slice(0, e);
                const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
                if (!cl) { err(c, 'poll answer without Content-Length'); return; }
                close = /\r\nconnection:\s*close/i.test(head);
                need = Number(cl[1]);
                bodyAt = e + 4;
                c.head = head;
            }
            if (acc.length - bodyAt < need) return;
            const body = acc.slice(bodyAt, bodyAt + need);
            acc = acc.slice(bodyAt + need);
            need = -1;
            answer(c.head, body);
            if (c.failed) return;
        }
    };
    const reconnect = () => {
        c.reconnects++;
        c.sock.removeAllListeners('close');
        c.sock.destroy();
        open(c, () => { acc = ''; need = -1; close = false; c.sock.on('data', onData); send(); });
    };
    c.sock.on('data', onData);
    send();
}

function open(c, then) {
    const sock = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress });
    c.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', then);
    sock.on('error', (e) => { if (!c.finished) err(c, `socket ${e.code || e.message}`); });
    sock.on('close', () => {
        if (c.finished || c.failed) return;
        const why = c.tail && /pusher:error[^\n]*\ndata: ([^\n]*)/.exec(c.tail);
        err(c, `closed by the server${why ? `: ${why[1]}` : ''}`);
    });
}

function start(i) {
    const c = { i, base: 0, seq: -1, seen: new Uint8Array(RING), ready: false, failed: false, finished: false, since: undefined, polls: 0, reconnects: 0 };
    c.settled = new Promise((r) => { c.settle = r; });
    clients.push(c);
    return new Promise((resolve) => {
        open(c, () => {
            if (o.mode === 'sse') sseClient(c); else pollClient(c);
            resolve(c);
        });
        c.sock.once('error', () => resolve(c));
    });
}

async function connectAll() {
    let next = 0;
    const lane = async () => {
        while (next < N) {
            const i = next++;
            // a lane waits for its client to be ready (or failed) before the next one
            const c = await start(i);
            let t;
            await Promise.race([c.settled, new Promise((r) => { t = setTimeout(r, 30000); })]);
            clearTimeout(t);
            if (!c.ready && !c.failed) err(c, 'not ready within 30 s');
        }
    };
    await Promise.all(Array.from({ length: Math.min(N, o.concurrency) }, lane));
}

function snap() {
    const u = process.cpuUsage();
    return { delivered, wm, cpu_s: (u.user + u.system) / 1e6, t: Date.now() };
}

process.on('message', async (m) => {
    if (m.cmd === 'snap') {
        process.send({ type: 'snap', id: m.id, ...snap() });
    } else if (m.cmd === 'finish') {
        const end = Date.now() + o.drainMs;
        while (Date.now() < end && clients.some((c) => !c.failed && c.ready && c.base <= m.last)) {
            await new Promise((r) => setTimeout(r, 20));
        }
        let lost = 0;
        let polls = 0;
        let reconnects = 0;
        for (const c of clients) {
            if (c.ready && !c.failed) for (let k = c.base; k <= m.last; k++) if (!c.seen[k % RING]) lost++;
            polls += c.polls;
            reconnects += c.reconnects;
            c.finished = true;
            try { c.sock.destroy(); } catch { /* ignore */ }
        }
        process.send({
            type: 'final', ...snap(), lost, dup, ooo, failed, errors, firstError, ready, polls, reconnects,
        }, () => process.exit(0));
    }
});

setTimeout(() => { process.exit(3); }, o.timeoutMs).unref();
process.on('disconnect', () => process.exit(0));
if (!started) {
    started = true;
    connectAll().catch((e) => { err(null, `connect ${e.message}`); });
}
