/* Unit tests for src/http/handshake.c: request validation, keys, the backend
 * request, the backend's 101, the responses the proxy writes, and plain HTTP framing
 * and forwarded heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "http/handshake.h"

#define MAXH        32
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct http_limits lim = {16384, MAXH};

#define assert_span(sp, lit)                                                                       \
    do {                                                                                           \
        struct http_span s_ = (sp);                                                                \
        assert_int_equal(s_.n, strlen(lit));                                                       \
        if (s_.n > 0)                                                                              \
            assert_memory_equal(s_.p, (lit), s_.n);                                                \
    } while (0)

#define RFC_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define OUR_KEY    "AQIDBAUGBwgJCgsMDQ4PEA=="

/* A parsed request that owns its buffer. */
struct preq {
    char *buf;
    struct http_header h[MAXH];
    struct http_request req;
};

static void parse_req(struct preq *p, const char *s)
{
    size_t n = strlen(s);
    size_t scan = 0;
    p->buf = malloc(n);
    assert_non_null(p->buf);
    memcpy(p->buf, s, n);
    p->req.headers = p->h;
    int rc = http_parse_request(p->buf, n, &lim, &p->req, &scan);
    if (rc != (int)n)
        fail_msg("request did not parse: %d (%s)", rc, err_name(rc));
}

struct presp {
    char *buf;
    struct http_header h[MAXH];
    struct http_response resp;
};

static void parse_resp(struct presp *p, const char *s)
{
    size_t n = strlen(s);
    size_t scan = 0;
    p->buf = malloc(n);
    assert_non_null(p->buf);
    memcpy(p->buf, s, n);
    p->resp.headers = p->h;
    int rc = http_parse_response(p->buf, n, &lim, &p->resp, &scan);
    if (rc != (int)n)
        fail_msg("response did not parse: %d (%s)", rc, err_name(rc));
}

static int check(const char *s)
{
    struct preq p;
    struct hs_request_info info;
    parse_req(&p, s);
    int rc = hs_check_request(&p.req, &info);
    free(p.buf);
    return rc;
}

#define REQ_START "GET /chat HTTP/1.1\r\n"
#define REQ_HOST  "Host: server.example.com\r\n"
#define REQ_UPG   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define REQ_VER   "Sec-WebSocket-Version: 13\r\n"
#define REQ_KEY   "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define GOOD_REQ  REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"

/* ---- hs_check_request ---- */

static void test_check_request_valid(void **state)
{
    struct preq p;
    struct hs_request_info info;

    parse_req(&p, "GET /chat?x=1&y=%20 HTTP/1.1\r\n"
                  "host: Server.Example.com:8080\r\n"
                  "UPGRADE: WebSocket\r\n"
                  "Connection: keep-alive, Upgrade\r\n"
                  "sec-websocket-key: " RFC_KEY "\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Content-Length: 0\r\n"
                  "X-Request-Id: abc-123\r\n"
                  "X-Request-Id: second\r\n"
                  "\r\n");
    assert_int_equal(hs_check_request(&p.req, &info), 0);
    assert_span(info.path, "/chat?x=1&y=%20");
    assert_span(info.host, "Server.Example.com:8080");
    assert_span(info.key, RFC_KEY);
    assert_span(info.request_id, "abc-123");
    free(p.buf);

    parse_req(&p, GOOD_REQ);
    assert_int_equal(hs_check_request(&p.req, &info), 0);
    assert_span(info.request_id, "");
    free(p.buf);

    assert_int_equal(check(REQ_START "Host: [::1]:80\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"), 0);
    assert_int_equal(check("GET /chat HTTP/1.2\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"), 0);
    assert_int_equal(check(REQ_START REQ_HOST
                           "Upgrade: h2c, websocket\r\nConnection: Upgrade\r\n" REQ_KEY REQ_VER
                           "\r\n"),
                     0);
}

