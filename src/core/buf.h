/* Fixed-size I/O buffers and a per-worker pool of them.
 *
 * A buffer is taken when bytes arrive and given back when it has been fully
 * written out, so an idle connection holds none. Positions inside a buffer:
 * 0 <= rpos <= ppos <= wpos <= BUF_DATA: [rpos, ppos) is parsed and waiting
 * to be written to the peer, [ppos, wpos) is read but not parsed yet.
 *
 * Buffer memory comes from page-aligned slabs mapped with mmap, never from
 * the general heap, so it cannot pin heap pages between long-lived objects.
 * A given-back buffer stays warm (its pages resident) while the pool caches
 * fewer than max_free; past that, and when buf_pool_trim finds warm buffers
 * that went unused for a whole period, its pages are returned to the kernel
 * (MADV_DONTNEED) and it waits cold, to be faulted in again on reuse. A
 * slab whose buffers are all cold is unmapped. */
#ifndef WSG_CORE_BUF_H
#define WSG_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_DATA (16u * 1024) /* payload bytes per buffer, page-aligned */

struct buf {
    struct buf *next; /* next buffer in a queue or the pool's free list */
    uint32_t rpos;    /* bytes already written out */
    uint32_t ppos;    /* bytes parsed and ready to write */
    uint32_t wpos;    /* bytes filled */
    uint32_t _pad;
    uint8_t *data; /* BUF_DATA bytes in the pool's slab */
};

struct buf_slab;

struct buf_pool {
    struct buf *free;       /* warm buffers: pages resident */
    struct buf_slab *cold;  /* slabs with cold buffers (pages given back) */
    struct buf_slab *slabs; /* every slab, for buf_pool_destroy */
    unsigned nfree;         /* warm buffers */
    unsigned max_free;      /* warm cache bound; further buffers go cold */
    unsigned low;           /* fewest warm buffers since the last buf_pool_trim */
    unsigned long live;     /* buffers handed out and not yet returned */
    unsigned long nslabs;   /* slabs mapped */
};

/* Empty pool that keeps up to max_free buffers warm. Maps nothing yet. */
void buf_pool_init(struct buf_pool *p, unsigned max_free);

/* Unmap every slab. Buffers still handed out become invalid. */
void buf_pool_destroy(struct buf_pool *p);

/* An empty buffer (positions 0, next NULL), or NULL when no memory can be
 * mapped. */
struct buf *buf_get(struct buf_pool *p);

/* Return a buffer taken with buf_get (taken: the pool owns it again). */
void buf_put(struct buf_pool *p, struct buf *b);

/* Give back the pages of the warm buffers that were not needed since the
 * last call (the fewest warm buffers seen in between). Call periodically;
 * returns the number of buffers made cold. */
unsigned buf_pool_trim(struct buf_pool *p);

#endif
