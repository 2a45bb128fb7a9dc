// Helpers for tests where one side streams large messages while the other
// stops reading: numbered messages, a bounded sender, a periodic "alive"
// sender, and an in-order check on the receiving side.
import assert from 'node:assert/strict';

export const MIB = 1024 * 1024;

/** Message i of `size` bytes: its index in the first 4 bytes and the last 4
 * (size - i), a fill that depends on i in between. */
export function numbered(i, size) {
    const b = Buffer.alloc(size, (i * 7 + 3) & 0xff);
    b.writeUInt32BE(i, 0);
    b.writeUInt32BE((size - i) >>> 0, size - 4);
    return b;
}

/**
 * Send `count` numbered binary messages of `size` bytes on `ws`, keeping at
 * most `window` bytes in ws's own buffer (so the test process stays small
 * and the sender really waits on the network). Returns { queued, acked,
 * failed, done }: `acked` counts sends ws reports written, `failed` sends it
 * refused (the connection was closing); `done` resolves when every send has
 * completed one way or the other.
 */
export function streamer(ws, count, size, window = 2 * MIB) {
    const st = { queued: 0, acked: 0, failed: 0 };
    let finish;
    st.done = new Promise((resolve) => (finish = resolve));
    const settle = () => {
        if (st.acked + st.failed === count) finish();
    };
    const pump = () => {
        while (st.queued < count && ws.readyState === ws.OPEN && ws.bufferedAmount < window) {
            ws.send(numbered(st.queued, size), { binary: true }, (err) => {
                if (err) st.failed++;
                else st.acked++;
                settle();
                pump();
            });
            st.queued++;
        }
        if (ws.readyState !== ws.OPEN && st.queued < count) {
            st.failed += count - st.queued;
            st.queued = count;
            settle();
        }
    };
    pump();
    return st;
}

/** Send `${label} ${n}` on `ws` every `ms`: a peer that is alive and says so.
 * Returns { sent, stop() }. */
export function ticker(ws, ms, label) {
    const t = { sent: 0 };
    const timer = setInterval(() => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(`${label} ${t.sent}`);
        t.sent++;
    }, ms);
    t.stop = () => clearInterval(timer);
    return t;
}

/** received[0..count) are the numbered messages 0..count-1 of `size` bytes,
 * byte for byte, in order. */
export function assertNumbered(received, count, size) {
    assert.equal(received.length, count, `received ${received.length} of ${count} messages`);
    for (let i = 0; i < count; i++) {
        const m = received[i];
        assert.equal(m.isBinary, true, `message ${i} is not binary`);
        if (!m.data.equals(numbered(i, size)))
            assert.fail(`message ${i} differs (length ${m.data.length}, starts with index ${m.data.length >= 4 ? m.data.readUInt32BE(0) : '?'})`);
    }
}

/** The text messages `${label} 0` .. `${label} n-1`, in order. */
export function assertTicks(received, n, label) {
    const texts = received.filter((m) => !m.isBinary).map((m) => m.data.toString());
    assert.equal(texts.length, n, `got ${texts.length} of ${n} "${label}" messages`);
    texts.forEach((t, i) => assert.equal(t, `${label} ${i}`));
}
