/* wsecho: a single-threaded WebSocket echo server for benchmarks.
 *
 *   wsecho --listen 127.0.0.1:9000
 *
 * Prints "listening ADDR:PORT" on stdout once it accepts connections. Each
 * client frame is echoed as it arrives, frame by frame (same opcode and FIN,
 * unmasked), with no reassembly: a 64 MiB frame streams through a 64 KiB
 * input buffer, and a connection whose output queue holds more than 1 MiB is
 * not read until it drains. Pings get pongs, a close gets a close with the
 * same code and then the server closes the TCP connection (RFC 6455 §7.1.1:
 * the server closes first). SIGTERM or SIGINT stops it.
 *
 * With --push-interval MS it also pushes: every MS milliseconds each open
 * connection gets one text message of --push-size bytes that starts with
 * its sequence number on that connection and its send time (see
 * push_queue). Connections are spread over the interval (see push_join):
 * a chat room, not a thundering herd.
 *
 * A GET without an Upgrade field is a plain HTTP request (for the HTTP
 * rows of bench-compare): it is answered on the kept-alive connection
 * with 200 and a body of `size` bytes from its query (?size=N, 0 to
 * PLAIN_MAX; 1024 without one), and the connection waits for the next
 * request. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"
#include "core/err.h"
#include "ws/frame.h"

#define IN_CAP       (64 * 1024)                /* input buffer bytes per busy connection */
#define OUT_HIGH     (1024 * 1024)              /* queued output bytes above which reading stops */
#define OUT_CAP      (OUT_HIGH + IN_CAP + 4096) /* output buffer bytes: one more read fits */
#define POOL_SPARE   256                        /* spare buffers kept per pool */
#define MAX_EVENTS   512                        /* epoll events per wait */
#define ACCEPT_BATCH 256                        /* accepts per listen-socket wakeup */
#define LINGER_NS    (5 * 1000000000ULL)        /* wait for the client's FIN after ours */
#define PAUSE_NS     (100 * 1000000ULL)         /* accept pause after EMFILE */
#define SWEEP_NS     (1000 * 1000000ULL)        /* linger timeout sweep interval */
#define HEAD_MAX     (IN_CAP - 1)               /* longest upgrade request head */
#define PUSH_HEAD    32           /* push payload: 16 hex digits of sequence, 16 of time */
#define PUSH_MAX     (64 * 1024)  /* largest --push-size */
#define SLOT_NS      1000000ULL   /* aimed-for width of a push slot: 1 ms */
#define SLOTS_MAX    4096         /* push slots per interval, at most */
#define PLAIN_MAX    (256 * 1024) /* largest plain HTTP response body */

enum cstate {
    ST_HANDSHAKE, /* reading the upgrade request */
    ST_OPEN,      /* echoing frames */
    ST_CLOSING,   /* last bytes queued (close frame or HTTP error): flush, then FIN */
    ST_LINGER,    /* FIN sent: discard input until the client's FIN or a timeout */
    ST_DEAD,      /* fd closed; freed at the end of the loop iteration */
};

struct conn {
    int fd;
    enum cstate state;
    bool can_read;      /* edge seen, EAGAIN not yet */
    bool rdhup;         /* the peer's FIN or an error was reported: read to the end */
    bool can_write;     /* edge seen, EAGAIN or short write not yet */
    bool queued;        /* on the ready list */
    bool in_payload;    /* inside a data frame's payload */
    struct bu_buf in;   /* bytes read, not yet echoed */
    struct bu_buf out;  /* bytes to send */
    uint64_t left;      /* payload bytes of the current data frame still to echo */
    uint64_t off;       /* payload bytes of the current data frame echoed (mask phase) */
    uint8_t key[4];     /* masking key of the current data frame */
    struct ws_seq seq;  /* fragmentation state of the client's messages */
    uint64_t deadline;  /* ST_LINGER: monotonic ns at which the fd is closed anyway */
    uint64_t push_seq;  /* push mode: messages pushed on this connection */
    bool push_due;      /* push mode: a push waits for a frame boundary or room */
    bool on_slot;       /* push mode: on slot list `slot` */
    unsigned slot;      /* push mode: its phase, in slots after the interval's start */
    struct conn *pprev; /* push mode: slot list */
    struct conn *pnext; /* push mode: slot list */
    struct conn *next;  /* ready list or dead list */
    struct conn *lprev; /* list of all live connections */
    struct conn *lnext; /* list of all live connections */
};

