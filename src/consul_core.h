/* Consul's decision core: registration, the shard lock, and the shard
 * state in KV as a pure state machine. Given its state, the time and an
 * answer, it says which request comes next and what the serving gate says;
 * consul.c sends the requests. No I/O here (the store it merges into may
 * write its journal).
 *
 * The cluster: before it asks for the lock, an instance reads <svc>/config
 * (total shards, snowflake layout, generation), creates it from its own
 * configuration when missing (cas=0), and stands aside, naming both, when
 * it differs: a shard of another shard count or layout would repeat the
 * values of the cluster's shards. Every state txn checks the
 * configuration's ModifyIndex: a reshard (reshard.c) first freezes the
 * cluster by rewriting it, so the old generation's writes fail, and the
 * holders read it again: while frozen they serve only what they already
 * reserved; once the new generation is written, a holder whose shard count
 * no longer matches drops and releases its lock.
 *
 * SHARD_ID=auto: the instance takes the lowest shard whose lock is free
 * and becomes that shard (c->claim), or stands by asking every few seconds.
 *
 * The lock: a session (TTL, no lock delay: every state write is fenced by
 * check-session, so a delay protects nothing) acquires <svc>/shards/<k>.
 * After every acquisition the shard's KV state is read (identity, fence,
 * 16 pages of entity buckets), merged into the store, and what the store
 * holds above it is written back; only then does the gate open. From then
 * on every reservation and fence move is written by a txn that begins with
 * check-session, and values are handed out only below what KV committed. */
#ifndef CONSUL_CORE_H
#define CONSUL_CORE_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "gate.h"
#include "json.h"
#include "shard_kv.h"
#include "store.h"

#define CONSUL_SESSION_TTL_S    10
#define CONSUL_RENEW_MS         (CONSUL_SESSION_TTL_S * 1000 / 3)
#define CONSUL_REQUEST_TIMEOUT_MS 5000
#define CONSUL_WATCH_WAIT_S     30   /* a standby's blocking query on the lock key */

enum consul_op {
	CONSUL_NONE, CONSUL_RESOLVE, CONSUL_CLEAR, CONSUL_REGISTER, CONSUL_VERIFY,
	CONSUL_SESSION, CONSUL_ACQUIRE, CONSUL_RENEW, CONSUL_READ_IDENTITY,
	CONSUL_READ_FENCE, CONSUL_READ_PAGE, CONSUL_TXN, CONSUL_WATCH, CONSUL_READ_CONFIG,
	CONSUL_CREATE_CONFIG, CONSUL_RELEASE, CONSUL_OP_COUNT
};

enum consul_lock { LOCK_UNKNOWN, LOCK_HELD, LOCK_ELSEWHERE, LOCK_LOST };
/* Whether this instance agrees with the cluster's configuration in KV. */
enum consul_cluster { CLUSTER_UNCHECKED, CLUSTER_CREATE, CLUSTER_OK, CLUSTER_MISMATCH, CLUSTER_FROZEN };
/* Where the shard state stands for this holder. */
enum consul_sync { SYNC_NONE, SYNC_READING, SYNC_WRITING, SYNC_DONE, SYNC_REFUSED };

/* The op's name as logs and /health say it ("renew-session", ...). */
const char *consul_op_name(enum consul_op op);
const char *consul_lock_name(enum consul_lock l);

struct consul_req {
	enum consul_op op;
	const char *method;
	char path[512];
	const struct buf *body;       /* NULL: none */
	unsigned timeout_ms;
};

struct consul_answer {
	int status;                   /* HTTP status; 0: transport failure */
	const char *body;
	size_t body_len;
	const char *error;            /* transport failure: why */
	uint64_t index;               /* X-Consul-Index (0: absent) */
};

struct consul_core {
	const struct config *cfg;
	struct store *store;
	int fail_open;                /* serve from the journal alone while Consul is unreachable */
	char addr[64];                /* advertised to Consul */
	char service_id[96];
	char lock_key[128];
	char prefix[SHARD_KV_PREFIX_MAX];   /* shard k's state in this generation */
	unsigned shard;               /* k: configured, claimed, or the candidate while claiming */
	int claiming;                 /* SHARD_ID=auto and no shard yet */
	int (*claim)(void *ud, unsigned shard);   /* makes the instance shard k: 0 ok */
	void *claim_ud;
	char config_key[140];         /* "<svc>/config" */

	enum consul_op op;            /* in flight on the main connection */
	int reachable;                /* the last request got an answer below 500 */
	unsigned failures;            /* consecutive transport errors / 5xx */
	uint64_t backoff_ms, retry_at;
	uint64_t rng;

	int registered, cleared;
	uint64_t register_at, verify_at;

	char session[64];
	enum consul_lock lock;
	uint64_t session_at, acquire_at, renew_at;

	enum consul_cluster cluster;
	uint64_t config_at;
	uint64_t generation;          /* the cluster's, as last read (1 before any reshard) */
	uint64_t config_index;        /* its ModifyIndex: every state txn checks it */
	unsigned reshard_to;          /* frozen: the reshard under way is to this many shards */
	int release;                  /* a lock dropped for a changed configuration: release it */
	char cluster_problem[GATE_REASON_MAX];   /* the configurations that differ */

	enum consul_sync sync;
	int page;                     /* next page to read while SYNC_READING */
	uint64_t sync_at, txn_at;
	char sync_problem[GATE_REASON_MAX];   /* identity mismatch, refused write, bad state */

	int watching;                 /* the standby's blocking query is in flight */
	uint64_t watch_index, watch_at;

	struct buf body;              /* the request body being sent */
	char last_error[320];
};

/* addr: the address to advertise; seed: randomness for the backoff jitter.
 * The store must have replication enabled (store_kv_enable). With
 * cfg->shard_id 0 (SHARD_ID=auto) the core tries the locks of shards
 * 1..TOTAL_SHARDS in turn and calls c->claim (set it after init) with the
 * first it gets, before it reads that shard's state. */
void consul_core_init(struct consul_core *c, const struct config *cfg, struct store *s,
		      const char *addr, uint64_t seed);
void consul_core_free(struct consul_core *c);
/* The request due now on the main connection, if any (1, *r filled; its
 * body lives in c until the answer). Call only while nothing is in flight. */
int consul_core_next(struct consul_core *c, uint64_t mono_ms, struct consul_req *r);
/* The standby's watch on its own connection: 1 when it should be sent. */
int consul_core_next_watch(struct consul_core *c, uint64_t mono_ms, struct consul_req *r);
/* Feeds the answer to the request of op (also CONSUL_RESOLVE failures). */
void consul_core_answer(struct consul_core *c, enum consul_op op, uint64_t mono_ms,
			const struct consul_answer *a);
/* `"consul":{...}` for /health. */
void consul_core_health(const struct consul_core *c, struct buf *b);

#endif
