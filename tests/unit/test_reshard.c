/* Unit tests for reshard.c's arithmetic (the Consul side runs in
 * tests/blackbox/test_reshard.py against a real agent) and seq_first_from.
 *
 * For every old layout N and new layout M up to 6 shards, random marks per
 * old shard: every value a new shard may hand out lies above every value
 * any old shard may have handed out, and the first of them is the new
 * shard's lowest value at or above the entity's floor. */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "kv_line.h"
#include "reshard.h"
#include "seq.h"

static void test_every_layout_change(void)
{
	unsigned bad = 0, runs = 0;
	for (unsigned n = 1; n <= 6; n++)
		for (unsigned m = 1; m <= 6; m++)
			for (int round = 0; round < 200; round++) {
				struct reshard_entity merged;
				uint64_t highest = 0;   /* the largest value any old shard may have used */
				memset(&merged, 0, sizeof merged);
				for (unsigned k = 1; k <= n; k++) {
					uint64_t mark = check_rnd(4) ? check_rnd(1000) : 0;
					struct kv_entity e = kv_line("e", TYPE_LONG, mark ? check_rnd(mark) : 0, mark, 0);
					reshard_merge(&merged, &e, k, n);
					if (mark && k + (mark - 1) * n > highest)
						highest = k + (mark - 1) * n;
				}
				for (unsigned k = 1; k <= m; k++) {
					struct kv_entity out;
					reshard_line(&merged, k, m, &out);
					uint64_t first = k + out.mark_i * m;
					runs++;
					/* above every old value; the lowest value of shard k at
					 * or above the floor (which lies above them all) */
					bad += first <= highest || merged.floor <= highest || first < merged.floor ||
					       (out.mark_i && first - m >= merged.floor) ||
					       out.start_i != out.mark_i || out.type != TYPE_LONG || out.deleted;
				}
			}
	CHECK(runs == 6 * 200 * 21);   /* 6 old layouts, 200 rounds, 1 + 2 + ... + 6 new shards */
	CHECK_EQ_U64(bad, 0);
}

static void test_examples(void)
{
	/* 2 -> 3: shard 1 used 1, 3, 5 (mark 3), shard 2 used 2, 4 (mark 2):
	 * below 7 and 6 everything may be taken; the new shards go on from 7. */
	struct reshard_entity m;
	struct kv_entity out, a = kv_line("orders", TYPE_INT, 0, 3, 0), b = kv_line("orders", TYPE_INT, 0, 2, 0);
	memset(&m, 0, sizeof m);
	reshard_merge(&m, &a, 1, 2);
	reshard_merge(&m, &b, 2, 2);
	CHECK_EQ_U64(m.floor, 7);
	reshard_line(&m, 1, 3, &out);
	CHECK_EQ_U64(1 + out.mark_i * 3, 7);
	reshard_line(&m, 2, 3, &out);
	CHECK_EQ_U64(2 + out.mark_i * 3, 8);
	reshard_line(&m, 3, 3, &out);
	CHECK_EQ_U64(3 + out.mark_i * 3, 9);
	CHECK(out.name_len == 6 && memcmp(out.name, "orders", 6) == 0);

	/* An int sequence used up on one old shard: used up on every new one. */
	struct seq_shape s = seq_shape_make(1, 2, TYPE_INT);
	struct kv_entity full = kv_line("full", TYPE_INT, 0, seq_count(&s), 0);
	memset(&m, 0, sizeof m);
	reshard_merge(&m, &full, 1, 2);
	for (unsigned k = 1; k <= 3; k++) {
		struct seq_shape t = seq_shape_make(k, 3, TYPE_INT);
		reshard_line(&m, k, 3, &out);
		CHECK_EQ_U64(out.mark_i, seq_count(&t));
	}

	/* Deleted on one shard, live on another: live, with the highest floor. */
	struct kv_entity gone = kv_line("x", TYPE_LONG, 0, 50, 1), live = kv_line("x", TYPE_LONG, 0, 10, 0);
	memset(&m, 0, sizeof m);
	reshard_merge(&m, &gone, 1, 2);
	reshard_merge(&m, &live, 2, 2);
	CHECK(!m.e.deleted);
	CHECK_EQ_U64(m.floor, 1 + 50 * 2);
	/* Deleted everywhere: a tombstone that still holds the floor. */
	memset(&m, 0, sizeof m);
	reshard_merge(&m, &gone, 1, 2);
	reshard_line(&m, 1, 1, &out);
	CHECK(out.deleted && 1 + out.mark_i == 101);   /* value 101 of shard 1 of 1 */

	/* Time-based and random types carry no sequence: their line as it was. */
	struct kv_entity sf = kv_line("sf", TYPE_SNOWFLAKE, 0, 0, 0);
	memset(&m, 0, sizeof m);
	reshard_merge(&m, &sf, 2, 2);
	reshard_line(&m, 3, 4, &out);
	CHECK(out.type == TYPE_SNOWFLAKE && out.start_i == 0 && out.mark_i == 0 && m.floor == 0);
}

static void test_first_from(void)
{
	struct seq_shape s = seq_shape_make(2, 3, TYPE_INT);   /* 2, 5, 8, ... */
	CHECK_EQ_U64(seq_first_from(&s, 0), 0);
	CHECK_EQ_U64(seq_first_from(&s, 2), 0);
	CHECK_EQ_U64(seq_first_from(&s, 3), 1);
	CHECK_EQ_U64(seq_first_from(&s, 5), 1);
	CHECK_EQ_U64(seq_first_from(&s, 6), 2);
	CHECK_EQ_U64(seq_first_from(&s, SEQ_INT_MAX + 1), seq_count(&s));
	CHECK_EQ_U64(seq_first_from(&s, UINT64_MAX), seq_count(&s));
}

int main(void)
{
	test_every_layout_change();
	test_examples();
	test_first_from();
	return check_summary("reshard");
}
