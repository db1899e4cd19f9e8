#include "dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "http_lex.h"

/* ---- configuration files ---- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The next word of the line [*p, end): 1 with w/wn, 0 at the line's end
 * (a comment, # or ;, ends it too). */
static int word(const char **p, const char *end, const char **w, size_t *wn)
{
	const char *s = *p;
	while (s < end && is_blank(*s))
		s++;
	if (s == end || *s == '#' || *s == ';') {
		*p = end;
		return 0;
	}
	const char *e = s;
	while (e < end && !is_blank(*e) && *e != '#' && *e != ';')
		e++;
	*w = s;
	*wn = (size_t)(e - s);
	*p = e;
	return 1;
}

/* An IPv4 or IPv6 literal of n bytes as a socket address with port. */
static int literal(const char *w, size_t n, unsigned port, struct sockaddr_storage *a, socklen_t *alen)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	if (n == 0 || n >= sizeof tmp)
		return 0;
	memcpy(tmp, w, n);
	tmp[n] = '\0';
	memset(a, 0, sizeof *a);
	struct sockaddr_in *v4 = (struct sockaddr_in *)a;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
	if (inet_pton(AF_INET, tmp, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*alen = sizeof *v4;
		return 1;
	}
	if (inet_pton(AF_INET6, tmp, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*alen = sizeof *v6;
		return 1;
	}
	return 0;
}

void dns_conf_parse(const char *text, size_t len, struct dns_conf *c)
{
	const char *p = text, *end = text + len;
	memset(c, 0, sizeof *c);
	c->ndots = 1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end, *w;
		size_t wn;
		if (word(&p, le, &w, &wn)) {
			if (LEX_EQ(w, wn, "nameserver") && word(&p, le, &w, &wn) && c->servers < DNS_SERVERS &&
			    literal(w, wn, 53, &c->server[c->servers], &c->server_len[c->servers])) {
				c->servers++;
			} else if (LEX_EQ(w, wn, "search") || LEX_EQ(w, wn, "domain")) {
				c->searches = 0;
				while (word(&p, le, &w, &wn))
					if (c->searches < DNS_SEARCH && wn <= DNS_NAME_MAX) {
						memcpy(c->search[c->searches], w, wn);
						c->search[c->searches++][wn] = '\0';
					}
			} else if (LEX_EQ(w, wn, "options")) {
				while (word(&p, le, &w, &wn))
					if (wn == 7 && memcmp(w, "ndots:", 6) == 0 && w[6] >= '0' && w[6] <= '9')
						c->ndots = w[6] - '0';
			}
		}
		p = eol ? eol + 1 : end;
	}
	if (!c->servers)
		c->servers = literal("127.0.0.1", 9, 53, &c->server[0], &c->server_len[0]);
}

int dns_hosts_lookup(const char *text, size_t len, const char *name, unsigned port,
		     struct sockaddr_storage *addr, socklen_t *addr_len)
{
	const char *p = text, *end = text + len, *w;
	size_t wn, nl = strlen(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		const char *a;
		size_t an;
		if (word(&p, le, &a, &an)) {
			while (word(&p, le, &w, &wn))
				if (wn == nl && lex_ieq(w, name, nl) && literal(a, an, port, addr, addr_len))
					return 1;
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

/* ---- messages ---- */

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

long dns_query(uint16_t id, const char *name, int qtype, uint8_t *out, size_t cap)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;   /* absolute */
	if (n == 0 || n > DNS_NAME_MAX || cap < 12 + n + 2 + 4)
		return -1;
	static const uint8_t head[10] = { 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };   /* RD, one question */
	put16(out, id);
	memcpy(out + 2, head, sizeof head);
	size_t o = 12;
	for (size_t i = 0; i <= n;) {
		size_t l = 0;
		while (i + l < n && name[i + l] != '.')
			l++;
		if (l == 0 || l > 63)
			return -1;
		out[o++] = (uint8_t)l;
		memcpy(out + o, name + i, l);
		o += l;
		i += l + 1;
	}
	out[o++] = 0;
	put16(out + o, (unsigned)qtype);
	put16(out + o + 2, 1);   /* class IN */
	return (long)(o + 4);
}

/* Past the name at off: its end, or -1. Compression pointers end a name;
 * they are not followed (only the records' types and data matter here). */
static long skip_name(const uint8_t *m, size_t len, size_t off)
{
	for (int labels = 0; labels < 128; labels++) {
		if (off >= len)
			return -1;
		uint8_t b = m[off];
		if (b == 0)
			return (long)off + 1;
		if ((b & 0xC0) == 0xC0)
			return off + 1 < len ? (long)off + 2 : -1;
		if (b & 0xC0)
			return -1;
		off += 1 + (size_t)b;
	}
	return -1;
}

int dns_answer(const uint8_t *msg, size_t len, uint16_t id, int qtype, unsigned port,
	       struct sockaddr_storage *addr, socklen_t *addr_len, int *rcode)
{
	*rcode = -1;
	if (len < 12 || get16(msg) != id || !(msg[2] & 0x80) || (msg[2] & 0x78))
		return -1;   /* not a response, or not to a standard query */
	*rcode = msg[3] & 0x0F;
	if (*rcode == 3)
		return 0;    /* NXDOMAIN */
	if (*rcode != 0)
		return -1;
	unsigned qd = get16(msg + 4), an = get16(msg + 6);
	long off = 12;
	for (unsigned i = 0; i < qd; i++) {
		if ((off = skip_name(msg, len, (size_t)off)) < 0 || (size_t)off + 4 > len)
			return -1;
		off += 4;
	}
	size_t want = qtype == DNS_TYPE_A ? 4 : 16;
	for (unsigned i = 0; i < an; i++) {
		if ((off = skip_name(msg, len, (size_t)off)) < 0 || (size_t)off + 10 > len)
			return -1;
		unsigned type = get16(msg + off), class = get16(msg + off + 2);
		size_t rdlen = get16(msg + off + 8);
		off += 10;
		if ((size_t)off + rdlen > len)
			return -1;
		if ((int)type == qtype && class == 1 && rdlen == want) {
			memset(addr, 0, sizeof *addr);
			if (qtype == DNS_TYPE_A) {
				struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
				v4->sin_family = AF_INET;
				v4->sin_port = htons((uint16_t)port);
				memcpy(&v4->sin_addr, msg + off, 4);
				*addr_len = sizeof *v4;
			} else {
				struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
				v6->sin6_family = AF_INET6;
				v6->sin6_port = htons((uint16_t)port);
				memcpy(&v6->sin6_addr, msg + off, 16);
				*addr_len = sizeof *v6;
			}
			return 1;
		}
		off += (long)rdlen;
	}
	return 0;
}
