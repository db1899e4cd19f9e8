/* logfmt lines on stderr, one write(2) per line so concurrent writers
 * (and a supervisor reading the pipe) never see interleaved halves. */
#include "log.h"
#include "clock.h"
#include "fmt.h"
#include "http_lex.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOG_INFO;

void log_set_level(int level)
{
	log_level = level;
}

int log_enabled(int level)
{
	return level <= log_level;
}

static const char *const log_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < (int)(sizeof log_names / sizeof log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

void log_at(int level, const char *fmt, ...)
{
	static const char trunc_mark[] = " truncated=true";
	char line[2048];
	/* Room kept for the truncation mark and the newline. */
	const size_t body_max = sizeof line - sizeof trunc_mark - 1;

	if (!log_enabled(level))
		return;
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;

	/* Callers often log right before inspecting errno themselves. */
	int saved_errno = errno;
	/* The real wall clock, not clock_wall_ms: logs show the time even in
	 * test builds whose ID clock is shifted. */
	struct timespec ts;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	clock_iso8601((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, when);
	int n = fmt_snprintf(line, body_max, "ts=%s level=%s ", when, log_names[level]);
	if (n < 0)
		n = 0;

	va_list ap;
	va_start(ap, fmt);
	int m = fmt_vsnprintf(line + n, body_max - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len;
	if (m < 0) {
		len = (size_t)n;
	} else if ((size_t)m >= body_max - (size_t)n) {
		/* fmt_vsnprintf stopped at body_max-1; say so rather than cut silently. */
		len = body_max - 1;
		memcpy(line + len, trunc_mark, sizeof trunc_mark - 1);
		len += sizeof trunc_mark - 1;
	} else {
		len = (size_t)n + (size_t)m;
	}
	line[len++] = '\n';

	const char *p = line;
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;   /* nowhere left to report a logging failure */
		}
		p += w;
		len -= (size_t)w;
	}
	errno = saved_errno;
}

/* The one logfmt value encoder: the access log, the Consul client's log
 * lines and the configuration summary all go through it. (JSON strings have
 * their own escaping, json_str; message fragments that are composed into
 * larger texts before quoting use replacement, not escapes: config_show,
 * consul_core's printable.) */
void log_quote(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	if (cap < 3) {
		if (cap)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char tmp[4];
		size_t k = 0;
		if (ch == '"' || ch == '\\') {
			tmp[k++] = '\\';
			tmp[k++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			tmp[k++] = '\\';
			tmp[k++] = 'x';
			tmp[k++] = lex_hexdigit(ch >> 4);
			tmp[k++] = lex_hexdigit(ch);
		} else {
			tmp[k++] = (char)ch;
		}
		if (o + k + 2 > cap)
			break;  /* cut, but still a well-formed quoted value */
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o++] = '"';
	out[o] = '\0';
}

void log_value(char *out, size_t cap, const char *s, size_t n)
{
	int bare = n > 0;
	for (size_t i = 0; i < n && bare; i++) {
		unsigned char ch = (unsigned char)s[i];
		bare = http_is_vchar(ch) && ch != '"' && ch != '=' && ch != '\\';
	}
	if (!bare) {
		log_quote(out, cap, s, n);
	} else if (cap) {
		if (n > cap - 1)
			n = cap - 1;
		memcpy(out, s, n);
		out[n] = '\0';
	}
}
