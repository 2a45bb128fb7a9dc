/* Parsing and checking of `upstreams:` and `routes:` (see route_conf.h).
 * Every problem is reported with its position; nothing is half-applied:
 * any error fails the whole load. */
#include "route/route_conf.h"

#include "auth/auth.h"
#include "limit/limit.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/path.h"
#include "route/route.h"

#define MAX_BACKENDS   1000 /* per upstream */
#define MAX_ROUTES     10000
#define MAX_SPLIT      100 /* entries of one split */
#define MAX_PAIRS      64  /* headers or query parameters one route matches on */
#define MAX_NAME       128 /* bytes of an upstream, header, cookie or parameter name */
#define MAX_MATCH_PATH 4096

static const char *const lb_names[] = {"round_robin", "least_conn", "p2c", "random", "hash", NULL};
static const char *const hc_names[] = {"tcp", "http", "websocket", NULL};

/* ------------------------------------------------------------ helpers */

/* RFC 9110 token characters: header names, cookie names, upstream names. */
static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!token_char((unsigned char)s[i]) || s[i] == '\0')
            return false;
    return true;
}

/* A scalar value as a string, or a report with `expected`. */
static const char *want_text(struct conf_diag *d, const char *key, const struct ynode *v,
                             const char *expected)
{
    const char *s = conf_scalar(v);

    if (!s)
        conf_bad_value(d, key, v, expected);
    return s;
}

static char *dup_or_oom(struct conf_diag *d, const char *s)
{
    char *c = strdup(s);

    if (!c)
        d->oom = true;
    return c;
}

/* A path used for matching or rewriting: it must already be in the form
 * requests are normalized to (so a route can match it), e.g. no "..",
 * "//", "%2e" or "%2F". */
static bool check_route_path(struct conf_diag *d, const char *key, const struct ynode *v,
                             char **out)
{
    char q[CONF_QUOTE_BUF];
    const char *s = want_text(d, key, v, "a path starting with '/'");
    char norm[MAX_MATCH_PATH + 1];
    size_t nlen;
    int rc;

    if (!s)
        return false;
    bool visible = true;
    for (size_t i = 0; i < v->len; i++)
        visible = visible && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f;
    if (s[0] != '/' || v->len > MAX_MATCH_PATH || strpbrk(s, "?#") || !visible) {
        conf_bad_value(d, key, v, "a path starting with '/', without spaces, '?' or '#'");
        return false;
    }
    rc = path_normalize(s, v->len, true, norm, sizeof(norm), &nlen);
    if (rc < 0) {
        conf_report(d, v, "%s: %s, got %s", key, err_str(rc), conf_quote(s, v->len, q));
        return false;
    }
    if (nlen != v->len || memcmp(norm, s, nlen) != 0) {
        conf_report(d, v,
                    "%s: requests are matched after normalization, so write it as \"%.*s\", got %s",
                    key, (int)nlen, norm, conf_quote(s, v->len, q));
        return false;
    }
    *out = dup_or_oom(d, s);
    return *out != NULL;
}

/* ------------------------------------------------------------ backends */

struct backend_tmp {
    struct rc_backend b;
};

/* Parse a backend URL into b (addr, path, tls, host). */
static int url_into(struct rc_backend *b, const char *url, const char **why)
{
    struct conf_url u;
    int rc = conf_parse_backend_url(url, &b->addr, &b->path, &u, why);

    if (rc != 0)
        return rc;
    b->tls = u.tls;
    b->host_is_ip = u.host_is_ip;
    b->host = strdup(u.host);
    if (!b->host) {
        free(b->path);
        b->path = NULL;
        return ERR_NOMEM;
    }
    return 0;
}

static bool parse_url(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                      void *base)
{
    struct rc_backend *b = base;
    char q[CONF_QUOTE_BUF];
    const char *why = NULL;
    const char *url = want_text(d, k->name, v, "a URL such as ws://127.0.0.1:9000");
    int rc;

    if (!url)
        return false;
    rc = url_into(b, url, &why);
    if (rc == ERR_NOMEM) {
        d->oom = true;
        return false;
    }
    if (rc != 0) {
        conf_report(d, v, "%s: %s, got %s", k->name, why, conf_quote(url, v->len, q));
        return false;
    }
    b->url = dup_or_oom(d, url);
    b->line = v->line;
    return b->url != NULL;
}

static const struct conf_key backend_keys[] = {
    {.name = "url",
     .kind = CK_CUSTOM,
     .parse = parse_url,
     .required = true,
     .expected = "a URL such as ws://127.0.0.1:9000"},
    {.name = "weight",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_backend, weight, CF_UNSIGNED),
     .min = 1,
     .max = 256},
    {.name = "max_connections",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_backend, max_connections, CF_UNSIGNED),
     .min = 1,
     .max = 1000000},
    {.name = "drain", .kind = CK_BOOL, CONF_FIELD(struct rc_backend, drain, CF_BOOL)},
};
#define NBACKEND_KEYS (sizeof(backend_keys) / sizeof(backend_keys[0]))

static void backend_free(struct rc_backend *b)
{
    free(b->url);
    free(b->path);
    free(b->host);
}

