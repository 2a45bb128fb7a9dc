/* Admission rules: CIDR parsing and matching (IPv4, IPv6, v4-mapped),
 * Origin rules (exact, wildcard, default ports, null), the X-Forwarded-For
 * walk behind trusted proxies, and the steps a route builds from YAML
 * through the real config loader (subprotocol filtering, IP and Origin
 * denials with their error codes). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admit/admit.h"
#include "admit/admit_conf.h"
#include "admit/cidr.h"
#include "admit/proxy_proto.h"
#include "config/config.h"
#include "core/err.h"
#include "http/parser.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;

    assert_true(cidr_text_to_addr(text, strlen(text), &ss));
    return ss;
}

static struct cidr_list list_of(const char *const *items, size_t n)
{
    struct cidr_list l = {calloc(n, sizeof(struct cidr)), 0};
    const char *why = NULL;

    for (size_t i = 0; i < n; i++) {
        if (cidr_parse(items[i], &l.v[l.n], &why) != 0)
            fail_msg("%s: %s", items[i], why);
        l.n++;
    }
    return l;
}

static bool in(const struct cidr_list *l, const char *a)
{
    struct sockaddr_storage ss = addr(a);

    return cidr_list_match(l, (const struct sockaddr *)&ss);
}

static void test_cidr_match(void **state)
{
    static const char *const items[] = {"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1",
                                        "172.16.0.0/12"};
    struct cidr_list l = list_of(items, 5);

    assert_true(in(&l, "10.1.2.3"));
    assert_true(in(&l, "10.255.255.255"));
    assert_false(in(&l, "11.0.0.0"));
    assert_true(in(&l, "192.0.2.7"));
    assert_false(in(&l, "192.0.2.8"));
    assert_true(in(&l, "172.31.255.1"));
    assert_false(in(&l, "172.32.0.1"));
    assert_true(in(&l, "2001:db8:ffff::1"));
    assert_false(in(&l, "2001:db9::1"));
    assert_true(in(&l, "::1"));
    assert_false(in(&l, "::2"));
    /* A dual-stack socket's IPv4 client matches IPv4 ranges. */
    assert_true(in(&l, "::ffff:10.9.8.7"));
    assert_false(in(&l, "::ffff:11.9.8.7"));
    /* ... and never an IPv6 range by accident. */
    static const char *const any6[] = {"::/0"};
    struct cidr_list all6 = list_of(any6, 1);
    assert_false(in(&all6, "10.0.0.1"));
    assert_true(in(&all6, "2001:db8::5"));
    static const char *const any4[] = {"0.0.0.0/0"};
    struct cidr_list all4 = list_of(any4, 1);
    assert_true(in(&all4, "203.0.113.9"));
    assert_false(in(&all4, "2001:db8::5"));
    cidr_list_free(&l);
    cidr_list_free(&all6);
    cidr_list_free(&all4);
}

static void test_cidr_errors(void **state)
{
    static const char *const bad[] = {"",
                                      "10.0.0.0/",
                                      "10.0.0.0/33",
                                      "10.0.0.1/8",
                                      "10.0.0/8",
                                      "2001:db8::/129",
                                      "2001:db8::1/32",
                                      "host.example",
                                      "10.0.0.0/8x",
                                      "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cidr c;
        const char *why = NULL;
        if (cidr_parse(bad[i], &c, &why) == 0)
            fail_msg("\"%s\" should be refused", bad[i]);
        assert_non_null(why);
    }
    struct cidr c;
    const char *why = NULL;
    assert_int_equal(cidr_parse("10.0.0.1/8", &c, &why), -1);
    assert_non_null(strstr(why, "10.0.0.0/8"));
}

static bool origin_ok(const char *rules, const char *origin)
{
    struct origin_rule r[8];
    size_t n = 0;
    char *copy = strdup(rules), *save = NULL;
    const char *why = NULL;
    bool ok;

    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (origin_rule_parse(t, &r[n], &why) != 0)
            fail_msg("rule %s: %s", t, why);
        n++;
    }
    ok = origin_allowed(r, n, origin, strlen(origin));
    for (size_t i = 0; i < n; i++)
        free(r[i].host);
    free(copy);
    return ok;
}

