/* gzip decoder after zlib's "puff" reference inflater: canonical Huffman decoding bit by
 * bit, which is slow but small and easy to check. Modules are a few MiB at most. */
#include "gunzip.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define MAXBITS 15
#define MAXLCODES 286
#define MAXDCODES 30
#define FIXLCODES 288

enum { ERR_INPUT = -1, ERR_FORMAT = -2, ERR_SIZE = -3, ERR_NOMEM = -4, ERR_CHECK = -5 };

struct state {
    const uint8_t *in;
    size_t in_len, pos;
    uint32_t bitbuf;
    int bitcnt;
    uint8_t *out;
    size_t out_len, out_cap;
    jmp_buf fail;
};

struct huffman {
    short *count;  /* number of codes of each length */
    short *symbol; /* symbols ordered by code */
};

static void fail(struct state *s, int code) { longjmp(s->fail, code); }

static int bits(struct state *s, int need) {
    uint32_t val = s->bitbuf;
    while (s->bitcnt < need) {
        if (s->pos >= s->in_len) fail(s, ERR_INPUT);
        val |= (uint32_t)s->in[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    s->bitbuf = val >> need;
    s->bitcnt -= need;
    return (int)(val & ((1u << need) - 1));
}

static void emit(struct state *s, uint8_t byte) {
    if (s->out_len == s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap * 2 : 65536;
        if (cap > GUNZIP_MAX_OUTPUT) cap = GUNZIP_MAX_OUTPUT;
        if (s->out_len >= cap) fail(s, ERR_SIZE);
        uint8_t *grown = realloc(s->out, cap);
        if (!grown) fail(s, ERR_NOMEM);
        s->out = grown;
        s->out_cap = cap;
    }
    s->out[s->out_len++] = byte;
}

static void stored(struct state *s) {
    s->bitbuf = 0;
    s->bitcnt = 0;
    if (s->pos + 4 > s->in_len) fail(s, ERR_INPUT);
    unsigned len = s->in[s->pos] | (unsigned)s->in[s->pos + 1] << 8;
    unsigned nlen = s->in[s->pos + 2] | (unsigned)s->in[s->pos + 3] << 8;
    s->pos += 4;
    if (len != (~nlen & 0xffff)) fail(s, ERR_FORMAT);
    if (s->pos + len > s->in_len) fail(s, ERR_INPUT);
    for (unsigned i = 0; i < len; i++) emit(s, s->in[s->pos + i]);
    s->pos += len;
}

static int decode(struct state *s, const struct huffman *h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= MAXBITS; len++) {
        code |= bits(s, 1);
        int count = h->count[len];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    fail(s, ERR_FORMAT);
    return -1;
}

/* Returns 0 for a complete code, > 0 incomplete, < 0 over-subscribed. */
static int construct(struct huffman *h, const short *length, int n) {
    for (int len = 0; len <= MAXBITS; len++) h->count[len] = 0;
    for (int symbol = 0; symbol < n; symbol++) h->count[length[symbol]]++;
    if (h->count[0] == n) return 0;
    int left = 1;
    for (int len = 1; len <= MAXBITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return left;
    }
    short offs[MAXBITS + 1];
    offs[1] = 0;
    for (int len = 1; len < MAXBITS; len++) offs[len + 1] = (short)(offs[len] + h->count[len]);
    for (int symbol = 0; symbol < n; symbol++)
        if (length[symbol] != 0) h->symbol[offs[length[symbol]]++] = (short)symbol;
    return left;
}

static const short lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                               2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const short dbase[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,
                                33,  49,  65,  97,  129, 193,  257,  385,  513,  769,
                                1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const short dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3,  3,  4,  4,  5,  5,  6,
                               6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static void codes(struct state *s, const struct huffman *lencode,
                  const struct huffman *distcode) {
    for (;;) {
        int symbol = decode(s, lencode);
        if (symbol < 256) {
            emit(s, (uint8_t)symbol);
            continue;
        }
        if (symbol == 256) return;
        symbol -= 257;
        if (symbol >= 29) fail(s, ERR_FORMAT);
        size_t len = (size_t)(lbase[symbol] + bits(s, lext[symbol]));
        symbol = decode(s, distcode);
        if (symbol >= 30) fail(s, ERR_FORMAT);
        size_t dist = (size_t)(dbase[symbol] + bits(s, dext[symbol]));
        if (dist > s->out_len) fail(s, ERR_FORMAT); /* before the start of the output */
        while (len--) emit(s, s->out[s->out_len - dist]);
    }
}

static void fixed(struct state *s) {
    static short lencnt[MAXBITS + 1], lensym[FIXLCODES], distcnt[MAXBITS + 1],
        distsym[MAXDCODES];
    struct huffman lencode = {lencnt, lensym}, distcode = {distcnt, distsym};
    short lengths[FIXLCODES];
    int symbol = 0;
    for (; symbol < 144; symbol++) lengths[symbol] = 8;
    for (; symbol < 256; symbol++) lengths[symbol] = 9;
    for (; symbol < 280; symbol++) lengths[symbol] = 7;
    for (; symbol < FIXLCODES; symbol++) lengths[symbol] = 8;
    construct(&lencode, lengths, FIXLCODES);
    for (symbol = 0; symbol < MAXDCODES; symbol++) lengths[symbol] = 5;
    construct(&distcode, lengths, MAXDCODES);
    codes(s, &lencode, &distcode);
}

static void dynamic(struct state *s) {
    static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                    11, 4, 12, 3, 13, 2, 14, 1, 15};
    short lengths[MAXLCODES + MAXDCODES];
    short lencnt[MAXBITS + 1], lensym[MAXLCODES], distcnt[MAXBITS + 1], distsym[MAXDCODES];
    struct huffman lencode = {lencnt, lensym}, distcode = {distcnt, distsym};
    int nlen = bits(s, 5) + 257, ndist = bits(s, 5) + 1, ncode = bits(s, 4) + 4;
    if (nlen > MAXLCODES || ndist > MAXDCODES) fail(s, ERR_FORMAT);
    int index = 0;
    for (; index < ncode; index++) lengths[order[index]] = (short)bits(s, 3);
    for (; index < 19; index++) lengths[order[index]] = 0;
    if (construct(&lencode, lengths, 19) != 0) fail(s, ERR_FORMAT); /* must be complete */
    for (index = 0; index < nlen + ndist;) {
        int symbol = decode(s, &lencode);
        if (symbol < 16) {
            lengths[index++] = (short)symbol;
            continue;
        }
        short len = 0;
        if (symbol == 16) {
            if (index == 0) fail(s, ERR_FORMAT);
            len = lengths[index - 1];
            symbol = 3 + bits(s, 2);
        } else if (symbol == 17) {
            symbol = 3 + bits(s, 3);
        } else {
            symbol = 11 + bits(s, 7);
        }
        if (index + symbol > nlen + ndist) fail(s, ERR_FORMAT);
        while (symbol--) lengths[index++] = len;
    }
    if (lengths[256] == 0) fail(s, ERR_FORMAT); /* no end-of-block code */
    int err = construct(&lencode, lengths, nlen);
    if (err < 0 || (err > 0 && nlen - lencode.count[0] != 1)) fail(s, ERR_FORMAT);
    err = construct(&distcode, lengths + nlen, ndist);
    if (err < 0 || (err > 0 && ndist - distcode.count[0] != 1)) fail(s, ERR_FORMAT);
    codes(s, &lencode, &distcode);
}

static void inflate_raw(struct state *s) {
    int last;
    s->bitbuf = 0;
    s->bitcnt = 0;
    do {
        last = bits(s, 1);
        int type = bits(s, 2);
        if (type == 0) stored(s);
        else if (type == 1) fixed(s);
        else if (type == 2) dynamic(s);
        else fail(s, ERR_FORMAT);
    } while (!last);
}

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void skip_zero_terminated(struct state *s) {
    while (s->pos < s->in_len && s->in[s->pos] != 0) s->pos++;
    if (s->pos >= s->in_len) fail(s, ERR_INPUT);
    s->pos++;
}

static void member(struct state *s) {
    const uint8_t *in = s->in;
    if (s->pos + 10 > s->in_len) fail(s, ERR_INPUT);
    if (in[s->pos] != 0x1f || in[s->pos + 1] != 0x8b || in[s->pos + 2] != 8)
        fail(s, ERR_FORMAT);
    uint8_t flags = in[s->pos + 3];
    if (flags & 0xe0) fail(s, ERR_FORMAT);
    s->pos += 10;
    if (flags & 4) { /* FEXTRA */
        if (s->pos + 2 > s->in_len) fail(s, ERR_INPUT);
        size_t xlen = in[s->pos] | (size_t)in[s->pos + 1] << 8;
        if (s->pos + 2 + xlen > s->in_len) fail(s, ERR_INPUT);
        s->pos += 2 + xlen;
    }
    if (flags & 8) skip_zero_terminated(s);  /* FNAME */
    if (flags & 16) skip_zero_terminated(s); /* FCOMMENT */
    if (flags & 2) s->pos += 2;              /* FHCRC */
    size_t start = s->out_len;
    inflate_raw(s);
    if (s->pos + 8 > s->in_len) fail(s, ERR_INPUT);
    uint32_t crc = in[s->pos] | (uint32_t)in[s->pos + 1] << 8 | (uint32_t)in[s->pos + 2] << 16 |
                   (uint32_t)in[s->pos + 3] << 24;
    uint32_t size = in[s->pos + 4] | (uint32_t)in[s->pos + 5] << 8 |
                    (uint32_t)in[s->pos + 6] << 16 | (uint32_t)in[s->pos + 7] << 24;
    s->pos += 8;
    if (crc != crc32_update(0, s->out + start, s->out_len - start) ||
        size != (uint32_t)(s->out_len - start))
        fail(s, ERR_CHECK);
}

int gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len) {
    /* volatile: read after longjmp */
    struct state *volatile s = calloc(1, sizeof *s);
    *out = NULL;
    *out_len = 0;
    if (!s) return ERR_NOMEM;
    s->in = in;
    s->in_len = in_len;
    int rc = setjmp(s->fail);
    if (rc == 0) {
        do member(s);
        while (s->pos < s->in_len);
        *out = s->out ? s->out : malloc(1);
        *out_len = s->out_len;
    } else {
        free(s->out);
    }
    free(s);
    return rc;
}
