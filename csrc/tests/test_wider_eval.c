/* WIDER FACE evaluation kernel: hand-computed cases, edge cases, thread invariance. */
#include "tasklle.h"
#include "tll_test.h"
#include <stdint.h>
#include <string.h>

#define T 10

/* Image 0: counted A, ignored B; duplicate hit on A, a hit on B, a far false
 * positive; rows deliberately unsorted. Image 1: gt but no predictions.
 * Image 2: predictions but no gt. Setting 0 ignores B, setting 1 counts it. */
static void test_hand_case(void)
{
    const double pred[] = {
        0, 0, 10, 10, 0.9,    /* p1: A again (after sorting) -> false positive */
        100, 100, 10, 10, 0.8, /* p2: B */
        0, 0, 10, 10, 0.95,   /* p3: A, best score */
        50, 50, 5, 5, 0.1,    /* p4: nothing */
        7, 7, 3, 3, 0.5,      /* image 2 (no gt): skipped */
    };
    const int64_t poff[] = {0, 4, 4, 5};
    const double gt[] = {
        0, 0, 10, 10,     /* A */
        100, 100, 10, 10, /* B */
        30, 30, 10, 10,   /* image 1 */
    };
    const int64_t goff[] = {0, 2, 3, 3};
    const uint8_t counted[] = {1, 0, 1, /* setting 0 */ 1, 1, 1 /* setting 1 */};
    int64_t out[2 * T * 2];
    tll_status st = tll_wider_eval_forward(out, pred, poff, gt, goff, counted, 3, 2, T, 0.1, 0.95, 0.5);
    CHECK(st == TLL_OK);
    /* normalised: p3 1.0, p1 0.941, p2 0.8235, p4 0.0 */
    const int64_t e0[T][2] = {{2, 1}, {2, 1}, {2, 1}, {2, 1}, {2, 1}, {2, 1}, {2, 1}, {2, 1}, {2, 1}, {3, 1}};
    const int64_t e1[T][2] = {{2, 1}, {3, 2}, {3, 2}, {3, 2}, {3, 2}, {3, 2}, {3, 2}, {3, 2}, {3, 2}, {4, 2}};
    for (int t = 0; t < T; t++) {
        CHECK(out[t * 2] == e0[t][0]);
        CHECK(out[t * 2 + 1] == e0[t][1]);
        CHECK(out[T * 2 + t * 2] == e1[t][0]);
        CHECK(out[T * 2 + t * 2 + 1] == e1[t][1]);
    }
}

/* IoU exactly 0.5 with the +1 convention matches (>=); a box with w = -2 never does. */
static void test_iou_boundary(void)
{
    const double gt[] = {0, 0, 9, 9}; /* x2 = 9: 10 x 10 pixels */
    const double pred[] = {
        0, 0, 9, 4, 1.0,  /* 10 x 5 inside: IoU 50 / 100 = 0.5 */
        0, 0, -2, 9, 0.5, /* degenerate */
    };
    const int64_t poff[] = {0, 2}, goff[] = {0, 1};
    const uint8_t counted[] = {1};
    int64_t out[T * 2];
    CHECK(tll_wider_eval_forward(out, pred, poff, gt, goff, counted, 1, 1, T, 0.0, 1.0, 0.5) == TLL_OK);
    CHECK(out[0] == 1 && out[1] == 1);                 /* thresh 0.9: only the first */
    CHECK(out[(T - 1) * 2] == 2 && out[(T - 1) * 2 + 1] == 1); /* thresh 0: both, one recalled */
    /* a slightly higher threshold rejects the 0.5 match */
    CHECK(tll_wider_eval_forward(out, pred, poff, gt, goff, counted, 1, 1, T, 0.0, 1.0, 0.5000001) == TLL_OK);
    CHECK(out[0] == 1 && out[1] == 0);
}

