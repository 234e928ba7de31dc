/* Curve kernels: forward against a naive per-pixel loop, backward against
 * central finite differences (float64), thread-count invariance, NULL
 * gradient arguments, NaN propagation, empty sizes and argument errors. */
#include "tasklle.h"
#include "tll_test.h"
#include <string.h>

/* Naive forward of one pixel value through maps a[0..n-1]; also returns x_h. */
static double naive(double v, const double *a, int n, int h, double *half)
{
    if (h == 0)
        *half = v;
    for (int k = 0; k < n; k++) {
        v = v + a[k] * (v * v - v);
        if (k + 1 == h)
            *half = v;
    }
    return v;
}

static double *rand_buf(size_t n, double lo, double hi)
{
    double *p = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * tll_test_uniform();
    return p;
}

/* Loss L = sum(out * wo) + sum(half * wh), evaluated with the kernel. */
static double loss(const double *x, const double *A, const double *wo, const double *wh, size_t B, size_t H,
                   size_t W, int n, int per, int h)
{
    size_t N = B * 3 * H * W;
    double *out = malloc(N * sizeof(double)), *half = malloc(N * sizeof(double));
    CHECK(tll_curve_forward_f64(out, half, x, A, B, H, W, n, per, h) == TLL_OK);
    double s = 0;
    for (size_t i = 0; i < N; i++)
        s += out[i] * wo[i] + half[i] * wh[i];
    free(out);
    free(half);
    return s;
}

/* Central difference of loss() in the element *p (an element of x or A), restored after. */
static double numeric_grad(double *p, const double *x, const double *A, const double *wo, const double *wh, size_t B,
                           size_t H, size_t W, int n, int per, int h)
{
    const double eps = 1e-6, v = *p;
    *p = v + eps;
    double lp = loss(x, A, wo, wh, B, H, W, n, per, h);
    *p = v - eps;
    double lm = loss(x, A, wo, wh, B, H, W, n, per, h);
    *p = v;
    return (lp - lm) / (2 * eps);
}

static void test_forward(int per, int n, int h)
{
    size_t B = 2, H = 3, W = 5, HW = H * W, maps = per ? (size_t)n : 1;
    size_t N = B * 3 * HW, NA = B * 3 * maps * HW;
    double *x = rand_buf(N, 0, 1), *A = rand_buf(NA, -1, 1);
    double *out = malloc(N * sizeof(double)), *half = malloc(N * sizeof(double));
    float *xf = malloc(N * sizeof(float)), *Af = malloc(NA * sizeof(float));
    float *outf = malloc(N * sizeof(float)), *halff = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++)
        xf[i] = (float)x[i];
    for (size_t i = 0; i < NA; i++)
        Af[i] = (float)A[i];
    CHECK(tll_curve_forward_f64(out, half, x, A, B, H, W, n, per, h) == TLL_OK);
    CHECK(tll_curve_forward_f32(outf, halff, xf, Af, B, H, W, n, per, h) == TLL_OK);
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < 3; c++)
            for (size_t p = 0; p < HW; p++) {
                double a[64], hv = 0;
                for (int k = 0; k < n; k++)
                    a[k] = A[(b * 3 * maps + (per ? 3 * (size_t)k : 0) + c) * HW + p];
                size_t i = (b * 3 + c) * HW + p;
                double expect = naive(x[i], a, n, h, &hv);
                CHECK_CLOSE(out[i], expect, 1e-14);
                CHECK_CLOSE(half[i], hv, 1e-14);
                CHECK_CLOSE(outf[i], expect, 1e-5);
                CHECK_CLOSE(halff[i], hv, 1e-5);
            }
    free(x), free(A), free(out), free(half), free(xf), free(Af), free(outf), free(halff);
}

static void test_backward_fd(int per, int n, int h)
{
    size_t B = 1, H = 2, W = 3, maps = per ? (size_t)n : 1;
    size_t N = B * 3 * H * W, NA = B * 3 * maps * H * W;
    double *x = rand_buf(N, 0.05, 0.95), *A = rand_buf(NA, -1, 1);
    double *wo = rand_buf(N, -1, 1), *wh = rand_buf(N, -1, 1);
    double *gx = malloc(N * sizeof(double)), *gA = malloc(NA * sizeof(double));
    CHECK(tll_curve_backward_f64(gx, gA, wo, wh, x, A, B, H, W, n, per, h) == TLL_OK);
    for (size_t i = 0; i < N; i++) {
        double num = numeric_grad(x + i, x, A, wo, wh, B, H, W, n, per, h);
        CHECK_CLOSE(gx[i], num, 1e-6);
    }
    for (size_t i = 0; i < NA; i++) {
        double num = numeric_grad(A + i, x, A, wo, wh, B, H, W, n, per, h);
        CHECK_CLOSE(gA[i], num, 1e-6);
    }
    /* NULL grad_half equals a zero grad_half; NULL grad_x leaves grad_A unchanged */
    double *zero = calloc(N, sizeof(double)), *gA1 = malloc(NA * sizeof(double)),
           *gA2 = malloc(NA * sizeof(double)), *gx1 = malloc(N * sizeof(double));
    CHECK(tll_curve_backward_f64(gx1, gA1, wo, NULL, x, A, B, H, W, n, per, h) == TLL_OK);
    CHECK(tll_curve_backward_f64(NULL, gA2, wo, zero, x, A, B, H, W, n, per, h) == TLL_OK);
    CHECK(memcmp(gA1, gA2, NA * sizeof(double)) == 0);
    /* no incoming gradient at all: zeros */
    CHECK(tll_curve_backward_f64(gx1, gA1, NULL, NULL, x, A, B, H, W, n, per, h) == TLL_OK);
    for (size_t i = 0; i < N; i++)
        CHECK(gx1[i] == 0);
    for (size_t i = 0; i < NA; i++)
        CHECK(gA1[i] == 0);
    free(x), free(A), free(wo), free(wh), free(gx), free(gA), free(zero), free(gA1), free(gA2), free(gx1);
}

