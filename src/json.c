/* JSON emitter over a growable buffer, and a strict reader for flat objects. */
#include "json.h"
#include "fmt.h"
#include "http_lex.h"

#include <stdarg.h>
#include <string.h>

/* ---- integers --------------------------------------------------------- */

int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* ---- emitter ---------------------------------------------------------- */

/* Per byte: 0 = copy as is, 'u' = \u00XX, anything else = the short escape.
 * Every byte below 0x20 is escaped (RFC 8259 section 7); 0x7F and bytes
 * >= 0x80 pass through so UTF-8 stays intact. */
static const unsigned char json_esc[256] = {
	['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
	[0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0B] = 'u', [0x0E] = 'u',
	[0x0F] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
	[0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
	[0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u', [0x1C] = 'u', [0x1D] = 'u',
	[0x1E] = 'u', [0x1F] = 'u',
	['"'] = '"', ['\\'] = '\\',
};

void json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;   /* start of the pending unescaped run */

	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char e = json_esc[p[i]];
		if (!e)
			continue;
		buf_append(b, s + run, i - run);
		run = i + 1;
		if (e == 'u') {
			char u[6] = { '\\', 'u', '0', '0', lex_hexdigit(p[i] >> 4), lex_hexdigit(p[i]) };
			buf_append(b, u, sizeof u);
		} else {
			char two[2] = { '\\', (char)e };
			buf_append(b, two, sizeof two);
		}
	}
	buf_append(b, s + run, n - run);
	buf_putc(b, '"');
}

void json_cstr(struct buf *b, const char *s)
{
	json_str(b, s, strlen(s));
}

void json_key(struct buf *b, const char *key)
{
	size_t n = strlen(key);
	if (buf_reserve(b, n + 3) < 0)
		return;
	char *p = b->data + b->len;
	p[0] = '"';
	memcpy(p + 1, key, n);
	p[n + 1] = '"';
	p[n + 2] = ':';
	b->len += n + 3;
}

void json_u64_str(struct buf *b, uint64_t v)
{
	if (buf_reserve(b, 22) < 0)
		return;
	char *p = b->data + b->len;
	*p = '"';
	size_t n = fmt_u64(p + 1, v);
	p[n + 1] = '"';
	b->len += n + 2;
}

/* ---- reader ----------------------------------------------------------- */

struct json_reader {
	const unsigned char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int json_fail(struct json_reader *r, const char *fmt, ...)
{
	if (r->errlen) {
		va_list ap;
		va_start(ap, fmt);
		fmt_vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void json_skip_ws(struct json_reader *r)
{
	while (r->pos < r->len) {
		unsigned char c = r->s[r->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		r->pos++;
	}
}

/* -1 at end of input, so callers can compare without a separate bounds check. */
static int json_peek(const struct json_reader *r)
{
	return r->pos < r->len ? r->s[r->pos] : -1;
}

static int json_hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int d = lex_hexval(p[i]);
		if (d < 0)
			return -1;
		v = v << 4 | (unsigned)d;
	}
	*out = v;
	return 0;
}

/* Length of the well-formed UTF-8 sequence at p (at most avail bytes), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t json_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
	if (c < 0x80) return 1;
	else if (c >= 0xC2 && c <= 0xDF) n = 2;
	else if (c == 0xE0) { n = 3; lo = 0xA0; }
	else if (c == 0xED) { n = 3; hi = 0x9F; }
	else if (c >= 0xE1 && c <= 0xEF) n = 3;
	else if (c == 0xF0) { n = 4; lo = 0x90; }
	else if (c >= 0xF1 && c <= 0xF3) n = 4;
	else if (c == 0xF4) { n = 4; hi = 0x8F; }
	else return 0;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

static size_t json_put_utf8(unsigned char *o, unsigned cp)
{
	if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The \uXXXX escape at r->pos (a UTF-16 pair when it is a high surrogate),
 * as UTF-8 in tmp[0..*w). */
static int json_read_uescape(struct json_reader *r, const char *what, int is_key,
			     unsigned char tmp[4], size_t *w)
{
	size_t at = r->pos;
	unsigned cp, lo;
	if (r->len - r->pos < 6 || json_hex4(r->s + at + 2, &cp) < 0)
		return json_fail(r, "invalid \\u escape in %s at offset %zu: expected 4 hex digits", what, at);
	r->pos += 6;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return json_fail(r, "lone low surrogate \\u%04X in %s at offset %zu", cp, what, at);
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		/* UTF-16 pair: the low half must follow immediately. */
		const unsigned char *q = r->s + r->pos;
		if (r->len - r->pos < 6 || q[0] != '\\' || q[1] != 'u' ||
		    json_hex4(q + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
			return json_fail(r, "lone high surrogate \\u%04X in %s at offset %zu: expected a \\uDC00-\\uDFFF escape after it",
					 cp, what, at);
		r->pos += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (cp == 0 && is_key)
		/* Keys are C strings: an embedded NUL would silently alias another key. */
		return json_fail(r, "\\u0000 in %s at offset %zu is not supported", what, at);
	*w = json_put_utf8(tmp, cp);
	return 0;
}

/* Decodes the string starting at the opening quote into out (cap bytes plus a
 * NUL terminator). Values may contain NUL (use the length); keys may not. */
static int json_read_string(struct json_reader *r, char *out, size_t cap,
			    size_t *outlen, int is_key)
{
	const char *what = is_key ? "key" : "string";
	size_t start = r->pos;
	size_t n = 0;
	unsigned char tmp[4];
	r->pos++;   /* opening quote */
	for (;;) {
		if (r->pos >= r->len)
			return json_fail(r, "unterminated %s starting at offset %zu", what, start);
		const unsigned char *p = r->s + r->pos;
		size_t at = r->pos, w;
		if (*p == '"') {
			r->pos++;
			break;
		}
		if (*p < 0x20)
			return json_fail(r, "unescaped control character 0x%02x in %s at offset %zu",
					 *p, what, at);
		if (*p == '\\') {
			if (r->pos + 1 >= r->len)
				return json_fail(r, "unterminated %s starting at offset %zu", what, start);
			unsigned char e = p[1];
			unsigned char c;
			switch (e) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': c = 0; break;
			default:
				return json_fail(r, "invalid escape '\\%c' in %s at offset %zu: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
						 e >= 0x20 && e < 0x7F ? e : '?', what, at);
			}
			if (e != 'u') {
				tmp[0] = c;
				w = 1;
				r->pos += 2;
			} else if (json_read_uescape(r, what, is_key, tmp, &w) < 0) {
				return -1;
			}
		} else {
			w = json_utf8_len(p, r->len - r->pos);
			if (!w)
				return json_fail(r, "invalid UTF-8 in %s at offset %zu", what, at);
			memcpy(tmp, p, w);
			r->pos += w;
		}
		if (w > cap - n)
			return json_fail(r, "%s starting at offset %zu is too long: at most %zu bytes",
					 what, start, cap);
		memcpy(out + n, tmp, w);
		n += w;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

static int json_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? kept as text. */
static int json_read_number(struct json_reader *r, struct json_field *f)
{
	size_t start = r->pos;
	if (json_peek(r) == '-')
		r->pos++;
	if (json_peek(r) == '0') {
		r->pos++;
		if (json_is_digit(json_peek(r)))
			return json_fail(r, "invalid number at offset %zu: leading zeros are not allowed", start);
	} else if (json_is_digit(json_peek(r))) {
		while (json_is_digit(json_peek(r)))
			r->pos++;
	} else {
		return json_fail(r, "invalid number at offset %zu: expected a digit at offset %zu", start, r->pos);
	}
	if (json_peek(r) == '.') {
		r->pos++;
		if (!json_is_digit(json_peek(r)))
			return json_fail(r, "invalid number at offset %zu: expected a digit after '.' at offset %zu", start, r->pos);
		while (json_is_digit(json_peek(r)))
			r->pos++;
	}
	if (json_peek(r) == 'e' || json_peek(r) == 'E') {
		r->pos++;
		if (json_peek(r) == '+' || json_peek(r) == '-')
			r->pos++;
		if (!json_is_digit(json_peek(r)))
			return json_fail(r, "invalid number at offset %zu: expected a digit in the exponent at offset %zu", start, r->pos);
		while (json_is_digit(json_peek(r)))
			r->pos++;
	}
	size_t n = r->pos - start;
	if (n >= sizeof f->str)
		return json_fail(r, "number at offset %zu is too long: at most %zu characters", start, sizeof f->str - 1);
	memcpy(f->str, r->s + start, n);
	f->str[n] = '\0';
	f->str_len = n;
	f->type = JSON_NUMBER;
	return 0;
}

static int json_read_literal(struct json_reader *r, const char *word)
{
	size_t n = strlen(word);
	if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
		return -1;
	r->pos += n;
	return 0;
}

static int json_read_value(struct json_reader *r, struct json_field *f)
{
	int c = json_peek(r);
	f->str[0] = '\0';
	f->str_len = 0;
	f->boolean = 0;
	if (c == '"') {
		f->type = JSON_STRING;
		return json_read_string(r, f->str, sizeof f->str - 1, &f->str_len, 0);
	}
	if (c == '-' || json_is_digit(c))
		return json_read_number(r, f);
	if (c == '{' || c == '[')
		return json_fail(r, "nested values not supported at offset %zu: expected a string, number, true, false or null", r->pos);
	size_t at = r->pos;
	if (json_read_literal(r, "true") == 0) {
		f->type = JSON_BOOL;
		f->boolean = 1;
		return 0;
	}
	if (json_read_literal(r, "false") == 0) {
		f->type = JSON_BOOL;
		return 0;
	}
	if (json_read_literal(r, "null") == 0) {
		f->type = JSON_NULL;
		return 0;
	}
	if (c < 0)
		return json_fail(r, "unexpected end of input at offset %zu: expected a value", at);
	return json_fail(r, "expected a string, number, true, false or null at offset %zu", at);
}

int json_parse_object(const char *s, size_t len, struct json_object *obj,
		      char *err, size_t errlen)
{
	struct json_reader r = { (const unsigned char *)s, len, 0, err, errlen };
	obj->n = 0;
	if (err && errlen)
		err[0] = '\0';

	json_skip_ws(&r);
	if (r.pos >= r.len)
		return json_fail(&r, "empty body: expected a JSON object");
	if (json_peek(&r) != '{')
		return json_fail(&r, "expected '{' at offset %zu", r.pos);
	r.pos++;
	json_skip_ws(&r);
	if (json_peek(&r) == '}') {
		r.pos++;
		goto tail;
	}
	for (;;) {
		json_skip_ws(&r);
		if (json_peek(&r) != '"')
			return json_fail(&r, "expected a string key at offset %zu", r.pos);
		if (obj->n == JSON_MAX_FIELDS)
			return json_fail(&r, "too many fields at offset %zu: at most %d", r.pos, JSON_MAX_FIELDS);
		size_t key_at = r.pos, key_len;
		struct json_field *f = &obj->fields[obj->n];
		if (json_read_string(&r, f->key, sizeof f->key - 1, &key_len, 1) < 0)
			return -1;
		for (size_t i = 0; i < obj->n; i++)
			if (strcmp(obj->fields[i].key, f->key) == 0)
				return json_fail(&r, "duplicate key \"%s\" at offset %zu", f->key, key_at);
		json_skip_ws(&r);
		if (json_peek(&r) != ':')
			return json_fail(&r, "expected ':' at offset %zu", r.pos);
		r.pos++;
		json_skip_ws(&r);
		if (json_read_value(&r, f) < 0)
			return -1;
		obj->n++;
		json_skip_ws(&r);
		int c = json_peek(&r);
		r.pos++;
		if (c == '}')
			break;
		if (c != ',')
			return json_fail(&r, "expected ',' or '}' at offset %zu", r.pos - 1);
	}
tail:
	json_skip_ws(&r);
	if (r.pos != r.len)
		return json_fail(&r, "unexpected data after the object at offset %zu", r.pos);
	return 0;
}

const struct json_field *json_get(const struct json_object *obj, const char *key)
{
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->fields[i].key, key) == 0)
			return &obj->fields[i];
	return NULL;
}

int json_field_i64(const struct json_field *f, int64_t min, int64_t max, int64_t *out)
{
	const char *p = f->str, *end = f->str + f->str_len;
	if (f->type != JSON_NUMBER && f->type != JSON_STRING)
		return -1;
	int neg = p < end && *p == '-';
	p += neg;
	if (p == end)
		return -1;
	/* Accumulate the magnitude; once it passes 2^63 nothing can be in range,
	 * but keep scanning so "12x" is still "not an integer", not "too big". */
	const uint64_t limit = (uint64_t)1 << 63;
	uint64_t mag = 0;
	int big = 0;
	for (; p < end; p++) {
		if (!json_is_digit((unsigned char)*p))
			return -1;   /* '.', 'e', junk: only plain integers count */
		unsigned d = (unsigned)(*p - '0');
		if (!big && mag > (limit - d) / 10)
			big = 1;
		if (!big)
			mag = mag * 10 + d;
	}
	if (big || (!neg && mag > limit - 1))
		return -2;
	int64_t v = neg ? (mag == limit ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
	if (v < min || v > max)
		return -2;
	*out = v;
	return 0;
}
