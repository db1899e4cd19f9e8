/* Consul (SPEC section 7): service registration with an HTTP check, and shard
 * ownership through a session-held KV lock. Runs from the server's tick and
 * never blocks serving; only the shutdown phase waits (briefly) for answers.
 * While another instance holds the shard, or the lock was lost, it sets
 * api_ownership_problem so ID routes answer 503 and /health is unhealthy. */
#ifndef CONSUL_H
#define CONSUL_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "json.h"

/* Session TTL and renewal period; Consul invalidates a session that is not
 * renewed for up to twice its TTL, then holds the key for the lock delay. */
#define CONSUL_SESSION_TTL_S    10
#define CONSUL_LOCK_DELAY_S     5
#define CONSUL_RENEW_MS         (CONSUL_SESSION_TTL_S * 1000 / 3)

/* Prepares the client (parses CONSUL_URL, resolves the host) once the
 * server's loop exists; nothing is sent before the first tick. A no-op when
 * CONSUL_URL is unset. 0 ok, -1 with err when the URL cannot be used. */
int consul_init(const struct config *cfg, char *err, size_t errlen);
/* The server's per-iteration hook: timeouts, then the next due request. */
void consul_tick(uint64_t now_ms, uint64_t mono_ms);
/* After the server has drained: deregister, release the lock, destroy the
 * session, blocking for at most budget_ms in total. */
void consul_shutdown(unsigned budget_ms);
/* Appends `,"consul":{...}` (registration, lock, reachability) to a /health
 * object being built; appends nothing when Consul is off. */
void consul_health(struct buf *b);

#endif
