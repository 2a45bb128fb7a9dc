// Routing and load balancing with several real `ws` backends: route
// precedence, path normalization, rewrite, each balancer's distribution,
// hash stability across processes, canary split, sticky cookies, retries,
// 503 when every backend is down, health checks and draining.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, closedPort, rawRequest, startEchoBackend, startWsgate, upgradeRequest, waitUntil } from './lib/harness.mjs';

/** Open a WebSocket, wait for the 101 (or the HTTP refusal), close it.
 * Resolves { status, headers }. */
function connectOnce(url, headers = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers, perMessageDeflate: false });
        let upgradeHeaders = null;
        ws.on('upgrade', (res) => (upgradeHeaders = res.headers));
        ws.once('open', () => {
            ws.close(1000);
            resolve({ status: 101, headers: upgradeHeaders });
        });
        ws.once('unexpected-response', (req, res) => {
            resolve({ status: res.statusCode, headers: res.headers });
            req.destroy();
        });
        ws.once('error', (e) => reject(e));
    });
}

/** Run n connects with at most `par` at once; fn(i) gives [url, headers]. */
async function connectMany(n, par, fn) {
    const out = new Array(n);
    let next = 0;
    await Promise.all(
        Array.from({ length: par }, async () => {
            while (next < n) {
                const i = next++;
                const [url, headers] = fn(i);
                out[i] = await connectOnce(url, headers);
            }
        }),
    );
    return out;
}

/** Start n echo backends. */
async function backends(n) {
    return Promise.all(Array.from({ length: n }, () => startEchoBackend()));
}

const counts = (bes) => bes.map((b) => b.connections.length);

