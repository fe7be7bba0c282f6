/* Error names and messages generated from GRANTD_ERR_MAP; see err.h. */
#include "base/err.h"

#include <uv.h>

static const char *const own_names[] = {
#define X_(n, s, m) s,
  GRANTD_ERR_MAP(X_)
#undef X_
};

static const char *const own_msgs[] = {
#define X_(n, s, m) m,
  GRANTD_ERR_MAP(X_)
#undef X_
};

const char *err_name(int code)
{
  if (code == 0)
    return "ok";
  if (GRANTD_IS_OWN_ERR(code))
    return own_names[code - GRANTD_ERR_BASE];
  switch (code) {
  case UV_ECONNREFUSED: return "connection_refused";
  case UV_ECONNRESET: return "connection_reset";
  case UV_EPIPE: return "connection_reset";
  case UV_ETIMEDOUT: return "timeout";
  case UV_EOF: return "connection_closed";
  case UV_ENOMEM: return "out_of_memory";
  case UV_EAI_NONAME:
  case UV_EAI_AGAIN:
  case UV_EAI_FAIL:
  case UV_EAI_NODATA:
  case UV_EAI_ADDRFAMILY: return "dns_failure";
  default: return "network_error";
  }
}

const char *err_str(int code)
{
  if (code == 0)
    return "success";
  if (GRANTD_IS_OWN_ERR(code))
    return own_msgs[code - GRANTD_ERR_BASE];
  return uv_strerror(code);
}
