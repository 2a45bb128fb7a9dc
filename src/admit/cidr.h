/* Address ranges (CIDR) for allow/deny lists and trusted proxies. IPv4
 * and IPv6; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4
 * ranges, as a dual-stack socket reports IPv4 clients that way. */
#ifndef WSG_ADMIT_CIDR_H
#define WSG_ADMIT_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    uint8_t addr[16]; /* network address; IPv4 in the first 4 bytes */
    uint8_t bits;     /* prefix length */
    bool v6;
};

struct cidr_list {
    struct cidr *v;
    size_t n;
};

/* "10.0.0.0/8", "192.0.2.7" (a /32), "2001:db8::/32", "::1". Host bits
 * set below the prefix are an error ("10.0.0.1/8": did you mean /32?).
 * Returns 0 or -1 with a static reason in *why. */
int cidr_parse(const char *s, struct cidr *out, const char **why);

/* Whether the address (an AF_INET or AF_INET6 sockaddr) is in a range of
 * the list. */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* The same for an address as text ("192.0.2.7", "2001:db8::1"), as found
 * in X-Forwarded-For; false for text that is not an address. */
bool cidr_list_match_text(const struct cidr_list *l, const char *s, size_t n);

/* The address of an AF_INET or AF_INET6 sockaddr as bytes: IPv4 (also
 * v4-mapped) in the first 4, IPv6 in all 16 (*v6 set); false for other
 * families. */
bool cidr_addr_bytes(const struct sockaddr *sa, uint8_t out[16], bool *v6);

/* Text to a sockaddr (port 0); false when not an address. */
bool cidr_text_to_addr(const char *s, size_t n, struct sockaddr_storage *out);

void cidr_list_free(struct cidr_list *l);

#endif
