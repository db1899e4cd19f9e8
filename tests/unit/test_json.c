/* Unit tests for json.c: buffer, integer formatting, escaping, the strict
 * flat-object reader and json_field_i64. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* Reference escaper written independently of json.c's table. */
static size_t ref_escape(unsigned char c, char *out)
{
	switch (c) {
	case '"':  return (size_t)sprintf(out, "\\\"");
	case '\\': return (size_t)sprintf(out, "\\\\");
	case '\b': return (size_t)sprintf(out, "\\b");
	case '\f': return (size_t)sprintf(out, "\\f");
	case '\n': return (size_t)sprintf(out, "\\n");
	case '\r': return (size_t)sprintf(out, "\\r");
	case '\t': return (size_t)sprintf(out, "\\t");
	default:
		if (c < 0x20)
			return (size_t)sprintf(out, "\\u%04x", c);
		out[0] = (char)c;
		return 1;
	}
}

static void test_escape_every_byte(void)
{
	for (int c = 0; c < 256; c++) {
		struct buf b;
		char want[16];
		size_t n = 0;
		want[n++] = '"';
		n += ref_escape((unsigned char)c, want + n);
		want[n++] = '"';
		buf_init(&b);
		char ch = (char)c;
		json_str(&b, &ch, 1);
		CHECK(!b.failed);
		if (b.len != n || memcmp(b.data, want, n) != 0) {
			fprintf(stderr, "byte 0x%02x escaped wrong\n", c);
			CHECK(0);
		} else {
			CHECK(1);
		}
		buf_free(&b);
	}
	/* Spot-check the exact forms, so the reference itself is checked too. */
	struct buf b;
	buf_init(&b);
	json_str(&b, "\x00\x01\x1f\x7f \"\\/", 8);
	CHECK_STR(b.data, b.len, "\"\\u0000\\u0001\\u001f\x7f \\\"\\\\/\"");
	buf_free(&b);
}

static void test_escape_strings(void)
{
	struct buf b;
	buf_init(&b);
	/* UTF-8 (2, 3 and 4-byte sequences) passes through untouched. */
	const char *u = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 end";
	json_cstr(&b, u);
	CHECK(b.len == strlen(u) + 2);
	CHECK(b.len == strlen(u) + 2 && memcmp(b.data + 1, u, strlen(u)) == 0);
	b.len = 0;
	json_cstr(&b, "a\tb\nc\"d");
	CHECK_STR(b.data, b.len, "\"a\\tb\\nc\\\"d\"");
	b.len = 0;
	json_str(&b, "", 0);
	CHECK_STR(b.data, b.len, "\"\"");
	b.len = 0;
	/* A long run with an escape at both ends exercises the run copying. */
	char big[3000];
	memset(big, 'x', sizeof big);
	big[0] = '\n';
	big[sizeof big - 1] = '"';
	json_str(&b, big, sizeof big);
	CHECK(b.len == sizeof big + 2 + 2);
	CHECK(memcmp(b.data, "\"\\nxxx", 6) == 0);
	CHECK(memcmp(b.data + b.len - 5, "xx\\\"\"", 5) == 0);
	b.len = 0;
	json_key(&b, "entityName");
	json_cstr(&b, "order");
	buf_putc(&b, ',');
	json_key(&b, "value");
	json_u64_str(&b, 18446744073709551615u);
	CHECK_STR(b.data, b.len, "\"entityName\":\"order\",\"value\":\"18446744073709551615\"");
	buf_free(&b);
}

