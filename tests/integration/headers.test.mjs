// What the backend sees of the client's request: path and query, end-to-end
// headers, X-Forwarded-*, X-Request-Id; and what it must not see:
// hop-by-hop headers and extension offers. Also route matching.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    OP,
    acceptFor,
    gatewayConfig,
    openClient,
    rawRequest,
    startEchoBackend,
    startWsgate,
    upgradeRequest,
    wsKey,
} from './lib/harness.mjs';

const HOP_BY_HOP = ['keep-alive', 'proxy-authorization', 'te', 'trailer', 'x-drop-me', 'x-drop-too'];
const key = wsKey();

describe('request forwarding', () => {
    let be;
    let gw;
    before(async () => {
        // perMessageDeflate on: if wsgate leaked the client's extension offer,
        // this backend would accept it.
        be = await startEchoBackend({ perMessageDeflate: true });
        gw = await startWsgate({ config: gatewayConfig(be.port) });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('path, query and end-to-end headers reach the backend; X-Forwarded-* are set', async () => {
        const c = await openClient(gw.url('/chat/room%201?x=1&y=two&x=3'), {
            origin: 'https://app.example.test',
            headers: {
                Cookie: 'session=abc123; theme=dark',
                Authorization: 'Bearer token-xyz',
                'User-Agent': 'wsgate-integration/1.0',
                'X-Custom': 'kept',
            },
        });
        try {
            const bc = await be.nextConnection();
            const h = bc.headers;
            assert.equal(bc.url, '/chat/room%201?x=1&y=two&x=3');
            assert.equal(h.host, `127.0.0.1:${gw.port}`, 'Host must be the client Host');
            assert.equal(h.origin, 'https://app.example.test');
            assert.equal(h.cookie, 'session=abc123; theme=dark');
            assert.equal(h.authorization, 'Bearer token-xyz');
            assert.equal(h['user-agent'], 'wsgate-integration/1.0');
            assert.equal(h['x-custom'], 'kept');
            assert.equal(h['x-forwarded-for'], '127.0.0.1');
            assert.equal(h['x-forwarded-proto'], 'http');
            assert.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`);
            assert.ok(h['x-request-id'] && h['x-request-id'].trim().length > 0, 'a generated X-Request-Id');
            assert.equal(h.upgrade?.toLowerCase(), 'websocket');
            assert.equal(h['sec-websocket-version'], '13');
            c.ws.close(1000);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/chat/room%201?x=1&y=two&x=3', 5000, 'the access log line');
            assert.equal(line.request_id, h['x-request-id'], 'the access log names the X-Request-Id sent to the backend');
        } finally {
            c.close();
        }
    });

    test('X-Request-Id sent by the client is kept', async () => {
        const c = await openClient(gw.url('/rid'), { headers: { 'X-Request-Id': 'client-chosen-id-42' } });
        try {
            const bc = await be.nextConnection();
            assert.equal(bc.headers['x-request-id'], 'client-chosen-id-42');
        } finally {
            c.close();
        }
    });

    test('generated X-Request-Ids differ between connections', async () => {
        const a = await openClient(gw.url('/rid'));
        const ba = await be.nextConnection();
        const b = await openClient(gw.url('/rid'));
        const bb = await be.nextConnection();
        try {
            assert.ok(ba.headers['x-request-id']);
            assert.notEqual(ba.headers['x-request-id'], bb.headers['x-request-id']);
        } finally {
            a.close();
            b.close();
        }
    });

    test('hop-by-hop headers and headers named in Connection are not forwarded', async () => {
        const req = upgradeRequest({
            path: '/hop',
            host: `127.0.0.1:${gw.port}`,
            key,
            connection: 'keep-alive, Upgrade, X-Drop-Me, x-drop-too',
            headers: [
                ['Keep-Alive', 'timeout=5'],
                ['Proxy-Authorization', 'Basic c2VjcmV0'],
                ['TE', 'trailers'],
                ['Trailer', 'X-Foo'],
                ['X-Drop-Me', 'secret-1'],
                ['X-Drop-Too', 'secret-2'],
                ['X-Keep-Me', 'fine'],
            ],
        });
        const { conn, res } = await rawRequest(gw.port, req);
        try {
            assert.equal(res.status, 101, res.startLine);
            assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
            const bc = await be.nextConnection();
            for (const name of HOP_BY_HOP) assert.equal(bc.headers[name], undefined, `${name} must not reach the backend`);
            assert.equal(bc.headers['x-keep-me'], 'fine');
            const tokens = String(bc.headers.connection ?? '')
                .split(',')
                .map((t) => t.trim().toLowerCase());
            assert.deepEqual(tokens, ['upgrade'], `backend Connection header: ${bc.headers.connection}`);
            assert.equal(bc.headers.upgrade?.toLowerCase(), 'websocket');
            await conn.sendText('still works');
            const f = await conn.readFrame();
            assert.equal(f.opcode, OP.TEXT);
            assert.equal(f.payload.toString(), 'still works');
        } finally {
            conn.destroy();
        }
    });

    test('Sec-WebSocket-Extensions is not forwarded; the client ends up with no extension', async () => {
        // ws offers permessage-deflate by default.
        const c = await openClient(gw.url('/ext'), { perMessageDeflate: true });
        try {
            const bc = await be.nextConnection();
            assert.equal(bc.headers['sec-websocket-extensions'], undefined, 'backend saw an extension offer');
            assert.equal(bc.ws.extensions, '', 'backend negotiated an extension');
            assert.equal(c.ws.extensions, '', 'client negotiated an extension');
            const big = 'compressible '.repeat(5000);
            c.ws.send(big);
            assert.equal((await c.nextMessage()).data.toString(), big);
        } finally {
            c.close();
        }
    });
});

describe('routing', () => {
    let a;
    let b;
    let gw;
    before(async () => {
        a = await startEchoBackend();
        b = await startEchoBackend();
        gw = await startWsgate({
            config: gatewayConfig(0, {
                routes: [
                    { path: '/a', backend: a.url },
                    { path: '/a/b', backend: b.url },
                ],
            }),
        });
    });
    after(async () => {
        await gw?.stop();
        await a?.close();
        await b?.close();
    });

    const cases = [
        ['/a', 'a'],
        ['/a/', 'a'],
        ['/a?x=/a/b', 'a'],
        ['/a/bc', 'a'],
        ['/a/b', 'b'],
        ['/a/b/', 'b'],
        ['/a/b/c?d=1', 'b'],
    ];
    for (const [p, want] of cases) {
        test(`${p} goes to backend ${want} (longest prefix on segment boundaries)`, async () => {
            const c = await openClient(gw.url(p));
            try {
                const target = want === 'a' ? a : b;
                const bc = await target.nextConnection();
                assert.equal(bc.url, p);
                assert.equal((want === 'a' ? b : a).accepted.items.length, 0, 'the other backend got a connection');
            } finally {
                c.close();
            }
        });
    }

    for (const p of ['/', '/ab', '/b', '/A']) {
        test(`${p} matches no route: 404`, async () => {
            const { conn, res } = await rawRequest(gw.port, upgradeRequest({ path: p, host: `127.0.0.1:${gw.port}` }));
            conn.destroy();
            assert.equal(res.status, 404, res.startLine);
            assert.equal(a.accepted.items.length + b.accepted.items.length, 0, 'a backend got a connection');
        });
    }
});
