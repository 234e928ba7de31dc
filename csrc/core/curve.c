/*
 * curve.c -- the iterated light-enhancement curve of Zero-DCE / Zero-DCE++
 * (REFERENCE section 2), forward and backward, float32 and float64.
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
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tasklle.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef _OPENMP
#define CURVE_TID(v) ((v) = omp_get_thread_num())
#else
#define CURVE_TID(v) ((void)0)
#endif

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

/*
 * One template per element type: T is the element type, S the name suffix.
 * Every inner loop runs over the pixels of one tile with restrict-qualified
 * pointers and no loop-carried dependence, so -O3 vectorises it.
 */
#define TLL_CURVE_DEFINE(T, S)                                                                              \
    /* out = one curve step of cur with map a */                                                            \
    static inline void curve_step_##S(T *restrict out, const T *restrict cur, const T *restrict a, size_t n) \
    {                                                                                                       \
        for (size_t j = 0; j < n; j++) {                                                                    \
            T v = cur[j];                                                                                   \
            out[j] = v + a[j] * (v * v - v);                                                                \
        }                                                                                                   \
    }                                                                                                       \
                                                                                                            \
    /* the same step in place (separate because restrict forbids out == cur) */                             \
    static inline void curve_step_inplace_##S(T *restrict o, const T *restrict a, size_t n)                 \
    {                                                                                                       \
        for (size_t j = 0; j < n; j++) {                                                                    \
            T v = o[j];                                                                                     \
            o[j] = v + a[j] * (v * v - v);                                                                  \
        }                                                                                                   \
    }                                                                                                       \
                                                                                                            \
    /* ga = g * (x*x - x) (stored, or accumulated, or skipped if ga is NULL); g *= 1 + a*(2x - 1) */        \
    static inline void curve_back_step_##S(T *restrict g, T *restrict ga, const T *restrict xk,              \
                                           const T *restrict a, size_t n, int accumulate)                   \
    {                                                                                                       \
        if (!ga) {                                                                                          \
            for (size_t j = 0; j < n; j++)                                                                  \
                g[j] = g[j] * (1 + a[j] * (2 * xk[j] - 1));                                                 \
        } else if (accumulate) {                                                                            \
            for (size_t j = 0; j < n; j++) {                                                                \
                T v = xk[j], gj = g[j];                                                                     \
                ga[j] += gj * (v * v - v);                                                                  \
                g[j] = gj * (1 + a[j] * (2 * v - 1));                                                       \
            }                                                                                               \
        } else {                                                                                            \
            for (size_t j = 0; j < n; j++) {                                                                \
                T v = xk[j], gj = g[j];                                                                     \
                ga[j] = gj * (v * v - v);                                                                   \
                g[j] = gj * (1 + a[j] * (2 * v - 1));                                                       \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
                                                                                                            \
    static inline void curve_add_##S(T *restrict g, const T *restrict h, size_t n)                          \
    {                                                                                                       \
        for (size_t j = 0; j < n; j++)                                                                      \
            g[j] += h[j];                                                                                   \
    }                                                                                                       \
                                                                                                            \
    /* Forward of one tile of m pixels; map k starts at a0 + k*astep. */                                    \
    CURVE_CLONES static void curve_fwd_tile_##S(T *o, T *half, const T *x0, const T *a0, size_t astep,      \
                                                size_t m, int n, int half_after)                            \
    {                                                                                                       \
        if (half && half_after == 0)                                                                        \
            memcpy(half, x0, m * sizeof(T));                                                                \
        curve_step_##S(o, x0, a0, m);                                                                       \
        for (int k = 1; k < n; k++) {                                                                       \
            if (half && k == half_after)                                                                    \
                memcpy(half, o, m * sizeof(T));                                                             \
            curve_step_inplace_##S(o, a0 + (size_t)k * astep, m);                                           \
        }                                                                                                   \
        if (half && half_after == n)                                                                        \
            memcpy(half, o, m * sizeof(T));                                                                 \
    }                                                                                                       \
                                                                                                            \
    /* Backward of one tile of m pixels. rows: n-1 scratch rows of `tile` for x_1..x_{n-1}; g: one row.    \
     * ga0 (map k's gradient at ga0 + k*astep), gx, go, gh may be NULL. */                                  \
    CURVE_CLONES static void curve_bwd_tile_##S(T *gx, T *ga0, const T *go, const T *gh, const T *x0,       \
                                                const T *a0, size_t astep, size_t m, int n, int half_after, \
                                                T *rows, T *g, size_t tile)                                 \
    {                                                                                                       \
        /* recompute x_1 .. x_{n-1} of this tile */                                                         \
        for (int k = 1; k < n; k++) {                                                                       \
            const T *prev = k == 1 ? x0 : rows + (size_t)(k - 2) * tile;                                    \
            curve_step_##S(rows + (size_t)(k - 1) * tile, prev, a0 + (size_t)(k - 1) * astep, m);           \
        }                                                                                                   \
        if (go)                                                                                             \
            memcpy(g, go, m * sizeof(T));                                                                   \
        else                                                                                                \
            memset(g, 0, m * sizeof(T));                                                                    \
        if (gh && half_after == n)                                                                          \
            curve_add_##S(g, gh, m);                                                                        \
        for (int k = n - 1; k >= 0; k--) {                                                                  \
            const T *xk = k == 0 ? x0 : rows + (size_t)(k - 1) * tile;                                      \
            /* a shared map (astep == 0): its gradient is written at k = n-1, then accumulated */           \
            curve_back_step_##S(g, ga0 ? ga0 + (size_t)k * astep : NULL, xk, a0 + (size_t)k * astep, m,     \
                                astep == 0 && k < n - 1);                                                   \
            if (gh && k == half_after)                                                                      \
                curve_add_##S(g, gh, m);                                                                    \
        }                                                                                                   \
        if (gx)                                                                                             \
            memcpy(gx, g, m * sizeof(T));                                                                   \
    }                                                                                                       \
                                                                                                            \
    tll_status tll_curve_forward_##S(T *out, T *half, const T *x, const T *A, size_t batch, size_t height,   \
                                     size_t width, int iterations, int per_iteration, int half_after)       \
    {                                                                                                       \
        size_t hw;                                                                                          \
        tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,            \
                                    sizeof(T), &hw);                                                        \
        if (st != TLL_OK || batch * hw == 0)                                                                \
            return st;                                                                                      \
        size_t maps = per_iteration ? (size_t)iterations : 1;                                               \
        size_t astep = per_iteration ? 3 * hw : 0;                                                          \
        size_t tile = CURVE_TILE_MAX, tiles = (hw + tile - 1) / tile, items = batch * 3 * tiles;            \
        int par = batch * 3 * hw >= CURVE_PAR_MIN;                                                          \
        _Pragma("omp parallel for schedule(static) num_threads(tll_get_num_threads()) if(par)")             \
        for (size_t it = 0; it < items; it++) {                                                             \
            size_t pl = it / tiles, b = pl / 3, c = pl % 3;                                                 \
            size_t p0 = (it % tiles) * tile;                                                                \
            size_t m = hw - p0 < tile ? hw - p0 : tile;                                                     \
            size_t off = pl * hw + p0;                                                                      \
            /* map k of plane (b, c): channel 3k+c of image b (k = 0 for the shared map) */                 \
            curve_fwd_tile_##S(out + off, half ? half + off : NULL, x + off, A + (b * 3 * maps + c) * hw + p0, \
                               astep, m, iterations, half_after);                                           \
        }                                                                                                   \
        (void)par;                                                                                          \
        return TLL_OK;                                                                                      \
    }                                                                                                       \
                                                                                                            \
    tll_status tll_curve_backward_##S(T *grad_x, T *grad_A, const T *grad_out, const T *grad_half,          \
                                      const T *x, const T *A, size_t batch, size_t height, size_t width,    \
                                      int iterations, int per_iteration, int half_after)                   \
    {                                                                                                       \
        size_t hw;                                                                                          \
        tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,            \
                                    sizeof(T), &hw);                                                        \
        if (st != TLL_OK || batch * hw == 0 || (!grad_x && !grad_A))                                        \
            return st;                                                                                      \
        size_t maps = per_iteration ? (size_t)iterations : 1;                                               \
        size_t astep = per_iteration ? 3 * hw : 0;                                                          \
        if (!grad_out && !grad_half) { /* no incoming gradient: every gradient is zero */                  \
            if (grad_x)                                                                                     \
                memset(grad_x, 0, batch * 3 * hw * sizeof(T));                                              \
            if (grad_A)                                                                                     \
                memset(grad_A, 0, batch * 3 * maps * hw * sizeof(T));                                       \
            return TLL_OK;                                                                                  \
        }                                                                                                   \
        size_t tile = curve_tile(iterations, sizeof(T)), tiles = (hw + tile - 1) / tile;                    \
        size_t items = batch * 3 * tiles;                                                                   \
        int par = batch * 3 * hw >= CURVE_PAR_MIN;                                                          \
        int nthreads = par ? tll_get_num_threads() : 1;                                                     \
        /* per thread: n rows of `tile` (x_1..x_{n-1} and the running gradient), 64-byte aligned */        \
        size_t per = ((size_t)iterations * tile * sizeof(T) + 63) / 64 * 64;                                \
        unsigned char *scratch = malloc(per * (size_t)nthreads + 64);                                       \
        if (!scratch)                                                                                       \
            return TLL_ERR_NOMEM;                                                                           \
        unsigned char *base = scratch + (64 - (uintptr_t)scratch % 64) % 64;                                \
        _Pragma("omp parallel num_threads(nthreads) if(par)")                                               \
        {                                                                                                   \
            int tid = 0;                                                                                    \
            CURVE_TID(tid);                                                                                 \
            T *rows = (T *)(base + per * (size_t)tid);                                                      \
            T *g = rows + (size_t)(iterations - 1) * tile;                                                  \
            _Pragma("omp for schedule(static)")                                                             \
            for (size_t it = 0; it < items; it++) {                                                         \
                size_t pl = it / tiles, b = pl / 3, c = pl % 3;                                             \
                size_t p0 = (it % tiles) * tile;                                                            \
                size_t m = hw - p0 < tile ? hw - p0 : tile;                                                 \
                size_t off = pl * hw + p0, aoff = (b * 3 * maps + c) * hw + p0;                             \
                curve_bwd_tile_##S(grad_x ? grad_x + off : NULL, grad_A ? grad_A + aoff : NULL,             \
                                   grad_out ? grad_out + off : NULL, grad_half ? grad_half + off : NULL,    \
                                   x + off, A + aoff, astep, m, iterations, half_after, rows, g, tile);     \
            }                                                                                               \
        }                                                                                                   \
        free(scratch);                                                                                      \
        return TLL_OK;                                                                                      \
    }

TLL_CURVE_DEFINE(float, f32)
TLL_CURVE_DEFINE(double, f64)
