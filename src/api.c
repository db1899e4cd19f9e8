#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consul.h"
#include "gate.h"
#include "http_resp.h"
#include "log.h"
#include "metrics.h"
#include "seq.h"
#include "snowflake.h"
#include "store_kv.h"
#include "uuid.h"

/* SPEC: wait up to 5 s for a clock that stepped backwards, then 503. */
#define CLOCK_WAIT_MAX_MS 5000
/* How long a request waits for Consul to commit what it needs (a new
 * segment, a fence, a binding, an admin change); a commit wakes it early. */
#define KV_WAIT_MAX_MS    5000
#define KV_RECHECK_MS     250

static const struct config *cfg;
static struct store *store;
static uint64_t started_mono;
static struct buf body;  /* response body scratch, reused by every request */

/* Everything a handler needs to know about the request it answers. */
struct ctx {
	struct api_request *r;
	enum route_id route;
	char entity[ENTITY_NAME_MAX + 1];
	size_t entity_len;
	const char *query;
	size_t query_len;
	const char *extra_headers;   /* e.g. Allow on 405 */
	int status;
};

void api_init(const struct config *c, struct store *s, uint64_t started_mono_ms)
{
	cfg = c;
	store = s;
	started_mono = started_mono_ms;
	buf_init(&body);
}

void api_resume_reset(struct api_resume *rs)
{
	rs->waiting = 0;
	rs->counted_clock_wait = 0;
	rs->done = 0;
	rs->partial.len = 0;
	rs->held = 0;
}

/* ---- small emitters ---- */

static void key_u64(struct buf *b, const char *key, uint64_t v)
{
	json_key(b, key);
	buf_u64(b, v);
}

static void key_str(struct buf *b, const char *key, const char *s, size_t n)
{
	json_key(b, key);
	json_str(b, s, n);
}

/* int travels as a JSON number; long and snowflake as decimal strings. */
static void emit_number(struct buf *b, enum id_type t, uint64_t v)
{
	if (t == TYPE_INT)
		buf_u64(b, v);
	else
		json_u64_str(b, v);
}

/* ---- errors ---- */

