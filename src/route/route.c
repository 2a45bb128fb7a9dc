/* Route matching, load balancing, backend state and the Maglev table (see
 * route.h). */
#include "route/route.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include "core/err.h"

#define MAGLEV_SIZE    65537u /* a prime well above 100 x a typical pool */
#define EJECT_MAX      10     /* the ejection time doubles up to this many times */
#define STICKY_MAC     8      /* bytes of HMAC-SHA256 kept in a sticky cookie */
#define MAX_STICKY_MSG 200    /* upstream name + NUL + backend id */

/* ------------------------------------------------------------ matching */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Host header against "name" or "*.suffix", case-insensitive, port
 * ignored. */
static bool host_matches(const char *pat, const char *h, size_t n)
{
    size_t pl;

    if (!h)
        return false;
    /* Strip ":port", but not from a bracketed IPv6 literal's inside. */
    for (size_t i = n; i-- > 0;) {
        if (h[i] == ':') {
            n = i;
            break;
        }
        if (h[i] == ']' || h[i] < '0' || h[i] > '9')
            break;
    }
    if (n > 0 && h[n - 1] == '.')
        n--; /* a fully qualified name's root dot */
    if (pat[0] == '*') {
        const char *suffix = pat + 1; /* ".example.com" */
        size_t sl = strlen(suffix);
        if (n <= sl)
            return false;
        h += n - sl;
        n = sl;
        pat = suffix;
    }
    pl = strlen(pat);
    if (pl != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(h[i]) != pat[i])
            return false;
    return true;
}

/* "/chat" matches "/chat" and "/chat/x", not "/chatroom"; "/" matches all. */
static bool prefix_matches(const char *pre, const char *p, size_t n)
{
    size_t pl = strlen(pre);

    if (pl > n || memcmp(pre, p, pl) != 0)
        return false;
    return pl == n || pre[pl - 1] == '/' || p[pl] == '/';
}

static bool header_matches(const struct rc_pair *want, const struct route_req *req)
{
    struct http_span name = {want->name, strlen(want->name)};

    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.n != name.n || !http_span_ieq(h->name, want->name))
            continue;
        if (!want->value)
            return true;
        if (h->value.n == strlen(want->value) && memcmp(h->value.p, want->value, h->value.n) == 0)
            return true;
    }
    return false;
}

/* The value of query parameter `name` (not decoded), or false. */
static bool query_param(const char *q, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name);
    size_t i = 0;

    while (q && i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j - i >= nl && memcmp(q + i, name, nl) == 0 && (j - i == nl || q[i + nl] == '=')) {
            *v = j - i == nl ? q + j : q + i + nl + 1;
            *vn = j - i == nl ? 0 : j - i - nl - 1;
            return true;
        }
        i = j + 1;
    }
    return false;
}

const struct rc_route *route_match(const struct route_conf *rc, const struct route_req *req)
{
    for (size_t i = 0; i < rc->nroutes; i++) {
        const struct rc_route *r = &rc->routes[i];
        bool ok = true;
        if (r->host && !host_matches(r->host, req->host, req->host_len))
            continue;
        if (r->path &&
            (strlen(r->path) != req->path_len || memcmp(r->path, req->path, req->path_len) != 0))
            continue;
        if (r->path_prefix && !prefix_matches(r->path_prefix, req->path, req->path_len))
            continue;
        for (size_t h = 0; ok && h < r->nheaders; h++)
            ok = header_matches(&r->headers[h], req);
        for (size_t q = 0; ok && q < r->nquery; q++) {
            const char *v;
            size_t vn;
            ok = query_param(req->query, req->query_len, r->query[q].name, &v, &vn) &&
                 vn == strlen(r->query[q].value) && memcmp(v, r->query[q].value, vn) == 0;
        }
        if (ok)
            return r;
    }
    return NULL;
}

const struct rc_upstream *route_pick_upstream(const struct rc_route *r, struct rng *rng)
{
    uint32_t x;

    if (r->nsplits == 1)
        return r->splits[0].up;
    x = rng_u32(rng) % r->split_total;
    for (size_t i = 0; i < r->nsplits; i++) {
        if (x < r->splits[i].weight)
            return r->splits[i].up;
        x -= r->splits[i].weight;
    }
    return r->splits[r->nsplits - 1].up;
}

