#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "log.h"
#include "metrics.h"
#include "sort.h"

/* Segment sizes follow demand: each reservation covers what the entity used
 * per second since the previous one, times SEGMENT_HORIZON_MS. A hot entity
 * then costs one fsync per ~30 s (1,000 hot entities ~33 fsyncs/s), and a
 * restart skips at most ~30 s worth of its values. */
#define SEGMENT_MIN        16
#define SEGMENT_MAX        (UINT64_C(1) << 20)
#define SEGMENT_HORIZON_MS 30000
/* Compact once the journal is this big and twice its last compacted size. */
#define COMPACT_MIN_BYTES (UINT64_C(4) << 20)

/* At least as many slots as KV buckets, so the entities of KV bucket b
 * live in slots b, b + SHARD_KV_BUCKETS, ... */
static int grow_buckets(struct store *s)
{
	size_t n = s->nbuckets ? s->nbuckets * 2 : SHARD_KV_BUCKETS;
	struct entity **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct entity *e = s->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
	return 0;
}

/* The entity or tombstone of this name. */
static struct entity *find_slot(struct store *s, const char *name, size_t len)
{
	if (!s->nbuckets)
		return NULL;
	uint32_t h = shard_kv_hash(name, len);
	for (struct entity *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && e->name_len == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

struct entity *store_find(struct store *s, const char *name, size_t len)
{
	struct entity *e = find_slot(s, name, len);
	return e && !e->deleted ? e : NULL;
}

uint64_t store_floor(struct store *s, const char *name, size_t len)
{
	struct entity *e = find_slot(s, name, len);
	return e && e->deleted ? e->reserved_i : 0;
}

/* Inserts a new entity in memory only; the caller journals it. */
static struct entity *insert(struct store *s, const char *name, size_t len, enum id_type type)
{
	if (s->slots >= s->nbuckets && grow_buckets(s) != 0)
		return NULL;
	struct entity *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->hash = shard_kv_hash(name, len);
	e->name_len = (uint8_t)len;
	memcpy(e->name, name, len);
	e->type = type;
	e->shape = seq_shape_make(s->shard, s->total, type);
	size_t b = e->hash & (s->nbuckets - 1);
	e->next = s->buckets[b];
	s->buckets[b] = e;
	s->count++;
	s->slots++;
	return e;
}

static void unlink_entity(struct store *s, struct entity *e)
{
	struct entity **p = &s->buckets[e->hash & (s->nbuckets - 1)];
	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	if (!e->deleted)
		s->count--;
	s->slots--;
	free(e);
}

/* The journal's mark moved down (a reset, a re-created name): a txn in
 * flight, or one built from now on, may commit a lower mark than KV holds
 * now, so KV's current mark no longer bounds what may be handed out. */
static void lower_kv_bound(struct entity *e, uint64_t mark)
{
	if (e->kv_i > mark)
		e->kv_i = mark;
	e->kv_sent = 0;
}

/* Binds name to type and style in memory only (the caller journals it). An
 * existing slot, normally a tombstone, starts over at its high-water mark. */
static struct entity *bind_name(struct store *s, const char *name, size_t len, enum id_type type,
				const struct id_style *style)
{
	static const struct id_style plain;
	struct entity *e = find_slot(s, name, len);
	/* A new slot (all zero) passes through the rest unchanged. */
	if (!e && !(e = insert(s, name, len, type)))
		return NULL;
	if (e->deleted)
		s->count++;
	uint64_t floor = e->reserved_i;
	e->type = type;
	e->style = style ? *style : plain;
	e->shape = seq_shape_make(s->shard, s->total, type);
	e->start_i = e->next_i = e->reserved_i = e->reserved_from_i = floor;
	e->last_reserve_ms = e->last_snowflake = 0;
	e->deleted = e->resumed = 0;
	e->kv_bound = 0;   /* KV holds the tombstone, not this binding */
	lower_kv_bound(e, floor);
	return e;
}

void store_each_in_bucket(struct store *s, unsigned b, void (*fn)(void *ud, struct entity *e), void *ud)
{
	for (size_t j = b; j < s->nbuckets; j += SHARD_KV_BUCKETS)
		for (struct entity *e = s->buckets[j]; e; e = e->next)
			fn(ud, e);
}

void store_each(struct store *s, void (*fn)(void *ud, struct entity *e), void *ud)
{
	for (size_t j = 0; j < s->nbuckets; j++)
		for (struct entity *e = s->buckets[j]; e; e = e->next)
			fn(ud, e);
}

void store_touch(struct store *s, const struct entity *e)
{
	struct store_kv *kv = s->kv;
	if (!kv)
		return;
	unsigned b = shard_kv_bucket(e->hash);
	kv->ver[b]++;
	if (!kv->queued[b]) {
		kv->queued[b] = 1;
		kv->queue[(kv->qhead + kv->qlen++) % SHARD_KV_BUCKETS] = (uint16_t)b;
	}
}

static int kv_required(const struct store *s)
{
	return s->kv && s->kv->required;
}

/* After a delete that handed out iterations below floor: keep a tombstone
 * when there is something to remember. */
static void retire(struct store *s, struct entity *e, uint64_t floor)
{
	if (!floor) {
		unlink_entity(s, e);
		return;
	}
	e->reserved_i = floor;
	e->deleted = 1;
	e->resumed = 0;
	s->count--;
}

static struct jrec rec(enum jrec_kind kind, const struct entity *e, uint64_t value)
{
	struct jrec r = { .kind = kind, .value = value };
	if (e) {
		r.type = (uint8_t)e->type;
		r.name_len = e->name_len;
		memcpy(r.name, e->name, e->name_len);
	}
	return r;
}

_Static_assert(ID_PREFIX_MAX <= JREC_TEXT_MAX, "a TypeID prefix fits a BIND record");

/* The binding, with the style: value the format, text the prefix. */
static struct jrec bind_rec(const struct entity *e)
{
	struct jrec r = rec(JREC_BIND, e, e->style.format);
	r.text_len = e->style.prefix_len;
	r.text = e->style.prefix;
	return r;
}

static int emit_snapshot(void *ud, struct journal_sink *sink);

/* Writes records durably. On failure remembers why (for /health) and
 * returns -1; the first success afterwards clears it. */
static int persist(struct store *s, const struct jrec *recs, size_t n)
{
	if (!s->journal)
		return 0;
	if (journal_append(s->journal, recs, n) != 0) {
		int err = errno;
		metrics.storage_errors++;
		if (!s->failure[0])
			log_error("msg=\"journal write failed: refusing to hand out unreserved values\" error=\"%s\"",
				  strerror(err));
		fmt_snprintf(s->failure, sizeof s->failure, "journal write failed: %s", strerror(err));
		return -1;
	}
	if (s->failure[0]) {
		log_info("msg=\"journal writable again\"");
		s->failure[0] = '\0';
		s->last_probe_ms = 0;
	}
	return 0;
}

/* Called once a write's effect is in memory, never between the append and
 * the update: the snapshot must already hold what was just recorded. */
static void maybe_compact(struct store *s)
{
	if (!s->journal)
		return;
	uint64_t bytes = journal_bytes(s->journal);
	if (bytes >= COMPACT_MIN_BYTES && bytes >= 2 * s->compacted_bytes)
		store_compact(s);
}

/* Journals a STOPPED record for each sequence that handed out less than it
 * reserved since its last record said so, in batches (one fsync each).
 * Returns how many entities it covered, or -1. */
static long record_stops(struct store *s)
{
	enum { BATCH = 1024 };
	struct jrec *recs = malloc(BATCH * sizeof *recs);
	if (!recs)
		return -1;
	size_t n = 0;
	long total = 0;
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct entity *e = s->buckets[i]; e; e = e->next) {
			/* Replicated, a stop position is trusted after a takeover
			 * only when KV holds the mark above it: a successor that
			 * started from an older KV mark may have used the rest. */
			if (e->deleted || e->resumed || !id_type_is_seq(e->type) ||
			    e->next_i >= e->reserved_i || (s->kv && e->kv_i < e->reserved_i))
				continue;
			recs[n++] = rec(JREC_STOPPED, e, e->next_i);
			total++;
			if (n == BATCH) {
				if (persist(s, recs, n) != 0) {
					free(recs);
					return -1;
				}
				n = 0;
			}
		}
	}
	if (n && persist(s, recs, n) != 0)
		total = -1;
	free(recs);
	return total;
}

