/* Unit tests for oauth/grant: exact bodies and Authorization headers for
 * every grant with every client-auth style, special characters in client
 * credentials, scope joining, token_params/refresh_params, connection
 * overrides, revocation, the authorization URL, and every error path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/mem.h"
#include "oauth/grant.h"

/* Test fixtures are built from static arrays: the oauth library does not
 * link the store, so no strlist/kvlist helpers here either. */
static char *default_scopes[] = {"read", "write"};

static provider_t base_provider(client_auth_t auth)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  p.name = "acme";
  p.authorize_url = "https://auth.example.com/authorize";
  p.token_url = "https://auth.example.com/token";
  p.revoke_url = "https://auth.example.com/revoke";
  p.client_id = "client";
  p.client_secret = "s3cret";
  p.client_auth = auth;
  p.scopes.items = default_scopes;
  p.scopes.n = 2;
  return p;
}

static conn_t base_conn(void)
{
  conn_t c;
  memset(&c, 0, sizeof c);
  c.id = "c1";
  c.refresh_token = "rt-1";
  return c;
}

static void expect_req(const oauth_request_t *r, const char *url, const char *body,
                       const char *auth)
{
  assert_string_equal(r->url, url);
  assert_string_equal(r->body, body);
  assert_int_equal(r->body_len, strlen(body));
  assert_string_equal(r->content_type, "application/x-www-form-urlencoded");
  assert_string_equal(r->accept, "application/json");
  if (auth == NULL)
    assert_null(r->authorization);
  else
    assert_string_equal(r->authorization, auth);
}

#define TOKEN_URL "https://auth.example.com/token"
#define AC_BODY \
  "grant_type=authorization_code&code=co+de%2F1&redirect_uri=https%3A%2F" \
  "%2Fapp.example%2Foauth%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uh" \
  "bUJU1p1r_wW1gFWFOEjXk"

static int auth_code(const provider_t *p, const conn_t *c, oauth_request_t *r)
{
  return grant_auth_code_request(p, c, "co de/1", "https://app.example/oauth/callback",
                                 "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", r);
}

