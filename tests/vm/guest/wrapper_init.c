/* Test-only wrapper init for the VM end-to-end tests (selected with rdinit=/vmtest/init).
 *
 * It is NOT part of stage0 and never ships: the harness adds it to the initramfs through
 * the builder's --augment path. As PID 1 it forks one child, waits until that child has
 * mounted the share and exec'd the host process (a close-on-exec pipe reaching EOF), and
 * then execs the real /init (stage0) with argv[0] "/init", so stage0 runs as PID 1
 * exactly as on a phone. Starting the host first gives its slow TCG start-up a head start
 * on stage0's wait for the smoo handshake (the smoo.host_timeout setting; the harness
 * raises it from the default 30 s to 120 s).
 *
 * The child does all test-specific work in its own mount namespace, so stage0 sees an
 * untouched initramfs:
 *   1. unshare(CLONE_NEWNS), make every mount private;
 *   2. load the 9p/virtio modules listed in /vmtest/modules (finit_module, in order);
 *   3. mount the host's filesystem (9p tag "hostroot", read-only) on /vmtest/host, then
 *      proc, sysfs, devtmpfs, tmpfs /run (TMPDIR) inside it, and the writable 9p tag
 *      "vmout" on the path named in /vmtest/outdir (same path as on the host);
 *   4. chroot into the host filesystem, chdir to /vmtest/cwd and start the host process:
 *      the NUL-separated argv in /vmtest/argv, "{journal}" replaced by
 *      <outdir>/serve-<run>.fbj, stdout/stderr on the second serial port (/dev/ttyS1);
 *   5. supervise it: with a non-zero byte count in /vmtest/restart_after, SIGKILL it once
 *      /sys/block/nbd0/stat shows more than that many bytes read, and start run 2 (the
 *      "host restarts while the VM is reading" case). SIGTERM (the rootfs init shutting
 *      the VM down) is passed on; the supervisor exits when the host process has.
 *
 * Every step logs one line to the kernel log ("vmtest-wrapper: ...").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOST "/vmtest/host"
#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

static int kmsg = -1;

static void say(const char *fmt, ...) {
    char line[512];
    int n = snprintf(line, sizeof line, "<6>vmtest-wrapper: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line) n = sizeof line - 1;
    if (kmsg >= 0) (void)!write(kmsg, line, (size_t)n);
}

static void fail(const char *fmt, const char *arg) {
    say(fmt, arg, strerror(errno));
    _exit(1);
}

/* Read a whole small file; returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    for (ssize_t n; len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0;)
        len += (size_t)n;
    close(fd);
    buf[len] = 0;
    return (ssize_t)len;
}

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
}

static void mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    mkdir(tmp, 0755);
}

static void mount_at(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data) {
    mkdirs(dst);
    if (mount(src, dst, type, flags, data)) {
        say("mount %s on %s failed: %s", type, dst, strerror(errno));
        _exit(1);
    }
}

static void load_modules(void) {
    static char list[16384];
    if (slurp("/vmtest/modules", list, sizeof list) < 0) fail("read %s: %s", "/vmtest/modules");
    for (char *save = NULL, *path = strtok_r(list, "\n", &save); path;
         path = strtok_r(NULL, "\n", &save)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("open module %s: %s", path);
        size_t n = strlen(path);
        int flags = (n > 3 && (!strcmp(path + n - 3, ".xz") || !strcmp(path + n - 3, ".gz"))) ||
                            (n > 4 && !strcmp(path + n - 4, ".zst"))
                        ? MODULE_INIT_COMPRESSED_FILE
                        : 0;
        if (syscall(SYS_finit_module, fd, "", flags) && errno != EEXIST)
            fail("finit_module %s: %s", path);
        close(fd);
        say("loaded %s", path);
    }
}

static char outdir[1024];
static char *host_argv[64];
static volatile pid_t host_pid;
static volatile sig_atomic_t stopping;
static int start_host_ready = -1;

static void on_term(int sig) {
    stopping = 1;
    if (host_pid > 0) kill(host_pid, sig);
}

static pid_t start_host(int run) {
    static char journal[1200];
    static char args[64][1400];
    char *argv[64];
    snprintf(journal, sizeof journal, "%s/serve-%d.fbj", outdir, run);
    int i = 0;
    for (; host_argv[i]; i++) {
        char *at = strstr(host_argv[i], "{journal}");
        if (!at) {
            argv[i] = host_argv[i];
            continue;
        }
        snprintf(args[i], sizeof args[i], "%.*s%s%s", (int)(at - host_argv[i]), host_argv[i],
                 journal, at + strlen("{journal}"));
        argv[i] = args[i];
    }
    argv[i] = NULL;
    say("starting host process #%d: %s (journal %s)", run, argv[0], journal);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        execv(argv[0], argv);
        fail("exec %s: %s", argv[0]);
    }
    host_pid = pid;
    if (start_host_ready >= 0) { /* the parent (PID 1) may exec stage0 now */
        close(start_host_ready);
        start_host_ready = -1;
    }
    return pid;
}

