/* Unit tests for http_client.c: the pure response parser (Content-Length,
 * chunked with extensions and trailers, close-delimited; every input also
 * fed at every split point, flush against a PROT_NONE page so an over-read
 * crashes), URL parsing, and the connection itself against a scripted local
 * server in a child process (keep-alive reuse, stale connections, errors,
 * timeouts), in blocking and event-loop mode. */
#include "check.h"
#include "http_client.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

#define EDGE_DATA (24 * 4096)

static struct http_response res;
static char body[HTTP_CLIENT_MAX_RESPONSE + 1];
static size_t body_len;


static long rd(const char *s, size_t n, int eof, int head, size_t cap)
{
	return http_read_response(check_at_edge(s, n), n, eof, head, &res, body, cap, &body_len);
}

/* A complete response must need more on every proper prefix (split at every
 * byte), then give its full length and body; with eof on a proper prefix it
 * is truncated. */
static int whole_ok(const char *s, size_t n, int head, const char *want_body)
{
	for (size_t k = 0; k < n; k++) {
		long r = rd(s, k, 0, head, HTTP_CLIENT_MAX_RESPONSE);
		if (r != HTTP_RESP_MORE) {
			fprintf(stderr, "prefix %zu of %zu: got %ld, want more\n", k, n, r);
			return 0;
		}
		r = rd(s, k, 1, head, HTTP_CLIENT_MAX_RESPONSE);
		if (r != HTTP_RESP_TRUNCATED) {
			fprintf(stderr, "prefix %zu of %zu at eof: got %ld, want truncated\n", k, n, r);
			return 0;
		}
	}
	long r = rd(s, n, 0, head, HTTP_CLIENT_MAX_RESPONSE);
	if (r != (long)n || body_len != strlen(want_body) || memcmp(body, want_body, body_len) != 0) {
		fprintf(stderr, "whole: got %ld body \"%.*s\", want %zu \"%s\"\n", r, (int)body_len,
			body, n, want_body);
		return 0;
	}
	return 1;
}

/* A bad response: once some prefix is rejected, every longer one gets the same. */
static int bad_ok(const char *s, size_t n, long want)
{
	int seen = 0;
	for (size_t k = 0; k <= n; k++) {
		long r = rd(s, k, 0, 0, HTTP_CLIENT_MAX_RESPONSE);
		if (r == HTTP_RESP_MORE && !seen)
			continue;
		if (r != want) {
			fprintf(stderr, "bad \"%.*s\" prefix %zu: got %ld, want %ld\n", (int)n, s, k, r, want);
			return 0;
		}
		seen = 1;
	}
	return seen;
}

#define CHECK_WHOLE(s, b) CHECK(whole_ok((s), strlen(s), 0, (b)))
#define CHECK_BAD(s) CHECK(bad_ok((s), strlen(s), HTTP_RESP_BAD))

