/* Strict incremental HTTP/1.1 head parser (requests and responses).
 *
 * The parser does no I/O and keeps no state between calls except the
 * caller's `scan` hint: call it again with the whole buffer each time more
 * bytes arrive. It first looks for the empty line that ends the head,
 * starting at *scan, so feeding a head one byte at a time costs O(n) in
 * total; only once the head is complete is it parsed and validated.
 * Parsed fields are spans into the caller's buffer (no copies). */
#ifndef WSG_HTTP_PARSER_H
#define WSG_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>

struct http_span {
    const char *p; /* borrowed: points into the parsed buffer */
    size_t n;      /* length in bytes */
};

struct http_header {
    struct http_span name;  /* as sent; compare with http_span_ieq */
    struct http_span value; /* leading and trailing OWS removed */
};

struct http_limits {
    size_t max_head;      /* bytes, request/status line + headers + final CRLF */
    unsigned max_headers; /* header fields; also the capacity of the caller's array */
};

struct http_request {
    struct http_span method;
    struct http_span target;     /* request-target as sent (origin-form: path + query) */
    int minor_version;           /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
    struct http_header *headers; /* borrowed: caller's array of lim->max_headers entries */
    unsigned nheaders;
};

struct http_response {
    int minor_version;
    int status;                  /* 100..999 */
    struct http_span reason;     /* may be empty */
    struct http_header *headers; /* borrowed: caller's array of lim->max_headers entries */
    unsigned nheaders;
};

/* Parse a request head from buf[0..len).
 * req->headers must point to an array of lim->max_headers entries.
 * *scan: in/out scan hint; set it to 0 before the first call on a buffer and
 * pass it back unchanged while the buffer only grows.
 * Returns the head length in bytes (> 0, the body or frames start there) when
 * complete; ERR_AGAIN when the head is not complete yet and len < max_head;
 * ERR_HTTP_HEAD_TOO_BIG when no complete head fits in max_head bytes;
 * ERR_HTTP_TOO_MANY_HEADERS; ERR_HTTP_VERSION for a version other than
 * HTTP/1.x; ERR_HTTP_BARE_LF for a line ended by LF alone; ERR_HTTP_OBS_FOLD
 * for a header line starting with SP or HTAB; ERR_HTTP_BAD_CHAR for CR, LF,
 * NUL or another control character inside a header name or value, or a name
 * that is not an RFC 9110 token; ERR_HTTP_SYNTAX for anything else malformed
 * (bad request line, missing colon, empty name, whitespace before the
 * colon, ...). Lines are checked in order and the first error found is
 * returned; a bare LF anywhere in the head is found before the head is
 * parsed. The request-target must be printable ASCII (0x21..0x7E).
 * The method is any token; the caller decides which methods it accepts. */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, size_t *scan);

/* Same contract for a response head ("HTTP/1.1 101 Switching Protocols").
 * A status outside 100..999 or a malformed status line is ERR_HTTP_SYNTAX. */
int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        struct http_response *resp, size_t *scan);

/* Case-insensitive (ASCII) comparison of a span with a NUL-terminated literal. */
bool http_span_ieq(struct http_span s, const char *lit);

/* First header named `name` (case-insensitive) at or after index *from;
 * returns its index and sets *from past it, or -1 (and *from = n) when there
 * is none.
 * Pass *from = 0 to start. */
int http_header_next(const struct http_header *h, unsigned n, const char *name, unsigned *from);

/* Number of headers named `name`. */
unsigned http_header_count(const struct http_header *h, unsigned n, const char *name);

/* Iterate the elements of a comma-separated list value (RFC 9110 §5.6.1):
 * *list is consumed from the front; on return *elem is the next non-empty
 * element with OWS trimmed. Returns true while an element was found. */
bool http_list_next(struct http_span *list, struct http_span *elem);

/* True when any header named `name` holds `token` as a list element
 * (case-insensitive), e.g. http_has_token(h, n, "Connection", "upgrade"). */
bool http_has_token(const struct http_header *h, unsigned n, const char *name, const char *token);

/* Incremental chunked transfer-coding decoder (RFC 9112 §7.1), for relaying a
 * backend's error body. Chunk extensions and trailer fields are read and
 * dropped. */
struct http_chunked {
    int state;                    /* internal; zero-initialise */
    unsigned long long remaining; /* bytes left in the current chunk */
    bool done;                    /* set once the last chunk and trailers are consumed */
};

/* Decode from in[0..n) into out (capacity out_cap; out may equal in; NULL
 * to only check the syntax and count: the data is skipped, not copied).
 * *out_n receives the number of decoded bytes written. Returns the number of
 * input bytes consumed (it stops early when out is full or when done), or
 * ERR_HTTP_CHUNKED on malformed input (bad hex size, size of 2^60 or more,
 * missing CRLF after data, control characters in extensions or trailers);
 * the error is sticky. Once done, further calls consume nothing. */
int http_chunked_decode(struct http_chunked *c, const char *in, size_t n, char *out, size_t out_cap,
                        size_t *out_n);

#endif
