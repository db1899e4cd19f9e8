/* At most one request in flight on the main connection, the most urgent due
 * one first: renew the session, create it, acquire the lock, read and write
 * the shard state, register, verify the registration. Transport errors and
 * 5xx back off exponentially with jitter; 4xx answers are configuration
 * problems, logged with Consul's own words and retried slowly. */
#include "consul_core.h"

#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "http_lex.h"
#include "log.h"
#include "metrics.h"
#include "shard_kv.h"
#include "store_kv.h"

#define BACKOFF_MIN_MS        500
#define BACKOFF_MAX_MS        30000
#define CLIENT_ERROR_RETRY_MS 60000   /* after a 4xx: a configuration problem */
#define WRITE_RETRY_MS        5000    /* a refused state write (ACL): try again */
#define RESYNC_RETRY_MS       10000   /* state that cannot be used: read again */
#define VERIFY_EVERY_MS       10000   /* is the registration still there? */
#define ACQUIRE_EVERY_MS      5000    /* standby asking for the lock besides its watch */
#define WATCH_RETRY_MS        1000
#define CONFIG_RECHECK_MS     2000    /* a differing or frozen cluster configuration */
#define CONFIG_VERIFY_MS      5000    /* an agreeing one: a reshard may have ended it */
#define PAGE_MAX_BYTES        (32u << 20)

static const char *const op_names[CONSUL_OP_COUNT] = {
	"none", "resolve-host", "clear-registration", "register", "verify-registration",
	"create-session", "acquire-lock", "renew-session", "read-identity", "read-fence",
	"read-state", "write-state", "watch-lock", "read-cluster-config", "create-cluster-config",
	"release-lock",
};
static const char *const lock_names[] = { "unknown", "held", "held-elsewhere", "lost" };
_Static_assert(CONSUL_OP_COUNT <= METRICS_CONSUL_OPS, "metrics.h: room for every Consul operation");
_Static_assert(LOCK_LOST < METRICS_LOCK_STATES, "metrics.h: room for every lock state");

const char *consul_lock_name(enum consul_lock l)
{
	return lock_names[l];
}

/* Every change of the lock's state goes through here, to be counted. */
static void set_lock(struct consul_core *c, enum consul_lock to)
{
	if (c->lock != to)
		metrics.lock_transitions[to]++;
	c->lock = to;
}
static const char *const sync_names[] = { "none", "reading", "writing", "synced", "refused" };
static const char *const cluster_names[] = { "unchecked", "creating", "agrees", "differs", "frozen" };

const char *consul_op_name(enum consul_op op)
{
	return (unsigned)op < CONSUL_OP_COUNT ? op_names[op] : "?";
}

/* Consul's plain-text error bodies in a logfmt- and JSON-safe form. Not
 * log_quote: the text is composed into longer messages (last_error, gate
 * reasons) that are quoted or escaped later, so it must need no escaping. */
static void printable(const char *s, size_t n, char *out, size_t cap)
{
	size_t j = 0;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n && j + 4 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[j++] = ch == '"' ? '\'' : ch == '\\' ? '/' : (ch < 0x20 || ch == 0x7F) ? ' ' : (char)ch;
	}
	if (j + 4 >= cap && n > 0) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static uint64_t jitter(struct consul_core *c, uint64_t ms)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return ms / 2 + c->rng % (ms / 2 + 1);
}

static void update_gate(struct consul_core *c);

/* The keys and names of shard k: the one configured, claimed, or (while
 * claiming) the next candidate. */
static void set_shard(struct consul_core *c, unsigned k)
{
	const char *svc = c->cfg->service_name;
	c->shard = k;
	fmt_snprintf(c->service_id, sizeof c->service_id, "%s-shard-%u", svc, k);
	fmt_snprintf(c->lock_key, sizeof c->lock_key, "%s/shards/%u", svc, k);
	shard_kv_prefix(c->prefix, svc, c->generation, k);
}

void consul_core_init(struct consul_core *c, const struct config *cfg, struct store *s,
		      const char *addr, uint64_t seed)
{
	memset(c, 0, sizeof *c);
	c->cfg = cfg;
	c->store = s;
	c->fail_open = cfg->consul_fail_open;
	fmt_snprintf(c->addr, sizeof c->addr, "%s", addr);
	c->claiming = cfg->shard_id == 0;
	c->generation = 1;
	set_shard(c, c->claiming ? 1 : cfg->shard_id);
	fmt_snprintf(c->config_key, sizeof c->config_key, "%s/config", cfg->service_name);
	c->backoff_ms = BACKOFF_MIN_MS;
	c->rng = seed | 1;
	buf_init(&c->body);
	update_gate(c);
}

void consul_core_free(struct consul_core *c)
{
	buf_free(&c->body);
}

/* ---- the gate ---- */

