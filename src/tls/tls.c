/* TLS connections over non-blocking sockets (see tls.h) and the servers
 * they are accepted by (one per TLS listener, built by tls_conf.c). */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "tls/tls_internal.h"

#define REC_PLAIN  16384 /* plaintext per SSL_write: one full record */
#define DIRECT_MIN 4096  /* a buffer this large is encrypted in place */

struct tls_conn {
    SSL *ssl;
    int fd;
    unsigned char *res; /* ciphertext the socket has not taken yet */
    size_t res_off, res_len, res_cap;
    int sock_err; /* errno of the socket call that failed, 0 for none */
    bool eof;     /* the socket read its end of stream */
    bool failed;  /* the TLS protocol failed: no more I/O */
    bool http;    /* ... because the peer spoke plain HTTP */
    bool shut;    /* close_notify sent */
    bool fin_due; /* a TCP FIN follows once the residue is written */
    bool drained; /* the last socket read took less than asked: nothing was left */
    char why[96];
};

/* Encrypting small buffers together into one record needs a place for
 * them; one per thread (workers never share a connection). */
static _Thread_local unsigned char stage[REC_PLAIN];

/* ------------------------------------------------------------ the BIO */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static bool residue_put(struct tls_conn *t, const unsigned char *p, size_t n)
{
    if (t->res_off == t->res_len)
        t->res_off = t->res_len = 0;
    if (t->res_len + n > t->res_cap) {
        size_t cap = t->res_cap ? t->res_cap : 4096;
        while (cap < t->res_len + n)
            cap *= 2;
        unsigned char *r = realloc(t->res, cap);
        if (!r)
            return false;
        t->res = r;
        t->res_cap = cap;
    }
    memcpy(t->res + t->res_len, p, n);
    t->res_len += n;
    return true;
}

/* OpenSSL's writes: straight to the socket while nothing is owed, the
 * rest kept. Never asks OpenSSL to retry, so no write has to be repeated
 * with the same arguments. */
static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    ssize_t n = 0;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (t->res_off == t->res_len) {
        do
            n = send(t->fd, data, (size_t)len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN) {
            t->sock_err = errno;
            return -1;
        }
        if (n < 0)
            n = 0;
        if (n == len)
            return len;
    }
    if (!residue_put(t, (const unsigned char *)data + n, (size_t)(len - n))) {
        t->sock_err = ENOMEM;
        return -1;
    }
    return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do
        n = recv(t->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        t->drained = n < len;
        return (int)n;
    }
    if (n == 0) {
        t->eof = true;
        return 0;
    }
    if (errno == EAGAIN) {
        t->drained = true;
        BIO_set_retry_read(b);
        return -1;
    }
    t->sock_err = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_conn *t = BIO_get_data(b);

    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_WPENDING:
        return t ? (long)(t->res_len - t->res_off) : 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsgate socket");

    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
}

/* -------------------------------------------------------- connections */

/* A connection on fd through our BIO, with OpenSSL's object made from
 * ctx; NULL when out of memory. */
static struct tls_conn *conn_new(SSL_CTX *ctx, int fd)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    BIO *b;

    pthread_once(&bio_once, make_method);
    if (!t || !bio_method)
        goto fail;
    t->fd = fd;
    t->ssl = SSL_new(ctx);
    b = t->ssl ? BIO_new(bio_method) : NULL;
    if (!b)
        goto fail;
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    return t;
fail:
    if (t)
        SSL_free(t->ssl);
    free(t);
    return NULL;
}

struct tls_conn *tls_accept_new(struct tls_server *srv, int fd)
{
    struct tls_conn *t = conn_new(srv->ctx[0], fd);

    if (t)
        SSL_set_accept_state(t->ssl);
    return t;
}

