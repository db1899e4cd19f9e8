/* Process-wide counters and their Prometheus text rendering. */
#ifndef METRICS_H
#define METRICS_H
#include <stdint.h>
#include "idtype.h"
#include "http_status.h"
#include "json.h"
#include "procstat.h"
#include "route.h"

/* One row per status of http_status.c, and one for any other code. */
#define METRICS_STATUS_SLOTS (HTTP_STATUS_COUNT + 1)
/* Request duration buckets, 25 us to 1 s (metrics.c's table), and +Inf. */
#define METRICS_DURATION_BUCKETS 15
/* Consul operations and lock states (consul_core.h's enums, which assert they fit). */
#define METRICS_CONSUL_OPS 16
#define METRICS_LOCK_STATES 4
_Static_assert(ROUTE_COUNT <= 64, "duration_pending_routes is a 64-bit mask of routes");

struct metrics {
	uint64_t requests[ROUTE_COUNT][METRICS_STATUS_SLOTS];
	uint64_t ids_issued[TYPE_COUNT];
	uint64_t seq_reservations;
	uint64_t clock_waits;          /* requests parked because the clock was behind */
	uint64_t sequence_waits;       /* parked because a tick's sequence space ran out */
	uint64_t conns_open, conns_accepted, conns_refused, conns_timed_out;
	uint64_t storage_errors;
	uint64_t kv_txns, kv_txn_failures;    /* state writes to Consul KV */
	uint64_t kv_waits;             /* requests that waited for a KV commit */
	int consul_registered;         /* 0/1 gauge */
	int shard_lock_held;           /* 0/1 gauge; 1 when Consul is off */
	unsigned shard, total_shards;  /* this instance's (shard 0: SHARD_ID=auto, none claimed yet) */
	uint64_t generation;           /* the cluster configuration's (Consul; 0 without) */
	uint64_t consul_requests[METRICS_CONSUL_OPS], consul_failures[METRICS_CONSUL_OPS];
	uint64_t lock_transitions[METRICS_LOCK_STATES];   /* by the state entered */
	uint64_t lock_confirmed_ms;    /* monotonic: Consul last said the lock is ours (0: never) */
	uint64_t clock_wait_ns;        /* time snowflake requests spent waiting for the clock */
	/* Request durations by route: a fixed histogram (non-cumulative here)
	 * and the sum. Requests read and answered in the same loop iteration
	 * wait in duration_pending until it ends (metrics_duration_flush). */
	uint64_t duration[ROUTE_COUNT][METRICS_DURATION_BUCKETS + 1];
	uint64_t duration_sum_ns[ROUTE_COUNT];
	uint32_t duration_pending[ROUTE_COUNT];
	uint64_t duration_pending_routes;   /* bit r: duration_pending[r] != 0 */
	uint64_t duration_pending_ns;       /* the iteration's clock reading they were read at */
};
extern struct metrics metrics;

void metrics_request(enum route_id r, int status);
void metrics_duration_observe(enum route_id r, uint64_t ns);
/* A request of route r answered in the loop iteration whose clock reading
 * is iter_ns, read at start_ns. Read in this same iteration, it is timed
 * when the iteration ends, together with the others, by one clock read
 * (the server calls metrics_duration_flush): no clock read per request. */
static inline void metrics_duration(enum route_id r, uint64_t start_ns, uint64_t iter_ns)
{
	if (start_ns != iter_ns) {
		metrics_duration_observe(r, iter_ns - start_ns);
		return;
	}
	metrics.duration_pending[r]++;
	metrics.duration_pending_routes |= 1ull << r;
	metrics.duration_pending_ns = iter_ns;
}
void metrics_duration_flush(uint64_t end_ns);
/* What the scrape reads from elsewhere: fsyncs from the journal, which
 * counts them itself, and the process's figures from /proc. */
struct metrics_extra {
	uint64_t fsyncs, journal_bytes, entities;
	uint64_t seq_used_max_ppm;     /* the sequence closest to running out */
	uint64_t layout_left_s;        /* until the snowflake layout's time field runs out */
	uint64_t mono_ms;              /* now, for the lock's age */
	struct procstat proc;
};
void metrics_render(struct buf *out, const struct metrics_extra *e);

#endif
