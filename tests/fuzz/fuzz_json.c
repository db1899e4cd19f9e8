/* libFuzzer target for json.c. Each input is read three ways:
 *  - as a request body: json_parse_object must accept or reject it without
 *    reading past the input; an accepted object has bounded, terminated
 *    fields, json_get finds each one, json_field_i64 agrees with an
 *    independent integer oracle, and re-emitting the object with the emitter
 *    parses back to the same fields;
 *  - as a string value: json_str's output has no raw control byte and parses
 *    back to the same bytes exactly when they are well-formed UTF-8;
 *  - as integers: buf_u64/buf_i64/json_u64_str print what printf prints.
 * fuzz-src: src/json.c src/buf.c src/fmt.c */
#include "json.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

/* The reader's limits, restated: a value's decoded string is at most 255
 * bytes, a key at most 63 (both arrays keep a NUL). */
#define STR_MAX (sizeof ((struct json_field *)0)->str - 1)
#define KEY_MAX (sizeof ((struct json_field *)0)->key - 1)

/* Strict UTF-8 per RFC 3629, written byte by byte as an oracle. */
static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		uint32_t cp;
		size_t k;
		if (c < 0x80) { i++; continue; }
		if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
		else return 0;
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000))
			return 0;   /* overlong */
		if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Oracle for json_field_i64: -?[0-9]+ in a number or string, compared as
 * a saturated 128-bit magnitude. */
static int ref_i64(const struct json_field *f, int64_t min, int64_t max, int64_t *out)
{
	const char *p = f->str, *end = f->str + f->str_len;
	int neg;
	unsigned __int128 mag = 0, cap = (unsigned __int128)1 << 64;
	__int128 v;

	if (f->type != JSON_NUMBER && f->type != JSON_STRING)
		return -1;
	neg = p < end && *p == '-';
	p += neg;
	if (p == end)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (mag < cap)
			mag = mag * 10 + (unsigned)(*p - '0');
	}
	if (mag >= cap)
		return -2;
	v = neg ? -(__int128)mag : (__int128)mag;
	if (v < min || v > max)
		return -2;
	*out = (int64_t)v;
	return 0;
}

static void check_i64(const struct json_field *f)
{
	static const int64_t bounds[][2] = {
		{ INT64_MIN, INT64_MAX }, { 0, INT64_MAX }, { 0, 2147483647 },
		{ 1, 10000 }, { -5, 5 }, { 0, 0 }, { INT64_MAX, INT64_MAX },
		{ INT64_MIN, INT64_MIN }, { 7, 3 } /* empty range */,
	};
	for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
		int64_t got = 0x5a5a5a5a, want = 0x5a5a5a5a;
		int rg = json_field_i64(f, bounds[b][0], bounds[b][1], &got);
		int rw = ref_i64(f, bounds[b][0], bounds[b][1], &want);
		MUST(rg == rw);
		if (rg == 0)
			MUST(got == want && got >= bounds[b][0] && got <= bounds[b][1]);
		else
			MUST(got == 0x5a5a5a5a);   /* *out untouched on failure */
	}
}

static int same_field(const struct json_field *a, const struct json_field *b)
{
	if (strcmp(a->key, b->key) != 0 || a->type != b->type)
		return 0;
	if (a->type == JSON_BOOL)
		return a->boolean == b->boolean;
	if (a->type == JSON_NULL)
		return 1;
	return a->str_len == b->str_len && memcmp(a->str, b->str, a->str_len) == 0;
}

/* Writes obj back out with the emitter (escaping keys too), and reads it
 * again: the reader and the emitter must agree on every field. */
static void reemit(const struct json_object *obj, int pretty)
{
	struct buf b;
	static struct json_object again;
	char err[128];

	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < obj->n; i++) {
		const struct json_field *f = &obj->fields[i];
		if (i)
			buf_puts(&b, pretty ? " ,\n\t" : ",");
		json_cstr(&b, f->key);
		buf_puts(&b, pretty ? " : " : ":");
		switch (f->type) {
		case JSON_NULL: buf_puts(&b, "null"); break;
		case JSON_BOOL: buf_puts(&b, f->boolean ? "true" : "false"); break;
		case JSON_NUMBER: buf_append(&b, f->str, f->str_len); break;
		case JSON_STRING: json_str(&b, f->str, f->str_len); break;
		}
	}
	buf_putc(&b, '}');
	MUST(!b.failed);
	MUST(json_parse_object(b.data, b.len, &again, err, sizeof err) == 0);
	MUST(again.n == obj->n);
	for (size_t i = 0; i < obj->n; i++)
		MUST(same_field(&obj->fields[i], &again.fields[i]));
	buf_free(&b);
}

