// TLS termination on listeners: wss:// and https:// clients (Node's tls, ws
// and https, i.e. OpenSSL on the client side too, verifying against a CA
// the test makes with the openssl command), several listeners at once,
// certificates chosen by SNI, minimum version, ALPN, session resumption
// with rotated ticket keys, plain HTTP or garbage sent to a TLS port, the
// handshake timeout, bulk integrity both ways, and the config errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer, delay, openClient, runWsgate, startEchoBackend, startWsgate, waitClosed, withTimeout, writeTempFile } from './lib/harness.mjs';
import { makeCA } from './lib/certs.mjs';
import { assertNumbered, streamer } from './lib/stream.mjs';

let ca;
let certA; // a.test, *.a.test (the default: listed first)
let certB; // b.test
let backend;
let quiet; // a backend that does not echo, for streams both ways

before(async () => {
    ca = makeCA();
    certA = ca.issue('a', { dns: ['a.test', '*.a.test'] });
    certB = ca.issue('b', { dns: ['b.test'], rsa: true });
    backend = await startEchoBackend();
    quiet = await startEchoBackend({ echo: false });
});

after(async () => {
    await backend?.close();
    await quiet?.close();
    ca?.remove();
});

/** YAML for a TLS listener (and optionally a plain one) routed to the echo backend. */
function tlsConfig({ tlsExtra = '', plain = false, extra = '' } = {}) {
    return `workers: 1
${extra}listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
        - {cert: ${certA.cert}, key: ${certA.key}}
        - {cert: ${certB.cert}, key: ${certB.key}}
${tlsExtra}${plain ? '  - address: 127.0.0.1:0\n' : ''}routes:
  - path: /bulk
    backend: ws://127.0.0.1:${quiet.port}
  - path: /
    backend: ws://127.0.0.1:${backend.port}
`;
}

async function startTls(opts) {
    const gw = await startWsgate({ config: tlsConfig(opts) });
    const lines = await gw.waitForLogs((l) => l.msg === 'listening', opts?.plain ? 2 : 1);
    gw.tlsPort = Number(/:(\d+)$/.exec(lines[0].addr)[1]);
    if (opts?.plain) gw.plainPort = Number(/:(\d+)$/.exec(lines[1].addr)[1]);
    return gw;
}

/** A TLS connection to port; resolves with the socket once the handshake is done. */
function tlsConnect(port, options = {}) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem, ...options });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
    });
}

function peerCN(s) {
    return s.getPeerCertificate().subject.CN;
}

