/* /sbin/init of the VM test rootfs (served over smoo, mounted by stage0).
 *
 * Reads the marker file and the payload blob from the rootfs, prints one line to the
 * console:
 *     VMTEST-ROOTFS-INIT pid=1 marker=<marker> blob=<bytes>:<checksum>
 * where the checksum is the sum of word[i] * (i + 1) mod 2^64 over the blob's
 * little-endian u64 words (position-sensitive, cheap in Python and under TCG).
 * /data/blob.sums holds the same checksum per 64 KiB chunk; every chunk that does not
 * match is reported with its first words, so a corruption can be traced to its source.
 * A second line gives the blob's read time, open to EOF on the monotonic clock:
 *     VMTEST-ROOTFS-INIT payload read: <bytes> bytes in <microseconds> us
 * (informational, the throughput seen inside the VM: docs/benchmarks.md; never asserted).
 * then does what a distro shutdown does: SIGTERM to every process but the root storage
 * daemons (argv[0] "@...", like stage0's gadget; systemd spares them too), wait for them
 * (so a host-side process in the VM can close its journal), sync, power off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int console = 2;

static void out(const char *line) { (void)!write(console, line, strlen(line)); }

static void poweroff(void) {
    sync();
    reboot(RB_POWER_OFF);
    for (;;) pause();
}

/* SIGTERM every process but PID 1 and those whose argv[0] starts with '@'; returns how
 * many, their pids in `pids`. Kernel threads (empty cmdline) are skipped. */
static int terminate_all_but_storage(pid_t *pids, int cap) {
    DIR *proc = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (proc && (e = readdir(proc)) && n < cap) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 1 || pid == getpid()) continue;
        char path[64], first = 0;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        int fd = open(path, O_RDONLY);
        ssize_t got = fd >= 0 ? read(fd, &first, 1) : -1;
        if (fd >= 0) close(fd);
        if (got != 1 || first == '@') continue;
        if (kill(pid, SIGTERM) == 0) pids[n++] = pid;
    }
    if (proc) closedir(proc);
    return n;
}

static int any_alive(const pid_t *pids, int n) {
    for (int i = 0; i < n; i++)
        if (kill(pids[i], 0) == 0) return 1;
    return 0;
}

int main(void) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (fd >= 0) console = fd;
    char line[512];

    char marker[128] = "";
    int mfd = open("/etc/vmtest-marker", O_RDONLY);
    ssize_t mlen = mfd >= 0 ? read(mfd, marker, sizeof marker - 1) : -1;
    if (mlen < 0) {
        snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT error: marker: %s\n", strerror(errno));
        out(line);
        poweroff();
    }
    marker[mlen] = 0;
    marker[strcspn(marker, "\n")] = 0;
    snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT reading payload (marker file read)\n");
    out(line);

    enum { CHUNK_WORDS = 8192, MAX_CHUNKS = 4096 };
    static uint64_t want[MAX_CHUNKS], got[MAX_CHUNKS], head[MAX_CHUNKS][2];
    int sfd = open("/data/blob.sums", O_RDONLY);
    ssize_t slen = sfd >= 0 ? read(sfd, want, sizeof want) : -1;
    uint64_t hash = 0, total = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int bfd = open("/data/blob", O_RDONLY);
    if (bfd < 0) {
        snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT error: blob: %s\n", strerror(errno));
        out(line);
        poweroff();
    }
    static uint64_t buf[1 << 13];
    for (ssize_t n; (n = read(bfd, buf, sizeof buf)) != 0;) {
        if (n < 0) {
            snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT error: blob read at %" PRIu64 ": %s\n",
                     total, strerror(errno));
            out(line);
            poweroff();
        }
        if (n % 8) {
            out("VMTEST-ROOTFS-INIT error: short read not a multiple of 8\n");
            poweroff();
        }
        for (ssize_t i = 0; i < n / 8; i++) {
            uint64_t index = total / 8 + (uint64_t)i, chunk = index / CHUNK_WORDS;
            uint64_t term = buf[i] * (index + 1);
            hash += term;
            if (chunk < MAX_CHUNKS) {
                got[chunk] += term;
                if (index % CHUNK_WORDS < 2) head[chunk][index % CHUNK_WORDS] = buf[i];
            }
        }
        total += (uint64_t)n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT pid=%d marker=%s blob=%" PRIu64 ":%016" PRIx64 "\n",
             (int)getpid(), marker, total, hash);
    out(line);
    int64_t micros = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    snprintf(line, sizeof line, "VMTEST-ROOTFS-INIT payload read: %" PRIu64 " bytes in %" PRId64
             " us\n", total, micros);
    out(line);
    for (uint64_t c = 0, bad = 0; slen > 0 && c < (uint64_t)slen / 8 && bad < 16; c++) {
        if (got[c] == want[c]) continue;
        bad++;
        snprintf(line, sizeof line,
                 "VMTEST-ROOTFS-INIT bad chunk %" PRIu64 " (offset %" PRIu64 "): %016" PRIx64
                 " %016" PRIx64 "\n", c, c * CHUNK_WORDS * 8, head[c][0], head[c][1]);
        out(line);
    }

    /* Shutdown as systemd does it: TERM every process except the root storage daemons
     * (argv[0] starting with '@', which stage0's gadget is: the root lives on it), wait
     * up to 60 s for them to go (reaping what dies), then power off. */
    static pid_t victims[4096];
    int count = terminate_all_but_storage(victims, 4096);
    time_t start = time(NULL);
    while (time(NULL) - start < 60 && any_alive(victims, count)) {
        while (waitpid(-1, NULL, WNOHANG) > 0) continue;
        usleep(100000);
    }
    out("VMTEST-ROOTFS-INIT powering off\n");
    poweroff();
}
