/* The configfs side of the USB gadget (stage0.md §8.2 steps 6-11, §9). */
#ifndef STAGE0_USB_GADGET_H
#define STAGE0_USB_GADGET_H

#include <stdbool.h>

#include "config.h"

#define GADGET_DIR "/sys/kernel/config/usb_gadget/fastboop"
#define FFS_DIR "/dev/ffs-smoo"

bool udc_available(void);
/* Remove leftover gadgets, then create ours with strings, config and the FunctionFS
 * function (plus ACM when enabled), and mount FunctionFS at FFS_DIR. Returns 0 or -errno. */
int gadget_create(const struct stage0_config *cfg);
/* Bind to the first UDC; the device appears on USB. Returns 0 or -errno. */
int gadget_bind(void);

#endif
