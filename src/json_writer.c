#include "json_writer.h"

struct buf *jw_value(struct jw *w, const char *key)
{
	uint32_t bit = 1u << w->depth;
	if (w->has_member & bit)
		buf_putc(w->b, ',');
	w->has_member |= bit;
	if (key)
		json_key(w->b, key);
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

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	buf_u64(jw_value(w, key), v);
}

void jw_u64_str(struct jw *w, const char *key, uint64_t v)
{
	json_u64_str(jw_value(w, key), v);
}

void jw_str(struct jw *w, const char *key, const char *s, size_t n)
{
	json_str(jw_value(w, key), s, n);
}

void jw_cstr(struct jw *w, const char *key, const char *s)
{
	json_cstr(jw_value(w, key), s);
}

void jw_null(struct jw *w, const char *key)
{
	buf_append(jw_value(w, key), "null", 4);
}

void jw_bool(struct jw *w, const char *key, int v)
{
	if (v)
		buf_append(jw_value(w, key), "true", 4);
	else
		buf_append(jw_value(w, key), "false", 5);
}

void jw_raw(struct jw *w, const char *key, const char *json, size_t n)
{
	buf_append(jw_value(w, key), json, n);
}
