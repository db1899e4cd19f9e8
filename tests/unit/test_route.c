/* Unit tests for route.c: route_match on every route (exact paths, the
 * trailing segment, near misses), the table itself (ids equal their index,
 * every route but "unmatched" has a handler, route_name is the path), and
 * route_allow's Allow values and truncation against a guard page. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http_parse.h"
#include "route.h"

#define M(m) (1u << HTTP_##m)

/* What the table should hold, written out independently of route.c. */
static const struct {
	enum route_id id;
	const char *path;
	int segment;
	const char *allow;
} want[] = {
	{ ROUTE_HEALTH, "/health", 0, "GET, HEAD" },
	{ ROUTE_SHARD_INFO, "/shard-info", 0, "GET, HEAD" },
	{ ROUTE_NEXT_ID, "/api/next-id", 1, "GET, HEAD" },
	{ ROUTE_NEXT_BATCH, "/api/next-batch", 1, "GET, HEAD" },
	{ ROUTE_STATUS, "/api/status", 1, "GET, HEAD" },
	{ ROUTE_LIST, "/api/list", 0, "GET, HEAD" },
	{ ROUTE_TYPES, "/api/types", 0, "GET, HEAD" },
	{ ROUTE_INIT, "/api/init", 1, "POST" },
	{ ROUTE_RESET, "/api/reset", 1, "PUT" },
	{ ROUTE_DELETE, "/api/entity", 1, "DELETE" },
	{ ROUTE_PARSE, "/api/parse-snowflake", 1, "GET, HEAD" },
	{ ROUTE_METRICS, "/metrics", 0, "GET, HEAD" },
	{ ROUTE_COMPOSE, "/api/compose-snowflake", 0, "GET, HEAD" },
	{ ROUTE_PARSE_TYPEID, "/api/parse-typeid", 1, "GET, HEAD" },
};
#define NWANT (sizeof want / sizeof want[0])

/* route_match on a NUL-terminated path; the segment outputs are reset first so a
 * stale value cannot pass for a match's segment. */
static const struct route *match(const char *path, const char **seg, size_t *seg_len)
{
	*seg = NULL;
	*seg_len = 12345;
	return route_match(path, strlen(path), seg, seg_len);
}

static void expect_miss(const char *path)
{
	const char *seg;
	size_t sl;
	const struct route *r = match(path, &seg, &sl);
	if (r)
		fprintf(stderr, "route_match(\"%s\") matched %s\n", path, r->path);
	CHECK(r == NULL);
}

static void expect_hit(const char *path, enum route_id id, const char *segment)
{
	const char *seg;
	size_t sl;
	const struct route *r = match(path, &seg, &sl);
	int ok = r && r->id == id;
	if (!ok)
		fprintf(stderr, "route_match(\"%s\") = %s, expected %s\n", path,
			r ? r->path : "NULL", route_name(id));
	CHECK(ok);
	if (!ok)
		return;
	if (segment) {
		/* The segment points into the caller's path, right after the '/'. */
		CHECK(seg == path + strlen(path) - strlen(segment));
		CHECK_STR(seg, sl, segment);
	} else {
		CHECK(seg == NULL);
		CHECK(sl == 12345);
	}
}

