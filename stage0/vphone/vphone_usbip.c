/* vphone-usbip: the virtual phone's USB cable (docs/virtual-phone.md).
 *
 * Inside the VM of `fastboop sim vm-*`, stage0's gadget binds to a virtual USB device
 * controller whose "cable" is a TCP socket. The phone has one of two (the simulator writes
 * which to /vphone/udc):
 *
 *  - usbip_vudc (the default): usbip-vudc, a UDC the kernel exports over USB/IP itself
 *    (`usbipd --device`). It moves at most one high-speed frame per jiffy.
 *  - dummy_hcd (vphone_host.c): dummy_hcd's UDC, loaded at SuperSpeed; its host side, in
 *    the same kernel, enumerates the gadget, and usbip-host exports that USB device, as
 *    `usbip bind` + `usbipd` do for a device plugged into a PC.
 *
 * This helper is the socket's userspace half in one small static binary: it brings the
 * VM's network card up with the link's address (and MTU), listens for USB/IP clients,
 * answers OP_REQ_DEVLIST from sysfs, and on OP_REQ_IMPORT hands the connection to the
 * kernel (usbip_sockfd) and replies. From then on the kernel speaks USB/IP itself; when
 * the client goes away the device becomes available again and the next import attaches it.
 *
 * It is not part of stage0. The virtual phone adds it to the initramfs it receives (as
 * /vphone/init, with rdinit=/vphone/init) the way `fastboop stage0 --augment` adds files.
 * As PID 1 it forks itself into the background and execs /init, so stage0 runs as PID 1,
 * unchanged; the exporter waits for stage0 to mount /proc, /sys and /dev and to load the
 * modules (the profile's: usbip_vudc, dummy_hcd, usbip_host, virtio_net; the simulator
 * puts the controller the phone does not have on the cmdline's module_blacklist), and
 * keeps running after stage0's switch_root. dummy_hcd alone is loaded here, before
 * stage0, because it needs a module parameter (is_super_speed=1) and stage0, like any
 * phone's init, loads modules without any.
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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "vphone.h"

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
/* The VM's network (qemu's user networking, or passt told the same addresses): the guest
 * is 10.0.2.15/24, the host's forwards arrive from 10.0.2.2. */
#define GUEST_ADDR "10.0.2.15"
#define GUEST_MASK "255.255.255.0"
#define GATEWAY_ADDR "10.0.2.2"
/* Written by the simulator when the link carries larger frames than Ethernet's 1500
 * (passt: 65520): fewer, larger TCP segments for the served data. Absent: the default. */
#define MTU_CHOICE "/vphone/mtu"

#define UDC_CHOICE "/vphone/udc" /* written by the simulator: usbip_vudc or dummy_hcd */

static int kmsg = -1;

