/* A connection pair (session) and the worker that owns it. Internal to the
 * proxy module:
 *   worker.c   threads, accept, graceful shutdown, memory trimming
 *   session.c  a session's life: start, event and timer dispatch, finish,
 *              the access log (the only code that frees a session)
 *   upgrade.c  the opening handshakes, up to the backend's 101
 *   relay.c    frames both ways, backpressure, keepalive, close handshake
 *   leg.c      one side's socket and queues, below both steps */
#ifndef WSG_PROXY_SESSION_H
#define WSG_PROXY_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/objpool.h"
#include "core/rand.h"
#include "route/route.h"
#include "http/handshake.h"
#include "http/parser.h"
#include "limit/limit.h"
#include "ws/frame.h"
#include "ws/utf8.h"

struct session;
struct proxy;
struct health;
struct http_x;
struct pool_slot;
struct tls_conn;

/* pool.c: idle backend connections per upstream and backend */
struct http_pool {
    struct pool_slot **slots; /* slots[upstream][backend] */
    size_t *nb;               /* backends per upstream */
    size_t n;                 /* upstreams */
};

/* One listener's socket in one worker. */
struct wlisten {
    struct io io; /* this worker's SO_REUSEPORT socket for it */
    struct worker *w;
    const struct conf_listener *conf;
};

struct worker {
    struct loop loop;
    struct buf_pool pool;
    struct objpool session_pool; /* struct session objects */
    struct objpool paths;        /* request-targets too long for a session's own array */
    struct timer trim_timer;     /* gives back memory left over from a burst (TRIM_MS) */
    struct rng rng;
    struct proxy *proxy;      /* shared, read-only but for the connection count */
    const struct config *cfg; /* borrowed snapshot */
    struct wlisten *listens;  /* one per configured listener */
    size_t nlistens;
    struct io wake_io;        /* eventfd: the main thread asks for shutdown */
    struct session *sessions; /* every live session, for shutdown */
    unsigned nsessions;
    bool draining;           /* shutdown started: no accepts */
    uint64_t drain_deadline; /* ms; sessions still open then are aborted */
    struct timer drain_timer;
    struct timer accept_retry;   /* accepting again after EMFILE/ENFILE/ENOBUFS */
    struct http_header *scratch; /* max_headers entries for parsing a head */
    struct route_worker router;  /* this worker's balancer state */
    struct http_pool http_pool;  /* kept-alive backend connections for plain HTTP */
    char *head_in;               /* max_header_size bytes: a head's bytes are read here first */
    pthread_t thread;
    unsigned id;
};

struct proxy {
    const struct config *cfg;
    struct worker *workers;
    unsigned nworkers;
    atomic_uint conns;     /* client connections open, all workers */
    unsigned max_conns;    /* effective max_connections (see proxy_max_connections) */
    char (*addrs)[64];     /* each listener's address actually bound */
    struct health *health; /* active health checks, or NULL */
};

enum sess_state {
    SESS_ST_PROXY,    /* reading a PROXY protocol header (listener proxy_protocol) */
    SESS_ST_REQUEST,  /* reading the client's request head */
    SESS_ST_CONNECT,  /* backend TCP connect in progress */
    SESS_ST_UPGRADE,  /* upgrade request sent, reading the backend's response head */
    SESS_ST_BODY,     /* reading a backend's non-101 response body to relay it */
    SESS_ST_RESPOND,  /* writing an HTTP response to the client, then linger and close */
    SESS_ST_LINGER,   /* response sent, write side shut, draining the client until EOF */
    SESS_ST_HTTP,     /* a plain HTTP request and its response (http.c) */
    SESS_ST_UPGRADED, /* both handshakes done: the dispatcher starts the relay */
    SESS_ST_RELAY,    /* WebSocket relay, including the closing handshake */
    SESS_ST_END,      /* a step ended the session: the dispatcher finishes it */
    SESS_ST_DONE,     /* both sockets closed; freed after this loop pass */
};

