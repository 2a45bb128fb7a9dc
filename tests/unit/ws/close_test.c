/* Tests for src/ws/close.c: close-code rules, close payload parsing, and
 * writing payloads whose reason is cut on a character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ws/close.h"
#include "ws/utf8.h"

/* RFC 6455 §7.4 and the IANA registry, written out as a list. */
static bool spec_valid(unsigned c)
{
    static const unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                  1009, 1010, 1011, 1012, 1013, 1014};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (c == ok[i])
            return true;
    return c >= 3000 && c <= 4999;
}

static void test_code_valid(void **state)
{
    for (unsigned c = 0; c <= 70000; c++)
        assert_int_equal(ws_close_code_valid(c), spec_valid(c));
    assert_false(ws_close_code_valid(0xFFFFFFFFu));
    assert_false(ws_close_code_valid(WS_CLOSE_NO_STATUS));
    assert_false(ws_close_code_valid(WS_CLOSE_ABNORMAL));
    assert_false(ws_close_code_valid(1004));
    assert_false(ws_close_code_valid(1015));
}

static int parse(const char *p, size_t n, unsigned *code, const uint8_t **reason, size_t *len)
{
    return ws_close_parse((const uint8_t *)p, n, code, reason, len);
}

static void test_parse(void **state)
{
    static const char body[] = "\x03\xe8"
                               "bye \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    const uint8_t *reason = NULL;
    unsigned code = 0;
    size_t len = 99;

    assert_int_equal(parse(body, 0, &code, &reason, &len), 0);
    assert_int_equal(code, WS_CLOSE_NO_STATUS);
    assert_int_equal(len, 0);

    code = 7;
    assert_int_equal(parse(body, 1, &code, &reason, &len), ERR_WS_CLOSE_PAYLOAD);
    assert_int_equal(code, 7);

    assert_int_equal(parse(body, 2, &code, &reason, &len), 0);
    assert_int_equal(code, 1000);
    assert_int_equal(len, 0);

    assert_int_equal(parse(body, sizeof(body) - 1, &code, &reason, &len), 0);
    assert_int_equal(code, 1000);
    assert_ptr_equal(reason, (const uint8_t *)body + 2);
    assert_int_equal(len, sizeof(body) - 3);
    assert_memory_equal(reason, "bye ", 4);

    /* A reason cut inside a character is invalid UTF-8 (RFC 6455 §8.1). */
    assert_int_equal(parse(body, sizeof(body) - 2, &code, &reason, &len), ERR_WS_UTF8);
    assert_int_equal(parse("\x03\xe8\xff", 3, &code, &reason, &len), ERR_WS_UTF8);
    assert_int_equal(parse("\x03\xe8\xed\xa0\x80", 5, &code, &reason, &len), ERR_WS_UTF8);
    assert_int_equal(parse("\x03\xe8\xc0\xaf", 4, &code, &reason, &len), ERR_WS_UTF8);
    assert_int_equal(code, 1000);
}

static void test_parse_codes(void **state)
{
    for (unsigned c = 0; c <= 0xFFFF; c++) {
        uint8_t p[2] = {(uint8_t)(c >> 8), (uint8_t)c};
        const uint8_t *reason;
        unsigned code;
        size_t len;
        int rc = ws_close_parse(p, 2, &code, &reason, &len);

        assert_int_equal(rc, spec_valid(c) ? 0 : ERR_WS_CLOSE_CODE);
        assert_int_equal(code, c);
    }
    /* The code is checked before the reason. */
    {
        const uint8_t *reason;
        unsigned code;
        size_t len;

        assert_int_equal(parse("\x03\xed\xff", 3, &code, &reason, &len), ERR_WS_CLOSE_CODE);
    }
}

/* Writes a payload and checks it parses back to the code and to a reason that
 * is a valid prefix of the input of at most 123 bytes. Returns the reason
 * length. */
static size_t write_and_parse(unsigned code, const char *reason)
{
    uint8_t out[125 + 16];
    const uint8_t *r;
    unsigned got;
    size_t n, rlen;

    memset(out, 0xEE, sizeof(out));
    n = ws_close_payload(out, code, reason);
    assert_in_range(n, 2, 125);
    for (size_t i = n; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xEE);
    assert_int_equal(ws_close_parse(out, n, &got, &r, &rlen), 0);
    assert_int_equal(got, code);
    assert_int_equal(rlen, n - 2);
    if (rlen > 0)
        assert_memory_equal(r, reason, rlen);
    return rlen;
}

static void test_payload(void **state)
{
    char buf[300];
    uint8_t out[125];

    assert_int_equal(write_and_parse(1000, NULL), 0);
    assert_int_equal(write_and_parse(1001, ""), 0);
    assert_int_equal(write_and_parse(4999, "going"), 5);
    assert_int_equal(ws_close_payload(out, 1011, "x"), 3);
    assert_memory_equal(out, "\x03\xf3x", 3);
    assert_int_equal(ws_close_payload(out, WS_CLOSE_NO_STATUS, "ignored"), 0);

    memset(buf, 'a', sizeof(buf));
    for (size_t n = 0; n < 200; n++) {
        buf[n] = '\0';
        assert_int_equal(write_and_parse(1008, buf), n < 123 ? n : 123);
        buf[n] = 'a';
    }
}

/* A reason longer than 123 bytes is cut on a character boundary, whatever
 * the character width and wherever it straddles the limit. */
static void test_payload_cut_boundary(void **state)
{
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char buf[300];

    for (size_t c = 0; c < 3; c++) {
        size_t w = strlen(chars[c]);

        for (size_t lead = 0; lead < 8; lead++) {
            size_t n = lead, want;

            memset(buf, 'a', lead);
            while (n + w < sizeof(buf) - 1) {
                memcpy(buf + n, chars[c], w);
                n += w;
            }
            buf[n] = '\0';
            want = lead + (123 - lead) / w * w;
            assert_int_equal(write_and_parse(1000, buf), want);
        }
    }
}

/* A reason that is not valid UTF-8 is cut before its first bad byte, so the
 * payload always passes the peer's check. */
static void test_payload_invalid_reason(void **state)
{
    assert_int_equal(write_and_parse(1002, "ok\xff then more"), 2);
    assert_int_equal(write_and_parse(1002, "\xed\xa0\x80"), 0);
    assert_int_equal(write_and_parse(1002, "ab\xe2\x82"), 2);
    assert_int_equal(write_and_parse(1002, "ab\xc0\xaf"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_valid),           cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_codes),          cmocka_unit_test(test_payload),
        cmocka_unit_test(test_payload_cut_boundary), cmocka_unit_test(test_payload_invalid_reason),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
