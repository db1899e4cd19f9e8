/* The HTTP API of SPEC section 4, as the application behind the server:
 * api_handler() gives the server its http_handler. Routes are in route.c,
 * handlers in api_ids.c (IDs), api_admin.c (operators) and api_info.c
 * (status, listings, health, metrics). */
#ifndef API_H
#define API_H
#include <stdint.h>
#include "config.h"
#include "http_handler.h"
#include "json.h"
#include "snowflake.h"
#include "store.h"

/* Appends more members to the /health object (e.g. `,"consul":{...}`). */
typedef void (*api_health_fn)(struct buf *b);

struct api;

/* The API over a configuration and a store (both must outlive it); NULL
 * when out of memory. */
struct api *api_create(const struct config *cfg, struct store *store,
		       uint64_t started_mono_ms, api_health_fn health_extra);
void api_free(struct api *a);
struct http_handler api_handler(struct api *a);
/* The parse-snowflake JSON for a decimal id under a layout (also `shardid
 * parse`). 0 ok, -1 not a valid id. */
int api_describe_snowflake(struct buf *b, const struct sf_layout *l, const char *text, size_t len);

#endif
