/* Address ranges (see cidr.h). */
#include "admit/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *s, struct cidr *out, const char **why)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long bits;
    char *end;
    unsigned max;

    memset(out, 0, sizeof(*out));
    if (alen == 0 || alen >= sizeof(buf)) {
        *why = "expected an address or a range such as 10.0.0.0/8 or 2001:db8::/32";
        return -1;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->v6 = true;
        max = 128;
    } else {
        *why = "expected an address or a range such as 10.0.0.0/8 or 2001:db8::/32";
        return -1;
    }
    bits = max;
    if (slash) {
        if (slash[1] < '0' || slash[1] > '9') {
            *why = "the prefix length after '/' must be a number";
            return -1;
        }
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || bits > max) {
            *why =
                out->v6 ? "an IPv6 prefix length is 0 to 128" : "an IPv4 prefix length is 0 to 32";
            return -1;
        }
    }
    out->bits = (uint8_t)bits;
    /* Host bits must be zero: "10.0.0.1/8" is more likely a typo for /32
     * than a way to write 10.0.0.0/8. */
    for (unsigned i = (unsigned)bits; i < max; i++) {
        if (out->addr[i / 8] & (0x80u >> (i % 8))) {
            *why = "address bits are set past the prefix length (e.g. 10.0.0.1/8: write 10.0.0.0/8 "
                   "or 10.0.0.1/32)";
            return -1;
        }
    }
    return 0;
}

static bool in_range(const struct cidr *c, const uint8_t *a)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (memcmp(c->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

bool cidr_addr_bytes(const struct sockaddr *sa, uint8_t out[16], bool *v6)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        *v6 = false;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(out, a + 12, 4);
            *v6 = false;
        } else {
            memcpy(out, a, 16);
            *v6 = true;
        }
        return true;
    }
    return false;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
    uint8_t a[16];
    bool v6;

    if (!cidr_addr_bytes(sa, a, &v6))
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].v6 == v6 && in_range(&l->v[i], a))
            return true;
    return false;
}

bool cidr_text_to_addr(const char *s, size_t n, struct sockaddr_storage *out)
{
    char buf[64];

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)out)->sin_addr) == 1) {
        out->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)out)->sin6_addr) == 1) {
        out->ss_family = AF_INET6;
        return true;
    }
    return false;
}

bool cidr_list_match_text(const struct cidr_list *l, const char *s, size_t n)
{
    struct sockaddr_storage ss;

    return cidr_text_to_addr(s, n, &ss) && cidr_list_match(l, (const struct sockaddr *)&ss);
}

void cidr_list_free(struct cidr_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
