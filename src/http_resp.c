#include "http_resp.h"

#include <string.h>
#include <time.h>

#include "clock.h"
#include "http_status.h"

/* "Date: Thu, 26 Nov 2026 18:46:38 GMT\r\n", rebuilt at most once a second. */
static char date_line[64];
static size_t date_len;
static time_t date_secs = -1;

void http_resp_set_time(uint64_t unix_ms)
{
	time_t secs = (time_t)(unix_ms / 1000);
	if (secs == date_secs)
		return;
	memcpy(date_line, "Date: ", 6);
	date_len = 6 + clock_http_date(unix_ms, date_line + 6);
	memcpy(date_line + date_len, "\r\n", 2);
	date_len += 2;
	date_secs = secs;
}

void http_resp_write(struct buf *out, int status, const struct http_resp_opts *o,
		     const char *body, size_t body_len)
{
	char code[4] = { (char)('0' + status / 100), (char)('0' + status / 10 % 10),
			 (char)('0' + status % 10), ' ' };
	if (buf_reserve(out, 256 + body_len) != 0)
		return;
	buf_append(out, "HTTP/1.1 ", 9);
	buf_append(out, code, 4);
	buf_puts(out, http_reason(status));
	buf_append(out, "\r\nServer: shardid\r\n", 19);
	if (date_secs < 0)
		http_resp_set_time((uint64_t)time(NULL) * 1000);
	buf_append(out, date_line, date_len);
	buf_append(out, "Content-Type: ", 14);
	buf_puts(out, o->content_type ? o->content_type : "application/json");
	buf_append(out, "\r\nContent-Length: ", 18);
	buf_u64(out, body_len);
	buf_append(out, "\r\n", 2);
	if (!o->keep_alive)
		buf_append(out, "Connection: close\r\n", 19);
	else if (o->http10)
		buf_append(out, "Connection: keep-alive\r\n", 24);
	if (o->extra_headers)
		buf_puts(out, o->extra_headers);
	buf_append(out, "\r\n", 2);
	if (!o->head_only)
		buf_append(out, body, body_len);
}
