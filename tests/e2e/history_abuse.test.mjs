// History under abuse: what a client that resumes and never reads (also when
// it asks for more while a replay waits for it), one that
// vanishes in the middle of its replays, and a history file that cannot grow
// (a full disk) can do to the server and to other clients (docs/design.md,
// History; docs/api.md, History and replay).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, until, sleep } from './lib/clients.mjs';
import { wsConnect, httpGet } from './lib/rawtcp.mjs';
import { rssOf } from './lib/churn.mjs';
import { assertId, checkResumed, idsIn, okBody, restartKit, resume, rule } from './lib/history.mjs';

const CHANNELS = 12;
const EVENTS = 150; // per channel
const PAD = 'x'.repeat(2000); // each event about 2 kB

async function metric(server, name) {
    const { text } = await httpGet(server, '/metrics');
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
}

// Publishes EVENTS events of about 2 kB on each channel (10 per batch);
// returns each channel's first id.
async function backlog(sdk, channels) {
    const first = {};
    for (const ch of channels) {
        for (let i = 0; i < EVENTS; i += 10) {
            const batch = Array.from({ length: 10 }, (_, k) => ({ channel: ch, name: 'fill', data: JSON.stringify({ seq: i + k, pad: PAD }) }));
            const res = await sdk.triggerBatch(batch);
            assert.equal(res.status, 200);
            const { ids } = await res.json();
            if (i === 0) first[ch] = ids[0];
        }
    }
    return first;
}

// A raw client that subscribes to every channel with since and then stops
// reading.
async function resumeWithoutReading(server, channels, first, app = APPS.main) {
    const conn = await wsConnect(server, `/app/${app.key}?protocol=7&client=js&version=8.6.0&flash=false`);
    await conn.established();
    for (const ch of channels) conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, since: first[ch] } });
    conn.pause();
    return conn;
}

