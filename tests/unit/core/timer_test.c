#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/timer.h"

static struct wheel w;
static int fired[8];
static struct timer ts[8];

static void on_fire(struct timer *t)
{
    fired[t - ts]++;
}

static void reset(uint64_t now)
{
    wheel_init(&w, now);
    for (int i = 0; i < 8; i++) {
        timer_init(&ts[i], on_fire);
        fired[i] = 0;
    }
}

static void fires_at_deadline_not_before(void **state)
{
    reset(1000);
    timer_arm(&w, &ts[0], 1100);
    wheel_run(&w, 1090);
    assert_int_equal(fired[0], 0);
    assert_true(timer_armed(&ts[0]));
    wheel_run(&w, 1100);
    assert_int_equal(fired[0], 1);
    assert_false(timer_armed(&ts[0]));
    wheel_run(&w, 5000);
    assert_int_equal(fired[0], 1);
}

static void disarm_and_rearm(void **state)
{
    reset(0);
    timer_arm(&w, &ts[0], 50);
    timer_arm(&w, &ts[1], 50);
    timer_disarm(&w, &ts[0]);
    timer_arm(&w, &ts[1], 200); /* re-arm moves it */
    wheel_run(&w, 100);
    assert_int_equal(fired[0], 0);
    assert_int_equal(fired[1], 0);
    wheel_run(&w, 200);
    assert_int_equal(fired[1], 1);
    assert_int_equal(wheel_timeout(&w, 200), -1);
}

static void beyond_one_revolution(void **state)
{
    uint64_t far = (uint64_t)TIMER_SLOTS * TIMER_TICK_MS * 3 + 70;

    reset(0);
    timer_arm(&w, &ts[0], far);
    for (uint64_t t = 0; t < far; t += 500)
        wheel_run(&w, t);
    assert_int_equal(fired[0], 0);
    wheel_run(&w, far);
    assert_int_equal(fired[0], 1);
}

static void long_stall_fires_everything(void **state)
{
    reset(0);
    for (int i = 0; i < 8; i++)
        timer_arm(&w, &ts[i], (uint64_t)i * 7000);
    wheel_run(&w, 100000); /* loop stalled far past every deadline */
    for (int i = 0; i < 8; i++)
        assert_int_equal(fired[i], 1);
}

static void past_deadline_fires_next_tick(void **state)
{
    reset(5000);
    timer_arm(&w, &ts[0], 10);
    assert_true(wheel_timeout(&w, 5000) >= 0);
    wheel_run(&w, 5000 + TIMER_TICK_MS);
    assert_int_equal(fired[0], 1);
}

static void cb_disarms_other_due(void **state);
static void disarm_other(struct timer *t)
{
    fired[0]++;
    timer_disarm(&w, &ts[1]);
}

static void cb_disarms_other_due(void **state)
{
    reset(0);
    timer_init(&ts[0], disarm_other);
    timer_arm(&w, &ts[0], 20);
    timer_arm(&w, &ts[1], 20);
    wheel_run(&w, 30);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired[1], 0);
    assert_false(timer_armed(&ts[1]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fires_at_deadline_not_before),
        cmocka_unit_test(disarm_and_rearm),
        cmocka_unit_test(beyond_one_revolution),
        cmocka_unit_test(long_stall_fires_everything),
        cmocka_unit_test(past_deadline_fires_next_tick),
        cmocka_unit_test(cb_disarms_other_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
