/* Pure arithmetic of interleaved sequences: value(i) = shard + i * total.
 * State is kept as the iteration index i, so no value is ever negative and
 * overflow is checked in one place. */
#ifndef SEQ_H
#define SEQ_H
#include <stdint.h>
#include "idtype.h"

#define SEQ_INT_MAX  UINT64_C(2147483647)
#define SEQ_LONG_MAX UINT64_C(9223372036854775807)

struct seq_shape {
	uint64_t shard;  /* 1..total */
	uint64_t total;  /* 1..1024 */
	uint64_t max;    /* SEQ_INT_MAX or SEQ_LONG_MAX */
};

struct seq_shape seq_shape_make(uint64_t shard, uint64_t total, enum id_type t);
/* Number of iterations that fit under max: i in [0, seq_count). */
uint64_t seq_count(const struct seq_shape *s);
/* Value of iteration i (caller ensures i < seq_count). */
uint64_t seq_value(const struct seq_shape *s, uint64_t i);
/* Smallest iteration whose value is >= v. Returns 0 and sets *i (and
 * *adjusted when value(i) != v), or -1 when no such iteration fits. */
int seq_snap(const struct seq_shape *s, uint64_t v, uint64_t *i, int *adjusted);
/* The first iteration whose value is >= v; seq_count() when none fits
 * (the sequence is used up): where a sequence continues above values that
 * another shape handed out below v. */
uint64_t seq_first_from(const struct seq_shape *s, uint64_t v);

#endif
