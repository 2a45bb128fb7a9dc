/* wsgate error codes: one enum for the whole program, one table for their text.
 *
 * Functions return 0 (or a count) on success and a negative ERR_* value on
 * failure. err_name() gives a short stable token for logs ("ws_utf8"),
 * err_str() a sentence for people. */
#ifndef WSG_CORE_ERR_H
#define WSG_CORE_ERR_H

/* X(name, token, text) */
#define ERR_MAP(X)                                                                                 \
    X(AGAIN, "again", "more input is needed")                                                      \
    X(NOMEM, "nomem", "out of memory")                                                             \
    X(SYS, "sys", "system call failed")                                                            \
    X(CONFIG, "config", "invalid configuration")                                                   \
    X(RANGE, "range", "value out of range")                                                        \
    X(HTTP_SYNTAX, "http_syntax", "malformed HTTP message")                                        \
    X(HTTP_METHOD, "http_method", "method is not GET")                                             \
    X(HTTP_VERSION, "http_version", "HTTP version is not 1.1")                                     \
    X(HTTP_BARE_LF, "http_bare_lf", "line ends with LF without CR")                                \
    X(HTTP_OBS_FOLD, "http_obs_fold", "obsolete header line folding")                              \
    X(HTTP_BAD_CHAR, "http_bad_char", "forbidden character in header name or value")               \
    X(HTTP_HEAD_TOO_BIG, "http_head_too_big", "header block too large")                            \
    X(HTTP_TOO_MANY_HEADERS, "http_too_many_headers", "too many header fields")                    \
    X(HTTP_CHUNKED, "http_chunked", "malformed chunked body")                                      \
    X(HS_NO_HOST, "hs_no_host", "Host header missing")                                             \
    X(HS_DUP_HOST, "hs_dup_host", "Host header repeated")                                          \
    X(HS_BODY, "hs_body", "upgrade request carries a body")                                        \
    X(HS_BAD_KEY, "hs_bad_key", "Sec-WebSocket-Key missing or malformed")                          \
    X(HS_VERSION, "hs_version", "unsupported Sec-WebSocket-Version")                               \
    X(HS_NOT_UPGRADE, "hs_not_upgrade", "not a WebSocket upgrade request")                         \
    X(HS_STATUS, "hs_status", "backend answered without 101")                                      \
    X(HS_BAD_ACCEPT, "hs_bad_accept", "backend sent a wrong Sec-WebSocket-Accept")                 \
    X(HS_BAD_UPGRADE, "hs_bad_upgrade", "backend 101 lacks Upgrade or Connection tokens")          \
    X(HS_BAD_PROTOCOL, "hs_bad_protocol", "backend chose a subprotocol the client did not offer")  \
    X(HS_BAD_EXTENSION, "hs_bad_extension", "backend chose an extension that was not offered")     \
    X(WS_UNMASKED, "ws_unmasked", "client frame is not masked")                                    \
    X(WS_MASKED, "ws_masked", "server frame is masked")                                            \
    X(WS_RSV, "ws_rsv", "reserved bits set with no extension")                                     \
    X(WS_OPCODE, "ws_opcode", "reserved opcode")                                                   \
    X(WS_CTRL_TOO_BIG, "ws_ctrl_too_big", "control frame longer than 125 bytes")                   \
    X(WS_CTRL_FRAGMENTED, "ws_ctrl_fragmented", "fragmented control frame")                        \
    X(WS_CONTINUATION, "ws_continuation", "continuation frame outside a message")                  \
    X(WS_NOT_CONTINUATION, "ws_not_continuation", "new data frame inside a fragmented message")    \
    X(WS_LENGTH, "ws_length", "64-bit frame length with the top bit set")                          \
    X(WS_CLOSE_PAYLOAD, "ws_close_payload", "close frame payload of one byte")                     \
    X(WS_CLOSE_CODE, "ws_close_code", "invalid close code")                                        \
    X(WS_UTF8, "ws_utf8", "invalid UTF-8 in text")                                                 \
    X(WS_FRAME_TOO_BIG, "ws_frame_too_big", "frame larger than max_frame_size")                    \
    X(WS_MSG_TOO_BIG, "ws_message_too_big", "message larger than max_message_size")                \
    X(NO_ROUTE, "no_route", "no route matches the path")                                           \
    X(OVERLOADED, "overloaded", "max_connections reached")                                         \
    X(HANDSHAKE_TIMEOUT, "handshake_timeout", "handshake not completed in time")                   \
    X(BACKEND_CONNECT, "backend_connect", "backend connection failed")                             \
    X(BACKEND_TIMEOUT, "backend_timeout", "backend did not answer in time")                        \
    X(BACKEND_CLOSED, "backend_closed", "backend closed the connection")                           \
    X(CLIENT_CLOSED, "client_closed", "client closed the connection")                              \
    X(BACKEND_PROTOCOL, "backend_protocol", "backend broke the WebSocket protocol")                \
    X(CLIENT_PROTOCOL, "client_protocol", "client broke the WebSocket protocol")                   \
    X(PONG_TIMEOUT, "pong_timeout", "peer did not answer a ping in time")                          \
    X(SLOW_CONSUMER, "slow_consumer", "peer did not read what waited for it in time")              \
    X(IDLE_TIMEOUT, "idle_timeout", "no data frames for idle_timeout")                             \
    X(CLOSE_TIMEOUT, "close_timeout", "close handshake not completed in time")                     \
    X(SHUTDOWN, "shutdown", "wsgate is shutting down")

#define ERR_X_IDX(name, tok, text) ERR_IDX_##name,
enum { ERR_MAP(ERR_X_IDX) ERR_IDX__COUNT };
#undef ERR_X_IDX

#define ERR_X_VAL(name, tok, text) ERR_##name = -(ERR_IDX_##name + 1),
enum err { ERR_OK = 0, ERR_MAP(ERR_X_VAL) };
#undef ERR_X_VAL

/* Short token for structured logs; "ok" for 0, "unknown" for codes not in the map. */
const char *err_name(int code);

/* Human-readable sentence; never NULL. */
const char *err_str(int code);

#endif
