/* fuzz_callback.c - GET /oauth/callback?<input>: the callback query through
 * the whole request path (see fuzz_http.c). */
#define FUZZ_CALLBACK 1
#include "fuzz_http.c"
