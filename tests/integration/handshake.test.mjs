// Client handshakes that wsgate must refuse, each with its HTTP status, read
// from a raw TCP socket; the backend must never see a connection for them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    OP,
    acceptFor,
    delay,
    encodeFrame,
    gatewayConfig,
    rawConnect,
    rawRequest,
    startEchoBackend,
    startWsgate,
    upgradeRequest,
    wsKey,
} from './lib/harness.mjs';

let be;
let gw;
before(async () => {
    be = await startEchoBackend();
    gw = await startWsgate({
        config: gatewayConfig(be.port, {
            handshake_timeout: '300ms',
            max_header_size: '4KiB',
            max_headers: 20,
            // The rejections below are the WebSocket path's: plain
            // requests are refused (426) rather than proxied on this route.
            routes: [{ path: '/ws', backend: be.url, websocket_only: true }],
        }),
    });
});
after(async () => {
    await gw?.stop();
    await be?.close();
});

const req = (o = {}) => upgradeRequest({ path: '/ws', host: `127.0.0.1:${gw.port}`, ...o });
const extra = (headers, o = {}) => req({ headers, ...o });

// [name, () => request bytes, expected status, check(res)?]
const cases = [
    ['POST', () => req({ method: 'POST' }), 405],
    ['HTTP/1.0', () => req({ httpVersion: 'HTTP/1.0' }), 400],
    ['missing Sec-WebSocket-Key', () => req({ key: null }), 400],
    ['Sec-WebSocket-Key of 10 bytes', () => req({ key: 'dGhlIHNhbXBsZQ==' }), 400],
    ['Sec-WebSocket-Key of 17 bytes', () => req({ key: 'AAAAAAAAAAAAAAAAAAAAAAA=' }), 400],
    ['Sec-WebSocket-Key not base64', () => req({ key: 'AAAAAAAAAAAAAAAAAAAAA!==' }), 400],
    ['missing Host', () => req({ host: null }), 400],
    ['duplicate Host', () => extra([['Host', '127.0.0.1']]), 400],
    ['Transfer-Encoding present', () => extra([['Transfer-Encoding', 'chunked']]), 400],
    ['Content-Length: 5', () => extra([['Content-Length', '5']]) + 'hello', 400],
    ['obs-fold', () => extra([['X-Folded', 'first\r\n second']]), 400],
    ['bare LF line endings', () => req({ eol: '\n' }), 400],
    ['NUL inside a header value', () => extra([['X-Bad', 'a\u0000b']]), 400],
    ['CR inside a header value', () => extra([['X-Bad', 'a\rb']]), 400],
    ['Sec-WebSocket-Version: 8', () => req({ version: '8' }), 426, versionHeader],
    ['no Upgrade and no Connection', () => req({ upgrade: null, connection: null }), 426, versionHeader],
    ['Connection without the upgrade token', () => req({ connection: 'keep-alive' }), 426, versionHeader],
    ['header block over max_header_size (4 KiB)', () => extra([['X-Big', 'b'.repeat(6000)]]), 431],
    ['more than max_headers (20) headers', () => extra(Array.from({ length: 30 }, (_, i) => [`X-H${i}`, `v${i}`])), 431],
    ['no route matches', () => req({ path: '/other' }), 404],
    ['no route matches (prefix not on a segment boundary)', () => req({ path: '/wsx' }), 404],
];

function versionHeader(res) {
    assert.equal(res.headers['sec-websocket-version'], '13', `426 must carry Sec-WebSocket-Version: 13; got head:\n${res.headText}`);
}

describe('rejected handshakes', () => {
    for (const [name, build, status, check] of cases) {
        test(`${name} -> ${status}`, async () => {
            const before = gw.accessLogs().filter((l) => l.status === status).length;
            const { conn, res } = await rawRequest(gw.port, build());
            try {
                assert.equal(res.status, status, `status line: ${res.startLine}`);
                if (check) check(res);
                assert.equal(res.headers['sec-websocket-accept'], undefined, 'no accept key on a refusal');
                await gw.waitForLog(() => gw.accessLogs().filter((l) => l.status === status).length > before, 3000, `an access log line with status ${status}`);
                assert.equal(be.tcpConnections, 0, 'the backend saw a connection for a rejected request');
            } finally {
                conn.destroy();
            }
        });
    }
});

