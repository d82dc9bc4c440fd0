// Helpers for the history suites (history_ids, history_resume, history_rest,
// history_durability): event ids, resuming a subscription with `since`
// (hark:resumed), the REST history endpoint
// GET /apps/{id}/channels/{name}/events and its paging, and restarts on one
// data_dir (kill -9 and SIGTERM). Built on harness.mjs and clients.mjs;
// nothing here imitates the server.
import { beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHark } from './harness.mjs';
import { hmac, restCall, scope } from './clients.mjs';

// What an id may be: A-Z a-z 0-9 . _ ~ -, 1 to 64 bytes.
export const ID_RE = /^[A-Za-z0-9._~-]{1,64}$/;

export function assertId(id, what = 'id') {
    assert.equal(typeof id, 'string', `${what} is not a string: ${JSON.stringify(id)}`);
    assert.match(id, ID_RE, `${what} ${JSON.stringify(id)} is not 1-64 bytes of A-Za-z0-9._~-`);
}

// One history rule (max_events 1000, max_age_s 86400 unless given).
export function rule(channels, extra = {}) {
    return { channels, max_events: 1000, max_age_s: 86400, ...extra };
}

export const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

// The `seq` embedded in an event's data ({"seq":N}).
export const seqOf = (msg) => JSON.parse(msg.data).seq;

// The JSON body of a 200 answer of an SDK call, failing with the answer's
// status and text otherwise.
export async function okBody(fn, what = 'REST call') {
    const res = await restCall(fn);
    assert.equal(res.status, 200, `${what}: status ${res.status}: ${res.text}`);
    assert.ok(res.body && typeof res.body === 'object', `${what}: not a JSON object: ${res.text}`);
    return res.body;
}

// The "ids" of a REST answer body, failing clearly when there is none.
export function idsIn(body) {
    assert.ok(body && typeof body === 'object' && Object.hasOwn(body, 'ids'), `no "ids" in the REST answer ${JSON.stringify(body)}`);
    return body.ids;
}

// Triggers `event` with data {seq: i} on ch for i in [from, to), one at a
// time, each awaited (so publication order is seq order). Resolves with the
// ids REST answered, checking each is there.
export async function publishSeq(sdk, ch, from, to, event = 'tick') {
    const ids = [];
    for (let i = from; i < to; i++) {
        const body = await okBody(() => sdk.trigger(ch, event, { seq: i }), `trigger seq ${i}`);
        assert.ok(body.ids && typeof body.ids === 'object', `no "ids" in the REST answer ${JSON.stringify(body)}`);
        assertId(body.ids[ch], `ids["${ch}"] of seq ${i}`);
        ids.push(body.ids[ch]);
    }
    return ids;
}

// As publishSeq through batch_events, `size` events per request (the app's
// max_batch_events must allow it).
export async function publishBatches(sdk, ch, from, to, size, event = 'tick') {
    const ids = [];
    for (let i = from; i < to; i += size) {
        const batch = range(i, Math.min(to, i + size)).map((n) => ({ channel: ch, name: event, data: { seq: n } }));
        const body = await okBody(() => sdk.triggerBatch(batch), `batch from seq ${i}`);
        assert.ok(Array.isArray(body.ids), `no "ids" array in the batch answer ${JSON.stringify(body)}`);
        assert.equal(body.ids.length, batch.length);
        body.ids.forEach((id, k) => assertId(id, `ids[${k}] of the batch from seq ${i}`));
        ids.push(...body.ids);
    }
    return ids;
}

const isProtocol = (m) => typeof m.event === 'string' && (m.event.startsWith('pusher:') || m.event.startsWith('pusher_internal:'));

