/*
 * Fused Zero-DCE non-reference losses: spatial consistency, exposure control,
 * colour constancy (one read of the enhanced and original images, one write of
 * the gradients) and illumination smoothness of the curve maps (one read of A,
 * the gradient written in the same pass). Semantics and memory: tasklle.h.
 *
 * Layout of the work, and why it is deterministic:
 *  - the image forward splits each image into bands of R = lcm(ps, pe) rows, so
 *    every pooled cell of both grids lies inside exactly one band; one task sums
 *    a band's rows in order (in double), and the per-band channel sums are
 *    combined in band order afterwards;
 *  - the small pooled grids are turned into losses and compact gradients row by
 *    row, one partial per grid row, summed in order;
 *  - the backward and the TV pass are row-parallel with per-row partials.
 * So no result depends on the number of threads.
 *
 * The element type appears only in the row kernels below, written once as a
 * macro and instantiated for float and double; everything else works on
 * double rows and `const void *` images.
 */
#include "tasklle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int thread_index(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Below this many elements a parallel region costs more (thread wake-up) than
   it saves; the results are the same either way. */
#define TLL_ZDCE_PAR_MIN ((size_t)1 << 15)

/* ---- row kernels, one instantiation per element type -------------------- */

/*
 * rowsum3: s[x] = a[x] + b[x] + c[x] (double); when ch != NULL, ch[k] += the row
 * sum of channel k (four interleaved accumulators per channel, a fixed order).
 * rowstore: dst[x] = (T)(v[x] + add).
 * rowneg:   dst[x] = (T)(-v[x]).
 * tvrow: the TV sums of one row (sh: with the next row, sw: within the row) and
 *   its gradient g[x] = kh*((cur-prev) - (next-cur)) + kw*(horizontal analogue),
 *   missing neighbours contributing nothing.
 */
