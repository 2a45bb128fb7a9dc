// A side that stops reading while the other streams (a phone in a tunnel, a
// paused tab, a slow consumer). Backpressure is wsgate's own doing, so it
// must never make keepalive blame the side wsgate stopped reading; a side
// that reads nothing for max_stall is closed as a slow consumer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gatewayConfig, openClient, startEchoBackend, startWsgate, waitClosed, waitUntil } from './lib/harness.mjs';
import { MIB, assertNumbered, assertTicks, streamer, ticker } from './lib/stream.mjs';

const COUNT = 48; // 48 MiB: more than every buffer on the path holds, so the sender stalls

/** Wait `ms` of test time, failing early if `bad()` returns a reason. */
async function holdFor(ms, bad) {
    const t0 = Date.now();
    await waitUntil(
        () => {
            const why = bad();
            if (why) throw new Error(`after ${Date.now() - t0} ms: ${why}`);
            return Date.now() - t0 >= ms;
        },
        { timeoutMs: ms + 5000, intervalMs: 50, what: `${ms} ms to pass` },
    );
}

describe('keepalive and backpressure (ping_interval 3s, pong_timeout 2s)', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ echo: false, pauseOnConnect: false });
        gw = await startWsgate({ config: gatewayConfig(be.port, { ping_interval: '3s', pong_timeout: '2s' }) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    const noAccessLine = (p) => () => {
        const l = gw.accessLogs().find((x) => x.path === p);
        return l ? `the pair was closed: ${JSON.stringify(l)}` : null;
    };

    test('a client that stops reading for 12 s while the backend streams 1 MiB messages stays connected, then gets every byte in order', { timeout: 90000 }, async (t) => {
        const c = await openClient(gw.url('/slow-client'));
        c.ws._socket.pause(); // alive, but reads nothing
        const bc = await be.nextConnection();
        const alive = ticker(c.ws, 1000, 'client alive');
        const st = streamer(bc.ws, COUNT, MIB);
        try {
            await holdFor(12000, () => noAccessLine('/slow-client')() ?? (bc.closeInfo && `backend closed ${JSON.stringify(bc.closeInfo)}`));
            t.diagnostic(`after 12 s: backend sent ${st.acked} of ${COUNT} MiB, backend got ${bc.received.length} ticks, ${bc.pings.length} pings`);
            assert.ok(st.acked < COUNT, 'the backend was never held back: the test did not stall anything');
            assert.equal(c.received.length, 0, 'the paused client read messages');
            assert.ok(bc.received.length >= 10, `the client's messages stopped reaching the backend (${bc.received.length})`);
            alive.stop();
            c.ws._socket.resume();
            await waitUntil(() => c.received.length === COUNT, {
                timeoutMs: 30000,
                what: `all ${COUNT} messages at the client`,
                detail: () => `received ${c.received.length}, backend acked ${st.acked}, client close ${JSON.stringify(c.closeInfo)}`,
            });
            assertNumbered(c.received, COUNT, MIB);
            await waitUntil(() => bc.received.length === alive.sent, { timeoutMs: 5000, what: "all the client's messages at the backend" });
            assertTicks(bc.received, alive.sent, 'client alive');
            c.ws.close(1000, 'done');
            assert.equal((await waitClosed(c, 5000)).code, 1000);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/slow-client', 5000, 'the access line');
            assert.equal(line.error, 'ok', JSON.stringify(line));
            assert.equal(line.close_code, 1000);
        } finally {
            alive.stop();
            c.close();
        }
    });

    test('a backend that stops reading for 12 s while the client streams 1 MiB messages stays connected, then gets every byte in order', { timeout: 90000 }, async (t) => {
        const c = await openClient(gw.url('/slow-backend'));
        const bc = await be.nextConnection();
        bc.ws._socket.pause(); // alive, but reads nothing
        const alive = ticker(bc.ws, 1000, 'backend alive');
        const st = streamer(c.ws, COUNT, MIB);
        try {
            await holdFor(12000, () => noAccessLine('/slow-backend')() ?? (c.closeInfo && `client closed ${JSON.stringify(c.closeInfo)}`));
            t.diagnostic(`after 12 s: client sent ${st.acked} of ${COUNT} MiB, client got ${c.received.length} ticks, ${c.pings.length} pings`);
            assert.ok(st.acked < COUNT, 'the client was never held back: the test did not stall anything');
            assert.equal(bc.received.length, 0, 'the paused backend read messages');
            assert.ok(c.received.length >= 10, `the backend's messages stopped reaching the client (${c.received.length})`);
            alive.stop();
            bc.ws._socket.resume();
            await waitUntil(() => bc.received.length === COUNT, {
                timeoutMs: 30000,
                what: `all ${COUNT} messages at the backend`,
                detail: () => `received ${bc.received.length}, client acked ${st.acked}, backend close ${JSON.stringify(bc.closeInfo)}`,
            });
            assertNumbered(bc.received, COUNT, MIB);
            await waitUntil(() => c.received.length === alive.sent, { timeoutMs: 5000, what: "all the backend's messages at the client" });
            assertTicks(c.received, alive.sent, 'backend alive');
            c.ws.close(1000, 'done');
            assert.equal((await waitClosed(c, 5000)).code, 1000);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/slow-backend', 5000, 'the access line');
            assert.equal(line.error, 'ok', JSON.stringify(line));
        } finally {
            alive.stop();
            c.close();
        }
    });
});

