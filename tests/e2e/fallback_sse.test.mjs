// Server-Sent Events (docs/api.md, "Server-Sent Events"): one long-lived
// GET /app/{key}/sse?channels=… per client, read here with node:http and
// the event-stream parser of lib/sse.mjs. Streams are signed as an app
// server signs them: the real pusher SDK's authorizeChannel /
// authenticateUser with the stream's token as socket id. Covers records of
// public, private and presence channels (members as a pusher-js WebSocket
// client sees them), sign-in and sendToUser, refusals (401 / 400 / 404),
// expiry while open (4009), resume with Last-Event-ID and since= on
// several channels, retention, ids equal to a WebSocket subscriber's,
// keep-alive comments, the hark_sessions{transport="sse"} gauge, non-ASCII
// data, CORS preflight, streams outliving the HTTP timeouts, SIGTERM, and
// abuse: a reader that never reads under a flood, 200 streams dropped at
// once, and the app's max_connections.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { APPS, startHark, rest, subscribed } from './lib/harness.mjs';
import { scope, rawReady, uniq, record, atLeast, sleep, until } from './lib/clients.mjs';
import { rule, range, seqOf, okBody, idsIn, publishSeq, assertId } from './lib/history.mjs';
import { httpGet } from './lib/rawtcp.mjs';
import {
    streamToken, ssePath, signedPath, openStream, streamReady, sseRequest, sessionsGauge,
} from './lib/sse.mjs';

const WAIT = 10000; // generous: sweeps every 250 ms, sanitizers
const SUCCEEDED = 'pusher_internal:subscription_succeeded';
const HEARTBEAT = 1000; // fallback_heartbeat_ms of the main server (the minimum)

// keeps the newest 5 events of a channel
const FIVE = { id: 'five-id', key: 'five-key', secret: 'five-secret', history: [rule('*', { max_events: 5, max_age_s: 3600 })] };
// keeps only kept-* channels
const SOME = { id: 'some-id', key: 'some-key', secret: 'some-secret', history: [rule('kept-*')] };

// What JSON and the event-stream framing both have to carry: multi-byte
// and astral characters, U+2028/9, a newline and a CR (records end at
// line ends), quotes, backslashes, a ZWJ sequence.
const UNICODE = 'héllo wörld — 日本語 ✓ 😀🎉 \u2028\u2029 line\nbreak\r\n\t "quoted" \\back\\ </script> 👩‍👩‍👧 Ω≈ç√∫';

const subscriptionReply = (ch) => (r) => r.msg && r.msg.channel === ch
    && (r.event === SUCCEEDED || r.event === 'pusher:subscription_error');

// Waits for ch's subscription reply on st and checks it succeeded.
async function subscribedOn(st, ch) {
    const r = await st.take(subscriptionReply(ch), WAIT);
    assert.equal(r.event, SUCCEEDED, `subscription to ${ch}: ${r.data}`);
    return r;
}

// The `tick` records of ch on st, as their seq numbers.
const seqs = (st, ch, event = 'tick') => st.events(ch, event).map((r) => seqOf(r.msg));

