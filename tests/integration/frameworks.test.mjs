// Real-time frameworks with their default settings, through wsgate: their
// own servers and clients from npm. Socket.IO starts with HTTP long-polling
// and upgrades to WebSocket on the same connection pool, so it needs plain
// HTTP, keep-alive and stickiness across several backends; SockJS asks
// /info over HTTP before anything else.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import sockjs from 'sockjs';
import SockJS from 'sockjs-client';
import { startWsgate, waitUntil } from './lib/harness.mjs';

async function listen(server, port = 0) {
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    return server.address().port;
}

/** A Socket.IO backend named `name`: echoes events with an ack, and
 * answers "whoami". */
async function ioBackend(name, port = 0) {
    const server = http.createServer();
    const io = new IoServer(server);
    const be = { name, server, io, transports: [] };
    io.on('connection', (socket) => {
        be.transports.push(socket.conn.transport.name);
        socket.conn.on('upgrade', (t) => be.transports.push(`upgraded:${t.name}`));
        socket.on('echo', (msg, ack) => ack({ from: name, msg }));
        socket.on('whoami', (ack) => ack(name));
        socket.on('start', (n) => {
            be.acked = 0;
            for (let i = 0; i < n; i++) socket.emit('tick', i, (got) => got === i && be.acked++);
        });
    });
    be.port = await listen(server, port);
    be.close = () =>
        new Promise((r) => {
            io.close();
            server.closeAllConnections?.();
            server.close(() => r());
        });
    return be;
}

describe('Socket.IO, default transports, two backends behind sticky sessions', () => {
    let a;
    let b;
    let gw;
    before(async () => {
        a = await ioBackend('a');
        b = await ioBackend('b');
        gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  io:
    backends: [ws://127.0.0.1:${a.port}, ws://127.0.0.1:${b.port}]
    sticky: {cookie: IOSTICK}
    health_check: {type: tcp, interval: 200ms, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 2}
routes:
  - {upstream: io}
`,
        });
    });
    after(async () => {
        await gw?.stop();
        await a?.close();
        await b?.close();
    });

    test('connects by polling, upgrades, 100 events each way with acks, survives its backend restarting', { timeout: 60000 }, async () => {
        const socket = ioClient(`http://127.0.0.1:${gw.port}`, { withCredentials: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
        try {
            await new Promise((res, rej) => {
                socket.once('connect', res);
                socket.once('connect_error', rej);
            });
            assert.equal(socket.io.engine.transport.name === 'polling' || socket.io.engine.transport.name === 'websocket', true);
            await waitUntil(() => socket.io.engine.transport.name === 'websocket', { timeoutMs: 5000, what: 'the upgrade to websocket' });
            const owner = await socket.timeout(2000).emitWithAck('whoami');
            const be = owner === 'a' ? a : b;
            assert.deepEqual(be.transports.slice(0, 2), ['polling', 'upgraded:websocket']);
            for (let i = 0; i < 100; i++) {
                const r = await socket.timeout(2000).emitWithAck('echo', `m${i}`);
                assert.deepEqual(r, { from: owner, msg: `m${i}` }, 'every event went to the backend of the session');
            }
            const ticks = [];
            socket.on('tick', (i, ack) => {
                ticks.push(i);
                ack(i);
            });
            socket.emit('start', 100);
            await waitUntil(() => ticks.length === 100 && be.acked === 100, { timeoutMs: 5000, what: '100 events from the server, each acknowledged' });
            assert.deepEqual(ticks, Array.from({ length: 100 }, (_, i) => i));

            // The backend goes away: the client reconnects to the other one.
            await be.close();
            await waitUntil(() => socket.connected === false, { timeoutMs: 5000, what: 'the client to see the backend go' });
            await waitUntil(() => socket.connected, { timeoutMs: 20000, intervalMs: 50, what: 'the client to reconnect' });
            const other = await socket.timeout(2000).emitWithAck('whoami');
            assert.notEqual(other, owner);
            assert.deepEqual(await socket.timeout(2000).emitWithAck('echo', 'after'), { from: other, msg: 'after' });
        } finally {
            socket.close();
        }
    });
});

describe('SockJS', () => {
    let server;
    let gw;
    before(async () => {
        server = http.createServer();
        const echo = sockjs.createServer({ log: () => {} });
        echo.on('connection', (conn) => conn.on('data', (m) => conn.write(m)));
        echo.installHandlers(server, { prefix: '/echo' });
        const port = await listen(server);
        // A streaming transport's exchange may still be open at the end:
        // on SIGTERM wsgate lets it run up to shutdown_timeout, which must
        // stay under the harness's 8 s wait for the exit.
        gw = await startWsgate({ config: `listen: 127.0.0.1:0\nworkers: 1\nshutdown_timeout: 2s\nroutes:\n  - {path: /, backend: ws://127.0.0.1:${port}}\n` });
    });
    after(async () => {
        try {
            await gw?.stop();
        } finally {
            server.closeAllConnections?.();
            await new Promise((r) => server.close(() => r()));
        }
    });

    for (const [what, opts] of [
        ['default transports', {}],
        ['WebSocket only', { transports: ['websocket'] }],
        ['XHR streaming only', { transports: ['xhr-streaming'] }],
        ['XHR polling only', { transports: ['xhr-polling'] }],
    ]) {
        test(`${what}: opens and echoes 50 messages`, { timeout: 30000 }, async () => {
            const sock = new SockJS(`http://127.0.0.1:${gw.port}/echo`, null, opts);
            const got = [];
            try {
                await new Promise((res, rej) => {
                    sock.onopen = res;
                    sock.onclose = (e) => rej(new Error(`closed ${e.code} ${e.reason}`));
                });
                sock.onmessage = (e) => got.push(e.data);
                for (let i = 0; i < 50; i++) sock.send(`m${i}`);
                await waitUntil(() => got.length === 50, { timeoutMs: 10000, what: '50 echoes' });
                assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => `m${i}`));
            } finally {
                sock.close();
            }
        });
    }
});
