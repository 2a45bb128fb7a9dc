/* Worker threads: accept, graceful shutdown, and giving memory back after
 * bursts. Sessions themselves live in session.c. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/sock.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "route/health.h"

#define ACCEPT_BATCH    64   /* accepts per readiness event before yielding to relays */
#define POOL_CACHE      64   /* free buffers a worker keeps (1 MiB) */
#define ACCEPT_RETRY_MS 100  /* wait before accepting again when out of descriptors */
#define TRIM_MS         1000 /* memory unused for this long after sessions end goes back */

void worker_session_gone(struct worker *w)
{
    if (!timer_armed(&w->trim_timer))
        timer_arm(&w->loop.wheel, &w->trim_timer, w->loop.now + TRIM_MS);
    if (w->draining && w->nsessions == 0)
        w->loop.stop = true;
}

/* After sessions end (a burst of clients gone, a wave of handshakes timed
 * out), give memory back: pool buffers that went unused for a whole
 * period, and the free parts of the heap the handshakes used. Runs once a
 * period while buffers stay cached, and not at all on a worker that has
 * nothing to give back. */
static void trim_memory(struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, trim_timer));

    buf_pool_trim(&w->pool);
    malloc_trim(0);
    if (w->pool.nfree > 0)
        timer_arm(&w->loop.wheel, &w->trim_timer, w->loop.now + TRIM_MS);
}

static void on_accept(struct io *io, uint32_t events)
{
    struct wlisten *wl = (struct wlisten *)((char *)io - offsetof(struct wlisten, io));
    struct worker *w = wl->w;

    for (int i = 0; i < ACCEPT_BATCH && !w->draining; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* EMFILE/ENFILE/ENOBUFS: out of descriptors or memory. The
             * pending connections stay in the backlog, and edge-triggered
             * epoll will not report them again, so retry on a timer
             * instead of spinning now. */
            log_simple(LOG_WARN, "accept failed", strerror(errno));
            timer_arm(&w->loop.wheel, &w->accept_retry, w->loop.now + ACCEPT_RETRY_MS);
            return;
        }
        /* A listener's deny/allow rules: refused clients are closed at
         * once, with nothing said (they learn nothing about what is here). */
        if (admit_ip_any(&wl->conf->ip) && !admit_ip_ok(&wl->conf->ip, (struct sockaddr *)&peer)) {
            close(fd);
            continue;
        }
        session_start(w, wl->conf, fd, &peer);
    }
    /* Batch exhausted with connections possibly pending: edge-triggered
     * epoll will not report them again, so come back after this pass. */
    if (!w->draining) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = io};
        epoll_ctl(w->loop.epfd, EPOLL_CTL_MOD, io->fd, &ev);
    }
}

static void accept_again(struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, accept_retry));

    for (size_t i = 0; i < w->nlistens && !w->draining; i++)
        on_accept(&w->listens[i].io, EPOLLIN);
}

static void drain_expired(struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, drain_timer));

    for (struct session *s = w->sessions; s; s = s->next)
        session_abort(s, ERR_SHUTDOWN);
    w->loop.stop = true;
}

static void on_wake(struct io *io, uint32_t events)
{
    struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, wake_io));
    uint64_t v;

    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    if (w->draining)
        return;
    w->draining = true;
    for (size_t i = 0; i < w->nlistens; i++) {
        close(w->listens[i].io.fd);
        w->listens[i].io.fd = -1;
    }
    w->drain_deadline = w->loop.now + w->cfg->shutdown_timeout_ms;
    timer_arm(&w->loop.wheel, &w->drain_timer, w->drain_deadline);
    for (struct session *s = w->sessions; s; s = s->next)
        session_shutdown(s);
    if (w->nsessions == 0)
        w->loop.stop = true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    loop_run(&w->loop);
    return NULL;
}

/* Takes the listening sockets fds[0..nlistens) (closed by worker_destroy
 * from here on, whatever happens). */