static void test_origins(void **state)
{
    const char *rules = "https://app.example.com https://*.example.org http://localhost:3000";

    assert_true(origin_ok(rules, "https://app.example.com"));
    assert_true(origin_ok(rules, "https://APP.Example.com"));
    assert_true(origin_ok(rules, "https://app.example.com:443")); /* the default port */
    assert_false(origin_ok(rules, "https://app.example.com:8443"));
    assert_false(origin_ok(rules, "http://app.example.com")); /* the scheme must match */
    assert_false(origin_ok(rules, "https://evil.com"));
    assert_false(origin_ok(rules, "https://app.example.com.evil.com"));
    assert_false(origin_ok(rules, "https://evilapp.example.com"));
    assert_true(origin_ok(rules, "https://chat.example.org"));
    assert_true(origin_ok(rules, "https://a.b.example.org"));
    assert_false(origin_ok(rules, "https://example.org")); /* not the domain itself */
    assert_false(origin_ok(rules, "https://badexample.org"));
    assert_true(origin_ok(rules, "http://localhost:3000"));
    assert_false(origin_ok(rules, "http://localhost"));
    assert_false(origin_ok(rules, "null"));
    assert_true(origin_ok("null", "null"));
    assert_false(origin_ok(rules, "https://app.example.com/path"));
    assert_false(origin_ok(rules, ""));
    assert_false(origin_ok(rules, "app.example.com"));
    assert_true(origin_ok("http://[::1]:8080", "http://[::1]:8080"));
    assert_false(origin_ok("http://[::1]:8080", "http://[::1]"));

    static const char *const bad[] = {
        "https://app.example.com/", "ftp://x.com",         "https://",
        "https://*example.com",     "https://a.*.com",     "*",
        "https://x.com:0",          "https://x.com:99999", "app.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct origin_rule r;
        const char *why = NULL;
        if (origin_rule_parse(bad[i], &r, &why) == 0)
            fail_msg("origin rule \"%s\" should be refused", bad[i]);
    }
}

/* A request with the given extra header lines. */
struct req {
    char buf[2048];
    struct http_header h[32];
    struct http_request r;
};

static void make_req(struct req *q, const char *headers)
{
    struct http_limits lim = {sizeof(q->buf), 32};
    size_t scan = 0;
    int n = snprintf(q->buf, sizeof(q->buf),
                     "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     headers);
    q->r.headers = q->h;
    assert_true(http_parse_request(q->buf, (size_t)n, &lim, &q->r, &scan) > 0);
}

static const char *forwarded(const char *peer, const char *xff)
{
    static const char *const trusted_items[] = {"10.0.0.0/8", "2001:db8::/32"};
    static char out[64];
    struct cidr_list trusted = list_of(trusted_items, 2);
    struct sockaddr_storage p = addr(peer), res;
    struct req q;
    bool got;

    make_req(&q, xff);
    got = admit_forwarded_client(&trusted, (const struct sockaddr *)&p, &q.r, &res);
    cidr_list_free(&trusted);
    if (!got)
        return NULL;
    if (res.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&res)->sin_addr, out, sizeof(out));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&res)->sin6_addr, out, sizeof(out));
    return out;
}

static void test_forwarded_client(void **state)
{
    /* An untrusted peer's X-Forwarded-For is ignored. */
    assert_null(forwarded("203.0.113.5", "X-Forwarded-For: 198.51.100.1\r\n"));
    /* A trusted peer without the header: the peer stands. */
    assert_null(forwarded("10.0.0.2", ""));
    assert_string_equal(forwarded("10.0.0.2", "X-Forwarded-For: 198.51.100.1\r\n"), "198.51.100.1");
    /* The rightmost untrusted entry: a client cannot choose its address by
     * sending its own X-Forwarded-For. */
    assert_string_equal(
        forwarded("10.0.0.2", "X-Forwarded-For: 1.2.3.4, 198.51.100.1, 10.3.3.3\r\n"),
        "198.51.100.1");
    /* Several fields read as one list, in order. */
    assert_string_equal(forwarded("10.0.0.2", "X-Forwarded-For: 1.2.3.4\r\n"
                                              "X-Forwarded-For: 198.51.100.9 , 10.1.1.1\r\n"),
                        "198.51.100.9");
    /* Every entry trusted: the leftmost. */
    assert_string_equal(forwarded("10.0.0.2", "X-Forwarded-For: 10.5.5.5, 10.6.6.6\r\n"),
                        "10.5.5.5");
    /* Garbage stops the walk at the last good entry. */
    assert_string_equal(forwarded("10.0.0.2", "X-Forwarded-For: 1.2.3.4, junk, 10.7.7.7\r\n"),
                        "10.7.7.7");
    assert_null(forwarded("10.0.0.2", "X-Forwarded-For: junk\r\n"));
    assert_string_equal(forwarded("2001:db8::1", "X-Forwarded-For: 2001:db9::7\r\n"),
                        "2001:db9::7");
}

static struct config *load(const char *yaml, char *errs, size_t cap)
{
    char path[] = "/tmp/admit_test_XXXXXX";
    int fd = mkstemp(path);
    struct config *c = NULL;
    FILE *ef = fmemopen(errs, cap - 1, "w");

