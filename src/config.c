/* Configuration from environment variables and --flags (flags win).
 * Everything is validated up front: a bad value is an error that names the
 * variable, the value and the accepted range, never a silent default. */
#include "config.h"
#include "clock.h"
#include "fmt.h"
#include "http_lex.h"
#include "log.h"
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "version.h"

enum config_opt {
	OPT_PORT, OPT_BIND, OPT_SHARD, OPT_TOTAL, OPT_DATA_DIR, OPT_LAYOUT,
	OPT_MACHINE, OPT_TYPE, OPT_BATCH, OPT_RANGE, OPT_CONSUL_URL, OPT_CONSUL_TOKEN,
	OPT_SERVICE, OPT_CONTAINER_IP, OPT_ADMIN_TOKEN, OPT_LOG_LEVEL, OPT_MAX_CONNS,
	OPT_CONSUL_FAIL_OPEN, OPT_ACCESS_LOG, OPT_COUNT
};

static const struct config_optdef {
	const char *flag;   /* without the leading "--" */
	const char *metavar;
	const char *env;
	const char *def;    /* the default, read as if given; NULL: none (see help) */
	const char *shown;  /* --help's words for the default when not def itself */
	const char *help;
} config_opts[OPT_COUNT] = {
	[OPT_PORT]         = { "port", "N", "SERVICE_PORT", "7001", NULL, "TCP port to listen on (1..65535)" },
	[OPT_BIND]         = { "bind", "IPV4", "BIND_ADDR", "0.0.0.0", NULL, "IPv4 address to listen on" },
	[OPT_SHARD]        = { "shard", "K", "SHARD_ID", "1", NULL,
			       "this instance's shard, 1..TOTAL_SHARDS; ordinal (host name NAME-N: shard N+1); or auto (a free shard, through Consul)" },
	[OPT_TOTAL]        = { "total-shards", "N", "TOTAL_SHARDS", "1", NULL, "shards in the cluster (1..1024)" },
	[OPT_DATA_DIR]     = { "data-dir", "DIR", "DATA_DIR", "./data", NULL, "directory for durable state" },
	[OPT_LAYOUT]       = { "snowflake-layout", "L", "SNOWFLAKE_LAYOUT", "sonyflake", NULL,
			       "sonyflake, twitter or custom:UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS" },
	[OPT_MACHINE]      = { "machine-id", "N", "MACHINE_ID", NULL, "see text",
			       "snowflake machine field; must fit the layout" },
	[OPT_TYPE]         = { "default-data-type", "T", "DEFAULT_DATA_TYPE", "snowflake", NULL,
			       "int long snowflake uuid8 uuid12 uuid16 uuid22 uuid7 ulid" },
	[OPT_BATCH]        = { "max-batch-size", "N", "MAX_BATCH_SIZE", "10000", NULL, "upper bound of batchSize (1..1000000)" },
	[OPT_RANGE]        = { "max-range-size", "N", "MAX_RANGE_SIZE", "1000000", NULL,
			       "upper bound of batchSize for range batches, format=range (1..1000000000)" },
	[OPT_CONSUL_URL]   = { "consul-url", "URL", "CONSUL_URL", "", "(off)", "Consul agent, http://host[:port][/prefix]" },
	[OPT_CONSUL_TOKEN] = { "consul-token", "TOKEN", "CONSUL_HTTP_TOKEN", "", "(none)", "sent as X-Consul-Token" },
	[OPT_SERVICE]      = { "service-name", "NAME", "SERVICE_NAME", "shardid", NULL, "Consul service name, 1..63 of [A-Za-z0-9._-]" },
	[OPT_CONTAINER_IP] = { "container-ip", "IPV4", "CONTAINER_IP", "", "(detect)",
			       "address advertised to Consul; default: first non-loopback IPv4" },
	[OPT_ADMIN_TOKEN]  = { "admin-token", "TOKEN", "ADMIN_TOKEN", "", "(none)",
			       "bearer token for init/reset/delete; unset: loopback clients only" },
	[OPT_LOG_LEVEL]    = { "log-level", "LEVEL", "LOG_LEVEL", "info", NULL, "error, warn, info or debug" },
	[OPT_MAX_CONNS]    = { "max-connections", "N", "MAX_CONNECTIONS", "10000", NULL, "connection cap (1..1000000)" },
	[OPT_CONSUL_FAIL_OPEN] = { "consul-fail-open", "[=BOOL]", "CONSUL_FAIL_OPEN", "0", NULL,
				   "UNSAFE: serve from local state while Consul is unreachable (1/true or 0/false)" },
	[OPT_ACCESS_LOG]   = { "access-log", "[=BOOL]", "ACCESS_LOG", "0", NULL,
			       "log one line per request (1/true or 0/false)" },
};