static long long nbd0_bytes_read(void) {
    char stat[512];
    long long ios, merges, sectors;
    if (slurp("/sys/block/nbd0/stat", stat, sizeof stat) < 0) return 0;
    if (sscanf(stat, "%lld %lld %lld", &ios, &merges, &sectors) != 3) return 0;
    return sectors * 512;
}

static int supervise(long long restart_after) {
    int run = 1, status = 0;
    pid_t pid = start_host(run);
    while (restart_after > 0 && !stopping && waitpid(pid, &status, WNOHANG) == 0) {
        long long done = nbd0_bytes_read();
        if (done > restart_after) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            say("killed host process #%d (SIGKILL) at nbd0 bytes_read=%lld", run, done);
            pid = start_host(++run);
            break;
        }
        usleep(50000);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    say("host process #%d exited (status 0x%x); nbd0 bytes_read=%lld", run, status,
        nbd0_bytes_read());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void child(int ready) {
    if (unshare(CLONE_NEWNS)) _exit(1);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) _exit(1);
    mount_at("devtmpfs", "/vmtest/dev", "devtmpfs", 0, NULL);
    kmsg = open("/vmtest/dev/kmsg", O_WRONLY | O_CLOEXEC);
    say("host-side child started (pid %d)", (int)getpid());
    load_modules();

    /* Read-only share: aggressive caching is safe and makes Python start much faster. */
    mount_at("hostroot", HOST, "9p", MS_RDONLY,
             "trans=virtio,version=9p2000.L,msize=262144,cache=loose");
    mount_at("proc", HOST "/proc", "proc", 0, NULL);
    mount_at("sysfs", HOST "/sys", "sysfs", 0, NULL);
    mount_at("devtmpfs", HOST "/dev", "devtmpfs", 0, NULL);
    /* No tmpfs over /tmp: the checkout (CI clones anywhere, /tmp included) must stay
     * visible. Scratch space for the host process is a tmpfs under /run instead. */
    mount_at("tmpfs", HOST "/run", "tmpfs", 0, NULL);
    mkdir(HOST "/run/vmtest-tmp", 01777);
    setenv("TMPDIR", "/run/vmtest-tmp", 1);
    char where[1200];
    if (slurp("/vmtest/outdir", outdir, sizeof outdir) < 0) fail("read %s: %s", "/vmtest/outdir");
    chomp(outdir);
    snprintf(where, sizeof where, HOST "%s", outdir);
    mount_at("vmout", where, "9p", 0, "trans=virtio,version=9p2000.L,msize=262144");
    say("host filesystem mounted; output directory %s", outdir);

    static char argbuf[8192];
    char cwd[1024], restart[64] = "0";
    ssize_t len = slurp("/vmtest/argv", argbuf, sizeof argbuf);
    if (len <= 0) fail("read %s: %s", "/vmtest/argv");
    if (slurp("/vmtest/cwd", cwd, sizeof cwd) < 0) fail("read %s: %s", "/vmtest/cwd");
    chomp(cwd);
    int argc = 0;
    for (char *p = argbuf; p < argbuf + len && argc < 63; p += strlen(p) + 1)
        host_argv[argc++] = p;
    host_argv[argc] = NULL;
    (void)slurp("/vmtest/restart_after", restart, sizeof restart);

    if (chroot(HOST) || chdir(cwd)) fail("chroot/chdir %s: %s", cwd);
    int out = open("/dev/ttyS1", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0) say("open /dev/ttyS1: %s (host output lost)", strerror(errno));
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
    }
    if (in >= 0) dup2(in, STDIN_FILENO);
    struct sigaction term = {.sa_handler = on_term}; /* no SA_RESTART */
    sigemptyset(&term.sa_mask);
    sigaction(SIGTERM, &term, NULL);
    start_host_ready = ready;
    _exit(supervise(atoll(restart)));
}

int main(void) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC)) pipefd[0] = pipefd[1] = -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        child(pipefd[1]);
    }
    close(pipefd[1]);
    char byte;
    while (pipefd[0] >= 0 && read(pipefd[0], &byte, 1) < 0 && errno == EINTR) {
    }
    close(pipefd[0]);
    char *argv[] = {"/init", NULL};
    execv("/init", argv); /* keep the environment the kernel gave PID 1 */
    return 127; /* kernel panics: attempted to kill init */
}
