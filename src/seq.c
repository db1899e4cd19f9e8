/* Interleaved sequences: value(i) = shard + i * total, bounded by max.
 * max < 2^63 and shard, total <= 1024, so every expression below stays far
 * from 64-bit overflow as long as i < seq_count(). */
#include "seq.h"

struct seq_shape seq_shape_make(uint64_t shard, uint64_t total, enum id_type t)
{
	struct seq_shape s = {
		.shard = shard,
		.total = total,
		.max = t == TYPE_INT ? SEQ_INT_MAX : SEQ_LONG_MAX,
	};
	return s;
}

uint64_t seq_count(const struct seq_shape *s)
{
	if (s->total == 0 || s->shard > s->max)
		return 0;
	return (s->max - s->shard) / s->total + 1;
}

uint64_t seq_value(const struct seq_shape *s, uint64_t i)
{
	return s->shard + i * s->total;
}

int seq_snap(const struct seq_shape *s, uint64_t v, uint64_t *i, int *adjusted)
{
	uint64_t count = seq_count(s), idx;
	int moved;

	if (count == 0)
		return -1;
	if (v <= s->shard) {
		idx = 0;
		moved = v != s->shard;
	} else {
		/* Round (v - shard) / total up without computing v + total - 1,
		 * which could wrap for v near UINT64_MAX. */
		uint64_t d = v - s->shard;
		idx = d / s->total + (d % s->total != 0);
		moved = d % s->total != 0;
	}
	if (idx >= count)
		return -1;
	*i = idx;
	*adjusted = moved;
	return 0;
}

uint64_t seq_first_from(const struct seq_shape *s, uint64_t v)
{
	uint64_t i;
	int adjusted;
	return seq_snap(s, v, &i, &adjusted) == 0 ? i : seq_count(s);
}
