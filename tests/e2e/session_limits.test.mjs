// Per-connection limits and the text of errors that quote client input
// (docs/api.md "WebSocket"): max_channels_per_connection refuses a new
// channel past the app's limit with pusher:subscription_error LimitReached
// and keeps the connection; every pusher:error message and close reason is
// valid UTF-8 even when it quotes raw request bytes or long multibyte names;
// decode errors say their prefix once.
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected, subscribed, nextEvent } from './lib/harness.mjs';
import { scope, rawReady, uniq, channelAuth } from './lib/clients.mjs';
import { wsConnect, OP } from './lib/rawtcp.mjs';

const LIMITED = {
    id: 'limit3-id', key: 'limit3-key', secret: 'limit3-secret', client_events: true,
    max_channels_per_connection: 3,
};
const LONG_NAMES = {
    id: 'longnames-id', key: 'longnames-key', secret: 'longnames-secret', client_events: true,
    max_event_name_length: 300,
};
const limitText = (n) => `Too many channels on this connection: the limit is ${n}`;
const q = 'protocol=7&client=js&version=8.6.0&flash=false';

// Throws unless bytes are well-formed UTF-8 (as a browser's WebSocket checks
// text frames and close reasons); returns the text.
function strictUtf8(bytes, what) {
    try {
        return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
        assert.fail(`${what} is not valid UTF-8: ${Buffer.from(bytes).toString('hex')}`);
    }
}

// wsConnect writes the request as latin1: this string carries text's UTF-8
// bytes one per character, so the path holds real UTF-8.
const utf8Bytes = (text) => Buffer.from(text, 'utf8').toString('latin1');

// The next text message on a raw TCP connection, checked to be valid UTF-8
// and parsed.
async function nextJson(conn, what) {
    const m = await conn.nextMessage();
    assert.ok(m, `${what}: the connection ended first`);
    assert.equal(m.opcode, OP.TEXT, `${what}: got opcode ${m.opcode} (close ${m.code} ${m.reason})`);
    return JSON.parse(strictUtf8(m.payload, what));
}

function expectLimitReached(e, channel, limit) {
    assert.equal(e.msg.event, 'pusher:subscription_error', `for ${channel}: ${e.text}`);
    assert.equal(e.msg.channel, channel);
    assert.deepEqual(e.msg.data, { type: 'LimitReached', error: limitText(limit), status: 400 });
}

