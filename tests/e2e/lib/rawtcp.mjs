// Hand-made WebSocket and HTTP bytes over node:net, for the checks a real
// client library would never let us make: unmasked frames, invalid UTF-8,
// fragments with control frames in between, 1-byte writes, garbage requests,
// a reader that never reads. Also a counting TCP proxy and a launcher that
// spawns hark directly (custom flags/env/cwd, no config file) with the same
// stop() checks as harness.mjs. Nothing here imitates the server.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HARK_BIN, APPS, freePort, sleep, until, withTimeout } from './harness.mjs';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// One WebSocket frame as a client (masked by default) would send it.
export function encodeFrame(payload = Buffer.alloc(0), opts = {}) {
    const { opcode = OP.TEXT, fin = true, mask = true, rsv = 0 } = opts;
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const len = data.length;
    let head;
    if (len < 126) {
        head = Buffer.alloc(2);
        head[1] = len;
    } else if (len < 65536) {
        head = Buffer.alloc(4);
        head[1] = 126;
        head.writeUInt16BE(len, 2);
    } else {
        head = Buffer.alloc(10);
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(len), 2);
    }
    head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
    if (!mask) return Buffer.concat([head, data]);
    head[1] |= 0x80;
    const key = opts.maskKey || randomBytes(4);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
    return Buffer.concat([head, key, body]);
}

// A close frame payload: 2-byte code + reason.
export function closePayload(code, reason = '') {
    const b = Buffer.alloc(2 + Buffer.byteLength(reason));
    b.writeUInt16BE(code, 0);
    b.write(reason, 2);
    return b;
}

// Incremental frame decoder (server → client frames; accepts masked too).
export class FrameDecoder {
    constructor() { this.buf = Buffer.alloc(0); }

    push(chunk) {
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        const out = [];
        for (;;) {
            const b = this.buf;
            if (b.length < 2) break;
            const fin = (b[0] & 0x80) !== 0;
            const rsv = (b[0] >> 4) & 7;
            const opcode = b[0] & 0x0f;
            const masked = (b[1] & 0x80) !== 0;
            let len = b[1] & 0x7f;
            let off = 2;
            if (len === 126) {
                if (b.length < 4) break;
                len = b.readUInt16BE(2);
                off = 4;
            } else if (len === 127) {
                if (b.length < 10) break;
                len = Number(b.readBigUInt64BE(2));
                off = 10;
            }
            let key = null;
            if (masked) {
                if (b.length < off + 4) break;
                key = b.subarray(off, off + 4);
                off += 4;
            }
            if (b.length < off + len) break;
            let payload = Buffer.from(b.subarray(off, off + len));
            if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
            const frame = { fin, rsv, opcode, masked, payload };
            if (opcode === OP.CLOSE) {
                frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
                frame.reason = payload.length > 2 ? payload.subarray(2).toString() : '';
            }
            out.push(frame);
            this.buf = b.subarray(off + len);
        }
        return out;
    }
}

function defaultPath() {
    return `/app/${APPS.main.key}?protocol=7&client=js&version=8.6.0&flash=false`;
}

export function handshakeRequest(server, path = defaultPath(), extraHeaders = '') {
    const key = randomBytes(16).toString('base64');
    const text =
        `GET ${path} HTTP/1.1\r\n` +
        `Host: ${server.host}:${server.port}\r\n` +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        extraHeaders +
        '\r\n';
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    return { text, key, accept };
}

// Writes buf one byte per write (and per TCP segment: Nagle is off and each
// write waits for the previous to be flushed plus a short pause).
export async function writeBytewise(sock, buf, pauseMs = 1) {
    for (let i = 0; i < buf.length; i++) {
        await new Promise((resolve, reject) => sock.write(buf.subarray(i, i + 1), (e) => (e ? reject(e) : resolve())));
        if (pauseMs) await sleep(pauseMs);
    }
}

