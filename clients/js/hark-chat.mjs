// hark-chat: thin helpers over pusher-js 8 for hark's chat events: read
// markers (hark:read), unread counts (hark:unread), typing indicators
// (hark:typing) and the author and id of each event.
//
// Every helper takes the pusher-js instance (or a Laravel Echo instance,
// whose connector.pusher is used) as its first argument. Frames are sent
// with pusher-js's own ConnectionManager#send_event; hark's answers are
// read from the ConnectionManager's 'message' event, which pusher-js emits
// for every decoded frame (the JSON string "data" already parsed).
//
// Wire forms:
//   -> {"event":"hark:read","channel":C,"data":{"id":ID}}      (data {} without id)
//   <- {"event":"hark:read","channel":C,"data":"{\"user_id\":U,\"id\":ID}"}
//   -> {"event":"hark:unread","data":{}}  or  {"data":{"channels":[...]}}
//   <- {"event":"hark:unread","data":"{\"channels\":{C:{\"unread\":N,\"last_id\":..,\"read_id\":..}}}"}
//   -> {"event":"hark:typing","channel":C,"data":{"typing":true|false}}
//   <- {"event":"hark:typing","channel":C,"data":"{\"user_id\":U,\"typing\":true|false}"}
//   refusals: {"event":"pusher:error","data":{"code":..,"message":"hark:<x> rejected: ..."}}

import { acquireTap, pusherOf, reportLater } from './hark-frames.mjs';

const WHO = 'hark-chat';
const READ = 'hark:read';
const UNREAD = 'hark:unread';
const TYPING = 'hark:typing';
const REJECTED_RE = /^hark:([a-z_]+) rejected:/;

const asObject = (data) => {
    if (typeof data === 'string') {
        try { return JSON.parse(data); } catch { return undefined; }
    }
    return data;
};

function need(cond, usage) {
    if (!cond) throw new TypeError(`${WHO}: ${usage}`);
}

function send(pusher, event, data, channel) {
    return pusher.connection.send_event(event, data, channel) === true;
}

// ---- per-instance state ----------------------------------------------------

const states = new WeakMap(); // ConnectionManager -> state

function stateOf(pusher) {
    const manager = pusher.connection;
    let st = states.get(manager);
    if (st) return st;
    st = {
        manager,
        // unread() requests, oldest first: {conn, data, resolve, reject,
        // timer, sent, done}. Only the head is ever on the wire (see unread())
        pending: [],
        watched: new WeakSet(), // Connections whose 'closed' we listen to
        tap: null, // acquired on first use of onEvent / currentEvent
        seen: null, // {text, info}: the last raw frame parsed
    };
    st.onMessage = (ev) => {
        if (!ev || typeof ev.event !== 'string') return;
        let outcome;
        if (ev.event === UNREAD && !ev.channel) {
            const d = asObject(ev.data);
            outcome = d && typeof d === 'object' ? { value: d }
                : { error: chatError('hark:unread: the answer is not a JSON object', 'bad_answer') };
        } else if (ev.event === 'pusher:error') {
            const d = asObject(ev.data);
            const message = d && typeof d.message === 'string' ? d.message : '';
            if (!message.startsWith('hark:unread rejected:')) return;
            outcome = { error: chatError(message, 'rejected', d.code) };
        } else {
            return;
        }
        const p = st.pending[0];
        if (!p || !p.sent) return; // nothing of ours on the wire
        st.pending.shift();
        if (!p.done) {
            settle(p);
            if (outcome.error) p.reject(outcome.error); else p.resolve(outcome.value);
        } // else: timed out; its late answer is consumed here
        pump(st);
    };
    // a lost connection: pending unread() requests fail at once (pusher-js
    // stays 'connected' for a second before it retries), onTyping forgets
    // who was typing
    st.lost = (conn) => {
        failAll(st, 'disconnected', conn);
        for (const fn of [...st.lostListeners]) {
            try { fn(); } catch (e) { reportLater(e); }
        }
    };
    st.watchConn = () => {
        const conn = manager.connection;
        if (!conn || st.watched.has(conn) || typeof conn.bind !== 'function') return;
        st.watched.add(conn);
        conn.bind('closed', () => { if (states.get(manager) === st) st.lost(conn); });
    };
    st.onStateChange = (change) => {
        if (change && change.current !== 'connected') st.lost();
    };
    st.lostListeners = new Set();
    manager.bind('message', st.onMessage);
    manager.bind('state_change', st.onStateChange);
    manager.bind('connected', st.watchConn);
    st.watchConn();
    states.set(manager, st);
    return st;
}

