/* Rootfs assembly and switch_root; see rootfs.h. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "log.h"
#include "ostree.h"

static void need(int ok, const char *what) {
    if (!ok) die("%s: %s", what, strerror(errno));
}

static int filesystem_supported(const char *name) {
    FILE *f = fopen("/proc/filesystems", "re");
    if (!f) return 0;
    char line[128];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *tab = strrchr(line, '\t');
        char *fs = tab ? tab + 1 : line;
        fs[strcspn(fs, "\n")] = 0;
        found = !strcmp(fs, name);
    }
    fclose(f);
    return found;
}

static int mount_data(const char *kind, const char *subvol, int btrfs_rescue, char *out,
                      size_t size) {
    int n = 0;
    if (!strcmp(kind, "ext4")) {
        n = snprintf(out, size, "noload"); /* no journal replay on a read-only device */
    } else if (!strcmp(kind, "btrfs")) {
        /* The served device is read-only: a dirty log could not be replayed anyway. */
        const char *sep = subvol[0] && btrfs_rescue ? "," : "";
        n = snprintf(out, size, "%s%s%s%s", subvol[0] ? "subvol=" : "", subvol, sep,
                     btrfs_rescue ? "rescue=nologreplay" : "");
    } else if (size) {
        out[0] = 0;
    }
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int rootfs_mount_data(const struct stage0_config *cfg, int btrfs_rescue, char *out, size_t size) {
    return mount_data(cfg->rootfs, cfg->subvol, btrfs_rescue, out, size);
}

/* Attach image read-only to a free loop device; returns its /dev path in dev. */
static int loop_attach(const char *image, char *dev, size_t size) {
    int img = open(image, O_RDONLY | O_CLOEXEC);
    if (img < 0) return -1;
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    int nr = ctl < 0 ? -1 : ioctl(ctl, LOOP_CTL_GET_FREE);
    int saved = errno;
    if (ctl >= 0) close(ctl);
    if (nr < 0) {
        close(img);
        errno = saved;
        return -1;
    }
    snprintf(dev, size, "/dev/loop%d", nr);
    int lo = -1;
    for (int tries = 0; lo < 0 && tries < 50; tries++) { /* devtmpfs adds the node */
        lo = open(dev, O_RDONLY | O_CLOEXEC);
        if (lo < 0) usleep(20000);
    }
    int rc = -1;
    if (lo >= 0) {
        struct loop_config lc;
        memset(&lc, 0, sizeof lc);
        lc.fd = (unsigned)img;
        lc.info.lo_flags = LO_FLAGS_READ_ONLY;
        rc = ioctl(lo, LOOP_CONFIGURE, &lc);
        /* Before Linux 5.8: LOOP_SET_FD; a read-only backing fd makes a read-only device. */
        if (rc && (errno == EINVAL || errno == ENOTTY)) rc = ioctl(lo, LOOP_SET_FD, img);
        saved = errno;
        close(lo);
    } else {
        saved = errno;
    }
    close(img);
    errno = saved;
    return rc;
}

/* stage0.loop: the root is an image inside the served filesystem (live media), or a stack
 * of them ("top:...:bottom", as overlayfs lowerdir takes them, e.g. Ubuntu's layered
 * casper squashfs images served inside their ISO). Each is attached read-only and mounted
 * on /looproot/<n>; returns the lowerdir string. */
static const char *mount_loop_roots(const struct stage0_config *cfg) {
    static char lowerdir[LOOP_LOWERDIR_MAX];
    if (!cfg->loop_rootfs[0]) die("stage0.loop is set but stage0.loop_rootfs is not");
    char images[sizeof cfg->loop];
    snprintf(images, sizeof images, "%s", cfg->loop);
    mkdir("/looproot", 0755);
    lowerdir[0] = 0;
    unsigned n = 0;
    for (char *save = NULL, *path = strtok_r(images, ":", &save); path;
         path = strtok_r(NULL, ":", &save), n++) {
        char image[300], dev[32], target[32], data[ROOT_MOUNT_DATA_MAX];
        snprintf(image, sizeof image, "/lower/%s", path);
        snprintf(target, sizeof target, "/looproot/%u", n);
        mkdir(target, 0755);
        if (loop_attach(image, dev, sizeof dev)) die("loop-attach %s: %s", image, strerror(errno));
        need(mount_data(cfg->loop_rootfs, "", 0, data, sizeof data) == 0, "loop mount options");
        if (mount(dev, target, cfg->loop_rootfs, MS_RDONLY, data[0] ? data : NULL))
            die("mount %s (%s in %s) on %s: %s", dev, path, ROOT_DEVICE, target, strerror(errno));
        log_info("root image %s (%s) loop-mounted from %s", path, cfg->loop_rootfs, dev);
        size_t used = strlen(lowerdir);
        snprintf(lowerdir + used, sizeof lowerdir - used, "%s%s", used ? ":" : "", target);
    }
    return lowerdir;
}