static void test_content_length(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			"Content-Length: 13\r\nX-Consul-Index: 7\r\n\r\n{\"ID\":\"abc\"}\n";
	CHECK_WHOLE(s, "{\"ID\":\"abc\"}\n");
	CHECK(rd(s, strlen(s), 0, 0, 100) == (long)strlen(s));
	CHECK(res.status == 200 && res.minor_version == 1 && res.keep_alive == 1);
	CHECK_STR(res.reason, res.reason_len, "OK");
	CHECK(res.content_length == 13 && !res.chunked);
	CHECK_EQ_U64(res.num_headers, 3);
	const struct http_header *h = http_response_header(&res, "x-consul-index");
	CHECK(h && h->value_len == 1 && h->value[0] == '7');
	/* Names match whatever their case on either side (consul.c asks for
	 * "X-Consul-Index": a lookup that only folded the received name never
	 * found it, so a standby's blocking watch never blocked). */
	CHECK(http_response_header(&res, "X-Consul-Index") == h);
	CHECK(http_response_header(&res, "X-CONSUL-INDEX") == h);
	CHECK(http_response_header(&res, "X-Consul-Inde") == NULL);
	CHECK(http_response_header(&res, "X-Consul-Index2") == NULL);
	CHECK(http_response_header(&res, "X-Missing") == NULL);

	/* Extra bytes after the body are not part of this response. */
	const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
	CHECK(rd(two, strlen(two), 0, 0, 100) == (long)(strlen(two) - 17));

	CHECK_WHOLE("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "");
	CHECK_WHOLE("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
		    "Content-Length: 16\r\n\r\ninvalid session\n", "invalid session\n");
	CHECK(res.status == 500);
	/* Missing reason phrase, with or without the space. */
	CHECK_WHOLE("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx", "x");
	CHECK_WHOLE("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", "x");
	CHECK(res.reason_len == 0);
	/* OWS around values; the same Content-Length twice is fine. */
	CHECK_WHOLE("HTTP/1.1 200 OK\r\ncontent-length:\t 3 \t\r\nContent-Length: 3\r\n\r\nabc", "abc");
	/* Body over the cap. */
	CHECK(rd("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 49, 0, 0, 10) ==
	      HTTP_RESP_TOO_BIG);
	CHECK(rd("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n", 56, 0, 0, 10) ==
	      HTTP_RESP_TOO_BIG);
}

static void test_persistence(void)
{
	const char *s;
	s = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 10) > 0 && res.keep_alive == 0);
	s = "HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 10) > 0 && res.keep_alive == 0);
	s = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 10) > 0 && res.keep_alive == 0 && res.minor_version == 0);
	s = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 10) > 0 && res.keep_alive == 1);
	s = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nall of it";
	CHECK(rd(s, strlen(s), 1, 0, 100) > 0 && res.keep_alive == 0);   /* close-delimited */
}

static void test_chunked(void)
{
	/* Extensions (bare, with values, quoted, with BWS), upper- and
	 * lower-case hex, trailers. */
	const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"4;ext\r\nWiki\r\n"
			"5 ; name=\"quoted; val\"\r\npedia\r\n"
			"e;a=1;b=2\r\n in\r\n\r\nchunks.\r\n"
			"A\r\n0123456789\r\n"
			"000;last=yes\r\nTrailer-A: 1\r\nX-Checksum:  abc \r\n\r\n";
	CHECK_WHOLE(s, "Wikipedia in\r\n\r\nchunks.0123456789");
	CHECK(res.chunked == 1 && res.content_length == -1 && res.keep_alive == 1);

	CHECK_WHOLE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "");
	/* Transfer-Encoding wins over Content-Length; "chunked" is case-insensitive. */
	CHECK_WHOLE("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
		    "3\r\nabc\r\n0\r\n\r\n", "abc");
	/* Another final coding: the body runs until the close. */
	s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 100) == HTTP_RESP_MORE);
	CHECK(rd(s, strlen(s), 1, 0, 100) == (long)strlen(s) && !res.chunked && res.keep_alive == 0);

	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nbad trailer\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n");
	/* 16 hex digits: no chunk is that big. */
	CHECK_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n");
	s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 100) == HTTP_RESP_TOO_BIG);
	s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	CHECK(rd(s, strlen(s), 0, 0, 10) == HTTP_RESP_TOO_BIG);
	CHECK(rd(s, strlen(s), 0, 0, 11) == (long)strlen(s));

	/* The decoder alone, in place: every prefix asks for more and leaves
	 * the input untouched, the whole decodes over its own bytes. */
	static const char coded[] = "3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: v\r\n\r\nrest";
	char buf[sizeof coded];
	size_t n = sizeof coded - 1 - 4, out_len = 99;
	int prefixes_ok = 1;
	for (size_t k = 0; k < n; k++) {
		memcpy(buf, coded, sizeof coded);
		long r = http_chunked_decode(buf, k, buf, sizeof buf, &out_len);
		prefixes_ok &= r == HTTP_RESP_MORE && memcmp(buf, coded, sizeof coded) == 0;
	}
	CHECK(prefixes_ok);
	memcpy(buf, coded, sizeof coded);
	CHECK(http_chunked_decode(buf, sizeof coded - 1, buf, sizeof buf, &out_len) == (long)n);
	CHECK_STR(buf, out_len, "abcdefg");
	CHECK(http_chunked_decode(coded, sizeof coded - 1, NULL, 7, &out_len) == (long)n && out_len == 7);
	CHECK(http_chunked_decode(coded, sizeof coded - 1, NULL, 6, &out_len) == HTTP_RESP_TOO_BIG);
}

