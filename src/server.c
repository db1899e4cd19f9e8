#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "fmt.h"
#include "http_resp.h"
#include "log.h"
#include "metrics.h"

struct server {
	struct conn_set conns;
	int listen_fd;
	unsigned max_conns;
	uint64_t accept_paused_until;  /* after EMFILE: let descriptors free up */
	server_tick_fn tick_fn;
	void *tick_ud;
};

/* Set from a signal handler, so it cannot live in the server. */
static volatile sig_atomic_t stop_requested;

void server_stop(void)
{
	stop_requested = 1;
}

void server_on_tick(struct server *s, server_tick_fn fn, void *ud)
{
	s->tick_fn = fn;
	s->tick_ud = ud;
}

struct loop *server_loop(struct server *s)
{
	return s->conns.loop;
}

void server_wake_parked(void *server)
{
	struct server *s = server;
	conn_wake_parked(&s->conns);
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

struct server *server_create(const struct config *cfg, const struct http_handler *handler,
			     char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port) };
	if (inet_pton(AF_INET, cfg->bind_addr, &sa.sin_addr) != 1) {
		fmt_snprintf(err, errlen, "BIND_ADDR=%s is not an IPv4 address", cfg->bind_addr);
		return NULL;
	}
	struct server *s = calloc(1, sizeof *s);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!s || fd < 0)
		goto err;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
		goto err;

	int fds = raise_fd_limit();
	/* Keep a few descriptors for the journal, Consul and the listener. */
	s->max_conns = cfg->max_conns;
	if ((int)s->max_conns > fds - 32)
		s->max_conns = fds > 64 ? (unsigned)(fds - 32) : 32;
	if (s->max_conns < cfg->max_conns)
		log_warn("msg=\"connection cap lowered to fit the descriptor limit\" max_connections=%u nofile=%d",
			 s->max_conns, fds);
	s->conns.loop = loop_create(fds);
	if (!s->conns.loop) {
		fmt_snprintf(err, errlen, "out of memory creating the event loop for %d descriptors", fds);
		close(fd);
		free(s);
		return NULL;
	}
	s->conns.handler = handler;
	s->listen_fd = fd;
	return s;
err:
	fmt_snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->bind_addr, cfg->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(s);
	return NULL;
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
	struct server *s = ud;
	(void)events;
	for (int i = 0; i < 256; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
				log_warn("msg=\"accept failed, pausing\" error=\"%s\"", strerror(errno));
				s->accept_paused_until = s->conns.mono_ms + 100;
				loop_set(s->conns.loop, s->listen_fd, 0);
			}
			return;
		}
		if (s->conns.open >= s->max_conns) {
			refuse(cfd);
			continue;
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int loopback = peer.sin_family == AF_INET &&
			       (ntohl(peer.sin_addr.s_addr) >> 24) == 127;
		if (!conn_new(&s->conns, cfd, loopback)) {
			close(cfd);
			continue;
		}
		metrics.conns_accepted++;
	}
}

static void read_clock(void *ud)
{
	struct conn_set *set = ud;
	set->now_ms = clock_wall_ms();
	set->mono_ns = clock_mono_ns();
	set->mono_ms = set->mono_ns / 1000000;
	http_resp_set_time(set->now_ms);
}

/* Milliseconds until the earliest deadline, capped so ticks keep coming. */
static int next_timeout(const struct server *s)
{
	const struct conn_set *set = &s->conns;
	uint64_t soonest = set->mono_ms + 1000;
	for (int st = CONN_IDLE; st < CONN_STATES; st++) {
		/* Parked requests have individual wake-up times, not one timeout. */
		if (st == CONN_PARKED) {
			for (const struct conn *c = set->lists[st].head; c; c = c->next)
				if (c->deadline < soonest)
					soonest = c->deadline;
		} else if (set->lists[st].head && set->lists[st].head->deadline < soonest) {
			soonest = set->lists[st].head->deadline;
		}
	}
	if (s->accept_paused_until && s->accept_paused_until < soonest)
		soonest = s->accept_paused_until;
	return soonest <= set->mono_ms ? 0 : (int)(soonest - set->mono_ms);
}

static void run_timers(struct server *s)
{
	struct conn_set *set = &s->conns;
	uint64_t now = set->mono_ms;
	for (int st = CONN_IDLE; st < CONN_STATES; st++)
		while (st != CONN_PARKED && set->lists[st].head && set->lists[st].head->deadline <= now)
			conn_expire(set->lists[st].head);
	/* Parked list is short; resuming may re-park, so take one pass. */
	struct conn *c = set->lists[CONN_PARKED].head, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->deadline <= now)
			conn_resume(c);
	}
	if (s->accept_paused_until && s->accept_paused_until <= now && s->listen_fd >= 0) {
		s->accept_paused_until = 0;
		loop_set(set->loop, s->listen_fd, LOOP_READ);
	}
}

static void begin_drain(struct server *s)
{
	s->conns.draining = 1;
	if (s->listen_fd >= 0) {
		loop_del(s->conns.loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	for (int st = CONN_IDLE; st < CONN_STATES; st++) {
		struct conn *c = s->conns.lists[st].head, *next;
		for (; c; c = next) {
			next = c->next;
			conn_drain(c);
		}
	}
}

void server_run(struct server *s, unsigned drain_ms)
{
	struct conn_set *set = &s->conns;
	read_clock(set);
	loop_add(set->loop, s->listen_fd, LOOP_READ, on_accept, s);
	uint64_t drain_deadline = 0;
	for (;;) {
		if (stop_requested && !set->draining) {
			log_info("msg=\"stopping: draining in-flight requests\" open_connections=%llu",
				 (unsigned long long)set->open);
			begin_drain(s);
			drain_deadline = set->mono_ms + drain_ms;
		}
		if (set->draining && (set->open == 0 || set->mono_ms >= drain_deadline))
			break;
		loop_wait(set->loop, next_timeout(s), read_clock, set);
		run_timers(s);
		if (s->tick_fn)
			s->tick_fn(s->tick_ud, set->now_ms, set->mono_ms);
		/* What this iteration answered is timed with one clock read. */
		if (metrics.duration_pending_routes)
			metrics_duration_flush(clock_mono_ns());
	}
	/* Whatever is still open after the bound is cut off. */
	for (int st = CONN_IDLE; st < CONN_STATES; st++)
		while (set->lists[st].head)
			conn_close(set->lists[st].head);
	loop_destroy(set->loop);
	free(s);
}
