/* libFuzzer target for the request-path normalizer: any bytes either fail
 * with one of the documented errors or give a path that starts with '/',
 * is no longer than the input, has no dot segment, no encoded slash and
 * no unreserved character left encoded, and normalizes to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/path.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool merge = size > 0 && (data[0] & 1);
    const char *p = (const char *)data + (size > 0);
    size_t n = size > 0 ? size - 1 : 0;
    char *out = malloc(n + 1), *again = malloc(n + 1);
    size_t len = 0, len2 = 0;
    int rc;

    CHECK(out && again);
    rc = path_normalize(p, n, merge, out, n + 1, &len);
    if (rc < 0) {
        CHECK(rc == ERR_PATH_NOT_ORIGIN || rc == ERR_PATH_ENCODED_SLASH ||
              rc == ERR_PATH_BAD_ESCAPE || rc == ERR_PATH_DOT_DOT);
        goto done;
    }
    CHECK(len >= 1 && len <= n && out[0] == '/');
    for (size_t i = 0; i < len; i++) {
        size_t s = i;
        CHECK(out[i] != '\\');
        if (out[i] == '%') {
            CHECK(i + 2 < len);
            int v = hexv(out[i + 1]) * 16 + hexv(out[i + 2]);
            CHECK(hexv(out[i + 1]) >= 0 && hexv(out[i + 2]) >= 0);
            CHECK(v != '/' && v != '\\' && v != 0);
            CHECK(!((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
                    v == '-' || v == '.' || v == '_' || v == '~'));
        }
        if (out[i] == '/' && i + 1 < len) {
            /* No "." or ".." segment survives; no "//" with merging. */
            s = i + 1;
            size_t e = s;
            while (e < len && out[e] != '/')
                e++;
            CHECK(!(e - s == 1 && out[s] == '.'));
            CHECK(!(e - s == 2 && out[s] == '.' && out[s + 1] == '.'));
            CHECK(!merge || e > s || e == len);
        }
    }
    CHECK(path_normalize(out, len, merge, again, len + 1, &len2) == 0);
    CHECK(len2 == len && memcmp(again, out, len) == 0);
done:
    free(out);
    free(again);
    return 0;
}
