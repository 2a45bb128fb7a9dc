/* Tests for src/config/config.c: value parsers, addresses, routes, and whole
 * files with the exact file:line:column of every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/err.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[64];
static char cfgpath[128]; /* tmpdir/wsgate.yaml */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/wsgate-config-test.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cfgpath, sizeof(cfgpath), "%s/wsgate.yaml", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    unlink(cfgpath);
    rmdir(tmpdir);
    return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

struct loaded {
    int rc;
    struct config *cfg;
    char *errs; /* everything written to the errs stream, malloc'd */
    size_t errs_len;
};

/* Write text (len bytes; strlen if len is 0) to tmpdir/wsgate.yaml, load it,
 * and capture the error output with the path replaced by "wsgate.yaml". */
static struct loaded load_n(const char *text, size_t len)
{
    struct loaded l = {0};
    char *raw = NULL;
    size_t rawlen = 0;

    write_file(cfgpath, text, len ? len : strlen(text));
    FILE *errs = open_memstream(&raw, &rawlen);
    assert_non_null(errs);
    l.rc = config_load_file(cfgpath, errs, &l.cfg);
    assert_int_equal(fclose(errs), 0);

    /* Strip the temp directory so expectations can say "wsgate.yaml:". */
    size_t dlen = strlen(tmpdir) + 1;
    l.errs = calloc(1, rawlen + 1);
    assert_non_null(l.errs);
    size_t o = 0;
    for (size_t i = 0; i < rawlen;) {
        if (rawlen - i >= dlen && memcmp(raw + i, tmpdir, dlen - 1) == 0 &&
            raw[i + dlen - 1] == '/') {
            i += dlen;
            continue;
        }
        l.errs[o++] = raw[i++];
    }
    l.errs_len = o;
    free(raw);
    if (l.rc != 0)
        assert_null(l.cfg);
    return l;
}

static struct loaded load(const char *text)
{
    return load_n(text, 0);
}

static void loaded_free(struct loaded *l)
{
    config_free(l->cfg);
    free(l->errs);
}

/* The file must fail with exactly this error output. */
/* The first backend of route i's upstream. */
static const struct rc_backend *backend_of(const struct config *c, size_t i)
{
    return &c->routing.routes[i].splits[0].up->backends[0];
}

static void expect_errors(const char *text, const char *expected)
{
    struct loaded l = load(text);

    assert_int_equal(l.rc, ERR_CONFIG);
    assert_string_equal(l.errs, expected);
    loaded_free(&l);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#define MINIMAL "listen: 127.0.0.1:8080\nroutes:\n  - path: /\n    backend: ws://127.0.0.1:9000\n"

/* ------------------------------------------------------------ durations */

static void test_duration_valid(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } cases[] = {
        {"500ms", 500}, {"10s", 10000}, {"2m", 120000},   {"1h", 3600000},
        {"0", 0},       {"off", 0},     {"0s", 0},        {"0ms", 0},
        {"007s", 7000}, {"1ms", 1},     {"90m", 5400000}, {"18446744073709551615ms", UINT64_MAX},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ms = 12345;
        assert_int_equal(conf_parse_duration(cases[i].in, &ms), 0);
        assert_true(ms == cases[i].ms);
    }
}

static void test_duration_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "10",
        "1",
        "1.5s",
        "-1s",
        "+1s",
        "10 s",
        " 10s",
        "10s ",
        "10S",
        "10sec",
        "s",
        "ms",
        "1d",
        "10mss",
        "1h30m",
        "Off",
        "OFF",
        "off ",
        "00",
        "0x10s",
        "18446744073709551616ms",
        "18446744073709551615s",
        "5124095576030432h",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 777;
        if (conf_parse_duration(bad[i], &ms) != ERR_CONFIG)
            fail_msg("duration \"%s\" should be rejected", bad[i]);
        assert_true(ms == 777);
    }
    uint64_t ms = 1;
    assert_int_equal(conf_parse_duration(NULL, &ms), ERR_CONFIG);
}

/* ---------------------------------------------------------------- sizes */

static void test_size_valid(void **state)
{
    static const struct {
        const char *in;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"16KiB", 16384},
        {"64k", 65536},
        {"64K", 65536},
        {"16MiB", 16777216},
        {"1m", 1048576},
        {"1M", 1048576},
        {"1GiB", 1073741824},
        {"2g", 2147483648u},
        {"2G", 2147483648u},
        {"1024GiB", (uint64_t)1 << 40},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183GiB", 17179869183ull << 30},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t b = 1;
        assert_int_equal(conf_parse_size(cases[i].in, &b), 0);
        assert_true(b == cases[i].bytes);
    }
}

static void test_size_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "KiB",
        "16kb",
        "16KB",
        "16kib",
        "1.5MiB",
        "-1",
        "+1",
        "16 KiB",
        " 16",
        "16 ",
        "16Ki",
        "16TiB",
        "16b",
        "0x10",
        "1e6",
        "16KiBs",
        "18446744073709551616",
        "17179869184GiB",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b = 99;
        if (conf_parse_size(bad[i], &b) != ERR_CONFIG)
            fail_msg("size \"%s\" should be rejected", bad[i]);
        assert_true(b == 99);
    }
    uint64_t b = 1;
    assert_int_equal(conf_parse_size(NULL, &b), ERR_CONFIG);
}

/* --------------------------------------------------------------- listen */

