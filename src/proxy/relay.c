/* The WebSocket relay (RFC 6455 §5-§7) of a connection pair.
 *
 * Bytes read from a leg land in that leg's rx queue of pool buffers. They
 * are parsed frame by frame as they arrive and then written, from the same
 * buffers, to the other leg: frames to the backend are re-masked in place
 * with a fresh key, frames to the client go out unchanged. A payload is
 * never reassembled. wsgate's own frames (keepalive pings, close frames)
 * wait in the destination leg's `ctl` until the relayed stream toward it is
 * at a frame boundary.
 *
 * Timers judge a leg only by what the leg itself does. Backpressure is
 * wsgate's own doing: while wsgate holds a leg back (its queue toward the
 * other leg passed the high watermark) that leg is neither pinged nor given
 * a pong or close deadline, since its answer may sit unread behind the data
 * wsgate refuses to read; its clocks restart when reading resumes. A leg
 * that bytes wait for is judged by whether it reads at all, that is whether
 * its TCP acknowledges anything wsgate wrote (see probe()). One that takes
 * nothing while data waits is a slow consumer (for max_stall, or silent and
 * taking nothing for ping_interval + pong_timeout), closed with 1008, and
 * its peer learns why. A ping or close that waits behind data the peer is
 * still working through extends its own deadline. */
#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/err.h"
#include "proxy/session.h"
#include "proxy/transport.h"
#include "ws/close.h"

#define IOV_BATCH 64 /* buffers written per writev */

static struct leg *peer(struct leg *l)
{
    return l->is_client ? &l->s->b : &l->s->c;
}

static void flush(struct leg *dst);
static void pump(struct leg *src);

/* Arm the session's timer for `at` unless it already fires by then. Called
 * on state changes that bring a deadline forward; the timer recomputes every
 * deadline when it fires, so nothing is re-armed per message. */
static void arm_by(struct session *s, uint64_t at)
{
    if (!timer_armed(&s->timer) || s->timer.at * TIMER_TICK_MS > at)
        timer_arm(&s->w->loop.wheel, &s->timer, at);
}

/* Bytes that wait for l in wsgate: its handshake bytes, a control frame,
 * or frames relayed from the other leg. */
static bool pending(struct leg *l)
{
    return l->pre || l->ctl_len > l->ctl_off || peer(l)->queued > 0 || leg_owes(l);
}

/* Bytes wait for l and its socket took none at the last try. */
static bool stalled(struct leg *l)
{
    return l->stall_at && !l->writable && pending(l);
}

/* Measure how much of what wsgate wrote to l the peer's TCP has
 * acknowledged: written minus what the socket still holds (SIOCOUTQ).
 * Acknowledged bytes are the one sign that l takes data; wsgate's own
 * writes are not, as the kernel accepts them for a dead peer until its
 * send buffer is full. Returns whether the count grew since the last
 * probe; growth counts as progress for a stalled leg. */
static bool probe(struct leg *l)
{
    uint64_t q = leg_unacked(l);
    uint64_t acked;
    bool more;

    acked = l->tx_bytes > q ? l->tx_bytes - q : 0;
    more = acked > l->probe_acked;
    l->probe_acked = acked;
    l->probe_at = l->s->w->loop.now;
    if (more && l->stall_at)
        l->stall_at = l->probe_at;
    return more;
}

/* Whether l acknowledged anything since `since`. Stalls and queued pings
 * are probed when they begin, so the answer is a measurement; without a
 * probe since then it counts as yes once, and the probe taken now decides
 * next time. */
static bool acked_since(struct leg *l, uint64_t since)
{
    bool measured = l->probe_at >= since;
    bool more = probe(l);

    return measured ? more : true;
}

/* wsgate's frame ending at stream offset `mark` (a ping, a close) went out
 * at `since` without an answer. Whether l is still working through data
 * ahead of it: at the last look the frame was not acknowledged yet and the
 * count has grown since. At the first look, whether it is unacknowledged. */
static bool behind_mark(struct leg *l, uint64_t since, uint64_t mark)
{
    bool measured = l->probe_at >= since;
    uint64_t before = l->probe_acked;

    probe(l);
    if (measured)
        return before < mark && l->probe_acked > before;
    return l->probe_acked < mark;
}

/* wsgate stops reading l (backpressure). */
static void hold(struct leg *l)
{
    if (l->throttled)
        return;
    l->throttled = true;
    l->held_at = l->s->w->loop.now;
}

/* wsgate reads l again: the clocks that judge l by its answers restart, as
 * its answers may have waited behind what wsgate did not read. The close
 * deadline is paused for the hold, not restarted. */
static void release(struct leg *l)
{
    uint64_t now = l->s->w->loop.now;

    l->throttled = false;
    l->last_rx = now;
    if (l->ping_out || l->ping_queued)
        l->ping_at = now;
    if (l->close_out_at)
        l->close_out_at += now - l->held_at;
    l->s->last_data = now;
}

