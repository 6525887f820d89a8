/* The gadget child: FunctionFS endpoints, the gadget side of smoo, and the NBD bridge I/O.
 *
 * Threads, each with one job (the translation logic itself lives in bridge.c, sans I/O):
 *   ep0       control requests and FunctionFS events; drives the link controller
 *   submit    Requests on interrupt IN (ep1), then WRITE payloads on bulk IN (ep3), in order
 *   respond   Responses from interrupt OUT (ep2), READ payloads from bulk OUT (ep4),
 *             straight into the NBD reply's buffer (a bridge lease keeps it allocated)
 *   reply     NBD replies to the socketpair, so the responder is back on ep2 at once
 *   nbd-read  NBD requests from the socketpair into the bridge (these two: gadget_nbd.c)
 *   nbd-doit  blocks in NBD_DO_IT for as long as /dev/nbd0 is connected
 *   liveness  every 500 ms: no host activity for 3 s sends the link Offline
 * One mutex guards the bridge and the link state; I/O happens outside it. */
#include "gadget.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "ffs_desc.h"
#include "gadget_state.h"
#include "io_trace.h"
#include "log.h"
#include "nbd_dev.h"
#include "smoo_proto.h"

static const char *const link_names[] = {"Offline", "Ready", "Online"};

struct gadget_state G = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .replies_ready = PTHREAD_COND_INITIALIZER,
    .sock_write = PTHREAD_MUTEX_INITIALIZER,
    .sock = -1,
    .backoff_ms = 1000,
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned fault_gen(void) { return __atomic_load_n(&G.fault_gen, __ATOMIC_SEQ_CST); }

