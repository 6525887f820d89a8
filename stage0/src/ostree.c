/* OSTree deployment handling; see ostree.h. */
#include "ostree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MAX_LINKS 40

int ostree_normalise(const char *path, char *out, size_t cap) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    size_t len = 0;
    out[0] = 0;
    char *save = NULL;
    for (char *c = strtok_r(buf, "/ \t\r\n", &save); c; c = strtok_r(NULL, "/ \t\r\n", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) return -EINVAL;
        int n = snprintf(out + len, cap - len, "/%s", c);
        if (n < 0 || (size_t)n >= cap - len) return -ENAMETOOLONG;
        len += (size_t)n;
    }
    return len ? 0 : -EINVAL; /* the root itself is not a deployment */
}

int resolve_in_root(const char *root, const char *path, char *out, size_t cap) {
    char resolved[1024] = "", pending[2048], full[1536], target[1024];
    int links = 0;
    snprintf(pending, sizeof pending, "%s", path);
    while (pending[0]) {
        char *p = pending + strspn(pending, "/");
        size_t clen = strcspn(p, "/");
        char comp[256];
        if (clen >= sizeof comp) return -ENAMETOOLONG;
        memcpy(comp, p, clen);
        comp[clen] = 0;
        memmove(pending, p + clen, strlen(p + clen) + 1);
        if (!clen || !strcmp(comp, ".")) continue;
        if (!strcmp(comp, "..")) {
            char *slash = strrchr(resolved, '/');
            if (slash) *slash = 0; /* never above the root */
            continue;
        }
        size_t rlen = strlen(resolved);
        if (rlen + 1 + clen >= sizeof resolved) return -ENAMETOOLONG;
        snprintf(full, sizeof full, "%s%s/%s", root, resolved, comp);
        struct stat st;
        if (lstat(full, &st)) return -errno;
        if (!S_ISLNK(st.st_mode)) {
            snprintf(resolved + rlen, sizeof resolved - rlen, "/%s", comp);
            continue;
        }
        if (++links > MAX_LINKS) return -ELOOP;
        ssize_t n = readlink(full, target, sizeof target - 1);
        if (n < 0) return -errno;
        target[n] = 0;
        if (target[0] == '/') resolved[0] = 0; /* absolute: restart at the root */
        char rest[2048];
        snprintf(rest, sizeof rest, "%s/%s", target, pending);
        snprintf(pending, sizeof pending, "%s", rest);
    }
    if (snprintf(out, cap, "%s", resolved[0] ? resolved : "/") >= (int)cap) return -ENAMETOOLONG;
    return 0;
}

static bool is_dir(const char *root, const char *path) {
    char full[1024];
    struct stat st;
    snprintf(full, sizeof full, "%s%s", root, path);
    return stat(full, &st) == 0 && S_ISDIR(st.st_mode);
}

int ostree_plan(const char *root, const char *setting, struct ostree_plan *plan) {
    char norm[512], link[1024], stateroot[256], entry[256];
    memset(plan, 0, sizeof *plan);
    if (ostree_normalise(setting, norm, sizeof norm)) {
        log_err("ostree=%s: not a deployment path", setting);
        return -EINVAL;
    }
    snprintf(link, sizeof link, "%s%s", root, norm);
    struct stat st;
    if (lstat(link, &st) || !S_ISLNK(st.st_mode)) {
        log_err("ostree=%s: %s is not a symlink", setting, norm);
        return -EINVAL;
    }
    int rc = resolve_in_root(root, norm, plan->deploy, sizeof plan->deploy);
    if (rc) {
        log_err("ostree=%s: cannot resolve: %s", setting, strerror(-rc));
        return rc;
    }
    char tail[8];
    if (sscanf(plan->deploy, "/ostree/deploy/%255[^/]/deploy/%255[^/]%7s", stateroot, entry,
               tail) != 2 ||
        !is_dir(root, plan->deploy)) {
        log_err("ostree=%s: %s is not ostree/deploy/<stateroot>/deploy/<entry>", setting,
                plan->deploy);
        return -EINVAL;
    }
    snprintf(plan->stateroot_var, sizeof plan->stateroot_var, "/ostree/deploy/%s/var",
             stateroot);
    if (!is_dir(root, plan->stateroot_var)) {
        log_err("ostree=%s: %s is not a directory", setting, plan->stateroot_var);
        return -EINVAL;
    }
    char loader[1024], boot[1024];
    snprintf(loader, sizeof loader, "%s/boot/loader", root);
    snprintf(boot, sizeof boot, "%s/boot", plan->deploy);
    plan->bind_boot = lstat(loader, &st) == 0 && S_ISLNK(st.st_mode) && is_dir(root, boot);
    return 0;
}

static void bind(const char *source, const char *target, unsigned long extra) {
    if (mount(source, target, NULL, MS_BIND | extra, NULL))
        die("ostree: bind %s on %s: %s", source, target, strerror(errno));
}

void ostree_enter(const struct ostree_plan *plan) {
    char path[768];
    snprintf(path, sizeof path, "%s/sysroot", plan->deploy);
    mkdir(path, 0755);
    bind("/", path, 0);
    char var[768];
    snprintf(var, sizeof var, "%s/var", plan->deploy);
    bind(plan->stateroot_var, var, 0);
    if (plan->bind_boot) {
        char boot[768];
        snprintf(boot, sizeof boot, "%s/boot", plan->deploy);
        bind("/boot", boot, 0);
    }
    if (mount(NULL, path, NULL, MS_PRIVATE, NULL))
        die("ostree: make %s private: %s", path, strerror(errno));
    mkdir("/run/fastboop-stage0-root", 0755);
    bind(plan->deploy, "/run/fastboop-stage0-root", MS_REC);
    if (chdir("/run/fastboop-stage0-root") || chroot(".") || chdir("/"))
        die("ostree: chroot into the deployment: %s", strerror(errno));
    mkdir("/run/ostree", 0755);
    int fd = open("/run/ostree-booted", O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) die("ostree: /run/ostree-booted: %s", strerror(errno));
    close(fd);
}
