/* Consul registration and shard lock, as a state machine advanced by the
 * server's tick: at most one request in flight, the most urgent due one first
 * (renew the session, create it, acquire the lock, register, verify the
 * registration). Transport errors and 5xx back off exponentially with
 * jitter; 4xx answers are configuration problems, logged with Consul's own
 * words and retried slowly. */
#include "consul.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "conn.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"

#define REQUEST_TIMEOUT_MS    5000
#define BACKOFF_MIN_MS        500
#define BACKOFF_MAX_MS        30000
#define CLIENT_ERROR_RETRY_MS 60000   /* after a 4xx: a configuration problem */
#define VERIFY_EVERY_MS       10000   /* is the registration still there? */
#define ACQUIRE_EVERY_MS      1000    /* standby asking for the lock */
#define SESSION_TTL_MS        (CONSUL_SESSION_TTL_S * 1000)

enum op { OP_NONE, OP_RESOLVE, OP_CLEAR, OP_REGISTER, OP_VERIFY, OP_SESSION, OP_ACQUIRE, OP_RENEW };
static const char *const op_names[] = {
	"none", "resolve-host", "clear-registration", "register", "verify-registration",
	"create-session", "acquire-lock", "renew-session",
};

enum lock_state { LOCK_UNKNOWN, LOCK_HELD, LOCK_ELSEWHERE, LOCK_LOST };
static const char *const lock_names[] = { "unknown", "held", "held-elsewhere", "lost" };

static struct {
	int on, strict, resolved;
	const struct config *cfg;
	struct http_client http;
	char addr[64];                 /* advertised to Consul */
	char service_id[96];
	char lock_key[128];
	char token_header[300];        /* "X-Consul-Token: ...\r\n" or "" */

	enum op op;                    /* in flight */
	int reachable;                 /* the last request got an answer below 500 */
	unsigned failures;             /* consecutive transport errors / 5xx */
	uint64_t backoff_ms, retry_at;
	uint64_t rng;

	int registered;
	int cleared;                   /* stale entry of our service ID removed before registering */
	uint64_t register_at, verify_at;

	char session[64];
	enum lock_state lock;
	uint64_t session_at, acquire_at, renew_at;
	uint64_t confirmed_at;         /* last answer that confirmed we hold the lock */
	char last_error[320];
} cs;

/* Consul's plain-text error bodies in a logfmt- and JSON-safe form. */
static void printable(const char *s, size_t n, char *out, size_t cap)
{
	size_t j = 0;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n && j + 4 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		out[j++] = c == '"' ? '\'' : c == '\\' ? '/' : (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
	}
	if (j + 4 >= cap && n > 0) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static uint64_t jitter(uint64_t ms)
{
	cs.rng ^= cs.rng << 13;
	cs.rng ^= cs.rng >> 7;
	cs.rng ^= cs.rng << 17;
	return ms / 2 + cs.rng % (ms / 2 + 1);
}

/* CONTAINER_IP; else a specific BIND_ADDR (the only address that answers);
 * else the first up, non-loopback IPv4 interface; else loopback. */
static const char *advertised_address(const struct config *cfg, char *out, size_t cap)
{
	if (cfg->container_ip[0]) {
		snprintf(out, cap, "%s", cfg->container_ip);
		return "CONTAINER_IP";
	}
	if (strcmp(cfg->bind_addr, "0.0.0.0") != 0) {
		snprintf(out, cap, "%s", cfg->bind_addr);
		return "BIND_ADDR";
	}
	struct ifaddrs *ifs = NULL;
	const char *src = "fallback";
	snprintf(out, cap, "127.0.0.1");
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
				continue;
			const struct sockaddr_in *sa = (const struct sockaddr_in *)i->ifa_addr;
			if (inet_ntop(AF_INET, &sa->sin_addr, out, (socklen_t)cap)) {
				src = i->ifa_name;
				break;
			}
		}
		freeifaddrs(ifs);
	}
	return src;
}

