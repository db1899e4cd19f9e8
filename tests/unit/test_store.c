/* Store tests: sequences over a real journal in a temp directory, with the
 * focus on what a restart must not lose: reservations, resets and the
 * tombstones that keep a deleted sequence's high-water mark, through replay,
 * a torn re-creation, clean stops and compaction; then thousands of random operations
 * checked against "no value twice". */
#include "check.h"
#include "check_tmpdir.h"
#include "log.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];
static struct sf_layout layout;

static void open_store(struct store *s, const char *dir)
{
	char err[256] = "";
	int rc = store_open(s, dir, 2, 3, &layout, 1, err, sizeof err);
	CHECK(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "store_open(%s): %s\n", dir ? dir : "(memory)", err);
		exit(1);
	}
}

static void reopen(struct store *s, const char *dir)
{
	store_close(s);
	open_store(s, dir);
}

static struct entity *make(struct store *s, const char *name, enum id_type t)
{
	struct entity *e = NULL;
	uint64_t floor = store_floor(s, name, strlen(name));
	CHECK(store_init(s, name, strlen(name), t, NULL, floor, 1000, &e) == STORE_OK);
	return e;
}

/* Hands out k values of name and returns the last one (0 on failure). */
static uint64_t take(struct store *s, const char *name, uint64_t k)
{
	struct entity *e = store_find(s, name, strlen(name));
	uint64_t first;
	if (!e || store_take(s, e, k, 2000, &first) != STORE_OK)
		return 0;
	return entity_value(e, first + k - 1);
}

static void names(struct store *s, char *out, size_t cap)
{
	struct entity **v = store_sorted(s);
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; v && i < s->count; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "", v[i]->name);
	free(v);
}

static void test_basics(void)
{
	struct store s;
	open_store(&s, NULL);
	make(&s, "a", TYPE_INT);
	CHECK_EQ_U64(take(&s, "a", 1), 2);       /* shard 2 of 3: 2, 5, 8, ... */
	CHECK_EQ_U64(take(&s, "a", 3), 11);
	struct entity *e = NULL;
	CHECK(store_init(&s, "a", 1, TYPE_LONG, NULL, 0, 0, &e) == STORE_EXISTS);
	CHECK(store_delete(&s, "zz", 2) == STORE_NOT_FOUND);
	e = store_find(&s, "a", 1);
	CHECK(store_reset(&s, e, 1, 0) == STORE_BACKWARDS);
	CHECK(store_reset(&s, e, 1, 1) == STORE_OK);
	CHECK_EQ_U64(take(&s, "a", 1), 5);
	store_close(&s);
}

static void test_restart_continues_above_reservations(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "seq", TYPE_LONG);
	uint64_t last = take(&s, "seq", 100);
	reopen(&s, dir);
	uint64_t next = take(&s, "seq", 1);
	CHECK(next > last);
	CHECK_EQ_U64(next % 3, 2);
	store_close(&s);
}

static void test_clean_stop_continues_without_gap(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "g", TYPE_INT);
	uint64_t last = take(&s, "g", 5);             /* 2 .. 14, of a larger reservation */
	CHECK(store_find(&s, "g", 1)->reserved_i > 5);
	CHECK(store_stop(&s) == 0);
	uint64_t stopped_bytes = store_journal_bytes(&s);
	reopen(&s, dir);
	CHECK_EQ_U64(store_journal_bytes(&s), stopped_bytes);  /* startup writes nothing */
	/* Unused since the stop: another stop writes nothing, a compaction and a
	 * crash keep the stop. */
	CHECK(store_stop(&s) == 0);
	CHECK_EQ_U64(store_journal_bytes(&s), stopped_bytes);
	CHECK(store_compact(&s) == 0);
	reopen(&s, dir);
	struct entity *e = store_find(&s, "g", 1);
	CHECK_EQ_U64(entity_value(e, e->next_i - 1), last);   /* status is exact */
	CHECK_EQ_U64(take(&s, "g", 1), last + 3);             /* and nothing skipped */
	/* The stop counts once: a crash now replays the mark, so what this run
	 * takes from the old reservation is never handed out again. */
	uint64_t run2 = take(&s, "g", 3);
	reopen(&s, dir);
	CHECK(take(&s, "g", 1) > run2);
	/* A stop with nothing unused writes nothing. */
	uint64_t bytes = store_journal_bytes(&s);
	e = store_find(&s, "g", 1);
	CHECK(store_take(&s, e, e->reserved_i - e->next_i, 3000, &(uint64_t){ 0 }) == STORE_OK);
	CHECK(store_stop(&s) == 0);
	CHECK_EQ_U64(store_journal_bytes(&s), bytes);
	store_close(&s);
}

