/* /sbin/init of bench/vm_serving.py's rootfs: the same file read two ways in one VM.
 *
 * The rootfs was served over smoo and mounted by stage0 (EROFS on /dev/nbd0). The same
 * image is also the VM's virtio-blk disk (`fastboop sim --disk`); this init mounts it
 * read-only at /mnt/reference. A third mount, /mnt/local, is the NBD leg alone: the same
 * image on /dev/nbd1, served by a minimal NBD server in this guest (nbd_local_* below) from
 * its memory, with nbd0's queue settings. No server design over NBD reads faster in this
 * guest, so its rate bounds what the served path can reach whatever the USB link costs.
 * /data/blob is read from each mount, whole, into memory, page cache dropped before each
 * read, the order rotating per round, after one untimed read of each. Each read is printed as
 *     VMBENCH read round=<r> path=<served|virtio|local> bytes=<n> us=<t>
 * timed on the monotonic clock from open to EOF with nothing else in the loop (no
 * checksum), so the times compare the block paths and nothing more. The copies
 * are then compared with each other and checksummed (the sum rootfs_init.c prints):
 *     VMBENCH check round=<r> same=<0|1> sum=<16 hex digits>
 * Last, the round trip of a 4 KiB direct read on each device (median and slowest of 32):
 *     VMBENCH latency device=<dev> reads=32 median_us=<t> max_us=<t>
 * First of all it prints the guest's boot clock, so the host can split the time from
 * `fastboop boot` to this init into its host and guest parts:
 *     VMBENCH init pid=<pid> boottime_us=<t>
 * `vmbench.rounds=N` on the kernel cmdline (default 3) sets the rounds; `vmbench.chunk=N`
 * the read size in KiB (default 1024); `vmbench.read_ahead_kb=N` overrides the served
 * device's readahead (a profiling knob; both devices' settings are printed);
 * `vmbench.profile=1` samples where the guest's CPU goes during each read (profile_* below)
 * and prints the hottest functions:
 *     VMBENCH hot round=<r> path=<p> share=<percent> samples=<n> symbol=<kernel function>
 * Then it powers the VM off. Never a speed check: the host only reports the numbers
 * (docs/benchmarks.md).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nbd.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int console = 2;

static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...) {
    char line[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (n > 0) (void)!write(console, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void poweroff(void) {
    sync();
    reboot(RB_POWER_OFF);
    for (;;) pause();
}

static void fail(const char *what) {
    say("VMBENCH error: %s: %s\n", what, strerror(errno));
    poweroff();
}

static int64_t now_us(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The value of `key=` on the kernel cmdline, or `fallback`. */
static long cmdline_number(const char *key, long fallback) {
    static char text[4096];
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) return fallback;
    text[n] = 0;
    size_t len = strlen(key);
    for (char *at = text; (at = strstr(at, key)) != NULL; at += len)
        if ((at == text || at[-1] == ' ') && at[len] == '=') return strtol(at + len + 1, NULL, 0);
    return fallback;
}

/* virtio_blk is a module in Debian's kernels; load it from the served root's tree (xz-
 * compressed from Debian 13 on: the kernel decompresses it, MODULE_INIT_COMPRESSED_FILE). */
static void load_virtio_blk(void) {
    static const char *const suffixes[] = {".ko", ".ko.xz", ".ko.zst"};
    struct utsname u;
    char path[256];
    uname(&u);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(path, sizeof path, "/lib/modules/%s/kernel/drivers/block/virtio_blk%s",
                 u.release, suffixes[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (syscall(SYS_finit_module, fd, "", i ? 4 /* MODULE_INIT_COMPRESSED_FILE */ : 0) != 0 &&
            errno != EEXIST)
            fail("load virtio_blk");
        close(fd);
        return;
    }
    /* built in, or not there: the wait for /dev/vda tells */
}

static void mount_reference(void) {
    struct stat st;
    for (int i = 0; i < 300 && stat("/dev/vda", &st) != 0; i++) usleep(100000);
    mkdir("/mnt", 0755);
    mkdir("/mnt/reference", 0755);
    if (mount("/dev/vda", "/mnt/reference", "erofs", MS_RDONLY, NULL) != 0)
        fail("mount /dev/vda (start the phone with --disk IMAGE)");
}

/* Print (and with `vmbench.read_ahead_kb=N`, first set) a block device's queue settings:
 * the served and the local device are compared as the kernel and stage0 set them up. */
/* One of a block device's queue settings, as text without its newline ("?" if unreadable). */
static const char *queue_get(const char *device, const char *name, char *value, size_t cap) {
    char path[128];
    snprintf(path, sizeof path, "/sys/block/%s/queue/%s", device, name);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, value, cap - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) return "?";
    value[n] = 0;
    value[strcspn(value, "\n")] = 0;
    return value;
}

