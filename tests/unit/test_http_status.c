/* Unit tests for http_status.c: the table (each code once, 200 in slot 0,
 * reasons), http_status_slot and http_reason for known and unknown codes,
 * the protocol-error messages (one for every status the parser returns,
 * quoting http_parse.h's limits), the status line http_resp_write takes
 * from the table, and metrics_request's slot per status. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http_parse.h"
#include "http_resp.h"
#include "http_status.h"
#include "metrics.h"

static void test_table(void)
{
	CHECK(http_statuses[0].code == 200);
	CHECK(strcmp(http_statuses[0].reason, "OK") == 0);
	for (int i = 0; i < HTTP_STATUS_COUNT; i++) {
		const struct http_status *s = &http_statuses[i];
		CHECK(s->code >= 100 && s->code <= 599);
		CHECK(s->reason && s->reason[0]);
		CHECK(s->message != NULL);
		int seen = 0;
		for (int j = 0; j < HTTP_STATUS_COUNT; j++)
			seen += http_statuses[j].code == s->code;
		if (seen != 1)
			fprintf(stderr, "status %d appears %d times\n", s->code, seen);
		CHECK(seen == 1);
		CHECK(http_status_slot(s->code) == i);
		CHECK(http_reason(s->code) == s->reason);
	}

	/* Reason phrases of RFC 9110, written out here independently. */
	static const struct { int code; const char *reason; } rfc[] = {
		{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 411, "Length Required" }, { 413, "Content Too Large" },
		{ 414, "URI Too Long" }, { 417, "Expectation Failed" },
		{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};
	CHECK(sizeof rfc / sizeof rfc[0] == HTTP_STATUS_COUNT);
	for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
		CHECK(http_status_slot(rfc[i].code) >= 0);
		if (strcmp(http_reason(rfc[i].code), rfc[i].reason) != 0)
			fprintf(stderr, "reason of %d: \"%s\", expected \"%s\"\n", rfc[i].code,
				http_reason(rfc[i].code), rfc[i].reason);
		CHECK(strcmp(http_reason(rfc[i].code), rfc[i].reason) == 0);
	}

	/* Codes outside the table. */
	static const int unknown[] = { 0, -1, -200, 1, 99, 199, 202, 299, 302, 402, 418, 451, 502, 599, 600, 1000 };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		CHECK(http_status_slot(unknown[i]) == -1);
		CHECK(strcmp(http_reason(unknown[i]), "Unknown") == 0);
	}
	/* Every code from 0 to 999 is either in the table or Unknown. */
	int found = 0;
	for (int code = 0; code < 1000; code++) {
		int slot = http_status_slot(code);
		if (slot >= 0) {
			found++;
			CHECK(http_statuses[slot].code == code);
		}
	}
	CHECK(found == HTTP_STATUS_COUNT);

	/* Every status the API and the connection answer with is in the table. */
	static const int answered[] = { 100, 200, 201, 400, 401, 403, 404, 405, 408, 409, 503 };
	for (size_t i = 0; i < sizeof answered / sizeof answered[0]; i++)
		CHECK(http_status_slot(answered[i]) >= 0);
}

static int has_message(int code)
{
	int slot = http_status_slot(code);
	return slot >= 0 && http_statuses[slot].message[0] != '\0';
}

/* One input per status the parser rejects with, so the list below is one
 * the parser really produces. */
