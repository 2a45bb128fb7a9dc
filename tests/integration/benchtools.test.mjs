// The benchmark tools: wsbench (load generator) against Node `ws` echo
// servers, honest and corrupting, and wsecho (echo server) against a Node
// `ws` client. Binaries come from WSBENCH_BIN / WSECHO_BIN, by default the
// ones `make` builds in build/bench. Every process started here is stopped by PID;
// every wait has a timeout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { REPO_ROOT, delay, waitUntil, withTimeout } from './lib/harness.mjs';
import { makeCA } from './lib/certs.mjs';

const WSBENCH_BIN = process.env.WSBENCH_BIN || path.join(REPO_ROOT, 'build', 'bench', 'wsbench');
const WSECHO_BIN = process.env.WSECHO_BIN || path.join(REPO_ROOT, 'build', 'bench', 'wsecho');
const TCPFWD_BIN = process.env.TCPFWD_BIN || path.join(REPO_ROOT, 'build', 'bench', 'tcpfwd');

for (const bin of [WSBENCH_BIN, WSECHO_BIN, TCPFWD_BIN]) {
    // The build always makes them all: a missing one is a failure, not a skip.
    assert.ok(fs.existsSync(bin), `${bin} is missing: run \`make\` (or set WSBENCH_BIN / WSECHO_BIN / TCPFWD_BIN)`);
}

const live = new Set();
process.on('exit', () => {
    // Safety net only: each test stops what it started.
    for (const p of live) {
        try {
            process.kill(p.pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/** Start a binary; collects stdout/stderr, resolves `exited` with {code, signal}. */
function startProc(bin, args) {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const p = { proc, pid: proc.pid, stdout: '', stderr: '', lineWaiters: [] };
    p.exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            live.delete(proc);
            resolve({ code, signal });
            for (const w of p.lineWaiters) w();
        });
    });
    proc.on('error', (e) => {
        p.spawnError = e;
        for (const w of p.lineWaiters) w();
    });
    proc.stdout.setEncoding('utf8').on('data', (d) => {
        p.stdout += d;
        for (const w of p.lineWaiters) w();
    });
    proc.stderr.setEncoding('utf8').on('data', (d) => (p.stderr += d));
    /** Resolve with the first complete stdout line matching re. */
    p.waitLine = (re, ms, what) =>
        withTimeout(
            new Promise((resolve, reject) => {
                const check = () => {
                    const line = p.stdout.split('\n').slice(0, -1).find((l) => re.test(l));
                    if (line !== undefined) {
                        p.lineWaiters.splice(p.lineWaiters.indexOf(check), 1);
                        return resolve(line);
                    }
                    if (p.spawnError || proc.exitCode !== null || proc.signalCode !== null) {
                        p.lineWaiters.splice(p.lineWaiters.indexOf(check), 1);
                        reject(new Error(`${path.basename(bin)} ended before ${what}; stderr:\n${p.stderr}`));
                    }
                };
                p.lineWaiters.push(check);
                check();
            }),
            ms,
            `${what}; stderr so far:\n${p.stderr}`,
        );
    /** SIGTERM by PID, then SIGKILL if it does not exit in time. */
    p.stop = async (ms = 5000) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return p.exited;
        process.kill(p.pid, 'SIGTERM');
        const r = await Promise.race([p.exited, new Promise((res) => setTimeout(() => res(null), ms))]);
        if (r === null) {
            process.kill(p.pid, 'SIGKILL');
            await p.exited;
            throw new Error(`${path.basename(bin)} (pid ${p.pid}) ignored SIGTERM for ${ms} ms`);
        }
        return r;
    };
    return p;
}

/** Run wsbench to completion; returns { code, signal, stdout, stderr }. */
async function runWsbench(args, ms = 30000) {
    const p = startProc(WSBENCH_BIN, args);
    try {
        const r = await withTimeout(p.exited, ms, `wsbench ${args.join(' ')} to exit`);
        if (p.spawnError) throw p.spawnError;
        return { ...r, stdout: p.stdout, stderr: p.stderr };
    } finally {
        if (p.proc.exitCode === null && p.proc.signalCode === null) {
            process.kill(p.pid, 'SIGKILL');
            await p.exited;
        }
    }
}

function lastJson(stdout) {
    const lines = stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]);
}

async function startWsecho(extra = []) {
    const p = startProc(WSECHO_BIN, ['--listen', '127.0.0.1:0', ...extra]);
    try {
        const line = await p.waitLine(/^listening /, 5000, 'the "listening" line');
        const m = /^listening 127\.0\.0\.1:(\d+)$/.exec(line);
        assert.ok(m, `unexpected listening line: ${line}`);
        p.port = Number(m[1]);
        return p;
    } catch (e) {
        await p.stop().catch(() => {});
        throw e;
    }
}

/** A Node `ws` echo server on 127.0.0.1; `mangle(data, n)` may rewrite the
 * n-th (1-based) echoed message. */
function startNodeEcho(mangle) {
    return new Promise((resolve, reject) => {
        const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
        let n = 0;
        wss.on('connection', (ws) => {
            ws.on('message', (data, isBinary) => {
                n++;
                const out = mangle ? mangle(Buffer.from(data), n) : data;
                ws.send(out, { binary: isBinary });
            });
            ws.on('error', () => {});
        });
        wss.on('error', reject);
        wss.on('listening', () =>
            resolve({
                port: wss.address().port,
                count: () => n,
                close: () =>
                    new Promise((res) => {
                        for (const c of wss.clients) c.terminate();
                        wss.close(() => res());
                    }),
            }),
        );
    });
}