static void note_close(struct session *s, enum closed_by by, unsigned code, const uint8_t *reason,
                       size_t rlen)
{
    if (s->close_code)
        return;
    s->close_code = code;
    s->closed_by = by;
    if (rlen > sizeof(s->close_reason))
        rlen = sizeof(s->close_reason);
    memcpy(s->close_reason, reason, rlen);
    s->close_reason_len = (uint8_t)rlen;
}

static void start_closing(struct session *s)
{
    uint64_t now = s->w->loop.now;
    struct leg *legs[2] = {&s->c, &s->b};

    if (s->closing)
        return;
    s->closing = true;
    s->deadline = 0;
    /* A leg already stalled gets close_timeout from now to take what waits
     * for it, the close included. */
    for (int i = 0; i < 2; i++) {
        if (legs[i]->io.fd >= 0 && stalled(legs[i])) {
            legs[i]->stall_at = now;
            probe(legs[i]);
        }
    }
    arm_by(s, now + s->lim->close_timeout_ms);
}

/* Append a control frame from wsgate to l->ctl. */
static void ctl_frame(struct leg *l, uint8_t opcode, const uint8_t *payload, size_t n)
{
    uint8_t key[4], *p = l->ctl + l->ctl_len;
    size_t h;

    if (!l->is_client) {
        /* RFC 6455 §5.3: every frame to a server is masked, fresh key each. */
        uint32_t k = rng_u32(&l->s->w->rng);
        memcpy(key, &k, 4);
    }
    h = ws_frame_write(p, true, opcode, l->is_client ? NULL : key, n);
    memcpy(p + h, payload, n);
    if (!l->is_client)
        ws_mask(p + h, n, key, 0);
    l->ctl_len = (uint16_t)(l->ctl_len + h + n);
}

/* Send close `code` to l once the stream toward it is at a frame boundary.
 * Frames from the other leg stop being relayed to l. */
static void queue_close(struct leg *l, unsigned code, const char *reason)
{
    struct session *s = l->s;
    struct leg *src = peer(l);
    uint8_t payload[125];
    size_t n;

    if (l->close_sent || l->io.fd < 0)
        return;
    l->close_sent = true;
    src->forward = false;
    start_closing(s);
    if (src->in_frame) {
        /* Part of a frame already went to l and its source is cut off: no
         * frame can follow a truncated one, so the connection just ends. */
        leg_drop_queue(src);
        leg_shut(l);
        return;
    }
    if (l->ping_end && l->ctl_off == 0) {
        /* Queued ping not started: the close replaces it. */
        l->ctl_len = 0;
        l->ping_end = 0;
        l->ping_queued = false;
    }
    n = ws_close_payload(payload, code, reason);
    ctl_frame(l, WS_OP_CLOSE, payload, n);
    flush(l);
}

/* Leg l hung up (EOF, reset or dead). Tell the other leg. */
static void leg_gone(struct leg *l, int err)
{
    struct session *s = l->s;
    struct leg *other = peer(l);

    if (!l->close_rcvd) {
        if (!s->err)
            s->err = err;
        if (!s->close_code)
            note_close(s, l->is_client ? CLOSED_BY_CLIENT : CLOSED_BY_BACKEND, WS_CLOSE_ABNORMAL,
                       (const uint8_t *)"", 0);
    }
    leg_shut(l);
    /* Nothing more can be written to l. */
    leg_drop_queue(other);
    other->forward = false;
    if (!other->close_sent && other->io.fd >= 0)
        queue_close(other, l->is_client ? WS_CLOSE_GOING_AWAY : WS_CLOSE_INTERNAL,
                    l->is_client ? "client went away" : "backend went away");
}

/* src broke the protocol or a limit: close it with the matching code and
 * tell the other leg what happened (1001 to the backend for a client fault,
 * 1014 to the client for a backend that sent garbage), e.g. "client:
 * message larger than max_message_size". */
static void proto_fail(struct leg *src, int err)
{
    struct session *s = src->s;
    unsigned code = err_close_code(err);
    const char *why = err_str(err);
    char told[128];

    if (!s->err)
        s->err = err;
    note_close(s, CLOSED_BY_PROXY, code, (const uint8_t *)why, strlen(why));
    src->forward = false;
    src->close_rcvd = true; /* read nothing more from it but its close */
    queue_close(src, code, why);
    snprintf(told, sizeof(told), "%s: %s", src->is_client ? "client" : "backend", why);
    queue_close(peer(src), src->is_client ? WS_CLOSE_GOING_AWAY : WS_CLOSE_BAD_GATEWAY, told);
}

