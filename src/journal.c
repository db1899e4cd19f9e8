/* The durable journal file around the record codec (jrec.c): flock, replay
 * with torn-tail recovery, fsync'd appends, compaction by temp file +
 * rename. */
#include "journal.h"
#include "fmt.h"
#include "json.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>   /* renameat */
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char journal_magic[8] = { 'S', 'H', 'R', 'D', 'J', '0', '1', '\n' };
#define JOURNAL_HDR 8

struct journal {
	int dirfd;          /* DATA_DIR, for openat and directory fsyncs */
	int lockfd;         /* holds the flock for the lifetime of the journal */
	int fd;             /* the journal file, written at `size` with pwrite */
	uint64_t size;      /* bytes of complete, fsync'd records (+ header) */
	uint64_t fsyncs;
	int dirty;          /* a failed append may have left bytes past `size` */
	int dir_unsynced;   /* a compaction's rename is not yet known durable */
	char dir[4096];
	char path[4096 + 16];
};

struct journal_sink {
	int fd;
	int failed;         /* errno of the first failure, 0 if none */
	uint64_t written;
	size_t used;
	uint8_t buf[64 * 1024];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int do_fsync(struct journal *j, int fd, int data_only)
{
	j->fsyncs++;
	int rc;
	do
		rc = data_only ? fdatasync(fd) : fsync(fd);
	while (rc < 0 && errno == EINTR);
	return rc;
}

/* Moves all n bytes at off with pwrite or pread, resuming after short
 * transfers; 0 bytes moved is EIO (a read: the file shrank under our lock,
 * someone ignores it). */
static int io_all(int fd, uint8_t *p, size_t n, uint64_t off, int writing)
{
	while (n) {
		ssize_t k = writing ? pwrite(fd, p, n, (off_t)off) : pread(fd, p, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	return io_all(fd, (uint8_t *)p, n, off, 1);   /* pwrite only reads p */
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	return io_all(fd, p, n, 0, 0);
}

/* mkdir -p; fsyncs the parent of each directory it creates so the new
 * entry survives a crash. */
static int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof tmp) {
		errno = n ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		if (tmp[i - 1] == '/')
			continue;
		char c = tmp[i];
		tmp[i] = '\0';
		if (mkdir(tmp, 0750) == 0) {
			char *slash = strrchr(tmp, '/');
			int pfd;
			if (slash == tmp)
				pfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			else if (slash) {
				*slash = '\0';
				pfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				*slash = '/';
			} else
				pfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (pfd >= 0) {
				fsync(pfd);
				close(pfd);
			}
		} else if (errno != EEXIST) {
			return -1;
		}
		tmp[i] = c;
	}
	return 0;
}

/* Takes the DATA_DIR lock and records our pid in it for the next claimant's
 * error message. */
static int take_lock(struct journal *j, char *err, size_t errlen)
{
	j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (j->lockfd < 0) {
		seterr(err, errlen, "cannot open %s/lock: %s", j->dir, strerror(errno));
		return -1;
	}
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			seterr(err, errlen, "cannot lock %s/lock: %s", j->dir, strerror(errno));
			return -1;
		}
		char buf[32] = { 0 };
		ssize_t n = pread(j->lockfd, buf, sizeof buf - 1, 0);
		uint64_t pid = 0;
		if (n > 0 && parse_u64(buf, strspn(buf, "0123456789"), &pid) != 0)
			pid = 0;
		if (pid > 0)
			seterr(err, errlen, "DATA_DIR %s is in use by another shardid process (pid %llu)",
			       j->dir, (unsigned long long)pid);
		else
			seterr(err, errlen, "DATA_DIR %s is in use by another shardid process (pid unknown)",
			       j->dir);
		return -1;
	}
	char buf[32];
	int n = fmt_snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(j->lockfd, 0) < 0 || write_all(j->lockfd, (uint8_t *)buf, (size_t)n, 0) < 0)
		log_warn("msg=\"cannot record pid in lock file\" file=%s/lock error=\"%s\"",
			 j->dir, strerror(errno));
	return 0;
}

/* Writes the header of a new or empty journal and makes it durable. */
static int fresh_start(struct journal *j, char *err, size_t errlen)
{
	if (ftruncate(j->fd, 0) < 0 ||
	    write_all(j->fd, (const uint8_t *)journal_magic, JOURNAL_HDR, 0) < 0 ||
	    do_fsync(j, j->fd, 0) < 0 || do_fsync(j, j->dirfd, 0) < 0) {
		seterr(err, errlen, "cannot initialise journal %s: %s", j->path, strerror(errno));
		return -1;
	}
	j->size = JOURNAL_HDR;
	return 0;
}

/* A decode failure at `bad` is a torn tail when nothing after it decodes as
 * a record; a valid record further on means the middle is damaged. */
static int is_tail(const uint8_t *buf, size_t len, size_t bad)
{
	size_t i;
	for (i = bad; i < len && buf[i] == 0; i++)
		;
	if (i == len)
		return 1;
	struct jrec r;
	for (i = bad + 1; i + JREC_HEADER + JREC_FIXED <= len; i++)
		if (jrec_decode(buf + i, len - i, &r) > 0)
			return 0;
	return 1;
}

