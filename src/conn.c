#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"

/* Largest input a connection buffers: one maximal head plus a maximal body. */
#define IN_MAX (HTTP_MAX_HEAD + HTTP_MAX_BODY + 1024)
#define IN_INITIAL 1024
/* Stop reading more requests while this much output waits (slow reader). */
#define OUT_HIGH_WATER (256 * 1024)
/* Give big batch buffers back once they are written. */
#define OUT_KEEP_MAX (64 * 1024)

/* A list holds one timeout, so that it stays sorted by deadline. */
static const uint64_t state_timeout_ms[CONN_STATES] = {
	[CONN_IDLE] = CONN_IDLE_TIMEOUT_MS,
	[CONN_HEAD] = CONN_HEAD_TIMEOUT_MS,
	[CONN_WRITE] = CONN_WRITE_TIMEOUT_MS,
};

static void list_remove(struct conn *c)
{
	if (c->state == CONN_NONE)
		return;
	struct conn_list *l = &c->set->lists[c->state];
	if (c->prev) c->prev->next = c->next; else l->head = c->next;
	if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
	c->prev = c->next = NULL;
	c->state = CONN_NONE;
}

static void list_append(struct conn *c, enum conn_state state, uint64_t deadline)
{
	list_remove(c);
	struct conn_list *l = &c->set->lists[state];
	c->state = state;
	c->deadline = deadline;
	c->prev = l->tail;
	if (l->tail) l->tail->next = c; else l->head = c;
	l->tail = c;
}

/* Moves c to the tail of state's list, with that state's timeout from now. */
static void enter(struct conn *c, enum conn_state state)
{
	list_append(c, state, c->set->mono_ms + state_timeout_ms[state]);
}

struct conn *conn_new(struct conn_set *set, int fd, int peer_loopback)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->set = set;
	c->fd = fd;
	c->peer_loopback = peer_loopback ? 1 : 0;
	buf_init(&c->out);
	if (loop_add(set->loop, fd, LOOP_READ, conn_on_event, c) != 0) {
		free(c);
		return NULL;
	}
	enter(c, CONN_IDLE);
	set->open++;
	metrics.conns_open = set->open;
	return c;
}

void conn_close(struct conn *c)
{
	struct conn_set *set = c->set;
	list_remove(c);
	loop_del(set->loop, c->fd);
	close(c->fd);
	free(c->in);
	buf_free(&c->out);
	if (c->session)
		set->handler->session_free(set->handler->app, c->session);
	free(c);
	set->open--;
	metrics.conns_open = set->open;
}

static size_t out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

