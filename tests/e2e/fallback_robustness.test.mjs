// HTTP fallback sessions (xhr_streaming / xhr / xhr_send, spec §10;
// docs/api.md "HTTP fallbacks") driven with raw HTTP over node:http and
// node:net, for what pusher-js would hide: exact frames and statuses, CORS,
// bad and oversized xhr_send bodies, polls held then answered h, receive
// requests replacing each other without interleaving, clients that vanish
// mid-stream (presence, webhooks, /metrics), the 256 KiB stream roll-over with
// non-ASCII data (raw and with pusher-js), sessions the server closes, the
// output bound, and requests that move between workers on one keep-alive
// connection.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { APPS, startHark, rest, raw, connected, subscribed, nextEvent } from './lib/harness.mjs';
import {
    scope, rawReady, uniq, record, atLeast, channelAuth, signedTriggerRequest, until, sleep, withTimeout,
} from './lib/clients.mjs';
import { ID_RE } from './lib/history.mjs';
import { httpRaw, httpGet, httpConnection } from './lib/rawtcp.mjs';
import {
    WORKERS, ROLLOVER, xhrRaw, xhrReady, xhrSessions, request, xhrClient, transportOf, countReopens, sessionId,
} from './lib/fallback.mjs';

const SESSION_TIMEOUT = 2000; // fallback_session_timeout_ms
const POLL_TIMEOUT = 1000; // fallback_poll_timeout_ms
const HEARTBEAT = 1000; // fallback_heartbeat_ms
const MAX_REQUEST = 65536; // max_request_bytes
const WAIT = 15000; // generous, for HTTP round trips under sanitizers
const range = (n) => Array.from({ length: n }, (_, i) => i);
const WH = { id: 'fbwh-id', key: 'fbwh-key', secret: 'fbwh-secret', client_events: true };

// ~2 KB of frame per event once escaped to ASCII: 2-, 3- and 4-byte UTF-8
const BIG_TEXT = 'é€😀中'.repeat(64);
const BIG_EVENTS = 200; // ≈ 400 KiB of a[…] frames: past one roll-over

const established = (line) => {
    assert.equal(line[0], 'a', `not an a frame: ${line}`);
    const [text] = JSON.parse(line.slice(1));
    const msg = JSON.parse(text);
    assert.equal(msg.event, 'pusher:connection_established');
    return JSON.parse(msg.data);
};
const closeOf = (line) => {
    assert.equal(line[0], 'c', `not a c frame: ${line}`);
    const v = JSON.parse(line.slice(1));
    assert.equal(v.length, 2);
    assert.equal(typeof v[0], 'number');
    assert.equal(typeof v[1], 'string');
    return v;
};
const sendRequest = (server, path, body) => `POST ${path} HTTP/1.1\r\nHost: ${server.host}:${server.port}\r\n`
    + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const PING = JSON.stringify([JSON.stringify({ event: 'pusher:ping', data: {} })]);

// A webhook receiver on a loopback port (events of every request, in order).
async function receiver() {
    const events = [];
    const srv = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            try { events.push(...JSON.parse(body).events); } catch { /* ignored */ }
            res.writeHead(200);
            res.end('ok');
        });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    return {
        url: `http://127.0.0.1:${srv.address().port}/hooks`,
        events,
        close() { srv.closeAllConnections(); return new Promise((r) => srv.close(r)); },
    };
}

