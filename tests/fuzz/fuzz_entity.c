/* libFuzzer target for the request-target helpers the router runs on every
 * entity route: http_split_target, http_query_param and http_percent_decode,
 * checked against oracles written independently here, plus the entity-name
 * rule of SPEC section 3 (1..128 bytes of [A-Za-z0-9._:-] after decoding):
 * entity_name_valid, the validator the API and the KV codec use, is checked
 * against the rule restated below, through the public decoder and a
 * re-encoding round trip.
 * Input: an optional "name\n" prefix (a query key to look up), then a target.
 * fuzz-src: src/http_parse.c src/http_lex.c src/idtype.c src/tsid.c */
#include "http_parse.h"
#include "idtype.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)
#define ENTITY_MAX 128   /* SPEC 3, restated; idtype.h's ENTITY_NAME_MAX */

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p + n <= buf + len;
}

static int hexdig(unsigned char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* Reference decoder: same contract as http_percent_decode. */
static long ref_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexdig((unsigned char)s[i + 1]), l = hexdig((unsigned char)s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -1;
			c = (unsigned char)(h * 16 + l);
			i += 2;
		}
		if (o >= cap)
			return -1;
		out[o++] = (char)c;
	}
	return (long)o;
}

static int name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == ':' || c == '-';
}

/* SPEC 3, as api.c applies it: raw segments over 3 * 128 bytes are refused
 * before decoding, since no valid name needs more. */
static int entity_ok(const char *raw, size_t n, char *name, size_t *name_len)
{
	char tmp[3 * ENTITY_MAX + 1];
	long d = n <= 3 * ENTITY_MAX ? http_percent_decode(raw, n, tmp, sizeof tmp) : -1;
	if (d < 0)
		return 0;
	int ok = d >= 1 && d <= ENTITY_MAX;
	for (long i = 0; ok && i < d; i++)
		ok = name_char((unsigned char)tmp[i]);
	MUST(entity_name_valid(tmp, (size_t)d) == ok);
	if (!ok)
		return 0;
	memcpy(name, tmp, (size_t)d);
	*name_len = (size_t)d;
	return 1;
}

/* Percent-encodes: bytes selected by `mask` bits (cycled) are escaped even
 * when they need not be, in upper or lower case hex. */
