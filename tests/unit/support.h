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

/* dir + "/" + name in one of 8 rotating static buffers. */
const char *test_path(const char *dir, const char *name);

/* Runs a shell command (printf-style) from dir, output discarded; aborts
 * the test when it fails. Used to make certificates with the openssl CLI. */
void test_sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