void say(const char *fmt, ...) {
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

void pause_ms(long ms) {
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

int read_file(const char *path, void *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t got = read(fd, buf, cap);
    int err = errno;
    close(fd);
    return got < 0 ? -err : (int)got;
}

int read_line(const char *path, char *out, size_t cap) {
    int n = read_file(path, out, cap - 1);
    if (n < 0) return n;
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
    return 0;
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

static int set_mtu(int sock, const char *ifname, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_mtu = mtu;
    return ioctl(sock, SIOCSIFMTU, &ifr);
}

/* One empty datagram to the gateway's discard port, so that the link hears from the guest
 * (its ARP request, then the datagram) as soon as the card is up. passt learns the
 * guest's MAC address from its first frame, and until then cannot deliver a connection
 * forwarded to it; qemu's slirp answers ARP and drops the datagram. */
static void greet_gateway(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, GATEWAY_ADDR, &to.sin_addr);
    (void)!sendto(sock, "", 0, 0, (struct sockaddr *)&to, sizeof to);
    close(sock);
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
    char text[16] = "";
    int mtu = read_line(MTU_CHOICE, text, sizeof text) == 0 ? atoi(text) : 0;
    if (mtu > 0 && set_mtu(sock, nic, mtu)) {
        say("setting %s's MTU to %d failed: %s; keeping the default", nic, mtu, strerror(errno));
        mtu = 0;
    }
    rc |= set_up(sock, nic);
    close(sock);
    if (rc) {
        say("configuring %s failed: %s", nic, strerror(errno));
        return rc;
    }
    greet_gateway();
    if (mtu > 0) say("%s up as %s, MTU %d", nic, GUEST_ADDR, mtu);
    else say("%s up as %s", nic, GUEST_ADDR);
    return 0;
}

/* ---- USB/IP ---- */

struct __attribute__((packed)) op_header {
    uint16_t version, code;
    uint32_t status;
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
static int vudc_find(struct exported *out) {
    uint8_t desc[18];
    if (read_file(VUDC_DIR "/dev_desc", desc, sizeof desc) != (int)sizeof desc) return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s", VUDC_DIR);
    struct usb_device *dev = &out->dev;
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

/* The phone's controller: how to find (and describe) the device it exports right now. */
static int (*find_device)(struct exported *out) = vudc_find;

static void devlist(int fd) {
    struct exported found;
    uint32_t count = find_device(&found) == 0 ? 1 : 0;
    uint32_t wire = htonl(count);
    if (reply_header(fd, OP_REP_DEVLIST, ST_OK) || send_all(fd, &wire, sizeof wire)) return;
    if (count) send_all(fd, &found.dev, sizeof found.dev);
}

/* Returns 1 when the kernel took the connection (the caller must not touch it again). */
static int import(int fd, const char *peer) {
    char busid[33] = "";
    if (recv_all(fd, busid, 32)) return 0;
    busid[32] = 0;
    struct exported found;
    if (find_device(&found) || strcmp(busid, found.dev.busid)) {
        say("import of '%s' from %s refused: no such device (is a gadget bound?)", busid, peer);
        reply_header(fd, OP_REP_IMPORT, ST_NODEV);
        return 0;
    }
    char path[256], status[16] = "";
    snprintf(path, sizeof path, "%s/usbip_status", found.dir);
    /* The kernel marks the device available again a moment after the previous client's
     * connection ends (its event handler tears that connection down first): a client
     * that comes straight back waits for it, up to 1 s, instead of being refused. */
    bool available = false;
    for (int i = 0; i < 20; i++) {
        available = read_line(path, status, sizeof status) == 0 && atoi(status) == SDEV_ST_AVAILABLE;
        if (available) break;
        pause_ms(50);
    }
    if (!available) {
        say("import from %s refused: %s is in use (status %s)", peer, busid, status);
        reply_header(fd, OP_REP_IMPORT, ST_NA);
        return 0;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval none = {0, 0}; /* the kernel's threads block on this socket from now on */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    char text[16];
    int len = snprintf(text, sizeof text, "%d\n", fd);
    snprintf(path, sizeof path, "%s/usbip_sockfd", found.dir);
    int sysfs = open(path, O_WRONLY | O_CLOEXEC);
    if (sysfs < 0 || write(sysfs, text, (size_t)len) != len) {
        say("handing the connection from %s to the kernel failed: %s", peer, strerror(errno));
        if (sysfs >= 0) close(sysfs);
        reply_header(fd, OP_REP_IMPORT, ST_NA);
        return 0;
    }
    close(sysfs);
    /* As usbipd does: the kernel holds the socket now; the reply still comes from here. */
    if (reply_header(fd, OP_REP_IMPORT, ST_OK) || send_all(fd, &found.dev, sizeof found.dev))
        say("import reply to %s failed: %s", peer, strerror(errno));
    say("%s imported by %s", busid, peer);
    return 1;
}

static void serve(int listener, int (*watch)(void)) {
    int every_ms = 100;
    for (;;) {
        /* Between clients, `watch` (if any) runs every 100 ms until it has the gadget:
         * usbip-host must take it as soon as it enumerates, before a host asks for it.
         * Then once a second (the guest's CPU is the served path's bottleneck). */
        struct pollfd ready = {.fd = listener, .events = POLLIN};
        if (watch != NULL && poll(&ready, 1, every_ms) == 0) {
            every_ms = watch() == 0 ? 1000 : 100;
            continue;
        }
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

static int exporter(bool host) {
    signal(SIGPIPE, SIG_IGN);
    /* stage0 mounts /proc, /sys and /dev and loads the modules; wait for it. */
    if (wait_for("/sys/class/net", 60) || wait_for("/dev/kmsg", 60)) {
        say("stage0 never mounted /sys and /dev");
        return 1;
    }
    if (host) host_report_load();
    if (network_up()) return 1;
    if (host) {
        if (host_wait_ready()) return 1;
    } else if (wait_for(VUDC_DIR, 60)) {
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
    say("exporting %s over USB/IP on port %d", host ? "the gadget on dummy_hcd" : VUDC,
        USBIP_PORT);
    serve(listener, host ? host_watch : NULL);
    return 0;
}

/* Which controller the simulator gave this phone: true for dummy_hcd + usbip-host. */
static bool host_controller(void) {
    char choice[32] = "";
    return read_line(UDC_CHOICE, choice, sizeof choice) == 0 && !strcmp(choice, "dummy_hcd");
}

int main(void) {
    bool host = host_controller();
    if (host) find_device = host_find;
    if (getpid() != 1) return exporter(host); /* run by hand, for debugging */
    if (host) host_load_controller();
    pid_t child = fork();
    if (child == 0) {
        setsid();
        _exit(exporter(host));
    }
    char *argv[] = {"/init", NULL};
    execv("/init", argv);
    say("exec /init failed: %s", strerror(errno));
    for (;;) pause(); /* PID 1 must not exit */
}
