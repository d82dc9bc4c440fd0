// Client events (client-*): relayed to the channel's other subscribers, never
// echoed, user_id on presence, refused on public / unsubscribed / encrypted
// channels, per-app switch, rate and size limits (docs/api.md; spec §6).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, subscribed, nextEvent } from './lib/harness.mjs';
import {
    scope, rawReady, uniq, record, connectionErrors, relayBarrier, pusherPing, sleep, until,
} from './lib/clients.mjs';

describe('client events', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark();
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // two (or more) raw connections subscribed to a private channel of app
    async function privatePair(app = APPS.main, prefix = 'private-ce-', n = 2) {
        const ch = uniq(prefix);
        const conns = [];
        for (let i = 0; i < n; i++) {
            const r = await rawReady(s, server, { app });
            const e = await r.subscribeAuthed(ch);
            assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded', JSON.stringify(e.msg));
            conns.push(r);
        }
        return { ch, conns };
    }

    test('client events: relayed verbatim to other subscribers, never echoed to the sender', async () => {
        const { ch, conns: [a, b, c] } = await privatePair(APPS.main, 'private-ce-', 3);
        a.send({ event: 'client-typing', channel: ch, data: { typing: true, who: 'a' } });
        const eb = await b.take({ event: 'client-typing', channel: ch });
        assert.deepEqual(eb.msg, { event: 'client-typing', data: { typing: true, who: 'a' }, channel: ch });
        await c.take({ event: 'client-typing', channel: ch });
        b.send({ event: 'client-ack', channel: ch, data: { ok: 1 } });
        const ea = await a.take({ event: 'client-ack', channel: ch });
        assert.deepEqual(ea.msg, { event: 'client-ack', data: { ok: 1 }, channel: ch });
        // an echo would be written to the sender by its own worker while it
        // handled the event: each sender's pong comes after it
        await a.ping();
        await b.ping();
        assert.equal(a.count({ event: 'client-typing' }), 0, 'sender received its own client event');
        assert.equal(b.count({ event: 'client-ack' }), 0, 'sender received its own client event');
        assert.equal(a.count('pusher:error') + b.count('pusher:error'), 0);
    });

    test('client events: pusher-js trigger() on a private channel reaches the other pusher-js client', async () => {
        const ch = uniq('private-ce-');
        const a = s.pusher(server);
        const b = s.pusher(server);
        const chA = await subscribed(a, ch);
        const chB = await subscribed(b, ch);
        const selfA = record(chA, 'client-msg');
        const got = nextEvent(chB, 'client-msg');
        assert.equal(chA.trigger('client-msg', { text: 'hi', n: [1, 2] }), true);
        assert.deepEqual((await got).data, { text: 'hi', n: [1, 2] });
        await pusherPing(a); // an echo would come before a's pong
        assert.equal(selfA.length, 0);
    });

    test('client events: string data is relayed as the same string', async () => {
        const { ch, conns: [a, b] } = await privatePair();
        a.send({ event: 'client-raw', channel: ch, data: 'plain string, not JSON' });
        const e = await b.take({ event: 'client-raw', channel: ch });
        assert.equal(e.msg.data, 'plain string, not JSON');
    });

    test('client events: on presence channels the relayed event carries the sender\'s user_id', async () => {
        const ch = uniq('presence-ce-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: 'alice', user_info: { name: 'A' } });
        const b = await rawReady(s, server);
        await b.subscribeAuthed(ch, { user_id: 'bob', user_info: { name: 'B' } });
        a.send({ event: 'client-move', channel: ch, data: { x: 1 } });
        const e = await b.take({ event: 'client-move', channel: ch });
        assert.deepEqual(e.msg, { event: 'client-move', data: { x: 1 }, channel: ch, user_id: 'alice' });
    });

    test('client events: a user_id supplied by the sender on a presence channel is replaced by the real one', async () => {
        const ch = uniq('presence-ce-');
        const a = await rawReady(s, server);
        await a.subscribeAuthed(ch, { user_id: 'alice' });
        const b = await rawReady(s, server);
        await b.subscribeAuthed(ch, { user_id: 'bob' });
        a.send({ event: 'client-spoof', channel: ch, data: { x: 2 }, user_id: 'bob' });
        const e = await b.take({ event: 'client-spoof', channel: ch });
        assert.equal(e.msg.user_id, 'alice');
    });

    test('client events: pusher-js on presence gets metadata.user_id of the sender; the sender\'s other tab receives it', async () => {
        const ch = uniq('presence-ce-');
        const a = s.pusher(server, { user: { id: 'u-a', info: {} } });
        const a2 = s.pusher(server, { user: { id: 'u-a', info: {} } });
        const b = s.pusher(server, { user: { id: 'u-b', info: {} } });
        const chA = await subscribed(a, ch);
        const chA2 = await subscribed(a2, ch);
        const chB = await subscribed(b, ch);
        const gotB = nextEvent(chB, 'client-wave');
        const gotA2 = nextEvent(chA2, 'client-wave');
        chA.trigger('client-wave', { hand: 'left' });
        const { data, meta } = await gotB;
        assert.deepEqual(data, { hand: 'left' });
        assert.equal(meta.user_id, 'u-a');
        const other = await gotA2;
        assert.equal(other.meta.user_id, 'u-a');
    });

    test('client events: on a public channel → pusher:error code null, not relayed, connection stays', async () => {
        const ch = uniq('pub-ce-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await b.subscribe(ch, { auth: '' });
        a.send({ event: 'client-nope', channel: ch, data: {} });
        const e = await a.take('pusher:error');
        assert.equal(typeof e.msg.data, 'object');
        assert.equal(e.msg.data.code, null);
        assert.equal(typeof e.msg.data.message, 'string');
        // control: a later client event of a's that reaches b (a public
        // channel takes none, so on a private one)
        await relayBarrier(a, b);
        assert.equal(b.count({ event: 'client-nope' }), 0);
        assert.equal(a.closeInfo, null);
    });

    test('client events: pusher-js trigger on a public channel surfaces a PusherError with code null', async () => {
        const ch = uniq('pub-ce-');
        const a = s.pusher(server);
        const errs = connectionErrors(a);
        const chA = await subscribed(a, ch);
        chA.trigger('client-x', { a: 1 });
        await until(() => errs.some((e) => e.type === 'PusherError'), 'a PusherError');
        const pe = errs.find((e) => e.type === 'PusherError');
        assert.equal(pe.data.code, null);
        assert.equal(a.connection.state, 'connected');
    });

    test('client events: on a channel the sender has not subscribed → pusher:error code null, not relayed', async () => {
        const { ch, conns: [b] } = await privatePair(APPS.main, 'private-ce-', 1);
        const a = await rawReady(s, server);
        a.send({ event: 'client-sneak', channel: ch, data: { x: 1 } });
        const e = await a.take('pusher:error');
        assert.equal(e.msg.data.code, null);
        assert.equal(typeof e.msg.data.message, 'string');
        // control: a subscribes now and relays on the same channel; the
        // refused event was handled before, so it would arrive first
        assert.equal((await a.subscribeAuthed(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        a.send({ event: 'client-control', channel: ch, data: {} });
        await b.take({ event: 'client-control', channel: ch });
        assert.equal(b.count({ event: 'client-sneak' }), 0);
    });

    test('client events: app with client_events false (APPS.noclient) → pusher:error 4301, not relayed', async () => {
        const { ch, conns: [a, b] } = await privatePair(APPS.noclient);
        a.send({ event: 'client-off', channel: ch, data: { x: 1 } });
        const e = await a.take('pusher:error');
        assert.equal(e.msg.data.code, 4301);
        assert.equal(typeof e.msg.data.message, 'string');
        // control from a's worker to b: the app relays no client events, so a
        // member_added (a joins a presence channel b is on)
        await relayBarrier(a, b, { presence: true });
        assert.equal(b.count({ event: 'client-off' }), 0);
        assert.equal(a.closeInfo, null);
    });

    test('client events: over the rate (APPS.small: 3/s) 6 at once → 3 relayed, 3 × pusher:error 4301, connection open', async () => {
        const { ch, conns: [a, b] } = await privatePair(APPS.small);
        for (let i = 0; i < 6; i++) a.send({ event: 'client-burst', channel: ch, data: { i } });
        await until(() => a.count('pusher:error') >= 3 && b.count({ event: 'client-burst' }) >= 3, '3 errors and 3 relayed');
        await a.ping(); // every answer to the six has arrived before the pong
        const errs = a.all('pusher:error');
        assert.equal(errs.length, 3, JSON.stringify(errs.map((e) => e.msg)));
        for (const e of errs) assert.equal(e.msg.data.code, 4301);
        assert.equal(a.closeInfo, null, 'connection closed');
        // the budget comes back (a wait about time: the rate is per second)
        await sleep(1100);
        a.send({ event: 'client-later', channel: ch, data: { ok: true } });
        const later = await b.take({ event: 'client-later', channel: ch });
        assert.deepEqual(later.msg.data, { ok: true });
        // client-later left a after the burst, on the same channel: any
        // relayed burst event is ahead of it
        assert.deepEqual(b.all({ event: 'client-burst' }).map((e) => e.msg.data.i), [0, 1, 2]);
        await a.ping();
        assert.equal(a.count('pusher:error'), 3);
    });

    test('client events: data over max_payload_bytes (APPS.small: 100) → pusher:error 4301, small data passes', async () => {
        const { ch, conns: [a, b] } = await privatePair(APPS.small);
        a.send({ event: 'client-big', channel: ch, data: { text: 'x'.repeat(150) } });
        const e = await a.take('pusher:error');
        assert.equal(e.msg.data.code, 4301);
        // control: same sender and channel, sent after the refused one
        a.send({ event: 'client-small', channel: ch, data: { text: 'x'.repeat(10) } });
        await b.take({ event: 'client-small', channel: ch });
        assert.equal(b.count({ event: 'client-big' }), 0);
        assert.equal(a.closeInfo, null);
    });

    test('client events: on a private-encrypted channel → pusher:error, not relayed', async () => {
        const { ch, conns: [a, b] } = await privatePair(APPS.main, 'private-encrypted-ce-');
        a.send({ event: 'client-plain', channel: ch, data: { leak: 'plaintext' } });
        const e = await a.take('pusher:error');
        assert.equal(e.msg.data.code, null);
        // control: a later client event of a's that reaches b (on a private
        // channel: encrypted ones take none)
        await relayBarrier(a, b);
        assert.equal(b.count({ event: 'client-plain' }), 0);
    });

    test('client events: allowed on private-cache and presence-cache channels too', async () => {
        const { ch, conns: [a, b] } = await privatePair(APPS.main, 'private-cache-ce-');
        a.send({ event: 'client-c', channel: ch, data: { v: 1 } });
        const e = await b.take({ event: 'client-c', channel: ch });
        assert.deepEqual(e.msg.data, { v: 1 });
        const pch = uniq('presence-cache-ce-');
        const p1 = await rawReady(s, server);
        await p1.subscribeAuthed(pch, { user_id: 'p1' });
        const p2 = await rawReady(s, server);
        await p2.subscribeAuthed(pch, { user_id: 'p2' });
        p2.send({ event: 'client-c', channel: pch, data: { v: 2 } });
        const pe = await p1.take({ event: 'client-c', channel: pch });
        assert.deepEqual(pe.msg, { event: 'client-c', data: { v: 2 }, channel: pch, user_id: 'p2' });
    });
});
