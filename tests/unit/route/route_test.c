/* Routing and balancing: route precedence for every match kind, split
 * ratios, upstream targets with rewrite, each balancer's distribution,
 * Maglev stability, sticky cookies, passive ejection. Configs are loaded
 * from YAML through the real config loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/err.h"
#include "core/rand.h"
#include "route/route.h"

static struct config *load(const char *yaml)
{
    char path[] = "/tmp/route_test_XXXXXX";
    int fd = mkstemp(path);
    struct config *c = NULL;
    char errs[4096] = "";
    FILE *ef = fmemopen(errs, sizeof(errs) - 1, "w");

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    int rc = config_load_file(path, ef, &c);
    fclose(ef);
    unlink(path);
    if (rc != 0)
        fail_msg("config did not load: %s", errs);
    return c;
}

/* The index (1-based) of the route a request matches, 0 for none. */
static size_t match(const struct config *c, const char *host, const char *target,
                    const struct http_header *h, unsigned nh)
{
    struct route_req rq = {0};
    const char *q = strchr(target, '?');

    rq.host = host;
    rq.host_len = host ? strlen(host) : 0;
    rq.path = target;
    rq.path_len = q ? (size_t)(q - target) : strlen(target);
    if (q) {
        rq.query = q + 1;
        rq.query_len = strlen(q + 1);
    }
    rq.headers = h;
    rq.nheaders = nh;
    const struct rc_route *r = route_match(&c->routing, &rq);
    return r ? (size_t)(r - c->routing.routes) + 1 : 0;
}

#define UPS                                                                                        \
    "upstreams:\n"                                                                                 \
    "  a: {backends: [ws://127.0.0.1:9001]}\n"                                                     \
    "  b: {backends: [ws://127.0.0.1:9002]}\n"

static void precedence_for_every_match_kind(void **state)
{
    struct config *c = load("listen: 127.0.0.1:0\n" UPS "routes:\n"
                            "  - {match: {host: chat.example.com, path_prefix: /ws}, upstream: a}\n"
                            "  - {match: {host: '*.example.com'}, upstream: b}\n"
                            "  - {match: {path: /exact}, upstream: a}\n"
                            "  - {match: {path_prefix: /chat}, upstream: a}\n"
                            "  - {match: {headers: {X-Canary: 'yes'}}, upstream: b}\n"
                            "  - {match: {headers: {X-Any: {present: true}}}, upstream: a}\n"
                            "  - {match: {query: {room: lobby}}, upstream: b}\n"
                            "  - {upstream: a}\n");
    struct http_header canary = {{"x-canary", 8}, {"yes", 3}};
    struct http_header wrong = {{"X-Canary", 8}, {"no", 2}};
    struct http_header any = {{"X-Any", 5}, {"", 0}};

    assert_int_equal(c->routing.nroutes, 8);
    assert_false(c->routing.short_form);
    /* host: exact, case-insensitive, port ignored; wildcard on subdomains */
    assert_int_equal(match(c, "chat.example.com", "/ws/x", NULL, 0), 1);
    assert_int_equal(match(c, "CHAT.Example.com:8443", "/ws", NULL, 0), 1);
    assert_int_equal(match(c, "chat.example.com", "/other", NULL, 0), 2);
    assert_int_equal(match(c, "api.example.com", "/ws", NULL, 0), 2);
    assert_int_equal(match(c, "example.com", "/q", NULL, 0), 8); /* "*." needs a label */
    assert_int_equal(match(c, "evilexample.com", "/q", NULL, 0), 8);
    /* exact path vs prefix on segment boundaries */
    assert_int_equal(match(c, "h", "/exact", NULL, 0), 3);
    assert_int_equal(match(c, "h", "/exact/x", NULL, 0), 8);
    assert_int_equal(match(c, "h", "/chat", NULL, 0), 4);
    assert_int_equal(match(c, "h", "/chat/room/1", NULL, 0), 4);
    assert_int_equal(match(c, "h", "/chatroom", NULL, 0), 8);
    /* headers: exact value (names case-insensitive), or present */
    assert_int_equal(match(c, "h", "/x", &canary, 1), 5);
    assert_int_equal(match(c, "h", "/x", &wrong, 1), 8);
    assert_int_equal(match(c, "h", "/x", &any, 1), 6);
    /* query: exact value */
    assert_int_equal(match(c, "h", "/x?a=1&room=lobby", NULL, 0), 7);
    assert_int_equal(match(c, "h", "/x?room=lobby2", NULL, 0), 8);
    assert_int_equal(match(c, "h", "/x?xroom=lobby", NULL, 0), 8);
    /* the first match wins: /chat with the canary header is route 4 */
    assert_int_equal(match(c, "h", "/chat", &canary, 1), 4);
    config_free(c);
}

