/* SPDX-License-Identifier: Apache-2.0 */
/* Verify block format and checks (see verify.h); CRC32C (Castagnoli) and MD5 (RFC 1321) in C. */
#include "verify.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define VERIFY_MAGIC 0x76666662u /* "bffv" */

struct vhdr {
    uint32_t magic;
    uint32_t len;
    uint64_t offset;
    uint8_t sum[16]; /* crc32c in the first 4 bytes, or md5 */
};

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t bffio_crc32c(uint32_t crc, const void *data, size_t len)
{
    /* numjobs clones verify on several threads at once. */
    pthread_once(&crc_once, crc_init);
    const uint32_t *table = crc_table;
    const uint8_t *p = data;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* MD5, RFC 1321. */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const uint8_t md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(uint32_t h[4], const uint8_t *blk)
{
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 | (uint32_t)blk[4 * i + 2] << 16 |
               (uint32_t)blk[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        uint32_t t = d;
        d = c;
        c = b;
        uint32_t x = a + f + md5_k[i] + w[g];
        b = b + ((x << md5_r[i]) | (x >> (32 - md5_r[i])));
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

void bffio_md5(const void *data, size_t len, uint8_t out[16])
{
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        md5_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 8 + i] = (uint8_t)(bits >> (8 * i));
    md5_block(h, tail);
    if (tl == 128)
        md5_block(h, tail + 64);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            out[4 * i + k] = (uint8_t)(h[i] >> (8 * k));
}

static void payload(void *buf, size_t len, uint64_t offset)
{
    uint64_t s = offset * 0x9e3779b97f4a7c15ull + 0x5eed;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(p + i, &z, n);
    }
}

static void checksum(const struct bffio_job *job, const uint8_t *p, size_t len, uint8_t sum[16])
{
    memset(sum, 0, 16);
    if (job->verify == BFFIO_VERIFY_MD5) {
        bffio_md5(p, len, sum);
    } else {
        uint32_t c = bffio_crc32c(0, p, len);
        memcpy(sum, &c, sizeof(c));
    }
}

void bffio_verify_fill(const struct bffio_job *job, void *buf, size_t len, uint64_t offset)
{
    uint8_t *p = buf;
    if (job->verify == BFFIO_VERIFY_PATTERN) {
        for (size_t i = 0; i < len; i++)
            p[i] = job->verify_pattern[i % job->verify_pattern_len];
        return;
    }
    struct vhdr h = {VERIFY_MAGIC, (uint32_t)len, offset, {0}};
    payload(p + sizeof(h), len - sizeof(h), offset);
    checksum(job, p + sizeof(h), len - sizeof(h), h.sum);
    memcpy(p, &h, sizeof(h));
}

int bffio_verify_check(const struct bffio_job *job, const void *buf, size_t len, uint64_t offset, const char *file,
                       char *msg, size_t msg_len)
{
    const uint8_t *p = buf;
    if (job->verify == BFFIO_VERIFY_PATTERN) {
        for (size_t i = 0; i < len; i++) {
            if (p[i] != job->verify_pattern[i % job->verify_pattern_len]) {
                snprintf(msg, msg_len, "verify: bad pattern at offset %" PRIu64 " of %s (byte %zu of the block)",
                         offset, file, i);
                return -1;
            }
        }
        return 0;
    }
    struct vhdr h;
    memcpy(&h, p, sizeof(h));
    if (h.magic != VERIFY_MAGIC || h.len != len || h.offset != offset) {
        snprintf(msg, msg_len,
                 "verify: bad header at offset %" PRIu64 " of %s (magic %08x, len %u, offset %" PRIu64 ")", offset,
                 file, h.magic, h.len, h.offset);
        return -1;
    }
    uint8_t sum[16];
    checksum(job, p + sizeof(h), len - sizeof(h), sum);
    if (memcmp(sum, h.sum, sizeof(sum))) {
        snprintf(msg, msg_len, "verify: %s mismatch at offset %" PRIu64 " of %s (block of %zu bytes)",
                 job->verify == BFFIO_VERIFY_MD5 ? "md5" : "crc32c", offset, file, len);
        return -1;
    }
    return 0;
}
