/* Runs the real gadget (src/gadget.c + src/bridge.c) over inherited sockets instead of
 * FunctionFS and /dev/nbd0, so tests can drive it with the Python smoo host and play the
 * kernel's NBD client themselves.
 *
 *   gadget_harness MAX_IO_BYTES QUEUE_DEPTH
 *   fd 3 ep0 (FunctionFS events in, replies out), 4 interrupt IN, 5 interrupt OUT,
 *   6 bulk IN, 7 bulk OUT (all SOCK_SEQPACKET), 8 the gadget's end of the NBD socket. */
#include <stdlib.h>
#include <unistd.h>

#include "../src/config.h"
#include "../src/gadget.h"
#include "../src/log.h"

static int attach(const struct smoo_export *e, uint32_t max_io_bytes, int *gadget_sock) {
    (void)e;
    (void)max_io_bytes;
    *gadget_sock = dup(8);
    return *gadget_sock < 0 ? -1 : 0;
}

static void detach(void) {}

static const struct block_backend socket_backend = {attach, detach};

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    log_open("gadget-harness");
    static struct stage0_config cfg;
    config_defaults(&cfg);
    cfg.max_io_bytes = (uint32_t)strtoul(argv[1], NULL, 0);
    cfg.queue_depth = (uint16_t)strtoul(argv[2], NULL, 0);
    struct gadget_endpoints eps = {3, 4, 5, 6, 7};
    gadget_serve(&cfg, &eps, &socket_backend);
}
