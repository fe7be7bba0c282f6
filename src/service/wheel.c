/*
 * wheel.c - hierarchical timing wheel; the contract is in wheel.h.
 *
 * Layout. 11 levels of 64 slots. Level l holds entries whose deadline first
 * differs from the cursor (the wheel's time: the latest `now` it was given)
 * in bits [6l, 6l+6), in the slot named by those six bits of the deadline;
 * so a level-0 slot holds exactly one deadline, a level-l slot a 64^l ms
 * range, and the 11 levels cover the whole uint64 range: an entry years
 * away needs no overflow list, it just cascades down at most 10 times.
 * Every entry with a given deadline is in the same slot (the placement is a
 * function of deadline and cursor only) and each slot list is in link
 * order, so equal deadlines stay FIFO across cascades without a sequence
 * number. One 64-bit occupancy word per level finds the next non-empty slot
 * with one count-trailing-zeros; unlink keeps the bits exact because an
 * entry's slot is recomputable from its deadline and the cursor (that is
 * what the per-entry wheel pointer buys, with O(1) counting).
 *
 * Due entries (deadline <= cursor) sit in `ready`, which is sorted by
 * construction and only ever appended to:
 * - advancing the cursor visits slots in time order; a level-0 slot is one
 *   deadline and is spliced whole, an outer slot is cascaded (its entries
 *   re-placed relative to the slot's start), so due entries arrive in
 *   (deadline, link order);
 * - an entry linked at or before the cursor is clamped to the cursor, which
 *   is at least every deadline already in `ready`, so it goes to the tail.
 * Nothing is ever inserted into the middle of a list and nothing is sorted.
 *
 * Costs (all counted in `steps`, which the tests bound):
 * - link, unlink: O(1), one list operation.
 * - wheel_next_wake: O(levels) bit tests, no list work. It never moves the
 *   cursor (that is what made the earlier design degrade: a cursor pushed
 *   past the caller's clock sent later links into a sorted insert). When the
 *   earliest entry sits in an outer slot its exact deadline is unknown
 *   without a scan, so it answers the slot's start: a wake-up that only
 *   cascades, at most one per level on the way down.
 * - wheel_run: O(1) per entry per level crossed (each cascade moves an entry
 *   at least one level down) plus one slot visit per non-empty slot, which
 *   moves at least one entry; firing is O(1) per entry.
 * So every entry costs at most WHEEL_LEVELS + 2 list steps from link to
 * fire, whatever the order of links, unlinks and wake-ups.
 *
 * Why this shape:
 * - 1 ms resolution, no rounding: an entry never fires early and never
 *   later than the caller's own timer latency. Coarser ticks (h2o rounds
 *   to the slot) would save cascades but refresh deadlines are spread by
 *   jitter anyway, so the cascade count (<= levels crossed) stays small.
 * - Fixed memory: 11 x 64 slot heads (16 B) + occupancy = ~11.4 KB per
 *   wheel, whatever the number of entries; 32 B per entry (two links, the
 *   wheel pointer, the deadline) against 152 B per uv_timer_t.
 * - Clamping past deadlines (as uv_timer_start does with a zero timeout)
 *   is what keeps `ready` append-only: ordering an arbitrary past deadline
 *   among a backlog of due entries would be a priority queue, not O(1).
 */
#include "service/wheel.h"

#include <inttypes.h>

static void list_init(wheel_link_t *h)
{
  h->next = h->prev = h;
}

static int list_empty(const wheel_link_t *h)
{
  return h->next == h;
}

static void list_insert_after(wheel_link_t *pos, wheel_link_t *n)
{
  n->prev = pos;
  n->next = pos->next;
  pos->next->prev = n;
  pos->next = n;
}

static void list_append(wheel_link_t *h, wheel_link_t *n)
{
  list_insert_after(h->prev, n);
}

static void list_remove(wheel_link_t *n)
{
  n->prev->next = n->next;
  n->next->prev = n->prev;
}

/* Moves every node of src to the tail of dst; src ends up empty. */
static void list_splice_tail(wheel_link_t *dst, wheel_link_t *src)
{
  if (list_empty(src))
    return;
  wheel_link_t *first = src->next, *last = src->prev;
  first->prev = dst->prev;
  dst->prev->next = first;
  last->next = dst;
  dst->prev = last;
  list_init(src);
}

/* The link is the entry's first member. */
static wheel_entry_t *entry_of(const wheel_link_t *l)
{
  return (wheel_entry_t *)l;
}

static unsigned level_of(uint64_t cursor, uint64_t at)
{
  /* at > cursor, so the XOR is non-zero. */
  return (unsigned)(63 - __builtin_clzll(at ^ cursor)) / WHEEL_BITS;
}

static unsigned slot_of(uint64_t at, unsigned level)
{
  return (unsigned)(at >> (level * WHEEL_BITS)) & (WHEEL_SLOTS - 1);
}

