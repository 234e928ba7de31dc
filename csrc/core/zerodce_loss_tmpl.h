/*
 * zerodce_loss_tmpl.h -- private template of csrc/core/zerodce_loss.c,
 * included once per element type with T (float / double) and S (f32 / f64)
 * defined (see tll_tmpl.h): the row kernels that read or write images of type
 * T, the three parallel passes built on them, and the public entry points.
 * The checks, plans and the pooled-grid arithmetic (all in double) are in
 * zerodce_loss.c; its opening comment explains the layout of the work.
 */

/* ---- row kernels ---------------------------------------------------------- */

/*
 * rowsum3: s[x] = a[x] + b[x] + c[x] (double); when ch != NULL, ch[k] += the row
 * sum of channel k (four interleaved accumulators per channel, a fixed order).
 * rowstore: dst[x] = (T)(v[x] + add).
 * rowneg:   dst[x] = (T)(-v[x]).
 * tvrow: the TV sums of one row (sh: with the next row, sw: within the row) and
 *   its gradient g[x] = kh*((cur-prev) - (next-cur)) + kw*(horizontal analogue),
 *   missing neighbours contributing nothing.
 */
static void FN(rowsum3_)(double *restrict s, double *restrict ch, const T *restrict a,
                          const T *restrict b, const T *restrict c, size_t w)
{
    if (!ch) {
        for (size_t x = 0; x < w; x++)
            s[x] = (double)a[x] + (double)b[x] + (double)c[x];
        return;
    }
    double acc[3][4] = {{0}};
    size_t x = 0;
    for (; x + 4 <= w; x += 4) {
        for (int k = 0; k < 4; k++) {
            double va = (double)a[x + k], vb = (double)b[x + k], vc = (double)c[x + k];
            s[x + k] = va + vb + vc;
            acc[0][k] += va;
            acc[1][k] += vb;
            acc[2][k] += vc;
        }
    }
    for (int k = 0; x < w; x++, k = (k + 1) & 3) {
        double va = (double)a[x], vb = (double)b[x], vc = (double)c[x];
        s[x] = va + vb + vc;
        acc[0][k] += va;
        acc[1][k] += vb;
        acc[2][k] += vc;
    }
    for (int j = 0; j < 3; j++)
        ch[j] += (acc[j][0] + acc[j][1]) + (acc[j][2] + acc[j][3]);
}

static void FN(rowstore_)(T *restrict dst, const double *restrict v, double add, size_t w)
{
    for (size_t x = 0; x < w; x++)
        dst[x] = (T)(v[x] + add);
}

static void FN(rowneg_)(T *restrict dst, const double *restrict v, size_t w)
{
    for (size_t x = 0; x < w; x++)
        dst[x] = (T)(-v[x]);
}

static void FN(tvrow_)(T *restrict g, double *sh, double *sw, const T *prev, const T *cur,
                        const T *next, size_t w, double kh, double kw)
{
    /* a missing neighbour row is replaced by the row itself in the sums (its
       differences are 0); the gradient leaves its term out instead, since
       c0 - c0 is NaN for an infinite c0 (the non-finite rule: only terms the
       formula has may produce NaN) */
    const int has_next = next != NULL, has_prev = prev != NULL;
    if (!prev)
        prev = cur;
    if (!next)
        next = cur;
    if (sh) {
        double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
        size_t x = 0;
        if (has_next)
            for (; x + 4 <= w; x += 4)
                for (int k = 0; k < 4; k++) {
                    double d = (double)next[x + k] - (double)cur[x + k];
                    a[k] += d * d;
                }
        for (int k = 0; has_next && x < w; x++, k = (k + 1) & 3) {
            double d = (double)next[x] - (double)cur[x];
            a[k] += d * d;
        }
        x = 0;
        for (; x + 5 <= w; x += 4)
            for (int k = 0; k < 4; k++) {
                double d = (double)cur[x + k + 1] - (double)cur[x + k];
                b[k] += d * d;
            }
        for (int k = 0; x + 1 < w; x++, k = (k + 1) & 3) {
            double d = (double)cur[x + 1] - (double)cur[x];
            b[k] += d * d;
        }
        *sh = (a[0] + a[1]) + (a[2] + a[3]);
        *sw = (b[0] + b[1]) + (b[2] + b[3]);
    }
    if (!g)
        return;
    /* Elementwise in T (float for float32 input, like the reference's autograd; a
       difference of two floats is correctly rounded): vectorises without converts.
       Vertical part and, for interior columns, the horizontal part; no branches inside. */
    const T khT = (T)kh, kwT = (T)kw;
    if (has_prev && has_next) {
        for (size_t x = 1; x + 1 < w; x++) {
            const T c0 = cur[x];
            g[x] = khT * ((c0 - prev[x]) - (next[x] - c0)) +
                   kwT * ((c0 - cur[x - 1]) - (cur[x + 1] - c0));
        }
    } else {
        for (size_t x = 1; x + 1 < w; x++) {
            const T c0 = cur[x];
            const T vt = has_prev ? c0 - prev[x] : (has_next ? -(next[x] - c0) : (T)0);
            g[x] = khT * vt + kwT * ((c0 - cur[x - 1]) - (cur[x + 1] - c0));
        }
    }
    for (size_t x = 0; x < w; x += (w > 1 ? w - 1 : 1)) {
        const T c0 = cur[x];
        const T vt = has_prev && has_next ? (c0 - prev[x]) - (next[x] - c0)
                                          : (has_prev ? c0 - prev[x] : (has_next ? -(next[x] - c0) : (T)0));
        T v = khT * vt;
        if (x > 0)
            v += kwT * (c0 - cur[x - 1]);
        if (x + 1 < w)
            v -= kwT * (cur[x + 1] - c0);
        g[x] = v;
    }
}

