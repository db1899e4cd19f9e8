/* Append-only journal in DATA_DIR: length + CRC32C framed records, fsync'd
 * before the caller acts on them; compaction by snapshot + rename. */
#ifndef JOURNAL_H
#define JOURNAL_H
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_NAME_MAX 128

enum jrec_kind {
	JREC_BIND    = 1,  /* entity `name` bound to id type `type` */
	JREC_RESERVE = 2,  /* iterations below `value` of `name` may be handed out */
	JREC_RESET   = 3,  /* `name` continues at iteration `value` (forgets the old mark) */
	JREC_DELETE  = 4,  /* `name` deleted after handing out iterations below `value` */
	JREC_FENCE   = 5,  /* snowflake ticks below `value` may have been used */
	JREC_STOPPED = 6,  /* clean stop: `name` handed out only iterations below `value` */
	JREC_IDENTITY = 7, /* the shard this state belongs to: `name` holds
	                      "shard=K totalShards=N layout=L machineId=M" */
};

struct jrec {
	enum jrec_kind kind;
	uint8_t type;                        /* enum id_type, for JREC_BIND */
	uint64_t value;                      /* RESERVE, RESET, FENCE */
	uint8_t name_len;                    /* 0 for FENCE */
	char name[JOURNAL_NAME_MAX + 1];     /* NUL-terminated copy */
};

/* ---- pure encoding ---- */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* Upper bound of one encoded record. */
#define JREC_MAX_SIZE (4 + 4 + 1 + 1 + 8 + 1 + JOURNAL_NAME_MAX)
/* Encodes r into out (cap >= JREC_MAX_SIZE); returns the byte count.
 * Frame: u32 LE payload length, u32 LE crc32c(payload), payload = kind(1)
 * type(1) value(8 LE) name_len(1) name. r must be valid (name_len <= 128). */
size_t jrec_encode(const struct jrec *r, uint8_t *out);
/* Decodes one record from in[0..len). Returns > 0 bytes consumed,
 * 0 when the bytes end inside the record (torn), -1 when the record is
 * corrupt (bad length, checksum, kind or field: FENCE has no name, every
 * other kind a name of 1..128 bytes without NUL). */
long jrec_decode(const uint8_t *in, size_t len, struct jrec *r);

/* ---- the file ---- */
struct journal;
typedef int (*journal_apply_fn)(void *ud, const struct jrec *r);
/* Creates dir when missing (0750), takes an exclusive flock on dir/lock (a
 * second opener, in this or another process, gets an error naming DATA_DIR
 * and the holder's pid), removes a leftover journal.tmp, and replays
 * dir/journal calling apply() per record (apply may be NULL). The whole file
 * is validated before the first apply(). A torn or corrupt record at the
 * tail (nothing valid after it) is dropped with a warning naming file and
 * offset, and truncated away; corruption followed by valid records is an
 * error naming file and offset, and nothing is modified. apply() returning
 * non-zero fails the open with the record's offset. Returns NULL with err
 * set on failure. */
struct journal *journal_open(const char *dir, journal_apply_fn apply, void *ud,
			     char *err, size_t errlen);
/* Appends the records with one write and one fdatasync. 0 ok, -1 with errno
 * set: the bytes are truncated away again, so replay sees none of them (if
 * even that fails, later appends retry the truncation first and fail until
 * it works, so a torn record never ends up in the middle). */
int journal_append(struct journal *j, const struct jrec *recs, size_t n);
/* Rewrites the journal as the records emit() produces (a snapshot of the
 * live state): journal.tmp, fsync, rename, fsync dir; appends then go to the
 * new file. emit is called with a sink to pass to journal_emit() and returns
 * 0, or non-zero to abandon the compaction. 0 ok; -1 with errno: the old
 * journal is still in place, except when only the final directory fsync
 * failed: then the new file is in use and appends fail until a retried
 * directory fsync succeeds. */
struct journal_sink;
/* Buffers r for the snapshot (large writes). 0 ok, -1 after a write error. */
int journal_emit(struct journal_sink *s, const struct jrec *r);
int journal_compact(struct journal *j, int (*emit)(void *ud, struct journal_sink *s), void *ud);
uint64_t journal_bytes(const struct journal *j);     /* current file size */
uint64_t journal_fsyncs(const struct journal *j);    /* fsync/fdatasync calls since open */
void journal_close(struct journal *j);               /* releases the lock; NULL ok */

#endif
