/* tcpfwd's back ends (see tcpfwd.c). */
#ifndef WSG_BENCH_TCPFWD_H
#define WSG_BENCH_TCPFWD_H

#include <signal.h>
#include <sys/socket.h>

/* Set up the io_uring back end's ring. Returns 0, or -1 after printing why
 * (io_uring unavailable or not permitted). */
int tcpfwd_uring_init(void);

/* Relay every connection accepted on the listening socket lfd to backend
 * with the ring, until *stop is set; then close every connection and the
 * ring. Returns 0, or -1 after printing why the ring failed. */
int tcpfwd_uring_run(int lfd, const struct sockaddr_storage *backend, socklen_t backend_len,
                     volatile sig_atomic_t *stop);

#endif
