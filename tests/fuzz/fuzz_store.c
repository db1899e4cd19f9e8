/* libFuzzer target for store.c over a real journal (in /dev/shm when it is
 * there). The input is a program of operations on four names: take k
 * values, delete, init with or without a start value, forward reset,
 * restart (crash, or clean stop, then replay) and compaction. Checked against a model:
 *  - no value of a name is ever handed out twice: without force, each one is
 *    larger than every earlier one, across deletes, re-creations with the
 *    other sequence type, restarts and compactions;
 *  - every value lies in this shard's residue class;
 *  - which names exist, and their types, match the model after every step. */
#include "log.h"
#include "store.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MUST(c) do { if (!(c)) { fprintf(stderr, "MUST failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

#define SHARD 2
#define TOTAL 3
#define NAMES 4

static char dir[256];
static struct sf_layout layout;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static void setup(void)
{
	char err[128];
	const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/fuzz_store.%d", t, (int)getpid());
	MUST(sf_layout_parse("sonyflake", &layout, err, sizeof err) == 0);
	log_set_level(LOG_ERROR);
}

static void open_store(struct store *s)
{
	char err[256];
	if (store_open(s, dir, SHARD, TOTAL, &layout, 1, err, sizeof err) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		abort();
	}
}

struct model {
	int live;
	enum id_type type;
	uint64_t last;       /* largest value handed out so far (0: none) */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		setup();
		ready = 1;
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	MUST(mkdir(dir, 0700) == 0);

	static const char *const names[NAMES] = { "a", "b", "c", "d" };
	struct model m[NAMES];
	memset(m, 0, sizeof m);
	struct store s;
	open_store(&s);
	uint64_t now = 1000;
	for (size_t pos = 0; pos + 2 <= size && pos < 600; pos += 3) {
		uint8_t op = data[pos] % 8, n = (data[pos] >> 3) % NAMES;
		uint8_t arg = data[pos + 1], arg2 = pos + 2 < size ? data[pos + 2] : 0;
		const char *name = names[n];
		struct entity *e = store_find(&s, name, 1);
		now += arg2;
		switch (op) {
		case 0: case 1: {                        /* take 1..256 values */
			enum id_type t = arg2 & 1 ? TYPE_LONG : TYPE_INT;
			if (!e) {
				uint64_t floor = store_floor(&s, name, 1);
				MUST(store_init(&s, name, 1, t, NULL, floor, now, &e) == STORE_OK);
				m[n].live = 1;
				m[n].type = t;
			}
			uint64_t first, k = (uint64_t)arg + 1;
			enum store_status st = store_take(&s, e, k, now, &first);
			if (st == STORE_EXHAUSTED)
				break;
			MUST(st == STORE_OK);
			uint64_t v = entity_value(e, first), w = entity_value(e, first + k - 1);
			MUST(v > m[n].last);
			MUST(v % TOTAL == SHARD % TOTAL && w % TOTAL == SHARD % TOTAL);
			MUST(w >= v);
			m[n].last = w;
			break;
		}
		case 2:                                  /* delete */
			MUST(store_delete(&s, name, 1) == (e ? STORE_OK : STORE_NOT_FOUND));
			m[n].live = 0;
			break;
		case 3: {                                /* init, maybe with a start value */
			enum id_type t = arg2 & 1 ? TYPE_LONG : TYPE_INT;
			struct seq_shape shape = seq_shape_make(SHARD, TOTAL, t);
			uint64_t floor = store_floor(&s, name, 1), start = floor;
			if (arg & 1) {
				/* What api.c does: a start below the floor needs force. */
				start = (uint64_t)arg * (uint64_t)(arg2 + 1);
				if (start < floor)
					break;
			}
			if (start >= seq_count(&shape))
				break;
			enum store_status st = store_init(&s, name, 1, t, NULL, start, now, &e);
			MUST(st == (m[n].live ? STORE_EXISTS : STORE_OK));
			if (st == STORE_OK) {
				m[n].live = 1;
				m[n].type = t;
			}
			break;
		}
		case 4:                                  /* forward reset */
			if (e && id_type_is_seq(e->type)) {
				uint64_t i = e->next_i + arg;
				if (i < seq_count(&e->shape))
					MUST(store_reset(&s, e, i, 0) == STORE_OK);
			}
			break;
		case 5:                                  /* restart: crash or clean stop */
			if (arg & 1)
				MUST(store_stop(&s) == 0);
			store_close(&s);
			open_store(&s);
			break;
		case 6:
			MUST(store_compact(&s) == 0);
			break;
		default:                                 /* just let time pass */
			now += (uint64_t)arg * 1000;
			break;
		}
		size_t live = 0;
		for (int i = 0; i < NAMES; i++) {
			struct entity *x = store_find(&s, names[i], 1);
			MUST(!!x == m[i].live);
			MUST(!x || x->type == m[i].type);
			live += m[i].live;
		}
		MUST(s.count == live);
	}
	store_close(&s);
	return 0;
}