static void test_auth_code_client_auth_styles(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  assert_int_equal(auth_code(&p, NULL, &r), 0);
  expect_req(&r, TOKEN_URL, AC_BODY, "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);
  assert_null(r.body);
  oauth_request_free(&r); /* idempotent */
  oauth_request_free(NULL);

  p.client_auth = CLIENT_AUTH_POST;
  assert_int_equal(auth_code(&p, NULL, &r), 0);
  expect_req(&r, TOKEN_URL, AC_BODY "&client_id=client&client_secret=s3cret", NULL);
  oauth_request_free(&r);

  /* Public client: no secret, client_id in the body whatever client_auth. */
  p.client_secret = NULL;
  for (int a = 0; a < 2; a++) {
    p.client_auth = a == 0 ? CLIENT_AUTH_BASIC : CLIENT_AUTH_POST;
    assert_int_equal(auth_code(&p, NULL, &r), 0);
    expect_req(&r, TOKEN_URL, AC_BODY "&client_id=client", NULL);
    oauth_request_free(&r);
  }
  p.client_secret = ""; /* empty secret = none */
  assert_int_equal(auth_code(&p, NULL, &r), 0);
  expect_req(&r, TOKEN_URL, AC_BODY "&client_id=client", NULL);
  oauth_request_free(&r);

  /* Without PKCE and without a redirect_uri those parameters are omitted. */
  p = base_provider(CLIENT_AUTH_BASIC);
  assert_int_equal(grant_auth_code_request(&p, NULL, "abc", NULL, NULL, &r), 0);
  expect_req(&r, TOKEN_URL, "grant_type=authorization_code&code=abc", "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);
}

static void test_special_characters_in_credentials(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  p.client_id = "my:id+1%";
  p.client_secret = "p \xc3\xa4:ss/+%";
  assert_int_equal(grant_auth_code_request(&p, NULL, "c", NULL, NULL, &r), 0);
  /* base64("my%3Aid%2B1%25:p+%C3%A4%3Ass%2F%2B%25") */
  expect_req(&r, TOKEN_URL, "grant_type=authorization_code&code=c",
             "Basic bXklM0FpZCUyQjElMjU6cCslQzMlQTQlM0FzcyUyRiUyQiUyNQ==");
  oauth_request_free(&r);

  p.client_auth = CLIENT_AUTH_POST;
  assert_int_equal(grant_auth_code_request(&p, NULL, "c", NULL, NULL, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=authorization_code&code=c&client_id=my%3Aid%2B1%25"
             "&client_secret=p+%C3%A4%3Ass%2F%2B%25",
             NULL);
  oauth_request_free(&r);

  /* Unreserved characters pass through unencoded in both places. */
  p.client_auth = CLIENT_AUTH_BASIC;
  p.client_id = "a-b.c_d~e";
  p.client_secret = "Z9";
  assert_int_equal(grant_auth_code_request(&p, NULL, "c", NULL, NULL, &r), 0);
  /* base64("a-b.c_d~e:Z9") */
  assert_string_equal(r.authorization, "Basic YS1iLmNfZH5lOlo5");
  oauth_request_free(&r);
}

static void test_refresh_params(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_POST);
  conn_t c = base_conn();
  /* Refresh sends no scope by default, and no token_params yet. */
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=refresh_token&refresh_token=rt-1&client_id=client"
             "&client_secret=s3cret",
             NULL);
  oauth_request_free(&r);

  kv_t tp[] = {
    {"audience", "https://api.example.com/"},
    {"resource", "r1"},
    {"grant_type", "evil"},     /* protected: ignored */
    {"client_secret", "leak"},  /* protected: ignored */
    {"refresh_token", "other"}, /* protected: ignored */
    {"", "empty key ignored"},
    {"flag", NULL}, /* NULL value = empty */
  };
  kv_t rp[] = {
    {"resource", "r2"},            /* overrides token_params in place */
    {"scope", "offline_access x"}, /* adds a scope on refresh only */
    {"username", "u"},             /* protected */
  };
  p.token_params.items = tp;
  p.token_params.n = ARRAY_SIZE(tp);
  p.refresh_params.items = rp;
  p.refresh_params.n = ARRAY_SIZE(rp);
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=refresh_token&refresh_token=rt-1"
             "&audience=https%3A%2F%2Fapi.example.com%2F&resource=r2&flag="
             "&scope=offline_access+x&client_id=client&client_secret=s3cret",
             NULL);
  oauth_request_free(&r);

  /* refresh_params are not used by other grants; token_params are. */
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=client_credentials&scope=read+write"
             "&audience=https%3A%2F%2Fapi.example.com%2F&resource=r1&flag="
             "&client_id=client&client_secret=s3cret",
             NULL);
  oauth_request_free(&r);

  /* token_params may replace the scope the builder computed. */
  kv_t tp2[] = {{"scope", "custom"}};
  p.token_params.items = tp2;
  p.token_params.n = 1;
  p.refresh_params.n = 0;
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=client_credentials&scope=custom&client_id=client"
             "&client_secret=s3cret",
             NULL);
  oauth_request_free(&r);

  /* Basic auth on refresh. */
  p = base_provider(CLIENT_AUTH_BASIC);
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL, "grant_type=refresh_token&refresh_token=rt-1",
             "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);
}

