/* Logging to /dev/kmsg (stage0.md §8.1): no colour, no timestamps, the kernel adds those. */
#ifndef STAGE0_LOG_H
#define STAGE0_LOG_H

#define LOG_ERR_LEVEL 3
#define LOG_WARN_LEVEL 4
#define LOG_INFO_LEVEL 6
#define LOG_DEBUG_LEVEL 7

void log_open(const char *tag);
void log_set_max_level(int level);
void slog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One clear line, then the fatal handler if one is set (PID1 sets fail_back), else exit. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Called by die() with the logged line (no level prefix, no newline); must not return. */
void log_on_fatal(void (*handler)(const char *line));

#define log_info(...) slog(LOG_INFO_LEVEL, __VA_ARGS__)
#define log_warn(...) slog(LOG_WARN_LEVEL, __VA_ARGS__)
#define log_err(...) slog(LOG_ERR_LEVEL, __VA_ARGS__)
#define log_debug(...) slog(LOG_DEBUG_LEVEL, __VA_ARGS__)

#endif
