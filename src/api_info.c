/* The routes that only read: health, shard-info, status, list, types,
 * parse-snowflake, parse-typeid, compose-snowflake and metrics. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_ctx.h"
#include "api_handlers.h"
#include "clock.h"
#include "gate.h"
#include "metrics.h"
#include "seq.h"
#include "tsid.h"

int api_health(struct api_ctx *x)
{
	store_probe(x->store, x->r->mono_ms);
	const char *problem = x->store->failure[0] ? x->store->failure : gate_problem();
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_cstr(&w, "status", problem ? "unhealthy" : "healthy");
	if (problem) {
		jw_cstr(&w, "reason", problem);
	} else {
		jw_u64(&w, "shard", x->cfg->shard_id);
		jw_u64(&w, "totalShards", x->cfg->total_shards);
		jw_u64(&w, "uptime", (x->r->mono_ms - x->api->started_mono_ms) / 1000);
	}
	if (x->api->health_extra)
		x->api->health_extra(x->body);   /* after a member: it starts with a comma */
	jw_close(&w);
	return problem ? 503 : 200;
}

static void shard_info(struct jw *w, const struct config *cfg)
{
	jw_u64(w, "shardId", cfg->shard_id);
	jw_u64(w, "totalShards", cfg->total_shards);
}

int api_shard_info(struct api_ctx *x)
{
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	shard_info(&w, x->cfg);
	/* SHARD_ID=auto before a shard is claimed: shardId 0. */
	jw_cstr(&w, "status", x->cfg->shard_id ? "active" : "claiming");
	jw_close(&w);
	return 200;
}

/* currentValue: last value handed out; null when none or not tracked. */
static void current_value(struct jw *w, const struct entity *e)
{
	if (id_type_is_seq(e->type) && e->next_i > e->start_i)
		api_number(w, "currentValue", e->type, entity_value(e, e->next_i - 1));
	else if (e->type == TYPE_SNOWFLAKE && e->last_snowflake)
		jw_u64_str(w, "currentValue", e->last_snowflake);
	else
		jw_null(w, "currentValue");
}

int api_status(struct api_ctx *x)
{
	int rc = 0;
	struct entity *e = api_find_or_404(x, &rc);
	if (!e)
		return rc;
	struct jw w;
	api_begin(x, &w);
	api_id_head(&w, x, e->type);
	api_style(&w, &e->style);
	current_value(&w, e);
	if (id_type_is_seq(e->type) && e->next_i < seq_count(&e->shape))
		api_number(&w, "nextValue", e->type, entity_value(e, e->next_i));
	else
		jw_null(&w, "nextValue");
	if (id_type_is_seq(e->type)) {
		/* The journal's high-water mark: values below it may have been handed out. */
		if (e->reserved_i > e->start_i)
			api_number(&w, "reservedUpTo", e->type, entity_value(e, e->reserved_i - 1));
		else
			jw_null(&w, "reservedUpTo");
		/* How much of the range is left, as a count and a percentage. */
		uint64_t n = seq_count(&e->shape), left = e->next_i < n ? n - e->next_i : 0;
		api_number(&w, "valuesLeft", e->type, left);
		uint64_t ppm = 1000000 - store_used_ppm(e);
		buf_fixed(jw_value(&w, "rangeLeftPercent"), ppm, 4);   /* percent with 4 places */
	}
	jw_close(&w);
	return 200;
}

int api_list(struct api_ctx *x)
{
	struct entity **all = store_sorted(x->store);
	if (!all)
		return api_fail(x, 503, "Service unavailable", "out of memory");
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_array(&w, "entities");
	for (size_t i = 0; i < x->store->count; i++) {
		const struct entity *e = all[i];
		jw_object(&w, NULL);
		jw_str(&w, "entityName", e->name, e->name_len);
		jw_cstr(&w, "dataType", id_type_name(e->type));
		api_style(&w, &e->style);
		current_value(&w, e);
		jw_close(&w);
	}
	free(all);
	jw_close(&w);
	jw_object(&w, "shardInfo");
	shard_info(&w, x->cfg);
	jw_close(&w);
	jw_close(&w);
	return 200;
}