/* Ties in IoU go to the first gt (MATLAB max): ignored first -> not counted. */
static void test_argmax_ties(void)
{
    const double gt[] = {0, 0, 10, 10, 0, 0, 10, 10};
    const double pred[] = {0, 0, 10, 10, 1.0};
    const int64_t poff[] = {0, 1}, goff[] = {0, 2};
    const uint8_t counted[] = {0, 1, /* setting 1 */ 1, 0};
    int64_t out[2 * T * 2];
    CHECK(tll_wider_eval_forward(out, pred, poff, gt, goff, counted, 1, 2, T, 0.0, 1.0, 0.5) == TLL_OK);
    CHECK(out[0] == 0 && out[1] == 0);         /* setting 0: hit the ignored first gt */
    CHECK(out[T * 2] == 1 && out[T * 2 + 1] == 1); /* setting 1: hit the counted first gt */
}

/* Equal scores keep row order (stable sort); all-equal scores normalise to 1. */
static void test_ties_and_constant_scores(void)
{
    const double gt[] = {0, 0, 10, 10, 50, 50, 10, 10};
    const double pred[] = {
        50, 50, 10, 10, 0.7, /* hits ignored gt 1 */
        0, 0, 10, 10, 0.7,   /* hits counted gt 0 */
    };
    const int64_t poff[] = {0, 2}, goff[] = {0, 2};
    const uint8_t counted[] = {1, 0};
    int64_t out[T * 2];
    CHECK(tll_wider_eval_forward(out, pred, poff, gt, goff, counted, 1, 1, T, 0.7, 0.7, 0.5) == TLL_OK);
    for (int t = 0; t < T; t++)
        CHECK(out[t * 2] == 1 && out[t * 2 + 1] == 1);
}

static void test_empty(void)
{
    int64_t out[3 * T * 2];
    memset(out, 0x7f, sizeof(out));
    const int64_t off[] = {0};
    CHECK(tll_wider_eval_forward(out, NULL, off, NULL, off, NULL, 0, 3, T, 0.0, 1.0, 0.5) == TLL_OK);
    for (int k = 0; k < 3 * T * 2; k++)
        CHECK(out[k] == 0);
    CHECK(tll_wider_eval_forward(out, NULL, off, NULL, off, NULL, 0, 1, 0, 0.0, 1.0, 0.5) == TLL_ERR_ARG);
}

/* Random images (integer pixels, quantised scores: ties on purpose), shared by the tests below. */
enum { NI = 57, S = 3, TT = 1000 };
typedef struct {
    int64_t poff[NI + 1], goff[NI + 1];
    double *pred, *gt;
    uint8_t *counted;
} random_set_t;

static void random_set(random_set_t *r)
{
    int64_t *poff = r->poff, *goff = r->goff;
    poff[0] = goff[0] = 0;
    for (int i = 0; i < NI; i++) {
        poff[i + 1] = poff[i] + (int64_t)(tll_test_uniform() * 40);
        goff[i + 1] = goff[i] + (int64_t)(tll_test_uniform() * 15);
    }
    int64_t P = poff[NI], G = goff[NI];
    double *pred = r->pred = malloc((size_t)(P > 0 ? P : 1) * 5 * sizeof(double));
    double *gt = r->gt = malloc((size_t)(G > 0 ? G : 1) * 4 * sizeof(double));
    uint8_t *counted = r->counted = malloc((size_t)(S * (G > 0 ? G : 1)));
    for (int64_t j = 0; j < G; j++) {
        gt[j * 4] = floor(tll_test_uniform() * 200);
        gt[j * 4 + 1] = floor(tll_test_uniform() * 200);
        gt[j * 4 + 2] = floor(2 + tll_test_uniform() * 40);
        gt[j * 4 + 3] = floor(2 + tll_test_uniform() * 40);
        for (int s = 0; s < S; s++)
            counted[s * G + j] = tll_test_uniform() < 0.3 * (s + 1);
    }
    for (int i = 0; i < NI; i++) {
        for (int64_t h = poff[i]; h < poff[i + 1]; h++) {
            int64_t ng = goff[i + 1] - goff[i];
            if (ng > 0 && tll_test_uniform() < 0.6) {
                const double *g = gt + (goff[i] + (int64_t)(tll_test_uniform() * ng)) * 4;
                for (int c = 0; c < 4; c++)
                    pred[h * 5 + c] = g[c] + floor(tll_test_uniform() * 5) - 2;
            } else {
                for (int c = 0; c < 4; c++)
                    pred[h * 5 + c] = floor(tll_test_uniform() * 200);
            }
            pred[h * 5 + 4] = floor(tll_test_uniform() * 50) / 50; /* ties on purpose */
        }
    }
}

