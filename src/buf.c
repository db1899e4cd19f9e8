/* Growable output buffer and decimal formatting: every response and Consul
 * request is built here, one small append at a time. */
#include "buf.h"

#include <stdlib.h>

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

int buf_grow(struct buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		goto fail;
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;   /* doubling keeps appends amortised O(1) */
	char *p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	return 0;
fail:
	/* Keep the old data so the caller can still free it; drop further appends
	 * so a half-written document is never mistaken for a whole one. */
	b->failed = 1;
	return -1;
}

/* ---- decimal ---------------------------------------------------------- */

/* "00" "01" ... "99": two digits per division halves the divide count. */
static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static size_t u64_len(uint64_t v)
{
	size_t n = 1;
	for (;;) {
		if (v < 10) return n;
		if (v < 100) return n + 1;
		if (v < 1000) return n + 2;
		if (v < 10000) return n + 3;
		v /= 10000;
		n += 4;
	}
}

size_t fmt_u64(char *out, uint64_t v)
{
	size_t len = u64_len(v);
	char *p = out + len;
	while (v >= 100) {
		unsigned i = (unsigned)(v % 100) * 2;
		v /= 100;
		*--p = digit_pairs[i + 1];
		*--p = digit_pairs[i];
	}
	if (v >= 10) {
		unsigned i = (unsigned)v * 2;
		*--p = digit_pairs[i + 1];
		*--p = digit_pairs[i];
	} else {
		*--p = (char)('0' + v);
	}
	return len;
}

void buf_u64(struct buf *b, uint64_t v)
{
	if (buf_reserve(b, 20) < 0)
		return;
	b->len += fmt_u64(b->data + b->len, v);
}

void buf_fixed(struct buf *b, uint64_t v, int places)
{
	char frac[9];
	uint64_t unit = 1;
	for (int i = places - 1; i >= 0; i--, unit *= 10)
		frac[i] = (char)('0' + v / unit % 10);
	buf_u64(b, v / unit);
	buf_putc(b, '.');
	buf_append(b, frac, (size_t)places);
}

void buf_i64(struct buf *b, int64_t v)
{
	if (buf_reserve(b, 21) < 0)
		return;
	uint64_t u = (uint64_t)v;
	if (v < 0) {
		b->data[b->len++] = '-';
		u = 0 - u;   /* unsigned negation is defined for INT64_MIN too */
	}
	b->len += fmt_u64(b->data + b->len, u);
}
