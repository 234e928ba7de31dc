/* Depthwise-separable convolution kernels: forward and backward against naive
 * loops in double (float64 and float32 paths), the naive backward against
 * central finite differences, several tiles in both directions, thread-count
 * invariance (bitwise), NULL gradient arguments, empty batches and argument
 * errors. */
#include "tasklle.h"
#include "tll_test.h"
#include <string.h>

typedef struct {
    size_t B, C, O, H, W;
    int relu;
} shape;

static double *rand_buf(size_t n, double lo, double hi)
{
    double *p = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * tll_test_uniform();
    return p;
}

static float *to_f32(const double *a, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)a[i];
    return p;
}

/* x value with zero padding */
static double xat(const double *x, const shape *s, size_t b, size_t c, long i, long j)
{
    if (i < 0 || j < 0 || i >= (long)s->H || j >= (long)s->W)
        return 0;
    return x[((b * s->C + c) * s->H + (size_t)i) * s->W + (size_t)j];
}

/* naive depthwise output d (B,C,H,W) and the block's output y (B,O,H,W) */
static void naive_forward(double *d, double *y, const double *x, const double *dw, const double *db,
                          const double *pw, const double *pb, const shape *s)
{
    size_t HW = s->H * s->W;
    for (size_t b = 0; b < s->B; b++)
        for (size_t c = 0; c < s->C; c++)
            for (size_t i = 0; i < s->H; i++)
                for (size_t j = 0; j < s->W; j++) {
                    double v = db[c];
                    for (int a = 0; a < 3; a++)
                        for (int e = 0; e < 3; e++)
                            v += dw[9 * c + 3 * a + e] * xat(x, s, b, c, (long)i + a - 1, (long)j + e - 1);
                    d[(b * s->C + c) * HW + i * s->W + j] = v;
                }
    for (size_t b = 0; b < s->B; b++)
        for (size_t o = 0; o < s->O; o++)
            for (size_t p = 0; p < HW; p++) {
                double v = pb[o];
                for (size_t c = 0; c < s->C; c++)
                    v += pw[o * s->C + c] * d[(b * s->C + c) * HW + p];
                y[(b * s->O + o) * HW + p] = s->relu && v < 0 ? 0 : v;
            }
}

/* naive backward of L = sum(y * gy) */
static void naive_backward(double *gx, double *gdw, double *gdb, double *gpw, double *gpb, const double *gy,
                           const double *x, const double *dw, const double *db, const double *pw, const double *pb,
                           const shape *s)
{
    size_t HW = s->H * s->W, nd = s->B * s->C * HW, ny = s->B * s->O * HW;
    double *d = malloc(nd * sizeof(double)), *y = malloc(ny * sizeof(double)), *g = malloc(ny * sizeof(double));
    double *gd = calloc(nd, sizeof(double));
    naive_forward(d, y, x, dw, db, pw, pb, s);
    for (size_t i = 0; i < ny; i++)
        g[i] = s->relu && y[i] <= 0 ? 0 : gy[i];
    memset(gpw, 0, s->O * s->C * sizeof(double));
    memset(gpb, 0, s->O * sizeof(double));
    memset(gdw, 0, 9 * s->C * sizeof(double));
    memset(gdb, 0, s->C * sizeof(double));
    memset(gx, 0, nd * sizeof(double));
    for (size_t b = 0; b < s->B; b++)
        for (size_t o = 0; o < s->O; o++)
            for (size_t p = 0; p < HW; p++) {
                double gv = g[(b * s->O + o) * HW + p];
                gpb[o] += gv;
                for (size_t c = 0; c < s->C; c++) {
                    gpw[o * s->C + c] += gv * d[(b * s->C + c) * HW + p];
                    gd[(b * s->C + c) * HW + p] += pw[o * s->C + c] * gv;
                }
            }
    for (size_t b = 0; b < s->B; b++)
        for (size_t c = 0; c < s->C; c++)
            for (size_t i = 0; i < s->H; i++)
                for (size_t j = 0; j < s->W; j++) {
                    double gv = gd[(b * s->C + c) * HW + i * s->W + j];
                    gdb[c] += gv;
                    for (int a = 0; a < 3; a++)
                        for (int e = 0; e < 3; e++) {
                            long ii = (long)i + a - 1, jj = (long)j + e - 1;
                            gdw[9 * c + 3 * a + e] += gv * xat(x, s, b, c, ii, jj);
                            if (ii >= 0 && jj >= 0 && ii < (long)s->H && jj < (long)s->W)
                                gx[((b * s->C + c) * s->H + (size_t)ii) * s->W + (size_t)jj] += gv * dw[9 * c + 3 * a + e];
                        }
                }
    free(d);
    free(y);
    free(g);
    free(gd);
}