static size_t encode(const char *s, size_t n, char *out, uint8_t mask)
{
	static const char up[] = "0123456789ABCDEF", lo[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int bit = (mask >> (i & 7)) & 1;
		if (bit || !name_char(c)) {
			const char *h = (i & 8) ? lo : up;
			out[o++] = '%';
			out[o++] = h[c >> 4];
			out[o++] = h[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

static void decode_checks(const char *s, size_t n, uint8_t mask)
{
	static char full[9000], want[9000], re[27000], back[9000];
	long d, w, b;
	size_t rn;

	if (n > sizeof full)
		n = sizeof full;
	d = http_percent_decode(s, n, full, n);
	w = ref_decode(s, n, want, n);
	MUST(d == w);
	MUST(d >= -1 && d <= (long)n);
	if (d < 0)
		return;
	MUST(memcmp(full, want, (size_t)d) == 0);
	/* A NUL comes out only where one went in raw (never from %00); request
	 * targets cannot carry raw NULs, the HTTP parser refuses them. */
	if (memchr(s, '\0', n))
		return;
	MUST(memchr(full, '\0', (size_t)d) == NULL);
	/* Exactly d bytes of room suffice; one fewer does not. */
	MUST(http_percent_decode(s, n, back, (size_t)d) == d);
	if (d > 0)
		MUST(http_percent_decode(s, n, back, (size_t)d - 1) == -1);
	/* Every escape costs 3 input bytes for 1 output byte. */
	MUST((size_t)d * 3 >= n);
	/* Re-encoding round trip (the output has no NUL, so it can all be encoded). */
	rn = encode(full, (size_t)d, re, mask);
	MUST(rn >= (size_t)d && rn <= 3 * (size_t)d);
	b = http_percent_decode(re, rn, back, sizeof back);
	MUST(b == d && memcmp(back, full, (size_t)d) == 0);
}

static void entity_checks(const char *seg, size_t n, uint8_t mask)
{
	char name[ENTITY_MAX], re[3 * ENTITY_MAX], name2[ENTITY_MAX];
	size_t len, len2, rn;

	if (!entity_ok(seg, n, name, &len))
		return;
	MUST(len >= 1 && len <= ENTITY_MAX && len <= n);
	for (size_t i = 0; i < len; i++)
		MUST(name_char((unsigned char)name[i]) && name[i] != '/' && name[i] != '%');
	/* Any spelling of a valid name, escaped or not, is the same valid name. */
	rn = encode(name, len, re, mask);
	MUST(rn <= 3 * ENTITY_MAX);
	MUST(entity_ok(re, rn, name2, &len2));
	MUST(len2 == len && memcmp(name2, name, len) == 0);
	/* The plain spelling needs no decoding at all. */
	MUST(entity_ok(name, len, name2, &len2) && len2 == len);
}

/* Reference for http_query_param: the first '&'-separated pair whose raw key
 * (up to its first '=') equals name. */
static int ref_param(const char *q, size_t n, const char *name, size_t *off, size_t *vlen)
{
	size_t nl = strlen(name), i = 0;
	while (i < n) {
		size_t end = i;
		while (end < n && q[end] != '&')
			end++;
		size_t eq = i;
		while (eq < end && q[eq] != '=')
			eq++;
		if (eq - i == nl && memcmp(q + i, name, nl) == 0) {
			*off = eq < end ? eq + 1 : eq;
			*vlen = eq < end ? end - eq - 1 : 0;
			return 1;
		}
		i = end + 1;
	}
	return 0;
}

static void param_checks(const char *q, size_t n, const char *name)
{
	const char *v = (const char *)1;
	size_t vl = (size_t)-1, off = 0, rvl = 0;
	int got = http_query_param(n ? q : NULL, n, name, &v, &vl);
	int want = ref_param(q, n, name, &off, &rvl);

	MUST(got == want);
	if (!got)
		return;
	MUST(inside(v, vl, q, n) || (vl == 0 && v == q + n));
	MUST(v == q + off && vl == rvl);
	MUST(memchr(v, '&', vl) == NULL);
	/* The decoded value, as the dataType handler reads it. */
	{
		char tmp[32];
		long d = vl < sizeof tmp ? http_percent_decode(v, vl, tmp, sizeof tmp) : -1;
		MUST(d >= -1 && d <= (long)vl && d < (long)sizeof tmp);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "dataType", "batchSize", "force", "", "a" };
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size < 40 ? size : 40);
	char key[41];
	const char *path, *query;
	size_t pl, ql, tn = size;
	uint8_t mask = size ? data[size - 1] : 0;
	const char *t = s;

	/* "key\n" prefix: a query parameter name chosen by the input. */
	key[0] = '\0';
	if (nl && !memchr(s, '\0', (size_t)(nl - s))) {
		memcpy(key, s, (size_t)(nl - s));
		key[nl - s] = '\0';
		t = nl + 1;
		tn = size - (size_t)(nl - s) - 1;
	}

	http_split_target(t, tn, &path, &pl, &query, &ql);
	MUST(path == t && pl <= tn);
	MUST(memchr(path, '?', pl) == NULL);
	if (pl < tn)
		MUST(t[pl] == '?' && query == t + pl + 1 && ql == tn - pl - 1);
	else
		MUST(query == t + tn && ql == 0);

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		param_checks(query, ql, names[i]);
	if (key[0])
		param_checks(query, ql, key);

	/* The entity segment: the path after its last '/', as the router takes it. */
	{
		const char *seg = path;
		for (size_t i = 0; i < pl; i++)
			if (path[i] == '/')
				seg = path + i + 1;
		entity_checks(seg, pl - (size_t)(seg - path), mask);
	}
	decode_checks(t, tn, mask);
	decode_checks(path, pl, (uint8_t)~mask);
	return 0;
}
