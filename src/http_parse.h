/* Pure incremental HTTP/1.x request-head parser: no allocation, no I/O.
 * Everything it reports points into the caller's buffer. */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H
#include <stddef.h>

#define HTTP_MAX_HEAD     8192   /* request line + headers (431 beyond) */
#define HTTP_MAX_URI      2048   /* request target (414 beyond) */
#define HTTP_MAX_BODY     16384  /* Content-Length limit (413 beyond) */
#define HTTP_MAX_HEADERS  64     /* header count (431 beyond) */

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

/* Parses one request head from buf[0..len).
 * Returns > 0: bytes consumed by the head (the body, if any, follows);
 *         0: incomplete, feed more bytes (caller enforces nothing: the parser
 *            itself returns -431/-414 once len exceeds the limits);
 *       < 0: minus the HTTP status to answer before closing:
 *            -400 malformed (bare CR/LF, control bytes, obs-fold, bad or duplicate
 *                 Content-Length, Content-Length with Transfer-Encoding,
 *                 missing Host on 1.1, non-origin-form target, ...),
 *            -411 Transfer-Encoding (chunked bodies are not accepted),
 *            -413 Content-Length above HTTP_MAX_BODY,
 *            -414 target longer than HTTP_MAX_URI,
 *            -431 head longer than HTTP_MAX_HEAD or too many headers,
 *            -501 Transfer-Encoding other than chunked? (see .c) ,
 *            -505 HTTP version other than 1.0/1.1. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* Case-insensitive header lookup; NULL when absent. */
const struct http_header *http_find_header(const struct http_request *req,
					   const char *name);

/* Splits the target into path and query (no decoding). */
void http_split_target(const char *target, size_t len,
		       const char **path, size_t *path_len,
		       const char **query, size_t *query_len);

/* Finds query parameter `name` (raw, not decoded) in a query string.
 * Returns 1 and sets value/value_len when present, 0 otherwise. */
int http_query_param(const char *query, size_t query_len, const char *name,
		     const char **value, size_t *value_len);

/* Percent-decodes src into dst (cap bytes). Returns decoded length, or -1 on
 * a malformed escape, a decoded NUL, or overflow. '+' is left as is. */
long http_percent_decode(const char *src, size_t len, char *dst, size_t cap);

#endif
