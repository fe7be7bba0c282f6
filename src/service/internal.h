/*
 * internal.h - every internal header of the service at once, for unit
 * tests that look inside (index entries, ops, hooks). No file of the
 * service includes it: each includes the headers of the files below it
 * (README.md in this directory).
 */
#ifndef GRANTD_SERVICE_INTERNAL_H
#define GRANTD_SERVICE_INTERNAL_H

#include "service/answer.h"
#include "service/ctx.h"
#include "service/discovery.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/op.h"
#include "service/outcome.h"
#include "service/providers.h"
#include "service/refresh.h"
#include "service/revocation.h"
#include "service/schedule.h"
#include "service/state_sweep.h"
#include "service/treq.h"

#endif
