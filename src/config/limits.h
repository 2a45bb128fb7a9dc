/* The limits and timeouts that apply to one connection pair: the core
 * keys of the file, which a route may override (route_conf.h). The relay
 * and the handshake read them through the session's route, so a route
 * with overrides costs nothing more than one without. */
#ifndef WSG_CONFIG_LIMITS_H
#define WSG_CONFIG_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct limits {
    uint64_t connect_timeout_ms; /* backend TCP connect + 101 must arrive within */
    uint64_t close_timeout_ms;   /* close handshake progress within */
    uint64_t ping_interval_ms;   /* silence on a leg before wsgate pings it; 0 = off */
    uint64_t pong_timeout_ms;    /* wait for a pong after wsgate's ping */
    uint64_t idle_timeout_ms;    /* no data frames either way; 0 = off */
    uint64_t max_stall_ms;       /* bytes wait for a side that takes none; 0 = off */
    uint64_t max_frame_size;     /* payload bytes per frame */
    uint64_t max_message_size;   /* payload bytes per message */
    bool validate_utf8;          /* check text messages and close reasons */
    size_t high_watermark;       /* bytes queued to one leg before reading the other stops */
    size_t low_watermark;        /* reading resumes below this */

    /* plain HTTP requests */
    uint64_t request_timeout_ms;   /* a next head must complete, a body may pause; 0 = off */
    uint64_t response_timeout_ms;  /* the backend's response head must arrive within */
    uint64_t http_idle_timeout_ms; /* a kept-alive connection waits this long for a request */
    uint64_t max_request_body;     /* bytes; 0 = unlimited */
};

#endif