/* Re-evaluates the gate and the store's replication mode. */
static void update_gate(struct consul_core *c)
{
	char p[GATE_REASON_MAX];
	p[0] = '\0';
	/* Fail-open: Consul is down, so nobody can take the shard over through
	 * it; serve from the journal alone (the documented risk: a second
	 * instance of this shard that does reach Consul repeats values). */
	int local = c->fail_open && !c->reachable && c->failures && c->lock != LOCK_ELSEWHERE &&
		    c->sync != SYNC_REFUSED && c->cluster != CLUSTER_MISMATCH;
	if (c->cluster == CLUSTER_MISMATCH)
		fmt_snprintf(p, sizeof p, "%s", c->cluster_problem);
	else if (c->sync == SYNC_REFUSED)
		fmt_snprintf(p, sizeof p, "%s", c->sync_problem);
	else if (c->cluster == CLUSTER_FROZEN && c->lock != LOCK_HELD)
		fmt_snprintf(p, sizeof p, "the cluster is being resharded to %u shards (%s); waiting for the "
			 "new configuration", c->reshard_to, c->config_key);
	else if (c->lock == LOCK_ELSEWHERE && c->claiming)
		fmt_snprintf(p, sizeof p, "SHARD_ID=auto: all %u shards are held by other instances (Consul locks "
			 "%s/shards/1..%u); standing by to claim the first one freed", c->cfg->total_shards,
			 c->cfg->service_name, c->cfg->total_shards);
	else if (c->lock == LOCK_ELSEWHERE)
		fmt_snprintf(p, sizeof p, "shard %u is held by another instance (Consul lock %s)",
			 c->shard, c->lock_key);
	else if (local)
		;
	else if (c->lock == LOCK_LOST)
		fmt_snprintf(p, sizeof p, "lost the Consul lock %s; re-acquiring", c->lock_key);
	else if (c->lock == LOCK_UNKNOWN) {
		char first[200] = "";
		if (c->cluster != CLUSTER_OK)
			fmt_snprintf(first, sizeof first, " (first checking the cluster configuration %s)",
				 c->config_key);
		fmt_snprintf(p, sizeof p, "waiting for the Consul lock %s%s%s", c->lock_key, first,
			 c->reachable || !c->failures ? "" : ": Consul unreachable");
	}
	else if (!c->reachable && c->failures)
		fmt_snprintf(p, sizeof p, "cannot reach Consul to confirm the lock %s: %.200s", c->lock_key,
			 c->last_error);
	else if (c->sync_problem[0])
		fmt_snprintf(p, sizeof p, "%s", c->sync_problem);
	else if (c->sync == SYNC_READING || c->sync == SYNC_NONE)
		fmt_snprintf(p, sizeof p, "reading the shard state from Consul (%s)", c->prefix);
	else if (c->sync == SYNC_WRITING)
		fmt_snprintf(p, sizeof p, "writing the merged shard state to Consul (%s)", c->prefix);
	if (local && c->store->kv->required)
		log_warn("msg=\"Consul unreachable: serving from the local journal alone (CONSUL_FAIL_OPEN)\"");
	store_kv_require(c->store, !local);
	gate_set(p);
	metrics.shard_lock_held = c->lock == LOCK_HELD && !p[0];
	metrics.shard = c->claiming ? 0 : c->shard;
	metrics.generation = c->generation;
	metrics.consul_registered = c->registered;
}

/* ---- requests ---- */

static void req(struct consul_req *r, enum consul_op op, const char *method, const struct buf *body,
		const char *fmt, const char *a, const char *b)
{
	r->op = op;
	r->method = method;
	r->body = body;
	r->timeout_ms = CONSUL_REQUEST_TIMEOUT_MS;
	fmt_snprintf(r->path, sizeof r->path, fmt, a, b);
}

static void build_register(struct consul_core *c)
{
	const struct config *cfg = c->cfg;
	struct buf *b = &c->body;
	char tag[32], check[128];
	b->len = 0;
	fmt_snprintf(tag, sizeof tag, "shard-%u", c->shard);
	fmt_snprintf(check, sizeof check, "http://%s:%u/health", c->addr, cfg->port);
	buf_putc(b, '{');
	json_key(b, "ID");      json_cstr(b, c->service_id);      buf_putc(b, ',');
	json_key(b, "Name");    json_cstr(b, cfg->service_name);  buf_putc(b, ',');
	json_key(b, "Address"); json_cstr(b, c->addr);            buf_putc(b, ',');
	json_key(b, "Port");    buf_u64(b, cfg->port);            buf_putc(b, ',');
	json_key(b, "Tags");    buf_putc(b, '[');  json_cstr(b, tag);  buf_puts(b, "],");
	json_key(b, "Meta");    buf_putc(b, '{');
	json_key(b, "shard_id");     json_u64_str(b, c->shard);          buf_putc(b, ',');
	json_key(b, "total_shards"); json_u64_str(b, cfg->total_shards); buf_putc(b, ',');
	json_key(b, "version");      json_cstr(b, SHARDID_VERSION);
	buf_puts(b, "},");
	json_key(b, "Check");   buf_putc(b, '{');
	json_key(b, "Name");    json_cstr(b, "shardid /health"); buf_putc(b, ',');
	json_key(b, "HTTP");    json_cstr(b, check);             buf_putc(b, ',');
	/* Consul waits a random part of the interval before the first check;
	 * we register only while serving, so start out passing. */
	buf_puts(b, "\"Status\":\"passing\",\"Interval\":\"10s\",\"Timeout\":\"2s\","
		 "\"DeregisterCriticalServiceAfter\":\"1m\"}}");
}

