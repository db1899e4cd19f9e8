#include "reshard.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fmt.h"
#include "http_client.h"
#include "seq.h"
#include "sort.h"
#include "snowflake.h"

#define REQUEST_TIMEOUT_MS 10000
#define RESOLVE_TIMEOUT_MS 10000

void reshard_merge(struct reshard_entity *m, const struct kv_entity *line, unsigned shard,
		   unsigned total)
{
	uint64_t floor = 0;
	if (id_type_is_seq(line->type)) {
		/* Every value below the mark's may have been handed out. */
		struct seq_shape s = seq_shape_make(shard, total, line->type);
		floor = seq_value(&s, line->mark_i);
	}
	if (!m->e.name_len) {
		m->e = *line;
		m->floor = floor;
		return;
	}
	if (floor > m->floor)
		m->floor = floor;
	if (m->e.deleted && !line->deleted) {
		m->e = *line;   /* a live line's type and fields win over a deleted one's */
		m->e.deleted = 0;
	}
}

void reshard_line(const struct reshard_entity *m, unsigned shard, unsigned total,
		  struct kv_entity *out)
{
	*out = m->e;
	if (!id_type_is_seq(m->e.type))
		return;
	struct seq_shape s = seq_shape_make(shard, total, m->e.type);
	out->start_i = out->mark_i = seq_first_from(&s, m->floor);
}

/* ---- talking to Consul: one blocking request at a time ---- */

struct old_line {
	struct kv_entity e;
	unsigned shard, bucket;
};

struct reshard_run {
	const struct config *cfg;
	int out;              /* the report's file descriptor */
	char *err;
	size_t errlen;
	struct http_client http;
	char token[300];          /* "X-Consul-Token: ...\r\n" or "" */
	char config_key[140];
	struct shard_kv_cluster from;
	uint64_t index;           /* the configuration's ModifyIndex */
	/* the answer */
	int status;
	uint64_t answer_index;
	struct buf body;
	/* the old generation's entity lines, then merged */
	struct old_line *lines;
	size_t n, cap;
	struct reshard_entity *merged;
	size_t merged_n;
	uint64_t fence;
	unsigned reshard_to;
};

static void answered(void *ud, const struct http_result *r)
{
	struct reshard_run *x = ud;
	x->status = r->status;
	x->answer_index = http_result_header_u64(r, "X-Consul-Index");
	x->body.len = 0;
	if (r->status)
		buf_append(&x->body, r->body, r->body_len);
	else
		buf_puts(&x->body, r->error);
	buf_putc(&x->body, '\0');
	x->body.len--;
}

/* 0 when Consul answered with one of the two statuses (ok2 0: only ok). */
static int call(struct reshard_run *x, const char *method, const char *path, const struct buf *body,
		int ok, int ok2)
{
	if (http_client_request(&x->http, NULL, clock_mono_ms(), method, path, x->token,
				body ? body->data : NULL, body ? body->len : 0, REQUEST_TIMEOUT_MS,
				answered, x) != 0 || (body && body->failed)) {
		fmt_snprintf(x->err, x->errlen, "%s %s: cannot start the request (out of memory?)", method, path);
		return -1;
	}
	if (x->status == ok || (ok2 && x->status == ok2))
		return 0;
	fmt_snprintf(x->err, x->errlen, "%s %s: %s%d: %.200s", method, path, x->status ? "HTTP " : "",
		 x->status, x->body.len ? x->body.data : "");
	return -1;
}

static int resolve(struct reshard_run *x)
{
	uint64_t end = clock_mono_ms() + RESOLVE_TIMEOUT_MS;
	int rc;
	while ((rc = http_client_resolve(&x->http, x->err, x->errlen)) == 1) {
		struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		if (clock_mono_ms() > end) {
			fmt_snprintf(x->err, x->errlen, "looking up %s took over %u s", x->http.host,
				 RESOLVE_TIMEOUT_MS / 1000);
			return -1;
		}
		nanosleep(&ms10, NULL);
	}
	return rc;
}

/* GETs one key's value into out[0..*len) (cut at cap): 1 found, 0 absent,
 * -1 with x->err. */