static void test_match(void)
{
	for (size_t i = 0; i < NWANT; i++) {
		char p[128];
		if (want[i].segment) {
			snprintf(p, sizeof p, "%s/x", want[i].path);
			expect_hit(p, want[i].id, "x");
			snprintf(p, sizeof p, "%s/order.v2:a-b_c", want[i].path);
			expect_hit(p, want[i].id, "order.v2:a-b_c");
			/* An empty segment still takes the route; the API rejects the name. */
			snprintf(p, sizeof p, "%s/", want[i].path);
			expect_hit(p, want[i].id, "");
			/* The bare path, a second segment, or more after the segment: no route. */
			expect_miss(want[i].path);
			snprintf(p, sizeof p, "%s/a/b", want[i].path);
			expect_miss(p);
			snprintf(p, sizeof p, "%s/a/", want[i].path);
			expect_miss(p);
			snprintf(p, sizeof p, "%s//", want[i].path);
			expect_miss(p);
		} else {
			expect_hit(want[i].path, want[i].id, NULL);
			snprintf(p, sizeof p, "%s/", want[i].path);
			expect_miss(p);
			snprintf(p, sizeof p, "%s/x", want[i].path);
			expect_miss(p);
		}
		/* A longer name that starts with the path is another path. */
		snprintf(p, sizeof p, "%sx", want[i].path);
		expect_miss(p);
		snprintf(p, sizeof p, "%sx/y", want[i].path);
		expect_miss(p);
		/* Every proper prefix misses (no route is a prefix of another's name). */
		for (size_t k = 0; k < strlen(want[i].path); k++) {
			const char *seg;
			size_t sl;
			const struct route *r = route_match(want[i].path, k, &seg, &sl);
			if (r)
				fprintf(stderr, "prefix %zu of %s matched %s\n", k, want[i].path, r->path);
			CHECK(r == NULL);
		}
	}
	expect_miss("/api/next-idx");
	expect_miss("/api/next-idx/a");
	expect_miss("/api/next-id/a/b");
	expect_miss("/health/");
	expect_miss("/HEALTH");
	expect_miss("/Health");
	expect_miss("health");
	expect_miss("");
	expect_miss("/");
	expect_miss("/api");
	expect_miss("/api/");
	expect_miss("//health");
	expect_miss("/api/entities");
	/* The metrics label of unmatched requests is no path. */
	expect_miss("unmatched");
	expect_miss("/unmatched");
	/* The caller strips the query: with it, the path does not match. */
	expect_miss("/health?x=1");
	expect_miss("/api/list?");
	expect_hit("/api/next-id/a?b", ROUTE_NEXT_ID, "a?b");
	const char *path, *query, *seg;
	size_t path_len, query_len, sl;
	const char *t = "/api/next-id/order?dataType=int";
	http_split_target(t, strlen(t), &path, &path_len, &query, &query_len);
	const struct route *r = route_match(path, path_len, &seg, &sl);
	CHECK(r && r->id == ROUTE_NEXT_ID);
	CHECK_STR(seg, sl, "order");
	t = "/health?verbose=1";
	http_split_target(t, strlen(t), &path, &path_len, &query, &query_len);
	r = route_match(path, path_len, &seg, &sl);
	CHECK(r && r->id == ROUTE_HEALTH);
	/* Matching reads only len bytes: the path placed flush against a guard
	 * page, with no NUL after it. */
	for (size_t i = 0; i < NWANT; i++) {
		const char *p = check_at_edge(want[i].path, strlen(want[i].path));
		r = route_match(p, strlen(want[i].path), &seg, &sl);
		CHECK(want[i].segment ? r == NULL : r && r->id == want[i].id);
		char s[128];
		int n = snprintf(s, sizeof s, "%s/seg", want[i].path);
		p = check_at_edge(s, (size_t)n);
		r = route_match(p, (size_t)n, &seg, &sl);
		CHECK(want[i].segment ? r && r->id == want[i].id : r == NULL);
	}
}

static void test_table(void)
{
	CHECK(NWANT == ROUTE_UNMATCHED);   /* every route is listed above */
	const char *seg;
	size_t sl;
	const struct route *first = match("/health", &seg, &sl);
	CHECK(first != NULL);
	if (!first)
		return;
	/* route_match hands out pointers into the one table, indexed by id. */
	const struct route *table = first - first->id;
	for (int id = 0; id < ROUTE_COUNT; id++) {
		const struct route *r = &table[id];
		if ((int)r->id != id)
			fprintf(stderr, "table[%d].id = %d\n", id, (int)r->id);
		CHECK((int)r->id == id);
		CHECK(route_name((enum route_id)id) == r->path);
		if (id == ROUTE_UNMATCHED) {
			CHECK(r->handler == NULL);
			CHECK(r->methods == 0);
			continue;
		}
		CHECK(r->handler != NULL);
		CHECK(r->methods != 0);
		/* Each route is found by its own path (plus a segment when it takes one). */
		char p[128];
		snprintf(p, sizeof p, "%s%s", r->path, r->segment ? "/e" : "");
		CHECK(match(p, &seg, &sl) == r);
	}
	for (size_t i = 0; i < NWANT; i++) {
		const struct route *r = &table[want[i].id];
		CHECK(strcmp(route_name(want[i].id), want[i].path) == 0);
		CHECK(r->segment == want[i].segment);
	}
	CHECK(strcmp(route_name(ROUTE_UNMATCHED), "unmatched") == 0);
	/* Handlers are distinct: no route answers with another's handler. */
	for (int a = 0; a < ROUTE_UNMATCHED; a++)
		for (int b = a + 1; b < ROUTE_UNMATCHED; b++)
			CHECK(table[a].handler != table[b].handler);
}

