#include "metrics.h"

#include "consul_core.h"
#include "procstat.h"
#include "version.h"

struct metrics metrics;

void metrics_request(enum route_id r, int status)
{
	int slot = http_status_slot(status);
	metrics.requests[r][slot < 0 ? HTTP_STATUS_COUNT : slot]++;
}

/* Upper bounds of the duration buckets, in ns and as rendered. */
static const struct { uint64_t ns; const char *le; } bounds[METRICS_DURATION_BUCKETS] = {
	{ 25000, "0.000025" }, { 50000, "0.00005" }, { 100000, "0.0001" }, { 250000, "0.00025" },
	{ 500000, "0.0005" }, { 1000000, "0.001" }, { 2500000, "0.0025" }, { 5000000, "0.005" },
	{ 10000000, "0.01" }, { 25000000, "0.025" }, { 50000000, "0.05" }, { 100000000, "0.1" },
	{ 250000000, "0.25" }, { 500000000, "0.5" }, { 1000000000, "1" },
};

static int bucket(uint64_t ns)
{
	int i = 0;
	while (i < METRICS_DURATION_BUCKETS && ns > bounds[i].ns)
		i++;
	return i;
}

void metrics_duration_observe(enum route_id r, uint64_t ns)
{
	metrics.duration[r][bucket(ns)]++;
	metrics.duration_sum_ns[r] += ns;
}

void metrics_duration_flush(uint64_t end_ns)
{
	uint64_t ns = end_ns > metrics.duration_pending_ns ? end_ns - metrics.duration_pending_ns : 0;
	int b = bucket(ns);
	for (uint64_t m = metrics.duration_pending_routes; m; m &= m - 1) {
		int r = __builtin_ctzll(m);
		uint32_t n = metrics.duration_pending[r];
		metrics.duration[r][b] += n;
		metrics.duration_sum_ns[r] += ns * n;
		metrics.duration_pending[r] = 0;
	}
	metrics.duration_pending_routes = 0;
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

/* `family{label="value"} v`, one line. */
static void labelled(struct buf *b, const char *family, const char *label, const char *value, uint64_t v)
{
	buf_puts(b, family);
	buf_putc(b, '{');
	buf_puts(b, label);
	buf_puts(b, "=\"");
	buf_puts(b, value);
	buf_puts(b, "\"} ");
	buf_u64(b, v);
	buf_putc(b, '\n');
}

/* v / 10^places in decimal, and the line's end. */
static void decimal(struct buf *b, uint64_t v, int places)
{
	buf_fixed(b, v, places);
	buf_putc(b, '\n');
}

/* A family with one unlabelled sample in seconds, from milliseconds. */
static void sample_seconds(struct buf *b, const char *name, const char *type, const char *text, uint64_t ms)
{
	help(b, name, type, text);
	buf_puts(b, name);
	buf_putc(b, ' ');
	decimal(b, ms, 3);
}

static void route_label(struct buf *b, const char *family, int r)
{
	buf_puts(b, family);
	buf_puts(b, "{route=\"");
	buf_puts(b, route_name((enum route_id)r));
	buf_putc(b, '"');
}

/* One sample per Consul operation that was used, and the lock's history. */
static void consul(struct buf *b, uint64_t mono_ms)
{
	static const char *const fams[2][2] = {
		{ "shardid_consul_requests_total", "Requests answered by (or failed to reach) Consul, by operation." },
		{ "shardid_consul_request_failures_total", "Consul requests that failed: no answer, 5xx, or refused (4xx but 404)." },
	};
	for (int f = 0; f < 2; f++) {
		help(b, fams[f][0], "counter", fams[f][1]);
		for (int op = 1; op < CONSUL_OP_COUNT; op++)
			if (metrics.consul_requests[op])
				labelled(b, fams[f][0], "op", consul_op_name((enum consul_op)op),
					 (f ? metrics.consul_failures : metrics.consul_requests)[op]);
	}
	help(b, "shardid_consul_lock_transitions_total", "counter", "Changes of the shard lock's state, by the state entered.");
	for (int l = 0; l < METRICS_LOCK_STATES; l++)
		labelled(b, "shardid_consul_lock_transitions_total", "to", consul_lock_name((enum consul_lock)l),
			 metrics.lock_transitions[l]);
	if (metrics.lock_confirmed_ms && mono_ms >= metrics.lock_confirmed_ms) {
		sample_seconds(b, "shardid_consul_lock_confirmed_age_seconds", "gauge",
			       "Seconds since Consul last confirmed this instance's lock (acquired or session renewed).",
			       mono_ms - metrics.lock_confirmed_ms);
	}
}

/* Cumulative buckets, _sum and _count for each route that was timed. */
static void durations(struct buf *b)
{
	help(b, "shardid_request_duration_seconds", "histogram",
	     "Time from reading a request to queueing its response, by route.");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		uint64_t n = 0;
		for (int i = 0; i <= METRICS_DURATION_BUCKETS; i++)
			n += metrics.duration[r][i];
		if (!n)
			continue;
		uint64_t below = 0;
		for (int i = 0; i <= METRICS_DURATION_BUCKETS; i++) {
			below += metrics.duration[r][i];
			route_label(b, "shardid_request_duration_seconds_bucket", r);
			buf_puts(b, ",le=\"");
			buf_puts(b, i < METRICS_DURATION_BUCKETS ? bounds[i].le : "+Inf");
			buf_puts(b, "\"} ");
			buf_u64(b, below);
			buf_putc(b, '\n');
		}
		route_label(b, "shardid_request_duration_seconds_sum", r);
		buf_puts(b, "} ");
		decimal(b, metrics.duration_sum_ns[r], 9);
		route_label(b, "shardid_request_duration_seconds_count", r);
		buf_puts(b, "} ");
		buf_u64(b, n);
		buf_putc(b, '\n');
	}
	help(b, "shardid_snowflake_clock_wait_seconds_total", "counter",
	     "Time snowflake requests spent waiting for the clock (behind, or a tick used up).");
	buf_puts(b, "shardid_snowflake_clock_wait_seconds_total ");
	decimal(b, metrics.clock_wait_ns, 9);
}

