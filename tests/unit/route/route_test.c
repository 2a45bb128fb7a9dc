#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route/route.h"

static struct cfg_route routes[] = {
    {.path = "/chat/room", .path_len = 10},
    {.path = "/chat", .path_len = 5},
    {.path = "/api/", .path_len = 5},
};

static struct config cfg = {.routes = routes, .nroutes = 3};

static const char *match(const char *target)
{
    const struct cfg_route *r = route_match(&cfg, target, strlen(target));
    return r ? r->path : NULL;
}

static void longest_prefix_on_segment_boundary(void **state)
{
    assert_string_equal(match("/chat"), "/chat");
    assert_string_equal(match("/chat/"), "/chat");
    assert_string_equal(match("/chat/x"), "/chat");
    assert_string_equal(match("/chat?x=1"), "/chat");
    assert_string_equal(match("/chat/room"), "/chat/room");
    assert_string_equal(match("/chat/room/7?a"), "/chat/room");
    assert_string_equal(match("/chat/roomy"), "/chat");
    assert_null(match("/chatter"));
    assert_null(match("/"));
    assert_string_equal(match("/api/v1"), "/api/");
    assert_null(match("/api"));
    /* The query is not part of the path. */
    assert_null(match("/x?/chat"));
}

static void root_route_matches_everything(void **state)
{
    struct cfg_route r[] = {{.path = "/", .path_len = 1}};
    struct config c = {.routes = r, .nroutes = 1};

    assert_non_null(route_match(&c, "/", 1));
    assert_non_null(route_match(&c, "/anything/at/all?q", 18));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(longest_prefix_on_segment_boundary),
        cmocka_unit_test(root_route_matches_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
