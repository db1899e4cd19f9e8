/* Scratch directories for tests that write files: tmpfs when there is one
 * (thousands of fsyncs stay fast), or TMPDIR to test on a real disk. */
#ifndef CHECK_TMPDIR_H
#define CHECK_TMPDIR_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Creates <tmp>/<name>.XXXXXX into out; exits on failure. */
static inline void check_mkdtemp(char *out, size_t cap, const char *name)
{
	const char *t = getenv("TMPDIR");
	if (!t || !*t)
		t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(out, cap, "%s/%s.XXXXXX", t, name);
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline int check_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static inline void check_rmtree(const char *path)
{
	nftw(path, check_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
