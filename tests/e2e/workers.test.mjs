// Two workers, connections placed on each on purpose: a socket id starts with
// the number of the worker that owns the connection, so the test opens
// connections until it holds one on worker 1 and one on worker 2, then checks
// everything that crosses between them (docs/design.md, "Workers").
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, QUIET_MS, sleep, until } from './lib/clients.mjs';

describe('workers: behaviour across two event loops', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { workers: 2 } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // One ready raw client on each worker ([on worker 1, on worker 2]).
    async function pairAcrossWorkers(opts) {
        const found = {};
        for (let i = 0; i < 64 && !(found['1'] && found['2']); i++) {
            const c = await rawReady(s, server, opts);
            const w = c.socketId.split('.')[0];
            if (!found[w]) found[w] = c;
            else c.close();
        }
        assert.ok(found['1'] && found['2'], 'the kernel spread 64 connections over both workers');
        return [found['1'], found['2']];
    }

    test('workers: socket ids name their worker, 1 or 2', async () => {
        const [a, b] = await pairAcrossWorkers();
        assert.match(a.socketId, /^1\.\d+$/);
        assert.match(b.socketId, /^2\.\d+$/);
    });

    test('workers: a REST publish reaches subscribers on both workers, except the socket_id on the other worker', async () => {
        const ch = uniq('w-pub-');
        const [a, b] = await pairAcrossWorkers();
        await a.subscribe(ch);
        await b.subscribe(ch);
        await sdk.trigger(ch, 'one', { n: 1 });
        await a.take({ event: 'one', channel: ch });
        await b.take({ event: 'one', channel: ch });
        // exclude each in turn: whichever worker answers the REST call, the
        // excluded connection is on the other one at least once
        for (const [excluded, other, name] of [[a, b, 'not-a'], [b, a, 'not-b']]) {
            await sdk.trigger(ch, name, { n: 2 }, { socket_id: excluded.socketId });
            await other.take({ event: name, channel: ch });
            await excluded.ping();
            await sleep(QUIET_MS);
            assert.equal(excluded.count({ event: name, channel: ch }), 0);
        }
    });

    test('workers: presence counts users across workers; two tabs of one user on different workers are one member', async () => {
        const ch = uniq('presence-w-');
        const [a, b] = await pairAcrossWorkers();
        const [c] = await pairAcrossWorkers();
        const ea = await a.subscribeAuthed(ch, { user_id: 'u1', user_info: { tab: 1 } });
        assert.equal(ea.parsed.presence.count, 1);
        // the same user on the other worker: no member_added anywhere, still one member
        const eb = await b.subscribeAuthed(ch, { user_id: 'u1', user_info: { tab: 2 } });
        assert.equal(eb.parsed.presence.count, 1);
        assert.deepEqual(eb.parsed.presence.hash, { u1: { tab: 1 } }, 'the first user_info is kept');
        // another user on worker 1: both tabs of u1 hear member_added once
        const ec = await c.subscribeAuthed(ch, { user_id: 'u2' });
        assert.equal(ec.parsed.presence.count, 2);
        await a.take({ event: 'pusher_internal:member_added', channel: ch });
        await b.take({ event: 'pusher_internal:member_added', channel: ch });
        await sleep(QUIET_MS);
        assert.equal(c.count({ event: 'pusher_internal:member_added' }), 0);
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['u1', 'u2']);
        const info = await (await sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count,subscription_count' } })).json();
        assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
        // u1 leaves worker 1: still present through worker 2, no member_removed
        a.close();
        await sleep(QUIET_MS);
        assert.equal(c.count({ event: 'pusher_internal:member_removed' }), 0);
        // and leaves worker 2: now removed
        b.close();
        const removed = await c.take({ event: 'pusher_internal:member_removed', channel: ch });
        assert.deepEqual(removed.parsed, { user_id: 'u1' });
    });

    test('workers: client events cross workers, with user_id on presence', async () => {
        const ch = uniq('presence-ce-');
        const [a, b] = await pairAcrossWorkers();
        await a.subscribeAuthed(ch, { user_id: 'alice' });
        await b.subscribeAuthed(ch, { user_id: 'bob' });
        a.send({ event: 'client-hi', channel: ch, data: { from: 'alice' } });
        const got = await b.take({ event: 'client-hi', channel: ch });
        assert.deepEqual(got.msg, { event: 'client-hi', data: { from: 'alice' }, channel: ch, user_id: 'alice' });
        b.send({ event: 'client-hi', channel: ch, data: { from: 'bob' } });
        const back = await a.take({ event: 'client-hi', channel: ch });
        assert.equal(back.msg.user_id, 'bob');
    });

    test('workers: cache channels replay to a subscriber on the other worker', async () => {
        const ch = uniq('cache-w-');
        const [a, b] = await pairAcrossWorkers();
        await a.subscribe(ch);
        await a.take({ event: 'pusher:cache_miss', channel: ch });
        await sdk.trigger(ch, 'price', { v: 42 });
        await a.take({ event: 'price', channel: ch });
        await b.subscribe(ch);
        const cached = await b.take({ event: 'price', channel: ch });
        assert.equal(cached.msg.data, '{"v":42}');
        assert.equal(b.count({ event: 'pusher:cache_miss' }), 0);
    });

    test('workers: sendToUser, watchlists and terminate_connections reach connections on both workers', async () => {
        const user = uniq('user-');
        const [a, b] = await pairAcrossWorkers();
        const [watcher] = await pairAcrossWorkers();
        const w = await watcher.signin({ id: uniq('watcher-'), watchlist: [user] });
        assert.equal(w.msg.event, 'pusher:signin_success');
        const initial = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(initial.parsed.events, [{ name: 'offline', user_ids: [user] }]);
        await a.signin({ id: user });
        const online = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(online.parsed.events, [{ name: 'online', user_ids: [user] }]);
        await b.signin({ id: user });

        await sdk.sendToUser(user, 'note', { text: 'both tabs' });
        await a.take('note');
        await b.take('note');

        const res = await sdk.post({ path: `/users/${user}/terminate_connections`, body: {} });
        assert.equal(res.status, 200);
        for (const c of [a, b]) {
            const e = await c.take('pusher:error');
            assert.equal(e.msg.data.code, 4009);
            const closed = await c.closed();
            assert.equal(closed.code, 4009);
        }
        const offline = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(offline.parsed.events, [{ name: 'offline', user_ids: [user] }]);
    });

    test('workers: an app quota counts connections on both workers', async () => {
        const app = APPS.tiny; // max_connections 1
        const first = await rawReady(s, server, { app });
        // every further connection is refused with 4004, whichever worker takes it
        for (let i = 0; i < 6; i++) {
            const c = s.raw(server, { app });
            const e = await c.take('pusher:error');
            assert.equal(e.msg.data.code, 4004);
        }
        first.close();
    });
});
