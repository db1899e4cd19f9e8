/* A JSON writer that places the commas: members and elements are written
 * one call each, and the writer remembers per nesting level whether one
 * came before. Keys are trusted literals (not escaped); values are escaped
 * by json.c. */
#ifndef JSON_WRITER_H
#define JSON_WRITER_H
#include <stddef.h>
#include <stdint.h>
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

/* key: the member's name inside an object; NULL inside an array or at the top. */
void jw_object(struct jw *w, const char *key);
void jw_array(struct jw *w, const char *key);
void jw_close(struct jw *w);                 /* the innermost open container */
void jw_u64(struct jw *w, const char *key, uint64_t v);        /* 123 */
void jw_u64_str(struct jw *w, const char *key, uint64_t v);    /* "123" */
void jw_str(struct jw *w, const char *key, const char *s, size_t n);
void jw_cstr(struct jw *w, const char *key, const char *s);
void jw_null(struct jw *w, const char *key);
void jw_bool(struct jw *w, const char *key, int v);
/* A value that is JSON already. */
void jw_raw(struct jw *w, const char *key, const char *json, size_t n);
/* Starts a member or element and returns the buffer to write its value
 * into by hand (one value, no separators). */
struct buf *jw_value(struct jw *w, const char *key);

#endif
