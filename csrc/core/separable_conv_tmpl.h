/*
 * separable_conv_tmpl.h -- private template of csrc/core/separable_conv.c,
 * included once per element type with T (float / double) and S (f32 / f64)
 * defined. Layouts and formulas: the opening comment of separable_conv.c.
 *
 * Scratch of one tile (strides per channel, all multiples of SEP_NB elements
 * and 64-byte aligned, tails zero):
 *  - a halo tile: (rh+2) x (rw+2) pixels, row stride pw = rw+2, image pixel
 *    (r0-1+i, c0-1+j) at i*pw + j, zero outside the image;
 *  - an owned tile: rh x rw pixels, row stride rw.
 */
#define CTX FN(sep_ctx_)
#define SEP_VL (64 / sizeof(T))
#define SEP_NB (2 * SEP_VL)

typedef struct {
    const T *x, *x2, *dw_w, *dw_b, *pw_w, *pw_b, *wt, *gy, *y;
    T *out, *gx, *gx2, *part;
    size_t cin, cin2, cout, h, w; /* x holds channels [0, cin-cin2), x2 the other cin2 */
    int relu;
    sep_grid g;
    size_t ldp_max, ld_max, npart;
    void (*put_row)(T *, const T *, size_t, int); /* copy (and relu) one output row */
} CTX;

#if SEP_VEC
typedef T FN(sep_v_) __attribute__((vector_size(64)));
#define V FN(sep_v_)

SEP_INLINE V FN(sep_ld_)(const T *p)
{
    V v;
    memcpy(&v, p, sizeof v);
    return v;
}

SEP_INLINE void FN(sep_st_)(T *p, const V *v)
{
    memcpy(p, v, sizeof *v);
}

/* lanes summed in index order */
SEP_INLINE T FN(sep_hsum_)(const V *v)
{
    T s = 0;
    for (size_t l = 0; l < SEP_VL; l++)
        s += (*v)[l];
    return s;
}
#endif

/* o[j] = s[j], or relu(s[j]) (NaN stays NaN, as torch.relu) */
static void FN(sep_put_row_)(T *restrict o, const T *restrict s, size_t n, int relu)
{
    if (relu) {
        for (size_t j = 0; j < n; j++)
            o[j] = s[j] < 0 ? (T)0 : s[j];
    } else {
        memcpy(o, s, n * sizeof(T));
    }
}

/* Halo tile of one plane (H, W) around rows r0.., cols c0..; mask (may be NULL):
   take src only where mask > 0 is not false (torch's relu backward: zero where y <= 0). */
SEP_INLINE void FN(sep_gather_)(T *restrict t, const T *restrict src, const T *restrict mask, size_t H, size_t W,
                                size_t r0, size_t c0, size_t rh, size_t rw, size_t ldp)
{
    size_t pw = rw + 2;
    for (size_t i = 0; i < rh + 2; i++) {
        T *row = t + i * pw;
        size_t r = r0 + i; /* image row r - 1 */
        if (r == 0 || r > H) {
            memset(row, 0, pw * sizeof(T));
            continue;
        }
        size_t off = (r - 1) * W + c0;
        const T *s = src + off;
        if (mask) {
            const T *m = mask + off;
            row[0] = c0 > 0 && !(m[-1] <= 0) ? s[-1] : (T)0;
            for (size_t j = 0; j < rw; j++)
                row[j + 1] = m[j] <= 0 ? (T)0 : s[j];
            row[rw + 1] = c0 + rw < W && !(m[rw] <= 0) ? s[rw] : (T)0;
        } else {
            row[0] = c0 > 0 ? s[-1] : (T)0;
            memcpy(row + 1, s, rw * sizeof(T));
            row[rw + 1] = c0 + rw < W ? s[rw] : (T)0;
        }
    }
    memset(t + (rh + 2) * pw, 0, (ldp - (rh + 2) * pw) * sizeof(T));
}

