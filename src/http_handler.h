/* What the server asks of the application above it: answer one parsed
 * request, or say how long to wait before it can. The transport (server.c,
 * conn.c) knows only this interface; api.c provides it. */
#ifndef HTTP_HANDLER_H
#define HTTP_HANDLER_H
#include <stddef.h>
#include <stdint.h>
#include "http_parse.h"
#include "json.h"

struct http_exchange {
	const struct http_request *http;
	const char *body;
	size_t body_len;
	int peer_loopback;
	int keep_alive;            /* what the response's Connection header says */
	uint64_t now_ms, mono_ms;  /* the loop's clock reading for this iteration */
	uint64_t mono_ns;          /* the same monotonic reading in ns */
	void **session;            /* the application's state for this connection (NULL at first) */
};

enum http_handler_result { HANDLER_DONE, HANDLER_WAIT };

struct http_handler {
	void *app;
	/* Appends the complete response to out; or returns HANDLER_WAIT with
	 * *wait_ms, having written nothing: the server calls again with the
	 * same request after that long, or sooner after http_wake. */
	enum http_handler_result (*serve)(void *app, struct http_exchange *x, struct buf *out,
					  uint64_t *wait_ms);
	/* The response for a request rejected before it reached serve (a
	 * protocol error status, or 408); the connection closes after it. */
	void (*reject)(void *app, struct buf *out, int status);
	/* Frees a connection's session when the connection closes. */
	void (*session_free)(void *app, void *session);
};

#endif