#define TLL_ZDCE_ROW_KERNELS(T, SUF)                                                                         \
    static void rowsum3_##SUF(double *restrict s, double *restrict ch, const T *restrict a,                   \
                              const T *restrict b, const T *restrict c, size_t w)                             \
    {                                                                                                        \
        if (!ch) {                                                                                           \
            for (size_t x = 0; x < w; x++)                                                                   \
                s[x] = (double)a[x] + (double)b[x] + (double)c[x];                                           \
            return;                                                                                          \
        }                                                                                                    \
        double acc[3][4] = {{0}};                                                                            \
        size_t x = 0;                                                                                        \
        for (; x + 4 <= w; x += 4) {                                                                         \
            for (int k = 0; k < 4; k++) {                                                                    \
                double va = (double)a[x + k], vb = (double)b[x + k], vc = (double)c[x + k];                  \
                s[x + k] = va + vb + vc;                                                                     \
                acc[0][k] += va;                                                                             \
                acc[1][k] += vb;                                                                             \
                acc[2][k] += vc;                                                                             \
            }                                                                                                \
        }                                                                                                    \
        for (int k = 0; x < w; x++, k = (k + 1) & 3) {                                                     \
            double va = (double)a[x], vb = (double)b[x], vc = (double)c[x];                                  \
            s[x] = va + vb + vc;                                                                             \
            acc[0][k] += va;                                                                                 \
            acc[1][k] += vb;                                                                                 \
            acc[2][k] += vc;                                                                                 \
        }                                                                                                    \
        for (int j = 0; j < 3; j++)                                                                          \
            ch[j] += (acc[j][0] + acc[j][1]) + (acc[j][2] + acc[j][3]);                                      \
    }                                                                                                        \
    static void rowstore_##SUF(T *restrict dst, const double *restrict v, double add, size_t w)              \
    {                                                                                                        \
        for (size_t x = 0; x < w; x++)                                                                       \
            dst[x] = (T)(v[x] + add);                                                                        \
    }                                                                                                        \
    static void rowneg_##SUF(T *restrict dst, const double *restrict v, size_t w)                            \
    {                                                                                                        \
        for (size_t x = 0; x < w; x++)                                                                       \
            dst[x] = (T)(-v[x]);                                                                             \
    }                                                                                                        \
    static void tvrow_##SUF(T *restrict g, double *sh, double *sw, const T *prev, const T *cur,              \
                            const T *next, size_t w, double kh, double kw)                                   \
    {                                                                                                        \
        /* a missing neighbour row is replaced by the row itself in the sums (its                            \
           differences are 0); the gradient leaves its term out instead, since                               \
           c0 - c0 is NaN for an infinite c0 (the non-finite rule: only terms the                            \
           formula has may produce NaN) */                                                                   \
        const int has_next = next != NULL, has_prev = prev != NULL;                                          \
        if (!prev)                                                                                           \
            prev = cur;                                                                                      \
        if (!next)                                                                                           \
            next = cur;                                                                                      \
        if (sh) {                                                                                            \
            double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};                                                 \
            size_t x = 0;                                                                                    \
            if (has_next)                                                                                    \
                for (; x + 4 <= w; x += 4)                                                                   \
                    for (int k = 0; k < 4; k++) {                                                            \
                        double d = (double)next[x + k] - (double)cur[x + k];                                 \
                        a[k] += d * d;                                                                       \
                    }                                                                                        \
            for (int k = 0; has_next && x < w; x++, k = (k + 1) & 3) {                                     \
                double d = (double)next[x] - (double)cur[x];                                                 \
                a[k] += d * d;                                                                               \
            }                                                                                                \
            x = 0;                                                                                           \
            for (; x + 5 <= w; x += 4)                                                                       \
                for (int k = 0; k < 4; k++) {                                                                \
                    double d = (double)cur[x + k + 1] - (double)cur[x + k];                                  \
                    b[k] += d * d;                                                                           \
                }                                                                                            \
            for (int k = 0; x + 1 < w; x++, k = (k + 1) & 3) {                                             \
                double d = (double)cur[x + 1] - (double)cur[x];                                              \
                b[k] += d * d;                                                                               \
            }                                                                                                \
            *sh = (a[0] + a[1]) + (a[2] + a[3]);                                                             \
            *sw = (b[0] + b[1]) + (b[2] + b[3]);                                                             \
        }                                                                                                    \
        if (!g)                                                                                              \
            return;                                                                                          \
        /* Elementwise in T (float for float32 input, like the reference's autograd; a
           difference of two floats is correctly rounded): vectorises without converts.
           Vertical part and, for interior columns, the horizontal part; no branches inside. */ \
        const T khT = (T)kh, kwT = (T)kw;                                                                    \
        if (has_prev && has_next) {                                                                          \
            for (size_t x = 1; x + 1 < w; x++) {                                                             \
                const T c0 = cur[x];                                                                         \
                g[x] = khT * ((c0 - prev[x]) - (next[x] - c0)) +                                             \
                       kwT * ((c0 - cur[x - 1]) - (cur[x + 1] - c0));                                        \
            }                                                                                                \
        } else {                                                                                             \
            for (size_t x = 1; x + 1 < w; x++) {                                                             \
                const T c0 = cur[x];                                                                         \
                const T vt = has_prev ? c0 - prev[x] : (has_next ? -(next[x] - c0) : (T)0);                  \
                g[x] = khT * vt + kwT * ((c0 - cur[x - 1]) - (cur[x + 1] - c0));                             \
            }                                                                                                \
        }                                                                                                    \
        for (size_t x = 0; x < w; x += (w > 1 ? w - 1 : 1)) {                                                \
            const T c0 = cur[x];                                                                             \
            const T vt = has_prev && has_next ? (c0 - prev[x]) - (next[x] - c0)                              \
                                              : (has_prev ? c0 - prev[x] : (has_next ? -(next[x] - c0) : (T)0)); \
            T v = khT * vt;                                                                                  \
            if (x > 0)                                                                                       \
                v += kwT * (c0 - cur[x - 1]);                                                                \
            if (x + 1 < w)                                                                                   \
                v -= kwT * (cur[x + 1] - c0);                                                                \
            g[x] = v;                                                                                        \
        }                                                                                                    \
    }