/* Push mode. The interval is cut into nslots slots of about SLOT_NS; each
 * connection belongs to one slot, its phase. A cursor walks the slots in
 * time order and pushes to every connection of each slot it passes: one
 * loop timeout for all connections, no timer per connection. */
struct push {
    uint64_t interval;   /* ns between two pushes on one connection; 0: push mode off */
    size_t size;         /* payload bytes per push */
    size_t hlen;         /* header bytes of frame */
    size_t flen;         /* bytes of frame */
    unsigned nslots;     /* slots per interval */
    struct conn **slots; /* nslots lists of connections */
    uint64_t t0;         /* monotonic ns: slot 0 of round 0 */
    uint64_t round;      /* the cursor: interval number */
    unsigned cur;        /* the cursor: next slot to push */
    uint64_t joined;     /* connections ever put on a slot */
    unsigned long n;     /* connections on slots */
    uint8_t frame[WS_MAX_HEADER + PUSH_MAX]; /* the frame: header and filler */
};

struct server {
    int epfd;
    int lfd;
    struct bu_pool inpool;  /* IN_CAP-byte buffers */
    struct bu_pool outpool; /* OUT_CAP-byte buffers */
    struct conn *ready;     /* connections to service without a new event */
    struct conn *dead;      /* closed connections to free after this iteration */
    struct conn *all;       /* every live connection */
    struct ws_rules rules;  /* client-frame rules for ws_frame_check */
    uint64_t accept_resume; /* 0, or when to re-enable accepting after EMFILE */
    uint64_t last_sweep;    /* monotonic ns of the last linger sweep */
    unsigned long nconns;   /* live connections */
    bool quiet;             /* no warnings on stderr */
    struct push push;       /* push mode */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void warn_errno(const struct server *s, const char *what)
{
    if (!s->quiet)
        fprintf(stderr, "wsecho: %s: %s\n", what, strerror(errno));
}

static void enqueue(struct server *s, struct conn *c)
{
    if (c->queued || c->state == ST_DEAD)
        return;
    c->queued = true;
    c->next = s->ready;
    s->ready = c;
}

/* ---- push mode */

/* Give c a phase and put it on that slot's list. The k-th connection gets
 * the fraction k x (golden ratio - 1) of the interval, modulo 1 (a Weyl
 * sequence): however many connections there are, their phases stay close
 * to evenly spread (at most three distinct gaps between neighbours), which
 * a plain k mod nslots would not give a few connections. */
static void push_join(struct server *s, struct conn *c)
{
    struct push *p = &s->push;
    uint64_t frac = p->joined++ * 0x9e3779b97f4a7c15u; /* 2^64 / golden ratio, odd */

    c->slot = (unsigned)(((frac >> 32) * p->nslots) >> 32);
    c->pprev = NULL;
    c->pnext = p->slots[c->slot];
    if (c->pnext)
        c->pnext->pprev = c;
    p->slots[c->slot] = c;
    c->on_slot = true;
    p->n++;
}

static void push_leave(struct server *s, struct conn *c)
{
    struct push *p = &s->push;

    if (!c->on_slot)
        return;
    if (c->pprev)
        c->pprev->pnext = c->pnext;
    else
        p->slots[c->slot] = c->pnext;
    if (c->pnext)
        c->pnext->pprev = c->pprev;
    c->on_slot = false;
    p->n--;
}

static void kill_conn(struct server *s, struct conn *c)
{
    if (c->state == ST_DEAD)
        return;
    /* close(2) also removes the fd from the epoll set. Its error is not
     * actionable: the descriptor is released either way. */
    close(c->fd);
    c->fd = -1;
    c->state = ST_DEAD;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        s->all = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    s->nconns--;
    push_leave(s, c);
    /* Freed after the loop iteration: the ready list may still name it. */
    if (!c->queued) {
        c->next = s->dead;
        s->dead = c;
    }
}

static void free_conn(struct server *s, struct conn *c)
{
    bu_buf_drop(&s->inpool, &c->in);
    bu_buf_drop(&s->outpool, &c->out);
    free(c);
}

/* Room for need bytes at the end of the output buffer, taking one when none
 * is held. Returns a pointer to the free space, or NULL when the buffer
 * cannot take need bytes now (it drains first) or memory is short. */
static uint8_t *out_room(struct server *s, struct conn *c, size_t need, size_t *room)
{
    if (bu_buf_take(&s->outpool, &c->out) < 0)
        return NULL;
    *room = bu_buf_room(&s->outpool, &c->out, need);
    if (*room < need)
        return NULL;
    return c->out.p + c->out.tail;
}

/* Queue an unmasked control frame; false when the output has no room yet. */
static bool queue_control(struct server *s, struct conn *c, uint8_t op, const uint8_t *p, size_t n)
{
    size_t room;
    uint8_t *o = out_room(s, c, WS_MAX_HEADER + n, &room);
    size_t h;

    if (!o)
        return false;
    h = ws_frame_write(o, true, op, NULL, n);
    memcpy(o + h, p, n);
    c->out.tail += h + n;
    return true;
}

/* Queue raw bytes (an HTTP response); kills the connection when they do not fit. */
static void queue_raw(struct server *s, struct conn *c, const char *p, size_t n)
{
    size_t room;
    uint8_t *o = out_room(s, c, n, &room);

    if (!o) {
        kill_conn(s, c);
        return;
    }
    memcpy(o, p, n);
    c->out.tail += n;
}

static void fail_ws(struct server *s, struct conn *c, unsigned code)
{
    uint8_t pl[2] = {(uint8_t)(code >> 8), (uint8_t)code};

    if (!queue_control(s, c, WS_OP_CLOSE, pl, sizeof(pl))) {
        kill_conn(s, c);
        return;
    }
    c->state = ST_CLOSING;
}

static void fail_http(struct server *s, struct conn *c, const char *status)
{
    char resp[160];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status);

