/* FunctionFS descriptor and string blobs for the smoo interface (smoo.md §2, stage0.md §9). */
#ifndef STAGE0_FFS_DESC_H
#define STAGE0_FFS_DESC_H

#include <stdbool.h>
#include <stddef.h>

/* Build the v2 descriptors blob (full, high and SuperSpeed). Returns its length, or -1 if
 * cap is too small. mimic selects subclass/protocol 0x42/0x03 instead of 0x53/0x4D. */
int ffs_build_descriptors(unsigned char *buf, size_t cap, bool mimic);
/* Build the strings blob: one language (en-US), one string, "smoo". */
int ffs_build_strings(unsigned char *buf, size_t cap);

#endif
