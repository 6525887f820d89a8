/* OSTree deployments inside the served rootfs (stage0.md §10 steps 7, 8 and 11). */
#ifndef STAGE0_OSTREE_H
#define STAGE0_OSTREE_H

#include <stdbool.h>
#include <stddef.h>

struct ostree_plan {
    char deploy[512];    /* "/ostree/deploy/<stateroot>/deploy/<entry>", relative to root */
    char stateroot_var[512]; /* "/ostree/deploy/<stateroot>/var" */
    bool bind_boot;
};

/* Trim, drop empty and "." components, refuse ".." and the root itself. Writes "/a/b". */
int ostree_normalise(const char *path, char *out, size_t cap);
/* Resolve path inside root as chroot(root) + realpath would, without needing chroot:
 * absolute symlink targets restart at root, ".." never leaves it. Writes "/a/b". */
int resolve_in_root(const char *root, const char *path, char *out, size_t cap);
/* Validate the `ostree` setting against the tree at root. 0, or -errno with a log line. */
int ostree_plan(const char *root, const char *setting, struct ostree_plan *plan);
/* Step 11, after the switch to the new root: bind sysroot, var and boot, then chroot into
 * the deployment. Dies on failure. */
void ostree_enter(const struct ostree_plan *plan);

#endif
