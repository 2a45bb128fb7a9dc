/* wsbench: a WebSocket load generator.
 *
 * Modes (see usage()):
 *   closed  each connection keeps K messages in flight (the default);
 *   open    --rate R messages/s on a fixed schedule whatever the replies,
 *           latency taken from the scheduled send time (no coordinated
 *           omission);
 *   idle    open N connections; once all are open, one message on every
 *           one at once (a burst), then hold them;
 *   churn   N workers loop connect, upgrade, one echo, close handshake;
 *   fanout  open N connections, send nothing, take what the server pushes
 *           (wsecho --push-interval): delivery latency from the send time
 *           the server wrote in each message.
 *
 * wss:// URLs speak TLS (OpenSSL; the server's certificate is not checked:
 * this is a load tool, and the benchmark's certificates are made on the
 * spot). Each connection is a full TLS handshake; churn measures them.
 *
 * Every echo is verified: opcode, length, per-connection sequence and, with
 * --check, every byte. Any error prints a message on stderr and exits 1.
 *
 * Message layout: the first H bytes of each payload carry the sequence number
 * and the send time, in a 64-symbol ASCII alphabet so text messages stay
 * valid UTF-8: with S >= 16, H = 16 (6 symbols = 36 bits of sequence, 10
 * symbols = 60 bits of nanoseconds since the run's origin); with S < 16,
 * H = min(S, 4) symbols of sequence only. The rest is a per-run template
 * (random bytes, or random letters and digits for text). Send times are also
 * kept per connection in a ring indexed by sequence (replies come back in
 * order on a connection), which is what latency is computed from; --check
 * compares the embedded time with it. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "benchutil.h"
#include "core/err.h"
#include "ws/frame.h"

#define IN_CAP          (64 * 1024)  /* input buffer bytes per busy connection */
#define OUT_FILL        (256 * 1024) /* frames are serialised until this many bytes are queued */
#define OUT_CAP         (OUT_FILL + 4096) /* output buffer bytes */
#define POOL_SPARE      512               /* spare buffers kept per pool */
#define MAX_EVENTS      512               /* epoll events per wait */
#define MAX_HANDSHAKES  256               /* connects + upgrades in progress at once, all threads */
#define NS              1000000000ULL
#define CONNECT_TIMEOUT (10 * NS)          /* TCP connect + upgrade */
#define CLOSE_TIMEOUT   (10 * NS)          /* close frame sent -> close frame back */
#define EOF_WAIT        (2 * NS)           /* close frame back -> server's FIN */
#define SWEEP_NS        (100 * 1000000ULL) /* deadline sweep interval */
#define MS_NS           1000000ULL         /* one millisecond in ns */
#define RING_MAX        (1u << 22)         /* messages in flight on one connection */
#define SERVICE_ROUNDS  4                  /* fill+send rounds per connection per pass */
#define HIST_SUB_BITS   8
#define HIST_HALF       (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS    (64 * HIST_HALF + 2 * HIST_HALF)
#define HEAD_FULL       16 /* header bytes in payloads of 16 bytes or more */
#define SEQ_SYMS_FULL   6  /* sequence symbols in a full header */
#define TS_SYMS         10 /* timestamp symbols in a full header */
#define SEQ_SYMS_SHORT  4  /* sequence symbols in a short header */
#define MAX_SIZE        (1ULL << 30)
#define WHOLE_MAX       2048 /* payloads up to this size are serialised a frame at a time */
#define PUSH_HEAD       32   /* fanout: 16 hex digits of sequence, 16 of send time (wsecho) */

enum mode { MODE_CLOSED, MODE_OPEN, MODE_IDLE, MODE_CHURN, MODE_FANOUT };

static const char *const mode_names[] = {"closed", "open", "idle", "churn", "fanout"};

enum cstate {
    CS_NEW,        /* not started (or between churn cycles) */
    CS_CONNECTING, /* TCP connect in progress */
    CS_HANDSHAKE,  /* upgrade request sent, waiting for the 101 */
    CS_OPEN,       /* exchanging messages */
    CS_CLOSING,    /* close frame queued or sent, waiting for the server's */
    CS_WAIT_EOF,   /* close handshake done, waiting for the server's FIN */
    CS_DONE,       /* finished; fd closed */
};

static const char *const state_names[] = {"new",     "connecting", "handshake", "open",
                                          "closing", "closing",    "done"};

struct config {
    const char *url;              /* as given */
    bool tls;                     /* wss:// */
    SSL_CTX *tls_ctx;             /* client context when tls */
    char sni[300];                /* host name for SNI (empty for an address) */
    char host[300];               /* Host header value */
    char path[2048];              /* request target */
    struct sockaddr_storage addr; /* server address */
    socklen_t addrlen;            /* bytes of addr */
    uint32_t *sources;            /* IPv4 source addresses, host order, or NULL */
    size_t nsources;              /* entries in sources */
    unsigned long conns;          /* connections (churn: parallel workers) */
    unsigned long inflight;       /* closed loop: messages in flight per connection */
    unsigned long threads;        /* worker threads */
    uint64_t size;                /* payload bytes per message */
    double duration;              /* measured seconds */
    double warmup;                /* seconds before measuring */
    double rate;                  /* open loop: messages/s, all connections */
    double hold;                  /* idle: seconds to hold the connections */
    enum mode mode;
    bool binary; /* binary messages (else text) */
    bool check;  /* compare every echoed byte */
    bool json;   /* one JSON object on stdout */
    bool quiet;  /* no progress lines on stderr */
};

/* State shared by the worker threads. */
struct run {
    const struct config *cfg;
    uint8_t *tmpl;                /* size bytes: the payload after the header */
    unsigned hlen;                /* header bytes at the start of each payload */
    unsigned seq_syms;            /* sequence symbols in the header */
    uint64_t seq_mod;             /* sequence numbers are compared modulo this */
    uint64_t origin;              /* monotonic ns that embedded timestamps count from */
    uint8_t fhead[WS_MAX_HEADER]; /* frame header of every message, without the masking key */
    unsigned fhlen;               /* bytes of fhead */
    size_t flen;                  /* bytes of a whole message frame: fhead, key, payload */
    bool whole;                   /* message frames are serialised whole (size <= WHOLE_MAX) */
    uint8_t ehead[WS_MAX_HEADER]; /* frame header every echo must start with */
    unsigned ehlen;               /* bytes of ehead */
    size_t eflen;                 /* bytes of a whole echo frame */
    _Atomic uint64_t t_start;     /* monotonic ns when all connections were open, 0 before */
    _Atomic uint64_t t_stop;      /* monotonic ns when the measured window ended, 0 before */
    _Atomic uint64_t t_ready;     /* idle: monotonic ns when all echoes came back */
    atomic_ulong opened;          /* connections upgraded at least once */
    atomic_ulong ready;           /* idle: connections whose first echo came back */
};

struct worker;

struct conn {
    struct worker *w;
    unsigned long id;      /* 0-based, over all threads */
    int fd;                /* -1 when none */
    SSL *ssl;              /* wss:// only */
    bool write_wants_read; /* TLS: the last write waits for the peer's bytes */
    enum cstate state;
    bool can_read;                  /* edge seen, EAGAIN not yet */
    bool rdhup;                     /* FIN or error reported: read to the end */
    bool can_write;                 /* edge seen, EAGAIN or short write not yet */
    bool queued;                    /* on the worker's ready list */
    bool busy;                      /* inside service() */
    bool was_open;                  /* upgraded at least once */
    bool echoed;                    /* idle: first echo seen */
    bool out_open;                  /* a data frame is partly serialised */
    bool pong_pending;              /* a pong is owed at the next frame boundary */
    bool close_pending;             /* a close frame goes out after the queued messages */
    bool close_sent;                /* our close frame is in the output */
    bool in_frame;                  /* inside a data frame's payload */
    uint8_t pong_len;               /* bytes in pong */
    uint8_t pong[WS_MAX_CONTROL];   /* payload of the ping to answer */
    uint8_t key[4];                 /* masking key of the frame being serialised */
    uint8_t head[HEAD_FULL];        /* header of the message being serialised */
    uint8_t rhead[PUSH_HEAD];       /* header of the echo (fanout: push) being received */
    char accept[BU_ACCEPT_LEN + 1]; /* expected Sec-WebSocket-Accept */
    struct bu_buf in;               /* bytes read, not yet parsed */
    struct bu_buf out;              /* bytes to send */
    uint64_t deadline;              /* monotonic ns of the current timeout, 0 for none */
    uint64_t cycle_start;           /* churn: monotonic ns of the connect */
    uint64_t send_seq;              /* messages scheduled */
    uint64_t q_seq;                 /* next message to serialise */
    uint64_t cur_off;               /* payload bytes of message q_seq serialised */
    uint64_t recv_seq;              /* next echo expected */
    uint64_t f_left;                /* payload bytes left in the data frame being received */
    uint64_t msg_off;               /* payload bytes of the echo received so far */
    uint64_t *ring;                 /* send times (monotonic ns) by sequence & ring_mask */
    uint64_t ring_mask;             /* ring size - 1 */
    struct ws_seq wseq;             /* fragmentation state of the server's messages */
    struct conn *next;              /* ready list or start queue */
};

