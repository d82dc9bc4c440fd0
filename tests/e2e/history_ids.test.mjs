// History event ids: every event hark keeps in history is delivered with a
// top-level string "id" (A-Z a-z 0-9 . _ ~ -, at most 64 bytes, unique in its
// channel), the same id POST /events answers in "ids" ({channel: id}) and
// POST /batch_events in "ids" ([id | null, …]). Events not kept (cache
// channels, apps with history: false, client events unless a rule says
// client_events: true, pusher:* / pusher_internal:* / hark:*) carry none.
// The `history` rules (first match wins; by default every channel but the
// cache- variants) and their refusal at start (exit 2, file, key, reason).
import { describe, test, before, after, beforeEach, afterEach, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, startHark, rest, freePort } from './lib/harness.mjs';
import { scope, rawReady, uniq, restCall } from './lib/clients.mjs';
import { runHark } from './lib/rawtcp.mjs';
import { ID_RE, assertId, idsIn, rule, range, okBody, publishBatches } from './lib/history.mjs';

// only persisted-* and room-*-log are kept
const ONLY = {
    id: 'only-id', key: 'only-key', secret: 'only-secret',
    history: [rule('persisted-*', { max_events: 100, max_age_s: 3600 }), rule('room-*-log', { max_events: 100, max_age_s: 3600 })],
};
// nothing is kept
const OFF = { id: 'off-id', key: 'off-key', secret: 'off-secret', client_events: true, history: false };
// client events are kept on private-chat-* and presence-chat-*
const CHAT = {
    id: 'chat-id', key: 'chat-key', secret: 'chat-secret', client_events: true, client_event_rate: 0,
    history: [
        rule('private-chat-*', { client_events: true }),
        rule('presence-chat-*', { client_events: true }),
        rule('*'),
    ],
};
// first match wins: private-* (no client events) comes before private-chat-*
const ORDER = {
    id: 'order-id', key: 'order-key', secret: 'order-secret', client_events: true,
    history: [rule('private-*'), rule('private-chat-*', { client_events: true })],
};

const ok200 = (res) => assert.equal(res.status, 200, `status ${res.status}: ${res.text}`);
const hasNoId = (msg) => assert.equal(Object.hasOwn(msg, 'id'), false, `unexpected id in ${JSON.stringify(msg)}`);

