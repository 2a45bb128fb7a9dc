// Graceful shutdown on SIGTERM.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { OP, gatewayConfig, openClient, rawWsClient, startEchoBackend, startWsgate, waitClosed, withTimeout } from './lib/harness.mjs';

const cleanups = [];
after(async () => {
    for (const f of cleanups.reverse()) await f();
});

describe('graceful shutdown', () => {
    test('SIGTERM with 3 open connections: 1001 to every client and backend, exit 0 within shutdown_timeout', async () => {
        const be = await startEchoBackend();
        cleanups.push(() => be.close());
        const gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 2, shutdown_timeout: '3s' }) });
        cleanups.push(() => gw.stop());
        const clients = [];
        const backends = [];
        cleanups.push(() => clients.forEach((c) => c.close()));
        for (let i = 0; i < 3; i++) {
            const c = await openClient(gw.url(`/s${i}`));
            clients.push(c);
            backends.push(await be.nextConnection());
            c.ws.send(`hi ${i}`);
            assert.equal((await c.nextMessage()).data.toString(), `hi ${i}`);
        }
        const t0 = Date.now();
        gw.signal('SIGTERM');
        const infos = await Promise.all(clients.map((c, i) => waitClosed(c, 3500, `client ${i} to be closed`)));
        infos.forEach((info, i) => assert.equal(info.code, 1001, `client ${i} got ${info.code} "${info.reason}"`));
        const binfos = await Promise.all(backends.map((b, i) => waitClosed(b, 3500, `backend connection ${i} to be closed`)));
        binfos.forEach((info, i) => assert.equal(info.code, 1001, `backend connection ${i} got ${info.code} "${info.reason}"`));
        const exit = await withTimeout(gw.exited, 4000, 'wsgate to exit after SIGTERM');
        const took = Date.now() - t0;
        assert.deepEqual(exit, { code: 0, signal: null }, `exit ${JSON.stringify(exit)}`);
        assert.ok(took <= 3500, `exit took ${took} ms, shutdown_timeout is 3s`);
        const access = gw.accessLogs().filter((l) => /^\/s\d$/.test(l.path));
        assert.equal(access.length, 3, 'one access line per connection pair before exit');
    });

    test('a client that never completes the close handshake does not hold shutdown past shutdown_timeout', async () => {
        const be = await startEchoBackend();
        cleanups.push(() => be.close());
        const gw = await startWsgate({ config: gatewayConfig(be.port, { shutdown_timeout: '1s', close_timeout: '5s' }) });
        cleanups.push(() => gw.stop());
        const { conn } = await rawWsClient(gw.port, { path: '/stubborn' });
        cleanups.push(() => conn.destroy());
        await be.nextConnection();
        const t0 = Date.now();
        gw.signal('SIGTERM');
        const cl = await conn.readClose(2000);
        assert.equal(cl.code, 1001);
        assert.equal(cl.opcode, OP.CLOSE);
        const exit = await withTimeout(gw.exited, 3000, 'wsgate to exit although a client ignores the close');
        const took = Date.now() - t0;
        assert.equal(exit.signal, null, `wsgate died by ${exit.signal}`);
        assert.ok(took <= 2000, `exit took ${took} ms with shutdown_timeout 1s`);
        await conn.waitGone(1000, 'the stubborn client socket to be closed');
    });
});
