/* Per-thread event loop: edge-triggered epoll, a timer wheel, and deferred
 * work run after each pass (so objects are never freed under a callback
 * that still uses them). */
#ifndef WSG_CORE_LOOP_H
#define WSG_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/timer.h"

struct io;
typedef void (*io_cb)(struct io *io, uint32_t events);

struct io {
    int fd;   /* the watched descriptor */
    io_cb cb; /* called with the epoll event mask */
};

struct defer;
typedef void (*defer_cb)(struct defer *d);

struct defer {
    struct defer *next; /* pending list link */
    defer_cb cb;        /* run once after the current pass */
    bool queued;
};

struct loop {
    int epfd;
    bool stop;            /* loop_run returns after the current pass */
    uint64_t now;         /* monotonic ms, updated once per pass */
    struct wheel wheel;   /* per-connection timers */
    struct defer *defers; /* run after the pass, then cleared */
};

/* Returns 0 or ERR_SYS. */
int loop_init(struct loop *l);
void loop_destroy(struct loop *l);

/* Watch io->fd for `events` (EPOLLIN, EPOLLOUT, ... ; EPOLLET is added)
 * until the fd is closed. io must outlive the registration. Returns 0 or
 * ERR_SYS. */
int loop_add(struct loop *l, struct io *io, uint32_t events);

/* Hand an fd already watched to another io (same fd: io->fd), with
 * `events`; its next events go to io->cb. Returns 0 or ERR_SYS. */
int loop_mod(struct loop *l, struct io *io, uint32_t events);

/* Queue d to run after the current pass (once, however often queued). */
void loop_defer(struct loop *l, struct defer *d, defer_cb cb);

/* Wait for events and timers and dispatch them until l->stop is set. */
void loop_run(struct loop *l);

#endif
