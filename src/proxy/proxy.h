/* The proxy: worker threads, each with its own event loop and SO_REUSEPORT
 * listening socket, relaying client/backend connection pairs. */
#ifndef WSG_PROXY_PROXY_H
#define WSG_PROXY_PROXY_H

#include "config/config.h"

struct proxy;

/* Bind the listening sockets and start cfg->workers threads (0 = one per
 * core). cfg is borrowed and must outlive the proxy. Returns 0, ERR_SYS
 * with errno set (EADDRINUSE for a port in use, *bad the index of the
 * listener that failed; nothing is logged, the caller reports it), or
 * ERR_NOMEM. */
int proxy_start(struct proxy **out, const struct config *cfg, size_t *bad);

/* Text of the address listener i actually listens on (the port filled in
 * when the configured port was 0). */
const char *proxy_addr(const struct proxy *p, size_t i);

/* Client connections accepted at once: max_connections, lowered when the
 * descriptor limit (raised to its hard limit at start) cannot hold that
 * many pairs. */
unsigned proxy_max_connections(const struct proxy *p);

/* Number of worker threads running. */
unsigned proxy_workers(const struct proxy *p);

/* Begin a graceful shutdown: stop accepting, send close 1001 to every peer,
 * and let workers exit when their pairs are closed or shutdown_timeout
 * passed. Async-signal-unsafe; call from the main thread. */
void proxy_shutdown(struct proxy *p);

/* Wait for every worker to exit, then free the proxy. */
void proxy_join(struct proxy *p);

#endif
