/* The ID routes: next-id and next-batch, for every data type, including
 * the snowflake clock wait (a request parks while the clock catches up). */
#include <stdlib.h>
#include <string.h>

#include "api_ctx.h"
#include "api_handlers.h"
#include "clock.h"
#include "http_lex.h"
#include "metrics.h"
#include "seq.h"
#include "store_kv.h"
#include "tsid.h"
#include "uuid.h"

/* Reads ?dataType=. Returns 1 present (sets *t), 0 absent, or an error status. */
static int query_type(struct api_ctx *x, enum id_type *t)
{
	const char *v;
	size_t n;
	if (!http_query_param(x->query, x->query_len, "dataType", &v, &n))
		return 0;
	char tmp[32];
	long d = n < sizeof tmp ? http_percent_decode(v, n, tmp, sizeof tmp) : -1;
	if (d < 0 || id_type_parse(tmp, (size_t)d, t) != 0)
		return api_fail(x, 400, "Invalid data type",
				"dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22, uuid7, ulid");
	return 1;
}

/* The entity's type: ?dataType, else its binding, else DEFAULT_DATA_TYPE. */
static int resolve_type(struct api_ctx *x, enum id_type *t, struct entity **e)
{
	int q = query_type(x, t);
	if (q > 1)
		return q;
	*e = store_find(x->store, x->entity, x->entity_len);
	if (!q)
		*t = *e ? (*e)->type : x->cfg->default_type;
	if (*e && (*e)->type != *t)
		return api_fail(x, 400, "Type mismatch", "entity '%s' is bound to type %s, not %s",
				x->entity, id_type_name((*e)->type), id_type_name(*t));
	return 0;
}

/* Creates the entity, durably, on its first use. A name that was deleted
 * continues above what it handed out. */
static int bind_entity(struct api_ctx *x, enum id_type t, struct entity **e)
{
	if (*e)
		return 0;
	uint64_t floor = store_floor(x->store, x->entity, x->entity_len);
	enum store_status st = store_init(x->store, x->entity, x->entity_len, t, NULL, floor,
					  x->r->mono_ms, e);
	return st == STORE_OK ? 0 : api_storage_error(x, st);
}

/* A new entity's binding must be in KV before its first ID: a successor
 * would otherwise bind the name afresh. (Sequences wait on their mark.) */
static int binding_committed(struct api_ctx *x, const struct entity *e)
{
	const struct store *s = x->store;
	if (!s->kv || !s->kv->required || e->kv_bound || id_type_is_seq(e->type))
		return 0;
	return api_wait_for_kv(x, "the new entity");
}

/* ?format= (base62 or decimal; range for batches) and, for batches,
 * ?values=false (the same as format=range). 0 with *f and *asked (0: the
 * entity's bound format applies), or 400. */
static int query_format(struct api_ctx *x, int batch, enum id_format *f, int *asked)
{
	const char *v;
	size_t n;
	*f = FMT_PLAIN;
	*asked = http_query_param(x->query, x->query_len, "format", &v, &n);
	if (*asked) {
		if (LEX_EQ(v, n, "base62"))
			*f = FMT_BASE62;
		else if (batch && LEX_EQ(v, n, "range"))
			*f = FMT_RANGE;
		else if (!LEX_EQ(v, n, "decimal"))
			return api_fail(x, 400, "Invalid format", batch ?
					"format must be base62 or decimal (snowflake) or range (int, long)" :
					"format must be base62 or decimal (snowflake)");
	}
	if (batch && http_query_param(x->query, x->query_len, "values", &v, &n)) {
		if (LEX_EQ(v, n, "false") && *f != FMT_BASE62) {
			*f = FMT_RANGE;
			*asked = 1;
		} else if (!LEX_EQ(v, n, "true"))
			return api_fail(x, 400, "Invalid values",
					"values must be true or false (false: a range, for int and long)");
	}
	return 0;
}

/* The format asked for must suit the type; checked before the entity is
 * created. */
static int format_fits(struct api_ctx *x, enum id_type t, enum id_format f, int asked)
{
	if (asked && f != FMT_RANGE && t != TYPE_SNOWFLAKE)
		return api_fail(x, 400, "Invalid format", "format=%s applies to snowflake, not %s",
				f == FMT_BASE62 ? "base62" : "decimal", id_type_name(t));
	if (f == FMT_RANGE && !id_type_is_seq(t))
		return api_fail(x, 400, "Invalid format",
				"format=range (values=false) applies to int and long, not %s", id_type_name(t));
	return 0;
}

/* Everything before the first value: type, format, ownership, binding.
 * Without a format in the query, the entity's bound one applies. */
