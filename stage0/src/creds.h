/* Credentials written for systemd before exec (stage0.md §8.4, §10 step 12). */
#ifndef STAGE0_CREDS_H
#define STAGE0_CREDS_H

/* 32 lowercase hex chars + NUL, derived from the serial with FNV-1a-64 (project encoding). */
void machine_id_from_serial(const char *serial, char out[33]);
/* Writes /run/credstore/system.machine_id (random without a serial). Warns on failure. */
void write_machine_id(const char *serial);

#endif
