/* kmsg forwarder; see kmsg_forward.h. */
#include "kmsg_forward.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int kmsg_format(const char *record, size_t len, char *out, size_t cap) {
    const char *semi = memchr(record, ';', len);
    if (!semi) return -1;
    unsigned long long usec;
    unsigned prio;
    unsigned long long seq;
    if (sscanf(record, "%u,%llu,%llu", &prio, &seq, &usec) != 3) return -1;
    const char *text = semi + 1;
    size_t text_len = (size_t)(record + len - text);
    const char *newline = memchr(text, '\n', text_len); /* drop the dictionary lines */
    if (newline) text_len = (size_t)(newline - text);
    int n = snprintf(out, cap, "[%5llu.%06llu] %.*s\r\n", usec / 1000000, usec % 1000000,
                     (int)text_len, text);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int kmsg_forward_main(const char *tty) {
    int in = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
    int out = open(tty, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (in < 0 || out < 0) die("kmsg forwarder: cannot open /dev/kmsg or %s", tty);
    char record[8192], line[8300];
    for (;;) {
        ssize_t n = read(in, record, sizeof record);
        if (n < 0 && errno == EPIPE) continue; /* records were overwritten; carry on */
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(1);
        int len = kmsg_format(record, (size_t)n, line, sizeof line);
        if (len < 0) continue;
        if (write(out, line, (size_t)len) < 0 && errno == EIO) exit(0);
    }
}