    queue_raw(s, c, resp, (size_t)n);
    if (c->state != ST_DEAD)
        c->state = ST_CLOSING;
}

static const uint8_t plain_body[PLAIN_MAX];

/* Answer a plain GET whose head p[0..hlen) has no Upgrade field: 200 with
 * ?size=N bytes. Returns hlen, or 0 when the output has no room yet (the
 * request stays in the input) or the connection failed. */
static size_t plain(struct server *s, struct conn *c, const char *p, size_t hlen)
{
    const char *sp = memchr(p, ' ', hlen), *q, *end, *conn;
    bool close_after;
    unsigned long size = 1024;
    size_t room, cl;
    char head[160];
    int hn;
    uint8_t *o;

    end = memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - p));
    for (q = sp + 1; end && q + 5 < end; q++) {
        if ((q[0] == '?' || q[0] == '&') && memcmp(q + 1, "size=", 5) == 0) {
            size = strtoul(q + 6, NULL, 10);
            break;
        }
    }
    if (size > PLAIN_MAX) {
        fail_http(s, c, "400 Bad Request");
        return 0;
    }
    conn = bu_http_header(p, hlen, "Connection", &cl);
    close_after = conn && bu_has_token(conn, cl, "close");
    hn = snprintf(head, sizeof(head),
                  "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  "Content-Length: %lu\r\n%s\r\n",
                  size, close_after ? "Connection: close\r\n" : "");
    o = out_room(s, c, (size_t)hn + size, &room);
    if (!o)
        return 0;
    memcpy(o, head, (size_t)hn);
    memcpy(o + hn, plain_body, size);
    c->out.tail += (size_t)hn + size;
    if (close_after)
        c->state = ST_CLOSING;
    return hlen;
}

/* Parse the upgrade request at the start of the input; on success queue the
 * 101 response and return the head's length, else 0 (incomplete, or failed
 * with the state changed). */
