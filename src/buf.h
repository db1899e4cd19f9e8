/* A growable byte buffer that output is built in (JSON bodies, Consul
 * requests), and decimal formatting into it. */
#ifndef BUF_H
#define BUF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Emitters append; on allocation failure `failed` is set and further
 * appends are ignored. The buffer is malloc'd and grows. */
struct buf {
	char *data;
	size_t len, cap;
	int failed;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Grows the buffer; the inline wrappers below keep the common case (room
 * left) free of calls, since responses are built one small append at a time. */
int  buf_grow(struct buf *b, size_t extra);          /* 0 ok, -1 failed */
static inline int buf_reserve(struct buf *b, size_t extra)  /* 0 ok, -1 failed */
{
	return !b->failed && extra <= b->cap - b->len ? 0 : buf_grow(b, extra);
}
static inline void buf_append(struct buf *b, const char *s, size_t n)
{
	if (n == 0 || buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}
static inline void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}
static inline void buf_putc(struct buf *b, char c)
{
	if (buf_reserve(b, 1) < 0)
		return;
	b->data[b->len++] = c;
}
void buf_u64(struct buf *b, uint64_t v);              /* decimal, no printf */
void buf_i64(struct buf *b, int64_t v);
/* v / 10^places with exactly `places` digits after the point (places 1..9):
 * fixed-point values (ppm, ns) as decimals, no floating point. */
void buf_fixed(struct buf *b, uint64_t v, int places);

/* Formats v in decimal into out (at least 20 bytes); returns length. */
size_t fmt_u64(char *out, uint64_t v);

#endif
