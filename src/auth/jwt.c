/* JSON Web Tokens (see jwt.h). */
#include "auth/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_MAX     JWT_MAX /* decoded bytes of one part */
#define MIN_SECRET   32      /* bytes of an HMAC key: RFC 7518 §3.2 wants the hash size */
#define MIN_RSA_BITS 2048
#define FILE_MAX     (1024 * 1024)

struct jwt_claims {
    json_t *obj;
};

static const char *const alg_names[JWT_NALGS] = {"HS256", "HS384", "HS512", "RS256",
                                                 "RS384", "RS512", "PS256", "PS384",
                                                 "PS512", "ES256", "ES384", "EdDSA"};

int jwt_alg_from_name(const char *s, size_t n)
{
    for (int i = 0; i < JWT_NALGS; i++)
        if (strlen(alg_names[i]) == n && memcmp(alg_names[i], s, n) == 0)
            return i;
    return -1;
}

const char *jwt_alg_name(enum jwt_alg a)
{
    return a < JWT_NALGS ? alg_names[a] : "?";
}

/* ------------------------------------------------------------ base64url */

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Unpadded base64url (RFC 7515 §2) into out (cap bytes). Returns the
 * length, or -1 for a character outside the alphabet, a length that no
 * encoding has, non-zero leftover bits, or too much data. */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* The last character's unused bits must be zero: one token, one form. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

/* ------------------------------------------------------------ keys */

static void key_free(struct jwt_key *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    if (k->secret)
        OPENSSL_clear_free(k->secret, k->secret_len);
    memset(k, 0, sizeof(*k));
}

