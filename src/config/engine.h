/* The configuration engine: what every section parser builds on.
 *
 *   - a YAML tree whose nodes carry their line:column (libfyaml's event API;
 *     its document API has no marks on nodes);
 *   - diagnostics: every problem is collected with its position and printed
 *     sorted as "file:line:column: message";
 *   - typed key tables: a section describes its keys (name, kind, the field
 *     of its own struct, range) and conf_apply_map checks a mapping against
 *     them: unknown keys, wrong types, values out of range, missing required
 *     keys. Command-line flags go through the same tables (conf_apply_text);
 *   - value parsers: durations, sizes, integers, addresses.
 *
 * A section parser (route/route_conf.c, later tls/, auth/, ...) owns its
 * struct and its key table; config/config.c assembles the sections. */
#ifndef WSG_CONFIG_ENGINE_H
#define WSG_CONFIG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONF_KIB ((uint64_t)1024)
#define CONF_MIB (CONF_KIB * 1024)
#define CONF_GIB (CONF_MIB * 1024)

#define CONF_MAX_DURATION_MS (8760ull * 3600 * 1000) /* one year: keeps timer arithmetic safe */
#define CONF_QUOTE_MAX       60                      /* bytes of a value echoed in a message */
#define CONF_QUOTE_BUF       (CONF_QUOTE_MAX * 4 + 8)

/* ------------------------------------------------------------ the tree */

enum ynode_type { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ynode_type type;
    int line, col;       /* 1-based position of the node's first character */
    char *text;          /* scalar: NUL-terminated copy of the value */
    size_t len;          /* scalar: bytes in text, may include NULs from escapes */
    bool null;           /* scalar: plain and empty, i.e. no value at all */
    bool bad;            /* stands in for a broken alias; already reported */
    struct ynode **kids; /* seq: items; map: key, value, key, value, ... */
    size_t nkids, capkids;
};

struct ytree;

/* ------------------------------------------------------- diagnostics */

struct conf_err;

struct conf_diag {
    const char *path; /* file name for messages, or NULL for flags ("wsgate: ...") */
    struct conf_err *v;
    size_t n, cap;
    bool oom;
};

/* Record a problem at a node's position (or line:col). Never fails: out of
 * memory is remembered and reported at flush. */
__attribute__((format(printf, 3, 4))) void conf_report(struct conf_diag *d, const struct ynode *at,
                                                       const char *fmt, ...);
__attribute__((format(printf, 4, 5))) void conf_report_at(struct conf_diag *d, int line, int col,
                                                          const char *fmt, ...);

/* Print every problem in file order to errs (may be NULL) and forget them. */
void conf_diag_flush(struct conf_diag *d, FILE *errs);

/* A value quoted and escaped for a message, at most CONF_QUOTE_MAX bytes
 * of it. buf: CONF_QUOTE_BUF bytes; returns buf. */
const char *conf_quote(const char *s, size_t len, char *buf);

/* How a node reads in a message: its quoted value, or "a sequence", "a
 * mapping", "nothing". buf: CONF_QUOTE_BUF bytes. */
const char *conf_describe(const struct ynode *n, char *buf);

/* "key: expected X, got <describe(v)>" at v. */
void conf_bad_value(struct conf_diag *d, const char *key, const struct ynode *v,
                    const char *expected);

/* The text of a scalar usable as a C string, or NULL (a collection, no
 * value, or a NUL byte from an escape sequence). Borrowed from the tree. */
const char *conf_scalar(const struct ynode *n);

/* A file name from the configuration: a relative one is taken from the
 * directory of the configuration file being read (d->path), as a user
 * reading the file expects; absolute ones, and names given without a file,
 * stay as they are. Replaces *name (malloc'd); false when out of memory
 * (d->oom set). */
bool conf_file_path(struct conf_diag *d, char **name);

/* Whether key i of map m repeats an earlier key (already reported). */
bool conf_dup_key(const struct ynode *m, size_t i);

/* Parse YAML bytes into a tree; syntax errors go to d. Returns the root (a
 * null scalar for an empty file) or NULL on a syntax error or out of
 * memory (d->oom). *treep is set either way and freed with conf_tree_free. */
const struct ynode *conf_parse_yaml(struct conf_diag *d, const char *buf, size_t len,
                                    struct ytree **treep);
void conf_tree_free(struct ytree *t);

/* ------------------------------------------------------ key tables */

enum conf_kind {
    CK_UINT,     /* integer from min to max */
    CK_AUTO,     /* "auto" (stored as 0) or an integer from 1 to max */
    CK_DURATION, /* duration; min 0 allows "off"/"0" (stored as 0) */
    CK_SIZE,     /* size from min to max bytes */
    CK_BOOL,     /* true or false */
    CK_ENUM,     /* one of names[] (stored as its index) */
    CK_STRING,   /* any text (stored as a malloc'd copy in a char *) */
    CK_CUSTOM,   /* parsed by the key's own callback */
};

