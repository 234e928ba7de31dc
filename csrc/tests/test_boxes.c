/* Box kernels: IoU, DIoU forward/backward (finite differences), NMS. */
#include "tasklle.h"
#include "tll_test.h"
#include <stdlib.h>
#include <string.h>

static void rand_boxes(double *b, int64_t n, double size)
{
    for (int64_t i = 0; i < n; i++) {
        double x = tll_test_uniform() * size, y = tll_test_uniform() * size;
        b[4 * i] = x;
        b[4 * i + 1] = y;
        b[4 * i + 2] = x + tll_test_uniform() * size / 3;
        b[4 * i + 3] = y + tll_test_uniform() * size / 3;
    }
}

static void test_iou(void)
{
    const double a[8] = {0, 0, 2, 2, 0, 0, 0, 0};
    const double b[12] = {1, 1, 3, 3, 0, 0, 2, 2, 5, 5, 5, 9};
    double out[6];
    CHECK(tll_box_iou_forward_f64(out, a, 2, b, 3) == TLL_OK);
    CHECK_CLOSE(out[0], 1.0 / 7.0, 1e-15); /* no +1 */
    CHECK(out[1] == 1.0);
    CHECK(out[2] == 0.0);
    CHECK(out[3] == 0.0 && out[4] == 0.0 && out[5] == 0.0); /* zero-area box */
    float af[8], bf[12], outf[6];
    for (int k = 0; k < 8; k++)
        af[k] = (float)a[k];
    for (int k = 0; k < 12; k++)
        bf[k] = (float)b[k];
    CHECK(tll_box_iou_forward_f32(outf, af, 2, bf, 3) == TLL_OK);
    CHECK(outf[0] == 1.0f / 7.0f && outf[1] == 1.0f);
    CHECK(tll_box_iou_forward_f64(out, a, 0, b, 3) == TLL_OK);
    CHECK(tll_box_iou_forward_f64(out, a, -1, b, 3) == TLL_ERR_ARG);
    double al[2];
    CHECK(tll_box_iou_aligned_forward_f64(al, a, b, 2) == TLL_OK);
    CHECK_CLOSE(al[0], 1.0 / 7.0, 1e-15);
    CHECK(al[1] == 0.0);
}

static double diou_at(const double *p, const double *t)
{
    double s = 0;
    tll_diou_forward_f64(NULL, &s, p, t, NULL, 1, 1e-6);
    return s;
}

static void test_diou(void)
{
    const double p[12] = {0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 1, 1};
    const double t[12] = {0, 0, 2, 2, 1, 0, 3, 2, 2, 0, 3, 1};
    const double w[3] = {1.0, 2.0, 0.5};
    double loss[3], sum;
    const double eps = 1e-6;
    CHECK(tll_diou_forward_f64(loss, &sum, p, t, w, 3, eps) == TLL_OK);
    CHECK_CLOSE(loss[0], 1 - 4 / (4 + eps), 1e-14);
    CHECK_CLOSE(loss[1], 1 - 2 / (6 + eps) + 1 / (13 + eps), 1e-14);
    CHECK_CLOSE(loss[2], 1 + 4 / (10 + eps), 1e-14);
    CHECK_CLOSE(sum, loss[0] + 2 * loss[1] + 0.5 * loss[2], 1e-14);
    CHECK(tll_diou_forward_f64(NULL, &sum, p, t, NULL, 0, eps) == TLL_OK && sum == 0.0);

    /* backward against central differences, away from ties */
    enum { N = 40 };
    double pp[4 * N], tt[4 * N], gp[4 * N], gt[4 * N], gl[N];
    rand_boxes(pp, N, 50);
    rand_boxes(tt, N, 50);
    for (int i = 0; i < N; i++)
        gl[i] = tll_test_uniform() - 0.3;
    CHECK(tll_diou_backward_f64(gp, gt, gl, 0.7, pp, tt, NULL, N, eps) == TLL_OK);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 8; k++) {
            double *v = k < 4 ? &pp[4 * i + k] : &tt[4 * i + k - 4];
            double h = 1e-6, keep = *v;
            *v = keep + h;
            double up = diou_at(pp + 4 * i, tt + 4 * i);
            *v = keep - h;
            double dn = diou_at(pp + 4 * i, tt + 4 * i);
            *v = keep;
            double num = 0.7 * gl[i] * (up - dn) / (2 * h);
            double ana = k < 4 ? gp[4 * i + k] : gt[4 * i + k - 4];
            double err = fabs(num - ana);
            worst = err > worst ? err : worst;
        }
    }
    CHECK(worst < 1e-7);
    /* grad_target may be NULL; gradients agree with the full call */
    double gp2[4 * N];
    CHECK(tll_diou_backward_f64(gp2, NULL, gl, 0.7, pp, tt, NULL, N, eps) == TLL_OK);
    CHECK(memcmp(gp, gp2, sizeof gp) == 0);
}