// Subscribes raw client rc to ch with `since` (left out when undefined) and
// the other subscribe fields in extra (auth, channel_data). Resolves with
// { reply } when the subscription fails, else { reply, resumed, data,
// replayed }: resumed is the hark:resumed entry, data its parsed data, and
// replayed the messages rc got on ch between subscription_succeeded and
// hark:resumed (pusher:/pusher_internal: ones left out).
export async function resume(rc, ch, since, extra = {}, ms = 10000) {
    const reply = await rc.subscribe(ch, { ...extra, ...(since === undefined ? {} : { since }) });
    if (reply.msg.event !== 'pusher_internal:subscription_succeeded') return { reply };
    const resumed = await rc.take({ event: 'hark:resumed', channel: ch }, ms);
    const i = rc.log.indexOf(reply);
    const j = rc.log.indexOf(resumed);
    const replayed = rc.log.slice(i + 1, j).map((e) => e.msg).filter((m) => m.channel === ch && !isProtocol(m));
    let data;
    try { data = JSON.parse(resumed.msg.data); } catch { assert.fail(`hark:resumed data is not a JSON string: ${resumed.text}`); }
    return { reply, resumed, data, replayed };
}

// The hark:resumed frame is {event, channel, data} (no id) and its data is
// {"recovered":true,"count":N}, or {"recovered":false,"count":0,"reason":"…"}.
export function checkResumed(res, ch, recovered, count) {
    assert.ok(res.resumed, `the subscription failed: ${res.reply && res.reply.text}`);
    const { msg } = res.resumed;
    assert.deepEqual(Object.keys(msg).sort(), ['channel', 'data', 'event'], `hark:resumed frame ${res.resumed.text}`);
    assert.equal(msg.channel, ch);
    assert.equal(typeof msg.data, 'string', 'hark:resumed data is a JSON string');
    if (recovered) {
        assert.deepEqual(res.data, { recovered: true, count }, `hark:resumed ${msg.data}`);
        assert.equal(res.replayed.length, count, 'messages between subscription_succeeded and hark:resumed');
    } else {
        assert.deepEqual(Object.keys(res.data).sort(), ['count', 'reason', 'recovered'], `hark:resumed ${msg.data}`);
        assert.equal(res.data.recovered, false, `hark:resumed ${msg.data}`);
        assert.equal(res.data.count, 0, `hark:resumed ${msg.data}`);
        assert.equal(typeof res.data.reason, 'string');
        assert.ok(res.data.reason.length > 0, 'an empty reason');
        assert.deepEqual(res.replayed, [], 'events replayed although recovered is false');
    }
}

// ---- REST history -----------------------------------------------------------

export const eventsPath = (ch) => `/channels/${encodeURIComponent(ch)}/events`;

// GET history through the pusher SDK (which signs it); {status, body, text}.
export function history(sdk, ch, params = {}) {
    return restCall(() => sdk.get({ path: eventsPath(ch), params }));
}

// GET history signed here, with every query value percent-encoded (the SDK
// puts values in the query unencoded, which breaks on quotes, spaces, # and
// &). The signature is over the unescaped values, as Pusher signs.
// opts.secret signs with another secret; opts.override changes parameters
// after signing. Resolves {status, body, text} for any status.
export async function signedHistory(server, app, ch, params = {}, opts = {}) {
    const path = `/apps/${app.id}/channels/${encodeURIComponent(ch)}/events`;
    const q = {
        auth_key: app.key,
        auth_timestamp: String(Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        ...params,
    };
    const sorted = Object.keys(q).map((k) => [k.toLowerCase(), String(q[k])])
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => `${k}=${v}`).join('&');
    const sig = hmac(opts.secret ?? app.secret, `GET\n${path}\n${sorted}`);
    const sent = { ...q, ...(opts.override || {}), auth_signature: sig };
    const query = Object.entries(sent).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const res = await fetch(`http://${server.host}:${server.port}${path}?${query}`);
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body, text };
}

// A 4xx answer with hark's JSON error body {"error": "…", "code": status}.
export function assertError(res, status, what) {
    assert.equal(res.status, status, `${what}: status ${res.status}: ${res.text}`);
    assert.ok(res.body && typeof res.body.error === 'string' && res.body.error.length > 0,
        `${what}: no error message in ${res.text}`);
}