static void check_u64(uint64_t v)
{
	char got[24], want[24];
	size_t n = fmt_u64(got, v);
	int wn = snprintf(want, sizeof want, "%" PRIu64, v);
	if (n != (size_t)wn || memcmp(got, want, n) != 0) {
		fprintf(stderr, "fmt_u64(%s) = %.*s\n", want, (int)n, got);
		CHECK(0);
	} else {
		CHECK(1);
	}
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void)
{
	/* xorshift64*: deterministic so failures reproduce. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717u;
}

static void test_fmt_u64(void)
{
	char out[24];
	CHECK_STR(out, fmt_u64(out, 0), "0");
	CHECK_STR(out, fmt_u64(out, 9), "9");
	CHECK_STR(out, fmt_u64(out, 10), "10");
	CHECK_STR(out, fmt_u64(out, 99), "99");
	CHECK_STR(out, fmt_u64(out, 100), "100");
	CHECK_STR(out, fmt_u64(out, UINT64_MAX), "18446744073709551615");
	uint64_t p = 1;
	for (int i = 0; i < 20; i++) {
		check_u64(p - 1);
		check_u64(p);
		check_u64(p + 1);
		if (i < 19)
			p *= 10;
	}
	check_u64(UINT64_MAX - 1);
	check_u64((uint64_t)1 << 63);
	for (int i = 0; i < 5000; i++)
		check_u64(rng() >> (rng() % 64));   /* all magnitudes */

	struct buf b;
	buf_init(&b);
	buf_i64(&b, INT64_MIN);
	buf_putc(&b, ' ');
	buf_i64(&b, INT64_MAX);
	buf_putc(&b, ' ');
	buf_i64(&b, -1);
	buf_putc(&b, ' ');
	buf_i64(&b, 0);
	buf_putc(&b, ' ');
	buf_u64(&b, 1234567890123u);
	CHECK_STR(b.data, b.len, "-9223372036854775808 9223372036854775807 -1 0 1234567890123");
	/* Fixed point: every place written, leading zeros of the fraction kept. */
	b.len = 0;
	buf_fixed(&b, 1000000, 4);
	buf_putc(&b, ' ');
	buf_fixed(&b, 50123, 4);
	buf_putc(&b, ' ');
	buf_fixed(&b, 7, 9);
	buf_putc(&b, ' ');
	buf_fixed(&b, 0, 1);
	buf_putc(&b, ' ');
	buf_fixed(&b, UINT64_MAX, 9);
	CHECK_STR(b.data, b.len, "100.0000 5.0123 0.000000007 0.0 18446744073.709551615");
	buf_free(&b);
}

static void test_buf(void)
{
	struct buf b;
	buf_init(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && !b.failed);
	for (int i = 0; i < 100000; i++)
		buf_putc(&b, (char)('a' + i % 26));
	CHECK(!b.failed);
	CHECK(b.len == 100000);
	CHECK(b.cap >= b.len);
	int ok = 1;
	for (int i = 0; i < 100000; i++)
		ok &= b.data[i] == (char)('a' + i % 26);
	CHECK(ok);
	buf_puts(&b, "tail");
	CHECK(b.len == 100004 && memcmp(b.data + 100000, "tail", 4) == 0);
	buf_append(&b, "", 0);
	CHECK(b.len == 100004);
	CHECK(buf_reserve(&b, 10) == 0);

	/* An impossible reservation marks the buffer failed; later appends are
	 * ignored and the old data stays valid for buf_free. */
	CHECK(buf_reserve(&b, SIZE_MAX - 8) == -1);
	CHECK(b.failed);
	size_t len = b.len;
	buf_puts(&b, "more");
	buf_u64(&b, 42);
	json_cstr(&b, "x");
	json_key(&b, "k");
	CHECK(b.len == len);
	CHECK(buf_reserve(&b, 1) == -1);
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && !b.failed);
}

/* ---- reader ---- */

struct rcase {
	const char *in;
	size_t len;          /* 0: strlen(in) */
	int ok;
	const char *err;     /* substring expected in the error message */
};

#define OK(s) { s, 0, 1, NULL }
#define BAD(s, e) { s, 0, 0, e }