struct worker {
    struct run *run;
    const struct config *cfg;
    unsigned id;
    int epfd;
    struct conn *conns;      /* this worker's connections */
    size_t nconns;           /* entries in conns */
    size_t live;             /* connections not CS_DONE */
    struct conn *ready;      /* connections to service without a new event */
    struct conn *start_head; /* connections waiting to connect */
    struct conn *start_tail;
    unsigned handshaking; /* connects + upgrades in progress */
    unsigned max_handshaking;
    struct bu_rand rng;          /* masking keys and key nonces */
    struct bu_pool inpool;       /* IN_CAP-byte buffers */
    struct bu_pool outpool;      /* OUT_CAP-byte buffers */
    struct ws_rules rules;       /* server-frame rules */
    uint64_t now;                /* monotonic ns, refreshed after each wait and read */
    uint64_t last_sweep;         /* monotonic ns of the last deadline sweep */
    uint64_t win_start;          /* monotonic ns: measured window start, 0 until known */
    uint64_t win_end;            /* monotonic ns: measured window end, 0 until known */
    uint64_t tx_ts;              /* monotonic ns whose symbols tx_syms holds, 0 for none */
    uint8_t tx_syms[TS_SYMS];    /* tx_ts - origin in symbols: a batch shares one send time */
    uint64_t rx_ts;              /* --check: monotonic ns whose symbols rx_syms holds, 0 for none */
    uint8_t rx_syms[TS_SYMS];    /* --check: rx_ts - origin in symbols */
    uint64_t sched_n;            /* open loop: messages scheduled so far */
    double interval;             /* open loop: ns between two of this worker's messages */
    size_t rr;                   /* open loop: next connection to send on */
    size_t src_rr;               /* next source address */
    bool stopping;               /* no new messages or cycles */
    bool burst_sent;             /* idle: the one message per connection is scheduled */
    uint64_t messages;           /* echoes (churn: cycles) in the measured window */
    uint64_t sent;               /* messages serialised, whole run */
    uint64_t received;           /* echoes verified, whole run */
    uint64_t lat_max;            /* ns, in the measured window */
    uint64_t hist[HIST_BUCKETS]; /* latency counts by bucket */
    pthread_t thread;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const char sym[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static int8_t sym_val[256];
static uint8_t sym_pair[4096][2]; /* the two symbols of each 12-bit value */

static void sym_init(void)
{
    memset(sym_val, -1, sizeof(sym_val));
    for (int i = 0; i < 64; i++)
        sym_val[(uint8_t)sym[i]] = (int8_t)i;
    for (int i = 0; i < 4096; i++) {
        sym_pair[i][0] = (uint8_t)sym[i >> 6];
        sym_pair[i][1] = (uint8_t)sym[i & 63];
    }
}

/* The low 6n bits of v as n symbols, most significant first; two symbols
 * per table lookup, since every message carries up to 16 of them. */
static void enc(uint8_t *p, unsigned n, uint64_t v)
{
    while (n >= 2) {
        n -= 2;
        memcpy(p + n, sym_pair[v & 4095], 2);
        v >>= 12;
    }
    if (n)
        p[0] = (uint8_t)sym[v & 63];
}

/* enc(p, SEQ_SYMS_FULL, v) unrolled: the sequence field of every message
 * is written once and checked once. */
static inline void enc_seq(uint8_t *p, uint64_t v)
{
    memcpy(p, sym_pair[v >> 24 & 4095], 2);
    memcpy(p + 2, sym_pair[v >> 12 & 4095], 2);
    memcpy(p + 4, sym_pair[v & 4095], 2);
}

static int dec(const uint8_t *p, unsigned n, uint64_t *v)
{
    uint64_t r = 0;

    for (unsigned i = 0; i < n; i++) {
        int8_t d = sym_val[p[i]];
        if (d < 0)
            return -1;
        r = r << 6 | (uint64_t)d;
    }
    *v = r;
    return 0;
}

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* Print "wsbench: error: PREFIXMESSAGE" as one write and exit 1. The lock is
 * never released: a second failing thread waits while the first exits. */
__attribute__((format(printf, 2, 0))) static _Noreturn void vdie(const char *prefix,
                                                                 const char *fmt, va_list ap)
{
    char msg[1024];

    pthread_mutex_lock(&fail_lock);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "wsbench: error: %s%s\n", prefix, msg);
    exit(1);
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vdie("", fmt, ap);
}

/* A failure on one connection: strict mode, the whole run fails. */
__attribute__((format(printf, 2, 3))) static _Noreturn void fail(const struct conn *c,
                                                                 const char *fmt, ...)
{
    char prefix[160];
    va_list ap;

    if (c->w->cfg->mode == MODE_FANOUT)
        snprintf(prefix, sizeof(prefix), "connection %lu (%s, %llu received): ", c->id,
                 state_names[c->state], (unsigned long long)c->recv_seq);
    else
        snprintf(prefix, sizeof(prefix), "connection %lu (%s, %llu sent, %llu echoed): ", c->id,
                 state_names[c->state], (unsigned long long)c->q_seq,
                 (unsigned long long)c->recv_seq);
    va_start(ap, fmt);
    vdie(prefix, fmt, ap);
}

static void info(const struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void info(const struct config *cfg, const char *fmt, ...)
{
    va_list ap;

    if (cfg->quiet)
        return;
    fputs("wsbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- latency histogram: log-linear, 2^HIST_SUB_BITS sub-buckets per power
 * of two, so a bucket is at most 1/128 (0.8%) of its values wide. */

static unsigned hist_index(uint64_t v)
{
    unsigned msb, e;

    if (v < 2 * HIST_HALF)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    e = msb - (HIST_SUB_BITS - 1);
    return e * HIST_HALF + (unsigned)(v >> e);
}

/* Middle of bucket i's value range. */
static uint64_t hist_value(unsigned i)
{
    unsigned e;
    uint64_t m;

    if (i < 2 * HIST_HALF)
        return i;
    e = i / HIST_HALF - 1;
    m = i - (uint64_t)e * HIST_HALF;
    return (m << e) + ((1ULL << e) - 1) / 2;
}

static inline void hist_add(struct worker *w, uint64_t v)
{
    w->hist[hist_index(v)]++;
    if (v > w->lat_max)
        w->lat_max = v;
}

static uint64_t hist_pct(const uint64_t *hist, uint64_t total, double p, uint64_t max)
{
    uint64_t rank = (uint64_t)ceil(p * (double)total), acc = 0;

    if (total == 0)
        return 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        acc += hist[i];
        if (acc >= rank) {
            uint64_t v = hist_value(i);
            return v > max ? max : v;
        }
    }
    return max;
}

/* ---- connections */

static void enqueue(struct worker *w, struct conn *c)
{
    if (c->queued || c->busy || c->state == CS_DONE || c->state == CS_NEW)
        return;
    c->queued = true;
    c->next = w->ready;
    w->ready = c;
}

static void push_start(struct worker *w, struct conn *c)
{
    c->next = NULL;
    if (w->start_tail)
        w->start_tail->next = c;
    else
        w->start_head = c;
    w->start_tail = c;
}

static void ring_init(struct conn *c, uint64_t want)
{
    uint64_t n = 2;

    while (n < want)
        n <<= 1;
    c->ring = calloc(n, sizeof(*c->ring));
    if (!c->ring)
        die("out of memory");
    c->ring_mask = n - 1;
}

__attribute__((cold)) static void ring_grow(struct conn *c)
{
    uint64_t n = (c->ring_mask + 1) * 2, *r;

    if (n > RING_MAX)
        fail(c,
             "%llu messages in flight on one connection: the server does not keep up with "
             "--rate",
             (unsigned long long)(c->send_seq - c->recv_seq));
    r = calloc(n, sizeof(*r));
    if (!r)
        die("out of memory");
    for (uint64_t s = c->recv_seq; s != c->send_seq; s++)
        r[s & (n - 1)] = c->ring[s & c->ring_mask];
    free(c->ring);
    c->ring = r;
    c->ring_mask = n - 1;
}

/* Queue one message whose send time is ts. */
static inline void schedule(struct worker *w, struct conn *c, uint64_t ts)
{
    if (c->send_seq - c->recv_seq > c->ring_mask)
        ring_grow(c);
    c->ring[c->send_seq & c->ring_mask] = ts;
    c->send_seq++;
    enqueue(w, c);
}

static void reset_conn(struct conn *c)
{
    c->fd = -1;
    c->state = CS_NEW;
    c->can_read = c->can_write = c->rdhup = false;
    c->out_open = c->pong_pending = c->close_pending = c->close_sent = false;
    c->in_frame = false;
    c->deadline = 0;
    c->send_seq = c->q_seq = c->recv_seq = 0;
    c->cur_off = c->f_left = c->msg_off = 0;
    memset(&c->wseq, 0, sizeof(c->wseq));
}

static void close_fd(struct worker *w, struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        /* close(2) also leaves the epoll set; its error is not actionable. */
        close(c->fd);
        c->fd = -1;
    }
    bu_buf_drop(&w->inpool, &c->in);
    bu_buf_drop(&w->outpool, &c->out);
}

static uint64_t secs(double s)
{
    return (uint64_t)(s * 1e9);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* True when t (monotonic ns) falls in the measured window. The bounds are
 * worked out once, as soon as the start time is known, not per message. */
static inline bool in_window(struct worker *w, uint64_t t)
{
    if (w->win_end == 0) {
        const struct run *r = w->run;
        uint64_t t0 = atomic_load_explicit(&r->t_start, memory_order_relaxed);

        if (t0 == 0)
            return false;
        w->win_start = t0 + secs(r->cfg->warmup);
        w->win_end = w->win_start + secs(r->cfg->duration);
    }
    return t >= w->win_start && t < w->win_end;
}

/* The connection ended cleanly. */
static void finish(struct worker *w, struct conn *c)
{
    close_fd(w, c);
    if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE)
        w->handshaking--;
    c->state = CS_DONE;
    if (w->cfg->mode == MODE_CHURN) {
        if (in_window(w, w->now)) {
            w->messages++;
            hist_add(w, w->now - c->cycle_start);
        }
        if (!w->stopping) {
            reset_conn(c);
            push_start(w, c);
            return;
        }
    }
    w->live--;
}

static void start_conn(struct worker *w, struct conn *c)
{
    const struct config *cfg = w->cfg;
    struct epoll_event ev;
    int one = 1, fd;

    fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail(c, "socket: %s", strerror(errno));
    c->fd = fd;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        fail(c, "setsockopt TCP_NODELAY: %s", strerror(errno));
    if (cfg->nsources) {
        struct sockaddr_in src;

        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(cfg->sources[(w->src_rr++ + w->id) % cfg->nsources]);
        /* The port is picked at connect time from the full 4-tuple, not at
         * bind time from the (address, port) pair: that is what lets each
         * source address use the whole ephemeral range. */
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
            fail(c, "setsockopt IP_BIND_ADDRESS_NO_PORT: %s", strerror(errno));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
            fail(c, "bind to source %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&cfg->addr, cfg->addrlen) < 0 && errno != EINPROGRESS)
        fail(c, "connect to %s: %s", cfg->url, strerror(errno));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail(c, "epoll_ctl: %s", strerror(errno));
    c->state = CS_CONNECTING;
    c->deadline = w->now + CONNECT_TIMEOUT;
    c->cycle_start = w->now;
    w->handshaking++;
}

static void start_pending(struct worker *w)
{
    while (w->start_head && w->handshaking < w->max_handshaking) {
        struct conn *c = w->start_head;

        w->start_head = c->next;
        if (!w->start_head)
            w->start_tail = NULL;
        c->next = NULL;
        if (w->stopping) {
            c->state = CS_DONE;
            w->live--;
            continue;
        }
        start_conn(w, c);
    }
}

static uint8_t *out_room(struct worker *w, struct conn *c, size_t need, size_t *room)
{
    if (bu_buf_take(&w->outpool, &c->out) < 0)
        die("out of memory");
    *room = bu_buf_room(&w->outpool, &c->out, need);
    if (*room < need)
        return NULL;
    return c->out.p + c->out.tail;
}

/* Queue a masked control frame; false when the output has no room now. */
static bool put_control(struct worker *w, struct conn *c, uint8_t op, const uint8_t *p, size_t n)
{
    size_t room, h;
    uint8_t *o = out_room(w, c, WS_MAX_HEADER + n, &room);
    uint32_t k;

    if (!o)
        return false;
    k = (uint32_t)bu_rand_next(&w->rng);
    h = ws_frame_write(o, true, op, (const uint8_t *)&k, n);
    memcpy(o + h, p, n);
    ws_mask(o + h, n, (const uint8_t *)&k, 0);
    c->out.tail += h + n;
    return true;
}

/* The payload header of message seq into head[0..hlen). */
static inline void make_head(struct worker *w, const struct conn *c, uint64_t seq, uint8_t *head)
{
    const struct run *r = w->run;

    if (r->seq_syms == SEQ_SYMS_FULL)
        enc_seq(head, seq);
    else
        enc(head, r->seq_syms, seq);
    if (r->hlen == HEAD_FULL) {
        uint64_t ts = c->ring[seq & c->ring_mask];

        if (ts != w->tx_ts) {
            enc(w->tx_syms, TS_SYMS, ts - r->origin);
            w->tx_ts = ts;
        }
        memcpy(head + SEQ_SYMS_FULL, w->tx_syms, TS_SYMS);
    }
}

/* Message seq as one whole masked frame at o[0..flen). */
static void put_message(struct worker *w, const struct conn *c, uint8_t *o, uint64_t seq)
{
    const struct run *r = w->run;
    const size_t size = (size_t)w->cfg->size;
    /* RFC 6455 §5.3: a fresh key for every frame. */
    const uint32_t k = (uint32_t)bu_rand_next(&w->rng);
    const uint64_t kw = (uint64_t)k << 32 | k; /* the key twice: 8 bytes at key phase 0 */
    uint8_t head[HEAD_FULL], kb[4], *p;
    size_t i = 0;
    uint64_t v;

    memcpy(o, r->fhead, 2);
    if (r->fhlen > 2)
        memcpy(o + 2, r->fhead + 2, r->fhlen - 2);
    memcpy(o + r->fhlen, &k, sizeof(k));
    memcpy(kb, &k, sizeof(kb));
    p = o + r->fhlen + sizeof(k);
    make_head(w, c, seq, head);
    /* Copy and mask in one pass, a word at a time: the header's 16 bytes
     * are two words, so the template part starts at key phase 0 too. */
    if (r->hlen == HEAD_FULL) {
        for (; i < HEAD_FULL; i += 8) {
            memcpy(&v, head + i, 8);
            v ^= kw;
            memcpy(p + i, &v, 8);
        }
        for (; i + 8 <= size; i += 8) {
            memcpy(&v, r->tmpl + i, 8);
            v ^= kw;
            memcpy(p + i, &v, 8);
        }
    } else {
        for (; i < r->hlen; i++)
            p[i] = head[i] ^ kb[i & 3];
    }
    for (; i < size; i++)
        p[i] = r->tmpl[i] ^ kb[i & 3];
}

/* Serialise what is owed (pongs, messages, the close frame) into the output
 * until it holds OUT_FILL bytes. */
static void fill(struct worker *w, struct conn *c)
{
    const struct run *r = w->run;
    const uint64_t size = w->cfg->size;
    const uint8_t op = w->cfg->binary ? WS_OP_BINARY : WS_OP_TEXT;

    if (c->state != CS_OPEN && c->state != CS_CLOSING)
        return;
    for (;;) {
        size_t room, n, len = bu_buf_len(&c->out);
        uint64_t off;
        uint8_t *o;

        if (!c->out_open) {
            /* Control frames only go between data frames (RFC 6455 §5.4
             * allows them between fragments, never inside a frame). */
            if (c->pong_pending) {
                if (!put_control(w, c, WS_OP_PONG, c->pong, c->pong_len))
                    return;
                c->pong_pending = false;
                continue;
            }
            if (c->q_seq != c->send_seq && r->whole) {
                uint64_t todo = c->send_seq - c->q_seq;

                /* Every message that fits, with one room check: frames up
                 * to WHOLE_MAX fit whenever fewer than OUT_FILL bytes are
                 * queued. */
                if (len >= OUT_FILL)
                    return;
                o = out_room(w, c, r->flen, &room);
                if (!o)
                    return;
                n = room / r->flen;
                if (n > (OUT_FILL - len + r->flen - 1) / r->flen)
                    n = (OUT_FILL - len + r->flen - 1) / r->flen;
                if (n > todo)
                    n = (size_t)todo;
                for (size_t i = 0; i < n; i++, o += r->flen)
                    put_message(w, c, o, c->q_seq + i);
                c->q_seq += n;
                c->out.tail += n * r->flen;
                w->sent += n;
                continue;
            }
            if (c->q_seq != c->send_seq) {
                uint32_t k;

                if (len >= OUT_FILL)
                    return;
                o = out_room(w, c, WS_MAX_HEADER, &room);
                if (!o)
                    return;
                /* RFC 6455 §5.3: a fresh key for every frame. */
                k = (uint32_t)bu_rand_next(&w->rng);
                memcpy(c->key, &k, sizeof(c->key));
                c->out.tail += ws_frame_write(o, true, op, c->key, size);
                make_head(w, c, c->q_seq, c->head);
                c->cur_off = 0;
                c->out_open = size > 0;
                if (!c->out_open) {
                    c->q_seq++;
                    w->sent++;
                }
                continue;
            }
            if (c->close_pending) {
                uint8_t code[2] = {1000 >> 8, 1000 & 0xff};

                if (!put_control(w, c, WS_OP_CLOSE, code, sizeof(code)))
                    return;
                c->close_pending = false;
                c->close_sent = true;
            }
            return;
        }
        if (len >= OUT_FILL)
            return;
        o = out_room(w, c, 1, &room);
        if (!o)
            return;
        if (room > OUT_FILL - len)
            room = OUT_FILL - len;
        off = c->cur_off;
        n = size - off < room ? (size_t)(size - off) : room;
        if (off < r->hlen) {
            size_t h = r->hlen - off < n ? (size_t)(r->hlen - off) : n;
            memcpy(o, c->head + off, h);
            memcpy(o + h, r->tmpl + off + h, n - h);
        } else {
            memcpy(o, r->tmpl + off, n);
        }
        ws_mask(o, n, c->key, off);
        c->out.tail += n;
        c->cur_off += n;
        if (c->cur_off == size) {
            c->out_open = false;
            c->q_seq++;
            w->sent++;
        }
    }
}

/* Send the close frame after whatever message is being serialised; the
 * messages not started yet are dropped. */
static void begin_close(struct worker *w, struct conn *c)
{
    if (c->state != CS_OPEN)
        return;
    c->send_seq = c->q_seq + (c->out_open ? 1 : 0);
    c->close_pending = true;
    c->state = CS_CLOSING;
    c->deadline = w->now + CLOSE_TIMEOUT;
    enqueue(w, c);
}

static void on_open(struct worker *w, struct conn *c)
{
    struct run *r = w->run;

    c->state = CS_OPEN;
    c->deadline = 0;
    w->handshaking--;
    if (!c->was_open) {
        c->was_open = true;
        atomic_fetch_add(&r->opened, 1);
    }
    if (w->stopping) {
        begin_close(w, c);
        return;
    }
    switch (w->cfg->mode) {
    case MODE_CLOSED:
        for (unsigned long i = 0; i < w->cfg->inflight; i++)
            schedule(w, c, w->now);
        break;
    case MODE_OPEN:
        break;
    case MODE_IDLE:
        /* Nothing yet: the burst goes out once every connection is open. */
        break;
    case MODE_FANOUT:
        break;
    case MODE_CHURN:
        schedule(w, c, w->now);
        break;
    }
}

/* The 16 hex digits at p as a number. Returns 0, or -1 when one is not a
 * lowercase hex digit. */
static int hex16_dec(const uint8_t *p, uint64_t *v)
{
    uint64_t r = 0;

    for (int i = 0; i < 16; i++) {
        unsigned d;

        if (p[i] >= '0' && p[i] <= '9')
            d = p[i] - '0';
        else if (p[i] >= 'a' && p[i] <= 'f')
            d = p[i] - 'a' + 10u;
        else
            return -1;
        r = r << 4 | d;
    }
    *v = r;
    return 0;
}

/* Fanout: one pushed message fully received (opcode and length already
 * checked). rh: its first PUSH_HEAD bytes, borrowed: the sequence number
 * on this connection and the send time, CLOCK_MONOTONIC ns, both in hex.
 * Client and server share the machine, so receive time minus send time is
 * the delivery latency. */
__attribute__((noinline)) static void on_push(struct worker *w, struct conn *c, const uint8_t *rh)
{
    uint64_t seq, ts;

    if (hex16_dec(rh, &seq) < 0 || hex16_dec(rh + 16, &ts) < 0)
        fail(c, "message %llu is not a push (want 32 hex digits, got '%.32s')",
             (unsigned long long)c->recv_seq, (const char *)rh);
    if (seq != c->recv_seq)
        fail(c, "push out of sequence: expected message %llu, got %llu",
             (unsigned long long)c->recv_seq, (unsigned long long)seq);
    if (ts > w->now)
        fail(c,
             "push %llu was sent %.1f us in the future: its send time is not this machine's "
             "CLOCK_MONOTONIC",
             (unsigned long long)seq, us(ts - w->now));
    c->recv_seq++;
    w->received++;
    if (in_window(w, w->now)) {
        w->messages++;
        hist_add(w, w->now - ts);
    }
}

/* One echo fully received and verified up to its last byte. */
/* rh: the echo's payload header (r->hlen bytes), borrowed. */
__attribute__((always_inline)) static inline void on_echo(struct worker *w, struct conn *c,
                                                          const uint8_t *rh)
{
    struct run *r = w->run;
    const struct config *cfg = w->cfg;
    uint64_t ts, got;

    if (cfg->mode == MODE_FANOUT) {
        on_push(w, c, rh);
        return;
    }
    if (c->recv_seq == c->send_seq)
        fail(c, "received a message that was never sent");
    if (r->seq_syms > 0) {
        uint8_t want[SEQ_SYMS_FULL];

        /* Each value has one spelling, so comparing symbols is comparing
         * numbers; decoding is left for the error message. */
        if (r->seq_syms == SEQ_SYMS_FULL)
            enc_seq(want, c->recv_seq);
        else
            enc(want, r->seq_syms, c->recv_seq);
        if (r->seq_syms == SEQ_SYMS_FULL ? memcmp(want, rh, SEQ_SYMS_FULL) != 0
                                         : memcmp(want, rh, r->seq_syms) != 0) {
            if (dec(rh, r->seq_syms, &got) < 0)
                fail(c, "echo header is not one this tool wrote (sequence field '%.*s')",
                     (int)r->seq_syms, (const char *)rh);
            fail(c, "echo out of sequence: expected message %llu, got %llu",
                 (unsigned long long)(c->recv_seq % r->seq_mod), (unsigned long long)got);
        }
    }
    ts = c->ring[c->recv_seq & c->ring_mask];
    if (cfg->check && r->hlen == HEAD_FULL) {
        /* Compared as symbols too; echoes of one batch share a send time,
         * so its spelling is worked out once. */
        if (ts != w->rx_ts) {
            enc(w->rx_syms, TS_SYMS, ts - r->origin);
            w->rx_ts = ts;
        }
        if (memcmp(rh + SEQ_SYMS_FULL, w->rx_syms, TS_SYMS) != 0)
            fail(c, "echo of message %llu: timestamp field differs from what was sent",
                 (unsigned long long)c->recv_seq);
    }
    c->recv_seq++;
    w->received++;
    switch (cfg->mode) {
    case MODE_CLOSED:
        if (in_window(w, w->now)) {
            w->messages++;
            hist_add(w, w->now - ts);
        }
        if (!w->stopping && c->state == CS_OPEN)
            schedule(w, c, w->now);
        break;
    case MODE_OPEN:
        /* A message belongs to the window its schedule put it in, so the
         * count never exceeds rate x duration: echoes of warm-up messages
         * that a busy machine delayed into the window do not count. */
        if (in_window(w, ts)) {
            w->messages++;
            /* From the scheduled time, not the actual send: a stalled
             * server is charged for every message it delayed. */
            hist_add(w, w->now > ts ? w->now - ts : 0);
        }
        break;
    case MODE_IDLE:
        if (!c->echoed) {
            c->echoed = true;
            w->messages++;
            hist_add(w, w->now - ts);
            if (atomic_fetch_add(&r->ready, 1) + 1 == cfg->conns) {
                uint64_t zero = 0;

                atomic_compare_exchange_strong(&r->t_ready, &zero, w->now);
                if (printf("{\"event\":\"ready\",\"connections\":%lu}\n", cfg->conns) < 0 ||
                    fflush(stdout) != 0)
                    die("stdout: %s", strerror(errno));
            }
        }
        break;
    case MODE_CHURN:
        begin_close(w, c);
        break;
    case MODE_FANOUT:
        break;
    }
}

/* Payload bytes p[0..n) at offset msg_off of the echo being received. */
static void on_payload(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
    const struct run *r = w->run;
    uint64_t off = c->msg_off;

    if (off < r->hlen) {
        size_t h = r->hlen - off < n ? (size_t)(r->hlen - off) : n;

        memcpy(c->rhead + off, p, h);
        p += h;
        n -= h;
        off += h;
    }
    if (n > 0 && w->cfg->check && memcmp(p, r->tmpl + off, n) != 0) {
        size_t i = 0;

        while (p[i] == r->tmpl[off + i])
            i++;
        fail(c, "%s %llu differs at byte %llu: %s 0x%02x, got 0x%02x",
             w->cfg->mode == MODE_FANOUT ? "push" : "echo of message",
             (unsigned long long)c->recv_seq, (unsigned long long)(off + i),
             w->cfg->mode == MODE_FANOUT ? "expected" : "sent", r->tmpl[off + i], p[i]);
    }
}

static void on_close_frame(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
    unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;

    if (n == 1)
        fail(c, "close frame with a 1-byte payload");
    if (c->state != CS_CLOSING || !c->close_sent)
        fail(c, "server closed the WebSocket (code %u%s%.*s)", code, n > 2 ? ", reason: " : "",
             n > 2 ? (int)(n - 2) : 0, (const char *)p + 2);
    if (w->cfg->mode != MODE_FANOUT && c->recv_seq != c->send_seq)
        fail(c, "server answered the close with %llu messages not echoed",
             (unsigned long long)(c->send_seq - c->recv_seq));
    c->state = CS_WAIT_EOF;
    c->deadline = w->now + EOF_WAIT;
}

static void check_handshake(struct worker *w, struct conn *c, size_t hlen)
{
    const char *p = (const char *)c->in.p + c->in.head, *v;
    size_t vlen, line = 0;

    while (line < hlen && p[line] != '\r')
        line++;
    if (hlen < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0)
        fail(c, "upgrade refused: server answered '%.*s'", (int)(line > 200 ? 200 : line), p);
    v = bu_http_header(p, hlen, "Upgrade", &vlen);
    if (!v || !bu_has_token(v, vlen, "websocket"))
        fail(c, "101 response without 'Upgrade: websocket'");
    v = bu_http_header(p, hlen, "Connection", &vlen);
    if (!v || !bu_has_token(v, vlen, "upgrade"))
        fail(c, "101 response without 'Connection: Upgrade'");
    v = bu_http_header(p, hlen, "Sec-WebSocket-Accept", &vlen);
    if (!v || vlen != BU_ACCEPT_LEN || memcmp(v, c->accept, BU_ACCEPT_LEN) != 0)
        fail(c, "wrong Sec-WebSocket-Accept '%.*s', expected '%s'", v ? (int)vlen : 0, v ? v : "",
             c->accept);
    /* RFC 6455 §4.1: the client fails the connection when the server picks
     * an extension or a subprotocol it did not offer (none are). */
    if (bu_http_header(p, hlen, "Sec-WebSocket-Extensions", &vlen))
        fail(c, "server chose an extension that was not offered");
    if (bu_http_header(p, hlen, "Sec-WebSocket-Protocol", &vlen))
        fail(c, "server chose a subprotocol that was not offered");
    c->in.head += hlen;
    on_open(w, c);
}

/* The common case: whole echoes, each in one frame, back to back at
 * p[0..avail), outside any fragmented message. A header equal to the one
 * every echo must have (FIN, no RSV bit, the opcode sent, unmasked, the
 * length sent) passes every rule ws_frame_check applies there, so they go
 * without it. Returns the bytes of the echoes taken; the first other frame
 * is left to the general parser. */
static size_t whole_echoes(struct worker *w, struct conn *c, const uint8_t *p, size_t avail)
{
    const struct run *r = w->run;
    const size_t size = (size_t)w->cfg->size;
    size_t used = 0;

    while (avail - used >= r->eflen && memcmp(p + used, r->ehead, 2) == 0 &&
           (r->ehlen == 2 || memcmp(p + used + 2, r->ehead + 2, r->ehlen - 2) == 0)) {
        const uint8_t *pl = p + used + r->ehlen;

        if (w->cfg->check && size > r->hlen &&
            memcmp(pl + r->hlen, r->tmpl + r->hlen, size - r->hlen) != 0) {
            c->msg_off = 0;
            on_payload(w, c, pl, size); /* names the first differing byte and fails */
        }
        used += r->eflen;
        on_echo(w, c, pl);
    }
    return used;
}

/* Parse what the input holds. */
static void process(struct worker *w, struct conn *c)
{
    const struct config *cfg = w->cfg;
    const uint8_t want_op = cfg->binary ? WS_OP_BINARY : WS_OP_TEXT;

    if (c->state == CS_HANDSHAKE) {
        size_t hlen = bu_http_head_end(c->in.p + c->in.head, bu_buf_len(&c->in));

        if (hlen == 0) {
            if (bu_buf_len(&c->in) >= IN_CAP - 1)
                fail(c, "upgrade response head over %d bytes", IN_CAP - 1);
            return;
        }
        check_handshake(w, c, hlen);
    }
    while (c->in.head < c->in.tail) {
        const uint8_t *p = c->in.p + c->in.head;
        size_t avail = c->in.tail - c->in.head;
        struct ws_frame_hdr h;
        uint8_t op;
        int rc;

        if (c->state == CS_WAIT_EOF)
            fail(c, "data after the server's close frame");
        if (!c->in_frame && c->wseq.msg_op == 0 &&
            (c->state == CS_OPEN || c->state == CS_CLOSING)) {
            size_t used = whole_echoes(w, c, p, avail);

            if (used > 0) {
                c->in.head += used;
                continue;
            }
        }
        if (c->in_frame) {
            size_t n = avail < c->f_left ? avail : (size_t)c->f_left;

            on_payload(w, c, p, n);
            c->in.head += n;
            c->msg_off += n;
            c->f_left -= n;
            if (c->f_left > 0)
                return;
            c->in_frame = false;
            if (c->wseq.msg_op == 0) /* FIN: the message is complete */
                goto complete;
            continue;
        }
        rc = ws_frame_parse(p, avail, &h);
        if (rc == ERR_AGAIN)
            return;
        if (rc < 0)
            fail(c, "bad frame from server: %s", err_str(rc));
        rc = ws_frame_check(&c->wseq, &w->rules, &h, &op);
        if (rc == ERR_WS_FRAME_TOO_BIG || rc == ERR_WS_MSG_TOO_BIG)
            fail(c, "%s %llu longer than the %llu bytes %s",
                 cfg->mode == MODE_FANOUT ? "push" : "echo of message",
                 (unsigned long long)c->recv_seq, (unsigned long long)cfg->size,
                 cfg->mode == MODE_FANOUT ? "expected (-s)" : "sent");
        if (rc < 0)
            fail(c, "bad frame from server: %s", err_str(rc));
        if (h.opcode & 0x8) {
            uint8_t pl[WS_MAX_CONTROL];

            if (avail < h.hlen + h.len)
                return;
            memcpy(pl, p + h.hlen, h.len);
            c->in.head += h.hlen + h.len;
            if (h.opcode == WS_OP_PING) {
                /* RFC 6455 §5.5.3: only the latest ping needs its pong. */
                memcpy(c->pong, pl, h.len);
                c->pong_len = (uint8_t)h.len;
                c->pong_pending = true;
            } else if (h.opcode == WS_OP_CLOSE) {
                on_close_frame(w, c, pl, h.len);
            }
            continue;
        }
        if (c->state != CS_OPEN && c->state != CS_CLOSING)
            fail(c, "data frame in state %s", state_names[c->state]);
        if (op != want_op)
            fail(c, "%s %llu came %s %s, %s %s",
                 cfg->mode == MODE_FANOUT ? "push" : "echo of message",
                 (unsigned long long)c->recv_seq, cfg->mode == MODE_FANOUT ? "as" : "back as",
                 op == WS_OP_TEXT ? "text" : "binary",
                 cfg->mode == MODE_FANOUT ? "expected" : "sent as",
                 cfg->binary ? "binary" : "text");
        if (h.opcode != WS_OP_CONT)
            c->msg_off = 0;
        c->in.head += h.hlen;
        c->f_left = h.len;
        c->in_frame = h.len > 0;
        if (c->in_frame || !h.fin)
            continue;
    complete:
        if (c->msg_off != cfg->size)
            fail(c, "%s %llu has %llu bytes, %s %llu",
                 cfg->mode == MODE_FANOUT ? "push" : "echo of message",
                 (unsigned long long)c->recv_seq, (unsigned long long)c->msg_off,
                 cfg->mode == MODE_FANOUT ? "expected" : "sent", (unsigned long long)cfg->size);
        on_echo(w, c, c->rhead);
    }
}

static void connected(struct worker *w, struct conn *c)
{
    const struct config *cfg = w->cfg;
    uint8_t nonce[16];
    char key[BU_KEY_LEN + 1];
    size_t room;
    uint8_t *o;
    int err = 0, n;
    socklen_t elen = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        fail(c, "getsockopt SO_ERROR: %s", strerror(errno));
    if (err != 0)
        fail(c, "connect to %s: %s", cfg->url, strerror(err));
    if (cfg->tls) {
        /* The handshake happens inside the first write and reads. */
        c->ssl = SSL_new(cfg->tls_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
            fail(c, "cannot create a TLS connection");
        if (cfg->sni[0])
            SSL_set_tlsext_host_name(c->ssl, cfg->sni);
        SSL_set_connect_state(c->ssl);
        c->write_wants_read = false;
    }
    bu_rand_bytes(&w->rng, nonce, sizeof(nonce));
    bu_ws_key(nonce, key);
    bu_ws_accept(key, BU_KEY_LEN, c->accept);
    o = out_room(w, c, 4096, &room);
    if (!o)
        die("output buffer too small");
    n = snprintf((char *)o, room,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 cfg->path, cfg->host, key);
    if (n < 0 || (size_t)n >= room)
        die("upgrade request too long");
    c->out.tail += (size_t)n;
    c->state = CS_HANDSHAKE;
}

static void do_read(struct worker *w, struct conn *c)
{
    while (c->can_read && c->state != CS_DONE) {
        size_t room;
        ssize_t n;

        if (bu_buf_take(&w->inpool, &c->in) < 0)
            die("out of memory");
        room = bu_buf_room(&w->inpool, &c->in, IN_CAP);
        if (room == 0)
            fail(c, "input buffer full");
        if (c->ssl) {
            size_t got = 0;
            if (SSL_read_ex(c->ssl, c->in.p + c->in.tail, room, &got)) {
                n = (ssize_t)got;
            } else {
                int e = SSL_get_error(c->ssl, 0);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    ERR_clear_error();
                    c->can_read = false;
                    break;
                }
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
                    ERR_clear_error();
                    n = 0;
                } else {
                    unsigned long le = ERR_get_error();
                    if (c->state == CS_WAIT_EOF) {
                        finish(w, c);
                        return;
                    }
                    fail(c, "TLS read: %s", le ? ERR_reason_error_string(le) : strerror(errno));
                }
            }
            /* A TLS write that waited for the server's bytes can go on. */
            if (c->write_wants_read) {
                c->write_wants_read = false;
                c->can_write = true;
            }
        } else {
            n = read(c->fd, c->in.p + c->in.tail, room);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                c->can_read = false;
                break;
            }
            if (c->state == CS_WAIT_EOF) {
                finish(w, c);
                return;
            }
            fail(c, "read: %s", strerror(errno));
        }
        if (n == 0) {
            if (c->state == CS_WAIT_EOF) {
                finish(w, c);
                return;
            }
            if (c->state == CS_HANDSHAKE)
                fail(c, "server closed the connection during the upgrade");
            fail(c, "server closed the TCP connection without a close handshake");
        }
        c->in.tail += (size_t)n;
        /* A short read emptied the socket: with edge-triggered epoll, data
         * arriving later raises a new event, so the EAGAIN read that would
         * confirm it is skipped (as nginx does). Not once the FIN was seen:
         * no event would come for the EOF still to read. */
        if ((size_t)n < room && !c->rdhup && !c->ssl)
            c->can_read = false;
        /* One clock read per read(2), which takes every echo waiting on
         * the connection (16 at a time with -k 16), not one per message nor
         * one per epoll wake-up: with wsbench and its server on one core a
         * wake-up serves ~40 connections and lasts ~280 us (max ~1 ms), a
         * third of the round trip it would blur. The read costs 25 ns
         * (vDSO, measured on the 2-core test VM). */
        w->now = bu_now_ns();
        process(w, c);
    }
    if (c->in.p && bu_buf_len(&c->in) == 0)
        bu_buf_drop(&w->inpool, &c->in);
}

/* TLS: write the queued output (the buffer only grows at its tail, so a
 * write OpenSSL asks to repeat is repeated with the same bytes first). */
static bool tls_send(struct worker *w, struct conn *c, size_t len)
{
    while (len > 0) {
        size_t n = 0;
        if (!SSL_write_ex(c->ssl, c->out.p + c->out.head, len, &n)) {
            int e = SSL_get_error(c->ssl, 0);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_WRITE) {
                c->can_write = false;
                return false;
            }
            if (e == SSL_ERROR_WANT_READ) {
                /* Handshake bytes from the server come first. */
                c->can_write = false;
                c->write_wants_read = true;
                return false;
            }
            fail(c, "TLS write failed (%d)", e);
        }
        c->out.head += n;
        len -= n;
    }
    bu_buf_drop(&w->outpool, &c->out);
    return true;
}

/* One send of the queued output; true when it all went. */
static bool do_send(struct worker *w, struct conn *c)
{
    size_t len = bu_buf_len(&c->out);
    ssize_t n;

    if (len == 0)
        return true;
    if (!c->can_write)
        return false;
    if (c->ssl)
        return tls_send(w, c, len);
    n = send(c->fd, c->out.p + c->out.head, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN) {
            c->can_write = false;
            return false;
        }
        if (errno == EINTR)
            return false;
        fail(c, "send: %s", strerror(errno));
    }
    c->out.head += (size_t)n;
    if ((size_t)n < len) {
        c->can_write = false;
        return false;
    }
    bu_buf_drop(&w->outpool, &c->out);
    return true;
}

