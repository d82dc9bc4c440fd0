// Resume on subscribe: pusher:subscribe with "since": "<id>" gets, after
// pusher_internal:subscription_succeeded, every event of the channel kept
// after that id, in order and exactly as delivered live, then
// {"event":"hark:resumed","channel":…,"data":"{\"recovered\":true,\"count\":N}"},
// then live events, with no gap and no duplicate across the switch. When it
// cannot (beyond retention, over max_replay, a malformed id, an id of another
// channel, a channel history does not keep) nothing is replayed and
// hark:resumed says {"recovered":false,"count":0,"reason":"…"}; the
// subscription stays. #server-to-user-<id> resumes too. Without since
// nothing changes.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, pusherPing, channelAuth, until } from './lib/clients.mjs';
import { assertId, idsIn, rule, range, seqOf, okBody, publishSeq, publishBatches, resume, checkResumed } from './lib/history.mjs';

// room for a 1,000-event backlog plus what is published during its replay
const BIG = {
    id: 'big-id', key: 'big-key', secret: 'big-secret', max_batch_events: 100, max_replay: 5000,
    history: [rule('*', { max_events: 5000, max_age_s: 3600 })],
};
// keeps the newest 10 events of a channel
const SHORT = { id: 'short-id', key: 'short-key', secret: 'short-secret', history: [rule('*', { max_events: 10, max_age_s: 3600 })] };
// replays at most 5 events (default rules)
const REPLAY5 = { id: 'replay5-id', key: 'replay5-key', secret: 'replay5-secret', max_replay: 5 };
// keeps nothing
const OFF = { id: 'off-id', key: 'off-key', secret: 'off-secret', history: false };
// keeps client events on presence-chat-*
const CHAT = {
    id: 'chat-id', key: 'chat-key', secret: 'chat-secret', client_events: true, client_event_rate: 0,
    history: [rule('presence-chat-*', { client_events: true }), rule('*')],
};

const SUCCEEDED = 'pusher_internal:subscription_succeeded';

