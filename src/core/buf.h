/* Fixed-size I/O buffers and a per-worker pool of them.
 *
 * A buffer is taken when bytes arrive and given back when it has been fully
 * written out, so an idle connection holds none. Positions inside a buffer:
 * 0 <= rpos <= ppos <= wpos <= BUF_DATA: [rpos, ppos) is parsed and waiting
 * to be written to the peer, [ppos, wpos) is read but not parsed yet. */
#ifndef WSG_CORE_BUF_H
#define WSG_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_DATA (16u * 1024) /* payload bytes per buffer */

struct buf {
    struct buf *next; /* next buffer in a queue or the pool's free list */
    uint32_t rpos;    /* bytes already written out */
    uint32_t ppos;    /* bytes parsed and ready to write */
    uint32_t wpos;    /* bytes filled */
    uint32_t _pad;
    uint8_t data[]; /* BUF_DATA bytes */
};

#define BUF_ALLOC (sizeof(struct buf) + BUF_DATA) /* bytes per allocation */

struct buf_pool {
    struct buf *free;   /* cached buffers */
    unsigned nfree;     /* buffers in the cache */
    unsigned max_free;  /* cache bound; extra buffers go back to malloc */
    unsigned long live; /* buffers handed out and not yet returned */
};

/* Empty pool that caches up to max_free buffers. */
void buf_pool_init(struct buf_pool *p, unsigned max_free);

/* Free every cached buffer. Buffers still handed out are the caller's. */
void buf_pool_destroy(struct buf_pool *p);

/* An empty buffer (positions 0, next NULL), or NULL when out of memory. */
struct buf *buf_get(struct buf_pool *p);

/* Return a buffer taken with buf_get (taken: the pool owns it again). */
void buf_put(struct buf_pool *p, struct buf *b);

#endif