void rootfs_assemble(const struct stage0_config *cfg) {
    mkdir("/lower", 0755);
    mkdir("/upper", 0755);
    mkdir("/newroot", 0755);
    char data[ROOT_MOUNT_DATA_MAX];
    int rc = rootfs_mount_data(cfg, 1, data, sizeof data);
    rc = rc ? rc : mount(ROOT_DEVICE, "/lower", cfg->rootfs, MS_RDONLY, data[0] ? data : NULL);
    if (rc && errno == EINVAL && !strcmp(cfg->rootfs, "btrfs")) {
        /* Kernels before 5.9 know no rescue= option; mount without it. */
        log_warn("btrfs rejected '%s', retrying without rescue=nologreplay", data);
        rc = rootfs_mount_data(cfg, 0, data, sizeof data);
        rc = rc ? rc : mount(ROOT_DEVICE, "/lower", cfg->rootfs, MS_RDONLY, data[0] ? data : NULL);
    }
    need(rc == 0, "mount " ROOT_DEVICE " on /lower");
    const char *lower = cfg->loop[0] ? mount_loop_roots(cfg) : "/lower";
    need(mount("tmpfs", "/upper", "tmpfs", 0, NULL) == 0, "mount tmpfs on /upper");
    need(mkdir("/upper/upper", 0755) == 0 || errno == EEXIST, "mkdir /upper/upper");
    need(mkdir("/upper/work", 0755) == 0 || errno == EEXIST, "mkdir /upper/work");
    if (!filesystem_supported("overlay")) die("overlay is not in /proc/filesystems");
    char options[LOOP_LOWERDIR_MAX + 64];
    snprintf(options, sizeof options, "lowerdir=%s,upperdir=/upper/upper,workdir=/upper/work",
             lower);
    need(mount("overlay", "/newroot", "overlay", 0, options) == 0, "mount overlay on /newroot");
    log_info("rootfs assembled: %s (%s%s%s, read-only) under a tmpfs overlay", ROOT_DEVICE,
             cfg->rootfs, cfg->subvol[0] ? ", subvolume " : "", cfg->subvol);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo octal. */
static void unescape(char *s) {
    char *out = s;
    for (char *in = s; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] && in[3]) {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = 0;
}

int is_mountpoint(const char *path) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return 0;
    char line[4096], point[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent major:minor root mount-point ... */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1) continue;
        unescape(point);
        found = !strcmp(point, path);
    }
    fclose(f);
    return found;
}

static void bind_into(const char *final_root, const char *src, const char *name, int recursive) {
    char target[1024];
    snprintf(target, sizeof target, "%s/%s", final_root, name);
    mkdir(target, 0755);
    if (is_mountpoint(target)) return; /* already there, e.g. inside an OSTree deployment */
    need(mount(src, target, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) == 0, target);
}

/* Symlink the first existing unit into a .wants directory of /run/systemd/system. */
static void want_unit(const char *wants, const char *unit, const char *const *dirs, int ndirs) {
    char source[256], dir[256], link[512];
    for (int i = 0; i < ndirs; i++) {
        snprintf(source, sizeof source, "%s/%s", dirs[i], unit);
        if (access(source, F_OK)) continue;
        snprintf(dir, sizeof dir, "/run/systemd/system/%s", wants);
        mkdir(dir, 0755);
        snprintf(link, sizeof link, "%s/%s", dir, unit);
        if (symlink(source, link) && errno != EEXIST)
            log_warn("cannot link %s: %s", link, strerror(errno));
        return;
    }
}

