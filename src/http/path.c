#include "http/path.h"

#include <string.h>

#include "core/err.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 §2.3. */
static bool unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int path_normalize(const char *p, size_t n, bool merge_slashes, char *out, size_t cap,
                   size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 1, i = 1;
    bool dir_end = false;

    if (n == 0 || p[0] != '/')
        return ERR_PATH_NOT_ORIGIN;
    if (cap <= n)
        return ERR_RANGE;
    out[0] = '/';
    /* out holds "/" followed by each kept segment and a '/'; the final '/'
     * is dropped at the end unless the path names a directory. */
    while (i <= n) {
        size_t seg = o;
        size_t len;
        while (i < n && p[i] != '/') {
            char c = p[i];
            if (c == '%') {
                int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
                int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
                int v;
                if (hi < 0 || lo < 0)
                    return ERR_PATH_BAD_ESCAPE;
                v = hi * 16 + lo;
                if (v == '/' || v == '\\' || v == 0)
                    return ERR_PATH_ENCODED_SLASH;
                if (unreserved(v)) {
                    out[o++] = (char)v;
                } else {
                    out[o++] = '%';
                    out[o++] = hex[hi];
                    out[o++] = hex[lo];
                }
                i += 3;
                continue;
            }
            if (c == '\\')
                return ERR_PATH_ENCODED_SLASH;
            out[o++] = c;
            i++;
        }
        len = o - seg;
        if (len == 1 && out[seg] == '.') {
            o = seg;
            dir_end = true;
        } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            o = seg;
            if (o == 1)
                return ERR_PATH_DOT_DOT;
            /* Drop the previous segment and its '/': back to the '/'
             * before it. */
            o--;
            while (o > 0 && out[o - 1] != '/')
                o--;
            dir_end = true;
        } else if (len == 0) {
            /* An empty segment: "//", or the end of "/a/". */
            if (i < n && !merge_slashes)
                out[o++] = '/';
            dir_end = true;
        } else {
            out[o++] = '/';
            dir_end = false;
        }
        i++; /* past the '/' (or the end) */
    }
    if (!dir_end && o > 1)
        o--;
    *out_len = o;
    return 0;
}