/* Sets or clears the ownership gate from the lock state. */
static void update_gate(uint64_t mono)
{
	char p[sizeof api_ownership_problem + 64];
	p[0] = '\0';
	switch (cs.lock) {
	case LOCK_ELSEWHERE:
		snprintf(p, sizeof p, "shard %u is held by another instance (Consul lock %s)",
			 cs.cfg->shard_id, cs.lock_key);
		break;
	case LOCK_LOST:
		snprintf(p, sizeof p, "lost the Consul lock %s (session gone); re-acquiring", cs.lock_key);
		break;
	case LOCK_HELD:
		if (cs.strict && mono - cs.confirmed_at > SESSION_TTL_MS)
			snprintf(p, sizeof p, "Consul lock %s not renewed for %llus (strict mode)", cs.lock_key,
				 (unsigned long long)((mono - cs.confirmed_at) / 1000));
		break;
	case LOCK_UNKNOWN:
		if (cs.strict)
			snprintf(p, sizeof p, "waiting for the Consul lock %s (strict mode)%s", cs.lock_key,
				 cs.failures ? ": Consul unreachable" : "");
		break;
	}
	p[sizeof api_ownership_problem - 1] = '\0';
	if (strcmp(p, api_ownership_problem) != 0) {
		if (p[0])
			log_warn("msg=\"not handing out IDs\" reason=\"%s\"", p);
		else
			log_info("msg=\"handing out IDs\" shard=%u lock=%s", cs.cfg->shard_id, lock_names[cs.lock]);
		memcpy(api_ownership_problem, p, sizeof api_ownership_problem);
	}
	metrics.shard_lock_held = cs.lock == LOCK_HELD && !p[0];
	metrics.consul_registered = cs.registered;
}

static void on_done(void *ud, const struct http_result *r);

static void start(enum op op, uint64_t mono, const char *method, const char *path,
		  const struct buf *body)
{
	if (body && body->failed) {
		log_error("msg=\"out of memory building a Consul request\" op=%s", op_names[op]);
		cs.retry_at = mono + BACKOFF_MAX_MS;
		return;
	}
	cs.op = op;   /* before the call: a refused connect reports at once */
	if (http_client_request(&cs.http, conn_env.loop, mono, method, path, cs.token_header,
				body ? body->data : NULL, body ? body->len : 0, REQUEST_TIMEOUT_MS,
				on_done, NULL) != 0) {
		cs.op = OP_NONE;
		log_error("msg=\"cannot start a Consul request\" op=%s path=%s", op_names[op], path);
		cs.retry_at = mono + BACKOFF_MAX_MS;
	}
}

static void req_register(uint64_t mono)
{
	const struct config *c = cs.cfg;
	struct buf b;
	char tag[32], check[128];
	buf_init(&b);
	snprintf(tag, sizeof tag, "shard-%u", c->shard_id);
	snprintf(check, sizeof check, "http://%s:%u/health", cs.addr, c->port);
	buf_putc(&b, '{');
	json_key(&b, "ID");      json_cstr(&b, cs.service_id);   buf_putc(&b, ',');
	json_key(&b, "Name");    json_cstr(&b, c->service_name); buf_putc(&b, ',');
	json_key(&b, "Address"); json_cstr(&b, cs.addr);         buf_putc(&b, ',');
	json_key(&b, "Port");    buf_u64(&b, c->port);           buf_putc(&b, ',');
	json_key(&b, "Tags");    buf_putc(&b, '[');  json_cstr(&b, tag);  buf_puts(&b, "],");
	json_key(&b, "Meta");    buf_putc(&b, '{');
	json_key(&b, "shard_id");     json_u64_str(&b, c->shard_id);     buf_putc(&b, ',');
	json_key(&b, "total_shards"); json_u64_str(&b, c->total_shards); buf_putc(&b, ',');
	json_key(&b, "version");      json_cstr(&b, SHARDID_VERSION);
	buf_puts(&b, "},");
	json_key(&b, "Check");   buf_putc(&b, '{');
	json_key(&b, "Name");    json_cstr(&b, "shardid /health"); buf_putc(&b, ',');
	json_key(&b, "HTTP");    json_cstr(&b, check);             buf_putc(&b, ',');
	/* Consul waits a random part of the interval before the first check;
	 * we register only while serving, so start out passing. */
	buf_puts(&b, "\"Status\":\"passing\",\"Interval\":\"10s\",\"Timeout\":\"2s\","
		 "\"DeregisterCriticalServiceAfter\":\"1m\"}}");
	start(OP_REGISTER, mono, "PUT", "/v1/agent/service/register", &b);
	buf_free(&b);
}

