// Churn driver: many short-lived WebSocket clients that connect, subscribe,
// send client events and drop abruptly, while REST triggers flow to control
// subscribers that must receive every event, in order, without stalling.
// Used by churn.test.mjs (bounded, in `make test`) and bench/soak.mjs (long,
// RSS sampled). It talks the raw Pusher protocol over the `ws` package, so
// nothing in between (pusher-js reconnect logic, buffering) hides a server
// that muted a connection. Any Pusher-compatible server can be the target.
//
//   const r = await runChurn({ host, port, app: { id, key, secret }, seconds: 20, churners: 200 });
//
// Everything stops by itself after `seconds` plus a bounded tail: timers are
// cleared and every socket and keep-alive agent is closed, so node can exit.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import PusherServer from 'pusher';
import WebSocket from 'ws';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (a, b) => a + Math.floor(Math.random() * (b - a + 1));
const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];

// VmRSS of a process in kB, or null when it is gone.
export function rssOf(pid) {
    try {
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch {
        return null;
    }
}

// A masked client text frame (what a browser would send), so that a prefix
// of it can be written before the TCP socket is cut: the server is left
// holding half a frame.
function maskedTextFrame(text) {
    const payload = Buffer.from(text);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]);
    const mask = randomBytes(4);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
    return Buffer.concat([head, mask, body]);
}

const tally = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };
// The top-level "event" and "channel" of a server frame. Inside `data` (a
// JSON string) quotes are escaped, so these cannot match there.
const EVENT_RE = /"event":"([^"]*)"/;
const CHANNEL_RE = /"channel":"([^"]*)"/;

