// The measuring half of bench/soak.sh (see its header for usage).
//
//   node bench/soak.mjs run      drive one server, write its RSS CSV and result JSON
//   node bench/soak.mjs report   turn the results of one soak.sh run into summary.md
//
// Both take their settings from the environment soak.sh sets.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { runChurn, describeResult } from '../tests/e2e/lib/churn.mjs';

const env = (name, def) => process.env[name] ?? def;
const num = (name, def) => Number(env(name, def));
const say = (line) => process.stderr.write(`[soak] ${line}\n`);

const SECONDS = num('SOAK_SECONDS', 1800);
const SAMPLE_S = num('SOAK_SAMPLE_SECONDS', 30);
// Warm-up: 5 minutes, or a quarter of a short run.
const WARMUP_S = num('SOAK_WARMUP_SECONDS', Math.min(300, Math.floor(SECONDS / 4)));

async function run() {
    const label = env('SOAK_LABEL', 'hark');
    const csv = env('SOAK_CSV');
    writeFileSync(csv, 'elapsed_s,rss_kb,connections_open\n');
    const opts = {
        host: '127.0.0.1',
        port: num('SOAK_PORT'),
        app: { id: 'app-id', key: 'app-key', secret: 'app-secret' },
        workers: num('SOAK_WORKERS', 2),
        seconds: SECONDS,
        churners: num('SOAK_CHURNERS', 2000),
        lifetimeMs: env('SOAK_LIFETIME_MS', '1000-8000').split('-').map(Number),
        triggerRate: num('SOAK_TRIGGER_RATE', 40),
        noiseRate: num('SOAK_NOISE_RATE', 40),
        serverPid: num('SOAK_SERVER_PID'),
        sampleMs: SAMPLE_S * 1000,
        onSample(s) {
            appendFileSync(csv, `${s.elapsedS},${s.rssKb ?? ''},${s.connectionsOpen}\n`);
            say(`${label} ${s.elapsedS}s: rss ${s.rssKb} kB, open ${s.connectionsOpen}, handshakes ${s.handshakes}, `
                + `triggers ${s.triggers}+${s.noiseTriggers}, failures hs ${s.handshakeFailures} sub ${s.subscribeFailures} `
                + `rest ${s.restStalls}/${s.restErrors}, controls ${s.controlsReceived.join('/')}`);
        },
        log: (line) => say(`${label}: ${line}`),
    };
    say(`${label}: ${opts.churners} churners for ${SECONDS} s, sampling every ${SAMPLE_S} s`);
    const r = await runChurn(opts);
    r.settings = {
        churners: opts.churners, lifetimeMs: opts.lifetimeMs, triggerRate: opts.triggerRate,
        noiseRate: opts.noiseRate, workers: opts.workers, lanes: r.lanes.length,
    };
    writeFileSync(env('SOAK_RESULT'), JSON.stringify(r, null, 2));
    say(`${label}: ${describeResult(r)}`);
}

// ---- report ---------------------------------------------------------------

function readCsv(path) {
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => {
        const [t, rss, open] = l.split(',').map((x) => (x === '' ? null : Number(x)));
        return { t, rss, open };
    }).filter((s) => s.rss !== null);
}

const mb = (kb) => (kb == null ? '–' : `${(kb / 1024).toFixed(1)} MB`);
// The sample at or just after t (the series starts at the first sample).
const at = (series, t) => series.find((s) => s.t >= t) || series[series.length - 1];

// Least-squares slope of RSS over the samples after warm-up, in kB per hour.
function slopeKbPerHour(series) {
    const pts = series.filter((s) => s.t >= WARMUP_S);
    if (pts.length < 3) return null;
    const n = pts.length;
    const mt = pts.reduce((a, s) => a + s.t, 0) / n;
    const mr = pts.reduce((a, s) => a + s.rss, 0) / n;
    const cov = pts.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0);
    const vt = pts.reduce((a, s) => a + (s.t - mt) ** 2, 0);
    return vt ? (cov / vt) * 3600 : null;
}

