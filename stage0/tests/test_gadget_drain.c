/* The gadget drains the bulk-OUT payload of a READ Response it drops (src/gadget.c,
 * responder thread; smoo.md §4.3, §7.2).
 *
 * After a host restart the new host may answer a Request the gadget has already completed
 * or replayed under another id; the gadget drops that Response as unknown, but an OK READ
 * Response is still followed by its payload on bulk OUT. Unless exactly that many bytes are
 * read and thrown away, every later READ takes the previous one's data. Only the VM restart
 * test hits this by chance; this test makes it happen on purpose.
 *
 * The real gadget (gadget_serve: every thread, the link controller, the bridge) runs in a
 * child process over sockets instead of FunctionFS and /dev/nbd0, as in gadget_harness.c.
 * This process plays both peers: the smoo host on ep0 and the endpoints, and the kernel's
 * NBD client on the NBD socket. Bulk OUT is a byte stream (SOCK_STREAM), as a USB bulk
 * pipe is to a gadget reading fixed lengths, so a drain of the wrong length shifts the
 * data of the next READ and is caught. Reads wait at most HANG_GUARD_MS (a hang guard:
 * a drain that eats the real payload leaves the gadget waiting forever).
 *
 * The gadget runs with smoo.log=trace, its log on a pipe: the last READ must come out as
 * one `trace part` and one `trace nbd` line with its own numbers (src/io_trace.c). */
#include "../src/config.h"
#include "../src/gadget.h"
#include "../src/io_trace.h"
#include "../src/smoo_proto.h"
#include "check.h"

#include <errno.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BS 4096u
#define EXPORT_ID 0xFEABB4B1u
#define HANG_GUARD_MS 30000

enum { EP0, REQ, RESP, BULK_IN, BULK_OUT, NBD, NSOCK };
static int ours[NSOCK], theirs[NSOCK];
static int log_pipe[2]; /* the gadget's stderr: its log lines */
static bool hung;

/* --- the gadget child ---------------------------------------------------------------- */

static int attach(const struct smoo_export *e, uint32_t max_io_bytes, int *gadget_sock) {
    (void)e;
    (void)max_io_bytes;
    *gadget_sock = dup(theirs[NBD]);
    return *gadget_sock < 0 ? -errno : 0;
}
static void detach(void) {}
static const struct block_backend socket_backend = {attach, detach};

static pid_t start_gadget(void) {
    for (int i = 0; i < NSOCK; i++) {
        int type = (i == BULK_OUT || i == NBD) ? SOCK_STREAM : SOCK_SEQPACKET;
        int pair[2];
        if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair)) return -1;
        ours[i] = pair[0];
        theirs[i] = pair[1];
    }
    if (pipe(log_pipe)) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        for (int i = 0; i < NSOCK; i++) close(theirs[i]);
        close(log_pipe[1]);
        return pid;
    }
    for (int i = 0; i < NSOCK; i++) close(ours[i]);
    dup2(log_pipe[1], STDERR_FILENO);
    close(log_pipe[0]);
    close(log_pipe[1]);
    io_trace_enabled = true;
    static struct stage0_config cfg;
    config_defaults(&cfg); /* max_io 1 MiB, capacity 1 x 16 */
    struct gadget_endpoints eps = {theirs[EP0], theirs[REQ], theirs[RESP], theirs[BULK_IN],
                                   theirs[BULK_OUT]};
    gadget_serve(&cfg, &eps, &socket_backend);
}

/* --- I/O with a hang guard ----------------------------------------------------------- */

static bool wait_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, HANG_GUARD_MS) == 1) return true;
    fprintf(stderr, "test_gadget_drain: hang guard: nothing to read after %d ms\n", HANG_GUARD_MS);
    hung = true;
    return false;
}

/* One message (SEQPACKET), or exactly len bytes (STREAM). Returns the length read or -1. */
static ssize_t get(int fd, void *buf, size_t len, bool exact) {
    size_t done = 0;
    do {
        if (hung || !wait_readable(fd)) return -1;
        ssize_t n = read(fd, (char *)buf + done, len - done);
        if (n <= 0) return -1;
        done += (size_t)n;
    } while (exact && done < len);
    return (ssize_t)done;
}

static void put(int fd, const void *buf, size_t len) {
    CHECK(write(fd, buf, len) == (ssize_t)len);
}