function assertCleanRun(r, what) {
    assert.equal(r.code, 0, `${what}: wsbench exit code ${r.code} (signal ${r.signal}); stderr:\n${r.stderr}`);
    const j = lastJson(r.stdout);
    assert.equal(j.errors, 0, `${what}: errors`);
    return j;
}

describe('wsbench against a Node ws echo server', () => {
    let be;
    before(async () => {
        be = await startNodeEcho();
    });
    after(() => be?.close());

    test('closed loop, 32-byte text messages, --check', { timeout: 30000 }, async () => {
        const url = `ws://127.0.0.1:${be.port}/bench`;
        const r = await runWsbench(['--url', url, '-c', '8', '-k', '8', '-s', '32', '-d', '2', '-w', '0.5', '--check', '--json', '--quiet']);
        const j = assertCleanRun(r, 'text run');
        assert.equal(j.mode, 'closed');
        assert.equal(j.url, url);
        assert.equal(j.connections, 8);
        assert.equal(j.inflight, 8);
        assert.equal(j.size, 32);
        assert.equal(j.binary, false);
        assert.ok(j.messages > 0, `messages: ${j.messages}`);
        assert.ok(j.msgs_per_s > 0);
        assert.ok(Math.abs(j.duration_s - 2) < 0.2, `duration_s ${j.duration_s}`);
        assert.ok(Math.abs(j.mb_per_s - (j.msgs_per_s * 32) / 1e6) < 0.01, 'mb_per_s is payload bytes/s / 1e6');
        const l = j.latency_us;
        assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `latency ${JSON.stringify(l)}`);
        assert.ok(j.received >= j.messages);
    });

    test('closed loop, 64 KiB binary messages, --check', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '4', '-k', '2', '-s', '64KiB', '--binary', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
        const j = assertCleanRun(r, 'binary run');
        assert.equal(j.size, 65536);
        assert.equal(j.binary, true);
        assert.ok(j.messages > 0, `messages: ${j.messages}`);
        assert.ok(j.mb_per_s > 0);
    });

    test('human summary without --json', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '2', '-k', '1', '-d', '0.5', '-w', '0', '-q']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /messages\s+\d+ in [\d.]+ s: [\d.]+ msg\/s/);
        assert.match(r.stdout, /p99\.9/);
    });
});

describe('wsbench over wss:// against a Node https + ws echo server', () => {
    let ca;
    let server;
    let wss;
    let port;
    const servernames = [];
    before(async () => {
        ca = makeCA();
        const cert = ca.issue('localhost', { dns: ['localhost'] });
        server = https.createServer({ cert: cert.certPem, key: cert.keyPem });
        server.on('secureConnection', (s) => servernames.push(s.servername));
        wss = new WebSocketServer({ server, maxPayload: 64 * 1024 * 1024 });
        wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
        await new Promise((r) => server.listen(0, '127.0.0.1', r));
        port = server.address().port;
    });
    after(async () => {
        for (const c of wss?.clients ?? []) c.terminate();
        server?.closeAllConnections?.();
        await new Promise((r) => (server ? server.close(r) : r()));
        ca?.remove();
    });

    test('closed loop, small and 64 KiB messages, --check, SNI from the URL', { timeout: 30000 }, async () => {
        let r = await runWsbench(['--url', `wss://localhost:${port}/`, '-c', '4', '-k', '8', '-s', '32', '-d', '1', '-w', '0.3', '--check', '--json', '-q']);
        let j = assertCleanRun(r, 'wss text run');
        assert.ok(j.messages > 0);
        r = await runWsbench(['--url', `wss://localhost:${port}/`, '-c', '2', '-k', '2', '-s', '64KiB', '--binary', '-d', '1', '-w', '0.3', '--check', '--json', '-q']);
        j = assertCleanRun(r, 'wss binary run');
        assert.ok(j.messages > 0);
        assert.ok(servernames.length >= 6 && servernames.every((n) => n === 'localhost'), JSON.stringify(servernames));
    });

    test('churn: a TLS handshake per connection', { timeout: 30000 }, async () => {
        const before = servernames.length;
        const r = await runWsbench(['--url', `wss://localhost:${port}/`, '-c', '2', '--churn', '-s', '32', '-d', '1', '-w', '0.2', '--json', '-q']);
        const j = assertCleanRun(r, 'wss churn');
        assert.ok(j.connects_per_s > 0);
        assert.ok(servernames.length - before >= j.messages, `${servernames.length - before} TLS handshakes for ${j.messages} cycles`);
    });

    test('a plain ws:// server at a wss:// URL fails the run with a TLS error', { timeout: 30000 }, async () => {
        const plain = await startNodeEcho();
        try {
            const r = await runWsbench(['--url', `wss://127.0.0.1:${plain.port}/`, '-c', '1', '-d', '1', '-w', '0', '--json', '-q']);
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /TLS/);
        } finally {
            await plain.close();
        }
    });
});

