// Admission rules at the handshake, with the real binary and Node's ws:
// Origin allowlists (the cross-site WebSocket hijacking defence),
// subprotocol allowlists (filtered before forwarding), allow/deny address
// rules per route and per listener, and trusted proxies' X-Forwarded-For
// as the client address for rules and logs.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { openClient, startEchoBackend, startWsgate, waitClosed, withTimeout } from './lib/harness.mjs';

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
            assert.equal(r.ok, true, `${origin}: ${JSON.stringify(r)}`);
        }
    });

    test('another Origin gets 403 and never reaches the backend; the log says origin', async () => {
        const before = backend.connections.length;
        for (const origin of ['https://evil.example', 'http://app.example.com', 'https://app.example.com:8443', 'https://example.org', 'null']) {
            const r = await tryOpen(gw, { origin });
            assert.equal(r.status, 403, `${origin}: ${JSON.stringify(r)}`);
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
