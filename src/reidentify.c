#include "reidentify.h"

#include <string.h>

#include "clock.h"
#include "fmt.h"
#include "seq.h"
#include "shard_kv.h"
#include "snowflake.h"
#include "store.h"

struct identity {
	unsigned shard, total;
	uint64_t machine;
	struct sf_layout layout;
};

/* Parses what shard_kv_identity() writes, with the layout itself. */
static int parse_identity(const char *s, struct identity *id)
{
	char layout[64], err[200];
	return shard_kv_identity_parse(s, &id->shard, &id->total, layout, &id->machine) != 0 ||
	       sf_layout_parse(layout, &id->layout, err, sizeof err) != 0 ? -1 : 0;
}

/* The first iteration of `to` whose value lies above every value below
 * iteration i of `from` (the value of i itself was never handed out). */
static uint64_t carry(const struct seq_shape *from, const struct seq_shape *to, uint64_t i)
{
	return seq_first_from(to, seq_value(from, i));
}

struct convert {
	const struct identity *from, *to;
};

static void convert_entity(void *ud, struct entity *e)
{
	const struct convert *c = ud;
	struct seq_shape from = seq_shape_make(c->from->shard, c->from->total, e->type);
	struct seq_shape to = seq_shape_make(c->to->shard, c->to->total, e->type);
	e->start_i = carry(&from, &to, e->start_i);
	e->next_i = e->reserved_i = e->reserved_from_i = carry(&from, &to, e->reserved_i);
	e->resumed = 0;
	e->shape = to;
}

/* Snowflakes: the first tick of layout n above the largest ID the old
 * fence allowed in layout o, whatever machine (0: no fence). -1 when n has
 * no such tick. */
static int carry_fence(const struct sf_layout *o, const struct sf_layout *n, uint64_t old_fence,
		       uint64_t *fence)
{
	*fence = 0;
	if (!old_fence)
		return 0;
	uint64_t old_max = sf_compose(o, old_fence - 1, UINT64_MAX, UINT64_MAX);
	*fence = (old_max >> (n->seq_bits + n->machine_bits)) + 1;
	return *fence >> n->time_bits ? -1 : 0;
}

static void report_fence(int out, const struct sf_layout *n, uint64_t fence)
{
	char when[32];
	struct sf_parts p;
	sf_decompose(n, sf_compose(n, fence, 0, 0), &p);
	clock_iso8601(p.unix_ms, when);
	fmt_dprint(out, "snowflakes continue from tick %llu of %s (%s), above every ID issued before\n",
		(unsigned long long)fence, n->name, when);
}

int reidentify(const struct config *cfg, int out, char *err, size_t errlen)
{
	static struct store s;
	char found[SHARD_KV_IDENTITY_MAX];
	unsigned long records;
	struct identity from, to = { cfg->shard_id, cfg->total_shards, cfg->machine_id, cfg->layout };
	char mine[SHARD_KV_IDENTITY_MAX];
	shard_kv_identity(mine, cfg->shard_id, cfg->total_shards, cfg->layout.name, cfg->machine_id);

	if (cfg->consul_url[0]) {
		fmt_snprintf(err, errlen, "reidentify rewrites DATA_DIR only, and the shard's state in Consul "
			 "keeps the old identity: run it without CONSUL_URL (README: \"Changing a shard's identity\")");
		return -1;
	}
	int rc = store_peek_identity(cfg->data_dir, found, &records, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		fmt_snprintf(err, errlen, "DATA_DIR %s records no identity (%s): start it once with the "
			 "configuration that wrote it, which it then adopts, and reidentify after that",
			 cfg->data_dir, records ? "written by an older version" : "empty");
		return -1;
	}
	if (strcmp(found, mine) == 0) {
		fmt_dprint(out, "DATA_DIR %s already belongs to %s: nothing to do\n", cfg->data_dir, mine);
		return 0;
	}
	if (parse_identity(found, &from) != 0) {
		fmt_snprintf(err, errlen, "DATA_DIR %s records an identity this version cannot read: %s",
			 cfg->data_dir, found);
		return -1;
	}
	if (store_open(&s, cfg->data_dir, from.shard, from.total, &from.layout, from.machine,
		       err, errlen) != 0)
		return -1;

	uint64_t fence;
	if (carry_fence(&from.layout, &to.layout, s.fence, &fence) != 0) {
		store_close(&s);
		fmt_snprintf(err, errlen, "layout %s has no ID above the last ones of layout %s; "
			 "nothing was changed", to.layout.name, from.layout.name);
		return -1;
	}
	struct convert c = { &from, &to };
	store_each(&s, convert_entity, &c);
	s.shard = to.shard;
	s.total = to.total;
	s.fence = fence;
	memcpy(s.identity, mine, sizeof mine);
	if (store_compact(&s) != 0) {
		store_close(&s);
		fmt_snprintf(err, errlen, "cannot rewrite the journal in %s; nothing was changed", cfg->data_dir);
		return -1;
	}
	fmt_dprint(out, "DATA_DIR %s moved from %s to %s: %zu entities carried over by value "
		"(every new int/long value lies above every old one)\n",
		cfg->data_dir, found, mine, s.count);
	if (fence)
		report_fence(out, &to.layout, fence);
	store_close(&s);
	return 0;
}
