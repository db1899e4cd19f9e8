/* Unit tests for consul_core.c, the pure state machine behind the Consul
 * client: it is driven with consul_core_next / consul_core_next_watch and
 * fabricated answers, over a memory-only store with replication on. Covers
 * session -> lock -> reading identity, fence and 16 pages -> txn -> gate
 * open; a lock lost in a txn (409 session check), a refused txn (403), a
 * renewal that fails (transport error, 404), an identity or state that
 * cannot be used, fail-open mode, and the standby's watch. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check.h"
#include "config.h"
#include "consul_core.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "shard_kv.h"
#include "store.h"
#include "store_kv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID   "5a4b3c2d-0000-1111-2222-333344445555"
#define SID2  "6b5c4d3e-aaaa-bbbb-cccc-ddddeeeeffff"
#define LOCKK "svc/shards/2"
#define PFX   "svc/shards/2/"

static struct config cfg;
static struct store st;
static struct consul_core c;
static struct consul_req q;
static uint64_t now;

static void setup_with(int fail_open, const char *shard_flag);

static void setup(int fail_open)
{
	setup_with(fail_open, "--shard=2");
}

static void setup_with(int fail_open, const char *shard_flag)
{
	static const char *const env[] = {
		"SERVICE_PORT", "BIND_ADDR", "SHARD_ID", "TOTAL_SHARDS", "DATA_DIR", "SNOWFLAKE_LAYOUT",
		"MACHINE_ID", "DEFAULT_DATA_TYPE", "MAX_BATCH_SIZE", "CONSUL_URL", "CONSUL_HTTP_TOKEN",
		"SERVICE_NAME", "CONTAINER_IP", "ADMIN_TOKEN", "LOG_LEVEL", "MAX_CONNECTIONS",
		"CONSUL_FAIL_OPEN", "ACCESS_LOG",
	};
	for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
		unsetenv(env[i]);
	char *argv[] = { "shardid", "--consul-url=http://127.0.0.1:8500", "--service-name=svc",
			 (char *)shard_flag, "--total-shards=3", "--port=7001",
			 fail_open ? "--consul-fail-open" : NULL, NULL };
	char err[512];
	if (config_load(&cfg, fail_open ? 7 : 6, argv, err, sizeof err) != CONFIG_OK) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	log_set_level(-1);   /* quiet: the core logs every transition */
	if (store_open(&st, NULL, cfg.shard_id, cfg.total_shards, &cfg.layout, cfg.machine_id,
		       err, sizeof err) != 0 || store_kv_enable(&st) != 0) {
		fprintf(stderr, "store: %s\n", err);
		exit(1);
	}
	now = 1000;
	consul_core_init(&c, &cfg, &st, "10.1.2.3", 42);
}

static void teardown(void)
{
	consul_core_free(&c);
	store_close(&st);
}

static int gate_says(const char *part)
{
	const char *p = gate_problem();
	if (p && strstr(p, part))
		return 1;
	fprintf(stderr, "  gate: \"%s\", expected it to mention \"%s\"\n", p ? p : "(open)", part);
	return 0;
}

/* The request due now: its op, or CONSUL_NONE. */
static enum consul_op next(void)
{
	memset(&q, 0, sizeof q);
	return consul_core_next(&c, now, &q) ? q.op : CONSUL_NONE;
}

static int expect(enum consul_op op, const char *method, const char *path)
{
	enum consul_op got = next();
	if (got != op || (got != CONSUL_NONE && (strcmp(q.method, method) != 0 ||
						 (path && strcmp(q.path, path) != 0)))) {
		fprintf(stderr, "  at %llu: got %s %s %s, expected %s %s %s\n", (unsigned long long)now,
			consul_op_name(got), got ? q.method : "", got ? q.path : "", consul_op_name(op),
			method, path ? path : "");
		return 0;
	}
	return 1;
}
#define EXPECT(op, m, p) CHECK(expect((op), (m), (p)))

static int body_has(const char *part)
{
	if (q.body && q.body->data && memmem(q.body->data, q.body->len, part, strlen(part)))
		return 1;
	fprintf(stderr, "  request body lacks \"%s\": %.*s\n", part,
		q.body ? (int)q.body->len : 0, q.body && q.body->data ? q.body->data : "");
	return 0;
}

static void answer_idx(enum consul_op op, int status, const char *body, uint64_t index)
{
	struct consul_answer a = { status, status ? body : "", status ? strlen(body) : 0,
				   status ? NULL : body, index };
	consul_core_answer(&c, op, now, &a);
}

static void answer(enum consul_op op, int status, const char *body)
{
	answer_idx(op, status, body, 0);
}

/* A listing of one key, as Consul answers a GET on it. */
static const char *listing(const char *key, const char *val)
{
	static struct buf b;
	b.len = 0;
	buf_puts(&b, "[{\"LockIndex\":0,\"Key\":\"");
	buf_puts(&b, key);
	buf_puts(&b, "\",\"Flags\":0,\"Value\":\"");
	shard_kv_base64(&b, val, strlen(val));
	buf_puts(&b, "\",\"CreateIndex\":21,\"ModifyIndex\":37}]");
	buf_putc(&b, '\0');
	return b.data;
}

#define CONFIGK "svc/config"
#define MY_CONFIG "totalShards=3 layout=sonyflake generation=1"
#define CONFIG_INDEX 37   /* the configuration's ModifyIndex, as X-Consul-Index says it */

/* The cluster configuration read after the session: it agrees. */
static void agree_config(void)
{
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, MY_CONFIG), CONFIG_INDEX);
}

