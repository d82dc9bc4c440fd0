// Helpers for the chat suites (chat_author, chat_read, chat_unread,
// chat_typing, chat_online, chat_abuse): signed REST calls to the user
// endpoints (POST /users/{id}/read, GET /users/{id}/unread, GET /users,
// GET /users/{id}), raw clients that sign in and join conversations, the
// hark:read / hark:typing / hark:unread frames, and event ids. Built on
// harness.mjs, clients.mjs and history.mjs; nothing here imitates the server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { APPS } from './harness.mjs';
import { hmac, rawReady, restCall, uniq } from './clients.mjs';
import { assertId } from './history.mjs';

// An app for the chat suites: client events on, no client event rate limit;
// kept: private-*, presence-* (client events too on private-chat-* and
// presence-chat-*), conv-* and #server-to-user-*; any other public channel
// (e.g. plain-*) is not kept. extra is merged over it.
export function chatApp(name, extra = {}) {
    return {
        id: `${name}-id`, key: `${name}-key`, secret: `${name}-secret`,
        client_events: true, client_event_rate: 0,
        history: [
            { channels: 'private-chat-*', max_events: 1000, max_age_s: 86400, client_events: true },
            { channels: 'presence-chat-*', max_events: 1000, max_age_s: 86400, client_events: true },
            { channels: 'private-*', max_events: 1000, max_age_s: 86400 },
            { channels: 'presence-*', max_events: 1000, max_age_s: 86400 },
            { channels: 'conv-*', max_events: 1000, max_age_s: 86400 },
            { channels: '#server-to-user-*', max_events: 1000, max_age_s: 86400 },
        ],
        ...extra,
    };
}

// ---- signed REST ------------------------------------------------------------

// Any signed REST call, made here so that odd characters (quotes, spaces, #)
// survive: `sub` is the path after /apps/{id} with its segments already
// percent-encoded (the signature covers the path as sent), query values are
// signed unescaped and sent percent-encoded, as Pusher signs them.
// Resolves {status, body, text} whatever the status.
export async function signed(server, app, method, sub, { query = {}, body } = {}) {
    const path = `/apps/${app.id}${sub}`;
    const text = body === undefined ? '' : (typeof body === 'string' ? body : JSON.stringify(body));
    const q = {
        auth_key: app.key,
        auth_timestamp: String(Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        ...(text.length ? { body_md5: createHash('md5').update(text).digest('hex') } : {}),
        ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])),
    };
    const sorted = Object.keys(q).map((k) => [k.toLowerCase(), q[k]])
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => `${k}=${v}`).join('&');
    const sig = hmac(app.secret, `${method}\n${path}\n${sorted}`);
    const qs = Object.entries({ ...q, auth_signature: sig })
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const res = await fetch(`http://${server.host}:${server.port}${path}?${qs}`, {
        method,
        ...(text.length ? { body: text, headers: { 'Content-Type': 'application/json' } } : {}),
    });
    const got = await res.text();
    let parsed;
    try { parsed = JSON.parse(got); } catch { /* not JSON */ }
    return { status: res.status, body: parsed, text: got };
}

const seg = (s) => encodeURIComponent(s);

// POST /apps/{id}/users/{user}/read {"channel", "id"?}; id undefined: left out.
export function restRead(server, app, user, channel, id) {
    return signed(server, app, 'POST', `/users/${seg(user)}/read`, {
        body: id === undefined ? { channel } : { channel, id },
    });
}

// As restRead, failing unless 200 {"moved": bool}; resolves with moved.
export async function restReadOk(server, app, user, channel, id) {
    const res = await restRead(server, app, user, channel, id);
    assert.equal(res.status, 200, `read ${user} ${channel} ${id}: status ${res.status}: ${res.text}`);
    assert.deepEqual(Object.keys(res.body || {}), ['moved'], `read answer ${res.text}`);
    assert.equal(typeof res.body.moved, 'boolean', `read answer ${res.text}`);
    return res.body.moved;
}

