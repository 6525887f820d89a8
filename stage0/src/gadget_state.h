/* The gadget child's shared state, private to gadget.c (the USB side: ep0, the pump, the
 * link controller) and gadget_nbd.c (the NBD side: requests in, replies out). One mutex,
 * G.lock, guards the bridge and the link state; I/O happens outside it. */
#ifndef STAGE0_GADGET_STATE_H
#define STAGE0_GADGET_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge.h"
#include "config.h"
#include "nbd_dev.h"
#include "smoo_proto.h"

enum link_state { LINK_OFFLINE, LINK_READY, LINK_ONLINE };
struct gadget_state {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t replies_ready; /* the responder has completed something: reply */
    bool replies_pending;
    pthread_mutex_t sock_write;
    const struct stage0_config *cfg;
    int ep0, ep_req, ep_resp, ep_bulk_in, ep_bulk_out;
    uint64_t session_id;
    enum link_state link;
    int64_t last_activity_ms, reopen_not_before_ms, backoff_ms;
    bool have_export;
    struct bridge bridge;
    const struct block_backend *backend;
    int sock;
    unsigned export_gen; /* bumped when an export stops: its popped replies are dropped */
    pthread_t reader;
    /* Pump abort (smoo.md §7.2 "fault the I/O pump"): every fault or session boundary
     * bumps fault_gen and kicks the pump threads with SIGUSR1, so a transfer blocked on a
     * host that is gone (e.g. a half-received READ payload) is dequeued, not waited on. */
    pthread_t submit_tid, respond_tid;
    bool pump_started;
    unsigned fault_gen;
    bool resp_in_bulk, sub_in_write;
    unsigned resp_bulk_gen, sub_write_gen;
};

extern struct gadget_state G;

/* gadget.c */
/* Exact-length I/O. With `gen` (endpoint I/O), -ECANCELED once the pump was faulted after
 * *gen; without (the NBD socket, which a pump fault does not end), a SIGUSR1 kick only
 * restarts the read or write. */
int gadget_io_exact(int fd, void *buf, size_t len, bool reading, const unsigned *gen);

/* gadget_nbd.c */
/* Write every reply the bridge has ready (any thread; replies may go out in any order). */
void gadget_flush_replies(void);
/* The responder completed something: the reply thread writes it. Callers hold G.lock. */
void gadget_wake_replier(void);
void *gadget_replier(void *arg);
int gadget_start_export(const struct smoo_export *e);
/* Export removed or changed (§11.9). Called and returns with G.lock held. */
void gadget_stop_export_locked(void);

#endif
