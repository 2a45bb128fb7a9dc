/* Configuration: a YAML file (or command-line flags) turned into a validated,
 * read-only snapshot. Every error names file:line:column and what was
 * expected. Runs on the main thread only (it may resolve host names). */
#ifndef WSG_CONFIG_CONFIG_H
#define WSG_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

struct cfg_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* "127.0.0.1:8080" or "[::1]:8080" as configured after resolution */
};

struct cfg_backend {
    char *url;            /* as configured, e.g. "ws://127.0.0.1:9000" */
    struct cfg_addr addr; /* resolved address */
};

struct cfg_route {
    char *path; /* path prefix, starts with '/'; matches on segment boundaries */
    size_t path_len;
    struct cfg_backend backend;
};

struct config {
    struct cfg_addr listen;
    unsigned workers;         /* worker threads; 0 in the file means one per core */
    unsigned max_connections; /* concurrent client connections, all workers; 0 = as many
                                 as the descriptor limit holds */
    enum log_level log_level;

    uint64_t handshake_timeout_ms; /* client request head must arrive within */
    uint64_t connect_timeout_ms;   /* backend TCP connect + 101 must arrive within */
    uint64_t close_timeout_ms;     /* close handshake must complete within */
    uint64_t ping_interval_ms;     /* silence on a leg before wsgate pings it; 0 = off */
    uint64_t pong_timeout_ms;      /* wait for a pong after wsgate's ping */
    uint64_t idle_timeout_ms;      /* no data frames either way; 0 = off */
    uint64_t max_stall_ms;         /* bytes wait for a side that takes none; 0 = off */
    uint64_t shutdown_timeout_ms;  /* graceful shutdown waits at most */

    size_t max_header_size;    /* bytes of a request or response head */
    unsigned max_headers;      /* header fields per head */
    uint64_t max_frame_size;   /* payload bytes per frame */
    uint64_t max_message_size; /* payload bytes per message */
    bool validate_utf8;        /* check text messages and close reasons */

    size_t high_watermark; /* bytes queued to one leg before reading the other stops */
    size_t low_watermark;  /* reading resumes below this */

    struct cfg_route *routes; /* sorted by path length, longest first */
    size_t nroutes;
};

/* Set every field to its documented default; no routes, listen unset
 * (listen.len == 0). */
void config_defaults(struct config *c);

/* Load and validate a YAML file into a new snapshot.
 * Every problem is written to `errs` (may be NULL) as
 * "file:line:column: message\n" (1-based), sorted by position; all problems
 * found are reported, not just the first. A file that cannot be opened gives
 * "file: cannot open: <strerror>\n". Returns 0 and sets *out (caller frees
 * with config_free), ERR_CONFIG, or ERR_NOMEM; *out is NULL on failure.
 * Unknown keys, duplicate keys, wrong types, out-of-range values, malformed
 * durations/sizes/addresses/URLs, YAML syntax errors, a missing listen
 * address or no routes are errors. Resolves host names (blocking). */
int config_load_file(const char *path, FILE *errs, struct config **out);

/* Validate a config built by other means (defaults + flags): listen set, at
 * least one route, every value within its documented range, low < high
 * watermark, route paths valid and distinct. Writes one "wsgate: message\n"
 * line per problem to errs (may be NULL); returns 0 or ERR_CONFIG. */
int config_validate(const struct config *c, FILE *errs);

/* Parse "10s", "500ms", "2m", "1h", "0", or "off" (= 0) into milliseconds:
 * decimal digits then exactly one unit of ms, s, m or h. A bare number other
 * than 0 has no unit and is rejected, as are signs, spaces, fractions and
 * overflow. Returns 0 or ERR_CONFIG (*ms untouched). */
int config_parse_duration(const char *s, uint64_t *ms);

/* Parse a size into bytes: a plain number is bytes ("512", "512B"); the
 * suffixes KiB/k/K, MiB/m/M and GiB/g/G multiply by 1024, 1024^2, 1024^3
 * ("16KiB", "64k", "16MiB"). Anything else, or overflow, is ERR_CONFIG. */
int config_parse_size(const char *s, uint64_t *bytes);

/* Parse "host:port" / "[v6]:port" (listen; host may be "*" or empty for all
 * IPv4 addresses, "[::]" for all IPv6 ones, or a name resolved with
 * getaddrinfo, first result). Port 0..65535 (0: ephemeral). On success fills
 * *out, with out->text the canonical numeric form. Returns 0 or ERR_CONFIG
 * with a static reason in *why (why may be NULL); *out untouched on error. */
int config_parse_listen(const char *s, struct cfg_addr *out, const char **why);

/* Parse a backend URL "ws://host[:port][/]" (port 1..65535, default 80;
 * host resolved with getaddrinfo, first result). wss:// and paths other than
 * "/" are rejected with a reason in *why (not supported yet). On success
 * out->url is a malloc'd copy the caller frees. Returns 0, ERR_CONFIG with a
 * static reason in *why (why may be NULL), or ERR_NOMEM; *out untouched on
 * error. */
int config_parse_backend(const char *url, struct cfg_backend *out, const char **why);

/* Add a route (path prefix must start with '/'); keeps routes sorted.
 * Takes ownership of nothing: copies path and b->url (the caller still frees
 * its own b->url). A path already present gets the new backend (so a flag can
 * override the file). Returns 0, ERR_CONFIG (path not starting with '/', or
 * no b->url), or ERR_NOMEM. */
int config_add_route(struct config *c, const char *path, const struct cfg_backend *b);

/* Free a heap snapshot made by config_load_file (or calloc'd and filled by
 * config_add_route). NULL is a no-op. */
void config_free(struct config *c);

/* Release the routes of a struct config that is not heap-allocated. */
void config_clear(struct config *c);

#endif
