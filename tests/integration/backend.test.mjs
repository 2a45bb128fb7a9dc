// Backend trouble before the tunnel exists: refused connect (502), silence
// (504), an HTTP error answer (relayed, nothing smuggled through), a bad 101
// (502, no tunnel).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
    OP,
    acceptUpgrade,
    closedPort,
    encodeFrame,
    gatewayConfig,
    rawRequest,
    startRawBackend,
    startWsgate,
    upgradeRequest,
    wsKey,
} from './lib/harness.mjs';

const cleanups = [];
after(async () => {
    for (const f of cleanups.reverse()) await f();
});

async function gateway(backendPort, extra = {}) {
    const gw = await startWsgate({ config: gatewayConfig(backendPort, extra) });
    cleanups.push(() => gw.stop());
    return gw;
}

async function rawBackend(handler) {
    const be = await startRawBackend(handler);
    cleanups.push(() => be.close());
    return be;
}

const request = (gw, o = {}) => upgradeRequest({ path: '/app?room=1', host: `127.0.0.1:${gw.port}`, ...o });

describe('backend unreachable', () => {
    test('backend port closed -> 502', async () => {
        const gw = await gateway(await closedPort());
        const { conn, res } = await rawRequest(gw.port, request(gw));
        try {
            assert.equal(res.status, 502, res.startLine);
            const line = await gw.waitForLog((l) => l.msg === 'access', 3000, 'the access line');
            assert.equal(line.status, 502);
        } finally {
            conn.destroy();
        }
    });

    test('backend accepts TCP but never answers, connect_timeout 500ms -> 504', async () => {
        const be = await rawBackend(async () => {
            /* read everything, answer nothing */
        });
        const gw = await gateway(be.port, { connect_timeout: '500ms' });
        const t0 = Date.now();
        const { conn, res } = await rawRequest(gw.port, request(gw), 3000);
        try {
            assert.equal(res.status, 504, res.startLine);
            const took = Date.now() - t0;
            assert.ok(took >= 400 && took < 2500, `504 after ${took} ms with connect_timeout 500ms`);
            const bc = await be.nextConnection(100);
            await bc.waitGone(2000, 'wsgate to close the silent backend connection');
        } finally {
            conn.destroy();
        }
    });
});

describe('backend answers with an HTTP error', () => {
    test('403 with a body is relayed; bytes sent after it never reach the backend', async () => {
        const body = 'forbidden: no token\n';
        const be = await rawBackend(async (c) => {
            await c.readHead();
            await c.write(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        });
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw));
        try {
            assert.equal(res.status, 403, res.startLine);
            const got = await conn.readBody(res);
            assert.equal(got.toString(), body);
            // Try to smuggle: a WebSocket frame and a second request.
            await conn.write(Buffer.concat([encodeFrame({ opcode: OP.TEXT, payload: 'smuggled frame' }), Buffer.from(request(gw, { path: '/admin' }))]));
            const bc = await be.nextConnection();
            await bc.waitGone(3000, 'wsgate to close the backend connection after relaying its error');
            await conn.waitGone(3000, 'wsgate to close the client connection after relaying the error');
            const all = bc.allReceived;
            assert.equal(all.length, bc.request?.headBytes ?? all.indexOf('\r\n\r\n') + 4, `backend received more than the upgrade request: ${JSON.stringify(all.toString('latin1'))}`);
            assert.ok(!all.includes('smuggled'), 'the smuggled frame reached the backend');
            assert.ok(!all.includes('/admin'), 'the smuggled request reached the backend');
            assert.equal(be.conns.length, 1, 'one backend connection only');
            const line = await gw.waitForLog((l) => l.msg === 'access', 3000, 'the access line');
            assert.equal(line.status, 403);
        } finally {
            conn.destroy();
        }
    });

    test('the backend request carries the path and query and a valid key', async () => {
        const be = await rawBackend(async (c) => {
            c.req = await c.readHead();
            await c.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
        });
        const gw = await gateway(be.port);
        const key = wsKey();
        const { conn, res } = await rawRequest(gw.port, request(gw, { key }));
        try {
            assert.equal(res.status, 401, res.startLine);
            const bc = await be.nextConnection();
            await be.conns[0].waitGone(3000).catch(() => {});
            assert.equal(bc.req.method, 'GET');
            assert.equal(bc.req.url, '/app?room=1');
            const bkey = bc.req.headers['sec-websocket-key'];
            assert.equal(Buffer.from(bkey ?? '', 'base64').length, 16, `backend key ${bkey} must decode to 16 bytes`);
        } finally {
            conn.destroy();
        }
    });
});

