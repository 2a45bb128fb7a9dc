/* RFC 6455 §5 frame header codec, masking and sequencing rules. */
#include "ws/frame.h"

#include <assert.h>
#include <string.h>

#include "core/err.h"

/* RFC 6455 §5.2 first-byte and second-byte layout. */
#define B0_FIN     0x80
#define B0_RSV     0x70
#define B0_OPCODE  0x0F
#define B1_MASK    0x80
#define B1_LEN     0x7F
#define LEN_16     126 /* 7-bit length value announcing a 16-bit length */
#define LEN_64     127 /* 7-bit length value announcing a 64-bit length */
#define OP_CONTROL 0x8 /* RFC 6455 §5.5: opcodes with the high bit set are control frames */

static inline uint64_t load_be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame_hdr *h)
{
    uint64_t len;
    size_t hlen = 2;

    if (n < 2)
        return ERR_AGAIN;
    len = p[1] & B1_LEN;
    if (len == LEN_16) {
        if (n < 4)
            return ERR_AGAIN;
        len = (uint64_t)p[2] << 8 | p[3];
        hlen = 4;
    } else if (len == LEN_64) {
        if (n < 3)
            return ERR_AGAIN;
        /* RFC 6455 §5.2: "the most significant bit MUST be 0". Known from
         * the third byte on, so fail there rather than wait for seven more. */
        if (p[2] & 0x80)
            return ERR_WS_LENGTH;
        if (n < 10)
            return ERR_AGAIN;
        len = load_be64(p + 2);
        hlen = 10;
    }
    /* A non-minimal length form (RFC 6455 §5.2 "the minimal number of bytes
     * MUST be used") is accepted: the value is still exact, and the error
     * table has no code for it. */
    if (p[1] & B1_MASK) {
        if (n < hlen + 4)
            return ERR_AGAIN;
        memcpy(h->mask, p + hlen, 4);
        hlen += 4;
        h->masked = true;
    } else {
        memset(h->mask, 0, sizeof(h->mask));
        h->masked = false;
    }
    h->len = len;
    h->opcode = p[0] & B0_OPCODE;
    h->rsv = (uint8_t)((p[0] & B0_RSV) >> 4);
    h->fin = (p[0] & B0_FIN) != 0;
    h->hlen = (uint8_t)hlen;
    return (int)hlen;
}

