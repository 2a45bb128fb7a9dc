/* Admission rules in the configuration (see admit_conf.h). */
#include "admit/admit_conf.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RULES 1000

static void *at_off(void *base, const struct conf_key *k)
{
    return (char *)base + k->off;
}

/* A non-empty sequence of scalars, each checked by item(); returns false
 * after reporting. */
static bool
each_scalar(struct conf_diag *d, const char *key, const struct ynode *v, const char *expected,
            bool (*item)(struct conf_diag *, const char *, const struct ynode *, void *), void *ctx)
{
    bool ok = true;

    if (v->type != Y_SEQ || v->nkids == 0) {
        conf_bad_value(d, key, v, expected);
        return false;
    }
    if (v->nkids > MAX_RULES) {
        conf_report(d, v, "%s: at most %d entries, got %zu", key, MAX_RULES, v->nkids);
        return false;
    }
    for (size_t i = 0; i < v->nkids; i++) {
        const struct ynode *e = v->kids[i];
        if (e->bad) {
            ok = false;
            continue;
        }
        if (!conf_scalar(e)) {
            conf_bad_value(d, key, e, expected);
            ok = false;
            continue;
        }
        ok &= item(d, key, e, ctx);
    }
    return ok;
}

static bool origin_item(struct conf_diag *d, const char *key, const struct ynode *e, void *ctx)
{
    struct admit_conf *a = ctx;
    const char *why = NULL;
    char q[CONF_QUOTE_BUF];
    struct origin_rule r;

    if (origin_rule_parse(e->text, &r, &why) < 0) {
        conf_report(d, e, "%s: %s, got %s", key, why, conf_quote(e->text, e->len, q));
        return false;
    }
    a->origins[a->norigins++] = r;
    return true;
}

bool admit_parse_origins(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                         void *base)
{
    struct admit_conf *a = at_off(base, k);

    a->has_origins = true;
    if (v->type == Y_SEQ && v->nkids > 0 && v->nkids <= MAX_RULES) {
        a->origins = calloc(v->nkids, sizeof(*a->origins));
        if (!a->origins) {
            d->oom = true;
            return false;
        }
    }
    return each_scalar(d, k->name, v, "a sequence of origins such as https://app.example.com",
                       origin_item, a);
}

/* RFC 6455 §4.1: a subprotocol is an RFC 2616 token. */
static bool is_token(const char *s)
{
    static const char sep[] = "()<>@,;:\\\"/[]?={} \t";

    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 || strchr(sep, *s))
            return false;
    return true;
}

static bool sub_item(struct conf_diag *d, const char *key, const struct ynode *e, void *ctx)
{
    struct admit_conf *a = ctx;
    char q[CONF_QUOTE_BUF];

    if (!is_token(e->text)) {
        conf_report(
            d, e,
            "%s: a subprotocol name is a token (letters, digits and !#$%%&'*+-.^_`|~), got %s", key,
            conf_quote(e->text, e->len, q));
        return false;
    }
    a->subprotocols[a->nsubprotocols] = strdup(e->text);
    if (!a->subprotocols[a->nsubprotocols]) {
        d->oom = true;
        return false;
    }
    a->nsubprotocols++;
    return true;
}

bool admit_parse_subprotocols(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                              void *base)
{
    struct admit_conf *a = at_off(base, k);

    a->has_subprotocols = true;
    if (v->type == Y_SEQ && v->nkids > 0 && v->nkids <= MAX_RULES) {
        a->subprotocols = calloc(v->nkids, sizeof(*a->subprotocols));
        if (!a->subprotocols) {
            d->oom = true;
            return false;
        }
    }
    return each_scalar(d, k->name, v, "a sequence of subprotocol names", sub_item, a);
}

static bool cidr_item(struct conf_diag *d, const char *key, const struct ynode *e, void *ctx)
{
    struct cidr_list *l = ctx;
    const char *why = NULL;
    char q[CONF_QUOTE_BUF];

    if (cidr_parse(e->text, &l->v[l->n], &why) < 0) {
        conf_report(d, e, "%s: %s, got %s", key, why, conf_quote(e->text, e->len, q));
        return false;
    }
    l->n++;
    return true;
}

static bool parse_list(struct conf_diag *d, const char *key, const struct ynode *v,
                       struct cidr_list *l)
{
    if (v->type == Y_SEQ && v->nkids > 0 && v->nkids <= MAX_RULES) {
        l->v = calloc(v->nkids, sizeof(*l->v));
        if (!l->v) {
            d->oom = true;
            return false;
        }
    }
    return each_scalar(d, key, v, "a sequence of addresses or CIDR ranges such as 10.0.0.0/8",
                       cidr_item, l);
}

bool admit_parse_allow(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base)
{
    struct admit_ip *ip = at_off(base, k);

    return parse_list(d, k->name, v, &ip->allow);
}

bool admit_parse_deny(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                      void *base)
{
    struct admit_ip *ip = at_off(base, k);

    return parse_list(d, k->name, v, &ip->deny);
}

bool admit_parse_cidrs(struct conf_diag *d, const struct conf_key *k, const struct ynode *v,
                       void *base)
{
    return parse_list(d, k->name, v, at_off(base, k));
}

void admit_ip_free(struct admit_ip *ip)
{
    cidr_list_free(&ip->allow);
    cidr_list_free(&ip->deny);
}

void admit_conf_free(struct admit_conf *a)
{
    admit_ip_free(&a->ip);
    for (size_t i = 0; i < a->norigins; i++)
        free(a->origins[i].host);
    free(a->origins);
    for (size_t i = 0; i < a->nsubprotocols; i++)
        free(a->subprotocols[i]);
    free(a->subprotocols);
    memset(a, 0, sizeof(*a));
}
