/* Unit tests for oauth/token: one table of token endpoint responses seen in
 * the wild (and worse), each checked field by field, plus bounds, the
 * revocation parser, network error mapping and outcome names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/mem.h"
#include "oauth/token.h"

/* 2023-11-14T22:13:20Z, a Tuesday. */
#define NOW 1700000000000LL
#define EXP(s) (NOW + (int64_t)(s)*1000)
#define TEN_YEARS (10LL * 365 * 24 * 3600)
#define WEEK_MS (7LL * 24 * 3600 * 1000)

#define JSON "application/json"
#define FORM "application/x-www-form-urlencoded"

typedef struct {
  const char *name;
  /* input */
  int status;
  const char *ct;
  const char *body;
  const char *retry_after;
  int64_t default_exp;
  const char *member; /* token_member */
  /* expected */
  token_outcome_t outcome;
  const char *at, *rt, *type;
  int64_t exp, rt_exp;
  const char *scopes; /* joined with '|'; NULL = no scope member */
  const char *extra;
  const char *error, *desc;
  bool provider;
  int64_t retry_ms;
} row_t;

#define OKR .outcome = TOKEN_OK, .type = "Bearer"
#define MALFORMED(field) \
  .outcome = TOKEN_TRANSIENT, .error = "invalid_response", \
  .desc = field " is not a number of seconds or null"

#define SLACK_USER \
  "{\"ok\":true,\"app_id\":\"A1\",\"authed_user\":{\"id\":\"U1\",\"scope\":\"users:read," \
  "chat:write\",\"access_token\":\"xoxp-1\",\"token_type\":\"user\",\"refresh_token\":" \
  "\"xoxe-1\",\"expires_in\":43200},\"team\":{\"id\":\"T1\"}}"

