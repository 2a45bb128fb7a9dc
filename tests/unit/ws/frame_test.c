/* Tests for src/ws/frame.c: header parsing replayed at every prefix, the
 * writer's length forms, masking against a byte loop, and every rule of
 * ws_frame_check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ws/frame.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Every proper prefix of a complete header gives ERR_AGAIN and leaves *h
 * alone; the whole header, alone or followed by payload, gives its length. */
static void parse_all_prefixes(const uint8_t *p, size_t hlen, struct ws_frame_hdr *out)
{
    uint8_t buf[WS_MAX_HEADER + 8];
    struct ws_frame_hdr h;

    for (size_t n = 0; n < hlen; n++) {
        memset(&h, 0xA5, sizeof(h));
        assert_int_equal(ws_frame_parse(p, n, &h), ERR_AGAIN);
        for (size_t i = 0; i < sizeof(h); i++)
            assert_int_equal(((const uint8_t *)&h)[i], 0xA5);
    }
    assert_int_equal(ws_frame_parse(p, hlen, out), (int)hlen);
    assert_int_equal(out->hlen, hlen);
    memcpy(buf, p, hlen);
    memset(buf + hlen, 0xFF, sizeof(buf) - hlen);
    assert_int_equal(ws_frame_parse(buf, sizeof(buf), &h), (int)hlen);
    assert_memory_equal(&h.len, &out->len, sizeof(h.len));
    assert_int_equal(h.fin, out->fin);
    assert_int_equal(h.opcode, out->opcode);
}

/* RFC 6455 §5.7 examples. */
static void test_parse_rfc_examples(void **state)
{
    static const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag1[] = {0x01, 0x03, 'H', 'e', 'l'};
    static const uint8_t frag2[] = {0x80, 0x02, 'l', 'o'};
    static const uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t bin256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t bin64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    struct ws_frame_hdr h;
    uint8_t payload[5];

    parse_all_prefixes(hello, 2, &h);
    assert_true(h.fin);
    assert_false(h.masked);
    assert_int_equal(h.opcode, WS_OP_TEXT);
    assert_int_equal(h.rsv, 0);
    assert_int_equal(h.len, 5);

    parse_all_prefixes(masked, 6, &h);
    assert_true(h.masked);
    assert_memory_equal(h.mask, key, 4);
    assert_int_equal(h.len, 5);
    memcpy(payload, masked + 6, 5);
    ws_mask(payload, 5, h.mask, 0);
    assert_memory_equal(payload, "Hello", 5);

    parse_all_prefixes(frag1, 2, &h);
    assert_false(h.fin);
    assert_int_equal(h.opcode, WS_OP_TEXT);
    assert_int_equal(h.len, 3);
    parse_all_prefixes(frag2, 2, &h);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WS_OP_CONT);
    assert_int_equal(h.len, 2);

    parse_all_prefixes(ping, 2, &h);
    assert_int_equal(h.opcode, WS_OP_PING);
    parse_all_prefixes(pong, 6, &h);
    assert_int_equal(h.opcode, WS_OP_PONG);
    assert_true(h.masked);

    parse_all_prefixes(bin256, 4, &h);
    assert_int_equal(h.opcode, WS_OP_BINARY);
    assert_int_equal(h.len, 256);
    parse_all_prefixes(bin64k, 10, &h);
    assert_int_equal(h.len, 65536);
}

static const uint64_t lengths[] = {0,
                                   1,
                                   125,
                                   126,
                                   127,
                                   65535,
                                   65536,
                                   UINT64_C(0xFFFFFFFF),
                                   UINT64_C(0x100000000),
                                   (UINT64_C(1) << 63) - 1};
#define N_LENGTHS (sizeof(lengths) / sizeof(lengths[0]))

