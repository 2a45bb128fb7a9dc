/* Active health checks: one thread with its own event loop checks every
 * backend of the upstreams that ask for it and publishes the result in the
 * backend's `down` flag, which workers read without a lock when they pick
 * a backend. Nothing here touches a worker or a connection.
 *
 *   tcp        the connect succeeds
 *   http       GET path answers 2xx or 3xx
 *   websocket  a real upgrade: GET path with our key answers a valid 101,
 *              then a clean close (our close frame, the backend's answer)
 *
 * A backend goes down after unhealthy_threshold failed checks in a row and
 * comes back after healthy_threshold passed ones; each change is logged. */
#include "route/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "core/sock.h"
#include "http/handshake.h"
#include "http/parser.h"
#include "tls/tls.h"
#include "ws/frame.h"

#define CHECK_HEAD_MAX 8192 /* bytes of a check's response head */
#define CHECK_HEADERS  64

enum step { CK_IDLE, CK_CONNECT, CK_SEND, CK_HEAD, CK_CLOSE };

struct check {
    struct io io;
    struct timer timer;
    struct health *h;
    const struct rc_upstream *up;
    const struct rc_backend *b;
    enum step step;
    char req[1024];
    size_t req_len, req_off;
    char head[CHECK_HEAD_MAX];
    size_t head_len, scan;
    char accept[HS_ACCEPT_LEN + 1];
    unsigned passes, fails; /* in a row */
    uint64_t started;       /* ms the current check began */
    struct tls_conn *tls;   /* a wss:// backend's TLS, or NULL */
};

struct health {
    struct loop loop;
    struct io wake;
    struct check *checks;
    size_t n;
    struct rng rng;
    pthread_t thread;
    bool running;
};

static void start_check(struct check *c);

static void close_sock(struct check *c)
{
    tls_free(c->tls);
    c->tls = NULL;
    if (c->io.fd >= 0) {
        close(c->io.fd);
        c->io.fd = -1;
    }
}

static void verdict(struct check *c, bool ok, const char *why)
{
    struct backend_state *st = c->b->state;
    bool down = atomic_load_explicit(&st->down, memory_order_relaxed);
    struct log_line l;

    close_sock(c);
    c->step = CK_IDLE;
    if (ok) {
        c->fails = 0;
        c->passes++;
        if (down && c->passes >= c->up->health.healthy_threshold) {
            atomic_store_explicit(&st->down, false, memory_order_relaxed);
            if (log_begin(&l, LOG_INFO, "backend up")) {
                log_str(&l, "upstream", c->up->name);
                log_str(&l, "backend", c->b->addr.text);
                log_end(&l);
            }
        }
    } else {
        c->passes = 0;
        c->fails++;
        if (!down && c->fails >= c->up->health.unhealthy_threshold) {
            atomic_store_explicit(&st->down, true, memory_order_relaxed);
            if (log_begin(&l, LOG_WARN, "backend down")) {
                log_str(&l, "upstream", c->up->name);
                log_str(&l, "backend", c->b->addr.text);
                log_str(&l, "reason", why);
                log_end(&l);
            }
        }
    }
    timer_arm(&c->h->loop.wheel, &c->timer, c->started + c->up->health.interval_ms);
}

/* Our request for an http or websocket check. */
static void build_request(struct check *c)
{
    const char *path = c->up->health.path ? c->up->health.path : "/";
    char key[HS_KEY_LEN + 1];
    uint8_t nonce[16];
    int n;

    if (c->up->health.type == HC_WEBSOCKET) {
        rng_bytes(&c->h->rng, nonce, sizeof(nonce));
        hs_make_key(nonce, key);
        hs_accept_key(key, HS_KEY_LEN, c->accept);
        n = snprintf(c->req, sizeof(c->req),
                     "GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: wsgate-health-check\r\n\r\n",
                     c->b->path, path, c->b->addr.text, key);
    } else {
        n = snprintf(c->req, sizeof(c->req),
                     "GET %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                     "User-Agent: wsgate-health-check\r\n\r\n",
                     c->b->path, path, c->b->addr.text);
    }
    c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
    c->req_off = 0;
}

static ssize_t chk_send(struct check *c, const void *p, size_t n)
{
    struct iovec iov = {(void *)p, n};

    return c->tls ? tls_sendv(c->tls, &iov, 1) : send(c->io.fd, p, n, MSG_NOSIGNAL);
}

