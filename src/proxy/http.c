/* Plain HTTP/1.1 requests on a route (RFC 9112): a request that is not a
 * WebSocket upgrade goes to a backend of the route's upstream, chosen as
 * for upgrades (balancing, stickiness, health), over a kept-alive backend
 * connection when the worker's pool has one. Bodies are streamed both ways
 * with backpressure, never buffered whole, so long-polls, uploads and
 * Server-Sent Events flow as they are produced. The framing of every
 * message is checked as it passes (Content-Length counted, chunked syntax
 * parsed), which is what keeps request and response smuggling out: a
 * request is forwarded only after its head is validated, a backend
 * connection is reused only after a response read to its exact end, and
 * the next request on a client connection starts exactly where the last
 * body ended.
 *
 * One exchange at a time per client connection: the next request is read
 * once the response is done. Each exchange writes one access-log line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/handshake.h"
#include "proxy/session.h"
#include "proxy/transport.h"

#define IOV_MAX_HTTP 64

struct http_x {
    struct http_body req;  /* request body framing (client -> backend, unchanged) */
    struct http_body resp; /* response body framing as the backend sends it */
    struct http_body out;  /* ... and as the client gets it */
    uint64_t req_left, resp_left;
    struct http_chunked req_ch, resp_ch;
    bool req_done;       /* the request body has been read to its end */
    bool resp_head;      /* the final response head has been read */
    bool resp_done;      /* the response body has been read to its end */
    bool head_method;    /* HEAD: the response has no body */
    bool client_keep;    /* the client connection persists after this exchange */
    bool backend_keep;   /* the backend connection may be reused */
    bool client_10;      /* HTTP/1.0 client */
    bool dechunk;        /* a chunked response to an HTTP/1.0 client: decoded */
    bool expect_100;     /* the client asked for 100-continue */
    bool reused;         /* the backend connection came from the pool */
    bool idempotent;     /* may be retried when nothing of it was sent */
    bool connected;      /* the backend connection is established */
    uint64_t connect_ms; /* when its connect started */
    uint64_t req_bytes;  /* request body bytes read (without chunk syntax) */
    uint64_t resp_bytes; /* response body bytes read (without chunk syntax) */
    char *pipe;          /* client bytes past the request that came with its head */
    size_t pipe_len;     /* (pipelined requests), read after the response */
    uint64_t start_ms;
    uint64_t req_end_ms;  /* when the request body was read to its end */
    uint64_t req_last_ms; /* when the last request body bytes came */
    int status;           /* final status sent to the client */
    char method[16];
};

static void finish_exchange(struct session *s);
static void arm(struct session *s);
static void flush_backend(struct session *s);
static void flush_client(struct session *s);

static struct http_x *X(struct session *s)
{
    return s->hx;
}

static void drop_x(struct session *s)
{
    if (s->hx)
        free(s->hx->pipe);
    free(s->hx);
    s->hx = NULL;
}

/* ------------------------------------------------------------ logging */

static void log_request(struct session *s)
{
    struct http_x *x = X(s);
    struct log_line l;

    if (!log_begin(&l, LOG_INFO, "access"))
        return;
    log_str(&l, "type", "http");
    log_str(&l, "client", s->client);
    session_log_peer(s, &l);
    log_str(&l, "request_id", s->request_id);
    log_str(&l, "method", x->method);
    log_str(&l, "path", s->path ? s->path : "");
    log_str(&l, "route", s->route ? s->route->name : "");
    log_str(&l, "upstream", s->upstream ? s->upstream->name : "");
    log_str(&l, "backend", s->backend ? s->backend->addr.text : "");
    log_uint(&l, "attempts", s->attempts);
    log_int(&l, "status", x->status);
    log_ms(&l, "duration_ms", (s->w->loop.now - x->start_ms) * 1000);
    log_uint(&l, "bytes_in", x->req_bytes);
    log_uint(&l, "bytes_out", x->resp_bytes);
    log_str(&l, "error", err_name(s->err));
    session_log_tls(s, &l);
    log_end(&l);
}

/* ------------------------------------------------------------ framing */

