/* The configuration engine: YAML tree with positions, diagnostics, typed
 * key tables and value parsers (see engine.h). */
#include "config/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libfyaml.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ---------------------------------------------------------------- errors */

struct conf_err {
    int line, col; /* 1-based position the message is about */
    size_t seq;    /* report order, keeps the sort stable */
    char *msg;
};

void conf_report_at(struct conf_diag *d, int line, int col, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct conf_err *v = realloc(d->v, cap * sizeof(*v));
        if (!v) {
            d->oom = true;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    char *msg = strdup(buf);
    if (!msg) {
        d->oom = true;
        return;
    }
    d->v[d->n] = (struct conf_err){.line = line, .col = col, .seq = d->n, .msg = msg};
    d->n++;
}

static int cerr_cmp(const void *a, const void *b)
{
    const struct conf_err *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Print every collected error in file order and release them. */
void conf_diag_flush(struct conf_diag *d, FILE *errs)
{
    if (d->n > 1)
        qsort(d->v, d->n, sizeof(*d->v), cerr_cmp);
    for (size_t i = 0; i < d->n; i++) {
        if (errs)
            fprintf(errs, "%s:%d:%d: %s\n", d->path, d->v[i].line, d->v[i].col, d->v[i].msg);
        free(d->v[i].msg);
    }
    if (d->oom && errs)
        fprintf(errs, "%s: out of memory while reading the configuration\n", d->path);
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

/* Echo a value back inside double quotes, escaped, at most CONF_QUOTE_MAX bytes
 * of it (cut on a UTF-8 character boundary). buf needs CONF_QUOTE_BUF bytes. */
const char *conf_quote(const char *s, size_t len, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, n = len;

    if (n > CONF_QUOTE_MAX) {
        n = CONF_QUOTE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    if (n < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

void conf_report(struct conf_diag *d, const struct ynode *at, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    conf_report_at(d, at ? at->line : 1, at ? at->col : 1, "%s", buf);
}

void conf_bad_value(struct conf_diag *d, const char *key, const struct ynode *v,
                    const char *expected)
{
    char q[CONF_QUOTE_BUF];

    conf_report(d, v, "%s: expected %s, got %s", key, expected, conf_describe(v, q));
}

/* ---------------------------------------------------- scalar value parsers */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parse the leading run of digits of s into *v. Returns the number of
 * digits (0 if none) or -1 on overflow. */
static int parse_digits(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    int n = 0;

    for (; is_digit(s[n]); n++) {
        unsigned d = (unsigned)(s[n] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return n;
}

/* A whole string of decimal digits, no sign, no spaces. */
int conf_parse_uint(const char *s, uint64_t *v)
{
    int n = parse_digits(s, v);

    return (n > 0 && s[n] == '\0') ? 0 : ERR_CONFIG;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b != 0 && a > UINT64_MAX / b)
        return ERR_CONFIG;
    *out = a * b;
    return 0;
}

int conf_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
    uint64_t v;

    if (!s)
        return ERR_CONFIG;
    if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int n = parse_digits(s, &v);
    if (n <= 0)
        return ERR_CONFIG;
    /* A bare number other than 0 has no unit: seconds or milliseconds is a
     * guess we refuse to make. */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].unit) == 0)
            return mul_checked(v, units[i].ms, ms);
    return ERR_CONFIG;
}

int conf_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},           {"B", 1},          {"KiB", CONF_KIB}, {"k", CONF_KIB},
        {"K", CONF_KIB},   {"MiB", CONF_MIB}, {"m", CONF_MIB},   {"M", CONF_MIB},
        {"GiB", CONF_GIB}, {"g", CONF_GIB},   {"G", CONF_GIB},
    };
    uint64_t v;

    if (!s)
        return ERR_CONFIG;
    int n = parse_digits(s, &v);
    if (n <= 0)
        return ERR_CONFIG;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].suffix) == 0)
            return mul_checked(v, units[i].mult, bytes);
    return ERR_CONFIG;
}

