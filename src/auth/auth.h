/* Authentication at the handshake, per route (`auth:`): a JWT or an API
 * key, checked as one step of the admission chain (admit/admit.h) after
 * the address and Origin rules.
 *
 *   auth:
 *     jwt:
 *       algorithms: [RS256, ES256]     # required; nothing else verifies
 *       public_key_file: FILE          # or secret_file: (HS*) or jwks_file:
 *       issuer: https://id.example.com
 *       audience: chat
 *       leeway: 30s
 *       require_exp: true
 *       token_from: [header, "query:access_token", "cookie:session", subprotocol]
 *       require: {role: admin, scope: {contains: chat:write}}
 *       forward_claims: {sub: X-User-Id, tenant: X-Tenant}
 *       close_on_expiry: false
 *   auth:
 *     api_key: {header: X-Api-Key, keys_file: FILE}   # or query: NAME
 *
 * Failures: 401 (missing, malformed, expired, wrongly signed credentials:
 * ERR_AUTH, with a WWW-Authenticate challenge) or 403 (valid credentials
 * without a required claim: ERR_AUTH_FORBIDDEN). The reason goes to the
 * log, never the token. */
#ifndef WSG_AUTH_AUTH_H
#define WSG_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "admit/admit.h"
#include "admit/admit_conf.h"
#include "config/engine.h"

struct auth_conf;

/* The `auth:` key (CK_CUSTOM; k->off: a struct auth_conf * in base). */
bool auth_parse(struct conf_diag *d, const struct conf_key *k, const struct ynode *v, void *base);
void auth_conf_free(struct auth_conf *a);

/* The admission step (arg: the struct auth_conf). */
int auth_step(const struct admit_conf *a, const void *arg, struct admit_ctx *cx);

/* Whether the route closes connections when their token expires. */
bool auth_close_on_expiry(const struct auth_conf *a);

#endif
