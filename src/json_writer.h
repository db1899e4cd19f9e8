/* A JSON writer that places the commas: members and elements are written
 * one call each, and the writer remembers per nesting level whether one
 * came before. Keys are trusted literals (not escaped); values are escaped
 * by json.c. */
#ifndef JSON_WRITER_H
#define JSON_WRITER_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "json.h"

#define JW_MAX_DEPTH 31

struct jw {
	struct buf *b;
	unsigned depth;
	uint32_t has_member;   /* bit d: the container at depth d has a member */
	uint32_t is_array;     /* bit d: the container at depth d is an array */
};

static inline void jw_init(struct jw *w, struct buf *b)
{
	w->b = b;
	w->depth = 0;
	w->has_member = w->is_array = 0;
}

/* key: the member's name inside an object; NULL inside an array or at the
 * top. The writers are inline so that a literal key's length is known at
 * compile time and an array element costs no call: answers are built on
 * the request path. */
void jw_object(struct jw *w, const char *key);
void jw_array(struct jw *w, const char *key);
void jw_close(struct jw *w);                 /* the innermost open container */

/* Starts a member (`,"key":`) of key_len bytes; use jw_value. */
struct buf *jw_member(struct jw *w, const char *key, size_t key_len);

/* Starts a member or element and returns the buffer to write its value
 * into by hand (one value, no separators). */
static inline struct buf *jw_value(struct jw *w, const char *key)
{
	if (key)
		return jw_member(w, key, strlen(key));
	uint32_t bit = 1u << w->depth;   /* an array element: a comma at most */
	if (w->has_member & bit)
		buf_putc(w->b, ',');
	w->has_member |= bit;
	return w->b;
}

static inline void jw_u64(struct jw *w, const char *key, uint64_t v)         /* 123 */
{
	buf_u64(jw_value(w, key), v);
}

static inline void jw_u64_str(struct jw *w, const char *key, uint64_t v)     /* "123" */
{
	json_u64_str(jw_value(w, key), v);
}

static inline void jw_str(struct jw *w, const char *key, const char *s, size_t n)
{
	json_str(jw_value(w, key), s, n);
}

static inline void jw_cstr(struct jw *w, const char *key, const char *s)
{
	json_str(jw_value(w, key), s, strlen(s));
}

static inline void jw_null(struct jw *w, const char *key)
{
	buf_append(jw_value(w, key), "null", 4);
}

static inline void jw_bool(struct jw *w, const char *key, int v)
{
	if (v)
		buf_append(jw_value(w, key), "true", 4);
	else
		buf_append(jw_value(w, key), "false", 5);
}

/* A value that is JSON already. */
static inline void jw_raw(struct jw *w, const char *key, const char *json, size_t n)
{
	buf_append(jw_value(w, key), json, n);
}

#endif