// Opens a raw WebSocket over net.Socket. Options:
//   bytewise: send the handshake one byte per write
//   autoPong: answer control pings (default true)
//   ms: handshake timeout
//   extraHeaders: complete "Name: value\r\n" lines added to the handshake
//   allowHalfOpen: do not answer the server's FIN with ours (a peer that
//     never finishes closing)
// Resolves with a connection object once the 101 arrived (and was checked).
export async function wsConnect(server, path = defaultPath(), opts = {}) {
    const { bytewise = false, autoPong = true, ms = 5000, extraHeaders = '', allowHalfOpen = false } = opts;
    const sock = net.connect({ host: server.host, port: server.port, allowHalfOpen });
    sock.setNoDelay(true);
    await withTimeout(new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
    }), 'TCP connect', ms);
    const hs = handshakeRequest(server, path, extraHeaders);

    const decoder = new FrameDecoder();
    const frames = [];
    const waiters = [];
    let head = null;
    let headBuf = Buffer.alloc(0);
    let headResolve;
    let headReject;
    const headPromise = new Promise((res, rej) => { headResolve = res; headReject = rej; });
    let ended = false;
    const endWaiters = [];
    let bytesIn = 0;
    const conn = {
        sock,
        frames,
        pings: 0,
        pongs: [], // payloads of control pongs received
        bytesIn: () => bytesIn,
        isEnded: () => ended,
    };
    const deliver = (f) => {
        if (f.opcode === OP.PING) {
            conn.pings++;
            if (autoPong && !sock.destroyed) sock.write(encodeFrame(f.payload, { opcode: OP.PONG }));
        }
        if (f.opcode === OP.PONG) conn.pongs.push(f.payload);
        const w = waiters.shift();
        if (w) w(f); else frames.push(f);
    };
    sock.on('data', (chunk) => {
        bytesIn += chunk.length;
        if (!head) {
            headBuf = Buffer.concat([headBuf, chunk]);
            const i = headBuf.indexOf('\r\n\r\n');
            if (i < 0) return;
            head = headBuf.subarray(0, i).toString('latin1');
            const rest = headBuf.subarray(i + 4);
            headResolve(head);
            if (rest.length) for (const f of decoder.push(rest)) deliver(f);
            return;
        }
        for (const f of decoder.push(chunk)) deliver(f);
    });
    const onEnd = () => {
        if (ended) return;
        ended = true;
        headReject(new Error(`connection ended before the handshake answer: ${headBuf.toString('latin1')}`));
        for (const w of endWaiters.splice(0)) w();
        for (const w of waiters.splice(0)) w(null);
    };
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', () => { /* surfaced as close */ });

    const req = Buffer.from(hs.text, 'latin1');
    if (bytewise) await writeBytewise(sock, req); else sock.write(req);
    const h = await withTimeout(headPromise, 'the handshake answer', ms);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1]);
    if (status !== 101) {
        sock.destroy();
        throw new Error(`expected 101, got: ${h}`);
    }
    const acc = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(h)?.[1];
    if (acc !== hs.accept) {
        sock.destroy();
        throw new Error(`bad Sec-WebSocket-Accept ${acc} (expected ${hs.accept})`);
    }
    conn.head = h;

    // Next frame of any kind; null when the connection ended first.
    conn.nextFrame = (t = 5000) => {
        if (frames.length) return Promise.resolve(frames.shift());
        if (ended) return Promise.resolve(null);
        return withTimeout(new Promise((r) => waiters.push(r)), 'a frame', t);
    };
    // Next data message (reassembling fragments), skipping control frames
    // except CLOSE, which is returned as is. null when the connection ended.
    conn.nextMessage = async (t = 5000) => {
        const end = Date.now() + t;
        let parts = null;
        let opcode = null;
        for (;;) {
            const f = await conn.nextFrame(Math.max(1, end - Date.now()));
            if (!f) return null;
            if (f.opcode === OP.CLOSE) return f;
            if (f.opcode === OP.PING || f.opcode === OP.PONG) continue;
            if (f.opcode !== OP.CONT) { parts = [f.payload]; opcode = f.opcode; } else if (parts) parts.push(f.payload);
            if (f.fin && parts) {
                const payload = Buffer.concat(parts);
                const m = { opcode, payload, text: payload.toString() };
                if (opcode === OP.TEXT) {
                    try { m.json = JSON.parse(m.text); } catch { /* keep text */ }
                }
                return m;
            }
        }
    };
    // Next JSON message whose event is `event` (or any when omitted).
    conn.nextEvent = async (event, t = 5000) => {
        const end = Date.now() + t;
        for (;;) {
            const m = await conn.nextMessage(Math.max(1, end - Date.now()));
            if (!m) throw new Error(`connection ended while waiting for ${event || 'an event'}`);
            if (m.opcode === OP.CLOSE) throw new Error(`close ${m.code} ${m.reason} while waiting for ${event || 'an event'}`);
            if (!event || (m.json && m.json.event === event)) return m;
        }
    };
    conn.established = async (t = 5000) => {
        const m = await conn.nextEvent('pusher:connection_established', t);
        return JSON.parse(m.json.data);
    };
    // Waits for the server's close frame; returns it (null if the TCP
    // connection ended without one).
    conn.closeFrame = async (t = 5000) => {
        const end = Date.now() + t;
        for (;;) {
            const f = await conn.nextFrame(Math.max(1, end - Date.now()));
            if (!f || f.opcode === OP.CLOSE) return f;
        }
    };
    conn.ended = (t = 5000) => {
        if (ended) return Promise.resolve();
        return withTimeout(new Promise((r) => endWaiters.push(r)), 'the TCP connection to end', t);
    };
    conn.write = (buf) => sock.write(buf);
    conn.writeBytewise = (buf, pauseMs) => writeBytewise(sock, buf, pauseMs);
    conn.sendFrame = (payload, o) => sock.write(encodeFrame(payload, o));
    conn.sendJSON = (obj) => sock.write(encodeFrame(JSON.stringify(obj)));
    conn.destroy = () => sock.destroy();
    // Stop and restart reading (a client that never reads fills its
    // receive buffer, then the server's send buffer).
    conn.pause = () => sock.pause();
    conn.resume = () => sock.resume();
    return conn;
}

