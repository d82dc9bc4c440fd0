// Configuration (docs/api.md "Configuration"): --help, refusing bad files
// with file/key/reason, the PUSHER_APP_* environment, and precedence
// defaults < file < environment < flags. hark is spawned directly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, raw, rest, client, connected, subscribed, nextEvent, freePort } from './lib/harness.mjs';
import { runHark, launch, listening } from './lib/rawtcp.mjs';

// Writes `content` (object → JSON, string as is) to DIR/name and runs hark
// with cwd DIR and --config name; hark must exit on its own.
async function runWithConfig(name, content, extraArgs = []) {
    const dir = mkdtempSync(join(tmpdir(), 'hark-e2e-cfg-'));
    try {
        const port = await freePort();
        const body = typeof content === 'string' ? content : JSON.stringify({
            host: '127.0.0.1', port, data_dir: join(dir, 'data'), ...content,
        }, null, 2);
        writeFileSync(join(dir, name), body);
        return await runHark(['--config', name, ...extraArgs], { cwd: dir, ms: 5000 });
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

function assertRefused(r, what) {
    assert.equal(r.timedOut, false, `${what}: hark kept running with a bad configuration`);
    assert.equal(r.signal, null, `${what}: hark died from signal ${r.signal}\n${r.stderr}`);
    assert.notEqual(r.code, 0, `${what}: exit code 0`);
    assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
}

const mainApps = () => Object.values(APPS).map((a) => ({ ...a }));

describe('config: command line', () => {
    it('--help exits 0 and lists --config, --host, --port, --data-dir, --workers, --log-level', async () => {
        const r = await runHark(['--help']);
        assert.equal(r.timedOut, false);
        assert.equal(r.code, 0, r.stderr);
        for (const flag of ['--config', '--host', '--port', '--data-dir', '--workers', '--log-level']) {
            assert.ok(r.stdout.includes(flag), `--help does not mention ${flag}:\n${r.stdout}`);
        }
    });

    it('refuses an unknown flag with a non-zero exit naming it', async () => {
        const r = await runHark(['--no-such-flag']);
        assertRefused(r, 'unknown flag');
        assert.match(r.stderr, /no-such-flag/);
    });
});

describe('config: refused files', () => {
    it('refuses apps[0].secret: 5, naming the file, apps[0].secret and a reason', async () => {
        const apps = mainApps();
        apps[0].secret = 5;
        const r = await runWithConfig('bad.json', { apps });
        assertRefused(r, 'secret: 5');
        assert.ok(r.stderr.includes('bad.json'), `stderr does not name the file:\n${r.stderr}`);
        assert.ok(r.stderr.includes('apps[0].secret'), `stderr does not name the key:\n${r.stderr}`);
        assert.match(r.stderr, /apps\[0\]\.secret\S*:?\s+\S+/, 'a reason after the key');
    });

    it('refuses an empty app key string, naming apps[1].key', async () => {
        const apps = mainApps();
        apps[1].key = '';
        const r = await runWithConfig('empty.json', { apps });
        assertRefused(r, 'empty key');
        assert.ok(r.stderr.includes('empty.json'), r.stderr);
        assert.ok(r.stderr.includes('apps[1].key'), r.stderr);
    });

    it('refuses an unknown top-level key (a typo), naming it', async () => {
        const r = await runWithConfig('typo.json', { apps: mainApps(), max_conections: 10 });
        assertRefused(r, 'unknown key');
        assert.ok(r.stderr.includes('typo.json'), r.stderr);
        assert.ok(r.stderr.includes('max_conections'), r.stderr);
    });

    it('refuses an unknown key inside an app, naming apps[2] and the key', async () => {
        const apps = mainApps();
        apps[2].max_conections = 3;
        const r = await runWithConfig('apptypo.json', { apps });
        assertRefused(r, 'unknown app key');
        assert.ok(r.stderr.includes('apps[2]'), r.stderr);
        assert.ok(r.stderr.includes('max_conections'), r.stderr);
    });

    it('refuses a wrongly typed server key (port: "6001x"), naming port', async () => {
        const r = await runWithConfig('port.json', { apps: mainApps(), port: '6001x' });
        assertRefused(r, 'port string');
        assert.ok(r.stderr.includes('port.json'), r.stderr);
        assert.match(r.stderr, /\bport\b/);
    });

    it('refuses two apps with the same key', async () => {
        const apps = mainApps();
        apps[1].key = apps[0].key;
        const r = await runWithConfig('dup.json', { apps });
        assertRefused(r, 'duplicate key');
        assert.ok(r.stderr.includes('dup.json'), r.stderr);
    });

    it('refuses a file that is not valid JSON, naming the file', async () => {
        const r = await runWithConfig('broken.json', '{"port": 6001,');
        assertRefused(r, 'invalid JSON');
        assert.ok(r.stderr.includes('broken.json'), r.stderr);
    });

    it('refuses a missing config file, naming it', async () => {
        const r = await runHark(['--config', '/nonexistent/hark-missing.json'], { ms: 5000 });
        assertRefused(r, 'missing file');
        assert.ok(r.stderr.includes('hark-missing.json'), r.stderr);
    });
});

describe('config: environment and precedence', () => {
    const ENV_APP = { id: 'env-id', key: 'env-key', secret: 'env-secret' };
    const env = { PUSHER_APP_ID: ENV_APP.id, PUSHER_APP_KEY: ENV_APP.key, PUSHER_APP_SECRET: ENV_APP.secret };

    it('defines the app from PUSHER_APP_ID/KEY/SECRET without a config file: pusher-js connects, the SDK publishes', async () => {
        const port = await freePort();
        const server = await launch({ config: null, port, env, args: ['--host', '127.0.0.1', '--port', String(port)] });
        try {
            const c = client(server, { app: ENV_APP });
            try {
                await connected(c);
                const ch = await subscribed(c, 'env-channel');
                const got = nextEvent(ch, 'hello');
                const res = await rest(server, ENV_APP).trigger('env-channel', 'hello', { from: 'env' });
                assert.equal(res.status, 200);
                assert.deepEqual((await got).data, { from: 'env' });
            } finally {
                c.disconnect();
            }
            // the built-in default app (app-key) is not there as well
            const r = raw(server, `/app/${APPS.main.key}?protocol=7`);
            const m = await r.next();
            assert.equal(m.event, 'pusher:error');
            assert.equal(m.data.code, 4001);
            await r.closed();
        } finally {
            await server.stop();
        }
    });

    it('serves the built-in default app app-id/app-key/app-secret with no file and no environment', async () => {
        const port = await freePort();
        const server = await launch({ config: null, port, args: ['--host', '127.0.0.1', '--port', String(port)] });
        try {
            const c = client(server, { app: { id: 'app-id', key: 'app-key', secret: 'app-secret' } });
            try {
                await connected(c);
            } finally {
                c.disconnect();
            }
            const res = await rest(server, { id: 'app-id', key: 'app-key', secret: 'app-secret' }).get({ path: '/channels' });
            assert.equal(res.status, 200);
        } finally {
            await server.stop();
        }
    });

    it('lets PUSHER_APP_* replace the first app of a config file and keeps the others', async () => {
        const server = await launch({ config: { apps: mainApps(), shutdown_grace_ms: 300 }, env });
        try {
            const envConn = raw(server, `/app/${ENV_APP.key}?protocol=7`);
            const tiny = raw(server, `/app/${APPS.tiny.key}?protocol=7`);
            const old = raw(server, `/app/${APPS.main.key}?protocol=7`);
            try {
                await envConn.established();
                await tiny.established();
                const m = await old.next();
                assert.equal(m.event, 'pusher:error');
                assert.equal(m.data.code, 4001, 'the replaced first app is gone');
            } finally {
                envConn.close();
                tiny.close();
                old.close();
            }
            const res = await rest(server, ENV_APP).get({ path: '/channels' });
            assert.equal(res.status, 200);
        } finally {
            await server.stop();
        }
    });

    it('lets --port win over the config file port', async () => {
        const filePort = await freePort();
        const flagPort = await freePort();
        const server = await launch({ config: { port: filePort, shutdown_grace_ms: 300 }, port: flagPort, args: ['--port', String(flagPort)] });
        try {
            assert.equal(await listening(flagPort), true);
            assert.equal(await listening(filePort), false, 'also listening on the file port');
            const r = raw(server);
            try {
                await r.established();
            } finally {
                r.close();
            }
        } finally {
            await server.stop();
        }
    });

    it('lets HARK_PORT win over the file and --port win over HARK_PORT', async () => {
        const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
        const s1 = await launch({ config: { port: filePort, shutdown_grace_ms: 300 }, port: envPort, env: { HARK_PORT: String(envPort) } });
        try {
            assert.equal(await listening(filePort), false, 'environment must beat the file');
        } finally {
            await s1.stop();
        }
        const s2 = await launch({
            config: { port: filePort, shutdown_grace_ms: 300 }, port: flagPort,
            env: { HARK_PORT: String(envPort) }, args: ['--port', String(flagPort)],
        });
        try {
            assert.equal(await listening(envPort), false, 'the flag must beat the environment');
            assert.equal(await listening(filePort), false);
        } finally {
            await s2.stop();
        }
    });

    it('reads the config file named by HARK_CONFIG', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'hark-e2e-cfg-'));
        const port = await freePort();
        const path = join(dir, 'from-env.json');
        writeFileSync(path, JSON.stringify({ host: '127.0.0.1', port, data_dir: join(dir, 'data'), apps: [{ id: 'cfg-id', key: 'cfg-key', secret: 'cfg-secret' }] }));
        const server = await launch({ config: null, port, env: { HARK_CONFIG: path } });
        try {
            const r = raw(server, '/app/cfg-key?protocol=7');
            try {
                await r.established();
            } finally {
                r.close();
            }
        } finally {
            await server.stop();
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
