/* Event-loop backends: the same checks run against epoll (default) and poll
 * (built again with -DSHARDID_LOOP_POLL as test_loop_poll). */
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

struct seen { int calls, events, fd; };

static int woke_calls;
static void count_woke(void *ud) { (void)ud; woke_calls++; }

static void record(void *ud, int fd, int events)
{
	struct seen *s = ud;
	s->calls++;
	s->events |= events;
	s->fd = fd;
}

/* Each callback deletes the other descriptor: whichever runs first, the
 * other must not be called afterwards in the same round. */
static struct loop *del_loop;
static int del_fd[2];

static void delete_second(void *ud, int fd, int events)
{
	record(ud, fd, events);
	loop_del(del_loop, del_fd[1]);
}

static void delete_first(void *ud, int fd, int events)
{
	record(ud, fd, events);
	loop_del(del_loop, del_fd[0]);
}

#ifdef SHARDID_LOOP_POLL
#define BACKEND "loop_poll"
#else
#define BACKEND "loop_epoll"
#endif

int main(void)
{
	int a[2], b[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, a);
	socketpair(AF_UNIX, SOCK_STREAM, 0, b);
	struct loop *l = loop_create(1024);
	CHECK(l != NULL);

	struct seen sa = { 0 }, sb = { 0 };
	CHECK(loop_add(l, a[0], LOOP_READ, record, &sa) == 0);
	CHECK(loop_add(l, a[0], LOOP_READ, record, &sa) == -1);  /* twice: refused */
	CHECK(loop_add(l, -1, LOOP_READ, record, &sa) == -1);
	CHECK(loop_add(l, 5000, LOOP_READ, record, &sa) == -1);  /* beyond max_fds */
	CHECK(loop_add(l, b[0], LOOP_READ, record, &sb) == 0);

	/* woke() runs once per wait, before any callback, even on a timeout. */
	woke_calls = 0;
	CHECK(loop_wait(l, 1, count_woke, NULL) == 0);
	CHECK(woke_calls == 1);

	/* Nothing ready: times out with 0. */
	CHECK(loop_wait(l, 10, NULL, NULL) == 0);
	CHECK(sa.calls == 0 && sb.calls == 0);

	/* Readable: only that callback runs, with LOOP_READ and its fd. */
	CHECK(write(a[1], "x", 1) == 1);
	CHECK(loop_wait(l, 100, NULL, NULL) == 1);
	CHECK(sa.calls == 1 && (sa.events & LOOP_READ) && sa.fd == a[0]);
	CHECK(sb.calls == 0);

	/* Level-triggered: unread data is reported again. */
	CHECK(loop_wait(l, 100, NULL, NULL) == 1);
	CHECK(sa.calls == 2);

	/* Mask 0 silences it; LOOP_WRITE reports writability. */
	loop_set(l, a[0], 0);
	CHECK(loop_wait(l, 10, NULL, NULL) == 0);
	CHECK(sa.calls == 2);
	loop_set(l, a[0], LOOP_WRITE);
	sa = (struct seen){ 0 };
	CHECK(loop_wait(l, 100, NULL, NULL) == 1);
	CHECK(sa.calls == 1 && (sa.events & LOOP_WRITE) && !(sa.events & LOOP_READ));

	/* Peer closed: reported as readable (EOF) or error, never lost. */
	loop_set(l, a[0], LOOP_READ);
	close(b[1]);
	sa = sb = (struct seen){ 0 };
	CHECK(loop_wait(l, 100, NULL, NULL) >= 1);
	CHECK(sb.calls == 1 && (sb.events & (LOOP_READ | LOOP_ERROR)));

	/* Both readable (a has a byte, b is at EOF); deletion inside a callback. */
	CHECK(write(a[1], "y", 1) == 1);
	loop_del(l, a[0]);
	loop_del(l, b[0]);
	struct seen s1 = { 0 }, s2 = { 0 };
	del_loop = l;
	del_fd[0] = a[0];
	del_fd[1] = b[0];
	CHECK(loop_add(l, a[0], LOOP_READ, delete_second, &s1) == 0);
	CHECK(loop_add(l, b[0], LOOP_READ, delete_first, &s2) == 0);
	loop_wait(l, 100, NULL, NULL);
	CHECK(s1.calls + s2.calls == 1);
	/* Deleted descriptors can be added again; deleting twice is harmless. */
	loop_del(l, a[0]);
	loop_del(l, b[0]);
	CHECK(loop_add(l, b[0], LOOP_READ, record, &sb) == 0);

	loop_destroy(l);
	close(a[0]); close(a[1]); close(b[0]);
	return check_summary(BACKEND);
}