static void test_listen_valid(void **state)
{
    struct conf_addr a;
    const char *why = NULL;

    assert_int_equal(conf_parse_listen("127.0.0.1:8080", &a, &why), 0);
    assert_string_equal(a.text, "127.0.0.1:8080");
    assert_int_equal(a.sa.ss_family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a.sa;
    assert_int_equal(ntohs(in->sin_port), 8080);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(conf_parse_listen("[::1]:8080", &a, &why), 0);
    assert_string_equal(a.text, "[::1]:8080");
    assert_int_equal(a.sa.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));

    assert_int_equal(conf_parse_listen("*:80", &a, &why), 0);
    assert_string_equal(a.text, "0.0.0.0:80");

    assert_int_equal(conf_parse_listen(":9000", &a, &why), 0);
    assert_string_equal(a.text, "0.0.0.0:9000");

    assert_int_equal(conf_parse_listen("[::]:443", &a, &why), 0);
    assert_string_equal(a.text, "[::]:443");

    /* Port 0: the kernel picks one. */
    assert_int_equal(conf_parse_listen("127.0.0.1:0", &a, &why), 0);
    assert_string_equal(a.text, "127.0.0.1:0");

    /* A name from /etc/hosts: no network needed. */
    assert_int_equal(conf_parse_listen("localhost:8081", &a, NULL), 0);
    assert_true(strcmp(a.text, "127.0.0.1:8081") == 0 || strcmp(a.text, "[::1]:8081") == 0);
}

static void test_listen_invalid(void **state)
{
    static const struct {
        const char *in;
        const char *why;
    } cases[] = {
        {"127.0.0.1", "expected host:port, [ipv6]:port or *:port"},
        {"", "expected host:port, [ipv6]:port or *:port"},
        {"127.0.0.1:", "port must be a number from 0 to 65535"},
        {"127.0.0.1:65536", "port must be a number from 0 to 65535"},
        {"127.0.0.1:-1", "port must be a number from 0 to 65535"},
        {"127.0.0.1:80a", "port must be a number from 0 to 65535"},
        {"127.0.0.1:123456", "port must be a number from 0 to 65535"},
        {"*:http", "port must be a number from 0 to 65535"},
        {"::1:80", "an IPv6 address needs brackets, e.g. [::1]:8080"},
        {"[::1:80", "missing ']' after the IPv6 address"},
        {"[::1]80", "expected ':' and a port after ']'"},
        {"[::1]", "expected host:port, [ipv6]:port or *:port"},
        {"[127.0.0.1]:80", "not a valid IPv6 address"},
        {"[nope]:80", "not a valid IPv6 address"},
    };
    struct conf_addr a;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;
        memset(&a, 0xAB, sizeof(a));
        if (conf_parse_listen(cases[i].in, &a, &why) != ERR_CONFIG)
            fail_msg("listen \"%s\" should be rejected", cases[i].in);
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(((unsigned char *)&a)[0], 0xAB); /* untouched */
    }
    assert_int_equal(conf_parse_listen(NULL, &a, NULL), ERR_CONFIG);
}

/* -------------------------------------------------------------- backend */

