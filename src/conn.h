/* One client connection: read -> parse -> answer -> write, keep-alive and
 * pipelining, with its place in a deadline list. */
#ifndef CONN_H
#define CONN_H
#include <stddef.h>
#include <stdint.h>
#include "api.h"
#include "http_parse.h"
#include "json.h"
#include "loop.h"

#define CONN_HEADER_TIMEOUT_MS HTTP_HEAD_TIMEOUT_MS   /* whole request head, from its first byte */
#define CONN_IDLE_TIMEOUT_MS   60000   /* keep-alive with nothing pending */
#define CONN_WRITE_TIMEOUT_MS  10000   /* no write progress */

enum conn_list_id { LIST_NONE, LIST_IDLE, LIST_ACTIVE, LIST_PARKED, LIST_COUNT };

struct conn {
	int fd;
	enum conn_list_id list;
	struct conn *prev, *next;      /* in its list, ordered by deadline */
	uint64_t deadline;             /* monotonic ms */
	char *in;
	size_t in_len, in_cap;
	struct buf out;
	size_t out_off;
	unsigned peer_loopback : 1;
	unsigned closing : 1;          /* close once `out` is flushed */
	unsigned peer_eof : 1;         /* peer half-closed: answer what we have, then close */
	unsigned continue_sent : 1;    /* "100 Continue" already sent for the pending request */
	struct api_resume resume;
};

/* Deadline-ordered lists: every member of a list has the same timeout, so
 * appending at the tail keeps them sorted and expiry pops from the head. */
struct conn_list { struct conn *head, *tail; };
extern struct conn_list conn_lists[LIST_COUNT];

struct conn_env {
	struct loop *loop;
	uint64_t now_ms, mono_ms;      /* the loop's clock reading for this iteration */
	int draining;                  /* shutting down: answer what is in flight, keep nothing alive */
	uint64_t open;
};
extern struct conn_env conn_env;

struct conn *conn_new(int fd, int peer_loopback);
void conn_close(struct conn *c);
void conn_on_event(void *ud, int fd, int events);
/* Deadline reached: idle ones close quietly, slow heads get 408. */
void conn_expire(struct conn *c);
/* Something a parked request may wait for happened (Consul committed a
 * txn, the gate changed): every parked request tries again at once. */
void conn_wake_parked(void);
/* Parked request's wait is over: answer it and carry on. */
void conn_resume(struct conn *c);
/* Draining: close if nothing is in flight, else close after the answer. */
void conn_drain(struct conn *c);

#endif
