// Webhooks (docs/api.md "Webhooks"; spec §9): the real binary posts to a
// real HTTP receiver in this process, and the real `pusher` SDK's
// webhook(req).isValid() judges every request. Covers every event type,
// the grace delay on a page reload, batching, retries (500 ×3 then 200),
// dead letters with `hark webhooks replay`, flush on SIGTERM, and kill -9
// with webhooks queued.
import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HARK_BIN, startHark, rest, freePort, until, sleep } from './lib/harness.mjs';
import { scope, rawReady, uniq, hmac } from './lib/clients.mjs';

const APP = { id: 'wh-id', key: 'wh-key', secret: 'wh-secret', client_events: true };

// Fast delivery settings for tests; each test overrides what it is about.
const FAST = {
    webhook_grace_ms: 0,
    webhook_batch_ms: 20,
    webhook_timeout_ms: 2000,
    webhook_retries: 5,
    webhook_backoff_ms: 50,
    webhook_backoff_max_ms: 200,
};

// An HTTP receiver on a loopback port. respond(n) gives the status of the
// n-th request (0-based); default 200. Every request is kept raw.
async function receiver({ port = 0, respond = () => 200 } = {}) {
    const reqs = [];
    const srv = createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const rawBody = Buffer.concat(chunks).toString('utf8');
            const status = respond(reqs.length);
            let body;
            try { body = JSON.parse(rawBody); } catch { /* kept raw */ }
            reqs.push({ method: req.method, url: req.url, headers: req.headers, rawBody, body, status, at: Date.now() });
            res.writeHead(status, { 'Content-Type': 'text/plain' });
            res.end(status < 300 ? 'ok' : 'no');
        });
    });
    await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', resolve);
    });
    const actual = srv.address().port;
    return {
        port: actual,
        url: `http://127.0.0.1:${actual}/pusher/webhooks`,
        reqs,
        // Events of acknowledged (2xx) requests, in arrival order.
        delivered() {
            return reqs.filter((r) => r.status < 300).flatMap((r) => r.body.events);
        },
        close() {
            srv.closeAllConnections();
            return new Promise((resolve) => srv.close(resolve));
        },
    };
}

function appWith(url, extra = {}) {
    return { ...APP, webhooks: [{ url, ...(extra.webhook || {}) }], ...(extra.app || {}) };
}

async function start(app, config = {}) {
    return startHark({ config: { ...FAST, ...config, apps: [app] } });
}

// Asserts the SDK accepts the request, as an app's webhook endpoint would.
function assertValid(server, r) {
    const sdk = rest(server, APP);
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-pusher-key'], APP.key);
    const wh = sdk.webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.ok(wh.isValid(), `the pusher SDK refused ${r.rawBody}`);
    assert.equal(typeof wh.getTime().getTime(), 'number');
    assert.ok(Math.abs(r.body.time_ms - Date.now()) < 60000, 'time_ms is Unix ms');
    assert.deepEqual(Object.keys(r.body), ['time_ms', 'events']);
    // exactly what docs/api.md specifies: lowercase hex HMAC-SHA256 of the raw
    // body with the app secret
    assert.equal(r.headers['x-pusher-signature'], hmac(APP.secret, r.rawBody));
}

