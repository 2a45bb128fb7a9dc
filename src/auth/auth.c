/* Authentication at the handshake: configuration and the admission step
 * (see auth.h). */
#include "auth/auth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/err.h"

#define MAX_ITEMS     64
#define MAX_API_KEYS  100000
#define BEARER_PROTO  "bearer."
#define K8S_PROTO     "base64url.bearer.authorization.k8s.io."
#define CHALLENGE_JWT "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
#define CHALLENGE_KEY "WWW-Authenticate: ApiKey\r\n"

enum src_kind { SRC_HEADER, SRC_QUERY, SRC_COOKIE, SRC_SUBPROTOCOL };

struct token_src {
    enum src_kind kind;
    char *name; /* query parameter or cookie name */
};

struct claim_rule {
    char *claim, *value;
    bool contains;
};

struct claim_fwd {
    char *claim, *header;
};

struct jwt_conf {
    struct jwt_keyset keys;
    struct jwt_rules rules;
    char *issuer, *audience;
    char *secret_file, *public_key_file, *jwks_file;
    struct token_src *from;
    size_t nfrom;
    struct claim_rule *require;
    size_t nrequire;
    struct claim_fwd *fwd;
    size_t nfwd;
    const char **strip; /* the forwarded headers' names: removed from the client's */
    bool close_on_expiry;
};

struct api_key {
    unsigned char hash[32];
    char *name;
};

struct apikey_conf {
    char *header, *query, *keys_file;
    struct api_key *keys;
    size_t n;
    const char *strip[2]; /* the key's header and X-Api-Key-Name: never forwarded as sent */
};

struct auth_conf {
    struct jwt_conf *jwt;
    struct apikey_conf *key;
};

/* ================================================================ config */

static const char *alg_list(void)
{
    return "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
}

static bool parse_algs(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base)
{
    struct jwt_conf *j = base;
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0) {
        conf_bad_value(d, k->name, v, "a non-empty sequence of algorithms such as [RS256]");
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const char *s = conf_scalar(v->kids[i]);
        int a = s ? jwt_alg_from_name(s, strlen(s)) : -1;
        if (a < 0) {
            conf_report(d, v->kids[i], "algorithms: expected one of %s (never \"none\"), got %s",
                        alg_list(), conf_describe(v->kids[i], q));
            ok = false;
            continue;
        }
        j->rules.algs |= 1u << a;
    }
    return ok;
}

static bool parse_token_from(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                             void *base)
{
    struct jwt_conf *j = base;
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0 || v->nkids > MAX_ITEMS) {
        conf_bad_value(d, k->name, v,
                       "a sequence of header, query:NAME, cookie:NAME and subprotocol");
        return false;
    }
    j->from = calloc(v->nkids, sizeof(*j->from));
    if (!j->from) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const char *s = conf_scalar(v->kids[i]);
        struct token_src t = {0};
        if (s && strcmp(s, "header") == 0) {
            t.kind = SRC_HEADER;
        } else if (s && strcmp(s, "subprotocol") == 0) {
            t.kind = SRC_SUBPROTOCOL;
        } else if (s && (strncmp(s, "query:", 6) == 0 || strncmp(s, "cookie:", 7) == 0) &&
                   s[s[0] == 'q' ? 6 : 7] != '\0') {
            t.kind = s[0] == 'q' ? SRC_QUERY : SRC_COOKIE;
            t.name = strdup(s + (t.kind == SRC_QUERY ? 6 : 7));
            if (!t.name) {
                d->oom = true;
                return false;
            }
        } else {
            conf_report(
                d, v->kids[i],
                "token_from: expected header, query:NAME, cookie:NAME or subprotocol, got %s",
                conf_describe(v->kids[i], q));
            ok = false;
            continue;
        }
        j->from[j->nfrom++] = t;
    }
    return ok;
}

