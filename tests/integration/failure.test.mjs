// A peer process dies mid-session: the other side learns it with the right
// close code, promptly. Peers run as separate node processes so that SIGKILL
// leaves no chance for a goodbye.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LIB_DIR, REPO_ROOT, openClient, spawnNode, startEchoBackend, startWsgate, waitClosed } from './lib/harness.mjs';

const ECHO_BACKEND = path.join(REPO_ROOT, 'examples', 'echo-backend.mjs');
const CLIENT_CHILD = path.join(LIB_DIR, 'ws-client-child.mjs');

const cleanups = [];
after(async () => {
    for (const f of cleanups.reverse()) await f();
});

describe('peer processes killed mid-session', () => {
    test('backend killed (SIGKILL) -> client gets 1011 within 2 s', async () => {
        const backend = await spawnNode(ECHO_BACKEND, ['0'], { readyRe: /listening on ws:\/\/127\.0\.0\.1:(\d+)/ });
        cleanups.push(() => backend.kill());
        const port = Number(backend.match[1]);
        // The command-line form: --listen/--backend, no config file.
        const gw = await startWsgate({ args: ['--listen', '127.0.0.1:0', '--backend', `ws://127.0.0.1:${port}`, '--workers', '1'] });
        cleanups.push(() => gw.stop());
        const c = await openClient(gw.url('/victim'));
        cleanups.push(() => c.close());
        c.ws.send('before');
        assert.equal((await c.nextMessage()).data.toString(), 'before', 'echo through the tunnel first');
        const t0 = Date.now();
        await backend.kill('SIGKILL');
        const info = await waitClosed(c, 2000, 'the client to be closed after the backend died');
        assert.equal(info.code, 1011, `close code ${info.code} "${info.reason}"`);
        assert.ok(Date.now() - t0 < 2000);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/victim', 3000, 'the access line');
        assert.equal(line.status, 101);
        gw.assertAlive();
    });

    test('client killed (SIGKILL) -> backend gets 1001 within 2 s', async () => {
        const be = await startEchoBackend();
        cleanups.push(() => be.close());
        const gw = await startWsgate({ args: ['--listen', '127.0.0.1:0', '--backend', be.url] });
        cleanups.push(() => gw.stop());
        const client = await spawnNode(CLIENT_CHILD, [gw.url('/doomed')], { readyRe: /ready/ });
        cleanups.push(() => client.kill());
        const bc = await be.nextConnection();
        assert.equal(bc.received.length, 1, 'the child sent its hello through the tunnel');
        const t0 = Date.now();
        await client.kill('SIGKILL');
        const info = await waitClosed(bc, 2000, 'the backend to be closed after the client died');
        assert.equal(info.code, 1001, `close code ${info.code} "${info.reason}"`);
        assert.ok(Date.now() - t0 < 2000);
        await gw.waitForLog((l) => l.msg === 'access' && l.path === '/doomed', 3000, 'the access line');
        gw.assertAlive();
    });
});