/* Validates the whole file, then applies it: apply() never sees a record of
 * a journal that is refused. */
/* The whole journal file in a malloc'd buffer. 0 ok, -1 with err. */
static int slurp(struct journal *j, uint8_t **bufp, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(j->fd, &st) < 0) {
		seterr(err, errlen, "cannot stat journal %s: %s", j->path, strerror(errno));
		return -1;
	}
	size_t len = (size_t)st.st_size;
	if ((off_t)len != st.st_size) {
		seterr(err, errlen, "journal %s is too large (%lld bytes)", j->path,
		       (long long)st.st_size);
		return -1;
	}
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		seterr(err, errlen, "cannot read journal %s: out of memory for %zu bytes", j->path, len);
		return -1;
	}
	if (read_all(j->fd, buf, len) < 0) {
		seterr(err, errlen, "cannot read journal %s: %s", j->path, strerror(errno));
		free(buf);
		return -1;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* A file shorter than its header: a crash while creating it (nothing was
 * ever handed out) starts fresh; anything else is refused. */
static int short_file(struct journal *j, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	int prefix = memcmp(buf, journal_magic, len) == 0;
	int zeros = 1;
	for (size_t i = 0; i < len; i++)
		zeros &= buf[i] == 0;
	if (!prefix && !zeros) {
		seterr(err, errlen, "%s is not a shardid journal (bad header); refusing to start "
		       "(file left untouched)", j->path);
		return -1;
	}
	if (len)
		log_warn("msg=\"journal header incomplete, starting fresh\" file=%s bytes=%zu",
			 j->path, len);
	return fresh_start(j, err, errlen);
}

/* Pass 1: the end of the valid records, their count, and why the scan
 * stopped (when it stopped before len). */
static size_t valid_end(const uint8_t *buf, size_t len, uint64_t *nrec, const char **why)
{
	size_t off = JOURNAL_HDR;
	struct jrec r;
	while (off < len) {
		long n = jrec_decode_reason(buf + off, len - off, &r, why);
		if (n <= 0)
			break;
		off += (size_t)n;
		(*nrec)++;
	}
	return off;
}

static int replay(struct journal *j, journal_apply_fn apply, void *ud,
		  char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (slurp(j, &buf, &len, err, errlen) < 0)
		return -1;
	int rc = -1;
	if (len < JOURNAL_HDR) {
		rc = short_file(j, buf, len, err, errlen);
		goto out;
	}
	if (memcmp(buf, journal_magic, JOURNAL_HDR) != 0) {
		seterr(err, errlen, "%s is not a shardid journal (bad header); refusing to start "
		       "(file left untouched)", j->path);
		goto out;
	}

	const char *why = NULL;
	uint64_t nrec = 0;
	size_t end = valid_end(buf, len, &nrec, &why);
	if (end < len && !is_tail(buf, len, end)) {
		seterr(err, errlen, "corrupt journal %s at offset %zu: %s; refusing to start "
		       "(file left untouched)", j->path, end, why);
		goto out;
	}

	/* Pass 2: apply. */
	for (size_t off = JOURNAL_HDR; off < end;) {
		struct jrec r;
		long n = jrec_decode(buf + off, end - off, &r);
		if (apply && apply(ud, &r) != 0) {
			seterr(err, errlen, "journal %s: replay rejected the record at offset %zu "
			       "(kind %d, name \"%s\"); refusing to start", j->path, off,
			       (int)r.kind, r.name);
			goto out;
		}
		off += (size_t)n;
	}

	if (end < len) {
		log_warn("msg=\"dropping torn journal tail\" file=%s offset=%zu bytes=%zu reason=\"%s\"",
			 j->path, end, len - end, why);
		if (ftruncate(j->fd, (off_t)end) < 0 || do_fsync(j, j->fd, 0) < 0) {
			seterr(err, errlen, "cannot truncate the torn tail of journal %s at offset %zu: %s",
			       j->path, end, strerror(errno));
			goto out;
		}
	}
	j->size = end;
	log_info("msg=\"journal replayed\" file=%s records=%" PRIu64 " bytes=%zu", j->path, nrec, end);
	rc = 0;
out:
	free(buf);
	return rc;
}

struct journal *journal_open(const char *dir, journal_apply_fn apply, void *ud,
			     char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof *j);
	if (!j) {
		seterr(err, errlen, "cannot open journal in %s: out of memory", dir);
		return NULL;
	}
	j->dirfd = j->lockfd = j->fd = -1;
	if ((size_t)fmt_snprintf(j->dir, sizeof j->dir, "%s", dir) >= sizeof j->dir) {
		seterr(err, errlen, "DATA_DIR %.64s... is too long (max %zu bytes)", dir,
		       sizeof j->dir - 1);
		goto fail;
	}
	fmt_snprintf(j->path, sizeof j->path, "%s/journal", j->dir);

	struct stat st;
	if ((stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) && mkdir_p(dir) < 0) {
		seterr(err, errlen, "cannot create DATA_DIR %s: %s", dir, strerror(errno));
		goto fail;
	}
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		seterr(err, errlen, "cannot open DATA_DIR %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (take_lock(j, err, errlen) < 0)
		goto fail;

	/* rename() is atomic, so a leftover temp file is an interrupted
	 * compaction and the journal itself is still authoritative. */
	if (unlinkat(j->dirfd, "journal.tmp", 0) == 0)
		log_warn("msg=\"removed leftover of an interrupted compaction\" file=%s/journal.tmp",
			 j->dir);
	else if (errno != ENOENT) {
		seterr(err, errlen, "cannot remove %s/journal.tmp: %s", j->dir, strerror(errno));
		goto fail;
	}

	j->fd = openat(j->dirfd, "journal", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (j->fd < 0) {
		seterr(err, errlen, "cannot open journal %s: %s", j->path, strerror(errno));
		goto fail;
	}
	if (replay(j, apply, ud, err, errlen) < 0)
		goto fail;
	return j;
fail:
	journal_close(j);
	return NULL;
}

/* Clears what an earlier failure left behind; appending past it could turn
 * a torn tail into a corrupt middle. */
static int heal(struct journal *j)
{
	if (j->dir_unsynced) {
		if (do_fsync(j, j->dirfd, 0) < 0)
			return -1;
		j->dir_unsynced = 0;
	}
	if (j->dirty) {
		if (ftruncate(j->fd, (off_t)j->size) < 0 || do_fsync(j, j->fd, 1) < 0)
			return -1;
		j->dirty = 0;
	}
	return 0;
}

int journal_append(struct journal *j, const struct jrec *recs, size_t n)
{
	if (n == 0)
		return 0;
	if (heal(j) < 0)
		return -1;

	uint8_t stackbuf[16 * JREC_MAX_SIZE];
	uint8_t *buf = stackbuf;
	if (n > 16) {
		if (n > SIZE_MAX / JREC_MAX_SIZE) {
			errno = EOVERFLOW;
			return -1;
		}
		buf = malloc(n * JREC_MAX_SIZE);
		if (!buf)
			return -1;
	}
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += jrec_encode(&recs[i], buf + len);

	int rc = 0;
	if (write_all(j->fd, buf, len, j->size) < 0 || do_fsync(j, j->fd, 1) < 0) {
		int e = errno;
		if (ftruncate(j->fd, (off_t)j->size) < 0 || do_fsync(j, j->fd, 1) < 0)
			j->dirty = 1;
		errno = e;
		rc = -1;
	} else {
		j->size += len;
	}
	if (buf != stackbuf)
		free(buf);
	return rc;
}

static int sink_flush(struct journal_sink *s)
{
	if (s->failed)
		return -1;
	if (write_all(s->fd, s->buf, s->used, s->written) < 0) {
		s->failed = errno ? errno : EIO;
		return -1;
	}
	s->written += s->used;
	s->used = 0;
	return 0;
}

int journal_emit(struct journal_sink *s, const struct jrec *r)
{
	if (s->failed)
		return -1;
	if (sizeof s->buf - s->used < JREC_MAX_SIZE && sink_flush(s) < 0)
		return -1;
	s->used += jrec_encode(r, s->buf + s->used);
	return 0;
}

int journal_compact(struct journal *j, int (*emit)(void *ud, struct journal_sink *s), void *ud)
{
	struct journal_sink *s = malloc(sizeof *s);
	if (!s)
		return -1;
	s->failed = 0;
	s->written = 0;
	s->used = 0;
	s->fd = openat(j->dirfd, "journal.tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (s->fd < 0) {
		int e = errno;
		free(s);
		errno = e;
		return -1;
	}
	memcpy(s->buf, journal_magic, JOURNAL_HDR);
	s->used = JOURNAL_HDR;

	int e = 0;
	if (emit(ud, s) != 0) {
		e = s->failed ? s->failed : ECANCELED;
		goto fail;
	}
	if (sink_flush(s) < 0) {
		e = s->failed;
		goto fail;
	}
	if (do_fsync(j, s->fd, 0) < 0 || renameat(j->dirfd, "journal.tmp", j->dirfd, "journal") < 0) {
		e = errno;
		goto fail;
	}

	/* The new file is the journal now, whatever happens next. */
	close(j->fd);
	j->fd = s->fd;
	j->size = s->written;
	j->dirty = 0;
	free(s);
	if (do_fsync(j, j->dirfd, 0) < 0) {
		/* Until the rename is durable a crash could bring back the old
		 * file without the appends made after this point. */
		j->dir_unsynced = 1;
		return -1;
	}
	j->dir_unsynced = 0;
	return 0;
fail:
	close(s->fd);
	unlinkat(j->dirfd, "journal.tmp", 0);
	free(s);
	errno = e;
	return -1;
}

uint64_t journal_bytes(const struct journal *j)
{
	return j->size;
}

uint64_t journal_fsyncs(const struct journal *j)
{
	return j->fsyncs;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j);
}
