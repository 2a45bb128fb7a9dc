/* tcpfwd: the simplest TCP relay, a floor for what any user-space proxy
 * built on epoll and one system call per socket operation can reach on a
 * machine. One thread, edge-triggered epoll; each accepted connection gets
 * a connection to the backend, and bytes move with recv and send through a
 * 64 KiB buffer per direction, unparsed. A benchmark reference, not a
 * proxy: no timeouts, no limits, no logging.
 *
 *   tcpfwd --listen 127.0.0.1:9001 --backend 127.0.0.1:9000 [--io uring]
 *
 * --io uring runs the same relay on io_uring instead (tcpfwd_uring.c): the
 * floor for a proxy that batches its socket operations into one system
 * call per loop pass.
 *
 * Prints "listening ADDR:PORT" on stdout once it accepts connections; a
 * half-close is passed on (shutdown of the other side's write half); exits
 * 0 on SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"
#include "tcpfwd.h"

#define BUF_CAP      (64u * 1024) /* bytes buffered per direction */
#define EVENTS       256          /* epoll events per wait */
#define ACCEPT_BATCH 256          /* accepts per listen-socket wakeup */

/* One direction: bytes read from fd[k] wait in buf for fd[1 - k]. */
struct dir {
    uint8_t buf[BUF_CAP];
    size_t off, len; /* buf[off..len) is still to send */
    bool readable;   /* fd[k] may have bytes (epoll said so, no short read since) */
    bool hup;        /* fd[k] reported a hang-up: read it to the end */
    bool eof;        /* fd[k] reached end of stream; passed on once drained */
};

struct pair;

/* epoll's handle for one socket of a pair. */
struct end {
    struct pair *p;
};

struct pair {
    int fd[2]; /* 0: client, 1: backend */
    struct end end[2];
    struct dir d[2];
    struct pair *prev, *next; /* every open pair, to free them at exit */
};

static volatile sig_atomic_t stop;
static struct pair *pairs;
static struct end skip; /* marks events of a pair closed earlier in a batch */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void close_pair(struct pair *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pairs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
}

/* Move what fd[k] has to fd[1 - k] until one of them would block. A read
 * shorter than the buffer drained the socket, and edge-triggered epoll
 * reports the next bytes, so no read is spent on EAGAIN; after a hang-up
 * (to_eof) reading goes on to the end of the stream. Returns 0, or -1 when
 * the pair is broken. */
static int move(struct pair *p, int k, bool to_eof)
{
    struct dir *d = &p->d[k];
    int from = p->fd[k], to = p->fd[1 - k];

    for (;;) {
        ssize_t n;

        while (d->off < d->len) {
            n = send(to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            d->off += (size_t)n;
        }
        if (d->eof || !d->readable)
            return 0;
        n = recv(from, d->buf, sizeof(d->buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            d->readable = false;
            return errno == EAGAIN ? 0 : -1;
        }
        if (n == 0) {
            d->eof = true;
            shutdown(to, SHUT_WR);
            return 0;
        }
        d->off = 0;
        d->len = (size_t)n;
        if ((size_t)n < sizeof(d->buf) && !to_eof)
            d->readable = false;
    }
}

static int add(int epfd, int fd, struct end *e)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = e};

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void accept_some(int lfd, int epfd, const struct sockaddr_storage *backend,
                        socklen_t backend_len)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int one = 1, c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), b;
        struct pair *p;

        if (c < 0)
            return; /* EAGAIN, or out of descriptors: the listener stays ready */
        b = socket(backend->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        p = malloc(sizeof(*p));
        if (b < 0 || p == NULL) {
            close(c);
            if (b >= 0)
                close(b);
            free(p);
            continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        p->fd[0] = c;
        p->fd[1] = b;
        for (int k = 0; k < 2; k++) {
            p->end[k].p = p;
            p->d[k].off = p->d[k].len = 0;
            p->d[k].readable = p->d[k].hup = p->d[k].eof = false;
        }
        p->prev = NULL;
        p->next = pairs;
        if (pairs)
            pairs->prev = p;
        pairs = p;
        if ((connect(b, (const struct sockaddr *)backend, backend_len) < 0 &&
             errno != EINPROGRESS) ||
            add(epfd, c, &p->end[0]) < 0 || add(epfd, b, &p->end[1]) < 0)
            close_pair(p);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tcpfwd --listen ADDR:PORT --backend ADDR:PORT [--io epoll|uring]\n"
               "  --listen ADDR:PORT   address to listen on (port 0 picks one)\n"
               "  --backend ADDR:PORT  where every connection is relayed to\n"
               "  --io epoll|uring     edge-triggered epoll and recv/send (the default),\n"
               "                       or io_uring requests, submitted together\n");
}

