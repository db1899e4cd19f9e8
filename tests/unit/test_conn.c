/* Unit tests for conn.c, the transport without the API: a fake http_handler
 * answers with the request's target, a socketpair stands in for the client,
 * and the test drives the event loop and the clock itself (no sleeps).
 * Covers one request, pipelining, a request trickled byte by byte, bodies
 * and 100-continue, malformed requests (reject, then close), parked requests
 * and their wake-ups, Connection: close, half-close, deadlines and expiry
 * (408 for a slow head), the session freed exactly once on close, draining,
 * and backpressure from large answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "conn.h"
#include "loop.h"

/* ---- the fake application --------------------------------------------- */

#define BIG_BODY (100 * 1024)

struct fake {
	int serves, answered, rejects, last_reject, frees;
	int wait_next;             /* serve parks this many more times */
	uint64_t wait_ms;
	int make_session;          /* serve mallocs *x->session when NULL */
	void *made, *freed;
	/* What the last serve saw. */
	char target[128], body[128];
	size_t body_len;
	int keep_alive, loopback;
	uint64_t now_ms, mono_ms;
	void **session_slot;
};
static struct fake f;

static enum http_handler_result fake_serve(void *app, struct http_exchange *x, struct buf *out,
					   uint64_t *wait_ms)
{
	struct fake *fk = app;
	fk->serves++;
	snprintf(fk->target, sizeof fk->target, "%.*s", (int)x->http->target_len, x->http->target);
	snprintf(fk->body, sizeof fk->body, "%.*s", (int)x->body_len, x->body);
	fk->body_len = x->body_len;
	fk->keep_alive = x->keep_alive;
	fk->loopback = x->peer_loopback;
	fk->now_ms = x->now_ms;
	fk->mono_ms = x->mono_ms;
	fk->session_slot = x->session;
	if (fk->wait_next > 0) {
		fk->wait_next--;
		*wait_ms = fk->wait_ms;
		return HANDLER_WAIT;
	}
	if (fk->make_session && !*x->session) {
		*x->session = malloc(32);
		fk->made = *x->session;
	}
	char head[128];
	if (strncmp(fk->target, "/big", 4) == 0) {
		/* BIG_BODY bytes: the target, then dots. */
		snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_BODY);
		buf_puts(out, head);
		size_t at = out->len;
		if (buf_reserve(out, BIG_BODY) == 0) {
			memset(out->data + at, '.', BIG_BODY);
			memcpy(out->data + at, fk->target, strlen(fk->target));
			out->len += BIG_BODY;
		}
		fk->answered++;
		return HANDLER_DONE;
	}
	char body[300];
	int n = snprintf(body, sizeof body, "%s%s%s", fk->target, x->body_len ? ":" : "", fk->body);
	snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n", n,
		 x->keep_alive ? "" : "Connection: close\r\n");
	buf_puts(out, head);
	buf_append(out, body, (size_t)n);
	fk->answered++;
	return HANDLER_DONE;
}

static void fake_reject(void *app, struct buf *out, int status)
{
	struct fake *fk = app;
	fk->rejects++;
	fk->last_reject = status;
	char head[128];
	snprintf(head, sizeof head, "HTTP/1.1 %d Rejected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		 status);
	buf_puts(out, head);
}

static void fake_session_free(void *app, void *session)
{
	struct fake *fk = app;
	fk->frees++;
	fk->freed = session;
	free(session);
}

static const struct http_handler handler = {
	.app = &f, .serve = fake_serve, .reject = fake_reject, .session_free = fake_session_free,
};

/* ---- the client side and the loop ------------------------------------- */

static struct conn_set set;
static int peer = -1;            /* the client's end of the socketpair */
static char got[2 * 1024 * 1024];
static size_t got_len;
static int got_eof;

static struct conn *open_conn(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("socketpair");
		exit(1);
	}
	memset(&f, 0, sizeof f);
	got_len = 0;
	got_eof = 0;
	peer = sv[1];
	uint64_t open = set.open;
	struct conn *c = conn_new(&set, sv[0], 1);
	CHECK(c != NULL);
	if (!c)
		exit(1);
	CHECK(set.open == open + 1);
	CHECK(c->state == CONN_IDLE);
	CHECK_EQ_U64(c->deadline, set.mono_ms + CONN_IDLE_TIMEOUT_MS);
	return c;
}

