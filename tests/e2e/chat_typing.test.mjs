// Typing indicators: {"event":"hark:typing","channel","data":{"typing":bool}}
// from a signed-in subscriber reaches the connections of the OTHER users on
// the channel as {"event":"hark:typing","channel","data":"{\"user_id\",
// \"typing\"}"}; the first typing:true at once, renewals within
// typing_throttle_ms (default 2000) not relayed, typing:false never
// throttled and also sent after typing_ttl_ms (default 6000) without renewal
// or when the connection that last sent typing:true leaves the channel.
// Refused ("hark:typing rejected: …") when not signed in or not subscribed;
// never kept in history; client-typing client events work as on Pusher.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, relayBarrier, signedIn, sleep, until } from './lib/clients.mjs';
import { history } from './lib/history.mjs';
import {
    chatApp, signedInRaw, join, wsTyping, typingEvent, typings, rejected,
} from './lib/chat.mjs';

const MAIN = chatApp('typing');
const SHORT_TTL = chatApp('typing-ttl', { typing_ttl_ms: 1500 });
const QUICK = chatApp('typing-quick', { typing_throttle_ms: 300 });
const HELD = chatApp('typing-held', { typing_throttle_ms: 60000, typing_ttl_ms: 1500 });

const T = (user) => ({ user_id: user, typing: true });
const F = (user) => ({ user_id: user, typing: false });