/* Session and lock. */
static void acquire(const char *sid)
{
	char body[128], path[160];
	EXPECT(CONSUL_SESSION, "PUT", "/v1/session/create");
	snprintf(body, sizeof body, "{\"ID\":\"%s\"}", sid);
	answer(CONSUL_SESSION, 200, body);
	if (c.cluster != CLUSTER_OK)   /* checked once, before the first lock */
		agree_config();
	snprintf(path, sizeof path, "/v1/kv/" LOCKK "?acquire=%s", sid);
	EXPECT(CONSUL_ACQUIRE, "PUT", path);
	answer(CONSUL_ACQUIRE, 200, "true\n");
}

/* Reads the state: identity, fence, 16 pages; NULL answers 404. The gate
 * stays closed throughout. Returns how often it was seen open. */
static unsigned read_state(const char *identity, const char *fence, const char *const pages[16])
{
	unsigned open = 0;
	EXPECT(CONSUL_READ_IDENTITY, "GET", "/v1/kv/" PFX "identity?consistent");
	open += gate_problem() == NULL;
	if (identity)
		answer(CONSUL_READ_IDENTITY, 200, listing(PFX "identity", identity));
	else
		answer(CONSUL_READ_IDENTITY, 404, "");
	open += gate_problem() == NULL;
	EXPECT(CONSUL_READ_FENCE, "GET", "/v1/kv/" PFX "fence?consistent");
	if (fence)
		answer(CONSUL_READ_FENCE, 200, listing(PFX "fence", fence));
	else
		answer(CONSUL_READ_FENCE, 404, "");
	for (int p = 0; p < 16; p++) {
		char path[128];
		open += gate_problem() == NULL;
		snprintf(path, sizeof path, "/v1/kv/" PFX "e/%x?recurse&consistent", p);
		EXPECT(CONSUL_READ_PAGE, "GET", path);
		if (pages && pages[p])
			answer(CONSUL_READ_PAGE, 200, pages[p]);
		else
			answer(CONSUL_READ_PAGE, 404, "");
		if (p < 15)
			open += gate_problem() == NULL;
	}
	return open;
}

static const char txn_head[] =
	"[{\"KV\":{\"Verb\":\"check-session\",\"Key\":\"" LOCKK "\",\"Session\":\"";

/* q is a txn with the session check of sid first, then the check of the
 * configuration's index as last read. */
static int txn_body_ok(const char *sid)
{
	char index_check[160];
	size_t hl = strlen(txn_head), sl = strlen(sid);
	size_t il = (size_t)snprintf(index_check, sizeof index_check,
				     "\"}},{\"KV\":{\"Verb\":\"check-index\",\"Key\":\"" CONFIGK "\",\"Index\":%llu}}",
				     (unsigned long long)c.config_index);
	if (!q.body || q.body->len < hl + sl + il || memcmp(q.body->data, txn_head, hl) != 0 ||
	    memcmp(q.body->data + hl, sid, sl) != 0 || memcmp(q.body->data + hl + sl, index_check, il) != 0) {
		fprintf(stderr, "  txn body: %.*s\n", q.body ? (int)q.body->len : 0, q.body ? q.body->data : "");
		return 0;
	}
	return 1;
}

/* The txn due now (building it puts its writes in flight). */
static int expect_txn(const char *sid)
{
	return expect(CONSUL_TXN, "PUT", "/v1/txn") && txn_body_ok(sid);
}

/* From nothing to serving against an empty KV. */
static void to_serving(const char *sid)
{
	acquire(sid);
	CHECK_EQ_U64(read_state(NULL, NULL, NULL), 0);
	CHECK(gate_says("writing the merged shard state to Consul (" PFX ")"));
	CHECK(expect_txn(sid));
	CHECK(body_has("\"Key\":\"" PFX "identity\""));
	answer(CONSUL_TXN, 200, "{\"Results\":[],\"Errors\":null}");
	CHECK(gate_problem() == NULL);
	CHECK(c.sync == SYNC_DONE);
}

/* Answers renewals and registration chores due now; returns the first
 * other op due now (CONSUL_NONE: none). */
static enum consul_op chores(void)
{
	for (int i = 0; i < 10; i++) {
		enum consul_op op = next();
		if (op == CONSUL_RENEW)
			answer(op, 200, "[{}]");
		else if (op == CONSUL_CLEAR)
			answer(op, 404, "");
		else if (op == CONSUL_REGISTER || op == CONSUL_VERIFY)
			answer(op, 200, "");
		else if (op == CONSUL_READ_CONFIG && c.cluster == CLUSTER_OK)   /* the periodic look */
			answer_idx(op, 200, listing(CONFIGK, MY_CONFIG), c.config_index);
		else
			return op;
	}
	return CONSUL_OP_COUNT;
}

static struct entity *new_seq(const char *name)
{
	struct entity *e = NULL;
	CHECK(store_init(&st, name, strlen(name), TYPE_INT, NULL, store_floor(&st, name, strlen(name)),
			 now, &e) == STORE_OK);
	return e;
}

/* ---- tests ---- */

