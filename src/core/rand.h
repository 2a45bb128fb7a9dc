/* Per-worker cryptographically secure random bytes for masking keys
 * (RFC 6455 §5.3: "unpredictable"), nonces and ids: OpenSSL's DRBG
 * (RAND_bytes, an AES CTR_DRBG per NIST SP 800-90A, seeded and reseeded from
 * the operating system), drawn RNG_BUF bytes at a time so that a masking
 * key costs a copy, not a call. Not thread-safe: one generator per thread. */
#ifndef WSG_CORE_RAND_H
#define WSG_CORE_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RNG_BUF 4096 /* bytes per draw: 1,024 masking keys */

struct rng {
    uint8_t out[RNG_BUF]; /* current draw */
    unsigned used;        /* bytes of out already handed out */
    bool failing;         /* the last refill failed (logged once) */
};

/* First draw. Returns 0, or ERR_SYS when no random source works. */
int rng_init(struct rng *r);

/* Fill p[0..n) with random bytes. */
void rng_bytes(struct rng *r, void *p, size_t n);

/* Four random bytes, e.g. a frame's masking key. */
uint32_t rng_u32(struct rng *r);

#endif