static void short_form_is_longest_prefix_first(void **state)
{
    struct config *c = load("listen: 127.0.0.1:0\n"
                            "routes:\n"
                            "  - {path: /, backend: ws://127.0.0.1:9001}\n"
                            "  - {path: /chat, backend: ws://127.0.0.1:9002}\n"
                            "  - {path: /chat/room, backend: ws://127.0.0.1:9003}\n");

    assert_true(c->routing.short_form);
    assert_string_equal(c->routing.routes[match(c, "h", "/chat/room/1", NULL, 0) - 1].path_prefix,
                        "/chat/room");
    assert_string_equal(c->routing.routes[match(c, "h", "/chat/x", NULL, 0) - 1].path_prefix,
                        "/chat");
    assert_string_equal(c->routing.routes[match(c, "h", "/chatter", NULL, 0) - 1].path_prefix, "/");
    config_free(c);
}

static void split_ratio(void **state)
{
    struct config *c = load("listen: 127.0.0.1:0\n" UPS "routes:\n"
                            "  - split: [{upstream: a, weight: 95}, {upstream: b, weight: 5}]\n");
    struct rng rng;
    int b = 0;

    assert_int_equal(rng_init(&rng), 0);
    for (int i = 0; i < 100000; i++)
        b += strcmp(route_pick_upstream(&c->routing.routes[0], &rng)->name, "b") == 0;
    /* 5% of 100,000 is 5,000; 4 sigma is about 276. */
    assert_in_range(b, 4700, 5300);
    config_free(c);
}

static void upstream_target_rewrite_and_backend_path(void **state)
{
    struct config *c =
        load("listen: 127.0.0.1:0\n"
             "upstreams:\n"
             "  a: {backends: [ws://127.0.0.1:9001/base]}\n"
             "  b: {backends: [ws://127.0.0.1:9002]}\n"
             "routes:\n"
             "  - {match: {path_prefix: /old}, upstream: b, rewrite: {path_prefix: /new}}\n"
             "  - {match: {path_prefix: /s/}, upstream: b, rewrite: {path_prefix: /}}\n"
             "  - {match: {path_prefix: /}, upstream: a}\n");
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/old", "/new"}, {"/old/x", "/new/x"}, {"/old/x?q=1", "/new/x?q=1"}, {"/s/x", "/x"},
        {"/s/", "/"},     {"/y", "/base/y"},    {"/?a=b", "/base/?a=b"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_req rq = {0};
        const char *q = strchr(cases[i].in, '?');
        char out[256];
        rq.path = cases[i].in;
        rq.path_len = q ? (size_t)(q - cases[i].in) : strlen(cases[i].in);
        if (q) {
            rq.query = q + 1;
            rq.query_len = strlen(q + 1);
        }
        const struct rc_route *r = route_match(&c->routing, &rq);
        assert_non_null(r);
        int n = route_upstream_target(r, &r->splits[0].up->backends[0], &rq, out, sizeof(out));
        assert_true(n > 0);
        out[n] = '\0';
        assert_string_equal(out, cases[i].out);
        assert_int_equal(route_upstream_target(r, &r->splits[0].up->backends[0], &rq, out,
                                               strlen(cases[i].out) - 1),
                         ERR_RANGE);
    }
    config_free(c);
}

