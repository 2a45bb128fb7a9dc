#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

static enum log_sev min_level = LOG_INFO;
static const char *const sev_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_sev min)
{
    min_level = min;
}

static void put(struct log_line *l, const char *s, size_t n)
{
    /* Keep 2 bytes for the closing "}\n". */
    size_t room = LOG_LINE_MAX - 2 - l->n;

    if (n > room)
        n = room;
    memcpy(l->buf + l->n, s, n);
    l->n += n;
}

static void put_escaped(struct log_line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n && l->n < LOG_LINE_MAX - 10; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            l->buf[l->n++] = '\\';
            l->buf[l->n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, e, sizeof(e));
        } else {
            /* Bytes >= 0x80 pass through: values we log are either ASCII or
             * UTF-8 already validated by the WebSocket layer. */
            l->buf[l->n++] = (char)c;
        }
    }
}

static void key(struct log_line *l, const char *k)
{
    put(l, ",\"", 2);
    put(l, k, strlen(k));
    put(l, "\":", 2);
}

bool log_begin(struct log_line *l, enum log_sev sev, const char *msg)
{
    char ts[40];
    int n;

    if (sev < min_level)
        return false;
    l->n = 0;
    n = clock_rfc3339(ts, sizeof(ts));
    put(l, "{\"time\":\"", 9);
    put(l, ts, (size_t)n);
    put(l, "\",\"level\":\"", 11);
    put(l, sev_names[sev], strlen(sev_names[sev]));
    put(l, "\",\"msg\":\"", 9);
    put_escaped(l, msg, strlen(msg));
    put(l, "\"", 1);
    return true;
}

void log_strn(struct log_line *l, const char *k, const char *val, size_t len)
{
    if (len == (size_t)-1)
        len = strlen(val);
    key(l, k);
    put(l, "\"", 1);
    put_escaped(l, val, len);
    put(l, "\"", 1);
}

void log_str(struct log_line *l, const char *k, const char *val)
{
    log_strn(l, k, val ? val : "", (size_t)-1);
}

void log_int(struct log_line *l, const char *k, int64_t val)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, val);

    key(l, k);
    put(l, num, (size_t)n);
}

void log_uint(struct log_line *l, const char *k, uint64_t val)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, val);

    key(l, k);
    put(l, num, (size_t)n);
}

void log_bool(struct log_line *l, const char *k, bool val)
{
    key(l, k);
    put(l, val ? "true" : "false", val ? 4 : 5);
}

void log_ms(struct log_line *l, const char *k, uint64_t usec)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRIu64 ".%" PRIu64, usec / 1000, (usec % 1000) / 100);

    key(l, k);
    put(l, num, (size_t)n);
}

void log_end(struct log_line *l)
{
    const char *p = l->buf;
    size_t left;

    l->buf[l->n++] = '}';
    l->buf[l->n++] = '\n';
    left = l->n;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log stream */
        p += w;
        left -= (size_t)w;
    }
}

void log_simple(enum log_sev sev, const char *msg, const char *detail)
{
    struct log_line l;

    if (!log_begin(&l, sev, msg))
        return;
    if (detail)
        log_str(&l, "detail", detail);
    log_end(&l);
}
