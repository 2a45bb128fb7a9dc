/* libFuzzer target for what a backend sends to a plain request: a response
 * head parsed by the strict parser and its framing decided, then the body
 * bytes run through the chunked decoder. The decoder must give the same
 * result whether fed at once or split at any point, in place or into a
 * separate buffer, and counting-only (out NULL) must consume exactly what
 * decoding consumes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/handshake.h"
#include "http/parser.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAXH 64

/* Decode all of in[0..n) in pieces of `step` bytes. Returns the bytes
 * consumed (stops at done or error); *err receives the error or 0. */
static size_t decode_split(const char *in, size_t n, size_t step, char *out, size_t *outn,
                           bool count_only, bool *done, int *err)
{
    struct http_chunked c = {0};
    size_t used = 0;

    *outn = 0;
    *err = 0;
    while (used < n && !c.done) {
        size_t take = n - used < step ? n - used : step;
        size_t o = 0;
        int r = http_chunked_decode(&c, in + used, take, count_only ? NULL : out + *outn,
                                    count_only ? 0 : n - *outn, &o);
        if (r < 0) {
            *err = r;
            break;
        }
        used += (size_t)r;
        *outn += o;
        if (r == 0 && o == 0 && !c.done)
            break;
    }
    *done = c.done;
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header h[MAXH];
    struct http_response resp = {.headers = h};
    struct http_limits lim = {8192, MAXH};
    struct http_body body;
    size_t scan = 0;
    const char *p = (const char *)data;
    int rc = http_parse_response(p, size, &lim, &resp, &scan);

    if (rc > 0) {
        CHECK((size_t)rc <= size);
        int f = http_response_body(&resp, false, &body);
        CHECK(f == 0 || f == ERR_HTTP_FRAMING);
        if (f == 0 && (resp.status < 200 || resp.status == 204 || resp.status == 304))
            CHECK(body.kind == HTTP_BODY_NONE);
        int g = http_response_body(&resp, true, &body);
        CHECK(g == f);
        if (g == 0)
            CHECK(body.kind == HTTP_BODY_NONE);
        struct http_response again = {.headers = h};
        size_t scan2 = 0;
        CHECK(http_parse_response(p, size, &lim, &again, &scan2) == rc);
    }

    /* The chunked decoder on the whole input. */
    char *ref = malloc(size + 1), *out = malloc(size + 1), *inplace = malloc(size + 1);
    CHECK(ref && out && inplace);
    size_t refn, refused, n2;
    bool refdone, d2;
    int referr, e2;
    refused = decode_split(p, size, size ? size : 1, ref, &refn, false, &refdone, &referr);
    CHECK(refn <= refused);
    for (size_t step = 1; step <= 7 && step < size; step++) {
        size_t u = decode_split(p, size, step, out, &n2, false, &d2, &e2);
        CHECK(d2 == refdone && (e2 != 0) == (referr != 0));
        if (!referr) {
            CHECK(u == refused && n2 == refn && memcmp(out, ref, refn) == 0);
        }
        u = decode_split(p, size, step, NULL, &n2, true, &d2, &e2);
        CHECK(d2 == refdone && (e2 != 0) == (referr != 0));
        if (!referr)
            CHECK(u == refused && n2 == refn);
    }
    /* In place: out == in. */
    memcpy(inplace, p, size);
    {
        struct http_chunked c = {0};
        size_t o = 0;
        int r = http_chunked_decode(&c, inplace, size, inplace, size, &o);
        if (!referr) {
            CHECK(r >= 0 && (size_t)r == refused && o == refn && memcmp(inplace, ref, refn) == 0);
        }
    }
    free(ref);
    free(out);
    free(inplace);
    return 0;
}