/* Flags that may stand alone: "--access-log" means "--access-log=1". */
static int config_is_switch(enum config_opt o)
{
	return o == OPT_CONSUL_FAIL_OPEN || o == OPT_ACCESS_LOG;
}

/* Where each raw value came from, so errors name what the operator typed. */
struct config_ctx {
	const char *val[OPT_COUNT];   /* NULL: not given */
	int from_flag[OPT_COUNT];
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static enum config_result config_fail(struct config_ctx *x, const char *fmt, ...)
{
	if (x->errlen) {
		va_list ap;
		va_start(ap, fmt);
		fmt_vsnprintf(x->err, x->errlen, fmt, ap);
		va_end(ap);
	}
	return CONFIG_ERROR;
}

/* The value given, else the default: defaults are read like given values. */
static const char *config_val(const struct config_ctx *x, enum config_opt o)
{
	return x->val[o] ? x->val[o] : config_opts[o].def;
}

/* "SHARD_ID" or "--shard", whichever supplied the value. */
static const char *config_name(const struct config_ctx *x, enum config_opt o, char *tmp, size_t n)
{
	if (!x->from_flag[o])
		return config_opts[o].env;
	fmt_snprintf(tmp, n, "--%s", config_opts[o].flag);
	return tmp;
}

/* The value as it may appear in a message: control bytes and non-ASCII
 * become '?', very long values are cut, so the error line stays one line.
 * Replacement, not log_quote's escapes: the message is composed around it
 * and read by a person as typed. */
static const char *config_show(const char *v, char *tmp, size_t n)
{
	size_t i = 0, max = n - 4;
	for (; v[i] && i < max; i++)
		tmp[i] = (v[i] >= 0x20 && v[i] < 0x7F) ? v[i] : '?';
	if (v[i]) {
		memcpy(tmp + i, "...", 3);
		i += 3;
	}
	tmp[i] = '\0';
	return tmp;
}

/* Prints "NAME=value <what follows>" into the error buffer. */
__attribute__((format(printf, 3, 4)))
static enum config_result config_bad(struct config_ctx *x, enum config_opt o, const char *fmt, ...)
{
	char name[40], shown[100], rest[300];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(rest, sizeof rest, fmt, ap);
	va_end(ap);
	return config_fail(x, "%s=%s %s", config_name(x, o, name, sizeof name),
			   config_show(config_val(x, o), shown, sizeof shown), rest);
}

/* Strict decimal: digits only, no sign, no spaces. 0 ok, -1 not an integer,
 * -2 too large for 64 bits. */
static int config_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10) {
			for (; *s; s++)
				if (*s < '0' || *s > '9')
					return -1;
			return -2;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Reads option o as an integer in lo..hi. `range` is the human form of
 * lo..hi used in the message. */
static enum config_result config_uint(struct config_ctx *x, enum config_opt o,
				      uint64_t lo, uint64_t hi, const char *range, uint64_t *out)
{
	uint64_t v = 0;
	int rc = config_parse_u64(config_val(x, o), &v);
	if (rc == -1)
		return config_bad(x, o, "is not a valid integer: expected an integer %s", range);
	if (rc == -2 || v < lo || v > hi)
		return config_bad(x, o, "is out of range: expected an integer %s", range);
	*out = v;
	return CONFIG_OK;
}

/* Copies a string option into a fixed field; too long is an error. */
static enum config_result config_str(struct config_ctx *x, enum config_opt o, char *dst, size_t cap)
{
	const char *v = config_val(x, o);
	size_t n = strlen(v);
	if (n >= cap)
		return config_bad(x, o, "is too long: expected at most %zu bytes", cap - 1);
	memcpy(dst, v, n + 1);
	return CONFIG_OK;
}

static int config_is_ipv4(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1;
}

/* Secrets go into HTTP headers: visible ASCII only, so no header injection. */
static enum config_result config_token(struct config_ctx *x, enum config_opt o, char *dst, size_t cap)
{
	char name[40];
	const char *v = config_val(x, o);
	size_t n = strlen(v);
	if (n >= cap)
		return config_fail(x, "%s is too long (value not shown): expected at most %zu bytes",
				   config_name(x, o, name, sizeof name), cap - 1);
	for (size_t i = 0; i < n; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7F)
			return config_fail(x, "%s has a character at position %zu that is not allowed (value not shown): expected visible ASCII without spaces",
					   config_name(x, o, name, sizeof name), i + 1);
	memcpy(dst, v, n + 1);
	return CONFIG_OK;
}

/* Switches: 1/true or 0/false (a bare flag already became "1"). */
static enum config_result config_bool(struct config_ctx *x, enum config_opt o, int *out)
{
	const char *v = config_val(x, o);
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		*out = 0;
	else
		return config_bad(x, o, "is not a boolean: expected 1, true, 0 or false");
	return CONFIG_OK;
}

#define TRY(expr) do { enum config_result rc_ = (expr); if (rc_ != CONFIG_OK) return rc_; } while (0)

/* Empty is a value, not "unset": SHARD_ID="" silently becoming shard 1
 * could duplicate IDs. Only options where empty means "off" accept it. */
static enum config_result config_nonempty(struct config_ctx *x)
{
	static const enum config_opt may_be_empty[] = {
		OPT_CONSUL_URL, OPT_CONSUL_TOKEN, OPT_CONTAINER_IP, OPT_ADMIN_TOKEN,
	};
	for (int o = 0; o < OPT_COUNT; o++) {
		int ok = 1;
		for (size_t i = 0; i < sizeof may_be_empty / sizeof may_be_empty[0]; i++)
			ok &= (enum config_opt)o != may_be_empty[i];
		if (ok && x->val[o] && !x->val[o][0]) {
			char name[40];
			return config_fail(x, "%s is set but empty: expected %s",
					   config_name(x, o, name, sizeof name), config_opts[o].help);
		}
	}
	return CONFIG_OK;
}

int config_host_ordinal(const char *name, size_t len, uint64_t *n)
{
	size_t d = len;   /* start of the trailing digits */
	while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
		d--;
	if (d == len || d < 2 || name[d - 1] != '-')
		return -1;
	/* "web-01" is not how a StatefulSet names pods; zero-padded names are
	 * often 1-based by hand, so guessing could shift every shard by one. */
	if (name[d] == '0' && len - d > 1)
		return -1;
	for (size_t i = 0; i + 1 < d; i++)
		if (!lex_is_name((unsigned char)name[i]))
			return -1;
	uint64_t v = 0;
	for (; d < len; d++) {
		unsigned dig = (unsigned)(name[d] - '0');
		if (v > (UINT64_MAX - dig) / 10)
			return -2;
		v = v * 10 + dig;
	}
	*n = v;
	return 0;
}

/* SHARD_ID=ordinal: the shard is one more than the -N that ends the host
 * name (HOSTNAME, else the kernel's), as a StatefulSet numbers its pods. */
static enum config_result config_shard_ordinal(struct config_ctx *x, struct config *c,
					       const char *range)
{
	struct utsname u;
	const char *host = getenv("HOSTNAME"), *from = "HOSTNAME";
	if (!host) {
		if (uname(&u) != 0)
			return config_bad(x, OPT_SHARD, "needs the host name, but uname failed: %s",
					  strerror(errno));
		host = u.nodename;
		from = "uname";
	}
	char shown[100];
	config_show(host, shown, sizeof shown);
	size_t len = strlen(host);
	if (len >= sizeof c->shard_host)
		return config_bad(x, OPT_SHARD, "cannot use the host name '%s' (%s): it is longer than %zu bytes",
				  shown, from, sizeof c->shard_host - 1);
	uint64_t n = 0;
	int rc = config_host_ordinal(host, len, &n);
	if (rc == -1)
		return config_bad(x, OPT_SHARD, "finds no ordinal in the host name '%s' (%s): expected NAME-N, NAME of A-Z a-z 0-9 . _ - and N a decimal number without leading zeros, as a StatefulSet names its pods (NAME-0 is shard 1)",
				  shown, from);
	if (rc == -2)
		return config_bad(x, OPT_SHARD, "takes an ordinal past 64 bits from the host name '%s' (%s), which is out of range: expected %s, a host name ending in -0..-%u",
				  shown, from, range, c->total_shards - 1);
	if (n >= c->total_shards)
		return config_bad(x, OPT_SHARD, "takes shard %llu from the host name '%s' (%s), which is out of range: expected %s, a host name ending in -0..-%u",
				  (unsigned long long)n + 1, shown, from, range, c->total_shards - 1);
	c->shard_id = (unsigned)n + 1;
	memcpy(c->shard_host, host, len + 1);
	return CONFIG_OK;
}

uint64_t config_machine_default(const struct sf_layout *l, unsigned shard)
{
	if (shard == 0)
		return 0;
	return strcmp(l->name, "sonyflake") == 0 ? shard : shard - 1u;
}

void config_set_shard(struct config *c, unsigned shard)
{
	c->shard_id = shard;
	if (c->machine_default)
		c->machine_id = config_machine_default(&c->layout, shard);
}

/* Which IDs this instance makes (shard, layout, machine field, data type)
 * and where it keeps their state. */
static enum config_result config_ids(struct config_ctx *x, struct config *c)
{
	uint64_t v;
	char range[160], why[200];

	TRY(config_uint(x, OPT_TOTAL, 1, 1024, "1..1024", &v));
	c->total_shards = (unsigned)v;
	fmt_snprintf(range, sizeof range, "1..TOTAL_SHARDS (1..%u)", c->total_shards);
	const char *shard = config_val(x, OPT_SHARD);
	c->shard_auto = strcmp(shard, "auto") == 0;
	if (c->shard_auto) {
		c->shard_id = 0;   /* claimed through Consul (consul_core.c) */
	} else if (strcmp(shard, "ordinal") == 0) {
		TRY(config_shard_ordinal(x, c, range));
	} else {
		if (config_parse_u64(shard, &v) == -1)
			return config_bad(x, OPT_SHARD, "is not a valid integer: expected an integer %s, ordinal or auto", range);
		TRY(config_uint(x, OPT_SHARD, 1, c->total_shards, range, &v));
		c->shard_id = (unsigned)v;
	}
	TRY(config_str(x, OPT_DATA_DIR, c->data_dir, sizeof c->data_dir));

	why[0] = '\0';
	if (sf_layout_parse(config_val(x, OPT_LAYOUT), &c->layout, why, sizeof why) < 0)
		return config_bad(x, OPT_LAYOUT, "is invalid: %s", why[0] ? why :
				  "expected sonyflake, twitter or custom:UNIT_MS/SEQ_BITS/MACHINE_BITS/EPOCH_MS");

	uint64_t max_machine = sf_max_machine(&c->layout);
	c->machine_default = !x->val[OPT_MACHINE];
	if (x->val[OPT_MACHINE]) {
		fmt_snprintf(range, sizeof range, "0..%llu (what SNOWFLAKE_LAYOUT=%s allows)",
			 (unsigned long long)max_machine, c->layout.name);
		TRY(config_uint(x, OPT_MACHINE, 0, max_machine, range, &c->machine_id));
	} else {
		/* auto may claim any shard: the largest default must fit. */
		unsigned widest = c->shard_auto ? c->total_shards : c->shard_id;
		uint64_t m = config_machine_default(&c->layout, widest);
		int sony = strcmp(c->layout.name, "sonyflake") == 0;
		if (m > max_machine)
			return config_fail(x, "MACHINE_ID is not set and its default %s=%llu does not fit SNOWFLAKE_LAYOUT=%s: expected 0..%llu; set MACHINE_ID explicitly",
					   sony ? "SHARD_ID" : "SHARD_ID-1",
					   (unsigned long long)m, c->layout.name,
					   (unsigned long long)max_machine);
		c->machine_id = config_machine_default(&c->layout, c->shard_id);
	}

	const char *type = config_val(x, OPT_TYPE);
	if (id_type_parse(type, strlen(type), &c->default_type) < 0)
		return config_bad(x, OPT_TYPE, "is not a data type: expected one of int long snowflake uuid8 uuid12 uuid16 uuid22 uuid7 ulid");
	return CONFIG_OK;
}

/* The Consul agent, the name and address registered there, the tokens. */
static enum config_result config_consul(struct config_ctx *x, struct config *c)
{
	struct url url;
	char why[200];

	TRY(config_str(x, OPT_CONSUL_URL, c->consul_url, sizeof c->consul_url));
	if (c->consul_url[0] && url_parse(c->consul_url, &url, why, sizeof why) != 0)
		return config_bad(x, OPT_CONSUL_URL, "is invalid: %s", why);
	TRY(config_token(x, OPT_CONSUL_TOKEN, c->consul_token, sizeof c->consul_token));

	TRY(config_str(x, OPT_SERVICE, c->service_name, sizeof c->service_name));
	for (const char *p = c->service_name; *p; p++)
		if (!lex_is_name((unsigned char)*p))
			return config_bad(x, OPT_SERVICE, "is not a valid service name: expected 1..63 characters of A-Z a-z 0-9 - _ .");

	TRY(config_str(x, OPT_CONTAINER_IP, c->container_ip, sizeof c->container_ip));
	if (c->container_ip[0] && (!config_is_ipv4(c->container_ip) ||
				   strcmp(c->container_ip, "0.0.0.0") == 0))
		return config_bad(x, OPT_CONTAINER_IP, "is not an address Consul can advertise: expected an IPv4 dotted quad other than 0.0.0.0, or empty to detect");

	TRY(config_token(x, OPT_ADMIN_TOKEN, c->admin_token, sizeof c->admin_token));
	return CONFIG_OK;
}

static enum config_result config_validate(struct config_ctx *x, struct config *c)
{
	uint64_t v;

	TRY(config_nonempty(x));
	c->log_level = log_level_parse(config_val(x, OPT_LOG_LEVEL));
	if (c->log_level < 0)
		return config_bad(x, OPT_LOG_LEVEL, "is not a log level: expected one of error, warn, info, debug");

	TRY(config_uint(x, OPT_PORT, 1, 65535, "1..65535", &v));
	c->port = (unsigned)v;
	TRY(config_str(x, OPT_BIND, c->bind_addr, sizeof c->bind_addr));
	if (!config_is_ipv4(c->bind_addr))
		return config_bad(x, OPT_BIND, "is not an IPv4 address: expected a dotted quad such as 0.0.0.0 or 127.0.0.1");

	TRY(config_ids(x, c));
	TRY(config_uint(x, OPT_BATCH, 1, 1000000, "1..1000000", &v));
	c->max_batch = (unsigned)v;
	TRY(config_uint(x, OPT_RANGE, 1, 1000000000, "1..1000000000", &v));
	c->max_range = (unsigned)v;
	TRY(config_uint(x, OPT_MAX_CONNS, 1, 1000000, "1..1000000", &v));
	c->max_conns = (unsigned)v;

	TRY(config_consul(x, c));
	if (c->shard_auto && !c->consul_url[0])
		return config_bad(x, OPT_SHARD, "needs CONSUL_URL: auto claims a free shard through Consul's locks; "
				  "without Consul give a number, or ordinal");
	TRY(config_bool(x, OPT_CONSUL_FAIL_OPEN, &c->consul_fail_open));
	TRY(config_bool(x, OPT_ACCESS_LOG, &c->access_log));
	return CONFIG_OK;
}
#undef TRY

static void config_usage(int fd)
{
	fmt_dprint(fd, "%s", "Usage: shardid [--FLAG VALUE | --FLAG=VALUE]...\n"
	      "Sharded unique-ID HTTP service. Every flag has an environment variable;\n"
	      "a flag wins over its variable. Invalid or empty values are startup errors,\n"
	      "except that an empty CONSUL_URL, token or CONTAINER_IP means \"off\".\n\n");
	for (int o = 0; o < OPT_COUNT; o++) {
		const struct config_optdef *d = &config_opts[o];
		char flag[48];
		if (config_is_switch((enum config_opt)o))
			fmt_snprintf(flag, sizeof flag, "--%s%s", d->flag, d->metavar);
		else
			fmt_snprintf(flag, sizeof flag, "--%s %s", d->flag, d->metavar);
		fmt_dprint(fd, "  %-26s %-18s default %-10s %s\n", flag, d->env, d->shown ? d->shown : d->def,
			d->help);
	}
	fmt_dprint(fd, "%s", "  --help                     print this help and exit\n"
	      "  --version                  print the version and exit\n\n"
	      "Subcommands, with the same flags: parse <id> (decode a snowflake), check-config,\n"
	      "reidentify (move DATA_DIR to the configured shard/layout on purpose; see README),\n"
	      "reshard --total M (move a Consul cluster to M shards; see README \"Scaling out\").\n"
	      "MACHINE_ID defaults to SHARD_ID for sonyflake and SHARD_ID-1 for twitter and custom.\n"
	      "SHARD_ID=ordinal takes the shard from a StatefulSet-style host name (HOSTNAME,\n"
	      "else the kernel's): NAME-N is shard N+1; N has no leading zeros.\n"
	      "SHARD_ID=auto (needs CONSUL_URL) claims the shard its DATA_DIR belongs to, or with\n"
	      "an empty DATA_DIR the lowest free one, and waits as a standby while all are held.\n");
}

/* The command line over the environment: --FLAG VALUE, --FLAG=VALUE, bare
 * switches, --help and --version. */
static enum config_result config_args(struct config_ctx *x, int argc, char **argv)
{
	/* Parsed by hand rather than with getopt_long so config_load keeps no
	 * hidden state between calls (tests call it many times). */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			config_usage(STDOUT_FILENO);
			return CONFIG_EXIT_OK;
		}
		if (strcmp(a, "--version") == 0) {
			fmt_dprint(STDOUT_FILENO, "%s", "shardid " SHARDID_VERSION "\ncommit " SHARDID_COMMIT "\n");
			return CONFIG_EXIT_OK;
		}
		char shown[100];
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
			return config_fail(x, "unexpected argument '%s': expected --FLAG VALUE or --FLAG=VALUE (see --help)",
					   config_show(a, shown, sizeof shown));
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		int o;
		for (o = 0; o < OPT_COUNT; o++)
			if (strlen(config_opts[o].flag) == nlen &&
			    memcmp(config_opts[o].flag, name, nlen) == 0)
				break;
		if (o == OPT_COUNT) {
			char flag[64];
			config_show(a, flag, sizeof flag);
			if (eq && (size_t)(eq - a) < sizeof flag)
				flag[eq - a] = '\0';
			return config_fail(x, "unknown flag %s (see --help)", flag);
		}
		if (eq) {
			x->val[o] = eq + 1;
		} else if (config_is_switch((enum config_opt)o)) {
			x->val[o] = "1";
		} else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
			x->val[o] = argv[++i];
		} else {
			/* "--port --shard 2" is a forgotten value, not a port named "--shard". */
			return config_fail(x, "flag --%s needs a value: --%s %s or --%s=%s, %s",
					   config_opts[o].flag, config_opts[o].flag, config_opts[o].metavar,
					   config_opts[o].flag, config_opts[o].metavar, config_opts[o].help);
		}
		x->from_flag[o] = 1;
	}
	return CONFIG_OK;
}

