// bench/lib.mjs — what the Node benchmark drivers share (resume_storm.mjs,
// history_memory.mjs, chat_*.mjs): options, /proc readings, signed REST
// calls, and for the chat drivers the real `ws` and `pusher` packages,
// signed-in subscribed clients, /metrics readings and RESULT lines.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';

// Parses `PORT --name value …` into a copy of defaults. names maps each
// option to its key; a key whose default is a number takes a number.
// usage(why) is called (and must exit) on a bad command line. Also checks
// the port and that host is on loopback (the only place load may go).
export function parseArgs(argv, defaults, names, usage) {
    const o = { ...defaults };
    const rest = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (names[a]) {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            const k = names[a];
            o[k] = typeof o[k] === 'number' ? Number(argv[++i]) : argv[++i];
            if (typeof o[k] === 'number' && !Number.isFinite(o[k])) usage(`${a}: not a number`);
        } else if (a === '--help' || a === '-h') {
            usage();
        } else if (a.startsWith('--')) {
            usage(`unknown option ${a}`);
        } else {
            rest.push(a);
        }
    }
    if (rest.length !== 1) usage('PORT is required');
    o.port = Number(rest[0]);
    if (!(o.port > 0 && o.port < 65536)) usage('bad PORT');
    if (!/^127\./.test(o.host)) usage('only 127.0.0.0/8 is accepted as a target');
    return o;
}

// A process's resident memory in kB, or null.
export function rssKb(pid) {
    if (!pid) return null;
    try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch { return null; }
}

// post(path, body) → {status, text}: a POST under /apps/{appId} signed as
// the Pusher SDKs sign it, over keep-alive connections (at most o.restConns);
// post.close() closes them.
export function signedPoster(o) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: o.restConns });
    const post = function post(path, body) {
        const full = `/apps/${o.appId}${path}`;
        const q = `auth_key=${o.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0`
            + `&body_md5=${createHash('md5').update(body).digest('hex')}`;
        const sig = createHmac('sha256', o.secret).update(`POST\n${full}\n${q}`).digest('hex');
        return new Promise((resolve, reject) => {
            const req = http.request({
                host: o.host, port: o.port, method: 'POST', path: `${full}?${q}&auth_signature=${sig}`, agent,
                headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            }, (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
                res.on('error', reject);
            });
            req.on('error', reject);
            req.end(body);
        });
    };
    post.close = () => agent.destroy();
    return post;
}

// ---- for the chat drivers ------------------------------------------------------

// The real client packages, from tests/e2e/node_modules (`make test-deps`);
// loaded on first use, so drivers that need neither run without them.
const requireE2e = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
export function packages() {
    return { WebSocket: requireE2e('ws'), Pusher: requireE2e('pusher') };
}

// The `pusher` server SDK aimed at hark, on keep-alive connections (at most
// o.restConns): what an app server uses for REST calls and auth signatures.
export function serverSdk(o) {
    const { Pusher } = packages();
    const agent = new http.Agent({ keepAlive: true, maxSockets: o.restConns });
    const sdk = new Pusher({
        appId: o.appId, key: o.key, secret: o.secret, host: o.host, port: String(o.port), useTLS: false, agent,
    });
    sdk.close = () => agent.destroy();
    return sdk;
}

