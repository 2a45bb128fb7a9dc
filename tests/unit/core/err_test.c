/* The error table: every code has a token, a sentence, an HTTP status and
 * a close code, and the mappings callers rely on hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"

static void every_code_has_every_column(void **state)
{
    for (int i = 1; i <= ERR_IDX__COUNT; i++) {
        int code = -i;
        int st = err_http_status(code);
        unsigned cc = err_close_code(code);
        assert_string_not_equal(err_name(code), "unknown");
        assert_string_not_equal(err_str(code), "unknown error");
        assert_true(st >= 400 && st <= 599);
        /* 1008 (policy violation): credentials refused or expired. */
        assert_true(cc == 1002 || cc == 1007 || cc == 1008 || cc == 1009);
        /* Tokens are distinct: they are what logs and metrics key on. */
        for (int j = 1; j < i; j++)
            assert_string_not_equal(err_name(-j), err_name(code));
    }
    assert_string_equal(err_name(0), "ok");
    assert_string_equal(err_name(-10000), "unknown");
    assert_int_equal(err_http_status(-10000), 500);
    assert_int_equal(err_close_code(-10000), 1002);
}

static void http_statuses(void **state)
{
    assert_int_equal(err_http_status(ERR_HTTP_METHOD), 405);
    assert_int_equal(err_http_status(ERR_HS_VERSION), 426);
    assert_int_equal(err_http_status(ERR_HS_NOT_UPGRADE), 426);
    assert_int_equal(err_http_status(ERR_HTTP_HEAD_TOO_BIG), 431);
    assert_int_equal(err_http_status(ERR_HTTP_TOO_MANY_HEADERS), 431);
    assert_int_equal(err_http_status(ERR_NO_ROUTE), 404);
    assert_int_equal(err_http_status(ERR_OVERLOADED), 503);
    assert_int_equal(err_http_status(ERR_SHUTDOWN), 503);
    assert_int_equal(err_http_status(ERR_BACKEND_CONNECT), 502);
    assert_int_equal(err_http_status(ERR_BACKEND_CLOSED), 502);
    assert_int_equal(err_http_status(ERR_HS_STATUS), 502);
    assert_int_equal(err_http_status(ERR_HS_BAD_ACCEPT), 502);
    assert_int_equal(err_http_status(ERR_HS_BAD_UPGRADE), 502);
    assert_int_equal(err_http_status(ERR_HS_BAD_PROTOCOL), 502);
    assert_int_equal(err_http_status(ERR_HS_BAD_EXTENSION), 502);
    assert_int_equal(err_http_status(ERR_BACKEND_TIMEOUT), 504);
    assert_int_equal(err_http_status(ERR_HANDSHAKE_TIMEOUT), 408);
    assert_int_equal(err_http_status(ERR_NOMEM), 500);
    assert_int_equal(err_http_status(ERR_SYS), 500);
    assert_int_equal(err_http_status(ERR_CONFIG), 500);
    static const int bad_request[] = {
        ERR_HTTP_SYNTAX, ERR_HTTP_VERSION, ERR_HTTP_BARE_LF, ERR_HTTP_OBS_FOLD, ERR_HTTP_BAD_CHAR,
        ERR_HS_NO_HOST,  ERR_HS_DUP_HOST,  ERR_HS_BODY,      ERR_HS_BAD_KEY,
    };
    for (size_t i = 0; i < sizeof(bad_request) / sizeof(bad_request[0]); i++)
        assert_int_equal(err_http_status(bad_request[i]), 400);
}

static void close_codes(void **state)
{
    /* RFC 6455 §7.4.1. */
    assert_int_equal(err_close_code(ERR_WS_UTF8), 1007);
    assert_int_equal(err_close_code(ERR_WS_FRAME_TOO_BIG), 1009);
    assert_int_equal(err_close_code(ERR_WS_MSG_TOO_BIG), 1009);
    assert_int_equal(err_close_code(ERR_WS_UNMASKED), 1002);
    assert_int_equal(err_close_code(ERR_WS_CTRL_TOO_BIG), 1002);
    assert_int_equal(err_close_code(ERR_WS_CLOSE_CODE), 1002);
    assert_int_equal(err_close_code(ERR_WS_LENGTH), 1002);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_every_column),
        cmocka_unit_test(http_statuses),
        cmocka_unit_test(close_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
