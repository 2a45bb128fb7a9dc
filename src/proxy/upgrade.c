/* The opening handshakes of a session (RFC 6455 §4): read and check the
 * client's request, connect to the backend, send our own upgrade request,
 * check the backend's answer, then start the relay, or answer the client
 * with an HTTP error. Nothing but an HTTP response reaches the client before
 * the backend's valid 101 (no upgrade smuggling). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/handshake.h"
#include "http/path.h"
#include "proxy/session.h"
#include "admit/admit.h"
#include "admit/proxy_proto.h"
#include "auth/auth.h"
#include "proxy/transport.h"
#include "route/route.h"

#define RELAY_BODY_MAX (64 * 1024) /* bytes of a backend error body relayed to the client */
#define LINGER_MAX_MS  2000        /* after an error response, drain the client this long */
#define REQUEST_ID_MAX 64          /* longer client X-Request-Id values are replaced */

static void set_deadline(struct session *s, uint64_t at)
{
    s->deadline = at;
    timer_arm(&s->w->loop.wheel, &s->timer, at);
}

static void respond(struct session *s, int status, int err, const char *detail, const char *extra);
static void read_request(struct session *s);

void handshake_start(struct session *s, bool overloaded)
{
    if (overloaded && s->st == SESS_ST_PROXY) {
        /* Nothing can be answered before the header is read: close. */
        s->err = ERR_OVERLOADED;
        session_end(s);
        return;
    }
    if (overloaded) {
        respond(s, 503, ERR_OVERLOADED, err_str(ERR_OVERLOADED), NULL);
        return;
    }
    set_deadline(s, s->w->loop.now + s->cfg->handshake_timeout_ms);
}