static int fail(int status, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(int status, const char *error, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	body.len = 0;
	buf_putc(&body, '{');
	key_str(&body, "error", error, strlen(error));
	buf_putc(&body, ',');
	key_str(&body, "message", msg, strlen(msg));
	buf_putc(&body, '}');
	return status;
}

void api_protocol_error(struct buf *out, int status)
{
	const char *reason = http_reason(status);
	switch (status) {
	case 408:
		fail(status, reason, "request head not received within %d s", HTTP_HEAD_TIMEOUT_MS / 1000);
		break;
	case 411:
		fail(status, reason, "chunked or other transfer-coded request bodies are not accepted; send Content-Length");
		break;
	case 413:
		fail(status, reason, "request body larger than %d KiB", HTTP_MAX_BODY / 1024);
		break;
	case 414:
		fail(status, reason, "request target longer than %d KiB", HTTP_MAX_URI / 1024);
		break;
	case 431:
		fail(status, reason, "request line and headers larger than %d KiB, or more than %d headers",
		     HTTP_MAX_HEAD / 1024, HTTP_MAX_HEADERS);
		break;
	case 501:
		fail(status, reason, "method not implemented");
		break;
	case 505:
		fail(status, reason, "only HTTP/1.0 and HTTP/1.1 are supported");
		break;
	default:
		fail(status, reason, "malformed HTTP request");
	}
	struct http_resp_opts o = { .keep_alive = 0 };
	http_resp_write(out, status, &o, body.data, body.len);
}

/* ---- request pieces ---- */

/* Percent-decodes and validates the entity segment of the path. */
static int take_entity(struct ctx *x, const char *raw, size_t len)
{
	char tmp[3 * ENTITY_NAME_MAX + 1];
	long n = len <= 3 * ENTITY_NAME_MAX ? http_percent_decode(raw, len, tmp, sizeof tmp) : -1;
	if (n < 0 || !entity_name_valid(tmp, (size_t)n))
		return fail(400, "Invalid entity name",
			    "entity name must be 1..128 characters of A-Z a-z 0-9 . _ : - after percent-decoding");
	memcpy(x->entity, tmp, (size_t)n);
	x->entity[n] = '\0';
	x->entity_len = (size_t)n;
	return 0;
}

/* Reads ?dataType=. Returns 1 present (sets *t), 0 absent, or an error status. */
static int query_type(struct ctx *x, enum id_type *t)
{
	const char *v;
	size_t n;
	if (!http_query_param(x->query, x->query_len, "dataType", &v, &n))
		return 0;
	char tmp[32];
	long d = n < sizeof tmp ? http_percent_decode(v, n, tmp, sizeof tmp) : -1;
	if (d < 0 || id_type_parse(tmp, (size_t)d, t) != 0)
		return fail(400, "Invalid data type",
			    "dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22");
	return 1;
}

/* Strict decimal parse of a raw query value into [min,max]. */
static int parse_uint(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (parse_u64(s, n, &v) != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The entity's type for next-id/next-batch: ?dataType, else its binding,
 * else DEFAULT_DATA_TYPE. */
static int resolve_type(struct ctx *x, enum id_type *t, struct entity **e)
{
	int q = query_type(x, t);
	if (q > 1)
		return q;
	*e = store_find(store, x->entity, x->entity_len);
	if (!q)
		*t = *e ? (*e)->type : cfg->default_type;
	if (*e && (*e)->type != *t)
		return fail(400, "Type mismatch", "entity '%s' is bound to type %s, not %s",
			    x->entity, id_type_name((*e)->type), id_type_name(*t));
	return 0;
}

static int storage_error(enum store_status st)
{
	if (st == STORE_NOMEM)
		return fail(503, "Service unavailable", "out of memory");
	return fail(503, "Storage unavailable", "%s; nothing was handed out",
		    store->failure[0] ? store->failure : "journal write failed");
}

static int ownership_gate(void)
{
	const char *p = gate_problem();
	if (p)
		return fail(503, "Shard not owned", "%s", p);
	return 0;
}

/* Parks the request until Consul commits what it needs (-1), or gives up
 * with 503 once that took too long. */
static int wait_for_kv(struct ctx *x, const char *what)
{
	struct api_resume *rs = x->r->resume;
	if (!rs->waiting) {
		rs->waiting = 1;
		rs->wait_started_ms = x->r->mono_ms;
		metrics.kv_waits++;
	}
	if (x->r->mono_ms - rs->wait_started_ms >= KV_WAIT_MAX_MS)
		return fail(503, "Replication unavailable",
			    "Consul did not commit %s within %d ms; nothing was handed out", what, KV_WAIT_MAX_MS);
	rs->wait_ms = KV_RECHECK_MS;
	return -1;
}

/* An admin change answers only once Consul holds it, so a failover cannot
 * undo what was acknowledged: the answer waits in the resume state. */
static int hold_until_committed(struct ctx *x, int status, uint32_t hash)
{
	struct api_resume *rs = x->r->resume;
	uint32_t version = store_kv_version(store, hash);
	if (!store->kv || !store->kv->required || store_kv_committed(store, hash, version))
		return status;
	metrics.kv_waits++;
	rs->held = 1;
	rs->held_status = status;
	rs->held_route = (int)x->route;
	rs->held_hash = hash;
	rs->held_version = version;
	rs->partial.len = 0;
	buf_append(&rs->partial, body.data, body.len);
	rs->waiting = 1;
	rs->wait_started_ms = x->r->mono_ms;
	rs->wait_ms = KV_RECHECK_MS;
	return -1;
}

static int finish_held(struct ctx *x)
{
	struct api_resume *rs = x->r->resume;
	x->route = (enum route_id)rs->held_route;
	if (store_kv_committed(store, rs->held_hash, rs->held_version)) {
		body.len = 0;
		buf_append(&body, rs->partial.data, rs->partial.len);
		return rs->held_status;
	}
	if (x->r->mono_ms - rs->wait_started_ms >= KV_WAIT_MAX_MS)
		return fail(503, "Replication unavailable",
			    "the change is in this instance's journal, but Consul did not confirm it within %d ms; "
			    "a failover before it does may undo it", KV_WAIT_MAX_MS);
	rs->wait_ms = KV_RECHECK_MS;
	return -1;
}

/* Creates the entity, durably, on its first use (resolve_type has already
 * found an existing one and checked its type). A name that was deleted
 * continues above what it handed out. */
static int bind_entity(struct ctx *x, enum id_type t, struct entity **e)
{
	if (*e)
		return 0;
	uint64_t floor = store_floor(store, x->entity, x->entity_len);
	enum store_status st = store_init(store, x->entity, x->entity_len, t, floor, x->r->mono_ms, e);
	return st == STORE_OK ? 0 : storage_error(st);
}

/* A new entity's binding must be in KV before its first ID: a successor
 * would otherwise bind the name afresh. (Sequences wait on their mark.) */
static int binding_committed(struct ctx *x, const struct entity *e)
{
	if (!store->kv || !store->kv->required || e->kv_bound || id_type_is_seq(e->type))
		return 0;
	return wait_for_kv(x, "the new entity");
}

static void id_head(struct buf *b, const struct ctx *x, enum id_type t)
{
	buf_putc(b, '{');
	key_str(b, "entityName", x->entity, x->entity_len);
	buf_putc(b, ',');
	key_str(b, "dataType", id_type_name(t), strlen(id_type_name(t)));
	buf_putc(b, ',');
	key_u64(b, "shard", cfg->shard_id);
}

/* ---- snowflakes (may wait for the clock) ---- */

/* One snowflake, or a reason to wait or fail. Returns 0 with *id, -1 when the
 * caller must park (wait_ms set), or an HTTP status (error body written). */
static int next_snowflake(struct ctx *x, int batch, uint64_t *id, uint64_t *wait_ms)
{
	struct api_resume *rs = x->r->resume;
	enum sf_status sf;
	int clock_behind, refreshed = 0;
	for (;;) {
		enum store_status st = store_snowflake(store, x->r->now_ms, batch, &sf, id, wait_ms);
		if (st == STORE_PENDING) {
			int rc = wait_for_kv(x, "the snowflake fence");
			*wait_ms = rs->wait_ms;
			return rc;
		}
		if (st != STORE_OK)
			return storage_error(st);
		if (sf == SF_OK)
			return 0;
		if (sf == SF_EXHAUSTED)
			return fail(503, "Snowflake time exhausted",
				    "the clock is outside the %s layout's time range", cfg->layout.name);
		clock_behind = sf_tick_of(&cfg->layout, x->r->now_ms) < store->gen.last_tick;
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
		if (clock_behind || *wait_ms > 1)
			break;
		/* The tick's sequence space is used up and the next tick is less
		 * than a millisecond away: waiting here costs less than a trip
		 * through the loop, and keeps millisecond layouts at full rate. */
		metrics.sequence_waits++;
		x->r->now_ms = clock_sleep_to_next_ms();
	}
	/* SF_WAIT: park, unless the clock has been behind for too long. */
	if (!rs->waiting) {
		rs->waiting = 1;
		rs->wait_started_ms = x->r->mono_ms;
	}
	if (clock_behind && !rs->counted_clock_wait) {
		rs->counted_clock_wait = 1;
		metrics.clock_waits++;
	} else if (!clock_behind) {
		metrics.sequence_waits++;
	}
	if (x->r->mono_ms - rs->wait_started_ms >= CLOCK_WAIT_MAX_MS)
		return fail(503, "Clock moved backwards",
			    "the wall clock is behind the last issued snowflake for more than %d ms",
			    CLOCK_WAIT_MAX_MS);
	/* Woken early (a Consul answer wakes every parked request), it parks
	 * again only for what is left of the bound, so the 503 comes on time. */
	uint64_t left = CLOCK_WAIT_MAX_MS - (x->r->mono_ms - rs->wait_started_ms);
	if (*wait_ms > left)
		*wait_ms = left;
	return -1;
}

/* ---- handlers: each returns the HTTP status (or -1 to park) and leaves
 * the body in `body` ---- */

static int h_health(struct ctx *x)
{
	store_probe(store, x->r->mono_ms);
	const char *problem = store->failure[0] ? store->failure : gate_problem();
	body.len = 0;
	if (problem) {
		buf_puts(&body, "{\"status\":\"unhealthy\",");
		key_str(&body, "reason", problem, strlen(problem));
		consul_health(&body);
		buf_putc(&body, '}');
		return 503;
	}
	(void)x;
	buf_puts(&body, "{\"status\":\"healthy\",");
	key_u64(&body, "shard", cfg->shard_id);
	buf_putc(&body, ',');
	key_u64(&body, "totalShards", cfg->total_shards);
	buf_putc(&body, ',');
	key_u64(&body, "uptime", (x->r->mono_ms - started_mono) / 1000);
	consul_health(&body);
	buf_putc(&body, '}');
	return 200;
}

static void shard_info(struct buf *b)
{
	key_u64(b, "shardId", cfg->shard_id);
	buf_putc(b, ',');
	key_u64(b, "totalShards", cfg->total_shards);
}

static int h_shard_info(struct ctx *x)
{
	(void)x;
	body.len = 0;
	buf_putc(&body, '{');
	shard_info(&body);
	buf_puts(&body, ",\"status\":\"active\"}");
	return 200;
}

static int h_next_id(struct ctx *x)
{
	enum id_type t;
	struct entity *e;
	int rc;
	if ((rc = resolve_type(x, &t, &e)) || (rc = ownership_gate()) || (rc = bind_entity(x, t, &e)) ||
	    (rc = binding_committed(x, e)))
		return rc;
	char uuid[32];
	uint64_t v = 0;
	if (id_type_is_seq(t)) {
		uint64_t i;
		enum store_status st = store_take(store, e, 1, x->r->mono_ms, &i);
		if (st == STORE_PENDING)
			return wait_for_kv(x, "the reservation");
		if (st == STORE_EXHAUSTED)
			return fail(409, "Sequence exhausted", "entity '%s' has no %s values left on shard %u",
				    x->entity, id_type_name(t), cfg->shard_id);
		if (st != STORE_OK)
			return storage_error(st);
		v = entity_value(e, i);
	} else if (t == TYPE_SNOWFLAKE) {
		uint64_t wait_ms;
		if ((rc = next_snowflake(x, 0, &v, &wait_ms)) != 0) {
			if (rc < 0)
				x->r->resume->wait_ms = wait_ms;
			return rc;
		}
		e->last_snowflake = v;
	} else if (uuid_generate(uuid, id_type_uuid_len(t)) != 0) {
		return fail(503, "Service unavailable", "getrandom failed");
	}
	metrics.ids_issued[t]++;
	body.len = 0;
	id_head(&body, x, t);
	buf_puts(&body, ",\"value\":");
	if (id_type_uuid_len(t))
		json_str(&body, uuid, id_type_uuid_len(t));
	else
		emit_number(&body, t, v);
	buf_putc(&body, '}');
	return 200;
}

static void batch_head(struct ctx *x, enum id_type t, uint64_t n)
{
	body.len = 0;
	id_head(&body, x, t);
	buf_putc(&body, ',');
	key_u64(&body, "batchSize", n);
}

static int h_next_batch(struct ctx *x)
{
	enum id_type t;
	struct entity *e;
	int rc;
	const char *v;
	size_t vn;
	uint64_t n;
	if (!http_query_param(x->query, x->query_len, "batchSize", &v, &vn) ||
	    parse_uint(v, vn, 1, cfg->max_batch, &n) != 0)
		return fail(400, "Invalid batch size", "batchSize must be an integer in 1..%u",
			    cfg->max_batch);
	if ((rc = resolve_type(x, &t, &e)) || (rc = ownership_gate()) || (rc = bind_entity(x, t, &e)) ||
	    (rc = binding_committed(x, e)))
		return rc;
	struct api_resume *rs = x->r->resume;

	if (id_type_is_seq(t)) {
		uint64_t i;
		enum store_status st = store_take(store, e, n, x->r->mono_ms, &i);
		if (st == STORE_PENDING)
			return wait_for_kv(x, "the reservation");
		if (st == STORE_EXHAUSTED)
			return fail(409, "Sequence exhausted",
				    "entity '%s' has fewer than %llu %s values left on shard %u; nothing was handed out",
				    x->entity, (unsigned long long)n, id_type_name(t), cfg->shard_id);
		if (st != STORE_OK)
			return storage_error(st);
		metrics.ids_issued[t] += n;
		batch_head(x, t, n);
		uint64_t first = entity_value(e, i), last = entity_value(e, i + n - 1);
		buf_puts(&body, ",\"value\":");
		emit_number(&body, t, first);
		buf_puts(&body, ",\"startValue\":");
		emit_number(&body, t, first);
		buf_puts(&body, ",\"endValue\":");
		emit_number(&body, t, last);
		buf_puts(&body, ",\"values\":[");
		buf_reserve(&body, n * 22 + 2);
		for (uint64_t k = 0; k < n; k++) {
			if (k)
				buf_putc(&body, ',');
			emit_number(&body, t, first + k * e->shape.total);
		}
		buf_puts(&body, "]}");
		return 200;
	}

	if (t == TYPE_SNOWFLAKE) {
		/* Produced across several loop turns when the layout's rate limits it;
		 * what is made so far waits in the connection's resume state. */
		while (rs->done < n) {
			uint64_t id, wait_ms;
			if ((rc = next_snowflake(x, 1, &id, &wait_ms)) != 0) {
				if (rc < 0) {
					rs->wait_ms = wait_ms;
					return -1;
				}
				metrics.ids_issued[t] += rs->done;  /* made, never delivered: still spent */
				return rc;
			}
			if (rs->done == 0)
				rs->first = id;
			else
				buf_putc(&rs->partial, ',');
			rs->last = id;
			json_u64_str(&rs->partial, id);
			rs->done++;
		}
		e->last_snowflake = rs->last;
		metrics.ids_issued[t] += n;
		batch_head(x, t, n);
		buf_puts(&body, ",\"value\":");
		json_u64_str(&body, rs->first);
		buf_puts(&body, ",\"startValue\":");
		json_u64_str(&body, rs->first);
		buf_puts(&body, ",\"endValue\":");
		json_u64_str(&body, rs->last);
		buf_puts(&body, ",\"values\":[");
		buf_append(&body, rs->partial.data, rs->partial.len);
		buf_puts(&body, "]}");
		return 200;
	}

	size_t len = id_type_uuid_len(t);
	char *chars = malloc(n * len);
	if (!chars || uuid_generate(chars, n * len) != 0) {
		free(chars);
		return fail(503, "Service unavailable", "getrandom failed");
	}
	metrics.ids_issued[t] += n;
	batch_head(x, t, n);
	buf_puts(&body, ",\"value\":");
	json_str(&body, chars, len);
	buf_puts(&body, ",\"startValue\":");
	json_str(&body, chars, len);
	buf_puts(&body, ",\"endValue\":");
	json_str(&body, chars + (n - 1) * len, len);
	buf_puts(&body, ",\"values\":[");
	for (uint64_t k = 0; k < n; k++) {
		if (k)
			buf_putc(&body, ',');
		json_str(&body, chars + k * len, len);
	}
	buf_puts(&body, "]}");
	free(chars);
	return 200;
}

/* currentValue: last value handed out; null when none or not tracked. */
static void emit_current(struct buf *b, const struct entity *e)
{
	json_key(b, "currentValue");
	if (id_type_is_seq(e->type) && e->next_i > e->start_i)
		emit_number(b, e->type, entity_value(e, e->next_i - 1));
	else if (e->type == TYPE_SNOWFLAKE && e->last_snowflake)
		json_u64_str(b, e->last_snowflake);
	else
		buf_puts(b, "null");
}

static struct entity *find_or_404(struct ctx *x, int *rc)
{
	struct entity *e = store_find(store, x->entity, x->entity_len);
	if (!e)
		*rc = fail(404, "Entity not found", "entity '%s' does not exist on shard %u",
			   x->entity, cfg->shard_id);
	return e;
}

static int h_status(struct ctx *x)
{
	int rc = 0;
	struct entity *e = find_or_404(x, &rc);
	if (!e)
		return rc;
	body.len = 0;
	id_head(&body, x, e->type);
	buf_putc(&body, ',');
	emit_current(&body, e);
	buf_puts(&body, ",\"nextValue\":");
	if (id_type_is_seq(e->type) && e->next_i < seq_count(&e->shape))
		emit_number(&body, e->type, entity_value(e, e->next_i));
	else
		buf_puts(&body, "null");
	if (id_type_is_seq(e->type)) {
		/* The journal's high-water mark: values below it may have been handed out. */
		buf_puts(&body, ",\"reservedUpTo\":");
		if (e->reserved_i > e->start_i)
			emit_number(&body, e->type, entity_value(e, e->reserved_i - 1));
		else
			buf_puts(&body, "null");
	}
	buf_putc(&body, '}');
	return 200;
}

static int h_list(struct ctx *x)
{
	(void)x;
	struct entity **all = store_sorted(store);
	if (!all)
		return fail(503, "Service unavailable", "out of memory");
	body.len = 0;
	buf_puts(&body, "{\"entities\":[");
	for (size_t i = 0; i < store->count; i++) {
		const struct entity *e = all[i];
		if (i)
			buf_putc(&body, ',');
		buf_putc(&body, '{');
		key_str(&body, "entityName", e->name, e->name_len);
		buf_putc(&body, ',');
		key_str(&body, "dataType", id_type_name(e->type), strlen(id_type_name(e->type)));
		buf_putc(&body, ',');
		emit_current(&body, e);
		buf_putc(&body, '}');
	}
	free(all);
	buf_puts(&body, "],\"shardInfo\":{");
	shard_info(&body);
	buf_puts(&body, "}}");
	return 200;
}

static int h_types(struct ctx *x)
{
	static const char *const descriptions[TYPE_COUNT] = {
		"32-bit sequence interleaved across shards (shard + i * totalShards), JSON number",
		"64-bit sequence interleaved across shards, decimal string",
		"64-bit time-ordered ID (time, sequence, machine), decimal string",
		"8 random characters from A-Z a-z 0-9",
		"12 random characters from A-Z a-z 0-9",
		"16 random characters from A-Z a-z 0-9",
		"22 random characters from A-Z a-z 0-9",
	};
	const struct sf_layout *l = &cfg->layout;
	char epoch[32], exhausts[32];
	(void)x;
	clock_iso8601(l->epoch_ms, epoch);
	clock_iso8601(sf_exhausts_at_ms(l), exhausts);
	body.len = 0;
	buf_puts(&body, "{\"availableTypes\":[");
	for (int t = 0; t < TYPE_COUNT; t++) {
		if (t)
			buf_putc(&body, ',');
		json_cstr(&body, id_type_name((enum id_type)t));
	}
	buf_puts(&body, "],\"description\":{");
	for (int t = 0; t < TYPE_COUNT; t++) {
		if (t)
			buf_putc(&body, ',');
		json_key(&body, id_type_name((enum id_type)t));
		json_cstr(&body, descriptions[t]);
	}
	buf_puts(&body, "},\"shardInfo\":{");
	shard_info(&body);
	buf_puts(&body, "},\"snowflakeInfo\":{");
	key_str(&body, "layout", l->name, strlen(l->name));
	buf_putc(&body, ',');
	key_str(&body, "epoch", epoch, strlen(epoch));
	buf_putc(&body, ',');
	key_u64(&body, "timeUnitMs", l->unit_ms);
	buf_puts(&body, ",\"bits\":{");
	key_u64(&body, "time", l->time_bits);
	buf_putc(&body, ',');
	key_u64(&body, "sequence", l->seq_bits);
	buf_putc(&body, ',');
	key_u64(&body, "machine", l->machine_bits);
	buf_puts(&body, "},");
	key_u64(&body, "machineId", cfg->machine_id);
	buf_putc(&body, ',');
	key_u64(&body, "maxIdsPerSecond", sf_max_ids_per_second(l));
	buf_putc(&body, ',');
	key_str(&body, "exhaustsAt", exhausts, strlen(exhausts));
	buf_puts(&body, "}}");
	return 200;
}

/* init, reset and delete change what IDs are handed out. */
static int admin_gate(struct ctx *x)
{
	if (!cfg->admin_token[0]) {
		if (!x->r->peer_loopback)
			return fail(403, "Forbidden",
				    "admin routes are accepted only from loopback unless ADMIN_TOKEN is set");
		return 0;
	}
	const struct http_header *h = http_find_header(x->r->http, "Authorization");
	size_t tn = strlen(cfg->admin_token);
	unsigned diff = 1;
	if (h && h->value_len == 7 + tn && memcmp(h->value, "Bearer ", 7) == 0) {
		diff = 0;  /* constant time over the token's bytes */
		for (size_t i = 0; i < tn; i++)
			diff |= (unsigned char)(h->value[7 + i] ^ cfg->admin_token[i]);
	}
	if (diff) {
		x->extra_headers = "WWW-Authenticate: Bearer\r\n";
		return fail(401, "Unauthorized", "admin routes need Authorization: Bearer <ADMIN_TOKEN>");
	}
	return 0;
}

static int parse_body(struct ctx *x, struct json_object *obj, const char *const *allowed)
{
	char err[160];
	if (json_parse_object(x->r->body, x->r->body_len, obj, err, sizeof err) != 0)
		return fail(400, "Invalid JSON", "request body must be a JSON object: %s", err);
	for (size_t i = 0; i < obj->n; i++) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(obj->fields[i].key, *a) == 0;
		if (!ok)
			return fail(400, "Invalid field", "unknown field '%s' in request body",
				    obj->fields[i].key);
	}
	return 0;
}

/* Reads a sequence value field and snaps it to this shard's residue class. */
static int snap_field(const struct json_field *f, const struct entity *shape_of,
		      enum id_type t, const char *name, uint64_t *i, int *adjusted)
{
	struct seq_shape shape = shape_of ? shape_of->shape :
				 seq_shape_make(cfg->shard_id, cfg->total_shards, t);
	int64_t v;
	int rc = json_field_i64(f, 0, (int64_t)shape.max, &v);
	if (rc != 0 || seq_snap(&shape, (uint64_t)v, i, adjusted) != 0)
		return fail(400, "Invalid value", "%s must be an integer in 0..%llu%s", name,
			    (unsigned long long)shape.max,
			    rc == 0 ? " whose next value on this shard still fits the type" : "");
	return 0;
}

/* ?force=true|false (default false). */
static int force_param(struct ctx *x, int *force)
{
	const char *v;
	size_t n;
	*force = 0;
	if (!http_query_param(x->query, x->query_len, "force", &v, &n))
		return 0;
	if (n == 4 && memcmp(v, "true", 4) == 0)
		*force = 1;
	else if (!(n == 5 && memcmp(v, "false", 5) == 0))
		return fail(400, "Invalid parameter", "force must be true or false");
	return 0;
}

static int h_init(struct ctx *x)
{
	static const char *const allowed[] = { "dataType", "startValue", NULL };
	struct json_object obj;
	int rc, force;
	if ((rc = force_param(x, &force)) || (rc = admin_gate(x)) || (rc = ownership_gate()) ||
	    (rc = parse_body(x, &obj, allowed)))
		return rc;
	const struct json_field *ft = json_get(&obj, "dataType");
	const struct json_field *fs = json_get(&obj, "startValue");
	enum id_type t;
	if (!ft)
		return fail(400, "Missing field", "body needs \"dataType\"");
	if (ft->type != JSON_STRING || id_type_parse(ft->str, ft->str_len, &t) != 0)
		return fail(400, "Invalid data type",
			    "dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22");
	/* A deleted entity of this name may have handed out values below its
	 * floor: a new one starts above them unless the operator forces it. */
	uint64_t floor = store_floor(store, x->entity, x->entity_len), start_i = floor;
	struct seq_shape shape = seq_shape_make(cfg->shard_id, cfg->total_shards, t);
	int adjusted = 0;
	if (fs && fs->type != JSON_NULL) {
		if (!id_type_is_seq(t))
			return fail(400, "Invalid field", "startValue applies to int and long only");
		if ((rc = snap_field(fs, NULL, t, "startValue", &start_i, &adjusted)))
			return rc;
		if (start_i < floor && !force)
			return fail(409, "Start below deleted values",
				    "a deleted entity '%s' may have handed out values up to %llu; starting at %llu could repeat them; add ?force=true to do it anyway",
				    x->entity, (unsigned long long)seq_value(&shape, floor - 1),
				    (unsigned long long)seq_value(&shape, start_i));
	} else if (id_type_is_seq(t) && floor >= seq_count(&shape)) {
		return fail(409, "Sequence exhausted",
			    "a deleted entity '%s' went past the %s range; give a startValue with ?force=true, or use long",
			    x->entity, id_type_name(t));
	}
	struct entity *e;
	enum store_status st = store_init(store, x->entity, x->entity_len, t, start_i, x->r->mono_ms, &e);
	if (st == STORE_EXISTS)
		return fail(409, "Entity exists", "entity '%s' already exists on shard %u",
			    x->entity, cfg->shard_id);
	if (st != STORE_OK)
		return storage_error(st);
	body.len = 0;
	id_head(&body, x, t);
	buf_puts(&body, ",\"startValue\":");
	if (id_type_is_seq(t))
		emit_number(&body, t, entity_value(e, start_i));
	else
		buf_puts(&body, "null");
	buf_puts(&body, adjusted ? ",\"adjusted\":true" : ",\"adjusted\":false");
	buf_puts(&body, ",\"message\":");
	char msg[200];
	snprintf(msg, sizeof msg, "Entity '%s' initialized", x->entity);
	json_cstr(&body, msg);
	buf_putc(&body, '}');
	return hold_until_committed(x, 201, e->hash);
}

static int h_reset(struct ctx *x)
{
	static const char *const allowed[] = { "value", NULL };
	struct json_object obj;
	int rc, force;
	if ((rc = force_param(x, &force)) || (rc = admin_gate(x)) || (rc = ownership_gate()) ||
	    (rc = parse_body(x, &obj, allowed)))
		return rc;
	struct entity *e = find_or_404(x, &rc);
	if (!e)
		return rc;
	if (!id_type_is_seq(e->type))
		return fail(400, "Not a sequence", "entity '%s' has type %s; only int and long can be reset",
			    x->entity, id_type_name(e->type));
	const struct json_field *f = json_get(&obj, "value");
	if (!f)
		return fail(400, "Missing field", "body needs \"value\"");
	uint64_t i;
	int adjusted = 0;
	if ((rc = snap_field(f, e, e->type, "value", &i, &adjusted)))
		return rc;
	uint64_t prev_i = e->next_i;
	enum store_status st = store_reset(store, e, i, force);
	if (st == STORE_BACKWARDS)
		return fail(409, "Reset moves backwards",
			    "next value would go from %llu back to %llu, which may already have been handed out; add ?force=true to do it anyway",
			    (unsigned long long)entity_value(e, prev_i), (unsigned long long)entity_value(e, i));
	if (st != STORE_OK)
		return storage_error(st);
	body.len = 0;
	id_head(&body, x, e->type);
	buf_puts(&body, ",\"previousValue\":");
	if (prev_i < seq_count(&e->shape))
		emit_number(&body, e->type, entity_value(e, prev_i));
	else
		buf_puts(&body, "null");
	buf_puts(&body, ",\"nextValue\":");
	emit_number(&body, e->type, entity_value(e, i));
	buf_puts(&body, adjusted ? ",\"adjusted\":true}" : ",\"adjusted\":false}");
	return hold_until_committed(x, 200, e->hash);
}

static int h_delete(struct ctx *x)
{
	int rc;
	if ((rc = admin_gate(x)) || (rc = ownership_gate()))
		return rc;
	enum store_status st = store_delete(store, x->entity, x->entity_len);
	if (st == STORE_NOT_FOUND)
		return fail(404, "Entity not found", "entity '%s' does not exist on shard %u",
			    x->entity, cfg->shard_id);
	if (st != STORE_OK)
		return storage_error(st);
	char msg[200];
	snprintf(msg, sizeof msg, "Entity '%s' deleted successfully", x->entity);
	body.len = 0;
	buf_puts(&body, "{\"message\":");
	json_cstr(&body, msg);
	buf_putc(&body, ',');
	key_str(&body, "entityName", x->entity, x->entity_len);
	buf_putc(&body, ',');
	key_u64(&body, "shard", cfg->shard_id);
	buf_putc(&body, '}');
	return hold_until_committed(x, 200, shard_kv_hash(x->entity, x->entity_len));
}

int api_describe_snowflake(struct buf *b, const char *text, size_t len)
{
	uint64_t id;
	struct sf_parts p;
	if (parse_uint(text, len, 0, UINT64_MAX, &id) != 0 || sf_decompose(&cfg->layout, id, &p) != 0)
		return -1;
	char date[32];
	clock_iso8601(p.unix_ms, date);
	/* Machine IDs default to SHARD_ID (sonyflake) or SHARD_ID-1 (others). */
	uint64_t shard = strcmp(cfg->layout.name, "sonyflake") == 0 ? p.machine : p.machine + 1;
	buf_putc(b, '{');
	json_key(b, "id");
	json_u64_str(b, id);
	buf_putc(b, ',');
	key_u64(b, "timestamp", p.unix_ms);
	buf_putc(b, ',');
	key_str(b, "date", date, strlen(date));
	buf_putc(b, ',');
	key_u64(b, "machineId", p.machine);
	buf_putc(b, ',');
	key_u64(b, "shardId", shard);
	buf_putc(b, ',');
	key_u64(b, "sequence", p.seq);
	buf_putc(b, '}');
	return 0;
}

static int h_parse(struct ctx *x)
{
	body.len = 0;
	if (api_describe_snowflake(&body, x->entity, x->entity_len) != 0)
		return fail(400, "Invalid snowflake",
			    "id must be a decimal integer in 0..9223372036854775807");
	return 200;
}

static int h_metrics(struct ctx *x)
{
	(void)x;
	body.len = 0;
	metrics_render(&body, store_fsyncs(store), store_journal_bytes(store), store->count);
	return 200;
}

/* ---- routing ---- */

enum { M_GET = 1 << HTTP_GET, M_HEAD = 1 << HTTP_HEAD, M_POST = 1 << HTTP_POST,
       M_PUT = 1 << HTTP_PUT, M_DELETE = 1 << HTTP_DELETE };

struct route {
	const char *path;        /* exact path, or prefix when `entity` */
	int entity;              /* a {entity} segment follows the prefix */
	int methods;
	const char *allow;       /* methods, for Allow and the 405 message */
	int (*handler)(struct ctx *);
	enum route_id id;
};

#define GET_HEAD (M_GET | M_HEAD)
static const struct route routes[] = {
	{ "/health", 0, GET_HEAD, "GET, HEAD", h_health, ROUTE_HEALTH },
	{ "/shard-info", 0, GET_HEAD, "GET, HEAD", h_shard_info, ROUTE_SHARD_INFO },
	{ "/api/next-id/", 1, GET_HEAD, "GET, HEAD", h_next_id, ROUTE_NEXT_ID },
	{ "/api/next-batch/", 1, GET_HEAD, "GET, HEAD", h_next_batch, ROUTE_NEXT_BATCH },
	{ "/api/status/", 1, GET_HEAD, "GET, HEAD", h_status, ROUTE_STATUS },
	{ "/api/list", 0, GET_HEAD, "GET, HEAD", h_list, ROUTE_LIST },
	{ "/api/types", 0, GET_HEAD, "GET, HEAD", h_types, ROUTE_TYPES },
	{ "/api/init/", 1, M_POST, "POST", h_init, ROUTE_INIT },
	{ "/api/reset/", 1, M_PUT, "PUT", h_reset, ROUTE_RESET },
	{ "/api/entity/", 1, M_DELETE, "DELETE", h_delete, ROUTE_DELETE },
	{ "/api/parse-snowflake/", 1, GET_HEAD, "GET, HEAD", h_parse, ROUTE_PARSE },
	{ "/metrics", 0, GET_HEAD, "GET, HEAD", h_metrics, ROUTE_METRICS },
};

static const struct route *match(const char *path, size_t len, const char **seg, size_t *seg_len)
{
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const struct route *r = &routes[i];
		size_t pl = strlen(r->path);
		if (!r->entity) {
			if (len == pl && memcmp(path, r->path, pl) == 0)
				return r;
			continue;
		}
		if (len >= pl && memcmp(path, r->path, pl) == 0 && !memchr(path + pl, '/', len - pl)) {
			*seg = path + pl;
			*seg_len = len - pl;
			return r;
		}
	}
	return NULL;
}

static int dispatch(struct ctx *x, const struct route **matched)
{
	const struct http_request *h = x->r->http;
	const char *path, *seg = NULL;
	size_t path_len, seg_len = 0;
	http_split_target(h->target, h->target_len, &path, &path_len, &x->query, &x->query_len);
	const struct route *rt = match(path, path_len, &seg, &seg_len);
	*matched = rt;
	if (!rt)
		return fail(404, "Not found", "no route for this path; see GET /api/types and the README");
	x->route = rt->id;
	if (!(rt->methods & (1 << h->method))) {
		static char allow[48];
		snprintf(allow, sizeof allow, "Allow: %s\r\n", rt->allow);
		x->extra_headers = allow;
		return fail(405, "Method not allowed", "use %s for this path", rt->allow);
	}
	if (rt->entity) {
		int rc = take_entity(x, seg, seg_len);
		if (rc)
			return rc;
	}
	return rt->handler(x);
}

enum api_result api_handle(struct api_request *r, struct buf *out, uint64_t *wait_ms)
{
	struct ctx x = { .r = r, .route = ROUTE_UNMATCHED };
	const struct route *rt = NULL;
	int status = r->resume->held ? finish_held(&x) : dispatch(&x, &rt);
	if (status < 0) {
		/* Parked: the handler left the wait in the resume state. */
		*wait_ms = r->resume->wait_ms ? r->resume->wait_ms : 1;
		return API_WAIT;
	}
	api_resume_reset(r->resume);
	metrics_request(x.route, status);
	struct http_resp_opts o = {
		.head_only = r->http->method == HTTP_HEAD,
		.keep_alive = r->keep_alive,
		.http10 = r->http->minor_version == 0,
		.content_type = x.route == ROUTE_METRICS && status == 200 ?
				"text/plain; version=0.0.4; charset=utf-8" : NULL,
		.extra_headers = x.extra_headers,
	};
	size_t before = out->len;
	http_resp_write(out, status, &o, body.data, body.len);
	if (cfg->access_log) {
		char path[256];
		log_quote(path, sizeof path, r->http->target, r->http->target_len);
		log_info("msg=request method=%.*s target=%s status=%d bytes=%zu client=%s",
			 (int)r->http->method_len, r->http->method_str, path, status,
			 out->len - before, r->peer_loopback ? "loopback" : "remote");
	}
	return API_DONE;
}