static void test_backend_valid(void **state)
{
    static const struct {
        const char *url;
        const char *addr;
        const char *path;
    } cases[] = {
        {"ws://127.0.0.1:9000", "127.0.0.1:9000", ""},
        {"ws://127.0.0.1:9000/", "127.0.0.1:9000", ""},
        {"ws://127.0.0.1", "127.0.0.1:80", ""},
        {"ws://127.0.0.1/", "127.0.0.1:80", ""},
        {"WS://127.0.0.1:1", "127.0.0.1:1", ""},
        {"ws://[::1]:9001", "[::1]:9001", ""},
        {"ws://[::1]", "[::1]:80", ""},
        {"ws://127.0.0.1:65535", "127.0.0.1:65535", ""},
        {"ws://127.0.0.1:9000/chat", "127.0.0.1:9000", "/chat"},
        {"ws://127.0.0.1:9000/a/b/", "127.0.0.1:9000", "/a/b"},
        {"ws://127.0.0.1:9000//", "127.0.0.1:9000", ""},
        {"wss://127.0.0.1:9000/chat", "127.0.0.1:9000", "/chat"},
        {"WSS://127.0.0.1", "127.0.0.1:443", ""},
        {"wss://[::1]", "[::1]:443", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf_addr a;
        char *path = NULL;
        const char *why = NULL;
        assert_int_equal(conf_parse_ws_url(cases[i].url, &a, &path, &why), 0);
        assert_string_equal(a.text, cases[i].addr);
        assert_non_null(path);
        assert_string_equal(path, cases[i].path);
        free(path);
    }
}

static void test_backend_invalid(void **state)
{
    static const char *const expected = "expected a URL such as ws://127.0.0.1:9000";
    static const char *const query = "a backend URL has no query or fragment";
    static const char *const port = "port must be a number from 1 to 65535";
    static const struct {
        const char *url;
        const char *why;
    } cases[] = {
        {"wss://127.0.0.1:0", port},
        {"wss://", expected},
        {"https://127.0.0.1", expected},
        {"ws://127.0.0.1:9000?x=1", query},
        {"ws://127.0.0.1:9000/#a", query},
        {"ws://127.0.0.1:9000/a?b", query},
        {"ws://127.0.0.1:9000/a b", "the path of a backend URL is visible ASCII without spaces"},
        {"ws://127.0.0.1:0", port},
        {"ws://127.0.0.1:65536", port},
        {"ws://127.0.0.1:", port},
        {"ws://127.0.0.1:x", port},
        {"http://127.0.0.1:9000", expected},
        {"127.0.0.1:9000", expected},
        {"ws://", expected},
        {"ws:///", expected},
        {"ws://user@127.0.0.1", expected},
        {"", expected},
        {"ws://:9000", "backend URL has no host"},
        {"ws://::1:80", "an IPv6 address needs brackets, e.g. [::1]:8080"},
        {"ws://[::1:80", "missing ']' after the IPv6 address"},
        {"ws://[1.2.3.4]:80", "not a valid IPv6 address"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf_addr a;
        char *path = NULL;
        const char *why = NULL;
        if (conf_parse_ws_url(cases[i].url, &a, &path, &why) != ERR_CONFIG)
            fail_msg("backend \"%s\" should be rejected", cases[i].url);
        assert_null(path);
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
    }
    struct conf_addr a;
    assert_int_equal(conf_parse_ws_url(NULL, &a, NULL, NULL), ERR_CONFIG);
}

/* --------------------------------------------------------------- routes */

static void test_default_route_flag(void **state)
{
    struct config c;
    const char *why = NULL;

    config_defaults(&c);
    assert_int_equal(route_conf_add_default(&c.routing, "ws://127.0.0.1:1", &why), 0);
    assert_int_equal(c.routing.nroutes, 1);
    assert_string_equal(c.routing.routes[0].path_prefix, "/");
    /* Again: the newer backend replaces the old one. */
    assert_int_equal(route_conf_add_default(&c.routing, "ws://127.0.0.1:9/base", &why), 0);
    assert_int_equal(c.routing.nroutes, 1);
    assert_int_equal(config_finish(&c), 0);
    const struct rc_upstream *up = c.routing.routes[0].splits[0].up;
    assert_int_equal(up->nbackends, 1);
    assert_false(up->backends[0].tls);
    assert_false(up->has_tls);
    assert_string_equal(up->backends[0].url, "ws://127.0.0.1:9/base");
    assert_string_equal(up->backends[0].addr.text, "127.0.0.1:9");
    assert_string_equal(up->backends[0].path, "/base");
    assert_non_null(up->backends[0].state);
    /* A wss:// backend gets a TLS client context (the system's CAs). */
    assert_int_equal(route_conf_add_default(&c.routing, "wss://127.0.0.1:9", &why), 0);
    assert_int_equal(config_finish(&c), 0);
    up = c.routing.routes[0].splits[0].up;
    assert_true(up->backends[0].tls);
    assert_true(up->backends[0].host_is_ip);
    assert_string_equal(up->backends[0].host, "127.0.0.1");
    assert_true(up->has_tls);
    assert_non_null(up->tls.cl);
    /* The route has the core limits. */
    assert_int_equal(c.routing.routes[0].lim.ping_interval_ms, c.lim.ping_interval_ms);
    config_clear(&c);
    assert_int_equal(c.routing.nroutes, 0);
    config_clear(&c); /* twice is harmless */
    config_free(NULL);
}

/* ------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    struct config c;

    memset(&c, 0xFF, sizeof(c));
    config_defaults(&c);
    assert_int_equal(c.nlisteners, 0);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_connections, 0); /* auto: fit the descriptor limit */
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_int_equal(c.handshake_timeout_ms, 10000);
    assert_int_equal(c.lim.connect_timeout_ms, 5000);
    assert_int_equal(c.lim.close_timeout_ms, 5000);
    assert_int_equal(c.lim.ping_interval_ms, 30000);
    assert_int_equal(c.lim.pong_timeout_ms, 10000);
    assert_int_equal(c.lim.idle_timeout_ms, 0);
    assert_int_equal(c.lim.max_stall_ms, 300000);
    assert_int_equal(c.shutdown_timeout_ms, 10000);
    assert_int_equal(c.max_header_size, 16384);
    assert_int_equal(c.max_headers, 100);
    assert_int_equal(c.lim.max_frame_size, 16 * 1024 * 1024);
    assert_int_equal(c.lim.max_message_size, 16 * 1024 * 1024);
    assert_true(c.lim.validate_utf8);
    assert_int_equal(c.lim.high_watermark, 256 * 1024);
    assert_int_equal(c.lim.low_watermark, 64 * 1024);
    assert_int_equal(c.lim.request_timeout_ms, 60000);
    assert_int_equal(c.lim.response_timeout_ms, 60000);
    assert_int_equal(c.lim.http_idle_timeout_ms, 60000);
    assert_int_equal(c.lim.max_request_body, 0);
    assert_true(c.merge_slashes);
    assert_null(c.routing.routes);
    assert_int_equal(c.routing.nroutes, 0);
}

static void test_minimal_file_gets_defaults(void **state)
{
    struct loaded l = load(MINIMAL);
    struct config d;

    assert_int_equal(l.rc, 0);
    assert_string_equal(l.errs, "");
    config_defaults(&d);
    assert_string_equal(l.cfg->listeners[0].addr.text, "127.0.0.1:8080");
    assert_int_equal(l.cfg->workers, d.workers);
    assert_int_equal(l.cfg->max_connections, d.max_connections);
    assert_int_equal(l.cfg->handshake_timeout_ms, d.handshake_timeout_ms);
    assert_int_equal(l.cfg->lim.ping_interval_ms, d.lim.ping_interval_ms);
    assert_int_equal(l.cfg->lim.idle_timeout_ms, d.lim.idle_timeout_ms);
    assert_int_equal(l.cfg->lim.max_stall_ms, d.lim.max_stall_ms);
    assert_int_equal(l.cfg->lim.max_frame_size, d.lim.max_frame_size);
    assert_int_equal(l.cfg->lim.high_watermark, d.lim.high_watermark);
    assert_int_equal(l.cfg->lim.low_watermark, d.lim.low_watermark);
    assert_true(l.cfg->lim.validate_utf8);
    assert_int_equal(l.cfg->routing.nroutes, 1);
    assert_string_equal(l.cfg->routing.routes[0].path_prefix, "/");
    assert_string_equal(backend_of(l.cfg, 0)->url, "ws://127.0.0.1:9000");
    assert_int_equal(config_validate(l.cfg, NULL), 0);
    loaded_free(&l);
}

/* ----------------------------------------------------------- full file */

static void test_full_valid_file(void **state)
{
    struct loaded l = load("# every key\n"
                           "listen: \"[::1]:8443\"\n"
                           "workers: 4\n"
                           "max_connections: 500\n"
                           "log_level: debug\n"
                           "handshake_timeout: 500ms\n"
                           "connect_timeout: 2s\n"
                           "close_timeout: 3s\n"
                           "ping_interval: off\n"
                           "pong_timeout: 1m\n"
                           "idle_timeout: 1h\n"
                           "max_stall: 45s\n"
                           "shutdown_timeout: 90s\n"
                           "max_header_size: 32KiB\n"
                           "max_headers: 50\n"
                           "max_frame_size: 1MiB\n"
                           "max_message_size: 64MiB\n"
                           "validate_utf8: false\n"
                           "high_watermark: 1MiB\n"
                           "low_watermark: 128k\n"
                           "routes:\n"
                           "  - path: /\n"
                           "    backend: ws://127.0.0.1:9000\n"
                           "  - path: /api/v1\n"
                           "    backend: 'ws://[::1]:9001/'\n"
                           "  - {path: /api, backend: ws://localhost:9002}\n");

    assert_string_equal(l.errs, "");
    assert_int_equal(l.rc, 0);
    struct config *c = l.cfg;
    assert_string_equal(c->listeners[0].addr.text, "[::1]:8443");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->max_connections, 500);
    assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c->handshake_timeout_ms, 500);
    assert_int_equal(c->lim.connect_timeout_ms, 2000);
    assert_int_equal(c->lim.close_timeout_ms, 3000);
    assert_int_equal(c->lim.ping_interval_ms, 0);
    assert_int_equal(c->lim.pong_timeout_ms, 60000);
    assert_int_equal(c->lim.idle_timeout_ms, 3600000);
    assert_int_equal(c->lim.max_stall_ms, 45000);
    assert_int_equal(c->shutdown_timeout_ms, 90000);
    assert_int_equal(c->max_header_size, 32768);
    assert_int_equal(c->max_headers, 50);
    assert_int_equal(c->lim.max_frame_size, 1048576);
    assert_int_equal(c->lim.max_message_size, 64 * 1048576);
    assert_false(c->lim.validate_utf8);
    assert_int_equal(c->lim.high_watermark, 1048576);
    assert_int_equal(c->lim.low_watermark, 131072);
    assert_int_equal(c->routing.nroutes, 3);
    /* The short form keeps "longest prefix first". */
    assert_string_equal(c->routing.routes[0].path_prefix, "/api/v1");
    assert_string_equal(backend_of(c, 0)->url, "ws://[::1]:9001/");
    assert_string_equal(backend_of(c, 0)->addr.text, "[::1]:9001");
    assert_string_equal(c->routing.routes[1].path_prefix, "/api");
    assert_string_equal(c->routing.routes[2].path_prefix, "/");
    assert_string_equal(backend_of(c, 2)->addr.text, "127.0.0.1:9000");
    assert_int_equal(config_validate(c, NULL), 0);
    loaded_free(&l);
}

