// hark-frames: shared by hark-resume and hark-chat (not a public API).
//
// pusher-js drops the top-level fields it does not know (hark's "id") when
// it decodes a frame, so both modules read the raw frames: the transport
// connection of each Connection that the ConnectionManager takes over emits
// 'message' with {data: "<raw JSON>"} (WebSocket and the HTTP fallbacks
// alike), and pusher-js's Connection decodes and dispatches that frame
// synchronously from the same emit. Wrapping that transport's emit() lets
// a module see each frame just before pusher-js decodes it, and tell which
// raw frame pusher-js is dispatching while a bind callback runs.
//
// One tap per ConnectionManager, shared by every module that acquires it
// and removed when the last one releases it.

const own = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

export function reportLater(err) {
    // An exception thrown by an application callback must not break the
    // delivery of the frame to pusher-js; surface it like an uncaught error.
    setTimeout(() => { throw err; }, 0);
}

/** The pusher-js instance behind a pusher-js 8 instance or a Laravel Echo
 *  instance (its connector.pusher); throws a TypeError naming `who`. */
export function pusherOf(target, who) {
    if (target && target.connector && target.connector.pusher) target = target.connector.pusher;
    const manager = target && target.connection;
    if (!manager || typeof manager.send_event !== 'function' || typeof manager.bind !== 'function') {
        throw new TypeError(`${who}: expected a pusher-js 8 instance (or a Laravel Echo instance)`);
    }
    return target;
}

const taps = new WeakMap(); // ConnectionManager -> tap

function createTap(manager) {
    const listeners = new Set(); // fn(rawText) before pusher-js dispatches it
    const hooked = []; // {transport, wrapper, previous (own emit or undefined)}
    let current; // the raw text pusher-js is dispatching right now

    function hookTransport(transport) {
        if (!transport || typeof transport.emit !== 'function') return;
        for (let i = hooked.length - 1; i >= 0; i--) {
            const h = hooked[i];
            if (h.transport === transport) return;
            if (h.transport.state === 'closed') { unhook(h); hooked.splice(i, 1); }
        }
        const previous = own(transport, 'emit') ? transport.emit : undefined;
        const inner = transport.emit;
        const wrapper = function emitWithFrames(name, payload) {
            if (!tap.refs || name !== 'message' || !payload) return inner.apply(this, arguments);
            const text = typeof payload.data === 'string' ? payload.data : undefined;
            if (text !== undefined) {
                for (const fn of [...listeners]) {
                    try { fn(text); } catch (e) { reportLater(e); }
                }
            }
            const saved = current;
            current = text;
            try { return inner.apply(this, arguments); } finally { current = saved; }
        };
        transport.emit = wrapper;
        hooked.push({ transport, wrapper, previous });
    }

    function unhook(h) {
        if (h.transport.emit !== h.wrapper) return; // wrapped again by someone else: stays a pass-through
        if (h.previous) h.transport.emit = h.previous;
        else delete h.transport.emit;
    }

    const hookCurrent = () => {
        const conn = manager.connection;
        if (conn) hookTransport(conn.transport);
    };

    const tap = {
        refs: 0,
        listeners,
        current: () => current,
        hookCurrent,
        close() {
            manager.unbind('connected', hookCurrent);
            for (const h of hooked.splice(0)) unhook(h);
            listeners.clear();
            current = undefined;
        },
    };
    manager.bind('connected', hookCurrent);
    hookCurrent();
    return tap;
}

/**
 * Acquires the frame tap of a pusher-js instance. Returns
 *   current()    the raw text of the frame pusher-js is dispatching right
 *                now (inside a bind callback), otherwise undefined
 *   onFrame(fn)  fn(rawText) before pusher-js decodes each frame; returns off()
 *   hook()       hooks the current connection now (e.g. before a send whose
 *                answer must be seen)
 *   release()    drops this handle (and its onFrame listeners); the last
 *                release removes every patch
 */
export function acquireTap(pusher) {
    const manager = pusher.connection;
    let tap = taps.get(manager);
    if (!tap) {
        tap = createTap(manager);
        taps.set(manager, tap);
    }
    tap.refs += 1;
    const mine = new Set();
    let released = false;
    return {
        current: () => tap.current(),
        onFrame(fn) {
            const entry = (text) => fn(text);
            mine.add(entry);
            tap.listeners.add(entry);
            return () => { mine.delete(entry); tap.listeners.delete(entry); };
        },
        hook: () => tap.hookCurrent(),
        release() {
            if (released) return;
            released = true;
            for (const entry of mine) tap.listeners.delete(entry);
            mine.clear();
            tap.refs -= 1;
            if (tap.refs === 0) {
                tap.close();
                if (taps.get(manager) === tap) taps.delete(manager);
            }
        },
    };
}
