/* A minimal test harness: CHECK records a failure with its line and carries on. */
#ifndef STAGE0_CHECK_H
#define STAGE0_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        check_count++;                                                                    \
        if (!(cond)) {                                                                    \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                 \
    } while (0)
#define CHECK_BYTES(got, hex) CHECK(bytes_equal_hex((got), (hex)))

static inline int hexval(char c) {
    return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}
/* Compares got with a hex string such as "c1 01 00"; spaces are ignored. */
static inline int bytes_equal_hex(const unsigned char *got, const char *hex) {
    size_t i = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') { p++; continue; }
        if (got[i++] != (unsigned char)(hexval(p[0]) << 4 | hexval(p[1]))) return 0;
        p += 2;
    }
    return 1;
}
static inline int check_report(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}
#endif