/* out[r*ldo + j] = bias + sum_{a,e} k[3a+e] * t[(r+a)*pw + j+e] for r < rows, j < cols (3x3 correlation). */
SEP_INLINE void FN(sep_dw_rows_)(T *restrict out, size_t ldo, const T *restrict t, size_t pw, size_t rows,
                                 size_t cols, const T *k, T bias)
{
    T k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7], k8 = k[8];
    for (size_t r = 0; r < rows; r++) {
        const T *restrict x0 = t + r * pw, *restrict x1 = x0 + pw, *restrict x2 = x1 + pw;
        T *restrict o = out + r * ldo;
        for (size_t j = 0; j < cols; j++) {
            T s = bias + k0 * x0[j];
            s += k1 * x0[j + 1];
            s += k2 * x0[j + 2];
            s += k3 * x1[j];
            s += k4 * x1[j + 1];
            s += k5 * x1[j + 2];
            s += k6 * x2[j];
            s += k7 * x2[j + 1];
            s += k8 * x2[j + 2];
            o[j] = s;
        }
    }
}

/*
 * C[m][p] = bias[m] (0 if bias is NULL) + sum_k A[m*K + k] * B[k*ldb + p] for
 * m < M, p < N; N, ldb, ldc multiples of SEP_NB. Register block: mb <= 8 rows
 * of C x SEP_NB pixels; the B block of one pixel step stays in L1 across the
 * row blocks, A (M x K weights) stays in L1 throughout.
 */
#if SEP_VEC
SEP_INLINE void FN(sep_gemm_blk_)(T *C, size_t ldc, const T *A, size_t K, const T *bias, const T *B, size_t ldb,
                                  size_t m, size_t p, int mb)
{
    V acc[8][2];
    for (int i = 0; i < mb; i++) {
        T b0 = bias ? bias[m + i] : (T)0;
        acc[i][0] = (V){0} + b0;
        acc[i][1] = acc[i][0];
    }
    const T *Bp = B + p;
    const T *Am = A + m * K;
    for (size_t k = 0; k < K; k++) {
        V b0 = FN(sep_ld_)(Bp + k * ldb), b1 = FN(sep_ld_)(Bp + k * ldb + SEP_VL);
        for (int i = 0; i < mb; i++) {
            T a = Am[(size_t)i * K + k];
            acc[i][0] += a * b0;
            acc[i][1] += a * b1;
        }
    }
    for (int i = 0; i < mb; i++) {
        FN(sep_st_)(C + (m + i) * ldc + p, &acc[i][0]);
        FN(sep_st_)(C + (m + i) * ldc + p + SEP_VL, &acc[i][1]);
    }
}
#endif

SEP_INLINE void FN(sep_gemm_)(T *C, size_t ldc, const T *A, const T *bias, const T *B, size_t ldb, size_t M,
                              size_t K, size_t N)
{
#if SEP_VEC
    for (size_t p = 0; p < N; p += SEP_NB) {
        size_t m = 0;
        for (; m + 8 <= M; m += 8)
            FN(sep_gemm_blk_)(C, ldc, A, K, bias, B, ldb, m, p, 8);
        if (M - m >= 4) {
            FN(sep_gemm_blk_)(C, ldc, A, K, bias, B, ldb, m, p, 4);
            m += 4;
        }
        if (M - m >= 2) {
            FN(sep_gemm_blk_)(C, ldc, A, K, bias, B, ldb, m, p, 2);
            m += 2;
        }
        if (M - m >= 1)
            FN(sep_gemm_blk_)(C, ldc, A, K, bias, B, ldb, m, p, 1);
    }
#else
    for (size_t m = 0; m < M; m++) {
        T *c = C + m * ldc;
        T b0 = bias ? bias[m] : (T)0;
        for (size_t p = 0; p < N; p++)
            c[p] = b0;
        for (size_t k = 0; k < K; k++) {
            T a = A[m * K + k];
            const T *b = B + k * ldb;
            for (size_t p = 0; p < N; p++)
                c[p] += a * b[p];
        }
    }
#endif
}

/*
 * G[i*ldg + j] = sum_{p<N} A[i*lda + p] * B[j*ldb + p] for i < M, j < K (N a
 * multiple of SEP_VL): the pointwise weight gradient of one tile. Blocks of
 * 4 x 4 dot products, one vector accumulator each, lanes summed at the end.
 */
