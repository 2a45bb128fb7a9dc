/* Monotonic and wall clocks. */
#ifndef WSG_CORE_CLOCK_H
#define WSG_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds from CLOCK_MONOTONIC (never jumps). */
uint64_t clock_mono_ms(void);

/* Write the wall-clock time as RFC 3339 UTC with milliseconds
 * ("2026-11-24T04:01:23.456Z") into out (at least 32 bytes); returns its length. */
int clock_rfc3339(char *out, unsigned long cap);

#endif