static bool parse_require(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct jwt_conf *j = base;
    bool ok = true;

    if (v->type != Y_MAP || v->nkids == 0 || v->nkids / 2 > MAX_ITEMS) {
        conf_bad_value(
            d, k->name, v,
            "a mapping of claims to a value or {contains: VALUE}, such as {role: admin}");
        return false;
    }
    j->require = calloc(v->nkids / 2, sizeof(*j->require));
    if (!j->require) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i + 1 < v->nkids; i += 2) {
        const char *name = conf_scalar(v->kids[i]);
        const struct ynode *val = v->kids[i + 1];
        struct claim_rule r = {0};
        const char *s = conf_scalar(val);
        if (!name || conf_dup_key(v, i))
            continue;
        if (!s && val->type == Y_MAP && val->nkids == 2 && conf_scalar(val->kids[0]) &&
            strcmp(conf_scalar(val->kids[0]), "contains") == 0 && conf_scalar(val->kids[1])) {
            s = conf_scalar(val->kids[1]);
            r.contains = true;
        }
        if (!s) {
            conf_bad_value(d, name, val, "a value, or {contains: VALUE}");
            ok = false;
            continue;
        }
        r.claim = strdup(name);
        r.value = strdup(s);
        if (!r.claim || !r.value) {
            free(r.claim);
            free(r.value);
            d->oom = true;
            return false;
        }
        j->require[j->nrequire++] = r;
    }
    return ok;
}

/* A header name wsgate may set: a token, and not one it owns. */
static bool header_name_ok(const char *s)
{
    static const char *const owned[] = {"host",           "connection",        "upgrade",
                                        "content-length", "transfer-encoding", "x-forwarded-for",
                                        "x-request-id",   "x-forwarded-proto", "x-forwarded-host"};
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(s, owned[i]) == 0 || strncasecmp(s, "sec-websocket-", 14) == 0)
            return false;
    return true;
}

static bool parse_forward(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct jwt_conf *j = base;
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_MAP || v->nkids == 0 || v->nkids / 2 > MAX_ITEMS) {
        conf_bad_value(d, k->name, v,
                       "a mapping of claims to header names, such as {sub: X-User-Id}");
        return false;
    }
    j->fwd = calloc(v->nkids / 2, sizeof(*j->fwd));
    j->strip = calloc(v->nkids / 2, sizeof(*j->strip));
    if (!j->fwd || !j->strip) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i + 1 < v->nkids; i += 2) {
        const char *claim = conf_scalar(v->kids[i]);
        const char *hdr = conf_scalar(v->kids[i + 1]);
        if (!claim || conf_dup_key(v, i))
            continue;
        if (!hdr || !header_name_ok(hdr)) {
            conf_report(d, v->kids[i + 1],
                        "forward_claims: %s: expected a header name (letters, digits, '-', not one "
                        "wsgate sets itself), got %s",
                        claim, conf_describe(v->kids[i + 1], q));
            ok = false;
            continue;
        }
        j->fwd[j->nfwd].claim = strdup(claim);
        j->fwd[j->nfwd].header = strdup(hdr);
        if (!j->fwd[j->nfwd].claim || !j->fwd[j->nfwd].header) {
            d->oom = true;
            return false;
        }
        j->strip[j->nfwd] = j->fwd[j->nfwd].header;
        j->nfwd++;
    }
    return ok;
}

static const struct conf_key jwt_keys[] = {
    {.name = "algorithms",
     .kind = CK_CUSTOM,
     .parse = parse_algs,
     .required = true,
     .expected = "a sequence of algorithms"},
    {.name = "secret_file", .kind = CK_STRING, CONF_FIELD(struct jwt_conf, secret_file, CF_STRING)},
    {.name = "public_key_file",
     .kind = CK_STRING,
     CONF_FIELD(struct jwt_conf, public_key_file, CF_STRING)},
    {.name = "jwks_file", .kind = CK_STRING, CONF_FIELD(struct jwt_conf, jwks_file, CF_STRING)},
    {.name = "issuer", .kind = CK_STRING, CONF_FIELD(struct jwt_conf, issuer, CF_STRING)},
    {.name = "audience", .kind = CK_STRING, CONF_FIELD(struct jwt_conf, audience, CF_STRING)},
    {.name = "leeway",
     .kind = CK_DURATION,
     CONF_FIELD(struct jwt_conf, rules.leeway_s, CF_U64),
     .min = 0,
     .max = 24 * 3600 * 1000ull},
    {.name = "require_exp",
     .kind = CK_BOOL,
     CONF_FIELD(struct jwt_conf, rules.require_exp, CF_BOOL)},
    {.name = "token_from",
     .kind = CK_CUSTOM,
     .parse = parse_token_from,
     .expected = "a sequence of token sources"},
    {.name = "require",
     .kind = CK_CUSTOM,
     .parse = parse_require,
     .expected = "a mapping of claims"},
    {.name = "forward_claims",
     .kind = CK_CUSTOM,
     .parse = parse_forward,
     .expected = "a mapping of claims to header names"},
    {.name = "close_on_expiry",
     .kind = CK_BOOL,
     CONF_FIELD(struct jwt_conf, close_on_expiry, CF_BOOL)},
};
#define NJWT_KEYS (sizeof(jwt_keys) / sizeof(jwt_keys[0]))

