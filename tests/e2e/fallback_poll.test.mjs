// Polling (docs/api.md "HTTP fallbacks" / "Polling"):
// GET /app/{key}/poll?channels=a,b&since=<id>,<id>&wait=N&limit=N answers
// {"events":[{channel,id,event,data,user_id?,published_at_ms}],
//  "since":"<id>,<id>",
//  "channels":{"<ch>":{last_id,recovered,more[,unread,read_id]}}}.
// Checked with raw HTTP (node:http, one TCP connection per request), the real
// `pusher` SDK for triggering and signing (authorizeChannel /
// authenticateUser with a stream token in place of a socket id) and a
// pusher-js WebSocket client for the ids it sees: where "now" is, once-each
// in-order delivery, paging, long polls held and woken, one store statement
// per poll (hark_history_poll_statements_total) and nothing while waiting
// (hark_history_polls_waiting), private channels, unread / read_id for a
// signed-in poll, recovered:false, refusals, SQL-looking input, and clients
// that vanish mid-wait.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { APPS, startHark, rest, connected, subscribed } from './lib/harness.mjs';
import { scope, uniq, until, sleep, withTimeout, channelAuth } from './lib/clients.mjs';
import { assertId, publishSeq, okBody } from './lib/history.mjs';
import { send, restReadOk, restUnreadOk, idParts, seqPlus, otherEpoch } from './lib/chat.mjs';

const WAIT = 15000; // generous, for HTTP round trips under sanitizers
// keeps every channel with the default rule (the key left out)
const MAIN = APPS.main;
// keeps the newest 5 events of a channel
const SHORT = { id: 'pshort-id', key: 'pshort-key', secret: 'pshort-secret', history: [{ channels: '*', max_events: 5, max_age_s: 86400 }] };
// keeps nothing
const NOHIST = { id: 'pnone-id', key: 'pnone-key', secret: 'pnone-secret', history: false };
// keeps kept-* only
const RULED = { id: 'prule-id', key: 'prule-key', secret: 'prule-secret', history: [{ channels: 'kept-*', max_events: 100, max_age_s: 86400 }] };

// A stream token: `<unix expiry seconds>.<digits>`, 10 minutes ahead.
const token = () => `${Math.floor(Date.now() / 1000) + 600}.${randomInt(1e9)}`;

// The path of a poll. params: channels (array), since (string), wait, limit,
// socket_id, auth ({channel: auth string}), user_data, user_auth, extra
// (raw `k=v` strings, already encoded).
function pollPath(app, params = {}) {
    const q = [];
    if (params.channels !== undefined) q.push(`channels=${encodeURIComponent([].concat(params.channels).join(','))}`);
    for (const k of ['since', 'wait', 'limit', 'socket_id', 'user_data', 'user_auth']) {
        if (params[k] !== undefined) q.push(`${k}=${encodeURIComponent(String(params[k]))}`);
    }
    for (const [ch, a] of Object.entries(params.auth || {})) q.push(`auth=${encodeURIComponent(`${ch}:${a}`)}`);
    for (const x of params.extra || []) q.push(x);
    return `/app/${app.key}/poll?${q.join('&')}`;
}

// One GET over its own TCP connection. Resolves {status, headers, text,
// body (parsed JSON or undefined), ms (time to the whole answer)}; the
// returned promise has .req (to destroy it) and .done (true once answered).
function get(server, path, ms = WAIT) {
    let req;
    const t0 = Date.now();
    const p = new Promise((resolve, reject) => {
        req = http.request({ host: server.host, port: server.port, method: 'GET', path, agent: false }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let body;
                try { body = JSON.parse(text); } catch { /* not JSON */ }
                resolve({ status: res.statusCode, headers: res.headers, text, body, ms: Date.now() - t0 });
            });
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
    });
    const out = withTimeout(p, `GET ${path.slice(0, 200)}`, ms);
    out.req = req;
    out.done = false;
    out.then(() => { out.done = true; }, () => { out.done = true; });
    return out;
}

const poll = (server, app, params, ms) => get(server, pollPath(app, params), ms);

// A poll that must answer 200 with a well-formed body; resolves with the body.
async function pollOk(server, app, params, ms) {
    const res = await poll(server, app, params, ms);
    return checkAnswer(res, params);
}