static void test_parser_statuses(void)
{
	static char big[HTTP_MAX_HEAD + 256];
	struct http_request req;
	int rc;
	const char *bad = "GET  / HTTP/1.1\r\nHost: a\r\n\r\n";
	rc = http_parse_request(bad, strlen(bad), &req);
	CHECK(rc == -400);
	const char *te = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	rc = http_parse_request(te, strlen(te), &req);
	CHECK(rc == -411);
	int n = snprintf(big, sizeof big, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
			 HTTP_MAX_BODY + 1);
	rc = http_parse_request(big, (size_t)n, &req);
	CHECK(rc == -413);
	n = snprintf(big, sizeof big, "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_MAX_URI, 0);
	rc = http_parse_request(big, (size_t)n, &req);
	CHECK(rc == -414);
	n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += snprintf(big + n, sizeof big - (size_t)n, "X-%d: v\r\n", i);
	n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
	rc = http_parse_request(big, (size_t)n, &req);
	CHECK(rc == -431);
	const char *v2 = "GET / HTTP/2.0\r\nHost: a\r\n\r\n";
	rc = http_parse_request(v2, strlen(v2), &req);
	CHECK(rc == -505);

	/* Each has a message; so has 408, which the connection answers. */
	static const int rejected[] = { 400, 408, 411, 413, 414, 431, 505 };
	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
		if (!has_message(rejected[i]))
			fprintf(stderr, "status %d has no message\n", rejected[i]);
		CHECK(has_message(rejected[i]));
	}

	/* And any other -4xx/-5xx the parser's source mentions (run from the
	 * repository root, as `make unit` does; skipped elsewhere). */
	FILE *f = fopen("src/http_parse.c", "r");
	if (!f) {
		fprintf(stderr, "note: src/http_parse.c not found; source scan skipped\n");
		return;
	}
	char line[512];
	int codes = 0;
	while (fgets(line, sizeof line, f)) {
		for (char *p = line; (p = strchr(p, '-')) != NULL; p++) {
			if (p > line && p[-1] != ' ' && p[-1] != '(')
				continue;
			if ((p[1] != '4' && p[1] != '5') || p[2] < '0' || p[2] > '9' ||
			    p[3] < '0' || p[3] > '9' || (p[4] >= '0' && p[4] <= '9'))
				continue;
			int code = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
			codes++;
			if (!has_message(code))
				fprintf(stderr, "http_parse.c returns -%d, which has no message\n", code);
			CHECK(has_message(code));
		}
	}
	fclose(f);
	CHECK(codes >= 6);
}

/* The messages quote the limits of http_parse.h, computed here from them. */
static void expect_in_message(int code, const char *fmt, int value)
{
	char want[64];
	snprintf(want, sizeof want, fmt, value);
	int slot = http_status_slot(code);
	CHECK(slot >= 0);
	if (slot < 0)
		return;
	if (!strstr(http_statuses[slot].message, want))
		fprintf(stderr, "message of %d \"%s\" lacks \"%s\"\n", code, http_statuses[slot].message, want);
	CHECK(strstr(http_statuses[slot].message, want) != NULL);
}

static void test_messages(void)
{
	expect_in_message(413, " %d KiB", HTTP_MAX_BODY / 1024);
	expect_in_message(414, " %d KiB", HTTP_MAX_URI / 1024);
	expect_in_message(431, " %d KiB", HTTP_MAX_HEAD / 1024);
	expect_in_message(431, " %d headers", HTTP_MAX_HEADERS);
	expect_in_message(408, " %d s", HTTP_HEAD_TIMEOUT_MS / 1000);
	expect_in_message(505, "HTTP/1.%d", 0);
	expect_in_message(505, "HTTP/1.%d", 1);
	int s411 = http_status_slot(411);
	CHECK(s411 >= 0 && strstr(http_statuses[s411].message, "Content-Length") != NULL);
	/* Statuses the application explains itself carry no table message. */
	CHECK(!has_message(200));
	CHECK(!has_message(404));
	CHECK(!has_message(503));
}

/* The status line of a response comes from the table. */
static void test_status_line(void)
{
	struct buf out;
	struct http_resp_opts o = { .keep_alive = 1 };
	http_resp_set_time(0);
	buf_init(&out);
	for (int i = 0; i < HTTP_STATUS_COUNT; i++) {
		char want[80];
		int n = snprintf(want, sizeof want, "HTTP/1.1 %d %s\r\n", http_statuses[i].code,
				 http_statuses[i].reason);
		out.len = 0;
		http_resp_write(&out, http_statuses[i].code, &o, "", 0);
		CHECK(out.len > (size_t)n && memcmp(out.data, want, (size_t)n) == 0);
	}
	out.len = 0;
	http_resp_write(&out, 299, &o, "", 0);
	CHECK(out.len > 21 && memcmp(out.data, "HTTP/1.1 299 Unknown\r\n", 22) == 0);
	buf_free(&out);
}

