#include "core/objpool.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/asan.h"

/* A chunk is aligned to its size, so an object finds its chunk by masking
 * its address; the header sits at the start. */
struct obj_chunk {
    struct obj_chunk *next, *prev; /* in p->avail while it has a free object */
    void *free;                    /* free objects, linked through their first word */
    unsigned used;                 /* objects handed out from this chunk */
    unsigned fresh;                /* objects never handed out yet, from the end */
    bool listed;                   /* in p->avail */
};

#define HEAD_BYTES ((sizeof(struct obj_chunk) + 15) & ~(size_t)15)

void objpool_init(struct objpool *p, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    *p = (struct objpool){.size = size,
                          .per_chunk = (unsigned)((OBJPOOL_CHUNK - HEAD_BYTES) / size)};
}

static struct obj_chunk *chunk_of(void *obj)
{
    return (struct obj_chunk *)((uintptr_t)obj & ~(uintptr_t)(OBJPOOL_CHUNK - 1));
}

/* Map OBJPOOL_CHUNK bytes aligned to OBJPOOL_CHUNK: over-map, then unmap
 * the unaligned ends. */
static struct obj_chunk *map_chunk(void)
{
    size_t span = 2 * (size_t)OBJPOOL_CHUNK;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t start, end;

    if (raw == MAP_FAILED)
        return NULL;
    start = ((uintptr_t)raw + OBJPOOL_CHUNK - 1) & ~(uintptr_t)(OBJPOOL_CHUNK - 1);
    end = start + OBJPOOL_CHUNK;
    if (start > (uintptr_t)raw)
        munmap(raw, start - (uintptr_t)raw);
    if ((uintptr_t)raw + span > end)
        munmap((void *)end, (uintptr_t)raw + span - end);
    return (struct obj_chunk *)start;
}

static void link_front(struct objpool *p, struct obj_chunk *c)
{
    c->prev = NULL;
    c->next = p->avail;
    if (p->avail)
        p->avail->prev = c;
    p->avail = c;
    c->listed = true;
}

static void unlink_chunk(struct objpool *p, struct obj_chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        p->avail = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->listed = false;
}

void *objpool_get(struct objpool *p)
{
    struct obj_chunk *c = p->avail;
    void *obj;

    if (!c) {
        c = p->spare;
        p->spare = NULL;
        if (!c) {
            c = map_chunk();
            if (!c)
                return NULL;
            /* Fresh pages are zero and not resident until touched. */
            c->fresh = p->per_chunk;
            p->chunks++;
        }
        link_front(p, c);
    }
    if (c->free) {
        obj = c->free;
        ASAN_UNPOISON(obj, p->size);
        memcpy(&c->free, obj, sizeof(void *));
    } else {
        c->fresh--;
        obj = (uint8_t *)c + HEAD_BYTES + (size_t)c->fresh * p->size;
        ASAN_UNPOISON(obj, p->size);
    }
    c->used++;
    if (!c->free && !c->fresh)
        unlink_chunk(p, c);
    p->live++;
    memset(obj, 0, p->size);
    return obj;
}

void objpool_put(struct objpool *p, void *obj)
{
    struct obj_chunk *c = chunk_of(obj);

    /* Sanitizer builds catch a use of the object after it went back; its
     * first word links the free list and stays readable to the pool. */
    ASAN_POISON(obj, p->size);
    ASAN_UNPOISON(obj, sizeof(void *));
    memcpy(obj, &c->free, sizeof(void *));
    c->free = obj;
    c->used--;
    p->live--;
    if (c->used == 0) {
        /* Empty: keep one such chunk, give the others back. */
        if (c->listed)
            unlink_chunk(p, c);
        if (!p->spare) {
            p->spare = c;
        } else {
            ASAN_UNPOISON(c, OBJPOOL_CHUNK);
            munmap(c, OBJPOOL_CHUNK);
            p->chunks--;
        }
        return;
    }
    if (!c->listed)
        link_front(p, c);
}

void objpool_destroy(struct objpool *p)
{
    /* Chunks with live objects are the caller's to have freed first; only
     * what the pool can still reach is unmapped. */
    while (p->avail) {
        struct obj_chunk *c = p->avail;
        unlink_chunk(p, c);
        ASAN_UNPOISON(c, OBJPOOL_CHUNK);
        munmap(c, OBJPOOL_CHUNK);
    }
    if (p->spare) {
        ASAN_UNPOISON(p->spare, OBJPOOL_CHUNK);
        munmap(p->spare, OBJPOOL_CHUNK);
    }
    p->spare = NULL;
    p->chunks = 0;
}