struct tls_conn *tls_connect_new(struct tls_client *cl, int fd, const char *host, bool host_is_ip)
{
    struct tls_conn *t = conn_new(cl->ctx, fd);

    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    /* SNI carries names only (RFC 6066 §3). */
    if (!host_is_ip && SSL_set_tlsext_host_name(t->ssl, host) != 1)
        goto fail;
    if (cl->verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if ((host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : SSL_set1_host(t->ssl, host)) !=
            1)
            goto fail;
    }
    return t;
fail:
    tls_free(t);
    ERR_clear_error();
    return NULL;
}

void tls_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->res);
    free(t);
}

/* The TLS protocol failed: keep the reason, stop all I/O. */
static void fail(struct tls_conn *t)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    t->failed = true;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST)
        t->http = true;
    if (!t->why[0] && e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        /* Which check failed: "hostname mismatch", "self-signed ...". */
        long v = SSL_get_verify_result(t->ssl);
        snprintf(t->why, sizeof(t->why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    }
    if (!t->why[0])
        snprintf(t->why, sizeof(t->why), "%s", r ? r : "protocol error");
    ERR_clear_error();
}

/* After an SSL call returned rc <= 0: -1 with errno set, or 0 for the
 * peer's end of stream. */
static ssize_t io_error(struct tls_conn *t, int rc)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (t->sock_err) {
            errno = t->sock_err;
            return -1;
        }
        return 0; /* the socket's end of stream */
    default:
        if (t->sock_err && !ERR_peek_error()) {
            errno = t->sock_err;
            return -1;
        }
        fail(t);
        errno = EPROTO;
        return -1;
    }
}

ssize_t tls_recv(struct tls_conn *t, void *buf, size_t n)
{
    size_t got = 0;

    if (t->failed) {
        errno = EPROTO;
        return -1;
    }
    if (SSL_read_ex(t->ssl, buf, n, &got))
        return (ssize_t)got;
    return io_error(t, 0);
}

int tls_flush(struct tls_conn *t)
{
    while (t->res_off < t->res_len) {
        ssize_t n = send(t->fd, t->res + t->res_off, t->res_len - t->res_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0) {
            t->sock_err = errno;
            return -1;
        }
        t->res_off += (size_t)n;
    }
    /* Nothing owed: give the memory back (a busy connection keeps none). */
    free(t->res);
    t->res = NULL;
    t->res_off = t->res_len = t->res_cap = 0;
    if (t->fin_due) {
        t->fin_due = false;
        shutdown(t->fd, SHUT_WR);
    }
    return 1;
}

ssize_t tls_sendv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
    size_t total = 0, off = 0;
    int i = 0, rc;

    if (t->failed || t->shut) {
        errno = EPIPE;
        return -1;
    }
    if (t->res_off < t->res_len) {
        rc = tls_flush(t);
        if (rc <= 0) {
            errno = rc < 0 ? t->sock_err : EAGAIN;
            return -1;
        }
    }
    if (!SSL_is_init_finished(t->ssl)) {
        /* A server writing before the client's request (an early 503)
         * finishes the handshake first. */
        rc = SSL_do_handshake(t->ssl);
        if (rc != 1)
            return io_error(t, rc) < 0 ? -1 : (errno = EPIPE, -1);
    }
    /* Everything unless the socket fills: callers take a short count for
     * "wait for EPOLLOUT". */
    while (i < cnt) {
        const unsigned char *p;
        size_t len, avail = iov[i].iov_len - off;

        if (avail == 0) {
            i++;
            off = 0;
            continue;
        }
        if (avail >= DIRECT_MIN || i == cnt - 1) {
            /* Large enough (or alone): encrypt in place. */
            p = (const unsigned char *)iov[i].iov_base + off;
            len = avail < REC_PLAIN ? avail : REC_PLAIN;
            off += len;
        } else {
            /* Small buffers together in one record: one system call. */
            len = 0;
            while (i < cnt && len < REC_PLAIN) {
                size_t take = iov[i].iov_len - off;
                if (take > REC_PLAIN - len)
                    take = REC_PLAIN - len;
                memcpy(stage + len, (const unsigned char *)iov[i].iov_base + off, take);
                len += take;
                off += take;
                if (off == iov[i].iov_len) {
                    i++;
                    off = 0;
                }
            }
            p = stage;
        }
        size_t w = 0;
        if (!SSL_write_ex(t->ssl, p, len, &w)) {
            ssize_t r = io_error(t, 0);
            if (total > 0)
                return (ssize_t)total;
            if (r == 0)
                errno = EPIPE;
            return -1;
        }
        total += len;
        /* The socket is full: the caller waits for EPOLLOUT. */
        if (t->res_off < t->res_len)
            break;
    }
    return (ssize_t)total;
}