int store_stop(struct store *s)
{
	if (!s->journal)
		return 0;
	long n = record_stops(s);
	if (n < 0)
		log_warn("msg=\"could not record where sequences stopped: the next start skips to their reservations\"");
	else if (n > 0)
		log_info("msg=\"recorded where sequences stopped\" entities=%ld", n);
	return n < 0 ? -1 : 0;
}

int store_compact(struct store *s)
{
	uint64_t bytes = journal_bytes(s->journal);
	if (journal_compact(s->journal, emit_snapshot, s) != 0) {
		/* The old journal stays valid; try again after it grows further. */
		s->compacted_bytes = bytes;
		log_warn("msg=\"journal compaction failed\" error=\"%s\"", strerror(errno));
		return -1;
	}
	s->compacted_bytes = journal_bytes(s->journal);
	log_info("msg=\"journal compacted\" before_bytes=%llu after_bytes=%llu",
		 (unsigned long long)bytes, (unsigned long long)s->compacted_bytes);
	return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Where a reservation starting at iteration base ends, when iterations
 * below used_i have been taken by now: a segment sized by the use since
 * the last reservation. */
static uint64_t reservation_mark(const struct entity *e, uint64_t base, uint64_t used_i,
				 uint64_t now_mono_ms)
{
	uint64_t count = seq_count(&e->shape);
	uint64_t segment = SEGMENT_MIN;
	if (e->last_reserve_ms) {
		uint64_t used = used_i - e->reserved_from_i;
		uint64_t elapsed = now_mono_ms - e->last_reserve_ms;
		if (elapsed < 1000)
			elapsed = 1000;  /* one burst is not a rate */
		uint64_t want = used > SEGMENT_MAX ? SEGMENT_MAX : used * SEGMENT_HORIZON_MS / elapsed;
		segment = want < SEGMENT_MIN ? SEGMENT_MIN : min_u64(want, SEGMENT_MAX);
	}
	/* Never reserve more than a small part of what is left, so restarts
	 * cannot burn through a small int range. */
	uint64_t left = count - base;
	uint64_t cap = left / 16 >= SEGMENT_MIN ? left / 16 : min_u64(left, SEGMENT_MIN);
	return base + min_u64(segment, cap);
}

uint64_t store_used_ppm(const struct entity *e)
{
	uint64_t n = seq_count(&e->shape);
	if (e->next_i >= n)
		return 1000000;
	return (uint64_t)((unsigned __int128)e->next_i * 1000000 / n);
}

uint64_t store_used_max_ppm(const struct store *s)
{
	uint64_t max = 0;
	for (size_t b = 0; b < s->nbuckets; b++)
		for (const struct entity *e = s->buckets[b]; e; e = e->next)
			if (!e->deleted && id_type_is_seq(e->type)) {
				uint64_t u = store_used_ppm(e);
				if (u > max)
					max = u;
			}
	return max;
}

/* A warning when e's reservations pass 90 % or 99 % of its range (marks
 * are iterations; from is the previous mark). */
static void warn_capacity(const struct entity *e, uint64_t from, uint64_t to)
{
	static const unsigned pct[] = { 99, 90 };
	uint64_t n = seq_count(&e->shape);
	for (int i = 0; i < 2; i++) {
		uint64_t at = (uint64_t)((unsigned __int128)n * pct[i] / 100);
		if (from < at && to >= at) {
			log_warn("msg=\"sequence range nearly used up\" entity=%s type=%s passed_percent=%u values_left=%llu",
				 e->name, id_type_name(e->type), pct[i], (unsigned long long)(n - (to < n ? to : n)));
			return;
		}
	}
}

enum store_status store_init(struct store *s, const char *name, size_t len,
			     enum id_type type, const struct id_style *style, uint64_t start_i,
			     uint64_t now_mono_ms, struct entity **out)
{
	if (store_find(s, name, len))
		return STORE_EXISTS;
	struct entity *tomb = find_slot(s, name, len), saved;
	if (tomb)
		saved = *tomb;
	struct entity *e = bind_name(s, name, len, type, style);
	if (!e)
		return STORE_NOMEM;
	e->start_i = e->next_i = e->reserved_from_i = start_i;
	struct jrec recs[3];
	size_t n = 0;
	recs[n++] = bind_rec(e);
	if (start_i)
		recs[n++] = rec(JREC_RESET, e, start_i);
	uint64_t mark = start_i;
	if (id_type_is_seq(type) && start_i < seq_count(&e->shape)) {
		mark = reservation_mark(e, start_i, start_i, now_mono_ms);
		recs[n++] = rec(JREC_RESERVE, e, mark);
	}
	if (persist(s, recs, n) != 0) {
		if (tomb) {          /* back to the tombstone it was */
			saved.next = e->next;
			*e = saved;
			s->count--;
		} else {
			unlink_entity(s, e);
		}
		return STORE_UNAVAILABLE;
	}
	if (mark > start_i)
		metrics.seq_reservations++;
	if (id_type_is_seq(type))
		warn_capacity(e, 0, mark);
	e->reserved_i = mark;
	e->last_reserve_ms = now_mono_ms ? now_mono_ms : 1;
	store_touch(s, e);
	*out = e;
	maybe_compact(s);
	return STORE_OK;
}

/* Journals a new mark for e (one fsync) and queues it for KV. */
static int reserve(struct store *s, struct entity *e, uint64_t mark, uint64_t now_mono_ms)
{
	struct jrec r = rec(JREC_RESERVE, e, mark);
	if (persist(s, &r, 1) != 0)
		return -1;
	warn_capacity(e, e->reserved_i, mark);
	e->reserved_i = mark;
	e->reserved_from_i = e->next_i;
	e->last_reserve_ms = now_mono_ms ? now_mono_ms : 1;
	metrics.seq_reservations++;
	e->resumed = 0;
	store_touch(s, e);
	maybe_compact(s);
	return 0;
}

enum store_status store_take(struct store *s, struct entity *e, uint64_t k,
			     uint64_t now_mono_ms, uint64_t *first_i)
{
	uint64_t count = seq_count(&e->shape);
	if (k == 0 || e->next_i > count || k > count - e->next_i)
		return STORE_EXHAUSTED;
	if (k > e->reserved_i - e->next_i) {
		/* The read-modify-write of the mark happens here, inside one
		 * request of a single-threaded loop: nothing can interleave. */
		if (reserve(s, e, reservation_mark(e, e->next_i + k, e->next_i + k, now_mono_ms),
			    now_mono_ms) != 0)
			return STORE_UNAVAILABLE;
	} else if (e->resumed) {
		/* First use after a clean stop: journal the mark again, so that a
		 * crash from now on replays the mark, not the stop, and skips what
		 * this run takes from the old reservation. */
		struct jrec r = rec(JREC_RESERVE, e, e->reserved_i);
		if (persist(s, &r, 1) != 0)
			return STORE_UNAVAILABLE;
		e->resumed = 0;
		maybe_compact(s);
	}
	if (kv_required(s)) {
		/* KV's mark may lie below the journal's (its txn is in flight),
		 * or above it (a reset it has not seen yet): both bound what
		 * may be handed out. */
		if (e->kv_i < e->next_i + k)
			return STORE_PENDING;
		*first_i = e->next_i;
		e->next_i += k;
		/* Half of the segment is used: reserve the next one now, so its
		 * txn is done before this one runs out. */
		if (e->kv_i >= e->reserved_i && e->reserved_i < count &&
		    2 * (e->reserved_i - e->next_i) < e->reserved_i - e->reserved_from_i)
			reserve(s, e, reservation_mark(e, e->reserved_i, e->next_i, now_mono_ms), now_mono_ms);
		return STORE_OK;
	}
	*first_i = e->next_i;
	e->next_i += k;
	return STORE_OK;
}

enum store_status store_reset(struct store *s, struct entity *e, uint64_t i, int force)
{
	if (i < e->next_i && !force)
		return STORE_BACKWARDS;
	struct jrec r = rec(JREC_RESET, e, i);
	if (persist(s, &r, 1) != 0)
		return STORE_UNAVAILABLE;
	if (id_type_is_seq(e->type))
		warn_capacity(e, e->reserved_i, i);
	e->start_i = e->next_i = e->reserved_i = e->reserved_from_i = i;
	e->last_reserve_ms = 0;
	e->resumed = 0;
	lower_kv_bound(e, i);
	store_touch(s, e);
	maybe_compact(s);
	return STORE_OK;
}

enum store_status store_delete(struct store *s, const char *name, size_t len)
{
	struct entity *e = store_find(s, name, len);
	if (!e)
		return STORE_NOT_FOUND;
	/* Everything below next_i may have been handed out, now or before a
	 * restart (replay moves next_i to the last mark); nothing above it has. */
	struct jrec r = rec(JREC_DELETE, e, e->next_i);
	if (persist(s, &r, 1) != 0)
		return STORE_UNAVAILABLE;
	store_touch(s, e);
	retire(s, e, e->next_i);
	maybe_compact(s);
	return STORE_OK;
}

/* Journals "ticks below F may be used" a little ahead of tick, so a
 * restart onto an earlier clock cannot repeat a (tick, sequence). With
 * replication the lead is twice as long: KV's fence is moved when half
 * of it is left. */
static int write_fence(struct store *s, uint64_t tick)
{
	uint64_t fence = tick + 1 + (s->kv ? 2 : 1) * s->fence_ahead_ticks;
	struct jrec r = { .kind = JREC_FENCE, .value = fence };
	if (persist(s, &r, 1) != 0)
		return -1;
	s->fence = fence;
	maybe_compact(s);
	return 0;
}

/* Makes ticks up to tick usable (tick < gen.fence_tick): STORE_OK, or
 * STORE_PENDING while KV's fence must move first. */
static enum store_status move_fence(struct store *s, uint64_t tick)
{
	if (tick >= s->fence && write_fence(s, tick) != 0)
		return STORE_UNAVAILABLE;
	if (!kv_required(s)) {
		s->gen.fence_tick = s->fence;
		return STORE_OK;
	}
	if (s->kv->fence > tick) {
		s->gen.fence_tick = min_u64(s->kv->fence, s->fence);
		return STORE_OK;
	}
	if (s->kv->fence_want < s->fence)
		s->kv->fence_want = s->fence;
	return STORE_PENDING;
}

/* Replicated: move KV's fence ahead before IDs reach it, so a steady
 * stream of time-based IDs never waits for Consul. */
static void fence_ahead(struct store *s, uint64_t last_tick)
{
	if (kv_required(s) && s->kv->fence_want <= s->kv->fence &&
	    s->gen.fence_tick - last_tick <= s->fence_ahead_ticks &&
	    (s->fence > last_tick + s->fence_ahead_ticks ||
	     write_fence(s, last_tick) == 0))
		s->kv->fence_want = s->fence;
}

enum store_status store_snowflake(struct store *s, uint64_t now_ms, int batch,
				  enum sf_status *st, uint64_t *id, uint64_t *wait_ms)
{
	s->gen.carry_over = batch;
	for (;;) {
		*st = sf_next(&s->gen, now_ms, id, wait_ms);
		if (*st != SF_NEED_FENCE)
			break;
		uint64_t tick = sf_tick_of(&s->gen.layout, now_ms);
		if (tick < s->gen.last_tick)
			tick = s->gen.last_tick;
		enum store_status rc = move_fence(s, tick);
		if (rc != STORE_OK)
			return rc;
	}
	if (*st == SF_OK)
		fence_ahead(s, s->gen.last_tick);
	return STORE_OK;
}

/* The floor of time-sortable IDs after a fence: the first millisecond of
 * its tick, as no ID came from a tick at or above it. */
static uint64_t fence_floor_ms(const struct store *s, uint64_t fence)
{
	const struct sf_layout *l = &s->gen.layout;
	return fence ? l->epoch_ms + fence * l->unit_ms : 0;
}

enum store_status store_tsid(struct store *s, enum tsid_kind k, uint64_t now_ms, const uint8_t *rnd,
			     enum sf_status *st, uint8_t id[16], uint64_t *wait_ms)
{
	for (;;) {
		struct tsid_gen next = s->tsid[k];
		*st = tsid_next(&next, now_ms, rnd, id, wait_ms);
		if (*st != SF_OK)
			return STORE_OK;
		uint64_t tick = sf_tick_of(&s->gen.layout, next.last_ms);
		if (tick < s->gen.fence_tick) {
			s->tsid[k] = next;
			fence_ahead(s, tick);
			return STORE_OK;
		}
		enum store_status rc = move_fence(s, tick);
		if (rc != STORE_OK)
			return rc;
	}
}

int store_clock_behind(const struct store *s, int kind, uint64_t now_ms)
{
	if (kind >= 0)
		return now_ms < s->tsid[kind].last_ms;
	return sf_tick_of(&s->gen.layout, now_ms) < s->gen.last_tick;
}

void store_probe(struct store *s, uint64_t now_mono_ms)
{
	if (!s->failure[0])
		return;
	/* The first look only starts the clock: a probe right after a failed
	 * reservation could squeeze a small record into the last free bytes. */
	if (!s->last_probe_ms || now_mono_ms - s->last_probe_ms < 1000) {
		if (!s->last_probe_ms)
			s->last_probe_ms = now_mono_ms;
		return;
	}
	s->last_probe_ms = now_mono_ms;
	/* Rewriting the current fence changes nothing: replay keeps the maximum. */
	struct jrec r = { .kind = JREC_FENCE, .value = s->fence };
	persist(s, &r, 1);
}

static int by_name(const void *a, const void *b)
{
	const struct entity *x = *(struct entity *const *)a, *y = *(struct entity *const *)b;
	size_t n = min_u64(x->name_len, y->name_len);
	int c = memcmp(x->name, y->name, n);
	return c ? c : (int)x->name_len - (int)y->name_len;
}

struct entity **store_sorted(struct store *s)
{
	struct entity **v = malloc((s->count + 1) * sizeof *v);
	if (!v)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entity *e = s->buckets[i]; e; e = e->next)
			if (!e->deleted)
				v[n++] = e;
	sort(v, n, sizeof *v, by_name);
	return v;
}

