/* libFuzzer target for the response parser in http_response.c. Besides crashes
 * and sanitizer reports it checks the contract: results are known codes and
 * bounded, header pointers stay inside the input, a prefix never disagrees
 * with the whole input (stateless re-parsing after each read), the body never
 * exceeds the cap, and the chunked decoder gives the same bytes in place as
 * into a separate buffer.
 * fuzz-src: src/http_response.c src/http_lex.c */
#include "http_response.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

static int known(long r)
{
	return r == HTTP_RESP_MORE || r == HTTP_RESP_BAD || r == HTTP_RESP_TOO_BIG ||
	       r == HTTP_RESP_TRUNCATED;
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p + n <= buf + len;
}

static char body[HTTP_CLIENT_MAX_RESPONSE + 1];
static char copy[HTTP_CLIENT_MAX_RESPONSE + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_response res;
	const char *buf = (const char *)data;
	size_t blen, cap = size % 97 + 1;   /* small caps reach TOO_BIG too */
	int head_req = size % 5 == 0;

	for (int eof = 0; eof <= 1; eof++) {
		long r = http_read_response(buf, size, eof, head_req, &res, body, sizeof body - 1, &blen);
		MUST(r > 0 ? (size_t)r <= size : known(r));
		if (r > 0) {
			MUST(res.status >= 200 && res.status <= 999);
			MUST(res.minor_version == 0 || res.minor_version == 1);
			MUST(res.num_headers <= HTTP_CLIENT_MAX_HEADERS);
			MUST(inside(res.reason, res.reason_len, buf, (size_t)r));
			for (size_t i = 0; i < res.num_headers; i++) {
				MUST(res.headers[i].name_len > 0);
				MUST(inside(res.headers[i].name, res.headers[i].name_len, buf, (size_t)r));
				MUST(inside(res.headers[i].value, res.headers[i].value_len, buf, (size_t)r));
			}
			MUST(blen <= (size_t)r);
			/* The same response with a smaller cap fits or is too big. */
			long rc = http_read_response(buf, size, eof, head_req, &res, copy, cap, &blen);
			MUST(rc == r || rc == HTTP_RESP_TOO_BIG);
		}
		if (!eof) {
			/* A prefix asks for more or agrees (errors included). */
			long rp = http_read_response(buf, size / 2, 0, head_req, &res, body, sizeof body - 1, &blen);
			MUST(rp == HTTP_RESP_MORE || rp == r);
		}
	}

	/* Head parser alone. */
	int h = http_parse_response(buf, size, &res);
	MUST(h > 0 ? (size_t)h <= size && h <= HTTP_CLIENT_MAX_HEAD : known(h));

	/* Chunked decoder on raw bytes: in place == separate buffer. */
	if (size <= HTTP_CLIENT_MAX_RESPONSE) {
		size_t n1 = 0, n2 = 0;
		long a = http_chunked_decode(buf, size, body, sizeof body - 1, &n1);
		memcpy(copy, buf, size);
		long b = http_chunked_decode(copy, size, copy, sizeof copy - 1, &n2);
		MUST(a == b);
		MUST(a > 0 ? (size_t)a <= size && n1 == n2 && n1 <= (size_t)a &&
			     memcmp(body, copy, n1) == 0 : known(a));
		if (a <= 0)
			MUST(memcmp(copy, buf, size) == 0);   /* untouched unless complete */
	}
	return 0;
}