describe('history abuse', () => {
    let server;
    let sdk;
    before(async () => {
        server = await startHark({ config: { workers: 2 } });
        sdk = rest(server);
    });
    after(async () => { await server.stop(); });

    test('a client resuming many channels without reading holds one replay at a time, and others are served', async () => {
        const s = scope();
        try {
            const channels = Array.from({ length: CHANNELS }, () => uniq('abuse-'));
            const first = await backlog(sdk, channels);
            const rss0 = rssOf(server.proc.pid);
            const conn = await resumeWithoutReading(server, channels, first);
            s.add(() => conn.destroy());
            // the first replay is read and held for the stalled client
            await until(async () => (await metric(server, 'hark_history_replay_bytes')) > 0, 'a replay held for the stalled client', 10000);
            // another client is served meanwhile, live and resumed
            const other = await rawReady(s, server);
            const live = uniq('abuse-live-');
            await other.subscribe(live, { auth: '' });
            await sdk.trigger(live, 'hello', {});
            await other.take({ event: 'hello', channel: live });
            await other.subscribe(channels[0], { auth: '', since: first[channels[0]] });
            const ok = await other.take({ event: 'hark:resumed', channel: channels[0] }, 10000);
            assert.deepEqual(JSON.parse(ok.msg.data), { recovered: true, count: EVENTS - 1 });
            // one replay at a time: never more than one channel's answer is held
            const held = await metric(server, 'hark_history_replay_bytes');
            assert.ok(held <= EVENTS * (PAD.length + 200), `${held} bytes held: more than one replay`);
            const grown = rssOf(server.proc.pid) - rss0;
            assert.ok(grown < 32 * 1024, `hark grew by ${grown} kB for one stalled client`);
            // once it reads, it gets every channel's replay, in full and in order
            conn.resume();
            const got = new Map(channels.map((ch) => [ch, []]));
            const resumed = new Map();
            while (resumed.size < CHANNELS) {
                const m = await conn.nextMessage(15000);
                assert.ok(m && m.json, 'the connection ended during the replays');
                const { event, channel } = m.json;
                if (event === 'hark:resumed') {
                    resumed.set(channel, JSON.parse(m.json.data));
                } else if (event === 'fill') {
                    assert.ok(!resumed.has(channel), `${channel}: an event after its hark:resumed`);
                    got.get(channel).push(JSON.parse(m.json.data).seq);
                }
            }
            for (const ch of channels) {
                assert.deepEqual(resumed.get(ch), { recovered: true, count: EVENTS - 1 }, ch);
                assert.deepEqual(got.get(ch), Array.from({ length: EVENTS - 1 }, (_, i) => i + 1), ch);
            }
            await until(async () => (await metric(server, 'hark_history_replay_bytes')) === 0, 'every replay released');
        } finally {
            await s.close();
        }
    });

    test('a resume asked while another replay waits for a client that does not read is held back until that one is sent', async () => {
        const s = scope();
        try {
            // enough replays to fill the kernel's buffers (about 12 MB), so one stays held
            const channels = Array.from({ length: 40 }, () => uniq('abuse-wait-'));
            const first = await backlog(sdk, channels);
            const conn = await wsConnect(server);
            s.add(() => conn.destroy());
            await conn.established();
            for (const ch of channels.slice(0, -1)) conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, since: first[ch] } });
            conn.pause();
            // wait until a replay is held and stays held: the client is full
            let last = -1;
            await until(async () => {
                const now = await metric(server, 'hark_history_replay_bytes');
                const stable = now > 0 && now === last;
                last = now;
                return stable;
            }, 'a replay held for the client that does not read', 20000);
            const oneReplay = EVENTS * (PAD.length + 200);
            assert.ok(last <= oneReplay, `${last} bytes held before the last subscribe`);
            // one more subscription with since: its replay waits for the held one
            const ch = channels[channels.length - 1];
            conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, since: first[ch] } });
            for (let i = 0; i < 5; i++) {
                await new Promise((r) => setTimeout(r, 200));
                const held = await metric(server, 'hark_history_replay_bytes');
                assert.ok(held <= oneReplay, `${held} bytes held: a second replay beside the one waiting`);
            }
            // once it reads, every channel is resumed in full
            conn.resume();
            const resumed = new Map();
            while (resumed.size < channels.length) {
                const m = await conn.nextMessage(20000);
                assert.ok(m && m.json, 'the connection ended during the replays');
                if (m.json.event === 'hark:resumed') resumed.set(m.json.channel, JSON.parse(m.json.data));
            }
            for (const c of channels) assert.deepEqual(resumed.get(c), { recovered: true, count: EVENTS - 1 }, c);
            await until(async () => (await metric(server, 'hark_history_replay_bytes')) === 0, 'nothing held once all is sent', 10000);
        } finally {
            await s.close();
        }
    });

    test('unsubscribe and subscribe again with another since while the first resume is read: the answer is the second one\'s', async () => {
        const s = scope();
        try {
            const ch = uniq('abuse-again-');
            const ids = [];
            for (let i = 0; i < EVENTS; i += 10) {
                const batch = Array.from({ length: 10 }, (_, k) => ({ channel: ch, name: 'fill', data: JSON.stringify({ seq: i + k, pad: PAD }) }));
                const res = await sdk.triggerBatch(batch);
                assert.equal(res.status, 200);
                ids.push(...(await res.json()).ids);
            }
            const conn = await wsConnect(server);
            s.add(() => conn.destroy());
            await conn.established();
            // in one go: the first resume (149 events to read) is still being read
            // when the second subscription asks for the last two
            conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, since: ids[0] } });
            conn.sendJSON({ event: 'pusher:unsubscribe', data: { channel: ch } });
            conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, since: ids[EVENTS - 3] } });
            // the first subscription's resume may also finish before the server reads
            // the unsubscribe (then it is answered in full, and the second follows);
            // what must not happen is the second subscription getting the first's answer
            let seqs = [];
            for (;;) {
                const m = await conn.nextMessage(10000);
                assert.ok(m && m.json, 'the connection ended before the second hark:resumed');
                if (m.json.event === 'fill') seqs.push(JSON.parse(m.json.data).seq);
                if (m.json.event !== 'hark:resumed') continue;
                const data = JSON.parse(m.json.data);
                if (data.count === 2) {
                    assert.deepEqual(data, { recovered: true, count: 2 });
                    assert.deepEqual(seqs, [EVENTS - 2, EVENTS - 1]);
                    break;
                }
                assert.deepEqual(data, { recovered: true, count: EVENTS - 1 }, 'the first subscription, answered before it was left');
                seqs = [];
            }
        } finally {
            await s.close();
        }
    });

    test('a client that vanishes in the middle of its replays leaves nothing held', async () => {
        const channels = Array.from({ length: 4 }, () => uniq('vanish-'));
        const first = await backlog(sdk, channels);
        const conn = await resumeWithoutReading(server, channels, first);
        await until(async () => (await metric(server, 'hark_history_replay_bytes')) > 0, 'a replay held for the stalled client', 10000);
        conn.destroy();
        await until(async () => (await metric(server, 'hark_history_replay_bytes')) === 0, 'the replay released once the client is gone', 10000);
        // and the server still resumes others
        const s = scope();
        try {
            const r = await rawReady(s, server);
            await r.subscribe(channels[1], { auth: '', since: first[channels[1]] });
            const ok = await r.take({ event: 'hark:resumed', channel: channels[1] }, 10000);
            assert.deepEqual(JSON.parse(ok.msg.data), { recovered: true, count: EVENTS - 1 });
        } finally {
            await s.close();
        }
    });
});

