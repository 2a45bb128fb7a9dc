/* The random source failing. Both sources are real but cannot be made to
 * fail on demand, so this program is linked with
 * -Wl,--wrap=RAND_bytes,--wrap=getrandom (see CMakeLists.txt): the wrappers
 * below call the real functions unless a test switches a failure on. The
 * log goes to standard error, which the tests read back from a file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/rand.h"

static bool openssl_fails, kernel_fails;
static unsigned openssl_calls, kernel_calls;

int __real_RAND_bytes(unsigned char *buf, int num);
ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);

int __wrap_RAND_bytes(unsigned char *buf, int num)
{
    openssl_calls++;
    return openssl_fails ? 0 : __real_RAND_bytes(buf, num);
}

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
    kernel_calls++;
    if (kernel_fails) {
        errno = EIO;
        return -1;
    }
    return __real_getrandom(buf, len, flags);
}

/* While wsgate code runs, standard error goes to a temporary file; it is
 * put back before any assertion, so cmocka's messages are not lost. */
static int saved_stderr = -1;
static FILE *captured;

static void capture(void)
{
    fflush(stderr);
    assert_int_not_equal(dup2(fileno(captured), STDERR_FILENO), -1);
}

static void release(void)
{
    assert_int_not_equal(dup2(saved_stderr, STDERR_FILENO), -1);
}

static int setup(void **state)
{
    openssl_fails = kernel_fails = false;
    openssl_calls = kernel_calls = 0;
    captured = tmpfile();
    if (captured == NULL)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    return saved_stderr < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    close(saved_stderr);
    fclose(captured);
    return 0;
}

/* Everything logged so far, NUL-terminated (static storage). */
static const char *logged(void)
{
    static char text[4096];
    ssize_t n = pread(fileno(captured), text, sizeof(text) - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    return text;
}

static unsigned count(const char *hay, const char *needle)
{
    unsigned c = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        c++;
    return c;
}

/* OpenSSL failing alone: the kernel's bytes take over, nothing repeats and
 * nothing is logged. */
static void kernel_takes_over(void **state)
{
    static uint8_t a[3 * RNG_BUF];
    struct rng r;

    openssl_fails = true;
    capture();
    int rc = rng_init(&r);
    if (rc == 0)
        rng_bytes(&r, a, sizeof(a));
    release();
    assert_int_equal(rc, 0);
    assert_int_equal(openssl_calls, 3);
    assert_true(kernel_calls >= 3); /* getrandom may return short reads */
    assert_memory_not_equal(a, a + RNG_BUF, RNG_BUF);
    assert_memory_not_equal(a + RNG_BUF, a + 2 * RNG_BUF, RNG_BUF);
    assert_string_equal(logged(), "");
}

/* Both failing at start: rng_init reports it, so the worker does not
 * start with an unfilled buffer. */
static void init_fails_when_both_fail(void **state)
{
    struct rng r;

    openssl_fails = kernel_fails = true;
    capture();
    int rc = rng_init(&r);
    release();
    assert_int_equal(rc, ERR_SYS);
}

/* Both failing at run time: the last draw is handed out again (keys
 * repeat, framing goes on), the failure is logged once however many
 * refills fail, and the recovery is logged once when a source works
 * again, after which the bytes are fresh. */
static void run_time_failure_repeats_logs_once_and_recovers(void **state)
{
    static uint8_t first[RNG_BUF], again[3 * RNG_BUF], fresh[RNG_BUF];
    struct rng r;

    assert_int_equal(rng_init(&r), 0);
    rng_bytes(&r, first, sizeof(first));
    openssl_fails = kernel_fails = true;
    capture();
    rng_bytes(&r, again, sizeof(again)); /* three failed refills */
    release();
    for (int i = 0; i < 3; i++)
        assert_memory_equal(again + i * RNG_BUF, first, RNG_BUF);
    assert_int_equal(count(logged(), "random source failed"), 1);
    assert_int_equal(count(logged(), "recovered"), 0);

    kernel_fails = false; /* the kernel comes back, OpenSSL stays down */
    capture();
    rng_bytes(&r, fresh, sizeof(fresh));
    release();
    assert_memory_not_equal(fresh, first, RNG_BUF);
    assert_int_equal(count(logged(), "random source failed"), 1);
    assert_int_equal(count(logged(), "random source recovered"), 1);

    openssl_fails = kernel_fails = true; /* a second outage is logged again */
    capture();
    rng_bytes(&r, fresh, sizeof(fresh));
    release();
    assert_int_equal(count(logged(), "random source failed"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kernel_takes_over, setup, teardown),
        cmocka_unit_test_setup_teardown(init_fails_when_both_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(run_time_failure_repeats_logs_once_and_recovers, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
