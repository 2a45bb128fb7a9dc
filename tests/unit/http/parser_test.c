/* Unit tests for src/http/parser.c: request and response heads, list and token
 * helpers, and the chunked decoder. Every table input is replayed at every
 * split point (prefix lengths 1..n on one buffer with one scan hint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "http/parser.h"

#define MAXH 16

static const struct http_limits deflim = {16384, 100};

struct tcase {
    const char *in; /* input bytes (may hold NUL) */
    size_t n;       /* bytes */
    int expect;     /* ERR_* code, or 0: the whole input is one complete head */
};

#define TC(s, e)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1, e                                                                        \
    }

/* Length of a string literal without its NUL, for expected head lengths. */
#define LEN(s) ((int)(sizeof(s) - 1))

#define assert_span(sp, lit)                                                                       \
    do {                                                                                           \
        struct http_span s_ = (sp);                                                                \
        assert_int_equal(s_.n, strlen(lit));                                                       \
        if (s_.n > 0)                                                                              \
            assert_memory_equal(s_.p, (lit), s_.n);                                                \
    } while (0)

/* An exact-size heap copy so ASan catches any read past len. */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    if (n > 0)
        memcpy(p, s, n);
    return p;
}

static int req_oneshot(const char *s, size_t n, const struct http_limits *lim,
                       struct http_request *req)
{
    size_t scan = 0;
    return http_parse_request(s, n, lim, req, &scan);
}

static int resp_oneshot(const char *s, size_t n, const struct http_limits *lim,
                        struct http_response *resp)
{
    size_t scan = 0;
    return http_parse_response(s, n, lim, resp, &scan);
}

static void assert_same_span(struct http_span a, const char *abase, struct http_span b,
                             const char *bbase)
{
    assert_int_equal(a.n, b.n);
    assert_int_equal(a.p - abase, b.p - bbase);
}

static void assert_same_headers(const struct http_header *a, const char *abase,
                                const struct http_header *b, const char *bbase, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        assert_same_span(a[i].name, abase, b[i].name, bbase);
        assert_same_span(a[i].value, abase, b[i].value, bbase);
    }
}

/* Feed prefixes 1..n of one buffer with one scan hint: every call before the
 * result is known answers ERR_AGAIN, every call after gives the one-shot result,
 * and a complete head gives the same fields. Returns the one-shot result. */
static int replay_request(const char *in, size_t n, const struct http_limits *lim)
{
    struct http_header h1[128], h2[128];
    struct http_request r1 = {.headers = h1}, r2 = {.headers = h2};
    char *one = dup_exact(in, n);
    char *buf = dup_exact(in, n);
    size_t scan = 0;
    bool known = false;

    assert_true(lim->max_headers <= 128);
    int want = req_oneshot(one, n, lim, &r1);
    for (size_t k = 1; k <= n; k++) {
        int rc = http_parse_request(buf, k, lim, &r2, &scan);
        if (rc == ERR_AGAIN) {
            assert_false(known);
            /* The hint is where the next call resumes: O(1) rework per byte. */
            assert_true(scan + 3 >= k);
            continue;
        }
        known = true;
        assert_int_equal(rc, want);
        if (rc > 0) {
            assert_same_span(r1.method, one, r2.method, buf);
            assert_same_span(r1.target, one, r2.target, buf);
            assert_int_equal(r1.minor_version, r2.minor_version);
            assert_int_equal(r1.nheaders, r2.nheaders);
            assert_same_headers(r1.headers, one, r2.headers, buf, r1.nheaders);
        }
    }
    if (n > 0 && !known)
        assert_int_equal(want, ERR_AGAIN);
    free(one);
    free(buf);
    return want;
}