static void test_workers_auto_and_off(void **state)
{
    struct loaded l = load("workers: auto\nping_interval: 0\nidle_timeout: off\nmax_stall: off\n"
                           "log_level: error\nlisten: '*:0'\n"
                           "routes:\n- path: /\n  backend: ws://127.0.0.1:9000\n");

    assert_string_equal(l.errs, "");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg->workers, 0);
    assert_int_equal(l.cfg->lim.ping_interval_ms, 0);
    assert_int_equal(l.cfg->lim.idle_timeout_ms, 0);
    assert_int_equal(l.cfg->lim.max_stall_ms, 0);
    assert_int_equal(l.cfg->log_level, LOG_LEVEL_ERROR);
    assert_string_equal(l.cfg->listeners[0].addr.text, "0.0.0.0:0");
    loaded_free(&l);
}

static void test_max_stall_values(void **state)
{
    expect_errors("listen: 127.0.0.1:8080\n"
                  "max_stall: 5\n"
                  "routes:\n  - path: /\n    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:2:12: max_stall: expected a duration such as 500ms, 10s or 2m, or "
                  "off, got \"5\"\n");
    expect_errors("listen: 127.0.0.1:8080\n"
                  "max_stall: 9000h\n"
                  "routes:\n  - path: /\n    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:2:12: max_stall: expected a duration of at most 8760h, got "
                  "\"9000h\"\n");
}

/* Plain HTTP: core keys, route overrides, websocket_only, http_pool. */
static void test_http_keys(void **state)
{
    struct loaded l =
        load("listen: 127.0.0.1:8080\n"
             "request_timeout: off\n"
             "response_timeout: 2m\n"
             "max_request_body: 10MiB\n"
             "upstreams:\n"
             "  app:\n"
             "    backends: [ws://127.0.0.1:9000]\n"
             "    http_pool: {max_idle: 4, idle_timeout: 5s}\n"
             "  other: {backends: [ws://127.0.0.1:9001]}\n"
             "routes:\n"
             "  - {match: {path_prefix: /poll}, upstream: app, response_timeout: 5m,\n"
             "     http_idle_timeout: 10s, max_request_body: 1KiB}\n"
             "  - {match: {path_prefix: /ws}, upstream: other, websocket_only: true,\n"
             "     request_timeout: 30s}\n");
    assert_int_equal(l.rc, 0);
    const struct config *c = l.cfg;
    assert_int_equal(c->lim.request_timeout_ms, 0);
    assert_int_equal(c->lim.response_timeout_ms, 120000);
    assert_int_equal(c->lim.http_idle_timeout_ms, 60000);
    assert_int_equal(c->lim.max_request_body, 10 * 1024 * 1024);
    const struct rc_route *poll = &c->routing.routes[0], *ws = &c->routing.routes[1];
    assert_int_equal(poll->lim.response_timeout_ms, 300000);
    assert_int_equal(poll->lim.http_idle_timeout_ms, 10000);
    assert_int_equal(poll->lim.max_request_body, 1024);
    assert_int_equal(poll->lim.request_timeout_ms, 0); /* the core value */
    assert_false(poll->websocket_only);
    assert_true(ws->websocket_only);
    assert_int_equal(ws->lim.request_timeout_ms, 30000);
    assert_int_equal(ws->lim.response_timeout_ms, 120000);
    assert_int_equal(poll->splits[0].up->http_pool_max_idle, 4);
    assert_int_equal(poll->splits[0].up->http_pool_idle_ms, 5000);
    assert_int_equal(ws->splits[0].up->http_pool_max_idle, 32);
    assert_int_equal(ws->splits[0].up->http_pool_idle_ms, 60000);
    loaded_free(&l);

    expect_errors(
        "listen: 127.0.0.1:8080\n"
        "response_timeout: off\n"
        "upstreams:\n"
        "  app:\n"
        "    backends: [ws://127.0.0.1:9000]\n"
        "    http_pool: {max_idle: lots, idle_timeout: 0s, size: 3}\n"
        "  b: {backends: [ws://127.0.0.1:9001], http_pool: 32}\n"
        "routes:\n"
        "  - {upstream: app, websocket_only: maybe, max_request_body: -1}\n",
        "wsgate.yaml:2:19: response_timeout: expected a duration greater than 0 (this "
        "timeout cannot be off), got \"off\"\n"
        "wsgate.yaml:6:27: max_idle: expected an integer from 0 to 10000, got \"lots\"\n"
        "wsgate.yaml:6:47: idle_timeout: expected a duration greater than 0 (this timeout "
        "cannot be off), got \"0s\"\n"
        "wsgate.yaml:6:51: unknown key \"size\" in http_pool (expected one of: max_idle, "
        "idle_timeout)\n"
        "wsgate.yaml:7:51: http_pool: expected a mapping such as {max_idle: 32, "
        "idle_timeout: 60s}, got \"32\"\n"
        "wsgate.yaml:9:37: websocket_only: expected true or false, got \"maybe\"\n"
        "wsgate.yaml:9:62: max_request_body: expected a size such as 64KiB or 16MiB, got "
        "\"-1\"\n");
}

