/* libFuzzer target for the HTTP head parser, the handshake checks and builders,
 * and the chunked decoder. Besides memory errors it checks properties that
 * must hold for any input:
 * - a split parse (prefix, then the whole buffer with the same scan hint)
 *   gives the same answer as a one-shot parse;
 * - every span handed out lies inside the head;
 * - the backend request we build from a valid client request parses back
 *   and is itself a valid upgrade request;
 * - the chunked decoder gives the same bytes whatever the input split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/handshake.h"
#include "http/parser.h"

#define MAX_HEADERS 100

static const struct http_limits lim = {16384, MAX_HEADERS};
/* Small limits so short inputs reach the size and count checks too. */
static const struct http_limits tight = {96, 4};

static void require(int cond)
{
    if (!cond)
        abort();
}

static void span_inside(struct http_span s, const char *buf, size_t n)
{
    require(s.p >= buf && s.n <= n && (size_t)(s.p - buf) <= n - s.n);
}

static void headers_inside(const struct http_header *h, unsigned nh, const char *buf, size_t n)
{
    for (unsigned i = 0; i < nh; i++) {
        span_inside(h[i].name, buf, n);
        span_inside(h[i].value, buf, n);
        require(h[i].name.n > 0);
    }
}

static unsigned count_conn_opts(const struct http_header *h, unsigned nh)
{
    unsigned count = 0;
    for (unsigned i = 0; i < nh; i++) {
        if (!http_span_ieq(h[i].name, "Connection"))
            continue;
        struct http_span list = h[i].value, e;
        while (http_list_next(&list, &e))
            count++;
    }
    return count;
}

static int parse_request_split(const char *buf, size_t size, const struct http_limits *l,
                               struct http_request *req)
{
    struct http_header tmp[MAX_HEADERS];
    struct http_request r2 = {.headers = tmp};
    size_t scan = 0;

    int one = http_parse_request(buf, size, l, req, &scan);
    scan = 0;
    int first = http_parse_request(buf, size / 2, l, &r2, &scan);
    int second = http_parse_request(buf, size, l, &r2, &scan);
    require(second == one);
    require(first == ERR_AGAIN || first == one);
    if (one > 0)
        require(r2.nheaders == req->nheaders);
    return one;
}

static void fuzz_request(const char *buf, size_t size)
{
    struct http_header h[MAX_HEADERS];
    struct http_request req = {.headers = h};

    static char out[40000];
    int tr = parse_request_split(buf, size, &tight, &req);
    require(tr <= 0 || (size_t)tr <= tight.max_head);
    int rc = parse_request_split(buf, size, &lim, &req);
    if (rc <= 0) {
        /* The error answer for a failed parse always fits a small buffer. */
        require(hs_build_error(out, 512, err_http_status(rc), err_str(rc), NULL) > 0);
        return;
    }
    require((size_t)rc <= size && (size_t)rc <= lim.max_head);
    require(req.nheaders <= MAX_HEADERS);
    span_inside(req.method, buf, (size_t)rc);
    span_inside(req.target, buf, (size_t)rc);
    headers_inside(h, req.nheaders, buf, (size_t)rc);

    struct hs_request_info info;
    int hc = hs_check_request(&req, &info);
    require(hc != 0 || count_conn_opts(h, req.nheaders) <= HS_MAX_CONN_OPTIONS);
    if (hc != 0) {
        require(hc < 0);
        int st = err_http_status(hc);
        require(st == 400 || st == 405 || st == 426);
        require(hs_build_error(out, 512, st, err_str(hc), NULL) > 0);
        return;
    }
    require(info.key.n == HS_KEY_LEN);

    static const uint8_t nonce[16] = "fuzz-nonce-0123";
    char key[HS_KEY_LEN + 1];
    hs_make_key(nonce, key);
    struct hs_upstream up = {
        .key = key, .client_ip = "192.0.2.1", .proto = "https", .request_id = info.request_id};
    int n = hs_build_upstream(out, sizeof(out), &req, &info, &up);
    require(n > 0);

    /* What we send upstream must be a valid upgrade request again. */
    static struct http_header bh[MAX_HEADERS + 16];
    struct http_request back = {.headers = bh};
    struct http_limits blim = {sizeof(out), MAX_HEADERS + 16};
    size_t scan = 0;
    require(http_parse_request(out, (size_t)n, &blim, &back, &scan) == n);
    struct hs_request_info binfo;
    require(hs_check_request(&back, &binfo) == 0);
    require(binfo.key.n == HS_KEY_LEN && memcmp(binfo.key.p, key, HS_KEY_LEN) == 0);

    /* Small capacities must fail cleanly. */
    require(hs_build_upstream(out, (size_t)n - 1, &req, &info, &up) == ERR_NOMEM);

    /* Our 101 for this client passes our own check of a backend's 101. */
    char r101[512];
    struct http_span proto = {"", 0};
    unsigned from = 0;
    int pi = http_header_next(h, req.nheaders, "Sec-WebSocket-Protocol", &from);
    struct http_span list, elem;
    if (pi >= 0) {
        list = h[pi].value;
        if (http_list_next(&list, &elem) && elem.n < 200)
            proto = elem;
    }
    int m = hs_build_101(r101, sizeof(r101), info.key, proto, NULL);
    require(m > 0);
    struct http_header rh[8];
    struct http_response resp = {.headers = rh};
    struct http_limits rlim = {sizeof(r101), 8};
    scan = 0;
    require(http_parse_response(r101, (size_t)m, &rlim, &resp, &scan) == m);
    char accept[HS_ACCEPT_LEN + 1];
    hs_accept_key(info.key.p, info.key.n, accept);
    struct http_span chosen;
    int cr = hs_check_response(&resp, accept, &req, &chosen);
    /* A non-token first element is refused; anything else must pass. */
    if (cr != 0)
        require(cr == ERR_HS_BAD_PROTOCOL && proto.n > 0);
}

