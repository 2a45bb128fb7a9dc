#include "core/loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"

#define LOOP_EVENTS 256 /* epoll events taken per pass */

int loop_init(struct loop *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return ERR_SYS;
    l->stop = false;
    l->now = clock_mono_ms();
    l->defers = NULL;
    wheel_init(&l->wheel, l->now);
    return 0;
}

void loop_destroy(struct loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
}

int loop_add(struct loop *l, struct io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};

    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0 ? ERR_SYS : 0;
}

int loop_mod(struct loop *l, struct io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};

    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0 ? ERR_SYS : 0;
}

void loop_defer(struct loop *l, struct defer *d, defer_cb cb)
{
    if (d->queued)
        return;
    d->queued = true;
    d->cb = cb;
    d->next = l->defers;
    l->defers = d;
}

static void run_defers(struct loop *l)
{
    while (l->defers) {
        struct defer *d = l->defers;
        l->defers = d->next;
        d->queued = false;
        d->cb(d);
    }
}

void loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_EVENTS];

    while (!l->stop) {
        int timeout = wheel_timeout(&l->wheel, l->now);
        int n = epoll_wait(l->epfd, evs, LOOP_EVENTS, timeout);

        if (n < 0 && errno != EINTR)
            break;
        l->now = clock_mono_ms();
        for (int i = 0; i < n; i++) {
            struct io *io = evs[i].data.ptr;
            io->cb(io, evs[i].events);
        }
        wheel_run(&l->wheel, l->now);
        run_defers(l);
    }
}
