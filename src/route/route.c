#include "route/route.h"

#include <string.h>

const struct cfg_route *route_match(const struct config *c, const char *target, size_t n)
{
    size_t path_len = 0;

    while (path_len < n && target[path_len] != '?')
        path_len++;
    /* Routes are sorted longest first, so the first match is the longest. */
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct cfg_route *r = &c->routes[i];
        size_t rl = r->path_len;
        if (rl > path_len || memcmp(target, r->path, rl) != 0)
            continue;
        if (rl == path_len || r->path[rl - 1] == '/' || target[rl] == '/')
            return r;
    }
    return NULL;
}