static void test_happy_path_empty_kv(void)
{
	setup(0);
	CHECK(gate_says("waiting for the Consul lock " LOCKK));
	CHECK(st.kv->required);
	CHECK(c.lock == LOCK_UNKNOWN);

	EXPECT(CONSUL_SESSION, "PUT", "/v1/session/create");
	CHECK(body_has("\"Name\":\"svc-shard-2\""));
	CHECK(body_has("\"TTL\":\"10s\""));
	CHECK(body_has("\"LockDelay\":\"0s\""));
	CHECK(body_has("\"Behavior\":\"delete\""));
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	CHECK_STR(c.session, strlen(c.session), SID);
	CHECK(gate_says("waiting for the Consul lock"));

	EXPECT(CONSUL_ACQUIRE, "PUT", "/v1/kv/" LOCKK "?acquire=" SID);
	CHECK(body_has("\"service_id\":\"svc-shard-2\""));
	CHECK(body_has("\"address\":\"10.1.2.3\""));
	CHECK(body_has("\"port\":7001"));
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK(c.lock == LOCK_HELD);
	CHECK(gate_says("reading the shard state from Consul (" PFX ")"));
	CHECK_EQ_U64(metrics.shard_lock_held, 0);

	CHECK_EQ_U64(read_state(NULL, NULL, NULL), 0);
	CHECK(c.sync == SYNC_WRITING);
	CHECK(gate_says("writing the merged shard state"));
	CHECK(expect_txn(SID));
	struct buf id64;
	buf_init(&id64);
	buf_puts(&id64, "\"Key\":\"" PFX "identity\",\"Value\":\"");
	shard_kv_base64(&id64, st.identity, strlen(st.identity));
	buf_putc(&id64, '\0');
	CHECK(body_has(id64.data));
	buf_free(&id64);
	answer(CONSUL_TXN, 200, "{\"Results\":[],\"Errors\":null}");
	CHECK(gate_problem() == NULL);
	CHECK(c.sync == SYNC_DONE);
	CHECK_EQ_U64(metrics.shard_lock_held, 1);
	CHECK(st.kv->identity_ok);

	/* Serving: register (clearing a predecessor's entry first). */
	EXPECT(CONSUL_CLEAR, "PUT", "/v1/agent/service/deregister/svc-shard-2");
	answer(CONSUL_CLEAR, 404, "Unknown service ID");
	EXPECT(CONSUL_REGISTER, "PUT", "/v1/agent/service/register");
	CHECK(body_has("\"ID\":\"svc-shard-2\""));
	CHECK(body_has("http://10.1.2.3:7001/health"));
	CHECK(body_has("\"shard-2\""));
	answer(CONSUL_REGISTER, 200, "");
	CHECK(c.registered);
	CHECK(next() == CONSUL_NONE);

	/* Renewals every TTL/3. */
	now += CONSUL_RENEW_MS - 1;
	CHECK(next() == CONSUL_NONE);
	now += 1;
	EXPECT(CONSUL_RENEW, "PUT", "/v1/session/renew/" SID);
	answer(CONSUL_RENEW, 200, "[{\"ID\":\"" SID "\"}]");
	CHECK(next() == CONSUL_NONE);
	CHECK(gate_problem() == NULL);

	/* A new sequence waits for its txn, then serves. */
	struct entity *e = new_seq("orders");
	uint64_t first;
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK(expect_txn(SID));
	char key[64];
	snprintf(key, sizeof key, "\"Key\":\"" PFX "e/%03x\"", shard_kv_bucket(e ? e->hash : 0));
	CHECK(body_has(key));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK && first == 0);
	CHECK(next() == CONSUL_NONE);

	struct buf h;
	buf_init(&h);
	consul_core_health(&c, &h);
	CHECK(h.data && memmem(h.data, h.len, "\"lock\":\"held\"", 13));
	CHECK(h.data && memmem(h.data, h.len, "\"state\":\"synced\"", 16));
	CHECK(h.data && memmem(h.data, h.len, "\"registered\":true", 17));
	buf_free(&h);
	teardown();
}

/* A name whose KV bucket is on page p. */
static void name_on_page(char *out, unsigned p)
{
	for (unsigned i = 0;; i++) {
		int n = snprintf(out, 32, "ent%u", i);
		if (shard_kv_bucket(shard_kv_hash(out, (size_t)n)) >> 8 == p)
			return;
	}
}

static void test_reads_existing_state(void)
{
	char a[32], b[32], page3[1024], page9[1024], line[128], key[64];
	setup(0);
	name_on_page(a, 3);
	name_on_page(b, 9);
	/* Page 3: entity a at mark 500 and keys that are not buckets. */
	snprintf(line, sizeof line, "%s long 7 500\n", a);
	snprintf(key, sizeof key, PFX "e/%03x", shard_kv_bucket(shard_kv_hash(a, strlen(a))));
	char *l = strdup(listing(key, line));
	snprintf(page3, sizeof page3, "[%.*s,{\"Key\":\"" PFX "e/3000\",\"Value\":\"eA==\"},"
		 "{\"Key\":\"other/" PFX "e/300\",\"Value\":null}]", (int)strlen(l) - 2, l + 1);
	free(l);
	snprintf(line, sizeof line, "%s int 0 40 deleted\n", b);
	snprintf(key, sizeof key, PFX "e/%03x", shard_kv_bucket(shard_kv_hash(b, strlen(b))));
	snprintf(page9, sizeof page9, "%s", listing(key, line));
	const char *pages[16] = { 0 };
	pages[3] = page3;
	pages[9] = page9;

	acquire(SID);
	char fence[32];
	snprintf(fence, sizeof fence, "%llu", 123456789ull);
	CHECK_EQ_U64(read_state(st.identity, fence, pages), 0);
	/* Everything merged, nothing to write back: serving at once. */
	CHECK(gate_problem() == NULL);
	CHECK(c.sync == SYNC_DONE);
	CHECK(!store_kv_pending(&st));
	CHECK_EQ_U64(st.kv->fence, 123456789);
	CHECK_EQ_U64(st.fence, 123456789);
	struct entity *e = store_find(&st, a, strlen(a));
	CHECK(e && e->type == TYPE_LONG && e->start_i == 7 && e->next_i == 500 && e->kv_i == 500);
	CHECK(store_find(&st, b, strlen(b)) == NULL);
	CHECK_EQ_U64(store_floor(&st, b, strlen(b)), 40);
	CHECK(store_find(&st, "3000", 4) == NULL);
	CHECK_EQ_U64(st.count, 1);
	teardown();
}

