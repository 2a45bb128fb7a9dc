/* RFC 6455 §4 opening handshake, both roles: the proxy validates the client's
 * upgrade request, builds its own request to the backend, validates the
 * backend's 101 and builds the 101 (or an error) for the client.
 * Pure functions: no I/O, no allocation; output goes to caller buffers. */
#ifndef WSG_HTTP_HANDSHAKE_H
#define WSG_HTTP_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"

#define HS_KEY_LEN    24 /* base64 of a 16-byte nonce */
#define HS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
/* Most options (list elements, over all Connection fields) a message may carry;
 * more make matching each field against them too costly. */
#define HS_MAX_CONN_OPTIONS 16

/* What hs_check_request extracts from a valid client request. All spans
 * borrow from the request buffer. */
struct hs_request_info {
    struct http_span path;       /* request-target (origin-form, path + query) */
    struct http_span host;       /* Host value */
    struct http_span key;        /* Sec-WebSocket-Key value, HS_KEY_LEN bytes */
    struct http_span request_id; /* first X-Request-Id value, empty when absent */
};

/* Validate a parsed client request as a WebSocket upgrade.
 * Returns 0 and fills *info, or one of: ERR_HTTP_METHOD (not GET),
 * ERR_HTTP_VERSION (HTTP/1.0), ERR_HS_NO_HOST (no Host or an empty one),
 * ERR_HS_DUP_HOST,
 * ERR_HS_BODY (Transfer-Encoding present, or Content-Length other than 0),
 * ERR_HS_NOT_UPGRADE (Upgrade lacks "websocket" or Connection lacks
 * "upgrade"), ERR_HS_VERSION (Sec-WebSocket-Version missing or not 13),
 * ERR_HS_BAD_KEY (Sec-WebSocket-Key missing, repeated, or not the base64 of
 * exactly 16 bytes), ERR_HTTP_SYNTAX (request-target not origin-form, a
 * Host value with characters outside RFC 3986 host [":" port], or more than
 * HS_MAX_CONN_OPTIONS Connection options). */
int hs_check_request(const struct http_request *req, struct hs_request_info *info);

/* Sec-WebSocket-Accept for a key of at most HS_KEY_LEN bytes:
 * base64(SHA-1(key + RFC 6455 GUID)). out receives HS_ACCEPT_LEN characters
 * and a NUL (or just a NUL for a longer key or if OpenSSL fails, which no
 * backend accept value can match). */
void hs_accept_key(const char *key, size_t keylen, char out[HS_ACCEPT_LEN + 1]);

/* Base64 of a 16-byte nonce; out receives HS_KEY_LEN characters and a NUL. */
void hs_make_key(const uint8_t nonce[16], char out[HS_KEY_LEN + 1]);

/* What the proxy adds to the backend request. */
struct hs_upstream {
    const char *key;             /* our Sec-WebSocket-Key, HS_KEY_LEN chars */
    const char *client_ip;       /* textual client address, appended to X-Forwarded-For */
    const char *proto;           /* "http" or "https", for X-Forwarded-Proto */
    struct http_span request_id; /* X-Request-Id to send (kept or generated) */
    struct http_span target;     /* request-target to send; empty: the client's as sent */
    const char *extra;           /* header lines wsgate adds (each ending in CRLF), or NULL */
    const char *extra2;          /* more of them (authentication's), or NULL */
    const char *const *strip;    /* names of client fields not forwarded (wsgate sets them) */
    size_t nstrip;
    /* upgrade: the Sec-WebSocket-Protocol list to send instead of the
     * client's (when protocols_set; empty: none) */
    struct http_span protocols;
    bool protocols_set;
};

/* Write the backend upgrade request into out[0..cap): "GET <target> HTTP/1.1",
 * every client header except hop-by-hop ones (Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE, Trailer,
 * Transfer-Encoding, Upgrade, Content-Length), except every header named in
 * the client's Connection header, except Sec-WebSocket-Key, -Version,
 * -Extensions and -Accept, and except X-Forwarded-For/-Proto/-Host and
 * X-Request-Id (replaced); then Upgrade, Connection, our key, version 13,
 * X-Forwarded-For (client's value + ", " + client_ip, or client_ip),
 * X-Forwarded-Proto, X-Forwarded-Host (client's Host), X-Request-Id, then
 * up->extra. A client's X-Client-Cert-Subject is never forwarded (wsgate
 * sets it from a verified certificate).
 * Host, Origin, Cookie, Authorization, User-Agent and Sec-WebSocket-Protocol
 * are forwarded unchanged (Host even when the client names it in Connection).
 * X-Forwarded-For is left out when there is neither a client value nor
 * client_ip; X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id when theirs
 * is NULL or empty. Returns the length written, ERR_NOMEM when it does not
 * fit in cap, or ERR_RANGE for more than HS_MAX_CONN_OPTIONS Connection options
 * (which hs_check_request has already refused). */
int hs_build_upstream(char *out, size_t cap, const struct http_request *req,
                      const struct hs_request_info *info, const struct hs_upstream *up);

/* Validate the backend's response head to our request.
 * expected_accept: hs_accept_key() of the key we sent. req: the client's
 * request (for the subprotocols it offered). On success returns 0 and sets
 * *protocol to the backend's Sec-WebSocket-Protocol choice (empty span when
 * none; it borrows from the response buffer). Errors: ERR_HS_STATUS (status
 * other than 101, or an HTTP/1.0 101), ERR_HS_BAD_UPGRADE (not exactly one
 * Upgrade field equal to "websocket", or Connection lacking "upgrade"),
 * ERR_HS_BAD_ACCEPT (missing, repeated or wrong), ERR_HS_BAD_PROTOCOL (a
 * protocol that is not a single token the client offered, compared
 * case-sensitively, or repeated),
 * ERR_HS_BAD_EXTENSION (any Sec-WebSocket-Extensions: none was offered). */