static void test_close_delimited(void)
{
	const char *s = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world";
	size_t n = strlen(s);
	int ok = 1;
	for (size_t k = 0; k <= n; k++)
		ok &= rd(s, k, 0, 0, 100) == HTTP_RESP_MORE;
	CHECK(ok);
	/* At the close, a complete head makes every tail a body. */
	size_t head = n - 12;
	ok = 1;
	for (size_t k = 0; k <= n; k++) {
		long r = rd(s, k, 1, 0, 100);
		ok &= k < head ? r == HTTP_RESP_TRUNCATED
			       : r == (long)k && body_len == k - head && memcmp(body, s + head, body_len) == 0;
	}
	CHECK(ok);
	CHECK(rd(s, n, 1, 0, 100) == (long)n && res.keep_alive == 0);
	CHECK(rd(s, n, 1, 0, 5) == HTTP_RESP_TOO_BIG);
}

static void test_no_body(void)
{
	/* HEAD, 204 and 304 end with the head, whatever the headers say. */
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n";
	CHECK(whole_ok(s, strlen(s), 1, ""));
	CHECK_WHOLE("HTTP/1.1 204 No Content\r\n\r\n", "");
	CHECK_WHOLE("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "");
	/* Interim responses are skipped. */
	CHECK_WHOLE("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: 1\r\n\r\n"
		    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "ok");
	CHECK(res.status == 201);
	CHECK_BAD("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
}

static void test_bad_heads(void)
{
	CHECK_BAD("HTTP/1.1 200 OK\nContent-Length: 0\n\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n");
	CHECK_BAD("HTTP/2 200 OK\r\n\r\n");
	CHECK_BAD("HTTP/1.2 200 OK\r\n\r\n");
	CHECK_BAD("http/1.1 200 OK\r\n\r\n");
	CHECK_BAD("HTTP/1.1  200 OK\r\n\r\n");
	CHECK_BAD("HTTP/1.1 099 Low\r\n\r\n");
	CHECK_BAD("HTTP/1.1 20 OK\r\n\r\n");
	CHECK_BAD("HTTP/1.1 2000 OK\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 O\x01K\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nSpace : before\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n");
	CHECK_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n");
	CHECK_BAD("\r\nHTTP/1.1 200 OK\r\n\r\n");

	/* Header values may carry obs-text and tabs. */
	CHECK_WHOLE("HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\tbar\r\nContent-Length: 0\r\n\r\n", "");

	/* Limits: a head that never ends, too many headers. */
	static char big[HTTP_CLIENT_MAX_HEAD + 100];
	size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX: ");
	memset(big + n, 'a', sizeof big - n);
	CHECK(rd(big, HTTP_CLIENT_MAX_HEAD, 0, 0, 10) == HTTP_RESP_MORE);
	CHECK(rd(big, HTTP_CLIENT_MAX_HEAD + 1, 0, 0, 10) == HTTP_RESP_TOO_BIG);
	CHECK(rd(big, sizeof big, 0, 0, 10) == HTTP_RESP_TOO_BIG);
	n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i <= HTTP_CLIENT_MAX_HEADERS; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "H%d: v\r\n", i);
	n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
	CHECK(rd(big, n, 0, 0, 10) == HTTP_RESP_TOO_BIG);
}

/* ---- the connection, against a scripted server ----------------------- */

/* What the server does with each request it reads, in order. */
enum action {
	A_LENGTH,        /* 200 with Content-Length, body = the request line, byte by byte */
	A_CHUNKED,       /* 200 chunked, body = the request line, then end the connection (see
			  * idle_end) */
	A_CLOSE_SILENT,  /* close without answering (a stale keep-alive connection) */
	A_CLOSE_BODY,    /* 404 text body delimited by the close */
	A_HANG,          /* never answer; close once the client has given up */
	A_END,
};
static const enum action script[] = {
	A_LENGTH, A_CHUNKED, A_LENGTH, A_CLOSE_SILENT, A_LENGTH, A_CLOSE_BODY, A_HANG, A_LENGTH,
	A_LENGTH, A_END,
};

static void send_slowly(int fd, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (send(fd, s + i, 1, MSG_NOSIGNAL) != 1)
			return;
		if (i % 7 == 0)
			usleep(200);
	}
}