static bool owes_output(const struct conn *c)
{
    return (c->state == CS_OPEN || c->state == CS_CLOSING) &&
           (c->out_open || c->q_seq != c->send_seq || c->pong_pending || c->close_pending);
}

static void service(struct worker *w, struct conn *c)
{
    c->busy = true;
    if (c->state == CS_CONNECTING) {
        if (!c->can_write && !c->can_read)
            goto out;
        connected(w, c);
    }
    for (int round = 0; round < SERVICE_ROUNDS; round++) {
        do_read(w, c);
        if (c->state == CS_DONE)
            goto out;
        fill(w, c);
        if (!do_send(w, c) || !owes_output(c))
            break;
    }
    if (c->can_write && owes_output(c)) {
        c->busy = false;
        enqueue(w, c);
        return;
    }
out:
    c->busy = false;
}

/* ---- worker loop */

static void stop_all(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];

        if (c->state == CS_OPEN) {
            begin_close(w, c);
        } else if ((c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) &&
                   w->cfg->mode != MODE_CHURN) {
            /* Interrupted before every connection was up: drop the rest. */
            close_fd(w, c);
            w->handshaking--;
            c->state = CS_DONE;
            w->live--;
        }
    }
    start_pending(w);
}

static void sweep(struct worker *w)
{
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];

        if (c->deadline == 0 || w->now < c->deadline)
            continue;
        switch (c->state) {
        case CS_CONNECTING:
            fail(c, "connect timed out after %llu s", CONNECT_TIMEOUT / NS);
        case CS_HANDSHAKE:
            fail(c, "no upgrade response within %llu s of connecting", CONNECT_TIMEOUT / NS);
        case CS_CLOSING:
            fail(c, "no close frame from the server within %llu s of ours", CLOSE_TIMEOUT / NS);
        case CS_WAIT_EOF:
            /* RFC 6455 §7.1.1: the server should close first; after a grace
             * period the client may. */
            finish(w, c);
            break;
        default:
            c->deadline = 0;
            break;
        }
    }
}

