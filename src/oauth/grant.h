/*
 * grant.h - building OAuth 2.0 requests without doing I/O: token requests
 * for each grant type (RFC 6749 sections 4.1.3, 4.3.2, 4.4.2, 6), token
 * revocation (RFC 7009) and the authorization URL (section 4.1.1 + RFC 7636).
 *
 * Client authentication (RFC 6749 section 2.3.1):
 *  - the connection's client_id/client_secret override the provider's: a
 *    connection with its own client_id is its own client, so it is paired
 *    only with the connection's client_secret (none = public client), never
 *    with the provider's; a connection may also override only the secret;
 *  - with a secret and CLIENT_AUTH_BASIC: header
 *    "Authorization: Basic BASE64(FORMENC(id) ":" FORMENC(secret))", where
 *    FORMENC is application/x-www-form-urlencoded encoding (space -> '+');
 *    neither client_id nor client_secret appears in the body;
 *  - with a secret and CLIENT_AUTH_POST: client_id and client_secret last
 *    in the body;
 *  - without a secret (public client): client_id in the body;
 *  - with CLIENT_AUTH_PRIVATE_KEY_JWT or CLIENT_AUTH_SECRET_JWT (RFC 7523
 *    section 2.2): client_id, client_assertion_type and a fresh
 *    client_assertion (oauth/client_assertion.h: signed with the
 *    provider's signing_key, or with the secret in use as an HS256 key)
 *    last in the body, never the secret; its aud is the token endpoint,
 *    for revocations too. A key or secret that cannot sign is
 *    GRANTD_ECONFIG and no request is made.
 *
 * Parameters, in body order: grant_type, the grant's own parameters, scope,
 * then the provider's token_params (every token request) and refresh_params
 * (refresh only), then the client credentials. A token_params/refresh_params
 * entry whose key is already present replaces its value in place
 * (refresh_params win over token_params); a new key is appended. Keys the
 * builder owns for correctness and security -- grant_type, code,
 * redirect_uri, code_verifier, refresh_token, username, password, token,
 * token_type_hint, client_id, client_secret, client_assertion,
 * client_assertion_type, device_code, assertion, subject_token, subject_token_type,
 * actor_token, actor_token_type -- are never replaced or
 * repeated by configured params (RFC 6749 section 3.2: parameters MUST NOT
 * be repeated); such entries are ignored.
 *
 * Scope: the connection's scopes, else the provider's, joined with the
 * provider's scope_separator (NULL or "" = " "); omitted when empty. The
 * authorization_code token request carries no scope (it was on the
 * authorization URL), and a refresh omits it too (RFC 6749 section 6:
 * "if omitted is treated as equal to the scope originally granted", which
 * avoids invalid_scope when the provider granted fewer scopes than asked);
 * a provider that insists on scope when refreshing gets it through
 * refresh_params.
 *
 * Endpoint URLs: a provider made from a template with per-connection
 * variables (provider_t.vars) has "{name}" placeholders in its URLs; every
 * builder expands them with the connection's variables (conn_t.vars) and
 * re-checks each value against its rule (oauth/catalog.h), so a request
 * never goes to a host the template did not shape. A missing or bad
 * variable is GRANTD_ECONFIG.
 *
 * Body format: a form, or with the provider's json_body (some providers
 * document JSON token requests) the same parameters, in the same order, as
 * one JSON object of strings (base/json.h json_put_str escaping; bytes that
 * are not UTF-8 become U+FFFD), Content-Type application/json.
 *
 * All values are percent-encoded by base/url.h (form encoding in bodies,
 * RFC 3986 encoding with %20 in URLs).
 */
#ifndef GRANTD_OAUTH_GRANT_H
#define GRANTD_OAUTH_GRANT_H

#include <stddef.h>

#include "base/buf.h"
#include "model/connection.h"
#include "model/provider.h"

#define OAUTH_FORM_CONTENT_TYPE "application/x-www-form-urlencoded"
#define OAUTH_JSON_CONTENT_TYPE "application/json"
#define OAUTH_ACCEPT "application/json"

