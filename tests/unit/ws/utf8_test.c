/* Tests for src/ws/utf8.c: every input is also fed in two pieces at every
 * split point and byte by byte, and must give the one-shot answer. The DFA is
 * checked against an independent reference that reasons on code point ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ws/frame.h"
#include "ws/utf8.h"

enum verdict {
    V_VALID,   /* complete, valid text */
    V_PREFIX,  /* valid so far, ends inside a character */
    V_INVALID, /* some byte cannot continue a valid sequence */
};

/* Reference validator: tracks the interval of code points the bytes read so
 * far could still encode and fails at the first byte after which that
 * interval misses every scalar value of the right length. *bad receives the
 * index of the failing byte. */
static enum verdict ref_check(const uint8_t *p, size_t n, size_t *bad)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = p[i];
        uint32_t cp, min;
        int need;

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) {
            need = 1, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            need = 2, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            need = 3, cp = b & 0x07, min = 0x10000;
        } else {
            *bad = i;
            return V_INVALID;
        }
        for (int k = 0; k <= need; k++) {
            uint32_t lo, hi;

            if (k > 0) {
                if (i + (size_t)k >= n)
                    return V_PREFIX;
                if ((p[i + k] & 0xC0) != 0x80) {
                    *bad = i + k;
                    return V_INVALID;
                }
                cp = cp << 6 | (p[i + k] & 0x3F);
            }
            lo = cp << (6 * (need - k));
            hi = lo + ((1u << (6 * (need - k))) - 1);
            /* Scalar values are [min, D7FF] and [E000, 10FFFF]. */
            if (!((lo <= 0xD7FF && hi >= min) || (lo <= 0x10FFFF && hi >= 0xE000 && hi >= min))) {
                *bad = i + k;
                return V_INVALID;
            }
        }
        i += (size_t)need + 1;
    }
    return V_VALID;
}

/* Verdict of the code under test for p[0..n) fed as given pieces. */
static enum verdict verdict_of(int rc, const struct ws_utf8 *u)
{
    if (rc != 0)
        return V_INVALID;
    return ws_utf8_complete(u) ? V_VALID : V_PREFIX;
}

static enum verdict feed_split(const uint8_t *p, size_t n, size_t split)
{
    struct ws_utf8 u = {0};
    int rc = ws_utf8_feed(&u, p, split);
    int rc2 = ws_utf8_feed(&u, p + split, n - split);

    /* Failure is sticky: a failed first piece fails the second. */
    if (rc != 0)
        assert_int_equal(rc2, ERR_WS_UTF8);
    return verdict_of(rc2, &u);
}

/* The fused unmask-validate-remask path must give the same verdict for
 * p[0..n) masked with one key, in every key phase and split into two pieces
 * at every point, and leave accepted bytes masked with the other key. */
static void check_remask(const uint8_t *p, size_t n, enum verdict want)
{
    /* The second input key sets every high bit, so masked ASCII never looks
     * like ASCII and masked non-ASCII always does. */
    static const uint8_t keys[2][2][4] = {
        {{0x37, 0xfa, 0x21, 0x3d}, {0x9c, 0x05, 0xe2, 0x71}},
        {{0x80, 0x81, 0xc0, 0xff}, {0x00, 0x00, 0x00, 0x00}},
    };
    uint8_t *m = malloc(n + 1), *exp = malloc(n + 1);

    assert_non_null(m);
    assert_non_null(exp);
    for (unsigned kf = 0; kf < 8; kf++) {
        const uint8_t *in = keys[kf / 4][0], *out = keys[kf / 4][1];
        unsigned off = kf % 4;

        memcpy(exp, p, n);
        ws_mask(exp, n, out, off);
        for (size_t s = 0; s <= n; s++) {
            struct ws_utf8 u = {0};
            int rc, rc2;

            memcpy(m, p, n);
            ws_mask(m, n, in, off);
            rc = ws_utf8_feed_remask(&u, m, s, in, out, off);
            rc2 = ws_utf8_feed_remask(&u, m + s, n - s, in, out, off + s);
            if (rc != 0)
                assert_int_equal(rc2, ERR_WS_UTF8);
            assert_int_equal(verdict_of(rc2, &u), want);
            if (want != V_INVALID)
                assert_memory_equal(m, exp, n);
        }
    }
    free(m);
    free(exp);
}

/* Checks p[0..n) against `want` for one-shot, every two-piece split and
 * byte-by-byte feeding, and against the reference. For invalid input, also
 * checks that the prefix before the failing byte is accepted and that the
 * failing byte itself fails, whatever the split. */
