/* Unit tests for the store's replication to Consul KV (store_kv.c and the
 * replication parts of store.c). Consul is played by a fake KV that the
 * txn bodies are parsed into (check-session and check-index first, then set/delete ops with
 * base64 values decoded by shard_kv_unbase64 and shard_kv_parse_bucket), so
 * every check is against what KV would really hold:
 *   - takes wait (STORE_PENDING) until KV committed the segment; the next
 *     segment is reserved ahead when half of one is used; failures re-queue;
 *   - snowflakes wait for KV's fence, which moves ahead of a steady stream;
 *   - txns: at most 62 writes after the two checks, bodies below
 *     SHARD_KV_TXN_BYTES, and 100,000 entities covered exactly once;
 *   - merging after a takeover: higher mark wins, KV's deletion and type win,
 *     a clean stop's position survives only when KV equals the journal, the
 *     fence moves the generator;
 *   - random runs (one holder with a simulated rival, two real holders, and
 *     admin operations): no value twice, none at or above KV's mark. */
#include "check.h"
#include "kv_line.h"
#include "check_tmpdir.h"
#include "log.h"
#include "shard_kv.h"
#include "store.h"
#include "store_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOCK    "svc/shards/2"
#define PREFIX  "svc/shards/2/"
#define SESSION "0b5e1d2c-1111-2222-3333-444455556666"
#define CONFIG  "svc/config"
static const struct shard_kv_guard guard = { LOCK, SESSION, CONFIG, 17 };

static struct sf_layout layout;
static char base[256];

/* ---- a fake Consul KV, fed by parsed txn bodies ---- */

struct fkv {
	char *val[SHARD_KV_BUCKETS];
	size_t len[SHARD_KV_BUCKETS];
	int has_fence, has_identity;
	uint64_t fence;
	char identity[SHARD_KV_IDENTITY_MAX + 1];
};

static void fkv_free(struct fkv *k)
{
	for (unsigned b = 0; b < SHARD_KV_BUCKETS; b++)
		free(k->val[b]);
	memset(k, 0, sizeof *k);
}

struct op {
	int del;
	char key[200];
	char *val;          /* decoded (malloc'd), set only */
	size_t val_len;
};

static struct op ops[SHARD_KV_TXN_OPS + 8];
static size_t nops;

static void ops_free(void)
{
	for (size_t i = 0; i < nops; i++)
		free(ops[i].val);
	nops = 0;
}

static int lit(const char **p, const char *end, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return -1;
	*p += n;
	return 0;
}

/* A plain JSON string body up to the closing quote (our keys and base64
 * need no escapes: a backslash is an error here). */
static int str(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;
	while (q < end && *q != '"' && *q != '\\')
		q++;
	if (q >= end || *q != '"')
		return -1;
	*s = *p;
	*n = (size_t)(q - *p);
	*p = q + 1;
	return 0;
}

/* Parses a txn body into ops[]: exactly the shape shard_kv builds, with
 * the session check on LOCK first. Returns the number of writes, -1 when
 * the body is not such a txn. */
static long parse_txn(const char *body, size_t n)
{
	const char *p = body, *end = body + n, *s;
	size_t sl;
	ops_free();
	if (lit(&p, end, "[{\"KV\":{\"Verb\":\"check-session\",\"Key\":\"" LOCK "\",\"Session\":\"" SESSION "\"}},"
		"{\"KV\":{\"Verb\":\"check-index\",\"Key\":\"" CONFIG "\",\"Index\":17}}") != 0)
		return -1;
	while (p < end && *p == ',') {
		struct op *o = &ops[nops];
		if (nops >= sizeof ops / sizeof ops[0])
			return -1;
		memset(o, 0, sizeof *o);
		if (lit(&p, end, ",{\"KV\":{\"Verb\":\"") != 0)
			return -1;
		if (lit(&p, end, "set\",\"Key\":\"") == 0)
			o->del = 0;
		else if (lit(&p, end, "delete\",\"Key\":\"") == 0)
			o->del = 1;
		else
			return -1;
		if (str(&p, end, &s, &sl) != 0 || sl >= sizeof o->key)
			return -1;
		memcpy(o->key, s, sl);
		o->key[sl] = '\0';
		nops++;
		if (!o->del) {
			if (lit(&p, end, ",\"Value\":\"") != 0 || str(&p, end, &s, &sl) != 0)
				return -1;
			o->val = malloc(sl / 4 * 3 + 1);
			long d = shard_kv_unbase64(s, sl, o->val, sl / 4 * 3 + 1);
			if (d < 0)
				return -1;
			o->val_len = (size_t)d;
		}
		if (lit(&p, end, "}}") != 0)
			return -1;
	}
	if (lit(&p, end, "]") != 0 || p != end)
		return -1;
	return (long)nops;
}

