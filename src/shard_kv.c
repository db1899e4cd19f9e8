#include "shard_kv.h"

#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "http_lex.h"

size_t shard_kv_identity(char out[SHARD_KV_IDENTITY_MAX], unsigned shard, unsigned total,
			 const char *layout, uint64_t machine)
{
	int n = fmt_snprintf(out, SHARD_KV_IDENTITY_MAX, "shard=%u totalShards=%u layout=%s machineId=%llu",
			 shard, total, layout, (unsigned long long)machine);
	return n < 0 ? 0 : (size_t)n < SHARD_KV_IDENTITY_MAX ? (size_t)n : SHARD_KV_IDENTITY_MAX - 1;
}

/* "key<decimal>" at *p; advances past it. */
static int field(const char **p, const char *key, uint64_t *v)
{
	size_t n = strlen(key), digits;
	if (strncmp(*p, key, n) != 0)
		return -1;
	digits = strspn(*p + n, "0123456789");
	if (parse_u64(*p + n, digits, v) != 0)
		return -1;
	*p += n + digits;
	return 0;
}

int shard_kv_identity_parse(const char *s, unsigned *shard, unsigned *total, char layout[64],
			    uint64_t *machine)
{
	uint64_t k, n;
	const char *p = s, *end;
	if (field(&p, "shard=", &k) || field(&p, " totalShards=", &n) ||
	    strncmp(p, " layout=", 8) != 0 || !(end = lex_find(p + 8, strlen(p + 8), " machineId=", 11)) ||
	    (size_t)(end - p - 8) >= 64)
		return -1;
	memcpy(layout, p + 8, (size_t)(end - p - 8));
	layout[end - p - 8] = '\0';
	p = end;
	if (field(&p, " machineId=", machine) || *p || k < 1 || n < k || n > 1024)
		return -1;
	*shard = (unsigned)k;
	*total = (unsigned)n;
	return 0;
}

size_t shard_kv_config(char out[SHARD_KV_CONFIG_MAX], const struct shard_kv_cluster *c)
{
	int n = fmt_snprintf(out, SHARD_KV_CONFIG_MAX, "totalShards=%u layout=%s generation=%llu",
			 c->total, c->layout, (unsigned long long)c->generation);
	if (c->reshard_to && n > 0 && n < SHARD_KV_CONFIG_MAX)
		n += fmt_snprintf(out + n, SHARD_KV_CONFIG_MAX - (size_t)n, " reshardTo=%u", c->reshard_to);
	return n < 0 ? 0 : (size_t)n < SHARD_KV_CONFIG_MAX ? (size_t)n : SHARD_KV_CONFIG_MAX - 1;
}

size_t shard_kv_prefix(char out[SHARD_KV_PREFIX_MAX], const char *svc, uint64_t generation,
		       unsigned shard)
{
	int n = generation > 1 ?
		fmt_snprintf(out, SHARD_KV_PREFIX_MAX, "%s/generations/%llu/shards/%u/", svc,
			 (unsigned long long)generation, shard) :
		fmt_snprintf(out, SHARD_KV_PREFIX_MAX, "%s/shards/%u/", svc, shard);
	return n < 0 ? 0 : (size_t)n < SHARD_KV_PREFIX_MAX ? (size_t)n : SHARD_KV_PREFIX_MAX - 1;
}

/* ---- bucket values ---- */

void shard_kv_put_entity(struct buf *b, const struct kv_entity *e)
{
	buf_append(b, e->name, e->name_len);
	buf_putc(b, ' ');
	buf_puts(b, id_type_name(e->type));
	buf_putc(b, ' ');
	buf_u64(b, e->start_i);
	buf_putc(b, ' ');
	buf_u64(b, e->mark_i);
	if (e->style.prefix_len) {
		buf_puts(b, " prefix=");
		buf_append(b, e->style.prefix, e->style.prefix_len);
	}
	if (e->style.format == FMT_BASE62)
		buf_puts(b, " format=base62");
	buf_puts(b, e->deleted ? " deleted\n" : "\n");
}

/* The next space- or newline-terminated word of [*p, end). */
static int word(const char **p, const char *end, const char **w, size_t *wn)
{
	const char *s = *p, *e = s;
	while (e < end && *e != ' ' && *e != '\n')
		e++;
	if (e == s)
		return -1;
	*w = s;
	*wn = (size_t)(e - s);
	*p = e;
	return 0;
}