size_t ws_frame_write(uint8_t *out, bool fin, uint8_t opcode, const uint8_t *mask, uint64_t len)
{
    uint8_t mbit = mask ? B1_MASK : 0;
    size_t n;

    assert((opcode & 0x80) == 0);
    assert(len >> 63 == 0);
    /* Bits 4..6 of opcode land on RSV3..RSV1, so an extension can set its
     * RSV bit (RFC 6455 §5.2) without a second write. */
    out[0] = (uint8_t)((fin ? B0_FIN : 0) | (opcode & (B0_RSV | B0_OPCODE)));
    if (len < LEN_16) {
        out[1] = (uint8_t)(mbit | len);
        n = 2;
    } else if (len <= 0xFFFF) {
        out[1] = mbit | LEN_16;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | LEN_64;
        store_be64(out + 2, len);
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

static inline void store64(uint8_t *p, uint64_t w)
{
    memcpy(p, &w, sizeof(w));
}

void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    size_t i = 0;
    uint64_t kw;
    uint32_t k4;

    /* RFC 6455 §5.3: byte j of the payload is XORed with key[j % 4]; a buffer
     * that starts `offset` bytes into the payload starts at key[offset % 4].
     * Long runs first walk to an 8-byte boundary, since word accesses that
     * straddle cache lines cost up to twice as much; short ones (most
     * messages) skip that walk, whose per-byte steps would cost more than
     * they save. */
    if (n >= 128) {
        size_t head = (size_t)(-(uintptr_t)p & 7);
        for (; i < head; i++)
            p[i] ^= key[(offset + i) & 3];
        p += head;
        n -= head;
        offset += head;
        i = 0;
    }
    /* Rotating the key once lets every later step work on whole words. */
    kw = ws_mask_word(key, offset);
    memcpy(&k4, &kw, sizeof(k4));
    /* 32 bytes per round as four words: independent operations the compiler
     * can keep in flight or fuse into vector registers. memcpy keeps the
     * accesses defined whatever the alignment, and compiles to plain moves. */
    for (; n - i >= 32; i += 32) {
        uint64_t w0 = load64(p + i), w1 = load64(p + i + 8);
        uint64_t w2 = load64(p + i + 16), w3 = load64(p + i + 24);

        store64(p + i, w0 ^ kw);
        store64(p + i + 8, w1 ^ kw);
        store64(p + i + 16, w2 ^ kw);
        store64(p + i + 24, w3 ^ kw);
    }
    for (; n - i >= 8; i += 8)
        store64(p + i, load64(p + i) ^ kw);
    if (n - i >= 4) {
        uint32_t w;
        memcpy(&w, p + i, sizeof(w));
        w ^= k4;
        memcpy(p + i, &w, sizeof(w));
        i += 4;
    }
    /* i is a multiple of 4 here, so the tail starts at the key word's
     * first byte. */
    if (i < n) {
        uint8_t k[4];
        memcpy(k, &k4, sizeof(k));
        for (; i < n; i++)
            p[i] ^= k[i & 3];
    }
}

int ws_frame_check(struct ws_seq *seq, const struct ws_rules *rules, const struct ws_frame_hdr *h,
                   uint8_t *msg_op)
{
    uint64_t before;
    uint8_t op;

    /* RFC 6455 §5.1: a client masks every frame, a server masks none, and
     * the receiver fails the connection otherwise. */
    if (h->masked != rules->from_client)
        return rules->from_client ? ERR_WS_UNMASKED : ERR_WS_MASKED;
    /* RFC 6455 §5.2: RSV bits are non-zero only with a negotiated extension;
     * wsgate negotiates none at this layer. */
    if (h->rsv)
        return ERR_WS_RSV;
    if (h->opcode & OP_CONTROL) {
        /* RFC 6455 §5.2: 0xB..0xF are reserved control opcodes. */
        if (h->opcode > WS_OP_PONG)
            return ERR_WS_OPCODE;
        /* RFC 6455 §5.5: control frames carry at most 125 bytes and are never
         * fragmented. They may arrive between the fragments of a message
         * (§5.4), so they leave the sequencing state alone. max_frame does
         * not apply: §5.5 already bounds them, and a close frame must get
         * through whatever the data limits are. */
        if (h->len > WS_MAX_CONTROL)
            return ERR_WS_CTRL_TOO_BIG;
        if (!h->fin)
            return ERR_WS_CTRL_FRAGMENTED;
        *msg_op = h->opcode;
        return 0;
    }
    /* RFC 6455 §5.2: 0x3..0x7 are reserved data opcodes. */
    if (h->opcode > WS_OP_BINARY)
        return ERR_WS_OPCODE;
    /* RFC 6455 §5.4: a fragmented message is a first frame with text or
     * binary, then continuation frames, the last with FIN; fragments of
     * different messages never interleave. */
    if (h->opcode == WS_OP_CONT) {
        if (seq->msg_op == 0)
            return ERR_WS_CONTINUATION;
        op = seq->msg_op;
        before = seq->msg_len;
    } else {
        if (seq->msg_op != 0)
            return ERR_WS_NOT_CONTINUATION;
        op = h->opcode;
        before = 0;
    }
    if (h->len > rules->max_frame)
        return ERR_WS_FRAME_TOO_BIG;
    /* Written as a subtraction so a huge len cannot wrap the sum. */
    if (before > rules->max_message || h->len > rules->max_message - before)
        return ERR_WS_MSG_TOO_BIG;
    if (h->fin) {
        seq->msg_len = 0;
        seq->msg_op = 0;
    } else {
        seq->msg_len = before + h->len;
        seq->msg_op = op;
    }
    *msg_op = op;
    return 0;
}
