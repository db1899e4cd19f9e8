/* Journal tests: the pure record codec (CRC32C vectors, round trips, every bit
 * flip and every truncation), then the file shell in a temp directory: replay,
 * a cut at every byte offset, corrupt middles, the DATA_DIR lock, compaction,
 * failed appends and the counters. */
#include "check.h"
#include "check_tmpdir.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char MAGIC[] = "SHRDJ01\n";

static struct jrec mkrec(enum jrec_kind kind, uint8_t type, uint64_t value, const char *name)
{
	struct jrec r;
	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.type = type;
	r.value = value;
	r.name_len = (uint8_t)strlen(name);
	memcpy(r.name, name, r.name_len);
	return r;
}

/* A BIND with a TypeID prefix after its name. */
static struct jrec mkbind(uint8_t type, uint64_t format, const char *name, const char *text)
{
	struct jrec r = mkrec(JREC_BIND, type, format, name);
	r.text = text;
	r.text_len = (uint8_t)strlen(text);
	return r;
}

static int rec_eq(const struct jrec *a, const struct jrec *b)
{
	return a->kind == b->kind && a->type == b->type && a->value == b->value &&
	       a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0 &&
	       b->name[b->name_len] == '\0' && a->text_len == b->text_len &&
	       (!a->text_len || memcmp(a->text, b->text, a->text_len) == 0);
}

/* ---- apply() collector ---- */

struct seen {
	struct jrec recs[8192];
	size_t n;
	long fail_at;   /* index whose apply() fails, or -1 */
};

static int collect(void *ud, const struct jrec *r)
{
	struct seen *s = ud;
	if ((long)s->n == s->fail_at)
		return -1;
	if (s->n < sizeof s->recs / sizeof s->recs[0])
		s->recs[s->n] = *r;
	s->n++;
	return 0;
}

static struct seen seen;

static void seen_reset(void)
{
	seen.n = 0;
	seen.fail_at = -1;
}

/* ---- file helpers ---- */