static void snowflake_info(struct jw *w, const struct config *cfg)
{
	const struct sf_layout *l = &cfg->layout;
	char epoch[32], exhausts[32];
	clock_iso8601(l->epoch_ms, epoch);
	clock_iso8601(sf_exhausts_at_ms(l), exhausts);
	jw_object(w, "snowflakeInfo");
	jw_cstr(w, "layout", l->name);
	jw_cstr(w, "epoch", epoch);
	jw_u64(w, "timeUnitMs", l->unit_ms);
	jw_object(w, "bits");
	jw_u64(w, "time", l->time_bits);
	jw_u64(w, "sequence", l->seq_bits);
	jw_u64(w, "machine", l->machine_bits);
	jw_close(w);
	jw_u64(w, "machineId", cfg->machine_id);
	jw_u64(w, "maxIdsPerSecond", sf_max_ids_per_second(l));
	jw_cstr(w, "exhaustsAt", exhausts);
	jw_close(w);
}

int api_types(struct api_ctx *x)
{
	static const char *const descriptions[TYPE_COUNT] = {
		"32-bit sequence interleaved across shards (shard + i * totalShards), JSON number",
		"64-bit sequence interleaved across shards, decimal string",
		"64-bit time-ordered ID (time, sequence, machine), decimal string",
		"8 random characters from A-Z a-z 0-9",
		"12 random characters from A-Z a-z 0-9",
		"16 random characters from A-Z a-z 0-9",
		"22 random characters from A-Z a-z 0-9",
		"RFC 9562 UUIDv7 (48-bit Unix ms, 12-bit counter, 62 random bits), time-ordered, canonical lowercase; TypeID with an entity prefix",
		"ULID: 48-bit Unix ms and 80 random bits, incremented within a millisecond, 26 Crockford base32 characters",
	};
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_array(&w, "availableTypes");
	for (int t = 0; t < TYPE_COUNT; t++)
		jw_cstr(&w, NULL, id_type_name((enum id_type)t));
	jw_close(&w);
	jw_object(&w, "description");
	for (int t = 0; t < TYPE_COUNT; t++)
		jw_cstr(&w, id_type_name((enum id_type)t), descriptions[t]);
	jw_close(&w);
	jw_object(&w, "shardInfo");
	shard_info(&w, x->cfg);
	jw_close(&w);
	snowflake_info(&w, x->cfg);
	jw_close(&w);
	return 200;
}

int api_describe_snowflake(struct buf *b, const struct sf_layout *l, const char *text, size_t len)
{
	uint64_t id;
	struct sf_parts p;
	/* Decimal, else the 11-character base62 form (an all-digit text is decimal). */
	if ((api_parse_uint(text, len, 0, UINT64_MAX, &id) != 0 &&
	     tsid_base62_parse(text, len, &id) != 0) || sf_decompose(l, id, &p) != 0)
		return -1;
	char date[32];
	clock_iso8601(p.unix_ms, date);
	/* Machine IDs default to SHARD_ID (sonyflake) or SHARD_ID-1 (others). */
	uint64_t shard = strcmp(l->name, "sonyflake") == 0 ? p.machine : p.machine + 1;
	struct jw w;
	jw_init(&w, b);
	jw_object(&w, NULL);
	jw_u64_str(&w, "id", id);
	jw_u64(&w, "timestamp", p.unix_ms);
	jw_cstr(&w, "date", date);
	jw_u64(&w, "machineId", p.machine);
	jw_u64(&w, "shardId", shard);
	jw_u64(&w, "sequence", p.seq);
	jw_close(&w);
	return 0;
}

