/* Incremental UTF-8 validation.
 *
 * A shift-based DFA: each input byte selects a 64-bit row, and the current
 * state is a bit offset into that row where the next state (6 bits) is
 * stored. One table load that does not depend on the state, then one shift
 * that does: the loop-carried chain is a single shift per byte. Runs of
 * ASCII at a character boundary are skipped a word (8 bytes) at a time. */
#include "ws/utf8.h"

#include <string.h>

#include "core/err.h"
#include "ws/frame.h"

/* States are bit offsets into a row; 0 must be the boundary state because
 * the header promises a zero-initialised struct starts there. */
enum {
    S_ACC = 0,   /* at a character boundary */
    S_FAIL = 6,  /* absorbing: the input can no longer be valid */
    S_C1 = 12,   /* one continuation byte (80..BF) to go */
    S_C2 = 18,   /* two to go */
    S_C3 = 24,   /* three to go */
    S_E0 = 30,   /* after E0: A0..BF, or the 3-byte form would be overlong */
    S_ED = 36,   /* after ED: 80..9F, or it would encode a surrogate D800..DFFF */
    S_F0 = 42,   /* after F0: 90..BF, or the 4-byte form would be overlong */
    S_F4 = 48,   /* after F4: 80..8F, or the code point would pass U+10FFFF */
    S_MASK = 63, /* a state lives in the low 6 bits */
};

#define T(from, to) ((uint64_t)(to) << (from))

/* Every state not named goes to S_FAIL, including S_FAIL itself. */
#define ROW(acc, c1, c2, c3, e0, ed, f0, f4)                                                       \
    (T(S_ACC, acc) | T(S_FAIL, S_FAIL) | T(S_C1, c1) | T(S_C2, c2) | T(S_C3, c3) | T(S_E0, e0) |   \
     T(S_ED, ed) | T(S_F0, f0) | T(S_F4, f4))

#define F S_FAIL
/* RFC 3629 §4 byte ranges, one row per class of bytes that behave alike. */
#define R_ASC ROW(S_ACC, F, F, F, F, F, F, F)             /* 00..7F */
#define R_80  ROW(F, S_ACC, S_C1, S_C2, F, S_C1, F, S_C2) /* 80..8F */
#define R_90  ROW(F, S_ACC, S_C1, S_C2, F, S_C1, S_C2, F) /* 90..9F */
#define R_A0  ROW(F, S_ACC, S_C1, S_C2, S_C1, F, S_C2, F) /* A0..BF */
#define R_BAD ROW(F, F, F, F, F, F, F, F)                 /* C0, C1, F5..FF */
#define R_L2  ROW(S_C1, F, F, F, F, F, F, F)              /* C2..DF */
#define R_E0  ROW(S_E0, F, F, F, F, F, F, F)              /* E0 */
#define R_L3  ROW(S_C2, F, F, F, F, F, F, F)              /* E1..EC, EE, EF */
#define R_ED  ROW(S_ED, F, F, F, F, F, F, F)              /* ED */
#define R_F0  ROW(S_F0, F, F, F, F, F, F, F)              /* F0 */
#define R_L4  ROW(S_C3, F, F, F, F, F, F, F)              /* F1..F3 */
#define R_F4  ROW(S_F4, F, F, F, F, F, F, F)              /* F4 */

#define X2(r)  r, r
#define X3(r)  r, r, r
#define X4(r)  X2(r), X2(r)
#define X8(r)  X4(r), X4(r)
#define X16(r) X8(r), X8(r)
#define X32(r) X16(r), X16(r)

static const uint64_t dfa[256] = {
    X32(R_ASC), X32(R_ASC), X32(R_ASC), X32(R_ASC), /* 00..7F */
    X16(R_80),                                      /* 80..8F */
    X16(R_90),                                      /* 90..9F */
    X32(R_A0),                                      /* A0..BF */
    X2(R_BAD),                                      /* C0..C1 */
    X16(R_L2),  X8(R_L2),   X4(R_L2),   X2(R_L2),   /* C2..DF */
    R_E0,                                           /* E0 */
    X8(R_L3),   X4(R_L3),                           /* E1..EC */
    R_ED,                                           /* ED */
    X2(R_L3),                                       /* EE..EF */
    R_F0,                                           /* F0 */
    X3(R_L4),                                       /* F1..F3 */
    R_F4,                                           /* F4 */
    X8(R_BAD),  X3(R_BAD),                          /* F5..FF */
};

#undef F

_Static_assert(sizeof(dfa) / sizeof(dfa[0]) == 256, "one row per byte value");