/* Which KV key: 0 identity, 1 fence, 2 a bucket (*bucket), -1 other. */
static int key_kind(const char *key, unsigned *bucket)
{
	size_t pl = strlen(PREFIX);
	if (strncmp(key, PREFIX, pl) != 0)
		return -1;
	key += pl;
	if (strcmp(key, "identity") == 0)
		return 0;
	if (strcmp(key, "fence") == 0)
		return 1;
	unsigned b = 0;
	if (strncmp(key, "e/", 2) != 0 || strlen(key) != 5)
		return -1;
	for (int i = 2; i < 5; i++) {
		char c = key[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		b = b * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	*bucket = b;
	return 2;
}

struct bucket_check {
	unsigned bucket;
	int bad;
};

static int entity_in_bucket(void *ud, const struct kv_entity *e)
{
	struct bucket_check *c = ud;
	if (shard_kv_bucket(shard_kv_hash(e->name, e->name_len)) != c->bucket)
		c->bad = 1;
	return 0;
}

/* Applies the parsed txn to k. -1 when an op is not a valid state write
 * (unknown key, a key twice, a bucket value that does not parse or holds
 * a name of another bucket, a fence that is not decimal). */
static int fkv_apply(struct fkv *k)
{
	for (size_t i = 0; i < nops; i++) {
		unsigned b = 0;
		int kind = key_kind(ops[i].key, &b);
		for (size_t j = 0; j < i; j++)
			if (strcmp(ops[j].key, ops[i].key) == 0)
				return -1;
		if (kind < 0 || (kind != 2 && ops[i].del))
			return -1;
		if (kind == 0) {
			if (ops[i].val_len > SHARD_KV_IDENTITY_MAX)
				return -1;
			memcpy(k->identity, ops[i].val, ops[i].val_len);
			k->identity[ops[i].val_len] = '\0';
			k->has_identity = 1;
		} else if (kind == 1) {
			uint64_t f = 0;
			if (ops[i].val_len == 0 || ops[i].val_len > 19)
				return -1;
			for (size_t j = 0; j < ops[i].val_len; j++) {
				if (ops[i].val[j] < '0' || ops[i].val[j] > '9')
					return -1;
				f = f * 10 + (uint64_t)(ops[i].val[j] - '0');
			}
			k->fence = f;
			k->has_fence = 1;
		} else {
			char err[160];
			struct bucket_check c = { b, 0 };
			if (!ops[i].del &&
			    (shard_kv_parse_bucket(ops[i].val, ops[i].val_len, entity_in_bucket, &c, err, sizeof err) != 0 ||
			     c.bad))
				return -1;
			free(k->val[b]);
			k->val[b] = NULL;
			k->len[b] = 0;
			if (!ops[i].del) {
				k->val[b] = malloc(ops[i].val_len + 1);
				memcpy(k->val[b], ops[i].val, ops[i].val_len);
				k->len[b] = ops[i].val_len;
			}
		}
	}
	return 0;
}

struct find {
	const char *name;
	size_t len;
	struct kv_entity rec;
	int found;
};

static int find_fn(void *ud, const struct kv_entity *e)
{
	struct find *f = ud;
	if (e->name_len == f->len && memcmp(e->name, f->name, f->len) == 0) {
		f->rec = *e;
		f->found++;
	}
	return 0;
}

/* KV's record of name: 1 found (into *r), 0 none. */
static int fkv_get(const struct fkv *k, const char *name, struct kv_entity *r)
{
	struct find f = { .name = name, .len = strlen(name) };
	unsigned b = shard_kv_bucket(shard_kv_hash(name, f.len));
	char err[160];
	if (!k->val[b])
		return 0;
	if (shard_kv_parse_bucket(k->val[b], k->len[b], find_fn, &f, err, sizeof err) != 0)
		return 0;
	if (f.found == 1)
		*r = f.rec;
	return f.found == 1;
}

/* Writes name's record into k (replacing it), as another holder would. */
static void fkv_put(struct fkv *k, const struct kv_entity *r)
{
	unsigned b = shard_kv_bucket(shard_kv_hash(r->name, r->name_len));
	struct buf nb;
	buf_init(&nb);
	const char *p = k->val[b], *end = p ? p + k->len[b] : NULL;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t w = strcspn(p, " ");
		if (!(w == r->name_len && memcmp(p, r->name, w) == 0))
			buf_append(&nb, p, (size_t)(nl - p) + 1);
		p = nl + 1;
	}
	shard_kv_put_entity(&nb, r);
	free(k->val[b]);
	k->val[b] = malloc(nb.len);
	memcpy(k->val[b], nb.data, nb.len);
	k->len[b] = nb.len;
	buf_free(&nb);
}

/* ---- the store's side ---- */

static void open_kv(struct store *s, const char *dir)
{
	char err[256] = "";
	int rc = store_open(s, dir, 2, 3, &layout, 1, err, sizeof err);
	if (rc != 0 || store_kv_enable(s) != 0) {
		fprintf(stderr, "store_open(%s): %s\n", dir ? dir : "(memory)", err);
		exit(1);
	}
}

static struct buf body;
static unsigned shape_errors, limit_errors;

/* Builds s's next txn and parses it into ops[]; returns its writes. */
static size_t build(struct store *s)
{
	body.len = 0;
	size_t w = store_kv_txn(s, &body, PREFIX, &guard);
	if (!w) {
		ops_free();
		return 0;
	}
	long n = parse_txn(body.data, body.len);
	if (n < 0 || (size_t)n != w)
		shape_errors++;
	if (w > SHARD_KV_TXN_OPS - 2 || body.len >= SHARD_KV_TXN_BYTES)
		limit_errors++;
	return w;
}

/* Outcomes of the txn just built. */
static void commit(struct store *s, struct fkv *k)
{
	if (fkv_apply(k) != 0)
		shape_errors++;
	store_kv_txn_done(s, 1);
}

static void fail(struct store *s)
{
	store_kv_txn_done(s, 0);
}

static void lost_answer(struct store *s, struct fkv *k)   /* committed, answer lost */
{
	if (fkv_apply(k) != 0)
		shape_errors++;
	store_kv_txn_done(s, 0);
}

/* Writes everything pending; returns the number of txns. */
static unsigned sync_all(struct store *s, struct fkv *k)
{
	unsigned n = 0;
	while (build(s) && n < 10000) {
		commit(s, k);
		n++;
	}
	return n;
}

/* A takeover: reads k the way consul_core does and merges it. */
static int takeover(struct store *s, const struct fkv *k)
{
	char err[200];
	int rc = 0;
	store_kv_read_begin(s);
	s->kv->identity_ok = k->has_identity && strcmp(k->identity, s->identity) == 0;
	store_merge_fence(s, k->has_fence ? k->fence : 0);
	for (unsigned b = 0; b < SHARD_KV_BUCKETS; b++)
		if (k->val[b] && store_kv_read_bucket(s, k->val[b], k->len[b], err, sizeof err) != 0) {
			fprintf(stderr, "read_bucket %03x: %s\n", b, err);
			rc = -1;
		}
	if (store_kv_read_end(s) != 0)
		rc = -1;
	return rc;
}

static struct entity *make(struct store *s, const char *name, enum id_type t, uint64_t mono)
{
	struct entity *e = NULL;
	uint64_t floor = store_floor(s, name, strlen(name));
	if (store_init(s, name, strlen(name), t, NULL, floor, mono, &e) != STORE_OK)
		return NULL;
	return e;
}

static char *bucket_key(char *out, const char *name)
{
	snprintf(out, 32, PREFIX "e/%03x", shard_kv_bucket(shard_kv_hash(name, strlen(name))));
	return out;
}

/* ---- takes ---- */

static void test_take_waits_for_commit(void)
{
	struct store s;
	struct fkv k = { 0 };
	char key[32];
	uint64_t first = 0;
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	struct entity *e = make(&s, "a", TYPE_INT, 1000);
	CHECK(e != NULL);
	CHECK_EQ_U64(e->reserved_i, 16);
	CHECK(store_kv_pending(&s));
	CHECK(store_take(&s, e, 1, 1000, &first) == STORE_PENDING);
	CHECK_EQ_U64(e->next_i, 0);

	/* The txn: identity and the bucket, after the session check. */
	CHECK_EQ_U64(build(&s), 2);
	CHECK_EQ_U64(nops, 2);
	CHECK_STR(ops[0].key, strlen(ops[0].key), PREFIX "identity");
	CHECK_STR(ops[0].val, ops[0].val_len, "shard=2 totalShards=3 layout=sonyflake machineId=1");
	CHECK_STR(ops[1].key, strlen(ops[1].key), bucket_key(key, "a"));
	CHECK_STR(ops[1].val, ops[1].val_len, "a int 0 16\n");
	/* In flight is not committed. */
	CHECK(store_take(&s, e, 1, 1000, &first) == STORE_PENDING);

	/* Failure: everything is queued again, still nothing handed out. */
	fail(&s);
	CHECK(store_kv_pending(&s));
	CHECK(store_take(&s, e, 1, 1000, &first) == STORE_PENDING);
	CHECK_EQ_U64(build(&s), 2);
	CHECK_STR(ops[1].key, strlen(ops[1].key), key);
	commit(&s, &k);
	CHECK(!store_kv_pending(&s));
	CHECK_EQ_U64(e->kv_i, 16);
	CHECK(e->kv_bound);
	CHECK(strcmp(k.identity, s.identity) == 0);
	CHECK_EQ_U64(build(&s), 0);                 /* nothing left */

	/* Now the segment is usable, and nothing is written for a while. */
	CHECK(store_take(&s, e, 1, 1100, &first) == STORE_OK);
	CHECK_EQ_U64(first, 0);
	CHECK_EQ_U64(entity_value(e, first), 2);    /* shard 2 of 3 */
	CHECK(store_take(&s, e, 7, 1100, &first) == STORE_OK);
	CHECK_EQ_U64(first, 1);
	CHECK(!store_kv_pending(&s));
	CHECK_EQ_U64(e->reserved_i, 16);

	/* Past half of the segment: the next one is reserved ahead ... */
	CHECK(store_take(&s, e, 1, 1200, &first) == STORE_OK);
	CHECK_EQ_U64(first, 8);
	CHECK(e->reserved_i > 16);
	CHECK(store_kv_pending(&s));
	uint64_t ahead = e->reserved_i;
	/* ... once: more takes within the segment do not reserve again. */
	CHECK(store_take(&s, e, 7, 1200, &first) == STORE_OK);
	CHECK_EQ_U64(first, 9);
	CHECK_EQ_U64(e->reserved_i, ahead);
	/* The old segment is used up; the new one waits for KV. */
	CHECK(store_take(&s, e, 1, 1200, &first) == STORE_PENDING);
	CHECK_EQ_U64(e->next_i, 16);
	CHECK_EQ_U64(build(&s), 1);                 /* identity is known now */
	char want[64];
	snprintf(want, sizeof want, "a int 0 %llu\n", (unsigned long long)ahead);
	CHECK_STR(ops[0].val, ops[0].val_len, want);
	commit(&s, &k);
	CHECK(store_take(&s, e, 1, 1300, &first) == STORE_OK);
	CHECK_EQ_U64(first, 16);

	/* A take larger than what is reserved reserves, then waits. */
	uint64_t big = e->reserved_i - e->next_i + 100;
	CHECK(store_take(&s, e, big, 1400, &first) == STORE_PENDING);
	CHECK(e->reserved_i >= e->next_i + big);
	CHECK_EQ_U64(e->next_i, 17);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, big, 1400, &first) == STORE_OK);
	CHECK_EQ_U64(first, 17);
	struct kv_entity r;
	CHECK(fkv_get(&k, "a", &r) && r.mark_i >= first + big);

	/* Without replication required the journal alone decides. */
	store_kv_require(&s, 0);
	uint64_t before = e->kv_i;
	CHECK(store_take(&s, e, e->reserved_i - e->next_i, 1500, &first) == STORE_OK);
	CHECK(store_take(&s, e, 5, 1500, &first) == STORE_OK);
	CHECK(e->next_i > before);
	CHECK_EQ_U64(shape_errors, 0);
	CHECK_EQ_U64(limit_errors, 0);
	fkv_free(&k);
	store_close(&s);
}

