/* FunctionFS blobs; see ffs_desc.h. Written byte by byte so endianness is explicit. */
#include "ffs_desc.h"

#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <string.h>

struct writer {
    unsigned char *buf;
    size_t cap, len;
    bool overflow;
};

static void put8(struct writer *w, unsigned v) {
    if (w->len >= w->cap) { w->overflow = true; return; }
    w->buf[w->len++] = (unsigned char)v;
}
static void put16(struct writer *w, unsigned v) { put8(w, v & 0xff); put8(w, v >> 8); }
static void put32(struct writer *w, unsigned v) { put16(w, v & 0xffff); put16(w, v >> 16); }

enum speed { FULL, HIGH, SUPER };

static void interface(struct writer *w, bool mimic) {
    put8(w, USB_DT_INTERFACE_SIZE);
    put8(w, USB_DT_INTERFACE);
    put8(w, 0); /* bInterfaceNumber: FunctionFS renumbers */
    put8(w, 0); /* bAlternateSetting */
    put8(w, 4); /* bNumEndpoints */
    put8(w, 0xFF);
    put8(w, mimic ? 0x42 : 0x53);
    put8(w, mimic ? 0x03 : 0x4D);
    put8(w, 1); /* iInterface: "smoo" */
}

/* wMaxPacketSize: bulk is 512 at high speed and must be 1024 at SuperSpeed (USB 3.2
 * §9.6.6). A UDC that checks it refuses anything else at SuperSpeed: dummy_hcd's
 * dummy_enable() fails the endpoint, and SET_CONFIGURATION then stalls. */
static void endpoint(struct writer *w, enum speed speed, unsigned address, bool interrupt) {
    unsigned max = speed == FULL ? 64 : interrupt || speed == SUPER ? 1024 : 512;
    put8(w, USB_DT_ENDPOINT_SIZE);
    put8(w, USB_DT_ENDPOINT);
    put8(w, address);
    put8(w, interrupt ? USB_ENDPOINT_XFER_INT : USB_ENDPOINT_XFER_BULK);
    put16(w, max);
    put8(w, interrupt ? 1 : 0); /* bInterval */
    if (speed == SUPER) {
        put8(w, USB_DT_SS_EP_COMP_SIZE);
        put8(w, USB_DT_SS_ENDPOINT_COMP);
        put8(w, 0); /* bMaxBurst */
        put8(w, 0); /* bmAttributes */
        put16(w, interrupt ? 1024 : 0); /* wBytesPerInterval */
    }
}

/* Declaration order is the contract: interrupt IN, interrupt OUT, bulk IN, bulk OUT. */
static void speed_set(struct writer *w, enum speed speed, bool mimic) {
    interface(w, mimic);
    endpoint(w, speed, 1 | USB_DIR_IN, true);
    endpoint(w, speed, 2 | USB_DIR_OUT, true);
    endpoint(w, speed, 3 | USB_DIR_IN, false);
    endpoint(w, speed, 4 | USB_DIR_OUT, false);
}

int ffs_build_descriptors(unsigned char *buf, size_t cap, bool mimic) {
    struct writer w = {buf, cap, 0, false};
    put32(&w, FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
    put32(&w, 0); /* length, patched below */
    put32(&w, FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC | FUNCTIONFS_HAS_SS_DESC);
    put32(&w, 5);     /* fs_count: interface + 4 endpoints */
    put32(&w, 5);     /* hs_count */
    put32(&w, 9);     /* ss_count: interface + 4 x (endpoint + companion) */
    speed_set(&w, FULL, mimic);
    speed_set(&w, HIGH, mimic);
    speed_set(&w, SUPER, mimic);
    if (w.overflow) return -1;
    size_t len = w.len;
    w.len = 4;
    put32(&w, (unsigned)len);
    return (int)len;
}

int ffs_build_strings(unsigned char *buf, size_t cap) {
    struct writer w = {buf, cap, 0, false};
    static const char text[] = "smoo";
    unsigned len = 16 + 2 + sizeof text;
    put32(&w, FUNCTIONFS_STRINGS_MAGIC);
    put32(&w, len);
    put32(&w, 1); /* str_count */
    put32(&w, 1); /* lang_count */
    put16(&w, 0x0409);
    for (size_t i = 0; i < sizeof text; i++) put8(&w, (unsigned char)text[i]);
    return w.overflow ? -1 : (int)w.len;
}
