/* Kernel module loader; see modules.h. Compressed modules go to the kernel first
 * (MODULE_INIT_COMPRESSED_FILE); when it cannot decompress them, .ko.gz is inflated here
 * and loaded with init_module. Userspace xz and zstd are not implemented. */
#include "modules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gunzip.h"
#include "log.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

struct module {
    char name[64];
    char *path;  /* relative to modules_dir */
    char *deps;  /* space-separated relative paths */
    int state;   /* 0 new, 1 visiting, 2 done */
};

struct index {
    struct module *mods;
    unsigned count;
    char **alias_pattern, **alias_module;
    unsigned alias_count;
};

void module_name_of(const char *path, char *out, unsigned cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    static const char *suffixes[] = {".ko.zst", ".ko.xz", ".ko.gz", ".ko"};
    size_t len = strlen(out);
    for (int i = 0; i < 4; i++) {
        size_t s = strlen(suffixes[i]);
        if (len > s && !strcmp(out + len - s, suffixes[i])) { out[len - s] = 0; break; }
    }
    for (char *p = out; *p; p++)
        if (*p == '-') *p = '_';
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

static int load_index(const char *dir, struct index *idx) {
    char path[512];
    snprintf(path, sizeof path, "%s/modules.dep", dir);
    char *dep = read_file(path);
    if (!dep) return -1;
    unsigned cap = 64;
    idx->mods = calloc(cap, sizeof *idx->mods);
    for (char *save = NULL, *line = strtok_r(dep, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        if (idx->count == cap) idx->mods = realloc(idx->mods, (cap *= 2) * sizeof *idx->mods);
        struct module *m = &idx->mods[idx->count++];
        memset(m, 0, sizeof *m);
        module_name_of(line, m->name, sizeof m->name);
        m->path = strdup(line);
        m->deps = strdup(colon + 1);
    }
    free(dep);
    snprintf(path, sizeof path, "%s/modules.alias", dir);
    char *alias = read_file(path);
    if (alias) {
        unsigned acap = 256;
        idx->alias_pattern = calloc(acap, sizeof(char *));
        idx->alias_module = calloc(acap, sizeof(char *));
        for (char *save = NULL, *line = strtok_r(alias, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char pattern[256], module[64];
            if (sscanf(line, "alias %255s %63s", pattern, module) != 2) continue;
            if (idx->alias_count == acap) {
                acap *= 2;
                idx->alias_pattern = realloc(idx->alias_pattern, acap * sizeof(char *));
                idx->alias_module = realloc(idx->alias_module, acap * sizeof(char *));
            }
            idx->alias_pattern[idx->alias_count] = strdup(pattern);
            idx->alias_module[idx->alias_count++] = strdup(module);
        }
        free(alias);
    }
    return 0;
}

static struct module *find(struct index *idx, const char *wanted) {
    char name[64];
    module_name_of(wanted, name, sizeof name);
    for (unsigned i = 0; i < idx->count; i++)
        if (!strcmp(idx->mods[i].name, name)) return &idx->mods[i];
    for (unsigned i = 0; i < idx->alias_count; i++)
        if (!fnmatch(idx->alias_pattern[i], wanted, 0)) {
            module_name_of(idx->alias_module[i], name, sizeof name);
            for (unsigned j = 0; j < idx->count; j++)
                if (!strcmp(idx->mods[j].name, name)) return &idx->mods[j];
        }
    return NULL;
}

/* The kernel could not take the compressed file (no CONFIG_MODULE_DECOMPRESS, or too old
 * for the flag): inflate .ko.gz ourselves (stage0.md §4.8, project decision). */
static int insert_decompressed(const char *path, const char *name, int kernel_err) {
    size_t len = strlen(path);
    if (len < 3 || strcmp(path + len - 3, ".gz")) {
        log_warn("module %s: kernel cannot decompress it (%s) and only .gz is decompressed "
                 "in userspace", name, strerror(kernel_err));
        return -kernel_err;
    }
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    size_t cap = 1 << 20, got = 0, n;
    uint8_t *packed = malloc(cap);
    while (packed && (n = fread(packed + got, 1, cap - got, f)) > 0) {
        got += n;
        if (got == cap) packed = realloc(packed, cap *= 2);
    }
    fclose(f);
    if (!packed) return -ENOMEM;
    uint8_t *image;
    size_t image_len;
    int rc = gunzip(packed, got, &image, &image_len);
    free(packed);
    if (rc) {
        log_warn("module %s: corrupt gzip data", name);
        return -EINVAL;
    }
    rc = syscall(SYS_init_module, image, (unsigned long)image_len, "") ? -errno : 0;
    free(image);
    return rc == -EEXIST ? 0 : rc;
}

static int insert(const char *dir, const struct module *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, m->path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = strlen(m->path);
    int compressed = len > 3 && strcmp(m->path + len - 3, ".ko") != 0;
    long rc = syscall(SYS_finit_module, fd, "", compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
    int err = rc ? errno : 0;
    close(fd);
    if (err == EEXIST) return 0;
    if (err && compressed) return insert_decompressed(path, m->name, err);
    return -err;
}

static int visit(const char *dir, struct index *idx, struct module *m) {
    if (m->state == 2) return 0;
    if (m->state == 1) {
        log_warn("module %s: dependency cycle", m->name);
        return -ELOOP;
    }
    m->state = 1;
    int rc = 0;
    char *deps = strdup(m->deps);
    for (char *save = NULL, *d = strtok_r(deps, " \t", &save); d; d = strtok_r(NULL, " \t", &save)) {
        struct module *dep = find(idx, d);
        if (dep && visit(dir, idx, dep)) rc = -1;
    }
    free(deps);
    if (rc == 0) {
        rc = insert(dir, m);
        if (rc) log_warn("module %s: %s", m->name, strerror(-rc));
        else log_info("module %s loaded", m->name);
    }
    m->state = 2;
    return rc;
}

static int conf_only(const struct dirent *e) {
    size_t len = strlen(e->d_name);
    return len > 5 && !strcmp(e->d_name + len - 5, ".conf");
}

int modules_load_all(const char *modules_dir, const char *load_dir) {
    struct index idx = {0};
    if (load_index(modules_dir, &idx)) {
        log_warn("module index unavailable (%s/modules.dep)", modules_dir);
        return 0;
    }
    int failures = 0;
    struct dirent **confs;
    int n = scandir(load_dir, &confs, conf_only, alphasort);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", load_dir, confs[i]->d_name);
        char *text = read_file(path);
        for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save)) {
            line += strspn(line, " \t");
            if (!*line || *line == '#') continue;
            line[strcspn(line, " \t\r")] = 0;
            struct module *m = find(&idx, line);
            if (!m) {
                log_warn("module %s: not in modules.dep (built in?)", line);
                continue;
            }
            if (visit(modules_dir, &idx, m)) failures++;
        }
        free(text);
        free(confs[i]);
    }
    if (n >= 0) free(confs);
    return failures;
}
