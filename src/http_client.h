/* A small HTTP/1.1 client for talking to the Consul agent: a pure response
 * parser (status line, headers, Content-Length / chunked / close-delimited
 * bodies) and one non-blocking connection driven by the server's event loop,
 * with a blocking mode for the shutdown phase. One request at a time. */
#ifndef HTTP_CLIENT_H
#define HTTP_CLIENT_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "http_parse.h"
#include "loop.h"

#define HTTP_CLIENT_MAX_HEAD     16384  /* status line + headers */
#define HTTP_CLIENT_MAX_HEADERS  64
#define HTTP_CLIENT_MAX_RESPONSE 65536  /* whole response as received, unless max_response says more */

/* ---- pure parsing ---------------------------------------------------- */

struct http_response {
	int minor_version;          /* 0 or 1 */
	int status;                 /* 100..999 */
	const char *reason;  size_t reason_len;
	struct http_header headers[HTTP_CLIENT_MAX_HEADERS];
	size_t num_headers;
	long long content_length;   /* -1 when absent (or overridden by Transfer-Encoding) */
	int chunked;                /* final transfer coding is chunked */
	int keep_alive;             /* the connection may carry another request */
};

enum {
	HTTP_RESP_MORE = 0,
	HTTP_RESP_BAD = -1,         /* malformed status line, header or framing */
	HTTP_RESP_TOO_BIG = -2,     /* head over HTTP_CLIENT_MAX_HEAD, or body over the caller's cap */
	HTTP_RESP_TRUNCATED = -3,   /* the peer closed before the message ended */
};

/* Parses one response head ("HTTP/1.x SP 3DIGIT SP reason CRLF", header
 * lines, CRLF) from buf[0..len). Stateless: call again from the start with
 * more bytes. Never reads buf[len]. Returns the head length (> 0),
 * HTTP_RESP_MORE, HTTP_RESP_BAD or HTTP_RESP_TOO_BIG. Pointers in *res point
 * into buf. CRLF only; no obs-fold; header names are tokens; a repeated or
 * non-numeric Content-Length that disagrees is HTTP_RESP_BAD. */
int http_parse_response(const char *buf, size_t len, struct http_response *res);

/* Decodes a chunked body (chunk extensions are ignored, trailer fields are
 * checked and dropped) from in[0..len). out receives the data and may be
 * NULL (check only) or equal to `in` (in place: writes never overtake reads).
 * Returns the bytes the coding occupies including the last chunk and
 * trailers (> 0), HTTP_RESP_MORE, HTTP_RESP_BAD, or HTTP_RESP_TOO_BIG when
 * the data exceeds cap. *out_len is the decoded length. */
long http_chunked_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len);

/* Reads one whole response from buf[0..len), skipping interim 1xx heads.
 * eof: the peer has closed after these bytes (ends a close-delimited body).
 * head_request: the request was HEAD (no body follows). The decoded body is
 * copied into body[0..*body_len) (cap bytes). Returns the bytes the response
 * occupies (> 0), HTTP_RESP_MORE, or a negative HTTP_RESP_* error. */
long http_read_response(const char *buf, size_t len, int eof, int head_request,
			struct http_response *res, char *body, size_t cap, size_t *body_len);

/* Case-insensitive header lookup in a parsed response; NULL when absent. */
const struct http_header *http_response_header(const struct http_response *res,
					       const char *name);

/* Splits "http://host[:port][/prefix]" (port default 80; a trailing '/' of
 * the prefix is dropped). 0 ok, -1 with a reason in err. https is refused. */
int http_client_parse_url(const char *url, char *host, size_t host_cap, unsigned *port,
			  char *prefix, size_t prefix_cap, char *err, size_t errlen);

/* ---- the connection --------------------------------------------------- */

struct http_result {
	int status;                 /* HTTP status, or 0 when the request failed in transport */
	const char *body;           /* decoded body (NUL-terminated), valid during the callback */
	size_t body_len;
	const char *error;          /* transport failure: what went wrong, else "" */
	const struct http_response *head;  /* the response's head (headers), NULL on transport failure */
};
typedef void (*http_client_done_fn)(void *ud, const struct http_result *r);

struct http_lookup;
struct http_client {
	char host[256];
	unsigned port;
	char prefix[256];           /* "" or "/prefix": prepended to every path */
	char host_header[280];
	struct sockaddr_storage addr;
	socklen_t addr_len;         /* 0 until the host is resolved */
	struct http_lookup *lookup; /* a name lookup in flight */

	int fd;                     /* -1 when no connection */
	int state;                  /* internal: idle / connecting / sending / receiving */
	int reused;                 /* this request went out on a kept-alive connection */
	int head_request;
	struct loop *loop;          /* NULL: blocking mode (or loop gone) */
	uint64_t deadline;          /* monotonic ms for the request in flight */
	http_client_done_fn done;
	void *ud;

	char *out;                  /* the request bytes */
	size_t out_len, out_off, out_cap;
	char *in;                   /* the response as received */
	size_t in_len, in_cap;
	char *body;                 /* decoded body handed to the callback (in_cap + 1 bytes) */
	size_t max_response;        /* buffers grow up to this (set after init; default 64 KiB) */
};

/* Parses the URL and allocates the buffers; no I/O. 0 ok, -1 with err. */
int http_client_init(struct http_client *c, const char *url, char *err, size_t errlen);
/* Finds the host's address without ever blocking the caller: a numeric IPv4
 * host is immediate, a name is looked up (getaddrinfo) in a helper thread.
 * Returns 0 once c has a fresh address, 1 while the lookup runs (call again
 * later), -1 when it failed (err says why; calling again retries). */
int http_client_resolve(struct http_client *c, char *err, size_t errlen);
/* 1 while a request is in flight. */
int http_client_busy(const struct http_client *c);

/* Starts a request. `headers` are extra header lines, each ending in CRLF
 * (may be NULL). With a loop the call returns at once and `done` runs from
 * the loop (or from http_client_tick on timeout) -- or already inside this
 * call when the connection fails at once, so set up state first; without
 * a loop (NULL) it blocks until done or the timeout. `done` may start the
 * next request. Returns 0 when started, -1 when busy, without an address
 * yet, or out of memory (then done is not called). */
int http_client_request(struct http_client *c, struct loop *loop, uint64_t mono_ms,
			const char *method, const char *path, const char *headers,
			const char *body, size_t body_len, unsigned timeout_ms,
			http_client_done_fn done, void *ud);
/* Times out a request whose deadline passed. Call from the loop's tick. */
void http_client_tick(struct http_client *c, uint64_t mono_ms);
/* Closes the connection. The loop, if still alive, is passed so the
 * descriptor leaves it; after the loop is destroyed pass NULL. An
 * in-flight request is dropped without its callback. */
void http_client_close(struct http_client *c, struct loop *loop);
/* Frees the buffers (after http_client_close). */
void http_client_free(struct http_client *c);

#endif
