// Messages, fragments, control frames, subprotocols and close codes relayed
// end to end: ws client -> wsgate -> ws echo backend.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gatewayConfig, openClient, startEchoBackend, startWsgate, utf8Text, waitClosed, waitUntil } from './lib/harness.mjs';

const SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];

let be;
let gw;
before(async () => {
    be = await startEchoBackend({ protocol: (offered) => (offered.includes('b') ? 'b' : false) });
    gw = await startWsgate({
        config: gatewayConfig(be.port, { workers: 2, max_frame_size: '16MiB', max_message_size: '16MiB' }),
    });
});
after(async () => {
    await gw?.stop();
    await be?.close();
});

describe('echo of text and binary messages', () => {
    let c;
    before(async () => {
        c = await openClient(gw.url('/echo'));
        await be.nextConnection();
    });
    after(() => c?.close());

    for (const size of SIZES) {
        test(`text message of ${size} bytes`, { timeout: 30000 }, async () => {
            const text = utf8Text(size, size);
            c.ws.send(text);
            const m = await c.nextMessage(20000);
            assert.equal(m.isBinary, false, 'text must come back as text');
            assert.equal(m.data.length, size, 'byte length');
            assert.ok(m.data.equals(Buffer.from(text)), 'content differs');
        });
        test(`binary message of ${size} bytes`, { timeout: 30000 }, async () => {
            const data = crypto.randomBytes(size);
            c.ws.send(data);
            const m = await c.nextMessage(20000);
            assert.equal(m.isBinary, true, 'binary must come back as binary');
            assert.equal(m.data.length, size, 'byte length');
            assert.ok(m.data.equals(data), 'content differs');
        });
    }
});

describe('fragmented messages and control frames', () => {
    test('fragmented text (split inside UTF-8 characters) with pings in between arrives whole', async () => {
        const c = await openClient(gw.url('/frag'));
        try {
            const bc = await be.nextConnection();
            const whole = Buffer.from(`${'a'.repeat(1000)}€${'é'.repeat(300)}𝄞${'z'.repeat(70000)}`);
            const cut1 = 1001; // inside the 3-byte '€'
            const cut2 = 1000 + 3 + 600 + 2; // inside the 4-byte '𝄞'
            c.ws.send(whole.subarray(0, cut1), { binary: false, fin: false });
            c.ws.ping('p1');
            c.ws.send(whole.subarray(cut1, cut2), { binary: false, fin: false });
            c.ws.ping('p2');
            c.ws.send(whole.subarray(cut2), { binary: false, fin: true });
            const atBackend = await bc.messages.next(5000);
            assert.equal(atBackend.isBinary, false);
            assert.ok(atBackend.data.equals(whole), 'backend got a different message');
            assert.equal(bc.received.length, 1, 'backend must see one message, not fragments');
            const echoed = await c.nextMessage();
            assert.ok(echoed.data.equals(whole), 'client got a different message');
            await waitUntil(() => bc.pings.length >= 2, { what: 'both pings at the backend', detail: () => `pings: ${bc.pings.map(String)}` });
            assert.deepEqual(bc.pings.map(String).filter((p) => p === 'p1' || p === 'p2'), ['p1', 'p2']);
        } finally {
            c.close();
        }
    });

    test('fragmented binary message with pings in between arrives whole', async () => {
        const c = await openClient(gw.url('/frag-bin'));
        try {
            const bc = await be.nextConnection();
            const parts = [crypto.randomBytes(10), crypto.randomBytes(0), crypto.randomBytes(200000), crypto.randomBytes(5)];
            parts.forEach((p, i) => {
                c.ws.send(p, { binary: true, fin: i === parts.length - 1 });
                if (i < parts.length - 1) c.ws.ping(`bp${i}`);
            });
            const whole = Buffer.concat(parts);
            const atBackend = await bc.messages.next(5000);
            assert.equal(atBackend.isBinary, true);
            assert.ok(atBackend.data.equals(whole));
            const echoed = await c.nextMessage();
            assert.equal(echoed.isBinary, true);
            assert.ok(echoed.data.equals(whole));
        } finally {
            c.close();
        }
    });

    test('client ping reaches the backend with its payload; the backend pong reaches the client', async () => {
        const c = await openClient(gw.url('/ping'));
        try {
            const bc = await be.nextConnection();
            c.ws.ping('client-ping-1');
            await waitUntil(() => bc.pings.some((p) => p.toString() === 'client-ping-1'), {
                what: 'the client ping at the backend',
                detail: () => `backend pings: ${JSON.stringify(bc.pings.map(String))}`,
            });
            await waitUntil(() => c.pongs.some((p) => p.toString() === 'client-ping-1'), {
                what: "the backend's pong at the client",
                detail: () => `client pongs: ${JSON.stringify(c.pongs.map(String))}`,
            });
        } finally {
            c.close();
        }
    });

    test('backend ping reaches the client with its payload; the client pong reaches the backend', async () => {
        const c = await openClient(gw.url('/ping'));
        try {
            const bc = await be.nextConnection();
            bc.ws.ping('backend-ping-1');
            await waitUntil(() => c.pings.some((p) => p.toString() === 'backend-ping-1'), {
                what: 'the backend ping at the client',
                detail: () => `client pings: ${JSON.stringify(c.pings.map(String))}`,
            });
            await waitUntil(() => bc.pongs.some((p) => p.toString() === 'backend-ping-1'), {
                what: "the client's pong at the backend",
                detail: () => `backend pongs: ${JSON.stringify(bc.pongs.map(String))}`,
            });
        } finally {
            c.close();
        }
    });
});

