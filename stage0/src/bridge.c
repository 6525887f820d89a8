/* NBD <-> smoo translation core; see bridge.h. */
#include "bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum part_state { PART_WAITING, PART_PARKED, PART_SUBMITTED, PART_AWAIT_BULK };

struct bridge_op {
    uint64_t handle;
    uint16_t cmd;
    uint32_t len;
    uint8_t *data;
    unsigned parts_total, parts_done;
    unsigned err_part; /* index of the first failing part, in part order */
    uint32_t err;
    unsigned leases; /* payload reads into data still under way (bridge_bulk_lease) */
    bool orphaned;   /* replied to while leased: freed by the last bridge_bulk_release */
    struct bridge_op *next;
};

struct bridge_part {
    struct bridge_op *op;
    unsigned index;
    uint8_t smoo_op;
    uint64_t lba;
    uint32_t num_blocks;
    uint32_t offset; /* into op->data */
    bool short_io;   /* an OK Response carried fewer blocks than asked: EIO once drained */
    enum part_state state;
    unsigned slot;
    struct bridge_part *next;
};

int bridge_init(struct bridge *b, const struct smoo_export *export, uint32_t max_io_bytes,
                unsigned capacity) {
    memset(b, 0, sizeof *b);
    uint32_t bs = export->block_size;
    if (capacity == 0 || capacity > BRIDGE_MAX_SLOTS) return -EINVAL;
    if (bs < 512 || (bs & (bs - 1)) || export->size_bytes % bs) return -EINVAL;
    if (max_io_bytes < bs || max_io_bytes % bs) return -EINVAL;
    b->export = *export;
    b->max_io_bytes = max_io_bytes;
    b->capacity = capacity;
    return 0;
}

static void push_done(struct bridge *b, struct bridge_op *op) {
    op->next = NULL;
    if (b->done_tail) b->done_tail->next = op;
    else b->done_head = op;
    b->done_tail = op;
}

static int reply_now(struct bridge *b, uint64_t handle, uint16_t cmd, uint32_t err) {
    struct bridge_op *op = calloc(1, sizeof *op);
    if (!op) return -ENOMEM;
    op->handle = handle;
    op->cmd = cmd;
    op->err = err;
    push_done(b, op);
    return 0;
}

/* A part finished with err (0 = full success). The op replies once all parts are done. */
static void finish_part(struct bridge *b, struct bridge_part *part, uint32_t err) {
    struct bridge_op *op = part->op;
    if (err && (op->err == 0 || part->index < op->err_part)) {
        op->err = err;
        op->err_part = part->index;
    }
    free(part);
    if (++op->parts_done == op->parts_total) push_done(b, op);
}

static void complete_part(struct bridge *b, struct bridge_part *part, uint32_t err) {
    b->slots[part->slot] = NULL;
    finish_part(b, part, err);
}

static void assign_slots(struct bridge *b) {
    while (b->waiting_head) {
        unsigned slot = b->capacity;
        for (unsigned i = 0; i < b->capacity; i++)
            if (!b->slots[i]) { slot = i; break; }
        if (slot == b->capacity) return;
        struct bridge_part *part = b->waiting_head;
        b->waiting_head = part->next;
        if (!b->waiting_head) b->waiting_tail = NULL;
        part->next = NULL;
        part->slot = slot;
        part->state = PART_PARKED;
        b->slots[slot] = part;
    }
}