static ssize_t chk_recv(struct check *c, void *p, size_t n)
{
    return c->tls ? tls_recv(c->tls, p, n) : recv(c->io.fd, p, n, 0);
}

/* Why an I/O call failed: TLS's own reason when TLS failed. */
static const char *io_why(struct check *c, const char *plain)
{
    static _Thread_local char why[128];

    if (c->tls && tls_failure(c->tls)[0]) {
        snprintf(why, sizeof(why), "TLS: %s", tls_failure(c->tls));
        return why;
    }
    return plain;
}

/* A masked close 1000 from us, after a 101. */
static void send_close(struct check *c)
{
    uint8_t f[8], key[4] = {0};
    uint32_t k = rng_u32(&c->h->rng);
    size_t n;

    memcpy(key, &k, 4);
    n = ws_frame_write(f, true, WS_OP_CLOSE, key, 2);
    f[n] = 0x03 ^ key[0];
    f[n + 1] = 0xe8 ^ key[1];
    if (chk_send(c, f, n + 2) != (ssize_t)(n + 2)) {
        verdict(c, false, "could not send a close frame after the 101");
        return;
    }
    c->step = CK_CLOSE;
}

static void on_head(struct check *c)
{
    struct http_header hdrs[CHECK_HEADERS];
    struct http_response resp = {.headers = hdrs};
    struct http_limits lim = {CHECK_HEAD_MAX, CHECK_HEADERS};
    int rc = http_parse_response(c->head, c->head_len, &lim, &resp, &c->scan);

    if (rc == ERR_AGAIN)
        return;
    if (rc < 0) {
        verdict(c, false, "the answer is not HTTP");
        return;
    }
    if (c->up->health.type == HC_HTTP) {
        verdict(c, resp.status >= 200 && resp.status < 400, "HTTP status not 2xx or 3xx");
        return;
    }
    /* websocket: a valid 101 for our key, then close cleanly. The check
     * offered no subprotocol, so the request for hs_check_response has
     * no headers. */
    struct http_request none = {0};
    struct http_span proto;
    if (resp.status != 101 || hs_check_response(&resp, c->accept, &none, &proto) < 0) {
        verdict(c, false, "no valid 101 to a WebSocket upgrade");
        return;
    }
    send_close(c);
}

static void on_io(struct io *io, uint32_t events)
{
    struct check *c = (struct check *)((char *)io - offsetof(struct check, io));

    if (c->tls) {
        /* Owed ciphertext goes out when it can; during the TLS handshake
         * any readiness may let it progress. */
        if ((events & EPOLLOUT) && tls_flush(c->tls) < 0) {
            verdict(c, false, "connection lost");
            return;
        }
        if (!tls_established(c->tls))
            events |= EPOLLIN | EPOLLOUT;
    }
    if (c->step == CK_CONNECT) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            verdict(c, false, "connect failed");
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        if (c->up->health.type == HC_TCP) {
            verdict(c, true, NULL);
            return;
        }
        if (c->b->tls &&
            !(c->tls = tls_connect_new(c->up->tls.cl, c->io.fd, c->b->host, c->b->host_is_ip))) {
            verdict(c, false, "out of memory");
            return;
        }
        build_request(c);
        c->step = CK_SEND;
    }
    if (c->step == CK_SEND) {
        ssize_t n = chk_send(c, c->req + c->req_off, c->req_len - c->req_off);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            verdict(c, false, io_why(c, "could not send the request"));
            return;
        }
        c->req_off += (size_t)n;
        if (c->req_off < c->req_len)
            return;
        c->step = CK_HEAD;
    }
    for (;;) {
        char sink[512];
        ssize_t n;
        if (c->step == CK_HEAD) {
            if (c->head_len == sizeof(c->head)) {
                verdict(c, false, "the answer's head is too large");
                return;
            }
            n = chk_recv(c, c->head + c->head_len, sizeof(c->head) - c->head_len);
        } else if (c->step == CK_CLOSE) {
            n = chk_recv(c, sink, sizeof(sink));
        } else {
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            /* After our close the backend closing the connection is the
             * end of a clean close; before a complete head it is a failure. */
            if (c->step == CK_CLOSE)
                verdict(c, true, NULL);
            else
                verdict(c, false, io_why(c, "connection closed before an answer"));
            return;
        }
        if (c->step == CK_HEAD) {
            c->head_len += (size_t)n;
            on_head(c);
            if (c->step != CK_HEAD)
                return;
        } else {
            /* The backend's close frame: the close handshake is done. */
            struct ws_frame_hdr h;
            if (ws_frame_parse((const uint8_t *)sink, (size_t)n, &h) > 0 &&
                h.opcode == WS_OP_CLOSE) {
                verdict(c, true, NULL);
                return;
            }
        }
    }
}

