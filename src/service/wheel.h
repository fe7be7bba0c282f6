/*
 * wheel.h - a hierarchical timing wheel: the one scheduler behind every
 * proactive refresh (DESIGN.md "One loop"; STYLE.md 14 and 20).
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
 * Ordering contract of wheel_run(): entries fire in deadline order, entries
 * with equal deadlines in the order they were (last) linked, never before
 * their deadline, at most `max` per call; an entry linked while firing
 * (even with a deadline in the past) waits for the next call.
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
  wheel_link_t link;      /* first member: the list code casts */
  struct wheel *wheel;    /* NULL while unlinked */
  uint64_t at;            /* deadline, ms */
} wheel_entry_t;

/* The wheel (~11 KB, fixed at init). Fields are private. */
typedef struct wheel {
  uint64_t cursor;        /* time the wheel has advanced to */
  size_t count;           /* linked entries */
  wheel_link_t ready;     /* due (at <= cursor), sorted by (at, link order) */
  wheel_link_t incoming;  /* due but not sorted yet (see wheel.c) */
  wheel_link_t firing;    /* the batch wheel_run() is firing */
  uint64_t occupied[WHEEL_LEVELS];   /* bit s set <=> slot s is non-empty */
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
 * FIFO order of equal deadlines. `at` may be in the past (the entry is due
 * at the next wheel_run) or anywhere up to UINT64_MAX. O(1). */
void wheel_link(wheel_t *w, wheel_entry_t *e, uint64_t at);

/* Unschedules e; no-op when it is not linked. O(1). Safe inside a fire
 * callback, also on entries that are due in the same run (they then do
 * not fire). */
void wheel_unlink(wheel_entry_t *e);

/* 1 when e is linked to a wheel, else 0. */
int wheel_is_linked(const wheel_entry_t *e);

/* Deadline of a linked entry (meaningless when unlinked). */
uint64_t wheel_entry_at(const wheel_entry_t *e);

/* Number of linked entries. */
size_t wheel_count(const wheel_t *w);

/* Earliest deadline among linked entries, or UINT64_MAX when there are
 * none; a value <= now means wheel_run() has work. Exact (never early, never
 * late). Not const: it sorts entries linked with past deadlines into the
 * due list and, when the earliest entry sits in an outer level, cascades
 * that slot (work wheel_run would do anyway), so it is amortised O(1) per
 * entry and level. May be called from a fire callback. */
uint64_t wheel_next_wake(wheel_t *w);

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
