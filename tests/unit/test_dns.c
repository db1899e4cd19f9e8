/* The resolver's DNS pieces (dns.c): resolv.conf and hosts lines, the
 * query's bytes, and answers: CNAME chains, compression pointers, AAAA,
 * NXDOMAIN, server failures, answers to other queries, and every
 * truncation of a good answer placed against a guard page. */
#include "check.h"
#include "dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const char *v4(const struct sockaddr_storage *a)
{
	static char t[64];
	const struct sockaddr_in *s = (const struct sockaddr_in *)a;
	inet_ntop(AF_INET, &s->sin_addr, t, sizeof t);
	return t;
}

static unsigned port_of(const struct sockaddr_storage *a)
{
	return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static void test_conf(void)
{
	struct dns_conf c;
	static const char text[] =
		"# comment\n; other comment\nnameserver 10.0.0.2\nnameserver   fd00::53 # v6\n"
		"nameserver bogus\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n"
		"domain first.example\nsearch svc.cluster.local cluster.local\n"
		"options rotate ndots:5 timeout:1\r\n";
	dns_conf_parse(text, sizeof text - 1, &c);
	CHECK_EQ_U64(c.servers, 3);   /* the first three valid ones */
	CHECK(c.server[0].ss_family == AF_INET && strcmp(v4(&c.server[0]), "10.0.0.2") == 0 &&
	      port_of(&c.server[0]) == 53 && c.server_len[0] == sizeof(struct sockaddr_in));
	CHECK(c.server[1].ss_family == AF_INET6 && c.server_len[1] == sizeof(struct sockaddr_in6));
	CHECK(strcmp(v4(&c.server[2]), "10.0.0.3") == 0);
	CHECK_EQ_U64(c.searches, 2);   /* search replaced domain */
	CHECK(strcmp(c.search[0], "svc.cluster.local") == 0 && strcmp(c.search[1], "cluster.local") == 0);
	CHECK_EQ_U64(c.ndots, 5);
	/* Nothing usable: the local server, ndots 1, no search. */
	dns_conf_parse("", 0, &c);
	CHECK(c.servers == 1 && strcmp(v4(&c.server[0]), "127.0.0.1") == 0 && c.ndots == 1 && c.searches == 0);
	static const char dom[] = "search a b\ndomain only.example";   /* no final newline */
	dns_conf_parse(dom, sizeof dom - 1, &c);
	CHECK(c.searches == 1 && strcmp(c.search[0], "only.example") == 0);
	for (size_t k = 0; k <= sizeof text - 1; k++)   /* every prefix, at the guard page */
		dns_conf_parse(check_at_edge(text, k), k, &c);
}

static void test_hosts(void)
{
	struct sockaddr_storage a;
	socklen_t al = 0;
	static const char text[] =
		"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n"
		"# 10.9.9.9 consul\n10.1.2.3 consul.internal  Consul # the agent\n"
		"bad-address consul2\n10.1.2.4 consul2";
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "consul", 8500, &a, &al) == 1);
	CHECK(strcmp(v4(&a), "10.1.2.3") == 0 && port_of(&a) == 8500 && al == sizeof(struct sockaddr_in));
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "CONSUL.internal", 1, &a, &al) == 1);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "localhost", 1, &a, &al) == 1 && strcmp(v4(&a), "127.0.0.1") == 0);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "ip6-localhost", 1, &a, &al) == 1 && a.ss_family == AF_INET6);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "consul2", 1, &a, &al) == 1 && strcmp(v4(&a), "10.1.2.4") == 0);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "consu", 1, &a, &al) == 0);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "consul.internal2", 1, &a, &al) == 0);
	CHECK(dns_hosts_lookup(text, sizeof text - 1, "the", 1, &a, &al) == 0);   /* comments are not names */
	for (size_t k = 0; k <= sizeof text - 1; k++)
		(void)dns_hosts_lookup(check_at_edge(text, k), k, "consul2", 1, &a, &al);
}