/* Non-sequence entities: their binding must be committed (kv_bound), and
 * a deletion removes the bucket key when nothing else is in it. */
static void test_bindings_and_deletes(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	char key[32];
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	struct entity *u = make(&s, "u", TYPE_UUID16, 1000);
	CHECK(u && !u->kv_bound);
	sync_all(&s, &k);
	CHECK(u->kv_bound);
	CHECK(fkv_get(&k, "u", &r) && r.type == TYPE_UUID16 && !r.deleted);
	CHECK(store_kv_committed(&s, u->hash, store_kv_version(&s, u->hash)));

	/* Deleting a uuid entity forgets it: its bucket key is deleted. */
	uint32_t h = u->hash;
	CHECK(store_delete(&s, "u", 1) == STORE_OK);
	uint32_t v = store_kv_version(&s, h);
	CHECK(!store_kv_committed(&s, h, v));
	CHECK_EQ_U64(build(&s), 1);
	CHECK(ops[0].del == 1);
	CHECK_STR(ops[0].key, strlen(ops[0].key), bucket_key(key, "u"));
	commit(&s, &k);
	CHECK(store_kv_committed(&s, h, v));
	CHECK(!fkv_get(&k, "u", &r));
	CHECK(k.val[shard_kv_bucket(h)] == NULL);

	/* A sequence leaves a tombstone at what it handed out. */
	struct entity *e = make(&s, "q", TYPE_LONG, 1000);
	uint64_t first;
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 5, 1000, &first) == STORE_OK);
	CHECK(store_delete(&s, "q", 1) == STORE_OK);
	sync_all(&s, &k);
	CHECK(fkv_get(&k, "q", &r) && r.deleted && r.mark_i == 5 && r.type == TYPE_LONG);
	CHECK_EQ_U64(shape_errors, 0);
	fkv_free(&k);
	store_close(&s);
}

/* ---- snowflakes ---- */

static uint64_t tick_of_id(uint64_t id)
{
	struct sf_parts p;
	return sf_decompose(&layout, id, &p) == 0 ? p.tick : UINT64_MAX;
}

static void test_snowflake_fence(void)
{
	struct store s;
	struct fkv k = { 0 };
	enum sf_status sf;
	uint64_t id = 0, wait = 0, now = layout.epoch_ms + 10000000;   /* tick 1,000,000 */
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	CHECK(store_snowflake(&s, now, 0, &sf, &id, &wait) == STORE_PENDING);
	CHECK(store_kv_pending(&s));
	CHECK(s.kv->fence_want > 1000000);
	CHECK_EQ_U64(build(&s), 2);                 /* identity, fence */
	char want[32];
	snprintf(want, sizeof want, "%llu", (unsigned long long)s.kv->fence_want);
	CHECK_STR(ops[1].key, strlen(ops[1].key), PREFIX "fence");
	CHECK_STR(ops[1].val, ops[1].val_len, want);
	CHECK(store_snowflake(&s, now, 0, &sf, &id, &wait) == STORE_PENDING);   /* in flight */
	fail(&s);
	CHECK(store_snowflake(&s, now, 0, &sf, &id, &wait) == STORE_PENDING);
	CHECK_EQ_U64(build(&s), 2);
	commit(&s, &k);
	CHECK(k.has_fence && k.fence > 1000000);
	CHECK(store_snowflake(&s, now, 0, &sf, &id, &wait) == STORE_OK);
	CHECK(sf == SF_OK);
	CHECK_EQ_U64(tick_of_id(id), 1000000);

	/* A steady stream, txns committing between ticks: never waits, and
	 * every ID is from a tick below the committed fence. */
	uint64_t last = id, pending = 0, above = 0, backwards = 0, issued = 0, txns = 0;
	for (int i = 0; i < 3000; i++) {
		now += 3;
		enum store_status st = store_snowflake(&s, now, 0, &sf, &id, &wait);
		if (st == STORE_PENDING) {
			pending++;
		} else if (st == STORE_OK && sf == SF_OK) {
			issued++;
			above += tick_of_id(id) >= k.fence;
			backwards += id <= last;
			last = id;
		}
		if (store_kv_pending(&s) && build(&s)) {
			commit(&s, &k);
			txns++;
		}
	}
	CHECK_EQ_U64(pending, 0);
	CHECK_EQ_U64(above, 0);
	CHECK_EQ_U64(backwards, 0);
	CHECK_EQ_U64(issued, 3000);
	CHECK(txns >= 6 && txns <= 12);              /* 9 s of ticks, a fence move per ~1 s */

	/* Nothing commits any more: IDs stop below KV's fence. */
	uint64_t waited = 0;
	above = 0;
	for (int i = 0; i < 3000; i++) {
		now += 3;
		enum store_status st = store_snowflake(&s, now, 0, &sf, &id, &wait);
		if (st == STORE_PENDING)
			waited++;
		else if (st == STORE_OK && sf == SF_OK)
			above += tick_of_id(id) >= k.fence;
	}
	CHECK(waited > 2000);
	CHECK_EQ_U64(above, 0);
	CHECK(store_kv_pending(&s));
	CHECK_EQ_U64(shape_errors, 0);
	fkv_free(&k);
	store_close(&s);
}

/* ---- txn limits ---- */

struct cover {
	struct store *s;
	unsigned char *seen;
	size_t n;
	unsigned dup, wrong, foreign;
};

static int cover_fn(void *ud, const struct kv_entity *r)
{
	struct cover *c = ud;
	unsigned long idx;
	if (sscanf(r->name, "ent-%lu", &idx) != 1 || idx >= c->n) {
		c->foreign++;
		return 0;
	}
	c->dup += c->seen[idx]++ != 0;
	/* The record is the store's entity as it stands. */
	struct entity *e = NULL;
	for (size_t j = shard_kv_bucket(shard_kv_hash(r->name, r->name_len)); j < c->s->nbuckets && !e;
	     j += SHARD_KV_BUCKETS)
		for (struct entity *x = c->s->buckets[j]; x; x = x->next)
			if (x->name_len == r->name_len && memcmp(x->name, r->name, r->name_len) == 0)
				e = x;
	if (!e || e->type != r->type || e->start_i != r->start_i || e->reserved_i != r->mark_i ||
	    e->deleted != r->deleted)
		c->wrong++;
	return 0;
}