#if SEP_VEC
SEP_INLINE void FN(sep_wblk_)(T *G, size_t ldg, const T *A, size_t lda, const T *B, size_t ldb, size_t N, size_t i0,
                              size_t j0, int ib, int jb)
{
    V acc[4][4];
    for (int i = 0; i < ib; i++)
        for (int j = 0; j < jb; j++)
            acc[i][j] = (V){0};
    for (size_t p = 0; p < N; p += SEP_VL) {
        V a[4], b[4];
        for (int i = 0; i < ib; i++)
            a[i] = FN(sep_ld_)(A + (i0 + i) * lda + p);
        for (int j = 0; j < jb; j++)
            b[j] = FN(sep_ld_)(B + (j0 + j) * ldb + p);
        for (int i = 0; i < ib; i++)
            for (int j = 0; j < jb; j++)
                acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < ib; i++)
        for (int j = 0; j < jb; j++)
            G[(i0 + i) * ldg + j0 + j] = FN(sep_hsum_)(&acc[i][j]);
}

SEP_INLINE void FN(sep_wrow_)(T *G, size_t ldg, const T *A, size_t lda, const T *B, size_t ldb, size_t N,
                              size_t i0, size_t K, int ib)
{
    size_t j = 0;
    for (; j + 4 <= K; j += 4)
        FN(sep_wblk_)(G, ldg, A, lda, B, ldb, N, i0, j, ib, 4);
    for (; j < K; j++)
        FN(sep_wblk_)(G, ldg, A, lda, B, ldb, N, i0, j, ib, 1);
}
#endif

SEP_INLINE void FN(sep_wgrad_)(T *G, size_t ldg, const T *A, size_t lda, const T *B, size_t ldb, size_t M, size_t K,
                               size_t N)
{
#if SEP_VEC
    size_t i = 0;
    for (; i + 4 <= M; i += 4)
        FN(sep_wrow_)(G, ldg, A, lda, B, ldb, N, i, K, 4);
    for (; i < M; i++)
        FN(sep_wrow_)(G, ldg, A, lda, B, ldb, N, i, K, 1);
#else
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < K; j++) {
            T s = 0;
            for (size_t p = 0; p < N; p++)
                s += A[i * lda + p] * B[j * ldb + p];
            G[i * ldg + j] = s;
        }
#endif
}

/* sum of a[0..n) (n a multiple of SEP_VL) */
SEP_INLINE T FN(sep_sum_)(const T *a, size_t n)
{
#if SEP_VEC
    V s = (V){0};
    for (size_t p = 0; p < n; p += SEP_VL)
        s += FN(sep_ld_)(a + p);
    return FN(sep_hsum_)(&s);
#else
    T s = 0;
    for (size_t p = 0; p < n; p++)
        s += a[p];
    return s;
#endif
}

/*
 * Depthwise weight and bias gradient of one channel of one tile:
 * gw[3a+e] = sum_{r<rh, j<rw} G[(r+1)*pw + j+1] * X[(r+a)*pw + j+e], gb = sum G[owned]
 * (G: the halo tile of gd, X: the halo tile of x). Vectors along each row, the
 * row's tail in scalars; both kinds of partial are summed at the end.
 */