static size_t expected_hlen(uint64_t len, bool masked)
{
    return (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

/* Writer and parser agree on every length form, mask, FIN, opcode and RSV,
 * and the writer picks the shortest form. */
static void test_round_trip(void **state)
{
    for (size_t i = 0; i < N_LENGTHS; i++)
        for (int m = 0; m < 2; m++)
            for (int fin = 0; fin < 2; fin++)
                for (int op = 0; op < 16; op++)
                    for (int rsv = 0; rsv < 8; rsv += (op == 1 ? 1 : 7)) {
                        uint8_t out[WS_MAX_HEADER];
                        struct ws_frame_hdr h;
                        size_t n = ws_frame_write(out, fin, (uint8_t)(op | rsv << 4),
                                                  m ? key : NULL, lengths[i]);

                        assert_int_equal(n, expected_hlen(lengths[i], m));
                        parse_all_prefixes(out, n, &h);
                        assert_true(h.len == lengths[i]);
                        assert_int_equal(h.masked, m);
                        assert_int_equal(h.fin, fin);
                        assert_int_equal(h.opcode, op);
                        assert_int_equal(h.rsv, rsv);
                        if (m)
                            assert_memory_equal(h.mask, key, 4);
                        else
                            assert_memory_equal(h.mask, "\0\0\0\0", 4);
                    }
}

/* Exact bytes of each length form. */
static void test_write_bytes(void **state)
{
    uint8_t out[WS_MAX_HEADER];

    assert_int_equal(ws_frame_write(out, true, WS_OP_TEXT, NULL, 0), 2);
    assert_memory_equal(out, "\x81\x00", 2);
    assert_int_equal(ws_frame_write(out, true, WS_OP_TEXT, NULL, 125), 2);
    assert_memory_equal(out, "\x81\x7d", 2);
    assert_int_equal(ws_frame_write(out, false, WS_OP_BINARY, NULL, 126), 4);
    assert_memory_equal(out, "\x02\x7e\x00\x7e", 4);
    assert_int_equal(ws_frame_write(out, true, WS_OP_BINARY, NULL, 65535), 4);
    assert_memory_equal(out, "\x82\x7e\xff\xff", 4);
    assert_int_equal(ws_frame_write(out, true, WS_OP_BINARY, NULL, 65536), 10);
    assert_memory_equal(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(ws_frame_write(out, true, WS_OP_BINARY, key, (UINT64_C(1) << 63) - 1), 14);
    assert_memory_equal(out, "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d", 14);
    assert_int_equal(ws_frame_write(out, true, WS_OP_TEXT, key, 5), 6);
    assert_memory_equal(out, "\x81\x85\x37\xfa\x21\x3d", 6);
    assert_int_equal(ws_frame_write(out, true, WS_OP_TEXT | 0x40, NULL, 5), 2);
    assert_memory_equal(out, "\xc1\x05", 2);
    assert_int_equal(ws_frame_write(out, true, WS_OP_CLOSE, NULL, 0), 2);
    assert_memory_equal(out, "\x88\x00", 2);
}

/* RFC 6455 §5.2: a 64-bit length with its top bit set is an error, known
 * from the third byte whatever follows. */
static void test_length_top_bit(void **state)
{
    uint8_t p[14] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    struct ws_frame_hdr h;

    for (int masked = 0; masked < 2; masked++) {
        p[1] = (uint8_t)(0x7F | masked << 7);
        for (int top = 0x80; top <= 0xFF; top += 0x3F) {
            p[2] = (uint8_t)top;
            for (size_t n = 0; n <= sizeof(p); n++)
                assert_int_equal(ws_frame_parse(p, n, &h), n < 3 ? ERR_AGAIN : ERR_WS_LENGTH);
        }
    }
    p[1] = 0x7F;
    p[2] = 0x7F;
    memset(p + 3, 0xFF, 7);
    assert_int_equal(ws_frame_parse(p, 10, &h), 10);
    assert_true(h.len == (UINT64_C(1) << 63) - 1);
}

/* Non-minimal length forms decode to their value (see the header). */
static void test_non_minimal_length(void **state)
{
    static const uint8_t p16[] = {0x82, 0x7E, 0x00, 0x05};
    static const uint8_t p64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x05, 1, 2, 3, 4};
    struct ws_frame_hdr h;

    parse_all_prefixes(p16, sizeof(p16), &h);
    assert_int_equal(h.len, 5);
    parse_all_prefixes(p64, sizeof(p64), &h);
    assert_int_equal(h.len, 5);
    assert_memory_equal(h.mask, "\x01\x02\x03\x04", 4);
}

/* Every 2-byte header (all first and second bytes) parses to the fields the
 * bits say, after the right number of bytes. */
static void test_parse_all_first_bytes(void **state)
{
    uint8_t p[WS_MAX_HEADER] = {0};
    struct ws_frame_hdr h;

    for (int b0 = 0; b0 < 256; b0++)
        for (int b1 = 0; b1 < 256; b1++) {
            size_t hlen = 2 +
                          ((b1 & 0x7F) == 126   ? 2
                           : (b1 & 0x7F) == 127 ? 8
                                                : 0) +
                          (b1 & 0x80 ? 4 : 0);

            p[0] = (uint8_t)b0;
            p[1] = (uint8_t)b1;
            assert_int_equal(ws_frame_parse(p, hlen - 1, &h), ERR_AGAIN);
            assert_int_equal(ws_frame_parse(p, sizeof(p), &h), (int)hlen);
            assert_int_equal(h.fin, b0 >> 7);
            assert_int_equal(h.rsv, (b0 >> 4) & 7);
            assert_int_equal(h.opcode, b0 & 0xF);
            assert_int_equal(h.masked, b1 >> 7);
            if ((b1 & 0x7F) < 126)
                assert_int_equal(h.len, b1 & 0x7F);
            else
                assert_int_equal(h.len, 0);
        }
}

static void naive_mask(uint8_t *p, size_t n, const uint8_t k[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= k[(offset + i) % 4];
}

/* ws_mask matches a byte loop for every start offset, many lengths, and every
 * pointer alignment, and applying it twice restores the input. Bytes around
 * the buffer stay untouched. */
static void test_mask(void **state)
{
    static const uint64_t offsets[] = {0, 1, 2, 3, 4, 5, 7, UINT64_C(0x100000001), UINT64_MAX};
    static const size_t big[] = {127, 128, 1000, 4099};
    uint8_t src[4200], a[4200 + 16], b[4200 + 16];

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 131 + 7);
    for (size_t oi = 0; oi < sizeof(offsets) / sizeof(offsets[0]); oi++)
        for (size_t len = 0; len <= 70 + sizeof(big) / sizeof(big[0]); len++)
            for (size_t align = 0; align < 8; align++) {
                size_t n = len <= 70 ? len : big[len - 71];

                memset(a, 0xEE, sizeof(a));
                memcpy(a + align, src, n);
                memcpy(b, a, sizeof(b));
                ws_mask(a + align, n, key, offsets[oi]);
                naive_mask(b + align, n, key, offsets[oi]);
                assert_memory_equal(a, b, sizeof(a));
                ws_mask(a + align, n, key, offsets[oi]);
                assert_memory_equal(a + align, src, n);
            }
}

/* Masking a payload in two pieces, the second with the running offset, gives
 * the same bytes as masking it at once, for every split. */
static void test_mask_split(void **state)
{
    uint8_t whole[77], parts[77];

    for (size_t i = 0; i < sizeof(whole); i++)
        whole[i] = (uint8_t)i;
    ws_mask(whole, sizeof(whole), key, 0);
    for (size_t s = 0; s <= sizeof(parts); s++) {
        for (size_t i = 0; i < sizeof(parts); i++)
            parts[i] = (uint8_t)i;
        ws_mask(parts, s, key, 0);
        ws_mask(parts + s, sizeof(parts) - s, key, s);
        assert_memory_equal(parts, whole, sizeof(whole));
    }
}

/* ---- ws_frame_check ---- */

static struct ws_frame_hdr hdr(bool fin, uint8_t op, bool masked, uint64_t len)
{
    struct ws_frame_hdr h = {.len = len, .opcode = op, .fin = fin, .masked = masked};

    if (masked)
        memcpy(h.mask, key, 4);
    return h;
}

static const struct ws_rules client_rules = {
    .max_frame = 1000, .max_message = 2500, .from_client = true};
static const struct ws_rules server_rules = {
    .max_frame = 1000, .max_message = 2500, .from_client = false};

/* Checks that an error leaves *seq and *msg_op untouched. */
static int check_err(struct ws_seq *seq, const struct ws_rules *r, struct ws_frame_hdr h)
{
    struct ws_seq before = *seq;
    uint8_t op = 0x77;
    int rc = ws_frame_check(seq, r, &h, &op);

    if (rc != 0) {
        assert_int_equal(op, 0x77);
        assert_memory_equal(seq, &before, sizeof(before));
    }
    return rc;
}

static void expect_ok(struct ws_seq *seq, const struct ws_rules *r, struct ws_frame_hdr h,
                      uint8_t want_op)
{
    uint8_t op = 0x77;

    assert_int_equal(ws_frame_check(seq, r, &h, &op), 0);
    assert_int_equal(op, want_op);
}

static void test_check_masking(void **state)
{
    struct ws_seq seq = {0};

    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_TEXT, false, 1)),
                     ERR_WS_UNMASKED);
    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_PING, false, 0)),
                     ERR_WS_UNMASKED);
    assert_int_equal(check_err(&seq, &server_rules, hdr(true, WS_OP_TEXT, true, 1)), ERR_WS_MASKED);
    assert_int_equal(check_err(&seq, &server_rules, hdr(true, WS_OP_CLOSE, true, 2)),
                     ERR_WS_MASKED);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_TEXT, true, 1), WS_OP_TEXT);
    expect_ok(&seq, &server_rules, hdr(true, WS_OP_TEXT, false, 1), WS_OP_TEXT);
}

