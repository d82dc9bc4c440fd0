// Helpers for the HTTP fallback suites (fallback_xhr, fallback_robustness):
// pusher-js options that force xhr_streaming / xhr_polling against hark,
// the raw messages a pusher-js connection got (with the top-level "id"
// pusher-js drops), and a raw session client over node:http that speaks the
// SockJS-style framing of spec §10 (o, a[...], h, c[code,"reason"]) and keeps
// every line of every receive response, for checks pusher-js would hide.
// Nothing here imitates the server.
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { APPS, until, withTimeout } from './harness.mjs';
import { channelAuth, restWithKey, userAuth } from './clients.mjs';
import { httpGet } from './rawtcp.mjs';

export const TRANSPORTS = ['xhr_streaming', 'xhr_polling'];
// the workers these suites' servers run (given to them: the harness leaves
// the server's own default, one per core, when HARK_TEST_WORKERS is unset)
export const WORKERS = Number(process.env.HARK_TEST_WORKERS || 1);
export const ROLLOVER = 262144; // bytes past which hark stops writing to one stream

// pusher-js options that allow only `transport`, sent to hark (httpHost /
// httpPort; httpPath left at its default '/pusher').
export function xhrOptions(target, transport) {
    return {
        enabledTransports: [transport],
        httpHost: target.host,
        httpPort: target.port,
        forceTLS: false,
    };
}

// A pusher-js client (harness client(): auth signed by the pusher SDK) on
// `transport` only; opts.via: {host, port} to reach hark through (a proxy).
export function xhrClient(s, server, transport, opts = {}) {
    return s.pusher(server, {
        ...opts,
        pusher: { ...xhrOptions(opts.via || server, transport), ...(opts.pusher || {}) },
    });
}

// As clients.mjs encryptedClient, over `transport`.
export function encryptedXhrClient(s, server, transport, masterKeyBase64, opts = {}) {
    const app = opts.app || APPS.main;
    const sdk = restWithKey(server, app, masterKeyBase64);
    return xhrClient(s, server, transport, {
        ...opts,
        pusher: {
            channelAuthorization: {
                customHandler: ({ socketId, channelName }, cb) => {
                    try { cb(null, sdk.authorizeChannel(socketId, channelName)); } catch (e) { cb(e, null); }
                },
            },
        },
    });
}

// The transport pusher-js's live connection uses ('xhr_streaming', …).
export const transportOf = (c) => c.connection.connection && c.connection.connection.transport
    && c.connection.connection.transport.name;

// Every message c's current transport delivers from now on, parsed as sent
// (pusher-js's own events drop the top-level "id"). Bind once connected.
export function rawMessages(c) {
    const got = [];
    const t = c.connection.connection.transport;
    t.bind('message', (m) => {
        const msg = JSON.parse(m.data);
        let parsed;
        if (typeof msg.data === 'string') { try { parsed = JSON.parse(msg.data); } catch { /* kept */ } }
        got.push({ msg, parsed });
    });
    return got;
}

// pusher-js: how many times its HTTP socket re-opened the receive request
// of the same session (xhr_streaming's roll-over; a poll's next poll).
export function countReopens(c) {
    const sock = c.connection.connection.transport.socket;
    const counter = { n: 0 };
    const orig = sock.reconnect.bind(sock);
    sock.reconnect = () => { counter.n += 1; orig(); };
    return counter;
}

// hark_sessions{transport="xhr"} from /metrics.
export async function xhrSessions(server) {
    const { text } = await httpGet(server, '/metrics');
    const m = /^hark_sessions\{transport="xhr"\} (\d+)$/m.exec(text);
    if (!m) throw new Error(`no hark_sessions{transport="xhr"} in /metrics:\n${text}`);
    return Number(m[1]);
}

export const sessionId = () => Array.from({ length: 8 }, () => randomInt(32).toString(32)).join('');

// One POST (or other method) over its own TCP connection. Resolves with
// {status, headers, text} once the response has ended.
export function request(server, method, path, body, headers = {}, ms = 10000) {
    return withTimeout(new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : Buffer.from(body);
        const req = http.request({
            host: server.host, port: server.port, method, path, agent: false,
            headers: {
                ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
                ...headers,
            },
        }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end(data);
    }), `${method} ${path}`, ms);
}

function matcher(pred) {
    if (typeof pred === 'function') return pred;
    if (typeof pred === 'string') return (m) => m.event === pred;
    return (m) => Object.entries(pred).every(([k, v]) => m[k] === v);
}