static double loss(const double *gy, const double *x, const double *dw, const double *db, const double *pw,
                   const double *pb, const shape *s)
{
    size_t HW = s->H * s->W, nd = s->B * s->C * HW, ny = s->B * s->O * HW;
    double *d = malloc(nd * sizeof(double)), *y = malloc(ny * sizeof(double));
    naive_forward(d, y, x, dw, db, pw, pb, s);
    double l = 0;
    for (size_t i = 0; i < ny; i++)
        l += y[i] * gy[i];
    free(d);
    free(y);
    return l;
}

/* the naive backward against central differences on a few entries of every input */
static void test_naive_fd(int relu)
{
    shape s = {2, 3, 4, 4, 5, relu};
    size_t HW = s.H * s.W, nx = s.B * s.C * HW, ny = s.B * s.O * HW;
    double *x = rand_buf(nx, -1, 1), *dw = rand_buf(9 * s.C, -1, 1), *db = rand_buf(s.C, -1, 1);
    double *pw = rand_buf(s.O * s.C, -1, 1), *pb = rand_buf(s.O, -1, 1), *gy = rand_buf(ny, -1, 1);
    double *gx = malloc(nx * sizeof(double)), gdw[27], gdb[3], gpw[12], gpb[4];
    naive_backward(gx, gdw, gdb, gpw, gpb, gy, x, dw, db, pw, pb, &s);
    double *args[5] = {x, dw, db, pw, pb}, *grads[5] = {gx, gdw, gdb, gpw, gpb};
    size_t sizes[5] = {nx, 9 * s.C, s.C, s.O * s.C, s.O};
    const double h = 1e-6;
    for (int a = 0; a < 5; a++)
        for (size_t k = 0; k < sizes[a]; k += 1 + sizes[a] / 7) {
            double keep = args[a][k];
            args[a][k] = keep + h;
            double lp = loss(gy, x, dw, db, pw, pb, &s);
            args[a][k] = keep - h;
            double lm = loss(gy, x, dw, db, pw, pb, &s);
            args[a][k] = keep;
            CHECK_CLOSE(grads[a][k], (lp - lm) / (2 * h), 1e-6);
        }
    free(x), free(dw), free(db), free(pw), free(pb), free(gy), free(gx);
}

