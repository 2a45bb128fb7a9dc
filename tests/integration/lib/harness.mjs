// Shared helpers for wsgate's integration tests: start the real binary,
// real peers (Node's `ws` as client and backend), and raw TCP peers that
// speak HTTP/1.1 and WebSocket framing by hand so tests can send what no
// well-behaved library would.
//
// Every wait here has a timeout and fails with a message that says what was
// awaited; nothing sleeps a fixed time.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';

export { WebSocket, WebSocketServer };

export const LIB_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(LIB_DIR, '..', '..', '..');
export const WSGATE_BIN = process.env.WSGATE_BIN || '/work/main/build/wsgate';
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// ---------------------------------------------------------------------------
// Waiting

/** Resolve with `promise`, or reject after `ms` with "timed out after ms: what". */
export function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Pacing helper for tests whose subject is time passing (never used to
 * wait for an event to have happened). */
export function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `predicate` every `intervalMs` until it returns a truthy value,
 * which is returned. Fails after `timeoutMs` with `what` and, when given,
 * `detail()` in the message. */
export async function waitUntil(predicate, { timeoutMs = 5000, what = 'condition', intervalMs = 10, detail } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await predicate();
        if (v) return v;
        if (Date.now() >= deadline) {
            const extra = detail ? `; ${detail()}` : '';
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`);
        }
        await delay(intervalMs);
    }
}

/** FIFO whose consumers wait (with a timeout) for the next item. */
export class AsyncQueue {
    constructor(name = 'item') {
        this.name = name;
        this.items = [];
        this.waiters = [];
        this.total = 0;
    }
    push(item) {
        this.total++;
        const w = this.waiters.shift();
        if (w) w(item);
        else this.items.push(item);
    }
    next(timeoutMs = 5000, what = this.name) {
        if (this.items.length) return Promise.resolve(this.items.shift());
        let resolver;
        const p = new Promise((resolve) => {
            resolver = resolve;
            this.waiters.push(resolve);
        });
        return withTimeout(p, timeoutMs, what).catch((e) => {
            const i = this.waiters.indexOf(resolver);
            if (i >= 0) this.waiters.splice(i, 1);
            throw e;
        });
    }
}

// ---------------------------------------------------------------------------
// wsgate process

const live = new Set();
process.on('exit', () => {
    // Safety net only: every test stops what it started in after()/finally.
    for (const p of live) {
        try {
            process.kill(p.pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/** Render a flat config object (plus `routes`) as YAML. Strings that are
 * not plain-safe are written as JSON (= YAML double-quoted) strings. */
export function toYaml(cfg) {
    const scalar = (v) => {
        if (typeof v === 'number' || typeof v === 'boolean') return String(v);
        const s = String(v);
        return /^[A-Za-z0-9_./:\-*]+$/.test(s) ? s : JSON.stringify(s);
    };
    const out = [];
    for (const [k, v] of Object.entries(cfg)) {
        if (v === undefined) continue;
        if (Array.isArray(v)) {
            out.push(`${k}:`);
            for (const item of v) {
                const entries = Object.entries(item);
                entries.forEach(([ik, iv], i) => out.push(`${i === 0 ? '  - ' : '    '}${ik}: ${scalar(iv)}`));
            }
        } else {
            out.push(`${k}: ${scalar(v)}`);
        }
    }
    return out.join('\n') + '\n';
}

let tmpSeq = 0;
/** Write `text` to a new file in a fresh temporary directory; returns its path. */
export function writeTempFile(name, text) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wsgate-it-${process.pid}-${tmpSeq++}-`));
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
}

/** A config for one route "/" to `backendPort` on 127.0.0.1, merged with `extra`. */
export function gatewayConfig(backendPort, extra = {}) {
    return {
        listen: '127.0.0.1:0',
        workers: 1,
        log_level: 'info',
        ...extra,
        routes: extra.routes ?? [{ path: '/', backend: `ws://127.0.0.1:${backendPort}` }],
    };
}

function describeExit(proc) {
    return proc.exitCode !== null ? `exit code ${proc.exitCode}` : `signal ${proc.signalCode}`;
}