// A raw HTTP fallback session. Receive requests are started by hand
// (stream() / poll()) or by startPolling(), which re-polls like pusher-js.
// Every receive request is kept in `requests` ({kind, status, headers,
// lines, bytes, nonAscii, done, ended, destroy()}); the messages of all its
// a[...] frames land in `log` ({msg, text, parsed, taken}) in arrival order,
// and every line in `lines` ({line, req}).
export function xhrRaw(server, opts = {}) {
    const app = opts.app || APPS.main;
    const serverId = opts.serverId ?? randomInt(1000);
    const session = opts.session || sessionId();
    const base = `${opts.prefix || ''}/pusher/app/${app.key}/${serverId}/${session}`;
    const query = '?protocol=7&client=js&version=8.6.0';
    const log = [];
    const lines = [];
    const requests = [];
    let closeFrame = null;
    let socketId = null;
    let polling = false;
    let seq = 0;

    const bad = [];
    const onLine = (req, line) => {
        req.lines.push(line);
        lines.push({ line, req });
        try { parseLine(req, line); } catch (e) { bad.push({ line, error: String(e) }); }
    };
    const parseLine = (req, line) => {
        const type = line[0];
        if (type === 'a') {
            for (const text of JSON.parse(line.slice(1))) {
                const msg = JSON.parse(text);
                let parsed;
                if (msg && typeof msg.data === 'string') { try { parsed = JSON.parse(msg.data); } catch { /* kept */ } }
                log.push({ msg, text, parsed, taken: false, req });
            }
        } else if (type === 'c') {
            closeFrame = JSON.parse(line.slice(1));
        }
    };

    // One receive request: kind 'xhr_streaming' or 'xhr'.
    function receive(kind) {
        seq += 1;
        const r = {
            kind, status: null, headers: null, lines: [], bytes: 0, nonAscii: 0, done: false, error: null,
            text: '',
        };
        let rest = '';
        let sock = null;
        r.ended = new Promise((resolve) => {
            const req = http.request({
                host: server.host, port: server.port, method: 'POST', agent: false,
                path: `${base}/${kind}${query}&t=${Date.now()}&n=${seq}`,
                headers: { 'Content-Type': 'application/json', 'Content-Length': 0 },
            }, (res) => {
                r.status = res.statusCode;
                r.headers = res.headers;
                res.on('data', (d) => {
                    r.bytes += d.length;
                    for (const b of d) if (b >= 0x80) r.nonAscii += 1;
                    const s = d.toString('latin1'); // ASCII-only by contract; nonAscii counts any other byte
                    r.text += s;
                    rest += s;
                    for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
                        onLine(r, rest.slice(0, i));
                        rest = rest.slice(i + 1);
                    }
                });
                res.on('end', () => { r.done = true; r.partial = rest; resolve(); });
                res.on('error', (e) => { r.error = e; r.done = true; resolve(); });
                res.on('close', () => { r.done = true; resolve(); });
            });
            req.on('socket', (s) => { sock = s; });
            req.on('error', (e) => { r.error = e; r.done = true; resolve(); });
            req.end();
            r.destroy = () => { req.destroy(); if (sock) sock.destroy(); };
        });
        requests.push(r);
        return r;
    }

    const x = {
        app, base, session, serverId, log, lines, requests,
        bad, // lines that did not parse as frames

        get socketId() { return socketId; },
        get closeFrame() { return closeFrame; },
        stream() { return receive('xhr_streaming'); },
        poll() { return receive('xhr'); },
        // Keeps one poll open until stopped, the session closes, or a poll
        // is answered other than 200 (as pusher-js does).
        startPolling() {
            polling = true;
            (async () => {
                while (polling && !closeFrame) {
                    const r = receive('xhr');
                    await r.ended;
                    if (r.status !== 200) break;
                }
            })();
        },
        stopPolling() { polling = false; },
        // POST xhr_send; `messages` are objects or strings (each a Pusher
        // message), or `raw` is sent as the body as is.
        post(messages, raw) {
            const body = raw !== undefined ? raw
                : JSON.stringify(messages.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))));
            seq += 1;
            return request(server, 'POST', `${base}/xhr_send?t=${Date.now()}&n=${seq}`, body);
        },
        // Sends one message and checks the 204.
        async send(obj) {
            const r = await x.post([obj]);
            if (r.status !== 204) throw new Error(`xhr_send answered ${r.status} ${r.text}`);
            return r;
        },
        async take(pred, ms = 5000) {
            const f = matcher(pred);
            const e = await until(() => log.find((m) => !m.taken && f(m.msg)), typeof pred === 'function' ? 'a matching message' : JSON.stringify(pred), ms);
            e.taken = true;
            return e;
        },
        all(pred) { const f = matcher(pred); return log.filter((m) => f(m.msg)); },
        count(pred) { return x.all(pred).length; },
        events(channel, event) {
            return log.filter((m) => m.msg.channel === channel && (event === undefined || m.msg.event === event));
        },
        async ready(ms = 5000) {
            const e = await x.take('pusher:connection_established', ms);
            socketId = JSON.parse(e.msg.data).socket_id;
            return socketId;
        },
        // A pusher:ping answered by a pusher:pong on the receive side.
        async ping(ms = 5000) {
            await x.send({ event: 'pusher:ping', data: {} });
            return x.take('pusher:pong', ms);
        },
        async subscribe(channel, extra = {}, ms = 5000) {
            await x.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
            return x.take((m) => m.channel === channel
                && (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error'), ms);
        },
        async subscribeAuthed(channel, member) {
            const channelData = member === undefined ? undefined : JSON.stringify(member);
            const data = { auth: channelAuth(app, socketId, channel, channelData) };
            if (channelData !== undefined) data.channel_data = channelData;
            return x.subscribe(channel, data);
        },
        async signin(userData) {
            const ud = JSON.stringify(userData);
            await x.send({ event: 'pusher:signin', data: { auth: userAuth(app, socketId, ud), user_data: ud } });
            return x.take((m) => m.event === 'pusher:signin_success' || m.event === 'pusher:error');
        },
        // Lines of every receive request so far, in order, of type `type`.
        linesOf(type) { return lines.filter((l) => l.line[0] === type).map((l) => l.line); },
        close() {
            polling = false;
            for (const r of requests) if (!r.done && r.destroy) r.destroy();
        },
    };
    return x;
}

// A raw session with its first receive request open (stream by default,
// else a polling loop) and connection_established read.
export async function xhrReady(s, server, opts = {}) {
    const x = xhrRaw(server, opts);
    s.add(() => x.close());
    if (opts.poll) x.startPolling(); else x.stream();
    await x.ready();
    return x;
}