static int replay_response(const char *in, size_t n, const struct http_limits *lim)
{
    struct http_header h1[128], h2[128];
    struct http_response r1 = {.headers = h1}, r2 = {.headers = h2};
    char *one = dup_exact(in, n);
    char *buf = dup_exact(in, n);
    size_t scan = 0;
    bool known = false;

    assert_true(lim->max_headers <= 128);
    int want = resp_oneshot(one, n, lim, &r1);
    for (size_t k = 1; k <= n; k++) {
        int rc = http_parse_response(buf, k, lim, &r2, &scan);
        if (rc == ERR_AGAIN) {
            assert_false(known);
            assert_true(scan + 3 >= k);
            continue;
        }
        known = true;
        assert_int_equal(rc, want);
        if (rc > 0) {
            assert_int_equal(r1.minor_version, r2.minor_version);
            assert_int_equal(r1.status, r2.status);
            assert_same_span(r1.reason, one, r2.reason, buf);
            assert_int_equal(r1.nheaders, r2.nheaders);
            assert_same_headers(r1.headers, one, r2.headers, buf, r1.nheaders);
        }
    }
    if (n > 0 && !known)
        assert_int_equal(want, ERR_AGAIN);
    free(one);
    free(buf);
    return want;
}

static void run_request_table(const struct tcase *t, size_t count, const struct http_limits *lim)
{
    for (size_t i = 0; i < count; i++) {
        int rc = replay_request(t[i].in, t[i].n, lim);
        int want = t[i].expect != 0 ? t[i].expect : (int)t[i].n;
        if (rc != want)
            fail_msg("request case %zu: got %d (%s), want %d (%s)", i, rc, err_name(rc), want,
                     err_name(want));
    }
}

static void run_response_table(const struct tcase *t, size_t count, const struct http_limits *lim)
{
    for (size_t i = 0; i < count; i++) {
        int rc = replay_response(t[i].in, t[i].n, lim);
        int want = t[i].expect != 0 ? t[i].expect : (int)t[i].n;
        if (rc != want)
            fail_msg("response case %zu: got %d (%s), want %d (%s)", i, rc, err_name(rc), want,
                     err_name(want));
    }
}

#define UPGRADE_REQ                                                                                \
    "GET /chat?room=1 HTTP/1.1\r\n"                                                                \
    "Host: server.example.com\r\n"                                                                 \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Origin: http://example.com\r\n"                                                               \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"                                                  \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "\r\n"

/* ---- requests: valid ---- */

static void test_request_valid_upgrade(void **state)
{
    static const char in[] = UPGRADE_REQ;
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};

    assert_int_equal(req_oneshot(in, sizeof(in) - 1, &lim, &req), LEN(UPGRADE_REQ));
    assert_span(req.method, "GET");
    assert_span(req.target, "/chat?room=1");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.nheaders, 7);
    assert_span(h[0].name, "Host");
    assert_span(h[0].value, "server.example.com");
    assert_span(h[3].name, "Sec-WebSocket-Key");
    assert_span(h[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_span(h[5].value, "chat, superchat");
    assert_span(h[6].name, "Sec-WebSocket-Version");
    assert_span(h[6].value, "13");
    assert_int_equal(replay_request(in, sizeof(in) - 1, &lim), LEN(UPGRADE_REQ));
}

static void test_request_head_then_frames(void **state)
{
    /* Bytes after the head (the first frame) are not part of the result, even
     * when they hold a bare LF or CRLF CRLF. */
    static const char in[] = UPGRADE_REQ "\x81\x85\n\r\n\r\nabc";
    assert_int_equal(replay_request(in, sizeof(in) - 1, &deflim), LEN(UPGRADE_REQ));
}

static void test_request_ows_and_values(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "A:   b c \t \r\n"
                             "Empty:\r\n"
                             "Blank: \t \r\n"
                             "Tab:\tx\ty\r\n"
                             "Utf8: caf\xc3\xa9\r\n"
                             "X-Odd!#$%&'*+-.^_`|~9: 1\r\n"
                             "\r\n";
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};

    assert_int_equal(req_oneshot(in, sizeof(in) - 1, &lim, &req), LEN(in));
    assert_int_equal(req.nheaders, 6);
    assert_span(h[0].value, "b c");
    assert_span(h[1].value, "");
    assert_span(h[2].value, "");
    assert_span(h[3].value, "x\ty");
    assert_span(h[4].value, "caf\xc3\xa9");
    assert_span(h[5].name, "X-Odd!#$%&'*+-.^_`|~9");
    assert_int_equal(replay_request(in, sizeof(in) - 1, &lim), LEN(in));
}

