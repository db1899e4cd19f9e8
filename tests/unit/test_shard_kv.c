/* Unit tests for shard_kv.c, the pure codec of the shard state in Consul KV:
 * the identity text, FNV-1a buckets, bucket lines (every malformed shape,
 * every truncation), base64 both ways (RFC 4648 vectors, bad input, in
 * place, capacity), Consul's KV listing (fields, nulls, stops, malformed
 * input and every truncation) and the txn bodies. Every parser input sits
 * flush against a PROT_NONE page (check_at_edge), so reading one byte past
 * it crashes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "check.h"
#include "kv_line.h"
#include "json.h"
#include "shard_kv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDGE_ROOM (1u << 20)

static char err[256];

/* ---- identity and buckets ---- */

static void test_identity(void)
{
	char out[SHARD_KV_IDENTITY_MAX];
	size_t n = shard_kv_identity(out, 3, 8, "sonyflake", 42);
	CHECK_STR(out, n, "shard=3 totalShards=8 layout=sonyflake machineId=42");
	CHECK_EQ_U64(strlen(out), n);

	n = shard_kv_identity(out, 1024, 1024, "custom:1/12/10/0", UINT64_MAX);
	CHECK_STR(out, n, "shard=1024 totalShards=1024 layout=custom:1/12/10/0 machineId=18446744073709551615");

	/* Too long for the buffer: cut, NUL-terminated, length of what is there. */
	char layout[300];
	memset(layout, 'x', sizeof layout - 1);
	layout[sizeof layout - 1] = '\0';
	memset(out, 0x55, sizeof out);
	n = shard_kv_identity(out, 1, 1, layout, 1);
	CHECK_EQ_U64(n, SHARD_KV_IDENTITY_MAX - 1);
	CHECK(out[SHARD_KV_IDENTITY_MAX - 1] == '\0');
	CHECK_EQ_U64(strlen(out), n);
	CHECK(memcmp(out, "shard=1 totalShards=1 layout=xxx", 32) == 0);

	/* Parsed back. */
	unsigned k, total;
	uint64_t machine;
	char lay[64];
	shard_kv_identity(out, 1024, 1024, "custom:1/12/10/0", UINT64_MAX);
	CHECK(shard_kv_identity_parse(out, &k, &total, lay, &machine) == 0 && k == 1024 && total == 1024 &&
	      machine == UINT64_MAX && strcmp(lay, "custom:1/12/10/0") == 0);
	static const char *const bad[] = {
		"", "shard=3", "shard=0 totalShards=2 layout=twitter machineId=0",
		"shard=3 totalShards=2 layout=twitter machineId=0", "shard=1 totalShards=1025 layout=twitter machineId=0",
		"shard=1 totalShards=2 layout=twitter machineId=", "shard=1 totalShards=2 layout=twitter machineId=1 x",
		"shard=1 totalShards=2 layout=twitter", "shard=x totalShards=2 layout=twitter machineId=1",
		"shard=1  totalShards=2 layout=twitter machineId=1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(shard_kv_identity_parse(bad[i], &k, &total, lay, &machine) == -1);
}

static void test_hash_and_bucket(void)
{
	/* FNV-1a 32-bit reference values. */
	CHECK_EQ_U64(shard_kv_hash("", 0), 0x811c9dc5u);
	CHECK_EQ_U64(shard_kv_hash("a", 1), 0xe40c292cu);
	CHECK_EQ_U64(shard_kv_hash("foobar", 6), 0xbf9cf968u);
	/* Bytes above 0x7f hash as unsigned. */
	CHECK_EQ_U64(shard_kv_hash("\xff", 1), (0x811c9dc5u ^ 0xffu) * 16777619u);
	CHECK_EQ_U64(shard_kv_bucket(0xe40c292cu), 0x92c);
	CHECK_EQ_U64(shard_kv_bucket(0xffffffffu), SHARD_KV_BUCKETS - 1);
	CHECK_EQ_U64(shard_kv_bucket(0x1000u), 0);
	/* Every bucket is reachable: the low 12 bits spread over all 4096. */
	static unsigned char seen[SHARD_KV_BUCKETS];
	unsigned distinct = 0;
	char name[32];
	for (unsigned i = 0; i < 100000; i++) {
		int n = snprintf(name, sizeof name, "entity-%u", i);
		unsigned b = shard_kv_bucket(shard_kv_hash(name, (size_t)n));
		distinct += !seen[b];
		seen[b] = 1;
	}
	CHECK_EQ_U64(distinct, SHARD_KV_BUCKETS);
}

/* ---- bucket lines ---- */

struct collect {
	struct kv_entity e[64];
	unsigned n;
	unsigned stop_at;   /* return 99 on this call (1-based; 0: never) */
};

static int collect_fn(void *ud, const struct kv_entity *e)
{
	struct collect *c = ud;
	if (c->n < 64)
		c->e[c->n] = *e;
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 99 : 0;
}

static int parse_bucket_edge(const char *v, size_t n, struct collect *c)
{
	memset(c, 0, sizeof *c);
	err[0] = '\0';
	return shard_kv_parse_bucket(check_at_edge(v, n), n, collect_fn, c, err, sizeof err);
}

static void put(struct buf *b, const char *name, enum id_type t, uint64_t start, uint64_t mark, int deleted)
{
	struct kv_entity e = kv_line(name, t, start, mark, deleted);
	shard_kv_put_entity(b, &e);
}

static void test_put_entity(void)
{
	struct buf b;
	buf_init(&b);
	put(&b, "orders", TYPE_INT, 0, 16, 0);
	CHECK_STR(b.data, b.len, "orders int 0 16\n");
	b.len = 0;
	put(&b, "a.b_c:d-E9", TYPE_LONG, 7, UINT64_MAX, 1);
	CHECK_STR(b.data, b.len, "a.b_c:d-E9 long 7 18446744073709551615 deleted\n");
	b.len = 0;
	put(&b, "s", TYPE_SNOWFLAKE, 0, 0, 0);
	put(&b, "u", TYPE_UUID22, 3, 3, 1);
	CHECK_STR(b.data, b.len, "s snowflake 0 0\nu uuid22 3 3 deleted\n");
	b.len = 0;
	put(&b, "v", TYPE_UUID7, 0, 0, 0);
	put(&b, "w", TYPE_ULID, 0, 0, 1);
	CHECK_STR(b.data, b.len, "v uuid7 0 0\nw ulid 0 0 deleted\n");
	buf_free(&b);
}

static void test_bucket_round_trip(void)
{
	static const enum id_type types[] = { TYPE_INT, TYPE_LONG, TYPE_SNOWFLAKE, TYPE_UUID8,
					      TYPE_UUID12, TYPE_UUID16, TYPE_UUID22, TYPE_UUID7, TYPE_ULID };
	char longname[ENTITY_NAME_MAX + 1];
	memset(longname, 'N', ENTITY_NAME_MAX);
	longname[ENTITY_NAME_MAX] = '\0';
	struct buf b;
	buf_init(&b);
	for (unsigned i = 0; i < 9; i++) {
		char name[16];
		snprintf(name, sizeof name, "e%u", i);
		put(&b, name, types[i], i, i * 1000 + i, (int)(i & 1));
	}
	put(&b, longname, TYPE_LONG, UINT64_MAX, UINT64_MAX, 0);
	struct collect c;
	CHECK_EQ_U64(parse_bucket_edge(b.data, b.len, &c), 0);
	CHECK_EQ_U64(c.n, 10);
	for (unsigned i = 0; i < 9 && i < c.n; i++) {
		char name[16];
		int nl = snprintf(name, sizeof name, "e%u", i);
		CHECK_STR(c.e[i].name, c.e[i].name_len, name);
		CHECK_EQ_U64(c.e[i].name_len, (size_t)nl);
		CHECK(c.e[i].name[c.e[i].name_len] == '\0');
		CHECK(c.e[i].type == types[i]);
		CHECK_EQ_U64(c.e[i].start_i, i);
		CHECK_EQ_U64(c.e[i].mark_i, i * 1000 + i);
		CHECK_EQ_U64(c.e[i].deleted, i & 1);
	}
	if (c.n == 10) {
		CHECK_STR(c.e[9].name, c.e[9].name_len, longname);
		CHECK_EQ_U64(c.e[9].start_i, UINT64_MAX);
		CHECK_EQ_U64(c.e[9].mark_i, UINT64_MAX);
	}

	/* The callback's non-zero answer stops the walk and is returned. */
	memset(&c, 0, sizeof c);
	c.stop_at = 3;
	CHECK_EQ_U64(shard_kv_parse_bucket(check_at_edge(b.data, b.len), b.len, collect_fn, &c,
					   err, sizeof err), 99);
	CHECK_EQ_U64(c.n, 3);

	/* Nothing at all is an empty bucket. */
	CHECK_EQ_U64(parse_bucket_edge("", 0, &c), 0);
	CHECK_EQ_U64(c.n, 0);

	/* Every truncation: complete lines are delivered, a cut line is an
	 * error, and nothing past the cut is read. */
	size_t lines = 0;
	for (size_t k = 0; k <= b.len; k++) {
		int rc = parse_bucket_edge(b.data, k, &c);
		int at_boundary = k == 0 || b.data[k - 1] == '\n';
		int ok = at_boundary ? rc == 0 && c.n == lines : rc == -1;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  prefix %zu: rc %d, %u entities (%zu complete lines)\n", k, rc, c.n, lines);
		if (k < b.len && b.data[k] == '\n')
			lines++;
	}
	CHECK_EQ_U64(lines, 10);
	buf_free(&b);
}

static void test_bucket_malformed(void)
{
	char longname[ENTITY_NAME_MAX + 2 + 16];
	memset(longname, 'n', ENTITY_NAME_MAX + 1);
	strcpy(longname + ENTITY_NAME_MAX + 1, " int 0 1\n");   /* 129-byte name */
	const char *bad[] = {
		"a int 0 16",                 /* no final newline */
		"\n",                         /* empty line */
		"a int 0\n",                  /* three words */
		"a int\n",
		"a\n",
		"a int 0 16 deleted extra\n", /* six words */
		"a int 0 16 gone\n",          /* fifth word not "deleted" */
		"a int 0 16 Deleted\n",
		"a int 0 16 deletedx\n",
		"a nosuch 0 16\n",            /* unknown type */
		"a INT 0 16\n",               /* types are case-sensitive */
		"a int 5 4\n",                /* start above mark */
		"a int x 4\n",
		"a int 0 4x\n",
		"a int -1 4\n",
		"a int +1 4\n",
		"a int 0 18446744073709551616\n",  /* 2^64 */
		"a int 0 99999999999999999999\n",
		"a int 0 000000000000000000001\n", /* 21 digits */
		" a int 0 1\n",               /* leading space */
		"a  int 0 1\n",               /* empty word */
		"a\tint 0 1\n",
		"a/b int 0 1\n",              /* invalid name characters */
		"a b int 0 1\n",
		"\xc3\xa9 int 0 1\n",
		"a int 0 1\r\n",              /* CR is not a separator */
		longname,
	};
	struct collect c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse_bucket_edge(bad[i], strlen(bad[i]), &c);
		int ok = rc == -1 && c.n == 0 && strstr(err, "malformed entity line 1") != NULL;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  input %zu \"%s\": rc %d, %u entities, err \"%s\"\n", i, bad[i], rc, c.n, err);
	}
	/* Bytes after a NUL are still inside the value: a NUL is a bad byte. */
	CHECK_EQ_U64(parse_bucket_edge("a int 0 1\0\n", 11, &c), (uint64_t)-1);

	/* The line number of the bad line; the good lines before it were delivered. */
	const char *two = "a int 0 16\nb int 9 8\n";
	CHECK_EQ_U64(parse_bucket_edge(two, strlen(two), &c), (uint64_t)-1);
	CHECK(strstr(err, "line 2") != NULL);
	CHECK_EQ_U64(c.n, 1);

	/* Limits that are fine: 128-byte name, 20-digit maximum, start == mark. */
	char okname[ENTITY_NAME_MAX + 32];
	memset(okname, 'o', ENTITY_NAME_MAX);
	strcpy(okname + ENTITY_NAME_MAX, " uuid8 0 0\n");
	CHECK_EQ_U64(parse_bucket_edge(okname, strlen(okname), &c), 0);
	CHECK_EQ_U64(c.n, 1);
	const char *max = "z long 18446744073709551615 18446744073709551615 deleted\n";
	CHECK_EQ_U64(parse_bucket_edge(max, strlen(max), &c), 0);
	CHECK(c.n == 1 && c.e[0].deleted == 1 && c.e[0].mark_i == UINT64_MAX);
	const char *zeros = "z int 00 0000000000000000007\n";   /* 19 digits with leading zeros */
	CHECK_EQ_U64(parse_bucket_edge(zeros, strlen(zeros), &c), 0);
	CHECK(c.n == 1 && c.e[0].mark_i == 7);
}

