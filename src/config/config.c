/* Configuration: YAML file -> validated snapshot.
 *
 * libfyaml 0.7's public API has no source marks on document nodes, so the
 * file is read through the event API and turned into a small tree whose
 * nodes carry their own line:column. Validation walks that tree, collects
 * every problem with its position, and prints them sorted by position. */
#include "config/config.h"

#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libfyaml.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define MAX_FILE_SIZE   (1024 * 1024)           /* a config file larger than this is a mistake */
#define MAX_DURATION_MS (8760ull * 3600 * 1000) /* one year: keeps timer arithmetic safe */
#define MAX_ROUTE_PATH  4096                    /* bytes */
#define QUOTE_MAX       60                      /* bytes of a value echoed back in a message */

/* ---------------------------------------------------------------- errors */

struct cerr {
    int line, col; /* 1-based position the message is about */
    size_t seq;    /* report order, keeps the sort stable */
    char *msg;
};

struct diag {
    const char *path;
    struct cerr *v;
    size_t n, cap;
    bool oom;
};

__attribute__((format(printf, 4, 5))) static void report(struct diag *d, int line, int col,
                                                         const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct cerr *v = realloc(d->v, cap * sizeof(*v));
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
    d->v[d->n] = (struct cerr){.line = line, .col = col, .seq = d->n, .msg = msg};
    d->n++;
}

