// Helpers for the Server-Sent Events suites (fallback_sse, browser_sse):
// stream tokens and stream URLs signed with the real pusher SDK (the token
// in place of a socket id), an event-stream parser written from the HTML
// spec's rules (fields id / event / data / retry, comments, blank-line
// dispatch, the last-event-id buffer: the last `id:` field wins and an
// id-only record still moves it), a stream client over node:http that keeps
// every record and comment, and the hark_sessions{transport="sse"} gauge.
// Nothing here imitates the server.
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { until, withTimeout } from './harness.mjs';
import { httpGet } from './rawtcp.mjs';

// A stream token: `<unix expiry seconds>.<digits>`, `secs` from now.
export function streamToken(secs = 3600) {
    return `${Math.floor(Date.now() / 1000) + secs}.${randomInt(1e9)}`;
}

// The path (and query) of a stream. opts: token, auth {channel: auth
// string}, channelData {channel: channel_data}, userData, userAuth, since
// (a string), extra (raw `k=v` strings, already encoded), prefix.
export function ssePath(app, channels, opts = {}) {
    const q = [`channels=${encodeURIComponent(channels.join(','))}`];
    if (opts.token !== undefined) q.push(`socket_id=${encodeURIComponent(opts.token)}`);
    for (const [ch, a] of Object.entries(opts.auth || {})) q.push(`auth=${encodeURIComponent(`${ch}:${a}`)}`);
    for (const [ch, d] of Object.entries(opts.channelData || {})) q.push(`channel_data=${encodeURIComponent(`${ch}:${d}`)}`);
    if (opts.userData !== undefined) q.push(`user_data=${encodeURIComponent(opts.userData)}`);
    if (opts.userAuth !== undefined) q.push(`user_auth=${encodeURIComponent(opts.userAuth)}`);
    if (opts.since !== undefined) q.push(`since=${encodeURIComponent(opts.since)}`);
    for (const x of opts.extra || []) q.push(x);
    return `${opts.prefix || ''}/app/${app.key}/sse?${q.join('&')}`;
}

// A stream path signed as an app server signs it with the pusher SDK `sdk`:
// authorizeChannel(token, channel[, presenceData]) for every private- and
// presence- channel, authenticateUser(token, user) when opts.user is given.
// opts.members: {channel: {user_id, user_info}} for presence channels.
// Resolves with {path, token}.
export function signedPath(sdk, app, channels, opts = {}) {
    const token = opts.token ?? streamToken(opts.secs);
    const auth = {};
    const channelData = {};
    for (const ch of channels) {
        if (ch.startsWith('presence-')) {
            const member = (opts.members || {})[ch] || { user_id: 'sse-user', user_info: { via: 'sse' } };
            const a = sdk.authorizeChannel(token, ch, member);
            auth[ch] = a.auth;
            channelData[ch] = a.channel_data;
        } else if (ch.startsWith('private-')) {
            auth[ch] = sdk.authorizeChannel(token, ch).auth;
        }
    }
    let userData;
    let userAuth;
    if (opts.user) {
        const u = sdk.authenticateUser(token, opts.user);
        userData = u.user_data;
        userAuth = u.auth;
    }
    return {
        token,
        path: ssePath(app, channels, { token, auth, channelData, userData, userAuth, since: opts.since, extra: opts.extra }),
    };
}

// ---- the event-stream format -------------------------------------------------

// Parses text/event-stream as the HTML spec does. push() takes decoded
// text in any pieces; onRecord({event, data, id, ids, lines}) for every
// dispatched record (event defaults to 'message'; id is the last-event-id
// at dispatch, ids the `id:` fields of that record); onComment(text)
// for `:` lines; onId(lastEventId) whenever a blank line sets it (also for
// records that dispatch nothing). retry holds the last valid `retry:`.
export class SseParser {
    constructor({ onRecord = () => {}, onComment = () => {}, onId = () => {} } = {}) {
        this.onRecord = onRecord;
        this.onComment = onComment;
        this.onId = onId;
        this.rest = '';
        this.first = true;
        this.pendingCR = false;
        this.lastEventId = '';
        this.idBuffer = '';
        this.retry = null;
        this.reset();
    }

    reset() {
        this.data = '';
        this.event = '';
        this.ids = [];
        this.lines = [];
    }

    push(text) {
        if (this.first && text.length) {
            this.first = false;
            if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        }
        let s = this.rest + text;
        this.rest = '';
        let i = 0;
        if (this.pendingCR) { // a CR ended the last piece: a LF right after it is the same line end
            this.pendingCR = false;
            if (s[0] === '\n') i = 1;
        }
        for (;;) {
            let j = i;
            while (j < s.length && s[j] !== '\n' && s[j] !== '\r') j++;
            if (j === s.length) { this.rest = s.slice(i); return; }
            this.line(s.slice(i, j));
            if (s[j] === '\r') {
                if (j + 1 === s.length) { this.pendingCR = true; i = j + 1; continue; }
                if (s[j + 1] === '\n') j++;
            }
            i = j + 1;
        }
    }