describe('sse: event streams', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({
            config: { apps: [...Object.values(APPS), FIVE, SOME], fallback_heartbeat_ms: HEARTBEAT },
        });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    const ready = (path, headers = {}) => streamReady(server, path, { headers, ms: WAIT, scope: s });

    test('sse: a public channel: text/event-stream starting with retry: 2000, then every Pusher message as a record (id:, event:, data: the whole message)', async () => {
        const ch = uniq('sse-pub-');
        const st = await ready(ssePath(APPS.main, [ch]));
        assert.match(st.headers['content-type'], /^text\/event-stream/);
        assert.equal(st.headers['access-control-allow-origin'], '*');
        assert.ok(st.text.startsWith('retry: 2000\n\n'), `the stream starts ${JSON.stringify(st.text.slice(0, 40))}`);
        assert.equal(st.retry, 2000);
        const est = st.all('pusher:connection_established')[0];
        assert.equal(est.msg.event, 'pusher:connection_established');
        assert.match(est.parsed.socket_id, /^\d+\.\d+$/);
        const sub = await subscribedOn(st, ch);
        assert.deepEqual(sub.msg, { event: SUCCEEDED, data: '{}', channel: ch });
        assert.deepEqual(sub.ids, [], 'a subscription_succeeded is not kept: no id');

        const pub = s.pinned(server);
        const ids = await publishSeq(pub, ch, 0, 3); // history keeps every channel by default
        for (const i of range(0, 3)) {
            const r = await st.take({ event: 'tick' }, WAIT);
            assert.deepEqual(r.msg, { event: 'tick', data: `{"seq":${i}}`, channel: ch, id: ids[i] });
            assert.deepEqual(r.lines, [`id: ${ids[i]}`, 'event: tick', `data: ${r.data}`], 'the record\'s lines');
            assert.equal(r.id, ids[i]);
        }
        assert.equal(st.lastEventId, ids[2]);
        assert.equal(st.ended, false);
    });

    test('sse: id: only for events of channels history keeps; the others have none', async () => {
        const kept = uniq('kept-');
        const other = uniq('other-');
        const a = await ready(ssePath(SOME, [kept]));
        const b = await ready(ssePath(SOME, [other]));
        await subscribedOn(a, kept);
        await subscribedOn(b, other);
        const pub = s.pinned(server, SOME);
        const body = await okBody(() => pub.trigger([kept, other], 'news', { n: 1 }));
        const ids = idsIn(body);
        assertId(ids[kept]);
        assert.equal(ids[other], undefined, `REST gave an id for a channel not kept: ${JSON.stringify(body)}`);
        const ra = await a.take('news', WAIT);
        const rb = await b.take('news', WAIT);
        assert.deepEqual(ra.ids, [ids[kept]]);
        assert.equal(ra.msg.id, ids[kept]);
        assert.deepEqual(rb.ids, [], `a record of a channel not kept has id lines: ${JSON.stringify(rb.lines)}`);
        assert.deepEqual(rb.msg, { event: 'news', data: '{"n":1}', channel: other });
        assert.equal(b.lastEventId, '');
    });

    test('sse: a private channel signed with the pusher SDK (authorizeChannel with the token) receives events', async () => {
        const ch = uniq('private-sse-');
        const { path } = signedPath(sdk, APPS.main, [ch]);
        const st = await ready(path);
        await subscribedOn(st, ch);
        const body = await okBody(() => sdk.trigger(ch, 'secret-news', { text: 'for members' }));
        const r = await st.take('secret-news', WAIT);
        assert.deepEqual(r.msg, { event: 'secret-news', data: '{"text":"for members"}', channel: ch, id: idsIn(body)[ch] });
        assert.deepEqual(r.ids, [idsIn(body)[ch]]);
    });

    test('sse: a wrong signature, or one made for another token, is a pusher:subscription_error record and no events', async () => {
        const priv = uniq('private-sse-bad-');
        const ctl = uniq('sse-ctl-');
        const token = streamToken();
        const wrong = ssePath(APPS.main, [priv, ctl], { token, auth: { [priv]: `${APPS.main.key}:${'0'.repeat(64)}` } });
        // a signature that is right for another token: a leaked auth string is no good elsewhere
        const other = sdk.authorizeChannel(streamToken(), priv).auth;
        const replayed = ssePath(APPS.main, [priv, ctl], { token, auth: { [priv]: other } });
        const streams = [];
        for (const path of [wrong, replayed]) {
            const st = await ready(path);
            const e = await st.take(subscriptionReply(priv), WAIT);
            assert.equal(e.event, 'pusher:subscription_error', e.data);
            assert.equal(e.msg.channel, priv);
            assert.equal(e.msg.data.type, 'AuthError');
            assert.equal(e.msg.data.status, 401);
            await subscribedOn(st, ctl);
            streams.push(st);
        }
        // one HTTP connection: the control is published after the secret
        const pub = s.pinned(server);
        await pub.trigger(priv, 'secret', { text: 'not for you' });
        await pub.trigger(ctl, 'control', {});
        for (const st of streams) {
            await st.take('control', WAIT);
            assert.equal(st.count('secret'), 0, 'an event of the refused channel arrived');
            assert.equal(st.events(priv).length, 1, 'only the subscription_error for the refused channel');
            assert.equal(st.ended, false, 'the stream goes on');
        }
    });

    test('sse: presence with channel_data: a pusher-js client sees member_added when the stream opens and member_removed when it closes', async () => {
        const ch = uniq('presence-sse-');
        const alice = s.pusher(server, { user: { id: 'alice', info: { name: 'Alice' } } });
        const chA = await subscribed(alice, ch, WAIT);
        const added = record(chA, 'pusher:member_added');
        const removed = record(chA, 'pusher:member_removed');
        const { path } = signedPath(sdk, APPS.main, [ch], { members: { [ch]: { user_id: 'bob', user_info: { name: 'Bob' } } } });
        const st = await ready(path);
        const sub = await subscribedOn(st, ch);
        const p = sub.parsed.presence;
        assert.deepEqual({ ...p, ids: [...p.ids].sort() }, {
            ids: ['alice', 'bob'], hash: { alice: { name: 'Alice' }, bob: { name: 'Bob' } }, count: 2,
        });
        await atLeast(added, 1, 'member_added at alice', WAIT);
        assert.deepEqual(added.map((x) => x.data), [{ id: 'bob', info: { name: 'Bob' } }]);
        assert.equal(chA.members.count, 2);
        // a later member reaches the stream as a record
        const carol = s.pusher(server, { user: { id: 'carol', info: { name: 'Carol' } } });
        await subscribed(carol, ch, WAIT);
        const ma = await st.take({ event: 'pusher_internal:member_added' }, WAIT);
        assert.equal(ma.msg.channel, ch);
        assert.deepEqual(ma.parsed, { user_id: 'carol', user_info: { name: 'Carol' } });
        await until(() => chA.members.count === 3, 'three members at alice', WAIT);
        // the stream goes (a closed tab)
        st.close();
        await until(() => removed.length >= 1, 'member_removed at alice after the stream closed', WAIT);
        assert.deepEqual(removed.map((x) => x.data), [{ id: 'bob', info: { name: 'Bob' } }]);
        assert.equal(chA.members.count, 2);
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['alice', 'carol']);
    });

    test('sse: sign-in with user_data/user_auth (authenticateUser with the token): signin_success, and sendToUser reaches the stream', async () => {
        const uid = uniq('u');
        const userCh = `#server-to-user-${uid}`;
        const { path } = signedPath(sdk, APPS.main, [userCh], { user: { id: uid, user_info: { name: 'U' } } });
        const st = await ready(path);
        const ok = await st.take((r) => r.event === 'pusher:signin_success' || r.event === 'pusher:error', WAIT);
        assert.equal(ok.event, 'pusher:signin_success', ok.data);
        assert.deepEqual(JSON.parse(ok.msg.data.user_data), { id: uid, user_info: { name: 'U' } });
        await subscribedOn(st, userCh);
        const res = await sdk.sendToUser(uid, 'notice', { text: `just for ${uid}` });
        assert.equal(res.status, 200);
        const r = await st.take('notice', WAIT);
        assert.equal(r.msg.channel, userCh);
        assert.deepEqual(r.parsed, { text: `just for ${uid}` });
        assertId(r.msg.id, 'the id of the user channel event'); // kept by default
        assert.deepEqual(r.ids, [r.msg.id]);

        // a user_auth that is not for this token: a pusher:error record, no user channel
        const uid2 = uniq('u');
        const token = streamToken();
        const foreign = sdk.authenticateUser(streamToken(), { id: uid2 });
        const bad = await ready(ssePath(APPS.main, [`#server-to-user-${uid2}`], { token, userData: foreign.user_data, userAuth: foreign.auth }));
        const err = await bad.take((x) => x.event === 'pusher:signin_success' || x.event === 'pusher:error', WAIT);
        assert.equal(err.event, 'pusher:error', err.data);
        const sub = await bad.take(subscriptionReply(`#server-to-user-${uid2}`), WAIT);
        assert.equal(sub.event, 'pusher:subscription_error', sub.data);
    });

    test('sse: a private channel without a token, or with an expired, too-far-ahead or malformed one, is refused 401 before the stream starts', async () => {
        const ch = uniq('private-sse-');
        const now = Math.floor(Date.now() / 1000);
        const cases = {
            missing: undefined,
            expired: `${now - 5}.123`,
            'now-ish past': `${now - 1}.77`,
            'over a day ahead': `${now + 86400 + 600}.123`,
            malformed: 'abc',
            'no dot': `${now + 600}`,
            'letters after the dot': `${now + 600}.12ab`,
        };
        for (const [what, token] of Object.entries(cases)) {
            const auth = token && /^\d+\.\d+$/.test(token) ? { [ch]: sdk.authorizeChannel(token, ch).auth } : {};
            const res = await sseRequest(server, 'GET', ssePath(APPS.main, [ch], { token, auth }), {}, WAIT);
            assert.equal(res.status, 401, `${what} (${token}): ${res.status} ${res.text.slice(0, 200)}`);
            assert.doesNotMatch(res.headers['content-type'] || '', /event-stream/, what);
            assert.ok(res.text.length > 0, `${what}: an empty refusal`);
        }
        // a signed-in stream needs one too
        const u = sdk.authenticateUser(streamToken(), { id: 'x' });
        const res = await sseRequest(server, 'GET', ssePath(APPS.main, [uniq('sse-')], { userData: u.user_data, userAuth: u.auth }), {}, WAIT);
        assert.equal(res.status, 401, `user_auth without a token: ${res.status} ${res.text}`);
        // nearly a day ahead is fine
        const { path } = signedPath(sdk, APPS.main, [ch], { secs: 86400 - 120 });
        const st = await ready(path);
        await subscribedOn(st, ch);
    });

    test('sse: bad channels are refused 400: none, empty, 21 names, an invalid name; 20 names are fine', async () => {
        const key = APPS.main.key;
        const bad = {
            'no channels parameter': `/app/${key}/sse`,
            'channels=': `/app/${key}/sse?channels=`,
            '21 names': ssePath(APPS.main, range(0, 21).map((i) => `sse-many-${i}`)),
            'a space': ssePath(APPS.main, ['bad name']),
            'an empty name': ssePath(APPS.main, ['a', '', 'b']),
            'a reserved #name': ssePath(APPS.main, ['#reserved']),
            'over 200 bytes': ssePath(APPS.main, ['x'.repeat(201)]),
        };
        for (const [what, path] of Object.entries(bad)) {
            const res = await sseRequest(server, 'GET', path, {}, WAIT);
            assert.equal(res.status, 400, `${what}: ${res.status} ${res.text.slice(0, 200)}`);
            assert.doesNotMatch(res.headers['content-type'] || '', /event-stream/, what);
        }
        const names = range(0, 20).map((i) => uniq(`sse-20-${i}-`));
        const st = await ready(ssePath(APPS.main, names));
        for (const ch of names) await subscribedOn(st, ch);
        assert.equal(st.count(SUCCEEDED), 20);
    });

    test('sse: an unknown app key or a disabled app is 404', async () => {
        const ch = uniq('sse-');
        for (const key of ['no-such-key', APPS.disabled.key]) {
            const res = await sseRequest(server, 'GET', ssePath({ key }, [ch]), {}, WAIT);
            assert.equal(res.status, 404, `${key}: ${res.status} ${res.text.slice(0, 200)}`);
            assert.doesNotMatch(res.headers['content-type'] || '', /event-stream/);
        }
    });

    test('sse: a token that expires while the stream is open: events until then, then a pusher:error record 4009 and the stream ends; the URL is refused after', async () => {
        const ch = uniq('private-sse-exp-');
        const expiry = Math.floor(Date.now() / 1000) + 4;
        const { path } = signedPath(sdk, APPS.main, [ch], { token: `${expiry}.4242` });
        const st = await ready(path);
        await subscribedOn(st, ch);
        await sdk.trigger(ch, 'before', { n: 1 });
        await st.take('before', WAIT);
        const err = await st.take('pusher:error', WAIT);
        const at = Date.now();
        assert.equal(err.msg.data.code, 4009, err.data);
        assert.equal(typeof err.msg.data.message, 'string');
        assert.ok(at >= expiry * 1000 - 100, `closed ${expiry * 1000 - at} ms before the expiry`);
        await st.ends(WAIT);
        assert.equal(st.endedByServer, true);
        assert.equal(st.records[st.records.length - 1], err, 'the pusher:error is the last record');
        const again = await sseRequest(server, 'GET', path, {}, WAIT);
        assert.equal(again.status, 401, `the expired URL: ${again.status} ${again.text}`);
    });

    test('sse: resume with Last-Event-ID on two channels: every missed event once, in order per channel, then hark:resumed {recovered:true} for each', async () => {
        const a = uniq('sse-ra-');
        const b = uniq('sse-rb-');
        const pub = s.pinned(server);
        const st1 = await ready(ssePath(APPS.main, [a, b]));
        await subscribedOn(st1, a);
        await subscribedOn(st1, b);
        const a0 = await publishSeq(pub, a, 0, 3);
        const b0 = await publishSeq(pub, b, 0, 2);
        await until(() => st1.events(a, 'tick').length === 3 && st1.events(b, 'tick').length === 2, 'the first events', WAIT);
        // each event record ends with the stream's position in both channels
        for (const r of [...st1.events(a, 'tick'), ...st1.events(b, 'tick')]) {
            assert.equal(r.ids.length, 2, `id lines of ${r.data}: ${JSON.stringify(r.lines)}`);
            assert.equal(r.ids[0], r.msg.id);
        }
        const last = st1.lastEventId;
        assert.deepEqual(last.split(',').sort(), [a0[2], b0[1]].sort(), `the stream's last id ${last}`);
        st1.close();

        const a1 = await publishSeq(pub, a, 3, 8);
        const b1 = await publishSeq(pub, b, 2, 6);
        const st2 = await ready(ssePath(APPS.main, [a, b]), { 'Last-Event-ID': last });
        await subscribedOn(st2, a);
        await subscribedOn(st2, b);
        const ra = await st2.take({ event: 'hark:resumed', channel: a }, WAIT);
        const rb = await st2.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.deepEqual(ra.parsed, { recovered: true, count: 5 }, ra.data);
        assert.deepEqual(rb.parsed, { recovered: true, count: 4 }, rb.data);
        assert.deepEqual(ra.msg, { event: 'hark:resumed', channel: a, data: ra.msg.data });
        assert.deepEqual(seqs(st2, a), range(3, 8));
        assert.deepEqual(seqs(st2, b), range(2, 6));
        assert.deepEqual(st2.events(a, 'tick').map((r) => r.msg.id), a1);
        assert.deepEqual(st2.events(b, 'tick').map((r) => r.msg.id), b1);
        // per channel: subscription_succeeded, the missed events, hark:resumed
        assert.deepEqual(st2.events(a).map((r) => r.event), [SUCCEEDED, ...Array(5).fill('tick'), 'hark:resumed']);
        assert.deepEqual(st2.events(b).map((r) => r.event), [SUCCEEDED, ...Array(4).fill('tick'), 'hark:resumed']);
        // then live, once
        await publishSeq(pub, a, 8, 9);
        await publishSeq(pub, b, 6, 7);
        await until(() => seqs(st2, a).includes(8) && seqs(st2, b).includes(6), 'the live events', WAIT);
        assert.deepEqual(seqs(st2, a), range(3, 9));
        assert.deepEqual(seqs(st2, b), range(2, 7));
        assert.equal(st2.count('hark:resumed'), 2);
    });

    test('sse: a channel with no event on the stream before it dropped is resumed too: its position is "now" from the start, so what it missed arrives, then hark:resumed {recovered:true}', async () => {
        const a = uniq('sse-qa-');
        const b = uniq('sse-qb-');
        const pub = s.pinned(server);
        const st1 = await ready(ssePath(APPS.main, [a, b]));
        await subscribedOn(st1, a);
        await subscribedOn(st1, b);
        // both channels have a position before any event
        await until(() => st1.lastEventId.split(',').filter(Boolean).length === 2, 'a position in both channels', WAIT);
        await publishSeq(pub, a, 0, 1);
        await until(() => st1.events(a, 'tick').length === 1, 'the first event', WAIT);
        const last = st1.lastEventId;
        assert.equal(last.split(',').length, 2, `the stream's last id ${last}`);
        st1.close();

        const a1 = await publishSeq(pub, a, 1, 2);
        const b1 = await publishSeq(pub, b, 0, 2);
        const st2 = await ready(ssePath(APPS.main, [a, b]), { 'Last-Event-ID': last });
        const ra = await st2.take({ event: 'hark:resumed', channel: a }, WAIT);
        const rb = await st2.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.deepEqual(ra.parsed, { recovered: true, count: 1 }, ra.data);
        assert.deepEqual(rb.parsed, { recovered: true, count: 2 }, rb.data);
        assert.deepEqual(st2.events(a, 'tick').map((r) => r.msg.id), a1);
        assert.deepEqual(st2.events(b, 'tick').map((r) => r.msg.id), b1);
    });

    test('sse: ids given (Last-Event-ID or since=) but none of a kept channel: hark:resumed {recovered:false} with a reason for it, nothing for a channel not kept; both live after', async () => {
        for (const given of [{ 'Last-Event-ID': 'garbage' }, { since: 'garbage' }]) {
            const kept = uniq('kept-');
            const other = uniq('other-');
            const path = ssePath(SOME, [kept, other], given.since ? { since: given.since } : {});
            const st = await ready(path, given.since ? {} : given);
            await subscribedOn(st, kept);
            await subscribedOn(st, other);
            const r = await st.take({ event: 'hark:resumed', channel: kept }, WAIT);
            assert.equal(r.parsed.recovered, false, r.data);
            assert.equal(r.parsed.count, 0, r.data);
            assert.equal(typeof r.parsed.reason, 'string', r.data);
            const pub = s.pinned(server, SOME);
            await okBody(() => pub.trigger([kept, other], 'news', { n: 1 }));
            await st.take({ event: 'news', channel: kept }, WAIT);
            await st.take({ event: 'news', channel: other }, WAIT);
            assert.equal(st.count('hark:resumed'), 1, `hark:resumed records: ${JSON.stringify(st.events(other).map((x) => x.event))}`);
            st.close();
        }
    });

    test('sse: a channel whose resume failed still gets a position, so the next reconnect resumes it', async () => {
        const a = uniq('sse-fa-');
        const b = uniq('sse-fb-');
        const pub = s.pinned(server);
        const [a0] = await publishSeq(pub, a, 0, 1);
        // ids given, none of b: b is not recovered, and positioned at "now"
        const st1 = await ready(ssePath(APPS.main, [a, b], { since: a0 }));
        const rb = await st1.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.equal(rb.parsed.recovered, false, rb.data);
        await st1.take({ event: 'hark:resumed', channel: a }, WAIT);
        await until(() => st1.lastEventId.split(',').filter(Boolean).length === 2, 'a position in both channels', WAIT);
        const last = st1.lastEventId;
        st1.close();
        const b1 = await publishSeq(pub, b, 0, 2);
        const st2 = await ready(ssePath(APPS.main, [a, b]), { 'Last-Event-ID': last });
        const again = await st2.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.deepEqual(again.parsed, { recovered: true, count: 2 }, again.data);
        assert.deepEqual(st2.events(b, 'tick').map((r) => r.msg.id), b1);
    });

    test('sse: resume with since= (ids in any order); a stream resumed that way can be resumed again from its own last id', async () => {
        const a = uniq('sse-sa-');
        const b = uniq('sse-sb-');
        const pub = s.pinned(server);
        const a0 = await publishSeq(pub, a, 0, 2);
        const b0 = await publishSeq(pub, b, 0, 2);
        await publishSeq(pub, a, 2, 6);
        await publishSeq(pub, b, 2, 4);
        // b's id first, a's second
        const st = await ready(ssePath(APPS.main, [a, b], { since: `${b0[1]},${a0[1]}` }));
        const ra = await st.take({ event: 'hark:resumed', channel: a }, WAIT);
        const rb = await st.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.deepEqual(ra.parsed, { recovered: true, count: 4 }, ra.data);
        assert.deepEqual(rb.parsed, { recovered: true, count: 2 }, rb.data);
        assert.deepEqual(seqs(st, a), range(2, 6));
        assert.deepEqual(seqs(st, b), range(2, 4));
        // the replayed records carry ids, and the stream's position moved with them
        for (const r of [...st.events(a, 'tick'), ...st.events(b, 'tick')]) {
            assertId(r.msg.id);
            assert.equal(r.ids[0], r.msg.id, `replayed record lines ${JSON.stringify(r.lines)}`);
        }
        const pos = st.lastEventId;
        const newestA = st.events(a, 'tick').at(-1).msg.id;
        const newestB = st.events(b, 'tick').at(-1).msg.id;
        assert.deepEqual(pos.split(',').sort(), [newestA, newestB].sort(), `position after the replay: ${pos}`);
        st.close();

        await publishSeq(pub, a, 6, 8);
        await publishSeq(pub, b, 4, 5);
        const again = await ready(ssePath(APPS.main, [a, b]), { 'Last-Event-ID': pos });
        const ra2 = await again.take({ event: 'hark:resumed', channel: a }, WAIT);
        const rb2 = await again.take({ event: 'hark:resumed', channel: b }, WAIT);
        assert.deepEqual(ra2.parsed, { recovered: true, count: 2 }, ra2.data);
        assert.deepEqual(rb2.parsed, { recovered: true, count: 1 }, rb2.data);
        assert.deepEqual(seqs(again, a), [6, 7]);
        assert.deepEqual(seqs(again, b), [4]);
    });

    test('sse: the position line carries the id a channel was given in since= until an event of it moves it', async () => {
        const a = uniq('sse-pa-');
        const b = uniq('sse-pb-');
        const pub = s.pinned(server);
        const [idA] = await publishSeq(pub, a, 0, 1);
        const st = await ready(ssePath(APPS.main, [a, b], { since: idA }));
        const ra = await st.take({ event: 'hark:resumed', channel: a }, WAIT);
        assert.deepEqual(ra.parsed, { recovered: true, count: 0 }, ra.data);
        await subscribedOn(st, b);
        const [idB] = await publishSeq(pub, b, 0, 1);
        const r = await st.take({ event: 'tick', channel: b }, WAIT);
        assert.equal(r.ids[0], idB);
        assert.deepEqual(r.id.split(',').sort(), [idA, idB].sort(), `position ${r.id}`);
        // so a reconnect with it misses nothing of a
        st.close();
        const more = await publishSeq(pub, a, 1, 3);
        const again = await ready(ssePath(APPS.main, [a, b]), { 'Last-Event-ID': st.lastEventId });
        const ra2 = await again.take({ event: 'hark:resumed', channel: a }, WAIT);
        assert.deepEqual(ra2.parsed, { recovered: true, count: 2 }, ra2.data);
        assert.deepEqual(again.events(a, 'tick').map((x) => x.msg.id), more);
    });

    test('sse: resume of a one-channel stream with its Last-Event-ID (the record\'s own id)', async () => {
        const ch = uniq('sse-one-');
        const pub = s.pinned(server);
        const st1 = await ready(ssePath(APPS.main, [ch]));
        await subscribedOn(st1, ch);
        const ids = await publishSeq(pub, ch, 0, 2);
        await until(() => st1.events(ch, 'tick').length === 2, 'two events', WAIT);
        assert.equal(st1.lastEventId, ids[1]);
        st1.close();
        const more = await publishSeq(pub, ch, 2, 5);
        const st2 = await ready(ssePath(APPS.main, [ch]), { 'Last-Event-ID': st1.lastEventId });
        const r = await st2.take({ event: 'hark:resumed', channel: ch }, WAIT);
        assert.deepEqual(r.parsed, { recovered: true, count: 3 });
        assert.deepEqual(st2.events(ch, 'tick').map((x) => x.msg.id), more);
        assert.equal(st2.lastEventId, more[2]);
    });

    test('sse: a reconnect that sends the URL\'s since= and a newer Last-Event-ID resumes from the header (nothing twice)', async () => {
        const ch = uniq('sse-both-');
        const pub = s.pinned(server);
        const first = await publishSeq(pub, ch, 0, 1);
        // the page opened the stream with since= its first id, as EventSource keeps the URL
        const path = ssePath(APPS.main, [ch], { since: first[0] });
        const st1 = await ready(path);
        await subscribedOn(st1, ch);
        const ids = await publishSeq(pub, ch, 1, 3);
        await until(() => st1.events(ch, 'tick').length === 2, 'two events', WAIT);
        st1.close();
        const more = await publishSeq(pub, ch, 3, 4);
        const st2 = await ready(path, { 'Last-Event-ID': ids[1] });
        const r = await st2.take({ event: 'hark:resumed', channel: ch }, WAIT);
        assert.deepEqual(r.parsed, { recovered: true, count: 1 });
        assert.deepEqual(st2.events(ch, 'tick').map((x) => x.msg.id), more);
    });

    test('sse: since beyond retention (max_events 5) → hark:resumed {recovered:false} with a reason and nothing replayed; within it → the kept ones', async () => {
        const ch = uniq('sse-five-');
        const pub = s.pinned(server, FIVE);
        const ids = await publishSeq(pub, ch, 0, 10);
        const gone = await ready(ssePath(FIVE, [ch], { since: ids[0] }));
        const r = await gone.take({ event: 'hark:resumed', channel: ch }, WAIT);
        assert.equal(r.parsed.recovered, false, r.data);
        assert.equal(r.parsed.count, 0, r.data);
        assert.ok(typeof r.parsed.reason === 'string' && r.parsed.reason.length > 0, r.data);
        assert.equal(gone.events(ch, 'tick').length, 0, 'events replayed although recovered is false');
        // it stays subscribed
        await publishSeq(pub, ch, 10, 11);
        const live = await gone.take('tick', WAIT);
        assert.equal(seqOf(live.msg), 10);

        const kept = await ready(ssePath(FIVE, [ch], { since: ids[6] }));
        const k = await kept.take({ event: 'hark:resumed', channel: ch }, WAIT);
        assert.deepEqual(k.parsed, { recovered: true, count: 4 }, k.data);
        assert.deepEqual(seqs(kept, ch), [7, 8, 9, 10]);
    });

    test('sse: records carry the same ids and the same message as a WebSocket subscriber gets', async () => {
        const a = uniq('sse-ws-a-');
        const b = uniq('sse-ws-b-');
        const ws = await rawReady(s, server);
        for (const ch of [a, b]) assert.equal((await ws.subscribe(ch, { auth: '' })).msg.event, SUCCEEDED);
        const one = await ready(ssePath(APPS.main, [a]));
        const two = await ready(ssePath(APPS.main, [a, b]));
        await subscribedOn(one, a);
        await subscribedOn(two, a);
        await subscribedOn(two, b);
        const pub = s.pinned(server);
        const ia = await publishSeq(pub, a, 0, 5);
        const ib = await publishSeq(pub, b, 0, 3);
        await until(() => ws.events(a, 'tick').length === 5 && ws.events(b, 'tick').length === 3, 'WebSocket events', WAIT);
        await until(() => one.events(a, 'tick').length === 5, 'one-channel stream events', WAIT);
        await until(() => two.events(a, 'tick').length === 5 && two.events(b, 'tick').length === 3, 'two-channel stream events', WAIT);
        const wsA = ws.events(a, 'tick');
        const wsB = ws.events(b, 'tick');
        assert.deepEqual(wsA.map((e) => e.msg.id), ia);
        assert.deepEqual(one.events(a, 'tick').map((r) => r.ids[0]), ia);
        assert.deepEqual(two.events(a, 'tick').map((r) => r.ids[0]), ia);
        assert.deepEqual(two.events(b, 'tick').map((r) => r.ids[0]), ib);
        assert.deepEqual(wsB.map((e) => e.msg.id), ib);
        // data: is the WebSocket text frame, byte for byte
        assert.deepEqual(one.events(a, 'tick').map((r) => r.data), wsA.map((e) => e.text));
        assert.deepEqual(two.events(a, 'tick').map((r) => r.data), wsA.map((e) => e.text));
        assert.deepEqual(two.events(b, 'tick').map((r) => r.data), wsB.map((e) => e.text));
    });

    test('sse: a quiet stream gets ": keep-alive" comments every fallback_heartbeat_ms; a busy one gets none', async () => {
        const quiet = await ready(ssePath(APPS.main, [uniq('sse-quiet-')]));
        const busyCh = uniq('sse-busy-');
        const busy = await ready(ssePath(APPS.main, [busyCh]));
        await subscribedOn(busy, busyCh);
        const pub = s.pinned(server);
        const from = Date.now();
        let n = 0;
        while (Date.now() - from < 3 * HEARTBEAT) {
            await pub.trigger(busyCh, 'tick', { seq: n++ });
            await sleep(HEARTBEAT / 5);
        }
        const to = Date.now();
        await until(() => busy.events(busyCh, 'tick').length === n, 'the busy events', WAIT);
        await until(() => quiet.comments.length >= 2, 'two keep-alives on the quiet stream', WAIT);
        for (const c of quiet.comments) assert.equal(c.text, ' keep-alive');
        const gap = quiet.comments[1].at - quiet.comments[0].at;
        assert.ok(gap >= HEARTBEAT - 150, `keep-alives ${gap} ms apart`);
        assert.ok(quiet.text.includes('\n: keep-alive\n\n'), 'the comment is a line of its own, followed by a blank line');
        const during = busy.comments.filter((c) => c.at > from + 200 && c.at < to - 200);
        assert.equal(during.length, 0, `keep-alives on a stream with an event every ${HEARTBEAT / 5} ms`);
        assert.equal(quiet.records.length, 2, 'the keep-alives dispatched no records');
    });

    test('sse: /metrics hark_sessions{transport="sse"} counts open streams and drops as they close', async () => {
        await until(async () => (await sessionsGauge(server)) === 0, 'no streams open', WAIT);
        const all0 = await sessionsGauge(server, 'all');
        const streams = [];
        for (let i = 0; i < 3; i++) streams.push(await ready(ssePath(APPS.main, [uniq('sse-m-')])));
        assert.equal(await sessionsGauge(server), 3);
        assert.equal(await sessionsGauge(server, 'all'), all0 + 3);
        streams[0].close();
        streams[1].close();
        await until(async () => (await sessionsGauge(server)) === 1, 'the gauge at 1', WAIT);
        streams[2].close();
        await until(async () => (await sessionsGauge(server)) === 0, 'the gauge at 0', WAIT);
        assert.equal(await sessionsGauge(server, 'all'), all0);
    });

    test('sse: non-ASCII data arrives intact, as UTF-8, equal to the WebSocket message', async () => {
        const ch = uniq('sse-utf8-');
        const ws = await rawReady(s, server);
        assert.equal((await ws.subscribe(ch, { auth: '' })).msg.event, SUCCEEDED);
        const st = await ready(ssePath(APPS.main, [ch]));
        await subscribedOn(st, ch);
        await sdk.trigger(ch, 'text', { text: UNICODE });
        await sdk.trigger(ch, 'plain', UNICODE);
        const r1 = await st.take('text', WAIT);
        const r2 = await st.take('plain', WAIT);
        assert.deepEqual(r1.parsed, { text: UNICODE });
        assert.equal(r2.msg.data, UNICODE);
        const w1 = await ws.take('text');
        const w2 = await ws.take('plain');
        assert.equal(r1.data, w1.text);
        assert.equal(r2.data, w2.text);
        assert.ok(!st.text.includes('\uFFFD'), 'a replacement character: bytes were cut or not UTF-8');
    });

    test('sse: event: is the event name itself, also for names JSON escapes', async () => {
        const ch = uniq('sse-names-');
        const st = await ready(ssePath(APPS.main, [ch]));
        await subscribedOn(st, ch);
        const names = ['café-☕', 'say "hi"', 'back\\slash'];
        for (const name of names) await sdk.trigger(ch, name, { name });
        await until(() => st.events(ch).length === names.length + 1, 'the named events', WAIT);
        const got = st.events(ch).slice(1);
        assert.deepEqual(got.map((r) => r.msg.event), names);
        assert.deepEqual(got.map((r) => r.event), names, `event: lines ${JSON.stringify(got.map((r) => r.lines[1]))}`);
    });

    test('sse: OPTIONS preflight is 204 with Access-Control-Allow-Origin: *; other methods are not streams', async () => {
        const path = ssePath(APPS.main, [uniq('sse-')]);
        const res = await sseRequest(server, 'OPTIONS', path, {
            Origin: 'http://example.test', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'last-event-id',
        }, WAIT);
        assert.equal(res.status, 204);
        assert.equal(res.headers['access-control-allow-origin'], '*');
        assert.equal(res.text, '');
        const post = await sseRequest(server, 'POST', path, {}, WAIT);
        assert.notEqual(post.status, 200);
        assert.doesNotMatch(post.headers['content-type'] || '', /event-stream/);
    });
});