/* Large enough for the parallel path: 1 thread and 2 threads give the same bits. */
static void test_threads(int per)
{
    size_t B = 2, H = 67, W = 131, n = 8, maps = per ? n : 1;
    size_t N = B * 3 * H * W, NA = B * 3 * maps * H * W;
    float *x = malloc(N * sizeof(float)), *A = malloc(NA * sizeof(float)), *go = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++)
        x[i] = (float)tll_test_uniform(), go[i] = (float)tll_test_uniform() - 0.5f;
    for (size_t i = 0; i < NA; i++)
        A[i] = (float)(2 * tll_test_uniform() - 1);
    float *o[2], *hf[2], *gx[2], *gA[2];
    for (int t = 0; t < 2; t++) {
        o[t] = malloc(N * sizeof(float)), hf[t] = malloc(N * sizeof(float));
        gx[t] = malloc(N * sizeof(float)), gA[t] = malloc(NA * sizeof(float));
        tll_set_num_threads(t + 1);
        CHECK(tll_curve_forward_f32(o[t], hf[t], x, A, B, H, W, (int)n, per, 4) == TLL_OK);
        CHECK(tll_curve_backward_f32(gx[t], gA[t], go, go, x, A, B, H, W, (int)n, per, 4) == TLL_OK);
    }
    tll_set_num_threads(0);
    CHECK(memcmp(o[0], o[1], N * sizeof(float)) == 0);
    CHECK(memcmp(hf[0], hf[1], N * sizeof(float)) == 0);
    CHECK(memcmp(gx[0], gx[1], N * sizeof(float)) == 0);
    CHECK(memcmp(gA[0], gA[1], NA * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++)
        free(o[t]), free(hf[t]), free(gx[t]), free(gA[t]);
    free(x), free(A), free(go);
}

static void test_edges(void)
{
    /* NaN propagates through forward and backward */
    double x[3] = {NAN, 0.5, 0.25}, A[3] = {0.5, NAN, -0.5}, out[3], go[3] = {1, 1, 1}, gx[3], gA[3];
    CHECK(tll_curve_forward_f64(out, NULL, x, A, 1, 1, 1, 8, 0, 4) == TLL_OK);
    CHECK(isnan(out[0]) && isnan(out[1]) && !isnan(out[2]));
    CHECK(tll_curve_backward_f64(gx, gA, go, NULL, x, A, 1, 1, 1, 8, 0, 4) == TLL_OK);
    CHECK(isnan(gx[0]) && isnan(gA[0]) && isnan(gx[1]) && isnan(gA[1]) && !isnan(gx[2]) && !isnan(gA[2]));
    /* many iterations: the backward tile shrinks, results still match finite differences */
    test_backward_fd(0, 3000, 1500);
    /* empty sizes do nothing and succeed */
    CHECK(tll_curve_forward_f32(NULL, NULL, NULL, NULL, 0, 5, 5, 8, 0, 4) == TLL_OK);
    CHECK(tll_curve_forward_f32(NULL, NULL, NULL, NULL, 2, 0, 5, 8, 1, 4) == TLL_OK);
    CHECK(tll_curve_backward_f64(NULL, NULL, NULL, NULL, NULL, NULL, 2, 5, 0, 8, 0, 4) == TLL_OK);
    /* bad scalars and overflowing sizes */
    CHECK(tll_curve_forward_f64(out, NULL, x, A, 1, 1, 1, 0, 0, 0) == TLL_ERR_ARG);
    CHECK(tll_curve_forward_f64(out, NULL, x, A, 1, 1, 1, 8, 0, 9) == TLL_ERR_ARG);
    CHECK(tll_curve_backward_f64(gx, gA, go, NULL, x, A, 1, 1, 1, 8, 0, -1) == TLL_ERR_ARG);
    CHECK(tll_curve_forward_f64(out, NULL, x, A, 1, SIZE_MAX / 2, 3, 8, 0, 4) == TLL_ERR_OVERFLOW);
    CHECK(tll_curve_backward_f32(NULL, NULL, NULL, NULL, NULL, NULL, SIZE_MAX / 4, 1024, 1024, 8, 1, 4) ==
          TLL_ERR_OVERFLOW);
}