void jwt_keys_free(struct jwt_keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        key_free(&ks->v[i]);
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

static int add_key(struct jwt_keyset *ks, struct jwt_key *k, char *why, size_t cap)
{
    struct jwt_key *v = realloc(ks->v, (ks->n + 1) * sizeof(*v));

    if (!v) {
        key_free(k);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    ks->v = v;
    ks->v[ks->n++] = *k;
    return 0;
}

static int read_all(const char *path, char **buf, size_t *len, char *why, size_t cap)
{
    FILE *f = fopen(path, "rbe");
    size_t n;

    if (!f) {
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    *buf = malloc(FILE_MAX + 1);
    if (!*buf) {
        fclose(f);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    n = fread(*buf, 1, FILE_MAX + 1, f);
    fclose(f);
    if (n > FILE_MAX) {
        free(*buf);
        snprintf(why, cap, "%s is larger than 1 MiB", path);
        return -1;
    }
    (*buf)[n] = '\0';
    *len = n;
    return 0;
}

int jwt_keys_secret_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap)
{
    struct jwt_key k = {.kty = JWT_KTY_OCT};
    char *buf;
    size_t n;

    if (read_all(path, &buf, &n, why, cap) < 0)
        return -1;
    /* One trailing line end is how editors and `echo` write files. */
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    if (n < MIN_SECRET) {
        OPENSSL_clear_free(buf, FILE_MAX + 1);
        snprintf(why, cap, "%s: an HMAC secret needs at least %d bytes, got %zu", path, MIN_SECRET,
                 n);
        return -1;
    }
    k.secret = malloc(n);
    if (!k.secret) {
        OPENSSL_clear_free(buf, FILE_MAX + 1);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    memcpy(k.secret, buf, n);
    k.secret_len = n;
    OPENSSL_clear_free(buf, FILE_MAX + 1);
    return add_key(ks, &k, why, cap);
}

/* Type and size of a public key; -1 (why set) for one we do not use. */
static int classify(struct jwt_key *k, EVP_PKEY *p, const char *where, char *why, size_t cap)
{
    int id = EVP_PKEY_get_base_id(p);
    int bits = EVP_PKEY_get_bits(p);

    k->pkey = p;
    if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
        if (bits < MIN_RSA_BITS) {
            snprintf(why, cap, "%s: RSA keys need at least %d bits, got %d", where, MIN_RSA_BITS,
                     bits);
            return -1;
        }
        k->kty = JWT_KTY_RSA;
        return 0;
    }
    if (id == EVP_PKEY_EC && (bits == 256 || bits == 384)) {
        k->kty = JWT_KTY_EC;
        k->ec_bits = bits;
        return 0;
    }
    if (id == EVP_PKEY_ED25519) {
        k->kty = JWT_KTY_OKP;
        return 0;
    }
    snprintf(why, cap, "%s: not an RSA, P-256, P-384 or Ed25519 public key", where);
    return -1;
}

int jwt_keys_pem_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap)
{
    BIO *b = BIO_new_file(path, "r");
    size_t before = ks->n;

    if (!b) {
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
        ERR_clear_error();
        return -1;
    }
    for (;;) {
        EVP_PKEY *p = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        struct jwt_key k = {0};
        if (!p)
            break;
        if (classify(&k, p, path, why, cap) < 0 || add_key(ks, &k, why, cap) < 0) {
            EVP_PKEY_free(p);
            BIO_free(b);
            ERR_clear_error();
            return -1;
        }
    }
    BIO_free(b);
    ERR_clear_error();
    if (ks->n == before) {
        snprintf(why, cap, "%s: no PEM public key (\"-----BEGIN PUBLIC KEY-----\") in it", path);
        return -1;
    }
    return 0;
}

/* A JWK member decoded from base64url into a fresh buffer. */
static unsigned char *jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    json_t *v = json_object_get(jwk, name);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    unsigned char *out;
    long got;

    if (!s || n == 0 || n > PART_MAX)
        return NULL;
    out = malloc(n);
    if (!out)
        return NULL;
    got = b64url_decode(s, n, out, n);
    if (got <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)got;
    return out;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *p = NULL;

    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &p, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return p;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(jwk, "n", &nl), *e = jwk_bytes(jwk, "e", &el);
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL,
           *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *p = NULL;

    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        p = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return p;
}

static EVP_PKEY *jwk_ec(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const char *group = !crv                        ? NULL
                        : strcmp(crv, "P-256") == 0 ? "prime256v1"
                        : strcmp(crv, "P-384") == 0 ? "secp384r1"
                                                    : NULL;
    size_t coord = group && group[0] == 'p' ? 32 : 48, xl = 0, yl = 0;
    unsigned char *x = group ? jwk_bytes(jwk, "x", &xl) : NULL;
    unsigned char *y = group ? jwk_bytes(jwk, "y", &yl) : NULL;
    unsigned char pub[1 + 2 * 48];
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *p = NULL;

    if (x && y && xl == coord && yl == coord) {
        pub[0] = 0x04; /* uncompressed point */
        memcpy(pub + 1, x, coord);
        memcpy(pub + 1 + coord, y, coord);
        bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord))
            p = from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return p;
}

static EVP_PKEY *jwk_okp(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t xl = 0;
    unsigned char *x = crv && strcmp(crv, "Ed25519") == 0 ? jwk_bytes(jwk, "x", &xl) : NULL;
    EVP_PKEY *p = x && xl == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32) : NULL;

    free(x);
    return p;
}