static int get_value(struct reshard_run *x, const char *key, char *out, size_t cap, size_t *len)
{
	char path[300], why[160];
	fmt_snprintf(path, sizeof path, "/v1/kv/%s?consistent", key);
	if (call(x, "GET", path, NULL, 200, 404) != 0)
		return -1;
	int found = x->status == 200 ?
		shard_kv_listing_value(x->body.data, x->body.len, key, out, cap, len, why, sizeof why) : 0;
	if (found < 0)
		fmt_snprintf(x->err, x->errlen, "%s: %s", key, why);
	return found;
}

/* The cluster configuration into c, and its index into x->index. */
static int read_config(struct reshard_run *x, struct shard_kv_cluster *c)
{
	char v[SHARD_KV_CONFIG_MAX];
	size_t n = 0;
	int found = get_value(x, x->config_key, v, sizeof v, &n);
	if (found < 0)
		return -1;
	if (!found) {
		fmt_snprintf(x->err, x->errlen, "no cluster configuration at %s: start the cluster first "
			 "(its first instance writes it)", x->config_key);
		return -1;
	}
	if (shard_kv_config_parse(v, n, c) != 0) {
		fmt_snprintf(x->err, x->errlen, "the cluster configuration at %s is malformed: %.*s",
			 x->config_key, (int)(n > 160 ? 160 : n), v);
		return -1;
	}
	x->index = x->answer_index;
	return 0;
}

/* PUTs the configuration c if it is still at x->index; then reads it back
 * for its new index. */
static int write_config(struct reshard_run *x, const struct shard_kv_cluster *c)
{
	char text[SHARD_KV_CONFIG_MAX], path[300];
	struct shard_kv_cluster now;
	struct buf b;
	buf_init(&b);
	buf_append(&b, text, shard_kv_config(text, c));
	fmt_snprintf(path, sizeof path, "/v1/kv/%s?cas=%llu", x->config_key, (unsigned long long)x->index);
	int rc = call(x, "PUT", path, &b, 200, 0);
	buf_free(&b);
	if (rc == 0 && strncmp(x->body.data, "true", 4) != 0) {
		fmt_snprintf(x->err, x->errlen, "%s changed meanwhile (another reshard or a new cluster?): "
			 "nothing was switched; run it again", x->config_key);
		return -1;
	}
	return rc ? rc : read_config(x, &now);
}

/* ---- the old generation's state ---- */

struct collect { struct reshard_run *x; unsigned shard; const char *prefix; };

static unsigned bucket_of(const struct kv_entity *e)
{
	return shard_kv_bucket(shard_kv_hash(e->name, e->name_len));
}

static int add_line(void *ud, const struct kv_entity *e)
{
	struct collect *c = ud;
	struct reshard_run *x = c->x;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 1024;
		struct old_line *l = realloc(x->lines, cap * sizeof *l);
		if (!l)
			return -1;
		x->lines = l;
		x->cap = cap;
	}
	x->lines[x->n].e = *e;
	x->lines[x->n].bucket = bucket_of(e);
	x->lines[x->n++].shard = c->shard;
	return 0;
}

static int on_bucket(void *ud, const char *key, size_t key_len, const char *val, size_t val_len)
{
	struct collect *c = ud;
	size_t pl = strlen(c->prefix);
	char why[160] = "";
	if (key_len != pl + 5 || memcmp(key, c->prefix, pl) != 0 || memcmp(key + pl, "e/", 2) != 0)
		return 0;
	if (shard_kv_parse_bucket(val, val_len, add_line, c, why, sizeof why) != 0) {
		fmt_snprintf(c->x->err, c->x->errlen, "%.*s: %s", (int)key_len, key,
			 why[0] ? why : "out of memory");
		return -1;
	}
	return 0;
}

