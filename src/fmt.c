/* shardid's printf. The C library's (printf_core, vfprintf and the FILE
 * machinery under snprintf and fprintf: about 13 KiB of the binary) handles
 * floats, wide characters and positional arguments that nothing here uses. */
#include "fmt.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Where the text goes: buf[0..lim) holds it; when that is full, bytes are
 * flushed to fd, or with fd < 0 only counted (snprintf). */
struct fmt_out {
	char *buf;
	size_t lim, len;
	size_t total;   /* the text's whole length */
	int fd;
	int failed;     /* a write to fd failed: the rest is only counted */
};

static void fmt_flush(struct fmt_out *o)
{
	const char *p = o->buf;
	size_t n = o->len;
	while (n > 0) {
		ssize_t w = write(o->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->failed = 1;
			o->fd = -1;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	o->len = 0;
}

static void fmt_put(struct fmt_out *o, const char *s, size_t n)
{
	o->total += n;
	while (n > 0) {
		if (o->len == o->lim) {
			if (o->fd < 0)
				return;
			fmt_flush(o);
			continue;
		}
		size_t k = o->lim - o->len < n ? o->lim - o->len : n;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
	}
}

static void fmt_pad(struct fmt_out *o, char c, size_t n)
{
	char run[16];
	memset(run, c, sizeof run);
	for (; n > sizeof run; n -= sizeof run) {
		if (o->len == o->lim && o->fd < 0)
			break;   /* nothing is stored any more: fmt_put counts the rest at once */
		fmt_put(o, run, sizeof run);
	}
	fmt_put(o, run, n);
}

/* A width or precision given as digits (0 when there are none). */
static size_t fmt_digits(const char **f)
{
	size_t v = 0;
	for (; **f >= '0' && **f <= '9'; (*f)++)
		v = v <= (INT_MAX - 9) / 10 ? v * 10 + (size_t)(**f - '0') : INT_MAX;
	return v;
}

enum { LEN_INT, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J };

/* The next integer argument of length modifier len, as uintmax_t: signed
 * ones sign-extended (two's complement). */
static uintmax_t fmt_arg(va_list *ap, int len, int is_signed)
{
	switch (len) {
	case LEN_L:
		return is_signed ? (uintmax_t)va_arg(*ap, long) : va_arg(*ap, unsigned long);
	case LEN_LL:
		return is_signed ? (uintmax_t)va_arg(*ap, long long) : va_arg(*ap, unsigned long long);
	case LEN_Z:
		return is_signed ? (uintmax_t)va_arg(*ap, ssize_t) : va_arg(*ap, size_t);
	case LEN_J:
		return is_signed ? (uintmax_t)va_arg(*ap, intmax_t) : va_arg(*ap, uintmax_t);
	}
	int v = va_arg(*ap, int);   /* char and short arrive promoted to int */
	if (len == LEN_HH)
		return is_signed ? (uintmax_t)(signed char)v : (unsigned char)v;
	if (len == LEN_H)
		return is_signed ? (uintmax_t)(short)v : (unsigned short)v;
	return is_signed ? (uintmax_t)v : (unsigned)v;
}

static void fmt_core(struct fmt_out *o, const char *f, va_list *ap)
{
	for (;;) {
		const char *lit = f;
		while (*f && *f != '%')
			f++;
		fmt_put(o, lit, (size_t)(f - lit));
		if (!*f)
			return;
		const char *spec = f++;

		int left = 0, zero = 0;
		for (;; f++) {
			if (*f == '-')
				left = 1;
			else if (*f == '0')
				zero = 1;
			else
				break;
		}
		size_t width;
		if (*f == '*') {
			f++;
			int w = va_arg(*ap, int);
			if (w < 0)
				left = 1;   /* a negative width is '-' and its size */
			width = w < 0 ? 0 - (size_t)w : (size_t)w;
		} else {
			width = fmt_digits(&f);
		}
		int prec = -1;   /* none */
		if (*f == '.') {
			f++;
			if (*f == '*') {
				f++;
				prec = va_arg(*ap, int);
				if (prec < 0)
					prec = -1;
			} else {
				prec = (int)fmt_digits(&f);
			}
		}
		int len = LEN_INT;
		if (*f == 'h') {
			len = f[1] == 'h' ? LEN_HH : LEN_H;
			f += len == LEN_HH ? 2 : 1;
		} else if (*f == 'l') {
			len = f[1] == 'l' ? LEN_LL : LEN_L;
			f += len == LEN_LL ? 2 : 1;
		} else if (*f == 'z') {
			len = LEN_Z;
			f++;
		} else if (*f == 'j') {
			len = LEN_J;
			f++;
		}

		char tmp[24];            /* UINT64_MAX is 20 digits */
		char *end = tmp + sizeof tmp, *s = end;
		const char *body = s, *prefix = "";
		size_t n = 0;
		uintmax_t u = 0;
		switch (*f) {
		case '%':
			fmt_put(o, "%", 1);
			f++;
			continue;
		case 'c':
			*--s = (char)va_arg(*ap, int);
			body = s;
			n = 1;
			prec = -1;
			zero = 0;
			break;
		case 's':
			body = va_arg(*ap, const char *);
			if (!body)
				body = "(null)";
			n = prec < 0 ? strlen(body) : strnlen(body, (size_t)prec);
			prec = -1;
			zero = 0;
			break;
		case 'd':
		case 'i':
			u = fmt_arg(ap, len, 1);
			if (u >> (sizeof u * CHAR_BIT - 1)) {
				prefix = "-";
				u = 0 - u;
			}
			break;
		case 'p':
			u = (uintptr_t)va_arg(*ap, void *);
			prefix = "0x";
			break;
		case 'u':
		case 'x':
		case 'X':
			u = fmt_arg(ap, len, 0);
			break;
		default:   /* not supported: shown as written */
			if (*f)
				f++;
			fmt_put(o, spec, (size_t)(f - spec));
			continue;
		}
		if (*f != 'c' && *f != 's') {
			const char *digits = *f == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
			unsigned base = *f == 'd' || *f == 'i' || *f == 'u' ? 10 : 16;
			if (u || prec != 0)   /* "%.0d" of 0 prints no digit */
				do {
					*--s = digits[u % base];
					u /= base;
				} while (u);
			body = s;
			n = (size_t)(end - s);
		}
		f++;

		size_t plen = strlen(prefix), zeros = 0;
		if (prec > 0 && (size_t)prec > n)
			zeros = (size_t)prec - n;
		else if (zero && !left && prec < 0 && width > plen + n)
			zeros = width - plen - n;
		size_t all = plen + zeros + n;
		size_t spaces = width > all ? width - all : 0;
		if (!left)
			fmt_pad(o, ' ', spaces);
		fmt_put(o, prefix, plen);
		fmt_pad(o, '0', zeros);
		fmt_put(o, body, n);
		if (left)
			fmt_pad(o, ' ', spaces);
	}
}

static int fmt_result(const struct fmt_out *o)
{
	return o->failed || o->total > INT_MAX ? -1 : (int)o->total;
}

int fmt_vsnprintf(char *out, size_t cap, const char *f, va_list ap)
{
	struct fmt_out o = { out, cap ? cap - 1 : 0, 0, 0, -1, 0 };
	va_list cp;
	va_copy(cp, ap);
	fmt_core(&o, f, &cp);
	va_end(cp);
	if (cap)
		out[o.len] = '\0';
	return fmt_result(&o);
}

int fmt_snprintf(char *out, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = fmt_vsnprintf(out, cap, f, ap);
	va_end(ap);
	return n;
}

int fmt_vdprint(int fd, const char *f, va_list ap)
{
	if (fd < 0) {   /* -1 means "no descriptor" in struct fmt_out */
		errno = EBADF;
		return -1;
	}
	char buf[512];
	struct fmt_out o = { buf, sizeof buf, 0, 0, fd, 0 };
	va_list cp;
	va_copy(cp, ap);
	fmt_core(&o, f, &cp);
	va_end(cp);
	if (o.fd >= 0)
		fmt_flush(&o);
	return fmt_result(&o);
}

int fmt_dprint(int fd, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = fmt_vdprint(fd, f, ap);
	va_end(ap);
	return n;
}