/* kernel vs naive, float64 and float32 */
static void test_against_naive(shape s)
{
    size_t HW = s.H * s.W, nx = s.B * s.C * HW, ny = s.B * s.O * HW;
    double *x = rand_buf(nx, -1, 1), *dw = rand_buf(9 * s.C, -0.5, 0.5), *db = rand_buf(s.C, -0.5, 0.5);
    double *pw = rand_buf(s.O * s.C, -0.5, 0.5), *pb = rand_buf(s.O, -0.5, 0.5), *gy = rand_buf(ny, -1, 1);
    double *d = malloc((nx ? nx : 1) * sizeof(double)), *yr = malloc((ny ? ny : 1) * sizeof(double));
    double *y = malloc((ny ? ny : 1) * sizeof(double));
    naive_forward(d, yr, x, dw, db, pw, pb, &s);
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, s.B, s.C, 0, s.O, s.H, s.W, s.relu) == TLL_OK);
    for (size_t i = 0; i < ny; i++)
        CHECK_CLOSE(y[i], yr[i], 1e-12);

    double *gx = malloc((nx ? nx : 1) * sizeof(double)), *gdw = malloc(9 * s.C * sizeof(double));
    double *gdb = malloc(s.C * sizeof(double)), *gpw = malloc(s.O * s.C * sizeof(double));
    double *gpb = malloc(s.O * sizeof(double));
    double *rx = malloc((nx ? nx : 1) * sizeof(double)), *rdw = malloc(9 * s.C * sizeof(double));
    double *rdb = malloc(s.C * sizeof(double)), *rpw = malloc(s.O * s.C * sizeof(double));
    double *rpb = malloc(s.O * sizeof(double));
    naive_backward(rx, rdw, rdb, rpw, rpb, gy, x, dw, db, pw, pb, &s);
    CHECK(tll_separable_conv_backward_f64(gx, NULL, gdw, gdb, gpw, gpb, gy, y, x, NULL, dw, db, pw, s.B, s.C, 0, s.O, s.H, s.W, s.relu) == TLL_OK);
    for (size_t i = 0; i < nx; i++)
        CHECK_CLOSE(gx[i], rx[i], 1e-11);
    for (size_t i = 0; i < 9 * s.C; i++)
        CHECK_CLOSE(gdw[i], rdw[i], 1e-10);
    for (size_t i = 0; i < s.C; i++)
        CHECK_CLOSE(gdb[i], rdb[i], 1e-10);
    for (size_t i = 0; i < s.O * s.C; i++)
        CHECK_CLOSE(gpw[i], rpw[i], 1e-10);
    for (size_t i = 0; i < s.O; i++)
        CHECK_CLOSE(gpb[i], rpb[i], 1e-10);

    /* float32: same inputs rounded; tolerances relative to the sizes of the sums */
    float *xf = to_f32(x, nx), *dwf = to_f32(dw, 9 * s.C), *dbf = to_f32(db, s.C), *pwf = to_f32(pw, s.O * s.C);
    float *pbf = to_f32(pb, s.O), *gyf = to_f32(gy, ny), *yf = malloc((ny ? ny : 1) * sizeof(float));
    float *gxf = malloc((nx ? nx : 1) * sizeof(float)), *gdwf = malloc(9 * s.C * sizeof(float));
    float *gdbf = malloc(s.C * sizeof(float)), *gpwf = malloc(s.O * s.C * sizeof(float));
    float *gpbf = malloc(s.O * sizeof(float));
    CHECK(tll_separable_conv_forward_f32(yf, xf, NULL, dwf, dbf, pwf, pbf, s.B, s.C, 0, s.O, s.H, s.W, s.relu) == TLL_OK);
    for (size_t i = 0; i < ny; i++)
        CHECK_CLOSE(yf[i], yr[i], 1e-4 * (1 + s.C / 8.0));
    CHECK(tll_separable_conv_backward_f32(gxf, NULL, gdwf, gdbf, gpwf, gpbf, gyf, yf, xf, NULL, dwf, dbf, pwf, s.B, s.C, 0, s.O, s.H, s.W, s.relu) == TLL_OK);
    double big = (double)(s.B * HW);
    for (size_t i = 0; i < nx; i++)
        CHECK_CLOSE(gxf[i], rx[i], 1e-4 * (1 + s.O / 8.0));
    /* a relu decision may flip where z is within rounding of 0; skip weight checks then */
    int flips = 0;
    for (size_t i = 0; i < ny; i++)
        flips += s.relu && ((yf[i] > 0) != (yr[i] > 0));
    if (!flips) {
        for (size_t i = 0; i < 9 * s.C; i++)
            CHECK_CLOSE(gdwf[i], rdw[i], 1e-5 * big);
        for (size_t i = 0; i < s.O * s.C; i++)
            CHECK_CLOSE(gpwf[i], rpw[i], 1e-5 * big);
        for (size_t i = 0; i < s.O; i++)
            CHECK_CLOSE(gpbf[i], rpb[i], 1e-5 * big);
    }
    free(x), free(dw), free(db), free(pw), free(pb), free(gy), free(d), free(yr), free(y);
    free(gx), free(gdw), free(gdb), free(gpw), free(gpb), free(rx), free(rdw), free(rdb), free(rpw), free(rpb);
    free(xf), free(dwf), free(dbf), free(pwf), free(pbf), free(gyf), free(yf);
    free(gxf), free(gdwf), free(gdbf), free(gpwf), free(gpbf);
}

