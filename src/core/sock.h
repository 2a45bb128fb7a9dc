/* Socket helpers: non-blocking listen/connect and address text. */
#ifndef WSG_CORE_SOCK_H
#define WSG_CORE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A non-blocking, close-on-exec listening TCP socket bound to sa, with
 * TCP_NODELAY (inherited by accepted sockets).
 * reuseport sets SO_REUSEPORT (one socket per worker on one port).
 * Returns the fd, or ERR_SYS with errno set. */
int sock_listen(const struct sockaddr *sa, socklen_t len, bool reuseport, int backlog);

/* Start a non-blocking connect to sa (TCP_NODELAY set). Returns the fd
 * (the connect may still be in progress: wait for writability; a failed
 * connect reports EPOLLERR), or ERR_SYS with errno set. */
int sock_connect(const struct sockaddr *sa, socklen_t len);

/* "ip:port" ("[ip]:port" for IPv6) into out; returns its length. */
size_t sock_addr_text(const struct sockaddr *sa, char *out, size_t cap);

/* The IP alone into out; returns its length. */
size_t sock_ip_text(const struct sockaddr *sa, char *out, size_t cap);

/* Port of a bound socket (0 on error). */
unsigned sock_local_port(int fd);

#endif
