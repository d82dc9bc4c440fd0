// clients/js/hark-chat.mjs with the real pusher-js and laravel-echo.
//
// The first suite runs against the real hark binary: the author ("user_id")
// and history id of events on presence, private and public channels (and
// what pusher-js itself passes as metadata), read markers (markRead ->
// onSeen on the other connections), unread counts (unread(), in request
// order), typing (typing / typingInput -> onTyping; the app's
// typing_throttle_ms and typing_ttl_ms), and refusals ("hark:<x>
// rejected: …"), all against the real hark binary.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, subscribed, sleep } from './lib/harness.mjs';
import { scope, uniq, signedIn, until, pusherPing } from './lib/clients.mjs';
import { rule, publishSeq, assertId } from './lib/history.mjs';
import {
    markRead, onSeen, unread, typing, typingInput, onTyping, onRejected, onEvent, currentEvent, detachChat,
} from '../../clients/js/hark-chat.mjs';

const TYPING_THROTTLE_MS = 400;
const TYPING_TTL_MS = 1000;

// client events kept (with ids) on private-chat-* and presence-chat-*
const CHAT_APP = {
    ...APPS.main,
    client_event_rate: 0,
    typing_throttle_ms: TYPING_THROTTLE_MS,
    typing_ttl_ms: TYPING_TTL_MS,
    history: [
        rule('private-chat-*', { client_events: true }),
        rule('presence-chat-*', { client_events: true }),
        rule('*'),
    ],
};

// A signed-in pusher-js client of user id (its #server-to-user channel is
// subscribed).
async function user(s, server, id) {
    const c = s.pusher(server, { user: { id, info: { name: id } } });
    c.signin();
    await signedIn(c);
    return c;
}

// Records every call of an on*() helper; off() with the scope.
function rec(s, on, ...args) {
    const got = [];
    const off = on(...args, (x) => got.push(x));
    s.add(off);
    return got;
}

const rejectionOf = async (promise) => {
    try {
        const v = await promise;
        return { resolved: v };
    } catch (e) {
        return e;
    }
};

