// Chat frames under abuse: a client that floods hark:read, hark:typing and
// hark:unread (thousands of frames, never reading its answers), several
// clients flooding at once, a burst of REST reads, and malformed hark:*
// frames. None of it crashes the server or starves another client (which
// still gets its events), receipts and typing are not amplified, and the
// server stays healthy (/up, /metrics) and stops cleanly.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, uniq, channelAuth, userAuth, until } from './lib/clients.mjs';
import { wsConnect, httpGet, encodeFrame } from './lib/rawtcp.mjs';
import { rssOf } from './lib/churn.mjs';
import {
    chatApp, room, signedInRaw, join, send, wsRead, wsUnread, receipt, receipts, typings, restReadOk, restUnreadOk,
} from './lib/chat.mjs';

const CHAT = chatApp('abuse');
const PATH = `/app/${CHAT.key}?protocol=7&client=js&version=8.6.0&flash=false`;
const FLOOD = 3000; // frames of each kind

// A raw TCP WebSocket of CHAT signed in as user and subscribed to the
// channels, ready to flood (its answers are read until then).
async function flooder(server, user, channels) {
    const conn = await wsConnect(server, PATH);
    const { socket_id: sid } = await conn.established();
    const ud = JSON.stringify({ id: user });
    conn.sendJSON({ event: 'pusher:signin', data: { auth: userAuth(CHAT, sid, ud), user_data: ud } });
    assert.equal((await conn.nextEvent('pusher:signin_success')).json.event, 'pusher:signin_success');
    for (const ch of channels) {
        conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, auth: channelAuth(CHAT, sid, ch) } });
        await conn.nextEvent('pusher_internal:subscription_succeeded');
    }
    conn.socketId = sid;
    return conn;
}

// Many frames as one buffer (written at once).
const frames = (objs) => Buffer.concat(objs.map((o) => encodeFrame(JSON.stringify(o))));

async function metric(server, name) {
    const { text } = await httpGet(server, '/metrics');
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
}

async function healthy(server) {
    const up = await httpGet(server, '/up');
    assert.equal(up.status, 200, `/up: ${up.text.slice(0, 200)}`);
    const m = await httpGet(server, '/metrics');
    assert.equal(m.status, 200, `/metrics: ${m.text.slice(0, 200)}`);
    assert.match(m.text, /^hark_connections \d+$/m);
}

