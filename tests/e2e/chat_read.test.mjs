// Read cursors and "seen" receipts: per app, user and channel a "read up
// to" id that only moves forward. Over WebSocket a signed-in subscriber
// sends {"event":"hark:read","channel","data":{"id"?}} (no id: the newest
// event now); over REST POST /apps/{id}/users/{user}/read {"channel","id"?}
// answers {"moved": bool} once stored. When (and only when) the cursor
// moved, every OTHER connection subscribed to the channel gets
// {"event":"hark:read","channel","data":"{\"user_id\",\"id\"}"}. Refused
// with nothing changed: WebSocket pusher:error "hark:read rejected: …", REST
// 400. Cursors survive a restart and kill -9 after the REST 200.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, signedIn, until, sleep } from './lib/clients.mjs';
import { assertError, restartKit } from './lib/history.mjs';
import {
    chatApp, room, signedInRaw, join, send, trigger, wsRead, receipt, receipts, rejected, restRead, restReadOk,
    restUnreadOk, signed, seqPlus, otherEpoch,
} from './lib/chat.mjs';

const CHAT = chatApp('read');
// keeps the newest 3 events of a channel
const SHORT = chatApp('read-short', { history: [{ channels: '*', max_events: 3, max_age_s: 86400 }] });

// keeps events for one second
const AGED = chatApp('read-aged', { history: [{ channels: '*', max_events: 100, max_age_s: 1 }] });

const R = (user, id) => ({ user_id: user, id });

// n messages from user (REST with user_id; user null: no author); their ids.
async function say(sdk, ch, user, n, event = 'message') {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(await send(sdk, ch, event, { from: user, i }, user === null ? undefined : { user_id: user }));
    return ids;
}

// The read_id of user on ch (REST unread).
async function cursorOf(server, app, user, ch) {
    const got = await restUnreadOk(server, app, user, [ch]);
    assert.ok(got[ch], `no entry for ${ch}: ${JSON.stringify(got)}`);
    return got[ch].read_id;
}

