/* The standard process metrics (start time, memory, file descriptors, CPU)
 * read from a proc file system; what cannot be read is marked absent, so a
 * process without /proc (an empty chroot) reports nothing rather than zeros. */
#ifndef PROCSTAT_H
#define PROCSTAT_H
#include <stdint.h>

enum {
	PROC_START = 1 << 0,   /* start_ms */
	PROC_MEMORY = 1 << 1,  /* rss_bytes, vm_bytes */
	PROC_CPU = 1 << 2,     /* cpu_ms */
	PROC_FDS = 1 << 3,     /* open_fds */
	PROC_MAX_FDS = 1 << 4, /* max_fds (0 when unlimited) */
};

struct procstat {
	unsigned have;         /* PROC_* bits of the fields that were read */
	uint64_t start_ms;     /* Unix time the process started, in ms */
	uint64_t rss_bytes, vm_bytes, cpu_ms, open_fds, max_fds;
};

/* Pure parsers over one file's text, for the tests. stat: /proc/self/stat
 * (ticks per second, page size and the boot time from /proc/stat passed in);
 * limits: /proc/self/limits. Both return 0, or -1 when the text is not one. */
int procstat_parse_stat(struct procstat *p, const char *text, uint64_t ticks_per_s,
			uint64_t page_bytes, uint64_t boot_s);
int procstat_parse_limits(struct procstat *p, const char *text);
/* Reads root/self/{stat,limits,fd} and root/stat ("/proc" in production). */
void procstat_read(struct procstat *p, const char *root);

#endif