    line(l) {
        if (l === '') { this.dispatch(); return; }
        if (l[0] === ':') { this.onComment(l.slice(1)); return; }
        this.lines.push(l);
        const c = l.indexOf(':');
        const field = c < 0 ? l : l.slice(0, c);
        let value = c < 0 ? '' : l.slice(c + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') this.event = value;
        else if (field === 'data') this.data += `${value}\n`;
        else if (field === 'id') {
            if (!value.includes('\0')) { this.idBuffer = value; this.ids.push(value); }
        } else if (field === 'retry') {
            if (/^[0-9]+$/.test(value)) this.retry = Number(value);
        }
    }

    dispatch() {
        this.lastEventId = this.idBuffer;
        this.onId(this.lastEventId);
        if (this.data === '') { this.reset(); return; }
        const rec = {
            event: this.event || 'message',
            data: this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data,
            id: this.lastEventId,
            ids: this.ids,
            lines: this.lines,
        };
        this.reset();
        this.onRecord(rec);
    }
}

function matcher(pred) {
    if (typeof pred === 'function') return pred;
    if (typeof pred === 'string') return (r) => r.event === pred;
    return (r) => Object.entries(pred).every(([k, v]) => (k === 'channel' ? r.msg && r.msg.channel === v : r[k] === v));
}

// Opens GET `path` (a stream) on target ({host, port}: hark or a proxy).
// headers: extra request headers (Last-Event-ID). Records land in
// `records` ({event, data, id, ids, lines, msg: data parsed, parsed:
// msg.data parsed when it is a JSON string, taken}), comments in
// `comments`. `opened` resolves once the response head is in; `done` once
// the response has ended, the connection dropped or close() was called.
export function openStream(target, path, headers = {}) {
    const st = {
        status: null, headers: null, text: '', records: [], comments: [], ended: false,
        endedByServer: false, error: null, bytes: 0,
        get lastEventId() { return parser.lastEventId; },
        get retry() { return parser.retry; },
    };
    const parser = new SseParser({
        onRecord: (r) => {
            let msg = null;
            let parsed;
            try { msg = JSON.parse(r.data); } catch { /* kept raw */ }
            if (msg && typeof msg.data === 'string') { try { parsed = JSON.parse(msg.data); } catch { /* kept */ } }
            st.records.push({ ...r, msg, parsed, taken: false });
        },
        onComment: (c) => st.comments.push({ text: c, at: Date.now() }),
    });
    let req;
    let closedByUs = false;
    st.opened = new Promise((resolveOpen, rejectOpen) => {
        st.done = new Promise((resolveDone) => {
            const finish = () => { if (!st.ended) { st.ended = true; resolveDone(); } };
            req = http.request({ host: target.host, port: target.port, method: 'GET', path, agent: false, headers }, (res) => {
                st.status = res.statusCode;
                st.headers = res.headers;
                res.setEncoding('utf8');
                resolveOpen(st);
                res.on('data', (d) => {
                    st.bytes += Buffer.byteLength(d);
                    st.text += d;
                    if (st.status === 200) parser.push(d);
                });
                res.on('end', () => { if (!closedByUs) st.endedByServer = true; finish(); });
                res.on('error', (e) => { st.error = e; if (!closedByUs) st.endedByServer = true; finish(); });
                res.on('close', () => { if (!closedByUs && !res.complete) st.endedByServer = true; finish(); });
            });
            req.on('error', (e) => { st.error = e; finish(); rejectOpen(e); });
            req.end();
        });
    });
    st.opened.catch(() => {});
    Object.assign(st, {
        // Drops the connection (what a closed tab or a lost network does).
        close() { closedByUs = true; req.destroy(); },
        async take(pred, ms = 5000) {
            const f = matcher(pred);
            const r = await until(() => {
                const x = st.records.find((e) => !e.taken && f(e));
                if (!x && st.ended) throw new Error(`the stream ended without ${describe(pred)}; got ${summary(st)}`);
                return x;
            }, describe(pred), ms);
            r.taken = true;
            return r;
        },
        all(pred) { const f = matcher(pred); return st.records.filter(f); },
        count(pred) { return st.all(pred).length; },
        // Records of Pusher events on `channel` (named `event`), in order.
        events(channel, event) {
            return st.records.filter((r) => r.msg && r.msg.channel === channel && (event === undefined || r.event === event));
        },
        // Waits for the response to end (by the server).
        ends(ms = 5000) { return withTimeout(st.done, 'the stream to end', ms); },
    });
    return st;
}

const describe = (pred) => (typeof pred === 'function' ? 'a matching record' : `record ${JSON.stringify(pred)}`);
const summary = (st) => JSON.stringify(st.records.map((r) => r.event)).slice(0, 600);

// A stream whose head is in (status 200) and whose connection_established
// has been read. opts: headers, ms, scope (its add() gets the stream's
// close, so the test's scope drops it).
export async function streamReady(target, path, opts = {}) {
    const ms = opts.ms ?? 5000;
    const st = openStream(target, path, opts.headers || {});
    if (opts.scope) opts.scope.add(() => st.close());
    await withTimeout(st.opened, `the response head of ${path}`, ms);
    if (st.status !== 200) {
        await withTimeout(st.done, 'the refusal body', ms).catch(() => {});
        throw new Error(`GET ${path}: ${st.status} ${st.text}`);
    }
    await st.take('pusher:connection_established', ms);
    return st;
}

// One GET over its own connection, read to its end: {status, headers, text}.
export async function sseRequest(target, method, path, headers = {}, ms = 5000) {
    return withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: target.host, port: target.port, method, path, agent: false, headers }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
    }), `${method} ${path}`, ms);
}

// hark_sessions{transport=…} from /metrics (sse by default).
export async function sessionsGauge(server, transport = 'sse') {
    const { text } = await httpGet(server, '/metrics');
    const m = new RegExp(`^hark_sessions\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(text);
    if (!m) throw new Error(`no hark_sessions{transport="${transport}"} in /metrics:\n${text}`);
    return Number(m[1]);
}