static void test_delete_keeps_floor(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "d", TYPE_INT);
	uint64_t last = take(&s, "d", 40);
	CHECK(store_delete(&s, "d", 1) == STORE_OK);
	CHECK(store_find(&s, "d", 1) == NULL);
	CHECK(store_delete(&s, "d", 1) == STORE_NOT_FOUND);
	CHECK_EQ_U64(s.count, 0);
	uint64_t floor = store_floor(&s, "d", 1);
	CHECK_EQ_U64(floor, 40);                      /* what was handed out, not the mark */

	/* The tombstone survives replay ... */
	reopen(&s, dir);
	CHECK(store_find(&s, "d", 1) == NULL);
	CHECK_EQ_U64(store_floor(&s, "d", 1), floor);
	char list[256];
	names(&s, list, sizeof list);
	CHECK_STR(list, strlen(list), "");

	/* ... and a re-created entity, of another type too, continues above. */
	make(&s, "d", TYPE_LONG);
	CHECK_EQ_U64(store_floor(&s, "d", 1), 0);
	uint64_t again = take(&s, "d", 1);
	CHECK(again > last);
	reopen(&s, dir);
	CHECK(take(&s, "d", 1) > again);

	/* After a restart everything below the replayed mark counts as handed
	 * out; deleting a re-created snowflake entity still remembers that. */
	uint64_t mark = store_find(&s, "d", 1)->next_i;
	CHECK(mark > floor + 1);
	CHECK(store_delete(&s, "d", 1) == STORE_OK);
	make(&s, "d", TYPE_SNOWFLAKE);
	CHECK(store_delete(&s, "d", 1) == STORE_OK);
	CHECK_EQ_U64(store_floor(&s, "d", 1), mark);
	reopen(&s, dir);
	CHECK_EQ_U64(store_floor(&s, "d", 1), mark);
	store_close(&s);
}

/* Compaction runs when a write takes the journal past its threshold: the
 * snapshot it writes must already hold what that write recorded. */
static void test_compaction_by_a_reservation_keeps_it(const char *dir)
{
	char name[ENTITY_NAME_MAX + 1];
	memset(name, 'c', ENTITY_NAME_MAX);
	name[ENTITY_NAME_MAX] = '\0';
	struct store s;
	open_store(&s, dir);
	struct entity *e = make(&s, name, TYPE_LONG);
	uint64_t first, start_bytes = s.compacted_bytes, rounds = 0, failed = 0;
	/* Each take needs one more value than is reserved: one record each. */
	while (s.compacted_bytes == start_bytes && rounds++ < 100000)
		failed += store_take(&s, e, e->reserved_i - e->next_i + 1, 2000, &first) != STORE_OK;
	CHECK_EQ_U64(failed, 0);
	CHECK(s.compacted_bytes != start_bytes);
	uint64_t mark = e->reserved_i;
	/* Hand out everything reserved, then restart. */
	CHECK(store_take(&s, e, mark - e->next_i, 2000, &first) == STORE_OK);
	uint64_t last = entity_value(e, mark - 1);
	reopen(&s, dir);
	e = store_find(&s, name, ENTITY_NAME_MAX);
	CHECK(e && e->reserved_i >= mark);
	CHECK(take(&s, name, 1) > last);
	store_close(&s);
}

static int ignore(void *ud, const struct jrec *r)
{
	(void)ud; (void)r;
	return 0;
}

/* A re-creation is BIND + RESET(floor) in one write; if only the BIND made it
 * to disk, replay must still start the name at its tombstone's floor. */
static void test_bind_alone_over_tombstone_starts_at_floor(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "t", TYPE_INT);
	uint64_t last = take(&s, "t", 25);
	CHECK(store_delete(&s, "t", 1) == STORE_OK);
	store_close(&s);

	char err[128];
	struct journal *j = journal_open(dir, ignore, NULL, err, sizeof err);
	CHECK(j != NULL);
	struct jrec b;
	memset(&b, 0, sizeof b);
	b.kind = JREC_BIND;
	b.type = TYPE_INT;
	b.name_len = 1;
	b.name[0] = 't';
	CHECK(j && journal_append(j, &b, 1) == 0);
	journal_close(j);

	open_store(&s, dir);
	CHECK(store_find(&s, "t", 1) != NULL);
	CHECK(take(&s, "t", 1) > last);
	store_close(&s);
}

static void test_delete_without_mark_forgets(void)
{
	struct store s;
	open_store(&s, NULL);
	make(&s, "u", TYPE_UUID8);
	CHECK(store_delete(&s, "u", 1) == STORE_OK);
	CHECK_EQ_U64(store_floor(&s, "u", 1), 0);
	CHECK_EQ_U64(s.slots, 0);
	store_close(&s);
}