int api_parse_snowflake(struct api_ctx *x)
{
	x->body->len = 0;
	if (api_describe_snowflake(x->body, &x->cfg->layout, x->entity, x->entity_len) != 0)
		return api_fail(x, 400, "Invalid snowflake",
				"id must be a decimal integer in 0..9223372036854775807, or its 11-character base62 form");
	return 200;
}

/* A TypeID (prefix_ and the base32 of a UUIDv7, or the suffix alone):
 * its prefix, the UUID and the UUID's time. */
int api_parse_typeid(struct api_ctx *x)
{
	uint8_t id[16];
	size_t pn;
	if (tsid_typeid_parse(x->entity, x->entity_len, &pn, id) != 0 || !tsid_is_uuid7(id))
		return api_fail(x, 400, "Invalid TypeID",
				"id must be a TypeID: prefix_ and the 26 lowercase base32 characters of a UUIDv7");
	char uuid[36], date[32];
	uint64_t ms = tsid_ms(id);
	tsid_uuid_text(id, uuid);
	clock_iso8601(ms, date);
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_str(&w, "id", x->entity, x->entity_len);
	jw_str(&w, "prefix", x->entity, pn);
	jw_str(&w, "uuid", uuid, 36);
	jw_u64(&w, "timestamp", ms);
	jw_cstr(&w, "date", date);
	jw_close(&w);
	return 200;
}

/* The smallest snowflake at a time (machine 0, sequence 0), for range
 * queries over IDs, and the smallest UUIDv7 of that millisecond. */
int api_compose_snowflake(struct api_ctx *x)
{
	const struct sf_layout *l = &x->cfg->layout;
	const char *v;
	size_t n;
	uint64_t ms;
	char tmp[32];
	long d = http_query_param(x->query, x->query_len, "time", &v, &n) && n < sizeof tmp ?
		http_percent_decode(v, n, tmp, sizeof tmp) : -1;
	if (d < 0 || (api_parse_uint(tmp, (size_t)d, 0, UINT64_MAX, &ms) != 0 &&
		      clock_parse_iso8601(tmp, (size_t)d, &ms) != 0))
		return api_fail(x, 400, "Invalid time",
				"time must be Unix milliseconds or ISO-8601 UTC (YYYY-MM-DDTHH:MM:SS[.mmm]Z)");
	uint64_t tick = sf_tick_of(l, ms);
	if (ms < l->epoch_ms || ms >= sf_exhausts_at_ms(l) || ms >= 1ull << 48)
		return api_fail(x, 400, "Time out of range", "time must lie in the %s layout's range, from its epoch to its end",
				l->name);
	uint64_t id = sf_compose(l, tick, 0, 0);
	char date[32], b62[TSID_B62_LEN], u7[36];
	uint8_t floor[16];
	clock_iso8601(ms, date);
	tsid_base62(id, b62);
	tsid_uuid7_floor(ms, floor);
	tsid_uuid_text(floor, u7);
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_cstr(&w, "time", date);
	jw_u64(&w, "timestamp", ms);
	jw_u64_str(&w, "snowflake", id);
	jw_str(&w, "base62", b62, TSID_B62_LEN);
	jw_str(&w, "uuid7", u7, 36);
	jw_close(&w);
	return 200;
}

int api_metrics(struct api_ctx *x)
{
	x->body->len = 0;
	struct metrics_extra e = {
		.fsyncs = store_fsyncs(x->store), .journal_bytes = store_journal_bytes(x->store),
		.entities = x->store->count, .seq_used_max_ppm = store_used_max_ppm(x->store),
		.mono_ms = x->r->mono_ms,
	};
	uint64_t end_ms = sf_exhausts_at_ms(&x->cfg->layout);
	e.layout_left_s = end_ms > x->r->now_ms ? (end_ms - x->r->now_ms) / 1000 : 0;
	procstat_read(&e.proc, "/proc");
	metrics_render(x->body, &e);
	return 200;
}
