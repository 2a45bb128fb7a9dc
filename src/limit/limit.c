/* Handshake limits (see limit.h). */
#include "limit/limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admit/cidr.h"
#include "core/err.h"

#define SHARDS        64
#define BUCKETS       1024  /* chains per shard */
#define SHARD_ENTRIES 16384 /* addresses tracked per shard: 1 Mi per route */

struct entry {
    uint8_t addr[16]; /* IPv4, or the /64 of an IPv6 address */
    bool v6;
    double tokens;
    uint64_t last_ms;
    unsigned conns;
    struct entry *next;
};

struct shard {
    pthread_mutex_t lock;
    struct entry *b[BUCKETS];
    unsigned n;
};

struct limit_conf {
    double rate_per_ms; /* handshake_rate; 0: none */
    double burst;
    uint64_t burst_set;
    unsigned per_ip;    /* max_connections_per_ip; 0: none */
    unsigned route_max; /* max_connections; 0: none */
    atomic_uint route_conns;
    struct shard *shards; /* when rate_per_ms or per_ip */
    /* per message */
    uint64_t msgs_per_s, bytes_per_s, msg_burst;
    int action; /* 0 drop, 1 close */
    bool action_set;
    unsigned ctl_max;
    /* parsed */
    char *rate_text;
};

static const char *const action_names[] = {"drop", "close", NULL};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- config */

/* "10/s", "600/m", "36000/h", or a bare number (per second). */
static bool parse_rate(const char *s, double *per_ms)
{
    char *end;
    double n = strtod(s, &end);
    double unit = 1000;

    if (end == s || !(n > 0) || n > 1e9)
        return false;
    if (*end == '/') {
        if (strcmp(end + 1, "s") == 0)
            unit = 1000;
        else if (strcmp(end + 1, "m") == 0)
            unit = 60000;
        else if (strcmp(end + 1, "h") == 0)
            unit = 3600000;
        else
            return false;
    } else if (*end) {
        return false;
    }
    *per_ms = n / unit;
    return true;
}

static const struct conf_key keys[] = {
    {.name = "handshake_rate",
     .kind = CK_STRING,
     CONF_FIELD(struct limit_conf, rate_text, CF_STRING)},
    {.name = "handshake_burst",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, burst_set, CF_U64),
     .min = 1,
     .max = 1000000},
    {.name = "max_connections_per_ip",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, per_ip, CF_UNSIGNED),
     .min = 1,
     .max = 10000000},
    {.name = "max_connections",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, route_max, CF_UNSIGNED),
     .min = 1,
     .max = 10000000},
    {.name = "messages_per_second",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, msgs_per_s, CF_U64),
     .min = 1,
     .max = 10000000},
    {.name = "bytes_per_second",
     .kind = CK_SIZE,
     CONF_FIELD(struct limit_conf, bytes_per_s, CF_U64),
     .min = 1,
     .max = (uint64_t)1 << 40},
    {.name = "burst",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, msg_burst, CF_U64),
     .min = 1,
     .max = 100000000},
    {.name = "action",
     .kind = CK_ENUM,
     CONF_FIELD(struct limit_conf, action, CF_INT),
     .names = action_names},
    {.name = "max_control_frames_per_second",
     .kind = CK_UINT,
     CONF_FIELD(struct limit_conf, ctl_max, CF_UNSIGNED),
     .min = 1,
     .max = 1000000},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

bool limit_parse(struct conf_diag *d, const struct conf_key *k, const struct ynode *v, void *base)
{
    struct limit_conf **slot = (struct limit_conf **)((char *)base + k->off);
    struct limit_conf *l = calloc(1, sizeof(*l));
    const struct ynode *seen[NKEYS];
    char q[CONF_QUOTE_BUF];

    if (!l) {
        d->oom = true;
        return false;
    }
    *slot = l;
    atomic_init(&l->route_conns, 0);
    if (v->type != Y_MAP) {
        conf_bad_value(d, k->name, v, "a mapping such as {handshake_rate: 10/s}");
        return false;
    }
    if (!conf_apply_map(d, keys, NKEYS, v, l, "in limits", seen))
        return false;
    if (l->rate_text && !parse_rate(l->rate_text, &l->rate_per_ms)) {
        conf_report(d, seen[0],
                    "handshake_rate: expected a rate such as 10/s, 600/m or 5000/h, got %s",
                    conf_quote(l->rate_text, strlen(l->rate_text), q));
        return false;
    }
    if (l->burst_set && !l->rate_text) {
        conf_report(d, seen[1], "handshake_burst: needs handshake_rate");
        return false;
    }
    if ((l->msg_burst || seen[7]) && !l->msgs_per_s && !l->bytes_per_s) {
        conf_report(d, seen[l->msg_burst ? 6 : 7],
                    "%s: needs messages_per_second or bytes_per_second",
                    l->msg_burst ? "burst" : "action");
        return false;
    }
    if (!l->ctl_max)
        l->ctl_max = 100;
    /* Default burst: one second's worth, at least one handshake. */
    l->burst = l->burst_set ? (double)l->burst_set : l->rate_per_ms * 1000;
    if (l->burst < 1)
        l->burst = 1;
    if (l->rate_per_ms > 0 || l->per_ip) {
        l->shards = calloc(SHARDS, sizeof(*l->shards));
        if (!l->shards) {
            d->oom = true;
            return false;
        }
        for (int i = 0; i < SHARDS; i++)
            pthread_mutex_init(&l->shards[i].lock, NULL);
    }
    return true;
}

