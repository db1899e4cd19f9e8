/* Process metrics: the /proc parsers on real and awkward texts, a fake proc
 * tree read end to end, and the rendering with /proc missing (no families,
 * not zeros) and present. */
#include "check.h"
#include "check_tmpdir.h"
#include "metrics.h"
#include "procstat.h"

#include <sys/stat.h>

/* A command name with spaces and a ')' must not shift the fields. */
static const char STAT[] =
	"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 "
	"250 150 0 0 20 0 1 0 5000 104857600 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
static const char LIMITS[] =
	"Limit                     Soft Limit           Hard Limit           Units     \n"
	"Max cpu time              unlimited            unlimited            seconds   \n"
	"Max open files            4096                 524288               files     \n"
	"Max locked memory         8388608              8388608              bytes     \n";

static void test_parse(void)
{
	struct procstat p = { 0 };
	CHECK(procstat_parse_stat(&p, STAT, 100, 4096, 1700000000) == 0);
	CHECK_EQ_U64(p.have, PROC_CPU | PROC_MEMORY | PROC_START);
	CHECK_EQ_U64(p.cpu_ms, 4000);                 /* (250 + 150) ticks at 100/s */
	CHECK_EQ_U64(p.vm_bytes, 104857600);
	CHECK_EQ_U64(p.rss_bytes, 300 * 4096);
	CHECK_EQ_U64(p.start_ms, 1700000000000ull + 50000);
	/* Without the boot time the start is absent, the rest still there. */
	struct procstat q = { 0 };
	CHECK(procstat_parse_stat(&q, STAT, 100, 4096, 0) == 0);
	CHECK_EQ_U64(q.have, PROC_CPU | PROC_MEMORY);
	/* Truncated or foreign texts are refused and mark nothing. */
	struct procstat r = { 0 };
	CHECK(procstat_parse_stat(&r, "4242 (x) S 1 2 3", 100, 4096, 1) == -1);
	CHECK(procstat_parse_stat(&r, "no parenthesis", 100, 4096, 1) == -1);
	CHECK(procstat_parse_stat(&r, "", 100, 4096, 1) == -1);
	CHECK_EQ_U64(r.have, 0);

	CHECK(procstat_parse_limits(&r, LIMITS) == 0);
	CHECK_EQ_U64(r.max_fds, 4096);
	CHECK_EQ_U64(r.have, PROC_MAX_FDS);
	struct procstat u = { 0 };
	CHECK(procstat_parse_limits(&u, "Limit\nMax open files            unlimited  unlimited  files\n") == 0);
	CHECK_EQ_U64(u.max_fds, 0);
	CHECK(procstat_parse_limits(&u, "Limit\nMax processes 10 10\n") == -1);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char *render(const struct procstat *p)
{
	struct metrics_extra e = { .proc = *p };
	struct buf b;
	buf_init(&b);
	metrics_render(&b, &e);
	char *text = strndup(b.data, b.len);
	buf_free(&b);
	return text;
}

static void test_read_and_render(void)
{
	char root[256], sub[300];
	check_mkdtemp(root, sizeof root, "procstat");
	/* No proc tree at all: every process family is absent. */
	snprintf(sub, sizeof sub, "%s/missing", root);
	struct procstat p;
	procstat_read(&p, sub);
	CHECK_EQ_U64(p.have, 0);
	char *text = render(&p);
	CHECK(strstr(text, "process_") == NULL);
	CHECK(strstr(text, "shardid_build_info{version=\"test\",commit=\"unknown\"} 1\n") != NULL);
	free(text);

	/* A fake tree: stat, limits, three descriptors. */
	snprintf(sub, sizeof sub, "%s/self", root);
	mkdir(sub, 0700);
	snprintf(sub, sizeof sub, "%s/self/fd", root);
	mkdir(sub, 0700);
	put(root, "stat", "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n");
	put(root, "self/stat", STAT);
	put(root, "self/limits", LIMITS);
	put(root, "self/fd/0", "");
	put(root, "self/fd/1", "");
	put(root, "self/fd/2", "");
	procstat_read(&p, root);
	CHECK_EQ_U64(p.have, PROC_CPU | PROC_MEMORY | PROC_START | PROC_FDS | PROC_MAX_FDS);
	CHECK_EQ_U64(p.max_fds, 4096);
	CHECK_EQ_U64(p.open_fds, 2);    /* the listing's own descriptor is not counted */
	text = render(&p);
	long tick = sysconf(_SC_CLK_TCK);
	if (tick == 100) {
		CHECK(strstr(text, "\nprocess_start_time_seconds 1700000050.000\n") != NULL);
		CHECK(strstr(text, "\nprocess_cpu_seconds_total 4.000\n") != NULL);
	}
	CHECK(strstr(text, "# TYPE process_cpu_seconds_total counter\n") != NULL);
	CHECK(strstr(text, "\nprocess_virtual_memory_bytes 104857600\n") != NULL);
	CHECK(strstr(text, "\nprocess_max_fds 4096\n") != NULL);
	CHECK(strstr(text, "\nprocess_open_fds 2\n") != NULL);
	free(text);

	/* The real /proc, where there is one: plausible figures. */
	if (access("/proc/self/stat", R_OK) == 0) {
		procstat_read(&p, "/proc");
		CHECK(p.have & PROC_MEMORY);
		CHECK(p.rss_bytes > 0 && p.vm_bytes >= p.rss_bytes);
		CHECK(p.open_fds >= 3);
	}
	check_rmtree(root);
}

int main(void)
{
	test_parse();
	test_read_and_render();
	return check_summary("procstat");
}
