/* The NBD <-> smoo translation core: mapping, splitting, slots, parking, errno mapping. */
#include "../src/bridge.h"
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#define EID 0xFEABB4B1u

static struct bridge b;

static struct bridge *make(uint32_t max_io, unsigned capacity) {
    bridge_destroy(&b);
    struct smoo_export e = {EID, 4096, 1 << 24};
    CHECK(bridge_init(&b, &e, max_io, capacity) == 0);
    return &b;
}

static struct smoo_response answer(const struct smoo_request *rq, uint8_t status, uint32_t n) {
    return (struct smoo_response){rq->op, status, rq->request_id, rq->export_id, rq->lba, n, 0};
}

static void test_read_mapping_and_reply(void) {
    struct bridge *b = make(1 << 20, 16);
    struct bridge_submission s;
    CHECK(bridge_accept(b, NBDW_READ, 42, 0x100000, 8192, NULL) == 0);
    CHECK(!bridge_next_submission(b, &s)); /* parked: link not Online */
    bridge_set_online(b, true);
    CHECK(bridge_next_submission(b, &s));
    CHECK(s.request.op == SMOO_READ && s.request.lba == 256 && s.request.num_blocks == 2);
    CHECK(s.request.export_id == EID && s.request.request_id == 0 && s.payload == NULL);
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct smoo_response r = answer(&s.request, 0, 2);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    CHECK(len == 8192 && slot == 0);
    memset(dst, 0xAB, len);
    struct bridge_reply reply;
    CHECK(!bridge_pop_reply(b, &reply));
    bridge_bulk_done(b, slot);
    CHECK(bridge_pop_reply(b, &reply));
    CHECK(reply.handle == 42 && reply.error == 0 && reply.data_len == 8192 && reply.data[5] == 0xAB);
    bridge_free_reply(&reply);
    CHECK(bridge_inflight(b) == 0);
}

static void test_write_flush_trim_mapping(void) {
    struct bridge *b = make(1 << 20, 16);
    bridge_set_online(b, true);
    uint8_t payload[4096];
    memset(payload, 7, sizeof payload);
    struct bridge_submission s;
    CHECK(bridge_accept(b, NBDW_WRITE | (1u << 16), 1, 4096, 4096, payload) == 0); /* FUA */
    CHECK(bridge_next_submission(b, &s));
    CHECK(s.request.op == SMOO_WRITE && s.request.lba == 1 && s.request.num_blocks == 1);
    CHECK(s.payload_len == 4096 && s.payload[100] == 7);
    CHECK(bridge_accept(b, NBDW_FLUSH, 2, 0, 0, NULL) == 0);
    CHECK(bridge_next_submission(b, &s));
    CHECK(s.request.op == SMOO_FLUSH && s.request.lba == 0 && s.request.num_blocks == 0);
    CHECK(bridge_accept(b, NBDW_TRIM, 3, 8192, 8192, NULL) == 0);
    CHECK(bridge_next_submission(b, &s));
    CHECK(s.request.op == SMOO_DISCARD && s.request.lba == 2 && s.request.num_blocks == 2);
    CHECK(s.request.request_id == 2);
}

static void test_validation_and_unknown_commands(void) {
    struct bridge *b = make(1 << 20, 16);
    struct bridge_reply reply;
    CHECK(bridge_accept(b, NBDW_READ, 1, 100, 4096, NULL) == 0);     /* unaligned */
    CHECK(bridge_accept(b, NBDW_READ, 2, 0, 0, NULL) == 0);          /* empty */
    CHECK(bridge_accept(b, NBDW_READ, 3, 1 << 24, 4096, NULL) == 0); /* past the end */
    CHECK(bridge_accept(b, 9, 4, 0, 4096, NULL) == 0);               /* unknown command */
    for (uint64_t h = 1; h <= 4; h++) {
        CHECK(bridge_pop_reply(b, &reply) && reply.handle == h && reply.error == SMOO_EINVAL);
        CHECK(reply.data == NULL);
        bridge_free_reply(&reply);
    }
    CHECK(bridge_accept(b, NBDW_DISC, 5, 0, 0, NULL) == -EPROTO);
    CHECK(bridge_inflight(b) == 0);
}

