/* Host name lookups that never block the event loop: /etc/hosts, then DNS
 * A and AAAA queries over UDP to the nameservers of /etc/resolv.conf (with
 * its search domains and ndots; dns.c reads and writes the messages), on a
 * detached helper thread; the caller polls for the answer. A caller may
 * give up on a lookup that never returns (the job frees itself). */
#ifndef RESOLVE_H
#define RESOLVE_H
#include <stddef.h>
#include <sys/socket.h>

struct resolve_job;

/* Starts looking up host:port. NULL with err when no thread can start. */
struct resolve_job *resolve_start(const char *host, unsigned port, char *err, size_t errlen);
/* 1 while the lookup runs; 0 with the first address in addr/addr_len, or
 * -1 with err, and then the job is gone. */
int resolve_poll(struct resolve_job *j, struct sockaddr_storage *addr, socklen_t *addr_len,
		 char *err, size_t errlen);
/* Gives up on a lookup (its thread frees the job when it ends). */
void resolve_drop(struct resolve_job *j);

#endif
