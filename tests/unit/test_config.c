/* Unit tests for config.c: defaults, env, flags over env, validation
 * messages, MACHINE_ID defaults per layout, SHARD_ID=ordinal,
 * --help/--version, describe. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

static const char *const all_env[] = {
	"SERVICE_PORT", "BIND_ADDR", "SHARD_ID", "TOTAL_SHARDS", "DATA_DIR",
	"SNOWFLAKE_LAYOUT", "MACHINE_ID", "DEFAULT_DATA_TYPE", "MAX_BATCH_SIZE",
	"CONSUL_URL", "CONSUL_HTTP_TOKEN", "SERVICE_NAME", "CONTAINER_IP",
	"ADMIN_TOKEN", "LOG_LEVEL", "MAX_CONNECTIONS", "CONSUL_FAIL_OPEN",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof all_env / sizeof all_env[0]; i++)
		unsetenv(all_env[i]);
	unsetenv("HOSTNAME");   /* SHARD_ID=ordinal reads it */
}

static struct config cfg;
static char err[512];

/* config_load with argv = "shardid", then the NULL-terminated flags. */
static enum config_result load(const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "shardid";
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return config_load(&cfg, argc, argv, err, sizeof err);
}

static void test_defaults(void)
{
	clear_env();
	memset(&cfg, 0xAB, sizeof cfg);
	log_set_level(LOG_DEBUG);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.port == 7001);
	CHECK(strcmp(cfg.bind_addr, "0.0.0.0") == 0);
	CHECK(cfg.shard_id == 1);
	CHECK(cfg.total_shards == 1);
	CHECK(strcmp(cfg.data_dir, "./data") == 0);
	CHECK(strcmp(cfg.layout.name, "sonyflake") == 0);
	CHECK(cfg.layout.machine_bits == 16);
	CHECK_EQ_U64(cfg.machine_id, 1);
	CHECK(cfg.default_type == TYPE_SNOWFLAKE);
	CHECK(cfg.max_batch == 10000);
	CHECK(cfg.consul_url[0] == '\0');
	CHECK(cfg.consul_token[0] == '\0');
	CHECK(strcmp(cfg.service_name, "shardid") == 0);
	CHECK(cfg.container_ip[0] == '\0');
	CHECK(cfg.admin_token[0] == '\0');
	CHECK(cfg.log_level == LOG_INFO);
	CHECK(log_enabled(LOG_INFO) && !log_enabled(LOG_DEBUG));
	CHECK(cfg.max_conns == 10000);
}

static void test_env(void)
{
	clear_env();
	setenv("SERVICE_PORT", "8080", 1);
	setenv("BIND_ADDR", "127.0.0.1", 1);
	setenv("SHARD_ID", "2", 1);
	setenv("TOTAL_SHARDS", "3", 1);
	setenv("DATA_DIR", "/var/lib/shardid", 1);
	setenv("SNOWFLAKE_LAYOUT", "twitter", 1);
	setenv("DEFAULT_DATA_TYPE", "uuid22", 1);
	setenv("MAX_BATCH_SIZE", "1000000", 1);
	setenv("CONSUL_URL", "http://10.0.0.5:8500", 1);
	setenv("CONSUL_HTTP_TOKEN", "c0nsul-t0ken", 1);
	setenv("SERVICE_NAME", "ids.prod-eu_1", 1);
	setenv("CONTAINER_IP", "10.1.2.3", 1);
	setenv("ADMIN_TOKEN", "s3cret", 1);
	setenv("LOG_LEVEL", "debug", 1);
	setenv("MAX_CONNECTIONS", "1", 1);
	log_set_level(LOG_INFO);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.port == 8080);
	CHECK(strcmp(cfg.bind_addr, "127.0.0.1") == 0);
	CHECK(cfg.shard_id == 2 && cfg.total_shards == 3);
	CHECK(strcmp(cfg.data_dir, "/var/lib/shardid") == 0);
	CHECK(strcmp(cfg.layout.name, "twitter") == 0);
	CHECK_EQ_U64(cfg.machine_id, 1);   /* SHARD_ID-1 for twitter */
	CHECK(cfg.default_type == TYPE_UUID22);
	CHECK(cfg.max_batch == 1000000);
	CHECK(strcmp(cfg.consul_url, "http://10.0.0.5:8500") == 0);
	CHECK(strcmp(cfg.consul_token, "c0nsul-t0ken") == 0);
	CHECK(strcmp(cfg.service_name, "ids.prod-eu_1") == 0);
	CHECK(strcmp(cfg.container_ip, "10.1.2.3") == 0);
	CHECK(strcmp(cfg.admin_token, "s3cret") == 0);
	CHECK(cfg.log_level == LOG_DEBUG && log_enabled(LOG_DEBUG));
	CHECK(cfg.max_conns == 1);

	/* Values that are empty on purpose mean "off". */
	setenv("CONSUL_URL", "", 1);
	setenv("CONTAINER_IP", "", 1);
	setenv("ADMIN_TOKEN", "", 1);
	setenv("CONSUL_HTTP_TOKEN", "", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.consul_url[0] == '\0' && cfg.container_ip[0] == '\0');
	CHECK(cfg.admin_token[0] == '\0' && cfg.consul_token[0] == '\0');

	/* Edges of the ranges. */
	clear_env();
	setenv("SERVICE_PORT", "65535", 1);
	setenv("TOTAL_SHARDS", "1024", 1);
	setenv("SHARD_ID", "1024", 1);
	setenv("MAX_BATCH_SIZE", "1", 1);
	setenv("MAX_CONNECTIONS", "1000000", 1);
	setenv("CONSUL_URL", "http://consul.service:8500/agent-prefix/", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.port == 65535 && cfg.shard_id == 1024 && cfg.total_shards == 1024);
	CHECK(cfg.max_batch == 1 && cfg.max_conns == 1000000);
	setenv("CONSUL_URL", "http://localhost", 1);
	CHECK(load(NULL) == CONFIG_OK);
	setenv("CONSUL_URL", "HTTP://localhost:1", 1);
	CHECK(load(NULL) == CONFIG_OK);
	setenv("SERVICE_PORT", "0007001", 1);   /* leading zeros are still decimal digits */
	CHECK(load(NULL) == CONFIG_OK && cfg.port == 7001);
}