static int read_shard(struct reshard_run *x, unsigned k)
{
	char prefix[SHARD_KV_PREFIX_MAX], key[SHARD_KV_PREFIX_MAX + 8], path[300], why[160], v[24];
	size_t n = 0;
	uint64_t fence = 0;
	shard_kv_prefix(prefix, x->cfg->service_name, x->from.generation, k);
	fmt_snprintf(key, sizeof key, "%sfence", prefix);
	int found = get_value(x, key, v, sizeof v, &n), rc = found < 0 ? -1 : 0;
	if (found > 0 && (n == sizeof v || parse_u64(v, n, &fence) != 0)) {
		fmt_snprintf(x->err, x->errlen, "%s is not a decimal tick", key);
		rc = -1;
	}
	if (fence > x->fence)
		x->fence = fence;
	struct collect c = { x, k, prefix };
	for (int page = 0; rc == 0 && page < SHARD_KV_PAGES; page++) {
		fmt_snprintf(path, sizeof path, "/v1/kv/%se/%x?recurse&consistent", prefix, page);
		rc = call(x, "GET", path, NULL, 200, 404);
		if (rc || x->status == 404)
			continue;
		x->err[0] = '\0';
		if (shard_kv_parse_listing(x->body.data, x->body.len, on_bucket, &c, why, sizeof why) != 0) {
			if (!x->err[0])   /* else on_bucket said why */
				fmt_snprintf(x->err, x->errlen, "%s: %s", path, why);
			rc = -1;
		}
	}
	return rc;
}

/* Lines by bucket, then name: a name's lines are neighbours, and the
 * merged entities come out in the order their buckets are written. */
static int by_bucket_name(const void *a, const void *b)
{
	const struct old_line *p = *(struct old_line *const *)a, *q = *(struct old_line *const *)b;
	if (p->bucket != q->bucket)
		return p->bucket > q->bucket ? 1 : -1;
	size_t n = p->e.name_len < q->e.name_len ? p->e.name_len : q->e.name_len;
	int c = memcmp(p->e.name, q->e.name, n);
	return c ? c : (p->e.name_len > q->e.name_len) - (p->e.name_len < q->e.name_len);
}

/* One merged entity per name, ordered by bucket. Pointers are sorted, not
 * the lines: a line is a few hundred bytes. */
static int merge(struct reshard_run *x)
{
	struct old_line **order = malloc((x->n ? x->n : 1) * sizeof *order);
	x->merged = calloc(x->n ? x->n : 1, sizeof *x->merged);
	if (!order || !x->merged) {
		free(order);
		fmt_snprintf(x->err, x->errlen, "out of memory merging %zu entity lines", x->n);
		return -1;
	}
	for (size_t i = 0; i < x->n; i++)
		order[i] = &x->lines[i];
	sort(order, x->n, sizeof *order, by_bucket_name);
	for (size_t i = 0; i < x->n; i++) {
		if (i && by_bucket_name(&order[i - 1], &order[i]) != 0)
			x->merged_n++;
		reshard_merge(&x->merged[x->merged_n], &order[i]->e, order[i]->shard, x->from.total);
	}
	if (x->n)
		x->merged_n++;
	free(order);
	return 0;
}

/* ---- the new generation's state ---- */

/* Starts a txn in b that writes only while the configuration is the one
 * this run read (or wrote) last. */
static void txn_begin(struct reshard_run *x, struct buf *b, size_t *ops)
{
	struct shard_kv_guard g = { NULL, NULL, x->config_key, x->index };
	b->len = 0;
	*ops = 0;
	shard_kv_txn_begin(b, &g);
}

/* Sends the txn in b (closing it) unless it holds only its check. */
static int flush(struct reshard_run *x, struct buf *b, size_t *ops)
{
	if (!*ops)
		return 0;
	shard_kv_txn_end(b);
	int rc = call(x, "PUT", "/v1/txn", b, 200, 0);
	txn_begin(x, b, ops);
	return rc;
}

/* Counts the op just added; a full txn (63 writes after its check) goes. */
static int add_op(struct reshard_run *x, struct buf *b, size_t *ops)
{
	return ++*ops < SHARD_KV_TXN_OPS - 1 ? 0 : flush(x, b, ops);
}

/* Deletes everything a generation (above 1) keeps under its own prefix. */
static int del_generation(struct reshard_run *x, struct buf *b, size_t *ops, uint64_t generation)
{
	char tree[SHARD_KV_PREFIX_MAX];
	fmt_snprintf(tree, sizeof tree, "%s/generations/%llu/", x->cfg->service_name,
		     (unsigned long long)generation);
	shard_kv_txn_del_tree(b, tree);
	return add_op(x, b, ops);
}

