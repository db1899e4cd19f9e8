#include "resolve.h"

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared by the caller and the thread; the last one to let go frees it. */
struct resolve_job {
	atomic_int refs, done;
	char host[256], port[8];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int rc;                       /* getaddrinfo's result */
};

void resolve_drop(struct resolve_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

static void *run(void *arg)
{
	struct resolve_job *j = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	j->rc = getaddrinfo(j->host, j->port, &hints, &ai);
	if (j->rc == 0 && ai && ai->ai_addrlen <= sizeof j->addr) {
		memcpy(&j->addr, ai->ai_addr, ai->ai_addrlen);
		j->addr_len = ai->ai_addrlen;
	} else if (j->rc == 0) {
		j->rc = EAI_NONAME;
	}
	if (ai)
		freeaddrinfo(ai);
	atomic_store(&j->done, 1);
	resolve_drop(j);
	return NULL;
}

struct resolve_job *resolve_start(const char *host, unsigned port, char *err, size_t errlen)
{
	pthread_t t;
	pthread_attr_t attr;
	struct resolve_job *j = calloc(1, sizeof *j);
	if (!j) {
		snprintf(err, errlen, "out of memory looking up %s", host);
		return NULL;
	}
	atomic_init(&j->refs, 2);
	atomic_init(&j->done, 0);
	snprintf(j->host, sizeof j->host, "%s", host);
	snprintf(j->port, sizeof j->port, "%u", port);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, run, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(j);
		snprintf(err, errlen, "cannot start a lookup of %s: %s", host, strerror(rc));
		return NULL;
	}
	return j;
}

int resolve_poll(struct resolve_job *j, struct sockaddr_storage *addr, socklen_t *addr_len,
		 char *err, size_t errlen)
{
	if (!atomic_load(&j->done))
		return 1;
	int rc = j->rc;
	if (rc == 0) {
		memcpy(addr, &j->addr, j->addr_len);
		*addr_len = j->addr_len;
	} else {
		snprintf(err, errlen, "cannot resolve %s: %s", j->host, gai_strerror(rc));
	}
	resolve_drop(j);
	return rc == 0 ? 0 : -1;
}
