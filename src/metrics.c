#include "metrics.h"

struct metrics metrics;

static const char *const route_names[ROUTE_COUNT] = {
	"/health", "/shard-info", "/api/next-id", "/api/next-batch", "/api/status",
	"/api/list", "/api/types", "/api/init", "/api/reset", "/api/entity",
	"/api/parse-snowflake", "/metrics", "unmatched",
};

/* Every status the server can answer has a slot. */
static const int status_codes[METRICS_STATUS_SLOTS] = {
	200, 201, 400, 401, 403, 404, 405, 408, 409, 411, 413, 414, 417, 431,
	500, 501, 503, 505,
};

const char *route_name(enum route_id r)
{
	return route_names[r];
}

void metrics_request(enum route_id r, int status)
{
	for (int i = 0; i < METRICS_STATUS_SLOTS && status_codes[i]; i++) {
		if (status_codes[i] == status) {
			metrics.requests[r][i]++;
			return;
		}
	}
}


static void help(struct buf *b, const char *name, const char *type, const char *text)
{
	buf_puts(b, "# HELP ");
	buf_puts(b, name);
	buf_putc(b, ' ');
	buf_puts(b, text);
	buf_puts(b, "\n# TYPE ");
	buf_puts(b, name);
	buf_putc(b, ' ');
	buf_puts(b, type);
	buf_putc(b, '\n');
}

/* A family with a single unlabelled sample. */
static void sample(struct buf *b, const char *name, const char *type, const char *text, uint64_t v)
{
	help(b, name, type, text);
	buf_puts(b, name);
	buf_putc(b, ' ');
	buf_u64(b, v);
	buf_putc(b, '\n');
}

void metrics_render(struct buf *b, uint64_t fsyncs, uint64_t journal_bytes, uint64_t entities)
{
	help(b, "shardid_requests_total", "counter", "HTTP requests by route and status.");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (int i = 0; i < METRICS_STATUS_SLOTS && status_codes[i]; i++) {
			if (!metrics.requests[r][i])
				continue;
			buf_puts(b, "shardid_requests_total{route=\"");
			buf_puts(b, route_names[r]);
			buf_puts(b, "\",status=\"");
			buf_u64(b, (uint64_t)status_codes[i]);
			buf_puts(b, "\"} ");
			buf_u64(b, metrics.requests[r][i]);
			buf_putc(b, '\n');
		}
	}
	help(b, "shardid_ids_issued_total", "counter", "IDs handed out by data type.");
	for (int t = 0; t < TYPE_COUNT; t++) {
		buf_puts(b, "shardid_ids_issued_total{type=\"");
		buf_puts(b, id_type_name((enum id_type)t));
		buf_puts(b, "\"} ");
		buf_u64(b, metrics.ids_issued[t]);
		buf_putc(b, '\n');
	}
	sample(b, "shardid_sequence_reservations_total", "counter", "Sequence segments reserved in the journal.",
	       metrics.seq_reservations);
	sample(b, "shardid_journal_fsyncs_total", "counter", "fsync calls on the journal.",
	       fsyncs);
	sample(b, "shardid_journal_bytes", "gauge", "Current journal size.",
	       journal_bytes);
	sample(b, "shardid_storage_errors_total", "counter", "Journal writes that failed.",
	       metrics.storage_errors);
	sample(b, "shardid_entities", "gauge", "Entities known to this shard.",
	       entities);
	sample(b, "shardid_snowflake_clock_waits_total", "counter", "Snowflake requests that waited for the clock to catch up.",
	       metrics.clock_waits);
	sample(b, "shardid_snowflake_sequence_waits_total", "counter", "Snowflake requests that waited for the next tick.",
	       metrics.sequence_waits);
	sample(b, "shardid_connections_open", "gauge", "Open client connections.",
	       metrics.conns_open);
	sample(b, "shardid_connections_accepted_total", "counter", "Accepted client connections.",
	       metrics.conns_accepted);
	sample(b, "shardid_connections_refused_total", "counter", "Connections refused at the connection cap.",
	       metrics.conns_refused);
	sample(b, "shardid_connections_timed_out_total", "counter", "Connections closed by header or idle timeout.",
	       metrics.conns_timed_out);
	sample(b, "shardid_consul_state_txns_total", "counter", "Shard state writes (txns) Consul committed.",
	       metrics.kv_txns);
	sample(b, "shardid_consul_state_txn_failures_total", "counter", "Shard state writes (txns) that failed or were refused.",
	       metrics.kv_txn_failures);
	sample(b, "shardid_consul_state_waits_total", "counter", "Requests that waited for Consul to commit a reservation, fence or change.",
	       metrics.kv_waits);
	sample(b, "shardid_consul_registered", "gauge", "1 when registered in Consul.",
	       (uint64_t)metrics.consul_registered);
	sample(b, "shardid_shard_lock_held", "gauge", "1 when this instance may hand out IDs for its shard.",
	       (uint64_t)metrics.shard_lock_held);
}