static void req_session(uint64_t mono)
{
	struct buf b;
	char ttl[16], delay[16];
	buf_init(&b);
	snprintf(ttl, sizeof ttl, "%us", CONSUL_SESSION_TTL_S);
	snprintf(delay, sizeof delay, "%us", CONSUL_LOCK_DELAY_S);
	buf_putc(&b, '{');
	json_key(&b, "Name");      json_cstr(&b, cs.service_id); buf_putc(&b, ',');
	json_key(&b, "TTL");       json_cstr(&b, ttl);           buf_putc(&b, ',');
	json_key(&b, "LockDelay"); json_cstr(&b, delay);         buf_putc(&b, ',');
	/* Only the TTL decides: no node checks (Consul's default is serfHealth). */
	buf_puts(&b, "\"Behavior\":\"delete\",\"NodeChecks\":[]}");
	start(OP_SESSION, mono, "PUT", "/v1/session/create", &b);
	buf_free(&b);
}

static void req_acquire(uint64_t mono)
{
	const struct config *c = cs.cfg;
	struct buf b;
	char path[256];
	buf_init(&b);
	buf_putc(&b, '{');
	json_key(&b, "service_id"); json_cstr(&b, cs.service_id); buf_putc(&b, ',');
	json_key(&b, "address");    json_cstr(&b, cs.addr);       buf_putc(&b, ',');
	json_key(&b, "port");       buf_u64(&b, c->port);         buf_putc(&b, ',');
	json_key(&b, "pid");        buf_u64(&b, (uint64_t)getpid()); buf_putc(&b, ',');
	json_key(&b, "shard");      buf_u64(&b, c->shard_id);     buf_putc(&b, ',');
	json_key(&b, "version");    json_cstr(&b, SHARDID_VERSION);
	buf_putc(&b, '}');
	snprintf(path, sizeof path, "/v1/kv/%s?acquire=%s", cs.lock_key, cs.session);
	start(OP_ACQUIRE, mono, "PUT", path, &b);
	buf_free(&b);
}

static void req_simple(enum op op, uint64_t mono, const char *method, const char *fmt, const char *arg)
{
	char path[256];
	snprintf(path, sizeof path, fmt, arg);
	start(op, mono, method, path, NULL);
}

/* Starts the most urgent request that is due, if any. */
static void next_request(uint64_t mono)
{
	if (cs.session[0] && mono >= cs.renew_at)
		req_simple(OP_RENEW, mono, "PUT", "/v1/session/renew/%s", cs.session);
	else if (!cs.session[0] && mono >= cs.session_at)
		req_session(mono);
	else if (cs.session[0] && cs.lock != LOCK_HELD && mono >= cs.acquire_at)
		req_acquire(mono);
	/* Only the lock holder is advertised: a standby (or an instance that
	 * does not know yet, e.g. its session request failed) with the same
	 * service ID would replace or clear the holder's registration. Consul keeps
	 * the check status of an entry registered again under the same ID, so a
	 * predecessor's (a crashed holder's) entry is removed first: the new
	 * one starts out passing instead of inheriting "critical". */
	else if (!cs.registered && cs.lock == LOCK_HELD && !api_ownership_problem[0] &&
		 mono >= cs.register_at) {
		if (cs.cleared)
			req_register(mono);
		else
			req_simple(OP_CLEAR, mono, "PUT", "/v1/agent/service/deregister/%s", cs.service_id);
	}
	else if (cs.registered && mono >= cs.verify_at)
		req_simple(OP_VERIFY, mono, "GET", "/v1/agent/service/%s", cs.service_id);
}

/* 4xx (and other unexpected answers): Consul is up but refuses; retry slowly. */
static void refused(enum op op, const struct http_result *r, uint64_t *at, uint64_t mono, uint64_t retry_ms)
{
	char body[240];
	printable(r->body, r->body_len, body, sizeof body);
	snprintf(cs.last_error, sizeof cs.last_error, "%s: HTTP %d: %s", op_names[op], r->status, body);
	log_warn("msg=\"Consul refused a request\" op=%s status=%d body=\"%s\" retry_in_s=%llu",
		 op_names[op], r->status, body, (unsigned long long)(retry_ms / 1000));
	*at = mono + retry_ms;
}

