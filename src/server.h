/* The listening socket, the event loop and the connections it drives: the
 * transport. What a request means is the http_handler's business. */
#ifndef SERVER_H
#define SERVER_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "http_handler.h"
#include "loop.h"

struct server;

/* Called once per loop iteration with the loop's clock (the Consul client). */
typedef void (*server_tick_fn)(void *ud, uint64_t now_ms, uint64_t mono_ms);

/* Binds, listens and creates the loop; requests go to handler (which must
 * outlive the server). NULL with err naming address, port and reason. */
struct server *server_create(const struct config *cfg, const struct http_handler *handler,
			     char *err, size_t errlen);
/* The loop, for other clients that share it (Consul). */
struct loop *server_loop(struct server *s);
void server_on_tick(struct server *s, server_tick_fn fn, void *ud);
/* Every parked request tries again at once (what it waits for may have
 * happened). Takes a struct server * as void *, to serve as a callback. */
void server_wake_parked(void *server);
/* Serves until server_stop() (e.g. from a signal handler), then drains
 * in-flight requests for at most drain_ms, closes what is left and frees
 * the server. */
void server_run(struct server *s, unsigned drain_ms);
/* Async-signal-safe. */
void server_stop(void);

#endif