/* ---- image terms ------------------------------------------------------------ */

tll_status FN(tll_zerodce_loss_forward_)(double *losses, double *grad_spa, double *grad_exp, double *grad_col,
                                         const T *enhanced, const T *original, const double *exposure,
                                         size_t batch, size_t height, size_t width, size_t spa_pool,
                                         size_t exp_pool, unsigned terms)
{
    zdce_fwd f;
    tll_status st = fwd_setup(&f, grad_spa, grad_exp, grad_col, original != NULL, exposure, batch, height, width,
                              spa_pool, exp_pool, terms);
    if (st != TLL_OK)
        return st;
    const size_t W = f.W, plane = f.plane;
    const long long ntask = (long long)(f.B * f.nb);

    /* Pass over the images: band sums of the channel mean (spa: of I - Y, exp: of Y)
       and per-band channel sums. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(f.nt) if (f.B * f.image >= TLL_ZDCE_PAR_MIN)
    for (long long t = 0; t < ntask; t++) {
        const size_t b = (size_t)t / f.nb, k = (size_t)t % f.nb;
        const size_t y0 = k * f.R, y1 = y0 + f.R < f.H ? y0 + f.R : f.H;
        double *sY = f.tbuf + (size_t)tll_thread_id() * f.tstride, *sI = sY + W, *accS = sI + W,
               *accE = accS + f.ws;
        double ch[3] = {0.0, 0.0, 0.0};
        for (size_t j = 0; j < f.ws; j++)
            accS[j] = 0.0;
        for (size_t j = 0; j < f.we; j++)
            accE[j] = 0.0;
        for (size_t y = y0; y < y1; y++) {
            const T *py = enhanced + b * f.image + y * W;
            FN(rowsum3_)(sY, ch, py, py + plane, py + 2 * plane, W);
            if (f.do_spa && y < f.hs * f.ps) {
                const T *pi = original + b * f.image + y * W;
                FN(rowsum3_)(sI, NULL, pi, pi + plane, pi + 2 * plane, W);
            }
            fwd_pool_row(&f, b, y, sY, sI, accS, accE);
        }
        for (int c = 0; c < 3; c++)
            f.chs[((size_t)t) * 3 + c] = ch[c];
    }
    return fwd_finish(&f, losses);
}

tll_status FN(tll_zerodce_loss_backward_)(T *grad_enhanced, T *grad_original, const double *grad_spa,
                                          const double *grad_exp, const double *grad_col, size_t batch,
                                          size_t height, size_t width, size_t spa_pool, size_t exp_pool,
                                          double c_spa, double c_exp, double c_col)
{
    zdce_bwd k;
    tll_status st = bwd_setup(&k, grad_enhanced != NULL, grad_original != NULL, grad_spa, grad_exp, grad_col,
                              batch, height, width, spa_pool, exp_pool, c_spa, c_exp, c_col);
    if (st != TLL_OK)
        return st;
    const size_t W = k.W;
    const long long nrows = (long long)(k.B * k.H);

#pragma omp parallel for schedule(static) num_threads(k.nt) if (k.B * k.image >= TLL_ZDCE_PAR_MIN)
    for (long long r = 0; r < nrows; r++) {
        const size_t b = (size_t)r / k.H, y = (size_t)r % k.H;
        double *vs = k.tbuf + (size_t)tll_thread_id() * 2 * W, *v = vs + W;
        bwd_row(&k, b, y, vs, v);
        for (int c = 0; c < 3; c++) {
            const double add = k.use_col ? k.c_col * k.gcol[b * 3 + c] : 0.0;
            const size_t off = b * k.image + c * k.plane + y * W;
            FN(rowstore_)(grad_enhanced + off, v, add, W);
            if (grad_original)
                FN(rowneg_)(grad_original + off, vs, W);
        }
    }
    free(k.tbuf);
    return TLL_OK;
}

/* ---- illumination smoothness ------------------------------------------------ */

static tll_status FN(tv_run_)(double *loss, T *grad, const T *A, size_t B, size_t C, size_t H, size_t W,
                              double coef)
{
    zdce_tv v;
    tll_status st = tv_setup(&v, loss != NULL, B, C, H, W, coef);
    if (st != TLL_OK)
        return st;
#pragma omp parallel for schedule(static) num_threads(v.nt) if (v.rows * W >= TLL_ZDCE_PAR_MIN)
    for (long long r = 0; r < (long long)v.rows; r++) {
        const size_t y = (size_t)r % H, off = (size_t)r * W;
        double *sh = v.part ? v.part + 2 * (size_t)r : NULL, *sw = v.part ? v.part + 2 * (size_t)r + 1 : NULL;
        const T *cur = A + off;
        FN(tvrow_)(grad ? grad + off : NULL, sh, sw, y > 0 ? cur - W : NULL, cur, y + 1 < H ? cur + W : NULL, W,
                   v.kh, v.kw);
    }
    return tv_finish(&v, loss);
}

tll_status FN(tll_zerodce_tv_forward_)(double *loss, T *grad, const T *A, size_t batch, size_t channels,
                                       size_t height, size_t width, double coef)
{
    if (!loss)
        return TLL_ERR_ARG;
    return FN(tv_run_)(loss, grad, A, batch, channels, height, width, coef);
}

tll_status FN(tll_zerodce_tv_backward_)(T *grad, const T *A, size_t batch, size_t channels, size_t height,
                                        size_t width, double coef)
{
    if (!grad)
        return TLL_ERR_ARG;
    return FN(tv_run_)(NULL, grad, A, batch, channels, height, width, coef);
}