describe('chat: read cursors and receipts', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, CHAT, SHORT, AGED] } });
        sdk = rest(server, CHAT);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('read: a move over WebSocket reaches every other connection (the reader\'s other device too) as the exact receipt, not the sending connection', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a1, a2, b1] } = await room(s, server, CHAT, [alice, alice, bob]);
        const anon = await rawReady(s, server, { app: CHAT });
        await join(anon, ch); // subscribed, not signed in
        const ids = await say(sdk, ch, bob, 2);
        wsRead(a1, ch, ids[1]);
        for (const r of [a2, b1, anon]) {
            const e = await r.take({ event: 'hark:read', channel: ch });
            assert.deepEqual(e.msg, { event: 'hark:read', channel: ch, data: JSON.stringify(R(alice, ids[1])) }, e.text);
        }
        // bob's move: its receipt reaches a1 after any receipt of alice's
        // move would have (receipts of a channel go out in the order of the moves)
        wsRead(b1, ch, ids[1]);
        assert.deepEqual(await receipt(a1, ch), R(bob, ids[1]));
        assert.deepEqual(await receipt(a2, ch), R(bob, ids[1]));
        assert.deepEqual(receipts(a1, ch), [R(bob, ids[1])], 'the reading connection got its own receipt');
        assert.deepEqual(receipts(b1, ch), [R(alice, ids[1])], 'the reading connection got its own receipt');
        assert.equal(a1.count('pusher:error') + b1.count('pusher:error'), 0);
        // no answer at all to a successful read: a1 got the connection
        // frames, the messages and bob's receipt, nothing else
        await a1.ping();
        const expected = ['pusher:connection_established', 'pusher:signin_success', 'pusher_internal:subscription_succeeded', 'message', 'hark:read', 'pusher:pong'];
        assert.deepEqual(a1.log.map((x) => x.msg.event).filter((ev) => !expected.includes(ev)), [], 'an answer to hark:read');
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[1]);
        assert.equal(await cursorOf(server, CHAT, bob, ch), ids[1]);
    });

    test('read: re-reading, reading backwards and reading the newest again move nothing — no receipt, the cursor stays — and each later move is received once', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a1, a2, b1] } = await room(s, server, CHAT, [alice, alice, bob]);
        const ids = await say(sdk, ch, bob, 4);
        wsRead(a1, ch, ids[2]); // moves
        wsRead(a1, ch, ids[2]); // same
        wsRead(a1, ch, ids[0]); // backwards
        wsRead(a1, ch, ids[1]); // backwards
        wsRead(a1, ch, ids[3]); // moves
        wsRead(a1, ch, ids[3]); // same
        wsRead(a1, ch); // the newest is ids[3]: same
        const [m4] = await say(sdk, ch, bob, 1);
        wsRead(a1, ch); // the newest is m4: moves
        await until(() => receipts(b1, ch).length >= 3, 'three receipts at bob');
        await until(() => receipts(a2, ch).length >= 3, 'three receipts at alice\'s other device');
        await a1.ping();
        assert.equal(a1.count('pusher:error'), 0);
        // over REST the same: backwards and same are not moves
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[1]), false);
        assert.equal(await restReadOk(server, CHAT, alice, ch, m4), false);
        assert.equal(await restReadOk(server, CHAT, alice, ch), false);
        assert.equal(await cursorOf(server, CHAT, alice, ch), m4);
        // a last move: once its receipt is in, nothing came between
        const [m5] = await say(sdk, ch, bob, 1);
        assert.equal(await restReadOk(server, CHAT, alice, ch, m5), true);
        await until(() => receipts(b1, ch).length >= 4 && receipts(a2, ch).length >= 4, 'the fourth receipt');
        const want = [R(alice, ids[2]), R(alice, ids[3]), R(alice, m4), R(alice, m5)];
        assert.deepEqual(receipts(b1, ch), want);
        assert.deepEqual(receipts(a2, ch), want);
        // the REST move reaches the connection that read over WebSocket too
        await until(() => receipts(a1, ch).length >= 1, 'the REST move at a1');
        assert.deepEqual(receipts(a1, ch), [R(alice, m5)]);
    });

    test('read: without an id reads up to the newest event now; on a channel with no events nothing happens and there is no error', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, CHAT, [alice, bob]);
        wsRead(a, ch); // no events yet
        await a.ping();
        assert.equal(a.count('pusher:error'), 0, 'hark:read on an empty channel answered an error');
        assert.equal(await restReadOk(server, CHAT, alice, ch), false, 'REST read on an empty channel moved');
        assert.equal(await cursorOf(server, CHAT, alice, ch), null);
        const ids = await say(sdk, ch, bob, 2);
        wsRead(a, ch);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[1]));
        assert.deepEqual(receipts(b, ch), [R(alice, ids[1])], 'a receipt for the read of the empty channel');
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[1]);
    });

    test('read: without an id, on a channel whose events have all expired (max_age_s 1), nothing happens: no receipt, no error, REST moved:false', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, AGED, [alice, bob]);
        await say(rest(server, AGED), ch, bob, 2);
        await sleep(1500); // both are now older than max_age_s
        wsRead(a, ch);
        await a.ping();
        assert.equal(a.count('pusher:error'), 0, 'hark:read on an expired channel answered an error');
        assert.equal(await restReadOk(server, AGED, alice, ch), false, 'REST read on an expired channel moved');
        await b.ping();
        assert.deepEqual(receipts(b, ch), [], 'a receipt for a read of no event');
        assert.equal(await cursorOf(server, AGED, alice, ch), null);
    });

    test('read: on a channel whose events are not kept (no events), a read without an id does nothing and is no error', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, CHAT, [alice, bob], 'plain-'); // plain-*: not kept
        const res = await trigger(sdk, ch, 'message', { t: 1 }, { user_id: bob });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body.ids, {}, 'plain-* is kept after all');
        await a.take({ event: 'message', channel: ch });
        wsRead(a, ch);
        await a.ping();
        const viaRest = await restRead(server, CHAT, alice, ch);
        assert.deepEqual({ ws: a.all('pusher:error').map((e) => e.text), rest: [viaRest.status, viaRest.text] },
            { ws: [], rest: [200, '{"moved":false}'] }, 'a read without an id on a channel with no events');
        assert.deepEqual(receipts(b, ch), []);
    });

    test('read: a client marking 30 conversations read at once (one hark:read each, sent together) moves every cursor and sends every receipt', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const a = await signedInRaw(s, server, alice, { app: CHAT });
        const b = await signedInRaw(s, server, bob, { app: CHAT });
        const chans = [];
        const last = {};
        for (let i = 0; i < 30; i++) {
            const ch = uniq('private-conv-');
            await join(a, ch);
            await join(b, ch);
            [last[ch]] = await say(sdk, ch, bob, 1);
            chans.push(ch);
        }
        for (const ch of chans) wsRead(a, ch);
        for (const ch of chans) {
            assert.deepEqual(await receipt(b, ch, 10000).catch((e) => {
                throw new Error(`${e.message}; errors at the reader: ${a.all('pusher:error').map((x) => x.text).slice(0, 2).join(' ')}`);
            }), R(alice, last[ch]));
        }
        assert.deepEqual(a.all('pusher:error').map((e) => e.text), []);
        const got = await restUnreadOk(server, CHAT, alice, chans);
        for (const ch of chans) assert.deepEqual(got[ch], { unread: 0, last_id: last[ch], read_id: last[ch] }, ch);
    });

    test('read: REST answers {"moved"} and sends the receipt to every subscriber, all of the reader\'s connections included; a user with no connection can read too', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const carol = uniq('carol-'); // never connected
        const { ch, conns: [a1, a2, b] } = await room(s, server, CHAT, [alice, alice, bob]);
        const ids = await say(sdk, ch, bob, 3);
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[0]), true);
        for (const r of [a1, a2, b]) assert.deepEqual(await receipt(r, ch), R(alice, ids[0]));
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[0]), false);
        assert.equal(await restReadOk(server, CHAT, carol, ch), true);
        for (const r of [a1, a2, b]) assert.deepEqual(await receipt(r, ch), R(carol, ids[2]));
        assert.equal(await restReadOk(server, CHAT, carol, ch, ids[1]), false);
        // one more move; nothing between
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[1]), true);
        for (const r of [a1, a2, b]) {
            assert.deepEqual(await receipt(r, ch), R(alice, ids[1]));
            assert.deepEqual(receipts(r, ch), [R(alice, ids[0]), R(carol, ids[2]), R(alice, ids[1])]);
        }
        assert.equal(await cursorOf(server, CHAT, carol, ch), ids[2]);
    });

    test('read: one user reading from many places at once: the cursor ends at the highest id, and receipts strictly increase, one per move', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [b] } = await room(s, server, CHAT, [bob]);
        const devices = [];
        for (let i = 0; i < 4; i++) {
            const d = await signedInRaw(s, server, alice, { app: CHAT });
            await join(d, ch);
            devices.push(d);
        }
        const ids = await say(sdk, ch, bob, 12);
        // every device reads a shuffled half of the ids over the WebSocket
        // while REST reads the other half, all at once
        const order = ids.map((id, i) => [id, (i * 7) % 12]).sort((x, y) => x[1] - y[1]).map(([id]) => id);
        order.forEach((id, i) => { if (i % 2 === 0) wsRead(devices[i % 4], ch, id); });
        const restMoves = await Promise.all(order.filter((_, i) => i % 2 === 1).map((id) => restReadOk(server, CHAT, alice, ch, id)));
        await until(async () => (await cursorOf(server, CHAT, alice, ch)) === ids[11], 'the cursor at the highest id', 10000);
        // a last move from bob's side is a barrier for the receipts on this channel
        const [extra] = await say(sdk, ch, bob, 1);
        assert.equal(await restReadOk(server, CHAT, alice, ch, extra), true);
        await until(() => receipts(b, ch).some((r) => r.id === extra), 'the last receipt at bob', 10000);
        const got = receipts(b, ch).map((r) => r.id);
        for (let i = 1; i < got.length; i++) assert.ok(ids.concat(extra).indexOf(got[i - 1]) < ids.concat(extra).indexOf(got[i]), `receipts not increasing: ${got}`);
        assert.equal(new Set(got).size, got.length, `a move received twice: ${got}`);
        assert.ok(got.includes(ids[11]), 'no receipt for the highest id');
        assert.ok(got.length >= 1 + restMoves.filter(Boolean).length, `${got.length} receipts, ${restMoves.filter(Boolean).length} REST moves`);
        for (const d of devices) assert.equal(d.count('pusher:error'), 0, d.all('pusher:error').map((e) => e.text).join(' '));
    });

    test('read: pusher-js sends hark:read with send_event and gets others\' receipts through bind(\'hark:read\') as {user_id, id}', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-conv-');
        const pa = s.pusher(server, { app: CHAT, user: { id: alice, info: {} } });
        await connected(pa);
        pa.signin();
        await signedIn(pa);
        const chA = await subscribed(pa, ch);
        const got = record(chA, 'hark:read');
        const b = await signedInRaw(s, server, bob, { app: CHAT });
        await join(b, ch);
        const ids = await say(sdk, ch, bob, 2);
        pa.send_event('hark:read', { id: ids[0] }, ch);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[0]));
        wsRead(b, ch, ids[1]);
        await until(() => got.length >= 1, 'bob\'s receipt at pusher-js');
        assert.deepEqual(got.map((e) => e.data), [R(bob, ids[1])]);
    });

    test('read: refused over WebSocket ("hark:read rejected:") with nothing changed: not signed in, not subscribed, malformed id, id of another channel or epoch, beyond the newest', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, CHAT, [alice, bob]);
        const ids = await say(sdk, ch, bob, 3);
        wsRead(a, ch, ids[0]);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[0]));
        const other = uniq('private-conv-');
        const [otherId] = await say(sdk, other, bob, 1);
        await join(a, other);
        const anon = await rawReady(s, server, { app: CHAT });
        await join(anon, ch);
        wsRead(anon, ch, ids[1]);
        await rejected(anon, 'hark:read rejected:');
        // a presence member that never signed in
        const pres = uniq('presence-conv-');
        await join(b, pres);
        const member = await rawReady(s, server, { app: CHAT });
        await join(member, pres, alice);
        const [presId] = await say(sdk, pres, bob, 1);
        wsRead(member, pres, presId);
        await rejected(member, 'hark:read rejected:');
        assert.equal(await cursorOf(server, CHAT, alice, pres), null, 'a read of a member that is not signed in was stored');
        const outsider = await signedInRaw(s, server, alice, { app: CHAT }); // alice, not subscribed
        wsRead(outsider, ch, ids[1]);
        await rejected(outsider, 'hark:read rejected:');
        wsRead(outsider, ch);
        await rejected(outsider, 'hark:read rejected:');
        const bad = ['x', "' OR 1=1 --", `${ids[1]}' OR '1'='1`, `${ids[1]};`, '', 'a'.repeat(65), 42, { id: ids[1] },
            otherId, otherEpoch(ids[1]), seqPlus(ids[2], 1), seqPlus(ids[2], 1000000)];
        for (const id of bad) {
            a.send({ event: 'hark:read', channel: ch, data: { id } });
            const why = await rejected(a, 'hark:read rejected:').catch((e) => { throw new Error(`id ${JSON.stringify(id)}: ${e.message}`); });
            assert.ok(why.length > 'hark:read rejected:'.length, `no reason for ${JSON.stringify(id)}`);
        }
        // a channel the connection is not on, and a name that is not a channel
        for (const name of [uniq('private-conv-'), "private-a';DROP"]) {
            wsRead(a, name, ids[1]);
            await rejected(a, 'hark:read rejected:');
        }
        await a.ping();
        assert.equal(a.count('pusher:error'), bad.length + 2, 'one error per refused read');
        assert.equal(anon.closeInfo, null);
        assert.equal(a.closeInfo, null);
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[0], 'a refused read changed the cursor');
        // nothing was sent for them: the next move is the next receipt
        wsRead(a, ch, ids[2]);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[2]));
        assert.deepEqual(receipts(b, ch), [R(alice, ids[0]), R(alice, ids[2])]);
        assert.equal(await cursorOf(server, CHAT, alice, other), null, 'the other channel\'s cursor moved');
    });

    test('read: refused over REST with 400 {"error"} and nothing changed; a wrong signature is 401', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [, b] } = await room(s, server, CHAT, [alice, bob]);
        const ids = await say(sdk, ch, bob, 3);
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[0]), true);
        await receipt(b, ch);
        const [otherId] = await say(sdk, uniq('private-conv-'), bob, 1);
        const [otherAppId] = await say(rest(server, APPS.main), ch, bob, 1); // the same name in another app
        const badIds = [otherAppId, 'x', "' OR 1=1 --", `${ids[1]}' OR '1'='1`, `${ids[1]};`, '', 'a'.repeat(65), 42, true, { id: ids[1] },
            otherId, otherEpoch(ids[1]), seqPlus(ids[2], 1), seqPlus(ids[2], 1000000)];
        for (const id of badIds) assertError(await restRead(server, CHAT, alice, ch, id), 400, `id ${JSON.stringify(id)}`);
        const path = `/users/${alice}/read`;
        for (const body of [{}, { id: ids[1] }, { channel: 42, id: ids[1] }, { channel: '', id: ids[1] },
            { channel: "private-a';DROP", id: ids[1] }, { channel: '#bad', id: ids[1] }, '{"channel":', '[]', 'null']) {
            assertError(await signed(server, CHAT, 'POST', path, { body }), 400, `body ${JSON.stringify(body)}`);
        }
        for (const user of ["x'--", 'a b', 'a'.repeat(129)]) {
            const res = await restRead(server, CHAT, user, ch, ids[1]);
            assert.ok(res.status >= 400 && res.status < 500, `user ${JSON.stringify(user)}: ${res.status}: ${res.text}`);
        }
        assertError(await restRead(server, { ...CHAT, secret: 'wrong' }, alice, ch, ids[2]), 401, 'a wrong secret');
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[0], 'a refused read changed the cursor');
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[1]), true);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[1]));
        assert.deepEqual(receipts(b, ch), [R(alice, ids[0]), R(alice, ids[1])]);
    });

    test('read: an id older than what is retained is accepted (history keeps 3)', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, SHORT, [alice, bob]);
        const short = rest(server, SHORT);
        const ids = await say(short, ch, bob, 6);
        wsRead(a, ch, ids[0]); // no longer kept
        assert.deepEqual(await receipt(b, ch), R(alice, ids[0]));
        assert.equal(await restReadOk(server, SHORT, alice, ch, ids[1]), true);
        assert.deepEqual(await receipt(b, ch), R(alice, ids[1]));
        assert.equal(await restReadOk(server, SHORT, alice, ch, ids[0]), false);
        assert.equal(await cursorOf(server, SHORT, alice, ch), ids[1]);
        assert.equal(a.count('pusher:error'), 0);
    });

    test('read: cursors are per user, per channel and per app', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a] } = await room(s, server, CHAT, [alice, bob]);
        const ch2 = uniq('private-conv-');
        await join(a, ch2);
        const ids = await say(sdk, ch, bob, 2);
        const ids2 = await say(sdk, ch2, bob, 2);
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[1]), true);
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[1]);
        assert.equal(await cursorOf(server, CHAT, alice, ch2), null);
        assert.equal(await cursorOf(server, CHAT, bob, ch), null);
        // the same names in another app
        const main = rest(server, APPS.main);
        await send(main, ch, 'message', {});
        assert.equal(await cursorOf(server, APPS.main, alice, ch), null);
        assert.equal(await restReadOk(server, CHAT, alice, ch2, ids2[0]), true);
        assert.equal(await cursorOf(server, CHAT, alice, ch2), ids2[0]);
        assert.equal(await cursorOf(server, CHAT, alice, ch), ids[1]);
    });

    test('read: SQL-looking user ids and channel names are stored and answered exactly; quoted ones are refused and change nothing', async () => {
        const user = 'x;--';
        const other = 'a=1;DROP';
        const ch = `private-a;DROP=1;--${uniq('')}`;
        const a = await signedInRaw(s, server, user, { app: CHAT });
        const o = await signedInRaw(s, server, other, { app: CHAT });
        await join(a, ch);
        await join(o, ch);
        const ids = await say(sdk, ch, other, 2);
        wsRead(a, ch, ids[0]);
        assert.deepEqual(await receipt(o, ch), R(user, ids[0]));
        assert.equal(await restReadOk(server, CHAT, other, ch, ids[1]), true);
        assert.deepEqual(await receipt(a, ch), R(other, ids[1]));
        assert.equal(await cursorOf(server, CHAT, user, ch), ids[0]);
        assert.equal(await cursorOf(server, CHAT, other, ch), ids[1]);
        // quotes: not a user id, not a channel name, not an id
        const bad = await restRead(server, CHAT, "x'--", ch, ids[1]);
        assert.ok(bad.status >= 400 && bad.status < 500, `user x'--: ${bad.status}: ${bad.text}`);
        assertError(await restRead(server, CHAT, user, "private-a';DROP", ids[1]), 400, 'channel with a quote');
        assertError(await restRead(server, CHAT, user, ch, "1' OR '1'='1"), 400, 'id with a quote');
        assert.equal(await cursorOf(server, CHAT, user, ch), ids[0]);
        assert.equal(await cursorOf(server, CHAT, other, ch), ids[1]);
        assert.equal(await restReadOk(server, CHAT, user, ch, ids[1]), true);
    });
});