/**
 * Start wsgate and wait for its "listening" log line.
 *   config: object (rendered with toYaml) or YAML text, passed as -c FILE
 *   args:   extra command-line arguments (after -c FILE when both are given)
 * Returns { proc, pid, port, addr, listening, logs, stderrLines, waitForLog,
 *           accessLogs, exited, stop }.
 */
// prefix: a command that execs wsgate in place (e.g. ['prlimit', '--nofile=80:80', '--']),
// so the PID is still wsgate's.
export async function startWsgate({ args = [], config, env = {}, timeoutMs = 5000, prefix = [] } = {}) {
    const argv = [];
    let configFile;
    if (config !== undefined) {
        configFile = writeTempFile('wsgate.yaml', typeof config === 'string' ? config : toYaml(config));
        argv.push('-c', configFile);
    }
    argv.push(...args);
    const cmd = prefix.length ? prefix[0] : WSGATE_BIN;
    const cmdArgs = prefix.length ? [...prefix.slice(1), WSGATE_BIN, ...argv] : argv;
    const proc = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    live.add(proc);
    const gw = {
        proc,
        pid: proc.pid,
        argv,
        configFile,
        logs: [], // parsed JSON lines from stderr
        stderrLines: [], // every stderr line, parsed or not
        stdout: '',
        stopping: false,
        listeners: new Set(),
    };
    gw.exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            live.delete(proc);
            resolve({ code, signal });
            for (const l of gw.listeners) l();
        });
    });
    proc.on('error', (e) => {
        gw.spawnError = e;
        for (const l of gw.listeners) l();
    });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => (gw.stdout += d));
    let partial = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        partial += d;
        let nl;
        while ((nl = partial.indexOf('\n')) >= 0) {
            const line = partial.slice(0, nl);
            partial = partial.slice(nl + 1);
            if (!line.trim()) continue;
            gw.stderrLines.push(line);
            try {
                const obj = JSON.parse(line);
                if (obj && typeof obj === 'object') gw.logs.push(obj);
            } catch {
                /* non-JSON line: kept in stderrLines */
            }
            for (const l of gw.listeners) l();
        }
    });

    gw.tail = (n = 15) => gw.stderrLines.slice(-n).join('\n');
    gw.accessLogs = () => gw.logs.filter((l) => l.msg === 'access');

    /** Resolve with the first log line (already seen or future) matching `pred`. */
    gw.waitForLog = (pred, timeoutMs2 = 5000, what = 'a matching log line') => {
        const found = gw.logs.find(pred);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
            const check = () => {
                const f = gw.logs.find(pred);
                if (f) return done(null, f);
                if (proc.exitCode !== null || proc.signalCode !== null || gw.spawnError)
                    return done(new Error(`wsgate ended (${gw.spawnError ?? describeExit(proc)}) while waiting for ${what}; stderr:\n${gw.tail()}`));
            };
            const timer = setTimeout(
                () => done(new Error(`timed out after ${timeoutMs2} ms waiting for ${what}; last stderr lines:\n${gw.tail()}`)),
                timeoutMs2,
            );
            function done(err, v) {
                clearTimeout(timer);
                gw.listeners.delete(check);
                if (err) reject(err);
                else resolve(v);
            }
            gw.listeners.add(check);
        });
    };

    /** All log lines matching pred, once there are at least n of them. */
    gw.waitForLogs = async (pred, n, timeoutMs2 = 5000, what = `${n} matching log lines`) => {
        await gw.waitForLog(() => gw.logs.filter(pred).length >= n, timeoutMs2, what);
        return gw.logs.filter(pred);
    };

    /** Throw if wsgate is no longer running (it must survive any peer input). */
    gw.assertAlive = () => {
        if (proc.exitCode !== null || proc.signalCode !== null)
            throw new Error(`wsgate is not running any more (${describeExit(proc)}); stderr:\n${gw.tail()}`);
    };

    /** Send a signal as part of the test (e.g. graceful shutdown); stop()
     * will not count the exit that follows as a crash. */
    gw.signal = (signal) => {
        gw.stopping = true;
        proc.kill(signal);
    };

    /** SIGTERM (or `signal`), wait for exit, SIGKILL after timeoutMs. Throws
     * if wsgate had died on its own before stop() (a crash is a bug). */
    gw.stop = async ({ signal = 'SIGTERM', timeoutMs: t = 8000 } = {}) => {
        const diedEarly = !gw.stopping && (proc.exitCode !== null || proc.signalCode !== null);
        gw.stopping = true;
        if (proc.exitCode === null && proc.signalCode === null && !gw.spawnError) {
            proc.kill(signal);
            const r = await withTimeout(gw.exited, t, 'exit').catch(() => null);
            if (r === null) {
                proc.kill('SIGKILL');
                await gw.exited;
                if (configFile) fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
                throw new Error(`wsgate did not exit within ${t} ms of ${signal}; killed. stderr:\n${gw.tail()}`);
            }
        }
        if (configFile) fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
        const r = gw.spawnError ? { code: null, signal: null } : await gw.exited;
        if (diedEarly) throw new Error(`wsgate had exited before stop() (${describeExit(proc)}); stderr:\n${gw.tail()}`);
        return r;
    };

    try {
        const listening = await gw.waitForLog((l) => l.msg === 'listening', timeoutMs, 'the "listening" log line');
        gw.listening = listening;
        gw.addr = listening.addr;
        const m = /:(\d+)$/.exec(String(listening.addr));
        if (!m) throw new Error(`cannot parse addr from listening line: ${JSON.stringify(listening)}`);
        gw.port = Number(m[1]);
        gw.url = (p = '/') => `ws://127.0.0.1:${gw.port}${p}`;
    } catch (e) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await gw.exited.catch(() => {});
        if (configFile) fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
        if (gw.spawnError) throw new Error(`cannot start ${WSGATE_BIN}: ${gw.spawnError.message}`);
        throw e;
    }
    return gw;
}