static size_t handshake(struct server *s, struct conn *c)
{
    const char *p = (const char *)c->in.p + c->in.head;
    size_t n = bu_buf_len(&c->in), hlen, klen, ulen, vlen, plen = 0, tlen;
    const char *key, *up, *ver, *proto;
    char accept[BU_ACCEPT_LEN + 1], resp[512], ptoken[128];
    int rn;

    hlen = bu_http_head_end((const uint8_t *)p, n);
    if (hlen == 0) {
        if (n >= HEAD_MAX)
            fail_http(s, c, "431 Request Header Fields Too Large");
        return 0;
    }
    if (hlen < 4 || memcmp(p, "GET ", 4) != 0) {
        fail_http(s, c, "405 Method Not Allowed");
        return 0;
    }
    key = bu_http_header(p, hlen, "Sec-WebSocket-Key", &klen);
    up = bu_http_header(p, hlen, "Upgrade", &ulen);
    if (!up)
        return plain(s, c, p, hlen);
    ver = bu_http_header(p, hlen, "Sec-WebSocket-Version", &vlen);
    if (!key || klen == 0 || !up || !bu_has_token(up, ulen, "websocket") || !ver || vlen != 2 ||
        memcmp(ver, "13", 2) != 0) {
        fail_http(s, c, "400 Bad Request");
        return 0;
    }
    bu_ws_accept(key, klen, accept);
    /* RFC 6455 §4.2.2: the server picks one of the offered subprotocols;
     * an echo server takes the first. */
    proto = bu_http_header(p, hlen, "Sec-WebSocket-Protocol", &plen);
    ptoken[0] = '\0';
    if (proto) {
        tlen = 0;
        while (tlen < plen && proto[tlen] != ',' && proto[tlen] != ' ' && proto[tlen] != '\t')
            tlen++;
        if (tlen >= sizeof(ptoken)) {
            fail_http(s, c, "400 Bad Request");
            return 0;
        }
        memcpy(ptoken, proto, tlen);
        ptoken[tlen] = '\0';
    }
    rn = snprintf(resp, sizeof(resp),
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                  accept, ptoken[0] ? "Sec-WebSocket-Protocol: " : "", ptoken,
                  ptoken[0] ? "\r\n" : "");
    queue_raw(s, c, resp, (size_t)rn);
    if (c->state == ST_DEAD)
        return 0;
    c->state = ST_OPEN;
    if (s->push.interval)
        push_join(s, c);
    return hlen;
}

/* Control frame whose payload p[0..n) is still masked with h->mask. */
static bool control(struct server *s, struct conn *c, const struct ws_frame_hdr *h, uint8_t *p)
{
    uint8_t pl[WS_MAX_CONTROL];

    memcpy(pl, p, h->len);
    ws_mask(pl, h->len, h->mask, 0);
    switch (h->opcode) {
    case WS_OP_PING:
        return queue_control(s, c, WS_OP_PONG, pl, h->len);
    case WS_OP_PONG:
        return true;
    default:
        /* RFC 6455 §5.5.1: a close payload is empty or starts with a 2-byte
         * code; one byte is a protocol error. */
        if (h->len == 1) {
            fail_ws(s, c, 1002);
            return true;
        }
        if (!queue_control(s, c, WS_OP_CLOSE, pl, h->len >= 2 ? 2 : 0))
            return false;
        c->state = ST_CLOSING;
        return true;
    }
}

/* dst[0..n) = src[0..n) unmasked with key from key phase 0, in one pass. */
static void unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    uint64_t kw, v;
    uint32_t k;
    size_t i = 0;

    if (n > 256) {
        /* Long runs: the codec's loop, which aligns and unrolls. */
        memcpy(dst, src, n);
        ws_mask(dst, n, key, 0);
        return;
    }
    memcpy(&k, key, sizeof(k));
    kw = (uint64_t)k << 32 | k; /* 8 bytes at key phase 0 */
    /* Four words per step: independent, so they overlap. */
    for (; i + 32 <= n; i += 32) {
        uint64_t v0, v1, v2, v3;

        memcpy(&v0, src + i, 8);
        memcpy(&v1, src + i + 8, 8);
        memcpy(&v2, src + i + 16, 8);
        memcpy(&v3, src + i + 24, 8);
        v0 ^= kw;
        v1 ^= kw;
        v2 ^= kw;
        v3 ^= kw;
        memcpy(dst + i, &v0, 8);
        memcpy(dst + i + 8, &v1, 8);
        memcpy(dst + i + 16, &v2, 8);
        memcpy(dst + i + 24, &v3, 8);
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, src + i, 8);
        v ^= kw;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* The common case: whole frames back to back at in[0..n), each a complete
 * unfragmented text or binary message (FIN, no RSV bit, masked, a length
 * below 64 KiB in its shortest form), outside any fragmented message. Such
 * a frame passes every rule ws_frame_check applies there and leaves the
 * sequencing state as it was, so it is echoed without the codec: header
 * and unmasked payload straight into the output. Stops at the first other
 * frame (control, fragment, unmasked, long, partial) and returns the bytes
 * taken; 0 too when the output cannot take n bytes now. */