static void test_check_rsv(void **state)
{
    struct ws_seq seq = {0};

    for (uint8_t rsv = 1; rsv < 8; rsv++) {
        struct ws_frame_hdr h = hdr(true, WS_OP_BINARY, false, 0);

        h.rsv = rsv;
        assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_RSV);
        h.opcode = WS_OP_PING;
        assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_RSV);
    }
}

static void test_check_opcodes(void **state)
{
    struct ws_seq seq = {0};

    for (uint8_t op = 0; op < 16; op++) {
        bool known = op <= 2 || (op >= 8 && op <= 0xA);
        int rc = check_err(&seq, &server_rules, hdr(true, op, false, 0));

        if (!known)
            assert_int_equal(rc, ERR_WS_OPCODE);
        else if (op == WS_OP_CONT)
            assert_int_equal(rc, ERR_WS_CONTINUATION);
        else
            assert_int_equal(rc, 0);
        /* Reserved opcodes are refused inside an open message too. */
        if (!known) {
            struct ws_seq open = {.msg_len = 3, .msg_op = WS_OP_TEXT};

            assert_int_equal(check_err(&open, &server_rules, hdr(false, op, false, 0)),
                             ERR_WS_OPCODE);
        }
    }
}

static void test_check_control(void **state)
{
    struct ws_seq seq = {0};
    static const uint8_t ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    struct ws_rules tiny = {.max_frame = 10, .max_message = 10, .from_client = false};

    for (size_t i = 0; i < 3; i++) {
        expect_ok(&seq, &server_rules, hdr(true, ops[i], false, 125), ops[i]);
        assert_int_equal(check_err(&seq, &server_rules, hdr(true, ops[i], false, 126)),
                         ERR_WS_CTRL_TOO_BIG);
        assert_int_equal(check_err(&seq, &server_rules, hdr(true, ops[i], false, UINT64_MAX)),
                         ERR_WS_CTRL_TOO_BIG);
        assert_int_equal(check_err(&seq, &server_rules, hdr(false, ops[i], false, 0)),
                         ERR_WS_CTRL_FRAGMENTED);
        /* Bounded by §5.5, not by max_frame. */
        expect_ok(&seq, &tiny, hdr(true, ops[i], false, 125), ops[i]);
    }
    assert_int_equal(seq.msg_op, 0);
    assert_int_equal(seq.msg_len, 0);
}

