// Channels: public / private / private-encrypted subscriptions, REST
// delivery, unsubscribe, socket_id exclusion, multi-channel triggers, name
// validation, idempotent re-subscribe, ordering and subscription_count
// (docs/api.md "WebSocket", "HTTP API"; spec §3.3, §4, §5, §8.3).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import { APPS, startHark, rest, subscribed, nextEvent, connected } from './lib/harness.mjs';
import {
    scope, rawReady, uniq, channelAuth, record, atLeast, restWithKey, newMasterKey, relayBarrier,
    encryptedClient, until,
} from './lib/clients.mjs';

describe('channels', () => {
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

    test('public: pusher-js receives a REST-triggered event with the exact data', async () => {
        const ch = uniq('pub-');
        const c = s.pusher(server);
        const channel = await subscribed(c, ch);
        const got = nextEvent(channel, 'greeting');
        const payload = { text: 'hello', n: 42, nested: { ok: true, list: [1, 'two', null] }, uni: 'é✓' };
        await sdk.trigger(ch, 'greeting', payload);
        const { data } = await got;
        assert.deepEqual(data, payload);
    });

    test('public: the relayed frame is exactly {event, data (the published string), channel, id}', async () => {
        const ch = uniq('pub-');
        const r = await rawReady(s, server);
        const sub = await r.subscribe(ch, { auth: '' });
        assert.deepEqual(sub.msg, { event: 'pusher_internal:subscription_succeeded', data: '{}', channel: ch });
        const dataString = '{"text":"hi","quote":"\\"q\\"","slash":"a/b"}';
        const res = await sdk.trigger(ch, 'new-message', dataString);
        const { ids } = await res.json(); // kept by the default history rules
        const e = await r.take({ event: 'new-message', channel: ch });
        assert.deepEqual(e.msg, { event: 'new-message', data: dataString, channel: ch, id: ids[ch] });
    });

    test('private: pusher-js with a valid signature subscribes and receives events', async () => {
        const ch = uniq('private-');
        const c = s.pusher(server);
        const channel = await subscribed(c, ch);
        const got = nextEvent(channel, 'secret');
        await sdk.trigger(ch, 'secret', { v: 1 });
        assert.deepEqual((await got).data, { v: 1 });
    });

    test('private: pusher-js with a wrong signature gets pusher:subscription_error AuthError 401', async () => {
        const ch = uniq('private-');
        const c = s.pusher(server, { badAuth: true });
        await connected(c);
        const channel = c.subscribe(ch);
        const { data } = await nextEvent(channel, 'pusher:subscription_error');
        assert.equal(data.type, 'AuthError');
        assert.equal(data.status, 401);
        assert.equal(typeof data.error, 'string');
        assert.equal(channel.subscribed, false);
    });

    test('private: a wrong signature gets the exact subscription_error frame and the connection stays', async () => {
        const ch = uniq('private-');
        const r = await rawReady(s, server);
        const e = await r.subscribe(ch, { auth: `${APPS.main.key}:${'0'.repeat(64)}` });
        assert.equal(e.msg.event, 'pusher:subscription_error');
        assert.equal(e.msg.channel, ch);
        assert.equal(typeof e.msg.data, 'object', 'data is an object, not a string');
        assert.deepEqual(Object.keys(e.msg.data).sort(), ['error', 'status', 'type']);
        assert.equal(e.msg.data.type, 'AuthError');
        assert.equal(e.msg.data.status, 401);
        assert.equal(typeof e.msg.data.error, 'string');
        await r.ping();
        const ok = await r.subscribeAuthed(ch);
        assert.equal(ok.msg.event, 'pusher_internal:subscription_succeeded', 'a correct retry works on the same connection');
    });

    test('private: missing auth, another socket\'s signature and another app\'s key are all AuthError 401', async () => {
        const ch = uniq('private-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        const cases = [
            {},
            { auth: '' },
            { auth: channelAuth(APPS.main, a.socketId, ch) }, // signed for a's socket id
            { auth: channelAuth({ ...APPS.main, key: APPS.counted.key }, b.socketId, ch) }, // wrong key prefix
            { auth: channelAuth(APPS.counted, b.socketId, ch) }, // another app's key and secret
        ];
        for (const extra of cases) {
            const e = await b.subscribe(ch, extra);
            assert.equal(e.msg.event, 'pusher:subscription_error', `for ${JSON.stringify(extra)}`);
            assert.equal(e.msg.data.type, 'AuthError', `for ${JSON.stringify(extra)}`);
            assert.equal(e.msg.data.status, 401, `for ${JSON.stringify(extra)}`);
        }
        await b.ping();
    });

    test('private-encrypted: a signed subscription succeeds and a REST {nonce,ciphertext} data string is relayed unchanged', async () => {
        const ch = uniq('private-encrypted-');
        const master = newMasterKey();
        const sdkE = restWithKey(server, APPS.main, master);
        const r = await rawReady(s, server);
        const sub = await r.subscribeAuthed(ch);
        assert.deepEqual(sub.msg, { event: 'pusher_internal:subscription_succeeded', data: '{}', channel: ch });
        const key = sdkE.channelSharedSecret(ch);
        const nonce = nacl.randomBytes(24);
        const box = nacl.secretbox(Buffer.from(JSON.stringify({ msg: 'top secret' })), nonce, key);
        const dataString = JSON.stringify({
            nonce: Buffer.from(nonce).toString('base64'),
            ciphertext: Buffer.from(box).toString('base64'),
        });
        const res = await sdkE.post({ path: '/events', body: { name: 'sealed', channels: [ch], data: dataString } });
        assert.equal(res.status, 200);
        const e = await r.take({ event: 'sealed', channel: ch });
        assert.equal(e.msg.data, dataString);
        const { ids } = await res.json();
        assert.deepEqual(e.msg, { event: 'sealed', data: dataString, channel: ch, id: ids[ch] });
    });

    test('private-encrypted: pusher-js decrypts an event the SDK encrypted (end to end through hark)', async () => {
        const ch = uniq('private-encrypted-');
        const master = newMasterKey();
        const c = encryptedClient(s, server, master);
        const channel = await subscribed(c, ch);
        const got = nextEvent(channel, 'sealed');
        await restWithKey(server, APPS.main, master).trigger(ch, 'sealed', { msg: 'top secret', n: 7 });
        assert.deepEqual((await got).data, { msg: 'top secret', n: 7 });
    });

    test('unsubscribe: events after pusher:unsubscribe no longer arrive', async () => {
        const ch = uniq('pub-');
        const ctl = uniq('pub-ctl-');
        const pub = s.pinned(server);
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await a.subscribe(ctl, { auth: '' });
        await b.subscribe(ch, { auth: '' });
        await pub.trigger(ch, 'before', { n: 1 });
        await a.take({ event: 'before', channel: ch });
        a.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        await a.ping(); // the unsubscribe has been processed
        await pub.trigger(ch, 'after', { n: 2 });
        await b.take({ event: 'after', channel: ch });
        // control to a from the same HTTP connection (worker), published later
        await pub.trigger(ctl, 'control', {});
        await a.take({ event: 'control', channel: ctl });
        assert.equal(a.count({ event: 'after' }), 0, 'unsubscribed connection got the event');
        assert.equal(a.count({ event: 'pusher:error' }), 0);
    });

    test('unsubscribe: pusher-js unsubscribe() stops delivery while another client still receives', async () => {
        const ch = uniq('pub-');
        const a = s.pusher(server);
        const b = s.pusher(server);
        const pub = s.pinned(server);
        const chA = await subscribed(a, ch);
        const chB = await subscribed(b, ch);
        // frames on a's connection (pusher-js itself drops events of a channel it left)
        const gotA = [];
        a.connection.bind('message', (m) => { if (m.channel === ch && m.event === 'tick') gotA.push(m); });
        a.unsubscribe(ch);
        // a round trip on a's connection: subscribe to another channel
        const ctl = await subscribed(a, uniq('pub-'));
        const gotB = nextEvent(chB, 'tick');
        const control = nextEvent(ctl, 'control');
        await pub.trigger(ch, 'tick', { n: 1 });
        await gotB;
        // published after the tick over the same HTTP connection (worker)
        await pub.trigger(ctl.name, 'control', {});
        await control;
        assert.equal(gotA.length, 0);
    });

    test('socket_id: the excluded connection does not receive the event, others do', async () => {
        const ch = uniq('pub-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await b.subscribe(ch, { auth: '' });
        const pub = s.pinned(server);
        await pub.trigger(ch, 'one', { n: 1 }, { socket_id: a.socketId });
        await pub.trigger(ch, 'two', { n: 2 });
        await b.take({ event: 'one', channel: ch });
        await b.take({ event: 'two', channel: ch });
        await a.take({ event: 'two', channel: ch });
        // same channel, same HTTP connection (worker): had 'one' reached a, it
        // would be there before 'two'
        assert.deepEqual(a.events(ch).map((e) => e.msg.event), ['pusher_internal:subscription_succeeded', 'two']);
    });

    test('socket_id: pusher-js client excluded by its own socket id (as toOthers() does)', async () => {
        const ch = uniq('private-');
        const a = s.pusher(server);
        const b = s.pusher(server);
        const pub = s.pinned(server);
        const chA = await subscribed(a, ch);
        const chB = await subscribed(b, ch);
        const gotA = record(chA, 'saved');
        const gotB = nextEvent(chB, 'saved');
        const control = nextEvent(chA, 'control');
        await pub.trigger(ch, 'saved', { id: 5 }, { socket_id: a.connection.socket_id });
        assert.deepEqual((await gotB).data, { id: 5 });
        // same channel, same HTTP connection (worker), published later
        await pub.trigger(ch, 'control', {});
        await control;
        assert.equal(gotA.length, 0);
    });

    test('trigger to several channels delivers once on each', async () => {
        const chs = [uniq('multi-'), uniq('private-multi-'), uniq('multi-')];
        const r = await rawReady(s, server);
        await r.subscribe(chs[0], { auth: '' });
        await r.subscribeAuthed(chs[1]);
        await r.subscribe(chs[2], { auth: '' });
        const other = await rawReady(s, server);
        await other.subscribe(chs[2], { auth: '' });
        const pub = s.pinned(server);
        const res = await pub.trigger(chs, 'fanout', { x: 'y' });
        const { ids } = await res.json();
        for (const ch of chs) {
            const e = await r.take({ event: 'fanout', channel: ch });
            assert.deepEqual(e.msg, { event: 'fanout', data: '{"x":"y"}', channel: ch, id: ids[ch] });
        }
        await other.take({ event: 'fanout', channel: chs[2] });
        // control from the same HTTP connection (worker), to both receivers
        await pub.trigger(chs[2], 'done', {});
        await r.take({ event: 'done', channel: chs[2] });
        await other.take({ event: 'done', channel: chs[2] });
        assert.equal(r.count({ event: 'fanout' }), 3);
        assert.equal(other.count({ event: 'fanout' }), 1);
    });

    test('invalid channel names get pusher:subscription_error InvalidChannel 400 and the connection stays', async () => {
        const r = await rawReady(s, server);
        for (const name of ['bad name', 'bad$chan', 'ch/slash', 'émoji✓', 'a:b', '']) {
            r.send({ event: 'pusher:subscribe', data: { channel: name, auth: '' } });
            const e = await r.take((m) => m.event === 'pusher:subscription_error'
                || (m.event === 'pusher_internal:subscription_succeeded' && m.channel === name));
            assert.equal(e.msg.event, 'pusher:subscription_error', `channel ${JSON.stringify(name)}`);
            assert.equal(e.msg.data.type, 'InvalidChannel', `channel ${JSON.stringify(name)}`);
            assert.equal(e.msg.data.status, 400, `channel ${JSON.stringify(name)}`);
        }
        await r.ping();
    });

    test('pusher:subscribe without a channel gets InvalidChannel 400', async () => {
        const r = await rawReady(s, server);
        r.send({ event: 'pusher:subscribe', data: { auth: '' } });
        const e = await r.take('pusher:subscription_error');
        assert.equal(e.msg.data.type, 'InvalidChannel');
        assert.equal(e.msg.data.status, 400);
        await r.ping();
    });

    test('channel name length: 200 characters are accepted, 201 are refused with InvalidChannel 400', async () => {
        const r = await rawReady(s, server);
        const base = uniq('len-');
        const ok = base + 'x'.repeat(200 - base.length);
        const long = base + 'x'.repeat(201 - base.length);
        assert.equal(ok.length, 200);
        assert.equal(long.length, 201);
        const e1 = await r.subscribe(ok, { auth: '' });
        assert.equal(e1.msg.event, 'pusher_internal:subscription_succeeded');
        const e2 = await r.subscribe(long, { auth: '' });
        assert.equal(e2.msg.event, 'pusher:subscription_error');
        assert.equal(e2.msg.data.type, 'InvalidChannel');
        assert.equal(e2.msg.data.status, 400);
        const pok = 'private-' + ok.slice(8);
        assert.equal(pok.length, 200);
        const e3 = await r.subscribeAuthed(pok);
        assert.equal(e3.msg.event, 'pusher_internal:subscription_succeeded', 'the 200 limit counts the prefix');
    });

    test('subscribing twice to the same channel is idempotent: second subscription_succeeded, one delivery per event', async () => {
        const ch = uniq('pub-');
        const ctl = uniq('pub-ctl-');
        const pub = s.pinned(server);
        const r = await rawReady(s, server);
        const first = await r.subscribe(ch, { auth: '' });
        assert.equal(first.msg.event, 'pusher_internal:subscription_succeeded');
        const second = await r.subscribe(ch, { auth: '' });
        assert.deepEqual(second.msg, { event: 'pusher_internal:subscription_succeeded', data: '{}', channel: ch });
        await r.subscribe(ctl, { auth: '' });
        await pub.trigger(ch, 'once', { n: 1 });
        await pub.trigger(ch, 'marker', {}); // same channel and HTTP connection, later
        await r.take({ event: 'marker', channel: ch });
        assert.equal(r.count({ event: 'once', channel: ch }), 1);
        const info = await (await sdk.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } })).json();
        assert.deepEqual(info, { occupied: true, subscription_count: 1 });
        // one unsubscribe is enough to leave
        r.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        await r.ping();
        await pub.trigger(ch, 'gone', {});
        await pub.trigger(ctl, 'control', {}); // same HTTP connection (worker), later
        await r.take({ event: 'control', channel: ctl });
        assert.equal(r.count({ event: 'gone' }), 0);
    });

    test('ordering: 200 events triggered back to back arrive in order on one channel', async () => {
        const ch = uniq('order-');
        const r = await rawReady(s, server);
        await r.subscribe(ch, { auth: '' });
        const c = s.pusher(server);
        const channel = await subscribed(c, ch);
        const seen = record(channel, 'seq');
        for (let i = 0; i < 200; i++) {
            await sdk.trigger(ch, 'seq', { i });
        }
        await until(() => r.count({ event: 'seq' }) >= 200, '200 events', 10000);
        await atLeast(seen, 200, 'pusher-js events', 5000);
        assert.deepEqual(r.all({ event: 'seq' }).map((e) => e.parsed.i), [...Array(200).keys()]);
        assert.deepEqual(seen.map((e) => e.data.i), [...Array(200).keys()]);
    });

    test('ordering: batches of events keep request order per channel', async () => {
        const ch = uniq('border-');
        const r = await rawReady(s, server);
        await r.subscribe(ch, { auth: '' });
        let i = 0;
        for (let b = 0; b < 10; b++) {
            const batch = [];
            for (let k = 0; k < 10; k++, i++) batch.push({ channel: ch, name: 'seq', data: { i } });
            await sdk.triggerBatch(batch);
        }
        await until(() => r.count({ event: 'seq' }) >= 100, '100 events', 5000);
        assert.deepEqual(r.all({ event: 'seq' }).map((e) => e.parsed.i), [...Array(100).keys()]);
    });

    test('subscription_count (app option): the first subscriber sees {subscription_count:2} when a second joins, 1 when it leaves', async () => {
        const ch = uniq('count-');
        const a = s.pusher(server, { app: APPS.counted });
        const chA = c_subscribe(a, ch);
        const counts = record(chA, 'pusher:subscription_count');
        await subscribedChannel(chA);
        const b = await rawReady(s, server, { app: APPS.counted });
        await b.subscribe(ch, { auth: '' });
        await until(() => counts.some((e) => e.data.subscription_count === 2), 'subscription_count 2', 5000);
        assert.deepEqual(counts.at(-1).data, { subscription_count: 2 });
        assert.equal(chA.subscriptionCount, 2);
        // the raw frame: data is a JSON string {"subscription_count":N}
        const f = await b.take({ event: 'pusher_internal:subscription_count', channel: ch });
        assert.equal(typeof f.msg.data, 'string');
        assert.deepEqual(f.parsed, { subscription_count: 2 });
        b.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        await until(() => counts.at(-1).data.subscription_count === 1, 'subscription_count 1', 5000);
        assert.deepEqual(counts.at(-1).data, { subscription_count: 1 });
    });

    test('subscription_count is not sent for apps without the option', async () => {
        const ch = uniq('nocount-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await b.subscribe(ch, { auth: '' });
        // a count would come from the worker of the connection that joined:
        // a control from each one's worker to the other (and the barrier's
        // own round trips for what each worker writes to its own connection)
        await relayBarrier(b, a);
        await relayBarrier(a, b);
        assert.equal(a.count('pusher_internal:subscription_count'), 0);
        assert.equal(b.count('pusher_internal:subscription_count'), 0);
    });
});

// pusher-js subscribe without waiting (so bindings exist before the reply).
function c_subscribe(c, name) {
    return c.subscribe(name);
}

function subscribedChannel(ch, ms = 5000) {
    return until(() => ch.subscribed, `subscription to ${ch.name}`, ms);
}
