/* See fail_back.h. A phone whose boot failed should return to fastboot mode so the user can
 * simply retry, rather than hang in a kernel panic until they hold the power button. */
#include "fail_back.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"

static enum failure_action action = FAILURE_BOOTLOADER;

void fail_back_set(enum failure_action a) { action = a; }

static const char *describe(enum failure_action a) {
    switch (a) {
    case FAILURE_BOOTLOADER: return "rebooting to the bootloader";
    case FAILURE_RESTART: return "restarting";
    default: return "exiting (kernel panic)";
    }
}

/* die() has written the line to /dev/kmsg already, but /dev/kmsg rate-limits writers unless
 * printk.devkmsg=on, so the console gets it directly too, and we wait until it has gone out. */
static void to_console(const char *line) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return;
    char text[768];
    int n = snprintf(text, sizeof text, "%s\nstage0: %s (stage0.on_failure)\n", line,
                     describe(action));
    if (n > 0) (void)!write(fd, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    tcdrain(fd); /* fails harmlessly (ENOTTY) when the console is not a terminal */
    close(fd);
}

void fail_back(const char *line) {
    if (getpid() != 1) exit(1);
    log_err("%s (stage0.on_failure)", describe(action));
    to_console(line);
    sync();
    if (action == FAILURE_BOOTLOADER) {
        /* The reason string reaches the reboot-mode drivers (e.g. qcom-pon), which tell the
         * bootloader to stay in fastboot mode; kernels without one restart normally. */
        syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART2,
                "bootloader");
        log_err("reboot to the bootloader failed: %s; restarting", strerror(errno));
    }
    if (action != FAILURE_PANIC) {
        reboot(RB_AUTOBOOT);
        log_err("restart failed: %s", strerror(errno));
    }
    exit(1);
}
