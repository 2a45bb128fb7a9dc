#include "core/timer.h"

#include <stddef.h>

static void unlink_timer(struct timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static void push(struct timer *head, struct timer *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

void wheel_init(struct wheel *w, uint64_t now_ms)
{
    for (unsigned i = 0; i < TIMER_SLOTS; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->tick = now_ms / TIMER_TICK_MS;
    w->armed = 0;
}

void timer_init(struct timer *t, timer_cb cb)
{
    t->next = t->prev = NULL;
    t->at = 0;
    t->cb = cb;
}

void timer_arm(struct wheel *w, struct timer *t, uint64_t at_ms)
{
    uint64_t at = (at_ms + TIMER_TICK_MS - 1) / TIMER_TICK_MS;

    if (timer_armed(t))
        unlink_timer(t);
    else
        w->armed++;
    /* A time already past fires on the next tick processed. */
    if (at <= w->tick)
        at = w->tick + 1;
    t->at = at;
    push(&w->slots[at & (TIMER_SLOTS - 1)], t);
}

void timer_disarm(struct wheel *w, struct timer *t)
{
    if (!timer_armed(t))
        return;
    unlink_timer(t);
    w->armed--;
}

void wheel_run(struct wheel *w, uint64_t now_ms)
{
    uint64_t now = now_ms / TIMER_TICK_MS;
    uint64_t steps;
    struct timer due = {.next = &due, .prev = &due};

    if (now <= w->tick)
        return;
    steps = now - w->tick;
    if (steps > TIMER_SLOTS)
        steps = TIMER_SLOTS; /* every slot visited once covers everything due */
    for (uint64_t i = 1; i <= steps; i++) {
        struct timer *head = &w->slots[(w->tick + i) & (TIMER_SLOTS - 1)];
        struct timer *t = head->next;
        while (t != head) {
            struct timer *next = t->next;
            if (t->at <= now) {
                unlink_timer(t);
                push(&due, t);
            }
            t = next;
        }
    }
    w->tick = now;
    /* Fire from a private list: a callback may disarm a timer that is due
     * too, which unlinks it from here. */
    while (due.next != &due) {
        struct timer *t = due.next;
        unlink_timer(t);
        w->armed--;
        t->cb(t);
    }
}

int wheel_timeout(const struct wheel *w, uint64_t now_ms)
{
    uint64_t next_ms;

    if (w->armed == 0)
        return -1;
    next_ms = (w->tick + 1) * TIMER_TICK_MS;
    return next_ms > now_ms ? (int)(next_ms - now_ms) : 0;
}