static void fuzz_response(const char *buf, size_t size)
{
    struct http_header h[MAX_HEADERS], h2[MAX_HEADERS];
    struct http_response resp = {.headers = h}, r2 = {.headers = h2};
    size_t scan = 0;

    int rc = http_parse_response(buf, size, &lim, &resp, &scan);
    scan = 0;
    int first = http_parse_response(buf, size / 3, &lim, &r2, &scan);
    require(first == ERR_AGAIN || first == rc);
    require(http_parse_response(buf, size, &lim, &r2, &scan) == rc);
    if (rc <= 0)
        return;
    require(resp.status >= 100 && resp.status <= 999);
    span_inside(resp.reason, buf, (size_t)rc);
    headers_inside(h, resp.nheaders, buf, (size_t)rc);

    static char out[20000];
    int n = hs_build_relayed_head(out, sizeof(out), &resp, size - (size_t)rc);
    if (count_conn_opts(h, resp.nheaders) > HS_MAX_CONN_OPTIONS) {
        require(n == ERR_RANGE);
    } else {
        require(n > 0);
        struct http_header oh[MAX_HEADERS + 2];
        struct http_response back = {.headers = oh};
        struct http_limits olim = {sizeof(out), MAX_HEADERS + 2};
        scan = 0;
        require(http_parse_response(out, (size_t)n, &olim, &back, &scan) == n);
        require(back.status == resp.status);
        require(http_header_count(oh, back.nheaders, "Connection") == 1);
    }

    static const char req_s[] = "GET / HTTP/1.1\r\nHost: a\r\n"
                                "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n";
    struct http_header qh[4];
    struct http_request req = {.headers = qh};
    struct http_limits qlim = {sizeof(req_s), 4};
    scan = 0;
    require(http_parse_request(req_s, sizeof(req_s) - 1, &qlim, &req, &scan) > 0);
    struct http_span proto;
    int cr = hs_check_response(&resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &req, &proto);
    if (cr == 0)
        require(proto.n == 0 || http_span_ieq(proto, "chat") || http_span_ieq(proto, "superchat"));
}

static void fuzz_chunked(const char *buf, size_t size)
{
    char *one = malloc(size + 1);
    char *pieces = malloc(size + 1);
    require(one != NULL && pieces != NULL);

    /* One shot, in place. */
    memcpy(one, buf, size);
    struct http_chunked c = {0};
    size_t on = 0;
    int rc = http_chunked_decode(&c, one, size, one, size, &on);
    require(rc == ERR_HTTP_CHUNKED || ((size_t)rc <= size && on <= (size_t)rc));

    /* Small pieces into a small output buffer. */
    struct http_chunked d = {0};
    size_t pos = 0, pn = 0;
    int err = 0;
    while (pos < size && !d.done) {
        size_t take = size - pos < 7 ? size - pos : 7;
        size_t got = 0;
        char small[5];
        int r = http_chunked_decode(&d, buf + pos, take, small, sizeof(small), &got);
        if (r < 0) {
            err = r;
            break;
        }
        require(got <= sizeof(small) && got <= (size_t)r);
        memcpy(pieces + pn, small, got);
        pn += got;
        pos += (size_t)r;
        /* A fresh output buffer each time: no progress would loop forever. */
        require(r > 0 || d.done);
    }
    if (rc < 0) {
        require(err == ERR_HTTP_CHUNKED);
    } else {
        require(err == 0 && d.done == c.done && pos == (size_t)rc && pn == on);
        require(memcmp(one, pieces, on) == 0);
    }
    free(one);
    free(pieces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    fuzz_request(buf, size);
    fuzz_response(buf, size);
    fuzz_chunked(buf, size);
    return 0;
}