/* Phase changes and open-loop scheduling; returns the ns until the next
 * thing that is due. */
static uint64_t tick(struct worker *w)
{
    struct run *r = w->run;
    const struct config *cfg = w->cfg;
    uint64_t now = w->now, t0, end, wait = SWEEP_NS;

    start_pending(w);
    if (now - w->last_sweep >= SWEEP_NS) {
        w->last_sweep = now;
        sweep(w);
    }
    t0 = atomic_load(&r->t_start);
    if (t0 == 0 && atomic_load(&r->opened) >= cfg->conns) {
        uint64_t zero = 0;

        if (atomic_compare_exchange_strong(&r->t_start, &zero, now)) {
            info(cfg, "%lu connections open; %s", cfg->conns,
                 cfg->mode == MODE_IDLE ? "one message on each" : "warming up");
            /* Fanout: whoever watches the server (its CPU time) learns
             * when the measured window starts: --warmup seconds from now. */
            if (cfg->mode == MODE_FANOUT &&
                (printf("{\"event\":\"open\",\"connections\":%lu}\n", cfg->conns) < 0 ||
                 fflush(stdout) != 0))
                die("stdout: %s", strerror(errno));
        }
        t0 = atomic_load(&r->t_start);
    }
    if (w->stopping)
        return wait;
    if (cfg->mode == MODE_IDLE) {
        uint64_t tr = atomic_load(&r->t_ready);

        if (stop_flag && tr == 0)
            die("interrupted before all %lu connections were ready", cfg->conns);
        if (t0 == 0 && cfg->threads > 1) {
            /* Another thread may open the last connection: look again
             * soon, so that the threads' bursts start within 1 ms. */
            wait = MS_NS;
        }
        if (t0 != 0 && !w->burst_sent) {
            /* One message on every connection at once, all stamped with
             * the same send time: the proxy sees N messages arrive
             * together, the worst case for buffers taken on arrival. */
            w->burst_sent = true;
            for (size_t i = 0; i < w->nconns; i++) {
                if (w->conns[i].state == CS_OPEN)
                    schedule(w, &w->conns[i], now);
            }
        }
        if (tr && (stop_flag || now >= tr + secs(cfg->hold))) {
            uint64_t zero = 0;

            atomic_compare_exchange_strong(&r->t_stop, &zero, now);
            stop_all(w);
        } else if (tr && tr + secs(cfg->hold) - now < wait) {
            wait = tr + secs(cfg->hold) - now;
        }
        return wait;
    }
    if (t0 == 0) {
        if (stop_flag)
            stop_all(w);
        return wait;
    }
    end = t0 + secs(cfg->warmup) + secs(cfg->duration);
    if (stop_flag || now >= end) {
        uint64_t zero = 0;

        atomic_compare_exchange_strong(&r->t_stop, &zero, now < end ? now : end);
        stop_all(w);
        return wait;
    }
    if (end - now < wait)
        wait = end - now;
    if (cfg->mode == MODE_OPEN && w->nconns > 0) {
        for (;;) {
            uint64_t t =
                t0 + (uint64_t)(((double)w->sched_n + (double)w->id / (double)cfg->threads) *
                                w->interval);
            struct conn *c;

            if (t > now) {
                if (t - now < wait)
                    wait = t - now;
                break;
            }
            c = &w->conns[w->rr];
            w->rr = (w->rr + 1) % w->nconns;
            w->sched_n++;
            if (c->state == CS_OPEN)
                schedule(w, c, t);
        }
    }
    return wait;
}