static char base[4096];

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	if (len && fwrite(buf, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static long long fsize(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}


static void subdir(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", base, name);
}

static void jpath(char *out, size_t cap, const char *dir)
{
	snprintf(out, cap, "%s/journal", dir);
}

/* Runs journal_open with stderr captured, so tests can look for warnings. */
static char captured[1 << 16];

static struct journal *open_cap(const char *dir, journal_apply_fn apply, char *err, size_t errlen)
{
	char cap[4200];
	snprintf(cap, sizeof cap, "%s/stderr.capture", base);
	fflush(stderr);
	int fd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int saved = dup(2);
	dup2(fd, 2);
	close(fd);

	err[0] = '\0';
	struct journal *j = journal_open(dir, apply, apply ? &seen : NULL, err, errlen);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	size_t n = 0;
	uint8_t *buf = slurp(cap, &n);
	if (n >= sizeof captured)
		n = sizeof captured - 1;
	memcpy(captured, buf, n);
	captured[n] = '\0';
	free(buf);
	unlink(cap);
	return j;
}

static struct journal *open_quiet(const char *dir, char *err, size_t errlen)
{
	seen_reset();
	return open_cap(dir, collect, err, errlen);
}

/* ---- the pure codec ---- */

static void test_crc32c(void)
{
	CHECK_EQ_U64(crc32c(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ_U64(crc32c(0, "", 0), 0);
	CHECK_EQ_U64(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);

	/* RFC 3720 (iSCSI) appendix B.4 vectors. */
	uint8_t buf[32];
	memset(buf, 0, sizeof buf);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof buf);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x113FDB5Cu);
}

static char name128[JOURNAL_NAME_MAX + 1];

static void test_roundtrip(void)
{
	memset(name128, 'n', JOURNAL_NAME_MAX);
	name128[0] = 'A';
	name128[JOURNAL_NAME_MAX - 1] = 'Z';
	const char *names[] = { "x", name128, "order:2024.v-1" };
	uint64_t values[] = { 0, 1, 0x0102030405060708ull, UINT64_MAX };

	for (int kind = JREC_BIND; kind <= JREC_IDENTITY; kind++) {
		for (size_t ni = 0; ni < 3; ni++) {
			for (size_t vi = 0; vi < 4; vi++) {
				struct jrec in = mkrec((enum jrec_kind)kind, kind == JREC_BIND ? 6 : 0,
						       values[vi], kind == JREC_FENCE ? "" : names[ni]);
				uint8_t buf[JREC_MAX_SIZE + 16];
				memset(buf, 0xAA, sizeof buf);
				size_t n = jrec_encode(&in, buf);
				CHECK_EQ_U64(n, 8 + 11 + in.name_len);
				CHECK(n <= JREC_MAX_SIZE);

				struct jrec out;
				memset(&out, 0x55, sizeof out);
				CHECK_EQ_U64(jrec_decode(buf, n, &out), n);
				CHECK(rec_eq(&in, &out));
				/* Trailing bytes are not consumed. */
				memset(&out, 0x55, sizeof out);
				CHECK_EQ_U64(jrec_decode(buf, sizeof buf, &out), n);
				CHECK(rec_eq(&in, &out));
			}
		}
	}
	struct jrec big = mkrec(JREC_RESERVE, 0, 7, name128);
	uint8_t buf[JREC_MAX_SIZE];
	CHECK_EQ_U64(jrec_encode(&big, buf), JREC_MAX_SIZE - JREC_TEXT_MAX);
	/* Only a BIND carries a text: other kinds leave it out. */
	big.text = "user";
	big.text_len = 4;
	CHECK_EQ_U64(jrec_encode(&big, buf), JREC_MAX_SIZE - JREC_TEXT_MAX);
	struct jrec out;
	CHECK(jrec_decode(buf, sizeof buf, &out) > 0 && out.text_len == 0);
}

/* BIND's text (a TypeID prefix) follows the name; a BIND without one is
 * the record older versions wrote, byte for byte. */
static void test_bind_text(void)
{
	static char name128[JOURNAL_NAME_MAX + 1], text63[JREC_TEXT_MAX + 1];
	memset(name128, 'n', JOURNAL_NAME_MAX);
	memset(text63, 't', JREC_TEXT_MAX);
	const struct jrec in[] = {
		mkbind(7, 0, "user", "user"), mkbind(2, 1, "order", ""),
		mkbind(7, 0, name128, text63), mkbind(7, 0, "x", "a"),
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		uint8_t buf[JREC_MAX_SIZE + 8];
		size_t n = jrec_encode(&in[i], buf);
		CHECK_EQ_U64(n, 8 + 11 + in[i].name_len + in[i].text_len);
		struct jrec out;
		memset(&out, 0x55, sizeof out);
		CHECK_EQ_U64(jrec_decode(buf, n, &out), n);
		CHECK(rec_eq(&in[i], &out));
	}
	uint8_t buf[JREC_MAX_SIZE];
	CHECK_EQ_U64(jrec_encode(&in[2], buf), JREC_MAX_SIZE);
	/* Plain BIND: exactly the older encoding (kind, type, value 0, name). */
	struct jrec plain = mkrec(JREC_BIND, 2, 0, "ab");
	uint8_t old[] = { 13, 0, 0, 0, 0, 0, 0, 0, JREC_BIND, 2, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'a', 'b' };
	uint32_t crc = crc32c(0, old + 8, 13);
	for (int i = 0; i < 4; i++)
		old[4 + i] = (uint8_t)(crc >> (8 * i));
	CHECK_EQ_U64(jrec_encode(&plain, buf), sizeof old);
	CHECK(memcmp(buf, old, sizeof old) == 0);
}

/* Every single-bit flip is detected or reads as torn; never a different
 * successful decode. Also with a valid record right behind it. */
static void test_bit_flips(void)
{
	struct jrec recs[] = {
		mkrec(JREC_BIND, 2, 0, "order"),
		mkbind(7, 0, "user", "user_account"),
		mkrec(JREC_RESERVE, 0, 123456789, "invoice"),
		mkrec(JREC_FENCE, 0, 987654321, ""),
		mkrec(JREC_RESET, 0, 42, name128),
	};
	struct jrec next = mkrec(JREC_DELETE, 0, 0, "zz");
	int bad = 0, checked = 0;
	for (size_t k = 0; k < sizeof recs / sizeof recs[0]; k++) {
		uint8_t buf[2 * JREC_MAX_SIZE];
		size_t n = jrec_encode(&recs[k], buf);
		size_t total = n + jrec_encode(&next, buf + n);
		for (size_t bit = 0; bit < n * 8; bit++) {
			struct jrec out;
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			long a = jrec_decode(buf, n, &out);
			long b = jrec_decode(buf, total, &out);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			checked++;
			if (a > 0 || b > 0) {
				bad++;
				fprintf(stderr, "record %zu bit %zu: decoded %ld/%ld\n", k, bit, a, b);
			}
		}
		/* Flipping a byte wholesale, too. */
		for (size_t i = 0; i < n; i++) {
			struct jrec out;
			buf[i] ^= 0xff;
			long a = jrec_decode(buf, total, &out);
			buf[i] ^= 0xff;
			if (a > 0)
				bad++;
		}
	}
	CHECK(checked > 1000);
	CHECK_EQ_U64(bad, 0);
}

static void test_truncated(void)
{
	struct jrec recs[] = {
		mkrec(JREC_BIND, 1, 0, "a"),
		mkrec(JREC_FENCE, 0, 1, ""),
		mkrec(JREC_RESERVE, 0, 99, name128),
	};
	for (size_t k = 0; k < sizeof recs / sizeof recs[0]; k++) {
		uint8_t buf[JREC_MAX_SIZE];
		size_t n = jrec_encode(&recs[k], buf);
		int bad = 0;
		for (size_t cut = 0; cut < n; cut++) {
			struct jrec out;
			if (jrec_decode(buf, cut, &out) != 0)
				bad++;
		}
		CHECK_EQ_U64(bad, 0);
	}
}

/* A record with a correct checksum over a hand-made payload. */
static size_t craft(uint8_t *out, uint32_t len_field, const uint8_t *payload, size_t plen)
{
	uint32_t crc = crc32c(0, payload, plen);
	for (int i = 0; i < 4; i++) {
		out[i] = (uint8_t)(len_field >> (8 * i));
		out[4 + i] = (uint8_t)(crc >> (8 * i));
	}
	memcpy(out + 8, payload, plen);
	return 8 + plen;
}

static void test_invalid_fields(void)
{
	uint8_t p[200], buf[300];
	struct jrec out;
	size_t n;

	/* Baseline: a hand-made valid BIND. */
	memset(p, 0, sizeof p);
	p[0] = JREC_BIND; p[1] = 3; p[10] = 2; p[11] = 'a'; p[12] = 'b';
	n = craft(buf, 13, p, 13);
	CHECK_EQ_U64(jrec_decode(buf, n, &out), 21);
	CHECK(out.kind == JREC_BIND && out.type == 3 && out.name_len == 2 && strcmp(out.name, "ab") == 0);

	p[0] = 0;                                          /* kind 0 */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[0] = 8;                                          /* kind 8 */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[0] = JREC_BIND;

	p[10] = 3;                                         /* name_len > remaining */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[10] = 1;                                         /* BIND: the rest is its text */
	n = craft(buf, 13, p, 13);
	CHECK_EQ_U64(jrec_decode(buf, n, &out), 21);
	CHECK(out.name_len == 1 && out.text_len == 1 && out.text[0] == 'b');
	p[0] = JREC_RESERVE;                               /* other kinds: name_len < remaining */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[0] = JREC_BIND;
	p[12] = 0;                                         /* NUL in the text */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[12] = 'b';
	memset(p + 12, 't', 64);                           /* text longer than 63 */
	n = craft(buf, 76, p, 76);
	CHECK(jrec_decode(buf, n, &out) == -1);
	n = craft(buf, 75, p, 75);                         /* exactly 63: fine */
	CHECK_EQ_U64(jrec_decode(buf, n, &out), 83);
	CHECK_EQ_U64(out.text_len, 63);
	p[10] = 129;                                       /* BIND name longer than 128 */
	memset(p + 11, 'q', 129);
	n = craft(buf, 140, p, 140);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[10] = 2; p[11] = 'a'; p[12] = 'b';

	p[12] = 0;                                         /* NUL in the name */
	n = craft(buf, 13, p, 13);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[12] = 'b';

	p[10] = 0;                                         /* BIND without a name */
	n = craft(buf, 11, p, 11);
	CHECK(jrec_decode(buf, n, &out) == -1);

	p[0] = JREC_FENCE; p[10] = 1; p[11] = 'f';         /* FENCE with a name */
	n = craft(buf, 12, p, 12);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[10] = 0;                                         /* FENCE without: fine */
	n = craft(buf, 11, p, 11);
	CHECK_EQ_U64(jrec_decode(buf, n, &out), 19);

	n = craft(buf, 10, p, 10);                         /* shorter than the fixed part */
	CHECK(jrec_decode(buf, n, &out) == -1);
	n = craft(buf, 0, p, 0);
	CHECK(jrec_decode(buf, n, &out) == -1);

	p[0] = JREC_RESERVE; p[10] = 129;                  /* name longer than 128 */
	memset(p + 11, 'q', 129);
	n = craft(buf, 140, p, 140);
	CHECK(jrec_decode(buf, n, &out) == -1);
	p[10] = 128;                                       /* exactly 128: fine */
	n = craft(buf, 139, p, 139);
	CHECK_EQ_U64(jrec_decode(buf, n, &out), 147);

	n = craft(buf, 0xffffffffu, p, 13);                /* absurd length */
	CHECK(jrec_decode(buf, n, &out) == -1);
}

/* ---- the file ---- */

static struct jrec file_recs[12];
static size_t nfile_recs;

static void make_file_recs(void)
{
	size_t i = 0;
	file_recs[i++] = mkrec(JREC_BIND, 0, 0, "order");
	file_recs[i++] = mkrec(JREC_RESERVE, 0, 1000, "order");
	file_recs[i++] = mkrec(JREC_FENCE, 0, 1700000000000ull, "");
	file_recs[i++] = mkrec(JREC_BIND, 1, 0, "i");
	file_recs[i++] = mkrec(JREC_RESERVE, 0, UINT64_MAX, "i");
	file_recs[i++] = mkrec(JREC_BIND, 5, 0, name128);
	file_recs[i++] = mkrec(JREC_RESET, 0, 7, "order");
	file_recs[i++] = mkrec(JREC_DELETE, 0, 0, "i");
	file_recs[i++] = mkrec(JREC_RESERVE, 0, 2000, "order");
	file_recs[i++] = mkrec(JREC_FENCE, 0, 1700000000500ull, "");
	nfile_recs = i;
}

/* The first k records seen are file_recs[0..k). */
static int seen_starts(size_t k)
{
	if (seen.n < k)
		return 0;
	for (size_t i = 0; i < k; i++)
		if (!rec_eq(&file_recs[i], &seen.recs[i]))
			return 0;
	return 1;
}

/* Exactly file_recs[0..k) were seen. */
static int seen_prefix(size_t k)
{
	return seen.n == k && seen_starts(k);
}

/* Writes file_recs into dir (one append each, except a final batch of 3) and
 * returns the file bytes; bounds[k] = file size after k records. */
static uint8_t *build_reference(const char *dir, size_t *len, size_t *bounds)
{
	char err[512];
	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	if (!j) {
		fprintf(stderr, "open: %s\n", err);
		exit(1);
	}
	bounds[0] = 8;
	size_t k = 0;
	while (k + 3 < nfile_recs) {
		CHECK(journal_append(j, &file_recs[k], 1) == 0);
		k++;
		bounds[k] = journal_bytes(j);
	}
	CHECK(journal_append(j, &file_recs[k], 3) == 0);
	for (size_t i = 0; i < 3; i++) {
		uint8_t tmp[JREC_MAX_SIZE];
		bounds[k + 1] = bounds[k] + jrec_encode(&file_recs[k], tmp);
		k++;
	}
	CHECK_EQ_U64(journal_bytes(j), bounds[nfile_recs]);
	journal_close(j);

	char path[4200];
	jpath(path, sizeof path, dir);
	return slurp(path, len);
}

static void test_fresh_and_replay(void)
{
	char dir[4200], path[4300], err[512];
	subdir(dir, sizeof dir, "fresh/a/b");   /* mkdir -p */
	jpath(path, sizeof path, dir);

	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	if (!j)
		return;
	struct stat st;
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0750);
	CHECK_EQ_U64(seen.n, 0);
	CHECK_EQ_U64(journal_bytes(j), 8);
	CHECK_EQ_U64(journal_fsyncs(j), 2);    /* header: file + directory */
	size_t len;
	uint8_t *bytes = slurp(path, &len);
	CHECK(len == 8 && memcmp(bytes, MAGIC, 8) == 0);
	free(bytes);

	/* One fdatasync per append, however many records. */
	uint64_t before = journal_fsyncs(j);
	CHECK(journal_append(j, file_recs, 1) == 0);
	CHECK_EQ_U64(journal_fsyncs(j), before + 1);
	CHECK(journal_append(j, file_recs + 1, nfile_recs - 1) == 0);
	CHECK_EQ_U64(journal_fsyncs(j), before + 2);
	CHECK(journal_append(j, file_recs, 0) == 0);
	CHECK_EQ_U64(journal_fsyncs(j), before + 2);
	CHECK_EQ_U64(journal_bytes(j), (uint64_t)fsize(path));
	journal_close(j);

	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(seen_prefix(nfile_recs));
	CHECK(strstr(captured, "level=warn") == NULL);
	CHECK_EQ_U64(journal_fsyncs(j), 0);    /* a clean replay writes nothing */
	CHECK_EQ_U64(journal_bytes(j), (uint64_t)fsize(path));
	journal_close(j);

	/* Many records, across a few thousand appends. */
	char dir2[4200];
	subdir(dir2, sizeof dir2, "many");
	j = open_quiet(dir2, err, sizeof err);
	CHECK(j != NULL);
	struct jrec batch[40];
	uint64_t v = 0;
	for (int round = 0; round < 100; round++) {
		size_t n = (size_t)(round % 40) + 1;
		for (size_t i = 0; i < n; i++)
			batch[i] = mkrec(JREC_RESERVE, 0, ++v, round % 2 ? "order" : "invoice");
		CHECK(journal_append(j, batch, n) == 0);
	}
	journal_close(j);
	j = open_quiet(dir2, err, sizeof err);
	CHECK(j != NULL);
	CHECK_EQ_U64(seen.n, v);
	int ordered = 1;
	for (size_t i = 0; i < seen.n && i < v; i++)
		ordered &= seen.recs[i].value == i + 1;
	CHECK(ordered);
	journal_close(j);
}

/* Cut the journal at every byte offset: replay gives exactly the complete
 * records, warns about a partial one, truncates it away, and appends work. */
static void test_cut_everywhere(void)
{
	char ref[4200], dir[4200], path[4300], err[512];
	size_t bounds[16], len;
	subdir(ref, sizeof ref, "cut-ref");
	uint8_t *bytes = build_reference(ref, &len, bounds);
	CHECK_EQ_U64(len, bounds[nfile_recs]);
	CHECK(memcmp(bytes, MAGIC, 8) == 0);

	struct jrec extra = mkrec(JREC_RESERVE, 0, 31337, "after-cut");
	for (size_t cut = 8; cut <= len; cut++) {
		snprintf(dir, sizeof dir, "%s/cut-%zu", base, cut);
		CHECK(mkdir(dir, 0750) == 0);
		jpath(path, sizeof path, dir);
		spit(path, bytes, cut);

		size_t k = 0;
		while (k < nfile_recs && bounds[k + 1] <= cut)
			k++;
		int at_boundary = bounds[k] == cut;

		struct journal *j = open_quiet(dir, err, sizeof err);
		CHECK(j != NULL);
		if (!j) {
			fprintf(stderr, "cut %zu: %s\n", cut, err);
			continue;
		}
		CHECK(seen_prefix(k));
		char want[64];
		snprintf(want, sizeof want, "offset=%zu ", bounds[k]);
		int warned = strstr(captured, "dropping torn journal tail") != NULL &&
			     strstr(captured, want) != NULL && strstr(captured, path) != NULL;
		CHECK(warned == !at_boundary);
		CHECK_EQ_U64(journal_bytes(j), bounds[k]);
		CHECK_EQ_U64(fsize(path), bounds[k]);

		CHECK(journal_append(j, &extra, 1) == 0);
		journal_close(j);
		j = open_quiet(dir, err, sizeof err);
		CHECK(j != NULL);
		CHECK(seen.n == k + 1 && seen_starts(k) && rec_eq(&seen.recs[k], &extra));
		CHECK(strstr(captured, "level=warn") == NULL);
		journal_close(j);
		check_rmtree(dir);
	}
	free(bytes);
}

/* A damaged record followed by good ones refuses to start and touches
 * nothing; the same damage in the last record is a droppable tail. */
static void test_corrupt_middle(void)
{
	char ref[4200], dir[4200], path[4300], err[512];
	size_t bounds[16], len;
	subdir(ref, sizeof ref, "mid-ref");
	uint8_t *bytes = build_reference(ref, &len, bounds);
	subdir(dir, sizeof dir, "mid");
	CHECK(mkdir(dir, 0750) == 0);
	jpath(path, sizeof path, dir);

	for (size_t m = 0; m + 1 < nfile_recs; m++) {
		int bad = 0;
		for (size_t b = bounds[m]; b < bounds[m + 1]; b++) {
			for (int mode = 0; mode < 2; mode++) {
				uint8_t *c = malloc(len);
				memcpy(c, bytes, len);
				c[b] ^= mode ? 0xff : (uint8_t)(1u << (b % 8));
				spit(path, c, len);

				struct journal *j = open_quiet(dir, err, sizeof err);
				char want[64];
				snprintf(want, sizeof want, "at offset %zu:", bounds[m]);
				size_t after_len;
				uint8_t *after = slurp(path, &after_len);
				int ok = j == NULL && seen.n == 0 &&
					 strstr(err, "corrupt journal") && strstr(err, path) &&
					 strstr(err, want) && strstr(err, "refusing to start") &&
					 after_len == len && memcmp(after, c, len) == 0;
				if (!ok && bad++ == 0)
					fprintf(stderr, "record %zu byte %zu mode %d: j=%p err=%s\n",
						m, b, mode, (void *)j, err);
				journal_close(j);
				free(after);
				free(c);
			}
		}
		CHECK_EQ_U64(bad, 0);
	}

	/* The same damage in the last record: dropped with a warning. */
	size_t last = nfile_recs - 1;
	uint8_t *c = malloc(len);
	memcpy(c, bytes, len);
	c[bounds[last] + 12] ^= 0x40;
	spit(path, c, len);
	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(seen_prefix(last));
	CHECK(strstr(captured, "dropping torn journal tail") != NULL);
	CHECK_EQ_U64(fsize(path), bounds[last]);
	journal_close(j);
	free(c);

	/* A zero-filled tail (size extended, data never written) is a tail. */
	c = calloc(1, len + 4096);
	memcpy(c, bytes, len);
	spit(path, c, len + 4096);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(seen_prefix(nfile_recs));
	CHECK(strstr(captured, "bytes=4096") != NULL);
	CHECK_EQ_U64(fsize(path), len);
	journal_close(j);

	/* Garbage without any valid record in it is a tail too. */
	memcpy(c, bytes, len);
	for (size_t i = 0; i < 4096; i++)
		c[len + i] = (uint8_t)(i * 7 + 3);
	spit(path, c, len + 4096);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(seen_prefix(nfile_recs));
	CHECK_EQ_U64(fsize(path), len);
	journal_close(j);

	/* Zeros in the middle, then a valid record: corrupt middle. */
	memcpy(c, bytes, bounds[3]);
	memset(c + bounds[3], 0, 64);
	memcpy(c + bounds[3] + 64, bytes + bounds[3], len - bounds[3]);
	spit(path, c, len + 64);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j == NULL);
	char want[64];
	snprintf(want, sizeof want, "at offset %zu:", bounds[3]);
	CHECK(strstr(err, want) != NULL);
	CHECK_EQ_U64(fsize(path), len + 64);
	free(c);
	free(bytes);
}

