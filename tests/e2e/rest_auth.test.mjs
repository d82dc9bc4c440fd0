// REST authentication (spec §8.2, docs/api.md "HTTP API"), with requests
// signed here by hand (node:crypto) so that each parameter can be broken on
// purpose. The signer is checked against the spec's Appendix A vectors first.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { APPS, startHark, rest, client, connected, subscribed, nextEvent } from './lib/harness.mjs';

const md5 = (s) => createHash('md5').update(s).digest('hex');

// String to sign: METHOD \n PATH \n sorted lowercased key=value (unescaped).
function stringToSign(method, path, params) {
    const entries = Object.entries(params)
        .filter(([k]) => k.toLowerCase() !== 'auth_signature')
        .map(([k, v]) => [k.toLowerCase(), String(v)])
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `${method}\n${path}\n${entries.map(([k, v]) => `${k}=${v}`).join('&')}`;
}

function signature(secret, method, path, params) {
    return createHmac('sha256', secret).update(stringToSign(method, path, params)).digest('hex');
}

// Builds a signed request. opts:
//   app, method, path, body (string), params (extra query params),
//   timestamp, omit: [param names to drop], override: {param: value} applied
//   after signing, signWith: {secret, key} to sign with other credentials,
//   rawQuery: (q) => q to rewrite the encoded query string.
function signed(server, opts) {
    const app = opts.app || APPS.main;
    const method = opts.method || 'GET';
    const body = opts.body ?? '';
    const params = {
        auth_key: opts.authKey ?? app.key,
        auth_timestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
        auth_version: opts.authVersion ?? '1.0',
        ...(body.length ? { body_md5: opts.bodyMd5 ?? md5(body) } : {}),
        ...(opts.params || {}),
    };
    for (const k of opts.omitBeforeSigning || []) delete params[k];
    params.auth_signature = signature(opts.secret ?? app.secret, method, opts.signPath ?? opts.path, params);
    for (const k of opts.omit || []) delete params[k];
    Object.assign(params, opts.override || {});
    let query = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    if (opts.rawQuery) query = opts.rawQuery(query);
    const url = `http://${server.host}:${server.port}${opts.path}?${query}`;
    const init = { method, headers: {} };
    if (body.length || method === 'POST') {
        init.body = body;
        init.headers['content-type'] = 'application/json';
    }
    return fetch(url, init);
}

async function expectStatus(resPromise, status) {
    const res = await resPromise;
    const text = await res.text();
    assert.equal(res.status, status, `status ${res.status}, body ${text}`);
    return text;
}

// 4xx answers are JSON {"error": "...", "code": status}
async function expectError(resPromise, status) {
    const text = await expectStatus(resPromise, status);
    let body;
    try { body = JSON.parse(text); } catch { assert.fail(`error body is not JSON: ${text}`); }
    assert.equal(typeof body.error, 'string');
    assert.ok(body.error.length > 0);
    assert.equal(body.code, status);
    return body;
}

const EVENT = JSON.stringify({ name: 'ev', channel: 'rest-auth', data: '{"x":1}' });
const eventsPath = `/apps/${APPS.main.id}/events`;
const channelsPath = `/apps/${APPS.main.id}/channels`;