/* Reads one request (head + Content-Length body); returns its first line. */
static int read_request(int fd, char *line, size_t cap, char *all, size_t all_cap)
{
	size_t n = 0;
	for (;;) {
		char *end = n ? memmem(all, n, "\r\n\r\n", 4) : NULL;
		if (end) {
			size_t head = (size_t)(end - all) + 4, cl = 0;
			char *h = memmem(all, head, "Content-Length: ", 16);
			if (h)
				cl = strtoul(h + 16, NULL, 10);
			if (n >= head + cl) {
				size_t l = (size_t)((char *)memmem(all, n, "\r\n", 2) - all);
				if (l >= cap)
					l = cap - 1;
				memcpy(line, all, l);
				line[l] = '\0';
				all[n < all_cap ? n : all_cap - 1] = '\0';
				return 0;
			}
		}
		if (n == all_cap)
			return -1;
		ssize_t r = recv(fd, all + n, all_cap - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
}

/* Waits (bounded: a broken client must fail the test, not hang it) until the
 * client closes fd or sends on it. 1: closed, 0: bytes arrived, -1: neither. */
static int await_client_close(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b[512];
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	ssize_t n = recv(fd, b, sizeof b, 0);
	return n > 0 ? 0 : 1;
}

/* The agent ends an idle keep-alive connection: its FIN reaches the client
 * while it is idle. Shutting down only the sending side keeps the receiving
 * side open, so the report says what the client did with the dead
 * connection: closed it unused, or sent the next request on it anyway. */
static void idle_end(int fd, int report)
{
	shutdown(fd, SHUT_WR);
	int r = await_client_close(fd, 5000);
	const char *what = r == 1 ? "old connection: closed unused" :
			   r == 0 ? "old connection: a request was sent on it" :
				    "old connection: still open after 5 s";
	(void)!write(report, what, strlen(what) + 1);
}

static void serve(int lfd, int report)
{
	int fd = -1;
	char line[512], all[4096], resp[1024];
	for (size_t i = 0; script[i] != A_END; i++) {
		for (;;) {
			if (fd < 0)
				fd = accept(lfd, NULL, NULL);
			if (read_request(fd, line, sizeof line, all, sizeof all) == 0)
				break;
			close(fd);   /* client gave up on this connection */
			fd = -1;
		}
		/* Tell the parent what arrived, so it can check headers. */
		(void)!write(report, all, strlen(all) + 1);
		size_t n;
		switch (script[i]) {
		case A_LENGTH:
			n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
					     strlen(line), line);
			send_slowly(fd, resp, n);
			break;
		case A_CHUNKED:
			n = (size_t)snprintf(resp, sizeof resp,
					     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
					     "%zx;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n", strlen(line), line);
			send_slowly(fd, resp, n);
			idle_end(fd, report);
			close(fd);
			fd = -1;
			break;
		case A_CLOSE_SILENT:
			close(fd);
			fd = -1;
			break;
		case A_CLOSE_BODY:
			n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"
					     "no such thing: %s\n", line);
			send_slowly(fd, resp, n);
			close(fd);
			fd = -1;
			break;
		case A_HANG:
			await_client_close(fd, 5000);
			close(fd);
			fd = -1;
			break;
		case A_END:
			break;
		}
	}
	if (fd >= 0)
		close(fd);
}