// GET /apps/{id}/users/{user}/unread[?channels=a,b]; channels: an array
// (joined with commas), a string (sent as is) or undefined (left out).
export function restUnread(server, app, user, channels) {
    const query = channels === undefined ? {} : { channels: Array.isArray(channels) ? channels.join(',') : channels };
    return signed(server, app, 'GET', `/users/${seg(user)}/unread`, { query });
}

// As restUnread, failing unless 200 with a well-formed body; resolves with
// the "channels" object.
export async function restUnreadOk(server, app, user, channels) {
    const res = await restUnread(server, app, user, channels);
    assert.equal(res.status, 200, `unread ${user}: status ${res.status}: ${res.text}`);
    checkUnreadBody(res.body, res.text);
    return res.body.channels;
}

// {"channels":{"<ch>":{"unread":N,"last_id":id|null,"read_id":id|null}}}
export function checkUnreadBody(body, text = JSON.stringify(body)) {
    assert.ok(body && typeof body === 'object', `unread answer is not an object: ${text}`);
    assert.deepEqual(Object.keys(body), ['channels'], `unread answer ${text}`);
    assert.ok(body.channels && typeof body.channels === 'object' && !Array.isArray(body.channels), `unread answer ${text}`);
    for (const [ch, v] of Object.entries(body.channels)) {
        assert.deepEqual(Object.keys(v).sort(), ['last_id', 'read_id', 'unread'], `${ch} in ${text}`);
        assert.ok(Number.isInteger(v.unread) && v.unread >= 0, `${ch}: unread ${v.unread} in ${text}`);
        if (v.last_id !== null) assertId(v.last_id, `${ch} last_id`);
        if (v.read_id !== null) assertId(v.read_id, `${ch} read_id`);
        if (v.last_id === null) assert.equal(v.unread, 0, `${ch}: no last_id but unread ${v.unread} in ${text}`);
    }
}

// GET /apps/{id}/users with the given query.
export function restUsers(server, app, query = {}) {
    return signed(server, app, 'GET', '/users', { query });
}

// GET /apps/{id}/users/{user}.
export function restUser(server, app, user) {
    return signed(server, app, 'GET', `/users/${seg(user)}`);
}

// GET /users/{user}, failing unless 200 {id, online, connections}.
export async function userState(server, app, user) {
    const res = await restUser(server, app, user);
    assert.equal(res.status, 200, `GET /users/${user}: status ${res.status}: ${res.text}`);
    assert.deepEqual(Object.keys(res.body || {}).sort(), ['connections', 'id', 'online'], res.text);
    return res.body;
}

// Every page of GET /users with limit (undefined: the default), checking each
// (200, {users, next}, at most limit users, next a string or null, each user
// {id, connections >= 1}); between(n) runs after page n. Resolves with
// { users: every entry in page order, pages: their sizes }.
export async function allUsers(server, app, limit, between = async () => {}, maxPages = 200) {
    const users = [];
    const pages = [];
    let cursor;
    for (let n = 0; ; n++) {
        assert.ok(n < maxPages, `more than ${maxPages} pages`);
        const query = { ...(limit === undefined ? {} : { limit }), ...(cursor === undefined ? {} : { cursor }) };
        const res = await restUsers(server, app, query);
        assert.equal(res.status, 200, `page ${n} (${JSON.stringify(query)}): status ${res.status}: ${res.text}`);
        assert.deepEqual(Object.keys(res.body || {}).sort(), ['next', 'users'], `page ${n}: ${res.text}`);
        const { users: page, next } = res.body;
        assert.ok(Array.isArray(page), `page ${n}: users is not an array: ${res.text}`);
        assert.ok(page.length <= (limit ?? 100), `page ${n}: ${page.length} users, limit ${limit ?? 100}`);
        for (const u of page) {
            assert.deepEqual(Object.keys(u).sort(), ['connections', 'id'], `page ${n}: ${JSON.stringify(u)}`);
            assert.equal(typeof u.id, 'string');
            assert.ok(Number.isInteger(u.connections) && u.connections >= 1, `page ${n}: ${JSON.stringify(u)}`);
        }
        users.push(...page);
        pages.push(page.length);
        if (next === null) break;
        assert.equal(typeof next, 'string', `page ${n}: next ${JSON.stringify(next)}`);
        assert.ok(next.length > 0, `page ${n}: an empty next`);
        cursor = next;
        await between(n);
    }
    return { users, pages };
}

