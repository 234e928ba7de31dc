/*
 * curve_tmpl.h -- private template of csrc/core/curve.c, included once per
 * element type with T (float / double) and S (f32 / f64) defined (see
 * tll_tmpl.h). The formulas, the tiling and the memory rules are in the
 * opening comment of curve.c.
 *
 * Every inner loop runs over the pixels of one tile with restrict-qualified
 * pointers and no loop-carried dependence, so -O3 vectorises it.
 */

/* out = one curve step of cur with map a */
static inline void FN(curve_step_)(T *restrict out, const T *restrict cur, const T *restrict a, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        T v = cur[j];
        out[j] = v + a[j] * (v * v - v);
    }
}

/* the same step in place (separate because restrict forbids out == cur) */
static inline void FN(curve_step_inplace_)(T *restrict o, const T *restrict a, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        T v = o[j];
        o[j] = v + a[j] * (v * v - v);
    }
}

/* ga = g * (x*x - x) (stored, or accumulated, or skipped if ga is NULL); g *= 1 + a*(2x - 1) */
static inline void FN(curve_back_step_)(T *restrict g, T *restrict ga, const T *restrict xk,
                                       const T *restrict a, size_t n, int accumulate)
{
    if (!ga) {
        for (size_t j = 0; j < n; j++)
            g[j] = g[j] * (1 + a[j] * (2 * xk[j] - 1));
    } else if (accumulate) {
        for (size_t j = 0; j < n; j++) {
            T v = xk[j], gj = g[j];
            ga[j] += gj * (v * v - v);
            g[j] = gj * (1 + a[j] * (2 * v - 1));
        }
    } else {
        for (size_t j = 0; j < n; j++) {
            T v = xk[j], gj = g[j];
            ga[j] = gj * (v * v - v);
            g[j] = gj * (1 + a[j] * (2 * v - 1));
        }
    }
}

static inline void FN(curve_add_)(T *restrict g, const T *restrict h, size_t n)
{
    for (size_t j = 0; j < n; j++)
        g[j] += h[j];
}

/* Forward of one tile of m pixels; map k starts at a0 + k*astep. */
CURVE_CLONES static void FN(curve_fwd_tile_)(T *o, T *half, const T *x0, const T *a0, size_t astep,
                                            size_t m, int n, int half_after)
{
    if (half && half_after == 0)
        memcpy(half, x0, m * sizeof(T));
    FN(curve_step_)(o, x0, a0, m);
    for (int k = 1; k < n; k++) {
        if (half && k == half_after)
            memcpy(half, o, m * sizeof(T));
        FN(curve_step_inplace_)(o, a0 + (size_t)k * astep, m);
    }
    if (half && half_after == n)
        memcpy(half, o, m * sizeof(T));
}

/* Backward of one tile of m pixels. rows: n-1 scratch rows of `tile` for x_1..x_{n-1}; g: one row.
 * ga0 (map k's gradient at ga0 + k*astep), gx, go, gh may be NULL. */
CURVE_CLONES static void FN(curve_bwd_tile_)(T *gx, T *ga0, const T *go, const T *gh, const T *x0,
                                            const T *a0, size_t astep, size_t m, int n, int half_after,
                                            T *rows, T *g, size_t tile)
{
    /* recompute x_1 .. x_{n-1} of this tile */
    for (int k = 1; k < n; k++) {
        const T *prev = k == 1 ? x0 : rows + (size_t)(k - 2) * tile;
        FN(curve_step_)(rows + (size_t)(k - 1) * tile, prev, a0 + (size_t)(k - 1) * astep, m);
    }
    if (go)
        memcpy(g, go, m * sizeof(T));
    else
        memset(g, 0, m * sizeof(T));
    if (gh && half_after == n)
        FN(curve_add_)(g, gh, m);
    for (int k = n - 1; k >= 0; k--) {
        const T *xk = k == 0 ? x0 : rows + (size_t)(k - 1) * tile;
        /* a shared map (astep == 0): its gradient is written at k = n-1, then accumulated */
        FN(curve_back_step_)(g, ga0 ? ga0 + (size_t)k * astep : NULL, xk, a0 + (size_t)k * astep, m,
                            astep == 0 && k < n - 1);
        if (gh && k == half_after)
            FN(curve_add_)(g, gh, m);
    }
    if (gx)
        memcpy(gx, g, m * sizeof(T));
}

