// Test harness: starts the real hark binary on a free loopback port with a
// temporary config and data dir, and builds real pusher-js / pusher / ws
// clients pointed at it. Nothing here imitates the server.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

export const HARK_BIN = process.env.HARK_BIN || new URL('../../../build/hark', import.meta.url).pathname;

// The standard set of apps every test server gets (tests may pass their own).
export const APPS = {
    main: { id: 'app-id', key: 'app-key', secret: 'app-secret', client_events: true },
    disabled: { id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false },
    tiny: { id: 'tiny-id', key: 'tiny-key', secret: 'tiny-secret', max_connections: 1 },
    noclient: { id: 'noclient-id', key: 'noclient-key', secret: 'noclient-secret', client_events: false },
    counted: {
        id: 'counted-id', key: 'counted-key', secret: 'counted-secret',
        subscription_count: true, client_events: true,
    },
    small: {
        id: 'small-id', key: 'small-key', secret: 'small-secret', client_events: true,
        max_payload_bytes: 100, max_presence_members: 2, max_presence_user_bytes: 64,
        client_event_rate: 3, max_channels_per_event: 3, max_batch_events: 2,
    },
};

export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves when check() returns truthy; rejects after ms.
export async function until(check, what = 'condition', ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await check();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(10);
    }
}

