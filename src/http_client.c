/* HTTP/1.1 client: a pure, stateless response parser (re-run from the start
 * of the buffer after every read, like the request parser) and one
 * connection whose states -- connecting, sending, receiving -- advance from
 * the server's event loop, or from a private poll() in blocking mode. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "http_parse.h"

#include "version.h"

/* ---- pure parsing ---------------------------------------------------- */


static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* s[0..n) equals the lowercase literal, ignoring case. */
static int ieq(const char *s, size_t n, const char *lit)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (!lit[i] || lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return lit[n] == '\0';
}

/* Calls fn on each comma-separated, OWS-trimmed element of v[0..n). */
static void each_token(const char *v, size_t n, void (*fn)(void *, const char *, size_t), void *ud)
{
	size_t i = 0;
	while (i <= n) {
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (s < e && http_is_ows((unsigned char)v[s]))
			s++;
		while (e > s && http_is_ows((unsigned char)v[e - 1]))
			e--;
		if (e > s)
			fn(ud, v + s, e - s);
		i++;
	}
}

struct conn_tokens { int close, keep_alive; };
static void conn_token(void *ud, const char *t, size_t n)
{
	struct conn_tokens *ct = ud;
	if (ieq(t, n, "close"))
		ct->close = 1;
	else if (ieq(t, n, "keep-alive"))
		ct->keep_alive = 1;
}

/* Remembers whether the last transfer coding seen is "chunked". */
static void te_token(void *ud, const char *t, size_t n)
{
	*(int *)ud = ieq(t, n, "chunked");
}

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

int http_parse_response(const char *buf, size_t len, struct http_response *res)
{
	static const char ver[] = "HTTP/1.";
	const unsigned char *p = (const unsigned char *)buf;
	int capped = len > HTTP_CLIENT_MAX_HEAD;
	const unsigned char *end = p + (capped ? HTTP_CLIENT_MAX_HEAD : len);
	int rc;
#define NEED(q) do { if ((q) >= end) return capped ? HTTP_RESP_TOO_BIG : HTTP_RESP_MORE; } while (0)

	res->num_headers = 0;
	res->content_length = -1;
	res->chunked = 0;
	res->keep_alive = 0;
	res->reason = buf;
	res->reason_len = 0;

	for (size_t i = 0; i < sizeof ver - 1; i++, p++) {
		NEED(p);
		if (*p != (unsigned char)ver[i])
			return HTTP_RESP_BAD;
	}
	NEED(p);
	if (*p != '0' && *p != '1')
		return HTTP_RESP_BAD;
	res->minor_version = *p++ - '0';
	NEED(p);
	if (*p++ != ' ')
		return HTTP_RESP_BAD;
	res->status = 0;
	for (int i = 0; i < 3; i++, p++) {
		NEED(p);
		if (*p < '0' || *p > '9' || (i == 0 && *p == '0'))
			return HTTP_RESP_BAD;
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
	EXPECT_CRLF();

	p = parse_fields(p, end, capped, res->headers, &res->num_headers, &rc);
	if (!p)
		return rc;
#undef NEED

	/* Framing and persistence, from the complete head. */
	struct conn_tokens ct = { 0, 0 };
	int te = 0, te_chunked = 0;
	for (size_t i = 0; i < res->num_headers; i++) {
		const struct http_header *h = &res->headers[i];
		if (ieq(h->name, h->name_len, "content-length")) {
			long long v = parse_length(h->value, h->value_len);
			if (v < 0 || (res->content_length >= 0 && v != res->content_length))
				return HTTP_RESP_BAD;
			res->content_length = v;
		} else if (ieq(h->name, h->name_len, "transfer-encoding")) {
			te = 1;
			each_token(h->value, h->value_len, te_token, &te_chunked);
		} else if (ieq(h->name, h->name_len, "connection")) {
			each_token(h->value, h->value_len, conn_token, &ct);
		}
	}
	if (te) {
		/* Transfer-Encoding overrides Content-Length (RFC 9112 6.3); a
		 * final coding other than chunked runs until the close. */
		res->content_length = -1;
		res->chunked = te_chunked;
	}
	res->keep_alive = res->minor_version == 1 ? !ct.close : ct.keep_alive && !ct.close;
	if (te && !te_chunked)
		res->keep_alive = 0;
	return (int)((const char *)p - buf);
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
		while (p < end && (d = hexval(*p)) >= 0) {
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
	for (size_t i = 0; i < res->num_headers; i++)
		if (ieq(res->headers[i].name, res->headers[i].name_len, name))
			return &res->headers[i];
	return NULL;
}

int http_client_parse_url(const char *url, char *host, size_t host_cap, unsigned *port,
			  char *prefix, size_t prefix_cap, char *err, size_t errlen)
{
	if (strncasecmp(url, "https://", 8) == 0) {
		snprintf(err, errlen, "https is not supported in %s: expected an http:// agent address", url);
		return -1;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "%s is not an http:// URL: expected http://host[:port][/prefix]", url);
		return -1;
	}
	const char *p = url + 7, *h = p;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '.' || *p == '-' || *p == '_')
		p++;
	if (p == h || (size_t)(p - h) >= host_cap) {
		snprintf(err, errlen, "%s: missing or over-long host: expected http://host[:port][/prefix]", url);
		return -1;
	}
	memcpy(host, h, (size_t)(p - h));
	host[p - h] = '\0';
	*port = 80;
	if (*p == ':') {
		unsigned long v = 0;
		const char *d = ++p;
		while (*p >= '0' && *p <= '9' && p - d < 6)
			v = v * 10 + (unsigned long)(*p++ - '0');
		if (p == d || v < 1 || v > 65535 || (*p >= '0' && *p <= '9')) {
			snprintf(err, errlen, "%s: bad port: expected 1..65535", url);
			return -1;
		}
		*port = (unsigned)v;
	}
	if (*p && *p != '/') {
		snprintf(err, errlen, "%s: unexpected '%c' after the host: expected http://host[:port][/prefix]", url, *p);
		return -1;
	}
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7F || c == '?' || c == '#') {
			snprintf(err, errlen, "%s: bad character in the path prefix", url);
			return -1;
		}
	}
	if (n >= prefix_cap) {
		snprintf(err, errlen, "%s: path prefix longer than %zu bytes", url, prefix_cap - 1);
		return -1;
	}
	memcpy(prefix, p, n);
	prefix[n] = '\0';
	return 0;
}

