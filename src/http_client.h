/* A small HTTP/1.1 client for talking to the Consul agent: one non-blocking
 * connection driven by the server's event loop, with a blocking mode for
 * the shutdown phase, reading answers with http_response.h's parser. One
 * request at a time. */
#ifndef HTTP_CLIENT_H
#define HTTP_CLIENT_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "http_response.h"
#include "loop.h"

struct http_result {
	int status;                 /* HTTP status, or 0 when the request failed in transport */
	const char *body;           /* decoded body (NUL-terminated), valid during the callback */
	size_t body_len;
	const char *error;          /* transport failure: what went wrong, else "" */
	const struct http_response *head;  /* the response's head (headers), NULL on transport failure */
};
typedef void (*http_client_done_fn)(void *ud, const struct http_result *r);

struct resolve_job;
struct http_client {
	char host[256];
	unsigned port;
	char prefix[256];           /* "" or "/prefix": prepended to every path */
	char host_header[280];
	struct sockaddr_storage addr;
	socklen_t addr_len;         /* 0 until the host is resolved */
	struct resolve_job *lookup; /* a name lookup in flight (resolve.c) */

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

/* A header of the result as a decimal number (Consul's X-Consul-Index):
 * 0 when absent, malformed, or the request failed in transport. */
uint64_t http_result_header_u64(const struct http_result *r, const char *name);

/* Parses the URL and allocates the buffers; no I/O. 0 ok, -1 with err. */
int http_client_init(struct http_client *c, const char *url, char *err, size_t errlen);
/* Finds the host's address without ever blocking the caller: a numeric IPv4
 * host is immediate, a name is looked up (resolve.c) in a helper thread.
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