/* s[0..n) begins with the literal key=, its value after it. */
static int keyed(const char *w, size_t n, const char *key, const char **v, size_t *vn)
{
	size_t k = strlen(key);
	if (n <= k || memcmp(w, key, k) != 0 || w[k] != '=')
		return 0;
	*v = w + k + 1;
	*vn = n - k - 1;
	return 1;
}

int shard_kv_config_parse(const char *v, size_t n, struct shard_kv_cluster *c)
{
	const char *p = v, *end = v + n, *val;
	size_t vn;
	uint64_t t = 0, to = 0;
	int have_total = 0, have_layout = 0;
	memset(c, 0, sizeof *c);
	while (p < end) {
		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
			p++;
			continue;
		}
		const char *w = p;
		while (p < end && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			p++;
		size_t wn = (size_t)(p - w);
		if (keyed(w, wn, "totalShards", &val, &vn)) {
			if (parse_u64(val, vn, &t) != 0 || t > 1024)
				return -1;
			have_total = 1;
		} else if (keyed(w, wn, "layout", &val, &vn)) {
			if (vn >= sizeof c->layout)
				return -1;
			memcpy(c->layout, val, vn);
			c->layout[vn] = '\0';
			have_layout = 1;
		} else if (keyed(w, wn, "generation", &val, &vn)) {
			if (parse_u64(val, vn, &c->generation) != 0)
				return -1;
		} else if (keyed(w, wn, "reshardTo", &val, &vn)) {
			if (parse_u64(val, vn, &to) != 0 || to < 1 || to > 1024)
				return -1;
		}
	}
	c->total = (unsigned)t;
	c->reshard_to = (unsigned)to;
	if (!c->generation)
		c->generation = 1;   /* written before reshards existed */
	return have_total && have_layout ? 0 : -1;
}

/* One of the optional words after the mark, each at most once (e starts
 * zeroed; id_style_problem checks the prefix). */
static int option_word(const char *w, size_t n, struct kv_entity *e)
{
	if (LEX_EQ(w, n, "deleted") && !e->deleted) {
		e->deleted = 1;
	} else if (LEX_EQ(w, n, "format=base62") && !e->style.format) {
		e->style.format = FMT_BASE62;
	} else if (n - 8 < ID_PREFIX_MAX && memcmp(w, "prefix=", 7) == 0 && !e->style.prefix_len) {
		e->style.prefix_len = (uint8_t)(n - 7);    /* 1..63 */
		memcpy(e->style.prefix, w + 7, n - 7);
	} else {
		return -1;
	}
	return 0;
}

int shard_kv_parse_bucket(const char *v, size_t n,
			  int (*fn)(void *ud, const struct kv_entity *e), void *ud,
			  char *err, size_t errlen)
{
	const char *p = v, *end = v + n;
	unsigned line = 0;
	while (p < end) {
		struct kv_entity e = { .deleted = 0 };
		const char *w[7];
		size_t wn[7], nw = 0;
		line++;
		while (nw < 7 && p < end && *p != '\n') {
			if (word(&p, end, &w[nw], &wn[nw]) != 0)
				goto bad;
			nw++;
			if (p < end && *p == ' ')
				p++;
		}
		if (p >= end || *p != '\n' || nw < 4)
			goto bad;
		p++;
		if (!entity_name_valid(w[0], wn[0]) || id_type_parse(w[1], wn[1], &e.type) != 0 ||
		    parse_u64(w[2], wn[2], &e.start_i) != 0 || parse_u64(w[3], wn[3], &e.mark_i) != 0 ||
		    e.start_i > e.mark_i)
			goto bad;
		for (size_t k = 4; k < nw; k++)
			if (option_word(w[k], wn[k], &e) != 0)
				goto bad;
		if (id_style_problem(e.type, &e.style))
			goto bad;
		memcpy(e.name, w[0], wn[0]);
		e.name[wn[0]] = '\0';
		e.name_len = wn[0];
		int rc = fn(ud, &e);
		if (rc)
			return rc;
	}
	return 0;
bad:
	fmt_snprintf(err, errlen, "malformed entity line %u (expected \"name type start mark[ prefix=P][ format=base62][ deleted]\")",
		 line);
	return -1;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void shard_kv_base64(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	if (buf_reserve(b, (n + 2) / 3 * 4) < 0)
		return;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)u[i + 1] << 8;
		if (i + 2 < n)
			v |= u[i + 2];
		char q[4] = { b64[v >> 18], b64[v >> 12 & 63],
			      i + 1 < n ? b64[v >> 6 & 63] : '=', i + 2 < n ? b64[v & 63] : '=' };
		buf_append(b, q, 4);
	}
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