/* Append n bytes to out at *o; false when they do not fit. */
static bool put(char *out, size_t cap, size_t *o, const char *p, size_t n)
{
    if (*o + n > cap)
        return false;
    memcpy(out + *o, p, n);
    *o += n;
    return true;
}

int route_upstream_target(const struct rc_route *r, const struct rc_backend *b,
                          const struct route_req *req, char *out, size_t cap)
{
    const char *path = req->path;
    size_t pn = req->path_len, o = 0;

    /* The backend's own path first ("" or "/base", no trailing '/'). */
    if (!put(out, cap, &o, b->path, strlen(b->path)))
        return ERR_RANGE;
    if (r->rewrite_prefix && r->path_prefix) {
        size_t pl = strlen(r->path_prefix), rl = strlen(r->rewrite_prefix);
        const char *rest = path + pl;
        size_t rn = pn - pl;
        bool rslash = rl > 0 && r->rewrite_prefix[rl - 1] == '/';
        /* One '/' where the new prefix meets the rest of the path. */
        if (rslash && rn > 0 && rest[0] == '/') {
            rest++;
            rn--;
        }
        if (!put(out, cap, &o, r->rewrite_prefix, rl))
            return ERR_RANGE;
        if (!rslash && rn > 0 && rest[0] != '/' && !put(out, cap, &o, "/", 1))
            return ERR_RANGE;
        if (!put(out, cap, &o, rest, rn))
            return ERR_RANGE;
    } else if (!put(out, cap, &o, path, pn)) {
        return ERR_RANGE;
    }
    if (o == 0 && !put(out, cap, &o, "/", 1))
        return ERR_RANGE;
    if (req->query &&
        (!put(out, cap, &o, "?", 1) || !put(out, cap, &o, req->query, req->query_len)))
        return ERR_RANGE;
    return (int)o;
}

/* ------------------------------------------------------------ balancing */

int route_worker_init(struct route_worker *rw, const struct route_conf *rc)
{
    rw->n = rc->nupstreams;
    rw->rr = calloc(rw->n ? rw->n : 1, sizeof(*rw->rr));
    if (!rw->rr)
        return ERR_NOMEM;
    for (size_t i = 0; i < rw->n; i++) {
        rw->rr[i] = calloc(rc->upstreams[i].nbackends, sizeof(**rw->rr));
        if (!rw->rr[i])
            return ERR_NOMEM;
    }
    return 0;
}

void route_worker_free(struct route_worker *rw)
{
    for (size_t i = 0; rw->rr && i < rw->n; i++)
        free(rw->rr[i]);
    free(rw->rr);
    rw->rr = NULL;
    rw->n = 0;
}

bool route_backend_usable(const struct rc_backend *b, uint64_t now_ms)
{
    const struct backend_state *st = b->state;

    if (b->drain || atomic_load_explicit(&st->down, memory_order_relaxed))
        return false;
    if (atomic_load_explicit(&st->eject_until, memory_order_relaxed) > now_ms)
        return false;
    if (b->max_connections &&
        atomic_load_explicit(&st->active, memory_order_relaxed) >= b->max_connections)
        return false;
    return true;
}

static bool skipped(uint32_t i, const uint32_t *skip, size_t nskip)
{
    for (size_t k = 0; k < nskip; k++)
        if (skip[k] == i)
            return true;
    return false;
}

/* Active connections per unit of weight, compared without division. */
static bool less_loaded(const struct rc_backend *a, const struct rc_backend *b)
{
    uint64_t la = atomic_load_explicit(&a->state->active, memory_order_relaxed);
    uint64_t lb = atomic_load_explicit(&b->state->active, memory_order_relaxed);

    return (la + 1) * b->weight < (lb + 1) * a->weight;
}

