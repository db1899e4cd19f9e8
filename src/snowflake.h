/* Snowflake/Sonyflake layouts, a generator that takes `now` as an argument,
 * and the parser for IDs. Pure: no clock, no I/O. */
#ifndef SNOWFLAKE_H
#define SNOWFLAKE_H
#include <stddef.h>
#include <stdint.h>

enum sf_order { SF_TIME_SEQ_MACHINE, SF_TIME_MACHINE_SEQ };

struct sf_layout {
	char name[64];          /* "sonyflake", "twitter", or the custom spec */
	enum sf_order order;    /* sonyflake: time|seq|machine; twitter, custom: time|machine|seq */
	unsigned time_bits, seq_bits, machine_bits;   /* sum is 63 */
	uint64_t unit_ms;       /* length of one time tick */
	uint64_t epoch_ms;      /* Unix ms of tick 0 */
};

/* Parses "sonyflake", "twitter" or "custom:UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS".
 * 0 ok; -1 with a message naming the problem and the accepted range. */
int sf_layout_parse(const char *s, struct sf_layout *out, char *err, size_t errlen);
uint64_t sf_max_machine(const struct sf_layout *l);
uint64_t sf_max_ids_per_second(const struct sf_layout *l);
/* Unix ms at which the time field runs out (first tick that no longer fits). */
uint64_t sf_exhausts_at_ms(const struct sf_layout *l);

uint64_t sf_compose(const struct sf_layout *l, uint64_t tick, uint64_t seq, uint64_t machine);
struct sf_parts { uint64_t tick, seq, machine, unix_ms; };
/* 0 ok, -1 when id does not fit 63 bits. */
int sf_decompose(const struct sf_layout *l, uint64_t id, struct sf_parts *p);

struct sf_gen {
	struct sf_layout layout;
	uint64_t machine;
	uint64_t last_tick;  /* tick of the last ID issued (or the restored fence) */
	uint64_t next_seq;   /* next sequence number within last_tick */
	uint64_t fence_tick; /* ticks >= this need a persisted fence first (UINT64_MAX: no limit) */
};

enum sf_status {
	SF_OK,
	SF_WAIT,         /* tick's sequence space used up or clock behind: retry after *wait_ms */
	SF_NEED_FENCE,   /* persist a fence above *fence_tick_needed, then retry */
	SF_EXHAUSTED,    /* time field overflow, or clock before the epoch */
};

void sf_gen_init(struct sf_gen *g, const struct sf_layout *l, uint64_t machine,
		 uint64_t resume_tick /* 0, or the persisted fence */);
/* Issues one ID at wall-clock time now_ms. On SF_WAIT, *wait_ms > 0 is how far
 * the clock must advance (the caller decides whether to wait or fail). */
enum sf_status sf_next(struct sf_gen *g, uint64_t now_ms, uint64_t *id, uint64_t *wait_ms);
uint64_t sf_tick_of(const struct sf_layout *l, uint64_t unix_ms);

#endif