/* Pick n times from upstream 0, counting each backend. */
static void pick_many(struct config *c, int n, int *count, struct rng *rng)
{
    struct route_worker rw;
    const struct rc_upstream *up = &c->routing.upstreams[0];

    assert_int_equal(route_worker_init(&rw, &c->routing), 0);
    for (int i = 0; i < n; i++) {
        uint32_t key = rng_u32(rng);
        int b = route_pick_backend(&rw, 0, up, &key, sizeof(key), NULL, 0, 1000, rng);
        assert_true(b >= 0);
        count[b]++;
    }
    route_worker_free(&rw);
}

#define POOL(balance, extra)                                                                       \
    "listen: 127.0.0.1:0\n"                                                                        \
    "upstreams:\n"                                                                                 \
    "  p:\n"                                                                                       \
    "    balance: " balance "\n" extra "    backends:\n"                                           \
    "      - {url: ws://127.0.0.1:9001, weight: 1}\n"                                              \
    "      - {url: ws://127.0.0.1:9002, weight: 2}\n"                                              \
    "      - {url: ws://127.0.0.1:9003, weight: 1}\n"                                              \
    "routes:\n"                                                                                    \
    "  - {upstream: p}\n"

static void round_robin_is_smooth_and_weighted(void **state)
{
    struct config *c = load(POOL("round_robin", ""));
    struct route_worker rw;
    const struct rc_upstream *up = &c->routing.upstreams[0];
    struct rng rng;
    int seq[8];

    assert_int_equal(rng_init(&rng), 0);
    assert_int_equal(route_worker_init(&rw, &c->routing), 0);
    for (int i = 0; i < 8; i++)
        seq[i] = route_pick_backend(&rw, 0, up, NULL, 0, NULL, 0, 1000, &rng);
    /* Smooth weighted round robin with weights 1,2,1: b1 b0 b2 b1, repeated. */
    static const int want[8] = {1, 0, 2, 1, 1, 0, 2, 1};
    for (int i = 0; i < 8; i++)
        assert_int_equal(seq[i], want[i]);
    route_worker_free(&rw);
    config_free(c);
}

static void random_and_p2c_and_least_conn_spread_by_weight(void **state)
{
    static const char *const algos[] = {"random", "p2c", "least_conn"};
    struct rng rng;

    assert_int_equal(rng_init(&rng), 0);
    for (size_t a = 0; a < 3; a++) {
        char yaml[1024];
        int count[3] = {0};
        snprintf(yaml, sizeof(yaml), POOL("%s", ""), algos[a]);
        struct config *c = load(yaml);
        if (a == 0) {
            pick_many(c, 40000, count, &rng);
            /* weights 1:2:1 over 40,000: 10,000 / 20,000 / 10,000 */
            assert_in_range(count[0], 9400, 10600);
            assert_in_range(count[1], 19200, 20800);
            assert_in_range(count[2], 9400, 10600);
        } else {
            /* Connection-aware: picks follow the live counts. Hold every
             * connection open: the loads converge to the weights. */
            struct route_worker rw;
            const struct rc_upstream *up = &c->routing.upstreams[0];
            assert_int_equal(route_worker_init(&rw, &c->routing), 0);
            for (int i = 0; i < 4000; i++) {
                int b = route_pick_backend(&rw, 0, up, NULL, 0, NULL, 0, 1000, &rng);
                assert_true(b >= 0);
                route_backend_acquire(&up->backends[b]);
                count[b]++;
            }
            /* least_conn keeps (active+1)/weight level: exact within 1;
             * p2c keeps it within a few percent. */
            int tol = a == 2 ? 2 : 120;
            assert_in_range(count[0], 1000 - tol, 1000 + tol);
            assert_in_range(count[1], 2000 - tol, 2000 + tol);
            assert_in_range(count[2], 1000 - tol, 1000 + tol);
            route_worker_free(&rw);
        }
        config_free(c);
    }
}

