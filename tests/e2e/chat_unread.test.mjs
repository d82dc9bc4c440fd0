// Unread counts: GET /apps/{id}/users/{user}/unread[?channels=a,b] (at most
// 100 names) answers {"channels":{"<ch>":{"unread":N,"last_id":id|null,
// "read_id":id|null}}}: the kept events after the user's read cursor that
// the user did not send (an event's user_id ≠ the user). Without channels=:
// every kept channel the user has a cursor on or was subscribed to while
// signed in (remembered across restarts), plus #server-to-user-{user}. Over
// WebSocket a signed-in connection sends {"event":"hark:unread","data":{}}
// (or {"channels":[…]}) and gets {"event":"hark:unread","data":"<the same
// JSON>"}; not signed in → pusher:error "hark:unread rejected: …".
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected } from './lib/harness.mjs';
import { scope, rawReady, uniq, signedIn, until } from './lib/clients.mjs';
import { assertError, restartKit } from './lib/history.mjs';
import {
    chatApp, room, signedInRaw, join, send, wsRead, wsUnread, receipt, rejected, restReadOk, restUnread,
    restUnreadOk, checkUnreadBody, userState,
} from './lib/chat.mjs';

const CHAT = chatApp('unread');
// keeps the newest 3 events of a channel
const SHORT = chatApp('unread-short', { history: [{ channels: '*', max_events: 3, max_age_s: 86400 }] });
// keeps events one second (retention by age runs every 10 s)
const BRIEF = chatApp('unread-brief', { history: [{ channels: '*', max_events: 1000, max_age_s: 1 }] });

const U = (unread, last_id, read_id) => ({ unread, last_id, read_id });

// n messages from user (REST with user_id; null: no author); their ids.
async function say(sdk, ch, user, n, event = 'message') {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(await send(sdk, ch, event, { from: user, i }, user === null ? undefined : { user_id: user }));
    return ids;
}

// user's entry for ch (REST).
async function entry(server, app, user, ch) {
    const got = await restUnreadOk(server, app, user, [ch]);
    assert.deepEqual(Object.keys(got), [ch], `unread of ${user} for ${ch}: ${JSON.stringify(got)}`);
    return got[ch];
}

