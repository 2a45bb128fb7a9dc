/* Per-worker cryptographically secure random bytes: a ChaCha20 keystream
 * (RFC 8439 block function) keyed from getrandom(2) once, so masking keys
 * (RFC 6455 §5.3: "unpredictable") and nonces cost no syscall each.
 * Not thread-safe: one generator per thread. */
#ifndef WSG_CORE_RAND_H
#define WSG_CORE_RAND_H

#include <stddef.h>
#include <stdint.h>

struct rng {
    uint32_t key[8];   /* from getrandom */
    uint32_t nonce[3]; /* from getrandom */
    uint32_t counter;  /* block counter; rekeyed from getrandom before it wraps */
    uint8_t out[64];   /* current keystream block */
    unsigned used;     /* bytes of out already handed out */
};

/* Seed from getrandom(2). Returns 0 or ERR_SYS. */
int rng_init(struct rng *r);

/* Fill p[0..n) with random bytes. */
void rng_bytes(struct rng *r, void *p, size_t n);

/* Four random bytes, e.g. a frame's masking key. */
uint32_t rng_u32(struct rng *r);

#endif