int gadget_io_exact(int fd, void *buf, size_t len, bool reading, const unsigned *gen) {
    size_t done = 0;
    while (done < len) {
        if (gen && fault_gen() != *gen) return -ECANCELED;
        ssize_t n = reading ? read(fd, (char *)buf + done, len - done)
                            : write(fd, (const char *)buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 ? -EPIPE : -errno;
        done += (size_t)n;
    }
    return 0;
}

static void noop_handler(int sig) { (void)sig; }

/* Callers hold G.lock. */
static void kick_pump(void) {
    __atomic_add_fetch(&G.fault_gen, 1, __ATOMIC_SEQ_CST);
    if (!G.pump_started) return;
    pthread_kill(G.submit_tid, SIGUSR1);
    pthread_kill(G.respond_tid, SIGUSR1);
}

/* --- link controller (smoo.md §7.2); callers hold G.lock ------------------------------ */

static void set_link(enum link_state next, const char *reason) {
    if (G.link == next) return;
    log_info("link %s -> %s (%s)", link_names[G.link], link_names[next], reason);
    G.link = next;
    bridge_set_online(&G.bridge, next == LINK_ONLINE);
    if (next == LINK_ONLINE) pthread_cond_broadcast(&G.wake);
}

static void link_fault(const char *reason, bool io_error) {
    if (G.link == LINK_OFFLINE && !io_error) return;
    bridge_link_lost(&G.bridge); /* keep the block device; replay with the same ids */
    kick_pump();
    if (io_error) {
        G.reopen_not_before_ms = now_ms() + G.backoff_ms;
        G.backoff_ms = G.backoff_ms * 2 > 30000 ? 30000 : G.backoff_ms * 2;
    }
    set_link(LINK_OFFLINE, reason);
}

static void link_activity(const char *reason) {
    int64_t now = now_ms();
    G.last_activity_ms = now;
    if (G.link != LINK_ONLINE && now >= G.reopen_not_before_ms) set_link(LINK_ONLINE, reason);
}

/* IDENT and CONFIG_EXPORTS: a new host session; forget wire state, replay once Online. */
static void session_boundary(void) {
    bridge_link_lost(&G.bridge);
    kick_pump();
    if (G.link == LINK_ONLINE) set_link(LINK_READY, "session boundary");
}

static void apply_config(const uint8_t *data, size_t len) {
    struct smoo_export exports[SMOO_MAX_EXPORTS];
    unsigned count = 0;
    int rc = smoo_decode_config(data, len, exports, &count);
    if (rc) { /* the data stage is consumed: the host sees success regardless (§3.2) */
        log_err("CONFIG_EXPORTS rejected: %s", strerror(-rc));
        return;
    }
    pthread_mutex_lock(&G.lock);
    session_boundary();
    const struct smoo_export *cur = &G.bridge.export;
    if (G.have_export && count > 0 && exports[0].export_id == cur->export_id &&
        exports[0].block_size == cur->block_size && exports[0].size_bytes == cur->size_bytes) {
        log_info("export %08x unchanged; parked I/O will replay", cur->export_id);
    } else {
        if (G.have_export) gadget_stop_export_locked();
        if (count > 1) log_warn("%u exports offered; only the first is served", count);
        if (count > 0) gadget_start_export(&exports[0]);
    }
    pthread_mutex_unlock(&G.lock);
}

/* --- USB side ------------------------------------------------------------------------ */

static void *submitter(void *arg) {
    (void)arg;
    for (;;) {
        struct bridge_submission sub;
        pthread_mutex_lock(&G.lock);
        while (!(G.have_export && bridge_next_submission(&G.bridge, &sub)))
            pthread_cond_wait(&G.wake, &G.lock);
        io_trace_step(sub.request.request_id, IO_TRACE_PICKED);
        unsigned gen = fault_gen();
        G.sub_in_write = true;
        G.sub_write_gen = gen;
        uint8_t *payload = NULL;
        if (sub.payload_len) { /* copy: the op may be failed while we write */
            payload = malloc(sub.payload_len);
            if (payload) memcpy(payload, sub.payload, sub.payload_len);
        }
        pthread_mutex_unlock(&G.lock);
        uint8_t msg[SMOO_MSG_LEN];
        smoo_encode_request(msg, &sub.request);
        /* Stamped before the write: once written, the Response can be read (and stamped
         * by the other thread) before this thread runs again. */
        io_trace_step(sub.request.request_id, IO_TRACE_REQUEST);
        int rc = gadget_io_exact(G.ep_req, msg, sizeof msg, false, &gen);
        if (!rc && sub.payload_len)
            rc = payload ? gadget_io_exact(G.ep_bulk_in, payload, sub.payload_len, false, &gen)
                         : -ENOMEM;
        free(payload);
        pthread_mutex_lock(&G.lock);
        G.sub_in_write = false;
        if (rc == -ECANCELED) log_info("Request write abandoned (pump faulted); it will replay");
        else if (rc) link_fault("endpoint write failed", true);
        pthread_mutex_unlock(&G.lock);
    }
    return NULL;
}

static void *responder(void *arg) {
    (void)arg;
    uint8_t buf[1024];
    for (;;) {
        ssize_t n = read(G.ep_resp, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue; /* kicked by a fault while idle */
        if (n < 0) {
            pthread_mutex_lock(&G.lock);
            link_fault("interrupt OUT read failed", true);
            pthread_mutex_unlock(&G.lock);
            usleep(100 * 1000);
            continue;
        }
        struct smoo_response r;
        if (n != SMOO_MSG_LEN || smoo_decode_response(buf, (size_t)n, &r))
            continue; /* e.g. fastboot probes from host daemons in mimic mode (§9) */
        uint8_t *dst = NULL;
        uint32_t len = 0;
        unsigned slot = 0;
        struct bridge_lease lease;
        pthread_mutex_lock(&G.lock);
        enum bridge_response_result res =
            G.have_export ? bridge_on_response(&G.bridge, &r, &dst, &len, &slot)
                          : BRIDGE_RESP_DROPPED;
        if (res == BRIDGE_RESP_NEED_BULK) bridge_bulk_lease(&G.bridge, slot, &lease);
        /* Only a Response the bridge took: a dropped one may carry a reused slot's id. */
        if (res == BRIDGE_RESP_NEED_BULK || res == BRIDGE_RESP_DONE)
            io_trace_step(r.request_id, IO_TRACE_RESPONSE);
        /* A dropped OK READ Response is still followed by its payload on bulk OUT
         * (smoo.md §4.3): drain exactly that many bytes, or every later READ would take
         * the previous one's data. Duplicates are normal after a recovery (§7.2). */
        uint64_t drain = 0;
        if (res == BRIDGE_RESP_FAULT) link_fault("Response op mismatch", true);
        else if (res == BRIDGE_RESP_DROPPED) {
            if (G.have_export && r.op == SMOO_READ && r.status == 0 &&
                r.export_id == G.bridge.export.export_id)
                drain = (uint64_t)r.num_blocks * G.bridge.export.block_size;
            log_info("Response for unknown request %08x/%u (lba %llu) dropped; draining %llu "
                     "payload bytes", r.export_id, r.request_id, (unsigned long long)r.lba,
                     (unsigned long long)drain);
        } else {
            link_activity("request completed");
            if (res == BRIDGE_RESP_DONE) gadget_wake_replier();
        }
        if (drain > G.cfg->max_io_bytes) { /* no host sends that much: a broken peer */
            link_fault("dropped Response announces an oversized payload", true);
            drain = 0;
        }
        unsigned gen = fault_gen();
        G.resp_in_bulk = res == BRIDGE_RESP_NEED_BULK || drain;
        G.resp_bulk_gen = gen;
        pthread_cond_broadcast(&G.wake); /* a freed slot may let a waiting part go out */
        pthread_mutex_unlock(&G.lock);
        if (res == BRIDGE_RESP_DONE) io_trace_part_done(r.request_id, 0);
        if (drain) {
            /* One read of the whole payload: a transfer's boundaries are kept (the socket
             * harness sends one message per transfer). At most max_io_bytes, checked above. */
            uint8_t *scratch = malloc((size_t)drain);
            int rc = scratch ? gadget_io_exact(G.ep_bulk_out, scratch, (size_t)drain, true, &gen)
                             : -ENOMEM;
            free(scratch);
            pthread_mutex_lock(&G.lock);
            G.resp_in_bulk = false;
            if (rc == -ECANCELED) log_info("payload drain abandoned (pump faulted)");
            else if (rc) link_fault("bulk OUT drain failed", true);
            pthread_mutex_unlock(&G.lock);
        }
        if (res == BRIDGE_RESP_NEED_BULK) {
            /* Straight into the reply's buffer: the lease keeps it allocated even if the
             * op is failed or replayed meanwhile, and then the bytes are not used. */
            int rc = gadget_io_exact(G.ep_bulk_out, dst, len, true, &gen);
            pthread_mutex_lock(&G.lock);
            G.resp_in_bulk = false;
            bool used = bridge_bulk_release(&G.bridge, &lease, rc == 0);
            if (rc == -ECANCELED) log_info("READ payload abandoned (pump faulted); it will replay");
            else if (rc) link_fault("bulk OUT read failed", true);
            else if (!used) log_debug("bulk OUT payload for a request no longer waiting; dropped");
            if (used) gadget_wake_replier();
            pthread_cond_broadcast(&G.wake);
            pthread_mutex_unlock(&G.lock);
            if (used) io_trace_part_done(slot, len);
        }
    }
    return NULL;
}

static void *liveness(void *arg) {
    (void)arg;
    for (;;) {
        usleep(500 * 1000);
        pthread_mutex_lock(&G.lock);
        if (G.link == LINK_ONLINE && now_ms() - G.last_activity_ms > 3000)
            link_fault("liveness timeout", false);
        /* A kick that landed just before a pump thread blocked is lost: repeat it. A
         * stale Request left blocked on interrupt IN would reach the next host as a
         * duplicate, and the bulk-OUT data answering it would desync the stream. */
        if (G.pump_started && G.resp_in_bulk && G.resp_bulk_gen != fault_gen())
            pthread_kill(G.respond_tid, SIGUSR1);
        if (G.pump_started && G.sub_in_write && G.sub_write_gen != fault_gen())
            pthread_kill(G.submit_tid, SIGUSR1);
        pthread_mutex_unlock(&G.lock);
    }
    return NULL;
}

/* SIGINT/SIGTERM (§11.9): fail queued and parked I/O with ESHUTDOWN, give in-flight I/O
 * up to 5 s to drain, then disconnect and exit. A second signal skips the drain. */
static void *shutdown_watcher(void *arg) {
    sigset_t *signals = arg;
    int sig;
    sigwait(signals, &sig);
    log_info("signal %d: shutting down", sig);
    pthread_mutex_lock(&G.lock);
    if (G.have_export) bridge_fail_parked(&G.bridge, SMOO_ESHUTDOWN);
    pthread_mutex_unlock(&G.lock);
    gadget_flush_replies();
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&G.lock);
        unsigned left = G.have_export ? bridge_inflight(&G.bridge) : 0;
        pthread_mutex_unlock(&G.lock);
        if (left == 0 || sigtimedwait(signals, NULL, &tick) > 0) break;
    }
    pthread_mutex_lock(&G.lock);
    if (G.have_export) {
        bridge_fail_all(&G.bridge, SMOO_ESHUTDOWN);
        pthread_mutex_unlock(&G.lock);
        gadget_flush_replies();
        G.backend->detach();
    } else {
        pthread_mutex_unlock(&G.lock);
    }
    exit(0);
}