/** Run wsgate to completion (CLI tests). Returns { code, signal, stdout, stderr }. */
export function runWsgate(args, { timeoutMs = 5000, env = {} } = {}) {
    return new Promise((resolve, reject) => {
        const proc = spawn(WSGATE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
        live.add(proc);
        let stdout = '';
        let stderr = '';
        proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
        proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`wsgate ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        proc.on('error', (e) => {
            clearTimeout(timer);
            reject(new Error(`cannot run ${WSGATE_BIN}: ${e.message}`));
        });
        proc.on('close', (code, signal) => {
            clearTimeout(timer);
            live.delete(proc);
            resolve({ code, signal, stdout, stderr });
        });
    });
}

/** Read wsgate's (or any process's) resident set size in bytes. */
export function vmRssBytes(pid) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
}

// ---------------------------------------------------------------------------
// Child processes (for SIGKILL tests)

/** Spawn `node script ...args`, wait for a stdout line matching `readyRe`;
 * returns { proc, pid, match, exited, kill() }. */
export async function spawnNode(script, args = [], { readyRe = /./, timeoutMs = 5000 } = {}) {
    const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const child = { proc, pid: proc.pid, out: '', err: '' };
    child.exited = new Promise((resolve) =>
        proc.on('exit', (code, signal) => {
            live.delete(proc);
            resolve({ code, signal });
        }),
    );
    proc.stderr.setEncoding('utf8').on('data', (d) => (child.err += d));
    const ready = new Promise((resolve, reject) => {
        proc.stdout.setEncoding('utf8').on('data', (d) => {
            child.out += d;
            const m = readyRe.exec(child.out);
            if (m) resolve(m);
        });
        proc.on('exit', (code, signal) =>
            reject(new Error(`${path.basename(script)} exited (${code ?? signal}) before ready; stderr: ${child.err}`)),
        );
    });
    try {
        child.match = await withTimeout(ready, timeoutMs, `${path.basename(script)} to print ${readyRe}`);
    } catch (e) {
        proc.kill('SIGKILL');
        throw e;
    }
    child.kill = async (signal = 'SIGKILL') => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        return child.exited;
    };
    return child;
}

// ---------------------------------------------------------------------------
// Ports

function listenOn(server, port = 0, backlog = 511) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port, backlog }, () => {
            server.off('error', reject);
            resolve(server.address().port);
        });
    });
}

function closeServer(server) {
    return new Promise((resolve) => server.close(() => resolve()));
}

/** A port on 127.0.0.1 that nothing listens on (bound then released). */
export async function closedPort() {
    const s = net.createServer();
    const port = await listenOn(s);
    await closeServer(s);
    return port;
}

/** Occupy a port with a plain TCP server; returns { port, close() }. */
export async function occupyPort() {
    const s = net.createServer((sock) => sock.destroy());
    const port = await listenOn(s);
    return { port, server: s, close: () => closeServer(s) };
}

// ---------------------------------------------------------------------------
// `ws` peers

/**
 * A WebSocket backend made with ws.WebSocketServer.
 *   echo:      echo data messages back (text as text, binary as binary); default true
 *   protocol:  (offered: string[], req) => chosen protocol or false
 *   perMessageDeflate: passed to WebSocketServer (default false)
 *   pauseOnConnect: pause the TCP socket as soon as the connection opens
 * Every connection is recorded as { ws, req, headers, url, messages, pings,
 * pongs, closed (promise of {code, reason}), closeInfo }.
 */
export async function startEchoBackend(opts = {}) {
    const { echo = true, protocol, perMessageDeflate = false, pauseOnConnect = false, maxPayload, backlog = 4096, port = 0 } = opts;
    const server = http.createServer((req, res) => {
        res.writeHead(426, { 'Content-Type': 'text/plain' });
        res.end('websocket only\n');
    });
    const sockets = new Set();
    const be = { server, connections: [], tcpConnections: 0, open: 0 };
    be.accepted = new AsyncQueue('a backend WebSocket connection');
    server.on('connection', (s) => {
        be.tcpConnections++;
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    const wssOpts = { server, perMessageDeflate, clientTracking: true };
    if (maxPayload) wssOpts.maxPayload = maxPayload;
    if (protocol) wssOpts.handleProtocols = (set, req) => protocol([...set], req);
    const wss = new WebSocketServer(wssOpts);
    be.wss = wss;
    wss.on('connection', (ws, req) => {
        if (pauseOnConnect) ws._socket.pause();
        const c = {
            ws,
            req,
            url: req.url,
            headers: req.headers,
            rawHeaders: req.rawHeaders,
            messages: new AsyncQueue('a message at the backend'),
            received: [],
            pings: [],
            pongs: [],
            closeInfo: null,
        };
        be.open++;
        c.closed = new Promise((resolve) => {
            ws.on('close', (code, reason) => {
                be.open--;
                c.closeInfo = { code, reason: reason.toString() };
                resolve(c.closeInfo);
            });
        });
        ws.on('error', (e) => (c.error = e));
        ws.on('message', (data, isBinary) => {
            const m = { data, isBinary };
            c.received.push(m);
            c.messages.push(m);
            if (echo) ws.send(data, { binary: isBinary });
        });
        ws.on('ping', (d) => c.pings.push(Buffer.from(d)));
        ws.on('pong', (d) => c.pongs.push(Buffer.from(d)));
        be.connections.push(c);
        be.accepted.push(c);
    });
    be.port = await listenOn(server, port, backlog);
    be.url = `ws://127.0.0.1:${be.port}`;
    be.nextConnection = (timeoutMs = 5000) => be.accepted.next(timeoutMs, 'wsgate to open a connection to the backend');
    be.close = async () => {
        for (const c of be.connections) c.ws.terminate();
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => wss.close(() => resolve()));
        await closeServer(server);
    };
    return be;
}

/**
 * A ws client with recorded events.
 * Returns { ws, opened, closed, messages (AsyncQueue), received, pings, pongs,
 *           nextMessage(timeout), close() }.
 * `opened` rejects on an error or a non-101 response (err.status is set).
 */
export function wsClient(url, { protocols, ...options } = {}) {
    const ws = protocols === undefined ? new WebSocket(url, options) : new WebSocket(url, protocols, options);
    const c = {
        ws,
        messages: new AsyncQueue('a message at the client'),
        received: [],
        pings: [],
        pongs: [],
        closeInfo: null,
        error: null,
    };
    c.opened = new Promise((resolve, reject) => {
        ws.once('open', () => resolve(c));
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => {
                const e = new Error(`unexpected HTTP response ${res.statusCode}`);
                e.status = res.statusCode;
                e.headers = res.headers;
                e.body = body;
                reject(e);
                req.destroy();
            });
            res.on('error', () => {});
        });
        ws.once('close', (code) => reject(new Error(`closed (${code}) before open`)));
        ws.on('error', (e) => {
            c.error = e;
            reject(e);
        });
    });
    c.opened.catch(() => {});
    c.closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
            c.closeInfo = { code, reason: reason.toString() };
            resolve(c.closeInfo);
        });
    });
    ws.on('message', (data, isBinary) => {
        const m = { data, isBinary };
        c.received.push(m);
        c.messages.push(m);
    });
    ws.on('ping', (d) => c.pings.push(Buffer.from(d)));
    ws.on('pong', (d) => c.pongs.push(Buffer.from(d)));
    c.nextMessage = (timeoutMs = 5000) => c.messages.next(timeoutMs, 'a message at the client');
    c.close = () => {
        if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    };
    return c;
}

