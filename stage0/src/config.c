/* /etc/stage0 settings loader; see config.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

enum { SEEN_DEPTH = 1, SEEN_MAX_IO = 2, SEEN_VENDOR = 4, SEEN_PRODUCT = 8 };

void config_defaults(struct stage0_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->serial, "0001");
    strcpy(cfg->log_filter, "info");
    cfg->yeetfstab = true;
    cfg->mimic_fastboot = true; /* fastboop's default (stage0.md §5) */
    cfg->queue_count = 1;
    cfg->queue_depth = 16;
    cfg->max_io_bytes = 1u << 20;
    cfg->vendor = 0xDEAD;
    cfg->product = 0xBEEF;
    cfg->host_timeout_s = CONFIG_HOST_TIMEOUT_DEFAULT;
    cfg->on_failure = FAILURE_BOOTLOADER;
}

int parse_failure_action(const char *v, enum failure_action *out) {
    static const char *names[] = {"bootloader", "restart", "panic"};
    static const enum failure_action actions[] = {FAILURE_BOOTLOADER, FAILURE_RESTART,
                                                  FAILURE_PANIC};
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(v, names[i])) {
            *out = actions[i];
            return 0;
        }
    return -1;
}

int parse_bool(const char *v, bool *out) {
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(v, yes[i])) { *out = true; return 0; }
        if (!strcmp(v, no[i])) { *out = false; return 0; }
    }
    return -1;
}

int parse_u64(const char *v, bool allow_hex, uint64_t *out) {
    int base = 10;
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        if (!allow_hex) return -1;
        base = 16;
        v += 2;
    }
    if (!*v) return -1;
    for (const char *p = v; *p; p++) {
        bool digit = (*p >= '0' && *p <= '9');
        bool hexdigit = base == 16 && ((*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'));
        if (!digit && !hexdigit) return -1;
    }
    errno = 0;
    unsigned long long n = strtoull(v, NULL, base);
    if (errno) return -1;
    *out = n;
    return 0;
}

static void set_flag(bool *field, const char *key, const char *value) {
    if (parse_bool(value, field)) log_warn("%s: invalid boolean '%s', using default", key, value);
}

static void set_num(const char *key, const char *value, bool hex, uint64_t min, uint64_t max,
                    void *field, int width) {
    uint64_t n;
    if (parse_u64(value, hex, &n) || n < min || n > max) {
        log_warn("%s: invalid value '%s', using default", key, value);
        return;
    }
    if (width == 16) *(uint16_t *)field = (uint16_t)n;
    else *(uint32_t *)field = (uint32_t)n;
}

bool rootfs_kind_valid(const char *name) {
    static const char *kinds[] = {"erofs", "ext4", "btrfs", "squashfs", "iso9660"};
    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(name, kinds[i])) return true;
    return false;
}

/* Loop image paths are relative to the served root: none absolute or empty, no ".."
 * component, nothing unprintable; at most LOOP_MAX_IMAGES of them, ':'-separated. */
static bool loop_path_valid(const char *value) {
    size_t len = strlen(value);
    if (!len || len >= sizeof ((struct stage0_config *)0)->loop) return false;
    unsigned images = 1;
    bool start = true;
    for (const char *p = value;; p++) {
        if (start && (*p == '/' || *p == ':' || !*p)) return false;
        if (start && p[0] == '.' && p[1] == '.' && (!p[2] || p[2] == '/' || p[2] == ':'))
            return false;
        start = false;
        if (!*p) return true;
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
        if (*p == ':') {
            if (++images > LOOP_MAX_IMAGES) return false;
            start = true;
        } else if (*p == '/') {
            if (p[1] == '/' || p[1] == ':' || !p[1]) return false;
            if (p[1] == '.' && p[2] == '.' && (!p[3] || p[3] == '/' || p[3] == ':')) return false;
        }
    }
}

/* A subvolume path goes into the mount data string, so it must not carry another option
 * (a comma) or anything unprintable; btrfs takes it relative to the top level. */
static bool subvol_valid(const char *value) {
    size_t len = strlen(value);
    if (!len || len >= sizeof ((struct stage0_config *)0)->subvol) return false;
    for (const char *p = value; *p; p++)
        if (*p == ',' || (unsigned char)*p < 0x21 || *p == 0x7f) return false;
    return true;
}

/* Aliases lose to their canonical key, whichever file is read first. */
static bool alias_allowed(const char *key, unsigned bit, bool is_alias, unsigned *seen) {
    if (is_alias && (*seen & bit)) {
        log_warn("%s ignored: its canonical key is also set", key);
        return false;
    }
    if (!is_alias) *seen |= bit;
    return true;
}

