// Certificates for the TLS tests, made by the `openssl` command line on the
// spot: a CA, server certificates signed by it (with subjectAltNames), and
// client certificates. Nothing is checked in; each test run has its own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A directory with a CA; returns { dir, ca (PEM path), caPem, issue(name, opts) }. */
export function makeCA(name = 'wsgate test CA') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wsgate-certs-${process.pid}-`));
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`], dir);
    let serial = 1;
    const ca = {
        dir,
        ca: path.join(dir, 'ca.crt'),
        caPem: fs.readFileSync(path.join(dir, 'ca.crt')),
        /**
         * Issue a certificate. opts: { dns: [names] (subjectAltName DNS entries),
         * ip: [addresses], client: true (clientAuth usage), subject: '/CN=..',
         * days, rsa: true (RSA 2048 key instead of P-256) }.
         * Returns { cert, key (paths), certPem, keyPem }.
         */
        issue(base, opts = {}) {
            const key = path.join(dir, `${base}.key`);
            const csr = path.join(dir, `${base}.csr`);
            const cert = path.join(dir, `${base}.crt`);
            const ext = path.join(dir, `${base}.ext`);
            const keyArgs = opts.rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
            openssl(['req', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', opts.subject ?? `/CN=${opts.dns?.[0] ?? base}`], dir);
            const alt = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ip ?? []).map((i) => `IP:${i}`)];
            const lines = [
                'basicConstraints=CA:FALSE',
                `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
            ];
            if (alt.length) lines.push(`subjectAltName=${alt.join(',')}`);
            fs.writeFileSync(ext, lines.join('\n') + '\n');
            openssl(['x509', '-req', '-in', csr, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-days', String(opts.days ?? 2), '-extfile', ext, '-out', cert], dir);
            return { cert, key, certPem: fs.readFileSync(cert), keyPem: fs.readFileSync(key) };
        },
        remove() {
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    return ca;
}
