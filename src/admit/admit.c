/* The admission chain and its built-in steps (see admit.h). */
#include "admit/admit.h"

#include <stdlib.h>
#include <string.h>

#include "admit/admit_conf.h"
#include "core/err.h"

bool admit_any(const struct admit_conf *a)
{
    return a->nsteps > 0;
}

int admit_run(const struct admit_conf *a, struct admit_ctx *cx)
{
    for (size_t i = 0; i < a->nsteps; i++) {
        int rc = a->steps[i].fn(a, a->steps[i].arg, cx);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void admit_ctx_clear(struct admit_ctx *cx)
{
    free(cx->protocols);
    free(cx->query_out);
    free(cx->lines);
    cx->protocols = cx->query_out = cx->lines = NULL;
}

bool admit_ip_ok(const struct admit_ip *ip, const struct sockaddr *sa)
{
    if (ip->deny.n && cidr_list_match(&ip->deny, sa))
        return false;
    return ip->allow.n == 0 || cidr_list_match(&ip->allow, sa);
}

/* ------------------------------------------------------------ origins */

static unsigned default_port(const char *scheme)
{
    return strcmp(scheme, "https") == 0 ? 443 : 80;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Split "scheme://host[:port]" (no path): scheme and host lower-cased
 * into the buffers, port explicit or default. False when it is not that
 * shape. */
static bool split_origin(const char *s, size_t n, char scheme[8], char *host, size_t hcap,
                         unsigned *port)
{
    const char *sep = n >= 3 ? strstr(s, "://") : NULL;
    size_t sl, hl;
    const char *h, *end = s + n, *colon;

    if (!sep || sep >= end || sep == s)
        return false;
    sl = (size_t)(sep - s);
    if (sl >= 8)
        return false;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = lower(s[i]);
    scheme[sl] = '\0';
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        return false;
    h = sep + 3;
    if (h >= end)
        return false;
    /* An IPv6 literal in brackets keeps its colons. */
    colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return false;
        if (rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
        else if (rb + 1 != end)
            return false;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
    }
    hl = (size_t)((colon ? colon : end) - h);
    if (hl == 0 || hl >= hcap)
        return false;
    for (size_t i = 0; i < hl; i++) {
        char c = h[i];
        if (c == '/' || c == '?' || c == '#' || c == '@' || (unsigned char)c <= ' ')
            return false;
        host[i] = lower(c);
    }
    host[hl] = '\0';
    *port = default_port(scheme);
    if (colon) {
        unsigned long p = 0;
        const char *d = colon + 1;
        if (d == end)
            return false;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return false;
            p = p * 10 + (unsigned long)(*d - '0');
            if (p > 65535)
                return false;
        }
        if (p == 0)
            return false;
        *port = (unsigned)p;
    }
    return true;
}

int origin_rule_parse(const char *s, struct origin_rule *out, const char **why)
{
    char host[256];

    memset(out, 0, sizeof(*out));
    if (strcmp(s, "null") == 0) {
        out->null = true;
        return 0;
    }
    if (!split_origin(s, strlen(s), out->scheme, host, sizeof(host), &out->port)) {
        *why = "expected an origin such as https://app.example.com, https://*.example.com, "
               "http://localhost:3000 or null (scheme http or https, no path)";
        return -1;
    }
    if (host[0] == '*') {
        if (host[1] != '.' || host[2] == '\0' || strchr(host + 2, '*')) {
            *why = "a wildcard is \"*.\" followed by a domain, as in https://*.example.com";
            return -1;
        }
        out->wild = true;
        out->host = strdup(host + 1); /* ".example.com" */
    } else {
        if (strchr(host, '*')) {
            *why = "a wildcard is \"*.\" followed by a domain, as in https://*.example.com";
            return -1;
        }
        out->host = strdup(host);
    }
    if (!out->host) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

bool origin_allowed(const struct origin_rule *rules, size_t n, const char *v, size_t len)
{
    char scheme[8], host[256];
    unsigned port;
    bool is_null = len == 4 && memcmp(v, "null", 4) == 0;
    bool parsed = !is_null && split_origin(v, len, scheme, host, sizeof(host), &port);

    for (size_t i = 0; i < n; i++) {
        const struct origin_rule *r = &rules[i];
        if (r->null) {
            if (is_null)
                return true;
            continue;
        }
        if (!parsed || strcmp(r->scheme, scheme) != 0 || r->port != port)
            continue;
        if (!r->wild) {
            if (strcmp(r->host, host) == 0)
                return true;
            continue;
        }
        /* A "*.example.com" rule: any name ending in ".example.com", not
         * the domain itself. */
        size_t hl = strlen(host), sl = strlen(r->host);
        if (hl > sl && strcmp(host + hl - sl, r->host) == 0)
            return true;
    }
    return false;
}

/* -------------------------------------------------------------- steps */

static int step_ip(const struct admit_conf *a, const void *arg, struct admit_ctx *cx)
{

    return admit_ip_ok(&a->ip, cx->client) ? 0 : ERR_IP_DENIED;
}

/* The cross-site WebSocket hijacking defence: a browser always sends the
 * page's Origin with an upgrade; only listed ones get through. */
static int step_origin(const struct admit_conf *a, const void *arg, struct admit_ctx *cx)
{
    const struct http_request *r = cx->req;
    unsigned from = 0;
    int i = http_header_next(r->headers, r->nheaders, "Origin", &from);

    if (!cx->upgrade)
        return 0;
    if (i < 0)
        return a->require_origin ? ERR_ORIGIN : 0;
    /* Two Origin fields: ambiguous, never guessed. */
    if (http_header_next(r->headers, r->nheaders, "Origin", &from) >= 0)
        return ERR_ORIGIN;
    if (!a->has_origins)
        return 0;
    return origin_allowed(a->origins, a->norigins, r->headers[i].value.p, r->headers[i].value.n)
               ? 0
               : ERR_ORIGIN;
}

static bool listed(const struct admit_conf *a, const char *p, size_t n)
{
    for (size_t i = 0; i < a->nsubprotocols; i++)
        if (strlen(a->subprotocols[i]) == n && memcmp(a->subprotocols[i], p, n) == 0)
            return true;
    return false;
}

/* Keep the entries of the ", "-list p[0..n) that listed() accepts. */
static size_t filter_list(const struct admit_conf *a, const char *p, size_t n, char *out,
                          size_t len)
{
    const char *end = p + n;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end, *b = p;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        const char *t = e;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t > b && listed(a, b, (size_t)(t - b))) {
            if (len) {
                out[len++] = ',';
                out[len++] = ' ';
            }
            memcpy(out + len, b, (size_t)(t - b));
            len += (size_t)(t - b);
        }
        p = comma ? comma + 1 : end;
    }
    return len;
}

/* Offered subprotocols not listed are removed before forwarding (from
 * what an earlier step, authentication, left of the offer, if it
 * changed it). */
static int step_subprotocol(const struct admit_conf *a, const void *arg, struct admit_ctx *cx)
{
    const struct http_request *r = cx->req;
    unsigned from = 0;
    size_t cap = 0, len = 0;
    char *out = NULL;
    int i;

    if (!cx->upgrade)
        return 0;
    if (cx->protocols_set) {
        cap = cx->protocols ? strlen(cx->protocols) + 2 : 2;
    } else {
        while ((i = http_header_next(r->headers, r->nheaders, "Sec-WebSocket-Protocol", &from)) >=
               0)
            cap += r->headers[i].value.n + 2;
    }
    out = malloc(cap + 1);
    if (!out)
        return ERR_NOMEM;
    if (cx->protocols_set) {
        if (cx->protocols)
            len = filter_list(a, cx->protocols, strlen(cx->protocols), out, 0);
    } else {
        from = 0;
        while ((i = http_header_next(r->headers, r->nheaders, "Sec-WebSocket-Protocol", &from)) >=
               0)
            len = filter_list(a, r->headers[i].value.p, r->headers[i].value.n, out, len);
    }
    out[len] = '\0';
    if (len == 0 && a->require_subprotocol) {
        free(out);
        return ERR_SUBPROTOCOL;
    }
    free(cx->protocols);
    cx->protocols = out;
    cx->protocols_set = true;
    return 0;
}

bool admit_conf_finish(struct conf_diag *d, const struct ynode *at, struct admit_conf *a,
                       const struct admit_step *more, size_t nmore)
{
    a->nsteps = 0;
    if (a->require_subprotocol && !a->has_subprotocols) {
        conf_report(d, at, "require_subprotocol: needs subprotocols (the names to allow)");
        return false;
    }
    if (admit_ip_any(&a->ip))
        a->steps[a->nsteps++] = (struct admit_step){step_ip, NULL};
    if (a->has_origins || a->require_origin)
        a->steps[a->nsteps++] = (struct admit_step){step_origin, NULL};
    for (size_t i = 0; i < nmore && a->nsteps < ADMIT_MAX_STEPS - 1; i++)
        a->steps[a->nsteps++] = more[i];
    if (a->has_subprotocols)
        a->steps[a->nsteps++] = (struct admit_step){step_subprotocol, NULL};
    return true;
}

/* ------------------------------------------------- trusted proxies */

bool admit_forwarded_client(const struct cidr_list *trusted, const struct sockaddr *peer,
                            const struct http_request *req, struct sockaddr_storage *out)
{
    struct sockaddr_storage best, cur;
    bool have = false;
    int idx[16];
    int nidx = 0, i;
    unsigned from = 0;

    if (!trusted->n || !cidr_list_match(trusted, peer))
        return false;
    /* The fields in order; their entries are read right to left. */
    while (nidx < 16 &&
           (i = http_header_next(req->headers, req->nheaders, "X-Forwarded-For", &from)) >= 0)
        idx[nidx++] = i;
    for (int f = nidx - 1; f >= 0; f--) {
        const char *p = req->headers[idx[f]].value.p;
        const char *end = p + req->headers[idx[f]].value.n;
        while (end > p) {
            const char *e = end, *b;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            b = e;
            while (b > p && b[-1] != ',')
                b--;
            end = b > p ? b - 1 : p;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            if (b == e)
                continue;
            if (!cidr_text_to_addr(b, (size_t)(e - b), &cur)) {
                /* Not an address: what is left of it cannot be trusted. */
                goto done;
            }
            best = cur;
            have = true;
            if (!cidr_list_match(trusted, (const struct sockaddr *)&cur))
                goto done;
        }
    }
done:
    if (have)
        *out = best;
    return have;
}
