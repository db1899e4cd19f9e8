/* libFuzzer target for snowflake.c.
 *  - sf_layout_parse on the input's first line, against a restated grammar
 *    (accepts exactly what the oracle accepts; accepted layouts are sane);
 *  - sf_decompose / sf_compose round trips for 64-bit ids under the parsed
 *    layout, sonyflake and twitter;
 *  - the generator driven by an adversarial clock decoded from the input
 *    (small steps, jumps, steps backwards, arbitrary values, restarts from
 *    the persisted fence the way store.c does it): IDs strictly increase,
 *    also across restarts, so no (tick, sequence) pair repeats; nothing
 *    comes from a tick at or beyond the fence or from the future; every
 *    non-OK status leaves the generator unchanged.
 * fuzz-src: src/snowflake.c src/fmt.c */
#include "snowflake.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

/* SPEC 2 / snowflake.c's accepted ranges for custom layouts. */
#define UNIT_MAX   UINT64_C(86400000)
#define SEQ_MAX    22
#define MACH_MAX   20
#define TIME_MIN   30
#define EPOCH_MAX  UINT64_C(4102444800000)

struct rd { const uint8_t *p; size_t n; };

static uint64_t take(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && r->n; i++, r->p++, r->n--)
		v |= (uint64_t)*r->p << (8 * i);
	return v;
}

static uint64_t maskb(unsigned bits)
{
	return bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
}