/** Open a ws client and wait for the 101. */
export async function openClient(url, opts = {}, timeoutMs = 5000) {
    const c = wsClient(url, opts);
    try {
        await withTimeout(c.opened, timeoutMs, `WebSocket open of ${url}`);
    } catch (e) {
        c.close();
        throw e;
    }
    return c;
}

/** Wait for a close event {code, reason} on a wsClient or a backend connection. */
export function waitClosed(peer, timeoutMs = 3000, what = 'the WebSocket to close') {
    return withTimeout(peer.closed, timeoutMs, what);
}

/** Text whose UTF-8 encoding is exactly `nBytes` long and contains 2-, 3- and
 * 4-byte sequences (so that frame boundaries may split characters). */
export function utf8Text(nBytes, seed = 0) {
    const pieces = ['abc', 'é', 'xyz', '€', '0123', '𝄞', 'ñ', ' '];
    let s = '';
    let len = 0;
    let i = seed;
    while (true) {
        const p = pieces[i++ % pieces.length];
        const pl = Buffer.byteLength(p);
        if (len + pl > nBytes) break;
        s += p;
        len += pl;
    }
    s += 'a'.repeat(nBytes - len);
    if (Buffer.byteLength(s) !== nBytes) throw new Error('utf8Text length bug');
    return s;
}