/* Transport error or 5xx: back off (capped, jittered) before anything else. */
static void failed(enum op op, const struct http_result *r, uint64_t mono)
{
	char why[240];
	if (r->status == 0) {
		snprintf(why, sizeof why, "%s", r->error);
	} else {
		char body[200];
		printable(r->body, r->body_len, body, sizeof body);
		snprintf(why, sizeof why, "HTTP %d: %s", r->status, body);
	}
	snprintf(cs.last_error, sizeof cs.last_error, "%s: %s", op_names[op], why);
	uint64_t delay = jitter(cs.backoff_ms);
	/* A live session must not lapse while we wait out the backoff. */
	if (cs.session[0] && delay > CONSUL_RENEW_MS)
		delay = CONSUL_RENEW_MS;
	cs.retry_at = mono + delay;
	cs.failures++;
	if (cs.failures == 1 || cs.failures % 10 == 0)
		log_warn("msg=\"Consul request failed; retrying\" op=%s error=\"%s\" failures=%u retry_in_ms=%llu serving=%s",
			 op_names[op], why, cs.failures, (unsigned long long)delay,
			 api_ownership_problem[0] ? "no" : "yes");
	else
		log_debug("msg=\"Consul request failed; retrying\" op=%s error=\"%s\" failures=%u retry_in_ms=%llu",
			  op_names[op], why, cs.failures, (unsigned long long)delay);
	cs.backoff_ms = cs.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cs.backoff_ms * 2;
	if (r->status == 0) {
		cs.reachable = 0;
		/* The agent may have moved: look its name up again now and then. */
		if (op != OP_RESOLVE && cs.failures % 5 == 0)
			cs.resolved = 0;
	}
	/* Consul answers 500 "invalid session" once the session is gone. */
	if (op == OP_ACQUIRE && r->status >= 500 && memmem(r->body, r->body_len, "session", 7)) {
		log_warn("msg=\"Consul rejected the session; creating a new one\" session=%s", cs.session);
		cs.session[0] = '\0';
		cs.session_at = 0;
	}
}

/* The start of the body is `word` (Consul writes true/false plus a newline). */
static int body_is(const struct http_result *r, const char *word)
{
	size_t n = strlen(word);
	return r->body_len >= n && memcmp(r->body, word, n) == 0 &&
	       (r->body_len == n || r->body[n] == '\n' || r->body[n] == '\r' || r->body[n] == ' ');
}

static void lose_session(uint64_t mono)
{
	cs.session[0] = '\0';
	cs.session_at = mono;
	if (cs.lock == LOCK_HELD) {
		log_warn("msg=\"shard lock lost: the Consul session is gone (expired, destroyed or the agent lost its state)\" key=%s",
			 cs.lock_key);
		cs.lock = LOCK_LOST;
		cs.registered = cs.cleared = 0;   /* re-registered once the lock is back */
	}
}