/* ---- the connection --------------------------------------------------- */

enum { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_RECEIVING };

int http_client_init(struct http_client *c, const char *url, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	if (http_client_parse_url(url, c->host, sizeof c->host, &c->port, c->prefix,
				  sizeof c->prefix, err, errlen) != 0)
		return -1;
	if (c->port == 80)
		snprintf(c->host_header, sizeof c->host_header, "%s", c->host);
	else
		snprintf(c->host_header, sizeof c->host_header, "%s:%u", c->host, c->port);
	c->max_response = c->in_cap = HTTP_CLIENT_MAX_RESPONSE;
	c->in = malloc(c->in_cap);
	c->body = malloc(c->in_cap + 1);
	if (!c->in || !c->body) {
		snprintf(err, errlen, "out of memory for the HTTP client buffers");
		http_client_free(c);
		return -1;
	}
	return 0;
}

/* A name lookup shared by the client and its thread; the last one to let go
 * frees it, so a client may give up on a lookup that never returns. */
struct http_lookup {
	atomic_int refs, done;
	char host[256], port[8];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int rc;                       /* getaddrinfo's result */
};

static void lookup_put(struct http_lookup *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

static void *lookup_run(void *arg)
{
	struct http_lookup *j = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	j->rc = getaddrinfo(j->host, j->port, &hints, &ai);
	if (j->rc == 0 && ai && ai->ai_addrlen <= sizeof j->addr) {
		memcpy(&j->addr, ai->ai_addr, ai->ai_addrlen);
		j->addr_len = ai->ai_addrlen;
	} else if (j->rc == 0) {
		j->rc = EAI_NONAME;
	}
	if (ai)
		freeaddrinfo(ai);
	atomic_store(&j->done, 1);
	lookup_put(j);
	return NULL;
}

int http_client_resolve(struct http_client *c, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	if (inet_pton(AF_INET, c->host, &sa.sin_addr) == 1) {
		memcpy(&c->addr, &sa, sizeof sa);
		c->addr_len = sizeof sa;
		return 0;
	}
	struct http_lookup *j = c->lookup;
	if (!j) {
		pthread_t t;
		pthread_attr_t attr;
		j = calloc(1, sizeof *j);
		if (!j) {
			snprintf(err, errlen, "out of memory looking up %s", c->host);
			return -1;
		}
		atomic_init(&j->refs, 2);
		atomic_init(&j->done, 0);
		snprintf(j->host, sizeof j->host, "%s", c->host);
		snprintf(j->port, sizeof j->port, "%u", c->port);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &attr, lookup_run, j);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			free(j);
			snprintf(err, errlen, "cannot start a lookup of %s: %s", c->host, strerror(rc));
			return -1;
		}
		c->lookup = j;
		return 1;
	}
	if (!atomic_load(&j->done))
		return 1;
	c->lookup = NULL;
	int rc = j->rc;
	if (rc == 0) {
		memcpy(&c->addr, &j->addr, j->addr_len);
		c->addr_len = j->addr_len;
	} else {
		snprintf(err, errlen, "cannot resolve %s: %s", c->host, gai_strerror(rc));
	}
	lookup_put(j);
	return rc == 0 ? 0 : -1;
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
		snprintf(msg, sizeof msg, "%s %s:%u: %s", what, c->host, c->port, strerror(err));
	else
		snprintf(msg, sizeof msg, "%s %s:%u", what, c->host, c->port);
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
		snprintf(what, sizeof what, "response larger than %zu KiB from", c->max_response / 1024);
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