static void build_session(struct consul_core *c)
{
	struct buf *b = &c->body;
	char ttl[16];
	b->len = 0;
	fmt_snprintf(ttl, sizeof ttl, "%us", CONSUL_SESSION_TTL_S);
	buf_putc(b, '{');
	json_key(b, "Name");      json_cstr(b, c->service_id); buf_putc(b, ',');
	json_key(b, "TTL");       json_cstr(b, ttl);           buf_putc(b, ',');
	/* No lock delay: a holder that lost its session cannot write anything
	 * (every write checks the session), so a successor need not wait. Only
	 * the TTL decides: no node checks (Consul's default is serfHealth). */
	buf_puts(b, "\"LockDelay\":\"0s\",\"Behavior\":\"delete\",\"NodeChecks\":[]}");
}

static void build_acquire(struct consul_core *c)
{
	const struct config *cfg = c->cfg;
	struct buf *b = &c->body;
	b->len = 0;
	buf_putc(b, '{');
	json_key(b, "service_id"); json_cstr(b, c->service_id); buf_putc(b, ',');
	json_key(b, "address");    json_cstr(b, c->addr);       buf_putc(b, ',');
	json_key(b, "port");       buf_u64(b, cfg->port);       buf_putc(b, ',');
	json_key(b, "pid");        buf_u64(b, (uint64_t)getpid()); buf_putc(b, ',');
	json_key(b, "shard");      buf_u64(b, c->shard);        buf_putc(b, ',');
	json_key(b, "version");    json_cstr(b, SHARDID_VERSION);
	buf_putc(b, '}');
}

static int next_sync(struct consul_core *c, uint64_t mono, struct consul_req *r)
{
	if (mono < c->sync_at)
		return 0;
	if (c->sync == SYNC_READING) {
		if (c->page == -2) {
			req(r, CONSUL_READ_IDENTITY, "GET", NULL, "/v1/kv/%sidentity?consistent", c->prefix, "");
		} else if (c->page == -1) {
			req(r, CONSUL_READ_FENCE, "GET", NULL, "/v1/kv/%sfence?consistent", c->prefix, "");
		} else {
			char hex[2] = { lex_hexdigit(c->page), 0 };
			req(r, CONSUL_READ_PAGE, "GET", NULL, "/v1/kv/%se/%s?recurse&consistent", c->prefix, hex);
		}
		return 1;
	}
	if ((c->sync == SYNC_WRITING || c->sync == SYNC_DONE) && mono >= c->txn_at) {
		struct shard_kv_guard g = { c->lock_key, c->session, c->config_key, c->config_index };
		c->body.len = 0;
		if (!store_kv_txn(c->store, &c->body, c->prefix, &g))
			return 0;
		req(r, CONSUL_TXN, "PUT", &c->body, "/v1/txn", "", "");
		return 1;
	}
	return 0;
}

int consul_core_next(struct consul_core *c, uint64_t mono, struct consul_req *r)
{
	if (mono < c->retry_at)
		return 0;
	if (c->session[0] && mono >= c->renew_at) {
		req(r, CONSUL_RENEW, "PUT", NULL, "/v1/session/renew/%s", c->session, "");
		return 1;
	}
	if (!c->session[0]) {
		if (mono < c->session_at)
			return 0;
		build_session(c);
		req(r, CONSUL_SESSION, "PUT", &c->body, "/v1/session/create", "", "");
		return 1;
	}
	if (c->release) {
		req(r, CONSUL_RELEASE, "PUT", NULL, "/v1/kv/%s?release=%s", c->lock_key, c->session);
		return 1;
	}
	if (c->cluster != CLUSTER_OK) {
		if (mono < c->config_at)
			return 0;
		if (c->cluster == CLUSTER_CREATE) {
			struct shard_kv_cluster mine = { .total = c->cfg->total_shards, .generation = 1 };
			char text[SHARD_KV_CONFIG_MAX];
			fmt_snprintf(mine.layout, sizeof mine.layout, "%s", c->cfg->layout.name);
			size_t n = shard_kv_config(text, &mine);
			c->body.len = 0;
			buf_append(&c->body, text, n);
			req(r, CONSUL_CREATE_CONFIG, "PUT", &c->body, "/v1/kv/%s?cas=0", c->config_key, "");
		} else {
			req(r, CONSUL_READ_CONFIG, "GET", NULL, "/v1/kv/%s?consistent", c->config_key, "");
		}
		return 1;
	}
	if (c->lock != LOCK_HELD) {
		if (mono < c->acquire_at)
			return 0;
		build_acquire(c);
		req(r, CONSUL_ACQUIRE, "PUT", &c->body, "/v1/kv/%s?acquire=%s", c->lock_key, c->session);
		return 1;
	}
	if (next_sync(c, mono, r))
		return 1;
	/* Only a serving holder is advertised: a standby with the same service
	 * ID would replace or clear the holder's registration. Consul keeps
	 * the check status of an entry registered again under the same ID, so
	 * a predecessor's (a crashed holder's) entry is removed first: the new
	 * one starts out passing instead of inheriting "critical". */
	if (!c->registered && !gate_problem() && mono >= c->register_at) {
		if (c->cleared) {
			build_register(c);
			req(r, CONSUL_REGISTER, "PUT", &c->body, "/v1/agent/service/register", "", "");
		} else {
			req(r, CONSUL_CLEAR, "PUT", NULL, "/v1/agent/service/deregister/%s", c->service_id, "");
		}
		return 1;
	}
	if (c->registered && mono >= c->verify_at) {
		req(r, CONSUL_VERIFY, "GET", NULL, "/v1/agent/service/%s", c->service_id, "");
		return 1;
	}
	/* An idle holder writes nothing that a reshard's freeze would fail:
	 * it looks, so that it stops within seconds of the switch. */
	if (mono >= c->config_at) {
		req(r, CONSUL_READ_CONFIG, "GET", NULL, "/v1/kv/%s?consistent", c->config_key, "");
		return 1;
	}
	return 0;
}

