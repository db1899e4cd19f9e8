/* Unit tests for tsid.c: UUIDv7, ULID and TypeID layouts against the
 * published examples, base32/base62 round trips of edge values, and the
 * generator's monotonicity across milliseconds, exhaustion and clock steps. */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "tsid.h"

static void be(uint64_t hi, uint64_t lo, uint8_t id[16])
{
	for (int i = 0; i < 8; i++) {
		id[i] = (uint8_t)(hi >> (56 - 8 * i));
		id[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
}

static void test_examples(void)
{
	uint8_t id[16], back[16];
	char s[36];
	/* RFC 9562 A.6: ms 0x017F22E279B0, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F. */
	struct tsid_gen g;
	tsid_gen_init(&g, TSID_UUID7, 0);
	const uint8_t rnd[TSID_RANDOM] = { 0x04, 0xc3, 0x18, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f };
	uint64_t wait;
	CHECK(tsid_next(&g, 0x017F22E279B0ull, rnd, id, &wait) == SF_OK);
	tsid_uuid_text(id, s);
	/* The generator seeds the counter below 2048, so 0xCC3 comes out as 0x4C3. */
	CHECK_STR(s, 36, "017f22e2-79b0-74c3-98c4-dc0c0c07398f");
	CHECK(tsid_uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 36, id) == 0);
	tsid_uuid_text(id, s);
	CHECK_STR(s, 36, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
	CHECK_EQ_U64(tsid_ms(id), 0x017F22E279B0ull);
	CHECK(tsid_uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398", 35, id) == -1);
	CHECK(tsid_uuid_parse("017f22e2x79b0-7cc3-98c4-dc0c0c07398f", 36, id) == -1);
	CHECK(tsid_uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398g", 36, id) == -1);

	/* TypeID spec (valid.yml): "valid-uuidv7" and "valid-alphabet". */
	char t[26];
	CHECK(tsid_uuid_parse("01890a5d-ac96-774b-bcce-b302099a8057", 36, id) == 0);
	tsid_base32(id, 1, t);
	CHECK_STR(t, 26, "01h455vb4pex5vsknk084sn02q");
	CHECK(tsid_base32_parse("0123456789abcdefghjkmnpqrs", 26, 1, back) == 0);
	tsid_uuid_text(back, s);
	CHECK_STR(s, 36, "0110c853-1d09-52d8-d73e-1194e95b5f19");
	CHECK(tsid_base32_parse("0123456789ABCDEFGHJKMNPQRS", 26, 1, back) == -1);
	CHECK(tsid_base32_parse("8zzzzzzzzzzzzzzzzzzzzzzzzz", 26, 1, back) == -1);
	CHECK(tsid_base32_parse("0123456789abcdefghjkmnpqri", 26, 1, back) == -1);
	CHECK(tsid_base32_parse("7zzzzzzzzzzzzzzzzzzzzzzzzz", 26, 1, back) == 0);
	tsid_uuid_text(back, s);
	CHECK_STR(s, 36, "ffffffff-ffff-ffff-ffff-ffffffffffff");
	CHECK(tsid_base32_parse("0000000000000000000000000g", 26, 1, back) == 0);
	CHECK(back[15] == 16);

	/* ULID spec: seed time 1469918176385 gives "01ARYZ6S41" for the time part. */
	tsid_gen_init(&g, TSID_ULID, 0);
	CHECK(tsid_next(&g, 1469918176385ull, rnd, id, &wait) == SF_OK);
	tsid_base32(id, 0, t);
	CHECK_STR(t, 10, "01ARYZ6S41");
	CHECK(tsid_base32_parse("01ARYZ6S41TSV4RRFFQ69G5FAV", 26, 0, back) == 0);
	CHECK_EQ_U64(tsid_ms(back), 1469918176385ull);
	tsid_base32(back, 0, t);
	CHECK_STR(t, 26, "01ARYZ6S41TSV4RRFFQ69G5FAV");
	CHECK(tsid_base32_parse("01aryz6s41tsv4rrffq69g5fav", 26, 0, back) == 0);
	tsid_base32(back, 0, t);
	CHECK_STR(t, 26, "01ARYZ6S41TSV4RRFFQ69G5FAV");
}

static void test_layout(void)
{
	struct tsid_gen g;
	uint8_t id[16], rnd[TSID_RANDOM];
	uint64_t wait;
	memset(rnd, 0xff, sizeof rnd);
	tsid_gen_init(&g, TSID_UUID7, 0);
	CHECK(tsid_next(&g, (1ull << 48) - 1, rnd, id, &wait) == SF_OK);
	CHECK(id[6] >> 4 == 7);            /* version */
	CHECK(id[8] >> 6 == 2);            /* variant 10 */
	CHECK((id[6] & 0x0f) == 7);        /* counter seed below 2048 */
	CHECK_EQ_U64(tsid_ms(id), (1ull << 48) - 1);
	tsid_gen_init(&g, TSID_UUID7, 0);
	CHECK(tsid_next(&g, 1ull << 48, rnd, id, &wait) == SF_EXHAUSTED);

	tsid_uuid7_floor(1000, id);
	char s[36];
	tsid_uuid_text(id, s);
	CHECK_STR(s, 36, "00000000-03e8-7000-8000-000000000000");

	/* base32 edge values round trip. */
	char t[26];
	uint8_t back[16];
	const uint64_t edges[][2] = { { 0, 0 }, { 0, 1 }, { 0, INT64_MAX }, { 0, UINT64_MAX },
				      { UINT64_MAX, UINT64_MAX }, { 1ull << 63, 0 } };
	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		be(edges[i][0], edges[i][1], id);
		tsid_base32(id, i & 1, t);
		CHECK(tsid_base32_parse(t, 26, i & 1, back) == 0 && memcmp(id, back, 16) == 0);
	}
	be(0, 0, id);
	tsid_base32(id, 0, t);
	CHECK_STR(t, 26, "00000000000000000000000000");
}

static void test_base62(void)
{
	char s[TSID_B62_LEN];
	uint64_t v;
	tsid_base62(0, s);
	CHECK_STR(s, 11, "00000000000");
	tsid_base62(61, s);
	CHECK_STR(s, 11, "0000000000z");
	tsid_base62(62, s);
	CHECK_STR(s, 11, "00000000010");
	tsid_base62(INT64_MAX, s);
	CHECK_STR(s, 11, "AzL8n0Y58m7");
	CHECK(tsid_base62_parse(s, 11, &v) == 0 && v == INT64_MAX);
	tsid_base62(UINT64_MAX, s);
	CHECK_STR(s, 11, "LygHa16AHYF");
	CHECK(tsid_base62_parse(s, 11, &v) == 0 && v == UINT64_MAX);
	CHECK(tsid_base62_parse("LygHa16AHYG", 11, &v) == -1);   /* 2^64 */
	CHECK(tsid_base62_parse("zzzzzzzzzzz", 11, &v) == -1);
	CHECK(tsid_base62_parse("0000000000", 10, &v) == -1);
	CHECK(tsid_base62_parse("0000000000-", 11, &v) == -1);
	/* Byte order equals numeric order. */
	char a[TSID_B62_LEN], b[TSID_B62_LEN];
	uint64_t x = 1;
	int ok = 1;
	for (int i = 0; i < 2000; i++) {
		uint64_t y = x + (x >> 3) + (uint64_t)i;
		if (y <= x)
			break;   /* wrapped past 2^64-1 */
		tsid_base62(x, a);
		tsid_base62(y, b);
		ok &= memcmp(a, b, 11) < 0;
		CHECK(tsid_base62_parse(b, 11, &v) == 0);
		ok &= v == y;
		x = y;
	}
	CHECK(ok);
}

static int less(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 16) < 0;
}

static void test_monotonic(enum tsid_kind kind)
{
	struct tsid_gen g;
	uint8_t prev[16], id[16], rnd[TSID_RANDOM];
	uint64_t wait = 0;
	memset(rnd, 0, sizeof rnd);
	tsid_gen_init(&g, kind, 1000);
	/* Below the floor: wait until it. */
	CHECK(tsid_next(&g, 990, rnd, id, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 10);
	CHECK(tsid_next(&g, 1000, rnd, prev, &wait) == SF_OK);
	CHECK_EQ_U64(tsid_ms(prev), 1000);
	/* Random bytes that would sort lower do not make a lower ID. */
	memset(rnd, 0xff, sizeof rnd);
	CHECK(tsid_next(&g, 1000, rnd, id, &wait) == SF_OK && less(prev, id));
	memcpy(prev, id, 16);
	memset(rnd, 0, sizeof rnd);
	CHECK(tsid_next(&g, 1000, rnd, id, &wait) == SF_OK && less(prev, id));
	memcpy(prev, id, 16);
	/* Clock steps back: IDs continue in the last millisecond. */
	CHECK(tsid_next(&g, 500, rnd, id, &wait) == SF_OK && less(prev, id));
	CHECK_EQ_U64(tsid_ms(id), 1000);
	memcpy(prev, id, 16);
	/* Next millisecond. */
	CHECK(tsid_next(&g, 1001, rnd, id, &wait) == SF_OK && less(prev, id));
	CHECK_EQ_U64(tsid_ms(id), 1001);
	memcpy(prev, id, 16);
	/* Raising the floor (a merged fence) moves past it. */
	tsid_raise_floor(&g, 500);
	CHECK(tsid_next(&g, 1001, rnd, id, &wait) == SF_OK && less(prev, id));
	memcpy(prev, id, 16);
	tsid_raise_floor(&g, 2000);
	CHECK(tsid_next(&g, 1500, rnd, id, &wait) == SF_WAIT);
	CHECK_EQ_U64(wait, 500);
	CHECK(tsid_next(&g, 2000, rnd, id, &wait) == SF_OK && less(prev, id));
	memcpy(prev, id, 16);

	/* A millisecond's space runs out: wait for the next, also when behind. */
	if (kind == TSID_UUID7) {
		memset(rnd, 0xff, sizeof rnd);
		uint64_t n = 0;
		tsid_gen_init(&g, kind, 0);
		CHECK(tsid_next(&g, 5000, rnd, prev, &wait) == SF_OK);
		n++;
		int ok = 1;
		while (tsid_next(&g, 4000, rnd, id, &wait) == SF_OK) {
			ok &= less(prev, id) && tsid_ms(id) == 5000;
			memcpy(prev, id, 16);
			n++;
		}
		CHECK(ok);
		CHECK_EQ_U64(n, 2049);   /* seed 0x7ff .. 0xfff */
		CHECK_EQ_U64(wait, 1001);
		CHECK(tsid_next(&g, 5000, rnd, id, &wait) == SF_WAIT && wait == 1);
		CHECK(tsid_next(&g, 5001, rnd, id, &wait) == SF_OK && less(prev, id));
	} else {
		memset(rnd, 0xff, sizeof rnd);
		rnd[TSID_RANDOM - 1] = 0xfd;
		tsid_gen_init(&g, kind, 0);
		CHECK(tsid_next(&g, 5000, rnd, prev, &wait) == SF_OK);
		CHECK(tsid_next(&g, 5000, rnd, id, &wait) == SF_OK && less(prev, id));
		CHECK(tsid_next(&g, 5000, rnd, id, &wait) == SF_OK);
		char t[26];
		tsid_base32(id, 0, t);
		CHECK_STR(t + 10, 16, "ZZZZZZZZZZZZZZZZ");
		CHECK(tsid_next(&g, 5000, rnd, id, &wait) == SF_WAIT && wait == 1);
		CHECK(tsid_next(&g, 5001, rnd, id, &wait) == SF_OK);
		CHECK_EQ_U64(tsid_ms(id), 5001);
	}
}

static void test_prefix(void)
{
	CHECK(tsid_prefix_valid("", 0));
	CHECK(tsid_prefix_valid("user", 4));
	CHECK(tsid_prefix_valid("pre_fix", 7));
	CHECK(!tsid_prefix_valid("_user", 5));
	CHECK(!tsid_prefix_valid("user_", 5));
	CHECK(!tsid_prefix_valid("User", 4));
	CHECK(!tsid_prefix_valid("us3r", 4));
	CHECK(!tsid_prefix_valid("us-r", 4));
	char p[64];
	memset(p, 'a', sizeof p);
	CHECK(tsid_prefix_valid(p, 63));
	CHECK(!tsid_prefix_valid(p, 64));
}

/* TypeID text: prefix, '_', suffix; the spec's examples, then what a
 * parser must refuse. */
static void test_typeid(void)
{
	uint8_t id[16], back[16];
	char t[TSID_TYPEID_MAX];
	size_t pn = 99;
	CHECK(tsid_uuid_parse("01890a5d-ac96-774b-bcce-b302099a8057", 36, id) == 0);
	CHECK(tsid_is_uuid7(id));
	CHECK_EQ_U64(tsid_typeid("user", 4, id, t), 31);
	CHECK_STR(t, 31, "user_01h455vb4pex5vsknk084sn02q");
	CHECK(tsid_typeid_parse(t, 31, &pn, back) == 0 && pn == 4 && memcmp(id, back, 16) == 0);
	CHECK_EQ_U64(tsid_typeid("", 0, id, t), 26);
	CHECK_STR(t, 26, "01h455vb4pex5vsknk084sn02q");
	CHECK(tsid_typeid_parse(t, 26, &pn, back) == 0 && pn == 0 && memcmp(id, back, 16) == 0);
	/* valid.yml "prefix-underscore": the suffix follows the last '_'. */
	const char *u = "pre_fix_00000000000000000000000000";
	CHECK(tsid_typeid_parse(u, strlen(u), &pn, back) == 0 && pn == 7);
	CHECK(!tsid_is_uuid7(back));
	char p63[TSID_TYPEID_MAX];
	memset(p63, 'a', TSID_PREFIX_MAX);
	CHECK_EQ_U64(tsid_typeid(p63, TSID_PREFIX_MAX, id, t), TSID_TYPEID_MAX);
	CHECK(tsid_typeid_parse(t, TSID_TYPEID_MAX, &pn, back) == 0 && pn == TSID_PREFIX_MAX);
	/* invalid.yml: bad prefixes, separators, suffixes. */
	const char *bad[] = {
		"PREFIX_00000000000000000000000000", "12345_00000000000000000000000000",
		"pre.fix_00000000000000000000000000", "_00000000000000000000000000",
		"_prefix_00000000000000000000000000", "prefix__00000000000000000000000000",
		"prefix_", "prefix_0000000000000000000000000", "prefix_000000000000000000000000000",
		"prefix_0000000000000000000000000u", "prefix_0000000000000000000000000O",
		"prefix_8zzzzzzzzzzzzzzzzzzzzzzzzz", "prefix-00000000000000000000000000",
		"prefix_01H455VB4PEX5VSKNK084SN02Q", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(tsid_typeid_parse(bad[i], strlen(bad[i]), &pn, back) == -1);
	char t64[TSID_TYPEID_MAX + 1];
	memset(t64, 'a', 64);
	memcpy(t64 + 64, "_01h455vb4pex5vsknk084sn02q", 27);   /* 64-character prefix */
	CHECK(tsid_typeid_parse(t64, sizeof t64, &pn, back) == -1);
	/* Version and variant: a v4 UUID and a v7 with the wrong variant. */
	CHECK(tsid_uuid_parse("01890a5d-ac96-474b-bcce-b302099a8057", 36, id) == 0 && !tsid_is_uuid7(id));
	CHECK(tsid_uuid_parse("01890a5d-ac96-774b-ccce-b302099a8057", 36, id) == 0 && !tsid_is_uuid7(id));
}

int main(void)
{
	test_examples();
	test_layout();
	test_base62();
	test_monotonic(TSID_UUID7);
	test_monotonic(TSID_ULID);
	test_prefix();
	test_typeid();
	return check_summary("tsid");
}