void tls_shutw(struct tls_conn *t)
{
    if (t->shut)
        return;
    t->shut = true;
    if (!t->failed && SSL_is_init_finished(t->ssl)) {
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    if (t->res_off < t->res_len)
        t->fin_due = true;
    else
        shutdown(t->fd, SHUT_WR);
}

bool tls_drained(const struct tls_conn *t)
{
    return t->drained && !t->eof && !SSL_has_pending(t->ssl);
}

bool tls_holds_input(const struct tls_conn *t)
{
    return SSL_has_pending(t->ssl);
}

bool tls_owes(const struct tls_conn *t)
{
    return t->res_off < t->res_len;
}

size_t tls_owed(const struct tls_conn *t)
{
    return t->res_len - t->res_off;
}

bool tls_established(const struct tls_conn *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *tls_failure(const struct tls_conn *t)
{
    return t->why;
}

bool tls_peer_spoke_http(const struct tls_conn *t)
{
    return t->http;
}

const char *tls_version(const struct tls_conn *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

const char *tls_cipher(const struct tls_conn *t)
{
    const char *c = SSL_is_init_finished(t->ssl) ? SSL_get_cipher_name(t->ssl) : NULL;

    return c ? c : "";
}

bool tls_resumed(const struct tls_conn *t)
{
    return SSL_session_reused(t->ssl);
}

const char *tls_sni(const struct tls_conn *t)
{
    const char *n = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);

    return n ? n : "";
}

int tls_peer_subject(const struct tls_conn *t, char *out, size_t cap)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    BIO *m;
    char *p;
    long n;
    int rc = 0;

    if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    m = BIO_new(BIO_s_mem());
    if (!m)
        return -1;
    /* RFC 2253 with every control and non-ASCII byte escaped: safe in a
     * header field. */
    if (X509_NAME_print_ex(m, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
        BIO_free(m);
        return -1;
    }
    n = BIO_get_mem_data(m, &p);
    if (n < 0 || (size_t)n >= cap) {
        rc = -1;
    } else {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        rc = (int)n;
    }
    BIO_free(m);
    return rc;
}

/* ------------------------------------------------------------ servers */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool new_key(struct ticket_key *k, uint64_t now)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return false;
    k->born = now;
    k->set = true;
    return true;
}

/* Session tickets: encrypted with the current key, which is replaced
 * every rotation period; the previous key still decrypts (and the ticket
 * is then renewed), so a ticket lives at most two periods. The keys never
 * leave this process's memory. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct tls_server *srv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct ticket_key k;
    uint64_t now = mono_ms();
    int found = 0;
    OSSL_PARAM params[3];

    pthread_mutex_lock(&srv->lock);
    if (!srv->keys[0].set || now - srv->keys[0].born >= srv->rotation_ms) {
        struct ticket_key fresh;
        if (new_key(&fresh, now)) {
            /* Rotation is lazy (at a handshake): a current key older than
             * two periods has outlived its successor's time too. */
            srv->keys[1] = srv->keys[0];
            if (srv->keys[0].set && now - srv->keys[0].born >= 2 * srv->rotation_ms)
                srv->keys[1].set = false;
            srv->keys[0] = fresh;
        }
    }
    if (enc) {
        k = srv->keys[0];
        found = k.set ? 1 : 0;
    } else {
        for (int i = 0; i < 2 && !found; i++) {
            if (srv->keys[i].set && memcmp(srv->keys[i].name, name, 16) == 0) {
                k = srv->keys[i];
                found = i == 0 ? 1 : 2; /* 2: decrypt, then issue a new ticket */
            }
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (!found)
        return enc ? -1 : 0; /* unknown key: a full handshake */

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) ||
            !EVP_MAC_CTX_set_params(hctx, params))
            return -1;
        return 1;
    }
    if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) ||
        !EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    return found;
}

