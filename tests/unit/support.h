/*
 * Helpers shared by the cmocka unit tests: a fresh temporary directory per
 * test under $GRANTD_TEST_TMP (or /tmp), removed again by test_rmdir().
 */
#ifndef GRANTD_TEST_SUPPORT_H
#define GRANTD_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Creates a new empty directory and returns its path (static storage,
 * overwritten by the next call). Aborts the test on failure. */
const char *test_mkdtemp(void);

/* Removes a directory tree created by test_mkdtemp(). */
void test_rmdir(const char *path);

#endif