static void check_bytes(const uint8_t *p, size_t n, enum verdict want)
{
    struct ws_utf8 u = {0};
    size_t bad = (size_t)-1;
    int rc = 0;

    assert_int_equal(ref_check(p, n, &bad), want);
    rc = ws_utf8_feed(&u, p, n);
    assert_int_equal(verdict_of(rc, &u), want);
    assert_int_equal(ws_utf8_valid(p, n), want == V_VALID);
    for (size_t s = 0; s <= n; s++)
        assert_int_equal(feed_split(p, n, s), want);
    memset(&u, 0, sizeof(u));
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = ws_utf8_feed(&u, p + i, 1);

        if (want == V_INVALID && i == bad)
            assert_int_equal(r, ERR_WS_UTF8);
        if (want != V_INVALID || i < bad)
            assert_int_equal(r, 0);
        rc = r ? r : rc;
    }
    assert_int_equal(verdict_of(rc, &u), want);
    check_remask(p, n, want);
    if (want == V_INVALID) {
        for (size_t s = 0; s <= bad; s++) {
            assert_int_not_equal(feed_split(p, bad, s), V_INVALID);
            assert_int_equal(feed_split(p, bad + 1, s), V_INVALID);
        }
    }
}

static void check_str(const char *s, enum verdict want)
{
    check_bytes((const uint8_t *)s, strlen(s), want);
}

/* Independent encoder for any value below 2^21, surrogates included. */
static size_t encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_empty(void **state)
{
    struct ws_utf8 u = {0};

    assert_true(ws_utf8_complete(&u));
    assert_int_equal(ws_utf8_feed(&u, NULL, 0), 0);
    assert_true(ws_utf8_complete(&u));
    assert_true(ws_utf8_valid(NULL, 0));
}

/* Autobahn 6.1-6.2 style: valid texts. */
static void test_valid_texts(void **state)
{
    check_str("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", V_VALID);
    check_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", V_VALID); /* κόσμε */
    check_str("\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 ok", V_VALID);
    check_str("plain ascii text long enough to take the word path, twice over!!!", V_VALID);
    check_str("\xef\xbb\xbf", V_VALID);     /* U+FEFF */
    check_str("\xef\xbf\xbe", V_VALID);     /* U+FFFE: a noncharacter, still valid */
    check_str("\xf4\x8f\xbf\xbf", V_VALID); /* U+10FFFF */
}

/* Autobahn 6.3-6.4: κόσμε with an error inserted, and failing fast. */
static void test_kosme_invalid(void **state)
{
    check_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
              V_INVALID);
    check_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\xce\xba", V_INVALID);
    check_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xc0\xaf", V_INVALID);
}

/* Autobahn 6.5-6.7: first and last code points of each length. */
static void test_boundaries(void **state)
{
    static const uint32_t ok[] = {0x0,    0x7F,   0x80,    0x7FF,   0x800,    0xD7FF,  0xE000,
                                  0xFFFD, 0xFFFF, 0x10000, 0xFFFFF, 0x100000, 0x10FFFF};
    uint8_t b[4];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        check_bytes(b, encode(ok[i], b), V_VALID);
    check_bytes(b, encode(0x110000, b), V_INVALID);
    check_bytes(b, encode(0x1FFFFF, b), V_INVALID);
    check_str("\x7f", V_VALID);
    check_str("\xc2\x80", V_VALID);
    check_str("\xdf\xbf", V_VALID);
    check_str("\xe0\xa0\x80", V_VALID);
    check_str("\xef\xbf\xbf", V_VALID);
    check_str("\xf0\x90\x80\x80", V_VALID);
    check_str("\xf4\x8f\xbf\xbf", V_VALID);
    check_str("\xf4\x90\x80\x80", V_INVALID); /* U+110000 */
}

/* Autobahn 6.8-6.9: 5- and 6-byte forms and the bytes that start them. */
static void test_long_forms(void **state)
{
    check_str("\xf8\x88\x80\x80\x80", V_INVALID);
    check_str("\xfc\x84\x80\x80\x80\x80", V_INVALID);
    check_str("\xf7\xbf\xbf\xbf", V_INVALID);
    check_str("\xfb\xbf\xbf\xbf\xbf", V_INVALID);
    check_str("\xfd\xbf\xbf\xbf\xbf\xbf", V_INVALID);
    check_str("\xf5\x80\x80\x80", V_INVALID);
    check_str("\xfe", V_INVALID);
    check_str("\xff", V_INVALID);
    check_str("\xfe\xfe\xff\xff", V_INVALID);
}

