// Refused connections: every refusal completes the upgrade, sends
// pusher:error {code, message} as the first message, then a close frame with
// the same code (docs/api.md "WebSocket", spec §1.2, §7).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, raw, client, sleep, until } from './lib/harness.mjs';
import { launch, tcpProxy, httpGet } from './lib/rawtcp.mjs';

const q = 'client=js&version=8.6.0&flash=false';

// Asserts the refusal sequence on a harness raw() socket: the very first
// message is pusher:error with `code`, then the socket closes with `code`.
async function expectRefused(r, code) {
    const first = await r.next(undefined, 5000);
    assert.equal(first.event, 'pusher:error', `first message: ${JSON.stringify(first)}`);
    assert.equal(typeof first.data, 'object', 'pusher:error data is an object');
    assert.equal(first.data.code, code);
    assert.equal(typeof first.data.message, 'string');
    assert.ok(first.data.message.length > 0, 'a non-empty message');
    const info = await r.closed(5000);
    assert.equal(info.code, code);
    assert.equal(r.pending.length, 0, `nothing after the error: ${JSON.stringify(r.pending)}`);
}

// Connects until hark admits a connection, each refusal being `code`: for
// "admitted again once a slot is free" without guessing how long hark takes
// to free it. Resolves with [the raw socket, its connection_established data].
async function admitted(server, path, code) {
    let got;
    await until(async () => {
        const r = raw(server, path);
        const first = await r.next(undefined, 5000);
        if (first.event === 'pusher:connection_established') {
            got = [r, JSON.parse(first.data)];
            return true;
        }
        assert.equal(first.event, 'pusher:error', JSON.stringify(first));
        assert.equal(first.data.code, code);
        await r.closed();
        return false;
    }, 'a connection to be admitted', 5000);
    return got;
}

describe('errors: refused connections', () => {
    let server;
    before(async () => {
        server = await startHark({ config: { shutdown_grace_ms: 300 } });
    });
    after(async () => {
        await server.stop();
    });

    it('refuses an unknown app key with 4001', async () => {
        await expectRefused(raw(server, `/app/no-such-key?protocol=7&${q}`), 4001);
    });

    it('refuses a disabled app with 4003', async () => {
        await expectRefused(raw(server, `/app/${APPS.disabled.key}?protocol=7&${q}`), 4003);
    });

    it('refuses protocol=abc with 4006', async () => {
        await expectRefused(raw(server, `/app/${APPS.main.key}?protocol=abc&${q}`), 4006);
    });

    it('refuses protocol=3 with 4007', async () => {
        await expectRefused(raw(server, `/app/${APPS.main.key}?protocol=3&${q}`), 4007);
    });

    it('refuses protocol=8 with 4007', async () => {
        await expectRefused(raw(server, `/app/${APPS.main.key}?protocol=8&${q}`), 4007);
    });

    it('accepts protocol=4 (the lowest supported version)', async () => {
        const r = raw(server, `/app/${APPS.main.key}?protocol=4&${q}`);
        try {
            const d = await r.established();
            assert.match(d.socket_id, /^\d+\.\d+$/);
        } finally {
            r.close();
        }
    });

    it('treats a missing protocol parameter as 7 and connects', async () => {
        const r = raw(server, `/app/${APPS.main.key}`);
        try {
            const d = await r.established();
            assert.match(d.socket_id, /^\d+\.\d+$/);
            r.send({ event: 'pusher:ping', data: {} });
            assert.equal((await r.next('pusher:pong')).data, '{}');
        } finally {
            r.close();
        }
    });

    it('refuses an upgrade on a path other than /app/{key} with 4005', async () => {
        await expectRefused(raw(server, `/foo/bar?protocol=7&${q}`), 4005);
    });

    it('refuses /app/ with an empty key segment with 4005 or 4001', async () => {
        const r = raw(server, `/app/?protocol=7&${q}`);
        const first = await r.next();
        assert.equal(first.event, 'pusher:error');
        assert.ok([4001, 4005].includes(first.data.code), `code ${first.data.code}`);
        assert.equal((await r.closed()).code, first.data.code);
    });

    it('checks the key before the protocol (unknown key with protocol=abc → 4001)', async () => {
        await expectRefused(raw(server, `/app/no-such-key?protocol=abc&${q}`), 4001);
    });

    it('enforces an app\'s max_connections with 4004 and admits a new connection once one closes', async () => {
        const path = `/app/${APPS.tiny.key}?protocol=7&${q}`;
        const a = raw(server, path);
        let c;
        try {
            await a.established();
            const b = raw(server, path);
            await expectRefused(b, 4004);
            a.ws.close(1000);
            await a.closed();
            let d;
            [c, d] = await admitted(server, path, 4004);
            assert.match(d.socket_id, /^\d+\.\d+$/);
        } finally {
            a.close();
            c?.close();
        }
    });

    it('does not count other apps\' connections against an app\'s quota', async () => {
        const main = raw(server);
        const tiny = raw(server, `/app/${APPS.tiny.key}?protocol=7&${q}`);
        try {
            await main.established();
            await tiny.established();
        } finally {
            main.close();
            tiny.close();
        }
    });

    it('leaves pusher-js with an unknown key disconnected or failed, with no reconnect attempts over 1.5 s', async () => {
        const proxy = await tcpProxy(server);
        const states = [];
        const c = client({ host: proxy.host, port: proxy.port },
            { app: { id: 'x', key: 'no-such-key', secret: 'x' } });
        c.connection.bind('state_change', (s) => states.push(s.current));
        try {
            await sleep(1500);
            assert.equal(proxy.count, 1, `connection attempts: ${proxy.count}, states ${states.join(',')}`);
            assert.ok(['failed', 'disconnected'].includes(c.connection.state), `state ${c.connection.state} (${states.join(',')})`);
            assert.ok(!states.includes('connected'));
        } finally {
            c.disconnect();
            await proxy.close();
        }
    });
});

describe('errors: server-wide max_connections', () => {
    let server;
    before(async () => {
        // launch(): readiness probes close their sockets, so no idle HTTP
        // keep-alive connection occupies one of the two slots; wait until
        // hark has closed them too (the /metrics request is the one open).
        server = await launch({ config: { max_connections: 2, shutdown_grace_ms: 300 } });
        await until(async () => /^hark_connections 1$/m.test((await httpGet(server, '/metrics')).text),
            'the readiness probes\' connections to be closed');
    });
    after(async () => {
        await server.stop();
    });

    it('refuses the third connection with 4100 while two are open', async () => {
        const a = raw(server);
        const b = raw(server);
        try {
            await a.established();
            await b.established();
            await expectRefused(raw(server), 4100);
        } finally {
            a.close();
            b.close();
            await Promise.all([a.closed(), b.closed()]).catch(() => {});
        }
    });

    it('admits connections again after the two close', async () => {
        const [c] = await admitted(server, undefined, 4100);
        c.close();
    });
});
