/* The NBD <-> smoo translation core, sans I/O (stage0.md §11.6-§11.9, smoo.md §7.2, §11).
 *
 * One bridge serves one export. NBD requests go in, smoo Requests come out when the caller
 * asks for the next submission, Responses and bulk data go back in, and finished NBD replies
 * come out. The caller (gadget.c) owns every file descriptor and thread; the core owns the
 * bookkeeping that must be right: splitting at max_io_bytes, in-flight slots that keep their
 * request_id across link loss, parking and replay, and the errno mapping.
 *
 * Not thread-safe: the caller serialises calls with one mutex. */
#ifndef STAGE0_BRIDGE_H
#define STAGE0_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smoo_proto.h"

#define BRIDGE_MAX_SLOTS 1024

struct bridge_op;  /* one NBD request being served */
struct bridge_part; /* one smoo Request of it */

struct bridge {
    struct smoo_export export;
    uint32_t max_io_bytes;
    unsigned capacity;
    bool online;
    struct bridge_part *slots[BRIDGE_MAX_SLOTS];
    struct bridge_part *waiting_head, *waiting_tail; /* parts without a slot, FIFO */
    struct bridge_op *done_head, *done_tail;         /* ops whose reply is ready */
    unsigned next_scan;
};

/* A smoo Request ready for the wire, plus its WRITE payload (NULL otherwise). */
struct bridge_submission {
    struct smoo_request request;
    const uint8_t *payload;
    uint32_t payload_len;
};

/* A finished NBD request: the reply header fields, and READ data when error == 0. */
struct bridge_reply {
    uint64_t handle;
    uint32_t error;
    uint8_t *data;
    uint32_t data_len;
    struct bridge_op *op; /* pass to bridge_free_reply once written */
};

enum bridge_response_result {
    BRIDGE_RESP_DONE,      /* the part completed, nothing more to read */
    BRIDGE_RESP_NEED_BULK, /* read exactly *bulk_len bytes into *bulk_dst, then bulk_done */
    BRIDGE_RESP_DROPPED,   /* unknown (export_id, request_id): logged and dropped */
    BRIDGE_RESP_FAULT,     /* op mismatch: fault the pump (link goes Offline) */
};

int bridge_init(struct bridge *b, const struct smoo_export *export, uint32_t max_io_bytes,
                unsigned capacity);
/* Take one NBD request (with its WRITE payload, copied). Returns 0, or -EPROTO for DISC
 * (the caller stops reading and shuts down). Invalid requests become immediate replies. */
int bridge_accept(struct bridge *b, uint32_t type, uint64_t handle, uint64_t from, uint32_t len,
                  const uint8_t *payload);
void bridge_set_online(struct bridge *b, bool online);
/* Next Request to put on the wire, if the link is Online and one is parked. */
bool bridge_next_submission(struct bridge *b, struct bridge_submission *out);
enum bridge_response_result bridge_on_response(struct bridge *b, const struct smoo_response *r,
                                               uint8_t **bulk_dst, uint32_t *bulk_len,
                                               unsigned *slot);
void bridge_bulk_done(struct bridge *b, unsigned slot);
/* For callers that read bulk OUT without holding their lock, straight into *bulk_dst (the
 * NBD reply's own buffer, so the payload is not copied again). The caller takes a lease
 * right after BRIDGE_RESP_NEED_BULK (in the same lock hold) and gives it back once the
 * read ended, either way. Meanwhile the part may be failed, replayed or replied to (link
 * loss, export removal, shutdown): the buffer stays allocated until the lease is given
 * back, so a read still under way never lands in freed memory, and the bytes count only
 * if the part still awaits exactly them. */
struct bridge_lease {
    struct bridge_op *op;
    unsigned slot;
    uint32_t offset;
};
void bridge_bulk_lease(struct bridge *b, unsigned slot, struct bridge_lease *out);
/* received: the whole payload is in the buffer. Returns true if that completed the part. */
bool bridge_bulk_release(struct bridge *b, const struct bridge_lease *lease, bool received);
/* Link lost: every submitted part goes back to PARKED, keeping its slot and request_id. */
void bridge_link_lost(struct bridge *b);
/* Complete everything not yet replied to with err (ENODEV on export removal, ESHUTDOWN). */
void bridge_fail_all(struct bridge *b, uint32_t err);
/* Graceful shutdown, first step: fail what has not reached the wire; in-flight may drain. */
void bridge_fail_parked(struct bridge *b, uint32_t err);
bool bridge_pop_reply(struct bridge *b, struct bridge_reply *out);
/* Under the caller's lock when leases are in use: an op whose payload is still being read
 * is freed when its lease is given back instead. */
void bridge_free_reply(struct bridge_reply *reply);
unsigned bridge_inflight(const struct bridge *b);
unsigned bridge_parked(const struct bridge *b);
/* Free everything still held, without replying (tests and final teardown). */
void bridge_destroy(struct bridge *b);

#endif
