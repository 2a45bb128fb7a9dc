// Self-test of the test harness, against `ws` directly (no wsgate): if these
// fail, a failure elsewhere says nothing about wsgate.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    OP,
    acceptFor,
    acceptUpgrade,
    closePayload,
    decodeFrame,
    encodeFrame,
    openClient,
    rawWsClient,
    startEchoBackend,
    startRawBackend,
    toYaml,
    utf8Text,
    waitClosed,
} from './lib/harness.mjs';

describe('harness: frame codec', () => {
    test('encode/decode round trip at every length boundary, masked and not', () => {
        for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
            for (const mask of [true, false]) {
                const payload = Buffer.alloc(n, n % 251);
                const enc = encodeFrame({ opcode: OP.BINARY, payload, mask });
                const hdr = (n < 126 ? 2 : n < 65536 ? 4 : 10) + (mask ? 4 : 0);
                assert.equal(enc.length, hdr + n, `header size for ${n}`);
                const { frame, used } = decodeFrame(enc);
                assert.equal(used, enc.length);
                assert.equal(frame.masked, mask);
                assert.ok(frame.payload.equals(payload));
                assert.equal(decodeFrame(enc.subarray(0, enc.length - 1)), n === 0 && !mask ? decodeFrame(enc.subarray(0, 1)) : null);
            }
        }
    });

    test('forced length forms and raw 64-bit lengths', () => {
        const f = encodeFrame({ opcode: OP.TEXT, payload: 'x', mask: false, rawLength: 1n << 63n });
        assert.equal(f[1], 127);
        assert.equal(f.readBigUInt64BE(2), 1n << 63n);
        const p = encodeFrame({ opcode: OP.PING, payload: Buffer.alloc(126), mask: false });
        assert.equal(p[1], 126);
        const c = decodeFrame(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(4001, 'x') })).frame;
        assert.equal(c.code, 4001);
        assert.equal(c.reason, 'x');
    });

    test('RFC 6455 accept key example', () => {
        assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    });

    test('utf8Text has the exact byte length and multi-byte characters', () => {
        for (const n of [0, 1, 125, 126, 65535, 65536]) assert.equal(Buffer.byteLength(utf8Text(n)), n);
        assert.ok(Buffer.byteLength(utf8Text(1000)) > utf8Text(1000).length);
    });

    test('toYaml renders flat keys and routes', () => {
        const y = toYaml({ listen: '127.0.0.1:0', workers: 2, validate_utf8: true, x: 'a b', routes: [{ path: '/', backend: 'ws://127.0.0.1:1' }] });
        assert.equal(y, 'listen: 127.0.0.1:0\nworkers: 2\nvalidate_utf8: true\nx: "a b"\nroutes:\n  - path: /\n    backend: ws://127.0.0.1:1\n');
    });
});

describe('harness: raw client against ws.WebSocketServer', () => {
    let be;
    before(async () => {
        be = await startEchoBackend();
    });
    after(async () => {
        await be.close();
    });

    test('handshake, masked echo, unmasked frame gets 1002', async () => {
        const { conn } = await rawWsClient(be.port, { path: '/p?q=1' });
        try {
            const c = await be.nextConnection();
            assert.equal(c.url, '/p?q=1');
            await conn.sendText('hello');
            const f = await conn.readFrame();
            assert.equal(f.opcode, OP.TEXT);
            assert.equal(f.masked, false);
            assert.equal(f.payload.toString(), 'hello');
            await conn.sendFrame({ opcode: OP.TEXT, payload: 'x', mask: false });
            const cl = await conn.readClose();
            assert.equal(cl.code, 1002);
        } finally {
            conn.destroy();
        }
    });

    test('invalid UTF-8 gets 1007 from ws', async () => {
        const { conn } = await rawWsClient(be.port);
        try {
            await be.nextConnection();
            const bad = Buffer.from('cebae1bdb9cf83cebccebdeda080656469746564', 'hex');
            await conn.sendFrame({ opcode: OP.TEXT, payload: bad });
            const cl = await conn.readClose();
            assert.equal(cl.code, 1007);
        } finally {
            conn.destroy();
        }
    });
});

describe('harness: ws client against the raw backend', () => {
    let be;
    before(async () => {
        be = await startRawBackend(async (conn) => {
            const req = await acceptUpgrade(conn, { protocol: 'b' });
            conn.req = req;
            const f = await conn.readFrame();
            conn.got = f;
            await conn.sendFrame({ opcode: OP.TEXT, payload: f.payload });
            await conn.sendClose(4002, 'y');
        });
    });
    after(async () => {
        await be.close();
    });

    test('handshake with protocol choice, frames both ways, close code', async () => {
        const c = await openClient(be.url, { protocols: ['a', 'b'] });
        try {
            assert.equal(c.ws.protocol, 'b');
            c.ws.send('ping-me');
            const m = await c.nextMessage();
            assert.equal(m.data.toString(), 'ping-me');
            const conn = be.conns[0];
            assert.equal(conn.got.masked, true);
            assert.equal(conn.req.headers['sec-websocket-protocol'], 'a,b');
            const info = await waitClosed(c);
            assert.deepEqual(info, { code: 4002, reason: 'y' });
        } finally {
            c.close();
        }
    });
});
