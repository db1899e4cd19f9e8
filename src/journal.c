/* The durable journal: pure record encoding (length + CRC32C framing) and the
 * file shell around it (flock, replay with torn-tail recovery, fsync'd appends,
 * compaction by temp file + rename). */
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char journal_magic[8] = { 'S', 'H', 'R', 'D', 'J', '0', '1', '\n' };
#define JOURNAL_HDR 8
#define REC_HDR 8                       /* u32 length, u32 crc32c */
#define PAYLOAD_FIXED 11                /* kind, type, value, name_len */

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78) ---- */

static const uint32_t crc32c_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
#include <cpuid.h>
/* SSE4.2 has a CRC32C instruction: replaying a large journal checks every
 * byte, and this makes that about ten times cheaper. */
#if defined(__clang__)
__attribute__((target("crc32")))  /* clang names the feature on its own */
#else
__attribute__((target("sse4.2")))
#endif
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; len; p++, len--)
		crc = __builtin_ia32_crc32qi(crc, *p);
	return crc;
}

static int have_sse42(void)
{
	static int cached = -1;
	if (cached < 0) {
		unsigned a, b, c, d;
		cached = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
	}
	return cached;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (have_sse42())
		return ~crc32c_hw(crc, data, len);
#endif
	return ~crc32c_sw(crc, data, len);
}

/* ---- record encoding ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

size_t jrec_encode(const struct jrec *r, uint8_t *out)
{
	size_t nl = r->name_len > JOURNAL_NAME_MAX ? JOURNAL_NAME_MAX : r->name_len;
	uint8_t *pl = out + REC_HDR;
	size_t plen = PAYLOAD_FIXED + nl;

	pl[0] = (uint8_t)r->kind;
	pl[1] = r->type;
	put_u64(pl + 2, r->value);
	pl[10] = (uint8_t)nl;
	memcpy(pl + PAYLOAD_FIXED, r->name, nl);
	put_u32(out, (uint32_t)plen);
	put_u32(out + 4, crc32c(0, pl, plen));
	return REC_HDR + plen;
}

/* jrec_decode with the reason for a -1 or 0, for error messages. */
static long decode(const uint8_t *in, size_t len, struct jrec *r, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (len < REC_HDR) {
		*why = "record header cut off at end of file";
		return 0;
	}
	uint32_t plen = get_u32(in);
	if (plen < PAYLOAD_FIXED || plen > PAYLOAD_FIXED + JOURNAL_NAME_MAX) {
		*why = "bad record length";
		return -1;
	}
	if (len - REC_HDR < plen) {
		*why = "record extends past the end of the file";
		return 0;
	}
	const uint8_t *pl = in + REC_HDR;
	if (crc32c(0, pl, plen) != get_u32(in + 4)) {
		*why = "checksum mismatch";
		return -1;
	}
	uint8_t kind = pl[0], nl = pl[10];
	if (kind < JREC_BIND || kind > JREC_IDENTITY) {
		*why = "unknown record kind";
		return -1;
	}
	if (nl != plen - PAYLOAD_FIXED) {
		*why = "name length does not match record length";
		return -1;
	}
	if (kind == JREC_FENCE ? nl != 0 : nl == 0) {
		*why = kind == JREC_FENCE ? "fence record with a name" : "record without a name";
		return -1;
	}
	if (memchr(pl + PAYLOAD_FIXED, 0, nl)) {
		*why = "NUL byte in name";
		return -1;
	}
	r->kind = (enum jrec_kind)kind;
	r->type = pl[1];
	r->value = get_u64(pl + 2);
	r->name_len = nl;
	memcpy(r->name, pl + PAYLOAD_FIXED, nl);
	r->name[nl] = '\0';
	return (long)(REC_HDR + plen);
}

long jrec_decode(const uint8_t *in, size_t len, struct jrec *r)
{
	return decode(in, len, r, NULL);
}

/* ---- the file ---- */

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
	vsnprintf(err, errlen, fmt, ap);
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

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	uint64_t off = 0;
	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;    /* shrank under our lock: someone ignores it */
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
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
		long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
		if (pid > 0)
			seterr(err, errlen, "DATA_DIR %s is in use by another shardid process (pid %ld)",
			       j->dir, pid);
		else
			seterr(err, errlen, "DATA_DIR %s is in use by another shardid process (pid unknown)",
			       j->dir);
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
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
	for (i = bad + 1; i + REC_HDR + PAYLOAD_FIXED <= len; i++)
		if (decode(buf + i, len - i, &r, NULL) > 0)
			return 0;
	return 1;
}

/* Validates the whole file, then applies it: apply() never sees a record of
 * a journal that is refused. */
static int replay(struct journal *j, journal_apply_fn apply, void *ud,
		  char *err, size_t errlen)
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
	int rc = -1;
	if (read_all(j->fd, buf, len) < 0) {
		seterr(err, errlen, "cannot read journal %s: %s", j->path, strerror(errno));
		goto out;
	}

	if (len < JOURNAL_HDR) {
		/* A crash while creating the file: nothing was ever handed out. */
		int prefix = memcmp(buf, journal_magic, len) == 0;
		int zeros = 1;
		for (size_t i = 0; i < len; i++)
			zeros &= buf[i] == 0;
		if (!prefix && !zeros) {
			seterr(err, errlen, "%s is not a shardid journal (bad header); refusing to start "
			       "(file left untouched)", j->path);
			goto out;
		}
		if (len)
			log_warn("msg=\"journal header incomplete, starting fresh\" file=%s bytes=%zu",
				 j->path, len);
		rc = fresh_start(j, err, errlen);
		goto out;
	}
	if (memcmp(buf, journal_magic, JOURNAL_HDR) != 0) {
		seterr(err, errlen, "%s is not a shardid journal (bad header); refusing to start "
		       "(file left untouched)", j->path);
		goto out;
	}

	/* Pass 1: find the end of the valid records. */
	size_t off = JOURNAL_HDR;
	const char *why = NULL;
	struct jrec r;
	uint64_t nrec = 0;
	while (off < len) {
		long n = decode(buf + off, len - off, &r, &why);
		if (n <= 0)
			break;
		off += (size_t)n;
		nrec++;
	}
	if (off < len && !is_tail(buf, len, off)) {
		seterr(err, errlen, "corrupt journal %s at offset %zu: %s; refusing to start "
		       "(file left untouched)", j->path, off, why);
		goto out;
	}
	size_t end = off;

	/* Pass 2: apply. */
	for (off = JOURNAL_HDR; off < end;) {
		long n = decode(buf + off, end - off, &r, NULL);
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
	if ((size_t)snprintf(j->dir, sizeof j->dir, "%s", dir) >= sizeof j->dir) {
		seterr(err, errlen, "DATA_DIR %.64s... is too long (max %zu bytes)", dir,
		       sizeof j->dir - 1);
		goto fail;
	}
	snprintf(j->path, sizeof j->path, "%s/journal", j->dir);

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
