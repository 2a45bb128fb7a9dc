// Command line: help, version, config check, bad flags, port in use, and
// flags overriding the config file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { occupyPort, openClient, runWsgate, startEchoBackend, startWsgate, writeTempFile } from './lib/harness.mjs';

const tmpFiles = [];
function tempConfig(text) {
    const f = writeTempFile('wsgate.yaml', text);
    tmpFiles.push(f);
    return f;
}
after(() => {
    for (const f of tmpFiles) fs.rmSync(path.dirname(f), { recursive: true, force: true });
});

const VALID = `# a valid config
listen: 127.0.0.1:0
workers: 1
handshake_timeout: 5s
ping_interval: off
max_message_size: 16MiB
validate_utf8: true
routes:
  - path: /
    backend: ws://127.0.0.1:9
`;

function lines(s) {
    return s.split('\n').filter((l) => l.trim() !== '');
}

describe('informational flags', () => {
    test('--help prints usage on stdout, exit 0', async () => {
        const r = await runWsgate(['--help']);
        assert.equal(r.code, 0, `exit ${r.code} ${r.signal ?? ''}; stderr: ${r.stderr}`);
        assert.match(r.stdout, /usage/i);
        assert.match(r.stdout, /--listen/);
        assert.match(r.stdout, /--backend/);
        assert.match(r.stdout, /check/);
    });

    test('--version prints "wsgate 0.1.0", exit 0', async () => {
        const r = await runWsgate(['--version']);
        assert.equal(r.code, 0);
        assert.equal(r.stdout.trim(), 'wsgate 0.1.0');
    });
});

