// Admission rules at the handshake, with the real binary and Node's ws:
// Origin allowlists (the cross-site WebSocket hijacking defence),
// subprotocol allowlists (filtered before forwarding), allow/deny address
// rules per route and per listener, and trusted proxies' X-Forwarded-For
// as the client address for rules and logs.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { delay, openClient, startEchoBackend, startWsgate, waitClosed, withTimeout } from './lib/harness.mjs';

/** A result for an assertion message, without the backend connection
 * (a live object: JSON.stringify may meet its timers' cycles). */
const show = (r) => JSON.stringify({ ...r, be: r.be ? { url: r.be.url, headers: r.be.headers } : undefined });

let backend;
before(async () => {
    backend = await startEchoBackend({ protocol: (offered) => offered.at(-1) ?? false });
});
after(async () => {
    await backend?.close();
});

function config(routeExtra, top = '') {
    return `workers: 1
listen: 127.0.0.1:0
${top}routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
${routeExtra}`;
}

/** Open a WebSocket; resolves { ok, status, protocol, client }. */
async function tryOpen(gw, opts = {}, protocols) {
    try {
        const c = await openClient(gw.url('/'), protocols ? { ...opts, protocols } : opts);
        const protocol = c.ws.protocol;
        c.ws.close(1000);
        await waitClosed(c);
        return { ok: true, protocol };
    } catch (e) {
        return { ok: false, status: e.status, body: e.body };
    }
}

function plainGet(port, headers = {}) {
    return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/plain', headers, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        }).on('error', reject);
    });
}

describe('origins', () => {
    let gw;
    before(async () => {
        gw = await startWsgate({ config: config('    origins: ["https://app.example.com", "https://*.example.org", "http://localhost:3000"]\n') });
    });
    after(() => gw?.stop());

    test('a listed Origin (exact, wildcard, with port) gets through', async () => {
        for (const origin of ['https://app.example.com', 'https://chat.example.org', 'https://a.b.example.org', 'http://localhost:3000', 'https://APP.example.com:443']) {
            const r = await tryOpen(gw, { origin });
            assert.equal(r.ok, true, `${origin}: ${show(r)}`);
        }
    });

    test('another Origin gets 403 and never reaches the backend; the log says origin', async () => {
        const before = backend.connections.length;
        for (const origin of ['https://evil.example', 'http://app.example.com', 'https://app.example.com:8443', 'https://example.org', 'null']) {
            const r = await tryOpen(gw, { origin });
            assert.equal(r.status, 403, `${origin}: ${show(r)}`);
        }
        assert.equal(backend.connections.length, before);
        const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.error === 'origin', 5);
        assert.ok(lines.every((l) => l.status === 403 && l.backend === ''));
    });

    test('a client without Origin (not a browser) is let in; plain requests are not judged by Origin', async () => {
        const r = await tryOpen(gw, {});
        assert.equal(r.ok, true);
        // ws sets no Origin unless asked; a plain request with a foreign Origin is served.
        assert.equal(await plainGet(gw.port, { origin: 'https://evil.example' }), 426);
    });

    test('require_origin refuses a handshake without Origin', async () => {
        const gw2 = await startWsgate({ config: config('    origins: ["https://app.example.com"]\n    require_origin: true\n') });
        try {
            assert.equal((await tryOpen(gw2, {})).status, 403);
            assert.equal((await tryOpen(gw2, { origin: 'https://app.example.com' })).ok, true);
        } finally {
            await gw2.stop();
        }
    });
});