/* Autobahn 6.10-6.12: lone and unexpected continuation bytes. */
static void test_continuations(void **state)
{
    uint8_t b[64];

    check_str("\x80", V_INVALID);
    check_str("\xbf", V_INVALID);
    check_str("\x80\xbf", V_INVALID);
    check_str("a\x80", V_INVALID);
    check_str("\xc2\x80\x80", V_INVALID);
    check_str("\xe2\x82\xac\xbf", V_INVALID);
    for (int c = 0x80; c <= 0xBF; c++) {
        b[0] = (uint8_t)c;
        check_bytes(b, 1, V_INVALID);
    }
    for (int i = 0; i < 64; i++)
        b[i] = (uint8_t)(0x80 + i);
    check_bytes(b, 64, V_INVALID);
}

/* Autobahn 6.13-6.14: lead bytes followed by a space instead of the rest. */
static void test_lonely_starts(void **state)
{
    uint8_t b[2];

    for (int c = 0xC0; c <= 0xFF; c++) {
        b[0] = (uint8_t)c;
        b[1] = ' ';
        check_bytes(b, 2, V_INVALID);
    }
}

/* Autobahn 6.15-6.17: truncated sequences are incomplete, not invalid, until
 * the text ends (ws_utf8_complete). */
static void test_truncated(void **state)
{
    check_str("\xc2", V_PREFIX);
    check_str("\xdf", V_PREFIX);
    check_str("\xe0\xa0", V_PREFIX);
    check_str("\xe2\x82", V_PREFIX);
    check_str("\xef", V_PREFIX);
    check_str("\xf0\x90\x80", V_PREFIX);
    check_str("\xf4\x8f\xbf", V_PREFIX);
    check_str("\xf1", V_PREFIX);
    check_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce", V_PREFIX);
    /* Autobahn 6.15: all truncated forms in a row. */
    check_str("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80", V_INVALID);
    /* A truncated sequence followed by ASCII is invalid at the ASCII byte. */
    check_str("\xe2\x82"
              "a",
              V_INVALID);
    check_str("\xf0\x9f\x98"
              "abcdefghijklmnop",
              V_INVALID);
}

/* Autobahn 6.18-6.20: overlong forms, including the maximal ones and NUL. */
static void test_overlong(void **state)
{
    check_str("\xc0\xaf", V_INVALID);
    check_str("\xe0\x80\xaf", V_INVALID);
    check_str("\xf0\x80\x80\xaf", V_INVALID);
    check_str("\xf8\x80\x80\x80\xaf", V_INVALID);
    check_str("\xc1\xbf", V_INVALID);
    check_str("\xe0\x9f\xbf", V_INVALID);
    check_str("\xf0\x8f\xbf\xbf", V_INVALID);
    check_str("\xc0\x80", V_INVALID);
    check_str("\xe0\x80\x80", V_INVALID);
    check_str("\xf0\x80\x80\x80", V_INVALID);
    check_str("\xc1", V_INVALID); /* no completion of C1 is valid */
    check_str("\xe0\x9f", V_INVALID);
    check_str("\xf0\x8f", V_INVALID);
}

/* Autobahn 6.21-6.22: surrogates, single and paired. */
static void test_surrogates(void **state)
{
    uint8_t b[8];

    for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++)
        check_bytes(b, encode(cp, b), V_INVALID);
    check_str("\xed\xa0\x80\xed\xb0\x80", V_INVALID);
    check_str("\xed\xaf\xbf\xed\xbf\xbf", V_INVALID);
    check_str("\xed\x9f\xbf", V_VALID); /* U+D7FF */
    check_str("\xee\x80\x80", V_VALID); /* U+E000 */
    check_str("\xed\xa0", V_INVALID);   /* fails at the second byte */
}

/* Every scalar value encodes to valid text and every value past U+10FFFF up
 * to 2^21 does not. */
static void test_all_code_points(void **state)
{
    struct ws_utf8 u = {0};
    uint8_t b[4];

    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n = encode(cp, b);
        bool want = cp < 0xD800 || cp > 0xDFFF;

        assert_int_equal(ws_utf8_valid(b, n), want);
        if (want)
            assert_int_equal(ws_utf8_feed(&u, b, n), 0);
    }
    assert_true(ws_utf8_complete(&u));
    for (uint32_t cp = 0x110000; cp < 0x200000; cp += 0x7FF)
        assert_false(ws_utf8_valid(b, encode(cp, b)));
}

