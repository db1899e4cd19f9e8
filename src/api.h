/* The HTTP API of SPEC section 4: routing and handlers. Each call answers one
 * parsed request by appending a complete response to `out`. */
#ifndef API_H
#define API_H
#include <stdint.h>
#include "config.h"
#include "http_parse.h"
#include "json.h"
#include "store.h"

/* Per-connection state for a request that has to wait for the clock (a
 * snowflake request parks, the loop serves others, then calls again). */
struct api_resume {
	int waiting;               /* 1 while a request of this connection is parked */
	uint64_t wait_started_ms;  /* monotonic, to give up after the clock-step bound */
	int counted_clock_wait;
	struct buf partial;        /* snowflake batch: values produced so far */
	uint64_t done;             /* how many of them */
	uint64_t first, last;
	uint64_t wait_ms;          /* set by a handler that parks */
	/* An admin change waiting for Consul to commit it; its answer is in
	 * `partial` until then. */
	int held, held_status, held_route;
	uint32_t held_hash, held_version;
};

struct api_request {
	const struct http_request *http;
	const char *body;
	size_t body_len;
	int peer_loopback;
	int keep_alive;            /* what the response's Connection header says */
	uint64_t now_ms, mono_ms;  /* read once per loop iteration */
	struct api_resume *resume;
};

enum api_result { API_DONE, API_WAIT };

void api_init(const struct config *cfg, struct store *store, uint64_t started_mono_ms);
/* Answers the request; API_WAIT means "call again in *wait_ms with the same
 * request and resume state", nothing has been written. */
enum api_result api_handle(struct api_request *r, struct buf *out, uint64_t *wait_ms);
/* Error response for a request the parser rejected (status 400..505). */
void api_protocol_error(struct buf *out, int status);
void api_resume_reset(struct api_resume *rs);
/* The parse-snowflake JSON for a decimal id under the configured layout
 * (also `shardid parse`). 0 ok, -1 not a valid id. */
int api_describe_snowflake(struct buf *b, const char *text, size_t len);

#endif
