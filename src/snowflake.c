/* Snowflake layouts, ID packing and the generator. Pure: the caller passes
 * the wall clock in and persists fences; nothing here reads a clock. */
#include <string.h>
#include "snowflake.h"

#include "fmt.h"

#define UNIT_MS_MAX     UINT64_C(86400000)       /* one day */
#define SEQ_BITS_MAX    22
#define MACHINE_BITS_MAX 20
#define TIME_BITS_MIN   30
#define EPOCH_MS_MAX    UINT64_C(4102444800000)  /* 2100-01-01T00:00:00Z */

static const struct sf_layout layout_sonyflake = {
	.name = "sonyflake", .order = SF_TIME_SEQ_MACHINE,
	.time_bits = 39, .seq_bits = 8, .machine_bits = 16,
	.unit_ms = 10, .epoch_ms = UINT64_C(1640995200000),  /* 2022-01-01 */
};

static const struct sf_layout layout_twitter = {
	.name = "twitter", .order = SF_TIME_MACHINE_SEQ,
	.time_bits = 41, .seq_bits = 12, .machine_bits = 10,
	.unit_ms = 1, .epoch_ms = UINT64_C(1704067200000),   /* 2024-01-01 */
};

static uint64_t mask(unsigned bits)
{
	return bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
}

/* epoch + tick * unit, saturating: custom layouts can describe ranges far
 * beyond what 64-bit milliseconds can hold. */
static uint64_t tick_start_ms(const struct sf_layout *l, uint64_t tick)
{
	if (tick != 0 && l->unit_ms > UINT64_MAX / tick)
		return UINT64_MAX;
	uint64_t off = tick * l->unit_ms;
	return off > UINT64_MAX - l->epoch_ms ? UINT64_MAX : l->epoch_ms + off;
}

/* Parses one strictly decimal field [s, e): -2 when empty or not all
 * digits, -1 when above max (overflow included), 0 ok. */
static int parse_field(const char *s, const char *e, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	int too_big = 0;

	if (s == e)
		return -2;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -2;
		uint64_t d = (uint64_t)(*s - '0');
		if (too_big || v > (max - d) / 10)
			too_big = 1;
		else
			v = v * 10 + d;
	}
	*out = v;
	return too_big ? -1 : 0;
}

static int parse_custom(const char *spec, struct sf_layout *out, char *err, size_t errlen)
{
	static const char *const names[4] = { "TIME_UNIT_MS", "SEQ_BITS", "MACHINE_BITS", "EPOCH_MS" };
	static const uint64_t lo[4] = { 1, 1, 0, 0 };
	static const uint64_t hi[4] = { UNIT_MS_MAX, SEQ_BITS_MAX, MACHINE_BITS_MAX, EPOCH_MS_MAX };
	const char *start[4], *end[4];
	const char *p = spec + strlen("custom:");
	uint64_t v[4];
	size_t len = strlen(spec);

	if (len >= sizeof out->name) {
		fmt_snprintf(err, errlen, "custom layout '%.40s...' is %zu bytes long, at most %zu",
			 spec, len, sizeof out->name - 1);
		return -1;
	}
	for (int f = 0; f < 4; f++) {
		start[f] = p;
		while (*p && *p != '/')
			p++;
		end[f] = p;
		if (f < 3 && *p == '/')
			p++;
		else if (f < 3 || *p)
			goto shape;
	}
	for (int f = 0; f < 4; f++) {
		int r = parse_field(start[f], end[f], hi[f], &v[f]);
		if (r == -2)
			goto shape;
		if (r < 0 || v[f] < lo[f]) {
			fmt_snprintf(err, errlen, "custom layout '%s': %s %.*s is out of range %llu..%llu",
				 spec, names[f], (int)(end[f] - start[f]), start[f],
				 (unsigned long long)lo[f], (unsigned long long)hi[f]);
			return -1;
		}
	}
	unsigned time_bits = 63 - (unsigned)v[1] - (unsigned)v[2];
	if (time_bits < TIME_BITS_MIN) {
		fmt_snprintf(err, errlen, "custom layout '%s': SEQ_BITS + MACHINE_BITS = %u leaves %u time "
			 "bits, need at least %d (SEQ_BITS + MACHINE_BITS at most %d)",
			 spec, (unsigned)(v[1] + v[2]), time_bits, TIME_BITS_MIN, 63 - TIME_BITS_MIN);
		return -1;
	}
	memset(out, 0, sizeof *out);
	memcpy(out->name, spec, len + 1);
	out->order = SF_TIME_MACHINE_SEQ;
	out->unit_ms = v[0];
	out->seq_bits = (unsigned)v[1];
	out->machine_bits = (unsigned)v[2];
	out->time_bits = time_bits;
	out->epoch_ms = v[3];
	return 0;
shape:
	fmt_snprintf(err, errlen, "custom layout '%s': expected "
		 "custom:TIME_UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS with four decimal numbers", spec);
	return -1;
}