static size_t whole_frames(struct server *s, struct conn *c, const uint8_t *in, size_t n)
{
    size_t room, pos = 0;
    uint8_t *o = out_room(s, c, n, &room), *start = o;

    /* An echo is 4 bytes shorter than its frame (no key): n bytes of room
     * hold the echoes of everything in the input. */
    if (!o)
        return 0;
    while (n - pos >= 6) {
        const uint8_t *f = in + pos;
        size_t len, hl, ol;

        if (f[0] != (0x80 | WS_OP_TEXT) && f[0] != (0x80 | WS_OP_BINARY))
            break;
        if (f[1] >= 0x80 && f[1] < 0x80 + 126) {
            len = f[1] & 0x7f;
            hl = 6;
            ol = 2;
        } else if (f[1] == 0x80 + 126 && n - pos >= 8 && (f[2] << 8 | f[3]) >= 126) {
            len = (size_t)(f[2] << 8 | f[3]);
            hl = 8;
            ol = 4;
        } else {
            break;
        }
        if (n - pos < hl + len)
            break;
        memcpy(o, f, ol);
        o[1] &= 0x7f; /* the mask bit */
        unmask_copy(o + ol, f + hl, len, f + hl - 4);
        o += ol + len;
        pos += hl + len;
    }
    c->out.tail += (size_t)(o - start);
    return pos;
}

/* Echo what the input holds, as far as the output has room. */
static void process(struct server *s, struct conn *c)
{
    uint8_t *in = c->in.p;
    size_t pos, end = c->in.tail;

    /* Plain requests leave the state as it is: answer each in turn. */
    while (c->state == ST_HANDSHAKE) {
        bool was_plain;
        size_t hl;
        if (bu_buf_len(&c->in) == 0)
            return;
        hl = handshake(s, c);
        if (hl == 0)
            return;
        was_plain = c->state == ST_HANDSHAKE;
        c->in.head += hl;
        if (!was_plain)
            break;
    }
    pos = c->in.head;
    while (c->state == ST_OPEN && pos < end) {
        struct ws_frame_hdr h;
        uint8_t op, *o;
        size_t room;
        int rc;

        if (!c->in_payload && c->seq.msg_op == 0) {
            size_t n = whole_frames(s, c, in + pos, end - pos);

            pos += n;
            if (pos == end)
                break;
        }
        if (c->in_payload) {
            size_t n = end - pos;

            o = out_room(s, c, 1, &room);
            if (!o)
                break;
            if (n > c->left)
                n = (size_t)c->left;
            if (n > room)
                n = room;
            /* RFC 6455 §5.3: unmask with the key phase of this offset. */
            memcpy(o, in + pos, n);
            ws_mask(o, n, c->key, c->off);
            c->out.tail += n;
            pos += n;
            c->off += n;
            c->left -= n;
            if (c->left == 0)
                c->in_payload = false;
            continue;
        }
        rc = ws_frame_parse(in + pos, end - pos, &h);
        if (rc == ERR_AGAIN)
            break;
        if (rc < 0) {
            fail_ws(s, c, 1002);
            break;
        }
        if (h.opcode & 0x8) {
            rc = ws_frame_check(&c->seq, &s->rules, &h, &op);
            if (rc < 0) {
                fail_ws(s, c, 1002);
                break;
            }
            /* Control payloads are at most 125 bytes: wait for all of it. */
            if (end - pos < h.hlen + h.len)
                break;
            if (!control(s, c, &h, in + pos + h.hlen))
                break;
            pos += h.hlen + (size_t)h.len;
            continue;
        }
        /* Room for the header first, so the sequencing state only advances
         * for a frame whose echo starts now. */
        o = out_room(s, c, WS_MAX_HEADER, &room);
        if (!o)
            break;
        rc = ws_frame_check(&c->seq, &s->rules, &h, &op);
        if (rc < 0) {
            fail_ws(s, c, 1002);
            break;
        }
        c->out.tail += ws_frame_write(o, h.fin, h.opcode, NULL, h.len);
        pos += h.hlen;
        c->left = h.len;
        c->off = 0;
        memcpy(c->key, h.mask, 4);
        c->in_payload = h.len > 0;
    }
    if (c->state == ST_DEAD)
        return;
    c->in.head = pos;
    if (c->state != ST_HANDSHAKE && c->state != ST_OPEN)
        c->in.head = c->in.tail; /* nothing after a close is echoed */
}

/* Read and throw away input until EAGAIN or EOF (after our FIN). */
static void discard(struct server *s, struct conn *c)
{
    uint8_t scratch[16384];

    for (;;) {
        ssize_t n = read(c->fd, scratch, sizeof(scratch));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->can_read = false;
            return;
        }
        kill_conn(s, c);
        return;
    }
}

