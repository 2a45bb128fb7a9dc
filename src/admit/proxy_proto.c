/* The PROXY protocol, versions 1 (text) and 2 (binary): see proxy_proto.h
 * and HAProxy's proxy-protocol.txt, which defines both. */
#include "admit/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/err.h"

#define V1_MAX 107 /* "PROXY UNKNOWN" with the longest addresses and ports, CRLF included */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A decimal port, 0..65535, without leading zeros. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool parse_addr(int family, const char *s, size_t n, struct sockaddr_storage *out)
{
    char buf[64];

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof(*out));
    out->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        return inet_pton(AF_INET, buf, &((struct sockaddr_in *)out)->sin_addr) == 1;
    return inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)out)->sin6_addr) == 1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" */
static int parse_v1(const uint8_t *p, size_t n, struct proxy_info *out)
{
    static const char prefix[] = "PROXY ";
    const char *s = (const char *)p;
    size_t lim = n < V1_MAX ? n : V1_MAX;
    const char *crlf = NULL;
    const char *f[5];
    size_t fl[5], nf = 0;

    if (memcmp(s, prefix, n < 6 ? n : 6) != 0)
        return ERR_PROXY;
    for (size_t i = 0; i < lim; i++) {
        if (s[i] == '\r') {
            if (i + 1 == lim)
                break; /* the LF may follow */
            if (s[i + 1] != '\n')
                return ERR_PROXY;
            crlf = s + i;
            break;
        }
        /* Only printable text before the CRLF. */
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return ERR_PROXY;
    }
    if (!crlf)
        return n >= V1_MAX ? ERR_PROXY : ERR_AGAIN;
    /* Fields after "PROXY ", separated by single spaces. */
    const char *q = s + 6;
    while (q <= crlf && nf < 5) {
        const char *sp = memchr(q, ' ', (size_t)(crlf - q));
        const char *e = sp ? sp : crlf;
        f[nf] = q;
        fl[nf] = (size_t)(e - q);
        nf++;
        if (!sp)
            break;
        q = sp + 1;
    }
    out->version = 1;
    if (nf >= 1 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
        /* The proxy does not know (or say): use the connection's own
         * addresses. Whatever follows is ignored. */
        out->local = true;
        return (int)(crlf - s) + 2;
    }
    /* Exactly five fields: the last one ends at the CRLF. */
    if (nf != 5 || (q + fl[4]) != crlf)
        return ERR_PROXY;
    int family;
    if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
        family = AF_INET;
    else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return ERR_PROXY;
    struct sockaddr_storage dst;
    uint16_t sport, dport;
    if (!parse_addr(family, f[1], fl[1], &out->src) || !parse_addr(family, f[2], fl[2], &dst) ||
        !parse_port(f[3], fl[3], &sport) || !parse_port(f[4], fl[4], &dport))
        return ERR_PROXY;
    set_port(&out->src, sport);
    out->local = false;
    return (int)(crlf - s) + 2;
}

static int parse_v2(const uint8_t *p, size_t n, struct proxy_info *out)
{
    size_t len, need;
    unsigned ver, cmd, fam, proto;

    if (memcmp(p, v2_sig, n < 12 ? n : 12) != 0)
        return ERR_PROXY;
    if (n < 16)
        return ERR_AGAIN;
    ver = p[12] >> 4;
    cmd = p[12] & 0x0f;
    fam = p[13] >> 4;
    proto = p[13] & 0x0f;
    len = (size_t)p[14] << 8 | p[15];
    if (ver != 2 || cmd > 1 || len > PROXY_V2_MAX_BODY)
        return ERR_PROXY;
    if (n < 16 + len)
        return ERR_AGAIN;
    out->version = 2;
    out->local = true;
    if (cmd == 0) /* LOCAL: the proxy's own connection (a health check) */
        return (int)(16 + len);
    if (proto != 0 && proto != 1) /* not a stream: not for a TCP listener */
        return ERR_PROXY;
    memset(&out->src, 0, sizeof(out->src));
    if (fam == 1) {
        struct sockaddr_in *a = (struct sockaddr_in *)&out->src;
        need = 12;
        if (len < need)
            return ERR_PROXY;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, p + 16, 4);
        memcpy(&a->sin_port, p + 24, 2);
        out->local = false;
    } else if (fam == 2) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->src;
        need = 36;
        if (len < need)
            return ERR_PROXY;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, p + 16, 16);
        memcpy(&a->sin6_port, p + 48, 2);
        out->local = false;
    } else if (fam > 3) {
        return ERR_PROXY;
    }
    /* AF_UNSPEC and AF_UNIX: no usable address; TLVs after the addresses
     * are skipped (the length covers them). */
    return (int)(16 + len);
}

int proxy_parse(const uint8_t *p, size_t n, struct proxy_info *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return ERR_AGAIN;
    if (p[0] == 'P')
        return parse_v1(p, n, out);
    if (p[0] == 0x0D)
        return parse_v2(p, n, out);
    return ERR_PROXY;
}
