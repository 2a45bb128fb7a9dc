/* RFC 6455 §5.5.1 / §7.4 close frames: payload parsing and close-code rules. */
#ifndef WSG_WS_CLOSE_H
#define WSG_WS_CLOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Close codes wsgate uses. 1005, 1006 and 1015 are never sent on the wire. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* not on the wire: close frame had no code */
    WS_CLOSE_ABNORMAL = 1006,  /* not on the wire: connection lost */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_TRY_AGAIN = 1013,
    WS_CLOSE_BAD_GATEWAY = 1014,
};

/* True when a peer may send `code` in a close frame: 1000-1003, 1007-1014,
 * 3000-4999. */
bool ws_close_code_valid(unsigned code);

/* Parse a close payload p[0..n) (already unmasked). n == 0 gives
 * *code = 1005 and an empty reason. Returns 0, ERR_WS_CLOSE_PAYLOAD for n == 1,
 * ERR_WS_CLOSE_CODE for a code that is not valid on the wire, ERR_WS_UTF8
 * for a reason that is not valid UTF-8. *reason and *reason_len borrow from p.
 * On ERR_WS_CLOSE_CODE and ERR_WS_UTF8 the outputs are already filled in (for
 * logging); on ERR_WS_CLOSE_PAYLOAD they are untouched. Does not check n <= 125
 * (ws_frame_check does). */
int ws_close_parse(const uint8_t *p, size_t n, unsigned *code, const uint8_t **reason,
                   size_t *reason_len);

/* Write a close payload (2-byte code + reason cut to fit 123 bytes on a
 * UTF-8 character boundary) into out (at least 125 bytes). Returns its length.
 * reason: borrowed NUL-terminated string, or NULL for none; it is also cut
 * before its first invalid UTF-8 byte. code must pass ws_close_code_valid()
 * (asserted), except WS_CLOSE_NO_STATUS, which writes an empty payload
 * (RFC 6455 §7.1.5) and returns 0. */
size_t ws_close_payload(uint8_t *out, unsigned code, const char *reason);

#endif