/* Payload bytes p[0..n) of the current data frame from src. */
static int payload(struct leg *src, uint8_t *p, size_t n)
{
    if (!src->forward)
        return 0;
    if (src->is_client) {
        if (src->text) {
            return ws_utf8_feed_remask(&src->utf8, p, n, src->in_mask, src->out_mask, src->offset);
        } else {
            /* Unmask and re-mask in one pass: XOR with both keys. */
            uint8_t k[4];
            for (int i = 0; i < 4; i++)
                k[i] = src->in_mask[i] ^ src->out_mask[i];
            ws_mask(p, n, k, src->offset);
        }
    } else if (src->text) {
        return ws_utf8_feed(&src->utf8, p, n);
    }
    return 0;
}

/* A data frame's payload is complete. */
static int frame_end(struct leg *src)
{
    if (!src->fin)
        return 0;
    if (src->text && src->forward && !ws_utf8_complete(&src->utf8))
        return ERR_WS_UTF8;
    src->msgs++;
    return 0;
}

/* A complete control frame at b->data + b->ppos. Returns 0 or an error. */
static int control(struct leg *src, struct buf *b, const struct ws_frame_hdr *h)
{
    struct session *s = src->s;
    struct leg *dst = peer(src);
    uint8_t *p = b->data + b->ppos;
    uint8_t *pl = p + h->hlen;
    size_t flen = h->hlen + (size_t)h->len;
    bool relay = src->forward && !dst->close_sent;

    if (src->is_client && h->opcode != WS_OP_CLOSE) {
        /* Pings and pongs are not counted as messages, but bounded. */
        uint64_t now = s->w->loop.now;
        if (now - src->ctl_window >= 1000) {
            src->ctl_window = now;
            src->ctl_count = 0;
        }
        if (++src->ctl_count > s->ctl_max) {
            /* Over the bound: a closing handshake (1008), and the frame
             * (like every further one) goes no further. */
            if (!s->closing && !s->limit_close)
                s->limit_close = ERR_CTL_FLOOD; /* acted on after the parse */
            memmove(p, p + h->hlen + h->len, b->wpos - b->ppos - h->hlen - h->len);
            b->wpos -= (uint32_t)(h->hlen + h->len);
            return 0;
        }
    }
    if (h->masked)
        ws_mask(pl, (size_t)h->len, h->mask, 0);
    if (h->opcode == WS_OP_CLOSE) {
        unsigned code;
        const uint8_t *reason;
        size_t rlen;
        int rc = ws_close_parse(pl, (size_t)h->len, &code, &reason, &rlen);
        if (rc < 0)
            return rc;
        src->close_rcvd = true;
        note_close(s, src->is_client ? CLOSED_BY_CLIENT : CLOSED_BY_BACKEND, code, reason, rlen);
        if (relay)
            dst->close_sent = true;
        start_closing(s);
    } else if (h->opcode == WS_OP_PONG && src->ping_out && h->len == sizeof(src->ping_id) &&
               memcmp(pl, src->ping_id, sizeof(src->ping_id)) == 0) {
        src->ping_out = false; /* our keepalive answered: not relayed */
        relay = false;
    }
    if (!relay) {
        memmove(p, p + flen, b->wpos - b->ppos - flen);
        b->wpos -= (uint32_t)flen;
        return 0;
    }
    if (h->masked) {
        uint32_t k = rng_u32(&s->w->rng);
        memcpy(p + h->hlen - 4, &k, 4);
        ws_mask(pl, (size_t)h->len, p + h->hlen - 4, 0);
    }
    b->ppos += (uint32_t)flen;
    src->queued += flen;
    return 0;
}

/* The closing handshake a limit asked for during a parse (1008 to the
 * client, 1001 to the backend). */
static void limit_close(struct session *s)
{
    int err = s->limit_close;
    const char *why = err == ERR_CTL_FLOOD ? "too many control frames" : "message rate limit";

    s->limit_close = 0;
    if (s->closing)
        return;
    if (!s->err)
        s->err = err;
    note_close(s, CLOSED_BY_PROXY, WS_CLOSE_POLICY, (const uint8_t *)why, strlen(why));
    queue_close(&s->c, WS_CLOSE_POLICY, why);
    queue_close(&s->b, WS_CLOSE_GOING_AWAY,
                err == ERR_CTL_FLOOD ? "client sent too many control frames"
                                     : "client over its message rate limit");
}

/* Message limits at a data frame's header from the client: a new
 * message passes, is dropped whole (src->dropping), or starts the closing
 * handshake (1008 to the client, 1001 to the backend); a further frame of
 * a passed message adds its bytes. Only for routes with message limits. */
