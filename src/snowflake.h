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
/* Unix ms at which the time field runs out (first tick that no longer fits);
 * UINT64_MAX when that lies beyond 64-bit milliseconds (some custom layouts). */
uint64_t sf_exhausts_at_ms(const struct sf_layout *l);

uint64_t sf_compose(const struct sf_layout *l, uint64_t tick, uint64_t seq, uint64_t machine);
struct sf_parts { uint64_t tick, seq, machine, unix_ms; };
/* 0 ok, -1 when id does not fit 63 bits. unix_ms = epoch + tick * unit. */
int sf_decompose(const struct sf_layout *l, uint64_t id, struct sf_parts *p);

struct sf_gen {
	struct sf_layout layout;
	uint64_t machine;
	uint64_t last_tick;  /* tick of the last ID issued (or the restored fence) */
	uint64_t next_seq;   /* next sequence number within last_tick */
	uint64_t fence_tick; /* ticks >= this need a persisted fence first (UINT64_MAX: no limit) */
	int carry_over;      /* 1: a tick that just ended lends its unused sequence numbers (batches) */
};

enum sf_status {
	SF_OK,
	SF_WAIT,         /* tick's sequence space used up or clock behind: retry after *wait_ms */
	SF_NEED_FENCE,   /* the ID would come from tick sf_tick_of(now) >= fence_tick:
			  * persist a fence F above it (ticks < F may be used), set
			  * g->fence_tick = F, then retry */
	SF_EXHAUSTED,    /* time field overflow, or clock before the epoch */
};

/* resume_tick: 0 for a fresh start, or the persisted fence after a restart.
 * No ID is then issued from a tick <= resume_tick, and fence_tick starts at
 * resume_tick, so the first ID asks for a new fence (SF_NEED_FENCE). */
void sf_gen_init(struct sf_gen *g, const struct sf_layout *l, uint64_t machine,
		 uint64_t resume_tick);
/* Issues one ID at wall-clock time now_ms. On SF_WAIT, *wait_ms > 0 is how far
 * the clock must advance (the caller decides whether to wait or fail). When
 * the clock is behind the last ID, IDs continue in that ID's tick while its
 * sequence space lasts. Any status but SF_OK leaves the generator unchanged.
 * SF_EXHAUSTED: time field overflow, or now_ms before the epoch. */
enum sf_status sf_next(struct sf_gen *g, uint64_t now_ms, uint64_t *id, uint64_t *wait_ms);
/* (unix_ms - epoch) / unit; 0 before the epoch. */
uint64_t sf_tick_of(const struct sf_layout *l, uint64_t unix_ms);

#endif