export function sha256(buf) {
    return crypto.createHash('sha256').update(buf).digest('hex');
}

// ---------------------------------------------------------------------------
// Raw WebSocket framing

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

/**
 * Encode one frame.
 *   opcode, payload (Buffer|string), fin (true), rsv1/rsv2/rsv3 (false)
 *   mask: true (random key) | false | 4-byte Buffer
 *   lengthForm: 7 | 16 | 64 to force a length encoding
 *   rawLength: BigInt written as the 64-bit length instead of the real one
 *              (the payload is still appended as given)
 */
export function encodeFrame({ opcode, payload = Buffer.alloc(0), fin = true, rsv1 = false, rsv2 = false, rsv3 = false, mask = true, lengthForm, rawLength } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const len = data.length;
    let form = lengthForm ?? (len < 126 ? 7 : len < 65536 ? 16 : 64);
    if (rawLength !== undefined) form = 64;
    const hlen = 2 + (form === 16 ? 2 : form === 64 ? 8 : 0);
    const key = mask === true ? crypto.randomBytes(4) : mask ? mask : null;
    const head = Buffer.alloc(hlen + (key ? 4 : 0));
    head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f);
    const m = key ? 0x80 : 0;
    if (form === 7) head[1] = m | len;
    else if (form === 16) {
        head[1] = m | 126;
        head.writeUInt16BE(len, 2);
    } else {
        head[1] = m | 127;
        head.writeBigUInt64BE(rawLength ?? BigInt(len), 2);
    }
    let body = data;
    if (key) {
        key.copy(head, hlen);
        body = Buffer.alloc(len);
        for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
    }
    return Buffer.concat([head, body]);
}