static int limit_frame(struct session *s, struct leg *src, const struct ws_frame_hdr *h)
{
    if (h->opcode == WS_OP_CONT) {
        if (!src->dropping)
            limit_bytes(s->mlim, &s->mbucket, h->len);
        return 0;
    }
    switch (limit_message(s->mlim, &s->mbucket, h->len, s->w->loop.now)) {
    case MSG_PASS:
        return 0;
    case MSG_DROP:
        src->dropping = true;
        s->msgs_dropped++;
        return 0;
    default:
        /* action: close. A closing handshake, not a protocol failure: the
         * client keeps being read (its frames dropped) until its close. */
        if (!s->closing && !s->limit_close)
            s->limit_close = ERR_MSG_RATE; /* acted on after the parse */
        src->dropping = true;
        s->msgs_dropped++;
        return 0;
    }
}

/* Parse the unparsed bytes of src's tail buffer. Returns 0 or an error. */
static int parse(struct leg *src, struct buf *b)
{
    struct session *s = src->s;
    const struct limits *cfg = s->lim;
    struct ws_rules rules = {cfg->max_frame_size, cfg->max_message_size, src->is_client};

    while (b->ppos < b->wpos && !src->close_rcvd) {
        uint8_t *p = b->data + b->ppos;
        size_t avail = b->wpos - b->ppos;
        struct ws_frame_hdr h;
        uint8_t op;
        int rc;

        if (src->in_frame) {
            size_t n = avail < src->remaining ? avail : (size_t)src->remaining;
            if (__builtin_expect(src->dropping, 0)) {
                /* A dropped message's payload is cut out as it comes. */
                memmove(p, p + n, avail - n);
                b->wpos -= (uint32_t)n;
                src->remaining -= n;
                if (src->remaining == 0) {
                    src->in_frame = false;
                    if (src->fin)
                        src->dropping = false;
                }
                continue;
            }
            rc = payload(src, p, n);
            if (rc < 0)
                return rc;
            b->ppos += (uint32_t)n;
            src->queued += n;
            src->remaining -= n;
            src->offset += n;
            if (src->remaining == 0) {
                src->in_frame = false;
                rc = frame_end(src);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        rc = ws_frame_parse(p, avail, &h);
        if (rc == ERR_AGAIN)
            break;
        if (rc < 0)
            return rc;
        rc = ws_frame_check(&src->seq, &rules, &h, &op);
        if (rc < 0)
            return rc;
        if (h.opcode & 0x8) {
            if (avail < h.hlen + h.len)
                break; /* control frames are handled whole (at most 139 bytes) */
            rc = control(src, b, &h);
            if (rc < 0)
                return rc;
            continue;
        }
        if (__builtin_expect(s->mlim != NULL, 0) && src->is_client) {
            int v = limit_frame(s, src, &h);
            if (v < 0)
                return v;
            if (src->dropping) {
                /* Cut the frame (or what is here of it) out of the buffer. */
                size_t here = avail < h.hlen + h.len ? avail : (size_t)(h.hlen + h.len);
                src->fin = h.fin;
                memmove(p, p + here, avail - here);
                b->wpos -= (uint32_t)here;
                if (here < h.hlen + h.len) {
                    src->remaining = h.hlen + h.len - here;
                    src->in_frame = true;
                } else if (h.fin) {
                    src->dropping = false;
                }
                continue;
            }
        }
        if (h.opcode != WS_OP_CONT)
            memset(&src->utf8, 0, sizeof(src->utf8));
        src->text = op == WS_OP_TEXT && cfg->validate_utf8;
        src->fin = h.fin;
        src->offset = 0;
        src->bytes += h.len;
        s->last_data = s->w->loop.now;
        if (src->is_client) {
            uint32_t k = rng_u32(&s->w->rng);
            memcpy(src->in_mask, h.mask, 4);
            memcpy(src->out_mask, &k, 4);
        }
        if (avail >= h.hlen + h.len) {
            /* Whole frame here: check it before any of it is released, so
             * an invalid frame never reaches the other leg. */
            rc = payload(src, p + h.hlen, (size_t)h.len);
            if (rc == 0)
                rc = frame_end(src);
            if (rc < 0)
                return rc;
            if (src->is_client)
                memcpy(p + h.hlen - 4, src->out_mask, 4);
            b->ppos += (uint32_t)(h.hlen + h.len);
            src->queued += h.hlen + (size_t)h.len;
            continue;
        }
        if (src->is_client)
            memcpy(p + h.hlen - 4, src->out_mask, 4);
        b->ppos += h.hlen;
        src->queued += h.hlen;
        src->remaining = h.len;
        src->in_frame = true;
    }
    if (src->close_rcvd)
        b->wpos = b->ppos; /* RFC 6455 §5.5.1: nothing follows a close frame */
    return 0;
}

/* Parse the new bytes of b, src's tail buffer. Frames from a leg that is
 * no longer relayed are parsed (to find its close) and cut out of b; what
 * was queued before relaying stopped is kept, as it goes out before the
 * close frame that stopped it. Returns 0 or an error. */
static int ingest(struct leg *src, struct buf *b)
{
    uint32_t from = b->ppos;
    size_t queued = src->queued;
    bool forward = src->forward;
    int rc = parse(src, b);

    if (!forward && b->ppos > from) {
        memmove(b->data + from, b->data + b->ppos, b->wpos - b->ppos);
        b->wpos -= b->ppos - from;
        b->ppos = from;
        src->queued = queued;
    }
    return rc;
}

/* Read from src while allowed, parse, and pass the frames on. */
static void read_some(struct leg *src)
{
    struct session *s = src->s;
    size_t high = s->lim->high_watermark;

    if (src->throttled && !(src->forward && src->queued >= high))
        release(src);
    while (src->readable && src->io.fd >= 0) {
        struct buf *b;
        size_t room;
        ssize_t n;
        int rc;

        if (src->forward && src->queued >= high) {
            hold(src);
            return;
        }
        b = leg_rx_buf(src);
        if (!b) {
            if (!s->err)
                s->err = ERR_NOMEM;
            session_end(s);
            return;
        }
        room = BUF_DATA - b->wpos;
        n = leg_recv(src, b->data + b->wpos, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            src->readable = false;
            if (errno == EAGAIN)
                break;
            leg_gone(src, src->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED);
            return;
        }
        if (n == 0) {
            src->readable = false;
            leg_gone(src, src->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED);
            return;
        }
        src->last_rx = s->w->loop.now;
        b->wpos += (uint32_t)n;
        /* A short read drained the socket; edge-triggered epoll reports
         * new bytes, but not a hang-up already reported, so keep reading
         * to EOF after one. */
        if ((size_t)n < room && !src->rdhup && leg_short_read_drains(src))
            src->readable = false;
        rc = ingest(src, b);
        /* A limit asked for a close: only now, as queueing a close writes
         * and may give back the buffer the parse was working in. */
        if (__builtin_expect(s->limit_close != 0, 0))
            limit_close(s);
        if (!src->forward)
            leg_trim(src);
        if (rc < 0) {
            proto_fail(src, rc);
            return;
        }
    }
}

static void pump(struct leg *src)
{
    struct leg *dst = peer(src);

    read_some(src);
    if (src->s->st != SESS_ST_RELAY)
        return;
    if (src->queued > 0 || dst->ctl_len > dst->ctl_off)
        flush(dst);
}

/* Send bytes to l; returns bytes written, 0 on EAGAIN (writable cleared),
 * or -1 when the leg is gone. */
static ssize_t send_iov(struct leg *l, struct iovec *iov, int cnt)
{
    for (;;) {
        ssize_t n = leg_sendv(l, iov, cnt);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            l->writable = false;
            return 0;
        }
        return -1;
    }
}

/* After a write attempt to l that wrote `wrote` bytes: keep the clocks
 * that judge l as a reader. Stalls are rare on a relay whose reader keeps
 * up; the probe taken where one begins or progresses makes the later
 * verdict a measurement. */
static void track_tx(struct leg *l, size_t wrote)
{
    struct session *s = l->s;
    const struct limits *cfg = s->lim;
    uint64_t now = s->w->loop.now;

    l->tx_bytes += wrote;
    if (l->writable) {
        l->stall_at = 0;
    } else if (wrote || !l->stall_at) {
        bool start = !l->stall_at;
        l->stall_at = now;
        probe(l);
        if (start && s->closing)
            arm_by(s, now + cfg->close_timeout_ms);
        else if (start && cfg->max_stall_ms)
            arm_by(s, now + cfg->max_stall_ms);
    }
    if (l->close_sent && !l->close_out_at && !pending(l)) {
        /* Our close is on the wire: the peer's close is due. */
        l->close_out_at = now;
        arm_by(s, now + cfg->close_timeout_ms);
    }
}

/* Write what is queued for dst: its handshake bytes, a started control
 * frame, the frames relayed from the other leg, then a new control frame
 * once the relayed stream is at a frame boundary. */
static void flush(struct leg *dst)
{
    struct session *s = dst->s;
    struct leg *src = peer(dst);
    uint32_t pre_off = dst->pre_off, pre_len = dst->pre_len;
    size_t wrote = 0;

    if (dst->io.fd < 0)
        return;
    if (!dst->writable)
        goto out;
    if (dst->pre) {
        int rc = leg_write_pre(dst);
        if (rc < 0) {
            leg_gone(dst, dst->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED);
            return;
        }
        wrote = (rc > 0 ? pre_len : dst->pre_off) - pre_off;
        if (rc == 0)
            goto out;
    }
    for (;;) {
        struct iovec iov[IOV_BATCH];
        int cnt = 0;
        size_t total = 0;
        bool ctl;
        ssize_t n;

        if (dst->ctl_off > 0 && dst->ctl_off < dst->ctl_len) {
            ctl = true;
        } else if (src->queued > 0) {
            ctl = false;
        } else if (dst->ctl_len > dst->ctl_off && !(src->in_frame && src->forward)) {
            /* A source no longer relayed has no frame under way toward
             * dst: what it is in the middle of is being dropped. */
            ctl = true;
        } else {
            break;
        }
        if (ctl) {
            iov[0].iov_base = dst->ctl + dst->ctl_off;
            iov[0].iov_len = dst->ctl_len - dst->ctl_off;
            total = iov[0].iov_len;
            cnt = 1;
        } else {
            for (struct buf *b = src->head; b && cnt < IOV_BATCH; b = b->next) {
                if (b->ppos == b->rpos)
                    continue;
                iov[cnt].iov_base = b->data + b->rpos;
                iov[cnt].iov_len = b->ppos - b->rpos;
                total += iov[cnt].iov_len;
                cnt++;
            }
        }
        n = send_iov(dst, iov, cnt);
        if (n < 0) {
            leg_gone(dst, dst->is_client ? ERR_CLIENT_CLOSED : ERR_BACKEND_CLOSED);
            return;
        }
        wrote += (size_t)n;
        if (ctl) {
            dst->ctl_off = (uint16_t)(dst->ctl_off + n);
            if (dst->ping_end && dst->ctl_off >= dst->ping_end) {
                /* The pong deadline counts from here, not from the queueing. */
                dst->ping_mark = dst->tx_bytes + wrote - (dst->ctl_off - dst->ping_end);
                dst->ping_end = 0;
                dst->ping_queued = false;
                dst->ping_out = true;
                dst->ping_at = s->w->loop.now;
            }
            if (dst->ctl_off == dst->ctl_len)
                dst->ctl_off = dst->ctl_len = 0;
        } else {
            size_t left = (size_t)n;
            /* Data delivered is activity: idle_timeout counts from here. */
            s->last_data = s->w->loop.now;
            src->queued -= left;
            for (struct buf *b = src->head; b && left > 0; b = b->next) {
                size_t take = b->ppos - b->rpos;
                if (take > left)
                    take = left;
                b->rpos += (uint32_t)take;
                left -= take;
            }
            leg_trim(src);
        }
        if ((size_t)n < total) {
            dst->writable = false;
            break;
        }
    }
out:
    track_tx(dst, wrote);
    if (src->throttled && src->queued <= s->lim->low_watermark)
        pump(src);
}

/* Close legs whose close handshake is done; end the session when both are. */
static void reap(struct session *s)
{
    struct leg *legs[2] = {&s->c, &s->b};

    /* Nothing to reap while both legs are open and no close is under way. */
    if (s->st != SESS_ST_RELAY || (!s->closing && s->c.io.fd >= 0 && s->b.io.fd >= 0))
        return;
    for (int i = 0; i < 2; i++) {
        struct leg *l = legs[i];
        if (l->io.fd >= 0 && l->close_sent && l->close_rcvd && peer(l)->queued == 0 &&
            l->ctl_len == 0 && !l->pre)
            leg_shut(l);
    }
    if (s->c.io.fd < 0 && s->b.io.fd < 0)
        session_end(s);
}

/* A leg that wsgate no longer relays is read again even if it was held
 * back, so that its close, waiting behind data, is found. Then reap. */
static void settle(struct session *s)
{
    struct leg *legs[2] = {&s->c, &s->b};

    for (int i = 0; i < 2 && s->st == SESS_ST_RELAY; i++) {
        if (legs[i]->throttled && !legs[i]->forward && legs[i]->io.fd >= 0)
            pump(legs[i]);
    }
    reap(s);
}

void relay_event(struct leg *l, uint32_t events)
{
    struct session *s = l->s;

    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        l->rdhup = true;
        l->readable = true;
    }
    if (events & EPOLLIN)
        l->readable = true;
    if (events & EPOLLOUT) {
        l->writable = true;
        flush(l);
    }
    if (s->st == SESS_ST_RELAY && l->io.fd >= 0 && l->readable)
        pump(l);
    settle(s);
}

