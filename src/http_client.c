/* HTTP/1.1 client connection (its parser is http_response.c, its name
 * lookups resolve.c): states -- connecting, sending, receiving -- that
 * advance from the server's event loop, or from a private poll() in
 * blocking mode. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fmt.h"
#include "http_parse.h"
#include "json.h"
#include "resolve.h"
#include "url.h"

#include "version.h"

enum { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_RECEIVING };

uint64_t http_result_header_u64(const struct http_result *r, const char *name)
{
	const struct http_header *h = r->head ? http_response_header(r->head, name) : NULL;
	uint64_t v;
	return h && parse_u64(h->value, h->value_len, &v) == 0 ? v : 0;
}

int http_client_init(struct http_client *c, const char *url, char *err, size_t errlen)
{
	struct url u;
	char why[160];
	memset(c, 0, sizeof *c);
	c->fd = -1;
	if (url_parse(url, &u, why, sizeof why) != 0) {
		fmt_snprintf(err, errlen, "%s: %s", url, why);
		return -1;
	}
	fmt_snprintf(c->host, sizeof c->host, "%s", u.host);
	fmt_snprintf(c->prefix, sizeof c->prefix, "%s", u.prefix);
	c->port = u.port;
	if (c->port == 80)
		fmt_snprintf(c->host_header, sizeof c->host_header, "%s", c->host);
	else
		fmt_snprintf(c->host_header, sizeof c->host_header, "%s:%u", c->host, c->port);
	c->max_response = c->in_cap = HTTP_CLIENT_MAX_RESPONSE;
	c->in = malloc(c->in_cap);
	c->body = malloc(c->in_cap + 1);
	if (!c->in || !c->body) {
		fmt_snprintf(err, errlen, "out of memory for the HTTP client buffers");
		http_client_free(c);
		return -1;
	}
	return 0;
}

int http_client_resolve(struct http_client *c, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	if (inet_pton(AF_INET, c->host, &sa.sin_addr) == 1) {
		memcpy(&c->addr, &sa, sizeof sa);
		c->addr_len = sizeof sa;
		return 0;
	}
	if (!c->lookup) {
		c->lookup = resolve_start(c->host, c->port, err, errlen);
		return c->lookup ? 1 : -1;
	}
	int rc = resolve_poll(c->lookup, &c->addr, &c->addr_len, err, errlen);
	if (rc <= 0)
		c->lookup = NULL;   /* answered: the job is gone */
	return rc;
}

int http_client_busy(const struct http_client *c)
{
	return c->state != ST_IDLE;
}

static void on_event(void *ud, int fd, int events);

static void drop_fd(struct http_client *c)
{
	if (c->fd < 0)
		return;
	if (c->loop)
		loop_del(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
}

static void set_mask(struct http_client *c, int mask)
{
	if (c->loop)
		loop_set(c->loop, c->fd, mask);
}

/* Ends the request; the callback runs last because it may start another. */
static void finish(struct http_client *c, int status, size_t body_len, const char *error, int keep,
		   const struct http_response *head)
{
	if (!keep)
		drop_fd(c);
	else if (c->loop)
		loop_del(c->loop, c->fd);   /* idle: reuse checks the socket first */
	c->state = ST_IDLE;
	c->in_len = 0;
	c->out_len = c->out_off = 0;
	c->body[body_len] = '\0';
	struct http_result r = { status, c->body, body_len, error ? error : "", head };
	http_client_done_fn done = c->done;
	c->done = NULL;
	if (done)
		done(c->ud, &r);
}

static void fail(struct http_client *c, const char *what, int err)
{
	char msg[512];
	if (err)
		fmt_snprintf(msg, sizeof msg, "%s %s:%u: %s", what, c->host, c->port, strerror(err));
	else
		fmt_snprintf(msg, sizeof msg, "%s %s:%u", what, c->host, c->port);
	finish(c, 0, 0, msg, 0, NULL);
}

/* Opens a fresh connection for the request in c->out. 0 ok, -1 failed (reported). */
static int start_connect(struct http_client *c)
{
	c->reused = 0;
	c->in_len = 0;
	c->out_off = 0;
	c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "cannot create a socket for", errno);
		return -1;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&c->addr, c->addr_len) == 0) {
		c->state = ST_SENDING;
	} else if (errno == EINPROGRESS) {
		c->state = ST_CONNECTING;
	} else {
		fail(c, "cannot connect to", errno);
		return -1;
	}
	if (c->loop && loop_add(c->loop, c->fd, LOOP_WRITE, on_event, c) != 0) {
		fail(c, "cannot watch the connection to", 0);
		return -1;
	}
	return 0;
}