static atomic_bool no_pwait2; /* epoll_pwait2 missing (kernel < 5.11, valgrind) */

/* Wait up to wait_ns for events: to the nanosecond with epoll_pwait2, else
 * rounded up to the millisecond. */
static int wait_events(struct worker *w, struct epoll_event *evs, uint64_t wait_ns)
{
    uint64_t ms;

    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / NS), .tv_nsec = (long)(wait_ns % NS)};
        int n = epoll_pwait2(w->epfd, evs, MAX_EVENTS, &ts, NULL);

        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
    ms = (wait_ns + 999999) / 1000000;
    return epoll_wait(w->epfd, evs, MAX_EVENTS, ms > 1000 ? 1000 : (int)ms);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];

    w->now = bu_now_ns();
    w->last_sweep = w->now;
    while (w->live > 0) {
        uint64_t wait = tick(w);
        int n;

        if (w->live == 0)
            break;
        if (w->ready)
            wait = 0;
        n = wait_events(w, evs, wait);
        if (n < 0) {
            if (errno != EINTR)
                die("epoll_wait: %s", strerror(errno));
            n = 0;
        }
        w->now = bu_now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;

            if (c->state == CS_DONE || c->state == CS_NEW)
                continue;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->can_read = true;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->rdhup = true;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->can_write = true;
            service(w, c);
        }
        if (w->ready) {
            struct conn *list = w->ready;

            w->ready = NULL;
            while (list) {
                struct conn *c = list;

                list = c->next;
                c->queued = false;
                if (c->state != CS_DONE && c->state != CS_NEW)
                    service(w, c);
            }
        }
    }
    return NULL;
}