static struct jrec identity_rec(const struct store *s)
{
	/* At most 116 bytes: shard and total <= 1024, a layout name of at most
	 * 63, a machine ID below 2^20. */
	struct jrec r = { .kind = JREC_IDENTITY };
	size_t n = strnlen(s->identity, JOURNAL_NAME_MAX);
	r.name_len = (uint8_t)n;
	memcpy(r.name, s->identity, n);
	r.name[n] = '\0';
	return r;
}

/* The live state and tombstones as journal records: what a replay needs,
 * nothing more. */
static int emit_snapshot(void *ud, struct journal_sink *sink)
{
	struct store *s = ud;
	struct jrec id = identity_rec(s);
	struct jrec f = { .kind = JREC_FENCE, .value = s->fence };
	if (journal_emit(sink, &id) != 0 || (s->fence && journal_emit(sink, &f) != 0))
		return -1;
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct entity *e = s->buckets[i]; e; e = e->next) {
			struct jrec b = bind_rec(e);
			struct jrec r = rec(JREC_RESET, e, e->start_i);
			struct jrec m = rec(JREC_RESERVE, e, e->reserved_i);
			struct jrec d = rec(JREC_DELETE, e, e->reserved_i);
			struct jrec p = rec(JREC_STOPPED, e, e->next_i);
			if (journal_emit(sink, &b) != 0)
				return -1;
			if (e->deleted ? journal_emit(sink, &d) != 0 :
			    (e->start_i && journal_emit(sink, &r) != 0) ||
			    (e->reserved_i > e->start_i && journal_emit(sink, &m) != 0) ||
			    (e->resumed && journal_emit(sink, &p) != 0))
				return -1;
		}
	}
	return 0;
}

