/* One client connection: read -> parse -> answer (through the server's
 * http_handler) -> write, keep-alive and pipelining, with its place in the
 * deadline list of its state. Knows HTTP framing, nothing of the API. */
#ifndef CONN_H
#define CONN_H
#include <stddef.h>
#include <stdint.h>
#include "http_handler.h"
#include "http_parse.h"
#include "json.h"
#include "loop.h"

/* What a connection waits for; each state has its own deadline list. */
enum conn_state {
	CONN_NONE,       /* in no list: being closed, or between lists */
	CONN_IDLE,       /* keep-alive, nothing pending */
	CONN_HEAD,       /* part of a request has arrived */
	CONN_WRITE,      /* an answer is being sent */
	CONN_PARKED,     /* the handler asked to be called again later */
	CONN_STATES
};

/* Timeout per state; parked connections carry their own wake-up time. */
#define CONN_IDLE_TIMEOUT_MS   60000                  /* keep-alive with nothing pending */
#define CONN_HEAD_TIMEOUT_MS   HTTP_HEAD_TIMEOUT_MS   /* whole request head, from its first byte */
#define CONN_WRITE_TIMEOUT_MS  10000                  /* no write progress */

struct conn_set;

struct conn {
	struct conn_set *set;
	int fd;
	enum conn_state state;
	struct conn *prev, *next;      /* in its state's list, ordered by deadline */
	uint64_t deadline;             /* monotonic ms */
	char *in;
	size_t in_len, in_cap;
	struct buf out;
	size_t out_off;
	unsigned peer_loopback : 1;
	unsigned closing : 1;          /* close once `out` is flushed */
	unsigned peer_eof : 1;         /* peer half-closed: answer what we have, then close */
	unsigned continue_sent : 1;    /* "100 Continue" already sent for the pending request */
	void *session;                 /* the handler's state for this connection */
};

/* Deadline-ordered lists: every member of a list has the same timeout, so
 * appending at the tail keeps them sorted and expiry pops from the head. */
struct conn_list { struct conn *head, *tail; };

/* A server's connections and what they share. */
struct conn_set {
	struct loop *loop;
	const struct http_handler *handler;
	struct conn_list lists[CONN_STATES];
	uint64_t now_ms, mono_ms;      /* the loop's clock reading for this iteration */
	uint64_t mono_ns;              /* the same monotonic reading in ns */
	int draining;                  /* shutting down: answer what is in flight, keep nothing alive */
	uint64_t open;
};

struct conn *conn_new(struct conn_set *set, int fd, int peer_loopback);
void conn_close(struct conn *c);
void conn_on_event(void *ud, int fd, int events);
/* Deadline reached: idle ones close quietly, slow heads get 408. */
void conn_expire(struct conn *c);
/* Something a parked request may wait for happened (Consul committed a
 * txn, the gate changed): every parked request tries again at once. */
void conn_wake_parked(struct conn_set *set);
/* Parked request's wait is over: answer it and carry on. */
void conn_resume(struct conn *c);
/* Draining: close if nothing is in flight, else close after the answer. */
void conn_drain(struct conn *c);

#endif