static void test_request_versions(void **state)
{
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};
    static const char v10[] = "GET / HTTP/1.0\r\n\r\n";
    static const char v12[] = "GET / HTTP/1.2\r\n\r\n";

    /* HTTP/1.0 parses; the handshake layer is the one that refuses it. */
    assert_int_equal(req_oneshot(v10, sizeof(v10) - 1, &lim, &req), LEN(v10));
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.nheaders, 0);
    assert_int_equal(req_oneshot(v12, sizeof(v12) - 1, &lim, &req), LEN(v12));
    assert_int_equal(req.minor_version, 2);

    static const struct tcase t[] = {
        TC("GET / HTTP/1.0\r\n\r\n", 0),
        TC("GET / HTTP/2.0\r\n\r\n", ERR_HTTP_VERSION),
        TC("GET / HTTP/0.9\r\n\r\n", ERR_HTTP_VERSION),
        TC("GET / HTTP/9.1\r\nHost: a\r\n\r\n", ERR_HTTP_VERSION),
        TC("GET / HTTP/1.1x\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / http/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/11.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1 \r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/a.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /\r\n\r\n", ERR_HTTP_SYNTAX),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_line_syntax(void **state)
{
    static const struct tcase t[] = {
        TC("POST /x HTTP/1.1\r\n\r\n", 0),
        TC("M-SEARCH * HTTP/1.1\r\n\r\n", 0),
        TC("GET http://a/b?c HTTP/1.1\r\n\r\n", 0),
        TC("GET  / HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /  HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC(" GET / HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET\t/ HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /\tHTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("G(T / HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /a\x7f HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /a\x01 HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /a\0b HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET /a\rb HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("\r\n\r\n", ERR_HTTP_SYNTAX),
        /* RFC 9112 §2.2 allows skipping a leading empty line; we do not. */
        TC("\r\nGET / HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC(" \r\n\r\n", ERR_HTTP_SYNTAX),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_bare_lf(void **state)
{
    static const struct tcase t[] = {
        TC("\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\n\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\nHost: a\r\n\r\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\r\nHost: a\n\r\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\r\nHost: a\r\n\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", ERR_HTTP_BARE_LF),
        TC("GET / HTTP/1.1\r\n\n", ERR_HTTP_BARE_LF),
        /* The bare LF is found while scanning, before earlier grammar errors. */
        TC("G(T / HTTP/1.1\r\nA: b\n", ERR_HTTP_BARE_LF),
        /* ... and is reported as soon as it arrives, not at the end of the head. */
        TC("GET / HTTP/1.1\r\nA: b\nmore", ERR_HTTP_BARE_LF),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_obs_fold(void **state)
{
    static const struct tcase t[] = {
        TC("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", ERR_HTTP_OBS_FOLD),
        TC("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", ERR_HTTP_OBS_FOLD),
        TC("GET / HTTP/1.1\r\n Host: a\r\n\r\n", ERR_HTTP_OBS_FOLD),
        TC("GET / HTTP/1.1\r\nA: b\r\n \r\n\r\n", ERR_HTTP_OBS_FOLD),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_bad_char(void **state)
{
    static const struct tcase t[] = {
        TC("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: b\r\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: b\x1f\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA: \x0b\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA\0: b\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA\r: b\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA\x7f: b\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA(b): c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA@b: c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nA/b: c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\n\"A\": c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\nH\xc3\xa9: c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("GET / HTTP/1.1\r\n\x01: c\r\n\r\n", ERR_HTTP_BAD_CHAR),
        /* HTAB and obs-text are allowed in values. */
        TC("GET / HTTP/1.1\r\nA: b\tc\xff\r\n\r\n", 0),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_field_syntax(void **state)
{
    static const struct tcase t[] = {
        TC("GET / HTTP/1.1\r\nA : b\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1\r\nA\t: b\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1\r\nA B: c\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1\r\nNoColon\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("GET / HTTP/1.1\r\nA: b\r\nNoColon\r\n\r\n", ERR_HTTP_SYNTAX),
        /* A colon in the value is fine. */
        TC("GET / HTTP/1.1\r\nA: b:c\r\n\r\n", 0),
    };
    run_request_table(t, sizeof(t) / sizeof(t[0]), &deflim);
}

static void test_request_too_many_headers(void **state)
{
    struct http_limits lim3 = {16384, 3};
    struct http_limits lim0 = {16384, 0};
    static const struct tcase t3[] = {
        TC("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0),
        TC("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", ERR_HTTP_TOO_MANY_HEADERS),
        /* The first error in line order wins. */
        TC("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD\0: 4\r\n\r\n", ERR_HTTP_TOO_MANY_HEADERS),
        TC("GET / HTTP/1.1\r\nA: 1\r\nB\0: 2\r\nC: 3\r\nD: 4\r\n\r\n", ERR_HTTP_BAD_CHAR),
    };
    static const struct tcase t0[] = {
        TC("GET / HTTP/1.1\r\n\r\n", 0),
        TC("GET / HTTP/1.1\r\nA: 1\r\n\r\n", ERR_HTTP_TOO_MANY_HEADERS),
    };
    run_request_table(t3, sizeof(t3) / sizeof(t3[0]), &lim3);
    run_request_table(t0, sizeof(t0) / sizeof(t0[0]), &lim0);

    /* max_headers 0: the caller's array may be NULL. */
    struct http_request req = {.headers = NULL};
    static const char in[] = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(req_oneshot(in, sizeof(in) - 1, &lim0, &req), LEN(in));
    assert_int_equal(req.nheaders, 0);
}

static void test_request_head_too_big(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 bytes */
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    size_t n = sizeof(in) - 1;

    struct http_limits exact = {n, MAXH};
    struct http_limits small = {n - 1, MAXH};
    assert_int_equal(replay_request(in, n, &exact), (int)n);
    assert_int_equal(replay_request(in, n, &small), ERR_HTTP_HEAD_TOO_BIG);

    /* Incomplete: AGAIN below the limit, too big once len reaches it. */
    struct http_limits lim10 = {10, MAXH};
    size_t scan = 0;
    assert_int_equal(http_parse_request(in, 9, &lim10, &req, &scan), ERR_AGAIN);
    assert_int_equal(http_parse_request(in, 10, &lim10, &req, &scan), ERR_HTTP_HEAD_TOO_BIG);
    scan = 0;
    assert_int_equal(http_parse_request(in, n, &lim10, &req, &scan), ERR_HTTP_HEAD_TOO_BIG);
    /* An incomplete head always answers AGAIN at any length below the limit. */
    assert_int_equal(replay_request(in, n - 1, &deflim), ERR_AGAIN);

    /* A bare LF after max_head bytes is never looked at. */
    static const char lf[] = "GET / HTTP/1.1\r\nA: bbbbbbbbbb\n";
    struct http_limits lim16 = {16, MAXH};
    assert_int_equal(replay_request(lf, sizeof(lf) - 1, &lim16), ERR_HTTP_HEAD_TOO_BIG);

    /* A large head at the default limit, fed byte by byte. */
    size_t big = 16384;
    char *buf = malloc(big + 64);
    assert_non_null(buf);
    size_t pos = 0;
    memcpy(buf, "GET / HTTP/1.1\r\n", 16);
    pos = 16;
    for (int i = 0; i < 99; i++) {
        size_t line = 160;
        memcpy(buf + pos, "X-Pad: ", 7);
        memset(buf + pos + 7, 'x', line - 9);
        memcpy(buf + pos + line - 2, "\r\n", 2);
        pos += line;
    }
    memcpy(buf + pos, "\r\n", 2);
    pos += 2;
    assert_true(pos <= big);
    assert_int_equal(replay_request(buf, pos, &deflim), (int)pos);
    free(buf);
}

static void test_request_scan_hint(void **state)
{
    static const char in[] = UPGRADE_REQ;
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};

    /* A hint past len (caller reused it for a new, shorter buffer) restarts. */
    size_t scan = 100000;
    assert_int_equal(http_parse_request(in, sizeof(in) - 1, &lim, &req, &scan), LEN(UPGRADE_REQ));
    /* Calling again on the same complete buffer gives the same answer. */
    assert_int_equal(http_parse_request(in, sizeof(in) - 1, &lim, &req, &scan), LEN(UPGRADE_REQ));
    assert_span(req.target, "/chat?room=1");
    /* The empty buffer is incomplete. */
    scan = 0;
    assert_int_equal(http_parse_request(in, 0, &lim, &req, &scan), ERR_AGAIN);
    assert_int_equal(scan, 0);
}

/* ---- responses ---- */

static void test_response_valid(void **state)
{
    static const char in[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                             "\r\n";
    struct http_header h[MAXH];
    struct http_response resp = {.headers = h};
    struct http_limits lim = {16384, MAXH};

    assert_int_equal(resp_oneshot(in, sizeof(in) - 1, &lim, &resp), LEN(in));
    assert_int_equal(resp.minor_version, 1);
    assert_int_equal(resp.status, 101);
    assert_span(resp.reason, "Switching Protocols");
    assert_int_equal(resp.nheaders, 3);
    assert_span(h[2].value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(replay_response(in, sizeof(in) - 1, &lim), LEN(in));

    static const char nosp[] = "HTTP/1.1 101\r\n\r\n";
    assert_int_equal(resp_oneshot(nosp, sizeof(nosp) - 1, &lim, &resp), LEN(nosp));
    assert_int_equal(resp.status, 101);
    assert_span(resp.reason, "");
    static const char empty[] = "HTTP/1.0 404 \r\n\r\n";
    assert_int_equal(resp_oneshot(empty, sizeof(empty) - 1, &lim, &resp), LEN(empty));
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.minor_version, 0);
    assert_span(resp.reason, "");
}

static void test_response_table(void **state)
{
    struct http_limits lim2 = {16384, 2};
    static const struct tcase t[] = {
        TC("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0),
        TC("HTTP/1.1 101\r\n\r\n", 0),
        TC("HTTP/1.1 101 \r\n\r\n", 0),
        TC("HTTP/1.1 999 Whatever\tit is \xff\r\n\r\n", 0),
        TC("HTTP/1.1 100 Continue\r\nA: b\r\n\r\n", 0),
        TC("HTTP/1.1 099 Low\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 000\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 99 Low\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 1011 Long\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 1011\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1  101 x\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 abc OK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 10a OK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 \r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 200 O\x01K\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 200 O\rK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1\t200 OK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("http/1.1 200 OK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/2.0 200 OK\r\n\r\n", ERR_HTTP_VERSION),
        TC("HTTP/2 200 OK\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 200 OK\n\r\n", ERR_HTTP_BARE_LF),
        TC("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", ERR_HTTP_OBS_FOLD),
        TC("HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", ERR_HTTP_BAD_CHAR),
        TC("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", ERR_HTTP_SYNTAX),
        TC("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ERR_HTTP_TOO_MANY_HEADERS),
        TC("HTTP/1.1 200 OK\r\nA: 1\r\n", ERR_AGAIN),
    };
    run_response_table(t, sizeof(t) / sizeof(t[0]), &lim2);

    static const char big[] = "HTTP/1.1 200 OK\r\nA: 1\r\n\r\n";
    struct http_limits small = {sizeof(big) - 2, 2};
    assert_int_equal(replay_response(big, sizeof(big) - 1, &small), ERR_HTTP_HEAD_TOO_BIG);
}

/* ---- helpers ---- */

static void test_span_ieq(void **state)
{
    struct http_span s = {"Sec-WebSocket-Key", 17};
    assert_true(http_span_ieq(s, "sec-websocket-key"));
    assert_true(http_span_ieq(s, "SEC-WEBSOCKET-KEY"));
    assert_false(http_span_ieq(s, "Sec-WebSocket-Ke"));
    assert_false(http_span_ieq(s, "Sec-WebSocket-Keys"));
    struct http_span e = {"", 0};
    assert_true(http_span_ieq(e, ""));
    assert_false(http_span_ieq(e, "a"));
    /* Only ASCII letters fold: '@' (0x40) is not '`' (0x60). */
    struct http_span at = {"@", 1};
    assert_false(http_span_ieq(at, "`"));
}

static void test_header_lookup(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Host: a\r\n"
                             "x-dup: 1\r\n"
                             "Other: z\r\n"
                             "X-DUP: 2\r\n"
                             "\r\n";
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};
    assert_int_equal(req_oneshot(in, sizeof(in) - 1, &lim, &req), LEN(in));

    unsigned from = 0;
    assert_int_equal(http_header_next(h, req.nheaders, "X-Dup", &from), 1);
    assert_int_equal(from, 2);
    assert_int_equal(http_header_next(h, req.nheaders, "X-Dup", &from), 3);
    assert_int_equal(from, 4);
    assert_int_equal(http_header_next(h, req.nheaders, "X-Dup", &from), -1);
    assert_int_equal(from, 4);
    from = 0;
    assert_int_equal(http_header_next(h, req.nheaders, "Missing", &from), -1);
    assert_int_equal(http_header_count(h, req.nheaders, "x-dup"), 2);
    assert_int_equal(http_header_count(h, req.nheaders, "HOST"), 1);
    assert_int_equal(http_header_count(h, req.nheaders, "Missing"), 0);
    assert_int_equal(http_header_count(h, 0, "Host"), 0);
}

static void test_list_next(void **state)
{
    static const char v[] = " , a ,\tb\t,,  c d ,\"x,y\" , e;q=\"1,\\\"2\" ,";
    struct http_span list = {v, sizeof(v) - 1};
    struct http_span e;

    assert_true(http_list_next(&list, &e));
    assert_span(e, "a");
    assert_true(http_list_next(&list, &e));
    assert_span(e, "b");
    assert_true(http_list_next(&list, &e));
    assert_span(e, "c d");
    assert_true(http_list_next(&list, &e));
    assert_span(e, "\"x,y\"");
    assert_true(http_list_next(&list, &e));
    assert_span(e, "e;q=\"1,\\\"2\"");
    assert_false(http_list_next(&list, &e));
    assert_false(http_list_next(&list, &e));

    struct http_span empty = {"", 0};
    assert_false(http_list_next(&empty, &e));
    struct http_span commas = {" ,, ,", 5};
    assert_false(http_list_next(&commas, &e));
    /* An unterminated quote runs to the end of the value. */
    struct http_span open = {"\"a,b", 4};
    assert_true(http_list_next(&open, &e));
    assert_span(e, "\"a,b");
    assert_false(http_list_next(&open, &e));
}

static void test_has_token(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Connection: keep-alive\r\n"
                             "connection: , Upgrade ,\r\n"
                             "Upgrade: h2c, WebSocket/13, websocket\r\n"
                             "X: upgrade\r\n"
                             "\r\n";
    struct http_header h[MAXH];
    struct http_request req = {.headers = h};
    struct http_limits lim = {16384, MAXH};
    assert_int_equal(req_oneshot(in, sizeof(in) - 1, &lim, &req), LEN(in));

    assert_true(http_has_token(h, req.nheaders, "Connection", "upgrade"));
    assert_true(http_has_token(h, req.nheaders, "CONNECTION", "Keep-Alive"));
    assert_false(http_has_token(h, req.nheaders, "Connection", "close"));
    assert_false(http_has_token(h, req.nheaders, "Connection", "upgrad"));
    assert_true(http_has_token(h, req.nheaders, "Upgrade", "websocket"));
    assert_true(http_has_token(h, req.nheaders, "Upgrade", "websocket/13"));
    assert_false(http_has_token(h, req.nheaders, "Upgrade", "h2"));
    assert_false(http_has_token(h, req.nheaders, "Missing", "upgrade"));
}

/* ---- chunked ---- */

struct ccase {
    const char *in;  /* encoded body */
    size_t n;        /* bytes */
    const char *out; /* decoded bytes, or NULL when the input is malformed */
    size_t used;     /* bytes the decoder consumes up to done (n when not done) */
    bool done;       /* whether the body ends within the input */
};

#define CC(s, o, used, done)                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1, o, used, done                                                            \
    }

/* Decode in[0..n) split at `cut` (two calls) into out; returns the error or the
 * bytes consumed in total. */
static int decode_split(const char *in, size_t n, size_t cut, char *out, size_t cap, size_t *outlen,
                        bool *done)
{
    struct http_chunked c = {0};
    size_t o1 = 0, o2 = 0;
    int r1 = http_chunked_decode(&c, in, cut, out, cap, &o1);
    if (r1 < 0)
        return r1;
    if ((size_t)r1 < cut) {
        /* Only stops early when done. */
        assert_true(c.done);
        *outlen = o1;
        *done = c.done;
        return r1;
    }
    int r2 = http_chunked_decode(&c, in + cut, n - cut, out + o1, cap - o1, &o2);
    if (r2 < 0)
        return r2;
    *outlen = o1 + o2;
    *done = c.done;
    return r1 + r2;
}

static void test_chunked_table(void **state)
{
    static const struct ccase t[] = {
        CC("5\r\nhello\r\n0\r\n\r\n", "hello", 15, true),
        CC("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nEXTRA", "hello world", 26, true),
        CC("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 20, true),
        CC("a\r\n0123456789\r\n000\r\n\r\n", "0123456789", 22, true),
        CC("0\r\n\r\n", "", 5, true),
        CC("3;name=val;x=\"q\"\r\nabc\r\n0;last\r\n\r\n", "abc", 33, true),
        CC("3 ;ext\r\nabc\r\n0\r\n\r\n", "abc", 18, true),
        CC("3\t \t;ext\r\nabc\r\n0\r\n\r\n", "abc", 20, true),
        CC("3\r\nabc\r\n0\r\nTrailer: x\r\nT2: y\r\n\r\n", "abc", 32, true),
        CC("3\r\nabc\r\n", "abc", 8, false),
        CC("3\r\nab", "ab", 5, false),
        CC("fffffffffffffff\r\nxy", "xy", 19, false),
        CC("", "", 0, false),
        CC("g\r\n", NULL, 0, false),
        CC("\r\n", NULL, 0, false),
        CC(";x\r\n", NULL, 0, false),
        CC(" 3\r\nabc\r\n0\r\n\r\n", NULL, 0, false),
        CC("3 \r\nabc\r\n0\r\n\r\n", NULL, 0, false),
        CC("3 x\r\nabc\r\n0\r\n\r\n", NULL, 0, false),
        CC("-3\r\nabc\r\n", NULL, 0, false),
        CC("3\nabc\r\n", NULL, 0, false),
        CC("3\rXabc\r\n", NULL, 0, false),
        CC("3\r\nabcX\r\n", NULL, 0, false),
        CC("3\r\nabc\rX", NULL, 0, false),
        CC("3\r\nabc\n", NULL, 0, false),
        CC("3;a\0b\r\nabc\r\n", NULL, 0, false),
        CC("3;a\nb\r\nabc\r\n", NULL, 0, false),
        CC("1000000000000000\r\n", NULL, 0, false),
        CC("10000000000000000000\r\n", NULL, 0, false),
        CC("0\r\nT: x\n\r\n", NULL, 0, false),
        CC("0\r\nT: \x01\r\n\r\n", NULL, 0, false),
        CC("0\r\n\n", NULL, 0, false),
        CC("0\r\n\rX", NULL, 0, false),
        CC("0\r\nT: x\rX", NULL, 0, false),
        CC("0\r\n\x01\r\n", NULL, 0, false),
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *in = dup_exact(t[i].in, t[i].n);
        for (size_t cut = 0; cut <= t[i].n; cut++) {
            char out[64];
            size_t outlen = 0;
            bool done = false;
            int rc = decode_split(in, t[i].n, cut, out, sizeof(out), &outlen, &done);
            if (t[i].out == NULL) {
                if (rc != ERR_HTTP_CHUNKED)
                    fail_msg("chunked case %zu cut %zu: got %d", i, cut, rc);
                continue;
            }
            if (rc != (int)t[i].used)
                fail_msg("chunked case %zu cut %zu: got %d want %zu", i, cut, rc, t[i].used);
            assert_int_equal(done, t[i].done);
            assert_int_equal(outlen, strlen(t[i].out));
            assert_memory_equal(out, t[i].out, outlen);
        }

        /* One byte at a time. */
        struct http_chunked c = {0};
        char out[64];
        size_t o = 0;
        int err = 0;
        size_t k;
        for (k = 0; k < t[i].n && !c.done; k++) {
            size_t got = 0;
            int rc = http_chunked_decode(&c, in + k, 1, out + o, sizeof(out) - o, &got);
            if (rc < 0) {
                err = rc;
                break;
            }
            assert_int_equal(rc, 1);
            o += got;
        }
        if (t[i].out == NULL) {
            assert_int_equal(err, ERR_HTTP_CHUNKED);
        } else {
            assert_int_equal(err, 0);
            assert_int_equal(k, t[i].used);
            assert_int_equal(o, strlen(t[i].out));
            assert_memory_equal(out, t[i].out, o);
        }
        free(in);
    }
}

static void test_chunked_in_place_and_out_full(void **state)
{
    char buf[] = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    size_t n = sizeof(buf) - 1;
    struct http_chunked c = {0};
    size_t o = 0;

    /* out == in: the decoded bytes never overtake the ones still to be read. */
    assert_int_equal(http_chunked_decode(&c, buf, n, buf, n, &o), (int)n);
    assert_true(c.done);
    assert_int_equal(o, 23);
    assert_memory_equal(buf, "Wikipedia in\r\n\r\nchunks.", 23);

    /* A small out: the decoder stops when it is full and resumes. */
    static const char in[] = "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
    struct http_chunked d = {0};
    char out[3];
    char all[16];
    size_t total = 0, pos = 0;
    int rounds = 0;
    while (!d.done) {
        size_t got = 0;
        int rc = http_chunked_decode(&d, in + pos, sizeof(in) - 1 - pos, out, sizeof(out), &got);
        assert_true(rc >= 0);
        assert_true(got <= sizeof(out));
        memcpy(all + total, out, got);
        total += got;
        pos += (size_t)rc;
        assert_true(++rounds < 20);
    }
    assert_int_equal(pos, sizeof(in) - 1);
    assert_int_equal(total, 9);
    assert_memory_equal(all, "Wikipedia", 9);

    /* out_cap 0 in the middle of data consumes nothing. */
    struct http_chunked e = {0};
    size_t got = 0;
    assert_int_equal(http_chunked_decode(&e, "3\r\nabc", 6, out, 0, &got), 3);
    assert_int_equal(got, 0);
    assert_int_equal(http_chunked_decode(&e, "abc", 3, out, 0, &got), 0);
    assert_int_equal(e.remaining, 3);

    /* Once done, further input is left alone. */
    size_t dgot = 5;
    assert_int_equal(http_chunked_decode(&d, "5\r\nhello", 8, out, sizeof(out), &dgot), 0);
    assert_int_equal(dgot, 0);
}

static void test_chunked_sticky_error_and_size_limit(void **state)
{
    struct http_chunked c = {0};
    char out[8];
    size_t got = 0;
    assert_int_equal(http_chunked_decode(&c, "x", 1, out, sizeof(out), &got), ERR_HTTP_CHUNKED);
    assert_int_equal(http_chunked_decode(&c, "0\r\n\r\n", 5, out, sizeof(out), &got),
                     ERR_HTTP_CHUNKED);
    assert_false(c.done);

    /* 2^60 - 1 is accepted as a size, 2^60 is not. */
    struct http_chunked d = {0};
    assert_int_equal(http_chunked_decode(&d, "FFFFFFFFFFFFFFF\r\n", 17, out, sizeof(out), &got),
                     17);
    assert_true(d.remaining == (1ULL << 60) - 1);
    struct http_chunked e = {0};
    assert_int_equal(http_chunked_decode(&e, "1000000000000000", 16, out, sizeof(out), &got),
                     ERR_HTTP_CHUNKED);
    /* Leading zeros do not count towards the limit. */
    struct http_chunked f = {0};
    assert_int_equal(
        http_chunked_decode(&f, "000000000000000000001\r\n", 23, out, sizeof(out), &got), 23);
    assert_true(f.remaining == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_valid_upgrade),
        cmocka_unit_test(test_request_head_then_frames),
        cmocka_unit_test(test_request_ows_and_values),
        cmocka_unit_test(test_request_versions),
        cmocka_unit_test(test_request_line_syntax),
        cmocka_unit_test(test_request_bare_lf),
        cmocka_unit_test(test_request_obs_fold),
        cmocka_unit_test(test_request_bad_char),
        cmocka_unit_test(test_request_field_syntax),
        cmocka_unit_test(test_request_too_many_headers),
        cmocka_unit_test(test_request_head_too_big),
        cmocka_unit_test(test_request_scan_hint),
        cmocka_unit_test(test_response_valid),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_span_ieq),
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_list_next),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_in_place_and_out_full),
        cmocka_unit_test(test_chunked_sticky_error_and_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
