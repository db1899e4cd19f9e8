/* printf-style formatting without the C library's stdio: snprintf into a
 * buffer, or straight to a file descriptor. Only what shardid's messages use:
 * flags '-' and '0'; width and precision as digits or '*'; length modifiers
 * hh h l ll z j t; conversions d i u x X s c p %. No floats, no '+', ' ' or
 * '#' flags, no %o or %n: an unknown conversion is copied out as it is
 * written, so a mistake shows in the text. */
#ifndef FMT_H
#define FMT_H
#include <stdarg.h>
#include <stddef.h>

/* snprintf's contract: writes at most cap bytes, the last a NUL when cap > 0,
 * and returns the length the whole text has (-1 past INT_MAX). */
int fmt_snprintf(char *out, size_t cap, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
int fmt_vsnprintf(char *out, size_t cap, const char *f, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Writes the text to fd with write(2), in one call when it fits 512 bytes,
 * retrying short writes and EINTR. Returns its length, -1 when a write fails. */
int fmt_dprint(int fd, const char *f, ...)
	__attribute__((format(printf, 2, 3)));
int fmt_vdprint(int fd, const char *f, va_list ap)
	__attribute__((format(printf, 2, 0)));

#endif
