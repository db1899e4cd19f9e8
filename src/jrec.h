/* Journal records and their encoding: length + CRC32C framed, pure
 * functions over caller buffers (journal.c owns the file). */
#ifndef JREC_H
#define JREC_H
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_NAME_MAX 128
#define JREC_TEXT_MAX 63                /* a TypeID prefix */

enum jrec_kind {
	JREC_BIND    = 1,  /* entity `name` bound to id type `type`, written as
	                      `value` says (enum id_format) with the TypeID
	                      prefix `text` (both 0/empty in older journals) */
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
	uint8_t text_len;                    /* BIND only, else 0 */
	const char *text;                    /* not NUL-terminated: the caller's
	                                        bytes (encode), the input's (decode) */
};

#define JREC_HEADER 8                   /* u32 length, u32 crc32c */
#define JREC_FIXED 11                   /* kind, type, value, name_len */
/* Upper bound of one encoded record. */
#define JREC_MAX_SIZE (JREC_HEADER + JREC_FIXED + JOURNAL_NAME_MAX + JREC_TEXT_MAX)
/* Encodes r into out (cap >= JREC_MAX_SIZE); returns the byte count.
 * Frame: u32 LE payload length, u32 LE crc32c(payload), payload = kind(1)
 * type(1) value(8 LE) name_len(1) name text; text (BIND only) runs to the
 * end of the payload, so records without it read as before. r must be
 * valid (name_len <= 128, text_len <= 63). */
size_t jrec_encode(const struct jrec *r, uint8_t *out);
/* Decodes one record from in[0..len). Returns > 0 bytes consumed,
 * 0 when the bytes end inside the record (torn), -1 when the record is
 * corrupt (bad length, checksum, kind or field: FENCE has no name, every
 * other kind a name of 1..128 bytes without NUL; only BIND has a text, of
 * at most 63 bytes without NUL). */
long jrec_decode(const uint8_t *in, size_t len, struct jrec *r);
/* jrec_decode, with the reason for a -1 or 0 in *why (for error messages). */
long jrec_decode_reason(const uint8_t *in, size_t len, struct jrec *r, const char **why);

#endif
