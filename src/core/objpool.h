/* A pool of fixed-size objects in page-aligned chunks mapped with mmap.
 *
 * Long-lived per-connection objects (sessions) come from here rather than
 * the general heap, so short-lived allocations made during handshakes never
 * end up pinned between them, and a chunk whose objects are all free goes
 * back to the kernel (one empty chunk is kept to absorb churn). Objects are
 * handed out from the most recently used chunk with room, which keeps the
 * live ones packed. Not thread-safe: one pool per worker. */
#ifndef WSG_CORE_OBJPOOL_H
#define WSG_CORE_OBJPOOL_H

#include <stddef.h>

struct obj_chunk;

struct objpool {
    size_t size;             /* bytes per object, rounded up to 16 */
    unsigned per_chunk;      /* objects per chunk */
    struct obj_chunk *avail; /* chunks with a free object, most recent first */
    struct obj_chunk *spare; /* an empty chunk kept mapped, or NULL */
    unsigned long live;      /* objects handed out */
    unsigned long chunks;    /* chunks mapped */
};

#define OBJPOOL_CHUNK (64u * 1024) /* bytes per chunk */

/* An empty pool of objects of `size` bytes (at most about OBJPOOL_CHUNK /
 * 4). Maps nothing yet. */
void objpool_init(struct objpool *p, size_t size);

/* Unmap every chunk. Objects still handed out become invalid. */
void objpool_destroy(struct objpool *p);

/* A zeroed object, or NULL when no memory can be mapped. */
void *objpool_get(struct objpool *p);

/* Return an object taken from p (taken). */
void objpool_put(struct objpool *p, void *obj);

#endif
