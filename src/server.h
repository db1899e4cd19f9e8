/* The listening socket and the event loop that drives every connection. */
#ifndef SERVER_H
#define SERVER_H
#include <stddef.h>
#include "config.h"

/* Binds and listens. 0 ok; -1 with err naming address, port and reason. */
int server_listen(const struct config *cfg, char *err, size_t errlen);
/* Serves until server_stop() (e.g. from a signal handler), then drains
 * in-flight requests for at most drain_ms and returns. */
void server_run(unsigned drain_ms);
/* Async-signal-safe. */
void server_stop(void);
/* Called once per loop iteration with the loop's clock (Consul client hook). */
typedef void (*server_tick_fn)(uint64_t now_ms, uint64_t mono_ms);
void server_on_tick(server_tick_fn fn);

#endif