static bool parse_backends(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                           void *base)
{
    struct rc_upstream *up = base;
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0) {
        conf_bad_value(d, k->name, v,
                       "a non-empty sequence of backend URLs or {url: ...} mappings");
        return false;
    }
    if (v->nkids > MAX_BACKENDS) {
        conf_report(d, v, "backends: at most %d backends in one upstream, got %zu", MAX_BACKENDS,
                    v->nkids);
        return false;
    }
    up->backends = calloc(v->nkids, sizeof(*up->backends));
    if (!up->backends) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        struct rc_backend b = {.weight = 1};
        bool good;
        if (e->bad) {
            ok = false;
            continue;
        }
        if (e->type == Y_SCALAR)
            good = parse_url(d, &backend_keys[0], e, &b);
        else if (e->type == Y_MAP)
            good = conf_apply_map(d, backend_keys, NBACKEND_KEYS, e, &b, "in a backend", NULL);
        else {
            conf_bad_value(d, "backends", e, "a backend URL or a mapping with url");
            good = false;
        }
        for (size_t j = 0; good && j < up->nbackends; j++) {
            if (strcmp(up->backends[j].url, b.url) == 0) {
                conf_report(d, e, "backends: duplicate backend %s (first at line %d)",
                            conf_quote(b.url, strlen(b.url), q), up->backends[j].line);
                good = false;
            }
        }
        if (!good) {
            backend_free(&b);
            ok = false;
            continue;
        }
        if (b.line == 0)
            b.line = e->line;
        up->backends[up->nbackends++] = b;
    }
    return ok;
}

/* ------------------------------------------------------------ upstreams */

static bool parse_hash_key(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                           void *base)
{
    static const struct {
        const char *prefix;
        enum hash_src src;
    } named[] = {{"header:", HASH_HEADER}, {"cookie:", HASH_COOKIE}, {"query:", HASH_QUERY}};
    static const char *const expected = "ip, path, header:NAME, cookie:NAME or query:NAME";
    struct rc_upstream *up = base;
    const char *s = want_text(d, k->name, v, expected);

    if (!s)
        return false;
    if (strcmp(s, "ip") == 0) {
        up->hash_src = HASH_IP;
        return true;
    }
    if (strcmp(s, "path") == 0) {
        up->hash_src = HASH_PATH;
        return true;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t pl = strlen(named[i].prefix);
        if (strncmp(s, named[i].prefix, pl) == 0 && is_token(s + pl, v->len - pl)) {
            up->hash_src = named[i].src;
            free(up->hash_name);
            up->hash_name = dup_or_oom(d, s + pl);
            return up->hash_name != NULL;
        }
    }
    conf_bad_value(d, k->name, v, expected);
    return false;
}

static bool parse_cookie_name(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                              void *base)
{
    struct rc_upstream *up = base;
    const char *s = want_text(d, k->name, v, "a cookie name");

    if (!s)
        return false;
    if (!is_token(s, v->len)) {
        conf_bad_value(d, k->name, v, "a cookie name (letters, digits and !#$%&'*+-.^_`|~)");
        return false;
    }
    free(up->sticky_cookie);
    up->sticky_cookie = dup_or_oom(d, s);
    return up->sticky_cookie != NULL;
}

static bool parse_secret(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base)
{
    struct rc_upstream *up = base;
    const char *s = want_text(d, k->name, v, "a secret of at least 16 characters");

    if (!s)
        return false;
    if (v->len < 16) {
        conf_report(d, v, "secret: expected at least 16 characters, got %zu", v->len);
        return false;
    }
    free(up->sticky_secret);
    up->sticky_secret = dup_or_oom(d, s);
    return up->sticky_secret != NULL;
}

static const struct conf_key sticky_keys[] = {
    {.name = "cookie",
     .kind = CK_CUSTOM,
     .parse = parse_cookie_name,
     .required = true,
     .expected = "a cookie name"},
    {.name = "ttl",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_upstream, sticky_ttl_ms, CF_U64),
     .min = 0,
     .max = CONF_MAX_DURATION_MS},
    {.name = "secret",
     .kind = CK_CUSTOM,
     .parse = parse_secret,
     .expected = "a secret of at least 16 characters"},
};

static bool parse_sticky(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base)
{
    if (v->type != Y_MAP) {
        conf_bad_value(d, k->name, v, "a mapping such as {cookie: NAME, ttl: 1h}");
        return false;
    }
    return conf_apply_map(d, sticky_keys, sizeof(sticky_keys) / sizeof(sticky_keys[0]), v, base,
                          "in sticky", NULL);
}

static bool parse_hc_path(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct rc_health *h = base;
    const char *s = want_text(d, k->name, v, "a request path starting with '/'");

    if (!s)
        return false;
    if (s[0] != '/' || v->len > MAX_MATCH_PATH) {
        conf_bad_value(d, k->name, v, "a request path starting with '/'");
        return false;
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f) {
            conf_bad_value(d, k->name, v, "a request path of visible ASCII characters");
            return false;
        }
    }
    free(h->path);
    h->path = dup_or_oom(d, s);
    return h->path != NULL;
}

/* tcp, http or websocket: enum hc_type is the index + 1 (0 is none). */
static bool parse_hc_type(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct rc_health *h = base;
    const char *s = want_text(d, k->name, v, "one of tcp, http, websocket");

    for (int i = 0; s && hc_names[i]; i++) {
        if (strcmp(s, hc_names[i]) == 0) {
            h->type = (enum hc_type)(i + 1);
            return true;
        }
    }
    if (s)
        conf_bad_value(d, k->name, v, "one of tcp, http, websocket");
    return false;
}