/* First millisecond of slot s at level l relative to the cursor. */
static uint64_t slot_start(uint64_t cursor, unsigned l, unsigned s)
{
  unsigned above = (l + 1) * WHEEL_BITS;
  uint64_t base = above >= 64 ? 0 : cursor & ~((UINT64_C(1) << above) - 1);
  return base | ((uint64_t)s << (l * WHEEL_BITS));
}

/* Puts e (at > cursor) in its slot. */
static void place(wheel_t *w, wheel_entry_t *e)
{
  unsigned l = level_of(w->cursor, e->at), s = slot_of(e->at, l);
  list_append(&w->slots[l][s], &e->link);
  w->occupied[l] |= UINT64_C(1) << s;
}

/* The earliest non-empty slot. Entries at level l share the cursor's digits
 * above l and have a larger digit at l, so any of them is earlier than any
 * entry at a higher level: the lowest occupied level wins. */
static int find_earliest(const wheel_t *w, unsigned *level, unsigned *slot)
{
  for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
    if (w->occupied[l]) {
      *level = l;
      *slot = (unsigned)__builtin_ctzll(w->occupied[l]);
      return 1;
    }
  }
  return 0;
}

void wheel_init(wheel_t *w, uint64_t now)
{
  w->cursor = now;
  w->count = 0;
  w->steps = 0;
  list_init(&w->ready);
  list_init(&w->firing);
  for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
    w->occupied[l] = 0;
    for (unsigned s = 0; s < WHEEL_SLOTS; s++)
      list_init(&w->slots[l][s]);
  }
}

void wheel_entry_init(wheel_entry_t *e)
{
  e->link.next = e->link.prev = NULL;
  e->wheel = NULL;
  e->at = 0;
}

void wheel_link(wheel_t *w, wheel_entry_t *e, uint64_t at)
{
  if (e->wheel)
    wheel_unlink(e);
  e->wheel = w;
  w->count++;
  w->steps++;
  if (at <= w->cursor) {
    /* Due: clamped to the cursor, which no deadline in `ready` exceeds. */
    e->at = w->cursor;
    list_append(&w->ready, &e->link);
  } else {
    e->at = at;
    place(w, e);
  }
}

void wheel_unlink(wheel_entry_t *e)
{
  wheel_t *w = e->wheel;
  if (!w)
    return;
  list_remove(&e->link);
  w->steps++;
  /* at > cursor <=> the entry is in a slot (due entries are <= cursor). */
  if (e->at > w->cursor) {
    unsigned l = level_of(w->cursor, e->at), s = slot_of(e->at, l);
    if (list_empty(&w->slots[l][s]))
      w->occupied[l] &= ~(UINT64_C(1) << s);
  }
  w->count--;
  e->wheel = NULL;
  e->link.next = e->link.prev = NULL;
}

int wheel_is_linked(const wheel_entry_t *e)
{
  return e->wheel != NULL;
}

uint64_t wheel_entry_at(const wheel_entry_t *e)
{
  return e->at;
}

size_t wheel_count(const wheel_t *w)
{
  return w->count;
}

uint64_t wheel_steps(const wheel_t *w)
{
  return w->steps;
}

/* Moves the cursor to now (> cursor). Slots are visited in time order while
 * their range starts at or before now; the cursor steps to each slot's
 * start, which never changes where the other entries belong. A level-0
 * slot holds one deadline (== its start): spliced whole onto `ready`. An
 * outer slot is cascaded: entries due at its start go to `ready` (slot
 * order = link order), the others to a lower level relative to the start,
 * where a later iteration of this loop meets them. So `ready` receives due
 * entries in (deadline, link order) and each entry moves at most once per
 * level. */
static void advance(wheel_t *w, uint64_t now)
{
  unsigned l, s;
  while (find_earliest(w, &l, &s)) {
    uint64_t start = slot_start(w->cursor, l, s);
    if (start > now)
      break;
    w->cursor = start;
    w->occupied[l] &= ~(UINT64_C(1) << s);
    wheel_link_t *head = &w->slots[l][s];
    w->steps++;
    if (l == 0) {
      list_splice_tail(&w->ready, head);
      continue;
    }
    wheel_link_t tmp;
    list_init(&tmp);
    list_splice_tail(&tmp, head);
    while (!list_empty(&tmp)) {
      wheel_entry_t *e = entry_of(tmp.next);
      list_remove(&e->link);
      w->steps++;
      if (e->at == start)
        list_append(&w->ready, &e->link);
      else
        place(w, e);
    }
  }
  w->cursor = now;
}