static int prepare(struct api_ctx *x, enum id_format *f, int asked, enum id_type *t, struct entity **e)
{
	int rc;
	if ((rc = resolve_type(x, t, e)) || (rc = format_fits(x, *t, *f, asked)) ||
	    (rc = api_ownership_gate(x)) || (rc = bind_entity(x, *t, e)) || (rc = binding_committed(x, *e)))
		return rc;
	if (!asked)
		*f = (enum id_format)(*e)->style.format;
	return 0;
}

/* Parks a snowflake request for wait_ms, unless the clock has been behind
 * for longer than the SPEC's bound (503). */
static int park_for_clock(struct api_ctx *x, int clock_behind, uint64_t *wait_ms)
{
	struct api_session *s = x->s;
	if (!s->waiting) {
		s->waiting = 1;
		s->wait_started_ms = x->r->mono_ms;
	}
	if (!s->clock_wait_ns)
		s->clock_wait_ns = x->r->mono_ns;
	if (clock_behind && !s->counted_clock_wait) {
		s->counted_clock_wait = 1;
		metrics.clock_waits++;
	} else if (!clock_behind) {
		metrics.sequence_waits++;
	}
	uint64_t waited = x->r->mono_ms - s->wait_started_ms;
	if (waited >= CLOCK_WAIT_MAX_MS)
		return api_fail(x, 503, "Clock moved backwards",
				"the wall clock is behind the last issued snowflake for more than %d ms",
				CLOCK_WAIT_MAX_MS);
	/* Woken early (a Consul answer wakes every parked request), it parks
	 * again only for what is left of the bound, so the 503 comes on time. */
	if (*wait_ms > CLOCK_WAIT_MAX_MS - waited)
		*wait_ms = CLOCK_WAIT_MAX_MS - waited;
	s->wait_ms = *wait_ms;
	return -1;
}

/* One time-based ID: a snowflake into *id (k < 0), or a UUIDv7/ULID
 * (k = enum tsid_kind) into tid from rnd[TSID_RANDOM]. 0 done, -1 when the
 * request parks (x->s->wait_ms set), or an HTTP status (error body written). */
static int next_timed(struct api_ctx *x, int k, int batch, uint64_t *id, uint8_t *tid, const uint8_t *rnd)
{
	enum sf_status sf;
	uint64_t wait_ms;
	int clock_behind, refreshed = 0;
	for (;;) {
		enum store_status st = k < 0 ?
			store_snowflake(x->store, x->r->now_ms, batch, &sf, id, &wait_ms) :
			store_tsid(x->store, (enum tsid_kind)k, x->r->now_ms, rnd, &sf, tid, &wait_ms);
		if (st == STORE_PENDING)
			return api_wait_for_kv(x, "the snowflake fence");
		if (st != STORE_OK)
			return api_storage_error(x, st);
		if (sf == SF_OK)
			return 0;
		if (sf == SF_EXHAUSTED)
			return k < 0 ?
				api_fail(x, 503, "Snowflake time exhausted",
					 "the clock is outside the %s layout's time range", x->cfg->layout.name) :
				api_fail(x, 503, "Time exhausted", "the clock is outside 48-bit Unix milliseconds");
		clock_behind = store_clock_behind(x->store, k, x->r->now_ms);
		if (!refreshed) {
			/* The loop's reading may be older than the last tick used
			 * (an earlier request of this iteration waited): look again. */
			refreshed = 1;
			uint64_t now = clock_wall_ms();
			if (now > x->r->now_ms) {
				x->r->now_ms = now;
				continue;
			}
		}
		if (clock_behind || wait_ms > 1)
			return park_for_clock(x, clock_behind, &wait_ms);
		/* The tick's sequence space is used up and the next tick is less
		 * than a millisecond away: waiting here costs less than a trip
		 * through the loop, and keeps millisecond layouts at full rate. */
		metrics.sequence_waits++;
		uint64_t slept = clock_mono_ns();
		x->r->now_ms = clock_sleep_to_next_ms();
		metrics.clock_wait_ns += clock_mono_ns() - slept;
	}
}

static int next_snowflake(struct api_ctx *x, int batch, uint64_t *id)
{
	return next_timed(x, -1, batch, id, NULL, NULL);
}

_Static_assert(TSID_TYPEID_MAX >= 36, "room for every text form");

/* Text of a UUIDv7 (canonical, or a TypeID with the entity's prefix) or a
 * ULID; returns its length. */
static size_t tsid_text(const struct entity *e, const uint8_t id[16], char *out)
{
	if (e->type == TYPE_ULID) {
		tsid_base32(id, 0, out);
		return 26;
	}
	if (e->style.prefix_len)
		return tsid_typeid(e->style.prefix, e->style.prefix_len, id, out);
	tsid_uuid_text(id, out);
	return 36;
}

/* Reserves n sequence values: 0 with the first one's index, -1 parked, or
 * an error status. */
