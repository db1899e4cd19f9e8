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
	JREC_DELETE  = 4,  /* `name` forgotten */
	JREC_FENCE   = 5,  /* snowflake ticks below `value` may have been used */
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
/* Encodes r into out (cap >= JREC_MAX_SIZE); returns the byte count. */
size_t jrec_encode(const struct jrec *r, uint8_t *out);
/* Decodes one record from in[0..len). Returns > 0 bytes consumed,
 * 0 when the bytes end inside the record (torn), -1 when the record is
 * corrupt (bad length, checksum, kind or field). */
long jrec_decode(const uint8_t *in, size_t len, struct jrec *r);

/* ---- the file ---- */
struct journal;
typedef int (*journal_apply_fn)(void *ud, const struct jrec *r);
/* Creates dir when missing, takes an exclusive flock on it (a second process
 * gets an error naming DATA_DIR and the holder's pid), replays the journal
 * calling apply() per record. A torn or corrupt record at the tail is
 * dropped with a warning naming file and offset; corruption followed by valid
 * records is an error naming file and offset, and nothing is modified.
 * Returns NULL with err set on failure. */
struct journal *journal_open(const char *dir, journal_apply_fn apply, void *ud,
			     char *err, size_t errlen);
/* Appends the records with one write and fdatasync. 0 ok, -1 with errno set:
 * the journal is then unchanged as far as replay is concerned. */
int journal_append(struct journal *j, const struct jrec *recs, size_t n);
/* Rewrites the journal as the records emit() produces (a snapshot of the
 * live state): temp file, fsync, rename, fsync dir. 0 ok, -1 (old journal
 * still in place). emit is called with a sink to pass to journal_emit(). */
struct journal_sink;
int journal_emit(struct journal_sink *s, const struct jrec *r);
int journal_compact(struct journal *j, int (*emit)(void *ud, struct journal_sink *s), void *ud);
uint64_t journal_bytes(const struct journal *j);     /* current file size */
uint64_t journal_fsyncs(const struct journal *j);    /* fsync count since open */
void journal_close(struct journal *j);

#endif
