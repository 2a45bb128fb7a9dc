/* Handshake limits per route (`limits:`), an admission step:
 *
 *   limits:
 *     handshake_rate: 10/s         # WebSocket handshakes per client address (token bucket)
 *     handshake_burst: 20          # bucket size (default: one second's worth, at least 1)
 *     max_connections_per_ip: 100  # open WebSocket connections per client address
 *     max_connections: 10000       # open WebSocket connections on the route
 *
 * Messages from the client, per connection (checked at each message's
 * first frame; a message over the limit is dropped whole or closes the
 * connection with 1008):
 *
 *     messages_per_second: 100
 *     bytes_per_second: 1MiB
 *     burst: 200                   # messages (bytes: one second's worth)
 *     action: drop                 # drop | close
 *     max_control_frames_per_second: 100   # pings etc.; more closes with 1008
 *
 * Over the rate or the per-address count: 429 with Retry-After; the route
 * full: 503. The state is shared by the workers: a table per route, in
 * shards with a lock each, taken once per handshake and once when a
 * counted connection ends (never on the relay path). Its size is bounded:
 * entries of addresses with no connection and a full bucket are reused. */
#ifndef WSG_LIMIT_LIMIT_H
#define WSG_LIMIT_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admit/admit.h"
#include "admit/admit_conf.h"
#include "config/engine.h"

struct limit_conf;

/* The `limits:` key (CK_CUSTOM; k->off: a struct limit_conf * in base). */
bool limit_parse(struct conf_diag *d, const struct conf_key *k, const struct ynode *v, void *base);
void limit_conf_free(struct limit_conf *l);

/* The admission step (arg: the struct limit_conf). On success for an
 * upgrade it takes a connection slot: cx->limit_held is set and the
 * caller gives it back with limit_release when the connection ends. */
int limit_step(const struct admit_conf *a, const void *arg, struct admit_ctx *cx);

/* Give back the slot limit_step took for the client at sa. */
void limit_release(const struct limit_conf *l, const struct sockaddr *sa);

/* Message limits of a connection (the relay keeps one in its session). */
struct msg_bucket {
    double msgs, bytes; /* tokens */
    uint64_t last_ms;
};

enum msg_verdict { MSG_PASS, MSG_DROP, MSG_CLOSE };

/* Whether a route limits messages (NULL: no route limits). */
bool limit_has_messages(const struct limit_conf *l);
/* Control frames per second allowed from a client (100 by default). */
unsigned limit_ctl_max(const struct limit_conf *l);
/* A new message of `len` bytes (its first frame's) from the client at
 * now_ms: pass (tokens taken), drop or close. */
enum msg_verdict limit_message(const struct limit_conf *l, struct msg_bucket *b, uint64_t len,
                               uint64_t now_ms);
/* Bytes of a further frame of a message that passed (taken as debt). */
void limit_bytes(const struct limit_conf *l, struct msg_bucket *b, uint64_t len);

#endif