static void test_bad_header_and_apply_error(void)
{
	char dir[4200], path[4300], err[512];
	subdir(dir, sizeof dir, "hdr");
	CHECK(mkdir(dir, 0750) == 0);
	jpath(path, sizeof path, dir);

	/* Wrong magic: refused, untouched. */
	spit(path, "NOTAJRNL-and-some-more", 22);
	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j == NULL);
	CHECK(strstr(err, path) != NULL && strstr(err, "not a shardid journal") != NULL);
	CHECK_EQ_U64(fsize(path), 22);
	spit(path, "XHRDJ01\n", 8);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j == NULL);
	spit(path, "SHRX", 4);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j == NULL);
	CHECK_EQ_U64(fsize(path), 4);

	/* An incomplete header (crash while creating) or empty file: fresh. */
	const char *starts[] = { "", "S", "SHRD", "SHRDJ01", "\0\0\0" };
	size_t lens[] = { 0, 1, 4, 7, 3 };
	for (size_t i = 0; i < 5; i++) {
		spit(path, starts[i], lens[i]);
		j = open_quiet(dir, err, sizeof err);
		CHECK(j != NULL);
		CHECK_EQ_U64(seen.n, 0);
		size_t len;
		uint8_t *b = slurp(path, &len);
		CHECK(len == 8 && memcmp(b, MAGIC, 8) == 0);
		free(b);
		journal_close(j);
	}

	/* apply() refusing a record: error names the offset, nothing changes. */
	size_t bounds[16], len;
	check_rmtree(dir);
	uint8_t *bytes = build_reference(dir, &len, bounds);
	seen_reset();
	seen.fail_at = 2;
	j = open_cap(dir, collect, err, sizeof err);
	CHECK(j == NULL);
	char want[64];
	snprintf(want, sizeof want, "offset %zu", bounds[2]);
	CHECK(strstr(err, want) != NULL && strstr(err, path) != NULL);
	size_t after_len;
	uint8_t *after = slurp(path, &after_len);
	CHECK(after_len == len && memcmp(after, bytes, len) == 0);
	free(after);

	/* A NULL apply is allowed. */
	j = open_cap(dir, NULL, err, sizeof err);
	CHECK(j != NULL);
	CHECK_EQ_U64(journal_bytes(j), len);
	journal_close(j);
	free(bytes);

	/* DATA_DIR that cannot be a directory. */
	char file[4300];
	snprintf(file, sizeof file, "%s/plainfile", base);
	spit(file, "x", 1);
	j = open_quiet(file, err, sizeof err);
	CHECK(j == NULL && strstr(err, file) != NULL);
	snprintf(file, sizeof file, "%s/plainfile/sub", base);
	j = open_quiet(file, err, sizeof err);
	CHECK(j == NULL && strstr(err, "plainfile") != NULL);
}