/* prefix= and format= carry an entity's style; lines without them (all
 * that older versions wrote) read as the plain style. */
static void test_bucket_style(void)
{
	struct kv_entity u, f;
	memset(&u, 0, sizeof u);
	memcpy(u.name, "user", 4);
	u.name_len = 4;
	u.type = TYPE_UUID7;
	u.style.prefix_len = 4;
	memcpy(u.style.prefix, "user", 4);
	f = u;
	f.type = TYPE_SNOWFLAKE;
	memset(&f.style, 0, sizeof f.style);
	f.style.format = FMT_BASE62;
	f.mark_i = 5;
	struct buf b;
	buf_init(&b);
	shard_kv_put_entity(&b, &u);
	shard_kv_put_entity(&b, &f);
	u.deleted = 1;
	shard_kv_put_entity(&b, &u);
	CHECK_STR(b.data, b.len, "user uuid7 0 0 prefix=user\nuser snowflake 0 5 format=base62\n"
		  "user uuid7 0 0 prefix=user deleted\n");
	struct collect c;
	CHECK_EQ_U64(parse_bucket_edge(b.data, b.len, &c), 0);
	CHECK_EQ_U64(c.n, 3);
	CHECK(c.n == 3 && id_style_same(&c.e[0].style, &u.style) && !c.e[0].deleted);
	CHECK(c.n == 3 && id_style_same(&c.e[1].style, &f.style) && c.e[1].mark_i == 5);
	CHECK(c.n == 3 && id_style_same(&c.e[2].style, &u.style) && c.e[2].deleted);
	CHECK(c.n == 3 && c.e[0].style.prefix[4] == '\0');

	/* Options in any order; a 63-character prefix; older lines are plain. */
	char p63[ID_PREFIX_MAX + 1], line[160];
	memset(p63, 'p', ID_PREFIX_MAX);
	p63[ID_PREFIX_MAX] = '\0';
	snprintf(line, sizeof line, "x uuid7 1 2 deleted prefix=%s\ny snowflake 0 0 deleted format=base62\n"
		 "z uuid7 0 0\n", p63);
	CHECK_EQ_U64(parse_bucket_edge(line, strlen(line), &c), 0);
	CHECK(c.n == 3 && c.e[0].deleted && c.e[0].style.prefix_len == ID_PREFIX_MAX);
	CHECK(c.n == 3 && c.e[1].deleted && c.e[1].style.format == FMT_BASE62);
	CHECK(c.n == 3 && c.e[2].style.prefix_len == 0 && c.e[2].style.format == FMT_PLAIN);

	char p64[200];
	snprintf(p64, sizeof p64, "x uuid7 0 0 prefix=%sp\n", p63);
	const char *bad[] = {
		"u uuid7 0 0 prefix=\n",               /* empty prefix */
		"u uuid7 0 0 prefix=User\n",           /* not the TypeID rule */
		"u uuid7 0 0 prefix=_u\n",
		"u uuid7 0 0 prefix=u_\n",
		"u uuid7 0 0 prefix=u1\n",
		p64,                                   /* 64 characters */
		"u ulid 0 0 prefix=user\n",            /* prefix on another type */
		"u int 0 0 prefix=user\n",
		"s uuid7 0 0 format=base62\n",         /* base62 on another type */
		"s snowflake 0 0 format=decimal\n",
		"s snowflake 0 0 format=\n",
		"u uuid7 0 0 prefix=a prefix=b\n",     /* twice */
		"s snowflake 0 0 format=base62 format=base62\n",
		"s snowflake 0 0 deleted deleted\n",
		"u uuid7 0 0 prefix=a deleted x\n",
		"u uuid7 0 0 prefix=a deleted x y\n",  /* more words than options */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse_bucket_edge(bad[i], strlen(bad[i]), &c);
		int ok = rc == -1 && c.n == 0 && strstr(err, "malformed entity line 1") != NULL;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  input %zu \"%s\": rc %d, %u entities\n", i, bad[i], rc, c.n);
	}
	buf_free(&b);
}

