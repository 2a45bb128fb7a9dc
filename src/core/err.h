/* wsgate error codes: one enum for the whole program, one table for their text.
 *
 * Functions return 0 (or a count) on success and a negative ERR_* value on
 * failure. err_name() gives a short stable token for logs ("ws_utf8"),
 * err_str() a sentence for people. */
#ifndef WSG_CORE_ERR_H
#define WSG_CORE_ERR_H

/* The one table of what each error means: X(name, token, text, status,
 * close).
 *   token   short stable word for logs ("ws_utf8")
 *   text    a sentence for people
 *   status  the HTTP status a client gets for it before the upgrade
 *   close   the WebSocket close code a peer gets when it broke the protocol
 *           this way after the upgrade (RFC 6455 §7.4.1: 1007 for data
 *           inconsistent with its type, 1009 for too big, 1002 otherwise)
 * A module adds rows here, never switch arms elsewhere. */
#define ERR_MAP(X)                                                                                 \
    X(AGAIN, "again", "more input is needed", 400, 1002)                                           \
    X(NOMEM, "nomem", "out of memory", 500, 1002)                                                  \
    X(SYS, "sys", "system call failed", 500, 1002)                                                 \
    X(CONFIG, "config", "invalid configuration", 500, 1002)                                        \
    X(RANGE, "range", "value out of range", 400, 1002)                                             \
    X(HTTP_SYNTAX, "http_syntax", "malformed HTTP message", 400, 1002)                             \
    X(HTTP_METHOD, "http_method", "method is not GET", 405, 1002)                                  \
    X(HTTP_VERSION, "http_version", "HTTP version is not 1.1", 400, 1002)                          \
    X(HTTP_BARE_LF, "http_bare_lf", "line ends with LF without CR", 400, 1002)                     \
    X(HTTP_OBS_FOLD, "http_obs_fold", "obsolete header line folding", 400, 1002)                   \
    X(HTTP_BAD_CHAR, "http_bad_char", "forbidden character in header name or value", 400, 1002)    \
    X(HTTP_HEAD_TOO_BIG, "http_head_too_big", "header block too large", 431, 1002)                 \
    X(HTTP_TOO_MANY_HEADERS, "http_too_many_headers", "too many header fields", 431, 1002)         \
    X(HTTP_CHUNKED, "http_chunked", "malformed chunked body", 400, 1002)                           \
    X(HTTP_FRAMING, "http_framing", "invalid or ambiguous Content-Length/Transfer-Encoding", 400,  \
      1002)                                                                                        \
    X(HTTP_BODY_TOO_BIG, "http_body_too_big", "request body larger than max_request_body", 413,    \
      1002)                                                                                        \
    X(HTTP_METHOD_CONNECT, "http_connect", "CONNECT is not proxied", 405, 1002)                    \
    X(HTTP_TIMEOUT, "http_timeout", "request not received in time", 408, 1002)                     \
    X(RESPONSE_TIMEOUT, "response_timeout", "backend did not answer the request in time", 504,     \
      1002)                                                                                        \
    X(TLS_ON_PLAIN, "tls_on_plain_listener", "TLS handshake on a plain listener", 400, 1002)       \
    X(HTTP_ON_TLS, "http_on_tls_listener", "plain HTTP request on a TLS listener", 400, 1002)      \
    X(TLS_HANDSHAKE, "tls_handshake", "TLS handshake failed", 400, 1002)                           \
    X(TLS, "tls", "TLS protocol error", 400, 1002)                                                 \
    X(BACKEND_TLS, "backend_tls", "TLS to the backend failed", 502, 1002)                          \
    X(PROXY, "proxy_protocol", "missing or invalid PROXY protocol header", 400, 1002)              \
    X(PROXY_UNTRUSTED, "proxy_untrusted",                                                          \
      "PROXY protocol header from a peer not in trusted_proxies", 400, 1002)                       \
    X(HS_NO_HOST, "hs_no_host", "Host header missing", 400, 1002)                                  \
    X(HS_DUP_HOST, "hs_dup_host", "Host header repeated", 400, 1002)                               \
    X(HS_BODY, "hs_body", "upgrade request carries a body", 400, 1002)                             \
    X(HS_BAD_KEY, "hs_bad_key", "Sec-WebSocket-Key missing or malformed", 400, 1002)               \
    X(HS_VERSION, "hs_version", "unsupported Sec-WebSocket-Version", 426, 1002)                    \
    X(HS_NOT_UPGRADE, "hs_not_upgrade", "not a WebSocket upgrade request", 426, 1002)              \
    X(HS_STATUS, "hs_status", "backend answered without 101", 502, 1002)                           \
    X(HS_BAD_ACCEPT, "hs_bad_accept", "backend sent a wrong Sec-WebSocket-Accept", 502, 1002)      \
    X(HS_BAD_UPGRADE, "hs_bad_upgrade", "backend 101 lacks Upgrade or Connection tokens", 502,     \
      1002)                                                                                        \
    X(HS_BAD_PROTOCOL, "hs_bad_protocol", "backend chose a subprotocol the client did not offer",  \
      502, 1002)                                                                                   \
    X(HS_BAD_EXTENSION, "hs_bad_extension", "backend chose an extension that was not offered",     \
      502, 1002)                                                                                   \
    X(WS_UNMASKED, "ws_unmasked", "client frame is not masked", 400, 1002)                         \
    X(WS_MASKED, "ws_masked", "server frame is masked", 400, 1002)                                 \
    X(WS_RSV, "ws_rsv", "reserved bits set with no extension", 400, 1002)                          \
    X(WS_OPCODE, "ws_opcode", "reserved opcode", 400, 1002)                                        \
    X(WS_CTRL_TOO_BIG, "ws_ctrl_too_big", "control frame longer than 125 bytes", 400, 1002)        \
    X(WS_CTRL_FRAGMENTED, "ws_ctrl_fragmented", "fragmented control frame", 400, 1002)             \
    X(WS_CONTINUATION, "ws_continuation", "continuation frame outside a message", 400, 1002)       \
    X(WS_NOT_CONTINUATION, "ws_not_continuation", "new data frame inside a fragmented message",    \
      400, 1002)                                                                                   \
    X(WS_LENGTH, "ws_length", "64-bit frame length with the top bit set", 400, 1002)               \
    X(WS_CLOSE_PAYLOAD, "ws_close_payload", "close frame payload of one byte", 400, 1002)          \
    X(WS_CLOSE_CODE, "ws_close_code", "invalid close code", 400, 1002)                             \
    X(WS_UTF8, "ws_utf8", "invalid UTF-8 in text", 400, 1007)                                      \
    X(WS_FRAME_TOO_BIG, "ws_frame_too_big", "frame larger than max_frame_size", 400, 1009)         \
    X(WS_MSG_TOO_BIG, "ws_message_too_big", "message larger than max_message_size", 400, 1009)     \
    X(PATH_NOT_ORIGIN, "path_not_origin", "request-target is not a path starting with /", 400,     \
      1002)                                                                                        \
    X(PATH_ENCODED_SLASH, "path_encoded_slash", "path has an encoded slash or a backslash", 400,   \
      1002)                                                                                        \
    X(PATH_BAD_ESCAPE, "path_bad_escape", "malformed percent-encoding in the path", 400, 1002)     \
    X(PATH_DOT_DOT, "path_dot_dot", "path climbs above / with ..", 400, 1002)                      \
    X(NO_ROUTE, "no_route", "no route matches the path", 404, 1002)                                \
    X(ORIGIN, "origin", "Origin not allowed on this route", 403, 1002)                             \
    X(AUTH, "auth", "missing or invalid credentials", 401, 1008)                                   \
    X(AUTH_FORBIDDEN, "forbidden", "the credentials lack a required claim", 403, 1008)             \
    X(TOKEN_EXPIRED, "token_expired", "the connection's token expired", 401, 1008)                 \
    X(RATE_LIMITED, "rate_limited", "too many handshakes or connections from this address", 429,   \
      1008)                                                                                        \
    X(ROUTE_FULL, "route_full", "the route's max_connections is reached", 503, 1002)               \
    X(MSG_RATE, "message_rate", "messages over the route's limits", 429, 1008)                     \
    X(CTL_FLOOD, "control_flood", "control frames over max_control_frames_per_second", 429, 1008)  \
    X(IP_DENIED, "ip_denied", "client address not allowed on this route", 403, 1002)               \
    X(SUBPROTOCOL, "subprotocol", "no allowed subprotocol offered", 400, 1002)                     \
    X(NO_BACKEND, "no_backend", "no backend of the upstream can take a connection", 503, 1002)     \
    X(OVERLOADED, "overloaded", "max_connections reached", 503, 1002)                              \
    X(HANDSHAKE_TIMEOUT, "handshake_timeout", "handshake not completed in time", 408, 1002)        \
    X(BACKEND_CONNECT, "backend_connect", "backend connection failed", 502, 1002)                  \
    X(BACKEND_TIMEOUT, "backend_timeout", "backend did not answer in time", 504, 1002)             \
    X(BACKEND_CLOSED, "backend_closed", "backend closed the connection", 502, 1002)                \
    X(CLIENT_CLOSED, "client_closed", "client closed the connection", 400, 1002)                   \
    X(BACKEND_PROTOCOL, "backend_protocol", "backend broke the WebSocket protocol", 400, 1002)     \
    X(BACKEND_HTTP, "backend_bad_response", "backend sent an invalid HTTP response", 502, 1002)    \
    X(CLIENT_PROTOCOL, "client_protocol", "client broke the WebSocket protocol", 400, 1002)        \
    X(PONG_TIMEOUT, "pong_timeout", "peer did not answer a ping in time", 400, 1002)               \
    X(SLOW_CONSUMER, "slow_consumer", "peer did not read what waited for it in time", 400, 1002)   \
    X(IDLE_TIMEOUT, "idle_timeout", "no data frames for idle_timeout", 400, 1002)                  \
    X(CLOSE_TIMEOUT, "close_timeout", "close handshake not completed in time", 400, 1002)          \
    X(SHUTDOWN, "shutdown", "wsgate is shutting down", 503, 1002)

#define ERR_X_IDX(name, tok, text, status, close) ERR_IDX_##name,
enum { ERR_MAP(ERR_X_IDX) ERR_IDX__COUNT };
#undef ERR_X_IDX

#define ERR_X_VAL(name, tok, text, status, close) ERR_##name = -(ERR_IDX_##name + 1),
enum err { ERR_OK = 0, ERR_MAP(ERR_X_VAL) };
#undef ERR_X_VAL

/* Short token for structured logs; "ok" for 0, "unknown" for codes not in the map. */
const char *err_name(int code);

/* Human-readable sentence; never NULL. */
const char *err_str(int code);

/* HTTP status for an error answered before the upgrade; 500 for codes not
 * in the map. */
int err_http_status(int code);

/* Close code for a peer that broke the protocol this way; 1002 for codes
 * not in the map. */
unsigned err_close_code(int code);

#endif
