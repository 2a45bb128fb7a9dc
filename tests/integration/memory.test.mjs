// wsgate's memory under a burst of clients and under slowloris: a bounded
// cost per connection, and the memory back once they are gone.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { WebSocket, gatewayConfig, startEchoBackend, startWsgate, vmRssBytes, waitUntil } from './lib/harness.mjs';

const KIB = 1024;
const CONNS = 3000;
const INFLIGHT = 256;
// Sanitizer builds shadow every byte and quarantine what is freed: their RSS
// says nothing about wsgate's own accounting.
const sanitized = Boolean(process.env.ASAN_OPTIONS);

let be;
let gw; // a fresh wsgate per test: one test's heap must not hide the next one's growth
before(async () => {
    be = await startEchoBackend();
});
beforeEach(async () => {
    gw = await startWsgate({ config: gatewayConfig(be.port, { ping_interval: 'off', handshake_timeout: '30s' }) });
});
afterEach(async () => {
    await gw?.stop();
});
after(async () => {
    await be?.close();
});

/** Wait until wsgate's RSS is within 10% of `baseline` (it gives memory back
 * within about two seconds of the connections ending). */
async function rssBackTo(baseline, what) {
    let now = 0;
    await waitUntil(
        () => {
            now = vmRssBytes(gw.pid);
            return now <= baseline * 1.1;
        },
        { timeoutMs: 8000, intervalMs: 200, what, detail: () => `RSS ${(now / KIB).toFixed(0)} KiB, before ${(baseline / KIB).toFixed(0)} KiB` },
    );
    return now;
}

test(`${CONNS} clients opened ${INFLIGHT} at a time, each echoing at once: under 4 KiB each, all of it back after they close`, { skip: sanitized && 'RSS is meaningless under ASan', timeout: 120000 }, async (t) => {
    const baseline = vmRssBytes(gw.pid);
    const conns = [];
    let next = 0;
    const opener = async () => {
        while (next < CONNS) {
            next++;
            const ws = new WebSocket(gw.url('/burst'), { perMessageDeflate: false });
            await new Promise((resolve, reject) => {
                ws.once('open', resolve);
                ws.once('error', reject);
            });
            conns.push(ws);
        }
    };
    try {
        await Promise.all(Array.from({ length: INFLIGHT }, opener));
        const payload = Buffer.alloc(64 * KIB, 7);
        await Promise.all(
            conns.map(
                (ws) =>
                    new Promise((resolve) => {
                        ws.once('message', resolve);
                        ws.send(payload);
                    }),
            ),
        );
        // Buffers unused for a whole second go back: wait for two.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const idle = vmRssBytes(gw.pid);
        const per = (idle - baseline) / CONNS;
        t.diagnostic(`RSS ${(baseline / KIB).toFixed(0)} KiB before, ${(idle / KIB).toFixed(0)} KiB with ${CONNS} idle connections: ${per.toFixed(0)} B each`);
        assert.ok(per <= 4 * KIB, `${per.toFixed(0)} B per idle connection after a 64 KiB echo (limit 4 KiB)`);
        await Promise.all(
            conns.map(
                (ws) =>
                    new Promise((resolve) => {
                        ws.once('close', resolve);
                        ws.close(1000);
                    }),
            ),
        );
        const back = await rssBackTo(baseline, 'the RSS to fall back after the burst closed');
        t.diagnostic(`RSS ${(back / KIB).toFixed(0)} KiB after they closed`);
    } finally {
        for (const ws of conns) ws.terminate();
    }
});

test('1500 slowloris sockets: each costs what it sent plus a session, and waves of them leave nothing behind', { skip: sanitized && 'RSS is meaningless under ASan', timeout: 60000 }, async (t) => {
    const baseline = vmRssBytes(gw.pid);
    for (let wave = 0; wave < 3; wave++) {
        const socks = [];
        for (let i = 0; i < 1500; i++) {
            const s = net.connect(gw.port, '127.0.0.1');
            s.on('error', () => {});
            s.write(`GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}`);
            socks.push(s);
        }
        await waitUntil(() => socks.every((s) => s.bytesWritten > 0 && !s.connecting), { timeoutMs: 10000, what: 'every slowloris socket to connect and send' });
        // Let wsgate read them all: its RSS stops growing.
        let last = 0;
        let stable = 0;
        await waitUntil(
            () => {
                const now = vmRssBytes(gw.pid);
                stable = now === last ? stable + 1 : 0;
                last = now;
                return stable >= 5;
            },
            { timeoutMs: 10000, intervalMs: 100, what: 'the RSS to settle with 1500 partial heads' },
        );
        const per = (last - baseline) / 1500;
        t.diagnostic(`wave ${wave}: ${per.toFixed(0)} B per slowloris socket`);
        assert.ok(per <= 4 * KIB, `${per.toFixed(0)} B per pending handshake (limit 4 KiB; a 16 KiB head buffer each would be far more)`);
        for (const s of socks) s.destroy();
        await rssBackTo(baseline, `the RSS to fall back after wave ${wave}`);
    }
});