/* ---- base64 ---- */

static void b64(const char *s, size_t n, struct buf *out)
{
	out->len = 0;
	shard_kv_base64(out, s, n);
}

static long unb64(const char *s, char *out, size_t cap)
{
	size_t n = strlen(s);
	return shard_kv_unbase64(check_at_edge(s, n), n, out, cap);
}

static void test_base64_vectors(void)
{
	static const char *const v[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	struct buf b;
	buf_init(&b);
	char out[64];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		b64(v[i][0], strlen(v[i][0]), &b);
		CHECK_STR(b.data ? b.data : "", b.len, v[i][1]);
		long n = unb64(v[i][1], out, sizeof out);
		CHECK_EQ_U64(n, strlen(v[i][0]));
		if (n >= 0)
			CHECK_STR(out, (size_t)n, v[i][0]);
	}
	/* The whole alphabet, both ends of the byte range. */
	b64("\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97\x61\x96\x9b"
	    "\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7"
	    "\xe3\x9e\xbb\xf3\xdf\xbf", 48, &b);
	CHECK_STR(b.data, b.len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	b64("\xff\xff\xff\xfe", 4, &b);
	CHECK_STR(b.data, b.len, "/////g==");
	/* Appends: what the buffer held stays. */
	b.len = 0;
	buf_puts(&b, "x:");
	shard_kv_base64(&b, "ab", 2);
	CHECK_STR(b.data, b.len, "x:YWI=");
	buf_free(&b);
}

static void test_base64_round_trip(void)
{
	struct buf b;
	buf_init(&b);
	unsigned char in[700];
	char out[700];
	uint64_t rng = 88172645463325252u;
	unsigned bad = 0;
	for (size_t n = 0; n < sizeof in; n++) {
		for (size_t i = 0; i < n; i++) {
			rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
			in[i] = (unsigned char)rng;
		}
		b64((const char *)in, n, &b);
		if (b.len != (n + 2) / 3 * 4) {
			bad++;
			continue;
		}
		/* Exactly the room needed is enough. */
		long d = shard_kv_unbase64(check_at_edge(b.data ? b.data : "", b.len), b.len, out, n);
		if (d != (long)n || memcmp(out, in, n) != 0)
			bad++;
		/* One byte less is not. */
		if (n > 0 && shard_kv_unbase64(b.data, b.len, out, n - 1) != -1)
			bad++;
	}
	CHECK_EQ_U64(bad, 0);

	/* In place: the decoded bytes overwrite the text as they go. */
	char text[64];
	b64("in place decoding works", 23, &b);
	memcpy(text, b.data, b.len);
	long d = shard_kv_unbase64(text, b.len, text, sizeof text);
	CHECK_EQ_U64(d, 23);
	if (d == 23)
		CHECK_STR(text, 23, "in place decoding works");
	buf_free(&b);
}

static void test_base64_bad(void)
{
	const char *bad[] = {
		"Z", "Zg", "Zg=", "Zm9vY",          /* length not a multiple of 4 */
		"Zm9*", "Zm 9", "Zm9v\n", "Zm9-", "Zm9_", "Zm9v\0AAA",
		"====", "Z===", "=Zg=", "Zg=A",     /* padding where no padding goes */
		"Zg==Zg==",                         /* padding before the end */
		"Zm=v", "Z=9v",
	};
	char out[64];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t n = i == 9 ? 8 : strlen(bad[i]);
		long r = shard_kv_unbase64(check_at_edge(bad[i], n), n, out, sizeof out);
		CHECK(r == -1);
		if (r != -1)
			fprintf(stderr, "  \"%s\" decoded to %ld bytes\n", bad[i], r);
	}
	/* Too little room. */
	CHECK_EQ_U64(unb64("Zm9vYmFy", out, 5), (uint64_t)-1);
	CHECK_EQ_U64(unb64("Zm9vYmE=", out, 5), 5);
	CHECK_EQ_U64(unb64("Zg==", out, 0), (uint64_t)-1);
	CHECK_EQ_U64(unb64("", out, 0), 0);
}