static void test_state_that_cannot_be_used(void)
{
	/* Another shard's identity: refused, naming both. */
	setup(0);
	acquire(SID);
	const char *other = "shard=2 totalShards=4 layout=sonyflake machineId=2";
	EXPECT(CONSUL_READ_IDENTITY, "GET", "/v1/kv/" PFX "identity?consistent");
	answer(CONSUL_READ_IDENTITY, 200, listing(PFX "identity", other));
	CHECK(c.sync == SYNC_REFUSED);
	CHECK(gate_says(other));
	CHECK(gate_says(st.identity));
	CHECK(gate_says(PFX "identity"));
	CHECK(strcmp(other, st.identity) != 0);
	/* Nothing is read meanwhile; after a while the state is read again. */
	CHECK(chores() == CONSUL_NONE);
	uint64_t t0 = now;
	int reread = 0;
	while (now < t0 + 20000 && !reread) {
		now += 500;
		enum consul_op op = chores();
		reread = op == CONSUL_READ_IDENTITY;
		CHECK(op == CONSUL_NONE || op == CONSUL_READ_IDENTITY);
	}
	CHECK(reread);
	CHECK(now >= t0 + 10000);
	CHECK(gate_problem() != NULL);
	/* The identity was fixed meanwhile: it serves. */
	answer(CONSUL_READ_IDENTITY, 200, listing(PFX "identity", st.identity));
	EXPECT(CONSUL_READ_FENCE, "GET", "/v1/kv/" PFX "fence?consistent");
	teardown();

	/* A fence that is not a number. */
	setup(0);
	acquire(SID);
	EXPECT(CONSUL_READ_IDENTITY, "GET", NULL);
	answer(CONSUL_READ_IDENTITY, 404, "");
	EXPECT(CONSUL_READ_FENCE, "GET", NULL);
	answer(CONSUL_READ_FENCE, 200, listing(PFX "fence", "12a"));
	CHECK(c.sync == SYNC_REFUSED);
	CHECK(gate_says("not a decimal tick"));
	teardown();

	/* A malformed bucket, and a listing that is not JSON. */
	for (int variant = 0; variant < 2; variant++) {
		setup(0);
		acquire(SID);
		EXPECT(CONSUL_READ_IDENTITY, "GET", NULL);
		answer(CONSUL_READ_IDENTITY, 404, "");
		EXPECT(CONSUL_READ_FENCE, "GET", NULL);
		answer(CONSUL_READ_FENCE, 404, "");
		EXPECT(CONSUL_READ_PAGE, "GET", "/v1/kv/" PFX "e/0?recurse&consistent");
		answer(CONSUL_READ_PAGE, 200, variant ? "[{\"Key\":" : listing(PFX "e/000", "x int 9 1\n"));
		CHECK(c.sync == SYNC_REFUSED);
		CHECK(gate_says("cannot be used"));
		CHECK(gate_says(variant ? "malformed KV listing" : "malformed entity line 1"));
		CHECK(next() == CONSUL_NONE);
		teardown();
	}
}

static void test_lost_lock_in_txn(void)
{
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	CHECK(c.registered);
	struct entity *e = new_seq("lost");
	uint64_t first;
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 409, "{\"Results\":null,\"Errors\":[{\"OpIndex\":0,\"What\":\"failed session check\"}]}");
	CHECK(c.lock == LOCK_LOST);
	CHECK(gate_says("lost the Consul lock " LOCKK));
	CHECK(!c.registered);
	CHECK(store_kv_pending(&st));                 /* the write is queued again */
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK_EQ_U64(metrics.shard_lock_held, 0);

	/* Re-acquire at once, then read the state again before serving. */
	EXPECT(CONSUL_ACQUIRE, "PUT", "/v1/kv/" LOCKK "?acquire=" SID);
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK(c.lock == LOCK_HELD);
	CHECK(gate_problem() != NULL);
	CHECK_EQ_U64(read_state(NULL, NULL, NULL), 0);
	CHECK(expect_txn(SID));
	char key[64];
	snprintf(key, sizeof key, "\"Key\":\"" PFX "e/%03x\"", shard_kv_bucket(e ? e->hash : 0));
	CHECK(body_has(key));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(gate_problem() == NULL);
	e = store_find(&st, "lost", 4);
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);

	/* A 409 for a later op is not a lost lock (nor a changed configuration). */
	CHECK(e && store_take(&st, e, e->reserved_i - e->next_i + 1, now, &first) == STORE_PENDING);
	CHECK(chores() == CONSUL_TXN);
	answer(CONSUL_TXN, 409, "{\"Errors\":[{\"OpIndex\":2,\"What\":\"value too large\"}]}");
	CHECK(c.lock == LOCK_HELD);
	CHECK(gate_says("HTTP 409"));
	teardown();
}

