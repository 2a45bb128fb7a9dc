/* Hashed timer wheel: O(1) arm and disarm, expiry processed per tick.
 * Resolution TIMER_TICK_MS; one revolution is TIMER_SLOTS ticks, and a timer
 * further out than that simply stays in its slot until its time comes. */
#ifndef WSG_CORE_TIMER_H
#define WSG_CORE_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_TICK_MS 10
#define TIMER_SLOTS   1024 /* power of two */

struct timer;
typedef void (*timer_cb)(struct timer *t);

struct timer {
    struct timer *next, *prev; /* slot list; NULL when not armed */
    uint64_t at;               /* expiry, in ticks */
    timer_cb cb;               /* called once at expiry, after being disarmed */
};

struct wheel {
    struct timer slots[TIMER_SLOTS]; /* list heads (only next/prev used) */
    uint64_t tick;                   /* last tick processed */
    unsigned armed;                  /* timers armed */
};

void wheel_init(struct wheel *w, uint64_t now_ms);

/* Prepare a timer; it is not armed. */
void timer_init(struct timer *t, timer_cb cb);

/* Arm (or re-arm) t to fire at now_ms-based absolute time at_ms (rounded up
 * to the next tick). t must outlive its arming: disarm before freeing. */
void timer_arm(struct wheel *w, struct timer *t, uint64_t at_ms);

/* Disarm t if armed. */
void timer_disarm(struct wheel *w, struct timer *t);

static inline bool timer_armed(const struct timer *t)
{
    return t->next != NULL;
}

/* Fire every timer due at or before now_ms. Callbacks may arm and disarm
 * any timer, including other due ones. */
void wheel_run(struct wheel *w, uint64_t now_ms);

/* Milliseconds until the next tick when timers are armed, -1 when none. */
int wheel_timeout(const struct wheel *w, uint64_t now_ms);

#endif
