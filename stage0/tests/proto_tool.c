/* Encodes messages named on stdin and prints their bytes as hex, one line each, so the
 * Python tests can compare the C encoders with fastboop.smoo.protocol byte for byte.
 *
 *   request OP RID EID LBA N FLAGS        response OP STATUS RID EID LBA N FLAGS
 *   status FLAGS COUNT SESSION            ident MAJOR MINOR
 *   config N (EID BS SIZE)*N              exportid BS COUNT IDENTITY
 *   decode_request HEX                    (prints "ok OP RID EID LBA N FLAGS" or "err CODE")
 */
#include "../src/smoo_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\n");
}

int main(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL;
        char *cmd = strtok_r(line, " \n", &save);
        if (!cmd) continue;
#define NEXT() strtoull(strtok_r(NULL, " \n", &save), NULL, 0)
        uint8_t b[8 + 24 * SMOO_MAX_EXPORTS];
        if (!strcmp(cmd, "request")) {
            struct smoo_request r;
            r.op = (uint8_t)NEXT(); r.request_id = (uint32_t)NEXT(); r.export_id = (uint32_t)NEXT();
            r.lba = NEXT(); r.num_blocks = (uint32_t)NEXT(); r.flags = (uint32_t)NEXT();
            smoo_encode_request(b, &r);
            hex(b, SMOO_MSG_LEN);
        } else if (!strcmp(cmd, "response")) {
            struct smoo_response r;
            r.op = (uint8_t)NEXT(); r.status = (uint8_t)NEXT(); r.request_id = (uint32_t)NEXT();
            r.export_id = (uint32_t)NEXT(); r.lba = NEXT(); r.num_blocks = (uint32_t)NEXT();
            r.flags = (uint32_t)NEXT();
            smoo_encode_response(b, &r);
            hex(b, SMOO_MSG_LEN);
        } else if (!strcmp(cmd, "status")) {
            struct smoo_status s;
            s.flags = (uint16_t)NEXT(); s.export_count = (uint32_t)NEXT(); s.session_id = NEXT();
            smoo_encode_status(b, &s);
            hex(b, SMOO_STATUS_LEN);
        } else if (!strcmp(cmd, "ident")) {
            uint16_t major = (uint16_t)NEXT(), minor = (uint16_t)NEXT();
            smoo_encode_ident(b, major, minor);
            hex(b, SMOO_IDENT_LEN);
        } else if (!strcmp(cmd, "config")) {
            struct smoo_export e[SMOO_MAX_EXPORTS];
            unsigned n = (unsigned)NEXT();
            for (unsigned i = 0; i < n && i < SMOO_MAX_EXPORTS; i++) {
                e[i].export_id = (uint32_t)NEXT(); e[i].block_size = (uint32_t)NEXT();
                e[i].size_bytes = NEXT();
            }
            int len = smoo_encode_config(b, sizeof b, e, n);
            if (len < 0) printf("err\n");
            else hex(b, (size_t)len);
        } else if (!strcmp(cmd, "exportid")) {
            uint32_t bs = (uint32_t)NEXT();
            uint64_t count = NEXT();
            char *identity = strtok_r(NULL, "\n", &save);
            printf("%08" PRIx32 "\n", smoo_export_id(identity ? identity : "", bs, count));
        } else if (!strcmp(cmd, "decode_request")) {
            char *h = strtok_r(NULL, " \n", &save);
            size_t n = h ? strlen(h) / 2 : 0;
            for (size_t i = 0; i < n && i < sizeof b; i++) sscanf(h + 2 * i, "%2hhx", &b[i]);
            struct smoo_request r;
            int rc = smoo_decode_request(b, n, &r);
            if (rc) printf("err %d\n", rc);
            else printf("ok %u %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu32 " %" PRIu32 "\n",
                        r.op, r.request_id, r.export_id, r.lba, r.num_blocks, r.flags);
        } else {
            printf("unknown\n");
        }
        fflush(stdout);
    }
    return 0;
}