describe('max_stall 2s (ping_interval 1s, pong_timeout 1s)', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend({ echo: false });
        gw = await startWsgate({
            config: gatewayConfig(be.port, { max_stall: '2s', ping_interval: '1s', pong_timeout: '1s', close_timeout: '2s' }),
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('a client that reads nothing for longer than max_stall is closed as a slow consumer; the backend gets 1001', { timeout: 30000 }, async () => {
        const c = await openClient(gw.url('/stuck-client'));
        c.ws._socket.pause();
        const bc = await be.nextConnection();
        const alive = ticker(c.ws, 300, 'client alive'); // alive: keepalive alone would never close it
        const t0 = Date.now();
        streamer(bc.ws, COUNT, MIB);
        try {
            const info = await waitClosed(bc, 8000, 'the backend side of the stuck client to be closed');
            const took = Date.now() - t0;
            assert.equal(info.code, 1001, `backend close ${JSON.stringify(info)}`);
            assert.equal(info.reason, 'client is not reading');
            assert.ok(took >= 1900, `closed after ${took} ms, before max_stall (2 s)`);
            assert.ok(bc.received.length >= 4, `the client's messages stopped reaching the backend (${bc.received.length})`);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/stuck-client', 8000, 'the access line');
            assert.equal(line.error, 'slow_consumer', JSON.stringify(line));
            assert.equal(line.closed_by, 'proxy');
            assert.equal(line.close_code, 1008);
            assert.equal(line.close_reason, 'client is not reading');
            alive.stop();
            c.ws._socket.resume();
            const cinfo = await waitClosed(c, 8000, 'the stuck client to see its connection end');
            assert.ok([1006, 1008].includes(cinfo.code), `client close ${JSON.stringify(cinfo)}`);
        } finally {
            alive.stop();
            c.close();
        }
    });

    test('a backend that reads nothing for longer than max_stall is closed as a slow consumer; the client gets 1011', { timeout: 30000 }, async () => {
        const c = await openClient(gw.url('/stuck-backend'));
        const bc = await be.nextConnection();
        bc.ws._socket.pause();
        const alive = ticker(bc.ws, 300, 'backend alive');
        const t0 = Date.now();
        streamer(c.ws, COUNT, MIB);
        try {
            const info = await waitClosed(c, 8000, 'the client of the stuck backend to be closed');
            const took = Date.now() - t0;
            assert.equal(info.code, 1011, `client close ${JSON.stringify(info)}`);
            assert.equal(info.reason, 'backend is not reading');
            assert.ok(took >= 1900, `closed after ${took} ms, before max_stall (2 s)`);
            assert.ok(c.received.length >= 4, `the backend's messages stopped reaching the client (${c.received.length})`);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/stuck-backend', 8000, 'the access line');
            assert.equal(line.error, 'slow_consumer', JSON.stringify(line));
            assert.equal(line.closed_by, 'proxy');
            assert.equal(line.close_code, 1008);
            assert.equal(line.close_reason, 'backend is not reading');
        } finally {
            alive.stop();
            c.close();
        }
    });
});