static void linger_read(struct session *s)
{
    char sink[4096];

    for (;;) {
        ssize_t n = leg_recv(&s->c, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        session_end(s); /* EOF or reset: the client has our response */
        return;
    }
}

static void respond_flush(struct session *s)
{
    int rc = leg_write_pre(&s->c);

    if (rc == 0)
        return;
    if (rc < 0) {
        session_end(s);
        return;
    }
    /* Half-close and drain what the client still sends, so closing with
     * unread bytes does not reset the connection and destroy our response
     * before the client reads it. */
    leg_shutw(&s->c);
    s->st = SESS_ST_LINGER;
    linger_read(s);
}

static void start_respond(struct session *s, char *resp, size_t len)
{
    uint64_t linger = s->lim->close_timeout_ms;

    leg_close(&s->b);
    leg_set_pre(&s->c, resp, len);
    s->st = SESS_ST_RESPOND;
    if (linger > LINGER_MAX_MS)
        linger = LINGER_MAX_MS;
    set_deadline(s, s->w->loop.now + linger);
    respond_flush(s);
}

/* Answer the client with an error (extra: header lines, or NULL), then
 * linger and close. */
static void respond(struct session *s, int status, int err, const char *detail, const char *extra)
{
    size_t cap = 512 + (extra ? strlen(extra) : 0);
    char *resp = malloc(cap);
    int n;

    if (!s->err)
        s->err = err;
    s->status = status;
    if (s->closed_by == CLOSED_BY_NONE)
        s->closed_by = CLOSED_BY_PROXY;
    if (!resp || (n = hs_build_error(resp, cap, status, detail, extra)) < 0) {
        free(resp);
        session_end(s);
        return;
    }
    start_respond(s, resp, (size_t)n);
}

static void fail(struct session *s, int err)
{
    respond(s, err_http_status(err), err, err_str(err), NULL);
}

void http_respond_error(struct session *s, int status, int err)
{
    s->st = SESS_ST_REQUEST; /* an error response ends the client connection */
    respond(s, status, err, err_str(err), NULL);
}

void http_close_client(struct session *s)
{
    /* Everything is written: half-close and drain, as after an error. */
    leg_shutw(&s->c);
    s->st = SESS_ST_LINGER;
    set_deadline(s, s->w->loop.now + LINGER_MAX_MS);
    linger_read(s);
}

static bool valid_request_id(struct http_span v)
{
    if (v.n == 0 || v.n > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

void handshake_request_id(struct session *s, struct http_span given)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[16];

    if (valid_request_id(given)) {
        memcpy(s->request_id, given.p, given.n);
        s->request_id[given.n] = '\0';
        return;
    }
    rng_bytes(&s->w->rng, r, sizeof(r));
    for (size_t i = 0; i < sizeof(r); i++) {
        s->request_id[2 * i] = hex[r[i] >> 4];
        s->request_id[2 * i + 1] = hex[r[i] & 15];
    }
    s->request_id[2 * sizeof(r)] = '\0';
}

static const struct http_limits *limits(const struct session *s, struct http_limits *lim)
{
    lim->max_head = s->cfg->max_header_size;
    lim->max_headers = s->cfg->max_headers;
    return lim;
}

/* The value of cookie `name` in the request's Cookie fields, or false. */
static bool find_cookie(const struct http_request *req, const char *name, struct http_span *out)
{
    size_t nl = strlen(name);
    unsigned from = 0;
    int i;

    while ((i = http_header_next(req->headers, req->nheaders, "Cookie", &from)) >= 0) {
        const char *p = req->headers[i].value.p;
        size_t n = req->headers[i].value.n, k = 0;
        while (k < n) {
            size_t e = k;
            while (e < n && p[e] != ';')
                e++;
            while (k < e && p[k] == ' ')
                k++;
            if (e - k > nl && memcmp(p + k, name, nl) == 0 && p[k + nl] == '=') {
                out->p = p + k + nl + 1;
                out->n = e - k - nl - 1;
                return true;
            }
            k = e + 1;
        }
    }
    return false;
}

/* The bytes an LB_HASH upstream hashes for this request, or false when the
 * request has none (it is then balanced at random). */
static bool hash_key(struct session *s, const struct rc_upstream *up, const struct route_req *rq,
                     struct http_span *key)
{
    unsigned from = 0;
    int i;

    switch (up->hash_src) {
    case HASH_IP:
        if (s->client_addr.ss_family == AF_INET6) {
            key->p = (const char *)&((const struct sockaddr_in6 *)&s->client_addr)->sin6_addr;
            key->n = 16;
        } else {
            key->p = (const char *)&((const struct sockaddr_in *)&s->client_addr)->sin_addr;
            key->n = 4;
        }
        return true;
    case HASH_PATH:
        key->p = rq->path;
        key->n = rq->path_len;
        return true;
    case HASH_HEADER:
        i = http_header_next(s->req.headers, s->req.nheaders, up->hash_name, &from);
        if (i < 0)
            return false;
        *key = s->req.headers[i].value;
        return true;
    case HASH_COOKIE:
        return find_cookie(&s->req, up->hash_name, key);
    case HASH_QUERY: {
        size_t nl = strlen(up->hash_name), k = 0;
        while (rq->query && k < rq->query_len) {
            size_t e = k;
            while (e < rq->query_len && rq->query[e] != '&')
                e++;
            if (e - k >= nl && memcmp(rq->query + k, up->hash_name, nl) == 0 &&
                (e - k == nl || rq->query[k + nl] == '=')) {
                key->p = e - k == nl ? rq->query + e : rq->query + k + nl + 1;
                key->n = e - k == nl ? 0 : e - k - nl - 1;
                return true;
            }
            k = e + 1;
        }
        return false;
    }
    }
    return false;
}

/* The request as the router sees it: Host, the normalized path and the
 * query, the headers. */
static void route_request(const struct session *s, struct route_req *rq)
{
    unsigned from = 0;
    int i = http_header_next(s->req.headers, s->req.nheaders, "Host", &from);

    memset(rq, 0, sizeof(*rq));
    if (i >= 0) {
        rq->host = s->req.headers[i].value.p;
        rq->host_len = s->req.headers[i].value.n;
    }
    rq->path = s->npath;
    rq->path_len = s->npath_len;
    if (s->query) {
        rq->query = s->query;
        rq->query_len = s->query_len;
    }
    rq->headers = s->req.headers;
    rq->nheaders = s->req.nheaders;
}

/* The backend a sticky cookie names, if it is valid and usable. */
static int sticky_backend(struct session *s, const struct rc_upstream *up)
{
    struct http_span v;
    int i;

    if (!up->sticky_cookie || !find_cookie(&s->req, up->sticky_cookie, &v))
        return -1;
    i = route_sticky_decode(up, v.p, v.n);
    if (i < 0 || !route_backend_usable(&up->backends[i], s->w->loop.now))
        return -1;
    return i;
}

static void backend_failed(struct session *s, int err);

int handshake_choose(struct session *s, struct route_req *rq)
{
    const struct rc_upstream *up = s->upstream;
    struct http_span key = {0};
    char rnd[8];
    int bi = -1;

    route_request(s, rq);
    if (s->attempts == 0)
        bi = sticky_backend(s, up);
    if (bi >= 0) {
        s->sticky_hit = true;
    } else {
        if (up->balance == LB_HASH && !hash_key(s, up, rq, &key)) {
            /* No key in this request: any backend will do. */
            rng_bytes(&s->w->rng, rnd, sizeof(rnd));
            key.p = rnd;
            key.n = sizeof(rnd);
        }
        bi = route_pick_backend(&s->w->router, s->upstream_index, up, key.p, key.n, s->tried,
                                s->attempts, s->w->loop.now, &s->w->rng);
    }
    if (bi < 0 || s->attempts >= sizeof(s->tried) / sizeof(s->tried[0]))
        return -1;
    s->backend = &up->backends[bi];
    s->tried[s->attempts++] = (uint32_t)bi;
    route_backend_acquire(s->backend);
    s->backend_held = true;
    return bi;
}

/* Whether proto is one of the entries of a ", "-separated list. */
static bool offered(const char *list, struct http_span proto)
{
    const char *p = list;

    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == proto.n && memcmp(p, proto.p, n) == 0)
            return true;
        p = e ? e + 2 : NULL;
    }
    return false;
}

/* Connect to the next backend of the upstream and prepare our upgrade
 * request for it. Called for the first attempt and for each retry. */