int bridge_accept(struct bridge *b, uint32_t type, uint64_t handle, uint64_t from, uint32_t len,
                  const uint8_t *payload) {
    uint16_t cmd = (uint16_t)(type & 0xffff);
    uint32_t bs = b->export.block_size;
    uint8_t smoo_op;
    switch (cmd) {
    case NBDW_READ: smoo_op = SMOO_READ; break;
    case NBDW_WRITE: smoo_op = SMOO_WRITE; break;
    case NBDW_FLUSH: smoo_op = SMOO_FLUSH; break;
    case NBDW_TRIM: smoo_op = SMOO_DISCARD; break;
    case NBDW_DISC: return -EPROTO;
    default: return reply_now(b, handle, cmd, SMOO_EINVAL);
    }
    if (cmd != NBDW_FLUSH) {
        if (from % bs || len % bs || from > b->export.size_bytes ||
            len > b->export.size_bytes - from)
            return reply_now(b, handle, cmd, SMOO_EINVAL);
        if (len == 0 && (cmd == NBDW_READ || cmd == NBDW_WRITE))
            return reply_now(b, handle, cmd, SMOO_EINVAL);
    }
    struct bridge_op *op = calloc(1, sizeof *op);
    if (!op) return -ENOMEM;
    op->handle = handle;
    op->cmd = cmd;
    op->len = len;
    if ((cmd == NBDW_READ || cmd == NBDW_WRITE) && len) {
        op->data = malloc(len);
        if (!op->data) { free(op); return -ENOMEM; }
        if (cmd == NBDW_WRITE) memcpy(op->data, payload, len);
    }
    /* FLUSH is one Request with lba 0, num_blocks 0; the rest split at max_io_bytes. */
    uint32_t step = (cmd == NBDW_FLUSH) ? 1 : b->max_io_bytes;
    uint32_t total = (cmd == NBDW_FLUSH) ? 1 : len;
    unsigned parts = (cmd == NBDW_FLUSH || len == 0) ? 1 : (len + step - 1) / step;
    op->parts_total = parts;
    for (unsigned i = 0; i < parts; i++) {
        struct bridge_part *part = calloc(1, sizeof *part);
        if (!part) abort(); /* PID1 helper: out of memory is not recoverable */
        uint32_t offset = i * step;
        uint32_t chunk = (cmd == NBDW_FLUSH) ? 0 : (total - offset < step ? total - offset : step);
        part->op = op;
        part->index = i;
        part->smoo_op = smoo_op;
        part->offset = offset;
        part->lba = (cmd == NBDW_FLUSH) ? 0 : (from + offset) / bs;
        part->num_blocks = chunk / bs;
        part->state = PART_WAITING;
        if (b->waiting_tail) b->waiting_tail->next = part;
        else b->waiting_head = part;
        b->waiting_tail = part;
    }
    assign_slots(b);
    return 0;
}

void bridge_set_online(struct bridge *b, bool online) { b->online = online; }

bool bridge_next_submission(struct bridge *b, struct bridge_submission *out) {
    if (!b->online) return false;
    for (unsigned n = 0; n < b->capacity; n++) {
        unsigned i = (b->next_scan + n) % b->capacity;
        struct bridge_part *part = b->slots[i];
        if (!part || part->state != PART_PARKED) continue;
        part->state = PART_SUBMITTED;
        b->next_scan = (i + 1) % b->capacity;
        out->request = (struct smoo_request){
            .op = part->smoo_op,
            .request_id = i, /* the slot index: stable across replays (stage0.md §11.6) */
            .export_id = b->export.export_id,
            .lba = part->lba,
            .num_blocks = part->num_blocks,
        };
        out->payload = NULL;
        out->payload_len = 0;
        if (part->smoo_op == SMOO_WRITE) {
            out->payload = part->op->data + part->offset;
            out->payload_len = part->num_blocks * b->export.block_size;
        }
        return true;
    }
    return false;
}

enum bridge_response_result bridge_on_response(struct bridge *b, const struct smoo_response *r,
                                               uint8_t **bulk_dst, uint32_t *bulk_len,
                                               unsigned *slot) {
    if (r->export_id != b->export.export_id || r->request_id >= b->capacity)
        return BRIDGE_RESP_DROPPED;
    struct bridge_part *part = b->slots[r->request_id];
    if (!part || part->state != PART_SUBMITTED) return BRIDGE_RESP_DROPPED;
    if (r->lba != part->lba) return BRIDGE_RESP_DROPPED; /* not an echo of this Request */
    if (r->op != part->smoo_op) return BRIDGE_RESP_FAULT;
    if (r->status != 0) {
        complete_part(b, part, r->status);
        assign_slots(b);
        return BRIDGE_RESP_DONE;
    }
    uint32_t blocks = r->num_blocks < part->num_blocks ? r->num_blocks : part->num_blocks;
    part->short_io = blocks < part->num_blocks;
    if (part->smoo_op == SMOO_READ && blocks > 0) {
        part->state = PART_AWAIT_BULK;
        *bulk_dst = part->op->data + part->offset;
        *bulk_len = blocks * b->export.block_size;
        *slot = r->request_id;
        return BRIDGE_RESP_NEED_BULK;
    }
    complete_part(b, part, part->short_io ? SMOO_EIO : 0); /* NBD has no short I/O (§11.6) */
    assign_slots(b);
    return BRIDGE_RESP_DONE;
}