struct replay {
	struct store *s;
	uint64_t fence;
	uint64_t records;
	char identity[JOURNAL_NAME_MAX + 1];
};

/* A BIND record: older journals hold neither format nor prefix (plain). */
static int bind_record(struct store *s, const struct jrec *r)
{
	struct id_style st = { .format = (uint8_t)r->value, .prefix_len = r->text_len };
	memcpy(st.prefix, r->text, r->text_len);
	if (r->type >= TYPE_COUNT || r->value > FMT_BASE62 ||
	    id_style_problem((enum id_type)r->type, &st))
		return -1;
	return bind_name(s, r->name, r->name_len, (enum id_type)r->type, &st) ? 0 : -1;
}

static int apply(void *ud, const struct jrec *r)
{
	struct replay *rp = ud;
	struct store *s = rp->s;
	rp->records++;
	if (r->kind == JREC_IDENTITY) {
		memcpy(rp->identity, r->name, (size_t)r->name_len + 1);
		return 0;
	}
	if (r->kind == JREC_FENCE) {
		if (r->value > rp->fence)
			rp->fence = r->value;
		return 0;
	}
	struct entity *e = store_find(s, r->name, r->name_len);
	switch (r->kind) {
	case JREC_BIND:
		return bind_record(s, r);
	case JREC_RESET:
		if (!e)
			return -1;
		e->start_i = e->next_i = e->reserved_i = r->value;
		e->resumed = 0;
		return 0;
	case JREC_RESERVE:
		if (!e)
			return -1;
		/* Anything below the mark may have been handed out before the
		 * restart, so serving continues above it. */
		e->next_i = e->reserved_i = r->value;
		e->resumed = 0;
		return 0;
	case JREC_DELETE:
		if (e)
			retire(s, e, r->value);
		return 0;
	case JREC_STOPPED:
		if (!e)
			return -1;
		if (r->value >= e->start_i && r->value < e->reserved_i) {
			e->next_i = r->value;
			e->resumed = 1;
		}
		return 0;
	default:
		return -1;
	}
}

