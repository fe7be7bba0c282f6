/*
 * wheel.h - a hierarchical timing wheel: the one scheduler behind every
 * proactive refresh. One uv_timer serves the whole wheel, and entries are
 * embedded in their owners, so a million scheduled connections cost no
 * allocation and no per-entry libuv handle.
 *
 * A pure data structure: no clock, no allocation, no I/O. The caller passes
 * `now` (uint64 ms on whatever clock it likes, monotonic in practice) to
 * every call that needs it, and arms ONE uv_timer at wheel_next_wake().
 *
 * Entries are intrusive: a wheel_entry_t (32 bytes) lives inside the
 * owner's struct, which gets itself back with container_of() when the entry
 * fires. No callback is stored per entry; wheel_run() takes one `fire`
 * callback for all of them. Link, re-link and unlink are O(1).
 *
 * The wheel's time (its cursor) is the latest `now` given to wheel_init()
 * or wheel_run(). A deadline at or before it is clamped to it when linked:
 * the entry is due at once and reads back that deadline, as a uv_timer
 * started with a zero timeout does.
 *
 * Ordering contract of wheel_run(): entries fire in (clamped) deadline
 * order, entries with equal deadlines in the order they were (last) linked,
 * never before their deadline, at most `max` per call; an entry linked
 * while firing (even with a deadline in the past) waits for the next call.
 *
 * Cost contract: every operation is O(1) amortised whatever the order of
 * links, unlinks, wake-ups and runs; from link to fire an entry costs at
 * most WHEEL_LEVELS + 2 list steps (counted by wheel_steps()).
 *
 * Layout and trade-offs are described at the top of wheel.c.
 */
#ifndef GRANTD_SERVICE_WHEEL_H
#define GRANTD_SERVICE_WHEEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 64 slots per level, 6 bits of the deadline each; 11 levels cover all 64
 * bits, so any uint64 deadline has a slot and nothing overflows. */
#define WHEEL_BITS 6
#define WHEEL_SLOTS (1u << WHEEL_BITS)
#define WHEEL_LEVELS 11

/* Circular doubly-linked list node (slot heads are bare nodes). */
typedef struct wheel_link {
  struct wheel_link *next;
  struct wheel_link *prev;
} wheel_link_t;

struct wheel;

/* An entry, embedded in its owner. All fields are private; read the
 * deadline with wheel_entry_at(). A zeroed entry is unlinked (so is one
 * passed to wheel_entry_init()). An entry must be unlinked before its
 * memory is freed or moved. */
typedef struct wheel_entry {
  wheel_link_t link;   /* first member: the list code casts */
  struct wheel *wheel; /* NULL while unlinked */
  uint64_t at;         /* deadline, ms */
} wheel_entry_t;

/* The wheel (~11 KB, fixed at init). Fields are private. */
typedef struct wheel {
  uint64_t cursor;                 /* time the wheel has advanced to */
  size_t count;                    /* linked entries */
  uint64_t steps;                  /* list steps taken so far (see wheel_steps) */
  wheel_link_t ready;              /* due (at <= cursor), sorted by (at, link order) */
  wheel_link_t firing;             /* the batch wheel_run() is firing */
  uint64_t occupied[WHEEL_LEVELS]; /* bit s set <=> slot s is non-empty */
  wheel_link_t slots[WHEEL_LEVELS][WHEEL_SLOTS];
} wheel_t;

/* Called by wheel_run() for each entry that fires. The entry is already
 * unlinked; the callback may link it again (or link, re-link and unlink
 * any other entry) but must not call wheel_run() on the same wheel. */
typedef void (*wheel_fire_cb)(void *arg, wheel_entry_t *e);

/* Initialises an empty wheel whose clock reads `now`. Deadlines before
 * `now` are accepted later too (they are simply due). */
void wheel_init(wheel_t *w, uint64_t now);

/* Marks an entry unlinked (same as zeroing it). */
void wheel_entry_init(wheel_entry_t *e);

/* Schedules e to fire at `at` (ms). A linked entry is moved (unlinked
 * first, also from another wheel); it then counts as linked now for the
 * FIFO order of equal deadlines. `at` may be at or before the wheel's time
 * (clamped to it: due at the next wheel_run, after every entry already
 * due) or anywhere up to UINT64_MAX. O(1). */
void wheel_link(wheel_t *w, wheel_entry_t *e, uint64_t at);

/* Unschedules e; no-op when it is not linked. O(1). Safe inside a fire
 * callback, also on entries that are due in the same run (they then do
 * not fire). */
void wheel_unlink(wheel_entry_t *e);

/* 1 when e is linked to a wheel, else 0. */
int wheel_is_linked(const wheel_entry_t *e);

/* Deadline of a linked entry, after clamping (see above); still readable
 * inside the fire callback. Meaningless for an entry never linked. */
uint64_t wheel_entry_at(const wheel_entry_t *e);

/* Number of linked entries. */
size_t wheel_count(const wheel_t *w);

/* List steps taken since wheel_init(): one per link, unlink, entry moved by
 * a cascade, entry taken for firing and slot visited. A measure of work
 * that does not depend on the machine, for tests that bound the cost per
 * operation. */
uint64_t wheel_steps(const wheel_t *w);

/* When wheel_run() next has work: UINT64_MAX when nothing is linked; else
 * never later than the earliest deadline. It is that deadline when the
 * earliest entry is due or in the wheel's current 64 ms block; otherwise it
 * may be the start of the outer slot holding it, where a wheel_run() only
 * cascades entries one level down and fires nothing (so at most
 * WHEEL_LEVELS - 1 such wake-ups precede a firing one). A value <= the
 * wheel's time means entries are due. O(WHEEL_LEVELS) bit tests, no list
 * work, changes nothing; may be called from a fire callback. */
uint64_t wheel_next_wake(const wheel_t *w);

/* Advances the wheel to `now` and fires due entries (deadline <= now) in
 * (deadline, link order) order, at most `max` of them (SIZE_MAX = no limit,
 * 0 = only advance). Entries left over stay due and fire first at the next
 * call; entries linked by a callback never fire in this call. `now` older
 * than a previous call's is harmless (nothing fires early).
 * @param fire called once per fired entry, from inside wheel_run.
 * @return the number of entries fired. */
size_t wheel_run(wheel_t *w, uint64_t now, size_t max, wheel_fire_cb fire, void *arg);

/* Checks every invariant (list links, placement of each entry, occupancy
 * bits, sortedness of the due list, count). O(entries + slots); for tests.
 * @param why if not NULL, receives a static description of the first
 *            broken invariant (or NULL).
 * @return 0 when consistent, -1 otherwise. */
int wheel_validate(const wheel_t *w, const char **why);

/* Writes a human-readable picture of the wheel (cursor, occupied slots and
 * their deadlines, due lists) to f; for tests and debugging. */
void wheel_dump(const wheel_t *w, FILE *f);

#endif