static int take(struct api_ctx *x, struct entity *e, uint64_t n, int batch, uint64_t *i)
{
	enum store_status st = store_take(x->store, e, n, x->r->mono_ms, i);
	if (st == STORE_PENDING)
		return api_wait_for_kv(x, "the reservation");
	if (st == STORE_EXHAUSTED)
		return !batch ?
			api_fail(x, 409, "Sequence exhausted", "entity '%s' has no %s values left on shard %u",
				 x->entity, id_type_name(e->type), x->cfg->shard_id) :
			api_fail(x, 409, "Sequence exhausted",
				 "entity '%s' has fewer than %llu %s values left on shard %u; nothing was handed out",
				 x->entity, (unsigned long long)n, id_type_name(e->type), x->cfg->shard_id);
	return st == STORE_OK ? 0 : api_storage_error(x, st);
}

int api_next_id(struct api_ctx *x)
{
	enum id_type t;
	struct entity *e;
	char chars[TSID_TYPEID_MAX];
	uint64_t v = 0, i;
	enum id_format f;
	int asked, rc = query_format(x, 0, &f, &asked);
	if (rc || (rc = prepare(x, &f, asked, &t, &e)) != 0)
		return rc;
	size_t len = id_type_uuid_len(t);
	if (id_type_is_seq(t)) {
		if ((rc = take(x, e, 1, 0, &i)) != 0)
			return rc;
		v = entity_value(e, i);
	} else if (t == TYPE_SNOWFLAKE) {
		if ((rc = next_snowflake(x, 0, &v)) != 0)
			return rc;
		e->last_snowflake = v;
		if (f == FMT_BASE62) {
			tsid_base62(v, chars);
			len = TSID_B62_LEN;
		}
	} else if (id_type_tsid(t) >= 0) {
		uint8_t rnd[TSID_RANDOM], id[16];
		if (uuid_random(rnd, sizeof rnd) != 0)
			return api_fail(x, 503, "Service unavailable", "getrandom failed");
		if ((rc = next_timed(x, id_type_tsid(t), 0, NULL, id, rnd)) != 0)
			return rc;
		len = tsid_text(e, id, chars);
	} else if (uuid_generate(chars, len) != 0) {
		return api_fail(x, 503, "Service unavailable", "getrandom failed");
	}
	metrics.ids_issued[t]++;
	struct jw w;
	api_begin(x, &w);
	api_id_head(&w, x, t);
	if (len)
		jw_str(&w, "value", chars, len);
	else
		api_number(&w, "value", t, v);
	jw_close(&w);
	return 200;
}

/* Where a batch's values come from: a sequence's run (first + k * step),
 * the snowflakes made so far, or random strings of len characters each. */
struct batch {
	enum id_type t;
	uint64_t n;
	uint64_t first, step;
	const uint64_t *ids;
	const char *chars;
	size_t len;
	int range;           /* no values: startValue, endValue, step, count */
};

static void batch_value(struct jw *w, const char *key, const struct batch *b, uint64_t k)
{
	if (b->chars)
		jw_str(w, key, b->chars + k * b->len, b->len);
	else if (b->ids)
		jw_u64_str(w, key, b->ids[k]);
	else
		api_number(w, key, b->t, b->first + k * b->step);
}

static int render_batch(struct api_ctx *x, const struct batch *b)
{
	struct jw w;
	metrics.ids_issued[b->t] += b->n;
	api_begin(x, &w);
	buf_reserve(x->body, 256 + b->n * (b->len ? b->len + 3 : 23));
	api_id_head(&w, x, b->t);
	jw_u64(&w, "batchSize", b->n);
	if (b->range) {
		jw_u64(&w, "count", b->n);
		batch_value(&w, "startValue", b, 0);
		batch_value(&w, "endValue", b, b->n - 1);
		jw_u64(&w, "step", b->step);
		jw_close(&w);
		return 200;
	}
	batch_value(&w, "value", b, 0);
	batch_value(&w, "startValue", b, 0);
	batch_value(&w, "endValue", b, b->n - 1);
	jw_array(&w, "values");
	if (b->chars || b->ids) {
		for (uint64_t k = 0; k < b->n; k++)
			batch_value(&w, NULL, b, k);
	} else if (b->t == TYPE_INT) {   /* sequences, the common batch: no test per value */
		for (uint64_t k = 0, v = b->first; k < b->n; k++, v += b->step)
			jw_u64(&w, NULL, v);
	} else {
		for (uint64_t k = 0, v = b->first; k < b->n; k++, v += b->step)
			jw_u64_str(&w, NULL, v);
	}
	jw_close(&w);
	jw_close(&w);
	return 200;
}

/* Room in the session for n words of IDs made so far: 0, or 503. */
static int session_room(struct api_ctx *x, uint64_t n)
{
	struct api_session *s = x->s;
	if (s->ids_cap >= n)
		return 0;
	uint64_t *p = realloc(s->ids, n * sizeof *p);
	if (!p)
		return api_fail(x, 503, "Service unavailable", "out of memory");
	s->ids = p;
	s->ids_cap = n;
	return 0;
}