static void test_flags(void)
{
	clear_env();
	setenv("SERVICE_PORT", "8080", 1);
	setenv("SHARD_ID", "2", 1);
	setenv("TOTAL_SHARDS", "3", 1);
	setenv("LOG_LEVEL", "debug", 1);
	setenv("ADMIN_TOKEN", "from-env", 1);
	CHECK(load("--port", "9000", "--shard=3", "--log-level", "warn",
		   "--admin-token=from-flag", NULL) == CONFIG_OK);
	CHECK(cfg.port == 9000);
	CHECK(cfg.shard_id == 3 && cfg.total_shards == 3);
	CHECK(cfg.log_level == LOG_WARN && log_enabled(LOG_WARN) && !log_enabled(LOG_INFO));
	CHECK(strcmp(cfg.admin_token, "from-flag") == 0);

	clear_env();
	CHECK(load("--port=7002", "--bind", "10.0.0.1", "--total-shards", "8", "--shard", "8",
		   "--data-dir", "/tmp/x y", "--snowflake-layout=custom:1/12/10/0",
		   "--machine-id", "1023", "--default-data-type", "long",
		   "--max-batch-size", "5", "--consul-url", "http://127.0.0.1:8500",
		   "--consul-token", "tok", "--service-name", "svc",
		   "--container-ip", "192.168.1.9", "--log-level=error",
		   "--max-connections", "77", NULL) == CONFIG_OK);
	CHECK(cfg.port == 7002);
	CHECK(strcmp(cfg.bind_addr, "10.0.0.1") == 0);
	CHECK(cfg.shard_id == 8 && cfg.total_shards == 8);
	CHECK(strcmp(cfg.data_dir, "/tmp/x y") == 0);
	CHECK(strcmp(cfg.layout.name, "custom:1/12/10/0") == 0);
	CHECK(cfg.layout.seq_bits == 12 && cfg.layout.machine_bits == 10);
	CHECK_EQ_U64(cfg.machine_id, 1023);
	CHECK(cfg.default_type == TYPE_LONG);
	CHECK(cfg.max_batch == 5);
	CHECK(strcmp(cfg.consul_url, "http://127.0.0.1:8500") == 0);
	CHECK(strcmp(cfg.consul_token, "tok") == 0);
	CHECK(strcmp(cfg.service_name, "svc") == 0);
	CHECK(strcmp(cfg.container_ip, "192.168.1.9") == 0);
	CHECK(cfg.log_level == LOG_ERROR);
	CHECK(cfg.max_conns == 77);

	/* An empty flag value turns an env setting off; the last flag wins. */
	setenv("CONSUL_URL", "http://10.0.0.5:8500", 1);
	CHECK(load("--consul-url=", "--port", "1", "--port", "2", NULL) == CONFIG_OK);
	CHECK(cfg.consul_url[0] == '\0');
	CHECK(cfg.port == 2);

	/* Re-callable: nothing sticks from the previous call. */
	clear_env();
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.port == 7001 && cfg.consul_url[0] == '\0' && cfg.log_level == LOG_INFO);
}

