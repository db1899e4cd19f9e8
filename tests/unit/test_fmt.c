/* fmt.c against the C library's own vsnprintf, byte for byte: every flag,
 * width, precision, length modifier and conversion fmt.c supports over edge
 * values, each at every buffer size from 0 to one past its length (the
 * buffer flush against a PROT_NONE page), the return values, and the same
 * text written to a file descriptor, interrupted writes included. */
#include "check.h"
#include "fmt.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>

static int cases;
static int scratch_fd;   /* fmt_vdprint's output, read back */
static char want[8192], ref[8192], back[8192];

/* Formats f with both libraries at every cap 0..len+1, and to a file. */
__attribute__((format(printf, 1, 2)))
static void same(const char *f, ...)
{
	va_list ap, a;
	va_start(ap, f);
	cases++;
	va_copy(a, ap);
	int wn = vsnprintf(want, sizeof want, f, a);
	va_end(a);
	if (wn < 0 || (size_t)wn >= sizeof want - 1) {
		fprintf(stderr, "format \"%s\": the reference printed %d bytes\n", f, wn);
		CHECK(0);
		va_end(ap);
		return;
	}
	int ok = 1;
	for (size_t cap = 0; cap <= (size_t)wn + 1 && ok; cap++) {
		char *out = check_edge - cap;
		memset(out, 0x5a, cap);
		memset(ref, 0x5a, cap);
		va_copy(a, ap);
		int n = fmt_vsnprintf(cap ? out : NULL, cap, f, a);
		va_end(a);
		va_copy(a, ap);
		vsnprintf(ref, cap, f, a);
		va_end(a);
		if (n != wn || memcmp(out, ref, cap) != 0) {
			fprintf(stderr, "format \"%s\" cap %zu: got %d \"%.*s\", expected %d \"%.*s\"\n",
				f, cap, n, (int)cap, out, wn, (int)cap, ref);
			ok = 0;
		}
	}

	if (ok) {
		if (lseek(scratch_fd, 0, SEEK_SET) != 0 || ftruncate(scratch_fd, 0) != 0)
			abort();
		va_copy(a, ap);
		int n = fmt_vdprint(scratch_fd, f, a);
		va_end(a);
		ssize_t r = pread(scratch_fd, back, sizeof back, 0);
		if (n != wn || r != wn || memcmp(back, want, (size_t)wn) != 0) {
			fprintf(stderr, "format \"%s\" to a file: got %d (%zd bytes) \"%.*s\", expected %d \"%s\"\n",
				f, n, r, r > 0 ? (int)r : 0, back, wn, want);
			ok = 0;
		}
	}
	CHECK(ok);
	va_end(ap);
}

/* Exact expected text, for what the C libraries do differently (%p). */
__attribute__((format(printf, 2, 3)))
static void is(const char *expect, const char *f, ...)
{
	char out[256];
	va_list ap;
	va_start(ap, f);
	int n = fmt_vsnprintf(out, sizeof out, f, ap);
	va_end(ap);
	cases++;
	if (n != (int)strlen(expect) || strcmp(out, expect) != 0)
		fprintf(stderr, "format \"%s\": got %d \"%s\", expected \"%s\"\n", f, n, out, expect);
	CHECK(n == (int)strlen(expect) && strcmp(out, expect) == 0);
}

static const uint64_t values[] = {
	0, 1, 7, 9, 10, 15, 16, 99, 100, 127, 128, 255, 256, 300, 4095, 32767, 32768,
	65535, 65536, 70000, 999999999, INT_MAX, (uint64_t)INT_MIN, UINT_MAX,
	(uint64_t)UINT_MAX + 1, 1234567890123ull, LLONG_MAX, (uint64_t)LLONG_MIN, UINT64_MAX,
	(uint64_t)-1, (uint64_t)-2, (uint64_t)-42, (uint64_t)-128, (uint64_t)-129,
	(uint64_t)-32768, 10000000000000000000ull,
};

