/* Configuration: the core keys and the assembly of the sections (see
 * config.h). The engine (engine.c) does the YAML, the messages and the
 * typed keys; route/route_conf.c parses `upstreams:` and `routes:`. */
#include "config/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define MAX_FILE_SIZE (1024 * 1024) /* a config file larger than this is a mistake */

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

static void listeners_free(struct config *c)
{
    for (size_t i = 0; i < c->nlisteners; i++) {
        tls_conf_free(&c->listeners[i].tls);
        admit_ip_free(&c->listeners[i].ip);
    }
    free(c->listeners);
    c->listeners = NULL;
    c->nlisteners = 0;
}

/* Replace the listeners with one plain listener on addr. */
static int set_one_listener(struct config *c, const struct conf_addr *addr)
{
    struct conf_listener *l = calloc(1, sizeof(*l));

    if (!l)
        return ERR_NOMEM;
    listeners_free(c);
    l->addr = *addr;
    c->listeners = l;
    c->nlisteners = 1;
    return 0;
}

static bool parse_listen(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base)
{
    struct config *c = base;
    struct conf_addr a;
    char q[CONF_QUOTE_BUF];
    const char *why = NULL;
    const char *s = conf_scalar(v);

    if (!s) {
        conf_bad_value(d, k->name, v, "an address such as 127.0.0.1:8080, [::1]:8080 or *:8080");
        return false;
    }
    if (conf_parse_listen(s, &a, &why) != 0) {
        conf_report(d, v, "listen: %s, got %s", why, conf_quote(s, v->len, q));
        return false;
    }
    if (c->nlisteners > 0) {
        conf_report(d, v, "listen: use either listen or listeners, not both");
        return false;
    }
    if (set_one_listener(c, &a) != 0) {
        d->oom = true;
        return false;
    }
    return true;
}

static bool addr_port_zero(const struct conf_addr *a)
{
    size_t n = strlen(a->text);

    return n >= 2 && strcmp(a->text + n - 2, ":0") == 0;
}

struct listener_parse {
    char *address;
    struct admit_ip ip;
    bool proxy_protocol;
    struct conf_listener *l;
    struct conf_diag *d;
};

static bool parse_listener_tls(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                               void *base)
{
    struct listener_parse *lp = base;

    lp->l->has_tls = true;
    return tls_conf_parse(d, v, &lp->l->tls);
}

static const struct conf_key listener_keys[] = {
    {.name = "address",
     .kind = CK_STRING,
     CONF_FIELD(struct listener_parse, address, CF_STRING),
     .required = true},
    {.name = "tls",
     .kind = CK_CUSTOM,
     .parse = parse_listener_tls,
     .expected = "a mapping with certificates"},
    {.name = "allow",
     .kind = CK_CUSTOM,
     .parse = admit_parse_allow,
     .off = offsetof(struct listener_parse, ip),
     .expected = "a sequence of addresses or CIDR ranges"},
    {.name = "deny",
     .kind = CK_CUSTOM,
     .parse = admit_parse_deny,
     .off = offsetof(struct listener_parse, ip),
     .expected = "a sequence of addresses or CIDR ranges"},
    {.name = "proxy_protocol",
     .kind = CK_BOOL,
     CONF_FIELD(struct listener_parse, proxy_protocol, CF_BOOL)},
};

static bool parse_listeners(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                            void *base)
{
    struct config *c = base;
    char q[CONF_QUOTE_BUF];
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0) {
        conf_bad_value(d, k->name, v, "a non-empty sequence of {address: ..., tls: ...}");
        return false;
    }
    if (v->nkids > MAX_LISTENERS) {
        conf_report(d, v, "listeners: at most %d, got %zu", MAX_LISTENERS, v->nkids);
        return false;
    }
    if (c->nlisteners > 0) {
        conf_report(d, v, "listeners: use either listen or listeners, not both");
        return false;
    }
    c->listeners = calloc(v->nkids, sizeof(*c->listeners));
    if (!c->listeners) {
        d->oom = true;
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        struct conf_listener *l = &c->listeners[c->nlisteners];
        struct listener_parse lp = {.l = l, .d = d};
        const struct ynode *seen[5];
        const char *why = NULL;
        bool good;

        if (e->bad) {
            ok = false;
            continue;
        }
        if (e->type != Y_MAP) {
            conf_bad_value(d, "listeners", e, "a mapping {address: HOST:PORT, tls: {...}}");
            ok = false;
            continue;
        }
        good = conf_apply_map(d, listener_keys, 5, e, &lp, "in a listener", seen);
        l->ip = lp.ip;
        l->proxy_protocol = lp.proxy_protocol;
        if (good && conf_parse_listen(lp.address, &l->addr, &why) != 0) {
            conf_report(d, seen[0], "address: %s, got %s", why,
                        conf_quote(lp.address, strlen(lp.address), q));
            good = false;
        }
        for (size_t j = 0; good && j < c->nlisteners; j++) {
            if (c->listeners[j].addr.len == l->addr.len &&
                memcmp(&c->listeners[j].addr.sa, &l->addr.sa, l->addr.len) == 0 &&
                !addr_port_zero(&l->addr)) {
                conf_report(d, seen[0], "address: %s is already a listener", l->addr.text);
                good = false;
            }
        }
        free(lp.address);
        if (!good) {
            tls_conf_free(&l->tls);
            admit_ip_free(&l->ip);
            memset(l, 0, sizeof(*l));
            ok = false;
            continue;
        }
        c->nlisteners++;
    }
    return ok;
}

