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
 * must agree on: "totalShards=N layout=L generation=G". */
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

#define SHARD_KV_CONFIG_MAX 160
/* "totalShards=N layout=L generation=G"; returns its length. */
size_t shard_kv_config(char out[SHARD_KV_CONFIG_MAX], unsigned total, const char *layout,
		       uint64_t generation);
/* Compares a stored configuration with this instance's total and layout
 * (words in any order; unknown words are left for later versions). 0 when
 * they agree (*generation set, 0 when absent), 1 when they differ, -1 when
 * the text lacks totalShards or layout or has a malformed number. */
int shard_kv_config_check(const char *v, size_t n, unsigned total, const char *layout,
			  uint64_t *generation);

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

/* Txn building: begin writes `[` and the check-session op on the lock key;
 * set / del append one op each; end closes the array. */
void shard_kv_txn_begin(struct buf *b, const char *lock_key, const char *session);
void shard_kv_txn_set(struct buf *b, const char *key, const char *val, size_t n);
void shard_kv_txn_del(struct buf *b, const char *key);
void shard_kv_txn_end(struct buf *b);
/* A 409 txn answer failed on its first op, the session check: the lock is gone. */
int shard_kv_txn_lost_session(const char *body, size_t n);

#endif