describe('subprotocols', () => {
    test('offered entries not listed are removed before forwarding; the backend chooses among the rest', async () => {
        const gw = await startWsgate({ config: config('    subprotocols: [mqtt, graphql-transport-ws]\n') });
        try {
            // The backend picks the last entry it is offered.
            const r = await tryOpen(gw, {}, ['graphql-transport-ws', 'chat', 'mqtt', 'superchat']);
            assert.equal(r.ok, true);
            assert.equal(r.protocol, 'mqtt');
            const be = backend.connections.at(-1);
            assert.equal(be.headers['sec-websocket-protocol'], 'graphql-transport-ws, mqtt');
            // Nothing listed offered: forwarded without the header (no
            // require_subprotocol); the backend answers with none, which
            // Node's ws client, having asked for one, refuses by itself.
            const n = backend.connections.length;
            const r2 = await tryOpen(gw, {}, ['chat']);
            assert.equal(r2.ok, false);
            assert.equal(backend.connections.length, n + 1);
            assert.equal(backend.connections.at(-1).headers['sec-websocket-protocol'], undefined);
        } finally {
            await gw.stop();
        }
    });

    test('require_subprotocol: 400 when no listed entry is offered', async () => {
        const gw = await startWsgate({ config: config('    subprotocols: [mqtt]\n    require_subprotocol: true\n') });
        try {
            assert.equal((await tryOpen(gw, {}, ['chat'])).status, 400);
            assert.equal((await tryOpen(gw, {})).status, 400);
            assert.equal((await tryOpen(gw, {}, ['chat', 'mqtt'])).protocol, 'mqtt');
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'subprotocol');
            assert.equal(line.status, 400);
        } finally {
            await gw.stop();
        }
    });
});

describe('address rules', () => {
    test('a route deny list answers 403 to WebSockets and plain requests alike', async () => {
        const gw = await startWsgate({ config: config('    deny: [127.0.0.0/8]\n') });
        try {
            assert.equal((await tryOpen(gw, {})).status, 403);
            assert.equal(await plainGet(gw.port), 403);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'ip_denied');
            assert.equal(line.status, 403);
        } finally {
            await gw.stop();
        }
    });

    test('a route allow list lets only its ranges in', async () => {
        let gw = await startWsgate({ config: config('    allow: [10.0.0.0/8, "::1"]\n') });
        try {
            assert.equal((await tryOpen(gw, {})).status, 403);
        } finally {
            await gw.stop();
        }
        gw = await startWsgate({ config: config('    allow: [127.0.0.1]\n') });
        try {
            assert.equal((await tryOpen(gw, {})).ok, true);
        } finally {
            await gw.stop();
        }
    });

    test('a listener deny list closes the connection at once, answering nothing', async () => {
        const gw = await startWsgate({
            config: `workers: 1
listeners:
  - address: 127.0.0.1:0
    deny: [127.0.0.0/8]
routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
`,
        });
        try {
            const got = await withTimeout(
                new Promise((resolve) => {
                    const s = net.connect(gw.port, '127.0.0.1');
                    let data = '';
                    s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
                    s.on('data', (d) => (data += d));
                    s.on('close', () => resolve(data));
                    s.on('error', () => {});
                }),
                3000,
                'the refused connection to close',
            );
            assert.equal(got, '');
            assert.equal(gw.accessLogs().length, 0);
        } finally {
            await gw.stop();
        }
    });
});