static void attempt(struct session *s)
{
    const struct rc_upstream *up = s->upstream;
    struct route_req rq;
    struct hs_upstream hu;
    char ip[64], wskey[HS_KEY_LEN + 1];
    uint8_t nonce[16];
    size_t cap, tcap;
    char *out, *target;
    int rc, fd, bi = -1, tlen;
    uint64_t timeout;

    bi = handshake_choose(s, &rq);
    if (bi < 0) {
        /* Every backend is down, ejected, draining or full. */
        respond(s, 503, ERR_NO_BACKEND, err_str(ERR_NO_BACKEND), "Retry-After: 5\r\n");
        return;
    }

    rng_bytes(&s->w->rng, nonce, sizeof(nonce));
    hs_make_key(nonce, wskey);
    hs_accept_key(wskey, HS_KEY_LEN, s->accept);
    sock_ip_text((const struct sockaddr *)&s->conn_addr, ip, sizeof(ip));
    /* The target sent upstream: the backend's own path, the rewritten or
     * normalized path, the query. */
    tcap = strlen(s->backend->path) + s->npath_len + s->query_len + 2 +
           (s->route->rewrite_prefix ? strlen(s->route->rewrite_prefix) : 0);
    target = malloc(tcap);
    tlen = target ? route_upstream_target(s->route, s->backend, &rq, target, tcap) : ERR_NOMEM;
    cap = s->req_head_len + 512 + strlen(s->request_id) + (size_t)(tlen > 0 ? tlen : 0) +
          (s->fwd_extra ? strlen(s->fwd_extra) : 0) + (s->auth_lines ? strlen(s->auth_lines) : 0) +
          (s->protocols ? strlen(s->protocols) : 0);
    out = tlen >= 0 ? malloc(cap) : NULL;
    if (!out) {
        free(target);
        fail(s, ERR_NOMEM);
        return;
    }
    hu = (struct hs_upstream){.key = wskey,
                              .client_ip = ip,
                              .proto = s->listener->has_tls ? "https" : "http",
                              .request_id = {s->request_id, strlen(s->request_id)},
                              .target = {target, (size_t)tlen},
                              .extra = s->fwd_extra,
                              .extra2 = s->auth_lines,
                              .strip = s->auth_strip,
                              .nstrip = s->auth_nstrip,
                              .protocols = {s->protocols, s->protocols ? strlen(s->protocols) : 0},
                              .protocols_set = s->protocols_set};
    rc = hs_build_upstream(out, cap, &s->req, &s->info, &hu);
    free(target);
    if (rc < 0) {
        free(out);
        fail(s, rc);
        return;
    }
    fd = sock_connect((const struct sockaddr *)&s->backend->addr.sa, s->backend->addr.len);
    if (fd < 0) {
        free(out);
        backend_failed(s, ERR_BACKEND_CONNECT);
        return;
    }
    s->b.io.fd = fd;
    s->b.writable = true;
    s->b.rdhup = false;
    leg_set_pre(&s->b, out, (size_t)rc);
    if (session_backend_transport(s) < 0) {
        fail(s, ERR_NOMEM);
        return;
    }
    if (loop_add(&s->w->loop, &s->b.io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) < 0) {
        backend_failed(s, ERR_BACKEND_CONNECT);
        return;
    }
    s->st = SESS_ST_CONNECT;
    /* A retry must fit in the client's handshake deadline; the first
     * attempt always gets the whole connect_timeout. */
    timeout = up->connect_timeout_ms ? up->connect_timeout_ms : s->route->lim.connect_timeout_ms;
    if (s->attempts > 1 && s->w->loop.now + timeout > s->hs_deadline)
        timeout = s->hs_deadline - s->w->loop.now;
    set_deadline(s, s->w->loop.now + timeout);
}

/* A connection attempt failed before the backend's 101: count it against
 * the backend (passive outlier detection), then try another backend of the
 * pool, up to `retries`, while the client's handshake deadline allows. */
static void backend_failed(struct session *s, int err)
{
    const struct rc_upstream *up = s->upstream;

    s->err = err;
    route_backend_result(up, s->backend, false, s->w->loop.now);
    if (s->backend_held) {
        route_backend_release(s->backend);
        s->backend_held = false;
    }
    leg_close(&s->b);
    free(s->hs);
    s->hs = NULL;
    s->hs_len = s->hs_cap = s->hs_scan = 0;
    /* Tried backends failed: the last failure answers (502, 504). When no
     * backend is left to try at all, attempt() answers 503. */
    if (s->attempts <= up->retries && s->attempts < up->nbackends &&
        s->w->loop.now < s->hs_deadline) {
        attempt(s);
        return;
    }
    fail(s, err);
}

/* The route's admission steps; their changes to what is forwarded are
 * kept on the session. Returns 0, or -1 when the request was refused (the
 * answer is under way). */
