/* One logfmt line per event on stderr: ts=... level=... msg="..." k=v ... */
#ifndef LOG_H
#define LOG_H
#include <stddef.h>

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
/* The level up to which lines are written (LOG_INFO at start; below
 * LOG_ERROR silences everything). */
void log_set_level(int level);
int log_enabled(int level);
/* Parses "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);
/* fmt is printf-style and should produce `msg="..." key=value ...` pairs
 * after the ts/level prefix the logger adds. */
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s as a logfmt quoted value ("..." with \" and \\ escaped, other
 * bytes outside printable ASCII as \xNN) into out; always NUL-terminates. */
void log_quote(char *out, size_t cap, const char *s, size_t n);
/* The same, but s as it is when it needs no quotes (non-empty, printable
 * ASCII without '"', '=' or '\\'); cut to fit cap either way. */
void log_value(char *out, size_t cap, const char *s, size_t n);
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_at(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