    memset(errs, 0, cap);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    config_load_file(path, ef, &c);
    fclose(ef);
    unlink(path);
    return c;
}

static int run(const struct admit_conf *a, const char *headers, const char *client, bool upgrade,
               char **protocols)
{
    struct req q;
    struct sockaddr_storage ss = addr(client);
    struct admit_ctx cx = {.req = &q.r, .upgrade = upgrade, .client = (struct sockaddr *)&ss};
    int rc;

    make_req(&q, headers);
    rc = admit_run(a, &cx);
    if (protocols)
        *protocols = cx.protocols_set ? cx.protocols : NULL;
    else
        free(cx.protocols);
    return rc;
}

static void test_route_steps(void **state)
{
    char errs[2048];
    struct config *c = load("listen: 127.0.0.1:0\n"
                            "routes:\n"
                            "  - path: /chat\n"
                            "    backend: ws://127.0.0.1:9\n"
                            "    origins: [\"https://app.example.com\", \"null\"]\n"
                            "    subprotocols: [graphql-transport-ws, mqtt]\n"
                            "    require_subprotocol: true\n"
                            "    deny: [192.0.2.0/24]\n"
                            "  - path: /open\n"
                            "    backend: ws://127.0.0.1:9\n",
                            errs, sizeof(errs));
    char *p = NULL;

    if (!c)
        fail_msg("%s", errs);
    const struct admit_conf *a = NULL, *open = NULL;
    for (size_t i = 0; i < c->routing.nroutes; i++) {
        if (strcmp(c->routing.routes[i].path_prefix, "/chat") == 0)
            a = &c->routing.routes[i].admit;
        else
            open = &c->routing.routes[i].admit;
    }
    assert_false(admit_any(open));
    assert_true(admit_any(a));

    /* Allowed: listed origin, one listed subprotocol kept of three offered. */
    assert_int_equal(run(a,
                         "Origin: https://app.example.com\r\n"
                         "Sec-WebSocket-Protocol: chat, mqtt\r\n"
                         "Sec-WebSocket-Protocol: graphql-transport-ws\r\n",
                         "198.51.100.1", true, &p),
                     0);
    assert_string_equal(p, "mqtt, graphql-transport-ws");
    free(p);
    /* No listed entry offered: 400 (require_subprotocol). */
    assert_int_equal(run(a, "Sec-WebSocket-Protocol: chat\r\n", "198.51.100.1", true, NULL),
                     ERR_SUBPROTOCOL);
    assert_int_equal(run(a, "", "198.51.100.1", true, NULL), ERR_SUBPROTOCOL);
    /* Another origin: 403; two Origin fields: 403; null is listed. */
    assert_int_equal(run(a, "Origin: https://evil.example\r\nSec-WebSocket-Protocol: mqtt\r\n",
                         "198.51.100.1", true, NULL),
                     ERR_ORIGIN);
    assert_int_equal(run(a,
                         "Origin: https://app.example.com\r\nOrigin: https://app.example.com\r\n"
                         "Sec-WebSocket-Protocol: mqtt\r\n",
                         "198.51.100.1", true, NULL),
                     ERR_ORIGIN);
    assert_int_equal(
        run(a, "Origin: null\r\nSec-WebSocket-Protocol: mqtt\r\n", "198.51.100.1", true, NULL), 0);
    /* No Origin (not a browser): allowed, require_origin being false. */
    assert_int_equal(run(a, "Sec-WebSocket-Protocol: mqtt\r\n", "198.51.100.1", true, NULL), 0);
    /* Denied address, whatever else. */
    assert_int_equal(run(a, "Origin: https://app.example.com\r\nSec-WebSocket-Protocol: mqtt\r\n",
                         "192.0.2.55", true, NULL),
                     ERR_IP_DENIED);
    /* A plain request: only the IP rule applies. */
    assert_int_equal(run(a, "Origin: https://evil.example\r\n", "198.51.100.1", false, NULL), 0);
    assert_int_equal(run(a, "", "192.0.2.1", false, NULL), ERR_IP_DENIED);
    config_free(c);
}