/* ---- setup and report */

static void parse_url(struct config *cfg)
{
    const char *u = cfg->url, *auth, *slash;
    char hp[320], err[400];
    size_t alen;

    if (strncmp(u, "wss://", 6) == 0)
        cfg->tls = true;
    else if (strncmp(u, "ws://", 5) != 0)
        die("--url '%s': only ws://HOST[:PORT][/PATH] and wss://... are supported", u);
    auth = u + (cfg->tls ? 6 : 5);
    slash = strchr(auth, '/');
    alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (alen == 0 || alen >= sizeof(cfg->host))
        die("--url '%s': bad host", u);
    memcpy(cfg->host, auth, alen);
    cfg->host[alen] = '\0';
    if (snprintf(cfg->path, sizeof(cfg->path), "%s", slash ? slash : "/") >= (int)sizeof(cfg->path))
        die("--url '%s': path too long", u);
    for (const char *q = cfg->path; *q; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            die("--url '%s': the path must not contain spaces or control characters", u);
    }
    /* Default port 80 when the authority has none ("host" or "[v6]"). */
    if (strchr(cfg->host, ']') ? cfg->host[alen - 1] == ']' : !strchr(cfg->host, ':'))
        snprintf(hp, sizeof(hp), "%s:%s", cfg->host, cfg->tls ? "443" : "80");
    else
        snprintf(hp, sizeof(hp), "%s", cfg->host);
    if (bu_parse_hostport(hp, &cfg->addr, &cfg->addrlen, err, sizeof(err)) < 0)
        die("--url: %s", err);
    if (cfg->tls) {
        /* SNI: the host when it is a name (not an address literal). */
        char name[300];
        const char *colon = strrchr(cfg->host, ':');
        size_t nl = cfg->host[0] == '[' ? 0 : colon ? (size_t)(colon - cfg->host) : alen;
        struct in_addr a4;
        memcpy(name, cfg->host, nl);
        name[nl] = '\0';
        if (nl > 0 && inet_pton(AF_INET, name, &a4) != 1)
            snprintf(cfg->sni, sizeof(cfg->sni), "%s", name);
        cfg->tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!cfg->tls_ctx)
            die("cannot create a TLS context");
        SSL_CTX_set_verify(cfg->tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(cfg->tls_ctx,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* A fresh full handshake per connection, as new clients do. */
        SSL_CTX_set_session_cache_mode(cfg->tls_ctx, SSL_SESS_CACHE_OFF);
    }
}

static void parse_sources(struct config *cfg, const char *arg)
{
    char *copy = strdup(arg), *save = NULL, *tok;
    size_t cap = 0;

    if (!copy)
        die("out of memory");
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr a, b;
        uint32_t lo, hi;

        if (dash)
            *dash = '\0';
        if (inet_pton(AF_INET, tok, &a) != 1 || (dash && inet_pton(AF_INET, dash + 1, &b) != 1))
            die("--sources '%s': expected IPv4 addresses or ranges A-B, comma-separated", arg);
        lo = ntohl(a.s_addr);
        hi = dash ? ntohl(b.s_addr) : lo;
        if (hi < lo || hi - lo >= 65536)
            die("--sources '%s': bad range", arg);
        for (uint64_t v = lo; v <= hi; v++) {
            if (cfg->nsources == cap) {
                uint32_t *n;

                cap = cap ? cap * 2 : 16;
                n = realloc(cfg->sources, cap * sizeof(*n));
                if (!n)
                    die("out of memory");
                cfg->sources = n;
            }
            cfg->sources[cfg->nsources++] = (uint32_t)v;
        }
    }
    free(copy);
    if (cfg->nsources == 0)
        die("--sources '%s': no address", arg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wsbench --url ws[s]://HOST:PORT/PATH [options]\n"
               "  -c, --connections N  connections (churn: parallel workers) (64)\n"
               "  -k, --inflight K     closed loop: messages in flight per connection (16)\n"
               "  -s, --size S         payload bytes per message, suffix k/K/KiB/m/M/MiB (32)\n"
               "      --binary         binary messages (default: text)\n"
               "  -d, --duration T     measured seconds (10)\n"
               "  -w, --warmup W       seconds before measuring (2)\n"
               "      --rate R         open loop: R messages/s over all connections\n"
               "      --idle           open N connections, then one echo on each at once,\n"
               "                       print a ready line, hold them for --hold T seconds (30)\n"
               "                       or until SIGTERM\n"
               "      --churn          N workers loop connect, upgrade, one echo, close\n"
               "      --fanout         open N connections, send nothing, time the messages\n"
               "                       the server pushes (wsecho --push-interval, -s its size)\n"
               "      --check          compare every echoed byte\n"
               "      --sources A-B    bind outgoing sockets round-robin to these IPv4 addresses\n"
               "  -t, --threads N      worker threads (1)\n"
               "      --json           one JSON object on stdout at the end\n"
               "  -q, --quiet          no progress lines on stderr\n");
}