int route_pick_backend(struct route_worker *rw, size_t ui, const struct rc_upstream *up,
                       const void *key, size_t keylen, const uint32_t *skip, size_t nskip,
                       uint64_t now_ms, struct rng *rng)
{
    uint32_t n = (uint32_t)up->nbackends;
    uint32_t cand[2];
    uint32_t ncand = 0;
    int best = -1;

    switch (up->balance) {
    case LB_ROUND_ROBIN: {
        /* Smooth weighted round robin (as nginx): each usable backend gains
         * its weight, the richest is picked and pays the total. */
        int32_t *cur = rw->rr[ui];
        int32_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct rc_backend *b = &up->backends[i];
            if (skipped(i, skip, nskip) || !route_backend_usable(b, now_ms))
                continue;
            cur[i] += (int32_t)b->weight;
            total += (int32_t)b->weight;
            if (best < 0 || cur[i] > cur[best])
                best = (int)i;
        }
        if (best >= 0)
            cur[best] -= total;
        return best;
    }
    case LB_LEAST_CONN: {
        /* Start at a random backend so ties spread evenly. */
        uint32_t start = n ? rng_u32(rng) % n : 0;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t i = (start + k) % n;
            const struct rc_backend *b = &up->backends[i];
            if (skipped(i, skip, nskip) || !route_backend_usable(b, now_ms))
                continue;
            if (best < 0 || less_loaded(b, &up->backends[best]))
                best = (int)i;
        }
        return best;
    }
    case LB_P2C:
        /* Power of two random choices: two distinct usable backends at
         * random, the less loaded one wins. */
        for (uint32_t tries = 0; tries < 2 * n + 8 && ncand < 2; tries++) {
            uint32_t i = rng_u32(rng) % n;
            if (skipped(i, skip, nskip) || !route_backend_usable(&up->backends[i], now_ms) ||
                (ncand == 1 && cand[0] == i))
                continue;
            cand[ncand++] = i;
        }
        if (ncand < 2) {
            /* Few usable backends: look at them all. */
            for (uint32_t i = 0; i < n && ncand < 2; i++)
                if (!skipped(i, skip, nskip) && route_backend_usable(&up->backends[i], now_ms) &&
                    (ncand == 0 || cand[0] != i))
                    cand[ncand++] = i;
        }
        if (ncand == 0)
            return -1;
        if (ncand == 1)
            return (int)cand[0];
        return less_loaded(&up->backends[cand[1]], &up->backends[cand[0]]) ? (int)cand[1]
                                                                           : (int)cand[0];
    case LB_RANDOM: {
        uint64_t total = 0, x;
        for (uint32_t i = 0; i < n; i++)
            if (!skipped(i, skip, nskip) && route_backend_usable(&up->backends[i], now_ms))
                total += up->backends[i].weight;
        if (total == 0)
            return -1;
        x = rng_u32(rng) % total;
        for (uint32_t i = 0; i < n; i++) {
            if (skipped(i, skip, nskip) || !route_backend_usable(&up->backends[i], now_ms))
                continue;
            if (x < up->backends[i].weight)
                return (int)i;
            x -= up->backends[i].weight;
        }
        return -1;
    }
    case LB_HASH: {
        /* The key's slot in the Maglev table; if that backend cannot take
         * it, the next slots in order: every instance walks the same way,
         * so a key still lands on the same backend everywhere. */
        uint32_t slot = (uint32_t)(route_hash(key, keylen) % up->maglev_size);
        for (uint32_t k = 0; k < up->maglev_size; k++) {
            uint32_t i = up->maglev[(slot + k) % up->maglev_size];
            if (!skipped(i, skip, nskip) && route_backend_usable(&up->backends[i], now_ms))
                return (int)i;
            if (k > 4 * n + 64) {
                /* Every backend seen many times: none is usable. */
                break;
            }
        }
        return -1;
    }
    }
    return -1;
}

