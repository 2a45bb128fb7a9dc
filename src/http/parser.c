/* Strict incremental HTTP/1.1 head parser and chunked decoder; contract in parser.h.
 *
 * Parsing is split in two passes on purpose. The first pass only looks for
 * the empty line that ends the head and resumes where the previous call
 * stopped (the caller's scan hint), so a peer trickling bytes costs O(n) in
 * total. The second pass runs once, on the complete head, and is the only
 * place where the grammar is checked; because the first pass is a pure
 * function of the bytes seen so far, every split of the input gives the same
 * answer as a one-shot parse. */
#include "http/parser.h"

#include <limits.h>
#include <string.h>

#include "core/err.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 §5.5: field-vchar = VCHAR / obs-text, plus SP and HTAB inside a value.
 * Every other control character (NUL, a CR not followed by LF, DEL, ...) is
 * refused rather than replaced, since a downstream parser may read it
 * differently (request smuggling). */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Pass one: find the end of the head (the first CRLF CRLF) within max_head bytes,
 * resuming at *scan. Each test looks only backwards from the LF being examined,
 * so resuming at any index is exact. RFC 9112 §2.2 lets a recipient accept a
 * bare LF as a line terminator; we refuse it because a proxy that reads line
 * ends differently from the backend is the classic smuggling vector. */
static int find_head_end(const char *buf, size_t len, size_t max_head, size_t *scan)
{
    size_t lim = len < max_head ? len : max_head;
    size_t i = *scan <= len ? *scan : 0;

    while (i < lim) {
        const char *lf = memchr(buf + i, '\n', lim - i);
        if (lf == NULL) {
            i = lim;
            break;
        }
        i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r') {
            *scan = i;
            return ERR_HTTP_BARE_LF;
        }
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *scan = i;
            return (int)(i + 1);
        }
        i++;
    }
    *scan = i;
    /* A head that ends at exactly max_head bytes was found above; with max_head
     * bytes and no end, any complete head would be longer than the limit. */
    if (len >= max_head)
        return ERR_HTTP_HEAD_TOO_BIG;
    return ERR_AGAIN;
}

/* The line starting at pos ends with CRLF; pass one guaranteed every LF in the
 * head is preceded by CR. Returns the line length without the CRLF. */
static size_t line_len(const char *buf, size_t pos, size_t end)
{
    const char *lf = memchr(buf + pos, '\n', end - pos);
    return (size_t)(lf - (buf + pos)) - 1;
}

/* RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive. */
static int parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !is_digit((unsigned char)p[5]) || p[6] != '.' ||
        !is_digit((unsigned char)p[7]))
        return ERR_HTTP_SYNTAX;
    if (p[5] != '1')
        return ERR_HTTP_VERSION;
    *minor = p[7] - '0';
    return 0;
}

/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version, with
 * exactly one SP between parts (we do not take §3's lenient whitespace option). */
static int parse_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return ERR_HTTP_SYNTAX;
    req->method.p = p;
    req->method.n = i;

    size_t t = ++i;
    /* RFC 3986 URIs are printable ASCII; no whitespace, CTL or 8-bit byte. */
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i == n || p[i] != ' ')
        return ERR_HTTP_SYNTAX;
    req->target.p = p + t;
    req->target.n = i - t;

    i++;
    return parse_version(p + i, n - i, &req->minor_version);
}

/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
 * The SP before an empty reason is sometimes omitted by servers; accept that. */
static int parse_status_line(const char *p, size_t n, struct http_response *resp)
{
    size_t i = 0;

    while (i < n && p[i] != ' ')
        i++;
    int rc = parse_version(p, i, &resp->minor_version);
    if (rc < 0)
        return rc;
    if (i == n || n - i < 4)
        return ERR_HTTP_SYNTAX;
    const unsigned char *s = (const unsigned char *)p + i + 1;
    if (!is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]) || s[0] == '0')
        return ERR_HTTP_SYNTAX;
    resp->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    i += 4;
    resp->reason.p = p + i;
    resp->reason.n = 0;
    if (i == n)
        return 0;
    if (p[i] != ' ')
        return ERR_HTTP_SYNTAX;
    i++;
    for (size_t j = i; j < n; j++) {
        if (!is_field_char((unsigned char)p[j]))
            return ERR_HTTP_SYNTAX;
    }
    resp->reason.p = p + i;
    resp->reason.n = n - i;
    return 0;
}

/* RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. */
static int parse_field_line(const char *p, size_t n, struct http_header *h)
{
    size_t i = 0;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == n)
        return ERR_HTTP_SYNTAX;
    unsigned char c = (unsigned char)p[i];
    if (c != ':') {
        /* RFC 9112 §5.1: no whitespace is allowed between the field name and
         * the colon; a server MUST reject such a message with 400. */
        if (is_ows(c))
            return ERR_HTTP_SYNTAX;
        return ERR_HTTP_BAD_CHAR;
    }
    if (i == 0)
        return ERR_HTTP_SYNTAX;

    size_t v = i + 1;
    size_t e = n;
    while (v < e && is_ows((unsigned char)p[v]))
        v++;
    while (e > v && is_ows((unsigned char)p[e - 1]))
        e--;
    for (size_t j = v; j < e; j++) {
        if (!is_field_char((unsigned char)p[j]))
            return ERR_HTTP_BAD_CHAR;
    }
    h->name.p = p;
    h->name.n = i;
    h->value.p = p + v;
    h->value.n = e - v;
    return 0;
}

/* Pass two over the field lines between pos and the final empty line. */
static int parse_fields(const char *buf, size_t pos, size_t end, const struct http_limits *lim,
                        struct http_header *headers, unsigned *nheaders)
{
    *nheaders = 0;
    while (pos < end - 2) {
        size_t n = line_len(buf, pos, end);
        const char *p = buf + pos;

        /* RFC 9112 §5.2: obs-fold is only allowed in message/http; a server
         * MUST reject it (§2.2 likewise for whitespace after the start line). */
        if (n > 0 && is_ows((unsigned char)p[0]))
            return ERR_HTTP_OBS_FOLD;
        if (*nheaders >= lim->max_headers)
            return ERR_HTTP_TOO_MANY_HEADERS;
        int rc = parse_field_line(p, n, &headers[*nheaders]);
        if (rc < 0)
            return rc;
        (*nheaders)++;
        pos += n + 2;
    }
    return 0;
}

static size_t head_limit(const struct http_limits *lim)
{
    /* The head length is returned as an int. */
    return lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, size_t *scan)
{
    int end = find_head_end(buf, len, head_limit(lim), scan);
    if (end < 0)
        return end;

    size_t n = line_len(buf, 0, (size_t)end);
    int rc = parse_request_line(buf, n, req);
    if (rc < 0)
        return rc;
    rc = parse_fields(buf, n + 2, (size_t)end, lim, req->headers, &req->nheaders);
    if (rc < 0)
        return rc;
    return end;
}

int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        struct http_response *resp, size_t *scan)
{
    int end = find_head_end(buf, len, head_limit(lim), scan);
    if (end < 0)
        return end;

    size_t n = line_len(buf, 0, (size_t)end);
    int rc = parse_status_line(buf, n, resp);
    if (rc < 0)
        return rc;
    rc = parse_fields(buf, n + 2, (size_t)end, lim, resp->headers, &resp->nheaders);
    if (rc < 0)
        return rc;
    return end;
}

bool http_span_ieq(struct http_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return false;
    }
    return true;
}

int http_header_next(const struct http_header *h, unsigned n, const char *name, unsigned *from)
{
    for (unsigned i = *from; i < n; i++) {
        if (http_span_ieq(h[i].name, name)) {
            *from = i + 1;
            return (int)i;
        }
    }
    *from = n;
    return -1;
}

unsigned http_header_count(const struct http_header *h, unsigned n, const char *name)
{
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++) {
        if (http_span_ieq(h[i].name, name))
            count++;
    }
    return count;
}