function settle(p) {
    p.done = true;
    if (p.timer !== undefined) clearTimeout(p.timer);
}

function chatError(message, reason, code) {
    const err = new Error(message);
    err.reason = reason;
    if (code !== undefined) err.code = code;
    return err;
}

function failAll(st, reason, conn) {
    const keep = [];
    for (const p of st.pending.splice(0)) {
        if (conn !== undefined && p.conn !== conn) { keep.push(p); continue; }
        if (p.done) continue;
        settle(p);
        p.reject(chatError(reason === 'detached' ? 'hark:unread: detached before the answer'
            : 'hark:unread: the connection was lost before the answer', reason));
    }
    st.pending.push(...keep);
    pump(st);
}

// Sends the oldest request when nothing is on the wire. hark refuses a
// request at once (not signed in, bad channels, too many requests in
// flight) but answers an accepted one later, so a refusal can overtake the
// answer to an earlier request: with one request on the wire at a time,
// every answer and every "hark:unread rejected:" is that request's.
function pump(st) {
    while (st.pending.length && !st.pending[0].sent) {
        const p = st.pending[0];
        if (st.manager.connection !== p.conn || st.manager.state !== 'connected') {
            st.pending.shift();
            settle(p);
            p.reject(chatError('hark:unread: the connection was lost before the request was sent', 'disconnected'));
            continue;
        }
        p.sent = true;
        if (st.manager.send_event(UNREAD, p.data) === true) return;
        st.pending.shift();
        settle(p);
        p.reject(chatError('hark:unread: the frame could not be sent', 'not_connected'));
    }
}

// The decoded top-level fields of the raw frame pusher-js is dispatching
// right now, or undefined.
function frameInfo(st) {
    const text = st.tap ? st.tap.current() : undefined;
    if (text === undefined) return undefined;
    if (st.seen && st.seen.text === text) return st.seen.info;
    let info;
    try {
        const msg = JSON.parse(text);
        if (msg && typeof msg === 'object') {
            info = {
                event: msg.event,
                channel: typeof msg.channel === 'string' ? msg.channel : undefined,
                userId: typeof msg.user_id === 'string' ? msg.user_id : undefined,
                id: typeof msg.id === 'string' ? msg.id : undefined,
            };
        }
    } catch { /* not JSON: pusher-js reports it */ }
    st.seen = { text, info };
    return info;
}

function withTap(st, pusher) {
    if (!st.tap) st.tap = acquireTap(pusher);
    return st;
}

// ---- read markers ----------------------------------------------------------

/**
 * Marks channel read up to the event with history id `id` (or, without id,
 * up to its newest event). hark answers nothing on success; a refusal comes
 * as pusher:error "hark:read rejected: …" (see onRejected). Returns whether
 * the frame was handed to the connection.
 */
export function markRead(pusher, channel, id) {
    pusher = pusherOf(pusher, WHO);
    need(typeof channel === 'string' && channel.length > 0, 'markRead(pusher, channel, id?) with a channel name');
    need(id === undefined || id === null || typeof id === 'string', 'markRead(pusher, channel, id?) with a string id');
    return send(pusher, READ, id === undefined || id === null ? {} : { id }, channel);
}

/**
 * cb({userId, id, channel}) whenever another connection marks channel read
 * (hark sends it to every other subscribed connection). Returns off().
 */
export function onSeen(pusher, channel, cb) {
    pusher = pusherOf(pusher, WHO);
    need(typeof channel === 'string' && typeof cb === 'function', 'onSeen(pusher, channel, cb)');
    const manager = pusher.connection;
    const fn = (ev) => {
        if (!ev || ev.event !== READ || ev.channel !== channel) return;
        const d = asObject(ev.data);
        if (!d || typeof d !== 'object') return;
        try {
            cb({ userId: d.user_id, id: d.id === undefined ? null : d.id, channel });
        } catch (e) { reportLater(e); }
    };
    manager.bind('message', fn);
    return () => manager.unbind('message', fn);
}

// ---- unread counts ---------------------------------------------------------

/**
 * Asks hark for the unread counts of the signed-in user: of every channel
 * it tracks, or of `channels` (an array of names). Resolves with
 * {channels: {<name>: {unread, last_id, read_id}}}. Rejects (an Error with
 * .reason) on "hark:unread rejected: …" ('rejected', .code set), when the
 * connection is lost first ('disconnected'), when not connected
 * ('not_connected'), or after options.timeoutMs (default 10000; 0: never)
 * ('timeout'). Concurrent calls are queued and sent one at a time, each
 * once the previous one is answered (or refused).
 */