static void test_splitting_and_first_error_wins(void) {
    struct bridge *b = make(8192, 16);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 9, 0, 5 * 4096, NULL) == 0);
    struct bridge_submission s[3];
    for (int i = 0; i < 3; i++) CHECK(bridge_next_submission(b, &s[i]));
    CHECK(s[0].request.lba == 0 && s[0].request.num_blocks == 2);
    CHECK(s[1].request.lba == 2 && s[1].request.num_blocks == 2);
    CHECK(s[2].request.lba == 4 && s[2].request.num_blocks == 1);
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct bridge_reply reply;
    struct smoo_response r = answer(&s[2].request, SMOO_EOPNOTSUPP, 1);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_DONE);
    r = answer(&s[1].request, SMOO_EIO, 2);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_DONE);
    r = answer(&s[0].request, 0, 2);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    CHECK(dst != NULL && len == 8192);
    bridge_bulk_done(b, slot);
    CHECK(bridge_pop_reply(b, &reply) && reply.error == SMOO_EIO && reply.data == NULL);
    bridge_free_reply(&reply);
}

static void test_short_ok_is_eio(void) {
    struct bridge *b = make(1 << 20, 16);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 1, 0, 4 * 4096, NULL) == 0);
    struct bridge_submission s;
    CHECK(bridge_next_submission(b, &s));
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct smoo_response r = answer(&s.request, 0, 3);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    CHECK(len == 3 * 4096); /* drain exactly what the host sends */
    bridge_bulk_done(b, slot);
    struct bridge_reply reply;
    CHECK(bridge_pop_reply(b, &reply) && reply.error == SMOO_EIO);
    bridge_free_reply(&reply);
}

static void test_capacity_parking_and_replay_keep_ids(void) {
    struct bridge *b = make(4096, 2);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 1, 0, 3 * 4096, NULL) == 0); /* 3 parts, 2 slots */
    struct bridge_submission s1, s2, s3;
    CHECK(bridge_next_submission(b, &s1) && bridge_next_submission(b, &s2));
    CHECK(!bridge_next_submission(b, &s3)); /* third part waits for a slot */
    CHECK(s1.request.request_id == 0 && s2.request.request_id == 1);
    bridge_link_lost(b);
    CHECK(bridge_parked(b) == 2 && !bridge_next_submission(b, &s3));
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct smoo_response stale = answer(&s1.request, 0, 1);
    CHECK(bridge_on_response(b, &stale, &dst, &len, &slot) == BRIDGE_RESP_DROPPED);
    bridge_set_online(b, true);
    struct bridge_submission r1, r2;
    CHECK(bridge_next_submission(b, &r1) && bridge_next_submission(b, &r2));
    /* replays keep (export_id, request_id) and geometry */
    CHECK((r1.request.request_id == 0 && r1.request.lba == 0) ||
          (r1.request.request_id == 1 && r1.request.lba == 1));
    CHECK(r1.request.request_id != r2.request.request_id);
    struct smoo_response wrong_op = answer(&r1.request, 0, 1);
    wrong_op.op = SMOO_WRITE;
    CHECK(bridge_on_response(b, &wrong_op, &dst, &len, &slot) == BRIDGE_RESP_FAULT);
    struct smoo_response ok = answer(&r1.request, 0, 1);
    CHECK(bridge_on_response(b, &ok, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_done(b, slot);
    CHECK(bridge_next_submission(b, &s3)); /* the freed slot took the waiting part */
    CHECK(s3.request.lba == 2 && s3.request.request_id == r1.request.request_id);
}

static void test_fail_all(void) {
    struct bridge *b = make(4096, 1);
    CHECK(bridge_accept(b, NBDW_READ, 1, 0, 2 * 4096, NULL) == 0);
    CHECK(bridge_accept(b, NBDW_READ, 2, 0, 4096, NULL) == 0);
    bridge_fail_all(b, SMOO_ENODEV);
    struct bridge_reply reply;
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 1 && reply.error == SMOO_ENODEV);
    bridge_free_reply(&reply);
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 2 && reply.error == SMOO_ENODEV);
    bridge_free_reply(&reply);
    CHECK(bridge_inflight(b) == 0 && !bridge_pop_reply(b, &reply));
}

