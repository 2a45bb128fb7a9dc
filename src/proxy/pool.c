/* Keep-alive connections to backends for plain HTTP requests, per worker
 * and per backend. A connection enters the pool only after a response
 * that was read to its exact end; while idle it is watched, and closed the
 * moment the backend closes it or sends anything, or when it has been idle
 * for the upstream's http_pool.idle_timeout. */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/err.h"
#include "proxy/session.h"
#include "tls/tls.h"

struct pool_conn {
    struct io io;
    struct timer timer;
    struct defer defer; /* freed after the loop pass it was taken in */
    struct worker *w;
    struct pool_slot *slot;
    struct pool_conn *next, *prev;
    struct tls_conn *tls; /* the connection's TLS transport, or NULL */
    bool taken;           /* its fd went to a session: events still queued for it are not its */
};

struct pool_slot {
    struct pool_conn *head;
    unsigned n;
};

int http_pool_init(struct http_pool *p, const struct route_conf *rc)
{
    p->n = rc->nupstreams;
    p->slots = calloc(p->n ? p->n : 1, sizeof(*p->slots));
    p->nb = calloc(p->n ? p->n : 1, sizeof(*p->nb));
    if (!p->slots || !p->nb)
        return ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++) {
        p->nb[i] = rc->upstreams[i].nbackends;
        p->slots[i] = calloc(p->nb[i], sizeof(**p->slots));
        if (!p->slots[i])
            return ERR_NOMEM;
    }
    return 0;
}

static void unlink_conn(struct pool_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->slot->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->slot->n--;
}

static void drop(struct pool_conn *c)
{
    unlink_conn(c);
    timer_disarm(&c->w->loop.wheel, &c->timer);
    tls_free(c->tls);
    close(c->io.fd);
    free(c);
}

/* Anything from an idle connection (data, a hang-up, an error) ends it:
 * a response with no request is a broken backend, a close a lost one. */
static void on_idle_event(struct io *io, uint32_t events)
{
    struct pool_conn *c = (struct pool_conn *)((char *)io - offsetof(struct pool_conn, io));

    if (!c->taken)
        drop(c);
}

static void free_taken(struct defer *d)
{
    free((struct pool_conn *)((char *)d - offsetof(struct pool_conn, defer)));
}

static void on_idle_timeout(struct timer *t)
{
    drop((struct pool_conn *)((char *)t - offsetof(struct pool_conn, timer)));
}

void http_pool_free(struct http_pool *p)
{
    for (size_t i = 0; p->slots && i < p->n; i++) {
        for (size_t j = 0; p->slots[i] && j < p->nb[i]; j++)
            while (p->slots[i][j].head)
                drop(p->slots[i][j].head);
        free(p->slots[i]);
    }
    free(p->slots);
    free(p->nb);
    p->slots = NULL;
    p->nb = NULL;
    p->n = 0;
}

int http_pool_take(struct worker *w, size_t ui, size_t bi, struct tls_conn **tls)
{
    struct pool_slot *slot = &w->http_pool.slots[ui][bi];
    struct pool_conn *c = slot->head;
    int fd;

    if (!c)
        return -1;
    unlink_conn(c);
    timer_disarm(&w->loop.wheel, &c->timer);
    fd = c->io.fd;
    *tls = c->tls;
    c->tls = NULL;
    /* An event for it may still be in this pass's batch: keep the struct
     * until the pass ends, and have it ignore that event. */
    c->taken = true;
    loop_defer(&w->loop, &c->defer, free_taken);
    return fd;
}

bool http_pool_put(struct worker *w, size_t ui, size_t bi, int fd, struct tls_conn *tls,
                   const struct rc_upstream *up)
{
    struct pool_slot *slot = &w->http_pool.slots[ui][bi];
    struct pool_conn *c;

    if (slot->n >= up->http_pool_max_idle || !(c = calloc(1, sizeof(*c))))
        return false;
    c->io.fd = fd;
    c->tls = tls;
    c->io.cb = on_idle_event;
    c->w = w;
    c->slot = slot;
    if (loop_mod(&w->loop, &c->io, EPOLLIN | EPOLLRDHUP) < 0) {
        free(c);
        return false;
    }
    timer_init(&c->timer, on_idle_timeout);
    timer_arm(&w->loop.wheel, &c->timer, w->loop.now + up->http_pool_idle_ms);
    c->next = slot->head;
    if (slot->head)
        slot->head->prev = c;
    slot->head = c;
    slot->n++;
    return true;
}