/* One POST to a token or revocation endpoint, ready for the HTTP client.
 * Owned strings are released (and wiped: the body and header carry secrets)
 * by oauth_request_free(). */
typedef struct {
  char *url;                /* owned: the endpoint URL, copied verbatim */
  char *body;               /* owned: NUL-terminated form body */
  size_t body_len;          /* strlen(body) */
  const char *content_type; /* static: OAUTH_FORM_CONTENT_TYPE, or
                               OAUTH_JSON_CONTENT_TYPE (provider json_body) */
  const char *accept;       /* static: OAUTH_ACCEPT */
  char *authorization;      /* owned: "Basic ..." header value, or NULL */
} oauth_request_t;

/* Wipes and frees what r owns and zeroes it. NULL-safe; idempotent. */
void oauth_request_free(oauth_request_t *r);

/* authorization_code grant (RFC 6749 section 4.1.3, RFC 7636 section 4.5):
 * grant_type, code, redirect_uri, code_verifier.
 * @param p             provider (token_url and a client_id are required).
 * @param c             connection for client_id/secret overrides, or NULL.
 * @param code          the code from the callback (required, non-empty).
 * @param redirect_uri  the exact redirect_uri sent on the authorization URL,
 *                      or NULL when none was sent (then omitted).
 * @param code_verifier the PKCE verifier, or NULL when PKCE was not used.
 * @param out           filled on success (oauth_request_free() it); zeroed
 *                      on failure.
 * @return 0; GRANTD_EINVALID when code is NULL/empty; GRANTD_ECONFIG when
 *         the provider has no token_url or no client_id is configured. */
int grant_auth_code_request(const provider_t *p, const conn_t *c, const char *code,
                            const char *redirect_uri, const char *code_verifier,
                            oauth_request_t *out);

/* refresh_token grant (RFC 6749 section 6): grant_type, refresh_token, then
 * token_params and refresh_params; no scope unless configured. Sent to the
 * provider's refresh_url when it has one (Figma), else to token_url; either
 * is expanded with the connection's variables.
 * @param c the connection: its refresh_token (required) and overrides.
 * @return 0; GRANTD_EINVALID when c or its refresh_token is NULL/empty;
 *         GRANTD_ECONFIG as for grant_auth_code_request(). */
int grant_refresh_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

/* client_credentials grant (RFC 6749 section 4.4.2): grant_type, scope.
 * @param c connection for scopes and overrides, or NULL.
 * @return 0; GRANTD_ECONFIG as for grant_auth_code_request(). */
int grant_client_credentials_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

/* Resource owner password grant (RFC 6749 section 4.3.2): grant_type,
 * username, password, scope.
 * @param c the connection: username and password (required, password may
 *          be empty), scopes and overrides.
 * @return 0; GRANTD_EINVALID when c, username or password is NULL;
 *         GRANTD_ECONFIG as for grant_auth_code_request(). */
int grant_password_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

/* Device authorization request (RFC 8628 section 3.1) to the provider's
 * device_authorization_url (placeholders expanded): client_id (or the
 * configured client authentication) and scope; no grant_type, no
 * token_params. A client assertion is addressed to the token endpoint.
 * @param c connection for scopes and overrides, or NULL.
 * @return 0; GRANTD_ECONFIG when there is no device_authorization_url or
 *         as for grant_auth_code_request(). */
int grant_device_authorization_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

/* Device access token request (RFC 8628 section 3.4): grant_type
 * urn:ietf:params:oauth:grant-type:device_code, device_code, then the
 * client authentication; no scope.
 * @return 0; GRANTD_EINVALID when c has no device_code; GRANTD_ECONFIG as
 *         for grant_auth_code_request(). */
int grant_device_code_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

