/* libFuzzer target for http_parse.c. Besides crashes and sanitizer reports it
 * checks the parser's contract: results are bounded, pointers stay inside the
 * input, and a shorter prefix never disagrees with the whole input.
 * fuzz-src: src/http_parse.c src/http_lex.c */
#include "http_parse.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

static int known_status(int r)
{
	return r == -400 || r == -411 || r == -413 || r == -414 || r == -431 ||
	       r == -505;
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p + n <= buf + len;
}

/* The grammar, restated byte by byte, as an oracle for the parser's
 * word-at-a-time scans: what it accepted must really be clean. */
static int clean_target(const char *t, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7E)
			return 0;
	return n > 0 && t[0] == '/';
}

static int clean_value(const char *v, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7F)
			return 0;
	}
	/* OWS is stripped at both ends */
	return n == 0 || (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t');
}

static int clean_name(const char *s, size_t n)
{
	static const char tc[] = "!#$%&'*+-.^_`|~";
	size_t i;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || (c && memchr(tc, c, sizeof tc - 1))))
			return 0;
	}
	return n > 0;
}

/* Exercises the target helpers the router calls on every request. */
static void helpers(const struct http_request *req)
{
	const char *path, *query, *v;
	size_t pl, ql, vl;
	char dst[64];
	long d;

	http_split_target(req->target, req->target_len, &path, &pl, &query, &ql);
	MUST(pl <= req->target_len && inside(query, ql, req->target, req->target_len));
	if (http_query_param(query, ql, "dataType", &v, &vl))
		MUST(inside(v, vl, query, ql));
	d = http_percent_decode(path, pl, dst, sizeof dst);
	MUST(d >= -1 && d <= (long)sizeof dst && d <= (long)pl);
	MUST(http_find_header(req, "Host") != NULL || !req->has_host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request req;
	const char *buf = (const char *)data;
	size_t i;
	int r = http_parse_request(buf, size, &req), rp;

	if (r > 0) {
		MUST((size_t)r <= size && r <= HTTP_MAX_HEAD);
		MUST(inside(req.method_str, req.method_len, buf, (size_t)r));
		MUST(inside(req.target, req.target_len, buf, (size_t)r));
		MUST(req.target_len >= 1 && req.target_len <= HTTP_MAX_URI);
		MUST(req.num_headers <= HTTP_MAX_HEADERS);
		MUST(req.content_length >= -1 && req.content_length <= HTTP_MAX_BODY);
		MUST(req.minor_version == 0 || req.minor_version == 1);
		MUST(clean_name(req.method_str, req.method_len));
		MUST(clean_target(req.target, req.target_len));
		for (i = 0; i < req.num_headers; i++) {
			const struct http_header *h = &req.headers[i];
			MUST(h->name_len > 0 && inside(h->name, h->name_len, buf, (size_t)r));
			MUST(inside(h->value, h->value_len, buf, (size_t)r));
			MUST(clean_name(h->name, h->name_len) && h->name[h->name_len] == ':');
			MUST(clean_value(h->value, h->value_len));
		}
		helpers(&req);
		/* The head ends exactly at r: r bytes suffice, r - 1 do not. */
		MUST(http_parse_request(buf, (size_t)r, &req) == r);
		MUST(http_parse_request(buf, (size_t)r - 1, &req) == 0);
	} else if (r == 0) {
		MUST(size < HTTP_MAX_HEAD);
	} else {
		MUST(known_status(r));
	}

	/* Stateless re-parsing: a prefix either asks for more or agrees. */
	rp = http_parse_request(buf, size / 2, &req);
	MUST(rp == 0 || rp == r);

	/* The decoder on raw bytes, with a tight capacity. */
	{
		char dst[16];
		long d = http_percent_decode(buf, size, dst, sizeof dst);
		MUST(d >= -1 && d <= (long)sizeof dst);
	}
	return 0;
}