#define PATH_LOG_MAX 1024 /* bytes of the request-target kept for the log */

/* A keepalive ping (6 + 8 bytes) followed by a close (6 + 125 bytes). */
#define LEG_CTL_MAX 160

enum closed_by { CLOSED_BY_NONE, CLOSED_BY_CLIENT, CLOSED_BY_BACKEND, CLOSED_BY_PROXY };

/* One side of the pair. Bytes read from a leg are parsed into its rx queue
 * and written from there to the other leg, in place. */
struct leg {
    struct io io;         /* fd (-1 once closed) and event callback */
    struct session *s;    /* owner */
    struct tls_conn *tls; /* the TLS transport, or NULL: a plain socket */
    bool is_client;

    /* rx queue: bytes read from this leg; [rpos,ppos) of each buffer is
     * waiting to be written to the peer leg */
    struct buf *head, *tail;
    size_t queued;                     /* bytes parsed and not yet written to the peer */
    uint8_t frag[WS_MAX_HEADER + 125]; /* unparsed bytes kept while no buffer is held */
    uint8_t nfrag;

    /* frame parser for bytes read from this leg */
    struct ws_seq seq;
    struct ws_utf8 utf8;
    uint64_t remaining;  /* payload bytes left in the current data frame */
    uint64_t offset;     /* payload bytes of the current frame done (mask phase) */
    uint8_t in_mask[4];  /* this frame's key as received (client leg) */
    uint8_t out_mask[4]; /* key toward the backend for this frame (client leg) */
    bool in_frame;       /* inside a data frame's payload */
    bool text;           /* current message is text and is validated */
    bool fin;            /* current data frame ends its message */
    bool dropping;       /* the current message is dropped (limits: action drop) */
    uint16_t ctl_count;  /* control frames read in the current second */
    uint64_t ctl_window; /* ms the current second began */

    /* bytes wsgate itself sends to this leg, ahead of relayed frames:
     * the handshake request/response first, later one control frame */
    uint8_t *pre; /* malloc'd handshake bytes, or NULL */
    uint32_t pre_len, pre_off;
    uint8_t ctl[LEG_CTL_MAX]; /* generated ping and/or close frames */
    uint16_t ctl_len, ctl_off;
    uint16_t ping_end; /* ctl offset where the queued ping ends (0: none) */

    /* state flags */
    bool readable;    /* may have unread bytes (edge-triggered) */
    bool rdhup;       /* peer hung up: read until EOF even after a short read */
    bool throttled;   /* wsgate holds this leg back: its queue passed the high watermark */
    bool writable;    /* last write did not hit EAGAIN */
    bool forward;     /* frames read from this leg are relayed (else dropped) */
    bool close_rcvd;  /* a close frame was read from this leg */
    bool close_sent;  /* a close frame was queued toward this leg */
    bool ping_out;    /* wsgate's ping is outstanding */
    bool ping_queued; /* wsgate's ping waits in ctl */
    uint8_t ping_id[8];

    /* Timer clocks, ms. Keepalive, max_stall and close_timeout judge a leg
     * only by what it does, never by what wsgate holds back (see relay.c). */
    uint64_t last_rx;      /* last bytes read, or reading resumed after a hold */
    uint64_t ping_at;      /* current keepalive check began: ping queued, written or extended */
    uint64_t stall_at;     /* bytes wait for this leg, last seen progress; 0: not stalled */
    uint64_t held_at;      /* wsgate stopped reading this leg (while throttled) */
    uint64_t close_out_at; /* wsgate's close to this leg was completely written; 0: not yet */
    uint64_t probe_at;     /* when probe_acked was measured */

    /* Byte counts of the stream wsgate writes to this leg. */
    uint64_t tx_bytes;    /* written to the socket since the relay started */
    uint64_t probe_acked; /* of those, acknowledged by the peer at probe_at */
    uint64_t ping_mark;   /* tx_bytes where wsgate's outstanding ping ends */

    /* counters for the access log: data messages and payload bytes read */
    uint64_t msgs;
    uint64_t bytes;
};