static void test_txns_cover_100k_entities(void)
{
	enum { N = 100000 };
	static const enum id_type types[] = { TYPE_INT, TYPE_LONG, TYPE_SNOWFLAKE, TYPE_UUID8 };
	struct store s;
	struct fkv k = { 0 };
	char name[ENTITY_NAME_MAX + 1];
	open_kv(&s, NULL);
	unsigned setup_errors = 0;
	for (unsigned i = 0; i < N; i++) {
		/* Names of 9 to 100 bytes. */
		int n = snprintf(name, sizeof name, "ent-%u-", i);
		size_t pad = (size_t)(i * 7919u % 93);
		memset(name + n, 'p', pad);
		name[n + (int)pad] = '\0';
		struct entity *e = make(&s, name, types[i % 4], 1000);
		if (!e) {
			setup_errors++;
			continue;
		}
		uint64_t first;
		if (i % 97 == 1 && store_take(&s, e, 3, 1000, &first) != STORE_OK)   /* not required yet */
			setup_errors++;
		if (i % 97 == 1 && store_delete(&s, name, strlen(name)) != STORE_OK)
			setup_errors++;
	}
	CHECK_EQ_U64(setup_errors, 0);
	store_kv_require(&s, 1);

	unsigned char *seen = calloc(N, 1);
	unsigned char bucket_seen[SHARD_KV_BUCKETS] = { 0 };
	struct cover c = { &s, seen, N, 0, 0, 0 };
	unsigned txns = 0, max_writes = 0, twice = 0, bad_values = 0, identity = 0, not_first = 0;
	size_t max_body = 0;
	size_t w;
	while ((w = build(&s)) != 0 && txns < 1000) {
		txns++;
		max_writes = w > max_writes ? (unsigned)w : max_writes;
		max_body = body.len > max_body ? body.len : max_body;
		for (size_t i = 0; i < nops; i++) {
			unsigned b = 0;
			int kind = key_kind(ops[i].key, &b);
			if (kind == 0) {
				identity++;
				not_first += txns != 1 || i != 0;
				continue;
			}
			if (kind != 2 || ops[i].del) {
				bad_values++;
				continue;
			}
			twice += bucket_seen[b]++ != 0;
			char err[160];
			if (shard_kv_parse_bucket(ops[i].val, ops[i].val_len, cover_fn, &c, err, sizeof err) != 0)
				bad_values++;
		}
		commit(&s, &k);
	}
	size_t missing = 0;
	for (size_t i = 0; i < N; i++)
		missing += seen[i] != 1;
	CHECK_EQ_U64(identity, 1);
	CHECK_EQ_U64(not_first, 0);
	CHECK_EQ_U64(missing, 0);
	CHECK_EQ_U64(c.dup, 0);
	CHECK_EQ_U64(c.wrong, 0);
	CHECK_EQ_U64(c.foreign, 0);
	CHECK_EQ_U64(twice, 0);
	CHECK_EQ_U64(bad_values, 0);
	CHECK(max_writes <= SHARD_KV_TXN_OPS - 2);
	CHECK_EQ_U64(max_writes, SHARD_KV_TXN_OPS - 2);   /* txns are filled */
	CHECK(max_body < SHARD_KV_TXN_BYTES);
	/* 4096 buckets and the identity, 62 writes each: 67 txns. */
	CHECK_EQ_U64(txns, (SHARD_KV_BUCKETS + 1 + SHARD_KV_TXN_OPS - 3) / (SHARD_KV_TXN_OPS - 2));
	CHECK(!store_kv_pending(&s));
	CHECK_EQ_U64(shape_errors, 0);
	CHECK_EQ_U64(limit_errors, 0);

	/* Every sequence's segment is now usable. */
	unsigned unusable = 0;
	for (size_t j = 0; j < s.nbuckets; j++)
		for (struct entity *e = s.buckets[j]; e; e = e->next)
			unusable += !e->kv_bound || e->kv_i != e->reserved_i;
	CHECK_EQ_U64(unusable, 0);

	/* One change is one write. */
	struct entity *e = store_find(&s, "ent-0-", 6);
	uint64_t first;
	CHECK(e && store_take(&s, e, e->reserved_i + 1, 2000, &first) == STORE_PENDING);
	CHECK_EQ_U64(build(&s), 1);
	commit(&s, &k);
	CHECK(e && store_take(&s, e, e->reserved_i - e->next_i, 2000, &first) == STORE_OK);
	free(seen);
	fkv_free(&k);
	store_close(&s);
}

/* Names of 128 bytes for each of nb buckets, per[i] of them for bucket
 * buckets[i]: a fixed 120-byte stem and an 8-byte suffix counted up until
 * the hash lands in a bucket that still needs names. */
static char *names_in_buckets(const unsigned *buckets, const unsigned *per, int nb)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._";
	unsigned total = 0, got[8] = { 0 }, off[8];
	for (int i = 0; i < nb; i++) {
		off[i] = total;
		total += per[i];
	}
	char *out = calloc(total, ENTITY_NAME_MAX + 1), name[ENTITY_NAME_MAX + 1];
	memset(name, 'S', 120);
	name[128] = '\0';
	uint32_t stem = shard_kv_hash(name, 120);
	unsigned done = 0;
	for (unsigned long ctr = 0; done < total; ctr++) {
		unsigned long v = ctr;
		uint32_t h = stem;
		for (int i = 0; i < 8; i++) {
			name[120 + i] = alpha[v & 63];
			h = (h ^ (uint8_t)name[120 + i]) * 16777619u;
			v >>= 6;
		}
		unsigned b = shard_kv_bucket(h);
		for (int i = 0; i < nb; i++)
			if (b == buckets[i] && got[i] < per[i]) {
				memcpy(out + (size_t)(off[i] + got[i]++) * (ENTITY_NAME_MAX + 1), name, 129);
				done++;
			}
	}
	return out;
}

/* Crowded buckets (names picked to collide, each value still below
 * SHARD_KV_VALUE_MAX): a txn holding more than one bucket stays below
 * SHARD_KV_TXN_BYTES, and never reaches Consul's 512 KiB. */
static void test_txn_bytes_with_crowded_buckets(void)
{
	static const unsigned buckets[] = { 0x123, 0x456, 0x789 };
	static const unsigned per[] = { 1030, 1030, 1850 };
	struct store s;
	struct fkv k = { 0 };
	unsigned setup_errors = 0, total = per[0] + per[1] + per[2];
	char *names = names_in_buckets(buckets, per, 3);
	open_kv(&s, NULL);
	/* In this order: the first two buckets fill most of a txn. */
	for (unsigned j = 0; j < total; j++) {
		const char *name = names + (size_t)j * (ENTITY_NAME_MAX + 1);
		setup_errors += shard_kv_hash(name, 128) != shard_kv_hash(name, strlen(name));
		setup_errors += make(&s, name, TYPE_INT, 1000) == NULL;
	}
	free(names);
	CHECK_EQ_U64(setup_errors, 0);
	CHECK_EQ_U64(s.count, total);
	store_kv_require(&s, 1);
	unsigned txns = 0, over = 0, over_consul = 0, written = 0, value_too_big = 0;
	size_t w;
	while ((w = build(&s)) != 0 && txns < 20) {
		txns++;
		unsigned nb = 0;
		for (size_t i = 0; i < nops; i++) {
			unsigned b;
			if (key_kind(ops[i].key, &b) == 2) {
				nb++;
				value_too_big += ops[i].val_len > SHARD_KV_VALUE_MAX;
			}
		}
		written += nb;
		if (nb > 1 && body.len >= SHARD_KV_TXN_BYTES) {
			over++;
			fprintf(stderr, "  txn %u: %u buckets in %zu bytes (SHARD_KV_TXN_BYTES %d)\n",
				txns, nb, body.len, SHARD_KV_TXN_BYTES);
		}
		over_consul += body.len > 512 * 1024;
		commit(&s, &k);
	}
	CHECK_EQ_U64(value_too_big, 0);   /* the setup is within the value limit */
	CHECK_EQ_U64(written, 3);
	CHECK_EQ_U64(over, 0);
	CHECK_EQ_U64(over_consul, 0);
	CHECK(!store_kv_pending(&s));
	/* (limit_errors counts bodies over the limit, one-bucket ones too.) */
	limit_errors = 0;
	fkv_free(&k);
	store_close(&s);
}

