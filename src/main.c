/* shardid: the process shell. Reads the configuration, opens the state,
 * serves until SIGTERM/SIGINT, and is the only place that exits. */
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "config.h"
#include "consul.h"
#include "fmt.h"
#include "log.h"
#include "metrics.h"
#include "reidentify.h"
#include "reshard.h"
#include "server.h"
#include "shard_kv.h"
#include "store.h"

#define DRAIN_MS 5000
#define CONSUL_SHUTDOWN_MS 2000   /* deregister + release + destroy, in total */

static void on_signal(int sig)
{
	(void)sig;
	server_stop();
}

static void install_signals(void)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* `shardid parse <id> [flags]`: decode a snowflake with the configured layout. */
static int cmd_parse(const struct config *cfg, const char *id)
{
	struct buf b;
	buf_init(&b);
	int rc = api_describe_snowflake(&b, &cfg->layout, id, strlen(id));
	if (rc == 0)
		fmt_dprint(STDOUT_FILENO, "%.*s\n", (int)b.len, b.data);
	else
		fmt_dprint(STDERR_FILENO, "shardid: '%s' is not a snowflake: expected a decimal integer in 0..9223372036854775807\n", id);
	buf_free(&b);
	return rc == 0 ? 0 : 2;
}

struct claim_ctx {
	struct config *cfg;
	struct store *store;
};

/* SHARD_ID=auto: the lock of shard k is ours; become shard k. */
static int claim_shard(void *ud, unsigned shard)
{
	struct claim_ctx *x = ud;
	char desc[1024];
	config_set_shard(x->cfg, shard);
	if (store_assign(x->store, shard, &x->cfg->layout, x->cfg->machine_id) != 0)
		return -1;
	config_describe(x->cfg, desc, sizeof desc);
	log_info("msg=\"serving as the claimed shard once its state is read\" %s", desc);
	return 0;
}

/* SHARD_ID=auto with a DATA_DIR that belongs to a shard: that shard, and
 * no other (its state is there). 0 ok (cfg may now name a shard), else the
 * exit code. */
static int shard_of_data_dir(struct config *cfg)
{
	char identity[SHARD_KV_IDENTITY_MAX], err[512], layout[64];
	unsigned k, total;
	uint64_t machine;
	int rc = store_peek_identity(cfg->data_dir, identity, NULL, err, sizeof err);
	if (rc < 0) {
		log_error("msg=\"cannot open state\" data_dir=%s error=\"%s\"", cfg->data_dir, err);
		return 1;
	}
	if (rc == 0)
		return 0;
	if (shard_kv_identity_parse(identity, &k, &total, layout, &machine) != 0 || k > cfg->total_shards) {
		log_error("msg=\"cannot open state\" data_dir=%s error=\"SHARD_ID=auto: DATA_DIR holds the state of %s, "
			  "which is no shard of a %u-shard cluster\"", cfg->data_dir, identity, cfg->total_shards);
		return 2;
	}
	config_set_shard(cfg, k);
	log_info("msg=\"SHARD_ID=auto: DATA_DIR belongs to shard %u; claiming that one\" data_dir=%s",
		 cfg->shard_id, cfg->data_dir);
	return 0;
}