describe('wsgate check -c FILE', () => {
    test('a valid file: "FILE: ok" on stdout, exit 0', async () => {
        const f = tempConfig(VALID);
        const r = await runWsgate(['check', '-c', f]);
        assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
        assert.equal(r.stdout.trim(), `${f}: ok`);
    });

    test('a bad file: every error as FILE:LINE:COL: message on stderr, exit 2', async () => {
        const f = tempConfig(`listen: 127.0.0.1:0
workers: lots
handshake_timeout: 5 parsecs
max_message_size: 12 bananas
colour: blue
routes:
  - path: /
    backend: ws://127.0.0.1:9
`);
        const r = await runWsgate(['check', '-c', f]);
        assert.equal(r.code, 2, `exit ${r.code} ${r.signal ?? ''}; stdout: ${r.stdout}`);
        const errs = lines(r.stderr);
        const re = new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+): \\S`);
        assert.ok(errs.length >= 4, `expected an error for each of 4 bad keys, got:\n${r.stderr}`);
        for (const l of errs) assert.match(l, re, 'each stderr line is FILE:LINE:COL: message');
        const at = errs.map((l) => Number(re.exec(l)[1]));
        for (const line of [2, 3, 4, 5]) assert.ok(at.includes(line), `no error reported on line ${line}; got:\n${r.stderr}`);
        assert.ok(
            errs.every((l) => Number(re.exec(l)[2]) >= 1),
            'columns are 1-based',
        );
        assert.ok(!r.stdout.includes(': ok'));
    });

    test('missing routes and listen are errors', async () => {
        const f = tempConfig('workers: 1\n');
        const r = await runWsgate(['check', '-c', f]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /listen/);
        assert.match(r.stderr, /route/);
    });

    test('YAML syntax error names the position', async () => {
        const f = tempConfig('listen: 127.0.0.1:0\nroutes: [\n  {path: /, backend: ws://127.0.0.1:9\n');
        const r = await runWsgate(['check', '-c', f]);
        assert.equal(r.code, 2);
        assert.match(lines(r.stderr)[0] ?? '', new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
    });

    test('a file that does not exist: exit 2', async () => {
        const r = await runWsgate(['check', '-c', '/nonexistent/wsgate.yaml']);
        assert.equal(r.code, 2);
        assert.ok(r.stderr.trim().length > 0);
    });
});

describe('errors at startup', () => {
    test('unknown flag: one-line error, exit 2', async () => {
        const r = await runWsgate(['--listen', '127.0.0.1:0', '--backend', 'ws://127.0.0.1:9', '--bogus-flag']);
        assert.equal(r.code, 2, `exit ${r.code} ${r.signal ?? ''}`);
        assert.equal(lines(r.stderr).length, 1, `stderr: ${r.stderr}`);
        assert.match(r.stderr, /bogus-flag/);
    });

    test('bad flag value: exit 2', async () => {
        const r = await runWsgate(['--listen', 'not-an-address', '--backend', 'ws://127.0.0.1:9']);
        assert.equal(r.code, 2, `exit ${r.code} ${r.signal ?? ''}`);
        assert.equal(lines(r.stderr).length, 1, `stderr: ${r.stderr}`);
    });

    test('-c with a bad file: exit 2', async () => {
        const f = tempConfig('listen: 127.0.0.1:0\nworkers: lots\nroutes:\n  - path: /\n    backend: ws://127.0.0.1:9\n');
        const r = await runWsgate(['-c', f]);
        assert.equal(r.code, 2, `exit ${r.code} ${r.signal ?? ''}`);
        assert.match(r.stderr, /:2:\d+: /);
    });

    test('listen port in use: one-line error, exit 2, not a crash', async () => {
        const busy = await occupyPort();
        try {
            const r = await runWsgate(['--listen', `127.0.0.1:${busy.port}`, '--backend', 'ws://127.0.0.1:9', '--workers', '2']);
            assert.equal(r.signal, null, `wsgate died by ${r.signal}`);
            assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
            assert.equal(lines(r.stderr).length, 1, `expected one line, got:\n${r.stderr}`);
            assert.match(r.stderr, new RegExp(`${busy.port}|in use`, 'i'));
        } finally {
            await busy.close();
        }
    });
});

describe('running', () => {
    test('flags override file values', async () => {
        const be = await startEchoBackend();
        const busy = await occupyPort();
        // The file's listen address is taken: only the flag makes this start.
        const f = tempConfig(`listen: 127.0.0.1:${busy.port}\nworkers: 1\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
        let gw;
        try {
            gw = await startWsgate({ args: ['-c', f, '--workers', '3', '--listen', '127.0.0.1:0'] });
            assert.equal(gw.listening.workers, 3, `listening line: ${JSON.stringify(gw.listening)}`);
            assert.match(gw.listening.addr, /^127\.0\.0\.1:\d+$/);
            assert.notEqual(gw.port, busy.port);
            const c = await openClient(gw.url('/'));
            try {
                await be.nextConnection();
                c.ws.send('override');
                assert.equal((await c.nextMessage()).data.toString(), 'override');
            } finally {
                c.close();
            }
        } finally {
            await gw?.stop();
            await busy.close();
            await be.close();
        }
    });

    test('workers: auto starts one worker per core', async () => {
        const f = tempConfig('listen: 127.0.0.1:0\nworkers: auto\nroutes:\n  - path: /\n    backend: ws://127.0.0.1:9\n');
        const gw = await startWsgate({ config: undefined, args: ['-c', f] });
        try {
            assert.equal(gw.listening.workers, os.availableParallelism());
        } finally {
            await gw.stop();
        }
    });

    test('log lines are JSON with time, level and msg', async () => {
        const be = await startEchoBackend();
        const gw = await startWsgate({ args: ['--listen', '127.0.0.1:0', '--backend', be.url, '--log-level', 'info'] });
        try {
            const l = gw.listening;
            assert.equal(l.level, 'info');
            assert.equal(typeof l.time, 'string');
            assert.ok(!Number.isNaN(Date.parse(l.time)), `time ${l.time} is not a date`);
            assert.equal(gw.stderrLines.length, gw.logs.length, `non-JSON stderr lines:\n${gw.stderrLines.join('\n')}`);
        } finally {
            await gw.stop();
            await be.close();
        }
    });
});
