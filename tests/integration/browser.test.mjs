// A real browser behind wsgate's TLS: headless Chromium (Debian's, driven
// by playwright-core) loads a page over https:// from a TLS listener (the
// page comes from the app backend through wsgate's plain-HTTP proxying),
// and the page's own script opens wss:// to the same origin, exchanges
// messages and closes. Chromium's TLS stack (BoringSSL) offers h2 and
// http/1.1 by ALPN; wsgate must pick http/1.1 and serve both.
//
// Chromium trusts the test's server certificate by its public key
// (--ignore-certificate-errors-spki-list), the way Chromium's own tools
// pin test certificates; it verifies nothing else about it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { WebSocketServer, startWsgate, withTimeout } from './lib/harness.mjs';
import { makeCA } from './lib/certs.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const PAGE = `<!doctype html>
<html><head><title>wsgate browser test</title></head>
<body><p id="status">loading</p>
<script>
window.result = new Promise((resolve) => {
  const ws = new WebSocket('wss://' + location.host + '/ws');
  const got = [];
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    ws.send('hello from the browser');
    ws.send(new Uint8Array(70000).fill(7));
  };
  ws.onmessage = (e) => {
    got.push(typeof e.data === 'string' ? e.data : 'binary:' + e.data.byteLength);
    if (got.length === 3) ws.close(1000, 'bye');
  };
  ws.onclose = (e) => resolve({ got, code: e.code, reason: e.reason, protocol: location.protocol });
  ws.onerror = () => resolve({ error: true, got });
});
document.getElementById('status').textContent = 'ready';
</script></body></html>`;

/** SHA-256 of a certificate's SubjectPublicKeyInfo, base64. */
function spkiHash(certFile) {
    const pub = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-pubkey']);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
    return execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString('base64');
}

describe('headless Chromium over wss:// and https://', () => {
    let ca;
    let cert;
    let app;
    let appPort;
    let gw;
    let tlsPort;
    let browser; // playwright gives it a new, empty profile directory
    const upgrades = [];

    before(async () => {
        ca = makeCA();
        cert = ca.issue('localhost', { dns: ['localhost'], ip: ['127.0.0.1'] });
        app = http.createServer((req, res) => {
            res.setHeader('Content-Type', 'text/html; charset=utf-8');
            res.end(PAGE);
        });
        const wss = new WebSocketServer({ server: app });
        wss.on('connection', (ws, req) => {
            upgrades.push(req.headers);
            ws.send(`welcome ${req.headers['x-forwarded-proto']}`);
            ws.on('message', (m, bin) => ws.send(bin ? m : `echo: ${m}`, { binary: bin }));
        });
        await new Promise((r) => app.listen(0, '127.0.0.1', r));
        appPort = app.address().port;
        gw = await startWsgate({
            config: `workers: 1
listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
        - {cert: ${cert.cert}, key: ${cert.key}}
routes:
  - path: /
    backend: ws://127.0.0.1:${appPort}
`,
        });
        tlsPort = gw.port;
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: [
                '--no-sandbox',
                '--disable-gpu',
                '--disable-quic',
                '--no-first-run',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
                `--ignore-certificate-errors-spki-list=${spkiHash(cert.cert)}`,
            ],
        });
    });

    after(async () => {
        await browser?.close();
        await gw?.stop();
        await new Promise((r) => (app ? app.close(r) : r()));
        ca?.remove();
    });

    test('the page loads over https:// and its script talks wss:// through wsgate', async () => {
        const page = await browser.newPage();
        try {
            const resp = await page.goto(`https://localhost:${tlsPort}/`);
            assert.equal(resp.status(), 200);
            assert.equal(await page.textContent('#status'), 'ready');
            const security = await resp.securityDetails();
            assert.equal(security?.protocol, 'TLS 1.3');
            const r = await withTimeout(page.evaluate(() => window.result), 15000, 'the page\'s WebSocket exchange');
            assert.deepEqual(r, {
                got: ['welcome https', 'echo: hello from the browser', 'binary:70000'],
                code: 1000,
                reason: 'bye',
                protocol: 'https:',
            });
        } finally {
            await page.close();
        }
        // The upgrade reached the app with the browser's Origin, unchanged.
        const h = upgrades.at(-1);
        assert.equal(h.origin, `https://localhost:${tlsPort}`);
        assert.equal(h['x-forwarded-proto'], 'https');
        const lines = await gw.waitForLogs((l) => l.msg === 'access' && l.tls_version === 'TLSv1.3', 2);
        assert.ok(lines.some((l) => l.type === 'http' && l.status === 200), 'the page request');
        assert.ok(lines.some((l) => l.status === 101 && l.close_code === 1000), 'the WebSocket');
    });
});