void route_backend_result(const struct rc_upstream *up, const struct rc_backend *b, bool ok,
                          uint64_t now_ms)
{
    struct backend_state *st = b->state;
    unsigned fails, n;
    uint64_t t;

    if (ok) {
        atomic_store_explicit(&st->fails, 0, memory_order_relaxed);
        if (atomic_load_explicit(&st->eject_until, memory_order_relaxed) <= now_ms)
            atomic_store_explicit(&st->ejections, 0, memory_order_relaxed);
        return;
    }
    fails = atomic_fetch_add_explicit(&st->fails, 1, memory_order_relaxed) + 1;
    if (fails < up->health.unhealthy_threshold)
        return;
    atomic_store_explicit(&st->fails, 0, memory_order_relaxed);
    n = atomic_fetch_add_explicit(&st->ejections, 1, memory_order_relaxed);
    t = up->ejection_ms << (n < EJECT_MAX ? n : EJECT_MAX);
    if (t > up->ejection_ms * 10)
        t = up->ejection_ms * 10;
    atomic_store_explicit(&st->eject_until, now_ms + t, memory_order_relaxed);
}

/* ------------------------------------------------------------ Maglev */

uint64_t route_hash(const void *key, size_t n)
{
    return XXH3_64bits_withSeed(key, n, 0x77736761746531ull /* "wsgate1" */);
}

uint32_t *route_maglev_build(const char *const *names, const unsigned *weights, size_t n,
                             uint32_t m)
{
    uint32_t *table = malloc((size_t)m * sizeof(*table));
    uint32_t *offset = calloc(n, sizeof(*offset)), *skip = calloc(n, sizeof(*skip));
    uint32_t *next = calloc(n, sizeof(*next));
    size_t *order = calloc(n, sizeof(*order));
    uint32_t filled = 0;

    if (!table || !offset || !skip || !next || !order || n == 0) {
        free(table);
        table = NULL;
        goto out;
    }
    for (uint32_t i = 0; i < m; i++)
        table[i] = UINT32_MAX;
    /* Fill in the order of the names, not of the config, so the same set
     * of backends gives the same table whatever order they are listed in. */
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) {
        size_t x = order[i], j = i;
        while (j > 0 && strcmp(names[order[j - 1]], names[x]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        offset[i] = (uint32_t)(XXH3_64bits_withSeed(names[i], len, 0x6d61676c6576ull) % m);
        skip[i] = (uint32_t)(XXH3_64bits_withSeed(names[i], len, 0x736b6970ull) % (m - 1)) + 1;
    }
    /* Each round, each backend claims up to `weight` of its preferred free
     * slots (weighted Maglev). */
    while (filled < m) {
        for (size_t k = 0; k < n && filled < m; k++) {
            size_t i = order[k];
            for (unsigned w = 0; w < weights[i] && filled < m; w++) {
                uint32_t c;
                do {
                    c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % m);
                    next[i]++;
                } while (table[c] != UINT32_MAX);
                table[c] = (uint32_t)i;
                filled++;
            }
        }
    }
out:
    free(offset);
    free(skip);
    free(next);
    free(order);
    return table;
}

/* ------------------------------------------------------------ state */

int route_upstream_init(struct rc_upstream *up)
{
    if (up->sticky_cookie && !up->sticky_secret && route_sticky_init() < 0)
        return ERR_NOMEM;
    for (size_t i = 0; i < up->nbackends; i++) {
        struct rc_backend *b = &up->backends[i];
        if (b->state)
            continue;
        b->state = calloc(1, sizeof(*b->state));
        if (!b->state)
            return ERR_NOMEM;
        b->state->id = XXH3_64bits_withSeed(b->url, strlen(b->url), 0x737469636b79ull);
    }
    if (up->balance == LB_HASH && !up->maglev) {
        const char **names = calloc(up->nbackends, sizeof(*names));
        unsigned *weights = calloc(up->nbackends, sizeof(*weights));
        if (!names || !weights) {
            free(names);
            free(weights);
            return ERR_NOMEM;
        }
        for (size_t i = 0; i < up->nbackends; i++) {
            names[i] = up->backends[i].url;
            weights[i] = up->backends[i].weight;
        }
        up->maglev_size = MAGLEV_SIZE;
        up->maglev = route_maglev_build(names, weights, up->nbackends, up->maglev_size);
        free(names);
        free(weights);
        if (!up->maglev)
            return ERR_NOMEM;
    }
    return 0;
}

void route_states_free(struct rc_upstream *up)
{
    for (size_t i = 0; i < up->nbackends; i++) {
        free(up->backends[i].state);
        up->backends[i].state = NULL;
    }
}