int store_open(struct store *s, const char *dir, uint64_t shard, uint64_t total,
	       const struct sf_layout *layout, uint64_t machine, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->shard = shard;
	s->total = total;
	if (grow_buckets(s) != 0) {
		fmt_snprintf(err, errlen, "out of memory");
		return -1;
	}
	shard_kv_identity(s->identity, (unsigned)shard, (unsigned)total, layout->name, machine);
	struct replay rp = { .s = s };
	if (dir) {
		s->journal = journal_open(dir, apply, &rp, err, errlen);
		if (!s->journal)
			return -1;
		s->compacted_bytes = journal_bytes(s->journal);
		if (shard == 0 && (rp.identity[0] || rp.records)) {
			/* SHARD_ID=auto found no identity before (store_peek_identity). */
			fmt_snprintf(err, errlen, "DATA_DIR %s holds state %s; with SHARD_ID=auto start it with "
				 "the shard it belongs to once", dir,
				 rp.identity[0] ? "that names its shard" : "without a shard identity");
			return -2;
		}
		if (shard == 0) {
			s->identity[0] = '\0';   /* written by store_assign once claimed */
		} else if (rp.identity[0] && strcmp(rp.identity, s->identity) != 0) {
			fmt_snprintf(err, errlen, "DATA_DIR %s holds the state of %s, but this instance is "
				 "configured as %s; start it with the configuration that wrote the state, "
				 "or move the state with `shardid reidentify` (README: \"Changing a shard's "
				 "identity\")", dir, rp.identity, s->identity);
			return -2;
		}
		if (!rp.identity[0] && shard) {
			struct jrec id = identity_rec(s);
			if (persist(s, &id, 1) != 0) {
				fmt_snprintf(err, errlen, "cannot record the shard identity in %s: %s", dir, s->failure);
				return -1;
			}
			if (rp.records)
				log_info("msg=\"journal had no shard identity (written by an older version): it now belongs to this configuration\" identity=\"%s\"",
					 s->identity);
		}
	}
	s->fence = rp.fence;
	sf_gen_init(&s->gen, layout, machine, rp.fence ? rp.fence - 1 : 0);
	s->gen.fence_tick = dir ? rp.fence : UINT64_MAX;
	tsid_gen_init(&s->tsid[TSID_UUID7], TSID_UUID7, fence_floor_ms(s, rp.fence));
	tsid_gen_init(&s->tsid[TSID_ULID], TSID_ULID, fence_floor_ms(s, rp.fence));
	/* About one second ahead: at most one fence write a second under load,
	 * and a quick restart waits at most that long for the clock. */
	s->fence_ahead_ticks = 1000 / layout->unit_ms ? 1000 / layout->unit_ms : 1;
	return 0;
}