/* The server: state, API, listener and Consul, until a signal. */
static int serve(struct config *cfg, const char *desc, uint64_t started)
{
	static struct store store;
	static struct claim_ctx claim;
	char err[512];
	log_info("msg=\"starting shardid %s\" %s", SHARDID_VERSION, desc);
	int rc = cfg->shard_auto ? shard_of_data_dir(cfg) : 0;
	if (rc != 0)
		return rc;
	rc = store_open(&store, cfg->data_dir, cfg->shard_id, cfg->total_shards, &cfg->layout,
			    cfg->machine_id, err, sizeof err);
	if (rc != 0) {
		log_error("msg=\"cannot open state\" data_dir=%s error=\"%s\"", cfg->data_dir, err);
		return rc == -2 ? 2 : 1;   /* -2: the state belongs to another shard identity */
	}
	log_info("msg=\"state loaded\" data_dir=%s entities=%llu journal_bytes=%llu",
		 cfg->data_dir, (unsigned long long)store.count,
		 (unsigned long long)store_journal_bytes(&store));
	/* Wake-ups for the next snowflake tick are sub-millisecond: the default
	 * 50 us timer slack would cost a millisecond layout ~2% of its rate. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	metrics.shard_lock_held = 1;
	metrics.shard = cfg->shard_id;
	metrics.total_shards = cfg->total_shards;
	struct api *api = api_create(cfg, &store, started, consul_health);
	struct http_handler handler = api ? api_handler(api) : (struct http_handler){ 0 };
	install_signals();
	struct server *srv = api ? server_create(cfg, &handler, err, sizeof err) : NULL;
	if (!srv) {
		log_error("msg=\"cannot serve\" error=\"%s\"", api ? err : "out of memory");
		store_close(&store);
		return 1;
	}
	/* Shares the server's loop; its answers wake parked requests. */
	if (consul_init(cfg, &store, server_loop(srv), server_wake_parked, srv, err, sizeof err) != 0) {
		log_error("msg=\"cannot use Consul\" error=\"%s\"", err);
		store_close(&store);
		return 2;
	}
	claim = (struct claim_ctx){ cfg, &store };
	consul_on_claim(claim_shard, &claim);
	server_on_tick(srv, consul_tick, NULL);
	log_info("msg=\"serving\" addr=%s:%u startup_ms=%llu", cfg->bind_addr, cfg->port,
		 (unsigned long long)(clock_mono_ms() - started));
	server_run(srv, DRAIN_MS);
	store_stop(&store);          /* nothing is handed out any more */
	consul_shutdown(CONSUL_SHUTDOWN_MS);
	store_close(&store);
	api_free(api);
	log_info("msg=\"stopped\"");
	return 0;
}

/* Takes `--total M` (or --total=M) out of argv: the rest are the usual
 * flags. 0 with *to set, -1 when missing or not a number. */
static int take_total(int *argc, char **argv, unsigned *to)
{
	uint64_t v = 0;
	int found = 0, j = 0;
	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i], *val = NULL;
		if (strcmp(a, "--total") == 0 && i + 1 < *argc)
			val = argv[++i];
		else if (strncmp(a, "--total=", 8) == 0)
			val = a + 8;
		if (!val) {
			argv[j++] = argv[i];
			continue;
		}
		found = parse_u64(val, strlen(val), &v) == 0 && v >= 1 && v <= 1024;
		if (!found)
			return -1;
	}
	*argc = j;
	*to = (unsigned)v;
	return found ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	char err[512];
	uint64_t started = clock_mono_ms();

	/* Subcommands take the same flags and environment as the server:
	 * `shardid parse <id> [flags]`, `shardid check-config [flags]`,
	 * `shardid reidentify [flags]`. */
	int parse = argc > 1 && strcmp(argv[1], "parse") == 0;
	int check = argc > 1 && strcmp(argv[1], "check-config") == 0;
	int reid = argc > 1 && strcmp(argv[1], "reidentify") == 0;
	int resh = argc > 1 && strcmp(argv[1], "reshard") == 0;
	int skip = parse ? 2 : check || reid || resh ? 1 : 0;
	unsigned reshard_to = 0;
	if (resh && take_total(&argc, argv, &reshard_to) != 0) {
		fmt_dprint(STDERR_FILENO, "shardid: usage: shardid reshard --total M [flags] (M: 1..1024, the new shard count)\n");
		return 2;
	}
	if (parse && argc < 3) {
		fmt_dprint(STDERR_FILENO, "shardid: usage: shardid parse <id> [flags]\n");
		return 2;
	}
	/* config_load skips its argv[0]: hand it the word before the flags. */
	switch (config_load(&cfg, argc - skip, argv + skip, err, sizeof err)) {
	case CONFIG_OK:
		break;
	case CONFIG_EXIT_OK:
		return 0;
	case CONFIG_ERROR:
		fmt_dprint(STDERR_FILENO, "shardid: %s\n", err);
		return 2;
	}

	char desc[1024];
	config_describe(&cfg, desc, sizeof desc);
	if (parse)
		return cmd_parse(&cfg, argv[2]);
	if (check) {
		fmt_dprint(STDOUT_FILENO, "configuration ok: %s\n", desc);
		return 0;
	}
	if (resh) {
		if (reshard(&cfg, reshard_to, STDOUT_FILENO, err, sizeof err) == 0)
			return 0;
		fmt_dprint(STDERR_FILENO, "shardid: reshard: %s\n", err);
		return 2;
	}
	if (reid) {
		if (reidentify(&cfg, STDOUT_FILENO, err, sizeof err) == 0)
			return 0;
		fmt_dprint(STDERR_FILENO, "shardid: reidentify: %s\n", err);
		return 2;
	}
	return serve(&cfg, desc, started);
}