// Sends arbitrary bytes as a fresh TCP connection and collects what comes
// back until the server ends the connection or ms pass.
export async function httpRaw(server, bytes, ms = 3000) {
    const sock = net.connect({ host: server.host, port: server.port });
    let data = Buffer.alloc(0);
    let ended = false;
    const done = new Promise((resolve) => {
        sock.on('data', (d) => { data = Buffer.concat([data, d]); });
        sock.on('close', () => { ended = true; resolve(); });
        sock.on('error', () => { /* close follows */ });
    });
    sock.on('connect', () => sock.write(bytes));
    let timedOut = false;
    const t = setTimeout(() => { timedOut = true; sock.destroy(); }, ms);
    await done;
    clearTimeout(t);
    const text = data.toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]) || null;
    // endedByServer: the server closed the connection before ms passed
    return { status, text, endedByServer: ended && !timedOut };
}

// A plain HTTP/1.1 GET with Connection: close over its own socket.
export async function httpGet(server, path, ms = 3000) {
    const r = await httpRaw(server, `GET ${path} HTTP/1.1\r\nHost: ${server.host}\r\nConnection: close\r\n\r\n`, ms);
    return r;
}

// One keep-alive HTTP/1.1 connection over node:net, kept by the worker that
// accepted it: write() sends raw bytes (a request may go in parts),
// response() resolves with the next whole answer {status, head, body}
// (Content-Length framed; null once the server has closed the connection),
// request() does both. upgrade(path) turns it into a WebSocket and resolves
// with the first message (connection_established or pusher:error), parsed.
export async function httpConnection(server, ms = 5000) {
    const sock = net.connect({ host: server.host, port: server.port });
    sock.setNoDelay(true);
    await withTimeout(new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
    }), 'TCP connect', ms);
    let buf = Buffer.alloc(0);
    let decoder = null; // after an upgrade
    const answers = [];
    const waiters = [];
    let ended = false;
    const deliver = (a) => {
        const w = waiters.shift();
        if (w) w(a); else answers.push(a);
    };
    const parse = () => {
        while (!decoder) {
            const i = buf.indexOf('\r\n\r\n');
            if (i < 0) return;
            const head = buf.subarray(0, i).toString('latin1');
            const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
            const len = status === 101 ? 0 : Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] || 0);
            if (buf.length < i + 4 + len) return;
            const body = buf.subarray(i + 4, i + 4 + len).toString('utf8');
            buf = buf.subarray(i + 4 + len);
            deliver({ status, head, body });
            if (status === 101) decoder = new FrameDecoder();
        }
        const rest = buf;
        buf = Buffer.alloc(0);
        if (rest.length) {
            for (const f of decoder.push(rest)) {
                if (f.opcode === OP.TEXT) deliver({ frame: f, json: JSON.parse(f.payload.toString()) });
                else if (f.opcode === OP.CLOSE) deliver({ frame: f, close: f.code });
            }
        }
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
    const onEnd = () => {
        ended = true;
        for (const w of waiters.splice(0)) w(null);
    };
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', () => { /* surfaced as close */ });
    const conn = {
        sock,
        get ended() { return ended; },
        pending: answers,
        write(bytes) { sock.write(bytes); },
        response(t = 5000) {
            if (answers.length) return Promise.resolve(answers.shift());
            if (ended) return Promise.resolve(null);
            return withTimeout(new Promise((r) => waiters.push(r)), 'an HTTP answer', t);
        },
        request(bytes, t) {
            sock.write(bytes);
            return conn.response(t);
        },
        async upgrade(path, t = 5000) {
            const a = await conn.request(handshakeRequest(server, path).text, t);
            if (!a || a.status !== 101) throw new Error(`expected 101, got ${a && a.head}`);
            const m = await conn.response(t);
            if (!m || !m.json) throw new Error(`no first message after the upgrade (${JSON.stringify(m)})`);
            return m.json;
        },
        close() { sock.destroy(); },
    };
    return conn;
}