static void answered(enum op op, const struct http_result *r, uint64_t mono)
{
	switch (op) {
	case OP_NONE:
	case OP_RESOLVE:
		break;
	case OP_CLEAR:
		/* 404: nothing to clear. Anything else: register regardless. */
		if (r->status != 200 && r->status != 404)
			refused(op, r, &cs.register_at, mono, 0);
		cs.cleared = 1;
		break;
	case OP_REGISTER:
		if (r->status != 200) {
			refused(op, r, &cs.register_at, mono, CLIENT_ERROR_RETRY_MS);
			break;
		}
		cs.registered = 1;
		cs.verify_at = mono + VERIFY_EVERY_MS;
		log_info("msg=\"registered in Consul\" service_id=%s address=%s port=%u",
			 cs.service_id, cs.addr, cs.cfg->port);
		break;
	case OP_VERIFY:
		if (r->status == 200) {
			cs.verify_at = mono + VERIFY_EVERY_MS;
		} else if (r->status == 404) {
			log_warn("msg=\"registration missing in Consul (agent restarted?); registering again\" service_id=%s",
				 cs.service_id);
			cs.registered = cs.cleared = 0;
			cs.register_at = mono;
		} else {
			refused(op, r, &cs.verify_at, mono, CLIENT_ERROR_RETRY_MS);
		}
		break;
	case OP_SESSION: {
		struct json_object o;
		char err[120];
		const struct json_field *id = NULL;
		if (r->status != 200) {
			refused(op, r, &cs.session_at, mono, CLIENT_ERROR_RETRY_MS);
			break;
		}
		if (json_parse_object(r->body, r->body_len, &o, err, sizeof err) == 0)
			id = json_get(&o, "ID");
		if (!id || id->type != JSON_STRING || id->str_len == 0 ||
		    id->str_len >= sizeof cs.session || strspn(id->str, "0123456789abcdefABCDEF-") != id->str_len) {
			refused(op, r, &cs.session_at, mono, BACKOFF_MAX_MS);
			break;
		}
		memcpy(cs.session, id->str, id->str_len + 1);
		cs.acquire_at = mono;
		cs.renew_at = mono + CONSUL_RENEW_MS;
		log_info("msg=\"Consul session created\" session=%s ttl_s=%u lock_delay_s=%u",
			 cs.session, CONSUL_SESSION_TTL_S, CONSUL_LOCK_DELAY_S);
		break;
	}
	case OP_ACQUIRE:
		if (r->status == 200 && body_is(r, "true")) {
			if (cs.lock != LOCK_HELD)
				log_info("msg=\"shard lock acquired\" key=%s session=%s", cs.lock_key, cs.session);
			cs.lock = LOCK_HELD;
			cs.confirmed_at = mono;
		} else if (r->status == 200 && body_is(r, "false")) {
			if (cs.lock != LOCK_ELSEWHERE)
				log_warn("msg=\"shard lock is held by another instance; standing by\" key=%s",
					 cs.lock_key);
			cs.lock = LOCK_ELSEWHERE;
			cs.registered = cs.cleared = 0;
			cs.acquire_at = mono + ACQUIRE_EVERY_MS;
		} else {
			refused(op, r, &cs.acquire_at, mono, CLIENT_ERROR_RETRY_MS);
		}
		break;
	case OP_RENEW:
		if (r->status == 200) {
			cs.renew_at = mono + CONSUL_RENEW_MS;
			if (cs.lock == LOCK_HELD)
				cs.confirmed_at = mono;
		} else if (r->status == 404) {
			lose_session(mono);
		} else {
			refused(op, r, &cs.renew_at, mono, CONSUL_RENEW_MS);
		}
		break;
	}
}

static void on_done(void *ud, const struct http_result *r)
{
	(void)ud;
	enum op op = cs.op;
	uint64_t mono = clock_mono_ms();
	cs.op = OP_NONE;
	if (r->status == 0 || r->status >= 500) {
		failed(op, r, mono);
	} else {
		if (cs.failures)
			log_info("msg=\"Consul reachable again\" after_failures=%u", cs.failures);
		cs.failures = 0;
		cs.reachable = 1;
		cs.backoff_ms = BACKOFF_MIN_MS;
		cs.last_error[0] = '\0';
		answered(op, r, mono);
	}
	update_gate(mono);
}

int consul_init(const struct config *cfg, char *err, size_t errlen)
{
	memset(&cs, 0, sizeof cs);
	if (!cfg->consul_url[0])
		return 0;
	cs.cfg = cfg;
	cs.strict = cfg->consul_strict;
	if (http_client_init(&cs.http, cfg->consul_url, err, errlen) != 0)
		return -1;
	cs.on = 1;
	const char *src = advertised_address(cfg, cs.addr, sizeof cs.addr);
	snprintf(cs.service_id, sizeof cs.service_id, "%s-shard-%u", cfg->service_name, cfg->shard_id);
	snprintf(cs.lock_key, sizeof cs.lock_key, "%s/shards/%u", cfg->service_name, cfg->shard_id);
	if (cfg->consul_token[0])
		snprintf(cs.token_header, sizeof cs.token_header, "X-Consul-Token: %s\r\n", cfg->consul_token);
	cs.backoff_ms = BACKOFF_MIN_MS;
	uint64_t mono = clock_mono_ms();
	cs.rng = (mono * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 32) ^ 0x2545F4914F6CDD1Dull;
	log_info("msg=\"Consul enabled\" url=%s service_id=%s address=%s address_from=%s lock=%s strict=%s",
		 cfg->consul_url, cs.service_id, cs.addr, src, cs.lock_key, cs.strict ? "on" : "off");
	update_gate(mono);
	/* Start at once rather than at the first tick, up to a second away. */
	if (conn_env.loop)
		consul_tick(clock_wall_ms(), mono);
	return 0;
}