describe('chat: typing', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, MAIN, SHORT_TTL, QUICK, HELD] } });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // A private-chat channel with one signed-in connection per entry of
    // users (a user named twice has two connections), in that order.
    async function room(app, users, prefix = 'private-chat-') {
        const ch = uniq(prefix);
        const conns = [];
        for (const u of users) {
            const rc = await signedInRaw(s, server, u, { app });
            await join(rc, ch);
            conns.push(rc);
        }
        return { ch, conns };
    }

    // A client event from `from` on ch that `to` receives: sent after
    // whatever from sent before, so what that made the server relay to `to`
    // on the same path has arrived.
    async function control(from, to, ch) {
        const name = `client-ctl-${uniq('')}`;
        from.send({ event: name, channel: ch, data: {} });
        await to.take({ event: name, channel: ch });
    }

    test('typing: the first typing:true reaches every connection of the other users at once, not the typer\'s own connections', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const carol = uniq('carol-');
        const { ch, conns: [a1, a2, b1, b2, c] } = await room(MAIN, [alice, alice, bob, bob, carol]);
        wsTyping(a1, ch, true);
        for (const r of [b1, b2, c]) {
            const e = await r.take({ event: 'hark:typing', channel: ch });
            assert.deepEqual(e.msg, { event: 'hark:typing', channel: ch, data: JSON.stringify(T(alice)) }, `at ${r.user}: ${e.text}`);
        }
        // the typer's own connections: a control from a1 to each after it
        await a1.ping();
        await relayBarrier(a1, a2);
        await control(a1, a2, ch);
        assert.deepEqual(typings(a1, ch), [], 'the typer got its own typing');
        assert.deepEqual(typings(a2, ch), [], 'the typer\'s other connection got its typing');
        assert.equal(a1.count('pusher:error'), 0);
    });

    test('typing: renewals within typing_throttle_ms are not relayed, typing:false always is, and typing:true after false is a new first one', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(MAIN, [alice, bob]);
        // all sent at once: well within the default 2000 ms
        for (const t of [true, true, true, false, true, true, false]) wsTyping(a, ch, t);
        await until(() => typings(b, ch).length >= 4, 'four typing events at bob');
        await control(a, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice), F(alice), T(alice), F(alice)]);
        assert.equal(a.count('pusher:error'), 0);
    });

    test('typing: a renewal after typing_throttle_ms (300) is relayed again', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(QUICK, [alice, bob]);
        wsTyping(a, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        await sleep(900);
        wsTyping(a, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        wsTyping(a, ch, true); // within 300 ms of the last one relayed
        wsTyping(a, ch, false);
        assert.deepEqual(await typingEvent(b, ch), F(alice));
        await control(a, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice), T(alice), F(alice)]);
    });

    test('typing: typing:false from a user who is not typing is not relayed', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(MAIN, [alice, bob]);
        wsTyping(a, ch, false); // never typed
        wsTyping(a, ch, true);
        wsTyping(a, ch, false);
        wsTyping(a, ch, false); // no longer typing
        await until(() => typings(b, ch).length >= 2, 'two typing events at bob');
        await control(a, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice), F(alice)]);
        assert.equal(a.count('pusher:error'), 0, 'typing:false of a user not typing is not an error');
    });

    test('typing: without renewal for typing_ttl_ms (1500) the others get typing:false; then the typer\'s false is not relayed and true is a new first', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, a2, b] } = await room(SHORT_TTL, [alice, alice, bob]);
        wsTyping(a, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        const t0 = Date.now();
        // ttl + the server's once-a-second check + generous slack
        assert.deepEqual(await typingEvent(b, ch, 1500 + 1500 + 3000), F(alice));
        const waited = Date.now() - t0;
        assert.ok(waited >= 750, `typing:false after ${waited} ms, the ttl is 1500 ms`);
        wsTyping(a, ch, false); // alice is no longer typing
        wsTyping(a, ch, true); // a new first one
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        await control(a, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice), F(alice), T(alice)]);
        await control(a, a2, ch);
        assert.deepEqual(typings(a2, ch), [], 'the typer\'s other connection got its typing (or the ttl stop)');
        assert.deepEqual(typings(a, ch), []);
    });

    test('typing: renewals keep it going past the ttl even when throttled (ttl 1500, throttle 60000); it stops one ttl after the last', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(HELD, [alice, bob]);
        wsTyping(a, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        const end = Date.now() + 4000; // more than twice the ttl
        while (Date.now() < end) {
            await sleep(300);
            wsTyping(a, ch, true);
        }
        await control(a, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice)], 'renewals relayed, or a stop while alice kept typing');
        assert.deepEqual(await typingEvent(b, ch, 1500 + 1500 + 3000), F(alice));
    });

    test('typing: the typer\'s connection drops → typing:false to the others (pusher-js sees {user_id, typing})', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-chat-');
        const a = await signedInRaw(s, server, alice, { app: MAIN });
        await join(a, ch);
        const pb = s.pusher(server, { app: MAIN, user: { id: bob, info: {} } });
        await connected(pb);
        pb.signin();
        await signedIn(pb);
        const chB = await subscribed(pb, ch);
        const got = record(chB, 'hark:typing');
        wsTyping(a, ch, true);
        await until(() => got.length >= 1, 'typing:true at pusher-js');
        assert.deepEqual(got[0].data, T(alice));
        a.terminate();
        await until(() => got.length >= 2, 'typing:false at pusher-js after the drop', 5000);
        assert.deepEqual(got.map((e) => e.data), [T(alice), F(alice)]);
    });

    test('typing: pusher-js can send hark:typing with send_event, and its unsubscribe stops it', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-chat-');
        const pa = s.pusher(server, { app: MAIN, user: { id: alice, info: {} } });
        await connected(pa);
        pa.signin();
        await signedIn(pa);
        await subscribed(pa, ch);
        const b = await signedInRaw(s, server, bob, { app: MAIN });
        await join(b, ch);
        pa.send_event('hark:typing', { typing: true }, ch);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        pa.unsubscribe(ch);
        assert.deepEqual(await typingEvent(b, ch), F(alice));
        // alice's connection is still there: nothing more
        const ctl = uniq('private-chat-ctl-');
        await subscribed(pa, ctl);
        await join(b, ctl);
        pa.channel(ctl).trigger('client-ctl', {});
        await b.take({ event: 'client-ctl', channel: ctl });
        assert.deepEqual(typings(b, ch), [T(alice), F(alice)]);
    });

    test('typing: the typer unsubscribing (raw) → typing:false; another of the user\'s connections leaving does not stop it', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a1, a2, b] } = await room(HELD, [alice, alice, bob]);
        wsTyping(a1, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        // a2 did not send the typing: its leaving changes nothing
        a2.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        await relayBarrier(a2, b);
        a2.terminate();
        // had alice been stopped, this would be a new first typing:true
        // (relayed); she is still typing, so it is a throttled renewal
        wsTyping(a1, ch, true);
        await control(a1, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice)], 'typing stopped by a connection that did not send it');
        a1.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        assert.deepEqual(await typingEvent(b, ch), F(alice));
        await relayBarrier(a1, b);
        assert.deepEqual(typings(b, ch), [T(alice), F(alice)]);
    });

    test('typing: it is the connection that last sent typing:true whose leaving stops it (a throttled renewal counts)', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a1, a2, b] } = await room(HELD, [alice, alice, bob]);
        wsTyping(a1, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        wsTyping(a2, ch, true); // a renewal from her other connection: not relayed
        await control(a2, b, ch);
        a1.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
        await relayBarrier(a1, b);
        // still typing: another renewal from a2 is throttled, not a new first
        wsTyping(a2, ch, true);
        await control(a2, b, ch);
        assert.deepEqual(typings(b, ch), [T(alice)], 'stopped when a connection that was not the last typer left');
        a2.terminate();
        assert.deepEqual(await typingEvent(b, ch), F(alice));
    });

    test('typing: on a presence channel a member that is not signed in is refused too', async () => {
        const carol = uniq('carol-');
        const ch = uniq('presence-chat-');
        const c = await signedInRaw(s, server, carol, { app: MAIN });
        await join(c, ch);
        const m = await rawReady(s, server, { app: MAIN });
        await join(m, ch, uniq('member-'));
        wsTyping(m, ch, true);
        await rejected(m, 'hark:typing rejected:');
        await control(m, c, ch);
        assert.deepEqual(typings(c, ch), []);
        // signed in, the same kind of member is relayed (as its sign-in user)
        const dave = uniq('dave-');
        const d = await signedInRaw(s, server, dave, { app: MAIN });
        await join(d, ch);
        wsTyping(d, ch, true);
        assert.deepEqual(await typingEvent(c, ch), T(dave));
    });

    test('typing: works on a public channel whose events are not kept, and on a presence channel', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        for (const prefix of ['plain-', 'presence-chat-']) {
            const { ch, conns: [a, b] } = await room(MAIN, [alice, bob], prefix);
            wsTyping(a, ch, true);
            assert.deepEqual(await typingEvent(b, ch), T(alice), prefix);
            wsTyping(a, ch, false);
            assert.deepEqual(await typingEvent(b, ch), F(alice), prefix);
            assert.equal(a.count('pusher:error'), 0, `${prefix}: ${a.all('pusher:error').map((e) => e.text)}`);
        }
    });

    test('typing: two users typing at once each see the other, a third sees both', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const carol = uniq('carol-');
        const { ch, conns: [a, b, c] } = await room(MAIN, [alice, bob, carol]);
        wsTyping(a, ch, true);
        wsTyping(b, ch, true);
        assert.deepEqual(await typingEvent(b, ch), T(alice));
        assert.deepEqual(await typingEvent(a, ch), T(bob));
        await until(() => typings(c, ch).length >= 2, 'both at carol');
        const atC = typings(c, ch);
        assert.deepEqual([...atC].sort((x, y) => (x.user_id < y.user_id ? -1 : 1)), [T(alice), T(bob)].sort((x, y) => (x.user_id < y.user_id ? -1 : 1)));
        wsTyping(a, ch, false);
        assert.deepEqual(await typingEvent(b, ch), F(alice));
        await control(a, c, ch);
        await control(b, c, ch);
        assert.deepEqual(typings(c, ch).slice(2), [F(alice)]);
        assert.deepEqual(typings(a, ch), [T(bob)]);
    });

    test('typing: not signed in, or signed in but not subscribed → pusher:error "hark:typing rejected:", nothing relayed, the connection stays', async () => {
        const alice = uniq('alice-');
        const carol = uniq('carol-');
        const { ch, conns: [a, c] } = await room(MAIN, [alice, carol]);
        const anon = await rawReady(s, server, { app: MAIN });
        await join(anon, ch); // subscribed, never signed in
        wsTyping(anon, ch, true);
        await rejected(anon, 'hark:typing rejected:');
        const eve = uniq('eve-');
        const outsider = await signedInRaw(s, server, eve, { app: MAIN });
        wsTyping(outsider, ch, true); // signed in, not subscribed
        await rejected(outsider, 'hark:typing rejected:');
        // on a public channel it is the same (not subscribed)
        wsTyping(outsider, uniq('conv-'), true);
        await rejected(outsider, 'hark:typing rejected:');
        // both still work and nothing reached carol
        await anon.ping();
        await outsider.ping();
        await relayBarrier(anon, c);
        await relayBarrier(outsider, c);
        await control(anon, c, ch);
        assert.deepEqual(typings(c, ch), [], 'a refused typing was relayed');
        // a real typer still gets through
        wsTyping(a, ch, true);
        assert.deepEqual(await typingEvent(c, ch), T(alice));
        assert.equal(anon.closeInfo, null);
        assert.equal(outsider.closeInfo, null);
    });

    test('typing: never kept in history and carries no id; client-typing client events are relayed as on Pusher', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a1, a2, b] } = await room(MAIN, [alice, alice, bob]);
        wsTyping(a1, ch, true);
        const e = await b.take({ event: 'hark:typing', channel: ch });
        assert.equal(Object.hasOwn(e.msg, 'id'), false, `hark:typing with an id: ${e.text}`);
        wsTyping(a1, ch, false);
        await typingEvent(b, ch);
        // client-typing: a client event, to every other connection (the
        // sender's other one too), kept like any client event on private-chat-*
        a1.send({ event: 'client-typing', channel: ch, data: { typing: true } });
        const cb = await b.take({ event: 'client-typing', channel: ch });
        const ca = await a2.take({ event: 'client-typing', channel: ch });
        assert.deepEqual(cb.msg.data, { typing: true });
        assert.deepEqual(ca.msg.data, { typing: true });
        const h = await history(rest(server, MAIN), ch, { from: 'oldest' });
        assert.equal(h.status, 200, h.text);
        assert.deepEqual(h.body.events.map((x) => x.event), ['client-typing'], `history ${h.text}`);
        assert.equal(h.body.events[0].id, cb.msg.id);
    });
});
