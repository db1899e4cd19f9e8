/* Unit tests for snowflake.c: layouts, bit packing and the generator, driven
 * by a fake clock. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "snowflake.h"

#define SONY_EPOCH    UINT64_C(1640995200000)  /* 2022-01-01T00:00:00Z */
#define TWITTER_EPOCH UINT64_C(1704067200000)  /* 2024-01-01T00:00:00Z */
#define NOW_2025      UINT64_C(1735689600000)  /* 2025-01-01T00:00:00Z */

static struct sf_layout layout(const char *spec)
{
	struct sf_layout l;
	char err[256] = "";

	if (sf_layout_parse(spec, &l, err, sizeof err) != 0) {
		fprintf(stderr, "layout %s: %s\n", spec, err);
		exit(1);
	}
	return l;
}

static int rejects(const char *spec, const char *needle1, const char *needle2)
{
	struct sf_layout l;
	char err[256] = "";

	if (sf_layout_parse(spec, &l, err, sizeof err) != -1)
		return 0;
	if (!strstr(err, needle1) || !strstr(err, needle2)) {
		fprintf(stderr, "message for '%s' lacks '%s'/'%s': %s\n", spec, needle1, needle2, err);
		return 0;
	}
	return 1;
}

static void test_layouts(void)
{
	struct sf_layout l = layout("sonyflake");
	CHECK(strcmp(l.name, "sonyflake") == 0);
	CHECK(l.order == SF_TIME_SEQ_MACHINE);
	CHECK(l.time_bits == 39 && l.seq_bits == 8 && l.machine_bits == 16);
	CHECK_EQ_U64(l.unit_ms, 10);
	CHECK_EQ_U64(l.epoch_ms, SONY_EPOCH);
	CHECK_EQ_U64(sf_max_machine(&l), 65535);
	CHECK_EQ_U64(sf_max_ids_per_second(&l), 25600);
	/* epoch + 2^39 * 10 ms = 2196-03-18T03:28:58.880Z */
	CHECK_EQ_U64(sf_exhausts_at_ms(&l), UINT64_C(7138553338880));

	l = layout("twitter");
	CHECK(strcmp(l.name, "twitter") == 0);
	CHECK(l.order == SF_TIME_MACHINE_SEQ);
	CHECK(l.time_bits == 41 && l.seq_bits == 12 && l.machine_bits == 10);
	CHECK_EQ_U64(l.unit_ms, 1);
	CHECK_EQ_U64(l.epoch_ms, TWITTER_EPOCH);
	CHECK_EQ_U64(sf_max_machine(&l), 1023);
	CHECK_EQ_U64(sf_max_ids_per_second(&l), 4096000);
	/* epoch + 2^41 ms = 2093-09-06T15:47:35.552Z */
	CHECK_EQ_U64(sf_exhausts_at_ms(&l), UINT64_C(3903090455552));

	l = layout("custom:10/8/16/1640995200000");
	CHECK(strcmp(l.name, "custom:10/8/16/1640995200000") == 0);
	CHECK(l.order == SF_TIME_MACHINE_SEQ);
	CHECK(l.time_bits == 39 && l.seq_bits == 8 && l.machine_bits == 16);
	CHECK_EQ_U64(l.unit_ms, 10);
	CHECK_EQ_U64(l.epoch_ms, SONY_EPOCH);

	l = layout("custom:1000/8/10/0");
	CHECK_EQ_U64(sf_max_ids_per_second(&l), 256);
	CHECK(l.time_bits == 45);

	/* Range edges that are accepted. */
	l = layout("custom:1/22/11/0");  /* exactly 30 time bits */
	CHECK(l.time_bits == 30 && l.seq_bits == 22 && l.machine_bits == 11);
	CHECK_EQ_U64(sf_exhausts_at_ms(&l), UINT64_C(1) << 30);
	l = layout("custom:1/13/0/0");   /* no machine field */
	CHECK(l.machine_bits == 0 && l.time_bits == 50);
	CHECK_EQ_U64(sf_max_machine(&l), 0);
	l = layout("custom:1/1/20/0");
	CHECK(l.seq_bits == 1 && l.machine_bits == 20 && l.time_bits == 42);
	l = layout("custom:86400000/1/0/4102444800000");
	CHECK(l.time_bits == 62 && l.unit_ms == 86400000 && l.epoch_ms == UINT64_C(4102444800000));
	CHECK_EQ_U64(sf_exhausts_at_ms(&l), UINT64_MAX);  /* beyond 64-bit ms: saturates */
	l = layout("custom:0010/08/016/0");  /* leading zeros are still decimal */
	CHECK(l.unit_ms == 10 && l.seq_bits == 8 && l.machine_bits == 16);

	CHECK(rejects("", "unknown snowflake layout ''", "sonyflake, twitter or custom:"));
	CHECK(rejects("Sonyflake", "'Sonyflake'", "expected sonyflake, twitter"));
	CHECK(rejects("twitter ", "'twitter '", "expected"));
	CHECK(rejects("custom", "'custom'", "expected"));
	CHECK(rejects("custom:", "'custom:'", "TIME_UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS"));
	CHECK(rejects("custom:1/8/10", "'custom:1/8/10'", "four decimal numbers"));
	CHECK(rejects("custom:1/8/10/0/5", "'custom:1/8/10/0/5'", "four decimal numbers"));
	CHECK(rejects("custom:1//10/0", "custom:1//10/0", "four decimal numbers"));
	CHECK(rejects("custom:1/8/10/", "custom:1/8/10/", "four decimal numbers"));
	CHECK(rejects("custom:+1/8/10/0", "custom:+1/8/10/0", "four decimal numbers"));
	CHECK(rejects("custom:-1/8/10/0", "custom:-1/8/10/0", "four decimal numbers"));
	CHECK(rejects("custom: 1/8/10/0", "custom: 1/8/10/0", "four decimal numbers"));
	CHECK(rejects("custom:1/8/10/0x10", "custom:1/8/10/0x10", "four decimal numbers"));
	CHECK(rejects("custom:1.5/8/10/0", "custom:1.5/8/10/0", "four decimal numbers"));
	CHECK(rejects("custom:0/8/10/0", "TIME_UNIT_MS 0 ", "1..86400000"));
	CHECK(rejects("custom:86400001/8/10/0", "TIME_UNIT_MS 86400001 ", "1..86400000"));
	CHECK(rejects("custom:99999999999999999999999/8/10/0",
		      "TIME_UNIT_MS 99999999999999999999999 ", "1..86400000"));
	CHECK(rejects("custom:1/0/10/0", "SEQ_BITS 0 ", "1..22"));
	CHECK(rejects("custom:1/23/0/0", "SEQ_BITS 23 ", "1..22"));
	CHECK(rejects("custom:1/8/21/0", "MACHINE_BITS 21 ", "0..20"));
	CHECK(rejects("custom:1/8/10/4102444800001", "EPOCH_MS 4102444800001 ", "0..4102444800000"));
	CHECK(rejects("custom:1/22/12/0", "leaves 29 time bits", "at least 30"));
	CHECK(rejects("custom:1/22/20/0", "leaves 21 time bits", "at least 30"));
	CHECK(rejects("custom:00000000000000000000000000000001/8/10/00000000000000000000000000",
		      "bytes long", "at most 63"));
}

