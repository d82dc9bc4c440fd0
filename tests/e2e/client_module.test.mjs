// clients/js/hark-resume.mjs with the real pusher-js and laravel-echo: ids
// remembered from the raw frames, `since` added to every pusher:subscribe
// (reconnects, private channels, #server-to-user-<id> after sign-in),
// hark:resumed reported through onResumed, persistence through a storage
// object. The first suite runs against the real hark binary; the network
// drop is a TCP proxy between pusher-js and hark that cuts every connection
// and holds new ones until restored, so what is published meanwhile is
// certainly missed. The second suite checks the module's own hooks into
// pusher-js against a scripted WebSocket endpoint (what pusher-js sends,
// what the module reads from frames), independently of the server.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { startHark, subscribed, freePort } from './lib/harness.mjs';
import { scope, uniq, rawReady, signedIn, until } from './lib/clients.mjs';
import { attachResume } from '../../clients/js/hark-resume.mjs';

const RECONNECT_MS = 10000; // pusher-js retries 1 s after a drop

// A TCP proxy to target {host, port}. cut() destroys every proxied
// connection (both sides, as a network drop) and holds new connections
// (their bytes stay buffered) until restore().
async function dropProxy(s, target) {
    const pairs = new Set();
    const held = [];
    let down = false;
    const pipe = (sock) => {
        const up = net.connect(target.port, target.host);
        up.on('error', () => {});
        const pair = { sock, up };
        pairs.add(pair);
        const end = () => { pairs.delete(pair); sock.destroy(); up.destroy(); };
        sock.on('close', end);
        up.on('close', end);
        sock.pipe(up);
        up.pipe(sock);
    };
    const srv = net.createServer((sock) => {
        sock.on('error', () => {});
        if (down) held.push(sock); else pipe(sock);
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const destroyAll = () => {
        for (const p of [...pairs]) { p.sock.destroy(); p.up.destroy(); }
    };
    s.add(() => {
        srv.close();
        destroyAll();
        for (const h of held.splice(0)) h.destroy();
    });
    return {
        port: srv.address().port,
        cut() { down = true; destroyAll(); },
        restore() {
            down = false;
            for (const h of held.splice(0)) if (!h.destroyed) pipe(h);
        },
    };
}

// A Map-backed object with the localStorage methods the module uses.
function mapStorage() {
    const m = new Map();
    return {
        map: m,
        getItem: (k) => (m.has(k) ? m.get(k) : null),
        setItem: (k, v) => { m.set(k, String(v)); },
        removeItem: (k) => { m.delete(k); },
        get length() { return m.size; },
        key: (i) => [...m.keys()][i] ?? null,
    };
}

// attachResume with every onResumed call recorded (with how many events
// the app had received when it came) and detached with the scope.
function attach(s, target, opts = {}, seen = () => 0) {
    const resumed = [];
    const r = attachResume(target, {
        ...opts,
        onResumed: (channel, info) => resumed.push({ channel, ...info, after: seen() }),
    });
    s.add(() => r.detach());
    return { r, resumed };
}

function assertIds(got, what) {
    for (const g of got) {
        assert.equal(typeof g.id, 'string',
            `${what} ${JSON.stringify(g.n)} was delivered without a top-level "id" (no history in this hark?)`);
    }
    assert.equal(new Set(got.map((g) => g.id)).size, got.length, `${what}: ids are unique`);
}

const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);

describe('hark-resume with hark', () => {
    let server;
    let s;
    before(async () => { server = await startHark(); });
    after(async () => { await server.stop(); });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('pusher-js: after a network drop the 50 events published meanwhile arrive once, in order; recovered:true count 50', async () => {
        const name = uniq('chat-');
        const pub = s.pinned(server);
        const proxy = await dropProxy(s, server);
        const c = s.pusher(server, { pusher: { wsPort: proxy.port } });
        const got = [];
        const { r, resumed } = attach(s, c, {}, () => got.length);
        const ch = await subscribed(c, name);
        ch.bind('msg', (data) => got.push({ n: data.n, id: r.currentId(), last: r.lastId(name) }));

        for (const n of range(0, 3)) await pub.trigger(name, 'msg', { n });
        await until(() => got.length === 3, '3 live events');
        assertIds(got, 'live event');
        for (const g of got) assert.equal(g.last, g.id, 'lastId() inside the callback is the id being delivered');
        assert.equal(r.lastId(name), got[2].id);

        proxy.cut();
        await until(() => c.connection.state !== 'connected', 'pusher-js to notice the drop');
        for (const n of range(3, 53)) await pub.trigger(name, 'msg', { n });
        proxy.restore();

        await until(() => resumed.length >= 1, 'hark:resumed after the reconnect', RECONNECT_MS);
        assert.deepEqual(resumed, [{ channel: name, recovered: true, count: 50, since: got[2].id, after: 53 }]);
        // a live event after the resume: nothing was delivered twice
        await pub.trigger(name, 'msg', { n: 53 });
        await until(() => got.length >= 54, 'the live event after the resume');
        assert.deepEqual(got.map((g) => g.n), range(0, 54));
        assertIds(got, 'event');
        assert.equal(r.lastId(name), got[53].id);
    });

    test('laravel-echo: a private channel resumes after a drop (recovered:true, every missed event once, in order)', async () => {
        const name = uniq('conversation-');
        const channel = `private-${name}`;
        const pub = s.pinned(server);
        const proxy = await dropProxy(s, server);
        const echo = s.echo(server, { pusher: { wsPort: proxy.port } });
        const got = [];
        const { r, resumed } = attach(s, echo, {}, () => got.length);
        let subs = 0;
        echo.private(name)
            .subscribed(() => { subs += 1; })
            .listen('.new-message', (e) => got.push({ n: e.n, id: r.currentId() }));
        await until(() => subs === 1, 'echo private subscription');

        for (const n of range(0, 2)) await pub.trigger(channel, 'new-message', { n });
        await until(() => got.length === 2, '2 live events');
        assertIds(got, 'live event');

        proxy.cut();
        await until(() => echo.connector.pusher.connection.state !== 'connected', 'pusher-js to notice the drop');
        for (const n of range(2, 12)) await pub.trigger(channel, 'new-message', { n });
        proxy.restore();

        await until(() => resumed.length >= 1, 'hark:resumed after the reconnect', RECONNECT_MS);
        assert.deepEqual(resumed, [{ channel, recovered: true, count: 10, since: got[1].id, after: 12 }]);
        assert.equal(subs, 2, 'subscribed again after the reconnect');
        await pub.trigger(channel, 'new-message', { n: 12 });
        await until(() => got.length >= 13, 'the live event after the resume');
        assert.deepEqual(got.map((g) => g.n), range(0, 13));
        assertIds(got, 'event');
    });

    test('#server-to-user-<id>: sendToUser events missed during a drop arrive after the new sign-in (recovered:true)', async () => {
        const id = uniq('u');
        const userChannel = `#server-to-user-${id}`;
        const pub = s.pinned(server);
        const proxy = await dropProxy(s, server);
        const c = s.pusher(server, { user: { id, info: {} }, pusher: { wsPort: proxy.port } });
        const got = [];
        const { r, resumed } = attach(s, c, {}, () => got.length);
        c.user.bind('note', (data) => got.push({ n: data.n, id: r.currentId() }));
        c.signin();
        await signedIn(c);

        for (const n of range(0, 2)) await pub.sendToUser(id, 'note', { n });
        await until(() => got.length === 2, '2 live user events');
        assertIds(got, 'live user event');
        assert.equal(r.lastId(userChannel), got[1].id);

        proxy.cut();
        await until(() => c.connection.state !== 'connected', 'pusher-js to notice the drop');
        for (const n of range(2, 10)) await pub.sendToUser(id, 'note', { n });
        proxy.restore();

        await until(() => resumed.length >= 1, 'hark:resumed on the user channel', RECONNECT_MS);
        assert.deepEqual(resumed, [{ channel: userChannel, recovered: true, count: 8, since: got[1].id, after: 10 }]);
        await signedIn(c);
        await pub.sendToUser(id, 'note', { n: 10 });
        await until(() => got.length >= 11, 'the live user event after the resume');
        assert.deepEqual(got.map((g) => g.n), range(0, 11));
        assertIds(got, 'user event');
    });

    test('storage: a new Pusher instance with the same storage resumes from the stored id', async () => {
        const name = uniq('feed-');
        const pub = s.pinned(server);
        const storage = mapStorage();
        const key = `hark-resume:app-key:${name}`;

        const c1 = s.pusher(server);
        const got1 = [];
        const a1 = attach(s, c1, { storage }, () => got1.length);
        const ch1 = await subscribed(c1, name);
        ch1.bind('msg', (data) => got1.push({ n: data.n, id: a1.r.currentId() }));
        for (const n of range(0, 3)) await pub.trigger(name, 'msg', { n });
        await until(() => got1.length === 3, '3 live events');
        assertIds(got1, 'live event');
        assert.equal(storage.getItem(key), got1[2].id, 'the last id is stored');
        a1.r.detach();
        c1.disconnect(); // the page goes away

        for (const n of range(3, 8)) await pub.trigger(name, 'msg', { n });

        const c2 = s.pusher(server); // the reloaded page
        const got2 = [];
        const a2 = attach(s, c2, { storage }, () => got2.length);
        assert.equal(a2.r.lastId(name), got1[2].id, 'read from storage');
        c2.subscribe(name).bind('msg', (data) => got2.push({ n: data.n, id: a2.r.currentId() }));
        await until(() => a2.resumed.length >= 1, 'hark:resumed for the new instance');
        assert.deepEqual(a2.resumed, [{ channel: name, recovered: true, count: 5, since: got1[2].id, after: 5 }]);
        assert.deepEqual(got2.map((g) => g.n), range(3, 8));
        assertIds([...got1, ...got2], 'event');
        assert.equal(storage.getItem(key), got2[4].id, 'the stored id follows');
    });

    test('recovered:false (a cache- channel is not persisted): onResumed gets the reason, live events follow', async () => {
        const pub = s.pinned(server);
        // a genuine id, from a persisted channel
        const plain = uniq('plain-');
        const rc = await rawReady(s, server);
        await rc.subscribe(plain);
        await pub.trigger(plain, 'msg', {});
        const e = await rc.take({ event: 'msg', channel: plain });
        assert.equal(typeof e.msg.id, 'string', `the event was delivered without a top-level "id": ${e.text}`);

        const cache = uniq('cache-');
        const storage = mapStorage();
        storage.setItem(`hark-resume:app-key:${cache}`, e.msg.id);
        const c = s.pusher(server);
        const got = [];
        const { r, resumed } = attach(s, c, { storage }, () => got.length);
        const ch = c.subscribe(cache);
        ch.bind('msg', (data) => got.push({ n: data.n, id: r.currentId() }));
        await until(() => resumed.length >= 1, 'hark:resumed on the cache channel');
        assert.equal(resumed.length, 1);
        const [res] = resumed;
        assert.equal(res.channel, cache);
        assert.equal(res.recovered, false);
        assert.equal(res.count, 0);
        assert.equal(typeof res.reason, 'string');
        assert.ok(res.reason.length > 0, 'a reason is given');
        assert.equal(res.since, e.msg.id);
        await pub.trigger(cache, 'msg', { n: 1 });
        await until(() => got.length === 1, 'a live event on the cache channel');
        assert.deepEqual(got, [{ n: 1, id: undefined }], 'events of a channel that is not persisted carry no id');
        assert.equal(r.lastId(cache), e.msg.id, 'the id is kept for the app (e.g. REST history ?after=)');
    });
});

// ---------------------------------------------------------------------------
// The module's hooks into pusher-js, against a scripted WebSocket endpoint
// that speaks just enough of the protocol: it answers the handshake,
// pusher:subscribe, pusher:signin and pusher:ping, records every frame
// pusher-js sends, and sends the frames a test gives it.

async function scriptedEndpoint(s) {
    const port = await freePort();
    const wss = new WebSocketServer({ host: '127.0.0.1', port });
    await new Promise((resolve) => wss.on('listening', resolve));
    const conns = [];
    const received = []; // {conn, msg}
    wss.on('connection', (ws) => {
        const conn = conns.length;
        conns.push(ws);
        const send = (obj) => ws.send(JSON.stringify(obj));
        send({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: `1.${conn + 1}`, activity_timeout: 120 }) });
        ws.on('message', (d) => {
            const msg = JSON.parse(d.toString());
            received.push({ conn, msg });
            if (msg.event === 'pusher:subscribe') {
                send({ event: 'pusher_internal:subscription_succeeded', channel: msg.data.channel, data: '{}' });
            } else if (msg.event === 'pusher:signin') {
                send({ event: 'pusher:signin_success', data: { user_data: msg.data.user_data } });
            } else if (msg.event === 'pusher:ping') {
                send({ event: 'pusher:pong', data: {} });
            }
        });
        ws.on('error', () => {});
    });
    s.add(() => {
        for (const ws of conns) ws.terminate();
        wss.close();
    });
    const ep = {
        host: '127.0.0.1',
        port,
        received,
        get connections() { return conns.length; },
        // sends to the newest connection
        send(obj) { conns[conns.length - 1].send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
        // drops the newest connection without a close frame
        drop() { conns[conns.length - 1].terminate(); },
        // the pusher:subscribe frames for channel, in order
        subscribes(channel) {
            return received.filter((x) => x.msg.event === 'pusher:subscribe' && x.msg.data.channel === channel);
        },
        async subscribeOn(conn, channel, what = `pusher:subscribe ${channel} on connection ${conn}`) {
            return until(() => received.find((x) => x.conn === conn && x.msg.event === 'pusher:subscribe'
                && x.msg.data.channel === channel), what, RECONNECT_MS);
        },
    };
    return ep;
}

