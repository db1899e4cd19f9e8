#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "http_resp.h"
#include "log.h"
#include "metrics.h"

static int listen_fd = -1;
static unsigned max_conns;
static volatile sig_atomic_t stop_requested;
static uint64_t accept_paused_until;  /* after EMFILE: let descriptors free up */
static server_tick_fn tick_fn;

void server_stop(void)
{
	stop_requested = 1;
}

void server_on_tick(server_tick_fn fn)
{
	tick_fn = fn;
}

/* Lets the process hold as many descriptors as the hard limit allows. */
static int raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
}

int server_listen(const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port) };
	if (inet_pton(AF_INET, cfg->bind_addr, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "BIND_ADDR=%s is not an IPv4 address", cfg->bind_addr);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
		goto err;

	int fds = raise_fd_limit();
	/* Keep a few descriptors for the journal, Consul and the listener. */
	max_conns = cfg->max_conns;
	if ((int)max_conns > fds - 32)
		max_conns = fds > 64 ? (unsigned)(fds - 32) : 32;
	if (max_conns < cfg->max_conns)
		log_warn("msg=\"connection cap lowered to fit the descriptor limit\" max_connections=%u nofile=%d",
			 max_conns, fds);
	conn_env.loop = loop_create(fds);
	if (!conn_env.loop) {
		snprintf(err, errlen, "out of memory creating the event loop for %d descriptors", fds);
		close(fd);
		return -1;
	}
	listen_fd = fd;
	return 0;
err:
	snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->bind_addr, cfg->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* At the cap a newcomer gets a short 503 and a close; the others keep going. */
#define REFUSE_BODY "{\"error\":\"Too many connections\",\"message\":\"connection limit reached\"}"
static void refuse(int fd)
{
	static const char msg[] =
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		"Content-Length: 69\r\nConnection: close\r\n\r\n" REFUSE_BODY;
	_Static_assert(sizeof REFUSE_BODY - 1 == 69, "Content-Length of the refusal");
	send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	metrics.conns_refused++;
}

static void on_accept(void *ud, int fd, int events)
{
	(void)ud;
	(void)events;
	for (int i = 0; i < 256; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
				log_warn("msg=\"accept failed, pausing\" error=\"%s\"", strerror(errno));
				accept_paused_until = conn_env.mono_ms + 100;
				loop_set(conn_env.loop, listen_fd, 0);
			}
			return;
		}
		if (conn_env.open >= max_conns) {
			refuse(cfd);
			continue;
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int loopback = peer.sin_family == AF_INET &&
			       (ntohl(peer.sin_addr.s_addr) >> 24) == 127;
		if (!conn_new(cfd, loopback)) {
			close(cfd);
			continue;
		}
		metrics.conns_accepted++;
	}
}

static void read_clock(void)
{
	conn_env.now_ms = clock_wall_ms();
	conn_env.mono_ms = clock_mono_ms();
	http_resp_set_time(conn_env.now_ms);
}

/* Milliseconds until the earliest deadline, capped so ticks keep coming. */
static int next_timeout(void)
{
	uint64_t soonest = conn_env.mono_ms + 1000;
	for (int l = LIST_IDLE; l < LIST_COUNT; l++) {
		/* Parked requests have individual wake-up times, not one timeout. */
		if (l == LIST_PARKED) {
			for (struct conn *c = conn_lists[l].head; c; c = c->next)
				if (c->deadline < soonest)
					soonest = c->deadline;
		} else if (conn_lists[l].head && conn_lists[l].head->deadline < soonest) {
			soonest = conn_lists[l].head->deadline;
		}
	}
	if (accept_paused_until && accept_paused_until < soonest)
		soonest = accept_paused_until;
	return soonest <= conn_env.mono_ms ? 0 : (int)(soonest - conn_env.mono_ms);
}

static void run_timers(void)
{
	uint64_t now = conn_env.mono_ms;
	for (int l = LIST_IDLE; l <= LIST_ACTIVE; l++)
		while (conn_lists[l].head && conn_lists[l].head->deadline <= now)
			conn_expire(conn_lists[l].head);
	/* Parked list is short; resuming may re-park, so take one pass. */
	struct conn *c = conn_lists[LIST_PARKED].head, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->deadline <= now)
			conn_resume(c);
	}
	if (accept_paused_until && accept_paused_until <= now && listen_fd >= 0) {
		accept_paused_until = 0;
		loop_set(conn_env.loop, listen_fd, LOOP_READ);
	}
}

static void begin_drain(void)
{
	conn_env.draining = 1;
	if (listen_fd >= 0) {
		loop_del(conn_env.loop, listen_fd);
		close(listen_fd);
		listen_fd = -1;
	}
	for (int l = LIST_IDLE; l < LIST_COUNT; l++) {
		struct conn *c = conn_lists[l].head, *next;
		for (; c; c = next) {
			next = c->next;
			conn_drain(c);
		}
	}
}

void server_run(unsigned drain_ms)
{
	read_clock();
	loop_add(conn_env.loop, listen_fd, LOOP_READ, on_accept, NULL);
	uint64_t drain_deadline = 0;
	for (;;) {
		if (stop_requested && !conn_env.draining) {
			log_info("msg=\"stopping: draining in-flight requests\" open_connections=%llu",
				 (unsigned long long)conn_env.open);
			begin_drain();
			drain_deadline = conn_env.mono_ms + drain_ms;
		}
		if (conn_env.draining && (conn_env.open == 0 || conn_env.mono_ms >= drain_deadline))
			break;
		loop_wait(conn_env.loop, next_timeout(), read_clock);
		run_timers();
		if (tick_fn)
			tick_fn(conn_env.now_ms, conn_env.mono_ms);
	}
	/* Whatever is still open after the bound is cut off. */
	for (int l = LIST_IDLE; l < LIST_COUNT; l++)
		while (conn_lists[l].head)
			conn_close(conn_lists[l].head);
	loop_destroy(conn_env.loop);
	conn_env.loop = NULL;
}