static struct http_result last;
static char last_body[1024], last_err[512];
static int done_calls;

static void on_done(void *ud, const struct http_result *r)
{
	(void)ud;
	done_calls++;
	last = *r;
	snprintf(last_body, sizeof last_body, "%.*s", (int)r->body_len, r->body);
	snprintf(last_err, sizeof last_err, "%s", r->error);
}

static int report_fd;
static char seen[4096];

/* The request as the server received it. */
static void read_report(void)
{
	size_t n = 0;
	seen[0] = '\0';
	while (n < sizeof seen - 1) {
		if (read(report_fd, seen + n, 1) != 1 || seen[n] == '\0')
			break;
		n++;
	}
	seen[n] = '\0';
}

/* Waits until the peer's FIN is readable on fd (EOF, no data before it). */
static int eof_pending(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };
	char b;
	if (poll(&p, 1, timeout_ms) != 1)
		return 0;
	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static int request_blocking(struct http_client *c, const char *method, const char *path,
			    const char *body, unsigned timeout_ms)
{
	done_calls = 0;
	int rc = http_client_request(c, NULL, 0, method, path, "X-Consul-Token: tok\r\n", body,
				     body ? strlen(body) : 0, timeout_ms, on_done, NULL);
	return rc == 0 && done_calls == 1;
}

static int request_loop(struct http_client *c, struct loop *l, const char *path)
{
	done_calls = 0;
	if (http_client_request(c, l, clock_mono_ms(), "GET", path, NULL, NULL, 0, 2000, on_done, NULL) != 0)
		return 0;
	uint64_t end = clock_mono_ms() + 3000;
	while (!done_calls && clock_mono_ms() < end) {
		loop_wait(l, 50, NULL, NULL);
		http_client_tick(c, clock_mono_ms());
	}
	return done_calls == 1 && !http_client_busy(c);
}

static int resolve_wait(struct http_client *c, char *err, size_t errlen)
{
	int rc, first = http_client_resolve(c, err, errlen);
	if (first != 1)
		return 99;   /* a name must go through the helper thread */
	uint64_t end = clock_mono_ms() + 10000;
	while ((rc = http_client_resolve(c, err, errlen)) == 1 && clock_mono_ms() < end)
		usleep(1000);
	return rc;
}