static void as_object(const char *s, size_t n)
{
	static struct json_object obj;
	char err[160];
	int r;

	memset(err, 'X', sizeof err);
	r = json_parse_object(s, n, &obj, err, sizeof err);
	MUST(memchr(err, '\0', sizeof err) != NULL);
	if (r != 0) {
		MUST(r == -1 && err[0] != '\0');
		return;
	}
	MUST(obj.n <= JSON_MAX_FIELDS);
	for (size_t i = 0; i < obj.n; i++) {
		const struct json_field *f = &obj.fields[i];
		size_t kl = strnlen(f->key, sizeof f->key);
		MUST(kl <= KEY_MAX);
		MUST(utf8_ok((const unsigned char *)f->key, kl));
		MUST(f->type == JSON_NULL || f->type == JSON_BOOL ||
		     f->type == JSON_NUMBER || f->type == JSON_STRING);
		MUST(f->str_len <= STR_MAX && f->str[f->str_len] == '\0');
		if (f->type == JSON_STRING)
			MUST(utf8_ok((const unsigned char *)f->str, f->str_len));
		if (f->type == JSON_NUMBER)
			MUST(f->str_len > 0 && strlen(f->str) == f->str_len);
		/* Keys are unique, so lookup finds exactly this field. */
		MUST(json_get(&obj, f->key) == f);
		check_i64(f);
	}
	MUST(json_get(&obj, "\x01no such key") == NULL);
	reemit(&obj, 0);
	reemit(&obj, 1);
	/* An error message is still written (and terminated) with a tiny buffer. */
	MUST(json_parse_object(s, n, &obj, err, 1) == 0);
}

/* Emits the input as a string value and reads it back. */
static void as_string(const char *s, size_t n)
{
	struct buf b;
	static struct json_object obj;
	char err[160];
	size_t inner;

	if (n > STR_MAX)
		n = STR_MAX;
	buf_init(&b);
	buf_puts(&b, "{\"k\":");
	json_str(&b, s, n);
	buf_putc(&b, '}');
	MUST(!b.failed);
	/* No raw byte below 0x20 anywhere; every '"' inside is escaped. */
	for (size_t i = 0; i < b.len; i++)
		MUST((unsigned char)b.data[i] >= 0x20);
	inner = b.len - 8;   /* between the quotes of {"k":"..."} */
	MUST(inner >= n && inner <= 6 * n);
	if (utf8_ok((const unsigned char *)s, n)) {
		MUST(json_parse_object(b.data, b.len, &obj, err, sizeof err) == 0);
		MUST(obj.n == 1 && obj.fields[0].type == JSON_STRING);
		MUST(obj.fields[0].str_len == n && memcmp(obj.fields[0].str, s, n) == 0);
	} else {
		MUST(json_parse_object(b.data, b.len, &obj, err, sizeof err) == -1);
		MUST(strstr(err, "UTF-8") != NULL);
	}
	/* The same bytes as a key: accepted iff valid UTF-8, short enough and
	 * without NUL (keys are C strings). */
	b.len = 0;
	buf_putc(&b, '{');
	json_str(&b, s, n);
	buf_puts(&b, ":1}");
	if (utf8_ok((const unsigned char *)s, n) && n <= KEY_MAX && !memchr(s, 0, n)) {
		MUST(json_parse_object(b.data, b.len, &obj, err, sizeof err) == 0);
		MUST(obj.n == 1 && strlen(obj.fields[0].key) == n &&
		     memcmp(obj.fields[0].key, s, n) == 0);
	} else {
		MUST(json_parse_object(b.data, b.len, &obj, err, sizeof err) == -1);
	}
	buf_free(&b);
}

/* The integer printers against printf. */
static void as_integers(const uint8_t *d, size_t n)
{
	for (size_t off = 0; off + 8 <= n && off < 64; off += 8) {
		uint64_t u;
		char want[32], got[32];
		struct buf b;
		memcpy(&u, d + off, 8);
		buf_init(&b);
		buf_u64(&b, u);
		snprintf(want, sizeof want, "%" PRIu64, u);
		MUST(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
		MUST(fmt_u64(got, u) == strlen(want) && memcmp(got, want, strlen(want)) == 0);
		b.len = 0;
		buf_i64(&b, (int64_t)u);
		snprintf(want, sizeof want, "%" PRId64, (int64_t)u);
		MUST(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
		b.len = 0;
		json_u64_str(&b, u);
		snprintf(want, sizeof want, "\"%" PRIu64 "\"", u);
		MUST(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
		buf_free(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	as_object(s, size);
	as_string(s, size);
	as_integers(data, size);
	return 0;
}
