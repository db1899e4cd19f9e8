/* The operator routes: init, reset and delete change what IDs are handed
 * out, so they are allowed from loopback or with the admin token, and
 * answer only once the change is durable (journal, and Consul when on). */
#include <string.h>

#include "api_ctx.h"
#include "api_handlers.h"
#include "auth.h"
#include "fmt.h"
#include "http_lex.h"
#include "seq.h"
#include "shard_kv.h"

static int admin_gate(struct api_ctx *x)
{
	const char *token = x->cfg->admin_token;
	if (!token[0])
		return x->r->peer_loopback ? 0 :
			api_fail(x, 403, "Forbidden",
				 "admin routes are accepted only from loopback unless ADMIN_TOKEN is set");
	const struct http_header *h = http_find_header(x->r->http, "Authorization");
	if (auth_bearer_ok(h ? h->value : NULL, h ? h->value_len : 0, token))
		return 0;
	x->extra_headers = "WWW-Authenticate: Bearer\r\n";
	return api_fail(x, 401, "Unauthorized", "admin routes need Authorization: Bearer <ADMIN_TOKEN>");
}

/* ?force=true|false (default false). */
static int force_param(struct api_ctx *x, int *force)
{
	const char *v;
	size_t n;
	*force = 0;
	if (!http_query_param(x->query, x->query_len, "force", &v, &n))
		return 0;
	if (LEX_EQ(v, n, "true"))
		*force = 1;
	else if (!LEX_EQ(v, n, "false"))
		return api_fail(x, 400, "Invalid parameter", "force must be true or false");
	return 0;
}

/* The checks every admin route makes, in order: ?force (when the route
 * takes it), the caller, the shard, then the body's fields. */
static int admit(struct api_ctx *x, int *force, struct json_object *obj, const char *const *allowed)
{
	int rc;
	if ((force && (rc = force_param(x, force))) || (rc = admin_gate(x)) || (rc = api_ownership_gate(x)))
		return rc;
	if (!obj)
		return 0;
	char err[160];
	if (json_parse_object(x->r->body, x->r->body_len, obj, err, sizeof err) != 0)
		return api_fail(x, 400, "Invalid JSON", "request body must be a JSON object: %s", err);
	for (size_t i = 0; i < obj->n; i++) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(obj->fields[i].key, *a) == 0;
		if (!ok)
			return api_fail(x, 400, "Invalid field", "unknown field '%s' in request body",
					obj->fields[i].key);
	}
	return 0;
}

/* Reads a sequence value field and snaps it to this shard's residue class. */
static int snap_field(struct api_ctx *x, const struct json_field *f, const struct seq_shape *shape,
		      const char *name, uint64_t *i, int *adjusted)
{
	int64_t v;
	int rc = json_field_i64(f, 0, (int64_t)shape->max, &v);
	if (rc != 0 || seq_snap(shape, (uint64_t)v, i, adjusted) != 0)
		return api_fail(x, 400, "Invalid value", "%s must be an integer in 0..%llu%s", name,
				(unsigned long long)shape->max,
				rc == 0 ? " whose next value on this shard still fits the type" : "");
	return 0;
}

/* Where a new entity starts: above what a deleted one of the same name may
 * have handed out, unless the operator gives a start and forces it. */
static int init_start(struct api_ctx *x, enum id_type t, const struct json_field *fs, int force,
		      uint64_t *start_i, int *adjusted)
{
	uint64_t floor = store_floor(x->store, x->entity, x->entity_len);
	struct seq_shape shape = seq_shape_make(x->cfg->shard_id, x->cfg->total_shards, t);
	int rc;
	*start_i = floor;
	if (fs && fs->type != JSON_NULL) {
		if (!id_type_is_seq(t))
			return api_fail(x, 400, "Invalid field", "startValue applies to int and long only");
		if ((rc = snap_field(x, fs, &shape, "startValue", start_i, adjusted)))
			return rc;
		if (*start_i < floor && !force)
			return api_fail(x, 409, "Start below deleted values",
					"a deleted entity '%s' may have handed out values up to %llu; starting at %llu could repeat them; add ?force=true to do it anyway",
					x->entity, (unsigned long long)seq_value(&shape, floor - 1),
					(unsigned long long)seq_value(&shape, *start_i));
	} else if (id_type_is_seq(t) && floor >= seq_count(&shape)) {
		return api_fail(x, 409, "Sequence exhausted",
				"a deleted entity '%s' went past the %s range; give a startValue with ?force=true, or use long",
				x->entity, id_type_name(t));
	}
	return 0;
}

/* "prefix" (uuid7: TypeIDs) and "format" (snowflake: base62), bound with
 * the type; null is the same as absent. */