static void test_txn_refused(void)
{
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	struct entity *e = new_seq("acl");
	uint64_t first, t0 = now;
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 403, "Permission denied: token lacks key:write on svc/shards/2/e/\n");
	CHECK(gate_says("Consul refused to write the shard state"));
	CHECK(gate_says("HTTP 403"));
	CHECK(gate_says("Permission denied"));
	CHECK(c.lock == LOCK_HELD);
	CHECK(strstr(c.last_error, "403") != NULL);
	/* Retried after a while, not at once. */
	unsigned early = 0;
	while (now < t0 + 4900) {
		now += 100;
		early += chores() == CONSUL_TXN;
	}
	CHECK_EQ_U64(early, 0);
	CHECK(gate_problem() != NULL);
	now = t0 + 6000;
	CHECK(chores() == CONSUL_TXN);
	CHECK(txn_body_ok(SID));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(gate_problem() == NULL);
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);
	teardown();
}

static void test_txn_transport_error(void)
{
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	struct entity *e = new_seq("tx");
	uint64_t first;
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 0, "connection reset by peer");
	CHECK(gate_says("cannot reach Consul"));
	CHECK(store_kv_pending(&st));
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK(next() == CONSUL_NONE);                 /* backing off */
	now = c.retry_at;
	CHECK(chores() == CONSUL_TXN);
	CHECK(txn_body_ok(SID));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(gate_problem() == NULL);
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);
	teardown();
}

static void test_renewal_failures(void)
{
	/* A transport error closes the gate at once. */
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	now = c.renew_at;
	EXPECT(CONSUL_RENEW, "PUT", "/v1/session/renew/" SID);
	answer(CONSUL_RENEW, 0, "connect: connection refused");
	CHECK(gate_says("cannot reach Consul to confirm the lock " LOCKK));
	CHECK(gate_says("connection refused"));
	CHECK(!c.reachable);
	CHECK(c.lock == LOCK_HELD);
	CHECK(next() == CONSUL_NONE);
	CHECK(c.retry_at > now && c.retry_at <= now + CONSUL_RENEW_MS);
	/* However long the backoff grows, the session is renewed within its TTL. */
	uint64_t longest = 0;
	for (int i = 0; i < 10; i++) {
		now = c.retry_at;
		EXPECT(CONSUL_RENEW, "PUT", "/v1/session/renew/" SID);
		answer(CONSUL_RENEW, 0, "connect: connection refused");
		if (c.retry_at - now > longest)
			longest = c.retry_at - now;
	}
	CHECK(longest <= CONSUL_RENEW_MS);
	CHECK(longest > CONSUL_RENEW_MS / 2);
	CHECK(gate_says("cannot reach Consul"));
	now = c.retry_at;
	EXPECT(CONSUL_RENEW, "PUT", "/v1/session/renew/" SID);
	answer(CONSUL_RENEW, 200, "[{}]");
	CHECK(gate_problem() == NULL);
	teardown();

	/* 404: the session is gone, and the lock with it. */
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	now = c.renew_at;
	EXPECT(CONSUL_RENEW, "PUT", NULL);
	answer(CONSUL_RENEW, 404, "Session id '" SID "' not found");
	CHECK(c.lock == LOCK_LOST);
	CHECK(c.session[0] == '\0');
	CHECK(gate_says("lost the Consul lock"));
	CHECK(!c.registered);
	acquire(SID2);
	CHECK(c.lock == LOCK_HELD);
	CHECK_EQ_U64(read_state(st.identity, NULL, NULL), 0);
	CHECK(gate_problem() == NULL);
	teardown();

	/* 500 "invalid session" on acquire: a new session. */
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);
	answer(CONSUL_ACQUIRE, 500, "invalid session \"" SID "\"");
	CHECK(c.session[0] == '\0');
	now = c.retry_at;
	EXPECT(CONSUL_SESSION, "PUT", "/v1/session/create");
	teardown();
}

static void test_fail_open(void)
{
	setup(1);
	CHECK(c.fail_open);
	/* Nothing was asked yet: Consul is not known to be unreachable, and
	 * a reachable one may say the shard is held elsewhere. */
	CHECK(gate_says("waiting for the Consul lock"));
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 0, "connect: connection refused");
	/* Unreachable: serves from the journal alone. */
	CHECK(gate_problem() == NULL);
	CHECK(!st.kv->required);
	struct entity *e = new_seq("fo");
	uint64_t first;
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);
	/* A refusal is an answer: not covered. */
	now = c.retry_at;
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 403, "ACL not found");
	CHECK(gate_says("waiting for the Consul lock"));
	CHECK(st.kv->required);
	teardown();

	/* Holding the lock, Consul goes away: still serving. */
	setup(1);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	now = c.renew_at;
	EXPECT(CONSUL_RENEW, "PUT", NULL);
	answer(CONSUL_RENEW, 0, "timed out");
	CHECK(gate_problem() == NULL);
	CHECK(!st.kv->required);
	teardown();

	/* Held elsewhere: fail-open does not override the lock. */
	setup(1);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);
	answer(CONSUL_ACQUIRE, 200, "false");
	CHECK(gate_says("held by another instance"));
	now += CONSUL_RENEW_MS;
	EXPECT(CONSUL_RENEW, "PUT", NULL);
	answer(CONSUL_RENEW, 0, "timed out");
	CHECK(gate_says("held by another instance"));
	teardown();
}