/* --consul-fail-open is a switch: alone it means on; env and =value take 1/0/true/false. */
static void test_consul_fail_open(void)
{
	clear_env();
	CHECK(load(NULL) == CONFIG_OK && cfg.consul_fail_open == 0);
	CHECK(load("--consul-fail-open", NULL) == CONFIG_OK && cfg.consul_fail_open == 1);
	/* A switch never takes the next argument as its value. */
	CHECK(load("--consul-fail-open", "--port", "7100", NULL) == CONFIG_OK);
	CHECK(cfg.consul_fail_open == 1 && cfg.port == 7100);
	CHECK(load("--consul-fail-open=false", NULL) == CONFIG_OK && cfg.consul_fail_open == 0);
	CHECK(load("--consul-fail-open=true", NULL) == CONFIG_OK && cfg.consul_fail_open == 1);
	setenv("CONSUL_FAIL_OPEN", "1", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.consul_fail_open == 1);
	CHECK(load("--consul-fail-open=0", NULL) == CONFIG_OK && cfg.consul_fail_open == 0);
	setenv("CONSUL_FAIL_OPEN", "true", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.consul_fail_open == 1);
	setenv("CONSUL_FAIL_OPEN", "0", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.consul_fail_open == 0);
	CHECK(load("--consul-fail-open", NULL) == CONFIG_OK && cfg.consul_fail_open == 1);
	setenv("CONSUL_FAIL_OPEN", "on", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strcmp(err, "CONSUL_FAIL_OPEN=on is not a boolean: expected 1, true, 0 or false") == 0);
	CHECK(load("--consul-fail-open", "1", NULL) == CONFIG_ERROR);   /* "1" is a stray argument */

	char line[2048];
	clear_env();
	CHECK(load("--consul-fail-open", NULL) == CONFIG_OK);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, "consul_fail_open=on") != NULL);
}

static void test_machine_defaults(void)
{
	clear_env();
	setenv("TOTAL_SHARDS", "5", 1);
	setenv("SHARD_ID", "3", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 3);   /* sonyflake: SHARD_ID, as go-id */
	setenv("SNOWFLAKE_LAYOUT", "twitter", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 2);   /* twitter: SHARD_ID-1 */
	setenv("SNOWFLAKE_LAYOUT", "custom:10/8/4/0", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 2);
	setenv("MACHINE_ID", "0", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 0);
	setenv("MACHINE_ID", "15", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 15);

	/* Shard 1024 of 1024 still fits twitter's 10-bit field (0-based). */
	clear_env();
	setenv("SNOWFLAKE_LAYOUT", "twitter", 1);
	setenv("TOTAL_SHARDS", "1024", 1);
	setenv("SHARD_ID", "1024", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 1023);

	/* A default that does not fit is an error that says what to set. */
	clear_env();
	setenv("SNOWFLAKE_LAYOUT", "custom:10/8/2/0", 1);
	setenv("TOTAL_SHARDS", "5", 1);
	setenv("SHARD_ID", "5", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "MACHINE_ID") && strstr(err, "0..3") && strstr(err, "custom:10/8/2/0"));

	clear_env();
	setenv("MACHINE_ID", "65535", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK_EQ_U64(cfg.machine_id, 65535);
}

/* config_host_ordinal on name[0..len) placed flush against the guard page. */
static int ordinal_at_edge(const char *name, size_t len, uint64_t *n)
{
	return config_host_ordinal(check_at_edge(name, len), len, n);
}