static const struct conf_key health_keys[] = {
    {.name = "type",
     .kind = CK_CUSTOM,
     .parse = parse_hc_type,
     .required = true,
     .expected = "one of tcp, http, websocket"},
    {.name = "path",
     .kind = CK_CUSTOM,
     .parse = parse_hc_path,
     .expected = "a request path starting with '/'"},
    {.name = "interval",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_health, interval_ms, CF_U64),
     .min = 100,
     .max = CONF_MAX_DURATION_MS},
    {.name = "timeout",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_health, timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "healthy_threshold",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_health, healthy_threshold, CF_UNSIGNED),
     .min = 1,
     .max = 100},
    {.name = "unhealthy_threshold",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_health, unhealthy_threshold, CF_UNSIGNED),
     .min = 1,
     .max = 100},
};

static bool parse_health(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base)
{
    struct rc_upstream *up = base;

    if (v->type != Y_MAP) {
        conf_bad_value(d, k->name, v, "a mapping such as {type: websocket, interval: 5s}");
        return false;
    }
    return conf_apply_map(d, health_keys, sizeof(health_keys) / sizeof(health_keys[0]), v,
                          &up->health, "in health_check", NULL);
}

static const struct conf_key http_pool_keys[] = {
    {.name = "max_idle",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_upstream, http_pool_max_idle, CF_UNSIGNED),
     .min = 0,
     .max = 10000},
    {.name = "idle_timeout",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_upstream, http_pool_idle_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
};

static bool parse_http_pool(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                            void *base)
{
    if (v->type != Y_MAP) {
        conf_bad_value(d, k->name, v, "a mapping such as {max_idle: 32, idle_timeout: 60s}");
        return false;
    }
    return conf_apply_map(d, http_pool_keys, 2, v, base, "in http_pool", NULL);
}

static bool parse_upstream_tls(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                               void *base)
{
    struct rc_upstream *up = base;

    return tls_client_conf_parse(d, v, &up->tls);
}

static const struct conf_key upstream_keys[] = {
    {.name = "backends",
     .kind = CK_CUSTOM,
     .parse = parse_backends,
     .required = true,
     .expected = "a sequence of backends"},
    {.name = "balance",
     .kind = CK_ENUM,
     CONF_FIELD(struct rc_upstream, balance, CF_INT),
     .names = lb_names},
    {.name = "hash_key",
     .kind = CK_CUSTOM,
     .parse = parse_hash_key,
     .expected = "ip, path, header:NAME, cookie:NAME or query:NAME"},
    {.name = "sticky",
     .kind = CK_CUSTOM,
     .parse = parse_sticky,
     .expected = "a mapping such as {cookie: NAME, ttl: 1h}"},
    {.name = "connect_timeout",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_upstream, connect_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "retries",
     .kind = CK_UINT,
     CONF_FIELD(struct rc_upstream, retries, CF_UNSIGNED),
     .min = 0,
     .max = 10},
    {.name = "health_check",
     .kind = CK_CUSTOM,
     .parse = parse_health,
     .expected = "a mapping such as {type: websocket}"},
    {.name = "ejection_time",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_upstream, ejection_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "http_pool",
     .kind = CK_CUSTOM,
     .parse = parse_http_pool,
     .expected = "a mapping such as {max_idle: 32, idle_timeout: 60s}"},
    {.name = "drain_timeout",
     .kind = CK_DURATION,
     CONF_FIELD(struct rc_upstream, drain_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "tls",
     .kind = CK_CUSTOM,
     .parse = parse_upstream_tls,
     .expected = "a mapping (ca, cert, key, insecure_skip_verify)"},
};
#define NUPSTREAM_KEYS (sizeof(upstream_keys) / sizeof(upstream_keys[0]))

static void upstream_defaults(struct rc_upstream *up)
{
    up->balance = LB_ROUND_ROBIN;
    up->retries = 2;
    up->ejection_ms = 30000;
    up->drain_timeout_ms = 300000;
    up->health.type = HC_NONE;
    up->health.interval_ms = 5000;
    up->health.timeout_ms = 2000;
    up->health.healthy_threshold = 2;
    up->health.unhealthy_threshold = 3;
    up->http_pool_max_idle = 32;
    up->http_pool_idle_ms = 60000;
}

static void upstream_free(struct rc_upstream *up)
{
    route_states_free(up);
    tls_client_conf_free(&up->tls);
    for (size_t i = 0; i < up->nbackends; i++)
        backend_free(&up->backends[i]);
    free(up->backends);
    free(up->name);
    free(up->hash_name);
    free(up->sticky_cookie);
    free(up->sticky_secret);
    free(up->health.path);
    free(up->maglev);
}

bool route_conf_upstreams(struct conf_diag *d, struct route_conf *rc, const struct ynode *v)
{
    char q[CONF_QUOTE_BUF], where[MAX_NAME + 32];
    bool ok = true;

    if (v->type != Y_MAP || v->nkids == 0) {
        conf_bad_value(d, "upstreams", v, "a mapping of upstream names to pools");
        return false;
    }
    rc->upstreams = calloc(v->nkids / 2, sizeof(*rc->upstreams));
    if (!rc->upstreams) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i + 1 < v->nkids; i += 2) {
        const struct ynode *kn = v->kids[i], *val = v->kids[i + 1];
        const char *name = conf_scalar(kn);
        const struct ynode *seen[NUPSTREAM_KEYS];
        struct rc_upstream *up = &rc->upstreams[rc->nupstreams];
        if (conf_dup_key(v, i)) {
            ok = false;
            continue;
        }
        if (!name || !is_token(name, kn->len)) {
            conf_report(d, kn,
                        "upstreams: expected a name of letters, digits, '-', '_' or '.', got %s",
                        conf_describe(kn, q));
            ok = false;
            continue;
        }
        upstream_defaults(up);
        up->line = kn->line;
        up->name = dup_or_oom(d, name);
        rc->nupstreams++;
        if (!up->name) {
            ok = false;
            continue;
        }
        if (val->type != Y_MAP) {
            conf_bad_value(d, name, val, "a mapping with backends");
            ok = false;
            continue;
        }
        snprintf(where, sizeof(where), "in upstream \"%s\"", name);
        if (!conf_apply_map(d, upstream_keys, NUPSTREAM_KEYS, val, up, where, seen))
            ok = false;
        const struct ynode *hk = seen[2];
        if (up->balance == LB_HASH && !hk) {
            conf_report(d, seen[1] ? seen[1] : val,
                        "balance: hash needs hash_key (ip, path, header:NAME, cookie:NAME or "
                        "query:NAME) %s",
                        where);
            ok = false;
        } else if (up->balance != LB_HASH && hk) {
            conf_report(d, hk, "hash_key: only used with balance: hash %s", where);
            ok = false;
        }
        if (up->health.type == HC_TCP && up->health.path) {
            conf_report(d, seen[6], "health_check: path is for http and websocket checks %s",
                        where);
            ok = false;
        }
    }
    return ok;
}