TLL_ZDCE_ROW_KERNELS(float, f32)
TLL_ZDCE_ROW_KERNELS(double, f64)

/* Dispatch on the element type (one branch per row, not per pixel). */
static void rowsum3(int f64, double *s, double *ch, const void *base, size_t off, size_t plane, size_t w)
{
    if (f64) {
        const double *p = (const double *)base + off;
        rowsum3_f64(s, ch, p, p + plane, p + 2 * plane, w);
    } else {
        const float *p = (const float *)base + off;
        rowsum3_f32(s, ch, p, p + plane, p + 2 * plane, w);
    }
}

static void rowstore(int f64, void *base, size_t off, const double *v, double add, size_t w)
{
    if (f64)
        rowstore_f64((double *)base + off, v, add, w);
    else
        rowstore_f32((float *)base + off, v, add, w);
}

static void rowneg(int f64, void *base, size_t off, const double *v, size_t w)
{
    if (f64)
        rowneg_f64((double *)base + off, v, w);
    else
        rowneg_f32((float *)base + off, v, w);
}

/* ---- sizes --------------------------------------------------------------- */

static size_t gcd_size(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* a*b, saturating at SIZE_MAX (which no allocation can satisfy). */
#define SIZE_SAT ((size_t)-1)
static size_t mul_size(size_t a, size_t b)
{
    if (a && b > SIZE_SAT / a)
        return SIZE_SAT;
    return a * b;
}

static double *alloc_doubles(size_t n, int *fail)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_SAT / sizeof(double)) {
        *fail = 1;
        return NULL;
    }
    double *p = (double *)malloc(n * sizeof(double));
    if (!p)
        *fail = 1;
    return p;
}

/* ---- image terms: forward ------------------------------------------------ */