/* A kept-alive connection the agent closed while we were idle: the request
 * never reached it, so it is sent again on a fresh connection. */
static int retry_fresh(struct http_client *c)
{
	drop_fd(c);
	return start_connect(c);
}

/* Is the idle connection still usable? (No bytes and no EOF pending.) */
static int idle_alive(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The response filled the buffer: double it (and the body buffer, which
 * never needs more than the raw bytes) up to max_response. -1: reported. */
static int grow_in(struct http_client *c)
{
	size_t cap = c->in_cap * 2 < c->max_response ? c->in_cap * 2 : c->max_response;
	if (cap <= c->in_cap) {
		char what[96];
		fmt_snprintf(what, sizeof what, "response larger than %zu KiB from", c->max_response / 1024);
		fail(c, what, 0);
		return -1;
	}
	char *in = realloc(c->in, cap);
	if (in)
		c->in = in;
	char *body = in ? realloc(c->body, cap + 1) : NULL;
	if (!body) {
		fail(c, "out of memory reading the response from", 0);
		return -1;
	}
	c->body = body;
	c->in_cap = cap;
	return 0;
}

/* ST_CONNECTING: has the connection attempt ended? 1 connected, 0 not yet,
 * -1 failed (reported). */
static int connected(struct http_client *c, int events)
{
	if (!(events & (LOOP_WRITE | LOOP_ERROR)))
		return 0;
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		soerr = errno;
	if (soerr) {
		fail(c, "cannot connect to", soerr);
		return -1;
	}
	return 1;
}

/* ST_SENDING: 1 the request is out, 0 the socket is full, -1 ended
 * (reported, or retried on a fresh connection). */
static int send_request(struct http_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n >= 0) {
			c->out_off += (size_t)n;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		} else if (c->reused && (errno == EPIPE || errno == ECONNRESET)) {
			retry_fresh(c);
			return -1;
		} else {
			fail(c, "cannot send to", errno);
			return -1;
		}
	}
	return 1;
}

/* Reads a whole response from the bytes so far: 1 done (finished or
 * failed), 0 more bytes are needed. */
static int take_response(struct http_client *c, int eof)
{
	struct http_response res;
	size_t blen;
	/* The bound is max_response, not the buffer: a chunk or a
	 * Content-Length beyond what has arrived so far is fine (the buffers
	 * grow as bytes come), and the decoded body never outgrows the bytes
	 * received, which fit in body. */
	long r = http_read_response(c->in, c->in_len, eof, c->head_request, &res,
				    c->body, c->max_response, &blen);
	if (r > 0) {
		int keep = !eof && res.keep_alive && (size_t)r == c->in_len;
		finish(c, res.status, blen, NULL, keep, &res);
		return 1;
	}
	if (r == HTTP_RESP_MORE)
		return 0;
	fail(c, r == HTTP_RESP_TOO_BIG ? "response too large from" :
		r == HTTP_RESP_TRUNCATED ? "connection closed mid-response by" :
		"malformed response from", 0);
	return 1;
}

/* ST_RECEIVING: reads until the response is whole or the socket is empty. */
static void receive_response(struct http_client *c)
{
	for (;;) {
		int eof = 0;
		if (c->in_len == c->in_cap && grow_in(c) != 0)
			return;
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (c->reused && c->in_len == 0 && errno == ECONNRESET) {
				retry_fresh(c);
				return;
			}
			fail(c, "cannot read the response from", errno);
			return;
		}
		if (n == 0) {
			if (c->reused && c->in_len == 0) {
				retry_fresh(c);
				return;
			}
			eof = 1;
		}
		c->in_len += (size_t)n;
		if (take_response(c, eof))
			return;
	}
}