/* ------------------------------------------------------------ routes */

struct route_tmp {
    struct rc_route r;
    struct rc_backend b; /* short form: `backend:` */
    bool has_backend;
    struct route_conf *rc;
};

static bool parse_pairs(struct conf_diag *d, const char *key, const struct ynode *v,
                        struct rc_pair **out, size_t *nout, bool headers)
{
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_MAP || v->nkids == 0 || v->nkids / 2 > MAX_PAIRS) {
        conf_bad_value(d, key, v,
                       headers ? "a mapping of header names to values or {present: true}"
                               : "a mapping of query parameter names to values");
        return false;
    }
    *out = calloc(v->nkids / 2, sizeof(**out));
    if (!*out) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i + 1 < v->nkids; i += 2) {
        const struct ynode *kn = v->kids[i], *val = v->kids[i + 1];
        const char *name = conf_scalar(kn);
        struct rc_pair p = {0};
        if (conf_dup_key(v, i)) {
            ok = false;
            continue;
        }
        if (!name || (headers ? !is_token(name, kn->len) : kn->len == 0 || kn->len > MAX_NAME)) {
            conf_report(d, kn, "%s: expected a %s name, got %s", key,
                        headers ? "header" : "parameter", conf_describe(kn, q));
            ok = false;
            continue;
        }
        if (headers && val->type == Y_MAP) {
            /* {present: true}: the header is there, whatever its value. */
            const char *pk = val->nkids == 2 ? conf_scalar(val->kids[0]) : NULL;
            const char *pv = val->nkids == 2 ? conf_scalar(val->kids[1]) : NULL;
            if (!pk || strcmp(pk, "present") != 0 || !pv || strcmp(pv, "true") != 0) {
                conf_bad_value(d, name, val, "a value, or {present: true}");
                ok = false;
                continue;
            }
        } else {
            const char *s = conf_scalar(val);
            if (!s) {
                conf_bad_value(d, name, val, headers ? "a value, or {present: true}" : "a value");
                ok = false;
                continue;
            }
            p.value = dup_or_oom(d, s);
            if (!p.value) {
                ok = false;
                continue;
            }
        }
        p.name = dup_or_oom(d, name);
        if (!p.name) {
            free(p.value);
            ok = false;
            continue;
        }
        (*out)[(*nout)++] = p;
    }
    return ok;
}

