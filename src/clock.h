/* The process's only clock readings. Test builds (SHARDID_TEST_HOOKS) add an
 * offset read from the file named by SHARDID_TEST_CLOCK_OFFSET_FILE, so tests
 * can step the wall clock backwards; release builds have no such hook. */
#ifndef CLOCK_H
#define CLOCK_H
#include <stddef.h>
#include <stdint.h>

uint64_t clock_wall_ms(void);   /* Unix time in ms */
uint64_t clock_mono_ms(void);   /* monotonic ms, for timeouts */
uint64_t clock_mono_ns(void);   /* monotonic ns, for durations */
/* Sleeps until the wall clock reaches the next whole millisecond; returns it. */
uint64_t clock_sleep_to_next_ms(void);
/* Formats Unix ms as ISO-8601 UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes
 * incl. NUL), or without ".mmm" when with_ms is 0. Years past 9999 take
 * more digits. The only such formatter: logs, config and API share it. */
void clock_iso8601_prec(uint64_t unix_ms, int with_ms, char out[32]);
void clock_iso8601(uint64_t unix_ms, char out[32]);   /* with ms */
/* Parses "YYYY-MM-DDTHH:MM:SS[.f{1,3}]Z" (UTC, years 1970..9999) into Unix
 * ms. 0 ok, -1 not such a time. */
int clock_parse_iso8601(const char *s, size_t n, uint64_t *unix_ms);
/* "Thu, 26 Nov 2026 18:46:38 GMT", the HTTP Date format; returns its length
 * (out is NUL-terminated). */
#define CLOCK_HTTP_DATE_LEN 29
size_t clock_http_date(uint64_t unix_ms, char out[CLOCK_HTTP_DATE_LEN + 1]);

#endif