static void test_anchor_and_alias(void **state)
{
    struct loaded l = load("listen: &addr 127.0.0.1:8080\n"
                           "routes:\n"
                           "  - path: /a\n"
                           "    backend: &be ws://127.0.0.1:9000\n"
                           "  - path: /b\n"
                           "    backend: *be\n");

    assert_string_equal(l.errs, "");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg->routing.nroutes, 2);
    assert_string_equal(backend_of(l.cfg, 1)->url, "ws://127.0.0.1:9000");
    loaded_free(&l);
}

/* ---------------------------------------------- errors with positions */

static void test_error_examples(void **state)
{
    expect_errors("listen: 127.0.0.1:8080\n"
                  "# workers below\n"
                  "workers: lots\n"
                  "routes:\n"
                  "  - path: /\n"
                  "    backend: ws://127.0.0.1:9000\n"
                  "timeout_handshake: 5s\n"
                  "log_level: info\n"
                  "handshake_timeout: 10\n",
                  "wsgate.yaml:3:10: workers: expected \"auto\" or an integer from 1 to 256, "
                  "got \"lots\"\n"
                  "wsgate.yaml:7:1: unknown key \"timeout_handshake\"\n"
                  "wsgate.yaml:9:20: handshake_timeout: expected a duration such as 500ms, 10s "
                  "or 2m, got \"10\"\n");
}

static void test_missing_required(void **state)
{
    expect_errors("listen: 127.0.0.1:8080\n", "wsgate.yaml:1:1: missing required key \"routes\"\n");
    expect_errors("# nothing but a comment\n\nroutes:\n  - path: /\n"
                  "    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:3:1: missing required key \"listen\"\n");
    expect_errors("", "wsgate.yaml:1:1: missing required key \"listen\"\n"
                      "wsgate.yaml:1:1: missing required key \"routes\"\n");
    expect_errors("# only comments\n", "wsgate.yaml:1:1: missing required key \"listen\"\n"
                                       "wsgate.yaml:1:1: missing required key \"routes\"\n");
}

static void test_syntax_errors(void **state)
{
    struct loaded l = load("listen: 127.0.0.1:8080\nroutes: @x\n");
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_string_equal(l.errs,
                        "wsgate.yaml:2:9: invalid YAML: plain scalar cannot start with '@'\n");
    loaded_free(&l);

    l = load("listen: 127.0.0.1:8080\nworkers: \"4\nroutes: []\n");
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_int_equal(count_lines(l.errs), 1);
    assert_true(strncmp(l.errs, "wsgate.yaml:", 12) == 0);
    assert_non_null(strstr(l.errs, ": invalid YAML: "));
    int line = 0, col = 0;
    assert_int_equal(sscanf(l.errs, "wsgate.yaml:%d:%d:", &line, &col), 2);
    assert_true(line >= 2 && col >= 1);
    loaded_free(&l);

    l = load("a: b: c\n");
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_true(strncmp(l.errs, "wsgate.yaml:1:5: invalid YAML: ", 31) == 0);
    loaded_free(&l);

    l = load("listen: [1, 2\n");
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_true(strncmp(l.errs, "wsgate.yaml:2:1: invalid YAML: ", 31) == 0);
    loaded_free(&l);

    expect_errors(MINIMAL "---\nworkers: 2\n",
                  "wsgate.yaml:5:1: only one YAML document is allowed in the file\n");
    expect_errors(MINIMAL "workers: *nope\n",
                  "wsgate.yaml:5:10: alias refers to an unknown anchor \"nope\"\n");
    expect_errors("listen: *:8080\nroutes:\n  - path: /\n    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:1:9: *:8080 is read as a YAML alias; quote it: \"*:8080\"\n");
}

static void test_cannot_open(void **state)
{
    char path[160], *raw = NULL, expect[256];
    size_t rawlen = 0;
    struct config *c = (struct config *)&rawlen; /* must be reset to NULL */

    snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
    FILE *errs = open_memstream(&raw, &rawlen);
    assert_int_equal(config_load_file(path, errs, &c), ERR_CONFIG);
    fclose(errs);
    assert_null(c);
    snprintf(expect, sizeof(expect), "%s: cannot open: No such file or directory\n", path);
    assert_string_equal(raw, expect);
    free(raw);

    /* A directory opens but cannot be read. */
    raw = NULL;
    errs = open_memstream(&raw, &rawlen);
    assert_int_equal(config_load_file(tmpdir, errs, &c), ERR_CONFIG);
    fclose(errs);
    snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory\n", tmpdir);
    assert_string_equal(raw, expect);
    free(raw);

    /* errs may be NULL. */
    assert_int_equal(config_load_file(path, NULL, &c), ERR_CONFIG);
}

