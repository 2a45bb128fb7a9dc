#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"

int sock_listen(const struct sockaddr *sa, socklen_t len, bool reuseport, int backlog)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return ERR_SYS;
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux,
     * which saves a setsockopt per connection. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return ERR_SYS;
    }
    return fd;
}

int sock_connect(const struct sockaddr *sa, socklen_t len)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return ERR_SYS;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return ERR_SYS;
    }
    return fd;
}

size_t sock_ip_text(const struct sockaddr *sa, char *out, size_t cap)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    if (cap == 0)
        return 0;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)cap)) {
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

size_t sock_addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    int n;

    sock_ip_text(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        n = snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        n = snprintf(out, cap, "%s:%u", ip, port);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

unsigned sock_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