/* Sends what is buffered. Returns -1 when the connection was closed. */
static int flush(struct conn *c)
{
	while (out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, out_pending(c), MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			if (c->state == CONN_WRITE)  /* progress restarts the write timer */
				enter(c, CONN_WRITE);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		conn_close(c);
		return -1;
	}
	c->out.len = c->out_off = 0;
	if (c->out.cap > OUT_KEEP_MAX) {
		buf_free(&c->out);
		buf_init(&c->out);
	}
	if (c->closing) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void reject(struct conn *c, int status)
{
	const struct http_handler *h = c->set->handler;
	h->reject(h->app, &c->out, status);
	c->closing = 1;
}

/* Answers every complete request in the input buffer, in order. Stops at a
 * partial request or a parked one; returns 1 when it stopped because too much
 * output is waiting (the caller continues once that is written). */
static int process(struct conn *c)
{
	struct conn_set *set = c->set;
	size_t pos = 0;
	int backpressure = 0;
	while (!c->closing && pos < c->in_len) {
		if (out_pending(c) >= OUT_HIGH_WATER) {
			backpressure = 1;
			break;
		}
		struct http_request req;
		int head = http_parse_request(c->in + pos, c->in_len - pos, &req);
		if (head < 0) {
			reject(c, -head);
			break;
		}
		if (head == 0)
			break;
		size_t body_len = req.content_length > 0 ? (size_t)req.content_length : 0;
		if (c->in_len - pos - (size_t)head < body_len) {
			if (req.expect_continue && !c->continue_sent) {
				buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				c->continue_sent = 1;
			}
			break;
		}
		struct http_exchange ex = {
			.http = &req,
			.body = c->in + pos + head,
			.body_len = body_len,
			.peer_loopback = c->peer_loopback,
			.keep_alive = req.keep_alive && !set->draining && !c->peer_eof,
			.now_ms = set->now_ms,
			.mono_ms = set->mono_ms,
			.mono_ns = set->mono_ns,
			.session = &c->session,
		};
		uint64_t wait_ms = 0;
		if (set->handler->serve(set->handler->app, &ex, &c->out, &wait_ms) == HANDLER_WAIT) {
			list_append(c, CONN_PARKED, set->mono_ms + wait_ms);
			break;
		}
		c->continue_sent = 0;
		if (!ex.keep_alive)
			c->closing = 1;
		pos += (size_t)head + body_len;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	return backpressure;
}

/* Chooses the deadline list that matches what the connection waits for. */
static void schedule(struct conn *c, int had_partial)
{
	if (c->state == CONN_PARKED) {
		/* Nothing to read until the parked request is answered. */
		loop_set(c->set->loop, c->fd, out_pending(c) ? LOOP_WRITE : 0);
		return;
	}
	if (out_pending(c)) {
		if (c->state != CONN_WRITE)
			enter(c, CONN_WRITE);
	} else if (c->in_len) {
		/* The header timer runs from the first byte of a request, so a
		 * client trickling bytes cannot extend it. */
		if (!had_partial || c->state != CONN_HEAD)
			enter(c, CONN_HEAD);
	} else {
		enter(c, CONN_IDLE);
	}
	int want_read = !c->closing && !c->peer_eof && out_pending(c) < OUT_HIGH_WATER;
	loop_set(c->set->loop, c->fd, (want_read ? LOOP_READ : 0) | (out_pending(c) ? LOOP_WRITE : 0));
}

/* Reads what the socket has. Returns -1 on a fatal error (connection closed). */
static int fill(struct conn *c)
{
	for (;;) {
		if (c->in_len == c->in_cap) {
			if (c->in_cap >= IN_MAX)
				return 0;  /* full: the parser has enough to decide */
			size_t cap = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
			if (cap > IN_MAX)
				cap = IN_MAX;
			char *p = realloc(c->in, cap);
			if (!p) {
				conn_close(c);
				return -1;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->in_len < c->in_cap)
				return 0;  /* short read: the socket is drained */
			continue;
		}
		if (n == 0) {
			c->peer_eof = 1;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		conn_close(c);
		return -1;
	}
}

/* process + flush + reschedule, shared by every way a connection wakes up. */
static void advance(struct conn *c, int had_partial)
{
	int backpressure;
	do {
		backpressure = process(c);
		if (flush(c) != 0)
			return;
	} while (backpressure && !out_pending(c));
	if (c->peer_eof && !out_pending(c) && c->state != CONN_PARKED) {
		/* Half-closed: everything answerable has been answered, and an
		 * incomplete request can never complete. */
		conn_close(c);
		return;
	}
	schedule(c, had_partial);
}

void conn_on_event(void *ud, int fd, int events)
{
	struct conn *c = ud;
	(void)fd;
	int had_partial = c->in_len > 0;
	if (c->state == CONN_PARKED) {
		if ((events & LOOP_ERROR) && !(events & LOOP_WRITE)) {
			conn_close(c);  /* peer gone while its request waits */
			return;
		}
		if (flush(c) == 0)
			loop_set(c->set->loop, c->fd, out_pending(c) ? LOOP_WRITE : 0);
		return;
	}
	if ((events & (LOOP_READ | LOOP_ERROR)) && out_pending(c) < OUT_HIGH_WATER && fill(c) != 0)
		return;
	advance(c, had_partial);
}

void conn_expire(struct conn *c)
{
	metrics.conns_timed_out++;
	if (c->state == CONN_HEAD && c->in_len && !out_pending(c)) {
		/* A head that did not arrive in time: say so, then close. */
		reject(c, 408);
		send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	conn_close(c);
}

void conn_wake_parked(struct conn_set *set)
{
	for (struct conn *c = set->lists[CONN_PARKED].head; c; c = c->next)
		c->deadline = set->mono_ms;
}

void conn_resume(struct conn *c)
{
	list_remove(c);
	advance(c, 0);
}

void conn_drain(struct conn *c)
{
	if (c->state == CONN_PARKED)
		return;  /* answered, with Connection: close, when its wait is over */
	/* A request already received is answered (with Connection: close); an
	 * incomplete one is dropped, since nothing of it is in flight yet. */
	process(c);
	if (c->state == CONN_PARKED)
		return;
	c->in_len = 0;
	c->closing = 1;
	if (flush(c) == 0)
		schedule(c, 0);
}