static const row_t rows[] = {
  /* ---- body-level success flag and nested tokens (Slack) ---- */
  {"slack ok false", 200, JSON, "{\"ok\":false,\"error\":\"invalid_code\"}",
   .outcome = TOKEN_REAUTH, .error = "invalid_code", .provider = true},
  {"slack ok false, no error member", 200, JSON, "{\"ok\":false,\"access_token\":\"a\"}",
   .outcome = TOKEN_CONFIG, .error = "ok_false", .provider = true},
  {"slack ok false ratelimited", 200, JSON, "{\"ok\":false,\"error\":\"ratelimited\"}",
   .outcome = TOKEN_TRANSIENT, .error = "ratelimited", .provider = true},
  {"slack ok false internal_error", 200, JSON, "{\"ok\":false,\"error\":\"internal_error\"}",
   .outcome = TOKEN_TRANSIENT, .error = "internal_error", .provider = true},
  {"slack bad_client_secret", 200, JSON, "{\"ok\":false,\"error\":\"bad_client_secret\"}",
   .outcome = TOKEN_CONFIG, .error = "bad_client_secret", .provider = true},
  {"ok true is success", 200, JSON, "{\"ok\":true,\"access_token\":\"a\"}", OKR, .at = "a",
   .extra = "{\"ok\":true}"},
  {"slack bot token (top level)", 200, JSON,
   "{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"scope\":\"chat:write,"
   "commands\",\"authed_user\":{\"id\":\"U1\"},\"team\":{\"id\":\"T1\"}}",
   .outcome = TOKEN_OK, .at = "xoxb-1", .type = "bot", .scopes = "chat:write|commands",
   .extra = "{\"ok\":true,\"authed_user\":{\"id\":\"U1\"},\"team\":{\"id\":\"T1\"}}"},
  {"slack user token without token_member", 200, JSON, SLACK_USER, .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "HTTP 200 without access_token"},
  {"slack user token under authed_user", 200, JSON, SLACK_USER, .member = "authed_user",
   .outcome = TOKEN_OK, .at = "xoxp-1", .rt = "xoxe-1", .type = "user", .exp = EXP(43200),
   .scopes = "users:read|chat:write",
   .extra = "{\"ok\":true,\"app_id\":\"A1\",\"authed_user\":{\"id\":\"U1\",\"scope\":"
            "\"users:read,chat:write\",\"access_token\":\"xoxp-1\",\"token_type\":\"user\","
            "\"refresh_token\":\"xoxe-1\",\"expires_in\":43200},\"team\":{\"id\":\"T1\"}}"},
  {"token_member, flat refresh answer", 200, JSON,
   "{\"ok\":true,\"access_token\":\"xoxe.xoxp-2\",\"refresh_token\":\"xoxe-2\","
   "\"expires_in\":43200,\"token_type\":\"user\"}",
   .member = "authed_user", .outcome = TOKEN_OK, .at = "xoxe.xoxp-2", .rt = "xoxe-2",
   .type = "user", .exp = EXP(43200), .extra = "{\"ok\":true}"},
  {"token_member without a token there", 200, JSON,
   "{\"access_token\":\"top\",\"authed_user\":{\"id\":\"U1\",\"access_token\":\"\"}}",
   .member = "authed_user", OKR, .at = "top",
   .extra = "{\"authed_user\":{\"id\":\"U1\",\"access_token\":\"\"}}"},
  {"token_member not an object", 200, JSON, "{\"access_token\":\"top\",\"authed_user\":7}",
   .member = "authed_user", OKR, .at = "top", .extra = "{\"authed_user\":7}"},
  {"token_member with an error", 200, JSON,
   "{\"ok\":false,\"error\":\"invalid_refresh_token\",\"authed_user\":{\"access_token\":\"x\"}}",
   .member = "authed_user", .outcome = TOKEN_REAUTH, .error = "invalid_refresh_token",
   .provider = true},
  /* ---- successes: expiry forms ---- */
  {"rfc6749 example", 200, JSON,
   "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\"token_type\":\"example\","
   "\"expires_in\":3600,\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\","
   "\"example_parameter\":\"example_value\"}",
   .outcome = TOKEN_OK, .at = "2YotnFZFEjr1zCsicMWpAA", .rt = "tGzv3JOkF0XG5Qx2TlKWIA",
   .type = "example", .exp = EXP(3600), .extra = "{\"example_parameter\":\"example_value\"}"},
  {"expires_in string", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"3600\"}", OKR,
   .at = "a", .exp = EXP(3600)},
  {"expires_in string padded", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\" 60 \"}", OKR,
   .at = "a", .exp = EXP(60)},
  {"expires_in fractional string", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"3599.9\"}",
   OKR, .at = "a", .exp = EXP(3599)},
  {"expires_in real", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":3600.0}", OKR, .at = "a",
   .exp = EXP(3600)},
  {"expires_in absent, default", 200, JSON, "{\"access_token\":\"a\"}", .default_exp = 1800, OKR,
   .at = "a", .exp = EXP(1800)},
  {"expires_in absent, no default", 200, JSON, "{\"access_token\":\"a\"}", OKR, .at = "a",
   .exp = 0},
  {"expires_in zero uses default", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":0}",
   .default_exp = 600, OKR, .at = "a", .exp = EXP(600)},
  {"expires_in negative", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":-5}", OKR, .at = "a",
   .exp = 0},
  {"expires_in negative real", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":-1.5}", OKR,
   .at = "a"},
  {"expires_in negative string", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"-5\"}",
   .default_exp = 7, OKR, .at = "a", .exp = EXP(7)},
  {"expires_in null is absent", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":null}",
   .default_exp = 100, OKR, .at = "a", .exp = EXP(100)},
  {"expires_in exponent", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":3.6e3}", OKR,
   .at = "a", .exp = EXP(3600)},
  {"expires_in past 2^31", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":2147483648}", OKR,
   .at = "a", .exp = EXP(TEN_YEARS)},
  {"expires_in string past 2^31", 200, JSON,
   "{\"access_token\":\"a\",\"expires_in\":\"4294967296\"}", OKR, .at = "a", .exp = EXP(TEN_YEARS)},
  /* Present but unusable: a malformed response, like a missing token (the
   * old token is kept and the request retried), naming the field. */
  {"expires_in object", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":{\"s\":1}}",
   .default_exp = 100, MALFORMED("expires_in")},
  {"expires_in garbage string", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"1h\"}",
   MALFORMED("expires_in")},
  {"expires_in zzz", 200, JSON,
   "{\"access_token\":\"90d\",\"token_type\":\"bearer\","
   "\"expires_in\":\"zzz\"}",
   MALFORMED("expires_in")},
  {"expires_in empty string", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"\"}",
   MALFORMED("expires_in")},
  {"expires_in two dots", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":\"1.2.3\"}",
   MALFORMED("expires_in")},
  {"expires_in true", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":true}",
   MALFORMED("expires_in")},
  {"expires_in false", 200, JSON,
   "{\"access_token\":\"90d\",\"token_type\":\"bearer\","
   "\"expires_in\":false}",
   MALFORMED("expires_in")},
  {"expires_in empty object", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":{}}",
   MALFORMED("expires_in")},
  {"expires_in array", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":[3600]}",
   MALFORMED("expires_in")},
  {"expires_in garbage in a form body", 200, FORM, "access_token=a&expires_in=soon",
   MALFORMED("expires_in")},
  {"legacy expires garbage", 200, "text/plain", "access_token=a&expires=x", MALFORMED("expires")},
  {"expires_in bad even when expires_at is fine", 200, JSON,
   "{\"access_token\":\"a\",\"expires_in\":false,\"expires_at\":1700007200}",
   MALFORMED("expires_in")},
  {"refresh_token_expires_in bool", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"expires_in\":60,"
   "\"refresh_token_expires_in\":false}",
   MALFORMED("refresh_token_expires_in")},
  {"x_refresh_token_expires_in string", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\","
   "\"x_refresh_token_expires_in\":\"100 days\"}",
   MALFORMED("x_refresh_token_expires_in")},
  {"refresh_expires_in object", 200, JSON, "{\"access_token\":\"a\",\"refresh_expires_in\":{}}",
   MALFORMED("refresh_expires_in")},
  {"refresh_token_expires_in null is absent", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\","
   "\"refresh_token_expires_in\":null,\"refresh_expires_in\":30}",
   OKR, .at = "a", .rt = "r", .rt_exp = EXP(30)},
  {"a bad lifetime on an error answer keeps the error", 400, JSON,
   "{\"error\":\"invalid_grant\",\"expires_in\":false}", .outcome = TOKEN_REAUTH,
   .error = "invalid_grant", .provider = true},
  {"expires_in huge is capped", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":99999999999999}",
   OKR, .at = "a", .exp = EXP(TEN_YEARS)},
  {"expires_in huge real is capped", 200, JSON, "{\"access_token\":\"a\",\"expires_in\":1e300}",
   OKR, .at = "a", .exp = EXP(TEN_YEARS)},
  {"default huge is capped", 200, JSON, "{\"access_token\":\"a\"}", .default_exp = 1LL << 50, OKR,
   .at = "a", .exp = EXP(TEN_YEARS)},
  {"expires_at seconds", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":1700007200}", OKR,
   .at = "a", .exp = EXP(7200)},
  {"expires_at ms", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":1700007200000}", OKR,
   .at = "a", .exp = EXP(7200)},
  {"expires_at numeric string", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":\"1700007200\"}",
   OKR, .at = "a", .exp = EXP(7200)},
  {"expires_at rfc3339", 200, JSON,
   "{\"access_token\":\"a\",\"expires_at\":\"2023-11-14T23:13:20Z\"}", OKR, .at = "a",
   .exp = EXP(3600)},
  {"expires_at in the past falls back", 200, JSON,
   "{\"access_token\":\"a\",\"expires_at\":1600000000}", .default_exp = 5, OKR, .at = "a",
   .exp = EXP(5)},
  {"expires_at bad string", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":\"tomorrow\"}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "expires_at is not a time (epoch seconds or ms, RFC 3339) or null"},
  {"expires_at bool", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":false}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "expires_at is not a time (epoch seconds or ms, RFC 3339) or null"},
  {"expires_at null is absent", 200, JSON, "{\"access_token\":\"a\",\"expires_at\":null}", OKR,
   .at = "a"},
  {"expires_in wins over expires_at", 200, JSON,
   "{\"access_token\":\"a\",\"expires_in\":60,\"expires_at\":1700007200}", OKR, .at = "a",
   .exp = EXP(60)},
  {"legacy facebook expires, text/plain form", 200, "text/plain",
   "access_token=EAAB&expires=5183999", OKR, .at = "EAAB", .exp = EXP(5183999)},

  /* ---- token_type ---- */
  {"token_type BEARER", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"BEARER\"}", OKR,
   .at = "a"},
  {"token_type bearer", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"bearer\"}", OKR,
   .at = "a"},
  {"token_type absent", 200, JSON, "{\"access_token\":\"a\"}", OKR, .at = "a"},
  {"token_type empty", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"\"}", OKR, .at = "a"},
  {"token_type number", 200, JSON, "{\"access_token\":\"a\",\"token_type\":5}", OKR, .at = "a"},
  {"token_type DPoP kept", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"DPoP\"}",
   .outcome = TOKEN_OK, .at = "a", .type = "DPoP"},
  {"token_type mac kept", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"mac\"}",
   .outcome = TOKEN_OK, .at = "a", .type = "mac"},
  {"token_type sanitised", 200, JSON, "{\"access_token\":\"a\",\"token_type\":\"x\\\"y\\n\"}",
   .outcome = TOKEN_OK, .at = "a", .type = "x_y_"},

  /* ---- body formats ---- */
  {"github form", 200, FORM,
   "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist"
   "&token_type=bearer",
   OKR, .at = "gho_16C7e42F292c6912E7710c838347Ae178B4a", .scopes = "repo|gist"},
  {"form with charset and trailing newline", 200, FORM "; charset=utf-8",
   "access_token=a%2Bb&refresh_token=r+1&expires_in=60&foo=b%C3%A4r\r\n", OKR, .at = "a+b",
   .rt = "r 1", .exp = EXP(60), .extra = "{\"foo\":\"b\xc3\xa4r\"}"},
  {"form sniffed without content type", 200, NULL, "access_token=a&expires_in=60", OKR, .at = "a",
   .exp = EXP(60)},
  {"json sniffed under text/plain", 200, "text/plain", " \n{\"access_token\":\"a\"}", OKR,
   .at = "a"},
  {"json with charset", 200, " Application/JSON ; charset=UTF-8", "{\"access_token\":\"a\"}", OKR,
   .at = "a"},
  {"json under +json type", 200, "application/vnd.example+json", "{\"access_token\":\"a\"}", OKR,
   .at = "a"},
  {"declared json, form body", 200, JSON, "access_token=a&token_type=bearer", OKR, .at = "a"},
  {"declared form, json body", 200, FORM, "{\"access_token\":\"a\"}", OKR, .at = "a"},
  {"form: invalid utf-8 value dropped", 200, FORM, "access_token=a&bad=%FF&ok=1", OKR, .at = "a",
   .extra = "{\"ok\":\"1\"}"},

  /* ---- extras, refresh tokens, scopes ---- */
  {"salesforce extras", 200, JSON,
   "{\"access_token\":\"00D!AQ\",\"signature\":\"x/y=\","
   "\"scope\":\"refresh_token api\",\"instance_url\":\"https://na1.example."
   "com\",\"id\":\"https://login.example.com/id/00D/005\",\"token_type\":"
   "\"Bearer\",\"issued_at\":\"1278448101416\"}",
   OKR, .at = "00D!AQ", .scopes = "refresh_token|api",
   .extra = "{\"signature\":\"x/y=\",\"instance_url\":\"https://na1.example."
            "com\",\"id\":\"https://login.example.com/id/00D/005\","
            "\"issued_at\":\"1278448101416\"}"},
  {"quickbooks x_refresh_token_expires_in", 200, JSON,
   "{\"token_type\":\"bearer\",\"expires_in\":3600,\"refresh_token\":\"Q0\","
   "\"x_refresh_token_expires_in\":8726400,\"access_token\":\"eyJ\"}",
   OKR, .at = "eyJ", .rt = "Q0", .exp = EXP(3600), .rt_exp = EXP(8726400)},
  {"refresh_token_expires_in", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\","
   "\"refresh_token_expires_in\":\"15811200\",\"x_refresh_token_expires_in\":5}",
   OKR, .at = "a", .rt = "r", .rt_exp = EXP(15811200)},
  {"keycloak refresh_expires_in", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"refresh_expires_in\":1800,"
   "\"not-before-policy\":0,\"session_state\":\"s\"}",
   OKR, .at = "a", .rt = "r", .rt_exp = EXP(1800),
   .extra = "{\"not-before-policy\":0,\"session_state\":\"s\"}"},
  {"keycloak offline: refresh_expires_in 0", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"refresh_expires_in\":0}", OKR, .at = "a",
   .rt = "r"},
  {"id_token kept in extra, tokens never", 200, JSON,
   "{\"access_token\":\"a\",\"id_token\":\"eyJ.x.y\",\"refresh_token\":\"r\","
   "\"expires_in\":\"60\",\"error_uri\":\"u\"}",
   OKR, .at = "a", .rt = "r", .exp = EXP(60), .extra = "{\"id_token\":\"eyJ.x.y\"}"},
  {"nested extras", 200, JSON,
   "{\"access_token\":\"a\",\"nested\":{\"k\":[1,2]},\"n\":null,\"b\":true,"
   "\"u\":\"\\u00e9\"}",
   OKR, .at = "a", .extra = "{\"nested\":{\"k\":[1,2]},\"n\":null,\"b\":true,\"u\":\"\xc3\xa9\"}"},
  {"refresh token absent", 200, JSON, "{\"access_token\":\"a\"}", OKR, .at = "a"},
  {"refresh token empty = absent", 200, JSON, "{\"access_token\":\"a\",\"refresh_token\":\"\"}",
   OKR, .at = "a"},
  {"refresh token wrong type = absent", 200, JSON, "{\"access_token\":\"a\",\"refresh_token\":42}",
   OKR, .at = "a"},
  {"scope array", 200, JSON, "{\"access_token\":\"a\",\"scope\":[\"a\",\"b c\",7,\"\"]}", OKR,
   .at = "a", .scopes = "a|b|c"},
  {"scope commas and spaces", 200, JSON, "{\"access_token\":\"a\",\"scope\":\" a, b,,c \"}", OKR,
   .at = "a", .scopes = "a|b|c"},
  {"scope empty string", 200, JSON, "{\"access_token\":\"a\",\"scope\":\"\"}", OKR, .at = "a",
   .scopes = ""},
  {"scope number ignored", 200, JSON, "{\"access_token\":\"a\",\"scope\":5}", OKR, .at = "a"},
  {"error null is no error", 200, JSON, "{\"access_token\":\"a\",\"error\":null}", OKR, .at = "a"},
  {"error false is no error", 200, JSON, "{\"access_token\":\"a\",\"error\":false}", OKR,
   .at = "a"},
  {"error empty is no error", 200, JSON, "{\"access_token\":\"a\",\"error\":\"\"}", OKR, .at = "a"},
  {"201 is a success too", 201, JSON, "{\"access_token\":\"a\"}", OKR, .at = "a"},

  /* ---- classification rows ---- */
  {"invalid_grant", 400, JSON,
   "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been "
   "expired or revoked.\"}",
   .outcome = TOKEN_REAUTH, .error = "invalid_grant", .desc = "Token has been expired or revoked.",
   .provider = true},
  {"INVALID_GRANT any case", 400, JSON, "{\"error\":\"INVALID_GRANT\"}", .outcome = TOKEN_REAUTH,
   .error = "INVALID_GRANT", .provider = true},
  {"github 200 bad_verification_code", 200, FORM,
   "error=bad_verification_code&error_description=The+code+passed+is+"
   "incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com",
   .outcome = TOKEN_REAUTH, .error = "bad_verification_code",
   .desc = "The code passed is incorrect or expired.", .provider = true},
  {"github 200 bad_refresh_token", 200, JSON, "{\"error\":\"bad_refresh_token\"}",
   .outcome = TOKEN_REAUTH, .error = "bad_refresh_token", .provider = true},
  {"invalid_token", 400, JSON, "{\"error\":\"invalid_token\"}", .outcome = TOKEN_REAUTH,
   .error = "invalid_token", .provider = true},
  {"access_denied", 400, JSON, "{\"error\":\"access_denied\"}", .outcome = TOKEN_REAUTH,
   .error = "access_denied", .provider = true},
  {"interaction_required", 400, JSON, "{\"error\":\"interaction_required\"}",
   .outcome = TOKEN_REAUTH, .error = "interaction_required", .provider = true},
  {"invalid_client 401", 401, JSON, "{\"error\":\"invalid_client\"}", .outcome = TOKEN_CONFIG,
   .error = "invalid_client", .provider = true},
  {"unauthorized_client", 400, JSON, "{\"error\":\"unauthorized_client\"}", .outcome = TOKEN_CONFIG,
   .error = "unauthorized_client", .provider = true},
  {"unsupported_grant_type", 400, JSON, "{\"error\":\"unsupported_grant_type\"}",
   .outcome = TOKEN_CONFIG, .error = "unsupported_grant_type", .provider = true},
  {"invalid_scope", 400, JSON, "{\"error\":\"invalid_scope\"}", .outcome = TOKEN_CONFIG,
   .error = "invalid_scope", .provider = true},
  {"invalid_request", 400, JSON,
   "{\"error\":\"invalid_request\",\"error_description\":\"Missing code\"}",
   .outcome = TOKEN_CONFIG, .error = "invalid_request", .desc = "Missing code", .provider = true},
  {"github incorrect_client_credentials", 200, JSON, "{\"error\":\"incorrect_client_credentials\"}",
   .outcome = TOKEN_CONFIG, .error = "incorrect_client_credentials", .provider = true},
  {"temporarily_unavailable", 400, JSON, "{\"error\":\"temporarily_unavailable\"}",
   .outcome = TOKEN_TRANSIENT, .error = "temporarily_unavailable", .provider = true},
  {"server_error on 400", 400, JSON, "{\"error\":\"server_error\"}", .outcome = TOKEN_TRANSIENT,
   .error = "server_error", .provider = true},
  {"slow_down", 400, JSON, "{\"error\":\"slow_down\"}", "5", .outcome = TOKEN_TRANSIENT,
   .error = "slow_down", .provider = true, .retry_ms = 5000},
  {"authorization_pending", 400, JSON, "{\"error\":\"authorization_pending\"}",
   .outcome = TOKEN_TRANSIENT, .error = "authorization_pending", .provider = true},
  {"unknown code on 400", 400, JSON, "{\"error\":\"foo_bar\"}", .outcome = TOKEN_CONFIG,
   .error = "foo_bar", .provider = true},
  {"unknown code on 200 with a token", 200, JSON, "{\"access_token\":\"a\",\"error\":\"weird\"}",
   .outcome = TOKEN_CONFIG, .error = "weird", .provider = true},
  {"known code beats a token on 200", 200, JSON,
   "{\"access_token\":\"a\",\"error\":\"invalid_grant\"}", .outcome = TOKEN_REAUTH,
   .error = "invalid_grant", .provider = true},
  {"503 with invalid_grant is transient", 503, JSON, "{\"error\":\"invalid_grant\"}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_grant", .provider = true},
  {"429 with invalid_client is transient", 429, JSON, "{\"error\":\"invalid_client\"}", "30",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_client", .provider = true, .retry_ms = 30000},
  {"5xx with a token is transient", 500, JSON, "{\"access_token\":\"a\"}",
   .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 500 with a body without an error code"},
  {"error object", 400, JSON, "{\"error\":{\"code\":400,\"message\":\"boom\"}}",
   .outcome = TOKEN_CONFIG, .error = "unknown_error", .desc = "boom", .provider = true},
  {"error number", 400, JSON, "{\"error\":3}", .outcome = TOKEN_CONFIG, .error = "unknown_error",
   .provider = true},
  {"error code sanitised", 400, JSON, "{\"error\":\"bad\\\"co de\\\\\\u00e9\"}",
   .outcome = TOKEN_CONFIG, .error = "bad_co de___", .provider = true},
  {"description control characters", 400, JSON,
   "{\"error\":\"invalid_grant\",\"error_description\":\"a\\nb\\tc\\u007f\"}",
   .outcome = TOKEN_REAUTH, .error = "invalid_grant", .desc = "a b c ", .provider = true},
  {"description wrong type", 400, JSON, "{\"error\":\"invalid_grant\",\"error_description\":[1]}",
   .outcome = TOKEN_REAUTH, .error = "invalid_grant", .provider = true},

  /* ---- bodies without an error code ---- */
  {"empty 400", 400, NULL, "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 400 with an empty body"},
  {"empty 401", 401, NULL, "", .outcome = TOKEN_CONFIG, .error = "http_error",
   .desc = "HTTP 401 with an empty body"},
  {"empty 403", 403, NULL, NULL, .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 403 with an empty body"},
  {"blank 500", 500, "text/plain", " \r\n", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 500 with an empty body"},
  {"html 502", 502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 502 with an HTML body"},
  {"html 400 declared as a form", 400, FORM, "<html>Bad Request</html>", .outcome = TOKEN_TRANSIENT,
   .error = "http_error", .desc = "HTTP 400 with an HTML body"},
  {"html 404", 404, "text/html", "<html>Not Found</html>", .outcome = TOKEN_CONFIG,
   .error = "http_error", .desc = "HTTP 404 with an HTML body"},
  {"405", 405, NULL, "", .outcome = TOKEN_CONFIG, .error = "http_error",
   .desc = "HTTP 405 with an empty body"},
  {"302 redirect", 302, NULL, "", .outcome = TOKEN_CONFIG, .error = "http_error",
   .desc = "HTTP 302 with an empty body"},
  {"408", 408, NULL, "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 408 with an empty body"},
  {"425", 425, NULL, "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 425 with an empty body"},
  {"1xx", 101, NULL, "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 101 with an empty body"},
  {"out of range status", 600, NULL, "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 600 with an empty body"},
  {"400 json without error", 400, JSON, "{\"message\":\"nope\"}", .outcome = TOKEN_TRANSIENT,
   .error = "http_error", .desc = "HTTP 400 with a body without an error code"},
  {"401 json without error", 401, JSON, "{}", .outcome = TOKEN_CONFIG, .error = "http_error",
   .desc = "HTTP 401 with a body without an error code"},
  {"200 empty", 200, JSON, "", .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "HTTP 200 with an empty body"},
  {"200 html", 200, "text/html", "<!doctype html><p>login</p>", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "HTTP 200 with an HTML body"},
  {"200 garbage", 200, "application/octet-stream", "\x01\xff garbage", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 truncated json", 200, JSON, "{\"access_token\":\"a\"", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 json array", 200, JSON, "[{\"access_token\":\"a\"}]", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 json string", 200, JSON, "\"access_token\"", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 json trailing garbage", 200, JSON, "{\"access_token\":\"a\"} x", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 json duplicate keys", 200, JSON, "{\"access_token\":\"a\",\"access_token\":\"b\"}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 form duplicate keys", 200, FORM, "access_token=a&access_token=b",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 form of invalid utf-8 only", 200, FORM, "access_token=%FF", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 form bad escape", 200, FORM, "access_token=%zz", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response",
   .desc = "HTTP 200 with a body that is neither a JSON object nor a form"},
  {"200 without access_token", 200, JSON, "{\"token_type\":\"bearer\"}", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "HTTP 200 without access_token"},
  {"200 access_token empty", 200, JSON, "{\"access_token\":\"\"}", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "HTTP 200 without access_token"},
  {"200 access_token number", 200, JSON, "{\"access_token\":12345}", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "HTTP 200 without access_token"},
  {"200 access_token with newline", 200, JSON, "{\"access_token\":\"a\\r\\nX-Evil: 1\"}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "access_token has characters outside %x20-7E"},
  {"200 access_token non-ascii", 200, JSON, "{\"access_token\":\"\xc3\xa9\"}",
   .outcome = TOKEN_TRANSIENT, .error = "invalid_response",
   .desc = "access_token has characters outside %x20-7E"},
  {"200 refresh_token with control", 200, JSON,
   "{\"access_token\":\"a\",\"refresh_token\":\"r\\u0001\"}", .outcome = TOKEN_TRANSIENT,
   .error = "invalid_response", .desc = "refresh_token has characters outside %x20-7E"},

  /* ---- Retry-After ---- */
  {"retry-after seconds", 503, NULL, "", "120", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body", .retry_ms = 120000},
  {"retry-after padded", 503, NULL, "", " 30\t", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body", .retry_ms = 30000},
  {"retry-after zero", 503, NULL, "", "0", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body"},
  {"retry-after imf-fixdate", 503, NULL, "", "Tue, 14 Nov 2023 22:14:50 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body",
   .retry_ms = 90000},
  {"retry-after rfc850", 429, NULL, "", "Tuesday, 14-Nov-23 22:14:50 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 429 with an empty body",
   .retry_ms = 90000},
  {"retry-after asctime", 429, NULL, "", "Tue Nov 14 22:14:50 2023", .outcome = TOKEN_TRANSIENT,
   .error = "http_error", .desc = "HTTP 429 with an empty body", .retry_ms = 90000},
  {"retry-after asctime padded day", 429, NULL, "", "Wed Dec  6 22:13:20 2023",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 429 with an empty body",
   .retry_ms = WEEK_MS}, /* capped */
  {"retry-after date in the past", 503, NULL, "", "Sun, 06 Nov 1994 08:49:37 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body"},
  {"retry-after date far ahead is capped", 503, NULL, "", "Fri, 01 Jan 2100 00:00:00 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body",
   .retry_ms = WEEK_MS},
  {"retry-after huge seconds capped", 503, NULL, "", "99999999999999999999999",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body",
   .retry_ms = WEEK_MS},
  {"retry-after garbage", 503, NULL, "", "soon", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body"},
  {"retry-after negative", 503, NULL, "", "-5", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body"},
  {"retry-after fractional", 503, NULL, "", "1.5", .outcome = TOKEN_TRANSIENT,
   .error = "http_error", .desc = "HTTP 503 with an empty body"},
  {"retry-after empty", 503, NULL, "", "", .outcome = TOKEN_TRANSIENT, .error = "http_error",
   .desc = "HTTP 503 with an empty body"},
  {"retry-after bad month", 503, NULL, "", "Tue, 14 Foo 2023 22:14:50 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body"},
  {"retry-after bad hour", 503, NULL, "", "Tue, 14 Nov 2023 25:14:50 GMT",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body"},
  {"retry-after trailing junk", 503, NULL, "", "Tue, 14 Nov 2023 22:14:50 GMT+1",
   .outcome = TOKEN_TRANSIENT, .error = "http_error", .desc = "HTTP 503 with an empty body"},
  {"retry-after on a success", 200, JSON, "{\"access_token\":\"a\"}", "10", OKR, .at = "a",
   .retry_ms = 10000},
};

static void join_scopes(const token_result_t *r, char *buf, size_t cap)
{
  buf[0] = '\0';
  for (size_t i = 0; i < r->scopes.n; i++) {
    if (i)
      strncat(buf, "|", cap - strlen(buf) - 1);
    strncat(buf, r->scopes.items[i], cap - strlen(buf) - 1);
  }
}

static void expect_str(const char *row, const char *field, const char *got, const char *want)
{
  if (want == NULL && got == NULL)
    return;
  if (want == NULL || got == NULL || strcmp(want, got) != 0) {
    /* Fixture tokens are not secrets, so printing them is fine here. */
    print_error("row \"%s\": %s = %s%s%s, want %s%s%s\n", row, field, got ? "\"" : "",
                got ? got : "NULL", got ? "\"" : "", want ? "\"" : "", want ? want : "NULL",
                want ? "\"" : "");
    fail();
  }
}

static void expect_int(const char *row, const char *field, int64_t got, int64_t want)
{
  if (got != want) {
    print_error("row \"%s\": %s = %lld, want %lld\n", row, field, (long long)got, (long long)want);
    fail();
  }
}

static void test_table(void **state)
{
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    const row_t *w = &rows[i];
    token_input_t in = {
      .status = w->status,
      .content_type = w->ct,
      .body = w->body,
      .body_len = w->body ? strlen(w->body) : 0,
      .retry_after = w->retry_after,
      .now_ms = NOW,
      .default_expires_in = w->default_exp,
      .token_member = w->member,
    };
    token_result_t r;
    token_outcome_t o = token_parse(&in, &r);
    expect_str(w->name, "outcome", token_outcome_name(o), token_outcome_name(w->outcome));
    expect_int(w->name, "result outcome", r.outcome, o);
    expect_int(w->name, "http_status", r.http_status, w->status);
    expect_str(w->name, "access_token", r.access_token, w->at);
    expect_str(w->name, "refresh_token", r.refresh_token, w->rt);
    expect_str(w->name, "token_type", r.token_type, w->type);
    expect_int(w->name, "expires_at", r.expires_at, w->exp);
    expect_int(w->name, "refresh_token_expires_at", r.refresh_token_expires_at, w->rt_exp);
    char sc[256];
    join_scopes(&r, sc, sizeof sc);
    expect_str(w->name, "scopes", r.has_scope ? sc : NULL, w->scopes);
    expect_str(w->name, "extra", r.extra_json, w->extra);
    expect_str(w->name, "error", r.error, w->error);
    expect_str(w->name, "error_description", r.error_description, w->desc);
    expect_int(w->name, "error_from_provider", r.error_from_provider, w->provider);
    expect_int(w->name, "retry_after_ms", r.retry_after_ms, w->retry_ms);
    token_result_free(&r);
    assert_null(r.access_token);
    assert_int_equal(r.scopes.n, 0);
  }
}

static token_outcome_t parse_text(const char *ct, const char *body, size_t len, token_result_t *r)
{
  token_input_t in = {
    .status = 200,
    .content_type = ct,
    .body = body,
    .body_len = len,
    .now_ms = NOW,
  };
  return token_parse(&in, r);
}

static void test_token_lengths(void **state)
{
  (void)state;
  token_result_t r;
  buf_t b = BUF_INIT;
  char *tok = xmalloc(TOKEN_MAX_LEN + 2);
  memset(tok, 'x', TOKEN_MAX_LEN + 1);

  /* Exactly TOKEN_MAX_LEN bytes is fine, for both tokens. */
  tok[TOKEN_MAX_LEN] = '\0';
  buf_printf(&b, "{\"access_token\":\"%s\",\"refresh_token\":\"%s\"}", tok, tok);
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_OK);
  assert_int_equal(strlen(r.access_token), TOKEN_MAX_LEN);
  assert_int_equal(strlen(r.refresh_token), TOKEN_MAX_LEN);
  token_result_free(&r);

  /* One more is not: a malformed, transient answer. */
  tok[TOKEN_MAX_LEN] = 'x';
  tok[TOKEN_MAX_LEN + 1] = '\0';
  buf_reset(&b);
  buf_printf(&b, "{\"access_token\":\"%s\"}", tok);
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_TRANSIENT);
  assert_string_equal(r.error, "invalid_response");
  assert_string_equal(r.error_description, "access_token longer than 16384 bytes");
  assert_null(r.access_token);
  token_result_free(&r);

  buf_reset(&b);
  buf_printf(&b, "access_token=a&refresh_token=%s", tok);
  assert_int_equal(parse_text(FORM, b.data, b.len, &r), TOKEN_TRANSIENT);
  assert_string_equal(r.error_description, "refresh_token longer than 16384 bytes");
  token_result_free(&r);

  /* Long error codes and descriptions are cut. */
  buf_reset(&b);
  buf_printf(&b, "{\"error\":\"%s\",\"error_description\":\"%s\"}", tok, tok);
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_CONFIG);
  assert_int_equal(strlen(r.error), TOKEN_ERROR_MAX);
  assert_int_equal(strlen(r.error_description), TOKEN_DESC_MAX);
  token_result_free(&r);

  /* A description is cut at a UTF-8 character boundary: 'a' then 300
   * two-byte characters puts the 512-byte cut inside a character. */
  buf_reset(&b);
  buf_puts(&b, "{\"error\":\"invalid_grant\",\"error_description\":\"a");
  for (int i = 0; i < 300; i++)
    buf_puts(&b, "\xc3\xa9");
  buf_puts(&b, "\"}");
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_REAUTH);
  assert_int_equal(strlen(r.error_description), 511);
  assert_int_equal((unsigned char)r.error_description[510], 0xa9);
  token_result_free(&r);

  /* A huge scope string is ignored rather than split into pieces. */
  buf_reset(&b);
  buf_printf(&b, "{\"access_token\":\"a\",\"scope\":\"%s\"}", tok);
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_OK);
  assert_false(r.has_scope);
  token_result_free(&r);

  /* At most 1024 scopes are kept. */
  buf_reset(&b);
  buf_puts(&b, "{\"access_token\":\"a\",\"scope\":\"");
  for (int i = 0; i < 2000; i++)
    buf_puts(&b, "s ");
  buf_puts(&b, "\"}");
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_OK);
  assert_true(r.has_scope);
  assert_int_equal(r.scopes.n, 1024);
  token_result_free(&r);

  free(tok);
  buf_free(&b);
}

static void test_extra_bounded(void **state)
{
  (void)state;
  token_result_t r;
  buf_t b = BUF_INIT;
  /* A member too big for extra is dropped; later small ones are kept. */
  buf_puts(&b, "{\"access_token\":\"a\",\"instance_url\":\"https://x\","
               "\"huge\":\"");
  for (int i = 0; i < TOKEN_EXTRA_MAX; i++)
    buf_putc(&b, 'h');
  buf_puts(&b, "\",\"realmId\":\"123\"}");
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_OK);
  assert_string_equal(r.extra_json, "{\"instance_url\":\"https://x\",\"realmId\":\"123\"}");
  token_result_free(&r);

  /* Many members: extra stays within the bound. */
  buf_reset(&b);
  buf_puts(&b, "{\"access_token\":\"a\"");
  for (int i = 0; i < 20000; i++)
    buf_printf(&b, ",\"k%d\":\"value-%d\"", i, i);
  buf_puts(&b, "}");
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_OK);
  assert_non_null(r.extra_json);
  assert_true(strlen(r.extra_json) <= TOKEN_EXTRA_MAX);
  assert_true(strlen(r.extra_json) > TOKEN_EXTRA_MAX - 32);
  assert_int_equal(r.extra_json[strlen(r.extra_json) - 1], '}');
  token_result_free(&r);
  buf_free(&b);
}

static void test_body_not_terminated(void **state)
{
  (void)state;
  token_result_t r;
  /* body_len governs, not a NUL: the bytes after it are never read. */
  const char text[] = "{\"access_token\":\"abc\"}GARBAGE";
  assert_int_equal(parse_text(JSON, text, strlen(text) - 7, &r), TOKEN_OK);
  assert_string_equal(r.access_token, "abc");
  token_result_free(&r);
  /* Embedded NUL bytes make a body unparseable. */
  const char nul[] = "{\"access_token\":\"a\0b\"}";
  assert_int_equal(parse_text(JSON, nul, sizeof nul - 1, &r), TOKEN_TRANSIENT);
  token_result_free(&r);
  const char fnul[] = "access_token=a\0b";
  assert_int_equal(parse_text(NULL, fnul, sizeof fnul - 1, &r), TOKEN_TRANSIENT);
  token_result_free(&r);
  /* NULL body with a length of 0. */
  assert_int_equal(parse_text(NULL, NULL, 0, &r), TOKEN_TRANSIENT);
  assert_string_equal(r.error_description, "HTTP 200 with an empty body");
  token_result_free(&r);
  /* Deep nesting is rejected by jansson, not a crash. */
  buf_t b = BUF_INIT;
  buf_puts(&b, "{\"access_token\":\"a\",\"x\":");
  for (int i = 0; i < 5000; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 5000; i++)
    buf_putc(&b, ']');
  buf_putc(&b, '}');
  assert_int_equal(parse_text(JSON, b.data, b.len, &r), TOKEN_TRANSIENT);
  token_result_free(&r);
  buf_free(&b);
}

static void test_ownership(void **state)
{
  (void)state;
  token_result_t r;
  const char *body = "{\"access_token\":\"a\",\"refresh_token\":\"r\","
                     "\"scope\":\"x y\",\"id_token\":\"i\"}";
  assert_int_equal(parse_text(JSON, body, strlen(body), &r), TOKEN_OK);
  /* A caller may move fields out and free the rest. */
  char *at = r.access_token;
  strlist_t sc = r.scopes;
  r.access_token = NULL;
  memset(&r.scopes, 0, sizeof r.scopes);
  token_result_free(&r);
  token_result_free(&r); /* idempotent */
  token_result_free(NULL);
  assert_string_equal(at, "a");
  assert_int_equal(sc.n, 2);
  free_secret(at);
  for (size_t i = 0; i < sc.n; i++)
    free(sc.items[i]);
  free(sc.items);
}

static void test_revocation(void **state)
{
  (void)state;
  static const struct {
    int status;
    const char *body, *retry;
    token_outcome_t o;
    const char *error;
    int64_t retry_ms;
  } rv[] = {
    {200, "", NULL, TOKEN_OK, NULL, 0},
    {200, "{\"error\":\"invalid_token\"}", NULL, TOKEN_OK, NULL, 0},
    {204, NULL, NULL, TOKEN_OK, NULL, 0},
    {503, "", "60", TOKEN_TRANSIENT, "http_error", 60000},
    {400, "{\"error\":\"unsupported_token_type\"}", NULL, TOKEN_CONFIG, "unsupported_token_type",
     0},
    {401, "{\"error\":\"invalid_client\"}", NULL, TOKEN_CONFIG, "invalid_client", 0},
    {404, "", NULL, TOKEN_CONFIG, "http_error", 0},
  };
  for (size_t i = 0; i < ARRAY_SIZE(rv); i++) {
    token_input_t in = {
      .status = rv[i].status,
      .content_type = JSON,
      .body = rv[i].body,
      .body_len = rv[i].body ? strlen(rv[i].body) : 0,
      .retry_after = rv[i].retry,
      .now_ms = NOW,
    };
    token_result_t r;
    assert_int_equal(token_parse_revocation(&in, &r), rv[i].o);
    assert_int_equal(r.outcome, rv[i].o);
    assert_int_equal(r.http_status, rv[i].status);
    assert_null(r.access_token);
    assert_null(r.token_type);
    expect_str("revocation", "error", r.error, rv[i].error);
    assert_int_equal(r.retry_after_ms, rv[i].retry_ms);
    token_result_free(&r);
  }
}

static void test_outcome_for_error(void **state)
{
  (void)state;
  assert_int_equal(token_outcome_for_error(0), TOKEN_OK);
  const int config[] = {
    GRANTD_ETLS_UNTRUSTED, GRANTD_ETLS_HOSTNAME, GRANTD_ETLS_EXPIRED, GRANTD_EINSECURE_URL,
    GRANTD_EBAD_URL,       GRANTD_ECONFIG,       GRANTD_EINVALID,
  };
  for (size_t i = 0; i < ARRAY_SIZE(config); i++)
    assert_int_equal(token_outcome_for_error(config[i]), TOKEN_CONFIG);
  const int transient[] = {
    GRANTD_ETLS_HANDSHAKE, GRANTD_ETLS_CLOSED,      GRANTD_ETLS_PROTOCOL,    GRANTD_EDNS,
    GRANTD_ECONNECT,       GRANTD_ECONNECT_TIMEOUT, GRANTD_ETIMEOUT,         GRANTD_ECONN_CLOSED,
    GRANTD_EHTTP_PARSE,    GRANTD_ETOO_LARGE,       GRANTD_ECANCELLED,       GRANTD_ESHUTDOWN,
    GRANTD_EOVERLOADED,    -104 /* ECONNRESET */,   -111 /* ECONNREFUSED */, -110 /* ETIMEDOUT */,
  };
  for (size_t i = 0; i < ARRAY_SIZE(transient); i++)
    assert_int_equal(token_outcome_for_error(transient[i]), TOKEN_TRANSIENT);
}

static void test_outcome_names(void **state)
{
  (void)state;
  assert_string_equal(token_outcome_name(TOKEN_OK), "ok");
  assert_string_equal(token_outcome_name(TOKEN_TRANSIENT), "transient");
  assert_string_equal(token_outcome_name(TOKEN_REAUTH), "reauth");
  assert_string_equal(token_outcome_name(TOKEN_CONFIG), "config");
  assert_string_equal(token_outcome_name((token_outcome_t)TOKEN_OUTCOME_COUNT), "unknown");
  assert_string_equal(token_outcome_name((token_outcome_t)-1), "unknown");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table),
    cmocka_unit_test(test_token_lengths),
    cmocka_unit_test(test_extra_bounded),
    cmocka_unit_test(test_body_not_terminated),
    cmocka_unit_test(test_ownership),
    cmocka_unit_test(test_revocation),
    cmocka_unit_test(test_outcome_for_error),
    cmocka_unit_test(test_outcome_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
