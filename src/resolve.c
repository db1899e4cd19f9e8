#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "dns.h"
#include "fmt.h"
#include "http_lex.h"

#define RESOLVE_WAIT_MS  2000        /* per query and server */
#define RESOLVE_FILE_MAX (64 * 1024)  /* what is read of /etc/hosts or resolv.conf */

enum { RESOLVE_NO_NAME = 1, RESOLVE_NO_ANSWER, RESOLVE_SERVER_FAILED };

/* Shared by the caller and the thread; the last one to let go frees it. */
struct resolve_job {
	atomic_int refs, done;
	char host[256];
	unsigned port_num;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int rc;                       /* 0 or RESOLVE_* */
};

void resolve_drop(struct resolve_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

/* The files a lookup reads; a test build can point them elsewhere. */
static const char *path_of(const char *file, const char *test_env)
{
#ifdef SHARDID_TEST_HOOKS
	const char *p = getenv(test_env);
	if (p && *p)
		return p;
#else
	(void)test_env;
#endif
	return file;
}

/* Up to cap - 1 bytes of a small file, NUL-terminated; 0 when absent. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	if (fd < 0)
		return 0;
	for (ssize_t r; n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) != 0;) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return n;
}

/* One query to one server over UDP: dns_answer's result, or -1 when no
 * answer came in time. */
static int ask(const struct dns_conf *c, int server, const char *name, int qtype,
	       struct resolve_job *j, int *rcode)
{
	uint8_t q[DNS_MSG_MAX], a[DNS_MSG_MAX];
	uint16_t id;
	if (getrandom(&id, sizeof id, 0) != sizeof id)
		id = (uint16_t)(uintptr_t)j ^ (uint16_t)getpid();
	long qn = dns_query(id, name, qtype, q, sizeof q);
	const struct sockaddr *sa = (const struct sockaddr *)&c->server[server];
	int fd = qn < 0 ? -1 : socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = -1;
	*rcode = -1;
	if (fd < 0)
		return -1;
	if (connect(fd, sa, c->server_len[server]) == 0 && send(fd, q, (size_t)qn, 0) == qn) {
		/* Answers to other ids (late ones to an earlier query) are skipped. */
		for (int tries = 0; tries < 4 && rc < 0; tries++) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			if (poll(&pf, 1, RESOLVE_WAIT_MS) != 1)
				break;
			ssize_t an = recv(fd, a, sizeof a, 0);
			if (an > 0)
				rc = dns_answer(a, (size_t)an, id, qtype, j->port_num, &j->addr, &j->addr_len, rcode);
			if (rc < 0 && *rcode != -1)
				break;   /* a real answer saying failure: no need to wait */
		}
	}
	close(fd);
	return rc;
}

/* The name as asked for, and with each search domain, in the order the C
 * libraries try them (ndots). NULL once all were tried. */
static const char *candidate(const struct dns_conf *c, const char *host, int k, char *buf, size_t cap)
{
	size_t n = strlen(host);
	int dots = 0;
	for (size_t i = 0; i < n; i++)
		dots += host[i] == '.';
	if (n && host[n - 1] == '.')
		return k == 0 ? host : NULL;   /* absolute: searched as is only */
	int as_is_first = dots >= c->ndots;
	if (k == (as_is_first ? 0 : c->searches))
		return host;
	int s = as_is_first ? k - 1 : k;
	if (s < 0 || s >= c->searches)
		return NULL;
	fmt_snprintf(buf, cap, "%s.%s", host, c->search[s]);
	return buf;
}

/* /etc/hosts, then DNS (A, then AAAA): 0 with j->addr, or j->rc. */
static void lookup(struct resolve_job *j)
{
	char text[RESOLVE_FILE_MAX], name[2 * DNS_NAME_MAX + 2];
	struct dns_conf conf;
	size_t n = slurp(path_of("/etc/hosts", "SHARDID_TEST_HOSTS"), text, sizeof text);
	if (dns_hosts_lookup(text, n, j->host, j->port_num, &j->addr, &j->addr_len))
		return;
	if (lex_ieq(j->host, "localhost", 10)) {   /* RFC 6761, even without /etc/hosts */
		struct sockaddr_in *v4 = (struct sockaddr_in *)&j->addr;
		memset(&j->addr, 0, sizeof j->addr);
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)j->port_num);
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		j->addr_len = sizeof *v4;
		return;
	}
	n = slurp(path_of("/etc/resolv.conf", "SHARDID_TEST_RESOLV_CONF"), text, sizeof text);
	dns_conf_parse(text, n, &conf);
	int answered = 0, failed_rcode = -1;
	const char *cand;
	for (int k = 0; (cand = candidate(&conf, j->host, k, name, sizeof name)); k++) {
		for (int t = 0; t < 2; t++) {
			int qtype = t ? DNS_TYPE_AAAA : DNS_TYPE_A, rcode = -1, rc = -1;
			for (int s = 0; s < conf.servers && rc < 0; s++) {
				rc = ask(&conf, s, cand, qtype, j, &rcode);
				if (rcode > 0 && rcode != 3)
					failed_rcode = rcode;
			}
			if (rc == 1)
				return;
			answered |= rc == 0;
			if (rc == 0 && rcode == 3)
				break;   /* no such name: no other type either */
		}
	}
	j->rc = answered ? RESOLVE_NO_NAME : failed_rcode > 0 ? RESOLVE_SERVER_FAILED : RESOLVE_NO_ANSWER;
}

static void *run(void *arg)
{
	struct resolve_job *j = arg;
	j->rc = 0;
	lookup(j);
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
		fmt_snprintf(err, errlen, "out of memory looking up %s", host);
		return NULL;
	}
	atomic_init(&j->refs, 2);
	atomic_init(&j->done, 0);
	fmt_snprintf(j->host, sizeof j->host, "%s", host);
	j->port_num = port;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, run, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(j);
		fmt_snprintf(err, errlen, "cannot start a lookup of %s: %s", host, strerror(rc));
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
		static const char *const why[] = {
			[RESOLVE_NO_NAME] = "no such name, or no address for it",
			[RESOLVE_NO_ANSWER] = "no answer from the nameservers of /etc/resolv.conf",
			[RESOLVE_SERVER_FAILED] = "the nameservers of /etc/resolv.conf failed to answer",
		};
		fmt_snprintf(err, errlen, "cannot resolve %s: %s", j->host, why[rc]);
	}
	resolve_drop(j);
	return rc == 0 ? 0 : -1;
}