/* JWT bearer grant (RFC 7523 section 2.1): grant_type
 * urn:ietf:params:oauth:grant-type:jwt-bearer, a freshly signed assertion
 * (oauth/jwt_bearer.h), scope (unless the provider puts it in the
 * assertion: assertion_scope_claim), token_params. Client authentication
 * as configured when there is a secret or a JWT client_auth; without one
 * the body has no client_id either (RFC 7523 section 3.1: optional).
 * @return 0; GRANTD_ECONFIG when the assertion cannot be made (no usable
 *         key, no iss) or there is no token_url. */
int grant_jwt_bearer_request(const provider_t *p, const conn_t *c, oauth_request_t *out);

#define TOKEN_EXCHANGE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TOKEN_TYPE_ACCESS_TOKEN "urn:ietf:params:oauth:token-type:access_token"

/* Token exchange (RFC 8693 section 2.1): grant_type, each resource and
 * audience of c, requested_token_type, subject_token and
 * subject_token_type (default ..:token-type:access_token), actor_token and
 * actor_token_type when c has an actor token, scope, token_params, then
 * the client authentication.
 * @param subject_token the subject token: c's own, or the access token of
 *        its subject connection.
 * @return 0; GRANTD_EINVALID without a subject token; GRANTD_ECONFIG as
 *         for grant_auth_code_request(). */
int grant_token_exchange_request(const provider_t *p, const conn_t *c, const char *subject_token,
                                 oauth_request_t *out);

/* Token revocation (RFC 7009 section 2.1) to the provider's revoke_url:
 * token, token_type_hint, with the same client authentication as token
 * requests. token_params/refresh_params are not sent: they belong to the
 * token endpoint. With the provider's revoke_query the two parameters are
 * appended to the URL's query string instead (out->url then holds the
 * token: it is wiped when freed; never log it) and the body holds only
 * the client credentials of client_secret_post, or is empty.
 * @param c     connection for overrides, or NULL.
 * @param token the token to revoke (required, non-empty).
 * @param hint  "access_token", "refresh_token", or NULL to omit.
 * @return 0; GRANTD_EINVALID when token is NULL/empty; GRANTD_ECONFIG when
 *         the provider has no revoke_url or no client_id is configured. */
int grant_revoke_request(const provider_t *p, const conn_t *c, const char *token, const char *hint,
                         oauth_request_t *out);

/* Appends the authorization URL (RFC 6749 section 4.1.1) to out: the
 * provider's authorize_url, keeping any query it already has (a trailing
 * '?' or '&' gets no extra separator), then response_type=code, client_id,
 * redirect_uri, scope, state, code_challenge and code_challenge_method=S256
 * (when code_challenge is given), the provider's authorize_params and then
 * extra. authorize_params and extra replace values of earlier keys except
 * response_type, client_id, redirect_uri, state, code_challenge and
 * code_challenge_method, which are ignored when configured.
 * @param p              provider; authorize_url is required.
 * @param vars           the connection's URL variables, or NULL: the
 *                       placeholders of authorize_url are expanded with
 *                       them (oauth/catalog.h catalog_expand()).
 * @param client_id      the client_id (connection override), or NULL for
 *                       the provider's.
 * @param redirect_uri   the callback URL, or NULL to omit.
 * @param scopes         scopes to ask for; NULL or empty = provider scopes;
 *                       joined with the provider's scope_separator.
 * @param state          the state value (required, non-empty).
 * @param code_challenge S256 challenge, or NULL when PKCE is off.
 * @param extra          more parameters (e.g. per-request login_hint), or
 *                       NULL.
 * @return 0; GRANTD_EINVALID when state is NULL/empty; GRANTD_ECONFIG when
 *         there is no authorize_url, it has a fragment (RFC 6749 section
 *         3.1: MUST NOT), no client_id, or a variable of the provider is
 *         missing from vars or outside its rule. On error out is
 *         unchanged. */
int oauth_authorize_url(const provider_t *p, const kvlist_t *vars, const char *client_id,
                        const char *redirect_uri, const strlist_t *scopes, const char *state,
                        const char *code_challenge, const kvlist_t *extra, buf_t *out);

#endif