describe('chat: abuse', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, CHAT] } });
        sdk = rest(server, CHAT);
    });
    after(async () => {
        await server.stop(); // fails on a crash, a non-zero exit or a sanitizer report
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test(`abuse: one client floods ${FLOOD} hark:read, hark:typing and hark:unread frames without reading: others still get their events, nothing is amplified, the server stays healthy`, async () => {
        const bob = uniq('bob-');
        const carol = uniq('carol-');
        const { ch, conns: [b] } = await room(s, server, CHAT, [bob]);
        const elsewhere = uniq('private-conv-');
        const c = await signedInRaw(s, server, carol, { app: CHAT });
        await join(c, elsewhere);
        const ids = [];
        for (let i = 0; i < 3; i++) ids.push(await send(sdk, ch, 'message', { i }, { user_id: bob }));
        const names = Array.from({ length: 100 }, () => uniq('private-conv-'));
        const f = await flooder(server, uniq('flooder-'), [ch]);
        s.add(() => f.destroy());
        const rss0 = rssOf(server.proc.pid);
        const in0 = await metric(server, 'hark_ws_messages_in_total');
        const slow0 = await metric(server, 'hark_slow_consumers_closed_total');
        f.pause();
        const t0 = Date.now();
        const burst = [];
        for (let i = 0; i < FLOOD; i++) {
            burst.push({ event: 'hark:read', channel: ch, data: { id: ids[0] } });
            burst.push({ event: 'hark:typing', channel: ch, data: { typing: true } });
            burst.push({ event: 'hark:unread', data: i % 2 ? {} : { channels: names } });
        }
        f.write(frames(burst));
        // others are served meanwhile: live events, reads, unread answers
        for (let i = 0; i < 10; i++) {
            const id = await send(sdk, elsewhere, 'ping', { i });
            const e = await c.take({ event: 'ping', channel: elsewhere }, 10000);
            assert.equal(e.msg.id, id);
        }
        const [id3] = [await send(sdk, ch, 'message', { i: 3 }, { user_id: carol })];
        assert.equal((await b.take((m) => m.event === 'message' && m.channel === ch && m.id === id3, 10000)).msg.id, id3);
        wsRead(b, ch, id3);
        const unread = await wsUnread(c, [elsewhere], 10000);
        assert.equal(unread.channels[elsewhere].unread, 10);
        assert.deepEqual(await restUnreadOk(server, CHAT, carol, [elsewhere]), unread.channels);
        await healthy(server);
        // the flood is over once the flooder's frames are handled or it is
        // closed as a slow consumer (its answers unread)
        await until(async () => (await metric(server, 'hark_ws_messages_in_total')) - in0 >= 3 * FLOOD
            || (await metric(server, 'hark_slow_consumers_closed_total')) > slow0, 'the flood to be handled', 30000);
        const elapsed = Date.now() - t0;
        // one move, so at most one receipt; typing throttled (2000 ms)
        const fromFlooder = receipts(b, ch).filter((r) => r.user_id !== bob);
        assert.ok(fromFlooder.length <= 1, `${fromFlooder.length} receipts for one move: ${JSON.stringify(fromFlooder.slice(0, 3))}`);
        const typing = typings(b, ch);
        const most = 3 + Math.ceil(elapsed / 2000);
        assert.ok(typing.length <= most, `${typing.length} typing events in ${elapsed} ms (at most ${most})`);
        const grown = rssOf(server.proc.pid) - rss0;
        assert.ok(grown < 128 * 1024, `hark grew by ${grown} kB for one flooding client`);
        f.destroy();
        await healthy(server);
        // and afterwards chat works as before
        const d = await signedInRaw(s, server, uniq('dave-'), { app: CHAT });
        await join(d, ch);
        for (const e of b.all({ event: 'hark:read', channel: ch })) e.taken = true; // the flooder's, checked above
        wsRead(d, ch, id3);
        assert.deepEqual(await receipt(b, ch), { user_id: d.user, id: id3 });
    });

    test('abuse: eight clients flooding typing on/off and hark:unread at once: a client on the channel gets every relay and its events, the server stays healthy', async () => {
        const bob = uniq('bob-');
        const { ch, conns: [b] } = await room(s, server, CHAT, [bob]);
        const floods = [];
        for (let k = 0; k < 8; k++) {
            const f = await flooder(server, uniq(`fl${k}-`), [ch]);
            s.add(() => f.destroy());
            floods.push(f);
        }
        const N = 500;
        for (const f of floods) {
            const burst = [];
            for (let i = 0; i < N; i++) {
                burst.push({ event: 'hark:typing', channel: ch, data: { typing: true } });
                burst.push({ event: 'hark:typing', channel: ch, data: { typing: false } });
                burst.push({ event: 'hark:unread', data: {} });
            }
            f.write(frames(burst));
        }
        const id = await send(sdk, ch, 'message', { x: 1 });
        await b.take((m) => m.event === 'message' && m.id === id, 15000);
        await healthy(server);
        // each on/off pair is a new first typing:true and a typing:false: all
        // relayed to the reading client, in pairs per user
        await until(() => b.count('hark:typing') >= 8 * 2 * N, 'every relay at bob', 30000);
        const per = new Map();
        for (const t of typings(b, ch)) {
            const seq = per.get(t.user_id) || [];
            seq.push(t.typing);
            per.set(t.user_id, seq);
        }
        assert.equal(per.size, 8);
        for (const [u, seq] of per) {
            assert.equal(seq.length, 2 * N, `${u}: ${seq.length} typing events`);
            assert.ok(seq.every((v, i) => v === (i % 2 === 0)), `${u}: not alternating`);
        }
        for (const f of floods) assert.equal(f.isEnded(), false, 'a flooder that reads was closed');
        for (const f of floods) f.destroy();
        await healthy(server);
        assert.deepEqual(await restUnreadOk(server, CHAT, bob, [ch]), { [ch]: { unread: 1, last_id: id, read_id: null } });
    });

    test('abuse: 200 REST reads at once for 200 users all answer {"moved":true} and are all stored', async () => {
        const ch = uniq('private-conv-');
        const [id] = [await send(sdk, ch, 'message', {})];
        const users = Array.from({ length: 200 }, (_, i) => uniq(`burst${i}-`));
        const moved = await Promise.all(users.map((u) => restReadOk(server, CHAT, u, ch, id)));
        assert.ok(moved.every((m) => m === true), `moved: ${moved.filter((m) => !m).length} false`);
        for (let i = 0; i < users.length; i += 50) {
            const got = await Promise.all(users.slice(i, i + 50).map((u) => restUnreadOk(server, CHAT, u, [ch])));
            for (const g of got) assert.deepEqual(g, { [ch]: { unread: 0, last_id: id, read_id: id } });
        }
        await healthy(server);
    });

    test('abuse: malformed hark:read / hark:typing / hark:unread frames get errors or nothing, never a crash; the connection keeps working', async () => {
        const alice = uniq('alice-');
        const bob = uniq('bob-');
        const { ch, conns: [a, b] } = await room(s, server, CHAT, [alice, bob]);
        const [id] = [await send(sdk, ch, 'message', {}, { user_id: bob })];
        const junk = [
            { event: 'hark:read' },
            { event: 'hark:read', channel: ch },
            { event: 'hark:read', channel: ch, data: 'not an object' },
            { event: 'hark:read', channel: ch, data: { id: 'x'.repeat(70000 / 2) } },
            { event: 'hark:read', channel: 42, data: { id } },
            { event: 'hark:read', channel: ch, data: { id: [id] } },
            { event: 'hark:typing', channel: ch },
            { event: 'hark:typing', channel: ch, data: 'yes' },
            { event: 'hark:typing', channel: ch, data: { typing: 'yes' } },
            { event: 'hark:typing', data: { typing: true } },
            { event: 'hark:unread', data: 'all' },
            { event: 'hark:unread', data: { channels: 'a,b' } },
            { event: 'hark:unread', data: { channels: [1, 2, 3] } },
            { event: 'hark:unread', data: { channels: Array.from({ length: 1000 }, (_, i) => `private-conv-${i}`) } },
            { event: 'hark:unread', data: { channels: ["private-a';DROP", '#nope'] } },
        ];
        for (const j of junk) a.send(j);
        await a.ping(15000);
        assert.ok(a.count('pusher:error') <= junk.length, `${a.count('pusher:error')} errors for ${junk.length} frames`);
        assert.equal(a.closeInfo, null, `closed: ${JSON.stringify(a.closeInfo)}`);
        // nothing of it reached bob, and the cursor did not move
        wsRead(a, ch, id);
        assert.deepEqual(await receipt(b, ch), { user_id: alice, id });
        assert.deepEqual(receipts(b, ch), [{ user_id: alice, id }]);
        assert.deepEqual(typings(b, ch), []);
        await healthy(server);
    });
});