static struct http_span trim_ows(const char *p, size_t n)
{
    while (n > 0 && is_ows((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_ows((unsigned char)p[n - 1]))
        n--;
    return (struct http_span){p, n};
}

/* RFC 9110 §5.6.1: #rule lists; empty elements are ignored. A comma inside a
 * quoted-string (§5.6.4, e.g. an extension parameter) does not split. */
bool http_list_next(struct http_span *list, struct http_span *elem)
{
    while (list->n > 0) {
        const char *p = list->p;
        size_t n = list->n;
        size_t i = 0;
        bool quoted = false;

        for (; i < n; i++) {
            char c = p[i];
            if (quoted) {
                if (c == '\\' && i + 1 < n)
                    i++;
                else if (c == '"')
                    quoted = false;
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                break;
            }
        }
        struct http_span e = trim_ows(p, i);
        size_t adv = i < n ? i + 1 : i;
        list->p = p + adv;
        list->n = n - adv;
        if (e.n > 0) {
            *elem = e;
            return true;
        }
    }
    return false;
}

bool http_has_token(const struct http_header *h, unsigned n, const char *name, const char *token)
{
    for (unsigned i = 0; i < n; i++) {
        if (!http_span_ieq(h[i].name, name))
            continue;
        struct http_span list = h[i].value;
        struct http_span e;
        while (http_list_next(&list, &e)) {
            if (http_span_ieq(e, token))
                return true;
        }
    }
    return false;
}

enum {
    CH_SIZE0 = 0,  /* before the first hex digit of a chunk size */
    CH_SIZE,       /* inside the chunk size */
    CH_SIZE_WS,    /* BWS after the size: only more BWS or ";" may follow */
    CH_EXT,        /* chunk extension, dropped */
    CH_SIZE_LF,    /* CR seen after the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* expecting CR after chunk data */
    CH_DATA_LF,    /* expecting LF after chunk data */
    CH_TRAILER,    /* at the start of a trailer line (or the final empty line) */
    CH_TRAILER_LN, /* inside a trailer line, dropped */
    CH_TRAILER_LF, /* CR seen at the end of a trailer line */
    CH_END_LF,     /* CR of the final empty line seen */
    CH_DONE,       /* message body complete */
    CH_ERROR,      /* sticky: malformed input was seen */
};

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int http_chunked_decode(struct http_chunked *c, const char *in, size_t n, char *out, size_t out_cap,
                        size_t *out_n)
{
    size_t i = 0;
    size_t o = 0;

    *out_n = 0;
    if (c->state == CH_ERROR)
        return ERR_HTTP_CHUNKED;
    /* The count of consumed bytes is returned as an int. */
    if (n > (size_t)INT_MAX)
        n = (size_t)INT_MAX;

    while (i < n && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        int d;

        switch (c->state) {
        case CH_SIZE0:
            d = hex_value(ch);
            if (d < 0)
                goto bad;
            c->remaining = (unsigned long long)d;
            c->state = CH_SIZE;
            i++;
            break;
        case CH_SIZE:
            d = hex_value(ch);
            if (d >= 0) {
                /* A size of 2^60 or more cannot be a real body and would bring
                 * the accumulator close to overflow (RFC 9112 §7.1 asks
                 * recipients to guard against it). */
                if (c->remaining >= (1ULL << 56))
                    goto bad;
                c->remaining = c->remaining * 16 + (unsigned long long)d;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (is_ows(ch)) {
                c->state = CH_SIZE_WS;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                goto bad;
            }
            i++;
            break;
        case CH_SIZE_WS:
            /* RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name ...). */
            if (ch == ';')
                c->state = CH_EXT;
            else if (!is_ows(ch))
                goto bad;
            i++;
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_field_char(ch))
                goto bad;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad;
            /* RFC 9112 §7.1: last-chunk = 1*("0") [ chunk-ext ] CRLF */
            c->state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
            i++;
            break;
        case CH_DATA: {
            size_t k = n - i;
            if (k > c->remaining)
                k = (size_t)c->remaining;
            if (out && k > out_cap - o)
                k = out_cap - o;
            if (k == 0)
                goto out; /* out is full */
            /* out may alias in; the write position never passes the read one.
             * Without out the data is only counted (a relay checking the
             * framing of bytes it passes on unchanged). */
            if (out)
                memmove(out + o, in + i, k);
            o += k;
            i += k;
            c->remaining -= k;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_SIZE0;
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r')
                c->state = CH_END_LF;
            else if (ch == '\n' || !is_field_char(ch))
                goto bad;
            else
                c->state = CH_TRAILER_LN;
            i++;
            break;
        case CH_TRAILER_LN:
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if (!is_field_char(ch))
                goto bad;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_DONE;
            c->done = true;
            i++;
            break;
        default:
            goto bad;
        }
    }
out:
    *out_n = o;
    return (int)i;
bad:
    c->state = CH_ERROR;
    return ERR_HTTP_CHUNKED;
}
