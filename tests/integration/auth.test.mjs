// Authentication at the handshake with the real binary: JWTs made by
// Node's crypto (an independent implementation of every algorithm), keys
// from a secret file, a PEM file and a JWKS; tokens from the header, the
// query, a cookie and the subprotocol offer; claims required and
// forwarded; expiry, not-before, leeway, issuer, audience, alg none, HS/RS
// confusion, tampering, oversize tokens; close on expiry; API keys.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { delay, openClient, runWsgate, startEchoBackend, startWsgate, waitClosed, writeTempFile } from './lib/harness.mjs';

/** A result for an assertion message, without the backend connection
 * (a live object: JSON.stringify may meet its timers' cycles). */
const show = (r) => JSON.stringify({ ...r, be: r.be ? { url: r.be.url, headers: r.be.headers } : undefined });

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A compact JWS. key: { alg, secret } or { alg, privateKey }. */
function sign(claims, key, header = {}) {
    const h = b64u(JSON.stringify({ alg: key.alg, typ: 'JWT', ...header }));
    const p = b64u(JSON.stringify(claims));
    const data = Buffer.from(`${h}.${p}`);
    let sig;
    const bits = key.alg.slice(2);
    if (key.alg.startsWith('HS')) sig = crypto.createHmac(`sha${bits}`, key.secret).update(data).digest();
    else if (key.alg.startsWith('RS')) sig = crypto.sign(`sha${bits}`, data, key.privateKey);
    else if (key.alg.startsWith('PS')) sig = crypto.sign(`sha${bits}`, data, { key: key.privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: +bits / 8 });
    else if (key.alg.startsWith('ES')) sig = crypto.sign(`sha${bits}`, data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    else if (key.alg === 'EdDSA') sig = crypto.sign(null, data, key.privateKey);
    else if (key.alg === 'none') sig = Buffer.alloc(0);
    return `${h}.${p}.${b64u(sig)}`;
}

let dir;
let backend;
const secret = crypto.randomBytes(48);
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec256 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ed = crypto.generateKeyPairSync('ed25519');
const rsaOther = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-auth-'));
    fs.writeFileSync(path.join(dir, 'secret'), secret);
    fs.writeFileSync(path.join(dir, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    const jwk = (k, kid, alg) => ({ ...k.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [
        jwk(rsa, 'rsa-1', 'RS256'), jwk(ec256, 'ec-256'), jwk(ec384, 'ec-384'), jwk(ed, 'ed-1'), jwk(rsaOther, 'rsa-2'),
        { kty: 'oct', kid: 'hmac-1', k: b64u(secret) },
    ] }));
    backend = await startEchoBackend({ protocol: (offered) => offered[0] ?? false });
});