/* What a leg's timer deadline asks for. */
enum due {
    DUE_NONE,
    DUE_PING,  /* ping_interval of silence: send a ping */
    DUE_PONG,  /* pong_timeout since the ping was queued or written */
    DUE_STALL, /* max_stall without taking a byte */
    DUE_CLOSE, /* close_timeout: the leg took nothing, or did not answer our close */
};

/* The leg's next deadline (UINT64_MAX: none) and what it is for. */
static uint64_t leg_due(struct leg *l, enum due *what)
{
    const struct limits *cfg = l->s->lim;
    uint64_t at = UINT64_MAX;

    *what = DUE_NONE;
    if (l->io.fd < 0)
        return at;
    if (l->s->closing) {
        if (stalled(l)) {
            at = l->stall_at + cfg->close_timeout_ms;
            *what = DUE_CLOSE;
        } else if (l->close_out_at && !l->close_rcvd && !l->throttled) {
            at = l->close_out_at + cfg->close_timeout_ms;
            *what = DUE_CLOSE;
        }
        return at;
    }
    if (cfg->max_stall_ms && stalled(l)) {
        at = l->stall_at + cfg->max_stall_ms;
        *what = DUE_STALL;
    }
    /* A leg held back is not judged by its answers: they may be waiting
     * unread behind what wsgate holds back, and the bytes waiting in its
     * socket are themselves a sign of life. */
    if (cfg->ping_interval_ms && !l->throttled) {
        bool check = l->ping_out || l->ping_queued;
        uint64_t k = check ? l->ping_at + cfg->pong_timeout_ms : l->last_rx + cfg->ping_interval_ms;
        if (k < at) {
            at = k;
            *what = check ? DUE_PONG : DUE_PING;
        }
    }
    return at;
}

