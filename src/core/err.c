#include "core/err.h"

#define ERR_X_TOK(name, tok, text) tok,
static const char *const tokens[] = {ERR_MAP(ERR_X_TOK)};
#undef ERR_X_TOK

#define ERR_X_TEXT(name, tok, text) text,
static const char *const texts[] = {ERR_MAP(ERR_X_TEXT)};
#undef ERR_X_TEXT

const char *err_name(int code)
{
    if (code == 0)
        return "ok";
    if (code < 0 && -code <= ERR_IDX__COUNT)
        return tokens[-code - 1];
    return "unknown";
}

const char *err_str(int code)
{
    if (code == 0)
        return "success";
    if (code < 0 && -code <= ERR_IDX__COUNT)
        return texts[-code - 1];
    return "unknown error";
}