describe('wsbench fails on a wrong echo', () => {
    test('one flipped payload byte fails the run with --check', { timeout: 30000 }, async () => {
        // Byte 40 is past the 16-byte sequence/timestamp header: only the
        // content comparison can see it. XOR 1 keeps the text ASCII.
        const be = await startNodeEcho((d, n) => {
            if (n === 200) d[40] ^= 1;
            return d;
        });
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '4', '-k', '4', '-s', '64', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
            assert.match(r.stderr, /differs at byte 40/);
            assert.equal(r.stdout, '', 'no JSON report for a failed run');
        } finally {
            await be.close();
        }
    });

    test('a shortened echo fails the run even without --check', { timeout: 30000 }, async () => {
        const be = await startNodeEcho((d, n) => (n === 50 ? d.subarray(0, d.length - 1) : d));
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '2', '-k', '2', '-s', '100', '--binary', '-d', '2', '-w', '0.5', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stderr:\n${r.stderr}`);
            assert.match(r.stderr, /has 99 bytes, sent 100/);
        } finally {
            await be.close();
        }
    });

    test('a dropped echo fails the sequence check', { timeout: 30000 }, async () => {
        // Swap two consecutive echoes on a connection: lengths and content
        // still match, the per-connection sequence does not.
        const wss = await new Promise((resolve) => {
            const s = new WebSocketServer({ host: '127.0.0.1', port: 0 }, () => resolve(s));
        });
        wss.on('connection', (ws) => {
            let n = 0;
            let held = null;
            ws.on('message', (data, isBinary) => {
                n++;
                if (n === 10) held = data;
                else {
                    ws.send(data, { binary: isBinary });
                    if (held) {
                        ws.send(held, { binary: isBinary });
                        held = null;
                    }
                }
            });
            ws.on('error', () => {});
        });
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${wss.address().port}/`, '-c', '1', '-k', '4', '-s', '32', '-d', '2', '-w', '0.5', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stderr:\n${r.stderr}`);
            assert.match(r.stderr, /out of sequence: expected message 9, got 10/);
        } finally {
            for (const c of wss.clients) c.terminate();
            await new Promise((res) => wss.close(res));
        }
    });

    test('a changed send time fails the run with --check', { timeout: 30000 }, async () => {
        // Bytes 6..15 of each payload are the send time in symbols; 'A' and
        // 'B' are both symbols, so only the comparison with the recorded
        // time can see the change.
        const be = await startNodeEcho((d, n) => {
            if (n === 200) d[8] = d[8] === 0x41 ? 0x42 : 0x41;
            return d;
        });
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '4', '-k', '4', '-s', '32', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
            assert.match(r.stderr, /timestamp field differs from what was sent/);
        } finally {
            await be.close();
        }
    });

    test('a sequence field that is not symbols fails the run', { timeout: 30000 }, async () => {
        const be = await startNodeEcho((d, n) => {
            if (n === 50) d[0] = 0x21; // '!': outside the alphabet
            return d;
        });
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '-c', '2', '-k', '4', '-s', '32', '-d', '2', '-w', '0.5', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stderr:\n${r.stderr}`);
            assert.match(r.stderr, /echo header is not one this tool wrote \(sequence field '!/);
        } finally {
            await be.close();
        }
    });

    test('a refused upgrade fails the run', { timeout: 30000 }, async () => {
        const srv = http.createServer((req, res) => {
            res.writeHead(404);
            res.end('nope');
        });
        await new Promise((res) => srv.listen(0, '127.0.0.1', res));
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${srv.address().port}/`, '-c', '2', '-d', '1', '-w', '0', '-q']);
            assert.equal(r.code, 1, `exit code ${r.code}; stderr:\n${r.stderr}`);
            assert.match(r.stderr, /upgrade refused: server answered 'HTTP\/1\.1 404/);
        } finally {
            srv.closeAllConnections();
            await new Promise((res) => srv.close(res));
        }
    });
});

describe('wsbench --idle sends its burst only once every connection is open', () => {
    test('no message before the last upgrade, then one on each', { timeout: 30000 }, async () => {
        // The last of N upgrades is held back 500 ms: a tool that sends on
        // each connection as soon as it opens would have messages here
        // while fewer than N are open.
        const N = 40;
        const wss = new WebSocketServer({ noServer: true });
        const srv = http.createServer();
        let upgrades = 0;
        let open = 0;
        const early = [];
        let got = 0;
        srv.on('upgrade', (req, sock, head) => {
            const finish = () =>
                wss.handleUpgrade(req, sock, head, (ws) => {
                    open++;
                    ws.on('message', (data, isBinary) => {
                        got++;
                        if (open < N) early.push(open);
                        ws.send(data, { binary: isBinary });
                    });
                    ws.on('error', () => {});
                });
            if (++upgrades === N) setTimeout(finish, 500);
            else finish();
        });
        await new Promise((res) => srv.listen(0, '127.0.0.1', res));
        const p = startProc(WSBENCH_BIN, ['--url', `ws://127.0.0.1:${srv.address().port}/`, '--idle', '-c', String(N), '--hold', '60', '--check', '--json', '-q']);
        try {
            const line = await p.waitLine(/"event":"ready"/, 10000, 'the ready line');
            assert.deepEqual(JSON.parse(line), { event: 'ready', connections: N });
            assert.deepEqual(early, [], 'messages that arrived while fewer than N connections were open (open count at each)');
            assert.equal(got, N, 'one message per connection');
            const r = await p.stop(10000);
            assert.equal(r.code, 0, `exit after SIGTERM: ${JSON.stringify(r)}; stderr:\n${p.stderr}`);
            const j = lastJson(p.stdout);
            assert.equal(j.mode, 'idle');
            assert.equal(j.messages, N);
            // Every echo is timed from the burst, after the held-back upgrade:
            // well under the 500 ms delay.
            assert.ok(j.latency_us.max < 400000, `latency from the burst: ${JSON.stringify(j.latency_us)}`);
        } finally {
            if (p.proc.exitCode === null && p.proc.signalCode === null) {
                process.kill(p.pid, 'SIGKILL');
                await p.exited;
            }
            for (const c of wss.clients) c.terminate();
            srv.closeAllConnections();
            await new Promise((res) => srv.close(res));
        }
    });
});

