/* Random strings over A-Z a-z 0-9. Bytes >= 248 are rejected so that each
 * of the 62 characters is drawn from exactly 4 byte values: no modulo bias. */
#include <errno.h>
#include <sys/random.h>
#include "uuid.h"

static const char alphabet[62] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#define UUID_REJECT_FROM 248  /* 4 * 62 */

size_t uuid_from_bytes(const uint8_t *rnd, size_t rnd_len, char *out, size_t n)
{
	size_t w = 0;

	for (size_t r = 0; r < rnd_len && w < n; r++)
		if (rnd[r] < UUID_REJECT_FROM)
			out[w++] = alphabet[rnd[r] % 62];
	return w;
}

/* Retries on EINTR and short reads (requests above 256 bytes may be cut
 * short by a signal). */
int uuid_random(uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t got = getrandom(buf, len, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += got;
		len -= (size_t)got;
	}
	return 0;
}

int uuid_generate(char *out, size_t n)
{
	uint8_t buf[512];
	size_t done = 0;

	while (done < n) {
		/* 8 of 256 byte values are rejected (~3%): ask for ~6% extra so
		 * one round nearly always suffices; loop for the rest. */
		size_t want = n - done;
		want += want / 16 + 4;
		if (want > sizeof buf)
			want = sizeof buf;
		if (uuid_random(buf, want) < 0)
			return -1;
		done += uuid_from_bytes(buf, want, out + done, n - done);
	}
	return 0;
}
