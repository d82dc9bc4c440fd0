// Two workers. A socket id starts with the number of the worker that owns the
// connection (docs/design.md, "Workers"; with node_id N it is N * 10000 plus
// that number); the first test checks that against
// something the server does per worker: each worker gets its own share of
// max_pending_input_bytes (docs/api.md), so two connections that each hold
// an unfinished 60 kB message exceed a 100 kB share only when one worker owns
// both, and then hark sheds the one that waited longer. The same check tells
// which worker accepted an HTTP keep-alive connection (and so answers every
// request on it): the REST calls below go over connections whose worker is
// known, so each test exercises the cross-worker path it names on every run
// instead of whichever worker the kernel happened to pick.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, until, sleep, terminated, signedTarget } from './lib/clients.mjs';
import { wsConnect, httpConnection, httpGet, encodeFrame, OP } from './lib/rawtcp.mjs';

const BUDGET = 200000; // max_pending_input_bytes: a 100 000-byte share per worker
const PART = 60000; // bytes of one unfinished message: one fits a share, two do not
const PING = encodeFrame(JSON.stringify({ event: 'pusher:ping', data: 'x'.repeat(PART) })); // > PART bytes
const other = { 1: '2', 2: '1' };
const workerOf = (socketId) => socketId.split('.')[0];

// A connection that can hold an unfinished message: park() sends all but
// the end of one, shed() tells whether hark has closed it for that, finish()
// sends the rest and resolves true when it is answered (pusher:pong / 200).
function wsHolder(conn) {
    return {
        park() { conn.write(PING.subarray(0, PART)); },
        shed() { return conn.isEnded() || conn.frames.some((f) => f.opcode === OP.CLOSE); },
        async finish() {
            conn.write(PING.subarray(PART));
            const m = await conn.nextMessage();
            return !!m && m.opcode !== OP.CLOSE && m.json?.event === 'pusher:pong';
        },
    };
}
function httpHolder(h) {
    const head = `GET /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${PART}\r\n\r\n`;
    const first = PART - head.length; // body bytes sent by park(): PART bytes in all
    return {
        park() { h.write(head + 'x'.repeat(first)); },
        shed() { return h.ended || h.pending.length > 0; },
        async finish() {
            h.write('x'.repeat(PART - first));
            const r = await h.response();
            return !!r && r.status === 200 && !h.ended;
        },
    };
}

// A signed POST /apps/<id>/events request (bytes) with body `body`.
function publishRequest(server, app, body) {
    const text = JSON.stringify(body);
    const target = signedTarget(app, 'POST', `/apps/${app.id}/events`, text);
    return `POST ${target} HTTP/1.1\r\nHost: ${server.host}:${server.port}\r\n`
        + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}

