/* Lexical helpers shared by the HTTP request and response parsers (and the
 * other small scanners): RFC 9110 byte classes, ASCII case folding, hex
 * digits, list elements. All inline, so the hot request parser pays no call. */
#ifndef HTTP_LEX_H
#define HTTP_LEX_H
#include <stddef.h>
#include <string.h>

/* The first needle[0..m) in hay[0..n), or NULL (memmem's contract). */
const char *lex_find(const char *hay, size_t n, const char *needle, size_t m);

/* RFC 9110 tchar: the bytes allowed in methods and header names. */
extern const unsigned char http_tchar[256];
/* Field-value byte: VCHAR, SP, HTAB or obs-text (>= 0x80); no controls, no DEL. */
static inline int http_is_field(unsigned char c) { return (c >= 0x20 && c != 0x7F) || c == '\t'; }
static inline int http_is_ows(unsigned char c) { return c == ' ' || c == '\t'; }
/* Printable ASCII without space (VCHAR). */
static inline int http_is_vchar(unsigned char c) { return (unsigned char)(c - 0x21) < 0x5E; }

/* A byte of a host or service name: A-Z a-z 0-9 . - _ */
static inline int lex_is_name(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

static inline unsigned char lex_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* ASCII case-insensitive equality of a[0..n) and b[0..n). */
static inline int lex_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lex_lower((unsigned char)a[i]) != lex_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* s[0..n) equals the string literal lit, byte for byte. */
#define LEX_EQ(s, n, lit) ((n) == sizeof lit - 1 && memcmp((s), lit, sizeof lit - 1) == 0)

/* s[0..n) equals the string literal lit, ignoring case. */
#define LEX_IEQ(s, n, lit) ((n) == sizeof lit - 1 && lex_ieq((s), lit, sizeof lit - 1))

/* Value of a hex digit (either case), or -1. */
static inline int lex_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lex_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lowercase hex digit of the low four bits of v. */
static inline char lex_hexdigit(unsigned v) { return "0123456789abcdef"[v & 15]; }

/* Next element of a comma-separated list (RFC 9110 5.6.1) in v[0..n) from
 * *i on, OWS trimmed, empty elements skipped. Returns 1 with the element in
 * v[*s..*e), or 0 at the end. */
static inline int lex_list_next(const char *v, size_t n, size_t *i, size_t *s, size_t *e)
{
	size_t p = *i;
	while (p < n && (http_is_ows((unsigned char)v[p]) || v[p] == ','))
		p++;
	if (p == n) {
		*i = p;
		return 0;
	}
	*s = p;
	while (p < n && v[p] != ',')
		p++;
	*i = p;
	while (p > *s && http_is_ows((unsigned char)v[p - 1]))
		p--;
	*e = p;
	return 1;
}

#endif
