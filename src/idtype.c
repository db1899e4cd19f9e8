/* Names and properties of the data types an entity can be bound to, the
 * style (TypeID prefix, base62) it may bind with them, and the rule for
 * entity names. */
#include <string.h>
#include "idtype.h"
#include "tsid.h"

_Static_assert(ID_PREFIX_MAX == TSID_PREFIX_MAX, "one TypeID prefix bound");

static const char *const type_names[TYPE_COUNT] = {
	[TYPE_INT] = "int",         [TYPE_LONG] = "long",
	[TYPE_SNOWFLAKE] = "snowflake",
	[TYPE_UUID8] = "uuid8",     [TYPE_UUID12] = "uuid12",
	[TYPE_UUID16] = "uuid16",   [TYPE_UUID22] = "uuid22",
	[TYPE_UUID7] = "uuid7",     [TYPE_ULID] = "ulid",
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

int id_type_tsid(enum id_type t)
{
	return t == TYPE_UUID7 ? 0 : t == TYPE_ULID ? 1 : -1;
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

const char *id_style_problem(enum id_type t, const struct id_style *s)
{
	if (s->format > FMT_BASE62 || (s->format == FMT_BASE62 && t != TYPE_SNOWFLAKE))
		return "format must be base62 (snowflake only)";
	if (s->prefix_len && t != TYPE_UUID7)
		return "prefix applies to uuid7 only";
	if (s->prefix_len > ID_PREFIX_MAX || !tsid_prefix_valid(s->prefix, s->prefix_len))
		return "prefix must be 1..63 of a-z and _, not starting or ending with _";
	return NULL;
}

/* One byte a character: checked on every request, so a table. */
static const unsigned char name_char[256] = {
	['-'] = 1, ['.'] = 1, [':'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int entity_name_valid(const char *s, size_t n)
{
	unsigned ok = n >= 1 && n <= ENTITY_NAME_MAX;
	for (size_t i = 0; i < n; i++)
		ok &= name_char[(unsigned char)s[i]];
	return (int)ok;
}