long shard_kv_unbase64(const char *s, size_t n, char *out, size_t cap)
{
	if (n % 4)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int d[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				d[k] = 0;
				pad++;
			} else if (pad || (d[k] = b64_digit(s[i + k])) < 0) {
				return -1;
			}
		}
		uint32_t v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
		size_t k = 3 - (size_t)pad;
		if (o + k > cap)
			return -1;
		out[o++] = (char)(v >> 16);
		if (k > 1)
			out[o++] = (char)(v >> 8 & 0xff);
		if (k > 2)
			out[o++] = (char)(v & 0xff);
	}
	return (long)o;
}

/* ---- Consul's KV listing ---- */

struct scan {
	const char *p, *end;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

static int eat(struct scan *s, char c)
{
	ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 1;
	}
	return 0;
}

/* A string's raw bytes (escapes left as they are: our keys and base64
 * values never contain any, and a key that does is not ours). */
static int raw_string(struct scan *s, const char **str, size_t *n)
{
	if (!eat(s, '"'))
		return -1;
	const char *start = s->p;
	while (s->p < s->end && *s->p != '"') {
		if ((unsigned char)*s->p < 0x20)
			return -1;
		if (*s->p == '\\' && ++s->p == s->end)
			return -1;
		s->p++;
	}
	if (s->p >= s->end)
		return -1;
	*str = start;
	*n = (size_t)(s->p - start);
	s->p++;
	return 0;
}

/* A scalar we do not need: number, true, false or null. */
static int skip_scalar(struct scan *s)
{
	ws(s);
	const char *start = s->p;
	while (s->p < s->end && (((*s->p | 0x20) >= 'a' && (*s->p | 0x20) <= 'z') ||
				 (*s->p >= '0' && *s->p <= '9') || *s->p == '-' || *s->p == '+' || *s->p == '.'))
		s->p++;
	return s->p > start ? 0 : -1;
}

/* One object of the listing: its "Key" (required) and "Value" (NULL when
 * null or absent) as raw strings; other members are skipped. 0 or -1. */
static int entry(struct scan *s, const char **key, size_t *key_len,
		 const char **value, size_t *value_len)
{
	if (!eat(s, '{'))
		return -1;
	if (!eat(s, '}')) {
		do {
			const char *k, *v;
			size_t kn, vn;
			if (raw_string(s, &k, &kn) != 0 || !eat(s, ':'))
				return -1;
			ws(s);
			if (s->p < s->end && *s->p == '"') {
				if (raw_string(s, &v, &vn) != 0)
					return -1;
				if (kn == 3 && memcmp(k, "Key", 3) == 0) {
					*key = v;
					*key_len = vn;
				} else if (kn == 5 && memcmp(k, "Value", 5) == 0) {
					*value = v;
					*value_len = vn;
				}
			} else if (skip_scalar(s) != 0) {
				return -1;
			}
		} while (eat(s, ','));
		if (!eat(s, '}'))
			return -1;
	}
	return *key ? 0 : -1;
}

