/* RFC 6455 §4 opening handshake for both roles, and the heads of plain HTTP
 * requests and responses a proxy forwards; contract in handshake.h. */
#include "http/handshake.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/err.h"

/* RFC 6455 §1.3: the GUID appended to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* RFC 9110 §7.6.1 (plus the legacy Keep-Alive/Proxy-Connection and the two
 * proxy auth fields, which only ever concern the next hop): fields that apply
 * to one connection and that a proxy must not forward. Content-Length is
 * dropped too because the proxy frames what it sends itself. */
static const char *const hop_by_hop[] = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Proxy-Authorization",
    "Proxy-Authenticate",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Content-Length",
};

/* Fields the proxy owns on the backend leg: its own key and version (it is a
 * separate WebSocket connection), no extensions offered (frames are relayed
 * as they are), and the forwarding fields, rebuilt below. */
static const char *const replaced[] = {
    "Sec-WebSocket-Key",    "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Accept", "X-Forwarded-For",       "X-Forwarded-Proto",
    "X-Forwarded-Host",     "X-Request-Id",          "X-Client-Cert-Subject",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small helpers ---- */

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool span_ieq_span(struct http_span a, struct http_span b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++) {
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    }
    return true;
}

static bool span_eq(struct http_span a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

static bool name_in(struct http_span name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (http_span_ieq(name, list[i]))
            return true;
    }
    return false;
}

/* RFC 9110 §7.6.1: every field named in Connection is hop-by-hop too. The
 * options are collected once, and there may be at most HS_MAX_CONN_OPTIONS of
 * them: matching every field against an unbounded list costs
 * O(fields x options), which a 16 KiB head can make take milliseconds. */
struct conn_opts {
    struct http_span opt[HS_MAX_CONN_OPTIONS]; /* borrowed from the head */
    uint32_t hash[HS_MAX_CONN_OPTIONS];        /* name_hash() of each option */
    unsigned n;                                /* options collected */
};

/* FNV-1a over the lowercased name: a cheap filter so most fields are matched
 * against the options with integer compares instead of byte compares. */
static uint32_t name_hash(struct http_span s)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < s.n; i++)
        x = (x ^ lower((unsigned char)s.p[i])) * 16777619u;
    return x;
}

static int collect_conn_opts(const struct http_header *h, unsigned n, struct conn_opts *o)
{
    o->n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!http_span_ieq(h[i].name, "Connection"))
            continue;
        struct http_span list = h[i].value;
        struct http_span e;
        while (http_list_next(&list, &e)) {
            if (o->n == HS_MAX_CONN_OPTIONS)
                return ERR_RANGE;
            o->hash[o->n] = name_hash(e);
            o->opt[o->n++] = e;
        }
    }
    return 0;
}

static bool conn_named(const struct conn_opts *o, struct http_span name)
{
    if (o->n == 0)
        return false;
    uint32_t x = name_hash(name);
    for (unsigned i = 0; i < o->n; i++) {
        if (o->hash[i] == x && span_ieq_span(o->opt[i], name))
            return true;
    }
    return false;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(struct http_span s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_tchar((unsigned char)s.p[i]))
            return false;
    }
    return true;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* RFC 6455 §4.2.1 item 5: the key is the base64 of a 16-byte nonce, which is
 * always 22 alphabet characters and "==". EVP_DecodeBlock alone is not enough:
 * it skips surrounding whitespace, counts the padding as output bytes (24
 * characters always give 18), and ignores the unused low bits. */
static bool valid_key(struct http_span k)
{
    if (k.n != HS_KEY_LEN || k.p[22] != '=' || k.p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (b64_value((unsigned char)k.p[i]) < 0)
            return false;
    }
    /* RFC 4648 §3.5: the last character carries 2 data bits; the 4 pad bits
     * must be zero or the text is not the canonical encoding of 16 bytes. */
    if (b64_value((unsigned char)k.p[21]) & 0x0f)
        return false;
    unsigned char tmp[18];
    return EVP_DecodeBlock(tmp, (const unsigned char *)k.p, HS_KEY_LEN) == 18;
}

/* RFC 3986 §3.2.2/§3.2.3 characters of uri-host [ ":" port ]; RFC 9110 §7.2
 * forbids userinfo, so "@" is out. */