/** A Node `ws` server that pushes a message in wsecho's push format to
 * each connection every 20 ms; `mangle({seq, ts, size})` may change what
 * the n-th push says, and returns it. */
function startNodePusher(mangle = (m) => m) {
    return new Promise((resolve, reject) => {
        const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
        const timers = new Set();
        wss.on('connection', (ws) => {
            let seq = 0;
            const t = setInterval(() => {
                const m = mangle({ seq, ts: process.hrtime.bigint(), size: 100 });
                seq++;
                let text = m.seq.toString(16).padStart(16, '0') + m.ts.toString(16).padStart(16, '0');
                for (let i = 32; i < m.size; i++) text += String.fromCharCode(97 + (i % 26));
                ws.send(text.slice(0, m.size));
            }, 20);
            timers.add(t);
            ws.on('close', () => {
                clearInterval(t);
                timers.delete(t);
            });
            ws.on('error', () => {});
        });
        wss.on('error', reject);
        wss.on('listening', () =>
            resolve({
                port: wss.address().port,
                close: () =>
                    new Promise((res) => {
                        for (const t of timers) clearInterval(t);
                        for (const c of wss.clients) c.terminate();
                        wss.close(() => res());
                    }),
            }),
        );
    });
}

describe('wsbench --fanout', () => {
    test('takes wsecho pushes: counts, sequence, delivery latency', { timeout: 30000 }, async () => {
        const echo = await startWsecho(['--push-interval', '50', '--push-size', '100']);
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${echo.port}/`, '--fanout', '-c', '20', '-s', '100', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
            const j = assertCleanRun(r, 'fanout');
            assert.match(r.stdout.split('\n')[0], /^\{"event":"open","connections":20\}$/, 'the open event comes first');
            assert.equal(j.mode, 'fanout');
            assert.equal(j.connections, 20);
            assert.equal(j.inflight, 0);
            assert.equal(j.size, 100);
            assert.equal(j.sent, 0, 'fanout sends nothing');
            // 20 connections x 20 pushes/s x 2 s.
            assert.ok(Math.abs(j.messages - 800) <= 40, `messages ${j.messages}, want ~800`);
            assert.ok(Math.abs(j.msgs_per_s - 400) <= 20, `msgs_per_s ${j.msgs_per_s}`);
            assert.ok(j.received >= j.messages);
            const l = j.latency_us;
            assert.ok(l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.max, `latency ${JSON.stringify(l)}`);
            assert.ok(l.p99 < 50000, `p99 ${l.p99} us: implausible for one hop on 127.0.0.1`);
        } finally {
            await echo.stop();
        }
    });

    test('a correct Node pusher runs clean', { timeout: 30000 }, async () => {
        const be = await startNodePusher();
        try {
            const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '--fanout', '-c', '4', '-s', '100', '-d', '1', '-w', '0.2', '--check', '--json', '-q']);
            const j = assertCleanRun(r, 'node pusher');
            assert.ok(j.messages > 100, `messages ${j.messages}`);
        } finally {
            await be.close();
        }
    });

    for (const [what, mangle, want] of [
        ['a skipped sequence number', (m) => (m.seq >= 5 ? { ...m, seq: m.seq + 1 } : m), /push out of sequence: expected message 5, got 6/],
        ['a send time in the future', (m) => (m.seq === 5 ? { ...m, ts: m.ts + 10n ** 12n } : m), /push 5 was sent [\d.]+ us in the future/],
        ['a short push', (m) => (m.seq === 5 ? { ...m, size: 99 } : m), /push 5 has 99 bytes, expected 100/],
    ]) {
        test(`${what} fails the run`, { timeout: 30000 }, async () => {
            const be = await startNodePusher(mangle);
            try {
                const r = await runWsbench(['--url', `ws://127.0.0.1:${be.port}/`, '--fanout', '-c', '2', '-s', '100', '-d', '2', '-w', '0.2', '--json', '-q']);
                assert.equal(r.code, 1, `exit code ${r.code}; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
                assert.match(r.stderr, want);
                assert.doesNotMatch(r.stdout, /"mode"/, 'no JSON report for a failed run');
            } finally {
                await be.close();
            }
        });
    }

    test('--fanout wants text of at least 32 bytes', { timeout: 10000 }, async () => {
        for (const [args, want] of [
            [['-s', '31'], /--fanout needs -s 32 or more/],
            [['--binary', '-s', '100'], /--fanout takes text messages/],
            [['--idle'], /exclude each other/],
        ]) {
            const r = await runWsbench(['--url', 'ws://127.0.0.1:1/', '--fanout', ...args], 5000);
            assert.equal(r.code, 1, `${args.join(' ')}: ${JSON.stringify(r)}`);
            assert.match(r.stderr, want);
        }
    });
});

/** A Node ws client on wsecho with a queue of incoming messages. */
async function openClient(port, protocols) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, protocols, { maxPayload: 64 * 1024 * 1024 });
    const messages = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
        const m = { data: Buffer.from(data), isBinary };
        const w = waiters.shift();
        if (w) w(m);
        else messages.push(m);
    });
    await withTimeout(
        new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
        }),
        5000,
        'the WebSocket to wsecho to open',
    );
    return {
        ws,
        next: (ms = 10000) =>
            messages.length
                ? Promise.resolve(messages.shift())
                : withTimeout(new Promise((resolve) => waiters.push(resolve)), ms, 'an echoed message'),
    };
}

/** One masked (or not) frame with FIN and opcode in byte0, payload under 64 KiB. */
function frame(byte0, payload, masked) {
    const len = payload.length;
    const head = len < 126 ? Buffer.from([byte0, (masked ? 0x80 : 0) | len]) : Buffer.from([byte0, (masked ? 0x80 : 0) | 126, len >> 8, len & 0xff]);
    if (!masked) return Buffer.concat([head, payload]);
    const key = crypto.randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
    return Buffer.concat([head, key, body]);
}

/** Upgrade a raw TCP connection to wsecho, write `wire` in one go, and
 * collect the server's frames until it closes the connection. */
function rawSession(port, wire) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const sock = net.connect(port, '127.0.0.1');
            let buf = Buffer.alloc(0);
            let upgraded = false;
            sock.on('connect', () =>
                sock.write(
                    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
                ),
            );
            sock.on('data', (d) => {
                buf = Buffer.concat([buf, d]);
                if (!upgraded) {
                    const end = buf.indexOf('\r\n\r\n');
                    if (end < 0) return;
                    if (!buf.subarray(0, 12).equals(Buffer.from('HTTP/1.1 101'))) return reject(new Error(`no 101: ${buf}`));
                    buf = buf.subarray(end + 4);
                    upgraded = true;
                    sock.write(wire);
                }
            });
            sock.on('error', reject);
            sock.on('close', () => {
                const frames = [];
                let i = 0;
                while (buf.length - i >= 2) {
                    let len = buf[i + 1] & 0x7f;
                    let h = 2;
                    if (len === 126) {
                        len = buf.readUInt16BE(i + 2);
                        h = 4;
                    }
                    frames.push({ op: buf[i] & 0x0f, payload: buf.subarray(i + h, i + h + len) });
                    i += h + len;
                }
                resolve(frames);
            });
        }),
        5000,
        'wsecho to answer and close',
    );
}

describe('wsecho with a Node ws client', () => {
    let echo;
    let c;
    before(async () => {
        echo = await startWsecho();
        c = await openClient(echo.port, ['chat', 'other']);
    });
    after(async () => {
        c?.ws.terminate();
        const r = await echo?.stop();
        if (r) assert.equal(r.code, 0, `wsecho exit on SIGTERM: ${JSON.stringify(r)}; stderr:\n${echo.stderr}`);
    });

    test('answers with the first offered subprotocol', () => {
        assert.equal(c.ws.protocol, 'chat');
    });

    for (const size of [0, 125, 126, 65536, 1024 * 1024]) {
        test(`echoes a ${size}-byte text message`, { timeout: 20000 }, async () => {
            const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
            c.ws.send(text);
            const m = await c.next();
            assert.equal(m.isBinary, false);
            assert.equal(m.data.length, size);
            assert.equal(m.data.toString('utf8'), text);
        });
        test(`echoes a ${size}-byte binary message`, { timeout: 20000 }, async () => {
            const data = crypto.randomBytes(size);
            c.ws.send(data);
            const m = await c.next();
            assert.equal(m.isBinary, true);
            assert.ok(m.data.equals(data), 'content differs');
        });
    }

    test('echoes a fragmented message with a ping between fragments', { timeout: 20000 }, async () => {
        const whole = crypto.randomBytes(200000);
        const pong = new Promise((resolve) => c.ws.once('pong', resolve));
        c.ws.send(whole.subarray(0, 1000), { binary: true, fin: false });
        c.ws.ping('mid');
        c.ws.send(whole.subarray(1000, 150000), { binary: true, fin: false });
        c.ws.send(whole.subarray(150000), { binary: true, fin: true });
        const m = await c.next();
        assert.equal(m.isBinary, true);
        assert.ok(m.data.equals(whole), 'reassembled echo differs');
        assert.equal(String(await withTimeout(pong, 5000, 'the pong')), 'mid');
    });

    test('answers a ping with a pong carrying the same payload', { timeout: 10000 }, async () => {
        const pong = new Promise((resolve) => c.ws.once('pong', resolve));
        c.ws.ping(Buffer.from('ping-payload'));
        assert.equal(String(await withTimeout(pong, 5000, 'the pong')), 'ping-payload');
    });

    test('echoes many large frames back to back (backpressure)', { timeout: 30000 }, async () => {
        const msgs = Array.from({ length: 24 }, () => crypto.randomBytes(512 * 1024));
        for (const d of msgs) c.ws.send(d);
        for (const d of msgs) assert.ok((await c.next()).data.equals(d), 'content differs');
    });

    test('answers a close with the same code, then closes the connection', { timeout: 10000 }, async () => {
        const other = await openClient(echo.port);
        const closed = new Promise((resolve) => other.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
        other.ws.close(4321, 'bye');
        const r = await withTimeout(closed, 5000, 'the close handshake');
        assert.equal(r.code, 4321);
    });

    for (const [what, bad] of [
        ['an unmasked frame', (p) => frame(0x81, p, false)],
        ['a frame with RSV1 set', (p) => frame(0xc1, p, true)],
        ['a continuation with no message open', (p) => frame(0x80, p, true)],
    ]) {
        test(`echoes the whole frames before ${what}, then closes with 1002`, { timeout: 10000 }, async () => {
            // One write: good frames, the bad one, and a good one that must
            // not be echoed (nothing after a protocol error is).
            const good = [Buffer.from('one'), crypto.randomBytes(200), Buffer.from('x'.repeat(125))];
            const wire = Buffer.concat([
                frame(0x81, good[0], true),
                frame(0x82, good[1], true),
                frame(0x81, good[2], true),
                bad(Buffer.from('bad')),
                frame(0x81, Buffer.from('after'), true),
            ]);
            const frames = await rawSession(echo.port, wire);
            assert.equal(frames.length, 4, `frames back: ${JSON.stringify(frames.map((f) => f.op))}`);
            for (let i = 0; i < 3; i++) {
                assert.equal(frames[i].op, i === 1 ? 0x2 : 0x1);
                assert.ok(frames[i].payload.equals(good[i]), `echo ${i} differs`);
            }
            assert.equal(frames[3].op, 0x8);
            assert.equal(frames[3].payload.readUInt16BE(0), 1002);
        });
    }

    test('answers plain GETs with ?size bytes on a kept-alive connection, other methods with 405', { timeout: 10000 }, async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const get = (path, method = 'GET') =>
            withTimeout(
                new Promise((resolve, reject) => {
                    const req = http.request({ host: '127.0.0.1', port: echo.port, path, method, agent }, (res) => {
                        const chunks = [];
                        res.on('data', (d) => chunks.push(d));
                        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), socket: req.socket }));
                    });
                    req.on('error', reject);
                    req.end();
                }),
                5000,
                'the HTTP answer',
            );
        const a = await get('/');
        assert.equal(a.status, 200);
        assert.equal(a.body.length, 1024);
        const b = await get('/x?size=65536');
        assert.equal(b.body.length, 65536);
        assert.equal(b.socket, a.socket, 'the connection was kept alive');
        const c = await get('/?a=1&size=0');
        assert.equal(c.body.length, 0);
        assert.equal((await get('/', 'POST')).status, 405);
        agent.destroy();
    });
});

/** Parse one of wsecho's pushes: 16 hex digits of sequence, 16 of send
 * time (CLOCK_MONOTONIC ns, which is what process.hrtime.bigint() reads on
 * Linux), then filler. */
function parsePush(data) {
    const s = data.toString('latin1');
    assert.match(s.slice(0, 32), /^[0-9a-f]{32}$/, `push header: ${JSON.stringify(s.slice(0, 40))}`);
    return { seq: Number(BigInt(`0x${s.slice(0, 16)}`)), ts: BigInt(`0x${s.slice(16, 32)}`), filler: s.slice(32) };
}

/** A Node ws client that records every message with its arrival time. */
async function pushClient(port) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/push`);
    const got = [];
    ws.on('message', (data, isBinary) => got.push({ at: process.hrtime.bigint(), data: Buffer.from(data), isBinary }));
    await withTimeout(
        new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
        }),
        5000,
        'the WebSocket to wsecho to open',
    );
    return { ws, got };
}

describe('wsecho --push-interval', () => {
    let echo;
    before(async () => {
        echo = await startWsecho(['--push-interval', '100', '--push-size', '100']);
    });
    after(async () => {
        const r = await echo?.stop();
        if (r) assert.equal(r.code, 0, `wsecho exit on SIGTERM: ${JSON.stringify(r)}; stderr:\n${echo.stderr}`);
    });

    test('pushes numbered, timed 100-byte text messages every 100 ms', { timeout: 20000 }, async () => {
        const cs = await Promise.all([1, 2, 3].map(() => pushClient(echo.port)));
        try {
            await waitUntil(() => cs.every((c) => c.got.length >= 8), { timeoutMs: 10000, what: '8 pushes on each connection' });
            for (const c of cs) {
                const ps = c.got.slice(0, 8).map((m) => {
                    assert.equal(m.isBinary, false, 'pushes are text');
                    assert.equal(m.data.length, 100);
                    return { ...parsePush(m.data), at: m.at };
                });
                assert.deepEqual(ps.map((p) => p.seq), [0, 1, 2, 3, 4, 5, 6, 7], 'per-connection sequence from 0');
                let want = '';
                for (let i = 32; i < 100; i++) want += String.fromCharCode(97 + (i % 26));
                for (const p of ps) {
                    assert.equal(p.filler, want, 'filler: byte i is a + i % 26');
                    assert.ok(p.ts <= p.at, `send time ${p.ts} after the arrival ${p.at}: not CLOCK_MONOTONIC`);
                    assert.ok(p.at - p.ts < 500000000n, `delivered ${(p.at - p.ts) / 1000n} us after it was sent`);
                }
                const gaps = ps.slice(1).map((p, i) => Number(p.ts - ps[i].ts) / 1e6).sort((a, b) => a - b);
                const median = gaps[Math.floor(gaps.length / 2)];
                assert.ok(median > 90 && median < 110, `median interval ${median} ms; gaps ${gaps}`);
            }
        } finally {
            for (const c of cs) c.ws.terminate();
        }
    });

    test("spreads the connections' phases over the interval", { timeout: 20000 }, async () => {
        // The largest gap between neighbouring phases (on the circle of one
        // interval): ~0.15 of it for 8 evenly spread connections, close to
        // 1 when they all push at the same moment.
        const cs = await Promise.all(Array.from({ length: 8 }, () => pushClient(echo.port)));
        try {
            await waitUntil(() => cs.every((c) => c.got.length >= 1), { timeoutMs: 10000, what: 'a push on each connection' });
            const phases = cs.map((c) => Number(parsePush(c.got[0].data).ts % 100000000n) / 1e8).sort((a, b) => a - b);
            const gaps = phases.map((p, i) => (i + 1 < phases.length ? phases[i + 1] : phases[0] + 1) - p);
            assert.ok(Math.max(...gaps) < 0.3, `phases (fractions of the interval): ${phases.map((p) => p.toFixed(3))}`);
        } finally {
            for (const c of cs) c.ws.terminate();
        }
    });

    test('still echoes, and never puts a push inside a fragmented echo', { timeout: 20000 }, async () => {
        const c = await pushClient(echo.port);
        let closed = null;
        c.ws.on('close', (code) => (closed = code));
        try {
            c.ws.send('hello');
            await waitUntil(() => c.got.some((m) => m.data.toString() === 'hello'), { timeoutMs: 5000, what: 'the echo' });
            // The first fragment's echo opens a message on the way back;
            // pushes due during the next 300 ms must wait for its end
            // (RFC 6455 §5.4), or the client fails the connection.
            c.ws.send('frag-one-', { fin: false });
            await delay(300);
            c.ws.send('frag-two', { fin: true });
            await waitUntil(() => c.got.some((m) => m.data.toString() === 'frag-one-frag-two'), { timeoutMs: 5000, what: 'the fragmented echo' });
            const n = c.got.length;
            await waitUntil(() => c.got.length >= n + 2, { timeoutMs: 5000, what: 'pushes after it' });
            assert.equal(closed, null, 'the client failed the connection');
            const seqs = c.got.filter((m) => /^[0-9a-f]{32}/.test(m.data.toString())).map((m) => parsePush(m.data).seq);
            assert.deepEqual(seqs, seqs.map((_, i) => i), 'no push lost or reordered');
        } finally {
            c.ws.terminate();
        }
    });

    test('usage errors exit 2', { timeout: 10000 }, async () => {
        for (const [args, want] of [
            [['--push-size', '100'], /--push-size needs --push-interval/],
            [['--push-interval', '100', '--push-size', '31'], /--push-size 31: want 32 to 65536/],
            [['--push-interval', '0'], /--push-interval 0/],
        ]) {
            const p = startProc(WSECHO_BIN, ['--listen', '127.0.0.1:0', ...args]);
            const r = await withTimeout(p.exited, 5000, 'wsecho to exit');
            assert.equal(r.code, 2, `wsecho ${args.join(' ')}: ${JSON.stringify(r)} ${p.stderr}`);
            assert.match(p.stderr, want);
        }
    });
});

describe('wsbench against wsecho', () => {
    let echo;
    before(async () => {
        echo = await startWsecho();
    });
    after(async () => {
        const r = await echo?.stop();
        if (r) assert.equal(r.code, 0, `wsecho exit on SIGTERM: ${JSON.stringify(r)}; stderr:\n${echo.stderr}`);
    });

    test('--idle holds 50 connections and exits 0 on SIGTERM', { timeout: 30000 }, async () => {
        const p = startProc(WSBENCH_BIN, ['--url', `ws://127.0.0.1:${echo.port}/idle`, '--idle', '-c', '50', '--hold', '60', '--check', '--json', '-q']);
        try {
            const line = await p.waitLine(/"event":"ready"/, 10000, 'the ready line');
            assert.deepEqual(JSON.parse(line), { event: 'ready', connections: 50 });
            const r = await p.stop(10000);
            assert.equal(r.code, 0, `exit after SIGTERM: ${JSON.stringify(r)}; stderr:\n${p.stderr}`);
            const j = lastJson(p.stdout);
            assert.equal(j.mode, 'idle');
            assert.equal(j.connections, 50);
            assert.equal(j.messages, 50);
            assert.equal(j.errors, 0);
        } finally {
            if (p.proc.exitCode === null && p.proc.signalCode === null) {
                process.kill(p.pid, 'SIGKILL');
                await p.exited;
            }
        }
    });

    test('--rate open loop', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${echo.port}/`, '--rate', '5000', '-c', '16', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
        const j = assertCleanRun(r, 'open loop');
        assert.equal(j.mode, 'open');
        assert.equal(j.rate, 5000);
        // The schedule is fixed: at most rate x duration messages in the
        // window (a few less when the machine is busy and the last ones come
        // back after it closes).
        assert.ok(j.messages > 5000 && j.messages <= 10100, `messages: ${j.messages}`);
        assert.ok(j.latency_us.max > 0);
    });

    test('--churn', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${echo.port}/`, '--churn', '-c', '8', '-s', '100', '-d', '2', '-w', '0.5', '--check', '--json', '-q']);
        const j = assertCleanRun(r, 'churn');
        assert.equal(j.mode, 'churn');
        assert.ok(j.connects_per_s > 0, `connects_per_s: ${j.connects_per_s}`);
        assert.ok(j.messages > 0);
    });

    test('closed loop with --threads 2 and --sources', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${echo.port}/`, '-c', '16', '-k', '4', '-s', '1000', '--threads', '2', '--sources', '127.0.0.1-127.0.0.4', '-d', '1', '-w', '0.2', '--check', '--json', '-q']);
        const j = assertCleanRun(r, 'threads');
        assert.equal(j.threads, 2);
        assert.ok(j.messages > 0);
    });
});

/** tcpfwd (back end `io`) in front of a backend on `port`; resolves with the started process and its port. */
async function startTcpfwd(port, io) {
    const p = startProc(TCPFWD_BIN, ['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${port}`, '--io', io]);
    try {
        const line = await p.waitLine(/^listening /, 5000, 'the "listening" line');
        p.port = Number(/:(\d+)$/.exec(line)[1]);
        return p;
    } catch (e) {
        await p.stop().catch(() => {});
        throw e;
    }
}

