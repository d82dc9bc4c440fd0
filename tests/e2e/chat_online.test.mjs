// Who is online: GET /apps/{id}/users lists the users signed in right now
// (pusher:signin) with their connection counts, {"users":[{"id",
// "connections"}],"next": cursor | null}, paged with limit (1-1000, default
// 100) and cursor=<next>; GET /apps/{id}/users/{user} answers {"id",
// "online", "connections"} (an unknown user: offline, 0). Exact across
// workers. Each test uses an app of its own so that no other test's users
// are listed.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startHark, rest, connected } from './lib/harness.mjs';
import { scope, rawReady, uniq, signedIn, pinnedRest, restCall, until } from './lib/clients.mjs';
import { assertError } from './lib/history.mjs';
import {
    chatApp, restUsers, restUser, userState, allUsers, byId, signedInRaw, join,
} from './lib/chat.mjs';

const APP_COUNT = 9;
const apps = Array.from({ length: APP_COUNT }, (_, i) => chatApp(`online${i}`));
let nextApp = 0;
const freshApp = () => {
    assert.ok(nextApp < APP_COUNT, 'out of apps: raise APP_COUNT');
    return apps[nextApp++];
};

// The GET /users list of app (one page with the default limit), as {id: connections}.
async function onlineNow(server, app) {
    const res = await restUsers(server, app);
    assert.equal(res.status, 200, `GET /users: ${res.status}: ${res.text}`);
    assert.equal(res.body.next, null, `one page expected: ${res.text}`);
    return byId(res.body.users);
}

