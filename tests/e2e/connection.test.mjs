// Connection-level behaviour: the handshake frame, socket ids, pusher:ping,
// pusher-js reaching 'connected', HTTP and WebSocket on one port, and the
// WebSocket close handshake.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, raw, client, connected, withTimeout, sleep } from './lib/harness.mjs';
import { wsConnect, OP, closePayload } from './lib/rawtcp.mjs';

const SHORT = { id: 'short-id', key: 'short-key', secret: 'short-secret', activity_timeout: 30 };
const SOCKET_ID = /^\d+\.\d+$/;

describe('connection', () => {
    let server;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), SHORT], shutdown_grace_ms: 300 } });
    });
    after(async () => {
        await server.stop();
    });

    it('sends pusher:connection_established first, data a JSON string with socket_id and activity_timeout 120', async () => {
        const r = raw(server);
        const texts = [];
        r.ws.on('message', (d) => texts.push(d.toString()));
        try {
            const m = await r.next();
            assert.equal(m.event, 'pusher:connection_established');
            assert.equal(typeof m.data, 'string', 'data must be a JSON-encoded string');
            assert.equal(m.channel, undefined);
            const d = JSON.parse(m.data);
            assert.deepEqual(Object.keys(d).sort(), ['activity_timeout', 'socket_id']);
            assert.equal(typeof d.socket_id, 'string');
            assert.match(d.socket_id, SOCKET_ID);
            assert.equal(d.activity_timeout, 120);
            // compact, event first (spec §0 recommendation followed by api.md's example)
            assert.equal(texts[0], JSON.stringify({ event: 'pusher:connection_established', data: m.data }));
        } finally {
            r.close();
        }
    });

    it('advertises an app\'s configured activity_timeout', async () => {
        const r = raw(server, `/app/${SHORT.key}?protocol=7&client=js&version=8.6.0&flash=false`);
        try {
            const d = await r.established();
            assert.equal(d.activity_timeout, 30);
            assert.match(d.socket_id, SOCKET_ID);
        } finally {
            r.close();
        }
    });

    it('gives 50 concurrent connections 50 distinct socket ids of the form digits.digits', async () => {
        const clients = Array.from({ length: 50 }, () => raw(server));
        try {
            const ids = await Promise.all(clients.map(async (c) => (await c.established()).socket_id));
            for (const id of ids) assert.match(id, SOCKET_ID);
            assert.equal(new Set(ids).size, 50, `duplicate socket ids: ${ids.join(' ')}`);
        } finally {
            for (const c of clients) c.close();
        }
    });

    it('answers pusher:ping with exactly {"event":"pusher:pong","data":"{}"}', async () => {
        const r = raw(server);
        const texts = [];
        r.ws.on('message', (d) => texts.push(d.toString()));
        try {
            await r.established();
            const before = texts.length;
            r.send({ event: 'pusher:ping', data: {} });
            await r.next('pusher:pong');
            assert.equal(texts[before], '{"event":"pusher:pong","data":"{}"}');
            // and a ping with string data (pusher-js variants / leniency) too
            r.send({ event: 'pusher:ping', data: '{}' });
            await r.next('pusher:pong');
            assert.equal(texts[before + 1], '{"event":"pusher:pong","data":"{}"}');
            assert.equal(texts.length, before + 2, 'exactly one pong per ping');
        } finally {
            r.close();
        }
    });

    it('lets pusher-js 8.6.0 reach state connected with the server\'s socket id', async () => {
        const c = client(server);
        try {
            const id = await connected(c);
            assert.match(id, SOCKET_ID);
            assert.equal(c.connection.state, 'connected');
        } finally {
            c.disconnect();
        }
    });

    it('serves GET /up with 200 on the WebSocket port while a WebSocket is open', async () => {
        const r = raw(server);
        try {
            await r.established();
            const res = await fetch(`http://${server.host}:${server.port}/up`);
            assert.equal(res.status, 200);
            await res.arrayBuffer();
            // the socket is still usable afterwards
            r.send({ event: 'pusher:ping', data: {} });
            const pong = await r.next('pusher:pong');
            assert.equal(pong.data, '{}');
            assert.equal(r.closeInfo, null);
        } finally {
            r.close();
        }
    });

    it('answers GET / and GET /ready with 200', async () => {
        for (const p of ['/', '/ready']) {
            const res = await fetch(`http://${server.host}:${server.port}${p}`);
            assert.equal(res.status, 200, p);
            await res.arrayBuffer();
        }
    });

    it('answers a client close 1000 with a close frame and then ends the TCP connection', async () => {
        const c = await wsConnect(server);
        try {
            await c.established();
            c.sendFrame(closePayload(1000, 'bye'), { opcode: OP.CLOSE });
            const f = await c.closeFrame(3000);
            assert.ok(f, 'the server ended the TCP connection without a close frame');
            assert.equal(f.opcode, OP.CLOSE);
            assert.equal(f.masked, false, 'server frames must not be masked');
            assert.equal(f.code, 1000, 'the close code is echoed (RFC 6455 §5.5.1)');
            await c.ended(3000);
        } finally {
            c.destroy();
        }
    });

    it('keeps a connection open while it is idle for 1.5 s (default keep-alive is much longer)', async () => {
        const r = raw(server);
        try {
            await r.established();
            await sleep(1500);
            assert.equal(r.closeInfo, null);
            r.send({ event: 'pusher:ping', data: {} });
            await withTimeout(r.next('pusher:pong'), 'pong after idle', 3000);
        } finally {
            r.close();
        }
    });
});