// utime + stime of a whole process (every thread), in seconds, or null.
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64 and arm64
export function cpuSeconds(pid) {
    if (!pid) return null;
    try {
        const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        return (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch { return null; }
}

// A process's write system calls so far (write, writev, send…: syscw in
// /proc/PID/io), or null.
export function writeCalls(pid) {
    if (!pid) return null;
    try {
        const m = /^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch { return null; }
}

// The whole machine's [busy, total] jiffies (/proc/stat, all cores);
// busyPct(a, b) turns two readings into % of one core, like the loadgen.
export function machineTicks() {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return [total - f[3] - f[4], total];
}
export function busyPct(a, b) {
    if (!(b[1] > a[1])) return null;
    const ncpu = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length;
    return (100 * ncpu * (b[0] - a[0])) / (b[1] - a[1]);
}

// A NOTE line (as the loadgen prints them) when a figure may be the
// machine's or this client's limit rather than the server's, or ''.
// All in % of one core.
export function loadNote(what, srvPct, clientPct, busy) {
    const ncpu = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length;
    const f = (v) => Number(v ?? 0).toFixed(0);
    if (busy != null && busy >= 90 * ncpu) {
        return `NOTE: ${what}: the machine was ${f(busy)}% busy (server ${f(srvPct)}%, this client ${f(clientPct)}%, `
            + `other ${f(busy - (srvPct ?? 0) - (clientPct ?? 0))}%, softirq and other work): all ${ncpu} cores were in use, `
            + 'the figure is bounded by the machine';
    }
    if (clientPct != null && clientPct >= 90) {
        return `NOTE: ${what}: this client (one Node process) used ${f(clientPct)}% of a core: the figure may be the client's limit`;
    }
    return '';
}

// This process's CPU seconds (user + system) since `since` (process.cpuUsage()).
export function ownCpuSeconds(since) {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1e6;
}

// The p-th percentile of an ascending array (nearest rank), or null.
export function pct(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// One counter or gauge from GET /metrics (no signature), or null.
export function metric(o, name) {
    return new Promise((resolve) => {
        http.get({ host: o.host, port: o.port, path: '/metrics', agent: false }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { text += c; });
            res.on('end', () => {
                const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
                resolve(m ? Number(m[1]) : null);
            });
            res.on('error', () => resolve(null));
        }).on('error', () => resolve(null));
    });
}

// `RESULT k=v …` from an object (values must have no spaces).
export const resultLine = (r) => `RESULT ${Object.entries(r).map(([k, v]) => `${k}=${v ?? ''}`).join(' ')}`;

// openClient(o, sdk, {user, channels, onMessage}) → Promise<ws>: a `ws`
// connection to the app that signs in as `user` (when given; the signature
// from sdk.authenticateUser, as an app's auth endpoint makes it), then
// subscribes to every channel of `channels` (private-*: signed with
// sdk.authorizeChannel) and resolves once every subscription succeeded.
// Rejects on an error frame or a close before that. Afterwards each text
// frame goes to onMessage(text, ws). ws.socketId is the socket id.
export function openClient(o, sdk, { user, channels = [], onMessage = () => {} }) {
    const { WebSocket } = packages();
    const url = `ws://${o.host}:${o.port}/app/${o.key}?protocol=7&client=js&version=8.6.0&flash=false`;
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30000 });
        let ready = false;
        let pending = channels.length;
        const subscribeAll = () => {
            if (!pending) { ready = true; resolve(ws); return; }
            for (const ch of channels) {
                const auth = ch.startsWith('private-') ? sdk.authorizeChannel(ws.socketId, ch) : {};
                ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: ch, ...auth } }));
            }
        };
        ws.on('message', (raw) => {
            const text = raw.toString();
            if (ready) { onMessage(text, ws); return; }
            let m;
            try { m = JSON.parse(text); } catch { reject(new Error(`not JSON: ${text.slice(0, 100)}`)); return; }
            switch (m.event) {
            case 'pusher:connection_established':
                ws.socketId = JSON.parse(m.data).socket_id;
                if (user === undefined) { subscribeAll(); return; }
                ws.send(JSON.stringify({ event: 'pusher:signin', data: sdk.authenticateUser(ws.socketId, { id: user }) }));
                return;
            case 'pusher:signin_success':
                subscribeAll();
                return;
            case 'pusher_internal:subscription_succeeded':
                if (--pending === 0) { ready = true; resolve(ws); }
                return;
            case 'pusher:ping':
                ws.send('{"event":"pusher:pong","data":{}}');
                return;
            default:
                reject(new Error(`${user ?? 'client'}: ${text.slice(0, 200)}`));
            }
        });
        ws.on('error', (e) => { if (!ready) reject(e); });
        ws.on('close', (code) => { if (!ready) reject(new Error(`closed (${code}) before it was subscribed`)); });
    });
}

// Runs make(i) for i = 0 … n-1 with at most `concurrency` running at once;
// resolves with the results in order.
export async function inParallel(n, concurrency, make) {
    const out = new Array(n);
    let next = 0;
    const lane = async () => {
        while (next < n) {
            const i = next++;
            out[i] = await make(i);
        }
    };
    await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane));
    return out;
}