struct session {
    struct leg c; /* client */
    struct leg b; /* backend */
    struct worker *w;
    const struct config *cfg;             /* the snapshot it started with (borrowed: outlives it) */
    const struct conf_listener *listener; /* the listener it came through */
    struct session *next, *prev;          /* worker's list */
    enum sess_state st;
    struct timer timer;
    struct defer defer;
    int err;             /* sticky reason (ERR_*), 0 while all is well */
    int status;          /* HTTP status sent to the client */
    uint64_t start_ms;   /* accepted at */
    uint64_t deadline;   /* handshake or connect deadline; while closing, see relay.c, ms */
    uint64_t last_data;  /* ms of the last data frame either way (idle_timeout) */
    unsigned close_code; /* first close seen, for the log */
    char close_reason[124];
    uint8_t close_reason_len;
    enum closed_by closed_by;
    bool counted;     /* holds a slot in proxy->conns */
    bool tls_done;    /* the client's TLS handshake completed (fields below set) */
    bool tls_resumed; /* ... by resuming a session */
    char tls_version[8];
    char tls_cipher[48];
    char tls_error[64];  /* why the client's TLS failed, for the log */
    char btls_error[96]; /* why TLS to the (last) backend failed, for the log */
    char *cert_subject;  /* the verified client certificate's subject (malloc'd), or NULL */
    char *fwd_extra;     /* header lines for every backend request (malloc'd), or NULL */
    bool closing;        /* a close handshake is under way */

    /* routing, decided at the handshake */
    const struct rc_route *route;       /* matched route, or NULL */
    const struct limits *lim;           /* the route's limits (relay) */
    const struct rc_upstream *upstream; /* the pool picked for it */
    size_t upstream_index;              /* its index in the config's upstreams */
    const struct rc_backend *backend;   /* the backend tried or connected */
    bool backend_held;                  /* counted in backend->state->active */
    bool sticky_hit;                    /* a valid sticky cookie chose the backend */
    uint8_t attempts;                   /* backends tried */
    uint32_t tried[12];                 /* their indexes (retries <= 10) */
    struct sockaddr_storage peer;
    struct sockaddr_storage conn_addr;   /* the peer, or the PROXY header's client */
    struct sockaddr_storage client_addr; /* the client: conn_addr, or per trusted_proxies */
    bool proxied;                        /* conn_addr came from a PROXY header */
    bool forwarded;                      /* client_addr is not the peer's */
    char client[64];                     /* "ip:port" of the peer, or the forwarded client's "ip" */
    char *path;          /* request-target for the log (cut at PATH_LOG_MAX), or NULL:
                            path_short, or an object from w->paths */
    char path_short[96]; /* most request-targets fit here */
    char request_id[72]; /* kept from the client or generated */

