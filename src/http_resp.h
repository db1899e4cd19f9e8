/* Response heads and bodies appended to a connection's output buffer. */
#ifndef HTTP_RESP_H
#define HTTP_RESP_H
#include <stddef.h>
#include "json.h"

struct http_resp_opts {
	int head_only;         /* HEAD: headers only, Content-Length of the GET body */
	int keep_alive;        /* else "Connection: close" */
	int http10;            /* HTTP/1.0 client: status line says 1.1 anyway; "Connection: keep-alive" when kept */
	const char *content_type;    /* NULL = application/json */
	const char *extra_headers;   /* complete "Name: value\r\n" lines, or NULL */
};

/* Appends status line (reason from http_status.c), headers and body to out. */
void http_resp_write(struct buf *out, int status, const struct http_resp_opts *o,
		     const char *body, size_t body_len);
/* Refreshes the cached Date header value; call once per loop iteration. */
void http_resp_set_time(uint64_t unix_ms);

#endif
