/* Route matching: the longest configured path prefix that matches the
 * request path on a segment boundary ("/chat" matches "/chat", "/chat/x"
 * and "/chat?x", not "/chatter"). */
#ifndef WSG_ROUTE_ROUTE_H
#define WSG_ROUTE_ROUTE_H

#include <stddef.h>

#include "config/config.h"

/* The route for request-target target[0..n) (path and optional query), or
 * NULL when none matches. c->routes must be sorted longest path first. */
const struct cfg_route *route_match(const struct config *c, const char *target, size_t n);

#endif
