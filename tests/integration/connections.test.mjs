// Connection limits and many concurrent connection pairs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gatewayConfig, openClient, rawRequest, startEchoBackend, startWsgate, upgradeRequest, waitClosed, wsClient, withTimeout } from './lib/harness.mjs';

describe('max_connections: 3', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend();
        gw = await startWsgate({ config: gatewayConfig(be.port, { max_connections: 3, workers: 2 }) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('the 4th concurrent client gets 503; a freed slot is usable again', async () => {
        const clients = [];
        try {
            for (let i = 0; i < 3; i++) {
                clients.push(await openClient(gw.url(`/c${i}`)));
                await be.nextConnection();
            }
            const fourth = wsClient(gw.url('/c3'));
            const err = await withTimeout(
                fourth.opened.then(
                    () => null,
                    (e) => e,
                ),
                5000,
                'the 4th client to be answered',
            );
            fourth.close();
            assert.ok(err, 'the 4th concurrent connection was accepted');
            assert.equal(err.status, 503, `4th client: ${err.message}`);
            assert.equal(be.tcpConnections, 3, 'the backend saw a connection for the refused client');

            // A raw request sees the same.
            const { conn, res } = await rawRequest(gw.port, upgradeRequest({ path: '/c4', host: `127.0.0.1:${gw.port}` }));
            conn.destroy();
            assert.equal(res.status, 503, res.startLine);

            // Free one slot: once its access line is written, a new client fits.
            clients[0].ws.close(1000);
            await waitClosed(clients[0]);
            await gw.waitForLog((l) => l.msg === 'access' && l.path === '/c0', 3000, 'the access line of the closed client');
            clients.push(await openClient(gw.url('/c5')));
            await be.nextConnection();
            clients[3].ws.send('fits');
            assert.equal((await clients[3].nextMessage()).data.toString(), 'fits');
        } finally {
            for (const c of clients) c.close();
        }
    });
});

describe('1,000 concurrent connections', () => {
    const N = 1000;
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ backlog: 4096 });
        gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 2, max_connections: 4096 }) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('1,000 clients open at once, each echoes one message (workers 2)', { timeout: 60000 }, async () => {
        assert.equal(gw.listening.workers, 2);
        const clients = [];
        try {
            // Open in windows of 100 so that a slow accept queue cannot time
            // a handshake out; all N stay open.
            for (let i = 0; i < N; i += 100) {
                const batch = [];
                for (let j = i; j < Math.min(N, i + 100); j++) batch.push(openClient(gw.url(`/many/${j}`), {}, 15000));
                clients.push(...(await Promise.all(batch)));
            }
            assert.equal(clients.length, N);
            assert.equal(be.open, N, `backend has ${be.open} open connections`);
            const echoes = clients.map(async (c, i) => {
                const text = `message ${i} ${'x'.repeat(i % 200)}`;
                c.ws.send(text);
                const m = await c.nextMessage(15000);
                assert.equal(m.data.toString(), text, `client ${i}`);
            });
            await Promise.all(echoes);
            for (const c of clients) c.ws.close(1000, 'done');
            await withTimeout(
                Promise.all(clients.map((c) => c.closed)),
                15000,
                'all clients to finish the close handshake',
            );
            for (const [i, c] of clients.entries()) assert.equal(c.closeInfo.code, 1000, `client ${i} close`);
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && String(l.path).startsWith('/many/'), N, 15000, `${N} access lines`);
            assert.equal(lines.filter((l) => l.status === 101 && l.msgs_in === 1 && l.msgs_out === 1).length, N);
        } finally {
            for (const c of clients) c.close();
        }
    });
});