static void test_packing(void)
{
	struct sf_layout sony = layout("sonyflake"), tw = layout("twitter");
	struct sf_layout cust = layout("custom:10/8/16/1640995200000");
	struct sf_layout nomachine = layout("custom:1/13/0/0");
	struct sf_layout *all[] = { &sony, &tw, &cust, &nomachine };
	struct sf_parts p;

	/* Known vectors. */
	CHECK_EQ_U64(sf_compose(&sony, 1, 2, 3), (UINT64_C(1) << 24) | (2 << 16) | 3);
	CHECK_EQ_U64(sf_compose(&tw, 1, 2, 3), (UINT64_C(1) << 22) | (3 << 12) | 2);
	CHECK_EQ_U64(sf_compose(&cust, 1, 2, 3), (UINT64_C(1) << 24) | (3 << 8) | 2);
	CHECK_EQ_U64(sf_compose(&nomachine, 1, 2, 0), (UINT64_C(1) << 13) | 2);
	CHECK(sf_decompose(&sony, (UINT64_C(1) << 24) | (2 << 16) | 3, &p) == 0);
	CHECK(p.tick == 1 && p.seq == 2 && p.machine == 3);
	CHECK_EQ_U64(p.unix_ms, SONY_EPOCH + 10);
	CHECK(sf_decompose(&tw, (UINT64_C(1000) << 22) | (5 << 12) | 7, &p) == 0);
	CHECK(p.tick == 1000 && p.seq == 7 && p.machine == 5);
	CHECK_EQ_U64(p.unix_ms, TWITTER_EPOCH + 1000);

	for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
		const struct sf_layout *l = all[k];
		uint64_t tmax = (UINT64_C(1) << l->time_bits) - 1;
		uint64_t smax = (UINT64_C(1) << l->seq_bits) - 1;
		uint64_t mmax = sf_max_machine(l);

		CHECK(l->time_bits + l->seq_bits + l->machine_bits == 63);
		/* All fields at their maximum fill exactly 63 bits. */
		CHECK_EQ_U64(sf_compose(l, tmax, smax, mmax), INT64_MAX);
		CHECK(sf_decompose(l, INT64_MAX, &p) == 0);
		CHECK(p.tick == tmax && p.seq == smax && p.machine == mmax);
		CHECK(sf_decompose(l, 0, &p) == 0 && p.tick == 0 && p.seq == 0 && p.machine == 0);
		CHECK_EQ_U64(p.unix_ms, l->epoch_ms);
		CHECK(sf_decompose(l, UINT64_C(1) << 63, &p) == -1);
		CHECK(sf_decompose(l, UINT64_MAX, &p) == -1);

		/* Pseudo-random round trips; order of IDs follows (tick, seq). */
		uint64_t x = 88172645463325252u;
		int bad = 0;
		for (int i = 0; i < 10000; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint64_t t = x & tmax, s = (x >> 40) & smax, m = (x >> 20) & mmax;
			uint64_t id = sf_compose(l, t, s, m);
			if (sf_decompose(l, id, &p) != 0 || p.tick != t || p.seq != s || p.machine != m ||
			    p.unix_ms != l->epoch_ms + t * l->unit_ms)
				bad++;
			if (s < smax && sf_compose(l, t, s + 1, m) <= id)
				bad++;
			if (t < tmax && sf_compose(l, t + 1, 0, m) <= id)
				bad++;
		}
		CHECK(bad == 0);
	}
}