/* route_allow into a buffer that ends at the guard page: a byte written
 * past n crashes. Returns the length; *out gets the text. */
static size_t allow_at_edge(const struct route *r, size_t n, const char **out)
{
	char *p = check_edge - n;
	memset(p, 'X', n);
	size_t len = route_allow(r, p, n);
	*out = p;
	return len;
}

static void test_allow(void)
{
	char out[64];
	const char *seg, *p;
	size_t sl;
	for (size_t i = 0; i < NWANT; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s%s", want[i].path, want[i].segment ? "/e" : "");
		const struct route *r = match(path, &seg, &sl);
		CHECK(r != NULL);
		if (!r)
			continue;
		size_t len = route_allow(r, out, sizeof out);
		CHECK_STR(out, len, want[i].allow);
		CHECK(out[len] == '\0');
		/* Exactly enough room (text + NUL) still fits. */
		size_t need = strlen(want[i].allow) + 1;
		len = allow_at_edge(r, need, &p);
		CHECK_STR(p, len, want[i].allow);
		CHECK(p[len] == '\0');
	}

	/* Short buffers keep whole method names only, and always end in a NUL. */
	const struct route *h = match("/health", &seg, &sl);
	static const struct { size_t n; const char *text; } cut[] = {
		{ 1, "" }, { 2, "" }, { 3, "" }, { 4, "GET" }, { 5, "GET" },
		{ 9, "GET" }, { 10, "GET, HEAD" }, { 11, "GET, HEAD" },
	};
	for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
		size_t len = allow_at_edge(h, cut[i].n, &p);
		CHECK_STR(p, len, cut[i].text);
		CHECK(len < cut[i].n && p[len] == '\0');
	}
	/* n = 0 writes nothing at all. */
	char *edge = check_edge - 1;
	*edge = 'X';
	CHECK(route_allow(h, check_edge, 0) == 0);
	CHECK(*edge == 'X');
	memset(out, 'X', sizeof out);
	CHECK(route_allow(h, out, 0) == 0);
	CHECK(out[0] == 'X');

	/* Every method the writer knows, in enum order; others are not listed. */
	struct route all = { .id = ROUTE_UNMATCHED, .path = "x", .path_len = 1, .methods = ~0u };
	size_t len = route_allow(&all, out, sizeof out);
	CHECK_STR(out, len, "GET, HEAD, POST, PUT, DELETE");
	for (size_t n = 0; n <= len + 1; n++) {
		size_t got = allow_at_edge(&all, n, &p);
		CHECK(n == 0 ? got == 0 : got < n && p[got] == '\0');
		CHECK(got <= len && memcmp(p, out, got) == 0);   /* a prefix of the whole */
		CHECK(got == 0 || p[got - 1] != ' ');             /* cut at a name, not in one */
	}
	struct route odd = { .id = ROUTE_UNMATCHED, .path = "x", .path_len = 1, .methods = M(OPTIONS) | M(PATCH) | M(OTHER) };
	CHECK(route_allow(&odd, out, sizeof out) == 0);
	CHECK(out[0] == '\0');
	struct route two = { .id = ROUTE_UNMATCHED, .path = "x", .path_len = 1, .methods = M(DELETE) | M(GET) };
	len = route_allow(&two, out, sizeof out);
	CHECK_STR(out, len, "GET, DELETE");
}

int main(void)
{
	check_edge_init(4096);
	test_match();
	test_table();
	test_allow();
	return check_summary("route");
}
