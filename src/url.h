/* The Consul agent's address, http://host[:port][/prefix]: one parser for
 * the start-up check (config.c) and the client (http_client.c). Pure. */
#ifndef URL_H
#define URL_H
#include <stddef.h>

#define URL_PART_MAX 256   /* host and prefix, with their NUL */

struct url {
	char host[URL_PART_MAX];     /* 1*[A-Za-z0-9._-] */
	unsigned port;               /* 1..65535; 80 when not given */
	char prefix[URL_PART_MAX];   /* "" or "/p/q": trailing '/' dropped */
};

/* Parses s: scheme http (any case) only, https refused by name; the host
 * a name or dotted quad; the prefix printable ASCII without '?' or '#'.
 * 0 ok; -1 with what is wrong and what was expected in err (which does
 * not repeat s: the caller names the setting it came from). */
int url_parse(const char *s, struct url *out, char *err, size_t errlen);

#endif
