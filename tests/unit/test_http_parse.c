/* Unit tests for http_parse.c. Every input is parsed from the very end of a
 * mapping that is followed by a PROT_NONE page, so reading one byte past the
 * input segfaults instead of passing silently. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mmap flags, fileno */
#endif
#include "check.h"
#include "http_parse.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define EDGE_DATA (6 * 4096) /* room for the largest input below */

static struct http_request req;
static char big[EDGE_DATA];


static int parse_n(const char *s, size_t n)
{
	return http_parse_request(check_at_edge(s, n), n, &req);
}

static int parse(const char *s) { return parse_n(s, strlen(s)); }

/* Feeds s one byte more at a time, as a slow client would. A valid head must
 * ask for more on every proper prefix, then return its length; a rejected one
 * may ask for more until its first bad byte, then must keep the same status. */
static int incremental_ok(const char *s, size_t n, int want)
{
	size_t k;
	int seen_err = 0;
	for (k = 0; k <= n; k++) {
		int r = parse_n(s, k);
		if (want > 0) {
			if ((k < (size_t)want && r != 0) || (k >= (size_t)want && r != want)) {
				fprintf(stderr, "prefix %zu: got %d, want %d\n", k,
					r, k < (size_t)want ? 0 : want);
				return 0;
			}
		} else if (r != 0 || seen_err) {
			if (r != want) {
				fprintf(stderr, "prefix %zu: got %d, want %d\n", k, r, want);
				return 0;
			}
			seen_err = 1;
		}
	}
	return want > 0 || seen_err;
}

#define CHECK_PARSE(s, want) CHECK_EQ_U64((long long)parse(s), (long long)(want))
#define CHECK_INC(s, want) CHECK(incremental_ok((s), strlen(s), (want)))
#define CHECK_INC_OK(s) CHECK(incremental_ok((s), strlen(s), (int)strlen(s)))

static void test_typical(void)
{
	const char *s = "GET /api/next-id/order?dataType=int HTTP/1.1\r\n"
			"Host: x\r\nUser-Agent: t\r\n\r\n";
	const char *b;
	int r = parse(s);
	CHECK_EQ_U64(r, strlen(s));
	b = check_edge - strlen(s);
	CHECK(req.method == HTTP_GET);
	CHECK_STR(req.method_str, req.method_len, "GET");
	CHECK(req.method_str == b);
	CHECK_STR(req.target, req.target_len, "/api/next-id/order?dataType=int");
	CHECK(req.target == b + 4);
	CHECK_EQ_U64(req.minor_version, 1);
	CHECK_EQ_U64(req.num_headers, 2);
	CHECK_STR(req.headers[0].name, req.headers[0].name_len, "Host");
	CHECK_STR(req.headers[0].value, req.headers[0].value_len, "x");
	CHECK_STR(req.headers[1].name, req.headers[1].name_len, "User-Agent");
	CHECK_STR(req.headers[1].value, req.headers[1].value_len, "t");
	CHECK(req.content_length == -1);
	CHECK_EQ_U64(req.keep_alive, 1);
	CHECK_EQ_U64(req.has_host, 1);
	CHECK_EQ_U64(req.expect_continue, 0);

	CHECK_INC_OK(s);
	CHECK_INC_OK("GET /api/next-id/order HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INC_OK("GET / HTTP/1.0\r\n\r\n");
	CHECK_INC_OK("POST /api/init/a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
		     "X-Empty:\r\nX-Tab:\tv\t\r\nX-8bit: \xe2\x82\xac\r\n\r\n");
	CHECK_EQ_U64(parse("GET /api/next-id/order HTTP/1.1\r\nHost: x\r\n\r\n"), 44);
}

static void test_pipelined_and_body(void)
{
	const char *two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	const char *b;
	size_t n = strlen(two);
	int r = parse(two);
	CHECK_EQ_U64(r, 28);
	CHECK_STR(req.target, req.target_len, "/a");
	CHECK_EQ_U64(req.keep_alive, 1);
	b = check_edge - n;
	CHECK_EQ_U64(http_parse_request(b + r, n - (size_t)r, &req), n - 28);
	CHECK_STR(req.target, req.target_len, "/b");
	CHECK_EQ_U64(req.keep_alive, 0);

	/* The head ends at the empty line; the body is the caller's. */
	r = parse("PUT /api/reset/a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
		  "{\"value\":1}");
	CHECK_EQ_U64(r, 58);
	CHECK(req.method == HTTP_PUT);
	CHECK(req.content_length == 11);
	/* A body with bytes that are illegal in a head does not matter. */
	r = parse_n("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\0\n\r", 50);
	CHECK_EQ_U64(r, 47);
	CHECK(req.content_length == 3);
}

static void test_keep_alive(void)
{
	CHECK_PARSE("GET / HTTP/1.0\r\n\r\n", 18);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK_EQ_U64(req.minor_version, 0);
	CHECK_EQ_U64(req.has_host, 0);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 1);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 1);
	CHECK_EQ_U64(req.has_host, 1);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: close\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nconnection: CLOSE\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: TE ,\tkeep-alive ,\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 1);
	/* close wins, whichever comes first and in however many headers */
	CHECK(parse("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	/* tokens are whole words, not substrings */
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 1);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive2\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.0\r\nX-Connection: keep-alive\r\n\r\n") > 0);
	CHECK_EQ_U64(req.keep_alive, 0);
}