/* ---- generator ---- */

struct issued { uint64_t *ids; size_t n, cap; };

static void keep(struct issued *s, uint64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
		if (!s->ids)
			abort();
	}
	s->ids[s->n++] = id;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* 1 when no ID repeats and the sequence strictly increases in issue order. */
static int all_unique_increasing(struct issued *s)
{
	for (size_t i = 1; i < s->n; i++)
		if (s->ids[i] <= s->ids[i - 1])
			return 0;
	qsort(s->ids, s->n, sizeof *s->ids, cmp_u64);
	for (size_t i = 1; i < s->n; i++)
		if (s->ids[i] == s->ids[i - 1])
			return 0;
	return 1;
}

/* A call that must fail without touching the generator. */
static enum sf_status next_unchanged(struct sf_gen *g, uint64_t now, uint64_t *wait)
{
	struct sf_gen before = *g;
	uint64_t id = 12345;
	enum sf_status st = sf_next(g, now, &id, wait);
	CHECK(st != SF_OK);
	CHECK(memcmp(&before, g, sizeof before) == 0);
	CHECK(id == 12345);
	return st;
}

static void test_gen_increasing(void)
{
	const char *specs[] = { "sonyflake", "twitter", "custom:1/13/0/0", "custom:1000/4/10/0" };

	for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
		struct sf_layout l = layout(specs[k]);
		struct sf_gen g;
		struct issued s = { 0 };
		uint64_t now = NOW_2025 + 7, x = 2463534242u, machine = sf_max_machine(&l) / 3;
		int bad = 0, waits = 0;

		sf_gen_init(&g, &l, machine, 0);
		g.fence_tick = UINT64_MAX;
		while (s.n < 200000) {
			uint64_t id, wait = 0;
			enum sf_status st = sf_next(&g, now, &id, &wait);
			if (st == SF_OK) {
				struct sf_parts p;
				keep(&s, id);
				if (sf_decompose(&l, id, &p) != 0 || p.tick != sf_tick_of(&l, now) ||
				    p.machine != machine)
					bad++;
			} else if (st == SF_WAIT && wait >= 1 && wait <= l.unit_ms) {
				waits++;
				now += wait;
				continue;
			} else {
				bad++;
				break;
			}
			/* The clock mostly stands still (so ticks fill up and the
			 * generator must wait), sometimes jumps ahead. */
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			if (x % 16384 == 0)
				now += x % 50;
		}
		CHECK(bad == 0);
		CHECK(waits > 0);
		CHECK(all_unique_increasing(&s));
		free(s.ids);
	}
}