describe('trusted proxies', () => {
    test('behind a trusted proxy, X-Forwarded-For names the client for rules and logs', async () => {
        const gw = await startWsgate({ config: config('    deny: [198.51.100.0/24]\n', 'trusted_proxies: [127.0.0.1]\n') });
        try {
            // The proxy (127.0.0.1) reports a denied client.
            assert.equal((await tryOpen(gw, { headers: { 'X-Forwarded-For': '203.0.113.1, 198.51.100.7' } })).status, 403);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'ip_denied');
            assert.equal(line.client, '198.51.100.7');
            assert.match(line.peer, /^127\.0\.0\.1:\d+$/);
            // An allowed client: the backend sees the whole chain plus the proxy.
            const r = await tryOpen(gw, { headers: { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9' } });
            assert.equal(r.ok, true);
            assert.equal(backend.connections.at(-1).headers['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 127.0.0.1');
            const ok = await gw.waitForLog((l) => l.msg === 'access' && l.status === 101);
            assert.equal(ok.client, '203.0.113.9');
        } finally {
            await gw.stop();
        }
    });

    test('without trusted_proxies a client cannot pick its address with X-Forwarded-For', async () => {
        const gw = await startWsgate({ config: config('    deny: [127.0.0.0/8]\n') });
        try {
            assert.equal((await tryOpen(gw, { headers: { 'X-Forwarded-For': '198.51.100.7' } })).status, 403);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'ip_denied');
            assert.match(line.client, /^127\.0\.0\.1:\d+$/);
            assert.equal(line.peer, undefined);
        } finally {
            await gw.stop();
        }
    });
});

describe('PROXY protocol', () => {
    const v2 = (src, sport) => {
        const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
        const b = Buffer.alloc(16 + 12);
        sig.copy(b);
        b[12] = 0x21; // v2, PROXY
        b[13] = 0x11; // TCP over IPv4
        b.writeUInt16BE(12, 14);
        src.split('.').forEach((o, i) => (b[16 + i] = +o));
        [192, 0, 2, 99].forEach((o, i) => (b[20 + i] = o));
        b.writeUInt16BE(sport, 24);
        b.writeUInt16BE(443, 26);
        return b;
    };
    /** Send header + an upgrade request on a raw socket; resolve with the response head. */
    const exchange = (port, header, rest = null) =>
        withTimeout(
            new Promise((resolve) => {
                const s = net.connect(port, '127.0.0.1');
                let data = '';
                s.on('connect', () => {
                    s.write(Buffer.concat([header, Buffer.from(rest ?? 'GET /p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')]));
                });
                s.on('data', (d) => {
                    data += d;
                    if (data.includes('\r\n\r\n')) s.destroy();
                });
                s.on('close', () => resolve(data));
                s.on('error', () => {});
            }),
            5000,
            'the response',
        );
    const proxyConfig = (extra = '', top = 'trusted_proxies: [127.0.0.1]\n') => `workers: 1
${top}listeners:
  - address: 127.0.0.1:0
    proxy_protocol: true
${extra}routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
    deny: [203.0.113.0/24]
`;

    test('v1 and v2 headers name the client: logs, rules and X-Forwarded-For use it', async () => {
        const gw = await startWsgate({ config: proxyConfig() });
        try {
            let head = await exchange(gw.port, Buffer.from('PROXY TCP4 198.51.100.7 192.0.2.99 40000 443\r\n'));
            assert.match(head, /^HTTP\/1\.1 101 /);
            assert.equal(backend.connections.at(-1).headers['x-forwarded-for'], '198.51.100.7');
            head = await exchange(gw.port, v2('198.51.100.8', 40001));
            assert.match(head, /^HTTP\/1\.1 101 /);
            assert.equal(backend.connections.at(-1).headers['x-forwarded-for'], '198.51.100.8');
            // The route's deny list judges the client the header names.
            head = await exchange(gw.port, Buffer.from('PROXY TCP4 203.0.113.5 192.0.2.99 40002 443\r\n'));
            assert.match(head, /^HTTP\/1\.1 403 /);
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.path === '/p', 3);
            assert.deepEqual(lines.map((l) => l.client), ['198.51.100.7:40000', '198.51.100.8:40001', '203.0.113.5:40002']);
            assert.ok(lines.every((l) => /^127\.0\.0\.1:\d+$/.test(l.peer)));
            // LOCAL (a balancer's health check) and UNKNOWN: the peer stands.
            head = await exchange(gw.port, Buffer.from('PROXY UNKNOWN\r\n'));
            assert.match(head, /^HTTP\/1\.1 101 /);
            assert.equal(backend.connections.at(-1).headers['x-forwarded-for'], '127.0.0.1');
        } finally {
            await gw.stop();
        }
    });

    test('a connection without a valid header is closed with nothing answered, and logged', async () => {
        const gw = await startWsgate({ config: proxyConfig() });
        try {
            assert.equal(await exchange(gw.port, Buffer.alloc(0)), '');
            assert.equal(await exchange(gw.port, Buffer.from('PROXY TCP4 999.0.0.1 192.0.2.99 1 2\r\n')), '');
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.error === 'proxy_protocol', 2);
            assert.equal(lines.length, 2);
        } finally {
            await gw.stop();
        }
    });

    test('a peer that is not a trusted proxy is closed at once', async () => {
        const gw = await startWsgate({ config: proxyConfig('', 'trusted_proxies: [10.0.0.0/8]\n') });
        try {
            assert.equal(await exchange(gw.port, Buffer.from('PROXY TCP4 198.51.100.7 192.0.2.99 40000 443\r\n')), '');
            await gw.waitForLog((l) => l.msg === 'access' && l.error === 'proxy_untrusted');
        } finally {
            await gw.stop();
        }
    });

    test('TLS after the header: the header is read raw, the handshake follows', async () => {
        const { makeCA } = await import('./lib/certs.mjs');
        const tls = await import('node:tls');
        const ca = makeCA();
        const cert = ca.issue('localhost', { dns: ['localhost'] });
        const gw = await startWsgate({
            config: proxyConfig(`    tls:\n      certificates:\n        - {cert: ${cert.cert}, key: ${cert.key}}\n`),
        });
        try {
            const head = await withTimeout(
                new Promise((resolve, reject) => {
                    const raw = net.connect(gw.port, '127.0.0.1', () => {
                        raw.write('PROXY TCP4 198.51.100.9 192.0.2.99 40009 443\r\n');
                        const s = tls.connect({ socket: raw, servername: 'localhost', ca: ca.caPem }, () => {
                            s.write('GET /p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
                        });
                        let data = '';
                        s.on('data', (d) => {
                            data += d;
                            if (data.includes('\r\n\r\n')) {
                                s.destroy();
                                resolve(data);
                            }
                        });
                        s.on('error', reject);
                    });
                }),
                5000,
                'the upgrade over TLS after a PROXY header',
            );
            assert.match(head, /^HTTP\/1\.1 101 /);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.client === '198.51.100.9:40009');
            assert.equal(line.tls_version, 'TLSv1.3');
        } finally {
            await gw.stop();
            ca.remove();
        }
    });

    test('proxy_protocol without trusted_proxies is a configuration error', async () => {
        const { runWsgate, writeTempFile } = await import('./lib/harness.mjs');
        const file = writeTempFile('wsgate.yaml', proxyConfig('', ''));
        const r = await runWsgate(['check', '-c', file]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /listeners: proxy_protocol: true needs trusted_proxies/);
    });
});

