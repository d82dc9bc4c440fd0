// pusher-js's browser build in a real browser (Debian's Chromium, driven by
// playwright-core) against the real binary: connect, public, private and
// presence channels with an auth endpoint, REST events, client events between
// two tabs, sign-in with sendToUser, and the HTTP fallbacks (xhr_streaming,
// xhr_polling) on a page without WebSocket.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { APPS, startHark, rest, until } from './lib/harness.mjs';

const require = createRequire(import.meta.url);
const PUSHER_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher.min.js'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// The app server a browser app would have: the page, pusher-js, and the
// auth endpoints signed with the real pusher SDK.
function appServer(sdk) {
    const srv = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            const form = new URLSearchParams(body);
            const url = new URL(req.url, 'http://x');
            if (url.pathname === '/pusher.min.js') {
                res.writeHead(200, { 'content-type': 'application/javascript' });
                res.end(PUSHER_JS);
            } else if (url.pathname === '/') {
                res.writeHead(200, { 'content-type': 'text/html' });
                res.end('<!doctype html><title>hark</title><script src="/pusher.min.js"></script>');
            } else if (url.pathname === '/auth') {
                const socketId = form.get('socket_id');
                const channel = form.get('channel_name');
                const user = url.searchParams.get('user');
                const auth = channel.startsWith('presence-')
                    ? sdk.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: `user ${user}` } })
                    : sdk.authorizeChannel(socketId, channel);
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify(auth));
            } else if (url.pathname === '/signin') {
                const user = url.searchParams.get('user');
                const auth = sdk.authenticateUser(form.get('socket_id'), { id: user, user_info: { name: `user ${user}` } });
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify(auth));
            } else {
                res.writeHead(404);
                res.end();
            }
        });
    });
    return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('browser: pusher-js web build in Chromium', () => {
    let server;
    let sdk;
    let web;
    let browser;
    let pageUrl;

    before(async () => {
        // make test installs Debian's chromium; without it this fails, never skips
        assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
        server = await startHark();
        sdk = rest(server);
        web = await appServer(sdk);
        pageUrl = `http://127.0.0.1:${web.address().port}/`;
        browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    });

    after(async () => {
        await browser?.close();
        web?.close();
        await server?.stop();
    });

    // Opens a tab running `new Pusher(...)` as user `user`; events land in window.got.
    async function tab(user) {
        const page = await browser.newPage();
        await page.goto(pageUrl);
        await page.evaluate(({ key, port, user: u }) => {
            window.got = [];
            window.states = [];
            window.pusher = new Pusher(key, {
                wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'],
                cluster: '', channelAuthorization: { endpoint: `/auth?user=${u}` },
                userAuthentication: { endpoint: `/signin?user=${u}` },
            });
            window.pusher.connection.bind('state_change', (s) => window.states.push(s.current));
            window.record = (channel, event) => channel.bind(event, (data, meta) => {
                window.got.push({ channel: channel.name, event, data, user_id: meta?.user_id });
            });
        }, { key: APPS.main.key, port: server.port, user });
        await until(() => page.evaluate(() => window.pusher.connection.state === 'connected'), 'browser connected');
        return page;
    }

    const got = (page, event) => page.evaluate((e) => window.got.filter((g) => g.event === e), event);

    test('browser: connects over WebSocket with a socket id', async () => {
        const page = await tab('b0');
        const socketId = await page.evaluate(() => window.pusher.connection.socket_id);
        assert.match(socketId, /^\d+\.\d+$/);
        await page.close();
    });

    test('browser: public and private channels receive REST events', async () => {
        const page = await tab('b1');
        await page.evaluate(() => {
            for (const name of ['browser-public', 'private-browser']) {
                const ch = window.pusher.subscribe(name);
                window.record(ch, 'news');
                window.record(ch, 'pusher:subscription_succeeded');
            }
        });
        await until(async () => (await got(page, 'pusher:subscription_succeeded')).length === 2, 'both subscribed');
        await sdk.trigger(['browser-public', 'private-browser'], 'news', { text: 'hello browser' });
        await until(async () => (await got(page, 'news')).length === 2, 'both events');
        const news = await got(page, 'news');
        assert.deepEqual(news.map((n) => n.channel).sort(), ['browser-public', 'private-browser']);
        for (const n of news) assert.deepEqual(n.data, { text: 'hello browser' });
        await page.close();
    });

    test('browser: presence members across two tabs, and client events with user_id', async () => {
        const a = await tab('alice');
        const b = await tab('bob');
        const setup = (page) => page.evaluate(() => {
            const ch = window.pusher.subscribe('presence-browser');
            window.record(ch, 'pusher:subscription_succeeded');
            window.record(ch, 'pusher:member_added');
            window.record(ch, 'client-wave');
            window.presence = ch;
        });
        await setup(a);
        await until(async () => (await got(a, 'pusher:subscription_succeeded')).length === 1, 'alice subscribed');
        await setup(b);
        await until(async () => (await got(b, 'pusher:subscription_succeeded')).length === 1, 'bob subscribed');
        await until(async () => (await got(a, 'pusher:member_added')).length === 1, 'alice sees bob');
        const added = (await got(a, 'pusher:member_added'))[0].data;
        assert.equal(added.id, 'bob');
        assert.deepEqual(added.info, { name: 'user bob' });
        assert.equal(await b.evaluate(() => window.presence.members.count), 2);

        await b.evaluate(() => window.presence.trigger('client-wave', { from: 'bob' }));
        await until(async () => (await got(a, 'client-wave')).length === 1, 'alice gets the wave');
        const wave = (await got(a, 'client-wave'))[0];
        assert.deepEqual(wave.data, { from: 'bob' });
        assert.equal(wave.user_id, 'bob');
        // an echo would be written to bob while hark handled the wave: bob's
        // pusher:pong comes after it
        await b.evaluate(() => new Promise((resolve) => {
            const fn = () => { window.pusher.unbind('pusher:pong', fn); resolve(); };
            window.pusher.bind('pusher:pong', fn);
            window.pusher.send_event('pusher:ping', {});
        }));
        assert.equal((await got(b, 'client-wave')).length, 0, 'not echoed to the sender');
        await a.close();
        await b.close();
    });

    test('browser: signin, then sendToUser reaches the tab', async () => {
        const page = await tab('carol');
        await page.evaluate(() => {
            window.pusher.signin();
            window.pusher.user.bind('notice', (data) => window.got.push({ event: 'notice', data }));
        });
        await until(() => page.evaluate(() => window.pusher.user.user_data?.id === 'carol'), 'signed in');
        // the server subscribes #server-to-user-carol for the client after sign-in
        await until(() => page.evaluate(() => window.pusher.user.serverToUserChannel?.subscribed), 'user channel');
        await sdk.sendToUser('carol', 'notice', { text: 'just for carol' });
        await until(async () => (await got(page, 'notice')).length === 1, 'the notice');
        assert.deepEqual((await got(page, 'notice'))[0].data, { text: 'just for carol' });
        await page.close();
    });

    test('browser: with no WebSocket, pusher-js falls back to xhr_streaming / xhr_polling (cross-origin) and receives events', async () => {
        // the page is served by the app server, hark is another origin:
        // every fallback request is a CORS request with a preflight
        for (const [i, transports] of [['xhr_streaming', 'xhr_polling'], ['xhr_polling']].entries()) {
            const page = await browser.newPage();
            await page.addInitScript(() => { delete window.WebSocket; delete window.MozWebSocket; });
            await page.goto(pageUrl);
            assert.equal(await page.evaluate(() => typeof window.WebSocket), 'undefined');
            await page.evaluate(({ key, port, enabledTransports, names }) => {
                window.got = [];
                window.pusher = new Pusher(key, {
                    wsHost: '127.0.0.1', wsPort: port, httpHost: '127.0.0.1', httpPort: port, forceTLS: false,
                    enabledTransports, cluster: '', channelAuthorization: { endpoint: '/auth?user=xhr' },
                });
                for (const name of names) {
                    const ch = window.pusher.subscribe(name);
                    for (const event of ['pusher:subscription_succeeded', 'news']) {
                        ch.bind(event, (data) => window.got.push({ channel: name, event, data }));
                    }
                }
            }, { key: APPS.main.key, port: server.port, enabledTransports: transports, names: [`browser-xhr-${i}`, `private-browser-xhr-${i}`] });
            await until(() => page.evaluate(() => window.pusher.connection.state === 'connected'), `connected over ${transports[0]}`, 20000);
            assert.equal(await page.evaluate(() => window.pusher.connection.connection.transport.name), transports[0]);
            assert.match(await page.evaluate(() => window.pusher.connection.socket_id), /^\d+\.\d+$/);
            await until(async () => (await got(page, 'pusher:subscription_succeeded')).length === 2, 'both subscribed', 20000);
            await sdk.trigger([`browser-xhr-${i}`, `private-browser-xhr-${i}`], 'news', { text: 'héllo over HTTP 😀' });
            await until(async () => (await got(page, 'news')).length === 2, 'both events', 20000);
            const news = await got(page, 'news');
            assert.deepEqual(news.map((n) => n.channel).sort(), [`browser-xhr-${i}`, `private-browser-xhr-${i}`]);
            for (const n of news) assert.deepEqual(n.data, { text: 'héllo over HTTP 😀' });
            assert.equal(await page.evaluate(() => window.pusher.connection.connection.transport.name), transports[0]);
            await page.close();
        }
    });
});