enum config_result config_load(struct config *c, int argc, char **argv,
			       char *err, size_t errlen)
{
	struct config_ctx x;
	memset(&x, 0, sizeof x);
	x.err = err;
	x.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	else
		x.errlen = 0;

	for (int o = 0; o < OPT_COUNT; o++)
		x.val[o] = getenv(config_opts[o].env);

	enum config_result rc = config_args(&x, argc, argv);
	if (rc != CONFIG_OK)
		return rc;

	struct config tmp;
	memset(&tmp, 0, sizeof tmp);
	rc = config_validate(&x, &tmp);
	if (rc != CONFIG_OK)
		return rc;
	*c = tmp;
	log_set_level(c->log_level);
	return CONFIG_OK;
}

/* ---- describe ---------------------------------------------------------- */

struct config_line {
	char *out;
	size_t cap, len;
};

static void config_put(struct config_line *l, const char *s, size_t n)
{
	if (l->cap == 0)
		return;
	size_t room = l->cap - 1 - l->len;
	if (n > room)
		n = room;   /* truncate; the line stays NUL-terminated */
	memcpy(l->out + l->len, s, n);
	l->len += n;
	l->out[l->len] = '\0';
}

/* key=value, quoting the value the logfmt way when it needs it. */
static void config_kv(struct config_line *l, const char *key, const char *val)
{
	char v[2 + 4 * sizeof ((struct config *)0)->data_dir];   /* every byte as \xNN */
	log_value(v, sizeof v, val, strlen(val));
	if (l->len)
		config_put(l, " ", 1);
	config_put(l, key, strlen(key));
	config_put(l, "=", 1);
	config_put(l, v, strlen(v));
}