static void test_lock(void)
{
	char dir[4200], tmp[4300], err[512], want[128];
	subdir(dir, sizeof dir, "locked");
	snprintf(tmp, sizeof tmp, "%s/journal.tmp", dir);

	struct journal *j1 = open_quiet(dir, err, sizeof err);
	CHECK(j1 != NULL);
	CHECK(journal_append(j1, file_recs, 2) == 0);
	spit(tmp, "in-progress", 11);       /* j1's compaction, as far as j2 knows */

	struct journal *j2 = open_quiet(dir, err, sizeof err);
	CHECK(j2 == NULL);
	snprintf(want, sizeof want, "is in use by another shardid process (pid %ld)", (long)getpid());
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(err, dir) != NULL);
	CHECK(exists(tmp));                 /* the loser touched nothing */
	CHECK(seen.n == 0);
	journal_close(j2);

	/* Another process gets the same answer. */
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		char cerr[512];
		struct journal *jc = journal_open(dir, NULL, NULL, cerr, sizeof cerr);
		_exit(jc == NULL && strstr(cerr, want) != NULL ? 0 : 1);
	}
	int status = -1;
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	journal_close(j1);
	j2 = open_quiet(dir, err, sizeof err);
	CHECK(j2 != NULL);
	CHECK(seen_prefix(2));
	journal_close(j2);
}

