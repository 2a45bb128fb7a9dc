#include "benchutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */

uint64_t bu_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer (clock_gettime(2)). */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bu_rand_init(struct bu_rand *r)
{
    uint8_t *p = (uint8_t *)&r->s;
    size_t got = 0;

    /* getrandom(2) may return fewer bytes than asked when a signal arrives. */
    while (got < sizeof(r->s)) {
        ssize_t n = getrandom(p + got, sizeof(r->s) - got, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

void bu_rand_bytes(struct bu_rand *r, void *p, size_t n)
{
    uint8_t *d = p;

    while (n > 0) {
        uint64_t v = bu_rand_next(r);
        size_t take = n < sizeof(v) ? n : sizeof(v);

        memcpy(d, &v, take);
        d += take;
        n -= take;
    }
}

int bu_pool_init(struct bu_pool *pool, size_t size, size_t maxfree)
{
    pool->free = calloc(maxfree ? maxfree : 1, sizeof(*pool->free));
    if (!pool->free)
        return -1;
    pool->nfree = 0;
    pool->maxfree = maxfree;
    pool->size = size;
    return 0;
}

void bu_pool_destroy(struct bu_pool *pool)
{
    while (pool->nfree > 0)
        free(pool->free[--pool->nfree]);
    free(pool->free);
    pool->free = NULL;
}

int bu_buf_take(struct bu_pool *pool, struct bu_buf *b)
{
    if (b->p)
        return 0;
    if (pool->nfree > 0) {
        b->p = pool->free[--pool->nfree];
    } else {
        b->p = malloc(pool->size);
        if (!b->p)
            return -1;
    }
    b->head = b->tail = 0;
    return 0;
}

void bu_buf_drop(struct bu_pool *pool, struct bu_buf *b)
{
    if (!b->p)
        return;
    if (pool->nfree < pool->maxfree)
        pool->free[pool->nfree++] = b->p;
    else
        free(b->p);
    b->p = NULL;
    b->head = b->tail = 0;
}

size_t bu_buf_room(const struct bu_pool *pool, struct bu_buf *b, size_t need)
{
    if (b->head == b->tail) {
        b->head = b->tail = 0;
    } else if (pool->size - b->tail < need && b->head > 0) {
        memmove(b->p, b->p + b->head, b->tail - b->head);
        b->tail -= b->head;
        b->head = 0;
    }
    return pool->size - b->tail;
}

int bu_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                      size_t errlen)
{
    char host[256];
    const char *colon, *hs = s, *he;
    unsigned long port;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            snprintf(err, errlen, "'%s': expected [IPV6]:PORT", s);
            return -1;
        }
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s': expected HOST:PORT", s);
            return -1;
        }
        he = colon;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof(host)) {
        snprintf(err, errlen, "'%s': bad host", s);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (bu_parse_uint(colon + 1, 0, 65535, &port) < 0) {
        snprintf(err, errlen, "'%s': port must be 0..65535", s);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else {
        snprintf(err, errlen, "'%s': not an IP address", host);
        return -1;
    }
    return 0;
}

void bu_format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
            snprintf(ip, sizeof(ip), "?");
        snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
            snprintf(ip, sizeof(ip), "?");
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
}

int bu_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bu_parse_size(const char *s, uint64_t max, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},        {"k", 1024},    {"K", 1024},      {"KiB", 1024}, {"kiB", 1024},
        {"m", 1048576}, {"M", 1048576}, {"MiB", 1048576}, {"b", 1},      {"B", 1},
    };
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > max / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

int bu_parse_seconds(const char *s, double *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1e7)
        return -1;
    *out = v;
    return 0;
}

unsigned long bu_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        /* Keep the old limit when the raise is refused. */
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return 1024;
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1UL << 20 : (unsigned long)rl.rlim_cur;
}

int bu_listen(struct sockaddr_storage *ss, socklen_t sslen, char *err, size_t errlen)
{
    int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *what = "socket";

    if (fd < 0)
        goto fail;
    what = "setsockopt";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    what = "bind";
    if (bind(fd, (struct sockaddr *)ss, sslen) < 0)
        goto fail;
    what = "listen";
    if (listen(fd, SOMAXCONN) < 0)
        goto fail;
    what = "getsockname";
    sslen = sizeof(*ss);
    if (getsockname(fd, (struct sockaddr *)ss, &sslen) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "%s: %s", what, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int bu_on_stop(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -1;
    return 0;
}

size_t bu_http_head_end(const uint8_t *p, size_t n)
{
    for (size_t i = 3; i < n; i++) {
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return i + 1;
    }
    return 0;
}

const char *bu_http_header(const char *p, size_t n, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = p + n, *line = p;

    /* Skip the start line. */
    while (line < end && *line != '\n')
        line++;
    while (line < end) {
        const char *eol, *v, *ve;

        line++;
        eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
            strncasecmp(line, name, nlen) == 0) {
            v = line + nlen + 1;
            ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

bool bu_has_token(const char *v, size_t vlen, const char *token)
{
    size_t tlen = strlen(token), i = 0;

    while (i < vlen) {
        size_t s, e;

        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < vlen && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tlen && strncasecmp(v + s, token, tlen) == 0)
            return true;
    }
    return false;
}

void bu_ws_accept(const char *key, size_t keylen, char out[BU_ACCEPT_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    char buf[256 + sizeof(WS_GUID)];

    /* A longer key is not valid anyway (RFC 6455 §4.1: 16 bytes, base64);
     * truncating only yields an accept value the peer will reject. */
    if (keylen > 256)
        keylen = 256;
    memcpy(buf, key, keylen);
    memcpy(buf + keylen, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1((const unsigned char *)buf, keylen + sizeof(WS_GUID) - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

void bu_ws_key(const uint8_t nonce[16], char out[BU_KEY_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)out, nonce, 16);
}
