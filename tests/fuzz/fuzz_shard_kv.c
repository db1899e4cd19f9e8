/* libFuzzer target for shard_kv.c, the codec of the shard state Consul holds
 * (what a takeover trusts). Each input is read three ways:
 *  - as Consul's KV listing: shard_kv_parse_listing accepts or rejects it
 *    without reading past the input; every key it reports lies inside the
 *    input, and every value is the base64 decoding of bytes inside it;
 *  - as a bucket value: every entity shard_kv_parse_bucket reports has a
 *    valid name, start <= mark and a style that suits its type, and writing it back with
 *    shard_kv_put_entity parses to the same entity;
 *  - as bytes: base64 encoding then decoding gives them back.
 * fuzz-src: src/shard_kv.c src/json.c src/buf.c src/idtype.c src/tsid.c src/fmt.c src/http_lex.c */
#include "shard_kv.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

static const char *in_base;
static size_t in_len;

static int on_kv(void *ud, const char *key, size_t key_len, const char *val, size_t val_len)
{
	(void)ud;
	MUST(key >= in_base && key + key_len <= in_base + in_len);
	MUST(val_len <= in_len);
	if (val_len)
		MUST(val != NULL);
	return 0;
}

struct again { const struct kv_entity *want; int seen; };

static int same(void *ud, const struct kv_entity *e)
{
	struct again *a = ud;
	const struct kv_entity *w = a->want;
	MUST(e->name_len == w->name_len && memcmp(e->name, w->name, e->name_len) == 0);
	MUST(e->type == w->type && e->start_i == w->start_i && e->mark_i == w->mark_i);
	MUST(e->deleted == w->deleted && id_style_same(&e->style, &w->style));
	a->seen++;
	return 0;
}

static int on_entity(void *ud, const struct kv_entity *e)
{
	(void)ud;
	MUST(entity_name_valid(e->name, e->name_len) && e->name[e->name_len] == '\0');
	MUST(e->start_i <= e->mark_i && (unsigned)e->type < TYPE_COUNT);
	MUST(!id_style_problem(e->type, &e->style) && e->style.prefix[e->style.prefix_len] == '\0');
	struct buf b;
	char err[160];
	struct again a = { e, 0 };
	buf_init(&b);
	shard_kv_put_entity(&b, e);
	MUST(!b.failed && shard_kv_parse_bucket(b.data, b.len, same, &a, err, sizeof err) == 0);
	MUST(a.seen == 1);
	buf_free(&b);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char err[200];
	in_base = s;
	in_len = size;
	int rc = shard_kv_parse_listing(s, size, on_kv, NULL, err, sizeof err);
	MUST(rc == 0 || rc == -1);
	rc = shard_kv_parse_bucket(s, size, on_entity, NULL, err, sizeof err);
	MUST(rc == 0 || rc == -1);

	struct buf b;
	buf_init(&b);
	shard_kv_base64(&b, s, size);
	MUST(!b.failed && b.len == (size + 2) / 3 * 4);
	char *out = malloc(size + 1);
	MUST(out);
	MUST(shard_kv_unbase64(b.data, b.len, out, size + 1) == (long)size);
	MUST(memcmp(out, s, size) == 0);
	/* Decoding the input itself never writes past its bound. */
	long n = shard_kv_unbase64(s, size, out, size + 1);
	MUST(n >= -1 && n <= (long)size);
	free(out);
	buf_free(&b);
	return 0;
}