// A webhook gauge or counter of APP from /metrics (whole server: any worker
// answers the same). hark_webhook_events_queued counts the events (per URL)
// not yet settled, held ones included; _sent_total those a URL acknowledged.
async function whMetric(server, name) {
    const text = await (await fetch(`http://${server.host}:${server.port}/metrics`)).text();
    const m = new RegExp(`^${name}\\{app="${APP.id}"\\} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `no ${name} for ${APP.id} in /metrics:\n${text}`);
    return Number(m[1]);
}

const settled = (server) => until(async () => (await whMetric(server, 'hark_webhook_events_queued')) === 0,
    'every queued webhook event settled', 10000);

const named = (events, name, channel) => events.filter((e) => e.name === name && (!channel || e.channel === channel));

function deadIds(dataDir) {
    const dir = join(dataDir, 'webhooks', 'dead');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
}

// `hark webhooks ...` against a server's config file. Asynchronous: the
// receiver it may post to runs in this process.
function cli(server, ...args) {
    return new Promise((resolve, reject) => {
        const p = spawn(HARK_BIN, ['webhooks', ...args, '--config', server.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        const t = setTimeout(() => p.kill('SIGKILL'), 20000);
        p.on('error', reject);
        p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
    });
}

describe('webhooks', () => {
    let cleanup = [];
    afterEach(async () => {
        for (const fn of cleanup.splice(0).reverse()) await fn();
    });
    const use = (fn) => cleanup.push(fn);

    test('webhooks: every event type arrives signed so the pusher SDK validates it', async () => {
        const rcv = await receiver();
        use(() => rcv.close());
        const server = await start(appWith(rcv.url, { app: { subscription_count: true } }));
        use(() => server.stop());
        const s = scope();
        use(() => s.close());

        const priv = uniq('private-wh-');
        const pres = uniq('presence-wh-');
        const cache = uniq('cache-wh-');
        const a = await rawReady(s, server, { app: APP });
        assert.equal((await a.subscribeAuthed(priv)).msg.event, 'pusher_internal:subscription_succeeded');
        const b = await rawReady(s, server, { app: APP });
        await b.subscribeAuthed(pres, { user_id: 'u1', user_info: { name: 'one' } });
        b.send({ event: 'client-typing', channel: pres, data: { typing: true } });
        await b.ping();
        await a.subscribe(cache);
        a.send({ event: 'pusher:unsubscribe', data: { channel: priv } });
        await a.ping();
        b.close();

        const want = [
            ['channel_occupied', priv], ['subscription_count', priv], ['channel_vacated', priv],
            ['channel_occupied', pres], ['member_added', pres], ['client_event', pres],
            ['member_removed', pres], ['channel_vacated', pres], ['cache_miss', cache],
        ];
        await until(() => want.every(([n, c]) => named(rcv.delivered(), n, c).length > 0),
            'every event type', 8000);
        for (const r of rcv.reqs) assertValid(server, r);
        assert.ok(rcv.reqs.every((r) => r.url === '/pusher/webhooks'));

        const ev = rcv.delivered();
        assert.deepEqual(named(ev, 'channel_occupied', priv)[0], { name: 'channel_occupied', channel: priv });
        assert.deepEqual(named(ev, 'channel_vacated', priv)[0], { name: 'channel_vacated', channel: priv });
        assert.deepEqual(named(ev, 'member_added', pres)[0], { name: 'member_added', channel: pres, user_id: 'u1' });
        assert.deepEqual(named(ev, 'member_removed', pres)[0], { name: 'member_removed', channel: pres, user_id: 'u1' });
        assert.deepEqual(named(ev, 'cache_miss', cache)[0], { name: 'cache_miss', channel: cache });
        const counts = named(ev, 'subscription_count', priv).map((e) => e.subscription_count);
        assert.deepEqual(counts, [1, 0]);
        const ce = named(ev, 'client_event', pres)[0];
        assert.deepEqual(Object.keys(ce), ['name', 'channel', 'event', 'data', 'socket_id', 'user_id']);
        assert.equal(ce.event, 'client-typing');
        assert.equal(ce.socket_id, b.socketId);
        assert.equal(ce.user_id, 'u1');
        assert.equal(typeof ce.data, 'string', 'client_event data is a JSON string, as Pusher sends it');
        assert.deepEqual(JSON.parse(ce.data), { typing: true });
        // Per user, not per connection, and each transition once.
        assert.equal(named(ev, 'member_added', pres).length, 1);
        assert.equal(named(ev, 'channel_occupied', priv).length, 1);
    });

    test('webhooks: event_types and channel filters choose what each URL receives', async () => {
        const all = await receiver();
        const some = await receiver();
        use(() => all.close());
        use(() => some.close());
        const app = {
            ...APP,
            webhooks: [
                { url: all.url },
                { url: some.url, event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'private-only-' } },
            ],
        };
        const server = await start(app);
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const yes = uniq('private-only-');
        const no = uniq('private-not-');
        const a = await rawReady(s, server, { app: APP });
        await a.subscribeAuthed(yes);
        await a.subscribeAuthed(no);
        await until(() => named(all.delivered(), 'channel_occupied').length >= 2, 'occupied for both', 5000);
        await until(() => some.delivered().length >= 1, 'the filtered URL', 5000);
        // Both events have been routed to their URLs (one was delivered for
        // each). Once nothing is queued, whatever was routed has been
        // delivered: 2 to `all`, and 1 to `some` only if the filter held.
        await settled(server);
        assert.equal(await whMetric(server, 'hark_webhook_events_sent_total'), 3);
        assert.deepEqual(some.delivered(), [{ name: 'channel_occupied', channel: yes }]);
        for (const r of [...all.reqs, ...some.reqs]) assertValid(server, r);
    });

    test('webhooks: a page reload within the grace delay sends no vacated/occupied or removed/added pair', async () => {
        const rcv = await receiver();
        use(() => rcv.close());
        const server = await start(appWith(rcv.url), { webhook_grace_ms: 1000 });
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const ch = uniq('presence-reload-');
        const member = { user_id: 'reloader', user_info: {} };

        const first = await rawReady(s, server, { app: APP });
        await first.subscribeAuthed(ch, member);
        await until(() => named(rcv.delivered(), 'member_added', ch).length === 1, 'member_added', 5000);
        await settled(server);
        // The reload: the old page goes (hark holds its vacated and
        // member_removed), the new one subscribes within the grace delay.
        first.close();
        await until(async () => (await whMetric(server, 'hark_webhook_events_queued')) === 2,
            'channel_vacated and member_removed held', 5000);
        const second = await rawReady(s, server, { app: APP });
        await second.subscribeAuthed(ch, member);
        await sleep(1600); // past the grace delay
        const ev = rcv.delivered();
        assert.equal(named(ev, 'channel_vacated', ch).length, 0, 'no vacated');
        assert.equal(named(ev, 'member_removed', ch).length, 0, 'no member_removed');
        assert.equal(named(ev, 'channel_occupied', ch).length, 1, 'no second occupied');
        assert.equal(named(ev, 'member_added', ch).length, 1, 'no second member_added');

        // Leaving for good: both arrive, after the delay.
        const left = Date.now();
        second.close();
        await until(() => named(rcv.delivered(), 'channel_vacated', ch).length === 1
            && named(rcv.delivered(), 'member_removed', ch).length === 1, 'vacated and member_removed', 5000);
        const at = rcv.reqs.find((r) => r.body.events.some((e) => e.name === 'channel_vacated' && e.channel === ch)).at;
        assert.ok(at - left >= 900, `vacated after the grace delay (${at - left} ms)`);
        for (const r of rcv.reqs) assertValid(server, r);
    });

    test('webhooks: events within the batch window arrive in one request', async () => {
        const rcv = await receiver();
        use(() => rcv.close());
        const server = await start(appWith(rcv.url), { webhook_batch_ms: 400, webhook_batch_max: 100 });
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const a = await rawReady(s, server, { app: APP });
        const names = [1, 2, 3, 4, 5].map(() => uniq('batch-'));
        for (const n of names) a.send({ event: 'pusher:subscribe', data: { channel: n } });
        await until(() => names.every((n) => named(rcv.delivered(), 'channel_occupied', n).length === 1), 'five occupied', 5000);
        const carrying = rcv.reqs.filter((r) => r.body.events.some((e) => names.includes(e.channel)));
        assert.equal(carrying.length, 1, 'one request');
        assert.equal(carrying[0].body.events.length, 5);
        assertValid(server, carrying[0]);
    });

    test('webhooks: batches are split at webhook_batch_max', async () => {
        const rcv = await receiver();
        use(() => rcv.close());
        const server = await start(appWith(rcv.url), { webhook_batch_ms: 300, webhook_batch_max: 2 });
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const a = await rawReady(s, server, { app: APP });
        const names = [1, 2, 3, 4, 5].map(() => uniq('split-'));
        for (const n of names) a.send({ event: 'pusher:subscribe', data: { channel: n } });
        await until(() => rcv.delivered().length === 5, 'five occupied', 5000);
        assert.deepEqual(rcv.reqs.map((r) => r.body.events.length).sort(), [1, 2, 2]);
    });

    test('webhooks: a receiver answering 500 three times then 200 gets the batch exactly once', async () => {
        const rcv = await receiver({ respond: (n) => (n < 3 ? 500 : 200) });
        use(() => rcv.close());
        const server = await start(appWith(rcv.url), { webhook_backoff_ms: 100, webhook_retries: 5 });
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const ch = uniq('retry-');
        const a = await rawReady(s, server, { app: APP });
        await a.subscribe(ch);
        await until(() => rcv.reqs.some((r) => r.status === 200), 'an acknowledged attempt', 10000);
        // settled: an acknowledged batch is forgotten, nothing more can carry it
        await settled(server);
        assert.deepEqual(rcv.reqs.map((r) => r.status), [500, 500, 500, 200]);
        // The same signed batch each time, so a receiver can de-duplicate.
        assert.ok(rcv.reqs.every((r) => r.rawBody === rcv.reqs[0].rawBody));
        assert.deepEqual(rcv.delivered(), [{ name: 'channel_occupied', channel: ch }]);
        // Backoff: the gaps grow.
        const gaps = rcv.reqs.slice(1).map((r, i) => r.at - rcv.reqs[i].at);
        assert.ok(gaps.every((g) => g >= 40), `retries wait (${gaps})`);
        for (const r of rcv.reqs) assertValid(server, r);
        assert.deepEqual(deadIds(server.dataDir), []);
        // and /metrics counts it: 3 failed requests, 3 retries, 1 event sent, none dead
        const metrics = await (await fetch(`http://${server.host}:${server.port}/metrics`)).text();
        const m = (name) => Number(new RegExp(`^${name}\\{app="${APP.id}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
        assert.equal(m('hark_webhook_requests_failed_total'), 3, metrics);
        assert.equal(m('hark_webhook_requests_retried_total'), 3, metrics);
        assert.equal(m('hark_webhook_events_sent_total'), 1, metrics);
        assert.equal(m('hark_webhook_events_dead_lettered_total'), 0, metrics);
    });

    test('webhooks: a 4xx is not retried; the batch is dead-lettered at once', async () => {
        const rcv = await receiver({ respond: () => 404 });
        use(() => rcv.close());
        const server = await start(appWith(rcv.url));
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const a = await rawReady(s, server, { app: APP });
        await a.subscribe(uniq('refused-'));
        await until(() => deadIds(server.dataDir).length === 1, 'a dead letter', 5000);
        // settled: a dead-lettered batch is forgotten, nothing more can carry
        // it; and no retry was ever scheduled
        await settled(server);
        assert.equal(await whMetric(server, 'hark_webhook_requests_retried_total'), 0);
        assert.equal(await whMetric(server, 'hark_webhook_requests_failed_total'), 1);
        assert.equal(await whMetric(server, 'hark_webhook_events_dead_lettered_total'), 1);
        assert.equal(rcv.reqs.length, 1);
    });

    test('webhooks: a receiver that stays down gets the batch dead-lettered; `hark webhooks replay` delivers it', async () => {
        const port = await freePort(); // nothing listens here yet
        const url = `http://127.0.0.1:${port}/hooks`;
        const server = await start(appWith(url), { webhook_retries: 2, webhook_backoff_ms: 50 });
        use(() => server.stop());
        const s = scope();
        use(() => s.close());
        const ch = uniq('down-');
        const a = await rawReady(s, server, { app: APP });
        await a.subscribe(ch);
        await until(() => deadIds(server.dataDir).length === 1, 'a dead letter', 10000);
        const [id] = deadIds(server.dataDir);
        // the file is written before the log line: wait for the line too
        await until(() => /dead-lettered/.test(server.output()), 'the dead-letter log line', 5000);

        const listed = await cli(server, 'dead');
        assert.equal(listed.code, 0, listed.out);
        assert.ok(listed.out.includes(id), listed.out);
        assert.ok(listed.out.includes(url), listed.out);

        const stillDown = await cli(server, 'replay');
        assert.equal(stillDown.code, 1, stillDown.out);
        assert.deepEqual(deadIds(server.dataDir), [id], 'kept while the receiver is down');

        const rcv = await receiver({ port });
        use(() => rcv.close());
        const replay = await cli(server, 'replay', id);
        assert.equal(replay.code, 0, replay.out);
        assert.equal(rcv.reqs.length, 1);
        assertValid(server, rcv.reqs[0]);
        assert.deepEqual(rcv.delivered(), [{ name: 'channel_occupied', channel: ch }]);
        assert.deepEqual(deadIds(server.dataDir), []);
    });

    test('webhooks: SIGTERM sends grace-delayed events before exiting', async () => {
        const rcv = await receiver();
        use(() => rcv.close());
        const server = await start(appWith(rcv.url), { webhook_grace_ms: 30000 });
        let stopped = false;
        use(() => (stopped ? undefined : server.stop())); // if an assertion fails first
        const ch = uniq('term-');
        const s = scope();
        use(() => s.close());
        const a = await rawReady(s, server, { app: APP });
        await a.subscribe(ch);
        await until(() => named(rcv.delivered(), 'channel_occupied', ch).length === 1, 'occupied', 5000);
        await settled(server);
        a.close();
        // hark has the vacated event (queued: held or on its way) ...
        await until(async () => (await whMetric(server, 'hark_webhook_events_queued')) === 1, 'channel_vacated queued', 5000);
        // ... and still holds it 200 ms later (10 batch windows): a wait about time
        await sleep(200);
        assert.equal(await whMetric(server, 'hark_webhook_events_queued'), 1, 'held');
        assert.equal(named(rcv.delivered(), 'channel_vacated', ch).length, 0, 'held');
        stopped = true;
        await server.stop();
        assert.equal(named(rcv.delivered(), 'channel_vacated', ch).length, 1, 'sent on the way out');
    });

    test('webhooks: kill -9 with webhooks queued loses none of those written to the journal', async () => {
        const port = await freePort(); // down while the first process runs
        const url = `http://127.0.0.1:${port}/hooks`;
        // Retries far apart: events wait in memory and in the journal.
        const slow = { webhook_retries: 10, webhook_backoff_ms: 60000, webhook_backoff_max_ms: 60000 };
        const first = await start(appWith(url), slow);
        const firstDir = first.dir;
        use(() => rmSync(firstDir, { recursive: true, force: true }));
        const s = scope();
        use(() => s.close());
        const a = await rawReady(s, first, { app: APP });
        const names = 'abcdefghij'.split('').map((c) => uniq(`kill-${c}-`));
        for (const n of names) a.send({ event: 'pusher:subscribe', data: { channel: n } });
        const journal = join(first.dataDir, 'webhooks', 'journal');
        await until(() => existsSync(journal) && names.every((n) => readFileSync(journal, 'utf8').includes(n)),
            'the events in the journal', 5000);
        first.proc.kill('SIGKILL');
        await first.exited;
        a.close();

        const rcv = await receiver({ port });
        use(() => rcv.close());
        const second = await startHark({ config: { ...FAST, apps: [appWith(url)], data_dir: first.dataDir } });
        use(() => second.stop());
        await until(() => names.every((n) => named(rcv.delivered(), 'channel_occupied', n).length >= 1),
            'every queued event after the restart', 10000);
        for (const r of rcv.reqs) assertValid(second, r);
        assert.match(second.output(), /taken back/);
    });
});