export async function runChurn(opts) {
    const {
        host = '127.0.0.1',
        port,
        app,
        seconds = 20,
        churners = 200,
        triggerRate = 40, // control triggers per second, over all lanes
        noiseRate = 40, // triggers per second to the churners' channels
        lanes = 4, // sequential keep-alive REST connections to the control channels
        workers = 2, // the server's worker count: controls are placed on each (0: anywhere)
        lifetimeMs = [20, 300], // how long a churner stays once subscribed
        hastyShare = 0.1, // churners that drop at a random moment, even mid-handshake
        timeoutMs = 10000, // handshake, subscription, REST answer, clean close
        stallMs = 5000, // a control without a delivery this long while triggers flow has stalled
        tailMs = 10000, // after the last trigger: how long controls get to catch up
        sampleMs = 0,
        onSample = null, // called every sampleMs with a snapshot (see sample())
        serverPid = null, // when given, snapshots carry the server's RSS
        log = () => {},
    } = opts;
    const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
    const wsUrl = `ws://${host}:${port}/app/${app.key}?protocol=7&client=js&version=8.6.0&flash=false`;
    const sdkFor = (agent) => new PusherServer({
        appId: app.id, key: app.key, secret: app.secret, host, port: String(port), useTLS: false,
        agent, timeout: timeoutMs,
    });
    const signer = sdkFor(undefined);

    // Channels. Churners share pools (5 to 20 on a channel) so that every
    // publish and every client event reaches connections about to drop; some
    // also join the control channels, whose fan-out then crosses dying
    // connections. Larger crowds per channel would only make the driver,
    // not the server, the bottleneck.
    const ctlPub = `churn-ctl-${tag}`;
    const ctlPresence = `presence-churn-ctl-${tag}`;
    const pool = (prefix, n) => Array.from({ length: Math.max(6, Math.round(n)) }, (_, i) => `${prefix}-${i}-${tag}`);
    const pubPool = pool('churn-pub', (churners * 3) / 20);
    const privatePool = pool('private-churn', churners / 5);
    const presencePool = pool('presence-churn', churners / 20);
    const ctlPubShare = Math.min(0.3, 75 / churners);
    const ctlPresenceShare = Math.min(0.25, 40 / churners);
    const noiseTargets = [...pubPool, ...presencePool, ...privatePool];

    // Loopback has 127/8: spreading the client side over several source
    // addresses keeps a long soak out of TIME_WAIT port exhaustion.
    const sources = /^127\./.test(host) ? Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`) : [undefined];

    const r = {
        handshakeAttempts: 0,
        handshakes: 0,
        handshakeFailures: 0, // no connection_established within timeoutMs (or error / close before it)
        handshakeFailureReasons: {},
        subscribes: 0,
        subscribeFailures: 0, // no subscription_succeeded within timeoutMs, or subscription_error
        subscribeFailureReasons: {},
        clientEventsSent: 0,
        clientEventsReceived: 0,
        pusherErrors: {}, // pusher:error codes seen by churners (4301: rate limit)
        serverCloses: {}, // close codes of churner connections the server ended
        drops: {},
        cleanCloseTimeouts: 0, // clean closes the server never answered
        triggers: 0, // acknowledged control publishes (each one event on both control channels)
        batchTriggers: 0,
        noiseTriggers: 0,
        noiseSkipped: 0, // noise not sent because too many were in flight
        restStalls: 0, // no answer within timeoutMs
        restErrors: 0,
        restErrorSamples: [],
        restMaxMs: 0,
        restConnections: 0, // TCP connections the REST agents opened (keep-alive: ideally lanes + a few)
        controlDisconnects: 0,
        perControl: [],
        connectionsOpenMax: 0,
        seconds,
    };

    let running = true;
    let openSockets = 0;
    const timers = new Set();
    const later = (ms, fn) => {
        const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
        timers.add(t);
        return t;
    };
    const cancel = (t) => { if (t) { clearTimeout(t); timers.delete(t); } };
    const agents = [];
    const newAgent = (maxSockets) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets });
        const create = agent.createConnection.bind(agent);
        agent.createConnection = (...a) => { r.restConnections++; return create(...a); };
        agents.push(agent);
        return agent;
    };
    const restFailed = (e, what) => {
        const aborted = e && e.error && (e.error.name === 'AbortError' || e.error.type === 'aborted');
        if (aborted) r.restStalls++; else r.restErrors++;
        if (r.restErrorSamples.length < 5) r.restErrorSamples.push(`${what}: ${aborted ? 'no answer in time' : (e && (e.status ? `${e.status} ${e.body}` : e.message))}`);
    };
    const timed = async (p) => {
        const t0 = Date.now();
        await p;
        r.restMaxMs = Math.max(r.restMaxMs, Date.now() - t0);
    };

    // ---- controls -------------------------------------------------------
    // Raw connections subscribed to both control channels. One per worker
    // (socket ids are "<worker>.<n>"); with one worker, two on it.
    function openControl(index) {
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
            const ctl = {
                index, ws, socketId: null, worker: null, subscribed: new Set(),
                streams: new Map(), // `${channel}/${lane}` -> { last, seen: Set }
                received: 0, outOfOrder: 0, duplicates: 0, maxGapMs: 0, lastAt: 0, closed: null,
            };
            const t = later(timeoutMs, () => { ws.terminate(); reject(new Error('control: no connection_established / subscription_succeeded in time')); });
            ws.on('error', () => {});
            ws.on('close', (code) => {
                ctl.closed = code;
                reject(new Error(`control closed (${code}) before it was ready`));
            });
            ws.on('message', (d) => {
                const m = JSON.parse(d.toString());
                if (m.event === 'pusher:connection_established') {
                    ctl.socketId = JSON.parse(m.data).socket_id;
                    ctl.worker = ctl.socketId.split('.')[0];
                    const presence = { user_id: `control-${index}`, user_info: { control: index } };
                    const a = signer.authorizeChannel(ctl.socketId, ctlPresence, presence);
                    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: ctlPub } }));
                    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: ctlPresence, ...a } }));
                } else if (m.event === 'pusher_internal:subscription_succeeded') {
                    ctl.subscribed.add(m.channel);
                    if (ctl.subscribed.size === 2) { cancel(t); resolve(ctl); }
                } else if (m.event === 'pusher:subscription_error') {
                    cancel(t);
                    reject(new Error(`control subscription_error ${JSON.stringify(m.data)}`));
                } else if (m.event === 'seq') {
                    onSeq(ctl, m.channel, JSON.parse(m.data));
                }
            });
        });
    }

    let triggersFrom = 0; // first control publish acknowledged
    let triggersUntil = 0; // 0 while triggers flow, then the time the last one was acknowledged
    function onSeq(ctl, channel, { lane, seq }) {
        const now = Date.now();
        ctl.received++;
        if (ctl.lastAt && triggersFrom && !triggersUntil) ctl.maxGapMs = Math.max(ctl.maxGapMs, now - ctl.lastAt);
        ctl.lastAt = now;
        const key = `${channel}/${lane}`;
        let s = ctl.streams.get(key);
        if (!s) ctl.streams.set(key, (s = { last: -1, seen: new Set() }));
        if (s.seen.has(seq)) ctl.duplicates++;
        else if (seq < s.last) ctl.outOfOrder++;
        s.seen.add(seq);
        s.last = Math.max(s.last, seq);
    }

    const controls = [];
    {
        // workers 0: a server whose socket ids do not name a worker (Soketi)
        const want = workers >= 2 ? Object.fromEntries(Array.from({ length: workers }, (_, i) => [String(i + 1), 1]))
            : workers === 1 ? { 1: 2 } : { any: 2 };
        const need = () => Object.values(want).some((n) => n > 0);
        try {
            for (let i = 0; i < 64 && need(); i++) {
                const ctl = await openControl(i);
                const slot = 'any' in want ? 'any' : ctl.worker;
                if (want[slot] > 0) {
                    want[slot]--;
                    controls.push(ctl);
                } else {
                    ctl.ws.close();
                }
            }
            if (need()) throw new Error(`could not place a control on every worker (got ${controls.map((c) => c.socketId).join(', ')})`);
        } catch (e) {
            for (const c of controls) c.ws.terminate();
            for (const t of timers) clearTimeout(t);
            throw e;
        }
        for (const c of controls) c.ws.removeAllListeners('close').on('close', (code) => {
            c.closed = code;
            if (running || !c.done) r.controlDisconnects++;
        });
        log(`controls: ${controls.map((c) => c.socketId).join(', ')}`);
    }

    // ---- churners -------------------------------------------------------
    const live = new Set(); // socket ids of churners that are connected now, for socket_id exclusions
    const churnSockets = new Set();
    function churner(slot) {
        if (!running) return;
        const hasty = Math.random() < hastyShare;
        const user = { user_id: `churner-${slot}`, user_info: { slot } };
        const channels = [pick(pubPool), pick(pubPool), Math.random() < ctlPubShare ? ctlPub : pick(pubPool), pick(privatePool),
            Math.random() < ctlPresenceShare ? ctlPresence : pick(presencePool)];
        const wanted = new Set(channels);
        let socketId = null;
        let dropping = false;
        let established = false;
        let deadline = null;
        let dropTimer = null;
        r.handshakeAttempts++;
        const ws = new WebSocket(wsUrl, { perMessageDeflate: false, localAddress: pick(sources) });
        churnSockets.add(ws);
        openSockets++;
        r.connectionsOpenMax = Math.max(r.connectionsOpenMax, openSockets + controls.length);

        const fail = (kind, why) => {
            if (dropping || hasty || !running) return;
            if (kind === 'handshake') { r.handshakeFailures++; tally(r.handshakeFailureReasons, why); }
            else { r.subscribeFailures++; tally(r.subscribeFailureReasons, why); }
            dropping = true;
            cancel(deadline);
            cancel(dropTimer);
            ws.terminate();
        };
        deadline = later(timeoutMs, () => fail(established ? 'subscribe' : 'handshake', 'timeout'));
        if (hasty) dropTimer = later(rand(0, lifetimeMs[1]), () => drop(pick(['terminate', 'reset', 'midframe'])));

        ws.on('error', (e) => { if (!established) fail('handshake', e.code || e.message); });
        ws.on('close', (code) => {
            churnSockets.delete(ws);
            openSockets--;
            cancel(deadline);
            cancel(dropTimer);
            if (socketId) live.delete(socketId);
            if (!dropping && running) {
                if (!established) fail('handshake', `closed ${code}`);
                else tally(r.serverCloses, code);
            }
            if (running) later(rand(0, 20), () => churner(slot));
        });
        ws.on('message', (d) => {
            // Churners read every frame but look only at the event name (and
            // channel): a presence subscription_succeeded carries every member,
            // and parsing hundreds of those a second would cost more CPU
            // than the server spends on them.
            const text = d.toString();
            const event = EVENT_RE.exec(text)?.[1];
            if (event === 'client-churn') { r.clientEventsReceived++; return; }
            if (!event || !event.startsWith('pusher')) return;
            if (event === 'pusher_internal:subscription_succeeded') {
                r.subscribes++;
                wanted.delete(CHANNEL_RE.exec(text)?.[1]);
                if (wanted.size === 0) subscribedAll();
                return;
            }
            const m = JSON.parse(text);
            if (m.event === 'pusher:connection_established') {
                established = true;
                r.handshakes++;
                socketId = JSON.parse(m.data).socket_id;
                live.add(socketId);
                for (const ch of wanted) {
                    const data = { channel: ch };
                    if (ch.startsWith('private-')) Object.assign(data, signer.authorizeChannel(socketId, ch));
                    else if (ch.startsWith('presence-')) Object.assign(data, signer.authorizeChannel(socketId, ch, user));
                    ws.send(JSON.stringify({ event: 'pusher:subscribe', data }));
                }
                cancel(deadline);
                deadline = later(timeoutMs, () => fail('subscribe', 'timeout'));
            } else if (m.event === 'pusher:subscription_error') {
                fail('subscribe', `subscription_error ${JSON.stringify(m.data)}`);
            } else if (m.event === 'pusher:error') {
                tally(r.pusherErrors, m.data && m.data.code);
            }
        });

        function subscribedAll() {
            cancel(deadline);
            deadline = null;
            if (dropping) return;
            for (let i = rand(1, 2); i > 0; i--) {
                const ch = i === 1 ? channels[3] : channels[4]; // private, then presence
                ws.send(JSON.stringify({ event: 'client-churn', channel: ch, data: { from: socketId, i } }));
                r.clientEventsSent++;
            }
            if (!hasty) {
                const weights = ['terminate', 'terminate', 'terminate', 'reset', 'reset', 'midframe', 'midframe', 'midframe', 'clean'];
                dropTimer = later(rand(lifetimeMs[0], lifetimeMs[1]), () => drop(pick(weights)));
            }
        }

        function drop(how) {
            if (dropping) return;
            dropping = true;
            cancel(deadline);
            cancel(dropTimer);
            const sock = ws._socket; // ws keeps the net.Socket here once upgraded
            if (ws.readyState !== WebSocket.OPEN || !sock) how = 'terminate';
            tally(r.drops, how);
            if (how === 'terminate') ws.terminate(); // FIN, no close frame
            else if (how === 'reset') sock.resetAndDestroy(); // RST
            else if (how === 'midframe') {
                const f = maskedTextFrame(JSON.stringify({ event: 'client-churn', channel: channels[3], data: { pad: 'x'.repeat(rand(10, 300)) } }));
                sock.write(f.subarray(0, rand(1, f.length - 1)), () => sock.destroy());
            } else {
                ws.close(1000);
                // the server must answer the close frame; if not, cut it
                later(timeoutMs, () => { if (ws.readyState !== WebSocket.CLOSED) { r.cleanCloseTimeouts++; ws.terminate(); } });
            }
        }
    }

    // ---- REST -----------------------------------------------------------
    // Control lanes: each is one keep-alive connection with one request in
    // flight, so its publishes have a defined order ("per channel and
    // publisher"); every publish names both control channels and a sequence
    // number. One in ten is a batch that also feeds churner channels.
    const laneState = Array.from({ length: lanes }, () => ({ next: 0, acked: [] }));
    async function lane(i) {
        const sdk = sdkFor(newAgent(1));
        const st = laneState[i];
        const interval = (1000 * lanes) / triggerRate;
        let at = Date.now();
        while (running) {
            const seq = st.next++;
            const data = { lane: i, seq };
            try {
                if (seq % 10 === 9) {
                    await timed(sdk.triggerBatch([
                        { channel: ctlPub, name: 'seq', data },
                        { channel: pick(noiseTargets), name: 'noise', data: { lane: i, seq } },
                        { channel: ctlPresence, name: 'seq', data },
                        { channel: pick(noiseTargets), name: 'noise', data: { lane: i, seq } },
                    ]));
                    r.batchTriggers++;
                } else {
                    await timed(sdk.trigger([ctlPub, ctlPresence], 'seq', data));
                }
                st.acked.push(seq);
                r.triggers++;
                if (!triggersFrom) triggersFrom = Date.now();
            } catch (e) {
                restFailed(e, `lane ${i} seq ${seq}`);
            }
            at += interval;
            const wait = at - Date.now();
            if (wait > 0) await sleep(wait); else at = Date.now();
        }
    }

    // Noise: publishes to the churners' channels, several at a time, some
    // excluding a live churner's socket id, some batched.
    const noiseAgent = newAgent(4);
    const noiseSdk = sdkFor(noiseAgent);
    let noiseInFlight = 0;
    let noiseSent = 0;
    const noiseDone = [];
    function noise() {
        if (noiseInFlight >= 8) { r.noiseSkipped++; return; }
        noiseInFlight++;
        const n = noiseSent++;
        const chans = [pick(noiseTargets), pick(noiseTargets), pick(noiseTargets)].filter((c, i, a) => a.indexOf(c) === i);
        const params = n % 4 === 0 && live.size ? { socket_id: pick([...live].slice(0, 50)) } : undefined;
        const p = n % 7 === 0
            ? noiseSdk.triggerBatch(chans.map((channel) => ({ channel, name: 'noise', data: { n } })))
            : noiseSdk.trigger(chans, 'noise', { n, pad: 'y'.repeat(rand(0, 400)) }, params);
        const done = timed(p).then(() => { r.noiseTriggers++; }, (e) => restFailed(e, 'noise'))
            .finally(() => { noiseInFlight--; });
        noiseDone.push(done);
        if (noiseDone.length > 64) noiseDone.splice(0, 32);
    }

    // ---- run ------------------------------------------------------------
    const started = Date.now();
    const sample = () => {
        const s = {
            elapsedS: Math.round((Date.now() - started) / 1000),
            connectionsOpen: openSockets + controls.filter((c) => c.closed === null).length,
            handshakes: r.handshakes, handshakeFailures: r.handshakeFailures, subscribeFailures: r.subscribeFailures,
            triggers: r.triggers, noiseTriggers: r.noiseTriggers, restStalls: r.restStalls, restErrors: r.restErrors,
            controlsReceived: controls.map((c) => c.received),
            rssKb: serverPid ? rssOf(serverPid) : null,
        };
        return s;
    };
    let sampler = null;
    let sampledAt = 0;
    const takeSample = () => { sampledAt = Date.now(); onSample(sample()); };
    if (sampleMs && onSample) {
        takeSample(); // the baseline: controls connected, no churn yet
        sampler = setInterval(takeSample, sampleMs);
    }

    // Churners start over the first second, not all in one burst.
    for (let slot = 0; slot < churners; slot++) later(Math.floor((slot * 1000) / churners), () => churner(slot));
    // Noise is paced by what is due, not by one timer per publish, so a busy
    // event loop delays it but does not thin it out.
    let noiseDue = 0;
    const noiseTimer = noiseRate > 0 ? setInterval(() => {
        const due = Math.floor(((Date.now() - started) * noiseRate) / 1000);
        for (; noiseDue < due; noiseDue++) noise();
    }, 50) : null;
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const laneRuns = laneState.map((_, i) => lane(i));

    await sleep(seconds * 1000);
    running = false;
    clearInterval(noiseTimer);
    lag.disable();
    // How late the driver's own event loop ran: large values mean gaps and
    // slow answers were (partly) the client's doing.
    r.driverLagMs = { p99: Math.round(lag.percentile(99) / 1e6), max: Math.round(lag.max / 1e6) };
    await Promise.all(laneRuns);
    triggersUntil = Date.now();
    await Promise.allSettled(noiseDone);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const ws of churnSockets) ws.terminate();
    log(`triggers stopped after ${((triggersUntil - started) / 1000).toFixed(1)} s; waiting for the controls`);

    // Every control must see the last acknowledged sequence of every lane
    // on both channels; wait for that, bounded.
    const lastOf = laneState.map((st) => (st.acked.length ? st.acked[st.acked.length - 1] : -1));
    const caughtUp = (c) => laneState.every((_, i) => lastOf[i] < 0
        || [ctlPub, ctlPresence].every((ch) => c.streams.get(`${ch}/${i}`)?.seen.has(lastOf[i])));
    const tailEnd = Date.now() + tailMs;
    while (Date.now() < tailEnd && !controls.every(caughtUp)) await sleep(50);

    for (const c of controls) {
        // a control that stopped receiving before the end stalled until now
        if (c.lastAt) c.maxGapMs = Math.max(c.maxGapMs, Math.min(triggersUntil, Date.now()) - c.lastAt);
        else c.maxGapMs = triggersUntil - (triggersFrom || started);
        let missing = 0;
        const missingSamples = [];
        for (const [ch, short] of [[ctlPub, 'public'], [ctlPresence, 'presence']]) {
            laneState.forEach((st, i) => {
                const seen = c.streams.get(`${ch}/${i}`)?.seen || new Set();
                for (const seq of st.acked) if (!seen.has(seq)) {
                    missing++;
                    if (missingSamples.length < 10) missingSamples.push(`${short} lane ${i} seq ${seq}`);
                }
            });
        }
        r.perControl.push({
            socketId: c.socketId, received: c.received, missing, missingSamples,
            outOfOrder: c.outOfOrder, duplicates: c.duplicates, maxGapMs: c.maxGapMs,
            stalled: c.maxGapMs >= stallMs, disconnected: c.closed !== null, closeCode: c.closed, caughtUp: caughtUp(c),
        });
    }

    if (sampler) {
        clearInterval(sampler);
        if (Date.now() - sampledAt >= 1000) takeSample(); // the state after the tail
    }
    // Close everything: controls cleanly, then the REST agents.
    for (const c of controls) { c.done = true; c.ws.close(); }
    await Promise.race([Promise.all(controls.map((c) => (c.closed !== null ? null : new Promise((res) => c.ws.once('close', res))))), sleep(2000)]);
    for (const c of controls) c.ws.terminate();
    for (const a of agents) a.destroy();
    r.durationMs = Date.now() - started;
    r.lanes = laneState.map((st, i) => ({ lane: i, sent: st.next, acked: st.acked.length, last: lastOf[i] }));
    r.connectionsOpenAtEnd = openSockets;
    return r;
}

// A one-line human summary of a result.
export function describeResult(r) {
    const ctl = r.perControl.map((c) => `${c.socketId}: received ${c.received}, missing ${c.missing}, ooo ${c.outOfOrder}, dup ${c.duplicates}, max gap ${c.maxGapMs} ms${c.disconnected ? `, DISCONNECTED (${c.closeCode})` : ''}`).join('; ');
    return `handshakes ${r.handshakes}/${r.handshakeAttempts} (failures ${r.handshakeFailures} ${JSON.stringify(r.handshakeFailureReasons)}), `
        + `subscribes ${r.subscribes} (failures ${r.subscribeFailures} ${JSON.stringify(r.subscribeFailureReasons)}), `
        + `client events sent ${r.clientEventsSent} received ${r.clientEventsReceived}, pusher:error ${JSON.stringify(r.pusherErrors)}, `
        + `server closes ${JSON.stringify(r.serverCloses)}, drops ${JSON.stringify(r.drops)}, clean-close timeouts ${r.cleanCloseTimeouts}, `
        + `triggers ${r.triggers} (batches ${r.batchTriggers}), noise ${r.noiseTriggers} (skipped ${r.noiseSkipped}), `
        + `REST stalls ${r.restStalls} errors ${r.restErrors} max ${r.restMaxMs} ms over ${r.restConnections} connections ${JSON.stringify(r.restErrorSamples)}, `
        + `control disconnects ${r.controlDisconnects}, peak connections ${r.connectionsOpenMax}, `
        + `driver event-loop lag p99 ${r.driverLagMs.p99} ms max ${r.driverLagMs.max} ms; controls: ${ctl}`;
}
