/* The shell: resolves the agent's name, sends what consul_core asks for on
 * the main connection and the watch connection, and feeds the answers back.
 * Every answer may open or close the gate or commit a txn, so parked
 * requests are woken after each. */
#include "consul.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "consul_core.h"
#include "fmt.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "store_kv.h"

#define STATE_READ_MAX_BYTES (32u << 20)   /* one page of the shard state */

static struct {
	int on, resolved;
	unsigned resolve_at_failures;  /* look the agent's name up again then */
	uint64_t ticked_ms;            /* the last full tick */
	struct consul_core core;
	struct http_client http;       /* the core's requests, one at a time */
	struct http_client watch;      /* a standby's blocking query */
	char token_header[300];        /* "X-Consul-Token: ...\r\n" or "" */
	struct loop *loop;             /* the server's */
	void (*wake)(void *ud);        /* wakes the server's parked requests */
	void *wake_ud;
} cs;

/* CONTAINER_IP; else a specific BIND_ADDR (the only address that answers);
 * else the first up, non-loopback IPv4 interface; else loopback. Writes
 * the address to out and where it came from (a setting's name, the
 * interface's name or "fallback") to from. */
static void advertised_address(const struct config *cfg, char *out, size_t cap,
			       char *from, size_t from_cap)
{
	if (cfg->container_ip[0]) {
		fmt_snprintf(out, cap, "%s", cfg->container_ip);
		fmt_snprintf(from, from_cap, "CONTAINER_IP");
		return;
	}
	if (strcmp(cfg->bind_addr, "0.0.0.0") != 0) {
		fmt_snprintf(out, cap, "%s", cfg->bind_addr);
		fmt_snprintf(from, from_cap, "BIND_ADDR");
		return;
	}
	struct ifaddrs *ifs = NULL;
	fmt_snprintf(out, cap, "127.0.0.1");
	fmt_snprintf(from, from_cap, "fallback");
	if (getifaddrs(&ifs) != 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		const struct sockaddr_in *sa = (const struct sockaddr_in *)i->ifa_addr;
		/* Not inet_ntop: it formats with the C library's snprintf, which
		 * would bring printf back into the binary. */
		const unsigned char *a = (const unsigned char *)&sa->sin_addr;
		if ((size_t)fmt_snprintf(out, cap, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]) < cap) {
			/* Copied: the name lives in the list freed below. */
			fmt_snprintf(from, from_cap, "%s", i->ifa_name);
			break;
		}
	}
	freeifaddrs(ifs);
}

static void feed(enum consul_op op, const struct http_result *r)
{
	struct consul_answer a = { r->status, r->body, r->body_len, r->error,
				   http_result_header_u64(r, "X-Consul-Index") };
	consul_core_answer(&cs.core, op, clock_mono_ms(), &a);
	cs.wake(cs.wake_ud);
}

static void pump(uint64_t mono);

static void on_done(void *ud, const struct http_result *r)
{
	feed((enum consul_op)(intptr_t)ud, r);
	pump(clock_mono_ms());
}

static void on_watch(void *ud, const struct http_result *r)
{
	(void)ud;
	feed(CONSUL_WATCH, r);
	pump(clock_mono_ms());
}

static void send_req(struct http_client *c, const struct consul_req *q, uint64_t mono,
		     http_client_done_fn done)
{
	const struct buf *b = q->body;
	if (b && b->failed) {
		struct http_result r = { 0, "", 0, "out of memory building the request", NULL };
		done((void *)(intptr_t)q->op, &r);
		return;
	}
	if (http_client_request(c, cs.loop, mono, q->method, q->path, cs.token_header,
				b ? b->data : NULL, b ? b->len : 0, q->timeout_ms, done,
				(void *)(intptr_t)q->op) != 0) {
		struct http_result r = { 0, "", 0, "cannot start the request (out of memory?)", NULL };
		done((void *)(intptr_t)q->op, &r);
	}
}

/* Sends whatever the core wants now, on each idle connection. */
static void pump(uint64_t mono)
{
	struct consul_req q;
	if (!cs.resolved)
		return;
	if (!http_client_busy(&cs.http) && cs.core.op == CONSUL_NONE && consul_core_next(&cs.core, mono, &q)) {
		cs.core.op = q.op;   /* before the call: a refused connect reports at once */
		send_req(&cs.http, &q, mono, on_done);
	}
	if (!http_client_busy(&cs.watch) && consul_core_next_watch(&cs.core, mono, &q))
		send_req(&cs.watch, &q, mono, on_watch);
}

int consul_init(const struct config *cfg, struct store *store, struct loop *loop,
		void (*wake)(void *ud), void *wake_ud, char *err, size_t errlen)
{
	char addr[64];
	memset(&cs, 0, sizeof cs);
	cs.loop = loop;
	cs.wake = wake;
	cs.wake_ud = wake_ud;
	if (!cfg->consul_url[0])
		return 0;
	if (store_kv_enable(store) != 0) {
		fmt_snprintf(err, errlen, "out of memory for the replication state");
		return -1;
	}
	if (http_client_init(&cs.http, cfg->consul_url, err, errlen) != 0 ||
	    http_client_init(&cs.watch, cfg->consul_url, err, errlen) != 0)
		return -1;
	cs.http.max_response = STATE_READ_MAX_BYTES;
	cs.on = 1;
	char src[IF_NAMESIZE + 16];
	advertised_address(cfg, addr, sizeof addr, src, sizeof src);
	if (cfg->consul_token[0])
		fmt_snprintf(cs.token_header, sizeof cs.token_header, "X-Consul-Token: %s\r\n", cfg->consul_token);
	uint64_t mono = clock_mono_ms();
	consul_core_init(&cs.core, cfg, store, addr,
			 (mono * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 32) ^ 0x2545F4914F6CDD1Dull);
	log_info("msg=\"Consul enabled\" url=%s service_id=%s address=%s address_from=%s lock=%s state=%s fail_open=%s",
		 cfg->consul_url, cs.core.service_id, addr, src, cs.core.lock_key, cs.core.prefix,
		 cfg->consul_fail_open ? "on" : "off");
	/* Start at once rather than at the first tick, up to a second away. */
	consul_tick(NULL, clock_wall_ms(), mono);
	return 0;
}