int consul_core_next_watch(struct consul_core *c, uint64_t mono, struct consul_req *r)
{
	/* A claiming standby asks every shard in turn instead. */
	if (c->watching || c->claiming || c->lock != LOCK_ELSEWHERE || mono < c->watch_at)
		return 0;
	char q[64];
	fmt_snprintf(q, sizeof q, "?index=%llu&wait=%us", (unsigned long long)c->watch_index,
		 CONSUL_WATCH_WAIT_S);
	req(r, CONSUL_WATCH, "GET", NULL, "/v1/kv/%s%s", c->lock_key, q);
	/* Consul adds up to wait/16 of jitter to a blocking query. */
	r->timeout_ms = CONSUL_WATCH_WAIT_S * 1000 + CONSUL_WATCH_WAIT_S * 1000 / 16 + CONSUL_REQUEST_TIMEOUT_MS;
	c->watching = 1;
	return 1;
}

/* ---- answers ---- */

/* 4xx (and other unexpected answers): Consul is up but refuses; retry slowly. */
static void refused(struct consul_core *c, enum consul_op op, const struct consul_answer *a,
		    uint64_t *at, uint64_t mono, uint64_t retry_ms)
{
	char body[240];
	printable(a->body, a->body_len, body, sizeof body);
	fmt_snprintf(c->last_error, sizeof c->last_error, "%s: HTTP %d: %s", op_names[op], a->status, body);
	log_warn("msg=\"Consul refused a request\" op=%s status=%d body=\"%s\" retry_in_s=%llu",
		 op_names[op], a->status, body, (unsigned long long)(retry_ms / 1000));
	*at = mono + retry_ms;
}

/* Transport error or 5xx: back off (capped, jittered) before anything else. */
static void failed(struct consul_core *c, enum consul_op op, const struct consul_answer *a, uint64_t mono)
{
	char why[240];
	if (a->status == 0) {
		fmt_snprintf(why, sizeof why, "%s", a->error);
	} else {
		char body[200];
		printable(a->body, a->body_len, body, sizeof body);
		fmt_snprintf(why, sizeof why, "HTTP %d: %s", a->status, body);
	}
	fmt_snprintf(c->last_error, sizeof c->last_error, "%s: %s", op_names[op], why);
	uint64_t delay = jitter(c, c->backoff_ms);
	/* A live session must not lapse while we wait out the backoff. */
	if (c->session[0] && delay > CONSUL_RENEW_MS)
		delay = CONSUL_RENEW_MS;
	c->retry_at = mono + delay;
	c->failures++;
	if (c->failures == 1 || c->failures % 10 == 0)
		log_warn("msg=\"Consul request failed; retrying\" op=%s error=\"%s\" failures=%u retry_in_ms=%llu",
			 op_names[op], why, c->failures, (unsigned long long)delay);
	else
		log_debug("msg=\"Consul request failed; retrying\" op=%s error=\"%s\" failures=%u retry_in_ms=%llu",
			  op_names[op], why, c->failures, (unsigned long long)delay);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	if (a->status == 0)
		c->reachable = 0;
	/* Consul answers 500 "invalid session" once the session is gone. */
	if (op == CONSUL_ACQUIRE && a->status >= 500 && lex_find(a->body, a->body_len, "session", 7)) {
		log_warn("msg=\"Consul rejected the session; creating a new one\" session=%s", c->session);
		c->session[0] = '\0';
		c->session_at = 0;
	}
}

/* The start of the body is `word` (Consul writes true/false plus a newline). */
static int body_is(const struct consul_answer *a, const char *word)
{
	size_t n = strlen(word);
	return a->body_len >= n && memcmp(a->body, word, n) == 0 &&
	       (a->body_len == n || a->body[n] == '\n' || a->body[n] == '\r' || a->body[n] == ' ');
}

/* Not the holder any more: serve nothing, advertise nothing, and read the
 * state again after the next acquisition. */
static void drop_lock(struct consul_core *c, enum consul_lock to)
{
	if (c->lock == LOCK_HELD)
		c->registered = c->cleared = 0;
	set_lock(c, to);
	c->sync = SYNC_NONE;
}