describe('workers: behaviour across two event loops', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { workers: 2, max_pending_input_bytes: BUDGET } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // whole-server bytes of unfinished input (/metrics)
    async function heldBytes() {
        const { text } = await httpGet(server, '/metrics');
        const m = /^hark_incomplete_input_bytes (\d+)$/m.exec(text);
        assert.ok(m, `hark_incomplete_input_bytes in /metrics:\n${text}`);
        return Number(m[1]);
    }

    // Whether holders x and y are on one worker: x parks, then y; over one
    // share hark sheds x (unfinished longer). Deterministic both ways: we wait
    // until hark holds both or has shed one (a shed happens as the input is
    // read), and finishing both then proves whether x survived.
    async function shareAWorker(x, y) {
        const before_ = await heldBytes();
        x.park();
        await until(async () => x.shed() || (await heldBytes()) >= before_ + PART, 'hark to hold the first unfinished message');
        await sleep(5); // the order of "unfinished longer" is kept in milliseconds
        y.park();
        await until(async () => x.shed() || y.shed() || (await heldBytes()) >= before_ + 2 * PART,
            'hark to hold both unfinished messages or to shed one');
        const survivedX = await x.finish();
        const survivedY = await y.finish();
        assert.ok(survivedY, 'the newer unfinished message was shed');
        return !survivedX;
    }

    // A WebSocket connection (raw TCP), closed with the test; [conn, worker].
    async function wsOpen() {
        const conn = await wsConnect(server);
        s.add(() => conn.destroy());
        const { socket_id: id } = await conn.established();
        return [conn, workerOf(id), id];
    }

    // HTTP keep-alive connections until one is known to be on each worker
    // (checked against a WebSocket of known worker): {1: h, 2: h}.
    async function httpOnEachWorker() {
        const on = {};
        for (let i = 0; i < 64 && !(on[1] && on[2]); i++) {
            const [anchor, w] = await wsOpen();
            const h = await httpConnection(server);
            s.add(() => h.close());
            const hw = (await shareAWorker(wsHolder(anchor), httpHolder(h))) ? w : other[w];
            anchor.destroy();
            if (!on[hw]) on[hw] = h;
            else h.close();
        }
        assert.ok(on[1] && on[2], 'the kernel spread 64 HTTP connections over both workers');
        return on;
    }

    // One ready raw client on each worker ([on worker 1, on worker 2]), chosen
    // by socket-id prefix.
    async function pairAcrossWorkers(opts) {
        const found = {};
        for (let i = 0; i < 64 && !(found['1'] && found['2']); i++) {
            const c = await rawReady(s, server, opts);
            const w = workerOf(c.socketId);
            if (!found[w]) found[w] = c;
            else c.close();
        }
        assert.ok(found['1'] && found['2'], 'the kernel spread 64 connections over both workers');
        return [found['1'], found['2']];
    }

    test('workers: a socket id names the worker that owns the connection (as the per-worker input shares show)', async () => {
        // N connections, both prefixes among them
        const byWorker = { 1: [], 2: [] };
        for (let n = 0; n < 64 && (n < 16 || byWorker[1].length < 2 || byWorker[2].length < 2); n++) {
            const [conn, w, id] = await wsOpen();
            assert.ok(w === '1' || w === '2', `socket id ${id} names no worker of two`);
            byWorker[w].push({ id, w, holder: wsHolder(conn) });
        }
        assert.ok(byWorker[1].length >= 2 && byWorker[2].length >= 2,
            `both prefixes, twice each, among the connections: ${byWorker[1].length} × 1, ${byWorker[2].length} × 2`);
        // A chain through all of them, ordered by prefix: two neighbours share
        // a worker exactly when they share a prefix (the older of two on one
        // worker is shed; the chain goes on from the newer).
        const chain = [...byWorker[1], ...byWorker[2]];
        for (let i = 0; i + 1 < chain.length; i++) {
            const [x, y] = [chain[i], chain[i + 1]];
            assert.equal(await shareAWorker(x.holder, y.holder), x.w === y.w, `${x.id} then ${y.id}`);
        }
        // And an HTTP connection: the worker the shares put it on is the one
        // named by the socket id it gets when it is upgraded.
        const seen = { same: 0, other: 0 };
        for (let i = 0; i < 64 && (i < 4 || !(seen.same && seen.other)); i++) {
            const [anchor, w] = await wsOpen();
            const h = await httpConnection(server);
            s.add(() => h.close());
            const same = await shareAWorker(wsHolder(anchor), httpHolder(h));
            anchor.destroy();
            const e = await h.upgrade(`/app/${APPS.main.key}?protocol=7`);
            assert.equal(e.event, 'pusher:connection_established', JSON.stringify(e));
            const hw = workerOf(JSON.parse(e.data).socket_id);
            assert.equal(hw === w, same, `HTTP connection upgraded to ${JSON.parse(e.data).socket_id}, anchor on ${w}, shared a worker: ${same}`);
            seen[same ? 'same' : 'other'] += 1;
            h.close();
        }
        assert.ok(seen.same && seen.other, JSON.stringify(seen));
    });

    test('workers: a REST publish with socket_id skips that connection on the publishing worker and on the other one', async () => {
        const ch = uniq('w-pub-');
        const on = await httpOnEachWorker();
        const [a, b] = await pairAcrossWorkers();
        await a.subscribe(ch);
        await b.subscribe(ch);
        const conn = { 1: a, 2: b };
        // publisher worker × excluded connection: twice on the same worker
        // (exclusion while writing locally), twice across (the excluded socket
        // id travels in the other worker's inbox message)
        for (const w of ['1', '2']) {
            for (const x of ['1', '2']) {
                const excluded = conn[x];
                const receiver = conn[other[x]];
                const name = `from-${w}-not-${x}`;
                const r = await on[w].request(publishRequest(server, APPS.main, {
                    name, channels: [ch], data: JSON.stringify({ w, x }), socket_id: excluded.socketId,
                }));
                assert.equal(r?.status, 200, r?.body);
                // control: same HTTP connection (worker), same channel, later
                const rc = await on[w].request(publishRequest(server, APPS.main, { name: `${name}-control`, channels: [ch], data: '{}' }));
                assert.equal(rc?.status, 200, rc?.body);
                const got = await receiver.take({ event: name, channel: ch });
                assert.deepEqual(got.parsed, { w, x });
                await receiver.take({ event: `${name}-control`, channel: ch });
                await excluded.take({ event: `${name}-control`, channel: ch });
                assert.equal(excluded.count({ event: name, channel: ch }), 0,
                    `worker ${w} delivered ${name} to the excluded ${excluded.socketId}`);
            }
        }
    });

    test('workers: presence counts users across workers; two tabs of one user on different workers are one member', async () => {
        const ch = uniq('presence-w-');
        const [a, b] = await pairAcrossWorkers();
        const [c] = await pairAcrossWorkers(); // on worker 1, as a
        const ea = await a.subscribeAuthed(ch, { user_id: 'u1', user_info: { tab: 1 } });
        assert.equal(ea.parsed.presence.count, 1);
        // the same user on the other worker: no member_added anywhere, still one member
        const eb = await b.subscribeAuthed(ch, { user_id: 'u1', user_info: { tab: 2 } });
        assert.equal(eb.parsed.presence.count, 1);
        assert.deepEqual(eb.parsed.presence.hash, { u1: { tab: 1 } }, 'the first user_info is kept');
        // another user on worker 1: both tabs of u1 hear member_added once
        const ec = await c.subscribeAuthed(ch, { user_id: 'u2' });
        assert.equal(ec.parsed.presence.count, 2);
        await a.take({ event: 'pusher_internal:member_added', channel: ch });
        await b.take({ event: 'pusher_internal:member_added', channel: ch });
        // c's own member_added would be written to c while its worker handled
        // the subscribe: the pong comes after it
        await c.ping();
        assert.equal(c.count({ event: 'pusher_internal:member_added' }), 0);
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['u1', 'u2']);
        const info = await (await sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count,subscription_count' } })).json();
        assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
        // u1 leaves worker 1: still present through worker 2, no member_removed.
        // Once hark has handled a's close, a pong from c (a's worker) follows
        // anything that close made the worker write to c.
        await terminated(sdk, a);
        await c.ping();
        assert.equal(c.count({ event: 'pusher_internal:member_removed' }), 0);
        // and leaves worker 2: now removed
        b.close();
        const removed = await c.take({ event: 'pusher_internal:member_removed', channel: ch });
        assert.deepEqual(removed.parsed, { user_id: 'u1' });
    });

    test('workers: client events cross workers, with user_id on presence', async () => {
        const ch = uniq('presence-ce-');
        const [a, b] = await pairAcrossWorkers();
        await a.subscribeAuthed(ch, { user_id: 'alice' });
        await b.subscribeAuthed(ch, { user_id: 'bob' });
        a.send({ event: 'client-hi', channel: ch, data: { from: 'alice' } });
        const got = await b.take({ event: 'client-hi', channel: ch });
        assert.deepEqual(got.msg, { event: 'client-hi', data: { from: 'alice' }, channel: ch, user_id: 'alice' });
        b.send({ event: 'client-hi', channel: ch, data: { from: 'bob' } });
        const back = await a.take({ event: 'client-hi', channel: ch });
        assert.equal(back.msg.user_id, 'bob');
    });

    test('workers: cache channels replay to a subscriber on the other worker', async () => {
        const ch = uniq('cache-w-');
        const [a, b] = await pairAcrossWorkers();
        await a.subscribe(ch);
        await a.take({ event: 'pusher:cache_miss', channel: ch });
        await sdk.trigger(ch, 'price', { v: 42 });
        await a.take({ event: 'price', channel: ch });
        await b.subscribe(ch);
        const cached = await b.take({ event: 'price', channel: ch });
        assert.equal(cached.msg.data, '{"v":42}');
        await b.ping(); // a cache_miss would be written while b's subscribe was handled
        assert.equal(b.count({ event: 'pusher:cache_miss' }), 0);
    });

    test('workers: sendToUser, watchlists and terminate_connections reach connections on both workers', async () => {
        const user = uniq('user-');
        const [a, b] = await pairAcrossWorkers();
        const [watcher] = await pairAcrossWorkers();
        const w = await watcher.signin({ id: uniq('watcher-'), watchlist: [user] });
        assert.equal(w.msg.event, 'pusher:signin_success');
        const initial = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(initial.parsed.events, [{ name: 'offline', user_ids: [user] }]);
        await a.signin({ id: user });
        const online = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(online.parsed.events, [{ name: 'online', user_ids: [user] }]);
        await b.signin({ id: user });

        await sdk.sendToUser(user, 'note', { text: 'both tabs' });
        await a.take('note');
        await b.take('note');

        const res = await sdk.post({ path: `/users/${user}/terminate_connections`, body: {} });
        assert.equal(res.status, 200);
        for (const c of [a, b]) {
            const e = await c.take('pusher:error');
            assert.equal(e.msg.data.code, 4009);
            const closed = await c.closed();
            assert.equal(closed.code, 4009);
        }
        const offline = await watcher.take('pusher_internal:watchlist_events');
        assert.deepEqual(offline.parsed.events, [{ name: 'offline', user_ids: [user] }]);
    });

    test('workers: an app quota counts connections on both workers', async () => {
        const app = APPS.tiny; // max_connections 1
        const on = await httpOnEachWorker();
        const first = await rawReady(s, server, { app });
        // a WebSocket upgrade on an HTTP connection of each worker: one is
        // refused by first's own worker, one by the other
        for (const w of ['1', '2']) {
            const e = await on[w].upgrade(`/app/${app.key}?protocol=7`);
            assert.equal(e.event, 'pusher:error', `worker ${w} (first is on ${workerOf(first.socketId)}): ${JSON.stringify(e)}`);
            assert.equal(e.data.code, 4004);
        }
        assert.equal(first.closeInfo, null);
        first.close();
    });
});

// Socket ids are unique per node as well as per worker: the first part is
// node_id * 10000 + the worker's number (docs/api.md, node_id), so two
// servers of one cluster never issue the same id.
describe('workers: socket ids of two nodes', () => {
    const nodes = [];
    before(async () => {
        for (const node_id of [3, 4]) nodes.push(await startHark({ config: { workers: 2, node_id } }));
    });
    after(async () => { for (const n of nodes) await n.stop(); });

    test('workers: each node prefixes its socket ids with its node_id and the worker', async () => {
        const s = scope();
        try {
            const seen = [new Set(), new Set()];
            for (let i = 0; i < 2; i++) {
                for (let k = 0; k < 24; k++) {
                    const conn = await wsConnect(nodes[i]);
                    s.add(() => conn.destroy());
                    const { socket_id: id } = await conn.established();
                    assert.match(id, /^\d+\.\d+$/);
                    seen[i].add(workerOf(id));
                }
            }
            for (const p of seen[0]) assert.ok(['30001', '30002'].includes(p), `node 3: ${[...seen[0]]}`);
            for (const p of seen[1]) assert.ok(['40001', '40002'].includes(p), `node 4: ${[...seen[1]]}`);
        } finally {
            await s.close();
        }
    });
});