/* ---- merging after a takeover ---- */

/* A store holding KV's identity, with "m" (int, next 3, reserved 16). */
static struct entity *merge_setup(struct store *s, struct fkv *k)
{
	uint64_t first;
	open_kv(s, NULL);
	store_kv_require(s, 1);
	struct entity *e = make(s, "m", TYPE_INT, 1000);
	sync_all(s, k);
	CHECK(e && store_take(s, e, 3, 1000, &first) == STORE_OK);
	return e;
}

static void test_merge_kv_higher(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct entity *e = merge_setup(&s, &k);
	struct kv_entity r = kv_line("m", TYPE_INT, 0, 100, 0);
	uint64_t first;
	/* A binding whose txn committed but whose answer was lost. */
	struct entity *w = make(&s, "w", TYPE_UUID12, 1000);
	uint32_t wh = w ? w->hash : 0, wv = store_kv_version(&s, wh);
	CHECK_EQ_U64(build(&s), 1);
	lost_answer(&s, &k);
	CHECK(!store_kv_committed(&s, wh, wv));
	fkv_put(&k, &r);
	CHECK(takeover(&s, &k) == 0);
	/* KV holds it exactly as the store does: committed as it is. */
	CHECK(store_kv_committed(&s, wh, wv));
	w = store_find(&s, "w", 1);
	CHECK(w && w->kv_bound);
	e = store_find(&s, "m", 1);
	CHECK(e != NULL);
	CHECK_EQ_U64(e->next_i, 100);
	CHECK_EQ_U64(e->reserved_i, 100);
	CHECK_EQ_U64(e->kv_i, 100);
	CHECK(e->kv_bound);
	CHECK(!store_kv_pending(&s));              /* KV already holds it */
	CHECK_EQ_U64(s.kv->merged, 1);
	CHECK(store_take(&s, e, 1, 2000, &first) == STORE_PENDING);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 1, 2000, &first) == STORE_OK);
	CHECK_EQ_U64(first, 100);
	fkv_free(&k);
	store_close(&s);
}

static void test_merge_local_higher(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct entity *e = merge_setup(&s, &k);
	struct kv_entity r = kv_line("m", TYPE_INT, 0, 5, 0);
	uint64_t first;
	fkv_put(&k, &r);
	CHECK(takeover(&s, &k) == 0);
	e = store_find(&s, "m", 1);
	CHECK(e != NULL);
	CHECK_EQ_U64(e->next_i, 16);               /* above everything the journal reserved */
	CHECK_EQ_U64(e->kv_i, 5);
	CHECK(!e->kv_bound);
	CHECK(store_kv_pending(&s));               /* written back */
	CHECK(store_take(&s, e, 1, 2000, &first) == STORE_PENDING);
	CHECK_EQ_U64(build(&s), 1);
	char key[32];
	CHECK_STR(ops[0].key, strlen(ops[0].key), bucket_key(key, "m"));
	commit(&s, &k);
	CHECK(fkv_get(&k, "m", &r) && r.mark_i >= 16);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 1, 2000, &first) == STORE_OK);
	CHECK(first >= 16);
	fkv_free(&k);
	store_close(&s);
}

static void test_merge_deletion_and_type_win(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	merge_setup(&s, &k);
	struct entity *e;
	make(&s, "x", TYPE_LONG, 1000);
	make(&s, "t", TYPE_INT, 1000);
	make(&s, "w", TYPE_UUID8, 1000);
	sync_all(&s, &k);
	size_t count = s.count;
	CHECK_EQ_U64(count, 4);
	/* m: deleted in KV at its mark; x: deleted below the journal's mark;
	 * t: bound to long above; w: uuid8 -> snowflake. */
	r = kv_line("m", TYPE_INT, 0, 16, 1);
	fkv_put(&k, &r);
	r = kv_line("x", TYPE_LONG, 0, 10, 1);
	fkv_put(&k, &r);
	r = kv_line("t", TYPE_LONG, 40, 50, 0);
	fkv_put(&k, &r);
	r = kv_line("w", TYPE_SNOWFLAKE, 0, 0, 0);
	fkv_put(&k, &r);
	CHECK(takeover(&s, &k) == 0);
	CHECK(store_find(&s, "m", 1) == NULL);
	CHECK_EQ_U64(store_floor(&s, "m", 1), 16);
	CHECK(store_find(&s, "x", 1) == NULL);
	CHECK_EQ_U64(store_floor(&s, "x", 1), 16);   /* the higher mark stays */
	e = store_find(&s, "t", 1);
	CHECK(e && e->type == TYPE_LONG && e->start_i == 40 && e->next_i == 50);
	CHECK(e && entity_value(e, 50) == 2 + 50 * 3);
	e = store_find(&s, "w", 1);
	CHECK(e && e->type == TYPE_SNOWFLAKE && e->kv_bound);
	CHECK_EQ_U64(s.count, 2);
	CHECK_EQ_U64(s.kv->merged, 4);
	/* x's tombstone is written back with the higher mark; the rest is KV's. */
	CHECK_EQ_U64(build(&s), 1);
	commit(&s, &k);
	CHECK(fkv_get(&k, "x", &r) && r.deleted && r.mark_i == 16);
	CHECK(!store_kv_pending(&s));

	/* The opposite way: KV holds a live binding of a name the store deleted. */
	uint64_t first;
	e = store_find(&s, "t", 1);
	CHECK(e && store_take(&s, e, 1, 3000, &first) == STORE_PENDING);
	sync_all(&s, &k);
	CHECK(e && store_take(&s, e, 1, 3000, &first) == STORE_OK);
	CHECK(store_delete(&s, "t", 1) == STORE_OK);
	uint64_t floor = store_floor(&s, "t", 1);
	r = kv_line("t", TYPE_INT, 300, 316, 0);         /* another holder re-created it */
	fkv_put(&k, &r);
	CHECK(takeover(&s, &k) == 0);
	e = store_find(&s, "t", 1);
	CHECK(e && e->type == TYPE_INT && e->start_i == 300 && e->next_i == 316 && floor < 300);
	CHECK_EQ_U64(s.count, 2);
	fkv_free(&k);
	store_close(&s);
}

/* The style bound at init travels through KV: a fresh holder (no journal)
 * hands out the same forms, and KV's style wins like its type. */