static int style_fields(struct api_ctx *x, enum id_type t, const struct json_object *obj,
			struct id_style *st)
{
	const struct json_field *fp = json_get(obj, "prefix"), *ff = json_get(obj, "format");
	memset(st, 0, sizeof *st);
	/* Values no style can hold become impossible ones (a range format, a
	 * prefix longer than the bound), so id_style_problem names the rule. */
	if (ff && ff->type != JSON_NULL)
		st->format = ff->type == JSON_STRING && LEX_EQ(ff->str, ff->str_len, "base62") ?
			     FMT_BASE62 : FMT_RANGE;
	if (fp && fp->type != JSON_NULL) {
		st->prefix_len = ID_PREFIX_MAX + 1;
		if (fp->type == JSON_STRING && fp->str_len - 1 < ID_PREFIX_MAX) {
			memcpy(st->prefix, fp->str, fp->str_len);
			st->prefix_len = (uint8_t)fp->str_len;
		}
	}
	const char *why = id_style_problem(t, st);
	return why ? api_fail(x, 400, "Invalid field", "%s", why) : 0;
}

int api_init_entity(struct api_ctx *x)
{
	static const char *const allowed[] = { "dataType", "startValue", "prefix", "format", NULL };
	struct json_object obj;
	int rc, force, adjusted = 0;
	enum id_type t;
	uint64_t start_i;
	if ((rc = admit(x, &force, &obj, allowed)))
		return rc;
	const struct json_field *ft = json_get(&obj, "dataType");
	if (!ft)
		return api_fail(x, 400, "Missing field", "body needs \"dataType\"");
	if (ft->type != JSON_STRING || id_type_parse(ft->str, ft->str_len, &t) != 0)
		return api_fail(x, 400, "Invalid data type",
				"dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22, uuid7, ulid");
	struct id_style style;
	if ((rc = style_fields(x, t, &obj, &style)) ||
	    (rc = init_start(x, t, json_get(&obj, "startValue"), force, &start_i, &adjusted)))
		return rc;
	struct entity *e;
	enum store_status st = store_init(x->store, x->entity, x->entity_len, t, &style, start_i,
					  x->r->mono_ms, &e);
	if (st == STORE_EXISTS)
		return api_fail(x, 409, "Entity exists", "entity '%s' already exists on shard %u",
				x->entity, x->cfg->shard_id);
	if (st != STORE_OK)
		return api_storage_error(x, st);
	char msg[200];
	fmt_snprintf(msg, sizeof msg, "Entity '%s' initialized", x->entity);
	struct jw w;
	api_begin(x, &w);
	api_id_head(&w, x, t);
	if (id_type_is_seq(t))
		api_number(&w, "startValue", t, entity_value(e, start_i));
	else
		jw_null(&w, "startValue");
	jw_bool(&w, "adjusted", adjusted);
	api_style(&w, &e->style);
	jw_cstr(&w, "message", msg);
	jw_close(&w);
	return api_hold_until_committed(x, 201, e->hash);
}

int api_reset_entity(struct api_ctx *x)
{
	static const char *const allowed[] = { "value", NULL };
	struct json_object obj;
	int rc, force, adjusted = 0;
	uint64_t i;
	if ((rc = admit(x, &force, &obj, allowed)))
		return rc;
	struct entity *e = api_find_or_404(x, &rc);
	if (!e)
		return rc;
	if (!id_type_is_seq(e->type))
		return api_fail(x, 400, "Not a sequence", "entity '%s' has type %s; only int and long can be reset",
				x->entity, id_type_name(e->type));
	const struct json_field *f = json_get(&obj, "value");
	if (!f)
		return api_fail(x, 400, "Missing field", "body needs \"value\"");
	if ((rc = snap_field(x, f, &e->shape, "value", &i, &adjusted)))
		return rc;
	uint64_t prev_i = e->next_i;
	enum store_status st = store_reset(x->store, e, i, force);
	if (st == STORE_BACKWARDS)
		return api_fail(x, 409, "Reset moves backwards",
				"next value would go from %llu back to %llu, which may already have been handed out; add ?force=true to do it anyway",
				(unsigned long long)entity_value(e, prev_i), (unsigned long long)entity_value(e, i));
	if (st != STORE_OK)
		return api_storage_error(x, st);
	struct jw w;
	api_begin(x, &w);
	api_id_head(&w, x, e->type);
	if (prev_i < seq_count(&e->shape))
		api_number(&w, "previousValue", e->type, entity_value(e, prev_i));
	else
		jw_null(&w, "previousValue");
	api_number(&w, "nextValue", e->type, entity_value(e, i));
	jw_bool(&w, "adjusted", adjusted);
	jw_close(&w);
	return api_hold_until_committed(x, 200, e->hash);
}

int api_delete_entity(struct api_ctx *x)
{
	int rc;
	if ((rc = admit(x, NULL, NULL, NULL)))
		return rc;
	enum store_status st = store_delete(x->store, x->entity, x->entity_len);
	if (st == STORE_NOT_FOUND)
		return api_not_found(x);
	if (st != STORE_OK)
		return api_storage_error(x, st);
	char msg[200];
	fmt_snprintf(msg, sizeof msg, "Entity '%s' deleted successfully", x->entity);
	struct jw w;
	api_begin(x, &w);
	jw_object(&w, NULL);
	jw_cstr(&w, "message", msg);
	jw_str(&w, "entityName", x->entity, x->entity_len);
	jw_u64(&w, "shard", x->cfg->shard_id);
	jw_close(&w);
	return api_hold_until_committed(x, 200, shard_kv_hash(x->entity, x->entity_len));
}