describe('history resume', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), BIG, SHORT, REPLAY5, OFF, CHAT] } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // A raw client of app subscribed to public ch.
    async function subscriber(ch, app = APPS.main) {
        const r = await rawReady(s, server, { app });
        const e = await r.subscribe(ch, { auth: '' });
        assert.equal(e.msg.event, SUCCEEDED, e.text);
        return r;
    }

    // The subscription of r to ch still works: an event published now reaches it.
    async function stillLive(r, ch, app = APPS.main) {
        const body = await okBody(() => rest(server, app).trigger(ch, 'after-resume', { live: true }));
        const e = await r.take({ event: 'after-resume', channel: ch });
        assert.equal(e.msg.data, '{"live":true}');
        return { id: idsIn(body)[ch], msg: e.msg };
    }

    // A barrier for "no replay / no hark:resumed came": a resume on a fresh
    // channel of the same connection, sent later, has completed (and a ping
    // after it came back).
    async function settled(r, app = APPS.main) {
        const ch = uniq('settle-');
        const [id] = await publishSeq(rest(server, app), ch, 0, 1);
        checkResumed(await resume(r, ch, id), ch, true, 0);
        await r.ping();
    }

    test('resume: a client that dropped gets the 50 events it missed, in order, exactly as delivered live, then hark:resumed {recovered:true,count:50}', async () => {
        const ch = uniq('feed-');
        const pub = s.pinned(server);
        const watcher = await subscriber(ch);
        const r1 = await subscriber(ch);
        const [id0] = await publishSeq(pub, ch, 0, 1);
        const e0 = await r1.take({ event: 'tick', channel: ch });
        assert.equal(e0.msg.id, id0, 'the live id is the one REST answered');
        r1.terminate();
        const ids = await publishSeq(pub, ch, 1, 51);
        await watcher.take((m) => m.channel === ch && m.data === '{"seq":50}');
        const live = watcher.events(ch, 'tick').map((e) => e.msg).slice(1);
        assert.equal(live.length, 50);

        const r2 = await rawReady(s, server);
        const res = await resume(r2, ch, e0.msg.id);
        assert.equal(res.reply.msg.event, SUCCEEDED);
        checkResumed(res, ch, true, 50);
        assert.deepEqual(res.replayed, live, 'replayed frames differ from the live ones');
        assert.deepEqual(res.replayed.map((m) => m.id), ids);
        assert.deepEqual(res.replayed.map(seqOf), range(1, 51));
        // the order on the wire: succeeded, the 50, hark:resumed
        assert.deepEqual(r2.events(ch).map((e) => e.msg.event), [SUCCEEDED, ...Array(50).fill('tick'), 'hark:resumed']);
        // then live, once: nothing of the 50 comes again
        await pub.trigger(ch, 'tick', { seq: 51 });
        await r2.take((m) => m.channel === ch && m.data === '{"seq":51}');
        await r2.ping();
        assert.deepEqual(r2.events(ch, 'tick').map((e) => seqOf(e.msg)), range(1, 52));
        assert.equal(r2.count('hark:resumed'), 1);
    });

    test('resume: private and presence channels replay after a signed subscribe; a refused subscribe replays nothing', async () => {
        const priv = uniq('private-conversation-');
        const pres = uniq('presence-room-');
        const pub = s.pinned(server);
        const [p0] = await publishSeq(pub, priv, 0, 1);
        const [q0] = await publishSeq(pub, pres, 0, 1);
        const pIds = await publishSeq(pub, priv, 1, 4);
        const qIds = await publishSeq(pub, pres, 1, 3);
        const r = await rawReady(s, server);
        const rp = await resume(r, priv, p0, { auth: channelAuth(APPS.main, r.socketId, priv) });
        checkResumed(rp, priv, true, 3);
        assert.deepEqual(rp.replayed, pIds.map((id, i) => ({ event: 'tick', channel: priv, data: `{"seq":${i + 1}}`, id })));
        const member = JSON.stringify({ user_id: 'm1', user_info: { n: 1 } });
        const rq = await resume(r, pres, q0, { auth: channelAuth(APPS.main, r.socketId, pres, member), channel_data: member });
        checkResumed(rq, pres, true, 2);
        assert.deepEqual(rq.replayed, qIds.map((id, i) => ({ event: 'tick', channel: pres, data: `{"seq":${i + 1}}`, id })));
        // a wrong signature: subscription_error, no history, no hark:resumed
        const bad = await rawReady(s, server);
        const rb = await resume(bad, priv, p0, { auth: `${APPS.main.key}:${'0'.repeat(64)}` });
        assert.equal(rb.reply.msg.event, 'pusher:subscription_error');
        await settled(bad);
        assert.equal(bad.count({ event: 'tick', channel: priv }), 0);
        assert.equal(bad.count({ event: 'hark:resumed', channel: priv }), 0);
    });

    test('resume: publishing continuously while a 1,000-event backlog replays: replay then live is every event once, in order', async () => {
        const ch = uniq('flow-');
        const pub = s.pinned(server, BIG);
        const [id0] = await publishSeq(pub, ch, 0, 1);
        await publishBatches(pub, ch, 1, 1001, 100);
        // a publisher that keeps going (seq 1001, 1002, …, 10 a request,
        // one request after the other) until told to stop
        let next = 1001;
        let stop = false;
        let failed = null;
        const loop = (async () => {
            while (!stop) {
                await pub.triggerBatch(range(next, next + 10).map((i) => ({ channel: ch, name: 'tick', data: { seq: i } })));
                next += 10;
            }
        })().catch((e) => { failed = e; });
        let r;
        try {
            await until(() => failed || next >= 1031, 'the publisher to get going', 10000);
            r = await rawReady(s, server, { app: BIG });
            const res = await resume(r, ch, id0, {}, 60000);
            assert.ok(res.resumed, `subscribe failed: ${res.reply.text}`);
            assert.equal(res.data.recovered, true, `hark:resumed ${res.resumed.msg.data}`);
            checkResumed(res, ch, true, res.replayed.length);
            assert.ok(res.replayed.length >= 1030, `only ${res.replayed.length} replayed`);
            assert.deepEqual(res.replayed.map(seqOf), range(1, res.replayed.length + 1), 'the replay is not seq 1, 2, …');
            // let the live flow run on past the switch
            const mark = next;
            await until(() => failed || next >= mark + 100, '100 more events published after hark:resumed', 30000);
        } finally {
            stop = true;
            await loop;
        }
        if (failed) throw failed;
        const last = next - 1;
        assert.ok(last > 1130);
        // every event 1..last, once, in order (replayed, then live)
        await r.take((m) => m.channel === ch && m.event === 'tick' && seqOf(m) === last, 20000);
        await r.ping();
        const got = r.events(ch, 'tick').map((e) => e.msg);
        assert.equal(got.length, last, `${got.length} events for ${last} published`);
        assert.deepEqual(got.map(seqOf), range(1, last + 1));
        got.forEach((m) => assertId(m.id));
        assert.equal(new Set(got.map((m) => m.id)).size, last, 'an id repeats');
        assert.deepEqual(r.events(ch).map((e) => e.msg.event).filter((e) => e !== 'tick'), [SUCCEEDED, 'hark:resumed']);
    });

    test('resume: beyond retention (max_events 10, 30 published): since = the first id → recovered:false with a reason; since = the 20th (trimmed) → the 10 kept', async () => {
        const ch = uniq('short-');
        const pub = s.pinned(server, SHORT);
        const ids = await publishSeq(pub, ch, 1, 31);
        const r1 = await rawReady(s, server, { app: SHORT });
        const gone = await resume(r1, ch, ids[0]);
        checkResumed(gone, ch, false);
        const r2 = await rawReady(s, server, { app: SHORT });
        const kept = await resume(r2, ch, ids[19]);
        checkResumed(kept, ch, true, 10);
        assert.deepEqual(kept.replayed.map(seqOf), range(21, 31));
        assert.deepEqual(kept.replayed.map((m) => m.id), ids.slice(20));
        // the refused one stays subscribed
        await stillLive(r1, ch, SHORT);
    });

    test('resume: max_replay 5: 5 missed events are replayed, 6 are not (recovered:false), from a later id 5 again', async () => {
        const ch = uniq('replay5-');
        const pub = s.pinned(server, REPLAY5);
        const ids = await publishSeq(pub, ch, 0, 6);
        const r1 = await rawReady(s, server, { app: REPLAY5 });
        const five = await resume(r1, ch, ids[0]);
        checkResumed(five, ch, true, 5);
        assert.deepEqual(five.replayed.map(seqOf), [1, 2, 3, 4, 5]);
        ids.push(...await publishSeq(pub, ch, 6, 7));
        const r2 = await rawReady(s, server, { app: REPLAY5 });
        const six = await resume(r2, ch, ids[0]);
        checkResumed(six, ch, false);
        const r3 = await rawReady(s, server, { app: REPLAY5 });
        const again = await resume(r3, ch, ids[1]);
        checkResumed(again, ch, true, 5);
        assert.deepEqual(again.replayed.map(seqOf), [2, 3, 4, 5, 6]);
        // the refused one stays subscribed
        await stillLive(r2, ch, REPLAY5);
    });

    test('resume: a malformed since ("x", "", 100 characters, SQL-like, spaces and non-ASCII) → recovered:false with a reason; the subscription works', async () => {
        const ch = uniq('malformed-');
        await publishSeq(sdk, ch, 0, 3);
        const bad = ['x', '', 'a'.repeat(100), "1' OR '1'='1", "'; DROP TABLE events; --", '1 2', 'é€😀', '../../../etc/passwd', '%00'];
        for (const since of bad) {
            const r = await rawReady(s, server);
            const res = await resume(r, ch, since);
            assert.equal(res.reply.msg.event, SUCCEEDED, `since ${JSON.stringify(since)}: ${res.reply.text}`);
            checkResumed(res, ch, false);
            await stillLive(r, ch);
            assert.equal(r.closeInfo, null, `closed after since ${JSON.stringify(since)}`);
            r.close();
        }
        // and history is intact: a good id still resumes
        const ids = await publishSeq(sdk, ch, 3, 5);
        const r = await rawReady(s, server);
        const res = await resume(r, ch, ids[0]);
        checkResumed(res, ch, true, 1);
        assert.deepEqual(res.replayed, [{ event: 'tick', channel: ch, data: '{"seq":4}', id: ids[1] }]);
    });

    test('resume: an id of another channel (and of the same name in another app) → recovered:false', async () => {
        const a = uniq('chan-a-');
        const b = uniq('chan-b-');
        const [idA] = await publishSeq(sdk, a, 0, 1);
        await publishSeq(sdk, b, 0, 3);
        const r = await rawReady(s, server);
        const res = await resume(r, b, idA);
        checkResumed(res, b, false);
        await stillLive(r, b);
        // the same channel name in another app is another channel
        const other = rest(server, APPS.counted);
        const [idOther] = await publishSeq(other, b, 0, 1);
        await publishSeq(sdk, b, 3, 5);
        const r2 = await rawReady(s, server);
        const res2 = await resume(r2, b, idOther);
        checkResumed(res2, b, false);
    });

    test('resume: since on a channel history does not keep (cache-, a history:false app) → recovered:false with a reason; the subscription works', async () => {
        const [goodId] = await publishSeq(sdk, uniq('source-'), 0, 1);
        // (nothing published to it before: a cached event would be sent on
        // subscribing, as for any cache channel)
        const cache = uniq('cache-');
        const r = await rawReady(s, server);
        const res = await resume(r, cache, goodId);
        checkResumed(res, cache, false);
        await stillLive(r, cache);
        const off = uniq('off-');
        const offSdk = rest(server, OFF);
        await offSdk.trigger(off, 'ev', {});
        const r2 = await rawReady(s, server, { app: OFF });
        const res2 = await resume(r2, off, goodId);
        checkResumed(res2, off, false);
        await stillLive(r2, off, OFF);
    });

    test('resume: since = the newest id → recovered:true, count 0, nothing replayed; live events follow', async () => {
        const ch = uniq('newest-');
        const ids = await publishSeq(sdk, ch, 0, 3);
        const r = await rawReady(s, server);
        const res = await resume(r, ch, ids[2]);
        checkResumed(res, ch, true, 0);
        assert.deepEqual(r.events(ch).map((e) => e.msg.event), [SUCCEEDED, 'hark:resumed']);
        const { id } = await stillLive(r, ch);
        assertId(id);
        assert.ok(!ids.includes(id));
    });

    test('resume: a cache channel kept by a rule: its cached last event is neither sent before the replay nor twice; a failed resume gets it after hark:resumed', async () => {
        const ch = uniq('cache-kept-');
        const sdkBig = rest(server, BIG);
        const ids = await publishSeq(sdkBig, ch, 0, 3);
        const shape = (r) => r.events(ch).map((e) => `${e.msg.event}${e.msg.id ? ' ' + e.msg.id : ''}`);
        // since = the first id: the two after it, once each, in order
        const r1 = await rawReady(s, server, { app: BIG });
        checkResumed(await resume(r1, ch, ids[0]), ch, true, 2);
        // since = the newest id: nothing (the cached event is that one)
        const r2 = await rawReady(s, server, { app: BIG });
        checkResumed(await resume(r2, ch, ids[2]), ch, true, 0);
        // a since that cannot be resumed: recovered:false, then the cached event
        const r3 = await rawReady(s, server, { app: BIG });
        checkResumed(await resume(r3, ch, 'not-an-id'), ch, false);
        // no since: the cached event, as for any cache channel
        const r4 = await rawReady(s, server, { app: BIG });
        assert.equal((await r4.subscribe(ch, { auth: '' })).msg.event, SUCCEEDED);
        await r4.take({ event: 'tick', channel: ch });
        for (const r of [r1, r2, r3, r4]) await settled(r, BIG);
        assert.deepEqual(shape(r1), [SUCCEEDED, `tick ${ids[1]}`, `tick ${ids[2]}`, 'hark:resumed']);
        assert.deepEqual(shape(r2), [SUCCEEDED, 'hark:resumed']);
        assert.deepEqual(shape(r3), [SUCCEEDED, 'hark:resumed', `tick ${ids[2]}`]);
        assert.deepEqual(shape(r4), [SUCCEEDED, `tick ${ids[2]}`]);
        await stillLive(r1, ch, BIG);
    });

    test('resume: 60 kept cache channels with 9 KB cached events, resumed at once from their newest ids: all recovered, no cached event sent (they never count as held live copies)', async () => {
        const sdkBig = rest(server, BIG);
        const big = 'x'.repeat(9000);
        const chans = [];
        const ids = [];
        for (let i = 0; i < 60; i++) {
            const ch = uniq('cache-many-');
            chans.push(ch);
            ids.push(idsIn(await okBody(() => sdkBig.trigger(ch, 'state', { big })))[ch]);
        }
        const r = await rawReady(s, server, { app: BIG });
        chans.forEach((ch, i) => r.send({ event: 'pusher:subscribe', data: { channel: ch, since: ids[i] } }));
        for (const ch of chans) await r.take({ event: 'hark:resumed', channel: ch }, 10000);
        await settled(r, BIG);
        for (const ch of chans) {
            const got = r.events(ch).map((e) => (e.msg.event === 'hark:resumed' ? `hark:resumed ${e.msg.data}` : e.msg.event));
            assert.deepEqual(got, [SUCCEEDED, 'hark:resumed {"recovered":true,"count":0}'], ch);
        }
    });

    test('resume: #server-to-user-<id> after pusher:signin replays what the user missed; not signed in or another user → AuthError, nothing', async () => {
        const user = uniq('u');
        const ch = `#server-to-user-${user}`;
        const pub = s.pinned(server);
        const r1 = await rawReady(s, server);
        assert.equal((await r1.signin({ id: user })).msg.event, 'pusher:signin_success');
        assert.equal((await r1.subscribe(ch, { auth: '' })).msg.event, SUCCEEDED);
        const b0 = await okBody(() => pub.sendToUser(user, 'notice', { seq: 0 }));
        const e0 = await r1.take({ event: 'notice', channel: ch });
        assert.equal(e0.msg.id, idsIn(b0)[ch]);
        r1.terminate();
        const missed = [];
        for (let i = 1; i <= 3; i++) missed.push(idsIn(await okBody(() => pub.sendToUser(user, 'notice', { seq: i })))[ch]);
        // not signed in: refused, nothing replayed
        const stranger = await rawReady(s, server);
        const rs = await resume(stranger, ch, e0.msg.id, { auth: '' });
        assert.equal(rs.reply.msg.event, 'pusher:subscription_error');
        assert.equal(rs.reply.msg.data.type, 'AuthError');
        // signed in as someone else: refused too
        const other = await rawReady(s, server);
        await other.signin({ id: `${user}x` });
        const ro = await resume(other, ch, e0.msg.id, { auth: '' });
        assert.equal(ro.reply.msg.event, 'pusher:subscription_error');
        // the user again
        const r2 = await rawReady(s, server);
        assert.equal((await r2.signin({ id: user })).msg.event, 'pusher:signin_success');
        const res = await resume(r2, ch, e0.msg.id, { auth: '' });
        checkResumed(res, ch, true, 3);
        assert.deepEqual(res.replayed, missed.map((id, i) => ({ event: 'notice', channel: ch, data: `{"seq":${i + 1}}`, id })));
        for (const c of [stranger, other]) {
            await settled(c);
            assert.equal(c.count({ event: 'notice' }), 0);
            assert.equal(c.count({ event: 'hark:resumed', channel: ch }), 0);
        }
    });

    test('resume: client events kept by a rule replay with user_id, exactly as delivered live (presence)', async () => {
        const ch = uniq('presence-chat-');
        const [id0] = await publishSeq(rest(server, CHAT), ch, 0, 1);
        const a = await rawReady(s, server, { app: CHAT });
        const b = await rawReady(s, server, { app: CHAT });
        await a.subscribeAuthed(ch, { user_id: 'alice' });
        await b.subscribeAuthed(ch, { user_id: 'bob' });
        await a.take({ event: 'pusher_internal:member_added', channel: ch });
        for (let i = 1; i <= 3; i++) a.send({ event: 'client-line', channel: ch, data: { seq: i } });
        await until(() => b.count({ event: 'client-line' }) === 3, 'the 3 client events at b');
        const live = b.events(ch, 'client-line').map((e) => e.msg);
        for (const m of live) {
            assertId(m.id);
            assert.equal(m.user_id, 'alice');
        }
        const c = await rawReady(s, server, { app: CHAT });
        const member = JSON.stringify({ user_id: 'carol' });
        const res = await resume(c, ch, id0, { auth: channelAuth(CHAT, c.socketId, ch, member), channel_data: member });
        checkResumed(res, ch, true, 3);
        assert.deepEqual(res.replayed, live);
    });

    test('resume: without since nothing changes: no replay and no hark:resumed (raw client and pusher-js)', async () => {
        const ch = uniq('plain-');
        await publishSeq(sdk, ch, 0, 3);
        const r = await rawReady(s, server);
        assert.equal((await r.subscribe(ch, { auth: '' })).msg.event, SUCCEEDED);
        await settled(r);
        assert.deepEqual(r.events(ch).map((e) => e.msg.event), [SUCCEEDED]);
        assert.equal(r.count({ event: 'hark:resumed', channel: ch }), 0);
        const c = s.pusher(server);
        await connected(c);
        const seen = [];
        c.bind_global((event, data) => seen.push(event));
        const channel = await subscribed(c, ch);
        const ticks = record(channel, 'tick');
        await pusherPing(c);
        assert.equal(seen.filter((e) => e === 'hark:resumed').length, 0);
        assert.equal(ticks.length, 0);
    });
});
