// Helpers for the feature tests (channels, presence, client events, sign-in,
// REST, cache, Echo) built on harness.mjs: a raw WebSocket client that keeps
// every frame (text and parsed) so nothing is skipped while waiting, channel /
// user signatures computed the way an app's auth endpoint computes them, a
// per-test scope that disconnects everything it created, small recorders
// for pusher-js events, and barriers for checks that something did NOT arrive
// (see "barriers" below). Nothing here imitates the server.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import PusherServer from 'pusher';
import Echo from 'laravel-echo';
import { APPS, raw, client, until, sleep, withTimeout } from './harness.mjs';

export const hmac = (secret, text) => createHmac('sha256', secret).update(text).digest('hex');

// `<key>:<hex>` over `<socket_id>:<channel>[:<channel_data>]`.
export function channelAuth(app, socketId, channel, channelData) {
    const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
    return `${app.key}:${hmac(app.secret, text)}`;
}

// `<key>:<hex>` over `<socket_id>::user::<user_data>`.
export function userAuth(app, socketId, userData) {
    return `${app.key}:${hmac(app.secret, `${socketId}::user::${userData}`)}`;
}

let seq = 0;
// A channel name (or id) no other test uses: [A-Za-z0-9_-] only.
export function uniq(prefix = 'ch-') {
    seq += 1;
    return `${prefix}${process.pid}-${Date.now().toString(36)}-${seq}`;
}

function matcher(pred) {
    if (typeof pred === 'function') return pred;
    if (typeof pred === 'string') return (m) => m.event === pred;
    return (m) => Object.entries(pred).every(([k, v]) => m[k] === v);
}

const describeMatch = (pred) => (typeof pred === 'function' ? 'a matching message' : JSON.stringify(pred));