describe('handshake limits', () => {
    const cfg = (limits, top = '') => `workers: 2
listen: 127.0.0.1:0
${top}routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
    limits: ${limits}
`;

    test('handshake_rate with handshake_burst: the burst passes, the next gets 429 with Retry-After, tokens refill', async () => {
        const gw = await startWsgate({ config: cfg('{handshake_rate: 2/s, handshake_burst: 3}') });
        try {
            const results = [];
            for (let i = 0; i < 5; i++) results.push(await tryOpen(gw, {}));
            assert.deepEqual(results.map((r) => r.ok), [true, true, true, false, false]);
            assert.equal(results[3].status, 429);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'rate_limited');
            assert.equal(line.status, 429);
            await delay(1100); // two tokens back
            assert.equal((await tryOpen(gw, {})).ok, true);
            assert.equal((await tryOpen(gw, {})).ok, true);
            assert.equal((await tryOpen(gw, {})).status, 429);
        } finally {
            await gw.stop();
        }
    });

    test('the 429 carries Retry-After', async () => {
        const gw = await startWsgate({ config: cfg('{handshake_rate: 1/m}') });
        try {
            assert.equal((await tryOpen(gw, {})).ok, true);
            const head = await new Promise((resolve) => {
                const s = net.connect(gw.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
                let d = '';
                s.on('data', (x) => (d += x));
                s.on('close', () => resolve(d));
                s.on('error', () => {});
            });
            assert.match(head, /^HTTP\/1\.1 429 /);
            const ra = +/\r\nRetry-After: (\d+)\r\n/.exec(head)[1];
            assert.ok(ra >= 50 && ra <= 61, `Retry-After ${ra}`);
        } finally {
            await gw.stop();
        }
    });

    test('max_connections_per_ip: 429 past the count (across workers); a closed connection frees its slot', async () => {
        const gw = await startWsgate({ config: cfg('{max_connections_per_ip: 3}') });
        const open = [];
        try {
            for (let i = 0; i < 3; i++) open.push(await openClient(gw.url('/')));
            assert.equal((await tryOpen(gw, {})).status, 429);
            open[0].ws.close(1000);
            await waitClosed(open[0]);
            await delay(100);
            const again = await openClient(gw.url('/'));
            open.push(again);
            assert.equal((await tryOpen(gw, {})).status, 429);
        } finally {
            for (const c of open) c.close();
            await gw.stop();
        }
    });

    test('max_connections on the route: 503 past it; plain requests are not counted', async () => {
        const gw = await startWsgate({ config: cfg('{max_connections: 2}') });
        const open = [];
        try {
            open.push(await openClient(gw.url('/')));
            open.push(await openClient(gw.url('/')));
            const r = await tryOpen(gw, {});
            assert.equal(r.status, 503);
            assert.equal(await plainGet(gw.port), 426);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'route_full');
            assert.equal(line.status, 503);
            open[1].ws.close(1000);
            await waitClosed(open[1]);
            await delay(100);
            open.push(await openClient(gw.url('/')));
        } finally {
            for (const c of open) c.close();
            await gw.stop();
        }
    });

    test('a refused backend frees the slot it had taken', async () => {
        const gw = await startWsgate({
            config: `workers: 1
listen: 127.0.0.1:0
routes:
  - path: /
    backend: ws://127.0.0.1:1
    limits: {max_connections_per_ip: 1, max_connections: 1}
`,
        });
        try {
            for (let i = 0; i < 3; i++) {
                const r = await tryOpen(gw, {});
                assert.equal(r.status, 502, show(r));
            }
        } finally {
            await gw.stop();
        }
    });

    test('limits configuration errors are reported at their lines', async () => {
        const { runWsgate, writeTempFile } = await import('./lib/harness.mjs');
        const r = await runWsgate(['check', '-c', writeTempFile('wsgate.yaml', `listen: 127.0.0.1:0
routes:
  - path: /a
    backend: ws://127.0.0.1:9
    limits: {handshake_rate: fast}
  - path: /b
    backend: ws://127.0.0.1:9
    limits: {handshake_burst: 5}
  - path: /c
    backend: ws://127.0.0.1:9
    limits: {messages_per_minute: 5}
`)]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /:5:\d+: handshake_rate: expected a rate such as 10\/s/);
        assert.match(r.stderr, /:8:\d+: handshake_burst: needs handshake_rate/);
        assert.match(r.stderr, /:11:\d+: unknown key "messages_per_minute" in limits/);
    });
});