static void test_methods(void)
{
	static const struct { const char *m; enum http_method want; } t[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
		{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE }, { "OPTIONS", HTTP_OPTIONS },
		{ "PATCH", HTTP_PATCH }, { "TRACE", HTTP_TRACE }, { "CONNECT", HTTP_CONNECT },
		{ "get", HTTP_OTHER }, { "Get", HTTP_OTHER }, { "GETS", HTTP_OTHER },
		{ "GE", HTTP_OTHER }, { "FOO", HTTP_OTHER }, { "M-SEARCH", HTTP_OTHER },
		{ "PRI", HTTP_OTHER }, { "!#$%&'*+-.^_`|~09azAZ", HTTP_OTHER },
	};
	size_t i;
	char s[128];
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		snprintf(s, sizeof s, "%s / HTTP/1.1\r\nHost: x\r\n\r\n", t[i].m);
		CHECK_EQ_U64(parse(s), strlen(s));
		CHECK(req.method == t[i].want);
		CHECK_STR(req.method_str, req.method_len, t[i].m);
	}
}

/* Each byte value in each position, against the grammar's own definition. */
static void test_byte_classes(void)
{
	const char *tc = "!#$%&'*+-.^_`|~";
	char s[64];
	int c, bad = 0;
	for (c = 0; c < 256; c++) {
		int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z') || (c && strchr(tc, c));
		int vchar = c >= 0x21 && c <= 0x7E;
		int field = c == '\t' || (c >= 0x20 && c != 0x7F);
		int r;

		/* method and header-name bytes */
		memcpy(s, "GXT / HTTP/1.0\r\n\r\n", 18);
		s[1] = (char)c;
		r = parse_n(s, 18);
		if (r != (tchar ? 18 : -400)) bad++;
		memcpy(s, "GET / HTTP/1.0\r\nAXC: v\r\n\r\n", 26);
		s[17] = (char)c;
		r = parse_n(s, 26);
		/* ':' ends the name early; the rest "C: v" is then a valid value */
		if (r != (tchar || c == ':' ? 26 : -400)) bad++;

		/* target bytes */
		memcpy(s, "GET /X HTTP/1.0\r\n\r\n", 19);
		s[5] = (char)c;
		r = parse_n(s, 19);
		if (r != (vchar ? 19 : -400)) bad++;

		/* header-value bytes (middle of the value; CR and LF are bare here) */
		memcpy(s, "GET / HTTP/1.0\r\nA: aXb\r\n\r\n", 26);
		s[20] = (char)c;
		r = parse_n(s, 26);
		if (r != (field ? 26 : -400)) bad++;
		if (r > 0 && req.headers[0].value_len != 3) bad++;
		if (bad) {
			fprintf(stderr, "byte class mismatch at 0x%02x\n", c);
			break;
		}
	}
	CHECK(bad == 0);
}