/* "16KiB", "1MiB", "1024GiB", or a plain byte count. */
void conf_fmt_size(uint64_t v, char *buf, size_t n)
{
    if (v && v % CONF_GIB == 0)
        snprintf(buf, n, "%lluGiB", (unsigned long long)(v / CONF_GIB));
    else if (v && v % CONF_MIB == 0)
        snprintf(buf, n, "%lluMiB", (unsigned long long)(v / CONF_MIB));
    else if (v && v % CONF_KIB == 0)
        snprintf(buf, n, "%lluKiB", (unsigned long long)(v / CONF_KIB));
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

void conf_fmt_duration(uint64_t ms, char *buf, size_t n)
{
    if (ms && ms % 3600000 == 0)
        snprintf(buf, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms && ms % 1000 == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
}

/* --------------------------------------------------------------- addresses */

/* Canonical numeric "ip:port" or "[ip]:port" text of a resolved address. */
static int addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t outsz)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return ERR_CONFIG;
    int w = snprintf(out, outsz, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    return (w < 0 || (size_t)w >= outsz) ? ERR_CONFIG : 0;
}

static const char *gai_why(int rc)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_AGAIN:
    case EAI_FAIL:
        return "host name does not resolve";
    case EAI_MEMORY:
        return "out of memory";
    default:
        return gai_strerror(rc);
    }
}

/* Split "host:port" or "[v6]:port" (the ":port" part may be absent). host is
 * copied into hostbuf without brackets; *portp points into s, NULL when there
 * is no port. */
static int split_host_port(const char *s, size_t slen, char *hostbuf, size_t hostsz,
                           bool *bracketed, const char **portp, size_t *portlen, const char **why)
{
    const char *host, *rest;
    size_t hlen;

    *bracketed = false;
    *portp = NULL;
    *portlen = 0;
    if (slen > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', slen);
        if (!close) {
            *why = "missing ']' after the IPv6 address";
            return ERR_CONFIG;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        rest = close + 1;
        *bracketed = true;
        if (rest < s + slen && *rest != ':') {
            *why = "expected ':' and a port after ']'";
            return ERR_CONFIG;
        }
    } else {
        const char *colon = NULL;
        for (size_t i = 0; i < slen; i++)
            if (s[i] == ':')
                colon = s + i;
        host = s;
        hlen = colon ? (size_t)(colon - s) : slen;
        rest = colon ? colon : s + slen;
        if (memchr(host, ':', hlen)) {
            *why = "an IPv6 address needs brackets, e.g. [::1]:8080";
            return ERR_CONFIG;
        }
    }
    if (rest < s + slen) {
        *portp = rest + 1;
        *portlen = (size_t)(s + slen - *portp);
    }
    if (hlen >= hostsz) {
        *why = "host name is too long";
        return ERR_CONFIG;
    }
    memcpy(hostbuf, host, hlen);
    hostbuf[hlen] = '\0';
    return 0;
}

/* "0".."65535" as exactly the given bytes; copies it NUL-terminated to buf. */
static int parse_port(const char *p, size_t len, unsigned min, char buf[6])
{
    uint64_t v = 0;

    if (len == 0 || len > 5)
        return ERR_CONFIG;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return ERR_CONFIG;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v < min || v > 65535)
        return ERR_CONFIG;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

static int resolve(const char *host, const char *port, int family, int flags, struct conf_addr *out,
                   const char **why)
{
    struct addrinfo hints = {0}, *res = NULL;
    struct conf_addr a = {0};

    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | flags;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *why = (flags & AI_NUMERICHOST) ? "not a valid IPv6 address" : gai_why(rc);
        return ERR_CONFIG;
    }
    if (!res || res->ai_addrlen > sizeof(a.sa)) {
        freeaddrinfo(res);
        *why = "host name does not resolve";
        return ERR_CONFIG;
    }
    memcpy(&a.sa, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    freeaddrinfo(res);
    if (addr_text((const struct sockaddr *)&a.sa, a.len, a.text, sizeof(a.text)) != 0) {
        *why = "address is too long to display";
        return ERR_CONFIG;
    }
    *out = a;
    return 0;
}

int conf_parse_listen(const char *s, struct conf_addr *out, const char **why)
{
    const char *dummy, *port;
    char host[NI_MAXHOST], portbuf[6];
    size_t portlen;
    bool bracketed;

    if (!why)
        why = &dummy;
    if (!s) {
        *why = "expected host:port, [ipv6]:port or *:port";
        return ERR_CONFIG;
    }
    if (split_host_port(s, strlen(s), host, sizeof(host), &bracketed, &port, &portlen, why) != 0)
        return ERR_CONFIG;
    if (!port) {
        *why = "expected host:port, [ipv6]:port or *:port";
        return ERR_CONFIG;
    }
    if (parse_port(port, portlen, 0, portbuf) != 0) {
        *why = "port must be a number from 0 to 65535";
        return ERR_CONFIG;
    }
    if (bracketed)
        return resolve(host, portbuf, AF_INET6, AI_NUMERICHOST, out, why);
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        return resolve(NULL, portbuf, AF_INET, AI_PASSIVE, out, why);
    return resolve(host, portbuf, AF_UNSPEC, 0, out, why);
}

static bool ascii_prefix_nocase(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *prefix)
            return false;
    }
    return true;
}

/* A path for a backend URL: visible ASCII, no query or fragment. */
static bool valid_url_path(const char *p)
{
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static bool is_ipv4_literal(const char *h)
{
    struct in_addr a;

    return inet_pton(AF_INET, h, &a) == 1;
}

int conf_parse_ws_url(const char *url, struct conf_addr *out, char **path_out, const char **why)
{
    return conf_parse_backend_url(url, out, path_out, NULL, why);
}

int conf_parse_backend_url(const char *url, struct conf_addr *out, char **path_out,
                           struct conf_url *u, const char **why)
{
    static const char *const expected = "expected a URL such as ws://127.0.0.1:9000";
    const char *dummy, *port;
    char host[NI_MAXHOST], portbuf[6] = "80";
    bool tls = false;
    size_t portlen, plen;
    bool bracketed;
    struct conf_addr addr;
    char *path;

    if (!why)
        why = &dummy;
    if (!url) {
        *why = expected;
        return ERR_CONFIG;
    }
    if (ascii_prefix_nocase(url, "wss://")) {
        tls = true;
        memcpy(portbuf, "443", 4);
    } else if (!ascii_prefix_nocase(url, "ws://")) {
        *why = expected;
        return ERR_CONFIG;
    }
    const char *auth = url + (tls ? 6 : 5);
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (rest[0] == '?' || rest[0] == '#' || strpbrk(rest, "?#")) {
        *why = "a backend URL has no query or fragment";
        return ERR_CONFIG;
    }
    if (!valid_url_path(rest)) {
        *why = "the path of a backend URL is visible ASCII without spaces";
        return ERR_CONFIG;
    }
    if (alen == 0 || memchr(auth, '@', alen)) {
        *why = expected;
        return ERR_CONFIG;
    }
    if (split_host_port(auth, alen, host, sizeof(host), &bracketed, &port, &portlen, why) != 0)
        return ERR_CONFIG;
    if (host[0] == '\0') {
        *why = "backend URL has no host";
        return ERR_CONFIG;
    }
    if (port && parse_port(port, portlen, 1, portbuf) != 0) {
        *why = "port must be a number from 1 to 65535";
        return ERR_CONFIG;
    }
    if (resolve(host, portbuf, bracketed ? AF_INET6 : AF_UNSPEC, bracketed ? AI_NUMERICHOST : 0,
                &addr, why) != 0)
        return ERR_CONFIG;
    /* The backend's own path is prepended to what the client asked for,
     * so "/" and "" both mean none; a trailing '/' would double up. */
    plen = strlen(rest);
    while (plen > 0 && rest[plen - 1] == '/')
        plen--;
    path = strndup(rest, plen);
    if (!path) {
        *why = "out of memory";
        return ERR_NOMEM;
    }
    *out = addr;
    if (u) {
        /* A DNS name has at most 253 characters; resolve() took this one. */
        size_t hl = strnlen(host, sizeof(u->host) - 1);
        memcpy(u->host, host, hl);
        u->host[hl] = '\0';
        u->tls = tls;
        u->host_is_ip = bracketed || is_ipv4_literal(host);
    }
    if (path_out)
        *path_out = path;
    else
        free(path);
    return 0;
}
/* -------------------------------------------------------------- YAML tree */

struct anchor {
    char *name;
    size_t len;
    struct ynode *node; /* borrowed from the tree */
};

struct ytree {
    struct ynode **all; /* every node, owned here: aliases share nodes */
    size_t nall, capall;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    struct ynode **stack; /* open collections */
    size_t depth, capstack;
    struct ynode *root;
    int ndocs;
    bool oom;
};

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static struct ynode *ynew(struct ytree *t, enum ynode_type type, int line, int col)
{
    if (!grow((void **)&t->all, &t->capall, t->nall + 1, sizeof(*t->all)))
        return NULL;
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->type = type;
    n->line = line;
    n->col = col;
    t->all[t->nall++] = n;
    return n;
}

static void tree_release(struct ytree *t)
{
    for (size_t i = 0; i < t->nall; i++) {
        free(t->all[i]->text);
        free(t->all[i]->kids);
        free(t->all[i]);
    }
    for (size_t i = 0; i < t->nanchors; i++)
        free(t->anchors[i].name);
    free(t->all);
    free(t->anchors);
    free(t->stack);
}

static bool attach(struct ytree *t, struct ynode *n)
{
    if (t->depth == 0) {
        if (!t->root && t->ndocs <= 1)
            t->root = n;
        return true;
    }
    struct ynode *p = t->stack[t->depth - 1];
    if (!grow((void **)&p->kids, &p->capkids, p->nkids + 1, sizeof(*p->kids)))
        return false;
    p->kids[p->nkids++] = n;
    return true;
}

static bool add_anchor(struct ytree *t, struct fy_token *tok, struct ynode *n)
{
    size_t len;
    const char *name = tok ? fy_token_get_text(tok, &len) : NULL;

    if (!name)
        return true;
    if (!grow((void **)&t->anchors, &t->capanchors, t->nanchors + 1, sizeof(*t->anchors)))
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, name, len);
    copy[len] = '\0';
    t->anchors[t->nanchors++] = (struct anchor){.name = copy, .len = len, .node = n};
    return true;
}

