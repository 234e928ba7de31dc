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
 * One template per element type. T is the element type, S the name suffix.
 * Every inner loop runs over the pixels of one tile with restrict-qualified
 * pointers and no loop-carried dependence, so -O3 vectorises it.
 */
#define TLL_CURVE_DEFINE(T, S)                                                                              \
    /* out = one curve step of cur with map a, n elements */                                                \
    static inline void curve_step_##S(T *restrict out, const T *restrict cur, const T *restrict a, size_t n) \
    {                                                                                                       \
        for (size_t j = 0; j < n; j++) {                                                                    \
            T v = cur[j];                                                                                   \
            out[j] = v + a[j] * (v * v - v);                                                                \
        }                                                                                                   \
    }                                                                                                       \
    /* the same step in place (a separate function: restrict forbids out == cur) */                         \
    static inline void curve_step_inplace_##S(T *restrict o, const T *restrict a, size_t n)                 \
    {                                                                                                       \
        for (size_t j = 0; j < n; j++) {                                                                    \
            T v = o[j];                                                                                     \
            o[j] = v + a[j] * (v * v - v);                                                                  \
        }                                                                                                   \
    }                                                                                                       \
                                                                                                            \
    tll_status tll_curve_forward_##S(T *out, T *half, const T *x, const T *A, size_t batch, size_t height,   \
                                     size_t width, int iterations, int per_iteration, int half_after)       \
    {                                                                                                       \
        size_t hw;                                                                                          \
        tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,            \
                                    sizeof(T), &hw);                                                        \
        if (st != TLL_OK)                                                                                   \
            return st;                                                                                      \
        size_t maps = per_iteration ? (size_t)iterations : 1;                                               \
        size_t tile = CURVE_TILE_MAX;                                                                       \
        size_t tiles = (hw + tile - 1) / tile;                                                              \
        size_t items = batch * 3 * tiles;                                                                   \
        int par = batch * 3 * hw >= CURVE_PAR_MIN;                                                          \
        (void)par;                                                                                          \
        _Pragma("omp parallel for schedule(static) num_threads(tll_get_num_threads()) if(par)")             \
        for (size_t it = 0; it < items; it++) {                                                             \
            size_t pl = it / tiles, b = pl / 3, c = pl % 3;                                                 \
            size_t p0 = (it % tiles) * tile;                                                                \
            size_t m = hw - p0 < tile ? hw - p0 : tile;                                                     \
            size_t off = pl * hw + p0;                                                                      \
            /* map k of this plane: channel 3k+c of image b (k = 0 for the shared map) */                   \
            const T *a0 = A + (b * 3 * maps + c) * hw + p0;                                                 \
            size_t astep = per_iteration ? 3 * hw : 0;                                                      \
            T *o = out + off;                                                                               \
            if (half && half_after == 0)                                                                    \
                memcpy(half + off, x + off, m * sizeof(T));                                                 \
            curve_step_##S(o, x + off, a0, m);                                                              \
            for (int k = 1; k < iterations; k++) {                                                          \
                if (half && k == half_after)                                                                \
                    memcpy(half + off, o, m * sizeof(T));                                                   \
                curve_step_inplace_##S(o, a0 + (size_t)k * astep, m);                                    \
            }                                                                                               \
            if (half && half_after == iterations)                                                           \
                memcpy(half + off, o, m * sizeof(T));                                                       \
        }                                                                                                   \
        return TLL_OK;                                                                                      \
    }                                                                                                       \
                                                                                                            \
    /* g <- g * (1 + a*(2x - 1)); ga = g_old * (x*x - x), stored or accumulated */                         \
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
    tll_status tll_curve_backward_##S(T *grad_x, T *grad_A, const T *grad_out, const T *grad_half,          \
                                      const T *x, const T *A, size_t batch, size_t height, size_t width,    \
                                      int iterations, int per_iteration, int half_after)                   \
    {                                                                                                       \
        size_t hw;                                                                                          \
        tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,            \
                                    sizeof(T), &hw);                                                        \
        if (st != TLL_OK)                                                                                   \
            return st;                                                                                      \
        size_t maps = per_iteration ? (size_t)iterations : 1;                                               \
        size_t nplanes = batch * 3, nA = batch * 3 * maps * hw;                                             \
        if (!grad_x && !grad_A)                                                                             \
            return TLL_OK;                                                                                  \
        if (!grad_out && !grad_half) { /* no incoming gradient: all gradients are zero */                  \
            if (grad_x)                                                                                     \
                memset(grad_x, 0, nplanes * hw * sizeof(T));                                                \
            if (grad_A)                                                                                     \
                memset(grad_A, 0, nA * sizeof(T));                                                          \
            return TLL_OK;                                                                                  \
        }                                                                                                   \
        if (nplanes * hw == 0)                                                                              \
            return TLL_OK;                                                                                  \
        size_t tile = curve_tile(iterations, sizeof(T));                                                    \
        size_t tiles = (hw + tile - 1) / tile;                                                              \
        size_t items = nplanes * tiles;                                                                     \
        int par = nplanes * hw >= CURVE_PAR_MIN;                                                            \
        int nthreads = par ? tll_get_num_threads() : 1;                                                     \
        /* per thread: rows x_1..x_{n-1} and the running gradient, n rows; 64-byte aligned */              \
        size_t per = ((size_t)iterations * tile * sizeof(T) + 63) / 64 * 64;                                \
        unsigned char *scratch = malloc(per * (size_t)nthreads + 64);                                       \
        if (!scratch)                                                                                       \
            return TLL_ERR_NOMEM;                                                                           \
        unsigned char *base = scratch + (64 - (uintptr_t)scratch % 64) % 64;                                \
        _Pragma("omp parallel num_threads(nthreads) if(par)")                                               \
        {                                                                                                   \
            int tid = 0;                                                                                    \
            CURVE_TID(tid);                                                                                  \
            T *rows = (T *)(base + per * (size_t)tid); /* rows[(k-1)*tile ..] = x_k, k = 1..n-1 */         \
            T *g = rows + (size_t)(iterations - 1) * tile;                                                  \
            _Pragma("omp for schedule(static)")                                                             \
            for (size_t it = 0; it < items; it++) {                                                         \
                size_t pl = it / tiles, b = pl / 3, c = pl % 3;                                             \
                size_t p0 = (it % tiles) * tile;                                                            \
                size_t m = hw - p0 < tile ? hw - p0 : tile;                                                 \
                size_t off = pl * hw + p0;                                                                  \
                size_t aoff = (b * 3 * maps + c) * hw + p0;                                                 \
                size_t astep = per_iteration ? 3 * hw : 0;                                                  \
                const T *x0 = x + off;                                                                      \
                /* recompute x_1 .. x_{n-1} of this tile */                                                 \
                for (int k = 1; k < iterations; k++) {                                                      \
                    const T *prev = k == 1 ? x0 : rows + (size_t)(k - 2) * tile;                            \
                    curve_step_##S(rows + (size_t)(k - 1) * tile, prev, A + aoff + (size_t)(k - 1) * astep, m); \
                }                                                                                           \
                if (grad_out)                                                                               \
                    memcpy(g, grad_out + off, m * sizeof(T));                                               \
                else                                                                                        \
                    memset(g, 0, m * sizeof(T));                                                            \
                if (grad_half && half_after == iterations)                                                  \
                    curve_add_##S(g, grad_half + off, m);                                                   \
                for (int k = iterations - 1; k >= 0; k--) {                                                 \
                    const T *xk = k == 0 ? x0 : rows + (size_t)(k - 1) * tile;                              \
                    T *ga = grad_A ? grad_A + aoff + (size_t)k * astep : NULL;                              \
                    /* the shared map's gradient is written at k = n-1, then accumulated */                \
                    curve_back_step_##S(g, ga, xk, A + aoff + (size_t)k * astep, m,                         \
                                        !per_iteration && k < iterations - 1);                              \
                    if (grad_half && k == half_after)                                                       \
                        curve_add_##S(g, grad_half + off, m);                                               \
                }                                                                                           \
                if (grad_x)                                                                                 \
                    memcpy(grad_x + off, g, m * sizeof(T));                                                 \
            }                                                                                               \
        }                                                                                                   \
        free(scratch);                                                                                      \
        return TLL_OK;                                                                                      \
    }

TLL_CURVE_DEFINE(float, f32)
TLL_CURVE_DEFINE(double, f64)