enum { L_HH, L_H, L_INT, L_L, L_LL, L_Z, L_J, L_COUNT };
static const char *const len_text[] = { "hh", "h", "", "l", "ll", "z", "j" };

/* v passed as the type the modifier len and the conversion's signedness
 * want (char and short as int, as the caller's promotion would). */
static void one_int(const char *f, int len, int is_signed, uint64_t v)
{
	switch (len) {
	case L_HH:
	case L_H:
	case L_INT:
		if (is_signed)
			same(f, (int)v);
		else
			same(f, (unsigned)v);
		break;
	case L_L:
		if (is_signed)
			same(f, (long)v);
		else
			same(f, (unsigned long)v);
		break;
	case L_LL:
		if (is_signed)
			same(f, (long long)v);
		else
			same(f, (unsigned long long)v);
		break;
	case L_Z:
		if (is_signed)
			same(f, (ssize_t)v);
		else
			same(f, (size_t)v);
		break;
	case L_J:
		if (is_signed)
			same(f, (intmax_t)v);
		else
			same(f, (uintmax_t)v);
		break;
	}
}

static void test_integers(void)
{
	static const char *const flags[] = { "", "-", "0", "-0", "0-" };
	static const char *const widths[] = { "", "1", "2", "5", "22" };
	static const char *const precs[] = { "", ".", ".0", ".1", ".3", ".25" };
	static const char convs[] = "diuxX";
	for (size_t fl = 0; fl < sizeof flags / sizeof *flags; fl++)
		for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
			for (size_t p = 0; p < sizeof precs / sizeof *precs; p++)
				for (int len = 0; len < L_COUNT; len++)
					for (const char *c = convs; *c; c++) {
						char f[32];
						snprintf(f, sizeof f, "%%%s%s%s%s%c", flags[fl], widths[w],
							 precs[p], len_text[len], *c);
						for (size_t v = 0; v < sizeof values / sizeof *values; v++)
							one_int(f, len, *c == 'd' || *c == 'i', values[v]);
					}
	/* Text around, several in a row, '*' widths and precisions. */
	same("x=%d y=%u z=%x.", -5, 5u, 255u);
	same("%d%d%d", 1, -2, 3);
	same("[%*d]", 6, -42);
	same("[%*d]", -6, -42);
	same("[%-*d]", -6, 42);
	same("[%0*d]", 6, -42);
	same("[%.*d]", 4, 7);
	same("[%.*d]", 0, 0);
	same("[%.*d]", -1, 0);
	same("[%*.*d]", 8, 3, -7);
	same("[%*.*x]", -8, 3, 0xabu);
	same("[%0100d]", 1);
	same("[%0100llu]", ULLONG_MAX);
	same("[%-100lld]", LLONG_MIN);
	same("[%.100x]", 0xffu);
}

