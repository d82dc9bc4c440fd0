// The browser's own EventSource (Debian's Chromium, driven by
// playwright-core) on a hark event stream: the page asks its app server
// for a stream URL (a private channel signed with the real pusher SDK, the
// stream token as socket id) and opens it cross-origin. Chromium reaches
// hark through a small TCP proxy of the test's, which can cut every
// connection and hold new ones: after a cut, EventSource reconnects by
// itself with Last-Event-ID and gets what was published while it was away,
// once, and goes on live. A token that expires closes the stream with a
// pusher:error record (4009) and its URL is refused after, so EventSource
// stops.
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { APPS, startHark, rest, until } from './lib/harness.mjs';
import { uniq } from './lib/clients.mjs';
import { range, publishSeq } from './lib/history.mjs';
import { signedPath } from './lib/sse.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 15000; // generous: EventSource waits retry (2000 ms) before reconnecting; sanitizers

// A TCP proxy to target. Every accepted connection's first bytes (the
// request head) are kept in `heads`. cut() destroys every open connection;
// while `holding`, new connections are accepted but not passed on until
// release().
async function proxy(target) {
    const pairs = new Set();
    const held = [];
    const heads = [];
    const p = { holding: false, heads, get held() { return held.length; } };
    const pipe = (c) => {
        const up = net.connect({ host: target.host, port: target.port });
        c.piped = true;
        for (const d of c.early.splice(0)) up.write(d); // what came while held
        const pair = { c, up };
        pairs.add(pair);
        const kill = () => { c.destroy(); up.destroy(); pairs.delete(pair); };
        c.on('error', kill);
        up.on('error', kill);
        c.on('close', kill);
        up.on('close', kill);
        c.pipe(up);
        up.pipe(c);
    };
    const srv = net.createServer((c) => {
        let head = '';
        c.early = [];
        c.piped = false;
        const grab = (d) => {
            if (head.length < 4096) head += d.toString('latin1');
            if (!c.piped) c.early.push(d);
        };
        c.on('data', grab);
        heads.push({ get text() { return head; } });
        c.on('error', () => c.destroy());
        if (p.holding) held.push(c); else pipe(c);
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    Object.assign(p, {
        host: '127.0.0.1',
        port: srv.address().port,
        cut() { for (const { c, up } of [...pairs]) { c.destroy(); up.destroy(); } pairs.clear(); },
        release() { p.holding = false; for (const c of held.splice(0)) if (!c.destroyed) pipe(c); },
        async close() {
            p.cut();
            for (const c of held.splice(0)) c.destroy();
            await new Promise((r) => srv.close(r));
        },
    });
    return p;
}

// The app server: the page, and the route that builds a signed stream URL
// (pointing at `via`, the proxy in front of hark). ?secs= sets how long the
// token lasts.
function appServer(sdk, via) {
    const srv = createServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/') {
            res.writeHead(200, { 'content-type': 'text/html' });
            res.end('<!doctype html><title>hark sse</title>');
        } else if (url.pathname === '/sse-url') {
            const channel = url.searchParams.get('channel');
            const secs = Number(url.searchParams.get('secs') || 3600);
            const { path } = signedPath(sdk, APPS.main, [channel], { secs });
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ url: `http://${via.host}:${via.port}${path}` }));
        } else {
            res.writeHead(404);
            res.end();
        }
    });
    return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('browser: EventSource on a hark event stream in Chromium', () => {
    let server;
    let sdk;
    let browser;
    let px;
    let web;
    let pageUrl;
    let page;

    before(async () => {
        // make test installs Debian's chromium; without it this fails, never skips
        assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
        server = await startHark();
        sdk = rest(server);
        browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    });
    after(async () => {
        await browser?.close();
        await server?.stop();
    });
    beforeEach(async () => {
        px = await proxy(server);
        web = await appServer(sdk, px);
        pageUrl = `http://127.0.0.1:${web.address().port}/`;
        page = await browser.newPage();
        await page.goto(pageUrl);
    });
    afterEach(async () => {
        await page?.close();
        web?.close();
        await px?.close();
    });

    // Opens `new EventSource(url)` in the page for a URL from the app
    // server; every record of the listed event names lands in window.got.
    async function openEventSource(channel, secs = 3600) {
        await page.evaluate(async ({ ch, secs: s }) => {
            window.got = [];
            window.opens = 0;
            window.errors = 0;
            const { url } = await (await fetch(`/sse-url?channel=${encodeURIComponent(ch)}&secs=${s}`)).json();
            const es = new EventSource(url);
            window.es = es;
            es.onopen = () => { window.opens += 1; };
            es.onerror = () => { window.errors += 1; };
            for (const name of ['tick', 'hark:resumed', 'pusher_internal:subscription_succeeded', 'pusher:subscription_error', 'pusher:error']) {
                es.addEventListener(name, (e) => {
                    window.got.push({ type: e.type, message: JSON.parse(e.data), lastEventId: e.lastEventId });
                });
            }
        }, { ch: channel, secs });
    }

    const got = (type) => page.evaluate((t) => window.got.filter((g) => g.type === t), type);
    const ticks = async () => (await got('tick')).map((g) => JSON.parse(g.message.data).seq);

    test('browser: EventSource on a private channel receives events, and after the connection is cut resumes by itself with Last-Event-ID: what was published meanwhile arrives once', async () => {
        const ch = uniq('private-browser-sse-');
        const pub = rest(server);
        await openEventSource(ch);
        await until(async () => (await got('pusher_internal:subscription_succeeded')).length === 1
            || (await got('pusher:subscription_error')).length > 0, 'the subscription reply', WAIT);
        assert.deepEqual((await got('pusher:subscription_error')), []);
        assert.equal(await page.evaluate(() => window.es.readyState), 1, 'EventSource OPEN');
        assert.equal(px.heads.length, 1, 'Chromium reached hark through the proxy');

        const first = await publishSeq(pub, ch, 0, 3);
        await until(async () => (await ticks()).length === 3, 'three events in the page', WAIT);
        const before_ = await got('tick');
        assert.deepEqual(before_.map((g) => g.message.id), first);
        assert.deepEqual(before_.map((g) => g.lastEventId), first, 'EventSource\'s lastEventId is each event\'s id');

        // the network goes: new connections wait at the proxy until released
        px.holding = true;
        px.cut();
        await until(() => page.evaluate(() => window.errors >= 1 && window.es.readyState === 0), 'EventSource to notice and reconnect', WAIT);
        const missed = await publishSeq(pub, ch, 3, 6);
        await until(() => px.held >= 1, 'EventSource\'s reconnect to reach the proxy', WAIT);
        px.release();

        await until(async () => (await got('hark:resumed')).length === 1, 'hark:resumed in the page', WAIT).catch(async (e) => {
            const state = await page.evaluate(() => ({ got: window.got, errors: window.errors, opens: window.opens, rs: window.es.readyState }));
            throw new Error(`${e.message}; page ${JSON.stringify(state)}; requests ${JSON.stringify(px.heads.map((h) => h.text.split('\r\n\r\n')[0]))}`);
        });
        const resumed = (await got('hark:resumed'))[0];
        assert.equal(resumed.message.channel, ch);
        assert.deepEqual(JSON.parse(resumed.message.data), { recovered: true, count: 3 });
        assert.deepEqual(await ticks(), range(0, 6), 'every event once, in order');
        assert.deepEqual((await got('tick')).slice(3).map((g) => g.message.id), missed);
        // the reconnect carried the last id EventSource had seen
        const reconnects = px.heads.slice(1).map((h) => h.text).filter((t) => t.startsWith('GET '));
        assert.ok(reconnects.length >= 1, `no GET after the cut: ${JSON.stringify(px.heads.map((h) => h.text.split('\r\n')[0]))}`);
        assert.match(reconnects[0], new RegExp(`\\r\\nlast-event-id: ${first[2].replace(/\./g, '\\.')}\\r\\n`, 'i'));
        assert.equal(await page.evaluate(() => window.opens), 2);

        // and it is live again, once
        await publishSeq(pub, ch, 6, 7);
        await until(async () => (await ticks()).length === 7, 'the live event after the resume', WAIT);
        assert.deepEqual(await ticks(), range(0, 7));
        const ids = (await got('tick')).map((g) => g.message.id);
        assert.equal(new Set(ids).size, ids.length, 'an id came twice');
        assert.equal(await page.evaluate(() => window.es.readyState), 1);
        await page.evaluate(() => window.es.close());
    });

    test('browser: a token that expires closes the stream with a pusher:error record (4009); the URL is refused after, so EventSource stops', async () => {
        const ch = uniq('private-browser-exp-');
        await openEventSource(ch, 3);
        await until(async () => (await got('pusher_internal:subscription_succeeded')).length === 1, 'subscribed', WAIT);
        await until(async () => (await got('pusher:error')).length === 1, 'the pusher:error record', WAIT);
        const err = (await got('pusher:error'))[0];
        assert.equal(err.message.data.code, 4009, JSON.stringify(err.message));
        // EventSource tries again with the same URL, is refused (401) and gives up
        await until(() => page.evaluate(() => window.es.readyState === 2), 'EventSource CLOSED', WAIT);
        assert.equal(await page.evaluate(() => window.opens), 1);
    });
});