describe('TLS listeners', () => {
    let gw;
    before(async () => {
        gw = await startTls({ plain: true });
    });
    after(async () => {
        await gw?.stop();
    });

    test('a wss:// client verifying the certificate relays text and binary both ways; the backend sees X-Forwarded-Proto https', async () => {
        const c = await openClient(`wss://127.0.0.1:${gw.tlsPort}/room`, { ca: ca.caPem, servername: 'a.test' });
        const be = await backend.nextConnection();
        assert.equal(be.headers['x-forwarded-proto'], 'https');
        c.ws.send('hello over tls');
        const m = await c.nextMessage();
        assert.equal(m.data.toString(), 'hello over tls');
        const bin = Buffer.from([0, 1, 2, 255]);
        c.ws.send(bin);
        assert.deepEqual((await c.nextMessage()).data, bin);
        c.ws.close(1000, 'done');
        assert.deepEqual(await waitClosed(c), { code: 1000, reason: 'done' });
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/room');
        assert.match(line.tls_version, /^TLSv1\.[23]$/);
        assert.ok(line.tls_cipher.length > 0, JSON.stringify(line));
        assert.equal(line.close_code, 1000);
    });

    test('the plain listener beside it serves ws:// with X-Forwarded-Proto http, and its log line has no TLS fields', async () => {
        const c = await openClient(`ws://127.0.0.1:${gw.plainPort}/plain`);
        const be = await backend.nextConnection();
        assert.equal(be.headers['x-forwarded-proto'], 'http');
        c.ws.send('plain');
        assert.equal((await c.nextMessage()).data.toString(), 'plain');
        c.ws.close(1000);
        await waitClosed(c);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/plain');
        assert.equal(line.tls_version, undefined);
    });

    test('SNI picks the certificate: exact names, a wildcard, and the first certificate for unknown or missing names', async () => {
        const cases = [
            ['a.test', 'a.test'],
            ['b.test', 'b.test'],
            ['chat.a.test', 'a.test'], // *.a.test
            ['unknown.example', 'a.test'], // the default
            ['deep.chat.a.test', 'a.test'], // a wildcard covers one label: default again
        ];
        for (const [name, cn] of cases) {
            const s = await tlsConnect(gw.tlsPort, { servername: name, rejectUnauthorized: false });
            assert.equal(peerCN(s), cn, `SNI ${name}`);
            s.destroy();
        }
        // Verified by the client against the CA and the name it asked for.
        const s = await tlsConnect(gw.tlsPort, { servername: 'b.test' });
        assert.equal(s.authorized, true);
        s.destroy();
        // No SNI at all (an IP address): the default certificate.
        const ip = await tlsConnect(gw.tlsPort, { rejectUnauthorized: false });
        assert.equal(peerCN(ip), 'a.test');
        ip.destroy();
    });

    test('ALPN: http/1.1 is chosen when offered; a client offering only h2 is refused with no_application_protocol', async () => {
        const s = await tlsConnect(gw.tlsPort, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] });
        assert.equal(s.alpnProtocol, 'http/1.1');
        s.destroy();
        await assert.rejects(tlsConnect(gw.tlsPort, { servername: 'a.test', ALPNProtocols: ['h2'] }), /no application protocol|alert number 120/i);
    });

    test('TLS 1.2 clients are accepted by default', async () => {
        const s = await tlsConnect(gw.tlsPort, { servername: 'a.test', maxVersion: 'TLSv1.2' });
        assert.equal(s.getProtocol(), 'TLSv1.2');
        s.destroy();
    });

    test('plain HTTP sent to the TLS port gets a plain 400 saying so', async () => {
        const res = await new Promise((resolve, reject) => {
            const s = net.connect(gw.tlsPort, '127.0.0.1');
            let data = '';
            s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
            s.on('data', (d) => (data += d));
            s.on('end', () => resolve(data));
            s.on('error', reject);
        });
        assert.match(res, /^HTTP\/1\.1 400 /);
        assert.match(res, /plain HTTP request on a TLS listener/);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'http_on_tls_listener');
        assert.equal(line.status, 400);
    });

    test('garbage instead of a ClientHello closes the connection and logs the TLS error', async () => {
        const closed = await new Promise((resolve, reject) => {
            const s = net.connect(gw.tlsPort, '127.0.0.1');
            s.on('connect', () => s.write(Buffer.from('160301000463000000', 'hex')));
            s.on('data', () => {});
            s.on('close', () => resolve(true));
            s.on('error', () => resolve(true));
            setTimeout(() => reject(new Error('not closed')), 4000);
        });
        assert.ok(closed);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'tls_handshake');
        assert.ok(line.tls_error.length > 0, JSON.stringify(line));
    });

    test('plain HTTP requests over https:// keep one TLS connection alive across 50 requests', async () => {
        // The echo backend answers plain requests with 426; what counts is
        // that every request goes through on one TLS connection.
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.caPem, servername: 'a.test' });
        const sockets = new Set();
        for (let i = 0; i < 50; i++) {
            const r = await new Promise((resolve, reject) => {
                const req = https.get({ host: '127.0.0.1', port: gw.tlsPort, path: `/p${i}`, agent, servername: 'a.test', headers: { host: 'a.test' } }, (res) => {
                    let body = '';
                    sockets.add(res.socket);
                    res.setEncoding('utf8');
                    res.on('data', (d) => (body += d));
                    res.on('end', () => resolve({ status: res.statusCode, body }));
                });
                req.on('error', reject);
            });
            assert.equal(r.status, 426);
            assert.equal(r.body, 'websocket only\n');
        }
        assert.equal(sockets.size, 1, 'one TLS connection for all requests');
        agent.destroy();
    });

    test('32 MiB each way at once over wss:// arrive intact and in order', async () => {
        // (A backend that does not echo: each side checks the other's stream.)
        const c = await openClient(`wss://127.0.0.1:${gw.tlsPort}/bulk`, { ca: ca.caPem, servername: 'a.test' });
        const be = await quiet.nextConnection();
        const n = 128;
        const size = 256 * 1024;
        const up = streamer(c.ws, n, size);
        const down = streamer(be.ws, n, size);
        await withTimeout(Promise.all([up.done, down.done]), 30000, 'both streams sent');
        await withTimeout(
            (async () => {
                while (c.received.length < n || be.received.length < n) await delay(20);
            })(),
            30000,
            'all messages at both ends',
        );
        assert.equal(up.failed + down.failed, 0);
        assertNumbered(c.received, n, size);
        assertNumbered(be.received, n, size);
        c.ws.close(1000);
        await waitClosed(c, 10000);
    });
});

