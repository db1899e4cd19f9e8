/* Portable backend: poll(2) over a dense descriptor array. Used where epoll
 * is missing, or when built with -DSHARDID_LOOP_POLL. */
#include "loop.h"
#if defined(SHARDID_LOOP_POLL) || !defined(__linux__)

#include <poll.h>
#include <stdlib.h>

struct handler {
	loop_fn fn;
	void *ud;
	int slot;  /* index in pfds, -1 when unregistered */
};

struct loop {
	struct pollfd *pfds;     /* dense array handed to poll() */
	int n;
	int max_fds;
	struct handler *by_fd;   /* indexed by fd */
};

struct loop *loop_create(int max_fds)
{
	struct loop *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->max_fds = max_fds;
	l->pfds = calloc((size_t)max_fds, sizeof *l->pfds);
	l->by_fd = calloc((size_t)max_fds, sizeof *l->by_fd);
	if (!l->pfds || !l->by_fd) {
		loop_destroy(l);
		return NULL;
	}
	for (int i = 0; i < max_fds; i++)
		l->by_fd[i].slot = -1;
	return l;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	free(l->pfds);
	free(l->by_fd);
	free(l);
}

static short poll_mask(int mask)
{
	return (short)(((mask & LOOP_READ) ? POLLIN : 0) | ((mask & LOOP_WRITE) ? POLLOUT : 0));
}

int loop_add(struct loop *l, int fd, int mask, loop_fn fn, void *ud)
{
	if (fd < 0 || fd >= l->max_fds || l->by_fd[fd].slot >= 0)
		return -1;
	struct pollfd *p = &l->pfds[l->n];
	p->fd = fd;
	p->events = poll_mask(mask);
	p->revents = 0;
	l->by_fd[fd] = (struct handler){ fn, ud, l->n };
	l->n++;
	return 0;
}

void loop_set(struct loop *l, int fd, int mask)
{
	if (fd >= 0 && fd < l->max_fds && l->by_fd[fd].slot >= 0)
		l->pfds[l->by_fd[fd].slot].events = poll_mask(mask);
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->max_fds || l->by_fd[fd].slot < 0)
		return;
	int slot = l->by_fd[fd].slot;
	l->n--;
	if (slot != l->n) {
		/* Keep the array dense: the last entry moves into the hole. An
		 * event it carried from this round is seen next round (level-triggered). */
		l->pfds[slot] = l->pfds[l->n];
		l->pfds[slot].revents = 0;
		l->by_fd[l->pfds[slot].fd].slot = slot;
	}
	l->by_fd[fd].slot = -1;
}

int loop_wait(struct loop *l, int timeout_ms, void (*woke)(void *ud), void *ud)
{
	int ready = poll(l->pfds, (nfds_t)l->n, timeout_ms);
	if (woke)
		woke(ud);
	if (ready <= 0)
		return ready;
	int left = ready;
	for (int i = 0; i < l->n && left > 0; i++) {
		struct pollfd *p = &l->pfds[i];
		short re = p->revents;
		if (!re)
			continue;
		p->revents = 0;
		left--;
		int ev = ((re & POLLIN) ? LOOP_READ : 0) | ((re & POLLOUT) ? LOOP_WRITE : 0) |
			 ((re & (POLLERR | POLLHUP | POLLNVAL)) ? LOOP_ERROR : 0);
		struct handler *h = &l->by_fd[p->fd];
		h->fn(h->ud, p->fd, ev);
	}
	return ready;
}

#endif
