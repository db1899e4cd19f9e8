/* Unit tests for the API as an http_handler, without sockets: requests are
 * parsed from raw HTTP, served through api_handler()'s serve and reject,
 * and the whole response (status line, headers, JSON body) is compared
 * byte for byte, for shard 2 of 3 over a store in a temp directory: IDs,
 * batches, status, list, the admin routes and their gate, the errors that
 * routing produces (404, 405 with Allow, 400), HEAD, /metrics, rejects. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "check.h"
#include "check_tmpdir.h"
#include "config.h"
#include "http_parse.h"
#include "http_resp.h"
#include "http_status.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tsid.h"

/* 2026-01-01T00:00:00Z: the Date header and the snowflakes' time. */
#define WALL_MS 1767225600000ull
#define DATE "Thu, 01 Jan 2026 00:00:00 GMT"
#define MONO_MS 7500ull    /* the API started at mono 0: uptime 7 s */

static char dir[256];
static struct config cfg;
static struct store store;
static struct api *api;
static struct http_handler h;
static void *session;
static struct buf out;
static char request[1024];

/* Serves raw as one request from a client (loopback or not); returns what
 * serve returned, and the response in out. */
static enum http_handler_result serve_as(const struct http_handler *hd, const char *raw,
					 int loopback, int keep_alive)
{
	struct http_request req;
	size_t len = strlen(raw);
	snprintf(request, sizeof request, "%s", raw);
	int head = http_parse_request(raw, len, &req);
	CHECK(head > 0);
	if (head <= 0) {
		fprintf(stderr, "request did not parse (%d): %s\n", head, raw);
		exit(1);
	}
	struct http_exchange x = {
		.http = &req,
		.body = raw + head,
		.body_len = len - (size_t)head,
		.peer_loopback = loopback,
		.keep_alive = keep_alive,
		.now_ms = WALL_MS,
		.mono_ms = MONO_MS,
		.session = &session,
	};
	uint64_t wait_ms = 0;
	out.len = 0;
	enum http_handler_result r = hd->serve(hd->app, &x, &out, &wait_ms);
	CHECK(r == HANDLER_DONE);
	CHECK(!out.failed);
	return r;
}

static void serve(const char *raw)
{
	serve_as(&h, raw, 1, 1);
}

/* "METHOD target" with a Host header and, when body is not NULL, the body. */
static const char *req(const char *method, const char *target, const char *body)
{
	static char raw[1024];
	if (body)
		snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s", method, target, strlen(body), body);
	else
		snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, target);
	return raw;
}

/* The response out must hold, byte for byte. status: "200 OK"; extra:
 * header lines after Content-Length (e.g. "Allow: GET, HEAD\r\n"). */
static void expect(const char *status, const char *ctype, const char *extra, const char *body,
		   int head_only)
{
	static char want[65536];
	snprintf(want, sizeof want,
		 "HTTP/1.1 %s\r\nServer: shardid\r\nDate: " DATE "\r\nContent-Type: %s\r\n"
		 "Content-Length: %zu\r\n%s\r\n%s",
		 status, ctype, strlen(body), extra, head_only ? "" : body);
	int good = out.len == strlen(want) && memcmp(out.data, want, out.len) == 0;
	if (!good)
		fprintf(stderr, "for request:\n%s\ngot:\n%.*s\nexpected:\n%s\n", request,
			(int)out.len, out.data, want);
	CHECK(good);
}

static void expect_json(const char *status, const char *body)
{
	expect(status, "application/json", "", body, 0);
}

/* The body of out (after the blank line), NUL-terminated in a static copy. */
static const char *body_of(void)
{
	static char b[65536];
	const char *p = out.len ? memmem(out.data, out.len, "\r\n\r\n", 4) : NULL;
	size_t n = p ? out.len - (size_t)(p + 4 - out.data) : 0;
	if (n >= sizeof b)
		n = sizeof b - 1;
	memcpy(b, p ? p + 4 : "", n);
	b[n] = '\0';
	return b;
}

