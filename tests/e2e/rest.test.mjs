// HTTP API through the pusher server SDK: events, batch_events, channel
// queries, limits and refusals (docs/api.md "HTTP API"; spec §8).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, restCall, until } from './lib/clients.mjs';

describe('rest', () => {
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

    // n raw connections subscribed to public channel ch (main app by default)
    async function subscribers(ch, n, app = APPS.main) {
        const out = [];
        for (let i = 0; i < n; i++) {
            const r = await rawReady(s, server, { app });
            const e = await r.subscribe(ch, { auth: '' });
            assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded');
            out.push(r);
        }
        return out;
    }

    // presence members: list of user ids, one connection each
    async function members(ch, ids, app = APPS.main) {
        const out = [];
        for (const id of ids) {
            const r = await rawReady(s, server, { app });
            const e = await r.subscribeAuthed(ch, { user_id: id });
            assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded', JSON.stringify(e.msg));
            out.push(r);
        }
        return out;
    }

    const ok200 = (res) => assert.equal(res.status, 200, `status ${res.status}: ${res.text}`);

    test('POST /events: 200 with body {"ids":{channel:id}} and the event is delivered with that id', async () => {
        const ch = uniq('rest-');
        const [r] = await subscribers(ch, 1);
        const res = await restCall(() => sdk.trigger(ch, 'created', { id: 1 }));
        ok200(res);
        const e = await r.take({ event: 'created', channel: ch });
        assert.equal(e.msg.data, '{"id":1}');
        assert.deepEqual(res.body, { ids: { [ch]: e.msg.id } }); // kept by the default history rules
    });

    test('POST /events: the single "channel" field (as the php SDK sends) works too', async () => {
        const ch = uniq('rest-');
        const [r] = await subscribers(ch, 1);
        const res = await restCall(() => sdk.post({ path: '/events', body: { name: 'single', channel: ch, data: '{"a":1}' } }));
        ok200(res);
        const e = await r.take({ event: 'single', channel: ch });
        assert.equal(e.msg.data, '{"a":1}');
        assert.deepEqual(res.body, { ids: { [ch]: e.msg.id } });
    });

    test('POST /events with info=user_count,subscription_count returns the counts per channel', async () => {
        const pch = uniq('presence-rest-');
        await members(pch, ['1', '1', '2']); // user 1 in two connections
        const res = await restCall(() => sdk.trigger(pch, 'x', {}, { info: 'user_count,subscription_count' }));
        ok200(res);
        assert.deepEqual(res.body.channels, { [pch]: { user_count: 2, subscription_count: 3 } });
        assert.deepEqual(Object.keys(res.body.ids), [pch]);
        const ch = uniq('rest-');
        await subscribers(ch, 2);
        const res2 = await restCall(() => sdk.trigger(ch, 'x', {}, { info: 'subscription_count' }));
        ok200(res2);
        assert.deepEqual(res2.body.channels, { [ch]: { subscription_count: 2 } });
    });

    test('POST /batch_events: {} and every item delivered with its own data', async () => {
        const c1 = uniq('batch-');
        const c2 = uniq('batch-');
        const [r] = await subscribers(c1, 1);
        const e2 = await r.subscribe(c2, { auth: '' });
        assert.equal(e2.msg.event, 'pusher_internal:subscription_succeeded');
        const res = await restCall(() => sdk.triggerBatch([
            { channel: c1, name: 'b1', data: { n: 1 } },
            { channel: c2, name: 'b2', data: 'two' },
        ]));
        ok200(res);
        const [id1, id2] = res.body.ids;
        assert.deepEqual(res.body, { ids: [id1, id2] });
        assert.deepEqual((await r.take({ event: 'b1', channel: c1 })).msg, { event: 'b1', data: '{"n":1}', channel: c1, id: id1 });
        assert.deepEqual((await r.take({ event: 'b2', channel: c2 })).msg, { event: 'b2', data: 'two', channel: c2, id: id2 });
    });

    test('POST /batch_events with info returns an index-aligned batch array', async () => {
        const pch = uniq('presence-batch-');
        await members(pch, ['a', 'b', 'b']);
        const ch = uniq('batch-');
        await subscribers(ch, 2);
        const res = await restCall(() => sdk.triggerBatch([
            { channel: ch, name: 'n1', data: {} },
            { channel: pch, name: 'n2', data: {}, info: 'user_count,subscription_count' },
            { channel: ch, name: 'n3', data: {}, info: 'subscription_count' },
        ]));
        ok200(res);
        assert.deepEqual(res.body.batch, [{}, { user_count: 2, subscription_count: 3 }, { subscription_count: 2 }]);
        assert.equal(res.body.ids.length, 3);
    });

    test('POST /batch_events with a socket_id excludes that connection for that item', async () => {
        const ch = uniq('batch-');
        const [a, b] = await subscribers(ch, 2);
        const res = await restCall(() => sdk.triggerBatch([
            { channel: ch, name: 'skip-a', data: {}, socket_id: a.socketId },
            { channel: ch, name: 'all', data: {} },
        ]));
        ok200(res);
        await b.take({ event: 'skip-a' });
        await a.take({ event: 'all' });
        assert.equal(a.count({ event: 'skip-a' }), 0);
    });

    test('GET /channels lists occupied channels only, filter_by_prefix narrows it', async () => {
        const prefix = uniq('lst-') + '-';
        const c1 = prefix + 'one';
        const c2 = prefix + 'two';
        const [r] = await subscribers(c1, 1);
        await r.subscribe(c2, { auth: '' });
        await sdk.trigger(prefix + 'nobody', 'x', {}); // published to, never subscribed: not listed
        const all = await restCall(() => sdk.get({ path: '/channels' }));
        ok200(all);
        assert.deepEqual(all.body.channels[c1], {});
        assert.deepEqual(all.body.channels[c2], {});
        assert.equal(all.body.channels[prefix + 'nobody'], undefined);
        const filtered = await restCall(() => sdk.get({ path: '/channels', params: { filter_by_prefix: prefix } }));
        ok200(filtered);
        assert.deepEqual(filtered.body, { channels: { [c1]: {}, [c2]: {} } });
        r.send({ event: 'pusher:unsubscribe', data: { channel: c2 } });
        await r.ping();
        await until(async () => {
            const again = await restCall(() => sdk.get({ path: '/channels', params: { filter_by_prefix: prefix } }));
            return again.body && JSON.stringify(again.body) === JSON.stringify({ channels: { [c1]: {} } });
        }, 'c2 to disappear from the list', 2000);
    });

    test('GET /channels?filter_by_prefix=presence-…&info=user_count returns user counts', async () => {
        const prefix = uniq('presence-lst-') + '-';
        await members(prefix + 'a', ['1', '2', '2']);
        await members(prefix + 'b', ['9']);
        const res = await restCall(() => sdk.get({ path: '/channels', params: { filter_by_prefix: prefix, info: 'user_count' } }));
        ok200(res);
        assert.deepEqual(res.body, { channels: { [prefix + 'a']: { user_count: 2 }, [prefix + 'b']: { user_count: 1 } } });
    });

    test('GET /channels?info=user_count without a presence- prefix is 400', async () => {
        const res = await restCall(() => sdk.get({ path: '/channels', params: { info: 'user_count' } }));
        assert.equal(res.status, 400);
        const res2 = await restCall(() => sdk.get({ path: '/channels', params: { filter_by_prefix: 'private-', info: 'user_count' } }));
        assert.equal(res2.status, 400);
    });

    test('GET /channels/{name}: occupied with subscription_count / user_count, unoccupied false', async () => {
        const ch = uniq('one-');
        await subscribers(ch, 2);
        const res = await restCall(() => sdk.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } }));
        ok200(res);
        assert.deepEqual(res.body, { occupied: true, subscription_count: 2 });
        const plain = await restCall(() => sdk.get({ path: `/channels/${ch}` }));
        ok200(plain);
        assert.equal(plain.body.occupied, true);
        const pch = uniq('presence-one-');
        await members(pch, ['x', 'y', 'x']);
        const pres = await restCall(() => sdk.get({ path: `/channels/${pch}`, params: { info: 'user_count,subscription_count' } }));
        ok200(pres);
        assert.deepEqual(pres.body, { occupied: true, user_count: 2, subscription_count: 3 });
        const empty = await restCall(() => sdk.get({ path: `/channels/${uniq('nobody-')}` }));
        ok200(empty);
        assert.deepEqual(empty.body, { occupied: false });
    });

    test('GET /channels/{name}: a channel becomes unoccupied when its last subscriber leaves', async () => {
        const ch = uniq('leave-');
        const [r] = await subscribers(ch, 1);
        const before_ = await restCall(() => sdk.get({ path: `/channels/${ch}` }));
        assert.equal(before_.body.occupied, true);
        r.terminate();
        await until(async () => (await restCall(() => sdk.get({ path: `/channels/${ch}` }))).body?.occupied === false,
            'the channel to become unoccupied', 2000);
    });

    test('GET /channels/{name}?info=user_count on a non-presence channel is 400', async () => {
        const ch = uniq('one-');
        await subscribers(ch, 1);
        const res = await restCall(() => sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count' } }));
        assert.equal(res.status, 400);
    });

    test('GET /channels/{name}/users lists presence user ids once each', async () => {
        const pch = uniq('presence-users-');
        await members(pch, ['10', '20', '10']);
        const res = await restCall(() => sdk.get({ path: `/channels/${pch}/users` }));
        ok200(res);
        assert.deepEqual(Object.keys(res.body), ['users']);
        assert.deepEqual([...res.body.users].sort((a, b) => a.id.localeCompare(b.id)), [{ id: '10' }, { id: '20' }]);
    });

    test('GET /channels/{name}/users on a non-presence channel is 400', async () => {
        const ch = uniq('pub-users-');
        await subscribers(ch, 1);
        const res = await restCall(() => sdk.get({ path: `/channels/${ch}/users` }));
        assert.equal(res.status, 400);
        const res2 = await restCall(() => sdk.get({ path: `/channels/${uniq('private-users-')}/users` }));
        assert.equal(res2.status, 400);
    });

    test('limits (APPS.small): 3 channels per event pass, 4 → 400 and nothing is delivered', async () => {
        const small = s.pinned(server, APPS.small); // one HTTP connection: the control comes after
        const chs = [uniq('l-'), uniq('l-'), uniq('l-'), uniq('l-')];
        const [r] = await subscribers(chs[0], 1, APPS.small);
        ok200(await restCall(() => small.trigger(chs.slice(0, 3), 'three', {})));
        await r.take({ event: 'three' });
        const res = await restCall(() => small.trigger(chs, 'four', {}));
        assert.equal(res.status, 400);
        await small.trigger(chs[0], 'control', {});
        await r.take({ event: 'control' });
        assert.equal(r.count({ event: 'four' }), 0, 'a refused request published anyway');
    });

    test('limits (APPS.small): a batch of 2 passes, a batch of 3 → 400', async () => {
        const small = rest(server, APPS.small);
        const ch = uniq('l-');
        ok200(await restCall(() => small.triggerBatch([{ channel: ch, name: 'a', data: {} }, { channel: ch, name: 'b', data: {} }])));
        const res = await restCall(() => small.triggerBatch([
            { channel: ch, name: 'a', data: {} }, { channel: ch, name: 'b', data: {} }, { channel: ch, name: 'c', data: {} },
        ]));
        assert.equal(res.status, 400);
    });

    test('limits (APPS.small): data of 100 bytes passes, 101 bytes → 413 (events and batch items)', async () => {
        const small = s.pinned(server, APPS.small); // one HTTP connection: the control comes after
        const ch = uniq('l-');
        const [r] = await subscribers(ch, 1, APPS.small);
        ok200(await restCall(() => small.trigger(ch, 'fits', 'x'.repeat(100))));
        const e = await r.take({ event: 'fits' });
        assert.equal(e.msg.data, 'x'.repeat(100));
        assert.equal((await restCall(() => small.trigger(ch, 'big', 'x'.repeat(101)))).status, 413);
        // multi-byte characters count as bytes: 34 × 3 = 102
        assert.equal((await restCall(() => small.trigger(ch, 'big', '€'.repeat(34)))).status, 413);
        const b = await restCall(() => small.triggerBatch([{ channel: ch, name: 'big', data: 'y'.repeat(101) }]));
        assert.equal(b.status, 413);
        await small.trigger(ch, 'control', {});
        await r.take({ event: 'control' });
        assert.equal(r.count({ event: 'big' }), 0);
    });

    test('event names starting with pusher: are refused with 400', async () => {
        const ch = uniq('res-');
        const res = await restCall(() => sdk.trigger(ch, 'pusher:subscription_succeeded', {}));
        assert.equal(res.status, 400);
    });

    test('event names starting with pusher_internal: are refused with 400', async () => {
        const ch = uniq('presence-res-');
        const [r] = await members(ch, ['1']);
        const pub = s.pinned(server); // one HTTP connection: the control comes after
        const res = await restCall(() => pub.trigger(ch, 'pusher_internal:member_added', { user_id: 'evil' }));
        assert.equal(res.status, 400);
        const b = await restCall(() => pub.triggerBatch([{ channel: ch, name: 'pusher_internal:member_removed', data: {} }]));
        assert.equal(b.status, 400);
        await pub.trigger(ch, 'control', {});
        await r.take({ event: 'control' });
        assert.equal(r.count((m) => m.event.startsWith('pusher_internal:member')), 0);
    });

    test('event name of 200 characters passes, 201 → 400', async () => {
        const ch = uniq('evn-');
        const post = (name) => restCall(() => sdk.post({ path: '/events', body: { name, channels: [ch], data: '{}' } }));
        ok200(await post('e'.repeat(200)));
        assert.equal((await post('e'.repeat(201))).status, 400);
    });

    test('malformed bodies and channel names are 400', async () => {
        const ch = uniq('bad-');
        const post = (body) => restCall(() => sdk.post({ path: '/events', body }));
        assert.equal((await post({ channels: [ch], data: '{}' })).status, 400, 'missing name');
        assert.equal((await post({ name: 'x', channels: [ch] })).status, 400, 'missing data');
        assert.equal((await post({ name: 'x', data: '{}' })).status, 400, 'missing channels');
        assert.equal((await post({ name: 'x', channels: [], data: '{}' })).status, 400, 'empty channels');
        assert.equal((await post({ name: 'x', channels: ['bad name'], data: '{}' })).status, 400, 'bad channel name');
        assert.equal((await post({ name: 'x', channels: ['c'.repeat(201)], data: '{}' })).status, 400, 'channel name too long');
        assert.equal((await post({ batch: 'nope' })).status, 400, 'an object without name/channels');
        const b = await restCall(() => sdk.post({ path: '/batch_events', body: { batch: [{ name: 'x', data: '{}' }] } }));
        assert.equal(b.status, 400, 'batch item without channel');
    });

    test('a malformed socket_id is 400', async () => {
        const ch = uniq('sid-');
        for (const socketId of ['abc', '1.2.3', '12', '.5', '1.', '1.2a']) {
            const res = await restCall(() => sdk.post({ path: '/events', body: { name: 'x', channels: [ch], data: '{}', socket_id: socketId } }));
            assert.equal(res.status, 400, `socket_id ${socketId}`);
        }
    });

    test('unknown app id → 404', async () => {
        const ghost = rest(server, { id: 'no-such-app', key: APPS.main.key, secret: APPS.main.secret });
        const res = await restCall(() => ghost.trigger(uniq('x-'), 'x', {}));
        assert.equal(res.status, 404);
        const res2 = await restCall(() => ghost.get({ path: '/channels' }));
        assert.equal(res2.status, 404);
    });

    test('disabled app (APPS.disabled) → 403', async () => {
        const off = rest(server, APPS.disabled);
        assert.equal((await restCall(() => off.trigger(uniq('x-'), 'x', {}))).status, 403);
        assert.equal((await restCall(() => off.get({ path: '/channels' }))).status, 403);
    });

    test('an app\'s REST calls only see and reach that app\'s channels', async () => {
        const ch = uniq('iso-');
        const [r] = await subscribers(ch, 1, APPS.counted);
        const mainView = await restCall(() => sdk.get({ path: `/channels/${ch}` }));
        assert.deepEqual(mainView.body, { occupied: false });
        // both apps' SDKs over one HTTP connection (one worker): right-app is
        // published after wrong-app and reaches r after it would have
        const mainPub = s.pinned(server, APPS.main);
        const countedPub = s.pinned(server, APPS.counted, mainPub.pinnedAgent);
        await mainPub.trigger(ch, 'wrong-app', {});
        await countedPub.trigger(ch, 'right-app', {});
        await r.take({ event: 'right-app' });
        assert.equal(r.count({ event: 'wrong-app' }), 0);
    });
});