static void test_scopes(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  conn_t c = base_conn();
  char *cs[] = {"a:b", "", "c/d", "e f"};
  c.scopes.items = cs;
  c.scopes.n = ARRAY_SIZE(cs);

  /* Connection scopes win; empty items are skipped; default separator. */
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL, "grant_type=client_credentials&scope=a%3Ab+c%2Fd+e+f",
             "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);

  p.scope_separator = ",";
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  assert_string_equal(r.body, "grant_type=client_credentials&scope=a%3Ab%2Cc%2Fd%2Ce+f");
  oauth_request_free(&r);

  p.scope_separator = ""; /* empty = default " " */
  c.scopes.n = 0;         /* provider's scopes */
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  assert_string_equal(r.body, "grant_type=client_credentials&scope=read+write");
  oauth_request_free(&r);

  /* No scopes anywhere: no scope parameter. */
  p.scopes.n = 0;
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  assert_string_equal(r.body, "grant_type=client_credentials");
  oauth_request_free(&r);
  char *blank[] = {"", ""};
  p.scopes.items = blank;
  p.scopes.n = 2;
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  assert_string_equal(r.body, "grant_type=client_credentials");
  oauth_request_free(&r);
}

static void test_password(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_POST);
  conn_t c = base_conn();
  c.username = "jane@example.com";
  c.password = "p&ss=w rd+%";
  assert_int_equal(grant_password_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=password&username=jane%40example.com"
             "&password=p%26ss%3Dw+rd%2B%25&scope=read+write&client_id=client"
             "&client_secret=s3cret",
             NULL);
  oauth_request_free(&r);

  c.password = ""; /* an empty password is still a password */
  p.client_secret = NULL;
  assert_int_equal(grant_password_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL,
             "grant_type=password&username=jane%40example.com&password="
             "&scope=read+write&client_id=client",
             NULL);
  oauth_request_free(&r);

  c.password = NULL;
  assert_int_equal(grant_password_request(&p, &c, &r), GRANTD_EINVALID);
  assert_null(r.body);
  c.password = "x";
  c.username = NULL;
  assert_int_equal(grant_password_request(&p, &c, &r), GRANTD_EINVALID);
  assert_int_equal(grant_password_request(&p, NULL, &r), GRANTD_EINVALID);
}

static void test_overrides(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  conn_t c = base_conn();

  /* Both overridden. */
  c.client_id = "conn-id";
  c.client_secret = "conn-secret";
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.authorization, "Basic Y29ubi1pZDpjb25uLXNlY3JldA==");
  oauth_request_free(&r);

  /* Own client_id without a secret: a public client, never paired with the
   * provider's secret. */
  c.client_secret = NULL;
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  expect_req(&r, TOKEN_URL, "grant_type=refresh_token&refresh_token=rt-1&client_id=conn-id", NULL);
  oauth_request_free(&r);

  /* Only the secret overridden: provider's id with the connection's secret. */
  c.client_id = "";
  c.client_secret = "conn-secret";
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.authorization, "Basic Y2xpZW50OmNvbm4tc2VjcmV0");
  oauth_request_free(&r);

  /* A connection id rescues a provider without one. */
  p.client_id = NULL;
  c.client_id = "conn-id";
  p.client_auth = CLIENT_AUTH_POST;
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  assert_string_equal(r.body, "grant_type=client_credentials&scope=read+write"
                              "&client_id=conn-id&client_secret=conn-secret");
  oauth_request_free(&r);
}

