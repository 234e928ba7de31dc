/*
 * curve.c -- the iterated light-enhancement curve of Zero-DCE / Zero-DCE++
 * (REFERENCE section 2), forward and backward, float32 and float64; the
 * bodies are in curve_tmpl.h.
 *
 *     x_0 = x,   x_{k+1} = x_k + A_k * (x_k*x_k - x_k),   k = 0 .. n-1,   no clamping.
 *
 * A_k is the shared map A (B,3,H,W) for every k (Zero-DCE++), or channels
 * 3k..3k+2 of a per-iteration stack A (B,3n,H,W) (Zero-DCE). The op is
 * elementwise per pixel and channel, so the work is split into independent
 * (plane, tile) items: a plane is one (b, c) image channel, a tile is a run of
 * at most `tile` consecutive pixels of that plane. Items are distributed with a
 * static OpenMP schedule; every output element is computed by exactly one
 * thread with the same operation order whatever the thread count or tile size,
 * so results are bit-identical for any number of threads (no reductions exist).
 *
 * Memory:
 *  - forward: no scratch. Each tile iterates in place in the output tile (it
 *    stays in L1), reading the input and the maps once.
 *  - backward: recomputes the forward chain of one tile and keeps x_0..x_{n-1}
 *    of that tile (x_0 is the input itself, so n-1 rows are stored) plus one
 *    row for the running gradient: n*tile elements per thread. The tile is 512
 *    elements for n <= 16 in float32 (n*tile*sizeof(T) <= 32 KiB, L1/L2
 *    resident) and shrinks for larger n down to 16 elements, so the scratch is
 *    nthreads * max(32 KiB, 16*n*sizeof(T)) bytes, allocated once per call.
 *    Nothing of size B*H*W is stored between forward and backward: the
 *    backward needs only x, A and the incoming gradients.
 *
 * Gradients (g_k = dL/dx_k):
 *     g_n = dL/dout (+ dL/dhalf if half_after == n)
 *     dL/dA_k = g_{k+1} * (x_k*x_k - x_k)          (summed over k for the shared map)
 *     g_k = g_{k+1} * (1 + A_k * (2 x_k - 1))      (+ dL/dhalf if k == half_after)
 *     dL/dx = g_0
 * The shared-map sum runs k = n-1 .. 0 in that fixed order for every pixel.
 *
 * tll_curve_upsample_forward (inference of Zero-DCE++ at a scale factor > 1):
 * the small map is upsampled (bilinear, align_corners=True) row by row into
 * per-thread scratch (or into the optional full map output) and the curve is
 * applied to that row at once, so the full-resolution map is never read back
 * from memory: one pass over x and the output instead of three (upsample
 * write, curve read of x and the map, curve write). Elementwise per output
 * row, bit-identical for any thread count.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tasklle.h"

/* Below this many elements the parallel region costs more than it saves. */
#define CURVE_PAR_MIN 32768
#define CURVE_TILE_MAX 512
#define CURVE_TILE_MIN 16
#define CURVE_SCRATCH_BYTES (32 * 1024)

/* Largest power-of-two tile in [TILE_MIN, TILE_MAX] whose n rows fit the scratch budget. */
static size_t curve_tile(int iterations, size_t elem)
{
    size_t t = CURVE_TILE_MAX;
    while (t > CURVE_TILE_MIN && (size_t)iterations * t * elem > CURVE_SCRATCH_BYTES)
        t /= 2;
    return t;
}

/* Check the scalar arguments and that every buffer size fits in size_t. */
static tll_status curve_check(size_t batch, size_t height, size_t width, int iterations, int per_iteration,
                              int half_after, size_t elem, size_t *plane)
{
    if (iterations < 1 || half_after < 0 || half_after > iterations)
        return TLL_ERR_ARG;
    size_t maps = per_iteration ? (size_t)iterations : 1;
    size_t hw = height * width;
    if (height && hw / height != width)
        return TLL_ERR_OVERFLOW;
    /* the largest buffer is A: batch * 3 * maps * hw elements */
    size_t planes = 3 * maps;
    if (batch && planes > SIZE_MAX / batch)
        return TLL_ERR_OVERFLOW;
    planes *= batch;
    if (hw && planes > SIZE_MAX / elem / hw)
        return TLL_ERR_OVERFLOW;
    *plane = hw;
    return TLL_OK;
}

/* The fused upsample + curve (inference): x, out, map (batch, 3, height, width), a (batch, 3, ha, wa). */
static tll_status curve_upsample_check(size_t batch, size_t height, size_t width, size_t height_a, size_t width_a,
                                       int iterations, size_t elem, size_t *plane)
{
    if (height_a == 0 || width_a == 0)
        return TLL_ERR_ARG;
    tll_status st = curve_check(batch, height, width, iterations, 0, 0, elem, plane);
    if (st != TLL_OK)
        return st;
    size_t hwa = height_a * width_a, planes = 3 * batch;
    if (hwa / height_a != width_a || (batch && planes / batch != 3) || (hwa && planes > SIZE_MAX / elem / hwa) ||
        width > SIZE_MAX / 2 / (elem > sizeof(size_t) ? elem : sizeof(size_t)) ||
        width_a > SIZE_MAX / elem - width)
        return TLL_ERR_OVERFLOW;
    return TLL_OK;
}

/*
 * Keep every multiply and add separately rounded (no FMA contraction): the
 * results then match the PyTorch twin bit for bit and do not depend on the
 * vector ISA. GCC in ISO C mode (-std=c11, as setup.py builds) already does
 * this; these cover clang (contracts by default) and GCC's GNU modes.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

/*
 * Vector-ISA clones of the per-tile functions (GCC, glibc): the loops are
 * compute-bound at SSE2 width (the default x86-64 target), so the loader picks
 * an AVX-512 / AVX2 version at run time where the CPU has one. Every clone
 * computes the same IEEE operations in the same order (no FMA contraction,
 * above), so results do not depend on the clone chosen.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(TLL_NO_CLONES)
#define CURVE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CURVE_CLONES
#endif

#define TLL_TMPL "curve_tmpl.h"
#include "tll_each_dtype.h"