static int worker_init(struct worker *w, struct proxy *p, unsigned id, const int *fds)
{
    const struct config *cfg = p->cfg;

    memset(w, 0, sizeof(*w));
    w->proxy = p;
    w->cfg = cfg;
    w->id = id;
    w->wake_io.fd = -1;
    w->listens = calloc(cfg->nlisteners, sizeof(*w->listens));
    if (!w->listens) {
        for (size_t i = 0; i < cfg->nlisteners; i++)
            close(fds[i]);
        return ERR_NOMEM;
    }
    w->nlistens = cfg->nlisteners;
    for (size_t i = 0; i < w->nlistens; i++) {
        w->listens[i].io.fd = fds[i];
        w->listens[i].io.cb = on_accept;
        w->listens[i].w = w;
        w->listens[i].conf = &cfg->listeners[i];
    }
    if (loop_init(&w->loop) < 0 || rng_init(&w->rng) < 0)
        return ERR_SYS;
    buf_pool_init(&w->pool, POOL_CACHE);
    objpool_init(&w->session_pool, sizeof(struct session));
    objpool_init(&w->paths, PATH_LOG_MAX + 1);
    w->scratch = malloc(sizeof(*w->scratch) * p->cfg->max_headers);
    w->head_in = malloc(p->cfg->max_header_size);
    if (!w->scratch || !w->head_in || route_worker_init(&w->router, &p->cfg->routing) < 0 ||
        http_pool_init(&w->http_pool, &p->cfg->routing) < 0)
        return ERR_NOMEM;
    timer_init(&w->drain_timer, drain_expired);
    timer_init(&w->trim_timer, trim_memory);
    timer_init(&w->accept_retry, accept_again);
    w->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->wake_io.cb = on_wake;
    if (w->wake_io.fd < 0 || loop_add(&w->loop, &w->wake_io, EPOLLIN) < 0)
        return ERR_SYS;
    for (size_t i = 0; i < w->nlistens; i++)
        if (loop_add(&w->loop, &w->listens[i].io, EPOLLIN) < 0)
            return ERR_SYS;
    return 0;
}

static void worker_destroy(struct worker *w)
{
    for (size_t i = 0; i < w->nlistens; i++)
        if (w->listens[i].io.fd >= 0)
            close(w->listens[i].io.fd);
    free(w->listens);
    if (w->wake_io.fd >= 0)
        close(w->wake_io.fd);
    loop_destroy(&w->loop);
    buf_pool_destroy(&w->pool);
    objpool_destroy(&w->session_pool);
    objpool_destroy(&w->paths);
    free(w->scratch);
    free(w->head_in);
    route_worker_free(&w->router);
    http_pool_free(&w->http_pool);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

#define FD_RESERVE         64      /* descriptors kept for listeners, epoll, eventfds, logs */
#define MAX_CONNS_AUTO_CAP 1000000 /* max_connections: auto never goes above this */

/* Raise the descriptor limit to the hard limit (each pair needs two, and
 * the usual soft limit of 1024 would cap wsgate at ~500 pairs) and return
 * the effective max_connections: the configured value, or for 0 (auto) as
 * many pairs as the limit holds, and never more than that. */
static unsigned fit_connections(const struct config *cfg)
{
    unsigned want = cfg->max_connections ? cfg->max_connections : MAX_CONNS_AUTO_CAP;
    struct rlimit rl;
    uint64_t fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)want * 2 + FD_RESERVE)
        return want;
    fit = rl.rlim_cur > FD_RESERVE + 2 ? (rl.rlim_cur - FD_RESERVE) / 2 : 1;
    if (cfg->max_connections) {
        struct log_line l;
        if (log_begin(&l, LOG_WARN, "max_connections lowered to fit the descriptor limit")) {
            log_uint(&l, "max_connections", cfg->max_connections);
            log_uint(&l, "effective", fit);
            log_uint(&l, "fd_limit", rl.rlim_cur);
            log_end(&l);
        }
    }
    return (unsigned)fit;
}

/* Bind each listener once without SO_REUSEPORT first, so that a port in
 * use (another wsgate started by mistake would share it through
 * SO_REUSEPORT) is an error; this also resolves port 0 to the port every
 * worker then binds. addrs receive the bound addresses. */
