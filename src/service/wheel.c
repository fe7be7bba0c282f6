/*
 * wheel.c - hierarchical timing wheel; the contract is in wheel.h.
 *
 * Layout. 11 levels of 64 slots. Level l holds entries whose deadline first
 * differs from the cursor (the time the wheel has advanced to) in bits
 * [6l, 6l+6), in the slot named by those six bits of the deadline; so a
 * level-0 slot holds exactly one deadline, a level-l slot a 64^l ms range,
 * and the 11 levels cover the whole uint64 range: an entry years away needs
 * no overflow list, it just cascades down at most 10 times. Every entry with
 * a given deadline is in the same slot (the placement is a function of
 * deadline and cursor only) and each slot list is in link order, so equal
 * deadlines stay FIFO across cascades without a sequence number. Due
 * entries (deadline <= cursor) leave the slots for two lists: `incoming`
 * (appended in link order, unsorted: entries linked in the past, or swept
 * out of slots by wheel_run) and `ready` (sorted by deadline, stable). A
 * stable natural merge sort moves incoming into ready when something needs
 * the order (next_wake, run); it is O(k) for already-sorted input, which is
 * the common case. One 64-bit occupancy word per level finds the next
 * non-empty slot with one count-trailing-zeros; unlink keeps the bits exact
 * because an entry's slot is recomputable from its deadline and the cursor
 * (that is what the per-entry wheel pointer buys, with O(1) counting).
 *
 * Why this shape, and its costs:
 * - 1 ms resolution, no rounding: an entry never fires early and never
 *   later than the caller's own timer latency. Coarser ticks (h2o rounds
 *   to the slot) would save cascades but refresh deadlines are spread by
 *   jitter anyway, so the cascade count (<= levels crossed) stays small.
 * - Fixed memory: 11 x 64 slot heads (16 B) + occupancy = ~11.4 KB per
 *   wheel, whatever the number of entries; 32 B per entry (two links, the
 *   wheel pointer, the deadline) against 152 B per uv_timer_t.
 * - O(1) link/unlink. Advancing costs O(1) per entry per level crossed plus
 *   one bit scan per non-empty slot visited; a slot whose whole range is
 *   due is spliced to `incoming` in O(1) and ordered by the sort instead of
 *   being cascaded level by level. Firing n due entries costs O(n log r)
 *   for r sorted runs among them.
 * - Re-linking into the past while many entries are already due (a backlog
 *   bounded by `max`) inserts from the tail of `ready`: O(1) when the new
 *   deadline is the latest, O(backlog) at worst.
 * - wheel_next_wake() is exact. When the earliest entry sits in an outer
 *   level it cascades that slot instead of scanning it for the minimum, and
 *   so may move the cursor past the caller's clock, up to (never beyond)
 *   the earliest deadline; entries then linked between the caller's now and
 *   the cursor take the sorted due-list path instead of a slot. A scan
 *   followed by wheel_run's cascade touched every entry twice per level:
 *   this halved the fire cost in bench/wheel_bench.c.
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
static wheel_entry_t *entry_of(wheel_link_t *l)
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
  list_init(&w->ready);
  list_init(&w->incoming);
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
  e->at = at;
  e->wheel = w;
  w->count++;
  if (at <= w->cursor)
    list_append(&w->incoming, &e->link);
  else
    place(w, e);
}

void wheel_unlink(wheel_entry_t *e)
{
  wheel_t *w = e->wheel;
  if (!w)
    return;
  list_remove(&e->link);
  /* Outside wheel_run's sweep, at > cursor <=> the entry is in a slot. */
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

/* Stable merge of two NULL-terminated sorted lists; `a` wins ties because
 * its nodes were appended earlier. */
static wheel_link_t *merge(wheel_link_t *a, wheel_link_t *b)
{
  wheel_link_t head, *t = &head;
  while (a && b) {
    if (entry_of(b)->at < entry_of(a)->at) {
      t->next = b;
      t = b;
      b = b->next;
    } else {
      t->next = a;
      t = a;
      a = a->next;
    }
  }
  t->next = a ? a : b;
  return head.next;
}

/* Stable natural merge sort of a NULL-terminated list: cuts maximal
 * non-decreasing runs and merges them like a binary counter, so sorted
 * input costs one pass and r runs cost O(n log r). stack[i] holds 2^i
 * merged runs; a higher i holds earlier nodes, so it is always merge()'s
 * first argument (stability). */