static void test_gen_seq_overflow(void)
{
	struct sf_layout l = layout("sonyflake");
	struct sf_gen g;
	struct sf_parts p;
	uint64_t now = NOW_2025 + 3, tick = sf_tick_of(&l, now), id = 0, wait = 0, prev = 0;

	sf_gen_init(&g, &l, 7, 0);
	g.fence_tick = UINT64_MAX;
	int ok = 1;
	for (uint64_t i = 0; i < 256; i++) {
		ok &= sf_next(&g, now, &id, &wait) == SF_OK;
		ok &= sf_decompose(&l, id, &p) == 0 && p.tick == tick && p.seq == i && p.machine == 7;
		ok &= id > prev;
		prev = id;
	}
	CHECK(ok);
	/* 2025-01-01 + 3 ms lies 3 ms into a 10 ms tick: the next starts in 7 ms. */
	CHECK(next_unchanged(&g, now, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 7);
	CHECK(next_unchanged(&g, now + 6, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 1);
	CHECK(sf_next(&g, now + 7, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == tick + 1 && p.seq == 0);
	CHECK(id > prev);

	/* Twitter: 4096 per ms, then wait 1 ms. */
	l = layout("twitter");
	sf_gen_init(&g, &l, 1023, 0);
	g.fence_tick = UINT64_MAX;
	ok = 1;
	for (int i = 0; i < 4096; i++)
		ok &= sf_next(&g, NOW_2025, &id, &wait) == SF_OK;
	CHECK(ok);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.seq == 4095 && p.machine == 1023);
	CHECK(next_unchanged(&g, NOW_2025, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 1);
	CHECK(sf_next(&g, NOW_2025 + 1, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.seq == 0 &&
	      p.tick == sf_tick_of(&l, NOW_2025) + 1);
}

/* Batches may finish the tick that just ended before starting the new one;
 * single IDs never do. */
static void test_gen_carry_over(void)
{
	struct sf_layout l = layout("twitter");
	struct sf_gen g;
	struct sf_parts p;
	uint64_t t0 = sf_tick_of(&l, NOW_2025), id, wait, prev = 0;

	for (int carry = 0; carry <= 1; carry++) {
		sf_gen_init(&g, &l, 5, 0);
		g.fence_tick = UINT64_MAX;
		g.carry_over = carry;
		for (int i = 0; i < 3; i++)
			CHECK(sf_next(&g, NOW_2025, &id, &wait) == SF_OK);
		/* One tick later: carry-over continues tick t0 at sequence 3. */
		CHECK(sf_next(&g, NOW_2025 + 1, &id, &wait) == SF_OK);
		CHECK(sf_decompose(&l, id, &p) == 0);
		CHECK_EQ_U64(p.tick, carry ? t0 : t0 + 1);
		CHECK_EQ_U64(p.seq, carry ? 3 : 0);
	}

	/* Once t0 is used up the current tick starts at 0; two ticks later the
	 * old tick is never touched again (the lag is at most one tick). */
	sf_gen_init(&g, &l, 5, 0);
	g.fence_tick = UINT64_MAX;
	g.carry_over = 1;
	CHECK(sf_next(&g, NOW_2025, &prev, &wait) == SF_OK);
	int ok = 1;
	for (int i = 1; i < 4096; i++) {
		ok &= sf_next(&g, NOW_2025 + 1, &id, &wait) == SF_OK && id > prev;
		ok &= sf_decompose(&l, id, &p) == 0 && p.tick == t0 && p.seq == (uint64_t)i;
		prev = id;
	}
	CHECK(ok);
	CHECK(sf_next(&g, NOW_2025 + 1, &id, &wait) == SF_OK && id > prev);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == t0 + 1 && p.seq == 0);
	CHECK(sf_next(&g, NOW_2025 + 3, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == t0 + 3 && p.seq == 0);
}

static void test_gen_clock_backwards(void)
{
	struct sf_layout l = layout("sonyflake");
	struct sf_gen g;
	struct sf_parts p;
	struct issued s = { 0 };
	uint64_t now = NOW_2025 + 45, id, wait = 0;
	uint64_t t0 = sf_tick_of(&l, now);

	sf_gen_init(&g, &l, 1, 0);
	g.fence_tick = UINT64_MAX;
	for (int i = 0; i < 100; i++) {
		CHECK(sf_next(&g, now, &id, &wait) == SF_OK);
		keep(&s, id);
	}
	/* The clock steps back 3 s: the remaining 156 sequences of t0 are used,
	 * then the generator waits for the clock to pass t0. */
	now -= 3000;
	int ok = 1;
	for (int i = 100; i < 256; i++) {
		ok &= sf_next(&g, now, &id, &wait) == SF_OK;
		ok &= sf_decompose(&l, id, &p) == 0 && p.tick == t0 && p.seq == (uint64_t)i;
		keep(&s, id);
		now += i % 2;  /* the clock crawls forward, still behind */
	}
	CHECK(ok);
	CHECK(next_unchanged(&g, now, &wait) == SF_WAIT);
	/* t0 + 1 starts at NOW_2025 + 50. */
	CHECK_EQ_U64(wait, NOW_2025 + 50 - now);
	CHECK(wait > 2900 && wait < 3000);
	CHECK(next_unchanged(&g, now + wait - 1, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 1);
	now = NOW_2025 + 50;
	for (int i = 0; i < 1000; i++) {
		enum sf_status st = sf_next(&g, now, &id, &wait);
		if (st == SF_OK)
			keep(&s, id);
		else
			now += wait;
	}
	CHECK(sf_decompose(&l, s.ids[s.n - 1], &p) == 0 && p.tick > t0);
	CHECK(all_unique_increasing(&s));
	free(s.ids);
}

static void test_gen_resume(void)
{
	struct sf_layout l = layout("twitter");
	struct sf_gen g;
	struct sf_parts p;
	uint64_t now = NOW_2025, id, wait = 0;
	/* The previous process persisted a fence 2 s ahead of this clock. */
	uint64_t resume = sf_tick_of(&l, now) + 2000;

	sf_gen_init(&g, &l, 9, resume);
	CHECK_EQ_U64(g.fence_tick, resume);
	CHECK(next_unchanged(&g, now, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 2001);  /* until tick resume + 1 begins */
	now += wait;
	CHECK(next_unchanged(&g, now, &wait) == SF_NEED_FENCE);
	g.fence_tick = sf_tick_of(&l, now) + 1000;  /* caller persisted a new fence */
	CHECK(sf_next(&g, now, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == resume + 1 && p.seq == 0 && p.machine == 9);

	/* Fence already in the past: only a new fence is needed. */
	resume = sf_tick_of(&l, NOW_2025) - 5;
	sf_gen_init(&g, &l, 9, resume);
	CHECK(next_unchanged(&g, NOW_2025, &wait) == SF_NEED_FENCE);
	g.fence_tick = sf_tick_of(&l, NOW_2025) + 1;
	CHECK(sf_next(&g, NOW_2025, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == sf_tick_of(&l, NOW_2025) && p.tick > resume);

	/* Sonyflake: the fence tick itself is never reused, even at a coarse unit. */
	l = layout("sonyflake");
	resume = sf_tick_of(&l, NOW_2025);
	sf_gen_init(&g, &l, 9, resume);
	g.fence_tick = UINT64_MAX;
	CHECK(next_unchanged(&g, NOW_2025 + 9, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 1);
	CHECK(sf_next(&g, NOW_2025 + 10, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == resume + 1);
}

static void test_gen_fence(void)
{
	struct sf_layout l = layout("twitter");
	struct sf_gen g;
	struct sf_parts p;
	uint64_t now = NOW_2025, id, wait = 0, t0 = sf_tick_of(&l, now);

	/* A fresh generator asks for a fence before its first ID. */
	sf_gen_init(&g, &l, 0, 0);
	CHECK_EQ_U64(g.fence_tick, 0);
	CHECK(next_unchanged(&g, now, &wait) == SF_NEED_FENCE);
	g.fence_tick = t0 + 3;
	int n = 0;
	for (int i = 0; i < 100000; i++) {
		enum sf_status st = sf_next(&g, now, &id, &wait);
		if (st == SF_OK)
			n++;
		else if (st == SF_WAIT)
			now += wait;
		else
			break;
	}
	/* Ticks t0..t0+2 give 3 * 4096 IDs, then t0 + 3 needs a fence. */
	CHECK_EQ_U64(n, 3 * 4096);
	CHECK_EQ_U64(sf_tick_of(&l, now), t0 + 3);
	CHECK(next_unchanged(&g, now, &wait) == SF_NEED_FENCE);
	g.fence_tick = UINT64_MAX;
	CHECK(sf_next(&g, now, &id, &wait) == SF_OK);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == t0 + 3 && p.seq == 0);
}

static void test_gen_exhausted(void)
{
	struct sf_layout l = layout("custom:1/13/20/0");  /* 30 time bits of 1 ms from 1970 */
	struct sf_gen g;
	struct sf_parts p;
	uint64_t end = UINT64_C(1) << 30, id, wait = 0;

	CHECK_EQ_U64(sf_exhausts_at_ms(&l), end);
	sf_gen_init(&g, &l, 5, 0);
	g.fence_tick = UINT64_MAX;
	CHECK(next_unchanged(&g, end, &wait) == SF_EXHAUSTED);
	CHECK(next_unchanged(&g, NOW_2025, &wait) == SF_EXHAUSTED);
	/* The last tick still works, until its sequence space is used up. */
	int ok = 1;
	for (int i = 0; i < 8192; i++)
		ok &= sf_next(&g, end - 1, &id, &wait) == SF_OK;
	CHECK(ok);
	CHECK(sf_decompose(&l, id, &p) == 0 && p.tick == end - 1 && p.seq == 8191);
	CHECK_EQ_U64(id, INT64_MAX - (UINT64_C(0xfffff) - 5) * 8192);
	CHECK(next_unchanged(&g, end - 1, &wait) == SF_EXHAUSTED);
	CHECK(next_unchanged(&g, end - 1000, &wait) == SF_EXHAUSTED);

	/* Before the epoch. */
	l = layout("twitter");
	sf_gen_init(&g, &l, 5, 0);
	g.fence_tick = UINT64_MAX;
	CHECK(next_unchanged(&g, TWITTER_EPOCH - 1, &wait) == SF_EXHAUSTED);
	CHECK(next_unchanged(&g, 0, &wait) == SF_EXHAUSTED);
	CHECK(sf_next(&g, TWITTER_EPOCH, &id, &wait) == SF_OK);
	CHECK_EQ_U64(id, 5 << 12);
	CHECK(next_unchanged(&g, TWITTER_EPOCH - 1, &wait) != SF_OK);
	CHECK_EQ_U64(sf_tick_of(&l, TWITTER_EPOCH - 1), 0);
	CHECK_EQ_U64(sf_tick_of(&l, TWITTER_EPOCH + 12345), 12345);
}

int main(void)
{
	test_layouts();
	test_packing();
	test_gen_increasing();
	test_gen_seq_overflow();
	test_gen_carry_over();
	test_gen_clock_backwards();
	test_gen_resume();
	test_gen_fence();
	test_gen_exhausted();
	return check_summary("snowflake");
}
