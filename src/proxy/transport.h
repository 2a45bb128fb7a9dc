/* The transport under a leg: how its bytes are read and written. Every
 * read, write and half-close of a client or backend connection goes
 * through these, so a TLS connection (tls/tls.h) and a plain socket look
 * alike to the handshake, the HTTP exchange and the relay.
 *
 * Two implementations, chosen by l->tls: inline here rather than through
 * a table of function pointers, so that on a plain socket each call is
 * one predictable branch and one system call, as before the seam. */
#ifndef WSG_PROXY_TRANSPORT_H
#define WSG_PROXY_TRANSPORT_H

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/sockios.h>

#include "proxy/session.h"
#include "tls/tls.h"

/* Read up to n bytes: >0 bytes read, 0 at the peer's end of stream, -1
 * with errno (EAGAIN: nothing now; EINTR: try again; other: gone). */
static inline ssize_t leg_recv(struct leg *l, void *buf, size_t n)
{
    if (__builtin_expect(l->tls != NULL, 0))
        return tls_recv(l->tls, buf, n);
    return recv(l->io.fd, buf, n, 0);
}

/* Write cnt buffers in order: bytes written (possibly fewer), or -1 with
 * errno as for leg_recv. Never raises SIGPIPE. */
static inline ssize_t leg_sendv(struct leg *l, const struct iovec *iov, int cnt)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};

    if (__builtin_expect(l->tls != NULL, 0))
        return tls_sendv(l->tls, iov, cnt);
    /* One buffer (the common case for small messages) goes through send,
     * which spares the kernel importing a msghdr and an iovec array. */
    if (cnt == 1)
        return send(l->io.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    return sendmsg(l->io.fd, &mh, MSG_NOSIGNAL);
}

/* End the write direction (the peer reads its end of stream); reading
 * goes on. */
static inline void leg_shutw(struct leg *l)
{
    if (l->tls)
        tls_shutw(l->tls);
    else
        shutdown(l->io.fd, SHUT_WR);
}

/* Whether a read that returned fewer bytes than asked for means nothing
 * more is waiting (so the next bytes come with a new edge-triggered
 * event). Always for a plain socket. For TLS a short read alone says
 * nothing (the rest of a record, or records OpenSSL read ahead, wait in
 * user space): only when the library's last socket read came up short and
 * it holds nothing. */
static inline bool leg_short_read_drains(const struct leg *l)
{
    return l->tls == NULL || tls_drained(l->tls);
}

/* Whether the transport holds bytes from the peer that were not read yet
 * (TLS read-ahead): a connection with such bytes cannot be reused for a
 * new exchange. */
static inline bool leg_holds_input(const struct leg *l)
{
    return l->tls && tls_holds_input(l->tls);
}

/* Whether the transport still owes the socket bytes it took (TLS only:
 * ciphertext the socket did not take yet). */
static inline bool leg_owes(const struct leg *l)
{
    return l->tls && tls_owes(l->tls);
}

/* The socket can take more: write what the transport owes. Returns false
 * when the connection is gone. */
static inline bool leg_flush_owed(struct leg *l)
{
    return !l->tls || tls_flush(l->tls) >= 0;
}

/* Bytes written to this leg that its peer has not acknowledged yet: what
 * the socket holds (SIOCOUTQ), plus for TLS what the transport owes. For
 * TLS this counts ciphertext, which is a little more than the plaintext
 * it carries: a caller comparing it with plaintext offsets sees the peer
 * slightly behind until all is acknowledged, never ahead. */
static inline uint64_t leg_unacked(const struct leg *l)
{
    int q = 0;

    if (ioctl(l->io.fd, SIOCOUTQ, &q) < 0 || q < 0)
        q = 0;
    return (uint64_t)q + (l->tls ? tls_owed(l->tls) : 0);
}

#endif