static void test_host_ordinal(void)
{
	static const struct { const char *name; int rc; uint64_t n; } cases[] = {
		{ "shardid-0", 0, 0 },
		{ "web-12", 0, 12 },
		{ "a-b-3", 0, 3 },
		{ "x-0", 0, 0 },
		{ "x--3", 0, 3 },          /* NAME may end in '-' ("x-") */
		{ "shardid-1023", 0, 1023 },
		{ "x-18446744073709551615", 0, UINT64_MAX },
		{ "x-18446744073709551616", -2, 0 },
		{ "x-99999999999999999999999", -2, 0 },
		{ "shardid", -1, 0 },
		{ "x-", -1, 0 },
		{ "-3", -1, 0 },           /* no NAME */
		{ "-", -1, 0 },
		{ "", -1, 0 },
		{ "web12", -1, 0 },
		{ "12", -1, 0 },
		{ "x-007", -1, 0 },        /* leading zeros: refused, not guessed */
		{ "x-00", -1, 0 },
		{ "x-01", -1, 0 },
		{ "x-1a", -1, 0 },
		{ "x-+1", -1, 0 },
		{ "x- 1", -1, 0 },
		{ "x-1 ", -1, 0 },
		{ "x-1.svc", -1, 0 },      /* a FQDN is not a pod name */
		{ "x_1", -1, 0 },
		{ "a b-1", -1, 0 },        /* NAME: A-Z a-z 0-9 . _ - only */
		{ "bad\nname-1", -1, 0 },
		{ "sts.v2_a-1", 0, 1 },
	};
	check_edge_init(64);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t n = 77;
		int rc = ordinal_at_edge(cases[i].name, strlen(cases[i].name), &n);
		if (rc != cases[i].rc || n != (rc == 0 ? cases[i].n : 77))
			fprintf(stderr, "ordinal \"%s\": rc %d n %llu\n", cases[i].name, rc,
				(unsigned long long)n);
		CHECK(rc == cases[i].rc && n == (rc == 0 ? cases[i].n : 77));
	}

	/* Every prefix of a name, byte by byte: only whole -N suffixes count. */
	static const struct { size_t len; int rc; uint64_t n; } web[] = {
		{ 0, -1, 0 }, { 1, -1, 0 }, { 2, -1, 0 }, { 3, -1, 0 }, { 4, -1, 0 },
		{ 5, 0, 1 }, { 6, 0, 12 }, { 7, -1, 0 }, { 8, 0, 1 },
	};
	const char *name = "web-12-1";
	for (size_t i = 0; i < sizeof web / sizeof web[0]; i++) {
		uint64_t n = 77;
		int rc = ordinal_at_edge(name, web[i].len, &n);
		CHECK(rc == web[i].rc && n == (rc == 0 ? web[i].n : 77));
	}

	/* Every byte before the digits: only '-' makes an ordinal. */
	for (int b = 0; b < 256; b++) {
		char s[3] = { 'x', (char)b, '5' };
		uint64_t n = 77;
		int rc = ordinal_at_edge(s, sizeof s, &n);
		CHECK(b == '-' ? rc == 0 && n == 5 : rc == -1 && n == 77);
		/* and every byte as the last one of "x-1?": only digits keep it */
		char t[4] = { 'x', '-', '1', (char)b };
		rc = ordinal_at_edge(t, sizeof t, &n);
		CHECK(b >= '0' && b <= '9' ? rc == 0 && n == 10 + (uint64_t)(b - '0') : rc == -1);
		/* and every byte as NAME */
		char u[3] = { (char)b, '-', '7' };
		int name_byte = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
				(b >= '0' && b <= '9') || b == '.' || b == '_' || b == '-';
		rc = ordinal_at_edge(u, sizeof u, &n);
		CHECK(name_byte ? rc == 0 && n == 7 : rc == -1);
	}
}

