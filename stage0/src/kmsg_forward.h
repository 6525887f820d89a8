/* The kmsg -> CDC-ACM forwarder (stage0.md §8.2 step 12): kernel log on the USB serial port. */
#ifndef STAGE0_KMSG_FORWARD_H
#define STAGE0_KMSG_FORWARD_H

#include <stddef.h>

/* Turns one /dev/kmsg record ("prio,seq,usec,flags;text\n ...") into
 * "[%5u.%06u] text\r\n". Returns the length written, or -1 for a malformed record. */
int kmsg_format(const char *record, size_t len, char *out, size_t cap);
/* Role kmsg-child: forward until the tty returns EIO (host closed the port for good). */
int kmsg_forward_main(const char *tty) __attribute__((noreturn));

#endif