describe('TLS settings', () => {
    test('min_version 1.3 refuses a TLS 1.2 client (logged) and accepts TLS 1.3', async () => {
        const gw = await startTls({ tlsExtra: '      min_version: "1.3"\n' });
        try {
            await assert.rejects(tlsConnect(gw.tlsPort, { servername: 'a.test', maxVersion: 'TLSv1.2' }), /protocol version|alert/i);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'tls_handshake');
            assert.match(line.tls_error, /unsupported protocol|version/i);
            const s = await tlsConnect(gw.tlsPort, { servername: 'a.test' });
            assert.equal(s.getProtocol(), 'TLSv1.3');
            s.destroy();
        } finally {
            await gw.stop();
        }
    });

    for (const version of ['TLSv1.3', 'TLSv1.2']) {
        test(`${version} sessions resume with a ticket, across one key rotation, and not after two`, async () => {
            const gw = await startTls({ tlsExtra: '      ticket_key_rotation: 1s\n' });
            try {
                const connect = async (session) => {
                    const s = await tlsConnect(gw.tlsPort, { servername: 'a.test', maxVersion: version, minVersion: version, session });
                    // TLS 1.3 tickets come after the handshake: read one
                    // round trip's worth before taking the session.
                    const got = await new Promise((resolve) => {
                        let sess = null;
                        s.on('session', (x) => (sess = x));
                        s.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
                        s.once('data', () => setTimeout(() => resolve(sess ?? s.getSession()), 50));
                    });
                    const reused = s.isSessionReused();
                    s.destroy();
                    return { reused, session: got };
                };
                const first = await connect();
                assert.equal(first.reused, false);
                assert.ok(first.session, 'a session ticket was received');
                const again = await connect(first.session);
                assert.equal(again.reused, true, 'resumed at once');
                await delay(1300);
                const rotated = await connect(first.session);
                assert.equal(rotated.reused, true, 'resumed after one rotation (the previous key still decrypts)');
                await delay(2300);
                const expired = await connect(first.session);
                assert.equal(expired.reused, false, 'not resumed two periods later');
                const lines = gw.logs.filter((l) => l.msg === 'access' && l.tls_version === version);
                assert.ok(lines.some((l) => l.tls_resumed === true), 'the access log says when a session resumed');
            } finally {
                await gw.stop();
            }
        });
    }

    test('the TLS handshake counts against handshake_timeout: a silent client is closed', async () => {
        const gw = await startTls({ extra: 'handshake_timeout: 1s\n' });
        try {
            const t0 = Date.now();
            await new Promise((resolve, reject) => {
                const s = net.connect(gw.tlsPort, '127.0.0.1');
                s.on('close', resolve);
                s.on('error', () => {});
                setTimeout(() => reject(new Error('still open after 5 s')), 5000);
            });
            const took = Date.now() - t0;
            assert.ok(took >= 900 && took < 4000, `closed after ${took} ms`);
        } finally {
            await gw.stop();
        }
    });
});

