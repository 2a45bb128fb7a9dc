/* The `tls:` section of a listener (see tls_conf.h). */
#include "tls/tls_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tls/tls_internal.h"

#define MAX_CERTS 64

static const char *const min_names[] = {"1.2", "1.3", NULL};
static const char *const verify_names[] = {"none", "optional", "required", NULL};

static const struct conf_key cert_keys[] = {
    {.name = "cert",
     .kind = CK_STRING,
     CONF_FIELD(struct tls_cert_conf, cert, CF_STRING),
     .required = true},
    {.name = "key",
     .kind = CK_STRING,
     CONF_FIELD(struct tls_cert_conf, key, CF_STRING),
     .required = true},
};

#define NCERT_KEYS (sizeof(cert_keys) / sizeof(cert_keys[0]))

static bool parse_certs(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                        void *base)
{
    struct tls_conf *c = base;
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0) {
        conf_bad_value(d, k->name, v, "a non-empty sequence of {cert: FILE, key: FILE}");
        return false;
    }
    if (v->nkids > MAX_CERTS) {
        conf_report(d, v, "certificates: at most %d, got %zu", MAX_CERTS, v->nkids);
        return false;
    }
    c->certs = calloc(v->nkids, sizeof(*c->certs));
    if (!c->certs) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        struct tls_cert_conf cc = {0};
        if (e->bad) {
            ok = false;
            continue;
        }
        if (e->type != Y_MAP) {
            conf_bad_value(d, "certificates", e, "a mapping {cert: FILE, key: FILE}");
            ok = false;
            continue;
        }
        if (!conf_apply_map(d, cert_keys, NCERT_KEYS, e, &cc, "in a certificate", NULL) ||
            !conf_file_path(d, &cc.cert) || !conf_file_path(d, &cc.key)) {
            free(cc.cert);
            free(cc.key);
            ok = false;
            continue;
        }
        c->certs[c->ncerts++] = cc;
    }
    return ok;
}

static const struct conf_key tls_keys[] = {
    {.name = "certificates",
     .kind = CK_CUSTOM,
     .parse = parse_certs,
     .required = true,
     .expected = "a sequence of {cert: FILE, key: FILE}"},
    {.name = "min_version",
     .kind = CK_ENUM,
     CONF_FIELD(struct tls_conf, min_version, CF_INT),
     .names = min_names},
    {.name = "client_ca", .kind = CK_STRING, CONF_FIELD(struct tls_conf, client_ca, CF_STRING)},
    {.name = "verify_client",
     .kind = CK_ENUM,
     CONF_FIELD(struct tls_conf, verify_client, CF_INT),
     .names = verify_names},
    {.name = "ticket_key_rotation",
     .kind = CK_DURATION,
     CONF_FIELD(struct tls_conf, ticket_rotation_ms, CF_U64),
     .min = 1000,
     .max = 7 * 24 * 3600 * 1000ull},
};

#define NTLS_KEYS (sizeof(tls_keys) / sizeof(tls_keys[0]))

/* A file the configuration names must be readable: say so plainly rather
 * than with OpenSSL's wording. */
static bool readable(struct conf_diag *d, const struct ynode *at, const char *key, const char *path)
{
    FILE *f = fopen(path, "re");
    char q[CONF_QUOTE_BUF];

    if (f) {
        fclose(f);
        return true;
    }
    conf_report(d, at, "%s: cannot open %s: %s", key, conf_quote(path, strlen(path), q),
                strerror(errno));
    return false;
}

/* The node holding key `key` in mapping m, or m itself. */
static const struct ynode *value_of(const struct ynode *m, const char *key)
{
    for (size_t i = 0; m && m->type == Y_MAP && i + 1 < m->nkids; i += 2) {
        const char *k = conf_scalar(m->kids[i]);
        if (k && strcmp(k, key) == 0)
            return m->kids[i + 1];
    }
    return m;
}