/* The epoll back end: runs until SIGTERM/SIGINT. Returns 0, or -1 after
 * printing why. */
static int run_epoll(int lfd, const struct sockaddr_storage *bs, socklen_t blen)
{
    struct epoll_event ev, evs[EVENTS];
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (epfd < 0) {
        perror("tcpfwd: epoll_create1");
        return -1;
    }
    /* Level-triggered: a batch limit or EMFILE leaves connections queued. */
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("tcpfwd: epoll_ctl");
        close(epfd);
        return -1;
    }
    while (!stop) {
        int n = epoll_wait(epfd, evs, EVENTS, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("tcpfwd: epoll_wait");
            close(epfd);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct end *e = evs[i].data.ptr;
            struct pair *p;
            int k, rc;

            if (e == NULL) {
                accept_some(lfd, epfd, bs, blen);
                continue;
            }
            if (e == &skip)
                continue;
            p = e->p;
            k = e == &p->end[0] ? 0 : 1;
            /* Readable: move k's bytes on. Writable: what waits for k can go,
             * and reading its source resumes. */
            if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                p->d[k].hup = true;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                p->d[k].readable = true;
            rc = 0;
            if (p->d[k].readable)
                rc = move(p, k, p->d[k].hup);
            if (rc == 0 && (evs[i].events & EPOLLOUT))
                rc = move(p, 1 - k, p->d[1 - k].hup);
            if (rc < 0 || (p->d[0].eof && p->d[1].eof && p->d[0].off == p->d[0].len &&
                           p->d[1].off == p->d[1].len)) {
                /* A pair closed here may have a second event later in evs:
                 * mark it so that event is skipped. */
                for (int j = i + 1; j < n; j++)
                    if (evs[j].data.ptr == &p->end[0] || evs[j].data.ptr == &p->end[1])
                        evs[j].data.ptr = &skip;
                close_pair(p);
            }
        }
    }
    while (pairs)
        close_pair(pairs);
    close(epfd);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"backend", required_argument, NULL, 'b'},
        {"io", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_arg = NULL, *backend_arg = NULL;
    struct sockaddr_storage ls, bs;
    socklen_t llen, blen;
    char err[300], addr[80];
    bool uring = false;
    int opt, lfd, rc;

    while ((opt = getopt_long(argc, argv, "l:b:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_arg = optarg;
            break;
        case 'b':
            backend_arg = optarg;
            break;
        case 'i':
            if (strcmp(optarg, "epoll") != 0 && strcmp(optarg, "uring") != 0) {
                fprintf(stderr, "tcpfwd: --io %s: want epoll or uring\n", optarg);
                usage(stderr);
                return 2;
            }
            uring = optarg[0] == 'u';
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || listen_arg == NULL || backend_arg == NULL) {
        usage(stderr);
        return 2;
    }
    if (bu_parse_hostport(listen_arg, &ls, &llen, err, sizeof(err)) < 0) {
        fprintf(stderr, "tcpfwd: --listen %s\n", err);
        return 2;
    }
    if (bu_parse_hostport(backend_arg, &bs, &blen, err, sizeof(err)) < 0) {
        fprintf(stderr, "tcpfwd: --backend %s\n", err);
        return 2;
    }
    bu_raise_nofile();
    if (bu_on_stop(on_signal) < 0) {
        perror("tcpfwd: sigaction");
        return 1;
    }
    if (uring && tcpfwd_uring_init() < 0)
        return 1;
    lfd = bu_listen(&ls, llen, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, "tcpfwd: listen %s: %s\n", listen_arg, err);
        return 1;
    }
    bu_format_addr(&ls, addr, sizeof(addr));
    if (printf("listening %s\n", addr) < 0 || fflush(stdout) != 0) {
        perror("tcpfwd: stdout");
        return 1;
    }
    rc = uring ? tcpfwd_uring_run(lfd, &bs, blen, &stop) : run_epoll(lfd, &bs, blen);
    close(lfd);
    return rc < 0 ? 1 : 0;
}
