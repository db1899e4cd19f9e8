#include "procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "fmt.h"
#include "http_lex.h"

/* Reads a whole small file into out (NUL-terminated); -1 when it cannot. */
static int slurp(const char *root, const char *name, char *out, size_t cap)
{
	char path[256];
	fmt_snprintf(path, sizeof path, "%s/%s", root, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	out[len] = '\0';
	return len ? 0 : -1;
}

/* The unsigned decimal at *s, skipping leading blanks; -1 when none. */
static int number(const char **s, uint64_t *v)
{
	const char *p = *s;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	uint64_t x = 0;
	while (*p >= '0' && *p <= '9')
		x = x * 10 + (uint64_t)(*p++ - '0');
	*s = p;
	*v = x;
	return 0;
}

int procstat_parse_stat(struct procstat *p, const char *text, uint64_t ticks_per_s,
			uint64_t page_bytes, uint64_t boot_s)
{
	/* The command name (field 2) may hold spaces and parentheses: the
	 * numbered fields start after the last ')'. */
	const char *s = strrchr(text, ')');
	if (!s || !ticks_per_s)
		return -1;
	s++;
	uint64_t f[25] = { 0 };
	/* Field 3 is the state letter; 4.. are numbers (some signed: their
	 * values here are never negative for the fields used). */
	while (*s == ' ')
		s++;
	if (!*s)
		return -1;
	s++;
	for (int i = 4; i <= 24; i++) {
		while (*s == ' ')
			s++;
		if (*s == '-')
			s++;
		if (number(&s, &f[i]) != 0)
			return -1;
	}
	p->cpu_ms = (f[14] + f[15]) * 1000 / ticks_per_s;
	p->vm_bytes = f[23];
	p->rss_bytes = f[24] * page_bytes;
	p->have |= PROC_CPU | PROC_MEMORY;
	if (boot_s) {
		p->start_ms = boot_s * 1000 + f[22] * 1000 / ticks_per_s;
		p->have |= PROC_START;
	}
	return 0;
}

int procstat_parse_limits(struct procstat *p, const char *text)
{
	const char *s = lex_find(text, strlen(text), "\nMax open files", 15);
	if (!s)
		return -1;
	s += strlen("\nMax open files");
	while (*s == ' ')
		s++;
	if (strncmp(s, "unlimited", 9) == 0) {
		p->max_fds = 0;
	} else if (number(&s, &p->max_fds) != 0) {
		return -1;
	}
	p->have |= PROC_MAX_FDS;
	return 0;
}

/* btime from root/stat: the boot time in Unix seconds; 0 when unknown. */
static uint64_t boot_time(const char *root)
{
	char text[8192];
	uint64_t v = 0;
	if (slurp(root, "stat", text, sizeof text) != 0)
		return 0;
	const char *s = lex_find(text, strlen(text), "\nbtime ", 7);
	if (!s)
		return 0;
	s += strlen("\nbtime ");
	return number(&s, &v) == 0 ? v : 0;
}

void procstat_read(struct procstat *p, const char *root)
{
	char text[2048];
	memset(p, 0, sizeof *p);
	/* From the auxiliary vector: sysconf would pull in its whole table. */
	unsigned long tick = getauxval(AT_CLKTCK), page = getauxval(AT_PAGESZ);
	if (slurp(root, "self/stat", text, sizeof text) == 0 && tick && page)
		procstat_parse_stat(p, text, tick, page, boot_time(root));
	if (slurp(root, "self/limits", text, sizeof text) == 0)
		procstat_parse_limits(p, text);
	char path[256];
	fmt_snprintf(path, sizeof path, "%s/self/fd", root);
	DIR *d = opendir(path);
	if (d) {
		uint64_t n = 0;
		for (struct dirent *e; (e = readdir(d));)
			n += e->d_name[0] != '.';
		closedir(d);
		/* Not counting the descriptor the listing itself held. */
		p->open_fds = n ? n - 1 : 0;
		p->have |= PROC_FDS;
	}
}