static void test_duplicate_keys(void **state)
{
    expect_errors("workers: 2\n" MINIMAL "workers: 3\n",
                  "wsgate.yaml:6:1: duplicate key \"workers\" (first defined at line 1)\n");
    expect_errors("listen: 127.0.0.1:8080\n"
                  "routes:\n"
                  "  - path: /\n"
                  "    path: /x\n"
                  "    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:4:5: duplicate key \"path\" (first defined at line 3)\n");
    /* Inside a flow mapping too. */
    expect_errors("listen: 127.0.0.1:8080\n"
                  "routes: [{path: /, backend: ws://127.0.0.1:9000, path: /a}]\n",
                  "wsgate.yaml:2:50: duplicate key \"path\" (first defined at line 2)\n");
}

static void test_wrong_types(void **state)
{
    expect_errors("listen: {host: 127.0.0.1}\n"
                  "workers: [1, 2]\n"
                  "validate_utf8:\n"
                  "max_headers: \"\"\n"
                  "routes: /\n",
                  "wsgate.yaml:1:9: listen: expected an address such as 127.0.0.1:8080, "
                  "[::1]:8080 or *:8080, got a mapping\n"
                  "wsgate.yaml:2:10: workers: expected \"auto\" or an integer from 1 to 256, got "
                  "a sequence\n"
                  "wsgate.yaml:3:1: validate_utf8: expected true or false, got nothing\n"
                  "wsgate.yaml:4:14: max_headers: expected an integer from 1 to 1000, got \"\"\n"
                  "wsgate.yaml:5:9: routes: expected a sequence of routes, got \"/\"\n");
    expect_errors("- listen: 127.0.0.1:8080\n",
                  "wsgate.yaml:1:1: expected a mapping of settings (key: value lines) at the top "
                  "level, got a sequence\n");
    expect_errors("just text\n", "wsgate.yaml:1:1: expected a mapping of settings (key: value "
                                 "lines) at the top level, got \"just text\"\n");
    expect_errors(MINIMAL "? [a]\n: 1\n", "wsgate.yaml:5:3: expected a key name, got a sequence\n");
    expect_errors("listen: 127.0.0.1:8080\nroutes: []\n",
                  "wsgate.yaml:2:9: routes: expected at least one route, got an empty sequence\n");
    expect_errors("listen: 127.0.0.1:8080\nroutes:\n",
                  "wsgate.yaml:2:1: routes: expected a sequence of routes, got nothing\n");
    /* A NUL from an escape can't sneak past the C-string parsers. */
    expect_errors("listen: \"127.0.0.1:80\\0junk\"\nroutes:\n  - path: /\n"
                  "    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:1:9: listen: expected an address such as 127.0.0.1:8080, "
                  "[::1]:8080 or *:8080, got \"127.0.0.1:80\\x00junk\"\n");
}

static void test_value_errors(void **state)
{
    expect_errors("listen: 127.0.0.1:99999\n"
                  "max_connections: 0\n"
                  "log_level: 'loud'\n"
                  "connect_timeout: off\n"
                  "close_timeout: 0\n"
                  "ping_interval: 10\n"
                  "shutdown_timeout: 9000h\n"
                  "max_header_size: 2MiB\n"
                  "max_headers: 1001\n"
                  "max_frame_size: lots\n"
                  "max_message_size: 2048GiB\n"
                  "validate_utf8: yes\n"
                  "high_watermark: 8KiB\n"
                  "workers: 0\n"
                  "routes:\n  - path: /\n    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:1:9: listen: port must be a number from 0 to 65535, got "
                  "\"127.0.0.1:99999\"\n"
                  "wsgate.yaml:2:18: max_connections: expected \"auto\" or an integer from 1 to "
                  "1000000, got \"0\"\n"
                  "wsgate.yaml:3:12: log_level: expected one of debug, info, warn, error, got "
                  "\"loud\"\n"
                  "wsgate.yaml:4:18: connect_timeout: expected a duration greater than 0 (this "
                  "timeout cannot be off), got \"off\"\n"
                  "wsgate.yaml:5:16: close_timeout: expected a duration greater than 0 (this "
                  "timeout cannot be off), got \"0\"\n"
                  "wsgate.yaml:6:16: ping_interval: expected a duration such as 500ms, 10s or 2m, "
                  "or off, got \"10\"\n"
                  "wsgate.yaml:7:19: shutdown_timeout: expected a duration of at most 8760h, got "
                  "\"9000h\"\n"
                  "wsgate.yaml:8:18: max_header_size: expected a size from 1KiB to 1MiB, got "
                  "\"2MiB\"\n"
                  "wsgate.yaml:9:14: max_headers: expected an integer from 1 to 1000, got "
                  "\"1001\"\n"
                  "wsgate.yaml:10:17: max_frame_size: expected a size such as 64KiB or 16MiB, got "
                  "\"lots\"\n"
                  "wsgate.yaml:11:19: max_message_size: expected a size from 1 to 1024GiB, got "
                  "\"2048GiB\"\n"
                  "wsgate.yaml:12:16: validate_utf8: expected true or false, got \"yes\"\n"
                  "wsgate.yaml:13:17: high_watermark: expected a size from 16KiB to 64MiB, got "
                  "\"8KiB\"\n"
                  "wsgate.yaml:14:10: workers: expected \"auto\" or an integer from 1 to 256, got "
                  "\"0\"\n");
}

static void test_watermarks(void **state)
{
    expect_errors(MINIMAL "high_watermark: 64KiB\nlow_watermark: 64KiB\n",
                  "wsgate.yaml:6:16: low_watermark: must be less than high_watermark (64KiB), got "
                  "\"64KiB\"\n");
    expect_errors(MINIMAL "high_watermark: 32KiB\n",
                  "wsgate.yaml:5:17: high_watermark: must be greater than low_watermark (64KiB by "
                  "default), got \"32KiB\"\n");
    expect_errors(MINIMAL "low_watermark: 0\n",
                  "wsgate.yaml:5:16: low_watermark: expected a size from 1 to 67108863, got "
                  "\"0\"\n");

    struct loaded l = load(MINIMAL "high_watermark: 32KiB\nlow_watermark: 16KiB\n");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg->lim.high_watermark, 32768);
    assert_int_equal(l.cfg->lim.low_watermark, 16384);
    loaded_free(&l);
}