static int admit(struct session *s, bool upgrade)
{
    struct admit_ctx cx = {.req = &s->req,
                           .upgrade = upgrade,
                           .client = (const struct sockaddr *)&s->client_addr,
                           .query = {s->query, s->query ? s->query_len : 0},
                           .now_s = (uint64_t)time(NULL)};
    int rc = admit_run(&s->route->admit, &cx);

    snprintf(s->user, sizeof(s->user), "%s", cx.user);
    snprintf(s->auth_error, sizeof(s->auth_error), "%s", cx.reason);
    if (cx.limit_held)
        s->limit_held = s->route->limits;
    if (rc < 0) {
        char retry[40];
        admit_ctx_clear(&cx);
        if (rc == ERR_AUTH) {
            respond(s, err_http_status(rc), rc, err_str(rc), cx.challenge);
        } else if (cx.retry_after) {
            snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", cx.retry_after);
            respond(s, err_http_status(rc), rc, err_str(rc), retry);
        } else {
            fail(s, rc);
        }
        return -1;
    }
    free(s->protocols);
    s->protocols = cx.protocols;
    s->protocols_set = cx.protocols_set;
    free(s->auth_lines);
    s->auth_lines = cx.lines;
    s->auth_strip = cx.strip;
    s->auth_nstrip = cx.nstrip;
    if (cx.query_set) {
        /* Credentials taken from the query do not go on to the backend. */
        free(s->query_buf);
        s->query_buf = cx.query_out;
        s->query_len = strlen(s->query_buf);
        s->query = s->query_len ? s->query_buf : NULL; /* no "?" left behind */
    } else {
        free(cx.query_out);
    }
    s->expires_at = 0;
    if (cx.expires_s && upgrade && s->route->auth && auth_close_on_expiry(s->route->auth)) {
        uint64_t now = (uint64_t)time(NULL);
        s->expires_at = s->w->loop.now + (cx.expires_s > now ? (cx.expires_s - now) * 1000 : 0);
    }
    return 0;
}

/* The request head is complete and parsed: check it, normalize its path,
 * pick the route and the upstream, and make the first attempt. */
static void request_ready(struct session *s)
{
    const struct config *cfg = s->cfg;
    struct route_req rq;
    const char *target = s->req.target.p, *q;
    size_t tn = s->req.target.n, pn;
    bool upgrade;
    int rc;
    size_t plen;

    plen = tn < PATH_LOG_MAX ? tn : PATH_LOG_MAX;
    s->path = plen < sizeof(s->path_short) ? s->path_short : objpool_get(&s->w->paths);
    if (s->path) {
        memcpy(s->path, target, plen);
        s->path[plen] = '\0';
    }

    /* Match and forward the normalized path; the query stays as sent. */
    q = memchr(target, '?', tn);
    pn = q ? (size_t)(q - target) : tn;
    if (q) {
        s->query = q + 1;
        s->query_len = tn - pn - 1;
    }
    s->npath = malloc(pn + 1);
    if (!s->npath) {
        fail(s, ERR_NOMEM);
        return;
    }
    rc = path_normalize(target, pn, cfg->merge_slashes, s->npath, pn + 1, &s->npath_len);
    if (rc < 0) {
        fail(s, rc);
        return;
    }

    /* The client, as rules, balancing and logs see it. */
    if (cfg->trusted_proxies.n) {
        struct sockaddr_storage fwd;
        bool x = admit_forwarded_client(&cfg->trusted_proxies,
                                        (const struct sockaddr *)&s->conn_addr, &s->req, &fwd);
        s->client_addr = x ? fwd : s->conn_addr;
        if (x)
            sock_ip_text((const struct sockaddr *)&fwd, s->client, sizeof(s->client));
        else
            sock_addr_text((const struct sockaddr *)&s->conn_addr, s->client, sizeof(s->client));
        s->forwarded = x || s->proxied;
    }
    route_request(s, &rq);
    s->route = route_match(&cfg->routing, &rq);
    if (!s->route) {
        fail(s, ERR_NO_ROUTE);
        return;
    }
    s->lim = &s->route->lim;
    upgrade = http_has_token(s->req.headers, s->req.nheaders, "Upgrade", "websocket");
    if (admit_any(&s->route->admit) && admit(s, upgrade) < 0)
        return;
    s->upstream = route_pick_upstream(s->route, &s->w->rng);
    s->upstream_index = (size_t)(s->upstream - cfg->routing.upstreams);
    s->hs_deadline = s->w->loop.now + cfg->handshake_timeout_ms;
    if (!upgrade) {
        /* Not an upgrade: a plain request, unless the route only takes
         * WebSockets (426, as before plain HTTP was proxied). */
        if (s->route->websocket_only) {
            fail(s, ERR_HS_NOT_UPGRADE);
            return;
        }
        http_begin(s);
        return;
    }
    /* An upgrade opens its own backend connection: one kept from plain
     * requests goes to the pool. */
    http_release_kept(s, true);
    rc = hs_check_request(&s->req, &s->info);
    if (rc < 0) {
        fail(s, rc);
        return;
    }
    handshake_request_id(s, s->info.request_id);
    attempt(s);
}

/* Append n bytes read into w->head_in to a head being collected, growing
 * its block to fit (at least doubling, at most max): a slow or idle client
 * holds only as much memory as it has sent. Returns 0 or ERR_NOMEM. */
static int head_append(char **head, size_t *len, size_t *cap, const char *in, size_t n, size_t max)
{
    if (*len + n > *cap) {
        size_t c = *cap * 2 < max ? *cap * 2 : max;
        char *nh;
        if (c < *len + n)
            c = *len + n;
        nh = realloc(*head, c);
        if (!nh)
            return ERR_NOMEM;
        *head = nh;
        *cap = c;
    }
    memcpy(*head + *len, in, n);
    *len += n;
    return 0;
}

