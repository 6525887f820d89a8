/* The gadget child's NBD side (stage0.md §11): requests from the socketpair into the
 * bridge, replies back, and the export's start and stop. Shares G with gadget.c.
 *
 * Threads: nbd-read (one per export) and reply, which writes the replies the responder
 * completes, so the responder is back on interrupt OUT at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gadget_state.h"
#include "io_trace.h"
#include "log.h"

void gadget_flush_replies(void) {
    for (;;) {
        struct bridge_reply reply;
        pthread_mutex_lock(&G.lock);
        bool have = G.have_export && bridge_pop_reply(&G.bridge, &reply);
        unsigned gen = G.export_gen;
        pthread_mutex_unlock(&G.lock);
        if (!have) return;
        uint8_t header[NBD_WIRE_REPLY_LEN];
        nbd_encode_reply(header, reply.error, reply.handle);
        pthread_mutex_lock(&G.sock_write);
        /* Several threads write replies; one popped before its export stopped must not
         * reach the next export's socket (often the same fd number). */
        if (gen == __atomic_load_n(&G.export_gen, __ATOMIC_SEQ_CST) &&
            (gadget_io_exact(G.sock, header, sizeof header, false, NULL) ||
             (reply.data_len && gadget_io_exact(G.sock, reply.data, reply.data_len, false, NULL))))
            log_err("NBD reply for handle %llu not written", (unsigned long long)reply.handle);
        pthread_mutex_unlock(&G.sock_write);
        io_trace_nbd_out(reply.handle, reply.error);
        pthread_mutex_lock(&G.lock); /* a lease may still hold the op (bridge.h) */
        bridge_free_reply(&reply);
        pthread_mutex_unlock(&G.lock);
    }
}

void gadget_wake_replier(void) {
    G.replies_pending = true;
    pthread_cond_signal(&G.replies_ready);
}

/* Writes NBD replies while the responder already waits for the next Response: a reply
 * (up to max_io_bytes into the socketpair) no longer holds interrupt OUT unread. */
void *gadget_replier(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&G.lock);
        while (!G.replies_pending) pthread_cond_wait(&G.replies_ready, &G.lock);
        G.replies_pending = false;
        pthread_mutex_unlock(&G.lock);
        gadget_flush_replies();
    }
    return NULL;
}

static void *nbd_reader(void *arg) {
    (void)arg;
    for (;;) {
        uint8_t header[NBD_WIRE_REQUEST_LEN];
        struct nbd_wire_request rq;
        if (gadget_io_exact(G.sock, header, sizeof header, true, NULL)) break;
        int64_t in_us = io_trace_enabled ? io_trace_now_us() : 0;
        if (nbd_decode_request(header, sizeof header, &rq)) {
            log_err("NBD request with a bad magic; stopping the bridge");
            break;
        }
        io_trace_nbd_in(rq.handle, rq.from, rq.len, in_us);
        uint8_t *payload = NULL;
        if ((rq.type & 0xffff) == NBDW_WRITE && rq.len) {
            payload = malloc(rq.len);
            if (!payload || gadget_io_exact(G.sock, payload, rq.len, true, NULL)) {
                free(payload);
                break;
            }
        }
        pthread_mutex_lock(&G.lock);
        int rc = bridge_accept(&G.bridge, rq.type, rq.handle, rq.from, rq.len, payload);
        if (rc == -EPROTO) bridge_fail_all(&G.bridge, SMOO_ESHUTDOWN); /* NBD_CMD_DISC */
        pthread_cond_broadcast(&G.wake);
        pthread_mutex_unlock(&G.lock);
        free(payload);
        gadget_flush_replies();
        if (rc == -EPROTO) break;
    }
    log_info("NBD reader stopped");
    return NULL;
}

int gadget_start_export(const struct smoo_export *e) {
    long page = sysconf(_SC_PAGESIZE);
    if (e->block_size > (uint64_t)page || e->size_bytes == 0) {
        log_err("export %08x: block size %u / size %llu not usable by NBD", e->export_id,
                e->block_size, (unsigned long long)e->size_bytes);
        return -EINVAL;
    }
    unsigned capacity = (unsigned)G.cfg->queue_count * G.cfg->queue_depth;
    if (bridge_init(&G.bridge, e, G.cfg->max_io_bytes, capacity)) return -EINVAL;
    int rc = G.backend->attach(e, G.cfg->max_io_bytes, &G.sock);
    if (rc) return rc;
    G.have_export = true;
    pthread_create(&G.reader, NULL, nbd_reader, NULL);
    log_info("export %08x served as /dev/nbd0 (%u-byte blocks, %llu bytes)", e->export_id,
             e->block_size, (unsigned long long)e->size_bytes);
    return 0;
}

/* ENODEV for everything, then disconnect. */
void gadget_stop_export_locked(void) {
    bridge_fail_all(&G.bridge, SMOO_ENODEV);
    pthread_mutex_unlock(&G.lock);
    gadget_flush_replies();
    pthread_mutex_lock(&G.sock_write); /* no reply is being written; none is from now on */
    __atomic_add_fetch(&G.export_gen, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&G.sock_write);
    G.backend->detach();
    shutdown(G.sock, SHUT_RDWR);
    pthread_join(G.reader, NULL);
    close(G.sock);
    G.sock = -1;
    pthread_mutex_lock(&G.lock);
    G.have_export = false;
    bridge_destroy(&G.bridge);
    __atomic_add_fetch(&G.export_gen, 1, __ATOMIC_SEQ_CST); /* and any popped meanwhile */
}

