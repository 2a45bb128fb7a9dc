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

describe('the open-file limit', () => {
    let be;
    before(async () => {
        be = await startEchoBackend();
    });
    after(async () => {
        await be?.close();
    });

    test('a low soft limit is raised to the hard limit', async () => {
        const gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 1 }), prefix: ['prlimit', '--nofile=256:4096', '--'] });
        try {
            const limits = (await import('node:fs')).readFileSync(`/proc/${gw.pid}/limits`, 'utf8');
            const m = /Max open files\s+(\d+)\s+(\d+)/.exec(limits);
            assert.ok(m, limits);
            assert.equal(+m[1], 4096, 'soft limit after start');
            const listening = gw.logs.find((l) => l.msg === 'listening');
            assert.equal(listening.max_connections, (4096 - 64) / 2, 'auto max_connections fits the raised limit');
        } finally {
            await gw.stop();
        }
    });

    test('max_connections: auto fits the limit; the next client gets 503', async () => {
        // 80 descriptors: 64 in reserve, so (80 - 64) / 2 = 8 pairs.
        const gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 1 }), prefix: ['prlimit', '--nofile=80:80', '--'] });
        const clients = [];
        try {
            const listening = gw.logs.find((l) => l.msg === 'listening');
            assert.equal(listening.max_connections, 8);
            assert.ok(!gw.logs.some((l) => l.level === 'warn'), 'auto does not warn');
            for (let i = 0; i < 8; i++) {
                clients.push(await openClient(gw.url(`/f${i}`)));
                await be.nextConnection();
            }
            const { conn, res } = await rawRequest(gw.port, upgradeRequest({ path: '/f8', host: `127.0.0.1:${gw.port}` }));
            conn.destroy();
            assert.equal(res.status, 503, res.startLine);
            clients[7].ws.send('still relaying');
            assert.equal((await clients[7].nextMessage()).data.toString(), 'still relaying');
        } finally {
            for (const c of clients) c.close();
            await gw.stop();
        }
    });

    test('an explicit max_connections over the limit is lowered, with a warning', async () => {
        const gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 1, max_connections: 100 }), prefix: ['prlimit', '--nofile=80:80', '--'] });
        try {
            const warn = await gw.waitForLog((l) => l.level === 'warn' && /max_connections lowered/.test(l.msg), 3000, 'the warning');
            assert.equal(warn.max_connections, 100);
            assert.equal(warn.effective, 8);
            assert.equal(warn.fd_limit, 80);
            assert.equal(gw.logs.find((l) => l.msg === 'listening').max_connections, 8);
        } finally {
            await gw.stop();
        }
    });
});

describe('out of descriptors', () => {
    let be;
    before(async () => {
        be = await startEchoBackend();
    });
    after(async () => {
        await be?.close();
    });

    test('connections left in the backlog at EMFILE are served once descriptors free up', async () => {
        const net = await import('node:net');
        // 80 descriptors: 8 pairs fit; refused clients still take one each
        // while they get their 503, so a flood runs the worker out.
        const gw = await startWsgate({ config: gatewayConfig(be.port, { workers: 1 }), prefix: ['prlimit', '--nofile=80:80', '--'] });
        const flood = [];
        try {
            const connect = () =>
                new Promise((resolve, reject) => {
                    const s = net.connect({ port: gw.port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
                    s.on('error', reject);
                    s.data = '';
                    s.on('data', (d) => (s.data += d));
                });
            for (let i = 0; i < 90; i++) flood.push(await connect());
            await gw.waitForLog((l) => l.msg === 'accept failed', 5000, 'the worker to run out of descriptors');
            // Free the descriptors of the ones that were accepted, keep the
            // last ten (still in the listen backlog) waiting; no new
            // connection arrives to wake the listener.
            const waiting = flood.slice(-10);
            for (const s of flood.slice(0, -10)) s.destroy();
            // Each waiting client asks for an upgrade; whether it fits under
            // max_connections (101) or not (503), it must be answered, which
            // only happens if wsgate accepts it.
            for (const s of waiting) s.write(upgradeRequest({ path: '/late', host: `127.0.0.1:${gw.port}` }));
            await withTimeout(
                Promise.all(waiting.map((s) => new Promise((resolve) => {
                    const check = () => (/^HTTP\/1\.1 (101|503) /.test(s.data) ? resolve() : setTimeout(check, 20));
                    check();
                }))),
                5000,
                'the backlogged connections to be accepted and answered',
            );
        } finally {
            for (const s of flood) s.destroy();
            await gw.stop();
        }
    });
});
