/* smoo v0.1 and NBD wire formats: pure encode/decode, no I/O (smoo.md §3-§4, stage0.md §11.4).
 *
 * Kept free of system calls so the host can unit-test it and cross-check its bytes against
 * the Python encoder (tests/stage0_c). All smoo integers are little-endian; all NBD integers
 * are big-endian. Decoders return 0 on success or a negative errno-style code. */
#ifndef STAGE0_SMOO_PROTO_H
#define STAGE0_SMOO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SMOO_IDENT_LEN 8
#define SMOO_STATUS_LEN 16
#define SMOO_MSG_LEN 28
#define SMOO_CONFIG_HEADER_LEN 8
#define SMOO_CONFIG_ENTRY_LEN 24
#define SMOO_MAX_EXPORTS 32
#define SMOO_VERSION_MAJOR 0
#define SMOO_VERSION_MINOR 1

#define SMOO_RT_IDENT 0xC1
#define SMOO_RT_CONFIG 0x41
#define SMOO_RT_STATUS 0xA1
#define SMOO_REQ_IDENT 0x01
#define SMOO_REQ_CONFIG 0x02
#define SMOO_REQ_STATUS 0x03
#define SMOO_STATUS_EXPORT_ACTIVE 1u

enum smoo_op { SMOO_READ = 0, SMOO_WRITE = 1, SMOO_FLUSH = 2, SMOO_DISCARD = 3 };

/* errno values used on the wire (smoo.md §5) */
#define SMOO_EIO 5
#define SMOO_ENODEV 19
#define SMOO_EINVAL 22
#define SMOO_ENOLINK 67
#define SMOO_EOPNOTSUPP 95
#define SMOO_ESHUTDOWN 108

struct smoo_export {
    uint32_t export_id;
    uint32_t block_size;
    uint64_t size_bytes;
};

struct smoo_status {
    uint16_t flags;
    uint32_t export_count;
    uint64_t session_id;
};

struct smoo_request {
    uint8_t op;
    uint32_t request_id;
    uint32_t export_id;
    uint64_t lba;
    uint32_t num_blocks;
    uint32_t flags;
};

struct smoo_response {
    uint8_t op;
    uint8_t status;
    uint32_t request_id;
    uint32_t export_id;
    uint64_t lba;
    uint32_t num_blocks;
    uint32_t flags;
};

/* What the gadget does with one ep0 setup packet (smoo.md §3, §11 item 2). */
enum smoo_setup_kind { SMOO_SETUP_STALL, SMOO_SETUP_IDENT, SMOO_SETUP_STATUS, SMOO_SETUP_CONFIG };
enum smoo_setup_kind smoo_classify_setup(uint8_t request_type, uint8_t request, uint16_t length);

void smoo_encode_ident(uint8_t out[SMOO_IDENT_LEN], uint16_t major, uint16_t minor);
void smoo_encode_status(uint8_t out[SMOO_STATUS_LEN], const struct smoo_status *status);
/* Encodes into out (capacity out_len); returns the length written or -1 if it does not fit. */
int smoo_encode_config(uint8_t *out, size_t out_len, const struct smoo_export *exports,
                       unsigned count);
/* Decodes and validates CONFIG_EXPORTS v0; *count receives the number of exports. */
int smoo_decode_config(const uint8_t *data, size_t len, struct smoo_export *exports,
                       unsigned *count);
void smoo_encode_request(uint8_t out[SMOO_MSG_LEN], const struct smoo_request *request);
int smoo_decode_request(const uint8_t *data, size_t len, struct smoo_request *request);
void smoo_encode_response(uint8_t out[SMOO_MSG_LEN], const struct smoo_response *response);
int smoo_decode_response(const uint8_t *data, size_t len, struct smoo_response *response);

uint32_t smoo_fnv1a32(uint32_t h, const uint8_t *data, size_t len);
uint32_t smoo_export_id(const char *identity, uint32_t block_size, uint64_t block_count);
/* FNV-1a-64, used for the machine-id credential (stage0.md §8.4). */
uint64_t smoo_fnv1a64(uint64_t h, const uint8_t *data, size_t len);
#define SMOO_FNV64_OFFSET 0xcbf29ce484222325ull

/* --- NBD socketpair wire format (stage0.md §11.3-§11.4) ------------------------------ */

#define NBD_WIRE_REQUEST_LEN 28
#define NBD_WIRE_REPLY_LEN 16
#define NBD_WIRE_REQUEST_MAGIC 0x25609513u
#define NBD_WIRE_REPLY_MAGIC 0x67446698u
enum nbd_wire_cmd { NBDW_READ = 0, NBDW_WRITE = 1, NBDW_DISC = 2, NBDW_FLUSH = 3, NBDW_TRIM = 4 };

struct nbd_wire_request {
    uint32_t type; /* command flags << 16 | command */
    uint64_t handle;
    uint64_t from;
    uint32_t len;
};

void nbd_encode_request(uint8_t out[NBD_WIRE_REQUEST_LEN], const struct nbd_wire_request *req);
int nbd_decode_request(const uint8_t *data, size_t len, struct nbd_wire_request *req);
void nbd_encode_reply(uint8_t out[NBD_WIRE_REPLY_LEN], uint32_t error, uint64_t handle);

#endif
