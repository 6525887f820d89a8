/* stage0 PID1: the step sequence of stage0.md §8.2, one binary for every role (§8.1). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "config.h"
#include "fail_back.h"
#include "gadget.h"
#include "io_trace.h"
#include "kmsg_forward.h"
#include "log.h"
#include "modules.h"
#include "rootfs.h"
#include "usb_gadget.h"

#define ROLE_ENV "FASTBOOP_STAGE0_ROLE"
#define FFS_ENV "FASTBOOP_STAGE0_FFS_DIR"

static void mount_or_die(const char *source, const char *target, const char *type) {
    if (mkdir(target, 0755) && errno != EEXIST) die("mkdir %s: %s", target, strerror(errno));
    if (mount(source, target, type, 0, NULL) && errno != EBUSY)
        die("mount %s on %s: %s", type, target, strerror(errno));
}

static bool child_alive(pid_t child) {
    int status;
    return child <= 0 || waitpid(child, &status, WNOHANG) == 0;
}

typedef bool (*ready_fn)(void);

/* Poll every WAIT_POLL_MS; on expiry print one clear line and die (fail_back). The line
 * says what was awaited, for how long, and (hint) which setting changes the deadline.
 * Polled often because every boot waits here three times (UDC, FunctionFS, the served
 * root): a 1 s poll cost ~1.5 s of each boot (docs/benchmarks.md, serving on the real
 * path), and a check is one access()/stat(). */
enum { WAIT_POLL_MS = 50 };

static long long monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void wait_until(const char *what, unsigned seconds, ready_fn ready, pid_t child,
                       const char *hint) {
    long long deadline = monotonic_ms() + (long long)seconds * 1000;
    for (;;) {
        if (ready()) return;
        if (!child_alive(child)) die("gadget child exited while waiting for %s", what);
        if (monotonic_ms() >= deadline)
            die("deadline: %s not ready after %u s%s", what, seconds, hint ? hint : "");
        usleep(WAIT_POLL_MS * 1000);
    }
}

static bool ffs_ready(void) { return access(FFS_DIR "/ep1", F_OK) == 0; }
static bool root_ready(void) { return nbd_ready("/sys/block/nbd0"); }

/* Re-exec this binary in another role (§8.1); returns the child's pid, or -1. */
static pid_t start_role(const char *role) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, STDIN_FILENO);
    setenv(ROLE_ENV, role, 1);
    setenv(FFS_ENV, FFS_DIR, 1);
    /* A leading '@' tells systemd this process backs the root filesystem, so its final
     * killing spree at shutdown spares it (systemd's "root storage daemons" rule). */
    char name[64];
    snprintf(name, sizeof name, "@stage0-%s", role);
    char *argv[] = {name, NULL};
    execv("/proc/self/exe", argv);
    die("exec %s: %s", role, strerror(errno));
}

static void load_config(struct stage0_config *cfg) {
    config_defaults(cfg);
    if (config_load("/etc/stage0", cfg)) log_warn("/etc/stage0 missing");
    fail_back_set(cfg->on_failure);
    if (!strcmp(cfg->log_filter, "debug") || !strcmp(cfg->log_filter, "trace"))
        log_set_max_level(LOG_DEBUG_LEVEL);
    io_trace_enabled = !strcmp(cfg->log_filter, "trace");
}

static int pid1(void) {
    if (getpid() != 1) die("stage0 must run as PID 1");
    log_on_fatal(fail_back); /* from here on a fatal error returns the phone to fastboot */
    mount_or_die("proc", "/proc", "proc");
    mount_or_die("sysfs", "/sys", "sysfs");
    mount_or_die("devtmpfs", "/dev", "devtmpfs");
    mount_or_die("tmpfs", "/run", "tmpfs");
    log_open("stage0");
    log_info("stage0 starting");

    struct stage0_config cfg;
    load_config(&cfg);
    if (!cfg.rootfs[0]) die("stage0.rootfs missing or not erofs/ext4/btrfs/squashfs");
    if (cfg.fb) log_warn("stage0.fb: framebuffer painter not implemented; ignored");

    struct utsname uts;
    char modules_dir[256];
    uname(&uts);
    snprintf(modules_dir, sizeof modules_dir, "/lib/modules/%s", uts.release);
    int failed = modules_load_all(modules_dir, "/etc/modules-load.d");
    if (failed) log_warn("%d module(s) failed to load", failed);

    mount_or_die("configfs", "/sys/kernel/config", "configfs");
    wait_until("USB device controller (/sys/class/udc)", 15, udc_available, 0, NULL);
    int rc = gadget_create(&cfg);
    if (rc) die("gadget setup failed: %s", strerror(-rc));
    pid_t child = start_role("gadget-child");
    if (child < 0) die("fork gadget child: %s", strerror(errno));
    wait_until("FunctionFS endpoints (" FFS_DIR "/ep1)", 15, ffs_ready, child, NULL);
    rc = gadget_bind();
    if (rc) die("gadget bind failed: %s", strerror(-rc));
    if (cfg.acm && start_role("kmsg-child") < 0) log_warn("kmsg forwarder not started");
    /* The only deadline that depends on the host (finding the gadget, the smoo handshake):
     * a setting, because a slow host start-up (an emulator, a loaded machine) needs more. */
    log_info("waiting up to %u s for the host (smoo.host_timeout)", cfg.host_timeout_s);
    wait_until("served block device (/dev/nbd0, host handshake)", cfg.host_timeout_s,
               root_ready, child, "; raise smoo.host_timeout if the host is slow to start");
    rootfs_assemble(&cfg);
    rootfs_switch_and_exec(&cfg); /* the gadget child keeps serving under the new init */
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv; /* as PID1, arguments are bootloader junk (§8.1) */
    const char *role = getenv(ROLE_ENV);
    if (role && !strcmp(role, "gadget-child")) {
        log_open("stage0-gadget");
        struct stage0_config cfg;
        load_config(&cfg);
        signal(SIGPIPE, SIG_IGN);
        const char *ffs = getenv(FFS_ENV);
        gadget_child_main(&cfg, ffs ? ffs : FFS_DIR);
    }
    if (role && !strcmp(role, "kmsg-child")) {
        log_open("stage0-kmsg");
        kmsg_forward_main("/dev/ttyGS0");
    }
    return pid1();
}
