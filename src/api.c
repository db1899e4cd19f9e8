/* The application behind the server: finds the route, checks the method
 * and the entity segment, runs the handler, and writes the response (and
 * the access log line). Parked requests come back here to be resumed. */
#include "api.h"

#include <stdlib.h>

#include "api_ctx.h"
#include "fmt.h"
#include "http_resp.h"
#include "http_status.h"
#include "log.h"
#include "metrics.h"

struct api *api_create(const struct config *cfg, struct store *store,
		       uint64_t started_mono_ms, api_health_fn health_extra)
{
	struct api *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->store = store;
	a->started_mono_ms = started_mono_ms;
	a->health_extra = health_extra;
	buf_init(&a->body);
	return a;
}

void api_free(struct api *a)
{
	buf_free(&a->body);
	free(a);
}

#define SESSION_KEEP_IDS 1024

static void session_free(void *app, void *session)
{
	struct api_session *s = session;
	(void)app;
	if (!s)
		return;
	free(s->ids);
	buf_free(&s->held_body);
	free(s);
}

/* Ready for the connection's next request; a big snowflake batch's room
 * is given back, so idle connections do not hold it. */
static void session_reset(struct api_session *s)
{
	s->waiting = 0;
	s->counted_clock_wait = 0;
	s->start_ns = 0;
	s->clock_wait_ns = 0;
	s->done = 0;
	s->held = 0;
	if (s->ids_cap > SESSION_KEEP_IDS) {
		free(s->ids);
		s->ids = NULL;
		s->ids_cap = 0;
	}
}

static int dispatch(struct api_ctx *x)
{
	const struct http_request *h = x->r->http;
	const char *path, *seg = NULL;
	size_t path_len, seg_len = 0;
	http_split_target(h->target, h->target_len, &path, &path_len, &x->query, &x->query_len);
	const struct route *rt = route_match(path, path_len, &seg, &seg_len);
	if (!rt)
		return api_fail(x, 404, "Not found", "no route for this path; see GET /api/types and the README");
	x->route = rt->id;
	if (!(rt->methods & (1u << h->method))) {
		char allow[40];
		route_allow(rt, allow, sizeof allow);
		fmt_snprintf(x->headers, sizeof x->headers, "Allow: %s\r\n", allow);
		x->extra_headers = x->headers;
		return api_fail(x, 405, "Method not allowed", "use %s for this path", allow);
	}
	int rc = rt->segment ? api_take_entity(x, seg, seg_len) : 0;
	return rc ? rc : rt->handler(x);
}

static void access_log(const struct http_exchange *r, int status, size_t bytes)
{
	char path[256];
	log_quote(path, sizeof path, r->http->target, r->http->target_len);
	log_info("msg=request method=%.*s target=%s status=%d bytes=%zu client=%s",
		 (int)r->http->method_len, r->http->method_str, path, status, bytes,
		 r->peer_loopback ? "loopback" : "remote");
}

static struct api_session *session_new(void **slot)
{
	struct api_session *s = calloc(1, sizeof *s);
	if (s)
		buf_init(&s->held_body);
	*slot = s;
	return s;
}

static void respond(struct api_ctx *x, int status, struct buf *out)
{
	const struct http_exchange *r = x->r;
	metrics_request(x->route, status);
	if (x->s) {
		metrics_duration(x->route, x->s->start_ns, r->mono_ns);
		if (x->s->clock_wait_ns)
			metrics.clock_wait_ns += r->mono_ns - x->s->clock_wait_ns;
	}
	struct http_resp_opts o = {
		.head_only = r->http->method == HTTP_HEAD,
		.keep_alive = r->keep_alive,
		.http10 = r->http->minor_version == 0,
		.content_type = x->route == ROUTE_METRICS && status == 200 ?
				"text/plain; version=0.0.4; charset=utf-8" : NULL,
		.extra_headers = x->extra_headers,
	};
	size_t before = out->len;
	http_resp_write(out, status, &o, x->body->data, x->body->len);
	if (x->cfg->access_log)
		access_log(r, status, out->len - before);
}

static enum http_handler_result serve(void *app, struct http_exchange *r, struct buf *out,
				      uint64_t *wait_ms)
{
	struct api *a = app;
	struct api_ctx x = {
		.cfg = a->cfg, .store = a->store, .api = a, .r = r, .s = *r->session,
		.body = &a->body, .route = ROUTE_UNMATCHED,
	};
	int status;
	if (!x.s && !session_new(r->session)) {
		status = api_fail(&x, 503, "Service unavailable", "out of memory");
	} else {
		x.s = *r->session;
		if (!x.s->start_ns)   /* the first call for this request (not a resumed one) */
			x.s->start_ns = r->mono_ns;
		status = x.s->held ? api_finish_held(&x) : dispatch(&x);
		if (status < 0) {
			/* Parked: the handler left the wait in the session. */
			*wait_ms = x.s->wait_ms ? x.s->wait_ms : 1;
			return HANDLER_WAIT;
		}
	}
	respond(&x, status, out);
	if (x.s)
		session_reset(x.s);
	return HANDLER_DONE;
}

/* Requests the parser rejected: the status's message from the table. */
static void reject(void *app, struct buf *out, int status)
{
	struct api *a = app;
	struct api_ctx x = { .body = &a->body };
	int slot = http_status_slot(status);
	const char *msg = slot >= 0 && http_statuses[slot].message[0] ?
			  http_statuses[slot].message : "malformed HTTP request";
	api_fail(&x, status, http_reason(status), "%s", msg);
	metrics_request(ROUTE_UNMATCHED, status);
	struct http_resp_opts o = { .keep_alive = 0 };
	http_resp_write(out, status, &o, a->body.data, a->body.len);
}

struct http_handler api_handler(struct api *a)
{
	return (struct http_handler){ .app = a, .serve = serve, .reject = reject,
				      .session_free = session_free };
}