void consul_tick(uint64_t now_ms, uint64_t mono_ms)
{
	(void)now_ms;
	if (!cs.on)
		return;
	http_client_tick(&cs.http, mono_ms);
	/* The one state that changes with time alone: a strict holder whose
	 * renewals stopped getting through. */
	if (cs.strict && cs.lock == LOCK_HELD && !api_ownership_problem[0] &&
	    mono_ms - cs.confirmed_at > SESSION_TTL_MS)
		update_gate(mono_ms);
	if (http_client_busy(&cs.http) || mono_ms < cs.retry_at)
		return;
	if (!cs.resolved) {
		char err[300];
		int rc = http_client_resolve(&cs.http, err, sizeof err);
		if (rc == 1)
			return;   /* looking up; the tick comes back */
		if (rc < 0) {
			struct http_result r = { 0, "", 0, err };
			failed(OP_RESOLVE, &r, mono_ms);
			update_gate(mono_ms);
			return;
		}
		cs.resolved = 1;
	}
	next_request(mono_ms);
}

/* ---- shutdown: blocking, bounded ------------------------------------- */

struct sync_result { int status; char text[240]; };

static void sync_done(void *ud, const struct http_result *r)
{
	struct sync_result *s = ud;
	s->status = r->status;
	if (r->status == 0)
		snprintf(s->text, sizeof s->text, "%s", r->error);
	else
		printable(r->body, r->body_len, s->text, sizeof s->text);
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
		log_warn("msg=\"Consul: %s failed\" path=%s status=%d error=\"%s\"", what, path, s.status, s.text);
}

void consul_shutdown(unsigned budget_ms)
{
	if (!cs.on)
		return;
	/* A request that was in flight may have reached Consul. */
	int maybe_registered = cs.registered || cs.op == OP_REGISTER;
	int maybe_held = cs.lock == LOCK_HELD || cs.op == OP_ACQUIRE;
	char path[256];
	http_client_close(&cs.http, NULL);   /* the server's loop is gone by now */
	cs.op = OP_NONE;
	uint64_t end = clock_mono_ms() + budget_ms;
	if (cs.http.addr_len) {
		/* Stop advertising first, then give up the shard: a successor that
		 * registers the same service ID is not undone by our deregistration. */
		if (maybe_registered) {
			snprintf(path, sizeof path, "/v1/agent/service/deregister/%s", cs.service_id);
			sync_request(end, "deregister", "PUT", path);
		}
		if (cs.session[0] && maybe_held) {
			snprintf(path, sizeof path, "/v1/kv/%s?release=%s", cs.lock_key, cs.session);
			sync_request(end, "release lock", "PUT", path);
		}
		if (cs.session[0]) {
			snprintf(path, sizeof path, "/v1/session/destroy/%s", cs.session);
			sync_request(end, "destroy session", "PUT", path);
		}
	}
	http_client_close(&cs.http, NULL);
	http_client_free(&cs.http);
	cs.registered = 0;
	cs.lock = LOCK_UNKNOWN;
	metrics.consul_registered = 0;
	metrics.shard_lock_held = 0;
	cs.on = 0;
}

void consul_health(struct buf *b)
{
	if (!cs.on)
		return;
	buf_putc(b, ',');
	json_key(b, "consul");
	buf_putc(b, '{');
	json_key(b, "registered");
	buf_puts(b, cs.registered ? "true," : "false,");
	json_key(b, "lock");
	json_cstr(b, lock_names[cs.lock]);
	buf_putc(b, ',');
	json_key(b, "reachable");
	buf_puts(b, cs.reachable ? "true," : "false,");
	json_key(b, "strict");
	buf_puts(b, cs.strict ? "true" : "false");
	if (cs.last_error[0]) {
		buf_putc(b, ',');
		json_key(b, "lastError");
		json_cstr(b, cs.last_error);
	}
	buf_putc(b, '}');
}
