/* The journal's record codec: pure, over caller buffers. */
#include "jrec.h"

#include <string.h>

#include "crc32c.h"

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
	size_t tl = r->kind != JREC_BIND ? 0 : r->text_len > JREC_TEXT_MAX ? JREC_TEXT_MAX : r->text_len;
	uint8_t *pl = out + JREC_HEADER;
	size_t plen = JREC_FIXED + nl + tl;

	pl[0] = (uint8_t)r->kind;
	pl[1] = r->type;
	put_u64(pl + 2, r->value);
	pl[10] = (uint8_t)nl;
	memcpy(pl + JREC_FIXED, r->name, nl);
	if (tl)
		memcpy(pl + JREC_FIXED + nl, r->text, tl);
	put_u32(out, (uint32_t)plen);
	put_u32(out + 4, crc32c(0, pl, plen));
	return JREC_HEADER + plen;
}

long jrec_decode_reason(const uint8_t *in, size_t len, struct jrec *r, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (len < JREC_HEADER) {
		*why = "record header cut off at end of file";
		return 0;
	}
	uint32_t plen = get_u32(in);
	if (plen < JREC_FIXED || plen > JREC_FIXED + JOURNAL_NAME_MAX + JREC_TEXT_MAX) {
		*why = "bad record length";
		return -1;
	}
	if (len - JREC_HEADER < plen) {
		*why = "record extends past the end of the file";
		return 0;
	}
	const uint8_t *pl = in + JREC_HEADER;
	if (crc32c(0, pl, plen) != get_u32(in + 4)) {
		*why = "checksum mismatch";
		return -1;
	}
	uint8_t kind = pl[0], nl = pl[10];
	if (kind < JREC_BIND || kind > JREC_IDENTITY) {
		*why = "unknown record kind";
		return -1;
	}
	/* What follows the name is BIND's text: other kinds end with the name. */
	size_t tl = plen - JREC_FIXED - (size_t)nl;
	if (nl > JOURNAL_NAME_MAX || nl > plen - JREC_FIXED || tl > (kind == JREC_BIND ? JREC_TEXT_MAX : 0)) {
		*why = "name length does not match record length";
		return -1;
	}
	if (kind == JREC_FENCE ? nl != 0 : nl == 0) {
		*why = kind == JREC_FENCE ? "fence record with a name" : "record without a name";
		return -1;
	}
	if (memchr(pl + JREC_FIXED, 0, nl + tl)) {
		*why = "NUL byte in name or text";
		return -1;
	}
	r->kind = (enum jrec_kind)kind;
	r->type = pl[1];
	r->value = get_u64(pl + 2);
	r->name_len = nl;
	memcpy(r->name, pl + JREC_FIXED, nl);
	r->name[nl] = '\0';
	r->text_len = (uint8_t)tl;
	r->text = (const char *)pl + JREC_FIXED + nl;
	return (long)(JREC_HEADER + plen);
}

long jrec_decode(const uint8_t *in, size_t len, struct jrec *r)
{
	return jrec_decode_reason(in, len, r, NULL);
}
