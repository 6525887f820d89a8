/* The kernel side of the block path: /dev/nbd0 attached to a socketpair (stage0.md §11.5). */
#ifndef STAGE0_NBD_DEV_H
#define STAGE0_NBD_DEV_H

#include <stdint.h>

#include "smoo_proto.h"

/* Where the bridge gets its NBD socket from. The gadget uses nbd_backend; tests substitute
 * a socket whose other end they hold, playing the kernel. */
struct block_backend {
    /* Start the device for export e; *gadget_sock receives the gadget's end. 0 or -errno. */
    int (*attach)(const struct smoo_export *e, uint32_t max_io_bytes, int *gadget_sock);
    /* Disconnect and release the device; the gadget's end then reads EOF. */
    void (*detach)(void);
};

extern const struct block_backend nbd_backend;

#endif
