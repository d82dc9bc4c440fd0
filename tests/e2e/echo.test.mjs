// Laravel Echo 2.x (broadcaster 'pusher', options.client = a pusher-js
// instance) against hark: public listen, private, presence join, whisper,
// event-name namespacing (spec §4.3; laravel/echo event-formatter).
import { describe, test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startHark, rest } from './lib/harness.mjs';
import { scope, uniq, pusherPing, until, withTimeout } from './lib/clients.mjs';

// Resolves with the first argument of the next call of the callback slot.
function once() {
    let resolve;
    const p = new Promise((r) => { resolve = r; });
    return { cb: (x) => resolve(x), wait: (what, ms = 5000) => withTimeout(p, what, ms) };
}

describe('laravel-echo', () => {
    let server;
    let sdk;
    let s;
    before(async () => {
        server = await startHark();
        sdk = rest(server);
    });
    after(async () => {
        await server.stop();
    });
    beforeEach(() => { s = scope(); });
    afterEach(async () => { await s.close(); });

    test('echo: channel().listen(".new-message") receives a REST event with its data', async () => {
        const name = uniq('orders-');
        const echo = s.echo(server);
        const sub = once();
        const got = once();
        echo.channel(name).subscribed(sub.cb).listen('.new-message', got.cb);
        await sub.wait('subscribed');
        await sdk.trigger(name, 'new-message', { id: 7, text: 'hi' });
        assert.deepEqual(await got.wait('.new-message'), { id: 7, text: 'hi' });
    });

    test('echo: listen("OrderShipped") receives the namespaced App\\Events\\OrderShipped event', async () => {
        const name = uniq('orders-');
        const echo = s.echo(server);
        const sub = once();
        const got = once();
        echo.channel(name).subscribed(sub.cb).listen('OrderShipped', got.cb);
        await sub.wait('subscribed');
        await sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1 } });
        assert.deepEqual(await got.wait('App\\Events\\OrderShipped'), { order: { id: 1 } });
    });

    test('echo: private(name) subscribes private-name and receives events', async () => {
        const name = uniq('chat-');
        const echo = s.echo(server);
        const sub = once();
        const got = once();
        echo.private(name).subscribed(sub.cb).listen('.msg', got.cb);
        await sub.wait('private subscribed');
        assert.ok(echo.connector.pusher.channel(`private-${name}`).subscribed);
        await sdk.trigger(`private-${name}`, 'msg', { body: 'secret' });
        assert.deepEqual(await got.wait('.msg'), { body: 'secret' });
    });

    test('echo: private() with a refused signature calls error() with AuthError 401', async () => {
        const name = uniq('chat-');
        const echo = s.echo(server, { badAuth: true });
        const err = once();
        echo.private(name).error(err.cb);
        const e = await err.wait('error callback');
        assert.equal(e.type, 'AuthError');
        assert.equal(e.status, 401);
    });

    test('echo: join() calls here with the members, joining and leaving with user info', async () => {
        const name = uniq('room-');
        const a = s.echo(server, { user: { id: '1', info: { name: 'Ann' } } });
        const here = once();
        const joined = [];
        const left = [];
        a.join(name).here(here.cb).joining((u) => joined.push(u)).leaving((u) => left.push(u));
        assert.deepEqual(await here.wait('here'), [{ name: 'Ann' }]);
        const b = s.echo(server, { user: { id: '2', info: { name: 'Ben' } } });
        const hereB = once();
        b.join(name).here(hereB.cb);
        const membersB = await hereB.wait('here at b');
        assert.deepEqual(membersB.map((m) => m.name).sort(), ['Ann', 'Ben']);
        await until(() => joined.length === 1, 'joining');
        assert.deepEqual(joined, [{ name: 'Ben' }]);
        b.leave(name);
        await until(() => left.length === 1, 'leaving');
        assert.deepEqual(left, [{ name: 'Ben' }]);
    });

    test('echo: whisper on a private channel reaches listenForWhisper on the other client only', async () => {
        const name = uniq('typing-');
        const a = s.echo(server, { user: { id: 'a', info: {} } });
        const b = s.echo(server, { user: { id: 'b', info: {} } });
        const subA = once();
        const subB = once();
        const own = [];
        const chA = a.private(name).subscribed(subA.cb).listenForWhisper('typing', (e) => own.push(e));
        const got = once();
        b.private(name).subscribed(subB.cb).listenForWhisper('typing', got.cb);
        await Promise.all([subA.wait('a subscribed'), subB.wait('b subscribed')]);
        chA.whisper('typing', { name: 'a', typing: true });
        assert.deepEqual(await got.wait('whisper'), { name: 'a', typing: true });
        // an echo to the sender would be written while hark handled the
        // whisper: a's pong comes after it
        await pusherPing(a.connector.pusher);
        assert.deepEqual(own, []);
    });

    test('echo: whisper on a presence channel reaches the other member', async () => {
        const name = uniq('room-');
        const a = s.echo(server, { user: { id: 'a', info: { n: 'A' } } });
        const b = s.echo(server, { user: { id: 'b', info: { n: 'B' } } });
        const hereA = once();
        const hereB = once();
        const chA = a.join(name).here(hereA.cb);
        const got = once();
        b.join(name).here(hereB.cb).listenForWhisper('ping', got.cb);
        await Promise.all([hereA.wait('a here'), hereB.wait('b here')]);
        chA.whisper('ping', { at: 1 });
        assert.deepEqual(await got.wait('presence whisper'), { at: 1 });
    });

    test('echo: leaveChannel() stops events for that channel', async () => {
        const name = uniq('orders-');
        const echo = s.echo(server);
        const other = s.echo(server);
        const sub = once();
        const subO = once();
        echo.channel(name).subscribed(sub.cb).listen('.tick', () => {});
        // frames on echo's connection (pusher-js drops events of a channel it left)
        const got = [];
        echo.connector.pusher.connection.bind('message', (m) => {
            if (m.channel === name && m.event === 'tick') got.push(m);
        });
        const gotO = once();
        other.channel(name).subscribed(subO.cb).listen('.tick', gotO.cb);
        await Promise.all([sub.wait('subscribed'), subO.wait('other subscribed')]);
        echo.leaveChannel(name);
        // round trip on the same connection: the unsubscribe has been processed
        const barrierName = uniq('barrier-');
        const barrier = once();
        const control = once();
        echo.channel(barrierName).subscribed(barrier.cb).listen('.control', control.cb);
        await barrier.wait('barrier subscription');
        const pub = s.pinned(server);
        await pub.trigger(name, 'tick', { n: 1 });
        await gotO.wait('other client tick');
        // published after the tick over the same HTTP connection (worker)
        await pub.trigger(barrierName, 'control', {});
        await control.wait('the control event');
        assert.deepEqual(got, []);
    });
});