function checkAnswer(res, params) {
    const what = `poll ${JSON.stringify(params).slice(0, 300)}`;
    assert.equal(res.status, 200, `${what}: status ${res.status}: ${res.text}`);
    assert.equal(res.headers['access-control-allow-origin'], '*', `${what}: no CORS header`);
    const b = res.body;
    assert.ok(b && typeof b === 'object', `${what}: not JSON: ${res.text}`);
    assert.deepEqual(Object.keys(b).sort(), ['channels', 'events', 'since'], `${what}: ${res.text}`);
    assert.ok(Array.isArray(b.events), `${what}: events ${res.text}`);
    assert.equal(typeof b.since, 'string', `${what}: since ${res.text}`);
    const chans = [].concat(params.channels);
    const since = b.since.split(',');
    assert.equal(since.length, chans.length, `${what}: one since id per channel: ${b.since}`);
    since.forEach((id) => assertId(id, 'a since id'));
    assert.deepEqual(Object.keys(b.channels).sort(), [...chans].sort(), `${what}: channels ${res.text}`);
    for (const ch of chans) {
        const c = b.channels[ch];
        const keys = params.user_data ? ['last_id', 'more', 'read_id', 'recovered', 'unread'] : ['last_id', 'more', 'recovered'];
        assert.deepEqual(Object.keys(c).sort(), keys, `${what}: ${ch} ${JSON.stringify(c)}`);
        if (c.last_id !== null) assertId(c.last_id, `${ch} last_id`);
        assert.equal(typeof c.recovered, 'boolean');
        assert.equal(typeof c.more, 'boolean');
    }
    for (const e of b.events) {
        assert.ok(chans.includes(e.channel), `${what}: an event of another channel ${JSON.stringify(e)}`);
        for (const k of Object.keys(e)) assert.ok(['channel', 'id', 'event', 'data', 'user_id', 'published_at_ms'].includes(k), `${what}: key ${k} in ${JSON.stringify(e)}`);
        assertId(e.id, 'event id');
        assert.equal(typeof e.event, 'string');
        assert.ok(Number.isInteger(e.published_at_ms) && e.published_at_ms > 1.6e12, `published_at_ms ${e.published_at_ms}`);
    }
    return b;
}

// The since id of channel ch in an answer (by position).
const sinceOf = (body, channels, ch) => body.since.split(',')[[].concat(channels).indexOf(ch)];

// A metric of /metrics (a counter or gauge without labels).
async function metric(server, name) {
    const res = await get(server, '/metrics');
    assert.equal(res.status, 200, `/metrics: ${res.status}`);
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(res.text);
    assert.ok(m, `no ${name} in /metrics:\n${res.text.slice(0, 3000)}`);
    return Number(m[1]);
}
const STATEMENTS = 'hark_history_poll_statements_total';
const WAITING = 'hark_history_polls_waiting';

// Every kept event a pusher-js WebSocket client gets, as sent ({event,
// channel, data, id, user_id?}): pusher-js drops the top-level id from what
// it hands to bind callbacks, so read its transport's messages.
function wireEvents(c) {
    const got = [];
    c.connection.connection.transport.bind('message', (m) => {
        const msg = JSON.parse(m.data);
        if (typeof msg.event === 'string' && !msg.event.startsWith('pusher')) got.push(msg);
    });
    return got;
}

// Polls from `since` (a string) with `params` until nothing is left (more
// false everywhere and no events); resolves with {events, since, pages}.
async function drain(server, app, channels, since, params = {}) {
    const events = [];
    const pages = [];
    let s = since;
    for (let n = 0; ; n++) {
        assert.ok(n < 200, 'more than 200 polls');
        const b = await pollOk(server, app, { channels, since: s, ...params });
        events.push(...b.events);
        pages.push(b.events.length);
        s = b.since;
        if (!Object.values(b.channels).some((c) => c.more)) return { events, since: s, pages };
    }
}

describe('polling: GET /app/{key}/poll', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [MAIN, SHORT, NOHIST, RULED] } });
        sdk = rest(server, MAIN);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('a first poll without since: no events, and where "now" is — a since of zeros for channels without history, the newest id for others', async () => {
        const empty1 = uniq('poll-empty-');
        const empty2 = uniq('poll-empty-');
        const used = uniq('poll-used-');
        const ids = await publishSeq(sdk, used, 0, 3);
        const chans = [empty1, used, empty2];
        const b = await pollOk(server, MAIN, { channels: chans });
        assert.deepEqual(b.events, [], 'events in a first poll');
        const since = b.since.split(',');
        for (const ch of [empty1, empty2]) {
            const id = since[chans.indexOf(ch)];
            assert.match(idParts(id).seq, /^0+$/, `since of ${ch} (no history) is not of zeros: ${id}`);
            assert.deepEqual(b.channels[ch], { last_id: null, recovered: true, more: false });
        }
        assert.equal(since[1], ids[2], 'since of a channel with history: its newest id');
        assert.deepEqual(b.channels[used], { last_id: ids[2], recovered: true, more: false });
        // asking again from there: still nothing
        const again = await pollOk(server, MAIN, { channels: chans, since: b.since });
        assert.deepEqual(again.events, []);
        assert.equal(again.since, b.since);
    });

    test('events published after a poll come in the next poll, once each, in order per channel, with the ids a pusher-js WebSocket client sees and user_id when authored', async () => {
        const a = uniq('poll-a-');
        const b = uniq('poll-b-');
        const chans = [a, b];
        const c = s.pusher(server);
        await connected(c);
        const wire = wireEvents(c);
        await subscribed(c, a);
        await subscribed(c, b);
        const first = await pollOk(server, MAIN, { channels: chans });
        assert.deepEqual(first.events, []);
        // interleaved: a0 b0 a1(alice) b1(bob) a2
        const sent = [];
        sent.push({ ch: a, id: await send(sdk, a, 'msg', { n: 'a0' }), n: 'a0' });
        sent.push({ ch: b, id: await send(sdk, b, 'msg', { n: 'b0' }), n: 'b0' });
        sent.push({ ch: a, id: await send(sdk, a, 'said', { n: 'a1' }, { user_id: 'alice' }), n: 'a1', user: 'alice' });
        sent.push({ ch: b, id: await send(sdk, b, 'said', { n: 'b1' }, { user_id: 'bob' }), n: 'b1', user: 'bob' });
        sent.push({ ch: a, id: await send(sdk, a, 'msg', { n: 'a2' }), n: 'a2' });
        await until(() => wire.length >= 5, 'the WebSocket client to get 5 events', WAIT);
        const next = await pollOk(server, MAIN, { channels: chans, since: first.since });
        assert.equal(next.events.length, 5, `events: ${JSON.stringify(next.events)}`);
        for (const ch of chans) {
            const got = next.events.filter((e) => e.channel === ch);
            const want = sent.filter((x) => x.ch === ch);
            assert.deepEqual(got.map((e) => JSON.parse(e.data).n), want.map((x) => x.n), `order on ${ch}`);
            assert.deepEqual(got.map((e) => e.id), want.map((x) => x.id), `ids on ${ch} vs REST`);
            const ws = wire.filter((m) => m.channel === ch);
            assert.deepEqual(got.map((e) => e.id), ws.map((m) => m.id), `ids on ${ch} vs the WebSocket client`);
            assert.deepEqual(got.map((e) => e.user_id), want.map((x) => x.user), `user_id on ${ch}`);
            assert.deepEqual(got.map((e) => e.user_id), ws.map((m) => m.user_id), `user_id on ${ch} vs the WebSocket client`);
            assert.deepEqual(got.map((e) => e.event), ws.map((m) => m.event));
            assert.deepEqual(got.map((e) => e.data), ws.map((m) => m.data), `data on ${ch} vs the WebSocket client`);
            for (const e of got) assert.equal(Object.hasOwn(e, 'user_id'), e.event === 'said', `user_id only when authored: ${JSON.stringify(e)}`);
        }
        assert.equal(sinceOf(next, chans, a), sent[4].id);
        assert.equal(sinceOf(next, chans, b), sent[3].id);
        assert.deepEqual(next.channels[a], { last_id: sent[4].id, recovered: true, more: false });
        assert.deepEqual(next.channels[b], { last_id: sent[3].id, recovered: true, more: false });
        // once each: nothing more from the new since; then one new event only
        const none = await pollOk(server, MAIN, { channels: chans, since: next.since });
        assert.deepEqual(none.events, []);
        const b2 = await send(sdk, b, 'msg', { n: 'b2' });
        const last = await pollOk(server, MAIN, { channels: chans, since: none.since });
        assert.deepEqual(last.events.map((e) => e.id), [b2]);
    });

    test('paging with limit=2: more:true until everything is read, each event once, in order', async () => {
        const a = uniq('poll-page-a-');
        const b = uniq('poll-page-b-');
        const chans = [a, b];
        const first = await pollOk(server, MAIN, { channels: chans });
        const idsA = await publishSeq(sdk, a, 0, 7);
        const idsB = await publishSeq(sdk, b, 0, 3);
        const p1 = await pollOk(server, MAIN, { channels: chans, since: first.since, limit: 2 });
        assert.equal(p1.events.filter((e) => e.channel === a).length, 2, 'limit per channel');
        assert.equal(p1.events.filter((e) => e.channel === b).length, 2, 'limit per channel');
        assert.equal(p1.channels[a].more, true, `more on ${a}: ${JSON.stringify(p1.channels[a])}`);
        assert.equal(p1.channels[b].more, true, `more on ${b}: ${JSON.stringify(p1.channels[b])}`);
        assert.equal(p1.channels[a].last_id, idsA[6]);
        const rest = await drain(server, MAIN, chans, p1.since, { limit: 2 });
        const all = [...p1.events, ...rest.events];
        assert.deepEqual(all.filter((e) => e.channel === a).map((e) => e.id), idsA);
        assert.deepEqual(all.filter((e) => e.channel === b).map((e) => e.id), idsB);
        assert.deepEqual(all.filter((e) => e.channel === a).map((e) => JSON.parse(e.data).seq), [0, 1, 2, 3, 4, 5, 6]);
        assert.ok(rest.pages.every((n) => n <= 4), `a page larger than 2 per channel: ${rest.pages}`);
        assert.equal(rest.since, `${idsA[6]},${idsB[2]}`);
        // a page that ends exactly at the newest says more:false
        const c = uniq('poll-page-c-');
        const fc = await pollOk(server, MAIN, { channels: [c] });
        const idsC = await publishSeq(sdk, c, 0, 2);
        const pc = await pollOk(server, MAIN, { channels: [c], since: fc.since, limit: 2 });
        assert.deepEqual(pc.events.map((e) => e.id), idsC);
        assert.equal(pc.channels[c].more, false);
    });

    test('limit and wait out of range, no channels, too many channels → 400', async () => {
        const ch = uniq('poll-bad-');
        for (const params of [
            { channels: [ch], limit: 0 }, { channels: [ch], limit: 1001 }, { channels: [ch], limit: 'x' },
            { channels: [ch], wait: 61 }, { channels: [ch], wait: -1 }, { channels: [ch], wait: '1.5' },
            { channels: [] }, {},
            { channels: Array.from({ length: 101 }, (_, i) => `${ch}-${i}`) },
        ]) {
            const res = await poll(server, MAIN, params);
            assert.equal(res.status, 400, `${JSON.stringify(params).slice(0, 100)}: ${res.status} ${res.text}`);
            assert.equal(typeof (res.body && res.body.error), 'string', res.text);
        }
        // 100 is fine
        await pollOk(server, MAIN, { channels: Array.from({ length: 100 }, (_, i) => `${ch}-${i}`) });
        await pollOk(server, MAIN, { channels: [ch], limit: 1000, wait: 0 });
    });

    test('wait= with nothing new is held, and answered as soon as an event is published on one of its channels', async () => {
        const a = uniq('poll-wait-a-');
        const b = uniq('poll-wait-b-');
        const chans = [a, b];
        const first = await pollOk(server, MAIN, { channels: chans });
        const held = poll(server, MAIN, { channels: chans, since: first.since, wait: 30 }, 45000);
        await until(async () => (await metric(server, WAITING)) >= 1, 'the poll to wait', WAIT);
        await sleep(1500);
        assert.equal(held.done, false, 'the long poll answered before anything was published');
        const t0 = Date.now();
        const id = await send(sdk, b, 'wake', { x: 1 });
        const res = await held;
        const after = Date.now() - t0;
        const body = checkAnswer(res, { channels: chans });
        assert.ok(after < 10000, `answered ${after} ms after the publish`);
        assert.deepEqual(body.events.map((e) => [e.channel, e.id, e.event]), [[b, id, 'wake']]);
        assert.equal(body.since, `${first.since.split(',')[0]},${id}`);
    });

    test('wait=1 with nothing new answers with no events after about a second', async () => {
        const ch = uniq('poll-wait1-');
        await publishSeq(sdk, ch, 0, 1);
        const first = await pollOk(server, MAIN, { channels: [ch] });
        const res = await poll(server, MAIN, { channels: [ch], since: first.since, wait: 1 });
        const body = checkAnswer(res, { channels: [ch] });
        assert.deepEqual(body.events, []);
        assert.equal(body.since, first.since);
        assert.ok(res.ms >= 900, `answered after ${res.ms} ms`);
        assert.ok(res.ms < 8000, `answered after ${res.ms} ms`);
        // with something new, wait= does not hold it
        const id = await send(sdk, ch, 'now', {});
        const quick = await poll(server, MAIN, { channels: [ch], since: first.since, wait: 30 });
        assert.deepEqual(checkAnswer(quick, { channels: [ch] }).events.map((e) => e.id), [id]);
        assert.ok(quick.ms < 10000, `answered after ${quick.ms} ms`);
    });

    test('a long poll is held for its whole wait= when nothing comes (wait=15, past the 10 s allowed for a request head) and answered 200 without events', async () => {
        const ch = uniq('poll-long-');
        const first = await pollOk(server, MAIN, { channels: [ch] });
        const res = await poll(server, MAIN, { channels: [ch], since: first.since, wait: 15 }, 45000);
        assert.equal(res.status, 200, `after ${res.ms} ms: ${res.status} ${res.text}`);
        const body = checkAnswer(res, { channels: [ch] });
        assert.deepEqual(body.events, []);
        assert.equal(body.since, first.since);
        assert.ok(res.ms >= 14000, `answered after ${res.ms} ms, wait was 15 s`);
        assert.ok(res.ms < 30000, `answered after ${res.ms} ms, wait was 15 s`);
    });

    test('one store statement per poll whatever the number of channels; none for a long poll that times out; one for a woken one', async () => {
        const chans = Array.from({ length: 50 }, () => uniq('poll-stmt-'));
        await okBody(() => sdk.trigger(chans, 'first', { n: 0 }), 'trigger on 50 channels');
        const start = await pollOk(server, MAIN, { channels: chans });
        await okBody(() => sdk.trigger(chans, 'second', { n: 1 }), 'trigger on 50 channels');
        await okBody(() => sdk.trigger(chans, 'third', { n: 2 }), 'trigger on 50 channels');
        let before = await metric(server, STATEMENTS);
        const b = await pollOk(server, MAIN, { channels: chans, since: start.since });
        assert.equal(b.events.length, 100, 'two events on each of 50 channels');
        assert.equal((await metric(server, STATEMENTS)) - before, 1, 'statements for a poll of 50 channels');
        // a long poll that times out
        before = await metric(server, STATEMENTS);
        const t = await pollOk(server, MAIN, { channels: chans, since: b.since, wait: 1 });
        assert.deepEqual(t.events, []);
        assert.equal((await metric(server, STATEMENTS)) - before, 0, 'statements for a long poll that timed out');
        // a long poll woken by an event
        before = await metric(server, STATEMENTS);
        const held = poll(server, MAIN, { channels: chans, since: b.since, wait: 30 }, 45000);
        await until(async () => (await metric(server, WAITING)) >= 1, 'the poll to wait', WAIT);
        assert.equal((await metric(server, STATEMENTS)) - before, 0, 'statements while waiting');
        const id = await send(sdk, chans[37], 'wake', {});
        const w = checkAnswer(await held, { channels: chans });
        assert.deepEqual(w.events.map((e) => e.id), [id]);
        assert.equal((await metric(server, STATEMENTS)) - before, 1, 'statements for a woken long poll');
    });

    test('hark_history_polls_waiting counts a waiting poll and goes back to 0 once it is answered', async () => {
        const ch = uniq('poll-gauge-');
        const first = await pollOk(server, MAIN, { channels: [ch] });
        await until(async () => (await metric(server, WAITING)) === 0, 'no waiting polls', WAIT);
        const held = [
            poll(server, MAIN, { channels: [ch], since: first.since, wait: 30 }, 45000),
            poll(server, MAIN, { channels: [ch], since: first.since, wait: 30 }, 45000),
        ];
        await until(async () => (await metric(server, WAITING)) === 2, 'two waiting polls', WAIT);
        await send(sdk, ch, 'go', {});
        for (const h of held) assert.equal(checkAnswer(await h, { channels: [ch] }).events.length, 1);
        await until(async () => (await metric(server, WAITING)) === 0, 'the gauge back to 0', WAIT);
    });

    test('private channels need a token and auth: missing → 401, wrong signature → 401, good → 200', async () => {
        const priv = uniq('private-poll-');
        const pub = uniq('poll-pub-');
        const tok = token();
        const good = sdk.authorizeChannel(tok, priv).auth;
        const chans = [pub, priv];
        const cases = [
            ['no token, no auth', {}],
            ['no token', { auth: { [priv]: good } }],
            ['no auth', { socket_id: tok }],
            ['wrong signature', { socket_id: tok, auth: { [priv]: `${MAIN.key}:${'0'.repeat(64)}` } }],
            ['auth of another token', { socket_id: tok, auth: { [priv]: sdk.authorizeChannel(token(), priv).auth } }],
            ['auth of another channel', { socket_id: tok, auth: { [priv]: sdk.authorizeChannel(tok, `${priv}x`).auth } }],
            ['expired token', (() => { const t = `${Math.floor(Date.now() / 1000) - 10}.123`; return { socket_id: t, auth: { [priv]: sdk.authorizeChannel(t, priv).auth } }; })()],
            // (the SDK refuses to sign for a token that is not <digits>.<digits>)
            ['malformed token', { socket_id: 'abc.123', auth: { [priv]: channelAuth(MAIN, 'abc.123', priv) } }],
            ['a token more than a day ahead', (() => { const t = `${Math.floor(Date.now() / 1000) + 3 * 86400}.123`; return { socket_id: t, auth: { [priv]: sdk.authorizeChannel(t, priv).auth } }; })()],
        ];
        for (const [what, p] of cases) {
            const res = await poll(server, MAIN, { channels: chans, ...p });
            assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
            assert.equal(res.headers['access-control-allow-origin'], '*', `${what}: no CORS header`);
        }
        const b = await pollOk(server, MAIN, { channels: chans, socket_id: tok, auth: { [priv]: good } });
        const id = await send(sdk, priv, 'secret', { s: 1 });
        const n = await pollOk(server, MAIN, { channels: chans, socket_id: tok, auth: { [priv]: good }, since: b.since });
        assert.deepEqual(n.events.map((e) => e.id), [id]);
    });

    test('a signed-in poll gets unread and read_id per channel, as GET /users/{user}/unread says, moving after POST /users/{user}/read', async () => {
        const user = uniq('reader-');
        const a = uniq('private-conv-');
        const b = uniq('poll-room-');
        const chans = [a, b];
        const tok = token();
        const signin = sdk.authenticateUser(tok, { id: user });
        const params = {
            channels: chans, socket_id: tok, auth: { [a]: sdk.authorizeChannel(tok, a).auth },
            user_data: signin.user_data, user_auth: signin.auth,
        };
        const p0 = await pollOk(server, MAIN, params);
        assert.deepEqual(p0.channels[a], { last_id: null, recovered: true, more: false, unread: 0, read_id: null });
        const fromBob = [await send(sdk, a, 'm', { i: 0 }, { user_id: 'bob' }), await send(sdk, a, 'm', { i: 1 }, { user_id: 'bob' })];
        await send(sdk, a, 'm', { i: 2 }, { user_id: user }); // own: not unread
        const bIds = await publishSeq(sdk, b, 0, 3);
        const lastA = await send(sdk, a, 'm', { i: 3 }, { user_id: 'bob' });
        const compare = async (since) => {
            const got = await pollOk(server, MAIN, { ...params, since });
            const rest = await restUnreadOk(server, MAIN, user, chans);
            for (const ch of chans) {
                assert.equal(got.channels[ch].unread, rest[ch].unread, `unread of ${ch}: poll ${JSON.stringify(got.channels[ch])} REST ${JSON.stringify(rest[ch])}`);
                assert.equal(got.channels[ch].read_id, rest[ch].read_id, `read_id of ${ch}: poll ${JSON.stringify(got.channels[ch])} REST ${JSON.stringify(rest[ch])}`);
                assert.equal(got.channels[ch].last_id, rest[ch].last_id, `last_id of ${ch}`);
            }
            return got;
        };
        const p1 = await compare(p0.since);
        assert.equal(p1.events.length, 7);
        assert.deepEqual([p1.channels[a].unread, p1.channels[a].read_id], [3, null]);
        assert.deepEqual([p1.channels[b].unread, p1.channels[b].read_id], [3, null]);
        assert.equal(await restReadOk(server, MAIN, user, a, fromBob[1]), true);
        assert.equal(await restReadOk(server, MAIN, user, b, bIds[2]), true);
        const p2 = await compare(p1.since);
        assert.deepEqual(p2.events, []);
        assert.deepEqual([p2.channels[a].unread, p2.channels[a].read_id], [1, fromBob[1]]);
        assert.deepEqual([p2.channels[b].unread, p2.channels[b].read_id], [0, bIds[2]]);
        assert.equal(await restReadOk(server, MAIN, user, a, lastA), true);
        const p3 = await compare(p2.since);
        assert.deepEqual([p3.channels[a].unread, p3.channels[a].read_id], [0, lastA]);
        // a poll that is not signed in carries neither
        const anon = await pollOk(server, MAIN, { channels: [b] });
        assert.deepEqual(Object.keys(anon.channels[b]).sort(), ['last_id', 'more', 'recovered']);
        // a bad user signature → 401
        for (const bad of [
            { user_auth: `${MAIN.key}:${'0'.repeat(64)}` },
            { user_auth: sdk.authenticateUser(token(), { id: user }).auth },
            { user_data: JSON.stringify({ id: 'someone-else' }) },
            { user_auth: undefined },
        ]) {
            const res = await poll(server, MAIN, { ...params, ...bad });
            assert.equal(res.status, 401, `${JSON.stringify(bad)}: ${res.status} ${res.text}`);
        }
    });

    test("a user's #server-to-user- channel is polled only when signed in as that user: not signed in, or signed in as another → 401 with nothing; as the user → its events", async () => {
        const alice = uniq('alice-');
        const ch = `#server-to-user-${alice}`;
        await okBody(() => sdk.sendToUser(alice, 'notice', { code: 123456 }));
        const tok = token();
        const asBob = sdk.authenticateUser(tok, { id: uniq('bob-') });
        const asAlice = sdk.authenticateUser(tok, { id: alice });
        for (const [what, params] of [
            ['not signed in', { channels: [ch] }],
            ['not signed in, with a token', { channels: [ch], socket_id: tok }],
            ['signed in as another user', { channels: [ch], socket_id: tok, user_data: asBob.user_data, user_auth: asBob.auth }],
        ]) {
            const res = await poll(server, MAIN, params);
            assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
            assert.doesNotMatch(res.text, /123456/, `${what}: the user's event leaked`);
        }
        const own = await pollOk(server, MAIN, { channels: [ch], socket_id: tok, user_data: asAlice.user_data, user_auth: asAlice.auth });
        assert.ok(own.channels[ch], JSON.stringify(own));
    });

    test('a presence channel names its member as on a WebSocket: an auth without channel_data and without a sign-in → 400; with signed channel_data, or signed in → 200', async () => {
        const ch = uniq('presence-poll-');
        const tok = token();
        const member = { user_id: uniq('m-'), user_info: {} };
        const bare = { channels: [ch], socket_id: tok, auth: { [ch]: sdk.authorizeChannel(tok, ch).auth } };
        const res = await poll(server, MAIN, bare);
        assert.equal(res.status, 400, `${res.status} ${res.text}`);
        assert.match(res.text, /channel_data/);
        const withData = sdk.authorizeChannel(tok, ch, member);
        await pollOk(server, MAIN, {
            channels: [ch], socket_id: tok, auth: { [ch]: withData.auth },
            extra: [`channel_data=${encodeURIComponent(`${ch}:${withData.channel_data}`)}`],
        });
        const signin = sdk.authenticateUser(tok, { id: member.user_id });
        await pollOk(server, MAIN, { ...bare, user_data: signin.user_data, user_auth: signin.auth });
    });

    test('recovered:false when since is older than what is retained (max_events 5): the answer starts from the oldest retained', async () => {
        const shortSdk = rest(server, SHORT);
        const ch = uniq('poll-short-');
        const ids = await publishSeq(shortSdk, ch, 0, 12);
        const b = await pollOk(server, SHORT, { channels: [ch], since: ids[1] });
        assert.equal(b.channels[ch].recovered, false, `recovered for an id whose followers were trimmed: ${JSON.stringify(b.channels[ch])}`);
        assert.deepEqual(b.events.map((e) => e.id), ids.slice(7), 'the retained events');
        assert.equal(b.since, ids[11]);
        // within retention: recovered
        const ok = await pollOk(server, SHORT, { channels: [ch], since: ids[8] });
        assert.equal(ok.channels[ch].recovered, true);
        assert.deepEqual(ok.events.map((e) => e.id), ids.slice(9));
        // the since event itself gone but nothing after it: recovered
        const edge = await pollOk(server, SHORT, { channels: [ch], since: ids[6] });
        assert.equal(edge.channels[ch].recovered, true, `since = the one before the oldest retained: ${JSON.stringify(edge.channels[ch])}`);
        assert.deepEqual(edge.events.map((e) => e.id), ids.slice(7));
    });

    test('recovered:false when since is of an earlier epoch: the answer starts from now', async () => {
        const ch = uniq('poll-epoch-');
        const ids = await publishSeq(sdk, ch, 0, 3);
        const old = otherEpoch(ids[1]);
        const b = await pollOk(server, MAIN, { channels: [ch], since: old });
        assert.equal(b.channels[ch].recovered, false, JSON.stringify(b.channels[ch]));
        assert.deepEqual(b.events, []);
        assert.equal(b.since, ids[2]);
        const id = await send(sdk, ch, 'later', {});
        const n = await pollOk(server, MAIN, { channels: [ch], since: b.since });
        assert.deepEqual(n.events.map((e) => e.id), [id]);
        assert.equal(n.channels[ch].recovered, true);
    });

    // since=… answered 400 with an error message, and nothing else broken
    async function refusedSince(channels, since, what) {
        const res = await poll(server, MAIN, { channels, since });
        assert.equal(res.status, 400, `${what} (since=${since}): ${res.status} ${res.text}`);
        assert.equal(typeof (res.body && res.body.error), 'string', res.text);
    }

    test('a since beyond the newest id of its channel → 400', async () => {
        const a = uniq('poll-beyond-');
        const ids = await publishSeq(sdk, a, 0, 2);
        await refusedSince([a], seqPlus(ids[1], 1), 'one past the newest');
        await refusedSince([a], seqPlus(ids[1], 1000000), 'far beyond the newest');
        const b = uniq('poll-beyond-empty-');
        const z = await pollOk(server, MAIN, { channels: [b] });
        await refusedSince([b], seqPlus(z.since, 1), 'one past the zeros of a channel without events');
        // the newest itself is fine
        const ok = await pollOk(server, MAIN, { channels: [a], since: ids[1] });
        assert.deepEqual(ok.events, []);
    });

    test('a since of another channel → 400', async () => {
        const a = uniq('poll-since-a-');
        const b = uniq('poll-since-b-');
        const idsA = await publishSeq(sdk, a, 0, 2);
        const idsB = await publishSeq(sdk, b, 0, 2);
        await refusedSince([a], idsB[0], 'an id of another channel');
        await refusedSince([a], `${idsA[0]},${idsB[0]}`, 'an id of a channel not asked for, next to a good one');
        // the ids of the channels asked for, in any order, are fine
        const ok = await pollOk(server, MAIN, { channels: [a, b], since: `${idsB[0]},${idsA[0]}` });
        assert.deepEqual(ok.events.filter((e) => e.channel === a).map((e) => e.id), [idsA[1]]);
        assert.deepEqual(ok.events.filter((e) => e.channel === b).map((e) => e.id), [idsB[1]]);
    });

    test('a since of another app → 400', async () => {
        const ch = uniq('poll-since-app-');
        const shortSdk = rest(server, SHORT);
        const [other] = await publishSeq(shortSdk, ch, 0, 1); // same name, app SHORT
        await publishSeq(sdk, ch, 0, 1);
        await refusedSince([ch], other, 'an id of the same channel name in another app');
    });

    test('a malformed since → 400', async () => {
        const ch = uniq('poll-since-bad-');
        await publishSeq(sdk, ch, 0, 1);
        for (const since of ['not-an-id', 'x', 'AAAAAAAA.00000000.0000000001', ',', `${'9'.repeat(80)}`]) {
            await refusedSince([ch], since, 'malformed');
        }
    });

    test('a channel whose events are not kept → 400 (app history false, or no rule keeps it); unknown or disabled key → 404', async () => {
        for (const [app, channels] of [
            [NOHIST, ['anything']],
            [RULED, ['other-1']],
            [RULED, ['kept-1', 'other-1']],
            [MAIN, ['cache-poll']],
        ]) {
            const res = await poll(server, app, { channels });
            assert.equal(res.status, 400, `${app.id} ${channels}: ${res.status} ${res.text}`);
        }
        await pollOk(server, RULED, { channels: ['kept-1'] });
        for (const app of [{ key: 'no-such-key' }, APPS.disabled]) {
            const res = await poll(server, app, { channels: ['x'] });
            assert.equal(res.status, 404, `${app.key}: ${res.status} ${res.text}`);
        }
    });

    test('ids and names that look like SQL are data: refused when invalid, polled like any other name when valid', async () => {
        // never a position: refused (400, "a malformed since" above) or at
        // least never selecting anything (an `OR 1=1` reaching SQL would
        // answer every event of the channel)
        for (const since of ["' OR 1=1 --", "x'); DROP TABLE events; --", '1 UNION SELECT * FROM events', '0 OR 1=1', '%', '*']) {
            const ch = uniq('poll-sqlid-');
            const ids = await publishSeq(sdk, ch, 0, 3);
            const res = await poll(server, MAIN, { channels: [ch], since });
            assert.ok(res.status === 400 || res.status === 200, `since ${JSON.stringify(since)}: ${res.status} ${res.text}`);
            if (res.status === 200) {
                const b = checkAnswer(res, { channels: [ch] });
                assert.deepEqual(b.events, [], `since ${JSON.stringify(since)} selected events: ${res.text}`);
                assert.equal(b.since, ids[2]);
            }
            // the channel's events are all there
            const z = await pollOk(server, MAIN, { channels: [ch], since: seqPlus(ids[0], -1) });
            assert.deepEqual(z.events.map((e) => e.id), ids);
        }
        // names: quotes and spaces are not valid channel names
        for (const name of ["x' OR '1'='1", 'a"; DROP TABLE events; --', 'a%', 'poll-*']) {
            const res = await poll(server, MAIN, { channels: [name] });
            assert.equal(res.status, 400, `channel ${JSON.stringify(name)}: ${res.status} ${res.text}`);
        }
        // valid names with SQL and LIKE characters are just names
        const base = uniq('poll-sql-');
        const odd = [`${base};DROP-TABLE-events;--`, `${base}_a_`, `${base}=1;select`];
        const look = `${base}XaX`; // what `_` would match as a LIKE pattern
        const first = await pollOk(server, MAIN, { channels: [...odd, look] });
        const ids = [];
        for (const ch of odd) ids.push(await send(sdk, ch, 'odd', { ch }));
        const lookId = await send(sdk, look, 'look', {});
        const got = await pollOk(server, MAIN, { channels: odd, since: first.since.split(',').slice(0, 3).join(',') });
        assert.deepEqual(got.events.map((e) => [e.channel, e.id]), odd.map((ch, i) => [ch, ids[i]]));
        assert.ok(!got.events.some((e) => e.id === lookId), 'an event of another channel');
        const alone = await pollOk(server, MAIN, { channels: [look], since: first.since.split(',')[3] });
        assert.deepEqual(alone.events.map((e) => e.id), [lookId]);
        // the store is fine afterwards
        const ch = uniq('poll-after-sql-');
        const f = await pollOk(server, MAIN, { channels: [ch] });
        const id = await send(sdk, ch, 'x', {});
        assert.deepEqual((await pollOk(server, MAIN, { channels: [ch], since: f.since })).events.map((e) => e.id), [id]);
    });

    test('channels first seen by a poll (no event yet) then published to: the server stays up and every event is polled', async () => {
        for (let round = 0; round < 5; round++) {
            const chans = Array.from({ length: 100 }, () => uniq(`poll-fresh-${round}-`));
            const first = await pollOk(server, MAIN, { channels: chans });
            assert.deepEqual(first.events, []);
            for (let i = 0; i < chans.length; i += 50) {
                await okBody(() => sdk.trigger(chans.slice(i, i + 50), 'fresh', { round }), `trigger round ${round}`);
            }
            const got = await pollOk(server, MAIN, { channels: chans, since: first.since });
            assert.equal(got.events.length, 100, `round ${round}: ${got.events.length} events`);
            assert.deepEqual(got.events.map((e) => e.channel).sort(), [...chans].sort());
        }
        assert.equal((await get(server, '/ready')).status, 200);
    });

    test('a client that disconnects while its long poll waits leaves the server healthy, and the waiting gauge back to 0 once the wait ends', async () => {
        const ch = uniq('poll-gone-');
        const first = await pollOk(server, MAIN, { channels: [ch] });
        await until(async () => (await metric(server, WAITING)) === 0, 'no waiting polls', WAIT);
        const gone = [];
        for (let i = 0; i < 5; i++) {
            const p = poll(server, MAIN, { channels: [ch], since: first.since, wait: 3 }, 45000);
            p.catch(() => { /* destroyed */ });
            gone.push(p);
        }
        await until(async () => (await metric(server, WAITING)) === 5, 'five waiting polls', WAIT);
        const t0 = Date.now();
        for (const p of gone) p.req.destroy();
        // healthy at once
        const r = await get(server, '/ready');
        assert.equal(r.status, 200);
        const other = uniq('poll-gone-other-');
        const f = await pollOk(server, MAIN, { channels: [other] });
        const id = await send(sdk, other, 'x', {});
        assert.deepEqual((await pollOk(server, MAIN, { channels: [other], since: f.since })).events.map((e) => e.id), [id]);
        // the waits end by themselves
        await until(async () => (await metric(server, WAITING)) === 0, 'the gauge back to 0', WAIT);
        assert.ok(Date.now() - t0 < 15000);
        // and an event on that channel now wakes nobody and breaks nothing
        const later = await send(sdk, ch, 'late', {});
        assert.deepEqual((await pollOk(server, MAIN, { channels: [ch], since: first.since })).events.map((e) => e.id), [later]);
        // the same with an event arriving for a vanished poll before its wait ends
        const held = poll(server, MAIN, { channels: [ch], since: `${later}`, wait: 20 }, 45000);
        held.catch(() => { /* destroyed */ });
        await until(async () => (await metric(server, WAITING)) === 1, 'a waiting poll', WAIT);
        held.req.destroy();
        await sleep(200);
        const woke = await send(sdk, ch, 'wake', {});
        await until(async () => (await metric(server, WAITING)) === 0, 'the gauge back to 0', WAIT);
        assert.deepEqual((await pollOk(server, MAIN, { channels: [ch], since: later })).events.map((e) => e.id), [woke]);
        assert.equal((await get(server, '/ready')).status, 200);
    });
});