static tll_status image_forward(double *losses, double *gspa, double *gexp, double *gcol, const void *Y,
                                const void *I, const double *E, size_t B, size_t H, size_t W, size_t ps,
                                size_t pe, unsigned terms, int f64)
{
    const int do_spa = (terms & TLL_ZDCE_SPA) != 0, do_exp = (terms & TLL_ZDCE_EXP) != 0,
              do_col = (terms & TLL_ZDCE_COL) != 0;
    if (B == 0 || H == 0 || W == 0)
        return TLL_ERR_ARG;
    if (do_spa && (ps == 0 || H < ps || W < ps || !I || !gspa))
        return TLL_ERR_ARG;
    if (do_exp && (pe == 0 || H < pe || W < pe || !E || !gexp))
        return TLL_ERR_ARG;
    if (do_col && !gcol)
        return TLL_ERR_ARG;
    const size_t hs = do_spa ? H / ps : 0, ws = do_spa ? W / ps : 0;
    const size_t he = do_exp ? H / pe : 0, we = do_exp ? W / pe : 0;
    const size_t plane = H * W, image = 3 * plane;
    if (mul_size(B, image) == SIZE_SAT)
        return TLL_ERR_OVERFLOW;

    /* Rows per band: a multiple of both pool sizes, so no pooled cell straddles
       two bands; at most H (one band per image). 16 rows when only colour is wanted. */
    size_t R = 16;
    if (do_spa || do_exp) {
        R = do_spa ? ps : pe;
        if (do_spa && do_exp) {
            size_t g = gcd_size(ps, pe);
            size_t l = mul_size(ps / g, pe);
            R = l > H ? H : l;
        }
    }
    if (R > H)
        R = H;
    const size_t nb = (H + R - 1) / R;

    int nt = tll_get_num_threads();
    if (nt < 1)
        nt = 1;
    const size_t tstride = 2 * W + ws + we;
    int fail = 0;
    double *dg = do_spa ? alloc_doubles(mul_size(B, hs * ws), &fail) : NULL;
    double *chs = alloc_doubles(mul_size(B, nb * 3), &fail);
    double *rowloss = alloc_doubles(mul_size(B, hs > he ? hs : he), &fail);
    double *tbuf = alloc_doubles(mul_size((size_t)nt, tstride), &fail);
    if (fail) {
        free(dg);
        free(chs);
        free(rowloss);
        free(tbuf);
        return TLL_ERR_NOMEM;
    }
    const double inv_s = do_spa ? 1.0 / (3.0 * (double)ps * (double)ps) : 0.0;
    const double inv_e = do_exp ? 1.0 / (3.0 * (double)pe * (double)pe) : 0.0;
    const long long ntask = (long long)(B * nb);

    /* Pass over the images: band sums of the channel mean (spa: of I - Y, exp: of Y)
       and per-band channel sums. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (B * image >= TLL_ZDCE_PAR_MIN)
    for (long long t = 0; t < ntask; t++) {
        const size_t b = (size_t)t / nb, k = (size_t)t % nb;
        const size_t y0 = k * R, y1 = y0 + R < H ? y0 + R : H;
        double *sY = tbuf + (size_t)thread_index() * tstride, *sI = sY + W, *accS = sI + W, *accE = accS + ws;
        double ch[3] = {0.0, 0.0, 0.0};
        for (size_t j = 0; j < ws; j++)
            accS[j] = 0.0;
        for (size_t j = 0; j < we; j++)
            accE[j] = 0.0;
        for (size_t y = y0; y < y1; y++) {
            const size_t off = b * image + y * W;
            rowsum3(f64, sY, ch, Y, off, plane, W);
            if (do_spa && y < hs * ps) {
                rowsum3(f64, sI, NULL, I, off, plane, W);
                for (size_t j = 0; j < ws; j++) {
                    const double *py = sY + j * ps, *pi = sI + j * ps;
                    double s = 0.0;
                    for (size_t q = 0; q < ps; q++)
                        s += pi[q] - py[q];
                    accS[j] += s;
                }
                if ((y + 1) % ps == 0) {
                    double *out = dg + (b * hs + y / ps) * ws;
                    for (size_t j = 0; j < ws; j++) {
                        out[j] = accS[j] * inv_s;
                        accS[j] = 0.0;
                    }
                }
            }
            if (do_exp && y < he * pe) {
                for (size_t j = 0; j < we; j++) {
                    const double *py = sY + j * pe;
                    double s = 0.0;
                    for (size_t q = 0; q < pe; q++)
                        s += py[q];
                    accE[j] += s;
                }
                if ((y + 1) % pe == 0) {
                    /* the pooled mean for now; turned into the gradient below */
                    double *out = gexp + (b * he + y / pe) * we;
                    for (size_t j = 0; j < we; j++) {
                        out[j] = accE[j] * inv_e;
                        accE[j] = 0.0;
                    }
                }
            }
        }
        for (int c = 0; c < 3; c++)
            chs[((size_t)t) * 3 + c] = ch[c];
    }

    /* Colour constancy from the channel means (B values: serial). */
    if (do_col) {
        const double inv_hw = 1.0 / (double)plane;
        double total = 0.0;
        for (size_t b = 0; b < B; b++) {
            double m[3] = {0.0, 0.0, 0.0};
            for (size_t k = 0; k < nb; k++)
                for (int c = 0; c < 3; c++)
                    m[c] += chs[(b * nb + k) * 3 + c];
            for (int c = 0; c < 3; c++)
                m[c] *= inv_hw;
            const double drg = m[0] - m[1], drb = m[0] - m[2], dgb = m[2] - m[1];
            const double drg3 = drg * drg * drg, drb3 = drb * drb * drb, dgb3 = dgb * dgb * dgb;
            const double k2 = drg3 * drg + drb3 * drb + dgb3 * dgb;
            const double kb = sqrt(k2);
            total += kb;
            /* dk/dm = 2 d^3 / k where k > 0. Where k == 0 every d is 0 and so is the
               gradient (the continuous extension). Where k2 is NaN the twin's branch
               passes d(k2)/dm = 4 d^3 through, so NaN reaches exactly the channels
               whose differences are NaN or meet inf - inf (the non-finite rule of
               tasklle.reference.zerodce_loss); the same factor serves both cases. */
            const double f = kb > 0.0 ? 2.0 / (kb * (double)B) * inv_hw : 4.0 / (double)B * inv_hw;
            gcol[b * 3 + 0] = f * (drg3 + drb3);
            gcol[b * 3 + 1] = f * (-drg3 - dgb3);
            gcol[b * 3 + 2] = f * (-drb3 + dgb3);
        }
        losses[2] = total / (double)B;
    }

    /* Spatial consistency on the pooled difference grid dg = pool(I) - pool(Y). */
    if (do_spa) {
        const double n = (double)B * (double)hs * (double)ws;
        const long long nrows = (long long)(B * hs);
#pragma omp parallel for schedule(static) num_threads(nt) if (B * hs * ws >= TLL_ZDCE_PAR_MIN / 4)
        for (long long r = 0; r < nrows; r++) {
            const size_t i = (size_t)r % hs;
            const double *row = dg + (size_t)r * ws;
            const double *up = i > 0 ? row - ws : NULL, *down = i + 1 < hs ? row + ws : NULL;
            double *g = gspa + (size_t)r * ws;
            double acc = 0.0;
            for (size_t j = 0; j < ws; j++) {
                const double c = row[j];
                const double l = j > 0 ? row[j - 1] : 0.0, rt = j + 1 < ws ? row[j + 1] : 0.0;
                const double u = up ? up[j] : 0.0, d = down ? down[j] : 0.0;
                const double el = c - l, er = c - rt, eu = c - u, ed = c - d;
                acc += el * el + er * er + eu * eu + ed * ed;
                /* d/d(dg): 4*(c - q) for an inside neighbour q (it appears in both
                   cells' sums), 2*c for an outside one; dY = -d(dg). */
                const double gin = (j > 0 ? 4.0 : 2.0) * el + (j + 1 < ws ? 4.0 : 2.0) * er +
                                   (up ? 4.0 : 2.0) * eu + (down ? 4.0 : 2.0) * ed;
                g[j] = -gin / n * inv_s;
            }
            rowloss[r] = acc;
        }
        double total = 0.0;
        for (long long r = 0; r < nrows; r++)
            total += rowloss[r];
        losses[0] = total / n;
    }

    /* Exposure control: gexp holds the pooled means; make it the gradient. */
    if (do_exp) {
        const double n = (double)B * (double)he * (double)we;
        const long long nrows = (long long)(B * he);
#pragma omp parallel for schedule(static) num_threads(nt) if (B * he * we >= TLL_ZDCE_PAR_MIN / 4)
        for (long long r = 0; r < nrows; r++) {
            const size_t b = (size_t)r / he;
            double *g = gexp + (size_t)r * we;
            double acc = 0.0;
            for (size_t j = 0; j < we; j++) {
                const double d = g[j] - E[b];
                acc += d * d;
                g[j] = 2.0 * d / n * inv_e;
            }
            rowloss[r] = acc;
        }
        double total = 0.0;
        for (long long r = 0; r < nrows; r++)
            total += rowloss[r];
        losses[1] = total / n;
    }

    free(dg);
    free(chs);
    free(rowloss);
    free(tbuf);
    return TLL_OK;
}

