// Timers and backpressure: a peer that is really dead is still found within
// ping_interval + pong_timeout even when data waits for it, and no timer
// fires because of what wsgate itself holds back (idle_timeout while data
// waits, close_timeout while a slow reader is still taking its data).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { delay, gatewayConfig, openClient, startEchoBackend, startWsgate, waitClosed, waitUntil } from './lib/harness.mjs';
import { MIB, assertNumbered, numbered, streamer } from './lib/stream.mjs';

const COUNT = 48;
const SLACK_MS = 1000; // timer wheel ticks, event loop and CI scheduling

describe('dead peers are found within ping_interval + pong_timeout (1s + 1s, max_stall off)', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ echo: false });
        gw = await startWsgate({
            config: gatewayConfig(be.port, { ping_interval: '1s', pong_timeout: '1s', max_stall: 'off', close_timeout: '2s' }),
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    async function expectClosed(peer, t0, code, reason, what) {
        const info = await waitClosed(peer, 2000 + SLACK_MS + 3000, what);
        const took = Date.now() - t0;
        assert.equal(info.code, code, `${what}: close ${JSON.stringify(info)}`);
        assert.equal(info.reason, reason);
        assert.ok(took >= 1500, `closed after ${took} ms, before a ping could have been due and unanswered`);
        assert.ok(took <= 2000 + SLACK_MS, `closed after ${took} ms, later than ping_interval + pong_timeout (2 s) + ${SLACK_MS} ms`);
        return took;
    }

    test('a backend that stops answering (socket open, nothing read, nothing sent), nothing waiting for it: pong_timeout', async (t) => {
        const c = await openClient(gw.url('/dead-backend-idle'));
        const bc = await be.nextConnection();
        bc.ws._socket.pause();
        try {
            const took = await expectClosed(c, Date.now(), 1011, 'backend went away', 'the client of the dead backend to be closed');
            t.diagnostic(`closed after ${took} ms`);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/dead-backend-idle', 5000, 'the access line');
            assert.equal(line.error, 'pong_timeout', JSON.stringify(line));
            assert.equal(line.close_code, 1006);
        } finally {
            c.close();
        }
    });

    test('the same backend while the client streams to it: found as a slow consumer, not hidden by the stall', async (t) => {
        const c = await openClient(gw.url('/dead-backend-busy'));
        const bc = await be.nextConnection();
        bc.ws._socket.pause();
        const t0 = Date.now();
        const st = streamer(c.ws, COUNT, MIB);
        try {
            const took = await expectClosed(c, t0, 1011, 'backend is not reading', 'the client of the dead backend to be closed');
            t.diagnostic(`closed after ${took} ms; the client had sent ${st.acked} MiB`);
            assert.ok(st.acked < COUNT, 'the stream never stalled');
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/dead-backend-busy', 5000, 'the access line');
            assert.equal(line.error, 'slow_consumer', JSON.stringify(line));
            assert.equal(line.close_reason, 'backend is not reading');
        } finally {
            c.close();
        }
    });

    test('a client that stops answering while the backend streams to it: found as a slow consumer, the backend gets 1001', async (t) => {
        const c = await openClient(gw.url('/dead-client-busy'));
        c.ws._socket.pause();
        const bc = await be.nextConnection();
        const t0 = Date.now();
        const st = streamer(bc.ws, COUNT, MIB);
        try {
            const took = await expectClosed(bc, t0, 1001, 'client is not reading', 'the backend of the dead client to be closed');
            t.diagnostic(`closed after ${took} ms; the backend had sent ${st.acked} MiB`);
            assert.ok(st.acked < COUNT, 'the stream never stalled');
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/dead-client-busy', 5000, 'the access line');
            assert.equal(line.error, 'slow_consumer', JSON.stringify(line));
            assert.equal(line.close_reason, 'client is not reading');
        } finally {
            c.close();
        }
    });
});

describe('idle_timeout 1s does not count time data waits in wsgate', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ echo: false });
        gw = await startWsgate({ config: gatewayConfig(be.port, { idle_timeout: '1s', ping_interval: 'off', max_stall: 'off' }) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('a client paused for 3 s while 48 MiB wait for it is not idle; once it has read everything, it is', { timeout: 60000 }, async () => {
        const c = await openClient(gw.url('/idle-held'));
        c.ws._socket.pause();
        const bc = await be.nextConnection();
        const st = streamer(bc.ws, COUNT, MIB);
        try {
            await delay(3000); // the subject: 3 idle_timeouts pass with data held for the client
            assert.equal(bc.closeInfo, null, `the backend was closed: ${JSON.stringify(bc.closeInfo)}`);
            assert.equal(gw.accessLogs().find((l) => l.path === '/idle-held'), undefined, 'the pair was closed while data waited');
            assert.ok(st.acked < COUNT, 'the stream never stalled');
            c.ws._socket.resume();
            await waitUntil(() => c.received.length === COUNT, {
                timeoutMs: 30000,
                what: `all ${COUNT} messages at the client`,
                detail: () => `received ${c.received.length}, close ${JSON.stringify(c.closeInfo)}`,
            });
            const lastAt = Date.now();
            assertNumbered(c.received, COUNT, MIB);
            const info = await waitClosed(c, 5000, 'the idle pair to be closed');
            const idle = Date.now() - lastAt;
            assert.equal(info.code, 1001, JSON.stringify(info));
            assert.equal(info.reason, 'idle timeout');
            assert.ok(idle >= 800, `closed ${idle} ms after the last message arrived; idle_timeout is 1s`);
        } finally {
            c.close();
        }
    });
});

describe('close_timeout 1s does not cut a close handshake while the reader still takes its data', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ echo: false });
        gw = await startWsgate({ config: gatewayConfig(be.port, { close_timeout: '1s', ping_interval: 'off' }) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('the client closes while 48 MiB are on their way to it and reads them at ~3 MB/s: it gets all of them, then the close', { timeout: 60000 }, async (t) => {
        const c = await openClient(gw.url('/slow-close'));
        const sock = c.ws._socket;
        sock.pause();
        const bc = await be.nextConnection();
        const st = streamer(bc.ws, COUNT, MIB);
        let resumer;
        try {
            await waitUntil(() => st.acked >= 4 && st.queued < COUNT, { timeoutMs: 10000, what: 'the stream to stall toward the paused client' });
            c.ws.close(1000, 'enough'); // the backend answers once the data ahead of its close is read
            const t0 = Date.now();
            // A slow reader: one socket read (at most 64 KiB) every 20 ms.
            sock.on('data', () => sock.pause());
            resumer = setInterval(() => sock.resume(), 20);
            const info = await waitClosed(c, 40000, "the backend's close to reach the slow client");
            const took = Date.now() - t0;
            await st.done;
            t.diagnostic(`close handshake took ${took} ms; the backend sent ${st.acked} messages before closing`);
            assert.ok(took > 2000, `the close took ${took} ms: the reader was not slow enough to test close_timeout 1s`);
            assert.equal(info.code, 1000, JSON.stringify(info));
            assertNumbered(c.received, st.acked, MIB);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/slow-close', 5000, 'the access line');
            assert.equal(line.error, 'ok', JSON.stringify(line));
            assert.equal(line.closed_by, 'client');
            assert.equal(line.bytes_out, st.acked * MIB);
        } finally {
            clearInterval(resumer);
            c.close();
        }
    });
});

// Keep numbered() referenced for readers of this file: it is what the
// streams above carry.
void numbered;