static void lose_session(struct consul_core *c, uint64_t mono)
{
	c->session[0] = '\0';
	c->release = 0;   /* gone with the session */
	c->session_at = mono;
	if (c->lock == LOCK_HELD) {
		log_warn("msg=\"shard lock lost: the Consul session is gone (expired, destroyed or the agent lost its state)\" key=%s",
			 c->lock_key);
		drop_lock(c, LOCK_LOST);
	}
}

static void start_sync(struct consul_core *c, uint64_t mono)
{
	c->sync = SYNC_READING;
	c->page = -2;
	c->sync_at = mono;
	c->sync_problem[0] = '\0';
	store_kv_read_begin(c->store);
}

/* Keeps why the instance refuses to serve, logging it when it is new. */
static void set_problem(char problem[GATE_REASON_MAX], const char *why)
{
	if (strcmp(problem, why) != 0)
		log_error("msg=\"refusing to serve\" reason=\"%s\"", why);
	fmt_snprintf(problem, GATE_REASON_MAX, "%s", why);
}

/* A state that cannot be used as read: serve nothing, read again later. */
static void refuse_state(struct consul_core *c, uint64_t mono, const char *why)
{
	set_problem(c->sync_problem, why);
	c->sync = SYNC_REFUSED;
	c->sync_at = mono + RESYNC_RETRY_MS;
}

/* The merged state is in KV once nothing waits to be written: serve. */
static void synced_when_written(struct consul_core *c)
{
	if (c->sync == SYNC_WRITING && !store_kv_pending(c->store)) {
		c->sync = SYNC_DONE;
		log_info("msg=\"shard state in Consul is up to date; serving\" key=%s", c->prefix);
	}
}

struct read_ctx {
	struct consul_core *c;
	enum consul_op op;
	char err[200];
	char val[SHARD_KV_IDENTITY_MAX];   /* identity or fence */
	size_t val_len;
	int found;
};

static int on_kv(void *ud, const char *key, size_t key_len, const char *val, size_t val_len)
{
	struct read_ctx *x = ud;
	struct consul_core *c = x->c;
	size_t pl = strlen(c->prefix);
	if (key_len < pl || memcmp(key, c->prefix, pl) != 0)
		return 0;   /* not ours (a listing is by prefix) */
	if (x->op != CONSUL_READ_PAGE) {
		/* identity and fence: one key each, small */
		x->found = 1;
		x->val_len = val_len < sizeof x->val ? val_len : sizeof x->val;
		memcpy(x->val, val, x->val_len);
		return 0;
	}
	if (key_len != pl + 5 || memcmp(key + pl, "e/", 2) != 0)
		return 0;
	if (store_kv_read_bucket(c->store, val, val_len, x->err, sizeof x->err) != 0)
		return -1;
	return 0;
}

static void read_answer(struct consul_core *c, enum consul_op op, const struct consul_answer *a,
			uint64_t mono)
{
	struct read_ctx x = { .c = c, .op = op };
	char why[GATE_REASON_MAX + 200];
	if (a->status != 200 && a->status != 404) {
		char body[160];
		printable(a->body, a->body_len, body, sizeof body);
		fmt_snprintf(c->sync_problem, sizeof c->sync_problem,
			 "Consul refused to read the shard state (%s): HTTP %d: %s", c->prefix, a->status, body);
		refused(c, op, a, &c->sync_at, mono, WRITE_RETRY_MS);
		return;
	}
	c->sync_problem[0] = '\0';
	int rc = a->status == 404 ? 0 :
		 shard_kv_parse_listing(a->body, a->body_len, on_kv, &x, x.err, sizeof x.err);
	if (rc < 0) {
		fmt_snprintf(why, sizeof why, "the shard state in Consul (%s) cannot be used: %s", c->prefix, x.err);
		refuse_state(c, mono, why);
		return;
	}
	if (op == CONSUL_READ_IDENTITY) {
		const char *mine = c->store->identity;
		if (x.found && (x.val_len != strlen(mine) || memcmp(x.val, mine, x.val_len) != 0)) {
			fmt_snprintf(why, sizeof why, "shard identity in Consul (%sidentity: %.*s) differs from this instance's (%s)",
				 c->prefix, (int)(x.val_len > 100 ? 100 : x.val_len), x.val, mine);
			refuse_state(c, mono, why);
			return;
		}
		c->store->kv->identity_ok = x.found;
	} else if (op == CONSUL_READ_FENCE) {
		uint64_t fence = 0;
		if (x.found && parse_u64(x.val, x.val_len, &fence) != 0) {
			fmt_snprintf(why, sizeof why, "the snowflake fence in Consul (%sfence) is not a decimal tick", c->prefix);
			refuse_state(c, mono, why);
			return;
		}
		store_merge_fence(c->store, fence);
	}
	if (++c->page < SHARD_KV_PAGES)
		return;
	if (store_kv_read_end(c->store) != 0) {
		refuse_state(c, mono, "cannot journal the shard state merged from Consul");
		return;
	}
	c->sync = SYNC_WRITING;
	log_info("msg=\"shard state read from Consul\" key=%s entities=%zu", c->prefix, c->store->count);
	synced_when_written(c);
}

