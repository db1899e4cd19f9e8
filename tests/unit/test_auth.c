/* Unit tests for auth.c: auth_bearer_ok accepts exactly "Bearer <token>":
 * not a prefix, an extension, another case of the scheme, a missing scheme
 * or header; and rejects every one-byte change at every position. Values
 * sit flush against a guard page, so a read past len crashes. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "check.h"

/* auth_bearer_ok on s[0..n) placed at the guard page. */
static int ok_n(const char *s, size_t n, const char *token)
{
	return auth_bearer_ok(check_at_edge(s, n), n, token);
}

static int ok(const char *s, const char *token)
{
	return ok_n(s, strlen(s), token);
}

static void test_cases(void)
{
	const char *t = "s3cr3t-T0ken";
	CHECK(ok("Bearer s3cr3t-T0ken", t) == 1);
	CHECK(ok("Bearer s3cr3t-T0ke", t) == 0);       /* prefix of the token */
	CHECK(ok("Bearer s3cr3t-T0kenX", t) == 0);     /* one byte more */
	CHECK(ok("Bearer s3cr3t-T0ken ", t) == 0);     /* trailing space */
	CHECK(ok("Bearer  s3cr3t-T0ken", t) == 0);     /* two spaces */
	CHECK(ok("Bearer x3cr3t-T0ken", t) == 0);      /* wrong first byte */
	CHECK(ok("Bearer s3cr3t-T0kex", t) == 0);      /* wrong last byte */
	CHECK(ok("Bearer other", t) == 0);
	CHECK(ok("bearer s3cr3t-T0ken", t) == 0);      /* the scheme is case-sensitive here */
	CHECK(ok("BEARER s3cr3t-T0ken", t) == 0);
	CHECK(ok("s3cr3t-T0ken", t) == 0);             /* no scheme */
	CHECK(ok("Bearers3cr3t-T0ken", t) == 0);
	CHECK(ok("Bearer\ts3cr3t-T0ken", t) == 0);
	CHECK(ok("Basic s3cr3t-T0ken", t) == 0);
	CHECK(ok(" Bearer s3cr3t-T0ken", t) == 0);
	CHECK(ok("Bearer ", t) == 0);
	CHECK(ok("Bearer", t) == 0);
	CHECK(ok("", t) == 0);
	CHECK(auth_bearer_ok(NULL, 0, t) == 0);        /* no Authorization header */
	/* A len shorter than the text: only len bytes count. */
	CHECK(auth_bearer_ok("Bearer s3cr3t-T0ken", 18, t) == 0);
	/* A NUL inside the value does not end the comparison early. */
	CHECK(ok_n("Bearer s3cr3t-T0ken\0", 20, t) == 0);
	CHECK(ok_n("Bearer s3cr3t\0T0ken", 19, t) == 0);

	/* The token is compared as bytes: case and non-ASCII matter. */
	CHECK(ok("Bearer S3CR3T-T0KEN", t) == 0);
	CHECK(ok("Bearer \xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9") == 1);
	CHECK(ok("Bearer \xc3\xa9t\xc3\xa8", "\xc3\xa9t\xc3\xa9") == 0);

	/* An empty token matches nothing, not even "Bearer " (the API never
	 * asks: without ADMIN_TOKEN it allows loopback and checks no header). */
	CHECK(ok("Bearer ", "") == 0);
	CHECK(ok("Bearer x", "") == 0);
	CHECK(ok("Bearer", "") == 0);
	CHECK(auth_bearer_ok(NULL, 0, "") == 0);

	/* A one-byte token. */
	CHECK(ok("Bearer x", "x") == 1);
	CHECK(ok("Bearer y", "x") == 0);
	CHECK(ok("Bearer ", "x") == 0);
	CHECK(ok("Bearer xx", "x") == 0);
}

/* Every position of a matching value, changed in one byte (several ways),
 * is rejected; every truncation and every one-byte extension too. */
static void test_byte_by_byte(const char *token)
{
	char good[300];
	int n = snprintf(good, sizeof good, "Bearer %s", token);
	CHECK(ok_n(good, (size_t)n, token) == 1);
	static const unsigned char flips[] = { 0x01, 0x20, 0x80, 0xff, 0x40 };
	int rejected = 1;
	for (int i = 0; i < n; i++) {
		for (size_t f = 0; f < sizeof flips; f++) {
			char v[300];
			memcpy(v, good, (size_t)n);
			v[i] = (char)(v[i] ^ flips[f]);
			if (ok_n(v, (size_t)n, token)) {
				fprintf(stderr, "token \"%s\": byte %d ^ 0x%02x accepted\n", token, i, flips[f]);
				rejected = 0;
			}
		}
		if (ok_n(good, (size_t)i, token)) {
			fprintf(stderr, "token \"%s\": first %d bytes accepted\n", token, i);
			rejected = 0;
		}
	}
	for (int c = 0; c < 256; c++) {
		char v[300];
		memcpy(v, good, (size_t)n);
		v[n] = (char)c;
		if (ok_n(v, (size_t)n + 1, token)) {
			fprintf(stderr, "token \"%s\": extra byte 0x%02x accepted\n", token, c);
			rejected = 0;
		}
	}
	CHECK(rejected);
	CHECK(ok_n(good, (size_t)n, token) == 1);   /* and the original still passes */
}

int main(void)
{
	check_edge_init(4096);
	test_cases();
	test_byte_by_byte("s3cr3t-T0ken");
	test_byte_by_byte("x");
	test_byte_by_byte("a-much-longer-token-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz");
	test_byte_by_byte("\x01\x7f\xff");
	return check_summary("auth");
}
