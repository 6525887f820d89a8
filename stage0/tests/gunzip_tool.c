/* stdin (gzip) -> stdout (decoded); exit 0 on success, 1 with the error code on stderr.
 * Used by tests/stage0_c to cross-check against Python's gzip and to fuzz the decoder. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../src/gunzip.h"

int main(void) {
    size_t cap = 1 << 16, len = 0;
    uint8_t *in = malloc(cap);
    ssize_t n;
    while ((n = read(0, in + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) in = realloc(in, cap *= 2);
    }
    uint8_t *out;
    size_t out_len;
    int rc = gunzip(in, len, &out, &out_len);
    free(in);
    if (rc) {
        fprintf(stderr, "gunzip: error %d\n", rc);
        return 1;
    }
    fwrite(out, 1, out_len, stdout);
    free(out);
    return 0;
}