describe('history ids (default rules)', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark();
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('ids: an event on a public, a private and a presence channel carries the id POST /events answered', async () => {
        const r = await rawReady(s, server);
        const chans = [uniq('conversation-'), uniq('private-conversation-'), uniq('presence-conversation-')];
        assert.equal((await r.subscribe(chans[0], { auth: '' })).msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal((await r.subscribeAuthed(chans[1])).msg.event, 'pusher_internal:subscription_succeeded');
        assert.equal((await r.subscribeAuthed(chans[2], { user_id: 'u1' })).msg.event, 'pusher_internal:subscription_succeeded');
        for (const ch of chans) {
            const res = await restCall(() => sdk.trigger(ch, 'new-message', { text: 'hello', ch }));
            ok200(res);
            assert.deepEqual(Object.keys(res.body), ['ids'], `answer ${res.text}`);
            assert.deepEqual(Object.keys(res.body.ids), [ch]);
            const id = res.body.ids[ch];
            assertId(id, `ids["${ch}"]`);
            const e = await r.take({ event: 'new-message', channel: ch });
            assert.deepEqual(e.msg, { event: 'new-message', channel: ch, data: JSON.stringify({ text: 'hello', ch }), id });
        }
    });

    test('ids: one publish to three channels answers an id per channel; with info the counts stay beside them', async () => {
        const chans = [uniq('multi-'), uniq('multi-'), uniq('private-multi-')];
        const r = await rawReady(s, server);
        await r.subscribe(chans[0], { auth: '' });
        await r.subscribe(chans[1], { auth: '' });
        await r.subscribeAuthed(chans[2]);
        const res = await restCall(() => sdk.trigger(chans, 'fan', { n: 1 }));
        ok200(res);
        assert.deepEqual(Object.keys(res.body), ['ids']);
        assert.deepEqual(Object.keys(res.body.ids).sort(), [...chans].sort());
        for (const ch of chans) {
            assertId(res.body.ids[ch]);
            const e = await r.take({ event: 'fan', channel: ch });
            assert.equal(e.msg.id, res.body.ids[ch], `id delivered on ${ch}`);
        }
        const withInfo = await restCall(() => sdk.trigger(chans.slice(0, 2), 'counted', {}, { info: 'subscription_count' }));
        ok200(withInfo);
        assert.deepEqual(Object.keys(withInfo.body).sort(), ['channels', 'ids']);
        assert.deepEqual(withInfo.body.channels, { [chans[0]]: { subscription_count: 1 }, [chans[1]]: { subscription_count: 1 } });
        for (const ch of chans.slice(0, 2)) {
            const e = await r.take({ event: 'counted', channel: ch });
            assert.equal(e.msg.id, withInfo.body.ids[ch]);
            assert.notEqual(e.msg.id, res.body.ids[ch], 'two events of one channel share an id');
        }
    });

    test('ids: cache channels keep no history: no id delivered, REST answers ids {}', async () => {
        const r = await rawReady(s, server);
        const pub = uniq('cache-');
        const priv = uniq('private-cache-');
        const pres = uniq('presence-cache-');
        const enc = uniq('private-encrypted-cache-');
        await r.subscribe(pub, { auth: '' });
        await r.subscribeAuthed(priv);
        await r.subscribeAuthed(pres, { user_id: 'c1' });
        await r.subscribeAuthed(enc);
        for (const ch of [pub, priv, pres]) {
            const res = await restCall(() => sdk.trigger(ch, 'price', { v: 1 }));
            ok200(res);
            assert.deepEqual(res.body, { ids: {} }, `answer for ${ch}`);
            const e = await r.take({ event: 'price', channel: ch });
            assert.deepEqual(e.msg, { event: 'price', channel: ch, data: '{"v":1}' });
        }
        const dataString = '{"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"c2VjcmV0+/=="}';
        const res = await restCall(() => sdk.post({ path: '/events', body: { name: 'enc', channels: [enc], data: dataString } }));
        ok200(res);
        assert.deepEqual(res.body, { ids: {} });
        const e = await r.take({ event: 'enc', channel: enc });
        assert.deepEqual(e.msg, { event: 'enc', channel: enc, data: dataString });
        // a cache channel and a kept one in one publish: only the kept one has an id
        const plain = uniq('plain-');
        await r.subscribe(plain, { auth: '' });
        const mixed = await restCall(() => sdk.trigger([pub, plain], 'mixed', {}));
        ok200(mixed);
        assert.deepEqual(Object.keys(idsIn(mixed.body)), [plain]);
        hasNoId((await r.take({ event: 'mixed', channel: pub })).msg);
        assert.equal((await r.take({ event: 'mixed', channel: plain })).msg.id, mixed.body.ids[plain]);
    });

    test('ids: #server-to-user-<id> is kept by default: sendToUser answers its id and the user gets it', async () => {
        const user = uniq('u');
        const r = await rawReady(s, server);
        assert.equal((await r.signin({ id: user })).msg.event, 'pusher:signin_success');
        const ch = `#server-to-user-${user}`;
        assert.equal((await r.subscribe(ch, { auth: '' })).msg.event, 'pusher_internal:subscription_succeeded');
        const body = await okBody(() => sdk.sendToUser(user, 'notice', { text: 'hi' }));
        assert.deepEqual(Object.keys(idsIn(body)), [ch]);
        assertId(body.ids[ch]);
        const e = await r.take({ event: 'notice', channel: ch });
        assert.deepEqual(e.msg, { event: 'notice', channel: ch, data: '{"text":"hi"}', id: body.ids[ch] });
    });

    test('ids: client events carry none by default; pusher: and pusher_internal: frames never do', async () => {
        const priv = uniq('private-talk-');
        const pres = uniq('presence-talk-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        for (const c of [a, b]) await c.subscribeAuthed(priv);
        await a.subscribeAuthed(pres, { user_id: 'a' });
        await b.subscribeAuthed(pres, { user_id: 'b' });
        await a.take({ event: 'pusher_internal:member_added', channel: pres });
        a.send({ event: 'client-typing', channel: priv, data: { on: true } });
        a.send({ event: 'client-typing', channel: pres, data: { on: false } });
        const e1 = await b.take({ event: 'client-typing', channel: priv });
        assert.deepEqual(e1.msg, { event: 'client-typing', channel: priv, data: { on: true } });
        const e2 = await b.take({ event: 'client-typing', channel: pres });
        assert.deepEqual(e2.msg, { event: 'client-typing', channel: pres, data: { on: false }, user_id: 'a' });
        // a server event on the same channel does carry one
        const body = await okBody(() => sdk.trigger(priv, 'server-said', {}));
        assertId(idsIn(body)[priv]);
        assert.equal((await b.take({ event: 'server-said', channel: priv })).msg.id, body.ids[priv]);
        await b.ping();
        const withId = b.log.map((x) => x.msg).filter((m) => Object.hasOwn(m, 'id') && m.event !== 'server-said');
        assert.deepEqual(withId, [], 'frames other than the kept event carry an id');
        assert.equal(b.count((m) => m.event.startsWith('pusher_internal:subscription_succeeded')), 2);
    });

    test('ids: batch_events answers ids in batch order, null for an event on a channel not kept', async () => {
        const p1 = uniq('batch-');
        const p2 = uniq('private-batch-');
        const cache = uniq('cache-batch-');
        const r = await rawReady(s, server);
        await r.subscribe(p1, { auth: '' });
        await r.subscribeAuthed(p2);
        await r.subscribe(cache, { auth: '' });
        const res = await restCall(() => sdk.triggerBatch([
            { channel: p1, name: 'b0', data: { i: 0 } },
            { channel: cache, name: 'b1', data: { i: 1 } },
            { channel: p2, name: 'b2', data: { i: 2 } },
            { channel: p1, name: 'b3', data: { i: 3 } },
        ]));
        ok200(res);
        assert.deepEqual(Object.keys(res.body), ['ids'], `answer ${res.text}`);
        const { ids } = res.body;
        assert.ok(Array.isArray(ids) && ids.length === 4, `ids ${JSON.stringify(ids)}`);
        assert.equal(ids[1], null);
        for (const i of [0, 2, 3]) assertId(ids[i], `ids[${i}]`);
        assert.notEqual(ids[0], ids[3], 'two events of one channel share an id');
        assert.deepEqual((await r.take({ event: 'b0' })).msg, { event: 'b0', channel: p1, data: '{"i":0}', id: ids[0] });
        assert.deepEqual((await r.take({ event: 'b1' })).msg, { event: 'b1', channel: cache, data: '{"i":1}' });
        assert.deepEqual((await r.take({ event: 'b2' })).msg, { event: 'b2', channel: p2, data: '{"i":2}', id: ids[2] });
        assert.deepEqual((await r.take({ event: 'b3' })).msg, { event: 'b3', channel: p1, data: '{"i":3}', id: ids[3] });
        // with info: the batch array and the ids side by side
        const res2 = await restCall(() => sdk.triggerBatch([
            { channel: cache, name: 'c0', data: {} },
            { channel: p1, name: 'c1', data: {}, info: 'subscription_count' },
        ]));
        ok200(res2);
        assert.deepEqual(Object.keys(res2.body).sort(), ['batch', 'ids']);
        assert.deepEqual(res2.body.batch, [{}, { subscription_count: 1 }]);
        assert.equal(res2.body.ids[0], null);
        assertId(res2.body.ids[1]);
        assert.equal((await r.take({ event: 'c1' })).msg.id, res2.body.ids[1]);
    });

    test('ids: 200 events on one channel: the charset, at most 64 bytes, all different, and every subscriber gets the id REST answered', async () => {
        const ch = uniq('many-');
        const a = await rawReady(s, server);
        const b = await rawReady(s, server);
        await a.subscribe(ch, { auth: '' });
        await b.subscribe(ch, { auth: '' });
        const pub = s.pinned(server);
        const ids = await publishBatches(pub, ch, 0, 200, 10);
        for (const id of ids) {
            assert.match(id, ID_RE);
            assert.ok(Buffer.byteLength(id) <= 64);
        }
        assert.equal(new Set(ids).size, 200, 'ids repeat within the channel');
        for (const c of [a, b]) {
            await c.take((m) => m.channel === ch && m.data === '{"seq":199}', 10000);
            const got = c.events(ch, 'tick').map((e) => e.msg);
            assert.deepEqual(got.map((m) => m.data), range(0, 200).map((i) => `{"seq":${i}}`));
            assert.deepEqual(got.map((m) => m.id), ids);
        }
    });
});

describe('history ids (configured rules)', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), ONLY, OFF, CHAT, ORDER] } });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('history: false: no ids delivered, POST /events answers ids {} and batch_events ids [null, …]', async () => {
        const sdk = rest(server, OFF);
        const ch = uniq('off-');
        const priv = uniq('private-off-');
        const r = await rawReady(s, server, { app: OFF });
        await r.subscribe(ch, { auth: '' });
        await r.subscribeAuthed(priv);
        const res = await restCall(() => sdk.trigger([ch, priv], 'ev', { n: 1 }));
        ok200(res);
        assert.deepEqual(res.body, { ids: {} });
        assert.deepEqual((await r.take({ event: 'ev', channel: ch })).msg, { event: 'ev', channel: ch, data: '{"n":1}' });
        hasNoId((await r.take({ event: 'ev', channel: priv })).msg);
        const b = await restCall(() => sdk.triggerBatch([{ channel: ch, name: 'b', data: {} }, { channel: priv, name: 'b', data: {} }]));
        ok200(b);
        assert.deepEqual(b.body, { ids: [null, null] });
        hasNoId((await r.take({ event: 'b', channel: ch })).msg);
        // not even #server-to-user-
        const user = uniq('u');
        await r.signin({ id: user });
        await r.subscribe(`#server-to-user-${user}`, { auth: '' });
        const u = await restCall(() => sdk.sendToUser(user, 'note', {}));
        ok200(u);
        assert.deepEqual(u.body, { ids: {} });
        hasNoId((await r.take({ event: 'note' })).msg);
    });

    test('rules: only persisted-* and room-*-log are kept; other names (private-persisted-*, room-*-logs, #server-to-user-) get no id', async () => {
        const sdk = rest(server, ONLY);
        const tag = uniq('');
        const kept = [`persisted-${tag}`, `room-${tag}-log`];
        const notKept = [`private-persisted-${tag}`, `xpersisted-${tag}`, `room-${tag}-logs`, `other-${tag}`, `cache-persisted-${tag}`];
        const r = await rawReady(s, server, { app: ONLY });
        for (const ch of [...kept, ...notKept]) {
            const e = ch.startsWith('private-') ? await r.subscribeAuthed(ch) : await r.subscribe(ch, { auth: '' });
            assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded', e.text);
        }
        const res = await restCall(() => sdk.trigger([...kept, ...notKept], 'ev', {}));
        ok200(res);
        assert.deepEqual(Object.keys(idsIn(res.body)).sort(), [...kept].sort(), `ids ${JSON.stringify(res.body.ids)}`);
        for (const ch of kept) {
            assertId(res.body.ids[ch]);
            assert.equal((await r.take({ event: 'ev', channel: ch })).msg.id, res.body.ids[ch]);
        }
        for (const ch of notKept) hasNoId((await r.take({ event: 'ev', channel: ch })).msg);
        const user = uniq('u');
        await r.signin({ id: user });
        await r.subscribe(`#server-to-user-${user}`, { auth: '' });
        const u = await restCall(() => sdk.sendToUser(user, 'note', {}));
        ok200(u);
        assert.deepEqual(u.body, { ids: {} }, 'a rule list replaces the default (which keeps #server-to-user-)');
        hasNoId((await r.take({ event: 'note' })).msg);
    });

    test('rules: client events get an id where the rule says client_events: true (private and presence), and none elsewhere', async () => {
        const priv = uniq('private-chat-');
        const pres = uniq('presence-chat-');
        const other = uniq('private-other-');
        const a = await rawReady(s, server, { app: CHAT });
        const b = await rawReady(s, server, { app: CHAT });
        for (const c of [a, b]) {
            await c.subscribeAuthed(priv);
            await c.subscribeAuthed(other);
        }
        await a.subscribeAuthed(pres, { user_id: 'alice' });
        await b.subscribeAuthed(pres, { user_id: 'bob' });
        a.send({ event: 'client-msg', channel: priv, data: { t: 1 } });
        a.send({ event: 'client-msg', channel: pres, data: { t: 2 } });
        a.send({ event: 'client-msg', channel: other, data: { t: 3 } });
        a.send({ event: 'client-msg', channel: priv, data: { t: 4 } });
        const e1 = await b.take({ event: 'client-msg', channel: priv });
        assertId(e1.msg.id);
        assert.deepEqual(e1.msg, { event: 'client-msg', channel: priv, data: { t: 1 }, id: e1.msg.id });
        const e2 = await b.take({ event: 'client-msg', channel: pres });
        assertId(e2.msg.id);
        assert.deepEqual(e2.msg, { event: 'client-msg', channel: pres, data: { t: 2 }, user_id: 'alice', id: e2.msg.id });
        const e3 = await b.take({ event: 'client-msg', channel: other });
        assert.deepEqual(e3.msg, { event: 'client-msg', channel: other, data: { t: 3 } });
        const e4 = await b.take({ event: 'client-msg', channel: priv });
        assertId(e4.msg.id);
        assert.notEqual(e4.msg.id, e1.msg.id);
        // and a REST event after them on the same channel gets yet another id
        const body = await okBody(() => rest(server, CHAT).trigger(priv, 'server', {}));
        assertId(idsIn(body)[priv]);
        assert.ok(![e1.msg.id, e4.msg.id].includes(body.ids[priv]));
    });

    test('rules: the first match wins: private-* before private-chat-* keeps client events on private-chat-* out of history', async () => {
        const ch = uniq('private-chat-');
        const a = await rawReady(s, server, { app: ORDER });
        const b = await rawReady(s, server, { app: ORDER });
        await a.subscribeAuthed(ch);
        await b.subscribeAuthed(ch);
        a.send({ event: 'client-msg', channel: ch, data: { t: 1 } });
        hasNoId((await b.take({ event: 'client-msg', channel: ch })).msg);
        const body = await okBody(() => rest(server, ORDER).trigger(ch, 'server', {}));
        assertId(idsIn(body)[ch]);
        assert.equal((await b.take({ event: 'server', channel: ch })).msg.id, body.ids[ch]);
    });
});