describe('hark-chat against hark', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [CHAT_APP, ...Object.values(APPS).filter((a) => a !== APPS.main)] } });
    });
    after(async () => { await server.stop(); });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('author and id: presence and private client events, REST events; pusher-js metadata carries user_id on presence channels only', async () => {
        const alice = await user(s, server, 'alice');
        const bob = await user(s, server, 'bob');
        const presence = uniq('presence-chat-');
        const priv = uniq('private-chat-');
        const pub = uniq('feed-');
        const got = [];
        const meta = [];
        for (const name of [presence, priv, pub]) {
            await subscribed(alice, name);
            const ch = await subscribed(bob, name);
            s.add(onEvent(bob, name, 'client-msg', (data, info) => got.push({ name, n: data.n, ...info })));
            s.add(onEvent(bob, name, 'msg', (data, info) => got.push({ name, n: data.n, ...info })));
            ch.bind('client-msg', (data, m) => meta.push({ name, user_id: m && m.user_id }));
        }
        alice.channel(presence).trigger('client-msg', { n: 1 });
        alice.channel(priv).trigger('client-msg', { n: 2 });
        const [restId] = await publishSeq(s.pinned(server), pub, 0, 1, 'msg');
        await until(() => got.length === 3, '3 events at bob', 5000);
        const by = Object.fromEntries(got.map((g) => [g.name, g]));

        assert.equal(by[presence].userId, 'alice', `presence client event: ${JSON.stringify(by[presence])}`);
        assertId(by[presence].id, 'id of a kept presence client event');
        assert.equal(by[presence].channel, presence);
        assert.equal(by[presence].event, 'client-msg');
        assert.equal(by[pub].userId, undefined, 'a REST event has no author');
        assert.equal(by[pub].id, restId, 'the id REST answered');
        assertId(by[priv].id, 'id of a kept private client event');
        const m = Object.fromEntries(meta.map((x) => [x.name, x.user_id]));
        assert.equal(m[presence], 'alice', 'pusher-js passes metadata.user_id on presence channels');
        assert.equal(m[priv], undefined, 'pusher-js passes no metadata.user_id on private channels');
        // the author of a client event from a signed-in user on a private channel
        assert.equal(by[priv].userId, 'alice',
            `private client event from signed-in alice: expected a top-level "user_id" (got ${JSON.stringify(by[priv])})`);
    });

    test('currentEvent() inside a laravel-echo listen callback', async () => {
        const alice = await user(s, server, 'alice');
        const echo = s.echo(server, { user: { id: 'bob', info: {} } });
        const bobPusher = echo.connector.pusher;
        assert.equal(currentEvent(bobPusher), undefined, 'undefined outside a callback (and starts watching)');
        const name = uniq('chat-');
        const got = [];
        let subs = 0;
        echo.join(name).subscribed(() => { subs += 1; })
            .listen('.client-said', (e) => got.push({ t: e.t, ...currentEvent(echo) }));
        await until(() => subs === 1, 'echo presence subscription');
        await subscribed(alice, `presence-${name}`);
        alice.channel(`presence-${name}`).trigger('client-said', { t: 'hi' });
        await until(() => got.length === 1, 'the event at bob');
        assert.equal(got[0].t, 'hi');
        assert.equal(got[0].userId, 'alice');
        assert.equal(got[0].event, 'client-said');
        assert.equal(got[0].channel, `presence-${name}`);
    });

    test('onEvent on pusher.user (#server-to-user-<id>): the id; unread() without channels counts it; pusher:signin_success reaches pusher.bind', async () => {
        const c = s.pusher(server, { user: { id: 'carol', info: {} } });
        let signins = 0;
        c.bind('pusher:signin_success', () => { signins += 1; });
        c.signin();
        await signedIn(c);
        assert.equal(signins, 1, 'pusher.bind(\'pusher:signin_success\') (the README refreshes badges there)');
        const got = [];
        s.add(onEvent(c, c.user, 'note', (data, info) => got.push({ n: data.n, ...info })));
        const pub = s.pinned(server);
        const body = await pub.sendToUser('carol', 'note', { n: 1 }).then((r) => r.json());
        await until(() => got.length === 1, 'the user event');
        assert.deepEqual(got, [{ n: 1, userId: undefined, id: got[0].id, channel: '#server-to-user-carol', event: 'note' }]);
        assertId(got[0].id, 'id of a user event');
        const all = await unread(c);
        assert.deepEqual(all.channels['#server-to-user-carol'], { unread: 1, last_id: got[0].id, read_id: null },
            `${JSON.stringify(all)} (sendToUser answered ${JSON.stringify(body)})`);
    });

    test('markRead -> onSeen at the other connections (not the sender); unread() counts, last_id, read_id', async () => {
        const alice = await user(s, server, 'alice');
        const alice2 = await user(s, server, 'alice'); // a second tab
        const bob = await user(s, server, 'bob');
        const ch = uniq('private-chat-');
        for (const c of [alice, alice2, bob]) await subscribed(c, ch);
        const seenA = rec(s, onSeen, alice, ch);
        const seenA2 = rec(s, onSeen, alice2, ch);
        const seenB = rec(s, onSeen, bob, ch);
        const rejected = rec(s, onRejected, alice);

        const ids = await publishSeq(s.pinned(server), ch, 0, 3, 'msg');
        const before = await unread(alice, [ch]);
        assert.deepEqual(before, { channels: { [ch]: { unread: 3, last_id: ids[2], read_id: null } } }, 'never read');

        assert.equal(markRead(alice, ch, ids[1]), true);
        await until(() => seenB.length === 1 && seenA2.length === 1, 'hark:read at bob and at alice\'s second tab');
        assert.deepEqual(seenB, [{ userId: 'alice', id: ids[1], channel: ch }]);
        assert.deepEqual(seenA2, [{ userId: 'alice', id: ids[1], channel: ch }]);
        const mid = await unread(alice, [ch]);
        assert.deepEqual(mid, { channels: { [ch]: { unread: 1, last_id: ids[2], read_id: ids[1] } } });

        // without an id: up to the newest event
        markRead(alice, ch);
        await until(() => seenB.length === 2, 'the second hark:read at bob');
        assert.deepEqual(seenB[1], { userId: 'alice', id: ids[2], channel: ch });
        const after = await unread(alice, [ch]);
        assert.deepEqual(after, { channels: { [ch]: { unread: 0, last_id: ids[2], read_id: ids[2] } } });

        // bob's marker is his own; alice hears it (which also proves her own
        // two markers were not sent back to her)
        markRead(bob, ch, ids[0]);
        await until(() => seenA.length === 1, 'bob\'s hark:read at alice');
        assert.deepEqual(seenA, [{ userId: 'bob', id: ids[0], channel: ch }]);
        const bobs = await unread(bob, [ch]);
        assert.deepEqual(bobs, { channels: { [ch]: { unread: 2, last_id: ids[2], read_id: ids[0] } } });
        assert.deepEqual(rejected, []);

        // no channels: every channel the user tracks, this one included
        const all = await unread(alice);
        assert.ok(all && all.channels && typeof all.channels === 'object', JSON.stringify(all));
        assert.deepEqual(all.channels[ch], { unread: 0, last_id: ids[2], read_id: ids[2] }, JSON.stringify(all));
    });

    test('unread(): concurrent requests are answered in request order', async () => {
        const alice = await user(s, server, 'alice');
        const pub = s.pinned(server);
        const chans = [uniq('private-chat-'), uniq('private-chat-'), uniq('private-chat-')];
        for (let i = 0; i < chans.length; i++) {
            await subscribed(alice, chans[i]);
            await publishSeq(pub, chans[i], 0, i + 1, 'msg');
        }
        const asks = [[chans[0]], [chans[1], chans[2]], [chans[2]], [chans[0], chans[1]]];
        const answers = await Promise.all(asks.map((a) => unread(alice, a)));
        answers.forEach((ans, i) => {
            assert.deepEqual(Object.keys(ans.channels).sort(), [...asks[i]].sort(), `answer ${i}: ${JSON.stringify(ans)}`);
            for (const c of asks[i]) assert.equal(ans.channels[c].unread, chans.indexOf(c) + 1, `answer ${i} ${c}`);
        });
    });

    test('unread(): a refusal that hark sends at once does not take the answer of an earlier request', async () => {
        // hark refuses a malformed request as soon as it reads it but answers
        // an accepted one from its history thread: sent back to back, the
        // refusal of the second would arrive before the answer to the first
        const alice = await user(s, server, 'alice');
        const ch = uniq('private-chat-');
        await subscribed(alice, ch);
        const ids = await publishSeq(s.pinned(server), ch, 0, 2, 'msg');
        const rejected = rec(s, onRejected, alice);
        const results = await Promise.all([
            unread(alice, [ch]),
            unread(alice, ['not a channel name!']),
            unread(alice, [ch]),
        ].map(rejectionOf));
        const expect = { channels: { [ch]: { unread: 2, last_id: ids[1], read_id: null } } };
        assert.deepEqual(results[0], { resolved: expect });
        assert.equal(results[1].reason, 'rejected');
        assert.match(results[1].message, /^hark:unread rejected: /);
        assert.deepEqual(results[2], { resolved: expect });
        assert.equal(rejected.length, 1);
    });

    test('refusals: markRead, unread and typing without sign-in ("hark:<x> rejected: …"); the connection goes on', async () => {
        const anon = s.pusher(server);
        const ch = uniq('private-chat-');
        await subscribed(anon, ch);
        const rejected = rec(s, onRejected, anon);
        markRead(anon, ch);
        typing(anon, ch, true);
        const err = await rejectionOf(unread(anon, [ch]));
        assert.ok(err instanceof Error, `unread() without sign-in resolved: ${JSON.stringify(err.resolved)}`);
        assert.equal(err.reason, 'rejected', err.message);
        assert.match(err.message, /^hark:unread rejected:/);
        await until(() => rejected.length === 3, '3 refusals', 5000).catch(() => {});
        assert.deepEqual(rejected.map((r) => r.event), ['hark:read', 'hark:typing', 'hark:unread'],
            `refusals: ${JSON.stringify(rejected)}`);
        for (const r of rejected) assert.ok(r.message.startsWith(`${r.event} rejected:`), r.message);
        assert.equal(anon.connection.state, 'connected');
    });

    test('typing(true/false) -> onTyping at the other users; not at the typer; false when the typer leaves', async () => {
        const alice = await user(s, server, 'alice');
        const bob = await user(s, server, 'bob');
        const ch = uniq('private-chat-');
        await subscribed(alice, ch);
        await subscribed(bob, ch);
        const atBob = rec(s, onTyping, bob, ch);
        const atAlice = rec(s, onTyping, alice, ch);
        const rejected = rec(s, onRejected, alice);

        assert.equal(typing(alice, ch, true), true);
        await until(() => atBob.length === 1, 'typing:true at bob');
        assert.deepEqual(atBob, [{ userId: 'alice', typing: true, channel: ch }]);
        typing(alice, ch, false);
        await until(() => atBob.length === 2, 'typing:false at bob');
        assert.deepEqual(atBob[1], { userId: 'alice', typing: false, channel: ch });

        // bob types: alice hears it, and nothing of her own
        typing(bob, ch, true);
        await until(() => atAlice.length === 1, 'bob typing at alice');
        assert.deepEqual(atAlice, [{ userId: 'bob', typing: true, channel: ch }]);
        // bob leaves the channel while typing: alice hears typing:false
        bob.unsubscribe(ch);
        await until(() => atAlice.length === 2, 'typing:false at alice when bob leaves');
        assert.deepEqual(atAlice[1], { userId: 'bob', typing: false, channel: ch });
        assert.deepEqual(rejected, []);
    });

    test('typing_ttl_ms: a typer that goes quiet is reported stopped; onTyping reports false when its own connection is lost', async () => {
        const alice = await user(s, server, 'alice');
        const bob = await user(s, server, 'bob');
        const ch = uniq('private-chat-');
        await subscribed(alice, ch);
        await subscribed(bob, ch);
        const atBob = [];
        s.add(onTyping(bob, ch, (x) => atBob.push({ ...x, at: Date.now() })));
        const t0 = Date.now();
        typing(alice, ch, true);
        await until(() => atBob.length === 2, 'typing:true then typing:false (ttl) at bob', TYPING_TTL_MS + 4000);
        assert.deepEqual(atBob.map((x) => x.typing), [true, false]);
        const waited = atBob[1].at - t0;
        assert.ok(waited >= TYPING_TTL_MS - 50, `typing:false after ${waited} ms, before typing_ttl_ms ${TYPING_TTL_MS}`);

        // alice types again; bob's connection is lost: his onTyping gives false
        typing(alice, ch, true);
        await until(() => atBob.length === 3, 'typing:true again');
        bob.disconnect();
        await until(() => atBob.length === 4, 'typing:false from the helper on disconnect');
        assert.deepEqual(atBob.slice(2).map(({ userId, typing: t }) => ({ userId, t })), [
            { userId: 'alice', t: true }, { userId: 'alice', t: false }]);
    });

    test('typingInput: keystrokes send true once (renewed every renewMs, relayed at most every typing_throttle_ms) and false after idleMs', async () => {
        const alice = await user(s, server, 'alice');
        const bob = await user(s, server, 'bob');
        const ch = uniq('private-chat-');
        await subscribed(alice, ch);
        await subscribed(bob, ch);
        const atBob = rec(s, onTyping, bob, ch);
        const sent = [];
        const inner = alice.connection.send_event;
        alice.connection.send_event = function spy(name, data, channel) {
            if (name === 'hark:typing') sent.push(data.typing);
            return inner.apply(this, arguments);
        };
        s.add(() => { delete alice.connection.send_event; });

        // 12 keystrokes, 50 ms apart, idle after 300 ms
        const input = typingInput(alice, ch, { idleMs: 300 });
        for (let i = 0; i < 12; i++) { input.keystroke(); await sleep(50); }
        assert.equal(input.typing, true);
        await until(() => atBob.length === 2, 'true then false at bob', 3000);
        assert.deepEqual(sent, [true, false]);
        assert.deepEqual(atBob.map((x) => x.typing), [true, false]);
        assert.equal(input.typing, false);

        // renewals: keystrokes for 1.3 s, renewMs 500 -> true at about 0,
        // 500, 1000, each relayed (typing_throttle_ms 400); stop() sends
        // false at once
        sent.length = 0;
        atBob.length = 0;
        const fast = typingInput(alice, ch, { idleMs: 5000, renewMs: 500 });
        const end = Date.now() + 1300;
        while (Date.now() < end) { fast.keystroke(); await sleep(50); }
        fast.stop();
        assert.ok(sent.length >= 3 && sent.length <= 4 && sent.slice(0, -1).every((t) => t === true)
            && sent[sent.length - 1] === false, `sent ${JSON.stringify(sent)}`);
        await until(() => atBob.length >= 1 && atBob[atBob.length - 1].typing === false, 'false at bob after stop()');
        const trues = atBob.filter((x) => x.typing).length;
        assert.equal(trues, sent.length - 1, `every renewal relayed: ${JSON.stringify(atBob)}`);
    });
});