static void drive(struct http_client *c, int events)
{
	switch (c->state) {
	case ST_IDLE:
		return;
	case ST_CONNECTING: {
		if (!(events & (LOOP_WRITE | LOOP_ERROR)))
			return;
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr) {
			fail(c, "cannot connect to", soerr);
			return;
		}
		c->state = ST_SENDING;
	}
		/* fall through */
	case ST_SENDING:
		while (c->out_off < c->out_len) {
			ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
					 MSG_NOSIGNAL);
			if (n >= 0) {
				c->out_off += (size_t)n;
			} else if (errno == EINTR) {
				continue;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return;
			} else if (c->reused && (errno == EPIPE || errno == ECONNRESET)) {
				retry_fresh(c);
				return;
			} else {
				fail(c, "cannot send to", errno);
				return;
			}
		}
		c->state = ST_RECEIVING;
		set_mask(c, LOOP_READ);
		/* fall through */
	case ST_RECEIVING:
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
			struct http_response res;
			size_t blen;
			/* The bound is max_response, not the buffer: a chunk or a
			 * Content-Length beyond what has arrived so far is fine (the
			 * buffers grow as bytes come), and the decoded body never
			 * outgrows the bytes received, which fit in body. */
			long r = http_read_response(c->in, c->in_len, eof, c->head_request, &res,
						    c->body, c->max_response, &blen);
			if (r > 0) {
				int keep = !eof && res.keep_alive && (size_t)r == c->in_len;
				finish(c, res.status, blen, NULL, keep, &res);
				return;
			}
			if (r == HTTP_RESP_MORE)
				continue;
			fail(c, r == HTTP_RESP_TOO_BIG ? "response too large from" :
				r == HTTP_RESP_TRUNCATED ? "connection closed mid-response by" :
				"malformed response from", 0);
			return;
		}
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
	int n = snprintf(head, sizeof head, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shardid/%s\r\n",
			 method, c->prefix, path, c->host_header, SHARDID_VERSION);
	if (n < 0 || (size_t)n >= sizeof head)
		return -1;
	c->out_len = c->out_off = 0;
	if (out_append(c, head, (size_t)n) != 0 ||
	    (headers && out_append(c, headers, strlen(headers)) != 0))
		return -1;
	if (has_body) {
		n = snprintf(head, sizeof head, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
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
		lookup_put(c->lookup);
		c->lookup = NULL;
	}
	free(c->in);
	free(c->out);
	free(c->body);
	c->in = c->out = c->body = NULL;
	c->out_cap = 0;
}