SEP_INLINE void FN(sep_dwgrad_)(T *gw, T *gb, const T *G, const T *X, size_t rh, size_t rw, size_t pw)
{
    T sa[9] = {0}, sb = 0;
#if SEP_VEC
    V va[9], vb = (V){0};
    for (int k = 0; k < 9; k++)
        va[k] = (V){0};
    size_t nv = rw / SEP_VL * SEP_VL;
#else
    size_t nv = 0;
#endif
    for (size_t r = 0; r < rh; r++) {
        const T *g = G + (r + 1) * pw + 1;
        const T *x0 = X + r * pw, *x1 = x0 + pw, *x2 = x1 + pw;
        size_t j = 0;
#if SEP_VEC
        for (; j < nv; j += SEP_VL) {
            V gv = FN(sep_ld_)(g + j);
            vb += gv;
            va[0] += gv * FN(sep_ld_)(x0 + j);
            va[1] += gv * FN(sep_ld_)(x0 + j + 1);
            va[2] += gv * FN(sep_ld_)(x0 + j + 2);
            va[3] += gv * FN(sep_ld_)(x1 + j);
            va[4] += gv * FN(sep_ld_)(x1 + j + 1);
            va[5] += gv * FN(sep_ld_)(x1 + j + 2);
            va[6] += gv * FN(sep_ld_)(x2 + j);
            va[7] += gv * FN(sep_ld_)(x2 + j + 1);
            va[8] += gv * FN(sep_ld_)(x2 + j + 2);
        }
#endif
        for (; j < rw; j++) {
            T gj = g[j];
            sb += gj;
            sa[0] += gj * x0[j];
            sa[1] += gj * x0[j + 1];
            sa[2] += gj * x0[j + 2];
            sa[3] += gj * x1[j];
            sa[4] += gj * x1[j + 1];
            sa[5] += gj * x1[j + 2];
            sa[6] += gj * x2[j];
            sa[7] += gj * x2[j + 1];
            sa[8] += gj * x2[j + 2];
        }
    }
#if SEP_VEC
    for (int k = 0; k < 9; k++)
        sa[k] += FN(sep_hsum_)(&va[k]);
    sb += FN(sep_hsum_)(&vb);
#endif
    for (int k = 0; k < 9; k++)
        gw[k] = sa[k];
    *gb = sb;
}

/* Channel ci of image b in x / x2 (the two halves of a channel concatenation). */
SEP_INLINE const T *FN(sep_xplane_)(const CTX *c, size_t b, size_t ci)
{
    size_t c1 = c->cin - c->cin2, hw = c->h * c->w;
    return ci < c1 ? c->x + (b * c1 + ci) * hw : c->x2 + (b * c->cin2 + ci - c1) * hw;
}

/* The same channel in grad_x / grad_x2; NULL if that half is not wanted. */
SEP_INLINE T *FN(sep_gxplane_)(const CTX *c, size_t b, size_t ci)
{
    size_t c1 = c->cin - c->cin2, hw = c->h * c->w;
    if (ci < c1)
        return c->gx ? c->gx + (b * c1 + ci) * hw : NULL;
    return c->gx2 ? c->gx2 + (b * c->cin2 + ci - c1) * hw : NULL;
}

/* Position of tile `it`: image b, first row/col, rows/cols; and its strides: the
   halo tile's row stride pw and channel stride ldp, the owned tile's px pixels
   and channel stride ld. */
SEP_INLINE void FN(sep_tile_pos_)(const CTX *c, size_t it, size_t *b, size_t *r0, size_t *c0, size_t *rh, size_t *rw,
                                  size_t *pw, size_t *ldp, size_t *px, size_t *ld)
{
    size_t t = it % c->g.per_image;
    *b = it / c->g.per_image;
    *r0 = t / c->g.ntx * c->g.th;
    *c0 = t % c->g.ntx * c->g.tw;
    *rh = c->h - *r0 < c->g.th ? c->h - *r0 : c->g.th;
    *rw = c->w - *c0 < c->g.tw ? c->w - *c0 : c->g.tw;
    *pw = *rw + 2;
    *ldp = sep_round((*rh + 2) * *pw, SEP_NB);
    *px = *rh * *rw;
    *ld = sep_round(*px, SEP_NB);
}

/* Forward of one tile: halo input -> d -> GEMM -> (relu) -> y. */
SEP_INLINE void FN(sep_fwd_tile_)(const CTX *c, size_t it, T *scr)
{
    size_t b, r0, c0, rh, rw, pw, ldp, px, ld;
    FN(sep_tile_pos_)(c, it, &b, &r0, &c0, &rh, &rw, &pw, &ldp, &px, &ld);
    size_t H = c->h, W = c->w, hw = H * W, cin = c->cin, cout = c->cout;
    T *xt = scr, *d = xt + cin * c->ldp_max, *yt = d + cin * c->ld_max;
    for (size_t ci = 0; ci < cin; ci++) {
        T *xc = xt + ci * ldp, *dc = d + ci * ld;
        FN(sep_gather_)(xc, FN(sep_xplane_)(c, b, ci), NULL, H, W, r0, c0, rh, rw, ldp);
        FN(sep_dw_rows_)(dc, rw, xc, pw, rh, rw, c->dw_w + 9 * ci, c->dw_b[ci]);
        memset(dc + px, 0, (ld - px) * sizeof(T));
    }
    FN(sep_gemm_)(yt, ld, c->pw_w, c->pw_b, d, ld, cout, cin, ld);
    for (size_t co = 0; co < cout; co++) {
        for (size_t r = 0; r < rh; r++) {
            const T *s = yt + co * ld + r * rw;
            T *o = c->out + (b * cout + co) * hw + (r0 + r) * W + c0;
            c->put_row(o, s, rw, c->relu);
        }
    }
}