/** Sockets tcpfwd holds (its descriptors that are sockets). */
function socketCount(pid) {
    return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
        try {
            return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
        } catch {
            return false;
        }
    }).length;
}

for (const io of ['epoll', 'uring']) describe(`tcpfwd --io ${io} (the bare relay bench-compare uses as a floor)`, () => {
    let echo;
    let fwd;
    before(async () => {
        echo = await startWsecho();
        fwd = await startTcpfwd(echo.port, io);
    });
    after(async () => {
        for (const p of [fwd, echo]) {
            const r = await p?.stop();
            if (r) assert.equal(r.code, 0, `exit on SIGTERM: ${JSON.stringify(r)}; stderr:\n${p.stderr}`);
        }
    });

    test('relays a WebSocket session byte for byte, then closes both sides', { timeout: 20000 }, async () => {
        const base = socketCount(fwd.pid); // the listening socket
        const c = await openClient(fwd.port, ['chat']);
        assert.equal(c.ws.protocol, 'chat');
        for (const size of [0, 125, 70000, 1024 * 1024]) {
            const data = crypto.randomBytes(size);
            c.ws.send(data);
            const m = await c.next();
            assert.equal(m.isBinary, true);
            assert.ok(m.data.equals(data), `${size}-byte echo differs`);
        }
        const closed = new Promise((resolve) => c.ws.once('close', (code) => resolve(code)));
        c.ws.close(1000);
        assert.equal(await withTimeout(closed, 5000, 'the close'), 1000);
        const end = Date.now() + 5000;
        while (socketCount(fwd.pid) !== base && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        assert.equal(socketCount(fwd.pid), base, 'the pair of sockets is closed');
    });

    test('passes a half-close on and keeps the other direction open', { timeout: 10000 }, async () => {
        // A raw TCP backend that answers the client's end of stream with "bye".
        const server = net.createServer((s) => {
            let got = '';
            s.on('data', (d) => (got += d));
            s.on('end', () => s.end(`${got}|bye`));
        });
        await new Promise((r) => server.listen(0, '127.0.0.1', r));
        const f = await startTcpfwd(server.address().port, io);
        try {
            const sock = net.connect(f.port, '127.0.0.1');
            let reply = '';
            sock.on('data', (d) => (reply += d));
            const ended = new Promise((r) => sock.on('end', r));
            sock.end('hello');
            await withTimeout(ended, 5000, 'the reply and end of stream');
            assert.equal(reply, 'hello|bye');
            sock.destroy();
        } finally {
            await f.stop();
            server.close();
        }
    });

    test('wsbench runs clean through it', { timeout: 30000 }, async () => {
        const r = await runWsbench(['--url', `ws://127.0.0.1:${fwd.port}/`, '-c', '8', '-k', '4', '-s', '1000', '-d', '1', '-w', '0.2', '--check', '--json', '-q']);
        const j = assertCleanRun(r, 'through tcpfwd');
        assert.ok(j.messages > 0);
    });

    test('closes the client when the backend refuses the connection', { timeout: 10000 }, async () => {
        // A port nothing listens on: bind one, note it, close it.
        const tmp = net.createServer();
        await new Promise((r) => tmp.listen(0, '127.0.0.1', r));
        const dead = tmp.address().port;
        await new Promise((r) => tmp.close(r));
        const f = await startTcpfwd(dead, io);
        try {
            const base = socketCount(f.pid);
            const sock = net.connect(f.port, '127.0.0.1');
            sock.on('error', () => {});
            const closed = new Promise((r) => sock.on('close', r));
            sock.write('hello');
            await withTimeout(closed, 5000, 'the client to be closed');
            const end = Date.now() + 5000;
            while (socketCount(f.pid) !== base && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
            assert.equal(socketCount(f.pid), base, 'no socket left behind');
        } finally {
            const r = await f.stop();
            assert.equal(r.code, 0, `exit on SIGTERM: ${JSON.stringify(r)}; stderr:\n${f.stderr}`);
        }
    });
});

describe('tcpfwd usage', () => {
    test('usage errors exit 2', { timeout: 10000 }, async () => {
        const cases = [
            [[], /usage/],
            [['--listen', '127.0.0.1:0'], /usage/],
            [['--listen', 'nowhere', '--backend', '127.0.0.1:1'], /--listen/],
            [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:1', '--io', 'poll'], /--io poll: want epoll or uring/],
        ];
        for (const [args, want] of cases) {
            const p = startProc(TCPFWD_BIN, args);
            const r = await withTimeout(p.exited, 5000, 'tcpfwd to exit');
            assert.equal(r.code, 2, `tcpfwd ${args.join(' ')}: ${JSON.stringify(r)} ${p.stderr}`);
            assert.match(p.stderr, want);
        }
    });
});
