/* Unit tests for sort.c (heapsort with qsort's contract) and lex_find
 * (http_lex.c, memmem's contract): both against the C library's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "http_lex.h"
#include "sort.h"

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* A record larger than a word, keyed by its first byte: ties are common. */
struct rec { unsigned char key; char pad[37]; };
static int by_key(const void *a, const void *b)
{
	return ((const struct rec *)a)->key - ((const struct rec *)b)->key;
}

static void test_sort_like_qsort(void)
{
	unsigned bad = 0;
	static uint32_t v[5000], w[5000];
	for (size_t n = 0; n <= 5000; n = n < 40 ? n + 1 : n * 3 / 2) {
		for (int pattern = 0; pattern < 4; pattern++) {
			for (size_t i = 0; i < n; i++)   /* random, few distinct, ascending, descending */
				v[i] = pattern == 0 ? (uint32_t)check_rnd(UINT32_MAX) : pattern == 1 ? (uint32_t)check_rnd(3) :
				       pattern == 2 ? (uint32_t)i : (uint32_t)(n - i);
			memcpy(w, v, n * sizeof *v);
			sort(v, n, sizeof *v, by_u32);
			qsort(w, n, sizeof *w, by_u32);
			bad += memcmp(v, w, n * sizeof *v) != 0;
		}
	}
	CHECK_EQ_U64(bad, 0);

	/* Large elements move whole: the multiset of records is kept. */
	static struct rec r[777];
	unsigned long sum_before = 0, sum_after = 0;
	for (size_t i = 0; i < 777; i++) {
		r[i].key = (unsigned char)check_rnd(50);
		memset(r[i].pad, (int)(i & 0x7F), sizeof r[i].pad);
		sum_before += r[i].key * 131u + (unsigned char)r[i].pad[36];
	}
	sort(r, 777, sizeof r[0], by_key);
	for (size_t i = 0; i < 777; i++) {
		sum_after += r[i].key * 131u + (unsigned char)r[i].pad[36];
		bad += i && r[i - 1].key > r[i].key;
		bad += memcmp(r[i].pad, r[i].pad + 1, sizeof r[i].pad - 1) != 0;   /* not torn */
	}
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(sum_after, sum_before);
}

static void test_lex_find_like_memmem(void)
{
	unsigned bad = 0;
	char hay[64], needle[8];
	for (int round = 0; round < 20000; round++) {
		size_t n = check_rnd(sizeof hay + 1), m = check_rnd(sizeof needle + 1);
		for (size_t i = 0; i < n; i++)
			hay[i] = (char)('a' + check_rnd(3));
		for (size_t i = 0; i < m; i++)
			needle[i] = (char)('a' + check_rnd(3));
		bad += lex_find(hay, n, needle, m) != memmem(hay, n, needle, m);
	}
	CHECK_EQ_U64(bad, 0);
	static const char body[] = "{\"Session\":\"x\"}";
	CHECK(lex_find(body, sizeof body - 1, "\"Session\"", 9) == body + 1);
	CHECK(lex_find(body, 5, "\"Session\"", 9) == NULL);   /* never past n */
}

int main(void)
{
	test_sort_like_qsort();
	test_lex_find_like_memmem();
	return check_summary("sort");
}
