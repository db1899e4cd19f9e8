/* The API's routes as data: one table of {path, methods, handler, metrics
 * name}. Matching, the Allow header of a 405 and the metrics labels all
 * come from it, so a route is added in one line. */
#ifndef ROUTE_H
#define ROUTE_H
#include <stddef.h>

enum route_id {
	ROUTE_HEALTH, ROUTE_SHARD_INFO, ROUTE_NEXT_ID, ROUTE_NEXT_BATCH, ROUTE_STATUS,
	ROUTE_LIST, ROUTE_TYPES, ROUTE_INIT, ROUTE_RESET, ROUTE_DELETE, ROUTE_PARSE,
	ROUTE_METRICS, ROUTE_COMPOSE, ROUTE_PARSE_TYPEID, ROUTE_UNMATCHED, ROUTE_COUNT
};

struct api_ctx;
typedef int (*route_handler)(struct api_ctx *x);

struct route {
	enum route_id id;
	const char *path;         /* exact path; with `segment`, the part before "/{segment}" */
	unsigned char path_len;
	unsigned char segment;              /* one more path segment follows (an entity name or an id) */
	unsigned methods;         /* bit (1 << enum http_method) per accepted method */
	route_handler handler;
};

/* The route for a path (without query), and its trailing segment; NULL when
 * no route has this path. */
const struct route *route_match(const char *path, size_t len, const char **seg, size_t *seg_len);
/* The route's path, which is also its metrics label ("unmatched" for
 * requests no route took). */
const char *route_name(enum route_id id);
/* Writes the accepted methods as an Allow value ("GET, HEAD") into out
 * (NUL-terminated, cut to n); returns the length. */
size_t route_allow(const struct route *r, char *out, size_t n);

#endif
