/*
 * separable_conv.c -- the depthwise-separable block of DCE-Net++ (Zero-DCE++
 * and the project's EC-Zero-DCE darkener) as one fused kernel family, forward
 * and backward, float32 and float64; the bodies are in separable_conv_tmpl.h.
 *
 *     d[c]  = dw_b[c] + sum_{a,e in 0..2} dw_w[c,a,e] * x[c, i+a-1, j+e-1]    (zero padding 1)
 *     z[o]  = pw_b[o] + sum_c pw_w[o,c] * d[c]
 *     y     = z, or max(z, 0) with relu
 *
 * The input may come in two parts, x (the first cin-cin2 channels) and x2 (the
 * last cin2), the halves of a channel concatenation (DCE-Net's skip
 * connections feed cat([a, b], 1) to conv5..7): the kernels read each channel
 * from where it is, so the concatenation is never built, nor its gradient split.
 *
 * Why fused: in NCHW, torch's depthwise 3x3 runs at a few GFLOP/s and writes
 * the (B,Cin,H,W) intermediate d to memory, only for the 1x1 to read it back.
 * Here d never exists in full. The work is split into tiles of at most 2048
 * pixels of one image (SEP_TILE_COLS = 256 columns wide, 8 rows at that
 * width, more rows for narrower images); each tile gathers its input with a
 * 1-pixel halo (zero outside the image) into per-thread scratch, computes d
 * for the tile there, then the pointwise product as a register-blocked GEMM
 * (8 output channels x 2 vectors of pixels in registers, weights broadcast
 * from L1), and copies the tile into y (with streaming stores when y is much
 * larger than the caches: the kernels are then bound by memory traffic, and
 * streaming saves the read-for-ownership of every output line).
 *
 * Backward, with g = dL/dy masked by y > 0 under relu (torch's relu backward):
 *     dL/dpw_w[o,c] = sum_p g[o,p] d[c,p]          dL/dpw_b[o] = sum_p g[o,p]
 *     gd[c,p]       = sum_o pw_w[o,c] g[o,p]       (gradient of d)
 *     dL/ddw_w[c,a,e] = sum_p gd[c,p] x[c, p + (a-1, e-1)]   dL/ddw_b[c] = sum_p gd[c,p]
 *     dL/dx[c,i,j]  = sum_{a,e} dw_w[c,a,e] gd[c, i-a+1, j-e+1]
 * d is recomputed per tile instead of being saved by the forward. dL/dx needs
 * gd on a 1-pixel halo around the tile, so gd (a GEMM) is computed on the
 * (rows+2) x (cols+2) halo tile: 26% more work on that one GEMM for 8 x 256
 * tiles, against storing d for the whole batch.
 *
 * Memory (per thread, allocated once per call; ppx = (rows+2)*(cols+2) and
 * px = rows*cols, each rounded up to a multiple of 2 vectors):
 *  - forward:  Cin*ppx (input tile) + Cin*px (d) + Cout*px (output tile);
 *  - backward: (2*Cin + Cout)*ppx (input tile, gd, halo g) + (Cin + Cout + 1)*px
 *    (d, owned g, one channel of dL/dx); for Cin = 64, Cout = 32 in float32
 *    (ppx = 2592, px = 2048) that is 2.3 MiB (1.2 MiB for Cin = Cout = 32),
 *    about the 2 MiB L2 of one core of the machine it was tuned on.
 * Plus, in the backward, one partial of every weight and bias gradient per
 * tile ((Cout*Cin + Cout + 10*Cin) elements each) and Cin*Cout for pw_w^T.
 *
 * Determinism: the tiling depends only on the shapes. Each output element of
 * the forward and of dL/dx is computed by one tile with a fixed operation
 * order; each weight gradient is summed inside a tile in a fixed order into
 * that tile's partial (indexed by tile, not by thread), and the partials are
 * summed in tile order (in double). So every result is bit-identical for any
 * thread count. The results are not bit-identical to torch's (a different
 * summation order) and may differ in the last bits between CPUs: multiply-adds
 * are contracted to FMA where the selected code path has FMA (below): the
 * pointwise GEMM's multiply-adds are most of the arithmetic.
 *
 * NaN and inf propagate as in the arithmetic; nothing is clamped. Out-of-image
 * halo values are exact zeros, so a finite input gives finite results.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tasklle.h"

/* Contract a*b+c to FMA (setup.py builds in ISO C mode, where GCC does not). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* Vectors are passed only between always_inline functions, so GCC's note that
   64-byte vector arguments have an ABI of their own concerns no real call. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* Tile shape: 2048 pixels, whole rows up to 256 columns (long contiguous runs of
   every plane for the hardware prefetcher; squarer tiles measured slower). */
#ifndef SEP_TILE_ROWS
#define SEP_TILE_ROWS 8
#endif
#ifndef SEP_TILE_COLS
#define SEP_TILE_COLS 256
#endif
/* Below this many multiply-adds of the pointwise GEMM one thread does the call. */
#define SEP_PAR_MIN 262144.0