describe('route precedence, normalization and rewrite', () => {
    let bes;
    let gw;
    before(async () => {
        bes = await backends(4);
        const [a, b, c, d] = bes.map((x) => `ws://127.0.0.1:${x.port}`);
        gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  a: {backends: [${a}]}
  b: {backends: [${b}]}
  c: {backends: ["${c}/base"]}
  d: {backends: [${d}]}
routes:
  - {match: {host: chat.example.com}, upstream: a}
  - {match: {path: /exact}, upstream: b}
  - {match: {path_prefix: /old}, upstream: b, rewrite: {path_prefix: /new}}
  - {match: {headers: {X-Canary: "yes"}}, upstream: c}
  - {match: {query: {room: lobby}}, upstream: a}
  - {match: {path_prefix: /ws}, upstream: d}
  - {match: {path_prefix: /app}, upstream: c}
`,
        });
    });
    after(async () => {
        await gw?.stop();
        for (const b of bes ?? []) await b.close();
    });

    async function lands(path, headers = {}) {
        const before = counts(bes);
        const r = await connectOnce(gw.url(path), headers);
        assert.equal(r.status, 101, `${path}: status ${r.status}`);
        const after = counts(bes);
        const i = after.findIndex((n, k) => n > before[k]);
        assert.ok(i >= 0, `${path}: no backend got the connection`);
        return { be: i, url: bes[i].connections.at(-1).url };
    }

    test('every match kind, first match wins', async () => {
        assert.equal((await lands('/ws', { Host: 'chat.example.com' })).be, 0);
        assert.equal((await lands('/exact', { Host: 'CHAT.example.com:80' })).be, 0, 'host beats path (listed first)');
        assert.equal((await lands('/exact')).be, 1);
        assert.equal((await connectOnce(gw.url('/exact/more'))).status, 404, 'path is exact');
        assert.equal((await lands('/x', { 'X-Canary': 'yes' })).be, 2);
        assert.equal((await lands('/x?a=1&room=lobby')).be, 0);
        assert.equal((await lands('/ws/chat')).be, 3);
    });

    test('no matching route: 404', async () => {
        assert.equal((await connectOnce(gw.url('/nothing'))).status, 404);
        assert.equal((await connectOnce(gw.url('/wsx'))).status, 404, 'prefixes match whole segments');
    });

    test('rewrite and the backend URL path', async () => {
        assert.equal((await lands('/old/room?x=1')).url, '/new/room?x=1');
        assert.equal((await lands('/old')).url, '/new');
        assert.equal((await lands('/app/a/b')).url, '/base/app/a/b');
    });

    test('paths are normalized before matching and forwarding; escapes that hide a slash or climb are refused', async () => {
        const r = await lands('/ws/%2E%2E/ws/./x//y');
        assert.equal(r.be, 3);
        assert.equal(r.url, '/ws/x/y');
        // /old/%2e%2e/ws resolves to /ws: it may not sneak through /old's rewrite.
        assert.equal((await lands('/old/%2e%2e/ws/in')).url, '/ws/in');
        for (const [target, why] of [
            ['/ws/..%2F..%2Fadmin', 'encoded slash'],
            ['/ws/%5c..', 'encoded backslash'],
            ['/ws/../../admin', 'climbs above /'],
            ['/ws/%zz', 'malformed escape'],
        ]) {
            const { conn, res } = await rawRequest(gw.port, upgradeRequest({ path: target }));
            conn.destroy();
            assert.equal(res.status, 400, `${target} (${why}): status ${res.status}`);
        }
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/ws/../../admin', 5000, 'the access line');
        assert.equal(line.error, 'path_dot_dot');
    });
});

describe('balancers spread connections as configured (>= 1000 connections each)', () => {
    let bes;
    before(async () => {
        bes = await backends(3);
    });
    after(async () => {
        for (const b of bes ?? []) await b.close();
    });

    async function gatewayWith(balance, extra = '') {
        return startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  p:
    balance: ${balance}
${extra}    backends:
      - {url: ws://127.0.0.1:${bes[0].port}, weight: 1}
      - {url: ws://127.0.0.1:${bes[1].port}, weight: 2}
      - {url: ws://127.0.0.1:${bes[2].port}, weight: 1}
routes:
  - {upstream: p}
`,
        });
    }

    test('round_robin: exactly by weight', async () => {
        const gw = await gatewayWith('round_robin');
        try {
            const before = counts(bes);
            await connectMany(1000, 50, () => [gw.url('/rr'), {}]);
            const got = counts(bes).map((n, i) => n - before[i]);
            assert.deepEqual(got, [250, 500, 250]);
        } finally {
            await gw.stop();
        }
    });

    test('random: by weight within 4 sigma', async () => {
        const gw = await gatewayWith('random');
        try {
            const before = counts(bes);
            await connectMany(2000, 50, () => [gw.url('/random'), {}]);
            const got = counts(bes).map((n, i) => n - before[i]);
            // p = 1/4, 1/2, 1/4 of 2000: sigma ~19 and ~22.
            assert.ok(Math.abs(got[0] - 500) < 80 && Math.abs(got[1] - 1000) < 90 && Math.abs(got[2] - 500) < 80, JSON.stringify(got));
        } finally {
            await gw.stop();
        }
    });

    for (const algo of ['least_conn', 'p2c']) {
        test(`${algo}: connections held open end up in proportion to the weights`, { timeout: 60000 }, async () => {
            const gw = await gatewayWith(algo);
            const open = [];
            try {
                const before = counts(bes);
                for (let i = 0; i < 1000; i += 50) {
                    await Promise.all(
                        Array.from({ length: 50 }, async () => {
                            const ws = new WebSocket(gw.url(`/${algo}`), { perMessageDeflate: false });
                            await new Promise((res, rej) => {
                                ws.once('open', res);
                                ws.once('error', rej);
                            });
                            open.push(ws);
                        }),
                    );
                }
                const got = counts(bes).map((n, i) => n - before[i]);
                const tol = algo === 'least_conn' ? 3 : 60;
                assert.ok(Math.abs(got[0] - 250) <= tol && Math.abs(got[1] - 500) <= tol && Math.abs(got[2] - 250) <= tol, `${algo}: ${JSON.stringify(got)}`);
            } finally {
                for (const ws of open) ws.terminate();
                await gw.stop();
            }
        });
    }
});

