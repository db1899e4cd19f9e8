/* The data types an entity can be bound to. */
#ifndef IDTYPE_H
#define IDTYPE_H
#include <stddef.h>

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
/* Entity names (SPEC section 3): 1..128 bytes of A-Z a-z 0-9 . _ : - */
#define ENTITY_NAME_MAX 128
int entity_name_valid(const char *s, size_t n);

#endif
