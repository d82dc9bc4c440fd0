// Names as long as an app allows (docs/api.md app keys
// max_channel_name_length, max_event_name_length; config.h
// HK_MAX_NAME_LENGTH): with both at 1000, 1000-byte channel and event names
// travel whole through subscribe, REST publish, client events, the channel
// queries, the directory, cache channels and webhooks, and a channel goes
// away when its last subscriber leaves (channel_vacated for the full name).
// Exactly 1000 bytes is accepted everywhere, 1001 refused. Run with
// HARK_TEST_WORKERS=1 and 2: the raw subscriber is put on another worker
// when there is one.
//
// The pusher server SDK refuses names over 200 characters in trigger() and
// authorizeChannel(), so publishes go through its signed post() and channel
// signatures are computed here (as an app's auth endpoint would).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { startHark, rest, raw, client, connected, subscribed, nextEvent, until } from './lib/harness.mjs';
import { restCall } from './lib/clients.mjs';

const LIMIT = 1000;
const APP = {
    id: 'longnames2-id', key: 'longnames2-key', secret: 'longnames2-secret',
    client_events: true, client_event_rate: 0,
    max_channel_name_length: LIMIT, max_event_name_length: LIMIT,
};

const hmac = (text) => createHmac('sha256', APP.secret).update(text).digest('hex');
const channelAuth = (socketId, channel, channelData) => `${APP.key}:${hmac(
    channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`)}`;

let seq = 0;
// A unique name of exactly n bytes: prefix, a tag, then a fill that uses
// every punctuation character a channel name may hold (=@,; are
// percent-encoded in paths, so the raw path is much longer than the name).
function name(prefix, n, fill = 'ab=@,.;_-0') {
    seq += 1;
    let s = `${prefix}${process.pid}-${Date.now().toString(36)}-${seq}-`;
    while (s.length < n) s += fill;
    return s.slice(0, n);
}
const enc = encodeURIComponent;

// Signed HTTP API calls; resolves { status, body, text } for any status.
const call = restCall;

// A webhook receiver on a loopback port that keeps every event of every
// request the pusher SDK validates.
async function receiver() {
    const events = [];
    const invalid = [];
    let sdk = null;
    const srv = createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const rawBody = Buffer.concat(chunks).toString('utf8');
            const wh = sdk && sdk.webhook({ headers: req.headers, rawBody });
            if (wh && wh.isValid()) events.push(...JSON.parse(rawBody).events);
            else invalid.push(rawBody);
            res.writeHead(200, { 'Content-Type': 'text/plain' });
            res.end('ok');
        });
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return {
        url: `http://127.0.0.1:${srv.address().port}/hooks`,
        events,
        invalid,
        setSdk(s) { sdk = s; },
        // Resolves with the first event with these fields.
        async waitFor(fields, what, ms = 5000) {
            const match = (e) => Object.entries(fields).every(([k, v]) => e[k] === v);
            return until(() => events.find(match), what, ms);
        },
        count(fields) {
            return events.filter((e) => Object.entries(fields).every(([k, v]) => e[k] === v)).length;
        },
        close() {
            srv.closeAllConnections();
            return new Promise((resolve) => srv.close(resolve));
        },
    };
}

// A raw WebSocket that keeps every frame (text and parsed) for exact checks.
function rawRecorder(server) {
    const r = raw(server, `/app/${APP.key}?protocol=7&client=js&version=8.6.0&flash=false`);
    const log = [];
    r.ws.on('message', (d) => {
        const text = d.toString();
        let msg;
        try { msg = JSON.parse(text); } catch { msg = { raw: text }; }
        log.push({ msg, text, taken: false });
    });
    const rec = {
        r,
        log,
        socketId: null,
        send(obj) { r.send(obj); },
        async take(pred, what, ms = 5000) {
            const e = await until(() => log.find((x) => !x.taken && pred(x.msg)), what, ms);
            e.taken = true;
            return e;
        },
        async ready() {
            const e = await rec.take((m) => m.event === 'pusher:connection_established', 'connection_established');
            rec.socketId = JSON.parse(e.msg.data).socket_id;
            return rec.socketId;
        },
        async subscribe(channel, data = {}) {
            rec.send({ event: 'pusher:subscribe', data: { channel, ...data } });
            return rec.take((m) => m.channel === channel && (m.event === 'pusher_internal:subscription_succeeded'
                || m.event === 'pusher:subscription_error'), `the answer to subscribing to ${channel.slice(0, 40)}…`);
        },
        close() { r.close(); },
    };
    return rec;
}