/* Backward of one tile: gd on the halo tile, dL/dx of the tile, and the
   tile's partial of every weight gradient (if c->part). */
SEP_INLINE void FN(sep_bwd_tile_)(const CTX *c, size_t it, T *scr)
{
    size_t b, r0, c0, rh, rw, pw, ldp, px, ld;
    FN(sep_tile_pos_)(c, it, &b, &r0, &c0, &rh, &rw, &pw, &ldp, &px, &ld);
    size_t H = c->h, W = c->w, hw = H * W, cin = c->cin, cout = c->cout;
    T *xt = scr, *gs = xt + cin * c->ldp_max, *gdt = gs + cout * c->ldp_max;
    T *go = gdt + cin * c->ldp_max, *d = go + cout * c->ld_max, *gxt = d + cin * c->ld_max;
    for (size_t co = 0; co < cout; co++) {
        size_t pl = (b * cout + co) * hw;
        FN(sep_gather_)(gs + co * ldp, c->gy + pl, c->relu ? c->y + pl : NULL, H, W, r0, c0, rh, rw, ldp);
    }
    /* gd on the halo tile (zero where g is zero: outside the image and in the tail) */
    FN(sep_gemm_)(gdt, ldp, c->wt, NULL, gs, ldp, cin, cout, ldp);
    if (c->gx || c->gx2) {
        for (size_t ci = 0; ci < cin; ci++) {
            T *dst = FN(sep_gxplane_)(c, b, ci);
            if (!dst)
                continue;
            const T *k = c->dw_w + 9 * ci;
            T kf[9];
            for (int q = 0; q < 9; q++)
                kf[q] = k[8 - q]; /* dL/dx is the correlation of gd with the flipped kernel */
            /* into scratch, then out row by row (streaming stores for a large grad_x) */
            FN(sep_dw_rows_)(gxt, rw, gdt + ci * ldp, pw, rh, rw, kf, (T)0);
            for (size_t r = 0; r < rh; r++)
                c->put_row(dst + (r0 + r) * W + c0, gxt + r * rw, rw, 0);
        }
    }
    if (!c->part)
        return;
    T *pp = c->part + it * c->npart;
    T *p_pw_w = pp, *p_pw_b = pp + cout * cin, *p_dw_w = p_pw_b + cout, *p_dw_b = p_dw_w + 9 * cin;
    for (size_t ci = 0; ci < cin; ci++) {
        T *xc = xt + ci * ldp, *dc = d + ci * ld;
        FN(sep_gather_)(xc, FN(sep_xplane_)(c, b, ci), NULL, H, W, r0, c0, rh, rw, ldp);
        FN(sep_dw_rows_)(dc, rw, xc, pw, rh, rw, c->dw_w + 9 * ci, c->dw_b[ci]);
        memset(dc + px, 0, (ld - px) * sizeof(T));
        FN(sep_dwgrad_)(p_dw_w + 9 * ci, p_dw_b + ci, gdt + ci * ldp, xc, rh, rw, pw);
    }
    for (size_t co = 0; co < cout; co++) {
        T *oc = go + co * ld;
        const T *s = gs + co * ldp;
        for (size_t r = 0; r < rh; r++)
            memcpy(oc + r * rw, s + (r + 1) * pw + 1, rw * sizeof(T));
        memset(oc + px, 0, (ld - px) * sizeof(T));
        p_pw_b[co] = FN(sep_sum_)(oc, ld);
    }
    FN(sep_wgrad_)(p_pw_w, cin, go, ld, d, ld, cout, cin, ld);
}

typedef void (*FN(sep_tile_fn_))(const CTX *, size_t, T *);

static void FN(sep_fwd_base_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_fwd_tile_)(c, it, scr);
}