static void random_set_free(random_set_t *r)
{
    free(r->pred);
    free(r->gt);
    free(r->counted);
}

/* Random images: the result must not depend on the thread count. */
static void test_thread_invariance(void)
{
    random_set_t r;
    random_set(&r);
    int64_t *a = malloc(sizeof(int64_t) * S * TT * 2), *b = malloc(sizeof(int64_t) * S * TT * 2);
    tll_set_num_threads(1);
    CHECK(tll_wider_eval_forward(a, r.pred, r.poff, r.gt, r.goff, r.counted, NI, S, TT, 0.0, 0.98, 0.5) == TLL_OK);
    tll_set_num_threads(3);
    CHECK(tll_wider_eval_forward(b, r.pred, r.poff, r.gt, r.goff, r.counted, NI, S, TT, 0.0, 0.98, 0.5) == TLL_OK);
    tll_set_num_threads(0);
    CHECK(memcmp(a, b, sizeof(int64_t) * S * TT * 2) == 0);
    /* sanity: counts are monotone in the threshold and recall <= proposals */
    for (int s = 0; s < S; s++)
        for (int t = 1; t < TT; t++) {
            const int64_t *q = a + (s * TT + t) * 2;
            CHECK(q[0] >= q[-2] && q[1] >= q[-1] && q[1] <= q[0]);
        }
    CHECK(a[(S * TT - 1) * 2] > 0);
    random_set_free(&r);
    free(a);
    free(b);
}

/* The per-image mode: rows sum exactly to the dataset sums, images without
 * predictions or gt get zero rows, a chunk of images evaluated alone (with the
 * same normalisation) gives the same rows, thread count does not matter. */
