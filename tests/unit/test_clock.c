/* Clock formatting: the HTTP Date (checked against the C library's
 * strftime over four centuries of instants, leap days and year ends
 * included) and the ISO 8601 forms the API and the logs use. */
#include "check.h"
#include "clock.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

/* 1 when clock_http_date agrees with strftime at unix_ms. */
static int same_as_strftime(uint64_t unix_ms)
{
	char got[CLOCK_HTTP_DATE_LEN + 1], want[64];
	memset(got, 'X', sizeof got);
	size_t n = clock_http_date(unix_ms, got);
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t wn = strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (n == CLOCK_HTTP_DATE_LEN && wn == n && memcmp(got, want, n) == 0 && got[n] == '\0')
		return 1;
	fprintf(stderr, "  at %llu ms: got \"%.*s\", strftime says \"%s\"\n",
		(unsigned long long)unix_ms, (int)n, got, want);
	return 0;
}

static void test_http_date(void)
{
	/* RFC 9110's own example. */
	char out[CLOCK_HTTP_DATE_LEN + 1];
	CHECK_STR(out, clock_http_date(784111777000ull, out), "Sun, 06 Nov 1994 08:49:37 GMT");
	static const uint64_t fixed[] = {
		0, 999, 1000, 951782400000ull /* 2000-02-29 */, 4107542399000ull /* 2100-02-28 23:59:59 */,
		1795719414940ull, 2147483647000ull, 2147483648000ull, 253402300799000ull /* 9999-12-31 */,
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		CHECK(same_as_strftime(fixed[i]));
	/* Every day from 1970 to 2400 at a varying time of day. */
	uint64_t differ = 0;
	for (uint64_t day = 0; day < 157000; day++)
		differ += !same_as_strftime(day * 86400000ull + (day * 7919 % 86400) * 1000 + day % 1000);
	CHECK_EQ_U64(differ, 0);
}

static void test_iso8601(void)
{
	char out[32];
	clock_iso8601(1795719414940ull, out);
	CHECK(strcmp(out, "2026-11-26T18:56:54.940Z") == 0);
	clock_iso8601_prec(1795719414940ull, 0, out);
	CHECK(strcmp(out, "2026-11-26T18:56:54Z") == 0);
	clock_iso8601(0, out);
	CHECK(strcmp(out, "1970-01-01T00:00:00.000Z") == 0);
	clock_iso8601(951782400001ull, out);
	CHECK(strcmp(out, "2000-02-29T00:00:00.001Z") == 0);
}

/* The parser is the formatter's inverse, every day from 1970 to 2400 and at
 * second and millisecond edges; malformed and impossible dates fail. */
static void test_parse_iso8601(void)
{
	char out[32];
	uint64_t ms;
	int ok = 1;
	for (uint64_t day = 0; day < 157000; day++) {
		uint64_t t = day * 86400000 + (day * 7919 % 86400000);
		clock_iso8601(t, out);
		ok &= clock_parse_iso8601(out, strlen(out), &ms) == 0 && ms == t;
		clock_iso8601_prec(t, 0, out);
		ok &= clock_parse_iso8601(out, strlen(out), &ms) == 0 && ms == t / 1000 * 1000;
	}
	CHECK(ok);
	CHECK(clock_parse_iso8601("2022-01-01T00:00:00Z", 20, &ms) == 0 && ms == 1640995200000ull);
	CHECK(clock_parse_iso8601("2022-01-01T00:00:00.5Z", 22, &ms) == 0 && ms == 1640995200500ull);
	CHECK(clock_parse_iso8601("2024-02-29T23:59:59.999Z", 24, &ms) == 0 && ms == 1709251199999ull);
	static const char *const bad[] = {
		"2023-02-29T00:00:00Z", "2022-13-01T00:00:00Z", "2022-00-01T00:00:00Z",
		"2022-04-31T00:00:00Z", "2022-01-01T24:00:00Z", "2022-01-01T00:60:00Z",
		"2022-01-01T00:00:60Z", "2022-01-01T00:00:00", "2022-01-01 00:00:00Z",
		"2022-01-01T00:00:00.Z", "2022-01-01T00:00:00.1234Z", "1969-12-31T23:59:59Z",
		"2022-1-01T00:00:00Z", "+022-01-01T00:00:00Z", "2022-01-01T00:00:0aZ", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = clock_parse_iso8601(bad[i], strlen(bad[i]), &ms);
		CHECK(rc == -1);
		if (rc != -1)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
	}
}

int main(void)
{
	test_http_date();
	test_parse_iso8601();
	test_iso8601();
	return check_summary("clock");
}
