// Frame-level protocol violations on each leg, sent by hand over raw sockets.
// The peers here never validate anything themselves, so a close code seen by
// one side can only have come from wsgate.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    OP,
    acceptUpgrade,
    closePayload,
    encodeFrame,
    gatewayConfig,
    openClient,
    rawWsClient,
    startRawBackend,
    startWsgate,
    waitClosed,
} from './lib/harness.mjs';

const INVALID_UTF8 = Buffer.from('cebae1bdb9cf83cebccebdeda080656469746564', 'hex');
const MAX_MESSAGE = 1024;

/** Raw backend behaviour for the client-side tests: handshake, echo data
 * frames unmasked, answer pings, answer a close with the same code. */
async function echoingRawBackend(c) {
    await acceptUpgrade(c);
    for (;;) {
        const f = await c.readFrame(60000);
        if (f.opcode === OP.CLOSE) {
            c.closeFrame = f;
            await c.write(encodeFrame({ opcode: OP.CLOSE, payload: f.payload.subarray(0, 2), mask: false }));
            c.socket.end();
            return;
        }
        if (f.opcode === OP.PING) await c.write(encodeFrame({ opcode: OP.PONG, payload: f.payload, mask: false }));
        else if (f.opcode !== OP.PONG) await c.write(encodeFrame({ opcode: f.opcode, fin: f.fin, payload: f.payload, mask: false }));
    }
}