bool tls_conf_parse(struct conf_diag *d, const struct ynode *v, struct tls_conf *c)
{
    const struct ynode *seen[NTLS_KEYS];
    const struct ynode *certs;
    struct tls_build_err err = {0};
    bool ok = true;

    c->ticket_rotation_ms = 3600 * 1000;
    if (v->type != Y_MAP) {
        conf_bad_value(d, "tls", v, "a mapping with certificates");
        return false;
    }
    if (!conf_apply_map(d, tls_keys, NTLS_KEYS, v, c, "in tls", seen) ||
        !conf_file_path(d, &c->client_ca))
        return false;
    certs = seen[0];
    if (c->verify_client != TLS_VERIFY_NONE && !c->client_ca) {
        conf_report(d, seen[3],
                    "verify_client: %s needs client_ca (the CAs that sign client "
                    "certificates)",
                    verify_names[c->verify_client]);
        ok = false;
    }
    if (c->client_ca && c->verify_client == TLS_VERIFY_NONE) {
        conf_report(d, seen[2],
                    "client_ca: set verify_client to optional or required, or remove client_ca "
                    "(client certificates are not asked for)");
        ok = false;
    }
    for (size_t i = 0; i < c->ncerts; i++) {
        const struct ynode *e = certs->kids[i];
        ok &= readable(d, value_of(e, "cert"), "cert", c->certs[i].cert);
        ok &= readable(d, value_of(e, "key"), "key", c->certs[i].key);
    }
    if (c->client_ca && c->verify_client != TLS_VERIFY_NONE)
        ok &= readable(d, seen[2], "client_ca", c->client_ca);
    if (!ok)
        return false;
    c->srv = tls_server_new(c, &err);
    if (!c->srv) {
        const struct ynode *e = err.cert < c->ncerts ? certs->kids[err.cert] : certs;
        const struct ynode *at = err.what == TLS_BUILD_CERT  ? value_of(e, "cert")
                                 : err.what == TLS_BUILD_KEY ? value_of(e, "key")
                                                             : seen[2];
        const char *file = err.what == TLS_BUILD_CERT  ? c->certs[err.cert].cert
                           : err.what == TLS_BUILD_KEY ? c->certs[err.cert].key
                                                       : c->client_ca;
        char q[CONF_QUOTE_BUF];
        conf_report(d, at, "%s: %s", conf_quote(file, strlen(file), q), err.why);
        return false;
    }
    return true;
}

void tls_conf_free(struct tls_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncerts; i++) {
        free(c->certs[i].cert);
        free(c->certs[i].key);
    }
    free(c->certs);
    free(c->client_ca);
    tls_server_free(c->srv);
    memset(c, 0, sizeof(*c));
}

void tls_conf_names(const struct tls_conf *c, char *out, size_t cap)
{
    size_t len = 0;
    const char *n;

    out[0] = '\0';
    for (size_t i = 0; c->srv && (n = tls_server_name(c->srv, i)) && len + 1 < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? "," : "", n);
        if (w < 0 || (size_t)w >= cap - len) {
            out[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
}

/* ------------------------------------------------------ upstream side */

static const struct conf_key client_keys[] = {
    {.name = "ca", .kind = CK_STRING, CONF_FIELD(struct tls_client_conf, ca, CF_STRING)},
    {.name = "cert", .kind = CK_STRING, CONF_FIELD(struct tls_client_conf, cert, CF_STRING)},
    {.name = "key", .kind = CK_STRING, CONF_FIELD(struct tls_client_conf, key, CF_STRING)},
    {.name = "insecure_skip_verify",
     .kind = CK_BOOL,
     CONF_FIELD(struct tls_client_conf, insecure_skip_verify, CF_BOOL)},
};

#define NCLIENT_KEYS (sizeof(client_keys) / sizeof(client_keys[0]))

bool tls_client_conf_parse(struct conf_diag *d, const struct ynode *v, struct tls_client_conf *c)
{
    const struct ynode *seen[NCLIENT_KEYS];
    struct tls_build_err err = {0};
    bool ok = true;

    if (v->type != Y_MAP) {
        conf_bad_value(d, "tls", v, "a mapping (ca, cert, key, insecure_skip_verify)");
        return false;
    }
    if (!conf_apply_map(d, client_keys, NCLIENT_KEYS, v, c, "in an upstream's tls", seen) ||
        !conf_file_path(d, &c->ca) || !conf_file_path(d, &c->cert) || !conf_file_path(d, &c->key))
        return false;
    if (!c->cert != !c->key) {
        conf_report(d, seen[c->cert ? 1 : 2], "%s: a client certificate needs both cert and key",
                    c->cert ? "cert" : "key");
        return false;
    }
    if (c->ca && c->insecure_skip_verify) {
        conf_report(d, seen[0], "ca: has no use with insecure_skip_verify: true");
        return false;
    }
    if (c->ca)
        ok &= readable(d, seen[0], "ca", c->ca);
    if (c->cert) {
        ok &= readable(d, seen[1], "cert", c->cert);
        ok &= readable(d, seen[2], "key", c->key);
    }
    if (!ok)
        return false;
    c->cl = tls_client_new(c, &err);
    if (!c->cl) {
        const struct ynode *at = err.what == TLS_BUILD_CERT  ? seen[1]
                                 : err.what == TLS_BUILD_KEY ? seen[2]
                                 : seen[0]                   ? seen[0]
                                                             : v;
        conf_report(d, at, "tls: %s", err.why);
        return false;
    }
    return true;
}

int tls_client_conf_build(struct tls_client_conf *c, char *why, size_t cap)
{
    struct tls_build_err err = {0};

    if (c->cl)
        return 0;
    c->cl = tls_client_new(c, &err);
    if (!c->cl) {
        snprintf(why, cap, "%s", err.why);
        return ERR_CONFIG;
    }
    return 0;
}

void tls_client_conf_free(struct tls_client_conf *c)
{
    if (!c)
        return;
    free(c->ca);
    free(c->cert);
    free(c->key);
    tls_client_free(c->cl);
    memset(c, 0, sizeof(*c));
}