static void stall(const struct usb_ctrlrequest *setup) {
    /* FunctionFS halts ep0 when the data stage is accessed in the wrong direction. */
    if (setup->bRequestType & USB_DIR_IN) (void)!read(G.ep0, NULL, 0);
    else (void)!write(G.ep0, NULL, 0);
}

static void handle_setup(const struct usb_ctrlrequest *setup) {
    uint16_t length = le16toh(setup->wLength);
    uint8_t buf[SMOO_CONFIG_HEADER_LEN + SMOO_CONFIG_ENTRY_LEN * SMOO_MAX_EXPORTS];
    switch (smoo_classify_setup(setup->bRequestType, setup->bRequest, length)) {
    case SMOO_SETUP_IDENT:
        pthread_mutex_lock(&G.lock);
        session_boundary();
        pthread_mutex_unlock(&G.lock);
        smoo_encode_ident(buf, SMOO_VERSION_MAJOR, SMOO_VERSION_MINOR);
        (void)!write(G.ep0, buf, SMOO_IDENT_LEN);
        break;
    case SMOO_SETUP_STATUS: {
        pthread_mutex_lock(&G.lock);
        uint32_t count = G.have_export ? 1 : 0;
        struct smoo_status st = {count ? SMOO_STATUS_EXPORT_ACTIVE : 0, count, G.session_id};
        link_activity("STATUS");
        pthread_mutex_unlock(&G.lock);
        smoo_encode_status(buf, &st);
        (void)!write(G.ep0, buf, SMOO_STATUS_LEN);
        break;
    }
    case SMOO_SETUP_CONFIG:
        if (length > sizeof buf) { stall(setup); break; }
        ssize_t n = read(G.ep0, buf, length);
        if (n >= 0) apply_config(buf, (size_t)n);
        break;
    default:
        stall(setup);
    }
}