// keeps every channel, cache- ones too
const KEEP_ALL = { id: 'keepall-id', key: 'keepall-key', secret: 'keepall-secret', history: [rule('*', { max_events: 5000, max_age_s: 3600 })] };

describe('history abuse: live events pile up while a replay waits for its reader', () => {
    let server;
    let sdk;
    before(async () => {
        server = await startHark({ config: { max_output_bytes: 262144, apps: [...Object.values(APPS), KEEP_ALL] } });
        sdk = rest(server);
    });
    after(async () => { await server.stop(); });

    // The answer is in and its replay is paused for a client that does not
    // read; live events of the channel arrive meanwhile, more than the held
    // bound (a quarter of max_output_bytes): they are dropped, and the
    // resume must say so when it ends, not recovered:true with a gap.
    test('live copies dropped while a replay is being sent make hark:resumed say recovered:false', async () => {
        const s = scope();
        try {
            const ch = uniq('pile-');
            const big = 'y'.repeat(8000);
            let first;
            for (let i = 0; i < 1000; i += 10) {
                const batch = Array.from({ length: 10 }, (_, k) => ({ channel: ch, name: 'fill', data: JSON.stringify({ seq: i + k, pad: big }) }));
                const { ids } = await (await sdk.triggerBatch(batch)).json();
                if (i === 0) first = ids[0];
            }
            const conn = await resumeWithoutReading(server, [ch], { [ch]: first });
            s.add(() => conn.destroy());
            await until(async () => (await metric(server, 'hark_history_replay_bytes')) > 0, 'the replay answered and held', 10000);
            await sleep(300); // its first part is in the kernel's buffers
            for (let i = 0; i < 20; i++) await sdk.trigger(ch, 'live', { i, pad: big });
            conn.resume();
            let resumed;
            while (!resumed) {
                const m = await conn.nextMessage(15000);
                assert.ok(m && m.json, 'the connection ended');
                if (m.json.event === 'hark:resumed') resumed = JSON.parse(m.json.data);
            }
            assert.equal(resumed.recovered, false, `hark:resumed ${JSON.stringify(resumed)}`);
            assert.match(resumed.reason, /too many live events/);
        } finally {
            await s.close();
        }
    });

    // The same on a kept cache channel: its cached last event was carried
    // by the replay, so it must not come again after hark:resumed.
    test('on a kept cache channel, the cached event is not sent again after that hark:resumed: ids only go forward', async () => {
        const s = scope();
        try {
            const ch = uniq('cache-pile-');
            const keepSdk = rest(server, KEEP_ALL);
            const big = 'y'.repeat(8000);
            let first;
            for (let i = 0; i < 1000; i += 10) {
                const batch = Array.from({ length: 10 }, (_, k) => ({ channel: ch, name: 'fill', data: JSON.stringify({ seq: i + k, pad: big }) }));
                const { ids } = await (await keepSdk.triggerBatch(batch)).json();
                if (i === 0) first = ids[0];
            }
            const conn = await resumeWithoutReading(server, [ch], { [ch]: first }, KEEP_ALL);
            s.add(() => conn.destroy());
            await until(async () => (await metric(server, 'hark_history_replay_bytes')) > 0, 'the replay answered and held', 10000);
            await sleep(300);
            for (let i = 0; i < 20; i++) await keepSdk.trigger(ch, 'live', { i, pad: big });
            conn.resume();
            const ids = [];
            let resumed;
            while (!resumed) {
                const m = await conn.nextMessage(15000);
                assert.ok(m && m.json, 'the connection ended');
                if (m.json.id) ids.push(m.json.id);
                if (m.json.event === 'hark:resumed') resumed = JSON.parse(m.json.data);
            }
            assert.equal(resumed.recovered, false, `hark:resumed ${JSON.stringify(resumed)}`);
            // what follows hark:resumed: a live event published now is the barrier
            await keepSdk.trigger(ch, 'after', {});
            for (;;) {
                const m = await conn.nextMessage(15000);
                assert.ok(m && m.json, 'the connection ended');
                if (m.json.id) ids.push(m.json.id);
                if (m.json.event === 'after') break;
            }
            const seq = (id) => Number(id.split('.').pop()); // ids end in the channel's sequence number
            for (let i = 1; i < ids.length; i++) assert.ok(seq(ids[i]) > seq(ids[i - 1]), `id ${ids[i]} after ${ids[i - 1]}`);
        } finally {
            await s.close();
        }
    });
});