static const struct rcase reader_cases[] = {
	OK("{}"),
	OK(" \t\r\n{ \t\r\n} \t\r\n"),
	OK("{\"a\":1}"),
	OK("{ \"a\" : \"x\" , \"b\" : true , \"c\" : false , \"d\" : null }"),
	OK("{\"n\":-0,\"m\":0.5,\"e\":1e10,\"E\":-1.25E-3,\"p\":2e+2}"),
	OK("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\"}"),
	OK("{\"s\":\"\\ud83d\\ude00\"}"),
	OK("{\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}"),
	OK("{\"dataType\":\"int\",\"startValue\":5}"),
	BAD("", "empty body"),
	BAD("   \n", "empty body"),
	BAD("[]", "expected '{' at offset 0"),
	BAD("\"a\"", "expected '{'"),
	BAD("{", "expected a string key at offset 1"),
	BAD("{\"a\"}", "expected ':' at offset 4"),
	BAD("{\"a\":}", "offset 5"),
	BAD("{\"a\":1,}", "expected a string key at offset 7"),
	BAD("{\"a\":1 \"b\":2}", "expected ',' or '}' at offset 7"),
	BAD("{\"a\":1}x", "unexpected data after the object at offset 7"),
	BAD("{\"a\":1}{}", "unexpected data"),
	BAD("{a:1}", "expected a string key"),
	BAD("{'a':1}", "expected a string key"),
	BAD("{\"a\":{}}", "nested values not supported"),
	BAD("{\"a\":[1]}", "nested values not supported"),
	BAD("{\"a\":1,\"a\":2}", "duplicate key \"a\""),
	BAD("{\"a\":01}", "leading zeros"),
	BAD("{\"a\":1.}", "invalid number"),
	BAD("{\"a\":.5}", "expected a string, number"),
	BAD("{\"a\":-}", "invalid number"),
	BAD("{\"a\":+1}", "expected a string, number"),
	BAD("{\"a\":1e}", "exponent"),
	BAD("{\"a\":1e+}", "exponent"),
	BAD("{\"a\":0x10}", "expected ',' or '}'"),
	BAD("{\"a\":NaN}", "expected a string, number"),
	BAD("{\"a\":tru}", "expected a string, number"),
	BAD("{\"a\":True}", "expected a string, number"),
	BAD("{\"a\":\"x\ty\"}", "control character"),
	BAD("{\"a\":\"x\ny\"}", "control character"),
	BAD("{\"a\":\"\\x\"}", "invalid escape"),
	BAD("{\"a\":\"\\u12G4\"}", "invalid \\u escape"),
	BAD("{\"a\":\"\\u12\"}", "invalid \\u escape"),
	BAD("{\"a\":\"\\ud83d\"}", "lone high surrogate"),
	BAD("{\"a\":\"\\ud83dx\"}", "lone high surrogate"),
	BAD("{\"a\":\"\\ud83d\\u0041\"}", "lone high surrogate"),
	BAD("{\"a\":\"\\ude00\"}", "lone low surrogate"),
	BAD("{\"a\":\"\xff\"}", "invalid UTF-8"),
	BAD("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8"),          /* overlong '/' */
	BAD("{\"a\":\"\xe0\x80\xaf\"}", "invalid UTF-8"),      /* overlong */
	BAD("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"),      /* encoded surrogate */
	BAD("{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8"),  /* > U+10FFFF */
	BAD("{\"a\":\"\xc3\"}", "invalid UTF-8"),              /* truncated */
	BAD("{\"\x80\":1}", "invalid UTF-8 in key"),
	BAD("{\"a\":\"abc", "unterminated string"),
	BAD("{\"a\":\"abc\\", "unterminated string"),
	BAD("{\"a\\u0000b\":1}", "\\u0000 in key"),
	BAD("\xef\xbb\xbf{}", "expected '{'"),                 /* BOM */
	{ "{\"a\":1}\0", 8, 0, "unexpected data" },           /* NUL after the object */
	{ "{\"a\":\"\0\"}", 9, 0, "control character" },
};

static int run_case(const char *in, size_t len, struct json_object *o, char *err, size_t errlen)
{
	/* Exact-size heap copy: ASan flags any read past the end. */
	char *copy = malloc(len ? len : 1);
	memcpy(copy, in, len);
	int rc = json_parse_object(copy, len, o, err, errlen);
	free(copy);
	return rc;
}

