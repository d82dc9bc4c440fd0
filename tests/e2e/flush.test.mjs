// The flush list: a connection that dies in the same loop iteration as a
// publish must not take the other subscribers' queued output with it.
// Determinism comes from stopping hark (SIGSTOP) while the trigger request
// and the disconnect are both sent, so that both are read in one epoll batch
// when it continues: the trigger queues output for V and X, then X's EOF
// tears X down while it is still on the flush list.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { APPS, startHark, rest } from './lib/harness.mjs';
import { scope, rawReady, uniq, signedTriggerRequest, until, sleep } from './lib/clients.mjs';

describe('flush list: a disconnect in the same iteration as a publish', () => {
    let server;
    before(async () => {
        // one worker: every connection shares one flush list
        server = await startHark({ config: { workers: 1 } });
    });
    after(async () => { await server.stop(); });

    for (const order of ['survivor subscribed first', 'survivor subscribed last']) {
        it(`keeps delivering to the surviving subscriber (${order})`, async () => {
            const s = scope();
            const sdk = rest(server);
            try {
                const ch = uniq('flush-');
                const v = await rawReady(s, server);
                const x = await rawReady(s, server);
                const [first, second] = order.endsWith('first') ? [v, x] : [x, v];
                assert.equal((await first.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');
                assert.equal((await second.subscribe(ch)).msg.event, 'pusher_internal:subscription_succeeded');

                // A keep-alive HTTP connection, already accepted, for the trigger.
                const http = net.connect({ host: server.host, port: server.port });
                s.add(() => http.destroy());
                await new Promise((r) => http.once('connect', r));
                let answers = '';
                http.on('data', (d) => { answers += d.toString('latin1'); });
                http.write(`GET /up HTTP/1.1\r\nHost: x\r\n\r\n`);
                await until(() => /HTTP\/1\.1 200/.test(answers), 'the keep-alive connection to answer');

                process.kill(server.proc.pid, 'SIGSTOP');
                try {
                    http.write(signedTriggerRequest(server, APPS.main, ch, 'same-iteration', { n: 1 }));
                    await sleep(50);
                    x.terminate(); // EOF arrives after the trigger, in the same batch
                    await sleep(50);
                } finally {
                    process.kill(server.proc.pid, 'SIGCONT');
                }
                await until(() => (answers.match(/HTTP\/1\.1 200/g) || []).length === 2, 'the trigger to answer');
                const got = await v.take({ event: 'same-iteration', channel: ch }, 3000);
                assert.deepEqual(got.parsed, { n: 1 });

                // and everything after it still arrives, pongs included
                await sdk.trigger(ch, 'after', { n: 2 });
                assert.deepEqual((await v.take({ event: 'after', channel: ch }, 3000)).parsed, { n: 2 });
                await v.ping(3000);
            } finally {
                await s.close();
            }
        });
    }
});