/* 1 and 2 threads give the same bits; NULL gradients leave the others unchanged */
static void test_threads_and_nulls(void)
{
    shape s = {2, 16, 12, 70, 130, 1};
    size_t HW = s.H * s.W, nx = s.B * s.C * HW, ny = s.B * s.O * HW;
    double *xd = rand_buf(nx, -1, 1), *dwd = rand_buf(9 * s.C, -0.5, 0.5), *dbd = rand_buf(s.C, -0.5, 0.5);
    double *pwd = rand_buf(s.O * s.C, -0.5, 0.5), *pbd = rand_buf(s.O, -0.5, 0.5), *gyd = rand_buf(ny, -1, 1);
    float *x = to_f32(xd, nx), *dw = to_f32(dwd, 9 * s.C), *db = to_f32(dbd, s.C), *pw = to_f32(pwd, s.O * s.C);
    float *pb = to_f32(pbd, s.O), *gy = to_f32(gyd, ny);
    float *y[2], *gx[2], *gdw[2], *gdb[2], *gpw[2], *gpb[2];
    for (int t = 0; t < 2; t++) {
        tll_set_num_threads(t + 1);
        y[t] = malloc(ny * sizeof(float));
        gx[t] = malloc(nx * sizeof(float));
        gdw[t] = malloc(9 * s.C * sizeof(float));
        gdb[t] = malloc(s.C * sizeof(float));
        gpw[t] = malloc(s.O * s.C * sizeof(float));
        gpb[t] = malloc(s.O * sizeof(float));
        CHECK(tll_separable_conv_forward_f32(y[t], x, NULL, dw, db, pw, pb, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_OK);
        CHECK(tll_separable_conv_backward_f32(gx[t], NULL, gdw[t], gdb[t], gpw[t], gpb[t], gy, y[t], x, NULL, dw, db, pw, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_OK);
    }
    tll_set_num_threads(0);
    CHECK(memcmp(y[0], y[1], ny * sizeof(float)) == 0);
    CHECK(memcmp(gx[0], gx[1], nx * sizeof(float)) == 0);
    CHECK(memcmp(gdw[0], gdw[1], 9 * s.C * sizeof(float)) == 0);
    CHECK(memcmp(gdb[0], gdb[1], s.C * sizeof(float)) == 0);
    CHECK(memcmp(gpw[0], gpw[1], s.O * s.C * sizeof(float)) == 0);
    CHECK(memcmp(gpb[0], gpb[1], s.O * sizeof(float)) == 0);

    /* only some gradients wanted: the same values */
    float *g2 = malloc(9 * s.C * sizeof(float)), *gx2 = malloc(nx * sizeof(float));
    CHECK(tll_separable_conv_backward_f32(NULL, NULL, g2, NULL, NULL, NULL, gy, y[0], x, NULL, dw, db, pw, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(memcmp(g2, gdw[0], 9 * s.C * sizeof(float)) == 0);
    CHECK(tll_separable_conv_backward_f32(gx2, NULL, NULL, NULL, NULL, NULL, gy, y[0], x, NULL, dw, db, pw, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(memcmp(gx2, gx[0], nx * sizeof(float)) == 0);
    free(g2), free(gx2);
    for (int t = 0; t < 2; t++)
        free(y[t]), free(gx[t]), free(gdw[t]), free(gdb[t]), free(gpw[t]), free(gpb[t]);
    free(xd), free(dwd), free(dbd), free(pwd), free(pbd), free(gyd);
    free(x), free(dw), free(db), free(pw), free(pb), free(gy);
}

/* x given in two parts (a channel concatenation): the same bits as the whole */
static void test_split_input(void)
{
    shape s = {2, 7, 5, 19, 40, 1};
    size_t C1 = 3, C2 = s.C - C1, HW = s.H * s.W, nx = s.B * s.C * HW, ny = s.B * s.O * HW;
    double *x = rand_buf(nx, -1, 1), *dw = rand_buf(9 * s.C, -0.5, 0.5), *db = rand_buf(s.C, -0.5, 0.5);
    double *pw = rand_buf(s.O * s.C, -0.5, 0.5), *pb = rand_buf(s.O, -0.5, 0.5), *gy = rand_buf(ny, -1, 1);
    double *xa = malloc(s.B * C1 * HW * sizeof(double)), *xb = malloc(s.B * C2 * HW * sizeof(double));
    for (size_t b = 0; b < s.B; b++) {
        memcpy(xa + b * C1 * HW, x + b * s.C * HW, C1 * HW * sizeof(double));
        memcpy(xb + b * C2 * HW, x + (b * s.C + C1) * HW, C2 * HW * sizeof(double));
    }
    double *y = malloc(ny * sizeof(double)), *y2 = malloc(ny * sizeof(double)), *gx = malloc(nx * sizeof(double));
    double *ga = malloc(s.B * C1 * HW * sizeof(double)), *gb = malloc(s.B * C2 * HW * sizeof(double));
    double gw[2][9 * 7], gpw[2][5 * 7];
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(tll_separable_conv_forward_f64(y2, xa, xb, dw, db, pw, pb, s.B, s.C, C2, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(memcmp(y, y2, ny * sizeof(double)) == 0);
    CHECK(tll_separable_conv_backward_f64(gx, NULL, gw[0], NULL, gpw[0], NULL, gy, y, x, NULL, dw, db, pw, s.B, s.C,
                                          0, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(tll_separable_conv_backward_f64(ga, gb, gw[1], NULL, gpw[1], NULL, gy, y, xa, xb, dw, db, pw, s.B, s.C,
                                          C2, s.O, s.H, s.W, 1) == TLL_OK);
    CHECK(memcmp(gw[0], gw[1], sizeof gw[0]) == 0);
    CHECK(memcmp(gpw[0], gpw[1], sizeof gpw[0]) == 0);
    for (size_t b = 0; b < s.B; b++) {
        CHECK(memcmp(ga + b * C1 * HW, gx + b * s.C * HW, C1 * HW * sizeof(double)) == 0);
        CHECK(memcmp(gb + b * C2 * HW, gx + (b * s.C + C1) * HW, C2 * HW * sizeof(double)) == 0);
    }
    /* only the second half's gradient wanted */
    memset(gb, 0, s.B * C2 * HW * sizeof(double));
    CHECK(tll_separable_conv_backward_f64(NULL, gb, NULL, NULL, NULL, NULL, gy, y, xa, xb, dw, db, pw, s.B, s.C, C2,
                                          s.O, s.H, s.W, 1) == TLL_OK);
    for (size_t b = 0; b < s.B; b++)
        CHECK(memcmp(gb + b * C2 * HW, gx + (b * s.C + C1) * HW, C2 * HW * sizeof(double)) == 0);
    /* cin2 must leave x at least one channel, and x2 comes exactly with cin2 > 0 */
    CHECK(tll_separable_conv_forward_f64(y2, xa, xb, dw, db, pw, pb, s.B, s.C, s.C, s.O, s.H, s.W, 1) == TLL_ERR_ARG);
    CHECK(tll_separable_conv_forward_f64(y2, xa, NULL, dw, db, pw, pb, s.B, s.C, C2, s.O, s.H, s.W, 1) == TLL_ERR_ARG);
    CHECK(tll_separable_conv_forward_f64(y2, xa, xb, dw, db, pw, pb, s.B, s.C, 0, s.O, s.H, s.W, 1) == TLL_ERR_ARG);
    free(x), free(dw), free(db), free(pw), free(pb), free(gy), free(xa), free(xb), free(y), free(y2), free(gx);
    free(ga), free(gb);
}

static void test_edge_cases(void)
{
    double x[4] = {1, 2, 3, 4}, dw[9] = {0}, db[1] = {0}, pw[2] = {1, 1}, pb[2] = {0}, y[8], gy[8] = {0};
    double gdw[9], gdb[1], gpw[2], gpb[2];
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, 1, 0, 0, 2, 2, 2, 0) == TLL_ERR_ARG);
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, 1, 1, 0, 0, 2, 2, 0) == TLL_ERR_ARG);
    CHECK(tll_separable_conv_backward_f64(NULL, NULL, gdw, NULL, NULL, NULL, gy, NULL, x, NULL, dw, db, pw, 1, 1, 0, 2, 2, 2, 1) ==
          TLL_ERR_ARG);
    CHECK(tll_separable_conv_backward_f64(NULL, NULL, gdw, NULL, NULL, NULL, NULL, y, x, NULL, dw, db, pw, 1, 1, 0, 2, 2, 2, 0) ==
          TLL_ERR_ARG);
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, (size_t)1 << 40, 1, 0, 2, (size_t)1 << 20, (size_t)1 << 20, 0) == TLL_ERR_OVERFLOW);
    /* no pixels: nothing written by the forward, zero weight gradients */
    for (int i = 0; i < 9; i++)
        gdw[i] = 7;
    gdb[0] = gpw[0] = gpw[1] = gpb[0] = gpb[1] = 7;
    CHECK(tll_separable_conv_forward_f64(y, x, NULL, dw, db, pw, pb, 0, 1, 0, 2, 2, 2, 0) == TLL_OK);
    CHECK(tll_separable_conv_backward_f64(NULL, NULL, gdw, gdb, gpw, gpb, gy, y, x, NULL, dw, db, pw, 1, 1, 0, 2, 0, 2, 1) ==
          TLL_OK);
    for (int i = 0; i < 9; i++)
        CHECK(gdw[i] == 0);
    CHECK(gdb[0] == 0 && gpw[0] == 0 && gpw[1] == 0 && gpb[0] == 0 && gpb[1] == 0);
    /* NaN in x reaches the outputs */
    double xn[4] = {1, NAN, 3, 4}, dw1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(tll_separable_conv_forward_f64(y, xn, NULL, dw1, db, pw, pb, 1, 1, 0, 2, 2, 2, 0) == TLL_OK);
    CHECK(isnan(y[0]) && isnan(y[7]));
}

int main(void)
{
    test_naive_fd(0);
    test_naive_fd(1);
    shape shapes[] = {
        {1, 3, 5, 1, 1, 0},   {2, 5, 3, 1, 7, 1},    {1, 3, 3, 6, 1, 0},   {2, 5, 7, 5, 7, 1},
        {1, 32, 32, 33, 17, 1}, {1, 4, 9, 70, 130, 0}, {3, 9, 17, 40, 66, 1}, {1, 64, 3, 9, 33, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        test_against_naive(shapes[i]);
    test_threads_and_nulls();
    test_split_input();
    test_edge_cases();
    TEST_MAIN_END();
}
