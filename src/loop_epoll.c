/* Linux backend: level-triggered epoll, so the cost of a wait grows with the
 * ready descriptors rather than with all 10,000 open ones. */
#include "loop.h"
#if !defined(SHARDID_LOOP_POLL) && defined(__linux__)

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_BATCH 512

struct handler {
	loop_fn fn;   /* NULL when unregistered */
	void *ud;
	int mask;
};

struct loop {
	int epfd;
	int max_fds;
	struct handler *by_fd;
	struct epoll_event events[LOOP_BATCH];
};

struct loop *loop_create(int max_fds)
{
	struct loop *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->max_fds = max_fds;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->by_fd = calloc((size_t)max_fds, sizeof *l->by_fd);
	if (l->epfd < 0 || !l->by_fd) {
		loop_destroy(l);
		return NULL;
	}
	return l;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->by_fd);
	free(l);
}

static uint32_t epoll_mask(int mask)
{
	return ((mask & LOOP_READ) ? EPOLLIN : 0) | ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
}

int loop_add(struct loop *l, int fd, int mask, loop_fn fn, void *ud)
{
	if (fd < 0 || fd >= l->max_fds || l->by_fd[fd].fn)
		return -1;
	struct epoll_event ev = { .events = epoll_mask(mask), .data.fd = fd };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -1;
	l->by_fd[fd] = (struct handler){ fn, ud, mask };
	return 0;
}

void loop_set(struct loop *l, int fd, int mask)
{
	if (fd < 0 || fd >= l->max_fds || !l->by_fd[fd].fn || l->by_fd[fd].mask == mask)
		return;  /* unchanged masks cost no system call */
	struct epoll_event ev = { .events = epoll_mask(mask), .data.fd = fd };
	epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
	l->by_fd[fd].mask = mask;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->max_fds || !l->by_fd[fd].fn)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->by_fd[fd].fn = NULL;
}

int loop_wait(struct loop *l, int timeout_ms, void (*woke)(void *ud), void *ud)
{
	int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, timeout_ms);
	if (woke)
		woke(ud);
	for (int i = 0; i < n; i++) {
		int fd = l->events[i].data.fd;
		uint32_t re = l->events[i].events;
		struct handler *h = &l->by_fd[fd];
		/* A callback earlier in this batch may have closed fd; a reuse of
		 * the number by a new connection only sees a spurious wake-up. */
		if (!h->fn)
			continue;
		int ev = ((re & EPOLLIN) ? LOOP_READ : 0) | ((re & EPOLLOUT) ? LOOP_WRITE : 0) |
			 ((re & (EPOLLERR | EPOLLHUP)) ? LOOP_ERROR : 0);
		h->fn(h->ud, fd, ev);
	}
	return n;
}

#endif