/* ---- Consul's listing ---- */

struct kv_seen {
	char key[16][128];
	char val[16][256];
	size_t key_len[16], val_len[16];
	unsigned n;
	unsigned stop_at;
};

static int listing_fn(void *ud, const char *key, size_t key_len, const char *val, size_t val_len)
{
	struct kv_seen *s = ud;
	if (s->n < 16) {
		size_t kl = key_len < 128 ? key_len : 127, vl = val_len < 256 ? val_len : 255;
		memcpy(s->key[s->n], key, kl);
		s->key_len[s->n] = key_len;
		if (vl)
			memcpy(s->val[s->n], val, vl);
		s->val_len[s->n] = val_len;
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static int listing_n(const char *json, size_t n, struct kv_seen *s)
{
	memset(s, 0, sizeof *s);
	err[0] = '\0';
	return shard_kv_parse_listing(check_at_edge(json, n), n, listing_fn, s, err, sizeof err);
}

static int listing(const char *json, struct kv_seen *s)
{
	return listing_n(json, strlen(json), s);
}

static const char typical[] =
	"[{\"LockIndex\":0,\"Key\":\"svc/shards/1/e/0a1\",\"Flags\":0,"
	"\"Value\":\"YSBpbnQgMCAxNgo=\",\"CreateIndex\":12,\"ModifyIndex\":15},"
	"{\"LockIndex\":1,\"Key\":\"svc/shards/1\",\"Flags\":3304740253564472344,\"Value\":null,"
	"\"Session\":\"adf4238a-882b-9ddc-4a9d-5b6758e4159e\",\"CreateIndex\":10,\"ModifyIndex\":11},"
	"{\"Key\":\"svc/shards/1/fence\",\"Value\":\"MTIzNDU=\",\"Flags\":-1.5e+3,\"X\":true,\"Y\":false}]";

static void test_listing_typical(void)
{
	struct kv_seen s;
	CHECK_EQ_U64(listing(typical, &s), 0);
	CHECK_EQ_U64(s.n, 3);
	CHECK_STR(s.key[0], s.key_len[0], "svc/shards/1/e/0a1");
	CHECK_STR(s.val[0], s.val_len[0], "a int 0 16\n");
	CHECK_STR(s.key[1], s.key_len[1], "svc/shards/1");
	CHECK_EQ_U64(s.val_len[1], 0);                  /* null: no value */
	CHECK_STR(s.key[2], s.key_len[2], "svc/shards/1/fence");
	CHECK_STR(s.val[2], s.val_len[2], "12345");

	/* Whitespace anywhere JSON allows it (?pretty). */
	const char *pretty =
		"\n[\n  {\n    \"Key\" : \"k1\" ,\r\n\t\"Value\" :\t\"QQ==\"\n  } ,\n  { \"Value\": null, \"Key\": \"k2\" }\n]\n  ";
	CHECK_EQ_U64(listing(pretty, &s), 0);
	CHECK_EQ_U64(s.n, 2);
	CHECK_STR(s.key[0], s.key_len[0], "k1");
	CHECK_STR(s.val[0], s.val_len[0], "A");
	CHECK_STR(s.key[1], s.key_len[1], "k2");
	CHECK_EQ_U64(s.val_len[1], 0);

	/* No keys; an empty value; a missing Value field. */
	CHECK_EQ_U64(listing("[]", &s), 0);
	CHECK_EQ_U64(s.n, 0);
	CHECK_EQ_U64(listing(" [ ] ", &s), 0);
	CHECK_EQ_U64(listing("[{\"Key\":\"e\",\"Value\":\"\"},{\"Key\":\"f\"}]", &s), 0);
	CHECK_EQ_U64(s.n, 2);
	CHECK_EQ_U64(s.val_len[0] + s.val_len[1], 0);

	/* Escapes are left as they are in the key. */
	CHECK_EQ_U64(listing("[{\"Key\":\"a\\\"b\\\\\",\"Value\":\"QkM=\"}]", &s), 0);
	CHECK_STR(s.key[0], s.key_len[0], "a\\\"b\\\\");
	CHECK_STR(s.val[0], s.val_len[0], "BC");

	/* The callback stops the walk with its own answer. */
	memset(&s, 0, sizeof s);
	s.stop_at = 2;
	CHECK_EQ_U64(shard_kv_parse_listing(check_at_edge(typical, strlen(typical)), strlen(typical),
					    listing_fn, &s, err, sizeof err), 7);
	CHECK_EQ_U64(s.n, 2);
}

static void test_listing_big_values(void)
{
	/* Values of growing and shrinking sizes, the largest ~300 KB. */
	static const size_t sizes[] = { 10, 300000, 5, 100000, 0 };
	struct buf raw, json;
	buf_init(&raw);
	buf_init(&json);
	buf_putc(&json, '[');
	for (size_t i = 0; i < 5; i++) {
		raw.len = 0;
		for (size_t j = 0; j < sizes[i]; j++)
			buf_putc(&raw, (char)('a' + (i * 7 + j) % 26));
		buf_puts(&json, i ? ",{\"Key\":\"k\",\"Value\":\"" : "{\"Key\":\"k\",\"Value\":\"");
		shard_kv_base64(&json, raw.data, raw.len);
		buf_puts(&json, "\"}");
	}
	buf_putc(&json, ']');
	struct kv_seen s;
	CHECK(json.len < EDGE_ROOM);
	CHECK_EQ_U64(listing_n(json.data, json.len, &s), 0);
	CHECK_EQ_U64(s.n, 5);
	unsigned wrong = 0;
	for (size_t i = 0; i < 5 && i < s.n; i++) {
		wrong += s.val_len[i] != sizes[i];
		for (size_t j = 0; j < sizes[i] && j < 255; j++)
			wrong += s.val[i][j] != (char)('a' + (i * 7 + j) % 26);
	}
	CHECK_EQ_U64(wrong, 0);
	buf_free(&raw);
	buf_free(&json);
}

static void test_listing_malformed(void)
{
	const char *bad[] = {
		"", " ", "[", "]", "{}", "null", "[{}]",
		"[{\"Value\":\"QQ==\"}]",                   /* no Key */
		"[{\"Key\":null}]",
		"[{\"Key\":5}]",
		"[{\"Key\":\"a\",}]",
		"[{\"Key\":\"a\"},]",
		"[{\"Key\":\"a\"}",
		"[{\"Key\":\"a\"}]x",
		"[{\"Key\":\"a\"}] ]",
		"[{\"Key\":\"a\"}][]",
		"[{\"Key\":\"a\"}{\"Key\":\"b\"}]",
		"[{\"Key\" \"a\"}]",
		"[{\"Key\":\"a\" \"Value\":\"QQ==\"}]",
		"[{\"Key\":\"a\",\"Value\":}]",
		"[{\"Key\":\"a\",\"Value\":{}}]",
		"[{\"Key\":\"a\",\"Value\":[\"QQ==\"]}]",
		"[{\"Key\":\"a\",\"X\":{\"Y\":1}}]",
		"[{Key:\"a\"}]",
		"[{\"Key\":\"a\nb\"}]",                     /* raw control byte */
		"[{\"Key\":\"a\\",                        /* escape at the very end */
		"[{\"Key\":\"a",
		"[\"Key\"]",
		"[[]]",
		"[{\"Key\":\"a\"},{}]",
	};
	struct kv_seen s;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = listing(bad[i], &s);
		int ok = rc == -1 && strstr(err, "malformed KV listing") != NULL;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  input %zu '%s': rc %d, err \"%s\"\n", i, bad[i], rc, err);
	}
	/* A value that is not base64: -1, the message names the key. */
	const char *nb[] = {
		"[{\"Key\":\"svc/x\",\"Value\":\"QQ=\"}]",
		"[{\"Key\":\"svc/x\",\"Value\":\"Q*==\"}]",
		"[{\"Key\":\"svc/x\",\"Value\":\"QQ==QQ==\"}]",
	};
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ_U64(listing(nb[i], &s), (uint64_t)-1);
		CHECK(strstr(err, "svc/x") != NULL && strstr(err, "base64") != NULL);
		CHECK_EQ_U64(s.n, 0);
	}
}

