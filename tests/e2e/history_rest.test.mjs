// History over REST: GET /apps/{id}/channels/{name}/events (signed like every
// REST call) with after=<id>, before=<id>, from=oldest or none (the newest
// page) and limit 1-1000 (default 100): {"events":[{id, event, data,
// user_id?, published_at_ms}], "next": id | null}, events ascending; paging
// either way visits every kept event once. 404 for a channel the rules do
// not keep, 200 [] for a kept one without events, 400 for bad parameters
// and ids of another channel, 401 for a bad signature. And POST /events
// with "users": [...] instead of "channels" (each user's #server-to-user-
// channel, kept by default; max_users_per_event).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, restCall } from './lib/clients.mjs';
import {
    assertId, idsIn, rule, range, okBody, publishSeq, publishBatches, resume, checkResumed,
    history, signedHistory, pageAll, assertError,
} from './lib/history.mjs';

// keeps 3,000 events a channel; batches of 100
const DEEP = {
    id: 'deep-id', key: 'deep-key', secret: 'deep-secret', max_batch_events: 100,
    history: [rule('*', { max_events: 3000, max_age_s: 86400 })],
};
// keeps the newest 10 events of a channel
const SHORT = { id: 'short-id', key: 'short-key', secret: 'short-secret', history: [rule('*', { max_events: 10, max_age_s: 3600 })] };
// keeps persisted-* only
const ONLY = { id: 'only-id', key: 'only-key', secret: 'only-secret', history: [rule('persisted-*')] };
// keeps nothing
const OFF = { id: 'off-id', key: 'off-key', secret: 'off-secret', history: false };
// keeps client events on presence-chat-*
const CHAT = {
    id: 'chat-id', key: 'chat-key', secret: 'chat-secret', client_events: true,
    history: [rule('presence-chat-*', { client_events: true }), rule('*')],
};
// an event to at most 3 users
const FEW = { id: 'few-id', key: 'few-key', secret: 'few-secret', max_users_per_event: 3 };

const N = 2500;