// ---- refused at start -------------------------------------------------------

// Writes the config (apps: [the main app with `history` = h]) to DIR/name,
// runs hark with it and returns the result; hark must exit on its own.
async function runWithHistory(name, h, extra = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'hark-e2e-hcfg-'));
    try {
        const port = await freePort();
        const body = JSON.stringify({
            host: '127.0.0.1', port, data_dir: join(dir, 'data'),
            apps: [{ ...APPS.main, history: h, ...extra }],
        }, null, 2);
        writeFileSync(join(dir, name), body);
        return await runHark(['--config', name], { cwd: dir, ms: 5000 });
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

function assertRefused(r, name, key, what) {
    assert.equal(r.timedOut, false, `${what}: hark kept running with a bad configuration`);
    assert.equal(r.signal, null, `${what}: hark died from signal ${r.signal}\n${r.stderr}`);
    assert.equal(r.code, 2, `${what}: exit code ${r.code}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
    assert.ok(r.stderr.includes(name), `${what}: stderr does not name the file:\n${r.stderr}`);
    assert.ok(r.stderr.includes(key), `${what}: stderr does not name ${key}:\n${r.stderr}`);
    // history is a known key: the reason is about its value
    assert.doesNotMatch(r.stderr, /apps\[0\]\.history: unknown key/, `${what}: history itself is refused as unknown`);
    const after_ = r.stderr.slice(r.stderr.indexOf(key) + key.length);
    assert.match(after_, /\S/, `${what}: no reason after the key:\n${r.stderr}`);
}

describe('history config refusals', () => {
    it('accepts history: false and a valid rule list (the server starts)', async () => {
        const server = await startHark({
            config: {
                apps: [{ ...APPS.main, history: [rule('a-*'), rule('#server-to-user-*'), rule('x=@,.;_-*'), rule('*', { client_events: true })], max_replay: 10, max_users_per_event: 10 },
                    { ...APPS.counted, history: false }],
            },
        });
        await server.stop();
    });

    const good = rule('*');
    const cases = [
        ['true.json', true, 'apps[0].history', 'history: true'],
        ['object.json', { channels: '*', max_events: 10, max_age_s: 60 }, 'apps[0].history', 'history: an object'],
        ['string.json', '*', 'apps[0].history', 'history: a string'],
        ['nochannels.json', [good, { max_events: 10, max_age_s: 60 }], 'apps[0].history[1]', 'a rule without channels'],
        ['zero.json', [good, rule('x-*', { max_events: 0 })], 'apps[0].history[1].max_events', 'max_events 0'],
        ['negative.json', [rule('x-*', { max_events: -5 })], 'apps[0].history[0].max_events', 'max_events -5'],
        ['fraction.json', [good, rule('x-*', { max_events: 1.5 })], 'apps[0].history[1].max_events', 'max_events 1.5'],
        ['quoted.json', [good, rule('x-*', { max_events: '10' })], 'apps[0].history[1].max_events', 'max_events "10"'],
        ['unknown.json', [good, rule('x-*', { max_evnts: 10 })], 'apps[0].history[1]', 'an unknown key in a rule'],
        // patterns no channel name can match: a typo would turn history off without a word
        ['space.json', [rule('a b')], 'apps[0].history[0].channels', 'a pattern with a space'],
        ['slash.json', [good, rule('chat/*')], 'apps[0].history[1].channels', 'a pattern with a slash'],
        ['accent.json', [rule('\u00e9*')], 'apps[0].history[0].channels', 'a pattern with a non-ASCII letter'],
        ['percent.json', [rule('x%')], 'apps[0].history[0].channels', 'a pattern with a percent sign'],
        ['hash.json', [rule('chat-#*')], 'apps[0].history[0].channels', 'a pattern with a # that is not first'],
        ['emptypat.json', [rule('')], 'apps[0].history[0].channels', 'an empty pattern'],
    ];
    for (const [name, h, key, what] of cases) {
        it(`refuses ${what}: exit 2 naming ${name} and ${key}`, async () => {
            const r = await runWithHistory(name, h);
            assertRefused(r, name, key, what);
            if (name === 'unknown.json') assert.ok(r.stderr.includes('max_evnts'), r.stderr);
        });
    }
});