static void test_revoke(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  kv_t tp[] = {{"audience", "x"}};
  p.token_params.items = tp; /* not sent to the revocation endpoint */
  p.token_params.n = 1;
  assert_int_equal(grant_revoke_request(&p, NULL, "tok+/=", "refresh_token", &r), 0);
  expect_req(&r, "https://auth.example.com/revoke",
             "token=tok%2B%2F%3D&token_type_hint=refresh_token", "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);

  p.client_auth = CLIENT_AUTH_POST;
  assert_int_equal(grant_revoke_request(&p, NULL, "at", NULL, &r), 0);
  expect_req(&r, "https://auth.example.com/revoke",
             "token=at&client_id=client&client_secret=s3cret", NULL);
  oauth_request_free(&r);

  conn_t c = base_conn();
  c.client_id = "conn-id";
  assert_int_equal(grant_revoke_request(&p, &c, "at", "", &r), 0);
  expect_req(&r, "https://auth.example.com/revoke", "token=at&client_id=conn-id", NULL);
  oauth_request_free(&r);

  assert_int_equal(grant_revoke_request(&p, NULL, "", NULL, &r), GRANTD_EINVALID);
  assert_int_equal(grant_revoke_request(&p, NULL, NULL, NULL, &r), GRANTD_EINVALID);
  p.revoke_url = NULL;
  assert_int_equal(grant_revoke_request(&p, NULL, "at", NULL, &r), GRANTD_ECONFIG);
  assert_null(r.url);
  p.revoke_url = "https://auth.example.com/revoke";
  p.client_id = "";
  assert_int_equal(grant_revoke_request(&p, NULL, "at", NULL, &r), GRANTD_ECONFIG);
}

static void test_token_errors(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  conn_t c = base_conn();

  assert_int_equal(grant_auth_code_request(&p, NULL, NULL, NULL, NULL, &r), GRANTD_EINVALID);
  assert_int_equal(grant_auth_code_request(&p, NULL, "", NULL, NULL, &r), GRANTD_EINVALID);
  assert_null(r.body);
  assert_int_equal(grant_refresh_request(&p, NULL, &r), GRANTD_EINVALID);
  c.refresh_token = "";
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_EINVALID);
  c.refresh_token = NULL;
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_EINVALID);
  c.refresh_token = "rt";

  p.token_url = NULL;
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_ECONFIG);
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), GRANTD_ECONFIG);
  p.token_url = "";
  assert_int_equal(auth_code(&p, &c, &r), GRANTD_ECONFIG);
  assert_null(r.url);
  assert_null(r.authorization);

  p.token_url = TOKEN_URL;
  p.client_id = NULL;
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_ECONFIG);
  assert_null(r.body);
  p.client_id = "";
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
}

#define AUTH_BASE "https://auth.example.com/authorize"
#define AUTH_QS \
  "response_type=code&client_id=client&redirect_uri=https%3A%2F%2Fapp." \
  "example%2Foauth%2Fcallback&scope=read%20write&state=st-1" \
  "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" \
  "&code_challenge_method=S256"

static int authz(const provider_t *p, buf_t *out)
{
  return oauth_authorize_url(p, NULL, NULL, "https://app.example/oauth/callback", NULL, "st-1",
                             "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", NULL, out);
}

static void test_authorize_url_queries(void **state)
{
  (void)state;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  buf_t b = BUF_INIT;
  assert_int_equal(authz(&p, &b), 0);
  assert_string_equal(buf_cstr(&b), AUTH_BASE "?" AUTH_QS);

  /* An existing query is kept; a trailing '?' or '&' gets no separator. */
  const struct {
    const char *base, *expect;
  } rows[] = {
    {AUTH_BASE "?tenant=x", AUTH_BASE "?tenant=x&" AUTH_QS},
    {AUTH_BASE "?", AUTH_BASE "?" AUTH_QS},
    {AUTH_BASE "?a=1&", AUTH_BASE "?a=1&" AUTH_QS},
    {AUTH_BASE "?prompt=consent&access_type=offline",
     AUTH_BASE "?prompt=consent&access_type=offline&" AUTH_QS},
  };
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    p.authorize_url = (char *)rows[i].base;
    buf_reset(&b);
    assert_int_equal(authz(&p, &b), 0);
    assert_string_equal(buf_cstr(&b), rows[i].expect);
  }

  /* The URL is appended after what the buffer holds. */
  p.authorize_url = AUTH_BASE;
  buf_reset(&b);
  buf_puts(&b, "url: ");
  assert_int_equal(authz(&p, &b), 0);
  assert_string_equal(buf_cstr(&b), "url: " AUTH_BASE "?" AUTH_QS);
  buf_free(&b);
}

