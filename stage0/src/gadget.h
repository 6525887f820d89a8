/* The gadget child process (stage0.md §8.2 step 9, §11; smoo.md §11). */
#ifndef STAGE0_GADGET_H
#define STAGE0_GADGET_H

#include "config.h"
#include "nbd_dev.h"

struct gadget_endpoints {
    int ep0;         /* control: FunctionFS events in, replies and data stages */
    int ep_req;      /* interrupt IN: Requests */
    int ep_resp;     /* interrupt OUT: Responses */
    int ep_bulk_in;  /* bulk IN: WRITE payloads */
    int ep_bulk_out; /* bulk OUT: READ payloads */
};

/* Serve smoo on already-open endpoints, with block requests from backend. Never returns.
 * Split from gadget_child_main so tests can run the real gadget over sockets. */
void gadget_serve(const struct stage0_config *cfg, const struct gadget_endpoints *eps,
                  const struct block_backend *backend) __attribute__((noreturn));

/* Writes the FunctionFS descriptors, then serves smoo and the NBD bridge forever. */
int gadget_child_main(const struct stage0_config *cfg, const char *ffs_dir)
    __attribute__((noreturn));

#endif