static void test_compaction_keeps_tombstones(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "live", TYPE_INT);
	uint64_t live_last = take(&s, "live", 20);
	make(&s, "gone", TYPE_LONG);
	take(&s, "gone", 500);
	CHECK(store_delete(&s, "gone", 4) == STORE_OK);
	uint64_t floor = store_floor(&s, "gone", 4);
	make(&s, "uuid", TYPE_UUID12);
	CHECK(store_delete(&s, "uuid", 4) == STORE_OK);

	CHECK(store_compact(&s) == 0);
	reopen(&s, dir);
	char list[256];
	names(&s, list, sizeof list);
	CHECK_STR(list, strlen(list), "live");
	CHECK_EQ_U64(s.slots, 2);                     /* live + the sequence tombstone */
	CHECK_EQ_U64(store_floor(&s, "gone", 4), floor);
	CHECK(take(&s, "live", 1) > live_last);
	store_close(&s);
}

/* Random operations on a few names: takes and batches, deletes and
 * re-creations with another sequence type, forward resets, restarts and
 * compactions. Without force, every value a name ever hands out is larger
 * than the one before, whatever happened in between. */
static void test_random_ops_never_repeat(const char *dir)
{
	static const char *const names[] = { "p", "q", "r", "s" };
	uint64_t last[4] = { 0 }, rng = 0x9e3779b97f4a7c15u;
	int repeats = 0, wrong_class = 0, takes = 0;
	struct store s;
	open_store(&s, dir);
	for (int step = 0; step < 4000; step++) {
		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;    /* xorshift64 */
		int n = (int)(rng % 4), op = (int)(rng >> 8) % 100;
		const char *name = names[n];
		struct entity *e = store_find(&s, name, 1);
		if (op < 70) {
			if (!e)
				e = make(&s, name, (rng >> 20) & 1 ? TYPE_LONG : TYPE_INT);
			uint64_t first, k = 1 + (rng >> 24) % 40;
			if (store_take(&s, e, k, 1000 + (uint64_t)step * 7, &first) != STORE_OK)
				continue;
			uint64_t v = entity_value(e, first);
			repeats += v <= last[n];
			wrong_class += v % 3 != 2;
			last[n] = entity_value(e, first + k - 1);
			takes++;
		} else if (op < 82) {
			if (e)
				CHECK(store_delete(&s, name, 1) == STORE_OK);
		} else if (op < 88) {
			if (e)
				CHECK(store_reset(&s, e, e->next_i + (rng >> 28) % 100, 0) == STORE_OK);
		} else if (op < 93) {
			reopen(&s, dir);                      /* a crash */
		} else if (op < 96) {
			CHECK(store_stop(&s) == 0);           /* a clean stop */
			reopen(&s, dir);
		} else {
			CHECK(store_compact(&s) == 0);
		}
	}
	CHECK(takes > 2000);
	CHECK_EQ_U64(repeats, 0);
	CHECK_EQ_U64(wrong_class, 0);
	store_close(&s);
}

/* Runs a test on a journal of its own, in base/name. */
static void in_dir(const char *name, void (*test)(const char *dir))
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/%s", base, name);
	if (mkdir(dir, 0700) != 0) {
		perror(dir);
		exit(1);
	}
	test(dir);
}

/* uuid7/ulid bindings survive a restart, and IDs continue above the last
 * one issued, even on a clock that went back, because their floor after a
 * restart is the snowflake fence. */
static void test_tsid_restart_floor(const char *dir)
{
	struct store s;
	open_store(&s, dir);
	make(&s, "u7", TYPE_UUID7);
	make(&s, "ul", TYPE_ULID);
	uint8_t rnd[TSID_RANDOM], id[16], last[2][16];
	enum sf_status st;
	uint64_t wait = 0, now = layout.epoch_ms + 86400000;
	memset(rnd, 0xff, sizeof rnd);
	for (int k = 0; k < 2; k++) {
		CHECK(store_tsid(&s, (enum tsid_kind)k, now, rnd, &st, last[k], &wait) == STORE_OK);
		CHECK(st == SF_OK);
	}
	CHECK(s.fence > sf_tick_of(&layout, now));
	reopen(&s, dir);
	CHECK(store_find(&s, "u7", 2) && store_find(&s, "u7", 2)->type == TYPE_UUID7);
	CHECK(store_find(&s, "ul", 2) && store_find(&s, "ul", 2)->type == TYPE_ULID);
	memset(rnd, 0, sizeof rnd);
	for (int k = 0; k < 2; k++) {
		/* The clock went back 5 s: wait for the floor, then continue above. */
		CHECK(store_tsid(&s, (enum tsid_kind)k, now - 5000, rnd, &st, id, &wait) == STORE_OK);
		CHECK(st == SF_WAIT && wait > 5000);
		CHECK(store_tsid(&s, (enum tsid_kind)k, now - 5000 + wait, rnd, &st, id, &wait) == STORE_OK);
		CHECK(st == SF_OK && memcmp(last[k], id, 16) < 0);
	}
	store_close(&s);
}