static void test_authorize_url_params(void **state)
{
  (void)state;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  buf_t b = BUF_INIT;
  char *sc[] = {"openid", "https://graph.example/a b", "x+y"};
  strlist_t scopes = {sc, ARRAY_SIZE(sc)};
  kv_t ap[] = {
    {"access_type", "offline"},
    {"prompt", "consent"},
    {"state", "forged"},                /* protected: ignored */
    {"response_type", "token"},         /* protected: ignored */
    {"code_challenge_method", "plain"}, /* protected: ignored */
  };
  kv_t ex[] = {
    {"prompt", "select_account"}, /* overrides authorize_params */
    {"login_hint", "j\xc3\xa4n@example.com"},
    {"client_id", "other"}, /* protected: ignored */
  };
  kvlist_t extra = {ex, ARRAY_SIZE(ex)};
  p.authorize_params.items = ap;
  p.authorize_params.n = ARRAY_SIZE(ap);
  p.scope_separator = ",";
  assert_int_equal(oauth_authorize_url(&p, NULL, "cid 1", NULL, &scopes, "s/t", NULL, &extra, &b),
                   0);
  assert_string_equal(buf_cstr(&b), AUTH_BASE
                      "?response_type=code&client_id=cid%201"
                      "&scope=openid%2Chttps%3A%2F%2Fgraph.example%2Fa%20b%2Cx%2By&state=s%2Ft"
                      "&access_type=offline&prompt=select_account"
                      "&login_hint=j%C3%A4n%40example.com");

  /* authorize_params may replace the scope; empty scopes = provider's. */
  kv_t ap2[] = {{"scope", "custom"}};
  p.authorize_params.items = ap2;
  p.authorize_params.n = 1;
  buf_reset(&b);
  assert_int_equal(oauth_authorize_url(&p, NULL, NULL, NULL, NULL, "s", NULL, NULL, &b), 0);
  assert_string_equal(buf_cstr(&b), AUTH_BASE "?response_type=code"
                                              "&client_id=client&scope=custom&state=s");
  p.authorize_params.n = 0;
  strlist_t none = {NULL, 0};
  buf_reset(&b);
  assert_int_equal(oauth_authorize_url(&p, NULL, "", NULL, &none, "s", "", NULL, &b), 0);
  assert_string_equal(buf_cstr(&b), AUTH_BASE "?response_type=code"
                                              "&client_id=client&scope=read%2Cwrite&state=s");
  p.scopes.n = 0;
  buf_reset(&b);
  assert_int_equal(oauth_authorize_url(&p, NULL, NULL, NULL, NULL, "s", NULL, NULL, &b), 0);
  assert_string_equal(buf_cstr(&b), AUTH_BASE "?response_type=code"
                                              "&client_id=client&state=s");
  buf_free(&b);
}

static void test_authorize_url_errors(void **state)
{
  (void)state;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  buf_t b = BUF_INIT;
  buf_puts(&b, "keep");
  assert_int_equal(oauth_authorize_url(&p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &b),
                   GRANTD_EINVALID);
  assert_int_equal(oauth_authorize_url(&p, NULL, NULL, NULL, NULL, "", NULL, NULL, &b),
                   GRANTD_EINVALID);
  p.authorize_url = AUTH_BASE "#frag";
  assert_int_equal(authz(&p, &b), GRANTD_ECONFIG);
  p.authorize_url = NULL;
  assert_int_equal(authz(&p, &b), GRANTD_ECONFIG);
  p.authorize_url = "";
  assert_int_equal(authz(&p, &b), GRANTD_ECONFIG);
  p.authorize_url = AUTH_BASE;
  p.client_id = NULL;
  assert_int_equal(authz(&p, &b), GRANTD_ECONFIG);
  assert_string_equal(buf_cstr(&b), "keep");
  buf_free(&b);
}

/* A provider with per-connection URL variables: every builder expands the
 * connection's values; a missing or bad value is GRANTD_ECONFIG with
 * nothing built. */