describe('chat: unread counts', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, CHAT, SHORT, BRIEF] } });
        sdk = rest(server, CHAT);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('unread: a conversation — own messages never counted, reads bring the count to 0 and never below, reading backwards changes nothing', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, CHAT, [alice, bob], 'private-chat-');
        const lastOf = async () => (await entry(server, CHAT, alice, ch)).last_id;
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(0, null, null));
        // bob writes three (REST, authored)
        const fromBob = await say(sdk, ch, bob, 3);
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(3, fromBob[2], null));
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(0, fromBob[2], null));
        // alice answers twice with client events (kept on private-chat-*, authored by her sign-in)
        a.send({ event: 'client-message', channel: ch, data: { t: 'a1' } });
        a.send({ event: 'client-message', channel: ch, data: { t: 'a2' } });
        const fromAlice = [(await b.take({ event: 'client-message', channel: ch })).msg.id, (await b.take({ event: 'client-message', channel: ch })).msg.id];
        await until(async () => (await lastOf()) === fromAlice[1], 'alice\'s messages kept');
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(3, fromAlice[1], null));
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(2, fromAlice[1], null));
        // alice reads everything
        wsRead(a, ch);
        assert.deepEqual(await receipt(b, ch), { user_id: alice, id: fromAlice[1] });
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(0, fromAlice[1], fromAlice[1]));
        // she writes again: still 0 for her, 3 for bob
        const [a3] = await say(sdk, ch, alice, 1);
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(0, a3, fromAlice[1]));
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(3, a3, null));
        // bob reads up to alice's first: alice's second and third are left
        wsRead(b, ch, fromAlice[0]);
        assert.deepEqual(await receipt(a, ch), { user_id: bob, id: fromAlice[0] });
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(2, a3, fromAlice[0]));
        // backwards: nothing changes
        assert.equal(await restReadOk(server, CHAT, bob, ch, fromBob[0]), false);
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(2, a3, fromAlice[0]));
        // a system message (no author) counts for both
        const [sys] = await say(sdk, ch, null, 1);
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(3, sys, fromAlice[0]));
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(1, sys, fromAlice[1]));
        // both read all: 0, and reading again stays 0
        assert.equal(await restReadOk(server, CHAT, bob, ch), true);
        assert.equal(await restReadOk(server, CHAT, alice, ch), true);
        assert.equal(await restReadOk(server, CHAT, alice, ch), false);
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(0, sys, sys));
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(0, sys, sys));
        // bob writes more: bob stays at 0
        const more = await say(sdk, ch, bob, 2);
        assert.deepEqual(await entry(server, CHAT, bob, ch), U(0, more[1], sys));
        assert.deepEqual(await entry(server, CHAT, alice, ch), U(2, more[1], sys));
    });

    test('unread: the REST and WebSocket answers agree, with and without channels', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a] } = await room(s, server, CHAT, [alice, bob]);
        const ch2 = uniq('private-conv-');
        await join(a, ch2);
        const ids = await say(sdk, ch, bob, 4);
        await say(sdk, ch2, bob, 2);
        await say(sdk, ch2, alice, 1);
        assert.equal(await restReadOk(server, CHAT, alice, ch, ids[1]), true);
        const res = await sdk.post({ path: '/events', body: { name: 'notice', users: [alice], data: '{}' } });
        assert.equal(res.status, 200);
        const plain = uniq('plain-'); // not kept
        const never = uniq('private-conv-'); // kept, no events
        for (const channels of [undefined, [ch], [ch, ch2], [ch2, plain, never, `#server-to-user-${alice}`]]) {
            const viaWs = await wsUnread(a, channels);
            const viaRest = await restUnread(server, CHAT, alice, channels);
            assert.equal(viaRest.status, 200, viaRest.text);
            assert.deepEqual(viaWs, viaRest.body, `channels ${JSON.stringify(channels)}`);
        }
        const all = await wsUnread(a);
        assert.deepEqual(all.channels[ch], U(2, ids[3], ids[1]));
        assert.equal(all.channels[ch2].unread, 2);
        assert.equal(all.channels[`#server-to-user-${alice}`].unread, 1);
        const some = await wsUnread(a, [ch2, plain, never]);
        assert.deepEqual(Object.keys(some.channels).sort(), [ch2, plain, never].sort());
        assert.deepEqual(some.channels[plain], U(0, null, null));
        assert.deepEqual(some.channels[never], U(0, null, null));
    });

    test('unread: pusher-js sends hark:unread with send_event and gets the parsed answer through bind(\'hark:unread\')', async () => {
        const alice = uniq('alice-');
        const ch = uniq('private-conv-');
        const ids = await say(sdk, ch, uniq('bob-'), 2);
        const pa = s.pusher(server, { app: CHAT, user: { id: alice, info: {} } });
        await connected(pa);
        pa.signin();
        await signedIn(pa);
        const got = [];
        pa.bind('hark:unread', (data) => got.push(data));
        pa.send_event('hark:unread', { channels: [ch] });
        await until(() => got.length >= 1, 'hark:unread at pusher-js');
        assert.deepEqual(got[0], { channels: { [ch]: U(2, ids[1], null) } });
    });

    test('unread: without channels= — the kept channels the user has a cursor on or was subscribed to while signed in, plus #server-to-user-{user}', async () => {
        const u = uniq('lister-');
        const other = uniq('other-');
        // a user who never did anything: only the user channel
        assert.deepEqual(await restUnreadOk(server, CHAT, u), { [`#server-to-user-${u}`]: U(0, null, null) });
        const res = await sdk.post({ path: '/events', body: { name: 'notice', users: [u], data: '{}' } });
        assert.equal(res.status, 200);
        const noticeId = (await res.json()).ids[`#server-to-user-${u}`];
        assert.deepEqual(await restUnreadOk(server, CHAT, u), { [`#server-to-user-${u}`]: U(1, noticeId, null) });

        const subscribedKept = uniq('private-conv-');
        const subscribedPublic = uniq('conv-');
        const subscribedNotKept = uniq('plain-');
        const readOnly = uniq('private-conv-');
        const anonOnly = uniq('private-conv-');
        const otherOnly = uniq('private-conv-');
        const r = await signedInRaw(s, server, u, { app: CHAT });
        await join(r, subscribedKept);
        await join(r, subscribedPublic);
        await join(r, subscribedNotKept);
        const [k1] = await say(sdk, subscribedKept, other, 1);
        const [rd] = await say(sdk, readOnly, other, 1);
        assert.equal(await restReadOk(server, CHAT, u, readOnly, rd), true);
        // subscribed by a connection that is not signed in, and by another user
        const anon = await rawReady(s, server, { app: CHAT });
        await join(anon, anonOnly);
        const o = await signedInRaw(s, server, other, { app: CHAT });
        await join(o, otherOnly);
        await say(sdk, anonOnly, other, 1);
        await say(sdk, otherOnly, other, 1);
        const want = {
            [`#server-to-user-${u}`]: U(1, noticeId, null),
            [subscribedKept]: U(1, k1, null),
            [subscribedPublic]: U(0, null, null),
            [readOnly]: U(0, rd, rd),
        };
        assert.deepEqual(await restUnreadOk(server, CHAT, u), want);
        assert.deepEqual(await wsUnread(r), { channels: want });
        // still listed after unsubscribing and after the connection is gone
        r.send({ event: 'pusher:unsubscribe', data: { channel: subscribedKept } });
        await r.ping();
        r.close();
        await until(async () => !(await userState(server, CHAT, u)).online, `${u} offline`);
        assert.deepEqual(await restUnreadOk(server, CHAT, u), want);
    });

    test('unread: the user\'s #server-to-user channel is read like any other (the notifications badge), its receipt reaching the user\'s other devices', async () => {
        const u = uniq('notified-');
        const own = `#server-to-user-${u}`;
        const d1 = await signedInRaw(s, server, u, { app: CHAT });
        const d2 = await signedInRaw(s, server, u, { app: CHAT });
        await join(d1, own);
        await join(d2, own);
        const res = await sdk.post({ path: '/events', body: { name: 'notice', users: [u], data: '{}' } });
        assert.equal(res.status, 200);
        const res2 = await sdk.post({ path: '/events', body: { name: 'notice', users: [u], data: '{}' } });
        const last = (await res2.json()).ids[own];
        assert.deepEqual((await wsUnread(d1)).channels[own], U(2, last, null));
        wsRead(d1, own);
        assert.deepEqual(await receipt(d2, own), { user_id: u, id: last });
        assert.deepEqual((await wsUnread(d2)).channels[own], U(0, last, last));
        assert.deepEqual(await restUnreadOk(server, CHAT, u), { [own]: U(0, last, last) });
    });

    test('unread: channels= lists exactly the names given, up to 100; 101 → 400', async () => {
        const u = uniq('many-');
        const names = Array.from({ length: 101 }, () => uniq('private-conv-'));
        const [id0] = await say(sdk, names[0], uniq('bob-'), 1);
        const hundred = await restUnreadOk(server, CHAT, u, names.slice(0, 100));
        assert.equal(Object.keys(hundred).length, 100);
        assert.deepEqual(Object.keys(hundred).sort(), names.slice(0, 100).sort());
        assert.deepEqual(hundred[names[0]], U(1, id0, null));
        for (const n of names.slice(1, 100)) assert.deepEqual(hundred[n], U(0, null, null), n);
        assertError(await restUnread(server, CHAT, u, names), 400, '101 channels');
        const r = await signedInRaw(s, server, u, { app: CHAT });
        const ws = await wsUnread(r, names.slice(0, 100));
        assert.deepEqual(ws.channels, hundred);
        assert.deepEqual(await restUnreadOk(server, CHAT, u, [names[5]]), { [names[5]]: U(0, null, null) });
    });

    test('unread: not signed in over WebSocket → pusher:error "hark:unread rejected:", the connection stays', async () => {
        const r = await rawReady(s, server, { app: CHAT });
        r.send({ event: 'hark:unread', data: {} });
        await rejected(r, 'hark:unread rejected:');
        r.send({ event: 'hark:unread', data: { channels: [uniq('private-conv-')] } });
        await rejected(r, 'hark:unread rejected:');
        await r.ping();
        assert.equal(r.count('hark:unread'), 0);
        assert.equal(r.closeInfo, null);
        // signed in, the same connection is answered
        const u = uniq('late-');
        assert.equal((await r.signin({ id: u })).msg.event, 'pusher:signin_success');
        assert.deepEqual(await wsUnread(r), { channels: { [`#server-to-user-${u}`]: U(0, null, null) } });
    });

    test('unread: only retained events count; a cursor older than what is kept counts every kept event (history keeps 3)', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const ch = uniq('private-conv-');
        const short = rest(server, SHORT);
        const ids = await say(short, ch, bob, 6);
        assert.deepEqual(await entry(server, SHORT, alice, ch), U(3, ids[5], null));
        assert.equal(await restReadOk(server, SHORT, alice, ch, ids[0]), true);
        assert.deepEqual(await entry(server, SHORT, alice, ch), U(3, ids[5], ids[0]));
        assert.equal(await restReadOk(server, SHORT, alice, ch, ids[3]), true);
        assert.deepEqual(await entry(server, SHORT, alice, ch), U(2, ids[5], ids[3]));
        const more = await say(short, ch, bob, 5);
        assert.deepEqual(await entry(server, SHORT, alice, ch), U(3, more[4], ids[3]));
    });

    test('unread: once every event of a channel has expired: unread 0, last_id null, read_id still the stored cursor', async () => {
        const alice = uniq('alice-');
        const ch = uniq('private-conv-');
        const brief = rest(server, BRIEF);
        const ids = await say(brief, ch, uniq('bob-'), 3);
        assert.equal(await restReadOk(server, BRIEF, alice, ch, ids[0]), true);
        assert.deepEqual(await entry(server, BRIEF, alice, ch), U(2, ids[2], ids[0]));
        await until(async () => (await entry(server, BRIEF, alice, ch)).last_id === null, 'the events to expire', 30000);
        assert.deepEqual(await entry(server, BRIEF, alice, ch), U(0, null, ids[0]));
        // an old id is still accepted, and the cursor only moves forward
        assert.equal(await restReadOk(server, BRIEF, alice, ch, ids[1]), true);
        assert.equal(await restReadOk(server, BRIEF, alice, ch, ids[0]), false);
        assert.deepEqual(await entry(server, BRIEF, alice, ch), U(0, null, ids[1]));
    });

    test('unread: SQL-looking user ids and channel names are answered exactly; quoted ones are refused or answered empty, and change nothing', async () => {
        const user = "x;--";
        const ch = `private-a;DROP=1;--${uniq('')}`;
        const ch2 = uniq('conv-1=1;--');
        const ids = await say(sdk, ch, 'a=1;DROP', 2);
        const [own] = await say(sdk, ch2, user, 1);
        assert.deepEqual(await restUnreadOk(server, CHAT, user, [ch, ch2]), { [ch]: U(2, ids[1], null), [ch2]: U(0, own, null) });
        assert.equal(await restReadOk(server, CHAT, user, ch, ids[0]), true);
        assert.deepEqual(await entry(server, CHAT, user, ch), U(1, ids[1], ids[0]));
        const quoted = await restUnread(server, CHAT, "x'--");
        assert.ok(quoted.status >= 400 && quoted.status < 500, `user x'--: ${quoted.status}: ${quoted.text}`);
        for (const bad of ["private-a';DROP", "' OR '1'='1", 'a b']) {
            const res = await restUnread(server, CHAT, user, [bad, ch]);
            if (res.status === 200) {
                checkUnreadBody(res.body, res.text);
                assert.deepEqual(res.body.channels[bad], U(0, null, null), `${bad}: ${res.text}`);
                assert.deepEqual(res.body.channels[ch], U(1, ids[1], ids[0]), res.text);
            } else {
                assertError(res, 400, `channels with ${bad}`);
            }
        }
        assert.deepEqual(await entry(server, CHAT, user, ch), U(1, ids[1], ids[0]));
        assert.deepEqual(await entry(server, CHAT, 'a=1;DROP', ch), U(0, ids[1], null));
    });
});