/* RFC 6455 §5.4: fragments, control frames between them, and the errors. */
static void test_check_sequencing(void **state)
{
    struct ws_seq seq = {0};

    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_CONT, true, 1)),
                     ERR_WS_CONTINUATION);
    assert_int_equal(check_err(&seq, &client_rules, hdr(false, WS_OP_CONT, true, 1)),
                     ERR_WS_CONTINUATION);
    expect_ok(&seq, &client_rules, hdr(false, WS_OP_TEXT, true, 3), WS_OP_TEXT);
    assert_int_equal(seq.msg_op, WS_OP_TEXT);
    assert_int_equal(seq.msg_len, 3);
    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_TEXT, true, 1)),
                     ERR_WS_NOT_CONTINUATION);
    assert_int_equal(check_err(&seq, &client_rules, hdr(false, WS_OP_BINARY, true, 1)),
                     ERR_WS_NOT_CONTINUATION);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_PING, true, 4), WS_OP_PING);
    expect_ok(&seq, &client_rules, hdr(false, WS_OP_CONT, true, 0), WS_OP_TEXT);
    expect_ok(&seq, &client_rules, hdr(false, WS_OP_CONT, true, 5), WS_OP_TEXT);
    assert_int_equal(seq.msg_len, 8);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_PONG, true, 0), WS_OP_PONG);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_CONT, true, 2), WS_OP_TEXT);
    assert_int_equal(seq.msg_op, 0);
    assert_int_equal(seq.msg_len, 0);
    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_CONT, true, 1)),
                     ERR_WS_CONTINUATION);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_BINARY, true, 9), WS_OP_BINARY);
    assert_int_equal(seq.msg_len, 0);
    expect_ok(&seq, &client_rules, hdr(false, WS_OP_BINARY, true, 9), WS_OP_BINARY);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_CLOSE, true, 2), WS_OP_CLOSE);
    expect_ok(&seq, &client_rules, hdr(true, WS_OP_CONT, true, 0), WS_OP_BINARY);
    assert_int_equal(seq.msg_op, 0);
}

