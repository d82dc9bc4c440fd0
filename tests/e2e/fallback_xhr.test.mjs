// pusher-js's HTTP fallbacks against hark (spec §10; docs/api.md): the real
// pusher-js Node build with enabledTransports forced to ['xhr_streaming'],
// then the same scenarios with ['xhr_polling'], talking to hark at
// httpHost/httpPort with httpPath left at '/pusher'. Each test checks that
// the connection really uses the transport it is about. Covers public,
// private, presence (member_removed after disconnect() and after the client
// vanishes, within fallback_session_timeout_ms), client events, sign-in and
// sendToUser, cache and encrypted channels, non-ASCII data, history ids equal
// to a WebSocket subscriber's, laravel-echo, and sessions on every worker.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed, nextEvent } from './lib/harness.mjs';
import {
    scope, rawReady, uniq, record, atLeast, signedIn, pusherPing, newMasterKey, restWithKey, until,
    withTimeout,
} from './lib/clients.mjs';
import { ID_RE } from './lib/history.mjs';
import { tcpProxy } from './lib/rawtcp.mjs';
import {
    TRANSPORTS, WORKERS, xhrClient, xhrOptions, encryptedXhrClient, transportOf, rawMessages,
} from './lib/fallback.mjs';

const SESSION_TIMEOUT = 2000; // fallback_session_timeout_ms: a gone client is gone after this
const WAIT = 15000; // generous: connecting over HTTP, and under sanitizers
const range = (n) => Array.from({ length: n }, (_, i) => i);

// Text that JSON, the a["…"] framing and the ASCII-only escaping all have
// to carry: multi-byte and astral characters, U+2028/9, a newline (frames
// end at \n), quotes, backslashes, a ZWJ sequence.
const UNICODE = 'héllo wörld — 日本語 ✓ 😀🎉 \u2028\u2029 line\nbreak\r\t "quoted" \\back\\ </script> 👩‍👩‍👧 Ω≈ç√∫';