static void test_strings(void)
{
	static char long_s[3000];
	memset(long_s, 'L', sizeof long_s - 1);
	static const char *const strs[] = {
		"", "a", "hello", "exactly-eighteen-c", "a string of thirty characters!",
		"\xff\x01\x7f", "tab\tnew\nline", long_s + sizeof long_s - 1 - 600,
	};
	static const char *const flags[] = { "", "-" };
	static const char *const widths[] = { "", "1", "5", "10", "18", "26", "40" };
	static const char *const precs[] = { "", ".", ".0", ".1", ".5", ".18", ".40", ".64", ".200" };
	for (size_t s = 0; s < sizeof strs / sizeof *strs; s++) {
		for (size_t fl = 0; fl < sizeof flags / sizeof *flags; fl++)
			for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
				for (size_t p = 0; p < sizeof precs / sizeof *precs; p++) {
					char f[32];
					snprintf(f, sizeof f, "<%%%s%s%ss>", flags[fl], widths[w], precs[p]);
					same(f, strs[s]);
				}
		for (int w = -30; w <= 30; w += 6)
			for (int p = -2; p <= 40; p += 7) {
				same("%*s|", w, strs[s]);
				same("%.*s|", p, strs[s]);
				same("%*.*s|", w, p, strs[s]);
				same("%-*.*s|", w, p, strs[s]);
			}
	}
	same("%s", long_s);   /* more than fmt_vdprint's 512-byte buffer, many times over */
	same("%s%s%.*s", long_s + 1000, long_s + 2000, 700, long_s);
	same("  %-26s %-18s default %-10s %s\n", "--port NUM", "SERVICE_PORT", "7001", "the port");
	same("  %-26s %-18s default %-10s %s\n", "--consul-fail-open[=BOOL]", "CONSUL_FAIL_OPEN_X_Y_Z",
	     "a-longer-default", "");

	/* Precision stops reading: the bytes need no NUL, even at a page's end. */
	static const char unterminated[] = { 'a', 'b', 'c', 'd' };
	char *page_end = check_edge - sizeof unterminated;
	memcpy(page_end, unterminated, sizeof unterminated);
	char out[16];
	for (int p = 0; p <= 4; p++) {
		int n = fmt_snprintf(out, sizeof out, "[%.*s]", p, page_end);
		CHECK(n == p + 2 && out[0] == '[' && memcmp(out + 1, "abcd", (size_t)p) == 0 &&
		      out[p + 1] == ']' && out[p + 2] == '\0');
	}
	CHECK(fmt_snprintf(out, sizeof out, "[%.4s]", page_end) == 6 && strcmp(out, "[abcd]") == 0);
}

static void test_chars_and_percent(void)
{
	static const int chars[] = { 'a', ' ', '%', 0, 255, -1, 0x141 };
	static const char *const fmts[] = { "%c", "[%c]", "%3c|", "%-3c|", "%1c", "%c%c" };
	for (size_t c = 0; c < sizeof chars / sizeof *chars; c++)
		for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++)
			same(fmts[f], chars[c], 'z');
	same("[%*c]", -4, 'q');
	same("[%*c]", 4, 'q');
	same("%%");
	same("100%% done, %d%% left", 3);
	same("%%%s%%", "x");
	same("%%d");
	const char *volatile empty = "";
	same(empty, 0);
	same("no conversions at all");
}

/* What shardid's own formats look like (a sample of src/). */
static void test_shardid_formats(void)
{
	same("ts=%s level=%s ", "2026-01-02T03:04:05.678Z", "info");
	same("%04d-%02d-%02dT%02d:%02d:%02d", 2026, 1, 2, 3, 4, 5);
	same("%04d-%02d-%02dT%02d:%02d:%02d", 99999, 12, 31, 23, 59, 60);
	same("%04d-%02d-%02dT%02d:%02d:%02d", -1, 0, 0, 0, 0, 0);
	same(".%03uZ", 7u);
	same(".%03uZ", 999u);
	same("\\x%02x", 0x1fu);
	same("%03x", 0xabcu);
	same("%04X", 0xbeefu);
	same("%04X", 0x1u);
	same("%%%02X", 0x20u);
	same("custom layout '%.40s...' is %zu bytes long, at most %zu",
	     "0123456789012345678901234567890123456789012345678901234567890", (size_t)61, (size_t)200);
	same("unknown snowflake layout '%.64s': expected sonyflake", "twitter2");
	same("custom layout '%s': %s %.*s is out of range %llu..%llu", "x", "SEQ_BITS", 3, "99999",
	     1ull, 22ull);
	same("%ld\n", (long)getpid());
	same("records=%lu bytes=%zu", 123456789ul, (size_t)0);
	same("snowflakes continue from tick %llu of %s (%s), above", 18446744073709551615ull, "twitter",
	     "2106-02-07T06:28:15Z");
	same("%lld %lld", LLONG_MIN, LLONG_MAX);
}

