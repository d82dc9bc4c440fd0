// Robustness: bad input at every layer (JSON, WebSocket framing, HTTP), slow
// and abrupt clients. After each abuse a well-behaved pusher-js client (the
// watcher) must still receive events on the same socket, and hark must still
// be running; after() stops hark and fails on a crash or sanitizer report.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { APPS, startHark, raw, rest, client, connected, subscribed, nextEvent, sleep, until, withTimeout } from './lib/harness.mjs';
import { wsConnect, encodeFrame, OP, httpRaw, handshakeRequest } from './lib/rawtcp.mjs';

const MAX_MESSAGE = 4096;

describe('robustness', () => {
    let server;
    let sdk;
    let watcher;
    let watcherId;
    let watchCh;
    let seq = 0;

    // The watcher still receives a freshly published event on its original
    // socket, and hark is still running.
    async function alive() {
        assert.equal(server.proc.exitCode, null, `hark exited:\n${server.output().slice(-2000)}`);
        assert.equal(watcher.connection.state, 'connected');
        assert.equal(watcher.connection.socket_id, watcherId, 'the watcher had to reconnect');
        const n = ++seq;
        const got = nextEvent(watchCh, 'tick', 3000);
        await sdk.trigger('watch', 'tick', { n });
        assert.deepEqual((await got).data, { n });
    }

    before(async () => {
        server = await startHark({
            config: { max_message_bytes: MAX_MESSAGE, max_output_bytes: 65536, shutdown_grace_ms: 300 },
        });
        sdk = rest(server);
        watcher = client(server);
        watcherId = await connected(watcher);
        watchCh = await subscribed(watcher, 'watch');
    });
    after(async () => {
        watcher?.disconnect();
        await server.stop();
    });

    async function pingPong(r) {
        r.send({ event: 'pusher:ping', data: {} });
        const m = await r.next();
        assert.equal(m.event, 'pusher:pong', `expected pong, got ${JSON.stringify(m)}`);
    }

    async function expectNullError(r, what) {
        const m = await r.next();
        assert.equal(m.event, 'pusher:error', `${what}: got ${JSON.stringify(m)}`);
        assert.equal(typeof m.data, 'object', `${what}: data must be an object`);
        assert.equal(m.data.code, null, `${what}: code`);
        assert.equal(typeof m.data.message, 'string', `${what}: message`);
    }

    it('answers a malformed JSON text frame with pusher:error code null and keeps the connection', async () => {
        const r = raw(server);
        try {
            await r.established();
            r.send('{"event":"pusher:ping","data":');
            await expectNullError(r, 'truncated JSON');
            r.send('not json at all');
            await expectNullError(r, 'not JSON');
            r.send('');
            await expectNullError(r, 'empty text frame');
            await pingPong(r);
            assert.equal(r.closeInfo, null);
        } finally {
            r.close();
        }
        await alive();
    });

    it('answers JSON that is not an object, or whose event is not a string, with pusher:error code null', async () => {
        const r = raw(server);
        try {
            await r.established();
            const bad = ['[1,2,3]', '"pusher:ping"', '42', 'null', 'true',
                '{"event":5,"data":{}}', '{"event":null}', '{"data":{}}', '{"event":["pusher:ping"]}'];
            for (const b of bad) {
                r.send(b);
                await expectNullError(r, b);
            }
            await pingPong(r);
            assert.equal(r.closeInfo, null);
        } finally {
            r.close();
        }
        await alive();
    });

    it('answers an unknown event with pusher:error code null and keeps the connection', async () => {
        const r = raw(server);
        try {
            await r.established();
            for (const ev of ['nonsense', 'pusher:nonsense', 'pusher_internal:subscription_succeeded']) {
                r.send({ event: ev, data: {} });
                await expectNullError(r, ev);
            }
            await pingPong(r);
            assert.equal(r.closeInfo, null);
        } finally {
            r.close();
        }
        await alive();
    });

    it('answers a binary frame with pusher:error code null (not a pong) and keeps the connection', async () => {
        const r = raw(server);
        try {
            await r.established();
            r.ws.send(Buffer.from('{"event":"pusher:ping","data":{}}'), { binary: true });
            await expectNullError(r, 'binary frame');
            await pingPong(r);
            assert.equal(r.closeInfo, null);
        } finally {
            r.close();
        }
        await alive();
    });

    for (const [name, bytes] of [
        ['a lone 0xff byte', Buffer.from([0x7b, 0xff, 0x7d])],
        ['an overlong encoding (c0 af)', Buffer.concat([Buffer.from('{"event":"pusher:ping","data":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
        ['a UTF-16 surrogate (ed a0 80)', Buffer.concat([Buffer.from('{"event":"pusher:ping","data":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
        ['a truncated sequence at the end (e2 82)', Buffer.concat([Buffer.from('{"event":"pusher:ping"}'), Buffer.from([0xe2, 0x82])])],
    ]) {
        it(`closes with 1007 on a text frame with invalid UTF-8: ${name}`, async () => {
            const c = await wsConnect(server);
            try {
                await c.established();
                c.sendFrame(bytes, { opcode: OP.TEXT });
                const f = await c.closeFrame(3000);
                assert.ok(f, 'TCP ended without a close frame');
                assert.equal(f.code, 1007);
                await c.ended(3000);
            } finally {
                c.destroy();
            }
            await alive();
        });
    }

    it('accepts a valid multi-byte UTF-8 sequence split across two fragments', async () => {
        const c = await wsConnect(server);
        try {
            await c.established();
            const msg = Buffer.from('{"event":"pusher:ping","data":{"s":"€😀"}}');
            const cut = msg.indexOf(Buffer.from('😀')) + 2; // inside the 4-byte sequence
            c.write(Buffer.concat([
                encodeFrame(msg.subarray(0, cut), { opcode: OP.TEXT, fin: false }),
                encodeFrame(msg.subarray(cut), { opcode: OP.CONT, fin: true }),
            ]));
            const m = await c.nextEvent(undefined, 3000);
            assert.equal(m.json.event, 'pusher:pong');
        } finally {
            c.destroy();
        }
        await alive();
    });

    it('accepts a message of exactly max_message_bytes (4096)', async () => {
        const r = raw(server);
        try {
            await r.established();
            const base = JSON.stringify({ event: 'pusher:ping', data: { pad: '' } });
            const msg = JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(MAX_MESSAGE - base.length) } });
            assert.equal(Buffer.byteLength(msg), MAX_MESSAGE);
            r.send(msg);
            assert.equal((await r.next()).event, 'pusher:pong');
        } finally {
            r.close();
        }
        await alive();
    });

    it('closes with 1009 on a 10000-byte message (max_message_bytes 4096)', async () => {
        const r = raw(server);
        await r.established();
        r.send(JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(10000) } }));
        const info = await r.closed(3000);
        assert.equal(info.code, 1009);
        await alive();
    });

    it('closes with 1009 on a 4097-byte message', async () => {
        const r = raw(server);
        await r.established();
        const base = JSON.stringify({ event: 'pusher:ping', data: { pad: '' } });
        r.send(JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(MAX_MESSAGE + 1 - base.length) } }));
        assert.equal((await r.closed(3000)).code, 1009);
        await alive();
    });

    it('closes with 1009 when small fragments add up to more than max_message_bytes', async () => {
        const c = await wsConnect(server);
        try {
            await c.established();
            const chunk = Buffer.alloc(1000, 0x61);
            c.write(encodeFrame(Buffer.from('{"event":"pusher:ping","data":"'), { opcode: OP.TEXT, fin: false }));
            for (let i = 0; i < 6; i++) c.write(encodeFrame(chunk, { opcode: OP.CONT, fin: false }));
            c.write(encodeFrame(Buffer.from('"}'), { opcode: OP.CONT, fin: true }));
            const f = await c.closeFrame(3000);
            assert.ok(f, 'TCP ended without a close frame');
            assert.equal(f.code, 1009);
            await c.ended(3000);
        } finally {
            c.destroy();
        }
        await alive();
    });

    it('closes with 1002 on an unmasked client frame', async () => {
        const c = await wsConnect(server);
        try {
            await c.established();
            c.sendFrame('{"event":"pusher:ping","data":{}}', { opcode: OP.TEXT, mask: false });
            const f = await c.closeFrame(3000);
            assert.ok(f, 'TCP ended without a close frame');
            assert.equal(f.code, 1002);
            await c.ended(3000);
        } finally {
            c.destroy();
        }
        await alive();
    });

    for (const [name, frame] of [
        ['reserved opcode 0x3', () => encodeFrame('x', { opcode: 0x3 })],
        ['RSV1 set without an extension', () => encodeFrame('{"event":"pusher:ping","data":{}}', { rsv: 4 })],
        ['a fragmented ping', () => encodeFrame('x', { opcode: OP.PING, fin: false })],
        ['a continuation frame with no message started', () => encodeFrame('x', { opcode: OP.CONT })],
        ['a control frame over 125 bytes', () => encodeFrame(Buffer.alloc(126, 0x61), { opcode: OP.PING })],
    ]) {
        it(`closes with 1002 on ${name}`, async () => {
            const c = await wsConnect(server);
            try {
                await c.established();
                c.write(frame());
                const f = await c.closeFrame(3000);
                assert.ok(f, 'TCP ended without a close frame');
                assert.equal(f.code, 1002);
                await c.ended(3000);
            } finally {
                c.destroy();
            }
            await alive();
        });
    }

    it('assembles a 3-fragment text message with a ping in between into one pusher:subscribe', async () => {
        const c = await wsConnect(server);
        try {
            await c.established();
            const msg = Buffer.from(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'fragmented' } }));
            const a = msg.subarray(0, 10);
            const b = msg.subarray(10, 30);
            const d = msg.subarray(30);
            c.write(encodeFrame(a, { opcode: OP.TEXT, fin: false }));
            c.write(encodeFrame('between', { opcode: OP.PING }));
            c.write(encodeFrame(b, { opcode: OP.CONT, fin: false }));
            c.write(encodeFrame(d, { opcode: OP.CONT, fin: true }));
            // the control ping is answered (with its payload) even mid-message
            const pong = await until(() => c.pongs[0], 'the pong', 3000);
            assert.equal(pong.toString(), 'between');
            const ok = await c.nextEvent('pusher_internal:subscription_succeeded', 3000);
            assert.equal(ok.json.channel, 'fragmented');
            const got = c.nextEvent('frag-event', 3000);
            await sdk.trigger('fragmented', 'frag-event', { ok: 1 });
            assert.equal((await got).json.data, '{"ok":1}');
        } finally {
            c.destroy();
        }
        await alive();
    });

    it('works when every byte (handshake and frames) arrives in its own TCP write', async () => {
        const c = await wsConnect(server, undefined, { bytewise: true });
        try {
            await c.established();
            await c.writeBytewise(encodeFrame(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'bytewise' } })));
            const ok = await c.nextEvent('pusher_internal:subscription_succeeded', 3000);
            assert.equal(ok.json.channel, 'bytewise');
            await c.writeBytewise(encodeFrame('{"event":"pusher:ping","data":{}}'));
            assert.equal((await c.nextEvent(undefined, 3000)).json.event, 'pusher:pong');
        } finally {
            c.destroy();
        }
        await alive();
    });

    it('answers garbage instead of an HTTP request with 400 and closes the connection', async () => {
        const r = await httpRaw(server, Buffer.from('\x01\x02\x03 garbage \xff\xfe\r\nmore: garbage\r\n\r\n', 'latin1'));
        assert.equal(r.status, 400, `answer: ${JSON.stringify(r.text.slice(0, 200))}`);
        assert.ok(r.endedByServer, 'the server must close the connection');
        await alive();
    });

    it('answers a request line without an HTTP version with 400 or 505 and closes', async () => {
        const r = await httpRaw(server, 'GET /up\r\n\r\n');
        assert.ok([400, 505].includes(r.status), `answer: ${JSON.stringify(r.text.slice(0, 200))}`);
        assert.ok(r.endedByServer, 'the server must close the connection');
        await alive();
    });

    it('refuses a handshake with Sec-WebSocket-Version 8 (400 or 426) naming Sec-WebSocket-Version: 13', async () => {
        const hs = handshakeRequest(server).text.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8');
        const r = await httpRaw(server, hs, 2000);
        assert.ok([400, 426].includes(r.status), `answer: ${JSON.stringify(r.text.slice(0, 200))}`);
        assert.match(r.text, /\r\nsec-websocket-version:\s*13\r\n/i);
        await alive();
    });

    it('keeps serving others while 20 slow-loris clients hold partial request heads', async () => {
        const lorises = [];
        try {
            for (let i = 0; i < 20; i++) {
                const s = net.connect({ host: server.host, port: server.port });
                s.on('error', () => {});
                s.on('connect', () => s.write(`GET /app/${APPS.main.key}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websock`));
                lorises.push(s);
            }
            await sleep(200);
            const res = await fetch(`http://${server.host}:${server.port}/up`);
            assert.equal(res.status, 200);
            await res.arrayBuffer();
            const c = client(server);
            try {
                await connected(c, 3000);
            } finally {
                c.disconnect();
            }
            // trickle one more byte on each: still must not block anyone
            for (const s of lorises) s.write('e');
            await alive();
        } finally {
            for (const s of lorises) s.destroy();
        }
    });

    it('disconnects a subscriber that never reads (max_output_bytes 64 KiB) while another receives ~3 MB of events in order', async () => {
        const channel = 'firehose';
        const slow = await wsConnect(server);
        const good = client(server);
        try {
            await slow.established();
            slow.sendJSON({ event: 'pusher:subscribe', data: { channel } });
            await slow.nextEvent('pusher_internal:subscription_succeeded', 3000);
            slow.sock.pause(); // never read again (the kernel buffers fill up)

            await connected(good);
            const ch = await subscribed(good, channel);
            const received = [];
            ch.bind('big', (d) => received.push(d.n));

            const N = 340;
            const BATCH = 5;
            const pad = 'x'.repeat(9000);
            for (let i = 0; i < N; i += BATCH) {
                const batch = [];
                for (let j = i; j < Math.min(N, i + BATCH); j++) batch.push({ channel, name: 'big', data: JSON.stringify({ n: j, pad }) });
                const res = await sdk.triggerBatch(batch);
                assert.equal(res.status, 200);
                // pace by the well-behaved reader, not by the slow one
                await until(() => received.length >= Math.min(N, i + BATCH), `event ${i + BATCH - 1} at the good subscriber`, 5000);
                if (i % 50 === 0) assert.equal(server.proc.exitCode, null);
            }
            assert.deepEqual(received, Array.from({ length: N }, (_, k) => k), 'every event, in order');
            assert.equal(good.connection.state, 'connected');

            // now let the slow client read what the server left it: the
            // stream must end (it was cut off) well before all N events
            slow.sock.resume();
            await slow.ended(10000);
            const texts = slow.frames.filter((f) => f.opcode === OP.TEXT).map((f) => JSON.parse(f.payload.toString()));
            const bigs = texts.filter((m) => m.event === 'big').length;
            assert.ok(bigs < N, `the slow client got all ${N} events; it was never disconnected`);
            const close = slow.frames.find((f) => f.opcode === OP.CLOSE);
            if (close) assert.equal(close.code, 4100);
        } finally {
            slow.destroy();
            good.disconnect();
        }
        await alive();
    });

    it('survives 1,000 connect/disconnect cycles (50 at a time, some abrupt) and then lists channels, connects and delivers', async () => {
        const TOTAL = 1000;
        const PARALLEL = 50;
        let next = 0;
        const failures = [];
        async function cycle(i) {
            switch (i % 5) {
                case 0: { // subscribe, clean close
                    const r = raw(server);
                    await r.established();
                    r.send({ event: 'pusher:subscribe', data: { channel: `cycle-${i % 37}` } });
                    await r.next('pusher_internal:subscription_succeeded');
                    r.ws.close(1000);
                    await r.closed();
                    break;
                }
                case 1: { // subscribe, then vanish without a close frame
                    const r = raw(server);
                    await r.established();
                    r.send({ event: 'pusher:subscribe', data: { channel: `cycle-${i % 37}` } });
                    await r.next('pusher_internal:subscription_succeeded');
                    r.terminate();
                    break;
                }
                case 2: { // subscribe and destroy at once, without waiting
                    const c = await wsConnect(server);
                    c.sendJSON({ event: 'pusher:subscribe', data: { channel: `cycle-${i % 37}` } });
                    c.destroy();
                    break;
                }
                case 3: { // half a handshake, then destroy
                    const s = net.connect({ host: server.host, port: server.port });
                    s.on('error', () => {});
                    await new Promise((res, rej) => { s.on('connect', res); s.on('error', rej); });
                    s.write(handshakeRequest(server).text.slice(0, 60));
                    await sleep(1);
                    s.destroy();
                    break;
                }
                default: { // established, then destroyed mid-frame
                    const c = await wsConnect(server);
                    await c.established();
                    c.write(encodeFrame('{"event":"pusher:ping","data":{}}').subarray(0, 5));
                    c.destroy();
                }
            }
        }
        async function worker() {
            while (next < TOTAL) {
                const i = next++;
                try { await withTimeout(cycle(i), `cycle ${i}`, 10000); } catch (e) { failures.push(`${i}: ${e.message}`); }
            }
        }
        // the watcher keeps receiving while the churn goes on
        let churning = true;
        const ticker = (async () => {
            let ticks = 0;
            while (churning) {
                await alive();
                ticks++;
                await sleep(20);
            }
            return ticks;
        })();
        ticker.catch(() => {}); // awaited below; no unhandled rejection meanwhile
        await Promise.all(Array.from({ length: PARALLEL }, worker));
        churning = false;
        const ticks = await ticker;
        assert.ok(ticks >= 1);
        assert.deepEqual(failures.slice(0, 10), [], `${failures.length} cycles failed`);

        // every cycle subscriber is gone: no cycle-* channel stays occupied
        await until(async () => {
            const res = await sdk.get({ path: '/channels', params: { filter_by_prefix: 'cycle-' } });
            assert.equal(res.status, 200);
            const body = await res.json();
            return Object.keys(body.channels).length === 0;
        }, 'cycle-* channels to become unoccupied', 5000);

        const c = client(server);
        try {
            await connected(c);
            const ch = await subscribed(c, 'after-churn');
            const got = nextEvent(ch, 'hello');
            await sdk.trigger('after-churn', 'hello', { ok: true });
            assert.deepEqual((await got).data, { ok: true });
        } finally {
            c.disconnect();
        }
        await alive();
    });
});