/* SHARD_ID=ordinal through config_load: HOSTNAME, else uname's nodename. */
static void test_shard_ordinal(void)
{
	char line[2048];
	clear_env();
	setenv("TOTAL_SHARDS", "16", 1);
	setenv("SHARD_ID", "ordinal", 1);
	setenv("HOSTNAME", "web-12", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.shard_id == 13 && strcmp(cfg.shard_host, "web-12") == 0);
	CHECK_EQ_U64(cfg.machine_id, 13);   /* follows the shard as for SHARD_ID=13 */
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, " shard=13 shard_from=ordinal(web-12) total_shards=16 ") != NULL);
	setenv("SNOWFLAKE_LAYOUT", "twitter", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.shard_id == 13);
	CHECK_EQ_U64(cfg.machine_id, 12);
	unsetenv("SNOWFLAKE_LAYOUT");

	setenv("HOSTNAME", "shardid-0", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.shard_id == 1);
	setenv("HOSTNAME", "shardid-15", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.shard_id == 16);

	/* A numeric SHARD_ID ignores the host name and describes as before. */
	setenv("SHARD_ID", "2", 1);
	CHECK(load(NULL) == CONFIG_OK && cfg.shard_id == 2 && cfg.shard_host[0] == '\0');
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, " shard=2 total_shards=16 ") && !strstr(line, "shard_from"));

	/* The flag form, over a numeric SHARD_ID. */
	setenv("HOSTNAME", "a-b-3", 1);
	CHECK(load("--shard", "ordinal", NULL) == CONFIG_OK && cfg.shard_id == 4);

	/* Errors name the host name, where it came from and what was expected;
	 * *c stays untouched. */
	setenv("SHARD_ID", "ordinal", 1);
	setenv("HOSTNAME", "shardid", 1);
	memset(&cfg, 0x5A, sizeof cfg);
	struct config before = cfg;
	CHECK(load(NULL) == CONFIG_ERROR && memcmp(&cfg, &before, sizeof cfg) == 0);
	CHECK(strcmp(err, "SHARD_ID=ordinal finds no ordinal in the host name 'shardid' (HOSTNAME): "
		      "expected NAME-N, NAME of A-Z a-z 0-9 . _ - and N a decimal number without "
		      "leading zeros, as a StatefulSet names its pods (NAME-0 is shard 1)") == 0);
	setenv("HOSTNAME", "x-007", 1);
	CHECK(load(NULL) == CONFIG_ERROR && strstr(err, "'x-007'") && strstr(err, "leading zeros"));
	setenv("HOSTNAME", "", 1);   /* set but empty is a name, not "unset" */
	CHECK(load(NULL) == CONFIG_ERROR && strstr(err, "host name '' (HOSTNAME)"));
	setenv("HOSTNAME", "web-16", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strcmp(err, "SHARD_ID=ordinal takes shard 17 from the host name 'web-16' (HOSTNAME), "
		      "which is out of range: expected 1..TOTAL_SHARDS (1..16), a host name ending "
		      "in -0..-15") == 0);
	setenv("HOSTNAME", "web-99999999999999999999", 1);
	CHECK(load(NULL) == CONFIG_ERROR && strstr(err, "out of range") &&
	      strstr(err, "web-99999999999999999999") && strstr(err, "(1..16)"));
	setenv("HOSTNAME", "bad\nname-1", 1);
	CHECK(load("--shard=ordinal", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "--shard=ordinal") && strstr(err, "'bad?name-1'") && !strchr(err, '\n'));
	char longv[300];
	memset(longv, 'a', sizeof longv - 1);
	memcpy(longv + sizeof longv - 3, "-1", 3);
	setenv("HOSTNAME", longv, 1);
	CHECK(load(NULL) == CONFIG_ERROR && strstr(err, "longer than 255 bytes"));

	/* Case matters, like every other word value. */
	setenv("SHARD_ID", "Ordinal", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strcmp(err, "SHARD_ID=Ordinal is not a valid integer: expected an integer "
		      "1..TOTAL_SHARDS (1..16), ordinal or auto") == 0);

	/* Without HOSTNAME: the kernel's host name. */
	struct utsname u;
	CHECK(uname(&u) == 0);
	unsetenv("HOSTNAME");
	setenv("SHARD_ID", "ordinal", 1);
	uint64_t n;
	if (config_host_ordinal(u.nodename, strlen(u.nodename), &n) == 0 && n < 16) {
		CHECK(load(NULL) == CONFIG_OK && cfg.shard_id == n + 1);
	} else {
		CHECK(load(NULL) == CONFIG_ERROR && strstr(err, "(uname)") && strstr(err, u.nodename));
	}
}

struct bad {
	const char *env, *value;   /* env: set this variable */
	const char *flag;          /* or: pass this flag with value */
	const char *name_in_err;   /* default: env or "--flag" */
};