static struct ynode *find_anchor(struct ytree *t, struct fy_token *tok)
{
    size_t len;
    const char *name = tok ? fy_token_get_text(tok, &len) : NULL;

    if (!name)
        return NULL;
    /* Newest first: YAML lets a later anchor of the same name win. */
    for (size_t i = t->nanchors; i-- > 0;)
        if (t->anchors[i].len == len && memcmp(t->anchors[i].name, name, len) == 0)
            return t->anchors[i].node;
    return NULL;
}

static bool scalar_eq(const struct ynode *a, const struct ynode *b)
{
    return a->type == Y_SCALAR && b->type == Y_SCALAR && a->len == b->len &&
           memcmp(a->text, b->text, a->len) == 0;
}

/* Index of an earlier key equal to key i of map m, or -1. */
static long earlier_key(const struct ynode *m, size_t i)
{
    for (size_t j = 0; j < i; j += 2)
        if (scalar_eq(m->kids[j], m->kids[i]))
            return (long)j;
    return -1;
}

/* How a node reads in a message: the quoted value, or what it is instead. */
const char *conf_describe(const struct ynode *n, char *buf)
{
    if (n->type == Y_SEQ)
        return n->nkids ? "a sequence" : "an empty sequence";
    if (n->type == Y_MAP)
        return n->nkids ? "a mapping" : "an empty mapping";
    if (n->null)
        return "nothing";
    return conf_quote(n->text, n->len, buf);
}

/* The text of a scalar usable as a C string, or NULL (a collection, no
 * value, or a NUL byte from an escape sequence). */
bool conf_file_path(struct conf_diag *d, char **name)
{
    const char *slash = d->path ? strrchr(d->path, '/') : NULL;
    size_t dir;
    char *full;

    if (!*name || (*name)[0] == '/' || !slash)
        return true;
    dir = (size_t)(slash - d->path) + 1;
    full = malloc(dir + strlen(*name) + 1);
    if (!full) {
        d->oom = true;
        return false;
    }
    memcpy(full, d->path, dir);
    strcpy(full + dir, *name);
    free(*name);
    *name = full;
    return true;
}

const char *conf_scalar(const struct ynode *n)
{
    if (n->type != Y_SCALAR || n->null || strlen(n->text) != n->len)
        return NULL;
    return n->text;
}

static void check_duplicate_keys(struct conf_diag *d, const struct ynode *m)
{
    char q[CONF_QUOTE_BUF];

    for (size_t i = 2; i < m->nkids; i += 2) {
        long j = earlier_key(m, i);
        if (j < 0)
            continue;
        const struct ynode *k = m->kids[i];
        conf_report_at(d, k->line, k->col, "duplicate key %s (first defined at line %d)",
                       conf_quote(k->text, k->len, q), m->kids[j]->line);
    }
}

