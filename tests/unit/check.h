/* Minimal test harness: CHECK records a pass or a failure with its location;
 * check_summary() prints "N passed, N failed" and returns the exit code. */
#ifndef CHECK_H
#define CHECK_H
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ_U64(a, b) do { \
	unsigned long long a_ = (a), b_ = (b); \
	if (a_ == b_) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: %s == %llu, expected %s == %llu\n", \
		__FILE__, __LINE__, #a, a_, #b, b_); } \
} while (0)

#define CHECK_STR(got, got_len, want) do { \
	size_t gl_ = (got_len); const char *w_ = (want); \
	if (gl_ == strlen(w_) && memcmp((got), w_, gl_) == 0) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: got \"%.*s\", expected \"%s\"\n", \
		__FILE__, __LINE__, (int)gl_, (const char *)(got), w_); } \
} while (0)

static int check_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