describe('TLS configuration errors', () => {
    async function check(yaml) {
        const file = writeTempFile('wsgate.yaml', yaml);
        const r = await runWsgate(['check', '-c', file]);
        return { ...r, file };
    }
    const route = `routes:\n  - path: /\n    backend: ws://127.0.0.1:9\n`;

    test('a missing certificate file, a key that does not match, and verify_client without client_ca are reported at their lines', async () => {
        const r = await check(`listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
        - {cert: /nonexistent/cert.pem, key: ${certA.key}}
  - address: 127.0.0.1:0
    tls:
      certificates:
        - cert: ${certA.cert}
          key: ${certB.key}
  - address: 127.0.0.1:0
    tls:
      verify_client: required
      certificates:
        - {cert: ${certA.cert}, key: ${certA.key}}
${route}`);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /:5:\d+: cert: cannot open "\/nonexistent\/cert.pem": No such file or directory/);
        assert.match(r.stderr, /:10:\d+: ".*b\.key": the private key does not match the certificate/);
        assert.match(r.stderr, /:13:\d+: verify_client: required needs client_ca/);
    });

    test('listen and listeners together, a bad min_version, a duplicate address and tls without certificates are refused', async () => {
        const r = await check(`listen: 127.0.0.1:8080
listeners:
  - address: 127.0.0.1:8443
    tls:
      min_version: "1.1"
      certificates:
        - {cert: ${certA.cert}, key: ${certA.key}}
  - address: 127.0.0.1:8443
  - address: 127.0.0.1:8444
    tls: {}
${route}`);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /:2:1: listeners: use either listen or listeners, not both|:3:\d+: listeners: use either/);
    });

    test('each listeners error on its own', async () => {
        const r = await check(`listeners:
  - address: 127.0.0.1:8443
    tls:
      min_version: "1.1"
      certificates:
        - {cert: ${certA.cert}, key: ${certA.key}}
  - address: 127.0.0.1:8450
  - address: 127.0.0.1:8450
  - address: 127.0.0.1:8444
    tls: {}
  - address: nonsense
${route}`);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /:4:20: min_version: expected one of "1\.2", "1\.3"|:4:\d+: min_version/);
        assert.match(r.stderr, /:8:\d+: address: 127\.0\.0\.1:8450 is already a listener/);
        assert.match(r.stderr, /:10:\d+: missing required key "certificates"/);
        assert.match(r.stderr, /:11:\d+: address: /);
    });

    test('relative certificate names are read from the configuration file\'s directory', async () => {
        const file = writeTempFile('wsgate.yaml', '');
        const dir = path.dirname(file);
        fs.mkdirSync(path.join(dir, 'tls'));
        fs.copyFileSync(certA.cert, path.join(dir, 'tls', 'a.crt'));
        fs.copyFileSync(certA.key, path.join(dir, 'tls', 'a.key'));
        const yaml = (key) => `listeners:\n  - address: 127.0.0.1:0\n    tls:\n      certificates:\n        - {cert: tls/a.crt, key: ${key}}\n${route}`;
        fs.writeFileSync(file, yaml('tls/a.key'));
        let r = await runWsgate(['check', '-c', file]);
        assert.equal(r.code, 0, r.stderr);
        fs.writeFileSync(file, yaml('tls/missing.key'));
        r = await runWsgate(['check', '-c', file]);
        assert.equal(r.code, 2);
        assert.ok(r.stderr.includes(`key: cannot open "${path.join(dir, 'tls', 'missing.key')}": No such file or directory`), r.stderr);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('a valid TLS configuration passes check', async () => {
        const r = await check(tlsConfig());
        assert.equal(r.code, 0, r.stderr);
    });
});

