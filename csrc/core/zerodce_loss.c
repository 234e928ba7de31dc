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
 * The element type appears only where images are read or written: the row
 * kernels and the three parallel passes in zerodce_loss_tmpl.h (included once
 * per type). Everything here works on double rows: the checks and allocations
 * of each pass (a *_setup function filling a plan), the pooling of a band's
 * row sums, and turning the pooled grids into losses (*_finish).
 */
#include "tasklle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tll_tmpl.h"

/* Below this many elements a parallel region costs more (thread wake-up) than
   it saves; the results are the same either way. */
#define TLL_ZDCE_PAR_MIN ((size_t)1 << 15)

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

static int zdce_threads(void)
{
    int nt = tll_get_num_threads();
    return nt < 1 ? 1 : nt;
}

/* ---- image terms: forward ------------------------------------------------ */

/* The sizes and buffers of one image forward (see tll_zerodce_loss_forward_*). */
typedef struct {
    size_t B, H, W, ps, pe, hs, ws, he, we, plane, image;
    size_t R, nb;    /* rows per band, bands per image */
    size_t tstride;  /* per-thread doubles of tbuf: row sums of Y and I, cell accumulators */
    int do_spa, do_exp, do_col, nt;
    double inv_s, inv_e;
    double *dg;      /* (B, hs, ws): pool(I) - pool(Y) */
    double *chs;     /* (B, nb, 3): per-band channel sums of Y */
    double *rowloss; /* one partial per pooled-grid row */
    double *tbuf;
    double *gspa, *gexp, *gcol; /* the caller's compact gradients (gexp holds the pooled means first) */
    const double *E;
} zdce_fwd;

static tll_status fwd_setup(zdce_fwd *f, double *gspa, double *gexp, double *gcol, int have_I, const double *E,
                            size_t B, size_t H, size_t W, size_t ps, size_t pe, unsigned terms)
{
    const int do_spa = (terms & TLL_ZDCE_SPA) != 0, do_exp = (terms & TLL_ZDCE_EXP) != 0,
              do_col = (terms & TLL_ZDCE_COL) != 0;
    if (B == 0 || H == 0 || W == 0)
        return TLL_ERR_ARG;
    if (do_spa && (ps == 0 || H < ps || W < ps || !have_I || !gspa))
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

    const int nt = zdce_threads();
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
    *f = (zdce_fwd){
        .B = B, .H = H, .W = W, .ps = ps, .pe = pe, .hs = hs, .ws = ws, .he = he, .we = we,
        .plane = plane, .image = image, .R = R, .nb = nb, .tstride = tstride,
        .do_spa = do_spa, .do_exp = do_exp, .do_col = do_col, .nt = nt,
        .inv_s = do_spa ? 1.0 / (3.0 * (double)ps * (double)ps) : 0.0,
        .inv_e = do_exp ? 1.0 / (3.0 * (double)pe * (double)pe) : 0.0,
        .dg = dg, .chs = chs, .rowloss = rowloss, .tbuf = tbuf,
        .gspa = gspa, .gexp = gexp, .gcol = gcol, .E = E,
    };
    return TLL_OK;
}

/* acc[j] += the sum over the `pool` columns of cell j of one row: of sI - sY
   (spatial consistency's pool(I) - pool(Y)), or of sY when sI is NULL. */
static void add_cells(double *acc, const double *sY, const double *sI, size_t n, size_t pool)
{
    for (size_t j = 0; j < n; j++) {
        const double *py = sY + j * pool;
        double s = 0.0;
        if (sI) {
            const double *pi = sI + j * pool;
            for (size_t q = 0; q < pool; q++)
                s += pi[q] - py[q];
        } else {
            for (size_t q = 0; q < pool; q++)
                s += py[q];
        }
        acc[j] += s;
    }
}

/* out[j] = acc[j] * scale (a finished row of pooled cells); acc restarts at 0. */
static void flush_cells(double *out, double *acc, size_t n, double scale)
{
    for (size_t j = 0; j < n; j++) {
        out[j] = acc[j] * scale;
        acc[j] = 0.0;
    }
}

/* Row y of image b, given its channel sums sY (of Y) and sI (of I, when SPA
   wants the row): add its cells' sums to the accumulators of the cell row it
   belongs to, and store that cell row once its last image row is in. */