int hs_check_response(const struct http_response *resp, const char *expected_accept,
                      const struct http_request *req, struct http_span *protocol);

/* The client's 101: Upgrade, Connection, Sec-WebSocket-Accept computed from
 * client_key, Sec-WebSocket-Protocol when protocol is non-empty, then
 * `extra` (complete header lines, each ending in CRLF, e.g. a Set-Cookie;
 * NULL for none). Returns the length written or ERR_NOMEM (also if OpenSSL
 * fails). */
int hs_build_101(char *out, size_t cap, struct http_span client_key, struct http_span protocol,
                 const char *extra);

/* The same, also carrying the fields of the backend's own 101 (its
 * Set-Cookie, custom X- fields, ...) except hop-by-hop ones, those its
 * Connection names, and the handshake fields wsgate computes for the client
 * (Sec-WebSocket-Accept, -Protocol, -Extensions, -Version). backend may be
 * NULL. ERR_RANGE for too many Connection options. */
int hs_build_101_from(char *out, size_t cap, struct http_span client_key, struct http_span protocol,
                      const struct http_response *backend, const char *extra);

/* A complete error response generated by the proxy: status line with the
 * standard reason phrase, Content-Type: text/plain, Content-Length,
 * Connection: close, `extra` (complete header lines ending in CRLF, e.g.
 * "Retry-After: 5\r\n"; NULL for none), and a one-line body naming the
 * reason (`detail`, e.g.
 * err_str(); control characters become spaces; NULL or "" gives the reason
 * phrase). A 426 also carries "Upgrade: websocket",
 * "Sec-WebSocket-Version: 13" and "Connection: Upgrade, close"; a 405 carries
 * "Allow: GET". Returns the length written, ERR_RANGE for a status outside
 * 100..999, or ERR_NOMEM. */
int hs_build_error(char *out, size_t cap, int status, const char *detail, const char *extra);

/* The head of a backend's non-101 response relayed to the client: its status
 * line (as HTTP/1.1; the standard reason phrase when the backend sent none),
 * its headers minus hop-by-hop ones (list above, plus those named in
 * its Connection header) and minus Content-Length, then
 * "Content-Length: <body_len>" and "Connection: close".
 * Returns the length written, ERR_RANGE for a status outside 100..999 or more
 * than HS_MAX_CONN_OPTIONS Connection options (answer 502 instead), or
 * ERR_NOMEM. */
int hs_build_relayed_head(char *out, size_t cap, const struct http_response *resp, size_t body_len);

/* ---- plain HTTP (RFC 9112) ---- */

/* How a message's body is delimited. */
enum http_framing {
    HTTP_BODY_NONE,    /* no body */
    HTTP_BODY_LENGTH,  /* exactly `length` bytes */
    HTTP_BODY_CHUNKED, /* chunked transfer coding, to its last chunk and trailers */
    HTTP_BODY_CLOSE,   /* until the sender closes the connection (responses only) */
};

struct http_body {
    enum http_framing kind;
    uint64_t length; /* HTTP_BODY_LENGTH */
};

/* A request's body framing (RFC 9112 §6.1-6.3). ERR_HTTP_FRAMING for what
 * request smuggling is made of: Transfer-Encoding with Content-Length, a
 * Transfer-Encoding in HTTP/1.0, a coding other than "chunked" alone, more
 * than one Content-Length field, or one that is not 1*DIGIT (below 2^60). */
int http_request_body(const struct http_request *req, struct http_body *out);

/* A response's body framing (RFC 9112 §6.3): none for a HEAD request, 1xx,
 * 204 and 304; chunked; Content-Length; else until close (also for codings
 * other than chunked). ERR_HTTP_FRAMING for Transfer-Encoding with
 * Content-Length, or an invalid or repeated Content-Length. */
int http_response_body(const struct http_response *resp, bool head_request, struct http_body *out);

/* The request head sent to a backend for a plain request: method, target
 * (up->target, or the client's), HTTP/1.1; every client field but the
 * hop-by-hop ones, those the client's Connection names (Host excepted), and
 * the forwarding fields; then the framing fields for `body` (the same
 * framing the client used), X-Forwarded-For/-Proto/-Host and X-Request-Id
 * as for upgrades. A request without Host gets `default_host` (may be
 * NULL). Returns the length written, ERR_NOMEM when it does not fit, or
 * ERR_RANGE for too many Connection options. */
int hs_build_forward_request(char *out, size_t cap, const struct http_request *req,
                             const struct hs_upstream *up, const struct http_body *body,
                             const char *default_host);

/* The head of a backend's response sent to the client: status line as
 * HTTP/1.1, every field but the hop-by-hop ones and those its Connection
 * names (a bodiless answer keeps its Content-Length), then, for a final
 * response, the framing fields for `body` (how wsgate sends the body on),
 * "Connection: close" when !keep_alive ("keep-alive" for an HTTP/1.0 client
 * that keeps it), and `extra` header lines (may be NULL). An informational
 * (1xx) response gets no framing or extra fields. Returns the length
 * written, ERR_NOMEM or ERR_RANGE (status out of range, too many Connection
 * options). */
int hs_build_forward_response(char *out, size_t cap, const struct http_response *resp,
                              const struct http_body *body, bool keep_alive, bool client_10,
                              const char *extra);

#endif