describe('REST signer (spec Appendix A)', () => {
    const key = '278d425bdf160c739803';
    const secret = '7ad3773142a6692b25b8';

    it('reproduces A8: POST /apps/3/events body_md5 and signature', () => {
        const body = '{"name":"new-message","channel":"private-conversation-42","data":"{\\"text\\":\\"hi\\"}","socket_id":"1234.1234"}';
        assert.equal(Buffer.byteLength(body), 109);
        assert.equal(md5(body), 'e86ba5fc6621424977be8aeef3739d95');
        const params = { auth_key: key, auth_timestamp: 1700000000, auth_version: '1.0', body_md5: md5(body) };
        assert.equal(stringToSign('POST', '/apps/3/events', params),
            'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&body_md5=e86ba5fc6621424977be8aeef3739d95');
        assert.equal(signature(secret, 'POST', '/apps/3/events', params),
            '6248ee1fce2ca5037a2f0453879d1547535528c5801fe05c524d5d121848b2a1');
    });

    it('reproduces A9: GET /apps/3/channels?filter_by_prefix=presence-&info=user_count', () => {
        const params = { info: 'user_count', filter_by_prefix: 'presence-', auth_version: '1.0', auth_timestamp: 1700000000, auth_key: key };
        assert.equal(signature(secret, 'GET', '/apps/3/channels', params),
            '5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a');
    });

    it('reproduces A7: Pusher\'s documented example', () => {
        const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
        assert.equal(md5(body), 'ec365a775a4cd0599faeb73354201b6f');
        const params = { auth_key: key, auth_timestamp: 1353088179, auth_version: '1.0', body_md5: md5(body) };
        assert.equal(signature(secret, 'POST', '/apps/3/events', params),
            'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
    });

    it('lowercases keys and does not escape values (docs example Name: Something else)', () => {
        assert.equal(stringToSign('GET', '/x', { Name: 'Something else', auth_key: 'foo' }), 'GET\n/x\nauth_key=foo&name=Something else');
    });
});

describe('REST authentication', () => {
    let server;
    before(async () => {
        server = await startHark({ config: { max_request_bytes: 2000, shutdown_grace_ms: 300 } });
    });
    after(async () => {
        await server.stop();
    });

    it('accepts a correctly signed POST /events with 200 and a JSON object', async () => {
        const text = await expectStatus(signed(server, { method: 'POST', path: eventsPath, body: EVENT }), 200);
        const body = JSON.parse(text);
        assert.deepEqual(Object.keys(body), ['ids']); // the ids of its kept channels (docs/api.md)
    });

    it('delivers an event published with a hand-signed request to pusher-js', async () => {
        const c = client(server);
        try {
            await connected(c);
            const ch = await subscribed(c, 'rest-auth-deliver');
            const got = nextEvent(ch, 'ev');
            await expectStatus(signed(server, {
                method: 'POST', path: eventsPath,
                body: JSON.stringify({ name: 'ev', channel: 'rest-auth-deliver', data: '{"n":7}' }),
            }), 200);
            assert.deepEqual((await got).data, { n: 7 });
        } finally {
            c.disconnect();
        }
    });

    it('accepts a correctly signed GET /channels with 200', async () => {
        const text = await expectStatus(signed(server, { path: channelsPath }), 200);
        assert.equal(typeof JSON.parse(text).channels, 'object');
    });

    it('refuses a wrong signature with 401 and a JSON {error, code} body', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, override: { auth_signature: 'a'.repeat(64) } }), 401);
    });

    it('refuses a signature made with the wrong secret with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, secret: 'not-the-secret' }), 401);
    });

    it('refuses a signature over a different path with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, signPath: `/apps/${APPS.main.id}/batch_events`, body: EVENT }), 401);
    });

    it('refuses a stale timestamp (now − 601 s) with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, timestamp: Math.floor(Date.now() / 1000) - 601 }), 401);
    });

    it('refuses a future timestamp (now + 601 s) with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, timestamp: Math.floor(Date.now() / 1000) + 601 }), 401);
    });

    it('accepts a timestamp 500 s old (inside the 600 s window)', async () => {
        await expectStatus(signed(server, { path: channelsPath, timestamp: Math.floor(Date.now() / 1000) - 500 }), 200);
    });

    it('refuses a non-numeric timestamp with 401', async () => {
        await expectError(signed(server, { path: channelsPath, timestamp: 'yesterday' }), 401);
    });

    it('refuses a wrong body_md5 (signed consistently) with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, bodyMd5: md5('something else') }), 401);
    });

    it('refuses a body sent without body_md5 with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, omitBeforeSigning: ['body_md5'] }), 401);
    });

    it('refuses auth_key of another app (signed with that app\'s secret) with 401', async () => {
        await expectError(signed(server, {
            method: 'POST', path: eventsPath, body: EVENT,
            authKey: APPS.noclient.key, secret: APPS.noclient.secret,
        }), 401);
    });

    it('refuses an unknown auth_key with 401', async () => {
        await expectError(signed(server, { path: channelsPath, authKey: 'no-such-key' }), 401);
    });

    it('refuses a request without auth_signature with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, omit: ['auth_signature'] }), 401);
    });

    it('refuses a request without auth_key with 401', async () => {
        await expectError(signed(server, { path: channelsPath, omitBeforeSigning: ['auth_key'] }), 401);
    });

    it('refuses a request without auth_timestamp with 401', async () => {
        await expectError(signed(server, { path: channelsPath, omitBeforeSigning: ['auth_timestamp'] }), 401);
    });

    it('refuses auth_version 2.0 with 401', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: EVENT, authVersion: '2.0' }), 401);
    });

    it('refuses a request with no query string at all with 401', async () => {
        const res = await fetch(`http://${server.host}:${server.port}${channelsPath}`);
        const text = await res.text();
        assert.equal(res.status, 401, text);
        assert.equal(JSON.parse(text).code, 401);
    });

    it('accepts uppercase query keys (lowercased when signing)', async () => {
        await expectStatus(signed(server, { path: channelsPath, params: { Filter_By_Prefix: 'private-' } }), 200);
    });

    it('accepts percent-encoded values, signing the decoded value (Name=Something%20else)', async () => {
        const res = signed(server, { path: channelsPath, params: { Name: 'Something else' } });
        await expectStatus(res, 200);
    });

    it('accepts info=user_count%2Csubscription_count percent-encoded as php sends it', async () => {
        const app = APPS.counted;
        const text = await expectStatus(signed(server, {
            app, path: `/apps/${app.id}/channels`,
            params: { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' },
        }), 200);
        assert.deepEqual(JSON.parse(text), { channels: {} });
    });

    it('accepts info=user_count,subscription_count with a raw comma as the node SDK sends it', async () => {
        const app = APPS.counted;
        await expectStatus(signed(server, {
            app, path: `/apps/${app.id}/channels`,
            params: { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' },
            rawQuery: (qs) => qs.replace(/%2C/g, ','),
        }), 200);
    });

    it('answers 404 for an unknown app id', async () => {
        await expectError(signed(server, { method: 'POST', path: '/apps/no-such-app/events', body: EVENT }), 404);
    });

    it('answers 404 for an unknown path under /apps/{id}/', async () => {
        await expectError(signed(server, { path: `/apps/${APPS.main.id}/nothing-here` }), 404);
    });

    it('answers 405 for GET on /events', async () => {
        await expectError(signed(server, { method: 'GET', path: eventsPath }), 405);
    });

    it('answers 405 for POST on /channels', async () => {
        await expectError(signed(server, { method: 'POST', path: channelsPath, body: '{}' }), 405);
    });

    it('answers 403 for a correctly signed request to a disabled app', async () => {
        const app = APPS.disabled;
        await expectError(signed(server, { app, method: 'POST', path: `/apps/${app.id}/events`, body: EVENT }), 403);
    });

    it('answers 400 for a correctly signed malformed JSON body', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: '{"name":"ev","channel":' }), 400);
    });

    it('answers 400 for a correctly signed JSON body that is not an object', async () => {
        await expectError(signed(server, { method: 'POST', path: eventsPath, body: '[1,2,3]' }), 400);
    });

    it('answers 413 for a body over max_request_bytes (2000) and keeps serving', async () => {
        const big = JSON.stringify({ name: 'ev', channel: 'rest-auth', data: 'x'.repeat(5000) });
        assert.ok(big.length > 5000);
        let status;
        try {
            const res = await signed(server, { method: 'POST', path: eventsPath, body: big });
            await res.text();
            status = res.status;
        } catch (e) {
            assert.fail(`no HTTP answer to the oversize request: ${e.cause?.code || e.message}`);
        }
        assert.equal(status, 413);
        // still serves: signed request, the SDK, and a WebSocket client
        await expectStatus(signed(server, { method: 'POST', path: eventsPath, body: EVENT }), 200);
        const res = await rest(server).get({ path: '/channels' });
        assert.equal(res.status, 200);
        const c = client(server);
        try {
            await connected(c);
        } finally {
            c.disconnect();
        }
    });

    it('answers a query with a malformed percent escape with 400 or 401, not 5xx', async () => {
        const res = await signed(server, { path: channelsPath, rawQuery: (qs) => `${qs}&x=%zz` });
        await res.text();
        assert.ok([400, 401].includes(res.status), `status ${res.status}`);
    });
});
