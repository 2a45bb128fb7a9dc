/* Structured logging: one JSON object per line on stderr, written with a
 * single write(2) so lines from several threads never interleave.
 *
 *     struct log_line l;
 *     if (log_begin(&l, LOG_INFO, "listening")) {
 *         log_str(&l, "addr", addr);
 *         log_end(&l);
 *     }
 */
#ifndef WSG_CORE_LOG_H
#define WSG_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_sev { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_LINE_MAX 4096 /* bytes; longer values are cut */

struct log_line {
    size_t n;               /* bytes used in buf */
    char buf[LOG_LINE_MAX]; /* the line being built */
};

/* Set the minimum severity written (default LOG_INFO). Call before threads start. */
void log_set_level(enum log_sev min);

/* Start a line with "time", "level" and "msg". Returns false (and the line
 * must not be used) when sev is below the configured level. */
bool log_begin(struct log_line *l, enum log_sev sev, const char *msg);

/* Append "key":"value" with JSON escaping; len may be (size_t)-1 for strlen. */
void log_strn(struct log_line *l, const char *key, const char *val, size_t len);
void log_str(struct log_line *l, const char *key, const char *val);
void log_int(struct log_line *l, const char *key, int64_t val);
void log_uint(struct log_line *l, const char *key, uint64_t val);
void log_bool(struct log_line *l, const char *key, bool val);
/* Fixed-point milliseconds with one decimal, from microseconds. */
void log_ms(struct log_line *l, const char *key, uint64_t usec);

/* Finish the line and write it to stderr. */
void log_end(struct log_line *l);

/* One-call form for simple messages: {"msg":msg,"detail":detail}. */
void log_simple(enum log_sev sev, const char *msg, const char *detail);

#endif