export function unread(pusher, channels, options = {}) {
    pusher = pusherOf(pusher, WHO);
    if (channels !== undefined && channels !== null && !Array.isArray(channels) && typeof channels === 'object') {
        options = channels;
        channels = undefined;
    }
    need(channels === undefined || channels === null
        || (Array.isArray(channels) && channels.every((c) => typeof c === 'string')),
    'unread(pusher, channels?, {timeoutMs}?) with an array of channel names');
    const timeoutMs = options && options.timeoutMs !== undefined ? options.timeoutMs : 10000;
    need(Number.isFinite(timeoutMs) && timeoutMs >= 0, 'unread(): timeoutMs is a number of milliseconds >= 0');
    const st = stateOf(pusher);
    const manager = st.manager;
    return new Promise((resolve, reject) => {
        const conn = manager.connection;
        if (!conn || manager.state !== 'connected') {
            reject(chatError('hark:unread: not connected', 'not_connected'));
            return;
        }
        st.watchConn();
        const p = {
            conn, data: channels ? { channels: [...channels] } : {}, resolve, reject,
            timer: undefined, sent: false, done: false,
        };
        st.pending.push(p);
        if (timeoutMs > 0) {
            p.timer = setTimeout(() => {
                if (p.done) return;
                p.done = true;
                // not sent yet: dropped; on the wire: stays at the head so
                // that its late answer is not taken for a later request's
                if (!p.sent) st.pending.splice(st.pending.indexOf(p), 1);
                reject(chatError(`hark:unread: no answer within ${timeoutMs} ms`, 'timeout'));
            }, timeoutMs);
        }
        pump(st);
    });
}

// ---- typing ----------------------------------------------------------------

/** Says whether the signed-in user is typing on channel. Returns whether
 *  the frame was handed to the connection. */
export function typing(pusher, channel, isTyping) {
    pusher = pusherOf(pusher, WHO);
    need(typeof channel === 'string' && channel.length > 0, 'typing(pusher, channel, isTyping)');
    return send(pusher, TYPING, { typing: !!isTyping }, channel);
}

/**
 * A debounced typing signal for a text input: call keystroke() on every
 * input event and stop() when the message is sent (or the input loses
 * focus). Sends typing:true on the first keystroke and again at most once
 * per renewMs (default 2000) while keystrokes continue, and typing:false
 * once idleMs (default 3000) pass without a keystroke, or on stop().
 */
export function typingInput(pusher, channel, options = {}) {
    pusher = pusherOf(pusher, WHO);
    need(typeof channel === 'string' && channel.length > 0, 'typingInput(pusher, channel, {idleMs, renewMs}?)');
    const idleMs = options.idleMs !== undefined ? options.idleMs : 3000;
    const renewMs = options.renewMs !== undefined ? options.renewMs : 2000;
    need(Number.isFinite(idleMs) && idleMs > 0 && Number.isFinite(renewMs) && renewMs >= 0,
        'typingInput(): idleMs > 0 and renewMs >= 0 milliseconds');
    let active = false;
    let lastSent = 0;
    let idle;
    const stop = () => {
        if (idle !== undefined) { clearTimeout(idle); idle = undefined; }
        if (!active) return;
        active = false;
        typing(pusher, channel, false);
    };
    return {
        keystroke() {
            const now = Date.now();
            // not sent (not connected): the next keystroke tries again
            if ((!active || now - lastSent >= renewMs) && typing(pusher, channel, true)) {
                active = true;
                lastSent = now;
            }
            if (idle !== undefined) clearTimeout(idle);
            idle = setTimeout(() => { idle = undefined; stop(); }, idleMs);
        },
        stop,
        get typing() { return active; },
    };
}

/**
 * cb({userId, typing, channel}) when another user starts or stops typing
 * on channel (hark sends typing:true again every typing_throttle_ms while
 * they keep typing, and typing:false when they stop, leave, or go quiet
 * for typing_ttl_ms). When this connection is lost, cb gets typing:false
 * for everyone it last reported typing, since their stop may be missed.
 * Returns off().
 */
export function onTyping(pusher, channel, cb) {
    pusher = pusherOf(pusher, WHO);
    need(typeof channel === 'string' && typeof cb === 'function', 'onTyping(pusher, channel, cb)');
    const manager = pusher.connection;
    const typers = new Set();
    const call = (info) => {
        try { cb(info); } catch (e) { reportLater(e); }
    };
    const fn = (ev) => {
        if (!ev || ev.event !== TYPING || ev.channel !== channel) return;
        const d = asObject(ev.data);
        if (!d || typeof d !== 'object' || typeof d.user_id !== 'string') return;
        const on = d.typing === true;
        if (on) typers.add(d.user_id); else typers.delete(d.user_id);
        call({ userId: d.user_id, typing: on, channel });
    };
    const lost = () => {
        for (const userId of [...typers]) {
            typers.delete(userId);
            call({ userId, typing: false, channel });
        }
    };
    const st = stateOf(pusher);
    manager.bind('message', fn);
    st.lostListeners.add(lost);
    return () => {
        manager.unbind('message', fn);
        st.lostListeners.delete(lost);
        typers.clear();
    };
}