// The history file cannot grow: hark's process gets a file size limit
// (prlimit) at the WAL's current size, as if the disk were full, so the
// next commit fails at once; lifting the limit heals it.
function fillDisk(server) {
    const wal = join(server.dataDir, 'history.sqlite3-wal');
    const limit = (soft) => {
        const r = spawnSync('prlimit', ['--pid', String(server.proc.pid), `--fsize=${soft}:`]);
        assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
    };
    limit(statSync(wal).size);
    return { release: () => limit('unlimited') };
}

describe('history storage failing', () => {
    let server;
    let sdk;
    before(async () => {
        server = await startHark({});
        sdk = rest(server);
    });
    after(async () => { await server.stop(); });

    test('REST answers 503 while the store fails, live delivery goes on, and writes resume by themselves', async () => {
        const s = scope();
        try {
            const ch = uniq('store-');
            const r = await rawReady(s, server);
            await r.subscribe(ch, { auth: '' });
            const before_ = await sdk.trigger(ch, 'one', {});
            assert.equal(before_.status, 200);
            const id1 = (await before_.json()).ids[ch];
            await r.take({ event: 'one', channel: ch });

            const full = fillDisk(server);
            const failed = await sdk.trigger(ch, 'two', {}).catch((e) => e);
            assert.equal(failed.status, 503, `expected 503, got ${failed.status}: ${failed.body}`);
            assert.match(String(failed.body), /History storage failed/);
            const live = await r.take({ event: 'two', channel: ch });
            assert.equal(live.msg.id, undefined, 'an event that was not stored carries no id');
            assert.ok(await metric(server, 'hark_history_write_failures_total') >= 1);
            full.release();

            const after_ = await sdk.trigger(ch, 'three', {});
            assert.equal(after_.status, 200);
            const id3 = (await after_.json()).ids[ch];
            assert.equal((await r.take({ event: 'three', channel: ch })).msg.id, id3);
            // history has one and three, not two
            const page = await (await sdk.get({ path: `/channels/${ch}/events`, params: {} })).json();
            assert.deepEqual(page.events.map((e) => [e.id, e.event]), [[id1, 'one'], [id3, 'three']]);
        } finally {
            await s.close();
        }
    });
});

// One long poll (wait 0) of a public channel of the main app from since;
// resolves with the answer's body.
async function pollOnce(server, ch, since) {
    const path = `/app/app-key/poll?channels=${encodeURIComponent(ch)}&since=${encodeURIComponent(since)}&wait=0`;
    const r = await httpGet(server, path, 10000);
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    assert.match(r.text, /^HTTP\/1\.1 200 /, `poll: ${r.text.slice(0, 300)}`);
    return JSON.parse(body);
}

