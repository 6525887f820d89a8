/* Machine-id credential; see creds.h. */
#include "creds.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "smoo_proto.h"

static const char PREFIX[] = "fastboop-stage0-machine-id-v1";

static void hex_id(const uint8_t id[16], char out[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = 0;
}

void machine_id_from_serial(const char *serial, char out[33]) {
    uint8_t id[16];
    const uint8_t zero = 0;
    for (uint8_t r = 0; r < 2; r++) {
        uint64_t h = smoo_fnv1a64(SMOO_FNV64_OFFSET, (const uint8_t *)PREFIX, strlen(PREFIX));
        h = smoo_fnv1a64(h, &zero, 1);
        h = smoo_fnv1a64(h, (const uint8_t *)serial, strlen(serial));
        h = smoo_fnv1a64(h, &zero, 1);
        h = smoo_fnv1a64(h, &r, 1);
        for (int i = 0; i < 8; i++) id[8 * r + i] = (uint8_t)(h >> (56 - 8 * i));
    }
    int all_zero = 1;
    for (int i = 0; i < 16; i++) all_zero &= id[i] == 0;
    if (all_zero) id[0] = 1;
    hex_id(id, out);
}

void write_machine_id(const char *serial) {
    char text[33];
    if (serial && *serial) {
        machine_id_from_serial(serial, text);
    } else {
        uint8_t id[16] = {0};
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, id, sizeof id) != (ssize_t)sizeof id)
            log_warn("machine-id: cannot read /dev/urandom");
        if (fd >= 0) close(fd);
        int all_zero = 1;
        for (int i = 0; i < 16; i++) all_zero &= id[i] == 0;
        if (all_zero) id[0] = 1;
        hex_id(id, text);
    }
    mkdir("/run/credstore", 0700);
    int fd = open("/run/credstore/system.machine_id", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0400);
    if (fd < 0 || write(fd, text, 32) != 32) log_warn("machine-id credential not written");
    if (fd >= 0) close(fd);
}