static void test_route_errors(void **state)
{
    expect_errors("listen: 127.0.0.1:8080\n"
                  "routes:\n"
                  "  - path: /api\n"
                  "    backend: wss://127.0.0.1:9000?x\n"
                  "  - path: api\n"
                  "    backend: ws://127.0.0.1:9000/chat\n"
                  "  - path: /api\n"
                  "    backend: ws://127.0.0.1:0\n"
                  "    weight: 3\n"
                  "  - just a string\n"
                  "  - backend: ws://127.0.0.1:9000\n"
                  "  - path: /x\n"
                  "  - path: /has space\n"
                  "    backend: http://127.0.0.1\n"
                  "  - path: [/]\n"
                  "    backend: ws://127.0.0.1:9000\n",
                  "wsgate.yaml:4:14: backend: a backend URL has no query or fragment, got \"wss://"
                  "127.0.0.1:9000?x\"\n"
                  "wsgate.yaml:5:11: path: expected a path starting with '/', without spaces, '?' o"
                  "r '#', got \"api\"\n"
                  "wsgate.yaml:7:11: path: duplicate route path \"/api\" (first defined at line 3)"
                  "\n"
                  "wsgate.yaml:8:14: backend: port must be a number from 1 to 65535, got \"ws://127"
                  ".0.0.1:0\"\n"
                  "wsgate.yaml:9:5: unknown key \"weight\" in a route (the short form: path and bac"
                  "kend) (expected one of: connect_timeout, close_timeout, ping_interval, pong_time"
                  "out, idle_timeout, max_stall, max_frame_size, max_message_size, validate_utf8, r"
                  "equest_timeout, response_timeout, http_idle_timeout, max_request_body, path, bac"
                  "kend, websocket_only, origins, require_origin, subprotocols, require_subprotocol"
                  ", allow, deny, auth, limits)\n"
                  "wsgate.yaml:10:5: routes: each route must be a mapping, got \"just a string\"\n"
                  "wsgate.yaml:11:5: missing required key \"path\" in a route (the short form: path"
                  " and backend)\n"
                  "wsgate.yaml:12:5: missing required key \"backend\" in a route (the short form: p"
                  "ath and backend)\n"
                  "wsgate.yaml:13:11: path: expected a path starting with '/', without spaces, '?' "
                  "or '#', got \"/has space\"\n"
                  "wsgate.yaml:14:14: backend: expected a URL such as ws://127.0.0.1:9000, got \"ht"
                  "tp://127.0.0.1\"\n"
                  "wsgate.yaml:15:11: path: expected a path starting with '/', got a sequence\n");
}

static void test_route_sections_errors(void **state)
{
    expect_errors(
        "listen: 127.0.0.1:8080\n"
        "upstreams:\n"
        "  chat:\n"
        "    backends: [ws://127.0.0.1:9001, ws://127.0.0.1:9001]\n"
        "    balance: fastest\n"
        "  \"bad name\": {backends: [ws://127.0.0.1:9002]}\n"
        "  hashy:\n"
        "    balance: hash\n"
        "    backends: [{url: ws://127.0.0.1:9003, weight: 0}]\n"
        "  keyed:\n"
        "    hash_key: header:X-User\n"
        "    backends: []\n"
        "  sticky:\n"
        "    backends: [ws://127.0.0.1:9004]\n"
        "    sticky: {ttl: 1h, secret: short}\n"
        "    health_check: {type: ping, interval: 10ms}\n"
        "routes:\n"
        "  - match: {host: \"bad host!\", path_prefix: /a/../b}\n"
        "    upstream: nowhere\n"
        "  - match: {headers: {X-A: {present: false}}}\n"
        "    split: [{upstream: chat, weight: 0}, {upstream: nope}]\n"
        "  - {upstream: chat, split: [{upstream: chat, weight: 1}]}\n"
        "  - {match: {path: /x}, rewrite: {path_prefix: /y}, upstream: chat}\n"
        "  - {match: {path_prefix: /z}, upstream: chat, max_message_size: lots, idle_timeout: 5}\n"
        "  - {upstream: chat, colour: blue}\n",
        "wsgate.yaml:4:37: backends: duplicate backend \"ws://127.0.0.1:9001\" (first at "
        "line 4)\n"
        "wsgate.yaml:5:14: balance: expected one of round_robin, least_conn, p2c, random,"
        " hash, got \"fastest\"\n"
        "wsgate.yaml:6:3: upstreams: expected a name of letters, digits, '-', '_' or '.',"
        " got \"bad name\"\n"
        "wsgate.yaml:8:14: balance: hash needs hash_key (ip, path, header:NAME, cookie:NA"
        "ME or query:NAME) in upstream \"hashy\"\n"
        "wsgate.yaml:9:51: weight: expected an integer from 1 to 256, got \"0\"\n"
        "wsgate.yaml:11:15: hash_key: only used with balance: hash in upstream \"keyed\""
        "\n"
        "wsgate.yaml:12:15: backends: expected a non-empty sequence of backend URLs or {u"
        "rl: ...} mappings, got an empty sequence\n"
        "wsgate.yaml:15:13: missing required key \"cookie\" in sticky\n"
        "wsgate.yaml:15:31: secret: expected at least 16 characters, got 5\n"
        "wsgate.yaml:16:26: type: expected one of tcp, http, websocket, got \"ping\"\n"
        "wsgate.yaml:16:42: interval: expected a duration of at least 100ms, got \"10ms\""
        "\n"
        "wsgate.yaml:18:19: host: expected a host name (letters, digits, '-', '.'), or *."
        "suffix, got \"bad host!\"\n"
        "wsgate.yaml:18:45: path_prefix: requests are matched after normalization, so wri"
        "te it as \"/b\", got \"/a/../b\"\n"
        "wsgate.yaml:19:15: upstream: no upstream named \"nowhere\" (define it under upst"
        "reams:)\n"
        "wsgate.yaml:20:28: X-A: expected a value, or {present: true}, got a mapping\n"
        "wsgate.yaml:21:38: weight: expected an integer from 1 to 10000, got \"0\"\n"
        "wsgate.yaml:21:42: missing required key \"weight\" in a split entry\n"
        "wsgate.yaml:21:53: upstream: no upstream named \"nope\" (define it under upstrea"
        "ms:)\n"
        "wsgate.yaml:22:29: split: a route has upstream or split, not both\n"
        "wsgate.yaml:23:34: rewrite: needs match.path_prefix, the part it replaces\n"
        "wsgate.yaml:24:66: max_message_size: expected a size such as 64KiB or 16MiB, got"
        " \"lots\"\n"
        "wsgate.yaml:24:86: idle_timeout: expected a duration such as 500ms, 10s or 2m, o"
        "r off, got \"5\"\n"
        "wsgate.yaml:25:22: unknown key \"colour\" in a route (expected one of: connect_t"
        "imeout, close_timeout, ping_interval, pong_timeout, idle_timeout, max_stall, max"
        "_frame_size, max_message_size, validate_utf8, request_timeout, response_timeout,"
        " http_idle_timeout, max_request_body, match, upstream, split, rewrite, websocket_"
        "only, origins, require_origin, subprotocols, require_subprotocol, allow, deny, auth, limi"
        "ts)\n");
}