static void test_check_request_method_version_target(void **state)
{
    assert_int_equal(check("POST /chat HTTP/1.1\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_METHOD);
    /* RFC 9110 §9.1: methods are case-sensitive. */
    assert_int_equal(check("get /chat HTTP/1.1\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_METHOD);
    assert_int_equal(check("GET /chat HTTP/1.0\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_VERSION);
    assert_int_equal(
        check("GET http://a/chat HTTP/1.1\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
        ERR_HTTP_SYNTAX);
    assert_int_equal(check("GET * HTTP/1.1\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_SYNTAX);
    assert_int_equal(check("GET /chat#frag HTTP/1.1\r\n" REQ_HOST REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_SYNTAX);
}

static void test_check_request_host(void **state)
{
    assert_int_equal(check(REQ_START REQ_UPG REQ_KEY REQ_VER "\r\n"), ERR_HS_NO_HOST);
    assert_int_equal(check(REQ_START "Host:\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"), ERR_HS_NO_HOST);
    assert_int_equal(check(REQ_START REQ_HOST "HOST: other\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HS_DUP_HOST);
    assert_int_equal(check(REQ_START "Host: a b\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_SYNTAX);
    assert_int_equal(check(REQ_START "Host: user@evil\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_SYNTAX);
    assert_int_equal(check(REQ_START "Host: a/b\r\n" REQ_UPG REQ_KEY REQ_VER "\r\n"),
                     ERR_HTTP_SYNTAX);
}

static void test_check_request_body(void **state)
{
    assert_int_equal(
        check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Transfer-Encoding: chunked\r\n\r\n"),
        ERR_HS_BODY);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Content-Length: 5\r\n\r\n"),
                     ERR_HS_BODY);
    assert_int_equal(
        check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Content-Length: 0, 0\r\n\r\n"),
        ERR_HS_BODY);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Content-Length:\r\n\r\n"),
                     ERR_HS_BODY);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER
                           "Content-Length: 0\r\nContent-Length: 1\r\n\r\n"),
                     ERR_HS_BODY);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Content-Length: 00\r\n\r\n"),
                     0);
}

static void test_check_request_not_upgrade(void **state)
{
    assert_int_equal(check(REQ_START REQ_HOST REQ_KEY REQ_VER "\r\n"), ERR_HS_NOT_UPGRADE);
    assert_int_equal(check(REQ_START REQ_HOST "Upgrade: websocket\r\n" REQ_KEY REQ_VER "\r\n"),
                     ERR_HS_NOT_UPGRADE);
    assert_int_equal(check(REQ_START REQ_HOST "Connection: Upgrade\r\n" REQ_KEY REQ_VER "\r\n"),
                     ERR_HS_NOT_UPGRADE);
    assert_int_equal(
        check(REQ_START REQ_HOST "Upgrade: h2c\r\nConnection: Upgrade\r\n" REQ_KEY REQ_VER "\r\n"),
        ERR_HS_NOT_UPGRADE);
    assert_int_equal(check(REQ_START REQ_HOST
                           "Upgrade: websocket\r\nConnection: keep-alive\r\n" REQ_KEY REQ_VER
                           "\r\n"),
                     ERR_HS_NOT_UPGRADE);
    assert_int_equal(check(REQ_START REQ_HOST
                           "Upgrade: websockets\r\nConnection: upgrade\r\n" REQ_KEY REQ_VER "\r\n"),
                     ERR_HS_NOT_UPGRADE);
}

static void test_check_request_ws_version(void **state)
{
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY "\r\n"), ERR_HS_VERSION);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY "Sec-WebSocket-Version: 8\r\n\r\n"),
                     ERR_HS_VERSION);
    assert_int_equal(
        check(REQ_START REQ_HOST REQ_UPG REQ_KEY "Sec-WebSocket-Version: 13, 8\r\n\r\n"),
        ERR_HS_VERSION);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER REQ_VER "\r\n"),
                     ERR_HS_VERSION);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY "Sec-WebSocket-Version: 013\r\n\r\n"),
                     ERR_HS_VERSION);
}

static void test_check_request_key(void **state)
{
    static const char *const bad[] = {
        "dGhlIHNhbXBsZSBub25jZQ=",    /* 23 chars */
        "dGhlIHNhbXBsZSBub25jZQ===",  /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQ",     /* no padding */
        "dGhlIHNhbXBsZSBub25jZQAA",   /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25jZ===",   /* 15 bytes + junk padding */
        "dGhlIHNhbXBsZSBub25jZR==",   /* non-zero pad bits: not canonical */
        "dGhlIHNhbXBsZSBub25j*Q==",   /* not in the alphabet */
        "dGhlIHNhbXBsZSBub25jZ-==",   /* base64url is not base64 */
        "dGhlIHNhbXBsZSB ub25jZQ==",  /* embedded space */
        "ZGhlIHNhbXBsZSBub25jZQ==ab", /* trailing junk */
        "",
    };
    char req[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n =
            snprintf(req, sizeof(req),
                     REQ_START REQ_HOST REQ_UPG "Sec-WebSocket-Key: %s\r\n" REQ_VER "\r\n", bad[i]);
        assert_true(n > 0 && (size_t)n < sizeof(req));
        if (check(req) != ERR_HS_BAD_KEY)
            fail_msg("key %zu (%s) accepted", i, bad[i]);
    }
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_VER "\r\n"), ERR_HS_BAD_KEY);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_KEY REQ_VER "\r\n"),
                     ERR_HS_BAD_KEY);
    /* Every valid last character: 2 data bits, 4 zero pad bits. */
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG
                           "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" REQ_VER "\r\n"),
                     0);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG
                           "Sec-WebSocket-Key: ////////////////////ww==\r\n" REQ_VER "\r\n"),
                     0);
    assert_int_equal(check(REQ_START REQ_HOST REQ_UPG
                           "Sec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+g==\r\n" REQ_VER "\r\n"),
                     0);
}

/* ---- keys ---- */

static void test_accept_key_rfc_example(void **state)
{
    char out[HS_ACCEPT_LEN + 1];
    /* RFC 6455 §1.3. */
    hs_accept_key(RFC_KEY, strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
    assert_int_equal(strlen(out), HS_ACCEPT_LEN);
}

static void test_make_key(void **state)
{
    char out[HS_KEY_LEN + 1];
    /* RFC 6455 §1.3: the nonce of the example is "the sample nonce". */
    hs_make_key((const uint8_t *)"the sample nonce", out);
    assert_string_equal(out, RFC_KEY);

    static const uint8_t seq[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    hs_make_key(seq, out);
    assert_string_equal(out, OUR_KEY);
    /* What we generate passes our own validation. */
    assert_int_equal(
        check(REQ_START REQ_HOST REQ_UPG "Sec-WebSocket-Key: " OUR_KEY "\r\n" REQ_VER "\r\n"), 0);
}

/* ---- hs_build_upstream ---- */

static const char full_req[] = "GET /chat?room=7 HTTP/1.1\r\n"
                               "Host: ws.example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: keep-alive, Upgrade, X-Secret\r\n"
                               "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: chat, superchat\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                               "Origin: https://app.example.com\r\n"
                               "Cookie: sid=1\r\n"
                               "Authorization: Bearer t\r\n"
                               "User-Agent: test/1\r\n"
                               "Keep-Alive: timeout=5\r\n"
                               "Proxy-Connection: keep-alive\r\n"
                               "Proxy-Authorization: Basic x\r\n"
                               "Proxy-Authenticate: Basic\r\n"
                               "TE: trailers\r\n"
                               "Trailer: X\r\n"
                               "X-Secret: drop-me\r\n"
                               "X-Forwarded-For: 10.0.0.1\r\n"
                               "x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n"
                               "X-Forwarded-Proto: gopher\r\n"
                               "X-Forwarded-Host: evil\r\n"
                               "X-Request-Id: client-id\r\n"
                               "X-Client-Cert-Subject: CN=mallory\r\n"
                               "Sec-WebSocket-Accept: junk\r\n"
                               "X-Keep: yes\r\n"
                               "\r\n";

/* Build the upstream request, then parse it back to check it is well-formed. */
static int build_and_parse(const char *in, const struct hs_upstream *up, char *out, size_t cap,
                           struct http_request *back, struct http_header *h)
{
    struct preq p;
    struct hs_request_info info;
    parse_req(&p, in);
    assert_int_equal(hs_check_request(&p.req, &info), 0);
    int n = hs_build_upstream(out, cap, &p.req, &info, up);
    free(p.buf);
    if (n < 0)
        return n;
    size_t scan = 0;
    back->headers = h;
    assert_int_equal(http_parse_request(out, (size_t)n, &lim, back, &scan), n);
    return n;
}

static struct http_span value_of(const struct http_request *r, const char *name)
{
    unsigned from = 0;
    int i = http_header_next(r->headers, r->nheaders, name, &from);
    if (i < 0)
        fail_msg("header %s missing", name);
    assert_int_equal(http_header_count(r->headers, r->nheaders, name), 1);
    return r->headers[i].value;
}

static void test_upstream_target_and_extra_lines(void **state)
{
    char out[4096];
    struct http_header h[MAXH];
    struct http_request back;
    struct hs_upstream up = {OUR_KEY, "192.0.2.9", "http", {NULL, 0}, {"/base/new?room=7", 16},
                             NULL,    NULL,        NULL,   0,         {NULL, 0},
                             false};

    assert_true(build_and_parse(full_req, &up, out, sizeof(out), &back, h) > 0);
    assert_span(back.target, "/base/new?room=7");

    struct http_span key = {RFC_KEY, strlen(RFC_KEY)};
    int n = hs_build_101(out, sizeof(out), key, (struct http_span){"", 0},
                         "Set-Cookie: S=v; Path=/\r\n");
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "\r\nSet-Cookie: S=v; Path=/\r\n\r\n"));
    n = hs_build_error(out, sizeof(out), 503, "down", "Retry-After: 5\r\n");
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "\r\nRetry-After: 5\r\n\r\ndown\n"));
}