static int open_ep(const char *dir, int n) {
    char path[256];
    snprintf(path, sizeof path, "%s/ep%d", dir, n);
    return open(path, O_RDWR | O_CLOEXEC);
}

void gadget_serve(const struct stage0_config *cfg, const struct gadget_endpoints *eps,
                  const struct block_backend *backend) {
    G.cfg = cfg;
    G.backend = backend;
    G.ep0 = eps->ep0;
    G.ep_req = eps->ep_req;
    G.ep_resp = eps->ep_resp;
    G.ep_bulk_in = eps->ep_bulk_in;
    G.ep_bulk_out = eps->ep_bulk_out;
    static sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL); /* inherited by every thread below */
    while (getrandom(&G.session_id, sizeof G.session_id, 0) != sizeof G.session_id ||
           G.session_id == 0) {
    }
    log_info("smoo gadget ready (session %016llx, %s mode)", (unsigned long long)G.session_id,
             cfg->mimic_fastboot ? "mimic-fastboot" : "smoo");
    struct sigaction kick = {.sa_handler = noop_handler}; /* no SA_RESTART: reads see EINTR */
    sigemptyset(&kick.sa_mask);
    sigaction(SIGUSR1, &kick, NULL);
    pthread_t t;
    pthread_mutex_lock(&G.lock);
    pthread_create(&G.submit_tid, NULL, submitter, NULL);
    pthread_create(&G.respond_tid, NULL, responder, NULL);
    G.pump_started = true;
    pthread_mutex_unlock(&G.lock);
    pthread_create(&t, NULL, gadget_replier, NULL);
    pthread_create(&t, NULL, liveness, NULL);
    pthread_create(&t, NULL, shutdown_watcher, &signals);
    for (;;) {
        struct usb_functionfs_event ev;
        ssize_t n = read(G.ep0, &ev, sizeof ev);
        if (n < 0 && errno == EINTR) continue;
        if (n != (ssize_t)sizeof ev) die("ep0 read failed: %s", n < 0 ? strerror(errno) : "EOF");
        pthread_mutex_lock(&G.lock);
        switch (ev.type) {
        case FUNCTIONFS_BIND:
        case FUNCTIONFS_ENABLE:
        case FUNCTIONFS_RESUME:
            G.backoff_ms = 1000;
            if (G.link == LINK_OFFLINE) set_link(LINK_READY, "ep0 enable");
            break;
        case FUNCTIONFS_DISABLE: link_fault("ep0 disable", false); break;
        case FUNCTIONFS_UNBIND: link_fault("ep0 unbind", false); break;
        case FUNCTIONFS_SUSPEND:
            if (G.link == LINK_ONLINE) set_link(LINK_READY, "ep0 suspend");
            break;
        default: break;
        }
        pthread_mutex_unlock(&G.lock);
        if (ev.type == FUNCTIONFS_SETUP) handle_setup(&ev.u.setup);
    }
}