/* ---- image terms: backward ----------------------------------------------- */

static tll_status image_backward(void *gY, void *gI, const double *gspa, const double *gexp, const double *gcol,
                                 size_t B, size_t H, size_t W, size_t ps, size_t pe, double c_spa, double c_exp,
                                 double c_col, int f64)
{
    if (B == 0 || H == 0 || W == 0 || !gY)
        return TLL_ERR_ARG;
    const int use_spa = gspa && c_spa != 0.0, use_exp = gexp && c_exp != 0.0, use_col = gcol && c_col != 0.0;
    if ((use_spa || gI) && (ps == 0 || H < ps || W < ps))
        return TLL_ERR_ARG;
    if (use_exp && (pe == 0 || H < pe || W < pe))
        return TLL_ERR_ARG;
    const size_t hs = (use_spa || gI) ? H / ps : 0, ws = (use_spa || gI) ? W / ps : 0;
    const size_t he = use_exp ? H / pe : 0, we = use_exp ? W / pe : 0;
    const size_t plane = H * W, image = 3 * plane;
    if (mul_size(B, image) == SIZE_SAT)
        return TLL_ERR_OVERFLOW;
    int nt = tll_get_num_threads();
    if (nt < 1)
        nt = 1;
    int fail = 0;
    double *tbuf = alloc_doubles(mul_size((size_t)nt, 2 * W), &fail);
    if (fail)
        return TLL_ERR_NOMEM;
    const long long nrows = (long long)(B * H);

#pragma omp parallel for schedule(static) num_threads(nt) if (B * image >= TLL_ZDCE_PAR_MIN)
    for (long long r = 0; r < nrows; r++) {
        const size_t b = (size_t)r / H, y = (size_t)r % H;
        double *vs = tbuf + (size_t)thread_index() * 2 * W, *v = vs + W;
        /* vs: the spatial term (shared by Y and, negated, I); v: the whole
           channel-independent part for Y. */
        for (size_t x = 0; x < W; x++)
            vs[x] = 0.0;
        if (use_spa && y < hs * ps) {
            const double *g = gspa + (b * hs + y / ps) * ws;
            for (size_t j = 0; j < ws; j++) {
                const double val = c_spa * g[j];
                for (size_t q = 0; q < ps; q++)
                    vs[j * ps + q] = val;
            }
        }
        for (size_t x = 0; x < W; x++)
            v[x] = vs[x];
        if (use_exp && y < he * pe) {
            const double *g = gexp + (b * he + y / pe) * we;
            for (size_t j = 0; j < we; j++) {
                const double val = c_exp * g[j];
                for (size_t q = 0; q < pe; q++)
                    v[j * pe + q] += val;
            }
        }
        for (int c = 0; c < 3; c++) {
            const double add = use_col ? c_col * gcol[b * 3 + c] : 0.0;
            const size_t off = b * image + c * plane + y * W;
            rowstore(f64, gY, off, v, add, W);
            if (gI)
                rowneg(f64, gI, off, vs, W);
        }
    }
    free(tbuf);
    return TLL_OK;
}

