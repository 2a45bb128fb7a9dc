/* libFuzzer target for the JWT path. The bytes are
 *   - when the first byte is '{': a JWKS document to load;
 *   - when it is '!': a claims document, which the target signs (HS256,
 *     with the key set's secret) so that the claims checks and the claim
 *     readers run on arbitrary JSON;
 *   - otherwise a token, verified against an HMAC key and an ES256 key with
 *     every algorithm allowed (random bytes never carry a valid signature:
 *     this exercises the splitting, base64url and header paths).
 * Checked: nothing crashes, leaks or reads out of bounds, failures always
 * say why, oversize input is refused before anything is decoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char jwks[] = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":"
                           "\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQ\"},"
                           "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","
                           "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                           "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jwt_keyset ks;
    static int loaded;
    char why[200];

    if (!loaded) {
        CHECK(jwt_keys_jwks_text(&ks, jwks, sizeof(jwks) - 1, why, sizeof(why)) == 0);
        loaded = 1;
    }
    if (size > 0 && data[0] == '{') {
        struct jwt_keyset tmp = {0};
        if (jwt_keys_jwks_text(&tmp, (const char *)data, size, why, sizeof(why)) < 0)
            CHECK(why[0] != '\0');
        jwt_keys_free(&tmp);
        return 0;
    }
    struct jwt_rules r = {.algs = (1u << JWT_NALGS) - 1, .leeway_s = 30, .require_exp = true};
    if (size > 0 && data[0] == '!') {
        /* {"alg":"HS256","kid":"h"} . base64url(claims) . HMAC */
        static const char hdr[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImgifQ";
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        static const unsigned char key[] = "secret-secret-secret-secret-secret-secret";
        size_t n = size - 1, cap = sizeof(hdr) + 2 + (n * 4) / 3 + 4 + 48;
        char *tok = malloc(cap);
        unsigned char mac[32];
        unsigned ml = 0;
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        if (!tok)
            return 0;
        memcpy(tok, hdr, sizeof(hdr) - 1);
        o = sizeof(hdr) - 1;
        tok[o++] = '.';
        for (size_t i = 0; i < n; i++) {
            acc = acc << 8 | data[1 + i];
            bits += 8;
            while (bits >= 6) {
                bits -= 6;
                tok[o++] = b64[(acc >> bits) & 63];
            }
        }
        if (bits)
            tok[o++] = b64[(acc << (6 - bits)) & 63];
        HMAC(EVP_sha256(), key, sizeof(key) - 1, (unsigned char *)tok, o, mac, &ml);
        tok[o++] = '.';
        for (size_t i = 0; i < ml; i += 3) {
            uint32_t v = (uint32_t)mac[i] << 16 | (i + 1 < ml ? (uint32_t)mac[i + 1] << 8 : 0) |
                         (i + 2 < ml ? mac[i + 2] : 0);
            size_t k = ml - i >= 3 ? 4 : ml - i + 1;
            for (size_t j = 0; j < k; j++)
                tok[o++] = b64[(v >> (18 - 6 * j)) & 63];
        }
        struct jwt_claims *c = NULL;
        const char *reason = NULL;
        char buf[64];
        if (jwt_verify(&ks, &r, tok, o, 1700000000, &c, &reason) == 0) {
            CHECK(c != NULL);
            (void)jwt_claim_text(c, "sub", buf, sizeof(buf));
            (void)jwt_claim_equals(c, "role", "admin");
            (void)jwt_claim_contains(c, "scope", "chat:write");
            (void)jwt_claim_contains(c, "aud", "x");
            (void)jwt_claims_exp(c);
            jwt_claims_free(c);
        } else {
            CHECK(reason && reason[0]);
        }
        free(tok);
        return 0;
    }
    struct jwt_claims *c = NULL;
    const char *reason = NULL;
    int rc = jwt_verify(&ks, &r, (const char *)data, size, 1700000000, &c, &reason);
    if (rc < 0) {
        CHECK(reason && reason[0] && !c);
        if (size > JWT_MAX)
            CHECK(strcmp(reason, "token too large") == 0);
    } else {
        CHECK(c != NULL);
        jwt_claims_free(c);
    }
    return 0;
}