describe('hash: stable across restarts and processes, minimal movement', () => {
    let bes;
    before(async () => {
        bes = await backends(5);
    });
    after(async () => {
        for (const b of bes ?? []) await b.close();
    });

    const cfg = (list) => `listen: 127.0.0.1:0
workers: 2
upstreams:
  p:
    balance: hash
    hash_key: header:X-User
    backends: [${list.map((b) => `ws://127.0.0.1:${b.port}`).join(', ')}]
routes:
  - {upstream: p}
`;

    /** Which backend (index into bes) each of n users lands on. */
    async function mapUsers(gw, n) {
        const start = counts(bes);
        await connectMany(n, 100, (k) => [gw.url('/h'), { 'X-User': `user-${k}` }]);
        const seen = new Map();
        bes.forEach((b, i) => b.connections.slice(start[i]).forEach((c) => seen.set(c.headers['x-user'], i)));
        return Array.from({ length: n }, (_, k) => seen.get(`user-${k}`));
    }

    test('same key, same backend: two processes agree, a restart agrees, the config order does not matter; removing one of 5 moves 15-25% of 10,000 keys', { timeout: 180000 }, async (t) => {
        const N = 10000;
        const gw1 = await startWsgate({ config: cfg(bes) });
        const gw2 = await startWsgate({ config: cfg([...bes].reverse()) });
        let m1;
        let m2;
        try {
            m1 = await mapUsers(gw1, N);
            m2 = await mapUsers(gw2, N);
        } finally {
            await gw1.stop();
            await gw2.stop();
        }
        assert.ok(m1.every((b) => b !== undefined), 'every user landed somewhere');
        assert.deepEqual(m2, m1, 'a second process (backends listed in reverse) maps every key the same way');
        const per = [0, 0, 0, 0, 0];
        for (const b of m1) per[b]++;
        t.diagnostic(`keys per backend: ${per.join(', ')}`);
        assert.ok(per.every((n) => n > N / 5 - 300 && n < N / 5 + 300), `even spread: ${per.join(', ')}`);

        const gw3 = await startWsgate({ config: cfg(bes.filter((_, i) => i !== 2)) });
        let m3;
        try {
            m3 = await mapUsers(gw3, N);
        } finally {
            await gw3.stop();
        }
        const moved = m3.filter((b, k) => b !== m1[k]).length;
        t.diagnostic(`removing backend 3 of 5 moved ${moved} of ${N} keys`);
        assert.ok(moved >= 0.15 * N && moved <= 0.25 * N, `moved ${moved}`);
        const others = m3.filter((b, k) => m1[k] !== 2 && b !== m1[k]).length;
        t.diagnostic(`keys of the remaining backends that moved: ${others}`);
        assert.ok(m3.every((b) => b !== 2), 'no key lands on the removed backend');
        assert.ok(others < 0.03 * N, `${others} keys of backends still present moved`);
    });
});

describe('canary split and sticky cookies', () => {
    let bes;
    let gw;
    before(async () => {
        bes = await backends(3);
        gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  stable: {backends: [ws://127.0.0.1:${bes[0].port}]}
  canary: {backends: [ws://127.0.0.1:${bes[1].port}]}
  sticky:
    backends: [ws://127.0.0.1:${bes[1].port}, ws://127.0.0.1:${bes[2].port}]
    sticky: {cookie: WSG, ttl: 10m}
routes:
  - {match: {path_prefix: /sticky}, upstream: sticky}
  - split: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]
`,
        });
    });
    after(async () => {
        await gw?.stop();
        for (const b of bes ?? []) await b.close();
    });

    test('a 95/5 split over 2,000 connections', async () => {
        const before = counts(bes);
        await connectMany(2000, 50, () => [gw.url('/app'), {}]);
        const got = counts(bes).map((n, i) => n - before[i]);
        // 5% of 2,000 = 100, sigma ~9.7.
        assert.ok(got[1] >= 60 && got[1] <= 140, `canary got ${got[1]} of 2000`);
        assert.equal(got[0] + got[1], 2000);
    });

    test('the 101 sets a cookie; coming back with it reaches the same backend; a tampered one is ignored', async () => {
        const first = await connectOnce(gw.url('/sticky'));
        const cookie = first.headers['set-cookie']?.[0];
        assert.match(cookie ?? '', /^WSG=[A-Za-z0-9_-]{22}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax$/);
        const value = cookie.split(';')[0];
        const owner = bes[1].connections.length > 0 && bes[1].connections.at(-1).url === '/sticky' ? 1 : 2;
        for (let i = 0; i < 20; i++) {
            const before = counts(bes);
            const r = await connectOnce(gw.url('/sticky'), { Cookie: `other=1; ${value}` });
            assert.equal(r.status, 101);
            assert.equal(r.headers['set-cookie'], undefined, 'a valid cookie is not set again');
            assert.equal(counts(bes)[owner], before[owner] + 1, `connection ${i} went elsewhere`);
        }
        // Tampered: round robin over both backends again, and a new cookie.
        const bad = value.slice(0, -2) + (value.endsWith('AA') ? 'BB' : 'AA');
        const got = [0, 0, 0];
        for (let i = 0; i < 10; i++) {
            const before = counts(bes);
            const r = await connectOnce(gw.url('/sticky'), { Cookie: bad });
            assert.equal(r.status, 101, 'a bad cookie is never an error');
            assert.ok(r.headers['set-cookie'], 'a fresh cookie replaces the bad one');
            counts(bes).forEach((n, k) => (got[k] += n - before[k]));
        }
        assert.ok(got[1] > 0 && got[2] > 0, `tampered cookies pinned nothing: ${got}`);
    });
});

