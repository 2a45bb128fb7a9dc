/* The admission chain: between reading a client's request head and picking
 * a backend, the route's admission steps run in order (IP rules, Origin,
 * subprotocols; authentication and handshake limits join later). A step
 * allows, or denies with an error code whose status the error table
 * gives (403, 400, ...). A route with no rules has no steps and costs one
 * comparison.
 *
 *   ip           allow: / deny: CIDR lists against the client address
 *                (the peer, or what trusted_proxies' X-Forwarded-For says)
 *   origin       origins: allowlist, require_origin (upgrades only)
 *   subprotocol  subprotocols: allowlist, require_subprotocol (upgrades
 *                only): offered entries not listed are removed before
 *                forwarding
 *
 * Configuration: see admit_conf.h. */
#ifndef WSG_ADMIT_ADMIT_H
#define WSG_ADMIT_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admit/cidr.h"
#include "http/parser.h"

/* What a step sees of the request, and what it may change for the
 * backend. Out fields are malloc'd; the caller frees them with
 * admit_ctx_clear whatever the outcome. */
struct admit_ctx {
    const struct http_request *req;
    bool upgrade;                  /* a WebSocket upgrade (else a plain request) */
    const struct sockaddr *client; /* the client's address */
    struct http_span query;        /* the request's query (after '?'), may be empty */
    uint64_t now_s;                /* wall clock, seconds since the epoch */
    /* out: the Sec-WebSocket-Protocol list to forward instead of the
     * client's (protocols_set; NULL/empty: none) */
    char *protocols;
    bool protocols_set;
    char *query_out; /* the query to forward instead (query_set) */
    bool query_set;
    char *lines;              /* header lines for the backend request, each ending in CRLF */
    const char *const *strip; /* header names removed from what is forwarded */
    size_t nstrip;
    char user[128];        /* who (JWT sub, API key name), for the log */
    char reason[64];       /* why authentication failed, for the log */
    const char *challenge; /* WWW-Authenticate line for a 401 */
    uint64_t expires_s;    /* the credentials' end (JWT exp), 0: none */
    unsigned retry_after;  /* seconds, for a 429 or 503 */
    bool limit_held;       /* a limits: connection slot was taken (limit_release) */
};

void admit_ctx_clear(struct admit_ctx *cx);

struct admit_conf;

/* Run the route's steps. Returns 0 (admitted) or the ERR_* of the first
 * step that denied. */
int admit_run(const struct admit_conf *a, struct admit_ctx *cx);

/* Whether a route has any step (a cheap check before admit_run). */
bool admit_any(const struct admit_conf *a);

/* IP rules alone (listeners use them at accept): deny wins, then an allow
 * list that is not empty must match. */
struct admit_ip {
    struct cidr_list allow, deny;
};
bool admit_ip_ok(const struct admit_ip *ip, const struct sockaddr *sa);
static inline bool admit_ip_any(const struct admit_ip *ip)
{
    return ip->allow.n > 0 || ip->deny.n > 0;
}

/* The client's address for rules, limits and logs: the peer, unless the
 * peer is a trusted proxy and the request has X-Forwarded-For: then the
 * rightmost entry that is not a trusted proxy (walking right to left;
 * when every entry is trusted, the leftmost). An entry that is not an
 * address stops the walk at the last good one. Returns false (out
 * untouched) when the peer's own address stands. */
bool admit_forwarded_client(const struct cidr_list *trusted, const struct sockaddr *peer,
                            const struct http_request *req, struct sockaddr_storage *out);

#endif
