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

static void counter(struct buf *b, const char *name, uint64_t v)
{
	buf_puts(b, name);
	buf_putc(b, ' ');
	buf_u64(b, v);
	buf_putc(b, '\n');
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
	help(b, "shardid_sequence_reservations_total", "counter", "Sequence segments reserved in the journal.");
	counter(b, "shardid_sequence_reservations_total", metrics.seq_reservations);
	help(b, "shardid_journal_fsyncs_total", "counter", "fsync calls on the journal.");
	counter(b, "shardid_journal_fsyncs_total", fsyncs);
	help(b, "shardid_journal_bytes", "gauge", "Current journal size.");
	counter(b, "shardid_journal_bytes", journal_bytes);
	help(b, "shardid_storage_errors_total", "counter", "Journal writes that failed.");
	counter(b, "shardid_storage_errors_total", metrics.storage_errors);
	help(b, "shardid_entities", "gauge", "Entities known to this shard.");
	counter(b, "shardid_entities", entities);
	help(b, "shardid_snowflake_clock_waits_total", "counter", "Snowflake requests that waited for the clock to catch up.");
	counter(b, "shardid_snowflake_clock_waits_total", metrics.clock_waits);
	help(b, "shardid_snowflake_sequence_waits_total", "counter", "Snowflake requests that waited for the next tick.");
	counter(b, "shardid_snowflake_sequence_waits_total", metrics.sequence_waits);
	help(b, "shardid_connections_open", "gauge", "Open client connections.");
	counter(b, "shardid_connections_open", metrics.conns_open);
	help(b, "shardid_connections_accepted_total", "counter", "Accepted client connections.");
	counter(b, "shardid_connections_accepted_total", metrics.conns_accepted);
	help(b, "shardid_connections_refused_total", "counter", "Connections refused at the connection cap.");
	counter(b, "shardid_connections_refused_total", metrics.conns_refused);
	help(b, "shardid_connections_timed_out_total", "counter", "Connections closed by header or idle timeout.");
	counter(b, "shardid_connections_timed_out_total", metrics.conns_timed_out);
	help(b, "shardid_consul_registered", "gauge", "1 when registered in Consul.");
	counter(b, "shardid_consul_registered", (uint64_t)metrics.consul_registered);
	help(b, "shardid_shard_lock_held", "gauge", "1 when this instance may hand out IDs for its shard.");
	counter(b, "shardid_shard_lock_held", (uint64_t)metrics.shard_lock_held);
}