static void test_query(void)
{
	uint8_t q[DNS_MSG_MAX];
	long n = dns_query(0xBEEF, "consul.service.", DNS_TYPE_A, q, sizeof q);
	static const uint8_t want[] = {
		0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		6, 'c', 'o', 'n', 's', 'u', 'l', 7, 's', 'e', 'r', 'v', 'i', 'c', 'e', 0, 0, 1, 0, 1,
	};
	CHECK(n == (long)sizeof want && memcmp(q, want, sizeof want) == 0);
	CHECK(dns_query(1, "consul.service", DNS_TYPE_AAAA, q, sizeof q) == n && q[n - 3] == 28);
	CHECK(dns_query(1, "", 1, q, sizeof q) == -1);
	CHECK(dns_query(1, ".", 1, q, sizeof q) == -1);
	CHECK(dns_query(1, "a..b", 1, q, sizeof q) == -1);
	CHECK(dns_query(1, ".a", 1, q, sizeof q) == -1);
	CHECK(dns_query(1, "a.b..", 1, q, sizeof q) == -1);
	char l63[80], l64[80];
	memset(l63, 'x', 63); l63[63] = '\0';
	memset(l64, 'x', 64); l64[64] = '\0';
	CHECK(dns_query(1, l63, 1, q, sizeof q) == 12 + 1 + 63 + 1 + 4);
	CHECK(dns_query(1, l64, 1, q, sizeof q) == -1);
	CHECK(dns_query(1, "ab", 1, q, 12 + 4 + 4 - 1) == -1);   /* room is checked */
	CHECK(dns_query(1, "ab", 1, q, 12 + 4 + 4) == 20);
}

/* An answer to query 0xBEEF for consul.service: a CNAME (pointing back into
 * the question) and then the A record, both owners compressed. */
static const uint8_t good[] = {
	0xBE, 0xEF, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
	6, 'c', 'o', 'n', 's', 'u', 'l', 7, 's', 'e', 'r', 'v', 'i', 'c', 'e', 0, 0, 1, 0, 1,
	0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 'w', 'e', 'b', 0xC0, 19,
	0xC0, 44, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3,
};

static void test_answers(void)
{
	struct sockaddr_storage a;
	socklen_t al = 0;
	int rcode;
	CHECK(dns_answer(good, sizeof good, 0xBEEF, DNS_TYPE_A, 8500, &a, &al, &rcode) == 1);
	CHECK(rcode == 0 && strcmp(v4(&a), "10.1.2.3") == 0 && port_of(&a) == 8500);
	CHECK(dns_answer(good, sizeof good, 0xBEEE, DNS_TYPE_A, 1, &a, &al, &rcode) == -1);   /* another id */
	CHECK(dns_answer(good, sizeof good, 0xBEEF, DNS_TYPE_AAAA, 1, &a, &al, &rcode) == 0);  /* no AAAA */
	uint8_t m[sizeof good];
	memcpy(m, good, sizeof m);
	m[2] &= 0x7F;   /* a query, not a response */
	CHECK(dns_answer(m, sizeof m, 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == -1);
	memcpy(m, good, sizeof m);
	m[3] = 0x83;    /* NXDOMAIN */
	CHECK(dns_answer(m, sizeof m, 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == 0 && rcode == 3);
	m[3] = 0x82;    /* SERVFAIL */
	CHECK(dns_answer(m, sizeof m, 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == -1 && rcode == 2);
	memcpy(m, good, sizeof m);
	m[sizeof m - 5] = 5;   /* rdlength 5 runs past the end */
	CHECK(dns_answer(m, sizeof m, 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == -1);
	memcpy(m, good, sizeof m);
	m[12] = 0x80;   /* a reserved label type */
	CHECK(dns_answer(m, sizeof m, 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == -1);
	/* AAAA */
	static const uint8_t six[] = {
		0, 7, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,
		1, 'h', 0, 0, 28, 0, 1, 0, 0, 0, 9, 0, 16,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
	};
	CHECK(dns_answer(six, sizeof six, 7, DNS_TYPE_AAAA, 8500, &a, &al, &rcode) == 1);
	CHECK(a.ss_family == AF_INET6 && al == sizeof(struct sockaddr_in6) &&
	      ((struct sockaddr_in6 *)&a)->sin6_addr.s6_addr[15] == 0x53);
	/* Every truncation of the good answer: never read past it, never an address. */
	unsigned found = 0;
	for (size_t k = 0; k < sizeof good; k++)
		found += dns_answer((const uint8_t *)check_at_edge((const char *)good, k), k, 0xBEEF,
				    DNS_TYPE_A, 1, &a, &al, &rcode) == 1;
	CHECK_EQ_U64(found, 0);
	CHECK(dns_answer((const uint8_t *)check_at_edge((const char *)good, sizeof good), sizeof good,
			 0xBEEF, DNS_TYPE_A, 1, &a, &al, &rcode) == 1);
}

int main(void)
{
	check_edge_init(4096);
	test_conf();
	test_hosts();
	test_query();
	test_answers();
	return check_summary("dns");
}