/* --- the smoo host --------------------------------------------------------------------- */

static void ep0_event(uint8_t type, uint8_t rt, uint8_t request, uint16_t length) {
    struct usb_functionfs_event ev = {0};
    ev.u.setup = (struct usb_ctrlrequest){rt, request, 0, 0, htole16(length)};
    ev.type = type;
    put(ours[EP0], &ev, sizeof ev);
}

static void handshake(void) {
    uint8_t buf[64];
    ep0_event(FUNCTIONFS_ENABLE, 0, 0, 0);
    ep0_event(FUNCTIONFS_SETUP, SMOO_RT_IDENT, SMOO_REQ_IDENT, SMOO_IDENT_LEN);
    CHECK(get(ours[EP0], buf, sizeof buf, false) == SMOO_IDENT_LEN && !memcmp(buf, "SMOO", 4));
    struct smoo_export e = {EXPORT_ID, BS, 64 * BS};
    int len = smoo_encode_config(buf, sizeof buf, &e, 1);
    ep0_event(FUNCTIONFS_SETUP, SMOO_RT_CONFIG, SMOO_REQ_CONFIG, (uint16_t)len);
    put(ours[EP0], buf, (size_t)len);
}

/* STATUS: the export is up, and the link goes (or stays) Online: it counts as host
 * activity, so the gadget's 3 s liveness check never fires during a scenario. */
static void status(void) {
    uint8_t buf[64];
    ep0_event(FUNCTIONFS_SETUP, SMOO_RT_STATUS, SMOO_REQ_STATUS, SMOO_STATUS_LEN);
    CHECK(get(ours[EP0], buf, sizeof buf, false) == SMOO_STATUS_LEN);
    CHECK(buf[4] == 1); /* export_count: CONFIG_EXPORTS was applied */
}

static void respond(const struct smoo_response *r) {
    uint8_t msg[SMOO_MSG_LEN];
    smoo_encode_response(msg, r);
    put(ours[RESP], msg, sizeof msg);
}

static void payload(uint8_t fill, uint32_t len) {
    uint8_t *data = malloc(len);
    for (uint32_t i = 0; i < len; i++) data[i] = (uint8_t)(fill ^ (i * 7));
    put(ours[BULK_OUT], data, len);
    free(data);
}

/* --- the kernel's NBD client -------------------------------------------------------------- */

static void nbd_read(uint64_t handle, uint64_t from) {
    uint8_t msg[NBD_WIRE_REQUEST_LEN];
    nbd_encode_request(msg, &(struct nbd_wire_request){NBDW_READ, handle, from, BS});
    put(ours[NBD], msg, sizeof msg);
}

/* The NBD reply for `handle` carries the payload the host sent with fill `fill`. */
static void expect_reply(uint64_t handle, uint8_t fill) {
    uint8_t header[NBD_WIRE_REPLY_LEN], want[NBD_WIRE_REPLY_LEN], data[BS];
    nbd_encode_reply(want, 0, handle);
    bool got = get(ours[NBD], header, sizeof header, true) == sizeof header;
    CHECK(got && !memcmp(header, want, sizeof want));
    got = got && get(ours[NBD], data, sizeof data, true) == sizeof data;
    CHECK(got);
    if (!got) return;
    unsigned wrong = 0;
    for (uint32_t i = 0; i < BS; i++) wrong += data[i] != (uint8_t)(fill ^ (i * 7));
    if (wrong) fprintf(stderr, "test_gadget_drain: handle %llu: %u of %u bytes are not the "
                       "payload sent for it (first 0x%02x)\n", (unsigned long long)handle,
                       wrong, BS, data[0]);
    CHECK(wrong == 0);
}

static struct smoo_request next_request(void) {
    uint8_t msg[SMOO_MSG_LEN];
    struct smoo_request rq = {0};
    CHECK(get(ours[REQ], msg, sizeof msg, false) == SMOO_MSG_LEN);
    CHECK(smoo_decode_request(msg, sizeof msg, &rq) == 0);
    return rq;
}

static uint32_t unknown_id(const struct smoo_request *rq, unsigned k) {
    return (rq->request_id + 8 + k) % 16; /* 16 slots, one in flight: these are all free */
}

/* A stale OK READ Response announcing 2 blocks, with its 8 KiB on bulk OUT, arrives just
 * before the real one: those 8 KiB must be drained, not delivered to the real READ. */
