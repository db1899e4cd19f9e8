/* Configuration from environment variables and command-line flags (flags win). */
#ifndef CONFIG_H
#define CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include "idtype.h"
#include "snowflake.h"

#include "version.h"

struct config {
	unsigned port;             /* SERVICE_PORT  --port */
	char bind_addr[64];        /* BIND_ADDR     --bind */
	unsigned shard_id;         /* SHARD_ID      --shard (0: auto, not claimed yet) */
	int shard_auto;            /* SHARD_ID=auto: claim a free shard through Consul */
	char shard_host[256];      /* SHARD_ID=ordinal: the host name shard_id came from ("" = a number) */
	unsigned total_shards;     /* TOTAL_SHARDS  --total-shards */
	char data_dir[512];        /* DATA_DIR      --data-dir */
	struct sf_layout layout;   /* SNOWFLAKE_LAYOUT --snowflake-layout */
	uint64_t machine_id;       /* MACHINE_ID    --machine-id */
	int machine_default;       /* MACHINE_ID not set: it follows the shard (config_machine_default) */
	enum id_type default_type; /* DEFAULT_DATA_TYPE --default-data-type */
	unsigned max_batch;        /* MAX_BATCH_SIZE --max-batch-size */
	unsigned max_range;        /* MAX_RANGE_SIZE --max-range-size: range batches */
	char consul_url[256];      /* CONSUL_URL    --consul-url ("" = off) */
	char consul_token[256];    /* CONSUL_HTTP_TOKEN --consul-token */
	char service_name[64];     /* SERVICE_NAME  --service-name */
	char container_ip[64];     /* CONTAINER_IP  --container-ip ("" = detect) */
	char admin_token[256];     /* ADMIN_TOKEN   --admin-token ("" = loopback only) */
	int log_level;             /* LOG_LEVEL     --log-level (LOG_ERROR..LOG_DEBUG) */
	unsigned max_conns;        /* MAX_CONNECTIONS --max-connections */
	int access_log;            /* ACCESS_LOG    --access-log: one log line per request */
	int consul_fail_open;      /* CONSUL_FAIL_OPEN --consul-fail-open: serve from local state while Consul is unreachable (unsafe) */
};

enum config_result { CONFIG_OK, CONFIG_EXIT_OK /* --help/--version printed */, CONFIG_ERROR };

/* Reads env (via getenv) and argv (argv[0] is skipped; `--flag v` and
 * `--flag=v`). On CONFIG_ERROR, err names the variable (or flag), the value
 * and the accepted range, and *c is untouched. --help/--version print to
 * stdout and return CONFIG_EXIT_OK. On CONFIG_OK also sets the global
 * log_level. Never exits; safe to call repeatedly. */
enum config_result config_load(struct config *c, int argc, char **argv,
			       char *err, size_t errlen);
/* One logfmt line "key=value ..." describing the effective configuration,
 * including the layout's IDs/s limit and exhaustion date. Secrets are shown
 * only as admin_token=set|unset, consul_token=set|unset. */
void config_describe(const struct config *c, char *out, size_t outlen);

/* The MACHINE_ID that follows a shard when none is set: the shard for
 * sonyflake (as go-id did), shard - 1 for the others (bucket-next's 10-bit
 * field is 0-based, so shard 1024 still fits). */
uint64_t config_machine_default(const struct sf_layout *l, unsigned shard);
/* SHARD_ID=auto, once a shard is claimed (or found in DATA_DIR): the
 * configuration as if SHARD_ID=shard had been given. */
void config_set_shard(struct config *c, unsigned shard);

/* SHARD_ID=ordinal: the N of a StatefulSet-style host name "NAME-N" in
 * name[0..len) (no terminator needed). NAME is 1 or more of A-Z a-z 0-9
 * . _ -; N is decimal digits without a leading zero (except "0" itself),
 * as a StatefulSet writes it. Returns 0 with *n set, -1 if the name is not of that form,
 * -2 if N does not fit 64 bits (out of range for any cluster). */
int config_host_ordinal(const char *name, size_t len, uint64_t *n);

#endif
