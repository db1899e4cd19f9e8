#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
	int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n > 0 && n < 32)
		snprintf(out + n, 32 - (size_t)n, with_ms ? ".%03uZ" : "Z", (unsigned)(unix_ms % 1000));
}

void clock_iso8601(uint64_t unix_ms, char out[32])
{
	clock_iso8601_prec(unix_ms, 1, out);
}