static void fwd_pool_row(const zdce_fwd *f, size_t b, size_t y, const double *sY, const double *sI, double *accS,
                         double *accE)
{
    if (f->do_spa && y < f->hs * f->ps) {
        add_cells(accS, sY, sI, f->ws, f->ps);
        if ((y + 1) % f->ps == 0)
            flush_cells(f->dg + (b * f->hs + y / f->ps) * f->ws, accS, f->ws, f->inv_s);
    }
    if (f->do_exp && y < f->he * f->pe) {
        add_cells(accE, sY, NULL, f->we, f->pe);
        /* the pooled mean for now; turned into the gradient by fwd_finish */
        if ((y + 1) % f->pe == 0)
            flush_cells(f->gexp + (b * f->he + y / f->pe) * f->we, accE, f->we, f->inv_e);
    }
}

static double sum_in_order(const double *v, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += v[i];
    return total;
}

/* The losses and compact gradients from the band pass's results; frees the plan. */
static tll_status fwd_finish(zdce_fwd *f, double *losses)
{
    const size_t B = f->B, nb = f->nb, hs = f->hs, ws = f->ws, he = f->he, we = f->we;
    const int nt = f->nt;
    double *rowloss = f->rowloss;

    /* Colour constancy from the channel means (B values: serial). */
    if (f->do_col) {
        const double inv_hw = 1.0 / (double)f->plane;
        double total = 0.0;
        for (size_t b = 0; b < B; b++) {
            double m[3] = {0.0, 0.0, 0.0};
            for (size_t k = 0; k < nb; k++)
                for (int c = 0; c < 3; c++)
                    m[c] += f->chs[(b * nb + k) * 3 + c];
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
            const double fc = kb > 0.0 ? 2.0 / (kb * (double)B) * inv_hw : 4.0 / (double)B * inv_hw;
            f->gcol[b * 3 + 0] = fc * (drg3 + drb3);
            f->gcol[b * 3 + 1] = fc * (-drg3 - dgb3);
            f->gcol[b * 3 + 2] = fc * (-drb3 + dgb3);
        }
        losses[2] = total / (double)B;
    }

    /* Spatial consistency on the pooled difference grid dg = pool(I) - pool(Y). */
    if (f->do_spa) {
        const double n = (double)B * (double)hs * (double)ws, inv_s = f->inv_s;
        const double *dg = f->dg;
        double *gspa = f->gspa;
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
        losses[0] = sum_in_order(rowloss, (size_t)nrows) / n;
    }

    /* Exposure control: gexp holds the pooled means; make it the gradient. */
    if (f->do_exp) {
        const double n = (double)B * (double)he * (double)we, inv_e = f->inv_e;
        const double *E = f->E;
        double *gexp = f->gexp;
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
        losses[1] = sum_in_order(rowloss, (size_t)nrows) / n;
    }

    free(f->dg);
    free(f->chs);
    free(f->rowloss);
    free(f->tbuf);
    return TLL_OK;
}

/* ---- image terms: backward ----------------------------------------------- */

/* The sizes and inputs of one image backward (see tll_zerodce_loss_backward_*). */
typedef struct {
    size_t B, H, W, ps, pe, hs, ws, he, we, plane, image;
    int use_spa, use_exp, use_col, nt;
    double c_spa, c_exp, c_col;
    const double *gspa, *gexp, *gcol;
    double *tbuf; /* per thread: 2*W doubles */
} zdce_bwd;

static tll_status bwd_setup(zdce_bwd *k, int have_gY, int have_gI, const double *gspa, const double *gexp,
                            const double *gcol, size_t B, size_t H, size_t W, size_t ps, size_t pe, double c_spa,
                            double c_exp, double c_col)
{
    if (B == 0 || H == 0 || W == 0 || !have_gY)
        return TLL_ERR_ARG;
    const int use_spa = gspa && c_spa != 0.0, use_exp = gexp && c_exp != 0.0, use_col = gcol && c_col != 0.0;
    if ((use_spa || have_gI) && (ps == 0 || H < ps || W < ps))
        return TLL_ERR_ARG;
    if (use_exp && (pe == 0 || H < pe || W < pe))
        return TLL_ERR_ARG;
    const size_t plane = H * W, image = 3 * plane;
    if (mul_size(B, image) == SIZE_SAT)
        return TLL_ERR_OVERFLOW;
    const int nt = zdce_threads();
    int fail = 0;
    double *tbuf = alloc_doubles(mul_size((size_t)nt, 2 * W), &fail);
    if (fail)
        return TLL_ERR_NOMEM;
    *k = (zdce_bwd){
        .B = B, .H = H, .W = W, .ps = ps, .pe = pe,
        .hs = (use_spa || have_gI) ? H / ps : 0, .ws = (use_spa || have_gI) ? W / ps : 0,
        .he = use_exp ? H / pe : 0, .we = use_exp ? W / pe : 0, .plane = plane, .image = image,
        .use_spa = use_spa, .use_exp = use_exp, .use_col = use_col, .nt = nt,
        .c_spa = c_spa, .c_exp = c_exp, .c_col = c_col, .gspa = gspa, .gexp = gexp, .gcol = gcol, .tbuf = tbuf,
    };
    return TLL_OK;
}

