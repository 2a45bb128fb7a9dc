/* The `tls:` section of a listener (see docs/configuration.md, "TLS"):
 *
 *   tls:
 *     certificates:              # the first is the default
 *       - {cert: FILE, key: FILE}
 *     min_version: "1.2"         # or "1.3"
 *     client_ca: FILE            # CA bundle for client certificates
 *     verify_client: none        # none | optional | required
 *     ticket_key_rotation: 1h    # session ticket keys live twice this
 *
 * Parsing also loads the certificates and keys and builds the OpenSSL
 * contexts (struct tls_server), so `wsgate check` reports a missing file, a
 * key that does not match its certificate or an unreadable CA bundle at
 * the line that names it. Main thread only. */
#ifndef WSG_TLS_TLS_CONF_H
#define WSG_TLS_TLS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/engine.h"

enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRED };
enum tls_min { TLS_MIN_12, TLS_MIN_13 };

struct tls_cert_conf {
    char *cert; /* PEM: the certificate, then its chain */
    char *key;  /* PEM private key */
};

struct tls_server;

struct tls_conf {
    struct tls_cert_conf *certs;
    size_t ncerts;
    int min_version;             /* enum tls_min */
    char *client_ca;             /* NULL: none */
    int verify_client;           /* enum tls_verify */
    uint64_t ticket_rotation_ms; /* a new ticket key this often */
    struct tls_server *srv;      /* built from the above */
};

/* Parse a listener's `tls:` mapping v into c (zeroed by the caller) and
 * build its server. Problems go to d at their positions. Returns true when
 * valid; c holds what was parsed either way (free with tls_conf_free). */
bool tls_conf_parse(struct conf_diag *d, const struct ynode *v, struct tls_conf *c);
void tls_conf_free(struct tls_conf *c);

/* The `tls:` section of an upstream, for its wss:// backends:
 *
 *   tls:
 *     ca: FILE                     # default: the system's trusted CAs
 *     cert: FILE                   # a client certificate, with key
 *     key: FILE
 *     insecure_skip_verify: false  # true: no certificate check (logged)
 *
 * Without the section, wss:// backends are verified against the system
 * store. Each backend is checked against the host name (or address) of
 * its URL, which also goes out as SNI when it is a name. */
struct tls_client;

struct tls_client_conf {
    char *ca, *cert, *key;
    bool insecure_skip_verify;
    struct tls_client *cl; /* built by tls_client_conf_parse or _build */
};

/* Parse an upstream's `tls:` mapping v into c (zeroed) and build its
 * client context. Returns true when valid. */
bool tls_client_conf_parse(struct conf_diag *d, const struct ynode *v, struct tls_client_conf *c);
/* Build the client context of a c that has none yet (no `tls:` section:
 * the defaults). Returns 0, or ERR_CONFIG with a reason in why. */
int tls_client_conf_build(struct tls_client_conf *c, char *why, size_t cap);
void tls_client_conf_free(struct tls_client_conf *c);

/* Certificates' names (for the "listening" log line): the first
 * certificate's subject names, comma-separated, into out. */
void tls_conf_names(const struct tls_conf *c, char *out, size_t cap);

#endif
