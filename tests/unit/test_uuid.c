/* Unit tests for uuid.c: the byte-to-character mapping, rejection of biased
 * bytes, and a chi-square uniformity test of uuid_generate. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "uuid.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int index_of(char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;
	return p ? (int)(p - alphabet) : -1;
}

static void test_mapping(void)
{
	uint8_t all[256];
	char out[256];

	for (int b = 0; b < 256; b++)
		all[b] = (uint8_t)b;
	/* 0..247 map to alphabet[b % 62]; 248..255 are skipped. */
	CHECK_EQ_U64(uuid_from_bytes(all, 256, out, sizeof out), 248);
	int ok = 1;
	for (int b = 0; b < 248; b++)
		ok &= out[b] == alphabet[b % 62];
	CHECK(ok);

	const uint8_t v[] = { 0, 25, 26, 51, 52, 61, 62, 247 };
	CHECK_EQ_U64(uuid_from_bytes(v, sizeof v, out, sizeof v), 8);
	CHECK_STR(out, 8, "AZaz09A9");  /* 247 % 62 = 61 */

	/* Rejected bytes consume input but produce nothing. */
	const uint8_t r[] = { 248, 1, 255, 250, 2, 249, 251, 252, 253, 254, 3 };
	memset(out, '#', sizeof out);
	CHECK_EQ_U64(uuid_from_bytes(r, sizeof r, out, 3), 3);
	CHECK_STR(out, 4, "BCD#");
	/* Running out of bytes returns fewer chars; n bounds the output. */
	CHECK_EQ_U64(uuid_from_bytes(r, 6, out, 3), 2);
	CHECK_EQ_U64(uuid_from_bytes(r, sizeof r, out, 2), 2);
	CHECK_EQ_U64(uuid_from_bytes(r, sizeof r, out, 0), 0);
	CHECK_EQ_U64(uuid_from_bytes(r, 0, out, 5), 0);
	const uint8_t bad[] = { 248, 249, 250, 251, 252, 253, 254, 255 };
	CHECK_EQ_U64(uuid_from_bytes(bad, sizeof bad, out, 8), 0);
}

static void test_lengths(void)
{
	static const size_t lens[] = { 8, 12, 16, 22, 1, 600, 5000 };
	char buf[5002];

	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		size_t n = lens[k];
		memset(buf, 0, sizeof buf);
		CHECK(uuid_generate(buf, n) == 0);
		int ok = 1;
		for (size_t i = 0; i < n; i++)
			ok &= index_of(buf[i]) >= 0;
		CHECK(ok);
		CHECK(buf[n] == 0 && buf[n + 1] == 0);  /* nothing written past n */
	}
	CHECK(uuid_generate(buf, 0) == 0);

	/* Two uuid22 draws colliding would mean a broken source (2^-131). */
	char a[22], b[22];
	CHECK(uuid_generate(a, 22) == 0 && uuid_generate(b, 22) == 0);
	CHECK(memcmp(a, b, 22) != 0);
}

static double chi_square(const uint64_t counts[62], uint64_t total)
{
	double expected = (double)total / 62, chi = 0;

	for (int c = 0; c < 62; c++) {
		double d = (double)counts[c] - expected;
		chi += d * d / expected;
	}
	return chi;
}

/* 0.9999 quantile of chi-square with 61 degrees of freedom (62 characters).
 * A uniform source exceeds it in 1 run of 10,000; modulo bias (byte % 62
 * without rejection) gives about 13,000 on this sample size. */
#define CHI2_61_Q9999 110.84

static void test_uniform(void)
{
	enum { BIG = 1000000, SMALL = 22, CALLS = 45455 };  /* ~2,000,000 chars */
	char *buf = malloc(BIG);
	uint64_t counts[62] = { 0 }, total = 0;
	int ok = 1;

	CHECK(buf != NULL);
	if (!buf)
		return;
	/* One large draw (many getrandom chunks), then the production shape:
	 * many uuid22 strings. */
	ok &= uuid_generate(buf, BIG) == 0;
	for (size_t i = 0; i < BIG; i++) {
		int c = index_of(buf[i]);
		ok &= c >= 0;
		if (c >= 0)
			counts[c]++, total++;
	}
	for (int k = 0; k < CALLS; k++) {
		ok &= uuid_generate(buf, SMALL) == 0;
		for (size_t i = 0; i < SMALL; i++) {
			int c = index_of(buf[i]);
			ok &= c >= 0;
			if (c >= 0)
				counts[c]++, total++;
		}
	}
	CHECK(ok);
	CHECK_EQ_U64(total, BIG + (uint64_t)SMALL * CALLS);
	double chi = chi_square(counts, total);
	printf("uuid: chi-square %.1f over %llu chars (61 dof, limit %.2f)\n",
	       chi, (unsigned long long)total, CHI2_61_Q9999);
	CHECK(chi < CHI2_61_Q9999);

	/* The test has power: plain byte % 62 over a perfectly even byte
	 * stream of the same size is rejected by a wide margin. */
	uint64_t biased[62] = { 0 }, rounds = total / 256;
	for (int b = 0; b < 256; b++)
		biased[b % 62] += rounds;
	double chi_mod = chi_square(biased, rounds * 256);
	printf("uuid: chi-square of byte %% 62 would be %.0f\n", chi_mod);
	CHECK(chi_mod > 100 * CHI2_61_Q9999);
	free(buf);
}

int main(void)
{
	test_mapping();
	test_lengths();
	test_uniform();
	return check_summary("uuid");
}