static int style_is(struct store *s, const char *name, const struct id_style *want)
{
	struct entity *e = store_find(s, name, strlen(name));
	return e && id_style_same(&e->style, want);
}

/* The style bound at init (a TypeID prefix, base62) is part of the binding:
 * it survives replay and compaction, and a re-created name gets its own. */
static void test_style_is_durable(const char *dir)
{
	static const struct id_style user = { .prefix_len = 4, .prefix = "user" },
				     b62 = { .format = FMT_BASE62 }, plain = { 0 };
	struct store s;
	struct entity *e;
	open_store(&s, dir);
	CHECK(store_init(&s, "u", 1, TYPE_UUID7, &user, 0, 1000, &e) == STORE_OK);
	CHECK(e->style.prefix_len == 4 && strcmp(e->style.prefix, "user") == 0);
	CHECK(store_init(&s, "f", 1, TYPE_SNOWFLAKE, &b62, 0, 1000, &e) == STORE_OK);
	make(&s, "p", TYPE_UUID7);
	for (int round = 0; round < 2; round++) {
		reopen(&s, dir);     /* the second time from the compacted journal */
		CHECK(style_is(&s, "u", &user) && style_is(&s, "f", &b62) && style_is(&s, "p", &plain));
		CHECK(store_compact(&s) == 0);
	}
	CHECK(store_delete(&s, "u", 1) == STORE_OK);
	make(&s, "u", TYPE_UUID7);
	CHECK(store_delete(&s, "p", 1) == STORE_OK);
	CHECK(store_init(&s, "p", 1, TYPE_UUID7, &user, 0, 1000, &e) == STORE_OK);
	reopen(&s, dir);
	CHECK(style_is(&s, "u", &plain) && style_is(&s, "p", &user));
	store_close(&s);
}

/* A BIND whose style does not suit its type (what the API refuses) is a
 * corrupt journal: the store does not open. */
static void test_style_misfit_refused(const char *dir)
{
	static const struct jrec bad[] = {
		{ .kind = JREC_BIND, .type = TYPE_INT, .name_len = 1, .name = "i", .text = "user", .text_len = 4 },
		{ .kind = JREC_BIND, .type = TYPE_UUID7, .name_len = 1, .name = "u", .value = FMT_BASE62 },
		{ .kind = JREC_BIND, .type = TYPE_SNOWFLAKE, .name_len = 1, .name = "s", .value = 2 },
		{ .kind = JREC_BIND, .type = TYPE_UUID7, .name_len = 1, .name = "u", .text = "_user", .text_len = 5 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char sub[4200], err[512];
		snprintf(sub, sizeof sub, "%s/%zu", dir, i);
		struct journal *j = journal_open(sub, NULL, NULL, err, sizeof err);
		CHECK(j && journal_append(j, &bad[i], 1) == 0);
		journal_close(j);
		struct store s;
		CHECK(store_open(&s, sub, 2, 3, &layout, 1, err, sizeof err) == -1);
		CHECK(strstr(err, "rejected the record") != NULL);
		store_close(&s);
	}
}

int main(void)
{
	check_mkdtemp(base, sizeof base, "test_store");
	char err[128];
	if (sf_layout_parse("sonyflake", &layout, err, sizeof err) != 0) {
		fprintf(stderr, "layout: %s\n", err);
		return 1;
	}
	log_set_level(LOG_WARN);   /* replay and compaction log at info */
	test_basics();
	test_delete_without_mark_forgets();
	in_dir("restart", test_restart_continues_above_reservations);
	in_dir("stop", test_clean_stop_continues_without_gap);
	in_dir("delete", test_delete_keeps_floor);
	in_dir("compact", test_compaction_keeps_tombstones);
	in_dir("compact-on-write", test_compaction_by_a_reservation_keeps_it);
	in_dir("torn", test_bind_alone_over_tombstone_starts_at_floor);
	in_dir("random", test_random_ops_never_repeat);
	in_dir("tsid", test_tsid_restart_floor);
	in_dir("style", test_style_is_durable);
	in_dir("misfit", test_style_misfit_refused);
	check_rmtree(base);
	return check_summary("store");
}
