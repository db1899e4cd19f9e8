/* A pure, stateless response parser: re-run from the start of the buffer
 * after every read, like the request parser. */
#include "http_response.h"

#include <string.h>

/* Content-Length: 1*DIGIT, at most 18 digits (no overflow); -1 otherwise. */
static long long parse_length(const char *v, size_t n)
{
	long long x = 0;
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* CRLF at p: 1 yes, 0 not enough bytes yet, -1 something else. */
static int crlf_at(const unsigned char *p, const unsigned char *end)
{
	if (p >= end)
		return 0;
	if (*p != '\r')
		return -1;
	if (p + 1 >= end)
		return 0;
	return p[1] == '\n' ? 1 : -1;
}
/* Steps over a CRLF; expands inside functions that define NEED(). */
#define EXPECT_CRLF() do { if (crlf_at(p, end) < 0) return HTTP_RESP_BAD; NEED(p + 1); p += 2; } while (0)

/* Header lines up to and including the empty line; shared by the head
 * parser and the chunked trailers. Returns the position after the empty
 * line, or NULL with *rc set. hdrs may be NULL (lines checked, not kept). */
static const unsigned char *parse_fields(const unsigned char *p, const unsigned char *end, int capped,
					 struct http_header *hdrs, size_t *nh, int *rc)
{
	/* The bytes ran out: more may come, unless the caller's limit was reached. */
#define NEED(q) do { if ((q) >= end) { *rc = capped ? HTTP_RESP_TOO_BIG : HTTP_RESP_MORE; return NULL; } } while (0)
#define BAD() do { *rc = HTTP_RESP_BAD; return NULL; } while (0)
	for (;;) {
		NEED(p);
		if (*p == '\r') {
			NEED(p + 1);
			if (p[1] != '\n')
				BAD();
			return p + 2;
		}
		const unsigned char *name = p;
		while (p < end && http_tchar[*p])
			p++;
		NEED(p);
		if (p == name || *p != ':')
			BAD();   /* also obs-fold, which starts with whitespace */
		const unsigned char *name_end = p++;
		while (p < end && http_is_ows(*p))
			p++;
		const unsigned char *val = p;
		while (p < end && http_is_field(*p))
			p++;
		NEED(p);
		if (*p != '\r')
			BAD();
		const unsigned char *val_end = p;
		while (val_end > val && http_is_ows(val_end[-1]))
			val_end--;
		NEED(p + 1);
		if (p[1] != '\n')
			BAD();
		p += 2;
		if (hdrs) {
			if (*nh == HTTP_CLIENT_MAX_HEADERS) {
				*rc = HTTP_RESP_TOO_BIG;
				return NULL;
			}
			hdrs[*nh] = (struct http_header){
				(const char *)name, (size_t)(name_end - name),
				(const char *)val, (size_t)(val_end - val) };
			(*nh)++;
		}
	}
#undef BAD
#undef NEED
}

/* "HTTP/1.x SP 3DIGIT [SP reason] CRLF": the position after it, or NULL
 * with *rc set. */
static const unsigned char *status_line(const unsigned char *p, const unsigned char *end, int capped,
					struct http_response *res, int *rc)
{
	static const char ver[] = "HTTP/1.";
#define NEED(q) do { if ((q) >= end) { *rc = capped ? HTTP_RESP_TOO_BIG : HTTP_RESP_MORE; return NULL; } } while (0)
#define BAD() do { *rc = HTTP_RESP_BAD; return NULL; } while (0)
	for (size_t i = 0; i < sizeof ver - 1; i++, p++) {
		NEED(p);
		if (*p != (unsigned char)ver[i])
			BAD();
	}
	NEED(p);
	if (*p != '0' && *p != '1')
		BAD();
	res->minor_version = *p++ - '0';
	NEED(p);
	if (*p++ != ' ')
		BAD();
	res->status = 0;
	for (int i = 0; i < 3; i++, p++) {
		NEED(p);
		if (*p < '0' || *p > '9' || (i == 0 && *p == '0'))
			BAD();
		res->status = res->status * 10 + (*p - '0');
	}
	NEED(p);
	/* RFC 9112: SP [reason]; a missing SP before CRLF is tolerated. */
	if (*p == ' ') {
		p++;
		res->reason = (const char *)p;
		while (p < end && http_is_field(*p))
			p++;
		res->reason_len = (size_t)((const char *)p - res->reason);
		NEED(p);
	}
	if (crlf_at(p, end) < 0)
		BAD();
	NEED(p + 1);
	return p + 2;
#undef BAD
#undef NEED
}

/* Framing and persistence, from the complete head: 0 or HTTP_RESP_BAD. */
static int framing(struct http_response *res)
{
	int closed = 0, keep_alive = 0, te = 0, te_chunked = 0;
	for (size_t i = 0; i < res->num_headers; i++) {
		const struct http_header *h = &res->headers[i];
		size_t k = 0, s, e;
		if (LEX_IEQ(h->name, h->name_len, "content-length")) {
			long long v = parse_length(h->value, h->value_len);
			if (v < 0 || (res->content_length >= 0 && v != res->content_length))
				return HTTP_RESP_BAD;
			res->content_length = v;
		} else if (LEX_IEQ(h->name, h->name_len, "transfer-encoding")) {
			te = 1;
			/* Only the last transfer coding counts. */
			while (lex_list_next(h->value, h->value_len, &k, &s, &e))
				te_chunked = LEX_IEQ(h->value + s, e - s, "chunked");
		} else if (LEX_IEQ(h->name, h->name_len, "connection")) {
			while (lex_list_next(h->value, h->value_len, &k, &s, &e)) {
				if (LEX_IEQ(h->value + s, e - s, "close"))
					closed = 1;
				else if (LEX_IEQ(h->value + s, e - s, "keep-alive"))
					keep_alive = 1;
			}
		}
	}
	if (te) {
		/* Transfer-Encoding overrides Content-Length (RFC 9112 6.3); a
		 * final coding other than chunked runs until the close. */
		res->content_length = -1;
		res->chunked = te_chunked;
	}
	res->keep_alive = res->minor_version == 1 ? !closed : keep_alive && !closed;
	if (te && !te_chunked)
		res->keep_alive = 0;
	return 0;
}

int http_parse_response(const char *buf, size_t len, struct http_response *res)
{
	int capped = len > HTTP_CLIENT_MAX_HEAD;
	const unsigned char *p = (const unsigned char *)buf;
	const unsigned char *end = p + (capped ? HTTP_CLIENT_MAX_HEAD : len);
	int rc;

	res->num_headers = 0;
	res->content_length = -1;
	res->chunked = 0;
	res->keep_alive = 0;
	res->reason = buf;
	res->reason_len = 0;
	p = status_line(p, end, capped, res, &rc);
	if (p)
		p = parse_fields(p, end, capped, res->headers, &res->num_headers, &rc);
	if (!p)
		return rc;
	rc = framing(res);
	return rc < 0 ? rc : (int)((const char *)p - buf);
}

/* One pass over a chunked coding; copies data when out is not NULL. */
static long chunked_pass(const unsigned char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
	const unsigned char *p = in, *end = in + len;
	const int capped = 0;
	size_t n = 0;
	int rc;
#define NEED(q) do { if ((q) >= end) return HTTP_RESP_MORE; } while (0)

	*out_len = 0;
	for (;;) {
		uint64_t size = 0;
		const unsigned char *digits = p;
		int d;
		while (p < end && (d = lex_hexval(*p)) >= 0) {
			if (p - digits == 15)
				return HTTP_RESP_BAD;   /* 16 hex digits and more: no chunk is that big */
			size = size * 16 + (uint64_t)d;
			p++;
		}
		NEED(p);
		if (p == digits)
			return HTTP_RESP_BAD;
		/* chunk-ext: BWS ";" ...; names and values are not interpreted. */
		while (p < end && http_is_ows(*p))
			p++;
		NEED(p);
		if (*p == ';') {
			while (p < end && http_is_field(*p))
				p++;
			NEED(p);
		}
		EXPECT_CRLF();
		if (size == 0)
			break;
		if (size > cap - n)
			return HTTP_RESP_TOO_BIG;
		if ((uint64_t)(end - p) < size)
			return HTTP_RESP_MORE;
		if (out)
			memmove(out + n, p, (size_t)size);
		n += (size_t)size;
		p += size;
		NEED(p);
		EXPECT_CRLF();
	}
#undef NEED
	p = parse_fields(p, end, capped, NULL, NULL, &rc);
	if (!p)
		return rc;
	*out_len = n;
	return (long)(p - in);
}

long http_chunked_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
	/* Check first, copy only a complete coding: an in-place decode must not
	 * disturb bytes a later call (with more input) will read again. */
	long r = chunked_pass((const unsigned char *)in, len, NULL, cap, out_len);
	if (r > 0 && out)
		r = chunked_pass((const unsigned char *)in, len, out, cap, out_len);
	return r;
}

