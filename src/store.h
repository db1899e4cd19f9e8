/* Entities, their type bindings and sequence state, made durable through the
 * journal: every value handed out lies below a reservation already fsync'd. */
#ifndef STORE_H
#define STORE_H
#include <stddef.h>
#include <stdint.h>
#include "idtype.h"
#include "journal.h"
#include "seq.h"
#include "shard_kv.h"
#include "snowflake.h"
#include "tsid.h"

struct entity {
	struct entity *next;          /* hash chain */
	uint32_t hash;
	uint8_t name_len;
	char name[ENTITY_NAME_MAX + 1];
	enum id_type type;
	struct id_style style;        /* bound with the type: base62, TypeID prefix */
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
	/* Replication to Consul KV (store_kv.c); unused without Consul. */
	uint8_t kv_bound;             /* KV holds this binding (or tombstone) */
	uint8_t kv_sent;              /* part of the txn in flight */
	uint64_t kv_i;                /* KV's committed mark: with replication on,
	                                 only iterations below it and reserved_i
	                                 are handed out */
	uint64_t kv_sent_i;           /* the mark the txn in flight carries */
};

/* Which parts of the state KV has yet to confirm (store_kv.c). */
struct store_kv {
	int required;                 /* hand out only what KV has committed */
	uint32_t ver[SHARD_KV_BUCKETS];   /* changes made to each bucket */
	uint32_t sent[SHARD_KV_BUCKETS];  /* its ver in the txn in flight */
	uint32_t done[SHARD_KV_BUCKETS];  /* its ver that KV has committed */
	uint8_t queued[SHARD_KV_BUCKETS];
	uint16_t queue[SHARD_KV_BUCKETS]; /* ring of changed buckets */
	size_t qhead, qlen;
	uint16_t txn[SHARD_KV_TXN_OPS];   /* buckets in the txn in flight */
	size_t txn_n;
	int txn_fence, txn_identity;      /* the txn in flight writes these */
	uint64_t fence;               /* committed snowflake fence: ticks below it may be used */
	uint64_t fence_want;          /* the fence to commit next (> fence: pending) */
	uint64_t fence_sent;
	int identity_ok;              /* KV holds our identity */
	unsigned merged;              /* entities the last merge changed locally */
};

enum store_status {
	STORE_OK,
	STORE_EXISTS,
	STORE_NOT_FOUND,
	STORE_EXHAUSTED,   /* sequence past its type's maximum */
	STORE_BACKWARDS,   /* reset below the next value without force */
	STORE_UNAVAILABLE, /* journal write failed: nothing handed out */
	STORE_NOMEM,
	STORE_PENDING,     /* reserved locally; waits for Consul KV to commit it */
};

struct store {
	struct entity **buckets;
	size_t nbuckets;
	size_t count;                 /* live entities */
	size_t slots;                 /* live entities and tombstones */
	struct journal *journal;      /* NULL: memory only (unit tests) */
	uint64_t shard, total;
	struct sf_gen gen;
	struct tsid_gen tsid[2];      /* uuid7, ulid: one each per instance, under gen's fence */
	uint64_t fence;               /* snowflake fence in the journal (0: none) */
	uint64_t fence_ahead_ticks;   /* how far ahead of use the snowflake fence is written */
	char identity[SHARD_KV_IDENTITY_MAX];
	struct store_kv *kv;          /* NULL: no replication (Consul off) */
	uint64_t compacted_bytes;     /* journal size after the last compaction */
	char failure[160];            /* last storage error, "" when healthy */
	uint64_t last_probe_ms;
};

/* Opens (and replays) the journal in dir; dir NULL = memory only. A journal
 * must belong to this shard identity (shard, total, layout, machine): -2
 * with err naming both when it belongs to another; a journal without an
 * identity (written before it was recorded) adopts this one. -1 other errors. */
int store_open(struct store *s, const char *dir, uint64_t shard, uint64_t total,
	       const struct sf_layout *layout, uint64_t machine, char *err, size_t errlen);
void store_close(struct store *s);
/* SHARD_ID=auto: shard 0 opens an empty DATA_DIR without an identity
 * (-2 when it holds state); store_assign gives it its shard once claimed,
 * journaling the identity (-1 when that write failed). */
int store_assign(struct store *s, uint64_t shard, const struct sf_layout *layout, uint64_t machine);
/* The identity the journal in dir was written as ("shard=K ..."): 1 found
 * (out set), 0 none (a new or older journal), -1 with err. *records (if
 * not NULL): how many records the journal holds. */
