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

/* One conversion's flags, width, precision and length modifier. */
struct fmt_spec {
	int left, zero;
	size_t width;
	int prec;       /* -1: none */
	int len;        /* LEN_* */
};

/* Reads what follows '%' up to the conversion character (left at *f). */
static void fmt_parse_spec(const char **fp, va_list *ap, struct fmt_spec *sp)
{
	const char *f = *fp;
	*sp = (struct fmt_spec){ .prec = -1, .len = LEN_INT };
	for (;; f++) {
		if (*f == '-')
			sp->left = 1;
		else if (*f == '0')
			sp->zero = 1;
		else
			break;
	}
	if (*f == '*') {
		f++;
		int w = va_arg(*ap, int);
		if (w < 0)
			sp->left = 1;   /* a negative width is '-' and its size */
		sp->width = w < 0 ? 0 - (size_t)w : (size_t)w;
	} else {
		sp->width = fmt_digits(&f);
	}
	if (*f == '.') {
		f++;
		if (*f == '*') {
			f++;
			sp->prec = va_arg(*ap, int);
			if (sp->prec < 0)
				sp->prec = -1;
		} else {
			sp->prec = (int)fmt_digits(&f);
		}
	}
	if (*f == 'h' || *f == 'l') {
		int twice = f[1] == f[0];
		sp->len = *f == 'h' ? (twice ? LEN_HH : LEN_H) : (twice ? LEN_LL : LEN_L);
		f += twice ? 2 : 1;
	} else if (*f == 'z' || *f == 'j') {
		sp->len = *f == 'z' ? LEN_Z : LEN_J;
		f++;
	}
	*fp = f;
}

/* An integer's digits, right-aligned in tmp[0..end): the first digit. */
static char *fmt_int_digits(uintmax_t u, char conv, int prec, char *end)
{
	const char *digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
	unsigned base = conv == 'd' || conv == 'i' || conv == 'u' ? 10 : 16;
	char *s = end;
	if (u || prec != 0)   /* "%.0d" of 0 prints no digit */
		do {
			*--s = digits[u % base];
			u /= base;
		} while (u);
	return s;
}

/* prefix and body[0..n) padded as the spec says. */
static void fmt_emit(struct fmt_out *o, const struct fmt_spec *sp, const char *prefix,
		     const char *body, size_t n)
{
	size_t plen = strlen(prefix), zeros = 0;
	if (sp->prec > 0 && (size_t)sp->prec > n)
		zeros = (size_t)sp->prec - n;
	else if (sp->zero && !sp->left && sp->prec < 0 && sp->width > plen + n)
		zeros = sp->width - plen - n;
	size_t all = plen + zeros + n;
	size_t spaces = sp->width > all ? sp->width - all : 0;
	if (!sp->left)
		fmt_pad(o, ' ', spaces);
	fmt_put(o, prefix, plen);
	fmt_pad(o, '0', zeros);
	fmt_put(o, body, n);
	if (sp->left)
		fmt_pad(o, ' ', spaces);
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
		struct fmt_spec sp;
		fmt_parse_spec(&f, ap, &sp);

		char tmp[24], c;         /* UINT64_MAX is 20 digits */
		const char *body, *prefix = "";
		size_t n;
		uintmax_t u;
		switch (*f) {
		case '%':
			fmt_put(o, "%", 1);
			f++;
			continue;
		case 'c':
		case 's':
			if (*f == 'c') {
				c = (char)va_arg(*ap, int);
				body = &c;
				n = 1;
			} else {
				body = va_arg(*ap, const char *);
				if (!body)
					body = "(null)";
				n = sp.prec < 0 ? strlen(body) : strnlen(body, (size_t)sp.prec);
			}
			sp.prec = -1;
			sp.zero = 0;
			f++;
			fmt_emit(o, &sp, "", body, n);
			continue;
		case 'd':
		case 'i':
			u = fmt_arg(ap, sp.len, 1);
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
			u = fmt_arg(ap, sp.len, 0);
			break;
		default:   /* not supported: shown as written */
			if (*f)
				f++;
			fmt_put(o, spec, (size_t)(f - spec));
			continue;
		}
		body = fmt_int_digits(u, *f++, sp.prec, tmp + sizeof tmp);
		fmt_emit(o, &sp, prefix, body, (size_t)(tmp + sizeof tmp - body));
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