struct peek {
	char identity[JOURNAL_NAME_MAX + 1];
	unsigned long records;
};

static int peek(void *ud, const struct jrec *r)
{
	struct peek *p = ud;
	p->records++;
	if (r->kind == JREC_IDENTITY)
		memcpy(p->identity, r->name, (size_t)r->name_len + 1);
	return 0;
}

int store_peek_identity(const char *dir, char out[SHARD_KV_IDENTITY_MAX], unsigned long *records,
			char *err, size_t errlen)
{
	struct peek p = { "", 0 };
	struct journal *j = journal_open(dir, peek, &p, err, errlen);
	if (!j)
		return -1;
	journal_close(j);
	fmt_snprintf(out, SHARD_KV_IDENTITY_MAX, "%s", p.identity);
	if (records)
		*records = p.records;
	return p.identity[0] != '\0';
}

int store_assign(struct store *s, uint64_t shard, const struct sf_layout *layout, uint64_t machine)
{
	s->shard = shard;
	shard_kv_identity(s->identity, (unsigned)shard, (unsigned)s->total, layout->name, machine);
	if (s->journal) {
		struct jrec id = identity_rec(s);
		if (persist(s, &id, 1) != 0)
			return -1;
	}
	uint64_t fence_tick = s->gen.fence_tick;
	sf_gen_init(&s->gen, layout, machine, s->fence ? s->fence - 1 : 0);
	s->gen.fence_tick = fence_tick;
	for (int k = 0; k < 2; k++)
		tsid_raise_floor(&s->tsid[k], fence_floor_ms(s, s->fence));
	return 0;
}