static void test_check_frame_limit(void **state)
{
    struct ws_seq seq = {0};

    expect_ok(&seq, &server_rules, hdr(true, WS_OP_BINARY, false, 1000), WS_OP_BINARY);
    assert_int_equal(check_err(&seq, &server_rules, hdr(true, WS_OP_BINARY, false, 1001)),
                     ERR_WS_FRAME_TOO_BIG);
    assert_int_equal(
        check_err(&seq, &server_rules, hdr(true, WS_OP_TEXT, false, (UINT64_C(1) << 63) - 1)),
        ERR_WS_FRAME_TOO_BIG);
    expect_ok(&seq, &server_rules, hdr(false, WS_OP_TEXT, false, 1000), WS_OP_TEXT);
    assert_int_equal(check_err(&seq, &server_rules, hdr(false, WS_OP_CONT, false, 1001)),
                     ERR_WS_FRAME_TOO_BIG);
    /* Sequencing errors are reported before size errors. */
    assert_int_equal(check_err(&seq, &server_rules, hdr(false, WS_OP_TEXT, false, 5000)),
                     ERR_WS_NOT_CONTINUATION);
}

/* max_message counts every frame of a message and restarts after FIN. */
static void test_check_message_limit(void **state)
{
    struct ws_seq seq = {0};
    struct ws_rules small = {.max_frame = 1000, .max_message = 900, .from_client = false};

    assert_int_equal(check_err(&seq, &small, hdr(true, WS_OP_TEXT, false, 901)),
                     ERR_WS_MSG_TOO_BIG);
    expect_ok(&seq, &small, hdr(true, WS_OP_TEXT, false, 900), WS_OP_TEXT);

    expect_ok(&seq, &server_rules, hdr(false, WS_OP_TEXT, false, 1000), WS_OP_TEXT);
    expect_ok(&seq, &server_rules, hdr(false, WS_OP_CONT, false, 1000), WS_OP_TEXT);
    assert_int_equal(seq.msg_len, 2000);
    assert_int_equal(check_err(&seq, &server_rules, hdr(true, WS_OP_CONT, false, 501)),
                     ERR_WS_MSG_TOO_BIG);
    assert_int_equal(check_err(&seq, &server_rules, hdr(false, WS_OP_CONT, false, 501)),
                     ERR_WS_MSG_TOO_BIG);
    expect_ok(&seq, &server_rules, hdr(false, WS_OP_CONT, false, 499), WS_OP_TEXT);
    expect_ok(&seq, &server_rules, hdr(true, WS_OP_CONT, false, 1), WS_OP_TEXT);
    assert_int_equal(seq.msg_len, 0);
    /* A new message starts from zero. */
    expect_ok(&seq, &server_rules, hdr(false, WS_OP_BINARY, false, 1000), WS_OP_BINARY);
    expect_ok(&seq, &server_rules, hdr(false, WS_OP_CONT, false, 1000), WS_OP_BINARY);
    expect_ok(&seq, &server_rules, hdr(true, WS_OP_CONT, false, 500), WS_OP_BINARY);
    expect_ok(&seq, &server_rules, hdr(true, WS_OP_BINARY, false, 1000), WS_OP_BINARY);
}