static void test_reader_table(void)
{
	static struct json_object o;
	char err[200];
	for (size_t i = 0; i < sizeof reader_cases / sizeof reader_cases[0]; i++) {
		const struct rcase *c = &reader_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		int rc = run_case(c->in, len, &o, err, sizeof err);
		if (c->ok) {
			if (rc != 0)
				fprintf(stderr, "case %zu %s: unexpected error: %s\n", i, c->in, err);
			CHECK(rc == 0);
			/* Every prefix that stops before the closing '}' is an error. */
			size_t close = len;
			while (close > 0 && c->in[close - 1] != '}')
				close--;
			int prefixes_bad = close > 0;
			for (size_t k = 0; k + 1 < close; k++)
				if (run_case(c->in, k, &o, err, sizeof err) == 0)
					prefixes_bad = 0;
			CHECK(prefixes_bad);
		} else {
			int good = rc == -1 && strstr(err, c->err) != NULL;
			if (!good)
				fprintf(stderr, "case %zu '%s': rc %d err \"%s\", expected \"%s\"\n",
					i, c->in, rc, rc ? err : "", c->err);
			CHECK(good);
		}
	}

	/* Values land where they should. */
	const char *in = " { \"dataType\" : \"int\" , \"startValue\" : -12.5e3 , \"force\": true, "
			 "\"x\":null, \"s\":\"\\ud83d\\ude00\\u00e9\" } ";
	CHECK(json_parse_object(in, strlen(in), &o, err, sizeof err) == 0);
	CHECK(o.n == 5);
	const struct json_field *f = json_get(&o, "dataType");
	CHECK(f && f->type == JSON_STRING);
	CHECK(f && strcmp(f->str, "int") == 0 && f->str_len == 3);
	f = json_get(&o, "startValue");
	CHECK(f && f->type == JSON_NUMBER);
	CHECK(f && strcmp(f->str, "-12.5e3") == 0 && f->str_len == 7);
	f = json_get(&o, "force");
	CHECK(f && f->type == JSON_BOOL && f->boolean == 1);
	f = json_get(&o, "x");
	CHECK(f && f->type == JSON_NULL);
	f = json_get(&o, "s");
	CHECK(f && f->type == JSON_STRING);
	CHECK(f && f->str_len == 6 && memcmp(f->str, "\xf0\x9f\x98\x80\xc3\xa9", 6) == 0);
	CHECK(json_get(&o, "missing") == NULL);
	CHECK(json_get(&o, "datatype") == NULL);

	/* A NUL inside a value is kept (callers use str_len). */
	in = "{\"a\":\"x\\u0000y\"}";
	CHECK(json_parse_object(in, strlen(in), &o, err, sizeof err) == 0);
	CHECK(o.n == 1 && o.fields[0].str_len == 3 && memcmp(o.fields[0].str, "x\0y", 3) == 0);

	/* Limits: 63-byte key and 255-byte string fit, one more does not. */
	char big[700];
	int n = sprintf(big, "{\"%063d\":\"%0255d\"}", 0, 0);
	CHECK(json_parse_object(big, (size_t)n, &o, err, sizeof err) == 0);
	CHECK(o.n == 1 && strlen(o.fields[0].key) == 63 && o.fields[0].str_len == 255);
	n = sprintf(big, "{\"%064d\":1}", 0);
	CHECK(json_parse_object(big, (size_t)n, &o, err, sizeof err) == -1);
	CHECK(strstr(err, "key") && strstr(err, "too long"));
	n = sprintf(big, "{\"a\":\"%0256d\"}", 0);
	CHECK(json_parse_object(big, (size_t)n, &o, err, sizeof err) == -1);
	CHECK(strstr(err, "string") && strstr(err, "too long"));
	/* The limit is in decoded bytes: 85 x U+20AC (3 bytes) = 255 fits. */
	char *p = big + sprintf(big, "{\"a\":\"");
	for (int i = 0; i < 85; i++)
		p += sprintf(p, "\\u20ac");
	p += sprintf(p, "\"}");
	CHECK(json_parse_object(big, (size_t)(p - big), &o, err, sizeof err) == 0);
	CHECK(o.fields[0].str_len == 255);
	n = sprintf(big, "{\"a\":%0256d}", 1);
	CHECK(json_parse_object(big, (size_t)n, &o, err, sizeof err) == -1);

	/* Field count limit. */
	p = big + sprintf(big, "{");
	for (int i = 0; i < JSON_MAX_FIELDS; i++)
		p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i, i);
	p += sprintf(p, "}");
	CHECK(json_parse_object(big, (size_t)(p - big), &o, err, sizeof err) == 0);
	CHECK(o.n == JSON_MAX_FIELDS);
	p[-1] = ',';
	p += sprintf(p, "\"k99\":1}");
	CHECK(json_parse_object(big, (size_t)(p - big), &o, err, sizeof err) == -1);
	CHECK(strstr(err, "too many fields") != NULL);

	/* A zero-length error buffer is tolerated. */
	CHECK(json_parse_object("x", 1, &o, err, 0) == -1);
}

/* Every byte 1..255 inside valid UTF-8 (plus NUL), emitted by json_str and
 * parsed back, comes out unchanged. */
static void test_round_trip(void)
{
	unsigned char all[2048];
	size_t n = 0, starts[1024], ns = 0;
#define SEQ(...) do { const unsigned char s_[] = { __VA_ARGS__ }; \
	starts[ns++] = n; memcpy(all + n, s_, sizeof s_); n += sizeof s_; } while (0)
	for (int c = 0; c < 0x80; c++)
		SEQ((unsigned char)c);
	for (int c = 0x80; c <= 0xBF; c++) {
		starts[ns++] = n;
		all[n++] = 0xC2;
		all[n++] = (unsigned char)c;
	}
	for (int c = 0xC2; c <= 0xDF; c++) {
		starts[ns++] = n;
		all[n++] = (unsigned char)c;
		all[n++] = 0xBF;
	}
	for (int c = 0xE0; c <= 0xEF; c++) {
		starts[ns++] = n;
		all[n++] = (unsigned char)c;
		all[n++] = c == 0xE0 ? 0xA0 : c == 0xED ? 0x9F : 0x80;
		all[n++] = 0xBF;
	}
	for (int c = 0xF0; c <= 0xF4; c++) {
		starts[ns++] = n;
		all[n++] = (unsigned char)c;
		all[n++] = c == 0xF0 ? 0x90 : c == 0xF4 ? 0x8F : 0xBF;
		all[n++] = 0x80;
		all[n++] = 0xBF;
	}
	SEQ(0xEF, 0xBF, 0xBF);   /* U+FFFF */
	SEQ(0xF4, 0x8F, 0xBF, 0xBF);   /* U+10FFFF */
