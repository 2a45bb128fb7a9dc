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

/**
 * Send the COUNT messages on `ws` as fast as its bufferedAmount allows until
 * no send completes for 500 ms. Returns the number of sends completed then;
 * `progress()` tells how many have completed since.
 */
async function sendUntilStalled(ws, who) {
    let queued = 0;
    let acked = 0;
    let lastProgress = Date.now();
    const pump = () => {
        while (queued < COUNT && ws.readyState === ws.OPEN && ws.bufferedAmount < 1 * MIB) {
            ws.send(message(queued), (err) => {
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
        what: `the ${who} sender to stall`,
        detail: () => `acked ${acked}/${COUNT}`,
    });
    assert.ok(acked < COUNT, `all ${COUNT} messages were written without stalling: something buffered 64 MiB`);
    return { stalledAt: acked, progress: () => acked };
}

/** Sample wsgate's RSS every 100 ms for 2 s; the peak stays under baseline + 24 MiB. */
async function assertBoundedRss(t, baseline, stalledAt) {
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
        `wsgate RSS grew from ${(baseline / MIB).toFixed(1)} MiB to ${(peak / MIB).toFixed(1)} MiB during the stall (limit +24 MiB); the sender had written ${((stalledAt * MSG) / MIB).toFixed(1)} MiB`,
    );
}

/** Every message arrived, in order, byte for byte. */
function assertAllDelivered(received) {
    let bytes = 0;
    for (let i = 0; i < COUNT; i++) {
        const m = received[i];
        assert.equal(m.isBinary, true);
        bytes += m.data.length;
        if (!m.data.equals(message(i))) assert.fail(`message ${i} differs (starts with index ${m.data.readUInt32BE(0)})`);
    }
    assert.equal(bytes, TOTAL);
}

test('stalled backend: bounded memory during the stall, all 64 MiB intact after', { timeout: 60000 }, async (t) => {
    const c = await openClient(gw.url('/firehose'));
    try {
        const bc = await be.nextConnection();
        const baseline = vmRssBytes(gw.pid);
        const { stalledAt, progress } = await sendUntilStalled(c.ws, 'client');
        await assertBoundedRss(t, baseline, stalledAt);
        assert.equal(bc.received.length, 0, 'the paused backend read something');
        assert.equal(progress(), stalledAt, 'the sender made progress during the stall');

        bc.ws._socket.resume();
        await waitUntil(() => bc.received.length === COUNT, {
            timeoutMs: 30000,
            what: `all ${COUNT} messages at the backend`,
            detail: () => `received ${bc.received.length}, client acked ${progress()}, client state ${c.ws.readyState}`,
        });
        assertAllDelivered(bc.received);
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
        const { stalledAt, progress } = await sendUntilStalled(bc.ws, 'backend');
        await assertBoundedRss(t, baseline, stalledAt);
        assert.equal(c.received.length, 0, 'the paused client read something');
        assert.equal(progress(), stalledAt, 'the sender made progress during the stall');

        c.ws._socket.resume();
        await waitUntil(() => c.received.length === COUNT, {
            timeoutMs: 30000,
            what: `all ${COUNT} messages at the client`,
            detail: () => `received ${c.received.length}, backend acked ${progress()}`,
        });
        assertAllDelivered(c.received);
        assert.equal(bc.closeInfo, null, 'the backend connection was closed');
    } finally {
        c.close();
    }
});
