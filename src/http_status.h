/* The one table of HTTP statuses this server answers: code, reason phrase,
 * and the message a protocol error carries. The response writer, the
 * metrics and the error bodies all read it, so a status added here is
 * written, counted and explained everywhere at once. */
#ifndef HTTP_STATUS_H
#define HTTP_STATUS_H

struct http_status {
	int code;
	const char *reason;
	const char *message;   /* for a request the server rejects before routing */
};

/* Index 0 is 200, the status nearly every response has. */
#define HTTP_STATUS_COUNT 20
extern const struct http_status http_statuses[HTTP_STATUS_COUNT];

/* The status's row, or -1 for a code not in the table. */
int http_status_slot(int code);
/* Its reason phrase; "Unknown" for a code not in the table. */
const char *http_reason(int code);

#endif
