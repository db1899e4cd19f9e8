/* Pure incremental HTTP/1.x request-head parser: no allocation, no I/O.
 * Everything it reports points into the caller's buffer. */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H
#include <stddef.h>
#include "http_lex.h"   /* byte classes shared with the response parser */

/* Limits, in the units the error messages quote them in (http_status.c). */
#define HTTP_MAX_HEAD_KIB 8      /* request line + headers (431 beyond) */
#define HTTP_MAX_URI_KIB  2      /* request target (414 beyond) */
#define HTTP_MAX_BODY_KIB 16     /* Content-Length limit (413 beyond) */
#define HTTP_MAX_HEADERS  64     /* header count (431 beyond) */
#define HTTP_HEAD_TIMEOUT_S 10   /* whole request head, from its first byte (408 beyond) */
#define HTTP_MAX_HEAD     (HTTP_MAX_HEAD_KIB * 1024)
#define HTTP_MAX_URI      (HTTP_MAX_URI_KIB * 1024)
#define HTTP_MAX_BODY     (HTTP_MAX_BODY_KIB * 1024)
#define HTTP_HEAD_TIMEOUT_MS (HTTP_HEAD_TIMEOUT_S * 1000)

enum http_method {
	HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE,
	HTTP_OPTIONS, HTTP_PATCH, HTTP_TRACE, HTTP_CONNECT,
	HTTP_OTHER /* a syntactically valid token we do not implement */
};

struct http_header {
	const char *name;  size_t name_len;
	const char *value; size_t value_len; /* surrounding OWS stripped */
};

struct http_request {
	enum http_method method;
	const char *method_str;  size_t method_len;
	const char *target;      size_t target_len;  /* origin-form: "/path?query" */
	int minor_version;                              /* 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t num_headers;
	/* Derived from the headers: */
	long long content_length;  /* -1 when absent */
	int keep_alive;            /* 1.1 default on, 1.0 default off; Connection header overrides */
	int has_host;
	int expect_continue;       /* "Expect: 100-continue" */
};

/* Parses one request head from buf[0..len). Stateless: after each read the
 * caller calls again from the start of the buffer with the grown length.
 * Never reads buf[len] or beyond. Syntax errors are reported at the first
 * offending byte, header meaning (Content-Length, Host, ...) is checked once
 * the head is complete, in the order 400, 411, 413; so once a prefix is
 * rejected every longer input gets the same status.
 * Returns > 0: bytes consumed by the head (the body, if any, follows);
 *         0: incomplete, feed more bytes (the caller enforces no size limit:
 *            the parser itself returns -431/-414 once the limits are passed);
 *       < 0: minus the HTTP status to answer before closing:
 *            -400 malformed: not "METHOD SP /target SP HTTP/d.d CRLF" with single
 *                 spaces (also a leading empty line, HTTP/0.9 "GET /", and the
 *                 HTTP/2 preface "PRI * HTTP/2.0", whose '*' target fails first),
 *                 target not origin-form or not printable ASCII, bare CR or LF,
 *                 control bytes (HTAB is allowed in header values only),
 *                 obs-fold, empty header name or space before ':',
 *                 bad or repeated Content-Length, Content-Length together with
 *                 Transfer-Encoding, repeated Host, missing Host on HTTP/1.1;
 *            -411 Transfer-Encoding of any kind (chunked or not): send a
 *                 Content-Length instead;
 *            -413 Content-Length above HTTP_MAX_BODY (also numbers too big
 *                 to represent);
 *            -414 target longer than HTTP_MAX_URI;
 *            -431 head longer than HTTP_MAX_HEAD or more than HTTP_MAX_HEADERS;
 *            -505 "HTTP/d.d" other than 1.0 and 1.1.
 * *req is filled as parsing goes; only a return > 0 leaves it complete.
 * Each call costs O(head bytes). Against a client that trickles one byte per
 * packet the caller may skip calls until the new bytes contain '\n' or len
 * reaches HTTP_MAX_HEAD: a head only completes at a '\n', and skipping merely
 * delays an error to the next line end. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* Case-insensitive header lookup; NULL when absent. */
const struct http_header *http_find_header(const struct http_request *req,
					   const char *name);

/* Splits the target at the first '?' into path and query (without the '?'),
 * no decoding. Without a '?', query points at target+len and query_len is 0. */
void http_split_target(const char *target, size_t len,
		       const char **path, size_t *path_len,
		       const char **query, size_t *query_len);

/* Finds the first '&'-separated parameter whose raw (undecoded) key equals
 * `name` exactly. Returns 1 and sets value/value_len (raw; empty for "key" or
 * "key=") when present, 0 otherwise. query may be NULL when query_len is 0. */
int http_query_param(const char *query, size_t query_len, const char *name,
		     const char **value, size_t *value_len);

/* Percent-decodes src into dst (cap bytes). Returns decoded length, or -1 on
 * a malformed escape, a decoded NUL, or overflow. '+' is left as is. */
long http_percent_decode(const char *src, size_t len, char *dst, size_t cap);

#endif
