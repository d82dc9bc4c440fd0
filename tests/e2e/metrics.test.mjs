// /metrics with two workers: every figure is whole-server (docs/api.md), so
// whichever worker answers a scrape, counters never go backwards and the sums
// match the traffic the test made. Subscribers are placed on both workers on
// purpose (a socket id starts with the number of its worker), and /metrics is
// scraped over fresh HTTP connections (spread by the kernel over the workers)
// and over one keep-alive connection (always the same worker), interleaved
// with traffic.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { APPS, startHark, rest, until, withTimeout } from './lib/harness.mjs';
import { wsConnect, encodeFrame } from './lib/rawtcp.mjs';

const ROUNDS = 40;
const APP = APPS.main;
const CHANNELS = `hark_app_channels{app="${APP.id}"}`;
const APP_CONNS = `hark_app_connections{app="${APP.id}"}`;

// name (with labels) → value, and the names declared `# TYPE <name> counter`.
function parse(text) {
    const values = new Map();
    const counters = new Set();
    for (const line of text.split('\n')) {
        if (!line) continue;
        const t = /^# TYPE (\S+) counter$/.exec(line);
        if (t) counters.add(t[1]);
        if (line.startsWith('#')) continue;
        const m = /^(\S+) (\d+)$/.exec(line);
        assert.ok(m, `a metric line: ${JSON.stringify(line)}`);
        values.set(m[1], Number(m[2]));
    }
    return { text, values, counters };
}

// An http.Agent over exactly one keep-alive TCP connection: every request
// through it is answered by the worker that accepted that connection.
class OneConnectionAgent extends http.Agent {
    constructor() {
        super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
        this.opened = 0;
    }

    createConnection(options, cb) {
        this.opened += 1;
        return super.createConnection(options, cb);
    }
}

function get(server, path, agent) {
    return withTimeout(new Promise((resolve, reject) => {
        const req = http.get({
            host: server.host, port: server.port, path,
            // agent false: a new TCP connection, closed after the answer
            agent: agent || false,
            headers: agent ? {} : { Connection: 'close' },
        }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, text }));
            res.on('error', reject);
        });
        req.on('error', reject);
    }), `GET ${path}`);
}