static void test_many_errors_one_run(void **state)
{
    /* Errors come out sorted by position even though they are found in
     * different passes (tree building, keys, cross-field rules). */
    struct loaded l = load("workers: 1000\n"
                           "bogus: 1\n"
                           "workers: 2\n"
                           "high_watermark: 16KiB\n"
                           "log_level: [info]\n"
                           "listen: nowhere\n");
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_string_equal(l.errs,
                        "wsgate.yaml:1:1: missing required key \"routes\"\n"
                        "wsgate.yaml:1:10: workers: expected \"auto\" or an integer from 1 to 256, "
                        "got \"1000\"\n"
                        "wsgate.yaml:2:1: unknown key \"bogus\"\n"
                        "wsgate.yaml:3:1: duplicate key \"workers\" (first defined at line 1)\n"
                        "wsgate.yaml:4:17: high_watermark: must be greater than low_watermark "
                        "(64KiB by default), got \"16KiB\"\n"
                        "wsgate.yaml:5:12: log_level: expected one of debug, info, warn, error, "
                        "got a sequence\n"
                        "wsgate.yaml:6:9: listen: expected host:port, [ipv6]:port or *:port, got "
                        "\"nowhere\"\n");
    assert_int_equal(count_lines(l.errs), 7);
    loaded_free(&l);
}

static void test_long_value_is_truncated(void **state)
{
    char text[512];

    snprintf(text, sizeof(text), MINIMAL "log_level: %0200d\n", 7);
    struct loaded l = load(text);
    assert_int_equal(l.rc, ERR_CONFIG);
    assert_non_null(strstr(l.errs, "got \"000000000000000000000000000000000000000000000000000000"
                                   "000000\"...\n"));
    assert_true(strlen(l.errs) < 200);
    loaded_free(&l);
}

/* ------------------------------------------------------ config_validate */

static char *validate_output(const struct config *c, int *rc)
{
    char *raw = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&raw, &len);

    assert_non_null(f);
    *rc = config_validate(c, f);
    fclose(f);
    return raw;
}

static void test_validate(void **state)
{
    struct config c;
    const char *why = NULL;
    int rc;

    config_defaults(&c);
    char *out = validate_output(&c, &rc);
    assert_int_equal(rc, ERR_CONFIG);
    assert_string_equal(out,
                        "wsgate: no listen address: set listen in the config file or pass "
                        "--listen\n"
                        "wsgate: no routes: add routes to the config file or pass --backend\n");
    free(out);

    assert_int_equal(config_set_flag(&c, "listen", "--listen", "127.0.0.1:8080", stderr), 0);
    assert_int_equal(route_conf_add_default(&c.routing, "ws://127.0.0.1:9000", &why), 0);
    out = validate_output(&c, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);

    c.workers = 300;
    c.handshake_timeout_ms = 0;
    c.lim.low_watermark = c.lim.high_watermark;
    out = validate_output(&c, &rc);
    assert_int_equal(rc, ERR_CONFIG);
    assert_string_equal(out, "wsgate: workers must be auto (0) or 1 to 256, got 300\n"
                             "wsgate: handshake_timeout must be greater than 0 (it cannot be "
                             "off)\n"
                             "wsgate: low_watermark (262144) must be less than high_watermark "
                             "(262144)\n");
    free(out);

    config_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_valid),
        cmocka_unit_test(test_duration_invalid),
        cmocka_unit_test(test_size_valid),
        cmocka_unit_test(test_size_invalid),
        cmocka_unit_test(test_listen_valid),
        cmocka_unit_test(test_listen_invalid),
        cmocka_unit_test(test_backend_valid),
        cmocka_unit_test(test_backend_invalid),
        cmocka_unit_test(test_default_route_flag),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_minimal_file_gets_defaults),
        cmocka_unit_test(test_full_valid_file),
        cmocka_unit_test(test_workers_auto_and_off),
        cmocka_unit_test(test_max_stall_values),
        cmocka_unit_test(test_http_keys),
        cmocka_unit_test(test_anchor_and_alias),
        cmocka_unit_test(test_error_examples),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_cannot_open),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_watermarks),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_route_sections_errors),
        cmocka_unit_test(test_many_errors_one_run),
        cmocka_unit_test(test_long_value_is_truncated),
        cmocka_unit_test(test_validate),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