static void txn_answer(struct consul_core *c, const struct consul_answer *a, uint64_t mono)
{
	if (a->status == 200) {
		metrics.kv_txns++;
		store_kv_txn_done(c->store, 1);
		c->sync_problem[0] = '\0';
		synced_when_written(c);
		return;
	}
	metrics.kv_txn_failures++;
	store_kv_txn_done(c->store, 0);
	int failed_op = a->status == 409 ? shard_kv_txn_failed_op(a->body, a->body_len) : -1;
	if (failed_op == 0) {
		log_warn("msg=\"shard lock lost: a state write failed its session check\" key=%s", c->lock_key);
		drop_lock(c, LOCK_LOST);
		c->acquire_at = mono;
		return;
	}
	if (failed_op == 1) {
		/* A reshard froze the cluster (or finished): nothing more is
		 * reserved until the configuration is read again. */
		log_warn("msg=\"the cluster configuration changed; reading it again before any further write\" key=%s",
			 c->config_key);
		c->cluster = CLUSTER_UNCHECKED;
		c->config_at = mono;
		return;
	}
	char body[160];
	printable(a->body, a->body_len, body, sizeof body);
	fmt_snprintf(c->sync_problem, sizeof c->sync_problem,
		 "Consul refused to write the shard state (%s): HTTP %d: %s", c->prefix, a->status, body);
	refused(c, CONSUL_TXN, a, &c->txn_at, mono, WRITE_RETRY_MS);
}

/* Clearing, registering and verifying the service registration. */
static void registration_answer(struct consul_core *c, enum consul_op op,
				const struct consul_answer *a, uint64_t mono)
{
	switch (op) {
	case CONSUL_CLEAR:
		/* 404: nothing to clear. Anything else: register regardless. */
		if (a->status != 200 && a->status != 404)
			refused(c, op, a, &c->register_at, mono, 0);
		c->cleared = 1;
		break;
	case CONSUL_REGISTER:
		if (a->status != 200) {
			refused(c, op, a, &c->register_at, mono, CLIENT_ERROR_RETRY_MS);
			break;
		}
		c->registered = 1;
		c->verify_at = mono + VERIFY_EVERY_MS;
		log_info("msg=\"registered in Consul\" service_id=%s address=%s port=%u",
			 c->service_id, c->addr, c->cfg->port);
		break;
	default:   /* CONSUL_VERIFY */
		if (a->status == 200) {
			c->verify_at = mono + VERIFY_EVERY_MS;
		} else if (a->status == 404) {
			log_warn("msg=\"registration missing in Consul (agent restarted?); registering again\" service_id=%s",
				 c->service_id);
			c->registered = c->cleared = 0;
			c->register_at = mono;
		} else {
			refused(c, op, a, &c->verify_at, mono, CLIENT_ERROR_RETRY_MS);
		}
		break;
	}
}

static void session_answer(struct consul_core *c, const struct consul_answer *a, uint64_t mono)
{
	struct json_object o;
	char err[120];
	const struct json_field *id = NULL;
	if (a->status != 200) {
		refused(c, CONSUL_SESSION, a, &c->session_at, mono, CLIENT_ERROR_RETRY_MS);
		return;
	}
	if (json_parse_object(a->body, a->body_len, &o, err, sizeof err) == 0)
		id = json_get(&o, "ID");
	if (!id || id->type != JSON_STRING || id->str_len == 0 ||
	    id->str_len >= sizeof c->session || strspn(id->str, "0123456789abcdefABCDEF-") != id->str_len) {
		refused(c, CONSUL_SESSION, a, &c->session_at, mono, BACKOFF_MAX_MS);
		return;
	}
	memcpy(c->session, id->str, id->str_len + 1);
	c->acquire_at = mono;
	c->renew_at = mono + CONSUL_RENEW_MS;
	log_info("msg=\"Consul session created\" session=%s ttl_s=%u", c->session, CONSUL_SESSION_TTL_S);
}

/* SHARD_ID=auto got the lock of c->shard: the instance becomes that shard. */
static void claimed(struct consul_core *c, uint64_t mono)
{
	c->claiming = 0;
	log_info("msg=\"SHARD_ID=auto: claimed shard %u\" key=%s", c->shard, c->lock_key);
	if (!c->claim || c->claim(c->claim_ud, c->shard) != 0)
		refuse_state(c, mono, "cannot journal the identity of the claimed shard");
}

/* SHARD_ID=auto found c->shard held: the next one now, or after a pause
 * once every shard was tried. */
static void claim_next(struct consul_core *c, uint64_t mono)
{
	if (c->shard < c->cfg->total_shards) {
		set_shard(c, c->shard + 1);
		c->acquire_at = mono;
		return;
	}
	if (c->lock != LOCK_ELSEWHERE)
		log_warn("msg=\"SHARD_ID=auto: every shard is held; standing by\" shards=%u", c->shard);
	drop_lock(c, LOCK_ELSEWHERE);
	set_shard(c, 1);
	c->acquire_at = mono + ACQUIRE_EVERY_MS;
}