after(async () => {
    await backend?.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

function gatewayConfig(authYaml, routeExtra = '') {
    return `workers: 1
listen: 127.0.0.1:0
routes:
  - path: /
    backend: ws://127.0.0.1:${backend.port}
${routeExtra}    auth:
${authYaml}`;
}

/** Try a handshake; { ok, status, headers, body, be (the backend's view) }. */
async function attempt(gw, { token, headers = {}, path: p = '/', protocols } = {}) {
    const h = { ...headers };
    if (token !== undefined) h.Authorization = `Bearer ${token}`;
    const n = backend.connections.length;
    try {
        const c = await openClient(gw.url(p), { headers: h, ...(protocols ? { protocols } : {}) });
        const be = backend.connections.length > n ? backend.connections.at(-1) : null;
        c.ws.close(1000);
        await waitClosed(c);
        return { ok: true, be, protocol: c.ws.protocol };
    } catch (e) {
        return { ok: false, status: e.status, headers: e.headers, body: e.body };
    }
}

describe('JWT algorithms and keys', () => {
    let gwJwks;
    before(async () => {
        gwJwks = await startWsgate({ config: gatewayConfig(`      jwt:
        algorithms: [HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA]
        jwks_file: ${dir}/jwks.json
`) });
    });
    after(() => gwJwks?.stop());

    const cases = [
        ['HS256', { alg: 'HS256', secret }, 'hmac-1'],
        ['HS384', { alg: 'HS384', secret }, 'hmac-1'],
        ['HS512', { alg: 'HS512', secret }, 'hmac-1'],
        ['RS256', { alg: 'RS256', privateKey: rsa.privateKey }, 'rsa-1'],
        ['RS384', { alg: 'RS384', privateKey: rsa.privateKey }, 'rsa-1'],
        ['RS512', { alg: 'RS512', privateKey: rsa.privateKey }, 'rsa-1'],
        ['PS256', { alg: 'PS256', privateKey: rsa.privateKey }, 'rsa-1'],
        ['PS384', { alg: 'PS384', privateKey: rsa.privateKey }, 'rsa-1'],
        ['PS512', { alg: 'PS512', privateKey: rsa.privateKey }, 'rsa-1'],
        ['ES256', { alg: 'ES256', privateKey: ec256.privateKey }, 'ec-256'],
        ['ES384', { alg: 'ES384', privateKey: ec384.privateKey }, 'ec-384'],
        ['EdDSA', { alg: 'EdDSA', privateKey: ed.privateKey }, 'ed-1'],
    ];
    for (const [name, key, kid] of cases) {
        test(`${name}: a valid token is admitted; the same token tampered with is not`, async () => {
            const tok = sign({ sub: `user-${name}`, exp: now() + 60 }, key, { kid });
            const r = await attempt(gwJwks, { token: tok });
            assert.equal(r.ok, true, show(r));
            // Flip one character of the signature, then of the claims.
            const parts = tok.split('.');
            // A different first character: the decoded signature differs.
            const flip = (s) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
            const badSig = [parts[0], parts[1], flip(parts[2])].join('.');
            assert.notEqual(badSig, tok);
            const badClaims = [parts[0], b64u(JSON.stringify({ sub: 'admin', exp: now() + 60 })), parts[2]].join('.');
            for (const t of [badSig, badClaims]) {
                const x = await attempt(gwJwks, { token: t });
                assert.equal(x.status, 401, `${name}: ${show(x)}`);
                assert.equal(x.headers['www-authenticate'], 'Bearer error="invalid_token"');
            }
        });
    }

    test('kid picks the key: a token signed by rsa-2 but naming rsa-1 fails; naming rsa-2 passes', async () => {
        const key = { alg: 'RS256', privateKey: rsaOther.privateKey };
        assert.equal((await attempt(gwJwks, { token: sign({ exp: now() + 60 }, key, { kid: 'rsa-1' }) })).status, 401);
        assert.equal((await attempt(gwJwks, { token: sign({ exp: now() + 60 }, key, { kid: 'rsa-2' }) })).ok, true);
        assert.equal((await attempt(gwJwks, { token: sign({ exp: now() + 60 }, key, { kid: 'nope' }) })).status, 401);
        const line = await gwJwks.waitForLog((l) => l.msg === 'access' && l.auth_error === 'unknown kid');
        assert.equal(line.status, 401);
    });

    test('alg none, and HS256 signed with the RSA public key as secret (HS/RS confusion), are refused', async () => {
        const none = sign({ sub: 'x', exp: now() + 60 }, { alg: 'none' });
        assert.equal((await attempt(gwJwks, { token: none })).status, 401);
        assert.equal((await attempt(gwJwks, { token: none.slice(0, -1) })).status, 401);
        const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
        const confused = sign({ sub: 'x', exp: now() + 60 }, { alg: 'HS256', secret: pem }, { kid: 'rsa-1' });
        assert.equal((await attempt(gwJwks, { token: confused })).status, 401);
        const lines = gwJwks.logs.filter((l) => l.msg === 'access' && l.status === 401);
        assert.ok(lines.some((l) => l.auth_error === 'algorithm not allowed'), JSON.stringify(lines.map((l) => l.auth_error)));
        // The token never appears in the log.
        assert.ok(!gwJwks.stderrLines.some((l) => l.includes(confused.split('.')[2])));
    });

    test('malformed, missing and oversize tokens get 401', async () => {
        const big = sign({ sub: 'x', exp: now() + 60, pad: 'x'.repeat(9000) }, { alg: 'HS256', secret });
        for (const t of ['abc', 'a.b', 'a.b.c.d', '..', big, '']) {
            const r = await attempt(gwJwks, { token: t });
            assert.equal(r.status, 401, `${t.slice(0, 20)}: ${show(r)}`);
        }
        assert.equal((await attempt(gwJwks, {})).status, 401);
        await gwJwks.waitForLog((l) => l.msg === 'access' && l.auth_error === 'token too large');
        await gwJwks.waitForLog((l) => l.msg === 'access' && l.auth_error === 'no token');
    });
});

describe('JWT claims and time', () => {
    let gw;
    const key = { alg: 'RS256', privateKey: rsa.privateKey };
    before(async () => {
        gw = await startWsgate({ config: gatewayConfig(`      jwt:
        algorithms: [RS256]
        public_key_file: ${dir}/rsa.pem
        issuer: https://id.example.com
        audience: chat
        leeway: 5s
        require: {role: admin, scope: {contains: "chat:write"}}
        forward_claims: {sub: X-User-Id, tenant: X-Tenant}
`) });
    });
    after(() => gw?.stop());
    const good = (extra = {}) => ({ iss: 'https://id.example.com', aud: 'chat', sub: 'alice', tenant: 'acme', role: 'admin', scope: 'chat:read chat:write', exp: now() + 60, ...extra });

    test('a valid token: admitted, claims forwarded, incoming headers of those names removed, user logged', async () => {
        const r = await attempt(gw, { token: sign(good(), key), headers: { 'X-User-Id': 'mallory', 'X-Tenant': 'evil' } });
        assert.equal(r.ok, true, show(r));
        assert.equal(r.be.headers['x-user-id'], 'alice');
        assert.equal(r.be.headers['x-tenant'], 'acme');
        assert.equal(r.be.rawHeaders.filter((h) => /^x-user-id$/i.test(h)).length, 1);
        // The Authorization header itself goes on to the backend.
        assert.match(r.be.headers.authorization, /^Bearer /);
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.user === 'alice' && l.status === 101);
        assert.equal(line.auth_error, undefined);
    });

    test('aud as an array, scope as an array: accepted', async () => {
        assert.equal((await attempt(gw, { token: sign(good({ aud: ['other', 'chat'], scope: ['chat:write'] }), key) })).ok, true);
    });

    test('expired, not yet valid, issued in the future, wrong issuer or audience, no exp: 401 with the reason logged', async () => {
        const cases = [
            [good({ exp: now() - 10 }), 'expired'],
            [good({ nbf: now() + 30 }), 'not yet valid'],
            [good({ iat: now() + 30 }), 'issued in the future'],
            [good({ iss: 'https://evil.example.com' }), 'wrong issuer'],
            [good({ aud: 'other' }), 'wrong audience'],
            [good({ exp: undefined }), 'no exp'],
        ];
        for (const [claims, why] of cases) {
            const r = await attempt(gw, { token: sign(claims, key) });
            assert.equal(r.status, 401, `${why}: ${show(r)}`);
            await gw.waitForLog((l) => l.msg === 'access' && l.auth_error === why, 3000, why);
        }
    });

    test('leeway: 5 s late or early is still accepted', async () => {
        assert.equal((await attempt(gw, { token: sign(good({ exp: now() - 3 }), key) })).ok, true);
        assert.equal((await attempt(gw, { token: sign(good({ nbf: now() + 3 }), key) })).ok, true);
    });

    test('a valid token without a required claim gets 403', async () => {
        for (const claims of [good({ role: 'user' }), good({ scope: 'chat:read' }), good({ role: undefined })]) {
            const r = await attempt(gw, { token: sign(claims, key) });
            assert.equal(r.status, 403, show(r));
        }
        const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'forbidden');
        assert.match(line.auth_error, /^claim /);
    });

    test('plain HTTP requests on the route need the token too, and get the claims', async () => {
        const get = (headers) => new Promise((resolve, reject) => {
            http.get({ host: '127.0.0.1', port: gw.port, path: '/plain', headers, agent: false }, (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode));
            }).on('error', reject);
        });
        assert.equal(await get({}), 401);
        assert.equal(await get({ Authorization: `Bearer ${sign(good(), key)}` }), 426); // the echo backend's answer
    });
});