describe('fallback robustness: raw HTTP sessions', () => {
    let server;
    let sdk;
    let hooks;
    let s;
    before(async () => {
        hooks = await receiver();
        server = await startHark({
            config: {
                workers: WORKERS,
                fallback_session_timeout_ms: SESSION_TIMEOUT,
                fallback_poll_timeout_ms: POLL_TIMEOUT,
                fallback_heartbeat_ms: HEARTBEAT,
                max_request_bytes: MAX_REQUEST,
                webhook_grace_ms: 0,
                webhook_batch_ms: 20,
                apps: [...Object.values(APPS), { ...WH, webhooks: [{ url: hooks.url }] }],
            },
        });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
        await hooks.close();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('open: a stream is 200 without a length, Connection: close, CORS; o then connection_established; h when quiet', async () => {
        const x = xhrRaw(server);
        s.add(() => x.close());
        const s1 = x.stream();
        const socketId = await x.ready(WAIT);
        assert.match(socketId, /^\d+\.\d+$/);
        assert.equal(s1.status, 200);
        assert.equal(s1.headers['access-control-allow-origin'], '*');
        assert.equal(s1.headers['content-length'], undefined);
        assert.equal(s1.headers['transfer-encoding'], undefined);
        assert.equal(s1.headers.connection, 'close');
        assert.equal(s1.lines[0], 'o');
        const est = established(s1.lines[1]);
        assert.equal(est.socket_id, socketId);
        assert.equal(typeof est.activity_timeout, 'number');
        // nothing to say: a heartbeat within fallback_heartbeat_ms
        await until(() => s1.lines.includes('h'), 'an h on the quiet stream', WAIT);
        assert.deepEqual(x.bad, []);
        assert.equal(x.linesOf('o').length, 1);
    });

    test('xhr_send: an unknown session is 404 (with CORS) and opens nothing', async () => {
        const x = xhrRaw(server);
        s.add(() => x.close());
        const r = await x.post([{ event: 'pusher:ping', data: {} }]);
        assert.equal(r.status, 404);
        assert.equal(r.headers['access-control-allow-origin'], '*');
        const other = await request(server, 'POST', `/pusher/app/no-such-key/1/${sessionId()}/xhr_send`, PING);
        assert.equal(other.status, 404);
        // the session opens with its first receive request: o first
        x.stream();
        await x.ready(WAIT);
        assert.equal(x.lines[0].line, 'o');
        assert.equal((await x.post([{ event: 'pusher:ping', data: {} }])).status, 204);
        await x.take('pusher:pong', WAIT);
    });

    test('xhr_send: a body that is not a JSON array is 400 (with CORS) and the session goes on', async () => {
        const x = await xhrReady(s, server);
        for (const body of ['not json', '{"event":"pusher:ping","data":{}}', '"[]"', '', '[', 'null', '42', '["unterminated']) {
            const r = await x.post(null, body);
            assert.equal(r.status, 400, `body ${JSON.stringify(body)} answered ${r.status} ${r.text}`);
            assert.equal(r.headers['access-control-allow-origin'], '*');
        }
        await x.ping(WAIT);
        const ch = uniq('fb-rb-');
        assert.equal((await x.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        await sdk.trigger(ch, 'still-here', { ok: 1 });
        const e = await x.take({ event: 'still-here', channel: ch }, WAIT);
        assert.deepEqual(e.parsed, { ok: 1 });
        assert.equal(x.closeFrame, null);
        assert.equal(x.requests[0].done, false, 'the stream ended');
    });

    test('CORS: OPTIONS on xhr_streaming, xhr and xhr_send answers the preflight and opens nothing; every answer has ACAO *', async () => {
        const sess = `/pusher/app/${APPS.main.key}/7/${sessionId()}`;
        for (const kind of ['xhr_streaming', 'xhr', 'xhr_send']) {
            const r = await request(server, 'OPTIONS', `${sess}/${kind}?protocol=7&client=js&version=8.6.0&t=1&n=1`, undefined, {
                Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type',
            });
            assert.equal(r.status, 204, kind);
            assert.equal(r.headers['access-control-allow-origin'], '*', kind);
            const methods = r.headers['access-control-allow-methods'].split(',').map((m) => m.trim());
            assert.ok(methods.includes('POST') && methods.includes('OPTIONS'), `${kind}: ${methods}`);
            assert.ok(r.headers['access-control-allow-headers'].toLowerCase().split(',').map((h) => h.trim()).includes('content-type'), kind);
        }
        // the preflights opened no session
        assert.equal((await request(server, 'POST', `${sess}/xhr_send`, PING)).status, 404);
        // a poll (200), a send (204) of a real session carry ACAO too
        const x = xhrRaw(server);
        s.add(() => x.close());
        const p = x.poll();
        await withTimeout(p.ended, 'the first poll', WAIT);
        assert.equal(p.status, 200);
        assert.equal(p.headers['access-control-allow-origin'], '*');
        const sent = await x.post([]);
        assert.equal(sent.status, 204);
        assert.equal(sent.headers['access-control-allow-origin'], '*');
    });

    test('poll: answered at once when frames wait, held while nothing does (an event answers it), then h after fallback_poll_timeout_ms', async () => {
        const x = xhrRaw(server);
        s.add(() => x.close());
        const p1 = x.poll();
        await withTimeout(p1.ended, 'the first poll', WAIT);
        assert.equal(p1.status, 200);
        assert.equal(p1.lines[0], 'o');
        const socketId = established(p1.lines[1]).socket_id;
        assert.match(socketId, /^\d+\.\d+$/);
        // no poll attached: the subscription's answer waits for the next one
        const ch = uniq('fb-poll-');
        await x.send({ event: 'pusher:subscribe', data: { channel: ch } });
        const p2 = x.poll();
        await withTimeout(p2.ended, 'a poll with frames waiting', WAIT);
        assert.equal(p2.status, 200);
        assert.ok(p2.lines.some((l) => l.includes('pusher_internal:subscription_succeeded')), p2.text);
        // nothing waiting: held
        const p3 = x.poll();
        await sleep(300);
        assert.equal(p3.done, false, `answered with nothing to say: ${p3.text}`);
        await sdk.trigger(ch, 'late', { n: 3 });
        await withTimeout(p3.ended, 'the held poll', WAIT);
        assert.equal(p3.status, 200);
        assert.equal(p3.lines.length, 1, p3.text);
        const late = JSON.parse(JSON.parse(p3.lines[0].slice(1))[0]);
        assert.match(late.id, ID_RE);
        assert.deepEqual(late, { event: 'late', channel: ch, data: '{"n":3}', id: late.id });
        // still nothing: h once the poll timeout passes
        const t0 = Date.now();
        const p4 = x.poll();
        await withTimeout(p4.ended, 'the idle poll', WAIT);
        assert.equal(p4.status, 200);
        assert.equal(p4.text, 'h\n');
        assert.ok(Date.now() - t0 >= POLL_TIMEOUT / 2, `answered after ${Date.now() - t0} ms`);
        assert.equal(x.linesOf('o').length, 1);
        assert.deepEqual(x.bad, []);
    });

    test('replace: a second stream ends the first; events go to the second only; o once', async () => {
        const x = await xhrReady(s, server);
        const s1 = x.requests[0];
        const ch = uniq('fb-rep-');
        await x.subscribe(ch);
        const s2 = x.stream();
        await withTimeout(s1.ended, 'the first stream to end', WAIT);
        assert.equal(s1.partial, '', 'the first stream ended mid-frame');
        for (const i of range(5)) await sdk.trigger(ch, 'n', { i });
        await until(() => x.events(ch, 'n').length === 5, 'five events', WAIT);
        assert.deepEqual(x.events(ch, 'n').map((e) => e.parsed.i), range(5));
        assert.ok(x.events(ch, 'n').every((e) => e.req === s2), 'an event on the replaced stream');
        assert.equal(s2.lines.includes('o'), false);
        assert.equal(x.linesOf('o').length, 1);
        assert.equal(s2.done, false);
    });

    test('replace: a held poll is answered h by a new stream; a stream ends when a poll replaces it', async () => {
        const x = xhrRaw(server);
        s.add(() => x.close());
        const p1 = x.poll();
        await withTimeout(p1.ended, 'the first poll', WAIT);
        x.log.forEach((e) => { e.taken = true; });
        const ch = uniq('fb-rep-');
        await x.send({ event: 'pusher:subscribe', data: { channel: ch } });
        await withTimeout(x.poll().ended, 'the subscription', WAIT);
        const held = x.poll();
        await sleep(200);
        const st = x.stream();
        await withTimeout(held.ended, 'the held poll', WAIT);
        assert.equal(held.status, 200);
        assert.equal(held.text, 'h\n');
        await sdk.trigger(ch, 'a', { k: 1 });
        const ea = await x.take({ event: 'a', channel: ch }, WAIT);
        assert.equal(ea.req, st);
        const p = x.poll();
        await withTimeout(st.ended, 'the stream replaced by a poll', WAIT);
        await sdk.trigger(ch, 'b', { k: 2 });
        const eb = await x.take({ event: 'b', channel: ch }, WAIT);
        assert.equal(eb.req, p);
        assert.equal(st.partial, '');
        assert.equal(x.linesOf('o').length, 1);
    });

    test('replace: many concurrent receive requests on one session while events flow never interleave, lose or repeat a frame', async () => {
        const x = await xhrReady(s, server);
        const ch = uniq('fb-race-');
        await x.subscribe(ch);
        const pub = s.pinned(server);
        const N = 80;
        const publishing = (async () => {
            for (const i of range(N)) await pub.trigger(ch, 'seq', { i, t: 'ü✓😀' });
        })();
        for (const k of range(10)) {
            if (k % 3 === 2) x.poll(); else x.stream();
            await sleep(5 + (k % 4) * 7);
        }
        await publishing;
        const last = x.stream();
        await until(() => x.events(ch, 'seq').length >= N, `${N} events`, WAIT);
        // every earlier request has ended; only the last one is open
        await until(() => x.requests.slice(0, -1).every((r) => r.done), 'the replaced requests to end', WAIT);
        assert.equal(last.done, false);
        // each request carried one contiguous run; the runs in the order the
        // server served them are 0..N-1 exactly once
        const runs = x.requests.map((r) => x.events(ch, 'seq').filter((e) => e.req === r).map((e) => e.parsed.i))
            .filter((run) => run.length > 0).sort((a, b) => a[0] - b[0]);
        assert.deepEqual(runs.flat(), range(N), JSON.stringify(runs));
        for (const e of x.events(ch, 'seq')) assert.equal(e.parsed.t, 'ü✓😀');
        for (const r of x.requests.slice(0, -1)) assert.equal(r.partial, '', `a request ended mid-frame: ${r.kind}`);
        assert.equal(x.linesOf('o').length, 1);
        assert.deepEqual(x.bad, []);
        await x.ping(WAIT);
    });

    test('vanish: a client gone mid-stream ends after fallback_session_timeout_ms: member_removed, webhooks, /metrics', async () => {
        const obs = await rawReady(s, server, { app: WH });
        const ch = uniq('presence-fb-gone-');
        await obs.subscribeAuthed(ch, { user_id: 'observer' });
        // the sessions of earlier tests, dropped by their scopes, end first
        await until(async () => (await xhrSessions(server)) === 0, 'no HTTP sessions left', SESSION_TIMEOUT + WAIT);
        const base = 0;
        const x = await xhrReady(s, server, { app: WH });
        const solo = uniq('private-fb-solo-');
        assert.equal((await x.subscribeAuthed(solo)).msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal((await x.subscribeAuthed(ch, { user_id: 'ghost', user_info: { n: 1 } })).msg.event, 'pusher_internal:subscription_succeeded');
        const added = await obs.take({ event: 'pusher_internal:member_added', channel: ch }, WAIT);
        assert.deepEqual(added.parsed, { user_id: 'ghost', user_info: { n: 1 } });
        assert.equal(await xhrSessions(server), base + 1);
        const oldId = x.socketId;

        x.requests[0].destroy(); // the socket goes, nothing is said
        const removed = await obs.take({ event: 'pusher_internal:member_removed', channel: ch }, SESSION_TIMEOUT + WAIT);
        assert.deepEqual(removed.parsed, { user_id: 'ghost' });
        await until(async () => (await xhrSessions(server)) === base, 'hark_sessions{transport="xhr"} back', WAIT);
        await until(() => hooks.events.some((e) => e.name === 'member_removed' && e.channel === ch && e.user_id === 'ghost')
            && hooks.events.some((e) => e.name === 'channel_vacated' && e.channel === solo), 'member_removed and channel_vacated webhooks', WAIT);
        const users = await (await rest(server, WH).get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id), ['observer']);

        // the session is gone: its sends are 404, its next receive opens a new one
        assert.equal((await x.post([{ event: 'pusher:ping', data: {} }])).status, 404);
        x.log.forEach((e) => { e.taken = true; });
        const again = x.stream();
        const newId = await x.ready(WAIT);
        assert.equal(again.lines[0], 'o');
        assert.notEqual(newId, oldId);
    });

    test('vanish: a stream dropped and re-opened within the timeout keeps the session (no o, still subscribed)', async () => {
        const obs = await rawReady(s, server);
        const ch = uniq('presence-fb-stay-');
        await obs.subscribeAuthed(ch, { user_id: 'observer' });
        const x = await xhrReady(s, server);
        await x.subscribeAuthed(ch, { user_id: 'stay' });
        await obs.take({ event: 'pusher_internal:member_added', channel: ch }, WAIT);
        x.requests[0].destroy();
        const s2 = x.stream();
        await x.ping(WAIT);
        await sleep(SESSION_TIMEOUT * 2); // the session had every chance to end wrongly
        await x.send({ event: 'client-here', channel: ch, data: { still: true } });
        const e = await obs.take({ event: 'client-here', channel: ch }, WAIT);
        assert.equal(e.msg.user_id, 'stay');
        assert.equal(obs.count('pusher_internal:member_removed'), 0);
        assert.equal(s2.lines.includes('o'), false);
        assert.equal(x.linesOf('o').length, 1);
    });

    test('xhr_send over max_request_bytes is 413; the session and the server go on', async () => {
        const x = await xhrReady(s, server);
        const big = JSON.stringify([JSON.stringify({ event: 'pusher:ping', data: 'x'.repeat(MAX_REQUEST * 3) })]);
        const r = await httpRaw(server, sendRequest(server, `${x.base}/xhr_send`, big), WAIT);
        assert.equal(r.status, 413, r.text.slice(0, 300));
        assert.equal((await httpGet(server, '/ready')).status, 200);
        await x.ping(WAIT);
        const y = await xhrReady(s, server);
        await y.ping(WAIT);
        assert.equal(x.closeFrame, null);
        // every answer on the fallback paths carries Access-Control-Allow-Origin
        assert.match(r.text.split('\r\n\r\n')[0], /\r\nAccess-Control-Allow-Origin: \*\r\n/i, `413 without CORS:\n${r.text.split('\r\n\r\n')[0]}`);
    });

    test('roll-over (raw): past 262,144 bytes a stream takes no more; the next stream gets the rest; ASCII only, nothing lost', async () => {
        const x = await xhrReady(s, server);
        const s1 = x.requests[0];
        const ch = uniq('fb-roll-');
        await x.subscribe(ch);
        const pub = s.pinned(server);
        for (const i of range(BIG_EVENTS)) await pub.trigger(ch, 'big', { seq: i, text: BIG_TEXT });
        await until(() => s1.bytes > ROLLOVER, 'the first stream past the roll-over size', WAIT);
        await sleep(300); // it would grow now if hark kept writing to it
        const s1Bytes = s1.bytes;
        const lastLine = s1.lines[s1.lines.length - 1];
        assert.equal(s1.partial ?? '', '');
        assert.ok(s1Bytes > ROLLOVER && s1Bytes - (lastLine.length + 1) <= ROLLOVER,
            `stream 1 carried ${s1Bytes} bytes, its last frame ${lastLine.length + 1}`);
        assert.ok(x.events(ch, 'big').length < BIG_EVENTS, 'everything fit one stream: make BIG_EVENTS larger');
        const s2 = x.stream();
        await withTimeout(s1.ended, 'the rolled-over stream to end', WAIT);
        assert.equal(s1.bytes, s1Bytes, 'written to after the roll-over');
        await until(() => x.events(ch, 'big').length >= BIG_EVENTS, 'every event', WAIT);
        const got = x.events(ch, 'big');
        assert.deepEqual(got.map((e) => e.parsed.seq), range(BIG_EVENTS));
        assert.ok(got.every((e) => e.parsed.text === BIG_TEXT), 'text changed');
        const split = got.findIndex((e) => e.req === s2);
        assert.ok(split > 0 && got.slice(0, split).every((e) => e.req === s1) && got.slice(split).every((e) => e.req === s2));
        assert.equal(s1.nonAscii + s2.nonAscii, 0, 'non-ASCII bytes on the wire');
        assert.equal(s2.lines.includes('o'), false);
        assert.equal(x.linesOf('o').length, 1);
        assert.deepEqual(x.bad, []);
    });

    test('roll-over (pusher-js xhr_streaming): ~400 KiB of multi-byte events arrive once, in order, on one session', async () => {
        const c = xhrClient(s, server, 'xhr_streaming');
        const socketId = await connected(c, WAIT);
        assert.equal(transportOf(c), 'xhr_streaming');
        const reopens = countReopens(c);
        const ch = uniq('fb-roll-js-');
        const channel = await subscribed(c, ch, WAIT);
        const got = record(channel, 'big');
        // every publish pipelined on one connection: one worker handles them
        // in order, back to back, so frames keep coming while pusher-js
        // re-opens its stream
        const conn = await httpConnection(server);
        s.add(() => conn.close());
        conn.write(range(BIG_EVENTS).map((i) => signedTriggerRequest(server, APPS.main, ch, 'big', { seq: i, text: BIG_TEXT })).join(''));
        for (const i of range(BIG_EVENTS)) assert.equal((await conn.response(WAIT))?.status, 200, `publish ${i}`);
        await atLeast(got, BIG_EVENTS, 'big events', WAIT);
        const done = nextEvent(channel, 'done', WAIT);
        await s.pinned(server).trigger(ch, 'done', {});
        await done; // published after the last: anything repeated would be in by now
        assert.equal(got.length, BIG_EVENTS);
        assert.deepEqual(got.map((g) => g.data.seq), range(BIG_EVENTS));
        assert.ok(got.every((g) => g.data.text === BIG_TEXT), 'text changed');
        assert.ok(reopens.n >= 1, 'pusher-js never re-opened the stream');
        assert.equal(c.connection.socket_id, socketId);
        assert.equal(c.connection.state, 'connected');
        assert.equal(transportOf(c), 'xhr_streaming');
    });

    test('closed by the server: c[code,…] after o, the same code a WebSocket gets, and the response ends', async () => {
        // the tiny app takes one connection: a WebSocket holds it
        const holder = await rawReady(s, server, { app: APPS.tiny });
        assert.ok(holder.socketId);
        const cases = [
            ['unknown app key', 'no-such-key', '?protocol=7&client=js&version=8.6.0', 4001],
            ['disabled app', APPS.disabled.key, '?protocol=7&client=js&version=8.6.0', 4003],
            ['app over its connection quota', APPS.tiny.key, '?protocol=7&client=js&version=8.6.0', null],
            ['unsupported protocol', APPS.main.key, '?protocol=99&client=js&version=8.6.0', null],
        ];
        for (const [what, key, query, expected] of cases) {
            const ws = raw(server, `/app/${key}${query}&flash=false`);
            const wsClose = await ws.closed(WAIT);
            if (expected) assert.equal(wsClose.code, expected, `${what}: WebSocket`);
            for (const kind of ['xhr_streaming', 'xhr']) {
                const r = await request(server, 'POST', `/pusher/app/${key}/3/${sessionId()}/${kind}${query}`, '', {}, WAIT);
                assert.equal(r.status, 200, `${what} ${kind}`);
                assert.equal(r.headers['access-control-allow-origin'], '*');
                const lines = r.text.split('\n');
                assert.equal(lines.pop(), '', `${what} ${kind}: ends mid-line: ${r.text}`);
                assert.equal(lines[0], 'o', `${what} ${kind}: ${r.text}`);
                const [code, reason] = closeOf(lines[lines.length - 1]);
                assert.equal(code, wsClose.code, `${what} ${kind}: ${r.text}`);
                assert.ok(reason.length > 0);
                assert.ok(!lines.slice(1, -1).some((l) => l.includes('connection_established')), `${what} ${kind}: established: ${r.text}`);
            }
        }
        // pusher-js told 4001 over xhr_streaming reports it and stays disconnected
        const c = xhrClient(s, server, 'xhr_streaming', { app: { id: 'x', key: 'no-such-key', secret: 'x' } });
        const errors = [];
        c.connection.bind('error', (e) => errors.push(e));
        await until(() => errors.some((e) => e.error?.data?.code === 4001 || e.data?.code === 4001), 'the 4001 error', WAIT);
        await until(() => c.connection.state === 'disconnected', 'pusher-js disconnected', WAIT);
    });

    // Two sessions owned by different workers (with 2 workers), and one
    // keep-alive connection that has just carried a request of b's.
    async function twoOwners() {
        const a = await xhrReady(s, server);
        let b = null;
        for (let i = 0; i < 32; i++) {
            b = await xhrReady(s, server);
            if (WORKERS === 1 || b.socketId.split('.')[0] !== a.socketId.split('.')[0]) break;
        }
        if (WORKERS > 1) assert.notEqual(b.socketId.split('.')[0], a.socketId.split('.')[0], 'no session on a second worker');
        const conn = await httpConnection(server);
        s.add(() => conn.close());
        const r = await conn.request(sendRequest(server, `${b.base}/xhr_send`, PING), WAIT);
        assert.equal(r?.status, 204);
        await b.take('pusher:pong', WAIT);
        return { a, b, conn };
    }

    test('workers: one keep-alive connection carries requests of sessions owned by different workers, one by one', async () => {
        const { a, b, conn } = await twoOwners();
        for (const i of range(8)) {
            const x = i % 2 ? b : a;
            const r = await conn.request(sendRequest(server, `${x.base}/xhr_send`, PING), WAIT);
            assert.ok(r, `the connection closed at request ${i}`);
            assert.equal(r.status, 204, `request ${i}: ${r.head}`);
            await x.take('pusher:pong', WAIT);
        }
    });

    test('workers: two pipelined requests, the first for another worker\'s session: both answered, both handled', async () => {
        const { a, b, conn } = await twoOwners();
        conn.write(sendRequest(server, `${a.base}/xhr_send`, PING) + sendRequest(server, `${b.base}/xhr_send`, PING));
        const r1 = await conn.response(WAIT);
        const r2 = await conn.response(WAIT);
        assert.equal(r1?.status, 204, 'first pipelined request');
        assert.equal(r2?.status, 204, 'second pipelined request');
        await a.take('pusher:pong', WAIT);
        await b.take('pusher:pong', WAIT);
    });
});

describe('fallback robustness: default timeouts', () => {
    let server;
    let s;
    before(async () => { server = await startHark({ config: { workers: WORKERS } }); });
    after(async () => { await server.stop(); });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('probe: an empty xhr_send answers a held poll with h, but not again within 5 s (no h/[] ping-pong)', async () => {
        const x = xhrRaw(server);
        s.add(() => x.close());
        await withTimeout(x.poll().ended, 'the first poll', WAIT);
        const held = x.poll();
        await sleep(200);
        assert.equal(held.done, false);
        assert.equal((await x.post([])).status, 204);
        await withTimeout(held.ended, 'the poll answered by the probe', WAIT); // far below the 25 s poll timeout
        assert.equal(held.text, 'h\n');
        const next = x.poll();
        await sleep(200);
        assert.equal((await x.post([])).status, 204);
        // handled after the [] (its 204 came first): the answer is the pong alone
        await x.send({ event: 'pusher:ping', data: {} });
        await withTimeout(next.ended, 'the poll answered by the pong', WAIT);
        assert.equal(next.lines.length, 1, `a second h within 5 s: ${JSON.stringify(next.text)}`);
        assert.equal(JSON.parse(JSON.parse(next.lines[0].slice(1))[0]).event, 'pusher:pong');
    });

    test('output bound: more than max_output_bytes waiting for a poll closes the session with 4100', async () => {
        const small = await startHark({ config: { workers: WORKERS, max_output_bytes: 65536, fallback_session_timeout_ms: 60000 } });
        const local = scope();
        try {
            const obs = await rawReady(local, small);
            const ch = uniq('presence-fb-slow-');
            await obs.subscribeAuthed(ch, { user_id: 'observer' });
            const x = xhrRaw(small);
            local.add(() => x.close());
            await withTimeout(x.poll().ended, 'the first poll', WAIT);
            await x.ready();
            await x.send({ event: 'pusher:subscribe', data: { channel: ch, auth: channelAuth(APPS.main, x.socketId, ch, '{"user_id":"slow"}'), channel_data: '{"user_id":"slow"}' } });
            await obs.take({ event: 'pusher_internal:member_added', channel: ch }, WAIT);
            // nobody polls: 40 × ~5 KB wait for the client
            const pub = rest(small);
            for (const i of range(40)) await pub.trigger(ch, 'fill', { i, pad: 'p'.repeat(5000) });
            const removed = await obs.take({ event: 'pusher_internal:member_removed', channel: ch }, WAIT);
            assert.deepEqual(removed.parsed, { user_id: 'slow' });
            const p = x.poll();
            await withTimeout(p.ended, 'the poll after the overflow', WAIT);
            assert.equal(p.status, 200);
            const [code] = closeOf(p.lines[p.lines.length - 1]);
            assert.equal(code, 4100, p.text.slice(-300));
            assert.ok(p.bytes <= 65536 + 1024, `${p.bytes} bytes kept for a closed session`);
        } finally {
            await local.close();
            await small.stop();
        }
    });
});

describe('fallback robustness: path_prefix', () => {
    let server;
    let s;
    before(async () => { server = await startHark({ config: { workers: WORKERS, path_prefix: '/rt' } }); });
    after(async () => { await server.stop(); });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('path_prefix: sessions live at {prefix}/pusher/app/…; pusher-js with httpPath "/rt/pusher" connects over xhr_polling', async () => {
        const x = xhrRaw(server, { prefix: '/rt' });
        s.add(() => x.close());
        x.stream();
        await x.ready(WAIT);
        await x.ping(WAIT);
        const unprefixed = await request(server, 'POST', `/pusher/app/${APPS.main.key}/1/${sessionId()}/xhr?protocol=7`, '', {}, WAIT);
        assert.equal(unprefixed.status, 404, unprefixed.text);
        const c = xhrClient(s, server, 'xhr_polling', { pusher: { httpPath: '/rt/pusher' } });
        await connected(c, WAIT);
        assert.equal(transportOf(c), 'xhr_polling');
        const ch = uniq('private-fb-prefix-');
        const channel = await subscribed(c, ch, WAIT);
        const got = record(channel, 'client-hi');
        const w = await rawReady(s, server, { path: `/rt/app/${APPS.main.key}?protocol=7&client=js&version=8.6.0&flash=false` });
        assert.equal((await w.subscribeAuthed(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        w.send({ event: 'client-hi', channel: ch, data: { p: '/rt' } });
        await atLeast(got, 1, 'the client event', WAIT);
        assert.deepEqual(got[0].data, { p: '/rt' });
    });
});