/* Naive bilinear (align_corners=True) value of plane a (h x w) at output (i, j) of (H x W). */
static double naive_up(const double *a, size_t h, size_t w, size_t H, size_t W, size_t i, size_t j)
{
    double sy = H > 1 ? (double)i * (double)(h - 1) / (double)(H - 1) : 0;
    double sx = W > 1 ? (double)j * (double)(w - 1) / (double)(W - 1) : 0;
    size_t y0 = (size_t)sy, x0 = (size_t)sx;
    y0 = y0 > h - 1 ? h - 1 : y0;
    x0 = x0 > w - 1 ? w - 1 : x0;
    size_t y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    double ly = sy - (double)y0, lx = sx - (double)x0;
    double top = (1 - lx) * a[y0 * w + x0] + lx * a[y0 * w + x1];
    double bot = (1 - lx) * a[y1 * w + x0] + lx * a[y1 * w + x1];
    return (1 - ly) * top + ly * bot;
}

/* The fused upsample + curve against the naive upsampling then the naive curve;
   with and without the map output (same out bits); thread-count invariance. */
static void test_upsample(size_t B, size_t H, size_t W, size_t h, size_t w, int n)
{
    size_t N = B * 3 * H * W, NA = B * 3 * h * w;
    double *x = rand_buf(N, 0, 1), *a = rand_buf(NA, -1, 1);
    double *out = malloc(N * sizeof(double)), *map = malloc(N * sizeof(double)), *out2 = malloc(N * sizeof(double));
    CHECK(tll_curve_upsample_forward_f64(out, map, x, a, B, H, W, h, w, n) == TLL_OK);
    CHECK(tll_curve_upsample_forward_f64(out2, NULL, x, a, B, H, W, h, w, n) == TLL_OK);
    CHECK(memcmp(out, out2, N * sizeof(double)) == 0);
    for (size_t p = 0; p < B * 3; p++)
        for (size_t i = 0; i < H; i++)
            for (size_t j = 0; j < W; j++) {
                size_t k = (p * H + i) * W + j;
                double m = naive_up(a + p * h * w, h, w, H, W, i, j), hv;
                CHECK_CLOSE(map[k], m, 1e-14);
                CHECK_CLOSE(out[k], naive(x[k], (double[]){m, m, m, m, m, m, m, m, m, m, m, m, m, m, m, m}, n, -1,
                                          &hv), 1e-13);
            }
    float *xf = malloc(N * sizeof(float)), *af = malloc(NA * sizeof(float)), *of[2];
    for (size_t i = 0; i < N; i++)
        xf[i] = (float)x[i];
    for (size_t i = 0; i < NA; i++)
        af[i] = (float)a[i];
    for (int t = 0; t < 2; t++) {
        of[t] = malloc(N * sizeof(float));
        tll_set_num_threads(t + 1);
        CHECK(tll_curve_upsample_forward_f32(of[t], NULL, xf, af, B, H, W, h, w, n) == TLL_OK);
    }
    tll_set_num_threads(0);
    CHECK(memcmp(of[0], of[1], N * sizeof(float)) == 0);
    for (size_t i = 0; i < N; i++)
        CHECK_CLOSE(of[0][i], out[i], 1e-5);
    free(x), free(a), free(out), free(map), free(out2), free(xf), free(af), free(of[0]), free(of[1]);
}

static void test_upsample_edges(void)
{
    double x[3] = {0.5, 0.5, 0.5}, a[3] = {0.1, 0.2, 0.3}, out[3];
    CHECK(tll_curve_upsample_forward_f64(out, NULL, x, a, 1, 1, 1, 0, 1, 8) == TLL_ERR_ARG); /* empty map */
    CHECK(tll_curve_upsample_forward_f64(out, NULL, x, a, 1, 1, 1, 1, 1, 0) == TLL_ERR_ARG); /* no iteration */
    CHECK(tll_curve_upsample_forward_f64(out, NULL, x, a, 1, SIZE_MAX / 2, 3, 1, 1, 8) == TLL_ERR_OVERFLOW);
    CHECK(tll_curve_upsample_forward_f32(NULL, NULL, NULL, NULL, 0, 5, 5, 2, 2, 8) == TLL_OK); /* empty batch */
}

int main(void)
{
    test_upsample(2, 37, 53, 3, 4, 8);
    test_upsample(1, 90, 120, 7, 10, 8);
    test_upsample(1, 5, 7, 1, 3, 1);
    test_upsample(1, 1, 1, 1, 1, 16);
    test_upsample(1, 6, 6, 6, 6, 3);
    test_upsample(3, 10, 1, 2, 1, 8);
    test_upsample_edges();
    for (int per = 0; per < 2; per++) {
        test_forward(per, 8, 4);
        test_forward(per, 1, 0);
        test_forward(per, 1, 1);
        test_forward(per, 5, 2);
        test_backward_fd(per, 8, 4);
        test_backward_fd(per, 8, 8);
        test_backward_fd(per, 8, 0);
        test_backward_fd(per, 1, 0);
        test_backward_fd(per, 3, 1);
        test_threads(per);
    }
    test_edges();
    TEST_MAIN_END();
}
