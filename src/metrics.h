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
};
extern struct metrics metrics;

void metrics_request(enum route_id r, int status);
/* What the scrape reads from elsewhere: fsyncs from the journal, which
 * counts them itself, and the process's figures from /proc. */
struct metrics_extra {
	uint64_t fsyncs, journal_bytes, entities;
	struct procstat proc;
};
void metrics_render(struct buf *out, const struct metrics_extra *e);

#endif