/* Shard k of the new layout: every entity, bucket by bucket, and the fence. */
static int write_shard(struct reshard_run *x, unsigned k, struct buf *b, size_t *ops)
{
	char prefix[SHARD_KV_PREFIX_MAX], key[SHARD_KV_PREFIX_MAX + 8], num[24];
	struct buf val;
	int rc = 0;
	uint64_t next = x->from.generation + 1;
	shard_kv_prefix(prefix, x->cfg->service_name, next, k);
	buf_init(&val);
	for (size_t i = 0; rc == 0 && i < x->merged_n; i++) {
		const struct reshard_entity *m = &x->merged[i];
		unsigned bucket = bucket_of(&m->e);
		struct kv_entity line;
		reshard_line(m, k, x->reshard_to, &line);
		shard_kv_put_entity(&val, &line);
		if (i + 1 < x->merged_n && bucket_of(&m[1].e) == bucket)
			continue;   /* more of this bucket */
		fmt_snprintf(key, sizeof key, "%se/%03x", prefix, bucket);
		/* base64 plus the op's JSON must fit the txn: else send first. */
		if (*ops && b->len + val.len / 3 * 4 + 400 > SHARD_KV_TXN_BYTES && (rc = flush(x, b, ops)) != 0)
			break;
		shard_kv_txn_set(b, key, val.data, val.len);
		val.len = 0;
		rc = add_op(x, b, ops);
	}
	if (rc == 0 && x->fence) {
		fmt_snprintf(key, sizeof key, "%sfence", prefix);
		fmt_snprintf(num, sizeof num, "%llu", (unsigned long long)x->fence);
		shard_kv_txn_set(b, key, num, strlen(num));
		rc = add_op(x, b, ops);
	}
	if (rc == 0 && val.failed) {
		fmt_snprintf(x->err, x->errlen, "out of memory writing shard %u", k);
		rc = -1;
	}
	buf_free(&val);
	return rc;
}

/* Generation g+1 for every new shard, written from scratch: what an
 * earlier, interrupted run left there is deleted first. */
static int write_generation(struct reshard_run *x)
{
	struct buf b;
	size_t ops;
	buf_init(&b);
	txn_begin(x, &b, &ops);
	int rc = del_generation(x, &b, &ops, x->from.generation + 1);
	for (unsigned k = 1; rc == 0 && k <= x->reshard_to; k++)
		rc = write_shard(x, k, &b, &ops);
	if (rc == 0)
		rc = flush(x, &b, &ops);
	buf_free(&b);
	return rc;
}

/* The old generation's state, once nothing reads it any more. */
static int delete_old(struct reshard_run *x)
{
	char tree[SHARD_KV_PREFIX_MAX];
	struct buf b;
	size_t ops;
	int rc = 0;
	buf_init(&b);
	txn_begin(x, &b, &ops);
	if (x->from.generation > 1)
		rc = del_generation(x, &b, &ops, x->from.generation);
	/* Generation 1's keys sit beside the locks (<svc>/shards/<k>), which stay. */
	for (unsigned k = 1; rc == 0 && x->from.generation == 1 && k <= x->from.total; k++) {
		shard_kv_prefix(tree, x->cfg->service_name, 1, k);
		shard_kv_txn_del_tree(&b, tree);
		rc = add_op(x, &b, &ops);
	}
	if (rc == 0)
		rc = flush(x, &b, &ops);
	buf_free(&b);
	return rc;
}

/* The layout must give every new shard a machine ID of its own. */
static int check_layout(struct reshard_run *x)
{
	struct sf_layout l;
	char why[200];
	if (sf_layout_parse(x->from.layout, &l, why, sizeof why) != 0) {
		fmt_snprintf(x->err, x->errlen, "the cluster's layout %s: %s", x->from.layout, why);
		return -1;
	}
	uint64_t need = config_machine_default(&l, x->reshard_to), max = sf_max_machine(&l);
	if (need > max) {
		fmt_snprintf(x->err, x->errlen, "layout %s holds machine IDs 0..%llu; %u shards need up to %llu: "
			 "nothing was changed", l.name, (unsigned long long)max, x->reshard_to,
			 (unsigned long long)need);
		return -1;
	}
	return 0;
}

