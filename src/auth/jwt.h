/* JSON Web Tokens (RFC 7519) in compact JWS form (RFC 7515), checked at the
 * handshake. Signatures are verified with OpenSSL's EVP interfaces (HMAC,
 * RSA PKCS#1 v1.5 and PSS, ECDSA P-256/P-384, Ed25519); JSON is read with
 * jansson. The token and its parts are attacker bytes: sizes are bounded
 * (JWT_MAX) before anything is decoded, and the parser is fuzzed
 * (fuzz/jwt_fuzz.c).
 *
 * Only algorithms the configuration lists are accepted, and each key is
 * used only with algorithms of its own type: `none` never verifies, and an
 * RSA public key is never taken as an HMAC secret. */
#ifndef WSG_AUTH_JWT_H
#define WSG_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX 8192 /* bytes of a token */

enum jwt_alg {
    JWT_HS256,
    JWT_HS384,
    JWT_HS512,
    JWT_RS256,
    JWT_RS384,
    JWT_RS512,
    JWT_PS256,
    JWT_PS384,
    JWT_PS512,
    JWT_ES256,
    JWT_ES384,
    JWT_EDDSA,
    JWT_NALGS
};

/* "HS256" ... "EdDSA" to the enum, -1 for anything else (including "none"). */
int jwt_alg_from_name(const char *s, size_t n);
const char *jwt_alg_name(enum jwt_alg a);

enum jwt_kty { JWT_KTY_OCT, JWT_KTY_RSA, JWT_KTY_EC, JWT_KTY_OKP };

struct jwt_key {
    char *kid; /* NULL: none */
    enum jwt_kty kty;
    void *pkey;            /* EVP_PKEY * (RSA, EC, OKP) */
    unsigned char *secret; /* oct */
    size_t secret_len;
    int ec_bits; /* EC: 256 or 384 */
};

struct jwt_keyset {
    struct jwt_key *v;
    size_t n;
};

/* Keys from files. Each returns 0 or -1 with a reason in why. */
int jwt_keys_secret_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap);
int jwt_keys_pem_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap);
int jwt_keys_jwks_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap);
/* The same from memory (JWKS JSON text), for tests and the fuzzer. */
int jwt_keys_jwks_text(struct jwt_keyset *ks, const char *text, size_t n, char *why, size_t cap);
void jwt_keys_free(struct jwt_keyset *ks);

struct jwt_rules {
    uint32_t algs;        /* bit per enum jwt_alg accepted */
    const char *issuer;   /* NULL: not checked */
    const char *audience; /* NULL: not checked */
    uint64_t leeway_s;    /* clock skew allowed for exp, nbf, iat */
    bool require_exp;
};

struct jwt_claims;

/* Check a token: size, form, header (alg listed, kid), signature with the
 * key chosen by kid (or the only key / every key of the right type),
 * then exp, nbf, iat, iss, aud against now (seconds since the epoch).
 * Returns 0 with *claims (free with jwt_claims_free) or -1 with a short
 * reason for the log in why ("expired", "bad signature", ...). */
int jwt_verify(const struct jwt_keyset *ks, const struct jwt_rules *r, const char *tok, size_t n,
               uint64_t now, struct jwt_claims **claims, const char **why);

/* A claim as text: a string as is, a number or boolean in JSON form; NULL
 * when absent or not a scalar. Borrowed from claims. */
const char *jwt_claim_text(const struct jwt_claims *c, const char *name, char *buf, size_t cap);
/* Whether claim `name` equals value (a string, or a number or boolean in
 * JSON form). */
bool jwt_claim_equals(const struct jwt_claims *c, const char *name, const char *value);
/* Whether claim `name` contains value: an array with that string, or a
 * space-separated string (such as "scope") with that word. */
bool jwt_claim_contains(const struct jwt_claims *c, const char *name, const char *value);
/* exp, or 0 when absent. */
uint64_t jwt_claims_exp(const struct jwt_claims *c);
void jwt_claims_free(struct jwt_claims *c);

#endif
