// Plain HTTP on the same port as WebSockets: requests proxied to the
// route's upstream with keep-alive on both sides, bodies streamed both ways
// with bounded memory, Server-Sent Events and long-polls flowing as they are
// produced, HEAD/204/304/100-continue, request and response smuggling kept
// out, and an upgrade after plain requests on one connection.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer, delay, rawConnect, startRawBackend, startWsgate, vmRssBytes, waitUntil } from './lib/harness.mjs';

const MIB = 1024 * 1024;

/** A Node HTTP server that also accepts WebSockets, counting its TCP connections. */
async function startAppBackend(name = 'app') {
    const be = { name, connections: 0, requests: [], upgrades: [] };
    be.server = http.createServer((req, res) => {
        be.requests.push({ method: req.method, url: req.url, headers: req.headers });
        const url = new URL(req.url, 'http://x');
        const p = url.pathname;
        if (p === '/hello') {
            res.setHeader('X-Backend', name);
            res.setHeader('Connection', 'keep-alive, X-Secret-Hop');
            res.setHeader('X-Secret-Hop', 'must not reach the client');
            // Stated explicitly: Node leaves it out of HEAD answers otherwise.
            res.setHeader('Content-Length', Buffer.byteLength(`hello from ${name}`));
            res.end(`hello from ${name}`);
        } else if (p === '/headers') {
            res.setHeader('Content-Type', 'application/json');
            res.end(JSON.stringify({ url: req.url, headers: req.headers }));
        } else if (p === '/upload') {
            const h = crypto.createHash('sha256');
            let bytes = 0;
            req.on('data', (d) => {
                h.update(d);
                bytes += d.length;
            });
            req.on('end', () => res.end(JSON.stringify({ bytes, sha256: h.digest('hex') })));
        } else if (p === '/download') {
            const size = Number(url.searchParams.get('size'));
            const chunk = Buffer.alloc(64 * 1024, 7);
            let sent = 0;
            if (url.searchParams.get('length') === '1') res.setHeader('Content-Length', size);
            const pump = () => {
                while (sent < size) {
                    const n = Math.min(chunk.length, size - sent);
                    sent += n;
                    if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
                }
                res.end();
            };
            pump();
        } else if (p === '/sse') {
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
            let i = 0;
            const n = Number(url.searchParams.get('n') ?? 1000);
            const t = setInterval(() => {
                res.write(`id: ${i}\ndata: ${Date.now()}\n\n`);
                if (++i === n) {
                    clearInterval(t);
                    res.end();
                }
            }, 2);
        } else if (p === '/long') {
            setTimeout(() => res.end('finally'), Number(url.searchParams.get('ms')));
        } else if (p === '/204') {
            res.writeHead(204);
            res.end();
        } else if (p === '/304') {
            res.writeHead(304, { ETag: '"v1"' });
            res.end();
        } else {
            res.writeHead(404);
            res.end('no such page');
        }
    });
    be.server.on('checkContinue', (req, res) => {
        be.continued = true;
        res.writeContinue();
        be.server.emit('request', req, res);
    });
    be.server.on('connection', () => be.connections++);
    be.wss = new WebSocketServer({ noServer: true });
    be.server.on('upgrade', (req, socket, head) => {
        be.wss.handleUpgrade(req, socket, head, (ws) => {
            be.upgrades.push(req.url);
            ws.on('message', (d, bin) => ws.send(d, { binary: bin }));
        });
    });
    be.wss.on('headers', (headers) => headers.push('Set-Cookie: up=1; Path=/', 'X-Upgraded-By: ' + name));
    await new Promise((r) => be.server.listen(0, '127.0.0.1', r));
    be.port = be.server.address().port;
    be.close = () =>
        new Promise((r) => {
            be.server.closeAllConnections?.();
            for (const c of be.wss.clients) c.terminate();
            be.server.close(() => r());
        });
    return be;
}