/* upstreams: and routes: are applied after the other keys, upstreams
 * first, whatever their order in the file (a route names an upstream). */
static bool later(struct conf_diag *d, const struct conf_key *k, const struct ynode *v, void *base)
{
    return true;
}

#define F(member, cf) CONF_FIELD(struct config, member, cf)

static const struct conf_key keys[] = {
    {.name = "listen",
     .kind = CK_CUSTOM,
     .parse = parse_listen,
     .expected = "an address such as 127.0.0.1:8080"},
    {.name = "listeners",
     .kind = CK_CUSTOM,
     .parse = parse_listeners,
     .expected = "a sequence of {address: ..., tls: ...}"},
    {.name = "workers", .kind = CK_AUTO, F(workers, CF_UNSIGNED), .max = 256},
    {.name = "max_connections", .kind = CK_AUTO, F(max_connections, CF_UNSIGNED), .max = 1000000},
    {.name = "log_level", .kind = CK_ENUM, F(log_level, CF_INT), .names = level_names},
    {.name = "handshake_timeout",
     .kind = CK_DURATION,
     F(handshake_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "connect_timeout",
     .kind = CK_DURATION,
     F(lim.connect_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "close_timeout",
     .kind = CK_DURATION,
     F(lim.close_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "ping_interval",
     .kind = CK_DURATION,
     F(lim.ping_interval_ms, CF_U64),
     .min = 0,
     .max = CONF_MAX_DURATION_MS},
    {.name = "pong_timeout",
     .kind = CK_DURATION,
     F(lim.pong_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "idle_timeout",
     .kind = CK_DURATION,
     F(lim.idle_timeout_ms, CF_U64),
     .min = 0,
     .max = CONF_MAX_DURATION_MS},
    {.name = "max_stall",
     .kind = CK_DURATION,
     F(lim.max_stall_ms, CF_U64),
     .min = 0,
     .max = CONF_MAX_DURATION_MS},
    {.name = "shutdown_timeout",
     .kind = CK_DURATION,
     F(shutdown_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "max_header_size",
     .kind = CK_SIZE,
     F(max_header_size, CF_SIZE),
     .min = CONF_KIB,
     .max = CONF_MIB},
    {.name = "max_headers", .kind = CK_UINT, F(max_headers, CF_UNSIGNED), .min = 1, .max = 1000},
    {.name = "max_frame_size",
     .kind = CK_SIZE,
     F(lim.max_frame_size, CF_U64),
     .min = 1,
     .max = (uint64_t)1 << 40},
    {.name = "max_message_size",
     .kind = CK_SIZE,
     F(lim.max_message_size, CF_U64),
     .min = 1,
     .max = (uint64_t)1 << 40},
    {.name = "validate_utf8", .kind = CK_BOOL, F(lim.validate_utf8, CF_BOOL)},
    {.name = "high_watermark",
     .kind = CK_SIZE,
     F(lim.high_watermark, CF_SIZE),
     .min = 16 * CONF_KIB,
     .max = 64 * CONF_MIB},
    {.name = "low_watermark",
     .kind = CK_SIZE,
     F(lim.low_watermark, CF_SIZE),
     .min = 1,
     .max = 64 * CONF_MIB - 1},
    {.name = "merge_slashes", .kind = CK_BOOL, F(merge_slashes, CF_BOOL)},
    {.name = "request_timeout",
     .kind = CK_DURATION,
     F(lim.request_timeout_ms, CF_U64),
     .min = 0,
     .max = CONF_MAX_DURATION_MS},
    {.name = "response_timeout",
     .kind = CK_DURATION,
     F(lim.response_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "http_idle_timeout",
     .kind = CK_DURATION,
     F(lim.http_idle_timeout_ms, CF_U64),
     .min = 1,
     .max = CONF_MAX_DURATION_MS},
    {.name = "max_request_body",
     .kind = CK_SIZE,
     F(lim.max_request_body, CF_U64),
     .min = 0,
     .max = (uint64_t)1 << 40},
    {.name = "trusted_proxies",
     .kind = CK_CUSTOM,
     .parse = admit_parse_cidrs,
     .off = offsetof(struct config, trusted_proxies),
     .expected = "a sequence of addresses or CIDR ranges"},
    {.name = "upstreams",
     .kind = CK_CUSTOM,
     .parse = later,
     .expected = "a mapping of upstream names to pools"},
    {.name = "routes",
     .kind = CK_CUSTOM,
     .parse = later,
     .required = true,
     .expected = "a sequence of routes"},
};

#undef F

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static size_t key_index(const char *name)
{
    return (size_t)(conf_key_find(keys, NKEYS, name) - keys);
}

void config_defaults(struct config *c)
{
    *c = (struct config){
        .workers = 0,
        .max_connections = 0,
        .log_level = LOG_LEVEL_INFO,
        .handshake_timeout_ms = 10000,
        .shutdown_timeout_ms = 10000,
        .max_header_size = 16 * CONF_KIB,
        .max_headers = 100,
        .merge_slashes = true,
        .lim =
            {
                .connect_timeout_ms = 5000,
                .close_timeout_ms = 5000,
                .ping_interval_ms = 30000,
                .pong_timeout_ms = 10000,
                .idle_timeout_ms = 0,
                .max_stall_ms = 300000,
                .max_frame_size = 16 * CONF_MIB,
                .max_message_size = 16 * CONF_MIB,
                .validate_utf8 = true,
                .high_watermark = 256 * CONF_KIB,
                .low_watermark = 64 * CONF_KIB,
                .request_timeout_ms = 60000,
                .response_timeout_ms = 60000,
                .http_idle_timeout_ms = 60000,
                .max_request_body = 0,
            },
    };
}

void config_clear(struct config *c)
{
    if (!c)
        return;
    route_conf_free(&c->routing);
    listeners_free(c);
    cidr_list_free(&c->trusted_proxies);
}

void config_free(struct config *c)
{
    config_clear(c);
    free(c);
}

int config_finish(struct config *c)
{
    return route_conf_finish(&c->routing, &c->lim);
}

/* Whether a size key's node (absent: the default) holds a valid value. */
static bool value_ok(const struct conf_key *k, const struct ynode *v)
{
    const char *s = v ? conf_scalar(v) : NULL;
    uint64_t x;

    if (!v)
        return true;
    return s && conf_parse_size(s, &x) == 0 && x >= k->min && x <= k->max;
}

static void apply_tree(struct conf_diag *d, const struct ynode *root, struct config *c)
{
    const struct ynode *seen[NKEYS];
    char q[CONF_QUOTE_BUF], buf[32];
    size_t ups = key_index("upstreams"), routes = key_index("routes");
    size_t lo = key_index("low_watermark"), hi = key_index("high_watermark");

    if (root->type == Y_SCALAR && root->null) {
        conf_report_at(d, 1, 1, "missing required key \"listen\"");
        conf_report_at(d, 1, 1, "missing required key \"routes\"");
        return;
    }
    if (root->type != Y_MAP) {
        conf_report(d, root,
                    "expected a mapping of settings (key: value lines) at the top level, got %s",
                    conf_describe(root, q));
        return;
    }
    conf_apply_map(d, keys, NKEYS, root, c, NULL, seen);
    if (!seen[key_index("listen")] && !seen[key_index("listeners")])
        conf_report(d, root, "missing required key \"listen\"");
    /* A PROXY header is believed only from trusted proxies. */
    for (size_t i = 0; i < c->nlisteners; i++) {
        if (c->listeners[i].proxy_protocol && c->trusted_proxies.n == 0) {
            conf_report(d, seen[key_index("listeners")],
                        "listeners: proxy_protocol: true needs trusted_proxies (the addresses of "
                        "the load balancers that send the header)");
            break;
        }
    }
    if (seen[ups] && !seen[ups]->bad)
        route_conf_upstreams(d, &c->routing, seen[ups]);
    if (seen[routes] && !seen[routes]->bad)
        route_conf_routes(d, &c->routing, seen[routes]);

    /* low < high, when both values themselves were valid. */
    if (value_ok(&keys[lo], seen[lo]) && value_ok(&keys[hi], seen[hi]) &&
        c->lim.low_watermark >= c->lim.high_watermark) {
        if (seen[lo] && conf_scalar(seen[lo])) {
            conf_fmt_size(c->lim.high_watermark, buf, sizeof(buf));
            conf_report(d, seen[lo], "low_watermark: must be less than high_watermark (%s), got %s",
                        buf, conf_quote(seen[lo]->text, seen[lo]->len, q));
        } else if (seen[hi] && conf_scalar(seen[hi])) {
            conf_fmt_size(c->lim.low_watermark, buf, sizeof(buf));
            conf_report(
                d, seen[hi],
                "high_watermark: must be greater than low_watermark (%s by default), got %s", buf,
                conf_quote(seen[hi]->text, seen[hi]->len, q));
        }
    }
}

/* The whole file into a malloc'd, NUL-terminated buffer. */
static int read_file(const char *path, FILE *errs, char **bufp, size_t *lenp)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        if (errs)
            fprintf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        return ERR_CONFIG;
    }
    char *buf = malloc(MAX_FILE_SIZE + 2);
    if (!buf) {
        fclose(f);
        return ERR_NOMEM;
    }
    size_t len = fread(buf, 1, MAX_FILE_SIZE + 1, f);
    int saved = errno;
    if (ferror(f)) {
        if (errs)
            fprintf(errs, "%s: cannot read: %s\n", path, strerror(saved));
        free(buf);
        fclose(f);
        return ERR_CONFIG;
    }
    fclose(f);
    if (len > MAX_FILE_SIZE) {
        if (errs)
            fprintf(errs, "%s: file is larger than %d bytes; is it the right file?\n", path,
                    MAX_FILE_SIZE);
        free(buf);
        return ERR_CONFIG;
    }
    buf[len] = '\0';
    *bufp = buf;
    *lenp = len;
    return 0;
}

int config_load_file(const char *path, FILE *errs, struct config **out)
{
    struct conf_diag d = {.path = path};
    struct ytree *t = NULL;
    const struct ynode *root;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = read_file(path, errs, &buf, &len);
    struct config *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (rc == ERR_NOMEM || (rc == 0 && !c)) {
        if (errs)
            fprintf(errs, "%s: out of memory while reading the configuration\n", path);
        free(buf);
        return ERR_NOMEM;
    }
    if (rc != 0)
        return rc;
    config_defaults(c);

    root = conf_parse_yaml(&d, buf, len, &t);
    if (root)
        apply_tree(&d, root, c);
    conf_tree_free(t);
    free(buf);

    if (d.oom)
        rc = ERR_NOMEM;
    else if (!root || d.n > 0)
        rc = ERR_CONFIG;
    else if (config_finish(c) != 0)
        rc = ERR_NOMEM;
    if (rc == ERR_NOMEM)
        d.oom = true;
    conf_diag_flush(&d, errs);
    if (rc != 0) {
        config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int config_set_flag(struct config *c, const char *key, const char *flag, const char *text,
                    FILE *errs)
{
    const struct conf_key *k = conf_key_find(keys, NKEYS, key);
    const char *why = NULL;

    if (!k)
        return ERR_CONFIG;
    if (strcmp(key, "listen") == 0) {
        struct conf_addr a;
        if (conf_parse_listen(text, &a, &why) != 0) {
            if (errs)
                fprintf(errs, "wsgate: %s: %s, got \"%s\"\n", flag, why, text);
            return ERR_CONFIG;
        }
        /* The flag replaces every listener of the file. */
        return set_one_listener(c, &a);
    }
    return conf_apply_text(k, flag, text, c, errs) ? 0 : ERR_CONFIG;
}

int config_set_backend(struct config *c, const char *url, FILE *errs)
{
    const char *why = NULL;
    int rc = route_conf_add_default(&c->routing, url, &why);

    if (rc == ERR_CONFIG && errs)
        fprintf(errs, "wsgate: --backend %s: %s\n", url, why ? why : "invalid URL");
    return rc;
}

int config_validate(const struct config *c, FILE *errs)
{
    int bad = 0;

    if (c->nlisteners == 0) {
        if (errs)
            fprintf(errs,
                    "wsgate: no listen address: set listen in the config file or pass --listen\n");
        bad++;
    }
    bad += route_conf_check(&c->routing, errs);
    bad += conf_check_ranges(keys, NKEYS, c, errs);
    if (c->lim.low_watermark >= c->lim.high_watermark) {
        if (errs)
            fprintf(errs, "wsgate: low_watermark (%zu) must be less than high_watermark (%zu)\n",
                    c->lim.low_watermark, c->lim.high_watermark);
        bad++;
    }
    return bad ? ERR_CONFIG : 0;
}