static void send_str(const char *s, size_t n)
{
	ssize_t w = send(peer, s, n, MSG_NOSIGNAL);
	CHECK(w == (ssize_t)n);
}

static void send_all(const char *s)
{
	send_str(s, strlen(s));
}

static void drain_peer(void)
{
	for (;;) {
		ssize_t n = recv(peer, got + got_len, sizeof got - got_len - 1, 0);
		if (n > 0) {
			got_len += (size_t)n;
			continue;
		}
		if (n == 0)
			got_eof = 1;
		break;
	}
	got[got_len] = '\0';
}

/* One loop turn (no waiting), then whatever the client can read. */
static void turn(void)
{
	loop_wait(set.loop, 0, NULL, NULL);
	drain_peer();
}

/* Turns until want bytes arrived or the connection closed (bounded). */
static void pump(size_t want)
{
	for (int i = 0; i < 100 && got_len < want && !got_eof; i++)
		turn();
}

static void pump_until_eof(void)
{
	for (int i = 0; i < 100 && !got_eof; i++)
		turn();
}

/* What the fake answers to a request for target (with body, if any). */
static const char *answer(const char *target, const char *body, int keep_alive)
{
	static char a[4][512];
	static int k;
	char *p = a[k++ % 4];
	char b[300];
	int n = snprintf(b, sizeof b, "%s%s%s", target, body ? ":" : "", body ? body : "");
	snprintf(p, 512, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", n,
		 keep_alive ? "" : "Connection: close\r\n", b);
	return p;
}

static void expect_got(const char *want)
{
	pump(strlen(want));
	CHECK_STR(got, got_len, want);
}

/* The client hangs up; the connection must close (and free its session). */
static void finish(void)
{
	uint64_t open = set.open;
	close(peer);
	peer = -1;
	for (int i = 0; i < 100 && set.open == open; i++)
		loop_wait(set.loop, 0, NULL, NULL);
	CHECK(set.open == open - 1);
}

static const char GET_A[] = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
static const char GET_B[] = "GET /b?x=1 HTTP/1.1\r\nHost: t\r\n\r\n";

/* ---- cases ------------------------------------------------------------- */

static void test_one_request(void)
{
	struct conn *c = open_conn();
	send_all(GET_A);
	expect_got(answer("/a", NULL, 1));
	CHECK(f.serves == 1 && f.answered == 1 && f.rejects == 0);
	CHECK(f.keep_alive == 1);
	CHECK(f.loopback == 1);
	CHECK_EQ_U64(f.now_ms, set.now_ms);
	CHECK_EQ_U64(f.mono_ms, set.mono_ms);
	CHECK(f.session_slot == &c->session);
	/* Answered and kept: idle again, its timer restarted. */
	CHECK(c->state == CONN_IDLE);
	CHECK_EQ_U64(c->deadline, set.mono_ms + CONN_IDLE_TIMEOUT_MS);
	CHECK(c->in_len == 0 && c->out.len == 0);
	/* A second request on the same connection, at a later time. */
	set.mono_ms += 10;
	set.now_ms += 10;
	got_len = 0;
	send_all(GET_B);
	expect_got(answer("/b?x=1", NULL, 1));
	CHECK(f.serves == 2);
	CHECK_EQ_U64(f.mono_ms, set.mono_ms);
	CHECK_EQ_U64(c->deadline, set.mono_ms + CONN_IDLE_TIMEOUT_MS);
	finish();
	CHECK(f.frees == 0);   /* no session was made */
}

