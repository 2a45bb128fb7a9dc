/* Admission rules in the configuration (see admit.h for what they do).
 *
 * Per route:
 *   origins: ["https://app.example.com", "null", and wildcards: the
 *             scheme, "://", then "*.example.com"]
 *   require_origin: false       # true: a handshake without Origin is refused
 *   subprotocols: [graphql-transport-ws, mqtt]
 *   require_subprotocol: false  # true: 400 when no listed entry is offered
 *   allow: [10.0.0.0/8, 2001:db8::/32]
 *   deny: [10.1.2.3]
 * Per listener: allow: and deny: (a refused client is closed at accept).
 * Top level: trusted_proxies: [CIDR, ...]
 *
 * The keys are parsed by this module into a struct admit_conf embedded in
 * the owner's struct: a key table entry carries the offset of that struct
 * (see ADMIT_ROUTE_KEYS). */
#ifndef WSG_ADMIT_ADMIT_CONF_H
#define WSG_ADMIT_ADMIT_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "admit/admit.h"
#include "admit/cidr.h"
#include "config/engine.h"

/* One allowed Origin: exact, a "*." wildcard on the host, or "null". */
struct origin_rule {
    char scheme[8]; /* "http" or "https" */
    char *host;     /* lower case; for a wildcard the suffix after "*." */
    unsigned port;  /* explicit or the scheme's default */
    bool wild;
    bool null;
};

/* A step: fn(a, arg, cx) returns 0 or an ERR_*. a: the route's rules
 * (passed at each run: the struct may move after parsing); arg: the
 * step's own configuration (heap, stable), for steps of other modules. */
struct admit_step {
    int (*fn)(const struct admit_conf *a, const void *arg, struct admit_ctx *cx);
    const void *arg;
};

#define ADMIT_MAX_STEPS 8

struct admit_conf {
    struct admit_ip ip;
    struct origin_rule *origins;
    size_t norigins;
    bool has_origins;
    bool require_origin;
    char **subprotocols;
    size_t nsubprotocols;
    bool has_subprotocols;
    bool require_subprotocol;
    /* built by admit_conf_finish: the steps in order */
    struct admit_step steps[ADMIT_MAX_STEPS];
    size_t nsteps;
};

/* Key parsers (CK_CUSTOM; k->off is the offset of the struct admit_conf,
 * or of the struct admit_ip for the ip keys, inside base). */
bool admit_parse_origins(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base);
bool admit_parse_subprotocols(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                              void *base);
bool admit_parse_allow(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base);
bool admit_parse_deny(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                      void *base);
/* A CIDR list into the struct cidr_list at k->off (trusted_proxies). */
bool admit_parse_cidrs(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base);

/* The route keys, for a key table whose base struct holds a struct
 * admit_conf at member path `m` of type `type`. */
#define ADMIT_ROUTE_KEYS(type, m)                                                                  \
    {.name = "origins",                                                                            \
     .kind = CK_CUSTOM,                                                                            \
     .parse = admit_parse_origins,                                                                 \
     .off = offsetof(type, m),                                                                     \
     .expected = "a sequence of origins such as https://app.example.com"},                         \
        {.name = "require_origin", .kind = CK_BOOL, CONF_FIELD(type, m.require_origin, CF_BOOL)},  \
        {.name = "subprotocols",                                                                   \
         .kind = CK_CUSTOM,                                                                        \
         .parse = admit_parse_subprotocols,                                                        \
         .off = offsetof(type, m),                                                                 \
         .expected = "a sequence of subprotocol names"},                                           \
        {.name = "require_subprotocol",                                                            \
         .kind = CK_BOOL,                                                                          \
         CONF_FIELD(type, m.require_subprotocol, CF_BOOL)},                                        \
        {.name = "allow",                                                                          \
         .kind = CK_CUSTOM,                                                                        \
         .parse = admit_parse_allow,                                                               \
         .off = offsetof(type, m.ip),                                                              \
         .expected = "a sequence of addresses or CIDR ranges"},                                    \
        {.name = "deny",                                                                           \
         .kind = CK_CUSTOM,                                                                        \
         .parse = admit_parse_deny,                                                                \
         .off = offsetof(type, m.ip),                                                              \
         .expected = "a sequence of addresses or CIDR ranges"},

/* After parsing: check combinations (require_subprotocol without
 * subprotocols, ...; reported at `at`), build the steps: ip, origin, then
 * the other modules' steps in order (handshake limits, authentication),
 * then subprotocol (which filters what authentication left of the
 * offer). */
bool admit_conf_finish(struct conf_diag *d, const struct ynode *at, struct admit_conf *a,
                       const struct admit_step *more, size_t nmore);
void admit_conf_free(struct admit_conf *a);
void admit_ip_free(struct admit_ip *ip);

/* Parse one origin rule: "https://a.example.com", "http://localhost:3000",
 * "null", or a wildcard (the scheme, "://", "*.example.com"). Returns 0 or
 * -1 with *why. */
int origin_rule_parse(const char *s, struct origin_rule *out, const char **why);
/* Whether an Origin header value matches the rules. */
bool origin_allowed(const struct origin_rule *rules, size_t n, const char *v, size_t len);

#endif
