/* Consul (SPEC section 7), the I/O shell around consul_core.c: two HTTP
 * connections to the agent (the requests the core asks for, and a
 * standby's blocking query on the lock key), driven by the server's tick
 * so they never block serving; only the shutdown phase waits (briefly). */
#ifndef CONSUL_H
#define CONSUL_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "json.h"
#include "loop.h"
#include "store.h"

/* Prepares the clients (parses CONSUL_URL) on the server's loop, turns on
 * the store's replication and starts talking to the agent. After every
 * answer it calls wake(wake_ud): parked requests may proceed. A no-op when
 * CONSUL_URL is unset. 0 ok, -1 with err. */
int consul_init(const struct config *cfg, struct store *store, struct loop *loop,
		void (*wake)(void *ud), void *wake_ud, char *err, size_t errlen);
/* SHARD_ID=auto: claim(claim_ud, k) makes the instance shard k once its
 * lock is held (consul_core.h); call after consul_init. */
void consul_on_claim(int (*claim)(void *ud, unsigned shard), void *claim_ud);
/* The server's per-iteration hook (server_tick_fn): timeouts, then the
 * next due requests. */
void consul_tick(void *ud, uint64_t now_ms, uint64_t mono_ms);
/* After the server has drained: deregister, release the lock, destroy the
 * session, blocking for at most budget_ms in total. */
void consul_shutdown(unsigned budget_ms);
/* Appends `,"consul":{...}` (registration, lock, state, reachability) to a
 * /health object being built; appends nothing when Consul is off. */
void consul_health(struct buf *b);

#endif