static void test_pipelined(void)
{
	open_conn();
	char two[256];
	snprintf(two, sizeof two, "%s%s", GET_A, GET_B);
	send_all(two);
	char want[1024];
	snprintf(want, sizeof want, "%s%s", answer("/a", NULL, 1), answer("/b?x=1", NULL, 1));
	expect_got(want);
	CHECK(f.serves == 2);

	/* Three, the last with a body, and part of a fourth. */
	got_len = 0;
	const char *post = "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
	snprintf(two, sizeof two, "%s%s%sGET /d HT", GET_B, GET_A, post);
	send_all(two);
	snprintf(want, sizeof want, "%s%s%s", answer("/b?x=1", NULL, 1), answer("/a", NULL, 1),
		 answer("/p", "hello", 1));
	expect_got(want);
	CHECK(f.serves == 5);
	got_len = 0;
	send_all("TP/1.1\r\nHost: t\r\n\r\n");
	expect_got(answer("/d", NULL, 1));
	CHECK(f.serves == 6);
	finish();
}

static void test_byte_by_byte(void)
{
	struct conn *c = open_conn();
	const char *reqs[] = {
		GET_A,
		"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz",
	};
	for (size_t r = 0; r < 2; r++) {
		const char *s = reqs[r];
		size_t n = strlen(s);
		uint64_t first = set.mono_ms;
		int quiet = 1, in_head = 1;
		got_len = 0;
		for (size_t i = 0; i < n; i++) {
			send_str(s + i, 1);
			turn();
			if (i + 1 < n) {
				quiet &= got_len == 0 && f.answered == (int)r;
				/* The head timer runs from the first byte: trickling does
				 * not extend it. */
				in_head &= c->state == CONN_HEAD &&
					   c->deadline == first + CONN_HEAD_TIMEOUT_MS;
				set.mono_ms++;
			}
		}
		CHECK(quiet);
		CHECK(in_head);
		expect_got(answer(r ? "/p" : "/a", r ? "xyz" : NULL, 1));
		CHECK(f.answered == (int)r + 1);
		CHECK(c->state == CONN_IDLE);
	}
	finish();
}