describe('history storage failing, then a restart', () => {
    let s;
    let servers;
    let newDir;
    restartKit((kit) => ({ s, servers, newDir } = kit));

    // Events that went out live while the store failed are in no history:
    // a client that was away and resumes from before them must hear
    // recovered:false (never a silent gap), also once hark has restarted.
    test('a resume across events delivered but not stored says recovered:false, before and after a restart; a channel that lost nothing still recovers', async () => {
        const dir = newDir();
        const a = await servers.start(dir);
        const sdk = rest(a);
        const ch = uniq('gap-');
        const calm = uniq('calm-');
        const live = await rawReady(s, a);
        await live.subscribe(ch, { auth: '' });
        const id1 = idsIn(await okBody(() => sdk.trigger(ch, 'one', {})))[ch];
        const calm1 = idsIn(await okBody(() => sdk.trigger(calm, 'one', {})))[calm];
        await live.take({ event: 'one', channel: ch });

        const full = fillDisk(a);
        const failed = await sdk.trigger(ch, 'two', {}).catch((e) => e);
        assert.equal(failed.status, 503, `expected 503, got ${failed.status}: ${failed.body}`);
        assert.equal((await live.take({ event: 'two', channel: ch })).msg.id, undefined);
        full.release();

        // a long poll from before the gap, with nothing after it yet: told,
        // and moved past it (else the next poll would be answered at once)
        const tail = await pollOnce(a, ch, id1);
        assert.equal(tail.channels[ch].recovered, false, JSON.stringify(tail));
        assert.deepEqual(tail.events, []);
        assert.notEqual(tail.since, id1);

        const id3 = idsIn(await okBody(() => sdk.trigger(ch, 'three', {})))[ch];
        const calm3 = idsIn(await okBody(() => sdk.trigger(calm, 'three', {})))[calm];
        assertId(id3);
        // a long poll across the gap: told, and given what came after it
        const across = await pollOnce(a, ch, id1);
        assert.equal(across.channels[ch].recovered, false, JSON.stringify(across));
        assert.deepEqual(across.events.map((e) => e.id), [id3]);
        assert.equal(across.since, id3);
        const onward = await pollOnce(a, ch, tail.since);
        assert.equal(onward.channels[ch].recovered, true, JSON.stringify(onward));
        assert.deepEqual(onward.events.map((e) => e.id), [id3]);

        const away = await resume(await rawReady(s, a), ch, id1);
        checkResumed(away, ch, false);
        const fromAfter = await resume(await rawReady(s, a), ch, id3);
        checkResumed(fromAfter, ch, true, 0);
        const other = await resume(await rawReady(s, a), calm, calm1);
        checkResumed(other, calm, true, 1);
        assert.deepEqual(other.replayed.map((m) => m.id), [calm3]);

        await servers.stop(a);
        const b = await servers.start(dir);
        const again = await resume(await rawReady(s, b), ch, id1);
        checkResumed(again, ch, false);
        const id4 = idsIn(await okBody(() => rest(b).trigger(ch, 'four', {})))[ch];
        const later = await resume(await rawReady(s, b), ch, id3);
        checkResumed(later, ch, true, 1);
        assert.deepEqual(later.replayed.map((m) => [m.event, m.id]), [['four', id4]]);
    });

    test('storage works again and hark stops before anything else is written: the gap is recorded all the same', async () => {
        const dir = newDir();
        const a = await servers.start(dir);
        const sdk = rest(a);
        const ch = uniq('gapstop-');
        const id1 = idsIn(await okBody(() => sdk.trigger(ch, 'one', {})))[ch];
        const full = fillDisk(a);
        const failed = await sdk.trigger(ch, 'two', {}).catch((e) => e);
        assert.equal(failed.status, 503, `expected 503, got ${failed.status}: ${failed.body}`);
        full.release();
        await servers.stop(a);
        const b = await servers.start(dir);
        checkResumed(await resume(await rawReady(s, b), ch, id1), ch, false);
    });
});