void bridge_bulk_done(struct bridge *b, unsigned slot) {
    struct bridge_part *part = slot < b->capacity ? b->slots[slot] : NULL;
    if (!part || part->state != PART_AWAIT_BULK) return;
    complete_part(b, part, part->short_io ? SMOO_EIO : 0);
    assign_slots(b);
}

void bridge_bulk_lease(struct bridge *b, unsigned slot, struct bridge_lease *out) {
    struct bridge_part *part = b->slots[slot]; /* just returned NEED_BULK: AWAIT_BULK */
    part->op->leases++;
    *out = (struct bridge_lease){.op = part->op, .slot = slot, .offset = part->offset};
}

static void free_op(struct bridge_op *op) {
    free(op->data);
    free(op);
}

bool bridge_bulk_release(struct bridge *b, const struct bridge_lease *lease, bool received) {
    struct bridge_op *op = lease->op;
    op->leases--;
    if (op->orphaned) { /* failed and replied to meanwhile; the bridge forgot it */
        if (op->leases == 0) free_op(op);
        return false;
    }
    struct bridge_part *part = lease->slot < b->capacity ? b->slots[lease->slot] : NULL;
    if (!received || !part || part->op != op || part->offset != lease->offset ||
        part->state != PART_AWAIT_BULK)
        return false; /* replayed or failed meanwhile: the bytes are not its answer */
    bridge_bulk_done(b, lease->slot);
    return true;
}

void bridge_link_lost(struct bridge *b) {
    for (unsigned i = 0; i < b->capacity; i++) {
        struct bridge_part *part = b->slots[i];
        if (!part) continue;
        part->short_io = false;
        part->state = PART_PARKED; /* replayed later with the same request_id */
    }
    b->online = false;
}

void bridge_fail_all(struct bridge *b, uint32_t err) {
    for (unsigned i = 0; i < b->capacity; i++)
        if (b->slots[i]) complete_part(b, b->slots[i], err);
    while (b->waiting_head) {
        struct bridge_part *part = b->waiting_head;
        b->waiting_head = part->next;
        finish_part(b, part, err); /* never held a slot */
    }
    b->waiting_tail = NULL;
}

void bridge_fail_parked(struct bridge *b, uint32_t err) {
    for (unsigned i = 0; i < b->capacity; i++)
        if (b->slots[i] && b->slots[i]->state == PART_PARKED) complete_part(b, b->slots[i], err);
    while (b->waiting_head) {
        struct bridge_part *part = b->waiting_head;
        b->waiting_head = part->next;
        finish_part(b, part, err);
    }
    b->waiting_tail = NULL;
}

bool bridge_pop_reply(struct bridge *b, struct bridge_reply *out) {
    struct bridge_op *op = b->done_head;
    if (!op) return false;
    b->done_head = op->next;
    if (!b->done_head) b->done_tail = NULL;
    out->handle = op->handle;
    out->error = op->err;
    out->data = (op->err == 0 && op->cmd == NBDW_READ) ? op->data : NULL;
    out->data_len = out->data ? op->len : 0;
    out->op = op;
    assign_slots(b); /* slots freed by this op's parts can take waiting parts */
    return true;
}

void bridge_free_reply(struct bridge_reply *reply) {
    if (!reply->op) return;
    if (reply->op->leases) reply->op->orphaned = true; /* a payload read still writes there */
    else free_op(reply->op);
    reply->op = NULL;
}

unsigned bridge_inflight(const struct bridge *b) {
    unsigned n = 0;
    for (unsigned i = 0; i < b->capacity; i++)
        if (b->slots[i]) n++;
    return n;
}

unsigned bridge_parked(const struct bridge *b) {
    unsigned n = 0;
    for (unsigned i = 0; i < b->capacity; i++)
        if (b->slots[i] && b->slots[i]->state == PART_PARKED) n++;
    return n;
}

void bridge_destroy(struct bridge *b) {
    struct bridge_reply reply;
    bridge_fail_all(b, SMOO_ESHUTDOWN);
    while (bridge_pop_reply(b, &reply)) bridge_free_reply(&reply);
}
