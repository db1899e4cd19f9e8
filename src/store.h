/* Entities, their type bindings and sequence state, made durable through the
 * journal: every value handed out lies below a reservation already fsync'd. */
#ifndef STORE_H
#define STORE_H
#include <stddef.h>
#include <stdint.h>
#include "idtype.h"
#include "journal.h"
#include "seq.h"
#include "snowflake.h"

#define ENTITY_NAME_MAX 128

struct entity {
	struct entity *next;          /* hash chain */
	uint32_t hash;
	uint8_t name_len;
	char name[ENTITY_NAME_MAX + 1];
	enum id_type type;
	struct seq_shape shape;       /* int/long only */
	uint64_t start_i;             /* first iteration since creation or reset */
	uint64_t next_i;              /* next iteration to hand out */
	uint64_t reserved_i;          /* iterations below this are reserved on disk */
	uint64_t reserved_from_i;     /* next_i when the last reservation was made */
	uint64_t last_reserve_ms;     /* monotonic time of it (0: none since start) */
	uint64_t last_snowflake;      /* last snowflake handed out for it (0: none) */
	uint8_t resumed;              /* continues below its mark after a clean stop:
	                                 the mark is journaled again before first use */
	uint8_t deleted;              /* tombstone: hidden from every route; its
	                                 reserved_i is where a re-created entity
	                                 starts, so delete cannot repeat values */
};

enum store_status {
	STORE_OK,
	STORE_EXISTS,
	STORE_NOT_FOUND,
	STORE_EXHAUSTED,   /* sequence past its type's maximum */
	STORE_BACKWARDS,   /* reset below the next value without force */
	STORE_UNAVAILABLE, /* journal write failed: nothing handed out */
	STORE_NOMEM,
};

struct store {
	struct entity **buckets;
	size_t nbuckets;
	size_t count;                 /* live entities */
	size_t slots;                 /* live entities and tombstones */
	struct journal *journal;      /* NULL: memory only (unit tests) */
	uint64_t shard, total;
	struct sf_gen gen;
	uint64_t fence_ahead_ticks;   /* how far ahead of use the snowflake fence is written */
	uint64_t compacted_bytes;     /* journal size after the last compaction */
	char failure[160];            /* last storage error, "" when healthy */
	uint64_t last_probe_ms;
};

/* Opens (and replays) the journal in dir; dir NULL = memory only. */
int store_open(struct store *s, const char *dir, uint64_t shard, uint64_t total,
	       const struct sf_layout *layout, uint64_t machine, char *err, size_t errlen);
void store_close(struct store *s);

/* A live entity (never a tombstone). */
struct entity *store_find(struct store *s, const char *name, size_t len);
/* First iteration a new entity of this name can start at without repeating a
 * value that a deleted one may have handed out (0 when none was deleted). */
uint64_t store_floor(struct store *s, const char *name, size_t len);
/* Hands out k consecutive iterations of a sequence entity, reserving a new
 * segment first when needed. *first_i gets the first one. */
enum store_status store_take(struct store *s, struct entity *e, uint64_t k,
			     uint64_t now_mono_ms, uint64_t *first_i);
/* Creates an entity starting at start_i (the caller applies store_floor); a
 * sequence gets its first small segment in the same journal write, so a new
 * entity costs one fsync. */
enum store_status store_init(struct store *s, const char *name, size_t len,
			     enum id_type type, uint64_t start_i, uint64_t now_mono_ms,
			     struct entity **out);
enum store_status store_reset(struct store *s, struct entity *e, uint64_t i, int force);
/* Hides the entity; a sequence's high-water mark stays as a tombstone. */
enum store_status store_delete(struct store *s, const char *name, size_t len);
/* Next snowflake at now_ms (batch: may use what the previous tick left,
 * see sf_gen.carry_over); writes a new time fence to the journal when the
 * generator reaches the old one. STORE_UNAVAILABLE on a failed write;
 * otherwise *st tells the generator's answer. */
enum store_status store_snowflake(struct store *s, uint64_t now_ms, int batch,
				  enum sf_status *st, uint64_t *id, uint64_t *wait_ms);
/* While the journal is failing, tries a harmless write (at most once a
 * second) so health recovers without waiting for an ID request. */
void store_probe(struct store *s, uint64_t now_mono_ms);
/* Clean stop, once nothing more is handed out: records how far each
 * sequence got, so the next start continues there instead of above its
 * reservation (no gap, exact currentValue). -1 if that write failed, which
 * only costs the gap. */
int store_stop(struct store *s);
/* Rewrites the journal as a snapshot of the live state and tombstones. */
int store_compact(struct store *s);
/* Live entities sorted by name (malloc'd array of count; caller frees). NULL on OOM. */
struct entity **store_sorted(struct store *s);
/* Value of iteration i of e. */
static inline uint64_t entity_value(const struct entity *e, uint64_t i)
{
	return seq_value(&e->shape, i);
}
uint64_t store_fsyncs(const struct store *s);
uint64_t store_journal_bytes(const struct store *s);

#endif
