/* TLS on a non-blocking socket, for the transport under a leg
 * (proxy/transport.h). OpenSSL does the protocol; this module gives it the
 * socket through a BIO of its own so that:
 *   - a write never blocks and never asks to be repeated: ciphertext goes
 *     straight to the socket, and what the socket does not take now waits
 *     in a small per-connection residue flushed on the next EPOLLOUT (so
 *     the relay's write queue stays the only plaintext queue);
 *   - reads and their errors look like recv(2)'s to the caller.
 * The handshake happens inside the first reads (a server connection reads
 * the request only once the handshake is done).
 *
 * A struct tls_server is one listener's certificates and settings, built
 * at start (tls/tls_conf.c) and read-only afterwards but for the session
 * ticket keys, which rotate under a lock taken once per handshake. */
#ifndef WSG_TLS_TLS_H
#define WSG_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_server;
struct tls_client;
struct tls_conn;

/* A server-side connection on fd (not taken: the caller closes fd after
 * tls_free). NULL when out of memory. */
struct tls_conn *tls_accept_new(struct tls_server *srv, int fd);
void tls_free(struct tls_conn *t);

/* A client-side connection on fd to a backend: host is checked against
 * its certificate (as a name, or an address when host_is_ip) and goes out
 * as SNI when it is a name. NULL when out of memory. */
struct tls_conn *tls_connect_new(struct tls_client *cl, int fd, const char *host, bool host_is_ip);

/* As recv(2): >0 bytes, 0 at the peer's end of stream (close_notify or a
 * TCP FIN), -1 with errno EAGAIN (nothing now: wait for an event), or
 * another errno (EPROTO: the TLS protocol failed, see tls_failure). The
 * first calls perform the handshake. */
ssize_t tls_recv(struct tls_conn *t, void *buf, size_t n);

/* Write the buffers' bytes in order, as sendmsg(2) on a non-blocking
 * socket: the count taken (possibly fewer), or -1 with errno EAGAIN
 * (nothing taken: wait for EPOLLOUT) or another errno (gone). Bytes taken
 * are encrypted; those the socket did not take yet are owed (see
 * tls_flush). */
ssize_t tls_sendv(struct tls_conn *t, const struct iovec *iov, int cnt);

/* Send close_notify: the peer reads its end of stream. Reading goes on. */
void tls_shutw(struct tls_conn *t);

/* Write the owed ciphertext: 1 when none is left, 0 when the socket is
 * full (wait for EPOLLOUT), -1 when the connection is gone. */
int tls_flush(struct tls_conn *t);

/* Whether a read may stop before EAGAIN: the last socket read took less
 * than it asked for (the socket was empty then, so new bytes raise a new
 * edge) and OpenSSL holds no bytes, decrypted or not, of its own. */
bool tls_drained(const struct tls_conn *t);

/* Whether OpenSSL holds bytes read from the socket that no tls_recv has
 * returned yet (records read ahead, decrypted or not). */
bool tls_holds_input(const struct tls_conn *t);

/* Whether ciphertext is owed to the socket. */
bool tls_owes(const struct tls_conn *t);
/* Bytes owed (ciphertext not yet given to the socket). */
size_t tls_owed(const struct tls_conn *t);

/* Whether the handshake has completed. */
bool tls_established(const struct tls_conn *t);

/* Why the connection failed ("" when it has not): the OpenSSL reason text,
 * such as "no shared cipher" or "unsupported protocol". */
const char *tls_failure(const struct tls_conn *t);
/* The peer sent plain HTTP to this TLS listener. */
bool tls_peer_spoke_http(const struct tls_conn *t);

/* Protocol version and cipher of an established connection ("TLSv1.3",
 * "TLS_AES_128_GCM_SHA256"), "" before. */
const char *tls_version(const struct tls_conn *t);
const char *tls_cipher(const struct tls_conn *t);
/* Whether the handshake resumed an earlier session (a ticket). */
bool tls_resumed(const struct tls_conn *t);
/* The server name the client asked for (SNI), or "". */
const char *tls_sni(const struct tls_conn *t);

/* The verified client certificate's subject as an RFC 2253 string into
 * out (cap bytes, NUL-terminated): its length, 0 when the client sent no
 * certificate (or it was not verified), -1 when it does not fit. */
int tls_peer_subject(const struct tls_conn *t, char *out, size_t cap);

#endif