/* All 1- and 2-byte inputs, then every 3- and 4-byte input over bytes that
 * sit on each edge of the DFA's byte classes, against the reference. */
static const uint8_t edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
                                0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
#define N_EDGES (sizeof(edges) / sizeof(edges[0]))

static void check_quick(const uint8_t *b, size_t n)
{
    size_t bad;
    enum verdict want = ref_check(b, n, &bad);

    for (size_t s = 0; s <= n; s++)
        assert_int_equal(feed_split(b, n, s), want);
}

static void test_exhaustive_short(void **state)
{
    uint8_t b[4];

    for (int x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        check_quick(b, 1);
        for (int y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            check_quick(b, 2);
        }
    }
    for (size_t i = 0; i < N_EDGES; i++)
        for (size_t j = 0; j < N_EDGES; j++)
            for (size_t k = 0; k < N_EDGES; k++) {
                b[0] = edges[i], b[1] = edges[j], b[2] = edges[k];
                check_quick(b, 3);
                for (size_t l = 0; l < N_EDGES; l++) {
                    b[3] = edges[l];
                    check_quick(b, 4);
                }
            }
}

/* The ASCII word path: a non-ASCII byte, a valid character, or an invalid
 * byte at every position of a long ASCII buffer, at several alignments. */
static void test_ascii_fast_path(void **state)
{
    uint8_t buf[160 + 8];

    for (size_t align = 0; align < 8; align++) {
        uint8_t *p = buf + align;
        size_t n = 150;

        for (size_t pos = 0; pos + 4 <= n; pos++) {
            memset(p, 'x', n);
            check_bytes(p, n, V_VALID);
            memcpy(p + pos, "\xf0\x9f\x98\x80", 4);
            check_bytes(p, n, V_VALID);
            memset(p, 'x', n);
            memcpy(p + pos, "\xc2\xa9", 2);
            check_bytes(p, n, V_VALID);
            p[pos] = 0xFF;
            check_bytes(p, n, V_INVALID);
            memset(p, 'x', n);
            p[pos] = 0xE2;
            check_bytes(p, pos + 1, V_PREFIX);
            check_bytes(p, n, pos + 1 < n ? V_INVALID : V_PREFIX);
        }
    }
}

/* Mostly non-ASCII text (Greek, CJK, emoji) long enough for several DFA
 * blocks, with an error planted at every position. */
static void test_long_multibyte(void **state)
{
    static const char unit[] =
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xe4\xb8\xad\xf0\x9f\x98\x80";
    uint8_t buf[4 * sizeof(unit)];
    size_t n = 0;

    for (int i = 0; i < 4; i++) {
        memcpy(buf + n, unit, sizeof(unit) - 1);
        n += sizeof(unit) - 1;
    }
    check_bytes(buf, n, V_VALID);
    for (size_t pos = 0; pos < n; pos++) {
        uint8_t save = buf[pos];
        size_t bad;

        buf[pos] = 0xC0;
        check_bytes(buf, n, V_INVALID);
        buf[pos] = 0x41;
        check_bytes(buf, n, ref_check(buf, n, &bad));
        buf[pos] = save;
    }
}

/* Once failed, the state stays failed, even for valid input or no input. */
static void test_sticky_failure(void **state)
{
    struct ws_utf8 u = {0};

    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"\xff", 1), ERR_WS_UTF8);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"abc", 3), ERR_WS_UTF8);
    assert_int_equal(ws_utf8_feed(&u, NULL, 0), ERR_WS_UTF8);
    assert_false(ws_utf8_complete(&u));
}

/* A failure far inside a large buffer is reported and the whole text is never
 * declared complete. */
static void test_large_buffer(void **state)
{
    size_t n = 1 << 16;
    uint8_t *p = malloc(n);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i % 3 == 0 ? 'a' + i % 26 : ' ');
    assert_true(ws_utf8_valid(p, n));
    memcpy(p + n - 7, "\xe2\x82\xac", 3);
    assert_true(ws_utf8_valid(p, n));
    p[n - 6] = 0x7F;
    assert_false(ws_utf8_valid(p, n));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_valid_texts),
        cmocka_unit_test(test_kosme_invalid),   cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_long_forms),      cmocka_unit_test(test_continuations),
        cmocka_unit_test(test_lonely_starts),   cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_overlong),        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_all_code_points), cmocka_unit_test(test_exhaustive_short),
        cmocka_unit_test(test_ascii_fast_path), cmocka_unit_test(test_long_multibyte),
        cmocka_unit_test(test_sticky_failure),  cmocka_unit_test(test_large_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
