/* Time-sortable 128-bit IDs, UUIDv7 (RFC 9562) and ULID: a monotonic
 * generator that takes `now` and the random bytes as arguments, and their
 * text forms (canonical UUID, Crockford base32 for ULID and TypeID). Also
 * the fixed-width base62 form of snowflakes. Pure: no clock, no I/O. */
#ifndef TSID_H
#define TSID_H
#include <stddef.h>
#include <stdint.h>
#include "snowflake.h"

enum tsid_kind { TSID_UUID7, TSID_ULID };

/* Random bytes one ID consumes. */
#define TSID_RANDOM 10

/* UUIDv7 uses RFC 9562 section 6.2 method 1: rand_a (12 bits) is a counter,
 * seeded on each new millisecond with 11 random bits (top bit 0, so at least
 * 2048 IDs fit a millisecond); rand_b is fresh random in every ID. ULID
 * increments its 80 random bits within a millisecond (the ULID spec).
 * When either runs out, or the clock is behind and the last millisecond's
 * space is used up, the generator asks to wait (SF_WAIT), like sf_next. */
struct tsid_gen {
	enum tsid_kind kind;
	uint64_t last_ms;     /* millisecond of the last ID (or the floor - 1) */
	uint64_t hi, lo;      /* the last ID, big-endian halves */
	int full;             /* last_ms has no room for another ID */
};

/* floor_ms: no ID from a millisecond below it (0: none), so a restart
 * continues above what an earlier run may have issued. */
void tsid_gen_init(struct tsid_gen *g, enum tsid_kind kind, uint64_t floor_ms);
/* Raises the floor (a merged fence); never lowers it. */
void tsid_raise_floor(struct tsid_gen *g, uint64_t floor_ms);
/* The millisecond the next ID would carry at now_ms. */
uint64_t tsid_ms_for(const struct tsid_gen *g, uint64_t now_ms);
/* Next ID into out[16] (big-endian bytes) from rnd[TSID_RANDOM]. SF_OK, or
 * SF_WAIT with *wait_ms (generator unchanged), or SF_EXHAUSTED past 48-bit
 * milliseconds. */
enum sf_status tsid_next(struct tsid_gen *g, uint64_t now_ms, const uint8_t *rnd,
			 uint8_t out[16], uint64_t *wait_ms);

/* Canonical lowercase 8-4-4-4-12 (36 chars, no NUL). */
void tsid_uuid_text(const uint8_t id[16], char out[36]);
int tsid_uuid_parse(const char *s, size_t n, uint8_t id[16]);
/* 26 Crockford base32 characters, upper (ULID) or lower (TypeID) case. */
void tsid_base32(const uint8_t id[16], int lower, char out[26]);
/* Decodes 26 characters of base32 (either case for ULID; TypeID passes
 * lower_only). The first must be 0-7. 0 ok, -1 bad. */
int tsid_base32_parse(const char *s, size_t n, int lower_only, uint8_t id[16]);
/* TypeID prefix rule: 0..63 of [a-z_], not starting or ending with '_'. */
#define TSID_PREFIX_MAX 63
int tsid_prefix_valid(const char *s, size_t n);
/* TypeID: prefix, '_' and the 26 lowercase base32 characters of id (no
 * '_' when n is 0). out has room for TSID_TYPEID_MAX; returns the length. */
#define TSID_TYPEID_MAX (TSID_PREFIX_MAX + 1 + 26)
size_t tsid_typeid(const char *prefix, size_t n, const uint8_t id[16], char *out);
/* Reads a TypeID: the prefix is s[0..*prefix_len) (0: none), the suffix
 * after the last '_' decodes into id. 0 ok, -1 bad. */
int tsid_typeid_parse(const char *s, size_t n, size_t *prefix_len, uint8_t id[16]);
/* 1 when id has version 7 and the RFC 9562 variant. */
int tsid_is_uuid7(const uint8_t id[16]);
/* Milliseconds of a UUIDv7 or ULID. */
uint64_t tsid_ms(const uint8_t id[16]);
/* The smallest UUIDv7 of a millisecond (all other bits 0 but version and variant). */
void tsid_uuid7_floor(uint64_t ms, uint8_t id[16]);

/* Snowflakes as 11 base62 characters 0-9A-Za-z, zero-padded, so that byte
 * order equals numeric order. */
#define TSID_B62_LEN 11
void tsid_base62(uint64_t v, char out[TSID_B62_LEN]);
/* 0 ok, -1 when not 11 base62 characters or above 2^64-1. */
int tsid_base62_parse(const char *s, size_t n, uint64_t *v);

#endif