static void flush(struct server *s, struct conn *c)
{
    size_t len = bu_buf_len(&c->out);
    ssize_t n;

    if (len == 0 || !c->can_write)
        return;
    n = send(c->fd, c->out.p + c->out.head, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            c->can_write = errno == EINTR;
            return;
        }
        kill_conn(s, c);
        return;
    }
    c->out.head += (size_t)n;
    if ((size_t)n < len)
        c->can_write = false;
}

/* v as 16 lowercase hex digits at o. */
static void hex16(uint8_t *o, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, v >>= 4)
        o[i] = (uint8_t)digits[v & 15];
}

/* Queue c's next push: the frame template with the sequence number and the
 * send time (CLOCK_MONOTONIC ns, read now) written in hex, ASCII so the
 * text stays valid UTF-8. Left due (push_due) while the output is inside
 * an echo (mid-frame, or between the fragments of a message: RFC 6455 §5.4
 * forbids interleaving another message there) or above OUT_HIGH; service()
 * tries again. One push is owed at most: a connection that cannot take
 * them loses the rest, which shows as a short message count. */
static void push_queue(struct server *s, struct conn *c)
{
    const struct push *p = &s->push;
    size_t room;
    uint8_t *o;

    c->push_due = true;
    if (c->state != ST_OPEN || c->in_payload || c->seq.msg_op != 0 ||
        bu_buf_len(&c->out) >= OUT_HIGH)
        return;
    o = out_room(s, c, p->flen, &room);
    if (!o)
        return;
    memcpy(o, p->frame, p->flen);
    hex16(o + p->hlen, c->push_seq);
    hex16(o + p->hlen + 16, bu_now_ns());
    c->out.tail += p->flen;
    c->push_seq++;
    c->push_due = false;
}

/* Monotonic ns at which the cursor's slot is due. */
static uint64_t slot_due(const struct push *p)
{
    return p->t0 + p->round * p->interval + (uint64_t)p->cur * p->interval / p->nslots;
}

/* Push to the connections of every slot that is due at now; returns the
 * ms until the next slot is due (rounded up), at most max_ms. */
static int push_run(struct server *s, uint64_t now, int max_ms)
{
    struct push *p = &s->push;
    uint64_t due;

    if (now >= slot_due(p) + p->interval) {
        /* More than a whole interval behind (the process was stopped):
         * skip the missed rounds instead of pushing them all at once. */
        p->round = (now - p->t0) / p->interval;
        p->cur = 0;
    }
    while ((due = slot_due(p)) <= now) {
        for (struct conn *c = p->slots[p->cur], *next; c; c = next) {
            next = c->pnext; /* flush may kill c, which takes it off the list */
            if (c->state != ST_OPEN)
                continue; /* closing: service() owns its output */
            push_queue(s, c);
            flush(s, c);
            if (c->state != ST_DEAD && bu_buf_len(&c->out) == 0)
                bu_buf_drop(&s->outpool, &c->out);
        }
        if (++p->cur == p->nslots) {
            p->cur = 0;
            p->round++;
        }
    }
    if (p->n == 0)
        return max_ms;
    due = (due - now + 999999) / 1000000;
    return due < (uint64_t)max_ms ? (int)due : max_ms;
}

