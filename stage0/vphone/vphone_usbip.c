/* vphone-usbip: the virtual phone's USB cable (docs/virtual-phone.md).
 *
 * Inside the VM of `fastboop sim vm-*`, stage0's gadget binds to usbip-vudc, a virtual USB
 * device controller whose "cable" is a TCP socket. This helper is that socket's userspace
 * half, like `usbipd --device`, in one small static binary: it brings the VM's network
 * card up with qemu user networking's address, listens for USB/IP clients, answers
 * OP_REQ_DEVLIST from the vudc's sysfs, and on OP_REQ_IMPORT hands the connection to the
 * kernel (usbip_sockfd) and replies. From then on the kernel speaks USB/IP itself; when
 * the client goes away the vudc becomes available again and the next import attaches it.
 *
 * It is not part of stage0. The virtual phone adds it to the initramfs it receives (as
 * /vphone/init, with rdinit=/vphone/init) the way `fastboop stage0 --augment` adds files.
 * As PID 1 it forks itself into the background and execs /init, so stage0 runs as PID 1,
 * unchanged; the exporter waits for stage0 to mount /proc, /sys and /dev and to load the
 * modules (usbip_vudc, virtio_net), and keeps running after stage0's switch_root.
 *
 * Wire format: Linux Documentation/usb/usbip_protocol.rst (big-endian); the same layout
 * as fastboop/transports/usbip_wire.py.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define USBIP_PORT 3240
#define USBIP_VERSION 0x0111
#define OP_REQ_DEVLIST 0x8005
#define OP_REP_DEVLIST 0x0005
#define OP_REQ_IMPORT 0x8003
#define OP_REP_IMPORT 0x0003
#define ST_OK 0
#define ST_NA 1
#define ST_NODEV 4
#define SDEV_ST_AVAILABLE 1

#define VUDC "usbip-vudc.0"
#define VUDC_DIR "/sys/bus/platform/devices/" VUDC
#define VUDC_PATH "/sys/devices/platform/" VUDC
/* qemu user networking: the guest is 10.0.2.15/24, the host's forwards arrive from 10.0.2.2 */
#define GUEST_ADDR "10.0.2.15"
#define GUEST_MASK "255.255.255.0"

static int kmsg = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[384];
    int n = snprintf(line, sizeof line, "<6>vphone-usbip: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line - 1) n = sizeof line - 2;
    line[n++] = '\n';
    if (kmsg < 0) kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (kmsg < 0 || write(kmsg, line, (size_t)n) != n)
        (void)!write(STDERR_FILENO, line + 3, (size_t)n - 3);
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls every 100 ms; 0 once `path` exists, -1 after `seconds`. */
static int wait_for(const char *path, int seconds) {
    for (int i = 0; i < seconds * 10; i++) {
        if (access(path, F_OK) == 0) return 0;
        pause_ms(100);
    }
    return -1;
}

static int read_file(const char *path, void *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t got = read(fd, buf, cap);
    int err = errno;
    close(fd);
    return got < 0 ? -err : (int)got;
}

/* ---- network: bring the first non-loopback interface up with qemu's guest address ---- */

static int set_addr(int sock, const char *ifname, unsigned long request, const char *addr) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &sin->sin_addr);
    return ioctl(sock, request, &ifr);
}

static int set_up(int sock, const char *ifname) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr)) return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

static int find_nic(char *out, size_t cap) {
    DIR *d = opendir("/sys/class/net");
    if (!d) return -1;
    struct dirent *e;
    int rc = -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "lo")) {
            snprintf(out, cap, "%s", e->d_name);
            rc = 0;
            break;
        }
    closedir(d);
    return rc;
}

static int network_up(void) {
    char nic[IFNAMSIZ] = "";
    for (int i = 0; i < 600 && find_nic(nic, sizeof nic); i++) pause_ms(100);
    if (!nic[0]) {
        say("no network card after 60 s (is virtio_net in the device profile's modules?)");
        return -1;
    }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    int rc = set_up(sock, "lo");
    rc |= set_addr(sock, nic, SIOCSIFADDR, GUEST_ADDR);
    rc |= set_addr(sock, nic, SIOCSIFNETMASK, GUEST_MASK);
    rc |= set_up(sock, nic);
    close(sock);
    if (rc) say("configuring %s failed: %s", nic, strerror(errno));
    else say("%s up as %s", nic, GUEST_ADDR);
    return rc;
}

/* ---- USB/IP ---- */

struct __attribute__((packed)) op_header {
    uint16_t version, code;
    uint32_t status;
};

struct __attribute__((packed)) usb_device {
    char path[256], busid[32];
    uint32_t busnum, devnum, speed;
    uint16_t vid, pid, bcd_device;
    uint8_t device_class, device_subclass, device_protocol;
    uint8_t configuration_value, num_configurations, num_interfaces;
};