/** Payload of a close frame. */
export function closePayload(code, reason = '') {
    const r = Buffer.from(reason);
    const b = Buffer.alloc(2 + r.length);
    b.writeUInt16BE(code, 0);
    r.copy(b, 2);
    return b;
}

/** Try to decode one frame at the start of buf: { frame, used } or null. */
export function decodeFrame(buf) {
    if (buf.length < 2) return null;
    const b0 = buf[0];
    const b1 = buf[1];
    let len = b1 & 0x7f;
    let off = 2;
    if (len === 126) {
        if (buf.length < 4) return null;
        len = buf.readUInt16BE(2);
        off = 4;
    } else if (len === 127) {
        if (buf.length < 10) return null;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`peer sent a frame with 64-bit length ${big}`);
        len = Number(big);
        off = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    let key = null;
    if (masked) {
        if (buf.length < off + 4) return null;
        key = buf.subarray(off, off + 4);
        off += 4;
    }
    if (buf.length < off + len) return null;
    let payload = Buffer.from(buf.subarray(off, off + len));
    if (key) for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    const frame = {
        fin: (b0 & 0x80) !== 0,
        rsv1: (b0 & 0x40) !== 0,
        rsv2: (b0 & 0x20) !== 0,
        rsv3: (b0 & 0x10) !== 0,
        opcode: b0 & 0x0f,
        masked,
        payload,
    };
    if (frame.opcode === OP.CLOSE) {
        frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        frame.reason = payload.length > 2 ? payload.subarray(2).toString() : '';
    }
    return { frame, used: off + len };
}

// ---------------------------------------------------------------------------
// Raw HTTP heads

/** Parse an HTTP head (without the final CRLFCRLF). */
export function parseHead(text) {
    const lines = text.split('\r\n');
    const startLine = lines.shift();
    const headers = {};
    const rawHeaders = [];
    for (const line of lines) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        rawHeaders.push([name, value]);
        const k = name.toLowerCase();
        headers[k] = k in headers ? `${headers[k]}, ${value}` : value;
    }
    const head = { startLine, headers, rawHeaders };
    let m;
    if ((m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(startLine))) {
        head.httpVersion = m[1];
        head.status = Number(m[2]);
        head.statusText = m[3] ?? '';
    } else if ((m = /^(\S+) (\S+) HTTP\/(\d\.\d)$/.exec(startLine))) {
        head.method = m[1];
        head.url = m[2];
        head.httpVersion = m[3];
    }
    return head;
}