describe('client certificates', () => {
    let other; // a CA wsgate does not trust
    let alice; // signed by the trusted CA
    let mallory; // signed by the other CA
    before(() => {
        alice = ca.issue('alice', { client: true, subject: '/CN=alice/O=Example Corp' });
        other = makeCA('untrusted CA');
        mallory = other.issue('mallory', { client: true, subject: '/CN=mallory' });
    });
    after(() => other?.remove());

    const start = (mode) => startTls({ tlsExtra: `      client_ca: ${ca.ca}\n      verify_client: ${mode}\n` });
    const wss = (gw, p, opts = {}) => openClient(`wss://127.0.0.1:${gw.tlsPort}${p}`, { ca: ca.caPem, servername: 'a.test', headers: { 'X-Client-Cert-Subject': 'CN=forged' }, ...opts });

    test('verify_client: required lets a client with a certificate from client_ca in; its subject reaches the backend, a forged header does not', async () => {
        const gw = await start('required');
        try {
            const c = await wss(gw, '/mtls', { cert: alice.certPem, key: alice.keyPem });
            const be = await backend.nextConnection();
            assert.equal(be.headers['x-client-cert-subject'], 'O=Example Corp,CN=alice');
            assert.equal(be.rawHeaders.filter((h) => h.toLowerCase() === 'x-client-cert-subject').length, 1);
            c.ws.close(1000);
            await waitClosed(c);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.path === '/mtls');
            assert.equal(line.client_cert, 'O=Example Corp,CN=alice');
        } finally {
            await gw.stop();
        }
    });

    test('verify_client: required refuses a client without a certificate and one whose CA is not trusted, and logs why', async () => {
        const gw = await start('required');
        try {
            await assert.rejects(wss(gw, '/none'));
            await assert.rejects(wss(gw, '/wrong-ca', { cert: mallory.certPem, key: mallory.keyPem }));
            const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.error === 'tls_handshake', 2);
            const reasons = lines.map((l) => l.tls_error).join(' | ');
            assert.match(reasons, /did not return a certificate|certificate required/i);
            assert.match(reasons, /certificate verify failed|unknown ca/i);
            assert.equal(backend.connections.filter((x) => x.url === '/none' || x.url === '/wrong-ca').length, 0);
        } finally {
            await gw.stop();
        }
    });

    test('verify_client: optional lets a client without a certificate in (no subject header, the forged one removed) and verifies one that has a certificate', async () => {
        const gw = await start('optional');
        try {
            const c = await wss(gw, '/anon');
            const be = await backend.nextConnection();
            assert.equal(be.headers['x-client-cert-subject'], undefined);
            c.ws.close(1000);
            const c2 = await wss(gw, '/alice', { cert: alice.certPem, key: alice.keyPem });
            const be2 = await backend.nextConnection();
            assert.equal(be2.headers['x-client-cert-subject'], 'O=Example Corp,CN=alice');
            c2.ws.close(1000);
            await assert.rejects(wss(gw, '/wrong-ca', { cert: mallory.certPem, key: mallory.keyPem }));
        } finally {
            await gw.stop();
        }
    });

    test('plain HTTP requests over https:// carry the subject on every request', async () => {
        const seen = [];
        const srv = http.createServer((req, res) => {
            seen.push(req.headers['x-client-cert-subject']);
            res.end('ok');
        });
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        const gw2 = await startWsgate({
            config: tlsConfig({ tlsExtra: `      client_ca: ${ca.ca}\n      verify_client: required\n` }).replace(`backend: ws://127.0.0.1:${backend.port}`, `backend: ws://127.0.0.1:${srv.address().port}`),
        });
        try {
            const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.caPem, cert: alice.certPem, key: alice.keyPem, servername: 'a.test' });
            for (let i = 0; i < 3; i++) {
                await new Promise((resolve, reject) => {
                    https.get({ host: '127.0.0.1', port: gw2.port, path: '/x', agent, servername: 'a.test', headers: { 'x-client-cert-subject': 'CN=forged' } }, (res) => {
                        res.resume();
                        res.on('end', resolve);
                    }).on('error', reject);
                });
            }
            agent.destroy();
            assert.deepEqual(seen, ['O=Example Corp,CN=alice', 'O=Example Corp,CN=alice', 'O=Example Corp,CN=alice']);
        } finally {
            await gw2.stop();
            srv.close();
        }
    });
});

/** A wss:// backend: Node's https server with ws, echoing, recording the
 * SNI and client certificate of each TLS connection. */
async function startTlsBackend({ cert, requestCert = false, clientCa } = {}) {
    const be = { tlsConnections: 0, servernames: [], clientSubjects: [], requests: [] };
    be.server = https.createServer({ cert: cert.certPem, key: cert.keyPem, requestCert, rejectUnauthorized: requestCert, ca: clientCa }, (req, res) => {
        be.requests.push(req.url);
        res.end(`plain ${req.url}`);
    });
    be.server.on('secureConnection', (s) => {
        be.tlsConnections++;
        be.servernames.push(s.servername || null);
        be.clientSubjects.push(s.getPeerCertificate()?.subject?.CN ?? null);
    });
    be.wss = new WebSocketServer({ server: be.server });
    be.wss.on('connection', (ws, req) => {
        ws.on('message', (m, bin) => ws.send(m, { binary: bin }));
        ws.send(`hello ${req.headers['x-forwarded-proto']}`);
    });
    await new Promise((r) => be.server.listen(0, '127.0.0.1', r));
    be.port = be.server.address().port;
    be.close = async () => {
        for (const c of be.wss.clients) c.terminate();
        be.server.closeAllConnections?.();
        await new Promise((r) => be.server.close(r));
    };
    return be;
}