int gadget_child_main(const struct stage0_config *cfg, const char *ffs_dir) {
    struct gadget_endpoints eps;
    eps.ep0 = open_ep(ffs_dir, 0);
    if (eps.ep0 < 0) die("open %s/ep0: %s", ffs_dir, strerror(errno));
    uint8_t blob[512];
    int len = ffs_build_descriptors(blob, sizeof blob, cfg->mimic_fastboot);
    if (len < 0 || write(eps.ep0, blob, (size_t)len) != len)
        die("FunctionFS descriptors rejected: %s", strerror(errno));
    len = ffs_build_strings(blob, sizeof blob);
    if (len < 0 || write(eps.ep0, blob, (size_t)len) != len)
        die("FunctionFS strings rejected: %s", strerror(errno));
    eps.ep_req = open_ep(ffs_dir, 1);
    eps.ep_resp = open_ep(ffs_dir, 2);
    eps.ep_bulk_in = open_ep(ffs_dir, 3);
    eps.ep_bulk_out = open_ep(ffs_dir, 4);
    if (eps.ep_req < 0 || eps.ep_resp < 0 || eps.ep_bulk_in < 0 || eps.ep_bulk_out < 0)
        die("cannot open FunctionFS endpoints: %s", strerror(errno));
    gadget_serve(cfg, &eps, &nbd_backend);
}