static void test_per_image(void)
{
    random_set_t r;
    random_set(&r);
    const size_t block = (size_t)S * TT * 2;
    int64_t *sums = malloc(sizeof(int64_t) * block), *total = calloc(block, sizeof(int64_t));
    int64_t *rows1 = malloc(sizeof(int64_t) * NI * block), *rows3 = malloc(sizeof(int64_t) * NI * block);
    tll_set_num_threads(1);
    CHECK(tll_wider_eval_per_image(rows1, r.pred, r.poff, r.gt, r.goff, r.counted, NI, S, TT, 0.0, 0.98, 0.5) ==
          TLL_OK);
    tll_set_num_threads(3);
    CHECK(tll_wider_eval_per_image(rows3, r.pred, r.poff, r.gt, r.goff, r.counted, NI, S, TT, 0.0, 0.98, 0.5) ==
          TLL_OK);
    CHECK(tll_wider_eval_forward(sums, r.pred, r.poff, r.gt, r.goff, r.counted, NI, S, TT, 0.0, 0.98, 0.5) ==
          TLL_OK);
    tll_set_num_threads(0);
    CHECK(memcmp(rows1, rows3, sizeof(int64_t) * NI * block) == 0);
    int skipped = 0;
    for (int i = 0; i < NI; i++) {
        int empty = r.poff[i + 1] == r.poff[i] || r.goff[i + 1] == r.goff[i], zero = 1;
        for (size_t k = 0; k < block; k++) {
            total[k] += rows1[i * block + k];
            zero &= rows1[i * block + k] == 0;
        }
        if (empty) {
            CHECK(zero);
            skipped++;
        }
    }
    CHECK(skipped > 0); /* the random set has such images */
    CHECK(memcmp(total, sums, sizeof(int64_t) * block) == 0);

    /* images 10..29 alone: the counted flags are (S, G) with stride G, so give the chunk its own copy */
    const int i0 = 10, i1 = 30, n = i1 - i0;
    int64_t cpo[n + 1], cgo[n + 1];
    for (int i = 0; i <= n; i++) {
        cpo[i] = r.poff[i0 + i] - r.poff[i0];
        cgo[i] = r.goff[i0 + i] - r.goff[i0];
    }
    const int64_t cg = cgo[n];
    uint8_t *ccnt = malloc((size_t)(S * (cg > 0 ? cg : 1)));
    for (int s = 0; s < S; s++)
        for (int64_t j = 0; j < cg; j++)
            ccnt[s * cg + j] = r.counted[s * r.goff[NI] + r.goff[i0] + j];
    int64_t *chunk = malloc(sizeof(int64_t) * n * block);
    CHECK(tll_wider_eval_per_image(chunk, r.pred + r.poff[i0] * 5, cpo, r.gt + r.goff[i0] * 4, cgo, ccnt, n, S, TT,
                                   0.0, 0.98, 0.5) == TLL_OK);
    CHECK(memcmp(chunk, rows1 + i0 * block, sizeof(int64_t) * n * block) == 0);

    /* hand case of test_hand_case, image by image: image 0 holds everything */
    {
        const double pred[] = {0, 0, 10, 10, 0.9, 100, 100, 10, 10, 0.8, 0, 0, 10, 10, 0.95, 50, 50, 5, 5, 0.1,
                               7, 7, 3, 3, 0.5};
        const int64_t poff[] = {0, 4, 4, 5}, goff[] = {0, 2, 3, 3};
        const double gt[] = {0, 0, 10, 10, 100, 100, 10, 10, 30, 30, 10, 10};
        const uint8_t counted[] = {1, 0, 1, 1, 1, 1};
        int64_t out[3 * 2 * T * 2], sum[2 * T * 2];
        memset(out, 0x7f, sizeof(out));
        CHECK(tll_wider_eval_per_image(out, pred, poff, gt, goff, counted, 3, 2, T, 0.1, 0.95, 0.5) == TLL_OK);
        CHECK(tll_wider_eval_forward(sum, pred, poff, gt, goff, counted, 3, 2, T, 0.1, 0.95, 0.5) == TLL_OK);
        CHECK(memcmp(out, sum, sizeof(sum)) == 0);
        for (int k = 2 * T * 2; k < 3 * 2 * T * 2; k++)
            CHECK(out[k] == 0);
    }
    /* bad arguments and empty input */
    {
        int64_t out[T * 2];
        const int64_t off[] = {0};
        CHECK(tll_wider_eval_per_image(out, NULL, off, NULL, off, NULL, 0, 1, T, 0.0, 1.0, 0.5) == TLL_OK);
        CHECK(tll_wider_eval_per_image(out, NULL, off, NULL, off, NULL, 0, 1, 0, 0.0, 1.0, 0.5) == TLL_ERR_ARG);
        CHECK(tll_wider_eval_per_image(out, NULL, off, NULL, off, NULL, -1, 1, T, 0.0, 1.0, 0.5) == TLL_ERR_ARG);
        CHECK(tll_wider_eval_per_image(out, NULL, off, NULL, off, NULL, INT64_MAX / 4, 1, T, 0.0, 1.0, 0.5) ==
              TLL_ERR_OVERFLOW);
        const int64_t bad_poff[] = {0, -1}, goff1[] = {0, 0};
        CHECK(tll_wider_eval_per_image(out, NULL, bad_poff, NULL, goff1, NULL, 1, 1, T, 0.0, 1.0, 0.5) ==
              TLL_ERR_ARG);
    }
    random_set_free(&r);
    free(sums);
    free(total);
    free(rows1);
    free(rows3);
    free(ccnt);
    free(chunk);
}

int main(void)
{
    test_hand_case();
    test_iou_boundary();
    test_argmax_ties();
    test_ties_and_constant_scores();
    test_empty();
    test_thread_invariance();
    test_per_image();
    TEST_MAIN_END();
}
