// History durability: once POST /events (or batch_events) answered 200 for
// an event on a kept channel, the event is in history after kill -9 and a
// restart on the same data_dir, with the same id; ids issued after the
// restart continue the same epoch (a resume from a pre-restart id returns the
// later events too). A wiped data_dir is a new epoch: an old id is recognised
// as such (resume recovered:false, REST paging 400). Each test starts its
// own servers on a data_dir of its own.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rest } from './lib/harness.mjs';
import { rawReady, uniq } from './lib/clients.mjs';
import {
    assertId, range, seqOf, okBody, publishSeq, resume, checkResumed, history, pageAll, restartKit,
} from './lib/history.mjs';

// The whole history of ch on server, oldest first (after the 200 checks of pageAll).
async function all(server, ch) {
    const got = await pageAll((p) => history(rest(server), ch, p), { from: 'oldest' }, 'after', 1000);
    return got.events;
}

describe('history durability', () => {
    let s;
    let servers;
    let newDir;
    restartKit((kit) => ({ s, servers, newDir } = kit));

    test('kill -9 right after the 200s: a restart on the same data_dir has every event in REST history and replays it on resume', async () => {
        const dir = newDir();
        const a = await servers.start(dir);
        const ch = uniq('durable-');
        const ch2 = uniq('private-durable-');
        const sdk = rest(a);
        const ids = await publishSeq(sdk, ch, 0, 20);
        const batch = range(20, 30).map((i) => ({ channel: i % 2 ? ch2 : ch, name: 'tick', data: { seq: i } }));
        const body = await okBody(() => sdk.triggerBatch(batch));
        assert.ok(Array.isArray(body.ids) && body.ids.length === 10, `batch answer ${JSON.stringify(body)}`);
        await servers.kill(a); // at once, after the last 200
        body.ids.forEach((id, i) => {
            assertId(id);
            if (i % 2 === 0) ids.push(id);
        });
        const ids2 = body.ids.filter((_, i) => i % 2 === 1);

        const b = await servers.start(dir);
        const events = await all(b, ch);
        assert.deepEqual(events.map((e) => e.id), ids, 'history after the restart');
        assert.deepEqual(events.map((e) => e.data), [...range(0, 20), 20, 22, 24, 26, 28].map((i) => `{"seq":${i}}`));
        const events2 = await all(b, ch2);
        assert.deepEqual(events2.map((e) => e.id), ids2);
        const r = await rawReady(s, b);
        const res = await resume(r, ch, ids[0]);
        checkResumed(res, ch, true, ids.length - 1);
        assert.deepEqual(res.replayed.map((m) => m.id), ids.slice(1));
    });

    test('restart (SIGTERM) between the events and the reconnect: resume recovers what the client missed', async () => {
        const dir = newDir();
        const a = await servers.start(dir);
        const ch = uniq('feed-');
        const r1 = await rawReady(s, a);
        await r1.subscribe(ch, { auth: '' });
        const pub = rest(a);
        await publishSeq(pub, ch, 0, 1);
        const e0 = await r1.take({ event: 'tick', channel: ch });
        assertId(e0.msg.id);
        r1.terminate();
        const missed = await publishSeq(pub, ch, 1, 6);
        await servers.stop(a);

        const b = await servers.start(dir);
        const r2 = await rawReady(s, b);
        const res = await resume(r2, ch, e0.msg.id);
        checkResumed(res, ch, true, 5);
        assert.deepEqual(res.replayed, missed.map((id, i) => ({ event: 'tick', channel: ch, data: `{"seq":${i + 1}}`, id })));
    });

    test('ids continue across kill -9: a resume from a pre-restart id returns the events before and after the restart, in order', async () => {
        const dir = newDir();
        const ch = uniq('continue-');
        const a = await servers.start(dir);
        const before = await publishSeq(rest(a), ch, 0, 3);
        await servers.kill(a);
        const b = await servers.start(dir);
        const afterB = await publishSeq(rest(b), ch, 3, 5);
        await servers.kill(b);
        const c = await servers.start(dir);
        const afterC = await publishSeq(rest(c), ch, 5, 6);
        const ids = [...before, ...afterB, ...afterC];
        assert.equal(new Set(ids).size, 6, `an id was issued twice: ${ids}`);
        const r = await rawReady(s, c);
        const res = await resume(r, ch, before[0]);
        checkResumed(res, ch, true, 5);
        assert.deepEqual(res.replayed.map(seqOf), [1, 2, 3, 4, 5]);
        assert.deepEqual(res.replayed.map((m) => m.id), ids.slice(1));
        const r2 = await rawReady(s, c);
        const res2 = await resume(r2, ch, afterB[0]);
        checkResumed(res2, ch, true, 2);
        assert.deepEqual(res2.replayed.map((m) => m.id), ids.slice(4));
        // REST pages across the restarts the same way
        const after0 = await history(rest(c), ch, { after: before[2] });
        assert.equal(after0.status, 200, after0.text);
        assert.deepEqual(after0.body.events.map((e) => e.id), ids.slice(3));
        assert.deepEqual((await all(c, ch)).map((e) => e.id), ids);
    });

    test('a wiped data_dir is a new epoch: an old id → resume recovered:false, REST after/before → 400', async () => {
        const ch = uniq('epoch-');
        const a = await servers.start(newDir());
        const old = await publishSeq(rest(a), ch, 0, 3);
        await servers.stop(a);
        // same config, a fresh data_dir
        const b = await servers.start(newDir());
        const fresh = await publishSeq(rest(b), ch, 0, 3);
        const r = await rawReady(s, b);
        const res = await resume(r, ch, old[0]);
        checkResumed(res, ch, false);
        // the subscription stays
        const body = await okBody(() => rest(b).trigger(ch, 'live', {}));
        assert.equal((await r.take({ event: 'live', channel: ch })).msg.id, body.ids[ch]);
        for (const key of ['after', 'before']) {
            const h = await history(rest(b), ch, { [key]: old[1] });
            assert.equal(h.status, 400, `${key}= an id of the wiped data_dir: ${h.text}`);
        }
        // the new history has only the new events
        assert.deepEqual((await all(b, ch)).map((e) => e.id), [...fresh, body.ids[ch]]);
        // and a new id still works
        const r2 = await rawReady(s, b);
        const res2 = await resume(r2, ch, fresh[0]);
        checkResumed(res2, ch, true, 3);
    });
});