describe('metrics: whole-server figures under two workers', () => {
    let server;
    let sdk;
    const ws = []; // every WebSocket connection, all kept open until after()
    const onWorker = { 1: 0, 2: 0 };
    const scrapes = []; // { via, m: parse(), expect: {...} } in order
    const keepAlive = new OneConnectionAgent();
    // what the test did, as of each scrape
    const done = {
        http: 0, // HTTP requests of any kind (upgrades, REST, /up, scrapes)
        tcp: 0, // TCP connections the test opened itself
        wsIn: 0, // WebSocket messages sent (each answered before going on)
        framesIn: 0, // frames the WebSocket clients were sent, at least
        channels: new Set(), // channels with a subscriber
    };
    let held = null; // the connection holding an incomplete WebSocket message

    async function openWs() {
        done.http += 1;
        done.tcp += 1;
        const c = await wsConnect(server);
        ws.push(c);
        const { socket_id: id } = await c.established();
        done.framesIn += 1;
        const w = id.split('.')[0];
        assert.ok(w === '1' || w === '2', `socket id ${id} names one of two workers`);
        onWorker[w] += 1;
        c.worker = w;
        return c;
    }

    async function subscribe(c, channel) {
        c.sendJSON({ event: 'pusher:subscribe', data: { channel } });
        done.wsIn += 1;
        const e = await c.nextEvent('pusher_internal:subscription_succeeded');
        assert.equal(e.json.channel, channel);
        done.framesIn += 1;
        done.channels.add(channel);
    }

    async function scrape(via) {
        done.http += 1;
        if (via === 'fresh') done.tcp += 1;
        const r = await get(server, '/metrics', via === 'keep-alive' ? keepAlive : null);
        assert.equal(r.status, 200);
        scrapes.push({
            via,
            m: parse(r.text),
            expect: {
                http: done.http, tcp: done.tcp, wsIn: done.wsIn, framesIn: done.framesIn,
                channels: done.channels.size, appConns: ws.length, held: held !== null,
            },
        });
    }

    before(async () => {
        server = await startHark({
            config: {
                workers: 2,
                // nothing of the server's own during the run: no pings into a
                // half-sent frame, no idle keep-alive connection closed
                ping_interval_ms: 600000,
                http_idle_timeout_ms: 600000,
            },
        });
        sdk = rest(server);
        // startHark polled /ready until it answered: those requests count too
        const first = parse((await get(server, '/metrics')).text);
        done.http = first.values.get('hark_http_requests_total');
        done.tcp = 1;

        // subscribers on both workers, each on its own channel and on a shared one
        for (let i = 0; i < 64 && !(onWorker[1] >= 2 && onWorker[2] >= 2); i++) {
            const c = await openWs();
            await subscribe(c, `metrics-own-${i}`);
            await subscribe(c, 'metrics-shared');
        }
        assert.ok(onWorker[1] >= 2 && onWorker[2] >= 2, `connections on both workers: ${JSON.stringify(onWorker)}`);

        for (let round = 0; round < ROUNDS; round++) {
            // traffic: a REST publish, an HTTP request, now and then a new
            // subscriber, halfway an incomplete message held on one worker
            done.http += 1;
            await sdk.trigger('metrics-shared', 'tick', { round });
            done.http += 1;
            done.tcp += 1;
            assert.equal((await get(server, '/up')).status, 200);
            if (round % 4 === 0) {
                const c = await openWs();
                await subscribe(c, `metrics-new-${round}`);
            }
            if (round === ROUNDS / 2) {
                // a frame announcing 4000 bytes of which 100 are sent: that
                // worker holds an incomplete message until the connection ends
                const c = ws.find((x) => x.worker === '2');
                c.write(encodeFrame('x'.repeat(4000)).subarray(0, 100));
                held = c;
                await until(async () => {
                    const m = parse((await get(server, '/metrics', keepAlive)).text);
                    done.http += 1;
                    return m.values.get('hark_incomplete_input_bytes') > 0;
                }, 'the incomplete message to be counted', 5000).catch(() => { /* asserted per scrape */ });
            }
            await scrape('fresh');
            await scrape('keep-alive');
        }
    });

    after(async () => {
        keepAlive.destroy();
        for (const c of ws) c.destroy();
        if (server) await server.stop();
    });

    test('metrics: scraped over fresh connections and over one keep-alive connection', () => {
        assert.equal(scrapes.length, 2 * ROUNDS);
        assert.equal(keepAlive.opened, 1, 'the keep-alive scrapes shared one TCP connection');
        const counters = scrapes[0].m.counters;
        for (const name of ['hark_connections_total', 'hark_http_requests_total', 'hark_ws_messages_in_total',
            'hark_frames_out_total', 'hark_incomplete_input_shed_total']) {
            assert.ok(counters.has(name), `${name} is a counter`);
        }
        for (const name of counters) assert.match(name, /_total$/, 'counters end in _total');
    });

    test('metrics: no _total counter ever decreases between consecutive scrapes', () => {
        const backwards = [];
        for (let i = 1; i < scrapes.length; i++) {
            const prev = scrapes[i - 1].m.values;
            for (const [name, v] of scrapes[i].m.values) {
                if (!/_total(\{|$)/.test(name)) continue;
                assert.ok(prev.has(name), `${name} in every scrape`);
                if (v < prev.get(name)) {
                    backwards.push(`scrape ${i} (${scrapes[i].via}) ${name} ${prev.get(name)} -> ${v}`);
                }
            }
        }
        assert.deepEqual(backwards, [], `counters went backwards:\n${backwards.slice(0, 20).join('\n')}`);
    });

    test('metrics: hark_http_requests_total counts every request to any worker, exactly', () => {
        const wrong = scrapes
            .map((s, i) => ({ i, via: s.via, got: s.m.values.get('hark_http_requests_total'), want: s.expect.http }))
            .filter((x) => x.got !== x.want);
        assert.deepEqual(wrong, []);
    });

    test('metrics: hark_connections_total and hark_ws_messages_in_total cover all the traffic', () => {
        for (const [i, s] of scrapes.entries()) {
            const v = s.m.values;
            assert.ok(v.get('hark_connections_total') >= s.expect.tcp,
                `scrape ${i} (${s.via}): hark_connections_total ${v.get('hark_connections_total')} >= ${s.expect.tcp} opened`);
            assert.ok(v.get('hark_ws_messages_in_total') >= s.expect.wsIn,
                `scrape ${i} (${s.via}): hark_ws_messages_in_total ${v.get('hark_ws_messages_in_total')} >= ${s.expect.wsIn} sent`);
            assert.ok(v.get('hark_connections') >= s.expect.appConns + 1,
                `scrape ${i} (${s.via}): hark_connections ${v.get('hark_connections')} counts the open WebSockets and the scrape`);
        }
    });

    test('metrics: hark_frames_out_total covers the frames sent to clients on both workers', async () => {
        await until(async () => parse((await get(server, '/metrics')).text).values.get('hark_frames_out_total') >= done.framesIn,
            `hark_frames_out_total >= ${done.framesIn}`);
    });

    test('metrics: hark_app_channels and hark_app_connections count both workers', () => {
        assert.ok(onWorker[1] > 0 && onWorker[2] > 0);
        const wrong = [];
        for (const [i, s] of scrapes.entries()) {
            const v = s.m.values;
            if (v.get(CHANNELS) !== s.expect.channels) wrong.push(`scrape ${i} (${s.via}): ${CHANNELS} ${v.get(CHANNELS)}, want ${s.expect.channels}`);
            if (v.get(APP_CONNS) !== s.expect.appConns) wrong.push(`scrape ${i} (${s.via}): ${APP_CONNS} ${v.get(APP_CONNS)}, want ${s.expect.appConns}`);
        }
        assert.deepEqual(wrong, [], wrong.slice(0, 20).join('\n'));
    });

    test('metrics: hark_incomplete_input_bytes sums the workers', () => {
        assert.equal(held.worker, '2');
        const wrong = [];
        for (const [i, s] of scrapes.entries()) {
            const bytes = s.m.values.get('hark_incomplete_input_bytes');
            if (s.expect.held && !(bytes > 0)) wrong.push(`scrape ${i} (${s.via}): ${bytes} while worker 2 holds a message`);
        }
        assert.deepEqual(wrong, [], wrong.slice(0, 20).join('\n'));
    });

    test('metrics: hark_incomplete_input_bytes returns to 0 once the message is gone', async () => {
        held.destroy();
        await until(async () => parse((await get(server, '/metrics')).text).values.get('hark_incomplete_input_bytes') === 0,
            'hark_incomplete_input_bytes to be 0 (whichever worker answers)');
        // and stays 0 whichever worker answers
        for (let i = 0; i < 10; i++) {
            assert.equal(parse((await get(server, '/metrics')).text).values.get('hark_incomplete_input_bytes'), 0);
        }
    });
});