/* Renders a batch whose values are the text in chars (b->len bytes each),
 * which it takes over and frees. */
static int render_text(struct api_ctx *x, struct batch *b, char *chars)
{
	b->chars = chars;
	int rc = render_batch(x, b);
	free(chars);
	return rc;
}

/* Made across several loop turns when the layout's rate limits it; what
 * is made so far waits in the session. */
static int snowflake_batch(struct api_ctx *x, struct entity *e, struct batch *b, enum id_format f)
{
	struct api_session *s = x->s;
	int room = session_room(x, b->n);
	if (room)
		return room;
	while (s->done < b->n) {
		int rc = next_snowflake(x, 1, &s->ids[s->done]);
		if (rc < 0)
			return rc;
		if (rc) {
			metrics.ids_issued[TYPE_SNOWFLAKE] += s->done;  /* made, never delivered: still spent */
			return rc;
		}
		s->done++;
	}
	e->last_snowflake = s->ids[b->n - 1];
	if (f != FMT_BASE62) {
		b->ids = s->ids;
		return render_batch(x, b);
	}
	char *chars = malloc(b->n * TSID_B62_LEN);
	if (!chars)
		return api_fail(x, 503, "Service unavailable", "out of memory");
	for (uint64_t k = 0; k < b->n; k++)
		tsid_base62(s->ids[k], chars + k * TSID_B62_LEN);
	b->len = TSID_B62_LEN;
	return render_text(x, b, chars);
}

/* UUIDv7/ULID batches: made like snowflake batches (the 16 bytes of ID
 * k in s->ids[2k..2k+1]), then rendered as text. */
static int tsid_batch(struct api_ctx *x, const struct entity *e, struct batch *b)
{
	struct api_session *s = x->s;
	int rc = session_room(x, 2 * b->n);
	if (rc)
		return rc;
	uint8_t rnd[TSID_RANDOM * 50];
	size_t used = sizeof rnd;
	while (s->done < b->n) {
		if (used == sizeof rnd) {
			if (uuid_random(rnd, sizeof rnd) != 0)
				return api_fail(x, 503, "Service unavailable", "getrandom failed");
			used = 0;
		}
		rc = next_timed(x, id_type_tsid(b->t), 1, NULL, (uint8_t *)(s->ids + 2 * s->done), rnd + used);
		if (rc < 0)
			return rc;
		if (rc) {
			metrics.ids_issued[b->t] += s->done;  /* made, never delivered: still spent */
			return rc;
		}
		used += TSID_RANDOM;
		s->done++;
	}
	char one[TSID_TYPEID_MAX];
	b->len = tsid_text(e, (const uint8_t *)s->ids, one);
	char *chars = malloc(b->n * b->len);
	if (!chars)
		return api_fail(x, 503, "Service unavailable", "out of memory");
	for (uint64_t k = 0; k < b->n; k++)
		tsid_text(e, (const uint8_t *)(s->ids + 2 * k), chars + k * b->len);
	return render_text(x, b, chars);
}

int api_next_batch(struct api_ctx *x)
{
	enum id_type t;
	struct entity *e;
	const char *v;
	size_t vn;
	uint64_t n, i;
	enum id_format f;
	int asked, rc = query_format(x, 1, &f, &asked);
	if (rc)
		return rc;
	unsigned max = f == FMT_RANGE ? x->cfg->max_range : x->cfg->max_batch;
	if (!http_query_param(x->query, x->query_len, "batchSize", &v, &vn) ||
	    api_parse_uint(v, vn, 1, max, &n) != 0)
		return api_fail(x, 400, "Invalid batch size", "batchSize must be an integer in 1..%u%s",
				max, f == FMT_RANGE ? " (MAX_RANGE_SIZE)" : "");
	if ((rc = prepare(x, &f, asked, &t, &e)) != 0)
		return rc;
	struct batch b = { .t = t, .n = n, .range = f == FMT_RANGE };
	if (t == TYPE_SNOWFLAKE)
		return snowflake_batch(x, e, &b, f);
	if (id_type_tsid(t) >= 0)
		return tsid_batch(x, e, &b);
	if (id_type_is_seq(t)) {
		if ((rc = take(x, e, n, 1, &i)) != 0)
			return rc;
		b.first = entity_value(e, i);
		b.step = e->shape.total;
		return render_batch(x, &b);
	}
	b.len = id_type_uuid_len(t);
	char *chars = malloc(n * b.len);
	if (!chars || uuid_generate(chars, n * b.len) != 0) {
		free(chars);
		return api_fail(x, 503, "Service unavailable", "getrandom failed");
	}
	return render_text(x, &b, chars);
}
