// Every example configuration in examples/ is accepted by `wsgate check`
// (the TLS ones after examples/make-certs.sh, as their comments say).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { REPO_ROOT, runWsgate } from './lib/harness.mjs';

const dir = path.join(REPO_ROOT, 'examples');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));

before(() => {
    execFileSync(path.join(dir, 'make-certs.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
});

test('there are examples to check', () => {
    assert.ok(files.length >= 6, `only ${files.length} examples`);
});

for (const f of files) {
    test(`wsgate check accepts examples/${f}`, async () => {
        const r = await runWsgate(['check', '-c', path.join(dir, f)]);
        assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
        assert.match(r.stdout, /: ok\n$/);
    });
}