describe('chat: who is online', () => {
    let server;
    let s;
    before(async () => {
        server = await startHark({ config: { apps: [...Object.values(APPS), ...apps] } });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('online: exactly the signed-in users with their connection counts; anonymous and presence-only connections are not users', async () => {
        const app = freshApp();
        const u1 = uniq('u1-');
        const u2 = uniq('u2-');
        assert.deepEqual(await onlineNow(server, app), {}, 'users before anyone connected');
        const a = await signedInRaw(s, server, u1, { app });
        const b = await signedInRaw(s, server, u1, { app });
        // one connection on three channels is still one connection
        await join(b, uniq('private-chat-'));
        await join(b, uniq('presence-chat-'));
        await join(b, `#server-to-user-${u1}`);
        const c = s.pusher(server, { app, user: { id: u1, info: {} } });
        await connected(c);
        c.signin();
        await signedIn(c);
        const d = await signedInRaw(s, server, u2, { app });
        // not signed in: anonymous, and a presence member that never signed in
        await rawReady(s, server, { app });
        const ghost = await rawReady(s, server, { app });
        const g = await ghost.subscribeAuthed(uniq('presence-chat-'), { user_id: 'ghost' });
        assert.equal(g.msg.event, 'pusher_internal:subscription_succeeded', g.text);
        // a user signed in on another app
        await signedInRaw(s, server, uniq('elsewhere-'), { app: apps[APP_COUNT - 1] });

        assert.deepEqual(await onlineNow(server, app), { [u1]: 3, [u2]: 1 });
        assert.deepEqual(await userState(server, app, u1), { id: u1, online: true, connections: 3 });
        assert.deepEqual(await userState(server, app, u2), { id: u2, online: true, connections: 1 });
        assert.deepEqual(await userState(server, app, 'ghost'), { id: 'ghost', online: false, connections: 0 });
        const nobody = uniq('nobody-');
        assert.deepEqual(await userState(server, app, nobody), { id: nobody, online: false, connections: 0 });
        // u1 on another app is unknown there
        assert.deepEqual(await userState(server, apps[APP_COUNT - 1], u1), { id: u1, online: false, connections: 0 });

        // one of u1's connections drops, then another signs out by leaving
        a.terminate();
        await until(async () => (await userState(server, app, u1)).connections === 2, 'u1 at 2 connections');
        assert.deepEqual(await onlineNow(server, app), { [u1]: 2, [u2]: 1 });
        c.disconnect();
        b.close();
        await until(async () => !(await userState(server, app, u1)).online, 'u1 offline');
        assert.deepEqual(await userState(server, app, u1), { id: u1, online: false, connections: 0 });
        assert.deepEqual(await onlineNow(server, app), { [u2]: 1 });
        d.terminate();
        await until(async () => Object.keys(await onlineNow(server, app)).length === 0, 'nobody online');
    });

    test('online: a connection that signs in twice as the same user is one connection', async () => {
        const app = freshApp();
        const u = uniq('twice-');
        const r = await signedInRaw(s, server, u, { app });
        // accepted or refused, the second sign-in adds no connection
        await r.signin({ id: u });
        await r.ping();
        assert.deepEqual(await userState(server, app, u), { id: u, online: true, connections: 1 });
        assert.deepEqual(await onlineNow(server, app), { [u]: 1 });
    });

    test('online: terminate_connections takes the user offline; others stay', async () => {
        const app = freshApp();
        const u = uniq('term-');
        const v = uniq('stay-');
        await signedInRaw(s, server, u, { app });
        await signedInRaw(s, server, u, { app });
        await signedInRaw(s, server, v, { app });
        assert.deepEqual(await onlineNow(server, app), { [u]: 2, [v]: 1 });
        const res = await rest(server, app).terminateUserConnections(u);
        assert.equal(res.status, 200);
        await until(async () => !(await userState(server, app, u)).online, `${u} offline`);
        assert.deepEqual(await onlineNow(server, app), { [v]: 1 });
    });

    test('online: paging with limit=1 over 5 users visits each once; limit=2 and the default agree', async () => {
        const app = freshApp();
        const users = Array.from({ length: 5 }, (_, i) => uniq(`page${i}-`));
        const want = {};
        for (const [i, u] of users.entries()) {
            const n = i === 2 ? 3 : 1; // one of them with three connections
            for (let k = 0; k < n; k++) await signedInRaw(s, server, u, { app });
            want[u] = n;
        }
        const one = await allUsers(server, app, 1);
        assert.ok(one.pages.length >= 5, `limit=1 over 5 users in ${one.pages.length} pages`);
        assert.ok(one.pages.every((n) => n <= 1), `pages ${one.pages}`);
        assert.equal(one.users.length, 5, `visited ${JSON.stringify(one.users)}`);
        assert.deepEqual(byId(one.users), want);
        const two = await allUsers(server, app, 2);
        assert.equal(two.users.length, 5, `visited ${JSON.stringify(two.users)}`);
        assert.deepEqual(byId(two.users), want);
        const dflt = await allUsers(server, app, undefined);
        assert.deepEqual(dflt.pages, [5]);
        assert.deepEqual(byId(dflt.users), want);
        const max = await allUsers(server, app, 1000);
        assert.deepEqual(max.pages, [5]);
    });

    test('online: users online throughout paging appear exactly once while others sign in and leave between pages', async () => {
        const app = freshApp();
        const stable = Array.from({ length: 5 }, (_, i) => uniq(`stay${i}-`));
        for (const u of stable) await signedInRaw(s, server, u, { app });
        const comers = [];
        const between = async (n) => {
            // a newcomer signs in and the previous newcomer leaves
            comers.push(await signedInRaw(s, server, uniq(`come${n}-`), { app }));
            if (comers.length > 1) comers[comers.length - 2].terminate();
        };
        const got = await allUsers(server, app, 1, between);
        const ids = got.users.map((u) => u.id);
        for (const u of stable) {
            assert.equal(ids.filter((x) => x === u).length, 1, `${u} listed ${ids.filter((x) => x === u).length} times: ${ids}`);
        }
        assert.equal(new Set(ids).size, ids.length, `a user listed twice: ${ids}`);
        for (const u of got.users.filter((x) => stable.includes(x.id))) assert.equal(u.connections, 1, JSON.stringify(u));
    });

    test('online: limit below 1, above 1000 or not an integer → 400 with a message; 1 and 1000 → 200', async () => {
        const app = freshApp();
        await signedInRaw(s, server, uniq('lim-'), { app });
        for (const limit of ['0', '-1', '1001', '100000', 'abc', '1.5', '', '1e2', '5x']) {
            assertError(await restUsers(server, app, { limit }), 400, `limit=${JSON.stringify(limit)}`);
        }
        for (const limit of ['1', '1000', '7']) {
            const res = await restUsers(server, app, { limit });
            assert.equal(res.status, 200, `limit=${limit}: ${res.text}`);
            assert.equal(res.body.users.length, 1, res.text);
        }
    });

    test('online: signed like every REST call (a wrong secret → 401)', async () => {
        const app = freshApp();
        const u = uniq('auth-');
        await signedInRaw(s, server, u, { app });
        const wrong = { ...app, secret: 'not-the-secret' };
        assertError(await restUsers(server, wrong), 401, 'GET /users with a wrong secret');
        assertError(await restUser(server, wrong, u), 401, 'GET /users/{id} with a wrong secret');
        // through the SDK (which signs it) the same calls answer
        const sdk = rest(server, app);
        const res = await restCall(() => sdk.get({ path: '/users' }));
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(byId(res.body.users), { [u]: 1 });
        const one = await restCall(() => sdk.get({ path: `/users/${u}` }));
        assert.equal(one.status, 200, one.text);
        assert.deepEqual(one.body, { id: u, online: true, connections: 1 });
    });

    test('online: user ids that look like SQL are listed as they are; quoted ones are refused at sign-in and answered offline or 400', async () => {
        const app = freshApp();
        const odd = ['x;--', 'a=1;DROP', '1,OR,1=1', 'u@x.y;DELETE'];
        for (const u of odd) await signedInRaw(s, server, u, { app });
        assert.deepEqual(await onlineNow(server, app), Object.fromEntries(odd.map((u) => [u, 1])));
        for (const u of odd) assert.deepEqual(await userState(server, app, u), { id: u, online: true, connections: 1 });
        // "x'--" is not a user id: sign-in is refused, and asking for it
        // changes nothing
        const r = await rawReady(s, server, { app });
        const e = await r.signin({ id: "x'--" });
        assert.equal(e.msg.event, 'pusher:error', e.text);
        for (const bad of ["x'--", "' OR '1'='1", 'a b', '%']) {
            const res = await restUser(server, app, bad);
            assert.ok(res.status === 400 || (res.status === 200 && res.body.online === false && res.body.connections === 0),
                `GET /users/${bad}: ${res.status}: ${res.text}`);
            if (res.status === 400) assertError(res, 400, bad);
        }
        assert.deepEqual(await onlineNow(server, app), Object.fromEntries(odd.map((u) => [u, 1])));
    });
});

describe('chat: who is online across two workers', () => {
    let server;
    let s;
    const app = chatApp('online-w');
    before(async () => {
        server = await startHark({ config: { workers: 2, apps: [APPS.main, app] } });
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    // GET path over a new TCP connection (a new connection may land on either worker).
    async function fresh(path) {
        const sdk = pinnedRest(server, app);
        try {
            const res = await restCall(() => sdk.get({ path }));
            assert.equal(res.status, 200, `${path}: ${res.status}: ${res.text}`);
            return res.body;
        } finally {
            sdk.pinnedAgent.destroy();
        }
    }

    test('online: counts are exact whichever worker holds the connections and whichever answers', async () => {
        const u = uniq('both-');
        const v = uniq('one-');
        const conns = [];
        const workers = new Set();
        for (let i = 0; i < 64 && (conns.length < 6 || workers.size < 2); i++) {
            const r = await signedInRaw(s, server, u, { app });
            conns.push(r);
            workers.add(r.socketId.split('.')[0]);
        }
        assert.equal(workers.size, 2, `connections of ${u} only on worker(s) ${[...workers]}`);
        const rv = await signedInRaw(s, server, v, { app });
        for (let i = 0; i < 8; i++) {
            assert.deepEqual(byId((await fresh('/users')).users), { [u]: conns.length, [v]: 1 }, `ask ${i}`);
            assert.deepEqual(await fresh(`/users/${u}`), { id: u, online: true, connections: conns.length }, `ask ${i}`);
        }
        // paging across workers: each once
        const paged = await allUsers(server, app, 1);
        assert.deepEqual(byId(paged.users), { [u]: conns.length, [v]: 1 });
        // the connections on one worker leave
        const w = [...workers][0];
        const leaving = conns.filter((r) => r.socketId.split('.')[0] === w);
        for (const r of leaving) r.terminate();
        const left = conns.length - leaving.length;
        await until(async () => (await fresh(`/users/${u}`)).connections === left, `${u} at ${left} connections`);
        for (let i = 0; i < 6; i++) {
            assert.deepEqual(byId((await fresh('/users')).users), { [u]: left, [v]: 1 }, `after leaving, ask ${i}`);
        }
        for (const r of conns) r.terminate();
        rv.terminate();
        await until(async () => (await fresh('/users')).users.length === 0, 'nobody online');
        assert.deepEqual(await fresh(`/users/${u}`), { id: u, online: false, connections: 0 });
    });
});