static void test_merge_style(void)
{
	static const struct id_style user = { .prefix_len = 4, .prefix = "user" },
				     cust = { .prefix_len = 4, .prefix = "cust" },
				     b62 = { .format = FMT_BASE62 };
	struct store a, b;
	struct fkv k = { 0 };
	struct kv_entity r;
	struct entity *e;
	open_kv(&a, NULL);
	store_kv_require(&a, 1);
	CHECK(store_init(&a, "u", 1, TYPE_UUID7, &user, 0, 1000, &e) == STORE_OK);
	CHECK(store_init(&a, "f", 1, TYPE_SNOWFLAKE, &b62, 0, 1000, &e) == STORE_OK);
	make(&a, "c", TYPE_UUID7, 1000);
	sync_all(&a, &k);
	CHECK(fkv_get(&k, "u", &r) && id_style_same(&r.style, &user));
	CHECK(fkv_get(&k, "f", &r) && id_style_same(&r.style, &b62));
	CHECK(fkv_get(&k, "c", &r) && r.style.prefix_len == 0 && r.style.format == FMT_PLAIN);

	open_kv(&b, NULL);
	store_kv_require(&b, 1);
	CHECK(takeover(&b, &k) == 0);
	e = store_find(&b, "u", 1);
	CHECK(e && e->type == TYPE_UUID7 && id_style_same(&e->style, &user) && e->kv_bound);
	e = store_find(&b, "f", 1);
	CHECK(e && id_style_same(&e->style, &b62) && e->kv_bound);
	CHECK(!store_kv_pending(&b));

	/* Another holder re-created "c" with a prefix: KV's binding wins. */
	r = kv_line("c", TYPE_UUID7, 0, 0, 0);
	r.style = cust;
	fkv_put(&k, &r);
	CHECK(takeover(&a, &k) == 0);
	e = store_find(&a, "c", 1);
	CHECK(e && id_style_same(&e->style, &cust) && e->kv_bound);
	CHECK(!store_kv_pending(&a));
	fkv_free(&k);
	store_close(&a);
	store_close(&b);
}

static void test_merge_unknown_and_missing(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	uint64_t first;
	merge_setup(&s, &k);
	/* KV knows "new" and the tombstone "old"; the store knows "mine" only. */
	r = kv_line("new", TYPE_LONG, 7, 70, 0);
	fkv_put(&k, &r);
	r = kv_line("old", TYPE_INT, 0, 33, 1);
	fkv_put(&k, &r);
	make(&s, "mine", TYPE_INT, 1000);   /* never committed */
	CHECK(takeover(&s, &k) == 0);
	struct entity *e = store_find(&s, "new", 3);
	CHECK(e && e->type == TYPE_LONG && e->start_i == 7 && e->next_i == 70 && e->kv_i == 70 && e->kv_bound);
	CHECK(store_find(&s, "old", 3) == NULL);
	CHECK_EQ_U64(store_floor(&s, "old", 3), 33);
	CHECK_EQ_U64(s.count, 3);                    /* m, mine, new */
	/* What KV lacks is written back. */
	CHECK_EQ_U64(build(&s), 1);
	char key[32];
	CHECK_STR(ops[0].key, strlen(ops[0].key), bucket_key(key, "mine"));
	commit(&s, &k);
	CHECK(fkv_get(&k, "mine", &r) && r.mark_i == 16);
	CHECK(!store_kv_pending(&s));
	/* Re-creating the tombstone starts above it, once KV has the binding. */
	e = make(&s, "old", TYPE_INT, 2000);
	CHECK(e && e->start_i == 33);
	CHECK(e && store_take(&s, e, 1, 2000, &first) == STORE_PENDING);
	sync_all(&s, &k);
	CHECK(e && store_take(&s, e, 1, 2000, &first) == STORE_OK && first == 33);
	/* A malformed bucket value is an error naming the problem. */
	char err[200] = "";
	store_kv_read_begin(&s);
	CHECK_EQ_U64(store_kv_read_bucket(&s, "a int 9 3\n", 10, err, sizeof err), (uint64_t)-1);
	CHECK(strstr(err, "malformed") != NULL);
	fkv_free(&k);
	store_close(&s);
}

/* The position of a clean stop survives a takeover only when KV holds what
 * the journal holds (nobody else moved the entity). */
static void test_merge_keeps_clean_stop(const char *dir)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	uint64_t first;
	open_kv(&s, dir);
	store_kv_require(&s, 1);
	struct entity *e = make(&s, "g", TYPE_INT, 1000);
	make(&s, "h", TYPE_INT, 1000);
	make(&s, "i", TYPE_INT, 1000);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 5, 1000, &first) == STORE_OK);
	e = store_find(&s, "h", 1);
	CHECK(store_take(&s, e, 5, 1000, &first) == STORE_OK);
	e = store_find(&s, "i", 1);
	CHECK(store_take(&s, e, 5, 1000, &first) == STORE_OK);
	CHECK(store_stop(&s) == 0);
	store_close(&s);

	/* Restart: g equal in KV; h moved on by someone else; i with another start. */
	open_kv(&s, dir);
	store_kv_require(&s, 1);
	e = store_find(&s, "g", 1);
	CHECK(e && e->resumed && e->next_i == 5 && e->reserved_i == 16);
	r = kv_line("h", TYPE_INT, 0, 17, 0);
	fkv_put(&k, &r);
	r = kv_line("i", TYPE_INT, 2, 16, 0);
	fkv_put(&k, &r);
	CHECK(takeover(&s, &k) == 0);
	e = store_find(&s, "g", 1);
	CHECK(e && e->next_i == 5 && e->kv_bound && e->kv_i == 16);
	CHECK(store_take(&s, e, 1, 5000, &first) == STORE_OK && first == 5);
	e = store_find(&s, "h", 1);
	CHECK(e && e->next_i == 17);
	e = store_find(&s, "i", 1);
	CHECK(e && e->next_i == 16 && e->start_i == 2);
	CHECK(!store_kv_pending(&s));

	/* The merge is journaled: without KV, a restart continues above it. */
	store_close(&s);
	open_kv(&s, dir);
	e = store_find(&s, "h", 1);
	CHECK(e && e->next_i >= 17);
	e = store_find(&s, "i", 1);
	CHECK(e && e->start_i == 2 && e->next_i >= 16);
	e = store_find(&s, "g", 1);
	CHECK(e && e->next_i >= 6);
	fkv_free(&k);
	store_close(&s);
}

static void test_merge_fence(void)
{
	struct store s;
	struct fkv k = { 0 };
	enum sf_status sf;
	uint64_t id = 0, wait = 0, now = layout.epoch_ms + 10000000;   /* tick 1,000,000 */
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	sync_all(&s, &k);                                              /* identity */
	/* Another holder used ticks up to 1,000,500 (its clock ran ahead). */
	k.has_fence = 1;
	k.fence = 1000500;
	CHECK(takeover(&s, &k) == 0);
	CHECK_EQ_U64(s.fence, 1000500);
	CHECK_EQ_U64(s.kv->fence, 1000500);
	/* Now, 5 s before that tick: nothing (the clock is behind). */
	enum store_status st = store_snowflake(&s, now, 0, &sf, &id, &wait);
	CHECK(st != STORE_OK || sf != SF_OK || tick_of_id(id) >= 1000500);
	if (st == STORE_OK && sf == SF_WAIT)
		CHECK_EQ_U64(wait, 500 * layout.unit_ms);
	/* From shortly before the fence's tick on: IDs from ticks >= it only. */
	uint64_t issued = 0, below = 0, first_tick = 0;
	now = layout.epoch_ms + 1000500 * layout.unit_ms - 30;
	for (int i = 0; i < 800 && issued < 50; i++, now += 2) {
		st = store_snowflake(&s, now, i & 1, &sf, &id, &wait);
		if (st == STORE_OK && sf == SF_OK) {
			if (!issued++)
				first_tick = tick_of_id(id);
			below += tick_of_id(id) < 1000500;
		}
		if (store_kv_pending(&s) && build(&s))
			commit(&s, &k);
	}
	CHECK_EQ_U64(issued, 50);
	CHECK_EQ_U64(below, 0);
	CHECK_EQ_U64(first_tick, 1000500);

	/* KV's fence below the journal's: the journal's is written to KV. */
	k.fence = 10;
	CHECK(takeover(&s, &k) == 0);
	CHECK(store_kv_pending(&s));
	CHECK_EQ_U64(build(&s), 1);
	commit(&s, &k);
	CHECK_EQ_U64(k.fence, s.fence);
	CHECK(k.fence > 1000500);
	fkv_free(&k);
	store_close(&s);
}