describe('client -> wsgate violations', () => {
    let be;
    let gw;
    before(async () => {
        be = await startRawBackend(echoingRawBackend);
        gw = await startWsgate({
            config: gatewayConfig(be.port, { max_message_size: '1KiB', validate_utf8: true, close_timeout: '1s' }),
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    async function tunnel() {
        const { conn } = await rawWsClient(gw.port, { path: '/frames' });
        const bc = await be.nextConnection();
        return { conn, bc };
    }

    test('control case: masked frames relayed; unmasked to the client, masked to the backend', async () => {
        const { conn, bc } = await tunnel();
        try {
            await conn.sendFrame({ opcode: OP.TEXT, payload: 'hello' });
            const f = await conn.readFrame();
            assert.equal(f.opcode, OP.TEXT);
            assert.equal(f.masked, false);
            assert.equal(f.payload.toString(), 'hello');
            assert.equal(bc.frames[0].masked, true, 'wsgate must mask frames it sends to the backend');
            await conn.sendFrame({ opcode: OP.PING, payload: Buffer.alloc(125, 0x61) });
            const pong = await conn.readFrame();
            assert.equal(pong.opcode, OP.PONG);
            assert.equal(pong.payload.length, 125, 'a 125-byte ping is legal and relayed');
            await conn.sendClose(1000, 'bye');
            const cl = await conn.readClose();
            assert.equal(cl.code, 1000);
            assert.equal(bc.closeFrame?.code, 1000);
            assert.equal(bc.closeFrame?.reason, 'bye');
            await conn.waitGone(3000);
        } finally {
            conn.destroy();
        }
    });

    /**
     * Send `frames` from the client and expect wsgate to close the client
     * with `code`; the backend must then get a close frame from wsgate
     * (`backendCode` when given) and never the `forbidden` bytes.
     */
    async function expectViolation(frames, code, { backendCode, backendReason, forbidden } = {}) {
        const { conn, bc } = await tunnel();
        try {
            for (const f of frames) await conn.write(Buffer.isBuffer(f) ? f : encodeFrame(f));
            const cl = await conn.readClose(3000);
            assert.equal(cl.code, code, `client got close ${cl.code} "${cl.reason}", expected ${code}`);
            assert.equal(cl.masked, false, 'close frame to the client must not be masked');
            await conn.sendClose(cl.code);
            await conn.waitGone(3000, 'wsgate to close the client TCP connection');
            await bc.waitGone(3000, 'wsgate to close the backend connection');
            assert.ok(bc.closeFrame, `backend got no close frame from wsgate; frames: ${bc.frames.map((f) => f.opcode)}`);
            assert.equal(bc.closeFrame.masked, true);
            if (backendCode) assert.equal(bc.closeFrame.code, backendCode, `backend got close ${bc.closeFrame.code}`);
            if (backendReason) assert.equal(bc.closeFrame.reason, backendReason, 'the backend is told what the client did');
            if (forbidden) assert.ok(!bc.allReceived.includes(forbidden), 'the offending bytes reached the backend');
            gw.assertAlive();
        } finally {
            conn.destroy();
        }
    }

    test('unmasked frame -> client 1002, backend 1001', () =>
        expectViolation([{ opcode: OP.TEXT, payload: 'unmasked-payload', mask: false }], 1002, {
            backendCode: 1001,
            backendReason: 'client: client frame is not masked',
            forbidden: 'unmasked-payload',
        }));

    test('RSV1 set (no extension negotiated) -> 1002', () => expectViolation([{ opcode: OP.TEXT, payload: 'abc', rsv1: true }], 1002));
    test('RSV3 set -> 1002', () => expectViolation([{ opcode: OP.BINARY, payload: 'abc', rsv3: true }], 1002));
    test('reserved data opcode 3 -> 1002', () => expectViolation([{ opcode: 3, payload: 'abc' }], 1002));
    test('reserved control opcode 0xB -> 1002', () => expectViolation([{ opcode: 0xb, payload: 'abc' }], 1002));
    test('ping with a 126-byte payload -> 1002', () => expectViolation([{ opcode: OP.PING, payload: Buffer.alloc(126, 0x70) }], 1002));
    test('fragmented ping (fin=0) -> 1002', () => expectViolation([{ opcode: OP.PING, payload: 'x', fin: false }], 1002));
    test('continuation without a start -> 1002', () => expectViolation([{ opcode: OP.CONT, payload: 'orphan-continuation' }], 1002, { forbidden: 'orphan-continuation' }));
    test('new text frame inside a fragmented message -> 1002', () =>
        expectViolation(
            [
                { opcode: OP.TEXT, payload: 'part-1', fin: false },
                { opcode: OP.TEXT, payload: 'interloper', fin: true },
            ],
            1002,
            { forbidden: 'interloper' },
        ));
    test('64-bit length with the top bit set -> 1002', () =>
        expectViolation([{ opcode: OP.BINARY, payload: 'hello', rawLength: (1n << 63n) | 5n }], 1002));
    test('invalid UTF-8 in a text message -> 1007', () => expectViolation([{ opcode: OP.TEXT, payload: INVALID_UTF8 }], 1007));
    test('invalid UTF-8 split across fragments -> 1007', () =>
        expectViolation(
            [
                { opcode: OP.TEXT, payload: INVALID_UTF8.subarray(0, 12), fin: false },
                { opcode: OP.CONT, payload: INVALID_UTF8.subarray(12), fin: true },
            ],
            1007,
        ));
    test('text message truncated inside a character -> 1007', () => expectViolation([{ opcode: OP.TEXT, payload: Buffer.from('ab€').subarray(0, 4) }], 1007));
    test(`message of 2 KiB over max_message_size ${MAX_MESSAGE} -> 1009`, () =>
        expectViolation([{ opcode: OP.BINARY, payload: Buffer.alloc(2048, 0x42) }], 1009, {
            backendCode: 1001,
            backendReason: 'client: message larger than max_message_size',
            forbidden: Buffer.alloc(2048, 0x42),
        }));
    test('2 KiB message in four 512-byte fragments -> 1009', () =>
        expectViolation(
            [0, 1, 2, 3].map((i) => ({ opcode: i === 0 ? OP.BINARY : OP.CONT, payload: Buffer.alloc(512, 0x43 + i), fin: i === 3 })),
            1009,
            { forbidden: Buffer.alloc(512, 0x46) },
        ));
    test('close with code 1005 -> 1002', () => expectViolation([{ opcode: OP.CLOSE, payload: closePayload(1005) }], 1002));
    test('close with code 999 -> 1002', () => expectViolation([{ opcode: OP.CLOSE, payload: closePayload(999) }], 1002));
    test('close with code 1006 -> 1002', () => expectViolation([{ opcode: OP.CLOSE, payload: closePayload(1006) }], 1002));
    test('close with a one-byte payload -> 1002', () => expectViolation([{ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }], 1002));
    test('close with an invalid UTF-8 reason -> 1007', () =>
        expectViolation([{ opcode: OP.CLOSE, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff, 0xfe])]) }], 1007));

    test('a message exactly at max_message_size passes (boundary)', async () => {
        const { conn } = await tunnel();
        try {
            const payload = Buffer.alloc(MAX_MESSAGE, 0x61);
            await conn.sendFrame({ opcode: OP.TEXT, payload });
            const f = await conn.readFrame();
            assert.equal(f.opcode, OP.TEXT);
            assert.ok(f.payload.equals(payload));
        } finally {
            conn.destroy();
        }
    });
});

