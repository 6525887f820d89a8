/* vphone-usbip's second controller: dummy_hcd + usbip-host (see vphone_usbip.c).
 *
 * usbip-vudc, the default, moves gadget data from a timer re-armed once per jiffy, at most
 * one high-speed frame (53,248 B) per run: ~12.7 MiB/s at HZ=250, and up to a 4 ms tick
 * on every crossing. dummy_hcd is the kernel's loopback UDC: stage0's gadget binds to its
 * UDC (dummy_udc.0) as to a phone's, and its host side, in the same kernel, enumerates the
 * gadget as a USB device. That device is what this phone exports, the way `usbip bind`
 * and `usbipd` export a device plugged into a PC: usbip-host claims it, and an import
 * hands usbip-host the connection. Loaded with is_super_speed=1 dummy_hcd models a
 * SuperSpeed link (490,000 B per timer run); the gadget's SuperSpeed descriptors apply.
 *
 * Linux: drivers/usb/gadget/udc/dummy_hcd.c, drivers/usb/usbip/stub_{main,dev}.c.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "vphone.h"

#define MODULE_INIT_COMPRESSED_FILE 4
#define STUB_DRIVER "/sys/bus/usb/drivers/usbip-host"
#define USB_DEVICES "/sys/bus/usb/devices"
#define MAX_DEPS 16

/* What host_load_controller did: said later, once /dev/kmsg exists (stage0 mounts it). */
static char load_report[256] = "dummy_hcd not loaded: modules.dep has no entry for it";

static int load_module(const char *dir, const char *relpath, const char *params) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, relpath);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = strlen(relpath);
    int flags = len > 3 && !strcmp(relpath + len - 3, ".ko") ? 0 : MODULE_INIT_COMPRESSED_FILE;
    long rc = syscall(SYS_finit_module, fd, params, flags);
    int err = errno;
    close(fd);
    return rc && err != EEXIST ? -err : 0;
}

void host_load_controller(void) {
    struct utsname uts;
    uname(&uts);
    char dir[PATH_MAX], index[PATH_MAX];
    snprintf(dir, sizeof dir, "/lib/modules/%s", uts.release);
    snprintf(index, sizeof index, "%s/modules.dep", dir);
    FILE *deps = fopen(index, "re");
    if (deps == NULL) {
        snprintf(load_report, sizeof load_report, "dummy_hcd not loaded: %s: %s", index,
                 strerror(errno));
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, deps) > 0) {
        char *colon = strchr(line, ':');
        if (colon == NULL) continue;
        *colon = 0;
        const char *base = strrchr(line, '/');
        base = base ? base + 1 : line;
        if (strncmp(base, "dummy_hcd.ko", 12)) continue;
        /* modules.dep lists every dependency, each after the ones it needs: load backwards */
        char *needed[MAX_DEPS];
        int count = 0;
        for (char *dep = strtok(colon + 1, " \n"); dep && count < MAX_DEPS; dep = strtok(NULL, " \n"))
            needed[count++] = dep;
        int rc = 0;
        for (int i = count - 1; i >= 0 && rc == 0; i--) rc = load_module(dir, needed[i], "");
        if (rc == 0) rc = load_module(dir, line, "is_super_speed=1");
        if (rc == 0)
            snprintf(load_report, sizeof load_report, "dummy_hcd loaded at SuperSpeed");
        else  /* stage0 then loads it without the parameter: high speed */
            snprintf(load_report, sizeof load_report,
                     "loading dummy_hcd (is_super_speed=1) failed: %s", strerror(-rc));
        break;
    }
    free(line);
    fclose(deps);
}

void host_report_load(void) {
    say("%s", load_report);
}

int host_wait_ready(void) {
    for (int i = 0; i < 600; i++) {
        if (access(STUB_DRIVER "/bind", F_OK) == 0) return 0;
        pause_ms(100);
    }
    say("no usbip-host driver after 60 s (is usbip_host in the device profile's modules?)");
    return -1;
}

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int err = errno;
    close(fd);
    return n < 0 ? -err : 0;
}

static int read_number(const char *busid, const char *attr, int base, unsigned long *out) {
    char path[PATH_MAX], text[32];
    snprintf(path, sizeof path, USB_DEVICES "/%s/%s", busid, attr);
    *out = 0;
    if (read_line(path, text, sizeof text)) return -1;
    *out = strtoul(text, NULL, base); /* an empty attribute (unconfigured) reads as 0 */
    return 0;
}