/* Limits near 2^64 must not wrap. */
static void test_check_huge_limits(void **state)
{
    struct ws_rules r = {.max_frame = UINT64_MAX, .max_message = UINT64_MAX, .from_client = true};
    struct ws_seq seq = {0};
    uint64_t big = (UINT64_C(1) << 63) - 1;

    expect_ok(&seq, &r, hdr(false, WS_OP_BINARY, true, big), WS_OP_BINARY);
    expect_ok(&seq, &r, hdr(false, WS_OP_CONT, true, big), WS_OP_BINARY);
    assert_true(seq.msg_len == UINT64_MAX - 1);
    expect_ok(&seq, &r, hdr(false, WS_OP_CONT, true, 1), WS_OP_BINARY);
    assert_int_equal(check_err(&seq, &r, hdr(false, WS_OP_CONT, true, 1)), ERR_WS_MSG_TOO_BIG);
    expect_ok(&seq, &r, hdr(true, WS_OP_CONT, true, 0), WS_OP_BINARY);

    /* A state already past a (smaller) limit fails rather than wrapping. */
    seq.msg_op = WS_OP_TEXT;
    seq.msg_len = 5000;
    assert_int_equal(check_err(&seq, &client_rules, hdr(true, WS_OP_CONT, true, 0)),
                     ERR_WS_MSG_TOO_BIG);
}

/* Checks run in the documented order: masking, RSV, opcode, control rules. */
static void test_check_order(void **state)
{
    struct ws_seq seq = {0};
    struct ws_frame_hdr h = hdr(false, 0xB, false, 500);

    h.rsv = 4;
    assert_int_equal(check_err(&seq, &client_rules, h), ERR_WS_UNMASKED);
    assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_RSV);
    h.rsv = 0;
    assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_OPCODE);
    h.opcode = WS_OP_PING;
    assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_CTRL_TOO_BIG);
    h.len = 1;
    assert_int_equal(check_err(&seq, &server_rules, h), ERR_WS_CTRL_FRAGMENTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rfc_examples),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_bytes),
        cmocka_unit_test(test_length_top_bit),
        cmocka_unit_test(test_non_minimal_length),
        cmocka_unit_test(test_parse_all_first_bytes),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_split),
        cmocka_unit_test(test_check_masking),
        cmocka_unit_test(test_check_rsv),
        cmocka_unit_test(test_check_opcodes),
        cmocka_unit_test(test_check_control),
        cmocka_unit_test(test_check_sequencing),
        cmocka_unit_test(test_check_frame_limit),
        cmocka_unit_test(test_check_message_limit),
        cmocka_unit_test(test_check_huge_limits),
        cmocka_unit_test(test_check_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
