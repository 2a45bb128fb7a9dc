/* Active health checks on their own thread (see health.c). */
#ifndef WSG_ROUTE_HEALTH_H
#define WSG_ROUTE_HEALTH_H

#include "route/route.h"

struct health;

/* Start checking every backend of the upstreams in rc that have a
 * health_check; rc is borrowed and must outlive the checker. *out is NULL
 * when no upstream asks for checks. Returns 0, ERR_NOMEM or ERR_SYS. */
int route_health_start(const struct route_conf *rc, struct health **out);

/* Stop the checker's thread and free it. NULL is a no-op. */
void route_health_stop(struct health *h);

#endif