static const struct bad bad_cases[] = {
	{ "SERVICE_PORT", "0", NULL, NULL },
	{ "SERVICE_PORT", "65536", NULL, NULL },
	{ "SERVICE_PORT", "-1", NULL, NULL },
	{ "SERVICE_PORT", "+80", NULL, NULL },
	{ "SERVICE_PORT", " 80", NULL, NULL },
	{ "SERVICE_PORT", "80 ", NULL, NULL },
	{ "SERVICE_PORT", "80x", NULL, NULL },
	{ "SERVICE_PORT", "0x50", NULL, NULL },
	{ "SERVICE_PORT", "99999999999999999999999", NULL, NULL },
	{ "SERVICE_PORT", "18446744073709559617", NULL, NULL },
	{ "SERVICE_PORT", "", NULL, NULL },
	{ "BIND_ADDR", "localhost", NULL, NULL },
	{ "BIND_ADDR", "1.2.3", NULL, NULL },
	{ "BIND_ADDR", "256.0.0.1", NULL, NULL },
	{ "BIND_ADDR", "::1", NULL, NULL },
	{ "SHARD_ID", "0", NULL, NULL },
	{ "SHARD_ID", "2", NULL, NULL },   /* TOTAL_SHARDS is 1 */
	{ "SHARD_ID", "", NULL, NULL },
	{ "TOTAL_SHARDS", "0", NULL, NULL },
	{ "TOTAL_SHARDS", "1025", NULL, NULL },
	{ "DATA_DIR", "", NULL, NULL },
	{ "SNOWFLAKE_LAYOUT", "Sonyflake", NULL, NULL },
	{ "SNOWFLAKE_LAYOUT", "custom:1/2", NULL, NULL },
	{ "MACHINE_ID", "65536", NULL, NULL },
	{ "MACHINE_ID", "-1", NULL, NULL },
	{ "MACHINE_ID", "1.0", NULL, NULL },
	{ "DEFAULT_DATA_TYPE", "INT", NULL, NULL },
	{ "DEFAULT_DATA_TYPE", "uuid", NULL, NULL },
	{ "MAX_BATCH_SIZE", "0", NULL, NULL },
	{ "MAX_BATCH_SIZE", "1000001", NULL, NULL },
	{ "CONSUL_URL", "https://10.0.0.5:8501", NULL, NULL },
	{ "CONSUL_URL", "10.0.0.5:8500", NULL, NULL },
	{ "CONSUL_URL", "http://", NULL, NULL },
	{ "CONSUL_URL", "http://host:0", NULL, NULL },
	{ "CONSUL_URL", "http://host:65536", NULL, NULL },
	{ "CONSUL_URL", "http://host:", NULL, NULL },
	{ "CONSUL_URL", "http://user@host", NULL, NULL },
	{ "CONSUL_URL", "http://host/a b", NULL, NULL },
	{ "CONSUL_URL", "http://host?x=1", NULL, NULL },
	{ "SERVICE_NAME", "", NULL, NULL },
	{ "SERVICE_NAME", "bad name", NULL, NULL },
	{ "SERVICE_NAME", "a/b", NULL, NULL },
	{ "SERVICE_NAME", "x123456789012345678901234567890123456789012345678901234567890123", NULL, NULL },
	{ "CONTAINER_IP", "10.0.0", NULL, NULL },
	{ "CONTAINER_IP", "0.0.0.0", NULL, NULL },
	{ "LOG_LEVEL", "verbose", NULL, NULL },
	{ "LOG_LEVEL", "INFO", NULL, NULL },
	{ "MAX_CONNECTIONS", "0", NULL, NULL },
	{ "MAX_CONNECTIONS", "1000001", NULL, NULL },
	{ "CONSUL_FAIL_OPEN", "maybe", NULL, NULL },
	{ "CONSUL_FAIL_OPEN", "", NULL, NULL },
	{ "CONSUL_FAIL_OPEN", "yes", NULL, NULL },
	{ NULL, "2", "consul-fail-open", NULL },
	{ NULL, "70000", "port", NULL },
	{ NULL, "abc", "shard", NULL },
	{ NULL, "nope", "default-data-type", NULL },
	{ NULL, "https://c:8501", "consul-url", NULL },
	{ NULL, "", "port", NULL },
};