static void test_standby_watch(void)
{
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);
	answer(CONSUL_ACQUIRE, 200, "false\n");
	CHECK(c.lock == LOCK_ELSEWHERE);
	CHECK(gate_says("shard 2 is held by another instance (Consul lock " LOCKK ")"));
	CHECK(next() == CONSUL_NONE);

	/* The blocking query on the lock key. */
	memset(&q, 0, sizeof q);
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK(q.op == CONSUL_WATCH);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=0&wait=30s");
	CHECK(q.method && strcmp(q.method, "GET") == 0);
	CHECK(q.timeout_ms > CONSUL_WATCH_WAIT_S * 1000);
	CHECK(consul_core_next_watch(&c, now, &q) == 0);   /* one at a time */

	/* Still held: watch again from the new index; no acquire yet. */
	const char *held = "[{\"LockIndex\":3,\"Key\":\"" LOCKK "\",\"Flags\":0,\"Value\":\"e30=\","
			   "\"Session\":\"" SID2 "\",\"CreateIndex\":4,\"ModifyIndex\":42}]";
	now += 100;
	answer_idx(CONSUL_WATCH, 200, held, 42);
	CHECK(next() == CONSUL_NONE);
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=42&wait=30s");
	/* The index went backwards (Consul's state was reset): from 0. */
	answer_idx(CONSUL_WATCH, 200, held, 7);
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=0&wait=30s");
	answer_idx(CONSUL_WATCH, 200, held, 42);
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=42&wait=30s");
	/* The wait timed out, nothing changed: Consul answers the same index,
	 * and the next query must block on it again (with index 0 it would
	 * return at once). */
	now += 30000;
	for (int i = 0; i < 5; i++) {      /* meanwhile: renewals, asking for the lock */
		enum consul_op op = next();
		if (op == CONSUL_RENEW)
			answer(op, 200, "[{}]");
		else if (op == CONSUL_ACQUIRE)
			answer(op, 200, "false");
		else
			break;
	}
	CHECK(next() == CONSUL_NONE);
	answer_idx(CONSUL_WATCH, 200, held, 42);
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=42&wait=30s");
	/* An error: retried a second later, from 0. */
	answer_idx(CONSUL_WATCH, 500, "rpc error", 0);
	CHECK(consul_core_next_watch(&c, now, &q) == 0);
	now += 1000;
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK_STR(q.path, strlen(q.path), "/v1/kv/" LOCKK "?index=0&wait=30s");

	/* The key is gone (holder released, session deleted it): acquire now. */
	CHECK(c.acquire_at > now);
	answer_idx(CONSUL_WATCH, 404, "", 55);
	EXPECT(CONSUL_ACQUIRE, "PUT", "/v1/kv/" LOCKK "?acquire=" SID);
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK(c.lock == LOCK_HELD);
	CHECK(consul_core_next_watch(&c, now, &q) == 0);   /* holders do not watch */
	CHECK(next() == CONSUL_READ_IDENTITY);
	teardown();

	/* A key without a session (released, Behavior=release): acquire now. */
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);
	answer(CONSUL_ACQUIRE, 200, "false");
	CHECK(consul_core_next_watch(&c, now, &q) == 1);
	CHECK(next() == CONSUL_NONE);
	answer_idx(CONSUL_WATCH, 200, "[{\"LockIndex\":3,\"Key\":\"" LOCKK "\",\"Flags\":0,\"Value\":null,"
				      "\"CreateIndex\":4,\"ModifyIndex\":60}]", 60);
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);
	/* Still taken by someone else: stand by again. */
	answer(CONSUL_ACQUIRE, 200, "false");
	CHECK(c.lock == LOCK_ELSEWHERE);
	CHECK(next() == CONSUL_NONE);
	now += 5000;
	if (next() == CONSUL_RENEW)
		answer(CONSUL_RENEW, 200, "[{}]");
	EXPECT(CONSUL_ACQUIRE, "PUT", NULL);   /* and asks again every 5 s */
	teardown();
}

static void test_unreachable_at_start(void)
{
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 0, "connect: connection refused");
	CHECK(gate_says("waiting for the Consul lock " LOCKK " (first checking the cluster configuration "
			CONFIGK "): Consul unreachable"));
	CHECK(st.kv->required);
	/* Backoff grows, with jitter, up to its cap. */
	uint64_t prev = 0, grew = 0;
	for (int i = 0; i < 12; i++) {
		CHECK(next() == CONSUL_NONE);
		uint64_t delay = c.retry_at - now;
		grew += delay > prev;
		prev = delay;
		CHECK(delay <= 30000);
		now = c.retry_at;
		EXPECT(CONSUL_SESSION, "PUT", NULL);
		answer(CONSUL_SESSION, 503, "No cluster leader");
	}
	CHECK(grew >= 4);
	CHECK(c.failures == 13);
	CHECK(gate_problem() != NULL);
	teardown();
}

/* The cluster configuration: created by the first instance (cas=0), read
 * by the others; a differing or malformed one keeps the instance from the
 * lock (so from serving), naming both, until it agrees. */
