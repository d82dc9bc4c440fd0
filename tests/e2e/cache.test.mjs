// Cache channels (cache-, private-cache-, presence-cache-,
// private-encrypted-cache-): pusher:cache_miss when empty, the last event
// replayed to a new subscriber right after subscription_succeeded, client
// events not cached, cache_ttl (docs/api.md; spec §3.3 step 7, §4.1).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, subscribed, nextEvent, connected } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, relayBarrier, pusherPing, sleep, until } from './lib/clients.mjs';

const TTL = { id: 'ttl-id', key: 'ttl-key', secret: 'ttl-secret', cache_ttl: 1 };

// The messages a raw client got on ch after (and including) its
// subscription_succeeded, as {event, ...} without the taken flag.
const onChannel = (r, ch) => r.events(ch).map((e) => e.msg);

// A raw client that joins a channel after events were published to it could
// also get them live, if its worker had not yet taken them from its inbox.
// This waits until r's worker has handled everything pinned SDK pub
// published before: a later event from the same HTTP connection reached r.
async function caughtUp(pub, r) {
    const ctl = uniq('ctl-');
    await r.subscribe(ctl, { auth: '' });
    await pub.trigger(ctl, 'caught-up', {});
    await r.take({ event: 'caught-up', channel: ctl });
}

