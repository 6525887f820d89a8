/* Per-request timestamps of the gadget's I/O path; see io_trace.h. */
#include "io_trace.h"

#include <time.h>

#include "bridge.h"
#include "log.h"

#define NBD_SLOTS 1024 /* handles are hashed into this; a collision only garbles a line */

bool io_trace_enabled;

static int64_t part_at[BRIDGE_MAX_SLOTS][IO_TRACE_STEPS];
static struct {
    uint64_t handle, from;
    uint32_t len;
    int64_t in_us;
} nbd_at[NBD_SLOTS];

int64_t io_trace_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned nbd_index(uint64_t handle) {
    return (unsigned)((handle * 0x9E3779B97F4A7C15ull) >> 54); /* the top 10 bits */
}

void io_trace_nbd_in(uint64_t handle, uint64_t from, uint32_t len, int64_t at_us) {
    if (!io_trace_enabled) return;
    unsigned i = nbd_index(handle);
    nbd_at[i].handle = handle;
    nbd_at[i].from = from;
    nbd_at[i].len = len;
    nbd_at[i].in_us = at_us;
}

void io_trace_step(unsigned slot, enum io_trace_step step) {
    /* Relaxed atomics: the submitter and the responder stamp one slot from two threads. */
    if (io_trace_enabled && slot < BRIDGE_MAX_SLOTS)
        __atomic_store_n(&part_at[slot][step], io_trace_now_us(), __ATOMIC_RELAXED);
}

void io_trace_part_done(unsigned slot, uint32_t payload_len) {
    if (!io_trace_enabled || slot >= BRIDGE_MAX_SLOTS) return;
    long long at[IO_TRACE_STEPS];
    for (unsigned step = 0; step < IO_TRACE_STEPS; step++)
        at[step] = __atomic_load_n(&part_at[slot][step], __ATOMIC_RELAXED);
    log_info("trace part slot=%u bytes=%u picked=%lld request=%lld response=%lld done=%lld",
             slot, payload_len, at[IO_TRACE_PICKED], at[IO_TRACE_REQUEST],
             at[IO_TRACE_RESPONSE], (long long)io_trace_now_us());
}

void io_trace_nbd_out(uint64_t handle, uint32_t error) {
    if (!io_trace_enabled) return;
    unsigned i = nbd_index(handle);
    bool known = nbd_at[i].handle == handle;
    log_info("trace nbd handle=%llx from=%llu len=%u error=%u in=%lld out=%lld",
             (unsigned long long)handle, known ? (unsigned long long)nbd_at[i].from : 0ULL,
             known ? nbd_at[i].len : 0, error, known ? (long long)nbd_at[i].in_us : 0LL,
             (long long)io_trace_now_us());
}