static void config_ku(struct config_line *l, const char *key, uint64_t v)
{
	char num[24];
	fmt_snprintf(num, sizeof num, "%llu", (unsigned long long)v);
	config_kv(l, key, num);
}

/* ISO-8601 UTC to the second; custom layouts can reach past year 9999. */
static void config_iso(uint64_t ms, char out[32])
{
	if (ms / 1000 > 253402300799ull)
		fmt_snprintf(out, 32, "after-9999-12-31");
	else
		clock_iso8601_prec(ms, 0, out);
}

void config_describe(const struct config *c, char *out, size_t outlen)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	struct config_line l = { out, outlen, 0 };
	char date[32];
	if (outlen)
		out[0] = '\0';

	config_ku(&l, "port", c->port);
	config_kv(&l, "bind", c->bind_addr);
	if (c->shard_auto && !c->shard_id)
		config_kv(&l, "shard", "auto");
	else
		config_ku(&l, "shard", c->shard_id);
	if (c->shard_auto && c->shard_id)
		config_kv(&l, "shard_from", "auto");
	if (c->shard_host[0]) {
		char from[sizeof c->shard_host + 16];
		fmt_snprintf(from, sizeof from, "ordinal(%s)", c->shard_host);
		config_kv(&l, "shard_from", from);
	}
	config_ku(&l, "total_shards", c->total_shards);
	config_kv(&l, "data_dir", c->data_dir);
	config_kv(&l, "layout", c->layout.name);
	config_ku(&l, "time_bits", c->layout.time_bits);
	config_ku(&l, "seq_bits", c->layout.seq_bits);
	config_ku(&l, "machine_bits", c->layout.machine_bits);
	config_ku(&l, "unit_ms", c->layout.unit_ms);
	config_iso(c->layout.epoch_ms, date);
	config_kv(&l, "epoch", date);
	config_ku(&l, "machine_id", c->machine_id);
	config_ku(&l, "max_ids_per_second", sf_max_ids_per_second(&c->layout));
	config_iso(sf_exhausts_at_ms(&c->layout), date);
	config_kv(&l, "exhausts_at", date);
	config_kv(&l, "default_type", id_type_name(c->default_type));
	config_ku(&l, "max_batch", c->max_batch);
	config_ku(&l, "max_range", c->max_range);
	config_ku(&l, "max_connections", c->max_conns);
	config_kv(&l, "consul_url", c->consul_url[0] ? c->consul_url : "off");
	config_kv(&l, "consul_token", c->consul_token[0] ? "set" : "unset");
	config_kv(&l, "service_name", c->service_name);
	config_kv(&l, "consul_fail_open", c->consul_fail_open ? "on" : "off");
	config_kv(&l, "access_log", c->access_log ? "on" : "off");
	config_kv(&l, "container_ip", c->container_ip[0] ? c->container_ip : "auto");
	config_kv(&l, "admin_token", c->admin_token[0] ? "set" : "unset");
	config_kv(&l, "log_level",
		  c->log_level >= LOG_ERROR && c->log_level <= LOG_DEBUG ? levels[c->log_level] : "?");
}
