/* SPDX-License-Identifier: Apache-2.0 */
/* Compiler helpers shared by every lib/ file: branch hints, out-of-line cold paths, cache-line
 * alignment. */
#ifndef AURAIO_COMPILER_H
#define AURAIO_COMPILER_H

#if defined(__GNUC__)
#define auraio_likely(x) __builtin_expect(!!(x), 1)
#define auraio_unlikely(x) __builtin_expect(!!(x), 0)
/* A path kept out of its hot caller, whose register saves it would otherwise inflate; COLD when it
 * is also rare (the compiler then places it apart and optimises it for size). */
#define AURAIO_NOINLINE __attribute__((noinline))
#define AURAIO_COLD __attribute__((noinline, cold))
#else
#define auraio_likely(x) (x)
#define auraio_unlikely(x) (x)
#define AURAIO_NOINLINE
#define AURAIO_COLD
#endif

/* 64 bytes on every CPU we target; a wrong guess costs only false sharing, never correctness. */
#define AURAIO_CACHELINE 64

#endif
