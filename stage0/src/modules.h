/* Kernel module loading with finit_module, dependencies first (stage0.md §4.8, §8.2 step 5). */
#ifndef STAGE0_MODULES_H
#define STAGE0_MODULES_H

/* Loads every module named in each <load_dir>/NAME.conf (sorted) with its modules.dep dependencies
 * from <modules_dir>. Every failure is a warning; returns the number of failures. */
int modules_load_all(const char *modules_dir, const char *load_dir);
/* Module name of a modules.dep path: basename minus .ko[.zst|.xz|.gz], '-' as '_'. */
void module_name_of(const char *path, char *out, unsigned cap);

#endif