int jwt_keys_jwks_text(struct jwt_keyset *ks, const char *text, size_t n, char *why, size_t cap)
{
    json_error_t err;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    json_t *keys = root ? json_object_get(root, "keys") : NULL;
    size_t i, used = 0;
    json_t *jwk;

    if (!root) {
        snprintf(why, cap, "not JSON (line %d: %s)", err.line, err.text);
        return -1;
    }
    if (!json_is_array(keys)) {
        json_decref(root);
        snprintf(why, cap, "a JWKS is an object with a \"keys\" array");
        return -1;
    }
    json_array_foreach(keys, i, jwk)
    {
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *use = json_string_value(json_object_get(jwk, "use"));
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        struct jwt_key k = {0};
        EVP_PKEY *p = NULL;
        char where[64];

        /* Keys for encryption are not for us. */
        if (!kty || (use && strcmp(use, "sig") != 0))
            continue;
        snprintf(where, sizeof(where), "key %zu", i);
        if (strcmp(kty, "oct") == 0) {
            k.kty = JWT_KTY_OCT;
            k.secret = jwk_bytes(jwk, "k", &k.secret_len);
            if (!k.secret || k.secret_len < MIN_SECRET) {
                free(k.secret);
                json_decref(root);
                snprintf(why, cap, "%s: an oct key needs \"k\" of at least %d bytes", where,
                         MIN_SECRET);
                return -1;
            }
        } else {
            if (strcmp(kty, "RSA") == 0)
                p = jwk_rsa(jwk);
            else if (strcmp(kty, "EC") == 0)
                p = jwk_ec(jwk);
            else if (strcmp(kty, "OKP") == 0)
                p = jwk_okp(jwk);
            else
                continue;
            if (!p) {
                /* (kty lives in root: the message first.) */
                snprintf(why, cap, "%s (%s): its parameters do not make a valid public key", where,
                         kty);
                json_decref(root);
                ERR_clear_error();
                return -1;
            }
            if (classify(&k, p, where, why, cap) < 0) {
                EVP_PKEY_free(p);
                json_decref(root);
                return -1;
            }
        }
        if (kid && !(k.kid = strdup(kid))) {
            key_free(&k);
            json_decref(root);
            snprintf(why, cap, "out of memory");
            return -1;
        }
        if (add_key(ks, &k, why, cap) < 0) {
            json_decref(root);
            return -1;
        }
        used++;
    }
    json_decref(root);
    if (!used) {
        snprintf(why, cap, "no usable signing key (kty oct, RSA, EC or OKP) in the set");
        return -1;
    }
    return 0;
}

int jwt_keys_jwks_file(struct jwt_keyset *ks, const char *path, char *why, size_t cap)
{
    char *buf, inner[200];
    size_t n;
    int rc;

    if (read_all(path, &buf, &n, why, cap) < 0)
        return -1;
    rc = jwt_keys_jwks_text(ks, buf, n, inner, sizeof(inner));
    free(buf);
    if (rc < 0)
        snprintf(why, cap, "%s: %s", path, inner);
    return rc;
}

/* ------------------------------------------------------------ verify */

static const EVP_MD *alg_md(enum jwt_alg a)
{
    switch (a) {
    case JWT_HS256:
    case JWT_RS256:
    case JWT_PS256:
    case JWT_ES256:
        return EVP_sha256();
    case JWT_HS384:
    case JWT_RS384:
    case JWT_PS384:
    case JWT_ES384:
        return EVP_sha384();
    case JWT_HS512:
    case JWT_RS512:
    case JWT_PS512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

static bool key_fits(const struct jwt_key *k, enum jwt_alg a)
{
    switch (a) {
    case JWT_HS256:
    case JWT_HS384:
    case JWT_HS512:
        return k->kty == JWT_KTY_OCT;
    case JWT_RS256:
    case JWT_RS384:
    case JWT_RS512:
    case JWT_PS256:
    case JWT_PS384:
    case JWT_PS512:
        return k->kty == JWT_KTY_RSA;
    case JWT_ES256:
        return k->kty == JWT_KTY_EC && k->ec_bits == 256;
    case JWT_ES384:
        return k->kty == JWT_KTY_EC && k->ec_bits == 384;
    case JWT_EDDSA:
        return k->kty == JWT_KTY_OKP;
    default:
        return false;
    }
}

static bool verify_with(const struct jwt_key *k, enum jwt_alg a, const unsigned char *in, size_t n,
                        const unsigned char *sig, size_t sl)
{
    const EVP_MD *md = alg_md(a);
    EVP_MD_CTX *mc;
    EVP_PKEY_CTX *pc = NULL;
    unsigned char der[160];
    const unsigned char *vs = sig;
    size_t vl = sl;
    bool ok = false;

    if (a <= JWT_HS512) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int ml = 0;
        if (!HMAC(md, k->secret, (int)k->secret_len, in, n, mac, &ml))
            return false;
        return ml == sl && CRYPTO_memcmp(mac, sig, ml) == 0;
    }
    if (a == JWT_ES256 || a == JWT_ES384) {
        /* JWS carries R || S; EVP wants a DER ECDSA-Sig-Value. */
        size_t half = a == JWT_ES256 ? 32 : 48;
        ECDSA_SIG *es;
        BIGNUM *r, *s;
        unsigned char *p = der;
        int dl;
        if (sl != 2 * half)
            return false;
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int)half, NULL);
        s = BN_bin2bn(sig + half, (int)half, NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return false;
        }
        dl = i2d_ECDSA_SIG(es, NULL);
        if (dl <= 0 || (size_t)dl > sizeof(der) || i2d_ECDSA_SIG(es, &p) != dl) {
            ECDSA_SIG_free(es);
            return false;
        }
        ECDSA_SIG_free(es);
        vs = der;
        vl = (size_t)dl;
    }
    mc = EVP_MD_CTX_new();
    if (!mc)
        return false;
    if (EVP_DigestVerifyInit(mc, &pc, a == JWT_EDDSA ? NULL : md, NULL, k->pkey) == 1) {
        bool setup = true;
        if (a >= JWT_PS256 && a <= JWT_PS512)
            setup = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1 &&
                    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) == 1;
        else if (a >= JWT_RS256 && a <= JWT_RS512)
            setup = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
        ok = setup && EVP_DigestVerify(mc, vs, vl, in, n) == 1;
    }
    EVP_MD_CTX_free(mc);
    ERR_clear_error();
    return ok;
}

