/* Short random strings over A-Z a-z 0-9 from the kernel CSPRNG. */
#ifndef UUID_H
#define UUID_H
#include <stddef.h>
#include <stdint.h>

/* Maps random bytes to alphabet characters by rejection sampling (bytes
 * >= 248 are discarded, 248 = 4 * 62). Pure: consumes from rnd[0..rnd_len),
 * writes up to n chars to out; returns chars written (< n when it ran out). */
size_t uuid_from_bytes(const uint8_t *rnd, size_t rnd_len, char *out, size_t n);
/* Fills out[0..n) using getrandom(2); any n (a whole batch in one call is
 * cheapest: bytes are drawn in chunks of up to 512). No NUL is written.
 * 0 ok, -1 on failure (errno from getrandom). */
int uuid_generate(char *out, size_t n);
/* Fills buf[0..len) from getrandom(2). 0 ok, -1 on failure. */
int uuid_random(uint8_t *buf, size_t len);

#endif
