// What one slow, hostile or never-reading client can hold, with the limits
// set low so each bound is reached at small scale: unread pipelined answers,
// request head and body deadlines, incomplete input in total, the early
// check before a large body, connections per address (also behind a
// trusted proxy), the reserve descriptor at the open-file limit, and the
// drain on SIGTERM. One worker, so /metrics counts everything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { APPS, startHark, rest, raw, sleep, until, withTimeout } from './lib/harness.mjs';
import { signedTarget } from './lib/clients.mjs';
import { wsConnect, httpGet, launch, encodeFrame, OP } from './lib/rawtcp.mjs';

function rssKb(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

async function metric(server, name) {
    const r = await httpGet(server, '/metrics');
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
}

// A TCP connection that records what it receives and when it ended.
function tcp(server) {
    const sock = net.connect({ host: server.host, port: server.port });
    const c = { sock, data: '', ended: false };
    sock.on('data', (d) => { c.data += d.toString('latin1'); });
    sock.on('close', () => { c.ended = true; });
    sock.on('error', () => { /* close follows */ });
    c.connected = new Promise((r) => sock.once('connect', r));
    c.status = () => Number(/^HTTP\/1\.1 (\d{3})/.exec(c.data)?.[1]) || null;
    return c;
}

describe('limits: unread HTTP answers', () => {
    let server;
    before(async () => {
        server = await startHark({ config: { workers: 1, max_output_bytes: 65536, write_timeout_ms: 1500 } });
    });
    after(async () => { await server.stop(); });

    it('stops reading pipelined requests while their answers are unread, then answers every one', async () => {
        const N = 400000; // ~14 MB of requests, ~40 MB of answers
        const one = Buffer.from('GET /up HTTP/1.1\r\nHost: x\r\n\r\n');
        const c = tcp(server);
        await c.connected;
        c.sock.pause(); // read nothing
        let answers = 0;
        const before = rssKb(server.proc.pid);
        const chunk = Buffer.concat(Array(1000).fill(one));
        for (let i = 0; i < N / 1000; i++) c.sock.write(chunk);
        await sleep(1000);
        const held = rssKb(server.proc.pid) - before;
        assert.ok(held < 16 * 1024, `hark grew by ${held} kB while its answers went unread`);
        assert.ok(c.sock.writableLength > 0, 'hark stopped reading: the requests wait on the client side');
        // now read: every request is answered, in order, none lost
        c.sock.removeAllListeners('data');
        let tail = '';
        c.sock.on('data', (d) => {
            const text = tail + d.toString('latin1');
            const parts = text.split('HTTP/1.1 200 OK');
            answers += parts.length - 1;
            tail = text.slice(-20);
            // do not count a marker twice across chunk boundaries
            if (tail.includes('HTTP/1.1 200 OK')) tail = tail.slice(tail.lastIndexOf('HTTP/1.1 200 OK') + 1);
        });
        c.sock.resume();
        await until(() => answers >= N, `${N} answers (got ${answers})`, 60000);
        assert.equal(answers, N);
        c.sock.destroy();
    });

    it('closes a connection whose output makes no progress for write_timeout_ms', async () => {
        const before = await metric(server, 'hark_write_timeouts_total');
        const c = tcp(server);
        await c.connected;
        c.sock.pause();
        const req = Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
        c.sock.write(Buffer.concat(Array(20000).fill(req)));
        await until(async () => (await metric(server, 'hark_write_timeouts_total')) > before,
            'the write timeout', 10000);
        c.sock.destroy();
        assert.equal((await httpGet(server, '/ready')).status, 200);
    });
});

describe('limits: request deadlines and the check before a body', () => {
    let server;
    before(async () => {
        server = await startHark({
            config: { workers: 1, http_header_timeout_ms: 600, http_body_timeout_ms: 600, http_idle_timeout_ms: 800 },
        });
    });
    after(async () => { await server.stop(); });

    it('answers 408 to a request head sent one byte at a time past the deadline', async () => {
        const c = tcp(server);
        await c.connected;
        const head = 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200);
        let i = 0;
        const t = setInterval(() => { if (!c.ended && i < head.length) c.sock.write(head[i++]); }, 50);
        try {
            await until(() => c.ended, 'hark to close the slow connection', 8000);
        } finally {
            clearInterval(t);
        }
        assert.equal(c.status(), 408, c.data);
        assert.match(c.data, /request head did not arrive in time/);
        assert.ok(i < head.length, 'closed before the head was complete');
    });

    it('answers 408 to a silent new connection and closes an idle keep-alive one', async () => {
        const silent = tcp(server);
        await silent.connected;
        await until(() => silent.ended, 'the silent connection to close', 5000);
        assert.equal(silent.status(), 408);

        const idle = tcp(server);
        await idle.connected;
        idle.sock.write('GET /up HTTP/1.1\r\nHost: x\r\n\r\n');
        await until(() => idle.status() === 200, 'the answer');
        await until(() => idle.ended, 'the idle keep-alive connection to close', 5000);
        assert.equal((idle.data.match(/HTTP\/1\.1/g) || []).length, 1, 'closed without a second answer');
    });

    it('serves a health check whose body arrives late (no early refusal of non-API paths)', async () => {
        const c = tcp(server);
        await c.connected;
        c.sock.write('GET /ready HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n');
        await sleep(100);
        assert.equal(c.status(), null);
        c.sock.write('hello');
        await until(() => c.status() !== null, 'the answer');
        assert.equal(c.status(), 200, c.data);
        c.sock.destroy();
    });

    it('answers 408 to a body that does not arrive in time', async () => {
        const body = JSON.stringify({ name: 'e', channels: ['c'], data: 'x'.repeat(500) });
        const target = signedTarget(APPS.main, 'POST', `/apps/${APPS.main.id}/events`, body);
        const c = tcp(server);
        await c.connected;
        c.sock.write(`POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
        await until(() => c.ended, 'hark to give up on the body', 5000);
        assert.equal(c.status(), 408, c.data);
        assert.match(c.data, /body did not arrive in time/);
    });

    it('accepts a signed body that arrives in parts within the deadline', async () => {
        const body = JSON.stringify({ name: 'e', channels: ['c'], data: 'y'.repeat(500) });
        const target = signedTarget(APPS.main, 'POST', `/apps/${APPS.main.id}/events`, body);
        const c = tcp(server);
        await c.connected;
        c.sock.write(`POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        await sleep(150);
        c.sock.write(body.slice(0, 100));
        await sleep(150);
        c.sock.write(body.slice(100));
        await until(() => c.status() !== null, 'the answer');
        assert.equal(c.status(), 200, c.data);
        c.sock.destroy();
    });

    for (const [what, make, status, text] of [
        ['a bad signature', (t) => t.replace(/auth_signature=[0-9a-f]+/, `auth_signature=${'0'.repeat(64)}`), 401, /Invalid signature/],
        ['a stale timestamp', (t) => t.replace(/auth_timestamp=\d+/, 'auth_timestamp=1000000000'), 401, /Timestamp expired/],
        ['an unknown app', (t) => t.replace(`/apps/${APPS.main.id}/`, '/apps/no-such-app/'), 404, /Unknown app id/],
    ]) {
        it(`refuses ${what} before reading a large body`, async () => {
            const size = 900000;
            const body = 'z'.repeat(size);
            const target = make(signedTarget(APPS.main, 'POST', `/apps/${APPS.main.id}/events`, body));
            const c = tcp(server);
            await c.connected;
            c.sock.write(`POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
            await until(() => c.status() !== null, 'an answer before the body', 3000);
            assert.equal(c.status(), status, c.data);
            assert.match(c.data, text);
            c.sock.destroy();
        });
    }
});

describe('limits: incomplete input in total', () => {
    let server;
    const budget = 1 << 20;
    before(async () => {
        server = await startHark({
            config: {
                workers: 1, max_pending_input_bytes: budget, max_request_bytes: 600000, http_body_timeout_ms: 30000,
                apps: [{ ...APPS.main, max_payload_bytes: 600000 }],
            },
        });
    });
    after(async () => { await server.stop(); });

    it('sheds the connection whose body has been incomplete longest when the total is over its bound', async () => {
        const body = JSON.stringify({ name: 'e', channels: ['c'], data: 'q'.repeat(500000) });
        const target = signedTarget(APPS.main, 'POST', `/apps/${APPS.main.id}/events`, body);
        const head = `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
        const conns = [];
        for (let i = 0; i < 4; i++) {
            const c = tcp(server);
            await c.connected;
            c.sock.write(head + body.slice(0, 300000)); // 300 kB held each, never finished
            conns.push(c);
            await sleep(100);
        }
        await until(() => conns[0].ended, 'the oldest incomplete request to be shed', 5000);
        assert.equal(conns[0].status(), 503, conns[0].data);
        assert.match(conns[0].data, /too many incomplete requests/);
        assert.ok(await metric(server, 'hark_incomplete_input_bytes') <= budget);
        // the newest is still being waited for, and completes
        const last = conns[3];
        assert.equal(last.ended, false);
        last.sock.write(body.slice(300000));
        await until(() => last.status() !== null, 'the newest request to be answered');
        assert.equal(last.status(), 200, last.data);
        for (const c of conns) c.sock.destroy();
        assert.ok(await metric(server, 'hark_incomplete_input_shed_total') >= 1);
    });
});

describe('limits: incomplete input of closing connections', () => {
    let server;
    before(async () => {
        server = await startHark({
            config: {
                workers: 1, max_pending_input_bytes: 400000,
                apps: [{ ...APPS.main, user_authentication_required: true, user_authentication_timeout: 1 }, APPS.noclient],
            },
        });
    });
    after(async () => { await server.stop(); });

    it('does not shed a new client for input held by connections the server is closing', async () => {
        const frame = encodeFrame(JSON.stringify({ event: 'pusher:ping', data: 'x'.repeat(60000) }));
        const partial = (bytes) => frame.subarray(0, bytes);
        const parked = [];
        for (let i = 0; i < 6; i++) {
            const c = await wsConnect(server, undefined, { allowHalfOpen: true });
            await c.established();
            c.write(partial(60000)); // an unfinished 60 kB message
            parked.push(c);
        }
        // all six are closed with 4009 (not signed in) and linger: they never finish closing
        for (const c of parked) assert.equal((await c.closeFrame(4000)).payload.readUInt16BE(0), 4009);
        const fresh = await wsConnect(server, `/app/${APPS.noclient.key}?protocol=7`); // no sign-in deadline
        await fresh.established();
        fresh.write(partial(50000)); // over the bound only with the closing ones counted
        // hark holds it (incomplete input of live connections, the only kind
        // counted): only now is the bound in play
        await until(async () => (await metric(server, 'hark_incomplete_input_bytes')) >= 50000,
            'hark to hold the unfinished 50 kB', 3000);
        fresh.write(frame.subarray(50000)); // the rest of its message
        const m = await fresh.nextMessage(3000);
        assert.notEqual(m?.opcode, OP.CLOSE, `the new client was closed: ${m?.payload}`);
        assert.equal(m.json.event, 'pusher:pong');
        for (const c of [...parked, fresh]) c.destroy();
    });
});

describe('limits: connections per address', () => {
    let server;
    before(async () => {
        // launch(): its readiness probes do not keep a connection open
        server = await launch({ config: { workers: 1, max_connections_per_ip: 3, trusted_proxies: ['10.9.9.9', '::1'] } });
    });
    after(async () => { await server.stop(); });

    it('refuses the connection past max_connections_per_ip with 429, and admits one again after a close', async () => {
        const open = [];
        for (let i = 0; i < 3; i++) {
            const r = raw(server);
            await r.established();
            open.push(r);
        }
        const refused = await httpGet(server, '/up');
        assert.equal(refused.status, 429, refused.text);
        assert.match(refused.text, /Too many connections from your address/);
        await assert.rejects(wsConnect(server), /expected 101, got: HTTP\/1\.1 429/);
        open.pop().close();
        await until(async () => (await httpGet(server, '/up')).status === 200, 'a slot to free up');
        for (const r of open) r.close();
    });
});

describe('limits: connections per address behind a trusted proxy', () => {
    let server;
    before(async () => {
        server = await launch({ config: { workers: 1, max_connections_per_ip: 2, trusted_proxies: '127.0.0.1' } });
    });
    after(async () => { await server.stop(); });

    const via = (ip) => wsConnect(server, undefined, { extraHeaders: `X-Forwarded-For: ${ip}, 127.0.0.1\r\n` });

    it('counts upgrades by the forwarded address', async () => {
        const a1 = await via('203.0.113.5');
        const a2 = await via('203.0.113.5');
        await assert.rejects(via('203.0.113.5'), /expected 101, got: HTTP\/1\.1 429/);
        const b1 = await via('203.0.113.6'); // another client behind the same proxy
        // the proxy's own plain requests are not limited
        for (let i = 0; i < 4; i++) assert.equal((await httpGet(server, '/up')).status, 200);
        a1.destroy();
        await until(async () => { try { (await via('203.0.113.5')).destroy(); return true; } catch { return false; } },
            'the forwarded address to have a slot again');
        a2.destroy();
        b1.destroy();
    });

    it('reads the proxy\'s own X-Forwarded-For line, not a forged one before it', async () => {
        const forged = (n) => wsConnect(server, undefined, {
            extraHeaders: `X-Forwarded-For: 10.9.9.${n}\r\nX-Forwarded-For: 198.51.100.7\r\n`,
        });
        const a = await forged(1);
        const b = await forged(2);
        await assert.rejects(forged(3), /expected 101, got: HTTP\/1\.1 429/);
        a.destroy();
        b.destroy();
    });
});

describe('limits: out of file descriptors', () => {
    let server;
    before(async () => {
        server = await launch({ maxFiles: 96, config: { workers: 1, http_header_timeout_ms: 60000, log_level: 'error' } });
    });
    after(async () => { await server.stop(); });

    it('closes sessions past max_connections (the open-file limit less a margin) with 4100', async () => {
        const sessions = [];
        for (;;) {
            const c = await wsConnect(server);
            const m = await c.nextEvent();
            if (m.json.event === 'pusher:error') {
                assert.equal(m.json.data.code, 4100);
                assert.match(m.json.data.message, /over capacity/i);
                assert.equal((await c.closeFrame()).payload.readUInt16BE(0), 4100);
                c.destroy();
                break;
            }
            assert.equal(m.json.event, 'pusher:connection_established');
            sessions.push(c);
            assert.ok(sessions.length < 96, 'the cap was reached');
        }
        for (const c of sessions) c.destroy();
    });

    it('answers a new client on the reserve descriptor with 4100 when every descriptor is busy', async () => {
        // requests whose bodies are on their way: not idle, never evicted
        const body = JSON.stringify({ name: 'e', channels: ['c'], data: 'b'.repeat(2000) });
        const target = signedTarget(APPS.main, 'POST', `/apps/${APPS.main.id}/events`, body);
        const busy = [];
        for (let i = 0; i < 110; i++) {
            const b = tcp(server);
            b.sock.write(`POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
            busy.push(b);
        }
        await sleep(500);
        const c = await wsConnect(server);
        const m = await c.nextEvent('pusher:error');
        assert.equal(m.json.data.code, 4100);
        assert.equal(m.json.data.message, 'Over capacity: the server is out of connections');
        assert.equal((await c.closeFrame()).payload.readUInt16BE(0), 4100);
        c.destroy();
        for (const b of busy) b.sock.destroy();
        await until(async () => (await httpGet(server, '/ready')).status === 200, 'service once descriptors are free', 5000);
        assert.ok(await metric(server, 'hark_out_of_descriptors_refused_total') >= 1);
        const ok = await wsConnect(server);
        assert.equal(typeof (await ok.established()).socket_id, 'string');
        ok.destroy();
    });

    it('closes silent connections holding every descriptor to let a new client in', async () => {
        const hogs = [];
        for (let i = 0; i < 150; i++) {
            const s = net.connect({ host: server.host, port: server.port });
            s.on('error', () => {});
            hogs.push(s);
        }
        await sleep(1500); // silent long enough to be the first to go
        const c = await wsConnect(server);
        assert.equal(typeof (await c.established()).socket_id, 'string');
        c.destroy();
        for (const s of hogs) s.destroy();
        assert.ok(await metric(server, 'hark_idle_http_evicted_total') >= 1);
    });
});

describe('limits: drain on SIGTERM', () => {
    it('answers new clients while draining: /ready 503, upgrades closed with 4200', async () => {
        const server = await launch({ config: { workers: 1, shutdown_grace_ms: 4000 } });
        try {
            // an unfinished request keeps the drain going
            const holder = tcp(server);
            await holder.connected;
            holder.sock.write('GET /up HTTP/1.1\r\n');
            await sleep(100);
            server.proc.kill('SIGTERM');
            await until(() => /shutting down/.test(server.output()), 'the drain to start', 3000);
            const ready = await httpGet(server, '/ready');
            assert.equal(ready.status, 503);
            const c = await wsConnect(server);
            const m = await c.nextEvent('pusher:error');
            assert.equal(m.json.data.code, 4200);
            const close = await c.closeFrame();
            assert.equal(close.payload.readUInt16BE(0), 4200);
            c.destroy();
            holder.sock.destroy();
            await withTimeout(server.exited, 'hark to exit', 10000);
        } finally {
            await server.stop();
        }
    });
});