describe('chat: unread across restarts', () => {
    let s;
    let servers;
    let newDir;
    restartKit((kit) => ({ s, servers, newDir } = kit));
    const config = { apps: [APPS.main, CHAT] };

    test('unread: the channel list and the counts are the same after a SIGTERM restart and after kill -9 following a REST read', async () => {
        const dir = newDir();
        const a = await servers.start(dir, config);
        const u = uniq('keeper-');
        const bob = uniq('bob-');
        const subbed = uniq('private-conv-');
        const read = uniq('private-conv-');
        const r = await signedInRaw(s, a, u, { app: CHAT });
        await join(r, subbed);
        const ids = await say(rest(a, CHAT), subbed, bob, 3);
        const rids = await say(rest(a, CHAT), read, bob, 2);
        assert.equal(await restReadOk(a, CHAT, u, read, rids[0]), true);
        const before_ = await restUnreadOk(a, CHAT, u);
        assert.deepEqual(Object.keys(before_).sort(), [`#server-to-user-${u}`, read, subbed].sort());
        r.close();
        await servers.stop(a);

        const b = await servers.start(dir, config);
        assert.deepEqual(await restUnreadOk(b, CHAT, u), before_, 'after SIGTERM and restart');
        assert.equal(await restReadOk(b, CHAT, u, subbed, ids[1]), true);
        await servers.kill(b); // at once, after the 200

        const c = await servers.start(dir, config);
        const after_ = await restUnreadOk(c, CHAT, u);
        assert.deepEqual(after_, { ...before_, [subbed]: U(1, ids[2], ids[1]) }, 'after kill -9 and restart');
        // and over WebSocket the same
        const r2 = await signedInRaw(s, c, u, { app: CHAT });
        assert.deepEqual(await wsUnread(r2), { channels: after_ });
    });
});