    /* handshake phase, freed when the relay starts (session_drop_handshake);
     * heads are malloc'd to the size that has arrived, grown as more does */
    char *req_head;               /* client request head (+ any early frames) */
    size_t req_cap;               /* bytes allocated for req_head */
    size_t req_len;               /* bytes in req_head */
    size_t req_head_len;          /* length of the request head itself */
    struct http_header *req_hdrs; /* exact-size copy of the parsed request headers */
    struct http_request req;
    struct hs_request_info info; /* what hs_check_request found (spans into req_head) */
    char *npath;                 /* normalized request path (malloc'd) */
    size_t npath_len;
    const char *query; /* after '?' in the request-target, or NULL */
    size_t query_len;
    uint64_t hs_deadline; /* ms: retries must fit before this */
    struct http_x *hx;    /* the plain HTTP exchange under way, or NULL */
    unsigned nrequests;   /* plain HTTP requests answered on this connection */
    /* Between plain requests: the last backend connection, idle and still
     * in s->b (its fd watched as before), for the next request to the same
     * backend; NULL when none is kept. */
    const struct rc_backend *kept;
    size_t kept_upstream; /* the upstream index it belongs to */
    char *hs;             /* the backend's response head (+ any early frames) */
    size_t hs_cap;        /* bytes allocated for hs */
    size_t hs_len;        /* bytes in hs */
    size_t hs_head_len;   /* length of the response head itself, once complete */
    size_t hs_scan;       /* parser scan hint for whichever head is being read */
    struct http_chunked chunked;
    char *body; /* backend's error body being collected */
    size_t body_len;
    uint64_t body_need; /* body bytes still expected (Content-Length) */
    bool body_chunked;  /* body uses chunked transfer coding */
    bool body_to_eof;   /* body ends when the backend closes */
    char accept[32];    /* Sec-WebSocket-Accept we expect from the backend */
    char *protocols;    /* the subprotocol offer forwarded instead of the client's (malloc'd) */
    bool protocols_set; /* ... when set by the route's subprotocols: rule */
    /* authentication (per request): what goes to the backend, for the log */
    char *auth_lines;              /* header lines (malloc'd), or NULL */
    const char *const *auth_strip; /* client fields not forwarded */
    size_t auth_nstrip;
    char *query_buf; /* the query forwarded without credentials (malloc'd) */
    char user[128];
    char auth_error[64];
    uint64_t expires_at; /* close_on_expiry: loop ms when the token expires, 0: never */
    const struct limit_conf *limit_held; /* a limits: slot to give back, or NULL */
    const struct limit_conf *mlim;       /* message limits in force in the relay, or NULL */
    struct msg_bucket mbucket;           /* ... their tokens for this connection */
    unsigned ctl_max;                    /* control frames per second from the client */
    uint64_t msgs_dropped;               /* messages dropped by the limits */
    int limit_close;                     /* a limit's close to start after the parse (ERR_*) */
};

/* session.c: the dispatcher */

/* Start a session for an accepted client socket fd (taken). */
void session_start(struct worker *w, const struct conf_listener *lc, int fd,
                   const struct sockaddr_storage *peer);
/* Graceful shutdown: close 1001 in the relay, 503 during the handshake. */
void session_shutdown(struct session *s);
/* Finish now (shutdown_timeout passed), with err as the reason if none yet. */
void session_abort(struct session *s, int err);
struct log_line;
/* "peer" (the proxy's address) when the client came from X-Forwarded-For. */
void session_log_peer(const struct session *s, struct log_line *l);
/* The TLS fields of an access-log line (none for a plain connection). */
void session_log_tls(const struct session *s, struct log_line *l);
/* Open the client's transport: TLS on a TLS listener. Returns 0 or
 * ERR_NOMEM. */
int session_client_transport(struct session *s);
/* Open the transport of a new backend connection (s->b.io.fd): TLS for a
 * wss:// backend. Returns 0 or ERR_NOMEM. */
int session_backend_transport(struct session *s);
/* A backend read or write failed: ERR_BACKEND_TLS (its reason kept for
 * the log) when TLS failed, else dflt. */
int session_backend_err(struct session *s, int dflt);
/* The client's TLS handshake completed: note version and cipher. */
void session_tls_established(struct session *s);
/* Give back the client's share of the worker's connection count (once). */
void session_release_slot(struct session *s);

/* A step (handshake or relay) ends the session: the dispatcher finishes
 * it when the step returns. Steps return promptly once they call this. */
static inline void session_end(struct session *s)
{
    s->st = SESS_ST_END;
}

/* worker.c: a session was freed (the worker may stop draining, trim). */
void worker_session_gone(struct worker *w);

/* upgrade.c: the opening handshakes. Each sets SESS_ST_END to end the
 * session and SESS_ST_UPGRADED when the relay can start. */
/* Begin reading the request; overloaded: answer 503 instead. */
void handshake_start(struct session *s, bool overloaded);
void handshake_event(struct session *s, struct leg *l, uint32_t events);
void handshake_timer(struct session *s);
/* Shutting down: answer 503 to a client still in its handshake. */
void handshake_shutdown(struct session *s);
/* Free what only the handshake needed (heads, headers, body). */
void handshake_free(struct session *s);