/* A decoded part as a JSON object; NULL when it is not one. */
static json_t *part_json(const char *p, size_t n, unsigned char *buf)
{
    long l = b64url_decode(p, n, buf, PART_MAX);
    json_t *v;

    if (l <= 0)
        return NULL;
    v = json_loadb((const char *)buf, (size_t)l, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* A NumericDate (RFC 7519 §2): a non-negative number of seconds. */
static bool numeric_date(json_t *v, uint64_t *out)
{
    double d;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return false;
        *out = (uint64_t)i;
        return true;
    }
    if (!json_is_real(v))
        return false;
    d = json_real_value(v);
    if (!(d >= 0 && d < 1e15))
        return false;
    *out = (uint64_t)d;
    return true;
}

int jwt_verify(const struct jwt_keyset *ks, const struct jwt_rules *r, const char *tok, size_t n,
               uint64_t now, struct jwt_claims **claims, const char **why)
{
    const char *d1, *d2;
    unsigned char *buf = NULL, *sig = NULL;
    json_t *hdr = NULL, *pl = NULL, *v;
    int alg, rc = -1;
    const char *kid = NULL;
    long sl;
    bool any = false, good = false;
    uint64_t t;

    *claims = NULL;
    if (n == 0) {
        *why = "empty token";
        return -1;
    }
    if (n > JWT_MAX) {
        *why = "token too large";
        return -1;
    }
    d1 = memchr(tok, '.', n);
    d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(tok + n - d2 - 1))) {
        *why = "not a JWS compact token";
        return -1;
    }
    buf = malloc(PART_MAX);
    sig = malloc(PART_MAX);
    if (!buf || !sig) {
        *why = "out of memory";
        goto out;
    }
    hdr = part_json(tok, (size_t)(d1 - tok), buf);
    if (!hdr) {
        *why = "malformed header";
        goto out;
    }
    v = json_object_get(hdr, "alg");
    alg = json_is_string(v) ? jwt_alg_from_name(json_string_value(v), json_string_length(v)) : -1;
    if (alg < 0 || !(r->algs & (1u << alg))) {
        *why = "algorithm not allowed";
        goto out;
    }
    /* Critical extensions we would have to understand: none is supported. */
    if (json_object_get(hdr, "crit")) {
        *why = "unsupported critical header";
        goto out;
    }
    v = json_object_get(hdr, "kid");
    if (v && !json_is_string(v)) {
        *why = "malformed header";
        goto out;
    }
    kid = v ? json_string_value(v) : NULL;
    sl = b64url_decode(d2 + 1, (size_t)(tok + n - d2 - 1), sig, PART_MAX);
    if (sl <= 0) {
        *why = "malformed signature";
        goto out;
    }
    /* A token naming a kid is checked against the keys with that kid;
     * when none has it, against the keys that have no kid (a single
     * secret or PEM key). A token without kid: every key that fits. */
    for (int pass = 0; pass < 2 && !any; pass++) {
        for (size_t i = 0; i < ks->n && !good; i++) {
            const struct jwt_key *k = &ks->v[i];
            if (!key_fits(k, (enum jwt_alg)alg))
                continue;
            if (kid && pass == 0 && (!k->kid || strcmp(kid, k->kid) != 0))
                continue;
            if (kid && pass == 1 && k->kid)
                continue;
            if (!kid && pass == 1)
                continue;
            any = true;
            good = verify_with(k, (enum jwt_alg)alg, (const unsigned char *)tok, (size_t)(d2 - tok),
                               sig, (size_t)sl);
        }
    }
    if (!good) {
        *why = any ? "bad signature" : kid ? "unknown kid" : "no key for the algorithm";
        goto out;
    }
    pl = part_json(d1 + 1, (size_t)(d2 - d1 - 1), buf);
    if (!pl) {
        *why = "malformed claims";
        goto out;
    }
    v = json_object_get(pl, "exp");
    if (v) {
        if (!numeric_date(v, &t)) {
            *why = "malformed exp";
            goto out;
        }
        if (now > t + r->leeway_s) {
            *why = "expired";
            goto out;
        }
    } else if (r->require_exp) {
        *why = "no exp";
        goto out;
    }
    v = json_object_get(pl, "nbf");
    if (v && (!numeric_date(v, &t) || now + r->leeway_s < t)) {
        *why = "not yet valid";
        goto out;
    }
    v = json_object_get(pl, "iat");
    if (v && (!numeric_date(v, &t) || t > now + r->leeway_s)) {
        *why = "issued in the future";
        goto out;
    }
    if (r->issuer) {
        v = json_object_get(pl, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), r->issuer) != 0) {
            *why = "wrong issuer";
            goto out;
        }
    }
    if (r->audience) {
        bool match = false;
        size_t i;
        json_t *a;
        v = json_object_get(pl, "aud");
        if (json_is_string(v))
            match = strcmp(json_string_value(v), r->audience) == 0;
        else if (json_is_array(v))
            json_array_foreach(v, i, a) match |=
                json_is_string(a) && strcmp(json_string_value(a), r->audience) == 0;
        if (!match) {
            *why = "wrong audience";
            goto out;
        }
    }
    *claims = malloc(sizeof(**claims));
    if (!*claims) {
        *why = "out of memory";
        goto out;
    }
    (*claims)->obj = pl;
    pl = NULL;
    rc = 0;
