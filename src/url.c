#include "url.h"

#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "http_lex.h"

#define SHAPE "expected http://host[:port][/prefix]"

static int url_fail(char *err, size_t errlen, const char *why)
{
	fmt_snprintf(err, errlen, "%s", why);
	return -1;
}

/* ":port" at *pp, if any: 1..65535, at most five digits. 0 ok, -1 bad. */
static int url_port(const char **pp, unsigned *port)
{
	const char *p = *pp, *d;
	unsigned long v = 0;
	*port = 80;
	if (*p != ':')
		return 0;
	d = ++p;
	while (*p >= '0' && *p <= '9' && p - d < 6)
		v = v * 10 + (unsigned long)(*p++ - '0');
	if (p == d || v < 1 || v > 65535 || (*p >= '0' && *p <= '9'))
		return -1;
	*port = (unsigned)v;
	*pp = p;
	return 0;
}

int url_parse(const char *s, struct url *out, char *err, size_t errlen)
{
	if (strncasecmp(s, "https://", 8) == 0)
		return url_fail(err, errlen, "https is not supported: use an http:// agent address");
	if (strncasecmp(s, "http://", 7) != 0)
		return url_fail(err, errlen, SHAPE);
	const char *p = s + 7, *h = p;
	while (lex_is_name((unsigned char)*p))
		p++;
	if (p == h)
		return url_fail(err, errlen, "missing host: " SHAPE);
	if ((size_t)(p - h) >= sizeof out->host)
		return url_fail(err, errlen, "host longer than 255 bytes: " SHAPE);
	memcpy(out->host, h, (size_t)(p - h));
	out->host[p - h] = '\0';
	if (url_port(&p, &out->port) != 0)
		return url_fail(err, errlen, "bad port: " SHAPE " with port 1..65535");
	if (*p && *p != '/')
		return url_fail(err, errlen, SHAPE);
	size_t n = strlen(p);
	for (size_t i = 0; i < n; i++)
		if (!http_is_vchar((unsigned char)p[i]) || p[i] == '?' || p[i] == '#')
			return url_fail(err, errlen, "bad character in the path prefix: " SHAPE);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= sizeof out->prefix)
		return url_fail(err, errlen, "path prefix longer than 255 bytes: " SHAPE);
	memcpy(out->prefix, p, n);
	out->prefix[n] = '\0';
	return 0;
}