// TCP proxy that counts incoming connections (to count client attempts).
export async function tcpProxy(target) {
    const sockets = new Set();
    let count = 0;
    const srv = net.createServer((c) => {
        count++;
        const up = net.connect({ host: target.host, port: target.port });
        sockets.add(c);
        sockets.add(up);
        c.pipe(up);
        up.pipe(c);
        const kill = () => { c.destroy(); up.destroy(); sockets.delete(c); sockets.delete(up); };
        c.on('error', kill);
        up.on('error', kill);
        c.on('close', kill);
        up.on('close', kill);
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    return {
        host: '127.0.0.1',
        port: srv.address().port,
        get count() { return count; },
        async close() {
            for (const s of sockets) s.destroy();
            await new Promise((r) => srv.close(r));
        },
    };
}

function cleanEnv(extra = {}) {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('HARK_') || k.startsWith('PUSHER_APP_')) delete env[k];
    return { ...env, ...extra };
}

// Runs hark to completion (for --help and refused configs). Kills it after
// ms and reports timedOut if it was still running.
export async function runHark(args, { env = {}, cwd, ms = 5000 } = {}) {
    const proc = spawn(HARK_BIN, args, { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    let timedOutFlag = false;
    const t = setTimeout(() => { timedOutFlag = true; proc.kill('SIGKILL'); }, ms);
    const { code, signal } = await new Promise((resolve, reject) => {
        proc.on('error', reject);
        proc.on('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    clearTimeout(t);
    // let the pipes drain
    await sleep(20);
    return { code, signal, stdout, stderr, timedOut: timedOutFlag };
}

// Starts hark like harness.startHark, but: options.config === null means no
// config file at all; readiness is probed with Connection: close requests
// over their own sockets (no idle keep-alive connection stays open, which
// matters for connection-count limits); options.cwd sets the working
// directory; options.port is the port to probe (defaults to config.port);
// options.maxFiles caps the process's open files (soft and hard, like
// `ulimit -n`), for the out-of-descriptors path.
// Returns { host, port, proc, dir, output(), exited, stop() }.
export async function launch(options = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'hark-e2e-raw-'));
    const port = options.port || (await freePort());
    const args = [];
    let configPath = null;
    if (options.config !== null) {
        const config = {
            host: '127.0.0.1',
            port,
            data_dir: join(dir, 'data'),
            log_level: 'info',
            apps: Object.values(APPS),
            ...(options.config || {}),
        };
        configPath = join(dir, 'hark.json');
        writeFileSync(configPath, JSON.stringify(config, null, 2));
        args.push('--config', configPath);
    }
    args.push(...(options.args || []));
    const [cmd, argv] = options.maxFiles
        ? ['/bin/sh', ['-c', `ulimit -n ${Number(options.maxFiles)} && exec "$0" "$@"`, HARK_BIN, ...args]]
        : [HARK_BIN, args];
    const proc = spawn(cmd, argv, { env: cleanEnv(options.env), cwd: options.cwd || dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    let exitInfo = null;
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { exitInfo = { code, signal }; resolve(exitInfo); }));
    proc.on('error', (e) => { out += String(e); });
    const server = {
        host: '127.0.0.1', port, proc, dir, configPath,
        output: () => out,
        exited,
        get exitInfo() { return exitInfo; },
        async stop() {
            if (!exitInfo) {
                proc.kill('SIGTERM');
                const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
                await exited;
                clearTimeout(t);
            }
            try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
            const { code, signal } = exitInfo;
            if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(out)) {
                throw new Error(`sanitizer report in hark output:\n${out.slice(-4000)}`);
            }
            if (signal || code !== 0) {
                throw new Error(`hark exited with code ${code} signal ${signal}:\n${out.slice(-4000)}`);
            }
        },
    };
    if (options.ready === false) return server;
    try {
        await until(async () => {
            if (exitInfo) throw new Error(`hark exited early (${JSON.stringify(exitInfo)}):\n${out}`);
            const r = await httpGet(server, '/ready', 1000);
            return r.status === 200;
        }, 'hark to listen', 15000);
    } catch (e) {
        proc.kill('SIGKILL');
        await exited;
        try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
        throw e;
    }
    return server;
}

// True if something accepts TCP connections on port.
export function listening(port, host = '127.0.0.1', ms = 1000) {
    return new Promise((resolve) => {
        const s = net.connect({ host, port });
        const t = setTimeout(() => { s.destroy(); resolve(false); }, ms);
        s.on('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
        s.on('error', () => { clearTimeout(t); resolve(false); });
    });
}