for (const T of TRANSPORTS) {
    describe(`fallback: pusher-js over ${T}`, () => {
        let server;
        let sdk;
        let s;
        before(async () => {
            server = await startHark({ config: { workers: WORKERS, fallback_session_timeout_ms: SESSION_TIMEOUT } });
            sdk = rest(server);
        });
        after(async () => {
            await server.stop();
        });
        beforeEach(() => { s = scope(); });
        afterEach(async () => { await s.close(); });

        const xhr = (opts) => xhrClient(s, server, T, opts);

        test(`${T}: connects over ${T} with a socket id; a public channel gets REST events in order`, async () => {
            const c = xhr();
            const socketId = await connected(c, WAIT);
            assert.match(socketId, /^\d+\.\d+$/);
            assert.equal(transportOf(c), T);
            const ch = uniq('fb-pub-');
            const channel = await subscribed(c, ch, WAIT);
            const got = record(channel, 'tick');
            const pub = s.pinned(server);
            for (const i of range(20)) await pub.trigger(ch, 'tick', { i, text: `tick ${i}` });
            await atLeast(got, 20, 'ticks', WAIT);
            assert.deepEqual(got.map((g) => g.data), range(20).map((i) => ({ i, text: `tick ${i}` })));
            // one session all along: same transport, same socket id
            assert.equal(transportOf(c), T);
            assert.equal(c.connection.socket_id, socketId);
            assert.equal(c.connection.state, 'connected');
        });

        test(`${T}: private channel authorized by the pusher SDK receives events; a bad signature is refused`, async () => {
            const c = xhr();
            const ch = uniq('private-fb-');
            const channel = await subscribed(c, ch, WAIT);
            assert.equal(transportOf(c), T);
            const got = nextEvent(channel, 'secret-news', WAIT);
            await sdk.trigger(ch, 'secret-news', { text: 'for members' });
            assert.deepEqual((await got).data, { text: 'for members' });

            const bad = xhr({ badAuth: true });
            await connected(bad, WAIT);
            assert.equal(transportOf(bad), T);
            await assert.rejects(subscribed(bad, uniq('private-fb-'), WAIT), /subscription_error/);
            // the session goes on
            const ok = await subscribed(bad, uniq('fb-pub-'), WAIT);
            assert.equal(ok.subscribed, true);
            assert.equal(bad.connection.state, 'connected');
        });

        test(`${T}: presence members and member_added; member_removed after disconnect() and after a client vanishes`, async () => {
            const ch = uniq('presence-fb-');
            const a = xhr({ user: { id: 'alice', info: { name: 'Alice' } } });
            const chA = await subscribed(a, ch, WAIT);
            assert.equal(transportOf(a), T);
            const added = record(chA, 'pusher:member_added');
            const removed = record(chA, 'pusher:member_removed');
            const b = xhr({ user: { id: 'bob', info: { name: 'Bob' } } });
            const chB = await subscribed(b, ch, WAIT);
            assert.equal(transportOf(b), T);
            assert.equal(chB.members.count, 2);
            assert.deepEqual(chB.members.me, { id: 'bob', info: { name: 'Bob' } });
            const all = [];
            chB.members.each((m) => all.push(m));
            all.sort((x, y) => x.id.localeCompare(y.id));
            assert.deepEqual(all, [{ id: 'alice', info: { name: 'Alice' } }, { id: 'bob', info: { name: 'Bob' } }]);
            await atLeast(added, 1, 'member_added', WAIT);
            assert.deepEqual(added[0].data, { id: 'bob', info: { name: 'Bob' } });

            // carol reaches hark through a proxy that will drop off the network
            const proxy = await tcpProxy(server);
            s.add(() => proxy.close());
            const c = xhr({ via: proxy, user: { id: 'carol', info: { name: 'Carol' } } });
            await subscribed(c, ch, WAIT);
            assert.equal(transportOf(c), T);
            await until(() => chA.members.count === 3, 'three members at alice', WAIT);
            assert.deepEqual(added.map((x) => x.data.id), ['bob', 'carol']);

            // pusher-js's disconnect() over HTTP just drops its requests
            b.disconnect();
            await until(() => removed.length >= 1, 'member_removed after disconnect()', SESSION_TIMEOUT + WAIT);
            assert.deepEqual(removed[0].data, { id: 'bob', info: { name: 'Bob' } });

            // carol's connections die and she never comes back
            await proxy.close();
            await until(() => removed.length >= 2, 'member_removed after carol vanished', SESSION_TIMEOUT + WAIT);
            assert.deepEqual(removed[1].data, { id: 'carol', info: { name: 'Carol' } });
            assert.equal(chA.members.count, 1);
            const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
            assert.deepEqual(users.users.map((u) => u.id), ['alice']);
            assert.equal(a.connection.state, 'connected');
            assert.equal(transportOf(a), T);
        });

        test(`${T}: client events between two clients (private and presence with user_id), never echoed`, async () => {
            const ch = uniq('private-fb-ce-');
            const a = xhr();
            const b = xhr();
            const chA = await subscribed(a, ch, WAIT);
            const chB = await subscribed(b, ch, WAIT);
            assert.equal(transportOf(a), T);
            assert.equal(transportOf(b), T);
            const echoA = record(chA, 'client-ping');
            const echoB = record(chB, 'client-pong');
            const gotB = nextEvent(chB, 'client-ping', WAIT);
            assert.equal(chA.trigger('client-ping', { from: 'a', n: 1 }), true);
            assert.deepEqual((await gotB).data, { from: 'a', n: 1 });
            const gotA = nextEvent(chA, 'client-pong', WAIT);
            assert.equal(chB.trigger('client-pong', { from: 'b', n: 2 }), true);
            assert.deepEqual((await gotA).data, { from: 'b', n: 2 });
            // an echo is written to the sender while its event is handled,
            // which is before the other side got it; a pong asked for after
            // that comes after it
            await pusherPing(a, WAIT);
            await pusherPing(b, WAIT);
            assert.equal(echoA.length, 0, 'client-ping echoed to its sender');
            assert.equal(echoB.length, 0, 'client-pong echoed to its sender');

            const pch = uniq('presence-fb-ce-');
            const p = xhr({ user: { id: 'u-p', info: {} } });
            const q = xhr({ user: { id: 'u-q', info: {} } });
            const chP = await subscribed(p, pch, WAIT);
            const chQ = await subscribed(q, pch, WAIT);
            const wave = nextEvent(chQ, 'client-wave', WAIT);
            chP.trigger('client-wave', { hand: 'left' });
            const { data, meta } = await wave;
            assert.deepEqual(data, { hand: 'left' });
            assert.equal(meta.user_id, 'u-p');
        });

        test(`${T}: signin() with a handler signed by authenticateUser, then sendToUser reaches the user`, async () => {
            const id = uniq('u');
            const c = xhr({ user: { id, info: { name: 'N' } } });
            await connected(c, WAIT);
            assert.equal(transportOf(c), T);
            c.signin();
            await signedIn(c, WAIT);
            assert.deepEqual(c.user.user_data, { id, user_info: { name: 'N' } });
            assert.equal(c.user.serverToUserChannel.name, `#server-to-user-${id}`);
            const notices = record(c.user, 'notice');
            await sdk.sendToUser(id, 'notice', { text: 'just for you ✓' });
            await atLeast(notices, 1, 'the notice', WAIT);
            assert.deepEqual(notices[0].data, { text: 'just for you ✓' });
        });

        test(`${T}: cache channel: the last event on subscribe, pusher:cache_miss when empty`, async () => {
            const ch = uniq('cache-fb-');
            const pub = s.pinned(server);
            await pub.trigger(ch, 'state', { v: 1 });
            await pub.trigger(ch, 'state', { v: 2, text: 'dernière ✓' });
            const c = xhr();
            await connected(c, WAIT);
            assert.equal(transportOf(c), T);
            // c's worker has taken everything pub published before from its
            // inbox once a later event of pub's reached c
            const ctl = uniq('fb-ctl-');
            const ctlCh = await subscribed(c, ctl, WAIT);
            const caught = nextEvent(ctlCh, 'caught-up', WAIT);
            await pub.trigger(ctl, 'caught-up', {});
            await caught;
            const channel = c.subscribe(ch);
            const got = record(channel, 'state');
            const misses = record(channel, 'pusher:cache_miss');
            await atLeast(got, 1, 'the cached event', WAIT);
            assert.deepEqual(got.map((g) => g.data), [{ v: 2, text: 'dernière ✓' }]);
            assert.equal(misses.length, 0);

            const empty = c.subscribe(uniq('cache-fb-'));
            await nextEvent(empty, 'pusher:cache_miss', WAIT);
            assert.equal(empty.subscribed, true);
        });

        test(`${T}: private-encrypted channel with a master key: ciphertext on the wire, plaintext in pusher-js`, async () => {
            const key = newMasterKey();
            const ch = uniq('private-encrypted-fb-');
            const c = encryptedXhrClient(s, server, T, key);
            await connected(c, WAIT);
            assert.equal(transportOf(c), T);
            const wire = rawMessages(c);
            const channel = await subscribed(c, ch, WAIT);
            const got = nextEvent(channel, 'secret', WAIT);
            const data = { text: 'chiffré 🔐', n: 42 };
            await restWithKey(server, APPS.main, key).trigger(ch, 'secret', data);
            assert.deepEqual((await got).data, data);
            const onWire = wire.find((m) => m.msg.event === 'secret');
            assert.ok(onWire, 'the event on the transport');
            assert.deepEqual(Object.keys(onWire.parsed).sort(), ['ciphertext', 'nonce']);
            assert.ok(!JSON.stringify(onWire.msg).includes('chiffr'), 'plaintext on the wire');
        });

        test(`${T}: non-ASCII data arrives intact (REST events, client events both ways with a WebSocket client)`, async () => {
            const c = xhr();
            const ch = uniq('private-fb-utf-');
            const channel = await subscribed(c, ch, WAIT);
            assert.equal(transportOf(c), T);
            const got = record(channel, 'utf');
            const payloads = [
                { text: UNICODE },
                { [UNICODE]: [UNICODE, 1, null, true], nested: { deep: 'ß'.repeat(300) + '😀'.repeat(300) } },
                { text: '\u0000\u001f\u007f\u0080\u00ff\u0100\uffff\ud800\udc00\udbff\udfff' },
            ];
            const pub = s.pinned(server);
            for (const p of payloads) await pub.trigger(ch, 'utf', p);
            await atLeast(got, payloads.length, 'utf events', WAIT);
            assert.deepEqual(got.map((g) => g.data), payloads);

            // client events with a plain WebSocket subscriber, both ways
            const w = await rawReady(s, server);
            assert.equal((await w.subscribeAuthed(ch)).msg.event, 'pusher_internal:subscription_succeeded');
            channel.trigger('client-utf', { text: UNICODE });
            const atW = await w.take({ event: 'client-utf', channel: ch }, WAIT);
            assert.deepEqual(atW.msg.data, { text: UNICODE });
            const back = nextEvent(channel, 'client-utf', WAIT);
            w.send({ event: 'client-utf', channel: ch, data: { text: UNICODE, from: 'ws' } });
            assert.deepEqual((await back).data, { text: UNICODE, from: 'ws' });
        });

        test(`${T}: every event on a kept channel carries the id REST answered, the same a WebSocket subscriber gets`, async () => {
            const c = xhr({ user: { id: 'ids', info: {} } });
            await connected(c, WAIT);
            assert.equal(transportOf(c), T);
            const wire = rawMessages(c);
            const chans = [uniq('fb-ids-'), uniq('private-fb-ids-'), uniq('presence-fb-ids-')];
            for (const ch of chans) await subscribed(c, ch, WAIT);
            const w = await rawReady(s, server);
            assert.equal((await w.subscribe(chans[0], { auth: '' })).msg.event, 'pusher_internal:subscription_succeeded');
            assert.equal((await w.subscribeAuthed(chans[1])).msg.event, 'pusher_internal:subscription_succeeded');
            assert.equal((await w.subscribeAuthed(chans[2], { user_id: 'ws' })).msg.event, 'pusher_internal:subscription_succeeded');
            const pub = s.pinned(server);
            const answered = [];
            for (const i of range(6)) {
                const ch = chans[i % 3];
                const res = await pub.trigger(ch, 'tick', { i, text: 'é' });
                const body = await res.json();
                assert.ok(body.ids && ID_RE.test(body.ids[ch]), `POST /events answered ${JSON.stringify(body)}`);
                answered.push({ ch, id: body.ids[ch] });
            }
            const ticks = () => wire.filter((m) => m.msg.event === 'tick');
            await until(() => ticks().length === 6 && w.all('tick').length === 6, 'six ticks at both', WAIT);
            assert.deepEqual(ticks().map((m) => ({ ch: m.msg.channel, id: m.msg.id })), answered);
            // the whole message, id included, is what the WebSocket client got
            assert.deepEqual(ticks().map((m) => m.msg), w.all('tick').map((e) => e.msg));
            assert.equal(new Set(answered.map((a) => a.id)).size, 6);
        });

        test(`${T}: laravel-echo (pusher broadcaster) receives a broadcast`, async () => {
            const name = uniq('orders-fb-');
            const echo = s.echo(server, { pusher: xhrOptions(server, T) });
            let subscribedCb;
            const sub = new Promise((r) => { subscribedCb = r; });
            let gotCb;
            const got = new Promise((r) => { gotCb = r; });
            const pgot = new Promise((r) => { echo.private(`${name}`).listen('.shipped', r); });
            echo.channel(name).subscribed(subscribedCb).listen('OrderShipped', gotCb);
            await withTimeout(sub, 'echo subscribed', WAIT);
            assert.equal(transportOf(echo.connector.pusher), T);
            await sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 7, note: 'expédié 📦' } });
            assert.deepEqual(await withTimeout(got, 'OrderShipped', WAIT), { order: { id: 7, note: 'expédié 📦' } });
            await until(() => echo.connector.pusher.channel(`private-${name}`)?.subscribed, 'private subscribed', WAIT);
            await sdk.trigger(`private-${name}`, 'shipped', { ok: true });
            assert.deepEqual(await withTimeout(pgot, '.shipped', WAIT), { ok: true });
        });

        test(`${T}: sessions owned by every worker exchange client events and get REST events`, async () => {
            const ch = uniq('presence-fb-w-');
            const clients = [];
            const byWorker = new Map();
            for (let i = 0; i < 24 && (byWorker.size < WORKERS || clients.length < 3); i++) {
                const c = xhr({ user: { id: `w${i}`, info: {} } });
                const id = await connected(c, WAIT);
                assert.equal(transportOf(c), T);
                clients.push(c);
                if (!byWorker.has(id.split('.')[0])) byWorker.set(id.split('.')[0], c);
            }
            assert.equal(byWorker.size, WORKERS, `sessions on ${[...byWorker.keys()]}`);
            const chans = [];
            for (const c of clients) chans.push(await subscribed(c, ch, WAIT));
            const news = chans.map((x) => record(x, 'news'));
            await sdk.trigger(ch, 'news', { n: 1 });
            for (const got of news) await atLeast(got, 1, 'news', WAIT);
            // each worker's first session to every other client
            for (const from of byWorker.values()) {
                const i = clients.indexOf(from);
                const waits = chans.map((x, j) => (j === i ? null : nextEvent(x, 'client-hi', WAIT)));
                chans[i].trigger('client-hi', { from: i });
                for (const [j, wv] of waits.entries()) {
                    if (!wv) continue;
                    const { data, meta } = await wv;
                    assert.deepEqual(data, { from: i }, `client ${j}`);
                    assert.equal(meta.user_id, `w${i}`);
                }
            }
        });
    });
}
