// hark-resume: resume hark channels after a reconnect (or a page reload)
// with pusher-js 8.
//
// hark stores channel events and gives each one a top-level "id". This
// module remembers the last id seen on each channel and adds
// `"since": "<last id>"` to every pusher:subscribe that pusher-js sends for
// that channel, so hark replays what was missed, then reports the outcome in
// a `hark:resumed` event.
//
// pusher-js drops unknown top-level fields when it decodes a frame, so the
// ids are read from the raw frames, just before pusher-js decodes them
// (hark-frames.mjs, shared with hark-chat). Outgoing pusher:subscribe
// frames all go through ConnectionManager#send_event.

import { acquireTap, pusherOf, reportLater } from './hark-frames.mjs';

const MARK = Symbol.for('hark-resume.attached');
const ID_RE = /^[A-Za-z0-9._~-]{1,64}$/;
const RESUMED = 'hark:resumed';

const own = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

// Parses a raw frame when it can matter to us: it carries a top-level "id"
// or it is hark:resumed. Returns {event, channel, id, data} or null.
function inspect(text) {
    if (typeof text !== 'string') return null;
    if (text.indexOf('"id"') === -1 && text.indexOf(RESUMED) === -1) return null;
    let msg;
    try { msg = JSON.parse(text); } catch { return null; }
    if (!msg || typeof msg !== 'object' || typeof msg.channel !== 'string') return null;
    const id = typeof msg.id === 'string' && ID_RE.test(msg.id) ? msg.id : undefined;
    if (id === undefined && msg.event !== RESUMED) return null;
    return { event: msg.event, channel: msg.channel, id, data: msg.data };
}

function resumedInfo(data) {
    let d = data;
    if (typeof d === 'string') {
        try { d = JSON.parse(d); } catch { d = {}; }
    }
    if (!d || typeof d !== 'object') d = {};
    const info = { recovered: d.recovered === true, count: Number.isFinite(d.count) ? d.count : 0 };
    if (typeof d.reason === 'string') info.reason = d.reason;
    return info;
}

/**
 * Attaches to a pusher-js 8 instance (or a Laravel Echo instance, whose
 * `connector.pusher` is used).
 *
 * options:
 *   storage    object with getItem(key) / setItem(key, value) (and optionally
 *              removeItem, key, length), e.g. window.localStorage; ids are
 *              kept there too so that a new Pusher instance resumes
 *   keyPrefix  prefix of the storage keys (default `hark-resume:<app key>:`)
 *   onResumed  (channel, {recovered, count, reason?, since}) => void
 *   filter     (channel) => boolean: which channels to resume (default all)
 *
 * Returns { lastId, currentId, forget, setLastId, on, detach }.
 */