static void unusable_backends_are_skipped(void **state)
{
    struct config *c = load(POOL("round_robin", ""));
    struct route_worker rw;
    struct rc_upstream *up = &c->routing.upstreams[0];
    struct rng rng;
    uint32_t skip[1] = {1};

    assert_int_equal(rng_init(&rng), 0);
    assert_int_equal(route_worker_init(&rw, &c->routing), 0);
    atomic_store(&up->backends[0].state->down, true);
    for (int i = 0; i < 20; i++)
        assert_int_equal(route_pick_backend(&rw, 0, up, NULL, 0, skip, 1, 1000, &rng), 2);
    atomic_store(&up->backends[2].state->eject_until, 2000);
    assert_int_equal(route_pick_backend(&rw, 0, up, NULL, 0, skip, 1, 1000, &rng), -1);
    assert_int_equal(route_pick_backend(&rw, 0, up, NULL, 0, skip, 1, 2000, &rng), 2);
    up->backends[1].max_connections = 1;
    atomic_store(&up->backends[1].state->active, 1);
    assert_int_equal(route_pick_backend(&rw, 0, up, NULL, 0, NULL, 0, 1000, &rng), -1);
    route_worker_free(&rw);
    config_free(c);
}

static void passive_ejection_doubles_up_to_ten_times(void **state)
{
    struct config *c = load("listen: 127.0.0.1:0\n"
                            "upstreams:\n"
                            "  p:\n"
                            "    backends: [ws://127.0.0.1:9001]\n"
                            "    ejection_time: 1s\n"
                            "    health_check: {type: tcp, unhealthy_threshold: 2}\n"
                            "routes:\n  - {upstream: p}\n");
    const struct rc_upstream *up = &c->routing.upstreams[0];
    const struct rc_backend *b = &up->backends[0];
    uint64_t now = 100000;

    route_backend_result(up, b, false, now);
    assert_true(route_backend_usable(b, now)); /* one failure: not yet */
    route_backend_result(up, b, false, now);
    assert_false(route_backend_usable(b, now + 999));
    assert_true(route_backend_usable(b, now + 1000));
    now += 1000;
    route_backend_result(up, b, false, now);
    route_backend_result(up, b, false, now);
    assert_false(route_backend_usable(b, now + 1999)); /* doubled */
    assert_true(route_backend_usable(b, now + 2000));
    for (int i = 0; i < 10; i++) {
        now += 20000;
        route_backend_result(up, b, false, now);
        route_backend_result(up, b, false, now);
    }
    assert_false(route_backend_usable(b, now + 9999)); /* capped at 10 x */
    assert_true(route_backend_usable(b, now + 10000));
    /* A success resets the count and, once the ejection is over, the
     * doubling. */
    route_backend_result(up, b, true, now + 10000);
    route_backend_result(up, b, false, now + 10000);
    assert_true(route_backend_usable(b, now + 10000));
    config_free(c);
}

/* Maglev: which backend each of n keys maps to. */
static void map_keys(const char *const *names, size_t nb, int *out, int nkeys)
{
    unsigned w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint32_t *t = route_maglev_build(names, w, nb, 65537);

    assert_non_null(t);
    for (int k = 0; k < nkeys; k++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "user-%d", k);
        int idx = (int)t[route_hash(key, (size_t)n) % 65537];
        /* By name, so tables over different lists compare. */
        out[k] = (int)(names[idx][strlen(names[idx]) - 1] - '0');
    }
    free(t);
}