const frame = (event, channel, data, id) => ({ event, channel, data: JSON.stringify(data), ...(id === undefined ? {} : { id }) });

describe('hark-resume hooks into pusher-js (scripted endpoint)', () => {
    let s;
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('ids are read from raw frames before pusher-js dispatches them; the reconnect subscribe carries since', async () => {
        const ep = await scriptedEndpoint(s);
        const c = s.pusher(ep);
        const got = [];
        const { r, resumed } = attach(s, c, {}, () => got.length);
        const ch = c.subscribe('chat');
        ch.bind('msg', (data) => got.push({ n: data.n, current: r.currentId(), last: r.lastId('chat') }));
        const first = await ep.subscribeOn(0, 'chat');
        assert.equal(first.msg.data.since, undefined, 'no since before any id');
        await until(() => ch.subscribed, 'subscribed');

        ep.send(frame('msg', 'chat', { n: 1 }, 'a.1'));
        ep.send(frame('msg', 'chat', { n: 2 })); // not stored: no id
        ep.send(frame('msg', 'chat', { n: 3 }, 'a.3'));
        ep.send(frame('msg', 'chat', { n: 4 }, 'bad id')); // not an id: ignored
        ep.send(frame('msg', 'chat', { n: 5 }, 'x'.repeat(65))); // too long: ignored
        ep.send(frame('msg', 'other', { n: 6 }, 'o.1')); // another channel
        await until(() => got.length === 5, '5 events');
        assert.deepEqual(got, [
            { n: 1, current: 'a.1', last: 'a.1' },
            { n: 2, current: undefined, last: 'a.1' },
            { n: 3, current: 'a.3', last: 'a.3' },
            { n: 4, current: undefined, last: 'a.3' },
            { n: 5, current: undefined, last: 'a.3' },
        ]);
        assert.equal(r.currentId(), undefined, 'no current id outside a dispatch');
        assert.equal(r.lastId('other'), 'o.1');

        ep.drop();
        const again = await ep.subscribeOn(1, 'chat');
        assert.equal(again.msg.data.since, 'a.3');
        assert.equal(again.msg.data.auth, first.msg.data.auth);
        ep.send(frame('msg', 'chat', { n: 7 }, 'a.7'));
        ep.send({ event: 'hark:resumed', channel: 'chat', data: JSON.stringify({ recovered: true, count: 1 }) });
        await until(() => resumed.length === 1, 'onResumed');
        assert.deepEqual(resumed, [{ channel: 'chat', recovered: true, count: 1, since: 'a.3', after: 6 }]);
        assert.equal(r.lastId('chat'), 'a.7');

        // the next drop resumes from the newest id
        ep.drop();
        const third = await ep.subscribeOn(2, 'chat');
        assert.equal(third.msg.data.since, 'a.7');
        ep.send({ event: 'hark:resumed', channel: 'chat', data: JSON.stringify({ recovered: false, count: 0, reason: 'too_old' }) });
        await until(() => resumed.length === 2, 'second onResumed');
        assert.deepEqual(resumed[1], { channel: 'chat', recovered: false, count: 0, reason: 'too_old', since: 'a.7', after: 6 });
    });

    test('laravel-echo private channel and #server-to-user after sign-in get since on the reconnect', async () => {
        const ep = await scriptedEndpoint(s);
        const echo = s.echo(ep, { user: { id: 'u7', info: {} } });
        const { r, resumed } = attach(s, echo);
        const pusher = echo.connector.pusher;
        const got = [];
        echo.private('room').listen('.said', (e) => got.push({ ...e, id: r.currentId() }));
        pusher.user.bind('note', (d) => got.push({ ...d, id: r.currentId() }));
        pusher.signin();
        await ep.subscribeOn(0, 'private-room');
        await ep.subscribeOn(0, '#server-to-user-u7');
        await until(() => pusher.channel('private-room').subscribed && pusher.user.serverToUserChannel
            && pusher.user.serverToUserChannel.subscribed, 'both subscriptions');
        ep.send(frame('said', 'private-room', { t: 'hi' }, 'r1'));
        ep.send(frame('note', '#server-to-user-u7', { t: 'n' }, 'u1'));
        await until(() => got.length === 2, '2 events');
        assert.deepEqual(got, [{ t: 'hi', id: 'r1' }, { t: 'n', id: 'u1' }]);

        ep.drop();
        const room = await ep.subscribeOn(1, 'private-room');
        const user = await ep.subscribeOn(1, '#server-to-user-u7');
        assert.equal(room.msg.data.since, 'r1');
        assert.match(room.msg.data.auth, /^app-key:[0-9a-f]{64}$/, 'the channel authorization is kept');
        assert.equal(user.msg.data.since, 'u1');
        const signins = ep.received.filter((x) => x.msg.event === 'pusher:signin').map((x) => x.conn);
        assert.deepEqual(signins, [0, 1]);
        ep.send({ event: 'hark:resumed', channel: '#server-to-user-u7', data: JSON.stringify({ recovered: true, count: 0 }) });
        await until(() => resumed.length === 1, 'onResumed');
        assert.deepEqual(resumed, [{ channel: '#server-to-user-u7', recovered: true, count: 0, since: 'u1', after: 0 }]);
    });

    test('storage, filter, forget() and detach()', async () => {
        const ep = await scriptedEndpoint(s);
        const storage = mapStorage();
        storage.setItem('p:a', 'stored-a');
        storage.setItem('p:b', 'stored-b');
        storage.setItem('p:c', 'not valid'); // ignored
        storage.setItem('other:d', 'kept');
        const c = s.pusher(ep);
        const { r } = attach(s, c, { storage, keyPrefix: 'p:', filter: (ch) => ch !== 'b' });
        assert.equal(r.lastId('a'), 'stored-a');
        assert.equal(r.lastId('c'), undefined);
        for (const ch of ['a', 'b', 'c']) c.subscribe(ch);
        const a = await ep.subscribeOn(0, 'a');
        const b = await ep.subscribeOn(0, 'b');
        const cc = await ep.subscribeOn(0, 'c');
        assert.equal(a.msg.data.since, 'stored-a');
        assert.equal(b.msg.data.since, undefined, 'filtered out');
        assert.equal(cc.msg.data.since, undefined);
        await until(() => c.channel('c').subscribed, 'subscribed to c');
        ep.send(frame('m', 'c', {}, 'c.1'));
        await until(() => storage.getItem('p:c') === 'c.1', 'the id of c stored');

        r.forget('a');
        assert.equal(storage.getItem('p:a'), null);
        assert.equal(r.lastId('a'), undefined);
        c.unsubscribe('a');
        c.subscribe('a');
        await until(() => ep.subscribes('a').length === 2, 'the second subscribe to a');
        assert.equal(ep.subscribes('a')[1].msg.data.since, undefined, 'forgotten');

        r.setLastId('a', 'set.1');
        assert.equal(storage.getItem('p:a'), 'set.1');
        assert.throws(() => r.setLastId('a', 'not an id'), TypeError);
        await until(() => c.channel('a').subscribed, 'subscribed to a again');
        c.unsubscribe('a');
        c.subscribe('a');
        await until(() => ep.subscribes('a').length === 3, 'the third subscribe to a');
        assert.equal(ep.subscribes('a')[2].msg.data.since, 'set.1', 'setLastId');

        r.forget();
        assert.deepEqual([...storage.map.keys()], ['other:d'], 'forget() clears every id under the prefix only');

        // detach: the pusher-js objects are as they were
        ep.send(frame('m', 'c', {}, 'c.2'));
        await until(() => r.lastId('c') === 'c.2', 'c.2 recorded');
        const manager = c.connection;
        const transport = manager.connection.transport;
        assert.ok(Object.hasOwn(manager, 'send_event') && Object.hasOwn(transport, 'emit'), 'patched while attached');
        r.detach();
        assert.ok(!Object.hasOwn(manager, 'send_event'), 'send_event restored');
        assert.ok(!Object.hasOwn(transport, 'emit'), 'transport emit restored');
        c.unsubscribe('c');
        c.subscribe('c');
        await until(() => ep.subscribes('c').length === 2, 'the subscribe to c after detach()');
        assert.equal(ep.subscribes('c')[1].msg.data.since, undefined, 'no since after detach()');
        const again = attachResume(c);
        assert.throws(() => attachResume(c), /already attached/);
        again.detach();
    });
});
