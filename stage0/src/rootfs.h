/* Mounting the served rootfs, switching root and exec'ing init (stage0.md §10). */
#ifndef STAGE0_ROOTFS_H
#define STAGE0_ROOTFS_H

#include "config.h"

#define ROOT_DEVICE "/dev/nbd0"

#include <stddef.h>

#define ROOT_MOUNT_DATA_MAX 320
/* Room for the overlay lowerdir of stage0.loop images: "/looproot/N" each. */
#define LOOP_LOWERDIR_MAX 256

/* The data string for mounting the served rootfs (§10 step 2): "noload" for ext4; for
 * btrfs "subvol=<stage0.subvol>" and, with btrfs_rescue, "rescue=nologreplay"; empty for
 * erofs. Returns 0, or -1 with errno ENAMETOOLONG if it does not fit. */
int rootfs_mount_data(const struct stage0_config *cfg, int btrfs_rescue, char *out, size_t size);
/* Steps 1-4: read-only lower, tmpfs upper, overlay on /newroot. Dies on failure. */
void rootfs_assemble(const struct stage0_config *cfg);
/* Steps 5-13 (without OSTree): switch root and exec the first init found. Never returns. */
void rootfs_switch_and_exec(const struct stage0_config *cfg) __attribute__((noreturn));
/* Whether path is a mount point according to /proc/self/mountinfo. */
int is_mountpoint(const char *path);
/* /sys/block/nbd0/pid exists and its size is non-zero (stage0.md §11.10). */
int nbd_ready(const char *sys_block_dir);

#endif
