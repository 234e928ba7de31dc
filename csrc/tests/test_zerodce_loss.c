/* Fused Zero-DCE losses: forward vs a naive transcription of the official code,
   gradients vs central differences of that transcription, thread-count
   invariance (bit-identical), float32 vs float64, argument errors. */
#include "tasklle.h"
#include "tll_test.h"
#include <string.h>

/* ---- naive official formulation, double ------------------------------------- */

static double cmean(const double *x, size_t H, size_t W, size_t b, size_t y, size_t xx)
{
    double s = 0;
    for (int c = 0; c < 3; c++)
        s += x[((b * 3 + c) * H + y) * W + xx];
    return s / 3.0;
}

static double pooled(const double *x, size_t H, size_t W, size_t b, size_t i, size_t j, size_t p)
{
    double s = 0;
    for (size_t y = i * p; y < (i + 1) * p; y++)
        for (size_t xx = j * p; xx < (j + 1) * p; xx++)
            s += cmean(x, H, W, b, y, xx);
    return s / (double)(p * p);
}

static double naive_spa(const double *Y, const double *I, size_t B, size_t H, size_t W, size_t p)
{
    size_t h = H / p, w = W / p;
    double tot = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < h; i++)
            for (size_t j = 0; j < w; j++) {
                double ci = pooled(I, H, W, b, i, j, p), cy = pooled(Y, H, W, b, i, j, p);
                const int di[4] = {0, 0, -1, 1}, dj[4] = {-1, 1, 0, 0};
                for (int k = 0; k < 4; k++) {
                    long ni = (long)i + di[k], nj = (long)j + dj[k];
                    int in = ni >= 0 && nj >= 0 && ni < (long)h && nj < (long)w;
                    double ni_v = in ? pooled(I, H, W, b, (size_t)ni, (size_t)nj, p) : 0.0;
                    double ny_v = in ? pooled(Y, H, W, b, (size_t)ni, (size_t)nj, p) : 0.0;
                    double d = (ci - ni_v) - (cy - ny_v);
                    tot += d * d;
                }
            }
    return tot / (double)(B * h * w);
}

static double naive_exp(const double *Y, const double *E, size_t B, size_t H, size_t W, size_t p)
{
    size_t h = H / p, w = W / p;
    double tot = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < h; i++)
            for (size_t j = 0; j < w; j++) {
                double d = pooled(Y, H, W, b, i, j, p) - E[b];
                tot += d * d;
            }
    return tot / (double)(B * h * w);
}

static double naive_col(const double *Y, size_t B, size_t H, size_t W)
{
    double tot = 0;
    for (size_t b = 0; b < B; b++) {
        double m[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++)
            for (size_t k = 0; k < H * W; k++)
                m[c] += Y[(b * 3 + c) * H * W + k];
        for (int c = 0; c < 3; c++)
            m[c] /= (double)(H * W);
        tot += sqrt(pow(m[0] - m[1], 4) + pow(m[0] - m[2], 4) + pow(m[2] - m[1], 4));
    }
    return tot / (double)B;
}

static double naive_tv(const double *A, size_t B, size_t C, size_t H, size_t W)
{
    double sh = 0, sw = 0;
    for (size_t p = 0; p < B * C; p++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                double v = A[(p * H + y) * W + x];
                if (y + 1 < H) {
                    double d = A[(p * H + y + 1) * W + x] - v;
                    sh += d * d;
                }
                if (x + 1 < W) {
                    double d = A[(p * H + y) * W + x + 1] - v;
                    sw += d * d;
                }
            }
    double l = 0;
    if (H > 1)
        l += sh / (double)((H - 1) * W);
    if (W > 1)
        l += sw / (double)(H * (W - 1));
    return 2 * l / (double)B;
}

/* ---- helpers ------------------------------------------------------------------ */

enum { B = 2, H = 11, W = 13, PS = 3, PE = 4, CA = 2 };
#define N (B * 3 * H * W)
#define HS (H / PS)
#define WS (W / PS)
#define HE (H / PE)
#define WE (W / PE)

static double Y[N], I[N], A[B * CA * H * W], E[B];

static void fill(void)
{
    for (size_t k = 0; k < N; k++) {
        Y[k] = tll_test_uniform();
        I[k] = 0.3 * tll_test_uniform();
    }
    for (size_t k = 0; k < B * CA * H * W; k++)
        A[k] = tll_test_uniform() - 0.5;
    E[0] = 0.6;
    E[1] = 0.25;
}

/* full forward+backward in double with unit coefficients */
static void fused(double losses[4], double *gY, double *gI, double *gA, int threads)
{
    static double gs[B * HS * WS], ge[B * HE * WE], gc[B * 3];
    tll_set_num_threads(threads);
    CHECK(tll_zerodce_loss_forward_f64(losses, gs, ge, gc, Y, I, E, B, H, W, PS, PE, 7) == TLL_OK);
    CHECK(tll_zerodce_tv_forward_f64(&losses[3], gA, A, B, CA, H, W, 1.0) == TLL_OK);
    CHECK(tll_zerodce_loss_backward_f64(gY, gI, gs, ge, gc, B, H, W, PS, PE, 1.0, 1.0, 1.0) == TLL_OK);
    tll_set_num_threads(0);
}

static double sum_image_terms(void)
{
    return naive_spa(Y, I, B, H, W, PS) + naive_exp(Y, E, B, H, W, PE) + naive_col(Y, B, H, W);
}