describe('backend -> wsgate violations', () => {
    const cleanups = [];
    after(async () => {
        for (const f of cleanups.reverse()) await f();
    });

    /**
     * A raw backend completes the handshake, then sends `frames`; it must get
     * a close frame with `backendCode` from wsgate, and the ws client one of
     * `clientCodes`.
     */
    async function expectBackendViolation(frames, backendCode, clientCodes = [1011, 1014]) {
        const be = await startRawBackend(async (c) => {
            await acceptUpgrade(c);
            const first = await c.readFrame(); // the client's "go"
            c.firstFrame = first;
            for (const f of frames) await c.write(Buffer.isBuffer(f) ? f : encodeFrame({ mask: false, ...f }));
            const cl = await c.readClose(3000);
            c.closeFrame = cl;
            await c.write(encodeFrame({ opcode: OP.CLOSE, payload: cl.payload.subarray(0, 2), mask: false }));
            c.socket.end();
        });
        cleanups.push(() => be.close());
        const gw = await startWsgate({ config: gatewayConfig(be.port, { max_message_size: '1KiB', validate_utf8: true, close_timeout: '1s' }) });
        cleanups.push(() => gw.stop());
        const c = await openClient(gw.url('/bad-backend'));
        try {
            c.ws.send('go');
            const bc = await be.nextConnection();
            const info = await waitClosed(c, 3000, 'the client to be closed');
            assert.ok(clientCodes.includes(info.code), `client got close ${info.code} "${info.reason}", expected one of ${clientCodes}`);
            assert.equal(c.received.length, 0, 'the bad backend data reached the client');
            await bc.waitGone(3000, 'the backend connection to end');
            if (bc.handlerError) throw new Error(`raw backend: ${bc.handlerError.message}`);
            assert.equal(bc.closeFrame.code, backendCode, `backend got close ${bc.closeFrame.code} "${bc.closeFrame.reason}"`);
            assert.equal(bc.closeFrame.masked, true, 'close frame to the backend must be masked');
            gw.assertAlive();
        } finally {
            c.close();
        }
    }

    test('backend sends a masked frame -> backend 1002, client 1011/1014', () =>
        expectBackendViolation([{ opcode: OP.TEXT, payload: 'masked-by-server', mask: true }], 1002));
    test('backend sends reserved opcode 3 -> backend 1002, client 1011/1014', () => expectBackendViolation([{ opcode: 3, payload: 'abc' }], 1002));
    test('backend sends RSV1 without an extension -> backend 1002, client 1011/1014', () =>
        expectBackendViolation([{ opcode: OP.TEXT, payload: 'abc', rsv1: true }], 1002));
    test('backend sends invalid UTF-8 text -> backend 1007, client 1011/1014', () => expectBackendViolation([{ opcode: OP.TEXT, payload: INVALID_UTF8 }], 1007));
    test('backend sends a 2 KiB message over max_message_size -> backend 1009, client 1011/1014', () =>
        expectBackendViolation([{ opcode: OP.BINARY, payload: Buffer.alloc(2048, 0x44) }], 1009));
});

describe('frame and UTF-8 settings', () => {
    const cleanups = [];
    after(async () => {
        for (const f of cleanups.reverse()) await f();
    });

    async function setup(extra) {
        const be = await startRawBackend(echoingRawBackend);
        cleanups.push(() => be.close());
        const gw = await startWsgate({ config: gatewayConfig(be.port, extra) });
        cleanups.push(() => gw.stop());
        const { conn } = await rawWsClient(gw.port, { path: '/settings' });
        cleanups.push(() => conn.destroy());
        const bc = await be.nextConnection();
        return { gw, conn, bc };
    }

    test('max_frame_size 1KiB: a 2 KiB message in 512-byte fragments passes, a 2 KiB frame -> 1009', async () => {
        const { conn } = await setup({ max_frame_size: '1KiB', max_message_size: '16KiB' });
        const parts = [0, 1, 2, 3].map((i) => Buffer.alloc(512, 0x61 + i));
        for (const [i, p] of parts.entries()) await conn.sendFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: p, fin: i === 3 });
        const got = [];
        // wsgate may re-fragment (RFC 6455 §5.4): read until the final frame.
        do got.push(await conn.readFrame());
        while (!got[got.length - 1].fin);
        assert.ok(Buffer.concat(got.map((f) => f.payload)).equals(Buffer.concat(parts)), 'fragmented 2 KiB message relayed');
        await conn.sendFrame({ opcode: OP.BINARY, payload: Buffer.alloc(2048, 0x62) });
        const cl = await conn.readClose(3000);
        assert.equal(cl.code, 1009, `close ${cl.code} "${cl.reason}"`);
    });

    test('validate_utf8 false: invalid UTF-8 text is relayed untouched', async () => {
        const { conn, bc } = await setup({ validate_utf8: false });
        await conn.sendFrame({ opcode: OP.TEXT, payload: INVALID_UTF8 });
        const f = await conn.readFrame(3000);
        assert.equal(f.opcode, OP.TEXT);
        assert.ok(f.payload.equals(INVALID_UTF8), 'echo differs');
        assert.ok(bc.frames[0].payload.equals(INVALID_UTF8), 'backend got different bytes');
    });
});
