/* One side of a connection pair: its socket, the bytes wsgate itself writes
 * to it ahead of relayed frames, and its rx queue of pool buffers. Below
 * both the handshake (upgrade.c) and the relay (relay.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "proxy/session.h"
#include "proxy/transport.h"

void leg_init(struct session *s, struct leg *l, bool is_client, io_cb cb)
{
    l->s = s;
    l->is_client = is_client;
    l->io.fd = -1;
    l->io.cb = cb;
    l->forward = true;
    l->writable = true;
}

void leg_set_pre(struct leg *l, char *bytes, size_t len)
{
    free(l->pre);
    l->pre = (uint8_t *)bytes;
    l->pre_len = (uint32_t)len;
    l->pre_off = 0;
}

int leg_append_pre(struct leg *l, const char *bytes, size_t len)
{
    size_t keep = l->pre ? l->pre_len - l->pre_off : 0;
    uint8_t *p = malloc(keep + len);

    if (!p)
        return ERR_NOMEM;
    if (keep)
        memcpy(p, l->pre + l->pre_off, keep);
    memcpy(p + keep, bytes, len);
    free(l->pre);
    l->pre = p;
    l->pre_len = (uint32_t)(keep + len);
    l->pre_off = 0;
    return 0;
}

int leg_write_pre(struct leg *l)
{
    while (l->pre_off < l->pre_len) {
        struct iovec iov = {l->pre + l->pre_off, l->pre_len - l->pre_off};
        ssize_t n = leg_sendv(l, &iov, 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                l->writable = false;
                return 0;
            }
            return ERR_SYS;
        }
        l->pre_off += (uint32_t)n;
    }
    free(l->pre);
    l->pre = NULL;
    l->pre_len = l->pre_off = 0;
    return 1;
}

void leg_shut(struct leg *l)
{
    if (l->io.fd < 0)
        return;
    if (l->tls) {
        /* What TLS still owes goes out if the socket takes it now. */
        tls_flush(l->tls);
        tls_free(l->tls);
        l->tls = NULL;
    }
    close(l->io.fd);
    l->io.fd = -1;
    l->readable = false;
    if (l->is_client)
        session_release_slot(l->s);
}

void leg_drop_queue(struct leg *l)
{
    while (l->head) {
        struct buf *b = l->head;
        l->head = b->next;
        buf_put(&l->s->w->pool, b);
    }
    l->tail = NULL;
    l->queued = 0;
    l->nfrag = 0;
}

void leg_close(struct leg *l)
{
    leg_shut(l);
    leg_drop_queue(l);
    free(l->pre);
    l->pre = NULL;
}

/* A buffer with room at the tail of src's queue, or NULL (out of memory). */
struct buf *leg_rx_buf(struct leg *src)
{
    struct buf_pool *pool = &src->s->w->pool;
    struct buf *b = src->tail, *nb;

    if (b && b->wpos < BUF_DATA)
        return b;
    nb = buf_get(pool);
    if (!nb)
        return NULL;
    if (b) {
        /* Keep a partial header or control frame contiguous. */
        uint32_t left = b->wpos - b->ppos;
        memcpy(nb->data, b->data + b->ppos, left);
        nb->wpos = left;
        b->wpos = b->ppos;
        if (b->rpos == b->ppos) {
            /* b is fully written, so it is also the head. */
            src->head = src->tail = NULL;
            buf_put(pool, b);
        }
    } else if (src->nfrag) {
        memcpy(nb->data, src->frag, src->nfrag);
        nb->wpos = src->nfrag;
        src->nfrag = 0;
    }
    if (src->tail)
        src->tail->next = nb;
    else
        src->head = nb;
    src->tail = nb;
    return nb;
}

/* Release fully written buffers; an idle leg keeps none. */
void leg_trim(struct leg *src)
{
    struct buf_pool *pool = &src->s->w->pool;

    while (src->head && src->head->rpos == src->head->ppos) {
        struct buf *b = src->head;
        uint32_t left = b->wpos - b->ppos;
        if (b != src->tail) {
            src->head = b->next;
            buf_put(pool, b);
            continue;
        }
        if (left > sizeof(src->frag))
            break;
        memcpy(src->frag, b->data + b->ppos, left);
        src->nfrag = (uint8_t)left;
        src->head = src->tail = NULL;
        buf_put(pool, b);
    }
}
