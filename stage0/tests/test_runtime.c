/* Host-testable parts of the PID1 runtime: settings, machine-id, FunctionFS blobs,
 * module names, the NBD readiness check. */
#include "../src/config.h"
#include "../src/creds.h"
#include "../src/ffs_desc.h"
#include "../src/kmsg_forward.h"
#include "../src/modules.h"
#include "../src/ostree.h"
#include "../src/rootfs.h"
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_parsers(void) {
    bool b = false;
    CHECK(parse_bool("yes", &b) == 0 && b);
    CHECK(parse_bool("off", &b) == 0 && !b);
    CHECK(parse_bool("True", &b) == -1); /* case-sensitive */
    uint64_t n = 0;
    CHECK(parse_u64("0x18d1", true, &n) == 0 && n == 0x18d1);
    CHECK(parse_u64("0x18d1", false, &n) == -1);
    CHECK(parse_u64("1048576", false, &n) == 0 && n == 1048576);
    CHECK(parse_u64("12k", false, &n) == -1);
    CHECK(parse_u64("", false, &n) == -1);
}

static void test_config_dir(void) {
    char dir[] = "/tmp/stage0-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "stage0.rootfs", "ext4\n");
    put(dir, "stage0.serial", "  S6MQ123456 \n");
    put(dir, "smoo.vendor", "0x18d1\n");
    put(dir, "smoo.product_id", "0x4ee0\n");
    put(dir, "smoo.max_io", "65536\n");          /* alias loses ... */
    put(dir, "smoo.max_io_bytes", "131072\n");   /* ... to the canonical key */
    put(dir, "smoo.acm", "\n");                  /* empty value means 1 */
    put(dir, "stage0.yeetfstab", "maybe\n");     /* invalid: keeps default true */
    put(dir, "firstboot.locale", "en_US.UTF-8\n");
    struct stage0_config c;
    config_defaults(&c);
    CHECK(c.mimic_fastboot && c.queue_count == 1 && c.queue_depth == 16);
    CHECK(config_load(dir, &c) == 0);
    CHECK(!strcmp(c.rootfs, "ext4"));
    CHECK(!strcmp(c.serial, "S6MQ123456") && c.serial_set);
    CHECK(c.vendor == 0x18d1 && c.product == 0x4ee0);
    CHECK(c.max_io_bytes == 131072);
    CHECK(c.acm && c.yeetfstab);
    CHECK(c.firstboot_count == 1 && !strcmp(c.firstboot_value[0], "en_US.UTF-8"));
    put(dir, "stage0.rootfs", "xfs\n");
    config_defaults(&c);
    CHECK(config_load(dir, &c) == 0 && c.rootfs[0] == 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    config_defaults(&c);
    CHECK(config_load("/nonexistent/stage0", &c) < 0);
}

/* btrfs roots (project addition): stage0.rootfs=btrfs and the stage0.subvol key, and the
 * mount data each filesystem gets. */
static void test_rootfs_mount_data(void) {
    struct stage0_config c;
    unsigned seen = 0;
    char data[ROOT_MOUNT_DATA_MAX];
    config_defaults(&c);
    config_apply(&c, "stage0.rootfs", "erofs", &seen);
    CHECK(rootfs_mount_data(&c, 1, data, sizeof data) == 0 && !strcmp(data, ""));
    config_apply(&c, "stage0.rootfs", "ext4", &seen);
    CHECK(rootfs_mount_data(&c, 1, data, sizeof data) == 0 && !strcmp(data, "noload"));
    config_apply(&c, "stage0.rootfs", "btrfs", &seen);
    CHECK(!strcmp(c.rootfs, "btrfs"));
    CHECK(rootfs_mount_data(&c, 1, data, sizeof data) == 0 && !strcmp(data, "rescue=nologreplay"));
    CHECK(rootfs_mount_data(&c, 0, data, sizeof data) == 0 && !strcmp(data, ""));
    config_apply(&c, "stage0.subvol", "root", &seen);
    CHECK(rootfs_mount_data(&c, 1, data, sizeof data) == 0 &&
          !strcmp(data, "subvol=root,rescue=nologreplay"));
    CHECK(rootfs_mount_data(&c, 0, data, sizeof data) == 0 && !strcmp(data, "subvol=root"));
    CHECK(rootfs_mount_data(&c, 1, data, 8) == -1 && errno == ENAMETOOLONG);
    /* A comma would smuggle in another mount option; spaces and control bytes are typos. */
    static const char *bad[] = {"root,ro", "", "a b", "x\ty"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        config_apply(&c, "stage0.subvol", bad[i], &seen);
        CHECK(!strcmp(c.subvol, "root"));
    }
    config_apply(&c, "stage0.subvol", "@/.snapshots/1/snapshot", &seen);
    CHECK(!strcmp(c.subvol, "@/.snapshots/1/snapshot"));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    config_apply(&c, "stage0.subvol", longname, &seen);
    CHECK(!strcmp(c.subvol, "@/.snapshots/1/snapshot"));
}

/* Live media (project addition): a squashfs served root, and stage0.loop/loop_rootfs for a
 * root image inside it. Loop paths stay inside the served filesystem. */
static void test_live_media_keys(void) {
    struct stage0_config c;
    unsigned seen = 0;
    char data[ROOT_MOUNT_DATA_MAX];
    config_defaults(&c);
    config_apply(&c, "stage0.rootfs", "squashfs", &seen);
    CHECK(!strcmp(c.rootfs, "squashfs"));
    CHECK(rootfs_mount_data(&c, 1, data, sizeof data) == 0 && !strcmp(data, ""));
    CHECK(c.loop[0] == 0 && c.loop_rootfs[0] == 0);
    config_apply(&c, "stage0.loop", "LiveOS/rootfs.img", &seen);
    config_apply(&c, "stage0.loop_rootfs", "ext4", &seen);
    CHECK(!strcmp(c.loop, "LiveOS/rootfs.img") && !strcmp(c.loop_rootfs, "ext4"));
    static const char *bad[] = {"/LiveOS/rootfs.img", "../etc/shadow", "LiveOS/../../x", "..",
                                "a/..", "", "bad\nname", "a:/b", "a::b", "a:", ":a", "a:../b",
                                "a/", "a//b", "1:2:3:4:5:6:7:8:9"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        config_apply(&c, "stage0.loop", bad[i], &seen);
        CHECK(!strcmp(c.loop, "LiveOS/rootfs.img"));
    }
    config_apply(&c, "stage0.loop", "a/..b/.c", &seen);  /* dots inside names are fine */
    CHECK(!strcmp(c.loop, "a/..b/.c"));
    config_apply(&c, "stage0.loop", "casper/b.squashfs:casper/a.squashfs", &seen);
    CHECK(!strcmp(c.loop, "casper/b.squashfs:casper/a.squashfs"));
    config_apply(&c, "stage0.loop", "1:2:3:4:5:6:7:8", &seen);
    CHECK(!strcmp(c.loop, "1:2:3:4:5:6:7:8"));
    config_apply(&c, "stage0.loop_rootfs", "xfs", &seen);
    CHECK(!strcmp(c.loop_rootfs, "ext4"));
    CHECK(rootfs_kind_valid("erofs") && rootfs_kind_valid("iso9660") && !rootfs_kind_valid("vfat"));
}

/* stage0.on_failure (project addition): bootloader by default; anything unknown warns and
 * keeps the default, so a typo never turns a failed boot into a hung phone. */
static void test_on_failure(void) {
    struct stage0_config c;
    unsigned seen = 0;
    config_defaults(&c);
    CHECK(c.on_failure == FAILURE_BOOTLOADER);
    config_apply(&c, "stage0.on_failure", "panic", &seen);
    CHECK(c.on_failure == FAILURE_PANIC);
    config_apply(&c, "stage0.on_failure", "restart", &seen);
    CHECK(c.on_failure == FAILURE_RESTART);
    config_apply(&c, "stage0.on_failure", "bootloader", &seen);
    CHECK(c.on_failure == FAILURE_BOOTLOADER);
    const char *bad[] = {"", "Bootloader", "reboot", "1", "panic "};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_apply(&c, "stage0.on_failure", "panic", &seen);
        config_apply(&c, "stage0.on_failure", bad[i], &seen);
        CHECK(c.on_failure == FAILURE_PANIC);
    }
}

