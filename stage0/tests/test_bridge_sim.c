/* Randomised NBD <-> smoo bridge run against a simulated host: out-of-order answers, link
 * loss with replays, duplicate/stale Responses. Every NBD READ must be answered exactly once
 * with the image's bytes, and request ids must stay below the capacity. */
#include "../src/bridge.h"
#include "check.h"

#include <stdlib.h>

#define BS 512u
#define BLOCKS 256u
#define CAP 4u
#define MAX_IO (4 * BS)
#define NREQ 400

static uint8_t image[BS * BLOCKS];
static int replied[NREQ];
static uint32_t want_from[NREQ], want_len[NREQ];

/* How the host answers a part, decided by its first block so the test can predict it. */
enum fate { OK, FAIL_EIO, SHORT_OK };
static enum fate fate_of(uint64_t lba, uint32_t n) {
    if (lba % 11 == 3) return FAIL_EIO;
    if (lba % 11 == 5 && n > 1) return SHORT_OK;
    return OK;
}

static uint32_t expected_error(uint32_t from, uint32_t len) {
    for (uint32_t off = 0; off < len; off += MAX_IO) {
        uint32_t chunk = len - off < MAX_IO ? len - off : MAX_IO;
        if (fate_of((from + off) / BS, chunk / BS) != OK) return SMOO_EIO;
    }
    return 0;
}

struct held {
    struct smoo_request rq;
    int live;
};

int main(void) {
    srand(1234);
    for (unsigned i = 0; i < sizeof image; i++) image[i] = (uint8_t)(i * 7 + i / 512);
    struct bridge b;
    struct smoo_export e = {0x1234, BS, sizeof image};
    CHECK(bridge_init(&b, &e, MAX_IO, CAP) == 0);
    struct held held[64];
    unsigned nheld = 0, next = 0, done = 0, failures_seen = 0;
    bridge_set_online(&b, true);
    for (int round = 0; done < NREQ && round < 200000; round++) {
        int action = rand() % 10;
        if (action < 3 && next < NREQ) { /* the kernel issues a READ */
            uint32_t lba = (uint32_t)rand() % BLOCKS;
            uint32_t n = 1 + (uint32_t)rand() % 12;
            if (lba + n > BLOCKS) n = BLOCKS - lba;
            want_from[next] = lba * BS;
            want_len[next] = n * BS;
            CHECK(bridge_accept(&b, NBDW_READ, next, lba * BS, n * BS, NULL) == 0);
            next++;
        } else if (action < 5) { /* the gadget puts a Request on the wire */
            struct bridge_submission s;
            if (nheld < 64 && bridge_next_submission(&b, &s)) {
                CHECK(s.request.request_id < CAP && s.request.num_blocks * BS <= MAX_IO);
                held[nheld++] = (struct held){s.request, 1};
            }
        } else if (action < 8 && nheld) { /* the host answers one, in any order */
            unsigned i = (unsigned)rand() % nheld;
            struct smoo_request rq = held[i].rq;
            held[i] = held[--nheld];
            enum fate fate = fate_of(rq.lba, rq.num_blocks);
            struct smoo_response r = {rq.op, fate == FAIL_EIO ? SMOO_EIO : 0, rq.request_id,
                                      rq.export_id, rq.lba,
                                      fate == SHORT_OK ? rq.num_blocks - 1 : rq.num_blocks, 0};
            uint8_t *dst;
            uint32_t len;
            unsigned slot;
            enum bridge_response_result res = bridge_on_response(&b, &r, &dst, &len, &slot);
            if (fate == FAIL_EIO) {
                CHECK(res == BRIDGE_RESP_DONE);
            } else if (res == BRIDGE_RESP_NEED_BULK) {
                CHECK(len == r.num_blocks * BS); /* exactly what the host sends */
                memcpy(dst, image + rq.lba * BS, len);
                bridge_bulk_done(&b, slot);
            } else {
                CHECK(res == BRIDGE_RESP_DROPPED); /* only stale answers are dropped */
            }
        } else if (action == 8 && rand() % 8 == 0) {
            /* The cable goes. The host's pump dies with the link, so it never answers what
             * it held; a few stale answers still reach the gadget and must be dropped. */
            bridge_link_lost(&b);
            for (unsigned i = 0; i < nheld && i < 2; i++) {
                struct smoo_request rq = held[i].rq;
                struct smoo_response r = {rq.op, 0, rq.request_id, rq.export_id, rq.lba,
                                          rq.num_blocks, 0};
                uint8_t *dst;
                uint32_t len;
                unsigned slot;
                CHECK(bridge_on_response(&b, &r, &dst, &len, &slot) == BRIDGE_RESP_DROPPED);
            }
            nheld = 0;
            bridge_set_online(&b, true);
        }
        struct bridge_reply reply;
        while (bridge_pop_reply(&b, &reply)) {
            CHECK(reply.handle < NREQ && !replied[reply.handle]);
            replied[reply.handle] = 1;
            uint32_t err = expected_error(want_from[reply.handle], want_len[reply.handle]);
            CHECK(reply.error == err);
            if (err) {
                CHECK(reply.data == NULL && reply.data_len == 0); /* never data after an error */
                failures_seen++;
            } else {
                CHECK(reply.data_len == want_len[reply.handle]);
                CHECK(reply.data && !memcmp(reply.data, image + want_from[reply.handle],
                                            reply.data_len));
            }
            bridge_free_reply(&reply);
            done++;
        }
    }
    CHECK(done == NREQ);
    CHECK(failures_seen > 0 && failures_seen < NREQ);
    bridge_destroy(&b);
    return check_report("test_bridge_sim");
}
