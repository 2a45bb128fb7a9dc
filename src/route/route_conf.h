/* The `upstreams:` and `routes:` sections: named pools of backends and an
 * ordered list of routes (first match wins), as read from the file or the
 * command line. The route module owns these structs; config.c only holds a
 * pointer (struct config.routing). Everything here is read-only once
 * loaded; per-backend runtime state (health, counts) lives in route.h. */
#ifndef WSG_ROUTE_ROUTE_CONF_H
#define WSG_ROUTE_ROUTE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/engine.h"
#include "admit/admit_conf.h"
#include "tls/tls_conf.h"
#include "config/limits.h"

struct backend_state;

enum lb_algo { LB_ROUND_ROBIN, LB_LEAST_CONN, LB_P2C, LB_RANDOM, LB_HASH };

enum hash_src { HASH_IP, HASH_HEADER, HASH_COOKIE, HASH_QUERY, HASH_PATH };

enum hc_type { HC_NONE, HC_TCP, HC_HTTP, HC_WEBSOCKET };

struct rc_backend {
    char *url;                   /* as configured */
    struct conf_addr addr;       /* resolved */
    char *path;                  /* the URL's own path, prepended upstream ("" for none) */
    bool tls;                    /* wss:// */
    bool host_is_ip;             /* the URL names an address, not a host name */
    char *host;                  /* the URL's host: TLS name check and SNI */
    unsigned weight;             /* 1..256, default 1 */
    unsigned max_connections;    /* 0 = unlimited */
    bool drain;                  /* no new connections */
    struct backend_state *state; /* runtime state shared by the workers */
    int line;                    /* where it was configured, for messages */
};

struct rc_health {
    enum hc_type type;            /* HC_NONE: no active checks */
    char *path;                   /* http, websocket: request path, default "/" */
    uint64_t interval_ms;         /* default 5s */
    uint64_t timeout_ms;          /* default 2s */
    unsigned healthy_threshold;   /* consecutive passes to mark up, default 2 */
    unsigned unhealthy_threshold; /* consecutive failures to mark down, default 3 */
};

struct rc_upstream {
    char *name;
    struct rc_backend *backends;
    size_t nbackends;
    enum lb_algo balance;
    enum hash_src hash_src;      /* LB_HASH */
    char *hash_name;             /* header, cookie or query parameter name for LB_HASH */
    char *sticky_cookie;         /* NULL: no stickiness */
    char *sticky_secret;         /* HMAC key for the cookie; NULL: random per process */
    uint64_t sticky_ttl_ms;      /* cookie Max-Age; 0: a session cookie */
    uint64_t connect_timeout_ms; /* 0: the global connect_timeout */
    unsigned retries;            /* further backends tried before the 101, default 2 */
    uint64_t ejection_ms;        /* passive ejection, default 30s; doubles up to 10x */
    unsigned eject_after;        /* consecutive connect/handshake failures, default 3 */
    uint64_t drain_timeout_ms;   /* draining backends' connections end by then, default 5m */
    struct rc_health health;
    unsigned http_pool_max_idle; /* idle kept-alive connections per backend and worker */
    uint64_t http_pool_idle_ms;  /* an idle one is closed after this */
    uint32_t *maglev;            /* LB_HASH: lookup table of backend indexes */
    uint32_t maglev_size;        /* a prime */
    bool implicit;               /* made from a short-form route's backend */
    bool has_tls;                /* some backend is wss:// */
    struct tls_client_conf tls;  /* for them (the `tls:` section, or defaults) */
    int line;                    /* where it was configured */
};

/* A match on a header or query parameter. */
struct rc_pair {
    char *name;
    char *value; /* NULL: present with any value */
};

struct auth_conf;
struct limit_conf;

struct rc_split {
    struct rc_upstream *up; /* borrowed from the route_conf (set by route_conf_finish) */
    size_t up_index;        /* index in route_conf.upstreams */
    unsigned weight;
};

struct rc_route {
    /* match: every part given must hold */
    char *host;        /* exact, or "*.suffix"; lower case; NULL: any */
    char *path;        /* exact normalized path; NULL: any */
    char *path_prefix; /* segment-aware prefix; NULL: any */
    struct rc_pair *headers;
    size_t nheaders;
    struct rc_pair *query;
    size_t nquery;
    /* where to */
    struct rc_split *splits; /* one entry for `upstream:` */
    size_t nsplits;
    unsigned split_total;      /* sum of weights */
    char *rewrite_prefix;      /* replaces the matched path_prefix upstream; NULL: none */
    bool websocket_only;       /* plain requests get 426 instead of being proxied */
    struct admit_conf admit;   /* origins, subprotocols, allow/deny (admit/) */
    struct auth_conf *auth;    /* auth: (auth/), or NULL */
    struct limit_conf *limits; /* limits: (limit/), or NULL */
    struct limits lim;         /* in force on this route: the core values and the overrides */
    uint32_t lim_set;          /* which lim fields the route overrides (1 << key index) */
    int line;                  /* where it was configured ("route at line N" in logs) */
    char name[32];             /* "route N" (1-based) or the short form's path, for logs */
};

struct route_conf {
    struct rc_upstream *upstreams;
    size_t nupstreams;
    struct rc_route *routes; /* in match order */
    size_t nroutes;
    bool short_form; /* every route used path + backend: longest prefix first */
};

/* Parse the `upstreams:` value (a mapping of name -> pool) into rc. */
bool route_conf_upstreams(struct conf_diag *d, struct route_conf *rc, const struct ynode *v);

/* Parse the `routes:` value (a sequence) into rc, after upstreams. */
bool route_conf_routes(struct conf_diag *d, struct route_conf *rc, const struct ynode *v);

/* After both sections and the core keys: give every route the core
 * limits it does not override (core: borrowed), order short-form routes
 * longest prefix first, build the Maglev tables. Returns 0 or ERR_NOMEM. */
int route_conf_finish(struct route_conf *rc, const struct limits *core);

/* `--backend URL`: route "/" (replacing a short-form "/" route from the
 * file) to one backend. Returns 0, ERR_CONFIG with *why, or ERR_NOMEM. */
int route_conf_add_default(struct route_conf *rc, const char *url, const char **why);

/* Problems a route_conf built by code still has (no routes, ...), one
 * "wsgate: message" line each. Returns the number of problems. */
int route_conf_check(const struct route_conf *rc, FILE *errs);

void route_conf_free(struct route_conf *rc);

#endif