describe('wss:// backends', () => {
    let good; // 127.0.0.1 and localhost, signed by the trusted CA
    let other; // untrusted CA
    let stranger; // signed by the untrusted CA
    let wrongName; // trusted CA, but for another name
    let gwClient; // wsgate's client certificate toward backends
    before(() => {
        good = ca.issue('backend', { dns: ['localhost'], ip: ['127.0.0.1'] });
        wrongName = ca.issue('elsewhere', { dns: ['elsewhere.test'] });
        other = makeCA('untrusted backend CA');
        stranger = other.issue('stranger', { dns: ['localhost'], ip: ['127.0.0.1'] });
        gwClient = ca.issue('gateway', { client: true, subject: '/CN=wsgate' });
    });
    after(() => other?.remove());

    /** wsgate (plain listener) with one upstream of the given backend URL and tls section. */
    async function gateway(url, tlsYaml = '', extra = '') {
        const cfg = `workers: 1
listen: 127.0.0.1:0
upstreams:
  app:
    retries: 0
    backends: [${url}]
${tlsYaml}${extra}routes:
  - match: {path_prefix: /}
    upstream: app
`;
        return startWsgate({ config: cfg });
    }

    test('a backend verified against ca: by address (IP SAN) and by name (SNI sent) relays both ways', async () => {
        const be = await startTlsBackend({ cert: good });
        try {
            for (const host of ['127.0.0.1', 'localhost']) {
                const gw = await gateway(`wss://${host}:${be.port}`, `    tls: {ca: ${ca.ca}}\n`);
                try {
                    const c = await openClient(gw.url('/x'));
                    assert.equal((await c.nextMessage()).data.toString(), 'hello http');
                    c.ws.send('through tls');
                    assert.equal((await c.nextMessage()).data.toString(), 'through tls');
                    const big = Buffer.alloc(5 * 1024 * 1024, 3);
                    c.ws.send(big);
                    assert.ok((await c.nextMessage(10000)).data.equals(big));
                    c.ws.close(1000);
                    await waitClosed(c);
                } finally {
                    await gw.stop();
                }
            }
            assert.deepEqual(be.servernames, [null, 'localhost'], 'SNI only for a name');
        } finally {
            await be.close();
        }
    });

    test('an untrusted certificate and a name mismatch get 502 with the reason in the log; insecure_skip_verify connects and warns', async () => {
        const bad = await startTlsBackend({ cert: stranger });
        const mismatch = await startTlsBackend({ cert: wrongName });
        try {
            let gw = await gateway(`wss://localhost:${bad.port}`, `    tls: {ca: ${ca.ca}}\n`);
            try {
                await assert.rejects(openClient(gw.url('/')), (e) => e.status === 502);
                const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'backend_tls');
                assert.match(line.backend_tls_error, /certificate verify failed: (self-signed|unable to get local issuer)/);
            } finally {
                await gw.stop();
            }
            gw = await gateway(`wss://localhost:${mismatch.port}`, `    tls: {ca: ${ca.ca}}\n`);
            try {
                await assert.rejects(openClient(gw.url('/')), (e) => e.status === 502);
                const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'backend_tls');
                assert.match(line.backend_tls_error, /hostname mismatch/);
            } finally {
                await gw.stop();
            }
            // Without a ca: the system store, which does not know the test CA either.
            gw = await gateway(`wss://localhost:${mismatch.port}`);
            try {
                await assert.rejects(openClient(gw.url('/')), (e) => e.status === 502);
            } finally {
                await gw.stop();
            }
            gw = await gateway(`wss://localhost:${bad.port}`, '    tls: {insecure_skip_verify: true}\n');
            try {
                const warn = await gw.waitForLog((l) => l.msg === 'backend certificates are not verified');
                assert.equal(warn.upstream, 'app');
                const c = await openClient(gw.url('/'));
                assert.equal((await c.nextMessage()).data.toString(), 'hello http');
                c.ws.close(1000);
            } finally {
                await gw.stop();
            }
        } finally {
            await bad.close();
            await mismatch.close();
        }
    });

    test('a backend that requires a client certificate accepts the one in cert/key and refuses wsgate without it', async () => {
        const be = await startTlsBackend({ cert: good, requestCert: true, clientCa: ca.caPem });
        try {
            let gw = await gateway(`wss://localhost:${be.port}`, `    tls: {ca: ${ca.ca}, cert: ${gwClient.cert}, key: ${gwClient.key}}\n`);
            try {
                const c = await openClient(gw.url('/'));
                assert.equal((await c.nextMessage()).data.toString(), 'hello http');
                c.ws.close(1000);
                assert.ok(be.clientSubjects.includes('wsgate'));
            } finally {
                await gw.stop();
            }
            gw = await gateway(`wss://localhost:${be.port}`, `    tls: {ca: ${ca.ca}}\n`);
            try {
                await assert.rejects(openClient(gw.url('/')), (e) => e.status === 502);
            } finally {
                await gw.stop();
            }
        } finally {
            await be.close();
        }
    });

    test('plain HTTP requests to a wss:// backend reuse one TLS connection', async () => {
        const be = await startTlsBackend({ cert: good });
        const gw = await gateway(`wss://localhost:${be.port}`, `    tls: {ca: ${ca.ca}}\n`);
        try {
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            for (let i = 0; i < 20; i++) {
                const body = await new Promise((resolve, reject) => {
                    http.get({ host: '127.0.0.1', port: gw.port, path: `/r${i}`, agent }, (res) => {
                        let b = '';
                        res.setEncoding('utf8');
                        res.on('data', (d) => (b += d));
                        res.on('end', () => resolve(b));
                    }).on('error', reject);
                });
                assert.equal(body, `plain /r${i}`);
            }
            agent.destroy();
            assert.equal(be.tlsConnections, 1, 'one TLS connection to the backend for 20 requests');
        } finally {
            await gw.stop();
            await be.close();
        }
    });

    test('a wss:// backend that sends bytes after its response never has its connection reused', async () => {
        let conns = 0;
        const srv = tls.createServer({ cert: good.certPem, key: good.keyPem }, (sock) => {
            conns++;
            sock.on('data', () => {
                // The response, then (a TLS record of its own, in the same
                // TCP segment: wsgate reads both at once) one nobody asked for.
                sock.cork();
                sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
                sock.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil');
                sock.uncork();
            });
            sock.on('error', () => {});
        });
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        const gw = await gateway(`wss://localhost:${srv.address().port}`, `    tls: {ca: ${ca.ca}}\n`);
        try {
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            const bodies = [];
            for (let i = 0; i < 3; i++) {
                bodies.push(
                    await new Promise((resolve, reject) => {
                        http.get({ host: '127.0.0.1', port: gw.port, path: '/', agent }, (res) => {
                            let b = '';
                            res.setEncoding('utf8');
                            res.on('data', (d) => (b += d));
                            res.on('end', () => resolve(b));
                        }).on('error', reject);
                    }),
                );
            }
            agent.destroy();
            assert.deepEqual(bodies, ['ok', 'ok', 'ok']);
            assert.equal(conns, 3, 'a new backend connection for each request');
        } finally {
            await gw.stop();
            srv.close();
        }
    });

    test('websocket health checks speak TLS to wss:// backends: a bad certificate marks the backend down with the reason', async () => {
        const be = await startTlsBackend({ cert: stranger });
        const gw = await gateway(`wss://localhost:${be.port}`, `    tls: {ca: ${ca.ca}}\n    health_check: {type: websocket, interval: 200ms, timeout: 1s, unhealthy_threshold: 2}\n`);
        try {
            const down = await gw.waitForLog((l) => l.msg === 'backend down', 5000);
            assert.match(down.reason, /^TLS: certificate verify failed/);
        } finally {
            await gw.stop();
            await be.close();
        }
        const ok = await startTlsBackend({ cert: good });
        const gw2 = await gateway(`wss://localhost:${ok.port}`, `    tls: {ca: ${ca.ca}}\n    health_check: {type: websocket, interval: 200ms, timeout: 1s, unhealthy_threshold: 1}\n`);
        try {
            await delay(1200);
            assert.equal(gw2.logs.filter((l) => l.msg === 'backend down').length, 0, gw2.tail());
            assert.ok(ok.tlsConnections >= 3, `${ok.tlsConnections} health checks over TLS`);
        } finally {
            await gw2.stop();
            await ok.close();
        }
    });
});
