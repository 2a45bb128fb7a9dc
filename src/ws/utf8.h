/* Incremental UTF-8 validation (RFC 3629): rejects overlong forms,
 * surrogates (U+D800..DFFF) and code points above U+10FFFF, and fails as
 * early as the first byte that cannot continue a valid sequence, across any
 * split of the input. */
#ifndef WSG_WS_UTF8_H
#define WSG_WS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws_utf8 {
    uint32_t state; /* internal; zero-initialise (0 = at a character boundary) */
};

/* Feed p[0..n). Returns 0 while the input so far is a valid prefix, or
 * ERR_WS_UTF8. After an error the state stays failed. */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n);

/* Feed p[0..n) of a payload masked with key `in`, n bytes starting `offset`
 * bytes into the payload (RFC 6455 §5.3), and leave it masked with key
 * `out` instead: validation and re-masking in one pass over the bytes.
 * Returns like ws_utf8_feed; after an error p is left partly rewritten. */
int ws_utf8_feed_remask(struct ws_utf8 *u, uint8_t *p, size_t n, const uint8_t in[4],
                        const uint8_t out[4], uint64_t offset);

/* True when the input so far ends at a character boundary (a complete text). */
bool ws_utf8_complete(const struct ws_utf8 *u);

/* One-shot check of a complete text. */
bool ws_utf8_valid(const uint8_t *p, size_t n);

#endif