static void jwt_conf_free(struct jwt_conf *j)
{
    if (!j)
        return;
    jwt_keys_free(&j->keys);
    free(j->issuer);
    free(j->audience);
    free(j->secret_file);
    free(j->public_key_file);
    free(j->jwks_file);
    for (size_t i = 0; i < j->nfrom; i++)
        free(j->from[i].name);
    free(j->from);
    for (size_t i = 0; i < j->nrequire; i++) {
        free(j->require[i].claim);
        free(j->require[i].value);
    }
    free(j->require);
    for (size_t i = 0; i < j->nfwd; i++) {
        free(j->fwd[i].claim);
        free(j->fwd[i].header);
    }
    free(j->fwd);
    free(j->strip);
    free(j);
}

static bool parse_jwt(struct conf_diag *d, const struct ynode *v, struct auth_conf *a)
{
    const struct ynode *seen[NJWT_KEYS];
    struct jwt_conf *j = calloc(1, sizeof(*j));
    char why[300];
    int nsrc;

    if (!j) {
        d->oom = true;
        return false;
    }
    a->jwt = j;
    j->rules.leeway_s = 30000; /* ms until converted below */
    j->rules.require_exp = true;
    if (v->type != Y_MAP) {
        conf_bad_value(d, "jwt", v, "a mapping with algorithms and a key source");
        return false;
    }
    if (!conf_apply_map(d, jwt_keys, NJWT_KEYS, v, j, "in jwt", seen))
        return false;
    j->rules.leeway_s /= 1000;
    j->rules.issuer = j->issuer;
    j->rules.audience = j->audience;
    nsrc = !!j->secret_file + !!j->public_key_file + !!j->jwks_file;
    if (nsrc != 1) {
        conf_report(d, v, "jwt: exactly one of secret_file, public_key_file or jwks_file, got %d",
                    nsrc);
        return false;
    }
    if (!conf_file_path(d, &j->secret_file) || !conf_file_path(d, &j->public_key_file) ||
        !conf_file_path(d, &j->jwks_file))
        return false;
    if ((j->secret_file       ? jwt_keys_secret_file(&j->keys, j->secret_file, why, sizeof(why))
         : j->public_key_file ? jwt_keys_pem_file(&j->keys, j->public_key_file, why, sizeof(why))
                              : jwt_keys_jwks_file(&j->keys, j->jwks_file, why, sizeof(why))) < 0) {
        conf_report(d, seen[j->secret_file ? 1 : j->public_key_file ? 2 : 3], "%s", why);
        return false;
    }
    /* Every listed algorithm needs a key that can verify it, and no key
     * can be used with an algorithm of another family (HS/RS confusion). */
    for (int alg = 0; alg < JWT_NALGS; alg++) {
        bool fits = false;
        if (!(j->rules.algs & (1u << alg)))
            continue;
        for (size_t i = 0; i < j->keys.n && !fits; i++) {
            const struct jwt_key *k = &j->keys.v[i];
            fits = alg <= JWT_HS512   ? k->kty == JWT_KTY_OCT
                   : alg <= JWT_PS512 ? k->kty == JWT_KTY_RSA
                   : alg == JWT_ES256 ? k->kty == JWT_KTY_EC && k->ec_bits == 256
                   : alg == JWT_ES384 ? k->kty == JWT_KTY_EC && k->ec_bits == 384
                                      : k->kty == JWT_KTY_OKP;
        }
        if (!fits) {
            conf_report(d, seen[0], "algorithms: %s has no key of its type in the key source",
                        jwt_alg_name((enum jwt_alg)alg));
            return false;
        }
    }
    if (!j->from) {
        j->from = calloc(1, sizeof(*j->from));
        if (!j->from) {
            d->oom = true;
            return false;
        }
        j->from[0].kind = SRC_HEADER;
        j->nfrom = 1;
    }
    return true;
}

