// bench/lib.mjs — what the Node benchmark drivers share (resume_storm.mjs,
// history_memory.mjs): options, /proc readings and signed REST calls.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

// Parses `PORT --name value …` into a copy of defaults. names maps each
// option to its key; a key whose default is a number takes a number.
// usage(why) is called (and must exit) on a bad command line. Also checks
// the port and that host is on loopback (the only place load may go).
export function parseArgs(argv, defaults, names, usage) {
    const o = { ...defaults };
    const rest = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (names[a]) {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            const k = names[a];
            o[k] = typeof o[k] === 'number' ? Number(argv[++i]) : argv[++i];
            if (typeof o[k] === 'number' && !Number.isFinite(o[k])) usage(`${a}: not a number`);
        } else if (a === '--help' || a === '-h') {
            usage();
        } else if (a.startsWith('--')) {
            usage(`unknown option ${a}`);
        } else {
            rest.push(a);
        }
    }
    if (rest.length !== 1) usage('PORT is required');
    o.port = Number(rest[0]);
    if (!(o.port > 0 && o.port < 65536)) usage('bad PORT');
    if (!/^127\./.test(o.host)) usage('only 127.0.0.0/8 is accepted as a target');
    return o;
}

// A process's resident memory in kB, or null.
export function rssKb(pid) {
    if (!pid) return null;
    try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch { return null; }
}

// post(path, body) → {status, text}: a POST under /apps/{appId} signed as
// the Pusher SDKs sign it, over keep-alive connections (at most o.restConns);
// post.close() closes them.
export function signedPoster(o) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: o.restConns });
    const post = function post(path, body) {
        const full = `/apps/${o.appId}${path}`;
        const q = `auth_key=${o.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0`
            + `&body_md5=${createHash('md5').update(body).digest('hex')}`;
        const sig = createHmac('sha256', o.secret).update(`POST\n${full}\n${q}`).digest('hex');
        return new Promise((resolve, reject) => {
            const req = http.request({
                host: o.host, port: o.port, method: 'POST', path: `${full}?${q}&auth_signature=${sig}`, agent,
                headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            }, (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
                res.on('error', reject);
            });
            req.on('error', reject);
            req.end(body);
        });
    };
    post.close = () => agent.destroy();
    return post;
}