/** One request through an agent; resolves { status, headers, body }. */
function request(port, path, { method = 'GET', headers = {}, body, agent, timeout = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), rawHeaders: res.rawHeaders }));
            res.on('error', reject);
        });
        req.setTimeout(timeout, () => req.destroy(new Error(`request ${path} timed out`)));
        req.on('error', reject);
        if (body) req.end(body);
        else req.end();
    });
}

describe('plain HTTP through a route', () => {
    let be;
    let gw;
    before(async () => {
        be = await startAppBackend();
        gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  app: {backends: [ws://127.0.0.1:${be.port}]}
routes:
  - {match: {path_prefix: /ws-only}, upstream: app, websocket_only: true}
  - {upstream: app}
`,
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('a GET is proxied with forwarding headers, and hop-by-hop headers stay behind', async () => {
        const r = await request(gw.port, '/headers?a=1', { headers: { 'X-Request-Id': 'rid-123', Connection: 'X-Drop-Me', 'X-Drop-Me': 'secret', 'Keep-Alive': 'timeout=5' } });
        assert.equal(r.status, 200);
        const seen = JSON.parse(r.body);
        assert.equal(seen.url, '/headers?a=1');
        assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(seen.headers['x-forwarded-proto'], 'http');
        assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${gw.port}`);
        assert.equal(seen.headers['x-request-id'], 'rid-123');
        assert.equal(seen.headers['x-drop-me'], undefined, 'a header the Connection field names is hop-by-hop');
        assert.equal(seen.headers['keep-alive'], undefined);
        const h = await request(gw.port, '/hello');
        assert.equal(h.body.toString(), 'hello from app');
        assert.equal(h.headers['x-backend'], 'app');
        assert.equal(h.headers['x-secret-hop'], undefined, "the backend's Connection-named header is dropped");
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.type === 'http' && l.path === '/hello', 5000, 'an http access line');
        assert.equal(line.method, 'GET');
        assert.equal(line.status, 200);
        assert.equal(line.bytes_out, 'hello from app'.length);
        assert.equal(line.backend, `127.0.0.1:${be.port}`);
    });

    test('keep-alive on both sides: 100 requests on one client connection, few backend connections', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const before = be.connections;
        const clientSockets = new Set();
        agent.on('free', (s) => clientSockets.add(s));
        for (let i = 0; i < 100; i++) {
            const r = await request(gw.port, `/hello?i=${i}`, { agent });
            assert.equal(r.status, 200);
        }
        agent.destroy();
        assert.equal(clientSockets.size, 1, `the client used ${clientSockets.size} connections`);
        assert.ok(be.connections - before <= 2, `the backend saw ${be.connections - before} new connections for 100 requests`);
    });

    test('HEAD, 204, 304 and 100-continue', async () => {
        const head = await request(gw.port, '/hello', { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.body.length, 0);
        assert.equal(head.headers['content-length'], String('hello from app'.length), 'HEAD keeps the length it describes');
        const nc = await request(gw.port, '/204');
        assert.equal(nc.status, 204);
        const nm = await request(gw.port, '/304', { headers: { 'If-None-Match': '"v1"' } });
        assert.equal(nm.status, 304);
        assert.equal(nm.headers.etag, '"v1"');
        // 100-continue: the client waits for the 100 before sending its body.
        const conn = await rawConnect(gw.port);
        try {
            conn.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
            const cont = await conn.readHead();
            assert.equal(cont.status, 100);
            conn.write('hello');
            const fin = await conn.readHead();
            assert.equal(fin.status, 200);
            assert.ok(be.continued);
        } finally {
            conn.destroy();
        }
        // Keep-alive survives all of them on one connection.
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        for (const [m, p] of [['HEAD', '/hello'], ['GET', '/204'], ['GET', '/304'], ['GET', '/hello']]) assert.ok((await request(gw.port, p, { method: m, agent })).status < 400);
        agent.destroy();
    });

    test('a websocket_only route keeps answering plain requests with 426', async () => {
        const r = await request(gw.port, '/ws-only/x');
        assert.equal(r.status, 426);
    });

    test('an upgrade after plain requests on the same connection; the 101 carries the backend\'s own headers', async () => {
        const conn = await rawConnect(gw.port);
        try {
            for (let i = 0; i < 3; i++) {
                conn.write(`GET /hello HTTP/1.1\r\nHost: x\r\n\r\n`);
                const h = await conn.readHead();
                assert.equal(h.status, 200);
                await conn.readBytes(Number(h.headers['content-length']));
            }
            const key = crypto.randomBytes(16).toString('base64');
            conn.write(`GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
            const up = await conn.readHead();
            assert.equal(up.status, 101);
            assert.equal(up.headers['set-cookie'], 'up=1; Path=/', "the backend's Set-Cookie on its 101 reaches the client");
            assert.equal(up.headers['x-upgraded-by'], 'app');
            await conn.sendText('ping over the same connection');
            const f = await conn.readFrame();
            assert.equal(f.payload.toString(), 'ping over the same connection');
            assert.ok(be.upgrades.includes('/chat'));
        } finally {
            conn.destroy();
        }
    });

    test('Server-Sent Events flow as written: 1,000 events, each within 50 ms', { timeout: 30000 }, async (t) => {
        const delays = [];
        await new Promise((resolve, reject) => {
            http.get({ host: '127.0.0.1', port: gw.port, path: '/sse?n=1000' }, (res) => {
                assert.equal(res.headers['content-type'], 'text/event-stream');
                let buf = '';
                res.setEncoding('utf8');
                res.on('data', (d) => {
                    const now = Date.now();
                    buf += d;
                    let i;
                    while ((i = buf.indexOf('\n\n')) >= 0) {
                        const ev = buf.slice(0, i);
                        buf = buf.slice(i + 2);
                        const m = /data: (\d+)/.exec(ev);
                        if (m) delays.push(now - Number(m[1]));
                    }
                });
                res.on('end', resolve);
                res.on('error', reject);
            }).on('error', reject);
        });
        assert.equal(delays.length, 1000);
        const worst = Math.max(...delays);
        t.diagnostic(`worst event delay ${worst} ms`);
        assert.ok(worst <= 50, `an event took ${worst} ms to arrive`);
    });

    test('a long-poll held 55 s is answered', { timeout: 70000 }, async () => {
        const r = await request(gw.port, '/long?ms=55000', { timeout: 65000 });
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'finally');
    });

    test('a 200 MiB chunked upload and a 200 MiB download stream through with bounded memory', { timeout: 120000 }, async (t) => {
        const baseline = vmRssBytes(gw.pid);
        let peak = baseline;
        const sampler = setInterval(() => (peak = Math.max(peak, vmRssBytes(gw.pid))), 50);
        try {
            const total = 200 * MIB;
            const h = crypto.createHash('sha256');
            const r = await new Promise((resolve, reject) => {
                const req = http.request({ host: '127.0.0.1', port: gw.port, path: '/upload', method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
                    let body = '';
                    res.on('data', (d) => (body += d));
                    res.on('end', () => resolve(JSON.parse(body)));
                });
                req.on('error', reject);
                let sent = 0;
                const chunk = crypto.randomBytes(256 * 1024);
                const pump = () => {
                    while (sent < total) {
                        sent += chunk.length;
                        h.update(chunk);
                        if (!req.write(chunk)) return req.once('drain', pump);
                    }
                    req.end();
                };
                pump();
            });
            assert.equal(r.bytes, total);
            assert.equal(r.sha256, h.digest('hex'));
            for (const length of ['0', '1']) {
                let got = 0;
                await new Promise((resolve, reject) => {
                    http.get({ host: '127.0.0.1', port: gw.port, path: `/download?size=${total}&length=${length}` }, (res) => {
                        res.on('data', (d) => (got += d.length));
                        res.on('end', resolve);
                        res.on('error', reject);
                    }).on('error', reject);
                });
                assert.equal(got, total);
            }
        } finally {
            clearInterval(sampler);
        }
        t.diagnostic(`RSS ${(baseline / MIB).toFixed(1)} MiB before, peak ${(peak / MIB).toFixed(1)} MiB`);
        assert.ok(peak - baseline < 24 * MIB, `wsgate grew by ${((peak - baseline) / MIB).toFixed(1)} MiB while 600 MiB streamed`);
    });

    test('a TLS ClientHello on this plain listener is logged as such', async () => {
        const conn = await rawConnect(gw.port);
        try {
            // No line end in it: nothing a line-based parser could stop at.
            conn.write(Buffer.from('16030100c8010000c40303', 'hex'));
            conn.write(crypto.randomBytes(200).map((b) => (b === 10 || b === 13 ? 0x41 : b)));
            await conn.waitGone(5000);
        } finally {
            conn.destroy();
        }
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'tls_on_plain_listener', 5000, 'the tls_on_plain_listener line');
        assert.equal(line.status, 400);
    });
});

describe('pipelining, HTTP/1.0, limits and timeouts', () => {
    let be;
    let gw;
    before(async () => {
        be = await startAppBackend();
        be.server.keepAliveTimeout = 300; // closes idle connections wsgate keeps pooled
        gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  app: {backends: [ws://127.0.0.1:${be.port}]}
routes:
  - {match: {path_prefix: /upload}, upstream: app, max_request_body: 1KiB, request_timeout: 500ms}
  - {match: {path_prefix: /long}, upstream: app, response_timeout: 500ms}
  - {upstream: app, http_idle_timeout: 1s}
`,
        });
    });
    after(async () => {
        await gw?.stop();
        await be?.close();
    });

    test('pipelined requests in one write, one with a body, then a FIN: all answered in order', async () => {
        const conn = await rawConnect(gw.port);
        try {
            await conn.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /hello?n=2 HTTP/1.1\r\nHost: x\r\n\r\nGET /headers?n=3 HTTP/1.1\r\nHost: x\r\n\r\n');
            conn.socket.end(); // half-close, as `printf ... | nc` does
            const a = await conn.readHead();
            assert.equal(a.status, 200);
            assert.equal(JSON.parse(await conn.readBody(a)).bytes, 5);
            const b = await conn.readHead();
            assert.equal((await conn.readBody(b)).toString(), 'hello from app');
            const c = await conn.readHead();
            assert.equal(JSON.parse(await conn.readBody(c)).url, '/headers?n=3');
            await conn.waitGone(5000);
        } finally {
            conn.destroy();
        }
    });

    test('HTTP/1.0: no Host needed, a chunked response is decoded and ended by closing', async () => {
        const conn = await rawConnect(gw.port);
        try {
            conn.write('GET /sse?n=3 HTTP/1.0\r\n\r\n');
            const h = await conn.readHead();
            assert.equal(h.status, 200);
            assert.equal(h.headers['transfer-encoding'], undefined);
            assert.equal(h.headers.connection, 'close');
            const body = (await conn.readBody(h)).toString();
            assert.match(body, /^id: 0\ndata: \d+\n\nid: 1\ndata: \d+\n\nid: 2\ndata: \d+\n\n$/);
        } finally {
            conn.destroy();
        }
        // keep-alive asked for by an HTTP/1.0 client is honoured.
        const ka = await rawConnect(gw.port);
        try {
            for (let i = 0; i < 2; i++) {
                ka.write('GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
                const h = await ka.readHead();
                assert.equal(h.headers.connection, 'keep-alive');
                assert.equal((await ka.readBody(h)).toString(), 'hello from app');
            }
        } finally {
            ka.destroy();
        }
    });

    test('max_request_body: 413 by Content-Length at once, and by count for a chunked body', async () => {
        const big = await request(gw.port, '/upload', { method: 'POST', body: Buffer.alloc(2048, 1) });
        assert.equal(big.status, 413);
        const conn = await rawConnect(gw.port);
        try {
            conn.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
            conn.write('400\r\n' + 'a'.repeat(1024) + '\r\n');
            conn.write('10\r\n' + 'b'.repeat(16) + '\r\n');
            const h = await conn.readHead();
            assert.equal(h.status, 413);
            await conn.waitGone(5000);
        } finally {
            conn.destroy();
        }
        // The same in one write: the body arrives with the head.
        const one = await rawConnect(gw.port);
        try {
            one.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n' + 'a'.repeat(1024) + '\r\n10\r\n' + 'b'.repeat(16) + '\r\n');
            assert.equal((await one.readHead()).status, 413);
            await one.waitGone(5000);
        } finally {
            one.destroy();
        }
        const ok = await request(gw.port, '/upload', { method: 'POST', body: Buffer.alloc(1024, 1) });
        assert.equal(ok.status, 200);
        assert.equal(JSON.parse(ok.body).bytes, 1024);
    });

    test('request_timeout: a stalled body gets 408; response_timeout: a slow backend gets 504', async () => {
        const conn = await rawConnect(gw.port);
        try {
            conn.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
            const h = await conn.readHead(3000);
            assert.equal(h.status, 408);
        } finally {
            conn.destroy();
        }
        const t0 = Date.now();
        const r = await request(gw.port, '/long?ms=3000');
        assert.equal(r.status, 504);
        assert.ok(Date.now() - t0 < 2500, `504 after ${Date.now() - t0} ms`);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.type === 'http' && l.status === 504, 5000, 'the 504 line');
        assert.equal(line.error, 'response_timeout');
    });

    test('http_idle_timeout closes an idle kept-alive connection; a backend closing a pooled one costs no request', async () => {
        const conn = await rawConnect(gw.port);
        try {
            conn.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
            const h = await conn.readHead();
            await conn.readBody(h);
            const t0 = Date.now();
            await conn.waitGone(5000);
            const idle = Date.now() - t0;
            assert.ok(idle >= 900 && idle < 3000, `closed after ${idle} ms`);
        } finally {
            conn.destroy();
        }
        // The backend closes its idle connections after 300 ms; wsgate must
        // notice and use a fresh one.
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        for (let i = 0; i < 3; i++) {
            const r = await request(gw.port, '/hello', { agent });
            assert.equal(r.status, 200);
            await delay(500);
        }
        agent.destroy();
    });
});