static int send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int recv_all(int fd, void *data, size_t len) {
    char *p = data;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint32_t speed_code(void) {
    static const char *names[] = {"UNKNOWN", "low-speed", "full-speed", "high-speed",
                                  "wireless", "super-speed", "super-speed-plus"};
    char text[32] = "";
    int n = read_file("/sys/class/udc/" VUDC "/current_speed", text, sizeof text - 1);
    if (n <= 0) return 3;
    text[n] = 0;
    text[strcspn(text, "\n")] = 0;
    for (uint32_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(text, names[i])) return i ? i : 3;
    return 3;
}

/* The exported device as the kernel's own `usbip --device` describes a vudc: from the
 * gadget's device descriptor (readable once a gadget is bound), no interfaces listed. */
static int describe(struct usb_device *dev) {
    uint8_t desc[18];
    if (read_file(VUDC_DIR "/dev_desc", desc, sizeof desc) != (int)sizeof desc) return -1;
    memset(dev, 0, sizeof *dev);
    snprintf(dev->path, sizeof dev->path, "%s", VUDC_PATH);
    snprintf(dev->busid, sizeof dev->busid, "%s", VUDC);
    dev->speed = htonl(speed_code());
    dev->vid = htons((uint16_t)(desc[8] | desc[9] << 8));
    dev->pid = htons((uint16_t)(desc[10] | desc[11] << 8));
    dev->bcd_device = htons((uint16_t)(desc[12] | desc[13] << 8));
    dev->device_class = desc[4];
    dev->device_subclass = desc[5];
    dev->device_protocol = desc[6];
    dev->num_configurations = desc[17];
    return 0;
}

static int reply_header(int fd, uint16_t code, uint32_t status) {
    struct op_header h = {htons(USBIP_VERSION), htons(code), htonl(status)};
    return send_all(fd, &h, sizeof h);
}

static void devlist(int fd) {
    struct usb_device dev;
    uint32_t count = describe(&dev) == 0 ? 1 : 0;
    uint32_t wire = htonl(count);
    if (reply_header(fd, OP_REP_DEVLIST, ST_OK) || send_all(fd, &wire, sizeof wire)) return;
    if (count) send_all(fd, &dev, sizeof dev);
}

/* Returns 1 when the kernel took the connection (the caller must not touch it again). */
static int import(int fd, const char *peer) {
    char busid[33] = "";
    if (recv_all(fd, busid, 32)) return 0;
    busid[32] = 0;
    struct usb_device dev;
    if (strcmp(busid, VUDC) || describe(&dev)) {
        say("import of '%s' from %s refused: no such device (is a gadget bound?)", busid, peer);
        reply_header(fd, OP_REP_IMPORT, ST_NODEV);
        return 0;
    }
    char status[16] = "";
    if (read_file(VUDC_DIR "/usbip_status", status, sizeof status - 1) <= 0 ||
        atoi(status) != SDEV_ST_AVAILABLE) {
        say("import from %s refused: %s is in use (status %s)", peer, VUDC, status);
        reply_header(fd, OP_REP_IMPORT, ST_NA);
        return 0;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval none = {0, 0}; /* the kernel's threads block on this socket from now on */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    char text[16];
    int len = snprintf(text, sizeof text, "%d\n", fd);
    int sysfs = open(VUDC_DIR "/usbip_sockfd", O_WRONLY | O_CLOEXEC);
    if (sysfs < 0 || write(sysfs, text, (size_t)len) != len) {
        say("handing the connection from %s to the kernel failed: %s", peer, strerror(errno));
        if (sysfs >= 0) close(sysfs);
        reply_header(fd, OP_REP_IMPORT, ST_NA);
        return 0;
    }
    close(sysfs);
    /* As usbipd does: the kernel holds the socket now; the reply still comes from here. */
    if (reply_header(fd, OP_REP_IMPORT, ST_OK) || send_all(fd, &dev, sizeof dev))
        say("import reply to %s failed: %s", peer, strerror(errno));
    say("%s imported by %s", VUDC, peer);
    return 1;
}

static void serve(int listener) {
    for (;;) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        int fd = accept4(listener, (struct sockaddr *)&from, &fromlen, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR) pause_ms(100);
            continue;
        }
        char peer[64];
        snprintf(peer, sizeof peer, "%s:%u", inet_ntoa(from.sin_addr), ntohs(from.sin_port));
        struct timeval limit = {10, 0}; /* a client that says nothing is dropped */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        struct op_header h;
        if (recv_all(fd, &h, sizeof h) == 0) {
            uint16_t code = ntohs(h.code);
            if (ntohs(h.version) != USBIP_VERSION)
                say("%s speaks USB/IP version 0x%04x, not 0x0111", peer, ntohs(h.version));
            else if (code == OP_REQ_DEVLIST)
                devlist(fd);
            else if (code == OP_REQ_IMPORT)
                import(fd, peer);
            else
                say("%s sent unknown operation 0x%04x", peer, code);
        }
        close(fd); /* after an import the kernel keeps its own reference */
    }
}

static int exporter(void) {
    signal(SIGPIPE, SIG_IGN);
    /* stage0 mounts /proc, /sys and /dev and loads the modules; wait for it. */
    if (wait_for("/sys/class/net", 60) || wait_for("/dev/kmsg", 60)) {
        say("stage0 never mounted /sys and /dev");
        return 1;
    }
    if (network_up()) return 1;
    if (wait_for(VUDC_DIR, 60)) {
        say("no %s after 60 s (is usbip_vudc in the device profile's modules?)", VUDC);
        return 1;
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(USBIP_PORT)};
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) ||
        listen(listener, 8)) {
        say("cannot listen on port %d: %s", USBIP_PORT, strerror(errno));
        return 1;
    }
    say("exporting %s over USB/IP on port %d", VUDC, USBIP_PORT);
    serve(listener);
    return 0;
}

int main(void) {
    if (getpid() != 1) return exporter(); /* run by hand, for debugging */
    pid_t child = fork();
    if (child == 0) {
        setsid();
        _exit(exporter());
    }
    char *argv[] = {"/init", NULL};
    execv("/init", argv);
    say("exec /init failed: %s", strerror(errno));
    for (;;) pause(); /* PID 1 must not exit */
}
