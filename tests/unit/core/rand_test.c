#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/rand.h"

/* Bytes taken in odd-sized pieces across several draws: the pieces join
 * up (no byte is handed out twice, none is skipped into zeros), and the
 * stream looks random: each bit position is set close to half the time. */
static void draws_join_and_look_random(void **state)
{
    enum { N = 5 * RNG_BUF + 123 };
    static uint8_t a[N];
    static unsigned ones[8];
    struct rng r;
    size_t got = 0, piece = 1;

    assert_int_equal(rng_init(&r), 0);
    while (got < N) {
        size_t n = piece < N - got ? piece : N - got;
        rng_bytes(&r, a + got, n);
        got += n;
        piece = piece % 97 + 3;
    }
    for (size_t i = 0; i < N; i++)
        for (int b = 0; b < 8; b++)
            ones[b] += (a[i] >> b) & 1;
    /* Binomial(N, 1/2): N/2 +- 6 standard deviations (sqrt(N)/2 ~ 72). */
    for (int b = 0; b < 8; b++) {
        assert_true(ones[b] > N / 2 - 440);
        assert_true(ones[b] < N / 2 + 440);
    }
    /* No 16-byte window repeats the one a draw earlier (a stuck buffer). */
    for (size_t i = RNG_BUF; i + 16 <= N; i += 16)
        assert_memory_not_equal(a + i, a + i - RNG_BUF, 16);
}

/* rng_u32 across a draw boundary that does not fall on a multiple of 4. */
static void u32_across_a_draw(void **state)
{
    struct rng r;
    uint8_t skip[RNG_BUF - 2];
    uint32_t seen[2 * RNG_BUF / 4];

    assert_int_equal(rng_init(&r), 0);
    rng_bytes(&r, skip, sizeof(skip));
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++) {
        seen[i] = rng_u32(&r);
        if (i > 0)
            assert_int_not_equal(seen[i], seen[i - 1]);
    }
}

static void seeded_generators_differ(void **state)
{
    struct rng a, b;
    uint8_t x[32], y[32];

    assert_int_equal(rng_init(&a), 0);
    assert_int_equal(rng_init(&b), 0);
    rng_bytes(&a, x, sizeof(x));
    rng_bytes(&b, y, sizeof(y));
    assert_memory_not_equal(x, y, sizeof(x));
    /* Successive keys from one generator differ too. */
    assert_int_not_equal(rng_u32(&a), rng_u32(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(draws_join_and_look_random),
        cmocka_unit_test(u32_across_a_draw),
        cmocka_unit_test(seeded_generators_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