/* The one USB device on the bus that is not a hub: the gadget, as dummy_hcd's host side
 * enumerated it ("1-1" at high speed, "2-1" on the SuperSpeed root hub). */
static int gadget_busid(char *out, size_t cap) {
    DIR *d = opendir(USB_DEVICES);
    if (d == NULL) return -1;
    struct dirent *e;
    int rc = -1;
    while (rc && (e = readdir(d))) {
        unsigned long cls;
        if (e->d_name[0] == '.' || !strncmp(e->d_name, "usb", 3) || strchr(e->d_name, ':'))
            continue;
        if (read_number(e->d_name, "bDeviceClass", 16, &cls) == 0 && cls != 0x09) {
            snprintf(out, cap, "%s", e->d_name);
            rc = 0;
        }
    }
    closedir(d);
    return rc;
}

/* What `usbip bind` does: let usbip-host match the device, take it from the driver that
 * has it (usbcore's generic one), and bind usbip-host. Idempotent. */
static int bind_stub(const char *busid) {
    char link[PATH_MAX], target[PATH_MAX], text[64];
    snprintf(link, sizeof link, USB_DEVICES "/%s/driver", busid);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        const char *name = strrchr(target, '/');
        if (name != NULL && !strcmp(name + 1, "usbip-host")) return 0;
    }
    snprintf(text, sizeof text, "add %s", busid);
    int rc = write_text(STUB_DRIVER "/match_busid", text);
    if (rc == 0 && n > 0) {
        char unbind[PATH_MAX];
        snprintf(unbind, sizeof unbind, "%s/unbind", link);
        rc = write_text(unbind, busid);
    }
    if (rc == 0) rc = write_text(STUB_DRIVER "/bind", busid);
    static char failed[32]; /* retried every 100 ms: say each failing device once */
    if (rc && strcmp(failed, busid)) say("binding %s to usbip-host failed: %s", busid, strerror(-rc));
    if (rc) snprintf(failed, sizeof failed, "%s", busid);
    else say("%s bound to usbip-host", busid);
    return rc;
}

static uint32_t speed_code(const char *busid) {
    char path[PATH_MAX], text[16];
    snprintf(path, sizeof path, USB_DEVICES "/%s/speed", busid);
    if (read_line(path, text, sizeof text)) return 0;
    static const struct { const char *mbps; uint32_t code; } speeds[] = {
        {"1.5", 1}, {"12", 2}, {"480", 3}, {"5000", 5}, {"10000", 6}, {"20000", 6}};
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (!strcmp(text, speeds[i].mbps)) return speeds[i].code;
    return 0;
}

int host_watch(void) {
    char busid[32];
    return gadget_busid(busid, sizeof busid) || bind_stub(busid) ? -1 : 0;
}

int host_find(struct exported *out) {
    char busid[32];
    if (gadget_busid(busid, sizeof busid) || bind_stub(busid)) return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, USB_DEVICES "/%s", busid);
    struct usb_device *dev = &out->dev;
    char real[PATH_MAX];
    if (realpath(out->dir, real) == NULL) return -1;
    snprintf(dev->path, sizeof dev->path, "%s", real);
    snprintf(dev->busid, sizeof dev->busid, "%s", busid);
    unsigned long v[10];
    static const struct { const char *name; int base; } attrs[] = {
        {"busnum", 10}, {"devnum", 10}, {"idVendor", 16}, {"idProduct", 16},
        {"bcdDevice", 16}, {"bDeviceClass", 16}, {"bDeviceSubClass", 16},
        {"bDeviceProtocol", 16}, {"bConfigurationValue", 10}, {"bNumConfigurations", 10}};
    for (int i = 0; i < 10; i++)
        if (read_number(busid, attrs[i].name, attrs[i].base, &v[i])) return -1;
    dev->busnum = htonl((uint32_t)v[0]);
    dev->devnum = htonl((uint32_t)v[1]);
    dev->speed = htonl(speed_code(busid));
    dev->vid = htons((uint16_t)v[2]);
    dev->pid = htons((uint16_t)v[3]);
    dev->bcd_device = htons((uint16_t)v[4]);
    dev->device_class = (uint8_t)v[5];
    dev->device_subclass = (uint8_t)v[6];
    dev->device_protocol = (uint8_t)v[7];
    dev->configuration_value = (uint8_t)v[8];
    dev->num_configurations = (uint8_t)v[9];
    /* No interfaces listed (as for the vudc): usbip-host leaves the device unconfigured
     * until the client's SET_CONFIGURATION, so there are none to list yet. */
    return 0;
}