tll_status FN(tll_curve_forward_)(T *out, T *half, const T *x, const T *A, size_t batch, size_t height,
                                 size_t width, int iterations, int per_iteration, int half_after)
{
    size_t hw;
    tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,
                                sizeof(T), &hw);
    if (st != TLL_OK || batch * hw == 0)
        return st;
    size_t maps = per_iteration ? (size_t)iterations : 1;
    size_t astep = per_iteration ? 3 * hw : 0;
    size_t tile = CURVE_TILE_MAX, tiles = (hw + tile - 1) / tile, items = batch * 3 * tiles;
    int par = batch * 3 * hw >= CURVE_PAR_MIN;
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if(par)
    for (size_t it = 0; it < items; it++) {
        size_t pl = it / tiles, b = pl / 3, c = pl % 3;
        size_t p0 = (it % tiles) * tile;
        size_t m = hw - p0 < tile ? hw - p0 : tile;
        size_t off = pl * hw + p0;
        /* map k of plane (b, c): channel 3k+c of image b (k = 0 for the shared map) */
        FN(curve_fwd_tile_)(out + off, half ? half + off : NULL, x + off, A + (b * 3 * maps + c) * hw + p0,
                           astep, m, iterations, half_after);
    }
    (void)par;
    return TLL_OK;
}

tll_status FN(tll_curve_backward_)(T *grad_x, T *grad_A, const T *grad_out, const T *grad_half,
                                  const T *x, const T *A, size_t batch, size_t height, size_t width,
                                  int iterations, int per_iteration, int half_after)
{
    size_t hw;
    tll_status st = curve_check(batch, height, width, iterations, per_iteration, half_after,
                                sizeof(T), &hw);
    if (st != TLL_OK || batch * hw == 0 || (!grad_x && !grad_A))
        return st;
    size_t maps = per_iteration ? (size_t)iterations : 1;
    size_t astep = per_iteration ? 3 * hw : 0;
    if (!grad_out && !grad_half) { /* no incoming gradient: every gradient is zero */
        if (grad_x)
            memset(grad_x, 0, batch * 3 * hw * sizeof(T));
        if (grad_A)
            memset(grad_A, 0, batch * 3 * maps * hw * sizeof(T));
        return TLL_OK;
    }
    size_t tile = curve_tile(iterations, sizeof(T)), tiles = (hw + tile - 1) / tile;
    size_t items = batch * 3 * tiles;
    int par = batch * 3 * hw >= CURVE_PAR_MIN;
    int nthreads = par ? tll_get_num_threads() : 1;
    /* per thread: n rows of `tile` (x_1..x_{n-1} and the running gradient) */
    tll_scratch scratch;
    st = tll_scratch_alloc(&scratch, (size_t)iterations * tile * sizeof(T), nthreads);
    if (st != TLL_OK)
        return st;
#pragma omp parallel num_threads(nthreads) if(par)
    {
        T *rows = tll_scratch_slot(&scratch);
        T *g = rows + (size_t)(iterations - 1) * tile;
#pragma omp for schedule(static)
        for (size_t it = 0; it < items; it++) {
            size_t pl = it / tiles, b = pl / 3, c = pl % 3;
            size_t p0 = (it % tiles) * tile;
            size_t m = hw - p0 < tile ? hw - p0 : tile;
            size_t off = pl * hw + p0, aoff = (b * 3 * maps + c) * hw + p0;
            FN(curve_bwd_tile_)(grad_x ? grad_x + off : NULL, grad_A ? grad_A + aoff : NULL,
                               grad_out ? grad_out + off : NULL, grad_half ? grad_half + off : NULL,
                               x + off, A + aoff, astep, m, iterations, half_after, rows, g, tile);
        }
    }
    free(scratch.block);
    return TLL_OK;
}

