/* Logging to /dev/kmsg, falling back to stderr before /dev exists or off-device. */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int kmsg_fd = -1;
static const char *log_tag = "stage0";
static int max_level = LOG_INFO_LEVEL;
static void (*fatal_handler)(const char *line);

void log_open(const char *tag) {
    log_tag = tag;
    /* Off-device runs (tests) keep the host's kernel log clean with FASTBOOP_STAGE0_LOG=stderr. */
    const char *target = getenv("FASTBOOP_STAGE0_LOG");
    if (target && !strcmp(target, "stderr")) return;
    if (kmsg_fd < 0) kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
}

void log_set_max_level(int level) { max_level = level; }

void log_on_fatal(void (*handler)(const char *line)) { fatal_handler = handler; }

/* Formats "<level>tag: message\n" into line; returns its length, or 0. */
static size_t vformat(char *line, size_t cap, int level, const char *fmt, va_list ap) {
    int n = snprintf(line, cap, "<%d>%s: ", level, log_tag);
    if (n < 0) return 0;
    int m = vsnprintf(line + n, cap - (size_t)n - 1, fmt, ap);
    if (m < 0) return 0;
    size_t len = strlen(line);
    line[len++] = '\n';
    line[len] = 0;
    return len;
}

static void emit(const char *line, size_t len) {
    if (kmsg_fd >= 0 && write(kmsg_fd, line, len) == (ssize_t)len) return;
    /* stderr has no use for the <level> prefix */
    const char *text = strchr(line, '>') + 1;
    (void)!write(STDERR_FILENO, text, len - (size_t)(text - line));
}

static void vlog(int level, const char *fmt, va_list ap) {
    char line[512];
    size_t len = vformat(line, sizeof line, level, fmt, ap);
    if (len) emit(line, len);
}

void slog(int level, const char *fmt, ...) {
    if (level > max_level) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void die(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t len = vformat(line, sizeof line, LOG_ERR_LEVEL, fmt, ap);
    va_end(ap);
    if (len) emit(line, len);
    if (fatal_handler) {
        if (len) line[len - 1] = 0; /* the handler gets the text without the newline */
        fatal_handler(len ? strchr(line, '>') + 1 : "fatal error");
    }
    exit(1);
}
