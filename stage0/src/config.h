/* /etc/stage0/<key> settings (stage0.md §5): one file per key, trimmed value. */
#ifndef STAGE0_CONFIG_H
#define STAGE0_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define CONFIG_MAX_FIRSTBOOT 8
#define LOOP_MAX_IMAGES 8                  /* stage0.loop: images stacked at most */
#define CONFIG_HOST_TIMEOUT_DEFAULT 30u    /* stage0.md §8.2 step 13, §12 */
#define CONFIG_HOST_TIMEOUT_MAX 86400u     /* a day: anything longer is a typo */

/* stage0.on_failure (project addition): what PID1 does once a fatal error is logged. */
enum failure_action {
    FAILURE_BOOTLOADER, /* default: reboot(RESTART2, "bootloader"), else a plain restart */
    FAILURE_RESTART,    /* a plain restart */
    FAILURE_PANIC,      /* exit, so the kernel panics (the spec's behaviour, §8.3) */
};

struct stage0_config {
    char rootfs[16];   /* "erofs", "ext4", "btrfs" or "squashfs"; empty when missing/invalid */
    /* stage0.subvol (project addition): the btrfs subvolume that is the root, e.g. "root"
     * (Fedora); empty = the filesystem's default subvolume. */
    char subvol[256];
    /* stage0.loop + stage0.loop_rootfs (project addition, live media): the root is an image
     * file inside the served filesystem (Fedora's LiveOS/rootfs.img inside squashfs), loop-
     * mounted read-only, or a ':'-separated stack of them, top first (Ubuntu's layered
     * squashfs inside the ISO); paths are relative to the served filesystem's root. */
    char loop[256];
    char loop_rootfs[16];
    char serial[128];  /* default "0001" */
    char ostree[256];
    char log_filter[64];
    bool serial_set;
    bool fb, yeetfstab, acm, brk, mimic_fastboot;
    uint16_t queue_count, queue_depth;
    uint32_t max_io_bytes;
    uint16_t vendor, product;
    /* smoo.host_timeout (project addition): seconds PID1 waits for the host to find the
     * gadget, finish the smoo handshake and start /dev/nbd0 (stage0.md §8.2 step 13). */
    uint32_t host_timeout_s;
    enum failure_action on_failure;
    unsigned firstboot_count;
    char firstboot_key[CONFIG_MAX_FIRSTBOOT][48];
    char firstboot_value[CONFIG_MAX_FIRSTBOOT][64];
};

void config_defaults(struct stage0_config *cfg);
/* Whether name is a filesystem the served (or loop-mounted) root may be. */
bool rootfs_kind_valid(const char *name);
/* Applies one key/value pair; unknown keys are ignored, invalid values warn and keep the
 * default. `canonical_seen` tracks aliases so the canonical key wins (project decision). */
void config_apply(struct stage0_config *cfg, const char *key, const char *value,
                  unsigned *canonical_seen);
/* Reads every regular file in dir, in sorted order. Returns 0, or -errno if dir is missing. */
int config_load(const char *dir, struct stage0_config *cfg);

/* Value parsers; return 0 on success, -1 on an invalid value. */
int parse_bool(const char *value, bool *out);
int parse_u64(const char *value, bool allow_hex, uint64_t *out);
/* "bootloader", "restart" or "panic"; returns 0, or -1 on anything else. */
int parse_failure_action(const char *value, enum failure_action *out);

#endif
