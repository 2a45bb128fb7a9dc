#include "core/buf.h"

#include <stdlib.h>

void buf_pool_init(struct buf_pool *p, unsigned max_free)
{
    p->free = NULL;
    p->nfree = 0;
    p->max_free = max_free;
    p->live = 0;
}

void buf_pool_destroy(struct buf_pool *p)
{
    while (p->free) {
        struct buf *b = p->free;
        p->free = b->next;
        free(b);
    }
    p->nfree = 0;
}

struct buf *buf_get(struct buf_pool *p)
{
    struct buf *b = p->free;

    if (b) {
        p->free = b->next;
        p->nfree--;
    } else {
        b = malloc(BUF_ALLOC);
        if (!b)
            return NULL;
    }
    b->next = NULL;
    b->rpos = b->ppos = b->wpos = 0;
    p->live++;
    return b;
}

void buf_put(struct buf_pool *p, struct buf *b)
{
    p->live--;
    if (p->nfree >= p->max_free) {
        free(b);
        return;
    }
    b->next = p->free;
    p->free = b;
    p->nfree++;
}
