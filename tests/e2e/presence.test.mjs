// Presence channels: member lists, member_added / member_removed per user
// (not per connection), limits, user id normalisation and channel_data
// without user_info (docs/api.md; spec §3.3, §3.4, §12 items 8–11).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, subscribed, nextEvent } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, relayBarrier, sameWorker, until } from './lib/clients.mjs';

const presenceOf = (entry) => entry.parsed && entry.parsed.presence;
const sortIds = (p) => ({ ...p, ids: [...p.ids].sort() });

describe('presence', () => {
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

    test('presence: subscription_succeeded carries ids, hash and count of distinct users, data a JSON string', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        const ea = await a.subscribeAuthed(ch, { user_id: '1', user_info: { name: 'one' } });
        assert.equal(ea.msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal(typeof ea.msg.data, 'string');
        assert.deepEqual(ea.parsed, { presence: { ids: ['1'], hash: { 1: { name: 'one' } }, count: 1 } });
        const b = await rawReady(s, server);
        const eb = await b.subscribeAuthed(ch, { user_id: '2', user_info: { name: 'two', tags: ['x'] } });
        assert.equal(eb.msg.event, 'pusher_internal:subscription_succeeded');
        assert.deepEqual(Object.keys(eb.parsed), ['presence']);
        assert.deepEqual(sortIds(presenceOf(eb)), {
            ids: ['1', '2'],
            hash: { 1: { name: 'one' }, 2: { name: 'two', tags: ['x'] } },
            count: 2,
        });
    });

    test('presence: pusher-js members has count, each member and me', async () => {
        const ch = uniq('presence-');
        const a = s.pusher(server, { user: { id: 'alice', info: { name: 'Alice' } } });
        await subscribed(a, ch);
        const b = s.pusher(server, { user: { id: 'bob', info: { name: 'Bob' } } });
        const chB = await subscribed(b, ch);
        assert.equal(chB.members.count, 2);
        assert.deepEqual(chB.members.me, { id: 'bob', info: { name: 'Bob' } });
        const all = [];
        chB.members.each((m) => all.push(m));
        all.sort((x, y) => x.id.localeCompare(y.id));
        assert.deepEqual(all, [{ id: 'alice', info: { name: 'Alice' } }, { id: 'bob', info: { name: 'Bob' } }]);
    });

    test('presence: member_added goes to the others (exact data), not to the joiner', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: '1', user_info: { name: 'one' } });
        const b = await rawReady(s, server);
        await b.subscribeAuthed(ch, { user_id: '2', user_info: { name: 'two' } });
        const added = await a.take({ event: 'pusher_internal:member_added', channel: ch });
        assert.equal(typeof added.msg.data, 'string', 'member_added data is a JSON string');
        assert.deepEqual(added.parsed, { user_id: '2', user_info: { name: 'two' } });
        // b's join is handled by b's worker: what it writes to b is before b's
        // pong, what it sends a is before b's later client event
        await b.ping();
        b.send({ event: 'client-control', channel: ch, data: {} });
        await a.take({ event: 'client-control', channel: ch });
        assert.equal(b.count('pusher_internal:member_added'), 0, 'the joiner got a member_added');
        assert.equal(a.count('pusher_internal:member_added'), 1);
    });

    test('presence: member_removed {user_id} reaches the others on unsubscribe and on disconnect', async () => {
        const ch = uniq('presence-');
        const a = s.pusher(server, { user: { id: 'a', info: { n: 1 } } });
        const chA = await subscribed(a, ch);
        const removed = record(chA, 'pusher:member_removed');
        const r = await rawReady(s, server);
        await r.subscribeAuthed(ch, { user_id: 'b', user_info: { n: 2 } });
        const c = await rawReady(s, server);
        await c.subscribeAuthed(ch, { user_id: 'c', user_info: { n: 3 } });
        await until(() => chA.members.count === 3, 'three members at a');
        const cRemoved = c.take({ event: 'pusher_internal:member_removed', channel: ch });
        r.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        const e = await cRemoved;
        assert.equal(typeof e.msg.data, 'string');
        assert.deepEqual(e.parsed, { user_id: 'b' });
        await atLeast1(removed);
        assert.deepEqual(removed[0].data, { id: 'b', info: { n: 2 } });
        c.terminate();
        await until(() => removed.length >= 2, 'member_removed after disconnect');
        assert.deepEqual(removed[1].data, { id: 'c', info: { n: 3 } });
        assert.equal(chA.members.count, 1);
    });

    test('presence: a second connection of the same user adds no member_added and no count', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: '1', user_info: { name: 'one' } });
        const tab1 = await rawReady(s, server);
        await tab1.subscribeAuthed(ch, { user_id: '2', user_info: { name: 'two' } });
        await a.take({ event: 'pusher_internal:member_added', channel: ch });
        const tab2 = await rawReady(s, server);
        const e = await tab2.subscribeAuthed(ch, { user_id: '2', user_info: { name: 'two' } });
        assert.deepEqual(sortIds(presenceOf(e)), {
            ids: ['1', '2'], hash: { 1: { name: 'one' }, 2: { name: 'two' } }, count: 2,
        });
        // control: a later client event of tab2's (its join's origin) that
        // reaches a and tab1 (the sender's other tab hears it too)
        tab2.send({ event: 'client-control', channel: ch, data: {} });
        await a.take({ event: 'client-control', channel: ch });
        await tab1.take({ event: 'client-control', channel: ch });
        assert.equal(a.count('pusher_internal:member_added'), 1, 'second tab produced a member_added');
        assert.equal(tab1.count('pusher_internal:member_added'), 0, 'first tab told about its own user');
        const res = await (await sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count,subscription_count' } })).json();
        assert.deepEqual(res, { occupied: true, user_count: 2, subscription_count: 3 });
    });

    test('presence: no member_removed until the user\'s last connection leaves', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: '1', user_info: {} });
        const tab1 = await rawReady(s, server);
        await tab1.subscribeAuthed(ch, { user_id: '2', user_info: {} });
        const tab2 = await rawReady(s, server);
        await tab2.subscribeAuthed(ch, { user_id: '2', user_info: {} });
        // on tab2's worker, for a control after tab2 is gone
        const tab2Worker = await sameWorker(s, server, tab2);
        tab1.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        // control: a client event tab1 sends after leaving reaches a after
        // anything the leave made tab1's worker send
        await relayBarrier(tab1, a);
        assert.equal(a.count('pusher_internal:member_removed'), 0, 'member_removed while another tab stays');
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['1', '2']);
        tab2.terminate();
        const e = await a.take({ event: 'pusher_internal:member_removed', channel: ch });
        assert.deepEqual(e.parsed, { user_id: '2' });
        // tab2's worker has handled the close (a got its member_removed): a
        // control from that worker follows anything else the close sent a
        await relayBarrier(tab2Worker, a);
        assert.equal(a.count('pusher_internal:member_removed'), 1);
    });

    test('presence: the member limit counts distinct users (APPS.small: 2) and refuses the third with LimitReached 4100', async () => {
        const ch = uniq('presence-');
        const app = APPS.small;
        const u1 = await rawReady(s, server, { app });
        const u2 = await rawReady(s, server, { app });
        const u1b = await rawReady(s, server, { app });
        const u3 = await rawReady(s, server, { app });
        assert.equal((await u1.subscribeAuthed(ch, { user_id: 'u1' })).msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal((await u2.subscribeAuthed(ch, { user_id: 'u2' })).msg.event, 'pusher_internal:subscription_succeeded');
        const again = await u1b.subscribeAuthed(ch, { user_id: 'u1' });
        assert.equal(again.msg.event, 'pusher_internal:subscription_succeeded', 'another connection of a present user is not a new member');
        const e = await u3.subscribeAuthed(ch, { user_id: 'u3' });
        assert.equal(e.msg.event, 'pusher:subscription_error');
        assert.equal(e.msg.channel, ch);
        assert.equal(e.msg.data.type, 'LimitReached');
        assert.equal(e.msg.data.status, 4100);
        // u2's member_added arrives; then a control from each later joiner's
        // worker (u1b on the channel, u3 refused: over a private one) to u1
        const added = await u1.take({ event: 'pusher_internal:member_added', channel: ch });
        assert.equal(added.parsed.user_id, 'u2');
        u2.send({ event: 'client-control', channel: ch, data: {} });
        await u1.take({ event: 'client-control', channel: ch });
        u1b.send({ event: 'client-control', channel: ch, data: {} });
        await u1.take({ event: 'client-control', channel: ch });
        await relayBarrier(u3, u1);
        assert.equal(u1.count('pusher_internal:member_added'), 1, 'only u2 was added');
    });

    test('presence: channel_data over max_presence_user_bytes (APPS.small: 64) gets LimitReached 413, 64 bytes pass', async () => {
        const ch = uniq('presence-');
        const app = APPS.small;
        const r = await rawReady(s, server, { app });
        const make = (len) => {
            const head = '{"user_id":"big","user_info":{"name":"';
            const tail = '"}}';
            return head + 'x'.repeat(len - head.length - tail.length) + tail;
        };
        const over = make(65);
        assert.equal(Buffer.byteLength(over), 65);
        const e = await r.subscribeAuthed(ch, over);
        assert.equal(e.msg.event, 'pusher:subscription_error');
        assert.equal(e.msg.data.type, 'LimitReached');
        assert.equal(e.msg.data.status, 413);
        const fits = make(64);
        assert.equal(Buffer.byteLength(fits), 64);
        const ok = await r.subscribeAuthed(ch, fits);
        assert.equal(ok.msg.event, 'pusher_internal:subscription_succeeded');
        assert.deepEqual(presenceOf(ok).hash, { big: JSON.parse(fits).user_info });
    });

    test('presence: a numeric user_id is normalised to a string everywhere', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: '1', user_info: { name: 'one' } });
        const b = await rawReady(s, server);
        const e = await b.subscribeAuthed(ch, '{"user_id":10,"user_info":{"name":"ten"}}');
        assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded');
        assert.deepEqual(sortIds(presenceOf(e)), {
            ids: ['1', '10'], hash: { 1: { name: 'one' }, 10: { name: 'ten' } }, count: 2,
        });
        const added = await a.take({ event: 'pusher_internal:member_added', channel: ch });
        assert.deepEqual(added.parsed, { user_id: '10', user_info: { name: 'ten' } });
        // the same user given as the string "10" is the same member
        const c = await rawReady(s, server);
        const ec = await c.subscribeAuthed(ch, { user_id: '10', user_info: { name: 'ten' } });
        assert.equal(presenceOf(ec).count, 2);
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['1', '10']);
        // control: a later client event of c's (the second join's origin)
        c.send({ event: 'client-control', channel: ch, data: {} });
        await a.take({ event: 'client-control', channel: ch });
        assert.equal(a.count('pusher_internal:member_added'), 1);
    });

    test('presence: channel_data without user_info works, the member\'s hash value is null', async () => {
        const ch = uniq('presence-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: 'first', user_info: { x: 1 } });
        const b = await rawReady(s, server);
        const e = await b.subscribeAuthed(ch, '{"user_id":"noinfo"}');
        assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded');
        assert.deepEqual(sortIds(presenceOf(e)), {
            ids: ['first', 'noinfo'], hash: { first: { x: 1 }, noinfo: null }, count: 2,
        });
        const added = await a.take({ event: 'pusher_internal:member_added', channel: ch });
        assert.equal(added.parsed.user_id, 'noinfo');
        assert.equal(added.parsed.user_info ?? null, null);
        b.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        const removed = await a.take({ event: 'pusher_internal:member_removed', channel: ch });
        assert.deepEqual(removed.parsed, { user_id: 'noinfo' });
    });

    test('presence: pusher-js sees member_added / member_removed through its Members API', async () => {
        const ch = uniq('presence-');
        const a = s.pusher(server, { user: { id: 'a', info: { name: 'A' } } });
        const chA = await subscribed(a, ch);
        const addedP = nextEvent(chA, 'pusher:member_added');
        const b = s.pusher(server, { user: { id: 'b', info: { name: 'B' } } });
        await subscribed(b, ch);
        assert.deepEqual((await addedP).data, { id: 'b', info: { name: 'B' } });
        assert.equal(chA.members.count, 2);
        const removedP = nextEvent(chA, 'pusher:member_removed');
        b.disconnect();
        assert.deepEqual((await removedP).data, { id: 'b', info: { name: 'B' } });
        assert.equal(chA.members.count, 1);
    });

    test('presence: channel_data without user_id is InvalidChannelData 400, missing auth is AuthError 401', async () => {
        const ch = uniq('presence-');
        const r = await rawReady(s, server);
        const e1 = await r.subscribeAuthed(ch, '{"user_info":{"name":"nobody"}}');
        assert.equal(e1.msg.event, 'pusher:subscription_error');
        assert.equal(e1.msg.data.type, 'InvalidChannelData');
        assert.equal(e1.msg.data.status, 400);
        const e2 = await r.subscribe(ch, { auth: '', channel_data: '{"user_id":"x"}' });
        assert.equal(e2.msg.event, 'pusher:subscription_error');
        assert.equal(e2.msg.data.type, 'AuthError');
        assert.equal(e2.msg.data.status, 401);
        await r.ping();
    });
});

function atLeast1(arr) {
    return until(() => arr.length >= 1, 'an event');
}