static int run(struct reshard_run *x, uint64_t *frozen_ms)
{
	unsigned to = x->reshard_to;
	if (resolve(x) != 0 || read_config(x, &x->from) != 0)
		return -1;
	if (x->from.reshard_to && x->from.reshard_to != to) {
		fmt_snprintf(x->err, x->errlen, "a reshard to %u shards is under way (%s): finish it first "
			 "(shardid reshard --total %u)", x->from.reshard_to, x->config_key, x->from.reshard_to);
		return -1;
	}
	if (!x->from.reshard_to && x->from.total == to) {
		fmt_dprint(x->out, "%s has %u shards already: nothing to do\n", x->config_key, to);
		return 1;
	}
	if (check_layout(x) != 0)
		return -1;
	uint64_t t0 = clock_mono_ms();
	if (!x->from.reshard_to) {
		struct shard_kv_cluster frozen = x->from;
		frozen.reshard_to = to;
		if (write_config(x, &frozen) != 0)
			return -1;
		fmt_dprint(x->out, "frozen %s at %u shards (generation %llu): no shard reserves more\n",
			x->config_key, x->from.total, (unsigned long long)x->from.generation);
	} else {
		fmt_dprint(x->out, "%s is frozen already for a reshard to %u shards: finishing it\n",
			x->config_key, to);
	}
	for (unsigned k = 1; k <= x->from.total; k++)
		if (read_shard(x, k) != 0)
			return -1;
	if (merge(x) != 0 || write_generation(x) != 0)
		return -1;
	struct shard_kv_cluster next = x->from;
	next.total = to;
	next.generation++;
	next.reshard_to = 0;
	if (write_config(x, &next) != 0)
		return -1;
	*frozen_ms = clock_mono_ms() - t0;
	return 0;
}

int reshard(const struct config *cfg, unsigned to, int out, char *err, size_t errlen)
{
	static struct reshard_run x;
	uint64_t frozen_ms = 0;
	memset(&x, 0, sizeof x);
	x.cfg = cfg;
	x.out = out;
	x.err = err;
	x.errlen = errlen;
	x.reshard_to = to;
	if (!cfg->consul_url[0]) {
		fmt_snprintf(err, errlen, "reshard needs CONSUL_URL: the cluster's state lives in Consul");
		return -1;
	}
	if (to < 1 || to > 1024) {
		fmt_snprintf(err, errlen, "--total must be 1..1024");
		return -1;
	}
	fmt_snprintf(x.config_key, sizeof x.config_key, "%s/config", cfg->service_name);
	if (cfg->consul_token[0])
		fmt_snprintf(x.token, sizeof x.token, "X-Consul-Token: %s\r\n", cfg->consul_token);
	buf_init(&x.body);
	if (http_client_init(&x.http, cfg->consul_url, err, errlen) != 0)
		return -1;
	x.http.max_response = 32u << 20;   /* one page of a shard's state */
	int rc = run(&x, &frozen_ms);
	if (rc == 0) {
		fmt_dprint(out, "resharded %s from %u to %u shards (generation %llu): %zu entities continue above "
			"every value of the old layout", cfg->service_name, x.from.total, to,
			(unsigned long long)(x.from.generation + 1), x.merged_n);
		if (x.fence)
			fmt_dprint(out, ", snowflakes from tick %llu", (unsigned long long)x.fence);
		fmt_dprint(out, "; frozen for %llu ms\n", (unsigned long long)frozen_ms);
		if (delete_old(&x) != 0)
			fmt_dprint(out, "warning: the old generation's state stays in Consul: %s\n", err);
		err[0] = '\0';
	}
	http_client_close(&x.http, NULL);
	http_client_free(&x.http);
	buf_free(&x.body);
	free(x.lines);
	free(x.merged);
	return rc < 0 ? -1 : 0;
}
