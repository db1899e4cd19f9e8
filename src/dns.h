/* What the name resolver (resolve.c) needs of DNS, as pure functions over
 * caller buffers: the lines of /etc/hosts and /etc/resolv.conf, one query
 * (RFC 1035 section 4), and the first address of its answer. Written here
 * instead of taking the C library's getaddrinfo, which costs the static
 * binary about 15 KiB for a lookup done once at start-up. */
#ifndef DNS_H
#define DNS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_NAME_MAX   253   /* a name's text, without the trailing dot */
#define DNS_MSG_MAX    512   /* a UDP message without EDNS */
#define DNS_SERVERS    3     /* resolv.conf's MAXNS */
#define DNS_SEARCH     6

enum { DNS_TYPE_A = 1, DNS_TYPE_AAAA = 28 };

struct dns_conf {
	struct sockaddr_storage server[DNS_SERVERS];
	socklen_t server_len[DNS_SERVERS];
	int servers;
	char search[DNS_SEARCH][DNS_NAME_MAX + 1];
	int searches;
	int ndots;
};

/* Parses resolv.conf text: nameserver (IPv4 or IPv6, port 53), search and
 * domain (the last of them wins, as in the C libraries), options ndots:N.
 * No nameserver line means 127.0.0.1. */
void dns_conf_parse(const char *text, size_t len, struct dns_conf *c);
/* The address of name in hosts-file text (first matching line, names
 * compared without case). 1 found, 0 not there. */
int dns_hosts_lookup(const char *text, size_t len, const char *name, unsigned port,
		     struct sockaddr_storage *addr, socklen_t *addr_len);
/* A recursive query for name of qtype into out; its length, or -1 when the
 * name cannot be encoded (empty label, label over 63, name over 253). */
long dns_query(uint16_t id, const char *name, int qtype, uint8_t *out, size_t cap);
/* The answer to query id of qtype: 1 with the first address record (any
 * owner: a CNAME chain ends at it) in addr with port; 0 when the name or
 * that type does not exist (NXDOMAIN, or no such record); -1 when the
 * message is not an answer to the query, is malformed, or reports a
 * server failure (*rcode set when it could be read). */
int dns_answer(const uint8_t *msg, size_t len, uint16_t id, int qtype, unsigned port,
	       struct sockaddr_storage *addr, socklen_t *addr_len, int *rcode);

#endif