static void test_metrics(void)
{
	static struct metrics before;
	memset(&metrics, 0, sizeof metrics);
	metrics_request(ROUTE_LIST, 200);
	CHECK_EQ_U64(metrics.requests[ROUTE_LIST][0], 1);
	metrics_request(ROUTE_LIST, 200);
	CHECK_EQ_U64(metrics.requests[ROUTE_LIST][0], 2);

	/* Each status lands in its own slot, and nowhere else. */
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (int i = 0; i < HTTP_STATUS_COUNT; i++) {
			before = metrics;
			metrics_request((enum route_id)r, http_statuses[i].code);
			CHECK_EQ_U64(metrics.requests[r][i], before.requests[r][i] + 1);
			before.requests[r][i]++;
			CHECK(memcmp(&before, &metrics, sizeof metrics) == 0);
		}
	}
	/* Unknown codes share the "other" slot. */
	static const int unknown[] = { 299, 418, 0, 999 };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		before = metrics;
		metrics_request(ROUTE_UNMATCHED, unknown[i]);
		CHECK_EQ_U64(metrics.requests[ROUTE_UNMATCHED][HTTP_STATUS_COUNT],
			     before.requests[ROUTE_UNMATCHED][HTTP_STATUS_COUNT] + 1);
		before.requests[ROUTE_UNMATCHED][HTTP_STATUS_COUNT]++;
		CHECK(memcmp(&before, &metrics, sizeof metrics) == 0);
	}
	CHECK_EQ_U64(metrics.requests[ROUTE_UNMATCHED][HTTP_STATUS_COUNT], 4);
	CHECK_EQ_U64(metrics.requests[ROUTE_LIST][http_status_slot(404)], 1);

	/* The rendering labels the slots with their codes, and "other". */
	struct buf out;
	buf_init(&out);
	struct metrics_extra none = { 0 };
	metrics_render(&out, &none);
	CHECK(!out.failed);
	char *text = strndup(out.data, out.len);
	CHECK(strstr(text, "shardid_requests_total{route=\"/api/list\",status=\"200\"} 3\n") != NULL);
	CHECK(strstr(text, "shardid_requests_total{route=\"/api/list\",status=\"404\"} 1\n") != NULL);
	CHECK(strstr(text, "shardid_requests_total{route=\"unmatched\",status=\"other\"} 4\n") != NULL);
	CHECK(strstr(text, "shardid_requests_total{route=\"unmatched\",status=\"413\"} 1\n") != NULL);
	free(text);
	buf_free(&out);
}

/* The duration histogram: requests of one iteration timed together at its
 * end, a parked one on its own; buckets rendered cumulatively. */
static void test_durations(void)
{
	memset(&metrics, 0, sizeof metrics);
	for (int i = 0; i < 3; i++)
		metrics_duration(ROUTE_NEXT_ID, 1000, 1000);      /* read in this iteration */
	CHECK_EQ_U64(metrics.duration_pending[ROUTE_NEXT_ID], 3);
	metrics_duration(ROUTE_NEXT_ID, 1000, 2001000);       /* parked 2 ms */
	metrics_duration_flush(31000);                        /* the iteration took 30 us */
	CHECK_EQ_U64(metrics.duration_pending_routes, 0);
	CHECK_EQ_U64(metrics.duration[ROUTE_NEXT_ID][1], 3);  /* le 50 us */
	CHECK_EQ_U64(metrics.duration[ROUTE_NEXT_ID][6], 1);  /* le 2.5 ms */
	metrics_duration_flush(99999999);                     /* nothing pending: no change */
	CHECK_EQ_U64(metrics.duration_sum_ns[ROUTE_NEXT_ID], 3 * 30000 + 2000000);
	metrics_duration_observe(ROUTE_NEXT_ID, 5000000000ull);  /* 5 s: only +Inf */
	struct buf out;
	buf_init(&out);
	struct metrics_extra none = { 0 };
	metrics_render(&out, &none);
	char *text = strndup(out.data, out.len);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_bucket{route=\"/api/next-id\",le=\"0.000025\"} 0\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_bucket{route=\"/api/next-id\",le=\"0.00005\"} 3\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_bucket{route=\"/api/next-id\",le=\"0.0025\"} 4\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_bucket{route=\"/api/next-id\",le=\"1\"} 4\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_bucket{route=\"/api/next-id\",le=\"+Inf\"} 5\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_sum{route=\"/api/next-id\"} 5.002090000\n") != NULL);
	CHECK(strstr(text, "\nshardid_request_duration_seconds_count{route=\"/api/next-id\"} 5\n") != NULL);
	CHECK(strstr(text, "route=\"/api/list\",le=") == NULL);   /* untimed routes are left out */
	free(text);
	buf_free(&out);
}

int main(void)
{
	test_table();
	test_parser_statuses();
	test_messages();
	test_status_line();
	test_metrics();
	test_durations();
	return check_summary("http_status");
}
