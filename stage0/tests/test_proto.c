/* smoo and NBD wire formats against the spec's worked examples and test vectors. */
#include "../src/smoo_proto.h"
#include "check.h"

#include <errno.h>

static void test_ident_status(void) {
    unsigned char b[16];
    smoo_encode_ident(b, 0, 1);
    CHECK_BYTES(b, "53 4d 4f 4f 00 00 01 00");
    struct smoo_status st = {SMOO_STATUS_EXPORT_ACTIVE, 1, 0x0123456789ABCDEFull};
    smoo_encode_status(b, &st);
    CHECK_BYTES(b, "00 00 01 00 01 00 00 00 ef cd ab 89 67 45 23 01");
}

static void test_setup_classification(void) {
    CHECK(smoo_classify_setup(0xC1, 1, 8) == SMOO_SETUP_IDENT);
    CHECK(smoo_classify_setup(0xC1, 1, 7) == SMOO_SETUP_STALL);
    CHECK(smoo_classify_setup(0xA1, 3, 16) == SMOO_SETUP_STATUS);
    CHECK(smoo_classify_setup(0xC1, 3, 16) == SMOO_SETUP_STALL); /* vendor STATUS: wrong byte */
    CHECK(smoo_classify_setup(0x41, 2, 32) == SMOO_SETUP_CONFIG);
    CHECK(smoo_classify_setup(0x41, 9, 32) == SMOO_SETUP_STALL);
}

static void test_config(void) {
    unsigned char b[8 + 24 * 2];
    struct smoo_export e = {0xFEABB4B1u, 512, 1 << 20};
    CHECK(smoo_encode_config(b, sizeof b, &e, 1) == 32);
    CHECK_BYTES(b, "00 00 01 00 00 00 00 00 b1 b4 ab fe 00 02 00 00 00 00 10 00 00 00 00 00 "
                   "00 00 00 00 00 00 00 00");
    struct smoo_export out[SMOO_MAX_EXPORTS];
    unsigned n = 99;
    CHECK(smoo_decode_config(b, 32, out, &n) == 0 && n == 1);
    CHECK(out[0].export_id == e.export_id && out[0].block_size == 512 &&
          out[0].size_bytes == 1 << 20);
    CHECK(smoo_decode_config(b, 31, out, &n) == -EINVAL);
    b[0] = 1;
    CHECK(smoo_decode_config(b, 32, out, &n) == -EPROTO);
    b[0] = 0;
    b[8 + 4] = 0x01; /* block size 0x201 */
    CHECK(smoo_decode_config(b, 32, out, &n) == -EINVAL);
    struct smoo_export two[2] = {{7, 4096, 4096}, {7, 4096, 8192}};
    CHECK(smoo_encode_config(b, sizeof b, two, 2) == 56);
    CHECK(smoo_decode_config(b, 56, out, &n) == -EEXIST);
    CHECK(smoo_encode_config(b, 40, two, 2) == -1);
}

static void test_request_response(void) {
    unsigned char b[28];
    struct smoo_request rq = {SMOO_READ, 5, 0x12345678, 2048, 8, 0};
    smoo_encode_request(b, &rq);
    CHECK_BYTES(b, "00 00 00 00 05 00 00 00 78 56 34 12 00 08 00 00 00 00 00 00 08 00 00 00 "
                   "00 00 00 00");
    struct smoo_response rs = {SMOO_READ, SMOO_EIO, 5, 0x12345678, 2048, 8, 0};
    smoo_encode_response(b, &rs);
    CHECK_BYTES(b, "00 05 00 00 05 00 00 00 78 56 34 12 00 08 00 00 00 00 00 00 08 00 00 00 "
                   "00 00 00 00");
    struct smoo_request w = {SMOO_WRITE, 0x00010003, 0xFEABB4B1u, 16, 8, 0};
    smoo_encode_request(b, &w);
    CHECK_BYTES(b, "01 00 00 00 03 00 01 00 b1 b4 ab fe 10 00 00 00 00 00 00 00 08 00 00 00 "
                   "00 00 00 00");
    struct smoo_response ro = {SMOO_WRITE, SMOO_EOPNOTSUPP, 0x00010003, 0xFEABB4B1u, 16, 8, 0};
    smoo_encode_response(b, &ro);
    CHECK_BYTES(b, "01 5f 00 00 03 00 01 00 b1 b4 ab fe 10 00 00 00 00 00 00 00 08 00 00 00 "
                   "00 00 00 00");
    struct smoo_response back;
    CHECK(smoo_decode_response(b, 28, &back) == 0);
    CHECK(back.op == SMOO_WRITE && back.status == 95 && back.request_id == 0x00010003 &&
          back.lba == 16 && back.num_blocks == 8);
    CHECK(smoo_decode_response(b, 27, &back) == -EINVAL);
    b[0] = 4;
    CHECK(smoo_decode_response(b, 28, &back) == -EPROTO);
    struct smoo_request rback;
    CHECK(smoo_decode_request(b, 28, &rback) == -EPROTO);
}

static void test_ids(void) {
    CHECK(smoo_export_id("file:/tmp/x.img", 512, 2048) == 0xFEABB4B1u);
    CHECK(smoo_export_id("random:1234", 4096, 16) == 0xD0A088E4u);
}

static void test_nbd(void) {
    unsigned char b[28];
    struct nbd_wire_request r = {NBDW_READ, 1, 0x100000, 4096};
    nbd_encode_request(b, &r);
    CHECK_BYTES(b, "25 60 95 13 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 10 00 00 "
                   "00 00 10 00");
    struct nbd_wire_request back;
    CHECK(nbd_decode_request(b, 28, &back) == 0);
    CHECK(back.type == 0 && back.handle == 1 && back.from == 0x100000 && back.len == 4096);
    struct nbd_wire_request f = {NBDW_FLUSH, 2, 0, 0};
    nbd_encode_request(b, &f);
    CHECK_BYTES(b, "25 60 95 13 00 00 00 03 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 "
                   "00 00 00 00");
    nbd_encode_reply(b, 0, 1);
    CHECK_BYTES(b, "67 44 66 98 00 00 00 00 00 00 00 00 00 00 00 01");
    nbd_encode_reply(b, 5, 1);
    CHECK_BYTES(b, "67 44 66 98 00 00 00 05 00 00 00 00 00 00 00 01");
    b[0] = 0;
    CHECK(nbd_decode_request(b, 28, &back) == -EPROTO);
}

int main(void) {
    test_ident_status();
    test_setup_classification();
    test_config();
    test_request_response();
    test_ids();
    test_nbd();
    return check_report("test_proto");
}