static void parse_args(struct config *cfg, int argc, char **argv)
{
    enum {
        O_BINARY = 256,
        O_RATE,
        O_IDLE,
        O_HOLD,
        O_CHURN,
        O_FANOUT,
        O_CHECK,
        O_SOURCES,
        O_JSON,
        O_URL
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"connections", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},
        {"binary", no_argument, NULL, O_BINARY},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, O_RATE},
        {"idle", no_argument, NULL, O_IDLE},
        {"hold", required_argument, NULL, O_HOLD},
        {"churn", no_argument, NULL, O_CHURN},
        {"fanout", no_argument, NULL, O_FANOUT},
        {"check", no_argument, NULL, O_CHECK},
        {"sources", required_argument, NULL, O_SOURCES},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool idle = false, churn = false, rate = false, fanout = false;
    int opt;

    cfg->conns = 64;
    cfg->inflight = 16;
    cfg->threads = 1;
    cfg->size = 32;
    cfg->duration = 10;
    cfg->warmup = 2;
    cfg->hold = 30;
    while ((opt = getopt_long(argc, argv, "c:k:s:d:w:t:qh", opts, NULL)) != -1) {
        switch (opt) {
        case O_URL:
            cfg->url = optarg;
            break;
        case 'c':
            if (bu_parse_uint(optarg, 1, 10000000, &cfg->conns) < 0)
                die("-c '%s': expected a number of connections >= 1", optarg);
            break;
        case 'k':
            if (bu_parse_uint(optarg, 1, 1000000, &cfg->inflight) < 0)
                die("-k '%s': expected a number >= 1", optarg);
            break;
        case 's':
            if (bu_parse_size(optarg, MAX_SIZE, &cfg->size) < 0)
                die("-s '%s': expected a byte count up to 1 GiB (suffix k/K/KiB/m/M/MiB)", optarg);
            break;
        case O_BINARY:
            cfg->binary = true;
            break;
        case 'd':
            if (bu_parse_seconds(optarg, &cfg->duration) < 0)
                die("-d '%s': expected seconds", optarg);
            break;
        case 'w':
            if (bu_parse_seconds(optarg, &cfg->warmup) < 0)
                die("-w '%s': expected seconds", optarg);
            break;
        case O_RATE:
            if (bu_parse_seconds(optarg, &cfg->rate) < 0 || cfg->rate <= 0)
                die("--rate '%s': expected messages per second > 0", optarg);
            rate = true;
            break;
        case O_IDLE:
            idle = true;
            break;
        case O_HOLD:
            if (bu_parse_seconds(optarg, &cfg->hold) < 0)
                die("--hold '%s': expected seconds", optarg);
            break;
        case O_CHURN:
            churn = true;
            break;
        case O_FANOUT:
            fanout = true;
            break;
        case O_CHECK:
            cfg->check = true;
            break;
        case O_SOURCES:
            parse_sources(cfg, optarg);
            break;
        case 't':
            if (bu_parse_uint(optarg, 1, 256, &cfg->threads) < 0)
                die("-t '%s': expected 1..256 threads", optarg);
            break;
        case O_JSON:
            cfg->json = true;
            break;
        case 'q':
            cfg->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        usage(stderr);
        die("unexpected argument '%s'", argv[optind]);
    }
    if (!cfg->url) {
        usage(stderr);
        die("--url is required");
    }
    if (idle + churn + rate + fanout > 1)
        die("--idle, --churn, --rate and --fanout exclude each other");
    cfg->mode = idle     ? MODE_IDLE
                : churn  ? MODE_CHURN
                : rate   ? MODE_OPEN
                : fanout ? MODE_FANOUT
                         : MODE_CLOSED;
    if (fanout && cfg->binary)
        die("--fanout takes text messages (wsecho pushes text): drop --binary");
    if (fanout && cfg->size < PUSH_HEAD)
        die("--fanout needs -s %d or more: the size of the pushed messages", PUSH_HEAD);
    if (cfg->threads > cfg->conns)
        cfg->threads = cfg->conns;
    parse_url(cfg);
    if (cfg->nsources && cfg->addr.ss_family != AF_INET)
        die("--sources needs an IPv4 server address");
}