/* smoo.host_timeout (project addition): seconds, 1..a day; anything else warns and keeps
 * the spec's 30 s, like every other invalid value. */
static void test_host_timeout(void) {
    struct stage0_config c;
    unsigned seen = 0;
    config_defaults(&c);
    CHECK(c.host_timeout_s == 30);
    config_apply(&c, "smoo.host_timeout", "120", &seen);
    CHECK(c.host_timeout_s == 120);
    config_apply(&c, "smoo.host_timeout", "86400", &seen);
    CHECK(c.host_timeout_s == 86400);
    static const char *bad[] = {"0", "-5", "86401", "2m", "0x78", "", "4294967416", "1.5"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        config_defaults(&c);
        config_apply(&c, "smoo.host_timeout", bad[i], &seen);
        CHECK(c.host_timeout_s == 30);
    }
    /* Through the loader: a file per key, value trimmed. */
    char dir[] = "/tmp/stage0-timeout-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "stage0.rootfs", "erofs\n");
    put(dir, "smoo.host_timeout", " 45 \n");
    config_defaults(&c);
    CHECK(config_load(dir, &c) == 0 && c.host_timeout_s == 45);
    put(dir, "smoo.host_timeout", "soon\n");
    config_defaults(&c);
    CHECK(config_load(dir, &c) == 0 && c.host_timeout_s == 30);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void test_machine_id(void) {
    char id[33];
    machine_id_from_serial("0123456789abcdef", id);
    CHECK(!strcmp(id, "1978342fbe39c8201978352fbe39c9d3"));
    machine_id_from_serial("S6MQ123456", id);
    CHECK(!strcmp(id, "f8246533eb27abf0f8246633eb27ada3"));
}

static void test_ffs_blobs(void) {
    unsigned char buf[512];
    int len = ffs_build_descriptors(buf, sizeof buf, true);
    /* header 24 + fs/hs (9 + 4*7) each + ss (9 + 4*(7+6)) */
    CHECK(len == 24 + 37 + 37 + 61);
    CHECK(buf[4] == (unsigned char)len && buf[5] == 0);
    CHECK(buf[24 + 5] == 0xFF && buf[24 + 6] == 0x42 && buf[24 + 7] == 0x03);
    /* first endpoint: interrupt IN, declared first */
    CHECK(buf[24 + 9 + 2] == 0x81 && buf[24 + 9 + 3] == 3);
    /* high-speed interrupt endpoint: 1024 bytes, bInterval 1 */
    CHECK(buf[24 + 37 + 9 + 4] == 0x00 && buf[24 + 37 + 9 + 5] == 0x04 && buf[24 + 37 + 9 + 6] == 1);
    /* bulk OUT (fourth endpoint): 512 at high speed, 1024 at SuperSpeed */
    CHECK(buf[24 + 37 + 9 + 21 + 2] == 0x04 && buf[24 + 37 + 9 + 21 + 4] == 0x00 &&
          buf[24 + 37 + 9 + 21 + 5] == 0x02);
    CHECK(buf[24 + 74 + 9 + 39 + 2] == 0x04 && buf[24 + 74 + 9 + 39 + 4] == 0x00 &&
          buf[24 + 74 + 9 + 39 + 5] == 0x04);
    len = ffs_build_descriptors(buf, sizeof buf, false);
    CHECK(buf[24 + 6] == 0x53 && buf[24 + 7] == 0x4D);
    CHECK(ffs_build_descriptors(buf, 100, false) == -1);
    len = ffs_build_strings(buf, sizeof buf);
    CHECK(len == 23 && !memcmp(buf + 18, "smoo", 5) && buf[16] == 0x09 && buf[17] == 0x04);
}

static void test_module_names(void) {
    char name[64];
    module_name_of("kernel/drivers/usb/dwc3/dwc3-qcom.ko.zst", name, sizeof name);
    CHECK(!strcmp(name, "dwc3_qcom"));
    module_name_of("kernel/fs/ext4/ext4.ko", name, sizeof name);
    CHECK(!strcmp(name, "ext4"));
    module_name_of("nbd.ko.xz", name, sizeof name);
    CHECK(!strcmp(name, "nbd"));
}

static void test_nbd_ready(void) {
    char dir[] = "/tmp/stage0-nbd-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "size", "0\n");
    CHECK(!nbd_ready(dir));
    put(dir, "pid", "123\n");
    CHECK(!nbd_ready(dir)); /* connected but no size yet */
    put(dir, "size", "2048\n");
    CHECK(nbd_ready(dir));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void test_kmsg_format(void) {
    char out[128];
    const char rec[] = "6,1234,1234567,-;usb 1-1: new device\n SUBSYSTEM=usb\n";
    int n = kmsg_format(rec, sizeof rec - 1, out, sizeof out);
    CHECK(n > 0 && !strcmp(out, "[    1.234567] usb 1-1: new device\r\n"));
    const char big[] = "4,1,98765432100,-;x";
    n = kmsg_format(big, sizeof big - 1, out, sizeof out);
    CHECK(n > 0 && !strcmp(out, "[98765.432100] x\r\n"));
    CHECK(kmsg_format("garbage", 7, out, sizeof out) == -1);
    CHECK(kmsg_format(rec, sizeof rec - 1, out, 10) == -1);
}

static void test_ostree(void) {
    char out[512];
    CHECK(ostree_normalise(" /ostree//boot.1/./fedora/abc/0/ \n", out, sizeof out) == 0);
    CHECK(!strcmp(out, "/ostree/boot.1/fedora/abc/0"));
    CHECK(ostree_normalise("/ostree/../etc", out, sizeof out) == -EINVAL);
    CHECK(ostree_normalise(" / ./ ", out, sizeof out) == -EINVAL);

    char root[] = "/tmp/stage0-ostree-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p ostree/deploy/fedora/deploy/abc.0/boot ostree/deploy/fedora/var "
             "ostree/boot.1.1/fedora/abc boot etc && ln -s boot.1.1 ostree/boot.1 && "
             "ln -s ../../../deploy/fedora/deploy/abc.0 ostree/boot.1.1/fedora/abc/0 && "
             "ln -s /ostree/deploy/fedora/deploy/abc.0 absolute && "
             "ln -s ../../../../../../etc ostree/boot.1.1/fedora/abc/escape && "
             "ln -s loop loop && ln -s loader.1 boot/loader && mkdir boot/loader.1",
             root);
    CHECK(system(cmd) == 0);
    CHECK(resolve_in_root(root, "/ostree/boot.1/fedora/abc/0", out, sizeof out) == 0);
    CHECK(!strcmp(out, "/ostree/deploy/fedora/deploy/abc.0"));
    CHECK(resolve_in_root(root, "/absolute", out, sizeof out) == 0);
    CHECK(!strcmp(out, "/ostree/deploy/fedora/deploy/abc.0")); /* absolute restarts at root */
    CHECK(resolve_in_root(root, "/ostree/boot.1/fedora/abc/escape", out, sizeof out) == 0);
    CHECK(!strcmp(out, "/etc")); /* ".." never leaves the root */
    CHECK(resolve_in_root(root, "/loop", out, sizeof out) == -ELOOP);
    CHECK(resolve_in_root(root, "/missing/x", out, sizeof out) == -ENOENT);

    struct ostree_plan plan;
    CHECK(ostree_plan(root, "/ostree/boot.1/fedora/abc/0", &plan) == 0);
    CHECK(!strcmp(plan.deploy, "/ostree/deploy/fedora/deploy/abc.0"));
    CHECK(!strcmp(plan.stateroot_var, "/ostree/deploy/fedora/var"));
    CHECK(plan.bind_boot);
    CHECK(ostree_plan(root, "/ostree/boot.1/fedora/abc/escape", &plan) == -EINVAL);
    CHECK(ostree_plan(root, "/ostree/deploy/fedora/deploy/abc.0", &plan) == -EINVAL); /* no link */
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
}

int main(void) {
    test_parsers();
    test_config_dir();
    test_host_timeout();
    test_on_failure();
    test_rootfs_mount_data();
    test_live_media_keys();
    test_machine_id();
    test_ffs_blobs();
    test_module_names();
    test_nbd_ready();
    test_kmsg_format();
    test_ostree();
    CHECK(is_mountpoint("/proc"));
    CHECK(!is_mountpoint("/proc/self"));
    return check_report("test_runtime");
}
