/* The one owner of a session's life: it starts a session, dispatches its
 * socket events and its timer to the handshake (upgrade.c) or the relay
 * (relay.c), moves it from one to the other, and finishes it: sockets
 * closed, one access-log line, memory freed after the loop pass. The steps
 * never free a session; one that wants it ended sets SESS_ST_END
 * (session_end) and returns, and the dispatcher finishes it. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/sock.h"
#include "proxy/session.h"
#include "limit/limit.h"
#include "proxy/transport.h"

static const char *const closed_by_names[] = {"none", "client", "backend", "proxy"};

void session_log_peer(const struct session *s, struct log_line *l)
{
    char peer[64];

    if (!s->forwarded)
        return;
    sock_addr_text((const struct sockaddr *)&s->peer, peer, sizeof(peer));
    log_str(l, "peer", peer);
}

void session_log_tls(const struct session *s, struct log_line *l)
{
    if (s->tls_done) {
        log_str(l, "tls_version", s->tls_version);
        log_str(l, "tls_cipher", s->tls_cipher);
        if (s->tls_resumed)
            log_bool(l, "tls_resumed", true);
    }
    if (s->tls_error[0])
        log_str(l, "tls_error", s->tls_error);
    if (s->cert_subject)
        log_str(l, "client_cert", s->cert_subject);
    if (s->btls_error[0])
        log_str(l, "backend_tls_error", s->btls_error);
    if (s->user[0])
        log_str(l, "user", s->user);
    if (s->auth_error[0])
        log_str(l, "auth_error", s->auth_error);
}

int session_client_transport(struct session *s)
{
    const struct conf_listener *lc = s->listener;

    if (lc->has_tls && !(s->c.tls = tls_accept_new(lc->tls.srv, s->c.io.fd)))
        return ERR_NOMEM;
    return 0;
}

int session_backend_transport(struct session *s)
{
    const struct rc_backend *b = s->backend;

    if (!b->tls)
        return 0;
    s->b.tls = tls_connect_new(s->upstream->tls.cl, s->b.io.fd, b->host, b->host_is_ip);
    return s->b.tls ? 0 : ERR_NOMEM;
}

int session_backend_err(struct session *s, int dflt)
{
    if (s->b.tls && tls_failure(s->b.tls)[0]) {
        snprintf(s->btls_error, sizeof(s->btls_error), "%s", tls_failure(s->b.tls));
        return ERR_BACKEND_TLS;
    }
    return dflt;
}

static void log_access(struct session *s)
{
    struct log_line l;
    uint64_t now = s->w->loop.now;
    /* A connection closed before sending a byte (a port probe, a health
     * check) is noise at info level, as HAProxy's dontlognull has it. */
    enum log_sev sev = s->status == 0 && s->req_len == 0 && !s->tls_error[0] &&
                               s->err != ERR_PROXY && s->err != ERR_PROXY_UNTRUSTED
                           ? LOG_DEBUG
                           : LOG_INFO;

    /* A connection that carried plain requests has a line for each; it
     * needs one of its own only if it also upgraded. */
    if (s->nrequests > 0 && s->status != 101)
        sev = LOG_DEBUG;

    if (!log_begin(&l, sev, "access"))
        return;
    log_str(&l, "client", s->client);
    session_log_peer(s, &l);
    log_str(&l, "request_id", s->request_id);
    log_str(&l, "path", s->path ? s->path : "");
    log_str(&l, "route", s->route ? s->route->name : "");
    log_str(&l, "upstream", s->upstream ? s->upstream->name : "");
    log_str(&l, "backend", s->backend ? s->backend->addr.text : "");
    log_uint(&l, "attempts", s->attempts);
    log_int(&l, "status", s->status);
    log_ms(&l, "duration_ms", (now - s->start_ms) * 1000);
    log_uint(&l, "msgs_in", s->c.msgs);
    log_uint(&l, "bytes_in", s->c.bytes);
    log_uint(&l, "msgs_out", s->b.msgs);
    log_uint(&l, "bytes_out", s->b.bytes);
    if (s->msgs_dropped)
        log_uint(&l, "msgs_dropped", s->msgs_dropped);
    if (s->close_code)
        log_uint(&l, "close_code", s->close_code);
    if (s->close_code)
        log_strn(&l, "close_reason", s->close_reason, s->close_reason_len);
    log_str(&l, "closed_by", closed_by_names[s->closed_by]);
    log_str(&l, "error", err_name(s->err));
    session_log_tls(s, &l);
    log_end(&l);
}

static void free_session(struct defer *d)
{
    struct session *s = (struct session *)((char *)d - offsetof(struct session, defer));
    struct worker *w = s->w;

    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
    if (s->path && s->path != s->path_short)
        objpool_put(&w->paths, s->path);
    objpool_put(&w->session_pool, s);
    worker_session_gone(w);
}

/* Close both sockets, log, and free the session after this loop pass. */
static void finish(struct session *s)
{
    if (s->st == SESS_ST_DONE)
        return;
    s->st = SESS_ST_DONE;
    leg_close(&s->c);
    leg_close(&s->b);
    if (s->backend_held) {
        route_backend_release(s->backend);
        s->backend_held = false;
    }
    if (s->limit_held) {
        limit_release(s->limit_held, (const struct sockaddr *)&s->client_addr);
        s->limit_held = NULL;
    }
    timer_disarm(&s->w->loop.wheel, &s->timer);
    log_access(s);
    handshake_free(s);
    free(s->cert_subject);
    free(s->fwd_extra);
    s->cert_subject = s->fwd_extra = NULL;
    loop_defer(&s->w->loop, &s->defer, free_session);
}

