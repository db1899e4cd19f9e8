/* libFuzzer target for the resolver's DNS pieces in dns.c. The first byte
 * picks what the rest is: a DNS answer (to id 0x4142 for A or AAAA), a
 * resolv.conf or a hosts file. Besides crashes and sanitizer reports it
 * checks the contract: an answer yields an address only of the asked
 * family with the port given, resolv.conf never more than 3 servers or 6
 * search domains (each NUL-terminated), and a query round trip for names
 * taken from the input.
 * fuzz-src: src/dns.c src/http_lex.c */
#include "dns.h"
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	struct sockaddr_storage a;
	socklen_t al = 0;
	switch (data[0] % 3) {
	case 0: {
		int qtype = data[0] & 0x80 ? DNS_TYPE_AAAA : DNS_TYPE_A, rcode;
		int rc = dns_answer(p, n, 0x4142, qtype, 8500, &a, &al, &rcode);
		MUST(rc >= -1 && rc <= 1);
		if (rc == 1) {
			MUST(a.ss_family == (qtype == DNS_TYPE_A ? AF_INET : AF_INET6));
			MUST(ntohs(((struct sockaddr_in *)&a)->sin_port) == 8500);
		}
		break;
	}
	case 1: {
		struct dns_conf c;
		dns_conf_parse((const char *)p, n, &c);
		MUST(c.servers >= 1 && c.servers <= DNS_SERVERS);
		MUST(c.searches >= 0 && c.searches <= DNS_SEARCH && c.ndots >= 0 && c.ndots <= 9);
		for (int i = 0; i < c.searches; i++)
			MUST(memchr(c.search[i], '\0', sizeof c.search[i]) != NULL);
		break;
	}
	default: {
		char name[DNS_NAME_MAX + 1];
		size_t k = n < 40 ? n : 40;   /* the name to look for: the input's start */
		memcpy(name, p, k);
		name[k] = '\0';
		(void)dns_hosts_lookup((const char *)p, n, name, 53, &a, &al);
		uint8_t q[DNS_MSG_MAX];
		long qn = dns_query(7, name, DNS_TYPE_A, q, sizeof q);
		MUST(qn == -1 || (qn >= 18 && (size_t)qn <= strlen(name) + 18));
		break;
	}
	}
	return 0;
}