static void acquire_answer(struct consul_core *c, const struct consul_answer *a, uint64_t mono)
{
	if (a->status == 200 && body_is(a, "true")) {
		log_info("msg=\"shard lock acquired; reading the shard state\" key=%s session=%s",
			 c->lock_key, c->session);
		set_lock(c, LOCK_HELD);
		metrics.lock_confirmed_ms = mono;
		start_sync(c, mono);
		if (c->claiming)
			claimed(c, mono);
	} else if (a->status == 200 && body_is(a, "false") && c->claiming) {
		claim_next(c, mono);
	} else if (a->status == 200 && body_is(a, "false")) {
		if (c->lock != LOCK_ELSEWHERE)
			log_warn("msg=\"shard lock is held by another instance; standing by\" key=%s",
				 c->lock_key);
		drop_lock(c, LOCK_ELSEWHERE);
		c->acquire_at = mono + ACQUIRE_EVERY_MS;
	} else {
		refused(c, CONSUL_ACQUIRE, a, &c->acquire_at, mono, CLIENT_ERROR_RETRY_MS);
	}
}

/* Stands aside (the gate says why) and reads the configuration again soon:
 * an operator may correct either side, or a reshard under way end. A
 * holder stops serving at once and gives its lock up for the shard's
 * holder under the cluster's configuration. */
static void cluster_mismatch(struct consul_core *c, uint64_t mono, const char *why)
{
	set_problem(c->cluster_problem, why);
	c->cluster = CLUSTER_MISMATCH;
	c->config_at = mono + CONFIG_RECHECK_MS;
	if (c->lock == LOCK_HELD) {
		drop_lock(c, LOCK_UNKNOWN);
		c->release = 1;
	}
}

/* The configuration read agrees with this instance's: frozen by a reshard
 * under way (serve what is reserved, ask again soon), or in force; a new
 * generation's state lives under a new prefix, read again if held. */
static void cluster_agrees(struct consul_core *c, uint64_t mono, const struct shard_kv_cluster *k,
			   uint64_t index)
{
	c->config_index = index;
	c->cluster_problem[0] = '\0';
	c->acquire_at = mono;
	if (k->reshard_to) {
		if (c->cluster != CLUSTER_FROZEN)
			log_warn("msg=\"cluster frozen by a reshard under way: serving what is reserved, reserving nothing\" key=%s reshard_to=%u",
				 c->config_key, k->reshard_to);
		c->cluster = CLUSTER_FROZEN;
		c->reshard_to = k->reshard_to;
		c->config_at = mono + CONFIG_RECHECK_MS;
		return;
	}
	if (c->cluster != CLUSTER_OK)
		log_info("msg=\"cluster configuration agrees\" key=%s generation=%llu",
			 c->config_key, (unsigned long long)k->generation);
	c->cluster = CLUSTER_OK;
	c->reshard_to = 0;
	c->config_at = mono + CONFIG_VERIFY_MS;
	if (k->generation != c->generation) {
		c->generation = k->generation;
		set_shard(c, c->shard);
		if (c->lock == LOCK_HELD)
			start_sync(c, mono);
	}
}

static void config_answer(struct consul_core *c, enum consul_op op, const struct consul_answer *a,
			  uint64_t mono)
{
	struct shard_kv_cluster k;
	char err[120], why[GATE_REASON_MAX], val[SHARD_KV_CONFIG_MAX];
	size_t val_len = 0;
	if (op == CONSUL_CREATE_CONFIG && a->status == 200) {
		/* true: read it back for its index; false: another instance
		 * created it first, read what it wrote. */
		if (body_is(a, "true"))
			log_info("msg=\"cluster configuration created in Consul\" key=%s", c->config_key);
		c->cluster = CLUSTER_UNCHECKED;
		c->config_at = mono;
		return;
	}
	if (op != CONSUL_READ_CONFIG || (a->status != 404 && a->status != 200)) {
		refused(c, op, a, &c->config_at, mono, CLIENT_ERROR_RETRY_MS);
		return;
	}
	int found = a->status == 200 ? shard_kv_listing_value(a->body, a->body_len, c->config_key, val,
							      sizeof val, &val_len, err, sizeof err) : 0;
	if (found < 0) {
		fmt_snprintf(why, sizeof why, "the cluster configuration in Consul (%s) cannot be read: %s",
			 c->config_key, err);
		cluster_mismatch(c, mono, why);
		return;
	}
	if (!found) {
		c->cluster = CLUSTER_CREATE;
		c->config_at = mono;
		return;
	}
	int shown = (int)(val_len > 160 ? 160 : val_len);
	if (shard_kv_config_parse(val, val_len, &k) != 0) {
		fmt_snprintf(why, sizeof why, "the cluster configuration in Consul (%s: %.*s) is malformed: "
			 "it needs totalShards=N and layout=L", c->config_key, shown, val);
		cluster_mismatch(c, mono, why);
		return;
	}
	if (k.total != c->cfg->total_shards || strcmp(k.layout, c->cfg->layout.name) != 0) {
		fmt_snprintf(why, sizeof why, "the cluster configuration in Consul (%s: %.*s) differs from this "
			 "instance's (totalShards=%u layout=%s); start it with the cluster's TOTAL_SHARDS and "
			 "SNOWFLAKE_LAYOUT", c->config_key, shown, val, c->cfg->total_shards,
			 c->cfg->layout.name);
		cluster_mismatch(c, mono, why);
		return;
	}
	cluster_agrees(c, mono, &k, a->index);
}

