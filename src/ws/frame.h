/* RFC 6455 §5 frame header codec, masking, and the per-direction sequencing
 * rules. Pure code: no I/O, no allocation. */
#ifndef WSG_WS_FRAME_H
#define WSG_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum ws_op {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

#define WS_MAX_HEADER  14  /* 2 + 8 (length) + 4 (mask) */
#define WS_MAX_CONTROL 125 /* RFC 6455 §5.5 */

struct ws_frame_hdr {
    uint64_t len;    /* payload length in bytes */
    uint8_t mask[4]; /* masking key, valid when masked */
    uint8_t opcode;  /* enum ws_op or a reserved value */
    uint8_t rsv;     /* RSV1..3 as bits 2..0 (0x4 = RSV1) */
    uint8_t hlen;    /* header length in bytes, 2..14 */
    bool fin;
    bool masked;
};

/* Decode one frame header from p[0..n).
 * Returns the header length (2..14) and fills *h; ERR_AGAIN when n is too
 * short; ERR_WS_LENGTH when a 64-bit length has its most significant bit set
 * (reported as soon as p[2] is available). *h is written only on success.
 * No other rule is checked here (see ws_frame_check); a non-minimal length
 * form is accepted. */
int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame_hdr *h);

/* Encode a frame header into out (at least WS_MAX_HEADER bytes) with the
 * shortest length form. mask: 4-byte key, or NULL for an unmasked frame.
 * opcode: the 4-bit opcode; bits 4..6 of it, if set, are written as
 * RSV3..RSV1 (0x40 = RSV1, for an extension). len must be below 2^63 and
 * opcode below 0x80 (asserted). Returns the header length. */
size_t ws_frame_write(uint8_t *out, bool fin, uint8_t opcode, const uint8_t *mask, uint64_t len);

/* XOR p[0..n) in place with key, starting at key byte (offset & 3).
 * Masking and unmasking are the same operation. */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);

/* The key as a word to XOR with the 8 bytes at `offset` into the payload:
 * byte j of the word in memory is key[(offset + j) & 3]. */
static inline uint64_t ws_mask_word(const uint8_t key[4], uint64_t offset)
{
    unsigned r = (unsigned)(offset & 3) * 8;
    uint32_t k;

    memcpy(&k, key, sizeof(k));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (r)
        k = k >> r | k << (32 - r);
#else
    if (r)
        k = k << r | k >> (32 - r);
#endif
    return (uint64_t)k << 32 | k;
}

/* Limits and role for ws_frame_check. */
struct ws_rules {
    uint64_t max_frame;   /* bytes of payload per data frame (control: §5.5's 125) */
    uint64_t max_message; /* bytes of payload per message (all its frames) */
    bool from_client;     /* frames must be masked (true) or unmasked (false) */
};

/* Message sequencing state of one direction. Zero-initialise. */
struct ws_seq {
    uint64_t msg_len; /* payload bytes of the current data message so far */
    uint8_t msg_op;   /* WS_OP_TEXT/BINARY while a fragmented message is open, else 0 */
};

/* Check a decoded header against RFC 6455 §5 and the limits, and advance the
 * sequencing state for data frames. Returns 0 or: ERR_WS_UNMASKED /
 * ERR_WS_MASKED (wrong masking for the direction), ERR_WS_RSV (any RSV bit),
 * ERR_WS_OPCODE (reserved opcode), ERR_WS_CTRL_TOO_BIG, ERR_WS_CTRL_FRAGMENTED,
 * ERR_WS_CONTINUATION (continuation with no open message),
 * ERR_WS_NOT_CONTINUATION (text/binary while a message is open),
 * ERR_WS_FRAME_TOO_BIG, ERR_WS_MSG_TOO_BIG (checked in that order). On error
 * *seq and *msg_op are unchanged. Control frames never touch *seq.
 * For a data frame, *msg_op receives the opcode of the message it belongs to
 * (text or binary); for control frames it receives the frame's opcode. */
int ws_frame_check(struct ws_seq *seq, const struct ws_rules *rules, const struct ws_frame_hdr *h,
                   uint8_t *msg_op);

#endif