#undef SEQ
	starts[ns] = n;

	/* Chunks of whole sequences up to 255 decoded bytes (the str limit). */
	static struct json_object o;
	char err[200];
	size_t first = 0, chunks = 0, good = 0;
	while (first < ns) {
		size_t last = first;
		while (last < ns && starts[last + 1] - starts[first] <= 255)
			last++;
		const char *s = (const char *)all + starts[first];
		size_t len = starts[last] - starts[first];
		struct buf b;
		buf_init(&b);
		buf_puts(&b, "{\"v\":");
		json_str(&b, s, len);
		buf_putc(&b, '}');
		int rc = json_parse_object(b.data, b.len, &o, err, sizeof err);
		if (rc != 0)
			fprintf(stderr, "round trip chunk %zu: %s\n", chunks, err);
		if (rc == 0 && o.fields[0].str_len == len && memcmp(o.fields[0].str, s, len) == 0)
			good++;
		chunks++;
		buf_free(&b);
		first = last;
	}
	CHECK(chunks >= 2);   /* ~390 bytes in all */
	CHECK(good == chunks);
}

static void test_field_i64(void)
{
	static struct json_object o;
	char err[200];
	int64_t v;
	struct { const char *json; int64_t min, max; int rc; int64_t want; } cases[] = {
		{ "0", INT64_MIN, INT64_MAX, 0, 0 },
		{ "-0", INT64_MIN, INT64_MAX, 0, 0 },
		{ "\"-0\"", INT64_MIN, INT64_MAX, 0, 0 },
		{ "42", 0, 100, 0, 42 },
		{ "\"42\"", 0, 100, 0, 42 },
		{ "9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX },
		{ "-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN },
		{ "\"9223372036854775807\"", INT64_MIN, INT64_MAX, 0, INT64_MAX },
		{ "\"-9223372036854775808\"", INT64_MIN, INT64_MAX, 0, INT64_MIN },
		{ "9223372036854775808", INT64_MIN, INT64_MAX, -2, 0 },
		{ "-9223372036854775809", INT64_MIN, INT64_MAX, -2, 0 },
		{ "\"9223372036854775808\"", INT64_MIN, INT64_MAX, -2, 0 },
		{ "18446744073709551616", INT64_MIN, INT64_MAX, -2, 0 },
		{ "99999999999999999999999999999", INT64_MIN, INT64_MAX, -2, 0 },
		{ "\"00000000000000000000000000001\"", INT64_MIN, INT64_MAX, 0, 1 },
		{ "101", 0, 100, -2, 0 },
		{ "-1", 0, 100, -2, 0 },
		{ "100", 0, 100, 0, 100 },
		{ "1.0", INT64_MIN, INT64_MAX, -1, 0 },
		{ "1.5", INT64_MIN, INT64_MAX, -1, 0 },
		{ "1e3", INT64_MIN, INT64_MAX, -1, 0 },
		{ "1E3", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"1.5\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"1e3\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"-\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\" 1\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"1 \"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"+1\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"0x10\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"99999999999999999999x\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "\"1\\u00002\"", INT64_MIN, INT64_MAX, -1, 0 },
		{ "true", INT64_MIN, INT64_MAX, -1, 0 },
		{ "null", INT64_MIN, INT64_MAX, -1, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char in[128];
		int n = snprintf(in, sizeof in, "{\"v\":%s}", cases[i].json);
		int prc = json_parse_object(in, (size_t)n, &o, err, sizeof err);
		CHECK(prc == 0);
		if (prc != 0)
			continue;
		v = 12345;
		int rc = json_field_i64(&o.fields[0], cases[i].min, cases[i].max, &v);
		int good = rc == cases[i].rc && (rc != 0 || v == cases[i].want) && (rc == 0 || v == 12345);
		if (!good)
			fprintf(stderr, "json_field_i64(%s) = %d (%" PRId64 "), expected %d (%" PRId64 ")\n",
				cases[i].json, rc, v, cases[i].rc, cases[i].want);
		CHECK(good);
	}
}

int main(void)
{
	test_escape_every_byte();
	test_escape_strings();
	test_fmt_u64();
	test_buf();
	test_reader_table();
	test_round_trip();
	test_field_i64();
	return check_summary("json");
}