/** A raw TCP peer with buffered reads: HTTP heads, bodies, frames. */
export class RawConn {
    constructor(socket, role = 'client') {
        this.socket = socket;
        this.role = role; // 'client' masks frames by default, 'server' does not
        this.buf = Buffer.alloc(0);
        this.chunks = [];
        this.bytesReceived = 0;
        this.ended = false;
        this.closed = false;
        this.error = null;
        this.frames = []; // every frame decoded so far
        this._wakers = [];
        socket.on('data', (d) => {
            this.chunks.push(d);
            this.bytesReceived += d.length;
            this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
            this._wake();
        });
        socket.on('end', () => {
            this.ended = true;
            this._wake();
        });
        socket.on('error', (e) => {
            this.error = e;
            this._wake();
        });
        socket.on('close', () => {
            this.closed = true;
            this.closedAt = Date.now();
            this._wake();
        });
        this.closedPromise = new Promise((resolve) => socket.once('close', resolve));
    }
    /** Every byte received so far. */
    get allReceived() {
        return Buffer.concat(this.chunks);
    }
    get gone() {
        return this.ended || this.closed;
    }
    _wake() {
        const w = this._wakers;
        this._wakers = [];
        for (const f of w) f();
    }
    _changed() {
        return new Promise((resolve) => this._wakers.push(resolve));
    }
    /** Run `parse` over the buffer until it returns a value; fail on timeout or EOF. */
    async _read(parse, timeoutMs, what) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const r = parse();
            if (r !== undefined) return r;
            if (this.gone) {
                const e = new Error(`connection ended (${this.error ? this.error.code : 'EOF'}) while waiting for ${what}; ${this.buf.length} unread bytes: ${JSON.stringify(this.buf.subarray(0, 200).toString('latin1'))}`);
                e.eof = true;
                throw e;
            }
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.buf.length} unread bytes`);
            let t;
            await Promise.race([this._changed(), new Promise((r2) => (t = setTimeout(r2, left)))]);
            clearTimeout(t);
        }
    }
    write(data) {
        return new Promise((resolve) => {
            if (this.socket.destroyed) return resolve(false);
            this.socket.write(data, (err) => resolve(!err));
        });
    }
    /** Read an HTTP head; returns parseHead() + { headText }. */
    readHead(timeoutMs = 5000) {
        return this._read(
            () => {
                const i = this.buf.indexOf('\r\n\r\n');
                if (i < 0) return undefined;
                const headText = this.buf.subarray(0, i).toString('latin1');
                this.buf = this.buf.subarray(i + 4);
                return { ...parseHead(headText), headText, headBytes: i + 4 };
            },
            timeoutMs,
            'an HTTP head',
        );
    }
    /** Read exactly n bytes. */
    readBytes(n, timeoutMs = 5000) {
        return this._read(
            () => {
                if (this.buf.length < n) return undefined;
                const out = Buffer.from(this.buf.subarray(0, n));
                this.buf = this.buf.subarray(n);
                return out;
            },
            timeoutMs,
            `${n} bytes`,
        );
    }
    /** Read the body of a response whose head was just read (Content-Length
     * or until EOF). */
    async readBody(head, timeoutMs = 5000) {
        const cl = head.headers['content-length'];
        if (cl !== undefined) return this.readBytes(Number(cl), timeoutMs);
        await this.waitGone(timeoutMs);
        const out = this.buf;
        this.buf = Buffer.alloc(0);
        return out;
    }
    /** Read one frame. */
    readFrame(timeoutMs = 5000) {
        return this._read(
            () => {
                const r = decodeFrame(this.buf);
                if (!r) return undefined;
                this.buf = this.buf.subarray(r.used);
                this.frames.push(r.frame);
                return r.frame;
            },
            timeoutMs,
            'a WebSocket frame',
        );
    }
    /** Read frames until a close frame; returns it with .before = the frames
     * that came first. */
    async readClose(timeoutMs = 5000) {
        const deadline = Date.now() + timeoutMs;
        const before = [];
        for (;;) {
            let f;
            try {
                f = await this.readFrame(Math.max(1, deadline - Date.now()));
            } catch (e) {
                e.message = `waiting for a close frame (frames before: ${before.map((x) => x.opcode).join(',') || 'none'}): ${e.message}`;
                throw e;
            }
            if (f.opcode === OP.CLOSE) {
                f.before = before;
                return f;
            }
            before.push(f);
        }
    }
    sendFrame(opts) {
        return this.write(encodeFrame({ mask: this.role === 'client', ...opts }));
    }
    sendText(text, opts = {}) {
        return this.sendFrame({ opcode: OP.TEXT, payload: Buffer.from(text), ...opts });
    }
    sendClose(code, reason = '', opts = {}) {
        return this.sendFrame({ opcode: OP.CLOSE, payload: code === undefined ? Buffer.alloc(0) : closePayload(code, reason), ...opts });
    }
    /** Wait until the peer has ended the connection (FIN, RST or close). */
    waitGone(timeoutMs = 5000, what = 'the peer to close the connection') {
        return this._read(() => (this.gone ? true : undefined), timeoutMs, what).catch((e) => {
            if (e.eof) return true;
            throw e;
        });
    }
    destroy() {
        this.socket.destroy();
    }
}

/** Open a TCP connection to 127.0.0.1:port. */
export function rawConnect(port, role = 'client', timeoutMs = 5000) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port });
            s.once('connect', () => {
                s.off('error', reject);
                s.setNoDelay(true);
                resolve(new RawConn(s, role));
            });
            s.once('error', reject);
        }),
        timeoutMs,
        `TCP connect to 127.0.0.1:${port}`,
    );
}

export function wsKey() {
    return crypto.randomBytes(16).toString('base64');
}

export function acceptFor(key) {
    return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}

/**
 * Build an upgrade request. Header order: Host, Upgrade, Connection,
 * Sec-WebSocket-Key, Sec-WebSocket-Version, then `headers` ([name, value]
 * pairs or an object). Set host/upgrade/connection/key/version to null to
 * leave that header out.
 */
export function upgradeRequest({ method = 'GET', path: p = '/', httpVersion = 'HTTP/1.1', host = '127.0.0.1', upgrade = 'websocket', connection = 'Upgrade', key = wsKey(), version = '13', protocols, headers = [], eol = '\r\n' } = {}) {
    const lines = [`${method} ${p} ${httpVersion}`];
    if (host !== null) lines.push(`Host: ${host}`);
    if (upgrade !== null) lines.push(`Upgrade: ${upgrade}`);
    if (connection !== null) lines.push(`Connection: ${connection}`);
    if (key !== null) lines.push(`Sec-WebSocket-Key: ${key}`);
    if (version !== null) lines.push(`Sec-WebSocket-Version: ${version}`);
    if (protocols) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(', ')}`);
    const extra = Array.isArray(headers) ? headers : Object.entries(headers);
    for (const [n, v] of extra) lines.push(`${n}: ${v}`);
    return lines.join(eol) + eol + eol;
}