describe('sse: long-lived streams and the HTTP timeouts', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({
            config: { http_header_timeout_ms: 1500, http_idle_timeout_ms: 1500, http_body_timeout_ms: 1500 },
        });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('sse: a stream is one long-lived GET: it outlives the HTTP header, body and idle timeouts, quiet or not', async () => {
        const ch = uniq('sse-long-');
        const quiet = await streamReady(server, ssePath(APPS.main, [ch]), { ms: WAIT, scope: s });
        await subscribedOn(quiet, ch);
        await sleep(4500); // three times every HTTP timeout of this server
        await rest(server).trigger(ch, 'late', { n: 1 });
        const r = await quiet.take('late', WAIT);
        assert.deepEqual(r.parsed, { n: 1 });
        assert.equal(quiet.ended, false, 'the stream ended');
        assert.doesNotMatch(quiet.text, /HTTP\/1\.1/, `an HTTP response inside the stream: ${quiet.text.slice(-300)}`);
    });
});

describe('sse: shutdown', () => {
    test('sse: SIGTERM ends open streams with a pusher:error record 4200 and hark exits cleanly', async () => {
        const server = await startHark({ config: { shutdown_grace_ms: 500 } });
        const s = scope();
        try {
            const sdk = rest(server);
            const pres = uniq('presence-sse-bye-');
            const pub = uniq('sse-bye-');
            const streams = [];
            for (const i of range(0, 4)) {
                const path = i % 2 ? signedPath(sdk, APPS.main, [pres, pub], { members: { [pres]: { user_id: `u${i}`, user_info: {} } } }).path
                    : ssePath(APPS.main, [pub]);
                const st = await streamReady(server, path, { ms: WAIT, scope: s });
                await subscribedOn(st, pub);
                streams.push(st);
            }
            server.proc.kill('SIGTERM');
            for (const st of streams) {
                const e = await st.take('pusher:error', WAIT);
                assert.equal(e.msg.data.code, 4200, e.data);
                await st.ends(WAIT);
                assert.equal(st.endedByServer, true);
            }
        } finally {
            await s.close();
            await server.stop(); // fails on a crash, a non-zero exit or a sanitizer report
        }
    });
});