/*
 * Fused inference of Zero-DCE++ at a scale factor > 1: the (ha, wa) map a is
 * upsampled to (height, width) with bilinear interpolation, align_corners=True
 * (torch's F.interpolate; coordinates in T as torch computes them for float
 * and double), and the curve with that shared map is applied to x, one output
 * row at a time: the full-resolution map is written only if `map` is given,
 * and never read back. Per thread: one vertically interpolated row of the
 * small map (wa) and, without `map`, one row of the full map (width).
 */
tll_status FN(tll_curve_upsample_forward_)(T *out, T *map, const T *x, const T *a, size_t batch, size_t height,
                                          size_t width, size_t height_a, size_t width_a, int iterations)
{
    size_t hw;
    tll_status st = curve_upsample_check(batch, height, width, height_a, width_a, iterations, sizeof(T), &hw);
    if (st != TLL_OK || batch * hw == 0)
        return st;
    /* horizontal source columns and weights, shared by every row */
    size_t *cx = malloc(2 * width * sizeof(size_t));
    T *wx = malloc(2 * width * sizeof(T));
    if (!cx || !wx) {
        free(cx);
        free(wx);
        return TLL_ERR_NOMEM;
    }
    T sxs = width > 1 ? (T)(width_a - 1) / (T)(width - 1) : (T)0;
    for (size_t j = 0; j < width; j++) {
        T src = sxs * (T)j;
        size_t j0 = (size_t)src;
        if (j0 > width_a - 1)
            j0 = width_a - 1;
        T l = src - (T)j0;
        l = l < 0 ? (T)0 : (l > 1 ? (T)1 : l);
        cx[2 * j] = j0;
        cx[2 * j + 1] = j0 + (j0 < width_a - 1 ? 1 : 0);
        wx[2 * j] = 1 - l;
        wx[2 * j + 1] = l;
    }
    T sys_ = height > 1 ? (T)(height_a - 1) / (T)(height - 1) : (T)0;
    size_t rows = batch * 3 * height;
    int par = batch * 3 * hw >= CURVE_PAR_MIN;
    int nthreads = par ? tll_get_num_threads() : 1;
    tll_scratch scratch;
    st = tll_scratch_alloc(&scratch, (width_a + (map ? 0 : width)) * sizeof(T), nthreads);
    if (st != TLL_OK) {
        free(cx);
        free(wx);
        return st;
    }
#pragma omp parallel num_threads(nthreads) if(par)
    {
        T *v = tll_scratch_slot(&scratch);
        T *arow_own = v + width_a;
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            size_t pl = r / height, i = r % height;
            T src = sys_ * (T)i;
            size_t i0 = (size_t)src;
            if (i0 > height_a - 1)
                i0 = height_a - 1;
            size_t i1 = i0 + (i0 < height_a - 1 ? 1 : 0);
            T l = src - (T)i0;
            l = l < 0 ? (T)0 : (l > 1 ? (T)1 : l);
            T l0 = 1 - l;
            const T *a0 = a + (pl * height_a + i0) * width_a, *a1 = a + (pl * height_a + i1) * width_a;
            for (size_t k = 0; k < width_a; k++)
                v[k] = l0 * a0[k] + l * a1[k];
            size_t off = pl * hw + i * width;
            T *arow = map ? map + off : arow_own;
            for (size_t j = 0; j < width; j++)
                arow[j] = wx[2 * j] * v[cx[2 * j]] + wx[2 * j + 1] * v[cx[2 * j + 1]];
            FN(curve_fwd_tile_)(out + off, NULL, x + off, arow, 0, width, iterations, 0);
        }
    }
    free(scratch.block);
    free(cx);
    free(wx);
    return TLL_OK;
}
