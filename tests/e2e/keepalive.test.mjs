// Keep-alive (docs/api.md "Keep-alive", spec §2.2): a silent connection gets
// a WebSocket ping after ping_interval_ms; if no frame of any kind arrives
// within pong_timeout_ms it is closed with 4201.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHark, raw, client, connected, sleep } from './lib/harness.mjs';

describe('keep-alive (ping_interval_ms 300, pong_timeout_ms 300)', () => {
    let server;
    before(async () => {
        server = await startHark({ config: { ping_interval_ms: 300, pong_timeout_ms: 300, shutdown_grace_ms: 300 } });
    });
    after(async () => {
        await server.stop();
    });

    it('closes a client that never answers the control ping with 4201 within 2 s', async () => {
        const r = raw(server, undefined, { autoPong: false });
        let pings = 0;
        r.ws.on('ping', () => { pings++; });
        await r.established();
        const t0 = Date.now();
        const info = await r.closed(2000);
        const elapsed = Date.now() - t0;
        assert.equal(info.code, 4201);
        assert.ok(pings >= 1, 'a WebSocket ping was sent before the close');
        assert.ok(elapsed >= 450, `closed after ${elapsed} ms; ping_interval + pong_timeout is 600 ms`);
    });

    it('keeps a client that answers control pings connected for 2 s, pinging it while it is silent', async () => {
        const r = raw(server); // ws answers pings automatically
        const pingTimes = [];
        r.ws.on('ping', () => pingTimes.push(Date.now()));
        try {
            await r.established();
            const t0 = Date.now();
            await sleep(2000);
            assert.equal(r.closeInfo, null, `closed: ${JSON.stringify(r.closeInfo)}`);
            assert.ok(pingTimes.length >= 2, `only ${pingTimes.length} pings in 2 s of silence`);
            const first = pingTimes[0] - t0;
            assert.ok(first >= 150 && first <= 1200, `first ping after ${first} ms of silence (interval 300)`);
            r.send({ event: 'pusher:ping', data: {} });
            assert.equal((await r.next('pusher:pong')).data, '{}');
        } finally {
            r.close();
        }
    });

    it('counts text frames as activity: a client that sends pusher:ping every 150 ms but ignores control pings stays connected', async () => {
        const r = raw(server, undefined, { autoPong: false });
        let timer;
        try {
            await r.established();
            timer = setInterval(() => r.send({ event: 'pusher:ping', data: {} }), 150);
            await sleep(2000);
            assert.equal(r.closeInfo, null, `closed: ${JSON.stringify(r.closeInfo)}`);
        } finally {
            clearInterval(timer);
            r.close();
        }
    });

    it('keeps a pusher-js client connected for 2 s on one socket (its transport answers pings)', async () => {
        const c = client(server);
        const changes = [];
        try {
            const id = await connected(c);
            c.connection.bind('state_change', (s) => changes.push(`${s.previous}->${s.current}`));
            await sleep(2000);
            assert.deepEqual(changes, []);
            assert.equal(c.connection.state, 'connected');
            assert.equal(c.connection.socket_id, id);
        } finally {
            c.disconnect();
        }
    });
});