static void maglev_is_stable_and_minimally_disruptive(void **state)
{
    static const char *const five[] = {"ws://h:1", "ws://h:2", "ws://h:3", "ws://h:4", "ws://h:5"};
    static const char *const shuffled[] = {"ws://h:4", "ws://h:1", "ws://h:5", "ws://h:3",
                                           "ws://h:2"};
    static const char *const four[] = {"ws://h:1", "ws://h:2", "ws://h:4", "ws://h:5"};
    static int a[10000], b[10000], d[10000];
    int moved = 0, per[6] = {0};

    map_keys(five, 5, a, 10000);
    map_keys(shuffled, 5, b, 10000);
    for (int k = 0; k < 10000; k++) {
        assert_int_equal(a[k], b[k]); /* config order does not matter */
        per[a[k]]++;
    }
    for (int i = 1; i <= 5; i++)
        assert_in_range(per[i], 1800, 2200); /* even spread */
    map_keys(four, 4, d, 10000);
    for (int k = 0; k < 10000; k++) {
        if (a[k] != 3)
            moved += a[k] != d[k]; /* keys of a remaining backend that moved */
        assert_int_not_equal(d[k], 3);
    }
    /* Removing one of five moves its ~20% of keys and almost nothing else. */
    assert_true(moved < 300);
}

static void sticky_cookie_round_trip_and_tampering(void **state)
{
    struct config *c = load("listen: 127.0.0.1:0\n"
                            "upstreams:\n"
                            "  p:\n"
                            "    backends: [ws://127.0.0.1:9001, ws://127.0.0.1:9002]\n"
                            "    sticky: {cookie: WSGSTICK, ttl: 1h, secret: 0123456789abcdef}\n"
                            "  q:\n"
                            "    backends: [ws://127.0.0.1:9001, ws://127.0.0.1:9002]\n"
                            "    sticky: {cookie: WSGSTICK, secret: another-secret-here}\n"
                            "routes:\n  - {upstream: p}\n");
    const struct rc_upstream *p = &c->routing.upstreams[0], *q = &c->routing.upstreams[1];
    char line[256], val[64];

    for (int i = 0; i < 2; i++) {
        int n = route_sticky_header(p, &p->backends[i], line, sizeof(line));
        assert_true(n > 0);
        assert_non_null(strstr(line, "Set-Cookie: WSGSTICK="));
        assert_non_null(strstr(line, "; Max-Age=3600;"));
        assert_non_null(strstr(line, "HttpOnly"));
        const char *v = strchr(line, '=') + 1;
        size_t vn = strcspn(v, ";");
        memcpy(val, v, vn);
        val[vn] = '\0';
        assert_int_equal(route_sticky_decode(p, val, vn), i);
        /* The same backend under another secret: not accepted. */
        assert_int_equal(route_sticky_decode(q, val, vn), -1);
        /* Any byte changed: ignored. */
        for (size_t k = 0; k < vn; k++) {
            char t[64];
            memcpy(t, val, vn);
            t[k] = t[k] == 'A' ? 'B' : 'A';
            assert_int_equal(route_sticky_decode(p, t, vn), -1);
        }
        assert_int_equal(route_sticky_decode(p, val, vn - 1), -1);
        assert_int_equal(route_sticky_decode(p, "", 0), -1);
        assert_int_equal(route_sticky_decode(p, "!!!!!!!!!!!!!!!!!!!!!!", 22), -1);
    }
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(precedence_for_every_match_kind),
        cmocka_unit_test(short_form_is_longest_prefix_first),
        cmocka_unit_test(split_ratio),
        cmocka_unit_test(upstream_target_rewrite_and_backend_path),
        cmocka_unit_test(round_robin_is_smooth_and_weighted),
        cmocka_unit_test(random_and_p2c_and_least_conn_spread_by_weight),
        cmocka_unit_test(unusable_backends_are_skipped),
        cmocka_unit_test(passive_ejection_doubles_up_to_ten_times),
        cmocka_unit_test(maglev_is_stable_and_minimally_disruptive),
        cmocka_unit_test(sticky_cookie_round_trip_and_tampering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