static void test_diou_threads(void)
{
    const int64_t n = 50001;
    float *p = malloc(n * 4 * sizeof(float)), *t = malloc(n * 4 * sizeof(float)), *w = malloc(n * sizeof(float));
    double *tmp = malloc(n * 4 * sizeof(double));
    rand_boxes(tmp, n, 200);
    for (int64_t i = 0; i < 4 * n; i++)
        p[i] = (float)tmp[i];
    rand_boxes(tmp, n, 200);
    for (int64_t i = 0; i < 4 * n; i++)
        t[i] = (float)tmp[i];
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)tll_test_uniform();
    double s1, s2;
    tll_set_num_threads(1);
    CHECK(tll_diou_forward_f32(NULL, &s1, p, t, w, n, 1e-6) == TLL_OK);
    tll_set_num_threads(2);
    CHECK(tll_diou_forward_f32(NULL, &s2, p, t, w, n, 1e-6) == TLL_OK);
    tll_set_num_threads(0);
    CHECK(s1 == s2);
    free(p);
    free(t);
    free(w);
    free(tmp);
}

static void test_nms(void)
{
    /* boxes 0 and 1 IoU 0.5 exactly; 2 duplicates 0; 3 far away; 4 zero area */
    const float b[20] = {0, 0, 2, 1, 0, 0, 1, 1, 0, 0, 2, 1, 10, 10, 12, 12, 0, 0, 0, 0};
    const double s[5] = {0.9, 0.8, 0.9, 0.1, 0.95};
    int64_t keep[5], k = -1;
    CHECK(tll_nms_forward_f32(keep, &k, b, s, 5, 0.5) == TLL_OK);
    /* order by score: 4 (0.95), 0 (0.9, lower index first), 2, 1, 3; 2 is suppressed by 0 */
    CHECK(k == 4);
    CHECK(keep[0] == 4 && keep[1] == 0 && keep[2] == 1 && keep[3] == 3);
    CHECK(tll_nms_forward_f32(keep, &k, b, s, 5, 0.49) == TLL_OK);
    CHECK(k == 3 && keep[0] == 4 && keep[1] == 0 && keep[2] == 3);
    CHECK(tll_nms_forward_f32(keep, &k, b, s, 0, 0.5) == TLL_OK && k == 0);
    /* a larger random case: kept boxes pairwise have IoU <= threshold and cover the rest */
    enum { N = 700 };
    double *bb = malloc(N * 4 * sizeof(double)), *sc = malloc(N * sizeof(double)), *iou = malloc(sizeof(double) * N * N);
    int64_t *kk = malloc(N * sizeof(int64_t));
    rand_boxes(bb, N, 100);
    for (int i = 0; i < N; i++)
        sc[i] = (double)(int)(tll_test_uniform() * 20);
    CHECK(tll_nms_forward_f64(kk, &k, bb, sc, N, 0.3) == TLL_OK);
    tll_box_iou_forward_f64(iou, bb, N, bb, N);
    char *kept = calloc(N, 1);
    for (int64_t a = 0; a < k; a++) {
        kept[kk[a]] = 1;
        if (a > 0)
            CHECK(sc[kk[a]] < sc[kk[a - 1]] || (sc[kk[a]] == sc[kk[a - 1]] && kk[a] > kk[a - 1]));
        for (int64_t c = 0; c < a; c++)
            CHECK(iou[kk[a] * N + kk[c]] <= 0.3);
    }
    for (int i = 0; i < N; i++) {
        if (kept[i])
            continue;
        int covered = 0; /* some kept box ranked before it suppresses it */
        for (int64_t a = 0; a < k && !covered; a++) {
            int64_t j = kk[a];
            int before = sc[j] > sc[i] || (sc[j] == sc[i] && j < i);
            covered = before && iou[j * N + i] > 0.3;
        }
        CHECK(covered);
    }
    free(bb);
    free(sc);
    free(iou);
    free(kk);
    free(kept);
}

/* A poll function that asks to stop at its `*ctx`-th call, counting calls. */
static int stop_at(void *ctx)
{
    int *n = ctx;
    return --*n <= 0;
}

static void test_nms_poll(void)
{
    /* n disjoint boxes: nothing suppressed, n^2/2 IoUs, several poll points */
    enum { N = 6000 };
    double *b = malloc(N * 4 * sizeof(double)), *s = malloc(N * sizeof(double));
    int64_t *keep = malloc(N * sizeof(int64_t)), k = -1;
    for (int i = 0; i < N; i++) {
        b[4 * i] = 10.0 * i, b[4 * i + 1] = 0, b[4 * i + 2] = 10.0 * i + 5, b[4 * i + 3] = 5;
        s[i] = N - i;
    }
    int calls = 2;
    tll_set_poll(stop_at, &calls);
    CHECK(tll_nms_forward_f64(keep, &k, b, s, N, 0.5) == TLL_ERR_INTERRUPTED);
    CHECK(calls == 0);
    calls = 1000000; /* never stops: the same result as without a poll function */
    CHECK(tll_nms_forward_f64(keep, &k, b, s, N, 0.5) == TLL_OK && k == N);
    tll_set_poll(NULL, NULL);
    CHECK(tll_poll() == 0);
    free(b);
    free(s);
    free(keep);
}

int main(void)
{
    test_iou();
    test_diou();
    test_diou_threads();
    test_nms();
    test_nms_poll();
    TEST_MAIN_END();
}