/* Every proper prefix of a listing is malformed, parsed from the edge. */
static void all_prefixes_fail(const char *json)
{
	size_t n = strlen(json);
	unsigned wrong = 0;
	struct kv_seen s;
	for (size_t k = 0; k < n; k++) {
		/* Cutting trailing whitespace leaves a complete listing. */
		size_t rest = k;
		while (rest < n && strchr(" \r\n\t", json[rest]))
			rest++;
		int rc = listing_n(json, k, &s);
		if (rest == n ? rc != 0 : rc != -1) {
			if (!wrong)
				fprintf(stderr, "  prefix %zu of '%s': rc %d\n", k, json, rc);
			wrong++;
		}
	}
	CHECK_EQ_U64(wrong, 0);
	CHECK_EQ_U64(listing_n(json, n, &s), 0);
}

static void test_listing_truncations(void)
{
	all_prefixes_fail(typical);
	all_prefixes_fail("[ { \"Key\" : \"k\\\"q\" , \"Value\" : \"QUJD\" } , {\"Key\":\"z\",\"Value\":null} ]\n");
	all_prefixes_fail("[]");
}

/* One key's value out of a listing, as a GET of that key answers. */
static void test_listing_value(void)
{
	static const char json[] =
		"[{\"Key\":\"svc/config\",\"Value\":\"dG90YWxTaGFyZHM9Mg==\",\"ModifyIndex\":9},"
		"{\"Key\":\"svc/configx\",\"Value\":\"eA==\"}]";
	char out[16], err[120];
	size_t len = 99;
	CHECK(shard_kv_listing_value(json, sizeof json - 1, "svc/config", out, sizeof out, &len, err,
				     sizeof err) == 1);
	CHECK_STR(out, len, "totalShards=2");
	CHECK(shard_kv_listing_value(json, sizeof json - 1, "svc/configx", out, sizeof out, &len, err,
				     sizeof err) == 1 && len == 1 && out[0] == 'x');
	CHECK(shard_kv_listing_value(json, sizeof json - 1, "svc/conf", out, sizeof out, &len, err,
				     sizeof err) == 0);
	/* Cut at the room given. */
	CHECK(shard_kv_listing_value(json, sizeof json - 1, "svc/config", out, 5, &len, err, sizeof err) == 1);
	CHECK_STR(out, len, "total");
	CHECK(shard_kv_listing_value("[{\"Key\":", 8, "svc/config", out, sizeof out, &len, err, sizeof err) == -1);
}

