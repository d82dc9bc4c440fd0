// User sign-in (pusher:signin), #server-to-user-<id> channels and sendToUser,
// watchlists, terminate_connections (docs/api.md; spec §3.5, §8.7).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected } from './lib/harness.mjs';
import {
    scope, rawReady, uniq, userAuth, record, signedIn, relayBarrier, pusherPing, sameWorker, terminated,
    sleep, until,
} from './lib/clients.mjs';

// pusher-js: the raw pusher:signin_success / pusher:error frames seen by the
// connection (c.connection 'message').
function frames(c) {
    const got = [];
    c.connection.bind('message', (m) => got.push(m));
    return got;
}

describe('signin', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark();
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('signin: pusher.signin() gets pusher:signin_success and subscribes #server-to-user-<id>', async () => {
        const id = uniq('u');
        const c = s.pusher(server, { user: { id, info: { name: 'N' } } });
        const seen = frames(c);
        await connected(c);
        c.signin();
        await signedIn(c);
        const ok = seen.find((m) => m.event === 'pusher:signin_success');
        assert.ok(ok, 'pusher:signin_success');
        assert.equal(typeof ok.data, 'object');
        assert.deepEqual(JSON.parse(ok.data.user_data), { id, user_info: { name: 'N' } });
        assert.deepEqual(c.user.user_data, { id, user_info: { name: 'N' } });
        assert.equal(c.user.serverToUserChannel.name, `#server-to-user-${id}`);
        const sub = seen.find((m) => m.event === 'pusher_internal:subscription_succeeded');
        assert.equal(sub.channel, `#server-to-user-${id}`);
    });

    test('signin: the success frame is {event, data:{user_data: the exact string signed}}', async () => {
        const id = uniq('u');
        const r = await rawReady(s, server);
        const userData = `{"id":"${id}",  "user_info":{"k":"v"}}`; // unusual spacing, kept byte for byte
        const e = await r.signin(userData);
        assert.deepEqual(e.msg, { event: 'pusher:signin_success', data: { user_data: userData } });
        const sub = await r.subscribe(`#server-to-user-${id}`, { auth: '' });
        assert.equal(sub.msg.event, 'pusher_internal:subscription_succeeded');
    });

    test('signin: #server-to-user of another user, or before signing in, is AuthError 401', async () => {
        const id = uniq('u');
        const r = await rawReady(s, server);
        const before_ = await r.subscribe(`#server-to-user-${id}`, { auth: '' });
        assert.equal(before_.msg.event, 'pusher:subscription_error');
        assert.equal(before_.msg.data.type, 'AuthError');
        assert.equal(before_.msg.data.status, 401);
        await r.signin({ id });
        const other = await r.subscribe(`#server-to-user-${id}x`, { auth: '' });
        assert.equal(other.msg.event, 'pusher:subscription_error');
        assert.equal(other.msg.data.type, 'AuthError');
        assert.equal(other.msg.data.status, 401);
    });

    test('signin: sendToUser reaches every connection of that user and no other user', async () => {
        const alice = uniq('alice');
        const bob = uniq('bob');
        const a1 = s.pusher(server, { user: { id: alice, info: {} } });
        const a2 = s.pusher(server, { user: { id: alice, info: {} } });
        const b = s.pusher(server, { user: { id: bob, info: {} } });
        for (const c of [a1, a2, b]) c.signin();
        await Promise.all([a1, a2, b].map((c) => signedIn(c)));
        const got1 = record(a1.user, 'notice');
        const got2 = record(a2.user, 'notice');
        const gotB = record(b.user, 'notice');
        const ctl1 = record(a1.user, 'control');
        const ctl2 = record(a2.user, 'control');
        const pub = s.pinned(server); // one HTTP connection: one worker, in order
        const res = await pub.sendToUser(alice, 'notice', { text: 'for alice' });
        assert.equal(res.status, 200);
        await until(() => got1.length && got2.length, 'both alice connections');
        assert.deepEqual(got1[0].data, { text: 'for alice' });
        assert.deepEqual(got2[0].data, { text: 'for alice' });
        await pub.sendToUser(bob, 'notice', { text: 'for bob' });
        await until(() => gotB.length, 'bob event');
        // published after the one for bob: alice's connections have whatever
        // of it would have reached them
        await pub.sendToUser(alice, 'control', {});
        await until(() => ctl1.length && ctl2.length, 'the control at both alice connections');
        // and bob's came after the one for alice
        assert.deepEqual(gotB.map((e) => e.data), [{ text: 'for bob' }]);
        assert.equal(got1.length, 1);
        assert.equal(got2.length, 1);
    });

    test('signin: one publish to several #server-to-user channels reaches each user', async () => {
        const u1 = uniq('m');
        const u2 = uniq('m');
        const r1 = await rawReady(s, server);
        const r2 = await rawReady(s, server);
        await r1.signin({ id: u1 });
        await r2.signin({ id: u2 });
        // the SDK's trigger() refuses '#' names client-side; post the same signed body
        const res = await sdk.post({ path: '/events', body: { name: 'both', channels: [`#server-to-user-${u1}`, `#server-to-user-${u2}`], data: '{"n":1}' } });
        assert.equal(res.status, 200);
        const { ids } = await res.json(); // each user's channel is kept by default
        const e1 = await r1.take('both');
        const e2 = await r2.take('both');
        assert.deepEqual(e1.msg, { event: 'both', data: '{"n":1}', channel: `#server-to-user-${u1}`, id: ids[`#server-to-user-${u1}`] });
        assert.deepEqual(e2.msg, { event: 'both', data: '{"n":1}', channel: `#server-to-user-${u2}`, id: ids[`#server-to-user-${u2}`] });
    });

    test('signin: a wrong signature gets pusher:error 4009', async () => {
        const r = await rawReady(s, server);
        r.send({ event: 'pusher:signin', data: { auth: `${APPS.main.key}:${'0'.repeat(64)}`, user_data: '{"id":"x"}' } });
        const e = await r.take((m) => m.event === 'pusher:error' || m.event === 'pusher:signin_success');
        assert.equal(e.msg.event, 'pusher:error');
        assert.equal(typeof e.msg.data, 'object');
        assert.equal(e.msg.data.code, 4009);
        assert.equal(typeof e.msg.data.message, 'string');
    });

    test('signin: a refused sign-in leaves the connection open and not signed in', async () => {
        const r = await rawReady(s, server);
        r.send({ event: 'pusher:signin', data: { auth: `${APPS.main.key}:${'0'.repeat(64)}`, user_data: '{"id":"x"}' } });
        await r.take('pusher:error');
        await r.ping();
        assert.equal(r.closeInfo, null);
        const sub = await r.subscribe('#server-to-user-x', { auth: '' });
        assert.equal(sub.msg.event, 'pusher:subscription_error');
    });

    test('signin: correctly signed user_data without an id, or signed for another socket, gets 4009', async () => {
        const r = await rawReady(s, server);
        const noId = '{"user_info":{"name":"x"}}';
        r.send({ event: 'pusher:signin', data: { auth: userAuth(APPS.main, r.socketId, noId), user_data: noId } });
        const e1 = await r.take((m) => m.event === 'pusher:error' || m.event === 'pusher:signin_success');
        assert.equal(e1.msg.event, 'pusher:error');
        assert.equal(e1.msg.data.code, 4009);
        const other = await rawReady(s, server);
        const ud = '{"id":"y"}';
        other.send({ event: 'pusher:signin', data: { auth: userAuth(APPS.main, r.socketId, ud), user_data: ud } });
        const e2 = await other.take((m) => m.event === 'pusher:error' || m.event === 'pusher:signin_success');
        assert.equal(e2.msg.event, 'pusher:error');
        assert.equal(e2.msg.data.code, 4009);
    });

    test('watchlist: A watching B gets online when B signs in and offline when B disconnects', async () => {
        const a = uniq('wa');
        const b = uniq('wb');
        const ca = s.pusher(server, { user: { id: a, info: {} }, userData: { watchlist: [b] } });
        const events = [];
        ca.user.watchlist.bind('online', (e) => events.push(e));
        ca.user.watchlist.bind('offline', (e) => events.push(e));
        ca.signin();
        await signedIn(ca);
        await pusherPing(ca); // the initial watchlist state came with the sign-in
        const before_ = events.length;
        const cb = s.pusher(server, { user: { id: b, info: {} } });
        cb.signin();
        await until(() => events.slice(before_).some((e) => e.name === 'online'), 'online event');
        const online = events.slice(before_).find((e) => e.name === 'online');
        assert.deepEqual(online, { name: 'online', user_ids: [b] });
        const mark = events.length;
        cb.disconnect();
        await until(() => events.slice(mark).some((e) => e.name === 'offline'), 'offline event');
        assert.deepEqual(events.slice(mark).find((e) => e.name === 'offline'), { name: 'offline', user_ids: [b] });
    });

    test('watchlist: a watched user who is already online is reported online right after sign-in (exact frame)', async () => {
        const a = uniq('wa');
        const b = uniq('wb');
        const rb = await rawReady(s, server);
        await rb.signin({ id: b });
        const ra = await rawReady(s, server);
        const ok = await ra.signin({ id: a, watchlist: [b, uniq('nobody')] });
        assert.equal(ok.msg.event, 'pusher:signin_success');
        const w = await ra.take((m) => m.event === 'pusher_internal:watchlist_events'
            && JSON.parse(m.data).events.some((x) => x.name === 'online'));
        assert.equal(typeof w.msg.data, 'string');
        assert.equal(w.msg.channel, undefined);
        const online = w.parsed.events.filter((x) => x.name === 'online');
        assert.deepEqual(online, [{ name: 'online', user_ids: [b] }]);
    });

    test('watchlist: a second connection of the watched user adds no online event; offline only after the last one', async () => {
        const a = uniq('wa');
        const b = uniq('wb');
        const ra = await rawReady(s, server);
        await ra.signin({ id: a, watchlist: [b] });
        await ra.ping(); // the initial state is written with the sign-in
        for (const e of ra.all('pusher_internal:watchlist_events')) e.taken = true; // initial state, if any
        const b1 = await rawReady(s, server);
        await b1.signin({ id: b });
        await ra.take((m) => m.event === 'pusher_internal:watchlist_events' && m.data.includes('online'));
        const b2 = await rawReady(s, server);
        await b2.signin({ id: b });
        // b2's sign-in: a control from b2 to ra follows any event it caused
        await relayBarrier(b2, ra);
        // b1's close: once hark has handled it, a control from a connection on
        // b1's worker follows any event it caused
        const b1Worker = await sameWorker(s, server, b1);
        await terminated(sdk, b1);
        await relayBarrier(b1Worker, ra);
        const later = ra.all('pusher_internal:watchlist_events').filter((e) => !e.taken);
        assert.deepEqual(later.map((e) => e.parsed), [], 'no watchlist events while b stays online');
        b2.terminate();
        const off = await ra.take('pusher_internal:watchlist_events');
        assert.deepEqual(off.parsed, { events: [{ name: 'offline', user_ids: [b] }] });
    });

    test('watchlist: over 100 ids → signin_success, then pusher:error 4302', async () => {
        const r = await rawReady(s, server);
        const ids = Array.from({ length: 101 }, (_, i) => `w${i}`);
        const ok = await r.signin({ id: uniq('big'), watchlist: ids });
        assert.equal(ok.msg.event, 'pusher:signin_success');
        const e = await r.take('pusher:error');
        assert.equal(e.msg.data.code, 4302);
        await r.ping();
    });

    test('terminate_connections: the user\'s connections get 4009 and pusher-js stays disconnected; others stay', async () => {
        const alice = uniq('alice');
        const bob = uniq('bob');
        const ca = s.pusher(server, { user: { id: alice, info: {} } });
        const states = [];
        ca.connection.bind('state_change', (st) => states.push(st.current));
        ca.signin();
        const ra = await rawReady(s, server);
        await ra.signin({ id: alice });
        const cb = s.pusher(server, { user: { id: bob, info: {} } });
        cb.signin();
        const rb = await rawReady(s, server);
        await rb.signin({ id: bob });
        const plain = await rawReady(s, server);
        await Promise.all([signedIn(ca), signedIn(cb)]);
        const pub = s.pinned(server); // one HTTP connection: later calls reach each connection later
        const res = await pub.terminateUserConnections(alice);
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {});
        const err = await ra.take('pusher:error');
        assert.equal(err.msg.data.code, 4009);
        const closed = await ra.closed();
        assert.equal(closed.code, 4009);
        await until(() => ca.connection.state !== 'connected', 'pusher-js to leave connected');
        await sleep(1500);
        assert.ok(['disconnected', 'failed'].includes(ca.connection.state), `state ${ca.connection.state} (${states.join(',')})`);
        assert.equal(states.filter((x) => x === 'connected').length, 1, `reconnected: ${states.join(',')}`);
        // bob and an anonymous connection are untouched
        assert.equal(cb.connection.state, 'connected');
        assert.equal(rb.closeInfo, null);
        assert.equal(plain.closeInfo, null);
        await rb.ping();
        await plain.ping();
        const got = record(cb.user, 'still');
        // published after the terminate over the same HTTP connection: a
        // terminate that reached bob would be ahead of it
        await pub.sendToUser(bob, 'still', { here: true });
        await until(() => got.length, 'bob still receives');
        await rb.take('still');
        assert.equal(rb.count('pusher:error'), 0);
        assert.equal(rb.closeInfo, null);
    });
});
