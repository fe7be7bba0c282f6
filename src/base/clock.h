/*
 * clock.h - wall and monotonic time in integers, a fake clock for tests, and
 * RFC 3339 (UTC) formatting and parsing.
 *
 * All times are int64 milliseconds (wall: since the Unix epoch) or
 * microseconds. The fake clock is process-global and meant for tests and
 * benchmarks on one thread: while it is set, clock_now_ms() returns the fake
 * wall time and the monotonic functions return a fake monotonic time that
 * advances by the same amounts (clock_advance_fake()).
 */
#ifndef GRANTD_BASE_CLOCK_H
#define GRANTD_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time, ms since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t clock_now_ms(void);
/* Monotonic time in ms / us (CLOCK_MONOTONIC); only differences matter. */
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);

/* Switches to the fake clock with the given wall time; the fake monotonic
 * clock (re)starts at 1,000,000,000 ms. */
void clock_set_fake(int64_t wall_ms);
/* Moves both fake clocks forward by ms (>= 0). No effect when not faked. */
void clock_advance_fake(int64_t ms);
/* Returns to the real clocks. */
void clock_clear_fake(void);

/* Formats ms as "YYYY-MM-DDTHH:MM:SSZ", or with ".mmm" before the 'Z' when
 * the milliseconds are non-zero. Years outside 0000..9999 are clamped to
 * the ends of that range. Returns the length written (20 or 24). */
int clock_format_rfc3339(int64_t ms, char out[32]);
/* The same, always with milliseconds (log timestamps). Returns 24. */
int clock_format_rfc3339_ms(int64_t ms, char out[32]);

/* Parses an RFC 3339 date-time of exactly n bytes: "T" or "t" (or a space)
 * between date and time, optional fractional seconds (any number of digits,
 * truncated to ms), then "Z"/"z" or a "+hh:mm"/"-hh:mm" offset. A leap
 * second (":60") is accepted and lands on the following second.
 * @param out ms since the epoch (UTC) on success.
 * @return 0, or GRANTD_EINVALID. */
int clock_parse_rfc3339(const char *s, size_t n, int64_t *out);

#endif