describe('chat: read cursors survive restarts', () => {
    let s;
    let servers;
    let newDir;
    restartKit((kit) => ({ s, servers, newDir } = kit));
    const config = { apps: [APPS.main, CHAT] };

    test('read: kill -9 right after the REST 200: the cursor is there after a restart on the same data_dir, and still only moves forward', async () => {
        const dir = newDir();
        const a = await servers.start(dir, config);
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const chans = [uniq('private-conv-'), uniq('private-conv-'), uniq('conv-')];
        const ids = {};
        for (const ch of chans) ids[ch] = await say(rest(a, CHAT), ch, bob, 3);
        assert.equal(await restReadOk(a, CHAT, alice, chans[0], ids[chans[0]][1]), true);
        assert.equal(await restReadOk(a, CHAT, alice, chans[1], ids[chans[1]][0]), true);
        assert.equal(await restReadOk(a, CHAT, alice, chans[2]), true);
        assert.equal(await restReadOk(a, CHAT, bob, chans[0], ids[chans[0]][2]), true);
        await servers.kill(a); // at once, after the last 200
        const b = await servers.start(dir, config);
        assert.equal(await cursorOf(b, CHAT, alice, chans[0]), ids[chans[0]][1]);
        assert.equal(await cursorOf(b, CHAT, alice, chans[1]), ids[chans[1]][0]);
        assert.equal(await cursorOf(b, CHAT, alice, chans[2]), ids[chans[2]][2]);
        assert.equal(await cursorOf(b, CHAT, bob, chans[0]), ids[chans[0]][2]);
        assert.equal(await restReadOk(b, CHAT, alice, chans[0], ids[chans[0]][0]), false, 'moved backwards after the restart');
        assert.equal(await restReadOk(b, CHAT, alice, chans[0], ids[chans[0]][1]), false, 'moved to the same id after the restart');
        assert.equal(await restReadOk(b, CHAT, alice, chans[0], ids[chans[0]][2]), true);
        await servers.kill(b);
        const c = await servers.start(dir, config);
        assert.equal(await cursorOf(c, CHAT, alice, chans[0]), ids[chans[0]][2]);
    });

    test('read: kill -9 as soon as the receipt of a WebSocket read arrived: the cursor is there after the restart', async () => {
        const dir = newDir();
        const a = await servers.start(dir, config);
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-conv-');
        const rcA = await signedInRaw(s, a, alice, { app: CHAT });
        const rcB = await signedInRaw(s, a, bob, { app: CHAT });
        await join(rcA, ch);
        await join(rcB, ch);
        const ids = await say(rest(a, CHAT), ch, bob, 3);
        wsRead(rcA, ch, ids[1]);
        assert.deepEqual(await receipt(rcB, ch), R(alice, ids[1]));
        await servers.kill(a); // the receipt says it moved, and a move is stored
        const b = await servers.start(dir, config);
        assert.equal(await cursorOf(b, CHAT, alice, ch), ids[1]);
    });

    test('read: a WebSocket read whose receipt arrived survives a SIGTERM restart; an id from before the restart is not beyond the newest after it', async () => {
        const dir = newDir();
        const a = await servers.start(dir, config);
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-conv-');
        const rcA = await signedInRaw(s, a, alice, { app: CHAT });
        const rcB = await signedInRaw(s, a, bob, { app: CHAT });
        await join(rcA, ch);
        await join(rcB, ch);
        const ids = await say(rest(a, CHAT), ch, bob, 3);
        wsRead(rcA, ch, ids[1]);
        assert.deepEqual(await receipt(rcB, ch), R(alice, ids[1]));
        await until(async () => (await cursorOf(a, CHAT, alice, ch)) === ids[1], 'the cursor stored');
        await servers.stop(a);
        const b = await servers.start(dir, config);
        assert.equal(await cursorOf(b, CHAT, alice, ch), ids[1]);
        const r2 = await signedInRaw(s, b, alice, { app: CHAT });
        const o2 = await signedInRaw(s, b, bob, { app: CHAT });
        await join(r2, ch);
        await join(o2, ch);
        wsRead(r2, ch, ids[0]); // backwards: nothing
        wsRead(r2, ch, ids[2]); // a pre-restart id ahead of the cursor
        assert.deepEqual(await receipt(o2, ch), R(alice, ids[2]));
        assert.deepEqual(receipts(o2, ch), [R(alice, ids[2])]);
        assert.equal(r2.count('pusher:error'), 0);
    });
});
