#include "route.h"

#include <string.h>

#include "api_handlers.h"
#include "http_parse.h"

#define M(m) (1u << HTTP_##m)
#define READ (M(GET) | M(HEAD))
#define R(id, path, segment, methods, handler) { id, path, sizeof path - 1, segment, methods, handler }

/* Indexed by route id; matched in this order. */
static const struct route routes[ROUTE_COUNT] = {
	[ROUTE_HEALTH]     = R(ROUTE_HEALTH, "/health", 0, READ, api_health ),
	[ROUTE_SHARD_INFO] = R(ROUTE_SHARD_INFO, "/shard-info", 0, READ, api_shard_info ),
	[ROUTE_NEXT_ID]    = R(ROUTE_NEXT_ID, "/api/next-id", 1, READ, api_next_id ),
	[ROUTE_NEXT_BATCH] = R(ROUTE_NEXT_BATCH, "/api/next-batch", 1, READ, api_next_batch ),
	[ROUTE_STATUS]     = R(ROUTE_STATUS, "/api/status", 1, READ, api_status ),
	[ROUTE_LIST]       = R(ROUTE_LIST, "/api/list", 0, READ, api_list ),
	[ROUTE_TYPES]      = R(ROUTE_TYPES, "/api/types", 0, READ, api_types ),
	[ROUTE_INIT]       = R(ROUTE_INIT, "/api/init", 1, M(POST), api_init_entity ),
	[ROUTE_RESET]      = R(ROUTE_RESET, "/api/reset", 1, M(PUT), api_reset_entity ),
	[ROUTE_DELETE]     = R(ROUTE_DELETE, "/api/entity", 1, M(DELETE), api_delete_entity ),
	[ROUTE_PARSE]      = R(ROUTE_PARSE, "/api/parse-snowflake", 1, READ, api_parse_snowflake ),
	[ROUTE_METRICS]    = R(ROUTE_METRICS, "/metrics", 0, READ, api_metrics ),
	[ROUTE_COMPOSE]    = R(ROUTE_COMPOSE, "/api/compose-snowflake", 0, READ, api_compose_snowflake ),
	[ROUTE_PARSE_TYPEID] = R(ROUTE_PARSE_TYPEID, "/api/parse-typeid", 1, READ, api_parse_typeid ),
	[ROUTE_UNMATCHED]  = R(ROUTE_UNMATCHED, "unmatched", 0, 0, NULL ),
};

const struct route *route_match(const char *path, size_t len, const char **seg, size_t *seg_len)
{
	for (const struct route *r = routes; r < routes + ROUTE_COUNT; r++) {
		size_t pl = r->path_len;
		if (!r->handler || len < pl || memcmp(path, r->path, pl) != 0)
			continue;
		if (!r->segment) {
			if (len == pl)
				return r;
		} else if (len > pl && path[pl] == '/' && !memchr(path + pl + 1, '/', len - pl - 1)) {
			*seg = path + pl + 1;
			*seg_len = len - pl - 1;
			return r;
		}
	}
	return NULL;
}

const char *route_name(enum route_id id)
{
	return routes[id].path;
}

size_t route_allow(const struct route *r, char *out, size_t n)
{
	static const char *const names[] = {
		[HTTP_GET] = "GET", [HTTP_HEAD] = "HEAD", [HTTP_POST] = "POST",
		[HTTP_PUT] = "PUT", [HTTP_DELETE] = "DELETE",
	};
	size_t len = 0;
	if (n == 0)
		return 0;
	out[0] = '\0';
	for (size_t m = 0; m < sizeof names / sizeof names[0]; m++) {
		if (!(r->methods & (1u << m)) || !names[m])
			continue;
		const char *sep = len ? ", " : "";
		size_t sl = strlen(sep), nl = strlen(names[m]);
		if (len + sl + nl >= n)
			break;
		memcpy(out + len, sep, sl);
		memcpy(out + len + sl, names[m], nl + 1);
		len += sl + nl;
	}
	return len;
}