void limit_conf_free(struct limit_conf *l)
{
    if (!l)
        return;
    for (int i = 0; l->shards && i < SHARDS; i++) {
        for (int j = 0; j < BUCKETS; j++) {
            struct entry *e = l->shards[i].b[j];
            while (e) {
                struct entry *n = e->next;
                free(e);
                e = n;
            }
        }
        pthread_mutex_destroy(&l->shards[i].lock);
    }
    free(l->shards);
    free(l->rate_text);
    free(l);
}

/* ---------------------------------------------------------------- runtime */

/* The key of a client address: IPv4 (also v4-mapped) as is, IPv6 by its
 * /64 (one subscriber's usual allocation: limits per address would let
 * one host take 2^64 of them). */
static bool key_of(const struct sockaddr *sa, uint8_t out[16], bool *v6)
{
    memset(out, 0, 16);
    if (!cidr_addr_bytes(sa, out, v6))
        return false;
    if (*v6)
        memset(out + 8, 0, 8); /* the /64 */
    return true;
}

static uint32_t hash_key(const uint8_t k[16], bool v6)
{
    uint32_t h = 2166136261u ^ (v6 ? 0x9e3779b9u : 0);

    for (int i = 0; i < 16; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

static void refill(const struct limit_conf *l, struct entry *e, uint64_t now)
{
    if (l->rate_per_ms > 0 && now > e->last_ms) {
        e->tokens += (double)(now - e->last_ms) * l->rate_per_ms;
        if (e->tokens > l->burst)
            e->tokens = l->burst;
    }
    e->last_ms = now;
}

/* The entry for key k in shard s (locked), made when missing: NULL when
 * the shard is full of addresses in use. Idle entries met on the way
 * (no connection, bucket full again) are freed. */
static struct entry *find(const struct limit_conf *l, struct shard *s, uint32_t h,
                          const uint8_t k[16], bool v6, uint64_t now, bool make)
{
    struct entry **pp = &s->b[(h / SHARDS) % BUCKETS], *e, *found = NULL;

    while ((e = *pp)) {
        if (e->v6 == v6 && memcmp(e->addr, k, 16) == 0) {
            found = e;
            pp = &e->next;
            continue;
        }
        refill(l, e, now);
        if (e->conns == 0 && (l->rate_per_ms == 0 || e->tokens >= l->burst)) {
            *pp = e->next;
            free(e);
            s->n--;
            continue;
        }
        pp = &e->next;
    }
    if (found || !make)
        return found;
    if (s->n >= SHARD_ENTRIES)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    memcpy(e->addr, k, 16);
    e->v6 = v6;
    e->tokens = l->burst;
    e->last_ms = now;
    e->next = s->b[(h / SHARDS) % BUCKETS];
    s->b[(h / SHARDS) % BUCKETS] = e;
    s->n++;
    return e;
}

static void release_ip(struct limit_conf *l, const struct sockaddr *sa);

int limit_step(const struct admit_conf *a, const void *arg, struct admit_ctx *cx)
{
    const struct limit_conf *lc = arg;
    struct limit_conf *l = (struct limit_conf *)lc; /* counters only */
    uint8_t k[16];
    bool v6;
    int rc = 0;

    if (!cx->upgrade)
        return 0;
    if (l->shards && key_of(cx->client, k, &v6)) {
        uint32_t h = hash_key(k, v6);
        struct shard *s = &l->shards[h % SHARDS];
        uint64_t now = mono_ms();
        struct entry *e;

        pthread_mutex_lock(&s->lock);
        e = find(l, s, h, k, v6, now, true);
        if (!e) {
            /* More distinct clients than the table holds, all active:
             * refusing is safer for the backends than not counting. */
            snprintf(cx->reason, sizeof(cx->reason), "limit table full");
            cx->retry_after = 1;
            rc = ERR_RATE_LIMITED;
        } else {
            refill(l, e, now);
            if (l->rate_per_ms > 0 && e->tokens < 1) {
                double wait_ms = (1 - e->tokens) / l->rate_per_ms;
                cx->retry_after = (unsigned)(wait_ms / 1000) + 1;
                snprintf(cx->reason, sizeof(cx->reason), "handshake_rate");
                rc = ERR_RATE_LIMITED;
            } else if (l->per_ip && e->conns >= l->per_ip) {
                cx->retry_after = 1;
                snprintf(cx->reason, sizeof(cx->reason), "max_connections_per_ip");
                rc = ERR_RATE_LIMITED;
            } else {
                if (l->rate_per_ms > 0)
                    e->tokens -= 1;
                e->conns++;
                cx->limit_held = true;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (rc < 0)
            return rc;
    }
    if (l->route_max) {
        unsigned n = atomic_fetch_add_explicit(&l->route_conns, 1, memory_order_relaxed);
        if (n >= l->route_max) {
            atomic_fetch_sub_explicit(&l->route_conns, 1, memory_order_relaxed);
            if (cx->limit_held) {
                release_ip(l, cx->client);
                cx->limit_held = false;
            }
            cx->retry_after = 5;
            snprintf(cx->reason, sizeof(cx->reason), "max_connections");
            return ERR_ROUTE_FULL;
        }
        cx->limit_held = true;
    }
    return 0;
}

static void release_ip(struct limit_conf *l, const struct sockaddr *sa)
{
    uint8_t k[16];
    bool v6;

    if (l->shards && key_of(sa, k, &v6)) {
        uint32_t h = hash_key(k, v6);
        struct shard *s = &l->shards[h % SHARDS];
        struct entry *e;

        pthread_mutex_lock(&s->lock);
        e = find(l, s, h, k, v6, mono_ms(), false);
        if (e && e->conns > 0)
            e->conns--;
        pthread_mutex_unlock(&s->lock);
    }
}

void limit_release(const struct limit_conf *lc, const struct sockaddr *sa)
{
    struct limit_conf *l = (struct limit_conf *)lc; /* counters only */

    release_ip(l, sa);
    if (l->route_max)
        atomic_fetch_sub_explicit(&l->route_conns, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ messages */

bool limit_has_messages(const struct limit_conf *l)
{
    return l && (l->msgs_per_s || l->bytes_per_s);
}

unsigned limit_ctl_max(const struct limit_conf *l)
{
    return l ? l->ctl_max : 100;
}

static void msg_refill(const struct limit_conf *l, struct msg_bucket *b, uint64_t now)
{
    double mburst = l->msg_burst ? (double)l->msg_burst : (double)l->msgs_per_s;
    double bburst = (double)l->bytes_per_s;

    if (!b->last_ms) {
        b->msgs = mburst;
        b->bytes = bburst;
    } else if (now > b->last_ms) {
        double dt = (double)(now - b->last_ms) / 1000;
        b->msgs += dt * (double)l->msgs_per_s;
        if (b->msgs > mburst)
            b->msgs = mburst;
        b->bytes += dt * (double)l->bytes_per_s;
        if (b->bytes > bburst)
            b->bytes = bburst;
    }
    b->last_ms = now;
}

enum msg_verdict limit_message(const struct limit_conf *l, struct msg_bucket *b, uint64_t len,
                               uint64_t now_ms)
{
    msg_refill(l, b, now_ms);
    /* A message passes when there is a message token and the bytes are
     * not in debt; its bytes may take them below zero (a large message
     * delays the next ones). */
    if ((l->msgs_per_s && b->msgs < 1) || (l->bytes_per_s && b->bytes < 0))
        return l->action == 1 ? MSG_CLOSE : MSG_DROP;
    if (l->msgs_per_s)
        b->msgs -= 1;
    if (l->bytes_per_s)
        b->bytes -= (double)len;
    return MSG_PASS;
}

void limit_bytes(const struct limit_conf *l, struct msg_bucket *b, uint64_t len)
{
    if (l->bytes_per_s)
        b->bytes -= (double)len;
}