function figures(label) {
    const dir = env('SOAK_DIR');
    const series = readCsv(`${dir}/${label === 'hark' ? 'rss.csv' : `rss-${label}.csv`}`);
    const resultPath = `${dir}/result-${label}.json`;
    const r = existsSync(resultPath) ? JSON.parse(readFileSync(resultPath, 'utf8')) : null;
    const serverPath = `${dir}/server-${label}.txt`;
    const server = existsSync(serverPath) ? readFileSync(serverPath, 'utf8').trim() : 'unknown';
    if (!series.length || !r) return { label, series, r, server, ok: false };
    const warm = at(series, WARMUP_S);
    const end = series[series.length - 1];
    const max = series.reduce((a, s) => (s.rss > a.rss ? s : a));
    const ctl = r.perControl || [];
    const sum = (f) => ctl.reduce((a, c) => a + c[f], 0);
    return {
        label, series, r, server, ok: true, warm, end, max,
        growthKb: end.rss - warm.rss,
        slope: slopeKbPerHour(series),
        missing: sum('missing'), ooo: sum('outOfOrder'), dup: sum('duplicates'),
        maxGap: Math.max(0, ...ctl.map((c) => c.maxGapMs)),
    };
}

function report() {
    const labels = env('SOAK_LABELS', 'hark').split(/\s+/).filter(Boolean);
    const f = labels.map(figures);
    const hark = f.find((x) => x.label === 'hark' && x.ok);
    const peer = f.find((x) => x.label === 'soketi' && x.ok);
    const cols = f.filter((x) => x.ok);
    const ratio = (h, p, digits = 1) => (hark && peer && h > 0 && p != null ? `${(p / h).toFixed(digits)}×` : '');
    const s = hark || cols[0];
    const set = s ? s.r.settings : {};
    const pct = (x) => (x.growthKb / x.warm.rss * 100).toFixed(1);
    const out = [];
    out.push('### Churn soak');
    out.push('');
    out.push(`Generated by \`bench/soak.sh\`. ${set.churners} clients at a time connect, subscribe to three public,`
        + ' one private and one presence channel, send client events and drop abruptly (no close frame, TCP reset,'
        + ` half a frame, a few clean closes) after ${set.lifetimeMs?.join('–')} ms, then reconnect. Meanwhile`
        + ` ${set.triggerRate} REST publishes/s (one in ten a batch) go to two control subscribers`
        + `${set.workers >= 2 ? ' (one on each hark worker)' : ''} over ${set.lanes} keep-alive connections, one request`
        + ` in flight on each, and ${set.noiseRate}/s to the churners' channels. The controls must receive every publish`
        + ` in order; server RSS is sampled every ${SAMPLE_S} s. The load is offered at the same rates to every server;`
        + ' a server that answers REST requests more slowly gets fewer of them (one in flight per connection).');
    out.push('');
    out.push(`- date: ${env('SOAK_DATE')}, run took ${env('SOAK_TOOK')} s`);
    out.push(`- command: \`${env('SOAK_COMMAND')}\``);
    out.push(`- machine: ${cpus().length} cores, ${cpus()[0]?.model.trim()}, Linux ${release()}, `
        + `${Math.round(totalmem() / 2 ** 30)} GiB RAM; load average at the start ${env('SOAK_LOAD')}`);
    if (env('SOAK_HARK_DESC')) out.push(`- hark: ${env('SOAK_HARK_DESC')}`);
    if (env('SOAK_SOKETI_DESC')) out.push(`- Soketi: ${env('SOAK_SOKETI_DESC')}`);
    for (const x of f) if (!x.ok) out.push(`- ${x.label}: no result (${x.server})`);
    out.push('');
    if (cols.length) {
        const head = `| figure | ${cols.map((x) => x.label).join(' | ')} |${peer && hark ? ' Soketi / hark |' : ''}`;
        out.push(head);
        out.push(`| --- |${cols.map(() => ' ---: |').join('')}${peer && hark ? ' ---: |' : ''}`);
        const row = (name, fn, rfn) => out.push(`| ${name} | ${cols.map(fn).join(' | ')} |${peer && hark ? ` ${rfn ? rfn() : ''} |` : ''}`);
        row('RSS before the churn (controls only)', (x) => mb(x.series[0].rss), () => ratio(hark.series[0].rss, peer.series[0].rss));
        row(`RSS after warm-up (${at(s.series, WARMUP_S).t} s)`, (x) => mb(x.warm.rss), () => ratio(hark.warm.rss, peer.warm.rss));
        row('RSS at the end', (x) => mb(x.end.rss), () => ratio(hark.end.rss, peer.end.rss));
        row('RSS max', (x) => `${mb(x.max.rss)} (at ${x.max.t} s)`, () => ratio(hark.max.rss, peer.max.rss));
        row('growth after warm-up', (x) => `${x.growthKb >= 0 ? '+' : ''}${mb(x.growthKb)} (${pct(x)}%)`);
        row('trend after warm-up (least squares)', (x) => (x.slope == null ? '–' : `${x.slope >= 0 ? '+' : ''}${mb(x.slope)}/h`));
        row('connections made (handshakes)', (x) => `${x.r.handshakes} (${(x.r.handshakes / x.r.seconds).toFixed(0)}/s)`, () => ratio(hark.r.handshakes, peer.r.handshakes, 2));
        row('connections open, peak', (x) => x.r.connectionsOpenMax);
        row('handshakes / subscriptions unanswered in 10 s', (x) => `${x.r.handshakeFailures} / ${x.r.subscribeFailures}`);
        row('control publishes / to churners\' channels', (x) => `${x.r.triggers} / ${x.r.noiseTriggers}`);
        row('REST requests unanswered in 10 s / failed', (x) => `${x.r.restStalls} / ${x.r.restErrors}`);
        row('REST answer, slowest', (x) => `${x.r.restMaxMs} ms`);
        row('control events missing / out of order / duplicate', (x) => `${x.missing} / ${x.ooo} / ${x.dup}`);
        row('control: longest time without a delivery', (x) => `${x.maxGap} ms`);
        row('publishes to churners\' channels not sent (8 already in flight)', (x) => x.r.noiseSkipped);
        row('driver event-loop lag p99 / max (high: the client was the bottleneck)', (x) => `${x.r.driverLagMs.p99} / ${x.r.driverLagMs.max} ms`);
        row('churners closed by the server', (x) => JSON.stringify(x.r.serverCloses).replace(/[{}"]/g, '') || '0');
        row('server exit', (x) => x.server);
        out.push('');
        // the series, every 5 minutes (or six rows for a short run)
        const step = num('SOAK_TABLE_SECONDS', SECONDS >= 1800 ? 300 : Math.max(SAMPLE_S, Math.round(SECONDS / 6)));
        out.push(`RSS every ${step} s (connections open, as the driver counts them, in brackets):`);
        out.push('');
        out.push(`| elapsed | ${cols.map((x) => x.label).join(' | ')} |`);
        out.push(`| ---: |${cols.map(() => ' ---: |').join('')}`);
        const last = Math.max(...cols.map((x) => x.end.t));
        // rows at multiples of step, each showing the first sample at or after it
        const when = (t) => (t >= 120 && t % 60 === 0 ? `${t / 60} min` : `${t} s`);
        out.push(`| 0 s (before) | ${cols.map((x) => `${mb(x.series[0].rss)} (${x.series[0].open})`).join(' | ')} |`);
        for (let t = step; t < last; t += step) {
            if (cols.every((x) => x.series.find((q) => q.t >= t) === x.end)) break; // the end row follows
            out.push(`| ${when(t)} | ${cols.map((x) => {
                const p = x.series.find((q) => q.t >= t);
                return p ? `${mb(p.rss)} (${p.open})` : '–';
            }).join(' | ')} |`);
        }
        out.push(`| ${when(last)} (end) | ${cols.map((x) => `${mb(x.end.rss)} (${x.end.open})`).join(' | ')} |`);
        out.push('');
        out.push(`Raw samples: \`build/bench/soak/rss*.csv\` (elapsed_s, rss_kb, connections_open).`);
    }
    const md = out.join('\n') + '\n';
    writeFileSync(`${env('SOAK_DIR')}/summary.md`, md);
    process.stdout.write(md);
    // non-zero when a run found a problem, so a caller can tell
    const bad = cols.some((x) => x.r.handshakeFailures || x.r.subscribeFailures || x.r.restStalls || x.r.restErrors
        || x.missing || x.ooo || x.dup || x.r.controlDisconnects) || f.some((x) => !x.ok);
    process.exitCode = bad ? 1 : 0;
}

const mode = process.argv[2];
if (mode === 'run') await run();
else if (mode === 'report') report();
else {
    say('usage: node bench/soak.mjs run|report (bench/soak.sh sets the environment)');
    process.exitCode = 2;
}