/* Shared with http.c (plain requests on the same routes). */
/* Pick a backend for this session's upstream (sticky cookie, balancer),
 * count it as tried and held; rq receives the request's routing view.
 * Returns its index, or -1 when none can take a connection. */
int handshake_choose(struct session *s, struct route_req *rq);
/* Keep the client's X-Request-Id (when usable) or make one. */
void handshake_request_id(struct session *s, struct http_span given);
/* Append bytes to the backend response head being collected. */
int session_head_append(struct session *s, const char *in, size_t n, size_t max);
/* Read the next request of a kept-alive client connection; `more`: bytes
 * of it that were set aside (borrowed for the call). */
void handshake_next_request(struct session *s, const char *more, size_t more_len);
/* Answer with an error status, then close the client connection. */
void http_respond_error(struct session *s, int status, int err);
/* The last response is written: half-close and drain the client. */
void http_close_client(struct session *s);

/* http.c: plain HTTP requests */
void http_begin(struct session *s);
void http_event(struct session *s, struct leg *l, uint32_t events);
void http_timer(struct session *s);
/* wsgate is stopping: finish the exchange, then close the connection. */
void http_shutdown(struct session *s);
/* Give up the backend connection kept between requests: into the pool
 * (reuse) or closed. */
void http_release_kept(struct session *s, bool reuse);
/* An event on the kept connection between requests: it is closed. */
void http_kept_event(struct session *s, uint32_t events);
void http_free(struct session *s);

/* pool.c */
int http_pool_init(struct http_pool *p, const struct route_conf *rc);
void http_pool_free(struct http_pool *p);
/* An idle connection to backend bi of upstream ui (its fd, still watched:
 * hand it over with loop_mod; *tls its TLS transport or NULL), or -1. */
int http_pool_take(struct worker *w, size_t ui, size_t bi, struct tls_conn **tls);
/* Keep fd (and its TLS transport, may be NULL) for reuse; false (neither
 * taken) when the pool is full. */
bool http_pool_put(struct worker *w, size_t ui, size_t bi, int fd, struct tls_conn *tls,
                   const struct rc_upstream *up);

/* relay.c: frames both ways once the 101 is sent. Each may set
 * SESS_ST_END. client_extra/backend_extra: bytes that came after each
 * head (borrowed for the call). */
void relay_start(struct session *s, const char *client_extra, size_t cn, const char *backend_extra,
                 size_t bn);
void relay_event(struct leg *l, uint32_t events);
void relay_timer(struct session *s);
void relay_shutdown(struct session *s);

/* leg.c */
void leg_init(struct session *s, struct leg *l, bool is_client, io_cb cb);
/* Queue bytes wsgate writes to l before anything else (taken: malloc'd). */
void leg_set_pre(struct leg *l, char *bytes, size_t len);
/* Append a copy of bytes to l's pre bytes. Returns 0 or ERR_NOMEM. */
int leg_append_pre(struct leg *l, const char *bytes, size_t len);
/* Write l->pre from pre_off. Returns 1 when all is written (pre freed), 0 on
 * EAGAIN, ERR_SYS when the peer is gone. */
int leg_write_pre(struct leg *l);
/* Close a leg's socket (releasing the client's share of conns) but keep its
 * rx queue: what it sent before going away is still delivered. */
void leg_shut(struct leg *l);
/* Forget everything queued from l (its destination is gone). */
void leg_drop_queue(struct leg *l);
/* Close a leg for good: leg_shut, leg_drop_queue, and its handshake bytes. */
void leg_close(struct leg *l);
/* A buffer with room at the tail of l's rx queue (a new one keeps the
 * unparsed tail of the last one contiguous), or NULL when out of memory. */
struct buf *leg_rx_buf(struct leg *l);
/* Give back fully written buffers of l's rx queue; an idle leg keeps none
 * (an unparsed tail of at most 139 bytes is parked in l->frag). */
void leg_trim(struct leg *l);

#endif