// A raw `ws` client that records every frame. Entries: { msg, text, parsed,
// taken } where parsed is JSON.parse(msg.data) when data is a JSON string.
export function rawClient(server, opts = {}) {
    const app = opts.app || APPS.main;
    const path = opts.path || `/app/${app.key}?protocol=7&client=js&version=8.6.0&flash=false`;
    const r = raw(server, path);
    const log = [];
    r.ws.on('message', (d) => {
        const text = d.toString();
        let msg;
        try { msg = JSON.parse(text); } catch { msg = { raw: text }; }
        let parsed;
        if (msg && typeof msg.data === 'string') {
            try { parsed = JSON.parse(msg.data); } catch { /* keep undefined */ }
        }
        log.push({ msg, text, parsed, taken: false });
    });
    let socketId = null;
    const rc = {
        app,
        r,
        log,
        get socketId() { return socketId; },
        // Waits for pusher:connection_established; resolves with the socket id.
        async ready(ms = 5000) {
            const e = await rc.take('pusher:connection_established', ms);
            socketId = JSON.parse(e.msg.data).socket_id;
            return socketId;
        },
        send(obj) { r.send(obj); },
        // The first not-yet-taken message matching pred (event name, object of
        // field values, or function of the message); marks it taken.
        async take(pred, ms = 5000) {
            const f = matcher(pred);
            const e = await until(() => log.find((x) => !x.taken && f(x.msg)), describeMatch(pred), ms);
            e.taken = true;
            return e;
        },
        all(pred) { const f = matcher(pred); return log.filter((x) => f(x.msg)); },
        count(pred) { return rc.all(pred).length; },
        // Round trip: everything sent before has been processed by the server.
        async ping(ms = 5000) {
            rc.send({ event: 'pusher:ping', data: {} });
            return rc.take('pusher:pong', ms);
        },
        // Sends pusher:subscribe and resolves with the reply entry
        // (subscription_succeeded or subscription_error for that channel).
        async subscribe(channel, extra = {}, ms = 5000) {
            rc.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
            return rc.take((m) => m.channel === channel
                && (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error'), ms);
        },
        // Subscribes with a correct signature (and channel_data for presence).
        async subscribeAuthed(channel, member) {
            const channelData = member === undefined ? undefined
                : (typeof member === 'string' ? member : JSON.stringify(member));
            const data = { auth: channelAuth(app, socketId, channel, channelData) };
            if (channelData !== undefined) data.channel_data = channelData;
            return rc.subscribe(channel, data);
        },
        // Signs in with user_data (an object or the exact string).
        async signin(userData) {
            const ud = typeof userData === 'string' ? userData : JSON.stringify(userData);
            rc.send({ event: 'pusher:signin', data: { auth: userAuth(app, socketId, ud), user_data: ud } });
            return rc.take((m) => m.event === 'pusher:signin_success' || m.event === 'pusher:error');
        },
        // Events named `event` on `channel`, in arrival order.
        events(channel, event) {
            return log.filter((x) => x.msg.channel === channel && (event === undefined || x.msg.event === event));
        },
        closed(ms = 5000) { return r.closed(ms); },
        get closeInfo() { return r.closeInfo; },
        close() { r.close(); },
        terminate() { r.terminate(); },
    };
    return rc;
}

// Connected raw client (socket id known).
export async function rawReady(s, server, opts) {
    const rc = s.raw(server, opts);
    await rc.ready();
    return rc;
}

// Everything created through a scope is disconnected by close().
export function scope() {
    const closers = [];
    return {
        pusher(server, opts) {
            const c = client(server, opts);
            closers.push(() => c.disconnect());
            return c;
        },
        raw(server, opts) {
            const rc = rawClient(server, opts);
            closers.push(() => rc.close());
            return rc;
        },
        // pinnedRest(), closed with the scope.
        pinned(server, app, agent) {
            const sdk = pinnedRest(server, app, agent);
            closers.push(() => sdk.pinnedAgent.destroy());
            return sdk;
        },
        echo(server, opts = {}) {
            const c = client(server, opts);
            const echo = new Echo({ broadcaster: 'pusher', client: c, ...(opts.echo || {}) });
            closers.push(() => echo.disconnect());
            return echo;
        },
        add(fn) { closers.push(fn); },
        async close() {
            for (const fn of closers.splice(0).reverse()) {
                try { fn(); } catch { /* ignore */ }
            }
            await sleep(20);
        },
    };
}

// Records every `event` on a pusher-js channel/client/user/watchlist object.
export function record(target, event) {
    const got = [];
    target.bind(event, (data, meta) => got.push({ data, meta }));
    return got;
}

// Waits until arr has at least n elements; resolves with arr.
export async function atLeast(arr, n, what = 'events', ms = 5000) {
    await until(() => arr.length >= n, `${n} ${what} (have ${arr.length})`, ms);
    return arr;
}

// pusher-js connection-level errors ({type, data}) as pusher-js reports them.
export function connectionErrors(c) {
    const errs = [];
    c.connection.bind('error', (e) => errs.push(e));
    return errs;
}

// pusher-js: resolves once the connection is signed in and its
// #server-to-user-<id> channel is subscribed.
export function signedIn(c, ms = 5000) {
    return until(() => c.user && c.user.user_data && c.user.serverToUserChannel
        && c.user.serverToUserChannel.subscribed, 'sign-in and #server-to-user subscription', ms);
}

// The result of an SDK call as {status, body, text}; RequestErrors with a
// status become results too, anything else is rethrown.
export async function restCall(fn) {
    let res;
    try {
        res = await fn();
    } catch (e) {
        if (e && typeof e.status === 'number') {
            let body;
            try { body = JSON.parse(e.body); } catch { /* not JSON */ }
            return { status: e.status, body, text: e.body };
        }
        throw e;
    }
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body, text };
}

// An SDK for app that can also encrypt (private-encrypted-*).
export function restWithKey(server, app, masterKeyBase64) {
    return new PusherServer({
        appId: app.id, key: app.key, secret: app.secret,
        host: server.host, port: String(server.port), useTLS: false,
        encryptionMasterKeyBase64: masterKeyBase64,
    });
}

export const newMasterKey = () => randomBytes(32).toString('base64');

// pusher-js client whose auth handler also returns shared_secret for
// private-encrypted-* channels (the app's auth endpoint with a master key).
export function encryptedClient(s, server, masterKeyBase64, opts = {}) {
    const app = opts.app || APPS.main;
    const sdk = restWithKey(server, app, masterKeyBase64);
    return s.pusher(server, {
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

// ---- barriers for "X was not delivered" ------------------------------------
//
// A check that something did NOT arrive needs proof that it would have
// arrived by now, not a pause. What hark guarantees (docs/design.md,
// "Workers"): frames on one connection arrive in the order the owning worker
// wrote them; a worker handles what one connection sends in order; a publish
// (REST, client event, presence change, user message) is written at once to
// the subscribers on the publishing worker and reaches each other worker that
// has a subscriber as one message in that worker's inbox, and inboxes are
// FIFO. So:
//   - rc.ping() (a pong) proves that everything the connection's own earlier
//     messages made its worker write to it has arrived;
//   - a control event from the same origin (the same HTTP connection, or the
//     same WebSocket connection) to the same receiving connection, sent after
//     the thing that must not arrive, arrives after it would have.
// A pong does NOT prove that a publish from another worker has arrived.

// An http.Agent over exactly one keep-alive TCP connection for its whole
// life. A hark HTTP connection belongs to the worker that accepted it, so
// every request made through this agent is handled by one and the same worker;
// if that connection is lost, the next request fails instead of silently
// reaching another worker.
export class OneConnectionAgent extends http.Agent {
    constructor() {
        super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
        this.opened = 0;
    }

    createConnection(options, cb) {
        if (this.opened > 0) {
            cb(new Error('the pinned HTTP connection is gone; a new one could reach another worker'));
            return undefined;
        }
        this.opened += 1;
        return super.createConnection(options, cb);
    }
}

// The server SDK (as rest()) with every request over one HTTP connection,
// i.e. one worker: what it publishes reaches each subscriber in the order it
// was published, across channels too. Pass the agent of another pinned SDK to
// share its connection (another app, same worker).
export function pinnedRest(server, app = APPS.main, agent = new OneConnectionAgent()) {
    const sdk = new PusherServer({
        appId: app.id, key: app.key, secret: app.secret,
        host: server.host, port: String(server.port), useTLS: false, agent,
    });
    sdk.pinnedAgent = agent;
    return sdk;
}

// Positive control from `from`'s worker to `to`: both join a fresh private
// channel and `from` sends a client event that `to` receives. Whatever from's
// worker wrote or sent to `to` before (on any channel) has arrived by then.
// opts.presence: use a member_added instead (apps without client events).
export async function relayBarrier(from, to, opts = {}) {
    if (opts.presence) {
        const ch = uniq('presence-barrier-');
        const t = await to.subscribeAuthed(ch, { user_id: 'barrier-to' });
        if (t.msg.event !== 'pusher_internal:subscription_succeeded') throw new Error(`barrier: ${t.text}`);
        const f = await from.subscribeAuthed(ch, { user_id: 'barrier-from' });
        if (f.msg.event !== 'pusher_internal:subscription_succeeded') throw new Error(`barrier: ${f.text}`);
        await to.take({ event: 'pusher_internal:member_added', channel: ch });
        return;
    }
    const ch = uniq('private-barrier-');
    for (const c of [to, from]) {
        const e = await c.subscribeAuthed(ch);
        if (e.msg.event !== 'pusher_internal:subscription_succeeded') throw new Error(`barrier: ${e.text}`);
    }
    from.send({ event: 'client-barrier', channel: ch, data: {} });
    await to.take({ event: 'client-barrier', channel: ch });
}

// pusher-js: a pusher:ping / pusher:pong round trip on c's connection.
export function pusherPing(c, ms = 5000) {
    const pong = withTimeout(new Promise((resolve) => {
        const fn = () => { c.unbind('pusher:pong', fn); resolve(); };
        c.bind('pusher:pong', fn);
    }), 'pusher:pong', ms);
    c.send_event('pusher:ping', {});
    return pong;
}

// A new raw client on the same worker as rc (socket ids name their worker,
// `<worker>.<random>`; workers.test.mjs checks that against the per-worker
// shares of max_pending_input_bytes).
export async function sameWorker(s, server, rc, opts) {
    const w = rc.socketId.split('.')[0];
    for (let i = 0; i < 64; i++) {
        const c = await rawReady(s, server, opts);
        if (c.socketId.split('.')[0] === w) return c;
        c.close();
    }
    throw new Error(`no connection on worker ${w} in 64 tries`);
}

// Terminates rc and resolves once hark has run its close handling: it
// unsubscribes a closed connection's channels, signs its user out and forgets
// it in one step of its worker, and the REST API (sdk) then sees rc's marker
// channel vacated. Anything that step sent is then ahead of a later control
// from that worker (sameWorker + relayBarrier, or a ping on that worker).
export async function terminated(sdk, rc) {
    const mark = uniq('closing-');
    const e = await rc.subscribe(mark, { auth: '' });
    if (e.msg.event !== 'pusher_internal:subscription_succeeded') throw new Error(`marker: ${e.text}`);
    rc.terminate();
    await until(async () => {
        const res = await sdk.get({ path: `/channels/${mark}` });
        return (await res.json()).occupied === false;
    }, `hark to process the close of ${rc.socketId}`);
}

export { withTimeout, sleep, until };

// The path and query of a signed REST request (`/apps/<id>/events?auth_...`),
// for tests that write the HTTP request bytes themselves.
export function signedTarget(app, method, path, body = '') {
    const params = {
        auth_key: app.key,
        auth_timestamp: String(Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        ...(body.length ? { body_md5: createHash('md5').update(body).digest('hex') } : {}),
    };
    const sorted = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
    const sig = hmac(app.secret, `${method}\n${path}\n${sorted}`);
    return `${path}?${sorted}&auth_signature=${sig}`;
}

// A complete HTTP/1.1 request carrying a signed POST /apps/<id>/events.
export function signedTriggerRequest(server, app, channel, event, data) {
    const body = JSON.stringify({ name: event, channels: [channel], data: JSON.stringify(data) });
    const target = signedTarget(app, 'POST', `/apps/${app.id}/events`, body);
    return `POST ${target} HTTP/1.1\r\nHost: ${server.host}:${server.port}\r\n`
        + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
