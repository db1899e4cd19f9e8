/* A KV bucket line's entity from its fields, for the tests that build
 * them (shard_kv, store_kv, reshard). */
#ifndef KV_LINE_H
#define KV_LINE_H
#include <string.h>
#include "shard_kv.h"

static inline struct kv_entity kv_line(const char *name, enum id_type t, uint64_t start,
				       uint64_t mark, int deleted)
{
	struct kv_entity e;
	memset(&e, 0, sizeof e);
	e.name_len = strlen(name);
	memcpy(e.name, name, e.name_len);
	e.type = t;
	e.start_i = start;
	e.mark_i = mark;
	e.deleted = deleted;
	return e;
}

#endif