static void FN(sep_bwd_base_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_bwd_tile_)(c, it, scr);
}

#if SEP_DISPATCH
SEP_TARGET_AVX512 static void FN(sep_fwd_avx512_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_fwd_tile_)(c, it, scr);
    _mm_sfence(); /* order the tile's streaming stores (if any) before anything later */
}

SEP_TARGET_AVX512 static void FN(sep_bwd_avx512_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_bwd_tile_)(c, it, scr);
    _mm_sfence();
}

SEP_TARGET_AVX2 static void FN(sep_fwd_avx2_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_fwd_tile_)(c, it, scr);
}

SEP_TARGET_AVX2 static void FN(sep_bwd_avx2_)(const CTX *c, size_t it, T *scr)
{
    FN(sep_bwd_tile_)(c, it, scr);
}
#endif

static FN(sep_tile_fn_) FN(sep_pick_)(int backward)
{
#if SEP_DISPATCH
    int isa = sep_isa();
    if (isa == 2)
        return backward ? FN(sep_bwd_avx512_) : FN(sep_fwd_avx512_);
    if (isa == 1)
        return backward ? FN(sep_bwd_avx2_) : FN(sep_fwd_avx2_);
#endif
    return backward ? FN(sep_bwd_base_) : FN(sep_fwd_base_);
}

/* Run fn over every tile with per-thread scratch of per_elems elements (tll_scratch). */
static tll_status FN(sep_run_)(const CTX *c, FN(sep_tile_fn_) fn, size_t per_elems)
{
    size_t items = c->g.items;
    int par = (double)items * c->g.th * c->g.tw * (double)c->cin * (double)c->cout >= SEP_PAR_MIN && items > 1;
    int nthreads = par ? tll_get_num_threads() : 1;
    if ((size_t)nthreads > items)
        nthreads = (int)items;
    if (nthreads < 1)
        nthreads = 1;
    if (per_elems > SIZE_MAX / sizeof(T))
        return TLL_ERR_OVERFLOW;
    tll_scratch scratch;
    tll_status st = tll_scratch_alloc(&scratch, per_elems * sizeof(T), nthreads);
    if (st != TLL_OK)
        return st;
#pragma omp parallel num_threads(nthreads) if (par)
    {
        T *scr = tll_scratch_slot(&scratch);
        size_t it;
#pragma omp for schedule(dynamic, 1)
        for (it = 0; it < items; it++)
            fn(c, it, scr);
    }
    free(scratch.block);
    return TLL_OK;
}

/* The context of a forward or backward call: sizes, grid, the inputs both read, the output row writer. */
static void FN(sep_init_ctx_)(CTX *c, const T *x, const T *x2, const T *dw_w, const T *dw_b, const T *pw_w,
                              size_t batch, size_t cin, size_t cin2, size_t cout, size_t height, size_t width, int relu)
{
    memset(c, 0, sizeof *c);
    c->x = x;
    c->x2 = x2;
    c->cin2 = cin2;
    c->dw_w = dw_w;
    c->dw_b = dw_b;
    c->pw_w = pw_w;
    c->cin = cin;
    c->cout = cout;
    c->h = height;
    c->w = width;
    c->relu = relu != 0;
    sep_make_grid(&c->g, batch, height, width);
    c->ldp_max = sep_round((c->g.th + 2) * (c->g.tw + 2), SEP_NB);
    c->ld_max = sep_round(c->g.th * c->g.tw, SEP_NB);
    c->npart = cout * cin + cout + 10 * cin;
    c->put_row = FN(sep_put_row_);
#if SEP_DISPATCH
    /* an output much larger than the caches: stream it past them (no read for ownership) */
    if (sep_isa() == 2 && (double)batch * (cin > cout ? cin : cout) * height * width * sizeof(T) >= SEP_STREAM_MIN)
        c->put_row = FN(sep_stream_row_);
#endif
}