describe('cache channels', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), TTL] } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('cache: subscribing to an empty cache- channel gets pusher:cache_miss right after subscription_succeeded', async () => {
        const ch = uniq('cache-');
        const r = await rawReady(s, server);
        await r.subscribe(ch, { auth: '' });
        const miss = await r.take({ event: 'pusher:cache_miss', channel: ch });
        assert.deepEqual(miss.msg, { event: 'pusher:cache_miss', channel: ch });
        assert.deepEqual(onChannel(r, ch).map((m) => m.event), ['pusher_internal:subscription_succeeded', 'pusher:cache_miss']);
    });

    test('cache: pusher-js emits pusher:cache_miss on the channel', async () => {
        const ch = uniq('cache-');
        const c = s.pusher(server);
        await connected(c);
        const channel = c.subscribe(ch);
        const miss = nextEvent(channel, 'pusher:cache_miss');
        await miss;
        assert.equal(channel.subscribed, true);
    });

    test('cache: a new subscriber gets the last published event (exact frame) and no cache_miss', async () => {
        const ch = uniq('cache-');
        const pub = s.pinned(server);
        await pub.trigger(ch, 'price', { v: 1 });
        await pub.trigger(ch, 'price', { v: 2 });
        await pub.trigger(ch, 'volume', { v: 3 });
        const r = await rawReady(s, server);
        await caughtUp(pub, r);
        await r.subscribe(ch, { auth: '' });
        await r.take({ event: 'volume', channel: ch });
        await r.ping(); // the replay is written while the subscribe is handled
        assert.deepEqual(onChannel(r, ch), [
            { event: 'pusher_internal:subscription_succeeded', data: '{}', channel: ch },
            { event: 'volume', data: '{"v":3}', channel: ch },
        ]);
    });

    test('cache: with subscription_count on, the cached event still comes right after subscription_succeeded, before pusher_internal:subscription_count', async () => {
        const ch = uniq('cache-');
        const pub = s.pinned(server, APPS.counted);
        await pub.trigger(ch, 'price', { v: 1 });
        const r = await rawReady(s, server, { app: APPS.counted });
        await caughtUp(pub, r);
        await r.subscribe(ch, { auth: '' });
        await r.take({ event: 'pusher_internal:subscription_count', channel: ch });
        await r.ping();
        assert.deepEqual(onChannel(r, ch).map((m) => m.event),
            ['pusher_internal:subscription_succeeded', 'price', 'pusher_internal:subscription_count']);
    });

    test('cache: pusher-js receives the cached event right after subscribing', async () => {
        const ch = uniq('cache-');
        const pub = s.pinned(server);
        await pub.trigger(ch, 'state', { mode: 'on', n: 5 });
        const c = s.pusher(server);
        await connected(c);
        // c's worker has handled the publish: a later one from the same HTTP
        // connection reached c (so 'state' cannot also arrive live)
        const ctl = await subscribed(c, uniq('ctl-'));
        const caught = nextEvent(ctl, 'caught-up');
        await pub.trigger(ctl.name, 'caught-up', {});
        await caught;
        const channel = c.subscribe(ch);
        const got = record(channel, 'state');
        const misses = record(channel, 'pusher:cache_miss');
        await until(() => got.length === 1, 'cached event');
        assert.deepEqual(got[0].data, { mode: 'on', n: 5 });
        await pusherPing(c); // the replay is written while the subscribe is handled
        assert.equal(got.length, 1);
        assert.equal(misses.length, 0);
    });

    test('cache: existing subscribers get a live event once; the cache holds it for later subscribers', async () => {
        const ch = uniq('cache-');
        const pub = s.pinned(server);
        const a = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await a.take('pusher:cache_miss');
        await pub.trigger(ch, 'live', { n: 1 });
        await a.take({ event: 'live', channel: ch });
        const b = await rawReady(s, server);
        await caughtUp(pub, b);
        await b.subscribe(ch, { auth: '' });
        await b.take({ event: 'live', channel: ch });
        await b.ping(); // b's replay (or cache_miss) is written while its subscribe is handled
        // a second 'live' at a could come from the publish or from b's
        // subscribe: a control from each origin, later, to a
        await pub.trigger(ch, 'control', {});
        await a.take({ event: 'control', channel: ch });
        await relayBarrier(b, a);
        assert.equal(a.count({ event: 'live' }), 1);
        assert.equal(b.count({ event: 'live' }), 1);
        assert.equal(b.count('pusher:cache_miss'), 0);
    });

    test('private-cache: cache_miss when empty, the last event after a REST trigger', async () => {
        const ch = uniq('private-cache-');
        const pub = s.pinned(server);
        const a = await rawReady(s, server);
        const sa = await a.subscribeAuthed(ch);
        assert.equal(sa.msg.event, 'pusher_internal:subscription_succeeded');
        await a.take({ event: 'pusher:cache_miss', channel: ch });
        await pub.trigger(ch, 'secret', { k: 'v' });
        const b = await rawReady(s, server);
        await caughtUp(pub, b);
        await b.subscribeAuthed(ch);
        const e = await b.take({ event: 'secret', channel: ch });
        assert.deepEqual(e.msg, { event: 'secret', data: '{"k":"v"}', channel: ch });
        await b.ping();
        assert.deepEqual(onChannel(b, ch).map((m) => m.event), ['pusher_internal:subscription_succeeded', 'secret']);
    });

    test('private-cache: a failed (unauthorized) subscription gets no cached event', async () => {
        const ch = uniq('private-cache-');
        await sdk.trigger(ch, 'secret', { k: 'v' });
        const r = await rawReady(s, server);
        const e = await r.subscribe(ch, { auth: `${APPS.main.key}:${'0'.repeat(64)}` });
        assert.equal(e.msg.event, 'pusher:subscription_error');
        await r.ping(); // a replay would be written while the subscribe is handled
        assert.equal(r.count({ event: 'secret' }), 0);
    });

    test('presence-cache: cache_miss when empty; later the last event after the presence subscription_succeeded', async () => {
        const ch = uniq('presence-cache-');
        const a = s.pusher(server, { user: { id: 'pa', info: { n: 1 } } });
        await connected(a);
        const chA = a.subscribe(ch);
        const missA = record(chA, 'pusher:cache_miss');
        await until(() => chA.subscribed && missA.length === 1, 'presence-cache subscription and cache_miss');
        const pub = s.pinned(server);
        await pub.trigger(ch, 'topic', { t: 'hello' });
        const b = await rawReady(s, server);
        await caughtUp(pub, b);
        const sb = await b.subscribeAuthed(ch, { user_id: 'pb', user_info: { n: 2 } });
        assert.equal(sb.msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal(sb.parsed.presence.count, 2);
        const e = await b.take({ event: 'topic', channel: ch });
        assert.equal(e.msg.data, '{"t":"hello"}');
        await b.ping(); // written while b's subscribe was handled, or not at all
        assert.equal(b.count('pusher:cache_miss'), 0);
        assert.deepEqual(onChannel(b, ch).map((m) => m.event), ['pusher_internal:subscription_succeeded', 'topic']);
    });

    test('private-encrypted-cache: the cached {nonce,ciphertext} string is replayed unchanged', async () => {
        const ch = uniq('private-encrypted-cache-');
        const dataString = '{"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"c2VjcmV0+/=="}';
        await sdk.post({ path: '/events', body: { name: 'enc', channels: [ch], data: dataString } });
        const r = await rawReady(s, server);
        await r.subscribeAuthed(ch);
        const e = await r.take({ event: 'enc', channel: ch });
        assert.equal(e.msg.data, dataString);
    });

    test('cache: client events are not cached (private-cache-)', async () => {
        const ch = uniq('private-cache-');
        await sdk.trigger(ch, 'server-said', { n: 1 });
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch);
        const b = await rawReady(s, server);
        await b.subscribeAuthed(ch);
        a.send({ event: 'client-said', channel: ch, data: { n: 2 } });
        await b.take({ event: 'client-said', channel: ch });
        const c = await rawReady(s, server);
        // c's worker has handled a's client event (so it cannot reach c live
        // once c joins): a later one from a reached c
        await relayBarrier(a, c);
        await c.subscribeAuthed(ch);
        const e = await c.take({ event: 'server-said', channel: ch });
        assert.equal(e.msg.data, '{"n":1}');
        await c.ping(); // the replay is written while the subscribe is handled
        assert.equal(c.count({ event: 'client-said' }), 0);
    });

    test('cache: a batch item on a cache channel is cached too; non-cache channels keep nothing', async () => {
        const ch = uniq('cache-');
        const plain = uniq('plain-');
        const pub = s.pinned(server);
        await pub.triggerBatch([{ channel: ch, name: 'b1', data: { i: 1 } }, { channel: ch, name: 'b2', data: { i: 2 } },
            { channel: plain, name: 'p', data: {} }]);
        const r = await rawReady(s, server);
        await caughtUp(pub, r);
        await r.subscribe(ch, { auth: '' });
        const e = await r.take({ event: 'b2', channel: ch });
        assert.equal(e.msg.data, '{"i":2}');
        await r.subscribe(plain, { auth: '' });
        await r.ping(); // replays are written while the subscribes are handled
        assert.deepEqual(onChannel(r, plain).map((m) => m.event), ['pusher_internal:subscription_succeeded']);
        assert.equal(r.count({ event: 'b1' }), 0);
    });

    test('cache: the cached event expires after cache_ttl (1 s app) → cache_miss', async () => {
        const ttlSdk = rest(server, TTL);
        const ch = uniq('cache-');
        await ttlSdk.trigger(ch, 'short', { n: 1 });
        const r1 = await rawReady(s, server, { app: TTL });
        await r1.subscribe(ch, { auth: '' });
        await r1.take({ event: 'short', channel: ch });
        r1.close();
        await sleep(2100); // > 2 × the 1 s TTL: whole-second clocks may round either way
        const r2 = await rawReady(s, server, { app: TTL });
        await r2.subscribe(ch, { auth: '' });
        await r2.take({ event: 'pusher:cache_miss', channel: ch });
        assert.equal(r2.count({ event: 'short' }), 0);
    });

    test('cache: caches are per app', async () => {
        const ch = uniq('cache-');
        await sdk.trigger(ch, 'main-only', {});
        const r = await rawReady(s, server, { app: APPS.counted });
        await r.subscribe(ch, { auth: '' });
        await r.take({ event: 'pusher:cache_miss', channel: ch });
        assert.equal(r.count({ event: 'main-only' }), 0);
    });
});