/* l did not read what waited for it: close it with 1008 if the stream
 * toward it allows a close frame, and tell its peer why. */
static void slow_consumer(struct leg *l)
{
    struct session *s = l->s;
    const char *why = l->is_client ? "client is not reading" : "backend is not reading";

    if (!s->err)
        s->err = ERR_SLOW_CONSUMER;
    note_close(s, CLOSED_BY_PROXY, WS_CLOSE_POLICY, (const uint8_t *)why, strlen(why));
    queue_close(peer(l), l->is_client ? WS_CLOSE_GOING_AWAY : WS_CLOSE_INTERNAL, why);
    queue_close(l, WS_CLOSE_POLICY, "slow consumer");
}

static void send_ping(struct leg *l)
{
    rng_bytes(&l->s->w->rng, l->ping_id, sizeof(l->ping_id));
    ctl_frame(l, WS_OP_PING, l->ping_id, sizeof(l->ping_id));
    l->ping_end = l->ctl_len;
    l->ping_queued = true;
    l->ping_at = l->s->w->loop.now;
    flush(l);
    /* Still queued behind other data: whether l takes any decides,
     * measured from here. */
    if (l->io.fd >= 0 && l->ping_queued)
        probe(l);
}

static void leg_timer(struct leg *l, enum due what)
{
    struct session *s = l->s;
    uint64_t now = s->w->loop.now;

    switch (what) {
    case DUE_NONE:
        break;
    case DUE_PING:
        send_ping(l);
        break;
    case DUE_PONG:
        if (l->ping_out ? behind_mark(l, l->ping_at, l->ping_mark) : acked_since(l, l->ping_at)) {
            /* Our ping waits behind data l is still taking. */
            l->ping_at = now;
        } else if (pending(l) || l->tx_bytes - l->probe_acked > LEG_CTL_MAX) {
            /* Data waits for l and it reads none: dead or hopeless. */
            slow_consumer(l);
        } else {
            /* No pong: the peer or the path to it is dead. */
            note_close(s, CLOSED_BY_PROXY, WS_CLOSE_ABNORMAL, (const uint8_t *)"pong timeout", 12);
            leg_gone(l, ERR_PONG_TIMEOUT);
        }
        break;
    case DUE_STALL:
        if (!acked_since(l, l->stall_at))
            slow_consumer(l);
        break;
    case DUE_CLOSE:
        if (stalled(l) ? acked_since(l, l->stall_at)
                       : behind_mark(l, l->close_out_at, l->tx_bytes)) {
            if (!stalled(l))
                l->close_out_at = now;
            break;
        }
        if (!s->err)
            s->err = ERR_CLOSE_TIMEOUT;
        session_end(s);
        break;
    }
}