static void diag_sink(struct fy_diag *fd, void *user, const char *buf, size_t len)
{
    /* Errors are collected and printed in our own format; drop the rest. */
}

struct builder {
    struct ytree *t;
    struct conf_diag *d;
    const char *buf; /* the file's bytes, to place marks of quoted scalars */
    size_t len;
    int line, col; /* position of the latest event that had one */
};

static struct ynode *on_scalar(struct builder *b, struct fy_event *ev, const struct fy_mark *m)
{
    struct fy_token *tok = ev->scalar.value;
    enum fy_scalar_style style = fy_token_scalar_style(tok);
    size_t len = 0;
    const char *text = fy_token_get_text(tok, &len);

    /* The mark of a quoted scalar is just inside the opening quote; point
     * at the quote, where the value starts for a reader. */
    if (m && (style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) && m->input_pos > 0 &&
        m->input_pos <= b->len && b->col > 1) {
        char qc = style == FYSS_SINGLE_QUOTED ? '\'' : '"';
        if (b->buf[m->input_pos - 1] == qc)
            b->col--;
    }
    struct ynode *n = ynew(b->t, Y_SCALAR, b->line, b->col);
    if (!n)
        return NULL;
    if (!text) {
        text = "";
        len = 0;
    }
    n->text = malloc(len + 1);
    if (!n->text)
        return NULL;
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->len = len;
    n->null = len == 0 && style == FYSS_PLAIN;
    if (!add_anchor(b->t, ev->scalar.anchor, n))
        return NULL;
    return n;
}

/* One parser event into the tree. Returns false when out of memory. */
static bool on_event(struct builder *b, struct fy_event *ev)
{
    struct ytree *t = b->t;
    const struct fy_mark *m = fy_event_start_mark(ev);
    struct ynode *n;

    if (m) {
        b->line = m->line + 1;
        b->col = m->column + 1;
    }
    switch (ev->type) {
    case FYET_DOCUMENT_START:
        if (++t->ndocs == 2)
            conf_report_at(b->d, b->line, b->col, "only one YAML document is allowed in the file");
        return true;
    case FYET_SCALAR:
        n = on_scalar(b, ev, m);
        return n && attach(t, n);
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START:
        n = ynew(t, ev->type == FYET_MAPPING_START ? Y_MAP : Y_SEQ, b->line, b->col);
        if (!n || !attach(t, n) ||
            !add_anchor(t,
                        ev->type == FYET_MAPPING_START ? ev->mapping_start.anchor
                                                       : ev->sequence_start.anchor,
                        n) ||
            !grow((void **)&t->stack, &t->capstack, t->depth + 1, sizeof(*t->stack)))
            return false;
        t->stack[t->depth++] = n;
        return true;
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        if (t->depth == 0)
            return true;
        n = t->stack[--t->depth];
        if (n->type == Y_MAP)
            check_duplicate_keys(b->d, n);
        return true;
    case FYET_ALIAS:
        /* The mark is on the name; point at the '*' that starts the alias. */
        if (m && m->input_pos > 0 && m->input_pos <= b->len && b->col > 1 &&
            b->buf[m->input_pos - 1] == '*')
            b->col--;
        n = find_anchor(t, ev->alias.anchor);
        if (!n) {
            size_t len = 0;
            const char *name = fy_token_get_text(ev->alias.anchor, &len);
            char q[CONF_QUOTE_BUF];
            if (!name)
                name = "";
            if (len > 0 && name[0] == ':')
                /* listen: *:8080 unquoted is an alias named ":8080". */
                conf_report_at(b->d, b->line, b->col,
                               "*%.*s is read as a YAML alias; quote it: \"*%.*s\"",
                               (int)(len > CONF_QUOTE_MAX ? CONF_QUOTE_MAX : len), name,
                               (int)(len > CONF_QUOTE_MAX ? CONF_QUOTE_MAX : len), name);
            else
                conf_report_at(b->d, b->line, b->col, "alias refers to an unknown anchor %s",
                               conf_quote(name, len, q));
            n = ynew(t, Y_SCALAR, b->line, b->col);
            if (!n || !(n->text = strdup("")))
                return false;
            n->null = n->bad = true;
        }
        return attach(t, n);
    default:
        return true;
    }
}

/* Parse the file's bytes into *t. Syntax errors are reported with their
 * position. Returns 0, ERR_CONFIG (syntax) or ERR_NOMEM. */
