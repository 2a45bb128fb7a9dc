/* The request-path normalizer: dot segments, escapes (every unreserved
 * character, every escape position), slashes, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "http/path.h"

static int norm(const char *in, bool merge, char *out)
{
    size_t n = 0;
    int rc = path_normalize(in, strlen(in), merge, out, strlen(in) + 1, &n);

    if (rc == 0)
        out[n] = '\0';
    return rc;
}

static void expect(const char *in, const char *want)
{
    char out[512];
    int rc = norm(in, true, out);

    if (rc != 0)
        fail_msg("\"%s\": %s", in, err_str(rc));
    if (strcmp(out, want) != 0)
        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", in, out, want);
    /* Normalizing twice changes nothing. */
    char again[512];
    assert_int_equal(norm(out, true, again), 0);
    assert_string_equal(again, out);
}

static void expect_err(const char *in, int err)
{
    char out[512];
    int rc = norm(in, true, out);

    if (rc != err)
        fail_msg("\"%s\": got %s, expected %s", in, err_name(rc), err_name(err));
}

static void dot_segments(void **state)
{
    /* RFC 3986 §5.2.4 and §5.4's examples, as absolute paths. */
    expect("/", "/");
    expect("/a/b/c/./../../g", "/a/g");
    expect("/mid/content=5/../6", "/mid/6");
    expect("/a/b/.", "/a/b/");
    expect("/a/b/..", "/a/");
    expect("/a/b/../", "/a/");
    expect("/a/./b", "/a/b");
    expect("/.", "/");
    expect("/./", "/");
    expect("/a/..", "/");
    expect("/..a/b", "/..a/b");
    expect("/a../b", "/a../b");
    expect("/.../x", "/.../x");
    expect("/ws/%2E%2E/internal", "/internal");
    expect("/ws/%2e%2E/internal", "/internal");
    expect("/ws/.%2e/internal", "/internal");
    expect("/ws/%2e/x", "/ws/x");
    expect_err("/..", ERR_PATH_DOT_DOT);
    expect_err("/../a", ERR_PATH_DOT_DOT);
    expect_err("/a/../..", ERR_PATH_DOT_DOT);
    expect_err("/a/../../b", ERR_PATH_DOT_DOT);
    expect_err("/%2e%2e/x", ERR_PATH_DOT_DOT);
    expect_err("/ws/%2E%2E/%2E%2E/x", ERR_PATH_DOT_DOT);
}

static void slashes(void **state)
{
    char out[64];

    expect("//a///b//", "/a/b/");
    expect("//", "/");
    expect("/a//../b", "/b");
    assert_int_equal(norm("//a///b//", false, out), 0);
    assert_string_equal(out, "//a///b//");
    assert_int_equal(norm("/a//../b", false, out), 0);
    assert_string_equal(out, "/a/b");
}

static void every_unreserved_escape_is_decoded_everywhere(void **state)
{
    static const char unreserved[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

    for (size_t i = 0; unreserved[i]; i++) {
        int c = unreserved[i];
        /* At the start, middle and end of a segment, of the first and of
         * a later segment, in upper and lower case hex. */
        static const struct {
            const char *pre, *post;
        } shapes[] = {{"/", ""}, {"/x", ""}, {"/", "y"}, {"/x", "y/z"}, {"/a/", ""}, {"/a/b", ""}};
        for (size_t sh = 0; sh < sizeof(shapes) / sizeof(shapes[0]); sh++) {
            for (int lc = 0; lc < 2; lc++) {
                char esc[4], in[64], want[64];
                snprintf(esc, sizeof(esc), lc ? "%%%02x" : "%%%02X", c);
                snprintf(in, sizeof(in), "%s%s%s", shapes[sh].pre, esc, shapes[sh].post);
                snprintf(want, sizeof(want), "%s%c%s", shapes[sh].pre, c, shapes[sh].post);
                if (c == '.') {
                    /* A decoded "." alone is a dot segment. */
                    char out[64];
                    assert_int_equal(norm(in, true, out), 0);
                    continue;
                }
                expect(in, want);
            }
        }
    }
}

static void other_escapes_are_kept_upper_case(void **state)
{
    char in[16], want[16];

    for (int c = 1; c < 256; c++) {
        bool unres = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (unres || c == '/' || c == '\\')
            continue;
        snprintf(in, sizeof(in), "/a%%%02xb", c);
        snprintf(want, sizeof(want), "/a%%%02Xb", c);
        expect(in, want);
    }
}

static void rejections(void **state)
{
    expect_err("/a%2Fb", ERR_PATH_ENCODED_SLASH);
    expect_err("/a%2fb", ERR_PATH_ENCODED_SLASH);
    expect_err("/a%5Cb", ERR_PATH_ENCODED_SLASH);
    expect_err("/a%5cb", ERR_PATH_ENCODED_SLASH);
    expect_err("/a%00b", ERR_PATH_ENCODED_SLASH);
    expect_err("/a\\b", ERR_PATH_ENCODED_SLASH);
    expect_err("/a%", ERR_PATH_BAD_ESCAPE);
    expect_err("/a%2", ERR_PATH_BAD_ESCAPE);
    expect_err("/a%G1", ERR_PATH_BAD_ESCAPE);
    expect_err("/a%1G", ERR_PATH_BAD_ESCAPE);
    expect_err("/a%%41", ERR_PATH_BAD_ESCAPE);
    expect_err("", ERR_PATH_NOT_ORIGIN);
    expect_err("a/b", ERR_PATH_NOT_ORIGIN);
    expect_err("*", ERR_PATH_NOT_ORIGIN);
    expect_err("http://h/x", ERR_PATH_NOT_ORIGIN);

    char out[8];
    size_t n;
    assert_int_equal(path_normalize("/abc", 4, true, out, 4, &n), ERR_RANGE);
    assert_int_equal(path_normalize("/abc", 4, true, out, 5, &n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dot_segments),
        cmocka_unit_test(slashes),
        cmocka_unit_test(every_unreserved_escape_is_decoded_everywhere),
        cmocka_unit_test(other_escapes_are_kept_upper_case),
        cmocka_unit_test(rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