static void test_cluster_config(void)
{
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", "/v1/session/create");
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	CHECK(gate_says("first checking the cluster configuration " CONFIGK));
	/* Missing: this instance writes its own, only if still missing. */
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer(CONSUL_READ_CONFIG, 404, "");
	EXPECT(CONSUL_CREATE_CONFIG, "PUT", "/v1/kv/" CONFIGK "?cas=0");
	CHECK(q.body && q.body->len == strlen(MY_CONFIG) && memcmp(q.body->data, MY_CONFIG, q.body->len) == 0);
	/* Another instance was first: read what it wrote. */
	answer(CONSUL_CREATE_CONFIG, 200, "false");
	CHECK(c.cluster == CLUSTER_UNCHECKED);
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "totalShards=4 layout=sonyflake generation=1"));
	CHECK(c.cluster == CLUSTER_MISMATCH);
	CHECK(gate_says("the cluster configuration in Consul (" CONFIGK ": totalShards=4 layout=sonyflake "
			"generation=1) differs from this instance's (totalShards=3 layout=sonyflake)"));
	/* No lock is asked for; read again in 2 s; the session is kept alive. */
	CHECK(next() == CONSUL_NONE);
	now += 1999;
	CHECK(next() == CONSUL_NONE);
	now += 1;
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "totalShards=4 layout=sonyflake generation=1"));
	now += CONSUL_RENEW_MS;
	EXPECT(CONSUL_RENEW, "PUT", "/v1/session/renew/" SID);
	answer(CONSUL_RENEW, 200, "[{}]");
	CHECK(c.lock == LOCK_UNKNOWN);
	now += 10000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	CHECK(gate_says("differs from this instance's"));   /* still closed while it reads */
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "layout=twitter totalShards=3 generation=1"));
	CHECK(gate_says("(" CONFIGK ": layout=twitter totalShards=3 generation=1) differs from this "
			"instance's (totalShards=3 layout=sonyflake)"));
	now += 10000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "hello"));
	CHECK(gate_says("(" CONFIGK ": hello) is malformed: it needs totalShards=N and layout=L"));
	now += 10000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer(CONSUL_READ_CONFIG, 200, "not json");
	CHECK(gate_says("the cluster configuration in Consul (" CONFIGK ") cannot be read"));
	/* Corrected (words in any order, no generation: the first): on to the lock. */
	now += 10000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "layout=sonyflake totalShards=3"));
	CHECK(c.cluster == CLUSTER_OK);
	EXPECT(CONSUL_ACQUIRE, "PUT", "/v1/kv/" LOCKK "?acquire=" SID);
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK_EQ_U64(read_state(NULL, NULL, NULL), 0);
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(gate_problem() == NULL);
	teardown();

	/* The first instance: created, read back for its index, then the lock. */
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	EXPECT(CONSUL_READ_CONFIG, "GET", NULL);
	answer(CONSUL_READ_CONFIG, 404, "");
	EXPECT(CONSUL_CREATE_CONFIG, "PUT", NULL);
	answer(CONSUL_CREATE_CONFIG, 200, "true\n");
	agree_config();
	CHECK(c.cluster == CLUSTER_OK && c.config_index == CONFIG_INDEX);
	EXPECT(CONSUL_ACQUIRE, "PUT", "/v1/kv/" LOCKK "?acquire=" SID);
	teardown();

	/* Refused by an ACL: nothing more for a minute, and never the lock. */
	setup(0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	EXPECT(CONSUL_READ_CONFIG, "GET", NULL);
	answer(CONSUL_READ_CONFIG, 403, "Permission denied");
	CHECK(strstr(c.last_error, "read-cluster-config: HTTP 403") != NULL);
	now += 59999;
	CHECK(chores() == CONSUL_NONE);
	now += 1;
	EXPECT(CONSUL_READ_CONFIG, "GET", NULL);
	teardown();

	/* Fail-open never serves against a differing configuration, even when
	 * Consul then becomes unreachable. */
	setup(1);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	EXPECT(CONSUL_READ_CONFIG, "GET", NULL);
	answer(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "totalShards=2 layout=sonyflake generation=1"));
	now += 10000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer(CONSUL_READ_CONFIG, 0, "connect: connection refused");
	CHECK(gate_says("differs from this instance's"));
	CHECK(st.kv->required);
	teardown();
}

/* A reshard as the holder sees it: the freeze makes its next write fail
 * the index check; it reads the configuration again, keeps serving what
 * KV committed but writes nothing while frozen; a new generation with its
 * shard count moves its state under the generation's prefix (read again
 * before serving); one with another shard count closes the gate at once
 * and releases the lock. */
static void test_reshard(void)
{
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	struct entity *e = new_seq("r");
	uint64_t first;
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);

	/* An idle holder looks at the configuration every 5 s. */
	now += 4999;
	CHECK(chores() == CONSUL_NONE);
	now += 1;
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, MY_CONFIG), CONFIG_INDEX);
	CHECK(c.cluster == CLUSTER_OK && next() == CONSUL_NONE);

	/* Frozen: the next reservation fails its index check (op 1). */
	CHECK(e && store_take(&st, e, e->reserved_i - e->next_i + 1, now, &first) == STORE_PENDING);
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 409, "{\"Errors\":[{\"OpIndex\":1,\"What\":\"failed index check\"}]}");
	CHECK(c.lock == LOCK_HELD && c.cluster == CLUSTER_UNCHECKED);
	CHECK(store_kv_pending(&st));
	EXPECT(CONSUL_READ_CONFIG, "GET", "/v1/kv/" CONFIGK "?consistent");
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, MY_CONFIG " reshardTo=4"), 50);
	CHECK(c.cluster == CLUSTER_FROZEN && c.config_index == 50);
	CHECK(gate_problem() == NULL);                /* what is reserved is served */
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_OK);
	CHECK(next() == CONSUL_NONE);                 /* no write while frozen */
	now += 1999;
	CHECK(next() == CONSUL_NONE);
	now += 1;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, MY_CONFIG " reshardTo=4"), 50);
	CHECK(c.cluster == CLUSTER_FROZEN && c.lock == LOCK_HELD);

	/* Generation 2 of 4 shards: not this instance's; it stops serving at
	 * once and releases the lock for the new shard 2. */
	now += 2000;
	CHECK(chores() == CONSUL_READ_CONFIG);
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "totalShards=4 layout=sonyflake generation=2"), 60);
	CHECK(c.cluster == CLUSTER_MISMATCH && c.lock == LOCK_UNKNOWN);
	CHECK(gate_says("differs from this instance's (totalShards=3 layout=sonyflake)"));
	EXPECT(CONSUL_RELEASE, "PUT", "/v1/kv/" LOCKK "?release=" SID);
	answer(CONSUL_RELEASE, 200, "true");
	CHECK(!c.release);
	CHECK(chores() == CONSUL_NONE);
	teardown();

	/* A new generation of this shard count (3 -> 4 -> 3): the state moves
	 * under the generation's prefix and is read again before serving. */
	setup(0);
	to_serving(SID);
	CHECK(chores() == CONSUL_NONE);
	e = new_seq("r");
	CHECK(e && store_take(&st, e, 1, now, &first) == STORE_PENDING);
	CHECK(expect_txn(SID));
	answer(CONSUL_TXN, 409, "{\"Errors\":[{\"OpIndex\":1,\"What\":\"failed index check\"}]}");
	EXPECT(CONSUL_READ_CONFIG, "GET", NULL);
	answer_idx(CONSUL_READ_CONFIG, 200, listing(CONFIGK, "totalShards=3 layout=sonyflake generation=3"), 70);
	CHECK(c.cluster == CLUSTER_OK && c.generation == 3 && c.config_index == 70);
	CHECK(strcmp(c.prefix, "svc/generations/3/shards/2/") == 0);
	CHECK(gate_says("reading the shard state from Consul (svc/generations/3/shards/2/)"));
	EXPECT(CONSUL_READ_IDENTITY, "GET", "/v1/kv/svc/generations/3/shards/2/identity?consistent");
	teardown();
}