/* The process_* families client libraries export, each only when it could
 * be read: absent, not zero, without /proc. */
static void process(struct buf *b, const struct procstat *p)
{
	if (p->have & PROC_START)
		sample_seconds(b, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.",
			       p->start_ms);
	if (p->have & PROC_CPU)
		sample_seconds(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.", p->cpu_ms);
	if (p->have & PROC_MEMORY) {
		sample(b, "process_resident_memory_bytes", "gauge", "Resident memory size.", p->rss_bytes);
		sample(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size.", p->vm_bytes);
	}
	if (p->have & PROC_FDS)
		sample(b, "process_open_fds", "gauge", "Open file descriptors.", p->open_fds);
	if ((p->have & PROC_MAX_FDS) && p->max_fds)
		sample(b, "process_max_fds", "gauge", "Limit on open file descriptors.", p->max_fds);
}

void metrics_render(struct buf *b, const struct metrics_extra *e)
{
	uint64_t fsyncs = e->fsyncs, journal_bytes = e->journal_bytes, entities = e->entities;
	help(b, "shardid_build_info", "gauge", "Always 1; the labels name the build.");
	buf_puts(b, "shardid_build_info{version=\"" SHARDID_VERSION "\",commit=\"" SHARDID_COMMIT "\"} 1\n");
	help(b, "shardid_requests_total", "counter", "HTTP requests by route and status.");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (int i = 0; i < METRICS_STATUS_SLOTS; i++) {
			if (!metrics.requests[r][i])
				continue;
			buf_puts(b, "shardid_requests_total{route=\"");
			buf_puts(b, route_name((enum route_id)r));
			buf_puts(b, "\",status=\"");
			if (i < HTTP_STATUS_COUNT)
				buf_u64(b, (uint64_t)http_statuses[i].code);
			else
				buf_puts(b, "other");
			buf_puts(b, "\"} ");
			buf_u64(b, metrics.requests[r][i]);
			buf_putc(b, '\n');
		}
	}
	help(b, "shardid_ids_issued_total", "counter", "IDs handed out by data type.");
	for (int t = 0; t < TYPE_COUNT; t++)
		labelled(b, "shardid_ids_issued_total", "type", id_type_name((enum id_type)t),
			 metrics.ids_issued[t]);
	/* Single-sample families, in the order they are rendered. */
	const struct { const char *name, *type, *help; uint64_t value; } families[] = {
		{ "shardid_sequence_reservations_total", "counter", "Sequence segments reserved in the journal.",
		  metrics.seq_reservations },
		{ "shardid_journal_fsyncs_total", "counter", "fsync calls on the journal.",
		  fsyncs },
		{ "shardid_journal_bytes", "gauge", "Current journal size.",
		  journal_bytes },
		{ "shardid_storage_errors_total", "counter", "Journal writes that failed.",
		  metrics.storage_errors },
		{ "shardid_entities", "gauge", "Entities known to this shard.",
		  entities },
		{ "shardid_snowflake_clock_waits_total", "counter", "Snowflake requests that waited for the clock to catch up.",
		  metrics.clock_waits },
		{ "shardid_snowflake_sequence_waits_total", "counter", "Snowflake requests that waited for the next tick.",
		  metrics.sequence_waits },
		{ "shardid_connections_open", "gauge", "Open client connections.",
		  metrics.conns_open },
		{ "shardid_connections_accepted_total", "counter", "Accepted client connections.",
		  metrics.conns_accepted },
		{ "shardid_connections_refused_total", "counter", "Connections refused at the connection cap.",
		  metrics.conns_refused },
		{ "shardid_connections_timed_out_total", "counter", "Connections closed by header or idle timeout.",
		  metrics.conns_timed_out },
		{ "shardid_consul_state_txns_total", "counter", "Shard state writes (txns) Consul committed.",
		  metrics.kv_txns },
		{ "shardid_consul_state_txn_failures_total", "counter", "Shard state writes (txns) that failed or were refused.",
		  metrics.kv_txn_failures },
		{ "shardid_consul_state_waits_total", "counter", "Requests that waited for Consul to commit a reservation, fence or change.",
		  metrics.kv_waits },
		{ "shardid_consul_registered", "gauge", "1 when registered in Consul.",
		  metrics.consul_registered },
		{ "shardid_shard_lock_held", "gauge", "1 when this instance may hand out IDs for its shard.",
		  metrics.shard_lock_held },
		{ "shardid_shard", "gauge", "The shard this instance is (0: SHARD_ID=auto, none claimed yet).",
		  metrics.shard },
		{ "shardid_total_shards", "gauge", "The shard count this instance belongs to.",
		  metrics.total_shards },
		{ "shardid_cluster_generation", "gauge", "The cluster configuration's generation in Consul (one more per reshard; 0 without Consul).",
		  metrics.generation },
	};
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
		sample(b, families[f].name, families[f].type, families[f].help, families[f].value);
	help(b, "shardid_sequence_max_used_ratio", "gauge",
	     "Fraction of its range the sequence entity closest to running out has handed out.");
	buf_puts(b, "shardid_sequence_max_used_ratio ");
	decimal(b, e->seq_used_max_ppm, 6);
	sample(b, "shardid_snowflake_time_left_seconds", "gauge",
	       "Seconds until the snowflake layout's time field runs out.", e->layout_left_s);
	consul(b, e->mono_ms);
	durations(b);
	process(b, &e->proc);
}
