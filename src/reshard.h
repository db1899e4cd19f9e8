/* `shardid reshard --total M`: moves a Consul cluster from N to M shards
 * without a repeated value.
 *
 * 1. Freeze: <svc>/config gets reshardTo=M (cas on its index). Every state
 *    txn of the holders checks that index, so from here on no shard
 *    reserves anything more; they serve what they already reserved.
 * 2. Read every old shard's state (fence, entity buckets): KV bounds
 *    everything any shard handed out, because values are handed out only
 *    below what KV committed.
 * 3. Write generation g+1 under its own prefix: for every new shard, every
 *    entity starts at its first value above the highest value of the old
 *    layout (a per-entity base), and the snowflake fence is the highest
 *    old fence, so new snowflakes (machine ID = new shard) lie above every
 *    old one whatever machine ID made them.
 * 4. Switch: the configuration becomes totalShards=M generation=g+1 (cas).
 *    Holders of the old shard count stop serving and release their locks;
 *    instances started with TOTAL_SHARDS=M take the shards over.
 * 5. The old generation's state is deleted.
 * A run that stops half-way leaves the cluster frozen (nothing repeats,
 * nothing new is reserved); running it again with the same M finishes. */
#ifndef RESHARD_H
#define RESHARD_H
#include <stdint.h>
#include "config.h"
#include "shard_kv.h"

/* One entity of the old generation, merged over its shards. */
struct reshard_entity {
	struct kv_entity e;       /* type and fields of its first line; deleted only if deleted everywhere */
	uint64_t floor;           /* no value below it may be handed out any more (0: no sequence) */
};

/* Merges one old shard's line for the entity (m->e.name_len 0: the first). */
void reshard_merge(struct reshard_entity *m, const struct kv_entity *line, unsigned shard,
		   unsigned total);
/* The entity's line for shard `shard` of the new layout: it starts (and
 * its mark is) at its first value at or above the floor. */
void reshard_line(const struct reshard_entity *m, unsigned shard, unsigned total,
		  struct kv_entity *out);

/* Runs the reshard against cfg's Consul and service, reporting on the file
 * descriptor out. 0 done (or nothing to do), -1 with err. */
int reshard(const struct config *cfg, unsigned to, int out, char *err, size_t errlen);

#endif