describe('sse: abuse', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark({ config: { max_output_bytes: 65536 } });
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    const ready = (path) => streamReady(server, path, { ms: WAIT, scope: s });

    test('sse: a stream that is never read while events flood its channel is closed; the server stays healthy and a reading stream gets every event', async () => {
        await until(async () => (await sessionsGauge(server)) === 0, 'no streams open', WAIT);
        const ch = uniq('sse-flood-');
        const reader = await ready(ssePath(APPS.main, [ch]));
        await subscribedOn(reader, ch);
        // the slow one: writes its GET and never reads a byte
        const slow = net.connect({ host: server.host, port: server.port });
        s.add(() => slow.destroy());
        slow.pause();
        let slowBytes = 0;
        let slowEnded = false;
        slow.on('error', () => { /* reset: the end */ });
        slow.on('close', () => { slowEnded = true; });
        await new Promise((r) => slow.once('connect', r));
        slow.write(`GET ${ssePath(APPS.main, [ch])} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
        await until(async () => (await sessionsGauge(server)) === 2, 'both streams open', WAIT);

        const pub = s.pinned(server);
        const pad = 'x'.repeat(8000);
        let n = 0;
        let slowClosed = false;
        const cap = 6000; // 48 MB: far more than any socket buffers
        while (n < cap) {
            await pub.trigger(ch, 'flood', { seq: n, pad });
            n += 1;
            if (n % 25 === 0 && (await sessionsGauge(server)) === 1) { slowClosed = true; break; }
        }
        assert.ok(slowClosed, `the stream that never reads is still open after ${n} events of 8 kB`);
        await pub.trigger(ch, 'final', {});
        await reader.take('final', 30000);
        const got = reader.events(ch, 'flood').map((r) => seqOf(r.msg));
        assert.equal(got.length, n, `the reading stream got ${got.length} of ${n}`);
        assert.deepEqual(got, range(0, n));
        assert.equal(reader.ended, false);
        // healthy: /ready, and a new stream gets events
        assert.equal((await httpGet(server, '/ready')).status, 200);
        const fresh = await ready(ssePath(APPS.main, [ch]));
        await subscribedOn(fresh, ch);
        await pub.trigger(ch, 'after', {});
        await fresh.take('after', WAIT);
        await reader.take('after', WAIT);
        // the slow connection is ended by the server: once read it ends,
        // short of the flood
        slow.on('data', (d) => { slowBytes += d.length; });
        slow.resume();
        await until(() => slowEnded, 'the slow connection to end', WAIT);
        assert.ok(slowBytes < n * 8000, `the slow stream got ${slowBytes} bytes: everything`);
    });

    test('sse: 200 streams (public and presence) opened and dropped at once leave hark_sessions{transport="sse"} at 0 and no members behind', async () => {
        await until(async () => (await sessionsGauge(server)) === 0, 'no streams open', WAIT);
        const pubCh = uniq('sse-many-');
        const presCh = uniq('presence-sse-many-');
        const watcher = s.pusher(server, { user: { id: 'watcher', info: {} } });
        const chW = await subscribed(watcher, presCh, WAIT);
        const all0 = await sessionsGauge(server, 'all'); // the watcher's among them
        // 99 presence members and the watcher: max_presence_members is 100
        const presence = (i) => i % 2 === 1 && i < 199;
        const streams = range(0, 200).map((i) => Object.assign(openStream(server, presence(i)
            ? signedPath(sdk, APPS.main, [presCh], { members: { [presCh]: { user_id: `m${i}`, user_info: { i } } } }).path
            : ssePath(APPS.main, [pubCh])), { channel: presence(i) ? presCh : pubCh }));
        s.add(() => streams.forEach((st) => st.close()));
        await until(() => streams.every((st) => st.ended || st.records.some(subscriptionReply(st.channel))), 'all 200 subscription replies', 30000);
        for (const st of streams) await subscribedOn(st, st.channel);
        assert.equal(await sessionsGauge(server), 200);
        await until(() => chW.members.count === 100, `100 members at the watcher (${chW.members.count})`, WAIT);
        for (const st of streams) st.close();
        await until(async () => (await sessionsGauge(server)) === 0, 'the gauge back at 0', WAIT);
        assert.equal(await sessionsGauge(server, 'all'), all0);
        await until(() => chW.members.count === 1, `only the watcher left (${chW.members.count})`, WAIT);
        // and 100 more dropped before their answer could even be read
        const early = range(0, 100).map(() => openStream(server, ssePath(APPS.main, [pubCh])));
        await sleep(5);
        for (const st of early) st.close();
        await until(async () => (await sessionsGauge(server)) === 0, 'the gauge back at 0 after the early drops', WAIT);
        assert.equal(await sessionsGauge(server, 'all'), all0);
        const users = await (await sdk.get({ path: `/channels/${presCh}/users` })).json();
        assert.deepEqual(users.users.map((u) => u.id), ['watcher']);
        const st = await ready(ssePath(APPS.main, [pubCh]));
        await subscribedOn(st, pubCh);
    });

    test('sse: the app\'s max_connections counts streams: over a limit of 1 a stream gets a pusher:error record 4004 and ends, and so does a WebSocket', async () => {
        const tiny = APPS.tiny;
        const ch = uniq('sse-tiny-');
        const first = await ready(ssePath(tiny, [ch]));
        await subscribedOn(first, ch);
        const second = openStream(server, ssePath(tiny, [ch]));
        s.add(() => second.close());
        const err = await second.take('pusher:error', WAIT);
        assert.equal(err.msg.data.code, 4004, err.data);
        await second.ends(WAIT);
        assert.equal(second.count('pusher:connection_established'), 0);
        assert.equal(second.count(SUCCEEDED), 0);
        const ws = s.raw(server, { app: tiny });
        const wsErr = await ws.take('pusher:error', WAIT);
        assert.equal(wsErr.msg.data.code, 4004, wsErr.text);
        // the first one is unaffected
        await rest(server, tiny).trigger(ch, 'still', {});
        await first.take('still', WAIT);
        // its place is free once it closes
        first.close();
        await until(async () => {
            const st = openStream(server, ssePath(tiny, [ch]));
            s.add(() => st.close());
            const r = await st.take((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error', WAIT);
            if (r.event === 'pusher:connection_established') return true;
            st.close();
            return false;
        }, 'a stream of the tiny app after the first closed', WAIT);
    });
});