static int cerr_cmp(const void *a, const void *b)
{
    const struct cerr *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Print every collected error in file order and release them. */
static void diag_flush(struct diag *d, FILE *errs)
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

/* Echo a value back inside double quotes, escaped, at most QUOTE_MAX bytes
 * of it (cut on a UTF-8 character boundary). buf needs QUOTE_BUF bytes. */
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)
static const char *quote(const char *s, size_t len, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, n = len;

    if (n > QUOTE_MAX) {
        n = QUOTE_MAX;
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
static int parse_uint(const char *s, uint64_t *v)
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

int config_parse_duration(const char *s, uint64_t *ms)
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

int config_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},    {"B", 1},   {"KiB", KIB}, {"k", KIB}, {"K", KIB}, {"MiB", MIB},
        {"m", MIB}, {"M", MIB}, {"GiB", GIB}, {"g", GIB}, {"G", GIB},
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

static int resolve(const char *host, const char *port, int family, int flags, struct cfg_addr *out,
                   const char **why)
{
    struct addrinfo hints = {0}, *res = NULL;
    struct cfg_addr a = {0};

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

int config_parse_listen(const char *s, struct cfg_addr *out, const char **why)
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

int config_parse_backend(const char *url, struct cfg_backend *out, const char **why)
{
    static const char *const expected = "expected a URL such as ws://127.0.0.1:9000";
    const char *dummy, *port;
    char host[NI_MAXHOST], portbuf[6] = "80";
    size_t portlen;
    bool bracketed;
    struct cfg_addr addr;

    if (!why)
        why = &dummy;
    if (!url) {
        *why = expected;
        return ERR_CONFIG;
    }
    if (ascii_prefix_nocase(url, "wss://")) {
        *why = "wss:// backends are not supported yet";
        return ERR_CONFIG;
    }
    if (!ascii_prefix_nocase(url, "ws://")) {
        *why = expected;
        return ERR_CONFIG;
    }
    const char *auth = url + 5;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        *why = "backend paths are not supported yet; routes match on the client's path";
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
    char *copy = strdup(url);
    if (!copy) {
        *why = "out of memory";
        return ERR_NOMEM;
    }
    out->url = copy;
    out->addr = addr;
    return 0;
}

/* ------------------------------------------------------------------ routes */

int config_add_route(struct config *c, const char *path, const struct cfg_backend *b)
{
    if (!path || path[0] != '/' || !b || !b->url)
        return ERR_CONFIG;
    size_t len = strlen(path);
    char *url = strdup(b->url);
    if (!url)
        return ERR_NOMEM;

    /* Same path again (a flag over a file value): the newer backend wins. */
    for (size_t i = 0; i < c->nroutes; i++) {
        if (c->routes[i].path_len == len && memcmp(c->routes[i].path, path, len) == 0) {
            free(c->routes[i].backend.url);
            c->routes[i].backend.url = url;
            c->routes[i].backend.addr = b->addr;
            return 0;
        }
    }

    char *p = strdup(path);
    struct cfg_route *r = realloc(c->routes, (c->nroutes + 1) * sizeof(*r));
    if (!p || !r) {
        free(p);
        free(url);
        if (r)
            c->routes = r;
        return ERR_NOMEM;
    }
    c->routes = r;
    /* Longest first, so the first prefix match is the most specific;
     * equal lengths keep insertion order. */
    size_t at = 0;
    while (at < c->nroutes && r[at].path_len >= len)
        at++;
    memmove(&r[at + 1], &r[at], (c->nroutes - at) * sizeof(*r));
    r[at] =
        (struct cfg_route){.path = p, .path_len = len, .backend = {.url = url, .addr = b->addr}};
    c->nroutes++;
    return 0;
}

void config_clear(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nroutes; i++) {
        free(c->routes[i].path);
        free(c->routes[i].backend.url);
    }
    free(c->routes);
    c->routes = NULL;
    c->nroutes = 0;
}

void config_free(struct config *c)
{
    config_clear(c);
    free(c);
}

void config_defaults(struct config *c)
{
    *c = (struct config){
        .workers = 0,
        .max_connections = 0,
        .log_level = LOG_LEVEL_INFO,
        .handshake_timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .close_timeout_ms = 5000,
        .ping_interval_ms = 30000,
        .pong_timeout_ms = 10000,
        .idle_timeout_ms = 0,
        .max_stall_ms = 300000,
        .shutdown_timeout_ms = 10000,
        .max_header_size = 16 * KIB,
        .max_headers = 100,
        .max_frame_size = 16 * MIB,
        .max_message_size = 16 * MIB,
        .validate_utf8 = true,
        .high_watermark = 256 * KIB,
        .low_watermark = 64 * KIB,
        .routes = NULL,
        .nroutes = 0,
    };
}

/* ------------------------------------------------------- the key table */

enum kind { K_LISTEN, K_AUTO, K_UINT, K_LOGLEVEL, K_DURATION, K_SIZE, K_BOOL, K_ROUTES };
enum ftype { FT_NONE, FT_UNSIGNED, FT_SIZE, FT_U64, FT_BOOL, FT_LOGLEVEL };

struct key_spec {
    const char *name;
    enum kind kind;
    enum ftype ft;
    size_t off;   /* offsetof(struct config, field) */
    uint64_t min; /* inclusive; for durations 0 means "off" is allowed */
    uint64_t max; /* inclusive */
};

#define F(field, ft) ft, offsetof(struct config, field)

static const struct key_spec keys[] = {
    {"listen", K_LISTEN, FT_NONE, 0, 0, 0},
    {"workers", K_AUTO, F(workers, FT_UNSIGNED), 0, 256},
    {"max_connections", K_AUTO, F(max_connections, FT_UNSIGNED), 0, 1000000},
    {"log_level", K_LOGLEVEL, F(log_level, FT_LOGLEVEL), 0, 0},
    {"handshake_timeout", K_DURATION, F(handshake_timeout_ms, FT_U64), 1, MAX_DURATION_MS},
    {"connect_timeout", K_DURATION, F(connect_timeout_ms, FT_U64), 1, MAX_DURATION_MS},
    {"close_timeout", K_DURATION, F(close_timeout_ms, FT_U64), 1, MAX_DURATION_MS},
    {"ping_interval", K_DURATION, F(ping_interval_ms, FT_U64), 0, MAX_DURATION_MS},
    {"pong_timeout", K_DURATION, F(pong_timeout_ms, FT_U64), 1, MAX_DURATION_MS},
    {"idle_timeout", K_DURATION, F(idle_timeout_ms, FT_U64), 0, MAX_DURATION_MS},
    {"max_stall", K_DURATION, F(max_stall_ms, FT_U64), 0, MAX_DURATION_MS},
    {"shutdown_timeout", K_DURATION, F(shutdown_timeout_ms, FT_U64), 1, MAX_DURATION_MS},
    {"max_header_size", K_SIZE, F(max_header_size, FT_SIZE), 1 * KIB, 1 * MIB},
    {"max_headers", K_UINT, F(max_headers, FT_UNSIGNED), 1, 1000},
    {"max_frame_size", K_SIZE, F(max_frame_size, FT_U64), 1, (uint64_t)1 << 40},
    {"max_message_size", K_SIZE, F(max_message_size, FT_U64), 1, (uint64_t)1 << 40},
    {"validate_utf8", K_BOOL, F(validate_utf8, FT_BOOL), 0, 1},
    {"high_watermark", K_SIZE, F(high_watermark, FT_SIZE), 16 * KIB, 64 * MIB},
    {"low_watermark", K_SIZE, F(low_watermark, FT_SIZE), 1, 64 * MIB - 1},
    {"routes", K_ROUTES, FT_NONE, 0, 0, 0},
};

#undef F

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void field_store(struct config *c, const struct key_spec *k, uint64_t v)
{
    char *p = (char *)c + k->off;

    switch (k->ft) {
    case FT_UNSIGNED:
        *(unsigned *)(void *)p = (unsigned)v;
        break;
    case FT_SIZE:
        *(size_t *)(void *)p = (size_t)v;
        break;
    case FT_U64:
        *(uint64_t *)(void *)p = v;
        break;
    case FT_BOOL:
        *(bool *)(void *)p = v != 0;
        break;
    case FT_LOGLEVEL:
        *(enum log_level *)(void *)p = (enum log_level)v;
        break;
    case FT_NONE:
        break;
    }
}

static uint64_t field_load(const struct config *c, const struct key_spec *k)
{
    const char *p = (const char *)c + k->off;

    switch (k->ft) {
    case FT_UNSIGNED:
        return *(const unsigned *)(const void *)p;
    case FT_SIZE:
        return *(const size_t *)(const void *)p;
    case FT_U64:
        return *(const uint64_t *)(const void *)p;
    case FT_BOOL:
        return *(const bool *)(const void *)p;
    case FT_LOGLEVEL:
        return (uint64_t) * (const enum log_level *)(const void *)p;
    case FT_NONE:
        break;
    }
    return 0;
}

/* "16KiB", "1MiB", "1024GiB", or a plain byte count. */
static void fmt_size(uint64_t v, char *buf, size_t n)
{
    if (v && v % GIB == 0)
        snprintf(buf, n, "%lluGiB", (unsigned long long)(v / GIB));
    else if (v && v % MIB == 0)
        snprintf(buf, n, "%lluMiB", (unsigned long long)(v / MIB));
    else if (v && v % KIB == 0)
        snprintf(buf, n, "%lluKiB", (unsigned long long)(v / KIB));
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

static void fmt_duration(uint64_t ms, char *buf, size_t n)
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

/* What a key accepts, as the "expected ..." part of a message. */
static void expectation(const struct key_spec *k, char *buf, size_t n)
{
    switch (k->kind) {
    case K_LISTEN:
        snprintf(buf, n, "an address such as 127.0.0.1:8080, [::1]:8080 or *:8080");
        break;
    case K_AUTO:
        snprintf(buf, n, "\"auto\" or an integer from 1 to %llu", (unsigned long long)k->max);
        break;
    case K_UINT:
        snprintf(buf, n, "an integer from %llu to %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
        break;
    case K_LOGLEVEL:
        snprintf(buf, n, "one of debug, info, warn, error");
        break;
    case K_DURATION:
        snprintf(buf, n, "a duration such as 500ms, 10s or 2m%s", k->min ? "" : ", or off");
        break;
    case K_SIZE:
        snprintf(buf, n, "a size such as 64KiB or 16MiB");
        break;
    case K_BOOL:
        snprintf(buf, n, "true or false");
        break;
    case K_ROUTES:
        snprintf(buf, n, "a sequence of routes, each with path and backend");
        break;
    }
}

static const struct key_spec *key_find(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* -------------------------------------------------------------- YAML tree */

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ytype type;
    int line, col;       /* 1-based position of the node's first character */
    char *text;          /* scalar: NUL-terminated copy of the value */
    size_t len;          /* scalar: bytes in text, may include NULs from escapes */
    bool null;           /* scalar: plain and empty, i.e. no value at all */
    bool bad;            /* stands in for a broken alias; already reported */
    struct ynode **kids; /* seq: items; map: key, value, key, value, ... */
    size_t nkids, capkids;
};

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

static struct ynode *ynew(struct ytree *t, enum ytype type, int line, int col)
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

static void ytree_free(struct ytree *t)
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
static const char *describe(const struct ynode *n, char *buf)
{
    if (n->type == Y_SEQ)
        return n->nkids ? "a sequence" : "an empty sequence";
    if (n->type == Y_MAP)
        return n->nkids ? "a mapping" : "an empty mapping";
    if (n->null)
        return "nothing";
    return quote(n->text, n->len, buf);
}

/* The text of a scalar usable as a C string, or NULL (a collection, no
 * value, or a NUL byte from an escape sequence). */
static const char *scalar_text(const struct ynode *n)
{
    if (n->type != Y_SCALAR || n->null || strlen(n->text) != n->len)
        return NULL;
    return n->text;
}

static void check_duplicate_keys(struct diag *d, const struct ynode *m)
{
    char q[QUOTE_BUF];

    for (size_t i = 2; i < m->nkids; i += 2) {
        long j = earlier_key(m, i);
        if (j < 0)
            continue;
        const struct ynode *k = m->kids[i];
        report(d, k->line, k->col, "duplicate key %s (first defined at line %d)",
               quote(k->text, k->len, q), m->kids[j]->line);
    }
}

static void diag_sink(struct fy_diag *fd, void *user, const char *buf, size_t len)
{
    /* Errors are collected and printed in our own format; drop the rest. */
}

struct builder {
    struct ytree *t;
    struct diag *d;
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
            report(b->d, b->line, b->col, "only one YAML document is allowed in the file");
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
            char q[QUOTE_BUF];
            if (!name)
                name = "";
            if (len > 0 && name[0] == ':')
                /* listen: *:8080 unquoted is an alias named ":8080". */
                report(b->d, b->line, b->col, "*%.*s is read as a YAML alias; quote it: \"*%.*s\"",
                       (int)(len > QUOTE_MAX ? QUOTE_MAX : len), name,
                       (int)(len > QUOTE_MAX ? QUOTE_MAX : len), name);
            else
                report(b->d, b->line, b->col, "alias refers to an unknown anchor %s",
                       quote(name, len, q));
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
static int build_tree(struct diag *d, const char *buf, size_t len, struct ytree *t)
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
            report(d, e->line > 0 ? e->line : b.line, e->column > 0 ? e->column : b.col,
                   "invalid YAML: %s", e->msg ? e->msg : "syntax error");
            any = true;
        }
        if (!any)
            report(d, b.line, b.col, "invalid YAML");
        rc = ERR_CONFIG;
    }
    fy_parser_destroy(p);
    fy_diag_destroy(fd);
    return rc;
}

/* ------------------------------------------------------------ validation */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void bad_value(struct diag *d, const char *key, const struct ynode *v, const char *expected)
{
    char q[QUOTE_BUF];

    report(d, v->line, v->col, "%s: expected %s, got %s", key, expected, describe(v, q));
}

static bool valid_route_path(const char *s, size_t len)
{
    if (len == 0 || len > MAX_ROUTE_PATH || s[0] != '/')
        return false;
    /* Request targets are visible ASCII (RFC 9112 §3.2); the query is not
     * part of what a route matches. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return false;
    }
    return true;
}

/* One route mapping; on success it is added to c. paths[] holds the path
 * nodes of earlier valid routes, for duplicate detection. */
static void apply_route(struct diag *d, struct config *c, const struct ynode *r,
                        const struct ynode **paths, size_t *npaths)
{
    const struct ynode *pn = NULL, *bn = NULL;
    char q[QUOTE_BUF];

    for (size_t i = 0; i + 1 < r->nkids; i += 2) {
        const struct ynode *k = r->kids[i], *v = r->kids[i + 1];
        const char *name = scalar_text(k);
        if (!name) {
            report(d, k->line, k->col, "expected a key name, got %s", describe(k, q));
            continue;
        }
        if (earlier_key(r, i) >= 0)
            continue;
        if (strcmp(name, "path") == 0)
            pn = v;
        else if (strcmp(name, "backend") == 0)
            bn = v;
        else
            report(d, k->line, k->col, "unknown key %s in a route (expected path or backend)",
                   quote(k->text, k->len, q));
    }
    if (!pn)
        report(d, r->line, r->col, "route is missing required key \"path\"");
    if (!bn)
        report(d, r->line, r->col, "route is missing required key \"backend\"");

    bool path_ok = false;
    if (pn && !pn->bad) {
        const char *path = scalar_text(pn);
        if (!path || !valid_route_path(path, pn->len)) {
            bad_value(d, "path", pn, "a URL path starting with '/', without spaces, '?' or '#'");
        } else {
            path_ok = true;
            for (size_t i = 0; i < *npaths; i++) {
                if (scalar_eq(paths[i], pn)) {
                    report(d, pn->line, pn->col,
                           "path: duplicate route path %s (first defined at line %d)",
                           quote(pn->text, pn->len, q), paths[i]->line);
                    path_ok = false;
                    break;
                }
            }
            if (path_ok)
                paths[(*npaths)++] = pn;
        }
    }

    struct cfg_backend be = {0};
    bool be_ok = false;
    if (bn && !bn->bad) {
        const char *url = scalar_text(bn);
        const char *why = NULL;
        if (!url) {
            bad_value(d, "backend", bn, "a URL such as ws://127.0.0.1:9000");
        } else {
            int rc = config_parse_backend(url, &be, &why);
            if (rc == ERR_NOMEM)
                d->oom = true;
            else if (rc != 0)
                report(d, bn->line, bn->col, "backend: %s, got %s", why,
                       quote(bn->text, bn->len, q));
            be_ok = rc == 0;
        }
    }
    if (path_ok && be_ok && config_add_route(c, pn->text, &be) != 0)
        d->oom = true;
    free(be.url);
}

static void apply_routes(struct diag *d, struct config *c, const struct ynode *v)
{
    char q[QUOTE_BUF];

    if (v->type != Y_SEQ) {
        bad_value(d, "routes", v, "a sequence of routes, each with path and backend");
        return;
    }
    if (v->nkids == 0) {
        report(d, v->line, v->col, "routes: expected at least one route, got an empty sequence");
        return;
    }
    const struct ynode **paths = calloc(v->nkids, sizeof(*paths));
    size_t npaths = 0;
    if (!paths) {
        d->oom = true;
        return;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *r = v->kids[i];
        if (r->bad)
            continue;
        if (r->type != Y_MAP)
            report(d, r->line, r->col,
                   "routes: each route must be a mapping with path and backend, got %s",
                   describe(r, q));
        else
            apply_route(d, c, r, paths, &npaths);
    }
    free(paths);
}

/* Apply one top-level key's value. Returns true if it was valid. */
static bool apply_key(struct diag *d, struct config *c, const struct key_spec *k,
                      const struct ynode *v)
{
    char exp[128], q[QUOTE_BUF], lo[32], hi[32];
    const char *s = scalar_text(v);
    const char *why = NULL;
    uint64_t x = 0;

    if (v->bad)
        return false;
    expectation(k, exp, sizeof(exp));
    if (k->kind == K_ROUTES) {
        size_t before = d->n;
        apply_routes(d, c, v);
        return d->n == before;
    }
    if (!s) {
        bad_value(d, k->name, v, exp);
        return false;
    }
    switch (k->kind) {
    case K_LISTEN:
        if (config_parse_listen(s, &c->listen, &why) != 0) {
            report(d, v->line, v->col, "listen: %s, got %s", why, quote(s, v->len, q));
            return false;
        }
        return true;
    case K_AUTO:
        if (strcmp(s, "auto") == 0) {
            x = 0;
        } else if (parse_uint(s, &x) != 0 || x < 1 || x > k->max) {
            bad_value(d, k->name, v, exp);
            return false;
        }
        break;
    case K_UINT:
        if (parse_uint(s, &x) != 0 || x < k->min || x > k->max) {
            bad_value(d, k->name, v, exp);
            return false;
        }
        break;
    case K_LOGLEVEL:
        for (x = 0; x < sizeof(level_names) / sizeof(level_names[0]); x++)
            if (strcmp(s, level_names[x]) == 0)
                break;
        if (x == sizeof(level_names) / sizeof(level_names[0])) {
            bad_value(d, k->name, v, exp);
            return false;
        }
        break;
    case K_DURATION:
        if (config_parse_duration(s, &x) != 0) {
            bad_value(d, k->name, v, exp);
            return false;
        }
        if (x < k->min) {
            report(d, v->line, v->col,
                   "%s: expected a duration greater than 0 (this timeout cannot be off), got %s",
                   k->name, quote(s, v->len, q));
            return false;
        }
        if (x > k->max) {
            fmt_duration(k->max, hi, sizeof(hi));
            report(d, v->line, v->col, "%s: expected a duration of at most %s, got %s", k->name, hi,
                   quote(s, v->len, q));
            return false;
        }
        break;
    case K_SIZE:
        if (config_parse_size(s, &x) != 0) {
            bad_value(d, k->name, v, exp);
            return false;
        }
        if (x < k->min || x > k->max) {
            fmt_size(k->min, lo, sizeof(lo));
            fmt_size(k->max, hi, sizeof(hi));
            report(d, v->line, v->col, "%s: expected a size from %s to %s, got %s", k->name, lo, hi,
                   quote(s, v->len, q));
            return false;
        }
        break;
    case K_BOOL:
        if (strcmp(s, "true") == 0) {
            x = 1;
        } else if (strcmp(s, "false") == 0) {
            x = 0;
        } else {
            bad_value(d, k->name, v, exp);
            return false;
        }
        break;
    case K_ROUTES:
        break;
    }
    field_store(c, k, x);
    return true;
}

static void validate_tree(struct diag *d, const struct ytree *t, struct config *c)
{
    const struct ynode *root = t->root;
    const struct ynode *seen[NKEYS] = {0};
    bool ok[NKEYS];
    char q[QUOTE_BUF], buf[32];

    if (!root || (root->type == Y_SCALAR && root->null)) {
        report(d, 1, 1, "missing required key \"listen\"");
        report(d, 1, 1, "missing required key \"routes\"");
        return;
    }
    if (root->type != Y_MAP) {
        report(d, root->line, root->col,
               "expected a mapping of settings (key: value lines) at the top level, got %s",
               describe(root, q));
        return;
    }
    for (size_t i = 0; i < NKEYS; i++)
        ok[i] = true;
    for (size_t i = 0; i + 1 < root->nkids; i += 2) {
        const struct ynode *k = root->kids[i], *v = root->kids[i + 1];
        const char *name = scalar_text(k);
        if (!name) {
            report(d, k->line, k->col, "expected a key name, got %s", describe(k, q));
            continue;
        }
        if (earlier_key(root, i) >= 0)
            continue; /* reported while building the tree */
        const struct key_spec *spec = key_find(name);
        if (!spec) {
            report(d, k->line, k->col, "unknown key %s", quote(k->text, k->len, q));
            continue;
        }
        size_t idx = (size_t)(spec - keys);
        seen[idx] = v;
        ok[idx] = apply_key(d, c, spec, v);
    }

    const struct key_spec *listen = key_find("listen"), *routes = key_find("routes");
    if (!seen[listen - keys])
        report(d, root->line, root->col, "missing required key \"listen\"");
    if (!seen[routes - keys])
        report(d, root->line, root->col, "missing required key \"routes\"");

    size_t lo = (size_t)(key_find("low_watermark") - keys);
    size_t hi = (size_t)(key_find("high_watermark") - keys);
    if (ok[lo] && ok[hi] && c->low_watermark >= c->high_watermark) {
        if (seen[lo]) {
            fmt_size(c->high_watermark, buf, sizeof(buf));
            report(d, seen[lo]->line, seen[lo]->col,
                   "low_watermark: must be less than high_watermark (%s), got %s", buf,
                   quote(seen[lo]->text, seen[lo]->len, q));
        } else if (seen[hi]) {
            fmt_size(c->low_watermark, buf, sizeof(buf));
            report(d, seen[hi]->line, seen[hi]->col,
                   "high_watermark: must be greater than low_watermark (%s by default), got %s",
                   buf, quote(seen[hi]->text, seen[hi]->len, q));
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
    struct diag d = {.path = path};
    struct ytree t = {0};
    char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    int rc = read_file(path, errs, &buf, &len);
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

    rc = build_tree(&d, buf, len, &t);
    if (rc == 0)
        validate_tree(&d, &t, c);
    ytree_free(&t);
    free(buf);

    if (rc == ERR_NOMEM || d.oom)
        rc = ERR_NOMEM;
    else if (rc != 0 || d.n > 0)
        rc = ERR_CONFIG;
    diag_flush(&d, errs);
    if (rc != 0) {
        config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------- config_validate */

__attribute__((format(printf, 2, 3))) static void vfail(FILE *errs, const char *fmt, ...)
{
    va_list ap;

    if (!errs)
        return;
    fputs("wsgate: ", errs);
    va_start(ap, fmt);
    vfprintf(errs, fmt, ap);
    va_end(ap);
    fputc('\n', errs);
}

int config_validate(const struct config *c, FILE *errs)
{
    char lo[32], hi[32];
    int bad = 0;

    if (c->listen.len == 0) {
        vfail(errs, "no listen address: set listen in the config file or pass --listen");
        bad++;
    }
    if (c->nroutes == 0) {
        vfail(errs, "no routes: add routes to the config file or pass --backend");
        bad++;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_spec *k = &keys[i];
        uint64_t v = field_load(c, k);
        switch (k->kind) {
        case K_AUTO:
        case K_UINT:
            if (v < k->min || v > k->max) {
                vfail(errs, "%s must be %s%llu to %llu, got %llu", k->name,
                      k->kind == K_AUTO ? "auto (0) or " : "",
                      (unsigned long long)(k->min ? k->min : 1), (unsigned long long)k->max,
                      (unsigned long long)v);
                bad++;
            }
            break;
        case K_LOGLEVEL:
            if (v >= sizeof(level_names) / sizeof(level_names[0])) {
                vfail(errs, "log_level must be one of debug, info, warn, error");
                bad++;
            }
            break;
        case K_DURATION:
            if (v < k->min) {
                vfail(errs, "%s must be greater than 0 (it cannot be off)", k->name);
                bad++;
            } else if (v > k->max) {
                fmt_duration(k->max, hi, sizeof(hi));
                vfail(errs, "%s must be at most %s", k->name, hi);
                bad++;
            }
            break;
        case K_SIZE:
            if (v < k->min || v > k->max) {
                fmt_size(k->min, lo, sizeof(lo));
                fmt_size(k->max, hi, sizeof(hi));
                vfail(errs, "%s must be from %s to %s, got %llu", k->name, lo, hi,
                      (unsigned long long)v);
                bad++;
            }
            break;
        default:
            break;
        }
    }
    if (c->low_watermark >= c->high_watermark) {
        vfail(errs, "low_watermark (%zu) must be less than high_watermark (%zu)", c->low_watermark,
              c->high_watermark);
        bad++;
    }
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct cfg_route *r = &c->routes[i];
        if (!r->path || !valid_route_path(r->path, r->path_len)) {
            vfail(errs, "route path \"%s\" must start with '/' and have no spaces, '?' or '#'",
                  r->path ? r->path : "");
            bad++;
        }
        if (!r->backend.url || r->backend.addr.len == 0) {
            vfail(errs, "route \"%s\" has no backend", r->path ? r->path : "");
            bad++;
        }
        for (size_t j = 0; j < i; j++) {
            if (r->path && c->routes[j].path && strcmp(r->path, c->routes[j].path) == 0) {
                vfail(errs, "route path \"%s\" is defined twice", r->path);
                bad++;
            }
        }
    }
    return bad ? ERR_CONFIG : 0;
}