describe('JWT token sources', () => {
    let gw;
    const key = { alg: 'HS256', secret };
    before(async () => {
        gw = await startWsgate({ config: gatewayConfig(`      jwt:
        algorithms: [HS256]
        secret_file: ${dir}/secret
        token_from: ["query:access_token", "cookie:session", subprotocol, header]
`) });
    });
    after(() => gw?.stop());
    const tok = () => sign({ sub: 'bob', exp: now() + 60 }, key);

    test('query: admitted, and the parameter is removed before forwarding', async () => {
        const r = await attempt(gw, { path: `/q?room=7&access_token=${tok()}&x=1` });
        assert.equal(r.ok, true);
        assert.equal(r.be.url, '/q?room=7&x=1');
        const r2 = await attempt(gw, { path: `/q?access_token=${tok()}` });
        assert.equal(r2.be.url, '/q');
    });

    test('cookie: admitted', async () => {
        const r = await attempt(gw, { headers: { Cookie: `theme=dark; session=${tok()}` } });
        assert.equal(r.ok, true);
    });

    test('subprotocol bearer.<token> and the Kubernetes form: admitted, and the entry removed from the offer', async () => {
        const r = await attempt(gw, { protocols: [`bearer.${tok()}`, 'chat'] });
        assert.equal(r.ok, true, show(r));
        assert.equal(r.be.headers['sec-websocket-protocol'], 'chat');
        assert.equal(r.protocol, 'chat');
        const k8s = `base64url.bearer.authorization.k8s.io.${b64u(tok())}`;
        const r2 = await attempt(gw, { protocols: ['chat', k8s] });
        assert.equal(r2.ok, true, show(r2));
        assert.equal(r2.be.headers['sec-websocket-protocol'], 'chat');
    });

    test('a wrong token in the first source found is not rescued by a later one', async () => {
        const r = await attempt(gw, { path: '/q?access_token=junk', token: tok() });
        assert.equal(r.status, 401);
    });
});