describe('history REST', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), DEEP, SHORT, ONLY, OFF, CHAT, FEW] } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    describe('paging over 2,500 events', () => {
        const ch = uniq('deep-');
        let ids;
        let t0;
        let t1;
        let deep;
        before(async () => {
            deep = rest(server, DEEP);
            t0 = Date.now();
            ids = await publishBatches(deep, ch, 0, N, 100);
            t1 = Date.now();
            assert.equal(new Set(ids).size, N);
        });
        const get = (params) => history(deep, ch, params);
        const expectAll = (got) => {
            assert.equal(got.events.length, N, `visited ${got.events.length} events`);
            assert.deepEqual(got.events.map((e) => e.id), ids, 'ids not each once in publication order');
            assert.deepEqual(got.events.map((e) => e.data), range(0, N).map((i) => `{"seq":${i}}`));
        };

        test('forwards: from=oldest then after=next with limit 1000: every event once, in order', async () => {
            const got = await pageAll(get, { from: 'oldest' }, 'after', 1000);
            expectAll(got);
            assert.equal(got.pages[0], 1000, 'the first page is not full');
            assert.ok(got.pages.length <= 4, `pages ${got.pages}`);
        });

        test('forwards with the default limit (100 a page)', async () => {
            const got = await pageAll(get, { from: 'oldest' }, 'after', undefined);
            expectAll(got);
            assert.equal(got.pages[0], 100);
            assert.ok(got.pages.length <= 26, `pages ${got.pages}`);
        });

        test('backwards: the newest page then before=next with limit 1000: every event once, in order', async () => {
            const got = await pageAll(get, {}, 'before', 1000);
            expectAll(got);
            assert.equal(got.pages[0], 1000);
            assert.ok(got.pages.length <= 4, `pages ${got.pages}`);
        });

        test('backwards with the default limit: the newest page is the last 100 events', async () => {
            const first = await get({});
            assert.equal(first.status, 200, first.text);
            assert.deepEqual(first.body.events.map((e) => e.id), ids.slice(N - 100));
            assert.equal(first.body.next, ids[N - 100]);
            const got = await pageAll(get, {}, 'before', undefined);
            expectAll(got);
            assert.ok(got.pages.length <= 26, `pages ${got.pages}`);
        });

        test('pages start where asked: after=<id> and before=<id> in the middle, limit 1 and 1000', async () => {
            const a = await get({ after: ids[1234], limit: 5 });
            assert.equal(a.status, 200, a.text);
            assert.deepEqual(a.body.events.map((e) => e.id), ids.slice(1235, 1240));
            assert.equal(a.body.next, ids[1239]);
            const b = await get({ before: ids[1234], limit: 5 });
            assert.equal(b.status, 200, b.text);
            assert.deepEqual(b.body.events.map((e) => e.id), ids.slice(1229, 1234));
            assert.equal(b.body.next, ids[1229]);
            const one = await get({ from: 'oldest', limit: 1 });
            assert.equal(one.status, 200, one.text);
            assert.deepEqual(one.body.events.map((e) => e.id), [ids[0]]);
            assert.equal(one.body.next, ids[0]);
            const full = await get({ after: ids[99], limit: 1000 });
            assert.equal(full.status, 200, full.text);
            assert.deepEqual(full.body.events.map((e) => e.id), ids.slice(100, 1100));
            // the ends: nothing after the newest, nothing before the oldest
            const end = await get({ after: ids[N - 1] });
            assert.equal(end.status, 200, end.text);
            assert.deepEqual(end.body, { events: [], next: null });
            const start = await get({ before: ids[0] });
            assert.equal(start.status, 200, start.text);
            assert.deepEqual(start.body, { events: [], next: null });
        });

        test('each event is {id, event, data, published_at_ms}: data as triggered, no user_id for REST triggers, published_at_ms within the test\'s window', async () => {
            const got = await pageAll(get, { from: 'oldest' }, 'after', 1000);
            expectAll(got);
            for (const e of got.events) {
                assert.deepEqual(Object.keys(e).sort(), ['data', 'event', 'id', 'published_at_ms'], JSON.stringify(e));
                assert.equal(e.event, 'tick');
                assert.ok(Number.isInteger(e.published_at_ms), JSON.stringify(e));
                // one clock, ms resolution: allow a second either side
                assert.ok(e.published_at_ms >= t0 - 1000 && e.published_at_ms <= t1 + 1000,
                    `published_at_ms ${e.published_at_ms} outside [${t0}, ${t1}]`);
            }
        });
    });

    test('data comes back exactly as triggered (strings with quotes, escapes, non-ASCII; JSON as sent)', async () => {
        const ch = uniq('exact-');
        const datas = ['plain', 'with "quotes" and \\ backslash\nnew line\ttab', 'é€😀 ünïcödé', '{"a":[1,2,{"b":null}],"c":"d"}', '', ' '];
        const ids = [];
        for (const [i, d] of datas.entries()) {
            const body = await okBody(() => sdk.post({ path: '/events', body: { name: `ev-${i}`, channels: [ch], data: d } }));
            ids.push(idsIn(body)[ch]);
        }
        const res = await history(sdk, ch, { from: 'oldest' });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body.events.map(({ id, event, data }) => ({ id, event, data })),
            datas.map((d, i) => ({ id: ids[i], event: `ev-${i}`, data: d })));
    });

    test('user_id is kept for client events on presence channels (a rule with client_events: true)', async () => {
        const ch = uniq('presence-chat-');
        const a = await rawReady(s, server, { app: CHAT });
        const b = await rawReady(s, server, { app: CHAT });
        await a.subscribeAuthed(ch, { user_id: 'alice' });
        await b.subscribeAuthed(ch, { user_id: 'bob' });
        a.send({ event: 'client-line', channel: ch, data: '{"t":"hi"}' });
        const live = await b.take({ event: 'client-line', channel: ch });
        assertId(live.msg.id);
        const body = await okBody(() => rest(server, CHAT).trigger(ch, 'server-line', { t: 'yo' }));
        const res = await history(rest(server, CHAT), ch, { from: 'oldest' });
        assert.equal(res.status, 200, res.text);
        const [c, r] = res.body.events;
        assert.equal(res.body.events.length, 2);
        assert.deepEqual({ ...c, published_at_ms: 0 }, { id: live.msg.id, event: 'client-line', data: '{"t":"hi"}', user_id: 'alice', published_at_ms: 0 });
        assert.deepEqual({ ...r, published_at_ms: 0 }, { id: idsIn(body)[ch], event: 'server-line', data: '{"t":"yo"}', published_at_ms: 0 });
    });

    test('retention: max_events 10 → after 30 events the history holds the newest 10', async () => {
        const short = rest(server, SHORT);
        const ch = uniq('short-');
        const ids = await publishSeq(short, ch, 1, 31);
        const res = await history(short, ch, { from: 'oldest' });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body.events.map((e) => e.id), ids.slice(20));
        assert.deepEqual(res.body.events.map((e) => e.data), range(21, 31).map((i) => `{"seq":${i}}`));
        const newest = await history(short, ch, {});
        assert.equal(newest.status, 200, newest.text);
        assert.deepEqual(newest.body.events.map((e) => e.id), ids.slice(20));
    });

    test('a channel the rules do not keep → 404 with a message; a kept one → 200', async () => {
        const kept = uniq('kept-');
        await sdk.trigger(kept, 'ev', {});
        const ok = await history(sdk, kept, {});
        assert.equal(ok.status, 200, ok.text);
        assert.equal(ok.body.events.length, 1);
        for (const ch of [uniq('cache-'), uniq('private-cache-'), uniq('presence-cache-'), uniq('private-encrypted-cache-')]) {
            // published to first: a server that kept it would answer 200
            const pubRes = await restCall(() => sdk.post({ path: '/events', body: { name: 'ev', channels: [ch], data: '{"nonce":"AAAA","ciphertext":"AAAA"}' } }));
            assert.equal(pubRes.status, 200, pubRes.text);
            assertError(await history(sdk, ch, {}), 404, ch);
        }
        const only = rest(server, ONLY);
        const yes = uniq('persisted-');
        await only.trigger(yes, 'ev', {});
        assert.equal((await history(only, yes, {})).status, 200);
        for (const ch of [uniq('other-'), uniq('private-persisted-')]) {
            await only.trigger(ch, 'ev', {});
            assertError(await history(only, ch, { from: 'oldest' }), 404, ch);
        }
        const off = rest(server, OFF);
        const offCh = uniq('off-');
        await off.trigger(offCh, 'ev', {});
        assertError(await history(off, offCh, {}), 404, 'history: false');
    });

    test('a kept channel without events → 200 {events: [], next: null} whichever way it is asked', async () => {
        const ch = uniq('empty-');
        for (const params of [{}, { from: 'oldest' }, { limit: 1000 }, { from: 'oldest', limit: 1 }]) {
            const res = await history(sdk, ch, params);
            assert.equal(res.status, 200, `${JSON.stringify(params)}: ${res.text}`);
            assert.deepEqual(res.body, { events: [], next: null }, JSON.stringify(params));
        }
    });

    test('400: a malformed after/before, from other than oldest, limit out of range or not a number, two of after/before/from', async () => {
        const ch = uniq('bad-');
        const ids = await publishSeq(sdk, ch, 0, 3);
        const id = ids[1];
        const cases = [
            { after: 'x' }, { before: 'x' }, { after: 'a'.repeat(65) }, { before: '!!' }, { after: 'é' },
            { from: 'newest' }, { from: 'OLDEST' }, { from: '' }, { from: id },
            { limit: 0 }, { limit: 1001 }, { limit: -1 }, { limit: 'abc' }, { limit: '1.5' }, { limit: '' },
            { after: id, before: id }, { after: id, from: 'oldest' }, { before: id, from: 'oldest' },
            { after: id, before: id, from: 'oldest' },
        ];
        for (const params of cases) {
            assertError(await signedHistory(server, APPS.main, ch, params), 400, JSON.stringify(params));
        }
        // the good forms of the same on the same channel
        for (const params of [{ after: id }, { before: id }, { from: 'oldest' }, { limit: 1 }, { limit: 1000 }, {}]) {
            const res = await signedHistory(server, APPS.main, ch, params);
            assert.equal(res.status, 200, `${JSON.stringify(params)}: ${res.text}`);
        }
    });

    test('400: an id of another channel, or of the same channel name in another app', async () => {
        const a = uniq('chan-a-');
        const b = uniq('chan-b-');
        const [idA] = await publishSeq(sdk, a, 0, 3);
        await publishSeq(sdk, b, 0, 3);
        assertError(await history(sdk, b, { after: idA }), 400, 'after= an id of another channel');
        assertError(await history(sdk, b, { before: idA }), 400, 'before= an id of another channel');
        const counted = rest(server, APPS.counted);
        const [idOther] = await publishSeq(counted, b, 0, 2);
        assertError(await history(sdk, b, { after: idOther }), 400, 'after= an id of the same name in another app');
        assertError(await history(sdk, b, { before: idOther }), 400, 'before= an id of the same name in another app');
    });

    test('SQL-looking ids are 400 and leave history intact; channel names with - _ = @ , . ; work', async () => {
        const ch = uniq('hist-a_b=c@d,e.f;g-');
        const ids = await publishSeq(sdk, ch, 0, 3);
        const sqlish = ["' OR 1=1 --", "1' OR '1'='1", "x'; DROP TABLE events;--", '1 UNION SELECT * FROM sqlite_master',
            '"', "'", '%', '*', '\\', '#', '&', `${ids[0]}' OR '1'='1`, `${ids[0]};`, `${ids[0]} `];
        for (const bad of sqlish) {
            assertError(await signedHistory(server, APPS.main, ch, { after: bad }), 400, `after=${bad}`);
            assertError(await signedHistory(server, APPS.main, ch, { before: bad }), 400, `before=${bad}`);
        }
        // still all there, through the SDK and through the hand-made request
        const viaSdk = await history(sdk, ch, { from: 'oldest' });
        assert.equal(viaSdk.status, 200, viaSdk.text);
        assert.deepEqual(viaSdk.body.events.map((e) => e.id), ids);
        const viaHand = await signedHistory(server, APPS.main, ch, { after: ids[0] });
        assert.equal(viaHand.status, 200, viaHand.text);
        assert.deepEqual(viaHand.body.events.map((e) => e.id), ids.slice(1));
        // and a publish to another channel still works (the store is fine)
        await publishSeq(sdk, uniq('after-sql-'), 0, 1);
    });

    test('401: a wrong secret, or a parameter changed after signing', async () => {
        const ch = uniq('auth-');
        const [id] = await publishSeq(sdk, ch, 0, 2);
        const wrong = rest(server, { ...APPS.main, secret: 'not-the-secret' });
        assertError(await history(wrong, ch, {}), 401, 'wrong secret (SDK)');
        assertError(await signedHistory(server, APPS.main, ch, { from: 'oldest' }, { secret: 'nope' }), 401, 'wrong secret');
        assertError(await signedHistory(server, APPS.main, ch, { after: id, limit: 1 }, { override: { limit: '2' } }), 401, 'limit changed');
        assertError(await signedHistory(server, APPS.main, ch, { limit: 10 }, { override: { from: 'oldest' } }), 401, 'from added');
        const good = await signedHistory(server, APPS.main, ch, { after: id, limit: 1 });
        assert.equal(good.status, 200, good.text);
    });

    describe('events to many users', () => {
        const TOTAL = 500;
        const ONLINE = 250; // half of them offline, as the issue asks

        test(`users: one POST to ${TOTAL} users: the ${ONLINE} online get it live once, the others find it in their #server-to-user history, and resume it after signing in`, async () => {
            const tag = uniq('mu');
            const users = range(0, TOTAL).map((i) => `${tag}-${i}`);
            const pub = s.pinned(server);
            // three users were online before (they know an id), then left
            const leavers = users.slice(ONLINE, ONLINE + 3);
            const known = {};
            for (const u of leavers) {
                const r = await rawReady(s, server);
                await r.signin({ id: u });
                await r.subscribe(`#server-to-user-${u}`, { auth: '' });
                const body = await okBody(() => pub.sendToUser(u, 'hello', {}));
                known[u] = (await r.take({ event: 'hello' })).msg.id;
                assert.equal(known[u], idsIn(body)[`#server-to-user-${u}`]);
                r.terminate();
            }
            // the first ONLINE users are connected
            const online = [];
            for (let i = 0; i < ONLINE; i += 10) {
                online.push(...await Promise.all(users.slice(i, i + 10).map(async (u) => {
                    const r = await rawReady(s, server);
                    assert.equal((await r.signin({ id: u })).msg.event, 'pusher:signin_success');
                    const e = await r.subscribe(`#server-to-user-${u}`, { auth: '' });
                    assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded');
                    return r;
                })));
            }
            const res = await restCall(() => pub.post({ path: '/events', body: { name: 'broadcast', users, data: '{"n":1}' } }));
            assert.equal(res.status, 200, res.text);
            const liveIds = [];
            for (const [i, r] of online.entries()) {
                const e = await r.take({ event: 'broadcast' }, 10000);
                assert.equal(e.msg.channel, `#server-to-user-${users[i]}`);
                assert.equal(e.msg.data, '{"n":1}');
                assertId(e.msg.id);
                liveIds.push(e.msg.id);
            }
            // a later event from the same HTTP connection reached everyone: no second copy
            const ctl = await restCall(() => pub.post({ path: '/events', body: { name: 'control', users: users.slice(0, ONLINE), data: '{}' } }));
            assert.equal(ctl.status, 200, ctl.text);
            for (const r of online) {
                await r.take({ event: 'control' }, 10000);
                assert.equal(r.count({ event: 'broadcast' }), 1);
            }
            // the id an online user got is the one its history lists
            const h0 = await history(sdk, `#server-to-user-${users[0]}`, {});
            assert.equal(h0.status, 200, h0.text);
            assert.equal(h0.body.events.find((e) => e.event === 'broadcast')?.id, liveIds[0]);
            // every offline user finds it in history
            const offline = users.slice(ONLINE);
            for (let i = 0; i < offline.length; i += 25) {
                await Promise.all(offline.slice(i, i + 25).map(async (u) => {
                    const h = await history(sdk, `#server-to-user-${u}`, { from: 'oldest' });
                    assert.equal(h.status, 200, `${u}: ${h.text}`);
                    const got = h.body.events.filter((e) => e.event === 'broadcast');
                    assert.equal(got.length, 1, `${u}: ${h.text}`);
                    assert.equal(got[0].data, '{"n":1}');
                }));
            }
            // the leavers sign in again and resume from the id they knew
            for (const u of leavers) {
                const r = await rawReady(s, server);
                await r.signin({ id: u });
                const rr = await resume(r, `#server-to-user-${u}`, known[u], { auth: '' });
                checkResumed(rr, `#server-to-user-${u}`, true, 1);
                assert.equal(rr.replayed[0].event, 'broadcast');
                assert.equal(rr.replayed[0].data, '{"n":1}');
            }
        });

        test('users and channels together → 400, nothing delivered or kept', async () => {
            const u = uniq('both');
            const ch = uniq('both-ch-');
            const pub = s.pinned(server);
            const r = await rawReady(s, server);
            await r.signin({ id: u });
            await r.subscribe(`#server-to-user-${u}`, { auth: '' });
            await r.subscribe(ch, { auth: '' });
            const res = await restCall(() => pub.post({ path: '/events', body: { name: 'both', users: [u], channels: [ch], data: '{}' } }));
            assertError(res, 400, 'users + channels');
            await okBody(() => pub.post({ path: '/events', body: { name: 'control', users: [u], data: '{}' } }));
            await okBody(() => pub.trigger(ch, 'control', {}));
            await r.take({ event: 'control', channel: `#server-to-user-${u}` });
            await r.take({ event: 'control', channel: ch });
            assert.equal(r.count({ event: 'both' }), 0);
            const h = await history(sdk, `#server-to-user-${u}`, {});
            assert.equal(h.status, 200, h.text);
            assert.deepEqual(h.body.events.map((e) => e.event), ['control']);
            const hc = await history(sdk, ch, {});
            assert.equal(hc.status, 200, hc.text);
            assert.deepEqual(hc.body.events.map((e) => e.event), ['control']);
        });

        test('a user named twice gets the event once, keeps it once, and the answer names its channel once', async () => {
            const pub = s.pinned(server);
            const u = uniq('twice');
            const other = uniq('once');
            const r = await rawReady(s, server);
            await r.signin({ id: u });
            await r.subscribe(`#server-to-user-${u}`, { auth: '' });
            const res = await restCall(() => pub.post({ path: '/events', body: { name: 'dup', users: [u, other, u], data: '{}' } }));
            assert.equal(res.status, 200, res.text);
            const key = JSON.stringify(`#server-to-user-${u}`);
            assert.equal(res.text.split(key).length - 1, 1, `the answer names ${key} once: ${res.text}`);
            assert.deepEqual(Object.keys(res.body.ids).sort(), [`#server-to-user-${other}`, `#server-to-user-${u}`].sort());
            await r.take({ event: 'dup' });
            await okBody(() => pub.post({ path: '/events', body: { name: 'control', users: [u], data: '{}' } }));
            await r.take({ event: 'control' });
            assert.equal(r.count({ event: 'dup' }), 1, 'delivered once');
            const h = await history(sdk, `#server-to-user-${u}`, {});
            assert.equal(h.status, 200, h.text);
            assert.deepEqual(h.body.events.map((e) => e.event), ['dup', 'control']);
        });

        test('users over max_users_per_event (3) → 400, nothing delivered or kept; 3 users pass', async () => {
            const few = s.pinned(server, FEW);
            const users = range(0, 4).map(() => uniq('few'));
            const r = await rawReady(s, server, { app: FEW });
            await r.signin({ id: users[0] });
            await r.subscribe(`#server-to-user-${users[0]}`, { auth: '' });
            const over = await restCall(() => few.post({ path: '/events', body: { name: 'over', users, data: '{}' } }));
            assertError(over, 400, '4 users');
            const ok = await restCall(() => few.post({ path: '/events', body: { name: 'three', users: users.slice(0, 3), data: '{}' } }));
            assert.equal(ok.status, 200, ok.text);
            await r.take({ event: 'three' });
            assert.equal(r.count({ event: 'over' }), 0);
            const fewSdk = rest(server, FEW);
            for (const u of users) {
                const h = await history(fewSdk, `#server-to-user-${u}`, {});
                assert.equal(h.status, 200, h.text);
                assert.deepEqual(h.body.events.map((e) => e.event), u === users[3] ? [] : ['three'], u);
            }
        });
    });
});
