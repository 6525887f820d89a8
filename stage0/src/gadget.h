/* The gadget child process (stage0.md §8.2 step 9, §11; smoo.md §11). */
#ifndef STAGE0_GADGET_H
#define STAGE0_GADGET_H

#include "config.h"

/* Writes the FunctionFS descriptors, then serves smoo and the NBD bridge forever. */
int gadget_child_main(const struct stage0_config *cfg, const char *ffs_dir)
    __attribute__((noreturn));

#endif