/* keys_file: one SHA-256 (64 hex digits) per line, optionally followed by
 * whitespace and a name; blank lines and lines starting with # skipped. */
static int load_api_keys(struct apikey_conf *c, char *why, size_t cap)
{
    FILE *f = fopen(c->keys_file, "re");
    char line[512];
    unsigned lineno = 0;

    if (!f) {
        snprintf(why, cap, "cannot open %s: %s", c->keys_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *name;
        struct api_key k = {0};
        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
            continue;
        for (int i = 0; i < 32; i++) {
            int hi, lo;
            char h = (char)tolower((unsigned char)p[2 * i]),
                 l = (char)tolower((unsigned char)p[2 * i + 1]);
            hi = isxdigit((unsigned char)h) ? (h <= '9' ? h - '0' : h - 'a' + 10) : -1;
            lo = isxdigit((unsigned char)l) ? (l <= '9' ? l - '0' : l - 'a' + 10) : -1;
            if (hi < 0 || lo < 0) {
                fclose(f);
                snprintf(why, cap, "%s:%u: expected the key's SHA-256 as 64 hex digits",
                         c->keys_file, lineno);
                return -1;
            }
            k.hash[i] = (unsigned char)(hi << 4 | lo);
        }
        p += 64;
        if (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            fclose(f);
            snprintf(why, cap, "%s:%u: expected the key's SHA-256 as 64 hex digits", c->keys_file,
                     lineno);
            return -1;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        name = p;
        p[strcspn(p, "\r\n")] = '\0';
        if (c->n >= MAX_API_KEYS) {
            fclose(f);
            snprintf(why, cap, "%s: more than %d keys", c->keys_file, MAX_API_KEYS);
            return -1;
        }
        struct api_key *v = realloc(c->keys, (c->n + 1) * sizeof(*v));
        if (v)
            c->keys = v;
        if (!v || !(k.name = strdup(name))) {
            fclose(f);
            snprintf(why, cap, "out of memory");
            return -1;
        }
        c->keys = v;
        c->keys[c->n++] = k;
    }
    fclose(f);
    if (c->n == 0) {
        snprintf(why, cap, "%s: no keys in it", c->keys_file);
        return -1;
    }
    return 0;
}

static const struct conf_key key_keys[] = {
    {.name = "header", .kind = CK_STRING, CONF_FIELD(struct apikey_conf, header, CF_STRING)},
    {.name = "query", .kind = CK_STRING, CONF_FIELD(struct apikey_conf, query, CF_STRING)},
    {.name = "keys_file",
     .kind = CK_STRING,
     CONF_FIELD(struct apikey_conf, keys_file, CF_STRING),
     .required = true},
};

static void apikey_conf_free(struct apikey_conf *c)
{
    if (!c)
        return;
    free(c->header);
    free(c->query);
    free(c->keys_file);
    for (size_t i = 0; i < c->n; i++)
        free(c->keys[i].name);
    OPENSSL_cleanse(c->keys, c->n * sizeof(*c->keys));
    free(c->keys);
    free(c);
}

static bool parse_api_key(struct conf_diag *d, const struct ynode *v, struct auth_conf *a)
{
    const struct ynode *seen[3];
    struct apikey_conf *c = calloc(1, sizeof(*c));
    char why[300];

    if (!c) {
        d->oom = true;
        return false;
    }
    a->key = c;
    if (v->type != Y_MAP) {
        conf_bad_value(d, "api_key", v, "a mapping with header or query, and keys_file");
        return false;
    }
    if (!conf_apply_map(d, key_keys, 3, v, c, "in api_key", seen))
        return false;
    if (!c->header == !c->query) {
        conf_report(d, v, "api_key: exactly one of header or query");
        return false;
    }
    if (c->header && !header_name_ok(c->header)) {
        conf_report(d, seen[0], "header: expected a header name such as X-Api-Key");
        return false;
    }
    if (!conf_file_path(d, &c->keys_file))
        return false;
    if (load_api_keys(c, why, sizeof(why)) < 0) {
        conf_report(d, seen[2], "%s", why);
        return false;
    }
    c->strip[0] = "X-Api-Key-Name";
    c->strip[1] = c->header;
    return true;
}

bool auth_parse(struct conf_diag *d, const struct conf_key *k, const struct ynode *v, void *base)
{
    struct auth_conf **slot = (struct auth_conf **)((char *)base + k->off);
    struct auth_conf *a = calloc(1, sizeof(*a));
    const char *kind;

    if (!a) {
        d->oom = true;
        return false;
    }
    *slot = a;
    if (v->type != Y_MAP || v->nkids != 2 || !(kind = conf_scalar(v->kids[0]))) {
        conf_bad_value(d, k->name, v, "a mapping with one of jwt or api_key");
        return false;
    }
    if (strcmp(kind, "jwt") == 0)
        return parse_jwt(d, v->kids[1], a);
    if (strcmp(kind, "api_key") == 0)
        return parse_api_key(d, v->kids[1], a);
    conf_report(d, v->kids[0], "auth: expected jwt or api_key, got %s", kind);
    return false;
}

void auth_conf_free(struct auth_conf *a)
{
    if (!a)
        return;
    jwt_conf_free(a->jwt);
    apikey_conf_free(a->key);
    free(a);
}

bool auth_close_on_expiry(const struct auth_conf *a)
{
    return a && a->jwt && a->jwt->close_on_expiry;
}

/* ================================================================ runtime */

static const struct http_span *header_value(const struct http_request *r, const char *name)
{
    unsigned from = 0;
    int i = http_header_next(r->headers, r->nheaders, name, &from);

    return i >= 0 ? &r->headers[i].value : NULL;
}

/* Query parameter `name` in q: its value span; at and len: the whole
 * "name=value" (for removal). Values are taken as sent (tokens are
 * base64url: nothing to decode). */
static bool query_param(struct http_span q, const char *name, struct http_span *val, size_t *at,
                        size_t *len)
{
    size_t nl = strlen(name), i = 0;

    while (i < q.n) {
        size_t e = i;
        while (e < q.n && q.p[e] != '&')
            e++;
        if (e - i > nl && q.p[i + nl] == '=' && memcmp(q.p + i, name, nl) == 0) {
            val->p = q.p + i + nl + 1;
            val->n = e - i - nl - 1;
            *at = i;
            *len = e - i;
            return true;
        }
        i = e + 1;
    }
    return false;
}

/* The query without the parameter at [at, at+len) (and its '&'). */
static char *query_without(struct http_span q, size_t at, size_t len)
{
    char *out = malloc(q.n + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    memcpy(out, q.p, at);
    o = at;
    if (at + len < q.n) {
        memcpy(out + o, q.p + at + len + 1, q.n - at - len - 1);
        o += q.n - at - len - 1;
    } else if (o > 0) {
        o--; /* the '&' before the last parameter */
    }
    out[o] = '\0';
    return out;
}

static bool cookie_value(const struct http_request *r, const char *name, struct http_span *out)
{
    size_t nl = strlen(name);
    unsigned from = 0;
    int i;

    while ((i = http_header_next(r->headers, r->nheaders, "Cookie", &from)) >= 0) {
        const char *p = r->headers[i].value.p, *end = p + r->headers[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *e = memchr(p, ';', (size_t)(end - p));
            if (!e)
                e = end;
            if ((size_t)(e - p) > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
                out->p = p + nl + 1;
                out->n = (size_t)(e - p) - nl - 1;
                return true;
            }
            p = e;
        }
    }
    return false;
}

/* The bearer entry of the offered subprotocols, and the offer without it.
 * "bearer.<token>", or Kubernetes' "base64url.bearer.authorization.k8s.io.
 * <base64url of the token>" (decoded into dec). */
static bool subprotocol_token(struct admit_ctx *cx, char *dec, size_t cap, struct http_span *tok)
{
    const struct http_request *r = cx->req;
    unsigned from = 0;
    size_t total = 0, len = 0;
    bool found = false;
    char *rest;
    int i;

    while ((i = http_header_next(r->headers, r->nheaders, "Sec-WebSocket-Protocol", &from)) >= 0)
        total += r->headers[i].value.n + 2;
    rest = malloc(total + 1);
    if (!rest)
        return false;
    from = 0;
    while ((i = http_header_next(r->headers, r->nheaders, "Sec-WebSocket-Protocol", &from)) >= 0) {
        const char *p = r->headers[i].value.p, *end = p + r->headers[i].value.n;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end, *b = p, *t = e;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            size_t n = (size_t)(t - b);
            bool bearer = n > sizeof(BEARER_PROTO) - 1 && memcmp(b, BEARER_PROTO, 7) == 0;
            bool k8s =
                n > sizeof(K8S_PROTO) - 1 && memcmp(b, K8S_PROTO, sizeof(K8S_PROTO) - 1) == 0;
            if (!found && (bearer || k8s)) {
                found = true;
                if (bearer) {
                    tok->p = b + 7;
                    tok->n = n - 7;
                } else {
                    /* base64url without padding: decode with OpenSSL after
                     * mapping to the standard alphabet. */
                    size_t m = n - (sizeof(K8S_PROTO) - 1), pad = (4 - m % 4) % 4;
                    char *std = malloc(m + pad + 1);
                    int dl;
                    if (!std || m + pad > 4 * (cap / 3)) {
                        free(std);
                        free(rest);
                        return false;
                    }
                    for (size_t j = 0; j < m; j++) {
                        char c = b[sizeof(K8S_PROTO) - 1 + j];
                        std[j] = c == '-' ? '+' : c == '_' ? '/' : c;
                    }
                    memset(std + m, '=', pad);
                    dl =
                        EVP_DecodeBlock((unsigned char *)dec, (unsigned char *)std, (int)(m + pad));
                    free(std);
                    if (dl < 0) {
                        free(rest);
                        return false;
                    }
                    dl -= (int)pad;
                    tok->p = dec;
                    tok->n = (size_t)(dl > 0 ? dl : 0);
                }
            } else if (n > 0) {
                if (len) {
                    rest[len++] = ',';
                    rest[len++] = ' ';
                }
                memcpy(rest + len, b, n);
                len += n;
            }
            p = comma ? comma + 1 : end;
        }
    }
    rest[len] = '\0';
    if (!found) {
        free(rest);
        return false;
    }
    free(cx->protocols);
    cx->protocols = rest;
    cx->protocols_set = true;
    return true;
}

/* Find the token: each source in order. */
static bool find_token(const struct jwt_conf *j, struct admit_ctx *cx, char *dec, size_t cap,
                       struct http_span *tok)
{
    for (size_t i = 0; i < j->nfrom; i++) {
        const struct token_src *s = &j->from[i];
        struct http_span v;
        size_t at, len;
        switch (s->kind) {
        case SRC_HEADER: {
            const struct http_span *h = header_value(cx->req, "Authorization");
            if (h && h->n > 7 && strncasecmp(h->p, "Bearer ", 7) == 0) {
                tok->p = h->p + 7;
                tok->n = h->n - 7;
                while (tok->n && tok->p[0] == ' ') {
                    tok->p++;
                    tok->n--;
                }
                return true;
            }
            break;
        }
        case SRC_QUERY:
            if (query_param(cx->query, s->name, &v, &at, &len)) {
                /* Tokens in URLs end up in logs: never forwarded. */
                char *q = query_without(cx->query, at, len);
                if (!q)
                    return false;
                free(cx->query_out);
                cx->query_out = q;
                cx->query_set = true;
                *tok = v;
                return true;
            }
            break;
        case SRC_COOKIE:
            if (cookie_value(cx->req, s->name, &v)) {
                *tok = v;
                return true;
            }
            break;
        case SRC_SUBPROTOCOL:
            if (cx->upgrade && subprotocol_token(cx, dec, cap, tok))
                return true;
            break;
        }
    }
    return false;
}

static bool append_line(struct admit_ctx *cx, const char *name, const char *value)
{
    size_t old = cx->lines ? strlen(cx->lines) : 0, add = strlen(name) + strlen(value) + 4;
    char *p;

    /* A claim's text goes into a header: only visible ASCII and spaces. */
    for (const char *c = value; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return true; /* not forwarded */
    p = realloc(cx->lines, old + add + 1);
    if (!p)
        return false;
    snprintf(p + old, add + 1, "%s: %s\r\n", name, value);
    cx->lines = p;
    return true;
}

static int check_jwt(const struct jwt_conf *j, struct admit_ctx *cx)
{
    char dec[JWT_MAX + 4], buf[64];
    struct http_span tok;
    struct jwt_claims *cl;
    const char *why = NULL;

    cx->challenge = CHALLENGE_JWT;
    cx->strip = (const char *const *)j->strip;
    cx->nstrip = j->nfwd;
    if (!find_token(j, cx, dec, sizeof(dec), &tok)) {
        snprintf(cx->reason, sizeof(cx->reason), "no token");
        return ERR_AUTH;
    }
    if (jwt_verify(&j->keys, &j->rules, tok.p, tok.n, cx->now_s, &cl, &why) < 0) {
        snprintf(cx->reason, sizeof(cx->reason), "%s", why);
        return ERR_AUTH;
    }
    for (size_t i = 0; i < j->nrequire; i++) {
        const struct claim_rule *r = &j->require[i];
        if (!(r->contains ? jwt_claim_contains(cl, r->claim, r->value)
                          : jwt_claim_equals(cl, r->claim, r->value))) {
            snprintf(cx->reason, sizeof(cx->reason), "claim %.40s", r->claim);
            jwt_claims_free(cl);
            return ERR_AUTH_FORBIDDEN;
        }
    }
    const char *sub = jwt_claim_text(cl, "sub", buf, sizeof(buf));
    if (sub)
        snprintf(cx->user, sizeof(cx->user), "%s", sub);
    for (size_t i = 0; i < j->nfwd; i++) {
        const char *t = jwt_claim_text(cl, j->fwd[i].claim, buf, sizeof(buf));
        if (t && !append_line(cx, j->fwd[i].header, t)) {
            jwt_claims_free(cl);
            return ERR_NOMEM;
        }
    }
    cx->expires_s = jwt_claims_exp(cl);
    jwt_claims_free(cl);
    return 0;
}

static int check_key(const struct apikey_conf *c, struct admit_ctx *cx)
{
    struct http_span v = {NULL, 0};
    unsigned char h[32];
    size_t at, len;
    const struct api_key *match = NULL;

    cx->challenge = CHALLENGE_KEY;
    cx->strip = c->strip;
    cx->nstrip = c->header ? 2 : 1;
    if (c->header) {
        const struct http_span *hv = header_value(cx->req, c->header);
        if (hv)
            v = *hv;
    } else if (query_param(cx->query, c->query, &v, &at, &len)) {
        char *q = query_without(cx->query, at, len);
        if (!q)
            return ERR_NOMEM;
        free(cx->query_out);
        cx->query_out = q;
        cx->query_set = true;
    }
    if (!v.n) {
        snprintf(cx->reason, sizeof(cx->reason), "no key");
        return ERR_AUTH;
    }
    if (v.n > 1024 || !EVP_Digest(v.p, v.n, h, NULL, EVP_sha256(), NULL)) {
        snprintf(cx->reason, sizeof(cx->reason), "unknown key");
        return ERR_AUTH;
    }
    /* Every entry compared in constant time, whichever matches. */
    for (size_t i = 0; i < c->n; i++)
        if (CRYPTO_memcmp(h, c->keys[i].hash, 32) == 0)
            match = &c->keys[i];
    if (!match) {
        snprintf(cx->reason, sizeof(cx->reason), "unknown key");
        return ERR_AUTH;
    }
    snprintf(cx->user, sizeof(cx->user), "%s", match->name);
    return append_line(cx, "X-Api-Key-Name", match->name[0] ? match->name : "-") ? 0 : ERR_NOMEM;
}

int auth_step(const struct admit_conf *rules, const void *arg, struct admit_ctx *cx)
{
    const struct auth_conf *a = arg;

    return a->jwt ? check_jwt(a->jwt, cx) : check_key(a->key, cx);
}