static bool valid_host_pattern(char *h)
{
    size_t n = strlen(h);
    const char *p = h;

    if (n == 0 || n > 253)
        return false;
    if (h[0] == '*') {
        if (n < 3 || h[1] != '.')
            return false;
        p = h + 2;
    }
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static bool parse_host(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base)
{
    struct rc_route *r = base;
    const char *s = want_text(d, k->name, v, "a host name, or *.suffix");
    char *h;

    if (!s)
        return false;
    h = dup_or_oom(d, s);
    if (!h)
        return false;
    for (char *p = h; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!valid_host_pattern(h)) {
        free(h);
        conf_bad_value(d, k->name, v, "a host name (letters, digits, '-', '.'), or *.suffix");
        return false;
    }
    free(r->host);
    r->host = h;
    return true;
}

static bool parse_match_path(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                             void *base)
{
    struct rc_route *r = base;
    char **slot = strcmp(k->name, "path") == 0 ? &r->path : &r->path_prefix;

    free(*slot);
    *slot = NULL;
    return check_route_path(d, k->name, v, slot);
}

static bool parse_headers(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct rc_route *r = base;

    return parse_pairs(d, k->name, v, &r->headers, &r->nheaders, true);
}

static bool parse_query(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                        void *base)
{
    struct rc_route *r = base;

    return parse_pairs(d, k->name, v, &r->query, &r->nquery, false);
}

static const struct conf_key match_keys[] = {
    {.name = "host", .kind = CK_CUSTOM, .parse = parse_host, .expected = "a host name"},
    {.name = "path", .kind = CK_CUSTOM, .parse = parse_match_path, .expected = "a path"},
    {.name = "path_prefix", .kind = CK_CUSTOM, .parse = parse_match_path, .expected = "a path"},
    {.name = "headers", .kind = CK_CUSTOM, .parse = parse_headers, .expected = "a mapping"},
    {.name = "query", .kind = CK_CUSTOM, .parse = parse_query, .expected = "a mapping"},
};

static bool parse_match(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                        void *base)
{
    struct route_tmp *t = base;

    if (v->type != Y_MAP || v->nkids == 0) {
        conf_bad_value(d, k->name, v, "a mapping of host, path, path_prefix, headers and/or query");
        return false;
    }
    return conf_apply_map(d, match_keys, sizeof(match_keys) / sizeof(match_keys[0]), v, &t->r,
                          "in match", NULL);
}

static bool find_upstream(const struct route_conf *rc, const char *name, size_t *idx)
{
    for (size_t i = 0; i < rc->nupstreams; i++) {
        if (rc->upstreams[i].name && !rc->upstreams[i].implicit &&
            strcmp(rc->upstreams[i].name, name) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

static bool parse_upstream_ref(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                               void *base)
{
    struct route_tmp *t = base;
    char q[CONF_QUOTE_BUF];
    const char *s = want_text(d, k->name, v, "the name of an upstream");
    size_t idx;

    if (!s)
        return false;
    if (!find_upstream(t->rc, s, &idx)) {
        conf_report(d, v, "upstream: no upstream named %s (define it under upstreams:)",
                    conf_quote(s, v->len, q));
        return false;
    }
    /* upstream and split together are reported by the caller; whichever
     * comes last replaces the other here. */
    free(t->r.splits);
    t->r.nsplits = t->r.split_total = 0;
    t->r.splits = calloc(1, sizeof(*t->r.splits));
    if (!t->r.splits) {
        d->oom = true;
        return false;
    }
    t->r.splits[0] = (struct rc_split){.up_index = idx, .weight = 1};
    t->r.nsplits = 1;
    t->r.split_total = 1;
    return true;
}

struct split_tmp {
    struct route_tmp *t;
    size_t idx;
    bool have;
    unsigned weight;
};

static bool parse_split_upstream(struct conf_diag *d, const struct conf_key *k,
                                 const struct ynode *v, void *base)
{
    struct split_tmp *st = base;
    char q[CONF_QUOTE_BUF];
    const char *s = want_text(d, k->name, v, "the name of an upstream");

    if (!s)
        return false;
    if (!find_upstream(st->t->rc, s, &st->idx)) {
        conf_report(d, v, "upstream: no upstream named %s (define it under upstreams:)",
                    conf_quote(s, v->len, q));
        return false;
    }
    st->have = true;
    return true;
}

static const struct conf_key split_keys[] = {
    {.name = "upstream",
     .kind = CK_CUSTOM,
     .parse = parse_split_upstream,
     .required = true,
     .expected = "the name of an upstream"},
    {.name = "weight",
     .kind = CK_UINT,
     CONF_FIELD(struct split_tmp, weight, CF_UNSIGNED),
     .min = 1,
     .max = 10000,
     .required = true},
};

static bool parse_split(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                        void *base)
{
    struct route_tmp *t = base;
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0 || v->nkids > MAX_SPLIT) {
        conf_bad_value(d, k->name, v,
                       "a sequence such as [{upstream: A, weight: 95}, {upstream: B, weight: 5}]");
        return false;
    }
    free(t->r.splits);
    t->r.nsplits = t->r.split_total = 0;
    t->r.splits = calloc(v->nkids, sizeof(*t->r.splits));
    if (!t->r.splits) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        struct split_tmp st = {.t = t};
        if (e->type != Y_MAP) {
            conf_bad_value(d, "split", e, "a mapping with upstream and weight");
            ok = false;
            continue;
        }
        if (!conf_apply_map(d, split_keys, 2, e, &st, "in a split entry", NULL) || !st.have) {
            ok = false;
            continue;
        }
        t->r.splits[t->r.nsplits++] = (struct rc_split){.up_index = st.idx, .weight = st.weight};
        t->r.split_total += st.weight;
    }
    return ok;
}

static bool parse_rewrite_prefix(struct conf_diag *d, const struct conf_key *k,
                                 const struct ynode *v, void *base)
{
    struct rc_route *r = base;

    free(r->rewrite_prefix);
    r->rewrite_prefix = NULL;
    return check_route_path(d, k->name, v, &r->rewrite_prefix);
}

static const struct conf_key rewrite_keys[] = {
    {.name = "path_prefix",
     .kind = CK_CUSTOM,
     .parse = parse_rewrite_prefix,
     .required = true,
     .expected = "a path"},
};

static bool parse_rewrite(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                          void *base)
{
    struct route_tmp *t = base;

    if (v->type != Y_MAP) {
        conf_bad_value(d, k->name, v, "a mapping such as {path_prefix: /new}");
        return false;
    }
    return conf_apply_map(d, rewrite_keys, 1, v, &t->r, "in rewrite", NULL);
}

static bool parse_short_path(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                             void *base)
{
    struct route_tmp *t = base;

    free(t->r.path_prefix);
    t->r.path_prefix = NULL;
    return check_route_path(d, k->name, v, &t->r.path_prefix);
}

static bool parse_short_backend(struct conf_diag *d, const struct conf_key *k,
                                const struct ynode *v, void *base)
{
    struct route_tmp *t = base;

    t->has_backend = parse_url(d, k, v, &t->b);
    return t->has_backend;
}

/* The core keys a route may override, stored in rc_route.lim; their order
 * is the bit order of lim_set. */
#define LIMIT_KEYS                                                                                 \
    {.name = "connect_timeout",                                                                    \
     .kind = CK_DURATION,                                                                          \
     CONF_FIELD(struct route_tmp, r.lim.connect_timeout_ms, CF_U64),                               \
     .min = 1,                                                                                     \
     .max = CONF_MAX_DURATION_MS},                                                                 \
        {.name = "close_timeout",                                                                  \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.close_timeout_ms, CF_U64),                             \
         .min = 1,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "ping_interval",                                                                  \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.ping_interval_ms, CF_U64),                             \
         .min = 0,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "pong_timeout",                                                                   \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.pong_timeout_ms, CF_U64),                              \
         .min = 1,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "idle_timeout",                                                                   \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.idle_timeout_ms, CF_U64),                              \
         .min = 0,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "max_stall",                                                                      \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.max_stall_ms, CF_U64),                                 \
         .min = 0,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "max_frame_size",                                                                 \
         .kind = CK_SIZE,                                                                          \
         CONF_FIELD(struct route_tmp, r.lim.max_frame_size, CF_U64),                               \
         .min = 1,                                                                                 \
         .max = (uint64_t)1 << 40},                                                                \
        {.name = "max_message_size",                                                               \
         .kind = CK_SIZE,                                                                          \
         CONF_FIELD(struct route_tmp, r.lim.max_message_size, CF_U64),                             \
         .min = 1,                                                                                 \
         .max = (uint64_t)1 << 40},                                                                \
        {.name = "validate_utf8",                                                                  \
         .kind = CK_BOOL,                                                                          \
         CONF_FIELD(struct route_tmp, r.lim.validate_utf8, CF_BOOL)},                              \
        {.name = "request_timeout",                                                                \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.request_timeout_ms, CF_U64),                           \
         .min = 0,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "response_timeout",                                                               \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.response_timeout_ms, CF_U64),                          \
         .min = 1,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "http_idle_timeout",                                                              \
         .kind = CK_DURATION,                                                                      \
         CONF_FIELD(struct route_tmp, r.lim.http_idle_timeout_ms, CF_U64),                         \
         .min = 1,                                                                                 \
         .max = CONF_MAX_DURATION_MS},                                                             \
        {.name = "max_request_body",                                                               \
         .kind = CK_SIZE,                                                                          \
         CONF_FIELD(struct route_tmp, r.lim.max_request_body, CF_U64),                             \
         .min = 0,                                                                                 \
         .max = (uint64_t)1 << 40},
