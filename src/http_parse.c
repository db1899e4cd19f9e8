/* Strict HTTP/1.x request-head parser (RFC 9112 syntax, no leniency):
 * single spaces, CRLF only, origin-form printable targets, HTTP/1.0 and 1.1.
 * One forward pass over the bytes; every read is bounds-checked against `end`,
 * so a partial head simply runs out of bytes and asks for more. */
#include "http_parse.h"
#include <stdint.h>
#include <string.h>

/* Targets and values are the long parts of a head, so they are checked eight
 * bytes at a time (SWAR); a word with any suspect byte goes to the byte loop,
 * which decides. The tests below may report false positives, never misses. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Some byte < n (n <= 128). */
static uint64_t has_less(uint64_t x, unsigned n) { return (x - ONES * n) & ~x & HIGHS; }

/* Some byte >= 0x7F (DEL or obs-text); carries only add false positives. */
static uint64_t has_del_or_high(uint64_t x) { return (x | (x + ONES)) & HIGHS; }

/* Some byte == 0x7F. */
static uint64_t has_del(uint64_t x) { return has_less(x ^ (ONES * 0x7F), 1); }

static const unsigned char *skip_vchar(const unsigned char *p, const unsigned char *end)
{
	uint64_t x;
	for (; end - p >= 8; p += 8) {
		memcpy(&x, p, 8);
		if (has_less(x, 0x21) | has_del_or_high(x))
			break;
	}
	while (p < end && http_is_vchar(*p))
		p++;
	return p;
}

static const unsigned char *skip_field(const unsigned char *p, const unsigned char *end)
{
	uint64_t x;
	for (; end - p >= 8; p += 8) {
		memcpy(&x, p, 8);
		if (has_less(x, 0x20) | has_del(x)) /* HTAB also lands here */
			break;
	}
	while (p < end && http_is_field(*p))
		p++;
	return p;
}


/* Methods are case-sensitive: "get" is a valid token but not GET. */
static enum http_method method_of(const char *m, size_t n)
{
#define IS(lit) (memcmp(m, lit, sizeof lit - 1) == 0)
	switch (n) {
	case 3: return IS("GET") ? HTTP_GET : IS("PUT") ? HTTP_PUT : HTTP_OTHER;
	case 4: return IS("HEAD") ? HTTP_HEAD : IS("POST") ? HTTP_POST : HTTP_OTHER;
	case 5: return IS("PATCH") ? HTTP_PATCH : IS("TRACE") ? HTTP_TRACE : HTTP_OTHER;
	case 6: return IS("DELETE") ? HTTP_DELETE : HTTP_OTHER;
	case 7: return IS("OPTIONS") ? HTTP_OPTIONS : IS("CONNECT") ? HTTP_CONNECT : HTTP_OTHER;
	default: return HTTP_OTHER;
	}
#undef IS
}

/* Content-Length: 1*DIGIT, or -1. The value stops growing once it passes the
 * body limit, so any digit string fits (it is answered with 413, not 400). */
