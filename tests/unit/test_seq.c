/* Unit tests for seq.c (interleaved sequence arithmetic) and idtype.c. */
#include <stdint.h>
#include "check.h"
#include "idtype.h"
#include "seq.h"

typedef unsigned __int128 u128;

/* value(i) in 128 bits, so the checks never share seq.c's overflow reasoning. */
static u128 value128(const struct seq_shape *s, uint64_t i)
{
	return (u128)s->shard + (u128)i * s->total;
}

static void test_idtype(void)
{
	static const char *names[] = { "int", "long", "snowflake", "uuid8", "uuid12", "uuid16", "uuid22", "uuid7", "ulid" };
	enum id_type t;

	for (int i = 0; i < TYPE_COUNT; i++) {
		CHECK(id_type_parse(names[i], strlen(names[i]), &t) == 0 && t == (enum id_type)i);
		CHECK(strcmp(id_type_name((enum id_type)i), names[i]) == 0);
	}
	CHECK(id_type_tsid(TYPE_UUID7) == 0 && id_type_tsid(TYPE_ULID) == 1);
	CHECK(id_type_tsid(TYPE_SNOWFLAKE) == -1 && id_type_tsid(TYPE_UUID22) == -1);
	CHECK(id_type_uuid_len(TYPE_UUID7) == 0 && id_type_uuid_len(TYPE_ULID) == 0);
	CHECK(id_type_parse("Int", 3, &t) == -1);
	CHECK(id_type_parse("LONG", 4, &t) == -1);
	CHECK(id_type_parse("uuid", 4, &t) == -1);
	CHECK(id_type_parse("uuid32", 6, &t) == -1);
	CHECK(id_type_parse("int ", 4, &t) == -1);
	CHECK(id_type_parse("", 0, &t) == -1);
	CHECK(id_type_parse("longer", 4, &t) == 0 && t == TYPE_LONG);  /* length-bounded */
	CHECK(id_type_is_seq(TYPE_INT) && id_type_is_seq(TYPE_LONG));
	CHECK(!id_type_is_seq(TYPE_SNOWFLAKE) && !id_type_is_seq(TYPE_UUID8));
	CHECK_EQ_U64(id_type_uuid_len(TYPE_UUID8), 8);
	CHECK_EQ_U64(id_type_uuid_len(TYPE_UUID12), 12);
	CHECK_EQ_U64(id_type_uuid_len(TYPE_UUID16), 16);
	CHECK_EQ_U64(id_type_uuid_len(TYPE_UUID22), 22);
	CHECK_EQ_U64(id_type_uuid_len(TYPE_INT), 0);
	CHECK_EQ_U64(id_type_uuid_len(TYPE_SNOWFLAKE), 0);
}

static void test_values(void)
{
	struct seq_shape s = seq_shape_make(2, 3, TYPE_INT);

	CHECK_EQ_U64(s.max, SEQ_INT_MAX);
	CHECK_EQ_U64(seq_value(&s, 0), 2);
	CHECK_EQ_U64(seq_value(&s, 1), 5);
	CHECK_EQ_U64(seq_value(&s, 2), 8);
	s = seq_shape_make(1, 1, TYPE_LONG);
	CHECK_EQ_U64(s.max, SEQ_LONG_MAX);
	CHECK_EQ_U64(seq_value(&s, 0), 1);
	CHECK_EQ_U64(seq_value(&s, 41), 42);
}

/* For every shape: value(count-1) <= max < value(count), and snap agrees at
 * the last value, just below it, and just past it. */
static void check_edges(uint64_t shard, uint64_t total, enum id_type t)
{
	struct seq_shape s = seq_shape_make(shard, total, t);
	uint64_t n = seq_count(&s), i = 12345;
	int adj = -1;

	CHECK(n > 0);
	CHECK(value128(&s, n - 1) <= s.max);
	CHECK(value128(&s, n) > s.max);
	uint64_t last = seq_value(&s, n - 1);
	CHECK(seq_snap(&s, last, &i, &adj) == 0 && i == n - 1 && adj == 0);
	if (total > 1) {
		CHECK(seq_snap(&s, last - 1, &i, &adj) == 0 && i == n - 1 && adj == 1);
	}
	i = 777;
	CHECK(seq_snap(&s, last + 1, &i, &adj) == -1);
	CHECK(i == 777);  /* untouched on failure */
	CHECK(seq_snap(&s, s.max + 1, &i, &adj) == -1);
	CHECK(seq_snap(&s, UINT64_MAX, &i, &adj) == -1);
	CHECK(seq_snap(&s, UINT64_MAX - 1, &i, &adj) == -1);
}

