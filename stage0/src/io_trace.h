/* Per-request timestamps of the gadget's I/O path, for finding where a round trip goes.
 *
 * Off unless `smoo.log=trace`. Then every smoo part logs one line when its READ payload is
 * in (or its Response, for the rest), and every NBD request one line when its reply is
 * written: CLOCK_MONOTONIC microseconds of each step, so a log of the console lines the
 * path up with the host's timings. The lines go out after the step they describe, never
 * inside the lock or between two steps of one request. */
#ifndef STAGE0_IO_TRACE_H
#define STAGE0_IO_TRACE_H

#include <stdbool.h>
#include <stdint.h>

enum io_trace_step {
    IO_TRACE_PICKED,   /* the submitter took the part for the wire */
    IO_TRACE_REQUEST,  /* its Request goes to interrupt IN (the write starts) */
    IO_TRACE_RESPONSE, /* its Response is read from interrupt OUT and taken by the bridge */
    IO_TRACE_STEPS,
};

extern bool io_trace_enabled;

int64_t io_trace_now_us(void);
/* The NBD request `handle` was read from the socketpair at `at_us`. */
void io_trace_nbd_in(uint64_t handle, uint64_t from, uint32_t len, int64_t at_us);
void io_trace_step(unsigned slot, enum io_trace_step step);
/* The part in `slot` is done (its payload read, or no payload): log its line. */
void io_trace_part_done(unsigned slot, uint32_t payload_len);
/* The NBD reply for `handle` is written: log its line. */
void io_trace_nbd_out(uint64_t handle, uint32_t error);

#endif
