/* Stand-in for libFuzzer's main(): runs a fuzz target over every file in the
 * directories (or files) named on the command line, so the corpus can be
 * replayed under gcc's sanitizers without clang. Each input is copied into a
 * buffer of exactly its size so ASan sees any over-read. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mmap flags, fileno */
#endif
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Present when built with sanitizers; weak so a plain build links too. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static int passed, failed;
static const char *current; /* input being run, named if the run dies */

static void name_current(void)
{
	if (current) {
		static const char pre[] = "fuzz-replay: failing input: ";
		(void)!write(2, pre, sizeof pre - 1);
		(void)!write(2, current, strlen(current));
		(void)!write(2, "\n", 1);
	}
}

static void on_abort(int sig)
{
	name_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;

	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "fuzz-replay: %s: cannot open\n", path);
		failed++;
		if (f)
			fclose(f);
		return;
	}
	/* malloc(0) may return NULL; keep at least one byte but pass the size */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "fuzz-replay: %s: cannot read\n", path);
		failed++;
	} else {
		current = path;
		LLVMFuzzerTestOneInput(buf, (size_t)st.st_size); /* a bug aborts */
		current = NULL;
		passed++;
	}
	free(buf);
	fclose(f);
}

int main(int argc, char **argv)
{
	int i;

	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(name_current);
	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	for (i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;
		char path[4096];

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "fuzz-replay: %s: no such file or directory\n", argv[i]);
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			run_file(argv[i]);
			continue;
		}
		if (!(d = opendir(argv[i]))) {
			fprintf(stderr, "fuzz-replay: %s: cannot open directory\n", argv[i]);
			failed++;
			continue;
		}
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
				run_file(path);
		}
		closedir(d);
	}
	printf("fuzz-replay: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