describe('subprotocols', () => {
    test('client offers a and b, backend picks b, client sees b', async () => {
        const c = await openClient(gw.url('/proto'), { protocols: ['a', 'b'] });
        try {
            const bc = await be.nextConnection();
            assert.deepEqual(
                String(bc.headers['sec-websocket-protocol']).split(',').map((s) => s.trim()),
                ['a', 'b'],
                'backend must see the client offer',
            );
            assert.equal(c.ws.protocol, 'b');
            c.ws.send('x');
            assert.equal((await c.nextMessage()).data.toString(), 'x');
        } finally {
            c.close();
        }
    });

    test('no offer, no protocol', async () => {
        const c = await openClient(gw.url('/proto'));
        try {
            const bc = await be.nextConnection();
            assert.equal(bc.headers['sec-websocket-protocol'], undefined);
            assert.equal(c.ws.protocol, '');
        } finally {
            c.close();
        }
    });
});

describe('close codes and reasons', () => {
    test('client closes 4001 "x": backend sees 4001 "x"', async () => {
        const c = await openClient(gw.url('/close'));
        const bc = await be.nextConnection();
        try {
            c.ws.close(4001, 'x');
            assert.deepEqual(await waitClosed(bc, 3000, 'the backend close event'), { code: 4001, reason: 'x' });
            const info = await waitClosed(c, 3000, 'the client close event');
            assert.equal(info.code, 4001, 'the backend echoes the close code back to the client');
        } finally {
            c.close();
        }
    });

    test('backend closes 4002 "y": client sees 4002 "y"', async () => {
        const c = await openClient(gw.url('/close'));
        const bc = await be.nextConnection();
        try {
            bc.ws.close(4002, 'y');
            assert.deepEqual(await waitClosed(c, 3000, 'the client close event'), { code: 4002, reason: 'y' });
            const info = await waitClosed(bc, 3000, 'the backend close event');
            assert.equal(info.code, 4002, 'the client echoes the close code back to the backend');
        } finally {
            c.close();
        }
    });

    test('close with no status: both sides see 1005', async () => {
        const c = await openClient(gw.url('/close'));
        const bc = await be.nextConnection();
        try {
            c.ws.close();
            assert.equal((await waitClosed(bc, 3000, 'the backend close event')).code, 1005);
            assert.equal((await waitClosed(c, 3000, 'the client close event')).code, 1005);
        } finally {
            c.close();
        }
    });
});