void consul_on_claim(int (*claim)(void *ud, unsigned shard), void *claim_ud)
{
	cs.core.claim = claim;
	cs.core.claim_ud = claim_ud;
}

void consul_tick(void *ud, uint64_t now_ms, uint64_t mono_ms)
{
	(void)ud;
	(void)now_ms;
	if (!cs.on)
		return;
	/* The server ticks after every loop iteration, under load once per
	 * request: look at timers once a millisecond (their resolution), and
	 * more often only while the store has something to write. */
	if (mono_ms == cs.ticked_ms && !store_kv_pending(cs.core.store))
		return;
	cs.ticked_ms = mono_ms;
	http_client_tick(&cs.http, mono_ms);
	http_client_tick(&cs.watch, mono_ms);
	if (!cs.resolved && !http_client_busy(&cs.http) && mono_ms >= cs.core.retry_at) {
		char err[300];
		int rc = http_client_resolve(&cs.http, err, sizeof err);
		if (rc == 1)
			return;   /* looking up; the tick comes back */
		if (rc < 0) {
			struct http_result r = { 0, "", 0, err, NULL };
			feed(CONSUL_RESOLVE, &r);
			return;
		}
		memcpy(&cs.watch.addr, &cs.http.addr, sizeof cs.http.addr);
		cs.watch.addr_len = cs.http.addr_len;
		cs.resolved = 1;
	}
	pump(mono_ms);
	/* The agent may have moved: look its name up again every 5 failures. */
	if (!cs.core.failures)
		cs.resolve_at_failures = 5;
	else if (cs.core.failures >= cs.resolve_at_failures && !http_client_busy(&cs.http)) {
		cs.resolve_at_failures = cs.core.failures + 5;
		cs.resolved = 0;
	}
}

/* ---- shutdown: blocking, bounded ------------------------------------- */

struct sync_result { int status; char text[240]; };

static void sync_done(void *ud, const struct http_result *r)
{
	struct sync_result *s = ud;
	s->status = r->status;
	size_t n = r->status == 0 ? strlen(r->error) : r->body_len;
	const char *t = r->status == 0 ? r->error : r->body;
	log_quote(s->text, sizeof s->text, t, n);
}

static void sync_request(uint64_t end, const char *what, const char *method, const char *path)
{
	struct sync_result s = { 0, "" };
	uint64_t now = clock_mono_ms();
	if (now + 50 > end) {
		log_warn("msg=\"no time left to tell Consul\" op=%s path=%s", what, path);
		return;
	}
	if (http_client_request(&cs.http, NULL, now, method, path, cs.token_header, NULL, 0,
				(unsigned)(end - now), sync_done, &s) != 0) {
		log_warn("msg=\"cannot start a Consul request\" op=%s path=%s", what, path);
		return;
	}
	if (s.status == 200)
		log_info("msg=\"Consul: %s done\" path=%s", what, path);
	else
		log_warn("msg=\"Consul: %s failed\" path=%s status=%d error=%s", what, path, s.status, s.text);
}

void consul_shutdown(unsigned budget_ms)
{
	struct consul_core *c = &cs.core;
	if (!cs.on)
		return;
	/* A request that was in flight may have reached Consul. */
	int maybe_registered = c->registered || c->op == CONSUL_REGISTER;
	int maybe_held = c->lock == LOCK_HELD || c->op == CONSUL_ACQUIRE;
	char path[256];
	http_client_close(&cs.http, NULL);   /* the server's loop is gone by now */
	http_client_close(&cs.watch, NULL);
	cs.loop = NULL;
	c->op = CONSUL_NONE;
	uint64_t end = clock_mono_ms() + budget_ms;
	if (cs.http.addr_len) {
		/* Stop advertising first, then give up the shard: a successor that
		 * registers the same service ID is not undone by our deregistration. */
		if (maybe_registered) {
			fmt_snprintf(path, sizeof path, "/v1/agent/service/deregister/%s", c->service_id);
			sync_request(end, "deregister", "PUT", path);
		}
		if (c->session[0] && maybe_held) {
			fmt_snprintf(path, sizeof path, "/v1/kv/%s?release=%s", c->lock_key, c->session);
			sync_request(end, "release lock", "PUT", path);
		}
		if (c->session[0]) {
			fmt_snprintf(path, sizeof path, "/v1/session/destroy/%s", c->session);
			sync_request(end, "destroy session", "PUT", path);
		}
	}
	http_client_close(&cs.http, NULL);
	http_client_free(&cs.http);
	http_client_free(&cs.watch);
	consul_core_free(c);
	metrics.consul_registered = 0;
	metrics.shard_lock_held = 0;
	cs.on = 0;
}

void consul_health(struct buf *b)
{
	if (cs.on)
		consul_core_health(&cs.core, b);
}