/* ---- moving an entity below KV's committed mark ---- */

/* A reset (without force) to a point below KV's committed mark: the next
 * txn lowers KV's mark to the new segment, so the store must not hand out
 * values above what that txn carries. */
static void test_reset_below_committed_mark(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	uint64_t first, hi = 0;
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	struct entity *e = make(&s, "r", TYPE_INT, 1000);
	/* A busy second: a large segment, committed. */
	CHECK(store_take(&s, e, 1000, 2000, &first) == STORE_PENDING);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 1000, 2000, &first) == STORE_OK);
	CHECK(e->kv_i > 5000);
	CHECK(store_reset(&s, e, 2000, 0) == STORE_OK);
	if (store_take(&s, e, 1, 3000, &first) == STORE_OK)
		hi = first + 1;
	CHECK(build(&s) >= 1);                        /* the reset's segment, in flight */
	if (store_take(&s, e, 100, 3000, &first) == STORE_OK)
		hi = first + 100;
	commit(&s, &k);
	CHECK(fkv_get(&k, "r", &r));
	if (hi > r.mark_i)
		fprintf(stderr, "  handed out up to iteration %llu, KV's mark is %llu\n",
			(unsigned long long)hi - 1, (unsigned long long)r.mark_i);
	CHECK(hi <= r.mark_i);
	fkv_free(&k);
	store_close(&s);
}

/* Delete and re-create while the tombstone's txn is in flight: once it
 * commits, KV holds the tombstone at the floor, so the new binding's values
 * must wait for their own txn. */
static void test_recreate_while_tombstone_in_flight(void)
{
	struct store s;
	struct fkv k = { 0 };
	struct kv_entity r;
	uint64_t first;
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	struct entity *e = make(&s, "d", TYPE_INT, 1000);
	sync_all(&s, &k);
	CHECK(store_take(&s, e, 5, 1000, &first) == STORE_OK);
	CHECK(store_delete(&s, "d", 1) == STORE_OK);
	CHECK_EQ_U64(build(&s), 1);                    /* the tombstone */
	e = make(&s, "d", TYPE_INT, 1000);
	CHECK(e && e->start_i == 5);
	commit(&s, &k);
	CHECK(fkv_get(&k, "d", &r) && r.deleted && r.mark_i == 5);
	enum store_status st = e ? store_take(&s, e, 3, 1000, &first) : STORE_NOMEM;
	if (st == STORE_OK) {
		int live = fkv_get(&k, "d", &r) && !r.deleted && r.mark_i >= first + 3;
		if (!live)
			fprintf(stderr, "  handed out iterations %llu..%llu while KV holds \"d int 0 5 deleted\"\n",
				(unsigned long long)first, (unsigned long long)first + 2);
		CHECK(live);
	} else {
		CHECK(st == STORE_PENDING);
	}
	sync_all(&s, &k);
	CHECK(e && store_take(&s, e, 3, 1000, &first) == STORE_OK && first >= 5);
	fkv_free(&k);
	store_close(&s);
}

/* Two holders of the shard, one after the other: A's segment never reached
 * KV (its lock was lost), B reached the very same mark and handed out from
 * it; when A takes the shard back, KV equals A's journal, yet B used it. */
static void test_equal_mark_written_by_another_holder(void)
{
	struct store a, b;
	struct fkv k = { 0 };
	struct kv_entity r = kv_line("n", TYPE_INT, 0, 100, 0);
	uint64_t first, b_hi = 0;
	fkv_put(&k, &r);
	open_kv(&a, NULL);
	open_kv(&b, NULL);
	store_kv_require(&a, 1);
	store_kv_require(&b, 1);
	CHECK(takeover(&a, &k) == 0);
	struct entity *ea = store_find(&a, "n", 1);
	CHECK(ea && store_take(&a, ea, 1, 5000, &first) == STORE_PENDING);
	CHECK(build(&a) >= 1);
	fail(&a);                                      /* 409: the lock is gone */
	CHECK(takeover(&b, &k) == 0);
	struct entity *eb = store_find(&b, "n", 1);
	CHECK(eb && store_take(&b, eb, 1, 7000, &first) == STORE_PENDING);
	sync_all(&b, &k);
	for (int i = 0; i < 5; i++)
		if (eb && store_take(&b, eb, 1, 7000, &first) == STORE_OK)
			b_hi = first + 1;
	CHECK_EQ_U64(b_hi, 105);                       /* B handed out 100..104 */
	CHECK(fkv_get(&k, "n", &r));
	if (ea && r.mark_i == ea->reserved_i)
		fprintf(stderr, "  KV's mark %llu equals A's unconfirmed journal mark\n",
			(unsigned long long)r.mark_i);
	CHECK(takeover(&a, &k) == 0);                  /* B is gone; A again */
	ea = store_find(&a, "n", 1);
	int got = 0;
	for (int i = 0; i < 3 && !got; i++) {
		enum store_status st = ea ? store_take(&a, ea, 1, 9000, &first) : STORE_NOMEM;
		if (st == STORE_OK)
			got = 1;
		else
			sync_all(&a, &k);
	}
	CHECK(got);
	if (got && first < b_hi)
		fprintf(stderr, "  A handed out iteration %llu again (B used up to %llu)\n",
			(unsigned long long)first, (unsigned long long)b_hi - 1);
	CHECK(got && first >= b_hi);
	fkv_free(&k);
	store_close(&a);
	store_close(&b);
}

/* ---- random runs ---- */

#define NNAMES 6
static const char *const rnames[NNAMES] = { "n0", "n1", "n2", "n3", "n4", "n5" };

struct run {
	struct fkv k;
	uint64_t hi[NNAMES];         /* iterations below this may have been handed out */
	uint64_t rng;
	unsigned takes, repeats, above_mark, kv_below, bad_status, steps_merged;
};