/* ---- illumination smoothness ------------------------------------------------ */

static tll_status tv_run(double *loss, void *grad, const void *A, size_t B, size_t C, size_t H, size_t W,
                         double coef, int f64)
{
    if (B == 0 || C == 0 || H == 0 || W == 0)
        return TLL_ERR_ARG;
    const size_t planes = mul_size(B, C);
    const size_t rows = mul_size(planes, H);
    if (mul_size(rows, W) == SIZE_SAT)
        return TLL_ERR_OVERFLOW;
    int fail = 0;
    double *part = loss ? alloc_doubles(mul_size(rows, 2), &fail) : NULL;
    if (fail)
        return TLL_ERR_NOMEM;
    const double cnt_h = (double)(H - 1) * (double)W, cnt_w = (double)H * (double)(W - 1);
    /* L = (2/B) (Sh/cnt_h + Sw/cnt_w); dSh/dA = 2*(...) -> factor 4/(B*cnt). */
    const double kh = cnt_h > 0 ? coef * 4.0 / ((double)B * cnt_h) : 0.0;
    const double kw = cnt_w > 0 ? coef * 4.0 / ((double)B * cnt_w) : 0.0;
    int nt = tll_get_num_threads();
    if (nt < 1)
        nt = 1;

#pragma omp parallel for schedule(static) num_threads(nt) if (rows * W >= TLL_ZDCE_PAR_MIN)
    for (long long r = 0; r < (long long)rows; r++) {
        const size_t y = (size_t)r % H, off = (size_t)r * W;
        double *sh = part ? part + 2 * (size_t)r : NULL, *sw = part ? part + 2 * (size_t)r + 1 : NULL;
        if (f64) {
            const double *cur = (const double *)A + off;
            tvrow_f64(grad ? (double *)grad + off : NULL, sh, sw, y > 0 ? cur - W : NULL, cur,
                      y + 1 < H ? cur + W : NULL, W, kh, kw);
        } else {
            const float *cur = (const float *)A + off;
            tvrow_f32(grad ? (float *)grad + off : NULL, sh, sw, y > 0 ? cur - W : NULL, cur,
                      y + 1 < H ? cur + W : NULL, W, kh, kw);
        }
    }
    if (loss) {
        double th = 0.0, tw = 0.0;
        for (size_t r = 0; r < rows; r++) {
            th += part[2 * r];
            tw += part[2 * r + 1];
        }
        double l = 0.0;
        if (cnt_h > 0)
            l += th / cnt_h;
        if (cnt_w > 0)
            l += tw / cnt_w;
        *loss = 2.0 * l / (double)B;
        free(part);
    }
    return TLL_OK;
}