static void test_ids(void)
{
	serve(req("GET", "/api/next-id/order?dataType=int", NULL));
	expect_json("200 OK", "{\"entityName\":\"order\",\"dataType\":\"int\",\"shard\":2,\"value\":2}");
	serve(req("GET", "/api/next-id/order?dataType=int", NULL));
	expect_json("200 OK", "{\"entityName\":\"order\",\"dataType\":\"int\",\"shard\":2,\"value\":5}");
	/* Bound to int now: no query needed, another type refused. */
	serve(req("GET", "/api/next-id/order", NULL));
	expect_json("200 OK", "{\"entityName\":\"order\",\"dataType\":\"int\",\"shard\":2,\"value\":8}");
	serve(req("GET", "/api/next-id/order?dataType=long", NULL));
	expect_json("400 Bad Request", "{\"error\":\"Type mismatch\","
		    "\"message\":\"entity 'order' is bound to type int, not long\"}");
	serve(req("GET", "/api/next-id/order?dataType=float", NULL));
	expect_json("400 Bad Request", "{\"error\":\"Invalid data type\",\"message\":"
		    "\"dataType must be one of int, long, snowflake, uuid8, uuid12, uuid16, uuid22, uuid7, ulid\"}");

	serve(req("GET", "/api/next-batch/b?batchSize=3&dataType=long", NULL));
	expect_json("200 OK", "{\"entityName\":\"b\",\"dataType\":\"long\",\"shard\":2,\"batchSize\":3,"
		    "\"value\":\"2\",\"startValue\":\"2\",\"endValue\":\"8\",\"values\":[\"2\",\"5\",\"8\"]}");
	serve(req("GET", "/api/next-batch/b?batchSize=1", NULL));
	expect_json("200 OK", "{\"entityName\":\"b\",\"dataType\":\"long\",\"shard\":2,\"batchSize\":1,"
		    "\"value\":\"11\",\"startValue\":\"11\",\"endValue\":\"11\",\"values\":[\"11\"]}");
	char msg[200];
	snprintf(msg, sizeof msg, "{\"error\":\"Invalid batch size\","
		 "\"message\":\"batchSize must be an integer in 1..%u\"}", cfg.max_batch);
	serve(req("GET", "/api/next-batch/b?batchSize=0", NULL));
	expect_json("400 Bad Request", msg);
	serve(req("GET", "/api/next-batch/b", NULL));
	expect_json("400 Bad Request", msg);

	/* uuid types: the value's length and alphabet. */
	serve(req("GET", "/api/next-id/u?dataType=uuid12", NULL));
	const char *b = body_of();
	const char *head = "{\"entityName\":\"u\",\"dataType\":\"uuid12\",\"shard\":2,\"value\":\"";
	CHECK(strncmp(b, head, strlen(head)) == 0);
	CHECK(strlen(b) == strlen(head) + 12 + 2 && strcmp(b + strlen(head) + 12, "\"}") == 0);
	CHECK(strspn(b + strlen(head), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == 12);
}

static void test_status_and_list(void)
{
	struct entity *e = store_find(&store, "order", 5);
	CHECK(e != NULL);
	if (!e)
		return;
	char want[512];
	snprintf(want, sizeof want, "{\"entityName\":\"order\",\"dataType\":\"int\",\"shard\":2,"
		 "\"currentValue\":8,\"nextValue\":11,\"reservedUpTo\":%llu,"
		 "\"valuesLeft\":%llu,\"rangeLeftPercent\":100.0000}",
		 (unsigned long long)entity_value(e, e->reserved_i - 1),
		 (unsigned long long)(seq_count(&e->shape) - e->next_i));
	CHECK(e->reserved_i > e->next_i);
	serve(req("GET", "/api/status/order", NULL));
	expect_json("200 OK", want);
	serve(req("GET", "/api/status/nothing", NULL));
	expect_json("404 Not Found", "{\"error\":\"Entity not found\","
		    "\"message\":\"entity 'nothing' does not exist on shard 2\"}");

	static const char list[] =
		"{\"entities\":[{\"entityName\":\"b\",\"dataType\":\"long\",\"currentValue\":\"11\"},"
		"{\"entityName\":\"order\",\"dataType\":\"int\",\"currentValue\":8},"
		"{\"entityName\":\"u\",\"dataType\":\"uuid12\",\"currentValue\":null}],"
		"\"shardInfo\":{\"shardId\":2,\"totalShards\":3}}";
	serve(req("GET", "/api/list", NULL));
	expect_json("200 OK", list);
	/* HEAD: the same head, Content-Length of the GET body, no body. */
	serve(req("HEAD", "/api/list", NULL));
	expect("200 OK", "application/json", "", list, 1);
	/* A query on a route without a segment is ignored. */
	serve(req("GET", "/api/list?x=1", NULL));
	expect_json("200 OK", list);

	serve(req("GET", "/shard-info", NULL));
	expect_json("200 OK", "{\"shardId\":2,\"totalShards\":3,\"status\":\"active\"}");
	serve(req("GET", "/health", NULL));
	expect_json("200 OK", "{\"status\":\"healthy\",\"shard\":2,\"totalShards\":3,\"uptime\":7}");

	/* Not kept alive, HTTP/1.0 kept alive: the Connection header says so. */
	serve_as(&h, req("GET", "/shard-info", NULL), 1, 0);
	expect("200 OK", "application/json", "Connection: close\r\n",
	       "{\"shardId\":2,\"totalShards\":3,\"status\":\"active\"}", 0);
	serve_as(&h, "GET /shard-info HTTP/1.0\r\n\r\n", 1, 1);
	expect("200 OK", "application/json", "Connection: keep-alive\r\n",
	       "{\"shardId\":2,\"totalShards\":3,\"status\":\"active\"}", 0);
}

static void test_admin(void)
{
	serve(req("POST", "/api/init/x", "{\"dataType\":\"int\",\"startValue\":10}"));
	expect_json("201 Created", "{\"entityName\":\"x\",\"dataType\":\"int\",\"shard\":2,"
		    "\"startValue\":11,\"adjusted\":true,\"message\":\"Entity 'x' initialized\"}");
	serve(req("POST", "/api/init/x", "{\"dataType\":\"int\"}"));
	expect_json("409 Conflict", "{\"error\":\"Entity exists\","
		    "\"message\":\"entity 'x' already exists on shard 2\"}");
	serve(req("GET", "/api/next-id/x", NULL));
	expect_json("200 OK", "{\"entityName\":\"x\",\"dataType\":\"int\",\"shard\":2,\"value\":11}");

	serve(req("PUT", "/api/reset/x", "{\"value\":20}"));
	expect_json("200 OK", "{\"entityName\":\"x\",\"dataType\":\"int\",\"shard\":2,"
		    "\"previousValue\":14,\"nextValue\":20,\"adjusted\":false}");
	serve(req("PUT", "/api/reset/x", "{\"value\":5}"));
	expect_json("409 Conflict", "{\"error\":\"Reset moves backwards\",\"message\":"
		    "\"next value would go from 20 back to 5, which may already have been handed out; "
		    "add ?force=true to do it anyway\"}");
	serve(req("PUT", "/api/reset/x", "{\"value\":5,\"extra\":1}"));
	expect_json("400 Bad Request", "{\"error\":\"Invalid field\","
		    "\"message\":\"unknown field 'extra' in request body\"}");
	serve(req("PUT", "/api/reset/x", "{\"value\":"));
	CHECK(out.len > 24 && memcmp(out.data, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
	CHECK(strstr(body_of(), "\"error\":\"Invalid JSON\"") != NULL);
	serve(req("GET", "/api/next-id/x", NULL));
	expect_json("200 OK", "{\"entityName\":\"x\",\"dataType\":\"int\",\"shard\":2,\"value\":20}");

	serve(req("DELETE", "/api/entity/x", NULL));
	expect_json("200 OK", "{\"message\":\"Entity 'x' deleted successfully\",\"entityName\":\"x\",\"shard\":2}");
	serve(req("DELETE", "/api/entity/x", NULL));
	expect_json("404 Not Found", "{\"error\":\"Entity not found\","
		    "\"message\":\"entity 'x' does not exist on shard 2\"}");
	serve(req("GET", "/api/status/x", NULL));
	expect_json("404 Not Found", "{\"error\":\"Entity not found\","
		    "\"message\":\"entity 'x' does not exist on shard 2\"}");
}

/* Without ADMIN_TOKEN only loopback may change entities; with it, a
 * remote client needs the token. Reads are open to everyone. */
static void test_admin_gate(void)
{
	static const char forbidden[] = "{\"error\":\"Forbidden\",\"message\":"
		"\"admin routes are accepted only from loopback unless ADMIN_TOKEN is set\"}";
	serve_as(&h, req("POST", "/api/init/r", "{\"dataType\":\"long\"}"), 0, 1);
	expect_json("403 Forbidden", forbidden);
	serve_as(&h, req("PUT", "/api/reset/order", "{\"value\":100}"), 0, 1);
	expect_json("403 Forbidden", forbidden);
	serve_as(&h, req("DELETE", "/api/entity/order", NULL), 0, 1);
	expect_json("403 Forbidden", forbidden);
	CHECK(store_find(&store, "r", 1) == NULL);
	CHECK(store_find(&store, "order", 5) != NULL);
	serve_as(&h, req("GET", "/api/status/b", NULL), 0, 1);
	CHECK(out.len > 15 && memcmp(out.data, "HTTP/1.1 200 OK", 15) == 0);

	/* The same store behind a configuration with a token. */
	static struct config tcfg;
	tcfg = cfg;
	snprintf(tcfg.admin_token, sizeof tcfg.admin_token, "tok-123");
	struct api *tapi = api_create(&tcfg, &store, 0, NULL);
	CHECK(tapi != NULL);
	struct http_handler th = api_handler(tapi);
	static const char unauthorized[] = "{\"error\":\"Unauthorized\","
		"\"message\":\"admin routes need Authorization: Bearer <ADMIN_TOKEN>\"}";
	static const char *const bad_auth[] = {
		"", "Authorization: Bearer tok-12\r\n", "Authorization: Bearer tok-1234\r\n",
		"Authorization: bearer tok-123\r\n", "Authorization: tok-123\r\n",
		"Authorization: Bearer \r\n",
	};
	char raw[512];
	for (size_t i = 0; i < sizeof bad_auth / sizeof bad_auth[0]; i++) {
		for (int loopback = 0; loopback <= 1; loopback++) {
			snprintf(raw, sizeof raw, "DELETE /api/entity/order HTTP/1.1\r\nHost: t\r\n%s\r\n",
				 bad_auth[i]);
			serve_as(&th, raw, loopback, 1);
			expect("401 Unauthorized", "application/json", "WWW-Authenticate: Bearer\r\n",
			       unauthorized, 0);
		}
	}
	CHECK(store_find(&store, "order", 5) != NULL);
	snprintf(raw, sizeof raw, "POST /api/init/r HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer tok-123\r\n"
		 "Content-Length: 19\r\n\r\n{\"dataType\":\"long\"}");
	serve_as(&th, raw, 0, 1);
	expect_json("201 Created", "{\"entityName\":\"r\",\"dataType\":\"long\",\"shard\":2,"
		    "\"startValue\":\"2\",\"adjusted\":false,\"message\":\"Entity 'r' initialized\"}");
	snprintf(raw, sizeof raw, "DELETE /api/entity/r HTTP/1.1\r\nHost: t\r\nauthorization:  Bearer tok-123 \r\n\r\n");
	serve_as(&th, raw, 0, 1);
	expect_json("200 OK", "{\"message\":\"Entity 'r' deleted successfully\",\"entityName\":\"r\",\"shard\":2}");
	api_free(tapi);
}

static void test_routing_errors(void)
{
	static const char not_found[] = "{\"error\":\"Not found\","
		"\"message\":\"no route for this path; see GET /api/types and the README\"}";
	static const char *const unknown[] = {
		"/nope", "/", "/api/next-idx/a", "/api/next-id", "/api/next-id/a/b", "/health/",
		"/api/list/x", "/unmatched",
	};
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		serve(req("GET", unknown[i], NULL));
		expect_json("404 Not Found", not_found);
	}

	serve(req("POST", "/health", NULL));
	expect("405 Method Not Allowed", "application/json", "Allow: GET, HEAD\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use GET, HEAD for this path\"}", 0);
	serve(req("DELETE", "/api/next-id/a", NULL));
	expect("405 Method Not Allowed", "application/json", "Allow: GET, HEAD\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use GET, HEAD for this path\"}", 0);
	serve(req("GET", "/api/init/a", NULL));
	expect("405 Method Not Allowed", "application/json", "Allow: POST\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use POST for this path\"}", 0);
	serve(req("POST", "/api/reset/a", "{}"));
	expect("405 Method Not Allowed", "application/json", "Allow: PUT\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use PUT for this path\"}", 0);
	serve(req("GET", "/api/entity/a", NULL));
	expect("405 Method Not Allowed", "application/json", "Allow: DELETE\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use DELETE for this path\"}", 0);
	serve(req("OPTIONS", "/metrics", NULL));
	expect("405 Method Not Allowed", "application/json", "Allow: GET, HEAD\r\n",
	       "{\"error\":\"Method not allowed\",\"message\":\"use GET, HEAD for this path\"}", 0);

	char invalid[256];
	snprintf(invalid, sizeof invalid, "{\"error\":\"Invalid entity name\",\"message\":"
		 "\"entity name must be 1..%d characters of A-Z a-z 0-9 . _ : - after percent-decoding\"}",
		 ENTITY_NAME_MAX);
	static const char *const bad_names[] = {
		"/api/next-id/", "/api/next-id/a%2Fb", "/api/next-id/a!b", "/api/next-id/%zz",
		"/api/next-id/a%00b", "/api/status/a+b", "/api/next-batch/?batchSize=1",
	};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		serve(req("GET", bad_names[i], NULL));
		expect_json("400 Bad Request", invalid);
	}
	/* ENTITY_NAME_MAX characters fit; one more does not. */
	char target[512];
	int n = snprintf(target, sizeof target, "/api/status/");
	memset(target + n, 'a', ENTITY_NAME_MAX + 1);
	target[n + ENTITY_NAME_MAX + 1] = '\0';
	serve(req("GET", target, NULL));
	expect_json("400 Bad Request", invalid);
	target[n + ENTITY_NAME_MAX] = '\0';
	serve(req("GET", target, NULL));
	CHECK(out.len > 22 && memcmp(out.data, "HTTP/1.1 404 Not Found", 22) == 0);
	/* Percent-decoded names are the same entity. */
	serve(req("GET", "/api/status/%6frder", NULL));
	CHECK(strncmp(body_of(), "{\"entityName\":\"order\",", 22) == 0);
}

/* The value of a next-id answer for entity, of type t: a pointer into
 * body_of() and its length (0 when the head differs). */
static size_t value_of(const char *entity, const char *t, const char **v)
{
	char head[128];
	snprintf(head, sizeof head, "{\"entityName\":\"%s\",\"dataType\":\"%s\",\"shard\":2,\"value\":\"",
		 entity, t);
	const char *b = body_of();
	CHECK(strncmp(b, head, strlen(head)) == 0);
	if (strncmp(b, head, strlen(head)) != 0)
		return 0;
	*v = b + strlen(head);
	const char *end = strchr(*v, '"');
	CHECK(end && strcmp(end, "\"}") == 0);
	return end ? (size_t)(end - *v) : 0;
}

/* prefix and format bound at init: the answers show them, IDs come in that
 * form unless the query names another, misfits are 400 and create nothing;
 * parse-typeid reads the TypeIDs back. */
static void test_styles(void)
{
	const char *v;
	serve(req("POST", "/api/init/user", "{\"dataType\":\"uuid7\",\"prefix\":\"user\"}"));
	expect_json("201 Created", "{\"entityName\":\"user\",\"dataType\":\"uuid7\",\"shard\":2,"
		    "\"startValue\":null,\"adjusted\":false,\"prefix\":\"user\","
		    "\"message\":\"Entity 'user' initialized\"}");
	serve(req("GET", "/api/next-id/user", NULL));
	size_t n = value_of("user", "uuid7", &v);
	CHECK_EQ_U64(n, 31);
	char id[64] = "", target[128], want[256], uuid[37] = "";
	memcpy(id, v, n < 63 ? n : 63);
	uint8_t raw[16];
	size_t pn = 0;
	CHECK(tsid_typeid_parse(id, n, &pn, raw) == 0 && pn == 4 && tsid_is_uuid7(raw));
	tsid_uuid_text(raw, uuid);
	CHECK_EQ_U64(tsid_ms(raw), WALL_MS);
	snprintf(target, sizeof target, "/api/parse-typeid/%s", id);
	serve(req("GET", target, NULL));
	snprintf(want, sizeof want, "{\"id\":\"%s\",\"prefix\":\"user\",\"uuid\":\"%s\","
		 "\"timestamp\":%llu,\"date\":\"2026-01-01T00:00:00.000Z\"}", id, uuid,
		 (unsigned long long)WALL_MS);
	expect_json("200 OK", want);
	serve(req("GET", "/api/parse-typeid/user_01h455vb4pex5vsknk084sn02", NULL));
	expect_json("400 Bad Request", "{\"error\":\"Invalid TypeID\",\"message\":"
		    "\"id must be a TypeID: prefix_ and the 26 lowercase base32 characters of a UUIDv7\"}");
	serve(req("GET", "/api/next-batch/user?batchSize=2", NULL));
	CHECK(strstr(body_of(), "\"values\":[\"user_") != NULL);
	serve(req("GET", "/api/status/user", NULL));
	expect_json("200 OK", "{\"entityName\":\"user\",\"dataType\":\"uuid7\",\"shard\":2,"
		    "\"prefix\":\"user\",\"currentValue\":null,\"nextValue\":null}");
	serve(req("GET", "/api/next-id/user?format=decimal", NULL));
	expect_json("400 Bad Request", "{\"error\":\"Invalid format\","
		    "\"message\":\"format=decimal applies to snowflake, not uuid7\"}");

	serve(req("POST", "/api/init/f62", "{\"dataType\":\"snowflake\",\"format\":\"base62\",\"prefix\":null}"));
	expect_json("201 Created", "{\"entityName\":\"f62\",\"dataType\":\"snowflake\",\"shard\":2,"
		    "\"startValue\":null,\"adjusted\":false,\"format\":\"base62\","
		    "\"message\":\"Entity 'f62' initialized\"}");
	serve(req("GET", "/api/next-id/f62", NULL));
	CHECK_EQ_U64(value_of("f62", "snowflake", &v), 11);
	serve(req("GET", "/api/next-id/f62?format=decimal", NULL));
	n = value_of("f62", "snowflake", &v);
	CHECK(n >= 1 && n <= 19 && strspn(v, "0123456789") == n);
	serve(req("GET", "/api/next-batch/f62?batchSize=2", NULL));
	CHECK(strstr(body_of(), "\"values\":[\"") != NULL && strlen(body_of()) > 0);

	static const char *const misfits[][2] = {
		{ "{\"dataType\":\"int\",\"prefix\":\"user\"}", "prefix applies to uuid7 only" },
		{ "{\"dataType\":\"ulid\",\"prefix\":\"user\"}", "prefix applies to uuid7 only" },
		{ "{\"dataType\":\"uuid7\",\"prefix\":\"User\"}", "prefix must be 1..63 of a-z and _, not starting or ending with _" },
		{ "{\"dataType\":\"uuid7\",\"prefix\":\"\"}", "prefix must be 1..63 of a-z and _, not starting or ending with _" },
		{ "{\"dataType\":\"uuid7\",\"prefix\":7}", "prefix must be 1..63 of a-z and _, not starting or ending with _" },
		{ "{\"dataType\":\"uuid7\",\"format\":\"base62\"}", "format must be base62 (snowflake only)" },
		{ "{\"dataType\":\"snowflake\",\"format\":\"decimal\"}", "format must be base62 (snowflake only)" },
		{ "{\"dataType\":\"long\",\"format\":\"base62\"}", "format must be base62 (snowflake only)" },
	};
	for (size_t i = 0; i < sizeof misfits / sizeof misfits[0]; i++) {
		serve(req("POST", "/api/init/misfit", misfits[i][0]));
		snprintf(want, sizeof want, "{\"error\":\"Invalid field\",\"message\":\"%s\"}", misfits[i][1]);
		expect_json("400 Bad Request", want);
		CHECK(store_find(&store, "misfit", 6) == NULL);
	}
	/* The entity exists: 409, whatever the prefix. */
	serve(req("POST", "/api/init/user", "{\"dataType\":\"uuid7\",\"prefix\":\"account\"}"));
	expect_json("409 Conflict", "{\"error\":\"Entity exists\","
		    "\"message\":\"entity 'user' already exists on shard 2\"}");
}

static void test_snowflake(void)
{
	uint64_t ids[2];
	for (int i = 0; i < 2; i++) {
		serve(req("GET", "/api/next-id/sf", NULL));
		const char *b = body_of();
		const char *head = "{\"entityName\":\"sf\",\"dataType\":\"snowflake\",\"shard\":2,\"value\":\"";
		CHECK(strncmp(b, head, strlen(head)) == 0);
		const char *v = b + strlen(head);
		size_t digits = strspn(v, "0123456789");
		CHECK(digits >= 1 && digits <= 19 && strcmp(v + digits, "\"}") == 0);
		ids[i] = strtoull(v, NULL, 10);
	}
	CHECK(ids[1] > ids[0]);

	/* The ID decodes to this shard's machine and the request's time. */
	char target[64];
	snprintf(target, sizeof target, "/api/parse-snowflake/%llu", (unsigned long long)ids[0]);
	serve(req("GET", target, NULL));
	struct sf_parts p;
	CHECK(sf_decompose(&cfg.layout, ids[0], &p) == 0);
	CHECK_EQ_U64(p.machine, cfg.machine_id);
	CHECK(p.unix_ms <= WALL_MS && WALL_MS - p.unix_ms < cfg.layout.unit_ms);
	char want[256];
	snprintf(want, sizeof want, "{\"id\":\"%llu\",\"timestamp\":%llu,\"date\":\"2026-01-01T00:00:00.000Z\","
		 "\"machineId\":%llu,\"shardId\":2,\"sequence\":%llu}",
		 (unsigned long long)ids[0], (unsigned long long)p.unix_ms,
		 (unsigned long long)cfg.machine_id, (unsigned long long)p.seq);
	expect_json("200 OK", want);
	serve(req("GET", "/api/parse-snowflake/12x", NULL));
	expect_json("400 Bad Request", "{\"error\":\"Invalid snowflake\","
		    "\"message\":\"id must be a decimal integer in 0..9223372036854775807, or its 11-character base62 form\"}");

	serve(req("GET", "/api/next-batch/sf?batchSize=2", NULL));
	CHECK(strncmp(body_of(), "{\"entityName\":\"sf\",\"dataType\":\"snowflake\",\"shard\":2,\"batchSize\":2,"
		      "\"value\":\"", 75) == 0);
}

static void test_metrics_and_reject(void)
{
	serve(req("GET", "/metrics", NULL));
	const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
	char head[256];
	int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nServer: shardid\r\nDate: " DATE
			 "\r\nContent-Type: %s\r\nContent-Length: ", ctype);
	CHECK(out.len > (size_t)n && memcmp(out.data, head, (size_t)n) == 0);
	const char *b = body_of();
	/* /api/next-id answered 200 for order (3), x (2), u (1) and sf (2). */
	CHECK(strstr(b, "shardid_requests_total{route=\"/api/next-id\",status=\"200\"} 8\n") != NULL);
	CHECK(strstr(b, "shardid_requests_total{route=\"unmatched\",status=\"404\"} 8\n") != NULL);
	CHECK(strstr(b, "shardid_requests_total{route=\"/health\",status=\"405\"} 1\n") != NULL);
	/* The metrics request itself is counted once it is answered. */
	CHECK(strstr(b, "route=\"/metrics\",status=\"405\"} 1\n") != NULL);
	CHECK(strstr(b, "route=\"/metrics\",status=\"200\"") == NULL);
	CHECK_EQ_U64(metrics.requests[ROUTE_METRICS][0], 1);
	expect("200 OK", ctype, "", b, 0);
	/* Errors on /metrics are JSON. */
	serve(req("POST", "/metrics", NULL));
	CHECK(strstr(out.data, "Content-Type: application/json\r\n") != NULL);

	/* Requests rejected before routing: the table's message, then close. */
	static const int rejected[] = { 400, 408, 411, 413, 414, 431, 505 };
	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
		int slot = http_status_slot(rejected[i]);
		CHECK(slot >= 0);
		if (slot < 0)
			continue;
		char status[80], body[400];
		snprintf(status, sizeof status, "%d %s", rejected[i], http_statuses[slot].reason);
		snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}",
			 http_statuses[slot].reason, http_statuses[slot].message);
		uint64_t before = metrics.requests[ROUTE_UNMATCHED][slot];
		out.len = 0;
		snprintf(request, sizeof request, "(reject %d)", rejected[i]);
		h.reject(h.app, &out, rejected[i]);
		expect(status, "application/json", "Connection: close\r\n", body, 0);
		CHECK_EQ_U64(metrics.requests[ROUTE_UNMATCHED][slot], before + 1);
	}
	out.len = 0;
	h.reject(h.app, &out, 413);
	char want[128];
	snprintf(want, sizeof want, "\"message\":\"request body larger than %d KiB\"}", HTTP_MAX_BODY / 1024);
	CHECK(strstr(body_of(), "{\"error\":\"Content Too Large\",") == body_of());
	CHECK(strstr(body_of(), want) != NULL);
	/* A status outside the table still gets an answer. */
	out.len = 0;
	snprintf(request, sizeof request, "(reject 499)");
	h.reject(h.app, &out, 499);
	expect("499 Unknown", "application/json", "Connection: close\r\n",
	       "{\"error\":\"Unknown\",\"message\":\"malformed HTTP request\"}", 0);
}