static void make_template(struct run *r, struct bu_rand *rng)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const struct config *cfg = r->cfg;
    const uint8_t op = cfg->binary ? WS_OP_BINARY : WS_OP_TEXT;

    r->tmpl = malloc(cfg->size ? cfg->size : 1);
    if (!r->tmpl)
        die("out of memory");
    bu_rand_bytes(rng, r->tmpl, cfg->size);
    if (!cfg->binary) {
        /* Text must be valid UTF-8 (RFC 6455 §5.6): plain ASCII is. */
        for (uint64_t i = 0; i < cfg->size; i++)
            r->tmpl[i] = (uint8_t)alnum[r->tmpl[i] % (sizeof(alnum) - 1)];
    }
    if (cfg->mode == MODE_FANOUT) {
        /* wsecho's pushes: the header, then byte i is 'a' + i % 26. */
        r->hlen = PUSH_HEAD;
        r->seq_syms = 0;
        for (uint64_t i = 0; i < cfg->size; i++)
            r->tmpl[i] = (uint8_t)('a' + i % 26);
    } else if (cfg->size >= HEAD_FULL) {
        r->hlen = HEAD_FULL;
        r->seq_syms = SEQ_SYMS_FULL;
    } else {
        r->hlen = cfg->size < SEQ_SYMS_SHORT ? (unsigned)cfg->size : SEQ_SYMS_SHORT;
        r->seq_syms = r->hlen;
    }
    r->seq_mod = 1ULL << (6 * r->seq_syms);
    /* The header without its last 4 bytes, the key, which changes per frame. */
    r->fhlen =
        (unsigned)ws_frame_write(r->fhead, true, op, (const uint8_t *)"\0\0\0\0", cfg->size) - 4;
    r->flen = r->fhlen + 4 + (size_t)cfg->size;
    r->whole = cfg->size <= WHOLE_MAX;
    r->ehlen = (unsigned)ws_frame_write(r->ehead, true, op, NULL, cfg->size);
    r->eflen = r->ehlen + (size_t)cfg->size;
}

static void setup_worker(struct worker *w, struct run *r, unsigned id)
{
    const struct config *cfg = r->cfg;
    uint64_t ring_want;

    w->run = r;
    w->cfg = cfg;
    w->id = id;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    if (bu_rand_init(&w->rng) < 0)
        die("getrandom: %s", strerror(errno));
    if (bu_pool_init(&w->inpool, IN_CAP, POOL_SPARE) < 0 ||
        bu_pool_init(&w->outpool, OUT_CAP, POOL_SPARE) < 0)
        die("out of memory");
    w->rules.from_client = false;
    w->rules.max_frame = cfg->size;
    w->rules.max_message = cfg->size;
    w->max_handshaking = (unsigned)(MAX_HANDSHAKES / cfg->threads);
    if (w->max_handshaking == 0)
        w->max_handshaking = 1;
    w->nconns = cfg->conns / cfg->threads + (id < cfg->conns % cfg->threads ? 1 : 0);
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    if (!w->conns)
        die("out of memory");
    w->live = w->nconns;
    if (cfg->mode == MODE_OPEN)
        w->interval = 1e9 * (double)cfg->threads / cfg->rate;
    ring_want = cfg->mode == MODE_CLOSED ? cfg->inflight : cfg->mode == MODE_OPEN ? 64 : 2;
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];

        c->w = w;
        c->id = id + i * cfg->threads;
        reset_conn(c);
        ring_init(c, ring_want);
        push_start(w, c);
    }
}

static void destroy_worker(struct worker *w)
{
    for (size_t i = 0; i < w->nconns; i++) {
        close_fd(w, &w->conns[i]);
        free(w->conns[i].ring);
    }
    free(w->conns);
    bu_pool_destroy(&w->inpool);
    bu_pool_destroy(&w->outpool);
    close(w->epfd);
}

static void report(const struct run *r, struct worker *ws)
{
    const struct config *cfg = r->cfg;
    static uint64_t hist[HIST_BUCKETS];
    uint64_t messages = 0, sent = 0, received = 0, max = 0, t0, tstop, mstart, mns;
    double dur, mps, mbps;
    uint64_t p50, p90, p99, p999;

    for (unsigned long t = 0; t < cfg->threads; t++) {
        messages += ws[t].messages;
        sent += ws[t].sent;
        received += ws[t].received;
        if (ws[t].lat_max > max)
            max = ws[t].lat_max;
        for (unsigned i = 0; i < HIST_BUCKETS; i++)
            hist[i] += ws[t].hist[i];
    }
    t0 = atomic_load(&r->t_start);
    tstop = atomic_load(&r->t_stop);
    if (cfg->mode == MODE_IDLE) {
        mstart = atomic_load(&r->t_ready);
        mns = tstop > mstart ? tstop - mstart : 0;
    } else {
        mstart = t0 + secs(cfg->warmup);
        mns = t0 && tstop > mstart ? tstop - mstart : 0;
    }
    dur = (double)mns / 1e9;
    mps = dur > 0 ? (double)messages / dur : 0;
    mbps = mps * (double)cfg->size / 1e6;
    p50 = hist_pct(hist, messages, 0.50, max);
    p90 = hist_pct(hist, messages, 0.90, max);
    p99 = hist_pct(hist, messages, 0.99, max);
    p999 = hist_pct(hist, messages, 0.999, max);
    if (cfg->json) {
        printf("{\"mode\":\"%s\",\"url\":\"", mode_names[cfg->mode]);
        for (const char *q = cfg->url; *q; q++) {
            if (*q == '"' || *q == '\\')
                putchar('\\');
            putchar(*q);
        }
        printf("\",\"connections\":%lu,\"inflight\":%lu,\"size\":%llu,\"binary\":%s,"
               "\"threads\":%lu,\"duration_s\":%.3f,\"messages\":%llu,\"msgs_per_s\":%.1f,"
               "\"mb_per_s\":%.3f,",
               cfg->conns,
               cfg->mode == MODE_CLOSED                             ? cfg->inflight
               : cfg->mode == MODE_OPEN || cfg->mode == MODE_FANOUT ? 0
                                                                    : 1,
               (unsigned long long)cfg->size, cfg->binary ? "true" : "false", cfg->threads, dur,
               (unsigned long long)messages, mps, mbps);
        if (cfg->mode == MODE_OPEN)
            printf("\"rate\":%.1f,", cfg->rate);
        printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
               "\"max\":%.1f},",
               us(p50), us(p90), us(p99), us(p999), us(max));
        if (cfg->mode == MODE_CHURN)
            printf("\"connects_per_s\":%.1f,", mps);
        printf("\"sent\":%llu,\"received\":%llu,\"errors\":0}\n", (unsigned long long)sent,
               (unsigned long long)received);
    } else {
        printf("wsbench %s: %s, %lu connection%s", mode_names[cfg->mode], cfg->url, cfg->conns,
               cfg->conns > 1 ? "s" : "");
        if (cfg->mode == MODE_CLOSED)
            printf(" x %lu in flight", cfg->inflight);
        if (cfg->mode == MODE_OPEN)
            printf(", %.0f msg/s offered", cfg->rate);
        printf(", %llu B %s, %lu thread%s\n", (unsigned long long)cfg->size,
               cfg->binary ? "binary" : "text", cfg->threads, cfg->threads > 1 ? "s" : "");
        if (cfg->mode == MODE_CHURN)
            printf("  cycles    %llu in %.2f s: %.1f connects/s (connect, upgrade, echo, "
                   "close)\n",
                   (unsigned long long)messages, dur, mps);
        else if (cfg->mode == MODE_IDLE)
            printf("  held      %lu connections for %.2f s\n", cfg->conns, dur);
        else
            printf("  messages  %llu in %.2f s: %.1f msg/s, %.3f MB/s payload one way\n",
                   (unsigned long long)messages, dur, mps, mbps);
        printf("  %s us  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
               cfg->mode == MODE_CHURN ? "cycle  " : "latency", us(p50), us(p90), us(p99), us(p999),
               us(max));
        printf("  errors    0\n");
    }
    if (fflush(stdout) != 0)
        die("stdout: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    static struct config cfg;
    static struct run r;
    struct worker *ws;
    struct sigaction sa;
    struct bu_rand rng;
    unsigned long nofile;

    sym_init();
    parse_args(&cfg, argc, argv);
    nofile = bu_raise_nofile();
    if (cfg.conns + 16 > nofile)
        die("%lu connections need more file descriptors than the limit of %lu", cfg.conns, nofile);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        die("sigaction: %s", strerror(errno));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        die("sigaction: %s", strerror(errno));
    /* Open-loop sends are timed to the microsecond; the default 50 us timer
     * slack would add to every measured latency. */
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
        die("prctl: %s", strerror(errno));
    r.cfg = &cfg;
    if (bu_rand_init(&rng) < 0)
        die("getrandom: %s", strerror(errno));
    make_template(&r, &rng);
    r.origin = bu_now_ns();
    if (cfg.mode == MODE_CHURN)
        atomic_store(&r.t_start, r.origin);
    ws = calloc(cfg.threads, sizeof(*ws));
    if (!ws)
        die("out of memory");
    for (unsigned long t = 0; t < cfg.threads; t++)
        setup_worker(&ws[t], &r, (unsigned)t);
    info(&cfg, "%s: %lu connection%s to %s", mode_names[cfg.mode], cfg.conns,
         cfg.conns > 1 ? "s" : "", cfg.url);
    for (unsigned long t = 1; t < cfg.threads; t++) {
        int rc = pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    worker_main(&ws[0]);
    for (unsigned long t = 1; t < cfg.threads; t++) {
        int rc = pthread_join(ws[t].thread, NULL);
        if (rc != 0)
            die("pthread_join: %s", strerror(rc));
    }
    if (atomic_load(&r.t_stop) == 0) {
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&r.t_stop, &zero, bu_now_ns());
    }
    report(&r, ws);
    for (unsigned long t = 0; t < cfg.threads; t++)
        destroy_worker(&ws[t]);
    free(ws);
    free(r.tmpl);
    free(cfg.sources);
    return 0;
}
