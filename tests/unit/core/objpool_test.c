/* The object pool: zeroed objects, packing, chunks given back when empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/objpool.h"

#define N    1000
#define SIZE 1850

static void objects_are_zeroed_distinct_and_chunks_go_back(void **state)
{
    static uint8_t *o[N];
    struct objpool p;

    objpool_init(&p, SIZE);
    assert_int_equal(p.size % 16, 0);
    assert_true(p.size >= SIZE);
    for (int i = 0; i < N; i++) {
        o[i] = objpool_get(&p);
        assert_non_null(o[i]);
        assert_int_equal((uintptr_t)o[i] % 16, 0);
        for (size_t k = 0; k < SIZE; k++)
            assert_int_equal(o[i][k], 0);
        memset(o[i], i & 0xff, SIZE);
    }
    assert_int_equal(p.live, N);
    assert_int_equal(p.chunks, (N + p.per_chunk - 1) / p.per_chunk);
    /* No object overlaps another: each still holds its own fill. */
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < SIZE; k += 97)
            assert_int_equal(o[i][k], i & 0xff);

    /* Free every other object: no chunk is empty, none goes back, and the
     * freed slots are reused before a new chunk is mapped. */
    unsigned long chunks = p.chunks;
    for (int i = 0; i < N; i += 2)
        objpool_put(&p, o[i]);
    assert_int_equal(p.chunks, chunks);
    for (int i = 0; i < N; i += 2) {
        o[i] = objpool_get(&p);
        assert_int_equal(o[i][0], 0); /* zeroed again */
    }
    assert_int_equal(p.chunks, chunks);

    /* Free everything: one empty chunk stays mapped, the rest go back. */
    for (int i = 0; i < N; i++)
        objpool_put(&p, o[i]);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.chunks, 1);
    o[0] = objpool_get(&p); /* from the kept chunk */
    assert_int_equal(p.chunks, 1);
    objpool_put(&p, o[0]);
    objpool_destroy(&p);
    assert_int_equal(p.chunks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(objects_are_zeroed_distinct_and_chunks_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
