/* The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer that
 * forwards TCP connections states the original client's address in a
 * header before the connection's own bytes (TLS or HTTP). Parsed from
 * attacker-controlled bytes only after the listener says to expect it and
 * the peer is a trusted proxy; fuzzed (fuzz/proxy_fuzz.c). */
#ifndef WSG_ADMIT_PROXY_PROTO_H
#define WSG_ADMIT_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest header accepted: v1's 107 bytes; v2's 16 plus up to this many
 * bytes of addresses and TLVs (load balancers send a few dozen). */
#define PROXY_V2_MAX_BODY 1024
#define PROXY_MAX         (16 + PROXY_V2_MAX_BODY)

struct proxy_info {
    bool local;                  /* no address: v1 UNKNOWN, v2 LOCAL or an
                                    unsupported family (health checks) */
    struct sockaddr_storage src; /* the client, when !local */
    int version;                 /* 1 or 2 */
};

/* Parse a header at the start of p[0..n). Returns its length (the bytes to
 * consume), ERR_AGAIN when more bytes are needed (n < the header's
 * length, and what there is fits the format), or ERR_PROXY when the bytes
 * are not a valid PROXY header. */
int proxy_parse(const uint8_t *p, size_t n, struct proxy_info *out);

#endif
