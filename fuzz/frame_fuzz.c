/* libFuzzer target for the frame codec: the input is a stream of frames as a
 * peer would send them, read once as server-to-client traffic and once as
 * client-to-server traffic. Every decoded header is checked against the
 * rules, re-encoded and re-parsed; payloads are unmasked in a copy, text is
 * validated incrementally (also through the fused unmask-validate-remask
 * path) and close payloads are parsed, as the relay does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ws/close.h"
#include "ws/frame.h"
#include "ws/utf8.h"

#define LIMIT (1u << 20)

/* libFuzzer reports an abort with the stack, whatever NDEBUG says. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Re-encoding a decoded header gives back the same fields, and the shortest
 * length form is never longer than the one read. */
static void check_round_trip(const struct ws_frame_hdr *h)
{
    uint8_t out[WS_MAX_HEADER];
    struct ws_frame_hdr g;
    size_t n = ws_frame_write(out, h->fin, (uint8_t)(h->opcode | h->rsv << 4),
                              h->masked ? h->mask : NULL, h->len);

    CHECK(n >= 2 && n <= WS_MAX_HEADER && n <= h->hlen);
    CHECK(ws_frame_parse(out, n, &g) == (int)n);
    CHECK(ws_frame_parse(out, n - 1, &g) == ERR_AGAIN);
    CHECK(g.hlen == n);
    CHECK(g.len == h->len && g.fin == h->fin && g.opcode == h->opcode && g.rsv == h->rsv);
    CHECK(g.masked == h->masked);
    CHECK(!h->masked || memcmp(g.mask, h->mask, 4) == 0);
}

/* ws_mask equals a byte loop, and masking in two pieces equals masking at once. */
static void check_mask(const uint8_t *p, size_t n, const uint8_t key[4], size_t split)
{
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);

    CHECK(a && b);
    memcpy(a, p, n);
    memcpy(b, p, n);
    ws_mask(a, split, key, 0);
    ws_mask(a + split, n - split, key, split);
    for (size_t i = 0; i < n; i++)
        b[i] ^= key[i & 3];
    CHECK(memcmp(a, b, n) == 0);
    free(a);
    free(b);
}

/* Incremental validation does not depend on how the input is split. */
static void check_utf8_split(const uint8_t *p, size_t n, size_t split)
{
    struct ws_utf8 one = {0}, two = {0};
    int r1 = ws_utf8_feed(&one, p, n);
    int r2 = ws_utf8_feed(&two, p, split);

    r2 = ws_utf8_feed(&two, p + split, n - split) ? ERR_WS_UTF8 : r2;
    CHECK(r1 == 0 || r1 == ERR_WS_UTF8);
    CHECK(r1 == r2);
    CHECK(r1 != 0 || ws_utf8_complete(&one) == ws_utf8_complete(&two));
    CHECK(ws_utf8_valid(p, n) == (r1 == 0 && ws_utf8_complete(&one)));
}

/* The fused path (unmask with `in`, validate, re-mask with `out`) agrees
 * with the three separate passes, split at `split`, on the verdict and on
 * every byte of accepted input. p is masked with `in`. */
static void check_remask(const uint8_t *p, size_t n, const uint8_t in[4], size_t split)
{
    static const uint8_t out[4] = {0xa5, 0x3c, 0x0f, 0xe1};
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    struct ws_utf8 ua = {0}, ub = {0};
    int ra, rb;

    CHECK(a && b);
    memcpy(a, p, n);
    memcpy(b, p, n);
    ra = ws_utf8_feed_remask(&ua, a, split, in, out, 0);
    ra = ws_utf8_feed_remask(&ua, a + split, n - split, in, out, split) ? ERR_WS_UTF8 : ra;
    ws_mask(b, n, in, 0);
    rb = ws_utf8_feed(&ub, b, n);
    ws_mask(b, n, out, 0);
    CHECK(ra == rb);
    CHECK(ra != 0 || (ws_utf8_complete(&ua) == ws_utf8_complete(&ub) && memcmp(a, b, n) == 0));
    free(a);
    free(b);
}

/* A close payload that parses is written back identically by
 * ws_close_payload (up to a NUL in the reason, which ends a C string). */
