/* What every handler of the API works with: the request context, the
 * per-connection session that carries a parked request, and the pieces
 * handlers share (errors, the entity segment, waits for Consul, the head
 * of an ID answer). Internal to the api*.c files. */
#ifndef API_CTX_H
#define API_CTX_H
#include <stdint.h>
#include "config.h"
#include "http_handler.h"
#include "idtype.h"
#include "json_writer.h"
#include "route.h"
#include "store.h"

/* SPEC: wait up to 5 s for a clock that stepped backwards, then 503. */
#define CLOCK_WAIT_MAX_MS 5000
/* How long a request waits for Consul to commit what it needs (a new
 * segment, a fence, a binding, an admin change); a commit wakes it early. */
#define KV_WAIT_MAX_MS    5000
#define KV_RECHECK_MS     250

/* The application: what the handlers share across requests. */
struct api {
	const struct config *cfg;
	struct store *store;
	uint64_t started_mono_ms;
	struct buf body;              /* response body, reused by every request */
	void (*health_extra)(struct buf *b);   /* api_health_fn; may be NULL */
};

/* A connection's state across the loop turns a parked request waits. */
struct api_session {
	int waiting;               /* 1 while a request of this connection is parked */
	uint64_t wait_started_ms;  /* monotonic, to give up after the wait's bound */
	uint64_t wait_ms;          /* set by a handler that parks */
	int counted_clock_wait;
	uint64_t start_ns;         /* the loop's reading when the request was read; 0: no request yet */
	uint64_t clock_wait_ns;    /* the loop's reading when it first waited for the clock, or 0 */
	uint64_t *ids;             /* snowflake batch: values produced so far */
	uint64_t done, ids_cap;
	/* An admin change waiting for Consul to commit it, with its answer. */
	int held, held_status;
	enum route_id held_route;
	uint32_t held_hash, held_version;
	struct buf held_body;
};

struct api_ctx {
	const struct config *cfg;
	struct store *store;
	struct api *api;
	struct http_exchange *r;
	struct api_session *s;
	struct buf *body;             /* the answer's body; handlers fill it */
	enum route_id route;
	char entity[ENTITY_NAME_MAX + 1];   /* the path's segment, percent-decoded */
	size_t entity_len;
	const char *query;
	size_t query_len;
	const char *extra_headers;    /* e.g. Allow on 405 */
	char headers[64];             /* room for extra_headers built per request */
};

/* Writes {"error":..,"message":..} and returns status. */
int api_fail(struct api_ctx *x, int status, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int api_storage_error(struct api_ctx *x, enum store_status st);
/* 503 while this instance may not hand out IDs (Consul lock, state sync). */
int api_ownership_gate(struct api_ctx *x);
/* Parks the request until Consul commits what it needs (-1), or 503 once
 * that took too long. */
int api_wait_for_kv(struct api_ctx *x, const char *what);
/* An admin change answers only once Consul holds it, so a failover cannot
 * undo what was acknowledged: parks with the answer (-1), or returns status. */
int api_hold_until_committed(struct api_ctx *x, int status, uint32_t hash);
/* The parked admin change's answer once committed, -1 to wait more, or 503. */
int api_finish_held(struct api_ctx *x);
/* Percent-decodes and validates the path segment as an entity name. */
int api_take_entity(struct api_ctx *x, const char *raw, size_t len);
/* 404 for the path's entity. */
int api_not_found(struct api_ctx *x);
/* The entity of the path, or NULL with *rc = 404. */
struct entity *api_find_or_404(struct api_ctx *x, int *rc);
/* Strict decimal query/path value in [min,max]. 0 ok, -1 otherwise. */
int api_parse_uint(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *out);
/* Starts the answer: an empty body and a writer over it. */
static inline void api_begin(struct api_ctx *x, struct jw *w)
{
	x->body->len = 0;
	jw_init(w, x->body);
}
/* Opens the answer object: {"entityName":..,"dataType":..,"shard":.. */
void api_id_head(struct jw *w, const struct api_ctx *x, enum id_type t);
/* An entity's bound style, when not plain: "prefix", "format". */
void api_style(struct jw *w, const struct id_style *s);
/* int travels as a JSON number; long and snowflake as decimal strings. */
void api_number(struct jw *w, const char *key, enum id_type t, uint64_t v);

#endif