#define NLIMIT_KEYS 13

/* The keys of the feature modules, in both forms of a route. */
#define FEATURE_KEYS                                                                               \
    ADMIT_ROUTE_KEYS(struct route_tmp, r.admit){.name = "auth",                                    \
                                                .kind = CK_CUSTOM,                                 \
                                                .parse = auth_parse,                               \
                                                .off = offsetof(struct route_tmp, r.auth),         \
                                                .expected = "a mapping with jwt or api_key"},      \
    {                                                                                              \
        .name = "limits", .kind = CK_CUSTOM, .parse = limit_parse,                                 \
        .off = offsetof(struct route_tmp, r.limits),                                               \
        .expected = "a mapping such as {handshake_rate: 10/s}"                                     \
    }

static const struct conf_key route_keys[] = {
    LIMIT_KEYS{.name = "match",
               .kind = CK_CUSTOM,
               .parse = parse_match,
               .expected = "a mapping of host, path, path_prefix, headers and/or query"},
    {.name = "upstream",
     .kind = CK_CUSTOM,
     .parse = parse_upstream_ref,
     .expected = "the name of an upstream"},
    {.name = "split",
     .kind = CK_CUSTOM,
     .parse = parse_split,
     .expected = "a sequence of {upstream, weight}"},
    {.name = "rewrite",
     .kind = CK_CUSTOM,
     .parse = parse_rewrite,
     .expected = "a mapping such as {path_prefix: /new}"},
    {.name = "websocket_only",
     .kind = CK_BOOL,
     CONF_FIELD(struct route_tmp, r.websocket_only, CF_BOOL)},
    FEATURE_KEYS};
#define NROUTE_KEYS (sizeof(route_keys) / sizeof(route_keys[0]))

static const struct conf_key short_keys[] = {
    LIMIT_KEYS{.name = "path",
               .kind = CK_CUSTOM,
               .parse = parse_short_path,
               .required = true,
               .expected = "a path"},
    {.name = "backend",
     .kind = CK_CUSTOM,
     .parse = parse_short_backend,
     .required = true,
     .expected = "a URL such as ws://127.0.0.1:9000"},
    {.name = "websocket_only",
     .kind = CK_BOOL,
     CONF_FIELD(struct route_tmp, r.websocket_only, CF_BOOL)},
    FEATURE_KEYS};
#define NSHORT_KEYS (sizeof(short_keys) / sizeof(short_keys[0]))

static void route_free(struct rc_route *r)
{
    free(r->host);
    free(r->path);
    free(r->path_prefix);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    for (size_t i = 0; i < r->nquery; i++) {
        free(r->query[i].name);
        free(r->query[i].value);
    }
    free(r->query);
    free(r->splits);
    free(r->rewrite_prefix);
    admit_conf_free(&r->admit);
    auth_conf_free(r->auth);
    r->auth = NULL;
    limit_conf_free(r->limits);
    r->limits = NULL;
}