static uint64_t rnd(struct run *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

/* After a commit: KV's mark covers everything handed out. */
static void check_kv_covers(struct run *r)
{
	struct kv_entity x;
	for (int n = 0; n < NNAMES; n++)
		if (r->hi[n] && (!fkv_get(&r->k, rnames[n], &x) || x.mark_i < r->hi[n]))
			r->kv_below++;
}

static void random_take(struct run *r, struct store *s, uint64_t mono)
{
	int n = (int)(rnd(r) % NNAMES);
	struct entity *e = store_find(s, rnames[n], 2);
	if (!e && !(e = make(s, rnames[n], rnd(r) & 1 ? TYPE_LONG : TYPE_INT, mono))) {
		r->bad_status++;
		return;
	}
	uint64_t first, k = rnd(r) % 8 ? 1 + rnd(r) % 12 : 1 + rnd(r) % 400;
	enum store_status st = store_take(s, e, k, mono, &first);
	if (st == STORE_PENDING)
		return;
	if (st != STORE_OK) {
		r->bad_status++;
		return;
	}
	struct kv_entity x;
	r->takes++;
	r->repeats += first < r->hi[n];
	if (!fkv_get(&r->k, rnames[n], &x) || x.deleted || x.mark_i < first + k)
		r->above_mark++;
	if (first + k > r->hi[n])
		r->hi[n] = first + k;
}

/* Another holder had the shard meanwhile: it moved marks, deleted,
 * re-created, or created names; whatever it may have handed out counts. */
static void rival(struct run *r)
{
	int n = (int)(rnd(r) % NNAMES);
	struct kv_entity x;
	uint64_t up = 1 + rnd(r) % 300;
	if (!fkv_get(&r->k, rnames[n], &x)) {
		x = kv_line(rnames[n], TYPE_INT, r->hi[n], r->hi[n] + up, 0);
	} else {
		int what = (int)(rnd(r) % 4);
		x.mark_i += up;
		if (what == 0 && !x.deleted) {
			x.deleted = 1;
		} else if (what == 1) {            /* re-created at the floor */
			x.deleted = 0;
			x.type = x.type == TYPE_INT ? TYPE_LONG : TYPE_INT;
			x.start_i = x.mark_i - up / 2;
		}
	}
	fkv_put(&r->k, &x);
	if (x.mark_i > r->hi[n])
		r->hi[n] = x.mark_i;
	if (rnd(r) % 3 == 0) {
		r->k.has_fence = 1;
		r->k.fence += rnd(r) % 1000;
	}
}

/* Resolves a txn in flight the way a lost lock does. */
static void drop(struct run *r, struct store *s, int *inflight)
{
	if (!*inflight)
		return;
	if (rnd(r) % 3 == 0) {
		lost_answer(s, &r->k);
		check_kv_covers(r);
	} else {
		fail(s);
	}
	*inflight = 0;
}

static void report(const char *what, const struct run *r)
{
	if (r->repeats || r->above_mark || r->kv_below || r->bad_status)
		fprintf(stderr, "  %s: %u takes, %u repeated, %u at or above KV's mark, "
			"%u times KV's mark below what was handed out, %u bad statuses\n",
			what, r->takes, r->repeats, r->above_mark, r->kv_below, r->bad_status);
}

/* One holder: takes, txns that commit, fail or lose their answer, and
 * takeovers after a rival moved KV; with `admin`, deletes (re-created by
 * the next take) and forward resets in between instead of lost answers
 * and rivals. Values still only move up. */
static void random_one_holder(const char *what, uint64_t seed, int admin)
{
	struct run r = { .rng = seed };
	struct store s;
	int inflight = 0;
	uint64_t mono = 1000;
	open_kv(&s, NULL);
	store_kv_require(&s, 1);
	for (int step = 0; step < 20000; step++) {
		int op = (int)(rnd(&r) % 100);
		mono += rnd(&r) % 40;
		if (op < 50) {
			random_take(&r, &s, mono);
		} else if (op < 65) {
			if (!inflight)
				inflight = build(&s) != 0;
		} else if (op < 80) {
			if (inflight) {
				commit(&s, &r.k);
				check_kv_covers(&r);
				inflight = 0;
			}
		} else if (op < (admin ? 84 : 86)) {
			if (inflight) {
				fail(&s);
				inflight = 0;
			}
		} else if (!admin && op < 89) {
			if (inflight) {
				lost_answer(&s, &r.k);
				check_kv_covers(&r);
				inflight = 0;
			}
		} else if (op < (admin ? 86 : 92)) {
			drop(&r, &s, &inflight);
			if (!admin && (rnd(&r) & 1))
				rival(&r);
			if (takeover(&s, &r.k) != 0)
				r.bad_status++;
			r.steps_merged++;
		} else if (admin && op < 93) {
			int n = (int)(rnd(&r) % NNAMES);
			if (store_find(&s, rnames[n], 2) && store_delete(&s, rnames[n], 2) != STORE_OK)
				r.bad_status++;
		} else if (admin) {
			int n = (int)(rnd(&r) % NNAMES);
			struct entity *e = store_find(&s, rnames[n], 2);
			if (e && store_reset(&s, e, e->next_i + rnd(&r) % 300, 0) != STORE_OK)
				r.bad_status++;
		}
	}
	if (inflight)
		commit(&s, &r.k);
	sync_all(&s, &r.k);
	check_kv_covers(&r);
	report(what, &r);
	CHECK(r.takes > 3000);
	CHECK(r.steps_merged > (admin ? 100u : 300u));
	CHECK_EQ_U64(r.repeats, 0);
	CHECK_EQ_U64(r.above_mark, 0);
	CHECK_EQ_U64(r.kv_below, 0);
	CHECK_EQ_U64(r.bad_status, 0);
	CHECK_EQ_U64(shape_errors, 0);
	CHECK_EQ_U64(limit_errors, 0);
	fkv_free(&r.k);
	store_close(&s);
}

static void test_random_one_holder(void)
{
	random_one_holder("one holder", 0x2545F4914F6CDD1Dull, 0);
}

static void test_random_with_deletes_and_resets(void)
{
	random_one_holder("deletes and resets", 0xD1B54A32D192ED03ull, 1);
}

/* Two real holders sharing KV; the lock moves between them. */
static void test_random_two_holders(void)
{
	struct run r = { .rng = 0x9E3779B97F4A7C15ull };
	struct store st[2];
	int inflight = 0, holder = 0;
	uint64_t mono = 1000;
	open_kv(&st[0], NULL);
	open_kv(&st[1], NULL);
	store_kv_require(&st[0], 1);
	store_kv_require(&st[1], 1);
	for (int step = 0; step < 20000; step++) {
		struct store *s = &st[holder];
		int op = (int)(rnd(&r) % 100);
		mono += rnd(&r) % 40;
		if (op < 50) {
			random_take(&r, s, mono);
		} else if (op < 65) {
			if (!inflight)
				inflight = build(s) != 0;
		} else if (op < 82) {
			if (inflight) {
				commit(s, &r.k);
				check_kv_covers(&r);
				inflight = 0;
			}
		} else if (op < 88) {
			if (inflight) {
				fail(s);
				inflight = 0;
			}
		} else if (op < 92) {
			drop(&r, s, &inflight);
			holder = (int)(rnd(&r) % 2);
			if (takeover(&st[holder], &r.k) != 0)
				r.bad_status++;
			r.steps_merged++;
		}
	}
	if (inflight)
		commit(&st[holder], &r.k);
	sync_all(&st[holder], &r.k);
	check_kv_covers(&r);
	report("two holders", &r);
	CHECK(r.takes > 3000);
	CHECK(r.steps_merged > 300);
	CHECK_EQ_U64(r.repeats, 0);
	CHECK_EQ_U64(r.above_mark, 0);
	CHECK_EQ_U64(r.kv_below, 0);
	CHECK_EQ_U64(r.bad_status, 0);
	fkv_free(&r.k);
	store_close(&st[0]);
	store_close(&st[1]);
}

static void in_dir(const char *name, void (*test)(const char *dir))
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/%s", base, name);
	if (mkdir(dir, 0700) != 0) {
		perror(dir);
		exit(1);
	}
	test(dir);
}

int main(void)
{
	char err[128];
	if (sf_layout_parse("sonyflake", &layout, err, sizeof err) != 0) {
		fprintf(stderr, "layout: %s\n", err);
		return 1;
	}
	log_set_level(LOG_ERROR);
	check_mkdtemp(base, sizeof base, "test_store_kv");
	buf_init(&body);
	test_take_waits_for_commit();
	test_bindings_and_deletes();
	test_snowflake_fence();
	test_txns_cover_100k_entities();
	test_txn_bytes_with_crowded_buckets();
	test_merge_kv_higher();
	test_merge_local_higher();
	test_merge_deletion_and_type_win();
	test_merge_style();
	test_merge_unknown_and_missing();
	in_dir("clean-stop", test_merge_keeps_clean_stop);
	test_merge_fence();
	test_reset_below_committed_mark();
	test_recreate_while_tombstone_in_flight();
	test_equal_mark_written_by_another_holder();
	test_random_one_holder();
	test_random_two_holders();
	test_random_with_deletes_and_resets();
	ops_free();
	buf_free(&body);
	check_rmtree(base);
	return check_summary("store_kv");
}
