/* libFuzzer target for the PROXY protocol parser (v1 text, v2 binary):
 * any bytes give a header length within the input and PROXY_MAX, ERR_AGAIN
 * (only when the input is shorter than PROXY_MAX) or ERR_PROXY; a header
 * found is self-delimiting (its own bytes alone parse to the same length
 * and address), every shorter prefix of it asks for more, and an address
 * it gives is IPv4 or IPv6. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admit/proxy_proto.h"
#include "core/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_info a, b;
    int rc = proxy_parse(data, size, &a);

    if (rc == ERR_AGAIN) {
        CHECK(size < PROXY_MAX);
        return 0;
    }
    if (rc == ERR_PROXY)
        return 0;
    CHECK(rc > 0 && (size_t)rc <= size && rc <= PROXY_MAX);
    CHECK(a.version == 1 || a.version == 2);
    if (!a.local)
        CHECK(a.src.ss_family == AF_INET || a.src.ss_family == AF_INET6);
    /* Self-delimiting: the header's own bytes give the same answer. */
    CHECK(proxy_parse(data, (size_t)rc, &b) == rc);
    CHECK(a.local == b.local && a.version == b.version);
    CHECK(memcmp(&a.src, &b.src, sizeof(a.src)) == 0);
    /* A strict prefix is incomplete, never a different header. */
    for (size_t cut = 0; cut < (size_t)rc; cut += 1 + (size_t)rc / 16)
        CHECK(proxy_parse(data, cut, &b) == ERR_AGAIN);
    return 0;
}