int store_merge_entity(struct store *s, const struct kv_entity *r)
{
	struct entity *e = find_slot(s, r->name, r->name_len);
	if (!e) {
		if (!(e = insert(s, r->name, r->name_len, r->type)))
			return -1;
		e->style = r->style;
		e->start_i = r->start_i;
		e->next_i = e->reserved_i = e->reserved_from_i = e->kv_i = r->mark_i;
		e->kv_bound = 1;
		if (r->deleted) {
			e->deleted = 1;
			s->count--;
		}
		s->kv->merged++;
		return 0;
	}
	e->kv_i = r->mark_i;
	int same_binding = e->type == r->type && id_style_same(&e->style, &r->style);
	if (same_binding && e->deleted == r->deleted && e->start_i == r->start_i &&
	    e->reserved_i == r->mark_i) {
		/* KV holds what the journal holds. A clean stop's position still
		 * stands (it is recorded only below a mark KV had confirmed, so a
		 * successor would have moved KV's mark); otherwise a successor may
		 * have reserved the same mark from an older one and used part of
		 * it: continue above it. */
		e->kv_bound = 1;
		if (!e->resumed)
			e->next_i = e->reserved_from_i = e->reserved_i;
		return 0;
	}
	/* Someone else may have handed out values up to KV's mark, we up to
	 * the journal's: continue above both. KV's binding and deletion win. */
	uint64_t top = e->reserved_i > r->mark_i ? e->reserved_i : r->mark_i;
	if (e->deleted != r->deleted)
		s->count += r->deleted ? (size_t)-1 : 1;
	if (e->reserved_i <= r->mark_i || !same_binding || e->deleted != r->deleted)
		e->start_i = r->start_i;
	e->type = r->type;
	e->style = r->style;
	e->shape = seq_shape_make(s->shard, s->total, r->type);
	e->deleted = (uint8_t)r->deleted;
	e->next_i = e->reserved_i = e->reserved_from_i = top;
	e->last_reserve_ms = 0;
	e->resumed = 0;
	e->kv_bound = top == r->mark_i;
	if (!e->kv_bound)
		store_touch(s, e);
	s->kv->merged++;
	return 0;
}