describe('backend answers 101 badly', () => {
    test('101 with a wrong Sec-WebSocket-Accept -> 502, no tunnel either way', async () => {
        const be = await rawBackend(async (c) => {
            await acceptUpgrade(c, { accept: Buffer.alloc(20).toString('base64') });
            await c.write(encodeFrame({ opcode: OP.TEXT, payload: 'from-backend', mask: false }));
        });
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw));
        try {
            assert.equal(res.status, 502, res.startLine);
            assert.equal(res.headers['sec-websocket-accept'], undefined);
            const bc = await be.nextConnection();
            await conn.write(encodeFrame({ opcode: OP.TEXT, payload: 'from-client' }));
            await bc.waitGone(3000, 'wsgate to close the backend connection with the bad accept');
            await conn.waitGone(3000, 'wsgate to close the client connection after the 502');
            assert.ok(!conn.allReceived.includes('from-backend'), 'a backend frame reached the client');
            assert.ok(!bc.allReceived.includes('from-client'), 'a client frame reached the backend');
        } finally {
            conn.destroy();
        }
    });

    test('101 without Sec-WebSocket-Accept -> 502', async () => {
        const be = await rawBackend(async (c) => {
            await c.readHead();
            await c.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        });
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw));
        conn.destroy();
        assert.equal(res.status, 502, res.startLine);
    });

    test('backend picks a subprotocol the client did not offer -> 502', async () => {
        const be = await rawBackend((c) => acceptUpgrade(c, { protocol: 'c' }));
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw, { protocols: ['a', 'b'] }));
        try {
            assert.equal(res.status, 502, res.startLine);
            assert.equal(res.headers['sec-websocket-protocol'], undefined);
            const bc = await be.nextConnection();
            await bc.waitGone(3000, 'wsgate to close the backend connection');
        } finally {
            conn.destroy();
        }
    });

    test('backend picks a subprotocol when the client offered none -> 502', async () => {
        const be = await rawBackend((c) => acceptUpgrade(c, { protocol: 'chat' }));
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw));
        conn.destroy();
        assert.equal(res.status, 502, res.startLine);
    });

    test('backend answers 101 with an extension the client could not have offered -> 502', async () => {
        const be = await rawBackend((c) => acceptUpgrade(c, { headers: [['Sec-WebSocket-Extensions', 'permessage-deflate']] }));
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw, { headers: [['Sec-WebSocket-Extensions', 'permessage-deflate']] }));
        conn.destroy();
        assert.equal(res.status, 502, res.startLine);
    });

    test('a correct 101 from the raw backend opens the tunnel (control case)', async () => {
        const be = await rawBackend(async (c) => {
            await acceptUpgrade(c, { protocol: 'b' });
            const f = await c.readFrame();
            await c.write(encodeFrame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('echo:'), f.payload]), mask: false }));
        });
        const gw = await gateway(be.port);
        const { conn, res } = await rawRequest(gw.port, request(gw, { protocols: ['a', 'b'] }));
        try {
            assert.equal(res.status, 101, res.startLine);
            assert.equal(res.headers['sec-websocket-protocol'], 'b');
            await conn.write(encodeFrame({ opcode: OP.TEXT, payload: 'hi' }));
            const f = await conn.readFrame();
            assert.equal(f.masked, false, 'frames to the client are not masked');
            assert.equal(f.payload.toString(), 'echo:hi');
            assert.equal(be.conns[0].frames[0].masked, true, 'frames to the backend are masked');
        } finally {
            conn.destroy();
        }
    });
});