int session_head_append(struct session *s, const char *in, size_t n, size_t max)
{
    return head_append(&s->hs, &s->hs_len, &s->hs_cap, in, n, max);
}

void handshake_next_request(struct session *s, const char *more, size_t more_len)
{
    const struct leg *c = &s->c;
    char *next = NULL;
    size_t len = 0, cap = 0, max = s->cfg->max_header_size + BUF_DATA + more_len;
    int rc = 0;

    /* What followed the last body on this connection starts the next
     * request: the unparsed tail of the client's queue, then `more`. */
    if (c->tail)
        rc = head_append(&next, &len, &cap, (const char *)c->tail->data + c->tail->ppos,
                         c->tail->wpos - c->tail->ppos, max);
    else if (c->nfrag)
        rc = head_append(&next, &len, &cap, (const char *)c->frag, c->nfrag, max);
    if (rc == 0 && more_len)
        rc = head_append(&next, &len, &cap, more, more_len, max);
    leg_drop_queue(&s->c);
    handshake_free(s);
    if (s->path && s->path != s->path_short)
        objpool_put(&s->w->paths, s->path);
    s->path = NULL;
    s->route = NULL;
    s->upstream = NULL;
    s->backend = NULL;
    s->attempts = 0;
    s->sticky_hit = false;
    s->query = NULL;
    s->query_len = 0;
    /* s->lim stays the last route's: its http_idle_timeout and
     * request_timeout apply until the next request is routed. */
    s->err = 0;
    s->req_head = next;
    s->req_len = len;
    s->req_cap = cap;
    s->req_head_len = 0;
    s->hs_scan = 0;
    s->st = SESS_ST_REQUEST;
    if (rc < 0) {
        fail(s, ERR_NOMEM);
        return;
    }
    set_deadline(s, s->w->loop.now + (len > 0 && s->lim->request_timeout_ms
                                          ? s->lim->request_timeout_ms
                                          : s->lim->http_idle_timeout_ms));
    /* The next request may be in the socket already (its edge came while
     * this exchange ran, or the last read did not empty the socket); else
     * its EPOLLIN will come. */
    if (len > 0 || s->c.readable || s->c.rdhup)
        read_request(s);
}

void handshake_free(struct session *s)
{
    free(s->npath);
    s->npath = NULL;
    http_free(s);
    free(s->req_head);
    free(s->hs);
    s->req_head = s->hs = NULL;
    s->req_cap = s->hs_cap = 0;
    free(s->req_hdrs);
    free(s->body);
    s->req_hdrs = NULL;
    s->body = NULL;
    free(s->protocols);
    s->protocols = NULL;
    s->protocols_set = false;
    free(s->auth_lines);
    s->auth_lines = NULL;
    s->auth_strip = NULL;
    s->auth_nstrip = 0;
    free(s->query_buf);
    s->query_buf = NULL;
}

static void request_parsed(struct session *s, int rc);

/* The client's TLS failed while its request was awaited. Plain HTTP sent
 * to a TLS listener gets a plain 400 that says so (the TLS layer is
 * dropped for it); any other failure ends the connection with its reason
 * in the log. */
static void tls_failed(struct session *s)
{
    bool http = tls_peer_spoke_http(s->c.tls);

    snprintf(s->tls_error, sizeof(s->tls_error), "%s", tls_failure(s->c.tls));
    if (http) {
        tls_free(s->c.tls);
        s->c.tls = NULL;
        fail(s, ERR_HTTP_ON_TLS);
        return;
    }
    s->err = s->tls_done ? ERR_TLS : ERR_TLS_HANDSHAKE;
    s->closed_by = CLOSED_BY_PROXY;
    session_end(s);
}

/* The start of a TLS handshake record (content type 22, version 3.x):
 * a client speaking TLS to this plain listener, not a malformed request. */
static bool looks_like_tls(const struct session *s)
{
    if (s->c.tls)
        return false;
    const uint8_t *p = (const uint8_t *)s->req_head;

    return s->req_len >= 3 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04;
}