/* One decimal field, digits only, value saturating above 2^64. */
static int ref_field(const char *s, size_t n, unsigned __int128 *v)
{
	if (n == 0)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (*v < ((unsigned __int128)1 << 70))
			*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

/* The grammar of SNOWFLAKE_LAYOUT restated: 0 and *out filled, or -1. */
static int ref_layout(const char *s, struct sf_layout *out)
{
	if (strcmp(s, "sonyflake") == 0) {
		*out = (struct sf_layout){ "sonyflake", SF_TIME_SEQ_MACHINE, 39, 8, 16, 10,
					   UINT64_C(1640995200000) };
		return 0;
	}
	if (strcmp(s, "twitter") == 0) {
		*out = (struct sf_layout){ "twitter", SF_TIME_MACHINE_SEQ, 41, 12, 10, 1,
					   UINT64_C(1704067200000) };
		return 0;
	}
	if (strncmp(s, "custom:", 7) != 0 || strlen(s) >= sizeof out->name)
		return -1;
	const char *p = s + 7;
	unsigned __int128 v[4];
	for (int f = 0; f < 4; f++) {
		const char *e = strchr(p, '/');
		if (f == 3) {
			if (e)
				return -1;
			e = p + strlen(p);
		} else if (!e) {
			return -1;
		}
		if (ref_field(p, (size_t)(e - p), &v[f]) != 0)
			return -1;
		p = e + 1;
	}
	if (v[0] < 1 || v[0] > UNIT_MAX || v[1] < 1 || v[1] > SEQ_MAX || v[2] > MACH_MAX ||
	    v[3] > EPOCH_MAX || 63 - (int)v[1] - (int)v[2] < TIME_MIN)
		return -1;
	memset(out, 0, sizeof *out);
	strcpy(out->name, s);
	out->order = SF_TIME_MACHINE_SEQ;
	out->unit_ms = (uint64_t)v[0];
	out->seq_bits = (unsigned)v[1];
	out->machine_bits = (unsigned)v[2];
	out->time_bits = 63 - (unsigned)v[1] - (unsigned)v[2];
	out->epoch_ms = (uint64_t)v[3];
	return 0;
}

static int same_layout(const struct sf_layout *a, const struct sf_layout *b)
{
	return strcmp(a->name, b->name) == 0 && a->order == b->order &&
	       a->time_bits == b->time_bits && a->seq_bits == b->seq_bits &&
	       a->machine_bits == b->machine_bits && a->unit_ms == b->unit_ms &&
	       a->epoch_ms == b->epoch_ms;
}

static void check_layout(const struct sf_layout *l)
{
	MUST(l->time_bits + l->seq_bits + l->machine_bits == 63);
	MUST(l->time_bits >= TIME_MIN && l->seq_bits >= 1 && l->seq_bits <= SEQ_MAX &&
	     l->machine_bits <= MACH_MAX);
	MUST(l->unit_ms >= 1 && l->unit_ms <= UNIT_MAX && l->epoch_ms <= EPOCH_MAX);
	MUST(sf_max_machine(l) == maskb(l->machine_bits));
	MUST(sf_max_ids_per_second(l) == (UINT64_C(1) << l->seq_bits) * 1000 / l->unit_ms);
	unsigned __int128 ex = (unsigned __int128)l->epoch_ms +
			       ((unsigned __int128)1 << l->time_bits) * l->unit_ms;
	MUST(sf_exhausts_at_ms(l) == (ex > UINT64_MAX ? UINT64_MAX : (uint64_t)ex));
}

static uint64_t sat_start(const struct sf_layout *l, uint64_t tick)
{
	unsigned __int128 v = (unsigned __int128)l->epoch_ms + (unsigned __int128)tick * l->unit_ms;
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

static void roundtrip(const struct sf_layout *l, uint64_t id)
{
	struct sf_parts p;
	if (id >> 63) {
		MUST(sf_decompose(l, id, &p) == -1);
		id &= ~(UINT64_C(1) << 63);
	}
	MUST(sf_decompose(l, id, &p) == 0);
	MUST(p.tick <= maskb(l->time_bits) && p.seq <= maskb(l->seq_bits) &&
	     p.machine <= maskb(l->machine_bits));
	MUST(sf_compose(l, p.tick, p.seq, p.machine) == id);
	MUST(p.unix_ms == sat_start(l, p.tick));
	/* compose masks oversized fields; the masked parts come back. */
	uint64_t t = id * UINT64_C(0x9E3779B97F4A7C15), s = id ^ (id >> 7), m = ~id;
	uint64_t c = sf_compose(l, t, s, m);
	MUST(c >> 63 == 0 && sf_decompose(l, c, &p) == 0);
	MUST(p.tick == (t & maskb(l->time_bits)) && p.seq == (s & maskb(l->seq_bits)) &&
	     p.machine == (m & maskb(l->machine_bits)));
	/* Time order: a later tick always makes a larger id. */
	if (p.tick < maskb(l->time_bits))
		MUST(sf_compose(l, p.tick + 1, 0, 0) > c);
}

/* A custom layout built from input bytes (for inputs whose first line is
 * not a layout): it must parse, to exactly these fields. */
static void built_layout(struct rd *r, struct sf_layout *l)
{
	char spec[96];
	struct sf_layout want;
	char err[256];
	uint64_t unit = take(r, 1) & 1 ? 1 + take(r, 1) % 20 : 1 + take(r, 4) % UNIT_MAX;
	unsigned seq = 1 + (unsigned)(take(r, 1) % SEQ_MAX);
	unsigned mach = (unsigned)(take(r, 1) % (MACH_MAX + 1));
	uint64_t epoch = take(r, 8) % (EPOCH_MAX + 1);
	if (seq + mach > 63 - TIME_MIN)
		mach = 63 - TIME_MIN - seq;
	snprintf(spec, sizeof spec, "custom:%" PRIu64 "/%u/%u/%" PRIu64, unit, seq, mach, epoch);
	MUST(ref_layout(spec, &want) == 0);
	MUST(sf_layout_parse(spec, l, err, sizeof err) == 0);
	MUST(same_layout(l, &want));
}

/* ---- the generator under an adversarial clock ---- */

struct run {
	struct sf_gen g;
	struct sf_layout l;
	uint64_t machine, fence_ahead;
	uint64_t resume;        /* current incarnation's resume tick */
	uint64_t last_id;       /* across restarts */
	int issued;
	uint64_t now;
};

/* sf_next + the fence protocol of store_snowflake, with the checks. */
static enum sf_status next(struct run *x, uint64_t *wait_out)
{
	struct sf_gen before;
	uint64_t id = 0, wait = 0, now_tick = sf_tick_of(&x->l, x->now);
	enum sf_status st;
	int fences = 0;

	for (;;) {
		memcpy(&before, &x->g, sizeof before);
		st = sf_next(&x->g, x->now, &id, &wait);
		if (st != SF_NEED_FENCE)
			break;
		MUST(memcmp(&before, &x->g, sizeof before) == 0);
		MUST(++fences == 1);   /* one fence above the tick always suffices */
		/* the tick the ID would come from, as store_snowflake computes it */
		uint64_t t = now_tick < x->g.last_tick ? x->g.last_tick : now_tick;
		MUST(t >= x->g.fence_tick);
		uint64_t f = t + 1 + x->fence_ahead;
		MUST(f > x->g.fence_tick);   /* persisted fences only grow */
		x->g.fence_tick = f;
	}
	if (st != SF_OK) {
		MUST(memcmp(&before, &x->g, sizeof before) == 0);
		if (st == SF_WAIT) {
			/* Exact start of the tick after the last one: the wait must
			 * end there, and it must lie within 64-bit milliseconds, or
			 * the clock can never get there (that is SF_EXHAUSTED). */
			unsigned __int128 next_start = (unsigned __int128)x->l.epoch_ms +
				((unsigned __int128)before.last_tick + 1) * x->l.unit_ms;
			*wait_out = wait;
			MUST(now_tick <= before.last_tick);
			MUST(before.next_seq > maskb(x->l.seq_bits));
			MUST(next_start <= UINT64_MAX);
			MUST(wait > 0 && wait == (uint64_t)next_start - x->now);
		} else {
			/* Before the epoch, past the time field, or the last tick's
			 * sequences used up and no later tick representable (in the
			 * time field, or in 64-bit milliseconds). */
			unsigned __int128 next_start = (unsigned __int128)x->l.epoch_ms +
				((unsigned __int128)before.last_tick + 1) * x->l.unit_ms;
			MUST(st == SF_EXHAUSTED);
			MUST(x->now < x->l.epoch_ms || now_tick > maskb(x->l.time_bits) ||
			     (before.next_seq > maskb(x->l.seq_bits) &&
			      (before.last_tick >= maskb(x->l.time_bits) || next_start > UINT64_MAX)));
		}
		return st;
	}
	struct sf_parts p;
	MUST(sf_decompose(&x->l, id, &p) == 0);
	MUST(p.machine == x->machine);
	MUST(p.tick < before.fence_tick);            /* covered by a persisted fence */
	MUST(!x->resume || p.tick > x->resume);      /* nothing from the fenced past */
	MUST(p.tick <= (now_tick > before.last_tick ? now_tick : before.last_tick));
	if (now_tick <= before.last_tick)            /* clock behind or same tick */
		MUST(p.tick == before.last_tick && p.seq == before.next_seq);
	else
		MUST(p.tick == now_tick && p.seq == 0);
	MUST(!x->issued || id > x->last_id);         /* strictly increasing */
	MUST(x->g.last_tick == p.tick && x->g.next_seq == p.seq + 1);
	x->last_id = id;
	x->issued = 1;
	return SF_OK;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void generate(struct rd *r, const struct sf_layout *l)
{
	static struct run x;
	memset(&x, 0, sizeof x);
	x.l = *l;
	x.machine = take(r, 4) & sf_max_machine(l);
	x.fence_ahead = 1000 / l->unit_ms ? 1000 / l->unit_ms : 1;
	switch (take(r, 1) % 4) {
	case 0:  x.now = l->epoch_ms + take(r, 4); break;
	case 1: {   /* close to the end of the time field */
		uint64_t end = sf_exhausts_at_ms(l);
		x.now = end - (take(r, 4) % (end - l->epoch_ms));
		break;
	}
	case 2:  x.now = take(r, 8); break;
	default: x.now = UINT64_C(1764000000000) + take(r, 3); break;   /* about now */
	}
	/* A first start: no fence persisted yet, so the first ID asks for one. */
	sf_gen_init(&x.g, l, x.machine, 0);

	for (int ops = 0; ops < 2000 && r->n; ops++) {
		uint64_t wait = 0;
		unsigned op = (unsigned)take(r, 1), arg = op >> 3;
		switch (op & 7) {
		case 0: case 1: case 2:   /* small steps: same tick, sequences run out */
			x.now = add_sat(x.now, arg);
			break;
		case 3:                   /* a jump forward by whole ticks */
			x.now = add_sat(x.now, take(r, 2) * l->unit_ms);
			break;
		case 4: {                 /* the clock steps backwards */
			uint64_t back = take(r, 2) * (arg + 1);
			x.now = x.now > back ? x.now - back : 0;
			break;
		}
		case 5:                   /* anything at all */
			x.now = take(r, 8);
			break;
		case 6: {                 /* restart onto the persisted fence, as store_open */
			uint64_t fence = x.g.fence_tick;
			sf_gen_init(&x.g, l, x.machine, fence ? fence - 1 : 0);
			x.g.fence_tick = fence;
			x.resume = fence ? fence - 1 : 0;
			break;
		}
		case 7:                   /* a burst at one instant */
			for (unsigned i = 0; i <= arg; i++)
				if (next(&x, &wait) != SF_OK)
					break;
			break;
		}
		enum sf_status st = next(&x, &wait);
		if (st == SF_WAIT && (op & 8) && x.now <= UINT64_MAX - wait) {
			/* Do as told: after the wait the generator makes progress. */
			x.now += wait;
			MUST(next(&x, &wait) != SF_WAIT);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };
	char spec[128], err[256];
	struct sf_layout l, want, sony, twit;
	size_t n = 0;
	int got, ref;

	/* First line: a SNOWFLAKE_LAYOUT value. */
	while (n < size && n < sizeof spec - 1 && data[n] != '\n' && data[n] != '\0')
		n++;
	memcpy(spec, data, n);
	spec[n] = '\0';
	memset(err, 'X', sizeof err);
	got = sf_layout_parse(spec, &l, err, sizeof err);
	ref = ref_layout(spec, &want);
	MUST(got == ref);
	if (got == 0) {
		MUST(same_layout(&l, &want));
		check_layout(&l);
		r.p += n, r.n -= n;
	} else {
		MUST(got == -1 && memchr(err, '\0', sizeof err) && err[0] != '\0');
		built_layout(&r, &l);
		check_layout(&l);
	}
	MUST(sf_layout_parse("sonyflake", &sony, err, sizeof err) == 0);
	MUST(sf_layout_parse("twitter", &twit, err, sizeof err) == 0);

	static const uint64_t fixed[] = { 0, 1, UINT64_C(0x7FFFFFFFFFFFFFFF),
					  UINT64_C(0x8000000000000000), UINT64_MAX };
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		roundtrip(&l, fixed[i]);
	for (int i = 0; i < 4 && r.n; i++) {
		uint64_t id = take(&r, 8);
		roundtrip(&l, id);
		roundtrip(&sony, id);
		roundtrip(&twit, id);
	}
	generate(&r, &l);
	return 0;
}