/* A short-form route's backend becomes a pool of its own. */
static bool add_implicit_upstream(struct conf_diag *d, struct route_conf *rc, struct route_tmp *t)
{
    struct rc_upstream *ups = realloc(rc->upstreams, (rc->nupstreams + 1) * sizeof(*ups));
    struct rc_upstream *up;

    if (!ups) {
        d->oom = true;
        return false;
    }
    rc->upstreams = ups;
    up = &ups[rc->nupstreams];
    memset(up, 0, sizeof(*up));
    upstream_defaults(up);
    up->implicit = true;
    up->line = t->b.line;
    up->name = dup_or_oom(d, t->b.url);
    up->backends = calloc(1, sizeof(*up->backends));
    if (!up->name || !up->backends) {
        free(up->name);
        free(up->backends);
        d->oom = true;
        return false;
    }
    up->backends[0] = t->b;
    up->backends[0].weight = 1;
    up->nbackends = 1;
    t->b = (struct rc_backend){0};
    t->r.splits = calloc(1, sizeof(*t->r.splits));
    if (!t->r.splits) {
        d->oom = true;
        rc->nupstreams++; /* freed with the rest */
        return false;
    }
    t->r.splits[0] = (struct rc_split){.up_index = rc->nupstreams, .weight = 1};
    t->r.nsplits = 1;
    t->r.split_total = 1;
    rc->nupstreams++;
    return true;
}

bool route_conf_routes(struct conf_diag *d, struct route_conf *rc, const struct ynode *v)
{
    char q[CONF_QUOTE_BUF];
    bool ok = true;
    size_t nshort = 0, nshort_paths = 0;
    const struct ynode **short_paths;

    if (v->type != Y_SEQ) {
        conf_bad_value(d, "routes", v, "a sequence of routes");
        return false;
    }
    if (v->nkids == 0) {
        conf_report(d, v, "routes: expected at least one route, got an empty sequence");
        return false;
    }
    if (v->nkids > MAX_ROUTES) {
        conf_report(d, v, "routes: at most %d routes, got %zu", MAX_ROUTES, v->nkids);
        return false;
    }
    rc->routes = calloc(v->nkids, sizeof(*rc->routes));
    short_paths = calloc(v->nkids, sizeof(*short_paths));
    if (!rc->routes || !short_paths) {
        free(short_paths);
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        struct route_tmp t = {.rc = rc};
        const struct ynode *seen[NROUTE_KEYS > NSHORT_KEYS ? NROUTE_KEYS : NSHORT_KEYS];
        bool is_short = false, good;
        if (e->bad) {
            ok = false;
            continue;
        }
        if (e->type != Y_MAP) {
            conf_report(d, e, "routes: each route must be a mapping, got %s", conf_describe(e, q));
            ok = false;
            continue;
        }
        /* path or backend at the top of a route: the short form. */
        for (size_t j = 0; j + 1 < e->nkids; j += 2) {
            const char *name = conf_scalar(e->kids[j]);
            if (name && (strcmp(name, "backend") == 0 || strcmp(name, "path") == 0))
                is_short = true;
        }
        t.r.line = e->line;
        if (is_short) {
            good = conf_apply_map(d, short_keys, NSHORT_KEYS, e, &t,
                                  "in a route (the short form: path and backend)", seen);
            if (good)
                good = add_implicit_upstream(d, rc, &t);
            nshort++;
        } else {
            good = conf_apply_map(d, route_keys, NROUTE_KEYS, e, &t, "in a route", seen);
            const struct ynode *up = seen[NLIMIT_KEYS + 1], *split = seen[NLIMIT_KEYS + 2];
            const struct ynode *rw = seen[NLIMIT_KEYS + 3];
            if (!up && !split) {
                conf_report(d, e, "route needs upstream: NAME or split: [...]");
                good = false;
            } else if (up && split) {
                conf_report(d, split, "split: a route has upstream or split, not both");
                good = false;
            }
            if (rw && !t.r.path_prefix) {
                conf_report(d, rw, "rewrite: needs match.path_prefix, the part it replaces");
                good = false;
            }
        }
        if (good) {
            struct admit_step more[2];
            size_t nmore = 0;
            if (t.r.limits)
                more[nmore++] = (struct admit_step){limit_step, t.r.limits};
            if (t.r.auth)
                more[nmore++] = (struct admit_step){auth_step, t.r.auth};
            if (!admit_conf_finish(d, e, &t.r.admit, more, nmore))
                good = false;
        }
        for (size_t b = 0; b < NLIMIT_KEYS; b++)
            if (seen[b])
                t.r.lim_set |= 1u << b;
        if (is_short && t.r.path_prefix) {
            /* Two short-form routes on one path: the second could never
             * match. Checked whether or not the earlier route was valid. */
            const struct ynode *pn = seen[NLIMIT_KEYS];
            bool dup = false;
            for (size_t j = 0; j < nshort_paths && !dup; j++) {
                if (strcmp(short_paths[j]->text, t.r.path_prefix) == 0) {
                    conf_report(d, pn, "path: duplicate route path %s (first defined at line %d)",
                                conf_quote(t.r.path_prefix, strlen(t.r.path_prefix), q),
                                short_paths[j]->line);
                    good = false;
                    dup = true;
                }
            }
            if (!dup && pn)
                short_paths[nshort_paths++] = pn;
        }
        backend_free(&t.b);
        if (!good) {
            route_free(&t.r);
            ok = false;
            continue;
        }
        rc->routes[rc->nroutes++] = t.r;
    }
    free(short_paths);
    rc->short_form = ok && nshort == rc->nroutes;
    return ok;
}

/* ------------------------------------------------------------ finish */

static size_t prefix_len(const struct rc_route *r)
{
    return r->path_prefix ? strlen(r->path_prefix) : 0;
}

