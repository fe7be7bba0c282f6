/* Unit tests for base/file.c: only regular files of bounded size are read,
 * a FIFO is refused without blocking, and the async read runs on the
 * thread pool and calls back once on the loop. */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"

static void write_file(const char *path, size_t n, char c)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < n; i++)
    fputc(c, f);
  fclose(f);
}

static void test_rules(void **state)
{
  (void)state;
  const char *dir = test_mkdtemp();
  const char *ok = test_path(dir, "ok.pem"), *big = test_path(dir, "big.pem");
  const char *fifo = test_path(dir, "fifo"), *missing = test_path(dir, "missing");
  write_file(ok, 100, 'a');
  write_file(big, 1001, 'b');
  assert_int_equal(mkfifo(fifo, 0600), 0);
  buf_t b = BUF_INIT;
  int e = -1;
  assert_int_equal(file_read(ok, 1000, &b, &e), 0);
  assert_int_equal(b.len, 100);
  assert_int_equal(e, 0);
  assert_int_equal(b.data[100], '\0');
  /* Exactly at the limit is fine, one byte over is not; out is kept. */
  assert_int_equal(file_read(ok, 100, &b, NULL), 0);
  assert_int_equal(b.len, 200);
  assert_int_equal(file_read(big, 1000, &b, NULL), GRANTD_EFILE_TOO_LARGE);
  assert_int_equal(b.len, 200);
  /* Not regular: a FIFO (without blocking, nobody writes to it), a device
   * that never ends, a directory. */
  assert_int_equal(file_read(fifo, 1000, &b, NULL), GRANTD_EFILE_NOT_REGULAR);
  assert_int_equal(file_read("/dev/zero", 1000, &b, NULL), GRANTD_EFILE_NOT_REGULAR);
  assert_int_equal(file_read(dir, 1000, &b, NULL), GRANTD_EFILE_NOT_REGULAR);
  assert_int_equal(file_read(missing, 1000, &b, &e), GRANTD_EFILE_UNREADABLE);
  assert_int_equal(e, ENOENT);
  assert_int_equal(b.len, 200);
  buf_free(&b);
  test_rmdir(dir);
}

typedef struct {
  int calls, err;
  size_t len;
} res_t;

static void on_read(void *arg, int err, int sys_errno, buf_t *data)
{
  (void)sys_errno;
  res_t *r = arg;
  r->calls++;
  r->err = err;
  r->len = data->len;
}

static void test_async(void **state)
{
  (void)state;
  const char *dir = test_mkdtemp();
  const char *ok = test_path(dir, "ok.pem"), *fifo = test_path(dir, "fifo");
  write_file(ok, 5000, 'c');
  assert_int_equal(mkfifo(fifo, 0600), 0);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  res_t a = {0}, b = {0}, c = {0};
  assert_int_equal(file_read_async(&loop, ok, 1 << 20, on_read, &a), 0);
  assert_int_equal(file_read_async(&loop, fifo, 1 << 20, on_read, &b), 0);
  assert_int_equal(file_read_async(&loop, "/dev/zero", 1 << 20, on_read, &c), 0);
  assert_int_equal(a.calls + b.calls + c.calls, 0); /* never from inside the call */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.err, 0);
  assert_int_equal(a.len, 5000);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.err, GRANTD_EFILE_NOT_REGULAR);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.err, GRANTD_EFILE_NOT_REGULAR);
  assert_int_equal(uv_loop_close(&loop), 0);
  test_rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rules),
    cmocka_unit_test(test_async),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