/* How many of the n bytes at p belong to the message body being framed by
 * (body, left, ch); sets *done at its end. A chunked body is parsed (and,
 * with dechunk, decoded in place: *kept receives the decoded length, which
 * replaces the consumed bytes). *data receives the body's own bytes among
 * them (without chunk syntax). Returns the bytes consumed or an error. */
static int frame(const struct http_body *body, uint64_t *left, struct http_chunked *ch, uint8_t *p,
                 size_t n, bool dechunk, size_t *kept, size_t *data, bool *done)
{
    size_t outn = 0;
    int used;

    *kept = 0;
    *data = 0;
    switch (body->kind) {
    case HTTP_BODY_NONE:
        *done = true;
        return 0;
    case HTTP_BODY_LENGTH: {
        size_t take = n < *left ? n : (size_t)*left;
        *left -= take;
        *done = *left == 0;
        *kept = *data = take;
        return (int)take;
    }
    case HTTP_BODY_CHUNKED:
        used = http_chunked_decode(ch, (const char *)p, n, dechunk ? (char *)p : NULL,
                                   dechunk ? n : 0, &outn);
        if (used < 0)
            return used;
        *done = ch->done;
        *kept = dechunk ? outn : (size_t)used;
        *data = outn;
        return used;
    case HTTP_BODY_CLOSE:
        *kept = *data = n;
        return (int)n;
    }
    return 0;
}

/* Frame the new bytes [ppos, wpos) of buffer b of leg src's queue: what
 * belongs to the body becomes [rpos, ppos) to write on; what follows its
 * end stays unparsed (the next request, or bytes a response must not have). */
static int frame_buf(struct session *s, struct leg *src, struct buf *b)
{
    struct http_x *x = X(s);
    bool req = src->is_client;
    bool *done = req ? &x->req_done : &x->resp_done;
    size_t kept, data;
    int used;

    if (*done || b->ppos == b->wpos)
        return 0;
    used = frame(req ? &x->req : &x->resp, req ? &x->req_left : &x->resp_left,
                 req ? &x->req_ch : &x->resp_ch, b->data + b->ppos, b->wpos - b->ppos,
                 !req && x->dechunk, &kept, &data, done);
    if (used < 0)
        return used;
    /* Past max_request_body: refused before any of these bytes go on. */
    if (req && s->lim->max_request_body && x->req_bytes + data > s->lim->max_request_body)
        return ERR_HTTP_BODY_TOO_BIG;
    if (req && *done) {
        /* The response head is now due within response_timeout. */
        x->req_end_ms = s->w->loop.now;
        arm(s);
    }
    if (kept < (size_t)used) {
        /* Decoded in place: drop the chunk syntax between the data and
         * the rest of the buffer. */
        memmove(b->data + b->ppos + kept, b->data + b->ppos + used, b->wpos - b->ppos - used);
        b->wpos -= (uint32_t)(used - kept);
    }
    b->ppos += (uint32_t)kept;
    src->queued += kept;
    if (req)
        x->req_bytes += data;
    else
        x->resp_bytes += data;
    return 0;
}

/* Put bytes that came with a head into leg l's queue, framed. Bytes past
 * the end of the body stop there: from a client they are its next
 * request(s), kept aside for it; from a backend they make its connection
 * unusable. */