static void test_url_variables(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_POST);
  p.token_url = "https://{shop}.myshopify.com/admin/oauth/access_token";
  p.revoke_url = "https://{shop}.myshopify.com/revoke";
  p.authorize_url = "https://{shop}.myshopify.com/admin/oauth/authorize?x=1";
  kv_t specs[] = {{"shop", "dns_label"}};
  p.vars.items = specs;
  p.vars.n = 1;
  conn_t c = base_conn();
  kv_t vals[] = {{"shop", "acme-store"}};
  c.vars.items = vals;
  c.vars.n = 1;
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://acme-store.myshopify.com/admin/oauth/access_token");
  oauth_request_free(&r);
  assert_int_equal(grant_auth_code_request(&p, &c, "code", NULL, NULL, &r), 0);
  assert_string_equal(r.url, "https://acme-store.myshopify.com/admin/oauth/access_token");
  oauth_request_free(&r);
  assert_int_equal(grant_revoke_request(&p, &c, "at", NULL, &r), 0);
  assert_string_equal(r.url, "https://acme-store.myshopify.com/revoke");
  oauth_request_free(&r);
  buf_t b = BUF_INIT;
  assert_int_equal(oauth_authorize_url(&p, &c.vars, NULL, NULL, NULL, "s", NULL, NULL, &b), 0);
  assert_string_equal(buf_cstr(&b),
                      "https://acme-store.myshopify.com/admin/oauth/authorize?x=1"
                      "&response_type=code&client_id=client&scope=read%20write&state=s");
  buf_reset(&b);

  /* No connection, no value, or a value that would move the host. */
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  assert_null(r.url);
  assert_int_equal(oauth_authorize_url(&p, NULL, NULL, NULL, NULL, "s", NULL, NULL, &b),
                   GRANTD_ECONFIG);
  static const char *const bad[] = {"evil.com/", "evil.com", "a@evil.com", "a:8443", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    vals[0].value = (char *)bad[i];
    assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_ECONFIG);
    assert_null(r.url);
    assert_null(r.body);
    assert_int_equal(grant_revoke_request(&p, &c, "at", NULL, &r), GRANTD_ECONFIG);
    assert_int_equal(oauth_authorize_url(&p, &c.vars, NULL, NULL, NULL, "s", NULL, NULL, &b),
                     GRANTD_ECONFIG);
    assert_int_equal(b.len, 0);
  }
  /* A placeholder the provider does not declare. */
  vals[0].value = "acme";
  p.token_url = "https://{host}/token";
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_ECONFIG);
  buf_free(&b);
}

/* json_body: the same parameters, in order, as one JSON object of
 * strings; Basic auth keeps the credentials out of it. */
static void test_json_body(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_POST);
  p.json_body = true;
  conn_t c = base_conn();
  c.refresh_token = "rt\"1\\";
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.body, "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"rt\\\"1\\\\\","
                              "\"client_id\":\"client\",\"client_secret\":\"s3cret\"}");
  assert_int_equal(r.body_len, strlen(r.body));
  assert_string_equal(r.content_type, "application/json");
  assert_null(r.authorization);
  oauth_request_free(&r);

  p.client_auth = CLIENT_AUTH_BASIC;
  assert_int_equal(grant_revoke_request(&p, NULL, "at", "access_token", &r), 0);
  assert_string_equal(r.body, "{\"token\":\"at\",\"token_type_hint\":\"access_token\"}");
  assert_string_equal(r.content_type, "application/json");
  assert_string_equal(r.authorization, "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);

  p.json_body = false;
  assert_int_equal(grant_revoke_request(&p, NULL, "at", NULL, &r), 0);
  assert_string_equal(r.content_type, "application/x-www-form-urlencoded");
  oauth_request_free(&r);
}

/* refresh_url: refreshes (and only refreshes) go there, expanded with the
 * connection's variables, with the same body and client authentication;
 * an empty one falls back to token_url. */
