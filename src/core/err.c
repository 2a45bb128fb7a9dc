#include "core/err.h"

#define ERR_X_TOK(name, tok, text, status, close) tok,
static const char *const tokens[] = {ERR_MAP(ERR_X_TOK)};
#undef ERR_X_TOK

#define ERR_X_TEXT(name, tok, text, status, close) text,
static const char *const texts[] = {ERR_MAP(ERR_X_TEXT)};
#undef ERR_X_TEXT

#define ERR_X_STATUS(name, tok, text, status, close) status,
static const short statuses[] = {ERR_MAP(ERR_X_STATUS)};
#undef ERR_X_STATUS

#define ERR_X_CLOSE(name, tok, text, status, close) close,
static const unsigned short closes[] = {ERR_MAP(ERR_X_CLOSE)};
#undef ERR_X_CLOSE

static int index_of(int code)
{
    return code < 0 && -code <= ERR_IDX__COUNT ? -code - 1 : -1;
}

const char *err_name(int code)
{
    int i = index_of(code);

    if (code == 0)
        return "ok";
    return i >= 0 ? tokens[i] : "unknown";
}

const char *err_str(int code)
{
    int i = index_of(code);

    if (code == 0)
        return "success";
    return i >= 0 ? texts[i] : "unknown error";
}

int err_http_status(int code)
{
    int i = index_of(code);

    return i >= 0 ? statuses[i] : 500;
}

unsigned err_close_code(int code)
{
    int i = index_of(code);

    return i >= 0 ? closes[i] : 1002;
}