static int preload(struct session *s, struct leg *l, const char *p, size_t n)
{
    struct http_x *x = X(s);
    const bool *done = l->is_client ? &x->req_done : &x->resp_done;

    while (n > 0) {
        if (*done) {
            if (!l->is_client) {
                x->backend_keep = false;
                return 0;
            }
            x->pipe = malloc(n);
            if (!x->pipe)
                return ERR_NOMEM;
            memcpy(x->pipe, p, n);
            x->pipe_len = n;
            return 0;
        }
        struct buf *b = leg_rx_buf(l);
        size_t take;
        int rc;
        if (!b)
            return ERR_NOMEM;
        take = BUF_DATA - b->wpos;
        if (take > n)
            take = n;
        memcpy(b->data + b->wpos, p, take);
        b->wpos += (uint32_t)take;
        p += take;
        n -= take;
        rc = frame_buf(s, l, b);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------ endings */

/* The exchange cannot go on. Before the response head: answer with err's
 * status (the client connection is then closed); after it: close both. */
static void abort_exchange(struct session *s, int err)
{
    struct http_x *x = X(s);

    if (!s->err)
        s->err = err;
    if (s->backend_held) {
        route_backend_release(s->backend);
        s->backend_held = false;
    }
    leg_close(&s->b);
    s->nrequests++; /* this line stands for the connection's */
    if (!x->resp_head && !s->c.pre) {
        int status = err_http_status(err);
        x->status = status;
        log_request(s);
        drop_x(s);
        http_respond_error(s, status, err);
        return;
    }
    log_request(s);
    session_end(s);
}

/* ------------------------------------------------------------ backend */

static void backend_failed(struct session *s, int err);

/* Connect (or take a pooled connection) and queue the request head. */
static void connect_backend(struct session *s)
{
    struct http_x *x = X(s);
    size_t bi;
    int fd, bidx, rc;
    char ip[64];
    struct hs_upstream hu;
    char *out, *target;
    size_t cap, tcap;
    int tlen;
    struct route_req rq;

    bidx = handshake_choose(s, &rq);
    if (bidx < 0) {
        abort_exchange(s, ERR_NO_BACKEND);
        return;
    }
    bi = (size_t)bidx;
    sock_ip_text((const struct sockaddr *)&s->conn_addr, ip, sizeof(ip));
    tcap = strlen(s->backend->path) + s->npath_len + s->query_len + 2 +
           (s->route->rewrite_prefix ? strlen(s->route->rewrite_prefix) : 0);
    target = malloc(tcap);
    tlen = target ? route_upstream_target(s->route, s->backend, &rq, target, tcap) : ERR_NOMEM;
    cap = s->req_head_len + 512 + strlen(s->request_id) + (size_t)(tlen > 0 ? tlen : 0) +
          (s->fwd_extra ? strlen(s->fwd_extra) : 0) + (s->auth_lines ? strlen(s->auth_lines) : 0);
    out = tlen >= 0 ? malloc(cap) : NULL;
    if (!out) {
        free(target);
        abort_exchange(s, ERR_NOMEM);
        return;
    }
    hu = (struct hs_upstream){.client_ip = ip,
                              .proto = s->listener->has_tls ? "https" : "http",
                              .request_id = {s->request_id, strlen(s->request_id)},
                              .target = {target, (size_t)tlen},
                              .extra = s->fwd_extra,
                              .extra2 = s->auth_lines,
                              .strip = s->auth_strip,
                              .nstrip = s->auth_nstrip};
    rc = hs_build_forward_request(out, cap, &s->req, &hu, &x->req, s->backend->addr.text);
    free(target);
    if (rc < 0) {
        free(out);
        abort_exchange(s, rc == ERR_RANGE ? ERR_HTTP_SYNTAX : ERR_NOMEM);
        return;
    }
    if (s->kept == s->backend && s->kept_upstream == s->upstream_index) {
        /* The connection of this client's last request: already in s->b,
         * watched as it is. */
        s->kept = NULL;
        x->reused = true;
        s->b.writable = true;
        s->b.readable = false;
        s->b.rdhup = false;
        s->b.forward = true;
        leg_set_pre(&s->b, out, (size_t)rc);
        x->connected = true;
        x->connect_ms = s->w->loop.now;
        arm(s);
        flush_backend(s);
        return;
    }
    if (s->kept)
        http_release_kept(s, true);
    fd = http_pool_take(s->w, s->upstream_index, bi, &s->b.tls);
    x->reused = fd >= 0;
    if (fd < 0)
        fd = sock_connect((const struct sockaddr *)&s->backend->addr.sa, s->backend->addr.len);
    if (fd < 0) {
        free(out);
        backend_failed(s, ERR_BACKEND_CONNECT);
        return;
    }
    s->b.io.fd = fd;
    if (!x->reused && session_backend_transport(s) < 0) {
        free(out);
        abort_exchange(s, ERR_NOMEM);
        return;
    }
    s->b.writable = true;
    s->b.readable = false;
    s->b.rdhup = false;
    s->b.forward = true;
    leg_set_pre(&s->b, out, (size_t)rc);
    if ((x->reused ? loop_mod(&s->w->loop, &s->b.io, EPOLLIN | EPOLLOUT | EPOLLRDHUP)
                   : loop_add(&s->w->loop, &s->b.io, EPOLLIN | EPOLLOUT | EPOLLRDHUP)) < 0) {
        backend_failed(s, ERR_BACKEND_CONNECT);
        return;
    }
    /* A new connection is writable once connected (EPOLLOUT), which must
     * happen within connect_timeout; a pooled one can take the request now. */
    s->b.writable = x->reused;
    x->connected = x->reused;
    x->connect_ms = s->w->loop.now;
    arm(s);
    if (x->reused)
        flush_backend(s);
}

/* The backend failed before any byte of its response. Another backend is
 * tried when nothing of the request could have been processed: an
 * idempotent request, and either a connect failure or a reused connection
 * the backend had closed. */
static void backend_failed(struct session *s, int err)
{
    struct http_x *x = X(s);
    bool may_retry = x->idempotent && x->req.kind == HTTP_BODY_NONE;

    if (!x->reused && s->backend)
        route_backend_result(s->upstream, s->backend, false, s->w->loop.now);
    if (s->backend_held) {
        route_backend_release(s->backend);
        s->backend_held = false;
    }
    leg_close(&s->b);
    if (may_retry && s->attempts <= s->upstream->retries && s->w->loop.now < s->hs_deadline &&
        (x->reused || s->attempts < s->upstream->nbackends)) {
        if (x->reused)
            s->attempts--; /* a stale pooled connection is not an attempt */
        x->reused = false;
        connect_backend(s);
        return;
    }
    abort_exchange(s, err);
}

/* The final response head is read: build the client's head, and queue
 * what came after it as body bytes. */
static void response_head(struct session *s, struct http_response *resp, size_t head_len)
{
    struct http_x *x = X(s);
    char cookie[512], *out;
    const char *extra = NULL;
    size_t cap;
    int rc = http_response_body(resp, x->head_method, &x->resp);

    if (rc < 0) {
        /* Ambiguous framing: never relayed, never reused. */
        abort_exchange(s, ERR_BACKEND_HTTP);
        return;
    }
    route_backend_result(s->upstream, s->backend, true, s->w->loop.now);
    x->resp_head = true;
    x->status = resp->status;
    x->resp_left = x->resp.length;
    x->backend_keep = resp->minor_version >= 1 &&
                      !http_has_token(resp->headers, resp->nheaders, "Connection", "close") &&
                      x->resp.kind != HTTP_BODY_CLOSE;
    /* How the body goes on to the client: as it came, but an HTTP/1.0
     * client cannot read chunked, so it gets the data until we close. */
    x->out = x->resp;
    if (x->client_10 && x->resp.kind == HTTP_BODY_CHUNKED) {
        x->dechunk = true;
        x->out.kind = HTTP_BODY_CLOSE;
    }
    if (x->out.kind == HTTP_BODY_CLOSE)
        x->client_keep = false;
    if (!x->req_done)
        x->client_keep = false; /* answered before the request ended */
    if (s->upstream->sticky_cookie && !s->sticky_hit &&
        route_sticky_header(s->upstream, s->backend, cookie, sizeof(cookie)) > 0)
        extra = cookie;
    cap = head_len + 256 + (extra ? strlen(extra) : 0);
    out = malloc(cap);
    if (!out || (rc = hs_build_forward_response(out, cap, resp, &x->out, x->client_keep,
                                                x->client_10, extra)) < 0) {
        free(out);
        abort_exchange(s, ERR_BACKEND_HTTP);
        return;
    }
    leg_append_pre(&s->c, out, (size_t)rc);
    free(out);
    if (x->resp.kind == HTTP_BODY_NONE)
        x->resp_done = true;
    rc = preload(s, &s->b, s->hs + head_len, s->hs_len - head_len);
    free(s->hs);
    s->hs = NULL;
    s->hs_len = s->hs_cap = s->hs_scan = 0;
    if (rc < 0) {
        abort_exchange(s, rc == ERR_NOMEM ? ERR_NOMEM : ERR_BACKEND_HTTP);
        return;
    }
    flush_client(s);
}

/* Read and parse response heads: informational ones are passed on (100
 * only when the client asked for it), then the final one. */
static void read_response_head(struct session *s)
{
    struct http_x *x = X(s);
    struct http_limits lim = {s->cfg->max_header_size, s->cfg->max_headers};
    struct http_response resp;
    char *in = s->w->head_in;
    int rc;

    for (;;) {
        size_t room = lim.max_head - s->hs_len;
        ssize_t n;
        if (s->hs_len > 0) {
            resp.headers = s->w->scratch;
            rc = http_parse_response(s->hs, s->hs_len, &lim, &resp, &s->hs_scan);
            if (rc >= 0 && resp.status < 200) {
                char *out;
                int m;
                if (resp.status == 101) {
                    abort_exchange(s, ERR_BACKEND_HTTP); /* no upgrade was asked for */
                    return;
                }
                if (!x->client_10 && (resp.status != 100 || x->expect_100)) {
                    struct http_body none = {HTTP_BODY_NONE, 0};
                    out = malloc((size_t)rc + 64);
                    m = out ? hs_build_forward_response(out, (size_t)rc + 64, &resp, &none, true,
                                                        false, NULL)
                            : ERR_NOMEM;
                    if (m > 0)
                        leg_append_pre(&s->c, out, (size_t)m);
                    free(out);
                }
                memmove(s->hs, s->hs + rc, s->hs_len - (size_t)rc);
                s->hs_len -= (size_t)rc;
                s->hs_scan = 0;
                flush_client(s);
                if (s->st != SESS_ST_HTTP)
                    return;
                continue;
            }
            if (rc >= 0) {
                response_head(s, &resp, (size_t)rc);
                return;
            }
            if (rc != ERR_AGAIN) {
                abort_exchange(s, ERR_BACKEND_HTTP);
                return;
            }
        }
        if (room == 0) {
            abort_exchange(s, ERR_BACKEND_HTTP);
            return;
        }
        n = leg_recv(&s->b, in, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (s->hs_len == 0 && !x->resp_head) {
                backend_failed(s, session_backend_err(s, ERR_BACKEND_CLOSED));
                return;
            }
            abort_exchange(s, session_backend_err(s, ERR_BACKEND_CLOSED));
            return;
        }
        if (session_head_append(s, in, (size_t)n, lim.max_head) < 0) {
            abort_exchange(s, ERR_NOMEM);
            return;
        }
    }
}

/* ------------------------------------------------------------ streaming */

/* Read body bytes from src while its queue is below the high watermark. */
static void read_body(struct session *s, struct leg *src)
{
    struct http_x *x = X(s);
    bool *done = src->is_client ? &x->req_done : &x->resp_done;

    while (!*done && src->io.fd >= 0 && src->queued < s->lim->high_watermark) {
        struct buf *b = leg_rx_buf(src);
        size_t room;
        ssize_t n;
        int rc;
        if (!b) {
            abort_exchange(s, ERR_NOMEM);
            return;
        }
        room = BUF_DATA - b->wpos;
        n = leg_recv(src, b->data + b->wpos, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            src->readable = false; /* until the next EPOLLIN */
            return;
        }
        if (n <= 0) {
            if (!src->is_client && x->resp.kind == HTTP_BODY_CLOSE) {
                x->resp_done = true; /* the backend's close ends the body */
                x->backend_keep = false;
                break;
            }
            abort_exchange(s, src->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED);
            return;
        }
        b->wpos += (uint32_t)n;
        if (src->is_client)
            x->req_last_ms = s->w->loop.now;
        rc = frame_buf(s, src, b);
        if (rc < 0) {
            abort_exchange(s, !src->is_client               ? ERR_BACKEND_HTTP
                              : rc == ERR_HTTP_BODY_TOO_BIG ? rc
                                                            : ERR_HTTP_CHUNKED);
            return;
        }
    }
}

/* Write dst's pre bytes (a head wsgate built) and then src's framed bytes
 * to dst, together in one sendmsg when both wait. Returns false when dst
 * is gone (the exchange was ended). */
static bool write_to(struct session *s, struct leg *dst, struct leg *src)
{
    if (dst->io.fd < 0 || !dst->writable)
        return true;
    while (dst->pre || src->queued > 0) {
        struct iovec iov[IOV_MAX_HTTP];
        size_t total = 0, left, pre_left = dst->pre ? dst->pre_len - dst->pre_off : 0;
        int cnt = 0;
        ssize_t n;
        if (pre_left) {
            iov[cnt].iov_base = dst->pre + dst->pre_off;
            iov[cnt].iov_len = pre_left;
            total += pre_left;
            cnt++;
        }
        for (struct buf *b = src->head; b && cnt < IOV_MAX_HTTP; b = b->next) {
            if (b->ppos == b->rpos)
                continue;
            iov[cnt].iov_base = b->data + b->rpos;
            iov[cnt].iov_len = b->ppos - b->rpos;
            total += iov[cnt].iov_len;
            cnt++;
        }
        if (total == 0) {
            /* An empty pre block: nothing to send. */
            free(dst->pre);
            dst->pre = NULL;
            break;
        }
        n = leg_sendv(dst, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            dst->writable = false;
            break;
        }
        if (n < 0) {
            abort_exchange(s, dst->is_client ? ERR_CLIENT_CLOSED
                                             : session_backend_err(s, ERR_BACKEND_CLOSED));
            return false;
        }
        left = (size_t)n;
        if (pre_left) {
            size_t take = left < pre_left ? left : pre_left;
            dst->pre_off += (uint32_t)take;
            left -= take;
            if (dst->pre_off == dst->pre_len) {
                free(dst->pre);
                dst->pre = NULL;
            }
        }
        src->queued -= left;
        for (struct buf *b = src->head; b && left > 0; b = b->next) {
            size_t take = b->ppos - b->rpos;
            if (take > left)
                take = left;
            b->rpos += (uint32_t)take;
            left -= take;
        }
        leg_trim(src);
        if ((size_t)n < total) {
            dst->writable = false;
            break;
        }
    }
    return true;
}

static bool live(const struct session *s)
{
    return s->st == SESS_ST_HTTP && s->hx;
}

/* Move request body bytes from the client to the backend until one side
 * must wait for an event: the backend's socket is full (EPOLLOUT resumes),
 * or the client has nothing more (EPOLLIN resumes). Reading stops at the
 * high watermark and resumes at the low one. */
static void flush_backend(struct session *s)
{
    struct http_x *x = X(s);

    for (;;) {
        size_t before;
        if (!write_to(s, &s->b, &s->c) || !live(s))
            return;
        if (x->req_done || !s->c.readable || s->c.queued > s->lim->low_watermark)
            return;
        before = s->c.queued;
        read_body(s, &s->c);
        if (!live(s) || s->c.queued == before)
            return; /* the client had nothing more (or the exchange ended) */
    }
}

/* The same for the response, backend to client; then the exchange ends
 * once the whole response is written. */
static void flush_client(struct session *s)
{
    struct http_x *x = X(s);

    for (;;) {
        size_t before;
        if (!write_to(s, &s->c, &s->b) || !live(s))
            return;
        if (!x->resp_head || x->resp_done || !s->b.readable || s->b.queued > s->lim->low_watermark)
            break;
        before = s->b.queued;
        read_body(s, &s->b);
        if (!live(s))
            return;
        if (s->b.queued == before && !x->resp_done)
            break; /* the backend had nothing more */
    }
    if (x->resp_done && s->b.queued == 0 && !s->c.pre)
        finish_exchange(s);
}

/* ------------------------------------------------------------ the exchange */

/* The response is fully written: keep or close each side, log, and wait
 * for the client's next request. */
static void finish_exchange(struct session *s)
{
    struct http_x *x = X(s);
    bool leftover_b = (s->b.tail && s->b.tail->ppos < s->b.tail->wpos) || s->b.nfrag > 0;
    bool reuse = x->backend_keep && x->req_done && s->c.queued == 0 && !s->b.pre && !leftover_b &&
                 s->b.io.fd >= 0 && !leg_holds_input(&s->b) && !leg_owes(&s->b);
    char *pipe;
    size_t pipe_len;

    if (s->backend_held) {
        route_backend_release(s->backend);
        s->backend_held = false;
    }
    log_request(s);
    if (!x->client_keep || !x->req_done) {
        if (reuse &&
            http_pool_put(s->w, s->upstream_index, (size_t)(s->backend - s->upstream->backends),
                          s->b.io.fd, s->b.tls, s->upstream)) {
            s->b.io.fd = -1; /* the pool owns it now */
            s->b.tls = NULL;
        }
        leg_close(&s->b);
        drop_x(s);
        http_close_client(s);
        return;
    }
    if (reuse) {
        /* Kept on the session: the client's next request most often goes
         * to the same backend, and then costs no pool or epoll change. */
        leg_drop_queue(&s->b);
        s->b.readable = false;
        s->kept = s->backend;
        s->kept_upstream = s->upstream_index;
    } else {
        leg_close(&s->b);
    }
    pipe = x->pipe;
    pipe_len = x->pipe_len;
    x->pipe = NULL;
    drop_x(s);
    s->nrequests++;
    handshake_next_request(s, pipe, pipe_len);
    free(pipe);
}

void http_begin(struct session *s)
{
    const struct http_request *req = &s->req;
    struct http_x *x;
    unsigned from = 0;
    int rc, i;

    if (http_span_ieq(req->method, "CONNECT")) {
        http_respond_error(s, 405, ERR_HTTP_METHOD_CONNECT);
        return;
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host. */
    if ((req->minor_version >= 1 && http_header_count(req->headers, req->nheaders, "Host") != 1) ||
        http_header_count(req->headers, req->nheaders, "Host") > 1) {
        http_respond_error(s, 400,
                           http_header_count(req->headers, req->nheaders, "Host") ? ERR_HS_DUP_HOST
                                                                                  : ERR_HS_NO_HOST);
        return;
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        http_respond_error(s, 500, ERR_NOMEM);
        return;
    }
    s->hx = x;
    x->start_ms = s->w->loop.now;
    snprintf(x->method, sizeof(x->method), "%.*s", (int)req->method.n, req->method.p);
    rc = http_request_body(req, &x->req);
    if (rc < 0) {
        abort_exchange(s, rc);
        return;
    }
    if (s->lim->max_request_body && x->req.kind == HTTP_BODY_LENGTH &&
        x->req.length > s->lim->max_request_body) {
        abort_exchange(s, ERR_HTTP_BODY_TOO_BIG);
        return;
    }
    x->req_left = x->req.length;
    x->req_done = x->req.kind == HTTP_BODY_NONE;
    x->req_end_ms = x->req_last_ms = x->start_ms;
    x->head_method = http_span_ieq(req->method, "HEAD");
    x->client_10 = req->minor_version == 0;
    x->client_keep = x->client_10
                         ? http_has_token(req->headers, req->nheaders, "Connection", "keep-alive")
                         : !http_has_token(req->headers, req->nheaders, "Connection", "close");
    x->expect_100 = http_has_token(req->headers, req->nheaders, "Expect", "100-continue");
    x->idempotent = http_span_ieq(req->method, "GET") || x->head_method ||
                    http_span_ieq(req->method, "OPTIONS") || http_span_ieq(req->method, "PUT") ||
                    http_span_ieq(req->method, "DELETE") || http_span_ieq(req->method, "TRACE");
    i = http_header_next(req->headers, req->nheaders, "X-Request-Id", &from);
    handshake_request_id(s, i >= 0 ? req->headers[i].value : (struct http_span){NULL, 0});
    s->st = SESS_ST_HTTP;
    s->c.writable = true; /* (c.readable: as the head's last read left it) */
    /* Body bytes that came with the head, and whatever follows them. */
    rc = preload(s, &s->c, s->req_head + s->req_head_len, s->req_len - s->req_head_len);
    if (rc < 0) {
        abort_exchange(s, rc == ERR_NOMEM || rc == ERR_HTTP_BODY_TOO_BIG ? rc : ERR_HTTP_CHUNKED);
        return;
    }
    arm(s);
    connect_backend(s);
}

/* After a FIN or an error from the client: gone, unless requests it
 * pipelined before its FIN still wait to be read (they are answered). */
static bool client_gone(struct session *s)
{
    const struct leg *l = &s->c;
    char c;
    ssize_t n;

    if (s->hx->pipe_len || l->nfrag || (l->tail && l->tail->ppos < l->tail->wpos))
        return false; /* already read */
    n = recv(l->io.fd, &c, 1, MSG_PEEK);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

void http_event(struct session *s, struct leg *l, uint32_t events)
{
    struct http_x *x = X(s);

    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        l->rdhup = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        l->readable = true;
    if (l->is_client) {
        if (events & EPOLLOUT) {
            l->writable = true;
            flush_client(s);
        }
        if (!live(s))
            return;
        if (!x->req_done && l->readable) {
            read_body(s, l);
            if (live(s))
                flush_backend(s);
        } else if (x->req_done && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && client_gone(s)) {
            /* The client went away while its answer was on its way (as
             * nginx, a FIN counts: browsers never half-close, and a
             * long-poll whose client left should not hold the backend). */
            abort_exchange(s, ERR_CLIENT_CLOSED);
        }
        return;
    }
    /* The backend. A failed connect reports EPOLLERR before anything. */
    if (!x->resp_head && !x->reused && (events & EPOLLERR) && s->b.pre && s->b.pre_off == 0) {
        backend_failed(s, ERR_BACKEND_CONNECT);
        return;
    }
    if (events & EPOLLOUT) {
        l->writable = true;
        x->connected = true;
        flush_backend(s);
        if (!live(s))
            return;
    }
    if (!l->readable)
        return;
    if (!x->resp_head)
        read_response_head(s);
    else
        read_body(s, l);
    if (live(s))
        flush_client(s);
}

/* The next deadline of the exchange: the request body must not stall for
 * request_timeout (time spent waiting for the backend to take what came
 * does not count), the response head must come within response_timeout of
 * the request's end. After the head, the body takes as long as it takes
 * (a stream of events). */
static uint64_t response_due(const struct session *s, const struct http_x *x)
{
    return x->req_end_ms + s->lim->response_timeout_ms;
}

static uint64_t connect_due(const struct session *s, const struct http_x *x)
{
    const struct rc_upstream *up = s->upstream;

    return x->connect_ms +
           (up->connect_timeout_ms ? up->connect_timeout_ms : s->lim->connect_timeout_ms);
}

static void arm(struct session *s)
{
    struct http_x *x = X(s);
    uint64_t at = UINT64_MAX;

    if (!x->req_done && s->lim->request_timeout_ms)
        at = x->req_last_ms + s->lim->request_timeout_ms;
    if (!x->resp_head && x->req_done && response_due(s, x) < at)
        at = response_due(s, x);
    if (!x->connected && s->b.io.fd >= 0 && connect_due(s, x) < at)
        at = connect_due(s, x);
    if (at != UINT64_MAX)
        timer_arm(&s->w->loop.wheel, &s->timer, at);
}

void http_timer(struct session *s)
{
    struct http_x *x = X(s);
    uint64_t now = s->w->loop.now;

    if (!x)
        return;
    if (!x->connected && s->b.io.fd >= 0 && now >= connect_due(s, x)) {
        backend_failed(s, ERR_BACKEND_TIMEOUT);
        return;
    }
    if (!x->req_done && s->lim->request_timeout_ms &&
        now >= x->req_last_ms + s->lim->request_timeout_ms) {
        if (s->c.queued == 0) {
            abort_exchange(s, ERR_HTTP_TIMEOUT);
            return;
        }
        x->req_last_ms = now; /* the backend is the slow one */
    }
    if (!x->resp_head && x->req_done && now >= response_due(s, x)) {
        abort_exchange(s, ERR_RESPONSE_TIMEOUT);
        return;
    }
    arm(s);
}

void http_release_kept(struct session *s, bool reuse)
{
    const struct rc_upstream *up;

    if (!s->kept)
        return;
    up = &s->cfg->routing.upstreams[s->kept_upstream];
    if (reuse && s->b.io.fd >= 0 &&
        http_pool_put(s->w, s->kept_upstream, (size_t)(s->kept - up->backends), s->b.io.fd,
                      s->b.tls, up)) {
        s->b.io.fd = -1; /* the pool owns it now */
        s->b.tls = NULL;
    }
    s->kept = NULL;
    leg_close(&s->b);
}

void http_kept_event(struct session *s, uint32_t events)
{
    /* Data from an idle connection is a broken backend, a hang-up a lost
     * one: either way it is not reused. A writable edge means nothing. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        http_release_kept(s, false);
}

void http_shutdown(struct session *s)
{
    /* The exchange under way finishes; then the connection closes. */
    if (s->hx)
        s->hx->client_keep = false;
}

void http_free(struct session *s)
{
    drop_x(s);
}