enum conf_field { CF_NONE, CF_UNSIGNED, CF_SIZE, CF_U64, CF_BOOL, CF_INT, CF_STRING };

struct conf_key;

/* A CK_CUSTOM key's parser: check v, store into base; report problems to
 * d. Returns true when the value was valid. */
typedef bool (*conf_custom_cb)(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                               void *base);

struct conf_key {
    const char *name;
    enum conf_kind kind;
    enum conf_field field; /* how the value is stored at base + off */
    size_t off;
    uint64_t min, max;        /* inclusive; for CK_DURATION min 0 means "off" is allowed */
    const char *const *names; /* CK_ENUM: the accepted words, NULL-terminated */
    conf_custom_cb parse;     /* CK_CUSTOM */
    const char *expected;     /* CK_CUSTOM: "expected ..." text for type errors */
    bool required;
};

#define CONF_FIELD(type, member, cf) cf, offsetof(type, member)

/* Check mapping m against keys[0..n) and store the values into base.
 * `where` names the mapping in messages ("in a route", "in upstream
 * \"chat\""), or NULL at the top level. Unknown keys, wrong types, values
 * out of range and missing required keys are reported. seen (n entries,
 * may be NULL) receives each key's value node, NULL when absent. Returns
 * true when every key present was valid and none required was missing. */
bool conf_apply_map(struct conf_diag *d, const struct conf_key *keys, size_t n,
                    const struct ynode *m, void *base, const char *where,
                    const struct ynode **seen);

/* The same for one key given as text (a command-line flag): errors read
 * "wsgate: --flag: expected ..., got ...". Returns true when valid. */
bool conf_apply_text(const struct conf_key *k, const char *flag, const char *text, void *base,
                     FILE *errs);

/* Check the values at base against each key's range (for values set by
 * code or flags): one "wsgate: message" line per problem. Returns the
 * number of problems. */
int conf_check_ranges(const struct conf_key *keys, size_t n, const void *base, FILE *errs);

/* The key named `name` in keys[0..n), or NULL. */
const struct conf_key *conf_key_find(const struct conf_key *keys, size_t n, const char *name);

/* Read the value of a key's field at base (as stored). */
uint64_t conf_field_load(const struct conf_key *k, const void *base);

/* ------------------------------------------------------ value parsers */

/* "10s", "500ms", "2m", "1h", "0", or "off" (= 0) into milliseconds: digits
 * then exactly one unit. A bare number other than 0, signs, spaces,
 * fractions and overflow are rejected. Returns 0 or ERR_CONFIG. */
int conf_parse_duration(const char *s, uint64_t *ms);

/* A size in bytes: a plain number or "512B"; KiB/k/K, MiB/m/M, GiB/g/G
 * multiply by 1024, 1024^2, 1024^3. Returns 0 or ERR_CONFIG. */
int conf_parse_size(const char *s, uint64_t *bytes);

/* Decimal digits only, no sign, no overflow. Returns 0 or ERR_CONFIG. */
int conf_parse_uint(const char *s, uint64_t *v);

void conf_fmt_size(uint64_t v, char *buf, size_t n);
void conf_fmt_duration(uint64_t ms, char *buf, size_t n);

/* A resolved address. */
struct conf_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* "127.0.0.1:8080" or "[::1]:8080", numeric */
};

/* "host:port" / "[v6]:port"; host "*" or empty: every IPv4 address, a name
 * is resolved (first result). Port 0..65535. Returns 0 or ERR_CONFIG with
 * a static reason in *why (why may be NULL); *out untouched on error. */
int conf_parse_listen(const char *s, struct conf_addr *out, const char **why);

/* A backend URL "ws://host[:port][/path]" or "wss://...": port 1..65535,
 * default 80 (443 for wss); the host is resolved (first result).
 * *path_out receives a malloc'd copy of the path without a trailing '/'
 * ("" for none or "/"); no query or fragment. u (may be NULL) receives
 * the scheme and host as written. Returns 0, ERR_CONFIG with a static
 * reason in *why, or ERR_NOMEM. */
struct conf_url {
    bool tls;        /* wss:// */
    bool host_is_ip; /* the host is an address literal (no SNI, IP check) */
    char host[256];  /* as written, without brackets */
};
int conf_parse_backend_url(const char *url, struct conf_addr *out, char **path_out,
                           struct conf_url *u, const char **why);
/* The same without u. */
int conf_parse_ws_url(const char *url, struct conf_addr *out, char **path_out, const char **why);

#endif