static bool name_matches(const struct sni_name *n, const char *host)
{
    if (!n->wild)
        return strcasecmp(n->name, host) == 0;
    /* "*.example.com" matches exactly one label before ".example.com". */
    const char *dot = strchr(host, '.');
    return dot && dot != host && strcasecmp(n->name + 1, dot) == 0;
}

/* SNI: the certificate whose names match, exact names first; none: the
 * default (first) certificate. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *srv = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    size_t pick = 0;
    bool found = false;

    if (!host)
        return SSL_TLSEXT_ERR_OK;
    for (int pass = 0; pass < 2 && !found; pass++) {
        for (size_t i = 0; i < srv->nnames && !found; i++) {
            if (srv->names[i].wild == (pass == 1) && name_matches(&srv->names[i], host)) {
                pick = srv->names[i].idx;
                found = true;
            }
        }
    }
    if (pick != 0)
        SSL_set_SSL_CTX(ssl, srv->ctx[pick]);
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: http/1.1 when offered; a client offering only other protocols
 * (h2 alone, say) gets the no_application_protocol alert (RFC 7301). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;

    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static void ssl_reason(char *why, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(why, cap, "%s%s%s", what, r ? ": " : "", r ? r : "");
    ERR_clear_error();
}

static bool add_names(struct tls_server *srv, X509 *cert, size_t idx)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = sans ? sk_GENERAL_NAME_num(sans) : 0;
    bool ok = true, any = false;

    for (int i = 0; i < n && ok; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        const char *s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        ok = tls_server_add_name(srv, s, (size_t)len, idx);
        any = true;
    }
    GENERAL_NAMES_free(sans);
    if (!any && ok) {
        /* No DNS names: the subject's common name, as clients used to. */
        X509_NAME *sub = X509_get_subject_name(cert);
        int at = X509_NAME_get_index_by_NID(sub, NID_commonName, -1);
        if (at >= 0) {
            ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sub, at));
            ok = tls_server_add_name(srv, (const char *)ASN1_STRING_get0_data(cn),
                                     (size_t)ASN1_STRING_length(cn), idx);
        }
    }
    return ok;
}

bool tls_server_add_name(struct tls_server *srv, const char *s, size_t len, size_t idx)
{
    struct sni_name *v;

    if (len == 0 || memchr(s, '\0', len))
        return true; /* not a usable name: skipped */
    v = realloc(srv->names, (srv->nnames + 1) * sizeof(*v));
    if (!v)
        return false;
    srv->names = v;
    v[srv->nnames].name = strndup(s, len);
    if (!v[srv->nnames].name)
        return false;
    v[srv->nnames].wild = len > 2 && s[0] == '*' && s[1] == '.';
    v[srv->nnames].idx = idx;
    srv->nnames++;
    return true;
}

