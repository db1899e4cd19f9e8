/* UUIDv7 and ULID generation and text forms, base62 snowflakes. An ID is
 * kept as two big-endian halves: hi = 48-bit ms << 16 | 16 bits, lo. */
#include <string.h>
#include "tsid.h"

#define MS_LIMIT (1ull << 48)

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint64_t v, uint8_t *p)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void tsid_gen_init(struct tsid_gen *g, enum tsid_kind kind, uint64_t floor_ms)
{
	memset(g, 0, sizeof *g);
	g->kind = kind;
	g->last_ms = floor_ms ? floor_ms - 1 : 0;
	g->full = 1;
}

void tsid_raise_floor(struct tsid_gen *g, uint64_t floor_ms)
{
	if (floor_ms && floor_ms - 1 > g->last_ms) {
		g->last_ms = floor_ms - 1;
		g->full = 1;
	}
}

uint64_t tsid_ms_for(const struct tsid_gen *g, uint64_t now_ms)
{
	return now_ms > g->last_ms ? now_ms : g->last_ms;
}

enum sf_status tsid_next(struct tsid_gen *g, uint64_t now_ms, const uint8_t *rnd,
			 uint8_t out[16], uint64_t *wait_ms)
{
	uint64_t r16 = get_be(rnd, 2), r64 = get_be(rnd + 2, 8);
	int uuid7 = g->kind == TSID_UUID7;
	if (now_ms > g->last_ms) {
		if (now_ms >= MS_LIMIT)
			return SF_EXHAUSTED;
		g->last_ms = now_ms;
		/* uuid7: the counter starts below 2048 (rollover guard). */
		g->hi = now_ms << 16 | (uuid7 ? 0x7000 | (r16 & 0x7ff) : r16);
		g->lo = uuid7 ? 2ull << 62 | (r64 & ~(3ull << 62)) : r64;
	} else if (g->full) {
		/* Same millisecond used up, or the clock is behind it. */
		*wait_ms = g->last_ms + 1 - now_ms;
		return SF_WAIT;
	} else if (uuid7) {
		g->hi++;
		g->lo = 2ull << 62 | (r64 & ~(3ull << 62));
	} else if (++g->lo == 0) {
		g->hi++;
	}
	g->full = uuid7 ? (g->hi & 0xfff) == 0xfff : (g->hi & 0xffff) == 0xffff && g->lo == UINT64_MAX;
	put_be(g->hi, out);
	put_be(g->lo, out + 8);
	return SF_OK;
}

static const char hex[] = "0123456789abcdef";

void tsid_uuid_text(const uint8_t id[16], char out[36])
{
	for (int i = 0, o = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tsid_uuid_parse(const char *s, size_t n, uint8_t id[16])
{
	if (n != 36)
		return -1;
	for (int i = 0, k = 0; i < 36; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		int a = hexval(s[i]), b = hexval(s[i + 1]);
		if (a < 0 || b < 0)
			return -1;
		id[k++] = (uint8_t)(a << 4 | b);
		i += 2;
	}
	return 0;
}

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void tsid_base32(const uint8_t id[16], int lower, char out[26])
{
	uint64_t hi = get_be(id, 8), lo = get_be(id + 8, 8);
	for (int i = 25; i >= 0; i--) {
		char c = b32[lo & 31];
		out[i] = lower && c >= 'A' ? (char)(c | 0x20) : c;
		lo = lo >> 5 | hi << 59;
		hi >>= 5;
	}
}

static int b32val(char c, int lower_only)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 0x20);
	else if (c >= 'A' && c <= 'Z' && lower_only)
		return -1;
	const char *p = c ? memchr(b32, c, 32) : NULL;
	return p ? (int)(p - b32) : -1;
}

int tsid_base32_parse(const char *s, size_t n, int lower_only, uint8_t id[16])
{
	uint64_t hi = 0, lo = 0;
	if (n != 26 || s[0] < '0' || s[0] > '7')
		return -1;
	for (size_t i = 0; i < 26; i++) {
		int v = b32val(s[i], lower_only);
		if (v < 0)
			return -1;
		hi = hi << 5 | lo >> 59;
		lo = lo << 5 | (uint64_t)v;
	}
	put_be(hi, id);
	put_be(lo, id + 8);
	return 0;
}

int tsid_prefix_valid(const char *s, size_t n)
{
	if (n > TSID_PREFIX_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return 0;
	return n == 0 || (s[0] != '_' && s[n - 1] != '_');
}

size_t tsid_typeid(const char *prefix, size_t n, const uint8_t id[16], char *out)
{
	memcpy(out, prefix, n);
	if (n)
		out[n++] = '_';
	tsid_base32(id, 1, out + n);
	return n + 26;
}

int tsid_typeid_parse(const char *s, size_t n, size_t *prefix_len, uint8_t id[16])
{
	size_t p = n;
	while (p > 0 && s[p - 1] != '_')
		p--;
	/* p: where the suffix starts; a '_' before it ends a non-empty prefix. */
	if (p == 1 || (p && !tsid_prefix_valid(s, p - 1)))
		return -1;
	*prefix_len = p ? p - 1 : 0;
	return tsid_base32_parse(s + p, n - p, 1, id);
}

int tsid_is_uuid7(const uint8_t id[16])
{
	return id[6] >> 4 == 7 && id[8] >> 6 == 2;
}

uint64_t tsid_ms(const uint8_t id[16])
{
	return get_be(id, 6);
}

void tsid_uuid7_floor(uint64_t ms, uint8_t id[16])
{
	put_be(ms << 16 | 0x7000, id);
	put_be(2ull << 62, id + 8);
}

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void tsid_base62(uint64_t v, char out[TSID_B62_LEN])
{
	for (int i = TSID_B62_LEN - 1; i >= 0; i--, v /= 62)
		out[i] = b62[v % 62];
}

int tsid_base62_parse(const char *s, size_t n, uint64_t *v)
{
	uint64_t r = 0;
	if (n != TSID_B62_LEN)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p = s[i] ? memchr(b62, s[i], 62) : NULL;
		if (!p || __builtin_mul_overflow(r, 62, &r) ||
		    __builtin_add_overflow(r, (uint64_t)(p - b62), &r))
			return -1;
	}
	*v = r;
	return 0;
}
