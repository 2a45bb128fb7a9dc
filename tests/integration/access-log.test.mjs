// One access line per finished connection pair, with its counters.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gatewayConfig, openClient, startEchoBackend, startWsgate, waitClosed } from './lib/harness.mjs';

let be;
let gw;
before(async () => {
    be = await startEchoBackend();
    gw = await startWsgate({ config: gatewayConfig(be.port) });
});
after(async () => {
    await gw?.stop();
    await be?.close();
});

test('client sends 2 messages and closes 1000 "bye": the access line says so', async () => {
    const c = await openClient(gw.url('/chat?x=1'));
    try {
        const bc = await be.nextConnection();
        const rid = bc.headers['x-request-id'];
        const localPort = c.ws._socket.localPort;
        c.ws.send('hello');
        assert.equal((await c.nextMessage()).data.toString(), 'hello');
        c.ws.send(Buffer.from([1, 2, 3, 4, 5, 6, 7]));
        assert.equal((await c.nextMessage()).data.length, 7);
        c.ws.close(1000, 'bye');
        await waitClosed(c);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/chat?x=1', 5000, 'the access line for /chat?x=1');
        assert.equal(line.level, 'info');
        assert.equal(typeof line.time, 'string');
        assert.equal(line.status, 101);
        assert.equal(line.path, '/chat?x=1');
        assert.match(line.client, /^127\.0\.0\.1:\d+$/);
        assert.equal(line.client, `127.0.0.1:${localPort}`, 'client is the peer address of the client connection');
        assert.equal(line.backend, `127.0.0.1:${be.port}`);
        assert.equal(typeof line.request_id, 'string');
        assert.ok(line.request_id.length > 0);
        if (rid) assert.equal(line.request_id, rid);
        assert.equal(line.msgs_in, 2);
        assert.equal(line.bytes_in, 5 + 7);
        assert.equal(line.msgs_out, 2);
        assert.equal(line.bytes_out, 5 + 7);
        assert.equal(line.close_code, 1000);
        assert.equal(line.close_reason, 'bye');
        assert.equal(line.closed_by, 'client');
        assert.equal(line.error, 'ok');
        assert.equal(typeof line.duration_ms, 'number');
        assert.ok(line.duration_ms >= 0);
        assert.equal(gw.accessLogs().filter((l) => l.path === '/chat?x=1').length, 1, 'exactly one access line for the pair');
    } finally {
        c.close();
    }
});

test('backend closes 4002 "y": closed_by backend', async () => {
    const c = await openClient(gw.url('/by-backend'));
    try {
        const bc = await be.nextConnection();
        c.ws.send('one');
        await c.nextMessage();
        bc.ws.close(4002, 'y');
        await waitClosed(c);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/by-backend', 5000, 'the access line for /by-backend');
        assert.equal(line.closed_by, 'backend');
        assert.equal(line.close_code, 4002);
        assert.equal(line.close_reason, 'y');
        assert.equal(line.msgs_in, 1);
        assert.equal(line.msgs_out, 1);
    } finally {
        c.close();
    }
});

test('a connection closed before sending a byte is not logged at info level; a request is', async () => {
    const net = await import('node:net');
    const before = gw.accessLogs().length;
    await new Promise((resolve, reject) => {
        const s = net.connect(gw.port, '127.0.0.1', () => s.end());
        s.on('error', reject);
        s.on('close', resolve);
    });
    // A real request on another connection after the probe: its line proves
    // the probe's close was processed before it, on one of the workers.
    const c = await openClient(gw.url('/after-probe'));
    c.close();
    await gw.waitForLog((l) => l.msg === 'access' && l.path === '/after-probe', 5000, 'the access line for /after-probe');
    const lines = gw.accessLogs().slice(before);
    assert.deepEqual(lines.map((l) => l.path), ['/after-probe'], 'only the real request is logged');
});