int main(void)
{
	static const char *const env[] = {
		"SERVICE_PORT", "BIND_ADDR", "SHARD_ID", "TOTAL_SHARDS", "DATA_DIR",
		"SNOWFLAKE_LAYOUT", "MACHINE_ID", "DEFAULT_DATA_TYPE", "MAX_BATCH_SIZE",
		"CONSUL_URL", "CONSUL_HTTP_TOKEN", "SERVICE_NAME", "CONTAINER_IP",
		"ADMIN_TOKEN", "LOG_LEVEL", "MAX_CONNECTIONS", "CONSUL_FAIL_OPEN", "ACCESS_LOG",
	};
	for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
		unsetenv(env[i]);
	check_mkdtemp(dir, sizeof dir, "test_api");
	char *argv[] = { "shardid", "--shard", "2", "--total-shards", "3", "--data-dir", dir,
			 "--log-level", "warn", NULL };
	char err[512];
	if (config_load(&cfg, 9, argv, err, sizeof err) != CONFIG_OK) {
		fprintf(stderr, "config_load: %s\n", err);
		return 1;
	}
	CHECK(cfg.shard_id == 2 && cfg.total_shards == 3 && cfg.default_type == TYPE_SNOWFLAKE);
	if (store_open(&store, cfg.data_dir, cfg.shard_id, cfg.total_shards, &cfg.layout,
		       cfg.machine_id, err, sizeof err) != 0) {
		fprintf(stderr, "store_open(%s): %s\n", cfg.data_dir, err);
		return 1;
	}
	memset(&metrics, 0, sizeof metrics);
	http_resp_set_time(WALL_MS);
	api = api_create(&cfg, &store, 0, NULL);
	if (!api)
		return 1;
	h = api_handler(api);
	buf_init(&out);

	test_ids();
	test_status_and_list();
	test_admin();
	test_admin_gate();
	test_routing_errors();
	test_snowflake();
	test_metrics_and_reject();
	test_styles();        /* after the metrics test, which counts requests */

	/* The first request made the session; the handler frees it. */
	CHECK(session != NULL);
	h.session_free(h.app, session);
	h.session_free(h.app, NULL);
	buf_free(&out);
	api_free(api);
	store_close(&store);
	check_rmtree(dir);
	return check_summary("api");
}