long http_read_response(const char *buf, size_t len, int eof, int head_request,
			struct http_response *res, char *body, size_t cap, size_t *body_len)
{
	size_t off = 0;
	*body_len = 0;
	for (;;) {
		int h = http_parse_response(buf + off, len - off, res);
		if (h == HTTP_RESP_MORE)
			return eof ? HTTP_RESP_TRUNCATED : HTTP_RESP_MORE;
		if (h < 0)
			return h;
		off += (size_t)h;
		if (res->status >= 200)
			break;
		if (res->status == 101)
			return HTTP_RESP_BAD;   /* we never ask to switch protocols */
		/* 1xx interim response: the real one follows. */
	}
	const char *b = buf + off;
	size_t avail = len - off;
	if (head_request || res->status == 204 || res->status == 304)
		return (long)off;
	if (res->chunked) {
		long r = http_chunked_decode(b, avail, body, cap, body_len);
		if (r == HTTP_RESP_MORE)
			return eof ? HTTP_RESP_TRUNCATED : HTTP_RESP_MORE;
		return r < 0 ? r : (long)off + r;
	}
	if (res->content_length >= 0) {
		size_t cl = (size_t)res->content_length;
		if (res->content_length > (long long)cap)
			return HTTP_RESP_TOO_BIG;
		if (avail < cl)
			return eof ? HTTP_RESP_TRUNCATED : HTTP_RESP_MORE;
		memcpy(body, b, cl);
		*body_len = cl;
		return (long)(off + cl);
	}
	/* Delimited by the close. */
	res->keep_alive = 0;
	if (avail > cap)
		return HTTP_RESP_TOO_BIG;
	if (!eof)
		return HTTP_RESP_MORE;
	memcpy(body, b, avail);
	*body_len = avail;
	return (long)len;
}

const struct http_header *http_response_header(const struct http_response *res, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < res->num_headers; i++)
		if (res->headers[i].name_len == n && lex_ieq(res->headers[i].name, name, n))
			return &res->headers[i];
	return NULL;
}