/* After a step: finish a session it ended, or start the relay once both
 * handshakes are done. */
static void after_step(struct session *s)
{
    if (s->st == SESS_ST_UPGRADED) {
        relay_start(s, s->req_head + s->req_head_len, s->req_len - s->req_head_len,
                    s->hs + s->hs_head_len, s->hs_len - s->hs_head_len);
        if (s->st == SESS_ST_RELAY)
            handshake_free(s);
    }
    if (s->st == SESS_ST_END)
        finish(s);
}

/* Before a TLS leg's event reaches a step: write what the transport owes
 * when the socket can take it, and while the TLS handshake is under way
 * let any readiness count as both (the library may need to read before it
 * can write, or the reverse). Returns false when the session ended. */
static bool tls_event(struct session *s, struct leg *l, uint32_t *events)
{
    if ((*events & EPOLLOUT) && tls_owes(l->tls) && !leg_flush_owed(l)) {
        if (!s->err)
            s->err = l->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED;
        finish(s);
        return false;
    }
    /* (Not before a backend's TCP connect completes: its EPOLLOUT says so.) */
    if (!tls_established(l->tls) && !(l == &s->b && s->st == SESS_ST_CONNECT))
        *events |= EPOLLIN | EPOLLOUT;
    else if (!s->tls_done && l == &s->c)
        session_tls_established(s);
    return true;
}

static void on_event(struct io *io, uint32_t events)
{
    struct leg *l = (struct leg *)((char *)io - offsetof(struct leg, io));
    struct session *s = l->s;

    if (s->st >= SESS_ST_END || io->fd < 0)
        return;
    if (__builtin_expect(l->tls != NULL, 0) && !tls_event(s, l, &events))
        return;
    if (s->st == SESS_ST_RELAY)
        relay_event(l, events);
    else if (s->st == SESS_ST_HTTP)
        http_event(s, l, events);
    else if (s->kept && l == &s->b)
        http_kept_event(s, events);
    else
        handshake_event(s, l, events);
    after_step(s);
}

static void on_timer(struct timer *t)
{
    struct session *s = (struct session *)((char *)t - offsetof(struct session, timer));

    if (s->st >= SESS_ST_END)
        return;
    if (s->st == SESS_ST_RELAY)
        relay_timer(s);
    else if (s->st == SESS_ST_HTTP)
        http_timer(s);
    else
        handshake_timer(s);
    after_step(s);
}

void session_release_slot(struct session *s)
{
    if (s->counted) {
        atomic_fetch_sub_explicit(&s->w->proxy->conns, 1, memory_order_relaxed);
        s->counted = false;
    }
}

void session_tls_established(struct session *s)
{
    struct tls_conn *t = s->c.tls;

    s->tls_done = true;
    snprintf(s->tls_version, sizeof(s->tls_version), "%s", tls_version(t));
    snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", tls_cipher(t));
    s->tls_resumed = tls_resumed(t);
    if (s->listener->tls.verify_client != TLS_VERIFY_NONE) {
        /* The subject of a verified certificate goes to the backend. */
        static const char field[] = "X-Client-Cert-Subject: ";
        char subj[1024];
        int n = tls_peer_subject(t, subj, sizeof(subj));
        if (n > 0 && (s->cert_subject = strdup(subj)) &&
            (s->fwd_extra = malloc(sizeof(field) + (size_t)n + 2)))
            snprintf(s->fwd_extra, sizeof(field) + (size_t)n + 2, "%s%s\r\n", field, subj);
    }
}

void session_start(struct worker *w, const struct conf_listener *lc, int fd,
                   const struct sockaddr_storage *peer)
{
    struct session *s = objpool_get(&w->session_pool);
    unsigned n;

    if (!s) {
        close(fd);
        return;
    }
    s->w = w;
    s->cfg = w->cfg;
    s->lim = &w->cfg->lim;
    leg_init(s, &s->c, true, on_event);
    leg_init(s, &s->b, false, on_event);
    s->c.io.fd = fd;
    s->listener = lc;
    s->peer = *peer;
    s->conn_addr = *peer;
    s->client_addr = *peer;
    s->start_ms = w->loop.now;
    s->st = SESS_ST_REQUEST;
    timer_init(&s->timer, on_timer);
    sock_addr_text((const struct sockaddr *)peer, s->client, sizeof(s->client));
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;

    n = atomic_fetch_add_explicit(&w->proxy->conns, 1, memory_order_relaxed) + 1;
    s->counted = true;
    if (lc->proxy_protocol) {
        /* The PROXY header comes first; TLS (if any) after it. */
        if (!cidr_list_match(&w->cfg->trusted_proxies, (const struct sockaddr *)peer)) {
            s->err = ERR_PROXY_UNTRUSTED;
            finish(s);
            return;
        }
        s->st = SESS_ST_PROXY;
    } else if (session_client_transport(s) < 0) {
        s->err = ERR_NOMEM;
        finish(s);
        return;
    }
    if (loop_add(&w->loop, &s->c.io, EPOLLIN | EPOLLOUT | EPOLLRDHUP) < 0) {
        s->err = ERR_SYS;
        finish(s);
        return;
    }
    handshake_start(s, n > w->proxy->max_conns);
    after_step(s);
}

void session_shutdown(struct session *s)
{
    if (s->st >= SESS_ST_END)
        return;
    if (s->st == SESS_ST_RELAY)
        relay_shutdown(s);
    else if (s->st == SESS_ST_HTTP)
        http_shutdown(s);
    else
        handshake_shutdown(s);
    after_step(s);
}

void session_abort(struct session *s, int err)
{
    if (s->st == SESS_ST_DONE)
        return;
    if (!s->err)
        s->err = err;
    finish(s);
}