/* SHARD_ID=auto: the core tries shards 1..3 in turn, stands by when all
 * are held, and becomes the first one it gets, before reading its state. */
static unsigned claimed_shard;

static int claim_for_test(void *ud, unsigned shard)
{
	(void)ud;
	claimed_shard = shard;
	config_set_shard(&cfg, shard);
	return store_assign(&st, shard, &cfg.layout, cfg.machine_id);
}

static void test_auto_claim(void)
{
	setup_with(0, "--shard=auto");
	c.claim = claim_for_test;
	claimed_shard = 0;
	CHECK(c.claiming && cfg.shard_auto && cfg.shard_id == 0);
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned k = 1; k <= 3; k++) {
			char path[128];
			snprintf(path, sizeof path, "/v1/kv/svc/shards/%u?acquire=" SID, k);
			CHECK(chores() == CONSUL_ACQUIRE && strcmp(q.path, path) == 0);
			char shard[32];
			snprintf(shard, sizeof shard, "\"shard\":%u", k);
			CHECK(body_has(shard));
			answer(CONSUL_ACQUIRE, 200, "false");
		}
		CHECK(gate_says("all 3 shards are held by other instances"));
		CHECK(c.lock == LOCK_ELSEWHERE && claimed_shard == 0);
		CHECK(chores() == CONSUL_NONE);
		CHECK(consul_core_next_watch(&c, now, &q) == 0);   /* it asks, it does not watch */
		now += 4999;
		CHECK(chores() == CONSUL_NONE);
		now += 1;
	}
	/* Shard 2 is freed: claimed, then read like any shard 2. */
	CHECK(chores() == CONSUL_ACQUIRE);
	answer(CONSUL_ACQUIRE, 200, "false");
	CHECK(chores() == CONSUL_ACQUIRE && strstr(q.path, "/v1/kv/svc/shards/2?acquire=") != NULL);
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK_EQ_U64(claimed_shard, 2);
	CHECK(!c.claiming && c.lock == LOCK_HELD && cfg.shard_id == 2);
	CHECK(strcmp(st.identity, "shard=2 totalShards=3 layout=sonyflake machineId=2") == 0);
	CHECK_STR(c.service_id, strlen(c.service_id), "svc-shard-2");
	CHECK_EQ_U64(read_state(NULL, NULL, NULL), 0);
	CHECK(expect_txn(SID));
	CHECK(body_has("\"Key\":\"" PFX "identity\""));
	answer(CONSUL_TXN, 200, "{}");
	CHECK(gate_problem() == NULL);
	EXPECT(CONSUL_CLEAR, "PUT", "/v1/agent/service/deregister/svc-shard-2");
	answer(CONSUL_CLEAR, 404, "");
	EXPECT(CONSUL_REGISTER, "PUT", NULL);
	CHECK(body_has("\"shard-2\"") && body_has("\"shard_id\":\"2\""));
	teardown();

	/* A claim that cannot be journaled serves nothing. */
	setup_with(0, "--shard=auto");
	c.claim = NULL;
	EXPECT(CONSUL_SESSION, "PUT", NULL);
	answer(CONSUL_SESSION, 200, "{\"ID\":\"" SID "\"}");
	agree_config();
	CHECK(chores() == CONSUL_ACQUIRE);
	answer(CONSUL_ACQUIRE, 200, "true");
	CHECK(gate_says("cannot journal the identity of the claimed shard"));
	teardown();
}

int main(void)
{
	test_happy_path_empty_kv();
	test_reads_existing_state();
	test_state_that_cannot_be_used();
	test_lost_lock_in_txn();
	test_txn_refused();
	test_txn_transport_error();
	test_renewal_failures();
	test_fail_open();
	test_standby_watch();
	test_unreachable_at_start();
	test_cluster_config();
	test_reshard();
	test_auto_claim();
	return check_summary("consul_core");
}
