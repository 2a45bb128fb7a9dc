#include "core/rand.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "core/err.h"

#define ROTL(v, c) (((v) << (c)) | ((v) >> (32 - (c))))
#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 16);                                                                           \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 12);                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 8);                                                                            \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 7);                                                                            \
    } while (0)

static int seed(struct rng *r)
{
    uint8_t s[sizeof(r->key) + sizeof(r->nonce)];
    size_t got = 0;

    while (got < sizeof(s)) {
        ssize_t n = getrandom(s + got, sizeof(s) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ERR_SYS;
        }
        got += (size_t)n;
    }
    memcpy(r->key, s, sizeof(r->key));
    memcpy(r->nonce, s + sizeof(r->key), sizeof(r->nonce));
    r->counter = 0;
    return 0;
}

/* RFC 8439 §2.3: 20 rounds over the constant, key, counter and nonce words. */
static void block(struct rng *r)
{
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    uint32_t x[16];

    memcpy(in + 4, r->key, sizeof(r->key));
    in[12] = r->counter++;
    memcpy(in + 13, r->nonce, sizeof(r->nonce));
    memcpy(x, in, sizeof(x));
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        x[i] += in[i];
    memcpy(r->out, x, sizeof(r->out));
    r->used = 0;
    /* A 32-bit counter covers 256 GiB of keystream; take a fresh key long
     * before it could repeat. If getrandom fails here the old key stays and
     * the counter wraps, which only weakens masking, never breaks framing. */
    if (r->counter == 0xffffffffu)
        seed(r);
}

int rng_init(struct rng *r)
{
    int rc = seed(r);

    if (rc < 0)
        return rc;
    block(r);
    return 0;
}

void rng_bytes(struct rng *r, void *p, size_t n)
{
    uint8_t *d = p;

    while (n > 0) {
        size_t take;
        if (r->used == sizeof(r->out))
            block(r);
        take = sizeof(r->out) - r->used;
        if (take > n)
            take = n;
        memcpy(d, r->out + r->used, take);
        /* Forward secrecy for what was handed out. */
        memset(r->out + r->used, 0, take);
        r->used += (unsigned)take;
        d += take;
        n -= take;
    }
}

uint32_t rng_u32(struct rng *r)
{
    uint32_t v;

    /* One call per relayed client frame: the common case is four bytes
     * still in the current block. */
    if (sizeof(r->out) - r->used >= sizeof(v)) {
        memcpy(&v, r->out + r->used, sizeof(v));
        memset(r->out + r->used, 0, sizeof(v));
        r->used += (unsigned)sizeof(v);
        return v;
    }
    rng_bytes(r, &v, sizeof(v));
    return v;
}