static void service(struct server *s, struct conn *c)
{
    /* Plain requests left waiting for output room. */
    if (c->state == ST_HANDSHAKE && bu_buf_len(&c->in) > 0 && bu_buf_len(&c->out) < OUT_HIGH)
        process(s, c);
    if (c->state == ST_DEAD)
        return;
    while (c->can_read && (c->state == ST_HANDSHAKE || c->state == ST_OPEN)) {
        size_t room;
        ssize_t n;

        if (bu_buf_len(&c->out) >= OUT_HIGH)
            break;
        if (bu_buf_take(&s->inpool, &c->in) < 0) {
            kill_conn(s, c);
            return;
        }
        /* Leftovers are a partial header or payload the output had no room
         * for; moving them keeps the whole buffer for the next read. */
        room = bu_buf_room(&s->inpool, &c->in, IN_CAP);
        if (room == 0)
            break;
        n = read(c->fd, c->in.p + c->in.tail, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                c->can_read = false;
                break;
            }
            kill_conn(s, c);
            return;
        }
        if (n == 0) {
            /* The client left without a close handshake. */
            kill_conn(s, c);
            return;
        }
        c->in.tail += (size_t)n;
        /* A short read emptied the socket: with edge-triggered epoll, data
         * arriving later raises a new event, so the EAGAIN read that would
         * confirm it is skipped (as nginx does). Not once the FIN was seen:
         * no event would come for the EOF still to read. */
        if ((size_t)n < room && !c->rdhup)
            c->can_read = false;
        process(s, c);
        if (c->state == ST_DEAD)
            return;
    }
    if (bu_buf_len(&c->in) == 0)
        bu_buf_drop(&s->inpool, &c->in);
    if (c->push_due)
        push_queue(s, c);
    flush(s, c);
    if (c->state == ST_DEAD)
        return;
    if (bu_buf_len(&c->out) == 0) {
        bu_buf_drop(&s->outpool, &c->out);
        if (c->state == ST_CLOSING) {
            /* RFC 6455 §7.1.1: the server closes the TCP connection first;
             * reading on until the client's FIN avoids a reset. */
            if (shutdown(c->fd, SHUT_WR) < 0) {
                kill_conn(s, c);
                return;
            }
            c->state = ST_LINGER;
            c->deadline = bu_now_ns() + LINGER_NS;
            bu_buf_drop(&s->inpool, &c->in);
        }
    }
    if (c->state == ST_LINGER) {
        if (c->can_read)
            discard(s, c);
        return;
    }
    /* Reading stopped on a full output queue that has drained since, with
     * no new edge to come: go again on the next pass. */
    if (c->can_read && c->can_write && (c->state == ST_HANDSHAKE || c->state == ST_OPEN) &&
        bu_buf_len(&c->out) < OUT_HIGH)
        enqueue(s, c);
}

static void accept_conns(struct server *s)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct epoll_event ev;
        struct conn *c;
        int one = 1, fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment instead of
                 * spinning on a level-triggered listen socket. */
                warn_errno(s, "accept");
                ev.events = 0;
                ev.data.ptr = NULL;
                if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd, &ev) < 0)
                    warn_errno(s, "epoll_ctl");
                s->accept_resume = bu_now_ns() + PAUSE_NS;
                return;
            }
            warn_errno(s, "accept");
            return;
        }
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
            close(fd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = ST_HANDSHAKE;
        c->can_write = true;
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            warn_errno(s, "epoll_ctl");
            close(fd);
            free(c);
            continue;
        }
        c->lnext = s->all;
        if (s->all)
            s->all->lprev = c;
        s->all = c;
        s->nconns++;
    }
}

static void sweep(struct server *s, uint64_t now)
{
    struct epoll_event ev;

    if (s->accept_resume && now >= s->accept_resume) {
        s->accept_resume = 0;
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd, &ev) < 0)
            warn_errno(s, "epoll_ctl");
    }
    if (now - s->last_sweep < SWEEP_NS)
        return;
    s->last_sweep = now;
    for (struct conn *c = s->all, *next; c; c = next) {
        next = c->lnext;
        if (c->state == ST_LINGER && now >= c->deadline)
            kill_conn(s, c);
    }
}

static void reap(struct server *s)
{
    while (s->dead) {
        struct conn *c = s->dead;
        s->dead = c->next;
        free_conn(s, c);
    }
}

static int run(struct server *s)
{
    struct epoll_event evs[MAX_EVENTS];

    while (!stop_flag) {
        int timeout = 200, n;

        if (s->push.interval)
            timeout = push_run(s, bu_now_ns(), timeout);
        if (s->ready)
            timeout = 0;

        n = epoll_wait(s->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("wsecho: epoll_wait");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;

            if (!c) {
                accept_conns(s);
                continue;
            }
            if (c->state == ST_DEAD)
                continue;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->can_read = true;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->rdhup = true;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->can_write = true;
            service(s, c);
        }
        if (s->ready) {
            struct conn *list = s->ready;

            s->ready = NULL;
            while (list) {
                struct conn *c = list;
                list = c->next;
                c->queued = false;
                if (c->state == ST_DEAD) {
                    c->next = s->dead;
                    s->dead = c;
                    continue;
                }
                service(s, c);
            }
        }
        sweep(s, bu_now_ns());
        reap(s);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: wsecho [--listen ADDR:PORT] [--push-interval MS [--push-size N]] [--quiet]\n"
           "  --listen ADDR:PORT  address to listen on (default 127.0.0.1:9000; port 0 picks one)\n"
           "  --push-interval MS  also push one text message to each connection every MS ms\n"
           "  --push-size N       bytes per pushed message, 32 to 65536 (32)\n"
           "  --quiet             no warnings on stderr\n");
}

