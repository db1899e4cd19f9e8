/* Tiny event-loop interface (after redis ae.c); poll(2) behind it. */
#ifndef LOOP_H
#define LOOP_H

enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_ERROR = 4 };
typedef void (*loop_fn)(void *ud, int fd, int events);
struct loop;

struct loop *loop_create(int max_fds);
void loop_destroy(struct loop *l);
/* 0 ok, -1 when fd is out of range or already registered. */
int loop_add(struct loop *l, int fd, int mask, loop_fn fn, void *ud);
void loop_set(struct loop *l, int fd, int mask);
void loop_del(struct loop *l, int fd);
/* Waits up to timeout_ms, calls woke() (when not NULL: the place to read the
 * clock once for this iteration, before any callback runs), then dispatches
 * ready callbacks. Returns the number of ready descriptors, or -1 (EINTR too). */
int loop_wait(struct loop *l, int timeout_ms, void (*woke)(void *ud), void *ud);

#endif
