/* The API's handlers, one per route (route.c's table names them). Each
 * answers with an HTTP status and leaves the body in x->body, or returns
 * -1 to park the request (the wait is in x->session). */
#ifndef API_HANDLERS_H
#define API_HANDLERS_H

struct api_ctx;

/* IDs (api_ids.c) */
int api_next_id(struct api_ctx *x);
int api_next_batch(struct api_ctx *x);
/* Operators (api_admin.c) */
int api_init_entity(struct api_ctx *x);
int api_reset_entity(struct api_ctx *x);
int api_delete_entity(struct api_ctx *x);
/* Information (api_info.c) */
int api_health(struct api_ctx *x);
int api_shard_info(struct api_ctx *x);
int api_status(struct api_ctx *x);
int api_list(struct api_ctx *x);
int api_types(struct api_ctx *x);
int api_parse_snowflake(struct api_ctx *x);
int api_parse_typeid(struct api_ctx *x);
int api_compose_snowflake(struct api_ctx *x);
int api_metrics(struct api_ctx *x);

#endif