/* ---- compaction ---- */

struct snap {
	size_t n;
	size_t fail_after;   /* emit() returns -1 after this many, or SIZE_MAX */
	const struct jrec *recs;
};

static int emit_snap(void *ud, struct journal_sink *s)
{
	struct snap *sn = ud;
	for (size_t i = 0; i < sn->n; i++) {
		if (i == sn->fail_after)
			return -1;
		if (journal_emit(s, &sn->recs[i]) != 0)
			return -1;
	}
	return 0;
}

static void test_compaction(void)
{
	char dir[4200], path[4300], tmp[4300], err[512];
	subdir(dir, sizeof dir, "compact");
	jpath(path, sizeof path, dir);
	snprintf(tmp, sizeof tmp, "%s/journal.tmp", dir);

	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	struct jrec r = mkrec(JREC_BIND, 0, 0, "order");
	CHECK(journal_append(j, &r, 1) == 0);
	static struct jrec batch[50];
	for (uint64_t v = 1; v <= 1000; v += 50) {
		for (uint64_t i = 0; i < 50; i++)
			batch[i] = mkrec(JREC_RESERVE, 0, (v + i) * 100, "order");
		CHECK(journal_append(j, batch, 50) == 0);
	}
	uint64_t big = journal_bytes(j);
	CHECK(big > 20000);

	/* A failing snapshot leaves the old journal in place and usable. */
	struct jrec snaprecs[3] = {
		mkrec(JREC_BIND, 0, 0, "order"),
		mkrec(JREC_RESERVE, 0, 100000, "order"),
		mkrec(JREC_FENCE, 0, 123, ""),
	};
	struct snap sn = { 3, 2, snaprecs };
	CHECK(journal_compact(j, emit_snap, &sn) == -1);
	CHECK(!exists(tmp));
	CHECK_EQ_U64(journal_bytes(j), big);
	CHECK_EQ_U64(fsize(path), big);

	uint64_t f0 = journal_fsyncs(j);
	sn.fail_after = SIZE_MAX;
	CHECK(journal_compact(j, emit_snap, &sn) == 0);
	CHECK(!exists(tmp));
	uint8_t enc[JREC_MAX_SIZE];
	uint64_t want = 8;
	for (size_t i = 0; i < 3; i++)
		want += jrec_encode(&snaprecs[i], enc);
	CHECK_EQ_U64(journal_bytes(j), want);
	CHECK_EQ_U64(fsize(path), want);
	CHECK_EQ_U64(journal_fsyncs(j), f0 + 2);   /* temp file + directory */

	/* Appends after compaction land in the new file. */
	r = mkrec(JREC_RESERVE, 0, 200000, "order");
	CHECK(journal_append(j, &r, 1) == 0);
	CHECK_EQ_U64(fsize(path), journal_bytes(j));
	journal_close(j);

	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK_EQ_U64(seen.n, 4);
	CHECK(rec_eq(&seen.recs[0], &snaprecs[0]) && rec_eq(&seen.recs[1], &snaprecs[1]) &&
	      rec_eq(&seen.recs[2], &snaprecs[2]) && rec_eq(&seen.recs[3], &r));

	/* A snapshot larger than the sink's buffer. */
	static struct jrec many[5000];
	for (size_t i = 0; i < 5000; i++) {
		char name[32];
		snprintf(name, sizeof name, "entity-%zu", i);
		many[i] = mkrec(JREC_BIND, (uint8_t)(i % 7), i, name);
	}
	struct snap sm = { 5000, SIZE_MAX, many };
	CHECK(journal_compact(j, emit_snap, &sm) == 0);
	journal_close(j);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK_EQ_U64(seen.n, 5000);
	int same = seen.n == 5000;
	for (size_t i = 0; same && i < 5000; i++)
		same = rec_eq(&seen.recs[i], &many[i]);
	CHECK(same);

	/* Compacting to nothing at all. */
	struct snap empty = { 0, SIZE_MAX, NULL };
	CHECK(journal_compact(j, emit_snap, &empty) == 0);
	CHECK_EQ_U64(journal_bytes(j), 8);
	journal_close(j);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL && seen.n == 0);
	journal_close(j);

	/* An interrupted compaction's temp file is removed at open; the
	 * journal stays authoritative. */
	j = open_quiet(dir, err, sizeof err);
	CHECK(journal_append(j, snaprecs, 2) == 0);
	journal_close(j);
	spit(tmp, "SHRDJ01\ngarbage", 15);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(!exists(tmp));
	CHECK(seen.n == 2 && rec_eq(&seen.recs[1], &snaprecs[1]));
	journal_close(j);
}

