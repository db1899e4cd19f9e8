/* `shardid reidentify`: moves a DATA_DIR to another shard identity (shard,
 * total shards, snowflake layout, machine ID) on purpose. Every sequence
 * mark is carried over by value, so each int/long value the new identity
 * hands out is larger than every value handed out under the old one; the
 * snowflake fence moves to the first tick of the new layout whose smallest
 * ID is larger than every ID the old fence allowed. It does not coordinate
 * with other shards: another shard may still hand out values of this
 * shard's new residue class. */
#ifndef REIDENTIFY_H
#define REIDENTIFY_H
#include "config.h"

/* Rewrites cfg->data_dir for cfg's identity, printing what it did to out.
 * 0 done (or nothing to do), -1 with err: nothing was changed. */
int reidentify(const struct config *cfg, int out, char *err, size_t errlen);

#endif
