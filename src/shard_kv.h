/* The shard's state as Consul KV holds it, encoded and decoded here: pure
 * functions over caller buffers, no I/O.
 *
 * Keys, under <SERVICE_NAME>/shards/<k>/ (the lock key <SERVICE_NAME>/shards/<k>
 * itself holds the holder's description):
 *   identity   "shard=K totalShards=N layout=L machineId=M"
 *   fence      decimal snowflake tick: ticks below it may have been used
 *   e/XYZ      one of 4096 buckets (XYZ = three hex digits of the name's
 *              hash), one line per entity:
 *              "name type start mark[ prefix=P][ format=base62][ deleted]"
 *              with start and mark as iteration indexes (value = shard +
 *              i * totalShards); mark: iterations below it may have been
 *              handed out; prefix and format: how its IDs are written
 *              (struct id_style; lines written before them have neither).
 * Entities are packed into buckets so that 100,000 of them are 4096 keys,
 * read in 16 prefix pages (e/0 .. e/f) and written 63 buckets per txn.
 *
 * The cluster's configuration, <SERVICE_NAME>/config, is what every shard
 * must agree on: "totalShards=N layout=L generation=G[ reshardTo=M]".
 * Generation 1 keeps its shards' state under <SERVICE_NAME>/shards/<k>/;
 * each reshard writes the next generation's under
 * <SERVICE_NAME>/generations/<g>/shards/<k>/ (the locks stay
 * <SERVICE_NAME>/shards/<k>). reshardTo marks a reshard under way: the
 * shards are frozen (no new reservation) until generation g+1 is written. */
#ifndef SHARD_KV_H
#define SHARD_KV_H
#include <stddef.h>
#include <stdint.h>
#include "idtype.h"
#include "json.h"

#define SHARD_KV_BUCKETS   4096
#define SHARD_KV_PAGES     16
#define SHARD_KV_TXN_OPS   64             /* Consul's limit per txn */
#define SHARD_KV_TXN_BYTES (384 * 1024)    /* below Consul's 512 KiB txn body limit */
#define SHARD_KV_VALUE_MAX (256 * 1024)    /* a bucket value, below Consul's 512 KiB */
#define SHARD_KV_IDENTITY_MAX 160

/* FNV-1a: the store's hash table and the KV bucket (hash % 4096) use it. */
static inline uint32_t shard_kv_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}
static inline unsigned shard_kv_bucket(uint32_t hash)
{
	return hash & (SHARD_KV_BUCKETS - 1);
}

/* "shard=K totalShards=N layout=L machineId=M"; returns its length. */
size_t shard_kv_identity(char out[SHARD_KV_IDENTITY_MAX], unsigned shard, unsigned total,
			 const char *layout, uint64_t machine);

/* Parses what shard_kv_identity() writes: 0 with its parts (layout[] holds
 * up to 63 bytes), -1 when s is not such a text or a number is out of range
 * (shard 1..total, total up to 1024). */
int shard_kv_identity_parse(const char *s, unsigned *shard, unsigned *total, char layout[64],
			    uint64_t *machine);

#define SHARD_KV_CONFIG_MAX 160
#define SHARD_KV_PREFIX_MAX 160
struct shard_kv_cluster {
	unsigned total;
	char layout[64];
	uint64_t generation;          /* 1 until the first reshard (also when the text has none) */
	unsigned reshard_to;          /* 0, or M while a reshard to M shards is under way */
};
/* "totalShards=N layout=L generation=G[ reshardTo=M]"; returns its length. */
size_t shard_kv_config(char out[SHARD_KV_CONFIG_MAX], const struct shard_kv_cluster *c);
/* Reads the words above in any order (unknown words are left for later
 * versions; no generation, or 0, reads as 1). 0 ok; -1 when totalShards or
 * layout is missing or a value is malformed. */
int shard_kv_config_parse(const char *v, size_t n, struct shard_kv_cluster *c);
/* Where generation g keeps shard k's state (see above); returns its length. */
size_t shard_kv_prefix(char out[SHARD_KV_PREFIX_MAX], const char *svc, uint64_t generation,
		       unsigned shard);

struct kv_entity {
	char name[ENTITY_NAME_MAX + 1];
	size_t name_len;
	enum id_type type;
	struct id_style style;
	uint64_t start_i, mark_i;
	int deleted;
};

/* Appends one bucket line for e. */
void shard_kv_put_entity(struct buf *b, const struct kv_entity *e);
/* Decodes a bucket value, calling fn per entity (fn returns non-zero to
 * stop: that value is returned). -1 with err on a malformed line. */
int shard_kv_parse_bucket(const char *v, size_t n,
			  int (*fn)(void *ud, const struct kv_entity *e), void *ud,
			  char *err, size_t errlen);

/* Standard base64 (with padding), as Consul's JSON carries values. */
void shard_kv_base64(struct buf *b, const char *s, size_t n);
/* Decodes in place-safe into out (cap >= n * 3 / 4); -1 when malformed. */
long shard_kv_unbase64(const char *s, size_t n, char *out, size_t cap);

/* Walks Consul's KV listing (a JSON array of objects with "Key" and
 * "Value", Value base64 or null), calling fn with the key and the decoded
 * value. Other fields are skipped. fn returns non-zero to stop (returned).
 * -1 with err when the listing is malformed. */
int shard_kv_parse_listing(const char *json, size_t n,
			   int (*fn)(void *ud, const char *key, size_t key_len,
				     const char *val, size_t val_len),
			   void *ud, char *err, size_t errlen);

/* What a txn checks first: the writer still holds the lock (session
 * non-NULL) and the cluster configuration is the one it read (config_key
 * non-NULL: check-index on its ModifyIndex, so that a reshard's freeze
 * stops every write of the old generation). */
struct shard_kv_guard {
	const char *lock_key, *session;
	const char *config_key;
	uint64_t config_index;
};
/* The value of key in a KV listing (Consul's answer to a GET of that key):
 * 1 with out[0..*len) (cut at cap bytes), 0 when the listing lacks it, -1
 * with err when the listing is malformed. */
int shard_kv_listing_value(const char *json, size_t n, const char *key, char *out, size_t cap,
			   size_t *len, char *err, size_t errlen);

/* Txn building: begin writes `[` and the guard's checks; set / del /
 * del_tree append one op each; end closes the array. */
void shard_kv_txn_begin(struct buf *b, const struct shard_kv_guard *g);
void shard_kv_txn_set(struct buf *b, const char *key, const char *val, size_t n);
void shard_kv_txn_del(struct buf *b, const char *key);
void shard_kv_txn_del_tree(struct buf *b, const char *prefix);
void shard_kv_txn_end(struct buf *b);
/* The index of the op a 409 txn answer failed on (0: the session check of
 * a guarded txn), -1 when the answer names none. */
int shard_kv_txn_failed_op(const char *body, size_t n);

#endif
