/* PID1's way out of a fatal error (stage0.on_failure): back to the bootloader by default. */
#ifndef STAGE0_FAIL_BACK_H
#define STAGE0_FAIL_BACK_H

#include "config.h"

/* Which action fail_back() takes; FAILURE_BOOTLOADER until PID1 has read its settings. */
void fail_back_set(enum failure_action action);
/* The die() handler of PID1: repeat `line` on the console, then reboot as configured.
 * Only PID1 reboots; any other process (a child between fork and exec) just exits. */
void fail_back(const char *line) __attribute__((noreturn));

#endif