static long long parse_length(const char *v, size_t n)
{
	long long x = 0;
	size_t i;
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (x <= HTTP_MAX_BODY)
			x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* Applies one Connection header: a comma-separated, case-insensitive token
 * list. "close" wins over "keep-alive" wherever either appears. */
static void apply_connection(struct http_request *req, const char *v, size_t n,
			     int *closed)
{
	size_t i = 0, s, e;
	while (lex_list_next(v, n, &i, &s, &e)) {
		if (LEX_IEQ(v + s, e - s, "close"))
			*closed = 1;
		else if (LEX_IEQ(v + s, e - s, "keep-alive"))
			req->keep_alive = 1;
	}
	if (*closed)
		req->keep_alive = 0;
}

/* Derives the framing fields from a complete head; returns 0 or -status. */
static int derive(struct http_request *req)
{
	int hosts = 0, lengths = 0, te = 0, closed = 0;
	size_t i;

	req->content_length = -1;
	req->keep_alive = req->minor_version == 1;
	req->expect_continue = 0;
	for (i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];
		/* Dispatch on length first: most headers match none of these. */
		switch (h->name_len) {
		case 4:
			if (LEX_IEQ(h->name, h->name_len, "host"))
				hosts++;
			break;
		case 6:
			if (LEX_IEQ(h->name, h->name_len, "expect") &&
			    LEX_IEQ(h->value, h->value_len, "100-continue"))
				req->expect_continue = 1;
			break;
		case 10:
			if (LEX_IEQ(h->name, h->name_len, "connection"))
				apply_connection(req, h->value, h->value_len, &closed);
			break;
		case 14:
			if (LEX_IEQ(h->name, h->name_len, "content-length")) {
				/* Repeats are refused even when equal: two framing
				 * headers are a smuggling signal, not a convenience. */
				if (++lengths > 1)
					return -400;
				req->content_length = parse_length(h->value, h->value_len);
				if (req->content_length < 0)
					return -400;
			}
			break;
		case 17:
			if (LEX_IEQ(h->name, h->name_len, "transfer-encoding"))
				te = 1;
			break;
		}
	}
	req->has_host = hosts > 0;
	if (hosts > 1 || (hosts == 0 && req->minor_version == 1))
		return -400;
	if (te && lengths)
		return -400;
	/* Any transfer coding, chunked or not: we only read Content-Length
	 * bodies, and 411 tells the client exactly how to retry. */
	if (te)
		return -411;
	if (req->content_length > HTTP_MAX_BODY)
		return -413;
	return 0;
}

/* The steps of http_parse_request: each advances *pp past what it accepted
 * and returns 0, MORE when the bytes ran out first, HEAD_END (header_line
 * at the empty line) or minus the status. Single callers, so they inline. */
enum { MORE = 1, HEAD_END = 2 };

/* 1*tchar: methods and header names. */
static inline const unsigned char *skip_tchar(const unsigned char *p, const unsigned char *end)
{
	while (p < end && http_tchar[*p])
		p++;
	return p;
}

/* Method: 1*tchar SP */
static inline int method(const unsigned char **pp, const unsigned char *end,
			 struct http_request *req)
{
	const unsigned char *tok = *pp, *p = skip_tchar(tok, end);
	if (p == end)
		return MORE;
	if (*p != ' ' || p == tok)
		return -400;
	req->method_str = (const char *)tok;
	req->method_len = (size_t)(p - tok);
	req->method = method_of(req->method_str, req->method_len);
	*pp = p + 1;
	return 0;
}

/* Target: origin-form ('/' then printable ASCII) SP. Scans at most one byte
 * past the URI limit so an endless target is refused early. */
static inline int target(const unsigned char **pp, const unsigned char *end,
			 struct http_request *req)
{
	const unsigned char *tok = *pp, *p = tok, *stop;
	if (p == end)
		return MORE;
	if (*p != '/')
		return -400;
	stop = end - p > HTTP_MAX_URI ? p + HTTP_MAX_URI + 1 : end;
	p = skip_vchar(p, stop);
	if (p - tok > HTTP_MAX_URI)
		return -414;
	if (p == end)
		return MORE;
	if (*p != ' ')
		return -400;
	req->target = (const char *)tok;
	req->target_len = (size_t)(p - tok);
	*pp = p + 1;
	return 0;
}

/* CRLF at *pp. */
static inline int crlf(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp;
	if (p == end)
		return MORE;
	if (*p++ != '\r')
		return -400;
	if (p == end)
		return MORE;
	if (*p++ != '\n')
		return -400;
	*pp = p;
	return 0;
}

/* Version: "HTTP/" DIGIT "." DIGIT CRLF; well-formed but not 1.0/1.1 is 505. */
static inline int version(const unsigned char **pp, const unsigned char *end,
			  struct http_request *req)
{
	const unsigned char *p = *pp;
	int i;
	if (end - p >= 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1')) {
		p += 8; /* the usual case */
	} else {
		/* byte by byte, so that a partial version is judged too */
		for (i = 0; i < 8; i++, p++) {
			if (p == end)
				return MORE;
			if (i == 5 || i == 7) {
				if (*p < '0' || *p > '9')
					return -400;
			} else if (*p != (unsigned char)"HTTP/x."[i]) {
				return -400;
			}
		}
		if (p[-3] != '1' || (p[-1] != '0' && p[-1] != '1'))
			return -505;
	}
	req->minor_version = p[-1] - '0';
	*pp = p;
	return crlf(pp, end);
}