/* The earliest deadline of both legs, UINT64_MAX for none. */
static uint64_t legs_due(struct session *s)
{
    enum due what;
    uint64_t c = leg_due(&s->c, &what);
    uint64_t b = leg_due(&s->b, &what);

    return c < b ? c : b;
}

/* While closing, every step waits on a leg with a deadline, or on a leg
 * wsgate holds back while the other one takes data. Should neither be so,
 * the pair ends close_timeout later all the same (s->deadline). */
static bool close_stuck(struct session *s)
{
    return legs_due(s) == UINT64_MAX && !s->c.throttled && !s->b.throttled;
}

static void schedule(struct session *s)
{
    const struct limits *cfg = s->lim;
    uint64_t next = legs_due(s);

    if (s->closing) {
        if (next == UINT64_MAX && close_stuck(s)) {
            if (!s->deadline)
                s->deadline = s->w->loop.now + cfg->close_timeout_ms;
            next = s->deadline;
        } else {
            s->deadline = 0;
        }
    } else {
        if (cfg->idle_timeout_ms && s->last_data + cfg->idle_timeout_ms < next)
            next = s->last_data + cfg->idle_timeout_ms;
        if (s->expires_at && s->expires_at < next)
            next = s->expires_at;
    }
    if (next != UINT64_MAX)
        timer_arm(&s->w->loop.wheel, &s->timer, next);
}

