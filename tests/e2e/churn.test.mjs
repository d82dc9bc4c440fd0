// Churn soak: a few hundred clients connect, subscribe to public, private and
// presence channels, send client events and drop abruptly (no close frame,
// RST, half a frame, a few clean closes), over and over, while REST triggers
// and batches run. A disconnect must never mute anyone else: the control
// subscribers, one on each worker, receive every triggered event in order
// with no stall, every handshake and subscription is answered, every REST
// request too, and at exit hark reports no sanitizer finding and no leak
// (server.stop() fails on either; `make asan` runs this under ASan+UBSan).
//
// Knobs for running it by hand: HARK_SOAK_SECONDS (default 20),
// HARK_SOAK_CHURNERS (default 200), HARK_SOAK_WORKERS (default 2; the
// suite's HARK_TEST_WORKERS does not apply: placing controls on two workers
// is the point).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, withTimeout } from './lib/harness.mjs';
import { runChurn, describeResult } from './lib/churn.mjs';

const SECONDS = Number(process.env.HARK_SOAK_SECONDS || 20);
const CHURNERS = Number(process.env.HARK_SOAK_CHURNERS || 200);
const WORKERS = Number(process.env.HARK_SOAK_WORKERS || 2);
// The standard app without the limits a churn would hit by design: each
// churner is its own presence member, and client events are not rate-limited.
const APP = { ...APPS.main, client_event_rate: 0, max_presence_members: 10000 };

let server;
before(async () => {
    server = await startHark({ config: { workers: WORKERS, log_level: 'warn', apps: [APP] } });
});
after(async () => {
    await server.stop();
});

async function metric(name) {
    const text = await withTimeout(fetch(`http://${server.host}:${server.port}/metrics`).then((res) => res.text()), '/metrics', 10000);
    const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
}

test(`churn: ${CHURNERS} clients dropping abruptly for ${SECONDS} s do not mute anyone`, { timeout: (SECONDS + 90) * 1000 }, async () => {
    const r = await runChurn({
        host: server.host, port: server.port, app: APP, workers: WORKERS,
        seconds: SECONDS, churners: CHURNERS, triggerRate: 40, noiseRate: 40,
    });
    const summary = describeResult(r);
    console.log(`# ${summary}`);

    // not a vacuous pass: the churn and the triggers did run (at a fraction
    // of their nominal rates, which a loaded machine may not reach)
    assert.ok(r.handshakes > (CHURNERS * SECONDS) / 2, `churn happened (${r.handshakes} handshakes)`);
    assert.ok(r.triggers > SECONDS * 10, `triggers flowed (${r.triggers})`);
    assert.equal(r.handshakeFailures, 0, `every handshake answered within 10 s: ${summary}`);
    assert.equal(r.subscribeFailures, 0, `every subscription answered within 10 s: ${summary}`);
    assert.equal(r.restStalls, 0, `every REST request answered within 10 s: ${summary}`);
    assert.equal(r.restErrors, 0, `no REST request failed: ${summary}`);
    assert.equal(r.cleanCloseTimeouts, 0, `every clean close answered: ${summary}`);
    assert.deepEqual(r.serverCloses, {}, `the server closed no churner by itself: ${summary}`);
    assert.equal(r.controlDisconnects, 0, `the controls stayed connected: ${summary}`);
    assert.ok(r.perControl.length >= 2, 'controls on both workers');
    for (const c of r.perControl) {
        assert.equal(c.missing, 0, `control ${c.socketId} missed events (${c.missingSamples.join(', ')}): ${summary}`);
        assert.equal(c.outOfOrder, 0, `control ${c.socketId} got events out of order: ${summary}`);
        assert.equal(c.duplicates, 0, `control ${c.socketId} got duplicates: ${summary}`);
        assert.ok(!c.stalled, `control ${c.socketId} went ${c.maxGapMs} ms without a delivery: ${summary}`);
    }

    // Still serving, and every churned connection was let go.
    const ready = await withTimeout(fetch(`http://${server.host}:${server.port}/ready`), '/ready', 10000);
    assert.equal(ready.status, 200);
    let open = null;
    for (let i = 0; i < 100; i++) {
        open = await metric('hark_connections');
        if (open !== null && open <= 1) break; // the /metrics request itself
        await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(open !== null && open <= 1, `hark_connections back to 0 after the churn (still ${open})`);
});
