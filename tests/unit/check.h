/* Minimal test harness: CHECK records a pass or a failure with its location;
 * check_summary() prints "N passed, N failed" and returns the exit code. */
#ifndef CHECK_H
#define CHECK_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Parser inputs are placed flush against a PROT_NONE page, so reading one
 * byte past the end crashes instead of passing silently. */
static char *check_edge;
static size_t check_edge_room;

static inline void check_edge_init(size_t room)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t data = (room + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	char *m = mmap(NULL, data + (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m + data, (size_t)pg, PROT_NONE) != 0) {
		perror("mmap guard page");
		exit(1);
	}
	check_edge = m + data;
	check_edge_room = room;
}

/* Copies s[0..n) to end right at the guard page and returns the copy. */
static inline const char *check_at_edge(const char *s, size_t n)
{
	if (n > check_edge_room)
		abort();
	memmove(check_edge - n, s, n);
	return check_edge - n;
}

/* A deterministic pseudo-random number in [0, n) (xorshift64): the
 * randomised tests repeat exactly. */
static inline uint64_t check_rnd(uint64_t n)
{
	static uint64_t x = 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x % n;
}

static int check_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