/* ---- txn ---- */

static void test_txn_body(void)
{
	struct buf b;
	buf_init(&b);
	struct shard_kv_guard g = { "svc/shards/1", "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "svc/config", 42 };
	shard_kv_txn_begin(&b, &g);
	shard_kv_txn_set(&b, "svc/shards/1/e/0a1", "a int 0 16\n", 11);
	shard_kv_txn_del(&b, "svc/shards/1/e/fff");
	shard_kv_txn_set(&b, "svc/shards/1/fence", "", 0);
	shard_kv_txn_end(&b);
	CHECK_STR(b.data, b.len,
		  "[{\"KV\":{\"Verb\":\"check-session\",\"Key\":\"svc/shards/1\","
		  "\"Session\":\"adf4238a-882b-9ddc-4a9d-5b6758e4159e\"}},"
		  "{\"KV\":{\"Verb\":\"check-index\",\"Key\":\"svc/config\",\"Index\":42}},"
		  "{\"KV\":{\"Verb\":\"set\",\"Key\":\"svc/shards/1/e/0a1\",\"Value\":\"YSBpbnQgMCAxNgo=\"}},"
		  "{\"KV\":{\"Verb\":\"delete\",\"Key\":\"svc/shards/1/e/fff\"}},"
		  "{\"KV\":{\"Verb\":\"set\",\"Key\":\"svc/shards/1/fence\",\"Value\":\"\"}}]");

	/* Keys and sessions are JSON-escaped. */
	b.len = 0;
	struct shard_kv_guard session_only = { "a\"b\\c", "s\n", NULL, 0 };
	shard_kv_txn_begin(&b, &session_only);
	shard_kv_txn_end(&b);
	CHECK_STR(b.data, b.len,
		  "[{\"KV\":{\"Verb\":\"check-session\",\"Key\":\"a\\\"b\\\\c\",\"Session\":\"s\\n\"}}]");

	/* The reshard's writes: the configuration's index alone, a tree delete. */
	b.len = 0;
	struct shard_kv_guard index_only = { NULL, NULL, "svc/config", 7 };
	shard_kv_txn_begin(&b, &index_only);
	shard_kv_txn_del_tree(&b, "svc/generations/2/");
	shard_kv_txn_end(&b);
	CHECK_STR(b.data, b.len,
		  "[{\"KV\":{\"Verb\":\"check-index\",\"Key\":\"svc/config\",\"Index\":7}},"
		  "{\"KV\":{\"Verb\":\"delete-tree\",\"Key\":\"svc/generations/2/\"}}]");
	/* No guard: the first op has no comma before it. */
	b.len = 0;
	struct shard_kv_guard none = { NULL, NULL, NULL, 0 };
	shard_kv_txn_begin(&b, &none);
	shard_kv_txn_del(&b, "k");
	shard_kv_txn_end(&b);
	CHECK_STR(b.data, b.len, "[{\"KV\":{\"Verb\":\"delete\",\"Key\":\"k\"}}]");
	buf_free(&b);
}

static int failed_op(const char *body)
{
	size_t n = strlen(body);
	return shard_kv_txn_failed_op(check_at_edge(body, n), n);
}

static void test_txn_failed_op(void)
{
	CHECK(failed_op("{\"Results\":null,\"Errors\":[{\"OpIndex\":0,\"What\":\"failed session check\"}]}") == 0);
	CHECK(failed_op("{\"Errors\":[{\"OpIndex\":0,\"What\":\"failed session check\"}]}") == 0);
	CHECK(failed_op("{\"Errors\":[{\"OpIndex\":1,\"What\":\"failed index check\"}]}") == 1);
	CHECK(failed_op("{\"Errors\":[{\"OpIndex\":2,\"What\":\"key too large\"}]}") == 2);
	CHECK(failed_op("{\"Errors\":[{\"OpIndex\":10,\"What\":\"x\"}]}") == 10);
	CHECK(failed_op("{\"Errors\":[{\"What\":\"x\",\"OpIndex\":20}]}") == 20);
	/* As Consul sends it: indented. */
	CHECK(failed_op("{\n    \"Results\": null,\n    \"Errors\": [\n        {\n            \"OpIndex\": 1,\n"
			"            \"What\": \"failed to check index, key \\\"svc/config\\\" doesn't exist\"\n        }\n    ]\n}\n") == 1);
	CHECK(failed_op("{\"Errors\":[{\"OpIndex\":\n 0\n}]}") == 0);
	CHECK(failed_op("") == -1);
	CHECK(failed_op("Permission denied") == -1);
	CHECK(failed_op("\"OpIndex\":0") == -1);            /* cut short: not the shape */
	CHECK(failed_op("\"OpIndex\":,") == -1);
	CHECK(failed_op("\"OpIndex\":99999999999999999999999,") == -1);
}

static int parse_config(const char *v, struct shard_kv_cluster *c)
{
	return shard_kv_config_parse(check_at_edge(v, strlen(v)), strlen(v), c);
}

/* The cluster configuration's text and its parse. */
static void test_cluster_config(void)
{
	char out[SHARD_KV_CONFIG_MAX];
	struct shard_kv_cluster c = { .total = 3, .layout = "sonyflake", .generation = 1 }, r;
	size_t n = shard_kv_config(out, &c);
	CHECK_STR(out, n, "totalShards=3 layout=sonyflake generation=1");
	CHECK(shard_kv_config_parse(out, n, &r) == 0 && r.total == 3 && strcmp(r.layout, "sonyflake") == 0 &&
	      r.generation == 1 && r.reshard_to == 0);
	c.reshard_to = 5;
	c.generation = 4;
	n = shard_kv_config(out, &c);
	CHECK_STR(out, n, "totalShards=3 layout=sonyflake generation=4 reshardTo=5");
	CHECK(shard_kv_config_parse(out, n, &r) == 0 && r.total == 3 && r.generation == 4 && r.reshard_to == 5);
	/* Any order, any blank between words, unknown words left alone. */
	CHECK(parse_config("  generation=12\nlayout=custom:1/12/10/1288834974657\ttotalShards=1024 base=7\r\n", &r) == 0 &&
	      r.generation == 12 && r.total == 1024 && strcmp(r.layout, "custom:1/12/10/1288834974657") == 0);
	CHECK(parse_config("totalShards=2 layout=twitter", &r) == 0 && r.generation == 1 && r.total == 2);
	CHECK(parse_config("totalShards=2 layout=twitter generation=0", &r) == 0 && r.generation == 1);
	/* An empty layout value is kept empty: it never equals a real one. */
	CHECK(parse_config("totalShards=2 layout=", &r) == 0 && r.layout[0] == '\0');
	/* Unusable: a word missing, a number that is not one, a bare key. */
	static const char *const bad[] = {
		"", "layout=twitter", "totalShards=2", "totalShards= layout=twitter",
		"totalShards=x layout=twitter", "totalShards=2x layout=twitter",
		"totalShards=-2 layout=twitter", "totalShards=2 layout=twitter generation=z",
		"totalShards layout=twitter", "totalShards=2 layout", "totalshards=2 layout=twitter",
		"totalShards=99999999999999999999999 layout=twitter", "totalShards=1025 layout=twitter",
		"totalShards=2 layout=twitter reshardTo=0", "totalShards=2 layout=twitter reshardTo=1025",
		"totalShards=2 layout=twitter reshardTo=x",
		"totalShards=2 layout=0123456789012345678901234567890123456789012345678901234567890123",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse_config(bad[i], &r);
		if (rc != -1)
			fprintf(stderr, "  \"%s\": %d\n", bad[i], rc);
		CHECK(rc == -1);
	}
	/* Byte by byte against the guard page: every prefix is judged without
	 * reading past its end. */
	for (size_t k = 0; k <= n; k++)
		(void)shard_kv_config_parse(check_at_edge(out, k), k, &r);
}

/* Generation 1 keeps the keys of before reshards; later ones their own. */
static void test_prefix(void)
{
	char out[SHARD_KV_PREFIX_MAX];
	size_t n = shard_kv_prefix(out, "svc", 1, 3);
	CHECK_STR(out, n, "svc/shards/3/");
	n = shard_kv_prefix(out, "svc", 0, 1024);
	CHECK_STR(out, n, "svc/shards/1024/");
	n = shard_kv_prefix(out, "svc", 2, 7);
	CHECK_STR(out, n, "svc/generations/2/shards/7/");
}

int main(void)
{
	check_edge_init(EDGE_ROOM);
	test_identity();
	test_hash_and_bucket();
	test_put_entity();
	test_bucket_style();
	test_bucket_round_trip();
	test_bucket_malformed();
	test_base64_vectors();
	test_base64_round_trip();
	test_base64_bad();
	test_listing_typical();
	test_listing_big_values();
	test_listing_malformed();
	test_listing_truncations();
	test_txn_body();
	test_listing_value();
	test_txn_failed_op();
	test_prefix();
	test_cluster_config();
	return check_summary("shard_kv");
}