void store_merge_fence(struct store *s, uint64_t kv_fence)
{
	s->kv->fence = kv_fence;
	if (kv_fence > s->fence) {
		struct jrec r = { .kind = JREC_FENCE, .value = kv_fence };
		persist(s, &r, 1);   /* a failure shows in /health; KV holds it */
		s->fence = kv_fence;
		s->kv->merged++;
	}
	/* Ticks below the fence may have been used by a predecessor: the next
	 * ID comes from a later one, whatever this host's clock says. */
	if (kv_fence && kv_fence - 1 >= s->gen.last_tick) {
		s->gen.last_tick = kv_fence - 1;
		s->gen.next_seq = UINT64_C(1) << s->gen.layout.seq_bits;
	}
	for (int k = 0; k < 2; k++)
		tsid_raise_floor(&s->tsid[k], fence_floor_ms(s, kv_fence));
	if (s->kv->fence_want < s->fence)
		s->kv->fence_want = s->fence;
	if (s->kv->required)
		s->gen.fence_tick = kv_fence < s->fence ? kv_fence : s->fence;
}

void store_close(struct store *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct entity *e = s->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(s->buckets);
	free(s->kv);
	if (s->journal)
		journal_close(s->journal);
	memset(s, 0, sizeof *s);
}

uint64_t store_fsyncs(const struct store *s)
{
	return s->journal ? journal_fsyncs(s->journal) : 0;
}

uint64_t store_journal_bytes(const struct store *s)
{
	return s->journal ? journal_bytes(s->journal) : 0;
}