static void test_config_errors(void **state)
{
    char errs[4096];
    struct config *c = load("listen: 127.0.0.1:0\n"
                            "trusted_proxies: [10.0.0.1/8]\n"
                            "routes:\n"
                            "  - path: /a\n"
                            "    backend: ws://127.0.0.1:9\n"
                            "    origins: [\"https://app.example.com/\"]\n"
                            "    subprotocols: [\"has space\"]\n"
                            "    allow: [not-an-address]\n"
                            "  - path: /b\n"
                            "    backend: ws://127.0.0.1:9\n"
                            "    require_subprotocol: true\n",
                            errs, sizeof(errs));
    assert_null(c);
    assert_non_null(strstr(errs, ":2:19: trusted_proxies: address bits are set"));
    assert_non_null(strstr(errs, ":6:15: origins: expected an origin"));
    assert_non_null(strstr(errs, ":7:20: subprotocols: a subprotocol name is a token"));
    assert_non_null(strstr(errs, ":8:13: allow: expected an address or a range"));
    assert_non_null(strstr(errs, ":9:5: require_subprotocol: needs subprotocols"));
}

static const char *src_text(const struct proxy_info *pi, char *buf, size_t cap)
{
    char a[64];
    unsigned port;

    if (pi->src.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&pi->src)->sin_addr, a, sizeof(a));
        port = ntohs(((const struct sockaddr_in *)&pi->src)->sin_port);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&pi->src)->sin6_addr, a, sizeof(a));
        port = ntohs(((const struct sockaddr_in6 *)&pi->src)->sin6_port);
    }
    snprintf(buf, cap, "%s:%u", a, port);
    return buf;
}

static int parse_str(const char *s, size_t n, struct proxy_info *pi)
{
    return proxy_parse((const uint8_t *)s, n, pi);
}

static void test_proxy_v1(void **state)
{
    static const char ok4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    static const char ok6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
    struct proxy_info pi;
    char buf[80];

    assert_int_equal(parse_str(ok4, strlen(ok4), &pi), 45);
    assert_false(pi.local);
    assert_int_equal(pi.version, 1);
    assert_string_equal(src_text(&pi, buf, sizeof(buf)), "192.0.2.1:56324");
    assert_int_equal(parse_str(ok6, strlen(ok6), &pi), (int)strlen(ok6));
    assert_string_equal(src_text(&pi, buf, sizeof(buf)), "2001:db8::1:1");
    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", 15, &pi), 15);
    assert_true(pi.local);
    assert_int_equal(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 35, &pi), 35);
    assert_true(pi.local);
    /* Incomplete: more is needed. */
    for (size_t cut = 0; cut < 45; cut++)
        assert_int_equal(parse_str(ok4, cut, &pi), ERR_AGAIN);
    /* Not PROXY, or broken. */
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 extra\r\n",
        "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",
        "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
        "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_str(bad[i], strlen(bad[i]), &pi) != ERR_PROXY)
            fail_msg("\"%s\" should be refused", bad[i]);
    /* No CRLF within 107 bytes: refused, not waited for. */
    char longer[200];
    memset(longer, 'x', sizeof(longer));
    memcpy(longer, "PROXY UNKNOWN ", 14);
    assert_int_equal(parse_str(longer, sizeof(longer), &pi), ERR_PROXY);
}

static void test_proxy_v2(void **state)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    uint8_t b[64];
    struct proxy_info pi;
    char buf[80];

    /* PROXY, TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.2:443, then a TLV. */
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x11;
    b[14] = 0;
    b[15] = 12 + 5;
    uint8_t addr4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
    memcpy(b + 16, addr4, 12);
    uint8_t tlv[5] = {0x04, 0x00, 0x02, 'o', 'k'};
    memcpy(b + 28, tlv, 5);
    assert_int_equal(proxy_parse(b, 33, &pi), 33);
    assert_false(pi.local);
    assert_int_equal(pi.version, 2);
    assert_string_equal(src_text(&pi, buf, sizeof(buf)), "192.0.2.1:56324");
    for (size_t cut = 0; cut < 33; cut++)
        assert_int_equal(proxy_parse(b, cut, &pi), ERR_AGAIN);
    /* LOCAL (the balancer's own health check): no address. */
    b[12] = 0x20;
    assert_int_equal(proxy_parse(b, 33, &pi), 33);
    assert_true(pi.local);
    /* Version 1 in the binary form, an unknown command, a short address
     * block, a datagram transport, a body too long: refused. */
    b[12] = 0x11;
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
    b[12] = 0x22;
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
    b[12] = 0x21;
    b[15] = 8;
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
    b[15] = 17;
    b[13] = 0x12;
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
    b[13] = 0x11;
    b[14] = 0xff;
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
    b[14] = 0;
    b[3] ^= 1; /* the signature */
    assert_int_equal(proxy_parse(b, 33, &pi), ERR_PROXY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_match),  cmocka_unit_test(test_cidr_errors),
        cmocka_unit_test(test_origins),     cmocka_unit_test(test_forwarded_client),
        cmocka_unit_test(test_route_steps), cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_proxy_v1),    cmocka_unit_test(test_proxy_v2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