static void test_refresh_url(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_BASIC);
  p.refresh_url = "https://api.example.com/v1/oauth/refresh";
  p.token_params.items = (kv_t[]){{"audience", "api"}};
  p.token_params.n = 1;
  conn_t c = base_conn();
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://api.example.com/v1/oauth/refresh");
  assert_string_equal(r.body, "grant_type=refresh_token&refresh_token=rt-1&audience=api");
  assert_string_equal(r.authorization, "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);
  assert_int_equal(grant_auth_code_request(&p, &c, "code", NULL, NULL, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/token");
  oauth_request_free(&r);
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/token");
  oauth_request_free(&r);
  c.username = "u";
  c.password = "pw";
  assert_int_equal(grant_password_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/token");
  oauth_request_free(&r);
  assert_int_equal(grant_revoke_request(&p, &c, "at", NULL, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/revoke");
  oauth_request_free(&r);

  /* With variables: the connection's value, checked against its rule. */
  p.refresh_url = "https://{shop}.example.com/refresh";
  kv_t specs[] = {{"shop", "dns_label"}};
  p.vars.items = specs;
  p.vars.n = 1;
  kv_t vals[] = {{"shop", "acme-store"}};
  c.vars.items = vals;
  c.vars.n = 1;
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://acme-store.example.com/refresh");
  oauth_request_free(&r);
  vals[0].value = "evil.com/";
  assert_int_equal(grant_refresh_request(&p, &c, &r), GRANTD_ECONFIG);
  assert_null(r.url);
  assert_null(r.body);

  /* Empty = unset: token_url. */
  p.refresh_url = "";
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/token");
  oauth_request_free(&r);
}

/* revoke_query: token and hint in the URL's query string (after any query
 * the URL has), form-encoded; the body keeps only a post client. */
static void test_revoke_query(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = base_provider(CLIENT_AUTH_POST);
  p.revoke_query = true;
  assert_int_equal(grant_revoke_request(&p, NULL, "a b&c=d", "refresh_token", &r), 0);
  assert_string_equal(
    r.url, "https://auth.example.com/revoke?token=a+b%26c%3Dd&token_type_hint=refresh_token");
  assert_string_equal(r.body, "client_id=client&client_secret=s3cret");
  oauth_request_free(&r);
  p.client_auth = CLIENT_AUTH_BASIC;
  p.revoke_url = "https://auth.example.com/revoke?v=2";
  assert_int_equal(grant_revoke_request(&p, NULL, "tok", NULL, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/revoke?v=2&token=tok");
  assert_string_equal(r.body, "");
  assert_string_equal(r.authorization, "Basic Y2xpZW50OnMzY3JldA==");
  oauth_request_free(&r);
  p.revoke_url = "https://auth.example.com/revoke?";
  assert_int_equal(grant_revoke_request(&p, NULL, "tok", NULL, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/revoke?token=tok");
  oauth_request_free(&r);
  /* Token requests are not affected. */
  conn_t c = base_conn();
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/token");
  assert_string_equal(r.body, "grant_type=refresh_token&refresh_token=rt-1");
  oauth_request_free(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_auth_code_client_auth_styles),
    cmocka_unit_test(test_special_characters_in_credentials),
    cmocka_unit_test(test_refresh_params),
    cmocka_unit_test(test_scopes),
    cmocka_unit_test(test_password),
    cmocka_unit_test(test_overrides),
    cmocka_unit_test(test_revoke),
    cmocka_unit_test(test_token_errors),
    cmocka_unit_test(test_authorize_url_queries),
    cmocka_unit_test(test_authorize_url_params),
    cmocka_unit_test(test_authorize_url_errors),
    cmocka_unit_test(test_url_variables),
    cmocka_unit_test(test_json_body),
    cmocka_unit_test(test_refresh_url),
    cmocka_unit_test(test_revoke_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