/* The lock given up after the configuration changed. */
static void release_answer(struct consul_core *c, const struct consul_answer *a, uint64_t mono)
{
	if (a->status == 200) {
		c->release = 0;
		log_info("msg=\"shard lock released for the cluster's configuration\" key=%s", c->lock_key);
	} else {
		refused(c, CONSUL_RELEASE, a, &c->retry_at, mono, WRITE_RETRY_MS);
		c->release = a->status != 404;   /* 404: nothing to release */
	}
}

static void answered(struct consul_core *c, enum consul_op op, const struct consul_answer *a, uint64_t mono)
{
	switch (op) {
	case CONSUL_NONE:
	case CONSUL_RESOLVE:
	case CONSUL_WATCH:
	case CONSUL_OP_COUNT:
		break;
	case CONSUL_CLEAR:
	case CONSUL_REGISTER:
	case CONSUL_VERIFY:
		registration_answer(c, op, a, mono);
		break;
	case CONSUL_SESSION:
		session_answer(c, a, mono);
		break;
	case CONSUL_ACQUIRE:
		acquire_answer(c, a, mono);
		break;
	case CONSUL_RENEW:
		if (a->status == 200) {
			c->renew_at = mono + CONSUL_RENEW_MS;
			/* The session lives, and with it the lock it holds. */
			if (c->lock == LOCK_HELD)
				metrics.lock_confirmed_ms = mono;
		}
		else if (a->status == 404)
			lose_session(c, mono);
		else
			refused(c, op, a, &c->renew_at, mono, CONSUL_RENEW_MS);
		break;
	case CONSUL_READ_IDENTITY:
	case CONSUL_READ_FENCE:
	case CONSUL_READ_PAGE:
		if (c->lock == LOCK_HELD && c->sync == SYNC_READING)
			read_answer(c, op, a, mono);
		break;
	case CONSUL_TXN:
		txn_answer(c, a, mono);
		break;
	case CONSUL_READ_CONFIG:
	case CONSUL_CREATE_CONFIG:
		config_answer(c, op, a, mono);
		break;
	case CONSUL_RELEASE:
		release_answer(c, a, mono);
		break;
	}
}

static void watch_answer(struct consul_core *c, const struct consul_answer *a, uint64_t mono)
{
	c->watching = 0;
	if (a->status != 200 && a->status != 404) {
		c->watch_at = mono + WATCH_RETRY_MS;
		c->watch_index = 0;
		return;
	}
	/* The index only grows; a smaller one means Consul's state was reset. */
	c->watch_index = a->index >= c->watch_index ? a->index : 0;
	c->watch_at = mono;
	if (a->status == 404 || !lex_find(a->body, a->body_len, "\"Session\"", 9))
		c->acquire_at = mono;   /* free: ask for it now */
}

void consul_core_answer(struct consul_core *c, enum consul_op op, uint64_t mono,
			const struct consul_answer *a)
{
	if ((unsigned)op < CONSUL_OP_COUNT) {
		metrics.consul_requests[op]++;
		/* 404 answers a read or a renewal; anything else 4xx is a refusal. */
		metrics.consul_failures[op] += a->status == 0 || (a->status >= 400 && a->status != 404);
	}
	if (op == CONSUL_WATCH) {
		watch_answer(c, a, mono);
		return;
	}
	c->op = CONSUL_NONE;
	if (op == CONSUL_TXN && (a->status == 0 || a->status >= 500)) {
		metrics.kv_txn_failures++;
		store_kv_txn_done(c->store, 0);
	}
	if (a->status == 0 || a->status >= 500) {
		failed(c, op, a, mono);
	} else {
		if (c->failures)
			log_info("msg=\"Consul reachable again\" after_failures=%u", c->failures);
		c->failures = 0;
		c->reachable = 1;
		c->backoff_ms = BACKOFF_MIN_MS;
		c->last_error[0] = '\0';
		answered(c, op, a, mono);
	}
	/* A refused state that waited long enough is read again. */
	if (c->sync == SYNC_REFUSED && c->lock == LOCK_HELD && mono >= c->sync_at)
		start_sync(c, mono);
	update_gate(c);
}

void consul_core_health(const struct consul_core *c, struct buf *b)
{
	buf_putc(b, ',');
	json_key(b, "consul");
	buf_putc(b, '{');
	json_key(b, "registered");
	buf_puts(b, c->registered ? "true," : "false,");
	json_key(b, "lock");
	json_cstr(b, lock_names[c->lock]);
	buf_putc(b, ',');
	json_key(b, "state");
	json_cstr(b, sync_names[c->sync]);
	buf_putc(b, ',');
	json_key(b, "cluster");
	json_cstr(b, cluster_names[c->cluster]);
	buf_putc(b, ',');
	json_key(b, "generation");
	buf_u64(b, c->generation);
	buf_putc(b, ',');
	json_key(b, "reachable");
	buf_puts(b, c->reachable ? "true," : "false,");
	json_key(b, "failOpen");
	buf_puts(b, c->fail_open ? "true" : "false");
	if (c->last_error[0]) {
		buf_putc(b, ',');
		json_key(b, "lastError");
		json_cstr(b, c->last_error);
	}
	buf_putc(b, '}');
}
