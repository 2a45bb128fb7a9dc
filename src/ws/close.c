/* RFC 6455 §5.5.1 / §7.4 close frames. */
#include "ws/close.h"

#include <assert.h>
#include <string.h>

#include "core/err.h"
#include "ws/frame.h"
#include "ws/utf8.h"

/* RFC 6455 §5.5: a control payload is at most 125 bytes, two of which are
 * the code. */
#define MAX_REASON (WS_MAX_CONTROL - 2)

bool ws_close_code_valid(unsigned code)
{
    /* RFC 6455 §7.4.1 defines 1000-1011 and the IANA registry adds
     * 1012-1015; 1004 is reserved, and 1005, 1006 and 1015 are for reporting
     * only and "MUST NOT be set as a status code in a Close control frame".
     * §7.4.2: 3000-3999 are registered for libraries and 4000-4999 are
     * private; 0-999 and 1016-2999 are not used. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int ws_close_parse(const uint8_t *p, size_t n, unsigned *code, const uint8_t **reason,
                   size_t *reason_len)
{
    /* RFC 6455 §5.5.1: the body is optional, but if present it starts with a
     * 2-byte code; a lone byte is a truncated code. */
    if (n == 0) {
        *code = WS_CLOSE_NO_STATUS;
        *reason = p;
        *reason_len = 0;
        return 0;
    }
    if (n == 1)
        return ERR_WS_CLOSE_PAYLOAD;
    *code = (unsigned)p[0] << 8 | p[1];
    *reason = p + 2;
    *reason_len = n - 2;
    if (!ws_close_code_valid(*code))
        return ERR_WS_CLOSE_CODE;
    /* RFC 6455 §5.5.1: the reason is UTF-8, and §8.1 makes invalid UTF-8 in
     * it a failure like in a text message. */
    if (!ws_utf8_valid(p + 2, n - 2))
        return ERR_WS_UTF8;
    return 0;
}

size_t ws_close_payload(uint8_t *out, unsigned code, const char *reason)
{
    struct ws_utf8 u = {0};
    size_t cut = 0;

    /* 1005 means "no code": RFC 6455 §7.1.5 says that is an empty body. */
    if (code == WS_CLOSE_NO_STATUS)
        return 0;
    assert(ws_close_code_valid(code));
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    /* Keep the longest prefix of at most 123 bytes that ends on a character
     * boundary, so a cut never leaves half a character for the peer to fail
     * on with 1007 (§8.1). Stopping at the first invalid byte also keeps a
     * bad reason from reaching the wire at all. */
    for (size_t i = 0; reason && i < MAX_REASON && reason[i] != '\0'; i++) {
        if (ws_utf8_feed(&u, (const uint8_t *)reason + i, 1) != 0)
            break;
        if (ws_utf8_complete(&u))
            cut = i + 1;
    }
    memcpy(out + 2, reason ? reason : "", cut);
    return 2 + cut;
}
