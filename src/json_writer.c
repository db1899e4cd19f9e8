#include "json_writer.h"

struct buf *jw_member(struct jw *w, const char *key, size_t n)
{
	uint32_t bit = 1u << w->depth;
	if (buf_reserve(w->b, n + 4) < 0)
		return w->b;
	char *p = w->b->data + w->b->len;
	if (w->has_member & bit)
		*p++ = ',';
	w->has_member |= bit;
	*p++ = '"';
	memcpy(p, key, n);
	p += n;
	*p++ = '"';
	*p++ = ':';
	w->b->len = (size_t)(p - w->b->data);
	return w->b;
}

static void open_container(struct jw *w, const char *key, char bracket, int array)
{
	buf_putc(jw_value(w, key), bracket);
	if (w->depth == JW_MAX_DEPTH) {
		w->b->failed = 1;   /* deeper than any document of ours: a bug */
		return;
	}
	w->depth++;
	uint32_t bit = 1u << w->depth;
	w->has_member &= ~bit;
	w->is_array = array ? w->is_array | bit : w->is_array & ~bit;
}

void jw_object(struct jw *w, const char *key)
{
	open_container(w, key, '{', 0);
}

void jw_array(struct jw *w, const char *key)
{
	open_container(w, key, '[', 1);
}

void jw_close(struct jw *w)
{
	if (w->depth == 0) {
		w->b->failed = 1;   /* closed more than was opened: a bug */
		return;
	}
	buf_putc(w->b, w->is_array & (1u << w->depth) ? ']' : '}');
	w->depth--;
}
