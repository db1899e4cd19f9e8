/* url_parse: the fields of good URLs and, byte for byte, the message for
 * every way a URL is refused (CONSUL_URL errors quote it after "is invalid: "). */
#include "check.h"
#include "url.h"

static void good(const char *s, const char *host, unsigned port, const char *prefix)
{
	struct url u;
	char err[200] = "";
	int ok = url_parse(s, &u, err, sizeof err) == 0 && strcmp(u.host, host) == 0 &&
		 u.port == port && strcmp(u.prefix, prefix) == 0;
	if (!ok)
		fprintf(stderr, "url %s: err \"%s\"\n", s, err);
	CHECK(ok);
}

static void bad(const char *s, const char *want)
{
	struct url u;
	char err[200] = "";
	int rc = url_parse(s, &u, err, sizeof err);
	if (rc != -1 || strcmp(err, want) != 0)
		fprintf(stderr, "url %s: rc %d, err \"%s\", expected \"%s\"\n", s, rc, err, want);
	CHECK(rc == -1 && strcmp(err, want) == 0);
}

static void test_good(void)
{
	good("http://127.0.0.1:8500", "127.0.0.1", 8500, "");
	good("HTTP://consul.service:80/proxy/consul/", "consul.service", 80, "/proxy/consul");
	good("http://agent/", "agent", 80, "");
	good("http://agent//", "agent", 80, "");
	good("http://localhost", "localhost", 80, "");
	good("HtTp://localhost:1", "localhost", 1, "");
	good("http://a_b-c.d:65535/x/y", "a_b-c.d", 65535, "/x/y");
	good("http://h:00080/p", "h", 80, "/p");
	good("http://h/~a!$&'()*+,;=:@%20", "h", 80, "/~a!$&'()*+,;=:@%20");
}

static void test_bad(void)
{
	static const char shape[] = "expected http://host[:port][/prefix]";
	static const char port[] = "bad port: expected http://host[:port][/prefix] with port 1..65535";
	static const char path[] = "bad character in the path prefix: expected http://host[:port][/prefix]";
	bad("https://agent:8501", "https is not supported: use an http:// agent address");
	bad("HTTPS://agent", "https is not supported: use an http:// agent address");
	bad("agent:8500", shape);
	bad("10.0.0.5:8500", shape);
	bad("", shape);
	bad("ftp://agent", shape);
	bad("http:/agent", shape);
	bad("http://", "missing host: expected http://host[:port][/prefix]");
	bad("http://:8500", "missing host: expected http://host[:port][/prefix]");
	bad("http:///p", "missing host: expected http://host[:port][/prefix]");
	bad("http://a:0", port);
	bad("http://a:65536", port);
	bad("http://a:", port);
	bad("http://a:/p", port);
	bad("http://a:1234567", port);
	bad("http://a:123456", port);
	bad("http://a:-1", port);
	bad("http://user@a", shape);
	bad("http://a?x=1", shape);
	bad("http://a#f", shape);
	bad("http://a:80x", shape);
	bad("http://[::1]:8500", "missing host: expected http://host[:port][/prefix]");
	bad("http://a/b c", path);
	bad("http://a/b?x", path);
	bad("http://a/b#f", path);
	bad("http://a/b\x7f", path);
	bad("http://a/b\xc3\xa9", path);
	bad("http://a/b\t", path);

	/* Longer than the fields hold (CONSUL_URL itself stops at 255 bytes). */
	char s[600];
	memset(s, 0, sizeof s);
	memcpy(s, "http://", 7);
	memset(s + 7, 'h', 256);
	bad(s, "host longer than 255 bytes: expected http://host[:port][/prefix]");
	s[7 + 255] = '\0';
	good(s, s + 7, 80, "");
	memset(s, 0, sizeof s);
	memcpy(s, "http://h/", 9);
	memset(s + 9, 'p', 255);
	bad(s, "path prefix longer than 255 bytes: expected http://host[:port][/prefix]");
	s[9 + 254] = '/';   /* a trailing '/' does not count */
	char want[300];
	snprintf(want, sizeof want, "%.255s", s + 8);
	good(s, "h", 80, want);
}

/* A cut message stays NUL-terminated; no message room at all is fine. */
static void test_small_err(void)
{
	struct url u;
	char err[8];
	CHECK(url_parse("https://a", &u, err, sizeof err) == -1 && strcmp(err, "https i") == 0);
	CHECK(url_parse("x", &u, NULL, 0) == -1);
}

int main(void)
{
	test_good();
	test_bad();
	test_small_err();
	return check_summary("url");
}