static void queue_set(const char *device, const char *name, const char *value) {
    char path[128];
    snprintf(path, sizeof path, "/sys/block/%s/queue/%s", device, name);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || dprintf(fd, "%s", value) < 0) fail(path);
    close(fd);
}

static void queue_settings(const char *device, long read_ahead_kb) {
    char value[2][32];
    if (read_ahead_kb > 0) {
        snprintf(value[0], sizeof value[0], "%ld", read_ahead_kb);
        queue_set(device, "read_ahead_kb", value[0]);
    }
    say("VMBENCH queue device=%s read_ahead_kb=%s max_sectors_kb=%s\n", device,
        queue_get(device, "read_ahead_kb", value[0], sizeof value[0]),
        queue_get(device, "max_sectors_kb", value[1], sizeof value[1]));
}

static void drop_caches(void) {
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0 || write(fd, "3", 1) != 1) fail("drop caches");
    close(fd);
}

/* Read `path` whole into `into` (at most `cap` bytes), `chunk` bytes per read(2). */
static size_t timed_read(const char *path, uint8_t *into, size_t cap, size_t chunk,
                         int64_t *micros) {
    int64_t start = now_us(CLOCK_MONOTONIC);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path);
    size_t total = 0;
    for (ssize_t n; total < cap; total += (size_t)n) {
        size_t want = cap - total < chunk ? cap - total : chunk;
        n = read(fd, into + total, want);
        if (n < 0) fail(path);
        if (n == 0) break;
    }
    *micros = now_us(CLOCK_MONOTONIC) - start;
    close(fd);
    return total;
}

/* The guest's CPU time so far, from /proc/stat's "cpu" line: user, nice, system, idle,
 * iowait, irq, softirq (in USER_HZ ticks). A read whose CPU is mostly idle/iowait waited
 * for its device; one that is mostly system/softirq was bound by the guest's own work. */
enum { CPU_FIELDS = 7 };
static void cpu_times(uint64_t out[CPU_FIELDS]) {
    char text[256] = "";
    int fd = open("/proc/stat", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    memset(out, 0, CPU_FIELDS * sizeof *out);
    if (n > 0) {
        text[n] = 0;
        sscanf(text, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64, &out[0], &out[1], &out[2], &out[3], &out[4], &out[5], &out[6]);
    }
}

/* The round trip of one small read: `count` 4 KiB O_DIRECT reads of `device` at spread
 * offsets (no page cache, no readahead), one at a time; prints their median and the
 * slowest. On the served device each one crosses the whole path and back: NBD, stage0,
 * USB/IP, the host's pump, and the same way back. */
static void latency(const char *device, int count) {
    static int64_t took[64];
    void *block = NULL;
    if (count > 64) count = 64;
    int fd = open(device, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0 || posix_memalign(&block, 4096, 4096)) fail(device);
    off_t size = lseek(fd, 0, SEEK_END);
    for (int i = 0; i < count; i++) {
        uint64_t blocks = (uint64_t)size / 4096, nth = (uint64_t)(2 * i + 1);
        off_t at = (off_t)(blocks * nth / (uint64_t)(2 * count) * 4096);
        int64_t start = now_us(CLOCK_MONOTONIC);
        if (pread(fd, block, 4096, at) != 4096) fail(device);
        took[i] = now_us(CLOCK_MONOTONIC) - start;
    }
    close(fd);
    free(block);
    for (int i = 1; i < count; i++) /* insertion sort: count is tiny */
        for (int j = i; j > 0 && took[j] < took[j - 1]; j--) {
            int64_t t = took[j];
            took[j] = took[j - 1];
            took[j - 1] = t;
        }
    say("VMBENCH latency device=%s reads=%d median_us=%" PRId64 " max_us=%" PRId64 "\n", device,
        count, took[count / 2], took[count - 1]);
}

/* ---- vmbench.profile=1: where the guest's CPU goes during one read ----
 * A cpu-clock sampling event on CPU 0 (the VM has one vCPU unless --cpus says otherwise),
 * every task and the kernel, one sample per 250 us of CPU; the samples' instruction
 * pointers are mapped to functions through /proc/kallsyms. Interrupts-off sections are
 * charged to where interrupts come back on, as with any timer-based profile. */
enum { PROFILE_PAGES = 512, PROFILE_TOP = 16 };
static int profile_fd = -1;
static struct perf_event_mmap_page *profile_ring;

static void profile_start(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.sample_period = 250000; /* ns */
    attr.sample_type = PERF_SAMPLE_IP;
    attr.disabled = 1;
    attr.exclude_hv = 1;
    profile_fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0);
    if (profile_fd < 0) fail("perf_event_open");
    size_t length = (size_t)(PROFILE_PAGES + 1) * (size_t)sysconf(_SC_PAGESIZE);
    profile_ring = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, profile_fd, 0);
    if (profile_ring == MAP_FAILED) fail("perf mmap");
    ioctl(profile_fd, PERF_EVENT_IOC_ENABLE, 0);
}

