/* The data types an entity can be bound to, with the style it may bind. */
#ifndef IDTYPE_H
#define IDTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum id_type {
	TYPE_INT, TYPE_LONG, TYPE_SNOWFLAKE,
	TYPE_UUID8, TYPE_UUID12, TYPE_UUID16, TYPE_UUID22,
	TYPE_UUID7, TYPE_ULID,   /* time-sortable 128-bit IDs (tsid.c) */
	TYPE_COUNT
};

const char *id_type_name(enum id_type t);
/* Exact, case-sensitive match. 0 ok, -1 unknown. */
int id_type_parse(const char *s, size_t n, enum id_type *out);
int id_type_is_seq(enum id_type t);       /* int, long */
size_t id_type_uuid_len(enum id_type t);  /* 8..22, or 0 */
/* uuid7 and ulid: 0 or 1 (enum tsid_kind), -1 for other types. */
int id_type_tsid(enum id_type t);
/* How IDs are written. An entity binds FMT_PLAIN (the type's own form) or
 * FMT_BASE62 (snowflakes) at init; FMT_RANGE is a batch's form, asked per
 * request, never bound. */
enum id_format { FMT_PLAIN, FMT_BASE62, FMT_RANGE };
/* TypeID prefix: 1..63 of [a-z_] (tsid_prefix_valid). */
#define ID_PREFIX_MAX 63
/* The rendering bound with the type: snowflakes in base62, UUIDv7 as
 * TypeIDs ("prefix_" + 26 base32). All zero: the type's plain form. */
struct id_style {
	uint8_t format;                  /* FMT_PLAIN or FMT_BASE62 */
	uint8_t prefix_len;              /* 0: no prefix */
	char prefix[ID_PREFIX_MAX + 1];  /* NUL-terminated */
};
/* NULL when s suits type t (base62 only for snowflake, a valid prefix only
 * for uuid7), else what is wrong, as an API message. */
const char *id_style_problem(enum id_type t, const struct id_style *s);
static inline int id_style_same(const struct id_style *a, const struct id_style *b)
{
	return a->format == b->format && a->prefix_len == b->prefix_len &&
	       memcmp(a->prefix, b->prefix, a->prefix_len) == 0;
}
/* Entity names (SPEC section 3): 1..128 bytes of A-Z a-z 0-9 . _ : - */
#define ENTITY_NAME_MAX 128
int entity_name_valid(const char *s, size_t n);

#endif
