/* Store tests: sequences over a real journal in a temp directory, with the
 * focus on what a restart must not lose: reservations, resets and the
 * tombstones that keep a deleted sequence's high-water mark, through replay
 * and through compaction. */
#include "check.h"
#include "log.h"
#include "store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];
static struct sf_layout layout;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

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
	CHECK(store_init(s, name, strlen(name), t, floor, 1000, &e) == STORE_OK);
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
	CHECK(store_init(&s, "a", 1, TYPE_LONG, 0, 0, &e) == STORE_EXISTS);
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

int main(void)
{
	const char *t = getenv("TMPDIR");
	if (!t || !*t)
		t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(base, sizeof base, "%s/test_store.XXXXXX", t);
	char err[128];
	if (!mkdtemp(base) || sf_layout_parse("sonyflake", &layout, err, sizeof err) != 0) {
		perror("setup");
		return 1;
	}
	log_level = LOG_WARN;   /* replay and compaction log at info */
	char dir[300];
	test_basics();
	test_delete_without_mark_forgets();
	snprintf(dir, sizeof dir, "%s/restart", base);
	mkdir(dir, 0700);
	test_restart_continues_above_reservations(dir);
	snprintf(dir, sizeof dir, "%s/delete", base);
	mkdir(dir, 0700);
	test_delete_keeps_floor(dir);
	snprintf(dir, sizeof dir, "%s/compact", base);
	mkdir(dir, 0700);
	test_compaction_keeps_tombstones(dir);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_summary("store");
}