struct symbol {
    uint64_t address;
    char *name;
};

static int by_address(const void *a, const void *b) {
    uint64_t x = ((const struct symbol *)a)->address, y = ((const struct symbol *)b)->address;
    return x < y ? -1 : x > y;
}

/* The kernel's (and its modules') functions, sorted by address; NULL when hidden. */
static struct symbol *kernel_symbols(size_t *count) {
    FILE *f = fopen("/proc/kallsyms", "re");
    if (f == NULL) return NULL;
    struct symbol *table = NULL;
    size_t n = 0, cap = 0;
    char line[512], name[256], type;
    unsigned long long address;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%llx %c %255s", &address, &type, name) == 3 && address &&
            (type == 't' || type == 'T')) {
            if (n == cap && !(table = realloc(table, (cap = cap ? 2 * cap : 65536) * sizeof *table)))
                fail("memory");
            table[n++] = (struct symbol){address, strdup(name)};
        }
    fclose(f);
    qsort(table, n, sizeof *table, by_address);
    *count = n;
    return table;
}

static void profile_report(long round, const char *path) {
    ioctl(profile_fd, PERF_EVENT_IOC_DISABLE, 0);
    uint64_t head = profile_ring->data_head, tail = profile_ring->data_tail;
    __sync_synchronize();
    const uint8_t *data = (const uint8_t *)profile_ring + profile_ring->data_offset;
    uint64_t size = profile_ring->data_size;
    static size_t nsymbols;
    static struct symbol *symbols;
    if (symbols == NULL) symbols = kernel_symbols(&nsymbols);
    uint32_t *counts = calloc(nsymbols + 1, sizeof *counts); /* the last: not the kernel */
    if (counts == NULL) fail("memory");
    uint64_t samples = 0;
    while (tail < head) {
        struct perf_event_header h;
        uint64_t ip = 0;
        for (size_t i = 0; i < sizeof h; i++) ((uint8_t *)&h)[i] = data[(tail + i) % size];
        for (size_t i = 0; i < sizeof ip; i++) ((uint8_t *)&ip)[i] = data[(tail + sizeof h + i) % size];
        if (h.size == 0) break;
        tail += h.size;
        if (h.type != PERF_RECORD_SAMPLE) continue;
        samples++;
        size_t lo = 0, hi = nsymbols; /* the last symbol at or below ip */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (symbols[mid].address <= ip) lo = mid + 1;
            else hi = mid;
        }
        counts[lo && ip >= symbols[0].address ? lo - 1 : nsymbols]++;
    }
    profile_ring->data_tail = tail;
    say("VMBENCH profile round=%ld path=%s samples=%" PRIu64 " symbols=%zu\n", round, path,
        samples, nsymbols);
    for (int k = 0; k < PROFILE_TOP && samples; k++) {
        size_t best = 0;
        for (size_t i = 1; i <= nsymbols; i++)
            if (counts[i] > counts[best]) best = i;
        if (counts[best] == 0) break;
        say("VMBENCH hot round=%ld path=%s share=%.1f samples=%u symbol=%s\n", round, path,
            100.0 * counts[best] / (double)samples, counts[best],
            best == nsymbols ? "[user]" : symbols[best].name);
        counts[best] = 0;
    }
    free(counts);
}