/*
 * Explicit vectors (GCC / clang vector extensions): one vector is 64 bytes (16
 * floats or 8 doubles), which the AVX-512 path keeps in one register. Without
 * the extensions the same loops run on scalars.
 */
#if defined(__GNUC__)
#define SEP_VEC 1
#define SEP_INLINE static inline __attribute__((always_inline))
#else
#define SEP_VEC 0
#define SEP_INLINE static inline
#endif

/*
 * Code paths chosen at run time: the tile bodies are inlined into an
 * AVX-512F+FMA, an AVX2+FMA and a baseline function, and the first call picks
 * the best one the CPU has (the curve kernel's target_clones cannot express
 * "AVX-512F and FMA" as one clone, hence the explicit dispatch).
 */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(TLL_NO_CLONES)
#define SEP_DISPATCH 1
#define SEP_TARGET_AVX512 __attribute__((target("avx512f,fma,avx2")))
#define SEP_TARGET_AVX2 __attribute__((target("avx2,fma")))
static int sep_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
    return 0;
}

#include <immintrin.h>
/* Outputs of at least this many bytes are written with streaming stores. */
#ifndef SEP_STREAM_MIN
#define SEP_STREAM_MIN (64.0 * 1024 * 1024)
#endif

/* o[j] = s[j] or relu(s[j]), with non-temporal stores where o is 64-byte aligned. */
SEP_TARGET_AVX512 static void sep_stream_row_f32(float *o, const float *s, size_t n, int relu)
{
    size_t j = 0;
    for (; j < n && (uintptr_t)(o + j) % 64; j++)
        o[j] = relu && s[j] < 0 ? 0.0f : s[j];
    __m512 z = _mm512_setzero_ps();
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(s + j);
        if (relu) /* NaN compares false and stays, as torch.relu */
            v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, z, _CMP_LT_OQ), v, z);
        _mm512_stream_ps(o + j, v);
    }
    for (; j < n; j++)
        o[j] = relu && s[j] < 0 ? 0.0f : s[j];
}

SEP_TARGET_AVX512 static void sep_stream_row_f64(double *o, const double *s, size_t n, int relu)
{
    size_t j = 0;
    for (; j < n && (uintptr_t)(o + j) % 64; j++)
        o[j] = relu && s[j] < 0 ? 0.0 : s[j];
    __m512d z = _mm512_setzero_pd();
    for (; j + 8 <= n; j += 8) {
        __m512d v = _mm512_loadu_pd(s + j);
        if (relu)
            v = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, z, _CMP_LT_OQ), v, z);
        _mm512_stream_pd(o + j, v);
    }
    for (; j < n; j++)
        o[j] = relu && s[j] < 0 ? 0.0 : s[j];
}
#else
#define SEP_DISPATCH 0
static int sep_isa(void)
{
    return 0;
}
#endif

/* The tile grid of one image: depends on the shapes only (determinism). */
typedef struct {
    size_t th, tw;       /* nominal tile rows / cols */
    size_t nty, ntx;     /* tiles per column / row */
    size_t per_image;    /* nty * ntx */
    size_t items;        /* batch * per_image */
} sep_grid;

static void sep_make_grid(sep_grid *g, size_t batch, size_t height, size_t width)
{
    g->tw = width < SEP_TILE_COLS ? width : SEP_TILE_COLS;
    size_t rows = (SEP_TILE_ROWS * SEP_TILE_COLS) / (g->tw ? g->tw : 1);
    g->th = height < rows ? height : rows;
    g->nty = g->th ? (height + g->th - 1) / g->th : 0;
    g->ntx = g->tw ? (width + g->tw - 1) / g->tw : 0;
    g->per_image = g->nty * g->ntx;
    g->items = batch * g->per_image;
}

/* Sizes fit in size_t (the largest buffer is batch*max(cin,cout)*h*w elements). */
static tll_status sep_check(size_t batch, size_t cin, size_t cin2, int have_x2, size_t cout, size_t height,
                            size_t width, size_t elem)
{
    /* x has at least one channel; x2 is given exactly when it has channels */
    if (cin == 0 || cout == 0 || cin2 >= cin || (cin2 > 0) != (have_x2 != 0))
        return TLL_ERR_ARG;
    size_t c = cin > cout ? cin : cout;
    size_t n = batch;
    size_t f[4] = {c, height, width, elem};
    for (int i = 0; i < 4; i++) {
        if (f[i] && n > SIZE_MAX / f[i])
            return TLL_ERR_OVERFLOW;
        n *= f[i];
    }
    if (cout > SIZE_MAX / cin / 16)
        return TLL_ERR_OVERFLOW;
    return TLL_OK;
}

static size_t sep_round(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

#define TLL_TMPL "separable_conv_tmpl.h"
#include "tll_each_dtype.h"