export function attachResume(pusher, options = {}) {
    pusher = pusherOf(pusher, 'hark-resume');
    const manager = pusher.connection;
    if (pusher[MARK]) throw new Error('hark-resume: already attached to this Pusher instance');

    const storage = options.storage || null;
    const prefix = typeof options.keyPrefix === 'string' ? options.keyPrefix : `hark-resume:${pusher.key}:`;
    const filter = typeof options.filter === 'function' ? options.filter : () => true;
    const listeners = new Set();
    if (typeof options.onResumed === 'function') listeners.add(options.onResumed);

    const ids = new Map(); // channel -> last id (undefined: not read from storage yet)
    const pending = new Map(); // channel -> the since sent on its latest subscribe
    let active = true;

    // ---- ids ---------------------------------------------------------------
    function load(channel) {
        if (ids.has(channel)) return ids.get(channel);
        let id;
        if (storage) {
            try {
                const v = storage.getItem(prefix + channel);
                if (typeof v === 'string' && ID_RE.test(v)) id = v;
            } catch { /* storage unavailable: memory only */ }
        }
        ids.set(channel, id);
        return id;
    }

    function remember(channel, id) {
        ids.set(channel, id);
        if (storage) {
            try { storage.setItem(prefix + channel, id); } catch { /* quota, private mode: memory only */ }
        }
    }

    function drop(channel) {
        ids.set(channel, undefined);
        pending.delete(channel);
        if (!storage) return;
        try {
            if (typeof storage.removeItem === 'function') storage.removeItem(prefix + channel);
            else storage.setItem(prefix + channel, '');
        } catch { /* ignore */ }
    }

    // ---- incoming frames ---------------------------------------------------
    function emitResumed(channel, info) {
        for (const fn of [...listeners]) {
            try { fn(channel, info); } catch (e) { reportLater(e); }
        }
    }

    const tap = acquireTap(pusher);
    let seen; // {text, f}: the last raw frame inspected

    function frameOf(text) {
        if (!seen || seen.text !== text) seen = { text, f: inspect(text) };
        return seen.f;
    }

    tap.onFrame((text) => {
        const f = frameOf(text);
        if (!f) return;
        if (f.id !== undefined) remember(f.channel, f.id);
        if (f.event === RESUMED) {
            const info = resumedInfo(f.data);
            info.since = pending.get(f.channel);
            pending.delete(f.channel);
            emitResumed(f.channel, info);
        }
    });

    // ---- outgoing pusher:subscribe -----------------------------------------
    const sendPrevious = own(manager, 'send_event') ? manager.send_event : undefined;
    const sendInner = manager.send_event;
    const sendWrapper = function sendEventWithSince(name, data, channel) {
        if (active) {
            // the connection that carries this subscribe is hooked before
            // any answer to it can arrive
            tap.hook();
            if (name === 'pusher:subscribe' && data && typeof data === 'object'
                && typeof data.channel === 'string' && data.since === undefined) {
                const ch = data.channel;
                let since;
                try { since = filter(ch) ? load(ch) : undefined; } catch (e) { reportLater(e); }
                if (since !== undefined) {
                    pending.set(ch, since);
                    return sendInner.call(this, name, { ...data, since }, channel);
                }
                pending.delete(ch);
            }
        }
        return sendInner.apply(this, arguments);
    };
    manager.send_event = sendWrapper;
    pusher[MARK] = true;

    return {
        /** The last id seen on channel (or read from storage), or undefined. */
        lastId(channel) {
            return load(channel);
        },
        /** While pusher-js dispatches a frame that carries an id (i.e. inside
         *  a bind callback of a stored event): that id; otherwise undefined. */
        currentId() {
            const text = active ? tap.current() : undefined;
            if (text === undefined) return undefined;
            const f = frameOf(text);
            return f ? f.id : undefined;
        },
        /** Forgets the id of channel (the next subscribe has no since); with
         *  no argument, every id this instance knows and, when the storage
         *  can list its keys, every stored id under the prefix. */
        forget(channel) {
            if (channel !== undefined) { drop(channel); return; }
            for (const ch of [...ids.keys()]) drop(ch);
            if (storage && typeof storage.key === 'function' && typeof storage.length === 'number') {
                const keys = [];
                try {
                    for (let i = 0; i < storage.length; i++) {
                        const k = storage.key(i);
                        if (typeof k === 'string' && k.startsWith(prefix)) keys.push(k);
                    }
                } catch { /* ignore */ }
                for (const k of keys) drop(k.slice(prefix.length));
            }
        },
        /** Sets the id the next subscribe to channel resumes from (e.g. the
         *  newest event the app fetched from hark's REST history). */
        setLastId(channel, id) {
            if (typeof channel !== 'string' || typeof id !== 'string' || !ID_RE.test(id)) {
                throw new TypeError('hark-resume: setLastId(channel, id) with an id of at most 64 URL-safe characters');
            }
            remember(channel, id);
        },
        /** on('resumed', fn): fn(channel, {recovered, count, reason?, since});
         *  returns a function that removes fn. */
        on(event, fn) {
            if (event !== 'resumed' || typeof fn !== 'function') {
                throw new TypeError("hark-resume: on('resumed', fn)");
            }
            listeners.add(fn);
            return () => listeners.delete(fn);
        },
        /** Undoes every patch; ids are no longer recorded nor sent. */
        detach() {
            if (!active) return;
            active = false;
            if (manager.send_event === sendWrapper) {
                if (sendPrevious) manager.send_event = sendPrevious;
                else delete manager.send_event;
            }
            tap.release();
            listeners.clear();
            pending.clear();
            seen = undefined;
            delete pusher[MARK];
        },
    };
}

export default attachResume;