// Follows a history listing page by page. get(params) performs one GET;
// first holds the first page's parameters; key is 'after' (forwards:
// from=oldest or after=) or 'before' (backwards: the newest page or
// before=). limit (undefined = the default, 100) is sent with every page.
// Checks each page (200, events an array of at most limit, `next` the last
// id of the page forwards and the first backwards, null or an id), stops at
// next null or an empty page, and resolves with { events (ascending, pages
// joined), pages (their sizes) }.
export async function pageAll(get, first, key, limit, maxPages = 200) {
    const cap = limit ?? 100;
    const lim = limit === undefined ? {} : { limit };
    const chunks = [];
    let params = { ...first, ...lim };
    for (let n = 0; ; n++) {
        assert.ok(n < maxPages, `more than ${maxPages} pages`);
        const res = await get(params);
        assert.equal(res.status, 200, `page ${n} (${JSON.stringify(params)}): status ${res.status}: ${res.text}`);
        assert.deepEqual(Object.keys(res.body).sort(), ['events', 'next'], `page ${n}: ${res.text.slice(0, 300)}`);
        const { events, next } = res.body;
        assert.ok(Array.isArray(events), `page ${n}: events is not an array`);
        assert.ok(events.length <= cap, `page ${n}: ${events.length} events, limit ${cap}`);
        chunks.push(events);
        if (next === null) break;
        assertId(next, `page ${n} next`);
        if (events.length === 0) break;
        assert.equal(next, key === 'after' ? events[events.length - 1].id : events[0].id,
            `page ${n}: next is not the ${key === 'after' ? 'last' : 'first'} id of the page`);
        params = { [key]: next, ...lim };
    }
    const ordered = key === 'after' ? chunks : [...chunks].reverse();
    return { events: ordered.flat(), pages: chunks.map((c) => c.length) };
}

// ---- restarts on one data_dir ----------------------------------------------

// A data directory of the test's own (not removed by a server's stop()).
export function dataDir() {
    const root = mkdtempSync(join(tmpdir(), 'hark-e2e-hist-'));
    return { path: join(root, 'data'), remove() { rmSync(root, { recursive: true, force: true }); } };
}

// Servers on given data directories; stopAll() ends what is still running
// (a server already killed is only cleaned up).
export function fleet() {
    const running = new Set();
    return {
        async start(dir, config = {}) {
            const server = await startHark({ config: { data_dir: dir, shutdown_grace_ms: 300, ...config } });
            running.add(server);
            return server;
        },
        // SIGTERM; fails like harness stop() on a crash or sanitizer report
        async stop(server) {
            running.delete(server);
            await server.stop();
        },
        // kill -9, at once; resolves once the process is gone
        async kill(server) {
            running.delete(server);
            server.proc.kill('SIGKILL');
            await server.exited;
            rmSync(server.dir, { recursive: true, force: true });
            if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(server.output())) {
                throw new Error(`sanitizer report in hark output:\n${server.output().slice(-4000)}`);
            }
        },
        async stopAll() {
            const errors = [];
            for (const server of [...running]) {
                running.delete(server);
                try { await server.stop(); } catch (e) { errors.push(e); }
            }
            if (errors.length) throw errors[0];
        },
    };
}

// For a describe block of restart tests: before each test a client scope, a
// fleet of servers and a way to make data dirs (newDir() → path), all torn
// down after it; give(kit) is called with the fresh ones before each test.
export function restartKit(give) {
    let dirs = [];
    const kit = {
        s: null,
        servers: null,
        newDir: () => {
            const d = dataDir();
            dirs.push(d);
            return d.path;
        },
    };
    beforeEach(() => {
        kit.s = scope();
        kit.servers = fleet();
        dirs = [];
        give(kit);
    });
    afterEach(async () => {
        await kit.s.close();
        try {
            await kit.servers.stopAll();
        } finally {
            for (const d of dirs) d.remove();
        }
    });
    return kit;
}