export function withTimeout(promise, what, ms = 5000) {
    let t;
    const timeout = new Promise((_, reject) => {
        t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

// Starts hark. options.config is merged over the defaults (apps: APPS);
// options.env adds environment variables; options.args adds flags.
// Returns { host, port, proc, output(), stop(), dataDir, configPath }.
export async function startHark(options = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'hark-e2e-'));
    const port = options.port || (await freePort());
    const config = {
        host: '127.0.0.1',
        port,
        data_dir: join(dir, 'data'),
        log_level: 'info',
        // make e2e runs the suite with 1 and with 2 workers
        ...(process.env.HARK_TEST_WORKERS ? { workers: Number(process.env.HARK_TEST_WORKERS) } : {}),
        apps: Object.values(APPS),
        ...(options.config || {}),
    };
    const configPath = join(dir, 'hark.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    const env = { ...process.env, ...(options.env || {}) };
    for (const k of Object.keys(env)) if (k.startsWith('HARK_') || k.startsWith('PUSHER_APP_')) {
        if (!(options.env && k in options.env)) delete env[k];
    }
    const args = ['--config', configPath, ...(options.args || [])];
    const proc = spawn(HARK_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    let exitInfo = null;
    exited.then((e) => { exitInfo = e; });

    const server = {
        host: '127.0.0.1', port, proc, dir, configPath, dataDir: config.data_dir,
        output: () => out,
        exited,
        // Stops with SIGTERM and fails if the process crashed, was killed,
        // exited non-zero, or a sanitizer reported anything.
        async stop() {
            if (!exitInfo) {
                proc.kill('SIGTERM');
                const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
                await exited;
                clearTimeout(t);
            }
            try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
            const { code, signal } = exitInfo;
            if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(out)) {
                throw new Error(`sanitizer report in hark output:\n${out.slice(-4000)}`);
            }
            if (signal || code !== 0) {
                throw new Error(`hark exited with code ${code} signal ${signal}:\n${out.slice(-4000)}`);
            }
        },
    };
    try {
        await until(async () => {
            if (exitInfo) throw new Error(`hark exited early (${JSON.stringify(exitInfo)}):\n${out}`);
            try {
                const r = await fetch(`http://127.0.0.1:${port}/ready`);
                return r.status === 200;
            } catch {
                return false;
            }
        }, 'hark to listen', 15000);
    } catch (e) {
        proc.kill('SIGKILL');
        throw e;
    }
    return server;
}

// The server SDK, signing requests for app (default: APPS.main).
export function rest(server, app = APPS.main) {
    return new PusherServer({
        appId: app.id, key: app.key, secret: app.secret,
        host: server.host, port: String(server.port), useTLS: false,
    });
}

// A pusher-js client. Channel authorization and user authentication are
// computed in-process with the server SDK (as an app's auth endpoint would).
// opts.user: { id, info } used for presence channel_data and sign-in.
export function client(server, opts = {}) {
    const app = opts.app || APPS.main;
    const sdk = rest(server, app);
    const user = opts.user || { id: '1', info: { name: 'one' } };
    const c = new Pusher(app.key, {
        cluster: 'mt1',
        wsHost: server.host,
        wsPort: server.port,
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        channelAuthorization: {
            customHandler: ({ socketId, channelName }, cb) => {
                try {
                    if (opts.badAuth) return cb(null, { auth: `${app.key}:${'0'.repeat(64)}` });
                    const presence = channelName.startsWith('presence-')
                        ? { user_id: user.id, user_info: user.info }
                        : undefined;
                    cb(null, sdk.authorizeChannel(socketId, channelName, presence));
                } catch (e) {
                    cb(e, null);
                }
            },
        },
        userAuthentication: {
            customHandler: ({ socketId }, cb) => {
                try {
                    cb(null, sdk.authenticateUser(socketId, { id: user.id, user_info: user.info, ...(opts.userData || {}) }));
                } catch (e) {
                    cb(e, null);
                }
            },
        },
        ...(opts.pusher || {}),
    });
    return c;
}

export function connected(c, ms = 5000) {
    return withTimeout(new Promise((resolve, reject) => {
        if (c.connection.state === 'connected') return resolve(c.connection.socket_id);
        c.connection.bind('connected', () => resolve(c.connection.socket_id));
        c.connection.bind('failed', () => reject(new Error('connection failed')));
    }), 'pusher-js to connect', ms);
}

// Subscribes and resolves with the channel once subscription_succeeded
// arrives; rejects on pusher:subscription_error.
export function subscribed(c, name, ms = 5000) {
    const ch = c.subscribe(name);
    return withTimeout(new Promise((resolve, reject) => {
        ch.bind('pusher:subscription_succeeded', () => resolve(ch));
        ch.bind('pusher:subscription_error', (e) => reject(Object.assign(new Error(`subscription_error ${JSON.stringify(e)}`), { detail: e })));
    }), `subscription to ${name}`, ms);
}

// Resolves with the next `event` on channel-or-client `target`.
export function nextEvent(target, event, ms = 5000) {
    return withTimeout(new Promise((resolve) => {
        const fn = (data, meta) => { target.unbind(event, fn); resolve({ data, meta }); };
        target.bind(event, fn);
    }), `event ${event}`, ms);
}

// A raw WebSocket (the `ws` package) with a queue of parsed messages, for
// checks pusher-js would hide (exact frames, close codes, bad input).
export function raw(server, path = `/app/${APPS.main.key}?protocol=7&client=js&version=8.6.0&flash=false`, wsOpts = {}) {
    const ws = new WebSocket(`ws://${server.host}:${server.port}${path}`, wsOpts);
    const queue = [];
    const waiters = [];
    let closeInfo = null;
    const closeWaiters = [];
    ws.on('message', (data, isBinary) => {
        const text = data.toString();
        let msg;
        try { msg = JSON.parse(text); } catch { msg = { raw: text, isBinary }; }
        if (msg && typeof msg.data === 'string') {
            try { msg.parsed = JSON.parse(msg.data); } catch { /* keep string */ }
        }
        const w = waiters.shift();
        if (w) w(msg); else queue.push(msg);
    });
    ws.on('close', (code, reason) => {
        closeInfo = { code, reason: reason.toString() };
        for (const w of closeWaiters.splice(0)) w(closeInfo);
    });
    ws.on('error', () => { /* surfaced through close */ });
    return {
        ws,
        // next message (any event), or the next one whose event is `event`
        async next(event, ms = 5000) {
            for (;;) {
                const msg = queue.length ? queue.shift() : await withTimeout(new Promise((r) => waiters.push(r)), `a message${event ? ' ' + event : ''}`, ms);
                if (!event || msg.event === event) return msg;
            }
        },
        send(obj) { ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
        closed(ms = 5000) {
            if (closeInfo) return Promise.resolve(closeInfo);
            return withTimeout(new Promise((r) => closeWaiters.push(r)), 'the socket to close', ms);
        },
        get closeInfo() { return closeInfo; },
        pending: queue,
        close() { try { ws.close(); } catch { /* ignore */ } },
        terminate() { try { ws.terminate(); } catch { /* ignore */ } },
        async established() {
            const m = await this.next('pusher:connection_established');
            return JSON.parse(m.data);
        },
    };
}
