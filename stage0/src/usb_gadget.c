/* configfs gadget; see usb_gadget.h. */
#include "usb_gadget.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define GADGETS "/sys/kernel/config/usb_gadget"

static int write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t len = (ssize_t)strlen(text);
    int rc = write(fd, text, (size_t)len) == len ? 0 : -errno;
    close(fd);
    return rc;
}

static int make_dir(const char *path) {
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

static int first_udc(char *out, size_t cap) {
    DIR *d = opendir("/sys/class/udc");
    if (!d) return -errno;
    struct dirent *e;
    int rc = -ENODEV;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(out, cap, "%s", e->d_name);
            rc = 0;
            break;
        }
    closedir(d);
    return rc;
}

bool udc_available(void) {
    char name[128];
    return first_udc(name, sizeof name) == 0;
}

/* rmdir every subdirectory of dir (configfs removes the attributes with them). */
static void rmdir_children(const char *dir, bool unlink_links) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[768];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink_links && e->d_type == DT_LNK) unlink(path);
        else if (e->d_type == DT_DIR) rmdir(path);
    }
    closedir(d);
}

static void remove_gadget(const char *name) {
    char g[512], sub[640];
    snprintf(g, sizeof g, "%s/%s", GADGETS, name);
    write_text(g, "UDC", "\n");
    snprintf(sub, sizeof sub, "%s/configs", g);
    DIR *d = opendir(sub);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char c[768], s[800];
        snprintf(c, sizeof c, "%s/%s", sub, e->d_name);
        rmdir_children(c, true); /* function links */
        snprintf(s, sizeof s, "%s/strings", c);
        rmdir_children(s, false);
        rmdir(c);
    }
    if (d) closedir(d);
    snprintf(sub, sizeof sub, "%s/functions", g);
    rmdir_children(sub, false);
    snprintf(sub, sizeof sub, "%s/strings", g);
    rmdir_children(sub, false);
    if (rmdir(g)) log_warn("cannot remove old gadget %s: %s", name, strerror(errno));
}

static void remove_all_gadgets(void) {
    DIR *d = opendir(GADGETS);
    struct dirent *e;
    char names[16][256];
    int n = 0;
    while (d && (e = readdir(d)) && n < 16)
        if (e->d_name[0] != '.') snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    if (d) closedir(d);
    for (int i = 0; i < n; i++) remove_gadget(names[i]);
}

int gadget_create(const struct stage0_config *cfg) {
    char text[64];
    int rc = 0;
    remove_all_gadgets();
    rc |= make_dir(GADGET_DIR);
    snprintf(text, sizeof text, "0x%04x", cfg->vendor);
    rc |= write_text(GADGET_DIR, "idVendor", text);
    snprintf(text, sizeof text, "0x%04x", cfg->product);
    rc |= write_text(GADGET_DIR, "idProduct", text);
    rc |= write_text(GADGET_DIR, "bcdUSB", "0x0200");
    rc |= write_text(GADGET_DIR, "bDeviceClass", "0x00"); /* defined at interface level */
    rc |= make_dir(GADGET_DIR "/strings/0x409");
    rc |= write_text(GADGET_DIR "/strings/0x409", "manufacturer", "smoo");
    rc |= write_text(GADGET_DIR "/strings/0x409", "product", "smoo gadget");
    rc |= write_text(GADGET_DIR "/strings/0x409", "serialnumber", cfg->serial);
    rc |= make_dir(GADGET_DIR "/configs/c.1");
    rc |= make_dir(GADGET_DIR "/configs/c.1/strings/0x409");
    rc |= write_text(GADGET_DIR "/configs/c.1/strings/0x409", "configuration", "config");
    rc |= make_dir(GADGET_DIR "/functions/ffs.smoo");
    if (symlink(GADGET_DIR "/functions/ffs.smoo", GADGET_DIR "/configs/c.1/ffs.smoo") &&
        errno != EEXIST)
        rc |= -errno;
    if (cfg->acm) {
        rc |= make_dir(GADGET_DIR "/functions/acm.GS0");
        if (symlink(GADGET_DIR "/functions/acm.GS0", GADGET_DIR "/configs/c.1/acm.GS0") &&
            errno != EEXIST)
            rc |= -errno;
    }
    if (rc) return -EIO;
    if (make_dir(FFS_DIR)) return -errno;
    if (mount("smoo", FFS_DIR, "functionfs", 0, NULL)) return -errno;
    return 0;
}

int gadget_bind(void) {
    char udc[128];
    int rc = first_udc(udc, sizeof udc);
    if (rc) return rc;
    log_info("binding gadget to UDC %s", udc);
    return write_text(GADGET_DIR, "UDC", udc);
}