// The worker a socket id belongs to (its first part).
const workerOf = (socketId) => socketId.split('.')[0];

describe('names up to max_channel_name_length / max_event_name_length = 1000', () => {
    let server;
    let sdk;
    let hooks;
    let closers;
    before(async () => {
        hooks = await receiver();
        server = await startHark({
            config: {
                apps: [{ ...APP, webhooks: [{ url: hooks.url }] }],
                webhook_grace_ms: 50,
                webhook_batch_ms: 20,
                shutdown_grace_ms: 300,
            },
        });
        sdk = rest(server, APP);
        hooks.setSdk(sdk);
    });
    after(async () => {
        await server.stop();
        await hooks.close();
        assert.deepEqual(hooks.invalid, [], 'every webhook request is valid');
    });
    beforeEach(() => { closers = []; });
    afterEach(() => {
        for (const fn of closers.splice(0).reverse()) {
            try { fn(); } catch { /* ignore */ }
        }
    });

    // pusher-js with channel signatures computed here for any name length.
    function pusherClient(user = { id: 'u1', info: { name: 'one' } }) {
        const c = client(server, {
            app: APP,
            user,
            pusher: {
                channelAuthorization: {
                    customHandler: ({ socketId, channelName }, cb) => {
                        if (channelName.startsWith('presence-')) {
                            const channelData = JSON.stringify({ user_id: user.id, user_info: user.info });
                            cb(null, { auth: channelAuth(socketId, channelName, channelData), channel_data: channelData });
                        } else {
                            cb(null, { auth: channelAuth(socketId, channelName) });
                        }
                    },
                },
            },
        });
        closers.push(() => c.disconnect());
        return c;
    }

    // A raw connection, on another worker than socketId's when there is one.
    async function rawElsewhere(socketId) {
        let rec;
        for (let i = 0; i < 8; i++) {
            rec = rawRecorder(server);
            closers.push(() => rec.close());
            await rec.ready();
            if (workerOf(rec.socketId) !== workerOf(socketId)) break;
        }
        return rec;
    }

    const channelsList = async () => {
        const res = await call(() => sdk.get({ path: '/channels' }));
        assert.equal(res.status, 200, res.text);
        return Object.keys(res.body.channels);
    };

    // pusher-js subscribed to a 1000-byte public and a 1000-byte presence
    // channel, and a raw connection (on another worker when there is one)
    // subscribed to the public one; resolves once every channel_occupied and
    // member_added webhook for the full names has arrived.
    async function occupied() {
        const pub = name('pub-', LIMIT);
        const pres = name('presence-', LIMIT);
        assert.equal(pub.length, LIMIT);
        assert.equal(pres.length, LIMIT);
        const user = { id: 'member-1', info: { name: 'one' } };
        const c = pusherClient(user);
        const socketId = await connected(c);
        const chPub = await subscribed(c, pub);
        const chPres = await subscribed(c, pres);
        assert.equal(chPres.members.count, 1);
        const r = await rawElsewhere(socketId);
        assert.equal((await r.subscribe(pub)).msg.event, 'pusher_internal:subscription_succeeded');
        await hooks.waitFor({ name: 'channel_occupied', channel: pub }, 'channel_occupied for the full public name');
        await hooks.waitFor({ name: 'channel_occupied', channel: pres }, 'channel_occupied for the full presence name');
        await hooks.waitFor({ name: 'member_added', channel: pres, user_id: user.id }, 'member_added');
        return { pub, pres, user, c, chPub, chPres, r };
    }

    test('REST publish of a 1000-byte event to 1000-byte public and presence channels delivers it under the exact names', async () => {
        const { pub, pres, chPub, chPres, r } = await occupied();
        const ev = name('ev-', LIMIT, 'event-name-');
        assert.equal(ev.length, LIMIT);
        const got = Promise.all([nextEvent(chPub, ev), nextEvent(chPres, ev)]);
        const res = await call(() => sdk.post({
            path: '/events',
            body: { name: ev, channels: [pub, pres], data: JSON.stringify({ n: 1 }) },
        }));
        assert.equal(res.status, 200, res.text);
        const [onPub, onPres] = await got;
        assert.deepEqual(onPub.data, { n: 1 });
        assert.deepEqual(onPres.data, { n: 1 });
        const frame = await r.take((m) => m.event === ev, 'the published event on the raw connection');
        assert.equal(frame.msg.channel, pub);
        assert.equal(frame.msg.event, ev);
        assert.equal(frame.msg.data, JSON.stringify({ n: 1 }));
    });

    test('GET /channels, /channels/{name} and /users name 1000-byte channels whole', async () => {
        const { pub, pres, user } = await occupied();
        const listed = await channelsList();
        assert.ok(listed.includes(pub), 'GET /channels lists the full public name');
        assert.ok(listed.includes(pres), 'GET /channels lists the full presence name');
        const prefix = pub.slice(0, 600);
        const filtered = await call(() => sdk.get({ path: '/channels', params: { filter_by_prefix: prefix } }));
        assert.equal(filtered.status, 200, filtered.text);
        assert.deepEqual(Object.keys(filtered.body.channels), [pub], 'a 600-byte filter_by_prefix');
        // the path carries the name percent-encoded: far longer than 1000 bytes
        assert.ok(enc(pub).length > 1500);
        const one = await call(() => sdk.get({ path: `/channels/${enc(pub)}`, params: { info: 'subscription_count' } }));
        assert.equal(one.status, 200, one.text);
        assert.deepEqual(one.body, { occupied: true, subscription_count: 2 });
        const p = await call(() => sdk.get({ path: `/channels/${enc(pres)}`, params: { info: 'user_count' } }));
        assert.equal(p.status, 200, p.text);
        assert.deepEqual(p.body, { occupied: true, user_count: 1 });
        const users = await call(() => sdk.get({ path: `/channels/${enc(pres)}/users` }));
        assert.equal(users.status, 200, users.text);
        assert.deepEqual(users.body, { users: [{ id: user.id }] });
    });

    test('when the last subscriber leaves a 1000-byte channel its entry goes and channel_vacated fires for the full name', async () => {
        const { pub, pres, user, c, r } = await occupied();
        c.unsubscribe(pub);
        c.unsubscribe(pres);
        r.send({ event: 'pusher:unsubscribe', data: { channel: pub } });
        await until(async () => {
            const now = await channelsList();
            return !now.includes(pub) && !now.includes(pres);
        }, 'both channels gone from GET /channels');
        await hooks.waitFor({ name: 'member_removed', channel: pres, user_id: user.id }, 'member_removed');
        await hooks.waitFor({ name: 'channel_vacated', channel: pub }, 'channel_vacated for the full public name');
        await hooks.waitFor({ name: 'channel_vacated', channel: pres }, 'channel_vacated for the full presence name');
        assert.equal(hooks.count({ name: 'channel_vacated', channel: pub }), 1);
        const gone = await call(() => sdk.get({ path: `/channels/${enc(pub)}`, params: { info: 'subscription_count' } }));
        assert.equal(gone.status, 200, gone.text);
        assert.deepEqual(gone.body, { occupied: false, subscription_count: 0 });
    });

    test('client events with 1000-byte names on a 1000-byte private channel', async () => {
        const priv = name('private-', LIMIT);
        const cev = name('client-', LIMIT, 'typing-');
        assert.equal(cev.length, LIMIT);

        const a = pusherClient({ id: 'a', info: {} });
        const aId = await connected(a);
        const chA = await subscribed(a, priv);
        const b = pusherClient({ id: 'b', info: {} });
        await connected(b);
        const chB = await subscribed(b, priv);
        const r = await rawElsewhere(aId);
        assert.equal((await r.subscribe(priv, { auth: channelAuth(r.socketId, priv) })).msg.event,
            'pusher_internal:subscription_succeeded');

        const got = nextEvent(chB, cev);
        assert.ok(chA.trigger(cev, { t: 1 }), 'pusher-js sent the client event');
        assert.deepEqual((await got).data, { t: 1 });
        const frame = await r.take((m) => m.event === cev, 'the client event on the raw connection');
        assert.equal(frame.msg.channel, priv);
        assert.deepEqual(frame.msg.data, { t: 1 });
        const hook = await hooks.waitFor({ name: 'client_event', channel: priv, event: cev }, 'client_event webhook');
        assert.equal(hook.socket_id, aId);

        // the raw connection sends one too, back to the pusher-js clients
        const back = nextEvent(chA, cev);
        r.send({ event: cev, channel: priv, data: { t: 2 } });
        assert.deepEqual((await back).data, { t: 2 });

        // 1001 bytes is refused with pusher:error, the connection stays
        r.send({ event: `${cev}x`, channel: priv, data: {} });
        const err = await r.take((m) => m.event === 'pusher:error', 'pusher:error for a 1001-byte event name');
        assert.match(err.msg.data.message, /event name too long/);
        assert.equal(r.r.closeInfo, null);
    });

    test('a 1000-byte cache channel keeps its last 1000-byte event whole: replay and GET ?info=cache', async () => {
        const ch = name('cache-', LIMIT);
        const ev = name('cached-', LIMIT, 'ev-');
        const res = await call(() => sdk.post({ path: '/events', body: { name: ev, channel: ch, data: '{"c":1}' } }));
        assert.equal(res.status, 200, res.text);
        const q = await call(() => sdk.get({ path: `/channels/${enc(ch)}`, params: { info: 'cache' } }));
        assert.equal(q.status, 200, q.text);
        assert.equal(q.body.occupied, false);
        assert.deepEqual(q.body.cache, { event: ev, data: '{"c":1}', channel: ch });
        const r = rawRecorder(server);
        closers.push(() => r.close());
        await r.ready();
        assert.equal((await r.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        const replay = await r.take((m) => m.event === ev, 'the cached event replayed on subscribe');
        assert.equal(replay.msg.channel, ch);
        assert.equal(replay.msg.data, '{"c":1}');
    });

    test('exactly 1000 bytes is accepted, 1001 refused: subscribe, REST publish, channel query', async () => {
        const at = name('edge-', LIMIT);
        const over = `${at}x`;
        const r = rawRecorder(server);
        closers.push(() => r.close());
        await r.ready();

        assert.equal((await r.subscribe(at)).msg.event, 'pusher_internal:subscription_succeeded');
        const refused = await r.subscribe(over);
        assert.equal(refused.msg.event, 'pusher:subscription_error');
        assert.equal(refused.msg.channel, over, 'the refusal names the channel whole');
        assert.equal(refused.msg.data.type, 'InvalidChannel');
        assert.match(refused.msg.data.error, /too long/);
        // presence at the limit, signed for the whole name
        const pres = name('presence-', LIMIT);
        const cd = JSON.stringify({ user_id: 'edge-user' });
        const okPres = await r.subscribe(pres, { auth: channelAuth(r.socketId, pres, cd), channel_data: cd });
        assert.equal(okPres.msg.event, 'pusher_internal:subscription_succeeded', okPres.text);
        assert.equal(okPres.msg.channel, pres);
        // a bad signature's hint quotes the string to sign with the whole name
        const priv = name('private-', LIMIT);
        const bad = await r.subscribe(priv, { auth: `${APP.key}:${'0'.repeat(64)}` });
        assert.equal(bad.msg.event, 'pusher:subscription_error');
        assert.ok(bad.msg.data.error.includes(`"${r.socketId}:${priv}"`), bad.msg.data.error);

        const ev = name('e-', LIMIT, 'x');
        const post = (body) => call(() => sdk.post({ path: '/events', body: { data: '{}', ...body } }));
        assert.equal((await post({ name: ev, channel: at })).status, 200);
        const frame = await r.take((m) => m.event === ev, 'the event at the limit');
        assert.equal(frame.msg.channel, at);
        assert.equal((await post({ name: `${ev}x`, channel: at })).status, 400, 'a 1001-byte event name');
        assert.equal((await post({ name: 'x', channel: over })).status, 400, 'a 1001-byte channel name');
        assert.equal((await post({ name: 'x', channels: [at, over] })).status, 400, 'a 1001-byte name in channels');
        const batch = await call(() => sdk.post({
            path: '/batch_events',
            body: { batch: [{ name: ev, channel: at, data: '{"b":1}' }] },
        }));
        assert.equal(batch.status, 200, batch.text);
        const bframe = await r.take((m) => m.event === ev && m.data === '{"b":1}', 'the batch event at the limit');
        assert.equal(bframe.msg.channel, at);

        const q = await call(() => sdk.get({ path: `/channels/${enc(at)}` }));
        assert.equal(q.status, 200, q.text);
        assert.deepEqual(q.body, { occupied: true });
        const qOver = await call(() => sdk.get({ path: `/channels/${enc(over)}` }));
        assert.equal(qOver.status, 400, qOver.text);
    });
});