static wheel_link_t *sort_list(wheel_link_t *list)
{
  wheel_link_t *p = list;
  while (p->next && entry_of(p->next)->at >= entry_of(p)->at)
    p = p->next;
  if (!p->next)
    return list; /* already sorted: the common case */
  wheel_link_t *stack[64] = {0};
  unsigned i;
  while (list) {
    wheel_link_t *run = list;
    p = list;
    while (p->next && entry_of(p->next)->at >= entry_of(p)->at)
      p = p->next;
    list = p->next;
    p->next = NULL;
    for (i = 0; i < 63 && stack[i]; i++) {
      run = merge(stack[i], run);
      stack[i] = NULL;
    }
    stack[i] = stack[i] ? merge(stack[i], run) : run;
  }
  wheel_link_t *out = NULL;
  for (i = 0; i < 64; i++)
    if (stack[i])
      out = out ? merge(stack[i], out) : stack[i];
  return out;
}

/* Sorts `incoming` and merges it into `ready`, inserting from the tail:
 * entries already in ready were linked earlier, so they stay first on ties. */
static void flush_incoming(wheel_t *w)
{
  if (list_empty(&w->incoming))
    return;
  w->incoming.prev->next = NULL;
  wheel_link_t *list = sort_list(w->incoming.next);
  list_init(&w->incoming);

  wheel_link_t tmp, *next;
  list_init(&tmp);
  for (wheel_link_t *p = list; p; p = next) {
    next = p->next;
    list_append(&tmp, p);
  }
  wheel_link_t *pos = w->ready.prev;
  while (!list_empty(&tmp)) {
    wheel_link_t *x = tmp.prev;
    uint64_t at = entry_of(x)->at;
    while (pos != &w->ready && entry_of(pos)->at > at)
      pos = pos->prev;
    list_remove(x);
    list_insert_after(pos, x);
  }
}

/* Moves the cursor to now (> cursor; the caller's time, or the start of the
 * earliest slot for wheel_next_wake): every slot whose range starts at or
 * before now is emptied, due entries go to `incoming` (in slot order, which
 * keeps equal deadlines FIFO), the others cascade to a lower level relative
 * to the slot's start. Moving the cursor up to the earliest occupied slot's
 * start never changes where the other entries belong. */
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
    uint64_t last = start + ((UINT64_C(1) << (l * WHEEL_BITS)) - 1);
    if (last <= now) {
      list_splice_tail(&w->incoming, head);
      continue;
    }
    wheel_link_t tmp;
    list_init(&tmp);
    list_splice_tail(&tmp, head);
    while (!list_empty(&tmp)) {
      wheel_entry_t *e = entry_of(tmp.next);
      list_remove(&e->link);
      if (e->at <= now)
        list_append(&w->incoming, &e->link);
      else
        place(w, e);
    }
  }
  w->cursor = now;
}

uint64_t wheel_next_wake(wheel_t *w)
{
  unsigned l, s;
  for (;;) {
    flush_incoming(w);
    /* Inside a fire callback the rest of the batch is still due, and it is
     * sorted like `ready`: both heads are candidates. */
    if (!list_empty(&w->firing) || !list_empty(&w->ready)) {
      uint64_t a = list_empty(&w->firing) ? UINT64_MAX : entry_of(w->firing.next)->at;
      uint64_t b = list_empty(&w->ready) ? UINT64_MAX : entry_of(w->ready.next)->at;
      return a < b ? a : b;
    }
    if (!find_earliest(w, &l, &s))
      return UINT64_MAX;
    if (l == 0)
      return entry_of(w->slots[0][s].next)->at; /* one deadline per slot */
    /* The minimum of an outer slot is unknown without a scan. Cascading the
     * slot costs the same pass and is work wheel_run would do anyway, so
     * move the cursor to the slot's start (possibly past the caller's
     * clock: nothing is due before it, and wheel_run only fires entries
     * due at its `now`) and look again. */
    advance(w, slot_start(w->cursor, l, s));
  }
}

size_t wheel_run(wheel_t *w, uint64_t now, size_t max, wheel_fire_cb fire, void *arg)
{
  if (now > w->cursor)
    advance(w, now);
  flush_incoming(w);

  /* Take the batch out of `ready` before any callback runs, so whatever a
   * callback links (even into the past) lands in `incoming`/`ready` and
   * waits for the next call. Batch entries stay linked: a callback that
   * unlinks or re-links one removes it from the batch. */
  size_t taken = 0;
  while (taken < max && !list_empty(&w->ready)) {
    wheel_link_t *p = w->ready.next;
    if (entry_of(p)->at > now)
      break;
    list_remove(p);
    list_append(&w->firing, p);
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

static long check_list(const wheel_t *w, const wheel_link_t *head, int kind,
                       unsigned l, unsigned s, const char **why)
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
  if ((n = check_list(w, &w->incoming, LIST_DUE, 0, 0, why)) < 0)
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
  fprintf(f, "wheel %p: cursor=%" PRIu64 " count=%zu\n", (const void *)w, w->cursor,
          w->count);
  dump_list(f, "ready", &w->ready);
  dump_list(f, "incoming", &w->incoming);
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