static void test_drops_and_drains_a_stale_read_payload(void) {
    status();
    nbd_read(1, 0);
    struct smoo_request rq = next_request();
    CHECK(rq.op == SMOO_READ && rq.lba == 0 && rq.num_blocks == 1);
    respond(&(struct smoo_response){SMOO_READ, 0, unknown_id(&rq, 0), EXPORT_ID, 8, 2, 0});
    payload(0xEE, 2 * BS);
    respond(&(struct smoo_response){SMOO_READ, 0, rq.request_id, EXPORT_ID, 0, 1, 0});
    payload(0x11, BS);
    expect_reply(1, 0x11);
}

/* Dropped Responses with no payload behind them: an error READ and an OK WRITE (its data
 * went the other way). Draining for either would swallow the next READ's payload. */
static void test_drains_nothing_for_payloadless_responses(void) {
    status();
    nbd_read(2, BS);
    struct smoo_request rq = next_request();
    CHECK(rq.op == SMOO_READ && rq.lba == 1 && rq.num_blocks == 1);
    respond(&(struct smoo_response){SMOO_READ, SMOO_EIO, unknown_id(&rq, 0), EXPORT_ID, 3, 2, 0});
    respond(&(struct smoo_response){SMOO_WRITE, 0, unknown_id(&rq, 1), EXPORT_ID, 5, 2, 0});
    respond(&(struct smoo_response){SMOO_READ, 0, rq.request_id, EXPORT_ID, 1, 1, 0});
    payload(0x22, BS);
    expect_reply(2, 0x22);
}

/* And the stream is still in step afterwards: a plain READ gets its own bytes. */
static void test_stream_stays_in_step(void) {
    status();
    nbd_read(3, 2 * BS);
    struct smoo_request rq = next_request();
    respond(&(struct smoo_response){SMOO_READ, 0, rq.request_id, EXPORT_ID, 2, 1, 0});
    payload(0x33, BS);
    expect_reply(3, 0x33);
}

/* The gadget's log so far; read_more waits for more of it (hang guard). */
static char logged[1 << 16];
static size_t logged_len;
static bool read_more(void) {
    if (logged_len + 1 >= sizeof logged || !wait_readable(log_pipe[0])) return false;
    ssize_t n = read(log_pipe[0], logged + logged_len, sizeof logged - 1 - logged_len);
    if (n <= 0) return false;
    logged_len += (size_t)n;
    logged[logged_len] = 0;
    return true;
}

/* The nth (1-based) line starting with `prefix`, or NULL. */
static const char *nth_line(const char *prefix, unsigned nth) {
    const char *at = logged;
    for (unsigned i = 0; (at = strstr(at, prefix)); at++)
        if (++i == nth) return at;
    return NULL;
}

/* The third READ (handle 3, 4 KiB at 8 KiB: test_stream_stays_in_step) as the trace tells
 * it. Parts complete in order here, so its part line is the third. */
static void test_trace_lines(void) {
    while (!(strstr(logged, "trace nbd handle=3 from=8192 len=4096 error=0 in=") &&
             nth_line("trace part slot=", 3)) && read_more()) {
    }
    CHECK(strstr(logged, "trace nbd handle=3 from=8192 len=4096 error=0 in=") != NULL);
    const char *part = nth_line("trace part slot=", 3);
    unsigned slot, bytes;
    long long picked, request, response, done;
    CHECK(part && sscanf(part, "trace part slot=%u bytes=%u picked=%lld request=%lld "
                         "response=%lld done=%lld", &slot, &bytes, &picked, &request,
                         &response, &done) == 6);
    CHECK(bytes == BS && picked > 0 && picked <= request && request <= response &&
          response <= done);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    pid_t gadget = start_gadget();
    CHECK(gadget > 0);
    if (gadget <= 0) return check_report("test_gadget_drain");
    handshake();
    if (!hung) test_drops_and_drains_a_stale_read_payload();
    if (!hung) test_drains_nothing_for_payloadless_responses();
    if (!hung) test_stream_stays_in_step();
    if (!hung) test_trace_lines();
    CHECK(!hung);
    kill(gadget, SIGKILL); /* no graceful shutdown: nothing left to test there */
    waitpid(gadget, NULL, 0);
    fputs(logged, stderr); /* what the gadget said, as before its log went to the pipe */
    return check_report("test_gadget_drain");
}
