// The author of an event ("user_id", top level in the event frame, kept with
// the event and returned by history pages and replays): for a client event
// on a presence channel the sender's presence member id, on another channel
// the sending connection's sign-in user id (a user_id the client puts in its
// frame is ignored); for POST /events the body's "user_id" (a valid user id,
// else 400) or, without it, the signed-in user of the connection named by
// "socket_id" (which is excluded from delivery as usual); otherwise none.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, signedIn, pinnedRest, channelAuth, until } from './lib/clients.mjs';
import { assertId, history, resume, checkResumed, assertError } from './lib/history.mjs';
import { chatApp, signedInRaw, join, trigger, send, rawTrigger } from './lib/chat.mjs';

const CHAT = chatApp('author');

// The whole kept history of ch (one page), oldest first.
async function kept(server, ch) {
    const h = await history(rest(server, CHAT), ch, { from: 'oldest', limit: 1000 });
    assert.equal(h.status, 200, `history of ${ch}: ${h.text}`);
    return h.body.events;
}

// An event of a history page without its published_at_ms (checked to be a number).
function stripTime(e) {
    assert.equal(typeof e.published_at_ms, 'number', JSON.stringify(e));
    const { published_at_ms: _t, ...rest_ } = e;
    return rest_;
}

describe('chat: the author of an event', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, CHAT] } });
        sdk = rest(server, CHAT);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('author: a client event on a presence channel carries the presence member id (even when signed in as another user); a user_id in the frame is ignored; kept with it', async () => {
        const ch = uniq('presence-chat-');
        const a = await signedInRaw(s, server, uniq('signin-a-'), { app: CHAT });
        const memberA = uniq('member-a-');
        await join(a, ch, memberA);
        const b = await rawReady(s, server, { app: CHAT });
        const memberB = uniq('member-b-');
        await join(b, ch, memberB);
        a.send({ event: 'client-line', channel: ch, data: { t: 'hi' }, user_id: memberB });
        const e = await b.take({ event: 'client-line', channel: ch });
        assertId(e.msg.id);
        assert.deepEqual(e.msg, { event: 'client-line', channel: ch, data: { t: 'hi' }, user_id: memberA, id: e.msg.id });
        const events = await kept(server, ch);
        // a kept client event's data is the JSON it carried
        assert.deepEqual(events.map(stripTime), [{ id: e.msg.id, event: 'client-line', data: { t: 'hi' }, user_id: memberA }]);
    });

    test('author: a client event on a private channel carries the sender\'s sign-in user id; not signed in → none; a user_id in the frame is ignored either way', async () => {
        const ch = uniq('private-chat-');
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const a = await signedInRaw(s, server, alice, { app: CHAT });
        const b = await signedInRaw(s, server, bob, { app: CHAT });
        const anon = await rawReady(s, server, { app: CHAT });
        for (const r of [a, b, anon]) await join(r, ch);
        a.send({ event: 'client-msg', channel: ch, data: { n: 1 }, user_id: bob });
        const e1 = await b.take({ event: 'client-msg', channel: ch });
        assertId(e1.msg.id);
        assert.deepEqual(e1.msg, { event: 'client-msg', channel: ch, data: { n: 1 }, user_id: alice, id: e1.msg.id });
        anon.send({ event: 'client-msg', channel: ch, data: { n: 2 }, user_id: alice });
        const e2 = await b.take({ event: 'client-msg', channel: ch });
        assertId(e2.msg.id);
        assert.deepEqual(e2.msg, { event: 'client-msg', channel: ch, data: { n: 2 }, id: e2.msg.id });
        // the anonymous subscriber got alice's with her id too
        const e3 = await anon.take({ event: 'client-msg', channel: ch });
        assert.equal(e3.msg.user_id, alice);
        const events = await kept(server, ch);
        assert.deepEqual(events.map(stripTime), [
            { id: e1.msg.id, event: 'client-msg', data: { n: 1 }, user_id: alice },
            { id: e2.msg.id, event: 'client-msg', data: { n: 2 } },
        ]);
        // a private channel whose client events are not kept: the author is
        // delivered all the same, without an id
        const plain = uniq('private-plain-');
        await join(a, plain);
        await join(b, plain);
        a.send({ event: 'client-msg', channel: plain, data: { n: 3 }, user_id: 'someone-else' });
        const e4 = await b.take({ event: 'client-msg', channel: plain });
        assert.deepEqual(e4.msg, { event: 'client-msg', channel: plain, data: { n: 3 }, user_id: alice });
    });

    test('author: pusher-js sees the author: metadata.user_id on a presence channel, the message\'s user_id on a private one', async () => {
        const priv = uniq('private-chat-');
        const pres = uniq('presence-chat-');
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const pa = s.pusher(server, { app: CHAT, user: { id: alice, info: {} } });
        const pb = s.pusher(server, { app: CHAT, user: { id: bob, info: {} } });
        const messages = [];
        pb.connection.bind('message', (m) => messages.push(m));
        for (const c of [pa, pb]) {
            await connected(c);
            c.signin();
            await signedIn(c);
        }
        const privA = await subscribed(pa, priv);
        const privB = await subscribed(pb, priv);
        const presA = await subscribed(pa, pres);
        const presB = await subscribed(pb, pres);
        const gotPriv = record(privB, 'client-note');
        const gotPres = record(presB, 'client-note');
        assert.equal(privA.trigger('client-note', { text: 'x' }), true);
        assert.equal(presA.trigger('client-note', { text: 'y' }), true);
        await until(() => gotPriv.length >= 1 && gotPres.length >= 1, 'the client events at pusher-js');
        assert.deepEqual(gotPriv[0].data, { text: 'x' });
        assert.deepEqual(gotPres[0].data, { text: 'y' });
        assert.equal(gotPres[0].meta.user_id, alice);
        const m = messages.find((x) => x.event === 'client-note' && x.channel === priv);
        assert.ok(m, 'the private client event at the pusher-js connection');
        assert.equal(m.user_id, alice);
    });

    test('author: POST /events with "user_id" delivers it top level, keeps it, and history pages and replays return it', async () => {
        const ch = uniq('private-conv-');
        const ch2 = uniq('conv-');
        const alice = uniq('alice-');
        const r = await rawReady(s, server, { app: CHAT });
        await join(r, ch);
        await join(r, ch2);
        const first = await send(sdk, ch, 'message', { t: 0 }); // no author
        const res = await trigger(sdk, [ch, ch2], 'message', { t: 1 }, { user_id: alice });
        assert.equal(res.status, 200, res.text);
        const id = res.body.ids[ch];
        const id2 = res.body.ids[ch2];
        assertId(id);
        assertId(id2);
        const e0 = await r.take({ event: 'message', channel: ch });
        assert.deepEqual(e0.msg, { event: 'message', channel: ch, data: '{"t":0}', id: first });
        const e1 = await r.take({ event: 'message', channel: ch });
        assert.deepEqual(e1.msg, { event: 'message', channel: ch, data: '{"t":1}', user_id: alice, id });
        const e2 = await r.take({ event: 'message', channel: ch2 });
        assert.deepEqual(e2.msg, { event: 'message', channel: ch2, data: '{"t":1}', user_id: alice, id: id2 });
        assert.deepEqual((await kept(server, ch)).map(stripTime), [
            { id: first, event: 'message', data: '{"t":0}' },
            { id, event: 'message', data: '{"t":1}', user_id: alice },
        ]);
        assert.deepEqual((await kept(server, ch2)).map(stripTime), [{ id: id2, event: 'message', data: '{"t":1}', user_id: alice }]);
        // the newest page and after= agree
        const newest = await history(sdk, ch, {});
        assert.equal(newest.body.events[1].user_id, alice);
        const afterFirst = await history(sdk, ch, { after: first });
        assert.deepEqual(afterFirst.body.events.map(stripTime), [{ id, event: 'message', data: '{"t":1}', user_id: alice }]);
        // a replay carries it too
        const r2 = await rawReady(s, server, { app: CHAT });
        const rr = await resume(r2, ch, first, { auth: channelAuth(CHAT, r2.socketId, ch) });
        checkResumed(rr, ch, true, 1);
        assert.deepEqual(rr.replayed, [{ event: 'message', channel: ch, data: '{"t":1}', user_id: alice, id }]);
    });

    test('author: POST /events with the socket_id of a signed-in connection: its user is the author and that connection is excluded', async () => {
        const ch = uniq('private-conv-');
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const a1 = await signedInRaw(s, server, alice, { app: CHAT });
        const a2 = await signedInRaw(s, server, alice, { app: CHAT });
        const b = await signedInRaw(s, server, bob, { app: CHAT });
        const anon = await rawReady(s, server, { app: CHAT });
        for (const r of [a1, a2, b, anon]) await join(r, ch);
        const pub = s.pinned(server, CHAT); // one HTTP connection: its publishes arrive in order
        const id = await send(pub, ch, 'message', { t: 1 }, { socket_id: a1.socketId });
        for (const r of [a2, b, anon]) {
            const e = await r.take({ event: 'message', channel: ch });
            assert.deepEqual(e.msg, { event: 'message', channel: ch, data: '{"t":1}', user_id: alice, id });
        }
        // the socket_id of a connection that is not signed in: no author, excluded
        const id2 = await send(pub, ch, 'message', { t: 2 }, { socket_id: anon.socketId });
        for (const r of [a1, a2, b]) {
            const e = await r.take({ event: 'message', channel: ch });
            assert.deepEqual(e.msg, { event: 'message', channel: ch, data: '{"t":2}', id: id2 });
        }
        // user_id and socket_id: the body's user_id is the author, the socket excluded
        const id3 = await send(pub, ch, 'message', { t: 3 }, { socket_id: a1.socketId, user_id: bob });
        for (const r of [a2, b, anon]) {
            const e = await r.take({ event: 'message', channel: ch });
            assert.deepEqual(e.msg, { event: 'message', channel: ch, data: '{"t":3}', user_id: bob, id: id3 });
        }
        // a socket_id no connection has: no author, delivered to everyone
        const id4 = await send(pub, ch, 'message', { t: 4 }, { socket_id: '123456.654321' });
        for (const r of [a1, a2, b, anon]) {
            const e = await r.take({ event: 'message', channel: ch });
            assert.deepEqual(e.msg, { event: 'message', channel: ch, data: '{"t":4}', id: id4 });
        }
        // a1 got t:4 (published later on the same HTTP connection), so it
        // would have had t:1 and t:3 by now
        assert.deepEqual(a1.events(ch, 'message').map((e) => JSON.parse(e.msg.data).t), [2, 4]);
        assert.deepEqual(anon.events(ch, 'message').map((e) => JSON.parse(e.msg.data).t), [1, 3, 4]);
        assert.deepEqual((await kept(server, ch)).map((e) => [JSON.parse(e.data).t, e.user_id ?? null]),
            [[1, alice], [2, null], [3, bob], [4, null]]);
    });

    test('author: socket_id resolves the author whichever worker holds the connection and whichever answers the request', async () => {
        const ch = uniq('private-conv-');
        const alice = uniq('alice-');
        const conns = [];
        for (let i = 0; i < 4; i++) conns.push(await signedInRaw(s, server, alice, { app: CHAT }));
        const b = await signedInRaw(s, server, uniq('bob-'), { app: CHAT });
        for (const r of [...conns, b]) await join(r, ch);
        for (const [i, a] of conns.entries()) {
            for (let k = 0; k < 2; k++) {
                const pub = pinnedRest(server, CHAT); // a new HTTP connection each time
                try {
                    const id = await send(pub, ch, 'message', { i, k }, { socket_id: a.socketId });
                    const e = await b.take({ event: 'message', channel: ch });
                    assert.deepEqual(e.msg, { event: 'message', channel: ch, data: JSON.stringify({ i, k }), user_id: alice, id },
                        `via socket ${a.socketId}`);
                } finally {
                    pub.pinnedAgent.destroy();
                }
            }
        }
        for (const e of (await kept(server, ch))) assert.equal(e.user_id, alice, JSON.stringify(e));
    });

    test('author: an invalid "user_id" → 400 with a message, nothing delivered or kept; SQL-looking valid ids pass through exactly', async () => {
        const ch = uniq('private-conv-');
        const r = await rawReady(s, server, { app: CHAT });
        await join(r, ch);
        const bad = ["x'--", "' OR 1=1 --", '', 'a b', 'é', 'a'.repeat(129), 'x"y', 42, true, {}, ['a']];
        for (const user_id of bad) {
            const res = await rawTrigger(server, CHAT, { name: 'bad', channels: [ch], data: '{}', user_id });
            assertError(res, 400, `user_id ${JSON.stringify(user_id)}`);
        }
        const good = ['x;--', 'a=1;DROP', '1,OR,1=1', 'a'.repeat(128), 'u@x.y', '_-=@,.;'];
        const ids = [];
        for (const user_id of good) ids.push(await send(sdk, ch, 'good', { user_id }, { user_id }));
        for (const [i, user_id] of good.entries()) {
            const e = await r.take({ event: 'good', channel: ch });
            assert.deepEqual(e.msg, { event: 'good', channel: ch, data: JSON.stringify({ user_id }), user_id, id: ids[i] });
        }
        assert.equal(r.count({ event: 'bad' }), 0, 'a refused event was delivered');
        const events = await kept(server, ch);
        assert.deepEqual(events.map((e) => [e.event, e.user_id]), good.map((u) => ['good', u]));
    });
});
