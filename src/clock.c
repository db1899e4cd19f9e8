#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fmt.h"

#ifdef SHARDID_TEST_HOOKS
/* Re-reads the offset only when the file changes, so tests can move the clock
 * of a running server. */
static int64_t test_offset_ms(void)
{
	static int64_t offset;
	static struct timespec seen;
	const char *path = getenv("SHARDID_TEST_CLOCK_OFFSET_FILE");
	struct stat st;
	if (!path || stat(path, &st) != 0)
		return offset;
	if (st.st_mtim.tv_sec != seen.tv_sec || st.st_mtim.tv_nsec != seen.tv_nsec) {
		FILE *f = fopen(path, "r");
		long long v;
		if (f && fscanf(f, "%lld", &v) == 1)
			offset = v;
		if (f)
			fclose(f);
		seen = st.st_mtim;
	}
	return offset;
}
#endif

uint64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#ifdef SHARDID_TEST_HOOKS
	ms += test_offset_ms();
#endif
	return ms < 0 ? 0 : (uint64_t)ms;
}

uint64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_sleep_to_next_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct timespec d = { 0, 1000000 - ts.tv_nsec % 1000000 };
	nanosleep(&d, NULL);
	return clock_wall_ms();
}

void clock_iso8601_prec(uint64_t unix_ms, int with_ms, char out[32])
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		memset(&tm, 0, sizeof tm);
	int n = fmt_snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n > 0 && n < 32)
		fmt_snprintf(out + n, 32 - (size_t)n, with_ms ? ".%03uZ" : "Z", (unsigned)(unix_ms % 1000));
}

void clock_iso8601(uint64_t unix_ms, char out[32])
{
	clock_iso8601_prec(unix_ms, 1, out);
}

size_t clock_http_date(uint64_t unix_ms, char out[CLOCK_HTTP_DATE_LEN + 1])
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999)
		memset(&tm, 0, sizeof tm);   /* never reached by a real clock */
	int year = tm.tm_year + 1900;
	/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate), without
	 * strftime, which would bring in the C library's locale machinery. */
	memcpy(out, days + 3 * tm.tm_wday, 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = (char)('0' + tm.tm_mday / 10);
	out[6] = (char)('0' + tm.tm_mday % 10);
	out[7] = ' ';
	memcpy(out + 8, months + 3 * tm.tm_mon, 3);
	out[11] = ' ';
	out[12] = (char)('0' + year / 1000);
	out[13] = (char)('0' + year / 100 % 10);
	out[14] = (char)('0' + year / 10 % 10);
	out[15] = (char)('0' + year % 10);
	out[16] = ' ';
	out[17] = (char)('0' + tm.tm_hour / 10);
	out[18] = (char)('0' + tm.tm_hour % 10);
	out[19] = ':';
	out[20] = (char)('0' + tm.tm_min / 10);
	out[21] = (char)('0' + tm.tm_min % 10);
	out[22] = ':';
	out[23] = (char)('0' + tm.tm_sec / 10);
	out[24] = (char)('0' + tm.tm_sec % 10);
	memcpy(out + 25, " GMT", 5);
	return CLOCK_HTTP_DATE_LEN;
}

/* Reads n digits at s; -1 if any is not one. */
static long digits(const char *s, int n)
{
	long v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int clock_parse_iso8601(const char *s, size_t n, uint64_t *unix_ms)
{
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (n < 20 || n > 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[n - 1] != 'Z' || (n > 20 && (s[19] != '.' || n == 21)))
		return -1;
	long y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	long h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	long frac = n > 21 ? digits(s + 20, (int)n - 21) : 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 59 || frac < 0 || mi < 0 || h < 0 || sec < 0)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	for (int i = (int)n - 21; i < 3; i++)
		frac *= 10;
	/* Days from 1970-01-01 (the civil-from-days inverse, March-based years). */
	long yy = y - (mo <= 2), era = yy / 400, yoe = yy - era * 400;
	long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*unix_ms = ((uint64_t)days * 86400 + (uint64_t)(h * 3600 + mi * 60 + sec)) * 1000 + (uint64_t)frac;
	return 0;
}