/* ---- the NBD leg alone: /dev/nbd1 served from this guest's memory ----
 * The server is the least work any NBD server can do per request: read the 28-byte
 * request, then one writev of the 16-byte reply and the data straight from memory (the
 * one copy, into the socket). Its memory holds the image's 1 MiB pieces as they are first
 * asked for (O_DIRECT from /dev/vda: qemu's DMA, no guest copy); a warm-up read before the
 * rounds loads the blob's pieces, so the timed reads never wait for vda. Everything else
 * on this path is the kernel's and the same as for /dev/nbd0: nbd's receive into the
 * page cache, EROFS, the reader's copy out. */
enum { PIECE = 1 << 20 };

static int read_whole(int fd, void *into, size_t size) {
    for (size_t got = 0; got < size;) {
        ssize_t n = read(fd, (uint8_t *)into + got, size - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static void nbd_local_serve(int sock, int image, size_t size) {
    uint8_t *memory = mmap(NULL, size + PIECE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *loaded = calloc(size / PIECE + 1, 1);
    if (memory == MAP_FAILED || loaded == NULL) fail("nbd1 server memory");
    for (;;) {
        struct nbd_request request;
        if (read_whole(sock, &request, sizeof request) != 0) _exit(0); /* the kernel let go */
        uint32_t type = ntohl(request.type), length = ntohl(request.len);
        uint64_t from = be64toh(request.from);
        struct nbd_reply reply = {.magic = htonl(NBD_REPLY_MAGIC), .error = 0};
        memcpy(reply.handle, request.handle, sizeof reply.handle);
        if (type == NBD_CMD_DISC) _exit(0);
        if (type != NBD_CMD_READ || from > size || length > size - from) {
            reply.error = htonl(EINVAL);
            length = 0;
        }
        for (size_t piece = from / PIECE; length && piece <= (from + length - 1) / PIECE; piece++)
            if (!loaded[piece]) {
                if (pread(image, memory + piece * PIECE, PIECE, (off_t)(piece * PIECE)) < 0)
                    fail("nbd1 server: read /dev/vda");
                loaded[piece] = 1;
            }
        struct iovec parts[2] = {{&reply, sizeof reply}, {memory + from, length}};
        if (writev(sock, parts, length ? 2 : 1) != (ssize_t)(sizeof reply + length))
            fail("nbd1 server: reply");
    }
}

static void *nbd_local_do_it(void *device) {
    ioctl(*(int *)device, NBD_DO_IT); /* blocks while the device is connected */
    return NULL;
}

/* The queue setting `name` of nbd0, copied to nbd1. */
static void copy_queue_setting(const char *name) {
    char value[32];
    const char *text = queue_get("nbd0", name, value, sizeof value);
    if (text[0] == '?') fail(name);
    queue_set("nbd1", name, text);
}

static void nbd_local_start(void) {
    static int device;
    int pair[2], image = open("/dev/vda", O_RDONLY | O_DIRECT | O_CLOEXEC);
    off_t size = image >= 0 ? lseek(image, 0, SEEK_END) : -1;
    if (size <= 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)) fail("/dev/vda");
    pid_t server = fork();
    if (server < 0) fail("fork");
    if (server == 0) {
        close(pair[1]);
        nbd_local_serve(pair[0], image, (size_t)size);
    }
    close(pair[0]);
    close(image);
    device = open("/dev/nbd1", O_RDWR | O_CLOEXEC);
    pthread_t thread;
    if (device < 0 || ioctl(device, NBD_SET_BLKSIZE, 4096UL) < 0 ||
        ioctl(device, NBD_SET_SIZE_BLOCKS, (unsigned long)size / 4096) < 0 ||
        ioctl(device, NBD_SET_FLAGS, (unsigned long)(NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY)) < 0 ||
        ioctl(device, NBD_SET_SOCK, (unsigned long)pair[1]) < 0 ||
        pthread_create(&thread, NULL, nbd_local_do_it, &device))
        fail("/dev/nbd1 setup");
    copy_queue_setting("max_sectors_kb");
    copy_queue_setting("read_ahead_kb");
    mkdir("/mnt/local", 0755);
    for (int i = 0; mount("/dev/nbd1", "/mnt/local", "erofs", MS_RDONLY, NULL) != 0; i++)
        if (i == 100) fail("mount /dev/nbd1"); /* NBD_DO_IT not running yet: wait */
        else usleep(100000);
}

static uint64_t checksum(const uint8_t *data, size_t size) {
    const uint64_t *words = (const uint64_t *)data;
    uint64_t sum = 0;
    for (size_t i = 0; i < size / 8; i++) sum += words[i] * (uint64_t)(i + 1);
    return sum;
}

int main(void) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (fd >= 0) console = fd;
    say("VMBENCH init pid=%d boottime_us=%" PRId64 "\n", (int)getpid(), now_us(CLOCK_BOOTTIME));

    long rounds = cmdline_number("vmbench.rounds", 3);
    int profile = cmdline_number("vmbench.profile", 0) != 0;
    size_t chunk = (size_t)cmdline_number("vmbench.chunk", 1024) << 10;
    struct stat st;
    if (stat("/data/blob", &st) != 0) fail("/data/blob");
    size_t size = (size_t)st.st_size;
    load_virtio_blk();
    mount_reference();
    queue_settings("nbd0", cmdline_number("vmbench.read_ahead_kb", 0));
    queue_settings("vda", 0);
    nbd_local_start();
    uint8_t *copy[3] = {malloc(size), malloc(size), malloc(size)};
    if (!copy[0] || !copy[1] || !copy[2] || !chunk) fail("memory");
    static const char *const names[3] = {"served", "virtio", "local"};
    static const char *const paths[3] = {"/data/blob", "/mnt/reference/data/blob",
                                         "/mnt/local/data/blob"};
    /* One untimed read of each first: a page this VM touches for the first time costs qemu
     * a host page fault, which would be charged to whichever read of round 0 touched it
     * first; and the nbd1 server loads the blob into its memory. */
    for (int which = 0; which < 3; which++) {
        int64_t warm;
        memset(copy[which], 0, size);
        drop_caches();
        timed_read(paths[which], copy[which], size, chunk, &warm);
    }
    for (long r = 0; r < rounds; r++) {
        for (int k = 0; k < 3; k++) {
            int which = (int)((k + r) % 3);
            drop_caches();
            int64_t us;
            uint64_t before[CPU_FIELDS], after[CPU_FIELDS];
            if (profile) profile_start();
            cpu_times(before);
            size_t got = timed_read(paths[which], copy[which], size, chunk, &us);
            cpu_times(after);
            if (profile) profile_report(r, names[which]);
            say("VMBENCH read round=%ld path=%s bytes=%zu us=%" PRId64 "\n", r, names[which],
                got, us);
            say("VMBENCH cpu round=%ld path=%s user=%" PRIu64 " system=%" PRIu64 " idle=%" PRIu64
                " iowait=%" PRIu64 " irq=%" PRIu64 " softirq=%" PRIu64 "\n", r, names[which],
                after[0] + after[1] - before[0] - before[1], after[2] - before[2],
                after[3] - before[3], after[4] - before[4], after[5] - before[5],
                after[6] - before[6]);
        }
        say("VMBENCH check round=%ld same=%d sum=%016" PRIx64 "\n", r,
            !memcmp(copy[0], copy[1], size) && !memcmp(copy[0], copy[2], size),
            checksum(copy[0], size));
    }
    latency("/dev/nbd0", 32);
    latency("/dev/vda", 32);
    say("VMBENCH done\n");
    poweroff();
}