tll_status FN(tll_separable_conv_forward_)(T *y, const T *x, const T *x2, const T *dw_w, const T *dw_b,
                                           const T *pw_w, const T *pw_b, size_t batch, size_t cin, size_t cin2,
                                           size_t cout, size_t height, size_t width, int relu)
{
    tll_status st = sep_check(batch, cin, cin2, x2 != NULL, cout, height, width, sizeof(T));
    if (st != TLL_OK || batch * height * width == 0)
        return st;
    CTX c;
    FN(sep_init_ctx_)(&c, x, x2, dw_w, dw_b, pw_w, batch, cin, cin2, cout, height, width, relu);
    c.pw_b = pw_b;
    c.out = y;
    return FN(sep_run_)(&c, FN(sep_pick_)(0), cin * c.ldp_max + (cin + cout) * c.ld_max);
}

tll_status FN(tll_separable_conv_backward_)(T *grad_x, T *grad_x2, T *grad_dw_w, T *grad_dw_b, T *grad_pw_w,
                                            T *grad_pw_b, const T *grad_y, const T *y, const T *x, const T *x2,
                                            const T *dw_w, const T *dw_b, const T *pw_w, size_t batch, size_t cin,
                                            size_t cin2, size_t cout, size_t height, size_t width, int relu)
{
    tll_status st = sep_check(batch, cin, cin2, x2 != NULL, cout, height, width, sizeof(T));
    if (st != TLL_OK)
        return st;
    if (!grad_y || (relu && !y))
        return TLL_ERR_ARG;
    int want_w = grad_dw_w || grad_dw_b || grad_pw_w || grad_pw_b;
    if (batch * height * width == 0) { /* no pixels: every weight gradient is zero */
        if (grad_dw_w)
            memset(grad_dw_w, 0, 9 * cin * sizeof(T));
        if (grad_dw_b)
            memset(grad_dw_b, 0, cin * sizeof(T));
        if (grad_pw_w)
            memset(grad_pw_w, 0, cout * cin * sizeof(T));
        if (grad_pw_b)
            memset(grad_pw_b, 0, cout * sizeof(T));
        return TLL_OK;
    }
    if (!grad_x && !grad_x2 && !want_w)
        return TLL_OK;
    CTX c;
    FN(sep_init_ctx_)(&c, x, x2, dw_w, dw_b, pw_w, batch, cin, cin2, cout, height, width, relu);
    if (want_w && c.g.items > SIZE_MAX / sizeof(T) / c.npart)
        return TLL_ERR_OVERFLOW;
    T *wt = malloc(cin * cout * sizeof(T));
    T *part = want_w ? malloc(c.g.items * c.npart * sizeof(T)) : NULL;
    if (!wt || (want_w && !part)) {
        free(wt);
        free(part);
        return TLL_ERR_NOMEM;
    }
    for (size_t o = 0; o < cout; o++)
        for (size_t i = 0; i < cin; i++)
            wt[i * cout + o] = pw_w[o * cin + i];
    c.wt = wt;
    c.gy = grad_y;
    c.y = y;
    c.gx = grad_x;
    c.gx2 = cin2 ? grad_x2 : NULL;
    c.part = part;
    st = FN(sep_run_)(&c, FN(sep_pick_)(1), (2 * cin + cout) * c.ldp_max + (cin + cout + 1) * c.ld_max);
    if (st == TLL_OK && want_w) {
        /* partials summed in tile order, whatever thread computed them */
        size_t np = c.npart, items = c.g.items, e;
        size_t o_pw_b = cout * cin, o_dw_w = o_pw_b + cout, o_dw_b = o_dw_w + 9 * cin;
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if (items * np > 65536)
        for (e = 0; e < np; e++) {
            double s = 0;
            for (size_t it = 0; it < items; it++)
                s += (double)part[it * np + e];
            T v = (T)s;
            if (e < o_pw_b) {
                if (grad_pw_w)
                    grad_pw_w[e] = v;
            } else if (e < o_dw_w) {
                if (grad_pw_b)
                    grad_pw_b[e - o_pw_b] = v;
            } else if (e < o_dw_b) {
                if (grad_dw_w)
                    grad_dw_w[e - o_dw_w] = v;
            } else if (grad_dw_b) {
                grad_dw_b[e - o_dw_b] = v;
            }
        }
    }
    free(wt);
    free(part);
    return st;
}

#if SEP_VEC
#undef V
#endif
#undef CTX
#undef SEP_VL
#undef SEP_NB