/* A write that fails part-way (file size limit) leaves no trace behind. */
static void test_append_failure(void)
{
	char dir[4200], path[4300], err[512];
	subdir(dir, sizeof dir, "efbig");
	jpath(path, sizeof path, dir);

	struct journal *j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(journal_append(j, file_recs, 3) == 0);
	uint64_t size = journal_bytes(j);

	struct rlimit old, lim;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = size + 30;     /* the batch below starts, then fails */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	errno = 0;
	int rc = journal_append(j, file_recs + 3, 5);
	int e = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	CHECK(rc == -1);
	CHECK(e == EFBIG);
	CHECK_EQ_U64(journal_bytes(j), size);
	CHECK_EQ_U64(fsize(path), size);

	CHECK(journal_append(j, file_recs + 8, 1) == 0);
	journal_close(j);
	j = open_quiet(dir, err, sizeof err);
	CHECK(j != NULL);
	CHECK(seen.n == 4 && rec_eq(&seen.recs[3], &file_recs[8]));
	CHECK(strstr(captured, "level=warn") == NULL);
	journal_close(j);
}

int main(void)
{
	check_mkdtemp(base, sizeof base, "test_journal");

	test_crc32c();
	test_roundtrip();
	test_bind_text();
	test_bit_flips();
	test_truncated();
	test_invalid_fields();

	make_file_recs();
	test_fresh_and_replay();
	test_cut_everywhere();
	test_corrupt_middle();
	test_bad_header_and_apply_error();
	test_lock();
	test_compaction();
	test_append_failure();

	check_rmtree(base);
	return check_summary("journal");
}