static bool valid_host(struct http_span h)
{
    for (size_t i = 0; i < h.n; i++) {
        unsigned char c = (unsigned char)h.p[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if (c == 0 || strchr("-._~!$&'()*+,;=:[]%", c) == NULL)
            return false;
    }
    return true;
}

/* RFC 9112 §6.3: Content-Length = 1*DIGIT; only a zero length is allowed here. */
static bool zero_length(struct http_span v)
{
    if (v.n == 0)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] != '0')
            return false;
    }
    return true;
}

static bool first_value(const struct http_header *h, unsigned n, const char *name,
                        struct http_span *out)
{
    unsigned from = 0;
    int i = http_header_next(h, n, name, &from);
    if (i < 0)
        return false;
    *out = h[i].value;
    return true;
}

/* ---- bounded output ---- */

struct wbuf {
    char *p;    /* borrowed: caller's output */
    size_t cap; /* bytes */
    size_t len; /* bytes written */
    bool full;  /* something did not fit; the result is ERR_NOMEM */
};

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->full || n == 0)
        return;
    if (n > w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_str(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_span(struct wbuf *w, struct http_span s)
{
    put(w, s.p, s.n);
}

static void put_uint(struct wbuf *w, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + i, sizeof(tmp) - i);
}

static void put_field(struct wbuf *w, const char *name, struct http_span value)
{
    put_str(w, name);
    put(w, ": ", 2);
    put_span(w, value);
    put(w, "\r\n", 2);
}

/* Whether a client field is one wsgate sets itself for this request. */
static bool stripped(const struct hs_upstream *up, struct http_span name)
{
    for (size_t i = 0; i < up->nstrip; i++)
        if (up->strip[i] && http_span_ieq(name, up->strip[i]))
            return true;
    return false;
}

static struct http_span cstr(const char *s)
{
    return (struct http_span){s, s != NULL ? strlen(s) : 0};
}

static int finish(struct wbuf *w)
{
    if (w->full || w->len > (size_t)INT_MAX)
        return ERR_NOMEM;
    return (int)w->len;
}

/* ---- validation of the client's request ---- */

int hs_check_request(const struct http_request *req, struct hs_request_info *info)
{
    const struct http_header *h = req->headers;
    unsigned n = req->nheaders;
    struct http_span v;

    /* RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request". Methods
     * are case-sensitive (RFC 9110 §9.1). */
    if (!span_eq(req->method, "GET"))
        return ERR_HTTP_METHOD;
    if (req->minor_version < 1)
        return ERR_HTTP_VERSION;
    /* RFC 6455 §4.2.1 item 1 requires a Request-URI; the proxy only serves
     * origin-form (RFC 9112 §3.2.1), and a fragment never belongs on the wire. */
    if (req->target.n == 0 || req->target.p[0] != '/' ||
        memchr(req->target.p, '#', req->target.n) != NULL)
        return ERR_HTTP_SYNTAX;

    /* RFC 9112 §3.2: a request without Host, or with more than one, gets 400. */
    unsigned hosts = http_header_count(h, n, "Host");
    if (hosts == 0)
        return ERR_HS_NO_HOST;
    if (hosts > 1)
        return ERR_HS_DUP_HOST;
    first_value(h, n, "Host", &v);
    if (v.n == 0)
        return ERR_HS_NO_HOST;
    if (!valid_host(v))
        return ERR_HTTP_SYNTAX;
    info->host = v;

    /* A body on an upgrade request would be read by nobody and would shift
     * the frame stream: refuse any framing other than an empty one. */
    if (http_header_count(h, n, "Transfer-Encoding") > 0)
        return ERR_HS_BODY;
    unsigned from = 0;
    int i;
    while ((i = http_header_next(h, n, "Content-Length", &from)) >= 0) {
        if (!zero_length(h[i].value))
            return ERR_HS_BODY;
    }

    /* RFC 6455 §4.2.1 items 3 and 4. */
    if (!http_has_token(h, n, "Upgrade", "websocket") ||
        !http_has_token(h, n, "Connection", "upgrade"))
        return ERR_HS_NOT_UPGRADE;
    struct conn_opts opts;
    if (collect_conn_opts(h, n, &opts) < 0)
        return ERR_HTTP_SYNTAX;

    /* RFC 6455 §4.2.1 item 6: exactly version 13; §4.4 answers anything
     * else with 426 and the versions we speak. */
    if (http_header_count(h, n, "Sec-WebSocket-Version") != 1 ||
        !first_value(h, n, "Sec-WebSocket-Version", &v) || !span_eq(v, "13"))
        return ERR_HS_VERSION;

    /* RFC 6455 §4.2.1 item 5; §11.3.1 says the field must not appear twice. */
    if (http_header_count(h, n, "Sec-WebSocket-Key") != 1 ||
        !first_value(h, n, "Sec-WebSocket-Key", &v) || !valid_key(v))
        return ERR_HS_BAD_KEY;
    info->key = v;

    info->path = req->target;
    info->request_id.p = "";
    info->request_id.n = 0;
    if (first_value(h, n, "X-Request-Id", &v))
        info->request_id = v;
    return 0;
}

/* ---- keys ---- */

/* SHA-1 fetched from OpenSSL's provider once: passing EVP_sha1() makes
 * every digest look the algorithm up again, which cost more than the
 * digest itself. Set once, then only read. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

/* RFC 6455 §4.2.2 item 5.4: base64(SHA-1(key + GUID)) for a key of at most
 * HS_KEY_LEN bytes (the only length a valid request carries). Returns 0,
 * ERR_HS_BAD_KEY for a longer key, or ERR_NOMEM when OpenSSL cannot allocate or
 * find its digest; out is then empty. */
static int accept_key(const char *key, size_t keylen, char out[HS_ACCEPT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char in[HS_KEY_LEN + sizeof(ws_guid)];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (keylen > HS_KEY_LEN)
        return ERR_HS_BAD_KEY;
    pthread_once(&sha1_once, sha1_fetch);
    if (sha1_md == NULL)
        return ERR_NOMEM;
    memcpy(in, key, keylen);
    memcpy(in + keylen, ws_guid, sizeof(ws_guid) - 1);
    if (EVP_Digest(in, keylen + sizeof(ws_guid) - 1, md, &mdlen, sha1_md, NULL) != 1 || mdlen != 20)
        return ERR_NOMEM;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

void hs_accept_key(const char *key, size_t keylen, char out[HS_ACCEPT_LEN + 1])
{
    accept_key(key, keylen, out);
}

void hs_make_key(const uint8_t nonce[16], char out[HS_KEY_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)out, nonce, 16);
}

/* ---- the backend leg ---- */

int hs_build_upstream(char *out, size_t cap, const struct http_request *req,
                      const struct hs_request_info *info, const struct hs_upstream *up)
{
    const struct http_header *h = req->headers;
    unsigned n = req->nheaders;
    struct wbuf w = {out, cap, 0, false};
    struct conn_opts opts;

    if (collect_conn_opts(h, n, &opts) < 0)
        return ERR_RANGE;
    put(&w, "GET ", 4);
    put_span(&w, up->target.n ? up->target : info->path);
    put(&w, " HTTP/1.1\r\n", 11);

    for (unsigned i = 0; i < n; i++) {
        struct http_span name = h[i].name;
        if (name_in(name, hop_by_hop, COUNT(hop_by_hop)) ||
            name_in(name, replaced, COUNT(replaced)))
            continue;
        /* Host is exempt: a client naming it in Connection would otherwise make
         * us send a request that RFC 9112 §3.2 requires the backend to reject. */
        if (!http_span_ieq(name, "Host") && conn_named(&opts, name))
            continue;
        if (up->protocols_set && http_span_ieq(name, "Sec-WebSocket-Protocol"))
            continue;
        if (stripped(up, name))
            continue;
        put_span(&w, name);
        put(&w, ": ", 2);
        put_span(&w, h[i].value);
        put(&w, "\r\n", 2);
    }

    put_str(&w, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    put_field(&w, "Sec-WebSocket-Key", cstr(up->key));
    put_str(&w, "Sec-WebSocket-Version: 13\r\n");
    if (up->protocols_set && up->protocols.n > 0)
        put_field(&w, "Sec-WebSocket-Protocol", up->protocols);

    /* X-Forwarded-For is a list (de-facto, like RFC 7239 Forwarded): keep every
     * hop the client reported, in order, and append the address we saw. */
    bool xff = false;
    unsigned from = 0;
    int i;
    while ((i = http_header_next(h, n, "X-Forwarded-For", &from)) >= 0) {
        if (h[i].value.n == 0)
            continue;
        put_str(&w, xff ? ", " : "X-Forwarded-For: ");
        put_span(&w, h[i].value);
        xff = true;
    }
    if (up->client_ip != NULL && up->client_ip[0] != '\0') {
        put_str(&w, xff ? ", " : "X-Forwarded-For: ");
        put_str(&w, up->client_ip);
        xff = true;
    }
    if (xff)
        put(&w, "\r\n", 2);

    if (up->proto != NULL && up->proto[0] != '\0')
        put_field(&w, "X-Forwarded-Proto", cstr(up->proto));
    if (info->host.n > 0)
        put_field(&w, "X-Forwarded-Host", info->host);
    if (up->request_id.n > 0)
        put_field(&w, "X-Request-Id", up->request_id);
    if (up->extra)
        put_str(&w, up->extra);
    if (up->extra2)
        put_str(&w, up->extra2);
    put(&w, "\r\n", 2);
    return finish(&w);
}

int hs_check_response(const struct http_response *resp, const char *expected_accept,
                      const struct http_request *req, struct http_span *protocol)
{
    const struct http_header *h = resp->headers;
    unsigned n = resp->nheaders;
    struct http_span v;

    /* RFC 6455 §4.1 (client, item 1): anything but 101 is not an upgrade.
     * An HTTP/1.0 peer cannot switch protocols (RFC 9110 §7.8). */
    if (resp->status != 101 || resp->minor_version < 1)
        return ERR_HS_STATUS;

    /* RFC 6455 §4.1 items 2 and 3: Upgrade is "websocket" (case-insensitive)
     * and Connection holds the "Upgrade" token. */
    if (http_header_count(h, n, "Upgrade") != 1 || !first_value(h, n, "Upgrade", &v) ||
        !http_span_ieq(v, "websocket") || !http_has_token(h, n, "Connection", "upgrade"))
        return ERR_HS_BAD_UPGRADE;

    /* RFC 6455 §4.1 item 4: the accept value must be exactly ours. Without this
     * check, any backend answer would open a tunnel (upgrade smuggling). */
    if (expected_accept == NULL || strlen(expected_accept) != HS_ACCEPT_LEN ||
        http_header_count(h, n, "Sec-WebSocket-Accept") != 1 ||
        !first_value(h, n, "Sec-WebSocket-Accept", &v) || !span_eq(v, expected_accept))
        return ERR_HS_BAD_ACCEPT;

    /* RFC 6455 §4.1 item 5: we offered no extension, so any is an error. */
    if (http_header_count(h, n, "Sec-WebSocket-Extensions") > 0)
        return ERR_HS_BAD_EXTENSION;

    /* RFC 6455 §4.1 item 6: a subprotocol must be one the client offered.
     * Names are compared exactly: they are opaque tokens (§11.3.4) and the
     * client will compare our 101 against its own list the same way. */
    protocol->p = "";
    protocol->n = 0;
    unsigned nproto = http_header_count(h, n, "Sec-WebSocket-Protocol");
    if (nproto == 0)
        return 0;
    if (nproto > 1 || !first_value(h, n, "Sec-WebSocket-Protocol", &v) || !is_token(v))
        return ERR_HS_BAD_PROTOCOL;
    for (unsigned i = 0; i < req->nheaders; i++) {
        if (!http_span_ieq(req->headers[i].name, "Sec-WebSocket-Protocol"))
            continue;
        struct http_span list = req->headers[i].value;
        struct http_span e;
        while (http_list_next(&list, &e)) {
            if (e.n == v.n && memcmp(e.p, v.p, v.n) == 0) {
                *protocol = v;
                return 0;
            }
        }
    }
    return ERR_HS_BAD_PROTOCOL;
}

/* ---- responses to the client ---- */

static const char *reason_phrase(int status)
{
    /* RFC 9110 §15 and RFC 6585 §4 (429), §5 (431). */
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        break;
    }
    /* RFC 9110 §15: an unknown code is understood as its class's x00. */
    switch (status / 100) {
    case 1:
        return "Informational";
    case 2:
        return "Success";
    case 3:
        return "Redirection";
    case 4:
        return "Client Error";
    default:
        return "Server Error";
    }
}

int hs_build_101(char *out, size_t cap, struct http_span client_key, struct http_span protocol,
                 const char *extra)
{
    return hs_build_101_from(out, cap, client_key, protocol, NULL, extra);
}

/* Fields of the backend's 101 the client does not get: the connection's own
 * and those wsgate computes for the client's handshake itself. */
static const char *const not_relayed_101[] = {
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Version",
};

int hs_build_101_from(char *out, size_t cap, struct http_span client_key, struct http_span protocol,
                      const struct http_response *backend, const char *extra)
{
    char accept[HS_ACCEPT_LEN + 1];
    struct wbuf w = {out, cap, 0, false};

    if (accept_key(client_key.p, client_key.n, accept) < 0)
        return ERR_NOMEM;
    /* RFC 6455 §4.2.2 item 5. */
    put_str(&w, "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n");
    put_field(&w, "Sec-WebSocket-Accept", cstr(accept));
    if (protocol.n > 0)
        put_field(&w, "Sec-WebSocket-Protocol", protocol);
    if (backend) {
        struct conn_opts opts;
        if (collect_conn_opts(backend->headers, backend->nheaders, &opts) < 0)
            return ERR_RANGE;
        for (unsigned i = 0; i < backend->nheaders; i++) {
            struct http_span name = backend->headers[i].name;
            if (name_in(name, hop_by_hop, COUNT(hop_by_hop)) ||
                name_in(name, not_relayed_101, COUNT(not_relayed_101)) || conn_named(&opts, name))
                continue;
            put_span(&w, name);
            put(&w, ": ", 2);
            put_span(&w, backend->headers[i].value);
            put(&w, "\r\n", 2);
        }
    }
    if (extra)
        put_str(&w, extra);
    put(&w, "\r\n", 2);
    return finish(&w);
}

int hs_build_error(char *out, size_t cap, int status, const char *detail, const char *extra)
{
    struct wbuf w = {out, cap, 0, false};

    if (status < 100 || status > 999)
        return ERR_RANGE;
    const char *reason = reason_phrase(status);
    if (detail == NULL || detail[0] == '\0')
        detail = reason;
    size_t dlen = strlen(detail);

    put(&w, "HTTP/1.1 ", 9);
    put_uint(&w, (unsigned long long)status);
    put(&w, " ", 1);
    put_str(&w, reason);
    put_str(&w, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    put_uint(&w, (unsigned long long)dlen + 1);
    if (status == 426) {
        /* RFC 9110 §15.5.22: a 426 MUST carry Upgrade, and §7.8 wants the
         * "upgrade" connection option with it; RFC 6455 §4.4: list the
         * WebSocket versions we speak. */
        put_str(&w, "\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Version: 13\r\n");
    } else {
        put_str(&w, "\r\nConnection: close\r\n");
    }
    /* RFC 9110 §15.5.6: a 405 MUST carry Allow. */
    if (status == 405)
        put_str(&w, "Allow: GET\r\n");
    if (extra)
        put_str(&w, extra);
    put(&w, "\r\n", 2);

    /* A one-line body: control characters in the detail become spaces. */
    size_t start = w.len;
    put(&w, detail, dlen);
    if (!w.full) {
        for (size_t i = start; i < w.len; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c < 0x20 || c == 0x7f)
                out[i] = ' ';
        }
    }
    put(&w, "\n", 1);
    return finish(&w);
}

int hs_build_relayed_head(char *out, size_t cap, const struct http_response *resp, size_t body_len)
{
    const struct http_header *h = resp->headers;
    unsigned n = resp->nheaders;
    struct wbuf w = {out, cap, 0, false};
    struct conn_opts opts;

    if (resp->status < 100 || resp->status > 999 || collect_conn_opts(h, n, &opts) < 0)
        return ERR_RANGE;
    /* We speak HTTP/1.1 to the client whatever the backend spoke. */
    put(&w, "HTTP/1.1 ", 9);
    put_uint(&w, (unsigned long long)resp->status);
    put(&w, " ", 1);
    if (resp->reason.n > 0)
        put_span(&w, resp->reason);
    else
        put_str(&w, reason_phrase(resp->status));
    put(&w, "\r\n", 2);

    for (unsigned i = 0; i < n; i++) {
        if (name_in(h[i].name, hop_by_hop, COUNT(hop_by_hop)) || conn_named(&opts, h[i].name))
            continue;
        put_span(&w, h[i].name);
        put(&w, ": ", 2);
        put_span(&w, h[i].value);
        put(&w, "\r\n", 2);
    }
    put_str(&w, "Content-Length: ");
    put_uint(&w, (unsigned long long)body_len);
    put_str(&w, "\r\nConnection: close\r\n\r\n");
    return finish(&w);
}

/* ---- plain HTTP requests and responses (RFC 9112) ---- */

/* Content-Length = 1*DIGIT, below 2^60. */
static bool parse_length(struct http_span v, uint64_t *out)
{
    uint64_t n = 0;

    if (v.n == 0 || v.n > 18)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

/* The message's Transfer-Encoding: absent, exactly "chunked", or anything
 * else. Returns 0 (none), 1 (chunked) or -1. */
static int transfer_coding(const struct http_header *h, unsigned n)
{
    unsigned from = 0, count = 0;
    int i, last = -1;
    struct http_span list, e, only = {NULL, 0};

    while ((i = http_header_next(h, n, "Transfer-Encoding", &from)) >= 0) {
        list = h[i].value;
        while (http_list_next(&list, &e)) {
            count++;
            only = e;
        }
        last = i;
    }
    if (last < 0)
        return 0;
    return count == 1 && http_span_ieq(only, "chunked") ? 1 : -1;
}

/* Every Content-Length field of the message: none (0), one valid value
 * (1, *len set), or a problem (-1: invalid, a list, or repeated). */
static int content_length(const struct http_header *h, unsigned n, uint64_t *len)
{
    unsigned count = http_header_count(h, n, "Content-Length");
    struct http_span v;

    if (count == 0)
        return 0;
    if (count > 1 || !first_value(h, n, "Content-Length", &v))
        return -1;
    return parse_length(v, len) ? 1 : -1;
}

int http_request_body(const struct http_request *req, struct http_body *out)
{
    uint64_t len = 0;
    int te = transfer_coding(req->headers, req->nheaders);
    int cl = content_length(req->headers, req->nheaders, &len);

    *out = (struct http_body){HTTP_BODY_NONE, 0};
    /* RFC 9112 §6.1: Transfer-Encoding with Content-Length, or in HTTP/1.0,
     * is how requests get smuggled: refuse. Codings other than chunked are
     * not something a proxy can frame. */
    if (te != 0 && (cl != 0 || req->minor_version == 0))
        return ERR_HTTP_FRAMING;
    if (te < 0 || cl < 0)
        return ERR_HTTP_FRAMING;
    if (te > 0)
        out->kind = HTTP_BODY_CHUNKED;
    else if (cl > 0 && len > 0) {
        out->kind = HTTP_BODY_LENGTH;
        out->length = len;
    }
    return 0;
}

int http_response_body(const struct http_response *resp, bool head_request, struct http_body *out)
{
    uint64_t len = 0;
    int te = transfer_coding(resp->headers, resp->nheaders);
    int cl = content_length(resp->headers, resp->nheaders, &len);

    *out = (struct http_body){HTTP_BODY_NONE, 0};
    /* Both, or a broken length: the framing is ambiguous, and a proxy that
     * guesses lets one response smuggle another in (RFC 9112 §6.3). */
    if ((te != 0 && cl != 0) || cl < 0)
        return ERR_HTTP_FRAMING;
    /* §6.3 items 1-2: no body, whatever the fields say. */
    if (head_request || resp->status < 200 || resp->status == 204 || resp->status == 304)
        return 0;
    if (te > 0)
        out->kind = HTTP_BODY_CHUNKED;
    else if (te < 0)
        out->kind = HTTP_BODY_CLOSE; /* §6.3 item 4: other codings end at close */
    else if (cl > 0) {
        out->kind = len ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
        out->length = len;
    } else {
        out->kind = HTTP_BODY_CLOSE; /* §6.3 item 8 */
    }
    return 0;
}

/* The forwarding fields both kinds of request carry upstream. */
static void put_forwarded(struct wbuf *w, const struct http_header *h, unsigned n,
                          const struct hs_upstream *up, struct http_span host)
{
    bool xff = false;
    unsigned from = 0;
    int i;

    while ((i = http_header_next(h, n, "X-Forwarded-For", &from)) >= 0) {
        if (h[i].value.n == 0)
            continue;
        put_str(w, xff ? ", " : "X-Forwarded-For: ");
        put_span(w, h[i].value);
        xff = true;
    }
    if (up->client_ip != NULL && up->client_ip[0] != '\0') {
        put_str(w, xff ? ", " : "X-Forwarded-For: ");
        put_str(w, up->client_ip);
        xff = true;
    }
    if (xff)
        put(w, "\r\n", 2);
    if (up->proto != NULL && up->proto[0] != '\0')
        put_field(w, "X-Forwarded-Proto", cstr(up->proto));
    if (host.n > 0)
        put_field(w, "X-Forwarded-Host", host);
    if (up->request_id.n > 0)
        put_field(w, "X-Request-Id", up->request_id);
    if (up->extra)
        put_str(w, up->extra);
    if (up->extra2)
        put_str(w, up->extra2);
}

int hs_build_forward_request(char *out, size_t cap, const struct http_request *req,
                             const struct hs_upstream *up, const struct http_body *body,
                             const char *default_host)
{
    const struct http_header *h = req->headers;
    unsigned n = req->nheaders;
    struct wbuf w = {out, cap, 0, false};
    struct conn_opts opts;
    struct http_span host = {NULL, 0};

    if (collect_conn_opts(h, n, &opts) < 0)
        return ERR_RANGE;
    first_value(h, n, "Host", &host);
    put_span(&w, req->method);
    put(&w, " ", 1);
    put_span(&w, up->target.n ? up->target : req->target);
    put(&w, " HTTP/1.1\r\n", 11);
    /* An HTTP/1.0 client may send no Host; HTTP/1.1 requires one. */
    if (host.n == 0 && default_host)
        put_field(&w, "Host", cstr(default_host));
    for (unsigned i = 0; i < n; i++) {
        struct http_span name = h[i].name;
        if (name_in(name, hop_by_hop, COUNT(hop_by_hop)) ||
            name_in(name, replaced, COUNT(replaced)) || stripped(up, name))
            continue;
        if (!http_span_ieq(name, "Host") && conn_named(&opts, name))
            continue;
        put_span(&w, name);
        put(&w, ": ", 2);
        put_span(&w, h[i].value);
        put(&w, "\r\n", 2);
    }
    /* We frame what we send: the same framing the client used. */
    if (body->kind == HTTP_BODY_LENGTH) {
        put_str(&w, "Content-Length: ");
        put_uint(&w, (unsigned long long)body->length);
        put(&w, "\r\n", 2);
    } else if (body->kind == HTTP_BODY_CHUNKED) {
        put_str(&w, "Transfer-Encoding: chunked\r\n");
    }
    put_forwarded(&w, h, n, up, host);
    put(&w, "\r\n", 2);
    return finish(&w);
}

int hs_build_forward_response(char *out, size_t cap, const struct http_response *resp,
                              const struct http_body *body, bool keep_alive, bool client_10,
                              const char *extra)
{
    const struct http_header *h = resp->headers;
    unsigned n = resp->nheaders;
    struct wbuf w = {out, cap, 0, false};
    struct conn_opts opts;
    bool informational = resp->status < 200;

    if (resp->status < 100 || resp->status > 999 || collect_conn_opts(h, n, &opts) < 0)
        return ERR_RANGE;
    put(&w, "HTTP/1.1 ", 9);
    put_uint(&w, (unsigned long long)resp->status);
    put(&w, " ", 1);
    if (resp->reason.n > 0)
        put_span(&w, resp->reason);
    else
        put_str(&w, reason_phrase(resp->status));
    put(&w, "\r\n", 2);
    for (unsigned i = 0; i < n; i++) {
        struct http_span name = h[i].name;
        /* A bodiless answer (HEAD, 304) keeps the length it describes. */
        if (http_span_ieq(name, "Content-Length") && body->kind == HTTP_BODY_NONE &&
            !informational && resp->status != 204) {
            put_span(&w, name);
            put(&w, ": ", 2);
            put_span(&w, h[i].value);
            put(&w, "\r\n", 2);
            continue;
        }
        if (name_in(name, hop_by_hop, COUNT(hop_by_hop)) || conn_named(&opts, name))
            continue;
        put_span(&w, name);
        put(&w, ": ", 2);
        put_span(&w, h[i].value);
        put(&w, "\r\n", 2);
    }
    if (!informational) {
        if (body->kind == HTTP_BODY_LENGTH) {
            put_str(&w, "Content-Length: ");
            put_uint(&w, (unsigned long long)body->length);
            put(&w, "\r\n", 2);
        } else if (body->kind == HTTP_BODY_CHUNKED) {
            put_str(&w, "Transfer-Encoding: chunked\r\n");
        }
        if (!keep_alive)
            put_str(&w, "Connection: close\r\n");
        else if (client_10)
            put_str(&w, "Connection: keep-alive\r\n");
        if (extra)
            put_str(&w, extra);
    }
    put(&w, "\r\n", 2);
    return finish(&w);
}