static void write_credentials(const struct stage0_config *cfg) {
    mkdir("/run/credstore", 0700);
    for (unsigned i = 0; i < cfg->firstboot_count; i++) {
        char path[128];
        snprintf(path, sizeof path, "/run/credstore/%s", cfg->firstboot_key[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0400);
        ssize_t len = (ssize_t)strlen(cfg->firstboot_value[i]);
        if (fd < 0 || write(fd, cfg->firstboot_value[i], (size_t)len) != len)
            die("credential %s: %s", path, strerror(errno)); /* fatal (§10 step 12) */
        close(fd);
    }
}

void rootfs_switch_and_exec(const struct stage0_config *cfg) {
    need(mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) == 0, "make mounts private");
    if (cfg->brk) { /* debug shell, only present if it came in through --augment (§5) */
        const char *tty = access("/dev/ttyMSM0", F_OK) == 0 ? "/dev/ttyMSM0" : "/dev/console";
        int fd = open(tty, O_RDWR | O_CLOEXEC);
        if (fd >= 0) { dup2(fd, 0); dup2(fd, 1); dup2(fd, 2); }
        char *argv[] = {"/bin/sh", "-i", NULL};
        execv("/bin/sh", argv);
        die("smoo.break: exec /bin/sh: %s", strerror(errno));
    }
    struct ostree_plan plan;
    char final_root[1024] = "/newroot";
    if (cfg->ostree[0]) {
        if (ostree_plan("/newroot", cfg->ostree, &plan)) die("ostree deployment unusable");
        snprintf(final_root, sizeof final_root, "/newroot%s", plan.deploy);
        log_info("ostree deployment %s", plan.deploy);
    }
    struct stat st;
    if (stat(final_root, &st) || !S_ISDIR(st.st_mode)) die("%s is not a directory", final_root);
    char fstab[1100];
    snprintf(fstab, sizeof fstab, "%s/etc/fstab", final_root);
    if (cfg->yeetfstab && unlink(fstab) && errno != ENOENT)
        log_warn("cannot delete /etc/fstab: %s", strerror(errno));
    bind_into(final_root, "/proc", "proc", 1);
    bind_into(final_root, "/sys", "sys", 1);
    bind_into(final_root, "/dev", "dev", 1);
    bind_into(final_root, "/run", "run", 0);
    need(chdir("/newroot") == 0, "chdir /newroot");
    need(mount("/newroot", "/", NULL, MS_MOVE, NULL) == 0, "move /newroot onto /");
    need(chroot(".") == 0, "chroot");
    need(chdir("/") == 0, "chdir /");
    if (cfg->ostree[0]) ostree_enter(&plan);
    if (access("/proc/self/mountinfo", R_OK))
        log_warn("/proc/self/mountinfo unreadable after switch_root");
    mkdir("/run/systemd", 0755);
    mkdir("/run/systemd/system", 0755);
    static const char *const lib_dirs[] = {"/lib/systemd/system", "/usr/lib/systemd/system"};
    static const char *const unit_dirs[] = {"/etc/systemd/system", "/usr/lib/systemd/system",
                                            "/lib/systemd/system"};
    if (cfg->acm) want_unit("getty.target.wants", "serial-getty@ttyGS0.service", lib_dirs, 2);
    want_unit("sysinit.target.wants", "plymouth-start.service", unit_dirs, 3);
    want_unit("sysinit.target.wants", "plymouth-read-write.service", unit_dirs, 3);
    write_machine_id(cfg->serial_set ? cfg->serial : NULL);
    write_credentials(cfg);
    static const char *inits[] = {"/lib/systemd/systemd", "/usr/lib/systemd/systemd",
                                  "/sbin/init"};
    for (int i = 0; i < 3; i++) {
        if (access(inits[i], X_OK)) continue;
        log_info("exec %s", inits[i]);
        char *argv[] = {(char *)inits[i], NULL};
        execv(inits[i], argv);
        log_err("exec %s: %s", inits[i], strerror(errno));
    }
    die("no init found in the served rootfs");
}

int nbd_ready(const char *dir) {
    char path[256], size[64] = {0};
    snprintf(path, sizeof path, "%s/pid", dir);
    if (access(path, F_OK)) return 0;
    snprintf(path, sizeof path, "%s/size", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, size, sizeof size - 1);
    close(fd);
    return got > 0 && strtoull(size, NULL, 10) > 0;
}