describe('failover before the 101', () => {
    let bes;
    let dead;
    before(async () => {
        bes = await backends(2);
        dead = await closedPort();
    });
    after(async () => {
        for (const b of bes ?? []) await b.close();
    });

    test('a refused backend is retried on another one: every client gets its 101', async () => {
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  p: {retries: 2, backends: [ws://127.0.0.1:${dead}, ws://127.0.0.1:${bes[0].port}, ws://127.0.0.1:${bes[1].port}], health_check: {type: tcp, interval: 1h, unhealthy_threshold: 100}}
routes:
  - {upstream: p}
`,
        });
        try {
            const res = await connectMany(60, 10, () => [gw.url('/f'), {}]);
            assert.ok(res.every((r) => r.status === 101), `statuses: ${[...new Set(res.map((r) => r.status))]}`);
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.path === '/f', 60, 5000);
            assert.ok(lines.some((l) => l.attempts === 2), 'no access line shows a retry');
            assert.ok(lines.every((l) => l.backend !== `127.0.0.1:${dead}`));
        } finally {
            await gw.stop();
        }
    });

    test('every backend down: 503 with Retry-After, and passive ejection stops trying the dead one', async () => {
        const dead2 = await closedPort();
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  p: {retries: 1, ejection_time: 1m, backends: [ws://127.0.0.1:${dead}, ws://127.0.0.1:${dead2}]}
routes:
  - {upstream: p}
`,
        });
        try {
            // Both refuse: the tried backends' failure answers (502), and
            // after 3 failures each (the default threshold) both are
            // ejected: from then on no backend can take a connection, 503
            // with Retry-After, and nothing is tried.
            const statuses = [];
            for (let i = 0; i < 6; i++) {
                const r = await connectOnce(gw.url('/down'));
                statuses.push(r.status);
                if (r.status === 503) assert.equal(r.headers['retry-after'], '5');
            }
            assert.deepEqual(statuses, [502, 502, 502, 503, 503, 503]);
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.path === '/down', 6, 5000);
            assert.equal(lines[0].error, 'backend_connect');
            assert.equal(lines[0].attempts, 2);
            assert.equal(lines.at(-1).error, 'no_backend');
            assert.equal(lines.at(-1).attempts, 0);
        } finally {
            await gw.stop();
        }
    });
});

