/* The ID routes: next-id and next-batch, for every data type, including
 * the snowflake clock wait (a request parks while the clock catches up). */
#include <stdlib.h>

#include "api_ctx.h"
#include "api_handlers.h"
#include "clock.h"
#include "metrics.h"
#include "seq.h"
#include "store_kv.h"
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
				"dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22");
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
	enum store_status st = store_init(x->store, x->entity, x->entity_len, t, floor, x->r->mono_ms, e);
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

/* Everything before the first value: type, ownership, binding. */
static int prepare(struct api_ctx *x, enum id_type *t, struct entity **e)
{
	int rc;
	if ((rc = resolve_type(x, t, e)) || (rc = api_ownership_gate(x)) ||
	    (rc = bind_entity(x, *t, e)) || (rc = binding_committed(x, *e)))
		return rc;
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

/* One snowflake: 0 with *id, -1 when the request parks (x->s->wait_ms
 * set), or an HTTP status (error body written). */
static int next_snowflake(struct api_ctx *x, int batch, uint64_t *id)
{
	enum sf_status sf;
	uint64_t wait_ms;
	int clock_behind, refreshed = 0;
	for (;;) {
		enum store_status st = store_snowflake(x->store, x->r->now_ms, batch, &sf, id, &wait_ms);
		if (st == STORE_PENDING)
			return api_wait_for_kv(x, "the snowflake fence");
		if (st != STORE_OK)
			return api_storage_error(x, st);
		if (sf == SF_OK)
			return 0;
		if (sf == SF_EXHAUSTED)
			return api_fail(x, 503, "Snowflake time exhausted",
					"the clock is outside the %s layout's time range", x->cfg->layout.name);
		clock_behind = store_clock_behind(x->store, x->r->now_ms);
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
	char chars[32];
	uint64_t v = 0, i;
	int rc = prepare(x, &t, &e);
	if (rc)
		return rc;
	if (id_type_is_seq(t)) {
		if ((rc = take(x, e, 1, 0, &i)) != 0)
			return rc;
		v = entity_value(e, i);
	} else if (t == TYPE_SNOWFLAKE) {
		if ((rc = next_snowflake(x, 0, &v)) != 0)
			return rc;
		e->last_snowflake = v;
	} else if (uuid_generate(chars, id_type_uuid_len(t)) != 0) {
		return api_fail(x, 503, "Service unavailable", "getrandom failed");
	}
	metrics.ids_issued[t]++;
	struct jw w;
	api_begin(x, &w);
	api_id_head(&w, x, t);
	if (id_type_uuid_len(t))
		jw_str(&w, "value", chars, id_type_uuid_len(t));
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

/* Made across several loop turns when the layout's rate limits it; what
 * is made so far waits in the session. */
static int snowflake_batch(struct api_ctx *x, struct entity *e, struct batch *b)
{
	struct api_session *s = x->s;
	if (s->ids_cap < b->n) {
		uint64_t *p = realloc(s->ids, b->n * sizeof *p);
		if (!p)
			return api_fail(x, 503, "Service unavailable", "out of memory");
		s->ids = p;
		s->ids_cap = b->n;
	}
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
	b->ids = s->ids;
	return render_batch(x, b);
}

int api_next_batch(struct api_ctx *x)
{
	enum id_type t;
	struct entity *e;
	const char *v;
	size_t vn;
	uint64_t n, i;
	int rc;
	if (!http_query_param(x->query, x->query_len, "batchSize", &v, &vn) ||
	    api_parse_uint(v, vn, 1, x->cfg->max_batch, &n) != 0)
		return api_fail(x, 400, "Invalid batch size", "batchSize must be an integer in 1..%u",
				x->cfg->max_batch);
	if ((rc = prepare(x, &t, &e)) != 0)
		return rc;
	struct batch b = { .t = t, .n = n };
	if (t == TYPE_SNOWFLAKE)
		return snowflake_batch(x, e, &b);
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
	b.chars = chars;
	rc = render_batch(x, &b);
	free(chars);
	return rc;
}