static void read_request(struct session *s)
{
    struct http_limits lim;
    char *in = s->w->head_in;
    int rc;

    limits(s, &lim);
    /* Bytes that followed the last request on a kept-alive connection may
     * already hold the next head. */
    if (s->req_len > 0 && s->req_head_len == 0) {
        s->req.headers = s->w->scratch;
        rc = http_parse_request(s->req_head, s->req_len, &lim, &s->req, &s->hs_scan);
        if (rc != ERR_AGAIN) {
            request_parsed(s, rc);
            return;
        }
    }
    for (;;) {
        size_t room;
        ssize_t n;

        /* (Pipelined bytes kept from a kept-alive connection may already
         * pass the limit.) */
        if (s->req_len >= lim.max_head) {
            fail(s, ERR_HTTP_HEAD_TOO_BIG);
            return;
        }
        room = lim.max_head - s->req_len;
        n = leg_recv(&s->c, in, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            s->c.readable = false;
            return;
        }
        if (n < 0 && errno == EPROTO && s->c.tls) {
            tls_failed(s);
            return;
        }
        if (n <= 0) {
            /* Gone before finishing its request: nothing to answer. A
             * kept-alive client closing between requests is no error. */
            s->err = s->nrequests > 0 && s->req_len == 0 ? 0 : ERR_CLIENT_CLOSED;
            s->closed_by = CLOSED_BY_CLIENT;
            session_end(s);
            return;
        }
        if (head_append(&s->req_head, &s->req_len, &s->req_cap, in, (size_t)n, lim.max_head) < 0) {
            s->err = ERR_NOMEM;
            session_end(s);
            return;
        }
        if (s->c.tls && !s->tls_done)
            session_tls_established(s);
        /* A short read emptied the socket: more bytes (a body, the next
         * request) come with a new EPOLLIN. */
        s->c.readable = (size_t)n == room || s->c.rdhup || !leg_short_read_drains(&s->c);
        /* The next request on a kept-alive connection has begun: its head
         * must now be complete within request_timeout. */
        if (s->nrequests > 0 && s->req_len == (size_t)n && s->lim->request_timeout_ms)
            set_deadline(s, s->w->loop.now + s->lim->request_timeout_ms);
        /* A TLS ClientHello holds random bytes and may hold no line end
         * for the parser to stop at: name it from its first bytes. */
        if (looks_like_tls(s)) {
            request_parsed(s, ERR_TLS_ON_PLAIN);
            return;
        }
        s->req.headers = s->w->scratch;
        rc = http_parse_request(s->req_head, s->req_len, &lim, &s->req, &s->hs_scan);
        /* A short read emptied the socket: the next bytes come with a new
         * edge, so skip the read that would only say EAGAIN. */
        if (rc == ERR_AGAIN && (size_t)n < room && !s->c.rdhup && leg_short_read_drains(&s->c))
            return;
        if (rc == ERR_AGAIN)
            continue;
        request_parsed(s, rc);
        return;
    }
}

/* A complete head (rc: its length) or a parse error. */
static void request_parsed(struct session *s, int rc)
{
    if (rc < 0) {
        fail(s, rc);
        return;
    }
    s->req_head_len = (size_t)rc;
    /* Keep only the headers this request has; the scratch array is
     * reused by the next head parsed on this worker. */
    s->req_hdrs = malloc(sizeof(*s->req_hdrs) * (s->req.nheaders ? s->req.nheaders : 1));
    if (!s->req_hdrs) {
        fail(s, ERR_NOMEM);
        return;
    }
    memcpy(s->req_hdrs, s->req.headers, sizeof(*s->req_hdrs) * s->req.nheaders);
    s->req.headers = s->req_hdrs;
    s->hs_scan = 0;
    request_ready(s);
}

static void relay_error_response(struct session *s)
{
    struct http_response resp;
    struct http_limits lim;
    size_t head_len, scan = 0;
    size_t cap;
    char *out;
    int n;

    /* Re-parse the head kept in s->hs: spans point into it. */
    limits(s, &lim);
    resp.headers = s->w->scratch;
    n = http_parse_response(s->hs, s->hs_len, &lim, &resp, &scan);
    if (n < 0) {
        fail(s, ERR_HS_STATUS);
        return;
    }
    head_len = (size_t)n;
    cap = head_len + 128 + s->body_len;
    out = malloc(cap);
    if (!out) {
        fail(s, ERR_NOMEM);
        return;
    }
    n = hs_build_relayed_head(out, cap, &resp, s->body_len);
    if (n < 0) {
        free(out);
        fail(s, ERR_HS_STATUS);
        return;
    }
    if (s->body_len)
        memcpy(out + n, s->body, s->body_len);
    s->status = resp.status;
    s->err = ERR_HS_STATUS;
    s->closed_by = CLOSED_BY_BACKEND;
    start_respond(s, out, (size_t)n + s->body_len);
}

/* Append backend body bytes (raw, possibly chunked) to s->body. Returns true
 * when the body is complete or the relay bound is reached. */
static bool body_feed(struct session *s, const char *p, size_t n)
{
    while (n > 0 && s->body_len < RELAY_BODY_MAX) {
        size_t room = RELAY_BODY_MAX - s->body_len;
        if (s->body_chunked) {
            size_t out = 0;
            int used = http_chunked_decode(&s->chunked, p, n, s->body + s->body_len, room, &out);
            if (used < 0)
                return true; /* malformed: relay what decoded so far */
            s->body_len += out;
            p += used;
            n -= (size_t)used;
            if (s->chunked.done)
                return true;
            if (used == 0 && out == 0)
                return true;
        } else {
            size_t take = n < room ? n : room;
            if (!s->body_to_eof && take > s->body_need)
                take = (size_t)s->body_need;
            memcpy(s->body + s->body_len, p, take);
            s->body_len += take;
            s->body_need -= s->body_to_eof ? 0 : take;
            p += take;
            n -= take;
            if (!s->body_to_eof && s->body_need == 0)
                return true;
        }
    }
    return s->body_len >= RELAY_BODY_MAX ||
           (!s->body_to_eof && !s->body_chunked && s->body_need == 0);
}

