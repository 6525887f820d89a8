/* /dev/nbd0 setup and teardown; see nbd_dev.h. */
#include "nbd_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nbd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static int nbd_fd = -1, kernel_sock = -1;
static pthread_t doit_thread;
static int doit_running;

static void *doit(void *arg) {
    (void)arg;
    /* Blocks for as long as the device is connected (§11.2). */
    if (ioctl(nbd_fd, NBD_DO_IT) < 0) log_warn("NBD_DO_IT: %s", strerror(errno));
    ioctl(nbd_fd, NBD_CLEAR_SOCK);
    log_info("/dev/nbd0 disconnected");
    return NULL;
}

static int attach(const struct smoo_export *e, uint32_t max_io_bytes, int *gadget_sock) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)) return -errno;
    kernel_sock = pair[1];
    nbd_fd = open("/dev/nbd0", O_RDWR | O_CLOEXEC);
    /* Read-only, no FLUSH/TRIM/FUA advertised; flags must precede DO_IT. No timeout is
     * set: the gadget never times out an I/O (§11.8). */
    if (nbd_fd < 0 || ioctl(nbd_fd, NBD_SET_BLKSIZE, (unsigned long)e->block_size) < 0 ||
        ioctl(nbd_fd, NBD_SET_SIZE_BLOCKS, (unsigned long)(e->size_bytes / e->block_size)) < 0 ||
        ioctl(nbd_fd, NBD_SET_FLAGS, (unsigned long)(NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY)) < 0 ||
        ioctl(nbd_fd, NBD_SET_SOCK, (unsigned long)kernel_sock) < 0) {
        int err = errno;
        log_err("/dev/nbd0 setup: %s", strerror(err));
        close(pair[0]);
        close(pair[1]);
        if (nbd_fd >= 0) close(nbd_fd);
        nbd_fd = kernel_sock = -1;
        return -err;
    }
    *gadget_sock = pair[0];
    doit_running = pthread_create(&doit_thread, NULL, doit, NULL) == 0;
    /* Keep kernel requests within one smoo request where possible (§11.5 step 9). */
    char text[32];
    snprintf(text, sizeof text, "%u", max_io_bytes / 1024);
    int fd = open("/sys/block/nbd0/queue/max_sectors_kb", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) log_warn("max_sectors_kb not set");
    if (fd >= 0) close(fd);
    return 0;
}

static void detach(void) {
    if (nbd_fd < 0) return;
    ioctl(nbd_fd, NBD_DISCONNECT);
    /* NBD_DO_IT returns only once the kernel's receiver sees the socket end; the gadget's
     * end may still be open (shutdown path), so end it here. Callers have replied to
     * everything already, so nothing in flight is lost. */
    shutdown(kernel_sock, SHUT_RDWR);
    if (doit_running) pthread_join(doit_thread, NULL);
    doit_running = 0;
    close(kernel_sock);
    close(nbd_fd);
    nbd_fd = kernel_sock = -1;
}

const struct block_backend nbd_backend = {attach, detach};