int shard_kv_parse_listing(const char *json, size_t n,
			   int (*fn)(void *ud, const char *key, size_t key_len,
				     const char *val, size_t val_len),
			   void *ud, char *err, size_t errlen)
{
	struct scan s = { json, json + n };
	char *val = NULL;
	size_t val_cap = 0;
	int rc = -1;
	if (!eat(&s, '['))
		goto bad;
	if (eat(&s, ']'))
		goto done;
	do {
		const char *key = NULL, *value = NULL;
		size_t key_len = 0, value_len = 0;
		if (entry(&s, &key, &key_len, &value, &value_len) != 0)
			goto bad;
		size_t need = value_len / 4 * 3 + 1;
		if (need > val_cap) {
			char *p = realloc(val, need);
			if (!p) {
				fmt_snprintf(err, errlen, "out of memory decoding a value of %zu bytes", value_len);
				goto out;
			}
			val = p;
			val_cap = need;
		}
		long dn = value ? shard_kv_unbase64(value, value_len, val, val_cap) : 0;
		if (dn < 0) {
			fmt_snprintf(err, errlen, "value of key %.*s is not base64", (int)(key_len > 200 ? 200 : key_len), key);
			goto out;
		}
		int r = fn(ud, key, key_len, val, (size_t)dn);
		if (r) {
			rc = r;
			goto out;
		}
	} while (eat(&s, ','));
	if (!eat(&s, ']'))
		goto bad;
done:
	ws(&s);
	if (s.p != s.end)
		goto bad;
	rc = 0;
	goto out;
bad:
	fmt_snprintf(err, errlen, "malformed KV listing at offset %zu", (size_t)(s.p - json));
out:
	free(val);
	return rc;
}

struct listing_value {
	const char *key;
	char *out;
	size_t cap, len;
	int found;
};

static int on_listing_value(void *ud, const char *key, size_t key_len, const char *val, size_t val_len)
{
	struct listing_value *v = ud;
	if (key_len == strlen(v->key) && memcmp(key, v->key, key_len) == 0) {
		v->found = 1;
		v->len = val_len < v->cap ? val_len : v->cap;
		memcpy(v->out, val, v->len);
	}
	return 0;
}

int shard_kv_listing_value(const char *json, size_t n, const char *key, char *out, size_t cap,
			   size_t *len, char *err, size_t errlen)
{
	struct listing_value v = { key, out, cap, 0, 0 };
	if (shard_kv_parse_listing(json, n, on_listing_value, &v, err, errlen) != 0)
		return -1;
	*len = v.len;
	return v.found;
}

/* ---- txn ---- */

/* Every op but a txn's first is preceded by a comma. */
static void op(struct buf *b, const char *verb)
{
	if (b->len && b->data[b->len - 1] != '[')
		buf_putc(b, ',');
	buf_puts(b, "{\"KV\":{\"Verb\":\"");
	buf_puts(b, verb);
	buf_puts(b, "\",\"Key\":");
}

void shard_kv_txn_begin(struct buf *b, const struct shard_kv_guard *g)
{
	buf_putc(b, '[');
	if (g->session) {
		op(b, "check-session");
		json_cstr(b, g->lock_key);
		buf_puts(b, ",\"Session\":");
		json_cstr(b, g->session);
		buf_puts(b, "}}");
	}
	if (g->config_key) {
		op(b, "check-index");
		json_cstr(b, g->config_key);
		buf_puts(b, ",\"Index\":");
		buf_u64(b, g->config_index);
		buf_puts(b, "}}");
	}
}

void shard_kv_txn_set(struct buf *b, const char *key, const char *val, size_t n)
{
	op(b, "set");
	json_cstr(b, key);
	buf_puts(b, ",\"Value\":\"");
	shard_kv_base64(b, val, n);
	buf_puts(b, "\"}}");
}

void shard_kv_txn_del(struct buf *b, const char *key)
{
	op(b, "delete");
	json_cstr(b, key);
	buf_puts(b, "}}");
}

void shard_kv_txn_end(struct buf *b)
{
	buf_putc(b, ']');
}

void shard_kv_txn_del_tree(struct buf *b, const char *prefix)
{
	op(b, "delete-tree");
	json_cstr(b, prefix);
	buf_puts(b, "}}");
}

int shard_kv_txn_failed_op(const char *body, size_t n)
{
	/* {"Errors":[{"OpIndex":1,"What":"..."}],...}, which Consul indents. */
	static const char key[] = "\"OpIndex\":";
	const char *p = lex_find(body, n, key, sizeof key - 1);
	uint64_t i;
	if (!p)
		return -1;
	p += sizeof key - 1;
	while (p < body + n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	size_t digits = 0;
	while (p + digits < body + n && p[digits] >= '0' && p[digits] <= '9')
		digits++;
	if (p + digits >= body + n || !strchr(",} \t\r\n", p[digits]) || !p[digits])
		return -1;   /* cut short: not the shape */
	return parse_u64(p, digits, &i) == 0 && i < 1024 ? (int)i : -1;
}