int store_peek_identity(const char *dir, char out[SHARD_KV_IDENTITY_MAX], unsigned long *records,
			char *err, size_t errlen);

/* A live entity (never a tombstone). */
struct entity *store_find(struct store *s, const char *name, size_t len);
/* First iteration a new entity of this name can start at without repeating a
 * value that a deleted one may have handed out (0 when none was deleted). */
uint64_t store_floor(struct store *s, const char *name, size_t len);
/* Hands out k consecutive iterations of a sequence entity, reserving a new
 * segment first when needed. *first_i gets the first one. With replication
 * required, STORE_PENDING when the segment still waits for KV (call again
 * once it committed); a segment is also reserved ahead when the current one
 * is half used, so a steady stream rarely waits. */
enum store_status store_take(struct store *s, struct entity *e, uint64_t k,
			     uint64_t now_mono_ms, uint64_t *first_i);
/* Creates an entity starting at start_i (the caller applies store_floor),
 * written in style (NULL: the type's plain form; the caller checked it with
 * id_style_problem); a sequence gets its first small segment in the same
 * journal write, so a new entity costs one fsync. */
enum store_status store_init(struct store *s, const char *name, size_t len,
			     enum id_type type, const struct id_style *style, uint64_t start_i,
			     uint64_t now_mono_ms, struct entity **out);
enum store_status store_reset(struct store *s, struct entity *e, uint64_t i, int force);
/* Hides the entity; a sequence's high-water mark stays as a tombstone. */
enum store_status store_delete(struct store *s, const char *name, size_t len);
/* Next snowflake at now_ms (batch: may use what the previous tick left,
 * see sf_gen.carry_over); writes a new time fence to the journal when the
 * generator reaches the old one. STORE_UNAVAILABLE on a failed write;
 * STORE_PENDING when replication is required and KV's fence must move
 * first; otherwise *st tells the generator's answer. */
enum store_status store_snowflake(struct store *s, uint64_t now_ms, int batch,
				  enum sf_status *st, uint64_t *id, uint64_t *wait_ms);
/* Next UUIDv7 or ULID (tsid_next, random bytes rnd[TSID_RANDOM]) under the
 * snowflake fence: the fence is moved first when the ID's millisecond lies
 * in a tick at or above it, so a restart (whose floor is the fence)
 * continues above every ID issued. Statuses as store_snowflake. */
enum store_status store_tsid(struct store *s, enum tsid_kind k, uint64_t now_ms, const uint8_t *rnd,
			     enum sf_status *st, uint8_t id[16], uint64_t *wait_ms);
/* 1 when now_ms lies before the last ID issued by a time-based generator
 * (kind < 0: snowflakes; else enum tsid_kind): the clock stepped back, as
 * opposed to a tick's or millisecond's space running out. */
int store_clock_behind(const struct store *s, int kind, uint64_t now_ms);
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
/* Millionths of a sequence entity's range handed out (values below next),
 * and the largest of them over the live sequences: the one closest to
 * running out. */
uint64_t store_used_ppm(const struct entity *e);
uint64_t store_used_max_ppm(const struct store *s);
/* Live entities sorted by name (malloc'd array of count; caller frees). NULL on OOM. */
struct entity **store_sorted(struct store *s);
/* Calls fn for every entity and tombstone whose name falls in KV bucket b. */
void store_each_in_bucket(struct store *s, unsigned b, void (*fn)(void *ud, struct entity *e), void *ud);
/* Every entity and tombstone. */
void store_each(struct store *s, void (*fn)(void *ud, struct entity *e), void *ud);
/* Records that e changed: its KV bucket is written again (no-op without
 * replication). */
void store_touch(struct store *s, const struct entity *e);
/* Merges one entity as KV holds it into the store (after a takeover):
 * the higher mark wins, KV's binding and deletion win, tombstones stay.
 * Sets kv_i and kv_bound when the result equals KV's record; otherwise the
 * entity is touched so the merged state is written back. -1 out of memory. */
int store_merge_entity(struct store *s, const struct kv_entity *r);
/* Merges KV's snowflake fence: no ID at or below a tick a predecessor may
 * have used. */
void store_merge_fence(struct store *s, uint64_t kv_fence);
/* Value of iteration i of e. */
static inline uint64_t entity_value(const struct entity *e, uint64_t i)
{
	return seq_value(&e->shape, i);
}
uint64_t store_fsyncs(const struct store *s);
uint64_t store_journal_bytes(const struct store *s);

#endif