void config_apply(struct stage0_config *c, const char *key, const char *value, unsigned *seen) {
    if (!strcmp(key, "stage0.rootfs")) {
        if (rootfs_kind_valid(value)) strcpy(c->rootfs, value);
        else c->rootfs[0] = 0;
    } else if (!strcmp(key, "stage0.loop")) {
        if (loop_path_valid(value)) snprintf(c->loop, sizeof c->loop, "%s", value);
        else log_warn("%s: invalid image path '%s', ignored", key, value);
    } else if (!strcmp(key, "stage0.loop_rootfs")) {
        if (rootfs_kind_valid(value)) strcpy(c->loop_rootfs, value);
        else log_warn("%s: unknown filesystem '%s', ignored", key, value);
    } else if (!strcmp(key, "stage0.subvol")) {
        if (subvol_valid(value)) snprintf(c->subvol, sizeof c->subvol, "%s", value);
        else log_warn("%s: invalid subvolume '%s', using the default subvolume", key, value);
    } else if (!strcmp(key, "stage0.serial")) {
        snprintf(c->serial, sizeof c->serial, "%s", value);
        c->serial_set = true;
    } else if (!strcmp(key, "stage0.fb")) {
        set_flag(&c->fb, key, value);
    } else if (!strcmp(key, "stage0.yeetfstab")) {
        set_flag(&c->yeetfstab, key, value);
    } else if (!strcmp(key, "ostree")) {
        snprintf(c->ostree, sizeof c->ostree, "%s", value);
    } else if (!strcmp(key, "smoo.acm")) {
        set_flag(&c->acm, key, value);
    } else if (!strcmp(key, "smoo.break")) {
        set_flag(&c->brk, key, value);
    } else if (!strcmp(key, "smoo.mimic_fastboot")) {
        set_flag(&c->mimic_fastboot, key, value);
    } else if (!strcmp(key, "smoo.log")) {
        snprintf(c->log_filter, sizeof c->log_filter, "%s", value);
    } else if (!strcmp(key, "smoo.queue_count")) {
        set_num(key, value, false, 1, 0xffff, &c->queue_count, 16);
    } else if (!strcmp(key, "smoo.queue_depth") || !strcmp(key, "smoo.queue_size")) {
        if (alias_allowed(key, SEEN_DEPTH, !strcmp(key, "smoo.queue_size"), seen))
            set_num(key, value, false, 1, 0xffff, &c->queue_depth, 16);
    } else if (!strcmp(key, "smoo.max_io_bytes") || !strcmp(key, "smoo.max_io")) {
        if (alias_allowed(key, SEEN_MAX_IO, !strcmp(key, "smoo.max_io"), seen))
            set_num(key, value, false, 512, 0xffffffffu, &c->max_io_bytes, 32);
    } else if (!strcmp(key, "smoo.vendor") || !strcmp(key, "smoo.vendor_id")) {
        if (alias_allowed(key, SEEN_VENDOR, !strcmp(key, "smoo.vendor_id"), seen))
            set_num(key, value, true, 0, 0xffff, &c->vendor, 16);
    } else if (!strcmp(key, "smoo.product") || !strcmp(key, "smoo.product_id")) {
        if (alias_allowed(key, SEEN_PRODUCT, !strcmp(key, "smoo.product_id"), seen))
            set_num(key, value, true, 0, 0xffff, &c->product, 16);
    } else if (!strcmp(key, "smoo.host_timeout")) {
        set_num(key, value, false, 1, CONFIG_HOST_TIMEOUT_MAX, &c->host_timeout_s, 32);
    } else if (!strcmp(key, "stage0.on_failure")) {
        if (parse_failure_action(value, &c->on_failure))
            log_warn("%s: invalid value '%s' (expected bootloader, restart or panic), ignored",
                     key, value);
    } else if (!strncmp(key, "firstboot.", 10) && c->firstboot_count < CONFIG_MAX_FIRSTBOOT) {
        unsigned i = c->firstboot_count++;
        snprintf(c->firstboot_key[i], sizeof c->firstboot_key[i], "%s", key);
        snprintf(c->firstboot_value[i], sizeof c->firstboot_value[i], "%s", value);
    }
}

static void trim(char *s) {
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t' ||
                   s[len - 1] == '\r'))
        s[--len] = 0;
    size_t start = strspn(s, " \t\r\n");
    memmove(s, s + start, len - start + 1);
}

static int regular_only(const struct dirent *e) { return e->d_name[0] != '.'; }

int config_load(const char *dir, struct stage0_config *cfg) {
    struct dirent **names;
    int n = scandir(dir, &names, regular_only, alphasort);
    if (n < 0) return -errno;
    unsigned seen = 0;
    /* Canonical keys first, so an alias read earlier cannot win (stage0.md §5). */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            const char *key = names[i]->d_name;
            bool alias = !strcmp(key, "smoo.queue_size") || !strcmp(key, "smoo.max_io") ||
                         !strcmp(key, "smoo.vendor_id") || !strcmp(key, "smoo.product_id");
            if (alias != (pass == 1)) continue;
            char path[512], value[512];
            snprintf(path, sizeof path, "%s/%s", dir, key);
            struct stat st;
            if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t got = read(fd, value, sizeof value - 1);
            close(fd);
            value[got > 0 ? got : 0] = 0;
            trim(value);
            config_apply(cfg, key, value[0] ? value : "1", &seen);
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}
