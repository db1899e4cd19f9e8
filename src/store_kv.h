/* The store's side of replication to Consul KV: which buckets and fence
 * still have to be written, the txns that write them, what a committed
 * txn makes usable, and merging the state read after a takeover. Builds
 * request bodies and reads answers; the Consul client sends them. */
#ifndef STORE_KV_H
#define STORE_KV_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"
#include "shard_kv.h"
#include "store.h"

/* Turns replication bookkeeping on (Consul configured). -1 out of memory. */
int store_kv_enable(struct store *s);
/* on: hand out only what KV has committed (the lock is held and the state
 * merged); off: nothing is handed out at all (gate closed) or, in fail-open
 * mode, the journal alone decides. */
void store_kv_require(struct store *s, int on);

/* A takeover reads the shard's KV state: begin forgets what KV was known to
 * hold, bucket_value merges one e/XYZ value (-1 with err when malformed),
 * end queues every entity KV lacks or holds lower, and journals the merged
 * state (a compaction) when it changed anything. 0 ok, -1 when that write
 * failed. */
void store_kv_read_begin(struct store *s);
int store_kv_read_bucket(struct store *s, const char *val, size_t n, char *err, size_t errlen);
int store_kv_read_end(struct store *s);

/* Builds the next txn into body (the guard's checks first, then up to 62
 * bucket, fence or identity writes under prefix, shard_kv_prefix()).
 * Returns the number of writes, 0 when nothing is waiting. */
size_t store_kv_txn(struct store *s, struct buf *body, const char *prefix,
		    const struct shard_kv_guard *guard);
/* The txn's outcome: committed (its marks become usable) or not (its
 * writes are queued again). */
void store_kv_txn_done(struct store *s, int committed);
/* 1 while something waits to be written. */
int store_kv_pending(const struct store *s);
/* The change counter of e's bucket now, and whether KV has committed it. */
uint32_t store_kv_version(const struct store *s, uint32_t hash);
int store_kv_committed(const struct store *s, uint32_t hash, uint32_t version);

#endif