static void test_pointers_and_unknown(void)
{
	/* glibc and musl print a null pointer differently: compared with text. */
	is("0x1234", "%p", (void *)0x1234);
	is("0xdeadbeef", "%p", (void *)0xdeadbeefUL);
	is("[    0x10]", "[%8p]", (void *)0x10);
	is("[0x10    ]", "[%-8p]", (void *)0x10);
	is("0x0", "%p", (void *)0);
	const char *volatile null = NULL;
	is("(null)", "%s", null);
	same("%p", (void *)0x1234);
	same("%20p|%-20p|", (void *)&cases, (void *)&cases);

	/* Unsupported conversions come out as written (the format is not a
	 * literal so that -Wformat lets the test ask). */
	const char *volatile f = "a%qb %5.2Wc %";
	char out[32];
	CHECK(fmt_snprintf(out, sizeof out, f, 0) == 13 && strcmp(out, "a%qb %5.2Wc %") == 0);
}

static void test_return_and_cap(void)
{
	char out[8];
	CHECK(fmt_snprintf(NULL, 0, "%s", "abc") == 3);
	CHECK(fmt_snprintf(out, 1, "%d", 12345) == 5 && out[0] == '\0');
	memset(out, 'x', sizeof out);
	CHECK(fmt_snprintf(out, 4, "%d", 12345) == 5 && strcmp(out, "123") == 0 && out[4] == 'x');
	/* Longer than INT_MAX: -1, like vsnprintf (EOVERFLOW). */
	const char *volatile f = "%*d%*d";   /* not a literal: gcc would see it overflow */
	CHECK(fmt_snprintf(out, sizeof out, f, INT_MAX, 1, INT_MAX, 1) == -1);
	CHECK(strlen(out) == sizeof out - 1);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void test_dprint(void)
{
	/* A failing write: -1. */
	CHECK(fmt_dprint(-1, "%s", "x") == -1 && errno == EBADF);
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	CHECK(fmt_dprint(p[1], "%d", 42) == -1 && errno == EPIPE);
	CHECK(fmt_dprint(p[1], "%s", "") == 0);   /* nothing to write: no write */
	close(p[1]);

	/* 2 x 100 KiB through a pipe a slow reader empties, while a timer
	 * interrupts the writes (EINTR): every byte arrives, in order. */
	static char big[100 * 1024 + 1];
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = (char)('a' + i % 26);
	CHECK(pipe(p) == 0);
	pid_t child = fork();
	if (child == 0) {
		close(p[1]);
		static char got[2 * sizeof big];
		size_t n = 0;
		ssize_t r;
		while (n < sizeof got && (r = read(p[0], got + n, sizeof got - n < 4096 ? sizeof got - n : 4096)) > 0) {
			n += (size_t)r;
			usleep(50);
		}
		int good = n == 2 * (sizeof big - 1) && memcmp(got, big, sizeof big - 1) == 0 &&
			   memcmp(got + sizeof big - 1, big, sizeof big - 1) == 0;
		_exit(good ? 0 : 1);
	}
	close(p[0]);
	struct sigaction sa = { 0 };
	sa.sa_handler = on_alarm;   /* no SA_RESTART: a blocked write returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	setitimer(ITIMER_REAL, &it, NULL);
	int n = fmt_dprint(p[1], "%s%s", big, big);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	close(p[1]);
	int status;
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(n == 2 * (int)(sizeof big - 1));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(alarms > 0);
}

int main(void)
{
	check_edge_init(8192);
	FILE *tmp = tmpfile();
	if (!tmp) {
		perror("tmpfile");
		return 1;
	}
	scratch_fd = fileno(tmp);
	test_integers();
	test_strings();
	test_chars_and_percent();
	test_shardid_formats();
	test_pointers_and_unknown();
	test_return_and_cap();
	test_dprint();
	fprintf(stderr, "fmt: %d cases against the C library's vsnprintf\n", cases);
	fclose(tmp);
	return check_summary("fmt");
}
