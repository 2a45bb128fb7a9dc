// wsgate's own pings, pong timeout and idle timeout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OP, decodeFrame, delay, gatewayConfig, openClient, rawWsClient, startEchoBackend, startWsgate, waitClosed, waitUntil } from './lib/harness.mjs';

describe('keepalive pings (ping_interval 300ms, pong_timeout 300ms)', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend();
        gw = await startWsgate({
            config: gatewayConfig(be.port, { ping_interval: '300ms', pong_timeout: '300ms', close_timeout: '300ms' }),
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('a client that never answers pings is pinged, then disconnected within ~2 s', async () => {
        const { conn } = await rawWsClient(gw.port, { path: '/deaf' });
        const bc = await be.nextConnection();
        const t0 = Date.now();
        try {
            await conn.waitGone(2500, 'wsgate to drop a client that never answers pings');
            const took = Date.now() - t0;
            const frames = [];
            let rest = conn.buf;
            for (let r; (r = decodeFrame(rest)); rest = rest.subarray(r.used)) frames.push(r.frame);
            assert.ok(
                frames.some((f) => f.opcode === OP.PING),
                `expected a ping (opcode 9) before the disconnect; frames: ${frames.map((f) => f.opcode).join(',') || 'none'}`,
            );
            assert.ok(took >= 300, `dropped after ${took} ms, before even one ping interval`);
            const info = await waitClosed(bc, 3000, 'the backend side of the dead client to be closed');
            assert.ok(info.code === 1001 || info.code === 1011, `backend close code ${info.code}`);
        } finally {
            conn.destroy();
        }
    });

    test('a silent ws client (which answers pings) stays connected, and its pongs are not relayed', async () => {
        const c = await openClient(gw.url('/quiet'));
        try {
            const bc = await be.nextConnection();
            const t0 = Date.now();
            await waitUntil(() => c.pings.length >= 3 && Date.now() - t0 >= 1500, {
                timeoutMs: 5000,
                what: '1.5 s of silence with at least 3 pings from wsgate',
                detail: () => `pings so far: ${c.pings.length}, closed: ${JSON.stringify(c.closeInfo)}`,
            });
            assert.equal(c.closeInfo, null, `closed: ${JSON.stringify(c.closeInfo)}`);
            c.ws.send('still here');
            assert.equal((await c.nextMessage()).data.toString(), 'still here');
            assert.equal(bc.pongs.length, 0, "the client's pongs to wsgate's pings reached the backend");
            assert.equal(bc.closeInfo, null);
        } finally {
            c.close();
        }
    });
});

describe('idle timeout (idle_timeout 500ms, pings every 200ms)', () => {
    let be;
    let gw;
    before(async () => {
        be = await startEchoBackend();
        gw = await startWsgate({
            config: gatewayConfig(be.port, { idle_timeout: '500ms', ping_interval: '200ms', pong_timeout: '1s' }),
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('no data frames: closed with 1001 (pings and pongs do not count as activity)', async () => {
        const c = await openClient(gw.url('/idle'));
        try {
            const bc = await be.nextConnection();
            const t0 = Date.now();
            const info = await waitClosed(c, 2500, 'the idle client to be closed');
            const took = Date.now() - t0;
            assert.equal(info.code, 1001, `client close ${info.code} "${info.reason}"`);
            assert.ok(took >= 300, `closed after ${took} ms, idle_timeout is 500ms`);
            const binfo = await waitClosed(bc, 2500, 'the idle backend side to be closed');
            assert.equal(binfo.code, 1001, `backend close ${binfo.code} "${binfo.reason}"`);
        } finally {
            c.close();
        }
    });

    test('a connection sending data every 200 ms stays open past the idle timeout', async () => {
        const c = await openClient(gw.url('/busy'));
        try {
            await be.nextConnection();
            const t0 = Date.now();
            let n = 0;
            while (Date.now() - t0 < 1500) {
                c.ws.send(`tick ${n}`);
                assert.equal((await c.nextMessage(2000)).data.toString(), `tick ${n}`);
                n++;
                await delay(200); // pacing: the subject of this test is elapsed time
            }
            assert.equal(c.closeInfo, null, `closed: ${JSON.stringify(c.closeInfo)}`);
        } finally {
            c.close();
        }
    });
});
