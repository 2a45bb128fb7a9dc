#include "core/rand.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "core/err.h"
#include "core/log.h"

/* The kernel's generator, for when OpenSSL's fails. Returns 0 or ERR_SYS. */
static int from_kernel(uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = getrandom(p + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return ERR_SYS;
        }
        got += (size_t)k;
    }
    return 0;
}

static int draw(struct rng *r)
{
    if (RAND_bytes(r->out, sizeof(r->out)) != 1 && from_kernel(r->out, sizeof(r->out)) < 0)
        return ERR_SYS;
    r->used = 0;
    return 0;
}

/* Next draw. Both sources failing at run time leaves the last draw in
 * place: keys then repeat. The client never sees the keys wsgate puts on
 * frames to the backend, so masking still hides them from it; framing is
 * unaffected and connections carry on. */
static void refill(struct rng *r)
{
    if (draw(r) < 0) {
        if (!r->failing)
            log_simple(LOG_ERROR, "random source failed", "masking keys repeat until it recovers");
        r->failing = true;
        r->used = 0;
    } else if (r->failing) {
        log_simple(LOG_WARN, "random source recovered", NULL);
        r->failing = false;
    }
}

int rng_init(struct rng *r)
{
    r->failing = false;
    return draw(r);
}

void rng_bytes(struct rng *r, void *p, size_t n)
{
    uint8_t *d = p;

    while (n > 0) {
        size_t take;
        if (r->used == sizeof(r->out))
            refill(r);
        take = sizeof(r->out) - r->used;
        if (take > n)
            take = n;
        /* Handed-out bytes are not wiped: every use (masking keys, key
         * nonces, ping payloads, request ids) puts them on the wire or in
         * a log, and a failed refill reuses them. */
        memcpy(d, r->out + r->used, take);
        r->used += (unsigned)take;
        d += take;
        n -= take;
    }
}

uint32_t rng_u32(struct rng *r)
{
    uint32_t v;

    /* One call per relayed client frame: the common case is four bytes
     * still in the current draw. */
    if (sizeof(r->out) - r->used >= sizeof(v)) {
        memcpy(&v, r->out + r->used, sizeof(v));
        r->used += (unsigned)sizeof(v);
        return v;
    }
    rng_bytes(r, &v, sizeof(v));
    return v;
}
