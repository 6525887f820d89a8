/* A small gzip decoder (RFC 1951/1952) so stage0 can load .ko.gz modules on kernels that
 * cannot decompress them themselves (stage0.md §4.8). Pure: bytes in, bytes out. */
#ifndef STAGE0_GUNZIP_H
#define STAGE0_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

#define GUNZIP_MAX_OUTPUT (256u << 20) /* refuse to inflate beyond this: not a module */

/* Decodes every gzip member in `in`. On success returns 0 and a malloc'd *out of *out_len
 * bytes (the caller frees it); otherwise a negative code and *out is NULL. Never reads
 * outside `in`, never writes beyond what it allocated. */
int gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif
