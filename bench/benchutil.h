/* Helpers shared by the benchmark tools (wsbench, wsecho): clock, buffer
 * pool, address and size parsing, HTTP header lookup and the RFC 6455
 * handshake digest. Not part of wsgate itself. */
#ifndef WSG_BENCH_BENCHUTIL_H
#define WSG_BENCH_BENCHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BU_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 digest, without NUL */
#define BU_KEY_LEN    24 /* base64 of a 16-byte Sec-WebSocket-Key nonce, without NUL */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bu_now_ns(void);

/* A fast generator for masking keys, key nonces and payload templates:
 * SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), seeded from getrandom(2). Not cryptographic:
 * a load tool only needs keys that vary from frame to frame (RFC 6455 §5.3
 * asks clients for unpredictable ones to protect intermediaries from cache
 * poisoning, which a benchmark on 127.0.0.1 does not face). One per thread. */
struct bu_rand {
    uint64_t s; /* state: advances by a fixed odd constant per draw */
};

/* Seed r from the kernel. Returns 0, or -1 with errno set. */
int bu_rand_init(struct bu_rand *r);

/* The next 64 random bits. */
static inline uint64_t bu_rand_next(struct bu_rand *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Fill p[0..n) with random bytes. */
void bu_rand_bytes(struct bu_rand *r, void *p, size_t n);

/* Fixed-size byte buffers handed out from a free list, so an idle connection
 * holds none and a busy one does not call malloc per message. */
struct bu_pool {
    void **free;    /* cached buffers */
    size_t nfree;   /* buffers in free[] */
    size_t maxfree; /* free[] capacity; buffers beyond it are freed */
    size_t size;    /* bytes per buffer */
};

/* A window [head, tail) of live bytes in a buffer of pool->size bytes.
 * p is NULL while the buffer is not held. */
struct bu_buf {
    uint8_t *p;  /* from bu_pool_get, or NULL */
    size_t head; /* first live byte */
    size_t tail; /* one past the last live byte */
};

/* Initialise a pool of size-byte buffers keeping at most maxfree spare ones.
 * Returns 0 or -1 (out of memory). */
int bu_pool_init(struct bu_pool *pool, size_t size, size_t maxfree);

/* Free every cached buffer and the free list itself. */
void bu_pool_destroy(struct bu_pool *pool);

/* Make b hold a buffer (no-op when it already does). Returns 0 or -1 (out of
 * memory). */
int bu_buf_take(struct bu_pool *pool, struct bu_buf *b);

/* Give b's buffer back to the pool; b becomes empty with p NULL. */
void bu_buf_drop(struct bu_pool *pool, struct bu_buf *b);

/* Live bytes in b. */
static inline size_t bu_buf_len(const struct bu_buf *b)
{
    return b->tail - b->head;
}

/* Move the live bytes of b to the start of its buffer when fewer than need
 * bytes are free at the end. Returns the bytes free at the end afterwards. */
size_t bu_buf_room(const struct bu_pool *pool, struct bu_buf *b, size_t need);

/* Parse "HOST:PORT" (HOST an IPv4 literal, a name, or [IPv6]) into *ss,
 * resolving names with getaddrinfo. Port 0 is accepted. Returns 0, or -1
 * with a message in err[0..errlen). */
int bu_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                      size_t errlen);

/* Format ss as "ADDR:PORT" ("[ADDR]:PORT" for IPv6) into out. */
void bu_format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen);

/* Parse a byte count: a decimal number with an optional suffix k/K/KiB
 * (x1024) or m/M/MiB (x1048576). Returns 0, or -1 when s is not such a
 * number or exceeds max. */
int bu_parse_size(const char *s, uint64_t max, uint64_t *out);

/* Parse a non-negative decimal number of seconds (fractions allowed).
 * Returns 0 or -1. */
int bu_parse_seconds(const char *s, double *out);

/* Parse an unsigned decimal integer in [min, max]. Returns 0 or -1. */
int bu_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit. Returns the soft limit
 * in force afterwards. */
unsigned long bu_raise_nofile(void);

/* A non-blocking listening TCP socket on *ss (SO_REUSEADDR, backlog
 * SOMAXCONN); *ss then holds the bound address, with the port the kernel
 * picked for port 0. Returns the descriptor, or -1 with a message in
 * err[0..errlen). */
int bu_listen(struct sockaddr_storage *ss, socklen_t sslen, char *err, size_t errlen);

/* Run handler on SIGTERM and SIGINT. Returns 0, or -1 with errno set. */
int bu_on_stop(void (*handler)(int));

/* Find the end of an HTTP head (the blank line) in p[0..n). Returns the
 * head's length including "\r\n\r\n", or 0 when it is not complete. */
size_t bu_http_head_end(const uint8_t *p, size_t n);

/* Value of the first header field named name (case-insensitive) in the head
 * p[0..n) (start line included), with surrounding whitespace removed.
 * Returns a pointer into p and its length in *vlen, or NULL when absent. */
const char *bu_http_header(const char *p, size_t n, const char *name, size_t *vlen);

/* True when the comma-separated list v[0..vlen) holds token
 * (case-insensitive), as in "Connection: keep-alive, Upgrade". */
bool bu_has_token(const char *v, size_t vlen, const char *token);

/* Sec-WebSocket-Accept for key[0..keylen) (RFC 6455 §4.2.2: base64 of the
 * SHA-1 of the key followed by the fixed GUID) into out, NUL-terminated. */
void bu_ws_accept(const char *key, size_t keylen, char out[BU_ACCEPT_LEN + 1]);

/* Base64 of a 16-byte nonce into out, NUL-terminated: a Sec-WebSocket-Key. */
void bu_ws_key(const uint8_t nonce[16], char out[BU_KEY_LEN + 1]);

#endif
