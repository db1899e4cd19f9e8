#include "store_kv.h"

#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "log.h"

int store_kv_enable(struct store *s)
{
	if (!s->kv && !(s->kv = calloc(1, sizeof *s->kv)))
		return -1;
	return 0;
}

void store_kv_require(struct store *s, int on)
{
	struct store_kv *kv = s->kv;
	if (!kv || kv->required == on)
		return;
	kv->required = on;
	/* Snowflakes stop at the lower of the two fences while replicated. */
	s->gen.fence_tick = on ? (kv->fence < s->fence ? kv->fence : s->fence) : s->fence;
}

/* ---- reading after a takeover ---- */

static void forget(void *ud, struct entity *e)
{
	(void)ud;
	e->kv_bound = e->kv_sent = 0;
	e->kv_i = 0;
}

void store_kv_read_begin(struct store *s)
{
	struct store_kv *kv = s->kv;
	store_each(s, forget, NULL);
	memset(kv->queued, 0, sizeof kv->queued);
	kv->qhead = kv->qlen = kv->txn_n = 0;
	kv->txn_fence = kv->txn_identity = 0;
	kv->fence = kv->fence_want = kv->fence_sent = 0;
	kv->identity_ok = 0;
	kv->merged = 0;
}

static int merge_one(void *ud, const struct kv_entity *e)
{
	return store_merge_entity(ud, e) != 0 ? -2 : 0;
}

int store_kv_read_bucket(struct store *s, const char *val, size_t n, char *err, size_t errlen)
{
	int rc = shard_kv_parse_bucket(val, n, merge_one, s, err, errlen);
	if (rc == -2)
		fmt_snprintf(err, errlen, "out of memory merging the shard state");
	return rc ? -1 : 0;
}

static void queue_unbound(void *ud, struct entity *e)
{
	if (!e->kv_bound)
		store_touch(ud, e);
}

int store_kv_read_end(struct store *s)
{
	struct store_kv *kv = s->kv;
	store_each(s, queue_unbound, s);
	/* A bucket KV holds exactly as the store does is committed as it is
	 * (a change whose txn answer was lost, for instance). */
	for (unsigned b = 0; b < SHARD_KV_BUCKETS; b++)
		if (!kv->queued[b])
			kv->done[b] = kv->ver[b];
	if (!kv->merged || !s->journal)
		return 0;
	log_info("msg=\"merged the shard state from Consul into the journal\" changed=%u", kv->merged);
	return store_compact(s);
}

/* ---- writing ---- */

static void encode_entity(void *ud, struct entity *e)
{
	struct buf *val = ud;
	struct kv_entity r = {
		.name_len = e->name_len, .type = e->type, .style = e->style, .start_i = e->start_i,
		.mark_i = e->reserved_i, .deleted = e->deleted,
	};
	memcpy(r.name, e->name, e->name_len);
	shard_kv_put_entity(val, &r);
}

static void mark_sent(void *ud, struct entity *e)
{
	(void)ud;
	e->kv_sent = 1;
	e->kv_sent_i = e->reserved_i;
}

static void key_of(char *out, size_t cap, const char *prefix, const char *what, unsigned bucket)
{
	if (what)
		fmt_snprintf(out, cap, "%s%s", prefix, what);
	else
		fmt_snprintf(out, cap, "%se/%03x", prefix, bucket);
}

size_t store_kv_txn(struct store *s, struct buf *body, const char *prefix,
		    const struct shard_kv_guard *guard)
{
	struct store_kv *kv = s->kv;
	char key[300], num[24];
	size_t ops = 0;
	struct buf val;
	if (!kv || !store_kv_pending(s))
		return 0;
	buf_init(&val);
	shard_kv_txn_begin(body, guard);
	kv->txn_identity = !kv->identity_ok;
	if (kv->txn_identity) {
		key_of(key, sizeof key, prefix, "identity", 0);
		shard_kv_txn_set(body, key, s->identity, strlen(s->identity));
		ops++;
	}
	kv->txn_fence = kv->fence_want > kv->fence;
	if (kv->txn_fence) {
		kv->fence_sent = kv->fence_want;
		key_of(key, sizeof key, prefix, "fence", 0);
		shard_kv_txn_set(body, key, num, fmt_u64(num, kv->fence_sent));
		ops++;
	}
	kv->txn_n = 0;
	while (kv->qlen && ops < SHARD_KV_TXN_OPS - 2) {   /* after the guard's two checks */
		unsigned b = kv->queue[kv->qhead];
		val.len = 0;
		store_each_in_bucket(s, b, encode_entity, &val);
		/* base64 plus the op's JSON; a txn takes at least one bucket. */
		if (kv->txn_n && body->len + val.len / 3 * 4 + 200 > SHARD_KV_TXN_BYTES)
			break;
		kv->qhead = (kv->qhead + 1) % SHARD_KV_BUCKETS;
		kv->qlen--;
		kv->queued[b] = 0;
		kv->sent[b] = kv->ver[b];
		kv->txn[kv->txn_n++] = (uint16_t)b;
		store_each_in_bucket(s, b, mark_sent, NULL);
		key_of(key, sizeof key, prefix, NULL, b);
		if (val.len)
			shard_kv_txn_set(body, key, val.data, val.len);
		else
			shard_kv_txn_del(body, key);
		ops++;
	}
	shard_kv_txn_end(body);
	buf_free(&val);
	return ops;
}

static void commit_entity(void *ud, struct entity *e)
{
	int committed = *(int *)ud;
	if (!e->kv_sent)
		return;
	e->kv_sent = 0;
	if (committed) {
		e->kv_i = e->kv_sent_i;
		e->kv_bound = 1;
	}
}

void store_kv_txn_done(struct store *s, int committed)
{
	struct store_kv *kv = s->kv;
	for (size_t i = 0; i < kv->txn_n; i++) {
		unsigned b = kv->txn[i];
		store_each_in_bucket(s, b, commit_entity, &committed);
		if (committed) {
			kv->done[b] = kv->sent[b];
		} else if (!kv->queued[b]) {
			kv->queued[b] = 1;
			kv->queue[(kv->qhead + kv->qlen++) % SHARD_KV_BUCKETS] = (uint16_t)b;
		}
	}
	if (committed && kv->txn_fence) {
		kv->fence = kv->fence_sent;
		if (kv->required)
			s->gen.fence_tick = kv->fence < s->fence ? kv->fence : s->fence;
	}
	if (committed && kv->txn_identity)
		kv->identity_ok = 1;
	kv->txn_n = 0;
	kv->txn_fence = kv->txn_identity = 0;
}

int store_kv_pending(const struct store *s)
{
	const struct store_kv *kv = s->kv;
	return kv && (kv->qlen || kv->fence_want > kv->fence || !kv->identity_ok);
}

uint32_t store_kv_version(const struct store *s, uint32_t hash)
{
	return s->kv ? s->kv->ver[shard_kv_bucket(hash)] : 0;
}

int store_kv_committed(const struct store *s, uint32_t hash, uint32_t version)
{
	return !s->kv || (int32_t)(s->kv->done[shard_kv_bucket(hash)] - version) >= 0;
}
