#include "api_ctx.h"

#include <stdarg.h>
#include <string.h>

#include "fmt.h"
#include "gate.h"
#include "http_parse.h"
#include "metrics.h"
#include "store_kv.h"

int api_fail(struct api_ctx *x, int status, const char *error, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_cstr(&w, "error", error);
	jw_cstr(&w, "message", msg);
	jw_close(&w);
	return status;
}

int api_storage_error(struct api_ctx *x, enum store_status st)
{
	if (st == STORE_NOMEM)
		return api_fail(x, 503, "Service unavailable", "out of memory");
	return api_fail(x, 503, "Storage unavailable", "%s; nothing was handed out",
			x->store->failure[0] ? x->store->failure : "journal write failed");
}

int api_ownership_gate(struct api_ctx *x)
{
	const char *p = gate_problem();
	return p ? api_fail(x, 503, "Shard not owned", "%s", p) : 0;
}

int api_wait_for_kv(struct api_ctx *x, const char *what)
{
	struct api_session *s = x->s;
	if (!s->waiting) {
		s->waiting = 1;
		s->wait_started_ms = x->r->mono_ms;
		metrics.kv_waits++;
	}
	if (x->r->mono_ms - s->wait_started_ms >= KV_WAIT_MAX_MS)
		return api_fail(x, 503, "Replication unavailable",
				"Consul did not commit %s within %d ms; nothing was handed out",
				what, KV_WAIT_MAX_MS);
	s->wait_ms = KV_RECHECK_MS;
	return -1;
}

int api_hold_until_committed(struct api_ctx *x, int status, uint32_t hash)
{
	struct api_session *s = x->s;
	struct store *st = x->store;
	uint32_t version = store_kv_version(st, hash);
	if (!st->kv || !st->kv->required || store_kv_committed(st, hash, version))
		return status;
	metrics.kv_waits++;
	s->held = 1;
	s->held_status = status;
	s->held_route = x->route;
	s->held_hash = hash;
	s->held_version = version;
	s->held_body.len = 0;
	buf_append(&s->held_body, x->body->data, x->body->len);
	s->waiting = 1;
	s->wait_started_ms = x->r->mono_ms;
	s->wait_ms = KV_RECHECK_MS;
	return -1;
}

int api_finish_held(struct api_ctx *x)
{
	struct api_session *s = x->s;
	x->route = s->held_route;
	if (store_kv_committed(x->store, s->held_hash, s->held_version)) {
		x->body->len = 0;
		buf_append(x->body, s->held_body.data, s->held_body.len);
		return s->held_status;
	}
	if (x->r->mono_ms - s->wait_started_ms >= KV_WAIT_MAX_MS)
		return api_fail(x, 503, "Replication unavailable",
				"the change is in this instance's journal, but Consul did not confirm it within %d ms; "
				"a failover before it does may undo it", KV_WAIT_MAX_MS);
	s->wait_ms = KV_RECHECK_MS;
	return -1;
}

int api_take_entity(struct api_ctx *x, const char *raw, size_t len)
{
	char tmp[3 * ENTITY_NAME_MAX + 1];
	long n = len <= 3 * ENTITY_NAME_MAX ? http_percent_decode(raw, len, tmp, sizeof tmp) : -1;
	if (n < 0 || !entity_name_valid(tmp, (size_t)n))
		return api_fail(x, 400, "Invalid entity name",
				"entity name must be 1..%d characters of A-Z a-z 0-9 . _ : - after percent-decoding",
				ENTITY_NAME_MAX);
	memcpy(x->entity, tmp, (size_t)n);
	x->entity[n] = '\0';
	x->entity_len = (size_t)n;
	return 0;
}

int api_not_found(struct api_ctx *x)
{
	return api_fail(x, 404, "Entity not found", "entity '%s' does not exist on shard %u",
			x->entity, x->cfg->shard_id);
}

struct entity *api_find_or_404(struct api_ctx *x, int *rc)
{
	struct entity *e = store_find(x->store, x->entity, x->entity_len);
	if (!e)
		*rc = api_not_found(x);
	return e;
}

int api_parse_uint(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (parse_u64(s, n, &v) != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void api_id_head(struct jw *w, const struct api_ctx *x, enum id_type t)
{
	jw_object(w, NULL);
	jw_str(w, "entityName", x->entity, x->entity_len);
	jw_cstr(w, "dataType", id_type_name(t));
	jw_u64(w, "shard", x->cfg->shard_id);
}

void api_style(struct jw *w, const struct id_style *s)
{
	if (s->prefix_len)
		jw_str(w, "prefix", s->prefix, s->prefix_len);
	if (s->format == FMT_BASE62)
		jw_cstr(w, "format", "base62");
}

void api_number(struct jw *w, const char *key, enum id_type t, uint64_t v)
{
	if (t == TYPE_INT)
		jw_u64(w, key, v);
	else
		jw_u64_str(w, key, v);
}