static int build_tree(struct conf_diag *d, const char *buf, size_t len, struct ytree *t)
{
    struct fy_diag_cfg dcfg;
    struct fy_event *ev;
    int rc = 0;

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL; /* never print to stderr: errors go through diag_sink */
    dcfg.output_fn = diag_sink;
    dcfg.colorize = false;
    struct fy_diag *fd = fy_diag_create(&dcfg);
    if (!fd)
        return ERR_NOMEM;
    fy_diag_set_collect_errors(fd, true);

    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET, .diag = fd};
    struct fy_parser *p = fy_parser_create(&pcfg);
    if (!p) {
        fy_diag_destroy(fd);
        return ERR_NOMEM;
    }
    struct builder b = {.t = t, .d = d, .buf = buf, .len = len, .line = 1, .col = 1};
    if (fy_parser_set_string(p, buf, len) != 0)
        rc = ERR_NOMEM;
    while (rc == 0 && (ev = fy_parser_parse(p)) != NULL) {
        if (!on_event(&b, ev))
            rc = ERR_NOMEM;
        fy_parser_event_free(p, ev);
    }

    if (rc == 0 && (fy_parser_get_stream_error(p) || fy_diag_got_error(fd))) {
        void *it = NULL;
        struct fy_diag_error *e;
        bool any = false;
        while ((e = fy_diag_errors_iterate(fd, &it)) != NULL) {
            if (e->type < FYET_ERROR)
                continue;
            /* Collected errors carry 1-based positions already. */
            conf_report_at(d, e->line > 0 ? e->line : b.line, e->column > 0 ? e->column : b.col,
                           "invalid YAML: %s", e->msg ? e->msg : "syntax error");
            any = true;
        }
        if (!any)
            conf_report_at(d, b.line, b.col, "invalid YAML");
        rc = ERR_CONFIG;
    }
    fy_parser_destroy(p);
    fy_diag_destroy(fd);
    return rc;
}

bool conf_dup_key(const struct ynode *m, size_t i)
{
    return earlier_key(m, i) >= 0;
}

const struct ynode *conf_parse_yaml(struct conf_diag *d, const char *buf, size_t len,
                                    struct ytree **treep)
{
    struct ytree *t = calloc(1, sizeof(*t));
    static struct ynode empty = {.type = Y_SCALAR, .line = 1, .col = 1, .text = "", .null = true};
    int rc;

    *treep = t;
    if (!t) {
        d->oom = true;
        return NULL;
    }
    rc = build_tree(d, buf, len, t);
    if (rc == ERR_NOMEM)
        d->oom = true;
    if (rc != 0)
        return NULL;
    return t->root ? t->root : &empty;
}

void conf_tree_free(struct ytree *t)
{
    if (!t)
        return;
    tree_release(t);
    free(t);
}

/* ------------------------------------------------------------ key tables */

static void field_store(const struct conf_key *k, void *base, uint64_t v)
{
    char *p = (char *)base + k->off;

    switch (k->field) {
    case CF_UNSIGNED:
        *(unsigned *)(void *)p = (unsigned)v;
        break;
    case CF_SIZE:
        *(size_t *)(void *)p = (size_t)v;
        break;
    case CF_U64:
        *(uint64_t *)(void *)p = v;
        break;
    case CF_BOOL:
        *(bool *)(void *)p = v != 0;
        break;
    case CF_INT:
        *(int *)(void *)p = (int)v;
        break;
    case CF_STRING:
    case CF_NONE:
        break;
    }
}

uint64_t conf_field_load(const struct conf_key *k, const void *base)
{
    const char *p = (const char *)base + k->off;

    switch (k->field) {
    case CF_UNSIGNED:
        return *(const unsigned *)(const void *)p;
    case CF_SIZE:
        return *(const size_t *)(const void *)p;
    case CF_U64:
        return *(const uint64_t *)(const void *)p;
    case CF_BOOL:
        return *(const bool *)(const void *)p;
    case CF_INT:
        return (uint64_t)(unsigned)*(const int *)(const void *)p;
    case CF_STRING:
    case CF_NONE:
        break;
    }
    return 0;
}