/* Advances the states as far as the socket allows. */
static void drive(struct http_client *c, int events)
{
	switch (c->state) {
	case ST_IDLE:
		return;
	case ST_CONNECTING:
		if (connected(c, events) <= 0)
			return;
		c->state = ST_SENDING;
		/* fall through */
	case ST_SENDING:
		if (send_request(c) <= 0)
			return;
		c->state = ST_RECEIVING;
		set_mask(c, LOOP_READ);
		/* fall through */
	case ST_RECEIVING:
		receive_response(c);
	}
}

static void on_event(void *ud, int fd, int events)
{
	(void)fd;
	drive(ud, events);
}

/* Blocking mode: the same states, advanced by a private poll(). */
static void run_blocking(struct http_client *c)
{
	while (c->state != ST_IDLE) {
		uint64_t now = clock_mono_ms();
		if (now >= c->deadline) {
			fail(c, "request timed out talking to", 0);
			return;
		}
		struct pollfd pfd = { c->fd, c->state == ST_RECEIVING ? POLLIN : POLLOUT, 0 };
		int r = poll(&pfd, 1, (int)(c->deadline - now));
		if (r < 0 && errno != EINTR) {
			fail(c, "poll failed for", errno);
			return;
		}
		if (r > 0)
			drive(c, ((pfd.revents & POLLIN) ? LOOP_READ : 0) |
				 ((pfd.revents & POLLOUT) ? LOOP_WRITE : 0) |
				 ((pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) ? LOOP_ERROR : 0));
	}
}

/* Appends to the request buffer; -1 when out of memory. */
static int out_append(struct http_client *c, const char *s, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 1024;
		while (cap < c->out_len + n)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	return 0;
}

int http_client_request(struct http_client *c, struct loop *loop, uint64_t mono_ms,
			const char *method, const char *path, const char *headers,
			const char *body, size_t body_len, unsigned timeout_ms,
			http_client_done_fn done, void *ud)
{
	char head[1024];
	if (c->state != ST_IDLE || !c->addr_len)
		return -1;
	int has_body = body_len > 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0);
	int n = fmt_snprintf(head, sizeof head, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shardid/%s\r\n",
			 method, c->prefix, path, c->host_header, SHARDID_VERSION);
	if (n < 0 || (size_t)n >= sizeof head)
		return -1;
	c->out_len = c->out_off = 0;
	if (out_append(c, head, (size_t)n) != 0 ||
	    (headers && out_append(c, headers, strlen(headers)) != 0))
		return -1;
	if (has_body) {
		n = fmt_snprintf(head, sizeof head, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			     body_len);
		if (out_append(c, head, (size_t)n) != 0)
			return -1;
	}
	if (out_append(c, "\r\n", 2) != 0 || (body_len && out_append(c, body, body_len) != 0))
		return -1;

	/* The loop a kept-alive descriptor was idle in may be gone (blocking mode). */
	c->loop = loop;
	c->head_request = strcmp(method, "HEAD") == 0;
	c->deadline = (loop ? mono_ms : clock_mono_ms()) + timeout_ms;
	c->done = done;
	c->ud = ud;
	c->in_len = 0;
	if (c->fd >= 0 && idle_alive(c->fd)) {
		c->reused = 1;
		c->state = ST_SENDING;
		if (c->loop && loop_add(c->loop, c->fd, LOOP_WRITE, on_event, c) != 0) {
			close(c->fd);
			c->fd = -1;
			start_connect(c);
		}
	} else {
		if (c->fd >= 0) {
			close(c->fd);   /* not in any loop while idle */
			c->fd = -1;
		}
		start_connect(c);   /* failures are reported through done */
	}
	if (!loop)
		run_blocking(c);
	return 0;
}

void http_client_tick(struct http_client *c, uint64_t mono_ms)
{
	if (c->state != ST_IDLE && mono_ms >= c->deadline)
		fail(c, "request timed out talking to", 0);
}

void http_client_close(struct http_client *c, struct loop *loop)
{
	if (c->fd >= 0) {
		if (loop && c->state != ST_IDLE)
			loop_del(loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	c->state = ST_IDLE;
	c->done = NULL;
	c->loop = NULL;
}

void http_client_free(struct http_client *c)
{
	if (c->lookup) {
		resolve_drop(c->lookup);
		c->lookup = NULL;
	}
	free(c->in);
	free(c->out);
	free(c->body);
	c->in = c->out = c->body = NULL;
	c->out_cap = 0;
}