describe('active health checks and draining', () => {
    test('a killed backend is marked down within the thresholds and gets no new connections; restarted, it comes back', { timeout: 30000 }, async () => {
        const [a, b] = await backends(2);
        const port = b.port;
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  p:
    backends: [ws://127.0.0.1:${a.port}, ws://127.0.0.1:${port}]
    health_check: {type: websocket, path: /health, interval: 200ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}
routes:
  - {upstream: p}
`,
        });
        let b2;
        try {
            await waitUntil(() => b.connections.some((c) => c.url === '/health'), { timeoutMs: 3000, what: 'a websocket health check to reach the backend' });
            const t0 = Date.now();
            await b.close();
            const down = await gw.waitForLog((l) => l.msg === 'backend down', 5000, 'the backend to be marked down');
            const took = Date.now() - t0;
            assert.equal(down.backend, `127.0.0.1:${port}`);
            assert.ok(took < 2 * 200 + 500 + 1000, `marked down after ${took} ms`);
            const res = await connectMany(20, 5, () => [gw.url('/app'), {}]);
            assert.ok(res.every((r) => r.status === 101));
            assert.equal(a.connections.filter((c) => c.url === '/app').length, 20, 'every connection went to the live backend');
            // Back on the same port: up again after two passing checks.
            b2 = await startEchoBackendOn(port);
            await gw.waitForLog((l) => l.msg === 'backend up' && l.backend === `127.0.0.1:${port}`, 5000, 'the backend to come back');
            await connectMany(20, 5, () => [gw.url('/app2'), {}]);
            assert.ok(b2.connections.filter((c) => c.url === '/app2').length > 0, 'the restarted backend gets new connections');
        } finally {
            await gw.stop();
            await a.close();
            await b2?.close();
        }
    });

    test('a backend with drain: true gets no new connections', async () => {
        const [a, b] = await backends(2);
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
upstreams:
  p: {backends: [{url: ws://127.0.0.1:${a.port}}, {url: ws://127.0.0.1:${b.port}, drain: true}]}
routes:
  - {upstream: p}
`,
        });
        try {
            await connectMany(50, 10, () => [gw.url('/d'), {}]);
            assert.equal(a.connections.length, 50);
            assert.equal(b.connections.length, 0);
        } finally {
            await gw.stop();
            await a.close();
            await b.close();
        }
    });
});

/** An echo backend on a given port (a backend restarted in place). */
async function startEchoBackendOn(port) {
    // Wait for the port to be free, then listen on it through the harness.
    await waitUntil(
        () =>
            new Promise((resolve) => {
                const s = net.createServer();
                s.once('error', () => resolve(false));
                s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
            }),
        { timeoutMs: 5000, what: `port ${port} to be free` },
    );
    return startEchoBackend({ port });
}

describe('per-route limits', () => {
    test('a route overrides max_message_size; another route keeps the core value', async () => {
        const be = await startEchoBackend();
        const gw = await startWsgate({
            config: `listen: 127.0.0.1:0
workers: 1
max_message_size: 64KiB
upstreams:
  p: {backends: [ws://127.0.0.1:${be.port}]}
routes:
  - {match: {path_prefix: /small}, upstream: p, max_message_size: 1KiB}
  - {upstream: p}
`,
        });
        try {
            const open = async (path) => {
                const ws = new WebSocket(gw.url(path), { perMessageDeflate: false });
                await new Promise((res, rej) => {
                    ws.once('open', res);
                    ws.once('error', rej);
                });
                return ws;
            };
            const big = await open('/big');
            const echoed = new Promise((res) => big.once('message', (d) => res(d)));
            big.send(Buffer.alloc(2048, 1));
            assert.equal((await echoed).length, 2048, 'the default route relays 2 KiB');
            big.close();
            const small = await open('/small');
            const closed = new Promise((res) => small.once('close', (code) => res(code)));
            small.send(Buffer.alloc(2048, 1));
            assert.equal(await closed, 1009, 'the /small route refuses 2 KiB');
        } finally {
            await gw.stop();
            await be.close();
        }
    });
});