static void test_connection(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0), pipefd[2];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0 || pipe(pipefd) != 0) {
		perror("test server");
		CHECK(0);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		serve(lfd, pipefd[1]);
		_exit(0);
	}
	close(pipefd[1]);
	report_fd = pipefd[0];

	struct http_client c;
	char url[64], err[200];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/pre/", ntohs(sa.sin_port));
	CHECK(http_client_init(&c, url, err, sizeof err) == 0);
	CHECK(!http_client_busy(&c));
	/* Not resolved yet: no request. A numeric host resolves at once. */
	CHECK(http_client_request(&c, NULL, 0, "GET", "/", NULL, NULL, 0, 100, on_done, NULL) == -1);
	CHECK(http_client_resolve(&c, err, sizeof err) == 0 && c.addr_len > 0);

	/* 1: Content-Length, prefix and headers as sent. */
	CHECK(request_blocking(&c, "PUT", "/v1/agent/service/register", "{\"a\":1}", 2000));
	read_report();
	CHECK(last.status == 200);
	CHECK(strcmp(last_body, "PUT /pre/v1/agent/service/register HTTP/1.1") == 0);
	CHECK(strstr(seen, "\r\nX-Consul-Token: tok\r\n") && strstr(seen, "\r\nContent-Length: 7\r\n"));
	CHECK(strstr(seen, "\r\nHost: 127.0.0.1:") && strstr(seen, "\r\n\r\n{\"a\":1}"));
	int first_fd = c.fd;
	CHECK(first_fd >= 0);

	/* 2: same connection (keep-alive), chunked answer; the server then closes. */
	CHECK(request_blocking(&c, "GET", "/v1/agent/service/x", NULL, 2000));
	read_report();
	CHECK(last.status == 200 && c.reused == 1);
	CHECK(strcmp(last_body, "GET /pre/v1/agent/service/x HTTP/1.1") == 0);
	CHECK(strstr(seen, "Content-Length") == NULL);
	/* The server has ended the connection: its FIN is waiting on the idle
	 * descriptor before the next request starts. */
	CHECK(c.fd >= 0 && eof_pending(c.fd, 5000));

	/* 3: the closed idle connection is noticed before sending: nothing goes
	 * out on it, the request goes out on a fresh connection. (Sending on it
	 * and retrying after the failure would reach the server too, but the
	 * server would see the request on the old connection first.) */
	CHECK(request_blocking(&c, "PUT", "/three", NULL, 2000));
	read_report();
	CHECK_STR(seen, strlen(seen), "old connection: closed unused");
	read_report();
	CHECK(last.status == 200 && c.reused == 0);
	CHECK(strstr(seen, "PUT /pre/three HTTP/1.1\r\n") == seen);
	CHECK(strstr(seen, "\r\nContent-Length: 0\r\n") != NULL);

	/* 4: kept alive, but the server closes without answering: sent again on a
	 * fresh connection, answered there (script step 5). */
	CHECK(request_blocking(&c, "GET", "/four", NULL, 2000));
	read_report();
	read_report();
	CHECK(last.status == 200 && strcmp(last_body, "GET /pre/four HTTP/1.1") == 0);

	/* 6: a 404 with a plain-text body delimited by the close. */
	CHECK(request_blocking(&c, "GET", "/six", NULL, 2000));
	read_report();
	CHECK(last.status == 404 && strcmp(last_body, "no such thing: GET /pre/six HTTP/1.1\n") == 0);
	CHECK(c.fd < 0);

	/* 7: no answer: timed out, reported as a transport failure. */
	uint64_t t0 = clock_mono_ms();
	CHECK(request_blocking(&c, "GET", "/seven", NULL, 200));
	read_report();
	CHECK(last.status == 0 && strstr(last_err, "timed out") != NULL);
	CHECK(clock_mono_ms() - t0 >= 190 && clock_mono_ms() - t0 < 1000);

	/* 8, 9: the event loop drives the same states. */
	struct loop *l = loop_create(1024);
	CHECK(request_loop(&c, l, "/eight"));
	read_report();
	CHECK(last.status == 200 && strcmp(last_body, "GET /pre/eight HTTP/1.1") == 0);
	CHECK(request_loop(&c, l, "/nine"));
	read_report();
	CHECK(last.status == 200 && c.reused == 1);

	/* Busy: one request at a time. */
	done_calls = 0;
	CHECK(http_client_request(&c, l, clock_mono_ms(), "GET", "/x", NULL, NULL, 0, 1000, on_done, NULL) == 0);
	CHECK(http_client_busy(&c));
	CHECK(http_client_request(&c, l, clock_mono_ms(), "GET", "/y", NULL, NULL, 0, 1000, on_done, NULL) == -1);
	/* Closing drops it without a callback. */
	http_client_close(&c, l);
	CHECK(!http_client_busy(&c) && done_calls == 0);
	loop_destroy(l);

	int status;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(report_fd);
	close(lfd);

	/* Nobody listening: a transport failure naming the address. */
	CHECK(request_blocking(&c, "GET", "/refused", NULL, 1000));
	CHECK(last.status == 0 && strstr(last_err, "127.0.0.1") && strstr(last_err, "connect"));
	http_client_close(&c, NULL);
	http_client_free(&c);

	/* Names are looked up in a helper thread: pending, then the answer. */
	CHECK(http_client_init(&c, "http://localhost:8500", err, sizeof err) == 0);
	CHECK(resolve_wait(&c, err, sizeof err) == 0 && c.addr_len > 0);
	http_client_free(&c);
	CHECK(http_client_init(&c, "http://no-such-host.invalid:8500", err, sizeof err) == 0);
	CHECK(resolve_wait(&c, err, sizeof err) == -1);
	CHECK(strstr(err, "cannot resolve no-such-host.invalid") != NULL);
	CHECK(c.addr_len == 0 && c.lookup == NULL);
	CHECK(http_client_request(&c, NULL, 0, "GET", "/", NULL, NULL, 0, 100, on_done, NULL) == -1);
	/* Giving up on a lookup in flight is safe (the thread frees it). */
	CHECK(http_client_resolve(&c, err, sizeof err) == 1);
	http_client_free(&c);
	CHECK(http_client_init(&c, "https://x", err, sizeof err) == -1);
}