static void test_invalid(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad *b = &bad_cases[i];
		char flag[64], name[64];
		clear_env();
		memset(&cfg, 0x5A, sizeof cfg);
		struct config before = cfg;
		enum config_result rc;
		if (b->env) {
			setenv(b->env, b->value, 1);
			snprintf(name, sizeof name, "%s", b->env);
			rc = load(NULL);
		} else {
			snprintf(flag, sizeof flag, "--%s=%s", b->flag, b->value);
			snprintf(name, sizeof name, "--%s", b->flag);
			rc = load(flag, NULL);
		}
		int good = rc == CONFIG_ERROR && strstr(err, name) && strstr(err, b->value) &&
			   memcmp(&cfg, &before, sizeof cfg) == 0;
		if (!good)
			fprintf(stderr, "case %zu %s=%s: rc %d, err \"%s\"\n", i, name, b->value, rc, err);
		CHECK(good);
	}

	/* Messages say what was expected, e.g. the range with its numbers. */
	clear_env();
	setenv("TOTAL_SHARDS", "3", 1);
	setenv("SHARD_ID", "0", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strcmp(err, "SHARD_ID=0 is out of range: expected an integer 1..TOTAL_SHARDS (1..3)") == 0);
	setenv("SHARD_ID", "4", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "SHARD_ID=4") && strstr(err, "(1..3)"));
	clear_env();
	setenv("SERVICE_PORT", "abc", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "SERVICE_PORT=abc") && strstr(err, "1..65535"));
	clear_env();
	setenv("CONSUL_URL", "https://x:8501", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "https is not supported: use an http:// agent address") != NULL);
	clear_env();
	setenv("MACHINE_ID", "65536", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "0..65535") != NULL);
	clear_env();
	setenv("SNOWFLAKE_LAYOUT", "twitter", 1);
	setenv("MACHINE_ID", "1024", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "MACHINE_ID=1024") && strstr(err, "0..1023"));

	/* A flag's bad value is reported under the flag's name. */
	clear_env();
	setenv("SERVICE_PORT", "80", 1);
	CHECK(load("--port", "0", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "--port=0") != NULL);

	/* Strings that do not fit their field. */
	char longv[700];
	memset(longv, 'a', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	clear_env();
	longv[0] = '/';
	setenv("DATA_DIR", longv, 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "DATA_DIR=/aaa") && strstr(err, "too long"));
	longv[0] = 'a';

	/* Secrets: rejected without echoing the value. */
	clear_env();
	setenv("ADMIN_TOKEN", longv, 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "ADMIN_TOKEN") && strstr(err, "too long") && !strstr(err, "aaaa"));
	clear_env();
	setenv("CONSUL_HTTP_TOKEN", "abc def", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "CONSUL_HTTP_TOKEN") && !strstr(err, "abc def"));
	clear_env();
	setenv("ADMIN_TOKEN", "tok\r\nX-Evil: 1", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "ADMIN_TOKEN") && !strstr(err, "tok"));

	/* Control bytes in a value do not end up raw in the message. */
	clear_env();
	setenv("SERVICE_PORT", "1\n2", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strchr(err, '\n') == NULL && strstr(err, "SERVICE_PORT=1?2"));
}

static void test_bad_args(void)
{
	clear_env();
	CHECK(load("--prot", "7001", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "unknown flag --prot") != NULL);
	CHECK(load("--prot=7001", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "unknown flag --prot") && !strstr(err, "7001"));
	CHECK(load("-p", "7001", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "-p") != NULL);
	CHECK(load("7001", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "7001") != NULL);
	CHECK(load("--", NULL) == CONFIG_ERROR);
	CHECK(load("--port", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "--port") && strstr(err, "needs a value"));
	CHECK(load("--port", "--shard", "1", NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "--port") && strstr(err, "needs a value"));
	CHECK(load("--PORT=1", NULL) == CONFIG_ERROR);
}

/* Runs load() with stdout captured into out. */
static enum config_result load_captured(const char *arg, char *out, size_t outlen)
{
	fflush(stdout);
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	dup2(fileno(tmp), STDOUT_FILENO);
	enum config_result rc = load(arg, NULL);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, outlen - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return rc;
}

static void test_help_version(void)
{
	static char out[8192];
	clear_env();
	CHECK(load_captured("--help", out, sizeof out) == CONFIG_EXIT_OK);
	static const char *const flags[] = {
		"--port", "--bind", "--shard", "--total-shards", "--data-dir",
		"--snowflake-layout", "--machine-id", "--default-data-type",
		"--max-batch-size", "--consul-url", "--consul-token", "--service-name",
		"--container-ip", "--admin-token", "--log-level", "--max-connections",
		"--consul-fail-open", "--help", "--version",
	};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		CHECK(strstr(out, flags[i]) != NULL);
	for (size_t i = 0; i < sizeof all_env / sizeof all_env[0]; i++)
		CHECK(strstr(out, all_env[i]) != NULL);
	CHECK(strstr(out, "7001") && strstr(out, "sonyflake") && strstr(out, "./data"));

	/* --help wins even when the environment is broken. */
	setenv("SERVICE_PORT", "junk", 1);
	CHECK(load_captured("--help", out, sizeof out) == CONFIG_EXIT_OK);
	CHECK(load_captured("--version", out, sizeof out) == CONFIG_EXIT_OK);
	CHECK(strncmp(out, "shardid ", 8) == 0 && strlen(out) > 9 && out[strlen(out) - 1] == '\n');
}

