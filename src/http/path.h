/* Request paths, normalized before anything matches on them or forwards
 * them (RFC 3986 §6.2.2): a route on /ws must not let /ws/%2E%2E/admin
 * through to a backend that decodes it into /admin. */
#ifndef WSG_HTTP_PATH_H
#define WSG_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Normalize the path p[0..n) (no query: the caller splits at '?'):
 *   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are
 *     decoded; other escapes are kept, with upper-case hex digits;
 *   - "." and ".." segments are resolved (RFC 3986 §5.2.4); a path that
 *     names a directory ("/a/.", "/a/b/..") keeps its trailing '/';
 *   - with merge_slashes, runs of '/' become one.
 * Fails, with nothing written that the caller may use, on: a path not
 * starting with '/' (ERR_PATH_NOT_ORIGIN); an encoded '/', '\' or NUL
 * (%2F, %5C, %00) or a raw '\' (ERR_PATH_ENCODED_SLASH); a malformed escape
 * (ERR_PATH_BAD_ESCAPE); a ".." that would climb above "/"
 * (ERR_PATH_DOT_DOT). The result is never longer than the input, but out
 * needs cap > n bytes while it works (ERR_RANGE otherwise). Returns 0 and
 * sets *out_len.
 * Pure: no allocation, no I/O. */
int path_normalize(const char *p, size_t n, bool merge_slashes, char *out, size_t cap,
                   size_t *out_len);

#endif