void route_backend_acquire(const struct rc_backend *b)
{
    atomic_fetch_add_explicit(&b->state->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->state->total, 1, memory_order_relaxed);
}

void route_backend_release(const struct rc_backend *b)
{
    atomic_fetch_sub_explicit(&b->state->active, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ sticky */

/* Used when an upstream sets no secret: random per process, so cookies
 * only hold for this process's life (set `secret` to share them between
 * instances and restarts). Written once on the main thread before the
 * workers start. */
static uint8_t process_secret[32];
static bool process_secret_set;

static int sticky_mac(const struct rc_upstream *up, uint64_t id, uint8_t mac[STICKY_MAC])
{
    uint8_t msg[MAX_STICKY_MSG], full[EVP_MAX_MD_SIZE];
    size_t nl = strlen(up->name), outlen = 0;
    const void *key = up->sticky_secret ? (const void *)up->sticky_secret : process_secret;
    size_t keylen = up->sticky_secret ? strlen(up->sticky_secret) : sizeof(process_secret);

    if (nl > sizeof(msg) - 9)
        nl = sizeof(msg) - 9;
    memcpy(msg, up->name, nl);
    msg[nl] = 0;
    memcpy(msg + nl + 1, &id, 8);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, msg, nl + 9, full, sizeof(full),
                   &outlen) ||
        outlen < STICKY_MAC) {
        ERR_clear_error();
        return ERR_SYS;
    }
    memcpy(mac, full, STICKY_MAC);
    return 0;
}

int route_sticky_header(const struct rc_upstream *up, const struct rc_backend *b, char *out,
                        size_t cap)
{
    uint8_t raw[8 + STICKY_MAC];
    char val[64];
    int n;

    memcpy(raw, &b->state->id, 8);
    if (sticky_mac(up, b->state->id, raw + 8) < 0)
        return ERR_SYS;
    if (EVP_EncodeBlock((unsigned char *)val, raw, sizeof(raw)) <= 0)
        return ERR_SYS;
    /* base64url without padding: safe in a cookie value. */
    for (char *p = val; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=')
            *p = '\0';
    }
    if (up->sticky_ttl_ms)
        n = snprintf(
            out, cap, "Set-Cookie: %s=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Lax\r\n",
            up->sticky_cookie, val, (unsigned long long)((up->sticky_ttl_ms + 999) / 1000));
    else
        n = snprintf(out, cap, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax\r\n",
                     up->sticky_cookie, val);
    return n > 0 && (size_t)n < cap ? n : ERR_RANGE;
}

int route_sticky_decode(const struct rc_upstream *up, const char *v, size_t n)
{
    char b64[32];
    uint8_t raw[32], mac[STICKY_MAC];
    uint64_t id;
    int len;

    /* 16 bytes are 22 base64url characters without padding. */
    if (n != 22)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return -1;
        b64[i] = c;
    }
    memcpy(b64 + 22, "==", 3);
    len = EVP_DecodeBlock(raw, (const unsigned char *)b64, 24);
    if (len != 18)
        return -1;
    /* Only the canonical spelling: the last character's low 4 bits are
     * padding and must be zero, so no two values name the same bytes. */
    {
        char again[32];
        if (EVP_EncodeBlock((unsigned char *)again, raw, 16) != 24 || memcmp(again, b64, 22) != 0)
            return -1;
    }
    memcpy(&id, raw, 8);
    if (sticky_mac(up, id, mac) < 0 || CRYPTO_memcmp(mac, raw + 8, STICKY_MAC) != 0)
        return -1; /* tampered, or signed with another secret: ignored */
    for (size_t i = 0; i < up->nbackends; i++)
        if (up->backends[i].state->id == id)
            return (int)i;
    return -1; /* a backend no longer in the pool */
}

int route_sticky_init(void)
{
    if (process_secret_set)
        return 0;
    if (RAND_bytes(process_secret, sizeof(process_secret)) != 1) {
        ERR_clear_error();
        return ERR_SYS;
    }
    process_secret_set = true;
    return 0;
}
