/* smoo and NBD wire formats; see smoo_proto.h. Byte order is explicit, never memcpy'd. */
#include "smoo_proto.h"

#include <errno.h>
#include <string.h>

static void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_le64(const uint8_t *p) {
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}
static void put_be32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static uint64_t get_be64(const uint8_t *p) {
    return (uint64_t)get_be32(p) << 32 | (uint64_t)get_be32(p + 4);
}

enum smoo_setup_kind smoo_classify_setup(uint8_t request_type, uint8_t request, uint16_t length) {
    /* The full bmRequestType byte is compared exactly (smoo.md §3). */
    if (request_type == SMOO_RT_IDENT && request == SMOO_REQ_IDENT && length >= SMOO_IDENT_LEN)
        return SMOO_SETUP_IDENT;
    if (request_type == SMOO_RT_STATUS && request == SMOO_REQ_STATUS && length >= SMOO_STATUS_LEN)
        return SMOO_SETUP_STATUS;
    if (request_type == SMOO_RT_CONFIG && request == SMOO_REQ_CONFIG)
        return SMOO_SETUP_CONFIG;
    return SMOO_SETUP_STALL;
}

void smoo_encode_ident(uint8_t out[SMOO_IDENT_LEN], uint16_t major, uint16_t minor) {
    memcpy(out, "SMOO", 4);
    put_le16(out + 4, major);
    put_le16(out + 6, minor);
}

void smoo_encode_status(uint8_t out[SMOO_STATUS_LEN], const struct smoo_status *status) {
    put_le16(out, 0);
    put_le16(out + 2, status->flags);
    put_le32(out + 4, status->export_count);
    put_le64(out + 8, status->session_id);
}

int smoo_encode_config(uint8_t *out, size_t out_len, const struct smoo_export *exports,
                       unsigned count) {
    size_t need = SMOO_CONFIG_HEADER_LEN + (size_t)SMOO_CONFIG_ENTRY_LEN * count;
    if (count > SMOO_MAX_EXPORTS || out_len < need) return -1;
    memset(out, 0, need);
    put_le16(out + 2, (uint16_t)count);
    for (unsigned i = 0; i < count; i++) {
        uint8_t *e = out + SMOO_CONFIG_HEADER_LEN + SMOO_CONFIG_ENTRY_LEN * i;
        put_le32(e, exports[i].export_id);
        put_le32(e + 4, exports[i].block_size);
        put_le64(e + 8, exports[i].size_bytes);
    }
    return (int)need;
}

int smoo_decode_config(const uint8_t *data, size_t len, struct smoo_export *exports,
                       unsigned *count) {
    if (len < SMOO_CONFIG_HEADER_LEN) return -EINVAL;
    uint16_t version = get_le16(data), n = get_le16(data + 2);
    if (version != 0 || get_le32(data + 4) != 0) return -EPROTO;
    if (n > SMOO_MAX_EXPORTS) return -E2BIG;
    if (len != SMOO_CONFIG_HEADER_LEN + (size_t)SMOO_CONFIG_ENTRY_LEN * n) return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *e = data + SMOO_CONFIG_HEADER_LEN + SMOO_CONFIG_ENTRY_LEN * i;
        struct smoo_export x = {get_le32(e), get_le32(e + 4), get_le64(e + 8)};
        if (x.export_id == 0) return -EINVAL;
        if (x.block_size < 512 || x.block_size > 65536 || (x.block_size & (x.block_size - 1)))
            return -EINVAL;
        if (x.size_bytes % x.block_size) return -EINVAL;
        for (unsigned j = 0; j < i; j++)
            if (exports[j].export_id == x.export_id) return -EEXIST;
        exports[i] = x;
    }
    *count = n;
    return 0;
}

void smoo_encode_request(uint8_t out[SMOO_MSG_LEN], const struct smoo_request *r) {
    memset(out, 0, SMOO_MSG_LEN);
    out[0] = r->op;
    put_le32(out + 4, r->request_id);
    put_le32(out + 8, r->export_id);
    put_le64(out + 12, r->lba);
    put_le32(out + 20, r->num_blocks);
    put_le32(out + 24, r->flags);
}

int smoo_decode_request(const uint8_t *d, size_t len, struct smoo_request *r) {
    if (len != SMOO_MSG_LEN) return -EINVAL;
    if (d[0] > SMOO_DISCARD) return -EPROTO;
    r->op = d[0];
    r->request_id = get_le32(d + 4);
    r->export_id = get_le32(d + 8);
    r->lba = get_le64(d + 12);
    r->num_blocks = get_le32(d + 20);
    r->flags = get_le32(d + 24);
    return 0;
}

void smoo_encode_response(uint8_t out[SMOO_MSG_LEN], const struct smoo_response *r) {
    memset(out, 0, SMOO_MSG_LEN);
    out[0] = r->op;
    out[1] = r->status;
    put_le32(out + 4, r->request_id);
    put_le32(out + 8, r->export_id);
    put_le64(out + 12, r->lba);
    put_le32(out + 20, r->num_blocks);
    put_le32(out + 24, r->flags);
}

int smoo_decode_response(const uint8_t *d, size_t len, struct smoo_response *r) {
    if (len != SMOO_MSG_LEN) return -EINVAL;
    if (d[0] > SMOO_DISCARD) return -EPROTO;
    r->op = d[0];
    r->status = d[1];
    r->request_id = get_le32(d + 4);
    r->export_id = get_le32(d + 8);
    r->lba = get_le64(d + 12);
    r->num_blocks = get_le32(d + 20);
    r->flags = get_le32(d + 24);
    return 0;
}

uint32_t smoo_fnv1a32(uint32_t h, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ data[i]) * 0x01000193u;
    return h;
}

uint32_t smoo_export_id(const char *identity, uint32_t block_size, uint64_t block_count) {
    uint8_t buf[12];
    put_le32(buf, block_size);
    put_le64(buf + 4, block_count);
    uint32_t h = smoo_fnv1a32(0x811C9DC5u, buf, sizeof buf);
    h = smoo_fnv1a32(h, (const uint8_t *)identity, strlen(identity));
    return h ? h : 1;
}

uint64_t smoo_fnv1a64(uint64_t h, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

void nbd_encode_request(uint8_t out[NBD_WIRE_REQUEST_LEN], const struct nbd_wire_request *r) {
    put_be32(out, NBD_WIRE_REQUEST_MAGIC);
    put_be32(out + 4, r->type);
    put_be64(out + 8, r->handle);
    put_be64(out + 16, r->from);
    put_be32(out + 24, r->len);
}

int nbd_decode_request(const uint8_t *d, size_t len, struct nbd_wire_request *r) {
    if (len != NBD_WIRE_REQUEST_LEN) return -EINVAL;
    if (get_be32(d) != NBD_WIRE_REQUEST_MAGIC) return -EPROTO;
    r->type = get_be32(d + 4);
    r->handle = get_be64(d + 8);
    r->from = get_be64(d + 16);
    r->len = get_be32(d + 24);
    return 0;
}

void nbd_encode_reply(uint8_t out[NBD_WIRE_REPLY_LEN], uint32_t error, uint64_t handle) {
    put_be32(out, NBD_WIRE_REPLY_MAGIC);
    put_be32(out + 4, error);
    put_be64(out + 8, handle);
}