out:
    json_decref(hdr);
    json_decref(pl);
    free(buf);
    free(sig);
    return rc;
}

const char *jwt_claim_text(const struct jwt_claims *c, const char *name, char *buf, size_t cap)
{
    json_t *v = json_object_get(c->obj, name);

    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (json_is_real(v)) {
        snprintf(buf, cap, "%.17g", json_real_value(v));
        return buf;
    }
    return NULL;
}

bool jwt_claim_equals(const struct jwt_claims *c, const char *name, const char *value)
{
    char buf[64];
    const char *t = jwt_claim_text(c, name, buf, sizeof(buf));

    return t && strcmp(t, value) == 0;
}

bool jwt_claim_contains(const struct jwt_claims *c, const char *name, const char *value)
{
    json_t *v = json_object_get(c->obj, name), *a;
    size_t i, vl = strlen(value);

    if (json_is_array(v)) {
        json_array_foreach(v, i, a) if (json_is_string(a) &&
                                        strcmp(json_string_value(a), value) == 0) return true;
        return false;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            while (*s == ' ')
                s++;
            size_t wl = strcspn(s, " ");
            if (wl == vl && memcmp(s, value, vl) == 0)
                return true;
            s += wl;
        }
    }
    return false;
}

uint64_t jwt_claims_exp(const struct jwt_claims *c)
{
    uint64_t t = 0;

    if (!numeric_date(json_object_get(c->obj, "exp"), &t))
        return 0;
    return t;
}

void jwt_claims_free(struct jwt_claims *c)
{
    if (!c)
        return;
    json_decref(c->obj);
    free(c);
}