static void test_edges(void)
{
	static const uint64_t shapes[][2] = {
		{ 1, 1 }, { 1, 2 }, { 2, 2 }, { 2, 3 }, { 3, 7 }, { 1, 1024 },
		{ 1024, 1024 }, { 512, 1000 }, { 7, 7 },
	};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		check_edges(shapes[k][0], shapes[k][1], TYPE_INT);
		check_edges(shapes[k][0], shapes[k][1], TYPE_LONG);
	}

	/* Exact counts worked out by hand. */
	struct seq_shape s = seq_shape_make(1, 1, TYPE_INT);
	CHECK_EQ_U64(seq_count(&s), 2147483647);
	CHECK_EQ_U64(seq_value(&s, seq_count(&s) - 1), SEQ_INT_MAX);
	s = seq_shape_make(1, 1, TYPE_LONG);
	CHECK_EQ_U64(seq_count(&s), UINT64_C(9223372036854775807));
	CHECK_EQ_U64(seq_value(&s, seq_count(&s) - 1), SEQ_LONG_MAX);
	s = seq_shape_make(1024, 1024, TYPE_INT);
	CHECK_EQ_U64(seq_count(&s), 2097151);  /* 1024 * 2097151 = 2147482624 */
	CHECK_EQ_U64(seq_value(&s, 2097150), 2147482624);
	s = seq_shape_make(1024, 1024, TYPE_LONG);
	CHECK_EQ_U64(seq_count(&s), UINT64_C(9007199254740991));  /* 2^53 - 1 */
	s = seq_shape_make(3, 7, TYPE_INT);
	CHECK_EQ_U64(seq_count(&s), 306783378);  /* (2147483647 - 3) / 7 + 1 */
	CHECK_EQ_U64(seq_value(&s, 306783377), 2147483642);
	/* 2147483647 = 7 * 306783378 + 1: shard 1 of 7 reaches max exactly. */
	s = seq_shape_make(1, 7, TYPE_INT);
	CHECK_EQ_U64(seq_value(&s, seq_count(&s) - 1), SEQ_INT_MAX);
}

static void test_snap(void)
{
	struct seq_shape s = seq_shape_make(2, 3, TYPE_INT);  /* 2, 5, 8, ... */
	uint64_t i;
	int adj;

	CHECK(seq_snap(&s, 0, &i, &adj) == 0 && i == 0 && adj == 1);
	CHECK(seq_snap(&s, 1, &i, &adj) == 0 && i == 0 && adj == 1);
	CHECK(seq_snap(&s, 2, &i, &adj) == 0 && i == 0 && adj == 0);
	CHECK(seq_snap(&s, 3, &i, &adj) == 0 && i == 1 && adj == 1);
	CHECK(seq_snap(&s, 4, &i, &adj) == 0 && i == 1 && adj == 1);
	CHECK(seq_snap(&s, 5, &i, &adj) == 0 && i == 1 && adj == 0);
	CHECK(seq_snap(&s, 6, &i, &adj) == 0 && i == 2 && adj == 1);
	CHECK(seq_snap(&s, 1000, &i, &adj) == 0 && i == 333 && adj == 1);  /* 1001 */
	CHECK(seq_snap(&s, 1001, &i, &adj) == 0 && i == 333 && adj == 0);

	/* Brute force: for each v, snap is the first i with value(i) >= v. */
	static const uint64_t shapes[][2] = { { 1, 1 }, { 2, 3 }, { 3, 7 }, { 5, 5 }, { 1, 16 } };
	int bad = 0;
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		s = seq_shape_make(shapes[k][0], shapes[k][1], TYPE_INT);
		uint64_t want = 0;
		for (uint64_t v = 0; v < 2000; v++) {
			while (seq_value(&s, want) < v)
				want++;
			if (seq_snap(&s, v, &i, &adj) != 0 || i != want ||
			    adj != (seq_value(&s, want) != v))
				bad++;
		}
	}
	CHECK(bad == 0);
}

/* seq_count against brute force with a small max (the shape's max is a plain
 * field, so the arithmetic can be exercised exhaustively). */
static void test_count_small(void)
{
	int bad = 0;

	for (uint64_t max = 0; max < 200; max++)
		for (uint64_t total = 1; total <= 12; total++)
			for (uint64_t shard = 1; shard <= total; shard++) {
				struct seq_shape s = { shard, total, max };
				uint64_t n = 0;
				while (shard + n * total <= max)
					n++;
				if (seq_count(&s) != n)
					bad++;
				uint64_t i;
				int adj;
				if (n > 0 && (seq_snap(&s, shard + (n - 1) * total, &i, &adj) != 0 ||
					      i != n - 1))
					bad++;
				if (seq_snap(&s, max + 1, &i, &adj) != -1)
					bad++;
			}
	CHECK(bad == 0);
}

int main(void)
{
	test_idtype();
	test_values();
	test_edges();
	test_snap();
	test_count_small();
	return check_summary("seq");
}