int route_conf_finish(struct route_conf *rc, const struct limits *core)
{
    for (size_t i = 0; i < rc->nroutes; i++) {
        struct rc_route *r = &rc->routes[i];
        struct limits over = r->lim;
        uint32_t set = r->lim_set;
        r->lim = *core;
        if (set & (1u << 0))
            r->lim.connect_timeout_ms = over.connect_timeout_ms;
        if (set & (1u << 1))
            r->lim.close_timeout_ms = over.close_timeout_ms;
        if (set & (1u << 2))
            r->lim.ping_interval_ms = over.ping_interval_ms;
        if (set & (1u << 3))
            r->lim.pong_timeout_ms = over.pong_timeout_ms;
        if (set & (1u << 4))
            r->lim.idle_timeout_ms = over.idle_timeout_ms;
        if (set & (1u << 5))
            r->lim.max_stall_ms = over.max_stall_ms;
        if (set & (1u << 6))
            r->lim.max_frame_size = over.max_frame_size;
        if (set & (1u << 7))
            r->lim.max_message_size = over.max_message_size;
        if (set & (1u << 8))
            r->lim.validate_utf8 = over.validate_utf8;
        if (set & (1u << 9))
            r->lim.request_timeout_ms = over.request_timeout_ms;
        if (set & (1u << 10))
            r->lim.response_timeout_ms = over.response_timeout_ms;
        if (set & (1u << 11))
            r->lim.http_idle_timeout_ms = over.http_idle_timeout_ms;
        if (set & (1u << 12))
            r->lim.max_request_body = over.max_request_body;
        for (size_t j = 0; j < r->nsplits; j++)
            r->splits[j].up = &rc->upstreams[r->splits[j].up_index];
    }
    /* The short form always meant "longest prefix wins": keep that for
     * files written only in it (a stable insertion sort: few routes). */
    if (rc->short_form) {
        for (size_t i = 1; i < rc->nroutes; i++) {
            struct rc_route r = rc->routes[i];
            size_t j = i;
            while (j > 0 && prefix_len(&rc->routes[j - 1]) < prefix_len(&r)) {
                rc->routes[j] = rc->routes[j - 1];
                j--;
            }
            rc->routes[j] = r;
        }
    }
    for (size_t i = 0; i < rc->nroutes; i++) {
        struct rc_route *r = &rc->routes[i];
        if (rc->short_form)
            snprintf(r->name, sizeof(r->name), "%.31s", r->path_prefix ? r->path_prefix : "/");
        else
            snprintf(r->name, sizeof(r->name), "route %zu", i + 1);
    }
    for (size_t i = 0; i < rc->nupstreams; i++) {
        struct rc_upstream *up = &rc->upstreams[i];
        char why[200];
        int rc2 = route_upstream_init(up);
        if (rc2 < 0)
            return rc2;
        up->has_tls = false;
        for (size_t j = 0; j < up->nbackends; j++)
            up->has_tls |= up->backends[j].tls;
        /* wss:// backends without a `tls:` section: verified against the
         * system's CAs. */
        if (up->has_tls && tls_client_conf_build(&up->tls, why, sizeof(why)) < 0)
            return ERR_NOMEM;
    }
    return 0;
}

int route_conf_add_default(struct route_conf *rc, const char *url, const char **why)
{
    struct conf_diag d = {.path = "--backend"};
    struct route_tmp t = {.rc = rc};
    struct rc_route *routes;
    int err;

    err = url_into(&t.b, url, why);
    if (err < 0)
        return err;
    t.b.url = strdup(url);
    if (!t.b.url) {
        backend_free(&t.b);
        return ERR_NOMEM;
    }
    /* A short-form "/" route from the file is replaced. */
    for (size_t i = 0; i < rc->nroutes; i++) {
        struct rc_route *r = &rc->routes[i];
        struct rc_upstream *up = &rc->upstreams[r->splits[0].up_index];
        if (r->path_prefix && strcmp(r->path_prefix, "/") == 0 && !r->host && !r->path &&
            !r->nheaders && !r->nquery && r->nsplits == 1 && up->implicit) {
            route_states_free(up);
            backend_free(&up->backends[0]);
            up->backends[0] = t.b;
            up->backends[0].weight = 1;
            free(up->name);
            up->name = strdup(url);
            return up->name ? 0 : ERR_NOMEM;
        }
    }
    t.r.path_prefix = strdup("/");
    routes = realloc(rc->routes, (rc->nroutes + 1) * sizeof(*routes));
    if (!t.r.path_prefix || !routes) {
        free(t.r.path_prefix);
        backend_free(&t.b);
        if (routes)
            rc->routes = routes;
        return ERR_NOMEM;
    }
    rc->routes = routes;
    if (!add_implicit_upstream(&d, rc, &t)) {
        route_free(&t.r);
        backend_free(&t.b);
        return ERR_NOMEM;
    }
    if (rc->nroutes == 0)
        rc->short_form = true;
    rc->routes[rc->nroutes++] = t.r;
    return 0;
}

int route_conf_check(const struct route_conf *rc, FILE *errs)
{
    if (rc->nroutes == 0) {
        if (errs)
            fprintf(errs, "wsgate: no routes: add routes to the config file or pass --backend\n");
        return 1;
    }
    return 0;
}

void route_conf_free(struct route_conf *rc)
{
    if (!rc)
        return;
    for (size_t i = 0; i < rc->nroutes; i++)
        route_free(&rc->routes[i]);
    free(rc->routes);
    for (size_t i = 0; i < rc->nupstreams; i++)
        upstream_free(&rc->upstreams[i]);
    free(rc->upstreams);
    rc->routes = NULL;
    rc->upstreams = NULL;
    rc->nroutes = rc->nupstreams = 0;
}