// {id: connections} of a users list, ids sorted.
export const byId = (users) => Object.fromEntries([...users].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((u) => [u.id, u.connections]));

// A REST trigger through the SDK (params: user_id, socket_id, …); {status, body, text}.
export function trigger(sdk, channels, event, data, params) {
    return restCall(() => sdk.trigger(channels, event, data, params));
}

// POST /events signed here (for names and user ids the SDK refuses).
export function rawTrigger(server, app, body) {
    return signed(server, app, 'POST', '/events', { body });
}

// A trigger that must answer 200 with an id for ch; resolves with the id.
export async function send(sdk, ch, event, data, params) {
    const res = await trigger(sdk, ch, event, data, params);
    assert.equal(res.status, 200, `trigger ${event} on ${ch}: status ${res.status}: ${res.text}`);
    const id = res.body && res.body.ids && res.body.ids[ch];
    assertId(id, `ids["${ch}"] of ${event}`);
    return id;
}

// ---- WebSocket ----------------------------------------------------------------

// A raw client of app, connected and signed in as user (asserted).
export async function signedInRaw(s, server, user, opts = {}) {
    const rc = await rawReady(s, server, opts);
    const e = await rc.signin({ id: user, ...(opts.userData || {}) });
    assert.equal(e.msg.event, 'pusher:signin_success', `sign-in of ${user}: ${e.text}`);
    rc.user = user;
    return rc;
}

// Subscribes rc to ch (signed; presence: as member, default rc.user),
// asserting success.
export async function join(rc, ch, member) {
    let e;
    if (ch.startsWith('presence-')) e = await rc.subscribeAuthed(ch, { user_id: member ?? rc.user, user_info: {} });
    else if (ch.startsWith('private-')) e = await rc.subscribeAuthed(ch);
    else e = await rc.subscribe(ch, { auth: '' });
    assert.equal(e.msg.event, 'pusher_internal:subscription_succeeded', `subscribe ${ch}: ${e.text}`);
    return e;
}

// A channel (name from prefix) with one signed-in connection per entry of
// users (a user named twice gets two connections), each subscribed, in
// that order: { ch, conns }.
export async function room(s, server, app, users, prefix = 'private-conv-') {
    const ch = uniq(prefix);
    const conns = [];
    for (const u of users) {
        const rc = await signedInRaw(s, server, u, { app });
        await join(rc, ch);
        conns.push(rc);
    }
    return { ch, conns };
}

// hark:read over WebSocket; id undefined: without an id ("data": {}).
export function wsRead(rc, ch, id) {
    rc.send({ event: 'hark:read', channel: ch, data: id === undefined ? {} : { id } });
}

// hark:typing over WebSocket.
export function wsTyping(rc, ch, typing) {
    rc.send({ event: 'hark:typing', channel: ch, data: { typing } });
}

// hark:unread over WebSocket: sends and resolves with the answer's parsed
// data, checking the frame ({event, data: a JSON string}, no channel).
export async function wsUnread(rc, channels, ms = 5000) {
    rc.send({ event: 'hark:unread', data: channels === undefined ? {} : { channels } });
    const e = await rc.take((m) => m.event === 'hark:unread' || m.event === 'pusher:error', ms);
    assert.equal(e.msg.event, 'hark:unread', `hark:unread answered ${e.text}`);
    assert.deepEqual(Object.keys(e.msg).sort(), ['data', 'event'], `hark:unread frame ${e.text}`);
    assert.equal(typeof e.msg.data, 'string', `hark:unread data is not a JSON string: ${e.text}`);
    checkUnreadBody(e.parsed, e.msg.data);
    return e.parsed;
}