/* Row y of image b: vs <- the spatial term (shared by Y and, negated, I);
   v <- the whole channel-independent part for Y. */
static void bwd_row(const zdce_bwd *k, size_t b, size_t y, double *vs, double *v)
{
    const size_t W = k->W, ps = k->ps, pe = k->pe;
    for (size_t x = 0; x < W; x++)
        vs[x] = 0.0;
    if (k->use_spa && y < k->hs * ps) {
        const double *g = k->gspa + (b * k->hs + y / ps) * k->ws;
        for (size_t j = 0; j < k->ws; j++) {
            const double val = k->c_spa * g[j];
            for (size_t q = 0; q < ps; q++)
                vs[j * ps + q] = val;
        }
    }
    for (size_t x = 0; x < W; x++)
        v[x] = vs[x];
    if (k->use_exp && y < k->he * pe) {
        const double *g = k->gexp + (b * k->he + y / pe) * k->we;
        for (size_t j = 0; j < k->we; j++) {
            const double val = k->c_exp * g[j];
            for (size_t q = 0; q < pe; q++)
                v[j * pe + q] += val;
        }
    }
}

/* ---- illumination smoothness ------------------------------------------------ */

/* The plan of one TV pass over curve maps (B, C, H, W). */
typedef struct {
    size_t B, H, W, rows; /* rows = B*C*H */
    double kh, kw, cnt_h, cnt_w;
    double *part; /* per row: its vertical and horizontal sums (when a loss is wanted) */
    int nt;
} zdce_tv;

static tll_status tv_setup(zdce_tv *v, int want_loss, size_t B, size_t C, size_t H, size_t W, double coef)
{
    if (B == 0 || C == 0 || H == 0 || W == 0)
        return TLL_ERR_ARG;
    const size_t planes = mul_size(B, C);
    const size_t rows = mul_size(planes, H);
    if (mul_size(rows, W) == SIZE_SAT)
        return TLL_ERR_OVERFLOW;
    int fail = 0;
    double *part = want_loss ? alloc_doubles(mul_size(rows, 2), &fail) : NULL;
    if (fail)
        return TLL_ERR_NOMEM;
    const double cnt_h = (double)(H - 1) * (double)W, cnt_w = (double)H * (double)(W - 1);
    /* L = (2/B) (Sh/cnt_h + Sw/cnt_w); dSh/dA = 2*(...) -> factor 4/(B*cnt). */
    *v = (zdce_tv){
        .B = B, .H = H, .W = W, .rows = rows, .cnt_h = cnt_h, .cnt_w = cnt_w,
        .kh = cnt_h > 0 ? coef * 4.0 / ((double)B * cnt_h) : 0.0,
        .kw = cnt_w > 0 ? coef * 4.0 / ((double)B * cnt_w) : 0.0,
        .part = part, .nt = zdce_threads(),
    };
    return TLL_OK;
}

/* *loss from the per-row sums (when wanted); frees the plan. */
static tll_status tv_finish(zdce_tv *v, double *loss)
{
    if (!loss)
        return TLL_OK;
    double th = 0.0, tw = 0.0;
    for (size_t r = 0; r < v->rows; r++) {
        th += v->part[2 * r];
        tw += v->part[2 * r + 1];
    }
    double l = 0.0;
    if (v->cnt_h > 0)
        l += th / v->cnt_h;
    if (v->cnt_w > 0)
        l += tw / v->cnt_w;
    *loss = 2.0 * l / (double)v->B;
    free(v->part);
    return TLL_OK;
}

#define TLL_TMPL "zerodce_loss_tmpl.h"
#include "tll_each_dtype.h"