void relay_timer(struct session *s)
{
    const struct limits *cfg = s->lim;
    uint64_t now = s->w->loop.now;
    struct leg *legs[2] = {&s->c, &s->b};

    for (int i = 0; i < 2 && s->st == SESS_ST_RELAY; i++) {
        enum due what;
        if (leg_due(legs[i], &what) <= now)
            leg_timer(legs[i], what);
    }
    if (s->st != SESS_ST_RELAY)
        return;
    if (s->closing && s->deadline && now >= s->deadline && close_stuck(s)) {
        if (!s->err)
            s->err = ERR_CLOSE_TIMEOUT;
        session_end(s);
        return;
    }
    if (!s->closing && s->expires_at && now >= s->expires_at) {
        /* close_on_expiry: the token this connection was admitted with
         * has expired (RFC 6455 §7.4.1: 1008, policy violation). */
        if (!s->err)
            s->err = ERR_TOKEN_EXPIRED;
        note_close(s, CLOSED_BY_PROXY, WS_CLOSE_POLICY, (const uint8_t *)"token expired", 13);
        queue_close(&s->c, WS_CLOSE_POLICY, "token expired");
        queue_close(&s->b, WS_CLOSE_GOING_AWAY, "token expired");
    }
    if (!s->closing && cfg->idle_timeout_ms) {
        /* Data that waits in wsgate, or that wsgate has not read, is not
         * idleness: the clock starts once it is delivered. */
        if (s->c.queued || s->b.queued || s->c.throttled || s->b.throttled)
            s->last_data = now;
        else if (now >= s->last_data + cfg->idle_timeout_ms) {
            if (!s->err)
                s->err = ERR_IDLE_TIMEOUT;
            note_close(s, CLOSED_BY_PROXY, WS_CLOSE_GOING_AWAY, (const uint8_t *)"idle timeout",
                       12);
            queue_close(&s->c, WS_CLOSE_GOING_AWAY, "idle timeout");
            queue_close(&s->b, WS_CLOSE_GOING_AWAY, "idle timeout");
        }
    }
    if (s->st != SESS_ST_RELAY)
        return;
    settle(s);
    if (s->st == SESS_ST_RELAY)
        schedule(s);
}

void relay_shutdown(struct session *s)
{
    if (!s->err)
        s->err = ERR_SHUTDOWN;
    note_close(s, CLOSED_BY_PROXY, WS_CLOSE_GOING_AWAY, (const uint8_t *)"shutting down", 13);
    queue_close(&s->c, WS_CLOSE_GOING_AWAY, "wsgate is shutting down");
    queue_close(&s->b, WS_CLOSE_GOING_AWAY, "wsgate is shutting down");
    settle(s);
}

/* Put bytes that arrived with a handshake into a leg's queue and parse. */
static int preload(struct leg *l, const char *p, size_t n)
{
    while (n > 0) {
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
        rc = ingest(l, b);
        if (rc < 0) {
            proto_fail(l, rc);
            return 0;
        }
    }
    return 0;
}

void relay_start(struct session *s, const char *client_extra, size_t cn, const char *backend_extra,
                 size_t bn)
{
    uint64_t now = s->w->loop.now;

    s->st = SESS_ST_RELAY;
    s->last_data = now;
    s->c.last_rx = s->b.last_rx = now;
    s->ctl_max = limit_ctl_max(s->route ? s->route->limits : NULL);
    s->mlim = s->route && limit_has_messages(s->route->limits) ? s->route->limits : NULL;
    s->c.readable = s->b.readable = true;
    s->c.writable = s->b.writable = true;
    s->deadline = 0;
    free(s->b.pre);
    s->b.pre = NULL;
    timer_disarm(&s->w->loop.wheel, &s->timer);
    if (preload(&s->b, backend_extra, bn) < 0 || preload(&s->c, client_extra, cn) < 0) {
        s->err = ERR_NOMEM;
        session_end(s);
        return;
    }
    flush(&s->c);
    if (s->st == SESS_ST_RELAY)
        flush(&s->b);
    if (s->st == SESS_ST_RELAY && s->c.io.fd >= 0)
        pump(&s->c);
    if (s->st == SESS_ST_RELAY && s->b.io.fd >= 0)
        pump(&s->b);
    settle(s);
    if (s->st == SESS_ST_RELAY)
        schedule(s);
}
