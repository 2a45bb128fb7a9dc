/* Routing and load balancing at the handshake: which route a request
 * matches, which backend of the route's upstream a new connection goes to,
 * and each backend's state (health, ejection, connection count) as all
 * workers see it. Nothing here runs per message. */
#ifndef WSG_ROUTE_ROUTE_H
#define WSG_ROUTE_ROUTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rand.h"
#include "http/parser.h"
#include "route/route_conf.h"

/* A backend's runtime state, shared by the workers and the health checker.
 * Touched once per connection (pick, connect result, close), never per
 * message. */
struct backend_state {
    atomic_uint active;        /* open connections to it, all workers */
    atomic_bool down;          /* marked down by active health checks */
    atomic_ullong eject_until; /* monotonic ms: passively ejected until then */
    atomic_uint fails;         /* consecutive connect or handshake failures */
    atomic_uint ejections;     /* ejections in a row (the ejection time doubles) */
    atomic_ullong total;       /* connections it was given */
    uint64_t id;               /* stable id from its URL: sticky cookies name it */
};

/* A request's view for matching: spans into the request head (borrowed). */
struct route_req {
    const char *host; /* Host header value (may carry a port), or NULL */
    size_t host_len;
    const char *path; /* normalized path, no query */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    const struct http_header *headers; /* the request's header fields */
    unsigned nheaders;
};

/* The first route of rc that req matches, or NULL. */
const struct rc_route *route_match(const struct route_conf *rc, const struct route_req *req);

/* Pick the upstream of route r for a new connection (a weighted split is
 * decided with rng). */
const struct rc_upstream *route_pick_upstream(const struct rc_route *r, struct rng *rng);

/* The matched path prefix replaced by the route's rewrite (if any) and the
 * backend's own path prepended: out (cap bytes) receives the path to send
 * upstream, then '?' and the query when there is one. Returns its length,
 * or ERR_RANGE when it does not fit. */
int route_upstream_target(const struct rc_route *r, const struct rc_backend *b,
                          const struct route_req *req, char *out, size_t cap);

/* Per-worker balancer state (smooth weighted round robin's counters). */
struct route_worker {
    int32_t **rr; /* rr[upstream][backend] */
    size_t n;
};

int route_worker_init(struct route_worker *rw, const struct route_conf *rc);
void route_worker_free(struct route_worker *rw);

/* Whether b may take a new connection now: not down, not ejected, not
 * draining, under its max_connections. */
bool route_backend_usable(const struct rc_backend *b, uint64_t now_ms);

/* Pick a backend of upstream up (index ui in the route_conf) for a new
 * connection, skipping skip[0..nskip) (backends already tried). key[0..n):
 * the hash key for LB_HASH (ignored otherwise). Returns its index, or -1
 * when none is usable. */
int route_pick_backend(struct route_worker *rw, size_t ui, const struct rc_upstream *up,
                       const void *key, size_t keylen, const uint32_t *skip, size_t nskip,
                       uint64_t now_ms, struct rng *rng);

/* Outcome of a connection attempt, for passive outlier detection: a
 * success resets the failure count; `eject_after` failures in a row eject
 * the backend for ejection_ms, doubling on each ejection in a row, up to
 * 10 times that. */
void route_backend_result(const struct rc_upstream *up, const struct rc_backend *b, bool ok,
                          uint64_t now_ms);

/* Maglev lookup table (Eisenbud et al., NSDI 2016): size m (a prime) for
 * n backends with weights w; each entry is a backend index. The same
 * names in any order give the same table. Returns a malloc'd table or NULL. */
uint32_t *route_maglev_build(const char *const *names, const unsigned *weights, size_t n,
                             uint32_t m);

/* Hash of key bytes for the Maglev lookup. */
uint64_t route_hash(const void *key, size_t n);

/* Count a connection to b (acquire, at the attempt) or its end (release). */
void route_backend_acquire(const struct rc_backend *b);
void route_backend_release(const struct rc_backend *b);

/* The Set-Cookie header line (with CRLF) naming backend b of a sticky
 * upstream: its stable id and an HMAC of it keyed by the upstream's secret
 * (or a per-process random one), base64url. Returns its length, or ERR_SYS
 * / ERR_RANGE. */
int route_sticky_header(const struct rc_upstream *up, const struct rc_backend *b, char *out,
                        size_t cap);

/* The index of the backend a sticky cookie value v[0..n) names, or -1 when
 * it is malformed, tampered with, signed with another key, or names no
 * backend of up. Never an error: a bad cookie is ignored. */
int route_sticky_decode(const struct rc_upstream *up, const char *v, size_t n);

/* The per-process sticky secret (main thread, before workers start). */
int route_sticky_init(void);

/* Allocate the upstream's backend states and its Maglev table (LB_HASH).
 * Idempotent. Returns 0 or ERR_NOMEM. */
int route_upstream_init(struct rc_upstream *up);
void route_states_free(struct rc_upstream *up);

#endif