static void test_upstream_full(void **state)
{
    char out[4096];
    struct http_header h[MAXH];
    struct http_request back;
    struct hs_upstream up = {OUR_KEY,   "192.0.2.9",
                             "https",   {"client-id", 9},
                             {NULL, 0}, "X-Client-Cert-Subject: CN=alice,O=Example\r\n",
                             NULL,      NULL,
                             0,         {NULL, 0},
                             false};

    int n = build_and_parse(full_req, &up, out, sizeof(out), &back, h);
    assert_true(n > 0);
    assert_span(back.method, "GET");
    assert_span(back.target, "/chat?room=7");
    assert_int_equal(back.minor_version, 1);
    unsigned nh = back.nheaders;

    /* Hop-by-hop fields and the ones named in Connection are gone. */
    static const char *const gone[] = {
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Content-Length",
        "X-Secret",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
    };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        if (http_header_count(h, nh, gone[i]) != 0)
            fail_msg("%s was forwarded", gone[i]);
    }
    /* Forwarded unchanged. */
    assert_span(value_of(&back, "Host"), "ws.example.com");
    assert_span(value_of(&back, "Origin"), "https://app.example.com");
    assert_span(value_of(&back, "Cookie"), "sid=1");
    assert_span(value_of(&back, "Authorization"), "Bearer t");
    assert_span(value_of(&back, "User-Agent"), "test/1");
    assert_span(value_of(&back, "Sec-WebSocket-Protocol"), "chat, superchat");
    assert_span(value_of(&back, "X-Keep"), "yes");
    /* Ours. */
    assert_span(value_of(&back, "Upgrade"), "websocket");
    assert_span(value_of(&back, "Connection"), "Upgrade");
    assert_span(value_of(&back, "Sec-WebSocket-Key"), OUR_KEY);
    assert_span(value_of(&back, "Sec-WebSocket-Version"), "13");
    assert_span(value_of(&back, "X-Forwarded-For"), "10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.9");
    assert_span(value_of(&back, "X-Forwarded-Proto"), "https");
    assert_span(value_of(&back, "X-Forwarded-Host"), "ws.example.com");
    assert_span(value_of(&back, "X-Request-Id"), "client-id");
    /* The client's own X-Client-Cert-Subject is replaced by wsgate's
     * extra line: one field, ours. */
    assert_int_equal(http_header_count(h, nh, "X-Client-Cert-Subject"), 1);
    assert_span(value_of(&back, "X-Client-Cert-Subject"), "CN=alice,O=Example");

    /* The result is itself a valid upgrade request. */
    struct hs_request_info info2;
    assert_int_equal(hs_check_request(&back, &info2), 0);
    assert_span(info2.key, OUR_KEY);
}

