/* The client side of HTTP/1.1, pure: a stateless response parser
 * (status line, headers, Content-Length / chunked / close-delimited bodies)
 * over the caller's bytes. No I/O; the connection that feeds it is
 * http_client.c. */
#ifndef HTTP_RESPONSE_H
#define HTTP_RESPONSE_H
#include <stddef.h>
#include <stdint.h>
#include "http_parse.h"

#define HTTP_CLIENT_MAX_HEAD     16384  /* status line + headers */
#define HTTP_CLIENT_MAX_HEADERS  64
#define HTTP_CLIENT_MAX_RESPONSE 65536  /* whole response as received, unless max_response says more */

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

/* Header lookup in a parsed response, ignoring case on both sides (field
 * names are case-insensitive, RFC 9110 5.1). NULL when absent. */
const struct http_header *http_response_header(const struct http_response *res,
					       const char *name);

#endif