// The next receipt (hark:read) on ch at rc, checking the exact frame;
// resolves with {user_id, id}.
export async function receipt(rc, ch, ms = 5000) {
    const e = await rc.take({ event: 'hark:read', channel: ch }, ms);
    return checkReceipt(e);
}

export function checkReceipt(e) {
    assert.deepEqual(Object.keys(e.msg).sort(), ['channel', 'data', 'event'], `receipt frame ${e.text}`);
    assert.equal(typeof e.msg.data, 'string', `receipt data is not a JSON string: ${e.text}`);
    assert.ok(e.parsed, `receipt data is not JSON: ${e.text}`);
    assert.equal(e.msg.data, JSON.stringify({ user_id: e.parsed.user_id, id: e.parsed.id }), `receipt data ${e.msg.data}`);
    return e.parsed;
}

// Every receipt rc has received on ch so far, as {user_id, id}.
export const receipts = (rc, ch) => rc.all((m) => m.event === 'hark:read' && m.channel === ch).map(checkReceipt);

// The next hark:typing on ch at rc, checking the exact frame; resolves with
// {user_id, typing}.
export async function typingEvent(rc, ch, ms = 5000) {
    const e = await rc.take({ event: 'hark:typing', channel: ch }, ms);
    return checkTyping(e);
}

export function checkTyping(e) {
    assert.deepEqual(Object.keys(e.msg).sort(), ['channel', 'data', 'event'], `typing frame ${e.text}`);
    assert.equal(typeof e.msg.data, 'string', `typing data is not a JSON string: ${e.text}`);
    assert.ok(e.parsed, `typing data is not JSON: ${e.text}`);
    assert.equal(e.msg.data, JSON.stringify({ user_id: e.parsed.user_id, typing: e.parsed.typing }), `typing data ${e.msg.data}`);
    return e.parsed;
}

// Every hark:typing rc has received on ch so far, as {user_id, typing}.
export const typings = (rc, ch) => rc.all((m) => m.event === 'hark:typing' && m.channel === ch).map(checkTyping);

// The next pusher:error at rc; asserts its message starts with prefix.
export async function rejected(rc, prefix, ms = 5000) {
    const e = await rc.take('pusher:error', ms);
    assert.equal(typeof e.msg.data, 'object', `pusher:error data ${e.text}`);
    assert.equal(typeof e.msg.data.message, 'string', `pusher:error message ${e.text}`);
    assert.ok(e.msg.data.message.startsWith(prefix), `expected a message starting ${JSON.stringify(prefix)}: ${e.text}`);
    return e.msg.data.message;
}

// ---- ids ------------------------------------------------------------------------

// "<epoch8>.<tag8hex>.<seq>" split into its parts (asserted).
export function idParts(id) {
    const m = /^([A-Za-z0-9]{8})\.([0-9a-f]{8})\.([0-9]{10,})$/.exec(id);
    assert.ok(m, `id ${JSON.stringify(id)} is not <epoch8>.<tag8hex>.<seq 10+ digits>`);
    return { epoch: m[1], tag: m[2], seq: m[3] };
}

// The id n positions after id in its channel (never issued yet when n > 0
// past the newest).
export function seqPlus(id, n = 1) {
    const { epoch, tag, seq } = idParts(id);
    const next = (BigInt(seq) + BigInt(n)).toString().padStart(seq.length, '0');
    return `${epoch}.${tag}.${next}`;
}

// The same id with another epoch.
export function otherEpoch(id) {
    const { epoch, tag, seq } = idParts(id);
    const e = epoch === 'ZZZZZZZZ' ? 'YYYYYYYY' : 'ZZZZZZZZ';
    return `${e}.${tag}.${seq}`;
}

export { APPS };