static void test_upstream_exact(void **state)
{
    char out[1024];
    struct http_header h[MAXH];
    struct http_request back;
    struct hs_upstream up = {OUR_KEY, "2001:db8::1", "http", {"gen-42", 6}, {NULL, 0}, NULL,
                             NULL,    NULL,          0,      {NULL, 0},     false};

    int n = build_and_parse(GOOD_REQ, &up, out, sizeof(out), &back, h);
    static const char want[] = "GET /chat HTTP/1.1\r\n"
                               "Host: server.example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " OUR_KEY "\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "X-Forwarded-For: 2001:db8::1\r\n"
                               "X-Forwarded-Proto: http\r\n"
                               "X-Forwarded-Host: server.example.com\r\n"
                               "X-Request-Id: gen-42\r\n"
                               "\r\n";
    assert_int_equal(n, (int)sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
}

static void test_upstream_request_id_replaced(void **state)
{
    char out[1024];
    struct http_header h[MAXH];
    struct http_request back;
    struct hs_upstream up = {OUR_KEY, "192.0.2.9", "http", {"new-id", 6}, {NULL, 0}, NULL,
                             NULL,    NULL,        0,      {NULL, 0},     false};

    int n =
        build_and_parse(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "X-Request-Id: old-id\r\n\r\n",
                        &up, out, sizeof(out), &back, h);
    assert_true(n > 0);
    assert_span(value_of(&back, "X-Request-Id"), "new-id");

    /* No request id to send: none is sent, not even the client's. */
    struct hs_upstream none = {OUR_KEY, NULL, NULL, {NULL, 0}, {NULL, 0}, NULL,
                               NULL,    NULL, 0,    {NULL, 0}, false};
    n = build_and_parse(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "X-Request-Id: old-id\r\n"
                                                                   "X-Forwarded-Proto: x\r\n\r\n",
                        &none, out, sizeof(out), &back, h);
    assert_true(n > 0);
    assert_int_equal(http_header_count(h, back.nheaders, "X-Request-Id"), 0);
    assert_int_equal(http_header_count(h, back.nheaders, "X-Forwarded-For"), 0);
    assert_int_equal(http_header_count(h, back.nheaders, "X-Forwarded-Proto"), 0);

    /* Client X-Forwarded-For without client_ip is still passed on. */
    n = build_and_parse(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "X-Forwarded-For: 1.2.3.4\r\n"
                                                                   "X-Forwarded-For:\r\n\r\n",
                        &none, out, sizeof(out), &back, h);
    assert_true(n > 0);
    assert_span(value_of(&back, "X-Forwarded-For"), "1.2.3.4");
}

static void test_upstream_connection_named(void **state)
{
    char out[1024];
    struct http_header h[MAXH];
    struct http_request back;
    struct hs_upstream up = {OUR_KEY, "192.0.2.9", "http", {NULL, 0}, {NULL, 0}, NULL,
                             NULL,    NULL,        0,      {NULL, 0}, false};

    /* Named in any Connection field, any case; Host survives being named. */
    int n = build_and_parse(REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER
                            "Connection: x-a, HOST\r\n"
                            "connection: Cookie\r\n"
                            "X-A: 1\r\nCookie: c\r\nX-B: 2\r\n\r\n",
                            &up, out, sizeof(out), &back, h);
    assert_true(n > 0);
    assert_int_equal(http_header_count(h, back.nheaders, "X-A"), 0);
    assert_int_equal(http_header_count(h, back.nheaders, "Cookie"), 0);
    assert_span(value_of(&back, "X-B"), "2");
    assert_span(value_of(&back, "Host"), "server.example.com");
    assert_span(value_of(&back, "Connection"), "Upgrade");
}

/* Regression: a head whose Connection field lists thousands of options made
 * hs_build_upstream match every field against every option, about 11 ms for
 * one 16 KiB request. The options are now capped. */
static void test_connection_option_cap(void **state)
{
    char req[2048];
    char out[2048];
    size_t pos = 0;

    pos += (size_t)snprintf(req, sizeof(req), "%s",
                            REQ_START REQ_HOST REQ_KEY REQ_VER
                            "Upgrade: websocket\r\nConnection: upgrade");
    for (int i = 1; i < HS_MAX_CONN_OPTIONS; i++)
        pos += (size_t)snprintf(req + pos, sizeof(req) - pos, ", x-%d", i);
    snprintf(req + pos, sizeof(req) - pos, "\r\nX-1: a\r\nX-99: b\r\n\r\n");

    /* At the cap: accepted, and every named field is dropped. */
    struct preq p;
    struct hs_request_info info;
    struct hs_upstream up = {OUR_KEY, "192.0.2.9", "http", {NULL, 0}, {NULL, 0}, NULL,
                             NULL,    NULL,        0,      {NULL, 0}, false};
    parse_req(&p, req);
    assert_int_equal(hs_check_request(&p.req, &info), 0);
    int n = hs_build_upstream(out, sizeof(out), &p.req, &info, &up);
    assert_true(n > 0);
    out[n] = '\0';
    assert_null(strstr(out, "X-1:"));
    assert_non_null(strstr(out, "\r\nX-99: b\r\n"));
    free(p.buf);

    /* One more option, in a second Connection field: refused. */
    snprintf(req + pos, sizeof(req) - pos, "\r\nConnection: x-extra\r\n\r\n");
    parse_req(&p, req);
    assert_int_equal(hs_check_request(&p.req, &info), ERR_HTTP_SYNTAX);
    info.path = (struct http_span){"/", 1};
    info.host = (struct http_span){"a", 1};
    assert_int_equal(hs_build_upstream(out, sizeof(out), &p.req, &info, &up), ERR_RANGE);
    free(p.buf);

    /* The same bound on a backend's error response. */
    struct presp r;
    pos = (size_t)snprintf(req, sizeof(req), "HTTP/1.1 502 Bad\r\nConnection: close");
    for (int i = 1; i <= HS_MAX_CONN_OPTIONS; i++)
        pos += (size_t)snprintf(req + pos, sizeof(req) - pos, ", x-%d", i);
    snprintf(req + pos, sizeof(req) - pos, "\r\n\r\n");
    parse_resp(&r, req);
    assert_int_equal(hs_build_relayed_head(out, sizeof(out), &r.resp, 0), ERR_RANGE);
    free(r.buf);
}

static void test_upstream_nomem(void **state)
{
    struct preq p;
    struct hs_request_info info;
    struct hs_upstream up = {OUR_KEY, "192.0.2.9", "https", {"client-id", 9}, {NULL, 0}, NULL,
                             NULL,    NULL,        0,       {NULL, 0},        false};
    char ref[4096];

    parse_req(&p, full_req);
    assert_int_equal(hs_check_request(&p.req, &info), 0);
    int n = hs_build_upstream(ref, sizeof(ref), &p.req, &info, &up);
    assert_true(n > 0);

    /* Every capacity below the length fails without writing past cap. */
    char *out = malloc((size_t)n + 16);
    assert_non_null(out);
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        memset(out, 0x5a, (size_t)n + 16);
        assert_int_equal(hs_build_upstream(out, cap, &p.req, &info, &up), ERR_NOMEM);
        for (size_t i = cap; i < (size_t)n + 16; i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
    }
    assert_int_equal(hs_build_upstream(out, (size_t)n, &p.req, &info, &up), n);
    assert_memory_equal(out, ref, (size_t)n);
    assert_int_equal(hs_build_upstream(NULL, 0, &p.req, &info, &up), ERR_NOMEM);
    free(out);
    free(p.buf);
}

/* ---- hs_check_response ---- */

#define RESP_101 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

/* Check a backend response to a request that sent RFC_KEY. */
static int check_resp(const char *resp, const char *req_s)
{
    struct preq q;
    struct presp r;
    struct http_span proto;
    char accept[HS_ACCEPT_LEN + 1];

    parse_req(&q, req_s);
    parse_resp(&r, resp);
    hs_accept_key(RFC_KEY, strlen(RFC_KEY), accept);
    int rc = hs_check_response(&r.resp, accept, &q.req, &proto);
    free(q.buf);
    free(r.buf);
    return rc;
}

static void test_check_response_ok(void **state)
{
    struct preq q;
    struct presp r;
    struct http_span proto = {"x", 1};

    parse_req(&q, GOOD_REQ);
    parse_resp(&r, RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n");
    assert_int_equal(hs_check_response(&r.resp, RFC_ACCEPT, &q.req, &proto), 0);
    assert_span(proto, "");
    free(r.buf);

    /* Case-insensitive names and tokens; list forms of Connection. */
    parse_resp(&r, "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, upgrade\r\n"
                   "sec-websocket-accept: " RFC_ACCEPT "\r\n\r\n");
    assert_int_equal(hs_check_response(&r.resp, RFC_ACCEPT, &q.req, &proto), 0);
    free(r.buf);
    free(q.buf);

    /* A protocol the client offered, in either of its fields. */
    parse_req(&q, REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER
              "Sec-WebSocket-Protocol: chat, superchat\r\n"
              "Sec-WebSocket-Protocol: v2.json\r\n\r\n");
    parse_resp(&r, RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                            "Sec-WebSocket-Protocol: superchat\r\n\r\n");
    assert_int_equal(hs_check_response(&r.resp, RFC_ACCEPT, &q.req, &proto), 0);
    assert_span(proto, "superchat");
    free(r.buf);
    parse_resp(&r, RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                            "Sec-WebSocket-Protocol: v2.json\r\n\r\n");
    assert_int_equal(hs_check_response(&r.resp, RFC_ACCEPT, &q.req, &proto), 0);
    assert_span(proto, "v2.json");
    free(r.buf);
    free(q.buf);
}

static void test_check_response_errors(void **state)
{
    static const char acc[] = "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n";
    static const char offer[] = REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER
        "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n";
    /* Non-101. */
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: "
                                "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_STATUS);
    assert_int_equal(check_resp("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", GOOD_REQ),
                     ERR_HS_STATUS);
    assert_int_equal(check_resp("HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
                                "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_STATUS);

    /* Upgrade / Connection. */
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nUpgrade: websocket, h2c\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);
    assert_int_equal(check_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: close\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_UPGRADE);

    /* Accept: wrong, missing, repeated, case-changed, with trailing junk. */
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: "
                                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_ACCEPT);
    assert_int_equal(check_resp(RESP_101 "\r\n", GOOD_REQ), ERR_HS_BAD_ACCEPT);
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT
                                         "\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_ACCEPT);
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: "
                                         "S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_ACCEPT);
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "x\r\n\r\n", GOOD_REQ),
                     ERR_HS_BAD_ACCEPT);
    {
        struct preq q;
        struct presp r;
        struct http_span proto;
        parse_req(&q, GOOD_REQ);
        parse_resp(&r, RESP_101 "Sec-WebSocket-Accept: \r\n\r\n");
        /* An empty expected value (OpenSSL failed) never matches. */
        assert_int_equal(hs_check_response(&r.resp, "", &q.req, &proto), ERR_HS_BAD_ACCEPT);
        assert_int_equal(hs_check_response(&r.resp, NULL, &q.req, &proto), ERR_HS_BAD_ACCEPT);
        free(r.buf);
        free(q.buf);
    }

    /* Extensions: none were offered. */
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                         "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_EXTENSION);
    assert_int_equal(check_resp(RESP_101 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                         "Sec-WebSocket-Extensions:\r\n\r\n",
                                GOOD_REQ),
                     ERR_HS_BAD_EXTENSION);

    /* Protocols. */
    char r2[512];
    static const char *const bad_proto[] = {
        "Sec-WebSocket-Protocol: chat\r\n",            /* nothing offered (below) */
        "Sec-WebSocket-Protocol: other\r\n",           /* not offered */
        "Sec-WebSocket-Protocol: Chat\r\n",            /* case differs */
        "Sec-WebSocket-Protocol: chat, superchat\r\n", /* not a single token */
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n", /* repeated */
        "Sec-WebSocket-Protocol:\r\n",                                      /* empty */
        "Sec-WebSocket-Protocol: cha\r\n",                                  /* prefix */
    };
    for (size_t i = 0; i < sizeof(bad_proto) / sizeof(bad_proto[0]); i++) {
        snprintf(r2, sizeof(r2), "%s%s%s\r\n", RESP_101, acc, bad_proto[i]);
        int rc = check_resp(r2, i == 0 ? GOOD_REQ : offer);
        if (rc != ERR_HS_BAD_PROTOCOL)
            fail_msg("protocol case %zu: %d", i, rc);
    }
}

