/* Configuration: a YAML file (or command-line flags) turned into a validated,
 * read-only snapshot. The core keys live here; each module's section is
 * parsed by that module (route/route_conf.c for `upstreams:` and
 * `routes:`) on the engine in config/engine.h. Every error names
 * file:line:column and what was expected. Runs on the main thread only (it
 * may resolve host names). */
#ifndef WSG_CONFIG_CONFIG_H
#define WSG_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/engine.h"
#include "config/limits.h"
#include "admit/admit_conf.h"
#include "route/route_conf.h"
#include "tls/tls_conf.h"

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Where clients connect: `listen:` (one plain listener) or `listeners:`. */
struct conf_listener {
    struct conf_addr addr;
    struct admit_ip ip;  /* allow/deny: refused clients are closed at accept */
    bool proxy_protocol; /* connections start with a PROXY header (v1 or v2) */
    bool has_tls;
    struct tls_conf tls; /* when has_tls */
};

#define MAX_LISTENERS 16

struct config {
    struct conf_listener *listeners; /* none until set */
    size_t nlisteners;
    unsigned workers;         /* worker threads; 0 = one per core */
    unsigned max_connections; /* concurrent client connections, all workers; 0 = as many
                                 as the descriptor limit holds */
    enum log_level log_level;

    uint64_t handshake_timeout_ms; /* client request head must arrive within */
    uint64_t shutdown_timeout_ms;  /* graceful shutdown waits at most */
    size_t max_header_size;        /* bytes of a request or response head */
    unsigned max_headers;          /* header fields per head */
    bool merge_slashes;            /* "//" in request paths reads as "/" */

    struct cidr_list trusted_proxies; /* peers whose X-Forwarded-For names the client */
    struct limits lim;                /* the core limits and timeouts; routes may override */
    struct route_conf routing;        /* upstreams and routes (route module) */
};

/* Set every field to its documented default; no routes, no listeners. */
void config_defaults(struct config *c);

/* Load and validate a YAML file into a new snapshot (finished: see
 * config_finish). Every problem goes to errs (may be NULL) as
 * "file:line:column: message\n", sorted by position; a file that cannot be
 * opened gives "file: cannot open: <strerror>\n". Returns 0 and sets *out
 * (free with config_free), ERR_CONFIG, or ERR_NOMEM; *out is NULL on
 * failure. Resolves host names (blocking). */
int config_load_file(const char *path, FILE *errs, struct config **out);

/* Apply a command-line flag through the core key table: key is the config
 * key ("listen", "workers", "log_level"), flag its spelling for messages
 * ("--workers"). Problems are printed to errs as "wsgate: --flag: ...".
 * Returns 0 or ERR_CONFIG. */
int config_set_flag(struct config *c, const char *key, const char *flag, const char *text,
                    FILE *errs);

/* `--backend URL`: a route "/" to that backend (see route_conf_add_default).
 * Returns 0, ERR_CONFIG (a reason printed to errs) or ERR_NOMEM. */
int config_set_backend(struct config *c, const char *url, FILE *errs);

/* After flags: give routes the limits they do not override, build the
 * balancers' tables. Idempotent. Returns 0 or ERR_NOMEM. */
int config_finish(struct config *c);

/* Validate a config built by other means (defaults + flags): listen set, at
 * least one route, every value within its documented range, low < high
 * watermark. One "wsgate: message\n" line per problem to errs (may be
 * NULL); returns 0 or ERR_CONFIG. */
int config_validate(const struct config *c, FILE *errs);

/* Release a heap snapshot from config_load_file (or calloc'd). NULL is a
 * no-op. */
void config_free(struct config *c);

/* Release what a struct config that is not heap-allocated holds. */
void config_clear(struct config *c);

#endif
