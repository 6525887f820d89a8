/* vphone-usbip: what its two halves share (see vphone_usbip.c). */
#ifndef VPHONE_H
#define VPHONE_H

#include <stddef.h>
#include <stdint.h>

/* One device as USB/IP's OP_REP_DEVLIST / OP_REP_IMPORT describe it (big-endian). */
struct __attribute__((packed)) usb_device {
    char path[256], busid[32];
    uint32_t busnum, devnum, speed;
    uint16_t vid, pid, bcd_device;
    uint8_t device_class, device_subclass, device_protocol;
    uint8_t configuration_value, num_configurations, num_interfaces;
};

/* The device this phone exports now, and the sysfs directory holding its kernel
 * exporter's `usbip_status` and `usbip_sockfd` (the vudc's, or usbip-host's on the device). */
struct exported {
    struct usb_device dev;
    char dir[192];
};

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pause_ms(long ms);
int read_file(const char *path, void *buf, size_t cap);
/* The file's first line, without the newline; -errno when it cannot be read. */
int read_line(const char *path, char *out, size_t cap);

/* The usbip-host controller (vphone_host.c): dummy_hcd's UDC for stage0's gadget, its
 * host side enumerating the gadget, usbip-host exporting it. */
void host_load_controller(void);  /* PID 1, before stage0: dummy_hcd at SuperSpeed */
void host_report_load(void);      /* the exporter logs what that did, once /dev/kmsg exists */
int host_wait_ready(void);        /* 0 once usbip-host is loaded (stage0 loads it) */
int host_find(struct exported *out); /* 0: the gadget, bound to usbip-host, described */
int host_watch(void);                /* 0: the gadget is there and bound to usbip-host */

#endif
