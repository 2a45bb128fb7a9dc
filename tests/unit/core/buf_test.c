/* The buffer pool: warm cache bound, pages given back for cold buffers
 * (checked with mincore), trimming of buffers unused for a whole period. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"

/* Pages of b's data that are resident. */
static unsigned resident_pages(const struct buf *b)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char vec[BUF_DATA / 4096];
    unsigned n = 0;

    assert_int_equal(mincore(b->data, BUF_DATA, vec), 0);
    for (size_t i = 0; i < BUF_DATA / (size_t)page; i++)
        n += vec[i] & 1;
    return n;
}

static void fill(struct buf *b)
{
    memset(b->data, 0xa5, BUF_DATA);
    b->wpos = BUF_DATA;
}

static void caches_up_to_bound_and_returns_the_rest(void **state)
{
    struct buf_pool p;
    struct buf *b[70];
    unsigned pages = BUF_DATA / (unsigned)sysconf(_SC_PAGESIZE);

    buf_pool_init(&p, 64);
    for (int i = 0; i < 70; i++) {
        b[i] = buf_get(&p);
        assert_non_null(b[i]);
        assert_int_equal(b[i]->wpos, 0);
        assert_int_equal((uintptr_t)b[i]->data % 4096, 0);
        fill(b[i]);
        assert_int_equal(resident_pages(b[i]), pages);
    }
    assert_int_equal(p.live, 70);
    assert_int_equal(p.nslabs, 2);
    for (int i = 0; i < 69; i++)
        buf_put(&p, b[i]);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.nfree, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(resident_pages(b[i]), pages); /* warm */
    for (int i = 64; i < 69; i++)
        assert_int_equal(resident_pages(b[i]), 0); /* cold: pages given back */
    assert_int_equal(resident_pages(b[69]), pages);
    buf_put(&p, b[69]); /* its slab's last buffer: the slab is unmapped */
    assert_int_equal(p.nslabs, 1);

    b[0] = buf_get(&p);
    b[0]->wpos = 5;
    buf_put(&p, b[0]);
    b[0] = buf_get(&p); /* a reused buffer comes back empty */
    assert_int_equal(b[0]->wpos, 0);
    buf_put(&p, b[0]);
    buf_pool_destroy(&p);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(p.nslabs, 0);
}

static void trim_returns_buffers_unused_for_a_period(void **state)
{
    struct buf_pool p;
    struct buf *b[8], *keep;

    buf_pool_init(&p, 64);
    keep = buf_get(&p); /* holds the slab mapped, so its pages can be inspected */
    for (int i = 0; i < 8; i++) {
        b[i] = buf_get(&p);
        fill(b[i]);
    }
    for (int i = 0; i < 8; i++)
        buf_put(&p, b[i]);
    assert_int_equal(buf_pool_trim(&p), 0); /* start of a period */
    /* Two buffers in use at a time during this period: six never were. */
    for (int round = 0; round < 3; round++) {
        struct buf *x = buf_get(&p), *y = buf_get(&p);
        buf_put(&p, y);
        buf_put(&p, x);
    }
    assert_int_equal(buf_pool_trim(&p), 6);
    assert_int_equal(p.nfree, 2);
    assert_int_equal(buf_pool_trim(&p), 2); /* a quiet period: the rest go */
    assert_int_equal(p.nfree, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(resident_pages(b[i]), 0);
    /* Cold buffers are reused before any new slab is mapped. */
    for (int i = 0; i < 8; i++) {
        b[i] = buf_get(&p);
        fill(b[i]);
    }
    assert_int_equal(p.nslabs, 1);
    for (int i = 0; i < 8; i++)
        buf_put(&p, b[i]);
    buf_put(&p, keep);
    buf_pool_destroy(&p);
}

static void a_slab_whose_buffers_are_all_cold_is_unmapped(void **state)
{
    struct buf_pool p;
    struct buf *b[130];

    buf_pool_init(&p, 0); /* nothing stays warm */
    for (int i = 0; i < 130; i++) {
        b[i] = buf_get(&p);
        fill(b[i]);
    }
    assert_int_equal(p.nslabs, 3);
    for (int i = 0; i < 64; i++)
        buf_put(&p, b[i]); /* the first slab, all of it */
    assert_int_equal(p.nslabs, 2);
    for (int i = 64; i < 128; i++)
        buf_put(&p, b[i]);
    assert_int_equal(p.nslabs, 1);
    /* The last slab keeps serving: its free buffers are handed out again. */
    b[0] = buf_get(&p);
    fill(b[0]);
    assert_int_equal(p.nslabs, 1);
    buf_put(&p, b[0]);
    buf_put(&p, b[128]);
    buf_put(&p, b[129]);
    assert_int_equal(p.nslabs, 0);
    assert_int_equal(p.live, 0);
    buf_pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caches_up_to_bound_and_returns_the_rest),
        cmocka_unit_test(trim_returns_buffers_unused_for_a_period),
        cmocka_unit_test(a_slab_whose_buffers_are_all_cold_is_unmapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