int sf_layout_parse(const char *s, struct sf_layout *out, char *err, size_t errlen)
{
	if (strcmp(s, "sonyflake") == 0) {
		*out = layout_sonyflake;
		return 0;
	}
	if (strcmp(s, "twitter") == 0) {
		*out = layout_twitter;
		return 0;
	}
	if (strncmp(s, "custom:", 7) == 0)
		return parse_custom(s, out, err, errlen);
	fmt_snprintf(err, errlen, "unknown snowflake layout '%.64s': expected sonyflake, twitter or "
		 "custom:TIME_UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS", s);
	return -1;
}

uint64_t sf_max_machine(const struct sf_layout *l)
{
	return mask(l->machine_bits);
}

uint64_t sf_max_ids_per_second(const struct sf_layout *l)
{
	return (UINT64_C(1) << l->seq_bits) * 1000 / l->unit_ms;
}

uint64_t sf_exhausts_at_ms(const struct sf_layout *l)
{
	return tick_start_ms(l, UINT64_C(1) << l->time_bits);
}

uint64_t sf_compose(const struct sf_layout *l, uint64_t tick, uint64_t seq, uint64_t machine)
{
	tick &= mask(l->time_bits);
	seq &= mask(l->seq_bits);
	machine &= mask(l->machine_bits);
	if (l->order == SF_TIME_SEQ_MACHINE)
		return tick << (l->seq_bits + l->machine_bits) | seq << l->machine_bits | machine;
	return tick << (l->machine_bits + l->seq_bits) | machine << l->seq_bits | seq;
}

int sf_decompose(const struct sf_layout *l, uint64_t id, struct sf_parts *p)
{
	if (id >> 63)
		return -1;
	p->tick = id >> (l->seq_bits + l->machine_bits);
	if (l->order == SF_TIME_SEQ_MACHINE) {
		p->seq = id >> l->machine_bits & mask(l->seq_bits);
		p->machine = id & mask(l->machine_bits);
	} else {
		p->machine = id >> l->seq_bits & mask(l->machine_bits);
		p->seq = id & mask(l->seq_bits);
	}
	p->unix_ms = tick_start_ms(l, p->tick);
	return 0;
}

uint64_t sf_tick_of(const struct sf_layout *l, uint64_t unix_ms)
{
	return unix_ms < l->epoch_ms ? 0 : (unix_ms - l->epoch_ms) / l->unit_ms;
}

void sf_gen_init(struct sf_gen *g, const struct sf_layout *l, uint64_t machine,
		 uint64_t resume_tick)
{
	g->layout = *l;
	g->machine = machine;
	g->carry_over = 0;
	g->last_tick = resume_tick;
	/* After a restart every sequence of the fenced ticks may have been used
	 * by the previous process: mark the fence tick as full so the first ID
	 * comes from a later tick. A fresh start (0) may use tick 0. */
	g->next_seq = resume_tick ? UINT64_C(1) << l->seq_bits : 0;
	/* Nothing persisted covers ticks >= resume_tick yet. */
	g->fence_tick = resume_tick;
}

enum sf_status sf_next(struct sf_gen *g, uint64_t now_ms, uint64_t *id, uint64_t *wait_ms)
{
	const struct sf_layout *l = &g->layout;
	uint64_t tick, seq;

	if (now_ms < l->epoch_ms)
		return SF_EXHAUSTED;
	tick = sf_tick_of(l, now_ms);
	if (g->carry_over && tick == g->last_tick + 1 && g->next_seq && g->next_seq <= mask(l->seq_bits)) {
		/* Batches: the tick that just ended still has sequence numbers,
		 * use them first. The IDs stay within one tick (the field's own
		 * resolution) of their issue, and back-to-back batches lose no
		 * capacity at their boundaries. */
		tick = g->last_tick;
		seq = g->next_seq;
	} else if (tick > g->last_tick) {
		seq = 0;
	} else if (g->next_seq <= mask(l->seq_bits)) {
		/* Same tick, or the clock is behind the last ID: keep counting in
		 * last_tick while its sequence space lasts (as sonyflake does).
		 * (tick, seq) pairs are never reused and IDs keep increasing. */
		tick = g->last_tick;
		seq = g->next_seq;
	} else {
		/* No next tick, or one that starts beyond what ms can express. */
		if (g->last_tick >= mask(l->time_bits) ||
		    tick_start_ms(l, g->last_tick + 1) == UINT64_MAX)
			return SF_EXHAUSTED;
		*wait_ms = tick_start_ms(l, g->last_tick + 1) - now_ms;
		return SF_WAIT;
	}
	if (tick > mask(l->time_bits))
		return SF_EXHAUSTED;
	if (tick >= g->fence_tick)
		return SF_NEED_FENCE;
	g->last_tick = tick;
	g->next_seq = seq + 1;
	*id = sf_compose(l, tick, seq, g->machine);
	return SF_OK;
}
