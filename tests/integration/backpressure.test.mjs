// A backend that stops reading must stop wsgate reading from the client:
// wsgate's memory stays bounded while the stall lasts, and nothing is lost
// when the backend reads again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gatewayConfig, openClient, startEchoBackend, startWsgate, vmRssBytes, waitUntil } from './lib/harness.mjs';

const MIB = 1024 * 1024;
const MSG = 64 * 1024;
const TOTAL = 64 * MIB;
const COUNT = TOTAL / MSG;
const RSS_HEADROOM = 24 * MIB;

/** Message i: its index in the first 4 bytes, then a fill that depends on i. */
function message(i) {
    const b = Buffer.alloc(MSG, (i * 7 + 3) & 0xff);
    b.writeUInt32BE(i, 0);
    b.writeUInt32BE(MSG - i, MSG - 4);
    return b;
}

let be;
let gw;
before(async () => {
    be = await startEchoBackend({ echo: false, pauseOnConnect: true });
    gw = await startWsgate({
        config: gatewayConfig(be.port, { ping_interval: 'off', max_message_size: '1MiB' }),
    });
});
after(async () => {
    await gw?.stop();
    await be?.close();
});

test('stalled backend: bounded memory during the stall, all 64 MiB intact after', { timeout: 60000 }, async (t) => {
    const c = await openClient(gw.url('/firehose'));
    try {
        const bc = await be.nextConnection();
        const baseline = vmRssBytes(gw.pid);

        let queued = 0;
        let acked = 0;
        let lastProgress = Date.now();
        const pump = () => {
            while (queued < COUNT && c.ws.readyState === c.ws.OPEN && c.ws.bufferedAmount < 1 * MIB) {
                c.ws.send(message(queued), (err) => {
                    if (err) return;
                    acked++;
                    lastProgress = Date.now();
                    pump();
                });
                queued++;
            }
        };
        pump();

        // "Stalled": no send completed for 500 ms while data is still queued.
        await waitUntil(() => queued === COUNT || Date.now() - lastProgress > 500, {
            timeoutMs: 20000,
            what: 'the sender to stall',
            detail: () => `acked ${acked}/${COUNT}`,
        });
        assert.ok(acked < COUNT, `all ${COUNT} messages were written without stalling: something buffered 64 MiB`);
        const stalledAt = acked;

        const samples = [];
        const t0 = Date.now();
        await waitUntil(
            () => {
                samples.push(vmRssBytes(gw.pid));
                return Date.now() - t0 >= 2000;
            },
            { timeoutMs: 5000, intervalMs: 100, what: '2 s of RSS samples' },
        );
        const peak = Math.max(...samples);
        t.diagnostic(
            `stalled after ${stalledAt} of ${COUNT} messages; RSS baseline ${(baseline / MIB).toFixed(1)} MiB, peak ${(peak / MIB).toFixed(1)} MiB over ${samples.length} samples`,
        );
        assert.ok(samples.length >= 10, `only ${samples.length} samples`);
        assert.ok(
            peak < baseline + RSS_HEADROOM,
            `wsgate RSS grew from ${(baseline / MIB).toFixed(1)} MiB to ${(peak / MIB).toFixed(1)} MiB during the stall (limit +24 MiB); client had written ${((stalledAt * MSG) / MIB).toFixed(1)} MiB`,
        );
        assert.equal(bc.received.length, 0, 'the paused backend read something');
        assert.equal(acked, stalledAt, 'the sender made progress during the stall');

        bc.ws._socket.resume();
        await waitUntil(() => bc.received.length === COUNT, {
            timeoutMs: 30000,
            what: `all ${COUNT} messages at the backend`,
            detail: () => `received ${bc.received.length}, client acked ${acked}, client state ${c.ws.readyState}`,
        });
        let bytes = 0;
        for (let i = 0; i < COUNT; i++) {
            const m = bc.received[i];
            assert.equal(m.isBinary, true);
            bytes += m.data.length;
            if (!m.data.equals(message(i))) assert.fail(`message ${i} differs (starts with index ${m.data.readUInt32BE(0)})`);
        }
        assert.equal(bytes, TOTAL);
        assert.equal(c.closeInfo, null, 'the client connection was closed');
    } finally {
        c.close();
    }
});

test('stalled client: bounded memory during the stall, all 64 MiB from the backend intact after', { timeout: 60000 }, async (t) => {
    const c = await openClient(gw.url('/downstream'));
    c.ws._socket.pause();
    try {
        const bc = await be.nextConnection();
        bc.ws._socket.resume(); // this backend sends; it does not need to be paused
        const baseline = vmRssBytes(gw.pid);

        let queued = 0;
        let acked = 0;
        let lastProgress = Date.now();
        const pump = () => {
            while (queued < COUNT && bc.ws.readyState === bc.ws.OPEN && bc.ws.bufferedAmount < 1 * MIB) {
                bc.ws.send(message(queued), (err) => {
                    if (err) return;
                    acked++;
                    lastProgress = Date.now();
                    pump();
                });
                queued++;
            }
        };
        pump();
        await waitUntil(() => queued === COUNT || Date.now() - lastProgress > 500, {
            timeoutMs: 20000,
            what: 'the backend sender to stall',
            detail: () => `acked ${acked}/${COUNT}`,
        });
        assert.ok(acked < COUNT, `all ${COUNT} messages were written without stalling: something buffered 64 MiB`);
        const stalledAt = acked;
        const samples = [];
        const t0 = Date.now();
        await waitUntil(
            () => {
                samples.push(vmRssBytes(gw.pid));
                return Date.now() - t0 >= 2000;
            },
            { timeoutMs: 5000, intervalMs: 100, what: '2 s of RSS samples' },
        );
        const peak = Math.max(...samples);
        t.diagnostic(
            `stalled after ${stalledAt} of ${COUNT} messages; RSS baseline ${(baseline / MIB).toFixed(1)} MiB, peak ${(peak / MIB).toFixed(1)} MiB over ${samples.length} samples`,
        );
        assert.ok(
            peak < baseline + RSS_HEADROOM,
            `wsgate RSS grew from ${(baseline / MIB).toFixed(1)} MiB to ${(peak / MIB).toFixed(1)} MiB during the stall (limit +24 MiB)`,
        );
        assert.equal(c.received.length, 0, 'the paused client read something');

        c.ws._socket.resume();
        await waitUntil(() => c.received.length === COUNT, {
            timeoutMs: 30000,
            what: `all ${COUNT} messages at the client`,
            detail: () => `received ${c.received.length}, backend acked ${acked}`,
        });
        for (let i = 0; i < COUNT; i++) {
            if (!c.received[i].data.equals(message(i))) assert.fail(`message ${i} differs`);
        }
        assert.equal(bc.closeInfo, null, 'the backend connection was closed');
    } finally {
        c.close();
    }
});