/* What a key accepts, as the "expected ..." part of a message. */
static void expectation(const struct conf_key *k, char *buf, size_t n)
{
    size_t o = 0;

    switch (k->kind) {
    case CK_AUTO:
        snprintf(buf, n, "\"auto\" or an integer from 1 to %llu", (unsigned long long)k->max);
        break;
    case CK_UINT:
        snprintf(buf, n, "an integer from %llu to %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
        break;
    case CK_DURATION:
        snprintf(buf, n, "a duration such as 500ms, 10s or 2m%s", k->min ? "" : ", or off");
        break;
    case CK_SIZE:
        snprintf(buf, n, "a size such as 64KiB or 16MiB");
        break;
    case CK_BOOL:
        snprintf(buf, n, "true or false");
        break;
    case CK_ENUM:
        o = (size_t)snprintf(buf, n, "one of ");
        for (size_t i = 0; k->names[i] && o < n; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", k->names[i]);
        break;
    case CK_STRING:
        snprintf(buf, n, "a string");
        break;
    case CK_CUSTOM:
        snprintf(buf, n, "%s", k->expected ? k->expected : "a valid value");
        break;
    }
}

const struct conf_key *conf_key_find(const struct conf_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Check scalar text s (from node v, or from a flag when v is NULL) for key
 * k; on success store it. Problems go to report(). */
struct sink {
    struct conf_diag *d; /* file: report at v */
    const struct ynode *v;
    FILE *errs; /* flags: print "wsgate: <name>: ..." */
    const char *name;
};

__attribute__((format(printf, 2, 3))) static void sink_say(struct sink *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (o->d)
        conf_report(o->d, o->v, "%s: %s", o->name, buf);
    else if (o->errs)
        fprintf(o->errs, "wsgate: %s: %s\n", o->name, buf);
}

static bool apply_scalar(struct sink *o, const struct conf_key *k, const char *s, size_t len,
                         void *base)
{
    char exp[256], q[CONF_QUOTE_BUF], lo[32], hi[32];
    uint64_t x = 0;

    expectation(k, exp, sizeof(exp));
    switch (k->kind) {
    case CK_AUTO:
        if (strcmp(s, "auto") == 0) {
            x = 0;
        } else if (conf_parse_uint(s, &x) != 0 || x < 1 || x > k->max) {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_UINT:
        if (conf_parse_uint(s, &x) != 0 || x < k->min || x > k->max) {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_DURATION:
        if (conf_parse_duration(s, &x) != 0) {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        if (x < k->min && k->min > 1) {
            conf_fmt_duration(k->min, lo, sizeof(lo));
            sink_say(o, "expected a duration of at least %s, got %s", lo, conf_quote(s, len, q));
            return false;
        }
        if (x < k->min) {
            sink_say(o, "expected a duration greater than 0 (this timeout cannot be off), got %s",
                     conf_quote(s, len, q));
            return false;
        }
        if (x > k->max) {
            conf_fmt_duration(k->max, hi, sizeof(hi));
            sink_say(o, "expected a duration of at most %s, got %s", hi, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_SIZE:
        if (conf_parse_size(s, &x) != 0) {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        if (x < k->min || x > k->max) {
            conf_fmt_size(k->min, lo, sizeof(lo));
            conf_fmt_size(k->max, hi, sizeof(hi));
            sink_say(o, "expected a size from %s to %s, got %s", lo, hi, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_BOOL:
        if (strcmp(s, "true") == 0) {
            x = 1;
        } else if (strcmp(s, "false") == 0) {
            x = 0;
        } else {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_ENUM:
        for (x = 0; k->names[x]; x++)
            if (strcmp(s, k->names[x]) == 0)
                break;
        if (!k->names[x]) {
            sink_say(o, "expected %s, got %s", exp, conf_quote(s, len, q));
            return false;
        }
        break;
    case CK_STRING: {
        char **slot = (char **)(void *)((char *)base + k->off);
        char *copy = strdup(s);
        if (!copy) {
            if (o->d)
                o->d->oom = true;
            return false;
        }
        free(*slot);
        *slot = copy;
        return true;
    }
    case CK_CUSTOM:
        return false; /* handled by the caller */
    }
    field_store(k, base, x);
    return true;
}

bool conf_apply_map(struct conf_diag *d, const struct conf_key *keys, size_t n,
                    const struct ynode *m, void *base, const char *where, const struct ynode **seen)
{
    char q[CONF_QUOTE_BUF], exp[256], known[512];
    bool ok = true;
    size_t o = 0;

    if (seen)
        for (size_t i = 0; i < n; i++)
            seen[i] = NULL;
    for (size_t i = 0; i < n && o < sizeof(known); i++)
        o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", keys[i].name);
    for (size_t i = 0; i + 1 < m->nkids; i += 2) {
        const struct ynode *kn = m->kids[i], *v = m->kids[i + 1];
        const char *name = conf_scalar(kn);
        const struct conf_key *k;
        if (!name) {
            conf_report(d, kn, "expected a key name, got %s", conf_describe(kn, q));
            ok = false;
            continue;
        }
        if (conf_dup_key(m, i)) {
            ok = false; /* reported while building the tree */
            continue;
        }
        k = conf_key_find(keys, n, name);
        if (!k) {
            if (where)
                conf_report(d, kn, "unknown key %s %s (expected one of: %s)",
                            conf_quote(kn->text, kn->len, q), where, known);
            else
                conf_report(d, kn, "unknown key %s", conf_quote(kn->text, kn->len, q));
            ok = false;
            continue;
        }
        if (seen)
            seen[k - keys] = v;
        if (v->bad) {
            ok = false;
            continue;
        }
        if (k->kind == CK_CUSTOM) {
            if (!k->parse(d, k, v, base))
                ok = false;
            continue;
        }
        const char *s = conf_scalar(v);
        if (!s) {
            expectation(k, exp, sizeof(exp));
            conf_bad_value(d, k->name, v, exp);
            ok = false;
            continue;
        }
        struct sink sk = {.d = d, .v = v, .name = k->name};
        if (!apply_scalar(&sk, k, s, v->len, base))
            ok = false;
    }
    for (size_t i = 0; i < n; i++) {
        bool present = false;
        if (!keys[i].required)
            continue;
        for (size_t j = 0; j + 1 < m->nkids && !present; j += 2) {
            const char *name = conf_scalar(m->kids[j]);
            present = name && strcmp(name, keys[i].name) == 0;
        }
        if (!present) {
            if (where)
                conf_report(d, m, "missing required key \"%s\" %s", keys[i].name, where);
            else
                conf_report(d, m, "missing required key \"%s\"", keys[i].name);
            ok = false;
        }
    }
    return ok;
}

bool conf_apply_text(const struct conf_key *k, const char *flag, const char *text, void *base,
                     FILE *errs)
{
    struct sink sk = {.errs = errs, .name = flag};

    if (k->kind == CK_CUSTOM)
        return false;
    return apply_scalar(&sk, k, text, strlen(text), base);
}

int conf_check_ranges(const struct conf_key *keys, size_t n, const void *base, FILE *errs)
{
    char lo[32], hi[32];
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &keys[i];
        uint64_t v = conf_field_load(k, base);
        switch (k->kind) {
        case CK_AUTO:
        case CK_UINT:
            if ((k->kind == CK_AUTO && v == 0) || (v >= k->min && v <= k->max))
                break;
            if (errs)
                fprintf(errs, "wsgate: %s must be %s%llu to %llu, got %llu\n", k->name,
                        k->kind == CK_AUTO ? "auto (0) or " : "",
                        (unsigned long long)(k->min ? k->min : 1), (unsigned long long)k->max,
                        (unsigned long long)v);
            bad++;
            break;
        case CK_ENUM: {
            size_t count = 0;
            while (k->names[count])
                count++;
            if (v >= count) {
                if (errs)
                    fprintf(errs, "wsgate: %s is out of range\n", k->name);
                bad++;
            }
            break;
        }
        case CK_DURATION:
            if (v < k->min) {
                if (errs)
                    fprintf(errs, "wsgate: %s must be greater than 0 (it cannot be off)\n",
                            k->name);
                bad++;
            } else if (v > k->max) {
                conf_fmt_duration(k->max, hi, sizeof(hi));
                if (errs)
                    fprintf(errs, "wsgate: %s must be at most %s\n", k->name, hi);
                bad++;
            }
            break;
        case CK_SIZE:
            if (v < k->min || v > k->max) {
                conf_fmt_size(k->min, lo, sizeof(lo));
                conf_fmt_size(k->max, hi, sizeof(hi));
                if (errs)
                    fprintf(errs, "wsgate: %s must be from %s to %s, got %llu\n", k->name, lo, hi,
                            (unsigned long long)v);
                bad++;
            }
            break;
        default:
            break;
        }
    }
    return bad;
}
