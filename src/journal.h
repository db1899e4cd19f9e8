/* Append-only journal in DATA_DIR: length + CRC32C framed records, fsync'd
 * before the caller acts on them; compaction by snapshot + rename. */
#ifndef JOURNAL_H
#define JOURNAL_H
#include <stddef.h>
#include <stdint.h>

#include "crc32c.h"
#include "jrec.h"

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
