/* tcpfwd's io_uring back end: the same relay as the epoll one (64 KiB per
 * direction, unparsed, half-close passed on), with every socket operation
 * an io_uring request. A receive is posted on each socket; when it
 * completes, the bytes are sent to the other socket, and the next receive
 * is posted once they are all gone. Requests queue up in the submission
 * ring and go to the kernel together in one io_uring_enter, which also
 * waits for completions, so a loop pass is one system call whatever the
 * number of sockets. The ring is set up for a single issuer with deferred
 * task work: completions are run in this thread when it enters the
 * kernel, not in interrupts. */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpfwd.h"

#define RING_SQ 4096 /* submission entries */
/* Completions: one request per direction is in flight, so 8192 pairs fit;
 * the kernel keeps any overflow until there is room. */
#define RING_CQ    16384
#define BUF_CAP    (64u * 1024)
#define TAG_LISTEN 1u /* user_data of the multishot accept */

struct upair;

/* One direction: bytes received from fd[k] go to fd[1 - k]. */
struct udir {
    struct upair *p;
    uint8_t *buf;
    size_t off, len; /* buf[off..len) is still to send */
    bool eof;        /* fd[k] reached end of stream (passed on) */
};

struct upair {
    int fd[2]; /* 0: client, 1: backend */
    struct udir d[2];
    int inflight; /* requests the kernel still holds */
    bool broken;  /* an error: both sockets shut, free when inflight is 0 */
    struct upair *prev, *next;
};

/* A request's user_data is a pointer to a udir (receive or send) or to the
 * pair (its connect), with the kind in the low bits: both structures are
 * 8-byte aligned. TAG_LISTEN is not a pointer. */
enum { K_RECV = 0, K_SEND = 1, K_CONNECT = 2 };

static struct io_uring ring;
static struct upair *upairs;

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (sqe == NULL) { /* full: hand the queued requests over, then retry */
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static bool post(struct upair *p, void *what, int kind, struct io_uring_sqe *sqe)
{
    if (sqe == NULL)
        return false;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)what | (uint64_t)kind);
    p->inflight++;
    return true;
}

static bool post_recv(struct udir *d, int k)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe)
        io_uring_prep_recv(sqe, d->p->fd[k], d->buf, BUF_CAP, 0);
    return post(d->p, d, K_RECV, sqe);
}

static bool post_send(struct udir *d, int k)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe)
        io_uring_prep_send(sqe, d->p->fd[1 - k], d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
    return post(d->p, d, K_SEND, sqe);
}

static void free_pair(struct upair *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        upairs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    close(p->fd[0]);
    close(p->fd[1]);
    free(p->d[0].buf); /* both directions' buffers */
    free(p);
}

/* An error on either side: shut both sockets so the requests still held
 * complete at once, and free the pair when the last one has. */
static void break_pair(struct upair *p)
{
    if (!p->broken) {
        p->broken = true;
        shutdown(p->fd[0], SHUT_RDWR);
        shutdown(p->fd[1], SHUT_RDWR);
    }
    if (p->inflight == 0)
        free_pair(p);
}

static void new_pair(int c, const struct sockaddr_storage *backend, socklen_t backend_len)
{
    int one = 1, b = socket(backend->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct upair *p = calloc(1, sizeof(*p));
    uint8_t *buf = malloc(2 * BUF_CAP); /* both directions' buffers */
    struct io_uring_sqe *sqe;

    if (b < 0 || p == NULL || buf == NULL) {
        close(c);
        if (b >= 0)
            close(b);
        free(p);
        free(buf);
        return;
    }
    p->d[0].buf = buf;
    p->d[1].buf = buf + BUF_CAP;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->fd[0] = c;
    p->fd[1] = b;
    p->d[0].p = p->d[1].p = p;
    p->next = upairs;
    if (upairs)
        upairs->prev = p;
    upairs = p;
    sqe = get_sqe();
    if (sqe)
        io_uring_prep_connect(sqe, b, (const struct sockaddr *)backend, backend_len);
    if (!post(p, p, K_CONNECT, sqe))
        break_pair(p);
}

static void post_accept(int lfd)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL)
        return; /* cannot happen: get_sqe submits to make room */
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, TAG_LISTEN);
}

/* One completion for pair p. */
static void complete(struct upair *p, void *what, int kind, int res)
{
    p->inflight--;
    if (p->broken) {
        break_pair(p);
        return;
    }
    if (kind == K_CONNECT) {
        if (res < 0 || !post_recv(&p->d[0], 0) || !post_recv(&p->d[1], 1))
            break_pair(p);
        return;
    }
    struct udir *d = what;
    int k = d == &p->d[0] ? 0 : 1;

    if (res < 0) {
        break_pair(p);
        return;
    }
    if (kind == K_RECV) {
        if (res == 0) { /* end of stream: pass it on; close when both ended */
            d->eof = true;
            shutdown(p->fd[1 - k], SHUT_WR);
            if (p->d[1 - k].eof && p->inflight == 0)
                free_pair(p);
            return;
        }
        d->off = 0;
        d->len = (size_t)res;
    } else {
        d->off += (size_t)res;
    }
    if (!(d->off < d->len ? post_send(d, k) : post_recv(d, k)))
        break_pair(p);
}

int tcpfwd_uring_init(void)
{
    struct io_uring_params prm;
    int rc;

    memset(&prm, 0, sizeof(prm));
    prm.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    prm.cq_entries = RING_CQ;
    rc = io_uring_queue_init_params(RING_SQ, &ring, &prm);
    if (rc < 0) {
        fprintf(stderr, "tcpfwd: io_uring_setup: %s\n", strerror(-rc));
        return -1;
    }
    return 0;
}

int tcpfwd_uring_run(int lfd, const struct sockaddr_storage *backend, socklen_t backend_len,
                     volatile sig_atomic_t *stop)
{
    int rc = 0;

    post_accept(lfd);
    while (!*stop) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int n = io_uring_submit_and_wait(&ring, 1);

        if (n < 0 && n != -EINTR && n != -EAGAIN && n != -EBUSY) {
            fprintf(stderr, "tcpfwd: io_uring_enter: %s\n", strerror(-n));
            rc = -1;
            break;
        }
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uint64_t ud = cqe->user_data;

            seen++;
            if (ud == TAG_LISTEN) {
                /* The kernel ended the multishot (an error such as EMFILE
                 * ends it): re-arm, as the epoll back end keeps its
                 * listener level-triggered. */
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    post_accept(lfd);
                if (cqe->res >= 0)
                    new_pair(cqe->res, backend, backend_len);
                continue;
            }
            void *what = (void *)(uintptr_t)(ud & ~(uint64_t)3);
            int kind = (int)(ud & 3);
            struct upair *p = kind == K_CONNECT ? what : ((struct udir *)what)->p;

            complete(p, what, kind, cqe->res);
        }
        io_uring_cq_advance(&ring, seen);
    }
    while (upairs)
        free_pair(upairs);
    io_uring_queue_exit(&ring);
    return rc;
}
