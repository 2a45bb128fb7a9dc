#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/asan.h"

/* A slab: one page holding its header and its buffers' headers, then
 * SLAB_BUFS data blocks of BUF_DATA bytes, all in one mapping, so a buffer
 * finds its slab by rounding its header's address down to the page. 64
 * blocks make a 1 MiB slab: few mappings, and a slab empties often enough
 * to be unmapped after a burst. */
#define SLAB_BUFS 64
#define SLAB_HEAD 4096u

struct buf_slab {
    struct buf_slab *next, *prev;           /* every slab: p->slabs */
    struct buf_slab *cold_next, *cold_prev; /* slabs with cold buffers: p->cold */
    struct buf *cold;                       /* this slab's cold buffers */
    unsigned ncold;                         /* in this slab's cold list */
    bool in_cold;                           /* linked in p->cold */
    struct buf bufs[SLAB_BUFS];
};

_Static_assert(sizeof(struct buf_slab) <= SLAB_HEAD, "slab headers fit one page");
_Static_assert(BUF_DATA % 4096 == 0, "buffers are whole pages");

#define SLAB_BYTES (SLAB_HEAD + (size_t)SLAB_BUFS * BUF_DATA)

static struct buf_slab *slab_of(struct buf *b)
{
    return (struct buf_slab *)((uintptr_t)b & ~(uintptr_t)(SLAB_HEAD - 1));
}

void buf_pool_init(struct buf_pool *p, unsigned max_free)
{
    *p = (struct buf_pool){.max_free = max_free};
}

void buf_pool_destroy(struct buf_pool *p)
{
    while (p->slabs) {
        struct buf_slab *sl = p->slabs;
        p->slabs = sl->next;
        ASAN_UNPOISON(sl, SLAB_BYTES);
        munmap(sl, SLAB_BYTES);
    }
    p->free = NULL;
    p->cold = NULL;
    p->nfree = p->low = 0;
    p->nslabs = 0;
}

static void cold_link(struct buf_pool *p, struct buf_slab *sl)
{
    sl->cold_prev = NULL;
    sl->cold_next = p->cold;
    if (p->cold)
        p->cold->cold_prev = sl;
    p->cold = sl;
    sl->in_cold = true;
}

static void cold_unlink(struct buf_pool *p, struct buf_slab *sl)
{
    if (sl->cold_prev)
        sl->cold_prev->cold_next = sl->cold_next;
    else
        p->cold = sl->cold_next;
    if (sl->cold_next)
        sl->cold_next->cold_prev = sl->cold_prev;
    sl->in_cold = false;
}

/* Map a new slab; its buffers start cold (fresh anonymous pages are not
 * resident until touched). */
static bool add_slab(struct buf_pool *p)
{
    struct buf_slab *sl =
        mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *data;

    if (sl == MAP_FAILED)
        return false;
    data = (uint8_t *)sl + SLAB_HEAD;
    for (int i = SLAB_BUFS - 1; i >= 0; i--) {
        sl->bufs[i].data = data + (size_t)i * BUF_DATA;
        sl->bufs[i].next = sl->cold;
        sl->cold = &sl->bufs[i];
    }
    sl->ncold = SLAB_BUFS;
    sl->prev = NULL;
    sl->next = p->slabs;
    if (p->slabs)
        p->slabs->prev = sl;
    p->slabs = sl;
    p->nslabs++;
    cold_link(p, sl);
    return true;
}

struct buf *buf_get(struct buf_pool *p)
{
    struct buf *b = p->free;

    if (b) {
        p->free = b->next;
        p->nfree--;
        if (p->nfree < p->low)
            p->low = p->nfree;
    } else {
        struct buf_slab *sl;
        if (!p->cold && !add_slab(p))
            return NULL;
        sl = p->cold;
        b = sl->cold;
        sl->cold = b->next;
        if (--sl->ncold == 0)
            cold_unlink(p, sl);
    }
    ASAN_UNPOISON(b->data, BUF_DATA);
    b->next = NULL;
    b->rpos = b->ppos = b->wpos = 0;
    p->live++;
    return b;
}

/* Give b's pages back to the kernel. Once every buffer of its slab is cold
 * the whole slab is unmapped. */
static void make_cold(struct buf_pool *p, struct buf *b)
{
    struct buf_slab *sl = slab_of(b);

    if (sl->ncold + 1 == SLAB_BUFS) {
        if (sl->in_cold)
            cold_unlink(p, sl);
        if (sl->prev)
            sl->prev->next = sl->next;
        else
            p->slabs = sl->next;
        if (sl->next)
            sl->next->prev = sl->prev;
        p->nslabs--;
        ASAN_UNPOISON(sl, SLAB_BYTES);
        munmap(sl, SLAB_BYTES);
        return;
    }
    /* The mapping stays; only the pages go. A failure leaves them
     * resident, which costs memory, not correctness. */
    madvise(b->data, BUF_DATA, MADV_DONTNEED);
    b->next = sl->cold;
    sl->cold = b;
    if (sl->ncold++ == 0)
        cold_link(p, sl);
}

void buf_put(struct buf_pool *p, struct buf *b)
{
    /* Sanitizer builds catch a use of the buffer after it went back. */
    ASAN_POISON(b->data, BUF_DATA);
    p->live--;
    if (p->nfree >= p->max_free) {
        make_cold(p, b);
        return;
    }
    b->next = p->free;
    p->free = b;
    p->nfree++;
}

unsigned buf_pool_trim(struct buf_pool *p)
{
    unsigned n = p->low;

    for (unsigned i = 0; i < n; i++) {
        struct buf *b = p->free;
        p->free = b->next;
        p->nfree--;
        make_cold(p, b);
    }
    p->low = p->nfree;
    return n;
}
