/* Inside the tls module: a listener's server (contexts, names, ticket
 * keys), shared by tls.c (connections) and tls_conf.c (building it). */
#ifndef WSG_TLS_TLS_INTERNAL_H
#define WSG_TLS_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/tls_conf.h"

struct sni_name {
    char *name; /* as in the certificate: "chat.example.com", "*.example.com" */
    size_t idx; /* the certificate (context) it selects */
    bool wild;
};

struct ticket_key {
    unsigned char name[16], aes[32], hmac[32];
    uint64_t born; /* monotonic ms */
    bool set;
};

struct tls_server {
    SSL_CTX **ctx; /* one per certificate; [0] is the default */
    size_t nctx;
    struct sni_name *names;
    size_t nnames;
    pthread_mutex_t lock;      /* keys */
    struct ticket_key keys[2]; /* current, previous */
    uint64_t rotation_ms;
};

enum tls_build_what { TLS_BUILD_CERT, TLS_BUILD_KEY, TLS_BUILD_CA };

struct tls_build_err {
    enum tls_build_what what; /* which file the problem is with */
    size_t cert;              /* which certificate */
    char why[200];
};

struct tls_client {
    SSL_CTX *ctx;
    bool verify;
};

/* Build a client context for c (files read now). NULL on failure, with
 * err (what: TLS_BUILD_CERT, _KEY or _CA). */
struct tls_client *tls_client_new(const struct tls_client_conf *c, struct tls_build_err *err);
void tls_client_free(struct tls_client *cl);

/* Build the server for c (files read now). NULL on failure, with err. */
struct tls_server *tls_server_new(const struct tls_conf *c, struct tls_build_err *err);
void tls_server_free(struct tls_server *srv);
bool tls_server_add_name(struct tls_server *srv, const char *s, size_t len, size_t idx);
/* The i-th name of the server's certificates, or NULL past the last. */
const char *tls_server_name(const struct tls_server *srv, size_t i);

#endif