describe('smuggling stays out', () => {
    let raw;
    let gw;
    let received;
    before(async () => {
        received = [];
        raw = await startRawBackend(async (c) => {
            c.socket.on('data', (d) => received.push(d.toString('latin1')));
        });
        gw = await startWsgate({ config: `listen: 127.0.0.1:0\nworkers: 1\nroutes:\n  - {path: /, backend: ws://127.0.0.1:${raw.port}}\n` });
    });
    after(async () => {
        await gw?.stop();
        await raw?.close();
    });

    const cases = [
        ['Content-Length and Transfer-Encoding', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
        ['two Content-Length fields', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde'],
        ['a Content-Length list', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd'],
        ['an invalid Content-Length', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd'],
        ['a coding other than chunked', 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
        ['Transfer-Encoding in HTTP/1.0', 'POST /x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
        ['obs-fold', 'GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
        ['a bare LF', 'GET /x HTTP/1.1\nHost: x\r\n\r\n'],
        ['a bare CR', 'GET /x HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n'],
        ['a NUL', 'GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n'],
        ['no Host in HTTP/1.1', 'GET /x HTTP/1.1\r\nX-A: b\r\n\r\n'],
        ['two Host fields', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
        ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
    ];
    for (const [what, text] of cases) {
        test(`${what}: refused, and the backend receives nothing`, async () => {
            const before = received.length;
            const conn = await rawConnect(gw.port);
            try {
                conn.write(text);
                const h = await conn.readHead();
                assert.ok(h.status === 400 || h.status === 405, `status ${h.status}`);
                await conn.waitGone(5000);
            } finally {
                conn.destroy();
            }
            await delay(50); // anything forwarded would have arrived by now
            assert.equal(received.length, before, `the backend received: ${JSON.stringify(received.slice(before))}`);
        });
    }

    test('an invalid chunk in a streamed body ends the exchange; nothing after it is forwarded', async () => {
        const conn = await rawConnect(gw.port);
        const bc = raw.nextConnection();
        try {
            conn.write('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
            const c = await bc;
            await waitUntil(() => c.allReceived.toString('latin1').includes('hello'), { what: 'the valid chunk at the backend' });
            conn.write('ZZ\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
            const h = await conn.readHead();
            assert.equal(h.status, 400);
            await conn.waitGone(5000);
            await delay(50);
            const got = c.allReceived.toString('latin1');
            assert.ok(!got.includes('ZZ') && !got.includes('/smuggled'), got);
        } finally {
            conn.destroy();
        }
        // All in one write: refused before any backend connection.
        const before = received.length;
        const one = await rawConnect(gw.port);
        try {
            one.write('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
            assert.equal((await one.readHead()).status, 400);
            await one.waitGone(5000);
        } finally {
            one.destroy();
        }
        await delay(50);
        assert.ok(!received.slice(before).join('').includes('/smuggled'));
    });
});

describe('a backend that smuggles responses', () => {
    test('Content-Length with Transfer-Encoding: 502, and the connection is not reused', async () => {
        let conns = 0;
        const raw = await startRawBackend(async (c) => {
            conns++;
            await c.readHead();
            c.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
        });
        const gw = await startWsgate({ config: `listen: 127.0.0.1:0\nworkers: 1\nroutes:\n  - {path: /, backend: ws://127.0.0.1:${raw.port}}\n` });
        try {
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            const a = await request(gw.port, '/a', { agent });
            assert.equal(a.status, 502);
            const b = await request(gw.port, '/b', { agent }).catch((e) => ({ status: 0, error: e }));
            assert.notEqual(b.body?.toString(), 'smuggled');
            assert.ok(conns >= 2, 'the bad connection was reused');
            agent.destroy();
        } finally {
            await gw.stop();
            await raw.close();
        }
    });
});

describe('stickiness covers plain requests and the later upgrade', () => {
    test('the first response sets the cookie; later requests and the upgrade follow it', async () => {
        const a = await startAppBackend('a');
        const b = await startAppBackend('b');
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  app:
    backends: [ws://127.0.0.1:${a.port}, ws://127.0.0.1:${b.port}]
    sticky: {cookie: SRV}
routes:
  - {upstream: app}
`,
        });
        try {
            const first = await request(gw.port, '/hello');
            const cookie = first.headers['set-cookie'][0].split(';')[0];
            const owner = first.headers['x-backend'];
            for (let i = 0; i < 10; i++) {
                const r = await request(gw.port, '/hello', { headers: { Cookie: cookie } });
                assert.equal(r.headers['x-backend'], owner);
                assert.equal(r.headers['set-cookie'], undefined);
            }
            const ws = new WebSocket(gw.url('/socket'), { headers: { Cookie: cookie } });
            await new Promise((res, rej) => {
                ws.once('open', res);
                ws.once('error', rej);
            });
            ws.close();
            assert.ok((owner === 'a' ? a : b).upgrades.includes('/socket'), 'the upgrade went to the same backend');
        } finally {
            await gw.stop();
            await a.close();
            await b.close();
        }
    });
});