describe('max_channels_per_connection (app limit 3)', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [APPS.main, LIMITED], shutdown_grace_ms: 300 } });
        sdk = rest(server, LIMITED);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    it('refuses a 4th channel with LimitReached, keeps the connection and the other subscriptions', async () => {
        const r = await rawReady(s, server, { app: LIMITED });
        const chs = [uniq('a-'), uniq('b-'), uniq('c-')];
        for (const ch of chs) {
            assert.equal((await r.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded', ch);
        }
        const extra = uniq('d-');
        expectLimitReached(await r.subscribe(extra), extra, 3);
        // a private channel past the limit is refused the same way, even correctly signed
        const priv = uniq('private-');
        expectLimitReached(await r.subscribeAuthed(priv), priv, 3);

        await r.ping();
        assert.equal(r.closeInfo, null, 'the connection stays open');
        const pub = s.pinned(server, LIMITED); // one HTTP connection: one worker, in order
        for (const ch of chs) {
            await pub.trigger(ch, 'still-here', { ch });
            assert.deepEqual(JSON.parse((await r.take({ event: 'still-here', channel: ch })).msg.data), { ch });
        }
        await pub.trigger(extra, 'not-subscribed', {});
        await pub.trigger(chs[0], 'marker', {}); // later, same HTTP connection
        await r.take({ event: 'marker', channel: chs[0] });
        assert.equal(r.count({ event: 'not-subscribed' }), 0, 'nothing arrives on the refused channel');
    });

    it('does not count subscribing again to a channel already held', async () => {
        const r = await rawReady(s, server, { app: LIMITED });
        const chs = [uniq('a-'), uniq('b-'), uniq('c-')];
        for (const ch of chs) await r.subscribe(ch);
        for (const ch of chs) {
            const again = await r.subscribe(ch);
            assert.equal(again.msg.event, 'pusher_internal:subscription_succeeded', `re-subscribe ${ch}: ${again.text}`);
        }
        const extra = uniq('d-');
        expectLimitReached(await r.subscribe(extra), extra, 3);
        // still exactly one delivery per held channel
        const pub = s.pinned(server, LIMITED);
        await pub.trigger(chs[1], 'once', {});
        await r.take({ event: 'once', channel: chs[1] });
        await pub.trigger(chs[1], 'marker', {}); // same channel and HTTP connection, later
        await r.take({ event: 'marker', channel: chs[1] });
        assert.equal(r.count({ event: 'once' }), 1);
    });

    it('frees a slot on unsubscribe: the next new channel is accepted', async () => {
        const r = await rawReady(s, server, { app: LIMITED });
        const chs = [uniq('a-'), uniq('b-'), uniq('c-')];
        for (const ch of chs) await r.subscribe(ch);
        const d = uniq('d-');
        expectLimitReached(await r.subscribe(d), d, 3);
        r.send({ event: 'pusher:unsubscribe', data: { channel: chs[1] } });
        assert.equal((await r.subscribe(d)).msg.event, 'pusher_internal:subscription_succeeded');
        const e = uniq('e-');
        expectLimitReached(await r.subscribe(e), e, 3);
        // unsubscribing from a channel not held frees nothing
        r.send({ event: 'pusher:unsubscribe', data: { channel: uniq('never-') } });
        expectLimitReached(await r.subscribe(e), e, 3);
    });

    it('counts per connection: another connection has its own 3, on the same channels too', async () => {
        const a = await rawReady(s, server, { app: LIMITED });
        const b = await rawReady(s, server, { app: LIMITED });
        const chs = [uniq('a-'), uniq('b-'), uniq('c-')];
        for (const ch of chs) await a.subscribe(ch);
        for (const ch of chs) {
            assert.equal((await b.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        }
        const extra = uniq('d-');
        expectLimitReached(await b.subscribe(extra), extra, 3);
        // the main app has the default limit: 4 channels are fine there
        const m = await rawReady(s, server);
        for (const ch of [...chs, extra]) {
            assert.equal((await m.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');
        }
    });

    it('pusher-js sees pusher:subscription_error on the channel past the limit; the others keep working', async () => {
        const c = s.pusher(server, { app: LIMITED });
        await connected(c);
        const names = [uniq('a-'), uniq('private-'), uniq('c-')];
        const held = [];
        for (const n of names) held.push(await subscribed(c, n));
        const extraName = uniq('d-');
        const extra = c.subscribe(extraName);
        const { data } = await nextEvent(extra, 'pusher:subscription_error');
        assert.deepEqual(data, { type: 'LimitReached', error: limitText(3), status: 400 });
        assert.equal(extra.subscribed, false);
        assert.equal(c.connection.state, 'connected');
        for (const ch of held) {
            const got = nextEvent(ch, 'ping-after-limit');
            await sdk.trigger(ch.name, 'ping-after-limit', { n: ch.name });
            assert.deepEqual((await got).data, { n: ch.name });
        }
        // after unsubscribing one, pusher-js can subscribe to another channel
        c.unsubscribe(names[0]);
        const next = await subscribed(c, uniq('e-'));
        assert.equal(next.subscribed, true);
    });
});

describe('max_channels_per_connection default, and UTF-8 in errors', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({
            config: { apps: [...Object.values(APPS), LONG_NAMES], shutdown_grace_ms: 300 },
        });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    it('applies the default limit of 100 when the app does not set it', async () => {
        const r = await rawReady(s, server); // APPS.main: no max_channels_per_connection
        const base = uniq('many-');
        for (let i = 0; i < 100; i++) {
            r.send({ event: 'pusher:subscribe', data: { channel: `${base}-${i}` } });
        }
        for (let i = 0; i < 100; i++) {
            const e = await r.take((m) => m.channel === `${base}-${i}`);
            assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded', `channel ${i}: ${e.text}`);
        }
        expectLimitReached(await r.subscribe(`${base}-100`), `${base}-100`, 100);
        assert.equal((await r.subscribe(`${base}-7`)).msg.event, 'pusher_internal:subscription_succeeded',
            're-subscribing at the limit is fine');
        await r.ping();
    });

    it('refuses an upgrade to /app/<raw 0xFF 0xFE> with 4001: message and close reason are valid UTF-8', async () => {
        // latin1 makes the request carry the raw bytes ff fe in the path
        const conn = await wsConnect(server, `/app/\xff\xfe?${q}`);
        try {
            const m = await nextJson(conn, 'the pusher:error frame');
            assert.equal(m.event, 'pusher:error');
            assert.equal(m.data.code, 4001);
            assert.equal(m.data.message, 'App key \ufffd\ufffd does not exist');
            const close = await conn.closeFrame();
            assert.ok(close, 'a close frame');
            assert.equal(close.code, 4001);
            const reason = strictUtf8(close.payload.subarray(2), 'the close reason');
            assert.equal(reason, 'App key \ufffd\ufffd does not exist');
        } finally {
            conn.destroy();
        }
    });

    it('quotes a long unknown key as at most 64 bytes, cut between characters, in both message and reason', async () => {
        // [path bytes, what the message shows]; byte 64 falls inside a character
        const cases = [
            [utf8Bytes('a' + 'é'.repeat(50)), 'a' + 'é'.repeat(31)],
            [utf8Bytes('ab' + '€'.repeat(30)), 'ab' + '€'.repeat(20)],
            [utf8Bytes('a' + '😀'.repeat(20)), 'a' + '😀'.repeat(15)],
            ['\xff'.repeat(40), '\ufffd'.repeat(21)], // raw bytes: U+FFFD, 3 bytes each
        ];
        for (const [key, shown] of cases) {
            const conn = await wsConnect(server, `/app/${key}?${q}`);
            try {
                const m = await nextJson(conn, `the pusher:error for ${shown}`);
                assert.equal(m.event, 'pusher:error');
                assert.equal(m.data.code, 4001);
                assert.equal(m.data.message, `App key ${shown} does not exist`);
                const close = await conn.closeFrame();
                assert.ok(close, 'a close frame');
                assert.equal(close.code, 4001);
                assert.equal(strictUtf8(close.payload.subarray(2), 'the close reason'), m.data.message);
            } finally {
                conn.destroy();
            }
        }
    });

    it('quotes a long multibyte unknown event name cut between characters (valid UTF-8, connection stays)', async () => {
        const conn = await wsConnect(server);
        try {
            await conn.established();
            // each crosses the 100-byte quoting limit inside a character
            for (const [event, shown] of [
                ['x' + 'é'.repeat(60), 'x' + 'é'.repeat(49)],
                ['xx' + '€'.repeat(40), 'xx' + '€'.repeat(32)],
                ['x' + '😀'.repeat(30), 'x' + '😀'.repeat(24)],
            ]) {
                conn.sendJSON({ event, data: {} });
                const m = await nextJson(conn, `the error for ${event}`);
                assert.equal(m.event, 'pusher:error');
                assert.equal(m.data.code, null);
                assert.equal(m.data.message, `Unknown event: ${shown}`);
            }
            conn.sendJSON({ event: 'pusher:ping', data: {} });
            assert.equal((await nextJson(conn, 'the pong')).event, 'pusher:pong');
        } finally {
            conn.destroy();
        }
    });

    it('relays a client event whose multibyte name is longer than 255 bytes whole (valid UTF-8)', async () => {
        const sender = await wsConnect(server, `/app/${LONG_NAMES.key}?${q}`);
        const receiver = await wsConnect(server, `/app/${LONG_NAMES.key}?${q}`);
        try {
            const ch = uniq('private-');
            for (const conn of [sender, receiver]) {
                const { socket_id: sid } = await conn.established();
                conn.sendJSON({ event: 'pusher:subscribe', data: { channel: ch, auth: channelAuth(LONG_NAMES, sid, ch) } });
                assert.equal((await nextJson(conn, 'subscribe')).event, 'pusher_internal:subscription_succeeded');
            }
            // 8 + 2 * 140 = 288 bytes (limit 300): byte 255 falls inside an é
            const event = 'client-x' + 'é'.repeat(140);
            sender.sendJSON({ event, channel: ch, data: { hi: 1 } });
            const m = await nextJson(receiver, 'the relayed client event');
            assert.equal(m.event, event);
            assert.equal(m.channel, ch);
            assert.deepEqual(m.data, { hi: 1 });
        } finally {
            sender.destroy();
            receiver.destroy();
        }
    });

    it('echoes a long multibyte channel name in its subscription_error exactly (valid UTF-8)', async () => {
        const conn = await wsConnect(server);
        try {
            await conn.established();
            for (const channel of ['é'.repeat(150), 'x' + '😀'.repeat(60), '€'.repeat(70)]) {
                conn.sendJSON({ event: 'pusher:subscribe', data: { channel } });
                const m = await nextJson(conn, `the error for ${channel}`);
                assert.equal(m.event, 'pusher:subscription_error');
                assert.equal(m.channel, channel);
                assert.equal(m.data.type, 'InvalidChannel');
                assert.equal(m.data.status, 400);
            }
        } finally {
            conn.destroy();
        }
    });

    it('says each error prefix once ("Invalid JSON: …", "Invalid message: …")', async () => {
        const r = await rawReady(s, server);
        const cases = [
            ['[]', /^Invalid message: not a JSON object$/],
            ['{"data":{}}', /^Invalid message: missing "event"$/],
            ['{"event":5}', /^Invalid message: "event" must be a string$/],
            ['{"event":"client-a","channel":1}', /^Invalid message: "channel" must be a string$/],
            ['not json', /^Invalid JSON: \S/],
            ['{"event":"pusher:ping","data":', /^Invalid JSON: \S/],
        ];
        for (const [text, want] of cases) {
            r.send(text);
            const e = await r.take('pusher:error');
            assert.equal(e.msg.data.code, null);
            assert.match(e.msg.data.message, want, `for ${text}`);
            assert.doesNotMatch(e.msg.data.message, /Invalid (message|JSON): Invalid/, `for ${text}`);
        }
        await r.ping();
    });
});