describe('message limits', () => {
    // A backend of their own: each test takes its connection from the
    // queue of new ones, which the other tests leave full.
    let backend;
    before(async () => {
        backend = await startEchoBackend({ echo: false });
    });
    after(() => backend?.close());
    const cfg = (limits) => `workers: 1
listen: 127.0.0.1:0
routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
    limits: ${limits}
`;
    const settle = () => delay(300);

    test('action drop: messages past the burst are dropped whole and counted; the connection stays; tokens refill', async () => {
        const gw = await startWsgate({ config: cfg('{messages_per_second: 5, burst: 5, action: drop}') });
        try {
            const c = await openClient(gw.url('/'));
            const be = await backend.nextConnection();
            for (let i = 0; i < 20; i++) c.ws.send(`m${i}`);
            await settle();
            assert.deepEqual(be.received.map((m) => m.data.toString()), ['m0', 'm1', 'm2', 'm3', 'm4']);
            await delay(1000);
            c.ws.send('later');
            await settle();
            assert.equal(be.received.at(-1).data.toString(), 'later');
            assert.equal(c.ws.readyState, c.ws.OPEN);
            c.ws.close(1000);
            await waitClosed(c);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.status === 101);
            assert.equal(line.msgs_dropped, 15);
        } finally {
            await gw.stop();
        }
    });

    test('a fragmented message over the limit is dropped whole, and pings between its fragments still pass', async () => {
        const gw = await startWsgate({ config: cfg('{messages_per_second: 1, burst: 1, action: drop}') });
        try {
            const c = await openClient(gw.url('/'));
            const be = await backend.nextConnection();
            c.ws.send('first');
            c.ws.send('frag-a', { fin: false });
            c.ws.ping('between');
            c.ws.send('frag-b', { fin: false });
            c.ws.send('frag-c', { fin: true });
            await settle();
            assert.deepEqual(be.received.map((m) => m.data.toString()), ['first']);
            assert.equal(be.pings.map(String).includes('between'), true);
            await delay(1100);
            c.ws.send('second');
            await settle();
            assert.deepEqual(be.received.map((m) => m.data.toString()), ['first', 'second']);
            c.close();
        } finally {
            await gw.stop();
        }
    });

    test('action close: the client gets 1008 and the backend 1001', async () => {
        const gw = await startWsgate({ config: cfg('{messages_per_second: 2, burst: 2, action: close}') });
        try {
            const c = await openClient(gw.url('/'));
            const be = await backend.nextConnection();
            for (let i = 0; i < 5; i++) c.ws.send(`x${i}`);
            const info = await waitClosed(c, 3000);
            assert.equal(info.code, 1008);
            assert.equal((await be.closed).code, 1001);
            assert.deepEqual(be.received.map((m) => m.data.toString()), ['x0', 'x1']);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'message_rate');
            assert.equal(line.close_code, 1008);
        } finally {
            await gw.stop();
        }
    });

    test('bytes_per_second: a message may overdraw, the next waits', async () => {
        const gw = await startWsgate({ config: cfg('{bytes_per_second: 1KiB}') });
        try {
            const c = await openClient(gw.url('/'));
            const be = await backend.nextConnection();
            for (let i = 0; i < 3; i++) c.ws.send(Buffer.alloc(600, i));
            await settle();
            assert.deepEqual(be.received.map((m) => m.data[0]), [0, 1]);
            c.close();
        } finally {
            await gw.stop();
        }
    });

    test('control frames: more than 100 a second close with 1008 (the default), the limit can be raised', async () => {
        let gw = await startWsgate({ config: cfg('{max_connections: 100}') });
        try {
            const c = await openClient(gw.url('/'));
            for (let i = 0; i < 150; i++) c.ws.ping();
            const info = await waitClosed(c, 3000);
            assert.equal(info.code, 1008);
            await gw.waitForLog((l) => l.msg === 'access' && l.error === 'control_flood');
        } finally {
            await gw.stop();
        }
        gw = await startWsgate({ config: cfg('{max_control_frames_per_second: 500}') });
        try {
            const c = await openClient(gw.url('/'));
            for (let i = 0; i < 150; i++) c.ws.ping();
            await settle();
            assert.equal(c.ws.readyState, c.ws.OPEN);
            c.close();
        } finally {
            await gw.stop();
        }
    });
});