static void on_timer(struct timer *t)
{
    struct check *c = (struct check *)((char *)t - offsetof(struct check, timer));

    if (c->step == CK_IDLE) {
        start_check(c);
        return;
    }
    verdict(c, false, "no answer within the timeout");
}

static void start_check(struct check *c)
{
    c->started = c->h->loop.now;
    c->head_len = c->scan = 0;
    c->io.fd = sock_connect((const struct sockaddr *)&c->b->addr.sa, c->b->addr.len);
    if (c->io.fd < 0) {
        c->step = CK_CONNECT;
        verdict(c, false, "cannot create a socket");
        return;
    }
    if (loop_add(&c->h->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) < 0) {
        c->step = CK_CONNECT;
        verdict(c, false, "cannot watch the socket");
        return;
    }
    c->step = CK_CONNECT;
    timer_arm(&c->h->loop.wheel, &c->timer, c->started + c->up->health.timeout_ms);
}

static void on_wake(struct io *io, uint32_t events)
{
    struct health *h = (struct health *)((char *)io - offsetof(struct health, wake));
    uint64_t v;

    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    h->loop.stop = true;
}

static void *health_main(void *arg)
{
    struct health *h = arg;

    loop_run(&h->loop);
    return NULL;
}

int route_health_start(const struct route_conf *rc, struct health **out)
{
    struct health *h;
    size_t n = 0, k = 0;

    *out = NULL;
    for (size_t i = 0; i < rc->nupstreams; i++)
        if (rc->upstreams[i].health.type != HC_NONE)
            n += rc->upstreams[i].nbackends;
    if (n == 0)
        return 0;
    h = calloc(1, sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    h->loop.epfd = -1;
    h->wake.fd = -1;
    h->checks = calloc(n, sizeof(*h->checks));
    if (!h->checks || loop_init(&h->loop) < 0 || rng_init(&h->rng) < 0) {
        route_health_stop(h);
        return ERR_SYS;
    }
    h->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    h->wake.cb = on_wake;
    if (h->wake.fd < 0 || loop_add(&h->loop, &h->wake, EPOLLIN) < 0) {
        route_health_stop(h);
        return ERR_SYS;
    }
    for (size_t i = 0; i < rc->nupstreams; i++) {
        const struct rc_upstream *up = &rc->upstreams[i];
        if (up->health.type == HC_NONE)
            continue;
        for (size_t j = 0; j < up->nbackends; j++) {
            struct check *c = &h->checks[k++];
            c->h = h;
            c->up = up;
            c->b = &up->backends[j];
            c->io.fd = -1;
            c->io.cb = on_io;
            c->step = CK_IDLE;
            timer_init(&c->timer, on_timer);
            /* The first checks soon, spread over a tenth of an interval. */
            timer_arm(&h->loop.wheel, &c->timer,
                      h->loop.now + rng_u32(&h->rng) % (uint32_t)(up->health.interval_ms / 10 + 1));
        }
    }
    h->n = n;
    if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
        route_health_stop(h);
        return ERR_SYS;
    }
    h->running = true;
    *out = h;
    return 0;
}

void route_health_stop(struct health *h)
{
    uint64_t one = 1;

    if (!h)
        return;
    if (h->running) {
        ssize_t rc = write(h->wake.fd, &one, sizeof(one));
        (void)rc; /* an eventfd write fails only when the counter is saturated */
        pthread_join(h->thread, NULL);
    }
    for (size_t i = 0; h->checks && i < h->n; i++)
        close_sock(&h->checks[i]);
    if (h->wake.fd >= 0)
        close(h->wake.fd);
    loop_destroy(&h->loop);
    free(h->checks);
    free(h);
}