/** Send `request` (string/Buffer) on a new connection and read the response
 * head. Returns { conn, res }. */
export async function rawRequest(port, request, timeoutMs = 5000) {
    const conn = await rawConnect(port);
    conn.write(request);
    try {
        const res = await conn.readHead(timeoutMs);
        return { conn, res };
    } catch (e) {
        conn.destroy();
        throw e;
    }
}

/** Complete a WebSocket handshake by hand with wsgate; checks 101 and the
 * accept key. Returns { conn, res, key }. */
export async function rawWsClient(port, { path: p = '/', headers = [], protocols, timeoutMs = 5000 } = {}) {
    const key = wsKey();
    const { conn, res } = await rawRequest(port, upgradeRequest({ path: p, host: `127.0.0.1:${port}`, key, headers, protocols }), timeoutMs);
    if (res.status !== 101) {
        conn.destroy();
        throw new Error(`expected 101 from wsgate, got: ${res.startLine}`);
    }
    if (res.headers['sec-websocket-accept'] !== acceptFor(key)) {
        conn.destroy();
        throw new Error(`wrong Sec-WebSocket-Accept: ${res.headers['sec-websocket-accept']}`);
    }
    return { conn, res, key };
}

/**
 * A raw TCP backend. `onConnection(conn)` runs for each accepted connection
 * (errors are kept in conn.handlerError). Every byte each connection
 * received is in conn.allReceived.
 */
export async function startRawBackend(onConnection = async () => {}) {
    const be = { conns: [], accepted: new AsyncQueue('a TCP connection at the raw backend') };
    be.server = net.createServer((s) => {
        s.setNoDelay(true);
        const c = new RawConn(s, 'server');
        be.conns.push(c);
        be.accepted.push(c);
        Promise.resolve()
            .then(() => onConnection(c))
            .catch((e) => (c.handlerError = e));
    });
    be.port = await listenOn(be.server);
    be.url = `ws://127.0.0.1:${be.port}`;
    be.nextConnection = (timeoutMs = 5000) => be.accepted.next(timeoutMs, 'wsgate to connect to the raw backend');
    be.close = async () => {
        for (const c of be.conns) c.destroy();
        await closeServer(be.server);
    };
    return be;
}

/** Server side of the opening handshake on a RawConn: read the request and
 * answer 101 with the correct accept key (or `accept` if given). Returns
 * the parsed request. */
export async function acceptUpgrade(conn, { protocol, accept, headers = [], timeoutMs = 5000 } = {}) {
    const req = await conn.readHead(timeoutMs);
    const key = req.headers['sec-websocket-key'];
    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept ?? acceptFor(key)}`];
    if (protocol) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    for (const [n, v] of headers) lines.push(`${n}: ${v}`);
    await conn.write(lines.join('\r\n') + '\r\n\r\n');
    conn.request = req;
    return req;
}
