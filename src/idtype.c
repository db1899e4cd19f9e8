/* Names and properties of the data types an entity can be bound to, and the
 * rule for entity names. */
#include <string.h>
#include "idtype.h"

static const char *const type_names[TYPE_COUNT] = {
	[TYPE_INT] = "int",         [TYPE_LONG] = "long",
	[TYPE_SNOWFLAKE] = "snowflake",
	[TYPE_UUID8] = "uuid8",     [TYPE_UUID12] = "uuid12",
	[TYPE_UUID16] = "uuid16",   [TYPE_UUID22] = "uuid22",
};

const char *id_type_name(enum id_type t)
{
	return (unsigned)t < TYPE_COUNT ? type_names[t] : "?";
}

int id_type_parse(const char *s, size_t n, enum id_type *out)
{
	for (int t = 0; t < TYPE_COUNT; t++) {
		if (strlen(type_names[t]) == n && memcmp(type_names[t], s, n) == 0) {
			*out = (enum id_type)t;
			return 0;
		}
	}
	return -1;
}

int id_type_is_seq(enum id_type t)
{
	return t == TYPE_INT || t == TYPE_LONG;
}

size_t id_type_uuid_len(enum id_type t)
{
	switch (t) {
	case TYPE_UUID8:  return 8;
	case TYPE_UUID12: return 12;
	case TYPE_UUID16: return 16;
	case TYPE_UUID22: return 22;
	default:          return 0;
	}
}

int entity_name_valid(const char *s, size_t n)
{
	if (n < 1 || n > ENTITY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == ':' || ch == '-'))
			return 0;
	}
	return 1;
}