#define HIGH_BITS UINT64_C(0x8080808080808080)

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* Bytes run through the DFA between two looks for an ASCII run or a failure:
 * long enough to amortise the checks, short enough to stop soon after an
 * invalid byte in a large buffer. */
#define DFA_BLOCK 16

int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n)
{
    uint64_t s = u->state;
    size_t i = 0;

    if (s == S_FAIL)
        return ERR_WS_UTF8;
    while (i < n) {
        if ((s & S_MASK) == S_ACC) {
            /* Only at a boundary may ASCII be skipped: inside a sequence an
             * ASCII byte is an error the DFA must see. */
            while (n - i >= 32 &&
                   ((load64(p + i) | load64(p + i + 8) | load64(p + i + 16) | load64(p + i + 24)) &
                    HIGH_BITS) == 0)
                i += 32;
            while (n - i >= 8 && (load64(p + i) & HIGH_BITS) == 0)
                i += 8;
        }
        if (n - i >= DFA_BLOCK) {
            /* Straight-line code: the loop counter and branch would
             * otherwise cost more than the one-shift state chain. */
            const uint8_t *q = p + i;

            s = dfa[q[0]] >> (s & S_MASK);
            s = dfa[q[1]] >> (s & S_MASK);
            s = dfa[q[2]] >> (s & S_MASK);
            s = dfa[q[3]] >> (s & S_MASK);
            s = dfa[q[4]] >> (s & S_MASK);
            s = dfa[q[5]] >> (s & S_MASK);
            s = dfa[q[6]] >> (s & S_MASK);
            s = dfa[q[7]] >> (s & S_MASK);
            s = dfa[q[8]] >> (s & S_MASK);
            s = dfa[q[9]] >> (s & S_MASK);
            s = dfa[q[10]] >> (s & S_MASK);
            s = dfa[q[11]] >> (s & S_MASK);
            s = dfa[q[12]] >> (s & S_MASK);
            s = dfa[q[13]] >> (s & S_MASK);
            s = dfa[q[14]] >> (s & S_MASK);
            s = dfa[q[15]] >> (s & S_MASK);
            i += DFA_BLOCK;
        } else {
            for (; i < n; i++)
                s = dfa[p[i]] >> (s & S_MASK);
        }
        if ((s & S_MASK) == S_FAIL) {
            u->state = S_FAIL;
            return ERR_WS_UTF8;
        }
    }
    u->state = (uint32_t)(s & S_MASK);
    return 0;
}

static inline void store64(uint8_t *p, uint64_t w)
{
    memcpy(p, &w, sizeof(w));
}

/* Bytes unmasked, validated and re-masked together when a run is not ASCII;
 * a multiple of 8 so the word loop's keys stay in phase after it. */
#define REMASK_CHUNK 64

int ws_utf8_feed_remask(struct ws_utf8 *u, uint8_t *p, size_t n, const uint8_t in[4],
                        const uint8_t out[4], uint64_t offset)
{
    /* Keys rotated to this buffer's phase: wi unmasks a word, wx turns a
     * word masked with `in` into one masked with `out`. */
    uint64_t wi = ws_mask_word(in, offset), wx = wi ^ ws_mask_word(out, offset);
    size_t i = 0;

    if (u->state == S_FAIL)
        return ERR_WS_UTF8;
    while (i < n) {
        size_t c;
        int rc;

        /* ASCII words at a character boundary: one load, a test of the
         * unmasked high bits, one store. */
        if (u->state == S_ACC) {
            for (; n - i >= 8; i += 8) {
                uint64_t w = load64(p + i);
                if ((w ^ wi) & HIGH_BITS)
                    break;
                store64(p + i, w ^ wx);
            }
            if (i == n)
                break;
        }
        /* Anything else a chunk at a time through the DFA. i stays a
         * multiple of 8 until the last chunk. */
        c = n - i < REMASK_CHUNK ? n - i : REMASK_CHUNK;
        ws_mask(p + i, c, in, offset + i);
        rc = ws_utf8_feed(u, p + i, c);
        if (rc < 0)
            return rc;
        ws_mask(p + i, c, out, offset + i);
        i += c;
    }
    return 0;
}

bool ws_utf8_complete(const struct ws_utf8 *u)
{
    return u->state == S_ACC;
}

bool ws_utf8_valid(const uint8_t *p, size_t n)
{
    struct ws_utf8 u = {0};

    return ws_utf8_feed(&u, p, n) == 0 && ws_utf8_complete(&u);
}
