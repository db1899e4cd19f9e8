/* JSON emitter over a caller-owned growable buffer (buf.h), and a small
 * strict reader for flat request bodies like {"dataType":"int","startValue":5}. */
#ifndef JSON_H
#define JSON_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "buf.h"   /* the output buffer; its users reach it through json.h */

/* Parses exactly s[0..n) as a decimal number (digits only, 1..20 of them,
 * no overflow). 0 ok, -1 otherwise. */
int parse_u64(const char *s, size_t n, uint64_t *out);

/* JSON pieces. The emitter tracks nothing: callers place commas themselves
 * through these helpers, which keeps it allocation-free and fast. */
void json_str(struct buf *b, const char *s, size_t n);   /* "..." escaped */
void json_cstr(struct buf *b, const char *s);
/* `"key":` — key is a trusted literal, not escaped */
void json_key(struct buf *b, const char *key);
void json_u64_str(struct buf *b, uint64_t v);            /* "123" */

/* Reader: parses a single JSON object whose values are strings, numbers,
 * true/false/null (no nesting). Whitespace allowed per RFC 8259. */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING };
struct json_field {
	char key[64];        /* decoded; keys containing \u0000 are rejected */
	enum json_type type;
	char str[256];       /* decoded string value (UTF-8, NUL-terminated, but \u0000 may
	                        * appear inside: use str_len), or the number's text */
	size_t str_len;
	int boolean;
};
#define JSON_MAX_FIELDS 16
struct json_object {
	struct json_field fields[JSON_MAX_FIELDS];
	size_t n;
};
/* Returns 0 on success, -1 with a message in err (e.g. "expected ':' at
 * offset 12") on malformed input, nesting, duplicate keys, too many fields,
 * or over-long keys/strings. */
int json_parse_object(const char *s, size_t len, struct json_object *obj,
		      char *err, size_t errlen);
const struct json_field *json_get(const struct json_object *obj, const char *key);

/* Parses a JSON number field as an integer in [min,max]: must be an integer
 * literal (no fraction/exponent) — also accepts a decimal string value
 * ("123") because long values travel as strings. 0 ok, -1 not an integer,
 * -2 out of range. */
int json_field_i64(const struct json_field *f, int64_t min, int64_t max, int64_t *out);

#endif