static void test_request_line_rejections(void)
{
	CHECK_PARSE("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET /  HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET /\tHTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE(" / HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET\r\n\r\n", -400);
	/* only origin-form targets */
	CHECK_PARSE("GET * HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET  HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_EQ_U64(parse_n("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n", 29), -400);
	/* HTTP/0.9 and the HTTP/2 preface (its '*' target fails first) */
	CHECK_PARSE("GET /\r\n", -400);
	CHECK_PARSE("GET /\n", -400);
	CHECK_PARSE("GET / \r\n\r\n", -400);
	CHECK_PARSE("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -400);
	/* versions */
	CHECK_PARSE("GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505);
	CHECK_PARSE("GET / HTTP/1.2\r\nHost: x\r\n\r\n", -505);
	CHECK_PARSE("GET / HTTP/0.9\r\nHost: x\r\n\r\n", -505);
	CHECK_PARSE("GET / HTTP/3.0\r\nHost: x\r\n\r\n", -505);
	CHECK_PARSE("GET / HTTP/9.9", -505);
	CHECK_PARSE("GET / http/1.1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1x\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.10\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/10.0\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/a.b\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1,1\r\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP\r\n\r\n", -400);
	/* line endings */
	CHECK_PARSE("GET / HTTP/1.1\nHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\rHost: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\rHost: x\r\n\r\n", -400);
	/* rejections keep their status as more bytes arrive */
	CHECK_INC("GET / HTTP/1.1\nHost: x\r\n\r\n", -400);
	CHECK_INC("GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505);
	CHECK_INC("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -400);
}

static void test_header_rejections(void)
{
	CHECK_PARSE("GET / HTTP/1.1\nHost: x\n\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\n\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\n\r\r", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nA: a\rb\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nA: a\nb\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\n\n\r\n", -400);
	CHECK_EQ_U64(parse_n("GET / HTTP/1.1\r\nHost: x\0\r\n\r\n", 28), -400);
	CHECK_EQ_U64(parse_n("GET / HTTP/1.1\r\nHo\0st: x\r\n\r\n", 28), -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\x1b[0m\r\n\r\n", -400);
	/* obs-fold, including on the first header line */
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\n Host: x\r\n\r\n", -400);
	/* names */
	CHECK_PARSE("GET / HTTP/1.1\r\nHost : x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nA(b: v\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: x\r\n\xc3\xa9: v\r\n\r\n", -400);
	/* tolerated: HTAB, obs-text and an empty value; OWS is stripped */
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nA: \t a\tb \xff\x80 \t \r\nB:\r\nC:   \r\n\r\n") > 0);
	CHECK_STR(req.headers[1].value, req.headers[1].value_len, "a\tb \xff\x80");
	CHECK_EQ_U64(req.headers[2].value_len, 0);
	CHECK_EQ_U64(req.headers[3].value_len, 0);
	CHECK_STR(req.headers[3].name, req.headers[3].name_len, "C");
}

static void test_framing(void)
{
	const char *h = "POST / HTTP/1.1\r\nHost: x\r\n";
	char s[256];
#define WITH(extra) (snprintf(s, sizeof s, "%s%s\r\n", h, extra), s)
	CHECK(parse(WITH("Content-Length: 0\r\n")) > 0);
	CHECK(req.content_length == 0);
	CHECK(parse(WITH("content-length: \t 42 \t\r\n")) > 0);
	CHECK(req.content_length == 42);
	CHECK(parse(WITH("CONTENT-LENGTH: 0016384\r\n")) > 0);
	CHECK(req.content_length == 16384);
	CHECK(parse(WITH("Content-Length: 16384\r\n")) > 0);
	CHECK(req.content_length == HTTP_MAX_BODY);
	CHECK_PARSE(WITH("Content-Length: 16385\r\n"), -413);
	CHECK_PARSE(WITH("Content-Length: 99999999999999999999999999999\r\n"), -413);
	CHECK_PARSE(WITH("Content-Length: 18446744073709551616\r\n"), -413);
	CHECK_PARSE(WITH("Content-Length:\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: abc\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: -1\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: +1\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 1 2\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 0x10\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 1,1\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 5, 5\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 5\r\nContent-Length: 5\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 5\r\ncontent-length: 6\r\n"), -400);
	/* a malformed length is 400 even when another is too large */
	CHECK_PARSE(WITH("Content-Length: 99999\r\nContent-Length: 1\r\n"), -400);
	CHECK_PARSE(WITH("Transfer-Encoding: chunked\r\n"), -411);
	CHECK_PARSE(WITH("transfer-encoding: gzip, chunked\r\n"), -411);
	CHECK_PARSE(WITH("Transfer-Encoding: gzip\r\n"), -411);
	CHECK_PARSE(WITH("Transfer-Encoding:\r\n"), -411);
	CHECK_PARSE("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -411);
	CHECK_PARSE(WITH("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), -400);
	CHECK_PARSE(WITH("Content-Length: 99999\r\nTransfer-Encoding: chunked\r\n"), -400);
	/* Host */
	CHECK_PARSE("GET / HTTP/1.1\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", -400);
	CHECK_PARSE("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", -400);
	CHECK(parse("GET / HTTP/1.1\r\nhOsT:\r\n\r\n") > 0);
	CHECK_EQ_U64(req.has_host, 1);
	/* Expect */
	CHECK(parse(WITH("Content-Length: 1\r\nExpect: 100-continue\r\n")) > 0);
	CHECK_EQ_U64(req.expect_continue, 1);
	CHECK(parse(WITH("expect:  100-Continue \r\n")) > 0);
	CHECK_EQ_U64(req.expect_continue, 1);
	CHECK(parse(WITH("Expect: 100-continued\r\n")) > 0);
	CHECK_EQ_U64(req.expect_continue, 0);
	/* same-length look-alikes are ordinary headers */
	CHECK(parse(WITH("Content-Lengthx: a\r\nTransfer-Encodinx: chunked\r\n"
			 "Expecx: 100-continue\r\nConnectiox: close\r\nHosx: 2\r\n")) > 0);
	CHECK(req.content_length == -1 && req.keep_alive == 1 && req.expect_continue == 0);
	CHECK_EQ_U64(req.num_headers, 6);
	CHECK(parse(WITH("")) > 0);
	CHECK_EQ_U64(req.expect_continue, 0);
	CHECK(req.content_length == -1);
#undef WITH
}

/* Builds a valid head of exactly n bytes: a filler header pads it out. */
static size_t head_of(size_t n)
{
	const char *pre = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
	size_t p = strlen(pre);
	memcpy(big, pre, p);
	memset(big + p, 'a', n - p - 4);
	memcpy(big + n - 4, "\r\n\r\n", 4);
	return n;
}

/* "GET " + a target of exactly n bytes + the rest of a valid head. */
static size_t target_of(size_t n)
{
	const char *post = " HTTP/1.1\r\nHost: x\r\n\r\n";
	memcpy(big, "GET /", 5);
	memset(big + 5, 'b', n - 1);
	memcpy(big + 4 + n, post, strlen(post));
	return 4 + n + strlen(post);
}

static size_t headers_of(int count)
{
	size_t n = 0;
	int i;
	n += (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (i = 1; i < count; i++)
		n += (size_t)sprintf(big + n, "H%d: %d\r\n", i, i);
	n += (size_t)sprintf(big + n, "\r\n");
	return n;
}

static void test_limits(void)
{
	size_t n;

	/* head: 8192 is fine, 8193 is not; the 8193-byte head is refused as
	 * soon as 8192 bytes have arrived without completing it */
	n = head_of(HTTP_MAX_HEAD);
	CHECK_EQ_U64(parse_n(big, n), HTTP_MAX_HEAD);
	CHECK_EQ_U64(parse_n(big, n - 1), 0);
	CHECK(incremental_ok(big, n, HTTP_MAX_HEAD));
	n = head_of(HTTP_MAX_HEAD + 1);
	CHECK_EQ_U64(parse_n(big, n), -431);
	CHECK_EQ_U64(parse_n(big, HTTP_MAX_HEAD), -431);
	CHECK_EQ_U64(parse_n(big, HTTP_MAX_HEAD - 1), 0);
	n = head_of(HTTP_MAX_HEAD + 5000);
	CHECK_EQ_U64(parse_n(big, n), -431);
	/* a short head followed by plenty of body is not limited by the body */
	n = head_of(100);
	memset(big + n, 'z', 12000);
	CHECK_EQ_U64(parse_n(big, n + 12000), 100);
	/* a syntax error before the limit wins over the limit */
	n = head_of(HTTP_MAX_HEAD + 10);
	big[100] = '\n';
	CHECK_EQ_U64(parse_n(big, n), -400);

	/* target: 2048 is fine, 2049 is refused even before the line ends */
	n = target_of(HTTP_MAX_URI);
	CHECK_EQ_U64(parse_n(big, n), n);
	CHECK_EQ_U64(req.target_len, HTTP_MAX_URI);
	CHECK_EQ_U64(parse_n(big, 4 + HTTP_MAX_URI), 0);
	n = target_of(HTTP_MAX_URI + 1);
	CHECK_EQ_U64(parse_n(big, n), -414);
	CHECK_EQ_U64(parse_n(big, 4 + HTTP_MAX_URI + 1), -414);
	CHECK_EQ_U64(parse_n(big, 4 + HTTP_MAX_URI), 0);
	n = target_of(HTTP_MAX_HEAD);
	CHECK_EQ_U64(parse_n(big, n), -414);
	CHECK(incremental_ok(big, 4 + HTTP_MAX_URI + 100, -414));

	/* header count: 64 is fine, 65 is not */
	n = headers_of(HTTP_MAX_HEADERS);
	CHECK_EQ_U64(parse_n(big, n), n);
	CHECK_EQ_U64(req.num_headers, HTTP_MAX_HEADERS);
	CHECK_STR(req.headers[63].name, req.headers[63].name_len, "H63");
	n = headers_of(HTTP_MAX_HEADERS + 1);
	CHECK_EQ_U64(parse_n(big, n), -431);
	CHECK(incremental_ok(big, n, -431));
}

static void test_target_helpers(void)
{
	const char *path, *query, *v;
	size_t pl, ql, vl;
	const struct http_header *h;

	http_split_target("/api/next-id/a?dataType=int&x", 29, &path, &pl, &query, &ql);
	CHECK_STR(path, pl, "/api/next-id/a");
	CHECK_STR(query, ql, "dataType=int&x");
	http_split_target("/a", 2, &path, &pl, &query, &ql);
	CHECK_STR(path, pl, "/a");
	CHECK(ql == 0 && query != NULL);
	http_split_target("/a?", 3, &path, &pl, &query, &ql);
	CHECK_STR(path, pl, "/a");
	CHECK(ql == 0 && query != NULL);
	http_split_target("/a?b?c", 6, &path, &pl, &query, &ql);
	CHECK_STR(query, ql, "b?c");

	CHECK(http_query_param("dataType=int&batchSize=5", 24, "batchSize", &v, &vl));
	CHECK_STR(v, vl, "5");
	CHECK(http_query_param("dataType=int&batchSize=5", 24, "dataType", &v, &vl));
	CHECK_STR(v, vl, "int");
	CHECK(!http_query_param("dataType=int&batchSize=5", 24, "batch", &v, &vl));
	CHECK(!http_query_param("dataType=int&batchSize=5", 24, "datatype", &v, &vl));
	CHECK(!http_query_param("ab=1", 4, "a", &v, &vl));
	CHECK(http_query_param("ab=1&a=2&a=3", 12, "a", &v, &vl));
	CHECK_STR(v, vl, "2");
	CHECK(http_query_param("force", 5, "force", &v, &vl));
	CHECK_EQ_U64(vl, 0);
	CHECK(http_query_param("x=1&force=&y", 12, "force", &v, &vl));
	CHECK_EQ_U64(vl, 0);
	CHECK(http_query_param("&&a=1=2&", 8, "a", &v, &vl));
	CHECK_STR(v, vl, "1=2");
	CHECK(http_query_param("=v", 2, "", &v, &vl));
	CHECK_STR(v, vl, "v");
	CHECK(!http_query_param("%61=1", 5, "a", &v, &vl));
	CHECK(!http_query_param(NULL, 0, "a", &v, &vl));
	CHECK(!http_query_param("a=1", 0, "a", &v, &vl));
	/* the length bounds the search, not a terminator */
	CHECK(http_query_param("xa=1", 1, "x", &v, &vl));
	CHECK_EQ_U64(vl, 0);

	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nX-Req-Id:  7 \r\n\r\n") > 0);
	h = http_find_header(&req, "x-req-id");
	CHECK(h != NULL);
	if (h)
		CHECK_STR(h->value, h->value_len, "7");
	CHECK(http_find_header(&req, "HOST") == &req.headers[0]);
	CHECK(http_find_header(&req, "X-Req") == NULL);
	CHECK(http_find_header(&req, "X-Req-Id2") == NULL);
	CHECK(http_find_header(&req, "X-Req-Ix") == NULL);
	CHECK(http_find_header(&req, "Accept") == NULL);
}

static void test_percent_decode(void)
{
	char d[16];
	CHECK_EQ_U64(http_percent_decode("order", 5, d, sizeof d), 5);
	CHECK_STR(d, 5, "order");
	CHECK_EQ_U64(http_percent_decode("%41%62c", 7, d, sizeof d), 3);
	CHECK_STR(d, 3, "Abc");
	CHECK_EQ_U64(http_percent_decode("%4a%4A%2f", 9, d, sizeof d), 3);
	CHECK_STR(d, 3, "JJ/");
	CHECK_EQ_U64(http_percent_decode("a+b", 3, d, sizeof d), 3);
	CHECK_STR(d, 3, "a+b");
	CHECK_EQ_U64(http_percent_decode("%ff", 3, d, sizeof d), 1);
	CHECK(d[0] == '\xff');
	CHECK_EQ_U64(http_percent_decode("", 0, d, sizeof d), 0);
	CHECK_EQ_U64(http_percent_decode("", 0, NULL, 0), 0);
	CHECK((long long)http_percent_decode("%", 1, d, sizeof d) == -1);
	CHECK((long long)http_percent_decode("a%4", 3, d, sizeof d) == -1);
	CHECK((long long)http_percent_decode("%4g", 3, d, sizeof d) == -1);
	CHECK((long long)http_percent_decode("%g4", 3, d, sizeof d) == -1);
	CHECK((long long)http_percent_decode("%%41", 4, d, sizeof d) == -1);
	CHECK((long long)http_percent_decode("a%00b", 5, d, sizeof d) == -1);
	/* the length bounds the input: "%41" cut to "%4" is malformed */
	CHECK((long long)http_percent_decode("%41", 2, d, sizeof d) == -1);
	/* capacity: exactly full is fine, one more byte is overflow */
	CHECK_EQ_U64(http_percent_decode("abcd", 4, d, 4), 4);
	CHECK((long long)http_percent_decode("abcde", 5, d, 4) == -1);
	CHECK_EQ_U64(http_percent_decode("%41%42", 6, d, 2), 2);
	CHECK((long long)http_percent_decode("%41%42", 6, d, 1) == -1);
	CHECK((long long)http_percent_decode("a", 1, d, 0) == -1);
}

int main(void)
{
	check_edge_init(EDGE_DATA);
	test_typical();
	test_pipelined_and_body();
	test_keep_alive();
	test_methods();
	test_byte_classes();
	test_request_line_rejections();
	test_header_rejections();
	test_framing();
	test_limits();
	test_target_helpers();
	test_percent_decode();
	return check_summary("http_parse");
}