/* A server that answers each request with a body of `size` bytes, as one
 * chunk (chunked) or with Content-Length, then closes. */
static void serve_big(int lfd, size_t size, int chunked, int requests)
{
	char *resp = malloc(size + 256), head[8192];
	for (int r = 0; r < requests; r++) {
		int fd = accept(lfd, NULL, NULL);
		size_t n = 0;
		while (n < sizeof head - 1 && !memmem(head, n, "\r\n\r\n", 4)) {
			ssize_t k = recv(fd, head + n, sizeof head - 1 - n, 0);
			if (k <= 0)
				break;
			n += (size_t)k;
		}
		size_t len = chunked ?
			(size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n", size) :
			(size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
		for (size_t j = 0; j < size; j++)
			resp[len + j] = (char)('a' + j % 26);
		len += size;
		if (chunked)
			len += (size_t)sprintf(resp + len, "\r\n0\r\n\r\n");
		for (size_t off = 0; off < len;) {
			ssize_t k = send(fd, resp + off, len - off, MSG_NOSIGNAL);
			if (k <= 0)
				break;
			off += (size_t)k;
		}
		close(fd);
	}
	free(resp);
}

static size_t big_len;
static int big_ok;

static void on_big(void *ud, const struct http_result *r)
{
	(void)ud;
	done_calls++;
	last = *r;
	big_len = r->body_len;
	big_ok = r->body_len > 0;
	for (size_t j = 0; j < r->body_len && big_ok; j++)
		big_ok = r->body[j] == (char)('a' + j % 26);
	snprintf(last_err, sizeof last_err, "%s", r->error);
}

/* Bodies beyond the initial 64 KiB buffer: the buffers grow up to
 * max_response (a Consul KV page of the shard state is one big chunk). */
static void test_large_responses(void)
{
	const size_t size = 300 * 1024;
	for (int chunked = 0; chunked < 2; chunked++) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof sa;
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 8) != 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
			CHECK(0);
			return;
		}
		pid_t pid = fork();
		if (pid == 0) {
			serve_big(lfd, size, chunked, 2);
			_exit(0);
		}
		struct http_client c;
		char url[64], err[200];
		snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(sa.sin_port));
		CHECK(http_client_init(&c, url, err, sizeof err) == 0);
		CHECK(http_client_resolve(&c, err, sizeof err) == 0);
		/* Allowed: the whole body arrives. */
		c.max_response = 1 << 20;
		done_calls = 0;
		CHECK(http_client_request(&c, NULL, 0, "GET", "/big", NULL, NULL, 0, 3000, on_big, NULL) == 0);
		CHECK(done_calls == 1 && last.status == 200);
		CHECK_EQ_U64(big_len, size);
		CHECK(big_ok);
		/* Over the bound: a transport failure that says so. */
		c.max_response = 128 * 1024;
		done_calls = 0;
		CHECK(http_client_request(&c, NULL, 0, "GET", "/big", NULL, NULL, 0, 3000, on_big, NULL) == 0);
		CHECK(done_calls == 1 && last.status == 0);
		CHECK(strstr(last_err, "larger than 128 KiB") != NULL || strstr(last_err, "too large") != NULL);
		http_client_close(&c, NULL);
		http_client_free(&c);
		int status;
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		close(lfd);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	check_edge_init(EDGE_DATA);
	test_content_length();
	test_persistence();
	test_chunked();
	test_close_delimited();
	test_no_body();
	test_bad_heads();
	test_connection();
	test_large_responses();
	return check_summary("http_client");
}