int main(void)
{
    fill();
    static double gY[N], gI[N], gA[B * CA * H * W];
    double L[4];
    fused(L, gY, gI, gA, 3);
    CHECK_CLOSE(L[0], naive_spa(Y, I, B, H, W, PS), 1e-12);
    CHECK_CLOSE(L[1], naive_exp(Y, E, B, H, W, PE), 1e-12);
    CHECK_CLOSE(L[2], naive_col(Y, B, H, W), 1e-12);
    CHECK_CLOSE(L[3], naive_tv(A, B, CA, H, W), 1e-12);

    /* gradients vs central differences of the naive formulation */
    const double h = 1e-6;
    for (size_t k = 0; k < N; k += 7) {
        double keep = Y[k];
        Y[k] = keep + h;
        double fp = sum_image_terms();
        Y[k] = keep - h;
        double fm = sum_image_terms();
        Y[k] = keep;
        CHECK(fabs(gY[k] - (fp - fm) / (2 * h)) < 1e-7);
        keep = I[k];
        I[k] = keep + h;
        fp = naive_spa(Y, I, B, H, W, PS);
        I[k] = keep - h;
        fm = naive_spa(Y, I, B, H, W, PS);
        I[k] = keep;
        CHECK(fabs(gI[k] - (fp - fm) / (2 * h)) < 1e-7);
    }
    for (size_t k = 0; k < B * CA * H * W; k += 5) {
        double keep = A[k];
        A[k] = keep + h;
        double fp = naive_tv(A, B, CA, H, W);
        A[k] = keep - h;
        double fm = naive_tv(A, B, CA, H, W);
        A[k] = keep;
        CHECK(fabs(gA[k] - (fp - fm) / (2 * h)) < 1e-7);
    }

    /* thread-count invariance: bit-identical */
    static double gY1[N], gI1[N], gA1[B * CA * H * W];
    double L1[4];
    fused(L1, gY1, gI1, gA1, 1);
    CHECK(memcmp(L, L1, sizeof L) == 0);
    CHECK(memcmp(gY, gY1, sizeof gY) == 0);
    CHECK(memcmp(gI, gI1, sizeof gI) == 0);
    CHECK(memcmp(gA, gA1, sizeof gA) == 0);

    /* float32 agrees to float32 rounding (accumulation is in double) */
    static float Yf[N], If[N];
    for (size_t k = 0; k < N; k++) {
        Yf[k] = (float)Y[k];
        If[k] = (float)I[k];
    }
    double Lf[3], gs[B * HS * WS], ge[B * HE * WE], gc[B * 3];
    CHECK(tll_zerodce_loss_forward_f32(Lf, gs, ge, gc, Yf, If, E, B, H, W, PS, PE, 7) == TLL_OK);
    for (int t = 0; t < 3; t++)
        CHECK_CLOSE(Lf[t], L[t], 1e-5);

    /* TV backward == the gradient of the fused forward, scaled */
    static double gA2[B * CA * H * W];
    CHECK(tll_zerodce_tv_backward_f64(gA2, A, B, CA, H, W, 2.0) == TLL_OK);
    for (size_t k = 0; k < B * CA * H * W; k++)
        CHECK_CLOSE(gA2[k], 2.0 * gA[k], 1e-14);

    /* a single row: the vertical term is 0, the gradient finite */
    double tv1;
    double row[5] = {0.1, 0.4, 0.2, 0.2, 0.9}, grow[5];
    CHECK(tll_zerodce_tv_forward_f64(&tv1, grow, row, 1, 1, 1, 5, 1.0) == TLL_OK);
    CHECK_CLOSE(tv1, naive_tv(row, 1, 1, 1, 5), 1e-14);
    CHECK(isfinite(grow[0]) && isfinite(grow[4]));

    /* equal channel means: colour loss 0 with gradient exactly 0 */
    static double Yg[3 * 16], gcol[3];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 16; k++)
            Yg[c * 16 + k] = 0.01 * k;
    double Lc[3] = {-1, -1, -1};
    CHECK(tll_zerodce_loss_forward_f64(Lc, NULL, NULL, gcol, Yg, NULL, NULL, 1, 4, 4, 1, 1, TLL_ZDCE_COL) == TLL_OK);
    CHECK(Lc[2] == 0.0 && gcol[0] == 0.0 && gcol[1] == 0.0 && gcol[2] == 0.0);
    CHECK(Lc[0] == -1 && Lc[1] == -1); /* unselected terms untouched */

    /* argument errors the core can see */
    CHECK(tll_zerodce_loss_forward_f64(Lc, gs, NULL, NULL, Y, I, E, B, H, W, 12, PE, TLL_ZDCE_SPA) == TLL_ERR_ARG);
    CHECK(tll_zerodce_loss_forward_f64(Lc, gs, NULL, NULL, Y, NULL, E, B, H, W, PS, PE, TLL_ZDCE_SPA) ==
          TLL_ERR_ARG);
    CHECK(tll_zerodce_loss_forward_f64(Lc, NULL, ge, NULL, Y, I, E, 0, H, W, PS, PE, TLL_ZDCE_EXP) == TLL_ERR_ARG);
    CHECK(tll_zerodce_tv_forward_f64(NULL, gA, A, B, CA, H, W, 1.0) == TLL_ERR_ARG);
    CHECK(tll_zerodce_tv_backward_f64(NULL, A, B, CA, H, W, 1.0) == TLL_ERR_ARG);
    CHECK(tll_zerodce_tv_forward_f64(&tv1, NULL, A, B, CA, 0, W, 1.0) == TLL_ERR_ARG);
    TEST_MAIN_END();
}