/* ---- public entry points ------------------------------------------------------ */

tll_status tll_zerodce_loss_forward_f32(double *losses, double *grad_spa, double *grad_exp, double *grad_col,
                                        const float *enhanced, const float *original, const double *exposure,
                                        size_t batch, size_t height, size_t width, size_t spa_pool,
                                        size_t exp_pool, unsigned terms)
{
    return image_forward(losses, grad_spa, grad_exp, grad_col, enhanced, original, exposure, batch, height, width,
                         spa_pool, exp_pool, terms, 0);
}

tll_status tll_zerodce_loss_forward_f64(double *losses, double *grad_spa, double *grad_exp, double *grad_col,
                                        const double *enhanced, const double *original, const double *exposure,
                                        size_t batch, size_t height, size_t width, size_t spa_pool,
                                        size_t exp_pool, unsigned terms)
{
    return image_forward(losses, grad_spa, grad_exp, grad_col, enhanced, original, exposure, batch, height, width,
                         spa_pool, exp_pool, terms, 1);
}

tll_status tll_zerodce_loss_backward_f32(float *grad_enhanced, float *grad_original, const double *grad_spa,
                                         const double *grad_exp, const double *grad_col, size_t batch,
                                         size_t height, size_t width, size_t spa_pool, size_t exp_pool,
                                         double c_spa, double c_exp, double c_col)
{
    return image_backward(grad_enhanced, grad_original, grad_spa, grad_exp, grad_col, batch, height, width,
                          spa_pool, exp_pool, c_spa, c_exp, c_col, 0);
}

tll_status tll_zerodce_loss_backward_f64(double *grad_enhanced, double *grad_original, const double *grad_spa,
                                         const double *grad_exp, const double *grad_col, size_t batch,
                                         size_t height, size_t width, size_t spa_pool, size_t exp_pool,
                                         double c_spa, double c_exp, double c_col)
{
    return image_backward(grad_enhanced, grad_original, grad_spa, grad_exp, grad_col, batch, height, width,
                          spa_pool, exp_pool, c_spa, c_exp, c_col, 1);
}

tll_status tll_zerodce_tv_forward_f32(double *loss, float *grad, const float *A, size_t batch, size_t channels,
                                      size_t height, size_t width, double coef)
{
    if (!loss)
        return TLL_ERR_ARG;
    return tv_run(loss, grad, A, batch, channels, height, width, coef, 0);
}

tll_status tll_zerodce_tv_forward_f64(double *loss, double *grad, const double *A, size_t batch,
                                      size_t channels, size_t height, size_t width, double coef)
{
    if (!loss)
        return TLL_ERR_ARG;
    return tv_run(loss, grad, A, batch, channels, height, width, coef, 1);
}

tll_status tll_zerodce_tv_backward_f32(float *grad, const float *A, size_t batch, size_t channels, size_t height,
                                       size_t width, double coef)
{
    if (!grad)
        return TLL_ERR_ARG;
    return tv_run(NULL, grad, A, batch, channels, height, width, coef, 0);
}

tll_status tll_zerodce_tv_backward_f64(double *grad, const double *A, size_t batch, size_t channels,
                                       size_t height, size_t width, double coef)
{
    if (!grad)
        return TLL_ERR_ARG;
    return tv_run(NULL, grad, A, batch, channels, height, width, coef, 1);
}