/* ---- hs_build_101 ---- */

static void test_build_101(void **state)
{
    char out[512];
    struct http_span key = {RFC_KEY, HS_KEY_LEN};
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "\r\n";
    int n = hs_build_101(out, sizeof(out), key, (struct http_span){"", 0}, NULL);
    assert_int_equal(n, (int)sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);

    static const char want_p[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                 "Sec-WebSocket-Protocol: chat\r\n"
                                 "\r\n";
    n = hs_build_101(out, sizeof(out), key, (struct http_span){"chat", 4}, NULL);
    assert_int_equal(n, (int)sizeof(want_p) - 1);
    assert_memory_equal(out, want_p, sizeof(want_p) - 1);

    /* What we send passes our own backend-side check. */
    struct presp r;
    struct preq q;
    struct http_span proto;
    parse_resp(&r, want_p);
    parse_req(&q,
              REQ_START REQ_HOST REQ_UPG REQ_KEY REQ_VER "Sec-WebSocket-Protocol: chat\r\n\r\n");
    assert_int_equal(hs_check_response(&r.resp, RFC_ACCEPT, &q.req, &proto), 0);
    assert_span(proto, "chat");
    free(r.buf);
    free(q.buf);

    for (size_t cap = 0; cap < sizeof(want_p) - 1; cap++) {
        memset(out, 0x5a, sizeof(out));
        assert_int_equal(hs_build_101(out, cap, key, (struct http_span){"chat", 4}, NULL),
                         ERR_NOMEM);
        for (size_t i = cap; i < sizeof(out); i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
    }
}

/* ---- hs_build_error ---- */

static void test_build_error(void **state)
{
    char out[512];
    static const char want400[] = "HTTP/1.1 400 Bad Request\r\n"
                                  "Content-Type: text/plain\r\n"
                                  "Content-Length: 23\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "malformed HTTP message\n";
    int n = hs_build_error(out, sizeof(out), 400, err_str(ERR_HTTP_SYNTAX), NULL);
    assert_int_equal(n, (int)sizeof(want400) - 1);
    assert_memory_equal(out, want400, sizeof(want400) - 1);

    static const char want426[] = "HTTP/1.1 426 Upgrade Required\r\n"
                                  "Content-Type: text/plain\r\n"
                                  "Content-Length: 34\r\n"
                                  "Connection: Upgrade, close\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n"
                                  "unsupported Sec-WebSocket-Version\n";
    n = hs_build_error(out, sizeof(out), 426, err_str(ERR_HS_VERSION), NULL);
    assert_int_equal(n, (int)strlen(want426));
    assert_memory_equal(out, want426, strlen(want426));

    n = hs_build_error(out, sizeof(out), 405, NULL, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(out, "\r\nAllow: GET\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nMethod Not Allowed\n"));

    /* Control characters in the detail cannot break the one-line body. */
    n = hs_build_error(out, sizeof(out), 502, "a\r\nb\0c", NULL);
    assert_true(n > 0);
    assert_memory_equal(out + n - 5, "a  b\n", 5);

    /* Reason phrases. */
    static const struct {
        int status;
        const char *line;
    } phrases[] = {
        {400, "HTTP/1.1 400 Bad Request\r\n"},
        {403, "HTTP/1.1 403 Forbidden\r\n"},
        {404, "HTTP/1.1 404 Not Found\r\n"},
        {405, "HTTP/1.1 405 Method Not Allowed\r\n"},
        {408, "HTTP/1.1 408 Request Timeout\r\n"},
        {426, "HTTP/1.1 426 Upgrade Required\r\n"},
        {429, "HTTP/1.1 429 Too Many Requests\r\n"},
        {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
        {500, "HTTP/1.1 500 Internal Server Error\r\n"},
        {502, "HTTP/1.1 502 Bad Gateway\r\n"},
        {503, "HTTP/1.1 503 Service Unavailable\r\n"},
        {504, "HTTP/1.1 504 Gateway Timeout\r\n"},
        {418, "HTTP/1.1 418 Client Error\r\n"},
        {599, "HTTP/1.1 599 Server Error\r\n"},
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
        n = hs_build_error(out, sizeof(out), phrases[i].status, "x", NULL);
        assert_true(n > 0);
        assert_memory_equal(out, phrases[i].line, strlen(phrases[i].line));

        /* The output is a well-formed response whose Content-Length is right. */
        struct http_header h[MAXH];
        struct http_response resp = {.headers = h};
        size_t scan = 0;
        int head = http_parse_response(out, (size_t)n, &lim, &resp, &scan);
        assert_true(head > 0);
        assert_int_equal(resp.status, phrases[i].status);
        unsigned from = 0;
        int cl = http_header_next(h, resp.nheaders, "Content-Length", &from);
        assert_true(cl >= 0);
        assert_span(h[cl].value, "2");
        assert_int_equal(n - head, 2);
    }

    assert_int_equal(hs_build_error(out, sizeof(out), 99, "x", NULL), ERR_RANGE);
    assert_int_equal(hs_build_error(out, sizeof(out), 1000, "x", NULL), ERR_RANGE);
    assert_int_equal(hs_build_error(out, sizeof(out), -1, "x", NULL), ERR_RANGE);

    int full = hs_build_error(out, sizeof(out), 426, "detail", NULL);
    assert_true(full > 0);
    for (size_t cap = 0; cap < (size_t)full; cap++) {
        memset(out, 0x5a, sizeof(out));
        assert_int_equal(hs_build_error(out, cap, 426, "detail", NULL), ERR_NOMEM);
        for (size_t i = cap; i < sizeof(out); i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
    }
}

/* ---- hs_build_relayed_head ---- */

static void test_build_relayed_head(void **state)
{
    struct presp r;
    char out[1024];

    parse_resp(&r, "HTTP/1.0 503 Backend Busy\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: 17\r\n"
                   "Transfer-Encoding: chunked\r\n"
                   "Connection: keep-alive, X-Hop\r\n"
                   "Keep-Alive: timeout=5\r\n"
                   "X-Hop: 1\r\n"
                   "Retry-After: 30\r\n"
                   "Upgrade: h2c\r\n"
                   "Set-Cookie: a=b\r\n"
                   "\r\n");
    int n = hs_build_relayed_head(out, sizeof(out), &r.resp, 42);
    static const char want[] = "HTTP/1.1 503 Backend Busy\r\n"
                               "Content-Type: application/json\r\n"
                               "Retry-After: 30\r\n"
                               "Set-Cookie: a=b\r\n"
                               "Content-Length: 42\r\n"
                               "Connection: close\r\n"
                               "\r\n";
    assert_int_equal(n, (int)sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);

    for (size_t cap = 0; cap < sizeof(want) - 1; cap++) {
        memset(out, 0x5a, sizeof(out));
        assert_int_equal(hs_build_relayed_head(out, cap, &r.resp, 42), ERR_NOMEM);
        for (size_t i = cap; i < sizeof(out); i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
    }
    free(r.buf);

    /* An empty reason gets the standard phrase. */
    parse_resp(&r, "HTTP/1.1 404\r\n\r\n");
    n = hs_build_relayed_head(out, sizeof(out), &r.resp, 0);
    static const char want404[] = "HTTP/1.1 404 Not Found\r\n"
                                  "Content-Length: 0\r\n"
                                  "Connection: close\r\n"
                                  "\r\n";
    assert_int_equal(n, (int)sizeof(want404) - 1);
    assert_memory_equal(out, want404, sizeof(want404) - 1);
    free(r.buf);

    struct http_response bad = {.status = 42};
    assert_int_equal(hs_build_relayed_head(out, sizeof(out), &bad, 0), ERR_RANGE);
}

/* ---- plain HTTP: body framing (RFC 9112 §6) ---- */

static int req_body(const char *s, struct http_body *b)
{
    struct preq p;
    parse_req(&p, s);
    int rc = http_request_body(&p.req, b);
    free(p.buf);
    return rc;
}

static void test_request_body(void **state)
{
    struct http_body b;

    assert_int_equal(req_body("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(req_body("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(req_body("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_LENGTH);
    assert_int_equal(b.length, 42);
    assert_int_equal(
        req_body("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_CHUNKED);
    assert_int_equal(
        req_body("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_CHUNKED);

    /* The material request smuggling is made of. */
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        int rc = req_body(bad[i], &b);
        if (rc != ERR_HTTP_FRAMING)
            fail_msg("case %zu accepted: %d", i, rc);
    }
}

static int resp_body(const char *s, bool head, struct http_body *b)
{
    struct presp p;
    parse_resp(&p, s);
    int rc = http_response_body(&p.resp, head, b);
    free(p.buf);
    return rc;
}

static void test_response_body(void **state)
{
    struct http_body b;

    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_LENGTH);
    assert_int_equal(b.length, 3);
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &b),
                     0);
    assert_int_equal(b.kind, HTTP_BODY_CHUNKED);
    /* Neither: until the backend closes. So does a coding we cannot frame. */
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_CLOSE);
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_CLOSE);
    /* Never a body: HEAD, 1xx, 204, 304, whatever the fields say. */
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(resp_body("HTTP/1.1 204 No Content\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(resp_body("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, &b),
                     0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);
    assert_int_equal(resp_body("HTTP/1.1 103 Early Hints\r\n\r\n", false, &b), 0);
    assert_int_equal(b.kind, HTTP_BODY_NONE);

    /* Ambiguous: never relayed. */
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n",
                               false, &b),
                     ERR_HTTP_FRAMING);
    assert_int_equal(
        resp_body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, &b),
        ERR_HTTP_FRAMING);
    assert_int_equal(resp_body("HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", false, &b),
                     ERR_HTTP_FRAMING);
}

/* ---- plain HTTP: forwarded heads ---- */

static void test_forward_request(void **state)
{
    char out[4096];
    struct preq q;
    struct http_header h[MAXH];
    struct http_request back;
    struct http_body body;
    size_t scan = 0;
    struct hs_upstream up = {
        NULL, "192.0.2.9", "http",    {"rid-1", 5}, {"/api/x?y=1", 10}, NULL, NULL,
        NULL, 0,           {NULL, 0}, false};

    parse_req(&q, "POST /x?y=1 HTTP/1.1\r\n"
                  "Host: example.test\r\n"
                  "Connection: keep-alive, X-Secret\r\n"
                  "Keep-Alive: timeout=5\r\n"
                  "X-Secret: drop me\r\n"
                  "Proxy-Authorization: Basic eA==\r\n"
                  "TE: trailers\r\n"
                  "Upgrade: h2c\r\n"
                  "Content-Length: 11\r\n"
                  "X-Forwarded-For: 198.51.100.1\r\n"
                  "X-Request-Id: old\r\n"
                  "Cookie: a=b\r\n"
                  "Accept: */*\r\n\r\n");
    assert_int_equal(http_request_body(&q.req, &body), 0);
    int n = hs_build_forward_request(out, sizeof(out), &q.req, &up, &body, "10.0.0.1:80");
    assert_true(n > 0);
    back.headers = h;
    assert_int_equal(http_parse_request(out, (size_t)n, &lim, &back, &scan), n);
    assert_span(back.method, "POST");
    assert_span(back.target, "/api/x?y=1");
    assert_int_equal(back.minor_version, 1);
    assert_span(value_of(&back, "Host"), "example.test");
    assert_span(value_of(&back, "Content-Length"), "11");
    assert_span(value_of(&back, "Cookie"), "a=b");
    assert_span(value_of(&back, "Accept"), "*/*");
    assert_span(value_of(&back, "X-Forwarded-For"), "198.51.100.1, 192.0.2.9");
    assert_span(value_of(&back, "X-Forwarded-Proto"), "http");
    assert_span(value_of(&back, "X-Forwarded-Host"), "example.test");
    assert_span(value_of(&back, "X-Request-Id"), "rid-1");
    static const char *const gone[] = {
        "Connection", "Keep-Alive",          "X-Secret",         "TE",
        "Upgrade",    "Proxy-Authorization", "Transfer-Encoding"};
    for (size_t i = 0; i < COUNT_OF(gone); i++)
        if (http_header_count(back.headers, back.nheaders, gone[i]) != 0)
            fail_msg("%s forwarded", gone[i]);
    free(q.buf);

    /* Chunked stays chunked; an HTTP/1.0 request without Host gets the
     * default one; the client's target when none is given. */
    parse_req(&q, "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(http_request_body(&q.req, &body), 0);
    up.target = (struct http_span){NULL, 0};
    n = hs_build_forward_request(out, sizeof(out), &q.req, &up, &body, NULL);
    assert_true(n > 0);
    scan = 0;
    assert_int_equal(http_parse_request(out, (size_t)n, &lim, &back, &scan), n);
    assert_span(back.target, "/c");
    assert_span(value_of(&back, "Transfer-Encoding"), "chunked");
    assert_int_equal(http_header_count(back.headers, back.nheaders, "Content-Length"), 0);
    free(q.buf);

    parse_req(&q, "GET /old HTTP/1.0\r\n\r\n");
    assert_int_equal(http_request_body(&q.req, &body), 0);
    n = hs_build_forward_request(out, sizeof(out), &q.req, &up, &body, "10.0.0.1:80");
    assert_true(n > 0);
    scan = 0;
    assert_int_equal(http_parse_request(out, (size_t)n, &lim, &back, &scan), n);
    assert_int_equal(back.minor_version, 1);
    assert_span(value_of(&back, "Host"), "10.0.0.1:80");
    assert_int_equal(http_header_count(back.headers, back.nheaders, "X-Forwarded-Host"), 0);

    /* Too small: ERR_NOMEM, nothing past cap written. */
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        memset(out, 0x5a, sizeof(out));
        assert_int_equal(hs_build_forward_request(out, cap, &q.req, &up, &body, "10.0.0.1:80"),
                         ERR_NOMEM);
        for (size_t i = cap; i < sizeof(out); i++)
            assert_int_equal((unsigned char)out[i], 0x5a);
    }
    free(q.buf);
}

static void test_forward_response(void **state)
{
    char out[4096];
    struct presp r, back;
    struct http_body body;
    struct http_body none = {HTTP_BODY_NONE, 0};
    size_t scan = 0;
    int n;

    parse_resp(&r, "HTTP/1.1 200 Fine\r\n"
                   "Connection: X-Hop\r\n"
                   "X-Hop: 1\r\n"
                   "Keep-Alive: timeout=5\r\n"
                   "Transfer-Encoding: chunked\r\n"
                   "Set-Cookie: a=1\r\n"
                   "Set-Cookie: b=2\r\n\r\n");
    assert_int_equal(http_response_body(&r.resp, false, &body), 0);
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &body, true, false, "X-Extra: e\r\n");
    assert_true(n > 0);
    out[n] = '\0';
    static const char want[] = "HTTP/1.1 200 Fine\r\n"
                               "Set-Cookie: a=1\r\n"
                               "Set-Cookie: b=2\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "X-Extra: e\r\n\r\n";
    assert_string_equal(out, want);
    free(r.buf);

    /* A length is re-stated; closing is said; an HTTP/1.0 client that keeps
     * the connection is told so. */
    parse_resp(&r, "HTTP/1.0 404 \r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(http_response_body(&r.resp, false, &body), 0);
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &body, false, false, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &body, true, true, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(
        out, "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
    free(r.buf);

    /* HEAD and 304 keep the length they describe; 204 has none. */
    parse_resp(&r, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n");
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &none, true, false, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out,
                        "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n");
    free(r.buf);
    parse_resp(&r, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &none, true, false, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 204 No Content\r\n\r\n");
    free(r.buf);

    /* An informational response carries no framing, no extra lines. */
    parse_resp(&r, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
    n = hs_build_forward_response(out, sizeof(out), &r.resp, &none, false, false, "X-Extra: e\r\n");
    assert_true(n > 0);
    back.resp.headers = back.h;
    assert_int_equal(http_parse_response(out, (size_t)n, &lim, &back.resp, &scan), n);
    assert_int_equal(back.resp.status, 103);
    assert_int_equal(back.resp.nheaders, 1);
    free(r.buf);

    struct http_response bad = {.status = 42};
    assert_int_equal(hs_build_forward_response(out, sizeof(out), &bad, &none, true, false, NULL),
                     ERR_RANGE);
}

static void test_build_101_from_backend(void **state)
{
    char out[1024];
    struct presp r;
    struct http_span key = {RFC_KEY, HS_KEY_LEN};

    parse_resp(&r, "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade, X-Hop\r\n"
                   "X-Hop: 1\r\n"
                   "Sec-WebSocket-Accept: AAAA\r\n"
                   "Sec-WebSocket-Protocol: chat\r\n"
                   "Set-Cookie: io=abc; Path=/\r\n"
                   "X-Served-By: b1\r\n\r\n");
    int n = hs_build_101_from(out, sizeof(out), key, (struct http_span){"chat", 4}, &r.resp,
                              "Set-Cookie: S=v\r\n");
    assert_true(n > 0);
    out[n] = '\0';
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "Set-Cookie: io=abc; Path=/\r\n"
                               "X-Served-By: b1\r\n"
                               "Set-Cookie: S=v\r\n\r\n";
    assert_string_equal(out, want);
    free(r.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_request_valid),
        cmocka_unit_test(test_check_request_method_version_target),
        cmocka_unit_test(test_check_request_host),
        cmocka_unit_test(test_check_request_body),
        cmocka_unit_test(test_check_request_not_upgrade),
        cmocka_unit_test(test_check_request_ws_version),
        cmocka_unit_test(test_check_request_key),
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_make_key),
        cmocka_unit_test(test_upstream_full),
        cmocka_unit_test(test_upstream_target_and_extra_lines),
        cmocka_unit_test(test_upstream_exact),
        cmocka_unit_test(test_upstream_request_id_replaced),
        cmocka_unit_test(test_upstream_connection_named),
        cmocka_unit_test(test_connection_option_cap),
        cmocka_unit_test(test_upstream_nomem),
        cmocka_unit_test(test_check_response_ok),
        cmocka_unit_test(test_check_response_errors),
        cmocka_unit_test(test_build_101),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_build_relayed_head),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_response_body),
        cmocka_unit_test(test_forward_request),
        cmocka_unit_test(test_forward_response),
        cmocka_unit_test(test_build_101_from_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