static void test_describe(void)
{
	char line[2048];
	clear_env();
	setenv("ADMIN_TOKEN", "hunter2hunter2", 1);
	setenv("CONSUL_HTTP_TOKEN", "consulsecret", 1);
	setenv("CONSUL_URL", "http://10.0.0.5:8500", 1);
	setenv("DATA_DIR", "/srv/my data", 1);
	CHECK(load(NULL) == CONFIG_OK);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, "port=7001 ") != NULL);
	CHECK(strstr(line, "shard=1 ") && strstr(line, "total_shards=1 "));
	CHECK(strstr(line, "layout=sonyflake ") != NULL);
	CHECK(strstr(line, "machine_id=1 ") != NULL);
	CHECK(strstr(line, "max_ids_per_second=25600") != NULL);
	CHECK(strstr(line, "epoch=2022-01-01T00:00:00Z") != NULL);
	CHECK(strstr(line, "exhausts_at=2") != NULL);
	CHECK(strstr(line, "data_dir=\"/srv/my data\"") != NULL);
	CHECK(strstr(line, "consul_url=http://10.0.0.5:8500") != NULL);
	CHECK(strstr(line, "admin_token=set") && strstr(line, "consul_token=set"));
	CHECK(!strstr(line, "hunter2") && !strstr(line, "consulsecret"));
	CHECK(strchr(line, '\n') == NULL);

	clear_env();
	CHECK(load(NULL) == CONFIG_OK);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, "admin_token=unset") && strstr(line, "consul_token=unset"));
	CHECK(strstr(line, "consul_url=off") && strstr(line, "container_ip=auto"));
	CHECK(strstr(line, "log_level=info") != NULL);

	/* Quoted the logfmt way, like every logged value: escapes, not guesses. */
	setenv("DATA_DIR", "/srv/a\tb\"c\\d\xc3\xa9", 1);
	CHECK(load(NULL) == CONFIG_OK);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, " data_dir=\"/srv/a\\x09b\\\"c\\\\d\\xc3\\xa9\" ") != NULL);
	setenv("DATA_DIR", "/srv/a=b", 1);
	CHECK(load(NULL) == CONFIG_OK);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, " data_dir=\"/srv/a=b\" ") != NULL);
	unsetenv("DATA_DIR");

	/* A short buffer truncates and stays terminated. */
	char small[16];
	memset(small, 'Z', sizeof small);
	config_describe(&cfg, small, sizeof small);
	CHECK(strlen(small) == sizeof small - 1);
}

/* SHARD_ID=auto: no shard until one is claimed through Consul; the
 * machine default follows the claimed shard, and must fit for every one. */
static void test_shard_auto(void)
{
	clear_env();
	setenv("SHARD_ID", "auto", 1);
	setenv("TOTAL_SHARDS", "4", 1);
	CHECK(load(NULL) == CONFIG_ERROR);
	CHECK(strstr(err, "SHARD_ID=auto needs CONSUL_URL") != NULL);
	setenv("CONSUL_URL", "http://127.0.0.1:8500", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(cfg.shard_auto && cfg.shard_id == 0 && cfg.machine_default);
	char line[2048];
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, "shard=auto total_shards=4") != NULL);
	config_set_shard(&cfg, 3);
	CHECK(cfg.shard_id == 3 && cfg.machine_id == 3);
	config_describe(&cfg, line, sizeof line);
	CHECK(strstr(line, "shard=3 shard_from=auto total_shards=4") != NULL);
	CHECK(load("--shard", "auto", "--snowflake-layout", "twitter", NULL) == CONFIG_OK);
	config_set_shard(&cfg, 4);
	CHECK_EQ_U64(cfg.machine_id, 3);
	/* An explicit MACHINE_ID stays whatever shard is claimed. */
	setenv("MACHINE_ID", "9", 1);
	CHECK(load(NULL) == CONFIG_OK);
	CHECK(!cfg.machine_default);
	config_set_shard(&cfg, 2);
	CHECK_EQ_U64(cfg.machine_id, 9);
	unsetenv("MACHINE_ID");
	/* The default of the last shard must fit the layout, as if it were given. */
	setenv("SNOWFLAKE_LAYOUT", "custom:10/8/2/0", 1);
	CHECK(load(NULL) == CONFIG_OK);                       /* shard 4 -> machine 3 */
	setenv("TOTAL_SHARDS", "5", 1);
	CHECK(load(NULL) == CONFIG_ERROR);                    /* shard 5 -> machine 4 */
	CHECK(strstr(err, "MACHINE_ID") && strstr(err, "0..3"));
	CHECK(config_machine_default(&cfg.layout, 0) == 0);
}

int main(void)
{
	test_defaults();
	test_env();
	test_flags();
	test_consul_fail_open();
	test_machine_defaults();
	test_shard_auto();
	test_host_ordinal();
	test_shard_ordinal();
	test_invalid();
	test_bad_args();
	test_help_version();
	test_describe();
	clear_env();
	return check_summary("config");
}