describe('handshake timeout', () => {
    test('a partial request is closed within a couple of seconds (408 optional)', async () => {
        const conn = await rawConnect(gw.port);
        try {
            const t0 = Date.now();
            await conn.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\n`);
            await conn.waitGone(2000, 'wsgate to close a connection whose request never completes');
            const took = Date.now() - t0;
            assert.ok(took >= 200, `closed after ${took} ms, before handshake_timeout (300ms)`);
            const got = conn.allReceived.toString('latin1');
            if (got.length) assert.match(got, /^HTTP\/1\.1 408 /, `only a 408 may be sent; got ${JSON.stringify(got.slice(0, 100))}`);
        } finally {
            conn.destroy();
        }
    });

    test('a request trickled one byte per 50 ms is still cut off (the timeout covers the whole head)', async () => {
        const conn = await rawConnect(gw.port);
        try {
            const t0 = Date.now();
            const bytes = Buffer.from(req() + 'X-Padding: ' + 'p'.repeat(200) + '\r\n\r\n');
            let i = 0;
            while (!conn.gone && i < bytes.length - 4 && Date.now() - t0 < 3000) {
                await conn.write(bytes.subarray(i, i + 1));
                i++;
                await delay(50);
            }
            await conn.waitGone(Math.max(1, 2000 - (Date.now() - t0)), 'wsgate to cut off a trickled request');
            assert.ok(Date.now() - t0 < 2000);
        } finally {
            conn.destroy();
        }
    });

    test('no connection was ever made to the backend', () => {
        assert.equal(be.tcpConnections, 0);
    });
});

describe('valid handshakes after all that', () => {
    test('a request written one byte at a time is accepted', async () => {
        const key = wsKey();
        const bytes = Buffer.from(req({ key }));
        const conn = await rawConnect(gw.port);
        try {
            for (let i = 0; i < bytes.length; i++) await conn.write(bytes.subarray(i, i + 1));
            const res = await conn.readHead();
            assert.equal(res.status, 101, res.startLine);
            assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
            assert.equal(res.headers.upgrade?.toLowerCase(), 'websocket');
            assert.match(res.headers.connection ?? '', /upgrade/i);
            await be.nextConnection();
            assert.equal(be.tcpConnections, 1, 'exactly one backend connection: this one');
            await conn.sendText('one byte at a time');
            const f = await conn.readFrame();
            assert.equal(f.payload.toString(), 'one byte at a time');
        } finally {
            conn.destroy();
        }
    });

    test('a frame sent right behind the request (same write) is relayed, not lost', async () => {
        const key = wsKey();
        const conn = await rawConnect(gw.port);
        try {
            await conn.write(Buffer.concat([Buffer.from(req({ key })), encodeFrame({ opcode: OP.TEXT, payload: 'early bird' })]));
            const res = await conn.readHead();
            assert.equal(res.status, 101, res.startLine);
            await be.nextConnection();
            const f = await conn.readFrame();
            assert.equal(f.opcode, OP.TEXT);
            assert.equal(f.payload.toString(), 'early bird');
        } finally {
            conn.destroy();
        }
    });

    test('header names are case-insensitive and tokens are comma lists', async () => {
        const key = wsKey();
        const text = [
            'GET /ws HTTP/1.1',
            `hOST: 127.0.0.1:${gw.port}`,
            'upgrade: WebSocket',
            'connection: keep-alive, UPGRADE',
            `sec-websocket-key: ${key}`,
            'SEC-WEBSOCKET-VERSION: 13',
            '',
            '',
        ].join('\r\n');
        const { conn, res } = await rawRequest(gw.port, text);
        try {
            assert.equal(res.status, 101, res.startLine);
            assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
            await be.nextConnection();
        } finally {
            conn.destroy();
        }
    });
});