/* The push frame's fixed parts: header, room for the two hex fields, and
 * a filler of letters (byte i is 'a' + i % 26). Returns 0 or -1. */
static int push_init(struct push *p, unsigned long interval_ms, size_t size)
{
    p->interval = interval_ms * 1000000ULL;
    p->size = size;
    p->hlen = ws_frame_write(p->frame, true, WS_OP_TEXT, NULL, size);
    p->flen = p->hlen + size;
    for (size_t i = 0; i < size; i++)
        p->frame[p->hlen + i] = (uint8_t)('a' + i % 26);
    p->nslots = (unsigned)(p->interval / SLOT_NS);
    if (p->nslots < 1)
        p->nslots = 1;
    if (p->nslots > SLOTS_MAX)
        p->nslots = SLOTS_MAX;
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    if (!p->slots)
        return -1;
    p->t0 = bu_now_ns();
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"push-interval", required_argument, NULL, 'i'},
        {"push-size", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct server s; /* static: the push frame template is 64 KiB */
    unsigned long interval_ms = 0;
    uint64_t push_size = PUSH_HEAD;
    bool size_given = false;
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct sigaction sa;
    struct epoll_event ev;
    const char *listen_arg = "127.0.0.1:9000";
    char err[300], addr[80];
    int opt, rc;

    memset(&s, 0, sizeof(s));
    while ((opt = getopt_long(argc, argv, "l:qh", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_arg = optarg;
            break;
        case 'q':
            s.quiet = true;
            break;
        case 'i':
            if (bu_parse_uint(optarg, 1, 3600000, &interval_ms) < 0) {
                fprintf(stderr, "wsecho: --push-interval %s: want milliseconds, 1 to 3600000\n",
                        optarg);
                return 2;
            }
            break;
        case 'z':
            if (bu_parse_size(optarg, PUSH_MAX, &push_size) < 0 || push_size < PUSH_HEAD) {
                fprintf(stderr, "wsecho: --push-size %s: want %d to %d bytes\n", optarg, PUSH_HEAD,
                        PUSH_MAX);
                return 2;
            }
            size_given = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (size_given && interval_ms == 0) {
        fprintf(stderr, "wsecho: --push-size needs --push-interval\n");
        return 2;
    }
    if (bu_parse_hostport(listen_arg, &ss, &sslen, err, sizeof(err)) < 0) {
        fprintf(stderr, "wsecho: --listen %s\n", err);
        return 2;
    }
    bu_raise_nofile();
    if (bu_on_stop(on_signal) < 0) {
        perror("wsecho: sigaction");
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        perror("wsecho: sigaction");
        return 1;
    }
    s.rules.max_frame = UINT64_MAX >> 1;
    s.rules.max_message = UINT64_MAX >> 1;
    s.rules.from_client = true;
    if (bu_pool_init(&s.inpool, IN_CAP, POOL_SPARE) < 0 ||
        bu_pool_init(&s.outpool, OUT_CAP, POOL_SPARE) < 0) {
        fprintf(stderr, "wsecho: out of memory\n");
        return 1;
    }
    if (interval_ms && push_init(&s.push, interval_ms, (size_t)push_size) < 0) {
        fprintf(stderr, "wsecho: out of memory\n");
        return 1;
    }
    s.lfd = bu_listen(&ss, sslen, err, sizeof(err));
    if (s.lfd < 0) {
        fprintf(stderr, "wsecho: listen %s: %s\n", listen_arg, err);
        return 1;
    }
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0) {
        perror("wsecho: epoll_create1");
        return 1;
    }
    /* Level-triggered: a batch limit or EMFILE leaves connections queued. */
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.lfd, &ev) < 0) {
        perror("wsecho: epoll_ctl");
        return 1;
    }
    bu_format_addr(&ss, addr, sizeof(addr));
    if (printf("listening %s\n", addr) < 0 || fflush(stdout) != 0) {
        perror("wsecho: stdout");
        return 1;
    }
    s.last_sweep = bu_now_ns();
    rc = run(&s);
    /* Connections still on the ready list go to the dead list in kill_conn. */
    for (struct conn *c = s.ready; c; c = c->next)
        c->queued = false;
    s.ready = NULL;
    while (s.all)
        kill_conn(&s, s.all);
    reap(&s);
    close(s.lfd);
    close(s.epfd);
    bu_pool_destroy(&s.inpool);
    bu_pool_destroy(&s.outpool);
    free(s.push.slots);
    return rc < 0 ? 1 : 0;
}