describe('close_on_expiry', () => {
    test('an open connection is closed with 1008 "token expired" when its exp passes', async () => {
        const gw = await startWsgate({ config: gatewayConfig(`      jwt:
        algorithms: [HS256]
        secret_file: ${dir}/secret
        leeway: 0s
        close_on_expiry: true
`) });
        try {
            const t0 = Date.now();
            const exp = now() + 2;
            const c = await openClient(gw.url('/'), { headers: { Authorization: `Bearer ${sign({ sub: 'eve', exp }, { alg: 'HS256', secret })}` } });
            const info = await waitClosed(c, 6000);
            assert.deepEqual(info, { code: 1008, reason: 'token expired' });
            const took = Date.now() - t0;
            assert.ok(took >= 900 && took < 4500, `closed after ${took} ms`);
            const line = await gw.waitForLog((l) => l.msg === 'access' && l.error === 'token_expired');
            assert.equal(line.user, 'eve');
        } finally {
            await gw.stop();
        }
    });
});

describe('API keys', () => {
    let gw;
    before(async () => {
        const hash = (k) => crypto.createHash('sha256').update(k).digest('hex');
        const file = path.join(dir, 'keys.txt');
        fs.writeFileSync(file, `# service keys\n${hash('k-alpha-123')} alpha-service\n\n${hash('k-beta-456')}   beta\n`);
        gw = await startWsgate({ config: gatewayConfig(`      api_key: {header: X-Api-Key, keys_file: ${file}}
`) });
    });
    after(() => gw?.stop());

    test('a listed key is admitted; its name goes to the backend and the log; the key itself does not', async () => {
        const r = await attempt(gw, { headers: { 'X-Api-Key': 'k-beta-456', 'X-Api-Key-Name': 'forged' } });
        assert.equal(r.ok, true);
        assert.equal(r.be.headers['x-api-key-name'], 'beta');
        assert.equal(r.be.headers['x-api-key'], undefined);
        await gw.waitForLog((l) => l.msg === 'access' && l.user === 'beta' && l.status === 101);
    });

    test('an unknown or missing key gets 401', async () => {
        assert.equal((await attempt(gw, { headers: { 'X-Api-Key': 'k-alpha-124' } })).status, 401);
        const r = await attempt(gw, {});
        assert.equal(r.status, 401);
        assert.equal(r.headers['www-authenticate'], 'ApiKey');
    });
});

describe('auth configuration errors', () => {
    test('missing algorithms, a key of the wrong type, two key sources, a short secret, a bad keys file', async () => {
        fs.writeFileSync(path.join(dir, 'short'), 'too short');
        fs.writeFileSync(path.join(dir, 'badkeys'), 'not-a-hash name\n');
        const r = await runWsgate(['check', '-c', writeTempFile('wsgate.yaml', `listen: 127.0.0.1:0
routes:
  - path: /a
    backend: ws://127.0.0.1:9
    auth: {jwt: {public_key_file: ${dir}/rsa.pem}}
  - path: /b
    backend: ws://127.0.0.1:9
    auth: {jwt: {algorithms: [ES256], public_key_file: ${dir}/rsa.pem}}
  - path: /c
    backend: ws://127.0.0.1:9
    auth: {jwt: {algorithms: [HS256], secret_file: ${dir}/short}}
  - path: /d
    backend: ws://127.0.0.1:9
    auth: {jwt: {algorithms: [none], secret_file: ${dir}/secret}}
  - path: /e
    backend: ws://127.0.0.1:9
    auth: {api_key: {header: X-Key, keys_file: ${dir}/badkeys}}
  - path: /f
    backend: ws://127.0.0.1:9
    auth: {jwt: {algorithms: [HS256], secret_file: ${dir}/secret, jwks_file: ${dir}/jwks.json}}
`)]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /:5:\d+: missing required key "algorithms" in jwt/);
        assert.match(r.stderr, /:8:\d+: algorithms: ES256 has no key of its type/);
        assert.match(r.stderr, /:11:\d+: .*an HMAC secret needs at least 32 bytes, got 9/);
        assert.match(r.stderr, /:14:\d+: algorithms: expected one of HS256.*never "none"/);
        assert.match(r.stderr, /:17:\d+: .*badkeys:1: expected the key's SHA-256 as 64 hex digits/);
        assert.match(r.stderr, /:20:\d+: jwt: exactly one of secret_file, public_key_file or jwks_file, got 2/);
    });
});