static void test_fail_parked_keeps_inflight(void) {
    struct bridge *b = make(4096, 2);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 1, 0, 4096, NULL) == 0);
    struct bridge_submission s;
    CHECK(bridge_next_submission(b, &s)); /* on the wire */
    CHECK(bridge_accept(b, NBDW_READ, 2, 4096, 4096, NULL) == 0);   /* parked in slot 1 */
    CHECK(bridge_accept(b, NBDW_READ, 3, 8192, 4096, NULL) == 0);   /* waiting for a slot */
    bridge_fail_parked(b, SMOO_ESHUTDOWN);
    struct bridge_reply reply;
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 2 && reply.error == SMOO_ESHUTDOWN);
    bridge_free_reply(&reply);
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 3 && reply.error == SMOO_ESHUTDOWN);
    bridge_free_reply(&reply);
    CHECK(bridge_inflight(b) == 1); /* the submitted one may still drain */
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct smoo_response r = answer(&s.request, 0, 1);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_done(b, slot);
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 1 && reply.error == 0);
    bridge_free_reply(&reply);
}

static void test_bulk_lease_after_link_loss_is_ignored(void) {
    struct bridge *b = make(1 << 20, 4);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 1, 0, 2 * 4096, NULL) == 0);
    struct bridge_submission s;
    CHECK(bridge_next_submission(b, &s));
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct bridge_lease lease;
    struct smoo_response r = answer(&s.request, 0, 2);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_lease(b, slot, &lease);
    bridge_link_lost(b); /* the link drops while the payload is being read */
    memset(dst, 0x11, len);
    CHECK(!bridge_bulk_release(b, &lease, true)); /* replayed: not its answer */
    struct bridge_reply reply;
    CHECK(!bridge_pop_reply(b, &reply));
    bridge_set_online(b, true);
    CHECK(bridge_next_submission(b, &s) && s.request.request_id == slot); /* replayed */
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_lease(b, slot, &lease);
    CHECK(!bridge_bulk_release(b, &lease, false)); /* the read failed: still awaits bulk */
    CHECK(!bridge_pop_reply(b, &reply));
    bridge_bulk_lease(b, slot, &lease);
    memset(dst, 0x5A, len);
    CHECK(bridge_bulk_release(b, &lease, true));
    CHECK(bridge_pop_reply(b, &reply) && reply.error == 0 && reply.data_len == len &&
          reply.data[100] == 0x5A && reply.data[len - 1] == 0x5A);
    bridge_free_reply(&reply);
}

/* The op is failed and replied to while its payload is still being read into it: the buffer
 * must outlive the read (ASan reports a write after free), then be freed (LSan: no leak). */
static void test_bulk_lease_outlives_fail_all(void) {
    struct bridge *b = make(1 << 20, 4);
    bridge_set_online(b, true);
    CHECK(bridge_accept(b, NBDW_READ, 7, 0, 4096, NULL) == 0);
    struct bridge_submission s;
    CHECK(bridge_next_submission(b, &s));
    uint8_t *dst;
    uint32_t len;
    unsigned slot;
    struct bridge_lease lease;
    struct smoo_response r = answer(&s.request, 0, 1);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_lease(b, slot, &lease);
    bridge_fail_all(b, SMOO_ENODEV); /* the export is removed meanwhile */
    struct bridge_reply reply;
    CHECK(bridge_pop_reply(b, &reply) && reply.handle == 7 && reply.error == SMOO_ENODEV &&
          reply.data == NULL);
    bridge_free_reply(&reply);
    memset(dst, 0x33, len); /* the read lands after the reply */
    CHECK(!bridge_bulk_release(b, &lease, true));
    CHECK(bridge_inflight(b) == 0);

    /* The same across the teardown of the whole bridge (an export that changed). */
    CHECK(bridge_accept(b, NBDW_READ, 8, 0, 4096, NULL) == 0);
    CHECK(bridge_next_submission(b, &s));
    r = answer(&s.request, 0, 1);
    CHECK(bridge_on_response(b, &r, &dst, &len, &slot) == BRIDGE_RESP_NEED_BULK);
    bridge_bulk_lease(b, slot, &lease);
    bridge_destroy(b);
    struct smoo_export e = {EID, 4096, 1 << 24};
    CHECK(bridge_init(b, &e, 1 << 20, 4) == 0);
    memset(dst, 0x44, len);
    CHECK(!bridge_bulk_release(b, &lease, true));
}

int main(void) {
    test_read_mapping_and_reply();
    test_write_flush_trim_mapping();
    test_validation_and_unknown_commands();
    test_splitting_and_first_error_wins();
    test_short_ok_is_eio();
    test_capacity_parking_and_replay_keep_ids();
    test_fail_all();
    test_fail_parked_keeps_inflight();
    test_bulk_lease_after_link_loss_is_ignored();
    test_bulk_lease_outlives_fail_all();
    bridge_destroy(&b);
    return check_report("test_bridge");
}