// ---- refusals --------------------------------------------------------------

/**
 * cb({event, message, code}) for each pusher:error whose message is
 * "hark:<x> rejected: …" (event is 'hark:<x>', e.g. 'hark:read'). A refused
 * unread() also rejects its promise. Returns off().
 */
export function onRejected(pusher, cb) {
    pusher = pusherOf(pusher, WHO);
    need(typeof cb === 'function', 'onRejected(pusher, cb)');
    const manager = pusher.connection;
    const fn = (ev) => {
        if (!ev || ev.event !== 'pusher:error') return;
        const d = asObject(ev.data);
        const message = d && typeof d.message === 'string' ? d.message : '';
        const m = REJECTED_RE.exec(message);
        if (!m) return;
        try { cb({ event: `hark:${m[1]}`, message, code: d.code }); } catch (e) { reportLater(e); }
    };
    manager.bind('message', fn);
    return () => manager.unbind('message', fn);
}

// ---- authors and ids -------------------------------------------------------

/**
 * Inside a bind / listen callback (any channel, Laravel Echo too): the
 * event being delivered as {event, channel, userId, id}; userId is its
 * top-level "user_id" (its author, when hark knows it), id its history id.
 * Outside a callback: undefined. The raw frames are watched from the first
 * call on, so call currentEvent(pusher) once right after creating the
 * instance.
 */
export function currentEvent(pusher) {
    pusher = pusherOf(pusher, WHO);
    const st = withTap(stateOf(pusher), pusher);
    const info = frameInfo(st);
    return info ? { ...info } : undefined;
}

/**
 * channel.bind(eventName, …) that also gives the author and the id:
 * cb(data, {userId, id, channel, event}). pusher-js passes the author
 * (metadata.user_id) to bind callbacks on presence channels only; this
 * reads it from the raw frame on every channel. `channel` is a channel
 * name (pusher.subscribe(name) is used, which returns the existing
 * channel), a pusher-js Channel, pusher.user (events sent to the user), or
 * a Laravel Echo channel (its .subscription; eventName is then the name
 * on the wire, e.g. 'App\\Events\\MessageSent'). Returns off().
 */
export function onEvent(pusher, channel, eventName, cb) {
    pusher = pusherOf(pusher, WHO);
    need((typeof channel === 'string' || (channel && typeof channel === 'object'))
        && typeof eventName === 'string' && typeof cb === 'function', 'onEvent(pusher, channel, eventName, cb)');
    let target = channel;
    if (typeof channel === 'string') target = pusher.channel(channel) || pusher.subscribe(channel);
    else if (channel.subscription && typeof channel.subscription.bind === 'function') target = channel.subscription;
    need(typeof target.bind === 'function' && typeof target.unbind === 'function', 'onEvent(): channel is a name or a channel object');
    const st = withTap(stateOf(pusher), pusher);
    const fn = (data, metadata) => {
        const info = frameInfo(st);
        const name = typeof target.name === 'string' ? target.name : undefined;
        const same = info && info.event === eventName && (name === undefined || info.channel === name);
        const userId = (metadata && typeof metadata.user_id === 'string') ? metadata.user_id
            : (same ? info.userId : undefined);
        cb(data, {
            userId,
            id: same ? info.id : undefined,
            channel: same ? info.channel : name,
            event: eventName,
        });
    };
    target.bind(eventName, fn);
    return () => target.unbind(eventName, fn);
}

/**
 * Undoes what the helpers installed on this instance: rejects pending
 * unread() promises ('detached'), stops watching raw frames and lost
 * connections (onTyping no longer reports typing:false on a lost
 * connection). The listeners of onSeen / onTyping / onRejected / onEvent
 * stay until their off().
 */
export function detachChat(pusher) {
    pusher = pusherOf(pusher, WHO);
    const st = states.get(pusher.connection);
    if (!st) return;
    states.delete(st.manager);
    st.manager.unbind('message', st.onMessage);
    st.manager.unbind('state_change', st.onStateChange);
    st.manager.unbind('connected', st.watchConn);
    st.lostListeners.clear();
    failAll(st, 'detached');
    if (st.tap) st.tap.release();
    st.tap = null;
    st.seen = null;
}