static bool parse_content_length(struct http_span v, uint64_t *out)
{
    uint64_t n = 0;

    if (v.n == 0 || v.n > 18)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

/* A non-101 answer: collect its body (bounded) and relay it. */
static void start_body(struct session *s, const struct http_response *resp, size_t head_len)
{
    unsigned from = 0;
    int i;

    s->err = ERR_HS_STATUS;
    s->body = malloc(RELAY_BODY_MAX);
    if (!s->body) {
        fail(s, ERR_NOMEM);
        return;
    }
    s->body_len = 0;
    s->body_need = 0;
    s->body_chunked = false;
    s->body_to_eof = false;
    if (resp->status >= 200 && resp->status != 204 && resp->status != 304) {
        if (http_has_token(resp->headers, resp->nheaders, "Transfer-Encoding", "chunked")) {
            s->body_chunked = true;
            memset(&s->chunked, 0, sizeof(s->chunked));
        } else if ((i = http_header_next(resp->headers, resp->nheaders, "Content-Length", &from)) >=
                   0) {
            if (!parse_content_length(resp->headers[i].value, &s->body_need))
                s->body_need = 0;
        } else {
            s->body_to_eof = true;
        }
    }
    s->st = SESS_ST_BODY;
    if (body_feed(s, s->hs + head_len, s->hs_len - head_len) ||
        (!s->body_chunked && !s->body_to_eof && s->body_need == 0)) {
        s->hs_len = head_len;
        relay_error_response(s);
        return;
    }
    s->hs_len = head_len;
}

static void read_body(struct session *s)
{
    char chunk[16384];

    for (;;) {
        ssize_t n = leg_recv(&s->b, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0 || body_feed(s, chunk, (size_t)n)) {
            relay_error_response(s);
            return;
        }
    }
}

static void response_ready(struct session *s, struct http_response *resp, size_t head_len)
{
    struct http_span proto, key;
    unsigned from = 0;
    char *out, cookie[512];
    const char *extra = NULL;
    size_t cap;
    int rc, i;

    if (resp->status != 101) {
        start_body(s, resp, head_len);
        return;
    }
    rc = hs_check_response(resp, s->accept, &s->req, &proto);
    /* The backend must choose from what it was offered: with a
     * subprotocols: rule, the filtered offer. */
    if (rc == 0 && proto.n > 0 && s->protocols_set && !offered(s->protocols, proto))
        rc = ERR_HS_BAD_PROTOCOL;
    if (rc < 0) {
        backend_failed(s, rc);
        return;
    }
    route_backend_result(s->upstream, s->backend, true, s->w->loop.now);
    /* A sticky upstream tells the client which backend it got, unless the
     * client's cookie already named it. */
    if (s->upstream->sticky_cookie && !s->sticky_hit &&
        route_sticky_header(s->upstream, s->backend, cookie, sizeof(cookie)) > 0)
        extra = cookie;
    i = http_header_next(s->req.headers, s->req.nheaders, "Sec-WebSocket-Key", &from);
    key = s->req.headers[i].value;
    cap = 256 + proto.n + head_len + (extra ? strlen(extra) : 0);
    out = malloc(cap);
    if (!out || (rc = hs_build_101_from(out, cap, key, proto, resp, extra)) < 0) {
        free(out);
        fail(s, ERR_NOMEM);
        return;
    }
    leg_set_pre(&s->c, out, (size_t)rc);
    s->status = 101;
    s->hs_head_len = head_len;
    s->st = SESS_ST_UPGRADED; /* the dispatcher starts the relay */
}

static void read_response(struct session *s)
{
    struct http_limits lim;
    struct http_response resp;
    char *in = s->w->head_in;
    int rc;

    limits(s, &lim);
    for (;;) {
        size_t room = lim.max_head - s->hs_len;
        ssize_t n;

        if (room == 0) {
            backend_failed(s, ERR_HS_STATUS);
            return;
        }
        n = leg_recv(&s->b, in, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            backend_failed(s, session_backend_err(s, ERR_BACKEND_CLOSED));
            return;
        }
        if (head_append(&s->hs, &s->hs_len, &s->hs_cap, in, (size_t)n, lim.max_head) < 0) {
            fail(s, ERR_NOMEM);
            return;
        }
        resp.headers = s->w->scratch;
        rc = http_parse_response(s->hs, s->hs_len, &lim, &resp, &s->hs_scan);
        if (rc == ERR_AGAIN && (size_t)n < room && !s->b.rdhup && leg_short_read_drains(&s->b))
            return;
        if (rc == ERR_AGAIN)
            continue;
        if (rc < 0) {
            /* Not HTTP, or too big: never tunnel what we cannot check. */
            backend_failed(s, ERR_HS_STATUS);
            return;
        }
        response_ready(s, &resp, (size_t)rc);
        return;
    }
}

static void backend_event(struct session *s, uint32_t events)
{
    int rc;

    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->b.rdhup = true;
    if (s->st == SESS_ST_CONNECT) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        /* A failed connect always reports EPOLLERR, so a clean EPOLLOUT
         * needs no SO_ERROR query. */
        if (events & (EPOLLERR | EPOLLHUP)) {
            backend_failed(s, ERR_BACKEND_CONNECT);
            return;
        }
        s->st = SESS_ST_UPGRADE;
    }
    if (s->st == SESS_ST_UPGRADE && s->b.pre) {
        rc = leg_write_pre(&s->b);
        if (rc < 0) {
            backend_failed(s, session_backend_err(s, ERR_BACKEND_CLOSED));
            return;
        }
    }
    if (s->st == SESS_ST_UPGRADE && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        read_response(s);
    else if (s->st == SESS_ST_BODY && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        read_body(s);
}

/* Read the PROXY header, and not a byte more: what follows it is the
 * client's own (a ClientHello, a request). */
static void read_proxy(struct session *s)
{
    uint8_t buf[PROXY_MAX];
    struct proxy_info pi;
    ssize_t n;
    int rc;

    do
        n = recv(s->c.io.fd, buf, sizeof(buf), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        s->err = ERR_CLIENT_CLOSED;
        s->closed_by = CLOSED_BY_CLIENT;
        session_end(s);
        return;
    }
    rc = proxy_parse(buf, (size_t)n, &pi);
    if (rc == ERR_AGAIN && (size_t)n < sizeof(buf) && !s->c.rdhup)
        return; /* the rest comes with a new edge */
    if (rc < 0) {
        /* Nothing sensible can be answered to a connection that does not
         * speak the protocol this listener expects: close it. */
        s->err = ERR_PROXY;
        s->closed_by = CLOSED_BY_PROXY;
        session_end(s);
        return;
    }
    do
        n = recv(s->c.io.fd, buf, (size_t)rc, 0);
    while (n < 0 && errno == EINTR);
    if (n != rc) {
        s->err = ERR_CLIENT_CLOSED;
        session_end(s);
        return;
    }
    if (!pi.local) {
        s->conn_addr = s->client_addr = pi.src;
        s->proxied = s->forwarded = true;
        sock_addr_text((const struct sockaddr *)&pi.src, s->client, sizeof(s->client));
    }
    /* The listener's address rules judge the client the header names. */
    if (admit_ip_any(&s->listener->ip) &&
        !admit_ip_ok(&s->listener->ip, (const struct sockaddr *)&s->client_addr)) {
        s->err = ERR_IP_DENIED;
        s->closed_by = CLOSED_BY_PROXY;
        session_end(s);
        return;
    }
    if (session_client_transport(s) < 0) {
        s->err = ERR_NOMEM;
        session_end(s);
        return;
    }
    s->st = SESS_ST_REQUEST;
    /* Bytes after the header were already announced by the edge just
     * consumed: read them now. */
    s->c.readable = true;
    read_request(s);
}

static void client_event(struct session *s, uint32_t events)
{
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->c.rdhup = true;
    switch (s->st) {
    case SESS_ST_PROXY:
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            read_proxy(s);
        break;
    case SESS_ST_REQUEST:
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            read_request(s);
        break;
    case SESS_ST_RESPOND:
        if (events & (EPOLLERR | EPOLLHUP))
            session_end(s);
        else if (events & EPOLLOUT)
            respond_flush(s);
        break;
    case SESS_ST_LINGER:
        linger_read(s);
        break;
    default:
        /* Waiting on the backend: the client must not send before our 101;
         * anything it does send stays in the socket until the relay starts.
         * Only a hang-up matters now. */
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            s->err = ERR_CLIENT_CLOSED;
            s->closed_by = CLOSED_BY_CLIENT;
            session_end(s);
        }
        break;
    }
}

void handshake_event(struct session *s, struct leg *l, uint32_t events)
{
    if (l->is_client)
        client_event(s, events);
    else
        backend_event(s, events);
}

void handshake_timer(struct session *s)
{
    switch (s->st) {
    case SESS_ST_PROXY:
        s->err = ERR_HANDSHAKE_TIMEOUT;
        session_end(s);
        break;
    case SESS_ST_REQUEST:
        if (s->nrequests > 0 && s->req_len == 0) {
            /* A kept-alive connection idle for http_idle_timeout: closed
             * quietly, as a 408 could cross a request on its way. */
            s->closed_by = CLOSED_BY_PROXY;
            session_end(s);
        } else {
            fail(s, s->nrequests > 0 ? ERR_HTTP_TIMEOUT : ERR_HANDSHAKE_TIMEOUT);
        }
        break;
    case SESS_ST_CONNECT:
    case SESS_ST_UPGRADE:
        backend_failed(s, ERR_BACKEND_TIMEOUT);
        break;
    case SESS_ST_BODY:
        relay_error_response(s);
        break;
    case SESS_ST_RESPOND:
    case SESS_ST_LINGER:
        session_end(s);
        break;
    default:
        break;
    }
}

void handshake_shutdown(struct session *s)
{
    if (s->st == SESS_ST_PROXY) {
        s->err = ERR_SHUTDOWN;
        session_end(s);
        return;
    }
    if (s->st == SESS_ST_REQUEST && s->nrequests > 0 && s->req_len == 0) {
        /* A kept-alive connection between requests: closed quietly. */
        s->closed_by = CLOSED_BY_PROXY;
        session_end(s);
        return;
    }
    if (s->st == SESS_ST_REQUEST || s->st == SESS_ST_CONNECT || s->st == SESS_ST_UPGRADE)
        respond(s, 503, ERR_SHUTDOWN, err_str(ERR_SHUTDOWN), NULL);
}