static void check_close(const uint8_t *p, size_t n)
{
    const uint8_t *reason;
    unsigned code;
    size_t rlen;
    int rc = ws_close_parse(p, n, &code, &reason, &rlen);
    char text[WS_MAX_CONTROL + 1];
    uint8_t out[WS_MAX_CONTROL];
    size_t m;

    if (rc != 0) {
        CHECK(rc == ERR_WS_CLOSE_PAYLOAD || rc == ERR_WS_CLOSE_CODE || rc == ERR_WS_UTF8);
        CHECK(err_close_code(rc) == WS_CLOSE_PROTOCOL ||
              err_close_code(rc) == WS_CLOSE_INVALID_DATA);
        return;
    }
    CHECK(n <= WS_MAX_CONTROL);
    if (n == 0) {
        CHECK(code == WS_CLOSE_NO_STATUS && rlen == 0);
        CHECK(ws_close_payload(out, code, NULL) == 0);
        return;
    }
    CHECK(ws_close_code_valid(code) && reason == p + 2 && rlen == n - 2);
    memcpy(text, reason, rlen);
    text[rlen] = '\0';
    m = ws_close_payload(out, code, text);
    CHECK(m == 2 + strlen(text));
    CHECK(memcmp(out, p, m) == 0);
}

static void run(const uint8_t *data, size_t size, bool from_client)
{
    const struct ws_rules rules = {
        .max_frame = LIMIT, .max_message = LIMIT, .from_client = from_client};
    struct ws_seq seq = {0};
    struct ws_utf8 text = {0};
    size_t pos = 0;

    while (pos < size) {
        struct ws_frame_hdr h, again;
        struct ws_seq before;
        uint8_t op = 0, *payload;
        size_t avail, split;
        int rc = ws_frame_parse(data + pos, size - pos, &h);

        if (rc < 0) {
            CHECK(rc == ERR_AGAIN || rc == ERR_WS_LENGTH);
            CHECK(rc != ERR_AGAIN || size - pos < WS_MAX_HEADER);
            return;
        }
        CHECK(rc >= 2 && rc <= WS_MAX_HEADER && h.hlen == rc);
        /* Every shorter prefix needs more input: the result cannot depend on
         * how the header was split across reads. */
        for (int k = 0; k < rc; k++)
            CHECK(ws_frame_parse(data + pos, (size_t)k, &again) == ERR_AGAIN);
        check_round_trip(&h);

        before = seq;
        rc = ws_frame_check(&seq, &rules, &h, &op);
        if (rc != 0) {
            CHECK(memcmp(&before, &seq, sizeof(seq)) == 0);
            CHECK(err_close_code(rc) == WS_CLOSE_PROTOCOL ||
                  err_close_code(rc) == WS_CLOSE_TOO_BIG);
            return;
        }
        CHECK(h.len <= LIMIT && seq.msg_len <= LIMIT);
        CHECK(seq.msg_op == 0 || seq.msg_op == WS_OP_TEXT || seq.msg_op == WS_OP_BINARY);
        pos += h.hlen;

        avail = size - pos < h.len ? size - pos : (size_t)h.len;
        payload = malloc(avail + 1);
        CHECK(payload != NULL);
        memcpy(payload, data + pos, avail);
        split = avail ? payload[0] % (avail + 1) : 0;
        if (h.masked) {
            check_mask(payload, avail, h.mask, split);
            if (op == WS_OP_TEXT)
                check_remask(payload, avail, h.mask, split);
            ws_mask(payload, avail, h.mask, 0);
        }
        if (op == WS_OP_TEXT) {
            check_utf8_split(payload, avail, split);
            if (ws_utf8_feed(&text, payload, avail) != 0) {
                free(payload);
                return;
            }
            /* RFC 6455 §8.1: a text message must end on a character boundary. */
            if (h.fin && avail == h.len) {
                if (!ws_utf8_complete(&text)) {
                    free(payload);
                    return;
                }
                text = (struct ws_utf8){0};
            }
        } else if (op == WS_OP_CLOSE && avail == h.len) {
            check_close(payload, avail);
        }
        free(payload);
        if (avail < h.len)
            return;
        pos += avail;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, false);
    run(data, size, true);
    return 0;
}