static SSL_CTX *make_ctx(struct tls_server *srv, const struct tls_conf *c, size_t i,
                         struct tls_build_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    long lifetime = (long)(c->ticket_rotation_ms * 2 / 1000);

    if (!ctx) {
        ssl_reason(err->why, sizeof(err->why), "cannot create a TLS context");
        err->what = TLS_BUILD_CERT;
        err->cert = i;
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx,
                                  c->min_version == TLS_MIN_13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    /* Idle connections hold no record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* One recv takes every record waiting (and shows when the socket is
     * drained: see tls_drained). */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"wsgate", 6);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_timeout(ctx, lifetime > 0 ? lifetime : 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, srv);
    SSL_CTX_set_app_data(ctx, srv);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

    err->cert = i;
    err->what = TLS_BUILD_CERT;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->certs[i].cert) != 1) {
        ssl_reason(err->why, sizeof(err->why), "cannot load the certificate");
        goto fail;
    }
    err->what = TLS_BUILD_KEY;
    if (SSL_CTX_use_PrivateKey_file(ctx, c->certs[i].key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err->why, sizeof(err->why),
                   "cannot load the private key (encrypted keys are not supported)");
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(err->why, sizeof(err->why), "the private key does not match the certificate");
        goto fail;
    }
    if (c->verify_client != TLS_VERIFY_NONE) {
        STACK_OF(X509_NAME) * names;
        err->what = TLS_BUILD_CA;
        if (SSL_CTX_load_verify_locations(ctx, c->client_ca, NULL) != 1 ||
            !(names = SSL_load_client_CA_file(c->client_ca))) {
            ssl_reason(err->why, sizeof(err->why), "cannot load the CA certificates");
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(
            ctx,
            SSL_VERIFY_PEER |
                (c->verify_client == TLS_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
    }
    if (!add_names(srv, SSL_CTX_get0_certificate(ctx), i)) {
        snprintf(err->why, sizeof(err->why), "out of memory");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct tls_conf *c, struct tls_build_err *err)
{
    struct tls_server *srv = calloc(1, sizeof(*srv));

    if (!srv || !(srv->ctx = calloc(c->ncerts, sizeof(*srv->ctx)))) {
        free(srv);
        snprintf(err->why, sizeof(err->why), "out of memory");
        err->what = TLS_BUILD_CERT;
        err->cert = 0;
        return NULL;
    }
    pthread_mutex_init(&srv->lock, NULL);
    srv->rotation_ms = c->ticket_rotation_ms;
    for (size_t i = 0; i < c->ncerts; i++) {
        srv->ctx[i] = make_ctx(srv, c, i, err);
        if (!srv->ctx[i]) {
            srv->nctx = i;
            tls_server_free(srv);
            return NULL;
        }
    }
    srv->nctx = c->ncerts;
    return srv;
}

void tls_server_free(struct tls_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nctx; i++)
        SSL_CTX_free(srv->ctx[i]);
    for (size_t i = 0; i < srv->nnames; i++)
        free(srv->names[i].name);
    free(srv->names);
    free(srv->ctx);
    pthread_mutex_destroy(&srv->lock);
    OPENSSL_cleanse(srv->keys, sizeof(srv->keys));
    free(srv);
}

struct tls_client *tls_client_new(const struct tls_client_conf *c, struct tls_build_err *err)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    struct tls_client *cl = calloc(1, sizeof(*cl));
    SSL_CTX *ctx = cl ? SSL_CTX_new(TLS_client_method()) : NULL;

    err->cert = 0;
    err->what = TLS_BUILD_CA;
    if (!ctx) {
        snprintf(err->why, sizeof(err->why), "cannot create a TLS context");
        free(cl);
        return NULL;
    }
    cl->ctx = ctx;
    cl->verify = !c->insecure_skip_verify;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_verify(ctx, cl->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (cl->verify) {
        int ok = c->ca ? SSL_CTX_load_verify_locations(ctx, c->ca, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            ssl_reason(err->why, sizeof(err->why), "cannot load the CA certificates");
            goto fail;
        }
    }
    if (c->cert) {
        err->what = TLS_BUILD_CERT;
        if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
            ssl_reason(err->why, sizeof(err->why), "cannot load the certificate");
            goto fail;
        }
        err->what = TLS_BUILD_KEY;
        if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
            ssl_reason(err->why, sizeof(err->why),
                       "cannot load the private key (encrypted keys are not supported)");
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ssl_reason(err->why, sizeof(err->why),
                       "the private key does not match the certificate");
            goto fail;
        }
    }
    return cl;
fail:
    tls_client_free(cl);
    return NULL;
}

void tls_client_free(struct tls_client *cl)
{
    if (!cl)
        return;
    SSL_CTX_free(cl->ctx);
    free(cl);
}

const char *tls_server_name(const struct tls_server *srv, size_t i)
{
    return i < srv->nnames ? srv->names[i].name : NULL;
}