uint64_t wheel_next_wake(const wheel_t *w)
{
  /* Inside a fire callback the rest of the batch is still due, and it is
   * sorted like `ready`: both heads are candidates. */
  if (!list_empty(&w->firing) || !list_empty(&w->ready)) {
    uint64_t a = list_empty(&w->firing) ? UINT64_MAX : entry_of(w->firing.next)->at;
    uint64_t b = list_empty(&w->ready) ? UINT64_MAX : entry_of(w->ready.next)->at;
    return a < b ? a : b;
  }
  unsigned l, s;
  if (!find_earliest(w, &l, &s))
    return UINT64_MAX;
  if (l == 0)
    return entry_of(w->slots[0][s].next)->at; /* one deadline per slot */
  /* The minimum of an outer slot is unknown without a scan: wake at the
   * slot's start, where wheel_run cascades it (work it has to do anyway). */
  return slot_start(w->cursor, l, s);
}

size_t wheel_run(wheel_t *w, uint64_t now, size_t max, wheel_fire_cb fire, void *arg)
{
  if (now > w->cursor)
    advance(w, now);

  /* Take the batch out of `ready` before any callback runs, so whatever a
   * callback links (even into the past) lands in `ready` behind it or in a
   * slot, and waits for the next call. Batch entries stay linked: a
   * callback that unlinks or re-links one removes it from the batch. */
  size_t taken = 0;
  while (taken < max && !list_empty(&w->ready)) {
    wheel_link_t *p = w->ready.next;
    if (entry_of(p)->at > now)
      break; /* a clock older than the cursor: nothing fires early */
    list_remove(p);
    list_append(&w->firing, p);
    w->steps++;
    taken++;
  }
  size_t fired = 0;
  while (!list_empty(&w->firing)) {
    wheel_entry_t *e = entry_of(w->firing.next);
    wheel_unlink(e);
    fired++;
    fire(arg, e);
  }
  return fired;
}

/* Walks one list, checking links and membership; returns the number of
 * entries or -1. `what` tells the checks for this kind of list. */
enum { LIST_SLOT, LIST_READY, LIST_DUE };

static long check_list(const wheel_t *w, const wheel_link_t *head, int kind, unsigned l, unsigned s,
                       const char **why)
{
  long n = 0;
  uint64_t prev_at = 0;
  const wheel_link_t *p = head;
  do {
    if (!p->next || !p->prev || p->next->prev != p) {
      *why = "broken list links";
      return -1;
    }
    p = p->next;
    if (p == head)
      break;
    const wheel_entry_t *e = (const wheel_entry_t *)p;
    if (e->wheel != w) {
      *why = "entry's wheel pointer is wrong";
      return -1;
    }
    if (kind == LIST_SLOT) {
      if (e->at <= w->cursor) {
        *why = "slot entry is not in the future";
        return -1;
      }
      if (level_of(w->cursor, e->at) != l || slot_of(e->at, l) != s) {
        *why = "entry is in the wrong slot";
        return -1;
      }
    } else {
      if (e->at > w->cursor) {
        *why = "due-list entry is after the cursor";
        return -1;
      }
      if (kind == LIST_READY && n > 0 && e->at < prev_at) {
        *why = "ready list is not sorted";
        return -1;
      }
    }
    prev_at = e->at;
    if ((size_t)++n > w->count) {
      *why = "more entries than the count (or a cycle)";
      return -1;
    }
  } while (1);
  return n;
}

int wheel_validate(const wheel_t *w, const char **why)
{
  const char *dummy;
  if (!why)
    why = &dummy;
  *why = NULL;
  size_t total = 0;
  long n;
  if ((n = check_list(w, &w->ready, LIST_READY, 0, 0, why)) < 0)
    return -1;
  total += (size_t)n;
  if ((n = check_list(w, &w->firing, LIST_DUE, 0, 0, why)) < 0)
    return -1;
  total += (size_t)n;
  for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
    for (unsigned s = 0; s < WHEEL_SLOTS; s++) {
      if ((n = check_list(w, &w->slots[l][s], LIST_SLOT, l, s, why)) < 0)
        return -1;
      int bit = (int)((w->occupied[l] >> s) & 1);
      if (bit != (n > 0)) {
        *why = "occupancy bit disagrees with the slot";
        return -1;
      }
      total += (size_t)n;
    }
  }
  if (total != w->count) {
    *why = "count disagrees with the lists";
    return -1;
  }
  return 0;
}

static void dump_list(FILE *f, const char *name, const wheel_link_t *head)
{
  fprintf(f, "  %s:", name);
  for (const wheel_link_t *p = head->next; p != head; p = p->next)
    fprintf(f, " %" PRIu64, ((const wheel_entry_t *)p)->at);
  fputc('\n', f);
}

void wheel_dump(const wheel_t *w, FILE *f)
{
  fprintf(f, "wheel %p: cursor=%" PRIu64 " count=%zu\n", (const void *)w, w->cursor, w->count);
  dump_list(f, "ready", &w->ready);
  dump_list(f, "firing", &w->firing);
  for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
    for (unsigned s = 0; s < WHEEL_SLOTS; s++) {
      if (list_empty(&w->slots[l][s]))
        continue;
      char name[32];
      snprintf(name, sizeof name, "L%u[%u]", l, s);
      dump_list(f, name, &w->slots[l][s]);
    }
  }
}