static int probe_listeners(struct proxy *p, struct sockaddr_storage *addrs, size_t *bad)
{
    const struct config *cfg = p->cfg;

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        int probe;
        addrs[i] = cfg->listeners[i].addr.sa;
        probe = sock_listen((struct sockaddr *)&addrs[i], cfg->listeners[i].addr.len, false, 1);
        if (probe < 0) {
            *bad = i;
            return ERR_SYS;
        }
        set_port(&addrs[i], sock_local_port(probe));
        close(probe);
        sock_addr_text((struct sockaddr *)&addrs[i], p->addrs[i], sizeof(p->addrs[i]));
    }
    return 0;
}

static void free_proxy(struct proxy *p)
{
    free(p->workers);
    free(p->addrs);
    free(p);
}

int proxy_start(struct proxy **out, const struct config *cfg, size_t *bad)
{
    struct proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_storage addrs[MAX_LISTENERS];
    int fds[MAX_LISTENERS];
    unsigned n = cfg->workers;
    int rc;

    if (!p || !(p->addrs = calloc(cfg->nlisteners, sizeof(*p->addrs)))) {
        free(p);
        return ERR_NOMEM;
    }
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    p->cfg = cfg;
    p->max_conns = fit_connections(cfg);
    atomic_init(&p->conns, 0);
    *bad = 0;
    if (probe_listeners(p, addrs, bad) < 0) {
        int e = errno;
        free_proxy(p);
        errno = e; /* the caller prints the one-line error */
        return ERR_SYS;
    }

    p->workers = calloc(n, sizeof(*p->workers));
    if (!p->workers) {
        free_proxy(p);
        return ERR_NOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t nfd = 0;
        int e = 0;
        for (; nfd < cfg->nlisteners; nfd++) {
            fds[nfd] = sock_listen((struct sockaddr *)&addrs[nfd], cfg->listeners[nfd].addr.len,
                                   true, 4096);
            if (fds[nfd] < 0) {
                e = errno;
                break;
            }
        }
        if (nfd < cfg->nlisteners) {
            while (nfd > 0)
                close(fds[--nfd]);
            rc = ERR_SYS;
        } else {
            rc = worker_init(&p->workers[i], p, i, fds);
            e = errno;
        }
        if (rc < 0) {
            log_simple(LOG_ERROR, "cannot start worker", strerror(e));
            if (nfd == cfg->nlisteners)
                worker_destroy(&p->workers[i]);
            for (unsigned j = 0; j < i; j++)
                worker_destroy(&p->workers[j]);
            free_proxy(p);
            errno = e;
            return ERR_SYS;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            log_simple(LOG_ERROR, "cannot start worker thread", strerror(errno));
            /* Threads already running exit through the shutdown path. */
            p->nworkers = i;
            proxy_shutdown(p);
            proxy_join(p);
            return ERR_SYS;
        }
        p->nworkers = i + 1;
    }
    /* Health checks run on a thread of their own, off the workers' loops. */
    if (route_health_start(&cfg->routing, &p->health) < 0) {
        log_simple(LOG_ERROR, "cannot start health checks", strerror(errno));
        proxy_shutdown(p);
        proxy_join(p);
        return ERR_SYS;
    }
    *out = p;
    return 0;
}

const char *proxy_addr(const struct proxy *p, size_t i)
{
    return p->addrs[i];
}

unsigned proxy_max_connections(const struct proxy *p)
{
    return p->max_conns;
}

unsigned proxy_workers(const struct proxy *p)
{
    return p->nworkers;
}

void proxy_shutdown(struct proxy *p)
{
    uint64_t one = 1;

    for (unsigned i = 0; i < p->nworkers; i++) {
        ssize_t rc = write(p->workers[i].wake_io.fd, &one, sizeof(one));
        (void)rc; /* an eventfd write fails only when the counter is saturated */
    }
}

void proxy_join(struct proxy *p)
{
    route_health_stop(p->health);
    p->health = NULL;
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_destroy(&p->workers[i]);
    free_proxy(p);
}