/* One header field, name ":" OWS value OWS CRLF, or the empty line that
 * ends the head (HEAD_END). */
static inline int header_line(const unsigned char **pp, const unsigned char *end,
			      struct http_request *req)
{
	const unsigned char *p = *pp, *tok, *colon, *v, *ve;
	struct http_header *h;
	int r;

	if (p == end)
		return MORE;
	if (*p == '\r')
		return (r = crlf(pp, end)) != 0 ? r : HEAD_END;
	if (req->num_headers == HTTP_MAX_HEADERS)
		return -431;
	/* A name must start the line: this also refuses obs-fold
	 * (leading SP/HTAB) and space before the colon. */
	tok = p;
	p = skip_tchar(p, end);
	if (p == end)
		return MORE;
	if (*p != ':' || p == tok)
		return -400;
	colon = p++;
	while (p < end && http_is_ows(*p))
		p++;
	v = p;
	p = skip_field(p, end);
	if (p == end)
		return MORE;
	if (*p != '\r')
		return -400; /* bare LF or a control byte */
	for (ve = p; ve > v && http_is_ows(ve[-1]); ve--)
		;
	if ((r = crlf(&p, end)) != 0)
		return r;
	h = &req->headers[req->num_headers++];
	h->name = (const char *)tok;
	h->name_len = (size_t)(colon - tok);
	h->value = (const char *)v;
	h->value_len = (size_t)(ve - v);
	*pp = p;
	return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	/* Never look past the head limit: a head not complete within it is 431. */
	const unsigned char *s = (const unsigned char *)buf;
	const unsigned char *end = s + (len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
	const unsigned char *p = s;
	int r;

	req->num_headers = 0;
	if ((r = method(&p, end, req)) == 0 && (r = target(&p, end, req)) == 0 &&
	    (r = version(&p, end, req)) == 0)
		while ((r = header_line(&p, end, req)) == 0)
			;
	if (r == HEAD_END) {
		r = derive(req);
		return r < 0 ? r : (int)(p - s);
	}
	/* Out of bytes: fine below the head limit, 431 once it is reached. */
	return r == MORE ? (len >= HTTP_MAX_HEAD ? -431 : 0) : r;
}

const struct http_header *http_find_header(const struct http_request *req,
					   const char *name)
{
	size_t i, n = strlen(name);
	for (i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->name_len == n && lex_ieq(h->name, name, n))
			return h;
	}
	return NULL;
}

void http_split_target(const char *target, size_t len,
		       const char **path, size_t *path_len,
		       const char **query, size_t *query_len)
{
	const char *q = len ? memchr(target, '?', len) : NULL;
	*path = target;
	if (q) {
		*path_len = (size_t)(q - target);
		*query = q + 1;
		*query_len = len - *path_len - 1;
	} else {
		*path_len = len;
		*query = len ? target + len : target; /* no arithmetic on a NULL target */
		*query_len = 0;
	}
}

int http_query_param(const char *query, size_t query_len, const char *name,
		     const char **value, size_t *value_len)
{
	size_t n = strlen(name), i = 0;
	while (i < query_len) {
		size_t s = i, k;
		while (i < query_len && query[i] != '&')
			i++;
		/* pair is query[s..i); its key ends at the first '=' */
		for (k = s; k < i && query[k] != '='; k++)
			;
		if (k - s == n && memcmp(query + s, name, n) == 0) {
			*value = k < i ? query + k + 1 : query + k;
			*value_len = k < i ? i - k - 1 : 0;
			return 1;
		}
		i++; /* skip '&' */
	}
	return 0;
}

long http_percent_decode(const char *src, size_t len, char *dst, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < len) {
		unsigned char c = (unsigned char)src[i];
		if (c == '%') {
			int hi, lo;
			if (len - i < 3)
				return -1;
			hi = lex_hexval((unsigned char)src[i + 1]);
			lo = lex_hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0)
				return -1; /* a NUL would truncate C strings downstream */
			i += 3;
		} else {
			i++;
		}
		if (o == cap)
			return -1;
		dst[o++] = (char)c;
	}
	return (long)o;
}