static void test_expect_continue(void)
{
	open_conn();
	send_all("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
	expect_got("HTTP/1.1 100 Continue\r\n\r\n");
	CHECK(f.serves == 0);
	/* Only once, however the body trickles in. */
	send_all("a");
	turn();
	send_all("bc");
	char want[512];
	snprintf(want, sizeof want, "HTTP/1.1 100 Continue\r\n\r\n%s", answer("/e", "abc", 1));
	expect_got(want);
	CHECK(f.serves == 1);
	finish();
}

static void test_malformed(void)
{
	static const struct { const char *req; int status; } bad[] = {
		{ "GET  /a HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
		{ "GET /a HTTP/1.1\r\n\r\n", 400 },                       /* no Host */
		{ "GET /a HTTP/3.0\r\nHost: t\r\n\r\n", 505 },
		{ "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 411 },
		{ "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n", 413 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		open_conn();
		uint64_t open = set.open;
		send_all(bad[i].req);
		pump_until_eof();
		char want[128];
		snprintf(want, sizeof want, "HTTP/1.1 %d Rejected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 bad[i].status);
		CHECK_STR(got, got_len, want);
		CHECK(got_eof);                    /* closed after the answer */
		CHECK(f.rejects == 1 && f.last_reject == bad[i].status);
		CHECK(f.serves == 0);
		CHECK(set.open == open - 1);
		close(peer);
	}

	/* A good request, then garbage: the first is answered, then the reject. */
	open_conn();
	char two[256];
	snprintf(two, sizeof two, "%sGET /\x01 HTTP/1.1\r\n\r\n%s", GET_A, GET_B);
	send_all(two);
	pump_until_eof();
	char want[512];
	snprintf(want, sizeof want, "%sHTTP/1.1 400 Rejected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		 answer("/a", NULL, 1));
	CHECK_STR(got, got_len, want);
	CHECK(got_eof);
	CHECK(f.serves == 1 && f.rejects == 1 && f.last_reject == 400);
	close(peer);
}

static void test_parked(void)
{
	/* Parked, then resumed by the server's timer: answered in order with
	 * what arrived meanwhile. */
	struct conn *c = open_conn();
	f.wait_next = 1;
	f.wait_ms = 250;
	send_all(GET_A);
	for (int i = 0; i < 5; i++)
		turn();
	CHECK(got_len == 0);
	CHECK(f.serves == 1 && f.answered == 0);
	CHECK(c->state == CONN_PARKED);
	CHECK_EQ_U64(c->deadline, set.mono_ms + 250);
	send_all(GET_B);   /* not read while the first waits */
	for (int i = 0; i < 5; i++)
		turn();
	CHECK(got_len == 0);
	CHECK(f.serves == 1);
	set.mono_ms += 250;
	conn_resume(c);
	char want[512];
	snprintf(want, sizeof want, "%s%s", answer("/a", NULL, 1), answer("/b?x=1", NULL, 1));
	expect_got(want);
	CHECK(f.serves == 3 && f.answered == 2);
	CHECK(c->state == CONN_IDLE);

	/* Parked twice: the second wait has its own deadline. */
	got_len = 0;
	f.wait_next = 2;
	f.wait_ms = 100;
	send_all(GET_A);
	turn();
	CHECK(c->state == CONN_PARKED);
	CHECK_EQ_U64(c->deadline, set.mono_ms + 100);
	set.mono_ms += 100;
	conn_resume(c);
	CHECK(c->state == CONN_PARKED);
	CHECK_EQ_U64(c->deadline, set.mono_ms + 100);
	turn();
	CHECK(got_len == 0);
	set.mono_ms += 100;
	conn_resume(c);
	expect_got(answer("/a", NULL, 1));
	CHECK(f.answered == 3);

	/* conn_wake_parked brings a long wait's deadline to now. */
	got_len = 0;
	f.wait_next = 1;
	f.wait_ms = 5000;
	send_all(GET_B);
	turn();
	CHECK(c->state == CONN_PARKED);
	set.mono_ms += 10;
	CHECK(c->deadline > set.mono_ms);   /* the server's timer would not fire yet */
	conn_wake_parked(&set);
	CHECK_EQ_U64(c->deadline, set.mono_ms);
	CHECK(c->state == CONN_PARKED);
	turn();
	CHECK(got_len == 0);                /* nothing until the timer runs */
	if (c->deadline <= set.mono_ms)     /* as server.c's run_timers does */
		conn_resume(c);
	expect_got(answer("/b?x=1", NULL, 1));

	/* The client leaving while its request is parked closes the connection. */
	f.wait_next = 1;
	f.wait_ms = 1000;
	send_all(GET_A);
	turn();
	CHECK(c->state == CONN_PARKED);
	finish();
}

static void test_connection_close(void)
{
	open_conn();
	char two[256];
	snprintf(two, sizeof two, "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n%s", GET_A);
	send_all(two);
	pump_until_eof();
	CHECK_STR(got, got_len, answer("/c", NULL, 0));
	CHECK(got_eof);
	CHECK(f.keep_alive == 0);
	CHECK(f.serves == 1);   /* nothing after Connection: close */
	close(peer);

	/* HTTP/1.0 closes by default. */
	uint64_t open = set.open;
	open_conn();
	send_all("GET /old HTTP/1.0\r\n\r\n");
	pump_until_eof();
	CHECK_STR(got, got_len, answer("/old", NULL, 0));
	CHECK(got_eof);
	CHECK(set.open == open);
	close(peer);

	/* Half-closed after a whole request: answered, then closed. (Whether
	 * the answer says keep-alive depends on whether the EOF was read with
	 * the request or on the next turn.) */
	open_conn();
	send_all(GET_A);
	shutdown(peer, SHUT_WR);
	pump_until_eof();
	CHECK(f.serves == 1);
	CHECK_STR(got, got_len, answer("/a", NULL, f.keep_alive));
	CHECK(got_eof);
	CHECK(set.open == open);
	close(peer);

	/* Half-closed in the middle of a head: closed, nothing answered. */
	open_conn();
	send_all("GET /a HTTP/1.1\r\nHo");
	shutdown(peer, SHUT_WR);
	pump_until_eof();
	CHECK(got_len == 0 && got_eof);
	CHECK(f.serves == 0 && f.rejects == 0);
	CHECK(set.open == open);
	close(peer);
}

static void test_expire(void)
{
	/* A head that does not complete in time: 408, then closed. */
	struct conn *c = open_conn();
	uint64_t open = set.open;
	set.mono_ms += 5;
	send_all("GET /slow HTTP/1.1\r\nHo");
	turn();
	CHECK(c->state == CONN_HEAD);
	CHECK_EQ_U64(c->deadline, set.mono_ms + CONN_HEAD_TIMEOUT_MS);
	CHECK(f.serves == 0);
	set.mono_ms += CONN_HEAD_TIMEOUT_MS;
	conn_expire(c);
	CHECK(set.open == open - 1);
	pump_until_eof();
	CHECK_STR(got, got_len, "HTTP/1.1 408 Rejected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	CHECK(got_eof);
	CHECK(f.rejects == 1 && f.last_reject == 408);
	close(peer);

	/* An idle connection closes quietly. */
	c = open_conn();
	set.mono_ms += CONN_IDLE_TIMEOUT_MS;
	conn_expire(c);
	pump_until_eof();
	CHECK(got_len == 0 && got_eof);
	CHECK(f.rejects == 0);
	close(peer);
}

static void test_session(void)
{
	/* Closed by the client. */
	open_conn();
	f.make_session = 1;
	send_all(GET_A);
	expect_got(answer("/a", NULL, 1));
	CHECK(f.made != NULL);
	void *made = f.made;
	got_len = 0;
	send_all(GET_B);   /* the same session on the next request */
	expect_got(answer("/b?x=1", NULL, 1));
	CHECK(f.made == made);
	CHECK(f.frees == 0);
	finish();
	CHECK(f.frees == 1);
	CHECK(f.freed == made);

	/* Closed after Connection: close. */
	open_conn();
	f.make_session = 1;
	send_all("GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	pump_until_eof();
	CHECK(got_eof);
	CHECK(f.frees == 1 && f.freed == f.made && f.made != NULL);
	close(peer);

	/* Closed by expiry. */
	struct conn *c = open_conn();
	f.make_session = 1;
	send_all(GET_A);
	expect_got(answer("/a", NULL, 1));
	conn_expire(c);
	CHECK(f.frees == 1 && f.freed == f.made && f.made != NULL);
	close(peer);

	/* Closed while parked, after a session was made. */
	open_conn();
	f.make_session = 1;
	send_all(GET_A);
	expect_got(answer("/a", NULL, 1));
	f.wait_next = 1;
	f.wait_ms = 100;
	send_all(GET_B);
	turn();
	finish();
	CHECK(f.frees == 1 && f.freed == f.made && f.made != NULL);

	/* No session, no call. */
	c = open_conn();
	conn_close(c);
	CHECK(f.frees == 0);
	close(peer);
}

/* Shutting down: idle and half-received connections close at once; a
 * parked request is answered when its wait ends, with Connection: close. */
static void test_drain(void)
{
	struct conn *c = open_conn();
	set.draining = 1;
	conn_drain(c);
	pump_until_eof();
	CHECK(got_len == 0 && got_eof);
	close(peer);
	set.draining = 0;

	c = open_conn();
	send_all("GET /a HTTP/1.1\r\nHo");
	turn();
	CHECK(c->state == CONN_HEAD);
	set.draining = 1;
	conn_drain(c);
	pump_until_eof();
	CHECK(got_len == 0 && got_eof);
	CHECK(f.serves == 0 && f.rejects == 0);
	close(peer);
	set.draining = 0;

	c = open_conn();
	uint64_t open = set.open;
	f.wait_next = 1;
	f.wait_ms = 100;
	send_all(GET_A);
	turn();
	CHECK(c->state == CONN_PARKED);
	set.draining = 1;
	conn_drain(c);
	CHECK(set.open == open);
	CHECK(c->state == CONN_PARKED);
	set.mono_ms += 100;
	conn_resume(c);
	pump_until_eof();
	CHECK_STR(got, got_len, answer("/a", NULL, 0));
	CHECK(got_eof);
	CHECK(f.keep_alive == 0);
	CHECK(set.open == open - 1);
	close(peer);
	set.draining = 0;
}

/* Large answers to pipelined requests: the connection stops taking more
 * requests while too much output waits, and carries on as the client reads;
 * every answer arrives whole and in order. */
static void test_backpressure(void)
{
	open_conn();
	enum { N = 12 };
	char reqs[N * 64];
	size_t n = 0;
	for (int i = 0; i < N; i++)
		n += (size_t)snprintf(reqs + n, sizeof reqs - n, "GET /big%02d HTTP/1.1\r\nHost: t\r\n\r\n", i);
	send_str(reqs, n);
	for (int i = 0; i < 10; i++)
		loop_wait(set.loop, 0, NULL, NULL);   /* the client reads nothing */
	CHECK(f.serves > 0 && f.serves < N);
	char head[64];
	int hn = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_BODY);
	size_t one = (size_t)hn + BIG_BODY;
	for (int i = 0; i < 1000 && got_len < N * one && !got_eof; i++)
		turn();
	CHECK_EQ_U64(got_len, N * one);
	CHECK(f.serves == N);
	int in_order = got_len == N * one;
	for (int i = 0; in_order && i < N; i++) {
		char t[32];
		snprintf(t, sizeof t, "/big%02d.", i);
		const char *a = got + (size_t)i * one;
		in_order = memcmp(a, head, (size_t)hn) == 0 && memcmp(a + hn, t, strlen(t)) == 0 &&
			   a[one - 1] == '.';
	}
	CHECK(in_order);
	finish();
}

/* A body of the largest size allowed, arriving in pieces. */
static void test_large_body(void)
{
	open_conn();
	char head[128];
	snprintf(head, sizeof head, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", HTTP_MAX_BODY);
	send_all(head);
	static char body[HTTP_MAX_BODY];
	memset(body, 'b', sizeof body);
	for (size_t off = 0; off < sizeof body; off += 1000) {
		size_t k = sizeof body - off < 1000 ? sizeof body - off : 1000;
		send_str(body + off, k);
		turn();
	}
	pump(1);
	CHECK(f.serves == 1);
	CHECK_EQ_U64(f.body_len, HTTP_MAX_BODY);
	CHECK(got_len > 0 && strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0);
	finish();
}

int main(void)
{
	set.loop = loop_create(1024);
	if (!set.loop) {
		fprintf(stderr, "loop_create failed\n");
		return 1;
	}
	set.handler = &handler;
	set.now_ms = 1767225600000ull;
	set.mono_ms = 1000;
	test_one_request();
	test_pipelined();
	test_byte_by_byte();
	test_expect_continue();
	test_malformed();
	test_parked();
	test_connection_close();
	test_expire();
	test_session();
	test_drain();
	test_backpressure();
	test_large_body();
	CHECK(set.open == 0);
	for (int st = 0; st < CONN_STATES; st++)
		CHECK(set.lists[st].head == NULL && set.lists[st].tail == NULL);
	loop_destroy(set.loop);
	return check_summary("conn");
}
